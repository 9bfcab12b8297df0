//! Live updates: what the public may watch of an item (the events behind
//! Server-Sent Events) and what each bidder is told personally (the
//! notifications behind the WebSocket), both derived from what an accepted
//! bid or a close did.
//!
//! Item events carry only public values (price, minimum next bid, count);
//! a notification carries values of its own recipient's bid only, so nothing
//! here can leak another bidder's amount, budget, step or identity.

use std::pin::Pin;

use futures_util::Stream;
use serde::{Deserialize, Serialize};

use crate::bid::BidOffer;
use crate::engine::{Effect, Leader, Placement};
use crate::ids::{ItemId, UserId};
use crate::item::{CloseOutcome, Item, ItemStatus, ListedItem, Timestamp};
use crate::ledger::ChainHash;
use crate::money::Money;
use crate::soft_close::Closing;

/// The price after an accepted bid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceEvent {
    /// The item.
    pub item: ItemId,
    /// The public price now.
    pub current_price: Money,
    /// The lowest acceptable next bid now.
    pub minimum_next_bid: i64,
    /// Accepted bids so far; also the event's id.
    pub bid_count: u64,
    /// When the bid was accepted.
    pub at: Timestamp,
    /// The item's close now (after the bid when live, the current one when
    /// replayed), so a subscriber always knows when bidding ends.
    pub closing: Closing,
    /// The close this bid moved the item to, when it did (soft close): the
    /// `extended` event that follows the price under the same id.
    pub extension: Option<Closing>,
    /// The item's ledger head after the bid (public: a commitment), so a
    /// watcher keeps the head it saw before the close.
    pub ledger_head: Option<ChainHash>,
}

/// The public price right after one accepted bid, as kept for replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PricePoint {
    /// The bid's arrival position (the bid count after it).
    pub seq: u64,
    /// The price it left.
    pub price: Money,
    /// When it was accepted.
    pub at: Timestamp,
    /// The close it moved the item to, when it did.
    pub extension: Option<Closing>,
    /// The ledger's value after it.
    pub chain_hash: Option<ChainHash>,
}

impl PriceEvent {
    /// The event of a replayed price point of `item`.
    #[must_use]
    pub fn replayed(item: &Item, point: PricePoint) -> Self {
        PriceEvent {
            item: item.id,
            current_price: point.price,
            minimum_next_bid: point.price.minor_units() + item.min_increment.minor_units(),
            bid_count: point.seq,
            at: point.at,
            closing: item.closing(),
            extension: point.extension,
            ledger_head: point.chain_hash,
        }
    }
}

/// An item stopped taking bids: it closed (with or without a winner) or was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedEvent {
    /// The item.
    pub item: ItemId,
    /// The price the winner pays; `None` without a winner.
    pub final_price: Option<Money>,
    /// Whether somebody won.
    pub has_winner: bool,
    /// `true` when an admin cancelled it rather than it closing.
    pub cancelled: bool,
    /// Accepted bids (the event's id is one more).
    pub bid_count: u64,
}

/// A public event of one item, in the order subscribers must see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemEvent {
    /// After every accepted bid.
    Price(PriceEvent),
    /// Once, when bidding ends.
    Closed(ClosedEvent),
}

impl ItemEvent {
    /// The item it is about.
    #[must_use]
    pub fn item(&self) -> ItemId {
        match self {
            ItemEvent::Price(e) => e.item,
            ItemEvent::Closed(e) => e.item,
        }
    }

    /// Its position in the item's stream: the bid count after a bid, one more
    /// than the last bid's for the close, so a client resuming from the last
    /// id it saw misses nothing and sees nothing twice.
    #[must_use]
    pub fn id(&self) -> u64 {
        match self {
            ItemEvent::Price(e) => e.bid_count,
            ItemEvent::Closed(e) => e.bid_count + 1,
        }
    }

    /// The price event of an accepted bid on `item` as the bid left it (its
    /// ledger head); `None` only for a placement without a leader, which an
    /// accepted bid never leaves.
    #[must_use]
    pub fn after_bid(item: &Item, placement: &Placement) -> Option<Self> {
        let standing = placement.standing.public();
        Some(ItemEvent::Price(PriceEvent {
            item: item.id,
            current_price: standing.current_price?,
            minimum_next_bid: standing.minimum_next_bid(item),
            bid_count: standing.bid_count,
            at: placement.at,
            closing: placement.closing,
            extension: placement.extended.then_some(placement.closing),
            ledger_head: item.ledger_head,
        }))
    }

    /// The event of an item that stopped taking bids, or `None` while it is open.
    #[must_use]
    pub fn closed(listed: &ListedItem) -> Option<Self> {
        let (outcome, cancelled) = match &listed.item.status {
            ItemStatus::Open => return None,
            ItemStatus::Closed(outcome) => (*outcome, false),
            ItemStatus::Cancelled => (CloseOutcome::Unsold, true),
        };
        Some(ItemEvent::Closed(ClosedEvent {
            item: listed.item.id,
            final_price: outcome.final_price(),
            has_winner: outcome.winner().is_some(),
            cancelled,
            bid_count: listed.standing.bid_count,
        }))
    }
}

/// What a bidder is told about their own bid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotificationData {
    /// A plain bid no longer leads.
    Outbid {
        /// The item.
        item: ItemId,
        /// The public price now.
        current_price: Money,
        /// The lowest acceptable next bid now.
        minimum_next_bid: i64,
    },
    /// The leader's poison raised the price to keep the lead.
    AutoRaised {
        /// The item.
        item: ItemId,
        /// What the bid stands at now (the price).
        effective: Money,
        /// The budget still unspent.
        remaining_budget: i64,
    },
    /// A poisoned bid no longer leads: its whole budget is spent.
    Exhausted {
        /// The item.
        item: ItemId,
        /// What the bid stood at: its own budget.
        effective: Money,
        /// The public price now.
        current_price: Money,
        /// The lowest acceptable next bid now.
        minimum_next_bid: i64,
    },
    /// The auction closed with this bid leading.
    Won {
        /// The item.
        item: ItemId,
        /// What the winner pays.
        final_price: Money,
    },
    /// The auction closed with another bid leading.
    Lost {
        /// The item.
        item: ItemId,
        /// What the winner pays.
        final_price: Money,
    },
}

impl NotificationData {
    /// A short name, for tests to compare by (the API's spelling is the
    /// HTTP layer's: `NotificationKind` in pp-http).
    #[cfg(test)]
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            NotificationData::Outbid { .. } => "outbid",
            NotificationData::AutoRaised { .. } => "auto_raised",
            NotificationData::Exhausted { .. } => "exhausted",
            NotificationData::Won { .. } => "won",
            NotificationData::Lost { .. } => "lost",
        }
    }

    /// The item it is about.
    #[must_use]
    pub fn item(&self) -> ItemId {
        match self {
            NotificationData::Outbid { item, .. }
            | NotificationData::AutoRaised { item, .. }
            | NotificationData::Exhausted { item, .. }
            | NotificationData::Won { item, .. }
            | NotificationData::Lost { item, .. } => *item,
        }
    }
}

/// A personal notification for one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Who is told.
    pub user: UserId,
    /// What about.
    pub data: NotificationData,
    /// When it happened.
    pub at: Timestamp,
}

/// A live subscription ended because its subscriber fell behind: events it
/// had not taken yet were dropped rather than slow down anyone else. An item
/// subscriber resumes from the last id it saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the subscriber fell behind and missed events")]
pub struct FellBehind;

/// A stream of live values that ends with [`FellBehind`] for a subscriber
/// that did not keep up.
pub type LiveStream<T> = Pin<Box<dyn Stream<Item = Result<T, FellBehind>> + Send>>;

/// Subscribing to live values published on any instance.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait LiveSubscriptions: Send + Sync {
    /// Every item event of `item` published from now on.
    fn item_events(&self, item: ItemId) -> LiveStream<ItemEvent>;

    /// Every notification for `user` sent from now on.
    fn notifications(&self, user: UserId) -> LiveStream<Notification>;
}

/// A place among a key's open live connections (an address's SSE streams,
/// an account's sockets), held while its connection lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotLease {
    /// Whose place it is, e.g. `sse:203.0.113.7/32`.
    pub key: String,
    /// This place among the key's.
    pub id: String,
    /// Taken from this instance's own count while the shared one was out
    /// of reach; renewed and given back there.
    pub local: bool,
}

/// Places for open live connections, counted across every instance. A
/// place is a lease its connection renews while it lives; the lease of a
/// connection nobody renews (its instance crashed or stalled) lapses, so no
/// count is left behind for good.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait ConnectionSlots: Send + Sync {
    /// One of `max` places of `key` for `ttl`; `None` when every one is
    /// taken. Never fails: an implementation that loses its shared store
    /// counts on its own instance meanwhile.
    async fn take(&self, key: &str, max: u32, ttl: std::time::Duration) -> Option<SlotLease>;

    /// Keeps `lease` for another `ttl` from now.
    async fn renew(&self, lease: &SlotLease, ttl: std::time::Duration);

    /// Gives `lease`'s place back.
    async fn give_back(&self, lease: &SlotLease);
}

/// The notification for a bid that stopped leading.
fn no_longer_leading(
    bidder: UserId,
    poisoned: bool,
    ceiling: Money,
    item: ItemId,
    price: Money,
    minimum_next_bid: i64,
    at: Timestamp,
) -> Notification {
    let data = if poisoned {
        NotificationData::Exhausted {
            item,
            effective: ceiling,
            current_price: price,
            minimum_next_bid,
        }
    } else {
        NotificationData::Outbid {
            item,
            current_price: price,
            minimum_next_bid,
        }
    };
    Notification {
        user: bidder,
        data,
        at,
    }
}

/// The notifications an accepted bid by `bidder` with `offer` causes:
/// the displaced leader is outbid (exhausted when poisoned); a defending
/// poisoned leader hears of its auto-raise; a bid outbid at once is told so
/// too (its bidder may not be the one watching the response).
#[must_use]
pub fn notifications_after_bid(
    item: &Item,
    bidder: UserId,
    offer: &BidOffer,
    placement: &Placement,
) -> Vec<Notification> {
    let Some(leader) = placement.standing.leader() else {
        return Vec::new();
    };
    let minimum_next_bid = placement.standing.public().minimum_next_bid(item);
    let at = placement.at;
    let lost_lead = |who: &Leader| {
        no_longer_leading(
            who.bidder,
            who.step.is_some(),
            who.ceiling,
            item.id,
            leader.price,
            minimum_next_bid,
            at,
        )
    };
    match placement.effect {
        Effect::Opened => Vec::new(),
        Effect::TookLead { displaced } => vec![lost_lead(&displaced)],
        Effect::Defended { raised } => {
            let mut told = Vec::with_capacity(2);
            if raised {
                told.push(Notification {
                    user: leader.bidder,
                    data: NotificationData::AutoRaised {
                        item: item.id,
                        effective: leader.price,
                        remaining_budget: leader.ceiling.minor_units() - leader.price.minor_units(),
                    },
                    at,
                });
            }
            told.push(no_longer_leading(
                bidder,
                offer.poison.is_some(),
                offer.ceiling(),
                item.id,
                leader.price,
                minimum_next_bid,
                at,
            ));
            told
        }
    }
}

/// The notifications of a close: the winner won, every other bidder lost.
/// Nothing for an unsold or cancelled item.
#[must_use]
pub fn notifications_after_close(
    listed: &ListedItem,
    bidders: &[UserId],
    at: Timestamp,
) -> Vec<Notification> {
    let ItemStatus::Closed(CloseOutcome::Sold { winner, price }) = listed.item.status else {
        return Vec::new();
    };
    let item = listed.item.id;
    bidders
        .iter()
        .map(|&user| Notification {
            user,
            data: if user == winner {
                NotificationData::Won {
                    item,
                    final_price: price,
                }
            } else {
                NotificationData::Lost {
                    item,
                    final_price: price,
                }
            },
            at,
        })
        .collect()
}

#[cfg(test)]
mod tests;
