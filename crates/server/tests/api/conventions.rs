//! docs/spec/api.md's conventions: problem+json, request ids, versions, headers,
//! body rules, OpenAPI, metrics, CORS.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Options, TestApp, problem};

#[tokio::test]
async fn request_ids_are_echoed_when_well_formed_and_replaced_otherwise() {
    let app = TestApp::spawn().await;
    let echoed = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "abc-123.X_y")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123.X_y");
    for bad in ["has spaces", &"a".repeat(129), "semi;colon"] {
        let response = app
            .client
            .get(app.url("/api/v1/users/me"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            uuid::Uuid::parse_str(&id).is_ok(),
            "{bad} was echoed as {id}"
        );
        let body = problem(response, 401, "unauthorized").await;
        assert_eq!(body["request_id"], id, "the problem carries the same id");
    }
}

#[tokio::test]
async fn api_responses_carry_the_version_and_security_headers() {
    let app = TestApp::spawn().await;
    let versioned = app.get("/api/v1/users/me").await;
    let headers = versioned.headers();
    assert_eq!(headers["x-api-version"], "1");
    assert!(headers.get("x-api-version-defaulted").is_none());
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["content-security-policy"], "frame-ancestors 'none'");

    let defaulted = app.get("/api/users/me").await;
    assert_eq!(defaulted.headers()["x-api-version"], "1");
    assert_eq!(defaulted.headers()["x-api-version-defaulted"], "true");
    problem(defaulted, 401, "unauthorized").await;
    // The short events path is v1 too, not a defaulted one.
    let events = app.get(&format!("/events/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(events.headers()["x-api-version"], "1");
    assert!(events.headers().get("x-api-version-defaulted").is_none());

    let session = app.user("wes@example.com").await;
    let alias = app.get_as("/api/users/me", &session.access).await;
    assert_eq!(alias.status(), StatusCode::OK);
    assert_eq!(
        alias.json::<Value>().await.unwrap()["email"],
        "wes@example.com"
    );
}

#[tokio::test]
async fn bodies_must_be_small_well_formed_json_of_the_right_shape() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/v1/auth/login");
    let raw = |content_type: &'static str, body: Vec<u8>| {
        let app = &app;
        let url = url.clone();
        async move {
            app.client
                .post(url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    problem(
        raw("application/json", b"{\"email\": ".to_vec()).await,
        400,
        "malformed_json",
    )
    .await;
    problem(
        raw("text/plain", b"{}".to_vec()).await,
        415,
        "unsupported_media_type",
    )
    .await;
    let huge = format!(
        "{{\"email\": \"{}\", \"password\": \"x\"}}",
        "a".repeat(70 * 1024)
    );
    problem(
        raw("application/json", huge.clone().into_bytes()).await,
        413,
        "payload_too_large",
    )
    .await;
    // Refresh reads its optional body its own way: the same limit holds.
    let refresh = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    problem(refresh, 413, "payload_too_large").await;
    let unknown = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "a@b.example", "password": "x", "remember": true}),
        )
        .await;
    let body = problem(unknown, 422, "validation_failed").await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("remember")
    );
    let wrong_type = app
        .post("/api/v1/auth/login", &json!({"email": 42, "password": "x"}))
        .await;
    let body = problem(wrong_type, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "email");
    assert!(
        !body.to_string().contains("line"),
        "no parser internals: {body}"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = TestApp::spawn().await;
    let missing = problem(app.get("/api/v1/nothing-here").await, 404, "not_found").await;
    assert_eq!(missing["instance"], "/api/v1/nothing-here");
    assert_eq!(missing["type"], "/problems/not_found");
    let method = app
        .client
        .delete(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    problem(method, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_routed_path_asked_with_another_method_names_the_methods_it_takes() {
    let app = TestApp::spawn().await;
    let item = format!("/api/v1/items/{}", Uuid::new_v4());
    for (method, path, allow) in [
        (Method::DELETE, "/api/v1/users/me", "GET, PATCH"),
        (Method::DELETE, "/api/users/me", "GET, PATCH"),
        (Method::PUT, "/api/v1/%75sers/me", "GET, PATCH"),
        (Method::POST, "/health", "GET"),
        (Method::HEAD, "/metrics", "GET"),
        (Method::GET, "/api/v1/auth/login", "POST"),
        (Method::DELETE, item.as_str(), "GET, PATCH"),
        (Method::DELETE, "/events/some-item", "GET"),
    ] {
        let response = app.send(method.clone(), path, None, None).await;
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
    }
    for path in ["/api/v1/users/me/more", "/api/nothing", "/nothing"] {
        let response = app.send(Method::DELETE, path, None, None).await;
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
    // Counted under the route's own pattern, not as an unknown path.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for counted in [
        r#"http_requests_total{method="DELETE",route="/api/v1/users/me",status="405"} 1"#,
        r#"http_requests_total{method="DELETE",route="/api/users/me",status="405"} 1"#,
        r#"http_requests_total{method="POST",route="/health",status="405"} 1"#,
    ] {
        assert!(metrics.contains(counted), "{counted} in {metrics}");
    }
}

/// The methods an OpenAPI path item may name.
const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[tokio::test]
async fn the_served_openapi_document_is_the_reviewed_one_and_every_operation_is_routed() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    // The served document is the one pp-http's snapshot test reviews
    // (crates/http/src/snapshots/): which paths it lists is checked there.
    assert_eq!(
        doc,
        serde_json::to_value(pp_http::openapi::document(15)).unwrap()
    );
    let documented: BTreeSet<(&str, &str)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|key| HTTP_METHODS.contains(&key.as_str()))
                .map(move |method| (path.as_str(), method.as_str()))
        })
        .collect();
    // Every documented operation is routed: the router never answers
    // "no such route" or "no such method" to it (an unknown id is a 404 of
    // the handler's own, with its own code). Asked without a token, exactly
    // those documented as needing one say so (the route's `require_user`
    // or `require_admin` and its `security` agree).
    for (path, method) in &documented {
        let secured = doc["paths"][path][method]["security"].is_array();
        let concrete = path.replace("{id}", &Uuid::new_v4().to_string());
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app.send(method.clone(), &concrete, None, None).await;
        let status = response.status().as_u16();
        // A HEAD answer has no body to read a code from: its status says.
        assert_ne!(
            status, 405,
            "{method} {concrete} is documented but not routed"
        );
        let code = if method != Method::HEAD
            && response
                .headers()
                .get("content-type")
                .is_some_and(|t| t == "application/problem+json")
        {
            response.json::<Value>().await.unwrap()["error_code"].clone()
        } else {
            Value::Null
        };
        assert!(
            !matches!(code.as_str(), Some("not_found" | "method_not_allowed")),
            "{method} {concrete} is documented but not routed: {status} {code}"
        );
        assert_eq!(
            secured,
            code == "unauthorized",
            "{method} {concrete}: documented secured {secured}, answered {status} {code}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let redirect = app.get("/docs").await;
    assert_eq!(redirect.status().as_u16(), 308);
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(
        !html.contains("https://"),
        "the viewer must not load anything from the internet"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_account_events() {
    let app = TestApp::spawn().await;
    app.user("xia@example.com").await;
    app.login("xia@example.com", "wrong wrong wrong").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    for needle in [
        "http_requests_total{method=\"POST\",route=\"/api/v1/auth/login\",status=\"200\"}",
        "http_requests_total{method=\"POST\",route=\"/api/v1/auth/login\",status=\"401\"}",
        "http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/auth/login\",status=\"200\",le=",
        "auth_events_total{event=\"login_succeeded\"}",
        "auth_events_total{event=\"login_failed\"}",
        "db_pool_connections{state=\"idle\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

#[tokio::test]
async fn cors_answers_configured_origins_only() {
    let app = TestApp::spawn_with(
        Options::default().with("CORS_ALLOWED_ORIGINS", "https://auction.test"),
    )
    .await;
    let preflight = |origin: &'static str| {
        let app = &app;
        async move {
            app.client
                .request(reqwest::Method::OPTIONS, app.url("/api/v1/auth/login"))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .send()
                .await
                .unwrap()
        }
    };
    let allowed = preflight("https://auction.test").await;
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://auction.test"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let refused = preflight("https://evil.example").await;
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// No internals in a 5xx body: the cause goes to the log only.
fn assert_no_internals(body: &Value, secrets: &[&str]) {
    let text = body.to_string().to_lowercase();
    for leak in [
        "sql", "postgres", "sea_orm", "sqlx", "database", "argon2", "panicked", ".rs:",
    ]
    .iter()
    .chain(secrets)
    {
        assert!(!text.contains(leak), "{leak:?} leaked into {body}");
    }
}

#[tokio::test]
async fn server_errors_are_problems_that_hide_their_cause() {
    let app = TestApp::spawn().await;
    let session = app.user("ivo@example.com").await;
    // A corrupt row is a bug of ours: 500 internal_error, the cause logged.
    app.store
        .database()
        .connection()
        .execute_unprepared(
            "UPDATE users SET password_hash = 'not-a-phc-string' WHERE email = 'ivo@example.com'",
        )
        .await
        .unwrap();
    let corrupt = problem(
        app.login("ivo@example.com", crate::support::PASSWORD).await,
        500,
        "internal_error",
    )
    .await;
    assert_no_internals(&corrupt, &["not-a-phc-string", "phc", "malformed"]);

    // A database that is gone is an outage: 503 with Retry-After, no driver text.
    let name = app.drop_database().await;
    let gone = app.get_as("/api/v1/users/me", &session.access).await;
    assert!(gone.headers().contains_key("retry-after"), "{gone:?}");
    let body = problem(gone, 503, "service_unavailable").await;
    assert_no_internals(&body, &[&name]);
}
