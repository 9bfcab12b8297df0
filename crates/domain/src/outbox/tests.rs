use super::*;
use crate::Email;
use crate::auth::tokens::OneTimePurpose;
use crate::ports::MockClock;
use chrono::TimeZone;
use mockall::predicate::eq;
use proptest::prelude::*;

fn at(seconds: i64) -> Timestamp {
    chrono::Utc
        .timestamp_opt(1_800_000_000 + seconds, 0)
        .unwrap()
}

fn clock_at(now: Timestamp) -> Arc<MockClock> {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(now);
    Arc::new(clock)
}

fn link_mail() -> OutgoingMail {
    OutgoingMail::Link(LinkMail {
        to: Email::parse("ann@example.com").unwrap(),
        name: "Ann".into(),
        purpose: OneTimePurpose::VerifyEmail,
        link: "http://localhost/verify-email?token=secret".into(),
        expires_at: at(0) + Duration::hours(24),
    })
}

fn claimed(attempt: u32) -> ClaimedMail {
    ClaimedMail {
        id: OutboxId::generate(),
        attempt,
        mail: link_mail(),
        request_id: Some("req-1".into()),
        trace_parent: None,
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        ..RetryPolicy::default()
    }
}

/// A worker whose store hands out `messages` and expects each settlement
/// `settled` returns for it, and whose delivery answers `outcome`.
fn worker(
    messages: Vec<ClaimedMail>,
    outcome: Result<(), DeliveryError>,
    settled: impl Fn(&Settlement) -> bool + Send + Sync + 'static,
    seen: Arc<std::sync::Mutex<Vec<(OutboxId, Settlement)>>>,
) -> OutboxWorker {
    let mut store = MockOutboxStore::new();
    store
        .expect_claim_due()
        .withf(|_, now, lease, limit| *now == at(0) && *lease == OUTBOX_LEASE && *limit == 10)
        .times(1)
        .return_once(move |_, _, _, _| Ok(messages));
    store.expect_settle().returning(move |id, _, settlement| {
        let kept = settled(&settlement);
        seen.lock().unwrap().push((id, settlement));
        Ok(kept)
    });
    let mut delivery = MockMailDelivery::new();
    delivery
        .expect_deliver()
        .returning(move |_| outcome.clone());
    OutboxWorker::new(
        Arc::new(store),
        Arc::new(delivery),
        clock_at(at(0)),
        policy(),
    )
}

#[test]
fn the_first_retry_comes_after_about_a_second_then_the_delay_doubles_up_to_five_minutes() {
    let policy = RetryPolicy {
        max_attempts: 20,
        ..RetryPolicy::default()
    };
    let id = OutboxId::generate();
    let first = policy.delay_after(id, 1).unwrap();
    assert!((800..=1200).contains(&first.num_milliseconds()), "{first}");
    let fourth = policy.delay_after(id, 4).unwrap();
    assert!(
        (6_400..=9_600).contains(&fourth.num_milliseconds()),
        "{fourth}"
    );
    for attempt in 10..20 {
        assert!(policy.delay_after(id, attempt).unwrap() <= Duration::minutes(5));
    }
    let at_the_cap: std::collections::BTreeSet<i64> = (0..40)
        .map(|_| {
            let delay = policy.delay_after(OutboxId::generate(), 19).unwrap();
            assert!(delay >= Duration::minutes(4) && delay <= Duration::minutes(5));
            delay.num_milliseconds()
        })
        .collect();
    assert!(
        at_the_cap.len() > 5,
        "still spread at the cap: {at_the_cap:?}"
    );
}

#[test]
fn the_last_attempt_has_no_retry() {
    let id = OutboxId::generate();
    assert!(policy().delay_after(id, 3).is_some());
    assert_eq!(policy().delay_after(id, 4), None);
    assert_eq!(policy().delay_after(id, 40), None);
    let once = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    assert_eq!(once.delay_after(id, 1), None);
}

#[test]
fn messages_that_failed_together_come_back_spread_out() {
    let delays: std::collections::BTreeSet<i64> = (0..50)
        .map(|_| {
            policy()
                .delay_after(OutboxId::generate(), 1)
                .unwrap()
                .num_milliseconds()
        })
        .collect();
    assert!(delays.len() > 25, "{delays:?}");
}

proptest! {
    #[test]
    fn every_delay_is_the_doubled_base_within_a_fifth_and_never_past_the_cap(
        low in any::<u64>(),
        attempt in 1_u32..64,
    ) {
        let policy = RetryPolicy { max_attempts: 64, ..RetryPolicy::default() };
        let id = OutboxId::from_uuid(Uuid::from_u64_pair(0x0190_0000_0000_7000, low));
        let delay = policy.delay_after(id, attempt).unwrap().num_milliseconds();
        let cap = 300_000;
        let base = 1_000_i64.saturating_mul(1_i64 << (attempt - 1).min(30)).min(cap);
        prop_assert!(delay <= cap);
        prop_assert!(delay >= base * 8 / 10);
        prop_assert!(delay <= base.saturating_mul(12) / 10);
        prop_assert_eq!(policy.delay_after(id, attempt).unwrap().num_milliseconds(), delay);
    }
}

#[test]
fn a_state_reads_back_from_its_name() {
    for state in OutboxState::ALL {
        assert_eq!(OutboxState::parse(state.as_str()), Some(state));
    }
    assert_eq!(OutboxState::parse("lost"), None);
}

type Seen = Arc<std::sync::Mutex<Vec<(OutboxId, Settlement)>>>;

fn run(worker: &OutboxWorker) -> DeliveryRound {
    futures_executor::block_on(worker.deliver_due(10)).unwrap()
}

#[test]
fn a_delivered_message_is_settled_as_sent_now() {
    let seen = Seen::default();
    let message = claimed(1);
    let worker = worker(vec![message.clone()], Ok(()), |_| true, seen.clone());
    let round = run(&worker);
    assert_eq!((round.claimed, round.sent), (1, 1));
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [(message.id, Settlement::Sent { at: at(0) })]
    );
}

#[test]
fn a_transient_failure_is_due_again_after_the_policys_delay_with_its_error() {
    let seen = Seen::default();
    let message = claimed(2);
    let failure = DeliveryError::Transient("connection refused".into());
    let worker = worker(vec![message.clone()], Err(failure), |_| true, seen.clone());
    let round = run(&worker);
    assert_eq!(round.retried, 1);
    let delay = policy().delay_after(message.id, 2).unwrap();
    assert_eq!(
        round.failures,
        [FailedDelivery {
            id: message.id,
            kind: "verify_email",
            attempt: 2,
            request_id: Some("req-1".into()),
            error: "connection refused".into(),
            retry_at: Some(at(0) + delay),
        }]
    );
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [(
            message.id,
            Settlement::Retry {
                due_at: at(0) + delay,
                error: "connection refused".into()
            }
        )]
    );
}

#[test]
fn a_transient_failure_on_the_last_attempt_is_dead() {
    let seen = Seen::default();
    let message = claimed(4);
    let failure = DeliveryError::Transient("timed out".into());
    let worker = worker(vec![message.clone()], Err(failure), |_| true, seen.clone());
    let round = run(&worker);
    assert_eq!(round.dead, 1);
    assert_eq!(round.failures[0].retry_at, None);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [(
            message.id,
            Settlement::Dead {
                at: at(0),
                error: "timed out".into()
            }
        )]
    );
}

#[test]
fn a_permanent_refusal_is_dead_at_once() {
    let seen = Seen::default();
    let message = claimed(1);
    let failure = DeliveryError::Permanent("550 no such user".into());
    let worker = worker(vec![message.clone()], Err(failure), |_| true, seen.clone());
    assert_eq!(run(&worker).dead, 1);
    assert!(matches!(seen.lock().unwrap()[0].1, Settlement::Dead { .. }));
}

#[test]
fn a_settlement_another_worker_overtook_is_counted_as_a_lost_claim() {
    let seen = Seen::default();
    let worker = worker(
        vec![claimed(1), claimed(1)],
        Ok(()),
        |_| false,
        seen.clone(),
    );
    let round = run(&worker);
    assert_eq!((round.claimed, round.sent, round.lost_claims), (2, 2, 2));
}

#[test]
fn one_worker_claims_settles_and_releases_under_one_claim() {
    let mut store = MockOutboxStore::new();
    let claims = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (on_claim, on_settle, on_release) = (claims.clone(), claims.clone(), claims.clone());
    store.expect_claim_due().returning(move |claim, _, _, _| {
        on_claim.lock().unwrap().push(claim);
        Ok(vec![claimed(1)])
    });
    store.expect_settle().returning(move |_, claim, _| {
        on_settle.lock().unwrap().push(claim);
        Ok(true)
    });
    store
        .expect_release()
        .with(mockall::predicate::always(), eq(at(0)))
        .returning(move |claim, _| {
            on_release.lock().unwrap().push(claim);
            Ok(0)
        });
    let mut delivery = MockMailDelivery::new();
    delivery.expect_deliver().returning(|_| Ok(()));
    let worker = OutboxWorker::new(
        Arc::new(store),
        Arc::new(delivery),
        clock_at(at(0)),
        policy(),
    );
    run(&worker);
    futures_executor::block_on(worker.release()).unwrap();
    let claims = claims.lock().unwrap();
    assert_eq!(claims.len(), 3);
    assert!(claims.iter().all(|claim| *claim == claims[0]));
}

/// A worker whose store hands out `message` and records its settlement in
/// `seen`, and whose delivery must not be called.
fn untried(message: ClaimedMail, seen: Seen) -> OutboxWorker {
    let mut store = MockOutboxStore::new();
    store
        .expect_claim_due()
        .return_once(move |_, _, _, _| Ok(vec![message]));
    store.expect_settle().returning(move |id, _, settlement| {
        seen.lock().unwrap().push((id, settlement));
        Ok(true)
    });
    let mut delivery = MockMailDelivery::new();
    delivery.expect_deliver().never();
    OutboxWorker::new(
        Arc::new(store),
        Arc::new(delivery),
        clock_at(at(0)),
        policy(),
    )
}

#[test]
fn a_message_claimed_past_its_attempts_without_an_outcome_is_dead_untried() {
    let seen = Seen::default();
    // Four attempts allowed; the fifth claim means four ended in nothing.
    let message = claimed(5);
    let worker = untried(message.clone(), seen.clone());
    assert_eq!(run(&worker).dead, 1);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [(
            message.id,
            Settlement::Dead {
                at: at(0),
                error: "claimed 4 times without an outcome".into()
            }
        )]
    );
}

#[test]
fn a_link_that_expired_while_it_waited_is_dead_unsent() {
    let seen = Seen::default();
    let mut message = claimed(3);
    message.mail.as_link_mut().unwrap().expires_at = at(0);
    let worker = untried(message.clone(), seen.clone());
    assert_eq!(run(&worker).dead, 1);
    assert!(matches!(
        &seen.lock().unwrap()[0].1,
        Settlement::Dead { error, .. } if error.contains("expired")
    ));
}

#[test]
fn a_store_failure_is_an_error_and_delivers_nothing() {
    let mut store = MockOutboxStore::new();
    store
        .expect_claim_due()
        .returning(|_, _, _, _| Err(StoreError::Busy));
    let delivery = MockMailDelivery::new();
    let worker = OutboxWorker::new(
        Arc::new(store),
        Arc::new(delivery),
        clock_at(at(0)),
        policy(),
    );
    assert!(futures_executor::block_on(worker.deliver_due(10)).is_err());
}

#[test]
fn ids_round_trip_and_a_worker_prints_only_its_policy() {
    let id = OutboxId::generate();
    assert_eq!(id.to_string(), id.as_uuid().to_string());
    let claim = ClaimId::generate();
    assert_eq!(ClaimId::from_uuid(claim.as_uuid()), claim);
    let worker = OutboxWorker::new(
        Arc::new(MockOutboxStore::new()),
        Arc::new(MockMailDelivery::new()),
        clock_at(at(0)),
        policy(),
    );
    let printed = format!("{worker:?}");
    assert!(printed.contains("max_attempts: 4"), "{printed}");
}

#[test]
fn a_mails_kind_names_no_secret() {
    assert_eq!(link_mail().kind(), "verify_email");
}

fn notice_mail(notice: NotificationData) -> OutgoingMail {
    OutgoingMail::Notice(NoticeMail {
        to: Email::parse("ann@example.com").unwrap(),
        name: "Ann".into(),
        item_title: "Lamp".into(),
        currency: crate::Currency::default(),
        notice,
    })
}

#[test]
fn links_go_before_outcomes_and_outcomes_before_bid_news() {
    let item = crate::ItemId::generate();
    let price = crate::Money::new(500).unwrap();
    let outbid = NotificationData::Outbid {
        item,
        current_price: price,
        minimum_next_bid: 600,
    };
    let raised = NotificationData::AutoRaised {
        item,
        effective: price,
        remaining_budget: 100,
    };
    let exhausted = NotificationData::Exhausted {
        item,
        effective: price,
        current_price: price,
        minimum_next_bid: 600,
    };
    let won = NotificationData::Won {
        item,
        final_price: price,
    };
    let lost = NotificationData::Lost {
        item,
        final_price: price,
    };
    assert_eq!(link_mail().urgency(), MailUrgency::Awaited);
    for closing in [won, lost] {
        assert_eq!(notice_mail(closing).urgency(), MailUrgency::Closing);
    }
    for news in [outbid, raised, exhausted] {
        assert_eq!(notice_mail(news).urgency(), MailUrgency::News);
    }
    let ranks = [
        MailUrgency::Awaited.rank(),
        MailUrgency::Closing.rank(),
        MailUrgency::News.rank(),
    ];
    assert!(ranks.is_sorted_by(|a, b| a < b), "{ranks:?}");
}
