//! Configuration: environment variables (and a `.env` file), parsed once.
//!
//! Every setting is read from one map, so tests pass a map instead of
//! touching the process environment. A missing or malformed setting is a
//! [`ConfigError`] whose one-line message names the variable.
//!
//! Parsing is hand-written over `std`'s `FromStr` rather than a generic
//! config crate: the rules are cross-field (secrets are generated for SQLite
//! but required for PostgreSQL) and each error must name the exact variable,
//! which generic loaders report in their own key spelling.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;

use std::time::Duration;

use base64::Engine;
use ipnet::IpNet;
use pp_domain::auth::PasswordPolicy;
use pp_domain::auth::ports::RateLimit;
use pp_http::RateLimits;
use pp_mail::Transport;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use thiserror::Error;

use crate::secrets;

/// A setting that stops start-up: `VARIABLE: what is wrong`.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong with it, and what would be right.
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(variable: &'static str, problem: impl fmt::Display) -> Self {
        ConfigError {
            variable,
            problem: problem.to_string(),
        }
    }
}

/// The variables as read: the process environment over the `.env` file.
/// It remembers which names the configuration asked for: that is the
/// configuration's own list, which `.env.example` is checked against.
#[derive(Debug, Default)]
pub struct Environment(HashMap<String, String>, Mutex<BTreeSet<&'static str>>);

impl Environment {
    /// The process environment, over `.env` in the working directory if present.
    ///
    /// # Errors
    /// [`ConfigError`] naming `.env` when it exists but cannot be parsed.
    pub fn load() -> Result<Self, ConfigError> {
        let mut vars = HashMap::new();
        match dotenvy::from_path_iter(".env") {
            Ok(entries) => {
                for entry in entries {
                    let (key, value) = entry.map_err(|e| ConfigError::new(".env", e))?;
                    vars.insert(key, value);
                }
            }
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigError::new(".env", e)),
        }
        vars.extend(std::env::vars());
        Ok(Environment(vars, Mutex::default()))
    }

    /// Exactly these variables (for tests and tools).
    #[must_use]
    pub fn from_map<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Environment(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            Mutex::default(),
        )
    }

    /// Every variable asked for so far, by name.
    #[must_use]
    pub fn names_read(&self) -> BTreeSet<&'static str> {
        self.1.lock().map(|names| names.clone()).unwrap_or_default()
    }

    /// A variable whose name is made at run time (`OIDC_{NAME}_ISSUER`):
    /// not recorded among the names read, since `.env.example` lists such
    /// families by their pattern.
    fn get_made(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The variable's value; an empty value counts as unset.
    fn get(&self, name: &'static str) -> Option<&str> {
        if let Ok(mut names) = self.1.lock() {
            names.insert(name);
        }
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn parse<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.get(name).map_or(Ok(default), |raw| {
            raw.trim().parse().map_err(|e| ConfigError::new(name, e))
        })
    }
}

/// `BIND_ADDR`: where the server listens (default `127.0.0.1:8080`).
///
/// # Errors
/// [`ConfigError`] when it is not a socket address.
pub fn bind_addr(env: &Environment) -> Result<SocketAddr, ConfigError> {
    env.parse("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))
}

/// Where the database is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `postgres://…`: production; secrets must be configured.
    Postgres(String),
    /// `sqlite://…`: the embedded default.
    Sqlite(String),
}

impl DatabaseUrl {
    /// The URL as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            DatabaseUrl::Postgres(url) | DatabaseUrl::Sqlite(url) => url,
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_owned()))
        } else if url.starts_with("sqlite://") && url.len() > "sqlite://".len() {
            Ok(DatabaseUrl::Sqlite(url.to_owned()))
        } else {
            Err("must be a postgres://… or sqlite://… URL".to_owned())
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (for collectors).
    Json,
    /// Human-readable (for a terminal).
    Pretty,
}

impl FromStr for LogFormat {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            _ => Err("must be json or pretty"),
        }
    }
}

impl LogFormat {
    /// `LOG_FORMAT`, by default pretty on a terminal and JSON otherwise.
    ///
    /// # Errors
    /// [`ConfigError`] when it is neither `json` nor `pretty`.
    pub fn from_env(env: &Environment) -> Result<Self, ConfigError> {
        let default = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        };
        env.parse("LOG_FORMAT", default)
    }
}

/// Where traces are exported: `OTEL_EXPORTER_OTLP_ENDPOINT` (the
/// collector's OTLP/HTTP base URL) and `OTEL_SERVICE_NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceExport {
    /// Where spans are posted: the endpoint with `/v1/traces`, as the
    /// OpenTelemetry specification builds it from the base URL.
    pub traces_url: String,
    /// `service.name` of every span (default `poison-pill`).
    pub service_name: String,
}

impl TraceExport {
    /// `None` (no export) unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    ///
    /// # Errors
    /// [`ConfigError`] when the endpoint is not an `http://` or `https://` URL.
    pub fn from_env(env: &Environment) -> Result<Option<Self>, ConfigError> {
        const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
        let service_name = env
            .get("OTEL_SERVICE_NAME")
            .map_or("poison-pill", str::trim)
            .to_owned();
        let Some(endpoint) = env.get(ENDPOINT).map(str::trim) else {
            return Ok(None);
        };
        let url = url::Url::parse(endpoint).map_err(|e| ConfigError::new(ENDPOINT, e))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ConfigError::new(
                ENDPOINT,
                "must be an http:// or https:// URL, e.g. http://otel-collector:4318",
            ));
        }
        Ok(Some(TraceExport {
            traces_url: format!("{}/v1/traces", endpoint.trim_end_matches('/')),
            service_name,
        }))
    }
}

/// Where error reports go: `SENTRY_DSN`, or `None` (no reports).
///
/// # Errors
/// [`ConfigError`] when it is not a DSN.
pub fn error_reports(env: &Environment) -> Result<Option<sentry::types::Dsn>, ConfigError> {
    env.get("SENTRY_DSN")
        .map(|dsn| {
            dsn.trim()
                .parse()
                .map_err(|e| ConfigError::new("SENTRY_DSN", e))
        })
        .transpose()
}

/// A boolean setting: true/false, 1/0, yes/no, on/off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flag(bool);

impl FromStr for Flag {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Flag(true)),
            "false" | "0" | "no" | "off" => Ok(Flag(false)),
            _ => Err("must be true or false"),
        }
    }
}

/// A base URL for links in e-mails: http(s), no trailing slash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// The base, without a trailing slash.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What is wrong with it for a deployment, if anything: plain `http`
    /// off a loopback host (the refresh and OpenID flow cookies are
    /// `Secure`: browsers drop them there), or a path (the cookies and
    /// links assume the service is at the root).
    #[must_use]
    pub fn doubts(&self) -> Vec<&'static str> {
        let Ok(url) = url::Url::parse(&self.0) else {
            return Vec::new();
        };
        let mut doubts = Vec::new();
        let loopback = match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if url.scheme() == "http" && !loopback {
            doubts.push(
                "PUBLIC_URL is plain http off loopback: browsers refuse the Secure session and sign-in cookies there; put TLS in front and use https",
            );
        }
        if url.path() != "/" && !url.path().is_empty() {
            doubts.push(
                "PUBLIC_URL has a path: the session cookies and the API are at the root, so serve the app at the root of its host",
            );
        }
        doubts
    }

    /// Whether clients reach the service over TLS only.
    #[must_use]
    pub fn is_https(&self) -> bool {
        self.0
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    }
}

impl FromStr for PublicUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(s).map_err(|e| format!("must be an absolute URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err("must be an http:// or https:// URL with a host".to_owned());
        }
        Ok(PublicUrl(s.trim_end_matches('/').to_owned()))
    }
}

/// A rate limit as configured: `N/Ds` (or `m`, `h`), e.g. `10/10s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LimitSpec(RateLimit);

impl FromStr for LimitSpec {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORMAT: &str = "must look like 10/10s (requests per window in s, m or h)";
        let (count, window) = s.split_once('/').ok_or(FORMAT)?;
        let max: u32 = count.trim().parse().map_err(|_| FORMAT)?;
        let window = window.trim();
        let (digits, unit) = window.split_at(
            window
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(window.len()),
        );
        let amount: u64 = digits.parse().map_err(|_| FORMAT)?;
        let seconds = match unit {
            "" | "s" => amount,
            "m" => amount * 60,
            "h" => amount * 3600,
            _ => return Err(FORMAT),
        };
        if max == 0 || seconds == 0 {
            return Err("both the count and the window must be above zero");
        }
        Ok(LimitSpec(RateLimit {
            max,
            window: Duration::from_secs(seconds),
        }))
    }
}

/// Comma-separated addresses or CIDR ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ProxyList(Vec<IpNet>);

impl FromStr for ProxyList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>()
                    .or_else(|_| part.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{part:?} is not an IP address or CIDR range"))
            })
            .collect::<Result<_, _>>()
            .map(ProxyList)
    }
}

/// Comma-separated origins such as `https://auction.example`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct OriginList(Vec<String>);

impl FromStr for OriginList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let url =
                    url::Url::parse(part).map_err(|_| format!("{part:?} is not an origin"))?;
                let origin = url.origin().ascii_serialization();
                if origin == "null" || origin != part.trim_end_matches('/') {
                    return Err(format!(
                        "{part:?} is not an origin like https://example.com"
                    ));
                }
                Ok(origin)
            })
            .collect::<Result<_, _>>()
            .map(OriginList)
    }
}

/// How to reach Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// `REDIS_URL`.
    pub url: String,
    /// `REDIS_KEY_PREFIX`.
    pub prefix: String,
    /// `REDIS_TIMEOUT_MS`: the longest any Redis call may take.
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct RedisUrl(String);

impl FromStr for RedisUrl {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("redis://") || s.starts_with("rediss://") {
            Ok(RedisUrl(s.to_owned()))
        } else {
            Err("must be a redis://… or rediss://… URL")
        }
    }
}

/// Where mail goes and who it is from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailConfig {
    /// `MAIL_TRANSPORT` with `MAIL_DIR` or `SMTP_URL`.
    pub transport: Transport,
    /// `MAIL_FROM`.
    pub from: String,
}

/// Where the embedded default keeps its files, and how to reach the database.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`.
    pub url: DatabaseUrl,
    /// `DATABASE_MAX_CONNECTIONS`: the pool's size.
    pub max_connections: u32,
    /// `DATA_DIR`: the SQLite file's usual home and the generated secrets.
    pub data_dir: PathBuf,
}

impl DatabaseConfig {
    /// Reads `DATABASE_URL` and `DATA_DIR`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the malformed variable.
    pub fn from_env(env: &Environment) -> Result<Self, ConfigError> {
        let data_dir: PathBuf = env.parse("DATA_DIR", PathBuf::from("data"))?;
        let default_url =
            DatabaseUrl::Sqlite(format!("sqlite://{}/poison-pill.db", data_dir.display()));
        let max_connections: u32 = env.parse("DATABASE_MAX_CONNECTIONS", 16)?;
        if max_connections == 0 {
            return Err(ConfigError::new(
                "DATABASE_MAX_CONNECTIONS",
                "must be above zero",
            ));
        }
        Ok(DatabaseConfig {
            url: env.parse("DATABASE_URL", default_url)?,
            max_connections,
            data_dir,
        })
    }
}

/// Everything `serve` needs.
pub struct Settings {
    /// The database and data directory.
    pub database: DatabaseConfig,
    /// `BIND_ADDR`.
    pub bind_addr: SocketAddr,
    /// `PUBLIC_URL`.
    pub public_url: PublicUrl,
    /// `JWT_SECRET`: the HS256 key, at least 32 bytes.
    pub jwt_secret: SecretString,
    /// `BID_SEALING_KEY`: 32 bytes.
    pub bid_sealing_key: SecretBox<[u8; 32]>,
    /// `REQUIRE_EMAIL_VERIFICATION`.
    pub require_email_verification: bool,
    /// `REQUIRE_ADMIN_2FA`: admin routes need a second factor on.
    pub require_admin_second_factor: bool,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `REDIS_URL` and friends; `None` means in-process.
    pub redis: Option<RedisConfig>,
    /// `RATE_LIMIT_GLOBAL`, `RATE_LIMIT_WRITE`, `RATE_LIMIT_AUTH`.
    pub rate_limits: RateLimits,
    /// `TRUSTED_PROXIES`.
    pub trusted_proxies: Vec<IpNet>,
    /// `MAIL_TRANSPORT`, `MAIL_DIR`, `SMTP_URL`, `MAIL_FROM`.
    pub mail: MailConfig,
    /// `PASSWORD_MIN_LENGTH`.
    pub password_policy: PasswordPolicy,
    /// `CORS_ALLOWED_ORIGINS`.
    pub cors_origins: Vec<String>,
    /// `PASSWORD_HASH_THREADS`: hashes that may run at once (default: the cores).
    pub hash_threads: usize,
    /// `WEB_DIR`: the built web app served at `/` (default `frontend/dist`).
    pub web_dir: PathBuf,
    /// `ACCESS_TOKEN_TTL_SECS`: how long an access token lives (default 900).
    pub access_token_ttl: Duration,
    /// `WS_PING_SECS`: how often a WebSocket is pinged and its session
    /// checked (default 30).
    pub ws_ping: Duration,
    /// `SSE_KEEPALIVE_SECS`: how often an SSE stream sends a keep-alive
    /// comment (default 15).
    pub sse_keep_alive: Duration,
    /// `LIVE_STREAMS_PER_IP`: open SSE streams per client address (default 32).
    pub live_streams_per_ip: u32,
    /// `SOCKETS_PER_USER`: open WebSockets per account (default 8).
    pub sockets_per_user: u32,
    /// `PASSWORD_HASH_QUEUE`: password checks that may wait for a hashing
    /// thread before more are refused (default 64 per core).
    pub hash_queue: usize,
    /// `MAILS_PER_ACCOUNT_PER_HOUR`: verification and reset e-mails one
    /// account may be sent per hour (default 3).
    pub mails_per_account_per_hour: u32,
    /// `RUN_WORKERS`: whether `serve` runs the background work too
    /// (default true; false when `poison-pill worker` processes do it).
    pub run_workers: bool,
    /// `SHUTDOWN_TIMEOUT_SECS`: how long a stopping process gives
    /// in-flight requests and background loops to finish (default 20).
    pub shutdown_timeout: Duration,
    /// `MAIL_MAX_ATTEMPTS`: delivery attempts before an outbox message is
    /// dead (default 10).
    pub mail_max_attempts: u32,
    /// `RETENTION_DAYS`, `AUDIT_RETENTION_DAYS`: how long expired sessions
    /// and tokens, delivered mail (default 30 days) and audit entries
    /// (default 365) are kept.
    pub retention: pp_domain::retention::RetentionPolicy,
    /// `OIDC_PROVIDERS` and each provider's `OIDC_{NAME}_*`.
    pub oidc: Vec<pp_oidc::ProviderSettings>,
    /// `MEDIA_STORE` (`file`, under `DATA_DIR/media`, or `s3`) and the
    /// bucket's `MEDIA_S3_BUCKET`, `MEDIA_S3_ENDPOINT`, `MEDIA_S3_REGION`.
    pub media: pp_media::MediaSettings,
    /// `PHOTO_WORKERS`: photos decoded at once (default: the cores, at
    /// most 2: a decode at the pixel limit may take about a gigabyte); as
    /// many again may wait before an upload is refused (503).
    pub photo_workers: usize,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database", &self.database)
            .field("bind_addr", &self.bind_addr)
            .field("public_url", &self.public_url)
            .field(
                "require_email_verification",
                &self.require_email_verification,
            )
            .field(
                "require_admin_second_factor",
                &self.require_admin_second_factor,
            )
            .field("log_format", &self.log_format)
            .field("redis", &self.redis.as_ref().map(|r| &r.prefix))
            .field("rate_limits", &self.rate_limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("mail", &self.mail)
            .field("password_policy", &self.password_policy)
            .field("cors_origins", &self.cors_origins)
            .finish_non_exhaustive()
    }
}

/// The shortest acceptable `JWT_SECRET`, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

pub(crate) fn parse_jwt_secret(raw: &str) -> Result<SecretString, ConfigError> {
    if raw.len() < MIN_JWT_SECRET_BYTES {
        return Err(ConfigError::new(
            "JWT_SECRET",
            format_args!("must be at least {MIN_JWT_SECRET_BYTES} bytes long"),
        ));
    }
    Ok(SecretString::from(raw.to_owned()))
}

pub(crate) fn parse_sealing_key(raw: &str) -> Result<SecretBox<[u8; 32]>, ConfigError> {
    let problem = || ConfigError::new("BID_SEALING_KEY", "must be 32 bytes, base64-encoded");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw.trim()))
        .map_err(|_| problem())?;
    let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| problem())?;
    Ok(SecretBox::new(Box::new(key)))
}

impl Settings {
    /// Reads every `serve` setting. On SQLite, secrets that are not set are
    /// read from (or generated into) the data directory; on PostgreSQL they
    /// must be set.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or malformed variable.
    pub fn from_env(env: &Environment) -> Result<Self, ConfigError> {
        let database = DatabaseConfig::from_env(env)?;
        let media = media_settings(env, &database)?;
        let bind_addr = bind_addr(env)?;
        let default_public = PublicUrl(format!("http://{bind_addr}"));
        let public_url = env.parse("PUBLIC_URL", default_public)?;
        let Flag(require_email_verification) =
            env.parse("REQUIRE_EMAIL_VERIFICATION", Flag(true))?;
        let Flag(require_admin_second_factor) = env.parse("REQUIRE_ADMIN_2FA", Flag(false))?;
        let log_format = LogFormat::from_env(env)?;

        let embedded = matches!(database.url, DatabaseUrl::Sqlite(_));
        let jwt_secret = match (env.get("JWT_SECRET"), embedded) {
            (Some(raw), _) => parse_jwt_secret(raw)?,
            (None, true) => parse_jwt_secret(&secrets::jwt_secret(&database.data_dir)?)?,
            (None, false) => return Err(required_for_postgres("JWT_SECRET")),
        };
        let bid_sealing_key = match (env.get("BID_SEALING_KEY"), embedded) {
            (Some(raw), _) => parse_sealing_key(raw)?,
            (None, true) => parse_sealing_key(&secrets::sealing_key(&database.data_dir)?)?,
            (None, false) => return Err(required_for_postgres("BID_SEALING_KEY")),
        };
        debug_assert!(jwt_secret.expose_secret().len() >= MIN_JWT_SECRET_BYTES);
        let defaults = RateLimits::default();
        let rate_limits = RateLimits {
            global: env
                .parse("RATE_LIMIT_GLOBAL", LimitSpec(defaults.global))?
                .0,
            write: env.parse("RATE_LIMIT_WRITE", LimitSpec(defaults.write))?.0,
            auth: env.parse("RATE_LIMIT_AUTH", LimitSpec(defaults.auth))?.0,
            ipv6_prefix: count_within(
                env,
                "RATE_LIMIT_IPV6_PREFIX",
                defaults.ipv6_prefix,
                16..=128,
            )?,
        };
        let redis = match env.get("REDIS_URL") {
            None => None,
            Some(_) => {
                let RedisUrl(url) = env.parse("REDIS_URL", RedisUrl(String::new()))?;
                let timeout_ms: u64 = env.parse("REDIS_TIMEOUT_MS", 500)?;
                if timeout_ms == 0 {
                    return Err(ConfigError::new("REDIS_TIMEOUT_MS", "must be above zero"));
                }
                Some(RedisConfig {
                    url,
                    prefix: env.get("REDIS_KEY_PREFIX").unwrap_or("pp:").to_owned(),
                    timeout: Duration::from_millis(timeout_ms),
                })
            }
        };
        let hash_threads = hash_threads(env)?;
        let min_length: usize = env.parse("PASSWORD_MIN_LENGTH", PasswordPolicy::DEFAULT_MIN)?;
        let password_policy = PasswordPolicy::new(min_length)
            .map_err(|e| ConfigError::new("PASSWORD_MIN_LENGTH", e))?;
        Ok(Settings {
            mail: mail_config(env, &database, &public_url)?,
            database,
            bind_addr,
            public_url,
            jwt_secret,
            bid_sealing_key,
            require_email_verification,
            require_admin_second_factor,
            log_format,
            redis,
            rate_limits,
            trusted_proxies: env.parse("TRUSTED_PROXIES", ProxyList::default())?.0,
            password_policy,
            cors_origins: env.parse("CORS_ALLOWED_ORIGINS", OriginList::default())?.0,
            hash_threads,
            hash_queue: count_within(
                env,
                "PASSWORD_HASH_QUEUE",
                default_hash_queue(),
                1..=1_000_000,
            )?,
            web_dir: env.parse("WEB_DIR", PathBuf::from("frontend/dist"))?,
            access_token_ttl: access_token_ttl(env)?,
            ws_ping: seconds_within(env, "WS_PING_SECS", 30, 1..=300)?,
            sse_keep_alive: seconds_within(env, "SSE_KEEPALIVE_SECS", 15, 1..=300)?,
            live_streams_per_ip: count_within(env, "LIVE_STREAMS_PER_IP", 32, 1..=100_000)?,
            sockets_per_user: count_within(env, "SOCKETS_PER_USER", 8, 1..=1_000)?,
            mails_per_account_per_hour: count_within(
                env,
                "MAILS_PER_ACCOUNT_PER_HOUR",
                3,
                1..=1_000,
            )?,
            run_workers: env.parse::<Flag>("RUN_WORKERS", Flag(true))?.0,
            shutdown_timeout: seconds_within(env, "SHUTDOWN_TIMEOUT_SECS", 20, 1..=3600)?,
            mail_max_attempts: count_within(env, "MAIL_MAX_ATTEMPTS", 10, 1..=100)?,
            retention: pp_domain::retention::RetentionPolicy {
                days: count_within(env, "RETENTION_DAYS", 30, 1..=3_650)?,
                audit_days: count_within(env, "AUDIT_RETENTION_DAYS", 365, 1..=36_500)?,
            },
            oidc: oidc_providers(env)?,
            media,
            photo_workers: count_within(
                env,
                "PHOTO_WORKERS",
                // Each decode may take about a gigabyte at the pixel limit.
                std::thread::available_parallelism().map_or(1, |cores| cores.get().min(2)),
                1..=256,
            )?,
        })
    }
}

/// Where photos are kept: `MEDIA_STORE=file` (default, `DATA_DIR/media`)
/// or `s3` with `MEDIA_S3_BUCKET` (required), `MEDIA_S3_ENDPOINT` (for a
/// server other than AWS) and `MEDIA_S3_REGION` (default `us-east-1`).
fn media_settings(
    env: &Environment,
    database: &DatabaseConfig,
) -> Result<pp_media::MediaSettings, ConfigError> {
    match env
        .get("MEDIA_STORE")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("file") => Ok(pp_media::MediaSettings::Directory(
            database.data_dir.join("media"),
        )),
        Some("s3") => Ok(pp_media::MediaSettings::S3(pp_media::S3Settings {
            bucket: env
                .get("MEDIA_S3_BUCKET")
                .filter(|bucket| !bucket.is_empty())
                .ok_or_else(|| {
                    ConfigError::new("MEDIA_S3_BUCKET", "is required when MEDIA_STORE is s3")
                })?
                .to_owned(),
            endpoint: env.get("MEDIA_S3_ENDPOINT").map(str::to_owned),
            region: env.get("MEDIA_S3_REGION").unwrap_or("us-east-1").to_owned(),
            access_key: env
                .get("AWS_ACCESS_KEY_ID")
                .zip(env.get("AWS_SECRET_ACCESS_KEY"))
                .map(|(id, secret)| (id.to_owned(), secret.to_owned())),
        })),
        Some(_) => Err(ConfigError::new("MEDIA_STORE", "must be file or s3")),
    }
}

/// `OIDC_PROVIDERS=name,…` and, for each, `OIDC_{NAME}_ISSUER`,
/// `_CLIENT_ID`, `_CLIENT_SECRET` (required), `_SCOPES` (default `openid
/// email profile`) and `_LABEL` (default: the name, capitalised). Errors
/// name the exact variable in their text (the family is `OIDC_PROVIDERS`).
fn oidc_providers(env: &Environment) -> Result<Vec<pp_oidc::ProviderSettings>, ConfigError> {
    const PROVIDERS: &str = "OIDC_PROVIDERS";
    let Some(names) = env.get(PROVIDERS) else {
        return Ok(Vec::new());
    };
    let mut providers: Vec<pp_oidc::ProviderSettings> = Vec::new();
    for raw in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let name = pp_domain::auth::identities::ProviderName::parse(raw)
            .map_err(|e| ConfigError::new(PROVIDERS, e))?;
        if providers.iter().any(|p| p.name == name) {
            return Err(ConfigError::new(
                PROVIDERS,
                format!("{name} is listed twice"),
            ));
        }
        let upper = name.as_str().to_ascii_uppercase();
        let variable = |suffix: &str| format!("OIDC_{upper}_{suffix}");
        let required = |suffix: &str| {
            let variable = variable(suffix);
            env.get_made(&variable)
                .map(|v| v.trim().to_owned())
                .ok_or_else(|| {
                    ConfigError::new(PROVIDERS, format!("{variable} must be set for {name}"))
                })
        };
        let issuer = required("ISSUER")?;
        let client_id = required("CLIENT_ID")?;
        let client_secret = SecretString::from(required("CLIENT_SECRET")?);
        let scopes: Vec<String> = env
            .get_made(&variable("SCOPES"))
            .unwrap_or("openid email profile")
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(ConfigError::new(
                PROVIDERS,
                format!("{} must include openid", variable("SCOPES")),
            ));
        }
        let label = env.get_made(&variable("LABEL")).map_or_else(
            || {
                let mut chars = name.as_str().chars();
                chars
                    .next()
                    .map(|first| first.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            },
            |label| label.trim().to_owned(),
        );
        providers.push(pp_oidc::ProviderSettings {
            name,
            label,
            issuer,
            client_id,
            client_secret,
            scopes,
        });
    }
    Ok(providers)
}

fn access_token_ttl(env: &Environment) -> Result<Duration, ConfigError> {
    seconds_within(env, "ACCESS_TOKEN_TTL_SECS", 900, 1..=3600)
}

/// A duration given in whole seconds, refused outside `range`.
fn seconds_within(
    env: &Environment,
    variable: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    let seconds: u64 = env.parse(variable, default)?;
    if !range.contains(&seconds) {
        return Err(ConfigError::new(
            variable,
            format!("must be from {} to {} seconds", range.start(), range.end()),
        ));
    }
    Ok(Duration::from_secs(seconds))
}

/// A whole number, refused outside `range`.
fn count_within<T>(
    env: &Environment,
    variable: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + fmt::Display + Copy,
    T::Err: fmt::Display,
{
    let value: T = env.parse(variable, default)?;
    if !range.contains(&value) {
        return Err(ConfigError::new(
            variable,
            format!(
                "must be a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(value)
}

/// docs/spec/api.md's default: 64 waiting hashes per core.
fn default_hash_queue() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    cores.saturating_mul(64).min(1_000_000)
}

fn hash_threads(env: &Environment) -> Result<usize, ConfigError> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let threads: usize = env.parse("PASSWORD_HASH_THREADS", cores)?;
    if threads == 0 {
        return Err(ConfigError::new(
            "PASSWORD_HASH_THREADS",
            "must be above zero",
        ));
    }
    Ok(threads)
}

fn mail_config(
    env: &Environment,
    database: &DatabaseConfig,
    public_url: &PublicUrl,
) -> Result<MailConfig, ConfigError> {
    let transport = match env
        .get("MAIL_TRANSPORT")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("file") => {
            Transport::File(env.parse("MAIL_DIR", database.data_dir.join("mail"))?)
        }
        Some("smtp") => Transport::Smtp(
            env.get("SMTP_URL")
                .ok_or_else(|| {
                    ConfigError::new("SMTP_URL", "is required when MAIL_TRANSPORT is smtp")
                })?
                .to_owned(),
        ),
        Some(_) => return Err(ConfigError::new("MAIL_TRANSPORT", "must be file or smtp")),
    };
    let host = url::Url::parse(public_url.as_str())
        .ok()
        .and_then(|url| match url.host() {
            Some(url::Host::Domain(domain)) if domain.contains('.') => Some(domain.to_owned()),
            _ => None,
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let from = env
        .get("MAIL_FROM")
        .map_or_else(|| format!("Poison Pill <no-reply@{host}>"), str::to_owned);
    if lettre_mailbox_ok(&from) {
        Ok(MailConfig { transport, from })
    } else {
        Err(ConfigError::new(
            "MAIL_FROM",
            "must be an address like Name <no-reply@example.com>",
        ))
    }
}

fn lettre_mailbox_ok(from: &str) -> bool {
    from.parse::<lettre::message::Mailbox>().is_ok()
}

fn required_for_postgres(variable: &'static str) -> ConfigError {
    ConfigError::new(variable, "is required when DATABASE_URL is PostgreSQL")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        Environment::from_map(pairs.iter().copied())
    }

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const JWT: &str = "a-jwt-secret-that-is-long-enough-for-hs256";

    /// The variables `.env.example` names, in its order.
    fn example_names() -> Vec<String> {
        include_str!("../../../.env.example")
            .lines()
            .filter_map(|line| line.strip_prefix("# ")?.split_once('='))
            .map(|(name, _)| name.to_owned())
            .filter(|name| {
                name.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .collect()
    }

    #[test]
    fn openid_providers_are_read_with_their_defaults_and_every_gap_is_named() {
        let base = [
            ("DATA_DIR", "/tmp/pp-oidc-config-test"),
            ("OIDC_PROVIDERS", "corp, gitlab"),
            ("OIDC_CORP_ISSUER", "https://sso.corp.example"),
            ("OIDC_CORP_CLIENT_ID", "pp"),
            ("OIDC_CORP_CLIENT_SECRET", "s3cret"),
            ("OIDC_CORP_LABEL", "Corp SSO"),
            ("OIDC_GITLAB_ISSUER", "https://gitlab.com"),
            ("OIDC_GITLAB_CLIENT_ID", "pp-gl"),
            ("OIDC_GITLAB_CLIENT_SECRET", "gl-secret"),
            ("OIDC_GITLAB_SCOPES", "openid email"),
        ];
        let providers = oidc_providers(&env(&base)).unwrap();
        let summary: Vec<(&str, &str, &str, Vec<&str>)> = providers
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.label.as_str(),
                    p.client_id.as_str(),
                    p.scopes.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("corp", "Corp SSO", "pp", vec!["openid", "email", "profile"]),
                ("gitlab", "Gitlab", "pp-gl", vec!["openid", "email"]),
            ]
        );
        assert!(oidc_providers(&env(&[])).unwrap().is_empty());
        let with = |changes: &[(&'static str, &'static str)]| {
            let mut vars: Vec<(&str, &str)> = base
                .iter()
                .copied()
                .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
                .collect();
            vars.extend(changes.iter().copied().filter(|(_, v)| !v.is_empty()));
            oidc_providers(&env(&vars)).unwrap_err().problem
        };
        assert!(with(&[("OIDC_GITLAB_CLIENT_SECRET", "")]).contains("OIDC_GITLAB_CLIENT_SECRET"));
        assert!(with(&[("OIDC_PROVIDERS", "Corp")]).contains("Corp"));
        assert!(with(&[("OIDC_PROVIDERS", "corp,corp")]).contains("twice"));
        assert!(with(&[("OIDC_GITLAB_SCOPES", "email profile")]).contains("openid"));
    }

    #[test]
    fn traces_are_exported_only_to_an_http_or_https_endpoint_given() {
        assert_eq!(TraceExport::from_env(&env(&[])).unwrap(), None);
        let export = TraceExport::from_env(&env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            " http://collector:4318/ ",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(export.traces_url, "http://collector:4318/v1/traces");
        assert_eq!(export.service_name, "poison-pill");
        let named = TraceExport::from_env(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SERVICE_NAME", "auctions-eu"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(named.service_name, "auctions-eu");
        let secure = TraceExport::from_env(&env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://otlp.example.com",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(secure.traces_url, "https://otlp.example.com/v1/traces");
        for bad in ["c:4318", "grpc://c:4317", "not a url", "http://"] {
            let err =
                TraceExport::from_env(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)])).unwrap_err();
            assert_eq!(err.variable, "OTEL_EXPORTER_OTLP_ENDPOINT", "{bad}");
        }
    }

    #[test]
    fn errors_are_reported_only_to_a_dsn_given() {
        assert_eq!(error_reports(&env(&[])).unwrap(), None);
        let dsn = error_reports(&env(&[(
            "SENTRY_DSN",
            " https://key@o1.ingest.example.com/42 ",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(dsn.project_id().value(), "42");
        let err = error_reports(&env(&[("SENTRY_DSN", "not a dsn")])).unwrap_err();
        assert_eq!(err.variable, "SENTRY_DSN");
    }

    #[test]
    fn env_example_lists_exactly_the_variables_the_configuration_reads() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let data = data.to_str().unwrap();
        // Each branch that reads a variable of its own: the embedded
        // default, and PostgreSQL with Redis and SMTP.
        let embedded = env(&[("DATA_DIR", data)]);
        Settings::from_env(&embedded).unwrap();
        LogFormat::from_env(&embedded).unwrap();
        TraceExport::from_env(&embedded).unwrap();
        error_reports(&embedded).unwrap();
        let production = env(&[
            ("DATABASE_URL", "postgres://db/pp"),
            ("JWT_SECRET", JWT),
            ("BID_SEALING_KEY", KEY),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("MAIL_TRANSPORT", "smtp"),
            ("SMTP_URL", "smtp://127.0.0.1:2525"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("MEDIA_STORE", "s3"),
            ("MEDIA_S3_BUCKET", "photos"),
        ]);
        Settings::from_env(&production).unwrap();
        TraceExport::from_env(&production).unwrap();
        let mut read: BTreeSet<&str> = embedded.names_read();
        read.extend(production.names_read());
        // Read by tracing's own filter, not through the configuration.
        read.insert("RUST_LOG");
        let listed: BTreeSet<String> = example_names().into_iter().collect();
        let listed: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
        assert_eq!(
            read.difference(&listed).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "read but missing from .env.example"
        );
        assert_eq!(
            listed.difference(&read).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "in .env.example but never read"
        );
        assert_eq!(example_names().len(), listed.len(), "each listed once");
    }

    #[test]
    fn nothing_set_means_the_embedded_default_with_generated_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let settings = Settings::from_env(&env(&[("DATA_DIR", data.to_str().unwrap())])).unwrap();
        assert!(
            matches!(&settings.database.url, DatabaseUrl::Sqlite(url) if url.ends_with("data/poison-pill.db"))
        );
        assert_eq!(settings.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.public_url.as_str(), "http://127.0.0.1:8080");
        assert!(settings.run_workers);
        assert_eq!(settings.shutdown_timeout, Duration::from_secs(20));
        assert_eq!(settings.mail_max_attempts, 10);
        assert_eq!(settings.retention.days, 30);
        assert_eq!(settings.retention.audit_days, 365);
        assert!(settings.require_email_verification);
        assert_eq!(settings.rate_limits.ipv6_prefix, 64);
        assert_eq!(
            (settings.live_streams_per_ip, settings.sockets_per_user),
            (32, 8)
        );
        assert_eq!(settings.sse_keep_alive, Duration::from_secs(15));
        assert_eq!(settings.hash_queue, default_hash_queue());
        assert!(settings.hash_queue >= 64);
        // A second start reads the same secrets back.
        let again = Settings::from_env(&env(&[("DATA_DIR", data.to_str().unwrap())])).unwrap();
        assert_eq!(
            settings.jwt_secret.expose_secret(),
            again.jwt_secret.expose_secret()
        );
        assert_eq!(
            settings.bid_sealing_key.expose_secret(),
            again.bid_sealing_key.expose_secret()
        );
    }

    #[test]
    fn postgres_requires_both_secrets() {
        let pg = ("DATABASE_URL", "postgres://localhost/pp");
        let err = Settings::from_env(&env(&[pg])).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
        let err = Settings::from_env(&env(&[pg, ("JWT_SECRET", JWT)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "BID_SEALING_KEY: is required when DATABASE_URL is PostgreSQL"
        );
        let ok =
            Settings::from_env(&env(&[pg, ("JWT_SECRET", JWT), ("BID_SEALING_KEY", KEY)])).unwrap();
        assert_eq!(ok.bid_sealing_key.expose_secret()[31], 31);
    }

    #[test]
    fn every_malformed_setting_names_its_variable() {
        let cases = [
            ("DATABASE_URL", "mysql://x"),
            ("BIND_ADDR", "localhost"),
            ("PUBLIC_URL", "ftp://example.com"),
            ("PUBLIC_URL", "not a url"),
            ("JWT_SECRET", "short"),
            ("BID_SEALING_KEY", "AAAA"),
            ("BID_SEALING_KEY", "!!!"),
            ("REQUIRE_EMAIL_VERIFICATION", "maybe"),
            ("LOG_FORMAT", "xml"),
            ("RATE_LIMIT_IPV6_PREFIX", "8"),
            ("RATE_LIMIT_IPV6_PREFIX", "129"),
            ("LIVE_STREAMS_PER_IP", "0"),
            ("SOCKETS_PER_USER", "many"),
            ("SSE_KEEPALIVE_SECS", "0"),
            ("PASSWORD_HASH_QUEUE", "0"),
            ("MAILS_PER_ACCOUNT_PER_HOUR", "0"),
            ("RUN_WORKERS", "sometimes"),
            ("SHUTDOWN_TIMEOUT_SECS", "0"),
            ("SHUTDOWN_TIMEOUT_SECS", "1h"),
            ("MAIL_MAX_ATTEMPTS", "0"),
            ("MAIL_MAX_ATTEMPTS", "101"),
            ("RETENTION_DAYS", "0"),
            ("AUDIT_RETENTION_DAYS", "forever"),
        ];
        for (variable, value) in cases {
            let err = Settings::from_env(&env(&[
                ("DATABASE_URL", "postgres://h/db"),
                ("JWT_SECRET", JWT),
                ("BID_SEALING_KEY", KEY),
                (variable, value),
            ]))
            .unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn a_public_url_browsers_cannot_keep_cookies_on_or_with_a_path_is_doubted() {
        let doubts = |url: &str| url.parse::<PublicUrl>().unwrap().doubts().len();
        for fine in [
            "https://auction.example",
            "https://auction.example/",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert_eq!(doubts(fine), 0, "{fine}");
        }
        assert_eq!(doubts("http://auction.example"), 1);
        assert_eq!(doubts("https://example.com/auctions"), 1);
        assert_eq!(doubts("http://example.com/auctions"), 2);
    }

    #[test]
    fn values_are_parsed_leniently_where_users_expect() {
        let settings = Settings::from_env(&env(&[
            ("DATABASE_URL", "postgresql://h/db"),
            ("JWT_SECRET", JWT),
            ("BID_SEALING_KEY", KEY.trim_end_matches('=')),
            ("REQUIRE_EMAIL_VERIFICATION", "No"),
            ("LOG_FORMAT", "JSON"),
            ("PUBLIC_URL", "https://auctions.example.com/"),
            ("BIND_ADDR", " 0.0.0.0:9000 "),
            ("REDIS_URL", ""),
            ("RUN_WORKERS", "off"),
            ("MAIL_MAX_ATTEMPTS", "3"),
            ("SHUTDOWN_TIMEOUT_SECS", " 45 "),
        ]))
        .unwrap();
        assert!(!settings.run_workers);
        assert_eq!(settings.shutdown_timeout, Duration::from_secs(45));
        assert_eq!(settings.mail_max_attempts, 3);
        assert!(!settings.require_email_verification);
        assert_eq!(settings.log_format, LogFormat::Json);
        assert_eq!(settings.public_url.as_str(), "https://auctions.example.com");
        assert_eq!(settings.bind_addr.port(), 9000);
        assert!(format!("{settings:?}").contains("bind_addr"));
        assert!(!format!("{settings:?}").contains(JWT));
    }

    fn pg(extra: &[(&'static str, &'static str)]) -> Result<Settings, ConfigError> {
        let mut pairs = vec![
            ("DATABASE_URL", "postgres://h/db"),
            ("JWT_SECRET", JWT),
            ("BID_SEALING_KEY", KEY),
        ];
        pairs.extend_from_slice(extra);
        Settings::from_env(&env(&pairs))
    }

    #[test]
    fn rate_limits_proxies_mail_and_redis_parse_as_written() {
        let settings = pg(&[
            ("RATE_LIMIT_GLOBAL", "100/1m"),
            ("RATE_LIMIT_WRITE", "7/30s"),
            ("RATE_LIMIT_AUTH", "2/1h"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7"),
            ("MAIL_TRANSPORT", "smtp"),
            ("SMTP_URL", "smtp://127.0.0.1:2525"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("REDIS_KEY_PREFIX", "auction:"),
            ("PASSWORD_MIN_LENGTH", "12"),
            (
                "CORS_ALLOWED_ORIGINS",
                "https://auction.example, http://localhost:5173",
            ),
            ("PUBLIC_URL", "https://auction.example"),
        ])
        .unwrap();
        assert_eq!(
            settings.rate_limits.global,
            RateLimit {
                max: 100,
                window: Duration::from_secs(60)
            }
        );
        assert_eq!(
            settings.rate_limits.write,
            RateLimit {
                max: 7,
                window: Duration::from_secs(30)
            }
        );
        assert_eq!(settings.rate_limits.auth.window, Duration::from_secs(3600));
        assert_eq!(settings.trusted_proxies.len(), 2);
        assert_eq!(
            settings.mail.transport,
            Transport::Smtp("smtp://127.0.0.1:2525".into())
        );
        assert_eq!(settings.mail.from, "Poison Pill <no-reply@auction.example>");
        let redis = settings.redis.unwrap();
        assert_eq!(
            (redis.prefix.as_str(), redis.timeout),
            ("auction:", Duration::from_millis(500))
        );
        assert_eq!(settings.password_policy.min_chars(), 12);
        assert_eq!(
            settings.cors_origins,
            ["https://auction.example", "http://localhost:5173"]
        );
    }

    #[test]
    fn defaults_match_the_api_contract() {
        let settings = pg(&[]).unwrap();
        assert_eq!(settings.rate_limits, RateLimits::default());
        assert_eq!(
            settings.rate_limits.global,
            RateLimit {
                max: 10,
                window: Duration::from_secs(10)
            }
        );
        assert!(settings.redis.is_none());
        assert_eq!(
            settings.mail.transport,
            Transport::File(PathBuf::from("data/mail"))
        );
        assert_eq!(settings.mail.from, "Poison Pill <no-reply@localhost>");
        assert_eq!(settings.password_policy.min_chars(), 15);
        assert!(settings.trusted_proxies.is_empty() && settings.cors_origins.is_empty());
    }

    #[test]
    fn malformed_operational_settings_name_their_variable() {
        for (variable, value) in [
            ("RATE_LIMIT_GLOBAL", "ten"),
            ("RATE_LIMIT_WRITE", "3/0s"),
            ("RATE_LIMIT_AUTH", "5/60y"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, proxy.local"),
            ("MAIL_TRANSPORT", "pigeon"),
            ("REDIS_URL", "http://redis"),
            ("PASSWORD_MIN_LENGTH", "7"),
            ("CORS_ALLOWED_ORIGINS", "https://a.example/path"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("PASSWORD_HASH_THREADS", "0"),
            ("ACCESS_TOKEN_TTL_SECS", "0"),
            ("ACCESS_TOKEN_TTL_SECS", "7200"),
            ("WS_PING_SECS", "0"),
            ("MAIL_FROM", "not a mailbox"),
        ] {
            let err = pg(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
        }
        let err = pg(&[("MAIL_TRANSPORT", "smtp")]).unwrap_err();
        assert_eq!(err.variable, "SMTP_URL");
        let err = pg(&[("REDIS_URL", "redis://x"), ("REDIS_TIMEOUT_MS", "0")]).unwrap_err();
        assert_eq!(err.variable, "REDIS_TIMEOUT_MS");
    }

    #[test]
    fn an_empty_value_counts_as_unset() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::from_env(&env(&[
            ("DATA_DIR", dir.path().to_str().unwrap()),
            ("DATABASE_URL", " "),
        ]))
        .unwrap();
        assert!(matches!(settings.database.url, DatabaseUrl::Sqlite(_)));
    }
}
