//! Spawning the application for a test, and talking to it like a client.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use poison_pill::app::Application;
use poison_pill::config::{Environment, Settings};
use pp_store_sql::SqlStore;
use pp_testkit::{Backend, TestDatabase};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub const JWT_SECRET: &str = "test-jwt-secret-that-is-long-enough-0123456789";
pub const SEALING_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";
pub const PASSWORD: &str = "violet kettle drums at dawn";

/// Where the test app keeps its blacklist and rate-limit windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisMode {
    /// The real Redis on 127.0.0.1:6379, under a unique key prefix.
    Real,
    /// A Redis URL nothing listens on.
    Unreachable,
    /// A server that accepts connections and never answers.
    Hung,
    /// No Redis: in-process twins.
    None,
}

/// How to start the app.
pub struct Options {
    pub backend: Backend,
    pub redis: RedisMode,
    pub env: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: Backend::Postgres,
            redis: RedisMode::Real,
            env: Vec::new(),
        }
    }
}

impl Options {
    pub fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.env.push((key, value.into()));
        self
    }

    pub fn redis(mut self, mode: RedisMode) -> Self {
        self.redis = mode;
        self
    }
}

/// A running server and what it runs on.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database: TestDatabase,
    pub store: Arc<SqlStore>,
    pub mail_dir: PathBuf,
    pub redis_prefix: String,
    /// The server's own live-event hub, to hand its subscribers events directly.
    pub hub: Arc<pp_store_memory::EventHub>,
    _data_dir: tempfile::TempDir,
}

/// The settings every test server starts from: its database, files and
/// Redis prefix, the test secrets, and limits raised out of the way.
fn base_vars(
    database_url: &str,
    data_dir: &std::path::Path,
    mail_dir: &std::path::Path,
    redis_prefix: &str,
) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url.to_owned()),
        ("DATA_DIR", data_dir.display().to_string()),
        ("MAIL_DIR", mail_dir.display().to_string()),
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("PUBLIC_URL", "https://auction.test".to_owned()),
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        ("BID_SEALING_KEY", SEALING_KEY.to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
        ("RATE_LIMIT_GLOBAL", "100000/10s".to_owned()),
        ("RATE_LIMIT_AUTH", "100000/60s".to_owned()),
        ("RATE_LIMIT_WRITE", "100000/60s".to_owned()),
        ("REDIS_KEY_PREFIX", redis_prefix.to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

/// The URL of a server that accepts connections, reads nothing and answers
/// nothing, for as long as the test's runtime lives.
async fn hung_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

/// A logged-in session.
#[derive(Clone, Debug)]
pub struct Session {
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        let database = TestDatabase::create(options.backend).await;
        let data_dir = tempfile::tempdir().unwrap();
        let mail_dir = data_dir.path().join("mail");
        let redis_prefix = format!("pp-test:{}:", uuid::Uuid::new_v4().simple());
        let mut vars = base_vars(&database.url, data_dir.path(), &mail_dir, &redis_prefix);
        match options.redis {
            RedisMode::Real => vars.push(("REDIS_URL".into(), "redis://127.0.0.1:6379".into())),
            RedisMode::Unreachable => {
                vars.push(("REDIS_URL".into(), "redis://127.0.0.1:1".into()));
                vars.push(("REDIS_TIMEOUT_MS".into(), "200".into()));
            }
            RedisMode::Hung => {
                vars.push(("REDIS_URL".into(), hung_server().await));
                vars.push(("REDIS_TIMEOUT_MS".into(), "300".into()));
            }
            RedisMode::None => {}
        }
        for (key, value) in options.env {
            vars.retain(|(k, _)| k != key);
            vars.push((key.to_owned(), value));
        }
        let settings = Settings::from_env(&Environment::from_map(vars)).unwrap();
        let app = Application::build(settings).await.unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        let store = Arc::clone(&app.services().store);
        let hub = Arc::clone(&app.services().hub);
        tokio::spawn(app.run_until_stopped());
        TestApp {
            hub,
            address,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            database,
            store,
            mail_dir,
            redis_prefix,
            _data_dir: data_dir,
        }
    }

    /// Where the embedded media store keeps images (`DATA_DIR/media`).
    pub fn media_dir(&self) -> PathBuf {
        self._data_dir.path().join("media")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_as(&self, path: &str, token: &str, body: Option<&Value>) -> Response {
        let request = self.client.post(self.url(path)).bearer_auth(token);
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        request.send().await.unwrap()
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    /// Drops the app's database under it (connections terminated), as an
    /// outage would; returns its name.
    pub async fn drop_database(&self) -> String {
        use sea_orm::ConnectionTrait;
        let name = self.database.url.rsplit('/').next().unwrap().to_owned();
        sea_orm::Database::connect(pp_testkit::DEFAULT_ADMIN_URL)
            .await
            .unwrap()
            .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .unwrap();
        name
    }

    /// Asks for a password reset for `email` and returns the token of the
    /// `n`-th reset link mailed to it.
    pub async fn reset_link(&self, email: &str, n: usize) -> String {
        self.post("/api/v1/auth/password/forgot", &json!({"email": email}))
            .await;
        self.mailed_token(email, "reset-password", n).await
    }

    /// Every mail to `email` so far, oldest first, as text.
    pub fn mails_to(&self, email: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.mail_dir) else {
            return Vec::new();
        };
        let mut mails: Vec<(std::time::SystemTime, String)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let modified = e.metadata().ok()?.modified().ok()?;
                Some((
                    modified,
                    decode_mail(&std::fs::read_to_string(e.path()).ok()?),
                ))
            })
            // A file still being written is not a mail yet (its token
            // would be cut short): a whole one ends with the closing
            // boundary of its parts.
            .filter(|(_, text)| text.trim_end().ends_with("--"))
            .filter(|(_, text)| {
                text.lines()
                    .any(|l| l.eq_ignore_ascii_case(&format!("to: {email}")))
            })
            .collect();
        mails.sort();
        mails.into_iter().map(|(_, text)| text).collect()
    }

    /// Every notice (a mail about a bid, linking to its item) to `email`
    /// so far, oldest first.
    pub fn notices_to(&self, email: &str) -> Vec<String> {
        let mut mails = self.mails_to(email);
        mails.retain(|text| text.contains("https://auction.test/items/"));
        mails
    }

    /// Waits until `n` notices went to `email`, and returns them, oldest first.
    pub async fn await_notices_to(&self, email: &str, n: usize) -> Vec<String> {
        // Up to 15 s: a busy machine (the whole suite at once) delays the
        // outbox worker's rounds.
        for _ in 0..300 {
            let notices = self.notices_to(email);
            if notices.len() >= n {
                return notices;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} notices did not reach {email}");
    }

    /// Every link token mailed to `email` so far, oldest first, for `path`
    /// (`verify-email` or `reset-password`).
    pub fn mailed_tokens(&self, email: &str, path: &str) -> Vec<String> {
        let marker = format!("https://auction.test/{path}?token=");
        self.mails_to(email)
            .iter()
            .filter_map(|text| {
                let start = text.find(&marker)? + marker.len();
                let token: String = text[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                // A mail read while it was still being written can hold a
                // token cut short, which the server refuses on its shape
                // (a 400): only a whole one (256 bits, 43 characters) counts.
                (token.len() == 43).then_some(token)
            })
            .collect()
    }

    /// Waits for the `n`-th link of `path` mailed to `email`.
    pub async fn mailed_token(&self, email: &str, path: &str, n: usize) -> String {
        for _ in 0..100 {
            if let Some(token) = self.mailed_tokens(email, path).get(n - 1) {
                return token.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {path} link #{n} was mailed to {email}");
    }

    /// Registers `email` with the test password; returns the account.
    pub async fn register(&self, email: &str) -> Value {
        let response = self
            .post(
                "/api/v1/auth/register",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// Registers and verifies `email`.
    pub async fn verified_user(&self, email: &str) -> Value {
        self.register(email).await;
        let token = self.mailed_token(email, "verify-email", 1).await;
        let response = self
            .post("/api/v1/auth/verify-email", &json!({"token": token}))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Logs in and returns the tokens.
    pub async fn session(&self, email: &str) -> Session {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        session_of(response).await
    }

    /// A verified, logged-in user.
    pub async fn user(&self, email: &str) -> Session {
        self.verified_user(email).await;
        self.session(email).await
    }

    /// A logged-in admin (promoted directly in the store).
    pub async fn admin(&self, email: &str) -> Session {
        let user = self.verified_user(email).await;
        let id: pp_domain::UserId = user["id"].as_str().unwrap().parse().unwrap();
        let changes = pp_domain::UserChanges {
            role: Some(pp_domain::Role::Admin),
            ..Default::default()
        };
        pp_domain::ports::UserStore::update_user(
            self.store.as_ref(),
            id,
            changes,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        self.session(email).await
    }
}

pub async fn session_of(response: Response) -> Session {
    let body: Value = response.json().await.unwrap();
    Session {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// Undoes quoted-printable soft breaks and `=3D`, in case the mail was encoded.
fn decode_mail(raw: &str) -> String {
    raw.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// Asserts an RFC 7807 answer with `status` and `code`, and returns its body.
pub async fn problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "expected {status} {code}"
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], code, "{body}");
    assert_eq!(body["status"], status);
    for member in ["type", "title", "detail", "instance", "request_id"] {
        assert!(body[member].is_string(), "{member} missing in {body}");
    }
    body
}

impl TestApp {
    /// A second server on the same database and Redis (the same key prefix
    /// and secrets), as another instance of one deployment.
    pub async fn sibling(&self) -> Sibling {
        let data_dir = tempfile::tempdir().unwrap();
        let mut vars = base_vars(
            &self.database.url,
            data_dir.path(),
            &self.mail_dir,
            &self.redis_prefix,
        );
        vars.push(("REDIS_URL".into(), "redis://127.0.0.1:6379".into()));
        let settings = Settings::from_env(&Environment::from_map(vars)).unwrap();
        let app = Application::build(settings).await.unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Sibling {
            address,
            _data_dir: data_dir,
        }
    }

    /// Lists an item as `admin`, closing `closes_in` from now; returns its id.
    pub async fn list_item(
        &self,
        admin: &str,
        base: i64,
        increment: i64,
        closes_in: Duration,
    ) -> String {
        let close_at = chrono::Utc::now() + chrono::Duration::from_std(closes_in).unwrap();
        let response = self
            .post_as(
                "/api/v1/items",
                admin,
                Some(&json!({
                    "title": "A painted lamp",
                    "description": "Brass, 1920s",
                    "base_price": base,
                    "min_increment": increment,
                    "close_at": close_at.to_rfc3339(),
                })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// `user` bids on `item`.
    pub async fn bid(&self, user: &str, item: &str, body: &Value) -> Response {
        self.post_as(&format!("/api/v1/items/{item}/bid"), user, Some(body))
            .await
    }

    /// The public view of `item`.
    pub async fn item(&self, item: &str) -> Value {
        let response = self.get(&format!("/api/v1/items/{item}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Waits (up to 5 s) for `item` to be closed by the closer.
    pub async fn closed(&self, item: &str) -> Value {
        for _ in 0..100 {
            let body = self.item(item).await;
            if body["status"] == "closed" {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{item} did not close in time");
    }

    /// `n` verified, logged-in users, made concurrently.
    pub async fn users(&self, prefix: &str, n: usize) -> Vec<Session> {
        let emails: Vec<String> = (0..n).map(|i| format!("{prefix}{i}@example.com")).collect();
        futures::future::join_all(emails.iter().map(|email| self.user(email))).await
    }

    /// Every revealed bid of a closed item, following the cursor.
    pub async fn revealed(&self, item: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut path = format!("/api/v1/items/{item}/bids?limit=7");
        loop {
            let response = self.get(&path).await;
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            all.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/items/{item}/bids?limit=7&cursor={cursor}"),
                None => return all,
            }
        }
    }

    /// `GET /users/me` as the holder of `token`.
    pub async fn me(&self, token: &str) -> Value {
        let response = self.get_as("/api/v1/users/me", token).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// A single-use WebSocket ticket for `user`.
    pub async fn ticket(&self, user: &str) -> String {
        let response = self.post_as("/api/v1/ws-ticket", user, None).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["expires_in"], 30);
        body["ticket"].as_str().unwrap().to_owned()
    }
}

/// Another instance of the same deployment.
pub struct Sibling {
    pub address: String,
    _data_dir: tempfile::TempDir,
}

/// One Server-Sent Event.
#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<u64>,
    pub data: Value,
}

/// A Server-Sent Events stream read event by event.
pub struct SseStream {
    bytes: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseStream {
    /// Opens `url` (with `Last-Event-ID` when given); the status and the stream.
    pub async fn open(url: &str, last_event_id: Option<u64>) -> (StatusCode, SseStream) {
        let mut request = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        if status == StatusCode::OK {
            assert_eq!(
                response.headers()["content-type"].to_str().unwrap(),
                "text/event-stream"
            );
        }
        (
            status,
            SseStream {
                bytes: Box::pin(response.bytes_stream()),
                buffer: String::new(),
            },
        )
    }

    /// The next event (comments skipped), or `None` if none comes within
    /// `wait` or the stream ends.
    pub async fn next_within(&mut self, wait: Duration) -> Option<SseEvent> {
        use futures::StreamExt;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        event = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("id:") {
                        id = value.trim().parse().ok();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment or the retry hint
                }
                return Some(SseEvent {
                    event,
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.bytes.next())
                .await
                .ok()??;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    }

    /// The next event within 5 s, or the test fails.
    pub async fn next(&mut self) -> SseEvent {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("an event within 5 s")
    }
}

/// A notification WebSocket.
pub struct Notifications {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Notifications {
    /// Opens `/ws` on `address` with `ticket`; `Err` with the HTTP status when refused.
    pub async fn open(address: &str, ticket: &str) -> Result<Notifications, u16> {
        let url = format!("{}/ws?ticket={ticket}", address.replacen("http", "ws", 1));
        match tokio_tungstenite::connect_async(url).await {
            Ok((socket, _)) => Ok(Notifications { socket }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(other) => panic!("websocket failed: {other}"),
        }
    }

    /// The code of the close frame the server sends within `wait`
    /// (notifications before it are passed over); `None` if none comes.
    pub async fn close_code_within(&mut self, wait: Duration) -> Option<u16> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
            {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next notification, or `None` if none comes within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
            {
                Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The close frame's code and reason if the server closes the socket
    /// within `wait` (notifications before it are skipped); `None` if it
    /// stays open that long.
    pub async fn closed_within(&mut self, wait: Duration) -> Option<(u16, String)> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Some(frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    }));
                }
                Ok(None | Some(Err(_))) => return Some((1006, String::new())),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The next notification within 5 s, or the test fails.
    pub async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("a notification within 5 s")
    }
}
