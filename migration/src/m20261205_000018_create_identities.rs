//! Sign-in with OpenID Connect: an account's linked identities, one per
//! provider, each `(provider, subject)` belonging to one account. An account
//! an OpenID sign-in created has no password it knows (`password_set` is
//! false until a reset sets one), so unlinking its last identity is refused.
//! Tickets gain a purpose: the same single-use, session-bound tickets open a
//! WebSocket (`socket`) or start linking an identity (`link`), never one for
//! the other.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{boolean, text, text_null, timestamp_with_time_zone, uuid};

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Identities {
    Table,
    Provider,
    Subject,
    UserId,
    Email,
    LinkedAt,
}

#[derive(DeriveIden)]
enum PasswordSet {
    PasswordSet,
}

#[derive(DeriveIden)]
enum WsTickets {
    Table,
    Purpose,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Identities::Table)
                    .col(text(Identities::Provider))
                    .col(text(Identities::Subject))
                    .col(uuid(Identities::UserId))
                    .col(text_null(Identities::Email))
                    .col(timestamp_with_time_zone(Identities::LinkedAt))
                    .primary_key(
                        Index::create()
                            .col(Identities::Provider)
                            .col(Identities::Subject),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_identities_user")
                            .from(Identities::Table, Identities::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One identity per provider and account; also an account's list.
        manager
            .create_index(
                Index::create()
                    .name("idx_identities_user_provider")
                    .table(Identities::Table)
                    .col(Identities::UserId)
                    .col(Identities::Provider)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(boolean(PasswordSet::PasswordSet).default(true))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WsTickets::Table)
                    .add_column(text(WsTickets::Purpose).default("socket"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WsTickets::Table)
                    .drop_column(WsTickets::Purpose)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(PasswordSet::PasswordSet)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Identities::Table).to_owned())
            .await
    }
}
