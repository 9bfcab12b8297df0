//! Each check fails on a history that breaks its rule, and passes on the
//! same history kept whole: a checker that cannot fail proves nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::*;
use crate::history::Seen;

fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

const ITEM: u128 = 100;
const ALICE: u128 = 1;
const BOB: u128 = 2;

fn attempt(user: u128, amount: i64, answer: Answer) -> BidAttempt {
    let now = Instant::now();
    BidAttempt {
        user: id(user),
        item: id(ITEM),
        amount,
        poison: None,
        instance: 0,
        sent: now,
        answered: now,
        answer,
    }
}

fn bid(seq: u64, bidder: u128, amount: i64) -> StoredBid {
    StoredBid {
        seq,
        bidder: id(bidder),
        amount,
        poison: None,
    }
}

/// Alice bids 120, Bob 150: Bob wins at 150 (plain bids pay their own).
fn item(bids: Vec<StoredBid>) -> ClosedItem {
    ClosedItem {
        id: id(ITEM),
        bids,
        final_price: Some(150),
        winner: Some(id(BOB)),
    }
}

fn whole_item() -> ClosedItem {
    item(vec![bid(1, ALICE, 120), bid(2, BOB, 150)])
}

fn timeline() -> Timeline<'static> {
    Timeline {
        started: Instant::now(),
        faults: &[],
    }
}

fn created() -> Answer {
    Answer::Status(201, None)
}

#[test]
fn an_acknowledged_bid_missing_from_the_store_is_a_loss() {
    let attempts = [attempt(ALICE, 120, created()), attempt(BOB, 150, created())];
    assert!(acknowledged_bids_are_stored(&attempts, &[whole_item()], timeline()).passed());

    let lost = item(vec![bid(1, BOB, 150)]);
    let verdict = acknowledged_bids_are_stored(&attempts, &[lost], timeline());
    assert_eq!(verdict.failures.len(), 1, "{verdict:?}");
    assert!(verdict.failures[0].starts_with("acknowledged by api-1 and lost"));
    assert!(
        verdict.failures[0].contains("\n      | t+"),
        "an excerpt follows"
    );
}

#[test]
fn a_refused_bid_in_the_store_fails_unless_an_earlier_try_went_unanswered() {
    let refused = attempt(ALICE, 120, Answer::Status(422, Some("bid_too_low".into())));
    let attempts = [refused.clone(), attempt(BOB, 150, created())];
    assert!(!acknowledged_bids_are_stored(&attempts, &[whole_item()], timeline()).passed());

    let retried = [
        attempt(ALICE, 120, Answer::None("reset".into())),
        refused,
        attempt(BOB, 150, created()),
    ];
    assert!(acknowledged_bids_are_stored(&retried, &[whole_item()], timeline()).passed());
}

#[test]
fn two_stored_bids_of_one_bidder_are_a_duplicate() {
    let doubled = item(vec![bid(1, ALICE, 120), bid(2, BOB, 150), bid(3, BOB, 150)]);
    let attempts = [attempt(BOB, 150, created())];
    let verdict = acknowledged_bids_are_stored(&attempts, &[doubled], timeline());
    assert!(
        verdict
            .failures
            .iter()
            .any(|f| f.contains("has 2 bids stored"))
    );
}

#[test]
fn a_stored_outcome_the_engine_does_not_reproduce_fails() {
    assert!(replays_reproduce_outcomes(&[whole_item()]).passed());

    let mut wrong_winner = whole_item();
    wrong_winner.winner = Some(id(ALICE));
    assert!(!replays_reproduce_outcomes(&[wrong_winner]).passed());

    let gap = item(vec![bid(1, ALICE, 120), bid(3, BOB, 150)]);
    assert!(!replays_reproduce_outcomes(&[gap]).passed());
}

fn subscription(ids: &[(u64, &str)]) -> Subscription {
    let at = Instant::now();
    Subscription {
        item: id(ITEM),
        seen: ids
            .iter()
            .map(|(id, event)| Seen {
                event: (*event).to_owned(),
                id: *id,
                at,
            })
            .collect(),
        reconnects: 1,
    }
}

#[test]
fn a_stream_with_a_gap_a_repeat_or_no_close_fails() {
    let whole = subscription(&[(1, "price"), (2, "price"), (3, "closed")]);
    assert!(streams_have_no_gap_or_repeat(&[whole], &[whole_item()], timeline()).passed());

    for broken in [
        &[(1, "price"), (3, "closed")][..],
        &[(1, "price"), (2, "price"), (2, "price"), (3, "closed")],
        &[(1, "price"), (2, "price")],
        &[(1, "price"), (2, "price"), (3, "closed"), (4, "closed")],
        &[],
    ] {
        let verdict =
            streams_have_no_gap_or_repeat(&[subscription(broken)], &[whole_item()], timeline());
        assert!(!verdict.passed(), "{broken:?} passed");
    }
}

fn notice(user: u128, kind: &str) -> Notice {
    Notice {
        user: id(user),
        item: id(ITEM),
        kind: kind.to_owned(),
    }
}

fn won_mail(to: &str, message_id: &str) -> pp_testkit::smtp::ReceivedMail {
    pp_testkit::smtp::ReceivedMail {
        file: std::path::PathBuf::from("won.eml"),
        raw: String::new(),
        mail_from: "auctions@chaos.test".to_owned(),
        recipients: vec![to.to_owned()],
        message_id: Some(message_id.to_owned()),
        subject: Some(winner_subject("Lot 0")),
        text: None,
        html: None,
    }
}

#[test]
fn an_item_closed_twice_or_not_told_fails() {
    let titles = HashMap::from([(id(ITEM), "Lot 0".to_owned())]);
    let emails = HashMap::from([(id(BOB), "bob@chaos.test".to_owned())]);
    let check = |notices: &[Notice], mails: &[pp_testkit::smtp::ReceivedMail]| {
        items_close_once(&[whole_item()], notices, mails, &titles, &emails)
    };
    let told = [notice(ALICE, "lost"), notice(BOB, "won")];
    let mailed = [won_mail("bob@chaos.test", "a@x")];
    assert!(check(&told, &mailed).passed());
    // A crash retried the mail: two copies of one message are fine.
    let retried = [
        won_mail("bob@chaos.test", "a@x"),
        won_mail("bob@chaos.test", "a@x"),
    ];
    assert!(check(&told, &retried).passed());

    let twice = [
        notice(ALICE, "lost"),
        notice(BOB, "won"),
        notice(BOB, "won"),
    ];
    assert!(!check(&twice, &mailed).passed());
    assert!(!check(&[notice(BOB, "won")], &mailed).passed());
    let stranger = [
        notice(ALICE, "lost"),
        notice(BOB, "won"),
        Notice {
            user: id(9),
            ..notice(ALICE, "lost")
        },
    ];
    assert!(!check(&stranger, &mailed).passed());
    assert!(!check(&told, &[]).passed());
    let two_messages = [
        won_mail("bob@chaos.test", "a@x"),
        won_mail("bob@chaos.test", "b@x"),
    ];
    assert!(!check(&told, &two_messages).passed());
}

fn race(answers: [Answer; 2], after: Option<Answer>) -> RefreshRace {
    RefreshRace {
        sent: Instant::now(),
        answers,
        successor_after: after.clone(),
        access_after: after,
    }
}

#[test]
fn a_token_with_two_successors_or_a_family_that_outlives_reuse_fails() {
    let ok = || Answer::Status(200, None);
    let reused = || Answer::Status(401, Some("token_reused".into()));
    let refused = || Answer::Status(401, Some("unauthorized".into()));
    let chains = |races: &[RefreshRace], forked: &[(uuid::Uuid, i64)]| {
        refresh_families_stay_chains(races, forked, timeline())
    };
    assert!(chains(&[race([ok(), reused()], Some(refused()))], &[]).passed());
    // One rotation unanswered: the other's successor may well live.
    let unanswered = race([ok(), Answer::None("reset".into())], Some(ok()));
    assert!(chains(&[unanswered], &[]).passed());

    assert!(!chains(&[race([ok(), ok()], Some(refused()))], &[]).passed());
    assert!(!chains(&[race([reused(), ok()], Some(ok()))], &[]).passed());
    assert!(!chains(&[], &[(id(7), 2)]).passed());
}

#[test]
fn the_table_counts_what_happened_inside_each_fault() {
    let from = Instant::now();
    let faults = [FaultWindow {
        kind: "kill -9 instance",
        target: "api-1".into(),
        from,
        to: from + Duration::from_secs(2),
    }];
    let inside = |mut attempt: BidAttempt| {
        attempt.sent = from + Duration::from_secs(1);
        attempt.answered = attempt.sent;
        attempt
    };
    let attempts = [
        inside(attempt(ALICE, 120, created())),
        inside(attempt(BOB, 150, Answer::None("reset".into()))),
    ];
    let lost = item(vec![bid(1, BOB, 150)]);
    let mut repeat = subscription(&[(1, "price"), (1, "price"), (2, "closed")]);
    repeat.seen[1].at = from + Duration::from_secs(1);
    let rows = table(&attempts, &[lost], &[repeat], &faults);
    let row = &rows["kill -9 instance"];
    assert_eq!(
        (
            row.injected,
            row.requests,
            row.correct,
            row.acknowledged,
            row.lost,
            row.stale_events
        ),
        (1, 2, 1, 1, 1, 1)
    );
    assert!((row.availability() - 50.0).abs() < f64::EPSILON);
}
