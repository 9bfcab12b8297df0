//! The composition root: builds every adapter from the settings and binds
//! the HTTP server. Nothing here decides anything; it only wires.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer};
use anyhow::Context;
use async_trait::async_trait;
use pp_crypto::{
    AesGcmSealer, Argon2Hasher, HashParams, JwtAccessTokens, JwtSettings, RandomSecretTokens,
    ZxcvbnStrength,
};
use pp_domain::auth::ports::{AuditLog, RateLimiter, RevocationList};
use pp_domain::auth::tokens::TokenLifetimes;
use pp_domain::auth::tokens::{AuditCursor, AuditEntry, AuditFilter, AuditRecord};
use pp_domain::auth::{AuthPolicy, AuthPorts, AuthService, LockoutPolicy, TicketService};
use pp_domain::live::ConnectionSlots;
use pp_domain::outbox::{OutboxWorker, RetryPolicy};
use pp_domain::ports::{Clock, LiveEvents, StoreError, SystemClock};
use pp_domain::retention::Retention;
use pp_domain::service::{AuctionPolicy, AuctionService};
use pp_http::streams::{SharedReads, Slots};
use pp_http::{AppState, CursorCodec, MetricsSource, Probe, Probes};
use pp_mail::MailSender;
use pp_store_memory::{EventHub, MemoryConnectionSlots, MemoryRateLimiter, MemoryRevocationList};
use pp_store_redis::{
    Redis, RedisConnectionSlots, RedisLiveEvents, RedisRateLimiter, RedisRevocationList,
    RedisSettings,
};
use pp_store_sql::{Database, DatabaseSettings, SqlStore};
use secrecy::ExposeSecret;

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
    /// WebSocket tickets.
    pub tickets: TicketService,
    /// This instance's live subscribers.
    pub hub: Arc<EventHub>,
    /// Places for open live connections (Redis, or this instance).
    pub slots: Arc<dyn ConnectionSlots>,
    /// Delivers the mail outbox.
    pub outbox: OutboxWorker,
    /// Purges what is past retention.
    pub retention: Retention,
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
        let tickets = TicketService::new(
            store.clone(),
            Arc::new(RandomSecretTokens),
            store.clone(),
            clock,
        );
        Ok(Services {
            database,
            store,
            auth: AuthService::new(ports, policy),
            redis,
            limiter,
            auctions,
            tickets,
            hub,
            slots,
            outbox,
            retention,
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
        workers
    }

    /// Stops the background work (each loop between two rounds, within
    /// `within`), then gives back the mail this process still holds.
    pub async fn stop_workers(&self, workers: Workers, within: Duration) {
        workers.stop(within).await;
        self.release_claims().await;
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

    fn http_state(&self, settings: &Settings) -> AppState {
        let mut probes = Probes::default().with(Arc::new(DatabaseProbe(self.database.clone())));
        if let Some(redis) = &self.redis {
            probes = probes.with(Arc::new(RedisProbe(Arc::clone(redis))));
        }
        AppState {
            auth: self.auth.clone(),
            auctions: self.auctions.clone(),
            tickets: self.tickets.clone(),
            live: self.hub.clone(),
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
            mail_flows: Arc::new(tokio::sync::Semaphore::new(
                pp_http::routes::auth::MAIL_FLOWS_AT_ONCE,
            )),
        }
    }
}

/// How long background loops get to finish their round at shutdown.
pub const WORKERS_STOP_WITHIN: Duration = Duration::from_secs(20);

/// A built server, bound to its port but not yet running.
pub struct Application {
    port: u16,
    server: Server,
    services: Services,
    workers: Option<Workers>,
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
        let services = Services::build(&settings).await?;
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
        let server = HttpServer::new(move || {
            pp_http::wrap_app!(
                App::new().configure(pp_http::configure(state.clone())),
                pp_http::cors(&origins)
            )
        })
        .listen(listener)?
        .run();
        let url = format!("http://{}:{port}", settings.bind_addr.ip());
        tracing::info!(port, %url, "listening: open {url}");
        Ok(Application {
            port,
            server,
            services,
            workers,
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
    /// finishes in-flight requests.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(workers) = self.workers {
            self.services
                .stop_workers(workers, WORKERS_STOP_WITHIN)
                .await;
        }
        served
    }
}
