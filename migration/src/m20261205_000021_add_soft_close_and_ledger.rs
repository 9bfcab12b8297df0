//! Soft close and the bid ledger (docs/spec/auction-rules.md, "Soft close"
//! and "Ledger").
//!
//! Items gain their soft-close rule (three NULLs without one), the count of
//! extensions used, and the ledger's head; bids gain the close they moved
//! the item to (for the SSE `extended` replay) and their chain hash.
//!
//! Chains need the bids' sealed amounts, which SQL cannot open: the items
//! that exist now are marked `ledger_pending`, and the server chains them
//! after the migration (`SqlStore::chain_pending_items`); their `ledger_head`
//! stays NULL until then. Bids stay immutable but for exactly that: the one
//! fill of a NULL `chain_hash`, every other column unchanged.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    blob_null, boolean, integer, integer_null, timestamp_with_time_zone_null,
};
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Clone, Copy, DeriveIden)]
enum Items {
    Table,
    SoftCloseWindowSecs,
    SoftCloseExtendBySecs,
    SoftCloseMaxExtensions,
    ExtensionsUsed,
    LedgerHead,
    LedgerPending,
}

#[derive(Clone, Copy, DeriveIden)]
enum Bids {
    Table,
    ExtendedTo,
    ExtensionsAfter,
    ChainHash,
}

const POSTGRES_IMMUTABLE_BUT_CHAINING: &str = r"
CREATE OR REPLACE FUNCTION bids_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.chain_hash IS NULL AND NEW.chain_hash IS NOT NULL
       AND to_jsonb(NEW) - 'chain_hash' = to_jsonb(OLD) - 'chain_hash' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'bids are immutable: % on bids refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
";

const POSTGRES_IMMUTABLE: &str = r"
CREATE OR REPLACE FUNCTION bids_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bids are immutable: % on bids refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
";

const SQLITE_IMMUTABLE_BUT_CHAINING: &str = r"
DROP TRIGGER IF EXISTS bids_refuse_update;
CREATE TRIGGER bids_refuse_update BEFORE UPDATE ON bids
WHEN NOT (OLD.chain_hash IS NULL AND NEW.chain_hash IS NOT NULL
    AND NEW.id IS OLD.id AND NEW.item_id IS OLD.item_id AND NEW.user_id IS OLD.user_id
    AND NEW.seq IS OLD.seq AND NEW.sealed_offer IS OLD.sealed_offer
    AND NEW.created_at IS OLD.created_at AND NEW.sealed_price_after IS OLD.sealed_price_after
    AND NEW.extended_to IS OLD.extended_to AND NEW.extensions_after IS OLD.extensions_after)
BEGIN SELECT RAISE(ABORT, 'bids are immutable: UPDATE on bids refused'); END;
";

const SQLITE_IMMUTABLE: &str = r"
DROP TRIGGER IF EXISTS bids_refuse_update;
CREATE TRIGGER bids_refuse_update BEFORE UPDATE ON bids
BEGIN SELECT RAISE(ABORT, 'bids are immutable: UPDATE on bids refused'); END;
";

/// SQLite adds one column per statement.
async fn add_columns(
    manager: &SchemaManager<'_>,
    table: impl IntoIden + Copy,
    columns: Vec<ColumnDef>,
) -> Result<(), DbErr> {
    for mut column in columns {
        manager
            .alter_table(
                Table::alter()
                    .table(table)
                    .add_column(&mut column)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

async fn drop_columns(
    manager: &SchemaManager<'_>,
    table: impl IntoIden + Copy,
    columns: Vec<DynIden>,
) -> Result<(), DbErr> {
    for column in columns {
        manager
            .alter_table(Table::alter().table(table).drop_column(column).to_owned())
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            Items::Table,
            vec![
                integer_null(Items::SoftCloseWindowSecs),
                integer_null(Items::SoftCloseExtendBySecs),
                integer_null(Items::SoftCloseMaxExtensions),
                integer(Items::ExtensionsUsed).default(0).to_owned(),
                blob_null(Items::LedgerHead),
                boolean(Items::LedgerPending).default(false).to_owned(),
            ],
        )
        .await?;
        // Every item listed before the ledger waits to be chained.
        manager
            .exec_stmt(
                Query::update()
                    .table(Items::Table)
                    .value(Items::LedgerPending, true)
                    .to_owned(),
            )
            .await?;
        add_columns(
            manager,
            Bids::Table,
            vec![
                timestamp_with_time_zone_null(Bids::ExtendedTo),
                integer_null(Bids::ExtensionsAfter),
                blob_null(Bids::ChainHash),
            ],
        )
        .await?;
        let trigger = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_IMMUTABLE_BUT_CHAINING,
            _ => SQLITE_IMMUTABLE_BUT_CHAINING,
        };
        manager.get_connection().execute_unprepared(trigger).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let trigger = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_IMMUTABLE,
            _ => SQLITE_IMMUTABLE,
        };
        manager.get_connection().execute_unprepared(trigger).await?;
        drop_columns(
            manager,
            Bids::Table,
            vec![
                Bids::ExtendedTo.into_iden(),
                Bids::ExtensionsAfter.into_iden(),
                Bids::ChainHash.into_iden(),
            ],
        )
        .await?;
        drop_columns(
            manager,
            Items::Table,
            vec![
                Items::SoftCloseWindowSecs.into_iden(),
                Items::SoftCloseExtendBySecs.into_iden(),
                Items::SoftCloseMaxExtensions.into_iden(),
                Items::ExtensionsUsed.into_iden(),
                Items::LedgerHead.into_iden(),
                Items::LedgerPending.into_iden(),
            ],
        )
        .await
    }
}
