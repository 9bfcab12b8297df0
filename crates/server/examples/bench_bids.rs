//! `make bench-bids`' load generator: bids over HTTP against a running
//! server, by distinct pre-made users (created directly in the store, with
//! sessions and signed access tokens: no argon2 in the way).
//!
//! - **hot**: one item, `BENCH_CONCURRENCY` bidders at once, until
//!   `BENCH_BIDS` bids were accepted;
//! - **spread**: `BENCH_ITEMS` items, the same concurrency, `BENCH_BIDS`
//!   bids spread over them.
//!
//! Amounts come from a counter per item, so bids mostly arrive in
//! increasing order; one overtaken on the way is `bid_too_low` and its
//! bidder bids again with a fresh amount (a rejected bid does not use up the
//! bidder's one bid), as a real bidder would. Accepted bids/s, decided
//! bids/s (accepted + too low) and the latency of every bid request are
//! printed as one JSON line per mode.
#![allow(
    clippy::print_stdout,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)] // a measuring tool: it fails loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use pp_crypto::{AesGcmSealer, JwtAccessTokens, JwtSettings};
use pp_domain::auth::AccessClaims;
use pp_domain::auth::ports::{AccessTokens, NewRefreshToken, SessionStore};
use pp_domain::auth::tokens::TokenDigest;
use pp_domain::{Role, SessionId, TokenId};
use pp_store_sql::{Database, DatabaseSettings, SqlStore};
use serde_json::{Value, json};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn number(name: &str, default: usize) -> usize {
    env(name, &default.to_string()).parse().expect(name)
}

/// A user with a live session and its access token.
async fn make_users(store: &SqlStore, jwt: &JwtAccessTokens, n: usize, role: Role) -> Vec<String> {
    let mut tokens = Vec::with_capacity(n);
    let chunks: Vec<usize> = (0..n).collect();
    for chunk in chunks.chunks(32) {
        let made = futures::future::join_all(chunk.iter().map(|_| async {
            let user = pp_testkit::create_user(store, role, true).await;
            let session = SessionId::generate();
            let now = Utc::now();
            let mut digest = [0u8; 32];
            digest[..16].copy_from_slice(session.as_uuid().as_bytes());
            store
                .start_session(
                    NewRefreshToken {
                        digest: TokenDigest(digest),
                        session,
                        user: user.id,
                        issued_at: now,
                        expires_at: now + chrono::Duration::days(1),
                    },
                    &pp_testkit::test_password_hash(),
                )
                .await
                .expect("a session");
            jwt.issue(&AccessClaims {
                user: user.id,
                role,
                token: TokenId::generate(),
                session,
                issued_at: now,
                expires_at: now + chrono::Duration::minutes(15),
            })
            .expect("a token")
        }))
        .await;
        tokens.extend(made);
    }
    tokens
}

struct Run {
    accepted: AtomicUsize,
    too_low: AtomicUsize,
    failed: AtomicUsize,
    latencies: std::sync::Mutex<Vec<f64>>,
}

/// Places one accepted bid for `token` on `item`, bidding again while too low.
async fn bid_until_accepted(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    item: &str,
    counter: &AtomicI64,
    run: &Run,
) {
    loop {
        let amount = counter.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let response = client
            .post(format!("{base}/api/v1/items/{item}/bid"))
            .bearer_auth(token)
            .json(&json!({ "amount": amount }))
            .send()
            .await;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        run.latencies.lock().unwrap().push(elapsed);
        let Ok(response) = response else {
            run.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match response.status().as_u16() {
            201 => {
                run.accepted.fetch_add(1, Ordering::Relaxed);
                return;
            }
            422 => {
                run.too_low.fetch_add(1, Ordering::Relaxed);
                let body: Value = response.json().await.unwrap_or_default();
                // Jump ahead of the price the server reported.
                if let Some(minimum) = body["minimum_next_bid"].as_i64() {
                    counter.fetch_max(minimum, Ordering::Relaxed);
                }
            }
            status => {
                run.failed.fetch_add(1, Ordering::Relaxed);
                let body = response.text().await.unwrap_or_default();
                panic!("bid failed with {status}: {body}");
            }
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn run_mode(
    mode: &str,
    base: &str,
    admin: &str,
    tokens: &[String],
    items: usize,
    concurrency: usize,
) -> Value {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let mut ids = Vec::with_capacity(items);
    for _ in 0..items {
        let created = client
            .post(format!("{base}/api/v1/items"))
            .bearer_auth(admin)
            .json(&json!({
                "title": format!("{mode} lot"),
                "base_price": 100,
                "min_increment": 1,
                "close_at": (Utc::now() + chrono::Duration::hours(2)).to_rfc3339(),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status().as_u16(), 201, "creating an item");
        let body: Value = created.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let counters: Vec<AtomicI64> = (0..items).map(|_| AtomicI64::new(100)).collect();
    let run = Arc::new(Run {
        accepted: AtomicUsize::new(0),
        too_low: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        latencies: std::sync::Mutex::new(Vec::with_capacity(tokens.len() * 2)),
    });
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| async {
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let Some(token) = tokens.get(n) else { return };
            let slot = n % items;
            bid_until_accepted(&client, base, token, &ids[slot], &counters[slot], &run).await;
        }
    });
    futures::future::join_all(workers).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = run.latencies.lock().unwrap().clone();
    latencies.sort_by(f64::total_cmp);
    let accepted = run.accepted.load(Ordering::Relaxed);
    let too_low = run.too_low.load(Ordering::Relaxed);
    json!({
        "mode": mode,
        "items": items,
        "concurrency": concurrency,
        "accepted": accepted,
        "too_low": too_low,
        "failed": run.failed.load(Ordering::Relaxed),
        "seconds": (elapsed * 100.0).round() / 100.0,
        "accepted_per_s": (accepted as f64 / elapsed).round(),
        "decided_per_s": ((accepted + too_low) as f64 / elapsed).round(),
        "p50_ms": (percentile(&latencies, 0.50) * 100.0).round() / 100.0,
        "p99_ms": (percentile(&latencies, 0.99) * 100.0).round() / 100.0,
    })
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let base = env("BENCH_BASE_URL", "http://127.0.0.1:18081");
        let bids = number("BENCH_BIDS", 10_000);
        let concurrency = number("BENCH_CONCURRENCY", 50);
        let spread_items = number("BENCH_ITEMS", 1_000);
        let modes = env("BENCH_MODES", "hot,spread");
        let database = Database::connect(&DatabaseSettings::new(env("DATABASE_URL", "")))
            .await
            .expect("the bench database");
        let store = SqlStore::new(database, Arc::new(AesGcmSealer::new(&[0; 32])));
        let jwt = JwtAccessTokens::new(env("JWT_SECRET", "").as_bytes(), JwtSettings::default());

        let prepared = Instant::now();
        let admin = make_users(&store, &jwt, 1, Role::Admin).await.remove(0);
        let tokens = make_users(&store, &jwt, bids, Role::User).await;
        eprintln!(
            "bench-bids: {bids} users with sessions in {:.1} s",
            prepared.elapsed().as_secs_f64()
        );
        for mode in modes.split(',') {
            let items = if mode == "hot" { 1 } else { spread_items };
            let result = run_mode(mode, &base, &admin, &tokens, items, concurrency).await;
            println!("{result}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}
