//! The S3 media store against a real S3-compatible server (moto, started
//! by pp-testkit): signed requests, ranges, listing, deleting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use futures_util::StreamExt;
use pp_domain::photos::{ImageFormat, MediaKey, MediaStore};
use pp_media::{MediaSettings, ObjectMedia, S3Settings};
use pp_testkit::s3::S3Server;

/// The bytes `media` streams for `key` in `range`, if it has them.
async fn read(media: &ObjectMedia, key: &MediaKey, range: std::ops::Range<u64>) -> Option<Vec<u8>> {
    let stream = media.read(key, range).await.unwrap()?;
    let chunks: Vec<_> = stream.collect().await;
    Some(chunks.into_iter().flat_map(Result::unwrap).collect())
}

fn settings(server: &S3Server) -> MediaSettings {
    let [(_, id), (_, secret)] = S3Server::credentials();
    MediaSettings::S3(S3Settings {
        bucket: server.bucket().to_owned(),
        endpoint: Some(server.endpoint().to_owned()),
        region: "us-east-1".into(),
        access_key: Some((id.to_owned(), secret.to_owned())),
    })
}

#[tokio::test]
async fn a_bucket_keeps_reads_ranges_lists_and_deletes_images() {
    let server = S3Server::start("photos").await;
    let media = ObjectMedia::open(&settings(&server)).unwrap();
    let key = MediaKey::for_bytes(b"0123456789", ImageFormat::WebP);
    media.put(&key, b"0123456789").await.unwrap();
    assert_eq!(read(&media, &key, 0..10).await.unwrap(), b"0123456789");
    assert_eq!(read(&media, &key, 7..10).await.unwrap(), b"789");
    let missing = MediaKey::for_bytes(b"other", ImageFormat::Jpeg);
    assert_eq!(read(&media, &missing, 0..1).await, None);
    let listed = media.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, key);
    media.delete(&key).await.unwrap();
    media.delete(&missing).await.unwrap();
    assert_eq!(read(&media, &key, 0..1).await, None);
    assert!(media.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_stopped_server_is_an_error_not_a_missing_image() {
    let server = S3Server::start("photos").await;
    let media = ObjectMedia::open(&settings(&server)).unwrap();
    let key = MediaKey::for_bytes(b"x", ImageFormat::Png);
    server.stop().await;
    assert!(media.put(&key, b"x").await.is_err());
    assert!(media.read(&key, 0..1).await.is_err());
}
