//! Soft close, the bid ledger and item editing on real databases.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{Duration, TimeZone, Utc};
use pp_domain::engine::{BidCommand, EditRejection, LockedItem, place};
use pp_domain::item::ItemEditDraft;
use pp_domain::ledger::{ChainHash, head_of};
use pp_domain::ports::{AuctionStore, Clock, EditItemError, PlaceBidError};
use pp_domain::service::{AuctionPolicy, AuctionService, EditError};
use pp_domain::{BidRejection, Item, ItemId, ItemStatus, Standing};
use pp_testkit::{Backend, RecordedEvents};
use sea_orm::sea_query::{Expr, Query, UpdateStatement};
use sea_orm::{ConnectionTrait, ExprTrait, TransactionTrait};
use tokio::sync::Barrier;

use crate::on_both_backends;
use crate::support::{Harness, plain, poisoned};

/// Soft close, one bid at a time: only a late change of leader moves the
/// close, never past the rule's count; the closer waits for the moved close;
/// a bid at or after it is `auction_closed`.
async fn a_late_change_of_leader_moves_the_close_and_the_closer_waits_for_it(backend: Backend) {
    let h = Harness::new(backend).await;
    let t0 = h.clock.now();
    // Closes in 60 s; the last 300 s are the window; 120 s after the bid; twice.
    let listed = h
        .item_closing(100, 5, Duration::seconds(60), Some((300, 120, 2)))
        .await;
    let id = listed.item.id;
    let [alice, bob, carol, dave, erin] = <[_; 5]>::try_from(h.bidders(5).await).unwrap();

    // The first bid makes the first leader: extension 1.
    let first = h
        .auctions
        .place_bid(&alice, id, poisoned(100, 1_000, 10))
        .await
        .unwrap();
    assert!(first.placement.extended);
    assert_eq!(first.item.close_at, t0 + Duration::seconds(120));
    // Below alice's ceiling: the leader stays, nothing moves.
    h.clock.advance(Duration::seconds(30));
    let defended = h.auctions.place_bid(&bob, id, plain(200)).await.unwrap();
    assert!(!defended.placement.extended);
    assert_eq!(defended.item.close_at, t0 + Duration::seconds(120));
    // Past the listed close, but not the moved one: the closer waits.
    h.clock.advance(Duration::seconds(70));
    assert!(
        h.auctions
            .close_due_items(10)
            .await
            .unwrap()
            .closed
            .is_empty()
    );
    let took = h
        .auctions
        .place_bid(&carol, id, plain(2_000))
        .await
        .unwrap();
    assert!(took.placement.extended);
    let stored = h.listed(&listed).await.item;
    assert_eq!(
        (stored.close_at, stored.extensions_used),
        (t0 + Duration::seconds(220), 2)
    );
    // Both extensions used: a new leader no longer moves it.
    h.clock.advance(Duration::seconds(100));
    let last = h.auctions.place_bid(&dave, id, plain(3_000)).await.unwrap();
    assert!(!last.placement.extended);
    h.clock.advance(Duration::seconds(20));
    let late = h.auctions.place_bid(&erin, id, plain(4_000)).await;
    assert!(
        matches!(
            late,
            Err(PlaceBidError::Rejected(BidRejection::AuctionClosed))
        ),
        "{late:?}"
    );
    let closed = h.auctions.close_due_items(10).await.unwrap().closed;
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].item.extensions_used, 2);

    // Replay keeps each extension with its bid, and tells the close as it is.
    let history = h.store.price_history(id, 0, 10).await.unwrap();
    let moved: Vec<_> = history
        .iter()
        .map(|p| p.extension.map(|c| (c.close_at - t0, c.extensions_used)))
        .collect();
    assert_eq!(
        moved,
        [
            Some((Duration::seconds(120), 1)),
            None,
            Some((Duration::seconds(220), 2)),
            None
        ]
    );
    // The live price events carried the close after each bid.
    let closes: Vec<_> = h
        .events
        .events()
        .iter()
        .filter_map(|event| match event {
            pp_domain::live::ItemEvent::Price(price) => {
                Some((price.closing.close_at - t0, price.extension.is_some()))
            }
            pp_domain::live::ItemEvent::Closed(_) => None,
        })
        .collect();
    assert_eq!(
        closes,
        [
            (Duration::seconds(120), true),
            (Duration::seconds(120), false),
            (Duration::seconds(220), true),
            (Duration::seconds(220), false)
        ]
    );
}

/// A clock that moves one second on every reading: each bid of a batch is
/// decided at its own moment, so a batch crosses the listed close.
struct TickingClock {
    start: chrono::DateTime<Utc>,
    ticks: AtomicI64,
}

impl Clock for TickingClock {
    fn now(&self) -> pp_domain::Timestamp {
        self.start + Duration::seconds(self.ticks.fetch_add(1, Ordering::SeqCst))
    }
}

/// Soft close decided in batches: thirty bids at once on one item, each at
/// its own moment, end exactly as the engine decides them one by one in
/// `seq` order at the moments stored with them, including every moved close.
async fn soft_close_in_a_batch_of_bids_equals_the_engine_one_by_one(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let start = Utc.timestamp_opt(1_900_000_000, 0).unwrap();
    let clock = Arc::new(TickingClock {
        start,
        ticks: AtomicI64::new(0),
    });
    let auctions = AuctionService::new(
        Arc::new(h.store.clone()),
        Arc::new(RecordedEvents::default()),
        clock.clone(),
        AuctionPolicy::default(),
    );
    // Listed at `start`, closing 5 readings later unless bids move it.
    let draft = pp_domain::ItemDraft {
        title: "Hot lot".into(),
        description: String::new(),
        base_price: 100,
        min_increment: Some(5),
        currency: None,
        close_at: start + Duration::seconds(5),
        soft_close: Some((60, 8, 100)),
    };
    let listed = auctions
        .list_item(h.seller.id, draft, &Default::default())
        .await
        .unwrap();
    let original: Item = listed.item.clone();
    let bidders = h.bidders(30).await;
    let barrier = Arc::new(Barrier::new(bidders.len()));
    let tasks: Vec<_> = bidders
        .iter()
        .enumerate()
        .map(|(n, bidder)| {
            let (auctions, barrier, bidder) = (auctions.clone(), barrier.clone(), bidder.clone());
            let id = original.id;
            tokio::spawn(async move {
                barrier.wait().await;
                // Rising ceilings: most bids take the lead when they come.
                let amount = 100 + 50 * n as i64;
                auctions
                    .place_bid(&bidder, id, poisoned(amount, amount + 20, 5))
                    .await
            })
        })
        .collect();
    let mut closed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) | Err(PlaceBidError::Rejected(BidRejection::TooLow { .. })) => {}
            Err(PlaceBidError::Rejected(BidRejection::AuctionClosed)) => closed += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    let stored = h
        .store
        .bids_in_order(original.id, 0, u32::MAX)
        .await
        .unwrap();
    let history = h
        .store
        .price_history(original.id, 0, u32::MAX)
        .await
        .unwrap();
    assert_eq!(history.len(), stored.len());
    // One by one through the engine, at each bid's stored moment.
    let (mut item, mut standing) = (original.clone(), Standing::EMPTY);
    for (bid, point) in stored.iter().zip(&history) {
        let locked = LockedItem {
            item: item.clone(),
            standing,
            bidder_has_bid: false,
        };
        let command = BidCommand {
            item: item.id,
            bidder: bid.bidder,
            bidder_may_bid: true,
            offer: bid.offer,
        };
        let placement = place(&locked, &command, bid.created_at).unwrap();
        assert_eq!(placement.seq, bid.seq);
        assert_eq!(
            point.extension,
            placement.extended.then_some(placement.closing),
            "bid {}",
            bid.seq
        );
        item.extend_to(placement.closing);
        standing = placement.standing;
    }
    let now = h.listed(&listed).await;
    assert_eq!(
        (now.item.close_at, now.item.extensions_used),
        (item.close_at, item.extensions_used)
    );
    // The first bid always moves it (a first leader inside the window).
    assert!(now.item.extensions_used >= 1);
    assert!(now.item.close_at > original.close_at);
    // A bid refused as closed was decided at or after the close as it then
    // stood: the clock had reached the final close by the last reading.
    let last_reading = start + Duration::seconds(clock.ticks.load(Ordering::SeqCst) - 1);
    assert!(
        closed == 0 || last_reading >= now.item.close_at,
        "{closed} refused as closed"
    );
}

/// The chain is stored with each bid and the head with the item, and a
/// recomputation from the stored bids finds them all.
async fn every_bid_is_chained_and_the_head_is_public(backend: Backend) {
    let h = Harness::new(backend).await;
    let listed = h.item(100, 5).await;
    let id = listed.item.id;
    assert_eq!(listed.item.ledger_head, Some(ChainHash::genesis(id)));
    let bidders = h.bidders(4).await;
    let mut heads = Vec::new();
    for (n, bidder) in bidders.iter().enumerate() {
        let offer = if n % 2 == 0 {
            plain(100 + 50 * n as i64)
        } else {
            poisoned(100 + 50 * n as i64, 900, 10)
        };
        let accepted = h.auctions.place_bid(bidder, id, offer).await.unwrap();
        assert_eq!(accepted.item.ledger_head, accepted.bid.chain_hash);
        heads.push(accepted.bid.chain_hash.unwrap());
    }
    let stored = h.store.bids_in_order(id, 0, u32::MAX).await.unwrap();
    let records: Vec<_> = stored.iter().map(|b| b.ledger_record()).collect();
    // Salts are drawn per bid.
    assert!(stored.windows(2).all(|w| w[0].salt != w[1].salt));
    for (n, bid) in stored.iter().enumerate() {
        assert_eq!(bid.chain_hash, Some(head_of(id, &records[..=n])));
        assert_eq!(bid.chain_hash, Some(heads[n]));
    }
    let item = h.listed(&listed).await.item;
    assert_eq!(item.ledger_head, Some(head_of(id, &records)));
    // Replayed prices carry the ledger's value after their bid, as live ones did.
    let history = h.store.price_history(id, 0, 10).await.unwrap();
    assert_eq!(
        history.iter().map(|p| p.chain_hash).collect::<Vec<_>>(),
        stored.iter().map(|b| b.chain_hash).collect::<Vec<_>>()
    );
    let live: Vec<_> = h
        .events
        .events()
        .iter()
        .filter_map(|event| match event {
            pp_domain::live::ItemEvent::Price(price) => Some(price.ledger_head),
            pp_domain::live::ItemEvent::Closed(_) => None,
        })
        .collect();
    assert_eq!(live, heads.iter().copied().map(Some).collect::<Vec<_>>());
    let report = h.store.verify_ledgers(None).await.unwrap();
    assert_eq!((report.checked, report.broken.len()), (1, 0));
}

/// Runs `change` with the bids' immutability trigger off (as only someone
/// with the database owner's rights could).
async fn with_bids_mutable(h: &Harness, backend: Backend, change: UpdateStatement) {
    let conn = h.store.database().connection();
    let (off, on) = match backend {
        Backend::Postgres => (
            "ALTER TABLE bids DISABLE TRIGGER bids_refuse_update_delete".to_owned(),
            "ALTER TABLE bids ENABLE TRIGGER bids_refuse_update_delete".to_owned(),
        ),
        Backend::Sqlite => {
            let trigger: String = conn
                .query_one(
                    Query::select()
                        .column("sql")
                        .from("sqlite_master")
                        .and_where(Expr::col("name").eq("bids_refuse_update")),
                )
                .await
                .unwrap()
                .unwrap()
                .try_get("", "sql")
                .unwrap();
            ("DROP TRIGGER bids_refuse_update".to_owned(), trigger)
        }
    };
    // One transaction: one connection of the pool sees the trigger go and come back.
    let tx = conn.begin().await.unwrap();
    tx.execute_unprepared(&off).await.unwrap();
    tx.execute(&change).await.unwrap();
    tx.execute_unprepared(&on).await.unwrap();
    tx.commit().await.unwrap();
}

/// The sealed offer of bid `seq` on `item`.
async fn sealed_offer(h: &Harness, item: ItemId, seq: i64) -> Vec<u8> {
    h.store
        .database()
        .connection()
        .query_one(
            Query::select()
                .column("sealed_offer")
                .from("bids")
                .and_where(Expr::col("item_id").eq(item.as_uuid()))
                .and_where(Expr::col("seq").eq(seq)),
        )
        .await
        .unwrap()
        .unwrap()
        .try_get("", "sealed_offer")
        .unwrap()
}

/// `verify` names each item whose stored chain was changed, at the first
/// bad `seq`, and leaves sound items alone.
async fn a_changed_bid_breaks_its_chain_where_it_was_changed(backend: Backend) {
    let h = Harness::new(backend).await;
    let sound = h.item(100, 5).await;
    let renumbered = h.item(100, 5).await;
    let swapped = h.item(100, 5).await;
    let headless = h.item(100, 5).await;
    let bidders = h.bidders(3).await;
    for item in [&sound, &renumbered, &swapped, &headless] {
        for (n, bidder) in bidders.iter().enumerate() {
            h.auctions
                .place_bid(bidder, item.item.id, plain(100 + 10 * n as i64))
                .await
                .unwrap();
        }
    }
    // Bid 3 of `renumbered` renumbered 13.
    with_bids_mutable(
        &h,
        backend,
        Query::update()
            .table("bids")
            .value("seq", 13)
            .and_where(Expr::col("item_id").eq(renumbered.item.id.as_uuid()))
            .and_where(Expr::col("seq").eq(3))
            .to_owned(),
    )
    .await;
    // Bid 2 of `swapped` given bid 3's sealed offer (it no longer opens).
    let third = sealed_offer(&h, swapped.item.id, 3).await;
    with_bids_mutable(
        &h,
        backend,
        Query::update()
            .table("bids")
            .value("sealed_offer", third)
            .and_where(Expr::col("item_id").eq(swapped.item.id.as_uuid()))
            .and_where(Expr::col("seq").eq(2))
            .to_owned(),
    )
    .await;
    // The head of `headless` replaced by another item's.
    let other_head = h.listed(&sound).await.item.ledger_head.unwrap();
    h.store
        .database()
        .connection()
        .execute(
            Query::update()
                .table("items")
                .value("ledger_head", other_head.as_bytes().to_vec())
                .and_where(Expr::col("id").eq(headless.item.id.as_uuid())),
        )
        .await
        .unwrap();
    let mut broken: Vec<(ItemId, u64)> = h
        .store
        .verify_ledgers(None)
        .await
        .unwrap()
        .broken
        .iter()
        .map(|(id, at)| (*id, at.seq))
        .collect();
    broken.sort();
    let mut expected = vec![
        (renumbered.item.id, 3),
        (swapped.item.id, 2),
        (headless.item.id, 4),
    ];
    expected.sort();
    assert_eq!(broken, expected);
    let one = h.store.verify_ledgers(Some(sound.item.id)).await.unwrap();
    assert_eq!((one.checked, one.broken.len()), (1, 0));
}

/// A bid's offer sealed as before the ledger (layout 1: no salt), as the
/// store's codec wrote it then.
fn sealed_before_the_ledger(bid: &pp_domain::Bid) -> Vec<u8> {
    use pp_domain::ports::{SealBinding, Sealer};
    let mut plain = vec![1u8];
    plain.extend(bid.offer.amount.minor_units().to_be_bytes());
    let poison = bid.offer.poison;
    plain.extend(poison.map_or(0, |p| p.budget.minor_units()).to_be_bytes());
    plain.extend(poison.map_or(0, |p| p.step.minor_units()).to_be_bytes());
    pp_crypto::AesGcmSealer::new(&pp_testkit::TEST_SEALING_KEY)
        .seal(
            &plain,
            &SealBinding::Bid {
                item: bid.item,
                bidder: bid.bidder,
            },
        )
        .unwrap()
}

/// Puts `item` back as the ledger's migration found it: its bids sealed
/// without salt and unchained, no head, marked pending.
async fn as_before_the_ledger(h: &Harness, backend: Backend, item: ItemId) {
    for bid in h.store.bids_in_order(item, 0, u32::MAX).await.unwrap() {
        with_bids_mutable(
            h,
            backend,
            Query::update()
                .table("bids")
                .value("sealed_offer", sealed_before_the_ledger(&bid))
                .value("chain_hash", Option::<Vec<u8>>::None)
                .and_where(Expr::col("id").eq(bid.id.as_uuid()))
                .to_owned(),
        )
        .await;
    }
    h.store
        .database()
        .connection()
        .execute(
            Query::update()
                .table("items")
                .value("ledger_head", Option::<Vec<u8>>::None)
                .value("ledger_pending", true)
                .and_where(Expr::col("id").eq(item.as_uuid())),
        )
        .await
        .unwrap();
}

/// Items from before the ledger are chained once, at start-up, with the
/// all-zero salt; the trigger lets exactly that fill through. An item
/// marked pending whose bids were sealed since is not chained: it is
/// reported, so marking a changed item pending cannot launder it.
async fn items_from_before_the_ledger_are_chained_once_and_only_they(backend: Backend) {
    let h = Harness::new(backend).await;
    let old = h.item(100, 5).await;
    let empty = h.item(100, 5).await;
    let laundered = h.item(100, 5).await;
    for item in [&old, &laundered] {
        for (n, bidder) in h.bidders(3).await.iter().enumerate() {
            h.auctions
                .place_bid(bidder, item.item.id, plain(100 + 10 * n as i64))
                .await
                .unwrap();
        }
    }
    as_before_the_ledger(&h, backend, old.item.id).await;
    as_before_the_ledger(&h, backend, empty.item.id).await;
    // Someone drops `laundered`'s bid 2 and asks for a fresh chain.
    with_bids_mutable(
        &h,
        backend,
        Query::update()
            .table("bids")
            .value("seq", 12)
            .and_where(Expr::col("item_id").eq(laundered.item.id.as_uuid()))
            .and_where(Expr::col("seq").eq(2))
            .to_owned(),
    )
    .await;
    let conn = h.store.database().connection();
    conn.execute(
        Query::update()
            .table("items")
            .value("ledger_head", Option::<Vec<u8>>::None)
            .value("ledger_pending", true)
            .and_where(Expr::col("id").eq(laundered.item.id.as_uuid())),
    )
    .await
    .unwrap();
    // Before start-up chaining: the old items wait, the laundered one breaks.
    let report = h.store.verify_ledgers(None).await.unwrap();
    assert_eq!((report.checked, report.pending), (0, 2));
    assert_eq!(
        report
            .broken
            .iter()
            .map(|(id, at)| (*id, at.seq))
            .collect::<Vec<_>>(),
        [(laundered.item.id, 1)]
    );
    // The trigger refuses any other change, also with the fill.
    let refused = conn
        .execute_unprepared("UPDATE bids SET chain_hash = sealed_offer, seq = seq + 10")
        .await;
    let refused = refused.expect_err("the trigger refuses it");
    assert!(
        refused.to_string().contains("bids are immutable"),
        "{refused}"
    );

    assert_eq!(h.store.chain_pending_items().await.unwrap(), 2);
    assert_eq!(h.store.chain_pending_items().await.unwrap(), 0);
    let bids = h
        .store
        .bids_in_order(old.item.id, 0, u32::MAX)
        .await
        .unwrap();
    assert!(bids.iter().all(|b| b.salt == pp_domain::ledger::Salt::ZERO));
    let records: Vec<_> = bids.iter().map(|b| b.ledger_record()).collect();
    for (n, bid) in bids.iter().enumerate() {
        assert_eq!(bid.chain_hash, Some(head_of(old.item.id, &records[..=n])));
    }
    assert_eq!(
        h.listed(&old).await.item.ledger_head,
        Some(head_of(old.item.id, &records))
    );
    assert_eq!(
        h.listed(&empty).await.item.ledger_head,
        Some(ChainHash::genesis(empty.item.id))
    );
    assert_eq!(h.listed(&laundered).await.item.ledger_head, None);
    // A new bid on the chained item continues its chain.
    let late = h.bidder().await;
    h.auctions
        .place_bid(&late, old.item.id, plain(500))
        .await
        .unwrap();
    // Once filled, a chain value is as immutable as the rest.
    let refill = conn
        .execute_unprepared("UPDATE bids SET chain_hash = NULL")
        .await;
    let refill = refill.expect_err("the trigger refuses it");
    assert!(
        refill.to_string().contains("bids are immutable"),
        "{refill}"
    );
    let report = h.store.verify_ledgers(None).await.unwrap();
    assert_eq!((report.checked, report.pending), (2, 0));
    assert_eq!(
        report.broken.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [laundered.item.id]
    );
}

/// An edit and a first bid racing on one item are decided one after the
/// other under its row lock: the edit sees the bid (`item_has_bids`), or
/// the bid sees the edited item.
async fn an_edit_and_a_first_bid_racing_are_decided_one_after_the_other(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let bidders = h.bidders(12).await;
    let (mut edits_first, mut bids_first) = (0, 0);
    for bidder in bidders {
        let listed = h.item(100, 5).await;
        let id = listed.item.id;
        let barrier = Arc::new(Barrier::new(2));
        let edit = {
            let (h, barrier) = (h.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let draft = ItemEditDraft {
                    title: Some("Renamed".into()),
                    ..ItemEditDraft::default()
                };
                h.auctions
                    .edit_item(id, draft, h.seller.id, &Default::default())
                    .await
            })
        };
        let bid = {
            let (h, barrier) = (h.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                h.auctions.place_bid(&bidder, id, plain(100)).await
            })
        };
        let (edit, bid) = (edit.await.unwrap(), bid.await.unwrap().unwrap());
        let stored = h.listed(&listed).await.item;
        match edit {
            Ok(edited) => {
                edits_first += 1;
                assert_eq!(edited.item.title.as_str(), "Renamed");
                assert_eq!(bid.item.title.as_str(), "Renamed", "the bid saw the edit");
            }
            Err(EditError::Item(EditItemError::Rejected(EditRejection::HasBids))) => {
                bids_first += 1;
                assert_eq!(bid.item.title.as_str(), "A lot");
                assert_eq!(stored.title.as_str(), "A lot", "nothing was edited");
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(edits_first + bids_first, 12);
}

/// Editing: title, description and a later close before the first bid;
/// never an earlier close, an item with bids, or one that is over.
async fn an_item_is_edited_only_before_its_first_bid_and_while_open(backend: Backend) {
    let h = Harness::new(backend).await;
    let listed = h.item(100, 5).await;
    let id = listed.item.id;
    let admin = h.seller.id;
    let later = listed.item.close_at + Duration::hours(2);
    let edit = |title: Option<&str>, close_at| ItemEditDraft {
        title: title.map(str::to_owned),
        description: Some("Now with a shade".into()),
        close_at,
    };
    let edited = h
        .auctions
        .edit_item(
            id,
            edit(Some("Lamp"), Some(later)),
            admin,
            &Default::default(),
        )
        .await
        .unwrap();
    let stored = h.listed(&listed).await.item;
    assert_eq!(stored, edited.item);
    assert_eq!(
        (
            stored.title.as_str(),
            stored.description.as_str(),
            stored.close_at
        ),
        ("Lamp", "Now with a shade", later)
    );
    let earlier = h
        .auctions
        .edit_item(
            id,
            edit(None, Some(later - Duration::minutes(1))),
            admin,
            &Default::default(),
        )
        .await;
    assert!(
        matches!(
            earlier,
            Err(EditError::Item(EditItemError::Rejected(
                EditRejection::CloseEarlier
            )))
        ),
        "{earlier:?}"
    );
    let missing = h
        .auctions
        .edit_item(
            ItemId::generate(),
            edit(None, None),
            admin,
            &Default::default(),
        )
        .await;
    assert!(matches!(
        missing,
        Err(EditError::Item(EditItemError::ItemNotFound))
    ));
    let bidder = h.bidder().await;
    h.auctions.place_bid(&bidder, id, plain(100)).await.unwrap();
    let with_bids = h
        .auctions
        .edit_item(id, edit(Some("Late"), None), admin, &Default::default())
        .await;
    assert!(matches!(
        with_bids,
        Err(EditError::Item(EditItemError::Rejected(
            EditRejection::HasBids
        )))
    ));
    let cancelled = h.item(100, 5).await;
    h.auctions
        .cancel_item(cancelled.item.id, admin, &Default::default())
        .await
        .unwrap();
    let over = h
        .auctions
        .edit_item(
            cancelled.item.id,
            edit(None, None),
            admin,
            &Default::default(),
        )
        .await;
    assert!(matches!(
        over,
        Err(EditError::Item(EditItemError::Rejected(
            EditRejection::NotOpen
        )))
    ));
    assert_eq!(
        h.listed(&cancelled).await.item.status,
        ItemStatus::Cancelled
    );
}

on_both_backends!(
    a_late_change_of_leader_moves_the_close_and_the_closer_waits_for_it,
    soft_close_in_a_batch_of_bids_equals_the_engine_one_by_one,
    every_bid_is_chained_and_the_head_is_public,
    a_changed_bid_breaks_its_chain_where_it_was_changed,
    items_from_before_the_ledger_are_chained_once_and_only_they,
    an_edit_and_a_first_bid_racing_are_decided_one_after_the_other,
    an_item_is_edited_only_before_its_first_bid_and_while_open,
);
