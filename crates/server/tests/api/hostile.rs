//! Hostile clients: what an anonymous or ordinary client could do to
//! exhaust the service, and the limits that stop it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Notifications, Options, SseStream, TestApp, problem};

/// The value of the metric line starting with `series` (name and labels),
/// or `None` when it is not there.
async fn metric(app: &TestApp, series: &str) -> Option<f64> {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// Waits (up to `within`) for `series` to read `value`.
async fn metric_reaches(app: &TestApp, series: &str, value: f64, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if metric(app, series).await == Some(value) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn invented_methods_and_paths_add_no_metrics_labels() {
    let app = TestApp::spawn().await;
    for i in 0..20 {
        let invented = Method::from_bytes(format!("XMETH{i}").as_bytes()).unwrap();
        for path in ["/health".to_owned(), format!("/invented/path/{i}")] {
            app.client
                .request(invented.clone(), app.url(&path))
                .send()
                .await
                .unwrap();
        }
        app.get(&format!("/nothing-here-{i}")).await;
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(!text.contains("XMETH"), "{text}");
    assert!(!text.contains("invented/path"), "{text}");
    assert!(!text.contains("nothing-here"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(text.contains("route=\"unmatched\""), "{text}");
}

#[tokio::test]
async fn ws_counts_towards_the_per_address_limit() {
    let app = TestApp::spawn_with(Options::default().with("RATE_LIMIT_GLOBAL", "3/10s")).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.get("/ws?ticket=whatever").await.status().as_u16());
    }
    assert_eq!(statuses, [400, 400, 400, 429]);
}

#[tokio::test]
async fn percent_escapes_in_the_path_dodge_no_limit_and_no_policy() {
    let app = TestApp::spawn_with(Options::default().with("RATE_LIMIT_GLOBAL", "2/10s")).await;
    assert_eq!(app.get("/api/v1/items").await.status(), 200);
    assert_eq!(
        app.get("/%61pi/v1/items").await.status(),
        200,
        "the same route"
    );
    problem(app.get("/%61pi/v1/items").await, 429, "rate_limited").await;
    problem(app.get("/%77s?ticket=x").await, 429, "rate_limited").await;
    let login = app
        .post(
            "/api/v1/%61uth/login",
            &json!({"email": "ann@example.com", "password": "whatever"}),
        )
        .await;
    assert_eq!(login.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn a_plain_get_to_ws_is_refused_without_spending_the_ticket() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann@example.com").await;
    let ticket = app.ticket(&ann.access).await;
    let plain = app.get(&format!("/ws?ticket={ticket}")).await;
    problem(plain, 400, "bad_request").await;
    assert!(
        Notifications::open(&app.address, &ticket).await.is_ok(),
        "the ticket still opens a socket"
    );
}

#[tokio::test]
async fn a_malformed_ticket_is_refused_without_touching_the_database() {
    let app = TestApp::spawn().await;
    app.drop_database().await;
    for garbage in ["garbage", "%00", &"x".repeat(200)] {
        assert_eq!(
            Notifications::open(&app.address, garbage).await.err(),
            Some(401),
            "{garbage}"
        );
    }
    // A well-formed one must be looked up, and the database is gone.
    let well_formed = "A".repeat(43);
    assert_eq!(
        Notifications::open(&app.address, &well_formed).await.err(),
        Some(503)
    );
}

/// An item listed by a fresh admin, open for an hour.
async fn open_item(app: &TestApp) -> String {
    let admin = app.admin("lister@example.com").await;
    app.list_item(&admin.access, 100, 10, Duration::from_secs(3600))
        .await
}

/// Opens `url` as the client `forwarded_for` behind the trusted proxy.
async fn open_stream_as(url: &str, forwarded_for: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header("X-Forwarded-For", forwarded_for)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_address_holds_at_most_its_share_of_event_streams() {
    let app = TestApp::spawn_with(
        Options::default()
            .with("LIVE_STREAMS_PER_IP", "2")
            .with("SSE_KEEPALIVE_SECS", "1")
            .with("TRUSTED_PROXIES", "127.0.0.1"),
    )
    .await;
    let item = open_item(&app).await;
    let url = app.url(&format!("/events/{item}"));
    let first = open_stream_as(&url, "198.51.100.1").await;
    let second = open_stream_as(&url, "198.51.100.1").await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    problem(
        open_stream_as(&url, "198.51.100.1").await,
        429,
        "too_many_streams",
    )
    .await;
    assert_eq!(
        open_stream_as(&url, "198.51.100.2").await.status(),
        StatusCode::OK,
        "another address has its own share"
    );
    // A stream that ends gives its place back (noticed at its next keep-alive).
    drop(first);
    let mut reopened = StatusCode::TOO_MANY_REQUESTS;
    for _ in 0..50 {
        reopened = open_stream_as(&url, "198.51.100.1").await.status();
        if reopened == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reopened, StatusCode::OK);
}

#[tokio::test]
async fn a_stream_keeps_its_place_for_as_long_as_it_is_open() {
    let app = TestApp::spawn_with(
        Options::default()
            .with("LIVE_STREAMS_PER_IP", "1")
            .with("SSE_KEEPALIVE_SECS", "1"),
    )
    .await;
    let item = open_item(&app).await;
    let (status, _held) = SseStream::open(&app.url(&format!("/events/{item}")), None).await;
    assert_eq!(status, StatusCode::OK);
    // Past its first lease (three keep-alives): renewed, so still counted.
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    refused_another_stream(&app, item).await;
}

/// The address has its share of streams open: another is refused.
async fn refused_another_stream(app: &TestApp, item: impl std::fmt::Display) {
    let refused = app.get(&format!("/events/{item}")).await;
    problem(refused, 429, "too_many_streams").await;
}

#[tokio::test]
async fn streams_open_on_other_instances_count_towards_an_addresss_share() {
    let app = TestApp::spawn_with(Options::default().with("LIVE_STREAMS_PER_IP", "2")).await;
    let other = app.sibling().await;
    let item = open_item(&app).await;
    let (status, _elsewhere) =
        SseStream::open(&format!("{}/events/{item}", other.address), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _here) = SseStream::open(&app.url(&format!("/events/{item}")), None).await;
    assert_eq!(status, StatusCode::OK);
    refused_another_stream(&app, item).await;
}

#[tokio::test]
async fn an_account_holds_at_most_its_share_of_sockets() {
    let app = TestApp::spawn_with(Options::default().with("SOCKETS_PER_USER", "2")).await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let first = Notifications::open(&app.address, &app.ticket(&ann.access).await)
        .await
        .unwrap();
    let _second = Notifications::open(&app.address, &app.ticket(&ann.access).await)
        .await
        .unwrap();
    assert_eq!(
        Notifications::open(&app.address, &app.ticket(&ann.access).await)
            .await
            .err(),
        Some(429)
    );
    assert!(
        Notifications::open(&app.address, &app.ticket(&bob.access).await)
            .await
            .is_ok(),
        "another account has its own share"
    );
    drop(first);
    let mut reopened = Err(429);
    for _ in 0..50 {
        reopened = Notifications::open(&app.address, &app.ticket(&ann.access).await).await;
        if reopened.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_ok(), "a closed socket gives its place back");
}

#[tokio::test]
async fn the_streams_of_one_item_share_one_keep_alive_read() {
    let app = TestApp::spawn_with(Options::default().with("SSE_KEEPALIVE_SECS", "1")).await;
    let item = open_item(&app).await;
    let mut streams = Vec::new();
    for _ in 0..20 {
        let (status, stream) = SseStream::open(&app.url(&format!("/events/{item}")), None).await;
        assert_eq!(status, StatusCode::OK);
        streams.push(stream);
    }
    // Three and a half keep-alives: one read per stream each would be 60.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let reads = metric(&app, "live_item_reads_total{reason=\"keep_alive\"}")
        .await
        .unwrap_or(0.0);
    assert!((1.0..=5.0).contains(&reads), "{reads} keep-alive reads");
    drop(streams);
}

/// A client that completes the handshake and then never reads: a tiny
/// receive buffer, so the server's sends back up at once.
async fn a_socket_that_never_reads(
    address: &str,
    ticket: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let url = format!("ws://127.0.0.1:{port}/ws?ticket={ticket}");
    tokio_tungstenite::client_async(url, stream)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn a_socket_whose_client_stops_reading_is_dropped() {
    use pp_domain::live::{Notification, NotificationData};

    let app = TestApp::spawn_with(Options::default().with("WS_PING_SECS", "1")).await;
    let ann = app.user("ann@example.com").await;
    let user: pp_domain::UserId = app.me(&ann.access).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ticket = app.ticket(&ann.access).await;
    let _socket = a_socket_that_never_reads(&app.address, &ticket).await;
    assert!(metric_reaches(&app, "websocket_connections", 1.0, Duration::from_secs(5)).await);

    // Notifications until the pipe to the client is full, paced so that the
    // socket's own subscription never falls behind.
    let notification = Notification {
        user,
        data: NotificationData::Won {
            item: pp_domain::ItemId::generate(),
            final_price: pp_domain::Money::new(1_000).unwrap(),
        },
        at: chrono::Utc::now(),
    };
    for _ in 0..400 {
        for _ in 0..100 {
            app.hub.deliver_notification(notification);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        if metric(&app, "websocket_connections").await == Some(0.0) {
            break;
        }
    }
    assert!(
        metric_reaches(&app, "websocket_connections", 0.0, Duration::from_secs(15)).await,
        "the server still holds the socket of a client that stopped reading"
    );
    // Dropped for that, not for falling behind its subscription.
    assert_eq!(
        metric(&app, "websocket_closed_total{reason=\"stopped_reading\"}").await,
        Some(1.0)
    );
}

#[tokio::test]
async fn a_route_for_signed_in_callers_judges_the_token_before_the_body() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann@example.com").await;
    let item = open_item(&app).await;
    let ann_id = app.me(&ann.access).await["id"].as_str().unwrap().to_owned();
    let send = |method: Method, path: String, token: String, body: &'static str, json: bool| {
        let request = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(token)
            .header(
                "content-type",
                if json {
                    "application/json"
                } else {
                    "text/plain"
                },
            )
            .body(body);
        async move { request.send().await.unwrap() }
    };
    // A user on admin routes, with bodies that are wrong in every way: 403.
    for (method, path) in [
        (Method::POST, "/api/v1/items".to_owned()),
        (Method::PATCH, format!("/api/v1/users/{ann_id}")),
    ] {
        for (body, json) in [("{", true), ("{}", false), ("{\"x\":1}", true)] {
            let response = send(method.clone(), path.clone(), ann.access.clone(), body, json).await;
            problem(response, 403, "forbidden").await;
        }
    }
    // A revoked token (its session logged out) with bad bodies: 401.
    let gone = app.session("ann@example.com").await;
    assert_eq!(
        app.post_as("/api/v1/auth/logout", &gone.access, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    for (method, path) in [
        (Method::POST, format!("/api/v1/items/{item}/bid")),
        (Method::PATCH, "/api/v1/users/me".to_owned()),
        (Method::POST, "/api/v1/auth/password/change".to_owned()),
        (Method::POST, "/api/v1/items".to_owned()),
        (Method::PATCH, format!("/api/v1/users/{ann_id}")),
    ] {
        for (body, json) in [("{", true), ("{}", false), ("[]", true)] {
            let response = send(
                method.clone(),
                path.clone(),
                gone.access.clone(),
                body,
                json,
            )
            .await;
            problem(response, 401, "invalid_token").await;
        }
    }
}

#[tokio::test]
async fn past_the_hashing_queue_logins_are_refused_at_once_with_retry_after() {
    let app = TestApp::spawn_with(
        Options::default()
            .with("PASSWORD_HASH_THREADS", "1")
            .with("PASSWORD_HASH_QUEUE", "1"),
    )
    .await;
    let attempts = (0..24).map(|i| {
        let app = &app;
        async move {
            app.login(&format!("nobody{i}@example.com"), "wrong wrong wrong")
                .await
        }
    });
    let responses = futures::future::join_all(attempts).await;
    let mut refused = 0;
    for response in responses {
        match response.status().as_u16() {
            401 => {}
            503 => {
                refused += 1;
                assert_eq!(response.headers()["retry-after"], "1");
                problem(response, 503, "service_unavailable").await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused > 0, "24 logins at once fit a queue of one");
}

#[tokio::test]
async fn ipv6_clients_share_a_limit_per_64_network() {
    let app = TestApp::spawn_with(
        Options::default()
            .with("TRUSTED_PROXIES", "127.0.0.1")
            .with("RATE_LIMIT_GLOBAL", "3/10s"),
    )
    .await;
    let from = |client: &'static str| {
        let request = app
            .client
            .get(app.url("/api/v1/items"))
            .header("X-Forwarded-For", client);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let mut statuses = Vec::new();
    for client in [
        "2001:db8:1:2::1",
        "2001:db8:1:2::2",
        "2001:db8:1:2:ffff:ffff:ffff:fffe",
        "2001:db8:1:2::4",
        "2001:db8:1:3::1",
    ] {
        statuses.push(from(client).await);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 200]);
}

#[tokio::test]
async fn an_account_gets_at_most_three_links_an_hour_whatever_is_asked() {
    let app = TestApp::spawn().await;
    app.register("ann@example.com").await;
    for _ in 0..4 {
        let resend = app
            .post(
                "/api/v1/auth/resend-verification",
                &json!({"email": "ann@example.com"}),
            )
            .await;
        assert_eq!(resend.status(), StatusCode::ACCEPTED);
    }
    let forgot = app
        .post(
            "/api/v1/auth/password/forgot",
            &json!({"email": "ann@example.com"}),
        )
        .await;
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    // Registration's link and two more, of either kind (the flows run
    // after their answers, in any order); nothing past them.
    let links = || {
        app.mailed_tokens("ann@example.com", "verify-email").len()
            + app.mailed_tokens("ann@example.com", "reset-password").len()
    };
    for _ in 0..100 {
        if links() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(links(), 3);
}

#[tokio::test]
async fn forgot_and_resend_answer_before_any_lookup() {
    let app = TestApp::spawn().await;
    app.drop_database().await;
    for path in [
        "/api/v1/auth/password/forgot",
        "/api/v1/auth/resend-verification",
    ] {
        let response = app.post(path, &json!({"email": "ann@example.com"})).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{path}");
    }
}

#[tokio::test]
async fn credentials_are_never_cached_and_https_is_enforced() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann@example.com").await;
    let responses = [
        app.get_as("/api/v1/users/me", &ann.access).await,
        app.get_as("/api/users/me", &ann.access).await,
        app.login("ann@example.com", "wrong wrong wrong").await,
        app.post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": ann.refresh}),
        )
        .await,
    ];
    for response in &responses {
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "{}",
            response.url()
        );
    }
    // The test app's public URL is https: every answer says so.
    for path in ["/health", "/api/v1/items", "/nothing"] {
        let response = app.get(path).await;
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
    let plain =
        TestApp::spawn_with(Options::default().with("PUBLIC_URL", "http://auction.test")).await;
    assert!(
        !plain
            .get("/health")
            .await
            .headers()
            .contains_key("strict-transport-security")
    );
}

#[tokio::test]
async fn display_names_refuse_control_characters() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann@example.com").await;
    for name in ["Ann\u{0}", "Ann\u{1b}[2J", "\u{202e}nnA", "A\nnn"] {
        let response = app
            .send(
                Method::PATCH,
                "/api/v1/users/me",
                Some(&ann.access),
                Some(&json!({"display_name": name})),
            )
            .await;
        let body = problem(response, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], "display_name");
    }
    let registered = app
        .post(
            "/api/v1/auth/register",
            &json!({"email": "nul@example.com", "password": crate::support::PASSWORD, "display_name": "N\u{0}L"}),
        )
        .await;
    problem(registered, 422, "validation_failed").await;
}

/// What the API fuzzer found the server doing against its own document.
#[tokio::test]
async fn requests_are_judged_as_the_openapi_document_describes_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin("lister@example.com").await;
    let ann = app.user("ann@example.com").await;
    // An array is not an object, whatever serde would make of it.
    let array = app
        .send(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&ann.access),
            Some(&json!(["Ann"])),
        )
        .await;
    let body = problem(array, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "body");
    // An empty status is not one of the three.
    problem(
        app.get("/api/v1/items?status=").await,
        422,
        "validation_failed",
    )
    .await;
    // `integer` in JSON Schema admits 1000.0; so does the server.
    let close_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let listed = app
        .post_as(
            "/api/v1/items",
            &admin.access,
            Some(&json!({"title": "A lamp", "base_price": 1000.0, "min_increment": 50.0, "close_at": close_at})),
        )
        .await;
    assert_eq!(listed.status(), StatusCode::CREATED);
    let item: serde_json::Value = listed.json().await.unwrap();
    assert_eq!(
        (&item["base_price"], &item["description"]),
        (&json!(1000), &json!(""))
    );
    let fractional = app
        .bid(
            &ann.access,
            item["id"].as_str().unwrap(),
            &json!({"amount": 1000.5}),
        )
        .await;
    let body = problem(fractional, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "amount");
    // A new password that breaks a rule is refused before the current one
    // is checked: no guess is counted, a lock is not in the way.
    for _ in 0..6 {
        let change = app
            .post_as(
                "/api/v1/auth/password/change",
                &ann.access,
                Some(&json!({"current_password": "wrong", "new_password": "short"})),
            )
            .await;
        problem(change, 422, "validation_failed").await;
    }
    assert_eq!(
        app.login("ann@example.com", crate::support::PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}
