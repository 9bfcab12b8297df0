//! `/auth/*`: registration, verification, login, sessions, passwords.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use pp_domain::auth::Password;
use pp_domain::auth::TokenPair;
use pp_domain::auth::service::Registration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::users::UserBody;
use crate::extract::{Authenticated, Context, Json};
use crate::middleware::{auth_limit, require_user};
use crate::problem::{ApiError, ProblemBody};
use crate::state::AppState;

/// The refresh token's cookie, scoped to the auth endpoints.
pub const REFRESH_COOKIE: &str = "refresh_token";
const REFRESH_COOKIE_PATH: &str = "/api/v1/auth";

/// `POST /auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The address; a verification link is mailed to it.
    #[schema(example = "ann@example.com")]
    email: String,
    /// 15 to 128 characters (by default); common passwords are refused.
    #[schema(example = "violet kettle drums at dawn")]
    password: String,
    /// The name to show; the address's local part when absent.
    display_name: Option<String>,
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The address.
    email: String,
    /// The password.
    password: String,
}

/// `POST /auth/refresh`: the token in the body, or the `refresh_token` cookie.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token (when not sent as the cookie).
    refresh_token: Option<String>,
}

/// A token from an e-mailed link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The `token` query parameter of the link.
    token: String,
}

/// An address to send a link to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    /// The address.
    email: String,
}

/// `POST /auth/password/reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The `token` query parameter of the reset link.
    token: String,
    /// The new password.
    new_password: String,
}

/// `POST /auth/password/change`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password now.
    current_password: String,
    /// The new password.
    new_password: String,
}

/// Tokens handed out by login, refresh and password change.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT to send as `Authorization: Bearer …`.
    access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    token_type: &'static str,
    /// Seconds the access token lives (900).
    expires_in: i64,
    /// The single-use refresh token (also set as the `refresh_token` cookie).
    refresh_token: String,
    /// Seconds the refresh token lives (604800).
    refresh_expires_in: i64,
}

/// A 202 body: the request was taken, whatever the outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// What happens next.
    message: &'static str,
}

pub(crate) fn refresh_cookie(value: &str, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(REFRESH_COOKIE, value.to_owned())
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path(REFRESH_COOKIE_PATH)
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

pub(crate) fn tokens(pair: &TokenPair) -> HttpResponse {
    let refresh_secs = pair.refresh_expires_in.num_seconds();
    HttpResponse::Ok()
        .cookie(refresh_cookie(&pair.refresh_token, refresh_secs))
        .json(TokenResponse {
            access_token: pair.access_token.clone(),
            token_type: "bearer",
            expires_in: pair.access_expires_in.num_seconds(),
            refresh_token: pair.refresh_token.to_string(),
            refresh_expires_in: refresh_secs,
        })
}

fn accepted(message: &'static str) -> HttpResponse {
    HttpResponse::Accepted().json(Accepted { message })
}

/// The rules a new password must meet (`PASSWORD_MIN_LENGTH`), so a client
/// can check them before it sends one.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordPolicyBody {
    /// The fewest characters (Unicode code points) a new password may have.
    #[schema(example = 15)]
    password_min_length: usize,
    /// The most.
    #[schema(example = 128)]
    password_max_length: usize,
}

/// The password rules new passwords are checked against.
#[utoipa::path(tag = "auth",
    responses((status = 200, body = PasswordPolicyBody)))]
#[get("/auth/policy")]
pub async fn policy(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(PasswordPolicyBody {
        password_min_length: state.auth.policy().passwords.min_chars(),
        password_max_length: pp_domain::auth::PasswordPolicy::MAX_CHARS,
    })
}

/// Creates an account and mails a verification link.
#[utoipa::path(tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account", body = UserBody),
        (status = 409, description = "`email_taken`", body = ProblemBody),
        (status = 422, description = "`validation_failed`", body = ProblemBody),
        (status = 429, description = "`rate_limited`", body = ProblemBody)))]
#[post("/auth/register", wrap = "from_fn(auth_limit)")]
pub async fn register(
    state: web::Data<AppState>,
    Context(context): Context,
    Json(body): Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let registration = Registration {
        email: body.email,
        password: Password::presented(&body.password),
        display_name: body.display_name,
    };
    let user = state.auth.register(registration, &context).await?;
    Ok(HttpResponse::Created().json(UserBody::from(&user)))
}

/// Proves an address with the token from its verification e-mail.
#[utoipa::path(tag = "auth", request_body = TokenRequest,
    responses(
        (status = 200, description = "The verified account", body = UserBody),
        (status = 400, description = "`invalid_token`: unknown, used or expired", body = ProblemBody)))]
#[post("/auth/verify-email")]
pub async fn verify_email(
    state: web::Data<AppState>,
    Context(context): Context,
    Json(body): Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let user = state.auth.verify_email(&body.token, &context).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(&user)))
}

/// Runs a mail flow after the answer has gone: looking the address up,
/// storing the link and queueing the mail take the same (no) time for a
/// known and an unknown address, so the answer's timing tells nothing.
/// At most [`MAIL_FLOWS_AT_ONCE`] run at once; past that a flow is dropped
/// (and counted) rather than queued without bound: its caller may ask
/// again. Its log lines carry the request's id (`request_id`), and so do
/// its error reports.
fn after_answer(
    state: &AppState,
    flow: &'static str,
    request_id: Option<&str>,
    work: impl std::future::Future<Output = Result<(), pp_domain::ports::StoreError>> + 'static,
) {
    use tracing::Instrument;
    let Ok(permit) = std::sync::Arc::clone(&state.mail_flows).try_acquire_owned() else {
        metrics::counter!("mail_flows_dropped_total").increment(1);
        tracing::warn!(flow, "too many mail flows at once; this one was dropped");
        return;
    };
    // A span of its own naming the request, not the request's: that one
    // ends with its answer, as its trace should show.
    let span = tracing::info_span!(parent: None, "mail_flow", flow, request_id);
    span.follows_from(tracing::Span::current());
    actix_web::rt::spawn(sentry_core::SentryFutureExt::bind_hub(
        async move {
            if let Err(error) = work.await {
                tracing::error!(%error, flow, "a mail flow failed after its request was answered");
            }
            drop(permit);
        }
        .instrument(span),
        sentry_core::Hub::current(),
    ));
}

/// Mail flows (forgot, resend) that may run at once on an instance.
pub const MAIL_FLOWS_AT_ONCE: usize = 64;

/// Sends a new verification link if the address has an unverified account
/// (at most `MAILS_PER_ACCOUNT_PER_HOUR` links per account).
#[utoipa::path(tag = "auth", request_body = EmailRequest,
    responses((status = 202, description = "Always, whether or not the address exists", body = Accepted)))]
#[post("/auth/resend-verification", wrap = "from_fn(auth_limit)")]
pub async fn resend_verification(
    state: web::Data<AppState>,
    Context(context): Context,
    Json(body): Json<EmailRequest>,
) -> HttpResponse {
    let auth = state.auth.clone();
    let request_id = context.request_id.clone();
    after_answer(
        &state,
        "resend-verification",
        request_id.as_deref(),
        async move { auth.resend_verification(&body.email, &context).await },
    );
    accepted("if the address has an unverified account, a new link is on its way")
}

/// Logs in.
#[utoipa::path(tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Tokens; the refresh token is also set as a cookie", body = TokenResponse),
        (status = 401, description = "`invalid_credentials` (unknown address or wrong password alike), or `mfa_required` when the password was right and the account's second factor completes the login: its `challenge` and `expires_in` (seconds) go to `POST /auth/mfa`", body = ProblemBody),
        (status = 403, description = "`email_not_verified` or `account_disabled`", body = ProblemBody),
        (status = 423, description = "`account_locked`, with `Retry-After`", body = ProblemBody),
        (status = 429, description = "`rate_limited`", body = ProblemBody)))]
#[post("/auth/login", wrap = "from_fn(auth_limit)")]
pub async fn login(
    state: web::Data<AppState>,
    Context(context): Context,
    Json(body): Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let password = Password::presented(&body.password);
    let pair = state.auth.login(&body.email, &password, &context).await?;
    Ok(tokens(&pair))
}

/// Rotates a refresh token into a new pair. A token used twice ends its session.
#[utoipa::path(tag = "auth", request_body(content = RefreshRequest, description = "Optional when the `refresh_token` cookie is sent"),
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "`invalid_token`, or `token_reused` (the whole session was revoked)", body = ProblemBody)))]
#[post("/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    request: HttpRequest,
    Context(context): Context,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let parsed: RefreshRequest = crate::extract::parse_json(&request, &body)?;
        parsed.refresh_token
    };
    let token = from_body
        .or_else(|| request.cookie(REFRESH_COOKIE).map(|c| c.value().to_owned()))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "send the refresh token",
            )
        })?;
    let pair = state.auth.refresh(&token, &context).await?;
    Ok(tokens(&pair))
}

fn logged_out() -> HttpResponse {
    HttpResponse::NoContent()
        .cookie(refresh_cookie("", 0))
        .finish()
}

/// Ends this session: the access token and its refresh tokens stop working.
#[utoipa::path(tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Logged out"), (status = 401, description = "`unauthorized` / `invalid_token`", body = ProblemBody)))]
#[post("/auth/logout", wrap = "from_fn(require_user)")]
pub async fn logout(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    Context(context): Context,
) -> Result<HttpResponse, ApiError> {
    state.auth.logout(&principal, &context).await?;
    Ok(logged_out())
}

/// Ends every session of the account.
#[utoipa::path(tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Every session ended"), (status = 401, description = "`unauthorized` / `invalid_token`", body = ProblemBody)))]
#[post("/auth/logout-all", wrap = "from_fn(require_user)")]
pub async fn logout_all(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    Context(context): Context,
) -> Result<HttpResponse, ApiError> {
    state.auth.logout_all(&principal, &context).await?;
    Ok(logged_out())
}

/// Mails a single-use reset link (valid 1 h) if the address has an account
/// (at most `MAILS_PER_ACCOUNT_PER_HOUR` links per account).
#[utoipa::path(tag = "auth", request_body = EmailRequest,
    responses((status = 202, description = "Always, whether or not the address exists", body = Accepted)))]
#[post("/auth/password/forgot", wrap = "from_fn(auth_limit)")]
pub async fn forgot_password(
    state: web::Data<AppState>,
    Context(context): Context,
    Json(body): Json<EmailRequest>,
) -> HttpResponse {
    let auth = state.auth.clone();
    let request_id = context.request_id.clone();
    after_answer(
        &state,
        "forgot-password",
        request_id.as_deref(),
        async move { auth.forgot_password(&body.email, &context).await },
    );
    accepted("if the address has an account, a reset link is on its way")
}

/// Sets a new password with a reset link's token; every session ends.
#[utoipa::path(tag = "auth", request_body = ResetRequest,
    responses(
        (status = 204, description = "Password set; every session revoked"),
        (status = 400, description = "`invalid_token`: used or expired", body = ProblemBody),
        (status = 422, description = "`validation_failed`", body = ProblemBody)))]
#[post("/auth/password/reset")]
pub async fn reset_password(
    state: web::Data<AppState>,
    Context(context): Context,
    Json(body): Json<ResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let password = Password::presented(&body.new_password);
    state
        .auth
        .reset_password(&body.token, &password, &context)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changes the password; other sessions end, this one gets new tokens.
#[utoipa::path(tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "New tokens for this session", body = TokenResponse),
        (status = 403, description = "`invalid_credentials`: the current password is wrong (counts towards the lockout, as at login)", body = ProblemBody),
        (status = 422, description = "`validation_failed`", body = ProblemBody),
        (status = 423, description = "`account_locked`, with `Retry-After`", body = ProblemBody)))]
#[post("/auth/password/change", wrap = "from_fn(require_user)")]
pub async fn change_password(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    Context(context): Context,
    Json(body): Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let current = Password::presented(&body.current_password);
    let new_password = Password::presented(&body.new_password);
    let pair = state
        .auth
        .change_password(&principal, &current, &new_password, &context)
        .await?;
    Ok(tokens(&pair))
}
