//! Sessions, refresh-token rotation, one-time tokens, lockout counters and
//! the audit log in the real store.

use std::sync::Arc;

use chrono::Duration;
use pp_domain::auth::ports::{
    AuditLog, IssueCap, NewLink, NewOneTimeToken, NewRefreshToken, OneTimeTokenStore, Rotation,
    SessionStart, SessionStore,
};
use pp_domain::auth::tokens::{
    AuditEntry, AuditEvent, OneTimePurpose, RequestContext, TokenDigest,
};
use pp_domain::auth::{FailedAttempt, LockoutPolicy};
use pp_domain::ports::{Clock, PasswordReplacement, ReplacePasswordError};
use pp_domain::{DisplayName, PasswordHash, Role, SessionId, UserChanges, UserCursor};
use pp_testkit::{Backend, create_user};

use crate::on_both_backends;
use crate::support::Harness;

fn digest(byte: u8) -> TokenDigest {
    TokenDigest([byte; 32])
}

/// `token` with the mail that carries its link.
pub(crate) fn link(token: NewOneTimeToken) -> NewLink {
    NewLink {
        mail: crate::outbox::link_mail(token.user, token.purpose, token.issued_at),
        token,
    }
}

/// The first refresh token of a new session for `user`, issued now.
fn first_token(h: &Harness, user: pp_domain::UserId, byte: u8) -> NewRefreshToken {
    let now = h.clock.now();
    NewRefreshToken {
        digest: digest(byte),
        session: SessionId::generate(),
        user,
        issued_at: now,
        expires_at: now + Duration::days(7),
    }
}

/// The password hash `user` has stored now.
async fn stored_hash(h: &Harness, user: pp_domain::UserId) -> PasswordHash {
    h.users()
        .credentials_by_id(user)
        .await
        .unwrap()
        .unwrap()
        .password_hash
}

async fn session_with_token(h: &Harness, user: pp_domain::UserId, byte: u8) -> SessionId {
    let first = first_token(h, user, byte);
    let verified = stored_hash(h, user).await;
    let started = h.store.start_session(first, &verified).await.unwrap();
    assert_eq!(started, SessionStart::Started);
    first.session
}

/// Stores a one-time token (a mailed link) issued now.
async fn issue_link(
    h: &Harness,
    byte: u8,
    user: pp_domain::UserId,
    purpose: OneTimePurpose,
    expires_at: pp_domain::Timestamp,
) {
    let issued = h
        .store
        .issue_one_time_token(
            link(NewOneTimeToken {
                digest: digest(byte),
                user,
                purpose,
                issued_at: h.clock.now(),
                expires_at,
            }),
            IssueCap {
                at_most: 100,
                since: h.clock.now() - Duration::hours(1),
            },
        )
        .await
        .unwrap();
    assert!(issued);
}

async fn a_refresh_token_rotates_once_and_a_replay_is_reuse(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = h.bidder().await;
    let session = session_with_token(&h, ann.id, 1).await;
    let now = h.clock.now();
    let rotate = |presented: u8, successor: u8| {
        h.store.rotate_refresh_token(
            digest(presented),
            digest(successor),
            now,
            now + Duration::days(7),
        )
    };
    let rotated = Rotation::Rotated {
        session,
        user: ann.id,
    };
    let reused = Rotation::Reused {
        session,
        user: ann.id,
    };

    assert_eq!(rotate(1, 2).await.unwrap(), rotated);
    assert_eq!(rotate(1, 3).await.unwrap(), reused, "a replay");
    assert_eq!(rotate(2, 4).await.unwrap(), rotated);
    assert_eq!(rotate(99, 5).await.unwrap(), Rotation::Invalid, "unknown");

    h.store.revoke_session(session, now).await.unwrap();
    assert_eq!(rotate(4, 6).await.unwrap(), Rotation::Invalid, "revoked");
    // A rotated token stays a replay after its session ended.
    assert_eq!(rotate(1, 7).await.unwrap(), reused);
}

async fn a_session_starts_only_for_the_checked_password_of_an_active_account(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = h.bidder().await;
    let checked = stored_hash(&h, ann.id).await;
    let replaced = PasswordHash::new("$argon2id$replaced".into());
    h.users()
        .replace_password(PasswordReplacement {
            user: ann.id,
            hash: replaced.clone(),
            at: h.clock.now(),
            keep_session: None,
            link: None,
        })
        .await
        .unwrap();
    let stale = h
        .store
        .start_session(first_token(&h, ann.id, 1), &checked)
        .await
        .unwrap();
    assert_eq!(stale, SessionStart::Stale);
    let nothing_stored = h
        .store
        .rotate_refresh_token(digest(1), digest(2), h.clock.now(), h.clock.now())
        .await
        .unwrap();
    assert_eq!(nothing_stored, Rotation::Invalid);

    let current = h
        .store
        .start_session(first_token(&h, ann.id, 3), &replaced)
        .await
        .unwrap();
    assert_eq!(current, SessionStart::Started);

    h.users()
        .update_user(
            ann.id,
            UserChanges {
                is_active: Some(false),
                ..UserChanges::default()
            },
            h.clock.now(),
        )
        .await
        .unwrap();
    let deactivated = h
        .store
        .start_session(first_token(&h, ann.id, 4), &replaced)
        .await
        .unwrap();
    assert_eq!(deactivated, SessionStart::Stale);
}

/// A login whose password check overlaps a reset (PostgreSQL, where the
/// two run truly at once): the reset has updated the account but not yet
/// committed when the login stores its session. The login waits for the
/// reset and then stores nothing.
#[tokio::test]
async fn a_login_overlapping_an_uncommitted_reset_waits_and_stores_nothing() {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

    let h = Arc::new(Harness::new(Backend::Postgres).await);
    let ann = h.bidder().await;
    let checked = stored_hash(&h, ann.id).await;
    let reset = h.store.database().connection().begin().await.unwrap();
    reset
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            r#"UPDATE users SET password_hash = '$argon2id$reset' WHERE id = $1"#,
            [ann.id.as_uuid().into()],
        ))
        .await
        .unwrap();
    let login = {
        let (h, first) = (Arc::clone(&h), first_token(&h, ann.id, 1));
        tokio::spawn(async move { h.store.start_session(first, &checked).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!login.is_finished(), "the login did not wait for the reset");
    reset.commit().await.unwrap();
    assert_eq!(login.await.unwrap().unwrap(), SessionStart::Stale);
}

/// A password change that keeps its session while a refresh of that
/// session is under way (PostgreSQL): the refresh has spent its token and
/// stored a successor but not committed. The change waits for it, and the
/// successor is spent with the rest.
#[tokio::test]
async fn replacing_a_sessions_tokens_during_a_rotation_spends_its_successor() {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

    let h = Arc::new(Harness::new(Backend::Postgres).await);
    let ann = h.bidder().await;
    let session = session_with_token(&h, ann.id, 1).await;
    let rotation = h.store.database().connection().begin().await.unwrap();
    for sql in [
        r#"UPDATE refresh_tokens SET spent_at = now() WHERE digest = $1"#,
        r#"INSERT INTO refresh_tokens (digest, session_id, user_id, issued_at, expires_at, spent_at)
           SELECT $2, session_id, user_id, now(), now() + interval '7 days', NULL FROM refresh_tokens WHERE digest = $1"#,
    ] {
        rotation
            .execute_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                sql,
                [digest(1).0.to_vec().into(), digest(2).0.to_vec().into()],
            ))
            .await
            .unwrap();
    }
    let change = {
        let h = Arc::clone(&h);
        let successor = NewRefreshToken {
            session,
            ..first_token(&h, ann.id, 3)
        };
        tokio::spawn(async move {
            h.store
                .replace_refresh_tokens(successor, h.clock.now())
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !change.is_finished(),
        "the change did not wait for the refresh"
    );
    rotation.commit().await.unwrap();
    change.await.unwrap().unwrap();
    let now = h.clock.now();
    let refreshed = h
        .store
        .rotate_refresh_token(digest(2), digest(4), now, now + Duration::days(7))
        .await
        .unwrap();
    assert!(
        matches!(refreshed, Rotation::Reused { .. }),
        "the refresh's successor outlived the change: {refreshed:?}"
    );
}

/// A write meeting another process's write lock on the SQLite file (an
/// `admin` command, say) waits the lock timeout once, then is busy: it is
/// not retried into several timeouts.
#[tokio::test]
async fn a_write_blocked_by_another_sqlite_process_is_busy_after_one_lock_timeout() {
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let h = Harness::new(Backend::Sqlite).await;
    let ann = h.bidder().await;
    let mut settings = h.database.settings();
    settings.lock_timeout = std::time::Duration::from_secs(1);
    let store = pp_store_sql::SqlStore::new(
        pp_store_sql::Database::connect(&settings).await.unwrap(),
        Arc::new(pp_crypto::AesGcmSealer::new(&pp_testkit::TEST_SEALING_KEY)),
    );
    let other_process = pp_store_sql::Database::connect(&h.database.settings())
        .await
        .unwrap();
    let holding = other_process.connection().begin().await.unwrap();
    holding
        .execute_unprepared("UPDATE users SET display_name = display_name")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let verified = stored_hash(&h, ann.id).await;
    let blocked = store
        .start_session(first_token(&h, ann.id, 1), &verified)
        .await;
    let waited = started.elapsed();
    assert!(
        matches!(blocked, Err(pp_domain::ports::StoreError::Busy)),
        "{blocked:?}"
    );
    // One timeout and some slack, well short of the five a retry loop waits.
    assert!(
        waited < std::time::Duration::from_millis(2_500),
        "{waited:?}"
    );
    holding.rollback().await.unwrap();
}

async fn a_session_is_renewable_while_it_holds_a_live_refresh_token(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = h.bidder().await;
    // The first token expires in 7 days (from the harness clock).
    let session = session_with_token(&h, ann.id, 1).await;
    let now = h.clock.now();
    assert!(h.store.session_renewable(session, now).await.unwrap());
    assert!(
        !h.store
            .session_renewable(session, now + Duration::days(8))
            .await
            .unwrap(),
        "its only token expired"
    );
    // Rotated a day later: the spent token does not count, its successor does.
    let rotated_at = now + Duration::days(1);
    h.store
        .rotate_refresh_token(
            digest(1),
            digest(2),
            rotated_at,
            rotated_at + Duration::days(7),
        )
        .await
        .unwrap();
    assert!(
        h.store
            .session_renewable(session, now + Duration::days(7) + Duration::hours(1))
            .await
            .unwrap()
    );
    assert!(
        !h.store
            .session_renewable(session, now + Duration::days(9))
            .await
            .unwrap()
    );
    assert!(
        !h.store
            .session_renewable(SessionId::generate(), now)
            .await
            .unwrap(),
        "an unknown session"
    );
}

async fn an_expired_refresh_token_is_invalid(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = h.bidder().await;
    session_with_token(&h, ann.id, 1).await;
    let too_late = h.clock.now() + Duration::days(7);
    let result = h
        .store
        .rotate_refresh_token(digest(1), digest(2), too_late, too_late)
        .await;
    assert_eq!(result.unwrap(), Rotation::Invalid);
}

async fn concurrent_rotations_of_one_token_yield_one_successor(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let ann = h.bidder().await;
    session_with_token(&h, ann.id, 1).await;
    let now = h.clock.now();
    let tasks: Vec<_> = (0..6u8)
        .map(|i| {
            let h = Arc::clone(&h);
            tokio::spawn(async move {
                h.store
                    .rotate_refresh_token(digest(1), digest(10 + i), now, now + Duration::days(7))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut rotated = 0;
    for task in tasks {
        match task.await.unwrap() {
            Rotation::Rotated { .. } => rotated += 1,
            Rotation::Reused { .. } => {}
            Rotation::Invalid => panic!("the token was live"),
        }
    }
    assert_eq!(rotated, 1);
}

/// Of many links asked for one account at once, only the cap's worth are
/// issued; links older than the cap's window no longer count.
async fn concurrent_links_for_one_account_never_overshoot_the_cap(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let ann = h.bidder().await;
    let bob = h.bidder().await;
    let issue = |user: pp_domain::UserId, byte: u8| {
        let h = Arc::clone(&h);
        tokio::spawn(async move {
            let now = h.clock.now();
            h.store
                .issue_one_time_token(
                    link(NewOneTimeToken {
                        digest: digest(byte),
                        user,
                        purpose: if byte.is_multiple_of(2) {
                            OneTimePurpose::ResetPassword
                        } else {
                            OneTimePurpose::VerifyEmail
                        },
                        issued_at: now,
                        expires_at: now + Duration::hours(1),
                    }),
                    IssueCap {
                        at_most: 3,
                        since: now - Duration::hours(1),
                    },
                )
                .await
                .unwrap()
        })
    };
    let tasks: Vec<_> = (0..8u8).map(|i| issue(ann.id, 10 + i)).collect();
    let mut issued = 0;
    for task in tasks {
        issued += usize::from(task.await.unwrap());
    }
    assert_eq!(issued, 3, "both purposes count towards one cap");
    assert!(
        issue(bob.id, 30).await.unwrap(),
        "another account has its own"
    );
    h.clock.advance(Duration::minutes(61));
    assert!(
        issue(ann.id, 40).await.unwrap(),
        "an hour later there is room again"
    );
}

async fn replacing_refresh_tokens_spends_the_old_ones(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = h.bidder().await;
    let session = session_with_token(&h, ann.id, 1).await;
    let now = h.clock.now();
    h.store
        .replace_refresh_tokens(
            NewRefreshToken {
                digest: digest(2),
                session,
                user: ann.id,
                issued_at: now,
                expires_at: now + Duration::days(7),
            },
            now,
        )
        .await
        .unwrap();
    let old = h
        .store
        .rotate_refresh_token(digest(1), digest(3), now, now)
        .await
        .unwrap();
    assert!(matches!(old, Rotation::Reused { .. }));
}

async fn only_live_sessions_of_active_users_authenticate(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = h.bidder().await;
    let (one, two, three) = (
        session_with_token(&h, ann.id, 1).await,
        session_with_token(&h, ann.id, 2).await,
        session_with_token(&h, ann.id, 3).await,
    );
    let now = h.clock.now();
    assert_eq!(
        h.store.active_session_user(one).await.unwrap(),
        Some(ann.clone())
    );
    assert_eq!(
        h.store
            .active_session_user(SessionId::generate())
            .await
            .unwrap(),
        None
    );

    h.store
        .revoke_user_sessions(ann.id, Some(two), now)
        .await
        .unwrap();
    assert_eq!(h.store.active_session_user(one).await.unwrap(), None);
    assert_eq!(h.store.active_session_user(three).await.unwrap(), None);
    assert!(h.store.active_session_user(two).await.unwrap().is_some());

    let changes = UserChanges {
        is_active: Some(false),
        ..UserChanges::default()
    };
    h.users().update_user(ann.id, changes, now).await.unwrap();
    assert_eq!(h.store.active_session_user(two).await.unwrap(), None);
}

async fn a_one_time_token_is_used_once_for_its_purpose_before_it_expires(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let ann = h.bidder().await;
    let now = h.clock.now();
    let purpose = OneTimePurpose::ResetPassword;
    for (byte, expires_at) in [(1, now + Duration::hours(1)), (2, now)] {
        issue_link(&h, byte, ann.id, purpose, expires_at).await;
    }
    assert_eq!(
        h.store
            .peek_one_time_token(digest(1), purpose, now)
            .await
            .unwrap(),
        Some(ann.id)
    );
    let wrong_purpose = h
        .store
        .consume_one_time_token(digest(1), OneTimePurpose::VerifyEmail, now)
        .await;
    assert_eq!(wrong_purpose.unwrap(), None);
    assert_eq!(
        h.store
            .consume_one_time_token(digest(2), purpose, now)
            .await
            .unwrap(),
        None,
        "expired"
    );

    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let h = Arc::clone(&h);
            tokio::spawn(async move {
                h.store
                    .consume_one_time_token(digest(1), purpose, now)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap() == Some(ann.id) {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(
        h.store
            .peek_one_time_token(digest(1), purpose, now)
            .await
            .unwrap(),
        None
    );
}

/// A reset with `link` to `hash`, in a task of its own.
fn reset_in_task(
    h: &Arc<Harness>,
    user: pp_domain::UserId,
    link: u8,
    hash: &str,
) -> tokio::task::JoinHandle<Result<(), ReplacePasswordError>> {
    let (h, hash) = (Arc::clone(h), PasswordHash::new(hash.into()));
    tokio::spawn(async move {
        h.users()
            .replace_password(PasswordReplacement {
                user,
                hash,
                at: h.clock.now(),
                keep_session: None,
                link: Some(digest(link)),
            })
            .await
    })
}

async fn a_reset_spends_its_link_with_the_password_and_only_one_link_wins(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let (ann, bob) = (h.bidder().await, h.bidder().await);
    let now = h.clock.now();
    let reset = OneTimePurpose::ResetPassword;
    issue_link(&h, 1, ann.id, reset, now + Duration::hours(1)).await;
    issue_link(&h, 2, ann.id, reset, now + Duration::hours(1)).await;
    issue_link(&h, 3, bob.id, reset, now + Duration::hours(1)).await;
    issue_link(&h, 4, ann.id, reset, now - Duration::seconds(1)).await;
    issue_link(
        &h,
        5,
        ann.id,
        OneTimePurpose::VerifyEmail,
        now + Duration::hours(1),
    )
    .await;
    let before = stored_hash(&h, ann.id).await;

    // Another account's link, an expired one, one for another purpose:
    // nothing changes, and nothing is spent.
    for link in [3, 4, 5] {
        let refused = reset_in_task(&h, ann.id, link, "$argon2id$nope")
            .await
            .unwrap();
        assert!(
            matches!(refused, Err(ReplacePasswordError::LinkSpent)),
            "link {link}"
        );
    }
    assert_eq!(stored_hash(&h, ann.id).await, before);
    assert!(
        h.store
            .peek_one_time_token(digest(3), reset, now)
            .await
            .unwrap()
            .is_some()
    );

    // Two of the account's links at once: one reset wins, the other's link
    // was spent by it.
    let first = reset_in_task(&h, ann.id, 1, "$argon2id$one");
    let second = reset_in_task(&h, ann.id, 2, "$argon2id$two");
    let outcomes = [first.await.unwrap(), second.await.unwrap()];
    let winners: Vec<_> = outcomes.iter().map(Result::is_ok).collect();
    assert_eq!(winners.iter().filter(|w| **w).count(), 1, "{outcomes:?}");
    let won = if winners[0] {
        "$argon2id$one"
    } else {
        "$argon2id$two"
    };
    assert_eq!(stored_hash(&h, ann.id).await.as_str(), won);
    for link in [1, 2] {
        assert!(
            h.store
                .peek_one_time_token(digest(link), reset, now)
                .await
                .unwrap()
                .is_none()
        );
    }
}

async fn a_password_replacement_ends_the_accounts_reset_links_and_other_sessions(backend: Backend) {
    let h = Harness::new(backend).await;
    let (ann, bob) = (h.bidder().await, h.bidder().await);
    let now = h.clock.now();
    let tokens = [
        (1, ann.id, OneTimePurpose::ResetPassword),
        (2, ann.id, OneTimePurpose::ResetPassword),
        (3, ann.id, OneTimePurpose::VerifyEmail),
        (4, bob.id, OneTimePurpose::ResetPassword),
    ];
    for (byte, user, purpose) in tokens {
        issue_link(&h, byte, user, purpose, now + Duration::hours(1)).await;
    }
    let (here, elsewhere, bobs) = (
        session_with_token(&h, ann.id, 11).await,
        session_with_token(&h, ann.id, 12).await,
        session_with_token(&h, bob.id, 13).await,
    );
    for _ in 0..5 {
        h.users()
            .record_wrong_password(ann.id, now, LockoutPolicy::default())
            .await
            .unwrap();
    }

    h.users()
        .replace_password(PasswordReplacement {
            user: ann.id,
            hash: PasswordHash::new("$argon2id$replaced".into()),
            at: now,
            keep_session: Some(here),
            link: None,
        })
        .await
        .unwrap();

    let stored = h.users().credentials_by_id(ann.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash.as_str(), "$argon2id$replaced");
    assert_eq!(stored.failures, Default::default());
    let mut live_links = Vec::new();
    for (byte, _, purpose) in tokens {
        if h.store
            .peek_one_time_token(digest(byte), purpose, now)
            .await
            .unwrap()
            .is_some()
        {
            live_links.push(byte);
        }
    }
    assert_eq!(live_links, [3, 4], "only the account's reset links end");
    let mut live_sessions = Vec::new();
    for session in [here, elsewhere, bobs] {
        live_sessions.push(
            h.store
                .active_session_user(session)
                .await
                .unwrap()
                .is_some(),
        );
    }
    assert_eq!(live_sessions, [true, false, true]);
}

async fn of_many_concurrent_failures_only_the_policys_count_before_the_lock(backend: Backend) {
    let h = Arc::new(Harness::new(backend).await);
    let ann = h.bidder().await;
    let now = h.clock.now();
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let h = Arc::clone(&h);
            tokio::spawn(async move {
                h.users()
                    .record_wrong_password(ann.id, now, LockoutPolicy::default())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut counted = Vec::new();
    let mut locked = 0;
    for task in tasks {
        match task.await.unwrap() {
            FailedAttempt::Counted {
                failures,
                locks_for,
            } => counted.push((failures, locks_for)),
            FailedAttempt::AlreadyLocked { retry_after } => {
                assert_eq!(retry_after, Duration::minutes(1));
                locked += 1;
            }
        }
    }
    counted.sort_unstable();
    // The fifth sets the lock; those after it count nothing.
    assert_eq!(
        counted,
        [
            (1, None),
            (2, None),
            (3, None),
            (4, None),
            (5, Some(Duration::minutes(1)))
        ]
    );
    assert_eq!(locked, 7);
    let stored = h.users().credentials_by_id(ann.id).await.unwrap().unwrap();
    assert_eq!(stored.failures.consecutive, 5);
    assert_eq!(
        stored.failures.locked_until,
        Some(now + Duration::minutes(1))
    );
}

async fn each_failure_after_a_lock_doubles_it_and_a_new_password_clears_it(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = h.bidder().await;
    let policy = LockoutPolicy::default();
    let mut now = h.clock.now();
    for _ in 0..5 {
        h.users()
            .record_wrong_password(ann.id, now, policy)
            .await
            .unwrap();
    }
    // Each lock runs out, the next failure counts and locks for twice as long.
    let mut locks = Vec::new();
    for _ in 0..3 {
        let stored = h.users().credentials_by_id(ann.id).await.unwrap().unwrap();
        let until = stored.failures.locked_until.unwrap();
        locks.push((until - now).num_minutes());
        now = until;
        h.users()
            .record_wrong_password(ann.id, now, policy)
            .await
            .unwrap();
    }
    assert_eq!(locks, [1, 2, 4]);

    // A stronger hash of the same password keeps the count and the lock,
    // and is stored only over the hash that was checked.
    let checked = stored_hash(&h, ann.id).await;
    let locked = h.users().credentials_by_id(ann.id).await.unwrap().unwrap();
    let stronger = PasswordHash::new("$argon2id$stronger".into());
    let elsewhere = PasswordHash::new("$argon2id$elsewhere".into());
    assert!(
        !h.users()
            .upgrade_password_hash(ann.id, &elsewhere, stronger.clone(), now)
            .await
            .unwrap()
    );
    assert_eq!(stored_hash(&h, ann.id).await, checked);
    assert!(
        h.users()
            .upgrade_password_hash(ann.id, &checked, stronger.clone(), now)
            .await
            .unwrap()
    );
    let upgraded = h.users().credentials_by_id(ann.id).await.unwrap().unwrap();
    assert_eq!(upgraded.password_hash, stronger);
    assert_eq!(upgraded.failures, locked.failures);

    h.users()
        .replace_password(PasswordReplacement {
            user: ann.id,
            hash: PasswordHash::new("$argon2id$new".into()),
            at: now,
            keep_session: None,
            link: None,
        })
        .await
        .unwrap();
    let reset = h.users().credentials_by_id(ann.id).await.unwrap().unwrap();
    assert_eq!(reset.password_hash.as_str(), "$argon2id$new");
    assert_eq!(reset.failures, Default::default());

    h.users()
        .record_wrong_password(ann.id, now, policy)
        .await
        .unwrap();
    h.users().clear_login_failures(ann.id).await.unwrap();
    let cleared = h.users().credentials_by_id(ann.id).await.unwrap().unwrap();
    assert_eq!(cleared.failures, Default::default());
}

async fn accounts_change_and_list_newest_first_page_by_page(backend: Backend) {
    let h = Harness::new(backend).await;
    let mut created = vec![h.seller.clone()];
    for _ in 0..4 {
        created.push(h.bidder().await);
    }
    let now = h.clock.now();
    let ann = created[1].clone();
    let verified = h
        .users()
        .mark_email_verified(ann.id, now)
        .await
        .unwrap()
        .unwrap();
    assert!(verified.email_verified);
    let changes = UserChanges {
        display_name: Some(DisplayName::parse("Annie").unwrap()),
        role: Some(Role::Admin),
        is_active: None,
        notify_email: Some(false),
    };
    assert!(verified.notify_email, "notices are on for a new account");
    let changed = h
        .users()
        .update_user(ann.id, changes, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            changed.display_name.as_str(),
            changed.role,
            changed.notify_email
        ),
        ("Annie", Role::Admin, false)
    );
    let missing = h
        .users()
        .update_user(pp_domain::UserId::generate(), UserChanges::default(), now)
        .await;
    assert_eq!(missing.unwrap(), None);

    let mut seen = Vec::new();
    let mut after: Option<UserCursor> = None;
    loop {
        let page = h.users().list_users(None, after, 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        after = Some(UserCursor {
            created_at: last.created_at,
            id: last.id,
        });
        seen.extend(page.into_iter().map(|u| u.id));
    }
    let mut expected: Vec<_> = created.iter().map(|u| (u.created_at, u.id)).collect();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(
        seen,
        expected.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
    );
}

async fn the_audit_log_keeps_who_what_and_where(backend: Backend) {
    let h = Harness::new(backend).await;
    let ann = create_user(h.users(), Role::User, true).await;
    let entry = AuditEntry {
        at: h.clock.now(),
        event: AuditEvent::RoleChanged,
        user: Some(ann.id),
        actor: Some(h.seller.id),
        context: RequestContext {
            request_id: Some("req-1".into()),
            ip: "203.0.113.9".parse().ok(),
            trace_parent: None,
        },
        detail: Some("user -> admin".into()),
    };
    h.store.record(entry).await.unwrap();
    let records = h.store.audit_records().await.unwrap();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.event, "role_changed");
    assert_eq!(
        (record.user, record.actor),
        (Some(ann.id), Some(h.seller.id))
    );
    assert_eq!(record.request_id.as_deref(), Some("req-1"));
    assert_eq!(record.ip.as_deref(), Some("203.0.113.9"));
}

async fn accounts_are_found_by_a_part_of_their_address_taken_literally(backend: Backend) {
    let h = Harness::new(backend).await;
    for address in ["a_b@example.com", "axb@example.com", "carol@shop.example"] {
        let user = pp_domain::NewUser {
            id: pp_domain::UserId::generate(),
            email: pp_domain::Email::parse(address).unwrap(),
            display_name: "Someone".to_owned(),
            password_hash: pp_testkit::test_password_hash(),
            role: pp_domain::Role::User,
            email_verified: true,
            created_at: h.clock.now(),
        };
        h.users().insert_user(user, None).await.unwrap();
    }
    let found = |part: &'static str| {
        let users = h.users();
        async move {
            let mut emails: Vec<String> = users
                .list_users(Some(part.to_owned()), None, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.email.as_str().to_owned())
                .collect();
            emails.sort();
            emails
        }
    };
    // `_` and `%` are letters here, not wildcards.
    assert_eq!(found("a_b").await, ["a_b@example.com"]);
    assert_eq!(found("%").await, Vec::<String>::new());
    assert_eq!(found("\\").await, Vec::<String>::new());
    assert_eq!(found("shop.").await, ["carol@shop.example"]);
    assert_eq!(found("xb@").await, ["axb@example.com"]);
}

on_both_backends!(
    accounts_are_found_by_a_part_of_their_address_taken_literally,
    a_refresh_token_rotates_once_and_a_replay_is_reuse,
    a_session_starts_only_for_the_checked_password_of_an_active_account,
    a_session_is_renewable_while_it_holds_a_live_refresh_token,
    an_expired_refresh_token_is_invalid,
    concurrent_rotations_of_one_token_yield_one_successor,
    concurrent_links_for_one_account_never_overshoot_the_cap,
    replacing_refresh_tokens_spends_the_old_ones,
    only_live_sessions_of_active_users_authenticate,
    a_one_time_token_is_used_once_for_its_purpose_before_it_expires,
    a_password_replacement_ends_the_accounts_reset_links_and_other_sessions,
    a_reset_spends_its_link_with_the_password_and_only_one_link_wins,
    of_many_concurrent_failures_only_the_policys_count_before_the_lock,
    each_failure_after_a_lock_doubles_it_and_a_new_password_clears_it,
    accounts_change_and_list_newest_first_page_by_page,
    the_audit_log_keeps_who_what_and_where,
);
