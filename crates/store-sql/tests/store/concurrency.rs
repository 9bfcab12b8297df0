//! Many bids at the same moment: nothing lost, nothing doubled, and the
//! outcome equals a sequential replay in commit (`seq`) order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pp_domain::engine::replay;
use pp_domain::ports::{AcceptedBid, AuctionStore, PlaceBidError};
use pp_domain::{BidOffer, BidRejection, ItemId, User};
use pp_testkit::Backend;
use rand::{Rng, RngExt};
use tokio::sync::Barrier;

use crate::on_both_backends;
use crate::support::{Harness, plain, poisoned};

fn random_offer(rng: &mut impl Rng) -> BidOffer {
    let amount = rng.random_range(100..2_000);
    if rng.random_bool(0.5) {
        poisoned(
            amount,
            amount + rng.random_range(0..1_000),
            rng.random_range(5..50),
        )
    } else {
        plain(amount)
    }
}

async fn fifty_bidders_at_once_lose_nothing_and_replay_exactly(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let item = h.item(100, 5).await;
    let bidders = h.bidders(50).await;
    let barrier = Arc::new(Barrier::new(bidders.len()));
    let mut rng = rand::rng();

    let tasks: Vec<_> = bidders
        .iter()
        .map(|bidder| {
            let (h, barrier, offer) =
                (Arc::clone(&h), Arc::clone(&barrier), random_offer(&mut rng));
            let (bidder, id) = (bidder.clone(), item.item.id);
            tokio::spawn(async move {
                barrier.wait().await;
                (offer, h.auctions.place_bid(&bidder, id, offer).await)
            })
        })
        .collect();
    let mut accepted: Vec<AcceptedBid> = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (_, Ok(bid)) => accepted.push(bid),
            (_, Err(PlaceBidError::Rejected(BidRejection::TooLow { .. }))) => {}
            (offer, Err(other)) => panic!("{offer:?} failed unexpectedly: {other:?}"),
        }
    }
    assert!(!accepted.is_empty());

    let stored = h
        .store
        .bids_in_order(item.item.id, 0, u32::MAX)
        .await
        .unwrap();
    // Every accepted bid is stored exactly once, and nothing else is.
    let stored_ids: HashSet<_> = stored.iter().map(|b| b.id).collect();
    assert_eq!(stored.len(), accepted.len());
    assert_eq!(stored_ids, accepted.iter().map(|a| a.bid.id).collect());
    // Arrival numbers are 1..=n without gaps, each as its bidder was told.
    let seqs: Vec<u64> = stored.iter().map(|b| b.seq).collect();
    assert_eq!(seqs, (1..=stored.len() as u64).collect::<Vec<_>>());
    let told: HashMap<_, _> = accepted.iter().map(|a| (a.bid.id, a)).collect();
    for (i, bid) in stored.iter().enumerate() {
        let answer = told[&bid.id];
        assert_eq!((answer.bid.seq, answer.bid.offer), (bid.seq, bid.offer));
        // What each bidder was told is the replay of every bid up to theirs.
        let prefix = replay(stored[..=i].iter().map(|b| (b.bidder, &b.offer)));
        assert_eq!(answer.placement.standing, prefix);
    }
    // The final standing is the sequential replay of the stored bids.
    let replayed = replay(stored.iter().map(|b| (b.bidder, &b.offer)));
    assert_eq!(h.standing(&item).await, replayed);
    assert_eq!(h.listed(&item).await.standing, replayed.public());

    // The kept price history is the replayed price after each bid, and one
    // price event per accepted bid went out, in commit order: ids 1..=n.
    let history = h
        .store
        .price_history(item.item.id, 0, u32::MAX)
        .await
        .unwrap();
    assert_eq!(history.len(), stored.len());
    for (i, point) in history.iter().enumerate() {
        let prefix = replay(stored[..=i].iter().map(|b| (b.bidder, &b.offer)));
        assert_eq!(
            (point.seq, Some(point.price)),
            (stored[i].seq, prefix.public().current_price)
        );
        assert_eq!(point.at, stored[i].created_at);
    }
    let ids: Vec<u64> = h.events.events().iter().map(|e| e.id()).collect();
    assert_eq!(ids, (1..=stored.len() as u64).collect::<Vec<_>>());
}

async fn a_bid_whose_caller_gave_up_still_publishes_its_events(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let item = h.item(100, 5).await;
    let bidders = h.bidders(30).await;
    // Every caller stops waiting at once (its request was cancelled, say):
    // some bids never reach the queue, the others are decided and stored,
    // and each stored one must still be announced.
    let tasks: Vec<_> = bidders
        .iter()
        .enumerate()
        .map(|(n, bidder)| {
            let (h, bidder, id) = (Arc::clone(&h), bidder.clone(), item.item.id);
            tokio::spawn(async move {
                let offer = plain(100 + 5 * n as i64);
                h.auctions.place_bid(&bidder, id, offer).await
            })
        })
        .collect();
    // Give up once the first bids are queued.
    for _ in 0..100_000 {
        if !h.store.bids_settled() {
            break;
        }
        tokio::task::yield_now().await;
    }
    for task in &tasks {
        task.abort();
    }
    // The queue still drains; wait for it (bounded) before comparing.
    for _ in 0..400 {
        if h.store.bids_settled() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let stored = h
        .store
        .bids_in_order(item.item.id, 0, u32::MAX)
        .await
        .unwrap();
    assert!(!stored.is_empty(), "no queued bid was decided");
    let ids: Vec<u64> = h.events.events().iter().map(|e| e.id()).collect();
    assert_eq!(ids, stored.iter().map(|b| b.seq).collect::<Vec<_>>());
}

async fn five_concurrent_bids_by_one_user_store_exactly_one(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let item = h.item(100, 5).await;
    let bidder = h.bidder().await;
    let barrier = Arc::new(Barrier::new(5));
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let (h, barrier, id) = (Arc::clone(&h), Arc::clone(&barrier), item.item.id);
            let bidder = bidder.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                h.auctions.place_bid(&bidder, id, plain(100 + i * 10)).await
            })
        })
        .collect();
    let mut placed = 0;
    let mut already = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => placed += 1,
            Err(PlaceBidError::Rejected(BidRejection::AlreadyPlaced)) => already += 1,
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!((placed, already), (1, 4));
    assert_eq!(
        h.store
            .bids_in_order(item.item.id, 0, u32::MAX)
            .await
            .unwrap()
            .len(),
        1
    );
}

on_both_backends!(
    fifty_bidders_at_once_lose_nothing_and_replay_exactly,
    five_concurrent_bids_by_one_user_store_exactly_one,
    bids_on_many_items_at_once_each_replay_exactly_per_item,
    a_bid_whose_caller_gave_up_still_publishes_its_events,
);

async fn bids_on_many_items_at_once_each_replay_exactly_per_item(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let mut items = Vec::new();
    for _ in 0..8 {
        items.push(h.item(100, 5).await.item.id);
    }
    let bidders = h.bidders(20).await;
    let barrier = Arc::new(Barrier::new(bidders.len() * 3));
    let mut rng = rand::rng();
    let mut tasks = Vec::new();
    for (n, bidder) in bidders.iter().enumerate() {
        // Each bidder on three items; one of them sometimes does not exist.
        for k in 0..3 {
            let item = if n % 7 == 0 && k == 2 {
                pp_domain::ItemId::generate()
            } else {
                items[(n + k * 3) % items.len()]
            };
            let (h, barrier, offer, bidder) = (
                Arc::clone(&h),
                Arc::clone(&barrier),
                random_offer(&mut rng),
                bidder.clone(),
            );
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                (item, h.auctions.place_bid(&bidder, item, offer).await)
            }));
        }
    }
    let mut accepted: HashMap<pp_domain::ItemId, usize> = HashMap::new();
    for task in tasks {
        match task.await.unwrap() {
            (item, Ok(bid)) => {
                assert_eq!(bid.bid.item, item);
                *accepted.entry(item).or_default() += 1;
            }
            (item, Err(PlaceBidError::ItemNotFound)) => assert!(!items.contains(&item)),
            (_, Err(PlaceBidError::Rejected(BidRejection::TooLow { .. }))) => {}
            (_, Err(other)) => panic!("failed unexpectedly: {other:?}"),
        }
    }
    for item in items {
        let stored = h.store.bids_in_order(item, 0, u32::MAX).await.unwrap();
        assert_eq!(stored.len(), accepted.get(&item).copied().unwrap_or(0));
        let seqs: Vec<u64> = stored.iter().map(|b| b.seq).collect();
        assert_eq!(seqs, (1..=stored.len() as u64).collect::<Vec<_>>());
        let replayed = replay(stored.iter().map(|b| (b.bidder, &b.offer)));
        let listed = h.store.listed_item(item).await.unwrap().unwrap();
        assert_eq!(listed.standing, replayed.public());
        if let Some(first) = stored.first() {
            let record = h
                .store
                .bid_record(item, first.bidder)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(record.standing, replayed);
        }
    }
}

/// Takes `item`'s row lock from outside the store (PostgreSQL) and holds it
/// until the returned transaction ends: the bid drainer waits for it, and
/// bids queued meanwhile share its next batch.
async fn hold_item_lock(h: &Harness, item: ItemId) -> sea_orm::DatabaseTransaction {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

    let holder = h.store.database().connection().begin().await.unwrap();
    holder
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT id FROM items WHERE id = $1 FOR UPDATE",
            [item.as_uuid().into()],
        ))
        .await
        .unwrap();
    holder
}

/// A plain bid of `amount`, placed in a task of its own.
fn bid_in_task(
    h: &Arc<Harness>,
    bidder: &User,
    item: ItemId,
    amount: i64,
) -> tokio::task::JoinHandle<Result<AcceptedBid, PlaceBidError>> {
    let (h, bidder) = (Arc::clone(h), bidder.clone());
    tokio::spawn(async move { h.auctions.place_bid(&bidder, item, plain(amount)).await })
}

/// A bid batch that fails on one item (its standing does not open) still
/// decides the bids on the other items it holds. PostgreSQL only: a row
/// lock held from outside keeps the queue's drainer waiting, so the bids
/// on the bad and the good item are sure to share the next batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_bad_item_costs_only_its_own_bids_in_a_shared_batch() {
    use sea_orm::{ConnectionTrait, Statement};

    let h = Arc::new(Harness::new(Backend::Postgres).await);
    let blocker = h.item(100, 5).await.item.id;
    let bad = h.item(100, 5).await.item.id;
    let good = h.item(100, 5).await.item.id;
    let conn = h.store.database().connection();
    // A standing that is not a sealed value: opening it fails.
    conn.execute_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        r#"UPDATE items SET sealed_standing = '\x00'::bytea, bid_count = 1, current_price = 100 WHERE id = $1"#,
        [bad.as_uuid().into()],
    ))
    .await
    .unwrap();

    let holder = hold_item_lock(&h, blocker).await;
    let bidders = h.bidders(3).await;
    let bid = |bidder: &pp_domain::User, item| bid_in_task(&h, bidder, item, 200);
    let first = bid(&bidders[0], blocker);
    // The drainer now waits for the lock; the next two bids queue behind it.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let on_bad = bid(&bidders[1], bad);
    let on_good = bid(&bidders[2], good);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    holder.commit().await.unwrap();

    first.await.unwrap().unwrap();
    let refused = on_bad.await.unwrap();
    assert!(
        matches!(
            refused,
            Err(PlaceBidError::Store(
                pp_domain::ports::StoreError::Integrity(_)
            ))
        ),
        "{refused:?}"
    );
    let accepted = on_good.await.unwrap().unwrap();
    assert_eq!(accepted.bid.item, good);
    assert_eq!(h.store.bids_in_order(good, 0, 10).await.unwrap().len(), 1);
}

/// In one batch, bidders who already bid on an item are refused and a new
/// bidder on it is decided on the standing the earlier bids left, next to
/// a bid on another item. PostgreSQL only: a row lock held from outside
/// keeps the queue's drainer waiting, so the later bids share the next
/// batch (and the item comes back once for each earlier bidder in it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn earlier_bidders_are_refused_in_a_shared_batch_and_the_rest_decided() {
    let h = Arc::new(Harness::new(Backend::Postgres).await);
    let blocker = h.item(100, 5).await.item.id;
    let item = h.item(100, 5).await.item.id;
    let other = h.item(100, 5).await.item.id;
    let bidders = h.bidders(4).await;
    for (bidder, amount) in bidders[..2].iter().zip([200, 300]) {
        h.auctions
            .place_bid(bidder, item, plain(amount))
            .await
            .unwrap();
    }

    let holder = hold_item_lock(&h, blocker).await;
    let first = bid_in_task(&h, &bidders[3], blocker, 200);
    // The drainer now waits for the lock; the next bids queue behind it.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let again = [
        bid_in_task(&h, &bidders[0], item, 1_000),
        bid_in_task(&h, &bidders[1], item, 1_000),
    ];
    let newcomer = bid_in_task(&h, &bidders[2], item, 400);
    let elsewhere = bid_in_task(&h, &bidders[0], other, 150);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    holder.commit().await.unwrap();

    first.await.unwrap().unwrap();
    for refused in again {
        let refused = refused.await.unwrap();
        assert!(
            matches!(
                refused,
                Err(PlaceBidError::Rejected(BidRejection::AlreadyPlaced))
            ),
            "{refused:?}"
        );
    }
    let accepted = newcomer.await.unwrap().unwrap();
    assert_eq!(accepted.placement.seq, 3);
    assert_eq!(accepted.placement.standing.bid_count(), 3);
    assert_eq!(
        accepted.placement.standing.public().current_price,
        Some(pp_domain::Money::new(400).unwrap())
    );
    assert_eq!(elsewhere.await.unwrap().unwrap().placement.seq, 1);
    let stored = h.store.bids_in_order(item, 0, 10).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[2].bidder, bidders[2].id);
}
