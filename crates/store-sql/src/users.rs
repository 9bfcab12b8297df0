//! The [`UserStore`] port on SQL.

use async_trait::async_trait;
use pp_domain::ports::{CreateUserError, StoreError, UserStore};
use pp_domain::{Email, NewUser, User, UserId};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::SqlStore;
use crate::auction::db_time;
use crate::entities::users;
use crate::errors::{Reaction, integrity, react, store_error};

fn user_from_row(row: users::Model) -> Result<User, StoreError> {
    Ok(User {
        id: UserId::from_uuid(row.id),
        email: Email::parse(&row.email).map_err(|e| integrity(format_args!("users.email: {e}")))?,
        display_name: row.display_name,
        role: row
            .role
            .parse()
            .map_err(|e| integrity(format_args!("users.role: {e}")))?,
        email_verified: row.email_verified,
        is_active: row.is_active,
        created_at: row.created_at,
    })
}

#[async_trait]
impl UserStore for SqlStore {
    async fn insert_user(&self, user: NewUser) -> Result<User, CreateUserError> {
        let created_at = db_time(user.created_at);
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
        };
        match users::Entity::insert(row)
            .exec_without_returning(self.database().connection())
            .await
        {
            Ok(_) => Ok(User {
                id: user.id,
                email: user.email,
                display_name: user.display_name,
                role: user.role,
                email_verified: user.email_verified,
                is_active: true,
                created_at,
            }),
            Err(err) if react(&err) == Reaction::Duplicate => Err(CreateUserError::EmailTaken),
            Err(err) => Err(store_error(err).into()),
        }
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        users::Entity::find_by_id(id.as_uuid())
            .one(self.database().connection())
            .await
            .map_err(store_error)?
            .map(user_from_row)
            .transpose()
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .one(self.database().connection())
            .await
            .map_err(store_error)?
            .map(user_from_row)
            .transpose()
    }
}
