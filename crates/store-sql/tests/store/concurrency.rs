//! Many bids at the same moment: nothing lost, nothing doubled, and the
//! outcome equals a sequential replay in commit (`seq`) order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pp_domain::engine::replay;
use pp_domain::ports::{AcceptedBid, AuctionStore, PlaceBidError};
use pp_domain::{BidOffer, BidRejection};
use pp_testkit::Backend;
use rand::Rng;
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
    // price event per accepted bid went out, ids 1..=n (in any order: each
    // bidder publishes after its own commit).
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
    let mut ids: Vec<u64> = h.events.events().iter().map(|e| e.id()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=stored.len() as u64).collect::<Vec<_>>());
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
