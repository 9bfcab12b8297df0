//! # Poison Pill's HTTP layer
//!
//! actix-web handlers, extractors and middleware. Handlers parse requests
//! into domain values, call the services in [`AppState`], and shape the
//! answer; every error becomes RFC 7807 problem+json ([`problem`]).
//! [`configure`] mounts everything on an `App`; the composition root adds the
//! app-wide middleware with [`wrap_app`].

use actix_cors::Cors;
use actix_web::middleware::{Condition, DefaultHeaders};
use actix_web::{HttpResponse, web};
use utoipa_swagger_ui::SwaggerUi;

use utoipa_actix_web::service_config::ServiceConfig;

use crate::routes::RoutedMethods;

pub mod cursor;
pub mod errors;
pub mod extract;
pub mod fanout;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod problem;
pub mod routes;
pub mod state;
pub mod streams;

pub use cursor::CursorCodec;
pub use middleware::{RateLimits, RootSpan};
pub use ops::{MetricsSource, Probe, Probes};
pub use state::AppState;

/// The API's base path; [`API_ALIAS`] serves the same, as the latest version.
pub const API_BASE: &str = "/api/v1";

/// The unversioned base path: the latest version of the API, and the
/// prefix of everything the API serves (the OpenAPI document included).
pub const API_ALIAS: &str = "/api";

/// Mounts every route: the API under `/api/v1` and its `/api` alias, the
/// OpenAPI document and viewer, the live streams, the operational endpoints,
/// and the web app's files.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        // The metrics recorder exists before the first request is counted.
        ops::prometheus();
        let web_dir = state.web_dir.clone();
        let document = openapi::document(state.auth.policy().passwords.min_chars());
        let routed = RoutedMethods::of_route_tables();
        cfg.app_data(web::Data::new(state))
            .app_data(web::PayloadConfig::new(extract::BODY_LIMIT))
            .service(SwaggerUi::new("/docs/{_:.*}").url("/api/openapi.json", document))
            .service(web::resource("/docs").get(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/docs/"))
                    .finish()
            }));
        for (base, table) in routes::TABLES {
            if base.is_empty() {
                table(&mut ServiceConfig::new(cfg));
                routed.mount_refusals(base, cfg);
                continue;
            }
            // The alias serves the same table; both carry the handlers'
            // resource names, and `url_for` would name the one registered
            // last, the alias: nothing here builds URLs by name.
            for mounted_at in [base, API_ALIAS] {
                let routed = routed.clone();
                cfg.service(web::scope(mounted_at).configure(|scope| {
                    table(&mut ServiceConfig::new(scope));
                    routed.mount_refusals(base, scope);
                }));
            }
        }
        // Last, so that everything above wins: the web app's files, and its
        // index.html for every other path (client-side routes).
        if let Some(dir) = web_dir {
            let index = dir.join("index.html").display().to_string();
            cfg.service(
                actix_web_lab::web::spa()
                    .index_file(index)
                    .static_resources_mount("/")
                    .static_resources_location(dir.display().to_string())
                    .finish(),
            );
        }
    }
}

/// The headers every response carries (docs/spec/api.md, Conventions).
#[must_use]
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Content-Security-Policy", "frame-ancestors 'none'"))
}

/// CORS for the configured origins; with none configured the middleware is
/// skipped entirely (same-origin only) and costs nothing per request.
pub fn cors(allowed_origins: &[String]) -> Condition<Cors> {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers([
            "authorization",
            "content-type",
            "x-request-id",
            "last-event-id",
        ])
        .expose_headers([
            "x-request-id",
            "x-api-version",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "retry-after",
        ])
        .supports_credentials()
        .max_age(600);
    for origin in allowed_origins {
        cors = cors.allowed_origin(origin);
    }
    Condition::new(!allowed_origins.is_empty(), cors)
}

/// Wraps an `App` in the app-wide middleware, outermost first: request id,
/// client address, tracing, API and security headers, caching and transport
/// policy, metrics, the problem renderer, CORS, and the global rate limit.
#[macro_export]
macro_rules! wrap_app {
    ($app:expr, $cors:expr) => {
        $app.wrap(::actix_web::middleware::from_fn(
            $crate::middleware::global_limit,
        ))
        .wrap($cors)
        .wrap(::actix_web::middleware::from_fn(
            $crate::middleware::render_problems,
        ))
        .wrap(::actix_web::middleware::from_fn(
            $crate::middleware::record_metrics,
        ))
        .wrap(::actix_web::middleware::from_fn(
            $crate::middleware::response_policy,
        ))
        .wrap($crate::security_headers())
        .wrap(::actix_web::middleware::from_fn(
            $crate::middleware::api_version,
        ))
        .wrap(::tracing_actix_web::TracingLogger::<$crate::RootSpan>::new())
        .wrap(::actix_web::middleware::from_fn(
            $crate::middleware::client_ip,
        ))
        .wrap(::actix_web::middleware::from_fn(
            $crate::middleware::request_id,
        ))
    };
}
