//! `/health` (the process runs) and `/ready` (its dependencies answer).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use async_trait::async_trait;
use serde::Serialize;

/// How long `/ready` waits for any one dependency.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A dependency `/ready` checks.
#[async_trait]
pub trait Probe: Send + Sync {
    /// The name shown in `/ready`'s body, e.g. `database`.
    fn name(&self) -> &'static str;
    /// Whether the dependency answers now.
    async fn check(&self) -> bool;
}

/// The dependencies `/ready` checks, all at once.
#[derive(Clone, Default)]
pub struct Probes(Vec<Arc<dyn Probe>>);

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|p| p.name()))
            .finish()
    }
}

impl Probes {
    /// Adds a dependency.
    #[must_use]
    pub fn with(mut self, probe: Arc<dyn Probe>) -> Self {
        self.0.push(probe);
        self
    }
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    checks: std::collections::BTreeMap<&'static str, &'static str>,
}

/// 200 while the process runs.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// 200 when every dependency answers, else 503 naming the ones that do not.
pub async fn ready(probes: web::Data<Probes>) -> HttpResponse {
    let checks = futures_util::future::join_all(probes.0.iter().map(|probe| async move {
        let up = actix_web::rt::time::timeout(PROBE_TIMEOUT, probe.check())
            .await
            .unwrap_or(false);
        (probe.name(), if up { "up" } else { "down" })
    }))
    .await;
    let all_up = checks.iter().all(|(_, state)| *state == "up");
    let body = Readiness {
        status: if all_up { "ready" } else { "unavailable" },
        checks: checks.into_iter().collect(),
    };
    if all_up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
