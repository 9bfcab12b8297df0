//! Error reports: the cause of a 500 and a panic reach the DSN's host (here
//! a local endpoint posing as it) as Sentry envelopes, tagged with the
//! request's id and carrying no personal data.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use pp_testkit::{Backend, TestDatabase};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::binary::{Served, login, served_env};
use crate::shutdown::{exit_within, sigterm};
use crate::support::PASSWORD;

/// A Sentry ingest endpoint for project 42 on a free port: the DSN to give,
/// and every envelope body it received.
async fn sentry_host() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&received);
    let server = HttpServer::new(move || {
        let kept = Arc::clone(&kept);
        App::new().route(
            "/api/42/envelope/",
            web::post().to(move |body: web::Bytes| {
                let kept = Arc::clone(&kept);
                async move {
                    kept.lock().unwrap().push(body.to_vec());
                    HttpResponse::Ok().json(json!({"id": "0"}))
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (format!("http://publickey@127.0.0.1:{port}/42"), received)
}

/// The events among the envelopes received within `wait`, once there is
/// at least one, with each envelope's raw text.
async fn events(
    received: &Mutex<Vec<Vec<u8>>>,
    wait: Duration,
) -> Vec<(sentry::protocol::Event<'static>, String)> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let found: Vec<_> = received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|body| {
                let envelope = sentry::Envelope::from_slice(body).ok()?;
                let event = envelope.event()?.clone();
                Some((event, String::from_utf8_lossy(body).into_owned()))
            })
            .collect();
        if !found.is_empty() || tokio::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_cause_of_a_500_is_reported_with_the_request_id_and_nothing_personal() {
    let (dsn, received) = sentry_host().await;
    let database = TestDatabase::create(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let env = served_env(
        &database,
        &[
            ("REQUIRE_EMAIL_VERIFICATION", "false"),
            ("SENTRY_DSN", dsn.as_str()),
            ("SHUTDOWN_TIMEOUT_SECS", "5"),
        ],
    );
    let mut served = Served::start(dir.path(), &env).await;
    let log = served.log_reader();
    let url = served.url.clone();
    let server = &mut served.child;

    let client = reqwest::Client::new();
    let email = "ann.reporting@example.com";
    let credentials = json!({"email": email, "password": PASSWORD});
    let registered = client
        .post(format!("{url}/api/v1/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let token = login(&client, &url, email).await;
    assert!(
        events(&received, Duration::from_millis(300))
            .await
            .is_empty(),
        "nothing to report yet"
    );

    // The database refuses the change, naming the account's address in
    // its error: the cause of the 500 carries personal data.
    let direct = sea_orm::Database::connect(database.url.as_str())
        .await
        .unwrap();
    direct
        .execute_unprepared(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'cannot change %', NEW.email; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse BEFORE UPDATE ON users \
             FOR EACH ROW EXECUTE FUNCTION refuse()",
        )
        .await
        .unwrap();
    let failed = client
        .patch(format!("{url}/api/v1/users/me"))
        .bearer_auth(&token)
        .header("cookie", "refresh_token=a-cookie-value-that-must-not-leave")
        .json(&json!({"display_name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 500, "{}", log());
    let request_id = failed.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let reported = events(&received, Duration::from_secs(10)).await;
    let (event, raw) = reported
        .iter()
        .find(|(event, _)| event.tags.get("request_id") == Some(&request_id))
        .unwrap_or_else(|| panic!("no report tagged {request_id}: {reported:#?}"));
    let cause: Vec<String> = event
        .exception
        .values
        .iter()
        .filter_map(|e| e.value.clone())
        .collect();
    assert!(
        cause
            .iter()
            .any(|value| value.contains("cannot change [redacted]")),
        "the cause says what failed, without the address: {cause:?}"
    );
    assert!(event.request.is_none() && event.user.is_none(), "{raw}");
    for personal in [email, token.as_str(), "a-cookie-value-that-must-not-leave"] {
        assert!(!raw.contains(personal), "{personal} was sent: {raw}");
    }

    sigterm(server);
    let exit = exit_within(server, Duration::from_secs(10)).await;
    assert!(exit.is_some_and(|e| e.success()), "{}", log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_request_is_reported_with_its_id_without_holding_up_the_worker() {
    let (dsn, received) = sentry_host().await;
    let reports = poison_pill::telemetry::report_errors(dsn.parse().unwrap());
    // One worker, behind the request-id middleware as the server has it.
    let server = HttpServer::new(|| {
        App::new()
            .wrap(actix_web::middleware::from_fn(
                pp_http::middleware::request_id,
            ))
            .route(
                "/boom",
                web::get().to(|| async {
                    let who = "bob.panics@example.com";
                    #[allow(clippy::panic)]
                    {
                        panic!("no account for {who}");
                    }
                    #[allow(unreachable_code)]
                    HttpResponse::Ok().finish()
                }),
            )
            .route("/fine", web::get().to(HttpResponse::Ok))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://127.0.0.1:{}", server.addrs()[0].port());
    tokio::spawn(server.run());
    let client = reqwest::Client::new();
    let boom = client
        .get(format!("{url}/boom"))
        .header("x-request-id", "boom-1")
        .send()
        .await;
    assert!(
        boom.is_err(),
        "actix drops a connection whose handler panicked"
    );
    // The worker serves on (it does not wait for the report to be sent).
    let fine = client.get(format!("{url}/fine")).send().await.unwrap();
    assert_eq!(fine.status(), 200);

    let reported = events(&received, Duration::from_secs(5)).await;
    let (event, raw) = reported
        .iter()
        .find(|(event, _)| event.tags.get("request_id").map(String::as_str) == Some("boom-1"))
        .unwrap_or_else(|| panic!("no panic reported: {reported:#?}"));
    let exception = &event.exception.values[0];
    assert_eq!(exception.ty, "panic");
    assert_eq!(
        exception.mechanism.as_ref().and_then(|m| m.handled),
        Some(false)
    );
    assert_eq!(
        exception.value.as_deref(),
        Some("no account for [redacted]")
    );
    assert!(!raw.contains("bob.panics@example.com"), "{raw}");
    // Dropping the guard waits for the transport: off the runtime's threads.
    tokio::task::spawn_blocking(move || drop(reports))
        .await
        .unwrap();
}
