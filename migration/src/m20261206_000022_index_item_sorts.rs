//! What the item list's orders (`GET /items?sort=`) read by: the status a
//! list filters on (the web app always asks for one), then the close or the
//! listed price (the current price, or the base price before the first bid),
//! then the id that breaks ties, so a page of one status is an index range.
//! A list of every status sorts what it reads. Newest first already has
//! `idx_items_created_at_id`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The same text on PostgreSQL and SQLite: both index an expression, and
/// match it against the queries' `COALESCE(current_price, base_price)`.
const CREATE: [&str; 2] = [
    r#"CREATE INDEX "idx_items_status_close_at_id" ON "items" ("status", "close_at", "id")"#,
    r#"CREATE INDEX "idx_items_status_listed_price_id" ON "items" ("status", (COALESCE("current_price", "base_price")), "id")"#,
];

const DROP: [&str; 2] = [
    r#"DROP INDEX "idx_items_status_listed_price_id""#,
    r#"DROP INDEX "idx_items_status_close_at_id""#,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for statement in CREATE {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for statement in DROP {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }
}
