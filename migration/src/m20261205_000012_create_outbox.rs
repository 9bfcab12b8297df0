//! The outbox: e-mail written in the same transaction as the change that
//! causes it, delivered by a worker. The message itself (recipient, link)
//! is sealed, bound to its row, and erased once delivered; the plain
//! columns say only what kind of mail it is and how its delivery goes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    binary_null, integer, pk_uuid, string_len, string_len_null, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Kind,
    State,
    Attempts,
    DueAt,
    ClaimId,
    CreatedAt,
    SentAt,
    LastError,
    RequestId,
    Sealed,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(pk_uuid(Outbox::Id))
                    .col(string_len(Outbox::Kind, 32))
                    .col(
                        string_len(Outbox::State, 16)
                            .check(Expr::col(Outbox::State).is_in(["pending", "sent", "dead"])),
                    )
                    .col(integer(Outbox::Attempts).default(0))
                    // When a pending message is next tried; while a worker
                    // holds it, when that claim lapses.
                    .col(timestamp_with_time_zone(Outbox::DueAt))
                    .col(uuid_null(Outbox::ClaimId))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::SentAt))
                    .col(text_null(Outbox::LastError))
                    // The request that caused it, for its delivery's log lines.
                    .col(string_len_null(Outbox::RequestId, 128))
                    .col(binary_null(Outbox::Sealed))
                    .to_owned(),
            )
            .await?;
        // Claims read due pending rows in due order; status counts by state.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_state_due_at")
                    .table(Outbox::Table)
                    .col(Outbox::State)
                    .col(Outbox::DueAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_claim_id")
                    .table(Outbox::Table)
                    .col(Outbox::ClaimId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await
    }
}
