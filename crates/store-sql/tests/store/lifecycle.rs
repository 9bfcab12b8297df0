//! Closing and cancelling under the item's lock.

use std::sync::Arc;

use chrono::Duration;
use pp_domain::engine::CancelRejection;
use pp_domain::ports::{
    AuctionStore, CancelItemError, LifecycleDecision, PlaceBidError, StoreError,
};
use pp_domain::{BidRejection, BidState, CloseOutcome, ItemFilter, ItemId, ItemSort, ItemStatus};
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
        h.auctions
            .close_due_items(10)
            .await
            .unwrap()
            .closed
            .is_empty(),
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
        .closed
        .into_iter()
        .chain(theirs.unwrap().closed.into_iter().map(|c| c.listed))
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
        h.auctions
            .close_due_items(10)
            .await
            .unwrap()
            .closed
            .is_empty(),
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
    let closed = h.auctions.close_due_items(1).await.unwrap().closed;
    assert_eq!(
        closed.iter().map(|l| l.item.id).collect::<Vec<_>>(),
        [first.item.id]
    );
    let rest = h.auctions.close_due_items(5).await.unwrap().closed;
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

    let cancelled = h
        .auctions
        .cancel_item(quiet.item.id, h.seller.id, &Default::default())
        .await
        .unwrap();
    assert_eq!(cancelled.item.status, ItemStatus::Cancelled);
    assert_eq!(h.listed(&quiet).await.item.status, ItemStatus::Cancelled);
    let again = h
        .auctions
        .cancel_item(quiet.item.id, h.seller.id, &Default::default())
        .await;
    assert!(matches!(
        again,
        Err(CancelItemError::Rejected(CancelRejection::NotOpen))
    ));
    let has_bids = h
        .auctions
        .cancel_item(busy.item.id, h.seller.id, &Default::default())
        .await;
    assert!(matches!(
        has_bids,
        Err(CancelItemError::Rejected(CancelRejection::HasBids))
    ));
    let missing = h
        .auctions
        .cancel_item(ItemId::generate(), h.seller.id, &Default::default())
        .await;
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
    let closed = h.auctions.close_due_items(10).await.unwrap().closed;
    assert_eq!(
        closed.iter().map(|l| l.item.id).collect::<Vec<_>>(),
        [busy.item.id]
    );
}

/// Overwrites columns of `item`'s row behind the store's back, as a
/// tampering hand or an older version of the code would have written them.
async fn overwrite(h: &Harness, item: ItemId, columns: Vec<(&'static str, sea_orm::Value)>) {
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Expr, ExprTrait, Query};

    let mut update = Query::update();
    update.table("items");
    for (column, value) in columns {
        update.value(column, value);
    }
    h.store
        .database()
        .connection()
        .execute(update.and_where(Expr::col("id").eq(item.as_uuid())))
        .await
        .unwrap();
}

/// A tampered item (its public price no longer matches its sealed
/// standing) stays open and is passed by; the items due after it close.
async fn an_unreadable_item_never_holds_up_the_ones_due_after_it(backend: Backend) {
    let h = Harness::new(backend).await;
    let bad = h.item(100, 5).await;
    h.clock.advance(Duration::minutes(1));
    let good = h.item(100, 5).await;
    let bidder = h.bidder().await;
    h.auctions
        .place_bid(&bidder, bad.item.id, plain(100))
        .await
        .unwrap();
    overwrite(&h, bad.item.id, vec![("current_price", 90_i64.into())]).await;
    h.clock.advance(Duration::hours(2));

    // The bad item is the oldest due: a round of one takes it first, and
    // fails it, without closing anything or failing the round.
    let first = h.auctions.close_due_items(1).await.unwrap();
    assert!(first.closed.is_empty());
    assert_eq!(first.failed.len(), 1);
    assert_eq!(first.failed[0].item, bad.item.id);
    assert_eq!(first.failed[0].failures, 1);
    assert!(matches!(first.failed[0].error, StoreError::Integrity(_)));
    // The next round passes it by and closes the item due after it.
    let second = h.auctions.close_due_items(1).await.unwrap();
    assert_eq!(
        second.closed.iter().map(|l| l.item.id).collect::<Vec<_>>(),
        [good.item.id]
    );
    assert!(second.failed.is_empty());
    assert_eq!(h.listed(&bad).await.item.status, ItemStatus::Open);

    // Retried after a minute, then two.
    h.clock.advance(Duration::seconds(61));
    let retried = h.auctions.close_due_items(10).await.unwrap();
    assert_eq!(
        retried
            .failed
            .iter()
            .map(|f| f.failures)
            .collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(
        retried.failed[0].retry_at,
        pp_domain::ports::Clock::now(h.clock.as_ref()) + Duration::minutes(2)
    );
    h.clock.advance(Duration::seconds(61));
    assert_eq!(h.auctions.close_due_items(10).await.unwrap().taken(), 0);
}

/// A bad item in the middle of a round: the items before and after it
/// commit in that same round.
async fn a_round_with_a_bad_item_still_commits_the_others(backend: Backend) {
    let h = Harness::new(backend).await;
    let before = h.item(100, 5).await;
    let bad = h.item(100, 5).await;
    let after = h.item(100, 5).await;
    overwrite(&h, bad.item.id, vec![("current_price", 500_i64.into())]).await;
    h.clock.advance(Duration::hours(2));
    let round = h.auctions.close_due_items(10).await.unwrap();
    let mut closed: Vec<ItemId> = round.closed.iter().map(|l| l.item.id).collect();
    closed.sort();
    let mut expected = vec![before.item.id, after.item.id];
    expected.sort();
    assert_eq!(closed, expected);
    assert_eq!(round.failed.len(), 1);
    for item in [&before, &after] {
        assert_eq!(
            h.listed(item).await.item.status,
            ItemStatus::Closed(CloseOutcome::Unsold)
        );
    }
}

/// Items listed before titles refused control characters stay readable,
/// listable and closable.
async fn an_item_listed_before_the_text_rules_is_read_and_closed(backend: Backend) {
    let h = Harness::new(backend).await;
    let legacy = h.item(100, 5).await;
    overwrite(
        &h,
        legacy.item.id,
        vec![
            ("title", "Vase\nblue \u{1b}[1m".into()),
            ("description", "line\u{0b}tab".into()),
        ],
    )
    .await;
    assert_eq!(
        h.listed(&legacy).await.item.title.as_str(),
        "Vase\nblue \u{1b}[1m"
    );
    let listed = h
        .page(&ItemFilter::default(), ItemSort::Newest, None, 10)
        .await;
    assert_eq!(listed.len(), 1);
    h.clock.advance(Duration::hours(2));
    let round = h.auctions.close_due_items(10).await.unwrap();
    assert!(round.failed.is_empty());
    assert_eq!(round.closed.len(), 1);
}

on_both_backends!(
    a_due_item_closes_once_with_the_leader_as_winner,
    the_closer_takes_at_most_its_limit_oldest_first,
    an_item_is_cancelled_only_while_nobody_has_bid,
    an_unreadable_item_never_holds_up_the_ones_due_after_it,
    a_round_with_a_bad_item_still_commits_the_others,
    an_item_listed_before_the_text_rules_is_read_and_closed,
);
