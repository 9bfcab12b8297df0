//! Forged and misused tokens, and the rate limits under spoofing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{JWT_SECRET, Options, RedisMode, TestApp, problem};

fn segments(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    let decode = |s: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
    (decode(parts[0]), decode(parts[1]))
}

fn sign(header: &Value, payload: &Value, key: &[u8]) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(payload.to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    format!(
        "{h}.{p}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[tokio::test]
async fn forged_tampered_and_foreign_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let session = app.user("tia@example.com").await;
    let (header, payload) = segments(&session.access);
    // Our own re-signing reproduces a valid token, so the refusals below are about the change.
    let resigned = sign(&header, &payload, JWT_SECRET.as_bytes());
    assert_eq!(
        app.get_as("/api/v1/users/me", &resigned).await.status(),
        StatusCode::OK
    );

    let mut forgeries = Vec::new();
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    forgeries.push(format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string())
    ));
    let mut admin = payload.clone();
    admin["role"] = json!("admin");
    let parts: Vec<&str> = session.access.split('.').collect();
    forgeries.push(format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(admin.to_string()),
        parts[2]
    ));
    forgeries.push(sign(
        &header,
        &payload,
        b"another-secret-that-is-long-enough-123",
    ));
    for claim in ["aud", "iss", "exp"] {
        let mut missing = payload.clone();
        missing.as_object_mut().unwrap().remove(claim);
        forgeries.push(sign(&header, &missing, JWT_SECRET.as_bytes()));
    }
    let mut refresh_kind = payload.clone();
    refresh_kind["typ"] = json!("refresh");
    forgeries.push(sign(&header, &refresh_kind, JWT_SECRET.as_bytes()));
    let mut expired = payload.clone();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 60);
    forgeries.push(sign(&header, &expired, JWT_SECRET.as_bytes()));
    forgeries.push(sign(
        &json!({"alg": "HS512", "typ": "JWT"}),
        &payload,
        JWT_SECRET.as_bytes(),
    ));

    for forged in forgeries {
        let response = app.get_as("/api/v1/users/me", &forged).await;
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        problem(response, 401, "invalid_token").await;
    }
}

#[tokio::test]
async fn no_other_kind_of_token_passes_as_a_bearer_token() {
    let app = TestApp::spawn().await;
    let session = app.user("uma@example.com").await;
    let reset = app.reset_link("uma@example.com", 1).await;
    let verify = app.mailed_token("uma@example.com", "verify-email", 1).await;
    let ticket: Value = app
        .post_as("/api/v1/ws-ticket", &session.access, None)
        .await
        .json()
        .await
        .unwrap();
    let ticket = ticket["ticket"].as_str().unwrap();
    for token in [session.refresh.as_str(), &reset, &verify, ticket] {
        let response = app.get_as("/api/v1/users/me", token).await;
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{token}"
        );
        problem(response, 401, "invalid_token").await;
    }
    for empty in ["", "Bearer"] {
        let response = app.get_as("/api/v1/users/me", empty).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{empty:?}");
    }
    // The access token itself passes: the refusals above are about the kind.
    assert_eq!(
        app.get_as("/api/v1/users/me", &session.access)
            .await
            .status(),
        StatusCode::OK
    );
    let basic = app
        .client
        .get(app.url("/api/v1/users/me"))
        .basic_auth("uma", Some("pw"))
        .send()
        .await
        .unwrap();
    problem(basic, 401, "unauthorized").await;
}

#[tokio::test]
async fn the_eleventh_request_in_ten_seconds_is_429_with_headers_spoofing_or_not() {
    let app = TestApp::spawn_with(Options::default().with("RATE_LIMIT_GLOBAL", "10/10s")).await;
    for i in 0..10 {
        let response = app
            .client
            .get(app.url("/api/v1/users/me"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["ratelimit-limit"], "10");
        assert_eq!(
            response.headers()["ratelimit-remaining"],
            (9 - i).to_string().as_str()
        );
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The peer is not a trusted proxy: a forged X-Forwarded-For changes nothing.
    let limited = app
        .client
        .get(app.url("/api/v1/users/me"))
        .header("x-forwarded-for", "203.0.113.99")
        .send()
        .await
        .unwrap();
    let headers = limited.headers().clone();
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry));
    assert_eq!(headers["ratelimit-remaining"], "0");
    let reset: u64 = headers["ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&reset));
    problem(limited, 429, "rate_limited").await;
    // Health and readiness are not rate limited.
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("rate_limited_total{class=\"global\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_window() {
    let app = TestApp::spawn_with(
        Options::default()
            .with("RATE_LIMIT_GLOBAL", "2/10s")
            .with("TRUSTED_PROXIES", "127.0.0.1"),
    )
    .await;
    let get = |xff: &'static str| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/v1/users/me"))
                .header("x-forwarded-for", xff)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get("198.51.100.1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(get("198.51.100.1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(get("198.51.100.1").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(get("198.51.100.2").await, StatusCode::UNAUTHORIZED);
    // A client cannot prepend its way out: the right-most untrusted hop counts.
    assert_eq!(
        get("1.2.3.4, 198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn the_sixth_login_in_a_minute_from_one_address_is_429() {
    let app = TestApp::spawn_with(Options::default().with("RATE_LIMIT_AUTH", "5/60s")).await;
    for _ in 0..5 {
        let response = app.login("nobody@example.com", "whatever password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["ratelimit-limit"], "5");
    }
    problem(
        app.login("nobody@example.com", "whatever password").await,
        429,
        "rate_limited",
    )
    .await;
    // The auth limit covers register and forgot too; other endpoints are untouched.
    let register = app
        .post(
            "/api/v1/auth/register",
            &json!({"email": "v@example.com", "password": "x"}),
        )
        .await;
    problem(register, 429, "rate_limited").await;
    for (path, body) in [
        (
            "/api/v1/auth/password/forgot",
            json!({"email": "v@example.com"}),
        ),
        (
            "/api/v1/auth/resend-verification",
            json!({"email": "v@example.com"}),
        ),
    ] {
        problem(app.post(path, &body).await, 429, "rate_limited").await;
    }
    let verify = app
        .post("/api/v1/auth/verify-email", &json!({"token": "x"}))
        .await;
    problem(verify, 400, "invalid_token").await;
}

/// The auth limit guards what costs: a password hash, a mail, a guess at
/// an account. A request with a method the endpoint does not take does
/// none of that; it is told 405 and counts only towards the global limit.
#[tokio::test]
async fn a_wrong_method_on_an_auth_endpoint_spends_no_auth_allowance() {
    let app = TestApp::spawn_with(Options::default().with("RATE_LIMIT_AUTH", "5/60s")).await;
    for _ in 0..5 {
        let response = app.get("/api/v1/auth/login").await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    for _ in 0..5 {
        let response = app.login("nobody@example.com", "whatever password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let sixth = app.login("nobody@example.com", "whatever password").await;
    problem(sixth, 429, "rate_limited").await;
}

/// A refused login when the global limit has just run out too: the
/// `RateLimit-*` headers describe the auth limit that refused it, as its
/// `Retry-After` does, not the global one.
#[tokio::test]
async fn a_429s_ratelimit_headers_describe_the_limit_that_refused_it() {
    let app = TestApp::spawn_with(
        Options::default()
            .with("RATE_LIMIT_AUTH", "5/60s")
            .with("RATE_LIMIT_GLOBAL", "6/10s"),
    )
    .await;
    for _ in 0..5 {
        let response = app.login("nobody@example.com", "whatever password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = app.login("nobody@example.com", "whatever password").await;
    let headers = refused.headers().clone();
    problem(refused, 429, "rate_limited").await;
    assert_eq!(headers["ratelimit-limit"], "5");
    assert_eq!(headers["ratelimit-remaining"], "0");
    let seconds = |name: &str| -> u64 { headers[name].to_str().unwrap().parse().unwrap() };
    assert!(seconds("retry-after") > 10, "{headers:?}");
    assert_eq!(seconds("ratelimit-reset"), seconds("retry-after"));
}

/// Requests while Redis is down or hung: none waits much longer than
/// `REDIS_TIMEOUT_MS` (300 ms in these apps), and the limits still hold,
/// counted by this instance alone.
async fn limits_hold_without_redis(mode: RedisMode) {
    let app = TestApp::spawn_with(
        Options::default()
            .redis(mode)
            .with("RATE_LIMIT_AUTH", "3/60s"),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let started = std::time::Instant::now();
        let response = app.login("nobody@example.com", "wrong wrong wrong").await;
        // Generous against a 300 ms timeout, tight against a hang.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            problem(response, 429, "rate_limited").await;
        }
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
    // Degraded, still serving: the instance stays in the load balancer.
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        (&body["status"], &body["checks"]["redis"]),
        (&json!("degraded"), &json!("down"))
    );
}

#[tokio::test]
async fn with_redis_unreachable_limits_fall_back_to_this_instance() {
    limits_hold_without_redis(RedisMode::Unreachable).await;
}

#[tokio::test]
async fn with_redis_hung_limits_fall_back_and_nothing_waits_past_the_timeout() {
    limits_hold_without_redis(RedisMode::Hung).await;
}
