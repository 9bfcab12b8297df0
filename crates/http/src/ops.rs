//! Operations: `/health` (the process runs), `/ready` (its dependencies
//! answer) and `/metrics` (Prometheus text).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use async_trait::async_trait;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// How long `/ready` waits for any one dependency.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A dependency `/ready` checks.
#[async_trait]
pub trait Probe: Send + Sync {
    /// The name shown in `/ready`'s body, e.g. `database`.
    fn name(&self) -> &'static str;
    /// Whether the instance can serve without it. An optional dependency
    /// that is down makes the instance `degraded`, still ready: taking
    /// every replica out of the load balancer for it would turn a partial
    /// outage into a whole one.
    fn optional(&self) -> bool {
        false
    }
    /// Whether the dependency answers now.
    async fn check(&self) -> bool;
}

/// Something that refreshes gauges (e.g. pool use) when `/metrics` is scraped.
pub trait MetricsSource: Send + Sync {
    /// Sets the gauges to their current values.
    fn record(&self);
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

#[derive(Serialize, ToSchema)]
pub(crate) struct Status {
    status: &'static str,
}

/// `/ready`'s body.
#[derive(Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `ready`; `degraded` while an optional dependency (Redis) is down;
    /// `unavailable` (503) while a required one (the database) is;
    /// `stopping` (503, no checks) once the process is shutting down.
    #[schema(value_type = String, example = "ready")]
    status: &'static str,
    /// Each dependency: `up` or `down`.
    #[schema(value_type = Object)]
    checks: std::collections::BTreeMap<&'static str, &'static str>,
}

/// Whether the process runs.
#[utoipa::path(tag = "operations",
    responses((status = 200, description = "The process runs", body = Status)))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Whether the instance can serve: 200 while every required dependency
/// answers (`degraded` when an optional one does not), else 503; 503 too
/// from the moment the process is stopping, whatever its dependencies.
#[utoipa::path(tag = "operations", responses(
    (status = 200, description = "`ready`, or `degraded` while Redis is down (the service works without it)", body = Readiness),
    (status = 503, description = "`unavailable`: the database does not answer; `stopping`: the process is shutting down (SIGTERM) and finishing what is in flight", body = Readiness)))]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.stopping.is_cancelled() {
        return HttpResponse::ServiceUnavailable().json(Readiness {
            status: "stopping",
            checks: std::collections::BTreeMap::new(),
        });
    }
    let checks = futures_util::future::join_all(state.probes.0.iter().map(|probe| async move {
        let up = actix_web::rt::time::timeout(PROBE_TIMEOUT, probe.check())
            .await
            .unwrap_or(false);
        (probe.name(), probe.optional(), up)
    }))
    .await;
    let required_up = checks.iter().all(|(_, optional, up)| *up || *optional);
    let all_up = checks.iter().all(|(_, _, up)| *up);
    let body = Readiness {
        status: match (required_up, all_up) {
            (true, true) => "ready",
            (true, false) => "degraded",
            (false, _) => "unavailable",
        },
        checks: checks
            .into_iter()
            .map(|(name, _, up)| (name, if up { "up" } else { "down" }))
            .collect(),
    };
    if required_up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &buckets)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed already, which this
        // process never does.
        // `::metrics`: the crate, not the `metrics` handler of this module.
        let _ = ::metrics::set_global_recorder(recorder);
        handle
    })
}

/// Drains recorded histogram samples into their buckets every few seconds.
/// The recorder keeps raw samples until then, so without this the memory of
/// an instance nobody scrapes would grow with every request.
pub async fn metrics_upkeep() {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        prometheus().run_upkeep();
    }
}

/// Prometheus text exposition.
#[utoipa::path(tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    for source in &state.metrics_sources {
        source.record();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(prometheus().render())
}
