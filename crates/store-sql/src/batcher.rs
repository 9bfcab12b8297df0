//! Hot items without a lock convoy: concurrent bids queue here and are
//! decided together, in arrival order, in one transaction
//! ([`crate::bidding`]).
//!
//! Items are spread over [`SHARDS`] queues by id; an item always lands in the
//! same one. One drainer task per shard with waiting bids takes up to
//! [`MAX_BATCH`] of them at a time, runs their transaction, answers each bid
//! after the commit, and stops when the queue is empty. A bid that arrives
//! while a batch is in flight joins the next one, so under load batches grow
//! by themselves and a lone bid waits for nobody. Many bids on one hot item
//! share one lock; bids on many items share one commit; and the shards keep
//! one stuck item from holding up bids on most others. Across instances the
//! row locks still serialize the batches.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use pp_domain::ports::{AcceptedBid, BidDecision, PlaceBidError};
use pp_domain::{BidId, ItemId};
use tokio::sync::oneshot;

/// The most bids decided in one transaction.
pub(crate) const MAX_BATCH: usize = 64;

/// Queues, each with at most one transaction in flight.
pub(crate) const SHARDS: usize = 4;

/// The queue of an item's bids.
pub(crate) fn shard_of(item: ItemId) -> usize {
    let bytes = item.as_uuid().as_u128();
    // UUIDv7 starts with the time: mix in the random tail.
    usize::try_from((bytes ^ (bytes >> 64)) % SHARDS as u128).unwrap_or(0)
}

/// A bid waiting for its item's next transaction.
pub(crate) struct PendingBid {
    /// What to decide, with the clock to read `now` from under the lock.
    pub(crate) decision: BidDecision,
    /// The id the bid gets if accepted.
    pub(crate) bid_id: BidId,
    /// The offer, sealed before any lock was taken.
    pub(crate) sealed_offer: Vec<u8>,
    /// Where its outcome goes once the transaction has ended.
    pub(crate) reply: oneshot::Sender<Result<AcceptedBid, PlaceBidError>>,
}

/// The waiting bids of every shard that has a drainer running. A shard has
/// an entry exactly while its drainer runs.
#[derive(Default)]
pub(crate) struct BidQueues {
    waiting: Mutex<HashMap<usize, Vec<PendingBid>>>,
}

impl std::fmt::Debug for BidQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items = self.waiting.lock().map_or(0, |waiting| waiting.len());
        f.debug_struct("BidQueues")
            .field("busy_shards", &items)
            .finish()
    }
}

impl BidQueues {
    /// Queues a bid; `true` when its shard had no drainer and the caller
    /// must start one.
    pub(crate) fn enqueue(&self, shard: usize, bid: PendingBid) -> bool {
        let Ok(mut waiting) = self.waiting.lock() else {
            // Only a panic while holding the lock poisons it; the bid is
            // answered with an error when `bid.reply` is dropped here.
            return false;
        };
        match waiting.entry(shard) {
            Entry::Occupied(mut queue) => {
                queue.get_mut().push(bid);
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(vec![bid]);
                true
            }
        }
    }

    /// Drops `shard`'s queue and its waiting bids (their callers get an
    /// error), so that its next bid starts a new drainer.
    pub(crate) fn abandon(&self, shard: usize) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.remove(&shard);
        }
    }

    /// Whether no bid is waiting or being decided on any shard.
    pub(crate) fn is_idle(&self) -> bool {
        self.waiting
            .lock()
            .map_or(true, |waiting| waiting.is_empty())
    }

    /// The next batch of `shard`, oldest first; empty when nothing waits, in
    /// which case the shard's drainer must stop (its entry is gone).
    pub(crate) fn next_batch(&self, shard: usize) -> Vec<PendingBid> {
        let Ok(mut waiting) = self.waiting.lock() else {
            return Vec::new();
        };
        let Some(queue) = waiting.get_mut(&shard) else {
            return Vec::new();
        };
        if queue.is_empty() {
            waiting.remove(&shard);
            return Vec::new();
        }
        let take = queue.len().min(MAX_BATCH);
        queue.drain(..take).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pp_domain::engine::BidCommand;
    use pp_domain::ports::SystemClock;
    use pp_domain::{BidOffer, Money, UserId};

    use super::*;

    fn pending(
        item: ItemId,
    ) -> (
        PendingBid,
        oneshot::Receiver<Result<AcceptedBid, PlaceBidError>>,
    ) {
        let (reply, answer) = oneshot::channel();
        let command = BidCommand {
            item,
            bidder: UserId::generate(),
            bidder_may_bid: true,
            offer: BidOffer::plain(Money::new(100).unwrap()),
        };
        let bid = PendingBid {
            decision: BidDecision::new(command, Arc::new(SystemClock)),
            bid_id: BidId::generate(),
            sealed_offer: Vec::new(),
            reply,
        };
        (bid, answer)
    }

    #[test]
    fn the_first_bid_of_an_idle_shard_starts_its_drainer_and_later_ones_join() {
        let queues = BidQueues::default();
        let item = ItemId::generate();
        let shard = shard_of(item);
        let other = (shard + 1) % SHARDS;
        assert!(queues.enqueue(shard, pending(item).0));
        assert!(!queues.enqueue(shard, pending(item).0));
        assert!(queues.enqueue(other, pending(item).0), "shards queue apart");
        assert_eq!(queues.next_batch(shard).len(), 2);
        // Running but empty: the next look ends the drainer and frees the shard.
        assert!(queues.next_batch(shard).is_empty());
        assert!(queues.enqueue(shard, pending(item).0));
        queues.abandon(shard);
        assert!(queues.next_batch(shard).is_empty());
    }

    #[test]
    fn batches_are_capped_and_keep_arrival_order() {
        let queues = BidQueues::default();
        let item = ItemId::generate();
        let mut ids = Vec::new();
        for _ in 0..(MAX_BATCH + 3) {
            let (bid, _) = pending(item);
            ids.push(bid.bid_id);
            queues.enqueue(0, bid);
        }
        let first: Vec<BidId> = queues.next_batch(0).iter().map(|b| b.bid_id).collect();
        assert_eq!(first, ids[..MAX_BATCH]);
        let rest: Vec<BidId> = queues.next_batch(0).iter().map(|b| b.bid_id).collect();
        assert_eq!(rest, ids[MAX_BATCH..]);
        assert!(format!("{queues:?}").contains("busy_shards: 1"));
    }

    #[test]
    fn an_item_always_lands_in_one_shard_and_items_spread_over_all() {
        let items: Vec<ItemId> = (0..200).map(|_| ItemId::generate()).collect();
        let mut used = [0usize; SHARDS];
        for item in &items {
            assert_eq!(shard_of(*item), shard_of(*item));
            used[shard_of(*item)] += 1;
        }
        assert!(used.iter().all(|&n| n > 20), "{used:?}");
    }
}
