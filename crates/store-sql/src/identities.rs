//! The [`IdentityStore`] port on SQL: `identities`, one row per linked
//! `(provider, subject)`, at most one per provider and account (a unique
//! index decides races between two links). Unlinking locks the account's
//! row first, so two concurrent unlinks of its last two ways to sign in
//! queue and the second sees the first's result.

use async_trait::async_trait;
use pp_domain::auth::identities::{
    IdentityStore, LinkOutcome, LinkedIdentity, NewAccountOutcome, NewIdentity, ProviderName,
    UnlinkOutcome,
};
use pp_domain::ports::{CreateUserError, StoreError};
use pp_domain::{NewUser, UserId};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::SqlStore;
use crate::auction::db_time;
use crate::entities::{identities, users};
use crate::errors::{Reaction, integrity, react, store_error};
use crate::transaction::{TxFailure, with_retries};

/// Inserts `identity` on `txn`.
pub(crate) async fn insert_identity(
    txn: &impl ConnectionTrait,
    identity: &NewIdentity,
) -> Result<(), DbErr> {
    identities::Entity::insert(identities::ActiveModel {
        provider: Set(identity.provider.as_str().to_owned()),
        subject: Set(identity.subject.clone()),
        user_id: Set(identity.user.as_uuid()),
        email: Set(identity.email.clone()),
        linked_at: Set(db_time(identity.linked_at)),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

impl SqlStore {
    async fn identity_row(
        &self,
        provider: &ProviderName,
        subject: &str,
    ) -> Result<Option<identities::Model>, StoreError> {
        identities::Entity::find_by_id((provider.as_str().to_owned(), subject.to_owned()))
            .one(self.database().connection())
            .await
            .map_err(store_error)
    }

    async fn try_unlink(
        &self,
        user: UserId,
        provider: &ProviderName,
    ) -> Result<UnlinkOutcome, TxFailure<StoreError>> {
        let tx = self.database().begin_write().await?;
        let result = async {
            let txn = &tx.txn;
            let Some(account) = users::Entity::find_by_id(user.as_uuid())
                .lock_exclusive()
                .one(txn)
                .await?
            else {
                return Ok(UnlinkOutcome::NotLinked);
            };
            let linked = identities::Entity::find()
                .filter(identities::Column::UserId.eq(user.as_uuid()))
                .all(txn)
                .await?;
            if !linked.iter().any(|i| i.provider == provider.as_str()) {
                return Ok(UnlinkOutcome::NotLinked);
            }
            if !account.password_set && linked.len() == 1 {
                return Ok(UnlinkOutcome::LastMethod);
            }
            identities::Entity::delete_many()
                .filter(identities::Column::UserId.eq(user.as_uuid()))
                .filter(identities::Column::Provider.eq(provider.as_str()))
                .exec(txn)
                .await?;
            Ok(UnlinkOutcome::Unlinked)
        }
        .await;
        tx.finish(result).await
    }
}

#[async_trait]
impl IdentityStore for SqlStore {
    async fn account_of(
        &self,
        provider: &ProviderName,
        subject: &str,
    ) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .identity_row(provider, subject)
            .await?
            .map(|row| UserId::from_uuid(row.user_id)))
    }

    async fn create_account_with_identity(
        &self,
        user: NewUser,
        identity: NewIdentity,
    ) -> Result<NewAccountOutcome, StoreError> {
        let email = user.email.clone();
        match self.insert_account(user, None, Some(&identity)).await {
            Ok(user) => Ok(NewAccountOutcome::Created(user)),
            // A duplicate is the address or the identity: whichever a
            // concurrent sign-in or registration stored first. Read after
            // the fact: if neither is there any more (unlinked, say), the
            // caller looks the identity up again and retries.
            Err(CreateUserError::EmailTaken) => {
                if self
                    .identity_row(&identity.provider, &identity.subject)
                    .await?
                    .is_none()
                    && self.user_row_by_email(&email).await?.is_some()
                {
                    Ok(NewAccountOutcome::EmailTaken)
                } else {
                    Ok(NewAccountOutcome::IdentityInUse)
                }
            }
            Err(CreateUserError::Store(err)) => Err(err),
        }
    }

    async fn link_identity(&self, identity: NewIdentity) -> Result<LinkOutcome, StoreError> {
        // Twice: a conflicting row that is gone by the time it is looked
        // for (unlinked meanwhile) leaves nothing to report, so try again.
        for _ in 0..2 {
            let inserted = {
                let _gate = self.database().write_gate().await;
                insert_identity(self.database().connection(), &identity).await
            };
            match inserted {
                Ok(()) => return Ok(LinkOutcome::Linked),
                Err(err) if react(&err) == Reaction::Duplicate => {}
                Err(err) => return Err(store_error(err)),
            }
            if let Some(row) = self
                .identity_row(&identity.provider, &identity.subject)
                .await?
            {
                return Ok(if row.user_id == identity.user.as_uuid() {
                    LinkOutcome::AlreadyLinked
                } else {
                    LinkOutcome::InUse
                });
            }
            let taken = identities::Entity::find()
                .filter(identities::Column::UserId.eq(identity.user.as_uuid()))
                .filter(identities::Column::Provider.eq(identity.provider.as_str()))
                .one(self.database().connection())
                .await
                .map_err(store_error)?;
            if taken.is_some() {
                return Ok(LinkOutcome::ProviderTaken);
            }
        }
        Ok(LinkOutcome::InUse)
    }

    async fn identities_of(&self, user: UserId) -> Result<Vec<LinkedIdentity>, StoreError> {
        let rows = identities::Entity::find()
            .filter(identities::Column::UserId.eq(user.as_uuid()))
            .order_by_asc(identities::Column::Provider)
            .all(self.database().connection())
            .await
            .map_err(store_error)?;
        rows.into_iter()
            .map(|row| {
                Ok(LinkedIdentity {
                    provider: ProviderName::parse(&row.provider)
                        .map_err(|e| integrity(e.to_string()))?,
                    subject: row.subject,
                    email: row.email,
                    linked_at: row.linked_at,
                })
            })
            .collect()
    }

    async fn unlink_identity(
        &self,
        user: UserId,
        provider: &ProviderName,
    ) -> Result<UnlinkOutcome, StoreError> {
        with_retries(|| self.try_unlink(user, provider)).await
    }
}
