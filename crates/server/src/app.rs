//! The composition root: builds every adapter from the settings and binds
//! the HTTP server. Nothing here decides anything; it only wires.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer};
use anyhow::Context;
use async_trait::async_trait;
use pp_crypto::{
    AesGcmSealer, Argon2Hasher, HashParams, JwtAccessTokens, JwtSettings, RandomSecretTokens,
    TotpCodes, ZxcvbnStrength,
};
use pp_domain::auth::ports::{AuditLog, RateLimiter, RevocationList};
use pp_domain::auth::tokens::TokenLifetimes;
use pp_domain::auth::tokens::{AuditCursor, AuditEntry, AuditFilter, AuditRecord};
use pp_domain::auth::{AuthPolicy, AuthPorts, AuthService, LockoutPolicy, TicketService};
use pp_domain::live::ConnectionSlots;
use pp_domain::outbox::{OutboxWorker, RetryPolicy};
use pp_domain::photos::PhotoService;
use pp_domain::ports::{Clock, LiveEvents, StoreError, SystemClock};
use pp_domain::retention::Retention;
use pp_domain::service::{AuctionPolicy, AuctionService};
use pp_http::streams::{SharedReads, Slots};
use pp_http::{AppState, CursorCodec, MetricsSource, Probe, Probes};
use pp_mail::MailSender;
use pp_media::{ImagePipeline, ObjectMedia};
use pp_oidc::{OidcProviders, ProviderHttp};
use pp_store_memory::{EventHub, MemoryConnectionSlots, MemoryRateLimiter, MemoryRevocationList};
use pp_store_redis::{
    Redis, RedisConnectionSlots, RedisLiveEvents, RedisRateLimiter, RedisRevocationList,
    RedisSettings,
};
use pp_store_sql::{Database, DatabaseSettings, SqlStore};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::config::{DatabaseConfig, Settings};
use crate::workers::Workers;

/// Readiness of the database: it answers a ping.
struct DatabaseProbe(Database);

#[async_trait]
impl Probe for DatabaseProbe {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> bool {
        self.0.ping().await.is_ok()
    }
}

/// Readiness of Redis: it answers a PING. Optional.
struct RedisProbe(Arc<Redis>);

#[async_trait]
impl Probe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }

    /// Without Redis each instance limits in memory and revocation falls
    /// back to the database: degraded, still serving.
    fn optional(&self) -> bool {
        true
    }

    async fn check(&self) -> bool {
        self.0.ping().await
    }
}

/// The database pool's use, as gauges.
struct PoolGauges(Database);

impl MetricsSource for PoolGauges {
    fn record(&self) {
        let (size, idle) = self.0.pool_stats();
        metrics::gauge!("db_pool_connections", "state" => "open").set(f64::from(size));
        metrics::gauge!("db_pool_connections", "state" => "idle").set(idle as f64);
    }
}

/// The audit log, counting each event for `/metrics` as it is recorded:
/// logins by outcome, lockouts, token reuse.
struct MeteredAuditLog(Arc<dyn AuditLog>);

#[async_trait]
impl AuditLog for MeteredAuditLog {
    async fn record(&self, entry: AuditEntry) -> Result<(), StoreError> {
        metrics::counter!("auth_events_total", "event" => entry.event.as_str()).increment(1);
        let event = entry.event.as_str();
        let recorded = self.0.record(entry).await;
        if let Err(error) = &recorded {
            // Some callers carry on (their change is stored): this is where
            // the lost entry is told.
            tracing::error!(event, error = %error, "an audit entry could not be written");
            metrics::counter!("audit_write_failures_total").increment(1);
        }
        recorded
    }

    async fn audit_trail(
        &self,
        filter: AuditFilter,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.0.audit_trail(filter, after, limit).await
    }
}

/// Connects to the database named by `config`.
///
/// # Errors
/// When it cannot be reached.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<Database> {
    let mut settings = DatabaseSettings::new(config.url.as_str());
    settings.max_connections = config.max_connections;
    Database::connect(&settings)
        .await
        .context("cannot open the database")
}

/// Connections of the bid batches' own pool: one batch runs at a time, and
/// a spare covers a connection being replaced.
const BID_POOL_CONNECTIONS: u32 = 2;

/// How long a request to an OpenID provider may take.
const OIDC_TIMEOUT: Duration = Duration::from_secs(10);

/// What instances share: Redis when configured, else this process's twins.
struct SharedState {
    redis: Option<Arc<Redis>>,
    limiter: Arc<dyn RateLimiter>,
    revocations: Arc<dyn RevocationList>,
    events: Arc<dyn LiveEvents>,
    slots: Arc<dyn ConnectionSlots>,
}

impl SharedState {
    fn build(settings: &Settings, hub: &Arc<EventHub>) -> anyhow::Result<Self> {
        let Some(config) = &settings.redis else {
            return Ok(SharedState {
                redis: None,
                limiter: Arc::new(MemoryRateLimiter::new()),
                revocations: Arc::new(MemoryRevocationList::new()),
                events: hub.clone(),
                slots: Arc::new(MemoryConnectionSlots::new()),
            });
        };
        let redis = Arc::new(
            Redis::connect(&RedisSettings {
                url: config.url.clone(),
                prefix: config.prefix.clone(),
                timeout: config.timeout,
            })
            .context("REDIS_URL: cannot set up the Redis connection")?,
        );
        Ok(SharedState {
            limiter: Arc::new(RedisRateLimiter::new(Arc::clone(&redis))),
            revocations: Arc::new(RedisRevocationList::new(
                Arc::clone(&redis),
                Duration::from_secs(5),
            )),
            events: Arc::new(RedisLiveEvents::start(Arc::clone(&redis), Arc::clone(hub))),
            slots: Arc::new(RedisConnectionSlots::new(Arc::clone(&redis))),
            redis: Some(redis),
        })
    }
}

/// Everything the HTTP layer and the command line use, built once.
pub struct Services {
    /// The database.
    pub database: Database,
    /// The SQL store (all repositories).
    pub store: Arc<SqlStore>,
    /// Accounts.
    pub auth: AuthService,
    /// Redis, when configured.
    pub redis: Option<Arc<Redis>>,
    /// Rate limits (Redis, or this instance).
    pub limiter: Arc<dyn RateLimiter>,
    /// Items and bids.
    pub auctions: AuctionService,
    /// WebSocket and link tickets.
    pub tickets: TicketService,
    /// The configured OpenID providers (discovered by `serve`).
    pub identity_providers: Arc<OidcProviders>,
    /// This instance's live subscribers.
    pub hub: Arc<EventHub>,
    /// Places for open live connections (Redis, or this instance).
    pub slots: Arc<dyn ConnectionSlots>,
    /// Delivers the mail outbox.
    pub outbox: OutboxWorker,
    /// Purges what is past retention.
    pub retention: Retention,
    /// Item photos: processing, storage, serving, purging.
    pub photos: PhotoService,
    /// Cancelled when the process begins to stop.
    pub stopping: CancellationToken,
    /// Places for the mail flows that run after their answer; a stop waits
    /// until every place is back.
    mail_flows: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

impl Services {
    /// Connects, migrates and wires every adapter.
    ///
    /// # Errors
    /// When the database cannot be reached or migrated, or an adapter cannot start.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let database = connect(&settings.database).await?;
        database
            .migrate_up()
            .await
            .context("cannot apply the database migrations")?;
        let sealer = Arc::new(AesGcmSealer::new(settings.bid_sealing_key.expose_secret()));
        let mut store = SqlStore::new(database.clone(), sealer);
        if database.is_postgres() {
            let bid_pool = DatabaseConfig {
                max_connections: BID_POOL_CONNECTIONS,
                ..settings.database.clone()
            };
            store = store.with_bid_pool(connect(&bid_pool).await?);
        }
        // Items from before the ledger get their chains (their bids'
        // sealed amounts are needed, which the migration could not open).
        let chained = store
            .chain_pending_items()
            .await
            .context("cannot chain the bid ledgers of items from before the ledger")?;
        if chained > 0 {
            tracing::info!(items = chained, "chained the bid ledgers of earlier items");
        }
        let store = Arc::new(store);

        let hub = EventHub::new();
        let SharedState {
            redis,
            limiter,
            revocations,
            events,
            slots,
        } = SharedState::build(settings, &hub)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);

        let mail = MailSender::new(
            &settings.mail.transport,
            &settings.mail.from,
            settings.public_url.as_str(),
        )
        .context("cannot set up mail delivery")?;
        let retention = Retention::new(store.clone(), Arc::clone(&clock), settings.retention);
        let outbox = OutboxWorker::new(
            store.clone(),
            Arc::new(mail),
            Arc::clone(&clock),
            RetryPolicy {
                max_attempts: settings.mail_max_attempts,
                ..RetryPolicy::default()
            },
        );
        // Computing the dummy hash takes a few tens of milliseconds of CPU.
        let (threads, queue) = (settings.hash_threads, settings.hash_queue);
        let hasher = tokio::task::spawn_blocking(move || {
            Argon2Hasher::with_queue(HashParams::POLICY, threads, queue)
        })
        .await??;
        let jwt = JwtAccessTokens::new(
            settings.jwt_secret.expose_secret().as_bytes(),
            JwtSettings::default(),
        );
        let audit: Arc<dyn AuditLog> = Arc::new(MeteredAuditLog(store.clone()));
        let ports = AuthPorts {
            users: store.clone(),
            sessions: store.clone(),
            one_time: store.clone(),
            audit: Arc::clone(&audit),
            hasher: Arc::new(hasher),
            strength: Arc::new(ZxcvbnStrength),
            access: Arc::new(jwt),
            secrets: Arc::new(RandomSecretTokens),
            revocations,
            identities: store.clone(),
            second_factors: store.clone(),
            codes: Arc::new(TotpCodes),
            clock: Arc::clone(&clock),
        };
        let policy = AuthPolicy {
            passwords: settings.password_policy,
            lockout: LockoutPolicy::default(),
            lifetimes: TokenLifetimes {
                access: chrono::Duration::from_std(settings.access_token_ttl)
                    .context("ACCESS_TOKEN_TTL_SECS: out of range")?,
                ..TokenLifetimes::default()
            },
            require_verified_email: settings.require_email_verification,
            public_url: settings.public_url.as_str().to_owned(),
            mails_per_account_per_hour: settings.mails_per_account_per_hour,
            require_admin_second_factor: settings.require_admin_second_factor,
        };
        let auctions = AuctionService::new(
            store.clone(),
            events,
            Arc::clone(&clock),
            AuctionPolicy {
                require_verified_email: settings.require_email_verification,
            },
        )
        .with_audit(audit);
        let media = ObjectMedia::open(&settings.media).context("cannot open the photo storage")?;
        let photos = PhotoService::new(
            store.clone(),
            store.clone(),
            Arc::new(media),
            Arc::new(ImagePipeline::new(
                settings.photo_workers,
                settings.photo_workers,
            )),
            Arc::clone(&clock),
        );
        let tickets = TicketService::new(
            store.clone(),
            Arc::new(RandomSecretTokens),
            store.clone(),
            clock,
        );
        let identity_providers = Arc::new(
            OidcProviders::new(
                settings.oidc.clone(),
                settings.public_url.as_str(),
                ProviderHttp::new(OIDC_TIMEOUT).context("cannot set up the OpenID client")?,
            )
            .context("OIDC_PROVIDERS")?,
        );
        Ok(Services {
            database,
            store,
            auth: AuthService::new(ports, policy),
            redis,
            limiter,
            auctions,
            tickets,
            identity_providers,
            hub,
            slots,
            outbox,
            retention,
            photos,
            stopping: CancellationToken::new(),
            mail_flows: Arc::new(tokio::sync::Semaphore::new(
                pp_http::routes::auth::MAIL_FLOWS_AT_ONCE,
            )),
        })
    }

    /// Starts the background work on this runtime, supervised: closing
    /// auctions, delivering mail, purging.
    #[must_use]
    pub fn start_workers(&self) -> Workers {
        let mut workers = Workers::new();
        let auctions = self.auctions.clone();
        workers.supervise("closer", move |stop| {
            crate::workers::close_auctions(auctions.clone(), stop)
        });
        let tickets = self.tickets.clone();
        workers.supervise("ticket_purge", move |stop| {
            crate::workers::purge_tickets(tickets.clone(), stop)
        });
        let outbox = self.outbox.clone();
        workers.supervise("mail", move |stop| {
            crate::workers::deliver_mail(outbox.clone(), stop)
        });
        let retention = self.retention.clone();
        workers.supervise("retention", move |stop| {
            crate::workers::purge_retained(retention.clone(), stop)
        });
        let photos = self.photos.clone();
        workers.supervise("media_purge", move |stop| {
            crate::workers::purge_media(photos.clone(), stop)
        });
        workers
    }

    /// Stops the background work (each loop between two rounds, within
    /// nine tenths of `within`), then gives back the mail this process
    /// still holds, all within `within`.
    pub async fn stop_workers(&self, workers: Workers, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        workers.stop(within.mul_f64(0.9)).await;
        if tokio::time::timeout_at(deadline, self.release_claims())
            .await
            .is_err()
        {
            tracing::warn!(
                "giving back the outbox messages took too long; they are due again after the lease"
            );
        }
    }

    /// Gives back the outbox messages this process holds, so another
    /// worker sends them at once rather than after the lease.
    pub async fn release_claims(&self) {
        match self.outbox.release().await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "outbox messages released"),
            Err(error) => {
                tracing::warn!(error = %error, "releasing outbox messages failed; they are due again after the lease")
            }
        }
    }

    /// The operational endpoints alone (`/health`, `/ready`, `/metrics`) on
    /// `BIND_ADDR`, for a process that serves no API (`poison-pill worker`):
    /// what its probes and the metrics scraper need. Returns the server
    /// (not yet polled) and its port.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn serve_operations(&self, settings: &Settings) -> anyhow::Result<(Server, u16)> {
        let state = self.http_state(settings);
        let listener = TcpListener::bind(settings.bind_addr)
            .with_context(|| format!("cannot listen on {}", settings.bind_addr))?;
        let port = listener.local_addr()?.port();
        pp_http::ops::prometheus();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(actix_web::web::Data::new(state.clone()))
                .service(pp_http::ops::health)
                .service(pp_http::ops::ready)
                .service(pp_http::ops::metrics)
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        Ok((server, port))
    }

    fn http_state(&self, settings: &Settings) -> AppState {
        let mut probes = Probes::default().with(Arc::new(DatabaseProbe(self.database.clone())));
        if let Some(redis) = &self.redis {
            probes = probes.with(Arc::new(RedisProbe(Arc::clone(redis))));
        }
        AppState {
            auth: self.auth.clone(),
            auctions: self.auctions.clone(),
            photos: self.photos.clone(),
            tickets: self.tickets.clone(),
            identity_providers: self.identity_providers.clone(),
            flow_key: pp_http::routes::oidc::FlowKey::derive_from(
                settings.jwt_secret.expose_secret().as_bytes(),
            ),
            live: self.hub.clone(),
            item_frames: Arc::new(pp_http::fanout::ItemFrames::new(self.hub.clone())),
            limiter: Arc::clone(&self.limiter),
            limits: settings.rate_limits,
            trusted_proxies: settings.trusted_proxies.clone(),
            cursors: CursorCodec::new(settings.jwt_secret.expose_secret().as_bytes()),
            probes,
            metrics_sources: vec![Arc::new(PoolGauges(self.database.clone()))],
            web_dir: settings
                .web_dir
                .join("index.html")
                .is_file()
                .then(|| settings.web_dir.clone()),
            ws_ping: settings.ws_ping,
            keep_alive: settings.sse_keep_alive,
            // A lease outlives two missed renewals (keep-alives, pings).
            sse_streams: Slots::new(
                Arc::clone(&self.slots),
                "sse",
                settings.live_streams_per_ip,
                settings.sse_keep_alive * 3,
            ),
            sockets: Slots::new(
                Arc::clone(&self.slots),
                "ws",
                settings.sockets_per_user,
                settings.ws_ping * 3,
            ),
            keep_alive_reads: Arc::new(SharedReads::new(settings.sse_keep_alive)),
            hsts: settings.public_url.is_https(),
            mail_flows: Arc::clone(&self.mail_flows),
            stopping: self.stopping.clone(),
        }
    }
}

/// How long an idle HTTP/1.1 connection is kept open for its next request.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// The HTTP connections open now: each connection's own data holds a
/// [`ConnectionGuard`], dropped when the connection ends.
#[derive(Clone, Debug, Default)]
struct OpenConnections(Arc<AtomicUsize>);

/// Counts one open connection for as long as it lives.
struct ConnectionGuard(OpenConnections);

impl OpenConnections {
    fn opened(&self) -> ConnectionGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("http_connections_open").increment(1.0);
        ConnectionGuard(self.clone())
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("http_connections_open").decrement(1.0);
    }
}

/// The two phases of a stop within `timeout`: first the connections are
/// let go on their own (each closes after its next answer, an idle one at
/// its keep-alive), then actix stops what is left, waiting for in-flight
/// requests. In whole seconds, as actix takes its part.
fn stop_phases(timeout: Duration) -> (Duration, Duration) {
    let total = timeout.as_secs().max(1);
    let let_go = (KEEP_ALIVE.as_secs() + 1).min(total / 2);
    (
        Duration::from_secs(let_go),
        Duration::from_secs(total - let_go),
    )
}

/// Makes the kernel refuse connections to `listener` from now on, and
/// reset those waiting in its backlog, while the connections already
/// accepted carry on. (actix's pause only stops taking them: the kernel
/// would go on completing handshakes that nobody answers.)
fn refuse_connections(listener: &TcpListener) {
    // On a listening socket, Linux's shutdown(SHUT_RD) stops the listening.
    if let Err(error) = rustix::net::shutdown(listener, rustix::net::Shutdown::Read) {
        tracing::warn!(error = %error, "could not close the listener early; it closes when the server stops");
    }
}

/// A built server, bound to its port but not yet running.
pub struct Application {
    port: u16,
    server: Server,
    services: Services,
    workers: Option<Workers>,
    shutdown_timeout: Duration,
    /// The listening socket (a second handle to it), closed first on a stop.
    listener: TcpListener,
    connections: OpenConnections,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish()
    }
}

impl Application {
    /// Connects, migrates, wires and binds (port 0 picks a free port).
    ///
    /// # Errors
    /// When the database cannot be reached or migrated, or the address cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        for doubt in settings.public_url.doubts() {
            tracing::warn!(public_url = settings.public_url.as_str(), "{doubt}");
        }
        let services = Services::build(&settings).await?;
        // A provider that is down now is retried in the background: it
        // never keeps the API from starting.
        services.identity_providers.spawn_discovery();
        let state = services.http_state(&settings);
        if state.web_dir.is_none() {
            tracing::warn!(
                web_dir = %settings.web_dir.display(),
                "no built web app there (run `make web`); serving the API only"
            );
        }
        let origins = settings.cors_origins.clone();

        let listener = TcpListener::bind(settings.bind_addr)
            .with_context(|| format!("cannot listen on {}", settings.bind_addr))?;
        let port = listener.local_addr()?.port();
        tokio::spawn(pp_http::ops::metrics_upkeep());
        // Read from the database: every instance can report them.
        tokio::spawn(crate::workers::outbox_gauges(services.store.clone()));
        let workers = settings.run_workers.then(|| services.start_workers());
        if settings.redis.is_none() && !settings.run_workers {
            tracing::warn!(
                "RUN_WORKERS=false without REDIS_URL: auctions closed by a `poison-pill worker` will not reach this instance's live streams"
            );
        }
        let connections = OpenConnections::default();
        let counted = connections.clone();
        let listening = listener.try_clone()?;
        let server = HttpServer::new(move || {
            pp_http::wrap_app!(
                App::new().configure(pp_http::configure(state.clone())),
                pp_http::cors(&origins)
            )
        })
        .on_connect(move |_, data| {
            data.insert(counted.opened());
        })
        .keep_alive(KEEP_ALIVE)
        // How much of a streamed body actix gathers before it writes: a
        // connection keeps the largest buffer it ever needed (up to
        // 128 KiB), and ten thousand live streams each kept 32 KiB after a
        // burst. With this and the streams' chunks of at most
        // `pp_http::routes::live::MAX_CHUNK`, a stream's buffer mostly
        // stays at its first 8 KiB (16 after a partial write to a slow
        // client).
        .h1_write_buffer_size(pp_http::routes::live::WRITE_BUFFER)
        // The signals are ours (`serve_until`): readiness, the live streams
        // and the connections must hear of the stop before actix's own.
        .disable_signals()
        .shutdown_timeout(stop_phases(settings.shutdown_timeout).1.as_secs())
        .listen(listening)?
        .run();
        let url = format!("http://{}:{port}", settings.bind_addr.ip());
        tracing::info!(port, %url, "listening: open {url}");
        Ok(Application {
            port,
            server,
            services,
            workers,
            shutdown_timeout: settings.shutdown_timeout,
            listener,
            connections,
        })
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The wired services (for tests that inspect what the server stored).
    #[must_use]
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until the process is asked to stop (SIGINT/SIGTERM), then
    /// stops gracefully (see [`Application::serve_until`]).
    ///
    /// # Errors
    /// When the signals cannot be listened to, or the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stop = crate::stop_signal()?;
        self.serve_until(stop).await
    }

    /// Serves until `stop` resolves, then stops within the shutdown
    /// timeout: `/ready` answers 503 and the listener closes at once, live
    /// streams end (SSE with a `retry:` hint, WebSockets with 1001), every
    /// answer from then on closes its connection, in-flight requests and
    /// the background loops finish (cut off at the timeout), and the mail
    /// this process holds is given back. See [`stop_phases`].
    ///
    /// # Errors
    /// When the server fails.
    pub async fn serve_until(self, stop: impl Future<Output = ()>) -> std::io::Result<()> {
        let Application {
            server,
            services,
            workers,
            shutdown_timeout,
            listener,
            connections,
            ..
        } = self;
        let handle = server.handle();
        let mut server = std::pin::pin!(server);
        tokio::select! {
            served = &mut server => {
                // The server failed on its own: the loops stop too.
                if let Some(workers) = workers {
                    services.stop_workers(workers, shutdown_timeout).await;
                }
                return served;
            }
            () = stop => {}
        }
        tracing::info!(
            timeout_secs = shutdown_timeout.as_secs(),
            "stopping: no new connections; finishing what is in flight"
        );
        services.stopping.cancel();
        // Closing an idle connection races the request its client may be
        // sending on it, which would be lost: rather, every connection is
        // let go on its own first, closing after its next answer
        // (`Connection: close`) or at its keep-alive.
        let (let_go_within, _) = stop_phases(shutdown_timeout);
        let http = async {
            let let_go_by = tokio::time::Instant::now() + let_go_within;
            handle.pause().await;
            // The accept thread acts on the pause after it answers; and a
            // connection it handed over just before is counted only once a
            // worker takes it up.
            tokio::time::sleep(Duration::from_millis(100)).await;
            refuse_connections(&listener);
            // A mail flow runs after its answer has gone, on the workers
            // that are about to stop: the mail it queues was promised, so
            // the flows are waited for too.
            let flows_running = || {
                services.mail_flows.available_permits() < pp_http::routes::auth::MAIL_FLOWS_AT_ONCE
            };
            while (connections.count() > 0 || flows_running())
                && tokio::time::Instant::now() < let_go_by
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if flows_running() {
                tracing::warn!("mail flows still running are cut off");
            }
            handle.stop(true).await;
        };
        let loops = async {
            if let Some(workers) = workers {
                services.stop_workers(workers, shutdown_timeout).await;
            }
        };
        // The server future carries out the pause and the stop.
        let (served, (), ()) = tokio::join!(server, http, loops);
        tracing::info!("stopped");
        served
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_lets_connections_go_past_a_keep_alive_then_gives_actix_the_rest() {
        let phases = |secs| {
            let (let_go, actix) = stop_phases(Duration::from_secs(secs));
            (let_go.as_secs(), actix.as_secs())
        };
        assert_eq!(phases(20), (6, 14));
        assert_eq!(phases(10), (5, 5));
        assert_eq!(phases(3), (1, 2));
        assert_eq!(phases(1), (0, 1));
    }
}
