//! Sessions, refresh tokens, single-use tokens and the audit log on SQL.

use async_trait::async_trait;
use pp_domain::auth::ports::{
    AuditLog, IssueCap, NewLink, NewOneTimeToken, NewRefreshToken, OneTimeTokenStore, Rotation,
    SessionStart, SessionStore,
};
use pp_domain::auth::tokens::{
    AuditCursor, AuditEntry, AuditFilter, AuditRecord, OneTimePurpose, TokenDigest,
};
use pp_domain::ports::{PasswordReplacement, ReplacePasswordError, StoreError};
use pp_domain::{PasswordHash, SessionId, Timestamp, User, UserId};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use crate::SqlStore;
use crate::auction::db_time;
use crate::entities::{
    audit_log, mfa_challenges, one_time_tokens, refresh_tokens, sessions, users,
};
use crate::errors::store_error;
use crate::transaction::{TxFailure, with_retries};
use crate::users::{password_replaced, user_from_row};

/// Stores a single-use token and the outbox row of the mail carrying it,
/// inside the caller's transaction: both or neither.
pub(crate) async fn insert_link(
    txn: &impl ConnectionTrait,
    token: &NewOneTimeToken,
    mail: crate::entities::outbox::ActiveModel,
) -> Result<(), sea_orm::DbErr> {
    one_time_tokens::Entity::insert(one_time_tokens::ActiveModel {
        digest: Set(token.digest.0.to_vec()),
        user_id: Set(token.user.as_uuid()),
        purpose: Set(token.purpose.as_str().to_owned()),
        issued_at: Set(db_time(token.issued_at)),
        expires_at: Set(db_time(token.expires_at)),
        used_at: Set(None),
    })
    .exec_without_returning(txn)
    .await?;
    crate::entities::outbox::Entity::insert(mail)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

fn refresh_row(token: &NewRefreshToken) -> refresh_tokens::ActiveModel {
    refresh_tokens::ActiveModel {
        digest: Set(token.digest.0.to_vec()),
        session_id: Set(token.session.as_uuid()),
        user_id: Set(token.user.as_uuid()),
        issued_at: Set(db_time(token.issued_at)),
        expires_at: Set(db_time(token.expires_at)),
        spent_at: Set(None),
    }
}

impl SqlStore {
    async fn try_rotate(
        &self,
        presented: TokenDigest,
        successor: TokenDigest,
        now: Timestamp,
        successor_expires_at: Timestamp,
    ) -> Result<Rotation, TxFailure<StoreError>> {
        let tx = self.database().begin_write().await?;
        let result = async {
            let txn = &tx.txn;
            // The row lock makes a concurrent rotation of the same token wait
            // and then see it spent: exactly one successor.
            let Some(token) = refresh_tokens::Entity::find_by_id(presented.0.to_vec())
                .lock_exclusive()
                .one(txn)
                .await?
            else {
                return Ok(Rotation::Invalid);
            };
            let session = sessions::Entity::find_by_id(token.session_id)
                .one(txn)
                .await?;
            let live_session = session.is_some_and(|s| s.revoked_at.is_none());
            let (session, user) = (
                SessionId::from_uuid(token.session_id),
                UserId::from_uuid(token.user_id),
            );
            // A rotated token is a replay whatever became of its session
            // since: docs/spec/api.md answers it `token_reused`, and each replay is
            // audited, also after the family was revoked.
            if token.spent_at.is_some() {
                return Ok(Rotation::Reused { session, user });
            }
            if !live_session {
                return Ok(Rotation::Invalid);
            }
            if token.expires_at <= now {
                return Ok(Rotation::Invalid);
            }
            refresh_tokens::Entity::update_many()
                .col_expr(refresh_tokens::Column::SpentAt, Expr::value(db_time(now)))
                .filter(refresh_tokens::Column::Digest.eq(presented.0.to_vec()))
                .exec(txn)
                .await?;
            refresh_tokens::Entity::insert(refresh_row(&NewRefreshToken {
                digest: successor,
                session,
                user,
                issued_at: now,
                expires_at: successor_expires_at,
            }))
            .exec_without_returning(txn)
            .await?;
            Ok(Rotation::Rotated { session, user })
        }
        .await;
        tx.finish(result).await
    }

    async fn try_replace(
        &self,
        successor: &NewRefreshToken,
        now: Timestamp,
    ) -> Result<(), TxFailure<StoreError>> {
        let tx = self.database().begin_write().await?;
        let result = async {
            // Waits for a rotation of one of them that is under way, so the
            // update below (a new statement, a new snapshot) also sees and
            // spends the successor that rotation stored.
            refresh_tokens::Entity::find()
                .filter(refresh_tokens::Column::SessionId.eq(successor.session.as_uuid()))
                .filter(refresh_tokens::Column::SpentAt.is_null())
                .lock_exclusive()
                .all(&tx.txn)
                .await?;
            refresh_tokens::Entity::update_many()
                .col_expr(refresh_tokens::Column::SpentAt, Expr::value(db_time(now)))
                .filter(refresh_tokens::Column::SessionId.eq(successor.session.as_uuid()))
                .filter(refresh_tokens::Column::SpentAt.is_null())
                .exec(&tx.txn)
                .await?;
            refresh_tokens::Entity::insert(refresh_row(successor))
                .exec_without_returning(&tx.txn)
                .await?;
            Ok(())
        }
        .await;
        tx.finish(result).await
    }

    /// [`UserStore::replace_password`]'s transaction.
    pub(crate) async fn try_replace_password(
        &self,
        replacement: &PasswordReplacement,
    ) -> Result<(), TxFailure<ReplacePasswordError>> {
        let at = db_time(replacement.at);
        let user = replacement.user.as_uuid();
        let reset_links = || {
            one_time_tokens::Entity::update_many()
                .col_expr(one_time_tokens::Column::UsedAt, Expr::value(at))
                .filter(one_time_tokens::Column::UserId.eq(user))
                .filter(one_time_tokens::Column::Purpose.eq(OneTimePurpose::ResetPassword.as_str()))
                .filter(one_time_tokens::Column::UsedAt.is_null())
                .filter(one_time_tokens::Column::ExpiresAt.gt(at))
        };
        let tx = self.database().begin_write().await?;
        let result = async {
            // The account's row first: concurrent replacements queue on it
            // before they touch any link, so they cannot deadlock.
            password_replaced(&replacement.hash, replacement.at)
                .filter(users::Column::Id.eq(user))
                .exec(&tx.txn)
                .await?;
            if let Some(link) = replacement.link {
                let spent = reset_links()
                    .filter(one_time_tokens::Column::Digest.eq(link.0.to_vec()))
                    .exec(&tx.txn)
                    .await?;
                if spent.rows_affected != 1 {
                    return Err(TxFailure::Outcome(ReplacePasswordError::LinkSpent));
                }
            }
            // The account's other live links would undo this password.
            reset_links().exec(&tx.txn).await?;
            let mut sessions = sessions::Entity::update_many()
                .col_expr(sessions::Column::RevokedAt, Expr::value(at))
                .filter(sessions::Column::UserId.eq(user))
                .filter(sessions::Column::RevokedAt.is_null());
            if let Some(keep) = replacement.keep_session {
                sessions = sessions.filter(sessions::Column::Id.ne(keep.as_uuid()));
            }
            sessions.exec(&tx.txn).await?;
            // A login waiting for its second factor followed the old
            // password.
            mfa_challenges::Entity::delete_many()
                .filter(mfa_challenges::Column::UserId.eq(user))
                .exec(&tx.txn)
                .await?;
            Ok(())
        }
        .await;
        tx.finish(result).await
    }

    async fn try_start_session(
        &self,
        first: &NewRefreshToken,
        verified: &PasswordHash,
    ) -> Result<SessionStart, TxFailure<StoreError>> {
        if self.database().backend() == DbBackend::Postgres {
            // One statement, so one round trip and atomic without a
            // transaction: logins are frequent enough for this to matter.
            // FOR SHARE makes a reset, change or deactivation that has
            // updated the account wait for this insert's commit (then it
            // revokes the new session), or this wait for theirs (then the
            // re-checked row no longer qualifies and nothing is stored).
            let statement = Statement::from_sql_and_values(
                DbBackend::Postgres,
                r#"WITH "account" AS (SELECT "id" FROM "users" WHERE "id" = $2 AND "password_hash" = $6 AND "is_active" FOR SHARE),
                   "session" AS (INSERT INTO "sessions" ("id", "user_id", "created_at", "revoked_at") SELECT $1, "id", $3, NULL FROM "account" RETURNING "id")
                   INSERT INTO "refresh_tokens" ("digest", "session_id", "user_id", "issued_at", "expires_at", "spent_at") SELECT $4, "id", $2, $3, $5, NULL FROM "session""#,
                [
                    first.session.as_uuid().into(),
                    first.user.as_uuid().into(),
                    db_time(first.issued_at).into(),
                    first.digest.0.to_vec().into(),
                    db_time(first.expires_at).into(),
                    verified.as_str().into(),
                ],
            );
            let inserted = self.database().connection().execute_raw(statement).await?;
            return Ok(if inserted.rows_affected() == 1 {
                SessionStart::Started
            } else {
                SessionStart::Stale
            });
        }
        // SQLite runs one writer at a time: the check and the inserts see
        // every reset, change or deactivation committed before them, and
        // any later one revokes what they stored.
        let tx = self.database().begin_write().await?;
        let result = async {
            let current = users::Entity::find_by_id(first.user.as_uuid())
                .filter(users::Column::PasswordHash.eq(verified.as_str()))
                .filter(users::Column::IsActive.eq(true))
                .count(&tx.txn)
                .await?;
            if current == 0 {
                return Ok(SessionStart::Stale);
            }
            sessions::Entity::insert(sessions::ActiveModel {
                id: Set(first.session.as_uuid()),
                user_id: Set(first.user.as_uuid()),
                created_at: Set(db_time(first.issued_at)),
                revoked_at: Set(None),
            })
            .exec_without_returning(&tx.txn)
            .await?;
            refresh_tokens::Entity::insert(refresh_row(first))
                .exec_without_returning(&tx.txn)
                .await?;
            Ok(SessionStart::Started)
        }
        .await;
        tx.finish(result).await
    }

    async fn revoke_sessions_where(
        &self,
        update: sea_orm::UpdateMany<sessions::Entity>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let _gate = self.database().write_gate().await;
        update
            .col_expr(sessions::Column::RevokedAt, Expr::value(db_time(at)))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn start_session(
        &self,
        first: NewRefreshToken,
        verified: &PasswordHash,
    ) -> Result<SessionStart, StoreError> {
        with_retries(|| self.try_start_session(&first, verified)).await
    }

    async fn rotate_refresh_token(
        &self,
        presented: TokenDigest,
        successor: TokenDigest,
        now: Timestamp,
        successor_expires_at: Timestamp,
    ) -> Result<Rotation, StoreError> {
        with_retries(|| self.try_rotate(presented, successor, now, successor_expires_at)).await
    }

    async fn replace_refresh_tokens(
        &self,
        successor: NewRefreshToken,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        with_retries(|| self.try_replace(&successor, now)).await
    }

    async fn revoke_session(&self, session: SessionId, at: Timestamp) -> Result<(), StoreError> {
        let update =
            sessions::Entity::update_many().filter(sessions::Column::Id.eq(session.as_uuid()));
        self.revoke_sessions_where(update, at).await
    }

    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut update =
            sessions::Entity::update_many().filter(sessions::Column::UserId.eq(user.as_uuid()));
        if let Some(keep) = except {
            update = update.filter(sessions::Column::Id.ne(keep.as_uuid()));
        }
        self.revoke_sessions_where(update, at).await
    }

    async fn active_session_user(&self, session: SessionId) -> Result<Option<User>, StoreError> {
        // On every authenticated request: one round trip, and SQL built once
        // per backend instead of per call.
        let backend = self.database().backend();
        let statement = Statement::from_sql_and_values(
            backend,
            active_session_user_sql(backend),
            [session.as_uuid().into()],
        );
        users::Entity::find()
            .from_raw_sql(statement)
            .one(self.database().connection())
            .await
            .map_err(store_error)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn session_of_refresh_token(
        &self,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<SessionId>, StoreError> {
        let token = refresh_tokens::Entity::find_by_id(digest.0.to_vec())
            .filter(refresh_tokens::Column::SpentAt.is_null())
            .filter(refresh_tokens::Column::ExpiresAt.gt(db_time(now)))
            .one(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(token.map(|t| SessionId::from_uuid(t.session_id)))
    }

    async fn session_renewable(
        &self,
        session: SessionId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let live = refresh_tokens::Entity::find()
            .filter(refresh_tokens::Column::SessionId.eq(session.as_uuid()))
            .filter(refresh_tokens::Column::SpentAt.is_null())
            .filter(refresh_tokens::Column::ExpiresAt.gt(db_time(now)))
            .count(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(live > 0)
    }
}

/// The user of a live session, if active. Hand-written because it runs on
/// every authenticated request: no query building per call.
fn active_session_user_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            r#"SELECT * FROM "users" WHERE "id" IN (SELECT "user_id" FROM "sessions" WHERE "id" = $1 AND "revoked_at" IS NULL) AND "is_active" = TRUE LIMIT 1"#
        }
        _ => {
            r#"SELECT * FROM "users" WHERE "id" IN (SELECT "user_id" FROM "sessions" WHERE "id" = ? AND "revoked_at" IS NULL) AND "is_active" = 1 LIMIT 1"#
        }
    }
}

impl SqlStore {
    async fn try_issue_one_time(
        &self,
        link: &NewLink,
        cap: IssueCap,
    ) -> Result<bool, TxFailure<StoreError>> {
        let token = &link.token;
        let mail =
            crate::outbox::mail_row(self.sealer(), &link.mail).map_err(TxFailure::outcome)?;
        let tx = self.database().begin_write().await?;
        let result = async {
            let txn = &tx.txn;
            // The account's row lock queues concurrent issues for it (on
            // SQLite the write lock does), so the count holds until commit.
            users::Entity::find_by_id(token.user.as_uuid())
                .select_only()
                .column(users::Column::Id)
                .lock_exclusive()
                .into_tuple::<Uuid>()
                .one(txn)
                .await?;
            let recent = one_time_tokens::Entity::find()
                .filter(one_time_tokens::Column::UserId.eq(token.user.as_uuid()))
                .filter(one_time_tokens::Column::IssuedAt.gt(db_time(cap.since)))
                .count(txn)
                .await?;
            if recent >= u64::from(cap.at_most) {
                return Ok(false);
            }
            insert_link(txn, token, mail).await?;
            Ok(true)
        }
        .await;
        tx.finish(result).await
    }
}

#[async_trait]
impl OneTimeTokenStore for SqlStore {
    async fn issue_one_time_token(&self, link: NewLink, cap: IssueCap) -> Result<bool, StoreError> {
        with_retries(|| self.try_issue_one_time(&link, cap)).await
    }

    async fn peek_one_time_token(
        &self,
        digest: TokenDigest,
        purpose: OneTimePurpose,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError> {
        let user = one_time_tokens::Entity::find_by_id(digest.0.to_vec())
            .select_only()
            .column(one_time_tokens::Column::UserId)
            .filter(one_time_tokens::Column::Purpose.eq(purpose.as_str()))
            .filter(one_time_tokens::Column::UsedAt.is_null())
            .filter(one_time_tokens::Column::ExpiresAt.gt(now))
            .into_tuple::<Uuid>()
            .one(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(user.map(UserId::from_uuid))
    }

    async fn consume_one_time_token(
        &self,
        digest: TokenDigest,
        purpose: OneTimePurpose,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError> {
        // A conditional UPDATE: of two concurrent uses only one changes the row.
        let _gate = self.database().write_gate().await;
        let used = one_time_tokens::Entity::update_many()
            .col_expr(one_time_tokens::Column::UsedAt, Expr::value(db_time(now)))
            .filter(one_time_tokens::Column::Digest.eq(digest.0.to_vec()))
            .filter(one_time_tokens::Column::Purpose.eq(purpose.as_str()))
            .filter(one_time_tokens::Column::UsedAt.is_null())
            .filter(one_time_tokens::Column::ExpiresAt.gt(now))
            .exec_with_returning(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(used.first().map(|row| UserId::from_uuid(row.user_id)))
    }
}

#[async_trait]
impl AuditLog for SqlStore {
    async fn record(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let _gate = self.database().write_gate().await;
        audit_log::Entity::insert(audit_log::ActiveModel {
            id: Set(Uuid::now_v7()),
            at: Set(db_time(entry.at)),
            event: Set(entry.event.as_str().to_owned()),
            user_id: Set(entry.user.map(|u| u.as_uuid())),
            actor_id: Set(entry.actor.map(|u| u.as_uuid())),
            request_id: Set(entry.context.request_id),
            ip: Set(entry.context.ip.map(|ip| ip.to_string())),
            detail: Set(entry.detail),
        })
        .exec_without_returning(self.database().connection())
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn audit_trail(
        &self,
        filter: AuditFilter,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut query = audit_log::Entity::find()
            .order_by_desc(audit_log::Column::At)
            .order_by_desc(audit_log::Column::Id)
            .limit(u64::from(limit));
        if let Some(user) = filter.user {
            // About the account, or done by it (an admin's actions).
            query = query.filter(
                Condition::any()
                    .add(audit_log::Column::UserId.eq(user.as_uuid()))
                    .add(audit_log::Column::ActorId.eq(user.as_uuid())),
            );
        }
        if let Some(event) = filter.event {
            query = query.filter(audit_log::Column::Event.eq(event.as_str()));
        }
        if let Some(cursor) = after {
            let at = db_time(cursor.at);
            query = query.filter(
                Condition::any().add(audit_log::Column::At.lt(at)).add(
                    Condition::all()
                        .add(audit_log::Column::At.eq(at))
                        .add(audit_log::Column::Id.lt(cursor.id)),
                ),
            );
        }
        let rows = query
            .all(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(audit_record).collect())
    }
}

fn audit_record(row: audit_log::Model) -> AuditRecord {
    AuditRecord {
        id: row.id,
        at: row.at,
        event: row.event,
        user: row.user_id.map(UserId::from_uuid),
        actor: row.actor_id.map(UserId::from_uuid),
        request_id: row.request_id,
        ip: row.ip,
        detail: row.detail,
    }
}

impl SqlStore {
    /// Every audit record, oldest first (for tests).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn audit_records(&self) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = audit_log::Entity::find()
            .order_by_asc(audit_log::Column::At)
            .order_by_asc(audit_log::Column::Id)
            .all(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(audit_record).collect())
    }
}
