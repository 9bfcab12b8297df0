//! What keeps many open live connections bounded and cheap: a cap on how
//! many one client address (SSE) or one account (WebSocket) may hold open
//! across every instance, and one shared database read per watched item
//! per keep-alive on each instance instead of one per stream.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use futures_util::StreamExt;
use pp_domain::live::{ConnectionSlots, SlotLease};
use pp_domain::{ItemId, ListedItem};
use tokio_util::sync::CancellationToken;

use crate::problem::ApiError;

/// Places for one kind of live connection, at most `max` per key (a
/// client address, an account) across every instance: each is a lease in
/// the [`ConnectionSlots`] port, renewed while its connection lives.
#[derive(Clone)]
pub struct Slots {
    port: Arc<dyn ConnectionSlots>,
    kind: &'static str,
    max: u32,
    ttl: Duration,
    held: Arc<Held>,
}

/// The leases this instance holds of one kind, renewed together by one
/// task: ten thousand open connections cost ten thousand entries in a map,
/// not ten thousand tasks and timers.
#[derive(Default)]
struct Held {
    leases: Mutex<HashMap<u64, SlotLease>>,
    next: std::sync::atomic::AtomicU64,
    /// The renewing task, started again if it ended (the worker whose
    /// runtime it ran on was restarted).
    renewing: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slots")
            .field("kind", &self.kind)
            .field("max", &self.max)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Slots {
    /// At most `max` connections of `kind` per key, each held by a lease of
    /// `ttl` (renewed every third of it while the connection lives, by one
    /// task for all of them, so a crashed instance's leases lapse within
    /// `ttl`).
    #[must_use]
    pub fn new(
        port: Arc<dyn ConnectionSlots>,
        kind: &'static str,
        max: u32,
        ttl: Duration,
    ) -> Self {
        Slots {
            port,
            kind,
            max,
            ttl,
            held: Arc::default(),
        }
    }

    /// Starts the task that renews every held lease each third of `ttl`
    /// unless it runs; it ends when the last clone of these slots is gone.
    fn renew_held(&self) {
        let Ok(mut renewing) = self.held.renewing.lock() else {
            return;
        };
        if renewing.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        *renewing = Some({
            let (port, ttl) = (Arc::clone(&self.port), self.ttl);
            let held = Arc::downgrade(&self.held);
            tokio::spawn(async move {
                let every = ttl / 3;
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    tick.tick().await;
                    let Some(held) = held.upgrade() else { return };
                    let leases: Vec<SlotLease> = held
                        .leases
                        .lock()
                        .map(|leases| leases.values().cloned().collect())
                        .unwrap_or_default();
                    drop(held);
                    futures_util::stream::iter(leases)
                        .for_each_concurrent(RENEWING_AT_ONCE, |lease| {
                            let port = Arc::clone(&port);
                            async move { port.renew(&lease, ttl).await }
                        })
                        .await;
                }
            })
        });
    }

    /// A place for one more connection of `key`, renewed in the background
    /// until the returned slot is dropped: whether or not the connection is
    /// being written to (a client that stopped reading still holds its
    /// place).
    ///
    /// # Errors
    /// 429 `too_many_streams` when `key` holds every place already.
    pub async fn open(&self, key: &str) -> Result<StreamSlot, ApiError> {
        let key = format!("{}:{key}", self.kind);
        let lease = self.port.take(&key, self.max, self.ttl).await.ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "at most {} live connections of this kind may be open at once; close one first",
                    self.max
                ),
            )
        })?;
        self.renew_held();
        let id = self
            .held
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut leases) = self.held.leases.lock() {
            leases.insert(id, lease.clone());
        }
        Ok(StreamSlot {
            port: Arc::clone(&self.port),
            lease,
            id,
            held: Arc::clone(&self.held),
        })
    }
}

/// Leases renewed at once by the renewing task (round trips in flight).
const RENEWING_AT_ONCE: usize = 32;

/// One open connection's place, given back when it is dropped (however the
/// connection ends).
pub struct StreamSlot {
    port: Arc<dyn ConnectionSlots>,
    lease: SlotLease,
    /// Its entry among the held leases.
    id: u64,
    held: Arc<Held>,
}

impl std::fmt::Debug for StreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSlot")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut leases) = self.held.leases.lock() {
            leases.remove(&self.id);
        }
        // A drop cannot wait: given back in the background. Without a
        // runtime (the process is ending) the lease simply lapses.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (port, lease) = (Arc::clone(&self.port), self.lease.clone());
            runtime.spawn(async move { port.give_back(&lease).await });
        }
    }
}

/// An SSE body that, when it ends because the process is stopping, ends
/// with a `retry:` field: browsers reconnect (to another instance, with
/// `Last-Event-ID`) after a delay drawn per stream, so the subscribers of a
/// stopping instance do not all arrive elsewhere in the same instant.
pub struct EndsWithRetry {
    inner: BoxBody,
    stopping: CancellationToken,
    ended: bool,
}

impl std::fmt::Debug for EndsWithRetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndsWithRetry")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// The range the reconnection delay a stopping instance hands out is drawn from.
pub const RECONNECT_SPREAD_MS: std::ops::RangeInclusive<u64> = 500..=3000;

impl EndsWithRetry {
    /// `inner`, followed by a `retry:` field if it ends once `stopping` is
    /// cancelled.
    #[must_use]
    pub fn new(inner: BoxBody, stopping: CancellationToken) -> Self {
        EndsWithRetry {
            inner,
            stopping,
            ended: false,
        }
    }
}

impl MessageBody for EndsWithRetry {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(None) => {
                self.ended = true;
                if !self.stopping.is_cancelled() {
                    return Poll::Ready(None);
                }
                let delay = rand::random_range(RECONNECT_SPREAD_MS);
                Poll::Ready(Some(Ok(Bytes::from(format!("retry: {delay}\n\n")))))
            }
            other => other,
        }
    }
}

/// The latest read of an item (its outcome, failures included) and when
/// it was begun.
type LatestRead = Arc<tokio::sync::Mutex<Option<(Instant, Result<Option<ListedItem>, ApiError>)>>>;

/// Items with a read at hand, and how many there may be before a sweep.
#[derive(Debug)]
struct Latest {
    by_item: HashMap<ItemId, LatestRead>,
    sweep_at: usize,
}

/// Entries kept before the first sweep.
const SWEEP_ABOVE: usize = 1024;

/// One database read of an item shared by every stream of it on this
/// instance: a read younger than `fresh_for` is handed out again, failures
/// included (an outage costs one failed read per item, not one per
/// stream), and streams that need a new one at the same moment wait for a
/// single read.
#[derive(Debug)]
pub struct SharedReads {
    latest: Mutex<Latest>,
    fresh_for: Duration,
}

impl SharedReads {
    /// Reads younger than `fresh_for` are shared.
    #[must_use]
    pub fn new(fresh_for: Duration) -> Self {
        SharedReads {
            latest: Mutex::new(Latest {
                by_item: HashMap::new(),
                sweep_at: SWEEP_ABOVE,
            }),
            fresh_for,
        }
    }

    /// `item` as `read` returns it, or as another stream read it less
    /// than `fresh_for` ago.
    ///
    /// # Errors
    /// `read`'s, or the one another stream's read met within `fresh_for`.
    pub async fn item<F, Fut>(&self, item: ItemId, read: F) -> Result<Option<ListedItem>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<ListedItem>, ApiError>>,
    {
        let stale_before = Instant::now().checked_sub(self.fresh_for);
        self.read(item, stale_before, "keep_alive", read).await
    }

    /// `item` as a read begun at or after `since` found it: a stream that
    /// learnt at `since` that events are missing needs a read that sees
    /// them, and every stream that learnt it then shares one.
    ///
    /// # Errors
    /// `read`'s, or the one the shared read met.
    pub async fn item_since<F, Fut>(
        &self,
        item: ItemId,
        since: Instant,
        read: F,
    ) -> Result<Option<ListedItem>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<ListedItem>, ApiError>>,
    {
        self.read(item, Some(since), "gap", read).await
    }

    async fn read<F, Fut>(
        &self,
        item: ItemId,
        not_before: Option<Instant>,
        reason: &'static str,
        read: F,
    ) -> Result<Option<ListedItem>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<ListedItem>, ApiError>>,
    {
        let latest = self.entry(item);
        let mut latest = latest.lock().await;
        if let Some((begun, outcome)) = latest.as_ref()
            && not_before.is_none_or(|not_before| *begun >= not_before)
        {
            return outcome.clone();
        }
        metrics::counter!("live_item_reads_total", "reason" => reason).increment(1);
        let begun = Instant::now();
        let outcome = read().await;
        *latest = Some((begun, outcome.clone()));
        outcome
    }

    fn entry(&self, item: ItemId) -> LatestRead {
        let Ok(mut latest) = self.latest.lock() else {
            // A panic poisoned the map: read alone rather than fail.
            return LatestRead::default();
        };
        let Latest { by_item, sweep_at } = &mut *latest;
        if !by_item.contains_key(&item) && by_item.len() >= *sweep_at {
            // Items no stream is reading now and whose read went stale.
            let fresh_for = self.fresh_for;
            by_item.retain(|_, entry| {
                Arc::strong_count(entry) > 1
                    || entry.try_lock().map_or(true, |read| {
                        read.as_ref()
                            .is_some_and(|(at, _)| at.elapsed() < fresh_for)
                    })
            });
            *sweep_at = by_item.len().saturating_mul(2).max(SWEEP_ABOVE);
        }
        Arc::clone(by_item.entry(item).or_default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use pp_domain::item::PublicStanding;
    use pp_domain::{Currency, Item, ItemStatus, Money, UserId};

    use super::*;

    fn listed(id: ItemId) -> ListedItem {
        let now = chrono::Utc::now();
        ListedItem {
            item: Item {
                id,
                seller: UserId::generate(),
                title: pp_domain::item::Title::parse("A lamp").unwrap(),
                description: pp_domain::item::Description::parse("").unwrap(),
                currency: Currency::default(),
                base_price: Money::new(100).unwrap(),
                min_increment: Money::new(5).unwrap(),
                close_at: now,
                created_at: now,
                status: ItemStatus::Open,
                soft_close: None,
                extensions_used: 0,
                ledger_head: None,
            },
            standing: PublicStanding::default(),
        }
    }

    /// Places counted in a plain map, to see what a slot takes, renews and
    /// gives back.
    #[derive(Default)]
    struct Counted(std::sync::Mutex<HashMap<String, usize>>, AtomicUsize);

    #[async_trait::async_trait]
    impl ConnectionSlots for Counted {
        async fn take(&self, key: &str, max: u32, _: Duration) -> Option<SlotLease> {
            let mut taken = self.0.lock().unwrap();
            let count = taken.entry(key.to_owned()).or_default();
            (*count < max as usize).then(|| {
                *count += 1;
                SlotLease {
                    key: key.to_owned(),
                    id: count.to_string(),
                    local: true,
                }
            })
        }
        async fn renew(&self, _: &SlotLease, _: Duration) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
        async fn give_back(&self, lease: &SlotLease) {
            *self.0.lock().unwrap().get_mut(&lease.key).unwrap() -= 1;
        }
    }

    /// Everything `body` yields, as text, and whether it failed.
    async fn drained(body: EndsWithRetry) -> (String, bool) {
        let mut body = std::pin::pin!(body);
        let mut text = String::new();
        while let Some(chunk) = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
            match chunk {
                Ok(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => return (text, true),
            }
        }
        (text, false)
    }

    #[tokio::test]
    async fn a_stream_ends_with_a_retry_hint_only_when_the_process_is_stopping() {
        let running = CancellationToken::new();
        let body = EndsWithRetry::new(BoxBody::new("data: a\n\n"), running);
        assert_eq!(drained(body).await, ("data: a\n\n".to_owned(), false));

        let stopping = CancellationToken::new();
        stopping.cancel();
        let body = EndsWithRetry::new(BoxBody::new("data: a\n\n"), stopping.clone());
        let (text, failed) = drained(body).await;
        assert!(!failed);
        let tail = text.strip_prefix("data: a\n\nretry: ").unwrap();
        let delay: u64 = tail.strip_suffix("\n\n").unwrap().parse().unwrap();
        assert!(RECONNECT_SPREAD_MS.contains(&delay), "{delay}");

        // An error is passed on, and nothing follows it but the tail.
        let failing = futures_util::stream::iter([Err::<Bytes, _>(std::io::Error::other("cut"))]);
        let body = EndsWithRetry::new(
            BoxBody::new(actix_web::body::BodyStream::new(failing)),
            stopping,
        );
        assert!(drained(body).await.1);
    }

    #[tokio::test]
    async fn a_key_holds_at_most_its_share_and_a_dropped_slot_gives_its_place_back() {
        let counted = Arc::new(Counted::default());
        let slots = Slots::new(counted.clone(), "sse", 2, Duration::from_secs(45));
        let first = slots.open("a").await.unwrap();
        let _second = slots.open("a").await.unwrap();
        assert_eq!(
            slots.open("a").await.unwrap_err().code(),
            "too_many_streams"
        );
        assert!(slots.open("b").await.is_ok(), "keys are independent");
        drop(first);
        tokio::task::yield_now().await;
        assert_eq!(counted.0.lock().unwrap()["sse:a"], 1);
        assert!(slots.open("a").await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_is_renewed_every_third_of_its_lease_until_it_is_dropped() {
        let counted = Arc::new(Counted::default());
        let slots = Slots::new(counted.clone(), "ws", 1, Duration::from_secs(30));
        // Nobody polls anything of the connection: the renewals go on.
        let slot = slots.open("ann").await.unwrap();
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert_eq!(counted.1.load(Ordering::SeqCst), 3);
        drop(slot);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(
            counted.1.load(Ordering::SeqCst),
            3,
            "no renewal after the drop"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewer_that_ended_is_started_again_by_the_next_slot() {
        let counted = Arc::new(Counted::default());
        let slots = Slots::new(counted.clone(), "ws", 2, Duration::from_secs(30));
        let _first = slots.open("ann").await.unwrap();
        // The worker it ran on was restarted.
        if let Some(task) = slots.held.renewing.lock().unwrap().as_ref() {
            task.abort();
        }
        tokio::task::yield_now().await;
        let _second = slots.open("bob").await.unwrap();
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(counted.1.load(Ordering::SeqCst), 2, "both leases renewed");
    }

    #[tokio::test]
    async fn streams_reading_an_item_together_share_one_read_until_it_is_stale() {
        let reads = Arc::new(SharedReads::new(Duration::from_millis(200)));
        let count = Arc::new(AtomicUsize::new(0));
        let id = ItemId::generate();
        let read_all = || {
            futures_util::future::join_all((0..50).map(|_| {
                let (reads, count) = (Arc::clone(&reads), Arc::clone(&count));
                async move {
                    reads
                        .item(id, || async move {
                            count.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(Some(listed(id)))
                        })
                        .await
                }
            }))
        };
        let first = read_all().await;
        assert!(first.iter().all(|r| r.as_ref().unwrap().is_some()));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        read_all().await;
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_read_is_shared_for_its_window_too() {
        let reads = SharedReads::new(Duration::from_millis(100));
        let id = ItemId::generate();
        let down = || ApiError::for_status(StatusCode::SERVICE_UNAVAILABLE);
        let failed = reads.item(id, || async move { Err(down()) }).await;
        assert_eq!(failed.unwrap_err().code(), "service_unavailable");
        let shared = reads
            .item(id, || async { panic!("the failure is shared") })
            .await;
        assert!(shared.is_err());
        tokio::time::sleep(Duration::from_millis(150)).await;
        let next = reads.item(id, || async move { Ok(Some(listed(id))) });
        assert!(next.await.unwrap().is_some());
    }

    #[test]
    fn items_nobody_reads_are_swept_once_they_pile_up() {
        let reads = SharedReads::new(Duration::ZERO);
        let held = reads.entry(ItemId::generate());
        for _ in 0..SWEEP_ABOVE {
            reads.entry(ItemId::generate());
        }
        let latest = reads.latest.lock().unwrap();
        assert_eq!(latest.by_item.len(), 2, "the held entry and the newest");
        assert!(
            latest
                .by_item
                .values()
                .any(|entry| Arc::ptr_eq(entry, &held))
        );
    }
}
