//! Stopping gracefully: the binary under load, sent SIGTERM as an
//! orchestrator sends it.

use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pp_testkit::{Backend, TestDatabase};
use serde_json::{Value, json};

use crate::binary::{Served, create_admin, login, served_env, ws_ticket};
use crate::support::{JWT_SECRET, Notifications, PASSWORD, SEALING_KEY};

/// What became of one request sent while the server was stopping.
#[derive(Debug)]
enum Outcome {
    /// Answered; `closing` when the answer said `Connection: close`.
    Answered { status: u16, closing: bool },
    /// The connection was refused: nothing was sent.
    Refused,
    /// Sent, and lost: reset, or cut before a whole answer.
    Lost(String),
}

/// A client with one connection of its own, like a load balancer's.
fn one_connection_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn send(request: reqwest::RequestBuilder) -> Outcome {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let closing = response
                .headers()
                .get("connection")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            match response.bytes().await {
                Ok(_) => Outcome::Answered { status, closing },
                Err(error) => Outcome::Lost(format!("{error:?}")),
            }
        }
        Err(error) if error.is_connect() => Outcome::Refused,
        Err(error) => Outcome::Lost(format!("{error:?}")),
    }
}

pub(crate) fn sigterm(child: &Child) {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits up to `limit` for the child to exit.
pub(crate) async fn exit_within(
    child: &mut Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn sigterm_under_load_finishes_what_is_in_flight_ends_streams_and_exits_zero() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let env = served_env(
        &database,
        &[
            ("SHUTDOWN_TIMEOUT_SECS", "10"),
            ("RATE_LIMIT_AUTH", "100000/1m"),
            ("RATE_LIMIT_GLOBAL", "100000/1m"),
        ],
    );
    create_admin(dir.path(), &env, "root@example.com");

    let mut served = Served::start(dir.path(), &env).await;
    let log = served.log_reader();
    let url = served.url.clone();
    let server = &mut served.child;

    // An item, a stream of it, and a socket, open before the stop.
    let client = reqwest::Client::new();
    let credentials = json!({"email": "root@example.com", "password": PASSWORD});
    let token = login(&client, &url, "root@example.com").await;
    let close_at = chrono::Utc::now() + chrono::Duration::hours(1);
    let item: Value = client
        .post(format!("{url}/api/v1/items"))
        .bearer_auth(&token)
        .json(&json!({"title": "A lamp", "base_price": 100, "min_increment": 5, "close_at": close_at.to_rfc3339()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = item["id"].as_str().unwrap().to_owned();
    let stream = client
        .get(format!("{url}/events/{item}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let stream_body = tokio::spawn(async move {
        let mut body = String::new();
        let mut chunks = stream.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => body.push_str(&String::from_utf8_lossy(&chunk)),
                Err(error) => return Err(format!("{error:?} after {body:?}")),
            }
        }
        Ok(body)
    });
    let ticket = ws_ticket(&client, &url, &token).await;
    let mut socket = Notifications::open(&url, &ticket).await.unwrap();

    // Load: clients logging in (a password hash each: slow enough to be in
    // flight when the signal comes) on connections of their own, each
    // until the server answers `Connection: close` or refuses it.
    let started_stop = Arc::new(tokio::sync::OnceCell::<Instant>::new());
    let loaders: Vec<_> = (0..6)
        .map(|_| {
            let (url, credentials) = (url.clone(), credentials.clone());
            let started_stop = Arc::clone(&started_stop);
            tokio::spawn(async move {
                let client = one_connection_client();
                let mut outcomes = Vec::new();
                loop {
                    let sent_at = Instant::now();
                    let outcome = send(
                        client
                            .post(format!("{url}/api/v1/auth/login"))
                            .json(&credentials),
                    )
                    .await;
                    // Sent before the signal, and not yet answered then.
                    let in_flight_at_stop = started_stop
                        .get()
                        .is_some_and(|at| sent_at < *at && Instant::now() > *at);
                    let last = !matches!(outcome, Outcome::Answered { closing: false, .. });
                    outcomes.push((outcome, in_flight_at_stop));
                    if last {
                        return outcomes;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    started_stop.set(Instant::now()).unwrap();
    sigterm(server);

    // Soon no new connection is taken.
    let stopped_at = *started_stop.get().unwrap();
    let refused_by = stopped_at + Duration::from_secs(3);
    loop {
        let fresh = reqwest::Client::new();
        match send(fresh.get(format!("{url}/health"))).await {
            Outcome::Refused => break,
            late => assert!(
                Instant::now() < refused_by,
                "new connections still taken 3 s after SIGTERM: {late:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The socket is closed with 1001 Going Away.
    assert_eq!(
        socket.close_code_within(Duration::from_secs(5)).await,
        Some(1001)
    );
    // The stream ended cleanly, with a retry hint last.
    let body = tokio::time::timeout(Duration::from_secs(5), stream_body)
        .await
        .expect("the stream ended")
        .unwrap()
        .expect("the stream ended cleanly");
    let last_field = body
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let retry_ms: u64 = last_field
        .strip_prefix("retry: ")
        .unwrap_or_else(|| panic!("the stream ended with {last_field:?}: {body}"))
        .parse()
        .unwrap();
    assert!((500..=3000).contains(&retry_ms), "{retry_ms}");

    // Every request was answered or refused at connect; none was lost, and
    // those in flight when the signal came were answered.
    let mut in_flight_answered = 0;
    for loader in loaders {
        let outcomes = loader.await.unwrap();
        assert!(
            matches!(
                outcomes.last(),
                Some((
                    Outcome::Answered { closing: true, .. } | Outcome::Refused,
                    _
                ))
            ),
            "{outcomes:?}"
        );
        for (outcome, in_flight) in outcomes {
            match outcome {
                Outcome::Answered { status, .. } => {
                    assert_eq!(status, 200, "a login under load");
                    in_flight_answered += usize::from(in_flight);
                }
                Outcome::Refused => assert!(!in_flight, "refused a request it had taken"),
                Outcome::Lost(error) => panic!("a request was lost: {error}\n{}", log()),
            }
        }
    }
    assert!(
        in_flight_answered > 0,
        "no request was in flight at the signal"
    );

    // Within SHUTDOWN_TIMEOUT_SECS of the signal (and a moment to exit).
    let limit =
        (stopped_at + Duration::from_millis(10_500)).saturating_duration_since(Instant::now());
    let exit = exit_within(server, limit).await;
    let exit = exit.unwrap_or_else(|| {
        let _ = server.kill();
        panic!("still running 10 s after SIGTERM:\n{}", log())
    });
    assert!(exit.success(), "{exit:?}\n{}", log());
    let log = log();
    assert!(log.contains("\"stopping: no new connections"), "{log}");
    assert!(!log.contains("did not stop in time"), "{log}");
}

#[tokio::test]
async fn once_stopping_ready_answers_503_and_every_answer_closes_its_connection() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let data_dir = tempfile::tempdir().unwrap();
    let settings =
        poison_pill::config::Settings::from_env(&poison_pill::config::Environment::from_map([
            ("DATABASE_URL", database.url.as_str()),
            ("DATA_DIR", data_dir.path().to_str().unwrap()),
            ("BIND_ADDR", "127.0.0.1:0"),
            ("JWT_SECRET", JWT_SECRET),
            ("BID_SEALING_KEY", SEALING_KEY),
            ("MAIL_DIR", data_dir.path().join("mail").to_str().unwrap()),
            ("REQUIRE_EMAIL_VERIFICATION", "false"),
        ]))
        .unwrap();
    let app = poison_pill::app::Application::build(settings)
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    let stopping = app.services().stopping.clone();
    // The first step of a stop alone: the listener stays open, so that what
    // the instance answers meanwhile can be seen.
    let (_never, stop) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve_until(async move {
        let _ = stop.await;
    }));
    let client = reqwest::Client::new();
    let ready = client.get(format!("{url}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_ne!(
        ready.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );

    let credentials = json!({"email": "sam@example.com", "password": PASSWORD});
    let registered = client
        .post(format!("{url}/api/v1/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let token = login(&client, &url, "sam@example.com").await;
    let ticket = ws_ticket(&client, &url, &token).await;

    stopping.cancel();
    // A socket is not opened on a stopping instance (and its ticket, not
    // spent, may be tried on another).
    let refused = Notifications::open(&url, &ticket).await;
    assert_eq!(refused.err(), Some(503));
    let ready = client.get(format!("{url}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.headers()["connection"], "close");
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body, json!({"status": "stopping", "checks": {}}));
    let health = client.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers()["connection"], "close");
}
