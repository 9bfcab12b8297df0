//! Driver errors mapped at the seam: nothing above this crate names `DbErr`.

use pp_domain::ports::StoreError;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// How the bid path should react to a database error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reaction {
    /// A deadlock, a serialization failure or a stale SQLite snapshot: roll
    /// back and try again.
    Retry,
    /// The lock or a connection was not obtained in time, or the database is
    /// unreachable: give up, tell the caller to retry.
    Busy,
    /// The unique index refused the row.
    Duplicate,
    /// Anything else.
    Fail,
}

/// SQLSTATEs (PostgreSQL) and result codes (SQLite) that mean "try again".
const RETRYABLE: &[&str] = &[
    "40P01", // deadlock_detected
    "40001", // serialization_failure
    "6",     // SQLITE_LOCKED
    "261",   // SQLITE_BUSY_RECOVERY
    "517",   // SQLITE_BUSY_SNAPSHOT
];

/// SQLSTATEs that mean "a lock or the statement timed out", or that the
/// database is not there to answer: an outage, not a bug, so the client
/// hears 503 and may retry.
///
/// SQLite answers `SQLITE_BUSY` only once its busy handler has waited the
/// whole lock timeout for another process (this one's writers queue on the
/// write gate), so it is a lock timeout too: retrying would wait it again.
const TIMED_OUT_OR_GONE: &[&str] = &[
    "55P03", // lock_not_available (lock_timeout)
    "57014", // query_canceled (statement_timeout)
    "57P01", // admin_shutdown (also a terminated backend)
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now (starting up or shutting down)
    "3D000", // invalid_catalog_name: the database is gone
    "53300", // too_many_connections
    "5",     // SQLITE_BUSY: SQLite's 55P03 (see above)
    "08000", // connection_exception
    "08001", // sqlclient_unable_to_establish_sqlconnection
    "08003", // connection_does_not_exist
    "08004", // sqlserver_rejected_establishment_of_sqlconnection
    "08006", // connection_failure
];

/// The SQLSTATE class that means the connection's credentials are wrong: a
/// misconfiguration to fix, not an outage to wait out.
const BAD_CREDENTIALS_CLASS: &str = "28";

/// Whether the connection, not the statement, failed: it could not be
/// opened, broke, or the pool gave up waiting for one.
fn connection_failed(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(_) => {
            !database_code(err).is_some_and(|code| code.starts_with(BAD_CREDENTIALS_CLASS))
        }
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(
                e.as_ref(),
                Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed
            )
        }
        _ => false,
    }
}

fn database_code(err: &DbErr) -> Option<String> {
    match err {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|db| db.code())
            .map(|code| code.into_owned()),
        _ => None,
    }
}

/// Classifies a database error.
pub(crate) fn react(err: &DbErr) -> Reaction {
    if connection_failed(err) {
        return Reaction::Busy;
    }
    if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        return Reaction::Duplicate;
    }
    match database_code(err) {
        Some(code) if RETRYABLE.contains(&code.as_str()) => Reaction::Retry,
        Some(code) if TIMED_OUT_OR_GONE.contains(&code.as_str()) => Reaction::Busy,
        _ => Reaction::Fail,
    }
}

/// Maps a database error to the ports' error, keeping its chain for the log.
pub(crate) fn store_error(err: DbErr) -> StoreError {
    match react(&err) {
        Reaction::Busy | Reaction::Retry => {
            if connection_failed(&err) {
                // Busy carries no cause: without this line an operator
                // would see only 503s during an outage.
                tracing::warn!(error = %err, "no database connection");
            }
            StoreError::Busy
        }
        Reaction::Duplicate | Reaction::Fail => StoreError::Unknown(anyhow::Error::new(err)),
    }
}

/// A stored value that does not decode into a domain value.
pub(crate) fn integrity(what: impl std::fmt::Display) -> StoreError {
    StoreError::Integrity(what.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sea_orm::sqlx::Error as Sqlx;

    use super::*;

    fn exec(err: Sqlx) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err)))
    }

    #[test]
    fn a_database_that_cannot_be_reached_is_busy_not_a_bug() {
        for err in [
            DbErr::Conn(RuntimeErr::Internal("connection refused".into())),
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout),
            exec(Sqlx::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))),
            exec(Sqlx::PoolTimedOut),
            exec(Sqlx::PoolClosed),
            exec(Sqlx::WorkerCrashed),
        ] {
            assert_eq!(react(&err), Reaction::Busy, "{err}");
            assert!(matches!(store_error(err), StoreError::Busy));
        }
    }

    #[tokio::test]
    async fn a_terminated_connection_is_busy() {
        use sea_orm::ConnectionTrait;
        let database = pp_testkit::TestDatabase::create(pp_testkit::Backend::Postgres).await;
        let connection = sea_orm::Database::connect(database.url.as_str())
            .await
            .unwrap();
        // What an operator's pg_terminate_backend or a restarting server does.
        let err = connection
            .execute_unprepared("SELECT pg_terminate_backend(pg_backend_pid())")
            .await
            .unwrap_err();
        assert_eq!(react(&err), Reaction::Busy, "{err:?}");
    }

    #[test]
    fn other_failures_are_unknown_with_their_chain() {
        for err in [
            exec(Sqlx::RowNotFound),
            exec(Sqlx::Protocol("unexpected message".into())),
            DbErr::Custom("a bug".into()),
        ] {
            assert_eq!(react(&err), Reaction::Fail, "{err}");
            assert!(matches!(store_error(err), StoreError::Unknown(_)));
        }
    }
}
