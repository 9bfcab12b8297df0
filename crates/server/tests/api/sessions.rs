//! Refresh rotation and reuse, logout (also with Redis down), logout-all, lockout.

use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::support::{Options, PASSWORD, RedisMode, TestApp, problem, session_of};

#[tokio::test]
async fn a_refresh_token_rotates_and_a_replay_kills_the_whole_family() {
    let app = TestApp::spawn().await;
    let first = app.user("hal@example.com").await;
    let refresh = |token: &str| {
        let body = json!({"refresh_token": token});
        let app = &app;
        async move { app.post("/api/v1/auth/refresh", &body).await }
    };

    let rotated = refresh(&first.refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let second = session_of(rotated).await;
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(
        app.get_as("/api/v1/users/me", &second.access)
            .await
            .status(),
        StatusCode::OK
    );

    // The cookie works as well as the body.
    let by_cookie = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", format!("refresh_token={}", second.refresh))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::OK);
    let third = session_of(by_cookie).await;

    let replay = refresh(&first.refresh).await;
    problem(replay, 401, "token_reused").await;
    // Every token descended from that login is dead now.
    let successor = refresh(&third.refresh).await;
    problem(successor, 401, "invalid_token").await;
    // A rotated token stays a replay once its family is dead.
    let replayed_again = refresh(&second.refresh).await;
    problem(replayed_again, 401, "token_reused").await;
    problem(
        app.get_as("/api/v1/users/me", &third.access).await,
        401,
        "invalid_token",
    )
    .await;
    let records = app.store.audit_records().await.unwrap();
    let replays = records.iter().filter(|r| r.event == "token_reused").count();
    assert_eq!(replays, 2, "each replay is audited");
    problem(
        app.post("/api/v1/auth/refresh", &json!({})).await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn two_concurrent_refreshes_with_one_token_yield_at_most_one_successor() {
    let app = TestApp::spawn().await;
    let session = app.user("ida@example.com").await;
    let body = json!({"refresh_token": session.refresh});
    let (a, b) = tokio::join!(
        app.post("/api/v1/auth/refresh", &body),
        app.post("/api/v1/auth/refresh", &body)
    );
    let statuses = [a.status(), b.status()];
    let successes = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(successes <= 1, "{statuses:?}");
    assert!(statuses.contains(&StatusCode::UNAUTHORIZED));
}

async fn logout_refuses_the_token_from_the_next_request(redis: RedisMode) {
    let app = TestApp::spawn_with(Options::default().redis(redis)).await;
    let session = app.user("jon@example.com").await;
    let other = app.session("jon@example.com").await;
    let logout = app
        .post_as("/api/v1/auth/logout", &session.access, None)
        .await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert!(
        logout.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    problem(
        app.get_as("/api/v1/users/me", &session.access).await,
        401,
        "invalid_token",
    )
    .await;
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": session.refresh}),
        )
        .await;
    problem(refresh, 401, "invalid_token").await;
    assert_eq!(
        app.get_as("/api/v1/users/me", &other.access).await.status(),
        StatusCode::OK,
        "other sessions live on"
    );
}

#[tokio::test]
async fn a_logged_out_token_is_refused_before_it_expires() {
    logout_refuses_the_token_from_the_next_request(RedisMode::Real).await;
}

#[tokio::test]
async fn a_logged_out_token_is_refused_with_redis_unreachable() {
    logout_refuses_the_token_from_the_next_request(RedisMode::Unreachable).await;
}

#[tokio::test]
async fn a_logged_out_token_is_refused_with_redis_hung() {
    logout_refuses_the_token_from_the_next_request(RedisMode::Hung).await;
}

#[tokio::test]
async fn logout_blacklists_the_token_in_redis_until_it_expires() {
    let app = TestApp::spawn().await;
    let session = app.user("kim@example.com").await;
    app.post_as("/api/v1/auth/logout", &session.access, None)
        .await;
    let mut redis = redis::Client::open("redis://127.0.0.1:6379")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}revoked:*", app.redis_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((1..=(15 * 60 + 5) * 1000).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_account() {
    let app = TestApp::spawn().await;
    let a = app.user("lea@example.com").await;
    let b = app.session("lea@example.com").await;
    assert_eq!(
        app.post_as("/api/v1/auth/logout-all", &a.access, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    for session in [&a, &b] {
        problem(
            app.get_as("/api/v1/users/me", &session.access).await,
            401,
            "invalid_token",
        )
        .await;
    }
    // The account itself is fine: a new login works.
    assert!(!app.session("lea@example.com").await.access.is_empty());
}

#[tokio::test]
async fn an_unknown_address_and_a_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.verified_user("max@example.com").await;
    let unknown = problem(
        app.login("nobody@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    let wrong = problem(
        app.login("max@example.com", "not the password at all")
            .await,
        401,
        "invalid_credentials",
    )
    .await;
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    assert_eq!(strip(unknown), strip(wrong));
}

#[tokio::test]
async fn five_failures_lock_the_account_until_the_lock_expires() {
    let app = TestApp::spawn().await;
    app.verified_user("ned@example.com").await;
    for _ in 0..5 {
        problem(
            app.login("ned@example.com", "wrong password here").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    let locked = app.login("ned@example.com", PASSWORD).await;
    let retry_after: i64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    problem(locked, 423, "account_locked").await;
    // nextest runs each test in a process of its own: these counts are this test's.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for counted in [
        "auth_events_total{event=\"account_locked\"} 1",
        "auth_events_total{event=\"login_failed\"} 6",
    ] {
        assert!(
            metrics.lines().any(|line| line == counted),
            "{counted} not in\n{metrics}"
        );
    }
    let events: Vec<String> = app
        .store
        .audit_records()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert!(events.contains(&"account_locked".to_owned()));

    // The lock lives in the database (a restart keeps it); let it run out there.
    app.store
        .database()
        .connection()
        .execute_unprepared("UPDATE users SET locked_until = now() - interval '1 second' WHERE email = 'ned@example.com'")
        .await
        .unwrap();
    assert_eq!(
        app.login("ned@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    // A success reset the count: four failures do not lock again.
    for _ in 0..4 {
        problem(
            app.login("ned@example.com", "wrong password here").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    assert_eq!(
        app.login("ned@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_locked_account_can_still_reset_its_password() {
    let app = TestApp::spawn().await;
    app.verified_user("ona@example.com").await;
    for _ in 0..5 {
        app.login("ona@example.com", "wrong password here").await;
    }
    problem(
        app.login("ona@example.com", PASSWORD).await,
        423,
        "account_locked",
    )
    .await;
    let token = app.reset_link("ona@example.com", 1).await;
    let new_password = "seven herons cross the estuary";
    let reset = app
        .post(
            "/api/v1/auth/password/reset",
            &json!({"token": token, "new_password": new_password}),
        )
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.login("ona@example.com", new_password).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_weak_stored_hash_is_upgraded_at_the_next_login() {
    let app = TestApp::spawn().await;
    app.verified_user("pia@example.com").await;
    // A hash made with weaker parameters, as an older release would have stored.
    let weak = pp_crypto::Argon2Hasher::new(
        pp_crypto::HashParams {
            memory_kib: 4096,
            iterations: 1,
            parallelism: 1,
        },
        1,
    )
    .unwrap();
    let hash = pp_domain::auth::ports::PasswordHasher::hash(
        &weak,
        &pp_domain::auth::Password::presented(PASSWORD),
    )
    .await
    .unwrap();
    app.store
        .database()
        .connection()
        .execute_unprepared(&format!(
            "UPDATE users SET password_hash = '{}' WHERE email = 'pia@example.com'",
            hash.as_str()
        ))
        .await
        .unwrap();
    assert_eq!(
        app.login("pia@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    let email = pp_domain::Email::parse("pia@example.com").unwrap();
    let stored = pp_domain::ports::UserStore::credentials_by_email(app.store.as_ref(), &email)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.password_hash.as_str().contains("m=19456,t=2,p=1"),
        "{}",
        stored.password_hash.as_str()
    );
}

#[tokio::test]
async fn guesses_sent_all_at_once_get_no_more_tries_than_the_lockout_allows() {
    let app = TestApp::spawn().await;
    app.verified_user("zed@example.com").await;
    let guesses = (0..20).map(|i| {
        let app = &app;
        async move {
            app.login("zed@example.com", &format!("guess number {i} here"))
                .await
                .status()
                .as_u16()
        }
    });
    let mut statuses = futures::future::join_all(guesses).await;
    statuses.sort_unstable();
    // Five are checked (and fail); the rest meet the lock the fifth set.
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(statuses[5..], [423; 15], "{statuses:?}");
    problem(
        app.login("zed@example.com", PASSWORD).await,
        423,
        "account_locked",
    )
    .await;
}
