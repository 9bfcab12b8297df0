//! `make bench-live`' load generator (issue 21): live fan-out against a
//! running server (`BENCH_SERVER_PID` names it, for its memory and CPU).
//!
//! - **sse**: a warm-up, then hot-item bids/s with nobody watching; then
//!   `BENCH_SUBSCRIBERS` SSE streams of another item (the server's memory
//!   per stream, once all have their snapshot and again after the load);
//!   then `BENCH_PACED_BIDS` bids on the watched item at `BENCH_PACE_PER_S`
//!   (how long after each bid's 201 every subscriber has its `price`
//!   event); then hot-item bids on the watched item (bids/s while fanning
//!   out, against the first figure, and the delay of every tenth event
//!   meanwhile). Every stream is checked to end at the item's last bid,
//!   with no id skipped or repeated.
//! - **ws**: `BENCH_SOCKETS` authenticated WebSockets held open idle (the
//!   server's memory per socket); then a chain of `BENCH_NOTIFIED` bids,
//!   each outbidding the previous bidder, whose `outbid` notification is
//!   timed from the 201 of the bid that caused it.
//!
//! Each event is timestamped as it arrives (an event published before its
//! bid's 201 reached the generator counts as no delay). One JSON line per
//! mode, with the CPUs this generator and the server kept busy in each
//! measured phase (the generator must not be what limits the figures).
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

/// How long the connections get to finish once the bench is over.
const DRAIN: Duration = Duration::from_secs(30);

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    /// When sampled `price` events arrived, by id.
    arrivals: Vec<(u64, Instant)>,
    /// The id of the last `price` event.
    last: u64,
    /// A `price` event came whose id was not the last one's next.
    gaps: u64,
    /// A `price` event came again.
    repeats: u64,
    /// Its stream ended, or never opened, before the bench did.
    cut: bool,
}

impl Seen {
    fn cut() -> Self {
        Seen {
            cut: true,
            ..Seen::default()
        }
    }

    fn price(&mut self, id: u64, at: Instant, sampled: bool) {
        if id <= self.last {
            self.repeats += 1;
        } else if id != self.last + 1 {
            self.gaps += 1;
        }
        self.last = self.last.max(id);
        if sampled {
            self.arrivals.push((id, at));
        }
    }
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
    let permit = opening.acquire_owned().await.unwrap();
    let opened = tokio::time::timeout(Duration::from_secs(60), client.get(url).send()).await;
    let Ok(Ok(response)) = opened else {
        return Seen::cut();
    };
    if response.status().as_u16() != 200 {
        return Seen::cut();
    }
    let mut seen = Seen::default();
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
                            let id = message.id.as_deref().and_then(|id| id.parse().ok()).unwrap_or(0);
                            seen.price(id, at, sampled(id));
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

/// What the tasks returned within [`DRAIN`]; `late` for each that did not.
async fn gather<T>(tasks: Vec<tokio::task::JoinHandle<T>>, late: impl Fn() -> T) -> Vec<T> {
    let deadline = Instant::now() + DRAIN;
    let mut done = Vec::with_capacity(tasks.len());
    for task in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        done.push(match tokio::time::timeout(left, task).await {
            Ok(Ok(value)) => value,
            _ => late(),
        });
    }
    done
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

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values
}

/// Bids on `item` one after another, `per_s` a second, one per token,
/// each higher than the last; the 201 of each by the bid count it reports.
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
        let (response, at) = loop {
            let response = client
                .post(format!("{base}/api/v1/items/{item}/bid"))
                .bearer_auth(token)
                .json(&json!({ "amount": 100 + n }))
                .send()
                .await
                .unwrap();
            let at = Instant::now();
            // The store busy: tried again, as a client would.
            if response.status().as_u16() != 503 {
                break (response, at);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
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
    let warm_up = load.min(500);
    let (store, jwt) = store_and_tokens().await;
    let admin = make_users(&store, &jwt, 1, Role::Admin).await.remove(0);
    let tokens = make_users(&store, &jwt, warm_up + paced + 2 * load, Role::User).await;
    let (warm_up_tokens, rest) = tokens.split_at(warm_up);
    let (alone_tokens, rest) = rest.split_at(load);
    let (paced_tokens, loaded_tokens) = rest.split_at(paced);
    let client = support::client(concurrency);
    let warm = create_item(&client, base, &admin, "warming up").await;
    let quiet = create_item(&client, base, &admin, "nobody watches").await;
    let watched = create_item(&client, base, &admin, "everybody watches").await;

    bid_all(&client, base, warm_up_tokens, &[warm], concurrency).await;
    let cpu = CpuShare::start(server);
    let (alone, alone_s) = bid_all(&client, base, alone_tokens, &[quiet], concurrency).await;
    let alone_cpu = cpu.stop();
    let alone_rate = alone.accepted.load(Ordering::Relaxed) as f64 / alone_s;

    let before = rss_kib(server);
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
    let per_stream = |rss: u64| two(rss.saturating_sub(before) as f64 / opened.max(1) as f64);
    let idle = per_stream(rss_kib(server));

    let paced_answered = paced_bids(&client, base, &watched, paced_tokens, pace).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu = CpuShare::start(server);
    let (loaded, loaded_s) = bid_all(&client, base, loaded_tokens, &[watched], concurrency).await;
    let loaded_cpu = cpu.stop();
    let loaded_rate = loaded.accepted.load(Ordering::Relaxed) as f64 / loaded_s;
    let loaded_answered = std::mem::take(&mut *loaded.answered.lock().unwrap());
    // Where every stream should end: the item's last bid.
    let final_id = loaded_answered
        .keys()
        .chain(paced_answered.keys())
        .copied()
        .max()
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_load = per_stream(rss_kib(server));
    stop.send(true).unwrap();
    let seen = gather(streams, Seen::cut).await;
    let arrivals = |range: std::ops::RangeInclusive<u64>| {
        seen.iter()
            .flat_map(|s| s.arrivals.iter())
            .filter(move |(id, _)| range.contains(id))
    };
    let paced_delays = delays(arrivals(1..=paced as u64), &paced_answered);
    let loaded_delays = delays(arrivals(paced as u64 + 1..=u64::MAX), &loaded_answered);
    json!({
        "mode": "sse",
        "subscribers": subscribers,
        "opened": opened,
        "rss_per_subscriber_kib": idle,
        "rss_per_subscriber_after_load_kib": after_load,
        "paced": { "bids": paced, "per_s": pace, "delay": spread(&paced_delays) },
        "alone_bids_per_s": alone_rate.round(),
        "alone_cpu": alone_cpu,
        "fanning_out_bids_per_s": loaded_rate.round(),
        "fanning_out_ratio": two(loaded_rate / alone_rate.max(f64::EPSILON)),
        "fanning_out_p99_bid_ms": two(percentile(&sorted(&loaded.latencies.lock().unwrap()), 0.99)),
        "fanning_out_delay": spread(&loaded_delays),
        "fanning_out_cpu": loaded_cpu,
        "unavailable": alone.unavailable.load(Ordering::Relaxed) + loaded.unavailable.load(Ordering::Relaxed),
        "final_id": final_id,
        "streams_cut": seen.iter().filter(|s| s.cut).count(),
        "streams_with_gaps": seen.iter().filter(|s| s.gaps > 0).count(),
        "streams_with_repeats": seen.iter().filter(|s| s.repeats > 0).count(),
        "streams_short": seen.iter().filter(|s| !s.cut && s.last < final_id).count(),
    })
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
    let opened = tokio::time::timeout(
        Duration::from_secs(60),
        tokio_tungstenite::connect_async(url),
    )
    .await;
    let Ok(Ok((mut socket, _))) = opened else {
        return None;
    };
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
    let client = support::client(OPENING);
    let item = create_item(&client, base, &admin, "a chain of outbids").await;

    let before = rss_kib(server);
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
    let per_socket = rss_kib(server).saturating_sub(before) as f64 / opened.max(1) as f64;

    // Bid k outbids bidder k - 1, whose socket is told.
    let cpu = CpuShare::start(server);
    let answered = paced_bids(&client, base, &item, &tokens[..notified], pace).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu = cpu.stop();
    stop.send(true).unwrap();
    let told = gather(held, || None).await;
    // Bidder k (0-based) placed the item's (k + 1)-th bid and was outbid by
    // the next one.
    let outbid = &told[..notified.saturating_sub(1)];
    let mut delays: Vec<f64> = outbid
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
        "notifications": outbid.len(),
        "told": outbid.iter().filter(|t| t.is_some()).count(),
        "delay": spread(&delays),
        "cpu": cpu,
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
