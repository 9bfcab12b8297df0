//! `make bench-live`' load generator (issue 21): live fan-out against a
//! running server (`BENCH_SERVER_PID` names it, for its memory and CPU).
//!
//! - **sse**: hot-item bids/s with nobody watching; then
//!   `BENCH_SUBSCRIBERS` SSE streams of another item (the server's memory
//!   per stream, measured once all have their snapshot); then
//!   `BENCH_PACED_BIDS` bids on the watched item at `BENCH_PACE_PER_S` (how
//!   long after each bid's 201 every subscriber has its `price` event); then
//!   hot-item bids on the watched item (bids/s while fanning out, against
//!   the first figure, and the delay of every tenth event meanwhile).
//! - **ws**: `BENCH_SOCKETS` authenticated WebSockets held open idle (the
//!   server's memory per socket); then a chain of `BENCH_NOTIFIED` bids,
//!   each outbidding the previous bidder, whose `outbid` notification is
//!   timed from the 201 of the bid that caused it.
//!
//! Each event is timestamped as it arrives. One JSON line per mode, with
//! the CPUs this generator and the server kept busy meanwhile (the
//! generator must not be what limits the figures).
#![allow(
    clippy::print_stdout,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)] // a measuring tool: it fails loudly

#[path = "bench/support.rs"]
#[allow(dead_code)] // each load generator uses its part
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use pp_domain::Role;
use russe::reqwest_0_13::ReqwestExt;
use serde_json::{Value, json};
use support::{
    CpuShare, bid_all, create_item, env, make_users, number, percentile, rss_kib, store_and_tokens,
    two,
};
use tokio::sync::{Semaphore, watch};

/// Connections being opened at once (the server's accept backlog is the
/// limit that matters).
const OPENING: usize = 256;

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    /// When sampled `price` events arrived, by id.
    arrivals: Vec<(u64, Instant)>,
    /// `price` events received.
    prices: u64,
    /// Its stream ended before the bench did.
    cut: bool,
}

/// An SSE subscriber of `url`: counts itself in `ready` once its snapshot
/// came, and times the `price` events `sampled` picks until `stop`.
async fn subscribe(
    client: reqwest::Client,
    url: String,
    opening: Arc<Semaphore>,
    ready: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
    sampled: impl Fn(u64) -> bool,
) -> Seen {
    let mut seen = Seen::default();
    let permit = opening.acquire_owned().await.unwrap();
    let Ok(response) = client.get(url).send().await else {
        seen.cut = true;
        return seen;
    };
    assert_eq!(response.status().as_u16(), 200, "an SSE stream");
    let mut events = response.sse_stream();
    let mut permit = Some(permit);
    loop {
        tokio::select! {
            _ = stop.changed() => return seen,
            event = events.next() => match event {
                Some(Ok(russe::Event::Message(message))) => {
                    let at = Instant::now();
                    match message.event.as_deref() {
                        Some("snapshot") => {
                            drop(permit.take());
                            ready.fetch_add(1, Ordering::Relaxed);
                        }
                        Some("price") => {
                            seen.prices += 1;
                            let id = message.id.as_deref().and_then(|id| id.parse().ok()).unwrap_or(0);
                            if sampled(id) {
                                seen.arrivals.push((id, at));
                            }
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    seen.cut = true;
                    return seen;
                }
            }
        }
    }
}

/// Waits until `ready` reaches `n` (or a minute passes); how many made it.
async fn all_ready(ready: &AtomicUsize, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ready.load(Ordering::Relaxed)
}

/// Delays (ms, sorted) of `arrivals` after the 201s in `answered`.
fn delays<'a>(
    arrivals: impl Iterator<Item = &'a (u64, Instant)>,
    answered: &HashMap<u64, Instant>,
) -> Vec<f64> {
    let mut delays: Vec<f64> = arrivals
        .filter_map(|(id, at)| {
            let answered = answered.get(id)?;
            Some(at.saturating_duration_since(*answered).as_secs_f64() * 1000.0)
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    delays
}

fn spread(delays: &[f64]) -> Value {
    json!({
        "samples": delays.len(),
        "p50_ms": two(percentile(delays, 0.50)),
        "p99_ms": two(percentile(delays, 0.99)),
        "max_ms": two(delays.last().copied().unwrap_or(0.0)),
    })
}

/// Bids on `item` one after another, `per_s` a second, one per token; the
/// 201 of each by the bid count it reports.
async fn paced_bids(
    client: &reqwest::Client,
    base: &str,
    item: &str,
    tokens: &[String],
    per_s: usize,
) -> HashMap<u64, Instant> {
    let mut answered = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_s.max(1) as f64));
    for (n, token) in tokens.iter().enumerate() {
        tick.tick().await;
        let response = client
            .post(format!("{base}/api/v1/items/{item}/bid"))
            .bearer_auth(token)
            .json(&json!({ "amount": 100 + n }))
            .send()
            .await
            .unwrap();
        let at = Instant::now();
        assert_eq!(response.status().as_u16(), 201, "a paced bid");
        let body: Value = response.json().await.unwrap();
        answered.insert(body["item"]["bid_count"].as_u64().unwrap(), at);
    }
    answered
}

async fn sse(base: &str, server: &str) -> Value {
    let subscribers = number("BENCH_SUBSCRIBERS", 10_000);
    let paced = number("BENCH_PACED_BIDS", 100);
    let pace = number("BENCH_PACE_PER_S", 10);
    let load = number("BENCH_LOAD_BIDS", 3_000);
    let concurrency = number("BENCH_CONCURRENCY", 50);
    let (store, jwt) = store_and_tokens().await;
    let admin = make_users(&store, &jwt, 1, Role::Admin).await.remove(0);
    let tokens = make_users(&store, &jwt, paced + 2 * load, Role::User).await;
    let (alone_tokens, rest) = tokens.split_at(load);
    let (paced_tokens, loaded_tokens) = rest.split_at(paced);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let quiet = create_item(&client, base, &admin, "nobody watches").await;
    let watched = create_item(&client, base, &admin, "everybody watches").await;

    let (alone, alone_s) = bid_all(&client, base, alone_tokens, &[quiet], concurrency).await;
    let alone_rate = alone.accepted.load(Ordering::Relaxed) as f64 / alone_s;

    let before = rss_kib(server);
    let cpu = CpuShare::start(server);
    let (stop, stopped) = watch::channel(false);
    let ready = Arc::new(AtomicUsize::new(0));
    let opening = Arc::new(Semaphore::new(OPENING));
    // Each stream holds a connection of its own.
    let streams: Vec<_> = (0..subscribers)
        .map(|_| {
            let paced = paced as u64;
            tokio::spawn(subscribe(
                client.clone(),
                format!("{base}/events/{watched}"),
                Arc::clone(&opening),
                Arc::clone(&ready),
                stopped.clone(),
                move |id| id <= paced || id % 10 == 0,
            ))
        })
        .collect();
    let opened = all_ready(&ready, subscribers).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_subscriber = (rss_kib(server).saturating_sub(before)) as f64 / opened.max(1) as f64;

    let mut answered = paced_bids(&client, base, &watched, paced_tokens, pace).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (loaded, loaded_s) = bid_all(&client, base, loaded_tokens, &[watched], concurrency).await;
    let loaded_rate = loaded.accepted.load(Ordering::Relaxed) as f64 / loaded_s;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = cpu.stop();
    stop.send(true).unwrap();
    let mut seen = Vec::with_capacity(streams.len());
    for stream in streams {
        seen.push(stream.await.unwrap());
    }
    let cut = seen.iter().filter(|s| s.cut).count();
    let short = seen
        .iter()
        .filter(|s| !s.cut && s.prices < (paced + load) as u64)
        .count();
    let paced_delays = delays(
        seen.iter()
            .flat_map(|s| s.arrivals.iter())
            .filter(|(id, _)| *id <= paced as u64),
        &answered,
    );
    answered = std::mem::take(&mut loaded.answered.lock().unwrap());
    let loaded_delays = delays(
        seen.iter()
            .flat_map(|s| s.arrivals.iter())
            .filter(|(id, _)| *id > paced as u64),
        &answered,
    );
    json!({
        "mode": "sse",
        "subscribers": subscribers,
        "opened": opened,
        "rss_per_subscriber_kib": two(per_subscriber),
        "paced": { "bids": paced, "per_s": pace, "delay": spread(&paced_delays) },
        "alone_bids_per_s": alone_rate.round(),
        "fanning_out_bids_per_s": loaded_rate.round(),
        "fanning_out_ratio": two(loaded_rate / alone_rate.max(f64::EPSILON)),
        "fanning_out_p99_bid_ms": two(percentile(&sorted(&loaded.latencies.lock().unwrap()), 0.99)),
        "fanning_out_delay": spread(&loaded_delays),
        "streams_cut": cut,
        "streams_missing_events": short,
        "generator_cpu": cpu["generator_cpu"],
        "server_cpu": cpu["server_cpu"],
    })
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values
}

/// An authenticated socket held open (a ticket fetched for it just
/// before, as they last 30 s): answers pings (tungstenite does), and
/// reports when its first `outbid` notification arrived.
async fn hold_socket(
    client: reqwest::Client,
    base: String,
    token: String,
    opening: Arc<Semaphore>,
    ready: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) -> Option<Instant> {
    let permit = opening.acquire_owned().await.unwrap();
    let response = client
        .post(format!("{base}/api/v1/ws-ticket"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201, "a ticket");
    let body: Value = response.json().await.unwrap();
    let url = format!(
        "{}/ws?ticket={}",
        base.replacen("http", "ws", 1),
        body["ticket"].as_str().unwrap()
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a socket");
    drop(permit);
    ready.fetch_add(1, Ordering::Relaxed);
    let mut outbid = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return outbid,
            message = socket.next() => match message {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                    if outbid.is_none() && text.contains("\"outbid\"") {
                        outbid = Some(Instant::now());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return outbid,
            }
        }
    }
}

async fn ws(base: &str, server: &str) -> Value {
    let sockets = number("BENCH_SOCKETS", 10_000);
    let notified = number("BENCH_NOTIFIED", 200).min(sockets);
    let pace = number("BENCH_PACE_PER_S", 10);
    let (store, jwt) = store_and_tokens().await;
    let admin = make_users(&store, &jwt, 1, Role::Admin).await.remove(0);
    let tokens = make_users(&store, &jwt, sockets, Role::User).await;
    let client = reqwest::Client::new();
    let item = create_item(&client, base, &admin, "a chain of outbids").await;

    let before = rss_kib(server);
    let cpu = CpuShare::start(server);
    let (stop, stopped) = watch::channel(false);
    let ready = Arc::new(AtomicUsize::new(0));
    let opening = Arc::new(Semaphore::new(OPENING));
    let held: Vec<_> = tokens
        .iter()
        .map(|token| {
            tokio::spawn(hold_socket(
                client.clone(),
                base.to_owned(),
                token.clone(),
                Arc::clone(&opening),
                Arc::clone(&ready),
                stopped.clone(),
            ))
        })
        .collect();
    let opened = all_ready(&ready, sockets).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let per_socket = (rss_kib(server).saturating_sub(before)) as f64 / opened.max(1) as f64;

    // Bid k outbids bidder k - 1, whose socket is told.
    let answered = paced_bids(&client, base, &item, &tokens[..notified], pace).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu = cpu.stop();
    stop.send(true).unwrap();
    let mut told = Vec::with_capacity(held.len());
    for socket in held {
        told.push(socket.await.unwrap());
    }
    // Bidder k (0-based) placed the item's (k + 1)-th bid and was outbid by
    // the next one.
    let mut delays: Vec<f64> = told[..notified.saturating_sub(1)]
        .iter()
        .enumerate()
        .filter_map(|(k, arrived)| {
            let cause = answered.get(&(k as u64 + 2))?;
            Some(
                arrived
                    .as_ref()?
                    .saturating_duration_since(*cause)
                    .as_secs_f64()
                    * 1000.0,
            )
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    json!({
        "mode": "ws",
        "sockets": sockets,
        "opened": opened,
        "rss_per_socket_kib": two(per_socket),
        "notifications": notified.saturating_sub(1),
        "delay": spread(&delays),
        "generator_cpu": cpu["generator_cpu"],
        "server_cpu": cpu["server_cpu"],
    })
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let base = env("BENCH_BASE_URL", "http://127.0.0.1:18084");
        let server = env("BENCH_SERVER_PID", "self");
        for mode in env("BENCH_MODES", "sse,ws").split(',') {
            let result = match mode {
                "sse" => sse(&base, &server).await,
                "ws" => ws(&base, &server).await,
                other => panic!("unknown mode {other}"),
            };
            println!("{result}");
        }
    });
}
