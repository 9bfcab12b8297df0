//! Single-use e-mailed tokens (verification, reset), stored as digests.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    binary_len, string_len, timestamp_with_time_zone, timestamp_with_time_zone_null, uuid,
};

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OneTimeTokens {
    Table,
    Digest,
    UserId,
    Purpose,
    IssuedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OneTimeTokens::Table)
                    .col(binary_len(OneTimeTokens::Digest, 32).primary_key())
                    .col(uuid(OneTimeTokens::UserId))
                    .col(string_len(OneTimeTokens::Purpose, 32).check(
                        Expr::col(OneTimeTokens::Purpose).is_in(["verify_email", "reset_password"]),
                    ))
                    .col(timestamp_with_time_zone(OneTimeTokens::IssuedAt))
                    .col(timestamp_with_time_zone(OneTimeTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(OneTimeTokens::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_one_time_tokens_user")
                            .from(OneTimeTokens::Table, OneTimeTokens::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_one_time_tokens_user")
                    .table(OneTimeTokens::Table)
                    .col(OneTimeTokens::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OneTimeTokens::Table).to_owned())
            .await
    }
}
