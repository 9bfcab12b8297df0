//! The composition root: builds every adapter from the settings and binds
//! the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer};
use anyhow::Context;
use async_trait::async_trait;
use pp_http::{Probe, Probes};
use pp_store_sql::{Database, DatabaseSettings};
use tracing_actix_web::TracingLogger;

use crate::config::{DatabaseConfig, Settings};

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

/// Connects to the database named by `config`.
///
/// # Errors
/// When it cannot be reached.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<Database> {
    Database::connect(&DatabaseSettings::new(config.url.as_str()))
        .await
        .context("cannot open the database")
}

/// A built server, bound to its port but not yet running.
pub struct Application {
    port: u16,
    server: Server,
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
        let database = connect(&settings.database).await?;
        database
            .migrate_up()
            .await
            .context("cannot apply the database migrations")?;

        let probes = Probes::default().with(Arc::new(DatabaseProbe(database)));

        let listener = TcpListener::bind(settings.bind_addr)
            .with_context(|| format!("cannot listen on {}", settings.bind_addr))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .configure(pp_http::configure(probes.clone()))
        })
        .listen(listener)?
        .run();
        tracing::info!(port, "listening");
        Ok(Application { port, server })
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is asked to stop (SIGINT/SIGTERM), then
    /// finishes in-flight requests.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
