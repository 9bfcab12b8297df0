//! The route table: the API's handlers, mounted under `/api/v1` (and
//! `/api`, the latest), and those outside it.
//!
//! Each handler declares itself once, above its function: the method and
//! path in actix-web's route attribute (with the middleware it needs:
//! `require_user`, `require_admin`, `auth_limit`, so the token is judged
//! before the body is read), the answers in `#[utoipa::path]`, which reads
//! the method and path from the route attribute. [`api`] lists the
//! handlers and [`root`] those outside the API's base path; mounting one
//! registers its route and its OpenAPI entry together (utoipa-actix-web),
//! and the OpenAPI document is collected from these two lists
//! ([`crate::openapi::document`]).

use std::rc::Rc;

use actix_router::{ResourceDef, Url};
use actix_web::dev::RequestHead;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, Resource, guard, web};
use utoipa::openapi::path::PathItem;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::ops;

pub mod auth;
pub mod items;
pub mod live;
pub mod users;

/// Mounts every API handler on `cfg` (relative to the API's base path).
pub fn api(cfg: &mut ServiceConfig) {
    cfg.service(auth::policy)
        .service(auth::register)
        .service(auth::verify_email)
        .service(auth::resend_verification)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(auth::logout_all)
        .service(auth::forgot_password)
        .service(auth::reset_password)
        .service(auth::change_password)
        .service(users::me)
        .service(users::update_me)
        .service(users::list_users)
        .service(users::get_user)
        .service(users::update_user)
        .service(items::create_item)
        .service(items::list_items)
        .service(items::get_item)
        .service(items::cancel_item)
        .service(items::place_bid)
        .service(items::own_bid)
        .service(items::revealed_bids)
        .service(items::my_bids)
        .service(live::item_events)
        .service(live::ws_ticket);
}

/// Mounts the handlers outside the API's base path: operations, the live
/// stream's short path and the WebSocket.
pub fn root(cfg: &mut ServiceConfig) {
    cfg.service(ops::health)
        .service(ops::ready)
        .service(ops::metrics)
        .service(live::root_item_events)
        .service(live::websocket);
}

/// The refusal's path pattern: any path (its guard picks the routed ones).
pub(crate) const ANY_PATH: &str = "/{any_path:.*}";

/// The methods each routed path answers, read from the OpenAPI document
/// (which the route table fills): a request for a routed path with another
/// method is told so, 405 with `Allow`, not 404. actix-web's route
/// attributes put the method guard on the resource, so such a request
/// finds no resource; [`RoutedMethods::refusal`] catches it after the rest.
#[derive(Clone, Debug)]
pub struct RoutedMethods(Rc<[(ResourceDef, String)]>);

impl RoutedMethods {
    /// The documented paths and their methods, and each API path's alias
    /// under `/api`.
    #[must_use]
    pub fn of(document: &utoipa::openapi::OpenApi) -> Self {
        let mut routed = Vec::new();
        for (path, item) in &document.paths.paths {
            let allow = allowed_methods(item).join(", ");
            if let Some(rest) = path.strip_prefix(crate::API_BASE) {
                routed.push((ResourceDef::new(format!("/api{rest}")), allow.clone()));
            }
            routed.push((ResourceDef::new(path.as_str()), allow));
        }
        Self(routed.into())
    }

    /// The `Allow` header for `path` (as the router sees it), if routed.
    #[must_use]
    pub fn allow(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(routed, _)| routed.is_match(path))
            .map(|(_, allow)| allow.as_str())
    }

    /// A resource for any path that takes only requests for routed paths,
    /// to mount after every route of its scope: they reach it only when
    /// their method is not among the path's.
    #[must_use]
    pub fn refusal(&self) -> Resource {
        let (guarding, answering) = (self.clone(), self.clone());
        web::resource(ANY_PATH)
            .guard(guard::fn_guard(move |context| {
                guarding.allow(&routed_path(context.head())).is_some()
            }))
            .to(move |request: HttpRequest| {
                let allow = answering
                    .allow(&routed_path(request.head()))
                    .unwrap_or_default()
                    .to_owned();
                async move {
                    HttpResponse::MethodNotAllowed()
                        .insert_header((header::ALLOW, allow))
                        .finish()
                }
            })
    }
}

/// The request's path as the router matches it (percent-decoded where
/// that changes no meaning).
fn routed_path(head: &RequestHead) -> String {
    Url::new(head.uri.clone()).path().to_owned()
}

/// An operation's methods, upper case, in the order the document lists them.
fn allowed_methods(item: &PathItem) -> Vec<&'static str> {
    [
        ("GET", item.get.is_some()),
        ("PUT", item.put.is_some()),
        ("POST", item.post.is_some()),
        ("DELETE", item.delete.is_some()),
        ("OPTIONS", item.options.is_some()),
        ("HEAD", item.head.is_some()),
        ("PATCH", item.patch.is_some()),
        ("TRACE", item.trace.is_some()),
    ]
    .into_iter()
    .filter_map(|(method, present)| present.then_some(method))
    .collect()
}
