//! Photo rows: added under the item's lock up to the limit and only while
//! it is open, removed only before the first bid, reordered to exactly the
//! item's photos; what serving and the purge ask of them.

use std::sync::Arc;

use chrono::Duration;
use pp_domain::photos::{
    AddPhotoError, ChangePhotosError, ImageFormat, MAX_PHOTOS_PER_ITEM, MediaKey, Photo,
    PhotoRejection, PhotoStore, StoredImage,
};
use pp_domain::ports::Clock;
use pp_domain::{ItemId, PhotoId};
use pp_testkit::Backend;

use crate::on_both_backends;
use crate::support::{Harness, plain};

fn image(seed: &[u8], side: u32) -> StoredImage {
    StoredImage {
        key: MediaKey::for_bytes(seed, ImageFormat::Jpeg),
        width: side,
        height: side / 2,
        bytes: 1000 + u64::from(side),
    }
}

fn photo(h: &Harness, item: ItemId, seed: &[u8]) -> Photo {
    let mut thumb_seed = seed.to_vec();
    thumb_seed.push(b't');
    Photo {
        id: PhotoId::generate(),
        item,
        image: image(seed, 1200),
        thumbnail: image(&thumb_seed, 480),
        created_at: h.clock.now(),
    }
}

fn clock(h: &Harness) -> Arc<dyn Clock> {
    h.clock.clone()
}

async fn order(h: &Harness, item: ItemId) -> Vec<PhotoId> {
    h.store
        .photos_of(&[item])
        .await
        .unwrap()
        .remove(&item)
        .unwrap_or_default()
        .iter()
        .map(|photo| photo.id)
        .collect()
}

async fn photos_are_added_in_order_up_to_the_limit_and_read_back_whole(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(100, 5).await.item.id;
    let other = h.item(100, 5).await.item.id;
    let mut added = Vec::new();
    for n in 0..MAX_PHOTOS_PER_ITEM {
        let photo = photo(&h, item, &[n as u8]);
        h.store.add_photo(photo.clone(), clock(&h)).await.unwrap();
        added.push(photo);
    }
    assert_eq!(
        h.store.photo_count(item).await.unwrap(),
        MAX_PHOTOS_PER_ITEM
    );
    let ninth = h.store.add_photo(photo(&h, item, b"9"), clock(&h)).await;
    assert!(matches!(
        ninth,
        Err(AddPhotoError::Rejected(PhotoRejection::TooManyPhotos))
    ));
    let read = h.store.photos_of(&[item, other]).await.unwrap();
    assert_eq!(read.len(), 1, "an item without photos has no entry");
    assert_eq!(read[&item], added, "every field, in upload order");
    let missing = h
        .store
        .add_photo(photo(&h, ItemId::generate(), b"x"), clock(&h))
        .await;
    assert!(matches!(missing, Err(AddPhotoError::ItemNotFound)));
}

async fn a_closed_or_cancelled_item_takes_no_photo(backend: Backend) {
    let h = Harness::new(backend).await;
    let cancelled = h.item(100, 5).await.item.id;
    h.auctions
        .cancel_item(cancelled, h.seller.id, &Default::default())
        .await
        .unwrap();
    let due = h.item(100, 5).await.item.id;
    h.clock.advance(Duration::hours(2));
    for item in [cancelled, due] {
        let refused = h.store.add_photo(photo(&h, item, b"p"), clock(&h)).await;
        assert!(
            matches!(
                refused,
                Err(AddPhotoError::Rejected(PhotoRejection::AuctionClosed))
            ),
            "{refused:?}"
        );
        assert_eq!(h.store.photo_count(item).await.unwrap(), 0);
    }
}

async fn racing_uploads_never_pass_the_limit(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(100, 5).await.item.id;
    let photos: Vec<_> = (0..12u8).map(|n| photo(&h, item, &[n])).collect();
    let results = futures::future::join_all(
        photos
            .iter()
            .map(|p| h.store.add_photo(p.clone(), clock(&h))),
    )
    .await;
    let (added, refused): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(added.len(), MAX_PHOTOS_PER_ITEM);
    assert!(refused.iter().all(|r| matches!(
        r,
        Err(AddPhotoError::Rejected(PhotoRejection::TooManyPhotos))
    )));
    assert_eq!(
        h.store.photo_count(item).await.unwrap(),
        MAX_PHOTOS_PER_ITEM
    );
    let mut positions = order(&h, item).await;
    positions.dedup();
    assert_eq!(positions.len(), MAX_PHOTOS_PER_ITEM);
}

async fn a_photo_is_removed_before_the_first_bid_only_and_the_rest_close_up(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(100, 5).await.item.id;
    let photos: Vec<_> = (0..3u8).map(|n| photo(&h, item, &[n])).collect();
    for p in &photos {
        h.store.add_photo(p.clone(), clock(&h)).await.unwrap();
    }
    h.store.remove_photo(item, photos[1].id).await.unwrap();
    assert_eq!(order(&h, item).await, [photos[0].id, photos[2].id]);
    // A fourth comes last, after the two left.
    let fourth = photo(&h, item, b"4");
    h.store.add_photo(fourth.clone(), clock(&h)).await.unwrap();
    assert_eq!(
        order(&h, item).await,
        [photos[0].id, photos[2].id, fourth.id]
    );
    for (item, id, expected) in [
        (item, photos[1].id, "photo"),
        (item, PhotoId::generate(), "photo"),
        (ItemId::generate(), photos[0].id, "item"),
    ] {
        let refused = h.store.remove_photo(item, id).await.unwrap_err();
        let found = match refused {
            ChangePhotosError::PhotoNotFound => "photo",
            ChangePhotosError::ItemNotFound => "item",
            other => panic!("{other:?}"),
        };
        assert_eq!(found, expected);
    }
    let bidder = h.bidder().await;
    h.auctions
        .place_bid(&bidder, item, plain(100))
        .await
        .unwrap();
    assert!(matches!(
        h.store.remove_photo(item, photos[0].id).await,
        Err(ChangePhotosError::Rejected(PhotoRejection::ItemHasBids))
    ));
    assert_eq!(order(&h, item).await.len(), 3);
}

async fn photos_are_reordered_to_exactly_the_items_photos(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(100, 5).await.item.id;
    let ids: Vec<_> = (0..3u8).map(|n| photo(&h, item, &[n])).collect::<Vec<_>>();
    for p in &ids {
        h.store.add_photo(p.clone(), clock(&h)).await.unwrap();
    }
    let [a, b, c] = [ids[0].id, ids[1].id, ids[2].id];
    h.store.reorder_photos(item, vec![c, a, b]).await.unwrap();
    assert_eq!(order(&h, item).await, [c, a, b]);
    for wrong in [
        vec![a, b],
        vec![a, b, c, c],
        vec![a, b, PhotoId::generate()],
    ] {
        assert!(matches!(
            h.store.reorder_photos(item, wrong).await,
            Err(ChangePhotosError::NotTheItemsPhotos(_))
        ));
    }
    assert_eq!(
        order(&h, item).await,
        [c, a, b],
        "a refused order changes nothing"
    );
    assert!(matches!(
        h.store.reorder_photos(ItemId::generate(), vec![]).await,
        Err(ChangePhotosError::ItemNotFound)
    ));
}

async fn serving_and_the_purge_see_only_names_a_photo_holds(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(100, 5).await.item.id;
    let shown = photo(&h, item, b"shown");
    h.store.add_photo(shown.clone(), clock(&h)).await.unwrap();
    // Another item shows the same image (same bytes, same name).
    let other = h.item(100, 5).await.item.id;
    let mut shared = photo(&h, other, b"shown");
    shared.thumbnail = shared.image.clone();
    h.store.add_photo(shared.clone(), clock(&h)).await.unwrap();
    assert_eq!(
        h.store.image_length(&shown.image.key).await.unwrap(),
        Some(2200)
    );
    assert_eq!(
        h.store.image_length(&shown.thumbnail.key).await.unwrap(),
        Some(1480)
    );
    let orphan = MediaKey::for_bytes(b"orphan", ImageFormat::Png);
    assert_eq!(h.store.image_length(&orphan).await.unwrap(), None);
    let keys = [
        shown.image.key.clone(),
        shown.thumbnail.key.clone(),
        orphan.clone(),
    ];
    assert_eq!(
        h.store.unreferenced(&keys).await.unwrap(),
        std::slice::from_ref(&orphan)
    );
    h.store.remove_photo(item, shown.id).await.unwrap();
    // The thumbnail was this photo's alone; the image is still shown.
    assert_eq!(
        h.store.unreferenced(&keys).await.unwrap(),
        [shown.thumbnail.key.clone(), orphan]
    );
    assert_eq!(
        h.store.image_length(&shown.thumbnail.key).await.unwrap(),
        None
    );
    assert!(
        h.store
            .image_length(&shown.image.key)
            .await
            .unwrap()
            .is_some()
    );
}

on_both_backends!(
    photos_are_added_in_order_up_to_the_limit_and_read_back_whole,
    a_closed_or_cancelled_item_takes_no_photo,
    racing_uploads_never_pass_the_limit,
    a_photo_is_removed_before_the_first_bid_only_and_the_rest_close_up,
    photos_are_reordered_to_exactly_the_items_photos,
    serving_and_the_purge_see_only_names_a_photo_holds,
);
