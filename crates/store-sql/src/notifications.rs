//! Stored notifications: written in the transaction of the bid batch or
//! the close that causes them ([`insert_notifications`]), read and marked
//! by their user. What one says is sealed and bound to its row: an
//! `exhausted` notice names a poisoned bid's own budget, which the bids
//! table keeps sealed too.

use pp_domain::live::{Notification, NotificationData};
use pp_domain::notifications::{NotificationCursor, StoredNotification};
use pp_domain::ports::{SealBinding, Sealer, StoreError};
use pp_domain::{Timestamp, UserId};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::SqlStore;
use crate::auction::db_time;
use crate::entities::notifications;
use crate::errors::{integrity, store_error};

/// The name a notification's kind is stored under.
fn kind(data: &NotificationData) -> &'static str {
    match data {
        NotificationData::Outbid { .. } => "outbid",
        NotificationData::AutoRaised { .. } => "auto_raised",
        NotificationData::Exhausted { .. } => "exhausted",
        NotificationData::Won { .. } => "won",
        NotificationData::Lost { .. } => "lost",
    }
}

/// Stores `told`, each with the title of the item it is about, in the
/// caller's transaction.
pub(crate) async fn insert_notifications(
    txn: &impl ConnectionTrait,
    sealer: &dyn Sealer,
    told: &[(Notification, String)],
) -> Result<(), StoreError> {
    if told.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(told.len());
    for (notification, title) in told {
        let id = Uuid::now_v7();
        let plain = serde_json::to_vec(&notification.data)
            .map_err(|err| integrity(format_args!("a notification cannot be encoded: {err}")))?;
        let sealed = sealer
            .seal(&plain, &SealBinding::Notification { id })
            .map_err(|err| integrity(format_args!("sealing failed: {err}")))?;
        rows.push(notifications::ActiveModel {
            id: Set(id),
            user_id: Set(notification.user.as_uuid()),
            item_id: Set(notification.data.item().as_uuid()),
            item_title: Set(title.clone()),
            kind: Set(kind(&notification.data).to_owned()),
            at: Set(db_time(notification.at)),
            read_at: Set(None),
            sealed: Set(sealed),
        });
    }
    notifications::Entity::insert_many(rows)
        .exec_without_returning(txn)
        .await
        .map_err(store_error)?;
    Ok(())
}

impl SqlStore {
    fn open_notification(
        &self,
        row: notifications::Model,
    ) -> Result<StoredNotification, StoreError> {
        let plain = self
            .sealer()
            .open(&row.sealed, &SealBinding::Notification { id: row.id })
            .map_err(|err| {
                integrity(format_args!("notification {} does not open: {err}", row.id))
            })?;
        let data: NotificationData = serde_json::from_slice(&plain).map_err(|err| {
            integrity(format_args!("notification {} is malformed: {err}", row.id))
        })?;
        Ok(StoredNotification {
            id: row.id,
            item_title: row.item_title,
            notification: Notification {
                user: UserId::from_uuid(row.user_id),
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
        query
            .all(self.database().connection())
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|row| self.open_notification(row))
            .collect()
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
