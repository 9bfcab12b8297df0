//! The price each accepted bid left, kept with the bid so a live subscriber
//! that fell behind can replay the price events it missed. Sealed like the
//! offer (bound to the item and the bid's `seq`): the price after a bid often
//! equals its amount, and amounts are stored only encrypted.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::blob_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Bids {
    Table,
    SealedPriceAfter,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Nullable: bids are immutable, so rows written before this column
        // existed cannot be filled in (replay skips them).
        manager
            .alter_table(
                Table::alter()
                    .table(Bids::Table)
                    .add_column(blob_null(Bids::SealedPriceAfter))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Bids::Table)
                    .drop_column(Bids::SealedPriceAfter)
                    .to_owned(),
            )
            .await
    }
}
