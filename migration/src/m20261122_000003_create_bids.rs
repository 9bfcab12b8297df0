//! Bids: sealed, one per bidder per item, numbered in arrival order, append-only.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, blob, pk_uuid, timestamp_with_time_zone, uuid};
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261122_000001_create_users::Users;
use crate::m20261122_000002_create_items::Items;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Bids {
    Table,
    Id,
    ItemId,
    UserId,
    Seq,
    /// Amount, poison budget and step, sealed (AES-GCM, bound to item and bidder).
    SealedOffer,
    CreatedAt,
}

const POSTGRES_IMMUTABLE: &str = r"
CREATE FUNCTION bids_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bids are immutable: % on bids refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER bids_refuse_update_delete BEFORE UPDATE OR DELETE ON bids
    FOR EACH ROW EXECUTE FUNCTION bids_are_immutable();
CREATE TRIGGER bids_refuse_truncate BEFORE TRUNCATE ON bids
    FOR EACH STATEMENT EXECUTE FUNCTION bids_are_immutable();
";

const POSTGRES_MUTABLE: &str = r"
DROP TRIGGER IF EXISTS bids_refuse_truncate ON bids;
DROP TRIGGER IF EXISTS bids_refuse_update_delete ON bids;
DROP FUNCTION IF EXISTS bids_are_immutable();
";

const SQLITE_IMMUTABLE: &str = r"
CREATE TRIGGER bids_refuse_update BEFORE UPDATE ON bids
BEGIN SELECT RAISE(ABORT, 'bids are immutable: UPDATE on bids refused'); END;
CREATE TRIGGER bids_refuse_delete BEFORE DELETE ON bids
BEGIN SELECT RAISE(ABORT, 'bids are immutable: DELETE on bids refused'); END;
";

const SQLITE_MUTABLE: &str = r"
DROP TRIGGER IF EXISTS bids_refuse_update;
DROP TRIGGER IF EXISTS bids_refuse_delete;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Bids::Table)
                    .col(pk_uuid(Bids::Id))
                    .col(uuid(Bids::ItemId))
                    .col(uuid(Bids::UserId))
                    .col(big_integer(Bids::Seq).check(Expr::col(Bids::Seq).gte(1)))
                    .col(blob(Bids::SealedOffer))
                    .col(timestamp_with_time_zone(Bids::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_bids_item")
                            .from(Bids::Table, Bids::ItemId)
                            .to(Items::Table, Items::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_bids_user")
                            .from(Bids::Table, Bids::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One bid per bidder per item, enforced by the database even when two
        // requests race past every check above it.
        manager
            .create_index(
                Index::create()
                    .name("uq_bids_item_user")
                    .table(Bids::Table)
                    .col(Bids::ItemId)
                    .col(Bids::UserId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_bids_item_seq")
                    .table(Bids::Table)
                    .col(Bids::ItemId)
                    .col(Bids::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // "My bids", newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_bids_user_created_at")
                    .table(Bids::Table)
                    .col(Bids::UserId)
                    .col(Bids::CreatedAt)
                    .to_owned(),
            )
            .await?;
        let triggers = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_IMMUTABLE,
            _ => SQLITE_IMMUTABLE,
        };
        manager
            .get_connection()
            .execute_unprepared(triggers)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let triggers = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_MUTABLE,
            _ => SQLITE_MUTABLE,
        };
        manager
            .get_connection()
            .execute_unprepared(triggers)
            .await?;
        manager
            .drop_table(Table::drop().table(Bids::Table).to_owned())
            .await
    }
}
