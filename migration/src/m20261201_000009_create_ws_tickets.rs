//! WebSocket tickets: single-use, 30-second credentials for opening the
//! notification socket, so no long-lived token ever sits in a URL. Stored as
//! digests; redeeming deletes the row, so a ticket works once on any instance.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{binary_len, timestamp_with_time_zone, uuid};

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WsTickets {
    Table,
    Digest,
    UserId,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WsTickets::Table)
                    .col(binary_len(WsTickets::Digest, 32).primary_key())
                    .col(uuid(WsTickets::UserId))
                    .col(timestamp_with_time_zone(WsTickets::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ws_tickets_user")
                            .from(WsTickets::Table, WsTickets::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Expired tickets that were never redeemed are purged by time.
        manager
            .create_index(
                Index::create()
                    .name("idx_ws_tickets_expires_at")
                    .table(WsTickets::Table)
                    .col(WsTickets::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WsTickets::Table).to_owned())
            .await
    }
}
