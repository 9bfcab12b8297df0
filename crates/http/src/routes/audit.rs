//! `/admin/audit`: the audit trail, for admins.

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use pp_domain::UserId;
use pp_domain::auth::tokens::{AuditEvent, AuditFilter, AuditRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::extract::{Admin, PageParams, PageQuery};
use crate::middleware::require_admin;
use crate::problem::{ApiError, ProblemBody};
use crate::state::AppState;

/// One entry of the audit trail. Never a password, token or link.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryBody {
    /// Its id.
    id: Uuid,
    /// When it happened.
    at: DateTime<Utc>,
    /// What happened, e.g. `login_failed`, `role_changed`, `item_created`.
    event: String,
    /// The account concerned, when known.
    #[schema(required = true)]
    user_id: Option<Uuid>,
    /// Who did it, when not the account itself (an admin).
    #[schema(required = true)]
    actor_id: Option<Uuid>,
    /// The client's address.
    #[schema(required = true)]
    ip: Option<String>,
    /// The request's id (`X-Request-Id`).
    #[schema(required = true)]
    request_id: Option<String>,
    /// A short detail, e.g. `user -> admin` or why a login failed.
    #[schema(required = true)]
    details: Option<String>,
}

impl From<AuditRecord> for AuditEntryBody {
    fn from(record: AuditRecord) -> Self {
        AuditEntryBody {
            id: record.id,
            at: record.at,
            event: record.event,
            user_id: record.user.map(|user| user.as_uuid()),
            actor_id: record.actor.map(|actor| actor.as_uuid()),
            ip: record.ip,
            request_id: record.request_id,
            details: record.detail,
        }
    }
}

/// A page of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// This page, newest first.
    items: Vec<AuditEntryBody>,
    /// Pass as `cursor` for the next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
    /// Whether there is a next page.
    has_more: bool,
}

/// `?user_id=&event=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only entries about this account or done by it (an admin's actions).
    #[param(value_type = Option<Uuid>)]
    user_id: Option<String>,
    /// Only this event.
    #[param(schema_with = event_names)]
    event: Option<String>,
}

/// The events an entry may name, from the domain's list.
fn event_names() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(AuditEvent::ALL.iter().map(|event| event.as_str())))
        .build()
}

impl AuditQuery {
    /// The filter, or a 422 naming the filter that is wrong.
    fn filter(&self) -> Result<AuditFilter, ApiError> {
        let user = self
            .user_id
            .as_deref()
            .map(|raw| {
                raw.parse::<UserId>()
                    .map_err(|_| ApiError::invalid_field("user_id", "must be an account's id"))
            })
            .transpose()?;
        let event = self
            .event
            .as_deref()
            .map(|raw| {
                AuditEvent::parse(raw).ok_or_else(|| {
                    let known: Vec<&str> = AuditEvent::ALL.iter().map(|e| e.as_str()).collect();
                    ApiError::invalid_field("event", format!("must be one of {}", known.join(", ")))
                })
            })
            .transpose()?;
        Ok(AuditFilter { user, event })
    }
}

/// The audit trail, newest first, optionally about one account or of one
/// event (admin).
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(AuditQuery, PageParams),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, description = "`invalid_cursor`", body = ProblemBody),
        (status = 403, description = "`forbidden`", body = ProblemBody),
        (status = 422, description = "`validation_failed` (an unknown event or a malformed id)", body = ProblemBody)))]
#[get("/admin/audit", wrap = "from_fn(require_admin)")]
pub async fn audit_trail(
    state: web::Data<AppState>,
    _admin: Admin,
    page: PageQuery,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.filter()?;
    // A cursor belongs to its filter: another filter's is refused.
    let list = format!(
        "audit/{}/{}",
        filter.user.map(|user| user.to_string()).unwrap_or_default(),
        filter.event.map_or("", |event| event.as_str()),
    );
    let after = page
        .cursor
        .as_deref()
        .map(|cursor| state.cursors.decode_audit(&list, cursor))
        .transpose()?;
    let (entries, next) = state.auth.audit_trail(filter, after, page.limit).await?;
    Ok(HttpResponse::Ok().json(AuditPage {
        items: entries.into_iter().map(AuditEntryBody::from).collect(),
        has_more: next.is_some(),
        next_cursor: next.map(|cursor| state.cursors.encode_audit(&list, cursor)),
    }))
}
