//! What every handler can reach.

use std::sync::Arc;

use ipnet::IpNet;
use pp_domain::auth::identities::IdentityProviders;
use pp_domain::auth::ports::RateLimiter;
use pp_domain::auth::{AuthService, TicketService};
use pp_domain::live::LiveSubscriptions;
use pp_domain::service::AuctionService;
use tokio_util::sync::CancellationToken;

use crate::cursor::CursorCodec;
use crate::middleware::RateLimits;
use crate::ops::{MetricsSource, Probes};
use crate::streams::{SharedReads, Slots};

/// The services and settings the HTTP layer works with; built by the
/// composition root.
#[derive(Clone)]
pub struct AppState {
    /// Accounts.
    pub auth: AuthService,
    /// Items and bids.
    pub auctions: AuctionService,
    /// Item photos and their images.
    pub photos: pp_domain::photos::PhotoService,
    /// WebSocket and link tickets.
    pub tickets: TicketService,
    /// The configured OpenID providers.
    pub identity_providers: Arc<dyn IdentityProviders>,
    /// Encrypts the OpenID flow cookie.
    pub flow_key: crate::routes::oidc::FlowKey,
    /// Live events to subscribe to.
    pub live: Arc<dyn LiveSubscriptions>,
    /// Items' live events, encoded once per instance for every SSE stream.
    pub item_frames: Arc<crate::fanout::ItemFrames>,
    /// Rate-limit counters.
    pub limiter: Arc<dyn RateLimiter>,
    /// The configured limits.
    pub limits: RateLimits,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Signs pagination cursors.
    pub cursors: CursorCodec,
    /// What `/ready` checks.
    pub probes: Probes,
    /// Gauges refreshed when `/metrics` is scraped.
    pub metrics_sources: Vec<Arc<dyn MetricsSource>>,
    /// The built web app (its `index.html` and assets), when there is one.
    pub web_dir: Option<std::path::PathBuf>,
    /// How often a WebSocket is pinged and its session checked; also how
    /// long a send to it may wait before the client is dropped.
    pub ws_ping: std::time::Duration,
    /// How often an SSE stream sends its keep-alive comment (and checks
    /// where its item stands).
    pub keep_alive: std::time::Duration,
    /// Open SSE streams per client address (`LIVE_STREAMS_PER_IP`).
    pub sse_streams: Slots,
    /// Open WebSockets per account (`SOCKETS_PER_USER`).
    pub sockets: Slots,
    /// The keep-alive reads the streams of one item share.
    pub keep_alive_reads: Arc<SharedReads>,
    /// Whether every answer carries `Strict-Transport-Security` (the
    /// public URL is `https`).
    pub hsts: bool,
    /// Places for the mail flows that run after their answer (see
    /// [`MAIL_FLOWS_AT_ONCE`](crate::routes::auth::MAIL_FLOWS_AT_ONCE)).
    pub mail_flows: Arc<tokio::sync::Semaphore>,
    /// Cancelled when the process begins to stop (SIGTERM): `/ready`
    /// answers 503, live streams end (SSE with a `retry:` hint, WebSockets
    /// with 1001), and every answer closes its connection, so clients move
    /// to another instance while in-flight requests finish here.
    pub stopping: CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("limits", &self.limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}
