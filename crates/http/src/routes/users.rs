//! `/users/*`: your own account, and accounts for admins.

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, get, patch, web};
use chrono::{DateTime, Utc};
use pp_domain::{DisplayName, Role, User, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::errors::user_not_found;
use crate::extract::{Admin, Authenticated, Context, Json, PageParams, PageQuery, present};
use crate::middleware::{require_admin, require_user};
use crate::problem::{ApiError, ProblemBody};
use crate::state::AppState;

/// A role as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    /// Bids, sees its own bids.
    User,
    /// Also lists items and manages accounts.
    Admin,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::User => RoleName::User,
            Role::Admin => RoleName::Admin,
        }
    }
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::User => Role::User,
            RoleName::Admin => Role::Admin,
        }
    }
}

/// An account as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    /// Its id.
    id: Uuid,
    /// Its address.
    email: String,
    /// Its display name.
    display_name: String,
    /// `user` or `admin`.
    role: RoleName,
    /// Whether the address was proven.
    email_verified: bool,
    /// Whether it is sent e-mail notices (outbid, exhausted, won).
    notify_email: bool,
    /// `false` once an admin deactivated it (it cannot log in).
    is_active: bool,
    /// When it was created.
    created_at: DateTime<Utc>,
}

impl From<&User> for UserBody {
    fn from(user: &User) -> Self {
        UserBody {
            id: user.id.as_uuid(),
            email: user.email.as_str().to_owned(),
            display_name: user.display_name.clone(),
            role: user.role.into(),
            email_verified: user.email_verified,
            notify_email: user.notify_email,
            is_active: user.is_active,
            created_at: user.created_at,
        }
    }
}

/// A page of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    /// This page, newest first.
    items: Vec<UserBody>,
    /// Pass as `cursor` for the next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
    /// Whether there is a next page.
    has_more: bool,
}

/// `PATCH /users/me`: the display name and e-mail notices may change;
/// a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// 1 to 100 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    display_name: Option<String>,
    /// `false` stops e-mail notices (outbid, exhausted, won).
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    notify_email: Option<bool>,
}

/// `PATCH /users/{id}` (admin): role and activation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminUpdateRequest {
    /// `user` or `admin`.
    role: Option<RoleName>,
    /// `false` deactivates the account and ends its sessions.
    is_active: Option<bool>,
}

/// Your account.
#[utoipa::path(tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserBody), (status = 401, description = "`unauthorized` / `invalid_token`", body = ProblemBody)))]
#[get("/users/me", wrap = "from_fn(require_user)")]
pub async fn me(Authenticated(principal): Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(UserBody::from(&principal.user))
}

/// Changes your display name or e-mail notices; any other field is refused (422).
#[utoipa::path(tag = "users", security(("bearer" = [])), request_body = UpdateMeRequest,
    responses((status = 200, body = UserBody), (status = 422, description = "`validation_failed`, also for `role`, `email` etc.", body = ProblemBody)))]
#[patch("/users/me", wrap = "from_fn(require_user)")]
pub async fn update_me(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    Json(body): Json<UpdateMeRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = body
        .display_name
        .as_deref()
        .map(DisplayName::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("display_name", e.to_string()))?;
    let user = state
        .auth
        .update_profile(&principal, name, body.notify_email)
        .await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&user)))
}

/// `?email=` on the account list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct UserSearch {
    /// Only accounts whose address contains this, in any case (at most 254
    /// characters; `%` and `_` match only themselves).
    #[param(max_length = 254)]
    email: Option<String>,
}

/// Every account, newest first, or those whose address contains `?email=` (admin).
#[utoipa::path(tag = "users", security(("bearer" = [])),
    params(UserSearch, PageParams),
    responses(
        (status = 200, body = UserPage),
        (status = 400, description = "`invalid_cursor`", body = ProblemBody),
        (status = 403, description = "`forbidden`", body = ProblemBody),
        (status = 422, description = "`validation_failed`: `email` too long", body = ProblemBody)))]
#[get("/users", wrap = "from_fn(require_admin)")]
pub async fn list_users(
    state: web::Data<AppState>,
    _admin: Admin,
    page: PageQuery,
    search: web::Query<UserSearch>,
) -> Result<HttpResponse, ApiError> {
    if search
        .email
        .as_ref()
        .is_some_and(|part| part.chars().count() > 254)
    {
        return Err(ApiError::invalid_field(
            "email",
            "must be at most 254 characters",
        ));
    }
    let after = page
        .cursor
        .as_deref()
        .map(|cursor| state.cursors.decode_user(cursor))
        .transpose()?;
    let (users, next) = state
        .auth
        .list_users(search.email.as_deref(), after, page.limit)
        .await?;
    Ok(HttpResponse::Ok().json(UserPage {
        items: users.iter().map(UserBody::from).collect(),
        has_more: next.is_some(),
        next_cursor: next.map(|cursor| state.cursors.encode_user(cursor)),
    }))
}

fn user_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse().map_err(|_| user_not_found())
}

/// One account (admin).
#[utoipa::path(tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The account's id")),
    responses((status = 200, body = UserBody), (status = 403, description = "`forbidden`", body = ProblemBody), (status = 404, description = "`not_found`", body = ProblemBody)))]
#[get("/users/{id}", wrap = "from_fn(require_admin)")]
pub async fn get_user(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = state.auth.user(user_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&user)))
}

/// Changes an account's role or activation (admin); deactivating ends its sessions.
#[utoipa::path(tag = "users", security(("bearer" = [])), request_body = AdminUpdateRequest,
    params(("id" = Uuid, Path, description = "The account's id")),
    responses((status = 200, body = UserBody), (status = 403, description = "`forbidden`", body = ProblemBody), (status = 404, description = "`not_found`", body = ProblemBody), (status = 422, description = "`validation_failed`", body = ProblemBody)))]
#[patch("/users/{id}", wrap = "from_fn(require_admin)")]
pub async fn update_user(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    Context(context): Context,
    path: web::Path<String>,
    Json(body): Json<AdminUpdateRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    let user = state
        .auth
        .administer_user(
            &admin,
            id,
            body.role.map(Role::from),
            body.is_active,
            &context,
        )
        .await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&user)))
}
