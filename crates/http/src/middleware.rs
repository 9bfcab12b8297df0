//! Middleware every request passes through, outermost first: request id,
//! client address, the root tracing span, API and security headers, metrics,
//! the problem renderer, CORS, and the rate limits.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, web};
use ipnet::IpNet;
use pp_domain::auth::ports::{RateDecision, RateLimit};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

use crate::problem::ApiError;
use crate::state::AppState;

/// This request's id: the caller's well-formed `X-Request-Id`, or a new UUID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The client's address: the TCP peer, or behind a trusted proxy the
/// right-most untrusted `X-Forwarded-For` hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// What per-client limits count against: an IPv4 address itself (also
    /// when it arrives IPv4-mapped, `::ffff:a.b.c.d`), an IPv6 address by
    /// its network of `ipv6_prefix` bits. One IPv6 subscriber is handed a
    /// whole /64 and can rotate through it at will.
    #[must_use]
    pub fn limit_key(self, ipv6_prefix: u8) -> IpNet {
        match self.0.to_canonical() {
            IpAddr::V4(v4) => IpNet::from(IpAddr::V4(v4)),
            IpAddr::V6(v6) => ipnet::Ipv6Net::new(v6, ipv6_prefix.min(128)).map_or_else(
                |_| IpNet::from(IpAddr::V6(v6)),
                |net| IpNet::V6(net.trunc()),
            ),
        }
    }
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn well_formed_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Gives the request its id and echoes it on the response; with error
/// reports on, tags what is reported from within it with the id.
///
/// # Errors
/// Only what the inner services return.
pub async fn request_id(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed_request_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    // With error reports on, the request gets a hub of its own: a report
    // from within it (a 5xx cause, a panic) is tagged with its id.
    let mut response = if sentry_core::Hub::main().client().is_some() {
        let hub = std::sync::Arc::new(sentry_core::Hub::new_from_top(sentry_core::Hub::main()));
        hub.configure_scope(|scope| scope.set_tag("request_id", &id));
        sentry_core::SentryFutureExt::bind_hub(next.call(request), hub).await?
    } else {
        next.call(request).await?
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    Ok(response)
}

/// The client address for `peer` given the `X-Forwarded-For` values and the
/// trusted proxies. Hops are read right to left; the first one not trusted is
/// the client (a client cannot forge what a trusted proxy appended).
#[must_use]
pub fn resolve_client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    // A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`; they are
    // the IPv4 addresses the trusted list names.
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
            // Garbage in the chain: the last address we could trust is the client.
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// Works out the client address once per request.
///
/// # Errors
/// Only what the inner services return.
pub async fn client_ip(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let trusted = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.trusted_proxies.clone())
        .unwrap_or_default();
    let peer = request
        .peer_addr()
        .map_or(IpAddr::from([127, 0, 0, 1]), |addr| addr.ip());
    let forwarded: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let ip = resolve_client_ip(peer, &forwarded, &trusted);
    request.extensions_mut().insert(ClientIp(ip));
    next.call(request).await
}

/// The root span of every request: the request id, method, path (never the
/// query string, which may carry a ticket) and client address, and on
/// completion the status.
#[derive(Debug)]
pub struct RootSpan;

impl RootSpanBuilder for RootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let extensions = request.extensions();
        let request_id = extensions.get::<RequestId>().map_or("", |id| id.0.as_str());
        let client_ip = extensions
            .get::<ClientIp>()
            .map(|ip| ip.0.to_string())
            .unwrap_or_default();
        let route = request.match_pattern();
        let route = route.as_deref().unwrap_or("unmatched");
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %format_args!("{} {route}", request.method()),
            otel.kind = "server",
            request_id = %request_id,
            http.method = %request.method(),
            http.route = %route,
            http.target = %request.path(),
            http.client_ip = %client_ip,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        );
        // A caller's W3C `traceparent` makes this span a child of its trace.
        // Without trace export there is no propagator and no parent (and
        // `set_parent` fails harmlessly).
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&TraceHeaders(request.headers()))
        });
        let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent);
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// A request's headers, as OpenTelemetry's propagators read them.
struct TraceHeaders<'a>(&'a actix_web::http::header::HeaderMap);

impl opentelemetry::propagation::Extractor for TraceHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .map(actix_web::http::header::HeaderName::as_str)
            .collect()
    }
}

/// The path as the router matches it: percent-escapes decoded (all but
/// `%`, `/` and `+`), so that `/%61pi/…` is judged as the `/api/…` it is
/// routed to. Decisions about a path (limits, caching, versions) use this;
/// only logs keep the raw one.
fn routed_path(request: &actix_web::HttpRequest) -> &str {
    request.match_info().as_str()
}

fn is_api(path: &str) -> bool {
    path.strip_prefix(crate::API_ALIAS)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The live-events alias outside `/api`.
fn is_events(path: &str) -> bool {
    path == "/events" || path.starts_with("/events/")
}

/// `X-API-Version: 1` on every API response, and `X-API-Version-Defaulted:
/// true` when the version was left out of the path.
///
/// # Errors
/// Only what the inner services return.
pub async fn api_version(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let path = routed_path(request.request()).to_owned();
    let mut response = next.call(request).await?;
    // `/events/{id}` is the short name of a v1 endpoint, not an unversioned
    // path: versioned, never "defaulted".
    if is_api(&path) || is_events(&path) {
        response.headers_mut().insert(
            HeaderName::from_static("x-api-version"),
            HeaderValue::from_static("1"),
        );
    }
    let versioned =
        path.starts_with("/api/v1/") || path == "/api/v1" || path == "/api/openapi.json";
    if is_api(&path) && !versioned {
        response.headers_mut().insert(
            HeaderName::from_static("x-api-version-defaulted"),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// The method as a metrics label: one of a fixed few, so that a client
/// inventing methods cannot grow the label set (and the memory) without end.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Whether `path` answers with credentials or the caller's own account:
/// the auth endpoints, `/users/me` and what is under it (`/identities`),
/// and `/ws-ticket`, under either base path.
fn carries_credentials(path: &str) -> bool {
    path.strip_prefix(crate::API_BASE)
        .or_else(|| path.strip_prefix(crate::API_ALIAS))
        .is_some_and(|rest| {
            rest.starts_with("/auth/")
                || rest == "/users/me"
                || rest.starts_with("/users/me/")
                || rest == "/ws-ticket"
        })
}

/// `Cache-Control: no-store` on answers that carry tokens or the caller's
/// account (no browser or shared cache may keep them, errors included),
/// `Strict-Transport-Security` on every answer when the public URL is
/// `https` (then plain HTTP is never right), and `Connection: close` on
/// every answer once the process is stopping.
///
/// # Errors
/// Only what the inner services return.
pub async fn response_policy(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let no_store = carries_credentials(routed_path(request.request()));
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let hsts = state.as_ref().is_some_and(|state| state.hsts);
    let mut response = next.call(request).await?;
    if state.is_some_and(|state| state.stopping.is_cancelled())
        && response.status() != StatusCode::SWITCHING_PROTOCOLS
    {
        // Stopping: no further request on this connection, so its client
        // opens a new one, to another instance, instead of racing the close.
        response
            .response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    let headers = response.headers_mut();
    if no_store {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    Ok(response)
}

/// Request counts and latency by route pattern and status, and the access
/// log: one line per request. Every label is bounded: the method by
/// [`method_label`], the route by the app's own patterns (`unmatched` for
/// any other path), the status by HTTP.
///
/// # Errors
/// Only what the inner services return.
pub async fn record_metrics(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = method_label(request.method()).to_owned();
    // Never an error: `render_problems`, inside, turns errors into responses.
    let response = next.call(request).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    let elapsed = started.elapsed();
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    // The access log: one line per request, inside its span (request id,
    // method, path, client address). Probes, every few seconds from an
    // orchestrator, only at debug.
    let (route, status) = (&labels[1].1, &labels[2].1);
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if matches!(route.as_str(), "/health" | "/ready" | "/metrics") {
        tracing::debug!(http.route = %route, http.status_code = %status, latency_ms, "request served");
    } else {
        tracing::info!(http.route = %route, http.status_code = %status, latency_ms, "request served");
    }
    Ok(response)
}

/// Turns every error response into `application/problem+json` carrying the
/// request id and path: [`ApiError`]s with their own code, anything actix
/// produced (no route, wrong method) by its status.
///
/// # Errors
/// Never: errors of inner services become problem responses too.
pub async fn render_problems<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let response = match next.call(request).await {
        Ok(response) => response,
        Err(error) => return Err(error),
    };
    let status = response.status();
    let has_error = response.response().error().is_some();
    let empty = matches!(
        response.response().body().size(),
        BodySize::None | BodySize::Sized(0)
    );
    // A handler that wrote its own error body (e.g. /ready's 503) keeps it.
    if !(status.is_client_error() || status.is_server_error()) || (!has_error && !empty) {
        return Ok(response.map_into_left_body());
    }
    let problem = response
        .response()
        .error()
        .and_then(|error| error.as_error::<ApiError>().cloned())
        .unwrap_or_else(|| {
            // A 500 that no `ApiError::internal` reported (actix's own, or
            // an extractor's): reported here, by what actix says of it.
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                let cause = response
                    .response()
                    .error()
                    .map_or_else(|| "no cause given".to_owned(), ToString::to_string);
                tracing::error!(%cause, "request failed without an error of ours");
                sentry_core::capture_message(
                    &format!("request failed: {cause}"),
                    sentry_core::Level::Error,
                );
            }
            ApiError::for_status(status)
        });
    let request_id = response
        .request()
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let body = problem.body(&request_id, response.request().path());
    let (request, old) = response.into_parts();
    let mut rendered = HttpResponse::build(status);
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.append_header((name.clone(), value.clone()));
        }
    }
    let rendered = rendered
        .content_type("application/problem+json")
        .body(serde_json::to_vec(&body).unwrap_or_default());
    Ok(ServiceResponse::new(request, rendered).map_into_right_body())
}

/// The three limit classes of docs/spec/api.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitClass {
    /// Every request to `/api` and `/events`, per client address.
    Global,
    /// Login, register, forgot (and resend), per client address.
    Auth,
    /// Auction writes, per authenticated user.
    Write,
}

impl LimitClass {
    fn name(self) -> &'static str {
        match self {
            LimitClass::Global => "global",
            LimitClass::Auth => "auth",
            LimitClass::Write => "write",
        }
    }
}

/// The configured limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// `RATE_LIMIT_GLOBAL`.
    pub global: RateLimit,
    /// `RATE_LIMIT_WRITE`.
    pub write: RateLimit,
    /// `RATE_LIMIT_AUTH`.
    pub auth: RateLimit,
    /// `RATE_LIMIT_IPV6_PREFIX`: IPv6 clients are counted by their network
    /// of this many bits (see [`ClientIp::limit_key`]).
    pub ipv6_prefix: u8,
}

impl RateLimits {
    fn of(&self, class: LimitClass) -> RateLimit {
        match class {
            LimitClass::Global => self.global,
            LimitClass::Auth => self.auth,
            LimitClass::Write => self.write,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            global: RateLimit {
                max: 10,
                window: Duration::from_secs(10),
            },
            write: RateLimit {
                max: 3,
                window: Duration::from_secs(60),
            },
            auth: RateLimit {
                max: 5,
                window: Duration::from_secs(60),
            },
            ipv6_prefix: 64,
        }
    }
}

/// The decisions made for this request, for the `RateLimit-*` headers.
#[derive(Clone, Debug, Default)]
struct Decisions(Vec<RateDecision>);

/// `duration` in whole seconds, rounded up.
pub(crate) fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

fn rate_headers(decision: &RateDecision) -> [(HeaderName, String); 3] {
    [
        (
            HeaderName::from_static("ratelimit-limit"),
            decision.limit.to_string(),
        ),
        (
            HeaderName::from_static("ratelimit-remaining"),
            decision.remaining.to_string(),
        ),
        (
            HeaderName::from_static("ratelimit-reset"),
            whole_seconds(decision.reset_after).to_string(),
        ),
    ]
}

/// Counts a hit of `class` for `subject`; `Err` with a 429 problem when over.
///
/// # Errors
/// 429 `rate_limited` with `Retry-After` and the `RateLimit-*` headers.
pub async fn enforce(
    request: &actix_web::HttpRequest,
    class: LimitClass,
    subject: &str,
) -> Result<(), ApiError> {
    let Some(state) = request.app_data::<web::Data<AppState>>() else {
        return Ok(());
    };
    let key = format!("{}:{subject}", class.name());
    let decision = state.limiter.hit(&key, state.limits.of(class)).await;
    request
        .extensions_mut()
        .get_or_insert_with(Decisions::default)
        .0
        .push(decision);
    if decision.allowed {
        return Ok(());
    }
    metrics::counter!("rate_limited_total", "class" => class.name()).increment(1);
    let retry_after = whole_seconds(decision.reset_after).max(1);
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; try again in {retry_after} s"),
    )
    .with_header(header::RETRY_AFTER, retry_after.to_string());
    for (name, value) in rate_headers(&decision) {
        error = error.with_header(name, value);
    }
    Err(error)
}

fn client_key(request: &actix_web::HttpRequest) -> String {
    let prefix = request
        .app_data::<web::Data<AppState>>()
        .map_or(RateLimits::default().ipv6_prefix, |state| {
            state.limits.ipv6_prefix
        });
    request.extensions().get::<ClientIp>().map_or_else(
        || "unknown".to_owned(),
        |ip| format!("ip:{}", ip.limit_key(prefix)),
    )
}

/// Applies `class` to the request's client address, then writes the
/// `RateLimit-*` headers of the most restrictive limit that applied.
async fn limit_by_ip<B: MessageBody + 'static>(
    class: LimitClass,
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, BoxBody>>, Error> {
    let key = client_key(request.request());
    if let Err(error) = enforce(request.request(), class, &key).await {
        return Ok(refuse(request, error));
    }
    let mut response = next.call(request).await?;
    let tightest = response
        .request()
        .extensions()
        .get::<Decisions>()
        // A refusal's own limit first, so the headers match its Retry-After.
        .and_then(|d| d.0.iter().min_by_key(|d| (d.allowed, d.remaining)).copied());
    if let Some(decision) = tightest {
        for (name, value) in rate_headers(&decision) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    Ok(response.map_into_left_body())
}

/// The global limit, for `/api`, `/events` and `/ws` (whose every attempt
/// spends a ticket lookup).
///
/// # Errors
/// Only what the inner services return.
pub async fn global_limit<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, BoxBody>>, Error> {
    let path = routed_path(request.request());
    if is_api(path) || is_events(path) || path == "/ws" {
        limit_by_ip(LimitClass::Global, request, next).await
    } else {
        Ok(next.call(request).await?.map_into_left_body())
    }
}

/// Answers `error` instead of calling the route.
fn refuse<B>(request: ServiceRequest, error: ApiError) -> ServiceResponse<EitherBody<B, BoxBody>> {
    let (request, _) = request.into_parts();
    ServiceResponse::new(request, HttpResponse::from_error(error)).map_into_right_body()
}

/// Judges the bearer token before anything else of the route runs (its
/// extractors would otherwise race it, and a bad body could answer before a
/// bad token), then hands the account to the handler's
/// [`Authenticated`](crate::extract::Authenticated) extractor.
///
/// # Errors
/// Only what the inner services return; a refused token is a 401 response.
pub async fn require_user<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, BoxBody>>, Error> {
    authenticate_first(request, next, false).await
}

/// [`require_user`], and the account must be an admin (else 403
/// `forbidden`), also before the body is looked at.
///
/// # Errors
/// Only what the inner services return; a refusal is a 401/403 response.
pub async fn require_admin<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, BoxBody>>, Error> {
    authenticate_first(request, next, true).await
}

async fn authenticate_first<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
    admins_only: bool,
) -> Result<ServiceResponse<EitherBody<B, BoxBody>>, Error> {
    let judged = crate::extract::authenticate(request.request())
        .await
        .and_then(|principal| {
            if admins_only {
                crate::extract::admin_only(request.request(), &principal)?;
            }
            Ok(principal)
        });
    match judged {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            Ok(next.call(request).await?.map_into_left_body())
        }
        Err(error) => Ok(refuse(request, error)),
    }
}

/// The auth limit (login, register, forgot, resend).
///
/// # Errors
/// Only what the inner services return.
pub async fn auth_limit<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, BoxBody>>, Error> {
    limit_by_ip(LimitClass::Auth, request, next).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve_client_ip(ip("203.0.113.5"), &["1.2.3.4"], &trusted),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "192.168.1.1/32"]);
        let spoofed_then_real = ["6.6.6.6, 198.51.100.7", "192.168.1.1"];
        assert_eq!(
            resolve_client_ip(ip("10.1.2.3"), &spoofed_then_real, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve_client_ip(ip("10.1.2.3"), &["10.9.9.9"], &trusted),
            ip("10.9.9.9")
        );
        assert_eq!(
            resolve_client_ip(ip("10.1.2.3"), &[], &trusted),
            ip("10.1.2.3")
        );
        assert_eq!(
            resolve_client_ip(ip("10.1.2.3"), &["bogus, 10.0.0.9"], &trusted),
            ip("10.0.0.9")
        );
        // IPv4-mapped peers and hops are their IPv4 addresses.
        assert_eq!(
            resolve_client_ip(ip("::ffff:10.1.2.3"), &["198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve_client_ip(ip("10.1.2.3"), &["198.51.100.7, ::ffff:10.0.0.9"], &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_network_and_ipv4_by_their_address() {
        let key = |addr: &str, prefix| ClientIp(ip(addr)).limit_key(prefix).to_string();
        assert_eq!(key("2001:db8:1:2:aaaa::1", 64), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff::9", 64), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:3::1", 64), "2001:db8:1:3::/64");
        assert_eq!(key("2001:db8:1:2:aaaa::1", 48), "2001:db8:1::/48");
        assert_eq!(key("2001:db8::1", 128), "2001:db8::1/128");
        assert_eq!(key("203.0.113.7", 64), "203.0.113.7/32");
        // IPv4-mapped: the IPv4 address, never the /64 every IPv4 client shares.
        assert_eq!(key("::ffff:203.0.113.7", 64), "203.0.113.7/32");
        assert_ne!(
            key("::ffff:203.0.113.7", 64),
            key("::ffff:198.51.100.1", 64)
        );
    }

    #[test]
    fn credentials_are_answered_by_the_auth_endpoints_and_users_me_only() {
        for path in [
            "/api/v1/auth/login",
            "/api/auth/refresh",
            "/api/v1/users/me",
            "/api/users/me",
            "/api/v1/users/me/identities",
            "/api/v1/ws-ticket",
        ] {
            assert!(carries_credentials(path), "{path}");
        }
        for path in [
            "/api/v1/users",
            "/api/v1/items",
            "/health",
            "/auth/login",
            "/api/v1/users/me2",
        ] {
            assert!(!carries_credentials(path), "{path}");
        }
    }

    #[test]
    fn request_ids_are_short_and_plain_or_replaced() {
        assert!(well_formed_request_id("abc-123_X.y"));
        for bad in ["", "has space", "semi;colon", &"a".repeat(129), "ünicode"] {
            assert!(!well_formed_request_id(bad), "{bad}");
        }
    }

    #[test]
    fn reset_rounds_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(10)), 10);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
    }
}
