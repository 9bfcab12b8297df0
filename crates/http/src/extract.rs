//! Extractors: strict JSON bodies, pages, the caller's identity and context.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use pp_domain::auth::service::AdminRefusal;
use pp_domain::auth::{Principal, RequestContext};
use serde::de::DeserializeOwned;

use crate::errors::{admins_only, no_token};
use crate::middleware::{ClientIp, RequestId};
use crate::problem::ApiError;
use crate::state::AppState;

/// The largest body any endpoint accepts.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body that must be `application/json`, at most 64 KiB, well-formed
/// (else 400 `malformed_json`) and of the right shape, unknown fields
/// included (else 422 `validation_failed` naming the field).
#[derive(Debug)]
pub struct Json<T>(pub T);

fn is_json(request: &HttpRequest) -> bool {
    request.mime_type().ok().flatten().is_some_and(|mime| {
        mime.type_() == "application"
            && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
    })
}

/// The field a missing-field error names: serde reports it at the path of
/// the object that lacks it, with the field only in its message ("missing
/// field `amount`"). An unknown field's own path already ends in it.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Parses `bytes` as `T`, classifying what is wrong.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not well-formed JSON",
        )
    };
    // Every body of this API is an object; serde would also fill a struct
    // from an array of its fields in order.
    let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let not_an_object = || ApiError::invalid_field("body", "must be a JSON object");
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if !object => not_an_object(),
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                // serde_json appends " at line L column C": noise for clients.
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_owned();
                let field = match (missing_field(&message), path.as_str()) {
                    (Some(name), ".") => name.to_owned(),
                    (Some(name), parent) => format!("{parent}.{name}"),
                    (None, ".") => "body".to_owned(),
                    (None, _) => path,
                };
                ApiError::invalid_field(&field, message)
            }
            _ => malformed(),
        }
    })?;
    // Trailing characters after the value make the whole body malformed.
    deserializer.end().map_err(|_| malformed())?;
    if !object {
        return Err(not_an_object());
    }
    Ok(value)
}

/// A whole number of any JSON spelling: `1000` or `1000.0` (JSON has one
/// number type, and JSON Schema's `integer` admits both), never `1000.5`.
struct WholeNumber;

impl serde::de::Visitor<'_> for WholeNumber {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<i64, E> {
        Ok(value)
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<i64, E> {
        i64::try_from(value)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(value), &self))
    }

    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)] // checked whole and in range first
    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<i64, E> {
        if value.fract() == 0.0 && value >= i64::MIN as f64 && value < i64::MAX as f64 {
            Ok(value as i64)
        } else {
            Err(E::invalid_value(serde::de::Unexpected::Float(value), &self))
        }
    }
}

/// `deserialize_with` for an integer field that takes `1000.0` as `1000`.
///
/// # Errors
/// When the value is not a whole number in `i64`'s range.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    deserializer.deserialize_any(WholeNumber)
}

/// `deserialize_with` (with `#[serde(default)]`) for a field a PATCH may
/// leave out but not set to `null`: the field has no "nothing" to set.
///
/// # Errors
/// When the value is `null` or not a `T`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// [`whole_number`] for an optional field (with `#[serde(default)]`).
///
/// # Errors
/// When the value is neither `null` nor a whole number in `i64`'s range.
pub fn optional_whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    struct Optional;
    impl<'de> serde::de::Visitor<'de> for Optional {
        type Value = Option<i64>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number or null")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            whole_number(deserializer).map(Some)
        }
    }
    deserializer.deserialize_option(Optional)
}

/// Parses an already-read body that is optional for its endpoint, with the
/// same rules as [`Json`].
///
/// # Errors
/// 415 for another content type, 400/422 as [`Json`].
pub(crate) fn parse_json<T: DeserializeOwned>(
    request: &HttpRequest,
    bytes: &[u8],
) -> Result<T, ApiError> {
    if !is_json(request) {
        return Err(unsupported_media_type());
    }
    parse(bytes)
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send JSON with Content-Type: application/json",
    )
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !is_json(request) {
            return Box::pin(async { Err(unsupported_media_type()) });
        }
        let body = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            let bytes = body.await.map_err(|e| {
                if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "malformed_body",
                        "the body could not be read",
                    )
                }
            })?;
            parse(&bytes).map(Json)
        })
    }
}

/// `?limit=1..100&cursor=…` as the OpenAPI document describes it; read by
/// [`PageQuery`].
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1..=100; 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `?limit=1..100&cursor=…`.
#[derive(Debug, Clone)]
pub struct PageQuery {
    /// Items per page.
    pub limit: u32,
    /// Where to continue, as handed out in `next_cursor`.
    pub cursor: Option<String>,
}

impl FromRequest for PageQuery {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        #[derive(serde::Deserialize)]
        struct Raw {
            limit: Option<String>,
            cursor: Option<String>,
        }
        let result = web::Query::<Raw>::from_query(request.query_string())
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "the query string is malformed",
                )
            })
            .and_then(|raw| {
                let limit = match raw.limit.as_deref() {
                    None => 20,
                    Some(text) => text
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=100).contains(n))
                        .ok_or_else(|| {
                            ApiError::invalid_field("limit", "must be a whole number from 1 to 100")
                        })?,
                };
                Ok(PageQuery {
                    limit,
                    cursor: raw.cursor.clone().filter(|c| !c.is_empty()),
                })
            });
        std::future::ready(result)
    }
}

/// The request id and client address, for the audit log.
#[derive(Debug, Clone)]
pub struct Context(pub RequestContext);

impl FromRequest for Context {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, actix_web::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = request.extensions();
        std::future::ready(Ok(Context(RequestContext {
            request_id: extensions.get::<RequestId>().map(|id| id.0.clone()),
            ip: extensions.get::<ClientIp>().map(|ip| ip.0),
            trace_parent: trace_parent(),
        })))
    }
}

/// The W3C `traceparent` of the current span (the request's), when traces
/// are exported; `None` otherwise.
fn trace_parent() -> Option<String> {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = tracing::Span::current().context();
    let mut carrier = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier);
    });
    carrier.remove("traceparent")
}

/// The bearer token of `request`, if it sent one.
fn bearer_token(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .filter(|token| !token.is_empty())
}

/// The account behind the request's bearer token. 401 `unauthorized`
/// without a token, 401 `invalid_token` for a bad, expired or revoked one;
/// only access tokens pass.
///
/// # Errors
/// Those 401s, or 503/500 when the check itself fails.
pub(crate) async fn authenticate(request: &HttpRequest) -> Result<Principal, ApiError> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    let token = bearer_token(request).ok_or_else(no_token)?;
    Ok(state.auth.authenticate(&token).await?)
}

/// 403 `forbidden` unless `principal` is an admin; 403
/// `mfa_enrolment_required` for an admin without a second factor where
/// `REQUIRE_ADMIN_2FA` asks for one.
///
/// # Errors
/// Those 403s, or 500 without the app's state.
pub(crate) fn admin_only(request: &HttpRequest, principal: &Principal) -> Result<(), ApiError> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    match state.auth.admin_access(principal) {
        Ok(()) => Ok(()),
        Err(AdminRefusal::NotAdmin) => Err(admins_only()),
        Err(AdminRefusal::SecondFactorRequired) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "mfa_enrolment_required",
            "admin actions need your second factor on: turn it on in your profile",
        )),
    }
}

/// The authenticated account of a route mounted behind
/// [`require_user`](crate::middleware::require_user) or
/// [`require_admin`](crate::middleware::require_admin), which judged the
/// token before any other extractor ran (so a bad token with a bad body is
/// a 401, not a 415 or 422). Using it on a route without them is a bug,
/// answered 500.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

fn principal_of(request: &HttpRequest) -> Result<Principal, ApiError> {
    request.extensions().get::<Principal>().cloned().ok_or_else(|| {
        tracing::error!(
            path = request.path(),
            "a route reads the caller without authenticating first (no require_user/require_admin)"
        );
        ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR)
    })
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(principal_of(request).map(Authenticated))
    }
}

/// An authenticated admin, on a route behind
/// [`require_admin`](crate::middleware::require_admin); 403 `forbidden`
/// for anyone else.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(principal_of(request).and_then(|principal| {
            admin_only(request, &principal)?;
            Ok(Admin(principal))
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        amount: i64,
    }

    fn field_of(error: &ApiError) -> String {
        let body = error.body("r", "/");
        body.errors.map(|e| e[0].field.clone()).unwrap_or_default()
    }

    #[test]
    fn malformed_json_is_400_and_a_wrong_shape_is_422_naming_the_field() {
        assert_eq!(
            parse::<Body>(b"{\"name\":").unwrap_err().code(),
            "malformed_json"
        );
        assert_eq!(parse::<Body>(b"").unwrap_err().code(), "malformed_json");
        assert_eq!(
            parse::<Body>(b"{\"name\":\"a\"} trailing")
                .unwrap_err()
                .code(),
            "malformed_json"
        );
        let unknown = parse::<Body>(b"{\"name\":\"a\",\"role\":\"admin\"}").unwrap_err();
        assert_eq!(
            (unknown.code(), field_of(&unknown).as_str()),
            ("validation_failed", "role")
        );
        let nested_unknown =
            parse::<Body>(b"{\"name\":\"a\",\"nested\":{\"amount\":1,\"x\":2}}").unwrap_err();
        assert_eq!(field_of(&nested_unknown), "nested.x");
        let nested_missing = parse::<Body>(b"{\"name\":\"a\",\"nested\":{}}").unwrap_err();
        assert_eq!(field_of(&nested_missing), "nested.amount");
        let not_an_object = parse::<Body>(b"\"text\"").unwrap_err();
        assert_eq!(field_of(&not_an_object), "body");
        let wrong_type =
            parse::<Body>(b"{\"name\":\"a\",\"nested\":{\"amount\":\"ten\"}}").unwrap_err();
        assert_eq!(field_of(&wrong_type), "nested.amount");
        let missing = parse::<Body>(b"{}").unwrap_err();
        assert_eq!(
            (missing.code(), field_of(&missing).as_str()),
            ("validation_failed", "name")
        );
        assert!(parse::<Body>(b"{\"name\":\"a\"}").is_ok());
        for not_an_object in [&b" [\"a\", null]"[..], b"[1]", b"42"] {
            let refused = parse::<Body>(not_an_object).unwrap_err();
            assert_eq!(
                (refused.code(), field_of(&refused).as_str()),
                ("validation_failed", "body")
            );
        }
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Price {
        #[serde(deserialize_with = "whole_number")]
        amount: i64,
        #[serde(default, deserialize_with = "optional_whole_number")]
        step: Option<i64>,
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats_and_nothing_else_may() {
        let price = |body: &str| parse::<Price>(body.as_bytes()).map(|p| (p.amount, p.step));
        assert_eq!(price(r#"{"amount": 1000}"#).unwrap(), (1000, None));
        assert_eq!(
            price(r#"{"amount": 1000.0, "step": 5.0}"#).unwrap(),
            (1000, Some(5))
        );
        assert_eq!(
            price(r#"{"amount": -3, "step": null}"#).unwrap(),
            (-3, None)
        );
        for bad in [
            r#"{"amount": 1000.5}"#,
            r#"{"amount": 1e300}"#,
            r#"{"amount": 18446744073709551615}"#,
            r#"{"amount": "1000"}"#,
            r#"{"amount": 1, "step": 0.5}"#,
        ] {
            assert_eq!(price(bad).unwrap_err().code(), "validation_failed", "{bad}");
        }
    }
}
