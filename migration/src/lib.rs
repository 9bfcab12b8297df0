//! # Poison Pill's schema
//!
//! One sea-orm-migration file per change, each with a `down` that undoes its
//! `up`, and each working on PostgreSQL (production) and SQLite (the embedded
//! default). Bids are append-only: both databases refuse UPDATE and DELETE on
//! `bids` with a trigger, so not even a stray statement can alter a sealed bid.

pub use sea_orm_migration::MigrationStatus;
pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_users;
mod m20261122_000002_create_items;
mod m20261122_000003_create_bids;
mod m20261123_000004_add_login_failures;
mod m20261123_000005_create_sessions;
mod m20261123_000006_create_one_time_tokens;
mod m20261123_000007_create_audit_log;
mod m20261201_000008_add_bid_price_after;
mod m20261201_000009_create_ws_tickets;
mod m20261201_000010_bind_ws_tickets_to_sessions;
mod m20261205_000011_add_close_retries;
mod m20261205_000012_create_outbox;
mod m20261205_000013_index_audit_log;
mod m20261205_000014_create_notifications;
mod m20261205_000015_index_for_purges;
mod m20261205_000016_add_notify_email;
mod m20261205_000017_add_outbox_trace_parent;
mod m20261205_000018_create_identities;
mod m20261205_000019_add_outbox_urgency;
mod m20261205_000020_create_second_factors;
mod m20261205_000021_add_soft_close_and_ledger;
mod m20261206_000022_index_item_sorts;
mod m20261206_000023_add_item_search;
mod m20261206_000024_create_item_photos;

/// Every migration, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_users::Migration),
            Box::new(m20261122_000002_create_items::Migration),
            Box::new(m20261122_000003_create_bids::Migration),
            Box::new(m20261123_000004_add_login_failures::Migration),
            Box::new(m20261123_000005_create_sessions::Migration),
            Box::new(m20261123_000006_create_one_time_tokens::Migration),
            Box::new(m20261123_000007_create_audit_log::Migration),
            Box::new(m20261201_000008_add_bid_price_after::Migration),
            Box::new(m20261201_000009_create_ws_tickets::Migration),
            Box::new(m20261201_000010_bind_ws_tickets_to_sessions::Migration),
            Box::new(m20261205_000011_add_close_retries::Migration),
            Box::new(m20261205_000012_create_outbox::Migration),
            Box::new(m20261205_000013_index_audit_log::Migration),
            Box::new(m20261205_000014_create_notifications::Migration),
            Box::new(m20261205_000015_index_for_purges::Migration),
            Box::new(m20261205_000016_add_notify_email::Migration),
            Box::new(m20261205_000017_add_outbox_trace_parent::Migration),
            Box::new(m20261205_000018_create_identities::Migration),
            Box::new(m20261205_000019_add_outbox_urgency::Migration),
            Box::new(m20261205_000020_create_second_factors::Migration),
            Box::new(m20261205_000021_add_soft_close_and_ledger::Migration),
            Box::new(m20261206_000022_index_item_sorts::Migration),
            Box::new(m20261206_000023_add_item_search::Migration),
            Box::new(m20261206_000024_create_item_photos::Migration),
        ]
    }
}

/// A CHECK that a money column holds `1 ..= 10^12` minor units (or NULL).
pub(crate) fn money_range(column: impl IntoIden) -> SimpleExpr {
    Expr::col(column).between(1_i64, 1_000_000_000_000_i64)
}
