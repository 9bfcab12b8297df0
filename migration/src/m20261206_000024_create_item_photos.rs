//! Item photos: one row per photo, naming its image and thumbnail (the
//! SHA-256 of their bytes and an extension) in the media store. A row is
//! what makes an image public (`/media/…` serves only names a row holds),
//! and what keeps it from the purge of unreferenced objects.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, integer, pk_uuid, text, timestamp_with_time_zone, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ItemPhotos {
    Table,
    Id,
    ItemId,
    Position,
    ImageKey,
    ImageWidth,
    ImageHeight,
    ImageBytes,
    ThumbKey,
    ThumbWidth,
    ThumbHeight,
    ThumbBytes,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Items {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ItemPhotos::Table)
                    .col(pk_uuid(ItemPhotos::Id))
                    .col(uuid(ItemPhotos::ItemId))
                    .col(
                        integer(ItemPhotos::Position).check(Expr::col(ItemPhotos::Position).gte(0)),
                    )
                    .col(text(ItemPhotos::ImageKey))
                    .col(
                        integer(ItemPhotos::ImageWidth)
                            .check(Expr::col(ItemPhotos::ImageWidth).gte(1)),
                    )
                    .col(
                        integer(ItemPhotos::ImageHeight)
                            .check(Expr::col(ItemPhotos::ImageHeight).gte(1)),
                    )
                    .col(
                        big_integer(ItemPhotos::ImageBytes)
                            .check(Expr::col(ItemPhotos::ImageBytes).gte(1)),
                    )
                    .col(text(ItemPhotos::ThumbKey))
                    .col(
                        integer(ItemPhotos::ThumbWidth)
                            .check(Expr::col(ItemPhotos::ThumbWidth).gte(1)),
                    )
                    .col(
                        integer(ItemPhotos::ThumbHeight)
                            .check(Expr::col(ItemPhotos::ThumbHeight).gte(1)),
                    )
                    .col(
                        big_integer(ItemPhotos::ThumbBytes)
                            .check(Expr::col(ItemPhotos::ThumbBytes).gte(1)),
                    )
                    .col(timestamp_with_time_zone(ItemPhotos::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_item_photos_item")
                            .from(ItemPhotos::Table, ItemPhotos::ItemId)
                            .to(Items::Table, Items::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // An item's photos in display order (positions are rewritten under
        // the item's lock, so they are not declared unique: a reorder
        // would collide with itself midway).
        manager
            .create_index(
                Index::create()
                    .name("idx_item_photos_item_position")
                    .table(ItemPhotos::Table)
                    .col(ItemPhotos::ItemId)
                    .col(ItemPhotos::Position)
                    .to_owned(),
            )
            .await?;
        // Serving and the purge ask whether a row names an object.
        for (name, column) in [
            ("idx_item_photos_image_key", ItemPhotos::ImageKey),
            ("idx_item_photos_thumb_key", ItemPhotos::ThumbKey),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(ItemPhotos::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ItemPhotos::Table).to_owned())
            .await
    }
}
