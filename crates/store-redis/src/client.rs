//! The connection: lazy, bounded by a timeout, with a short circuit breaker.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;
use tracing::Instrument;

/// How to reach Redis.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `redis://…`, or `rediss://…` for TLS (the certificate must chain to
    /// a root the system trusts; `#insecure` at the end skips the check).
    pub url: String,
    /// Every key starts with this (`REDIS_KEY_PREFIX`).
    pub prefix: String,
    /// The longest any command may take, connecting included.
    pub timeout: Duration,
}

/// How long to skip Redis after it failed.
const BACKOFF: Duration = Duration::from_secs(1);

/// A Redis connection shared by every request of this instance.
pub struct Redis {
    client: redis::Client,
    manager: ConnectionManager,
    prefix: String,
    timeout: Duration,
    failed_at: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Prepares the connection without waiting for Redis to answer. Must be
    /// called inside the Tokio runtime.
    ///
    /// # Errors
    /// When the URL is not a Redis URL.
    pub fn connect(settings: &RedisSettings) -> anyhow::Result<Self> {
        // A rediss:// connection needs rustls's process-wide crypto provider;
        // aws-lc-rs, unless the process chose one already.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let client = redis::Client::open(settings.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Redis {
            client,
            manager,
            prefix: settings.prefix.clone(),
            timeout: settings.timeout,
            failed_at: Mutex::new(None),
        })
    }

    /// `prefix` + `suffix`.
    #[must_use]
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Runs one command within the timeout. Fails at once for a second after
    /// a failure, without touching the network.
    ///
    /// # Errors
    /// When Redis fails, does not answer in time, or failed very recently.
    pub async fn run<T, F, Fut>(&self, command: F) -> anyhow::Result<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if let Ok(failed_at) = self.failed_at.lock()
            && failed_at.is_some_and(|at| at.elapsed() < BACKOFF)
        {
            anyhow::bail!("redis failed less than {BACKOFF:?} ago");
        }
        let span = tracing::info_span!("redis.command", db.system.name = "redis");
        let outcome = match tokio::time::timeout(self.timeout, command(self.manager.clone()))
            .instrument(span)
            .await
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(anyhow::Error::new(err)),
            Err(_) => Err(anyhow::anyhow!(
                "redis did not answer within {:?}",
                self.timeout
            )),
        };
        if let Ok(mut failed_at) = self.failed_at.lock() {
            *failed_at = outcome.as_ref().err().map(|_| Instant::now());
        }
        outcome
    }

    /// A new connection in subscriber mode, within the timeout.
    ///
    /// # Errors
    /// When Redis does not answer in time or refuses.
    pub async fn pubsub(&self) -> anyhow::Result<redis::aio::PubSub> {
        match tokio::time::timeout(self.timeout, self.client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => Ok(pubsub),
            Ok(Err(err)) => Err(err.into()),
            Err(_) => anyhow::bail!("redis did not answer within {:?}", self.timeout),
        }
    }

    /// The longest any command may take.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether Redis answers a PING now (for `/ready`; ignores the breaker).
    pub async fn ping(&self) -> bool {
        let mut connection = self.manager.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        matches!(tokio::time::timeout(self.timeout, ping).await, Ok(Ok(pong)) if pong == "PONG")
    }
}
