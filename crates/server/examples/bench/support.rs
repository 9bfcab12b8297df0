//! What the benchmarks' load generators share: users made directly in the
//! store (sessions and signed access tokens, no argon2 in the way), items,
//! hot-item bidding, percentiles, and the CPU and memory of a process read
//! from `/proc`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Instant;

use chrono::Utc;
use pp_crypto::{AesGcmSealer, JwtAccessTokens, JwtSettings};
use pp_domain::auth::AccessClaims;
use pp_domain::auth::ports::{AccessTokens, NewRefreshToken, SessionStore};
use pp_domain::auth::tokens::TokenDigest;
use pp_domain::{Role, SessionId, TokenId};
use pp_store_sql::{Database, DatabaseSettings, SqlStore};
use serde_json::{Value, json};

pub fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

pub fn number(name: &str, default: usize) -> usize {
    env(name, &default.to_string()).parse().expect(name)
}

/// The bench database and the server's token key, from the environment
/// the bench scripts set.
pub async fn store_and_tokens() -> (SqlStore, JwtAccessTokens) {
    let database = Database::connect(&DatabaseSettings::new(env("DATABASE_URL", "")))
        .await
        .expect("the bench database");
    let store = SqlStore::new(database, Arc::new(AesGcmSealer::new(&[0; 32])));
    let jwt = JwtAccessTokens::new(env("JWT_SECRET", "").as_bytes(), JwtSettings::default());
    (store, jwt)
}

/// `n` users, each with a live session; their access tokens.
pub async fn make_users(
    store: &SqlStore,
    jwt: &JwtAccessTokens,
    n: usize,
    role: Role,
) -> Vec<String> {
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
                expires_at: now + chrono::Duration::hours(2),
            })
            .expect("a token")
        }))
        .await;
        tokens.extend(made);
    }
    tokens
}

/// A client for the load: connections opened within 10 s, answers within
/// a minute (a stream's body may take longer).
pub fn client(idle_per_host: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(idle_per_host)
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Lists an item open for two hours; its id.
pub async fn create_item(client: &reqwest::Client, base: &str, admin: &str, title: &str) -> String {
    let created = client
        .post(format!("{base}/api/v1/items"))
        .bearer_auth(admin)
        .json(&json!({
            "title": title,
            "base_price": 100,
            "min_increment": 1,
            "close_at": (Utc::now() + chrono::Duration::hours(2)).to_rfc3339(),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201, "creating an item");
    let body: Value = created.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// What a bidding run counted.
#[derive(Default)]
pub struct Run {
    pub accepted: AtomicUsize,
    pub too_low: AtomicUsize,
    pub failed: AtomicUsize,
    /// 503s (the store busy): tried again after the `Retry-After`.
    pub unavailable: AtomicUsize,
    pub latencies: std::sync::Mutex<Vec<f64>>,
    /// When each accepted bid's 201 arrived, by the bid count it reports
    /// (the earliest, when a batch's bids report the same).
    pub answered: std::sync::Mutex<HashMap<u64, Instant>>,
}

/// Places one accepted bid for `token` on `item`, bidding again while too low.
pub async fn bid_until_accepted(
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
        let answered = Instant::now();
        let elapsed = (answered - started).as_secs_f64() * 1000.0;
        run.latencies.lock().unwrap().push(elapsed);
        let Ok(response) = response else {
            run.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match response.status().as_u16() {
            201 => {
                run.accepted.fetch_add(1, Ordering::Relaxed);
                let body: Value = response.json().await.unwrap_or_default();
                if let Some(count) = body["item"]["bid_count"].as_u64() {
                    run.answered
                        .lock()
                        .unwrap()
                        .entry(count)
                        .and_modify(|at| *at = (*at).min(answered))
                        .or_insert(answered);
                }
                return;
            }
            503 => {
                run.unavailable.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
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

/// One accepted bid per token, spread over `items` (each with its own
/// amount counter), `concurrency` at a time; what it counted and how long
/// it took.
pub async fn bid_all(
    client: &reqwest::Client,
    base: &str,
    tokens: &[String],
    items: &[String],
    concurrency: usize,
) -> (Run, f64) {
    let counters: Vec<AtomicI64> = items.iter().map(|_| AtomicI64::new(100)).collect();
    let run = Run::default();
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| async {
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let Some(token) = tokens.get(n) else { return };
            let slot = n % items.len();
            bid_until_accepted(client, base, token, &items[slot], &counters[slot], &run).await;
        }
    });
    futures::future::join_all(workers).await;
    (run, started.elapsed().as_secs_f64())
}

/// The `q` quantile of sorted values (0 when there are none).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Rounded to two decimals, for the JSON lines.
pub fn two(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A process's resident memory, in KiB.
pub fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A process's CPU time so far (user and system), in seconds.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime
    // are the 14th and 15th of the line, in clock ticks (100 a second on
    // Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU used by this load generator, the server, PostgreSQL, Redis and the
/// whole machine over a stretch of wall time, as shares of one CPU: the
/// first question of a profile is whether anything is saturated. PostgreSQL
/// and Redis are every process of that name on the machine, so another
/// build's test databases count too: run benchmarks on a quiet machine.
pub struct CpuShare {
    server: String,
    started: Instant,
    own: f64,
    theirs: f64,
    database: HashMap<u32, f64>,
    redis: HashMap<u32, f64>,
    machine: f64,
}

impl CpuShare {
    pub fn start(server_pid: &str) -> Self {
        CpuShare {
            server: server_pid.to_owned(),
            started: Instant::now(),
            own: cpu_seconds("self"),
            theirs: cpu_seconds(server_pid),
            database: cpu_by_command("postgres"),
            redis: cpu_by_command("redis-server"),
            machine: machine_busy_seconds(),
        }
    }

    /// `{"generator_cpu", "server_cpu", "database_cpu", "redis_cpu",
    /// "machine_cpu"}`: CPUs busy on average (1.0 is one whole CPU).
    pub fn stop(&self) -> Value {
        let wall = self.started.elapsed().as_secs_f64().max(f64::EPSILON);
        // A backend started during the stretch counts whole; one that ended
        // during it is lost (the pools keep theirs open).
        let since = |before: &HashMap<u32, f64>, now: HashMap<u32, f64>| {
            now.iter()
                .map(|(pid, seconds)| seconds - before.get(pid).copied().unwrap_or(0.0))
                .sum::<f64>()
        };
        json!({
            "generator_cpu": two((cpu_seconds("self") - self.own) / wall),
            "server_cpu": two((cpu_seconds(&self.server) - self.theirs) / wall),
            "database_cpu": two(since(&self.database, cpu_by_command("postgres")) / wall),
            "redis_cpu": two(since(&self.redis, cpu_by_command("redis-server")) / wall),
            "machine_cpu": two((machine_busy_seconds() - self.machine) / wall),
        })
    }
}

/// Every running process whose command is `command`, with its CPU seconds.
fn cpu_by_command(command: &str) -> HashMap<u32, f64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == command)
        })
        .map(|pid| (pid, cpu_seconds(&pid.to_string())))
        .collect()
}

/// The machine's busy CPU time so far (all but idle and I/O wait), in
/// seconds.
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // cpu  user nice system idle iowait irq softirq steal (guest time is
    // counted in user already)
    let busy: f64 = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .filter_map(|(_, ticks)| ticks.parse::<f64>().ok())
        .sum();
    busy / 100.0
}
