//! The bid engine: `docs/spec/auction-rules.md` as pure functions.
//!
//! An item's [`Standing`] (leader, leader's ceiling and step, price, bid count)
//! is all that is needed to resolve a new bid, so resolution is O(1) whatever
//! the number of bids. The store runs [`place`] while it holds the item's row
//! lock, with `now` read after the lock was taken; a batch of bids goes
//! through [`decide_in_order`], bid by bid.

use thiserror::Error;

mod batch;

pub use batch::{BatchRejection, LockedBatch, decide_in_order};

use crate::bid::{BidOffer, BidState, BidView};
use crate::ids::{ItemId, UserId};
use crate::item::{CloseOutcome, Item, ItemStatus, PublicStanding, Timestamp};
use crate::money::Money;
use crate::soft_close::Closing;

/// The bid currently leading an item: who, up to what, by what step, at what price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leader {
    /// The leading bidder.
    pub bidder: UserId,
    /// The most the leader will pay (budget when poisoned, else amount).
    pub ceiling: Money,
    /// The leader's auto-raise step; `None` when the leading bid is plain.
    pub step: Option<Money>,
    /// The public price.
    pub price: Money,
}

/// Everything the rules need to know about an item's bidding so far.
///
/// Sealed at rest but for the price and the bid count, which are public.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Standing {
    bid_count: u64,
    leader: Option<Leader>,
}

/// Stored standing data that contradicts itself.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("inconsistent standing: {0}")]
pub struct CorruptStanding(&'static str);

impl Standing {
    /// The standing of an item nobody has bid on.
    pub const EMPTY: Standing = Standing {
        bid_count: 0,
        leader: None,
    };

    /// Rebuilds a standing read back from storage, checking it is coherent.
    ///
    /// # Errors
    /// [`CorruptStanding`] when there are bids but no leader (or the reverse),
    /// or the price exceeds the leader's ceiling.
    pub fn restore(bid_count: u64, leader: Option<Leader>) -> Result<Self, CorruptStanding> {
        match (bid_count, &leader) {
            (0, Some(_)) => Err(CorruptStanding("a leader without bids")),
            (1.., None) => Err(CorruptStanding("bids without a leader")),
            (_, Some(l)) if l.price > l.ceiling => {
                Err(CorruptStanding("the price exceeds the leader's ceiling"))
            }
            _ => Ok(Standing { bid_count, leader }),
        }
    }

    /// How many bids were accepted.
    #[must_use]
    pub fn bid_count(&self) -> u64 {
        self.bid_count
    }

    /// The leader, once anybody bid.
    #[must_use]
    pub fn leader(&self) -> Option<&Leader> {
        self.leader.as_ref()
    }

    /// The part anyone may see.
    #[must_use]
    pub fn public(&self) -> PublicStanding {
        PublicStanding {
            bid_count: self.bid_count,
            current_price: self.leader.map(|l| l.price),
        }
    }

    /// This standing after `offer` by `bidder` was accepted.
    #[must_use]
    pub fn after(&self, bidder: UserId, offer: &BidOffer) -> (Standing, Effect) {
        let (leader, effect) = resolve(self.leader.as_ref(), bidder, offer);
        let standing = Standing {
            bid_count: self.bid_count + 1,
            leader: Some(leader),
        };
        (standing, effect)
    }
}

/// What accepting a bid did to the lead; the source of personal notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The first bid on the item.
    Opened,
    /// The new bid took the lead; `displaced` (the previous leader, as it
    /// stood) is now outbid, or exhausted when it was poisoned.
    TookLead {
        /// The previous leader.
        displaced: Leader,
    },
    /// The leader kept the lead and the new bid is outbid at once (exhausted
    /// when poisoned). `raised` tells whether the leader's poison auto-raised
    /// the price.
    Defended {
        /// Whether the price went up.
        raised: bool,
    },
}

/// `min(cap, base + step)`, where a missing step counts as 0 and an overflow
/// past the largest amount is capped like any other excess.
fn raise_capped(base: Money, step: Option<Money>, cap: Money) -> Money {
    match step {
        None => base.min(cap),
        Some(step) => base.checked_add(step).map_or(cap, |raised| raised.min(cap)),
    }
}

/// The poison rule: the new leader and price after `offer` by `bidder` meets
/// the current leader. Validity (minimum, poison shape) is checked by [`place`].
#[must_use]
pub fn resolve(current: Option<&Leader>, bidder: UserId, offer: &BidOffer) -> (Leader, Effect) {
    let challenger = Leader {
        bidder,
        ceiling: offer.ceiling(),
        step: offer.step(),
        price: offer.amount,
    };
    match current {
        // Rule 1: the first bid leads at its amount.
        None => (challenger, Effect::Opened),
        // Rule 2: a higher ceiling takes the lead, at least one of its steps over
        // the old ceiling (but never beyond its own), and never below its amount.
        Some(leader) if challenger.ceiling > leader.ceiling => {
            let price = offer.amount.max(raise_capped(
                leader.ceiling,
                challenger.step,
                challenger.ceiling,
            ));
            (
                Leader {
                    price,
                    ..challenger
                },
                Effect::TookLead { displaced: *leader },
            )
        }
        // Rule 3: ties go to the earlier bid; the leader auto-raises to one of
        // its steps over the challenger's ceiling, capped by its own.
        Some(leader) => {
            let price = leader.price.max(raise_capped(
                challenger.ceiling,
                leader.step,
                leader.ceiling,
            ));
            (
                Leader { price, ..*leader },
                Effect::Defended {
                    raised: price > leader.price,
                },
            )
        }
    }
}

/// Why a poison was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum PoisonProblem {
    /// `budget < amount`.
    #[error("the poison budget must be at least the bid amount")]
    BudgetBelowAmount,
    /// `step < min_increment`.
    #[error("the poison step must be at least the item's minimum increment of {min_increment}")]
    StepBelowIncrement {
        /// The item's minimum increment.
        min_increment: Money,
    },
}

/// Every reason a well-formed bid is refused, in the order they are checked.
/// None of them uses up the bidder's one bid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum BidRejection {
    /// The item is closed, cancelled, or past `close_at`.
    #[error("the auction is closed")]
    AuctionClosed,
    /// The bidder listed the item.
    #[error("you may not bid on an item you listed")]
    OwnItem,
    /// Bidding needs a verified e-mail address and the bidder has none.
    #[error("verify your e-mail address before bidding")]
    EmailNotVerified,
    /// The bidder already has a bid on this item.
    #[error("you have already bid on this item")]
    AlreadyPlaced,
    /// The poison's budget or step breaks the rules.
    #[error(transparent)]
    InvalidPoison(PoisonProblem),
    /// The amount is below the minimum next bid.
    #[error("the bid must be at least {minimum_next_bid}")]
    TooLow {
        /// The lowest acceptable amount at the moment of the bid.
        minimum_next_bid: i64,
    },
}

/// A bid to place, with what the service knows of its bidder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BidCommand {
    /// The item to bid on.
    pub item: ItemId,
    /// The bidder.
    pub bidder: UserId,
    /// `false` when bidding needs a verified e-mail and the bidder has none.
    pub bidder_may_bid: bool,
    /// What is offered.
    pub offer: BidOffer,
}

/// What the store reads under the item's row lock for one bid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedItem {
    /// The item's terms and status.
    pub item: Item,
    /// Its unsealed standing.
    pub standing: Standing,
    /// Whether the bidder already has a bid on it.
    pub bidder_has_bid: bool,
}

/// An accepted bid's consequences, for the store to persist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The bid's 1-based arrival position on the item.
    pub seq: u64,
    /// The item's standing after the bid.
    pub standing: Standing,
    /// What the bid did to the lead.
    pub effect: Effect,
    /// When the bid was accepted (read under the lock).
    pub at: Timestamp,
    /// The item's close after the bid.
    pub closing: Closing,
    /// Whether the bid moved the close (soft close).
    pub extended: bool,
}

/// Decides a bid on a locked item at `now`: every check of docs/spec/auction-rules.md
/// and docs/spec/api.md in the order docs/spec/api.md lists them, then the poison rule.
///
/// # Errors
/// The first [`BidRejection`] that applies.
pub fn place(
    locked: &LockedItem,
    command: &BidCommand,
    now: Timestamp,
) -> Result<Placement, BidRejection> {
    place_on(
        &locked.item,
        locked.standing,
        locked.bidder_has_bid,
        command,
        now,
    )
}

/// [`place`] on an item's parts, without gathering them into a
/// [`LockedItem`] first (a batch keeps them apart, and the item's terms
/// are not copied for every bid).
fn place_on(
    item: &Item,
    standing: Standing,
    bidder_has_bid: bool,
    command: &BidCommand,
    now: Timestamp,
) -> Result<Placement, BidRejection> {
    let offer = &command.offer;
    if !item.accepts_bids_at(now) {
        return Err(BidRejection::AuctionClosed);
    }
    if item.seller == command.bidder {
        return Err(BidRejection::OwnItem);
    }
    if !command.bidder_may_bid {
        return Err(BidRejection::EmailNotVerified);
    }
    if bidder_has_bid {
        return Err(BidRejection::AlreadyPlaced);
    }
    if let Some(poison) = offer.poison {
        if poison.budget < offer.amount {
            return Err(BidRejection::InvalidPoison(
                PoisonProblem::BudgetBelowAmount,
            ));
        }
        if poison.step < item.min_increment {
            return Err(BidRejection::InvalidPoison(
                PoisonProblem::StepBelowIncrement {
                    min_increment: item.min_increment,
                },
            ));
        }
    }
    let minimum_next_bid = standing.public().minimum_next_bid(item);
    if offer.amount.minor_units() < minimum_next_bid {
        return Err(BidRejection::TooLow { minimum_next_bid });
    }
    let (standing, effect) = standing.after(command.bidder, offer);
    let extension = item
        .soft_close
        .and_then(|rule| rule.after_bid(item.closing(), &effect, now));
    Ok(Placement {
        seq: standing.bid_count,
        standing,
        effect,
        at: now,
        closing: extension.unwrap_or_else(|| item.closing()),
        extended: extension.is_some(),
    })
}

/// Replays accepted bids in arrival order from an empty standing.
///
/// Used to check a stored history against the stored standing.
#[must_use]
pub fn replay<'a>(bids: impl IntoIterator<Item = (UserId, &'a BidOffer)>) -> Standing {
    bids.into_iter()
        .fold(Standing::EMPTY, |standing, (bidder, offer)| {
            standing.after(bidder, offer).0
        })
}

/// How a bid by `bidder` stands on an item in `status` with `standing`.
#[must_use]
pub fn view_of(
    bidder: UserId,
    offer: &BidOffer,
    standing: &Standing,
    status: &ItemStatus,
) -> BidView {
    let leading = standing.leader().filter(|l| l.bidder == bidder);
    let closed = matches!(status, ItemStatus::Closed(_));
    match leading {
        Some(leader) => BidView {
            state: if closed {
                BidState::Won
            } else {
                BidState::Leading
            },
            effective: leader.price,
            remaining_budget: if closed || offer.poison.is_none() {
                0
            } else {
                leader.ceiling.minor_units() - leader.price.minor_units()
            },
        },
        None => BidView {
            state: match (closed, offer.poison) {
                (true, _) => BidState::Lost,
                (false, None) => BidState::Outbid,
                (false, Some(_)) => BidState::Exhausted,
            },
            effective: offer.ceiling(),
            remaining_budget: 0,
        },
    }
}

/// How a bid stands once its item closed with `outcome`, from public facts
/// alone: the winner's bid is `won` at the final price, every other `lost`
/// at its own ceiling. Equals [`view_of`] on the closed item.
#[must_use]
pub fn revealed_view(bidder: UserId, offer: &BidOffer, outcome: &CloseOutcome) -> BidView {
    match outcome {
        CloseOutcome::Sold { winner, price } if *winner == bidder => BidView {
            state: BidState::Won,
            effective: *price,
            remaining_budget: 0,
        },
        _ => BidView {
            state: BidState::Lost,
            effective: offer.ceiling(),
            remaining_budget: 0,
        },
    }
}

/// Why an item cannot be closed now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum CloseRejection {
    /// Already closed or cancelled.
    #[error("the item is not open")]
    NotOpen,
    /// `close_at` has not come yet.
    #[error("the item's close time has not come")]
    NotDue,
}

/// Closes an item at `now`: the leader wins and pays the price; no bids, no winner.
///
/// # Errors
/// [`CloseRejection`] when the item is not open or not yet due.
pub fn close(
    item: &Item,
    standing: &Standing,
    now: Timestamp,
) -> Result<CloseOutcome, CloseRejection> {
    if item.status != ItemStatus::Open {
        return Err(CloseRejection::NotOpen);
    }
    if now < item.close_at {
        return Err(CloseRejection::NotDue);
    }
    Ok(standing
        .leader()
        .map_or(CloseOutcome::Unsold, |leader| CloseOutcome::Sold {
            winner: leader.bidder,
            price: leader.price,
        }))
}

/// Why an item cannot be cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum CancelRejection {
    /// Closed, cancelled, or past its close time.
    #[error("the auction is closed")]
    NotOpen,
    /// Somebody bid: the auction must run its course.
    #[error("the item has bids")]
    HasBids,
}

/// Checks that an item may be cancelled at `now`: open, before close, no bids.
///
/// # Errors
/// [`CancelRejection`] naming the first rule that forbids it.
pub fn cancel(
    item: &Item,
    standing: &PublicStanding,
    now: Timestamp,
) -> Result<(), CancelRejection> {
    if !item.accepts_bids_at(now) {
        Err(CancelRejection::NotOpen)
    } else if standing.bid_count > 0 {
        Err(CancelRejection::HasBids)
    } else {
        Ok(())
    }
}

/// Why an item cannot be edited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum EditRejection {
    /// Closed, cancelled, or past its close time.
    #[error("the auction is closed")]
    NotOpen,
    /// Somebody bid: the terms they bid on stay.
    #[error("the item has bids")]
    HasBids,
    /// The new close is before the current one (a close may only stay or
    /// move later).
    #[error("close_at must not be earlier than the item's current close")]
    CloseEarlier,
}

/// The item after `edit`, at `now` under its row lock: open, before its
/// close, with no bids, and a close that does not move earlier.
///
/// # Errors
/// [`EditRejection`] naming the first rule that forbids it.
pub fn edit(
    item: &Item,
    standing: &PublicStanding,
    edit: &crate::item::ItemEdit,
    now: Timestamp,
) -> Result<Item, EditRejection> {
    if !item.accepts_bids_at(now) {
        return Err(EditRejection::NotOpen);
    }
    if standing.bid_count > 0 {
        return Err(EditRejection::HasBids);
    }
    if edit
        .close_at
        .is_some_and(|close_at| close_at < item.close_at)
    {
        return Err(EditRejection::CloseEarlier);
    }
    let mut edited = item.clone();
    if let Some(title) = &edit.title {
        edited.title = title.clone();
    }
    if let Some(description) = &edit.description {
        edited.description = description.clone();
    }
    if let Some(close_at) = edit.close_at {
        edited.close_at = close_at;
    }
    Ok(edited)
}

#[cfg(test)]
mod properties;
#[cfg(test)]
pub(crate) mod tests;
