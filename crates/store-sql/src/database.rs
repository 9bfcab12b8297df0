//! Connecting to PostgreSQL or SQLite, migrations, and write transactions.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pp_domain::ports::StoreError;
use pp_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use thiserror::Error;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::errors::store_error;

/// The PostgreSQL advisory lock key that serializes migrations ("poison" in ASCII).
const MIGRATION_LOCK: i64 = 0x706f_6973_6f6e;
/// How long an instance waits for another one's migrations (PostgreSQL).
const MIGRATION_LOCK_WAIT_SECS: u32 = 600;

/// How to reach the database and how long to wait for it.
#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://…`.
    pub url: String,
    /// The pool's size.
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before `Busy`.
    pub acquire_timeout: Duration,
    /// How long a statement waits for a row lock before `Busy` (PostgreSQL
    /// `lock_timeout`; SQLite's busy timeout).
    pub lock_timeout: Duration,
    /// The longest any statement may run (PostgreSQL `statement_timeout`).
    pub statement_timeout: Duration,
}

impl DatabaseSettings {
    /// Sensible production defaults for `url`.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseSettings {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the database could not be opened.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// Neither `postgres://` nor `sqlite://`.
    #[error("unsupported database URL scheme (expected postgres:// or sqlite://)")]
    UnsupportedScheme,
    /// The SQLite file's directory could not be created.
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server refused or did not answer.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] DbErr),
}

/// A migration's name and whether it is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's name.
    pub name: String,
    /// Whether it is applied.
    pub applied: bool,
}

/// The database: a pool plus, on SQLite, the gate that serializes writers.
#[derive(Clone, Debug)]
pub struct Database {
    connection: DatabaseConnection,
    /// SQLite has no row locks: every write transaction holds this gate and
    /// begins IMMEDIATE, so writers queue in-process instead of polling
    /// SQLite's busy handler (and other processes still wait on the file lock).
    write_gate: Option<Arc<Mutex<()>>>,
}

/// A transaction that may write; on SQLite it also holds the write gate.
pub(crate) struct WriteTransaction {
    // Declared first so it is dropped (rolled back) before the gate opens.
    pub(crate) txn: DatabaseTransaction,
    _gate: Option<OwnedMutexGuard<()>>,
    /// Open from the wait for the gate to the commit or rollback: a trace
    /// shows how long the transaction held its locks. Never entered, so the
    /// lines logged meanwhile stay in their request's span.
    _span: tracing::Span,
}

impl Database {
    /// Opens the pool. For SQLite the file and its directory are created when
    /// missing, in WAL mode with foreign keys on.
    ///
    /// # Errors
    /// [`ConnectError`] when the URL is not supported or the database does not answer.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, ConnectError> {
        let mut options = ConnectOptions::new(settings.url.clone());
        options
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_timeout(settings.acquire_timeout)
            // Pinging on every checkout doubles the round trips of every
            // query; only connections idle long enough to have been dropped
            // by a server, proxy or firewall are checked.
            .test_before_acquire_if_idle_for(Duration::from_secs(30))
            .sqlx_logging(false);
        let write_gate = if settings.url.starts_with("postgres://")
            || settings.url.starts_with("postgresql://")
        {
            let lock_ms = settings.lock_timeout.as_millis().to_string();
            let statement_ms = settings.statement_timeout.as_millis().to_string();
            options.map_sqlx_postgres_opts(move |pg| {
                pg.options([
                    ("lock_timeout", lock_ms.as_str()),
                    ("statement_timeout", statement_ms.as_str()),
                    ("idle_in_transaction_session_timeout", statement_ms.as_str()),
                ])
            });
            None
        } else if let Some(path) = settings.url.strip_prefix("sqlite://") {
            create_parent_dir(path)?;
            let busy = settings.lock_timeout;
            options.map_sqlx_sqlite_opts(move |sqlite| {
                sqlite
                    .create_if_missing(true)
                    .foreign_keys(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(busy)
            });
            Some(Arc::new(Mutex::new(())))
        } else {
            return Err(ConnectError::UnsupportedScheme);
        };
        let connection = sea_orm::Database::connect(options)
            .await
            .map_err(ConnectError::Connect)?;
        Ok(Database {
            connection,
            write_gate,
        })
    }

    /// The backend behind the pool.
    #[must_use]
    pub fn backend(&self) -> DbBackend {
        self.connection.get_database_backend()
    }

    /// Whether this is PostgreSQL (production) rather than SQLite.
    #[must_use]
    pub fn is_postgres(&self) -> bool {
        self.backend() == DbBackend::Postgres
    }

    /// The raw connection, for tests and tools that inspect rows directly.
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    /// Connections in the pool now, and how many of them are idle.
    #[must_use]
    pub fn pool_stats(&self) -> (u32, usize) {
        match self.backend() {
            DbBackend::Postgres => {
                let pool = self.connection.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.connection.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        }
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    /// [`StoreError`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.connection.ping().await.map_err(store_error)
    }

    /// A write transaction holding the migration lock: one connection for
    /// every step, and on PostgreSQL one migrating instance at a time.
    async fn begin_migration(&self) -> Result<WriteTransaction, StoreError> {
        let tx = self.begin_write().await.map_err(store_error)?;
        if self.backend() == DbBackend::Postgres {
            // The request-sized lock and statement timeouts would fail an
            // instance that waits while another one migrates, or a
            // migration that rewrites a large table.
            tx.txn
                .execute_unprepared(&format!(
                    "SET LOCAL lock_timeout = '{MIGRATION_LOCK_WAIT_SECS}s'; SET LOCAL statement_timeout = 0; SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"
                ))
                .await
                .map_err(store_error)?;
        }
        Ok(tx)
    }

    /// Applies every pending migration.
    ///
    /// # Errors
    /// [`StoreError`] when a migration fails (it is rolled back on PostgreSQL).
    pub async fn migrate_up(&self) -> Result<(), StoreError> {
        // Several instances may start at once. On SQLite the IMMEDIATE write
        // transaction already serializes them; on PostgreSQL the first to take
        // the advisory lock migrates, the others wait and then find nothing
        // pending. Either way all migrations commit together or not at all.
        let tx = self.begin_migration().await?;
        Migrator::up(&tx.txn, None).await.map_err(store_error)?;
        tx.txn.commit().await.map_err(store_error)
    }

    /// Reverts the last `steps` applied migrations, all or none.
    ///
    /// # Errors
    /// [`StoreError`] when a migration fails.
    pub async fn migrate_down(&self, steps: u32) -> Result<(), StoreError> {
        // One transaction, so one connection: on SQLite a pooled connection
        // that did not see a table dropped on another one still believes in
        // its indexes, and a migration that recreates them would fail.
        let tx = self.begin_migration().await?;
        Migrator::down(&tx.txn, Some(steps))
            .await
            .map_err(store_error)?;
        tx.txn.commit().await.map_err(store_error)
    }

    /// Every migration, oldest first, with whether it is applied.
    ///
    /// # Errors
    /// [`StoreError`] when the migration table cannot be read.
    pub async fn migration_status(&self) -> Result<Vec<MigrationState>, StoreError> {
        let migrations = Migrator::get_migration_with_status(&self.connection)
            .await
            .map_err(store_error)?;
        Ok(migrations
            .iter()
            .map(|m| MigrationState {
                name: m.name().to_owned(),
                applied: m.status() == pp_migration::MigrationStatus::Applied,
            })
            .collect())
    }

    /// On SQLite, queues this writer behind the others in the process (held
    /// until the guard drops); on PostgreSQL, nothing to wait for.
    pub(crate) async fn write_gate(&self) -> Option<OwnedMutexGuard<()>> {
        match &self.write_gate {
            Some(gate) => Some(Arc::clone(gate).lock_owned().await),
            None => None,
        }
    }

    /// Begins a transaction that will write. On SQLite it first queues on
    /// the write gate and then begins IMMEDIATE, taking the file's write lock.
    pub(crate) async fn begin_write(&self) -> Result<WriteTransaction, DbErr> {
        let span = tracing::info_span!(
            "db.transaction",
            db.system.name = if self.write_gate.is_some() {
                "sqlite"
            } else {
                "postgresql"
            }
        );
        let gate = self.write_gate().await;
        let txn = if gate.is_some() {
            self.connection
                .begin_with_options(TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..TransactionOptions::default()
                })
                .await?
        } else {
            self.connection.begin().await?
        };
        Ok(WriteTransaction {
            txn,
            _gate: gate,
            _span: span,
        })
    }
}

fn create_parent_dir(path: &str) -> Result<(), ConnectError> {
    let file = path.split('?').next().unwrap_or(path);
    match Path::new(file).parent() {
        Some(dir) if !dir.as_os_str().is_empty() && file != ":memory:" => {
            std::fs::create_dir_all(dir).map_err(|source| ConnectError::Directory {
                path: dir.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}
