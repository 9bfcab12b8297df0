//! Personal notifications, stored with the bid or close that causes them so
//! an offline user finds them later. What they say, their kind included
//! (`exhausted` would tell a bid was poisoned), is sealed like the bids it
//! comes from, at one length; the plain columns say whose, which item,
//! when, and whether it was read.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    binary, pk_uuid, text, timestamp_with_time_zone, timestamp_with_time_zone_null, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    UserId,
    ItemId,
    ItemTitle,
    At,
    ReadAt,
    Sealed,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(pk_uuid(Notifications::Id))
                    // No foreign keys: written in the bid path's
                    // transaction, where every extra check costs.
                    .col(uuid(Notifications::UserId))
                    .col(uuid(Notifications::ItemId))
                    .col(text(Notifications::ItemTitle))
                    .col(timestamp_with_time_zone(Notifications::At))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .col(binary(Notifications::Sealed))
                    .to_owned(),
            )
            .await?;
        // A user's list, newest first; purging read ones by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_user_at")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::At)
                    .col(Notifications::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_read_at")
                    .table(Notifications::Table)
                    .col(Notifications::ReadAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Notifications::Table).to_owned())
            .await
    }
}
