//! The audit log: security events with who, when and from where; never a
//! password, token or link.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    pk_uuid, string_len, string_len_null, text_null, timestamp_with_time_zone, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Event,
    UserId,
    ActorId,
    RequestId,
    Ip,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(pk_uuid(AuditLog::Id))
                    .col(timestamp_with_time_zone(AuditLog::At))
                    .col(string_len(AuditLog::Event, 48))
                    // No foreign keys: the log outlives what it mentions.
                    .col(uuid_null(AuditLog::UserId))
                    .col(uuid_null(AuditLog::ActorId))
                    .col(string_len_null(AuditLog::RequestId, 128))
                    .col(string_len_null(AuditLog::Ip, 45))
                    .col(text_null(AuditLog::Detail))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_user_at")
                    .table(AuditLog::Table)
                    .col(AuditLog::UserId)
                    .col(AuditLog::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await
    }
}
