//! The API's handlers, mounted under `/api/v1` (and `/api`, the latest).

use actix_web::dev::HttpServiceFactory;
use actix_web::middleware::from_fn;
use actix_web::{FromRequest, Handler, Resource, Responder, Route, web};

use crate::middleware::{auth_limit, require_admin, require_user};

pub mod auth;
pub mod items;
pub mod live;
pub mod users;

/// Mounts every API route on `cfg` (relative to the API's base path).
/// Routes for signed-in callers are wrapped in [`user`] or [`admin`]: the
/// token is judged before the body is read.
pub fn api(cfg: &mut web::ServiceConfig) {
    cfg.service(auth_limited("/auth/register", auth::register))
        .service(auth_limited("/auth/login", auth::login))
        .service(auth_limited("/auth/password/forgot", auth::forgot_password))
        .service(auth_limited(
            "/auth/resend-verification",
            auth::resend_verification,
        ))
        .service(at("/auth/policy", web::get().to(auth::policy)))
        .service(at("/auth/verify-email", web::post().to(auth::verify_email)))
        .service(at("/auth/refresh", web::post().to(auth::refresh)))
        .service(at("/auth/logout", user(web::post().to(auth::logout))))
        .service(at(
            "/auth/logout-all",
            user(web::post().to(auth::logout_all)),
        ))
        .service(at(
            "/auth/password/reset",
            web::post().to(auth::reset_password),
        ))
        .service(at(
            "/auth/password/change",
            user(web::post().to(auth::change_password)),
        ))
        .service(
            web::resource("/users/me")
                .route(user(web::get().to(users::me)))
                .route(user(web::patch().to(users::update_me))),
        )
        .service(at("/users", admin(web::get().to(users::list_users))))
        .service(
            web::resource("/users/{id}")
                .route(admin(web::get().to(users::get_user)))
                .route(admin(web::patch().to(users::update_user))),
        )
        .service(
            web::resource("/items")
                .route(web::get().to(items::list_items))
                .route(admin(web::post().to(items::create_item))),
        )
        .service(at("/items/{id}", web::get().to(items::get_item)))
        .service(at(
            "/items/{id}/cancel",
            admin(web::post().to(items::cancel_item)),
        ))
        .service(
            web::resource("/items/{id}/bid")
                .route(user(web::get().to(items::own_bid)))
                .route(user(web::post().to(items::place_bid))),
        )
        .service(at("/items/{id}/bids", web::get().to(items::revealed_bids)))
        .service(at("/items/{id}/events", web::get().to(live::item_events)))
        .service(at("/me/bids", user(web::get().to(items::my_bids))))
        .service(at("/ws-ticket", user(web::post().to(live::ws_ticket))));
}

/// A resource of one route: another method on its path is a 405 with
/// `Allow`, not a 404 (a route mounted straight on the config would move
/// its method guard onto the path).
pub(crate) fn at(path: &str, route: Route) -> Resource {
    web::resource(path).route(route)
}

/// A route for any signed-in account.
fn user(route: Route) -> Route {
    route.wrap(from_fn(require_user))
}

/// A route for admins only.
fn admin(route: Route) -> Route {
    route.wrap(from_fn(require_admin))
}

/// A POST resource under the auth rate limit (per client address).
fn auth_limited<F, Args>(path: &str, handler: F) -> impl HttpServiceFactory + use<F, Args>
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .wrap(from_fn(auth_limit))
}
