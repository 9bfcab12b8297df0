//! Bids: what a bidder offers, what is stored, and what each bidder sees of their own.

use serde::{Deserialize, Serialize};

use crate::ids::{BidId, ItemId, UserId};
use crate::item::Timestamp;
use crate::ledger::{ChainHash, LedgerRecord, Salt};
use crate::money::Money;

/// The auto-raise of a poisoned bid: outbid any higher offer by `step`,
/// never paying more than `budget`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Poison {
    /// The most this bidder will ever pay (`≥` the bid's amount).
    pub budget: Money,
    /// The raise used to outbid (`≥` the item's minimum increment).
    pub step: Money,
}

/// What a bidder offers: an amount, optionally poisoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BidOffer {
    /// The amount offered now.
    pub amount: Money,
    /// The auto-raise, if any.
    pub poison: Option<Poison>,
}

impl BidOffer {
    /// A plain bid of `amount`.
    #[must_use]
    pub fn plain(amount: Money) -> Self {
        BidOffer {
            amount,
            poison: None,
        }
    }

    /// A poisoned bid of `amount` that raises by `step` up to `budget`.
    #[must_use]
    pub fn poisoned(amount: Money, budget: Money, step: Money) -> Self {
        BidOffer {
            amount,
            poison: Some(Poison { budget, step }),
        }
    }

    /// The most this bid will pay: the budget when poisoned, else the amount.
    #[must_use]
    pub fn ceiling(&self) -> Money {
        self.poison.map_or(self.amount, |p| p.budget)
    }

    /// The raise this bid outbids with; `None` (a step of 0) when plain.
    #[must_use]
    pub fn step(&self) -> Option<Money> {
        self.poison.map(|p| p.step)
    }
}

/// A stored bid. Immutable once accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bid {
    /// Its id.
    pub id: BidId,
    /// The item bid on.
    pub item: ItemId,
    /// Who bid.
    pub bidder: UserId,
    /// 1-based arrival position on the item (commit order under the item lock).
    pub seq: u64,
    /// What was offered.
    pub offer: BidOffer,
    /// When it was accepted (read under the item's lock).
    pub created_at: Timestamp,
    /// Its ledger salt, sealed with the offer.
    pub salt: Salt,
    /// The item's ledger value after it; `None` only for a bid from before
    /// the ledger not yet chained.
    pub chain_hash: Option<ChainHash>,
}

impl Bid {
    /// What the ledger commits to of it.
    #[must_use]
    pub fn ledger_record(&self) -> LedgerRecord {
        LedgerRecord {
            seq: self.seq,
            bidder: self.bidder,
            offer: self.offer,
            created_at: self.created_at,
            salt: self.salt,
        }
    }
}

/// Where a page of a bidder's bids continues: after this bid, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BidCursor {
    /// The last bid's time.
    pub created_at: Timestamp,
    /// The last bid's id (ties on the time).
    pub id: BidId,
}

/// Where a bid stands, as its bidder sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BidState {
    /// This bid leads.
    Leading,
    /// Not leading, not poisoned.
    Outbid,
    /// Not leading, poisoned: its whole budget is spent.
    Exhausted,
    /// Led at close.
    Won,
    /// Did not lead at close.
    Lost,
}

impl BidState {
    /// The state as the API spells it.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            BidState::Leading => "leading",
            BidState::Outbid => "outbid",
            BidState::Exhausted => "exhausted",
            BidState::Won => "won",
            BidState::Lost => "lost",
        }
    }
}

/// A bid as its own bidder sees it (docs/spec/auction-rules.md, "What each bidder sees").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BidView {
    /// Leading, outbid, exhausted, won or lost.
    pub state: BidState,
    /// What the bid stands at: the price when leading or won, else its
    /// amount (plain) or budget (poisoned).
    pub effective: Money,
    /// The budget still unspent while leading (`ceiling − price`); 0 otherwise.
    pub remaining_budget: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(units: i64) -> Money {
        Money::new(units).unwrap()
    }

    #[test]
    fn a_plain_bid_has_its_amount_as_ceiling_and_no_step() {
        let offer = BidOffer::plain(money(120));
        assert_eq!(offer.ceiling(), money(120));
        assert_eq!(offer.step(), None);
    }

    #[test]
    fn a_poisoned_bid_has_its_budget_as_ceiling_and_its_step() {
        let offer = BidOffer::poisoned(money(125), money(200), money(5));
        assert_eq!(offer.ceiling(), money(200));
        assert_eq!(offer.step(), Some(money(5)));
    }

    #[test]
    fn states_are_spelled_as_the_api_says() {
        let all = [
            (BidState::Leading, "leading"),
            (BidState::Outbid, "outbid"),
            (BidState::Exhausted, "exhausted"),
            (BidState::Won, "won"),
            (BidState::Lost, "lost"),
        ];
        for (state, text) in all {
            assert_eq!(state.as_str(), text);
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{text}\"")
            );
        }
    }
}
