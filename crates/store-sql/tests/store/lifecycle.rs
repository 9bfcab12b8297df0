//! Closing and cancelling under the item's lock.

use std::sync::Arc;

use chrono::Duration;
use pp_domain::engine::CancelRejection;
use pp_domain::ports::{AuctionStore, CancelItemError, LifecycleDecision, PlaceBidError};
use pp_domain::{BidRejection, BidState, CloseOutcome, ItemId, ItemStatus};
use pp_store_sql::{Database, SqlStore};
use pp_testkit::{Backend, TEST_SEALING_KEY};

use crate::on_both_backends;
use crate::support::{Harness, money, plain, poisoned};

async fn a_due_item_closes_once_with_the_leader_as_winner(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(100, 5).await;
    let later = h.item(100, 5).await;
    let id = item.item.id;
    let [alice, bob] = <[_; 2]>::try_from(h.bidders(2).await).unwrap();
    h.auctions
        .place_bid(&alice, id, poisoned(100, 400, 10))
        .await
        .unwrap();
    h.auctions.place_bid(&bob, id, plain(250)).await.unwrap();

    assert!(
        h.auctions.close_due_items(10).await.unwrap().is_empty(),
        "nothing is due yet"
    );
    h.clock.advance(Duration::hours(1));

    // A second instance with its own pool closes at the same moment.
    let other = SqlStore::new(
        Database::connect(&h.database.settings()).await.unwrap(),
        Arc::new(pp_crypto::AesGcmSealer::new(&TEST_SEALING_KEY)),
    );
    let decision = LifecycleDecision::new(h.clock.clone());
    let (mine, theirs) = tokio::join!(
        h.auctions.close_due_items(10),
        other.close_due_items(decision, 10)
    );
    let closed: Vec<_> = mine
        .unwrap()
        .into_iter()
        .chain(theirs.unwrap().into_iter().map(|c| c.listed))
        .collect();
    let ids: Vec<ItemId> = closed.iter().map(|l| l.item.id).collect();
    assert_eq!(ids.len(), 2, "each item closes exactly once: {ids:?}");
    assert!(ids.contains(&id) && ids.contains(&later.item.id));

    let outcome = CloseOutcome::Sold {
        winner: alice.id,
        price: money(260),
    };
    assert_eq!(
        h.listed(&item).await.item.status,
        ItemStatus::Closed(outcome)
    );
    assert_eq!(
        h.listed(&later).await.item.status,
        ItemStatus::Closed(CloseOutcome::Unsold)
    );
    let won = h
        .auctions
        .own_bid(alice.id, id)
        .await
        .unwrap()
        .unwrap()
        .view;
    let lost = h.auctions.own_bid(bob.id, id).await.unwrap().unwrap().view;
    assert_eq!(
        (won.state, won.effective, won.remaining_budget),
        (BidState::Won, money(260), 0)
    );
    assert_eq!((lost.state, lost.effective), (BidState::Lost, money(250)));

    assert!(
        h.auctions.close_due_items(10).await.unwrap().is_empty(),
        "nothing closes twice"
    );
    let late = h.bidder().await;
    let result = h.auctions.place_bid(&late, id, plain(1_000)).await;
    assert!(matches!(
        result,
        Err(PlaceBidError::Rejected(BidRejection::AuctionClosed))
    ));
}

async fn the_closer_takes_at_most_its_limit_oldest_first(backend: Backend) {
    let h = Harness::new(backend).await;
    let first = h.item(100, 5).await;
    h.clock.advance(Duration::minutes(1));
    let second = h.item(100, 5).await;
    h.clock.advance(Duration::hours(2));
    let closed = h.auctions.close_due_items(1).await.unwrap();
    assert_eq!(
        closed.iter().map(|l| l.item.id).collect::<Vec<_>>(),
        [first.item.id]
    );
    let rest = h.auctions.close_due_items(5).await.unwrap();
    assert_eq!(
        rest.iter().map(|l| l.item.id).collect::<Vec<_>>(),
        [second.item.id]
    );
}

async fn an_item_is_cancelled_only_while_nobody_has_bid(backend: Backend) {
    let h = Harness::new(backend).await;
    let quiet = h.item(100, 5).await;
    let busy = h.item(100, 5).await;
    let bidder = h.bidder().await;
    h.auctions
        .place_bid(&bidder, busy.item.id, plain(100))
        .await
        .unwrap();

    let cancelled = h.auctions.cancel_item(quiet.item.id).await.unwrap();
    assert_eq!(cancelled.item.status, ItemStatus::Cancelled);
    assert_eq!(h.listed(&quiet).await.item.status, ItemStatus::Cancelled);
    let again = h.auctions.cancel_item(quiet.item.id).await;
    assert!(matches!(
        again,
        Err(CancelItemError::Rejected(CancelRejection::NotOpen))
    ));
    let has_bids = h.auctions.cancel_item(busy.item.id).await;
    assert!(matches!(
        has_bids,
        Err(CancelItemError::Rejected(CancelRejection::HasBids))
    ));
    let missing = h.auctions.cancel_item(ItemId::generate()).await;
    assert!(matches!(missing, Err(CancelItemError::ItemNotFound)));
    let on_cancelled = h
        .auctions
        .place_bid(&bidder, quiet.item.id, plain(100))
        .await;
    assert!(matches!(
        on_cancelled,
        Err(PlaceBidError::Rejected(BidRejection::AuctionClosed))
    ));
    // A cancelled item is never closed.
    h.clock.advance(Duration::hours(2));
    let closed = h.auctions.close_due_items(10).await.unwrap();
    assert_eq!(
        closed.iter().map(|l| l.item.id).collect::<Vec<_>>(),
        [busy.item.id]
    );
}

on_both_backends!(
    a_due_item_closes_once_with_the_leader_as_winner,
    the_closer_takes_at_most_its_limit_oldest_first,
    an_item_is_cancelled_only_while_nobody_has_bid,
);
