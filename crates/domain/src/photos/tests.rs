use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use mockall::predicate::eq;
use proptest::prelude::*;

use super::*;
use crate::engine::tests::item_at;
use crate::item::{ItemStatus, ListedItem};
use crate::ports::{MockAuctionStore, MockClock};

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

fn clock() -> Arc<MockClock> {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(t0());
    Arc::new(clock)
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    futures_executor::block_on(future)
}

fn encoded(format: ImageFormat, fill: u8, side: u32) -> EncodedImage {
    EncodedImage::new(format, vec![fill; 16], side, side / 2)
}

/// A stream of `bytes` in one piece, as storage hands it out.
fn streamed(bytes: &[u8]) -> ByteStream {
    Box::pin(futures_util::stream::iter([Ok(bytes.to_vec())]))
}

fn collected(stream: ByteStream) -> Vec<u8> {
    use futures_util::StreamExt;
    run(stream.collect::<Vec<_>>())
        .into_iter()
        .flat_map(Result::unwrap)
        .collect()
}

#[test]
fn a_photo_is_added_to_an_open_item_below_the_limit_only() {
    let open = item_at(t0(), 100, 5);
    assert_eq!(may_add(&open, 0, t0()), Ok(()));
    assert_eq!(may_add(&open, MAX_PHOTOS_PER_ITEM - 1, t0()), Ok(()));
    assert_eq!(
        may_add(&open, MAX_PHOTOS_PER_ITEM, t0()),
        Err(PhotoRejection::TooManyPhotos)
    );
    // Past its close time it is closed, whatever the closer has done yet.
    assert_eq!(
        may_add(&open, 0, open.close_at),
        Err(PhotoRejection::AuctionClosed)
    );
    for status in [
        ItemStatus::Cancelled,
        ItemStatus::Closed(crate::CloseOutcome::Unsold),
    ] {
        let done = Item {
            status,
            ..open.clone()
        };
        assert_eq!(may_add(&done, 0, t0()), Err(PhotoRejection::AuctionClosed));
    }
}

#[test]
fn a_photo_is_removed_only_before_the_first_bid() {
    assert_eq!(may_remove(&PublicStanding::default()), Ok(()));
    let bid_on = PublicStanding {
        bid_count: 1,
        current_price: None,
    };
    assert_eq!(may_remove(&bid_on), Err(PhotoRejection::ItemHasBids));
}

#[test]
fn a_new_order_names_exactly_the_items_photos() {
    let [a, b, c] = [
        PhotoId::generate(),
        PhotoId::generate(),
        PhotoId::generate(),
    ];
    assert_eq!(check_order(&[a, b, c], &[c, a, b]), Ok(()));
    assert_eq!(check_order(&[], &[]), Ok(()));
    for wrong in [
        vec![a, b],
        vec![a, b, c, c],
        vec![a, a, b],
        vec![a, b, PhotoId::generate()],
    ] {
        assert_eq!(
            check_order(&[a, b, c], &wrong),
            Err(NotTheItemsPhotos),
            "{wrong:?}"
        );
    }
}

#[test]
fn a_media_key_is_the_hex_digest_of_its_bytes_and_its_extension() {
    let key = MediaKey::for_bytes(b"abc", ImageFormat::Png);
    assert_eq!(
        key.as_str(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.png"
    );
    assert_eq!(key.digest().len(), 64);
    assert_eq!(key.format(), ImageFormat::Png);
    assert_eq!(key.to_string(), key.as_str());
    assert_eq!(MediaKey::parse(key.as_str()), Some(key.clone()));
    for format in ImageFormat::ALL {
        let key = MediaKey::for_bytes(b"x", format);
        assert_eq!(MediaKey::parse(key.as_str()).unwrap().format(), format);
        assert!(format.content_type().starts_with("image/"));
    }
    let digest = key.digest().to_owned();
    for refused in [
        format!("{digest}.gif"),
        digest.clone(),
        format!("{}.png", digest.to_uppercase()),
        format!("{}.png", &digest[1..]),
        format!("../{}.png", &digest[3..]),
        format!("{digest}.png.png"),
        String::new(),
    ] {
        assert_eq!(MediaKey::parse(&refused), None, "{refused}");
    }
}

proptest! {
    #[test]
    fn only_what_for_bytes_makes_parses(name in "[0-9a-z./]{0,80}") {
        if let Some(key) = MediaKey::parse(&name) {
            prop_assert_eq!(key.as_str(), name.as_str());
            prop_assert_eq!(key.digest().len(), 64);
        }
    }
}

struct Ports {
    auctions: MockAuctionStore,
    photos: MockPhotoStore,
    media: MockMediaStore,
    processor: MockImageProcessor,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            auctions: MockAuctionStore::new(),
            photos: MockPhotoStore::new(),
            media: MockMediaStore::new(),
            processor: MockImageProcessor::new(),
        }
    }

    fn with_item(mut self, item: &Item, photos: usize) -> Ports {
        let listed = ListedItem {
            item: item.clone(),
            standing: PublicStanding::default(),
        };
        self.auctions
            .expect_listed_item()
            .with(eq(item.id))
            .returning(move |_| Ok(Some(listed.clone())));
        self.photos
            .expect_photo_count()
            .returning(move |_| Ok(photos));
        self
    }

    fn service(self) -> PhotoService {
        PhotoService::new(
            Arc::new(self.auctions),
            Arc::new(self.photos),
            Arc::new(self.media),
            Arc::new(self.processor),
            clock(),
        )
    }
}

#[test]
fn an_upload_is_processed_stored_by_its_digest_and_recorded() {
    let item = item_at(t0(), 100, 5);
    let mut ports = Ports::new().with_item(&item, 2);
    let image = encoded(ImageFormat::WebP, 1, 1200);
    let thumbnail = encoded(ImageFormat::WebP, 2, 480);
    let processed = ProcessedPhoto {
        image: image.clone(),
        thumbnail: Some(thumbnail.clone()),
    };
    ports
        .processor
        .expect_process()
        .with(eq(b"upload".to_vec()))
        .return_once(move |_| Ok(processed));
    for stored in [&image, &thumbnail] {
        let (key, bytes) = (
            MediaKey::for_bytes(&stored.bytes, stored.format),
            stored.bytes.clone(),
        );
        assert_eq!(key, stored.key);
        // Stored once: after the row is written, it is found there.
        ports
            .media
            .expect_put()
            .withf(move |k, b| *k == key && b == bytes.as_slice())
            .times(1)
            .returning(|_, _| Ok(()));
    }
    ports
        .media
        .expect_read()
        .withf(|_, range| *range == (0..1))
        .times(2)
        .returning(|_, _| Ok(Some(streamed(b"x"))));
    let id = item.id;
    ports
        .photos
        .expect_add_photo()
        .withf(move |photo, _| photo.item == id && photo.thumbnail.width == 480)
        .times(1)
        .returning(|_, _| Ok(()));
    let photo = run(ports.service().upload(item.id, b"upload".to_vec())).unwrap();
    assert_eq!(photo.image.key.format(), ImageFormat::WebP);
    assert_eq!((photo.image.width, photo.image.height), (1200, 600));
    assert_eq!(photo.image.bytes, 16);
    assert_ne!(photo.image.key, photo.thumbnail.key);
    assert_eq!(photo.created_at, t0());
}

#[test]
fn an_image_no_larger_than_a_thumbnail_is_its_own_thumbnail() {
    let item = item_at(t0(), 100, 5);
    let mut ports = Ports::new().with_item(&item, 0);
    let image = encoded(ImageFormat::Png, 3, 300);
    let processed = ProcessedPhoto {
        image,
        thumbnail: None,
    };
    ports
        .processor
        .expect_process()
        .return_once(move |_| Ok(processed));
    // The purge deleted the image just before the row named it: stored again.
    ports.media.expect_put().times(2).returning(|_, _| Ok(()));
    ports.photos.expect_add_photo().returning(|_, _| Ok(()));
    ports
        .media
        .expect_read()
        .times(1)
        .returning(|_, _| Ok(None));
    let photo = run(ports.service().upload(item.id, vec![0])).unwrap();
    assert_eq!(photo.thumbnail, photo.image);
}

#[test]
fn what_the_rules_or_the_processor_refuse_stores_nothing() {
    let item = item_at(t0(), 100, 5);
    let full = Ports::new().with_item(&item, MAX_PHOTOS_PER_ITEM);
    // No expectation on the processor, the media or add_photo: none is called.
    let refused = run(full.service().upload(item.id, vec![0]));
    assert!(matches!(
        refused,
        Err(AddPhotoError::Rejected(PhotoRejection::TooManyPhotos))
    ));

    let mut garbage = Ports::new().with_item(&item, 0);
    garbage
        .processor
        .expect_process()
        .returning(|_| Err(InvalidImage("not a JPEG, PNG or WebP image".into()).into()));
    let refused = run(garbage.service().upload(item.id, b"<html>".to_vec()));
    assert!(matches!(refused, Err(AddPhotoError::Invalid(_))));

    let mut missing = Ports::new();
    missing
        .auctions
        .expect_listed_item()
        .returning(|_| Ok(None));
    let refused = run(missing.service().upload(ItemId::generate(), vec![0]));
    assert!(matches!(refused, Err(AddPhotoError::ItemNotFound)));
}

#[test]
fn the_purge_deletes_only_old_objects_no_photo_names() {
    let mut ports = Ports::new();
    let [old_orphan, old_used, young_orphan] =
        [1u8, 2, 3].map(|n| MediaKey::for_bytes(&[n], ImageFormat::Jpeg));
    let objects = vec![
        StoredObject {
            key: old_orphan.clone(),
            written_at: t0() - Duration::hours(2),
        },
        StoredObject {
            key: old_used.clone(),
            written_at: t0() - Duration::hours(2),
        },
        StoredObject {
            key: young_orphan,
            written_at: t0() - Duration::minutes(5),
        },
    ];
    ports.media.expect_list().return_once(move || Ok(objects));
    let (asked, orphan) = (vec![old_orphan.clone(), old_used], old_orphan.clone());
    ports
        .photos
        .expect_unreferenced()
        .withf(move |keys| keys == asked.as_slice())
        .return_once(move |_| Ok(vec![orphan]));
    // Looked at again under the name's lock, where it is deleted.
    ports
        .photos
        .expect_delete_if_unreferenced()
        .withf(move |key, _| *key == old_orphan)
        .times(1)
        .returning(|_, _| Ok(true));
    assert_eq!(run(ports.service().purge(Duration::hours(1))).unwrap(), 1);
}

#[test]
fn reading_serves_named_images_and_a_missing_object_is_an_integrity_failure() {
    let key = MediaKey::for_bytes(b"img", ImageFormat::Jpeg);
    let mut ports = Ports::new();
    ports
        .photos
        .expect_image_length()
        .with(eq(key.clone()))
        .returning(|_| Ok(Some(3)));
    let mut reads = 0;
    ports.media.expect_read().returning(move |_, range| {
        reads += 1;
        Ok((reads == 1).then(|| streamed(&b"img"[range.start as usize..range.end as usize])))
    });
    let item = ItemId::generate();
    ports
        .photos
        .expect_photos_of()
        .withf(move |items| items == [item])
        .times(1)
        .returning(|_| Ok(HashMap::new()));
    let service = ports.service();
    assert_eq!(run(service.image_length(&key)).unwrap(), Some(3));
    assert_eq!(collected(run(service.read(&key, 1..3)).unwrap()), b"mg");
    assert!(matches!(
        run(service.read(&key, 0..3)),
        Err(StoreError::Integrity(_))
    ));
    assert!(run(service.photos_of(&[])).unwrap().is_empty());
    assert!(run(service.photos_of(&[item])).unwrap().is_empty());
    // An image prints its length, not its bytes.
    let image = encoded(ImageFormat::Png, 7, 64);
    assert_eq!(
        format!("{image:?}"),
        "EncodedImage { format: Png, bytes: 16, width: 64, height: 32 }"
    );
}

#[test]
fn removing_and_ordering_go_to_the_store_under_the_items_lock() {
    let (item, photo) = (ItemId::generate(), PhotoId::generate());
    let mut ports = Ports::new();
    ports
        .photos
        .expect_remove_photo()
        .with(eq(item), eq(photo))
        .returning(|_, _| Err(ChangePhotosError::Rejected(PhotoRejection::ItemHasBids)));
    ports
        .photos
        .expect_reorder_photos()
        .with(eq(item), eq(vec![photo]))
        .returning(|_, _| Ok(()));
    let service = ports.service();
    assert!(matches!(
        run(service.remove(item, photo)),
        Err(ChangePhotosError::Rejected(PhotoRejection::ItemHasBids))
    ));
    run(service.reorder(item, vec![photo])).unwrap();
    assert!(format!("{service:?}").starts_with("PhotoService"));
}
