//! The [`SecondFactorStore`] port on SQL: `totp_credentials` (one sealed
//! secret per account, bound to it; `last_step` guards against replay),
//! `recovery_codes` (digests, `used_at` once used), `mfa_challenges`, and
//! `users.totp_enabled`, which changes in the same transaction as the
//! credential it reflects.
//!
//! Using a code is one conditional UPDATE (`last_step < step`), using a
//! recovery code or closing a challenge another (`used_at IS NULL`, a
//! DELETE): whichever of two concurrent requests commits first wins and the
//! other changes no row, on both backends.

use async_trait::async_trait;
use pp_domain::Timestamp;
use pp_domain::UserId;
use pp_domain::auth::second_factor::{
    NewChallenge, SecondFactorStore, TotpCredential, TotpSecret, TotpStep,
};
use pp_domain::auth::tokens::TokenDigest;
use pp_domain::ports::{SealBinding, StoreError};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect,
};

use crate::SqlStore;
use crate::auction::db_time;
use crate::entities::{mfa_challenges, recovery_codes, totp_credentials, users};
use crate::errors::{integrity, store_error};
use crate::transaction::{TxFailure, with_retries};

/// Locks `user`'s row for the rest of the transaction (on SQLite the write
/// lock already serializes): starting, confirming and removing a factor,
/// and opening a challenge, queue on it rather than interleave.
async fn lock_account(
    txn: &impl ConnectionTrait,
    user: UserId,
) -> Result<Option<users::Model>, DbErr> {
    users::Entity::find_by_id(user.as_uuid())
        .lock_exclusive()
        .one(txn)
        .await
}

/// Deletes `user`'s recovery codes on `txn`.
async fn forget_recovery_codes(txn: &impl ConnectionTrait, user: UserId) -> Result<(), DbErr> {
    recovery_codes::Entity::delete_many()
        .filter(recovery_codes::Column::UserId.eq(user.as_uuid()))
        .exec(txn)
        .await?;
    Ok(())
}

/// Sets `users.totp_enabled` of `user` on `txn`.
async fn mark_enabled(txn: &impl ConnectionTrait, user: UserId, on: bool) -> Result<(), DbErr> {
    users::Entity::update_many()
        .col_expr(users::Column::TotpEnabled, Expr::value(on))
        .filter(users::Column::Id.eq(user.as_uuid()))
        .exec(txn)
        .await?;
    Ok(())
}

impl SqlStore {
    fn seal_secret(&self, user: UserId, secret: &TotpSecret) -> Result<Vec<u8>, StoreError> {
        self.sealer()
            .seal(secret.as_bytes(), &SealBinding::TotpSecret { user })
            .map_err(|err| integrity(format_args!("sealing a TOTP secret failed: {err}")))
    }

    async fn try_save_unconfirmed(
        &self,
        user: UserId,
        sealed: &[u8],
        now: Timestamp,
    ) -> Result<bool, TxFailure<StoreError>> {
        let tx = self.database().begin_write().await?;
        let result = async {
            let txn = &tx.txn;
            lock_account(txn, user).await?;
            let current = totp_credentials::Entity::find_by_id(user.as_uuid())
                .one(txn)
                .await?;
            if current.as_ref().is_some_and(|row| row.confirmed) {
                return Ok(false);
            }
            totp_credentials::Entity::delete_many()
                .filter(totp_credentials::Column::UserId.eq(user.as_uuid()))
                .exec(txn)
                .await?;
            totp_credentials::Entity::insert(totp_credentials::ActiveModel {
                user_id: Set(user.as_uuid()),
                sealed: Set(sealed.to_vec()),
                confirmed: Set(false),
                last_step: Set(None),
                created_at: Set(db_time(now)),
            })
            .exec_without_returning(txn)
            .await?;
            Ok(true)
        }
        .await;
        tx.finish(result).await
    }

    async fn try_confirm(
        &self,
        user: UserId,
        step: TotpStep,
        recovery: &[TokenDigest],
        now: Timestamp,
    ) -> Result<bool, TxFailure<StoreError>> {
        let tx = self.database().begin_write().await?;
        let result = async {
            let txn = &tx.txn;
            lock_account(txn, user).await?;
            let confirmed = totp_credentials::Entity::update_many()
                .col_expr(totp_credentials::Column::Confirmed, Expr::value(true))
                .col_expr(totp_credentials::Column::LastStep, Expr::value(step.0))
                .filter(totp_credentials::Column::UserId.eq(user.as_uuid()))
                .filter(totp_credentials::Column::Confirmed.eq(false))
                .exec(txn)
                .await?;
            if confirmed.rows_affected != 1 {
                return Ok(false);
            }
            forget_recovery_codes(txn, user).await?;
            let at = db_time(now);
            recovery_codes::Entity::insert_many(recovery.iter().map(|digest| {
                recovery_codes::ActiveModel {
                    user_id: Set(user.as_uuid()),
                    digest: Set(digest.0.to_vec()),
                    created_at: Set(at),
                    used_at: Set(None),
                }
            }))
            .exec_without_returning(txn)
            .await?;
            mark_enabled(txn, user, true).await?;
            Ok(true)
        }
        .await;
        tx.finish(result).await
    }

    async fn try_remove(&self, user: UserId) -> Result<bool, TxFailure<StoreError>> {
        let tx = self.database().begin_write().await?;
        let result = async {
            let txn = &tx.txn;
            lock_account(txn, user).await?;
            let removed = totp_credentials::Entity::delete_many()
                .filter(totp_credentials::Column::UserId.eq(user.as_uuid()))
                .filter(totp_credentials::Column::Confirmed.eq(true))
                .exec(txn)
                .await?;
            if removed.rows_affected != 1 {
                return Ok(false);
            }
            forget_recovery_codes(txn, user).await?;
            mfa_challenges::Entity::delete_many()
                .filter(mfa_challenges::Column::UserId.eq(user.as_uuid()))
                .exec(txn)
                .await?;
            mark_enabled(txn, user, false).await?;
            Ok(true)
        }
        .await;
        tx.finish(result).await
    }

    async fn try_open_challenge(
        &self,
        challenge: &NewChallenge,
    ) -> Result<bool, TxFailure<StoreError>> {
        let tx = self.database().begin_write().await?;
        let result = async {
            let txn = &tx.txn;
            // Held until commit: a reset or change that replaces the hash
            // waits, then closes this challenge with the others; one that
            // committed first leaves nothing to open.
            let current = lock_account(txn, challenge.user).await?;
            if !current.is_some_and(|row| {
                row.is_active && row.password_hash == challenge.verified.as_str()
            }) {
                return Ok(false);
            }
            // The account's lapsed challenges go with each new one: no
            // sweeper needed, and an account holds a handful at most.
            mfa_challenges::Entity::delete_many()
                .filter(mfa_challenges::Column::UserId.eq(challenge.user.as_uuid()))
                .filter(mfa_challenges::Column::ExpiresAt.lte(db_time(challenge.issued_at)))
                .exec(txn)
                .await?;
            mfa_challenges::Entity::insert(mfa_challenges::ActiveModel {
                digest: Set(challenge.digest.0.to_vec()),
                user_id: Set(challenge.user.as_uuid()),
                issued_at: Set(db_time(challenge.issued_at)),
                expires_at: Set(db_time(challenge.expires_at)),
            })
            .exec_without_returning(txn)
            .await?;
            Ok(true)
        }
        .await;
        tx.finish(result).await
    }
}

#[async_trait]
impl SecondFactorStore for SqlStore {
    async fn save_unconfirmed_totp(
        &self,
        user: UserId,
        secret: &TotpSecret,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let sealed = self.seal_secret(user, secret)?;
        with_retries(|| self.try_save_unconfirmed(user, &sealed, now)).await
    }

    async fn totp(&self, user: UserId) -> Result<Option<TotpCredential>, StoreError> {
        let Some(row) = totp_credentials::Entity::find_by_id(user.as_uuid())
            .one(self.database().connection())
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        let secret = self
            .sealer()
            .open(&row.sealed, &SealBinding::TotpSecret { user })
            .map_err(|err| {
                integrity(format_args!(
                    "the TOTP secret of {user} does not open: {err}"
                ))
            })?;
        Ok(Some(TotpCredential {
            secret: TotpSecret::from_bytes(secret),
            confirmed: row.confirmed,
        }))
    }

    async fn confirm_totp(
        &self,
        user: UserId,
        step: TotpStep,
        recovery: Vec<TokenDigest>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        with_retries(|| self.try_confirm(user, step, &recovery, now)).await
    }

    async fn use_totp_step(&self, user: UserId, step: TotpStep) -> Result<bool, StoreError> {
        let _gate = self.database().write_gate().await;
        let used = totp_credentials::Entity::update_many()
            .col_expr(totp_credentials::Column::LastStep, Expr::value(step.0))
            .filter(totp_credentials::Column::UserId.eq(user.as_uuid()))
            .filter(totp_credentials::Column::Confirmed.eq(true))
            .filter(
                Condition::any()
                    .add(totp_credentials::Column::LastStep.is_null())
                    .add(totp_credentials::Column::LastStep.lt(step.0)),
            )
            .exec(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(used.rows_affected == 1)
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let _gate = self.database().write_gate().await;
        let used = recovery_codes::Entity::update_many()
            .col_expr(recovery_codes::Column::UsedAt, Expr::value(db_time(now)))
            .filter(recovery_codes::Column::UserId.eq(user.as_uuid()))
            .filter(recovery_codes::Column::Digest.eq(digest.0.to_vec()))
            .filter(recovery_codes::Column::UsedAt.is_null())
            .exec(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(used.rows_affected == 1)
    }

    async fn recovery_codes_left(&self, user: UserId) -> Result<u32, StoreError> {
        let left = recovery_codes::Entity::find()
            .filter(recovery_codes::Column::UserId.eq(user.as_uuid()))
            .filter(recovery_codes::Column::UsedAt.is_null())
            .count(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(u32::try_from(left).unwrap_or(u32::MAX))
    }

    async fn remove_totp(&self, user: UserId) -> Result<bool, StoreError> {
        with_retries(|| self.try_remove(user)).await
    }

    async fn open_challenge(&self, challenge: NewChallenge) -> Result<bool, StoreError> {
        with_retries(|| self.try_open_challenge(&challenge)).await
    }

    async fn challenge_user(
        &self,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError> {
        let row = mfa_challenges::Entity::find_by_id(digest.0.to_vec())
            .filter(mfa_challenges::Column::ExpiresAt.gt(db_time(now)))
            .one(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(row.map(|row| UserId::from_uuid(row.user_id)))
    }

    async fn close_challenge(
        &self,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let _gate = self.database().write_gate().await;
        let closed = mfa_challenges::Entity::delete_many()
            .filter(mfa_challenges::Column::Digest.eq(digest.0.to_vec()))
            .filter(mfa_challenges::Column::ExpiresAt.gt(db_time(now)))
            .exec(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(closed.rows_affected == 1)
    }
}
