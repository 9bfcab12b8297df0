//! The [`UserStore`] port on SQL.

use async_trait::async_trait;
use pp_domain::auth::identities::NewIdentity;
use pp_domain::auth::ports::NewLink;
use pp_domain::auth::{FailedAttempt, LockoutPolicy, LoginFailures};
use pp_domain::ports::{
    CreateUserError, PasswordReplacement, ReplacePasswordError, StoreError, UserStore,
};
use pp_domain::{
    Credentials, Email, NewUser, PasswordHash, Timestamp, User, UserChanges, UserCursor, UserId,
};
use sea_orm::sea_query::{CaseStatement, Condition, Expr, LikeExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::SqlStore;
use crate::auction::db_time;
use crate::entities::users;
use crate::errors::{Reaction, integrity, react, store_error};
use crate::transaction::{TxFailure, with_retries};

/// The update that sets a new password hash and clears failures and lock.
pub(crate) fn password_replaced(
    hash: &PasswordHash,
    at: Timestamp,
) -> sea_orm::UpdateMany<users::Entity> {
    users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(hash.as_str()))
        .col_expr(users::Column::PasswordSet, Expr::value(true))
        .col_expr(users::Column::FailedLogins, Expr::value(0))
        .col_expr(
            users::Column::LockedUntil,
            Expr::value(Option::<Timestamp>::None),
        )
        .col_expr(users::Column::UpdatedAt, Expr::value(db_time(at)))
}

impl SqlStore {
    /// Stores a new account with, in the same transaction, its verification
    /// link (a registration) or its first identity (a provider sign-in: then
    /// the account has no password it knows).
    pub(crate) async fn insert_account(
        &self,
        user: NewUser,
        verification: Option<NewLink>,
        identity: Option<&NewIdentity>,
    ) -> Result<User, CreateUserError> {
        let created_at = db_time(user.created_at);
        let mail = verification
            .as_ref()
            .map(|link| crate::outbox::mail_row(self.sealer(), &link.mail))
            .transpose()?;
        let row = users::ActiveModel {
            id: Set(user.id.as_uuid()),
            email: Set(user.email.as_str().to_owned()),
            display_name: Set(user.display_name.clone()),
            password_hash: Set(user.password_hash.as_str().to_owned()),
            role: Set(user.role.as_str().to_owned()),
            email_verified: Set(user.email_verified),
            is_active: Set(true),
            created_at: Set(created_at),
            updated_at: Set(created_at),
            failed_logins: Set(0),
            locked_until: Set(None),
            notify_email: Set(true),
            password_set: Set(identity.is_none()),
            totp_enabled: Set(false),
        };
        let inserted = async {
            let tx = self.database().begin_write().await?;
            let result = async {
                users::Entity::insert(row)
                    .exec_without_returning(&tx.txn)
                    .await?;
                if let (Some(link), Some(mail)) = (&verification, mail) {
                    crate::accounts::insert_link(&tx.txn, &link.token, mail).await?;
                }
                if let Some(identity) = identity {
                    crate::identities::insert_identity(&tx.txn, identity).await?;
                }
                Ok::<_, TxFailure<CreateUserError>>(())
            }
            .await;
            tx.finish(result).await
        }
        .await;
        match inserted {
            Ok(()) => Ok(User {
                id: user.id,
                email: user.email,
                display_name: user.display_name,
                role: user.role,
                email_verified: user.email_verified,
                is_active: true,
                notify_email: true,
                totp_enabled: false,
                created_at,
            }),
            Err(TxFailure::Db(err)) if react(&err) == Reaction::Duplicate => {
                Err(CreateUserError::EmailTaken)
            }
            Err(TxFailure::Db(err)) => Err(store_error(err).into()),
            Err(TxFailure::Outcome(err)) => Err(err),
        }
    }
}

pub(crate) fn user_from_row(row: &users::Model) -> Result<User, StoreError> {
    Ok(User {
        id: UserId::from_uuid(row.id),
        email: Email::parse(&row.email).map_err(|e| integrity(format_args!("users.email: {e}")))?,
        display_name: row.display_name.clone(),
        role: row
            .role
            .parse()
            .map_err(|e| integrity(format_args!("users.role: {e}")))?,
        email_verified: row.email_verified,
        is_active: row.is_active,
        notify_email: row.notify_email,
        totp_enabled: row.totp_enabled,
        created_at: row.created_at,
    })
}

fn credentials_from_row(row: users::Model) -> Result<Credentials, StoreError> {
    Ok(Credentials {
        user: user_from_row(&row)?,
        failures: LoginFailures {
            consecutive: u32::try_from(row.failed_logins)
                .map_err(|_| integrity("users.failed_logins is negative"))?,
            locked_until: row.locked_until,
        },
        password_set: row.password_set,
        password_hash: PasswordHash::new(row.password_hash),
    })
}

impl SqlStore {
    async fn user_row(&self, id: UserId) -> Result<Option<users::Model>, StoreError> {
        users::Entity::find_by_id(id.as_uuid())
            .one(self.database().connection())
            .await
            .map_err(store_error)
    }

    pub(crate) async fn user_row_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<users::Model>, StoreError> {
        users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .one(self.database().connection())
            .await
            .map_err(store_error)
    }

    /// Runs one UPDATE on the account; true when the account exists.
    async fn update_user_columns(
        &self,
        id: UserId,
        update: sea_orm::UpdateMany<users::Entity>,
    ) -> Result<bool, StoreError> {
        let _gate = self.database().write_gate().await;
        let result = update
            .filter(users::Column::Id.eq(id.as_uuid()))
            .exec(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected > 0)
    }

    /// Runs one UPDATE on the account and returns the row as it left it;
    /// `None` when no row matched (no such account, or `update`'s own
    /// conditions failed).
    async fn update_user_returning(
        &self,
        id: UserId,
        update: sea_orm::UpdateMany<users::Entity>,
    ) -> Result<Option<users::Model>, StoreError> {
        let _gate = self.database().write_gate().await;
        let rows = update
            .filter(users::Column::Id.eq(id.as_uuid()))
            .exec_with_returning(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().next())
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn insert_user(
        &self,
        user: NewUser,
        verification: Option<NewLink>,
    ) -> Result<User, CreateUserError> {
        self.insert_account(user, verification, None).await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.user_row(id)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.user_row_by_email(email)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn credentials_by_email(&self, email: &Email) -> Result<Option<Credentials>, StoreError> {
        self.user_row_by_email(email)
            .await?
            .map(credentials_from_row)
            .transpose()
    }

    async fn credentials_by_id(&self, id: UserId) -> Result<Option<Credentials>, StoreError> {
        self.user_row(id)
            .await?
            .map(credentials_from_row)
            .transpose()
    }

    async fn record_wrong_password(
        &self,
        id: UserId,
        now: Timestamp,
        policy: LockoutPolicy,
    ) -> Result<FailedAttempt, StoreError> {
        // One statement, so concurrent failures serialize on the row lock:
        // each counts, and the one that reaches the threshold sets the lock
        // before the next one is decided. SET sees the row as it was.
        let count = || Expr::col(users::Column::FailedLogins).add(1);
        let schedule = policy.schedule();
        let mut lock = CaseStatement::new();
        for (failures, duration) in &schedule {
            let failures = i32::try_from(*failures).unwrap_or(i32::MAX);
            lock = lock.case(count().eq(failures), Expr::value(db_time(now + *duration)));
        }
        if let Some((last, cap)) = schedule.last() {
            let last = i32::try_from(*last).unwrap_or(i32::MAX);
            lock = lock.case(count().gt(last), Expr::value(db_time(now + *cap)));
        }
        let lock: Expr = lock.finally(Expr::col(users::Column::LockedUntil)).into();
        // A lock lifted (by a reset) between the two statements below means
        // trying again; twice in a row is a store too busy to decide.
        for _ in 0..2 {
            let count_unless_locked = users::Entity::update_many()
                .col_expr(users::Column::FailedLogins, count())
                .col_expr(users::Column::LockedUntil, lock.clone())
                .filter(
                    Condition::any()
                        .add(users::Column::LockedUntil.is_null())
                        .add(users::Column::LockedUntil.lte(db_time(now))),
                );
            if let Some(row) = self.update_user_returning(id, count_unless_locked).await? {
                let failures = u32::try_from(row.failed_logins)
                    .map_err(|_| integrity("users.failed_logins is negative"))?;
                return Ok(FailedAttempt::Counted {
                    failures,
                    locks_for: policy.lock_for(failures),
                });
            }
            // Nothing counted: locked meanwhile, or no such account.
            let row = self
                .user_row(id)
                .await?
                .ok_or_else(|| integrity("no such account"))?;
            if let Some(retry_after) = credentials_from_row(row)?.failures.remaining_lock(now) {
                return Ok(FailedAttempt::AlreadyLocked { retry_after });
            }
        }
        Err(StoreError::Busy)
    }

    async fn clear_login_failures(&self, id: UserId) -> Result<(), StoreError> {
        let update = users::Entity::update_many()
            .col_expr(users::Column::FailedLogins, Expr::value(0))
            .col_expr(
                users::Column::LockedUntil,
                Expr::value(Option::<Timestamp>::None),
            );
        self.update_user_columns(id, update).await.map(drop)
    }

    async fn upgrade_password_hash(
        &self,
        id: UserId,
        from: &PasswordHash,
        to: PasswordHash,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        // Conditional on the hash that was checked, so a reset or change
        // committed meanwhile is never overwritten with the old password.
        let update = users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(to.as_str()))
            .col_expr(users::Column::UpdatedAt, Expr::value(db_time(at)))
            .filter(users::Column::PasswordHash.eq(from.as_str()));
        self.update_user_columns(id, update).await
    }

    async fn replace_password(
        &self,
        replacement: PasswordReplacement,
    ) -> Result<(), ReplacePasswordError> {
        with_retries(|| self.try_replace_password(&replacement)).await
    }

    async fn mark_email_verified(
        &self,
        id: UserId,
        at: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        let update = users::Entity::update_many()
            .col_expr(users::Column::EmailVerified, Expr::value(true))
            .col_expr(users::Column::UpdatedAt, Expr::value(db_time(at)));
        self.update_user_columns(id, update).await?;
        self.user_by_id(id).await
    }

    async fn update_user(
        &self,
        id: UserId,
        changes: UserChanges,
        at: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        let mut update = users::Entity::update_many()
            .col_expr(users::Column::UpdatedAt, Expr::value(db_time(at)));
        if let Some(name) = changes.display_name {
            update = update.col_expr(users::Column::DisplayName, Expr::value(name.into_string()));
        }
        if let Some(role) = changes.role {
            update = update.col_expr(users::Column::Role, Expr::value(role.as_str()));
        }
        if let Some(active) = changes.is_active {
            update = update.col_expr(users::Column::IsActive, Expr::value(active));
        }
        if let Some(notify) = changes.notify_email {
            update = update.col_expr(users::Column::NotifyEmail, Expr::value(notify));
        }
        // The row as this statement left it, not as a later read finds it
        // after another admin's change.
        self.update_user_returning(id, update)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn list_users(
        &self,
        email: Option<String>,
        after: Option<UserCursor>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        let mut query = users::Entity::find()
            .order_by_desc(users::Column::CreatedAt)
            .order_by_desc(users::Column::Id)
            .limit(u64::from(limit));
        if let Some(part) = email {
            // Taken literally: `%`, `_` and `\` match only themselves.
            let escaped = part
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            query = query.filter(
                users::Column::Email.like(LikeExpr::new(format!("%{escaped}%")).escape('\\')),
            );
        }
        if let Some(cursor) = after {
            query = query.filter(
                Condition::any()
                    .add(users::Column::CreatedAt.lt(cursor.created_at))
                    .add(
                        Condition::all()
                            .add(users::Column::CreatedAt.eq(cursor.created_at))
                            .add(users::Column::Id.lt(cursor.id.as_uuid())),
                    ),
            );
        }
        query
            .all(self.database().connection())
            .await
            .map_err(store_error)?
            .iter()
            .map(user_from_row)
            .collect()
    }
}
