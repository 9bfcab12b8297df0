//! The purges ([`RetentionStore`]): each removes one bounded batch by
//! primary key (`DELETE … WHERE condition AND key IN (SELECT key …
//! WHERE condition LIMIT n)`, the condition repeated because PostgreSQL
//! rechecks only the outer one on a row it had to wait for), so no purge
//! holds a lock on many rows or for long; the domain's `Retention` repeats
//! them until a batch comes back short.

use async_trait::async_trait;
use pp_domain::Timestamp;
use pp_domain::outbox::OutboxState;
use pp_domain::ports::StoreError;
use pp_domain::retention::{Purge, RetentionStore};
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::SqlStore;
use crate::auction::db_time;
use crate::entities::{
    audit_log, notifications, one_time_tokens, outbox, refresh_tokens, sessions, ws_tickets,
};
use crate::errors::store_error;

/// Up to `batch` keys of `entity`'s rows that pass `condition`.
fn keys<E: EntityTrait>(
    entity: E,
    key: impl sea_orm::sea_query::IntoColumnRef,
    condition: Condition,
    batch: u32,
) -> SelectStatement {
    Query::select()
        .column(key)
        .from(entity)
        .cond_where(condition)
        .limit(u64::from(batch))
        .to_owned()
}

#[async_trait]
impl RetentionStore for SqlStore {
    async fn purge(&self, purge: Purge, cutoff: Timestamp, batch: u32) -> Result<u64, StoreError> {
        let cutoff = db_time(cutoff);
        let connection = self.database().connection();
        let _gate = self.database().write_gate().await;
        let result = match purge {
            Purge::RefreshTokens => {
                // Only a finished session's: a live one's spent tokens are
                // how a replay is told from a stranger (reuse detection).
                let later = Alias::new("later");
                let session_lives_on = Expr::exists(
                    Query::select()
                        .expr(Expr::val(1))
                        .from_as(refresh_tokens::Entity, later.clone())
                        .and_where(
                            Expr::col((later.clone(), refresh_tokens::Column::SessionId)).equals((
                                refresh_tokens::Entity,
                                refresh_tokens::Column::SessionId,
                            )),
                        )
                        .and_where(
                            Expr::col((later, refresh_tokens::Column::ExpiresAt)).gte(cutoff),
                        )
                        .to_owned(),
                );
                let expired = Condition::all()
                    .add(refresh_tokens::Column::ExpiresAt.lt(cutoff))
                    .add(session_lives_on.not());
                refresh_tokens::Entity::delete_many()
                    .filter(expired.clone())
                    .filter(refresh_tokens::Column::Digest.in_subquery(keys(
                        refresh_tokens::Entity,
                        refresh_tokens::Column::Digest,
                        expired,
                        batch,
                    )))
                    .exec(connection)
                    .await
            }
            Purge::Sessions => {
                // Old, and nothing left that could use it: every refresh
                // token and ticket of it expired (and was purged).
                let in_use = |table: sea_orm::sea_query::DynIden,
                              column: sea_orm::sea_query::DynIden| {
                    Expr::exists(
                        Query::select()
                            .expr(Expr::val(1))
                            .from(table.clone())
                            .and_where(
                                Expr::col((table, column))
                                    .equals((sessions::Entity, sessions::Column::Id)),
                            )
                            .to_owned(),
                    )
                };
                let dead = Condition::all()
                    .add(sessions::Column::CreatedAt.lt(cutoff))
                    .add(
                        in_use(
                            sea_orm::sea_query::IntoIden::into_iden(refresh_tokens::Entity),
                            sea_orm::sea_query::IntoIden::into_iden(
                                refresh_tokens::Column::SessionId,
                            ),
                        )
                        .not(),
                    )
                    .add(
                        in_use(
                            sea_orm::sea_query::IntoIden::into_iden(ws_tickets::Entity),
                            sea_orm::sea_query::IntoIden::into_iden(ws_tickets::Column::SessionId),
                        )
                        .not(),
                    );
                sessions::Entity::delete_many()
                    .filter(dead.clone())
                    .filter(sessions::Column::Id.in_subquery(keys(
                        sessions::Entity,
                        sessions::Column::Id,
                        dead,
                        batch,
                    )))
                    .exec(connection)
                    .await
            }
            Purge::OneTimeTokens => {
                let expired = Condition::all().add(one_time_tokens::Column::ExpiresAt.lt(cutoff));
                one_time_tokens::Entity::delete_many()
                    .filter(expired.clone())
                    .filter(one_time_tokens::Column::Digest.in_subquery(keys(
                        one_time_tokens::Entity,
                        one_time_tokens::Column::Digest,
                        expired,
                        batch,
                    )))
                    .exec(connection)
                    .await
            }
            Purge::Mail => {
                // Sent (by when), or given up on (a dead row's due time is
                // when it died).
                let settled = Condition::any()
                    .add(
                        Condition::all()
                            .add(outbox::Column::State.eq(OutboxState::Sent.as_str()))
                            .add(outbox::Column::SentAt.lt(cutoff)),
                    )
                    .add(
                        Condition::all()
                            .add(outbox::Column::State.eq(OutboxState::Dead.as_str()))
                            .add(outbox::Column::DueAt.lt(cutoff)),
                    );
                // Repeated outside: PostgreSQL rechecks only the outer
                // condition of a row it waited for (one revived meanwhile
                // by `outbox retry --dead` must stay).
                outbox::Entity::delete_many()
                    .filter(settled.clone())
                    .filter(outbox::Column::Id.in_subquery(keys(
                        outbox::Entity,
                        outbox::Column::Id,
                        settled,
                        batch,
                    )))
                    .exec(connection)
                    .await
            }
            Purge::ReadNotifications => {
                let read = Condition::all().add(notifications::Column::ReadAt.lt(cutoff));
                notifications::Entity::delete_many()
                    .filter(read.clone())
                    .filter(notifications::Column::Id.in_subquery(keys(
                        notifications::Entity,
                        notifications::Column::Id,
                        read,
                        batch,
                    )))
                    .exec(connection)
                    .await
            }
            Purge::AuditEntries => {
                let old = Condition::all().add(audit_log::Column::At.lt(cutoff));
                audit_log::Entity::delete_many()
                    .filter(old.clone())
                    .filter(audit_log::Column::Id.in_subquery(keys(
                        audit_log::Entity,
                        audit_log::Column::Id,
                        old,
                        batch,
                    )))
                    .exec(connection)
                    .await
            }
        };
        Ok(result.map_err(store_error)?.rows_affected)
    }
}
