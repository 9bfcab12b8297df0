//! What keeps many open live connections bounded and cheap: a cap on how
//! many one client address (SSE) or one account (WebSocket) may hold open on
//! this instance, and one shared database read per watched item per
//! keep-alive instead of one per stream.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use pp_domain::{ItemId, ListedItem};

use crate::problem::ApiError;

/// Open connections per key, at most `max` each.
#[derive(Debug)]
pub struct OpenStreams<K> {
    open: Mutex<HashMap<K, usize>>,
    max: usize,
}

/// One open connection, counted until it is dropped (however the
/// connection ends).
#[derive(Debug)]
pub struct StreamSlot<K: Eq + Hash + Clone> {
    owner: Arc<OpenStreams<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone> OpenStreams<K> {
    /// At most `max` open connections per key.
    #[must_use]
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(OpenStreams {
            open: Mutex::new(HashMap::new()),
            max,
        })
    }

    /// A slot for one more connection of `key`.
    ///
    /// # Errors
    /// 429 `too_many_streams` when `key` already holds the most it may.
    pub fn open(self: &Arc<Self>, key: K) -> Result<StreamSlot<K>, ApiError> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "at most {} live connections may be open at once; close one first",
                    self.max
                ),
            ));
        }
        *count += 1;
        Ok(StreamSlot {
            owner: Arc::clone(self),
            key,
        })
    }

    /// How many connections `key` holds open.
    #[must_use]
    pub fn count(&self, key: &K) -> usize {
        self.open
            .lock()
            .map_or(0, |open| open.get(key).copied().unwrap_or(0))
    }
}

impl<K: Eq + Hash + Clone> Drop for StreamSlot<K> {
    fn drop(&mut self) {
        if let Ok(mut open) = self.owner.open.lock()
            && let Some(count) = open.get_mut(&self.key)
        {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The latest read of an item, if any, and when it was made.
type LatestRead = Arc<tokio::sync::Mutex<Option<(Instant, ListedItem)>>>;

/// One database read of an item shared by every stream of it on this
/// instance: a read younger than `fresh_for` is handed out again, and
/// streams that need a new one at the same moment wait for a single read.
#[derive(Debug)]
pub struct SharedReads {
    latest: Mutex<HashMap<ItemId, LatestRead>>,
    fresh_for: Duration,
}

impl SharedReads {
    /// Reads younger than `fresh_for` are shared.
    #[must_use]
    pub fn new(fresh_for: Duration) -> Self {
        SharedReads {
            latest: Mutex::new(HashMap::new()),
            fresh_for,
        }
    }

    /// `item` as `read` returns it, or as another stream read it less
    /// than `fresh_for` ago.
    ///
    /// # Errors
    /// `read`'s, shared by nobody: the next caller reads again.
    pub async fn item<E, F, Fut>(&self, item: ItemId, read: F) -> Result<Option<ListedItem>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<ListedItem>, E>>,
    {
        let latest = self.entry(item);
        let mut latest = latest.lock().await;
        if let Some((at, listed)) = latest.as_ref()
            && at.elapsed() < self.fresh_for
        {
            return Ok(Some(listed.clone()));
        }
        metrics::counter!("live_item_reads_total", "reason" => "keep_alive").increment(1);
        let listed = read().await?;
        *latest = listed.clone().map(|listed| (Instant::now(), listed));
        Ok(listed)
    }

    fn entry(&self, item: ItemId) -> LatestRead {
        let Ok(mut latest) = self.latest.lock() else {
            // A panic poisoned the map: read alone rather than fail.
            return LatestRead::default();
        };
        // Items nobody is reading any more are swept once they outnumber
        // the watched ones.
        if latest.len() >= 1024 && latest.len().is_power_of_two() {
            latest.retain(|_, entry| Arc::strong_count(entry) > 1);
        }
        Arc::clone(latest.entry(item).or_default())
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
            },
            standing: PublicStanding::default(),
        }
    }

    #[test]
    fn a_key_holds_at_most_its_share_and_a_dropped_slot_frees_one() {
        let streams = OpenStreams::new(2);
        let first = streams.open("a").unwrap();
        let _second = streams.open("a").unwrap();
        let refused = streams.open("a").unwrap_err();
        assert_eq!(refused.code(), "too_many_streams");
        let _other = streams.open("b").unwrap();
        drop(first);
        assert_eq!(streams.count(&"a"), 1);
        let _third = streams.open("a").unwrap();
        assert_eq!(streams.count(&"a"), 2);
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
                            Ok::<_, ()>(Some(listed(id)))
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
    async fn a_failed_read_is_not_shared() {
        let reads = SharedReads::new(Duration::from_secs(60));
        let id = ItemId::generate();
        let failed = reads.item(id, || async { Err::<Option<ListedItem>, _>("down") });
        assert_eq!(failed.await, Err("down"));
        let next = reads.item(id, || async { Ok::<_, &str>(Some(listed(id))) });
        assert!(next.await.unwrap().is_some());
    }
}
