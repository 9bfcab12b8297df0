//! Stored notifications: written in the transaction of the bid batch or
//! the close that causes them ([`insert_notifications`]), with the e-mail
//! notices they cause (in the outbox), read and marked by their user. What one says, its kind included, is sealed at one
//! length and bound to its row, user and item: an `exhausted` notice names
//! a poisoned bid's own budget, which the bids table keeps sealed too.

use std::collections::HashMap;

use crate::transaction::TxFailure;
use pp_domain::live::{Notification, NotificationData};
use pp_domain::notifications::{NoticeMail, NotificationCursor, StoredNotification};
use pp_domain::outbox::{NewOutboxMail, OutgoingMail};
use pp_domain::ports::{SealBinding, Sealer, StoreError};
use pp_domain::{Currency, Item, Timestamp, UserId};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use crate::SqlStore;
use crate::auction::db_time;
use crate::entities::{items, notifications, users};
use crate::errors::{integrity, store_error};
use crate::outbox::mail_row;
use crate::users::user_from_row;

/// Every sealed notification is padded to this length (JSON allows the
/// trailing spaces), so a ciphertext's length tells neither its kind nor
/// the size of its figures. The longest, `exhausted` with 13-digit
/// amounts, is under 200 bytes.
const SEALED_LEN: usize = 256;

/// Rows per INSERT: PostgreSQL binds at most 65,535 values per statement,
/// and a close may tell thousands of bidders.
const ROWS_PER_INSERT: usize = 1_000;

fn binding(id: Uuid, notification: &Notification) -> SealBinding {
    SealBinding::Notification {
        id,
        user: notification.user,
        item: notification.data.item(),
    }
}

/// The sealed rows of `told`, each with the item it is about.
pub(crate) fn notification_rows(
    sealer: &dyn Sealer,
    told: &[(Notification, &Item)],
) -> Result<Vec<notifications::Model>, StoreError> {
    let mut rows = Vec::with_capacity(told.len());
    for (notification, item) in told {
        let id = Uuid::now_v7();
        let mut plain = serde_json::to_vec(&notification.data)
            .map_err(|err| integrity(format_args!("a notification cannot be encoded: {err}")))?;
        if plain.len() > SEALED_LEN {
            return Err(integrity("a notification is too long to seal"));
        }
        plain.resize(SEALED_LEN, b' ');
        let sealed = sealer
            .seal(&plain, &binding(id, notification))
            .map_err(|err| integrity(format_args!("sealing failed: {err}")))?;
        rows.push(notifications::Model {
            id,
            user_id: notification.user.as_uuid(),
            item_id: notification.data.item().as_uuid(),
            item_title: item.title.as_str().to_owned(),
            at: db_time(notification.at),
            read_at: None,
            sealed,
        });
    }
    Ok(rows)
}

/// Inserts `rows` in the caller's transaction, in statements of at most
/// [`ROWS_PER_INSERT`] rows.
async fn insert_in_chunks<A>(
    txn: &impl ConnectionTrait,
    rows: impl IntoIterator<Item = A>,
) -> Result<(), sea_orm::DbErr>
where
    A: ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        A::Entity::insert_many(chunk)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Inserts the notification `rows` in the caller's transaction.
pub(crate) async fn insert_notification_rows(
    txn: &impl ConnectionTrait,
    rows: Vec<notifications::Model>,
) -> Result<(), sea_orm::DbErr> {
    insert_in_chunks(txn, rows.into_iter().map(notifications::ActiveModel::from)).await
}

/// Stores `told`, each with the item it is about, in the caller's
/// transaction (a database error stays retryable there): the notification
/// rows, and the e-mail notices they cause ([`NoticeMail::of`]) in the
/// outbox.
pub(crate) async fn insert_notifications<E: From<StoreError>>(
    txn: &impl ConnectionTrait,
    sealer: &dyn Sealer,
    told: &[(Notification, &Item)],
) -> Result<(), TxFailure<E>> {
    let rows = notification_rows(sealer, told).map_err(TxFailure::outcome)?;
    insert_notification_rows(txn, rows).await?;
    insert_notices(txn, sealer, told).await
}

/// The accounts of `ids` that may be mailed a notice (the domain checks
/// again): on the bid path, so on PostgreSQL one statement of fixed text
/// (an array, not an IN list), prepared once per connection.
async fn mailable_users(
    txn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<users::Model>, sea_orm::DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        return users::Entity::find()
            .from_raw_sql(Statement::from_sql_and_values(
                DbBackend::Postgres,
                r#"SELECT * FROM "users" WHERE "id" = ANY($1)
                   AND "notify_email" AND "email_verified" AND "is_active""#,
                [ids.to_vec().into()],
            ))
            .all(txn)
            .await;
    }
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        rows.extend(
            users::Entity::find()
                .filter(users::Column::Id.is_in(chunk.iter().copied()))
                .filter(users::Column::NotifyEmail.eq(true))
                .filter(users::Column::EmailVerified.eq(true))
                .filter(users::Column::IsActive.eq(true))
                .all(txn)
                .await?,
        );
    }
    Ok(rows)
}

/// The outbox rows of the notices `told` mails, in the caller's
/// transaction: its recipients are read in the same transaction, so a
/// notice follows the account as it is then (notices turned off a moment
/// ago are not sent).
pub(crate) async fn insert_notices<E: From<StoreError>>(
    txn: &impl ConnectionTrait,
    sealer: &dyn Sealer,
    told: &[(Notification, &Item)],
) -> Result<(), TxFailure<E>> {
    let mailed: Vec<&(Notification, &Item)> = told
        .iter()
        .filter(|(notification, _)| notification.data.is_mailed())
        .collect();
    if mailed.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<Uuid> = mailed.iter().map(|(told, _)| told.user.as_uuid()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut recipients = HashMap::with_capacity(ids.len());
    for row in mailable_users(txn, &ids).await? {
        // An account that does not read back is not mailed, and neither
        // fails the bid nor holds up the close.
        match user_from_row(&row) {
            Ok(user) => {
                recipients.insert(user.id, user);
            }
            Err(err) => {
                tracing::error!(user_id = %row.id, error = %err, "an account does not read back; its notice is not mailed");
            }
        }
    }
    let mut rows = Vec::new();
    for (notification, item) in mailed {
        let Some(notice) = recipients
            .get(&notification.user)
            .and_then(|recipient| NoticeMail::of(notification, item, recipient))
        else {
            continue;
        };
        let mail = NewOutboxMail::new(OutgoingMail::Notice(notice), notification.at);
        rows.push(mail_row(sealer, &mail).map_err(TxFailure::outcome)?);
    }
    insert_in_chunks(txn, rows).await?;
    Ok(())
}

impl SqlStore {
    fn open_notification(
        &self,
        row: notifications::Model,
        currency: Currency,
    ) -> Result<StoredNotification, StoreError> {
        let user = UserId::from_uuid(row.user_id);
        let plain = self
            .sealer()
            .open(
                &row.sealed,
                &SealBinding::Notification {
                    id: row.id,
                    user,
                    item: pp_domain::ItemId::from_uuid(row.item_id),
                },
            )
            .map_err(|err| {
                integrity(format_args!("notification {} does not open: {err}", row.id))
            })?;
        let data: NotificationData = serde_json::from_slice(&plain).map_err(|err| {
            integrity(format_args!("notification {} is malformed: {err}", row.id))
        })?;
        Ok(StoredNotification {
            id: row.id,
            item_title: row.item_title,
            currency,
            notification: Notification {
                user,
                data,
                at: row.at,
            },
            read: row.read_at.is_some(),
        })
    }

    pub(crate) async fn user_notifications(
        &self,
        user: UserId,
        after: Option<NotificationCursor>,
        limit: u32,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        let mut query = notifications::Entity::find()
            .filter(notifications::Column::UserId.eq(user.as_uuid()))
            .order_by_desc(notifications::Column::At)
            .order_by_desc(notifications::Column::Id)
            .limit(u64::from(limit));
        if let Some(cursor) = after {
            let at = db_time(cursor.at);
            query = query.filter(
                Condition::any().add(notifications::Column::At.lt(at)).add(
                    Condition::all()
                        .add(notifications::Column::At.eq(at))
                        .add(notifications::Column::Id.lt(cursor.id)),
                ),
            );
        }
        let connection = self.database().connection();
        let rows = query.all(connection).await.map_err(store_error)?;
        // Their items' currencies (a page names at most `limit` items).
        let mut item_ids: Vec<Uuid> = rows.iter().map(|row| row.item_id).collect();
        item_ids.sort_unstable();
        item_ids.dedup();
        let currencies: HashMap<Uuid, String> = items::Entity::find()
            .select_only()
            .column(items::Column::Id)
            .column(items::Column::Currency)
            .filter(items::Column::Id.is_in(item_ids))
            .into_tuple::<(Uuid, String)>()
            .all(connection)
            .await
            .map_err(store_error)?
            .into_iter()
            .collect();
        rows.into_iter()
            .map(|row| {
                let currency = currencies
                    .get(&row.item_id)
                    .and_then(|code| Currency::parse(code).ok())
                    .ok_or_else(|| {
                        integrity(format_args!("notification {}: its item's currency", row.id))
                    })?;
                self.open_notification(row, currency)
            })
            .collect()
    }

    pub(crate) async fn count_unread(&self, user: UserId) -> Result<u64, StoreError> {
        notifications::Entity::find()
            .filter(notifications::Column::UserId.eq(user.as_uuid()))
            .filter(notifications::Column::ReadAt.is_null())
            .count(self.database().connection())
            .await
            .map_err(store_error)
    }

    pub(crate) async fn mark_read(
        &self,
        user: UserId,
        up_to: Uuid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let connection = self.database().connection();
        let Some(last) = notifications::Entity::find_by_id(up_to)
            .filter(notifications::Column::UserId.eq(user.as_uuid()))
            .one(connection)
            .await
            .map_err(store_error)?
        else {
            return Ok(false);
        };
        let _gate = self.database().write_gate().await;
        notifications::Entity::update_many()
            .col_expr(notifications::Column::ReadAt, Expr::value(db_time(now)))
            .filter(notifications::Column::UserId.eq(user.as_uuid()))
            .filter(notifications::Column::ReadAt.is_null())
            .filter(
                Condition::any()
                    .add(notifications::Column::At.lt(last.at))
                    .add(
                        Condition::all()
                            .add(notifications::Column::At.eq(last.at))
                            .add(notifications::Column::Id.lte(last.id)),
                    ),
            )
            .exec(connection)
            .await
            .map_err(store_error)?;
        Ok(true)
    }
}
