//! The worked example of docs/spec/auction-rules.md, every rejection, views, close and cancel.

use chrono::{Duration, Utc};

use super::*;
use crate::bid::{BidOffer, BidState};
use crate::ids::ItemId;
use crate::item::{Description, Title};
use crate::money::Currency;

pub(super) fn money(units: i64) -> Money {
    Money::new(units).unwrap()
}

pub(super) fn item(base: i64, increment: i64) -> Item {
    item_at(Utc::now(), base, increment)
}

/// An open item listed at `now`, closing an hour later.
pub(crate) fn item_at(now: crate::item::Timestamp, base: i64, increment: i64) -> Item {
    Item {
        id: ItemId::generate(),
        seller: UserId::generate(),
        title: Title::parse("Lot").unwrap(),
        description: Description::default(),
        currency: Currency::default(),
        base_price: money(base),
        min_increment: money(increment),
        close_at: now + Duration::hours(1),
        created_at: now,
        status: ItemStatus::Open,
        soft_close: None,
        extensions_used: 0,
        ledger_head: None,
    }
}

/// An auction in progress: the item, its standing and who bid what.
struct Auction {
    item: Item,
    standing: Standing,
    bids: Vec<(UserId, BidOffer)>,
}

impl Auction {
    fn new(base: i64, increment: i64) -> Self {
        Auction {
            item: item(base, increment),
            standing: Standing::EMPTY,
            bids: Vec::new(),
        }
    }

    fn try_bid(&mut self, bidder: UserId, offer: BidOffer) -> Result<Placement, BidRejection> {
        let locked = LockedItem {
            item: self.item.clone(),
            standing: self.standing,
            bidder_has_bid: self.bids.iter().any(|(b, _)| *b == bidder),
        };
        let command = BidCommand {
            item: self.item.id,
            bidder,
            bidder_may_bid: true,
            offer,
        };
        let placement = place(&locked, &command, self.item.created_at)?;
        self.standing = placement.standing;
        self.bids.push((bidder, offer));
        Ok(placement)
    }

    fn bid(&mut self, bidder: UserId, offer: BidOffer) -> Placement {
        self.try_bid(bidder, offer).unwrap()
    }

    fn price(&self) -> i64 {
        self.standing.public().current_price.unwrap().minor_units()
    }

    fn leader(&self) -> UserId {
        self.standing.leader().unwrap().bidder
    }

    fn view(&self, bidder: UserId) -> (BidState, i64, i64) {
        let (_, offer) = self.bids.iter().find(|(b, _)| *b == bidder).unwrap();
        let view = view_of(bidder, offer, &self.standing, &self.item.status);
        (
            view.state,
            view.effective.minor_units(),
            view.remaining_budget,
        )
    }
}

fn plain(amount: i64) -> BidOffer {
    BidOffer::plain(money(amount))
}

fn poisoned(amount: i64, budget: i64, step: i64) -> BidOffer {
    BidOffer::poisoned(money(amount), money(budget), money(step))
}

#[test]
fn the_worked_example_of_the_rules_step_by_step() {
    use BidState::{Exhausted, Leading, Lost, Outbid, Won};
    let [alice, bob, carol, dave, erin, frank, grace] = [(); 7].map(|()| UserId::generate());
    let mut a = Auction::new(100, 5);

    // 1. alice 120: first bid.
    assert_eq!(a.bid(alice, plain(120)).effect, Effect::Opened);
    assert_eq!((a.leader(), a.price()), (alice, 120));
    assert_eq!(a.view(alice), (Leading, 120, 0));

    // 2. bob 125, poison 200 step 5: leads at max(125, min(200, 120 + 5)).
    let step2 = a.bid(bob, poisoned(125, 200, 5));
    assert!(matches!(step2.effect, Effect::TookLead { displaced } if displaced.bidder == alice));
    assert_eq!((a.leader(), a.price()), (bob, 125));
    assert_eq!(a.view(alice), (Outbid, 120, 0));
    assert_eq!(a.view(bob), (Leading, 125, 75));

    // 3. carol 150 (needed ≥ 130): bob auto-raises to min(200, 150 + 5).
    assert_eq!(a.standing.public().minimum_next_bid(&a.item), 130);
    assert_eq!(
        a.bid(carol, plain(150)).effect,
        Effect::Defended { raised: true }
    );
    assert_eq!((a.leader(), a.price()), (bob, 155));
    assert_eq!(a.view(carol), (Outbid, 150, 0));
    assert_eq!(a.view(bob), (Leading, 155, 45));

    // 4. dave 160, poison 300 step 10: leads at min(300, 200 + 10); bob exhausted.
    a.bid(dave, poisoned(160, 300, 10));
    assert_eq!((a.leader(), a.price()), (dave, 210));
    assert_eq!(a.view(bob), (Exhausted, 200, 0));
    assert_eq!(a.view(dave), (Leading, 210, 90));

    // 5. erin 215, poison 300 step 5: a tie goes to dave, at 300; erin exhausted.
    assert_eq!(
        a.bid(erin, poisoned(215, 300, 5)).effect,
        Effect::Defended { raised: true }
    );
    assert_eq!((a.leader(), a.price()), (dave, 300));
    assert_eq!(a.view(erin), (Exhausted, 300, 0));
    assert_eq!(a.view(dave), (Leading, 300, 0));

    // 6. frank 305: leads; dave exhausted.
    a.bid(frank, plain(305));
    assert_eq!((a.leader(), a.price()), (frank, 305));
    assert_eq!(a.view(dave), (Exhausted, 300, 0));
    assert_eq!(a.view(frank), (Leading, 305, 0));

    // 7. grace 309: below the minimum of 310; grace keeps her bid.
    assert_eq!(
        a.try_bid(grace, plain(309)),
        Err(BidRejection::TooLow {
            minimum_next_bid: 310
        })
    );
    assert_eq!(
        (a.leader(), a.price(), a.standing.bid_count()),
        (frank, 305, 6)
    );
    let mut retry = Auction {
        item: a.item.clone(),
        standing: a.standing,
        bids: a.bids.clone(),
    };
    assert!(retry.try_bid(grace, plain(310)).is_ok());

    // At close frank wins and pays 305; everyone else lost, views frozen.
    let outcome = close(&a.item, &a.standing, a.item.close_at).unwrap();
    assert_eq!(
        outcome,
        CloseOutcome::Sold {
            winner: frank,
            price: money(305)
        }
    );
    a.item.status = ItemStatus::Closed(outcome);
    assert_eq!(a.view(frank), (Won, 305, 0));
    assert_eq!(a.view(alice), (Lost, 120, 0));
    assert_eq!(a.view(bob), (Lost, 200, 0));
    assert_eq!(a.view(erin), (Lost, 300, 0));
}

fn command(item: &Item, bidder: UserId, offer: BidOffer) -> BidCommand {
    BidCommand {
        item: item.id,
        bidder,
        bidder_may_bid: true,
        offer,
    }
}

fn locked(item: Item) -> LockedItem {
    LockedItem {
        item,
        standing: Standing::EMPTY,
        bidder_has_bid: false,
    }
}

#[test]
fn a_bid_at_or_after_close_at_is_closed() {
    let locked = locked(item(100, 5));
    let cmd = command(&locked.item, UserId::generate(), plain(100));
    assert_eq!(
        place(&locked, &cmd, locked.item.close_at),
        Err(BidRejection::AuctionClosed)
    );
    let just_before = locked.item.close_at - Duration::milliseconds(1);
    assert!(place(&locked, &cmd, just_before).is_ok());
}

#[test]
fn a_closed_or_cancelled_item_takes_no_bids() {
    for status in [
        ItemStatus::Cancelled,
        ItemStatus::Closed(CloseOutcome::Unsold),
    ] {
        let mut locked = locked(item(100, 5));
        locked.item.status = status;
        let cmd = command(&locked.item, UserId::generate(), plain(100));
        assert_eq!(
            place(&locked, &cmd, locked.item.created_at),
            Err(BidRejection::AuctionClosed)
        );
    }
}

#[test]
fn the_seller_may_not_bid_on_their_own_item() {
    let locked = locked(item(100, 5));
    let cmd = command(&locked.item, locked.item.seller, plain(100));
    assert_eq!(
        place(&locked, &cmd, locked.item.created_at),
        Err(BidRejection::OwnItem)
    );
}

#[test]
fn an_unverified_bidder_is_refused_when_verification_is_required() {
    let locked = locked(item(100, 5));
    let mut cmd = command(&locked.item, UserId::generate(), plain(100));
    cmd.bidder_may_bid = false;
    assert_eq!(
        place(&locked, &cmd, locked.item.created_at),
        Err(BidRejection::EmailNotVerified)
    );
}

#[test]
fn a_second_bid_is_already_placed_however_low_or_invalid() {
    let mut locked = locked(item(100, 5));
    locked.bidder_has_bid = true;
    let low_and_bad_poison = poisoned(1, 1, 1);
    let cmd = command(&locked.item, UserId::generate(), low_and_bad_poison);
    assert_eq!(
        place(&locked, &cmd, locked.item.created_at),
        Err(BidRejection::AlreadyPlaced)
    );
}

#[test]
fn a_poison_budget_below_the_amount_is_invalid() {
    let locked = locked(item(100, 5));
    let cmd = command(&locked.item, UserId::generate(), poisoned(150, 149, 5));
    assert_eq!(
        place(&locked, &cmd, locked.item.created_at),
        Err(BidRejection::InvalidPoison(
            PoisonProblem::BudgetBelowAmount
        ))
    );
}

#[test]
fn a_poison_step_below_the_minimum_increment_is_invalid_even_when_the_bid_is_too_low() {
    let locked = locked(item(100, 5));
    let cmd = command(&locked.item, UserId::generate(), poisoned(50, 200, 4));
    assert_eq!(
        place(&locked, &cmd, locked.item.created_at),
        Err(BidRejection::InvalidPoison(
            PoisonProblem::StepBelowIncrement {
                min_increment: money(5)
            }
        ))
    );
}

#[test]
fn a_first_bid_below_the_base_price_is_too_low() {
    let locked = locked(item(100, 5));
    let cmd = command(&locked.item, UserId::generate(), plain(99));
    assert_eq!(
        place(&locked, &cmd, locked.item.created_at),
        Err(BidRejection::TooLow {
            minimum_next_bid: 100
        })
    );
}

#[test]
fn checks_run_in_the_order_the_api_lists_them() {
    // Everything is wrong at once: the first rule in docs/spec/api.md's order answers.
    let mut locked = locked(item(100, 5));
    locked.bidder_has_bid = true;
    let mut cmd = command(&locked.item, locked.item.seller, poisoned(1, 1, 1));
    cmd.bidder_may_bid = false;
    let closed_at = locked.item.close_at;
    assert_eq!(
        place(&locked, &cmd, closed_at),
        Err(BidRejection::AuctionClosed)
    );
    let open = locked.item.created_at;
    assert_eq!(place(&locked, &cmd, open), Err(BidRejection::OwnItem));
    cmd.bidder = UserId::generate();
    assert_eq!(
        place(&locked, &cmd, open),
        Err(BidRejection::EmailNotVerified)
    );
    cmd.bidder_may_bid = true;
    assert_eq!(place(&locked, &cmd, open), Err(BidRejection::AlreadyPlaced));
    locked.bidder_has_bid = false;
    assert!(matches!(
        place(&locked, &cmd, open),
        Err(BidRejection::InvalidPoison(_))
    ));
    cmd.offer = plain(1);
    assert!(matches!(
        place(&locked, &cmd, open),
        Err(BidRejection::TooLow { .. })
    ));
}

#[test]
fn the_largest_amounts_never_overflow() {
    let mut a = Auction::new(1, 1);
    let max = Money::MAX.minor_units();
    let [x, y, z] = [(); 3].map(|()| UserId::generate());
    a.bid(x, poisoned(10, max - 1, max - 1));
    a.bid(y, poisoned(20, max, max));
    assert_eq!((a.leader(), a.price()), (y, max));
    assert_eq!(
        a.try_bid(z, plain(max)),
        Err(BidRejection::TooLow {
            minimum_next_bid: max + 1
        })
    );
}

#[test]
fn a_higher_plain_bid_leads_at_its_own_amount() {
    let mut a = Auction::new(100, 5);
    let [x, y] = [(); 2].map(|()| UserId::generate());
    a.bid(x, plain(100));
    a.bid(y, plain(400));
    assert_eq!((a.leader(), a.price()), (y, 400));
}

#[test]
fn a_plain_leader_is_defended_by_nobody_but_a_poisoned_one_raises_without_exceeding_its_budget() {
    let mut a = Auction::new(100, 5);
    let [x, y] = [(); 2].map(|()| UserId::generate());
    a.bid(x, poisoned(100, 130, 50));
    assert_eq!(
        a.bid(y, plain(110)).effect,
        Effect::Defended { raised: true }
    );
    assert_eq!((a.leader(), a.price()), (x, 130));
}

#[test]
fn restoring_a_standing_checks_its_coherence() {
    let leader = Leader {
        bidder: UserId::generate(),
        ceiling: money(10),
        step: None,
        price: money(10),
    };
    assert!(Standing::restore(0, None).is_ok());
    assert!(Standing::restore(3, Some(leader)).is_ok());
    assert!(Standing::restore(0, Some(leader)).is_err());
    assert!(Standing::restore(2, None).is_err());
    let over = Leader {
        price: money(11),
        ..leader
    };
    assert!(Standing::restore(1, Some(over)).is_err());
}

#[test]
fn replay_rebuilds_the_standing_from_the_bids() {
    let mut a = Auction::new(100, 5);
    for (amount, budget) in [(100, 300), (150, 150), (200, 500), (320, 320)] {
        a.bid(UserId::generate(), poisoned(amount, budget, 5));
    }
    assert_eq!(replay(a.bids.iter().map(|(b, o)| (*b, o))), a.standing);
}

#[test]
fn an_item_closes_only_when_open_and_due() {
    let it = item(100, 5);
    assert_eq!(
        close(&it, &Standing::EMPTY, it.created_at),
        Err(CloseRejection::NotDue)
    );
    assert_eq!(
        close(&it, &Standing::EMPTY, it.close_at),
        Ok(CloseOutcome::Unsold)
    );
    let mut closed = it.clone();
    closed.status = ItemStatus::Closed(CloseOutcome::Unsold);
    assert_eq!(
        close(&closed, &Standing::EMPTY, it.close_at),
        Err(CloseRejection::NotOpen)
    );
}

#[test]
fn an_item_is_cancelled_only_while_open_and_without_bids() {
    let it = item(100, 5);
    let none = PublicStanding::default();
    let some = PublicStanding {
        bid_count: 1,
        current_price: Some(money(100)),
    };
    assert_eq!(cancel(&it, &none, it.created_at), Ok(()));
    assert_eq!(
        cancel(&it, &some, it.created_at),
        Err(CancelRejection::HasBids)
    );
    assert_eq!(
        cancel(&it, &none, it.close_at),
        Err(CancelRejection::NotOpen)
    );
}

#[test]
fn an_item_is_edited_only_while_open_before_its_close_without_bids_and_never_closing_earlier() {
    let lot = item(100, 5);
    let now = lot.created_at;
    let later = lot.close_at + Duration::hours(1);
    let change = crate::item::ItemEdit {
        title: Some(Title::parse("A brass lamp").unwrap()),
        description: Some(Description::parse("Polished").unwrap()),
        close_at: Some(later),
    };
    let no_bids = PublicStanding::default();
    let edited = edit(&lot, &no_bids, &change, now).unwrap();
    assert_eq!(
        (
            edited.title.as_str(),
            edited.description.as_str(),
            edited.close_at
        ),
        ("A brass lamp", "Polished", later)
    );
    assert_eq!((edited.id, edited.base_price), (lot.id, lot.base_price));
    // Nothing to change keeps the item as it is; the same close is allowed.
    let same_close = crate::item::ItemEdit {
        close_at: Some(lot.close_at),
        ..Default::default()
    };
    assert_eq!(edit(&lot, &no_bids, &same_close, now), Ok(lot.clone()));
    let earlier = crate::item::ItemEdit {
        close_at: Some(lot.close_at - Duration::seconds(1)),
        ..Default::default()
    };
    assert_eq!(
        edit(&lot, &no_bids, &earlier, now),
        Err(EditRejection::CloseEarlier)
    );
    let one_bid = PublicStanding {
        bid_count: 1,
        current_price: Some(money(100)),
    };
    assert_eq!(
        edit(&lot, &one_bid, &change, now),
        Err(EditRejection::HasBids)
    );
    // At its close, or once closed or cancelled, the auction is over (first).
    assert_eq!(
        edit(&lot, &one_bid, &change, lot.close_at),
        Err(EditRejection::NotOpen)
    );
    let cancelled = Item {
        status: ItemStatus::Cancelled,
        ..lot.clone()
    };
    assert_eq!(
        edit(&cancelled, &no_bids, &change, now),
        Err(EditRejection::NotOpen)
    );
}
