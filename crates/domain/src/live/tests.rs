//! Which events and notifications each step of an auction produces.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::bid::BidState;
use crate::engine::{BidCommand, LockedItem, Standing, place, view_of};
use crate::item::PublicStanding;

fn money(units: i64) -> Money {
    Money::new(units).unwrap()
}

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

/// Bids placed one after another on one item, remembering who bid what.
struct Run {
    item: Item,
    standing: Standing,
    bids: Vec<(UserId, BidOffer)>,
}

impl Run {
    fn new(base: i64, increment: i64) -> Self {
        Run {
            item: crate::engine::tests::item_at(t0(), base, increment),
            standing: Standing::EMPTY,
            bids: Vec::new(),
        }
    }

    /// Places a bid; on acceptance returns the price event and the notifications.
    fn bid(&mut self, bidder: UserId, offer: BidOffer) -> Option<(ItemEvent, Vec<Notification>)> {
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
        let placement = place(&locked, &command, t0()).ok()?;
        self.standing = placement.standing;
        self.bids.push((bidder, offer));
        let event = ItemEvent::after_bid(&self.item, &placement).unwrap();
        Some((
            event,
            notifications_after_bid(&self.item, bidder, &offer, &placement),
        ))
    }

    fn offer_of(&self, user: UserId) -> BidOffer {
        self.bids.iter().find(|(b, _)| *b == user).unwrap().1
    }

    fn listed(&self) -> ListedItem {
        ListedItem {
            item: self.item.clone(),
            standing: self.standing.public(),
        }
    }
}

fn plain(amount: i64) -> BidOffer {
    BidOffer::plain(money(amount))
}

fn poisoned(amount: i64, budget: i64, step: i64) -> BidOffer {
    BidOffer::poisoned(money(amount), money(budget), money(step))
}

fn kinds(told: &[Notification]) -> Vec<(UserId, &'static str)> {
    told.iter().map(|n| (n.user, n.data.kind())).collect()
}

#[test]
fn the_worked_example_tells_each_bidder_what_happened_to_their_bid() {
    let [alice, bob, carol, dave, erin, frank] = [(); 6].map(|()| UserId::generate());
    let mut run = Run::new(100, 5);
    let id = run.item.id;

    let (event, told) = run.bid(alice, plain(120)).unwrap();
    assert_eq!(
        event,
        ItemEvent::Price(PriceEvent {
            item: id,
            current_price: money(120),
            minimum_next_bid: 125,
            bid_count: 1,
            at: t0(),
            closing: run.item.closing(),
            extension: None,
            ledger_head: run.item.ledger_head,
        })
    );
    assert!(told.is_empty(), "a first bid displaces nobody");

    let (event, told) = run.bid(bob, poisoned(125, 200, 5)).unwrap();
    assert_eq!(event.id(), 2);
    assert_eq!(
        told,
        vec![Notification {
            user: alice,
            data: NotificationData::Outbid {
                item: id,
                current_price: money(125),
                minimum_next_bid: 130,
            },
            at: t0(),
        }]
    );

    // carol 150: bob's poison raises to 155; carol is outbid at once.
    let (_, told) = run.bid(carol, plain(150)).unwrap();
    assert_eq!(kinds(&told), vec![(bob, "auto_raised"), (carol, "outbid")]);
    assert_eq!(
        told[0].data,
        NotificationData::AutoRaised {
            item: id,
            effective: money(155),
            remaining_budget: 45,
        }
    );

    // dave 160 poison 300/10 takes the lead at 210: bob is exhausted at his 200.
    let (_, told) = run.bid(dave, poisoned(160, 300, 10)).unwrap();
    assert_eq!(
        told,
        vec![Notification {
            user: bob,
            data: NotificationData::Exhausted {
                item: id,
                effective: money(200),
                current_price: money(210),
                minimum_next_bid: 215,
            },
            at: t0(),
        }]
    );

    // erin ties at 300: dave raises to his whole budget; erin is exhausted.
    let (_, told) = run.bid(erin, poisoned(215, 300, 5)).unwrap();
    assert_eq!(
        kinds(&told),
        vec![(dave, "auto_raised"), (erin, "exhausted")]
    );
    assert!(matches!(
        told[0].data,
        NotificationData::AutoRaised { effective, remaining_budget: 0, .. } if effective == money(300)
    ));

    // frank 305 takes the lead: dave is exhausted.
    let (event, told) = run.bid(frank, plain(305)).unwrap();
    assert_eq!(kinds(&told), vec![(dave, "exhausted")]);
    assert_eq!(event.id(), 6);

    // grace 309 is refused: no event at all.
    assert!(run.bid(UserId::generate(), plain(309)).is_none());

    // Close: frank wins, the five others lost.
    let mut listed = run.listed();
    listed.item.status = ItemStatus::Closed(CloseOutcome::Sold {
        winner: frank,
        price: money(305),
    });
    let closed = ItemEvent::closed(&listed).unwrap();
    assert_eq!(closed.id(), 7, "one past the last bid");
    assert_eq!(
        closed,
        ItemEvent::Closed(ClosedEvent {
            item: id,
            final_price: Some(money(305)),
            has_winner: true,
            cancelled: false,
            bid_count: 6,
        })
    );
    let bidders: Vec<UserId> = run.bids.iter().map(|(b, _)| *b).collect();
    let told = notifications_after_close(&listed, &bidders, t0());
    assert_eq!(told.len(), 6);
    for notification in told {
        let expected = if notification.user == frank {
            "won"
        } else {
            "lost"
        };
        assert_eq!(notification.data.kind(), expected);
        assert_eq!(notification.data.item(), id);
    }
}

#[test]
fn a_plain_leader_is_only_ever_displaced_never_defended() {
    // Its price is its ceiling, and an accepted bid is above the price.
    let [alice, bob] = [(); 2].map(|()| UserId::generate());
    let mut run = Run::new(100, 5);
    run.bid(alice, plain(200)).unwrap();
    assert!(run.bid(bob, poisoned(150, 900, 5)).is_none());
    let (_, told) = run.bid(bob, poisoned(205, 900, 5)).unwrap();
    assert_eq!(kinds(&told), vec![(alice, "outbid")]);
}

#[test]
fn a_placement_without_a_leader_has_no_price_event_and_tells_nobody() {
    // No accepted bid leaves one; a placement built by hand may.
    let run = Run::new(100, 5);
    let leaderless = Placement {
        seq: 1,
        standing: Standing::EMPTY,
        effect: Effect::Defended { raised: true },
        at: t0(),
        closing: run.item.closing(),
        extended: false,
    };
    assert_eq!(ItemEvent::after_bid(&run.item, &leaderless), None);
    let told = notifications_after_bid(&run.item, UserId::generate(), &plain(100), &leaderless);
    assert!(told.is_empty(), "{told:?}");
}

#[test]
fn every_event_names_its_item() {
    let mut run = Run::new(100, 5);
    let (price, _) = run.bid(UserId::generate(), plain(100)).unwrap();
    let mut listed = run.listed();
    listed.item.status = ItemStatus::Cancelled;
    let closed = ItemEvent::closed(&listed).unwrap();
    assert_eq!([price.item(), closed.item()], [run.item.id; 2]);
}

#[test]
fn open_items_have_no_closed_event_and_cancelled_ones_close_without_a_winner() {
    let run = Run::new(100, 5);
    let mut listed = run.listed();
    assert_eq!(ItemEvent::closed(&listed), None);
    listed.item.status = ItemStatus::Cancelled;
    let event = ItemEvent::closed(&listed).unwrap();
    assert_eq!(
        event,
        ItemEvent::Closed(ClosedEvent {
            item: listed.item.id,
            final_price: None,
            has_winner: false,
            cancelled: true,
            bid_count: 0,
        })
    );
    assert_eq!(event.id(), 1);
    assert!(notifications_after_close(&listed, &[UserId::generate()], t0()).is_empty());
}

#[test]
fn an_unsold_close_tells_nobody() {
    let mut listed = ListedItem {
        item: crate::engine::tests::item_at(t0(), 100, 5),
        standing: PublicStanding::default(),
    };
    listed.item.status = ItemStatus::Closed(CloseOutcome::Unsold);
    assert_eq!(
        ItemEvent::closed(&listed),
        Some(ItemEvent::Closed(ClosedEvent {
            item: listed.item.id,
            final_price: None,
            has_winner: false,
            cancelled: false,
            bid_count: 0,
        }))
    );
    assert!(notifications_after_close(&listed, &[], t0()).is_empty());
}

#[test]
fn every_kind_is_spelled_as_the_api_says() {
    let item = ItemId::generate();
    let m = money(1);
    let all = [
        (
            NotificationData::Outbid {
                item,
                current_price: m,
                minimum_next_bid: 2,
            },
            "outbid",
        ),
        (
            NotificationData::AutoRaised {
                item,
                effective: m,
                remaining_budget: 0,
            },
            "auto_raised",
        ),
        (
            NotificationData::Exhausted {
                item,
                effective: m,
                current_price: m,
                minimum_next_bid: 2,
            },
            "exhausted",
        ),
        (
            NotificationData::Won {
                item,
                final_price: m,
            },
            "won",
        ),
        (
            NotificationData::Lost {
                item,
                final_price: m,
            },
            "lost",
        ),
    ];
    for (data, kind) in all {
        assert_eq!(data.kind(), kind);
        assert_eq!(data.item(), item);
    }
}

/// A random bid: (bidder index, amount offset over the minimum, poison).
fn arb_bid() -> impl Strategy<Value = (usize, i64, Option<(i64, i64)>)> {
    (0usize..8, 0i64..40, prop::option::of((0i64..200, 5i64..30)))
}

proptest! {
    /// Every notification matches what its recipient's own bid view says
    /// right after the bid, and names only values of the recipient's own bid
    /// or public ones; every accepted bid's event has the next id.
    #[test]
    fn notifications_agree_with_each_recipients_view(bids in prop::collection::vec(arb_bid(), 1..40)) {
        let users: Vec<UserId> = (0..8).map(|_| UserId::generate()).collect();
        let mut run = Run::new(100, 5);
        let mut last_id = 0;
        for (who, over, poison) in bids {
            let bidder = users[who];
            let minimum = run.standing.public().minimum_next_bid(&run.item);
            let amount = minimum + over;
            let offer = match poison {
                None => plain(amount),
                Some((extra, step)) => poisoned(amount, amount + extra, step),
            };
            let Some((event, told)) = run.bid(bidder, offer) else { continue };
            prop_assert_eq!(event.id(), last_id + 1);
            last_id = event.id();
            let ItemEvent::Price(price) = event else { unreachable!() };
            for n in &told {
                let own = run.offer_of(n.user);
                let view = view_of(n.user, &own, &run.standing, &run.item.status);
                match n.data {
                    NotificationData::AutoRaised { effective, remaining_budget, .. } => {
                        prop_assert_eq!(view.state, BidState::Leading);
                        prop_assert_eq!(view.effective, effective);
                        prop_assert_eq!(view.remaining_budget, remaining_budget);
                    }
                    NotificationData::Outbid { current_price, minimum_next_bid, .. } => {
                        prop_assert_eq!(view.state, BidState::Outbid);
                        prop_assert_eq!(current_price, price.current_price);
                        prop_assert_eq!(minimum_next_bid, price.minimum_next_bid);
                    }
                    NotificationData::Exhausted { effective, current_price, .. } => {
                        prop_assert_eq!(view.state, BidState::Exhausted);
                        prop_assert_eq!(effective, own.ceiling());
                        prop_assert_eq!(current_price, price.current_price);
                    }
                    NotificationData::Won { .. } | NotificationData::Lost { .. } => {
                        prop_assert!(false, "no close happened");
                    }
                }
            }
            let leader = run.standing.leader().unwrap().bidder;
            prop_assert!(told.iter().filter(|n| n.user == leader).all(|n| n.data.kind() == "auto_raised"));
        }
    }
}
