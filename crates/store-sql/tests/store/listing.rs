//! Reading back: item lists by status and page, a bidder's own bids, the
//! price history a late subscriber replays, bidders at close, and tickets.

use chrono::Duration;
use pp_domain::SessionId;
use pp_domain::auth::ports::{NewRefreshToken, SessionStore, TicketPurpose, TicketStore};
use pp_domain::auth::tokens::TokenDigest;
use pp_domain::item::ItemEditDraft;
use pp_domain::ports::{AuctionStore, LifecycleDecision};
use pp_domain::{
    BidCursor, ItemFilter, ItemSearch, ItemSort, ItemStatus, ListedItem, StatusFilter,
};
use pp_testkit::Backend;

use crate::on_both_backends;
use crate::support::{Harness, money, plain, poisoned};

fn of(status: StatusFilter) -> ItemFilter {
    ItemFilter {
        status: Some(status),
        search: None,
    }
}

async fn items_list_newest_first_by_status_in_pages(backend: Backend) {
    let h = Harness::new(backend).await;
    let mut listed = Vec::new();
    for _ in 0..5 {
        listed.push(h.item(100, 5).await);
        h.clock.advance(Duration::milliseconds(1));
    }
    h.auctions
        .cancel_item(listed[1].item.id, h.seller.id, &Default::default())
        .await
        .unwrap();

    let all = ItemFilter::default();
    let first = h.page(&all, ItemSort::Newest, None, 2).await;
    let ids: Vec<_> = first.iter().map(|l| l.item.id).collect();
    assert_eq!(ids, vec![listed[4].item.id, listed[3].item.id]);
    let cursor = ItemSort::Newest.cursor_of(&first[1], 0.0);
    let rest = h.page(&all, ItemSort::Newest, Some(cursor), 10).await;
    let ids: Vec<_> = rest.iter().map(|l| l.item.id).collect();
    assert_eq!(
        ids,
        vec![listed[2].item.id, listed[1].item.id, listed[0].item.id]
    );

    let open = h
        .page(&of(StatusFilter::Open), ItemSort::Newest, None, 10)
        .await;
    assert_eq!(open.len(), 4);
    assert!(open.iter().all(|l| l.item.status == ItemStatus::Open));
    let cancelled = h
        .page(&of(StatusFilter::Cancelled), ItemSort::Newest, None, 10)
        .await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].item.id, listed[1].item.id);
    let closed = h
        .page(&of(StatusFilter::Closed), ItemSort::Newest, None, 10)
        .await;
    assert!(closed.is_empty());
}

/// Every order pages through every item once, in its key's order with
/// ties (on the listing time, the close and the price) broken by id across
/// page boundaries, and its price is the current one after a bid.
async fn every_order_pages_through_ties_by_id(backend: Backend) {
    let h = Harness::new(backend).await;
    // Listed at one instant: every pair ties on the listing time.
    let mut ids = Vec::new();
    for (base_price, closes_in_hours) in [(100, 2), (100, 1), (300, 1), (200, 3), (100, 1)] {
        let closes_in = Duration::hours(closes_in_hours);
        ids.push(h.item_closing(base_price, 5, closes_in, None).await.item.id);
    }
    h.clock.advance(Duration::milliseconds(1));
    ids.push(
        h.item_closing(50, 5, Duration::minutes(30), None)
            .await
            .item
            .id,
    );
    let bidder = h.bidder().await;
    h.auctions
        .place_bid(&bidder, ids[3], plain(400))
        .await
        .unwrap();
    let mut items: Vec<ListedItem> = Vec::new();
    for id in &ids {
        items.push(h.store.listed_item(*id).await.unwrap().unwrap());
    }
    assert_ne!(
        items[3].listed_price(),
        200,
        "a bid moves the price an order reads"
    );

    for sort in ItemSort::ALL {
        let mut expected: Vec<_> = items
            .iter()
            .map(|listed| {
                let cursor = sort.cursor_of(listed, 0.0);
                (cursor.key, listed.item.id.as_uuid())
            })
            .collect();
        expected.sort_unstable();
        if sort.descending() {
            expected.reverse();
        }
        let expected: Vec<_> = expected.into_iter().map(|(_, id)| id).collect();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = h
                .store
                .list_items(&ItemFilter::default(), sort, after, 2)
                .await
                .unwrap();
            seen.extend(page.iter().map(|(listed, _)| listed.item.id.as_uuid()));
            match page.last() {
                Some((last, cursor)) if page.len() == 2 => {
                    assert_eq!(*cursor, sort.cursor_of(last, 0.0));
                    after = Some(*cursor);
                }
                _ => break,
            }
        }
        assert_eq!(seen, expected, "{sort:?}");
    }
    let open_soonest = h
        .page(&of(StatusFilter::Open), ItemSort::ClosingSoon, None, 1)
        .await;
    assert_eq!(open_soonest[0].item.id, ids[5]);
}

/// A page of one status in each order other than newest first reads a
/// range of that order's index rather than sorting the table, first page
/// and later ones alike (the condition's form matters: see `after_in_order`).
async fn each_order_of_one_status_reads_its_index(backend: Backend) {
    let h = Harness::new(backend).await;
    let listed = h.item(100, 5).await;
    for (sort, index) in [
        (ItemSort::ClosingSoon, "idx_items_status_close_at_id"),
        (ItemSort::PriceAsc, "idx_items_status_listed_price_id"),
        (ItemSort::PriceDesc, "idx_items_status_listed_price_id"),
    ] {
        for after in [None, Some(sort.cursor_of(&listed, 0.0))] {
            let plan = h
                .store
                .item_list_plan(&of(StatusFilter::Open), sort, after)
                .await
                .unwrap();
            assert!(plan.contains(index), "{sort:?} after {after:?}: {plan}");
            // PostgreSQL's `Sort` node, SQLite's `USE TEMP B-TREE FOR ORDER BY`.
            assert!(
                !plan.contains("Sort") && !plan.contains("TEMP B-TREE"),
                "{sort:?} after {after:?} sorts: {plan}"
            );
            if after.is_some() {
                // The cursor bounds the index range (PostgreSQL's `Index
                // Cond`, SQLite's `USING INDEX … (status=? AND …>?)`), not
                // a filter over every row before it.
                let bounded = plan.lines().any(|line| {
                    (line.contains("Index Cond") || line.contains("USING INDEX"))
                        && (line.contains('>') || line.contains('<'))
                });
                assert!(
                    bounded,
                    "{sort:?}: the cursor does not bound the range: {plan}"
                );
            }
        }
    }
}

fn searching(text: &str) -> ItemFilter {
    ItemFilter {
        status: None,
        search: ItemSearch::parse(text).unwrap(),
    }
}

/// A search matches every word in the title or the description, accents
/// and case ignored, a title match first; odd characters neither fail nor
/// match everything; an edit is searched by its new words.
async fn a_search_matches_every_word_accents_and_case_ignored(backend: Backend) {
    let h = Harness::new(backend).await;
    let cafe_lamp = h
        .item_described("Café crème lamp", "Brass, made in Zürich", 300)
        .await;
    let cafe_sign = h.item_described("Lamp", "An old CAFE sign", 200).await;
    let chair = h.item_described("Chair", "Oak", 100).await;
    let shirt = h
        .item_described("100% cotton_shirt", r#"Says "hello" on the back\front"#, 50)
        .await;
    let poster = h
        .item_described("Expo poster", "Zürich2024, e-mail art", 70)
        .await
        .item
        .id;
    let found = |filter: ItemFilter, sort: ItemSort| {
        let h = &h;
        async move {
            h.page(&filter, sort, None, 10)
                .await
                .iter()
                .map(|listed| listed.item.id)
                .collect::<Vec<_>>()
        }
    };
    let best = ItemSort::BestMatch;
    let [cafe_lamp, cafe_sign, chair, shirt] =
        [&cafe_lamp, &cafe_sign, &chair, &shirt].map(|listed| listed.item.id);
    assert_eq!(
        found(searching("cafe"), best).await,
        [cafe_lamp, cafe_sign],
        "a title match ranks first"
    );
    for spelling in ["ZURICH", "zürich", "Zu\u{308}rich", "  made  "] {
        assert_eq!(
            found(searching(spelling), best).await,
            [cafe_lamp],
            "{spelling}"
        );
    }
    assert_eq!(found(searching("Crème LAMP"), best).await, [cafe_lamp]);
    assert_eq!(found(searching("café, sign!"), best).await, [cafe_sign]);
    assert_eq!(found(searching("shirt 100%"), best).await, [shirt]);
    assert_eq!(found(searching(r#""hello""#), best).await, [shirt]);
    assert!(found(searching("oak lamp"), best).await.is_empty());
    // Letters and digits mixed fold their accents too; a hyphen splits.
    for spelling in ["zurich2024", "ZÜRICH2024", "e mail", "e-mail"] {
        assert_eq!(
            found(searching(spelling), best).await,
            [poster],
            "{spelling}"
        );
    }
    // Wildcards of LIKE and the syntax of each search language are words'
    // separators here: they match nothing and fail nothing.
    for odd in [
        "%",
        "_",
        "%%",
        r"\",
        "'",
        r#"""#,
        r#"'"%_\"#,
        "a%",
        "*",
        "cafe*",
        "NOT",
        "OR cafe",
        "cafe AND",
        "(cafe",
        "title:cafe",
        "cafe -lamp",
        "!cafe",
        "cafe & |",
    ] {
        let matched = found(searching(odd), best).await;
        assert!(
            matched.len() < 2 || matched == [cafe_lamp, cafe_sign],
            "{odd:?} matched {matched:?}"
        );
        assert!(!matched.contains(&chair), "{odd:?} matched the chair");
    }
    // A search keeps its filter under any order and status.
    assert_eq!(
        found(searching("cafe"), ItemSort::PriceAsc).await,
        [cafe_sign, cafe_lamp]
    );
    h.auctions
        .cancel_item(cafe_sign, h.seller.id, &Default::default())
        .await
        .unwrap();
    let open_cafes = ItemFilter {
        status: Some(StatusFilter::Open),
        ..searching("cafe")
    };
    assert_eq!(found(open_cafes, best).await, [cafe_lamp]);
    // An edit is searched by its new words only.
    h.auctions
        .edit_item(
            chair,
            ItemEditDraft {
                title: Some("Rocking stool".into()),
                ..Default::default()
            },
            h.seller.id,
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(found(searching("stool"), best).await, [chair]);
    assert!(found(searching("chair"), best).await.is_empty());
}

/// Best-match pages go by rank, then id, each item once across page
/// boundaries, also where many items tie on the rank.
async fn best_match_pages_through_ties_by_id(backend: Backend) {
    let h = Harness::new(backend).await;
    for _ in 0..5 {
        h.item_described("Desk lamp", "Green glass shade", 100)
            .await;
    }
    h.item_described("Lamp", "Lamp with a lamp shade", 100)
        .await;
    h.item_described("Shade", "For a desk lamp", 100).await;
    h.item_described("Chair", "No match", 100).await;
    let search = searching("LAMP");
    let whole = h
        .store
        .list_items(&search, ItemSort::BestMatch, None, 100)
        .await
        .unwrap();
    assert_eq!(whole.len(), 7);
    for pair in whole.windows(2) {
        let (first, second) = (pair[0].1, pair[1].1);
        let (r1, r2) = (first.relevance().unwrap(), second.relevance().unwrap());
        assert!(r1 > 0.0 && r2 > 0.0);
        assert!(
            r1 > r2 || (r1 == r2 && first.id.as_uuid() > second.id.as_uuid()),
            "{first:?} before {second:?}"
        );
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .store
            .list_items(&search, ItemSort::BestMatch, after, 2)
            .await
            .unwrap();
        seen.extend(page.iter().map(|(listed, _)| listed.item.id));
        match page.last() {
            Some((_, cursor)) if page.len() == 2 => after = Some(*cursor),
            _ => break,
        }
    }
    let expected: Vec<_> = whole.iter().map(|(listed, _)| listed.item.id).collect();
    assert_eq!(seen, expected);
    // The search reads its index: the GIN index, or the FTS5 table's.
    let plan = h
        .store
        .item_list_plan(&search, ItemSort::BestMatch, None)
        .await
        .unwrap();
    assert!(
        plan.contains("idx_items_search_vector") || plan.contains("items_fts VIRTUAL TABLE INDEX"),
        "{plan}"
    );
    // A best match needs a search: the store refuses it without one.
    assert!(
        h.store
            .list_items(&ItemFilter::default(), ItemSort::BestMatch, None, 2)
            .await
            .is_err()
    );
}

async fn a_bidders_bids_come_newest_first_with_their_items_standing(backend: Backend) {
    let h = Harness::new(backend).await;
    let bidder = h.bidder().await;
    let rival = h.bidder().await;
    let items = [
        h.item(100, 5).await,
        h.item(100, 5).await,
        h.item(100, 5).await,
    ];
    for listed in &items {
        h.auctions
            .place_bid(&bidder, listed.item.id, poisoned(100, 300, 5))
            .await
            .unwrap();
        h.clock.advance(Duration::milliseconds(1));
    }
    // The rival outbids on the middle item: the bidder's poison answers.
    h.auctions
        .place_bid(&rival, items[1].item.id, plain(150))
        .await
        .unwrap();

    let page = h.store.bids_of_bidder(bidder.id, None, 2).await.unwrap();
    let order: Vec<_> = page.iter().map(|r| r.item.id).collect();
    assert_eq!(order, vec![items[2].item.id, items[1].item.id]);
    assert_eq!(page[1].standing.bid_count(), 2);
    assert_eq!(page[1].standing.leader().unwrap().price, money(155));
    let after = BidCursor {
        created_at: page[1].bid.created_at,
        id: page[1].bid.id,
    };
    let rest = h
        .store
        .bids_of_bidder(bidder.id, Some(after), 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].item.id, items[0].item.id);
    assert!(
        h.store
            .bids_of_bidder(h.seller.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let own = h.auctions.own_bids(bidder.id, None, 10).await.unwrap();
    assert_eq!(own.items.len(), 3);
    assert_eq!(own.next, None);
    assert_eq!(own.items[1].view.remaining_budget, 145);
}

async fn the_price_history_replays_from_any_point(backend: Backend) {
    let h = Harness::new(backend).await;
    let listed = h.item(100, 5).await;
    let id = listed.item.id;
    let bidders = h.bidders(3).await;
    h.auctions
        .place_bid(&bidders[0], id, plain(120))
        .await
        .unwrap();
    h.auctions
        .place_bid(&bidders[1], id, poisoned(125, 200, 5))
        .await
        .unwrap();
    h.auctions
        .place_bid(&bidders[2], id, plain(150))
        .await
        .unwrap();

    let prices = |points: Vec<pp_domain::live::PricePoint>| {
        points
            .iter()
            .map(|p| (p.seq, p.price.minor_units()))
            .collect::<Vec<_>>()
    };
    let all = h.store.price_history(id, 0, 100).await.unwrap();
    assert_eq!(prices(all), vec![(1, 120), (2, 125), (3, 155)]);
    let missed = h.store.price_history(id, 1, 100).await.unwrap();
    assert_eq!(prices(missed), vec![(2, 125), (3, 155)]);
    let capped = h.store.price_history(id, 0, 1).await.unwrap();
    assert_eq!(prices(capped), vec![(1, 120)]);
    assert!(h.store.price_history(id, 3, 100).await.unwrap().is_empty());

    let events = h.auctions.price_events(&listed.item, 2, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].bid_count, events[0].minimum_next_bid), (3, 160));
}

async fn a_close_reports_everyone_who_bid_in_arrival_order(backend: Backend) {
    let h = Harness::new(backend).await;
    let listed = h.item(100, 5).await;
    let empty = h.item(100, 5).await;
    let bidders = h.bidders(3).await;
    for (i, bidder) in bidders.iter().enumerate() {
        h.auctions
            .place_bid(bidder, listed.item.id, plain(100 + 10 * i as i64))
            .await
            .unwrap();
    }
    h.clock.advance(Duration::hours(2));
    let closed = h
        .store
        .close_due_items(LifecycleDecision::new(h.clock.clone()), 10)
        .await
        .unwrap()
        .closed;
    assert_eq!(closed.len(), 2);
    let with_bids = closed
        .iter()
        .find(|c| c.listed.item.id == listed.item.id)
        .unwrap();
    assert_eq!(
        with_bids.bidders,
        bidders.iter().map(|b| b.id).collect::<Vec<_>>()
    );
    let without = closed
        .iter()
        .find(|c| c.listed.item.id == empty.item.id)
        .unwrap();
    assert!(without.bidders.is_empty());
}

async fn a_ticket_is_redeemed_once_and_never_after_it_expires(backend: Backend) {
    let h = Harness::new(backend).await;
    let user = h.bidder().await;
    let now = chrono::Utc::now();
    let session = SessionId::generate();
    h.store
        .start_session(
            NewRefreshToken {
                digest: TokenDigest([9; 32]),
                session,
                user: user.id,
                issued_at: now,
                expires_at: now + Duration::days(7),
            },
            &pp_testkit::test_password_hash(),
        )
        .await
        .unwrap();
    let live = TokenDigest([1; 32]);
    let stale = TokenDigest([2; 32]);
    h.store
        .issue_ticket(
            live,
            TicketPurpose::Socket,
            session,
            now + Duration::seconds(30),
        )
        .await
        .unwrap();
    h.store
        .issue_ticket(
            stale,
            TicketPurpose::Socket,
            session,
            now + Duration::seconds(30),
        )
        .await
        .unwrap();

    let (first, second) = tokio::join!(
        h.store.redeem_ticket(live, TicketPurpose::Socket, now),
        h.store.redeem_ticket(live, TicketPurpose::Socket, now)
    );
    let winners: Vec<_> = [first.unwrap(), second.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(winners, vec![session], "two redemptions, one socket");

    // A ticket opens only what it was issued for.
    let link = TokenDigest([3; 32]);
    h.store
        .issue_ticket(
            link,
            TicketPurpose::LinkIdentity,
            session,
            now + Duration::seconds(60),
        )
        .await
        .unwrap();
    assert_eq!(
        h.store
            .redeem_ticket(link, TicketPurpose::Socket, now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        h.store
            .redeem_ticket(link, TicketPurpose::LinkIdentity, now)
            .await
            .unwrap(),
        Some(session)
    );
    assert_eq!(
        h.store
            .redeem_ticket(stale, TicketPurpose::Socket, now + Duration::seconds(31))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        h.store
            .purge_expired_tickets(now + Duration::seconds(31))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        h.store
            .redeem_ticket(stale, TicketPurpose::Socket, now)
            .await
            .unwrap(),
        None
    );
}

on_both_backends!(
    items_list_newest_first_by_status_in_pages,
    every_order_pages_through_ties_by_id,
    each_order_of_one_status_reads_its_index,
    a_search_matches_every_word_accents_and_case_ignored,
    best_match_pages_through_ties_by_id,
    a_bidders_bids_come_newest_first_with_their_items_standing,
    the_price_history_replays_from_any_point,
    a_close_reports_everyone_who_bid_in_arrival_order,
    a_ticket_is_redeemed_once_and_never_after_it_expires,
);
