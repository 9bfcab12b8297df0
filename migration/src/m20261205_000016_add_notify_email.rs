//! Whether a user wants e-mail notices (outbid, exhausted, won): on unless
//! they turn it off, for existing accounts too.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::boolean;

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum NotifyEmail {
    NotifyEmail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(boolean(NotifyEmail::NotifyEmail).default(true))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(NotifyEmail::NotifyEmail)
                    .to_owned(),
            )
            .await
    }
}
