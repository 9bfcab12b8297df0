//! # Test support
//!
//! Real components for integration tests: a fresh PostgreSQL database per
//! test (dropped afterwards, even when the test panics) or a fresh SQLite
//! file, migrated; a clock tests can move; account fixtures that skip
//! password hashing; a real SMTP server started by the test
//! ([`smtp::SmtpSink`]); and a real OpenID provider ([`idp::Idp`]). Used
//! only as a dev-dependency.
#![allow(clippy::expect_used, clippy::panic)] // test support: failing loudly is the point

pub mod idp;
pub mod s3;
pub mod smtp;

use std::sync::{Arc, Mutex};

use chrono::Duration;
use pp_crypto::AesGcmSealer;
use pp_domain::live::{ItemEvent, Notification};
use pp_domain::ports::{Clock, LiveEvents, UserStore};
use pp_domain::{Email, NewUser, PasswordHash, Role, Timestamp, User, UserId};
use pp_store_sql::{Database, DatabaseSettings, SqlStore};
use sea_orm::ConnectionTrait;

/// Where PostgreSQL tests create their databases; override with `TEST_DATABASE_URL`.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The backends every behavioural test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL, as in production.
    Postgres,
    /// SQLite, the embedded default.
    Sqlite,
}

/// A database that exists only for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// The URL to connect to it.
    pub url: String,
    backend: Backend,
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = admin
        .split_once('?')
        .map_or((admin, None), |(b, q)| (b, Some(q)));
    let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

impl TestDatabase {
    /// A fresh, empty database on `backend` (not migrated).
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => {
                let admin = admin_url();
                let name = format!("pp_test_{}", uuid::Uuid::new_v4().simple());
                let conn = sea_orm::Database::connect(&admin)
                    .await
                    .expect("PostgreSQL must be running for the tests (make services)");
                conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create the test database");
                conn.close().await.ok();
                TestDatabase {
                    url: with_database(&admin, &name),
                    backend,
                    postgres: Some((admin, name)),
                    _dir: None,
                }
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}/test.db", dir.path().display());
                TestDatabase {
                    url,
                    backend,
                    postgres: None,
                    _dir: Some(dir),
                }
            }
        }
    }

    /// Which backend it is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Connection settings for it, with a pool large enough for concurrency tests.
    #[must_use]
    pub fn settings(&self) -> DatabaseSettings {
        let mut settings = DatabaseSettings::new(self.url.clone());
        settings.max_connections = 20;
        settings.acquire_timeout = std::time::Duration::from_secs(30);
        settings
    }

    /// Connects and applies every migration.
    pub async fn migrated(&self) -> Database {
        let db = Database::connect(&self.settings()).await.expect("connect");
        db.migrate_up().await.expect("migrate up");
        db
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async; a short-lived runtime on its own thread
        // removes the database even if the test's runtime is gone.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                if let Ok(conn) = sea_orm::Database::connect(&admin).await {
                    let _ = conn
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// A fixed sealing key for tests.
pub const TEST_SEALING_KEY: [u8; 32] = [42; 32];

/// A migrated store on a fresh database, with its sealer.
pub async fn migrated_store(backend: Backend) -> (TestDatabase, SqlStore) {
    let database = TestDatabase::create(backend).await;
    let db = database.migrated().await;
    let store = SqlStore::new(db, Arc::new(AesGcmSealer::new(&TEST_SEALING_KEY)));
    (database, store)
}

/// A clock that stands still until a test moves it.
#[derive(Debug)]
pub struct TestClock(Mutex<Timestamp>);

impl TestClock {
    /// A clock at the current wall-clock time (to the microsecond).
    #[must_use]
    pub fn new() -> Arc<Self> {
        Self::at(chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6))
    }

    /// A clock at `now`.
    #[must_use]
    pub fn at(now: Timestamp) -> Arc<Self> {
        Arc::new(TestClock(Mutex::new(now)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().expect("clock lock");
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}

/// Creates an account directly in the store (no password hashing).
/// The password hash every [`create_user`] account stores (no password
/// matches it): what a session for such an account is started against.
#[must_use]
pub fn test_password_hash() -> PasswordHash {
    PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$not-a-real-hash".to_owned())
}

pub async fn create_user(users: &dyn UserStore, role: Role, verified: bool) -> User {
    let id = UserId::generate();
    let user = NewUser {
        id,
        email: Email::parse(&format!("user-{}@example.com", id.as_uuid().simple()))
            .expect("a valid address"),
        display_name: "Test User".to_owned(),
        password_hash: test_password_hash(),
        role,
        email_verified: verified,
        created_at: chrono::Utc::now(),
    };
    users.insert_user(user, None).await.expect("create a user")
}

/// Live events as published, kept in order for tests to read back.
#[derive(Debug, Default)]
pub struct RecordedEvents {
    events: Mutex<Vec<ItemEvent>>,
    notifications: Mutex<Vec<Notification>>,
}

impl RecordedEvents {
    /// Every item event published so far.
    #[must_use]
    pub fn events(&self) -> Vec<ItemEvent> {
        self.events.lock().expect("events lock").clone()
    }

    /// Every notification sent so far.
    #[must_use]
    pub fn notifications(&self) -> Vec<Notification> {
        self.notifications
            .lock()
            .expect("notifications lock")
            .clone()
    }
}

impl LiveEvents for RecordedEvents {
    fn publish(&self, event: ItemEvent) {
        self.events.lock().expect("events lock").push(event);
    }

    fn notify(&self, notification: Notification) {
        self.notifications
            .lock()
            .expect("notifications lock")
            .push(notification);
    }
}

/// The python of a test helper's virtualenv: `$variable` when set, else
/// `~/{venv}/bin/python` when the setup script made it, else `python3`.
#[must_use]
pub fn venv_python(variable: &str, venv: &str) -> std::path::PathBuf {
    if let Some(python) = std::env::var_os(variable).filter(|p| !p.is_empty()) {
        return python.into();
    }
    if let Some(home) = std::env::var_os("HOME") {
        let python = std::path::Path::new(&home).join(venv).join("bin/python");
        if python.exists() {
            return python;
        }
    }
    "python3".into()
}
