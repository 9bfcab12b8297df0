//! Many bids decided together, as the store decides a batch under one
//! transaction: in arrival order, each as if it were placed alone after the
//! ones before it.

use std::collections::{HashMap, HashSet};

use super::{BidCommand, BidRejection, LockedItem, Placement, Standing, place};
use crate::ids::{ItemId, UserId};
use crate::item::{Item, Timestamp};

/// The items a batch of bids holds locked: each with its terms and
/// standing, and which bidders already bid on which of them. Deciding the
/// batch moves each item's standing forward.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockedBatch {
    items: HashMap<ItemId, Standing>,
    terms: HashMap<ItemId, Item>,
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
        self.items.insert(item.id, standing);
        self.terms.insert(item.id, item);
    }

    /// Records that `bidder` bid on `item` before the batch.
    pub fn already_bid(&mut self, item: ItemId, bidder: UserId) {
        self.has_bid.insert((item, bidder));
    }

    /// The terms of a locked item.
    #[must_use]
    pub fn item(&self, id: ItemId) -> Option<&Item> {
        self.terms.get(&id)
    }

    /// The items whose standing the batch changed, each once with its
    /// standing now.
    pub fn changed(&self) -> impl Iterator<Item = (ItemId, &Standing)> {
        self.changed
            .iter()
            .filter_map(|id| self.items.get(id).map(|standing| (*id, standing)))
    }

    /// Decides one bid on the batch as it stands, and moves its item on.
    fn decide(
        &mut self,
        command: &BidCommand,
        now: Timestamp,
    ) -> Result<Placement, BatchRejection> {
        let (Some(item), Some(standing)) = (
            self.terms.get(&command.item),
            self.items.get_mut(&command.item),
        ) else {
            return Err(BatchRejection::ItemNotFound);
        };
        let key = (command.item, command.bidder);
        let locked = LockedItem {
            item: item.clone(),
            standing: *standing,
            bidder_has_bid: self.has_bid.contains(&key),
        };
        let placement = place(&locked, command, now).map_err(BatchRejection::Rejected)?;
        *standing = placement.standing;
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

    use super::super::replay;
    use super::super::tests::{item, money};
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
        assert_eq!(changed[0].1.bid_count(), 2);
    }

    #[derive(Clone, Debug)]
    struct Attempt {
        item: usize,
        bidder: usize,
        amount: i64,
        poison: Option<(i64, i64)>,
    }

    fn attempt() -> impl Strategy<Value = Attempt> {
        (
            0usize..4,
            0usize..6,
            1i64..=400,
            prop::option::of((0i64..=300, 1i64..=30)),
        )
            .prop_map(|(item, bidder, amount, poison)| Attempt {
                item,
                bidder,
                amount,
                poison: poison.map(|(extra, step)| (amount + extra, step)),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        /// A batch decides exactly as the bids placed one by one, each on
        /// its item as the bids before it left it; each item's standing is
        /// the replay of the bids accepted on it.
        #[test]
        fn a_batch_decides_as_the_bids_placed_one_by_one(
            attempts in prop::collection::vec(attempt(), 1..60),
            already in prop::collection::vec((0usize..4, 0usize..6), 0..4),
        ) {
            let items: Vec<Item> = (0..3).map(|_| item(100, 10)).collect();
            let bidders: Vec<UserId> = (0..6).map(|_| UserId::generate()).collect();
            let now = items[0].created_at;
            let mut batch = LockedBatch::new();
            for lot in &items {
                batch.lock(lot.clone(), Standing::EMPTY);
            }
            // The fourth item is missing: its bids find nothing.
            let ids: Vec<ItemId> = items.iter().map(|i| i.id).chain([ItemId::generate()]).collect();
            let mut oracle_has_bid = HashSet::new();
            for (lot, bidder) in &already {
                batch.already_bid(ids[*lot], bidders[*bidder]);
                oracle_has_bid.insert((ids[*lot], bidders[*bidder]));
            }
            let commands: Vec<BidCommand> = attempts
                .iter()
                .map(|a| BidCommand {
                    item: ids[a.item],
                    bidder: bidders[a.bidder],
                    bidder_may_bid: true,
                    offer: offer(a.amount, a.poison),
                })
                .collect();
            let decisions = decide_in_order(&mut batch, commands.iter().map(|c| (c, now)));

            // The oracle: place each alone on its item as it stands.
            let mut standings: HashMap<ItemId, Standing> =
                items.iter().map(|i| (i.id, Standing::EMPTY)).collect();
            let mut accepted: HashMap<ItemId, Vec<(UserId, BidOffer)>> = HashMap::new();
            for (command, decision) in commands.iter().zip(&decisions) {
                let Some(lot) = items.iter().find(|i| i.id == command.item) else {
                    prop_assert_eq!(decision, &Err(BatchRejection::ItemNotFound));
                    continue;
                };
                let locked = LockedItem {
                    item: lot.clone(),
                    standing: standings[&lot.id],
                    bidder_has_bid: oracle_has_bid.contains(&(lot.id, command.bidder)),
                };
                let alone = place(&locked, command, now).map_err(BatchRejection::Rejected);
                prop_assert_eq!(decision, &alone);
                if let Ok(placement) = alone {
                    standings.insert(lot.id, placement.standing);
                    oracle_has_bid.insert((lot.id, command.bidder));
                    accepted.entry(lot.id).or_default().push((command.bidder, command.offer));
                }
            }
            for (id, standing) in batch.changed() {
                prop_assert_eq!(standing, &standings[&id]);
                let bids = &accepted[&id];
                prop_assert_eq!(replay(bids.iter().map(|(b, o)| (*b, o))), *standing);
            }
            prop_assert_eq!(batch.changed().count(), accepted.len());
        }
    }
}
