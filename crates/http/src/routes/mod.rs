//! The route tables: the API's handlers, mounted under `/api/v1` (and
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
//! ([`crate::openapi::document`]). A route attribute turns its function
//! into a unit struct (the service), so code two routes share is a private
//! function they both call.

use std::rc::Rc;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use utoipa::openapi::path::PathItem;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::ops;

pub mod audit;
pub mod auth;
pub mod items;
pub mod live;
pub mod mfa;
pub mod notifications;
pub mod oidc;
pub mod photos;
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
        .service(mfa::complete_login)
        .service(mfa::totp_status)
        .service(mfa::begin_totp)
        .service(mfa::confirm_totp)
        .service(mfa::disable_totp)
        .service(oidc::providers)
        .service(oidc::start)
        .service(oidc::callback)
        .service(oidc::link_ticket)
        .service(oidc::my_identities)
        .service(oidc::unlink_identity)
        .service(users::me)
        .service(users::update_me)
        .service(users::list_users)
        .service(users::get_user)
        .service(users::update_user)
        .service(audit::audit_trail)
        .service(items::currency)
        .service(items::create_item)
        .service(items::list_items)
        .service(items::get_item)
        .service(items::cancel_item)
        .service(items::edit_item)
        .service(items::ledger)
        .service(items::place_bid)
        .service(items::own_bid)
        .service(items::revealed_bids)
        .service(photos::upload_photo)
        .service(photos::reorder_photos)
        .service(photos::delete_photo)
        .service(items::my_bids)
        .service(live::item_events)
        .service(live::ws_ticket)
        .service(notifications::my_notifications)
        .service(notifications::mark_notifications_read);
}

/// Mounts the handlers outside the API's base path: operations, the live
/// stream's short path and the WebSocket.
pub fn root(cfg: &mut ServiceConfig) {
    cfg.service(ops::health)
        .service(ops::ready)
        .service(ops::metrics)
        .service(live::root_item_events)
        .service(live::websocket)
        .service(photos::media)
        .service(photos::media_head);
}

/// A list of handlers to mount ([`api`], [`root`]).
pub(crate) type RouteTable = fn(&mut ServiceConfig);

/// The route tables and where [`crate::configure`] and the OpenAPI
/// document mount them: [`root`] at the root, [`api`] under the API's base
/// path (and, served only, under [`crate::API_ALIAS`]).
pub(crate) const TABLES: [(&str, RouteTable); 2] = [("", root), (crate::API_BASE, api)];

/// The methods each routed path answers, read from the route table's
/// OpenAPI paths: a request for a routed path with another method is told
/// so, 405 with `Allow`, not 404. actix-web's route attributes put the
/// method guard on the resource, so such a request finds no resource;
/// [`RoutedMethods::mount_refusals`] adds, after a table's routes, one
/// resource per path that takes what they leave.
#[derive(Clone, Debug)]
pub struct RoutedMethods(Rc<[(String, String)]>);

impl RoutedMethods {
    /// Every routed path (as the OpenAPI document spells it, which is also
    /// an actix-web pattern) and its methods.
    #[must_use]
    pub fn of_route_tables() -> Self {
        let paths = crate::openapi::routed().0;
        let routed: Vec<_> = paths
            .paths
            .iter()
            .map(|(path, item)| (path.clone(), allowed_methods(item).join(", ")))
            .collect();
        Self(routed.into())
    }

    /// Mounts on `cfg`, mounted at `base` (a [`TABLES`] base), a refusal
    /// for each routed path under `base`: any method its routes left, 405
    /// with the path's `Allow`. Matched by the same pattern as the routes,
    /// so metrics and logs name the route.
    pub fn mount_refusals(&self, base: &str, cfg: &mut web::ServiceConfig) {
        for (path, allow) in self.0.iter() {
            let relative = if base.is_empty() {
                // The root table's paths: those outside every other base.
                let elsewhere = TABLES
                    .iter()
                    .any(|(other, _)| !other.is_empty() && path.starts_with(other));
                (!elsewhere).then_some(path.as_str())
            } else {
                path.strip_prefix(base)
            };
            let Some(relative) = relative else { continue };
            let allow = allow.clone();
            cfg.service(web::resource(relative).to(move || {
                let allow = allow.clone();
                async move {
                    HttpResponse::MethodNotAllowed()
                        .insert_header((header::ALLOW, allow))
                        .finish()
                }
            }));
        }
    }
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
