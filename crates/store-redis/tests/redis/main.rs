//! The Redis adapter against a real Redis (a unique key prefix per test),
//! and against one that is gone or never answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;
use std::time::Duration;

use pp_domain::TokenId;
use pp_domain::auth::ports::{RateLimit, RateLimiter, RevocationList};
use pp_store_redis::{Redis, RedisRateLimiter, RedisRevocationList, RedisSettings};
use redis::AsyncCommands;

fn url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn settings(url: &str) -> RedisSettings {
    RedisSettings {
        url: url.to_owned(),
        prefix: format!("pp-test:{}:", uuid::Uuid::new_v4().simple()),
        timeout: Duration::from_millis(300),
    }
}

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Finishes well within a few timeouts, or the test fails: nothing may hang.
async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(3), future)
        .await
        .expect("the call hung")
}

#[tokio::test]
async fn a_revoked_token_is_found_and_its_key_expires_with_the_token() {
    let settings = settings(&url());
    let redis = Arc::new(Redis::connect(&settings).unwrap());
    assert!(redis.ping().await);
    let list = RedisRevocationList::new(Arc::clone(&redis), Duration::from_secs(5));
    let (revoked, other) = (TokenId::generate(), TokenId::generate());
    list.revoke(revoked, chrono::Utc::now() + chrono::Duration::seconds(60))
        .await
        .unwrap();
    assert!(list.is_revoked(revoked).await.unwrap());
    assert!(!list.is_revoked(other).await.unwrap());

    let ttl: i64 = raw()
        .await
        .pttl(format!("{}revoked:{revoked}", settings.prefix))
        .await
        .unwrap();
    assert!(
        (60_000..=65_000).contains(&ttl),
        "ttl {ttl} ms is remaining lifetime + leeway"
    );
}

#[tokio::test]
async fn the_window_is_shared_atomic_and_every_key_gets_a_ttl() {
    let settings = settings(&url());
    let redis = Arc::new(Redis::connect(&settings).unwrap());
    // Two limiters stand for two instances.
    let (a, b) = (
        RedisRateLimiter::new(Arc::clone(&redis)),
        Arc::new(RedisRateLimiter::new(Arc::clone(&redis))),
    );
    let limit = RateLimit {
        max: 10,
        window: Duration::from_secs(10),
    };
    let hits: Vec<_> = (0..25)
        .map(|_| {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.hit("ip:203.0.113.7", limit).await })
        })
        .collect();
    let mut allowed = 0;
    for hit in hits {
        allowed += usize::from(hit.await.unwrap().allowed);
    }
    assert_eq!(allowed, 10);
    let refused = a.hit("ip:203.0.113.7", limit).await;
    assert!(!refused.allowed);
    assert_eq!((refused.limit, refused.remaining), (10, 0));
    assert!(refused.reset_after > Duration::from_secs(9) && refused.reset_after <= limit.window);
    assert!(
        a.hit("ip:203.0.113.8", limit).await.allowed,
        "other keys are untouched"
    );

    let ttl: i64 = raw()
        .await
        .pttl(format!("{}rate:ip:203.0.113.7", settings.prefix))
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 10_000, "ttl {ttl}");
}

#[tokio::test]
async fn a_slot_frees_when_the_oldest_hit_leaves_the_window() {
    let redis = Arc::new(Redis::connect(&settings(&url())).unwrap());
    let limiter = RedisRateLimiter::new(redis);
    let limit = RateLimit {
        max: 2,
        window: Duration::from_millis(400),
    };
    assert!(limiter.hit("k", limit).await.allowed);
    assert!(limiter.hit("k", limit).await.allowed);
    assert!(!limiter.hit("k", limit).await.allowed);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let again = limiter.hit("k", limit).await;
    assert!(again.allowed);
    assert_eq!(again.remaining, 1);
}

#[tokio::test]
async fn with_redis_gone_the_blacklist_reports_it_and_limits_fall_back_to_this_instance() {
    // Nothing listens on port 1.
    let redis = Arc::new(Redis::connect(&settings("redis://127.0.0.1:1")).unwrap());
    assert!(!bounded(redis.ping()).await);
    let list = RedisRevocationList::new(Arc::clone(&redis), Duration::from_secs(5));
    assert!(bounded(list.is_revoked(TokenId::generate())).await.is_err());
    assert!(
        bounded(list.revoke(TokenId::generate(), chrono::Utc::now()))
            .await
            .is_err()
    );

    let limiter = RedisRateLimiter::new(redis);
    let limit = RateLimit {
        max: 2,
        window: Duration::from_secs(60),
    };
    let decisions: Vec<bool> =
        futures::future::join_all((0..3).map(|_| bounded(limiter.hit("k", limit))))
            .await
            .into_iter()
            .map(|d| d.allowed)
            .collect();
    assert_eq!(decisions.iter().filter(|allowed| **allowed).count(), 2);
}

#[tokio::test]
async fn a_redis_that_never_answers_costs_at_most_the_timeout() {
    // Accepts connections and never replies: a hung server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let redis = Arc::new(Redis::connect(&settings(&format!("redis://127.0.0.1:{port}"))).unwrap());
    let list = RedisRevocationList::new(Arc::clone(&redis), Duration::from_secs(5));
    assert!(bounded(list.is_revoked(TokenId::generate())).await.is_err());
    assert!(!bounded(redis.ping()).await);
    let limiter = RedisRateLimiter::new(redis);
    let decision = bounded(limiter.hit(
        "k",
        RateLimit {
            max: 1,
            window: Duration::from_secs(1),
        },
    ))
    .await;
    assert!(decision.allowed, "falls back to this instance's window");
}

fn price(item: pp_domain::ItemId, bid_count: u64) -> pp_domain::live::ItemEvent {
    pp_domain::live::ItemEvent::Price(pp_domain::live::PriceEvent {
        item,
        current_price: pp_domain::Money::new(500).unwrap(),
        minimum_next_bid: 510,
        bid_count,
        at: chrono::DateTime::UNIX_EPOCH,
        closing: pp_domain::soft_close::Closing {
            close_at: chrono::DateTime::UNIX_EPOCH + chrono::Duration::seconds(90),
            extensions_used: 1,
        },
        // The moved close travels with the price to every instance.
        extension: Some(pp_domain::soft_close::Closing {
            close_at: chrono::DateTime::UNIX_EPOCH + chrono::Duration::seconds(90),
            extensions_used: 1,
        }),
        ledger_head: Some(pp_domain::ledger::ChainHash::genesis(item)),
    })
}

#[tokio::test]
async fn events_published_on_one_instance_reach_every_instance_once() {
    use futures::StreamExt;
    use pp_domain::live::LiveSubscriptions;
    use pp_domain::ports::LiveEvents;

    let settings = settings(&url());
    let (hub_a, hub_b) = (
        pp_store_memory::EventHub::new(),
        pp_store_memory::EventHub::new(),
    );
    let a = pp_store_redis::RedisLiveEvents::start(
        Arc::new(Redis::connect(&settings).unwrap()),
        Arc::clone(&hub_a),
    );
    let _b = pp_store_redis::RedisLiveEvents::start(
        Arc::new(Redis::connect(&settings).unwrap()),
        Arc::clone(&hub_b),
    );
    let item = pp_domain::ItemId::generate();
    let mut on_a = hub_a.item_events(item);
    let mut on_b = hub_b.item_events(item);
    // Until B's subscription is up, what A publishes cannot reach it: wait
    // for one event to come through.
    let mut n = 0;
    let first = loop {
        n += 1;
        a.publish(price(item, n));
        match tokio::time::timeout(Duration::from_millis(200), on_b.next()).await {
            Ok(Some(Ok(event))) => break event,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) if n < 25 => {}
            Err(_) => panic!("nothing reached the other instance"),
        }
    };
    assert_eq!(first.id(), n);
    a.publish(price(item, n + 1));
    let next = bounded(on_b.next()).await.unwrap().unwrap();
    assert_eq!(next.id(), n + 1);
    // The publishing instance got each event once, directly, not again from Redis.
    for expected in 1..=n + 1 {
        assert_eq!(bounded(on_a.next()).await.unwrap().unwrap().id(), expected);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), on_a.next())
            .await
            .is_err(),
        "no echo from Redis"
    );
}

#[tokio::test]
async fn with_redis_gone_events_still_reach_local_subscribers() {
    use futures::StreamExt;
    use pp_domain::live::LiveSubscriptions;
    use pp_domain::ports::LiveEvents;

    let hub = pp_store_memory::EventHub::new();
    let events = pp_store_redis::RedisLiveEvents::start(
        Arc::new(Redis::connect(&settings("redis://127.0.0.1:1")).unwrap()),
        Arc::clone(&hub),
    );
    let item = pp_domain::ItemId::generate();
    let mut local = hub.item_events(item);
    events.publish(price(item, 1));
    assert_eq!(bounded(local.next()).await.unwrap().unwrap().id(), 1);
}

/// The liveness check a subscription relies on: Redis answers a PING on a
/// subscribed connection.
#[tokio::test]
async fn redis_answers_a_ping_on_a_subscribed_connection() {
    let client = redis::Client::open(url()).unwrap();
    let (mut sink, _messages) = client.get_async_pubsub().await.unwrap().split();
    sink.subscribe(format!("pp-test:{}:live", uuid::Uuid::new_v4().simple()))
        .await
        .unwrap();
    bounded(sink.ping::<redis::Value>()).await.unwrap();
}

/// One command of a RESP request in `buffer` (an array of bulk strings) and
/// the bytes it took, once it has arrived whole.
fn resp_command(buffer: &[u8]) -> Option<(Vec<String>, usize)> {
    fn line(buffer: &[u8], from: usize) -> Option<(&str, usize)> {
        let end = from + buffer.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((std::str::from_utf8(&buffer[from..end]).ok()?, end + 2))
    }
    let (count, mut at) = line(buffer, 0)?;
    let count: usize = count.strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let (length, start) = line(buffer, at)?;
        let length: usize = length.strip_prefix('$')?.parse().ok()?;
        let arg = buffer.get(start..start + length)?;
        args.push(String::from_utf8_lossy(arg).into_owned());
        at = start + length + 2;
        if buffer.len() < at {
            return None;
        }
    }
    Some((args, at))
}

/// A Redis stand-in whose connections go silent once subscribed, as one
/// that went half-open would: they confirm SUBSCRIBE, then never answer a
/// PING. Counts the subscriptions made to it.
async fn silent_once_subscribed() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let subscriptions = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&subscriptions);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let (mut buffer, mut chunk) = (Vec::new(), [0u8; 4096]);
                while let Ok(read @ 1..) = socket.read(&mut chunk).await {
                    buffer.extend_from_slice(&chunk[..read]);
                    while let Some((command, used)) = resp_command(&buffer) {
                        buffer.drain(..used);
                        let answer = match command[0].to_ascii_uppercase().as_str() {
                            "SUBSCRIBE" => {
                                counted.fetch_add(1, Ordering::SeqCst);
                                let channel = &command[1];
                                format!(
                                    "*3\r\n$9\r\nsubscribe\r\n${}\r\n{channel}\r\n:1\r\n",
                                    channel.len()
                                )
                            }
                            "PING" => continue,
                            _ => "+OK\r\n".to_owned(),
                        };
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, subscriptions)
}

#[tokio::test]
async fn a_subscription_whose_ping_goes_unanswered_subscribes_again() {
    use std::sync::atomic::Ordering;

    let (url, subscriptions) = silent_once_subscribed().await;
    let mut settings = settings(&url);
    // Pings every second, each answered within 100 ms or given up.
    settings.timeout = Duration::from_millis(100);
    let _events = pp_store_redis::RedisLiveEvents::start(
        Arc::new(Redis::connect(&settings).unwrap()),
        pp_store_memory::EventHub::new(),
    );
    let mut waited = Duration::ZERO;
    while subscriptions.load(Ordering::SeqCst) < 2 {
        assert!(
            waited < Duration::from_secs(10),
            "still waiting on the silent subscription after {waited:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
}

/// A `redis-server` speaking only TLS, with a fresh self-signed
/// certificate, on a port of its own; stopped when dropped.
struct TlsRedis {
    port: u16,
    process: std::process::Child,
    _dir: tempfile::TempDir,
}

impl TlsRedis {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let (cert, private) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, key.cert.pem()).unwrap();
        std::fs::write(&private, key.signing_key.serialize_pem()).unwrap();
        // A free port now may be taken before redis binds it: try a few.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut process = std::process::Command::new("redis-server")
                .args([
                    "--port",
                    "0",
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--tls-port")
                .arg(port.to_string())
                .arg("--tls-cert-file")
                .arg(&cert)
                .arg("--tls-key-file")
                .arg(&private)
                .args(["--tls-auth-clients", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("redis-server is installed (make services)");
            for _ in 0..50 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return TlsRedis {
                        port,
                        process,
                        _dir: dir,
                    };
                }
                if process.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = process.kill();
        }
        panic!("redis-server did not start with TLS");
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test]
async fn rediss_urls_speak_tls_and_verify_the_certificate_unless_told_not_to() {
    let server = TlsRedis::start();
    let port = server.port;
    // A self-signed certificate the operator chose to accept.
    let accepted =
        Redis::connect(&settings(&format!("rediss://127.0.0.1:{port}/#insecure"))).unwrap();
    assert!(bounded(accepted.ping()).await);
    let limiter = RedisRateLimiter::new(Arc::new(accepted));
    let limit = RateLimit {
        max: 1,
        window: Duration::from_secs(60),
    };
    assert!(bounded(limiter.hit("tls", limit)).await.allowed);
    assert!(!bounded(limiter.hit("tls", limit)).await.allowed);
    // By default the certificate must chain to a trusted root: this one does not.
    let verified = Redis::connect(&settings(&format!("rediss://127.0.0.1:{port}"))).unwrap();
    assert!(!bounded(verified.ping()).await);
    // And plain text to the TLS port gets nowhere.
    let plain = Redis::connect(&settings(&format!("redis://127.0.0.1:{port}"))).unwrap();
    assert!(!bounded(plain.ping()).await);
}

#[tokio::test]
async fn live_connection_places_are_shared_by_instances_and_lapse_unless_renewed() {
    use pp_domain::live::ConnectionSlots;
    use pp_store_redis::RedisConnectionSlots;

    let shared = settings(&url());
    let one = RedisConnectionSlots::new(Arc::new(Redis::connect(&shared).unwrap()));
    let two = RedisConnectionSlots::new(Arc::new(Redis::connect(&shared).unwrap()));
    let ttl = Duration::from_millis(2_000);
    let first = bounded(one.take("sse:a", 2, ttl)).await.unwrap();
    let renewed = bounded(two.take("sse:a", 2, ttl)).await.unwrap();
    assert!(!first.local && !renewed.local);
    assert!(
        bounded(one.take("sse:a", 2, ttl)).await.is_none(),
        "two instances share the count"
    );
    bounded(one.give_back(&first)).await;
    // A renewal racing the give-back does not bring the place back.
    bounded(one.renew(&first, ttl)).await;
    let _abandoned = bounded(two.take("sse:a", 2, ttl)).await.unwrap();
    // Most of a lease later the renewed one is pushed on; the abandoned one
    // lapses with its first lease.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    bounded(one.renew(&renewed, ttl)).await;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert!(bounded(one.take("sse:a", 2, ttl)).await.is_some());
    assert!(bounded(one.take("sse:a", 2, ttl)).await.is_none());
    // Nothing outlives its longest lease.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let left: i64 = raw()
        .await
        .exists(format!("{}slots:sse:a", shared.prefix))
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn with_redis_gone_live_connection_places_are_counted_on_this_instance() {
    use pp_domain::live::ConnectionSlots;
    use pp_store_redis::RedisConnectionSlots;

    let slots = RedisConnectionSlots::new(Arc::new(
        Redis::connect(&settings("redis://127.0.0.1:1")).unwrap(),
    ));
    let ttl = Duration::from_secs(30);
    let local = bounded(slots.take("ws:ann", 1, ttl)).await.unwrap();
    assert!(local.local);
    assert!(bounded(slots.take("ws:ann", 1, ttl)).await.is_none());
    bounded(slots.give_back(&local)).await;
    assert!(bounded(slots.take("ws:ann", 1, ttl)).await.is_some());
}
