//! Item photos: the rules of adding, removing and ordering them, the names
//! stored images go by, and the ports that keep them.
//!
//! An upload is never stored as sent: a processor (an adapter, off the async
//! workers) decodes it and encodes a clean image and a thumbnail of its own.
//! Images are named by the SHA-256 of their bytes, so a name never changes
//! meaning and may be cached for ever; two items with the same photo share
//! the object. A photo's row is what makes its images public: a removed
//! photo's urls answer 404 at once, and the objects no row names are purged
//! later by the worker (so a crash between storing and recording leaves
//! nothing that is never cleaned).

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::ids::{ItemId, PhotoId};
use crate::item::{Item, PublicStanding, Timestamp};
use crate::ports::{AuctionStore, Clock, StoreError};

/// Photos an item may have.
pub const MAX_PHOTOS_PER_ITEM: usize = 8;
/// The largest upload, in bytes (10 MiB).
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
/// The most pixels an upload may have (width × height).
pub const MAX_PIXELS: u64 = 40_000_000;
/// A thumbnail's longer side, in pixels.
pub const THUMBNAIL_SIDE: u32 = 480;

/// The formats photos are accepted and served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    WebP,
}

impl ImageFormat {
    /// Every format, in the order the API lists them.
    pub const ALL: [ImageFormat; 3] = [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP];

    /// The file extension its images are named with.
    #[must_use]
    pub fn extension(&self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::WebP => "webp",
        }
    }

    /// The media type it is served as.
    #[must_use]
    pub fn content_type(&self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::WebP => "image/webp",
        }
    }
}

/// The name of a stored image: the SHA-256 of its bytes in lower-case hex,
/// a dot and its format's extension.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaKey(String);

impl MediaKey {
    /// The name of `bytes` encoded as `format`.
    #[must_use]
    pub fn for_bytes(bytes: &[u8], format: ImageFormat) -> MediaKey {
        let mut name = String::with_capacity(64 + 5);
        for byte in Sha256::digest(bytes) {
            // Writing to a String cannot fail.
            let _ = write!(name, "{byte:02x}");
        }
        name.push('.');
        name.push_str(format.extension());
        MediaKey(name)
    }

    /// The key `name` spells, if it is one (anything else names nothing).
    #[must_use]
    pub fn parse(name: &str) -> Option<MediaKey> {
        let (digest, extension) = name.split_once('.')?;
        let hex_digest = digest.len() == 64
            && digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let known = ImageFormat::ALL
            .iter()
            .any(|format| format.extension() == extension);
        (hex_digest && known).then(|| MediaKey(name.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex digest, which is also the image's entity tag.
    #[must_use]
    pub fn digest(&self) -> &str {
        self.0.split_once('.').map_or(&self.0, |(digest, _)| digest)
    }

    /// The format its extension names.
    #[must_use]
    pub fn format(&self) -> ImageFormat {
        let extension = self.0.rsplit('.').next().unwrap_or_default();
        ImageFormat::ALL
            .into_iter()
            .find(|format| format.extension() == extension)
            .unwrap_or(ImageFormat::Jpeg)
    }
}

impl fmt::Display for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image as a processor made it, before it is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedImage {
    /// Its format (the upload's).
    pub format: ImageFormat,
    /// The encoded bytes.
    pub bytes: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Its name, from its bytes.
    pub key: MediaKey,
}

impl EncodedImage {
    /// `bytes` of `format`, named by their digest (computed here, so a
    /// processor hashes on its own thread, not on an async worker).
    #[must_use]
    pub fn new(format: ImageFormat, bytes: Vec<u8>, width: u32, height: u32) -> Self {
        let key = MediaKey::for_bytes(&bytes, format);
        EncodedImage {
            format,
            bytes,
            width,
            height,
            key,
        }
    }
}

impl fmt::Debug for EncodedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedImage")
            .field("format", &self.format)
            .field("bytes", &self.bytes.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// A processed upload: the clean image, and its thumbnail when the image is
/// larger than one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessedPhoto {
    /// The image, oriented, without metadata.
    pub image: EncodedImage,
    /// The thumbnail, or `None` when the image is no larger than one.
    pub thumbnail: Option<EncodedImage>,
}

/// A stored image: its name, size in pixels and length in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredImage {
    /// Its name.
    pub key: MediaKey,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Length in bytes.
    pub bytes: u64,
}

impl StoredImage {
    fn of(image: &EncodedImage) -> StoredImage {
        StoredImage {
            key: image.key.clone(),
            width: image.width,
            height: image.height,
            bytes: u64::try_from(image.bytes.len()).unwrap_or(u64::MAX),
        }
    }
}

/// A photo of an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Photo {
    /// Its id.
    pub id: PhotoId,
    /// The item it shows.
    pub item: ItemId,
    /// The image.
    pub image: StoredImage,
    /// The thumbnail (the image itself when that is no larger).
    pub thumbnail: StoredImage,
    /// When it was uploaded.
    pub created_at: Timestamp,
}

/// Why a photo may not be added or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum PhotoRejection {
    /// The item already has [`MAX_PHOTOS_PER_ITEM`].
    #[error("the item has {MAX_PHOTOS_PER_ITEM} photos, the most it may have")]
    TooManyPhotos,
    /// Closed, cancelled, or past its close time.
    #[error("the auction is closed")]
    AuctionClosed,
    /// Somebody bid: the photos they bid on stay.
    #[error("the item has bids")]
    ItemHasBids,
}

/// Whether `item`, having `photos` photos, takes another at `now`.
///
/// # Errors
/// [`PhotoRejection::AuctionClosed`] unless it takes bids;
/// [`PhotoRejection::TooManyPhotos`] at the limit.
pub fn may_add(item: &Item, photos: usize, now: Timestamp) -> Result<(), PhotoRejection> {
    if !item.accepts_bids_at(now) {
        return Err(PhotoRejection::AuctionClosed);
    }
    if photos >= MAX_PHOTOS_PER_ITEM {
        return Err(PhotoRejection::TooManyPhotos);
    }
    Ok(())
}

/// Whether a photo may be removed from an item with this standing.
///
/// # Errors
/// [`PhotoRejection::ItemHasBids`] once anybody bid.
pub fn may_remove(standing: &PublicStanding) -> Result<(), PhotoRejection> {
    if standing.bid_count > 0 {
        return Err(PhotoRejection::ItemHasBids);
    }
    Ok(())
}

/// A new order must name exactly the item's photos, each once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("must list each of the item's photos exactly once")]
pub struct NotTheItemsPhotos;

/// Checks `wanted` against the item's `current` photos.
///
/// # Errors
/// [`NotTheItemsPhotos`] for a missing, foreign or repeated id.
pub fn check_order(current: &[PhotoId], wanted: &[PhotoId]) -> Result<(), NotTheItemsPhotos> {
    let mut current = current.to_vec();
    let mut wanted = wanted.to_vec();
    current.sort_unstable();
    wanted.sort_unstable();
    if current == wanted {
        Ok(())
    } else {
        Err(NotTheItemsPhotos)
    }
}

/// Why an upload was not decoded: it is not a JPEG, PNG or WebP image, or it
/// breaks a limit. The message says which, for the client.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct InvalidImage(pub String);

/// Why a photo was not added.
#[derive(Debug, Error)]
pub enum AddPhotoError {
    /// No item has that id.
    #[error("item not found")]
    ItemNotFound,
    /// The item's rules refused it.
    #[error(transparent)]
    Rejected(#[from] PhotoRejection),
    /// The upload is not an image this service takes.
    #[error(transparent)]
    Invalid(#[from] InvalidImage),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a photo was not removed or the photos not reordered.
#[derive(Debug, Error)]
pub enum ChangePhotosError {
    /// No item has that id.
    #[error("item not found")]
    ItemNotFound,
    /// The item has no photo with that id.
    #[error("photo not found")]
    PhotoNotFound,
    /// The item's rules refused it.
    #[error(transparent)]
    Rejected(#[from] PhotoRejection),
    /// A new order that is not exactly the item's photos.
    #[error(transparent)]
    NotTheItemsPhotos(#[from] NotTheItemsPhotos),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where photo rows live.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PhotoStore: Send + Sync {
    /// How many photos an item has.
    ///
    /// # Errors
    /// When the store fails.
    async fn photo_count(&self, item: ItemId) -> Result<usize, StoreError>;

    /// Adds `photo` last under the item's lock, if [`may_add`] at `now`
    /// read there.
    ///
    /// # Errors
    /// [`AddPhotoError::ItemNotFound`], [`AddPhotoError::Rejected`], or the
    /// store's failure.
    async fn add_photo(&self, photo: Photo, clock: Arc<dyn Clock>) -> Result<(), AddPhotoError>;

    /// Removes a photo under the item's lock, if [`may_remove`].
    ///
    /// # Errors
    /// [`ChangePhotosError`] but `NotTheItemsPhotos`.
    async fn remove_photo(&self, item: ItemId, photo: PhotoId) -> Result<(), ChangePhotosError>;

    /// Puts the item's photos in `order` under its lock, if
    /// [`check_order`] accepts it.
    ///
    /// # Errors
    /// [`ChangePhotosError`] but `PhotoNotFound` and `Rejected`.
    async fn reorder_photos(
        &self,
        item: ItemId,
        order: Vec<PhotoId>,
    ) -> Result<(), ChangePhotosError>;

    /// The photos of each item that has any, in display order.
    ///
    /// # Errors
    /// When the store fails, or a row is not a valid photo.
    async fn photos_of(&self, items: &[ItemId]) -> Result<HashMap<ItemId, Vec<Photo>>, StoreError>;

    /// The length of the image `key` names if a photo shows it (as image or
    /// thumbnail), else `None`: only those are served.
    ///
    /// # Errors
    /// When the store fails.
    async fn image_length(&self, key: &MediaKey) -> Result<Option<u64>, StoreError>;

    /// Those of `keys` no photo names.
    ///
    /// # Errors
    /// When the store fails.
    async fn unreferenced(&self, keys: &[MediaKey]) -> Result<Vec<MediaKey>, StoreError>;

    /// Deletes `key` from `media` if no photo names it; whether it did.
    /// Decided under a lock on the name that [`PhotoStore::add_photo`]
    /// takes too, so a photo recorded meanwhile keeps its image (its upload
    /// then finds the image gone and stores it again).
    ///
    /// # Errors
    /// When the store or the storage fails.
    async fn delete_if_unreferenced(
        &self,
        key: &MediaKey,
        media: Arc<dyn MediaStore>,
    ) -> Result<bool, StoreError>;
}

/// Bytes as they come from storage.
pub type ByteStream = BoxStream<'static, Result<Vec<u8>, StoreError>>;

/// A stored object's name and when it was last written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// Its name.
    pub key: MediaKey,
    /// When it was last written.
    pub written_at: Timestamp,
}

/// Where image bytes live: a directory or an S3-compatible bucket.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Stores `bytes` as `key` (the same name always holds the same bytes,
    /// so writing it again is harmless).
    ///
    /// # Errors
    /// When the storage fails.
    async fn put(&self, key: &MediaKey, bytes: &[u8]) -> Result<(), StoreError>;

    /// The bytes of `key` in `range`, as they come, or `None` when it is
    /// not stored.
    ///
    /// # Errors
    /// When the storage fails (also in the stream, midway).
    async fn read(
        &self,
        key: &MediaKey,
        range: Range<u64>,
    ) -> Result<Option<ByteStream>, StoreError>;

    /// Every stored image (names that are not [`MediaKey`]s are left out:
    /// they are not this service's).
    ///
    /// # Errors
    /// When the storage fails.
    async fn list(&self) -> Result<Vec<StoredObject>, StoreError>;

    /// Deletes `key`; deleting what is not there is no error.
    ///
    /// # Errors
    /// When the storage fails.
    async fn delete(&self, key: &MediaKey) -> Result<(), StoreError>;
}

/// Turns an upload into a clean image and thumbnail, off the async workers.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ImageProcessor: Send + Sync {
    /// The upload decoded and encoded again in its own format, oriented and
    /// without metadata, with its thumbnail.
    ///
    /// # Errors
    /// [`AddPhotoError::Invalid`] for anything that is not a JPEG, PNG or
    /// WebP image within [`MAX_PIXELS`]; [`StoreError::Busy`] when too many
    /// uploads are being processed already.
    async fn process(&self, upload: Vec<u8>) -> Result<ProcessedPhoto, AddPhotoError>;
}

/// Uploading, removing, ordering, serving and purging photos.
#[derive(Clone)]
pub struct PhotoService {
    auctions: Arc<dyn AuctionStore>,
    photos: Arc<dyn PhotoStore>,
    media: Arc<dyn MediaStore>,
    processor: Arc<dyn ImageProcessor>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for PhotoService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhotoService").finish_non_exhaustive()
    }
}

impl PhotoService {
    /// A service over these ports.
    #[must_use]
    pub fn new(
        auctions: Arc<dyn AuctionStore>,
        photos: Arc<dyn PhotoStore>,
        media: Arc<dyn MediaStore>,
        processor: Arc<dyn ImageProcessor>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        PhotoService {
            auctions,
            photos,
            media,
            processor,
            clock,
        }
    }

    /// Adds `upload` as the item's last photo. What the item's rules refuse
    /// is refused before any work, so a refused upload stores nothing; the
    /// rules are checked again under the item's lock, and the images of an
    /// upload that then loses a race are left to [`PhotoService::purge`].
    ///
    /// # Errors
    /// [`AddPhotoError`].
    pub async fn upload(&self, item: ItemId, upload: Vec<u8>) -> Result<Photo, AddPhotoError> {
        let listed = self
            .auctions
            .listed_item(item)
            .await?
            .ok_or(AddPhotoError::ItemNotFound)?;
        let count = self.photos.photo_count(item).await?;
        may_add(&listed.item, count, self.clock.now())?;
        let processed = self.processor.process(upload).await?;
        let image = self.store(&processed.image).await?;
        let thumbnail = match &processed.thumbnail {
            Some(thumbnail) => self.store(thumbnail).await?,
            None => image.clone(),
        };
        let photo = Photo {
            id: PhotoId::generate(),
            item,
            image,
            thumbnail,
            created_at: self.clock.now(),
        };
        self.photos
            .add_photo(photo.clone(), Arc::clone(&self.clock))
            .await?;
        // A purge may have deleted an image of the same bytes just before
        // the row named it: it is stored again (see `delete_if_unreferenced`).
        for image in [&processed.image]
            .into_iter()
            .chain(processed.thumbnail.as_ref())
        {
            if self.media.read(&image.key, 0..1).await?.is_none() {
                self.media.put(&image.key, &image.bytes).await?;
            }
        }
        Ok(photo)
    }

    async fn store(&self, image: &EncodedImage) -> Result<StoredImage, StoreError> {
        self.media.put(&image.key, &image.bytes).await?;
        Ok(StoredImage::of(image))
    }

    /// Removes a photo; its urls answer 404 from now on.
    ///
    /// # Errors
    /// [`ChangePhotosError`].
    pub async fn remove(&self, item: ItemId, photo: PhotoId) -> Result<(), ChangePhotosError> {
        self.photos.remove_photo(item, photo).await
    }

    /// Shows the item's photos in `order`.
    ///
    /// # Errors
    /// [`ChangePhotosError`].
    pub async fn reorder(
        &self,
        item: ItemId,
        order: Vec<PhotoId>,
    ) -> Result<(), ChangePhotosError> {
        self.photos.reorder_photos(item, order).await
    }

    /// The photos of `items`, each item's in display order.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn photos_of(
        &self,
        items: &[ItemId],
    ) -> Result<HashMap<ItemId, Vec<Photo>>, StoreError> {
        if items.is_empty() {
            return Ok(HashMap::new());
        }
        self.photos.photos_of(items).await
    }

    /// The length of a served image, or `None` for a name no photo shows.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn image_length(&self, key: &MediaKey) -> Result<Option<u64>, StoreError> {
        self.photos.image_length(key).await
    }

    /// The bytes of a served image in `range` (within its length).
    ///
    /// # Errors
    /// The storage's failure; an image a photo names that is not stored is
    /// an integrity failure.
    pub async fn read(&self, key: &MediaKey, range: Range<u64>) -> Result<ByteStream, StoreError> {
        self.media.read(key, range).await?.ok_or_else(|| {
            StoreError::Integrity(format!(
                "the image {key} is named by a photo but not stored"
            ))
        })
    }

    /// Deletes the stored images no photo names that were last written more
    /// than `grace` ago (younger ones may belong to an upload in progress);
    /// how many.
    ///
    /// # Errors
    /// The store's or the storage's failure.
    pub async fn purge(&self, grace: chrono::Duration) -> Result<u64, StoreError> {
        let before = self.clock.now() - grace;
        let old: Vec<MediaKey> = self
            .media
            .list()
            .await?
            .into_iter()
            .filter(|object| object.written_at < before)
            .map(|object| object.key)
            .collect();
        let mut purged = 0;
        for chunk in old.chunks(500) {
            for key in self.photos.unreferenced(chunk).await? {
                // Looked at again under the name's lock before it goes.
                if self
                    .photos
                    .delete_if_unreferenced(&key, Arc::clone(&self.media))
                    .await?
                {
                    purged += 1;
                }
            }
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests;
