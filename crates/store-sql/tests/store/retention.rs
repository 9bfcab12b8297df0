//! Purges in the real store: exactly what is past retention goes, nothing
//! else (on both backends).

use std::sync::Arc;

use chrono::Duration;
use pp_domain::auth::ports::{
    AuditLog, IssueCap, NewLink, NewOneTimeToken, NewRefreshToken, OneTimeTokenStore, SessionStart,
    SessionStore,
};
use pp_domain::auth::tokens::{AuditEntry, AuditEvent, OneTimePurpose, TokenDigest};
use pp_domain::outbox::{ClaimId, OUTBOX_LEASE, OutboxStore, Settlement};
use pp_domain::ports::Clock;
use pp_domain::retention::{Purge, Retention, RetentionPolicy};
use pp_domain::{SessionId, UserId};
use pp_testkit::Backend;
use sea_orm::ConnectionTrait;

use crate::on_both_backends;
use crate::outbox::link_mail;
use crate::support::Harness;

/// Rows of `table`.
async fn count(h: &Harness, table: &str) -> i64 {
    let conn = h.store.database().connection();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT count(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// A session for `user` started now, its first refresh token living 7 days.
async fn session(h: &Harness, user: UserId, byte: u8) -> SessionId {
    let now = h.clock.now();
    let first = NewRefreshToken {
        digest: TokenDigest([byte; 32]),
        session: SessionId::generate(),
        user,
        issued_at: now,
        expires_at: now + Duration::days(7),
    };
    let hash = h
        .users()
        .credentials_by_id(user)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert_eq!(
        h.store.start_session(first, &hash).await.unwrap(),
        SessionStart::Started
    );
    first.session
}

/// A reset link for `user` (1 h) and its mail, written now.
async fn link(h: &Harness, user: UserId, byte: u8) -> pp_domain::outbox::OutboxId {
    let now = h.clock.now();
    let mail = link_mail(user, OneTimePurpose::ResetPassword, now);
    let id = mail.id;
    let link = NewLink {
        token: NewOneTimeToken {
            digest: TokenDigest([byte; 32]),
            user,
            purpose: OneTimePurpose::ResetPassword,
            issued_at: now,
            expires_at: now + Duration::hours(1),
        },
        mail,
    };
    let cap = IssueCap {
        at_most: 100,
        since: now - Duration::hours(1),
    };
    assert!(h.store.issue_one_time_token(link, cap).await.unwrap());
    id
}

/// Claims every due message and settles each as `settle` says.
async fn settle_all(h: &Harness, settle: impl Fn() -> Settlement) {
    let claim = ClaimId::generate();
    let claimed = h
        .store
        .claim_due(claim, h.clock.now(), OUTBOX_LEASE, 100)
        .await
        .unwrap();
    for message in claimed {
        assert!(h.store.settle(message.id, claim, settle()).await.unwrap());
    }
}

async fn audit(h: &Harness, user: UserId) {
    h.store
        .record(AuditEntry {
            at: h.clock.now(),
            event: AuditEvent::LoginSucceeded,
            user: Some(user),
            actor: None,
            context: Default::default(),
            detail: None,
        })
        .await
        .unwrap();
}

async fn purges_remove_exactly_what_is_past_retention(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = h.bidder().await;
    let baseline_audit = count(&h, "audit_log").await;

    // Forty days ago: a session, a sent mail, a dead one, one still
    // waiting, their links, an audit entry.
    session(&h, ann.id, 1).await;
    link(&h, ann.id, 2).await;
    settle_all(&h, || Settlement::Sent { at: h.clock.now() }).await;
    link(&h, ann.id, 3).await;
    settle_all(&h, || Settlement::Dead {
        at: h.clock.now(),
        error: "550 no such user".into(),
    })
    .await;
    let waiting = link(&h, ann.id, 4).await;
    audit(&h, ann.id).await;

    // A session that lives on: its first token expired long ago, but it
    // was rotated into one that is still valid, so the spent one stays
    // (presented again, it must read as a replay).
    session(&h, ann.id, 5).await;
    h.clock.advance(Duration::days(6));
    let rotated = h
        .store
        .rotate_refresh_token(
            TokenDigest([5; 32]),
            TokenDigest([6; 32]),
            h.clock.now(),
            h.clock.now() + Duration::days(40),
        )
        .await
        .unwrap();
    assert!(matches!(
        rotated,
        pp_domain::auth::ports::Rotation::Rotated { .. }
    ));
    h.clock.advance(Duration::days(-6));

    // Now: the same again, all within retention.
    h.clock.advance(Duration::days(40));
    session(&h, ann.id, 11).await;
    link(&h, ann.id, 12).await;
    let recent_claim = ClaimId::generate();
    let claimed = h
        .store
        .claim_due(recent_claim, h.clock.now(), OUTBOX_LEASE, 100)
        .await
        .unwrap();
    // The old waiting message and the new one: settle only the new one.
    for message in claimed {
        if message.id != waiting {
            let sent = Settlement::Sent { at: h.clock.now() };
            assert!(
                h.store
                    .settle(message.id, recent_claim, sent)
                    .await
                    .unwrap()
            );
        }
    }
    audit(&h, ann.id).await;

    let before = (
        count(&h, "sessions").await,
        count(&h, "refresh_tokens").await,
        count(&h, "one_time_tokens").await,
        count(&h, "outbox").await,
        count(&h, "audit_log").await,
    );
    assert_eq!(before, (3, 4, 4, 4, baseline_audit + 2));

    let retention = Retention::new(
        Arc::new(h.store.clone()),
        h.clock.clone(),
        RetentionPolicy {
            days: 30,
            audit_days: 30,
        },
    );
    // Batches of one: the repetition is exercised too.
    let purged = retention.purge_all(1).await.unwrap();
    assert_eq!(
        purged,
        [
            (Purge::RefreshTokens, 1),
            (Purge::Sessions, 1),
            (Purge::OneTimeTokens, 3),
            (Purge::Mail, 2),
            (Purge::ReadNotifications, 0),
            (Purge::AuditEntries, 1 + baseline_audit as u64),
        ]
    );
    assert_eq!(count(&h, "sessions").await, 2, "the live sessions stay");
    assert_eq!(
        count(&h, "refresh_tokens").await,
        3,
        "the new session's token, and both of the rotated one's"
    );
    assert_eq!(count(&h, "one_time_tokens").await, 1);
    // The waiting message stays, however old: it is not delivered yet.
    let status = h.store.status(h.clock.now()).await.unwrap();
    assert_eq!((status.pending, status.sent, status.dead), (1, 1, 0));
    assert_eq!(count(&h, "audit_log").await, 1);
    // A second run finds nothing.
    let again = retention.purge_all(100).await.unwrap();
    assert!(again.iter().all(|(_, n)| *n == 0), "{again:?}");
}

on_both_backends!(purges_remove_exactly_what_is_past_retention);
