//! RFC 7807 problem details: the one shape of every error response.
//!
//! Handlers return [`ApiError`] (the domain's errors become one in
//! [`crate::errors`]); the [`render`](crate::middleware::render_problems)
//! middleware turns it (and any error actix produces itself, such as an
//! unknown route) into `application/problem+json` with the request's id and
//! path. Causes of 5xx answers are logged with their whole chain and never
//! reach the client.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use pp_domain::validation::{FieldError, ValidationErrors};
use serde::Serialize;
use utoipa::ToSchema;

/// One field that broke a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProblemField {
    /// The field, dotted for nesting (`poison.budget`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl From<&FieldError> for ProblemField {
    fn from(error: &FieldError) -> Self {
        ProblemField {
            field: error.field.clone(),
            message: error.message.clone(),
        }
    }
}

/// A problem details body (RFC 7807) as this API sends it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ProblemBody {
    /// A URI reference naming the problem type: `/problems/{error_code}`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time, for humans.
    pub detail: String,
    /// The request path.
    pub instance: String,
    /// A stable snake_case code clients can switch on.
    pub error_code: String,
    /// The request's id, as in `X-Request-Id` and the logs.
    pub request_id: String,
    /// Every field that broke a rule (validation failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProblemField>>,
    /// Problem-specific members (e.g. `minimum_next_bid`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// An error answer: status, stable code, detail, and optional extras.
#[derive(Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Option<Vec<ProblemField>>,
    extensions: serde_json::Map<String, serde_json::Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status)
            .field("code", &self.code)
            .field("detail", &self.detail)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ApiError {
    /// An error with `status`, a stable `code` and a human `detail`.
    #[must_use]
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: None,
            extensions: serde_json::Map::new(),
            headers: Vec::new(),
        }
    }

    /// 422 `validation_failed` listing every broken rule.
    #[must_use]
    pub fn validation(errors: &ValidationErrors) -> Self {
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "the request breaks one or more rules",
        );
        error.errors = Some(errors.fields().iter().map(ProblemField::from).collect());
        error
    }

    /// 422 `validation_failed` for one field.
    #[must_use]
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid_fields(vec![(field.to_owned(), message.into())])
    }

    /// 422 `code` listing each `(field, message)`.
    #[must_use]
    pub fn invalid_fields_with_code(
        code: &'static str,
        detail: &str,
        fields: Vec<(String, String)>,
    ) -> Self {
        let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail);
        error.errors = Some(
            fields
                .into_iter()
                .map(|(field, message)| ProblemField { field, message })
                .collect(),
        );
        error
    }

    /// 422 `validation_failed` listing each `(field, message)`.
    #[must_use]
    pub fn invalid_fields(fields: Vec<(String, String)>) -> Self {
        Self::invalid_fields_with_code(
            "validation_failed",
            "the request breaks one or more rules",
            fields,
        )
    }

    /// A 500 whose cause is logged (whole chain), reported, and never shown.
    #[must_use]
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let chain: Vec<String> = std::iter::successors(Some(cause), |e| e.source())
            .map(ToString::to_string)
            .collect();
        tracing::error!(error.chain = ?chain, "request failed: {}", chain.join(": "));
        // Reported where `SENTRY_DSN` says (tagged with the request's id by
        // its hub); nothing happens without it.
        sentry_core::capture_error(cause);
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; it has been logged",
        )
    }

    /// 503 `service_unavailable` with `Retry-After`, for a busy or unreachable store.
    #[must_use]
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the service is busy; try again shortly",
        )
        .with_header(actix_web::http::header::RETRY_AFTER, "1")
    }

    /// Adds a problem-specific member to the body.
    #[must_use]
    pub fn with_extension(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// Adds a response header (e.g. `Retry-After`).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: impl TryInto<HeaderValue>) -> Self {
        if let Ok(value) = value.try_into() {
            self.headers.push((name, value));
        }
        self
    }

    /// The stable error code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The body for a request with `request_id` at `instance`.
    #[must_use]
    pub fn body(&self, request_id: &str, instance: &str) -> ProblemBody {
        ProblemBody {
            problem_type: format!("/problems/{}", self.code),
            title: title(self.status).to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            instance: instance.to_owned(),
            error_code: self.code.to_owned(),
            request_id: request_id.to_owned(),
            errors: self.errors.clone(),
            extensions: self.extensions.clone(),
        }
    }

    /// The problem for an error response actix produced itself (no route,
    /// wrong method, …), by its status.
    #[must_use]
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status.as_u16() {
            400 => ("bad_request", "the request is malformed"),
            401 => ("unauthorized", "authentication is required"),
            403 => ("forbidden", "you may not do this"),
            404 => ("not_found", "there is nothing here"),
            405 => ("method_not_allowed", "this method is not allowed here"),
            413 => ("payload_too_large", "the body is larger than 64 KiB"),
            415 => (
                "unsupported_media_type",
                "send JSON with Content-Type: application/json",
            ),
            429 => ("rate_limited", "too many requests"),
            503 => (
                "service_unavailable",
                "the service is busy; try again shortly",
            ),
            500..=599 => (
                "internal_error",
                "something went wrong on our side; it has been logged",
            ),
            _ => ("bad_request", "the request cannot be served"),
        };
        Self::new(status, code, detail)
    }
}

fn title(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    /// The status and headers; the body is written by the problem renderer,
    /// which knows the request id and path.
    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_carries_every_member_and_extensions_flat() {
        let error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bid_too_low", "too low")
            .with_extension("minimum_next_bid", 310);
        let body = serde_json::to_value(error.body("req-1", "/api/v1/items/x/bid")).unwrap();
        assert_eq!(body["type"], "/problems/bid_too_low");
        assert_eq!(body["title"], "Unprocessable Entity");
        assert_eq!(body["status"], 422);
        assert_eq!(body["instance"], "/api/v1/items/x/bid");
        assert_eq!(body["request_id"], "req-1");
        assert_eq!(body["minimum_next_bid"], 310);
        assert!(body.get("errors").is_none());
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let cause = std::io::Error::other("connection refused to 10.0.0.5:5432");
        let error = ApiError::internal(&cause);
        let body = serde_json::to_string(&error.body("r", "/")).unwrap();
        assert!(!body.contains("10.0.0.5"));
        assert_eq!(error.code(), "internal_error");
    }

    #[test]
    fn statuses_actix_produces_map_to_codes() {
        for (status, code) in [
            (404, "not_found"),
            (405, "method_not_allowed"),
            (413, "payload_too_large"),
            (502, "internal_error"),
        ] {
            let error = ApiError::for_status(StatusCode::from_u16(status).unwrap());
            assert_eq!(error.code(), code);
        }
        assert!(format!("{:?}", ApiError::unavailable()).contains("service_unavailable"));
    }
}
