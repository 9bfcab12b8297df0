//! Item photos over HTTP: uploads of each format cleaned and served with
//! immutable caching, every refusal storing nothing, ranges and
//! revalidation, removal and order, racing uploads, and an S3 bucket.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use pp_media::fixtures;
use reqwest::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RANGE,
};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::support::{Options, TestApp, problem};

/// A `multipart/form-data` body with one file field: its content type and bytes.
fn form(field: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "pp-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload_as(app: &TestApp, token: &str, item: &str, field: &str, bytes: &[u8]) -> Response {
    let (content_type, body) = form(field, "holiday.jpg", bytes);
    app.client
        .post(app.url(&format!("/api/v1/items/{item}/photos")))
        .bearer_auth(token)
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn upload(app: &TestApp, token: &str, item: &str, bytes: &[u8]) -> Value {
    let response = upload_as(app, token, item, "photo", bytes).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// The files in the media directory.
fn stored(dir: &Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

async fn item(app: &TestApp, admin: &str) -> String {
    app.list_item(admin, 1_000, 100, Duration::from_secs(3600))
        .await
}

#[tokio::test]
async fn each_format_is_served_clean_with_immutable_caching_in_the_item_and_the_list() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let id = item(&app, &admin).await;
    let mut uploaded = Vec::new();
    for (bytes, content_type, extension, size) in [
        (
            fixtures::jpeg_with_exif(1200, 600),
            "image/jpeg",
            ".jpg",
            (600, 1200),
        ),
        (fixtures::png(640, 480), "image/png", ".png", (640, 480)),
        (fixtures::webp(300, 200), "image/webp", ".webp", (300, 200)),
    ] {
        let photo = upload(&app, &admin, &id, &bytes).await;
        assert_eq!(
            (photo["width"].as_u64(), photo["height"].as_u64()),
            (Some(u64::from(size.0)), Some(u64::from(size.1)))
        );
        let url = photo["url"].as_str().unwrap();
        assert!(
            url.starts_with("/media/") && url.ends_with(extension),
            "{url}"
        );
        let served = app.get(url).await;
        assert_eq!(served.status(), StatusCode::OK);
        let headers = served.headers().clone();
        assert_eq!(headers[CONTENT_TYPE], content_type);
        assert_eq!(
            headers[CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers[ACCEPT_RANGES], "bytes");
        let body = served.bytes().await.unwrap();
        // Named by the SHA-256 of exactly what is served.
        let digest = {
            use sha2::Digest;
            sha2::Sha256::digest(&body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert!(url.contains(&digest));
        assert_eq!(headers[ETAG], format!("\"{digest}\"").as_str());
        assert_eq!(fixtures::dimensions(&body), size);
        assert!(!contains(&body, b"Exif") && !contains(&body, fixtures::GPS_MARKER));
        let thumb = app.get(photo["thumb_url"].as_str().unwrap()).await;
        let thumb = thumb.bytes().await.unwrap();
        let (width, height) = fixtures::dimensions(&thumb);
        assert_eq!(width.max(height), size.0.max(size.1).min(480));
        uploaded.push(photo);
    }
    let shown = app.item(&id).await;
    let ids: Vec<_> = shown["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    let expected: Vec<_> = uploaded.iter().map(|p| p["id"].clone()).collect();
    assert_eq!(ids, expected);
    assert_eq!(shown["cover_thumb_url"], uploaded[0]["thumb_url"]);
    let list: Value = app.get("/api/v1/items").await.json().await.unwrap();
    assert_eq!(
        list["items"][0]["cover_thumb_url"],
        uploaded[0]["thumb_url"]
    );
    // An item without photos says so.
    let bare = item(&app, &admin).await;
    let bare = app.item(&bare).await;
    assert_eq!(bare["photos"], json!([]));
    assert_eq!(bare["cover_thumb_url"], Value::Null);
}

#[tokio::test]
async fn every_refused_upload_stores_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let user = app.user("bidder@example.com").await.access;
    let id = item(&app, &admin).await;
    let media = app.media_dir();
    let jpeg = fixtures::jpeg(64, 64);
    problem(
        upload_as(&app, &user, &id, "photo", &jpeg).await,
        403,
        "forbidden",
    )
    .await;
    let unknown = uuid::Uuid::now_v7().to_string();
    problem(
        upload_as(&app, &admin, &unknown, "photo", &jpeg).await,
        404,
        "item_not_found",
    )
    .await;
    for bad in [
        b"<!doctype html><script>alert(1)</script>".to_vec(),
        fixtures::polyglot(),
        fixtures::truncated(&fixtures::jpeg(300, 200), 90),
        fixtures::png_bomb(100_000, 100_000),
        fixtures::jpeg_bomb(),
    ] {
        let refused = problem(
            upload_as(&app, &admin, &id, "photo", &bad).await,
            422,
            "invalid_image",
        )
        .await;
        assert!(refused["detail"].as_str().unwrap().starts_with("the file "));
    }
    let answer = problem(
        upload_as(&app, &admin, &id, "picture", &jpeg).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(answer["errors"][0]["field"], "photo");
    let oversized = vec![0xAB; 10 * 1024 * 1024 + 1];
    problem(
        upload_as(&app, &admin, &id, "photo", &oversized).await,
        413,
        "payload_too_large",
    )
    .await;
    assert_eq!(stored(&media), HashSet::new(), "nothing refused was stored");

    // Eight photos, then a ninth is refused before it is stored.
    for n in 0..8 {
        upload(&app, &admin, &id, &fixtures::jpeg(20 + n, 20)).await;
    }
    let before = stored(&media);
    assert_eq!(before.len(), 8, "small images are their own thumbnails");
    problem(
        upload_as(&app, &admin, &id, "photo", &fixtures::jpeg(90, 90)).await,
        409,
        "too_many_photos",
    )
    .await;
    assert_eq!(stored(&media), before);

    // Nor once the item is cancelled.
    let cancelled = item(&app, &admin).await;
    let answer = app
        .post_as(&format!("/api/v1/items/{cancelled}/cancel"), &admin, None)
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    problem(
        upload_as(&app, &admin, &cancelled, "photo", &fixtures::jpeg(91, 91)).await,
        409,
        "auction_closed",
    )
    .await;
    assert_eq!(stored(&media), before);
}

#[tokio::test]
async fn racing_uploads_give_eight_photos_and_the_rest_409() {
    // Room for every upload at once in the decoding queue: the race is the
    // database's (the queue's own refusal, 503, is tested in pp-media).
    let app = TestApp::spawn_with(Options::default().with("PHOTO_WORKERS", "8")).await;
    let admin = app.admin("seller@example.com").await.access;
    let id = item(&app, &admin).await;
    let uploads: Vec<_> = (0..11).map(|n| fixtures::png(30 + n, 30)).collect();
    let answers = futures::future::join_all(
        uploads
            .iter()
            .map(|bytes| upload_as(&app, &admin, &id, "photo", bytes)),
    )
    .await;
    let statuses: Vec<_> = answers.iter().map(Response::status).collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, refused), (8, 3), "{statuses:?}");
    assert_eq!(app.item(&id).await["photos"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn images_answer_revalidation_and_ranges_and_are_gone_once_removed() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let id = item(&app, &admin).await;
    let first = upload(&app, &admin, &id, &fixtures::jpeg(800, 600)).await;
    let second = upload(&app, &admin, &id, &fixtures::webp(100, 100)).await;
    let url = first["url"].as_str().unwrap();
    let whole = app.get(url).await;
    let etag = whole.headers()[ETAG].to_str().unwrap().to_owned();
    let body = whole.bytes().await.unwrap();
    let length = body.len();

    let send = |headers: Vec<(reqwest::header::HeaderName, String)>| {
        let mut request = app.client.get(app.url(url));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let again = send(vec![(IF_NONE_MATCH, etag.clone())]).await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[ETAG], etag.as_str());
    let other = send(vec![(IF_NONE_MATCH, "\"other\"".into())])
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    for (range, from, to) in [
        ("bytes=0-9".to_owned(), 0, 9),
        ("bytes=-5".to_owned(), length - 5, length - 1),
        (format!("bytes=10-{}", length + 100), 10, length - 1),
    ] {
        let part = send(vec![(RANGE, range.clone())]).await.unwrap();
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            part.headers()[CONTENT_RANGE],
            format!("bytes {from}-{to}/{length}").as_str()
        );
        assert_eq!(
            part.bytes().await.unwrap(),
            body.slice(from..=to),
            "{range}"
        );
    }
    let outside = send(vec![(RANGE, format!("bytes={length}-"))])
        .await
        .unwrap();
    assert_eq!(outside.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        outside.headers()[CONTENT_RANGE],
        format!("bytes */{length}").as_str()
    );
    for name in [
        "nothing.jpg",
        "..%2F..%2Fetc%2Fpasswd",
        &format!("{}.gif", "a".repeat(64)),
    ] {
        problem(
            app.get(&format!("/media/{name}")).await,
            404,
            "image_not_found",
        )
        .await;
    }

    // A new order, exactly the item's photos.
    let order = |ids: Vec<&Value>| json!({ "ids": ids });
    let path = format!("/api/v1/items/{id}/photos/order");
    let reordered = app
        .send(
            Method::PUT,
            &path,
            Some(admin.as_str()),
            Some(&order(vec![&second["id"], &first["id"]])),
        )
        .await;
    assert_eq!(reordered.status(), StatusCode::NO_CONTENT);
    let shown = app.item(&id).await;
    assert_eq!(shown["photos"][0]["id"], second["id"]);
    assert_eq!(shown["cover_thumb_url"], second["thumb_url"]);
    let wrong = app
        .send(
            Method::PUT,
            &path,
            Some(admin.as_str()),
            Some(&order(vec![&first["id"]])),
        )
        .await;
    problem(wrong, 422, "validation_failed").await;

    // Removed: both urls answer 404 at once.
    let remove = |photo: String| {
        let (app, admin, path) = (&app, &admin, format!("/api/v1/items/{id}/photos/{photo}"));
        async move {
            app.send(Method::DELETE, &path, Some(admin.as_str()), None)
                .await
        }
    };
    problem(
        remove(uuid::Uuid::now_v7().to_string()).await,
        404,
        "photo_not_found",
    )
    .await;
    assert_eq!(
        remove(first["id"].as_str().unwrap().to_owned())
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    for gone in [&first["url"], &first["thumb_url"]] {
        problem(
            app.get(gone.as_str().unwrap()).await,
            404,
            "image_not_found",
        )
        .await;
    }
    // Once somebody bid, the photos stay.
    let bidder = app.user("bidder@example.com").await.access;
    assert_eq!(
        app.bid(&bidder, &id, &json!({"amount": 1_000}))
            .await
            .status(),
        StatusCode::CREATED
    );
    problem(
        remove(second["id"].as_str().unwrap().to_owned()).await,
        409,
        "item_has_bids",
    )
    .await;
}

#[tokio::test]
async fn photos_live_in_an_s3_bucket_when_configured() {
    let server = pp_testkit::s3::S3Server::start("auction-photos").await;
    let [(id_var, key_id), (secret_var, secret)] = pp_testkit::s3::S3Server::credentials();
    let app = TestApp::spawn_with(
        Options::default()
            .with("MEDIA_STORE", "s3")
            .with("MEDIA_S3_BUCKET", server.bucket())
            .with("MEDIA_S3_ENDPOINT", server.endpoint())
            .with(id_var, key_id)
            .with(secret_var, secret),
    )
    .await;
    let admin = app.admin("seller@example.com").await.access;
    let id = item(&app, &admin).await;
    let photo = upload(&app, &admin, &id, &fixtures::png(900, 300)).await;
    assert_eq!(
        stored(&app.media_dir()),
        HashSet::new(),
        "nothing on local disk"
    );
    let served = app.get(photo["url"].as_str().unwrap()).await;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(
        fixtures::dimensions(&served.bytes().await.unwrap()),
        (900, 300)
    );
    let part = app
        .client
        .get(app.url(photo["thumb_url"].as_str().unwrap()))
        .header(RANGE, "bytes=0-7")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&part.bytes().await.unwrap()[..], b"\x89PNG\r\n\x1a\n");
}

/// A `multipart/form-data` body of these parts (name, bytes).
fn parts(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "pp-test-boundary-parts";
    let mut body = Vec::new();
    for (name, bytes) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"f\"\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_form_of_many_parts_two_photos_or_a_huge_declared_length_is_refused_early() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let id = item(&app, &admin).await;
    let jpeg = fixtures::jpeg(32, 32);
    let url = app.url(&format!("/api/v1/items/{id}/photos"));
    let send = |(content_type, body): (String, Vec<u8>)| {
        app.client
            .post(&url)
            .bearer_auth(&admin)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let many: Vec<(&str, &[u8])> = (0..5).map(|_| ("note", &b"x"[..])).collect();
    problem(send(parts(&many)).await.unwrap(), 422, "validation_failed").await;
    let twice = [("photo", &jpeg[..]), ("photo", &jpeg[..])];
    problem(send(parts(&twice)).await.unwrap(), 422, "validation_failed").await;
    // A large field that is not the photo counts toward the body's limit.
    let filler = vec![b'x'; 10 * 1024 * 1024 + 64 * 1024];
    let padded = [("note", &filler[..]), ("photo", &jpeg[..])];
    problem(
        send(parts(&padded)).await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;
    // A declared length past the limit is refused before the body is read.
    let declared = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header(CONTENT_TYPE, "multipart/form-data; boundary=x")
        .header(
            reqwest::header::CONTENT_LENGTH,
            (11 * 1024 * 1024).to_string(),
        )
        .body(vec![0; 16])
        .send()
        .await;
    if let Ok(answer) = declared {
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    // An empty file is a file that is not an image.
    problem(
        upload_as(&app, &admin, &id, "photo", b"").await,
        422,
        "invalid_image",
    )
    .await;
    assert_eq!(stored(&app.media_dir()), HashSet::new());
}

#[tokio::test]
async fn head_answers_headers_and_odd_ranges_are_answered_whole() {
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let id = item(&app, &admin).await;
    let photo = upload(&app, &admin, &id, &fixtures::png(50, 40)).await;
    let url = app.url(photo["url"].as_str().unwrap());
    let whole = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let head = app.client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()[reqwest::header::CONTENT_LENGTH],
        whole.len().to_string().as_str()
    );
    assert_eq!(head.headers()[CONTENT_TYPE], "image/png");
    assert!(head.bytes().await.unwrap().is_empty());
    for odd in ["bytes=0-1,4-5", "bytes=5-3", "items=0-1", "bytes=x-y"] {
        let answer = app
            .client
            .get(&url)
            .header(RANGE, odd)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{odd}");
        assert_eq!(answer.bytes().await.unwrap(), whole, "{odd}");
    }
}

#[tokio::test]
async fn the_purge_deletes_the_images_no_photo_shows_and_keeps_the_rest() {
    use pp_domain::photos::PhotoService;
    let app = TestApp::spawn().await;
    let admin = app.admin("seller@example.com").await.access;
    let id = item(&app, &admin).await;
    let kept = upload(&app, &admin, &id, &fixtures::jpeg(900, 600)).await;
    let removed = upload(&app, &admin, &id, &fixtures::webp(900, 600)).await;
    let answer = app
        .send(
            Method::DELETE,
            &format!(
                "/api/v1/items/{id}/photos/{}",
                removed["id"].as_str().unwrap()
            ),
            Some(admin.as_str()),
            None,
        )
        .await;
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    let name = |url: &Value| {
        url.as_str()
            .unwrap()
            .trim_start_matches("/media/")
            .to_owned()
    };
    let before = stored(&app.media_dir());
    assert_eq!(before.len(), 4, "removed images stay until the purge");
    let media =
        pp_media::ObjectMedia::open(&pp_media::MediaSettings::Directory(app.media_dir())).unwrap();
    let photos = PhotoService::new(
        app.store.clone(),
        app.store.clone(),
        std::sync::Arc::new(media),
        std::sync::Arc::new(pp_media::ImagePipeline::new(1, 1)),
        std::sync::Arc::new(pp_domain::ports::SystemClock),
    );
    // Within the grace period nothing goes (an upload may be under way).
    assert_eq!(photos.purge(chrono::Duration::hours(1)).await.unwrap(), 0);
    assert_eq!(photos.purge(chrono::Duration::zero()).await.unwrap(), 2);
    let after = stored(&app.media_dir());
    let expected: HashSet<String> = [name(&kept["url"]), name(&kept["thumb_url"])].into();
    assert_eq!(after, expected);
    assert_eq!(
        app.get(kept["url"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );
}
