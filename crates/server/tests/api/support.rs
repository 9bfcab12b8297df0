//! Spawning the application for a test.

use poison_pill::app::Application;
use poison_pill::config::{Environment, Settings};
use pp_testkit::{Backend, TestDatabase};

pub const JWT_SECRET: &str = "test-jwt-secret-that-is-long-enough-0123456789";
pub const SEALING_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

/// A running server and what it runs on.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database: TestDatabase,
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        let database = TestDatabase::create(backend).await;
        let data_dir = tempfile::tempdir().unwrap();
        let env = Environment::from_map([
            ("DATABASE_URL", database.url.as_str()),
            ("DATA_DIR", data_dir.path().to_str().unwrap()),
            ("BIND_ADDR", "127.0.0.1:0"),
            ("JWT_SECRET", JWT_SECRET),
            ("BID_SEALING_KEY", SEALING_KEY),
            ("LOG_FORMAT", "json"),
        ]);
        let app = Application::build(Settings::from_env(&env).unwrap())
            .await
            .unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            client: reqwest::Client::new(),
            database,
            _data_dir: data_dir,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }
}
