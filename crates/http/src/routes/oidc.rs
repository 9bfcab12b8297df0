//! `/auth/oidc/*` and `/users/me/identities`: sign-in with OpenID Connect
//! providers, linking their identities to accounts, and unlinking.
//!
//! The flow is a browser's: `start` redirects to the provider, which sends
//! the browser back to `callback` (a top-level cross-site navigation). What
//! the callback needs — the `state` to compare, the `nonce` and the PKCE
//! verifier, and for a linking flow the account and session that asked —
//! travels in a cookie encrypted and authenticated with the server's key
//! (AES-GCM, actix-web's private cookie jar), `HttpOnly`, `SameSite=Lax`,
//! scoped to the callback's path, for ten minutes. The callback always
//! clears it, and answers every refusal with a redirect to the web app's
//! `/auth/complete?error=CODE`, audited.

use actix_web::cookie::{Cookie, CookieJar, Key, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use pp_domain::auth::RequestContext;
use pp_domain::auth::identities::{
    LinkedIdentity, OidcError, PendingSignIn, ProviderFailure, ProviderName, UnlinkError,
};
use pp_domain::auth::service::ProviderSignIn;
use pp_domain::{SessionId, UserId};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, ToSchema};

use super::auth::{REFRESH_COOKIE, refresh_cookie};
use crate::extract::{Authenticated, Context};
use crate::middleware::{auth_limit, require_user};
use crate::problem::{ApiError, ProblemBody};
use crate::state::AppState;

const FLOW_COOKIE: &str = "oidc_flow";
/// How long a started sign-in may take at the provider.
const FLOW_LIFETIME_SECS: i64 = 600;

/// The key of the flow cookie, derived from the server's secret.
#[derive(Clone)]
pub struct FlowKey(Key);

impl FlowKey {
    /// A key derived from `secret` (at least 32 bytes: the JWT secret).
    ///
    /// # Panics
    /// When `secret` is shorter than 32 bytes (configuration refuses it).
    #[must_use]
    pub fn derive_from(secret: &[u8]) -> Self {
        FlowKey(Key::derive_from(secret))
    }
}

impl std::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowKey(..)")
    }
}

/// What the flow cookie holds.
#[derive(Debug, Serialize, Deserialize)]
struct Flow {
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
    /// For a linking flow: the account and the session that asked.
    link: Option<(uuid::Uuid, uuid::Uuid)>,
    /// Unix seconds.
    issued_at: i64,
}

fn flow_path(provider: &ProviderName) -> String {
    format!("/api/v1/auth/oidc/{provider}/callback")
}

/// The flow cookie, encrypted.
fn flow_cookie(key: &FlowKey, flow: &Flow) -> Cookie<'static> {
    let provider =
        ProviderName::parse(&flow.provider).map_or_else(|_| String::new(), |p| flow_path(&p));
    let mut jar = CookieJar::new();
    jar.private_mut(&key.0).add(
        Cookie::build(FLOW_COOKIE, serde_json::to_string(flow).unwrap_or_default())
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Lax)
            .path(provider)
            .max_age(CookieDuration::seconds(FLOW_LIFETIME_SECS))
            .finish(),
    );
    jar.get(FLOW_COOKIE)
        .cloned()
        .unwrap_or_else(|| Cookie::new(FLOW_COOKIE, ""))
}

/// The flow cookie of `request`, decrypted, if it is ours and fresh.
fn read_flow(request: &HttpRequest, key: &FlowKey) -> Option<Flow> {
    let mut jar = CookieJar::new();
    jar.add_original(request.cookie(FLOW_COOKIE)?);
    let cookie = jar.private(&key.0).get(FLOW_COOKIE)?;
    let flow: Flow = serde_json::from_str(cookie.value()).ok()?;
    let age = chrono::Utc::now().timestamp() - flow.issued_at;
    (0..=FLOW_LIFETIME_SECS).contains(&age).then_some(flow)
}

/// The flow cookie, cleared.
fn cleared_flow(provider: &ProviderName) -> Cookie<'static> {
    let mut cookie = Cookie::build(FLOW_COOKIE, "")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .path(flow_path(provider))
        .finish();
    cookie.make_removal();
    cookie
}

/// A 302 to `location`, never cached.
fn redirect(location: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Found();
    response
        .insert_header((header::LOCATION, location.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    response
}

/// The web app's page that finishes a sign-in, with `query`.
fn complete(state: &AppState, query: &str) -> String {
    format!("{}/auth/complete{query}", state.auth.policy().public_url)
}

/// A configured provider's name, or 404.
fn provider_of(state: &AppState, name: &str) -> Result<ProviderName, ApiError> {
    ProviderName::parse(name)
        .ok()
        .filter(|name| {
            state
                .identity_providers
                .providers()
                .iter()
                .any(|p| p.name == *name)
        })
        .ok_or_else(provider_not_found)
}

/// The flow's cookies and redirect URI live under `/api/v1`: a flow begun
/// or ended on the unversioned alias (`/api/…`) is sent there (308) rather
/// than failing for want of its cookies.
fn on_versioned_path(request: &HttpRequest) -> Option<HttpResponse> {
    let path = request.path();
    if path.starts_with(crate::API_BASE) {
        return None;
    }
    let rest = path.strip_prefix(crate::API_ALIAS)?;
    let query = request.query_string();
    let target = if query.is_empty() {
        format!("{}{rest}", crate::API_BASE)
    } else {
        format!("{}{rest}?{query}", crate::API_BASE)
    };
    Some(
        HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, target))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
    )
}

/// The provider's `error` as it may be stored: the characters RFC 6749
/// allows in an error code, at most 64.
fn provider_error_text(raw: &str) -> String {
    raw.chars()
        .filter(|c| matches!(c, ' '..='!' | '#'..='[' | ']'..='~'))
        .take(64)
        .collect()
}

fn provider_not_found() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        "provider_not_found",
        "no OpenID provider of this name is configured",
    )
}

/// A provider offered on the sign-in pages.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderBody {
    /// In paths: `/auth/oidc/{name}/start`.
    #[schema(example = "google")]
    name: String,
    /// The button's text.
    #[schema(example = "Google")]
    label: String,
}

/// The configured OpenID providers, for the "Sign in with …" buttons.
#[utoipa::path(tag = "auth", responses((status = 200, body = [ProviderBody])))]
#[get("/auth/oidc/providers")]
pub async fn providers(state: web::Data<AppState>) -> HttpResponse {
    let providers: Vec<ProviderBody> = state
        .identity_providers
        .providers()
        .into_iter()
        .map(|p| ProviderBody {
            name: p.name.to_string(),
            label: p.label,
        })
        .collect();
    HttpResponse::Ok().json(providers)
}

/// `?link=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct StartQuery {
    /// A ticket from `POST /auth/oidc/link-ticket`: link the identity to
    /// that ticket's account instead of signing in (the browser's refresh
    /// cookie must belong to the ticket's session).
    link: Option<String>,
}

/// Starts a sign-in (or a link) with a provider: a redirect to it.
#[utoipa::path(tag = "auth", params(("name" = String, Path, description = "The provider"), StartQuery),
    responses(
        (status = 302, description = "To the provider; or to `/auth/complete?error=provider_unavailable` or `invalid_ticket`"),
        (status = 308, description = "From the unversioned `/api` path to `/api/v1`"),
        (status = 404, description = "`provider_not_found`", body = ProblemBody),
        (status = 429, description = "`rate_limited`", body = ProblemBody)))]
#[get("/auth/oidc/{name}/start", wrap = "from_fn(auth_limit)")]
pub async fn start(
    request: HttpRequest,
    state: web::Data<AppState>,
    Context(context): Context,
    path: web::Path<String>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, ApiError> {
    if let Some(moved) = on_versioned_path(&request) {
        return Ok(moved);
    }
    let provider = provider_of(&state, &path)?;
    let refuse = |code: &'static str, reason: String| {
        let state = state.clone();
        let provider = provider.clone();
        let context = context.clone();
        async move { refused(&state, &provider, code, Some(&reason), None, &context).await }
    };
    // The provider first: one that is down must not use up a link ticket.
    // A link makes the provider ask who is at the keyboard again.
    let started = match state
        .identity_providers
        .start(&provider, query.link.is_some())
        .await
    {
        Ok(started) => started,
        Err(ProviderFailure::UnknownProvider) => return Err(provider_not_found()),
        Err(failure) => return Ok(refuse(failure.code(), failure.to_string()).await),
    };
    let link = match &query.link {
        None => None,
        Some(ticket) => {
            let refresh = request.cookie(REFRESH_COOKIE).map(|c| c.value().to_owned());
            let reason = if refresh.is_none() {
                "no refresh cookie with the link ticket"
            } else {
                "link ticket unknown, used, expired or of another session"
            };
            match state.tickets.redeem_link(ticket, refresh.as_deref()).await {
                Ok(Some(holder)) => Some((holder.user.id.as_uuid(), holder.session.as_uuid())),
                Ok(None) => {
                    return Ok(refuse(OidcError::InvalidTicket.code(), reason.into()).await);
                }
                Err(error) => {
                    tracing::error!(%error, "redeeming a link ticket failed");
                    return Ok(refuse("server_error", "the store failed".into()).await);
                }
            }
        }
    };
    let flow = Flow {
        provider: provider.to_string(),
        state: started.pending.state,
        nonce: started.pending.nonce,
        verifier: started.pending.pkce_verifier,
        link,
        issued_at: chrono::Utc::now().timestamp(),
    };
    Ok(redirect(&started.url)
        .cookie(flow_cookie(&state.flow_key, &flow))
        .finish())
}

/// Audits a refusal and redirects to the web app with its code.
async fn refused(
    state: &AppState,
    provider: &ProviderName,
    code: &str,
    reason: Option<&str>,
    user: Option<UserId>,
    context: &RequestContext,
) -> HttpResponse {
    state
        .auth
        .audit_oidc_refusal(provider, code, reason, user, context)
        .await;
    redirect(&complete(state, &format!("?error={code}")))
        .cookie(cleared_flow(provider))
        .finish()
}

/// What the provider sends the browser back with.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CallbackQuery {
    /// The authorization code.
    code: Option<String>,
    /// The `state` sent.
    state: Option<String>,
    /// The provider's refusal, instead of a code.
    error: Option<String>,
}

/// The provider's redirect back: exchanges the code, checks the ID token,
/// then signs in (sets the refresh cookie) or links, and redirects to the
/// web app's `/auth/complete` (`?linked=NAME`, or `?error=CODE`).
#[utoipa::path(tag = "auth", params(("name" = String, Path, description = "The provider"), CallbackQuery),
    responses(
        (status = 302, description = "To `/auth/complete` (signed in: the refresh cookie is set), `/auth/complete#mfa=CHALLENGE` (the account's second factor completes the sign-in: `POST /auth/mfa`), `?linked=NAME`, or `?error=CODE`: `invalid_state`, `invalid_token`, `provider_error`, `provider_unavailable`, `email_not_verified`, `account_exists`, `identity_in_use`, `provider_already_linked`, `account_disabled`, `invalid_ticket`, `server_error`"),
        (status = 308, description = "From the unversioned `/api` path to `/api/v1`"),
        (status = 404, description = "`provider_not_found`", body = ProblemBody)))]
// Not under the auth rate limit: `start` paid for the flow, and a 429 here
// would come after the person signed in at the provider.
#[get("/auth/oidc/{name}/callback")]
pub async fn callback(
    request: HttpRequest,
    state: web::Data<AppState>,
    Context(context): Context,
    path: web::Path<String>,
    query: Result<web::Query<CallbackQuery>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    if let Some(moved) = on_versioned_path(&request) {
        return Ok(moved);
    }
    let provider = provider_of(&state, &path)?;
    let flow = read_flow(&request, &state.flow_key).filter(|f| f.provider == provider.as_str());
    let link = flow
        .as_ref()
        .and_then(|f| f.link)
        .map(|(user, session)| (UserId::from_uuid(user), SessionId::from_uuid(session)));
    let refuse = |code: &'static str, reason: String| {
        let state = state.clone();
        let provider = provider.clone();
        let context = context.clone();
        let user = link.map(|(user, _)| user);
        async move { refused(&state, &provider, code, Some(&reason), user, &context).await }
    };
    let Some(flow) = flow else {
        return Ok(refuse("invalid_state", "no flow cookie".into()).await);
    };
    let Ok(query) = query else {
        return Ok(refuse("invalid_state", "malformed query".into()).await);
    };
    let Some(returned) = query.state.as_deref() else {
        return Ok(refuse("invalid_state", "no state".into()).await);
    };
    if !bool::from(returned.as_bytes().ct_eq(flow.state.as_bytes())) {
        return Ok(refuse("invalid_state", "state differs".into()).await);
    }
    if let Some(error) = &query.error {
        return Ok(refuse("provider_error", provider_error_text(error)).await);
    }
    let Some(code) = query.code.as_deref() else {
        return Ok(refuse("provider_error", "no code".into()).await);
    };
    let pending = PendingSignIn {
        provider: provider.clone(),
        state: flow.state,
        nonce: flow.nonce,
        pkce_verifier: flow.verifier,
    };
    let identity = match state.identity_providers.finish(code, &pending).await {
        Ok(identity) => identity,
        // Removed from the configuration during the flow.
        Err(ProviderFailure::UnknownProvider) => {
            return Ok(refuse("provider_error", "no longer configured".into()).await);
        }
        Err(failure) => return Ok(refuse(failure.code(), failure.to_string()).await),
    };
    // The domain audits its own refusals.
    let outcome =
        match link {
            Some((user, session)) => state
                .auth
                .link_identity(user, session, &identity, &context)
                .await
                .map(|()| {
                    redirect(&complete(&state, &format!("?linked={provider}")))
                        .cookie(cleared_flow(&provider))
                        .finish()
                }),
            None => {
                state.auth.sign_in_with(&identity, &context).await.map(
                    |signed_in| match signed_in {
                        ProviderSignIn::Session(pair) => redirect(&complete(&state, ""))
                            .cookie(cleared_flow(&provider))
                            .cookie(refresh_cookie(
                                &pair.refresh_token,
                                pair.refresh_expires_in.num_seconds(),
                            ))
                            .finish(),
                        // In the fragment: it never reaches a server or its logs.
                        ProviderSignIn::SecondFactorRequired(issued) => redirect(&complete(
                            &state,
                            &format!("#mfa={}", issued.challenge.as_str()),
                        ))
                        .cookie(cleared_flow(&provider))
                        .finish(),
                    },
                )
            }
        };
    Ok(outcome.unwrap_or_else(|refusal| {
        if let OidcError::Store(error) = &refusal {
            tracing::error!(%error, "OpenID sign-in failed");
        }
        redirect(&complete(&state, &format!("?error={}", refusal.code())))
            .cookie(cleared_flow(&provider))
            .finish()
    }))
}

/// A ticket that starts a linking flow.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkTicketBody {
    /// Pass as `GET /auth/oidc/{name}/start?link=…` within `expires_in`
    /// seconds, from the browser holding this session's refresh cookie;
    /// works once.
    ticket: String,
    /// Seconds.
    expires_in: i64,
}

/// A single-use, 60-second ticket that starts linking an identity to your
/// account: open `/auth/oidc/{name}/start?link=TICKET` in this browser.
#[utoipa::path(tag = "auth", security(("bearer" = [])),
    responses(
        (status = 201, body = LinkTicketBody),
        (status = 401, description = "`unauthorized` / `invalid_token`", body = ProblemBody)))]
#[post("/auth/oidc/link-ticket", wrap = "from_fn(require_user)")]
pub async fn link_ticket(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let issued = state.tickets.issue_link(&principal).await?;
    Ok(HttpResponse::Created().json(LinkTicketBody {
        ticket: issued.ticket.as_str().to_owned(),
        expires_in: issued.expires_in.num_seconds(),
    }))
}

/// A linked identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityBody {
    /// The provider's name.
    provider: String,
    /// The provider's id of you.
    subject: String,
    /// The address the provider gave when it was linked.
    email: Option<String>,
    /// When it was linked.
    linked_at: chrono::DateTime<chrono::Utc>,
}

impl From<&LinkedIdentity> for IdentityBody {
    fn from(identity: &LinkedIdentity) -> Self {
        IdentityBody {
            provider: identity.provider.to_string(),
            subject: identity.subject.clone(),
            email: identity.email.clone(),
            linked_at: identity.linked_at,
        }
    }
}

/// The identities linked to your account.
#[utoipa::path(tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, body = [IdentityBody]),
        (status = 401, description = "`unauthorized` / `invalid_token`", body = ProblemBody)))]
#[get("/users/me/identities", wrap = "from_fn(require_user)")]
pub async fn my_identities(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let identities = state.auth.identities(&principal).await?;
    Ok(HttpResponse::Ok().json(
        identities
            .iter()
            .map(IdentityBody::from)
            .collect::<Vec<_>>(),
    ))
}

/// Unlinks your identity of a provider, unless it is your last way to sign
/// in (no password set, no other identity).
#[utoipa::path(tag = "users", security(("bearer" = [])),
    params(("provider" = String, Path, description = "The provider")),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 401, description = "`unauthorized` / `invalid_token`", body = ProblemBody),
        (status = 404, description = "`not_found`: no identity of that provider is linked", body = ProblemBody),
        (status = 409, description = "`last_sign_in_method`", body = ProblemBody)))]
#[delete("/users/me/identities/{provider}", wrap = "from_fn(require_user)")]
pub async fn unlink_identity(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    Context(context): Context,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let provider = ProviderName::parse(&path).map_err(|_| UnlinkError::NotLinked)?;
    state
        .auth
        .unlink_identity(&principal, &provider, &context)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
