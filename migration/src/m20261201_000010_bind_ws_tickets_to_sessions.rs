//! A WebSocket ticket belongs to the session it was issued in (its user is
//! the session's), so an open
//! socket can be closed when that session ends (logout, logout-all, password
//! reset, deactivation). Tickets live 30 seconds: the table is recreated
//! empty instead of migrated, in both directions.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{binary_len, timestamp_with_time_zone, uuid};

use crate::m20261123_000005_create_sessions::Sessions;
use crate::m20261201_000009_create_ws_tickets::Migration as UnboundTickets;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WsTickets {
    Table,
    Digest,
    SessionId,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        UnboundTickets.down(manager).await?;
        manager
            .create_table(
                Table::create()
                    .table(WsTickets::Table)
                    .col(binary_len(WsTickets::Digest, 32).primary_key())
                    .col(uuid(WsTickets::SessionId))
                    .col(timestamp_with_time_zone(WsTickets::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ws_tickets_session")
                            .from(WsTickets::Table, WsTickets::SessionId)
                            .to(Sessions::Table, Sessions::Id),
                    )
                    .to_owned(),
            )
            .await?;
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
            .await?;
        UnboundTickets.up(manager).await
    }
}
