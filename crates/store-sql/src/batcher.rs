//! The instance's one bid queue: concurrent bids wait here and a drainer
//! takes up to [`MAX_BATCH`] at a time into one transaction
//! ([`crate::bidding`]). Why, and how it behaves under load: the one
//! description of the design, docs/ARCHITECTURE.md, "The bid path".

use std::sync::Mutex;

use pp_domain::BidId;
use pp_domain::ledger::Salt;
use pp_domain::ports::{AcceptedBid, BidDecision, PlaceBidError};
use tokio::sync::oneshot;

/// The most bids decided in one transaction.
pub(crate) const MAX_BATCH: usize = 64;

/// A bid waiting for the next transaction.
pub(crate) struct PendingBid {
    /// What to decide, with the clock to read `now` from under the lock.
    pub(crate) decision: BidDecision,
    /// The id the bid gets if accepted.
    pub(crate) bid_id: BidId,
    /// The offer and its ledger salt, sealed before any lock was taken.
    pub(crate) sealed_offer: Vec<u8>,
    /// The ledger salt sealed with the offer.
    pub(crate) salt: Salt,
    /// Where its outcome goes once the transaction has ended.
    pub(crate) reply: oneshot::Sender<Result<AcceptedBid, PlaceBidError>>,
}

/// The waiting bids, present exactly while the drainer runs.
#[derive(Default)]
pub(crate) struct BidQueue {
    waiting: Mutex<Option<Vec<PendingBid>>>,
}

impl std::fmt::Debug for BidQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self
            .waiting
            .lock()
            .map_or(0, |waiting| waiting.as_ref().map_or(0, Vec::len));
        f.debug_struct("BidQueue")
            .field("waiting", &waiting)
            .finish()
    }
}

impl BidQueue {
    /// Queues a bid; `true` when no drainer ran and the caller must start
    /// one.
    pub(crate) fn enqueue(&self, bid: PendingBid) -> bool {
        let Ok(mut waiting) = self.waiting.lock() else {
            // Only a panic while holding the lock poisons it; the bid is
            // answered with an error when `bid.reply` is dropped here.
            return false;
        };
        match waiting.as_mut() {
            Some(queue) => {
                queue.push(bid);
                false
            }
            None => {
                *waiting = Some(vec![bid]);
                true
            }
        }
    }

    /// Drops the queue and its waiting bids (their callers get an error), so
    /// that the next bid starts a new drainer.
    pub(crate) fn abandon(&self) {
        if let Ok(mut waiting) = self.waiting.lock() {
            *waiting = None;
        }
    }

    /// Whether no bid is waiting or being decided.
    pub(crate) fn is_idle(&self) -> bool {
        self.waiting
            .lock()
            .map_or(true, |waiting| waiting.is_none())
    }

    /// The next batch, oldest first; empty when nothing waits, in which case
    /// the drainer must stop (the queue is gone).
    pub(crate) fn next_batch(&self) -> Vec<PendingBid> {
        let Ok(mut waiting) = self.waiting.lock() else {
            return Vec::new();
        };
        let Some(queue) = waiting.as_mut() else {
            return Vec::new();
        };
        if queue.is_empty() {
            *waiting = None;
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
    use pp_domain::{BidOffer, ItemId, Money, UserId};

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
            salt: Salt::ZERO,
            reply,
        };
        (bid, answer)
    }

    #[test]
    fn the_first_bid_starts_the_drainer_and_later_ones_join_whatever_their_item() {
        let queue = BidQueue::default();
        assert!(queue.is_idle());
        assert!(queue.enqueue(pending(ItemId::generate()).0));
        assert!(!queue.enqueue(pending(ItemId::generate()).0));
        assert!(!queue.is_idle());
        assert_eq!(queue.next_batch().len(), 2);
        // Running but empty: the next look ends the drainer.
        assert!(!queue.is_idle());
        assert!(queue.next_batch().is_empty());
        assert!(queue.is_idle());
        assert!(queue.enqueue(pending(ItemId::generate()).0));
    }

    #[test]
    fn an_abandoned_queue_drops_its_bids_and_the_next_bid_starts_a_drainer() {
        let queue = BidQueue::default();
        let (bid, mut answer) = pending(ItemId::generate());
        assert!(queue.enqueue(bid));
        queue.abandon();
        assert!(queue.is_idle());
        assert!(
            answer.try_recv().is_err(),
            "the waiting bid's reply is gone"
        );
        assert!(queue.next_batch().is_empty());
        assert!(queue.enqueue(pending(ItemId::generate()).0));
    }

    #[test]
    fn batches_are_capped_and_keep_arrival_order() {
        let queue = BidQueue::default();
        let item = ItemId::generate();
        let mut ids = Vec::new();
        for _ in 0..(MAX_BATCH + 3) {
            let (bid, _) = pending(item);
            ids.push(bid.bid_id);
            queue.enqueue(bid);
        }
        assert!(format!("{queue:?}").contains(&format!("waiting: {}", MAX_BATCH + 3)));
        let first: Vec<BidId> = queue.next_batch().iter().map(|b| b.bid_id).collect();
        assert_eq!(first, ids[..MAX_BATCH]);
        let rest: Vec<BidId> = queue.next_batch().iter().map(|b| b.bid_id).collect();
        assert_eq!(rest, ids[MAX_BATCH..]);
    }
}
