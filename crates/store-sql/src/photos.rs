//! The [`PhotoStore`] port on SQL: photo rows, changed under the item's row
//! lock (as bids take it), so an upload, a removal and a first bid racing
//! are decided one after the other.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use pp_domain::photos::{
    self, AddPhotoError, ChangePhotosError, MediaKey, MediaStore, Photo, PhotoStore, StoredImage,
};
use pp_domain::ports::{Clock, StoreError};
use pp_domain::{ItemId, PhotoId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use crate::SqlStore;
use crate::auction::{db_time, listed_from_row, small};
use crate::entities::{item_photos, items};
use crate::errors::{integrity, store_error};
use crate::transaction::{TxFailure, with_retries};

fn stored_image(key: &str, width: i32, height: i32, bytes: i64) -> Result<StoredImage, StoreError> {
    let key = MediaKey::parse(key)
        .ok_or_else(|| integrity(format_args!("item_photos: {key:?} is not a media key")))?;
    let pixels =
        |value: i32| u32::try_from(value).map_err(|_| integrity("item_photos: a negative size"));
    Ok(StoredImage {
        key,
        width: pixels(width)?,
        height: pixels(height)?,
        bytes: u64::try_from(bytes).map_err(|_| integrity("item_photos: a negative length"))?,
    })
}

fn photo_from_row(row: &item_photos::Model) -> Result<Photo, StoreError> {
    Ok(Photo {
        id: PhotoId::from_uuid(row.id),
        item: ItemId::from_uuid(row.item_id),
        image: stored_image(
            &row.image_key,
            row.image_width,
            row.image_height,
            row.image_bytes,
        )?,
        thumbnail: stored_image(
            &row.thumb_key,
            row.thumb_width,
            row.thumb_height,
            row.thumb_bytes,
        )?,
        created_at: row.created_at,
    })
}

fn length(bytes: u64) -> Result<i64, StoreError> {
    i64::try_from(bytes).map_err(|_| integrity("an image's length out of range"))
}

/// The item's row, locked until the transaction ends.
async fn lock_item<E>(
    txn: &impl ConnectionTrait,
    item: ItemId,
    not_found: E,
) -> Result<items::Model, TxFailure<E>> {
    items::Entity::find_by_id(item.as_uuid())
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(TxFailure::Outcome(not_found))
}

/// Takes, until the transaction ends, PostgreSQL's lock on each of
/// `keys` (in one order, so two takers never wait for each other): an
/// upload's row and the purge's delete of one name are decided one after
/// the other. SQLite's write transactions already run one at a time.
async fn lock_names(txn: &impl ConnectionTrait, keys: &[&MediaKey]) -> Result<(), sea_orm::DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let mut names: Vec<&str> = keys.iter().map(|key| key.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [name.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The photos that show any of `names`, as image or thumbnail.
fn naming(names: &[&str]) -> Condition {
    Condition::any()
        .add(item_photos::Column::ImageKey.is_in(names.iter().copied()))
        .add(item_photos::Column::ThumbKey.is_in(names.iter().copied()))
}

/// The item's photo ids in display order.
async fn photo_ids(txn: &impl ConnectionTrait, item: ItemId) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    item_photos::Entity::find()
        .select_only()
        .column(item_photos::Column::Id)
        .filter(item_photos::Column::ItemId.eq(item.as_uuid()))
        .order_by_asc(item_photos::Column::Position)
        .order_by_asc(item_photos::Column::Id)
        .into_tuple()
        .all(txn)
        .await
}

/// Numbers `order`'s photos 0, 1, … in that order.
async fn renumber(txn: &impl ConnectionTrait, order: &[Uuid]) -> Result<(), sea_orm::DbErr> {
    for (position, id) in order.iter().enumerate() {
        item_photos::Entity::update_many()
            .col_expr(
                item_photos::Column::Position,
                Expr::value(i32::try_from(position).unwrap_or(i32::MAX)),
            )
            .filter(item_photos::Column::Id.eq(*id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

impl SqlStore {
    async fn try_add_photo(
        &self,
        photo: &Photo,
        clock: &Arc<dyn Clock>,
    ) -> Result<(), TxFailure<AddPhotoError>> {
        let tx = self.database().begin_write().await?;
        let result = async {
            let row = lock_item(&tx.txn, photo.item, AddPhotoError::ItemNotFound).await?;
            let listed = listed_from_row(&row).map_err(TxFailure::outcome)?;
            let count = item_photos::Entity::find()
                .filter(item_photos::Column::ItemId.eq(row.id))
                .count(&tx.txn)
                .await?;
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            photos::may_add(&listed.item, count, clock.now()).map_err(TxFailure::outcome)?;
            lock_names(&tx.txn, &[&photo.image.key, &photo.thumbnail.key]).await?;
            let size = |value: u32| small(value, "an image's size").map_err(TxFailure::outcome);
            item_photos::Entity::insert(item_photos::ActiveModel {
                id: Set(photo.id.as_uuid()),
                item_id: Set(row.id),
                position: Set(small(count, "a photo's position").map_err(TxFailure::outcome)?),
                image_key: Set(photo.image.key.as_str().to_owned()),
                image_width: Set(size(photo.image.width)?),
                image_height: Set(size(photo.image.height)?),
                image_bytes: Set(length(photo.image.bytes).map_err(TxFailure::outcome)?),
                thumb_key: Set(photo.thumbnail.key.as_str().to_owned()),
                thumb_width: Set(size(photo.thumbnail.width)?),
                thumb_height: Set(size(photo.thumbnail.height)?),
                thumb_bytes: Set(length(photo.thumbnail.bytes).map_err(TxFailure::outcome)?),
                created_at: Set(db_time(photo.created_at)),
            })
            .exec_without_returning(&tx.txn)
            .await?;
            Ok(())
        }
        .await;
        tx.finish(result).await
    }

    async fn try_remove_photo(
        &self,
        item: ItemId,
        photo: PhotoId,
    ) -> Result<(), TxFailure<ChangePhotosError>> {
        let tx = self.database().begin_write().await?;
        let result = async {
            let row = lock_item(&tx.txn, item, ChangePhotosError::ItemNotFound).await?;
            let listed = listed_from_row(&row).map_err(TxFailure::outcome)?;
            let mut order = photo_ids(&tx.txn, item).await?;
            let Some(at) = order.iter().position(|id| *id == photo.as_uuid()) else {
                return Err(TxFailure::Outcome(ChangePhotosError::PhotoNotFound));
            };
            photos::may_remove(&listed.standing).map_err(TxFailure::outcome)?;
            item_photos::Entity::delete_by_id(photo.as_uuid())
                .exec(&tx.txn)
                .await?;
            order.remove(at);
            renumber(&tx.txn, &order).await?;
            Ok(())
        }
        .await;
        tx.finish(result).await
    }

    async fn try_reorder_photos(
        &self,
        item: ItemId,
        order: &[PhotoId],
    ) -> Result<(), TxFailure<ChangePhotosError>> {
        let tx = self.database().begin_write().await?;
        let result = async {
            lock_item(&tx.txn, item, ChangePhotosError::ItemNotFound).await?;
            let current: Vec<PhotoId> = photo_ids(&tx.txn, item)
                .await?
                .into_iter()
                .map(PhotoId::from_uuid)
                .collect();
            photos::check_order(&current, order).map_err(TxFailure::outcome)?;
            let wanted: Vec<Uuid> = order.iter().map(PhotoId::as_uuid).collect();
            renumber(&tx.txn, &wanted).await?;
            Ok(())
        }
        .await;
        tx.finish(result).await
    }
}

#[async_trait]
impl PhotoStore for SqlStore {
    async fn photo_count(&self, item: ItemId) -> Result<usize, StoreError> {
        let count = item_photos::Entity::find()
            .filter(item_photos::Column::ItemId.eq(item.as_uuid()))
            .count(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    async fn add_photo(&self, photo: Photo, clock: Arc<dyn Clock>) -> Result<(), AddPhotoError> {
        with_retries(|| self.try_add_photo(&photo, &clock)).await
    }

    async fn remove_photo(&self, item: ItemId, photo: PhotoId) -> Result<(), ChangePhotosError> {
        with_retries(|| self.try_remove_photo(item, photo)).await
    }

    async fn reorder_photos(
        &self,
        item: ItemId,
        order: Vec<PhotoId>,
    ) -> Result<(), ChangePhotosError> {
        with_retries(|| self.try_reorder_photos(item, &order)).await
    }

    async fn photos_of(&self, items: &[ItemId]) -> Result<HashMap<ItemId, Vec<Photo>>, StoreError> {
        let rows = item_photos::Entity::find()
            .filter(item_photos::Column::ItemId.is_in(items.iter().map(ItemId::as_uuid)))
            .order_by_asc(item_photos::Column::ItemId)
            .order_by_asc(item_photos::Column::Position)
            .order_by_asc(item_photos::Column::Id)
            .all(self.database().connection())
            .await
            .map_err(store_error)?;
        let mut photos: HashMap<ItemId, Vec<Photo>> = HashMap::new();
        for row in &rows {
            let photo = photo_from_row(row)?;
            photos.entry(photo.item).or_default().push(photo);
        }
        Ok(photos)
    }

    async fn image_length(&self, key: &MediaKey) -> Result<Option<u64>, StoreError> {
        let row = item_photos::Entity::find()
            .filter(naming(&[key.as_str()]))
            .one(self.database().connection())
            .await
            .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let bytes = if row.image_key == key.as_str() {
            row.image_bytes
        } else {
            row.thumb_bytes
        };
        u64::try_from(bytes)
            .map(Some)
            .map_err(|_| integrity("item_photos: a negative length"))
    }

    async fn delete_if_unreferenced(
        &self,
        key: &MediaKey,
        media: Arc<dyn MediaStore>,
    ) -> Result<bool, StoreError> {
        let tx = self.database().begin_write().await.map_err(store_error)?;
        let result: Result<bool, TxFailure<StoreError>> = async {
            lock_names(&tx.txn, &[key]).await?;
            let named = item_photos::Entity::find()
                .filter(naming(&[key.as_str()]))
                .count(&tx.txn)
                .await?;
            if named > 0 {
                return Ok(false);
            }
            media.delete(key).await.map_err(TxFailure::Outcome)?;
            Ok(true)
        }
        .await;
        match tx.finish(result).await {
            Ok(deleted) => Ok(deleted),
            Err(TxFailure::Outcome(error)) => Err(error),
            Err(TxFailure::Db(error)) => Err(store_error(error)),
        }
    }

    async fn unreferenced(&self, keys: &[MediaKey]) -> Result<Vec<MediaKey>, StoreError> {
        let names: Vec<&str> = keys.iter().map(MediaKey::as_str).collect();
        let rows = item_photos::Entity::find()
            .filter(naming(&names))
            .all(self.database().connection())
            .await
            .map_err(store_error)?;
        let named: std::collections::HashSet<&str> = rows
            .iter()
            .flat_map(|row| [row.image_key.as_str(), row.thumb_key.as_str()])
            .collect();
        Ok(keys
            .iter()
            .filter(|key| !named.contains(key.as_str()))
            .cloned()
            .collect())
    }
}
