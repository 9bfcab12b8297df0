//! A second factor for password accounts: each account's TOTP secret
//! (sealed, bound to its account; confirmed by a first code; the last time
//! step used, so no code is accepted twice), its recovery codes (SHA-256
//! digests, each used once), and the challenges of logins waiting for a
//! code. `users.totp_enabled` says whether logins need one.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer_null, binary, boolean, timestamp_with_time_zone, timestamp_with_time_zone_null,
    uuid,
};

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TotpCredentials {
    Table,
    UserId,
    Sealed,
    Confirmed,
    LastStep,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    UserId,
    Digest,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum MfaChallenges {
    Table,
    Digest,
    UserId,
    IssuedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum TotpEnabled {
    TotpEnabled,
}

fn belongs_to_user(
    name: &str,
    table: impl IntoIden,
    column: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(Users::Table, Users::Id)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TotpCredentials::Table)
                    .col(uuid(TotpCredentials::UserId).primary_key())
                    .col(binary(TotpCredentials::Sealed))
                    .col(boolean(TotpCredentials::Confirmed).default(false))
                    .col(big_integer_null(TotpCredentials::LastStep))
                    .col(timestamp_with_time_zone(TotpCredentials::CreatedAt))
                    .foreign_key(&mut belongs_to_user(
                        "fk_totp_credentials_user",
                        TotpCredentials::Table,
                        TotpCredentials::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(uuid(RecoveryCodes::UserId))
                    .col(binary(RecoveryCodes::Digest))
                    .col(timestamp_with_time_zone(RecoveryCodes::CreatedAt))
                    .col(timestamp_with_time_zone_null(RecoveryCodes::UsedAt))
                    .primary_key(
                        Index::create()
                            .col(RecoveryCodes::UserId)
                            .col(RecoveryCodes::Digest),
                    )
                    .foreign_key(&mut belongs_to_user(
                        "fk_recovery_codes_user",
                        RecoveryCodes::Table,
                        RecoveryCodes::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MfaChallenges::Table)
                    .col(binary(MfaChallenges::Digest).primary_key())
                    .col(uuid(MfaChallenges::UserId))
                    .col(timestamp_with_time_zone(MfaChallenges::IssuedAt))
                    .col(timestamp_with_time_zone(MfaChallenges::ExpiresAt))
                    .foreign_key(&mut belongs_to_user(
                        "fk_mfa_challenges_user",
                        MfaChallenges::Table,
                        MfaChallenges::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        // A password change closes an account's challenges; a new one
        // clears the account's lapsed ones.
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_challenges_user_id")
                    .table(MfaChallenges::Table)
                    .col(MfaChallenges::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(boolean(TotpEnabled::TotpEnabled).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(TotpEnabled::TotpEnabled)
                    .to_owned(),
            )
            .await?;
        for table in [
            MfaChallenges::Table.into_iden(),
            RecoveryCodes::Table.into_iden(),
            TotpCredentials::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
