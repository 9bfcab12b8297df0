//! What the retention purges and the audit trail's actor filter look rows
//! up by: without these each purge batch scans its table (on SQLite under
//! the write lock, stalling bids).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (index, table, columns).
const INDEXES: [(&str, &str, &[&str]); 7] = [
    (
        "idx_refresh_tokens_expires_at",
        "refresh_tokens",
        &["expires_at"],
    ),
    (
        "idx_refresh_tokens_session_expires_at",
        "refresh_tokens",
        &["session_id", "expires_at"],
    ),
    (
        "idx_one_time_tokens_expires_at",
        "one_time_tokens",
        &["expires_at"],
    ),
    ("idx_sessions_created_at", "sessions", &["created_at"]),
    ("idx_outbox_state_sent_at", "outbox", &["state", "sent_at"]),
    ("idx_ws_tickets_session_id", "ws_tickets", &["session_id"]),
    ("idx_audit_log_actor_at", "audit_log", &["actor_id", "at"]),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, columns) in INDEXES {
            let mut index = Index::create();
            index.name(name).table(Alias::new(table));
            for column in columns {
                index.col(Alias::new(*column));
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES.iter().rev() {
            manager
                .drop_index(
                    Index::drop()
                        .name(*name)
                        .table(Alias::new(*table))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
