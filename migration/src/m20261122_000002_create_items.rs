//! Items: public terms and price beside the sealed standing.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, blob_null, pk_uuid, string_len, text, timestamp_with_time_zone,
    timestamp_with_time_zone_null, uuid, uuid_null,
};

use crate::m20261122_000001_create_users::Users;
use crate::money_range;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Items {
    Table,
    Id,
    SellerId,
    Title,
    Description,
    Currency,
    BasePrice,
    MinIncrement,
    CloseAt,
    CreatedAt,
    Status,
    CurrentPrice,
    BidCount,
    /// The leader, the leader's ceiling and step, sealed (AES-GCM, bound to the item).
    SealedStanding,
    FinalPrice,
    WinnerId,
    ClosedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Items::Table)
                    .col(pk_uuid(Items::Id))
                    .col(uuid(Items::SellerId))
                    .col(string_len(Items::Title, 200))
                    .col(text(Items::Description))
                    .col(string_len(Items::Currency, 3))
                    .col(big_integer(Items::BasePrice).check(money_range(Items::BasePrice)))
                    .col(big_integer(Items::MinIncrement).check(money_range(Items::MinIncrement)))
                    .col(timestamp_with_time_zone(Items::CloseAt))
                    .col(timestamp_with_time_zone(Items::CreatedAt))
                    .col(
                        string_len(Items::Status, 16).check(Expr::col(Items::Status).is_in([
                            "open",
                            "closed",
                            "cancelled",
                        ])),
                    )
                    .col(
                        big_integer_null(Items::CurrentPrice)
                            .check(money_range(Items::CurrentPrice)),
                    )
                    .col(
                        big_integer(Items::BidCount)
                            .default(0)
                            .check(Expr::col(Items::BidCount).gte(0)),
                    )
                    .col(blob_null(Items::SealedStanding))
                    .col(big_integer_null(Items::FinalPrice).check(money_range(Items::FinalPrice)))
                    .col(uuid_null(Items::WinnerId))
                    .col(timestamp_with_time_zone_null(Items::ClosedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_items_seller")
                            .from(Items::Table, Items::SellerId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_items_winner")
                            .from(Items::Table, Items::WinnerId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The closer looks for open items whose time has come.
        manager
            .create_index(
                Index::create()
                    .name("idx_items_status_close_at")
                    .table(Items::Table)
                    .col(Items::Status)
                    .col(Items::CloseAt)
                    .to_owned(),
            )
            .await?;
        // Listings page newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_items_created_at_id")
                    .table(Items::Table)
                    .col(Items::CreatedAt)
                    .col(Items::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Items::Table).to_owned())
            .await
    }
}
