//! # Poison Pill's SQL adapter
//!
//! Implements the domain's [`AuctionStore`](pp_domain::ports::AuctionStore)
//! and [`UserStore`](pp_domain::ports::UserStore) ports with SeaORM, on
//! PostgreSQL (production) and SQLite (the embedded default); the backend is
//! chosen at run time by the URL.
//!
//! Bids are decided in batches, one transaction per batch: lock the
//! batch's items (`SELECT … FOR UPDATE`, on the transaction, not the pool),
//! decide with the domain's `engine::decide_in_order`, seal, store, commit
//! (see `bidding.rs` and docs/ARCHITECTURE.md, "The bid path"). Deadlocks
//! and serialization failures are retried a bounded number of times; a
//! `lock_timeout` turns a stuck lock into `Busy` instead of a hung request.
//! SQLite has no row locks, so there every write transaction queues on an
//! in-process gate and begins IMMEDIATE: writers are serialized and the same
//! decision is equally race-free.
//!
//! Driver errors are mapped here; nothing above this crate names `DbErr`.

use std::sync::Arc;

use pp_domain::ports::Sealer;

mod accounts;
mod auction;
mod batcher;
mod bidding;
mod codec;
mod database;
mod entities;
mod errors;
mod identities;
mod ledger;
mod notifications;
mod outbox;
mod photos;
mod retention;
mod second_factors;
mod tickets;
mod transaction;
mod users;

pub use database::{ConnectError, Database, DatabaseSettings, MigrationState};
pub use ledger::LedgerReport;

/// Both stores over one database, sealing with `sealer`.
#[derive(Clone)]
pub struct SqlStore {
    database: Database,
    sealer: Arc<dyn Sealer>,
    /// Bids waiting for the next transaction (shared by clones).
    queue: Arc<batcher::BidQueue>,
    /// The pool the bid batches run on (see [`SqlStore::with_bid_pool`]).
    bid_pool: Database,
    /// Where the batch drainer runs: the runtime the store was made on.
    drainer_runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.database.backend())
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Wraps a connected database.
    ///
    /// The bid drainer will run on the Tokio runtime this is called on (in
    /// `serve`, the main multi-threaded one, not an HTTP worker's).
    #[must_use]
    pub fn new(database: Database, sealer: Arc<dyn Sealer>) -> Self {
        SqlStore {
            bid_pool: database.clone(),
            database,
            sealer,
            queue: Arc::default(),
            drainer_runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Runs the bid batches on a pool of their own, a second pool on the
    /// same database. Its connections are opened by the drainer on the
    /// drainer's runtime, so the batch's round trips are answered there at
    /// once instead of waiting behind an HTTP worker's queue of requests;
    /// and a burst of other queries cannot take the connection a batch
    /// needs. PostgreSQL only: SQLite's writers share one in-process gate.
    #[must_use]
    pub fn with_bid_pool(mut self, pool: Database) -> Self {
        self.bid_pool = pool;
        self
    }

    /// The database behind the store.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.database
    }

    fn sealer(&self) -> &dyn Sealer {
        self.sealer.as_ref()
    }
}
