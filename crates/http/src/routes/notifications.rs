//! `/me/notifications`: your stored notifications, and marking them read.

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use pp_domain::notifications::StoredNotification;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::live::{NotificationBody, NotificationFields, NotificationKind};
use crate::extract::{Authenticated, Json, PageParams, PageQuery};
use crate::middleware::require_user;
use crate::problem::{ApiError, ProblemBody};
use crate::state::AppState;

/// A stored notification.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredNotificationBody {
    /// Its id: pass it as `up_to_id` to mark it and the older ones read.
    id: Uuid,
    /// What happened.
    #[serde(rename = "type")]
    kind: NotificationKind,
    /// The item (its id, title and currency) and the figures the type names.
    data: NotificationFields,
    /// When it happened.
    at: DateTime<Utc>,
    /// Whether you marked it read.
    read: bool,
}

impl From<&StoredNotification> for StoredNotificationBody {
    fn from(stored: &StoredNotification) -> Self {
        let NotificationBody { kind, mut data, at } = NotificationBody::from(&stored.notification);
        data.item_title = Some(stored.item_title.clone());
        data.currency = Some(stored.currency.as_str().to_owned());
        data.currency_decimals = Some(stored.currency.decimals());
        StoredNotificationBody {
            id: stored.id,
            kind,
            data,
            at,
            read: stored.read,
        }
    }
}

/// A page of your notifications.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    /// This page, newest first.
    items: Vec<StoredNotificationBody>,
    /// Pass as `cursor` for the next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
    /// Whether there is a next page.
    has_more: bool,
    /// How many of all your notifications are unread.
    unread: u64,
}

/// `POST /me/notifications/read`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkReadRequest {
    /// This notification and every older one are marked read.
    up_to_id: Uuid,
}

/// Your notifications, newest first: outbid, auto-raised, exhausted, won
/// and lost, kept while you were away.
#[utoipa::path(tag = "live", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, body = NotificationPage),
        (status = 400, description = "`invalid_cursor`", body = ProblemBody)))]
#[get("/me/notifications", wrap = "from_fn(require_user)")]
pub async fn my_notifications(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    page: PageQuery,
) -> Result<HttpResponse, ApiError> {
    let user = principal.user.id;
    let list = format!("notifications/{user}");
    let after = page
        .cursor
        .as_deref()
        .map(|cursor| state.cursors.decode_notification(&list, cursor))
        .transpose()?;
    let found = state
        .auctions
        .notifications(user, after, page.limit)
        .await?;
    let unread = state.auctions.unread_notifications(user).await?;
    Ok(HttpResponse::Ok().json(NotificationPage {
        unread,
        items: found
            .items
            .iter()
            .map(StoredNotificationBody::from)
            .collect(),
        has_more: found.next.is_some(),
        next_cursor: found
            .next
            .map(|cursor| state.cursors.encode_notification(&list, cursor)),
    }))
}

/// Marks one of your notifications and every older one read.
#[utoipa::path(tag = "live", security(("bearer" = [])), request_body = MarkReadRequest,
    responses(
        (status = 204, description = "Marked read"),
        (status = 404, description = "`not_found`: you have no such notification", body = ProblemBody),
        (status = 422, description = "`validation_failed`", body = ProblemBody)))]
#[post("/me/notifications/read", wrap = "from_fn(require_user)")]
pub async fn mark_notifications_read(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    Json(body): Json<MarkReadRequest>,
) -> Result<HttpResponse, ApiError> {
    if state
        .auctions
        .mark_notifications_read(principal.user.id, body.up_to_id)
        .await?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(crate::errors::notification_not_found())
    }
}
