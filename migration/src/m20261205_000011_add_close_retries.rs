//! Closing isolates an item it cannot read (a tampered price, a sealing key
//! retired from the configuration): the closer counts the failure on the
//! item and leaves it alone until `close_retry_at`, so the other due items
//! keep closing and the bad one never heads the queue for good.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, timestamp_with_time_zone_null};

use crate::m20261122_000002_create_items::Items;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CloseRetries {
    CloseFailures,
    CloseRetryAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite adds only one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Items::Table)
                    .add_column(integer(CloseRetries::CloseFailures).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Items::Table)
                    .add_column(timestamp_with_time_zone_null(CloseRetries::CloseRetryAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [CloseRetries::CloseRetryAt, CloseRetries::CloseFailures] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Items::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
