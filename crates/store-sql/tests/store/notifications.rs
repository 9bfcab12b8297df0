//! Notifications stored with the bid or close that causes them: sealed,
//! listed newest first, marked read up to one, purged once read and old.

use chrono::Duration;
use pp_domain::UserChanges;
use pp_domain::live::NotificationData;
use pp_domain::outbox::{ClaimId, OUTBOX_LEASE, OutboxStore, OutgoingMail, Settlement};
use pp_domain::ports::{AuctionStore, Clock, UserStore};
use pp_domain::retention::{Purge, RetentionStore};
use pp_testkit::Backend;

use crate::on_both_backends;
use crate::sealing::{dump, hex};
use crate::support::{Harness, plain, poisoned};

async fn a_bid_stores_who_it_tells_sealed_and_a_close_stores_won_and_lost(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(1_000, 100).await;
    let id = item.item.id;
    let [ann, bob, cat] = <[_; 3]>::try_from(h.bidders(3).await).unwrap();
    h.auctions.place_bid(&ann, id, plain(1_200)).await.unwrap();
    // Bob's poison defends against Cat and runs out: Ann outbid, Bob
    // auto-raised then exhausted.
    h.auctions
        .place_bid(&bob, id, poisoned(1_300, 4_321, 100))
        .await
        .unwrap();
    h.auctions.place_bid(&cat, id, plain(9_000)).await.unwrap();

    let kinds = |list: &[pp_domain::notifications::StoredNotification]| -> Vec<&'static str> {
        list.iter()
            .map(|stored| match stored.notification.data {
                NotificationData::Outbid { .. } => "outbid",
                NotificationData::AutoRaised { .. } => "auto_raised",
                NotificationData::Exhausted { .. } => "exhausted",
                NotificationData::Won { .. } => "won",
                NotificationData::Lost { .. } => "lost",
            })
            .collect()
    };
    let anns = h.store.notifications(ann.id, None, 10).await.unwrap();
    assert_eq!(kinds(&anns), ["outbid"]);
    assert_eq!(anns[0].item_title, "A lot");
    assert!(!anns[0].read);
    let bobs = h.store.notifications(bob.id, None, 10).await.unwrap();
    assert_eq!(kinds(&bobs).first(), Some(&"exhausted"), "newest first");
    // The exhausted notice names Bob's own budget: sealed at rest. (Its
    // field names would show in plain text; digits alone could be chance
    // in SQLite's hex dump.)
    let raw = dump(&h, "notifications").await;
    for secret in ["effective", "remaining_budget", "current_price"] {
        assert!(!raw.contains(secret), "{secret} in {raw}");
        assert!(!raw.contains(&hex(secret.as_bytes())), "{secret} in {raw}");
    }

    // Closing tells every bidder.
    h.clock.advance(Duration::hours(2));
    let round = h.auctions.close_due_items(10).await.unwrap();
    assert_eq!(round.closed.len(), 1);
    let cats = h.store.notifications(cat.id, None, 10).await.unwrap();
    assert_eq!(kinds(&cats), ["won"]);
    let anns = h.store.notifications(ann.id, None, 10).await.unwrap();
    assert_eq!(kinds(&anns), ["lost", "outbid"]);
}

async fn marking_read_reaches_back_to_older_ones_only_and_read_ones_are_purged_when_old(
    backend: Backend,
) {
    let h = Harness::new(backend).await;
    let [ann, bob] = <[_; 2]>::try_from(h.bidders(2).await).unwrap();
    for _ in 0..3 {
        let item = h.item(1_000, 100).await;
        h.auctions
            .place_bid(&ann, item.item.id, plain(1_100))
            .await
            .unwrap();
        h.auctions
            .place_bid(&bob, item.item.id, plain(1_500))
            .await
            .unwrap();
        h.clock.advance(Duration::seconds(1));
    }
    let anns = h.store.notifications(ann.id, None, 10).await.unwrap();
    assert_eq!(anns.len(), 3);
    assert!(anns.iter().all(|stored| stored.currency.as_str() == "usd"));
    assert_eq!(h.store.unread_notifications(ann.id).await.unwrap(), 3);
    let page = h.store.notifications(ann.id, None, 2).await.unwrap();
    let rest = h
        .store
        .notifications(
            ann.id,
            Some(pp_domain::notifications::NotificationCursor {
                at: page[1].notification.at,
                id: page[1].id,
            }),
            10,
        )
        .await
        .unwrap();
    assert_eq!(rest, anns[2..]);
    // Up to the middle one: it and the oldest are read, the newest is not.
    let now = h.clock.now();
    assert!(
        h.store
            .mark_notifications_read(ann.id, anns[1].id, now)
            .await
            .unwrap()
    );
    let read: Vec<bool> = h
        .store
        .notifications(ann.id, None, 10)
        .await
        .unwrap()
        .iter()
        .map(|stored| stored.read)
        .collect();
    assert_eq!(read, [false, true, true]);
    assert_eq!(h.store.unread_notifications(ann.id).await.unwrap(), 1);
    assert_eq!(h.store.unread_notifications(bob.id).await.unwrap(), 0);
    assert!(
        !h.store
            .mark_notifications_read(bob.id, anns[0].id, now)
            .await
            .unwrap(),
        "another's notification is no one's to mark"
    );
    // Marking again up to the newest reads it too; the others keep the
    // time they were first read, which retention counts from.
    let later = now + Duration::seconds(10);
    assert!(
        h.store
            .mark_notifications_read(ann.id, anns[0].id, later)
            .await
            .unwrap()
    );
    // Read and past retention: gone; unread (or read later): kept.
    let cutoff = now + Duration::seconds(1);
    assert_eq!(
        h.store
            .purge(Purge::ReadNotifications, cutoff, 100)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        h.store.notifications(ann.id, None, 10).await.unwrap().len(),
        1
    );
}

async fn auto_raises_are_told_and_notifications_of_one_instant_page_without_loss(backend: Backend) {
    let h = Harness::new(backend).await;
    let [ann, bob, cat] = <[_; 3]>::try_from(h.bidders(3).await).unwrap();
    // Ann's poison defends two items at one instant: two auto-raises with
    // one time, and each challenger outbid at once.
    for challenger in [&bob, &cat] {
        let item = h.item(1_000, 100).await;
        h.auctions
            .place_bid(&ann, item.item.id, poisoned(1_100, 5_000, 100))
            .await
            .unwrap();
        h.auctions
            .place_bid(challenger, item.item.id, plain(1_500))
            .await
            .unwrap();
    }
    let anns = h.store.notifications(ann.id, None, 10).await.unwrap();
    assert_eq!(anns.len(), 2);
    for stored in &anns {
        assert!(
            matches!(
                stored.notification.data,
                NotificationData::AutoRaised { effective, remaining_budget: 3_400, .. }
                    if effective.minor_units() == 1_600
            ),
            "{stored:?}"
        );
    }
    assert_eq!(anns[0].notification.at, anns[1].notification.at);
    let first = h.store.notifications(ann.id, None, 1).await.unwrap();
    let cursor = pp_domain::notifications::NotificationCursor {
        at: first[0].notification.at,
        id: first[0].id,
    };
    let second = h
        .store
        .notifications(ann.id, Some(cursor), 1)
        .await
        .unwrap();
    assert_eq!([first[0].clone(), second[0].clone()], anns.as_slice());
    let bobs = h.store.notifications(bob.id, None, 10).await.unwrap();
    assert!(
        matches!(bobs[..], [ref only] if matches!(only.notification.data, NotificationData::Outbid { .. })),
        "{bobs:?}"
    );
}

/// Whom the due outbox messages go to, and what they say, in order; each
/// is then settled as sent.
async fn mailed(h: &Harness) -> Vec<(String, &'static str)> {
    let worker = ClaimId::generate();
    let claimed = h
        .store
        .claim_due(worker, h.clock.now(), OUTBOX_LEASE, 100)
        .await
        .unwrap();
    for message in &claimed {
        let sent = Settlement::Sent { at: h.clock.now() };
        assert!(h.store.settle(message.id, worker, sent).await.unwrap());
    }
    claimed
        .into_iter()
        .map(|message| match message.mail {
            OutgoingMail::Notice(notice) => {
                let kind = match notice.notice {
                    NotificationData::Outbid { .. } => "outbid",
                    NotificationData::Exhausted { .. } => "exhausted",
                    NotificationData::Won { .. } => "won",
                    other => panic!("{other:?} is never mailed"),
                };
                assert_eq!(notice.item_title, "A lot");
                (notice.to.as_str().to_owned(), kind)
            }
            OutgoingMail::Link(link) => panic!("{link:?} is not a notice"),
        })
        .collect()
}

async fn notices_are_mailed_with_their_cause_unless_turned_off(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(1_000, 100).await;
    let id = item.item.id;
    let [ann, bob, cat] = <[_; 3]>::try_from(h.bidders(3).await).unwrap();
    let quiet = UserChanges {
        notify_email: Some(false),
        ..UserChanges::default()
    };
    h.store
        .update_user(bob.id, quiet, h.clock.now())
        .await
        .unwrap()
        .unwrap();
    h.auctions.place_bid(&ann, id, plain(1_200)).await.unwrap();
    assert_eq!(mailed(&h).await, [], "nobody outbid yet");
    // Bob's poison outbids Ann (mailed) and runs out against Cat (not
    // mailed: Bob turned notices off).
    h.auctions
        .place_bid(&bob, id, poisoned(1_300, 4_321, 100))
        .await
        .unwrap();
    h.auctions.place_bid(&cat, id, plain(9_000)).await.unwrap();
    assert_eq!(
        mailed(&h).await,
        [(ann.email.as_str().to_owned(), "outbid")]
    );
    let bobs = h.store.notifications(bob.id, None, 10).await.unwrap();
    assert!(
        matches!(
            bobs.as_slice(),
            [stored] if matches!(stored.notification.data, NotificationData::Exhausted { .. })
        ),
        "still listed, only not mailed: {bobs:?}"
    );

    // A close mails the winner only (the losers' notices stay in the list).
    h.clock.advance(Duration::hours(2));
    h.auctions.close_due_items(10).await.unwrap();
    assert_eq!(mailed(&h).await, [(cat.email.as_str().to_owned(), "won")]);
}

async fn links_and_outcomes_are_delivered_before_older_bid_news(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(1_000, 100).await;
    let id = item.item.id;
    let [ann, bob, cat] = <[_; 3]>::try_from(h.bidders(3).await).unwrap();
    h.auctions.place_bid(&ann, id, plain(1_200)).await.unwrap();
    h.clock.advance(Duration::seconds(1));
    h.auctions.place_bid(&bob, id, plain(1_300)).await.unwrap();
    h.clock.advance(Duration::seconds(1));
    h.auctions.place_bid(&cat, id, plain(1_400)).await.unwrap();
    h.clock.advance(Duration::hours(2));
    h.auctions.close_due_items(10).await.unwrap();
    h.clock.advance(Duration::seconds(1));
    let link = crate::outbox::store_link(&h, ann.id, h.clock.now(), 7).await;

    // One at a time: the newest message (the link) first, then the
    // outcome, then the bid news oldest first.
    let mut order = Vec::new();
    loop {
        let worker = ClaimId::generate();
        let claimed = h
            .store
            .claim_due(worker, h.clock.now(), OUTBOX_LEASE, 1)
            .await
            .unwrap();
        let Some(message) = claimed.into_iter().next() else {
            break;
        };
        let sent = Settlement::Sent { at: h.clock.now() };
        assert!(h.store.settle(message.id, worker, sent).await.unwrap());
        order.push(match message.mail {
            OutgoingMail::Link(_) => {
                assert_eq!(message.id, link.id);
                ("link".to_owned(), ann.email.as_str().to_owned())
            }
            OutgoingMail::Notice(notice) => {
                let kind = match notice.notice {
                    NotificationData::Outbid { .. } => "outbid",
                    NotificationData::Won { .. } => "won",
                    other => panic!("{other:?} is never mailed here"),
                };
                (kind.to_owned(), notice.to.as_str().to_owned())
            }
        });
    }
    let to = |kind: &str, user: &pp_domain::User| (kind.to_owned(), user.email.as_str().to_owned());
    assert_eq!(
        order,
        [
            to("link", &ann),
            to("won", &cat),
            to("outbid", &ann),
            to("outbid", &bob)
        ]
    );
}

on_both_backends!(
    links_and_outcomes_are_delivered_before_older_bid_news,
    notices_are_mailed_with_their_cause_unless_turned_off,
    auto_raises_are_told_and_notifications_of_one_instant_page_without_loss,
    a_bid_stores_who_it_tells_sealed_and_a_close_stores_won_and_lost,
    marking_read_reaches_back_to_older_ones_only_and_read_ones_are_purged_when_old,
);
