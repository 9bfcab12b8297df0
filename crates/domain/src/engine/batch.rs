//! Many bids decided together, as the store decides a batch under one
//! transaction: in arrival order, each as if it were placed alone after the
//! ones before it.

use std::collections::{HashMap, HashSet};

use super::{BidCommand, BidRejection, Placement, Standing, place_on};
use crate::ids::{ItemId, UserId};
use crate::item::{Item, Timestamp};

/// The items a batch of bids holds locked: each with its terms and
/// standing, and which bidders already bid on which of them. Deciding the
/// batch moves each item's standing forward.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockedBatch {
    items: HashMap<ItemId, Item>,
    standings: HashMap<ItemId, Standing>,
    has_bid: HashSet<(ItemId, UserId)>,
    changed: Vec<ItemId>,
}

/// Why a bid of a batch was not placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchRejection {
    /// Its item is not among the locked ones: no item has that id.
    ItemNotFound,
    /// The rules refused it.
    Rejected(BidRejection),
}

impl LockedBatch {
    /// Nothing locked yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a locked item and its standing.
    pub fn lock(&mut self, item: Item, standing: Standing) {
        self.standings.insert(item.id, standing);
        self.items.insert(item.id, item);
    }

    /// Records that `bidder` bid on `item` before the batch.
    pub fn already_bid(&mut self, item: ItemId, bidder: UserId) {
        self.has_bid.insert((item, bidder));
    }

    /// The terms of a locked item.
    #[must_use]
    pub fn item(&self, id: ItemId) -> Option<&Item> {
        self.items.get(&id)
    }

    /// The items whose standing the batch changed, each once, in the order
    /// of their first accepted bid, with their terms (the close moved by
    /// soft close) and standing now.
    pub fn changed(&self) -> impl Iterator<Item = (&Item, &Standing)> {
        self.changed
            .iter()
            .filter_map(|id| Some((self.items.get(id)?, self.standings.get(id)?)))
    }

    /// Decides one bid on the batch as it stands, and moves its item on.
    fn decide(
        &mut self,
        command: &BidCommand,
        now: Timestamp,
    ) -> Result<Placement, BatchRejection> {
        let (Some(item), Some(standing)) = (
            self.items.get_mut(&command.item),
            self.standings.get_mut(&command.item),
        ) else {
            return Err(BatchRejection::ItemNotFound);
        };
        let key = (command.item, command.bidder);
        let placement = place_on(item, *standing, self.has_bid.contains(&key), command, now)
            .map_err(BatchRejection::Rejected)?;
        *standing = placement.standing;
        // A later bid of the batch meets the close this one moved.
        item.extend_to(placement.closing);
        self.has_bid.insert(key);
        if !self.changed.contains(&command.item) {
            self.changed.push(command.item);
        }
        Ok(placement)
    }
}

/// Decides `bids` in arrival order, each at its own `now`, as if each were
/// placed alone after the ones before it: an item's standing carries from
/// one bid to the next, and a bidder's second bid on an item in the same
/// batch is [`BidRejection::AlreadyPlaced`]. One decision per bid, in order.
pub fn decide_in_order<'a>(
    batch: &mut LockedBatch,
    bids: impl IntoIterator<Item = (&'a BidCommand, Timestamp)>,
) -> Vec<Result<Placement, BatchRejection>> {
    bids.into_iter()
        .map(|(command, now)| batch.decide(command, now))
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::tests::{item, money};
    use super::super::{LockedItem, place, replay};
    use super::*;
    use crate::bid::BidOffer;

    fn offer(amount: i64, poison: Option<(i64, i64)>) -> BidOffer {
        match poison {
            None => BidOffer::plain(money(amount)),
            Some((budget, step)) => BidOffer::poisoned(money(amount), money(budget), money(step)),
        }
    }

    #[test]
    fn a_bidders_second_bid_in_one_batch_is_already_placed_and_standings_carry() {
        let lamp = item(100, 10);
        let (ann, bob) = (UserId::generate(), UserId::generate());
        let mut batch = LockedBatch::new();
        batch.lock(lamp.clone(), Standing::EMPTY);
        let bid = |bidder, amount| BidCommand {
            item: lamp.id,
            bidder,
            bidder_may_bid: true,
            offer: offer(amount, None),
        };
        let (first, second, again) = (bid(ann, 100), bid(bob, 150), bid(ann, 300));
        let missing = BidCommand {
            item: ItemId::generate(),
            ..bid(bob, 100)
        };
        let now = lamp.created_at;
        let decisions = decide_in_order(
            &mut batch,
            [
                (&first, now),
                (&second, now),
                (&again, now),
                (&missing, now),
            ],
        );
        assert_eq!(decisions[0].map(|p| p.seq), Ok(1));
        assert_eq!(decisions[1].map(|p| p.seq), Ok(2));
        assert_eq!(
            decisions[2],
            Err(BatchRejection::Rejected(BidRejection::AlreadyPlaced))
        );
        assert_eq!(decisions[3], Err(BatchRejection::ItemNotFound));
        let changed: Vec<_> = batch.changed().collect();
        assert_eq!(changed.len(), 1);
        assert_eq!((changed[0].0.id, changed[0].1.bid_count()), (lamp.id, 2));
    }

    #[test]
    fn a_batch_reads_back_the_terms_of_its_locked_items_only() {
        let lamp = item(100, 10);
        let mut batch = LockedBatch::new();
        batch.lock(lamp.clone(), Standing::EMPTY);
        assert_eq!(batch.item(lamp.id), Some(&lamp));
        assert_eq!(batch.item(ItemId::generate()), None);
    }

    #[derive(Clone, Debug)]
    struct Attempt {
        item: usize,
        bidder: usize,
        may_bid: bool,
        amount: i64,
        poison: Option<(i64, i64)>,
        /// Minutes after the items were listed (they close at 60).
        at_minute: i64,
    }

    fn attempt() -> impl Strategy<Value = Attempt> {
        (
            (0usize..4, 0usize..7, prop::bool::weighted(0.95)),
            1i64..=400,
            prop::option::of((0i64..=300, 1i64..=30)),
            prop_oneof![7 => 0i64..55, 3 => 55i64..75],
        )
            .prop_map(
                |((item, bidder, may_bid), amount, poison, at_minute)| Attempt {
                    item,
                    bidder,
                    may_bid,
                    amount,
                    poison: poison.map(|(extra, step)| (amount + extra, step)),
                    at_minute,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        /// A batch decides exactly as the bids placed one by one, each on
        /// its item as the bids before it left it, at its own moment; each
        /// item's standing ends as the replay of every bid ever accepted on
        /// it (those from before the batch first).
        #[test]
        fn a_batch_decides_as_the_bids_placed_one_by_one(
            earlier in prop::collection::vec(prop::collection::vec(100i64..=300, 0..4), 3),
            attempts in prop::collection::vec(attempt(), 1..60),
            already in prop::collection::vec((0usize..4, 0usize..7), 0..4),
        ) {
            let items: Vec<Item> = (0..3).map(|_| item(100, 10)).collect();
            // Bidder 6 is the items' seller.
            let mut bidders: Vec<UserId> = (0..6).map(|_| UserId::generate()).collect();
            let seller = UserId::generate();
            // The first item closes softly: late bids (minute 55 on) move its close.
            let soft_close = Some(crate::soft_close::SoftClose::new(300, 240, 3).unwrap());
            let items: Vec<Item> = items
                .into_iter()
                .enumerate()
                .map(|(n, i)| Item { seller, soft_close: soft_close.filter(|_| n == 0), ..i })
                .collect();
            // The items as the oracle's bids leave them (their close moved).
            let mut current: HashMap<ItemId, Item> = items.iter().map(|i| (i.id, i.clone())).collect();
            bidders.push(seller);
            let start = items[0].created_at;
            // Each item starts where bids from before the batch left it.
            let mut history: HashMap<ItemId, Vec<(UserId, BidOffer)>> = HashMap::new();
            let mut batch = LockedBatch::new();
            let mut standings: HashMap<ItemId, Standing> = HashMap::new();
            let mut oracle_has_bid = HashSet::new();
            for (lot, amounts) in items.iter().zip(&earlier) {
                let bids: Vec<(UserId, BidOffer)> = amounts
                    .iter()
                    .enumerate()
                    .map(|(i, amount)| (UserId::generate(), offer(amount + 20 * i as i64, None)))
                    .collect();
                let standing = replay(bids.iter().map(|(b, o)| (*b, o)));
                for (bidder, _) in &bids {
                    batch.already_bid(lot.id, *bidder);
                    oracle_has_bid.insert((lot.id, *bidder));
                }
                batch.lock(lot.clone(), standing);
                standings.insert(lot.id, standing);
                history.insert(lot.id, bids);
            }
            // The fourth item is missing: its bids find nothing.
            let ids: Vec<ItemId> = items.iter().map(|i| i.id).chain([ItemId::generate()]).collect();
            for (lot, bidder) in &already {
                batch.already_bid(ids[*lot], bidders[*bidder]);
                oracle_has_bid.insert((ids[*lot], bidders[*bidder]));
            }
            let bids: Vec<(BidCommand, Timestamp)> = attempts
                .iter()
                .map(|a| {
                    let command = BidCommand {
                        item: ids[a.item],
                        bidder: bidders[a.bidder],
                        bidder_may_bid: a.may_bid,
                        offer: offer(a.amount, a.poison),
                    };
                    (command, start + chrono::Duration::minutes(a.at_minute))
                })
                .collect();
            let decisions = decide_in_order(&mut batch, bids.iter().map(|(c, now)| (c, *now)));

            // The oracle: place each alone on its item as it stands, at its moment.
            for ((command, now), decision) in bids.iter().zip(&decisions) {
                let Some(lot) = current.get_mut(&command.item) else {
                    prop_assert_eq!(decision, &Err(BatchRejection::ItemNotFound));
                    continue;
                };
                let locked = LockedItem {
                    item: lot.clone(),
                    standing: standings[&lot.id],
                    bidder_has_bid: oracle_has_bid.contains(&(lot.id, command.bidder)),
                };
                let alone = place(&locked, command, *now).map_err(BatchRejection::Rejected);
                prop_assert_eq!(decision, &alone);
                if let Ok(placement) = alone {
                    prop_assert_eq!(placement.at, *now);
                    lot.extend_to(placement.closing);
                    standings.insert(lot.id, placement.standing);
                    oracle_has_bid.insert((lot.id, command.bidder));
                    history.entry(lot.id).or_default().push((command.bidder, command.offer));
                }
            }
            let mut changed = 0;
            for (lot, standing) in batch.changed() {
                changed += 1;
                let id = lot.id;
                prop_assert_eq!(lot, &current[&id]);
                prop_assert_eq!(standing, &standings[&id]);
                let bids = &history[&id];
                prop_assert_eq!(replay(bids.iter().map(|(b, o)| (*b, o))), *standing);
            }
            let accepted_items: HashSet<ItemId> = bids
                .iter()
                .zip(&decisions)
                .filter(|(_, d)| d.is_ok())
                .map(|((c, _), _)| c.item)
                .collect();
            prop_assert_eq!(changed, accepted_items.len());
        }
    }
}
