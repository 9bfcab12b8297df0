//! # Poison Pill's HTTP layer
//!
//! actix-web handlers and the probes behind the operational endpoints.
//! Handlers parse requests and shape responses; everything else happens in
//! the services and adapters they are given.

use actix_web::web;

pub mod health;

pub use health::{Probe, Probes};

/// Mounts every route served by this crate.
pub fn configure(probes: Probes) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(probes))
            .route("/health", web::get().to(health::health))
            .route("/ready", web::get().to(health::ready));
    }
}
