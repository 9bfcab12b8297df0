//! Item photos: upload (multipart, streamed with a byte limit), removal,
//! order, and the images themselves under `/media/…`.

use actix_multipart::Multipart;
use actix_web::body::SizedStream;
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ByteRangeSpec, EntityTag, HeaderValue, Range};
use actix_web::middleware::from_fn;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, delete, get, head, post, put, web};
use futures_util::StreamExt;
use pp_domain::photos::{MAX_UPLOAD_BYTES, MediaKey, Photo};
use pp_domain::{ItemId, PhotoId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::errors::photo_not_found;
use crate::extract::Json;
use crate::middleware::require_admin;
use crate::problem::{ApiError, ProblemBody};
use crate::routes::items::item_id;
use crate::state::AppState;

/// A photo as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PhotoBody {
    id: Uuid,
    /// The image, under `/media/`.
    url: String,
    /// The thumbnail (its longer side 480 px; the image itself when that
    /// is no larger).
    thumb_url: String,
    /// The image's width in pixels.
    width: u32,
    /// The image's height in pixels.
    height: u32,
}

/// The path an image is served from.
#[must_use]
pub fn media_url(key: &MediaKey) -> String {
    format!("/media/{key}")
}

impl From<&Photo> for PhotoBody {
    fn from(photo: &Photo) -> Self {
        PhotoBody {
            id: photo.id.as_uuid(),
            url: media_url(&photo.image.key),
            thumb_url: media_url(&photo.thumbnail.key),
            width: photo.image.width,
            height: photo.image.height,
        }
    }
}

/// A new order of an item's photos.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhotoOrder {
    /// Exactly the item's photo ids, in the order to show them.
    ids: Vec<Uuid>,
}

/// The multipart form of an upload.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the request body only
pub struct PhotoUpload {
    /// A JPEG, PNG or WebP image of at most 10 MiB and 40,000,000 pixels.
    #[schema(value_type = String, format = Binary)]
    photo: Vec<u8>,
}

fn photo_id(raw: &str) -> Result<PhotoId, ApiError> {
    raw.parse().map_err(|_| photo_not_found())
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the photo is larger than 10 MiB",
    )
}

fn missing_photo() -> ApiError {
    ApiError::invalid_field("photo", "send one file in the form field `photo`")
}

/// The most a whole upload may be: the photo and room for the form's
/// boundaries, part headers and a few small fields.
const MAX_BODY_BYTES: usize = MAX_UPLOAD_BYTES + 64 * 1024;

/// The most parts a form may have.
const MAX_PARTS: usize = 4;

/// A multipart error as the client's fault: past the body limit 413, else
/// a form that cannot be read (422).
fn unreadable(error: &actix_multipart::MultipartError) -> ApiError {
    match error {
        actix_multipart::MultipartError::Payload(PayloadError::Overflow) => too_large(),
        _ => ApiError::invalid_field("photo", "the form cannot be read as multipart/form-data"),
    }
}

/// The bytes of the form's one `photo` field, read as they arrive. The
/// whole body is counted as it streams in (the multipart parser buffers a
/// part's headers whole, so the body's limit is what bounds them) and
/// refused the moment it passes [`MAX_BODY_BYTES`]; a form of more than
/// [`MAX_PARTS`] parts, or with a second `photo`, is refused too.
async fn photo_field(request: &HttpRequest, payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let mut received = 0;
    let counted = payload.map(move |chunk| {
        let chunk = chunk?;
        received += chunk.len();
        if received > MAX_BODY_BYTES {
            Err(PayloadError::Overflow)
        } else {
            Ok(chunk)
        }
    });
    let mut form = Multipart::new(request.headers(), counted);
    let mut photo: Option<Vec<u8>> = None;
    let mut parts = 0;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| unreadable(&e))?;
        parts += 1;
        let is_photo = field.name() == Some("photo");
        if parts > MAX_PARTS || (is_photo && photo.is_some()) {
            return Err(ApiError::invalid_field(
                "photo",
                "send one file in the form field `photo`, and little else",
            ));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| unreadable(&e))?;
            if is_photo {
                if bytes.len() + chunk.len() > MAX_UPLOAD_BYTES {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
        }
        if is_photo {
            photo = Some(bytes);
        }
    }
    photo.ok_or_else(missing_photo)
}

/// Adds a photo to an item (admin): decoded, cleaned and re-encoded, with a
/// thumbnail.
#[utoipa::path(tag = "photos", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    request_body(content = PhotoUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = PhotoBody),
        (status = 403, description = "`forbidden`", body = ProblemBody),
        (status = 404, description = "`item_not_found`", body = ProblemBody),
        (status = 409, description = "`too_many_photos` (the ninth), `auction_closed`", body = ProblemBody),
        (status = 413, description = "`payload_too_large`: the file is over 10 MiB", body = ProblemBody),
        (status = 422, description = "`invalid_image`, or `validation_failed` without a `photo` field", body = ProblemBody),
        (status = 503, description = "`service_unavailable`: too many uploads are being processed", body = ProblemBody)))]
#[post("/items/{id}/photos", wrap = "from_fn(require_admin)")]
pub async fn upload_photo(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let item = item_id(&path)?;
    let upload = photo_field(&request, payload).await?;
    let photo = state.photos.upload(item, upload).await?;
    metrics::counter!("photos_uploaded_total").increment(1);
    Ok(HttpResponse::Created().json(PhotoBody::from(&photo)))
}

/// Removes a photo (admin), while the item has no bids; both its urls
/// answer 404 from then on.
#[utoipa::path(tag = "photos", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id"),
        ("photo_id" = Uuid, Path, description = "The photo's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`forbidden`", body = ProblemBody),
        (status = 404, description = "`item_not_found`, `photo_not_found`", body = ProblemBody),
        (status = 409, description = "`item_has_bids`", body = ProblemBody)))]
#[delete("/items/{id}/photos/{photo_id}", wrap = "from_fn(require_admin)")]
pub async fn delete_photo(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (item, photo) = path.into_inner();
    let item = item_id(&item)?;
    state.photos.remove(item, photo_id(&photo)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Puts an item's photos in a new order (admin).
#[utoipa::path(tag = "photos", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item's id")),
    request_body = PhotoOrder,
    responses(
        (status = 204, description = "Reordered"),
        (status = 403, description = "`forbidden`", body = ProblemBody),
        (status = 404, description = "`item_not_found`", body = ProblemBody),
        (status = 422, description = "`validation_failed`: not exactly the item's photo ids", body = ProblemBody)))]
#[put("/items/{id}/photos/order", wrap = "from_fn(require_admin)")]
pub async fn reorder_photos(
    state: web::Data<AppState>,
    path: web::Path<String>,
    Json(body): Json<PhotoOrder>,
) -> Result<HttpResponse, ApiError> {
    let item: ItemId = item_id(&path)?;
    let order = body.ids.into_iter().map(PhotoId::from_uuid).collect();
    state.photos.reorder(item, order).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn media_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "image_not_found", "no such image")
}

/// Whether `If-None-Match` names this entity tag (or is `*`).
fn not_modified(request: &HttpRequest, etag: &EntityTag) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.parse::<EntityTag>().is_ok_and(|tag| tag.weak_eq(etag)))
}

/// The one byte range asked for, if any: `Ok(None)` for the whole image
/// (no `Range`, one that is not bytes or not well formed, or several
/// ranges, which a server may answer whole); `Err` when nothing of it is
/// in the image.
fn byte_range(request: &HttpRequest, length: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(raw) = request.headers().get(header::RANGE) else {
        return Ok(None);
    };
    let Ok(Range::Bytes(specs)) = raw.to_str().unwrap_or_default().parse::<Range>() else {
        return Ok(None);
    };
    match specs.as_slice() {
        // `last < first` makes the header invalid, so it is not answered.
        [ByteRangeSpec::FromTo(first, last)] if last < first => Ok(None),
        [spec] => spec.to_satisfiable_range(length).map(Some).ok_or(()),
        _ => Ok(None),
    }
}

/// An image of a photo: immutable (its name is the hash of its bytes), with
/// `ETag`, `If-None-Match` and one byte `Range` answered, streamed from
/// storage as it comes.
#[utoipa::path(tag = "photos",
    params(("name" = String, Path, description = "`{sha256 hex}.{jpg|png|webp}`")),
    responses(
        (status = 200, description = "The image", content_type = "image/*"),
        (status = 206, description = "The asked range of it"),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 404, description = "`image_not_found`: no photo shows this image", body = ProblemBody),
        (status = 416, description = "The range is outside the image")))]
#[get("/media/{name}")]
pub async fn media(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve_image(&request, &state, &path, true).await
}

/// What a `GET` of the image would answer, without its bytes.
#[utoipa::path(tag = "photos",
    params(("name" = String, Path, description = "`{sha256 hex}.{jpg|png|webp}`")),
    responses(
        (status = 200, description = "The image's headers"),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 404, description = "No photo shows this image")))]
#[head("/media/{name}")]
pub async fn media_head(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve_image(&request, &state, &path, false).await
}

/// The image `name` as `GET` (with its bytes when `body`) or `HEAD` answer it.
async fn serve_image(
    request: &HttpRequest,
    state: &AppState,
    name: &str,
    body: bool,
) -> Result<HttpResponse, ApiError> {
    let key = MediaKey::parse(name).ok_or_else(media_not_found)?;
    let length = state
        .photos
        .image_length(&key)
        .await?
        .ok_or_else(media_not_found)?;
    let etag = EntityTag::new_strong(key.digest().to_owned());
    let mut response = HttpResponse::build(StatusCode::OK);
    response
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ))
        .insert_header((header::ETAG, etag.to_string()))
        .insert_header((header::ACCEPT_RANGES, HeaderValue::from_static("bytes")))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ));
    if not_modified(request, &etag) {
        return Ok(response.status(StatusCode::NOT_MODIFIED).finish());
    }
    // Ranges are a GET's (RFC 9110): a HEAD answers as the whole GET would.
    let asked = if body {
        byte_range(request, length)
    } else {
        Ok(None)
    };
    let Ok(range) = asked else {
        return Ok(response
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .insert_header((header::CONTENT_RANGE, format!("bytes */{length}")))
            .finish());
    };
    response.insert_header((header::CONTENT_TYPE, key.format().content_type()));
    let (first, last) = match range {
        Some((first, last)) => {
            response.status(StatusCode::PARTIAL_CONTENT).insert_header((
                header::CONTENT_RANGE,
                format!("bytes {first}-{last}/{length}"),
            ));
            (first, last)
        }
        None => (0, length.saturating_sub(1)),
    };
    let size = if length == 0 { 0 } else { last - first + 1 };
    if !body {
        // The headers alone, with the length a GET would send.
        let nothing = futures_util::stream::empty::<Result<Bytes, actix_web::Error>>();
        return Ok(response.body(SizedStream::new(size, nothing)));
    }
    let bytes = state.photos.read(&key, first..first + size).await?;
    let bytes = bytes.map(|chunk| {
        chunk.map(Bytes::from).map_err(|error| {
            tracing::warn!(error = %error, "reading an image failed midway");
            actix_web::error::ErrorInternalServerError("the image could not be read")
        })
    });
    Ok(response.body(SizedStream::new(size, bytes)))
}
