//! Write transactions that always end explicitly, and bounded retries.

use std::future::Future;
use std::time::Duration;

use pp_domain::ports::StoreError;
use rand::RngExt;
use sea_orm::DbErr;

use crate::database::WriteTransaction;
use crate::errors::{Reaction, react, store_error};

/// Attempts of one write before giving up with `Busy`.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// How a transaction attempt failed: the database (maybe worth retrying) or
/// the operation's own outcome (final).
#[derive(Debug)]
pub(crate) enum TxFailure<E> {
    Db(DbErr),
    Outcome(E),
}

impl<E> From<DbErr> for TxFailure<E> {
    fn from(err: DbErr) -> Self {
        TxFailure::Db(err)
    }
}

impl<E> TxFailure<E> {
    /// The operation's own error wrapped for `?` inside a transaction.
    pub(crate) fn outcome(err: impl Into<E>) -> Self {
        TxFailure::Outcome(err.into())
    }
}

impl WriteTransaction {
    /// Commits on success and rolls back on failure, right now: on SQLite an
    /// IMMEDIATE transaction holds the file's write lock until it ends, so it
    /// must not wait for the pool to clean it up.
    pub(crate) async fn finish<T, E>(
        self,
        result: Result<T, TxFailure<E>>,
    ) -> Result<T, TxFailure<E>> {
        match result {
            Ok(value) => match self.txn.commit().await {
                Ok(()) => Ok(value),
                // A refused commit (a serialization failure, say) was rolled
                // back and may be retried. Any other failure (the connection
                // broke) leaves the outcome unknown: the writes may be
                // stored, so it must not read as "busy, try again".
                Err(err) if react(&err) == Reaction::Retry => Err(TxFailure::Db(err)),
                Err(err) => Err(TxFailure::Db(DbErr::Custom(format!(
                    "the commit's outcome is unknown: {err}"
                )))),
            },
            Err(failure) => {
                // The original failure matters more than a failed rollback;
                // the connection is discarded by the pool if it is broken.
                let _ = self.txn.rollback().await;
                Err(failure)
            }
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or has hit a deadlock,
/// serialization failure or stale SQLite snapshot `MAX_ATTEMPTS` times
/// (then `Busy`).
/// Each attempt is a fresh transaction, so each decides afresh.
pub(crate) async fn with_retries<T, E, F, Fut>(mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TxFailure<E>>>,
    E: From<StoreError>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(TxFailure::Outcome(err)) => return Err(err),
            Err(TxFailure::Db(err)) if react(&err) == Reaction::Retry => {
                if tries >= MAX_ATTEMPTS {
                    tracing::warn!(error = %err, tries, "giving up after repeated conflicts");
                    return Err(StoreError::Busy.into());
                }
                tokio::time::sleep(backoff(tries)).await;
            }
            Err(TxFailure::Db(err)) => return Err(store_error(err).into()),
        }
    }
}

/// Jittered exponential backoff: 1–2 ms, 2–4 ms, 4–8 ms, …
fn backoff(tries: u32) -> Duration {
    let base = 1u64 << tries.min(6);
    Duration::from_micros(rand::rng().random_range(base * 1_000..base * 2_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) < Duration::from_millis(5));
        assert!(backoff(3) >= Duration::from_millis(8));
        assert!(backoff(40) <= Duration::from_millis(128));
    }

    #[tokio::test]
    async fn an_outcome_is_final_and_a_plain_database_error_is_not_retried() {
        let mut calls = 0;
        let result: Result<(), StoreError> = with_retries(|| {
            calls += 1;
            async { Err(TxFailure::Db(DbErr::Custom("boom".into()))) }
        })
        .await;
        assert!(matches!(result, Err(StoreError::Unknown(_))));
        assert_eq!(calls, 1);
    }
}
