//! Driver errors mapped at the seam: nothing above this crate names `DbErr`.

use pp_domain::ports::StoreError;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// How the bid path should react to a database error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reaction {
    /// A deadlock, serialization failure or SQLite busy: roll back and try again.
    Retry,
    /// The lock or a connection was not obtained in time: give up, tell the caller to retry.
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
    "5",     // SQLITE_BUSY
    "6",     // SQLITE_LOCKED
    "261",   // SQLITE_BUSY_RECOVERY
    "517",   // SQLITE_BUSY_SNAPSHOT
];

/// SQLSTATEs that mean "a lock or the statement timed out".
const TIMED_OUT: &[&str] = &[
    "55P03", // lock_not_available (lock_timeout)
    "57014", // query_canceled (statement_timeout)
];

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
    if matches!(err, DbErr::ConnectionAcquire(_)) {
        return Reaction::Busy;
    }
    if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        return Reaction::Duplicate;
    }
    match database_code(err) {
        Some(code) if RETRYABLE.contains(&code.as_str()) => Reaction::Retry,
        Some(code) if TIMED_OUT.contains(&code.as_str()) => Reaction::Busy,
        _ => Reaction::Fail,
    }
}

/// Maps a database error to the ports' error, keeping its chain for the log.
pub(crate) fn store_error(err: DbErr) -> StoreError {
    match react(&err) {
        Reaction::Busy | Reaction::Retry => StoreError::Busy,
        Reaction::Duplicate | Reaction::Fail => StoreError::Unknown(anyhow::Error::new(err)),
    }
}

/// A stored value that does not decode into a domain value.
pub(crate) fn integrity(what: impl std::fmt::Display) -> StoreError {
    StoreError::Integrity(what.to_string())
}
