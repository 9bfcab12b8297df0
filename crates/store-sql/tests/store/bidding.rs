//! Placing bids through the real store, one at a time.

use pp_domain::ports::{AuctionStore, PlaceBidError};
use pp_domain::{BidRejection, BidState, ItemId};
use pp_testkit::Backend;

use crate::on_both_backends;
use crate::support::{Harness, plain, poisoned};

async fn a_listed_item_reads_back_as_it_was_stored(backend: Backend) {
    let h = Harness::new(backend).await;
    let listed = h.item(100, 5).await;
    assert_eq!(h.listed(&listed).await, listed);
    assert_eq!(listed.minimum_next_bid(), 100);
    assert!(
        h.store
            .listed_item(ItemId::generate())
            .await
            .unwrap()
            .is_none()
    );
}

async fn the_worked_example_holds_through_the_store(backend: Backend) {
    use BidState::{Exhausted, Leading, Outbid};
    let h = Harness::new(backend).await;
    let item = h.item(100, 5).await;
    let id = item.item.id;
    let [alice, bob, carol, dave, erin, frank, grace] =
        <[_; 7]>::try_from(h.bidders(7).await).unwrap();

    let steps = [
        (&alice, plain(120), 120, vec![(&alice, Leading, 120, 0)]),
        (
            &bob,
            poisoned(125, 200, 5),
            125,
            vec![(&alice, Outbid, 120, 0), (&bob, Leading, 125, 75)],
        ),
        (
            &carol,
            plain(150),
            155,
            vec![(&carol, Outbid, 150, 0), (&bob, Leading, 155, 45)],
        ),
        (
            &dave,
            poisoned(160, 300, 10),
            210,
            vec![(&bob, Exhausted, 200, 0), (&dave, Leading, 210, 90)],
        ),
        (
            &erin,
            poisoned(215, 300, 5),
            300,
            vec![(&erin, Exhausted, 300, 0), (&dave, Leading, 300, 0)],
        ),
        (
            &frank,
            plain(305),
            305,
            vec![(&dave, Exhausted, 300, 0), (&frank, Leading, 305, 0)],
        ),
    ];
    for (bidder, offer, price, views) in steps {
        let accepted = h.auctions.place_bid(bidder, id, offer).await.unwrap();
        let listed = h.listed(&item).await;
        assert_eq!(
            listed.standing.current_price.map(|p| p.minor_units()),
            Some(price)
        );
        assert_eq!(accepted.listed_item(), listed);
        for (who, state, effective, remaining) in views {
            let own = h.auctions.own_bid(who.id, id).await.unwrap().unwrap();
            assert_eq!(
                (
                    own.view.state,
                    own.view.effective.minor_units(),
                    own.view.remaining_budget
                ),
                (state, effective, remaining)
            );
        }
    }
    let low = h.auctions.place_bid(&grace, id, plain(309)).await;
    assert!(matches!(
        low,
        Err(PlaceBidError::Rejected(BidRejection::TooLow {
            minimum_next_bid: 310
        }))
    ));
    // The rejection used nothing up: grace may still bid.
    assert!(h.auctions.own_bid(grace.id, id).await.unwrap().is_none());
    h.auctions.place_bid(&grace, id, plain(310)).await.unwrap();
    assert_eq!(h.listed(&item).await.standing.bid_count, 7);
}

async fn every_rejection_stores_nothing(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(100, 5).await;
    let id = item.item.id;
    let bidder = h.bidder().await;
    let rejected = [
        (poisoned(150, 140, 5), "budget below amount"),
        (poisoned(150, 300, 4), "step below increment"),
        (plain(99), "below base price"),
    ];
    for (offer, why) in rejected {
        let result = h.auctions.place_bid(&bidder, id, offer).await;
        assert!(
            matches!(result, Err(PlaceBidError::Rejected(_))),
            "{why}: {result:?}"
        );
    }
    let own_item = h.auctions.place_bid(&h.seller, id, plain(100)).await;
    assert!(matches!(
        own_item,
        Err(PlaceBidError::Rejected(BidRejection::OwnItem))
    ));
    let unverified = pp_testkit::create_user(h.users(), pp_domain::Role::User, false).await;
    let result = h.auctions.place_bid(&unverified, id, plain(100)).await;
    assert!(matches!(
        result,
        Err(PlaceBidError::Rejected(BidRejection::EmailNotVerified))
    ));
    let missing = h
        .auctions
        .place_bid(&bidder, ItemId::generate(), plain(100))
        .await;
    assert!(matches!(missing, Err(PlaceBidError::ItemNotFound)));

    assert!(
        h.store
            .bids_in_order(id, 0, u32::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(h.listed(&item).await, item);
    // …and the bidder still has their one bid.
    h.auctions.place_bid(&bidder, id, plain(100)).await.unwrap();
    let again = h.auctions.place_bid(&bidder, id, plain(500)).await;
    assert!(matches!(
        again,
        Err(PlaceBidError::Rejected(BidRejection::AlreadyPlaced))
    ));
    assert_eq!(
        h.store.bids_in_order(id, 0, u32::MAX).await.unwrap().len(),
        1
    );
}

async fn a_bid_after_close_at_is_refused_before_the_closer_runs(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(100, 5).await;
    let bidder = h.bidder().await;
    h.clock.advance(chrono::Duration::hours(1));
    let late = h
        .auctions
        .place_bid(&bidder, item.item.id, plain(100))
        .await;
    assert!(matches!(
        late,
        Err(PlaceBidError::Rejected(BidRejection::AuctionClosed))
    ));
    assert_eq!(
        h.listed(&item).await.item.status,
        pp_domain::ItemStatus::Open
    );
}

on_both_backends!(
    a_listed_item_reads_back_as_it_was_stored,
    the_worked_example_holds_through_the_store,
    every_rejection_stores_nothing,
    a_bid_after_close_at_is_refused_before_the_closer_runs,
);
