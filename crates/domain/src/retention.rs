//! Retention: what the database forgets, and when. Expired sessions,
//! refresh tokens and single-use tokens, delivered (or dead) mail, read
//! notifications older than `RETENTION_DAYS`; audit entries older than
//! `AUDIT_RETENTION_DAYS`. The worker purges in bounded batches, so no
//! purge holds a lock for long.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;

use crate::item::Timestamp;
use crate::ports::{Clock, StoreError};

/// What one purge removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purge {
    /// Refresh tokens of sessions whose every token expired before the
    /// cutoff (a live session's spent tokens stay: they tell a replay).
    RefreshTokens,
    /// Sessions started before the cutoff with no refresh token and no
    /// ticket left: nothing can use them.
    Sessions,
    /// Verification and reset tokens that expired before the cutoff.
    OneTimeTokens,
    /// Outbox messages sent, or given up on, before the cutoff.
    Mail,
    /// Notifications their user read before the cutoff.
    ReadNotifications,
    /// Audit entries written before the (audit) cutoff.
    AuditEntries,
}

impl Purge {
    /// Every purge, in the order they run (tokens before their sessions).
    pub const ALL: [Purge; 6] = [
        Purge::RefreshTokens,
        Purge::Sessions,
        Purge::OneTimeTokens,
        Purge::Mail,
        Purge::ReadNotifications,
        Purge::AuditEntries,
    ];

    /// Its name, for logs and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Purge::RefreshTokens => "refresh_tokens",
            Purge::Sessions => "sessions",
            Purge::OneTimeTokens => "one_time_tokens",
            Purge::Mail => "mail",
            Purge::ReadNotifications => "read_notifications",
            Purge::AuditEntries => "audit_entries",
        }
    }
}

/// How long things are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `RETENTION_DAYS`.
    pub days: u32,
    /// `AUDIT_RETENTION_DAYS`.
    pub audit_days: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            days: 30,
            audit_days: 365,
        }
    }
}

impl RetentionPolicy {
    /// What `purge` keeps: only what is newer than this, at `now`.
    #[must_use]
    pub fn cutoff(&self, purge: Purge, now: Timestamp) -> Timestamp {
        let days = match purge {
            Purge::AuditEntries => self.audit_days,
            _ => self.days,
        };
        now - Duration::days(i64::from(days))
    }
}

/// Where the purges run.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Removes up to `batch` rows of `purge` from before `cutoff`; how many.
    ///
    /// # Errors
    /// When the store fails.
    async fn purge(&self, purge: Purge, cutoff: Timestamp, batch: u32) -> Result<u64, StoreError>;
}

/// Runs every purge to the end, batch by batch.
#[derive(Clone)]
pub struct Retention {
    store: Arc<dyn RetentionStore>,
    clock: Arc<dyn Clock>,
    policy: RetentionPolicy,
}

impl std::fmt::Debug for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retention")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Retention {
    /// Purges from `store`, keeping what `policy` says.
    #[must_use]
    pub fn new(
        store: Arc<dyn RetentionStore>,
        clock: Arc<dyn Clock>,
        policy: RetentionPolicy,
    ) -> Self {
        Self {
            store,
            clock,
            policy,
        }
    }

    /// Runs each purge in batches of `batch` until a batch comes back short;
    /// how many rows each removed. One cutoff per purge, taken when it starts.
    ///
    /// # Errors
    /// When the store fails (the purges before it stand).
    pub async fn purge_all(&self, batch: u32) -> Result<Vec<(Purge, u64)>, StoreError> {
        let mut purged = Vec::with_capacity(Purge::ALL.len());
        for purge in Purge::ALL {
            let cutoff = self.policy.cutoff(purge, self.clock.now());
            let mut total = 0;
            loop {
                let removed = self.store.purge(purge, cutoff, batch).await?;
                total += removed;
                if removed < u64::from(batch) {
                    break;
                }
            }
            purged.push((purge, total));
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockClock;
    use chrono::TimeZone;

    fn now() -> Timestamp {
        chrono::Utc.timestamp_opt(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn audit_entries_are_kept_longer_than_the_rest() {
        let policy = RetentionPolicy::default();
        assert_eq!(
            policy.cutoff(Purge::Sessions, now()),
            now() - Duration::days(30)
        );
        assert_eq!(
            policy.cutoff(Purge::AuditEntries, now()),
            now() - Duration::days(365)
        );
        let names: std::collections::BTreeSet<_> = Purge::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names.len(), Purge::ALL.len());
    }

    #[test]
    fn each_purge_runs_in_batches_until_one_comes_back_short() {
        let mut store = MockRetentionStore::new();
        let policy = RetentionPolicy {
            days: 7,
            audit_days: 90,
        };
        let mut refresh_batches = vec![2_u64, 10, 10];
        store.expect_purge().returning(move |purge, cutoff, batch| {
            assert_eq!(batch, 10);
            assert_eq!(cutoff, policy.cutoff(purge, now()));
            Ok(match purge {
                Purge::RefreshTokens => refresh_batches.pop().unwrap(),
                Purge::AuditEntries => 3,
                _ => 0,
            })
        });
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now());
        let retention = Retention::new(Arc::new(store), Arc::new(clock), policy);
        let purged = futures_executor::block_on(retention.purge_all(10)).unwrap();
        assert_eq!(
            purged,
            [
                (Purge::RefreshTokens, 22),
                (Purge::Sessions, 0),
                (Purge::OneTimeTokens, 0),
                (Purge::Mail, 0),
                (Purge::ReadNotifications, 0),
                (Purge::AuditEntries, 3),
            ]
        );
        assert!(format!("{retention:?}").contains("days: 7"));
    }

    #[test]
    fn a_store_failure_stops_the_round() {
        let mut store = MockRetentionStore::new();
        store
            .expect_purge()
            .returning(|_, _, _| Err(StoreError::Busy));
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now());
        let retention =
            Retention::new(Arc::new(store), Arc::new(clock), RetentionPolicy::default());
        assert!(futures_executor::block_on(retention.purge_all(10)).is_err());
    }
}
