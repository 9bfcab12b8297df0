//! The OpenAPI 3.1 document of every endpoint, served at `/api/openapi.json`
//! with an interactive viewer at `/docs` (Swagger UI, vendored: it works offline).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{ops, problem, routes};

/// The whole API.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Poison Pill",
        description = "A sealed-bid silent auction with poisoned (proxy) bids. Every error is RFC 7807 \
                       problem+json with a stable `error_code`. `/api/...` without a version serves the \
                       latest and adds `X-API-Version-Defaulted: true`.",
        version = "1"
    ),
    paths(
        routes::auth::register,
        routes::auth::verify_email,
        routes::auth::resend_verification,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::logout_all,
        routes::auth::forgot_password,
        routes::auth::reset_password,
        routes::auth::change_password,
        routes::users::me,
        routes::users::update_me,
        routes::users::list_users,
        routes::users::get_user,
        routes::users::update_user,
        routes::items::create_item,
        routes::items::list_items,
        routes::items::get_item,
        routes::items::cancel_item,
        routes::items::place_bid,
        routes::items::own_bid,
        routes::items::revealed_bids,
        routes::items::my_bids,
        routes::live::item_events,
        routes::live::root_item_events,
        routes::live::ws_ticket,
        routes::live::websocket,
        ops::health,
        ops::ready,
        ops::metrics,
    ),
    components(schemas(
        problem::ProblemBody,
        problem::ProblemField,
        routes::live::ClosedBody,
        routes::live::NotificationBody,
    )),
    modifiers(&BearerAuth, &DocumentPaths),
    tags(
        (name = "auth", description = "Registration, login, sessions and passwords"),
        (name = "users", description = "Your account; accounts for admins"),
        (name = "items", description = "Items up for auction"),
        (name = "bids", description = "Sealed bids, poisoned or plain; revealed after close"),
        (name = "live", description = "Live prices (Server-Sent Events, also at `/events/{item_id}`) and personal notifications (WebSocket)"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document's own two paths. Swagger UI's service answers them, so no
/// handler of ours carries a `#[utoipa::path]` for them.
struct DocumentPaths;

impl Modify for DocumentPaths {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder};
        use utoipa::openapi::{ContentBuilder, ResponseBuilder};
        let get = |summary: &str, status: &str, response: ResponseBuilder| {
            OperationBuilder::new()
                .tag("operations")
                .summary(Some(summary))
                .response(status, response.build())
                .build()
        };
        openapi.paths.add_path_operation(
            "/api/openapi.json",
            vec![HttpMethod::Get],
            get(
                "This document",
                "200",
                ResponseBuilder::new()
                    .description("OpenAPI 3.1")
                    .content("application/json", ContentBuilder::new().build()),
            ),
        );
        openapi.paths.add_path_operation(
            "/docs",
            vec![HttpMethod::Get],
            get(
                "The interactive viewer (Swagger UI, served from this binary)",
                "308",
                ResponseBuilder::new().description("To `/docs/`, the viewer's page"),
            ),
        );
    }
}
