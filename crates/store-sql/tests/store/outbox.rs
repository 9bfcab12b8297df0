//! The outbox in the real store: mail stored with its cause, sealed;
//! claimed by one worker at a time, with a lease that lapses; settled,
//! retried, dead and revived; counted.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Duration;
use pp_domain::auth::ports::{IssueCap, NewLink, NewOneTimeToken, OneTimeTokenStore};
use pp_domain::auth::tokens::{LinkMail, OneTimePurpose, RequestContext, TokenDigest};
use pp_domain::outbox::{
    ClaimId, NewOutboxMail, OUTBOX_LEASE, OutboxId, OutboxStatus, OutboxStore, OutgoingMail,
    Settlement,
};
use pp_domain::ports::{Clock, CreateUserError, UserStore};
use pp_domain::{Email, NewUser, PasswordHash, Role, Timestamp, UserId};
use pp_testkit::Backend;
use sea_orm::ConnectionTrait;

use crate::on_both_backends;
use crate::sealing::{dump, hex};
use crate::support::Harness;

/// A reset-link mail to a user of `user`'s, written at `now`.
pub(crate) fn link_mail(user: UserId, purpose: OneTimePurpose, now: Timestamp) -> NewOutboxMail {
    NewOutboxMail::new(
        OutgoingMail::Link(LinkMail {
            to: Email::parse(&format!("u{}@example.com", user.as_uuid().simple())).unwrap(),
            name: "Ann Example".into(),
            purpose,
            link: format!("https://auction.example/reset-password?token=secret-{user}"),
            expires_at: now + Duration::hours(1),
        }),
        now,
    )
}

/// Stores a reset link for `user` issued at `now`, its token's digest
/// made of `digest_byte`, with the mail that carries it.
pub(crate) async fn store_link(
    h: &Harness,
    user: UserId,
    now: Timestamp,
    digest_byte: u8,
) -> NewOutboxMail {
    let mail = link_mail(user, OneTimePurpose::ResetPassword, now);
    let link = NewLink {
        token: NewOneTimeToken {
            digest: TokenDigest([digest_byte; 32]),
            user,
            purpose: OneTimePurpose::ResetPassword,
            issued_at: now,
            expires_at: now + Duration::hours(1),
        },
        mail: mail.clone(),
    };
    let cap = IssueCap {
        at_most: 1_000,
        since: now - Duration::hours(1),
    };
    assert!(h.store.issue_one_time_token(link, cap).await.unwrap());
    mail
}

/// Stores `n` mails for a new account, one second apart in due order.
async fn mails(h: &Harness, n: usize) -> Vec<NewOutboxMail> {
    let user = h.bidder().await;
    let mut stored = Vec::new();
    for i in 0..n {
        let now = h.clock.now() - Duration::seconds(100 - i as i64);
        stored.push(store_link(h, user.id, now, i as u8 + 1).await);
    }
    stored
}

/// Rows that still hold a sealed message.
async fn still_sealed(h: &Harness) -> i64 {
    let conn = h.store.database().connection();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT count(*) AS n FROM outbox WHERE sealed IS NOT NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Every row's last error.
async fn last_errors(h: &Harness) -> Vec<String> {
    let conn = h.store.database().connection();
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT last_error FROM outbox WHERE last_error IS NOT NULL",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get::<String>("", "last_error").unwrap())
        .collect()
}

async fn claim(h: &Harness, claim: ClaimId, limit: u32) -> Vec<(OutboxId, u32)> {
    h.store
        .claim_due(claim, h.clock.now(), OUTBOX_LEASE, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.id, m.attempt))
        .collect()
}

async fn a_registrations_mail_is_stored_with_the_account_sealed_and_claimed_as_written(
    backend: Backend,
) {
    let h = Harness::new(backend).await;
    let id = UserId::generate();
    let now = h.clock.now();
    let mail = link_mail(id, OneTimePurpose::VerifyEmail, now).caused_by(&RequestContext {
        request_id: Some("req-9".into()),
        trace_parent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        ..RequestContext::default()
    });
    let new_user = |email: &str| NewUser {
        id,
        email: Email::parse(email).unwrap(),
        display_name: "Ann Example".into(),
        password_hash: PasswordHash::new("$argon2id$stub".into()),
        role: Role::User,
        email_verified: false,
        created_at: now,
    };
    let verification = NewLink {
        token: NewOneTimeToken {
            digest: TokenDigest([7; 32]),
            user: id,
            purpose: OneTimePurpose::VerifyEmail,
            issued_at: now,
            expires_at: now + Duration::hours(24),
        },
        mail: mail.clone(),
    };
    h.store
        .insert_user(new_user("ann@example.com"), Some(verification.clone()))
        .await
        .unwrap();
    let raw = dump(&h, "outbox").await;
    // SQLite's dump is in hex, PostgreSQL's in text.
    let holds = |text: &str| raw.contains(text) || raw.contains(&hex(text.as_bytes()));
    assert!(holds("verify_email"), "the kind is plain: {raw}");
    for secret in ["secret-", "example.com", "ann example"] {
        assert!(!holds(secret), "{secret} in {raw}");
    }
    let claimed = h
        .store
        .claim_due(ClaimId::generate(), now, OUTBOX_LEASE, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].id, claimed[0].attempt), (mail.id, 1));
    assert_eq!(claimed[0].mail, mail.mail);
    // Its delivery is told which request (and trace) it belongs to.
    assert_eq!(claimed[0].request_id, mail.request_id);
    assert_eq!(claimed[0].trace_parent, mail.trace_parent);

    // A second account at the address: neither it, nor its link, nor its mail.
    let other = NewLink {
        mail: link_mail(id, OneTimePurpose::VerifyEmail, now),
        token: NewOneTimeToken {
            digest: TokenDigest([8; 32]),
            ..verification.token
        },
    };
    let taken = h
        .store
        .insert_user(
            NewUser {
                id: UserId::generate(),
                ..new_user("ann@example.com")
            },
            Some(other),
        )
        .await;
    assert!(
        matches!(taken, Err(CreateUserError::EmailTaken)),
        "{taken:?}"
    );
    assert_eq!(h.store.status(now).await.unwrap().pending, 1);
    assert!(!dump(&h, "one_time_tokens").await.contains(&hex(&[8; 32])));
}

async fn a_capped_link_stores_no_mail(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = h.bidder().await;
    let now = h.clock.now();
    let link = NewLink {
        token: NewOneTimeToken {
            digest: TokenDigest([1; 32]),
            user: ann.id,
            purpose: OneTimePurpose::ResetPassword,
            issued_at: now,
            expires_at: now + Duration::hours(1),
        },
        mail: link_mail(ann.id, OneTimePurpose::ResetPassword, now),
    };
    let cap = IssueCap {
        at_most: 0,
        since: now - Duration::hours(1),
    };
    assert!(!h.store.issue_one_time_token(link, cap).await.unwrap());
    assert_eq!(h.store.status(now).await.unwrap(), OutboxStatus::default());
}

async fn a_claim_takes_the_oldest_due_first_and_holds_them_until_its_lease_lapses(
    backend: Backend,
) {
    let h = Harness::new(backend).await;
    let stored = mails(&h, 3).await;
    let first = ClaimId::generate();
    assert_eq!(
        claim(&h, first, 2).await,
        [(stored[0].id, 1), (stored[1].id, 1)]
    );
    let second = ClaimId::generate();
    assert_eq!(claim(&h, second, 10).await, [(stored[2].id, 1)]);
    assert_eq!(claim(&h, second, 10).await, [], "all held");
    // The first worker died: its claim lapses and the next one takes them,
    // the attempt counted.
    h.clock.advance(OUTBOX_LEASE + Duration::seconds(1));
    let third = ClaimId::generate();
    let retaken = claim(&h, third, 2).await;
    assert_eq!(retaken, [(stored[0].id, 2), (stored[1].id, 2)]);
    let late = Settlement::Sent { at: h.clock.now() };
    assert!(
        !h.store
            .settle(stored[0].id, first, late.clone())
            .await
            .unwrap(),
        "a lapsed claim settles nothing"
    );
    assert!(h.store.settle(stored[0].id, third, late).await.unwrap());
}

async fn a_sent_message_is_never_claimed_again_and_its_content_is_erased(backend: Backend) {
    let h = Harness::new(backend).await;
    let stored = mails(&h, 1).await;
    let worker = ClaimId::generate();
    claim(&h, worker, 10).await;
    let sent = Settlement::Sent { at: h.clock.now() };
    assert!(h.store.settle(stored[0].id, worker, sent).await.unwrap());
    h.clock.advance(Duration::hours(1));
    assert_eq!(claim(&h, ClaimId::generate(), 10).await, []);
    let status = h.store.status(h.clock.now()).await.unwrap();
    assert_eq!((status.pending, status.sent, status.dead), (0, 1, 0));
    assert_eq!(still_sealed(&h).await, 0, "no content left");
}

async fn a_failed_message_waits_its_delay_and_an_operator_can_hurry_it(backend: Backend) {
    let h = Harness::new(backend).await;
    let stored = mails(&h, 1).await;
    let worker = ClaimId::generate();
    claim(&h, worker, 10).await;
    let due_at = h.clock.now() + Duration::minutes(5);
    let retry = Settlement::Retry {
        due_at,
        error: "connection refused".into(),
    };
    assert!(h.store.settle(stored[0].id, worker, retry).await.unwrap());
    assert_eq!(claim(&h, ClaimId::generate(), 10).await, []);
    let status = h.store.status(h.clock.now()).await.unwrap();
    assert_eq!(
        (status.pending, status.oldest_due),
        (1, None),
        "not due yet"
    );
    assert_eq!(
        status.oldest_pending,
        Some(stored[0].created_at),
        "waiting since it was written, whatever its due time"
    );
    assert_eq!(last_errors(&h).await, ["connection refused"]);
    assert_eq!(h.store.retry(h.clock.now(), false).await.unwrap(), 1);
    assert_eq!(
        h.store.status(h.clock.now()).await.unwrap().oldest_due,
        Some(h.clock.now())
    );
    assert_eq!(
        claim(&h, ClaimId::generate(), 10).await,
        [(stored[0].id, 2)]
    );
    // A message a worker holds is not hurried into another's hands.
    assert_eq!(h.store.retry(h.clock.now(), false).await.unwrap(), 0);
}

async fn a_dead_message_stays_dead_until_retried_with_dead_then_starts_afresh(backend: Backend) {
    let h = Harness::new(backend).await;
    let stored = mails(&h, 2).await;
    let worker = ClaimId::generate();
    claim(&h, worker, 1).await;
    let dead = Settlement::Dead {
        at: h.clock.now(),
        error: "550 no such user".into(),
    };
    assert!(h.store.settle(stored[0].id, worker, dead).await.unwrap());
    h.clock.advance(Duration::hours(1));
    assert_eq!(
        claim(&h, ClaimId::generate(), 10).await,
        [(stored[1].id, 1)]
    );
    let status = h.store.status(h.clock.now()).await.unwrap();
    assert_eq!((status.pending, status.dead), (1, 1));
    assert_eq!(h.store.retry(h.clock.now(), false).await.unwrap(), 0);
    assert_eq!(h.store.retry(h.clock.now(), true).await.unwrap(), 1);
    let revived = h
        .store
        .claim_due(ClaimId::generate(), h.clock.now(), OUTBOX_LEASE, 10)
        .await
        .unwrap();
    assert_eq!(revived.len(), 1);
    assert_eq!((revived[0].id, revived[0].attempt), (stored[0].id, 1));
    assert_eq!(revived[0].mail, stored[0].mail, "its content was kept");
}

async fn a_released_claim_is_due_at_once_with_the_attempt_not_counted(backend: Backend) {
    let h = Harness::new(backend).await;
    let stored = mails(&h, 2).await;
    let worker = ClaimId::generate();
    claim(&h, worker, 10).await;
    assert_eq!(h.store.release(worker, h.clock.now()).await.unwrap(), 2);
    assert_eq!(
        claim(&h, ClaimId::generate(), 10).await,
        [(stored[0].id, 1), (stored[1].id, 1)]
    );
}

async fn concurrent_claims_never_take_one_message_twice(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let stored = mails(&h, 40).await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let h = Arc::clone(&h);
            tokio::spawn(async move {
                let worker = ClaimId::generate();
                let mut taken = Vec::new();
                loop {
                    let round = claim(&h, worker, 3).await;
                    if round.is_empty() {
                        break taken;
                    }
                    taken.extend(round.into_iter().map(|(id, _)| id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let distinct: BTreeSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), stored.len(), "each once");
    assert_eq!(distinct, stored.iter().map(|m| m.id).collect());
}

on_both_backends!(
    a_registrations_mail_is_stored_with_the_account_sealed_and_claimed_as_written,
    a_capped_link_stores_no_mail,
    a_claim_takes_the_oldest_due_first_and_holds_them_until_its_lease_lapses,
    a_sent_message_is_never_claimed_again_and_its_content_is_erased,
    a_failed_message_waits_its_delay_and_an_operator_can_hurry_it,
    a_dead_message_stays_dead_until_retried_with_dead_then_starts_afresh,
    a_released_claim_is_due_at_once_with_the_attempt_not_counted,
    concurrent_claims_never_take_one_message_twice,
);
