//! The outbox delivers by urgency, then age: a link someone waits for, or a
//! winner's notice, must not queue behind thousands of outbid notices.
//! Messages already stored take their kind's urgency (every notice as news:
//! which notice it is stays sealed).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::small_integer;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Urgency,
    State,
    DueAt,
    Kind,
}

/// The rank of news, `MailUrgency::News` in the domain.
const NEWS: i16 = 2;
/// The rank of a link, `MailUrgency::Awaited` in the domain.
const AWAITED: i16 = 0;

const INDEX: &str = "idx_outbox_state_urgency_due_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(small_integer(Outbox::Urgency).default(NEWS))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Outbox::Table)
                    .value(Outbox::Urgency, AWAITED)
                    .and_where(Expr::col(Outbox::Kind).ne("notice"))
                    .to_owned(),
            )
            .await?;
        // Claims read pending rows by urgency, then due time.
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Outbox::Table)
                    .col(Outbox::State)
                    .col(Outbox::Urgency)
                    .col(Outbox::DueAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(Outbox::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::Urgency)
                    .to_owned(),
            )
            .await
    }
}
