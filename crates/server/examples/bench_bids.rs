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
//! printed as one JSON line per mode, with the CPUs this generator and the
//! server (`BENCH_SERVER_PID`) kept busy meanwhile.
#![allow(
    clippy::print_stdout,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)] // a measuring tool: it fails loudly

#[path = "bench/support.rs"]
#[allow(dead_code)] // each load generator uses its part
mod support;

use std::time::{Duration, Instant};

use pp_domain::Role;
use serde_json::{Value, json};
use support::{
    CpuShare, bid_all, create_item, env, make_users, number, percentile, store_and_tokens, two,
};

async fn run_mode(
    mode: &str,
    base: &str,
    admin: &str,
    tokens: &[String],
    items: usize,
    concurrency: usize,
) -> Value {
    let client = support::client(concurrency);
    let mut ids = Vec::with_capacity(items);
    for _ in 0..items {
        ids.push(create_item(&client, base, admin, &format!("{mode} lot")).await);
    }
    let cpu = CpuShare::start(&env("BENCH_SERVER_PID", "self"));
    let (run, elapsed) = bid_all(&client, base, tokens, &ids, concurrency).await;
    let cpu = cpu.stop();
    let mut latencies = run.latencies.lock().unwrap().clone();
    latencies.sort_by(f64::total_cmp);
    let accepted = run.accepted.load(std::sync::atomic::Ordering::Relaxed);
    let too_low = run.too_low.load(std::sync::atomic::Ordering::Relaxed);
    let mut result = json!({
        "mode": mode,
        "items": items,
        "concurrency": concurrency,
        "accepted": accepted,
        "too_low": too_low,
        "failed": run.failed.load(std::sync::atomic::Ordering::Relaxed),
        "unavailable": run.unavailable.load(std::sync::atomic::Ordering::Relaxed),
        "seconds": two(elapsed),
        "accepted_per_s": (accepted as f64 / elapsed).round(),
        "decided_per_s": ((accepted + too_low) as f64 / elapsed).round(),
        "p50_ms": two(percentile(&latencies, 0.50)),
        "p99_ms": two(percentile(&latencies, 0.99)),
    });
    if let (Some(result), Value::Object(cpu)) = (result.as_object_mut(), cpu) {
        result.extend(cpu);
    }
    result
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
        let (store, jwt) = store_and_tokens().await;

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
