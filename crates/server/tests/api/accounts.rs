//! Every account flow end to end, reading e-mails from the file transport.

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

use crate::support::{Options, PASSWORD, TestApp, problem, session_of};

#[tokio::test]
async fn register_verify_and_login() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann@Example.com").await;
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(
        (user["role"].as_str(), user["email_verified"].as_bool()),
        (Some("user"), Some(false))
    );
    assert_eq!(user["display_name"], "ann");
    for field in ["id", "created_at"] {
        assert!(user[field].is_string());
    }
    assert!(user.get("password_hash").is_none());

    problem(
        app.login("ann@example.com", PASSWORD).await,
        403,
        "email_not_verified",
    )
    .await;

    let token = app.mailed_token("ann@example.com", "verify-email", 1).await;
    let verified = app
        .post("/api/v1/auth/verify-email", &json!({"token": token}))
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    assert_eq!(
        verified.json::<Value>().await.unwrap()["email_verified"],
        true
    );
    let again = app
        .post("/api/v1/auth/verify-email", &json!({"token": token}))
        .await;
    problem(again, 400, "invalid_token").await;

    let login = app.login("ANN@example.com", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(login.headers()["cache-control"], "no-store");
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in [
        "refresh_token=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/api/v1/auth",
        "Max-Age=604800",
    ] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    let body: Value = login.json().await.unwrap();
    assert_eq!(
        (body["token_type"].as_str(), body["expires_in"].as_i64()),
        (Some("bearer"), Some(900))
    );
    assert_eq!(body["refresh_expires_in"], 604_800);
    assert!(cookie.contains(body["refresh_token"].as_str().unwrap()));

    let me = app
        .get_as("/api/v1/users/me", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(
        me.json::<Value>().await.unwrap()["email"],
        "ann@example.com"
    );
}

#[tokio::test]
async fn one_address_is_one_account_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.register("bob@example.com").await;
    let again = app
        .post(
            "/api/v1/auth/register",
            &json!({"email": "BOB@example.com", "password": PASSWORD}),
        )
        .await;
    problem(again, 409, "email_taken").await;
}

#[tokio::test]
async fn weak_or_malformed_registrations_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/api/v1/auth/register",
            &json!({"email": "nope", "password": "short", "display_name": ""}),
        )
        .await;
    let body = problem(response, 422, "validation_failed").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "display_name", "password"]);
    for weak in [
        "passwordpassword1",
        "123456789012345",
        "carol@example.com!!",
    ] {
        let response = app
            .post(
                "/api/v1/auth/register",
                &json!({"email": "carol@example.com", "password": weak}),
            )
            .await;
        let body = problem(response, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], "password", "{weak}");
    }
    // 15 code points of non-ASCII pass; the length is not bytes.
    let unicode = app
        .post(
            "/api/v1/auth/register",
            &json!({"email": "carol@example.com", "password": "ñandú kiwi 🦤 ōtāki"}),
        )
        .await;
    assert_eq!(unicode.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn passwords_count_code_points_up_to_128_and_are_never_truncated() {
    let app = TestApp::spawn().await;
    let phrase: String = "ñandú kiwi 🦤 ōtāki ".chars().cycle().take(129).collect();
    let code_points = |n: usize| phrase.chars().take(n).collect::<String>();
    let register = |email: &'static str, password: String| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/auth/register",
                &json!({"email": email, "password": password}),
            )
            .await
        }
    };
    // 14 code points are 19 bytes: too short all the same.
    let short = register("short@example.com", code_points(14)).await;
    let body = problem(short, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "password");
    let long = register("long@example.com", code_points(129)).await;
    let body = problem(long, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "password");
    // 128 code points (176 bytes) are taken whole: the first 127 of them
    // are another password.
    let longest = register("max@example.com", code_points(128)).await;
    assert_eq!(longest.status(), StatusCode::CREATED);
    let prefix = app.login("max@example.com", &code_points(127)).await;
    problem(prefix, 401, "invalid_credentials").await;
    // The whole one matches: only the unverified address stops it.
    let whole = app.login("max@example.com", &code_points(128)).await;
    problem(whole, 403, "email_not_verified").await;
}

#[tokio::test]
async fn resend_and_forgot_always_answer_202_and_mail_only_real_accounts() {
    let app = TestApp::spawn().await;
    app.register("dora@example.com").await;
    for path in [
        "/api/v1/auth/resend-verification",
        "/api/v1/auth/password/forgot",
    ] {
        for email in ["dora@example.com", "nobody@example.com", "not an address"] {
            let response = app.post(path, &json!({"email": email})).await;
            assert_eq!(response.status(), StatusCode::ACCEPTED, "{path} {email}");
        }
    }
    let second = app
        .mailed_token("dora@example.com", "verify-email", 2)
        .await;
    assert_ne!(
        second,
        app.mailed_token("dora@example.com", "verify-email", 1)
            .await
    );
    app.mailed_token("dora@example.com", "reset-password", 1)
        .await;
    // The flows run after their answers: give the others a moment, then
    // only dora's three mails are there.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(std::fs::read_dir(&app.mail_dir).unwrap().count(), 3);
}

#[tokio::test]
async fn password_reset_revokes_every_session_and_every_link_works_once() {
    let app = TestApp::spawn().await;
    let session = app.user("erin@example.com").await;
    let token = app.reset_link("erin@example.com", 1).await;
    // A second request mails a second link; the reset below kills it too.
    let other = app.reset_link("erin@example.com", 2).await;

    let weak = app
        .post(
            "/api/v1/auth/password/reset",
            &json!({"token": token, "new_password": "tooshort"}),
        )
        .await;
    problem(weak, 422, "validation_failed").await;
    let new_password = "amber lanterns over quiet harbours";
    let reset = app
        .post(
            "/api/v1/auth/password/reset",
            &json!({"token": token, "new_password": new_password}),
        )
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let reused = app
        .post(
            "/api/v1/auth/password/reset",
            &json!({"token": token, "new_password": new_password}),
        )
        .await;
    problem(reused, 400, "invalid_token").await;
    let older = app
        .post(
            "/api/v1/auth/password/reset",
            &json!({"token": other, "new_password": "someone else's passphrase"}),
        )
        .await;
    problem(older, 400, "invalid_token").await;

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
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    problem(
        app.login("erin@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.login("erin@example.com", new_password).await.status(),
        StatusCode::OK
    );
    let events: Vec<String> = app
        .store
        .audit_records()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert!(events.contains(&"password_reset".to_owned()));
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_other_sessions_and_reset_links() {
    let app = TestApp::spawn().await;
    let here = app.user("finn@example.com").await;
    let elsewhere = app.session("finn@example.com").await;
    let new_password = "copper kettles sing at midnight";
    let pending_reset = app.reset_link("finn@example.com", 1).await;

    let wrong = app
        .post_as(
            "/api/v1/auth/password/change",
            &here.access,
            Some(&json!({"current_password": "not it", "new_password": new_password})),
        )
        .await;
    problem(wrong, 403, "invalid_credentials").await;
    let weak = app
        .post_as(
            "/api/v1/auth/password/change",
            &here.access,
            Some(&json!({"current_password": PASSWORD, "new_password": "short"})),
        )
        .await;
    problem(weak, 422, "validation_failed").await;

    let changed = app
        .post_as(
            "/api/v1/auth/password/change",
            &here.access,
            Some(&json!({"current_password": PASSWORD, "new_password": new_password})),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let fresh = session_of(changed).await;
    // A reset link mailed before the change cannot undo it.
    problem(
        app.post(
            "/api/v1/auth/password/reset",
            &json!({"token": pending_reset, "new_password": "a thief's own passphrase"}),
        )
        .await,
        400,
        "invalid_token",
    )
    .await;
    assert_eq!(
        app.get_as("/api/v1/users/me", &fresh.access).await.status(),
        StatusCode::OK
    );
    problem(
        app.get_as("/api/v1/users/me", &elsewhere.access).await,
        401,
        "invalid_token",
    )
    .await;
    // This session's old refresh token is spent: replaying it is reuse.
    let old = app
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": here.refresh}),
        )
        .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.login("finn@example.com", new_password).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn my_profile_changes_only_its_display_name_and_notices() {
    let app = TestApp::spawn().await;
    let session = app.user("gus@example.com").await;
    let patch = |body: Value| {
        let app = &app;
        let token = session.access.clone();
        async move {
            app.send(
                reqwest::Method::PATCH,
                "/api/v1/users/me",
                Some(&token),
                Some(&body),
            )
            .await
        }
    };
    let renamed = patch(json!({"display_name": "  Gus Grey "})).await;
    assert_eq!(renamed.status(), StatusCode::OK);
    assert_eq!(
        renamed.json::<Value>().await.unwrap()["display_name"],
        "Gus Grey"
    );
    for mass_assignment in [
        json!({"role": "admin"}),
        json!({"display_name": "x", "role": "admin"}),
        json!({"email": "evil@example.com"}),
        json!({"email_verified": true}),
    ] {
        let body = problem(
            patch(mass_assignment.clone()).await,
            422,
            "validation_failed",
        )
        .await;
        assert!(body["errors"].is_array(), "{mass_assignment}");
    }
    let me: Value = app
        .get_as("/api/v1/users/me", &session.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["role"].as_str(), me["email"].as_str()),
        (Some("user"), Some("gus@example.com"))
    );
    problem(
        patch(json!({"display_name": ""})).await,
        422,
        "validation_failed",
    )
    .await;
    for bad in [
        json!({"notify_email": "no"}),
        json!({"notify_email": null}),
        json!({"display_name": null}),
    ] {
        problem(patch(bad).await, 422, "validation_failed").await;
    }
    assert_eq!(me["notify_email"], true, "notices are on for a new account");
    // Each field alone leaves the other as it was.
    let quiet: Value = patch(json!({"notify_email": false}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            quiet["notify_email"].as_bool(),
            quiet["display_name"].as_str()
        ),
        (Some(false), Some("Gus Grey"))
    );
    let both: Value = patch(json!({"display_name": "Gus", "notify_email": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            both["notify_email"].as_bool(),
            both["display_name"].as_str()
        ),
        (Some(true), Some("Gus"))
    );
    patch(json!({"display_name": "Gus Grey", "notify_email": false})).await;
    let unchanged = patch(json!({})).await;
    assert_eq!(unchanged.status(), StatusCode::OK);
    let unchanged: Value = unchanged.json().await.unwrap();
    assert_eq!(
        (
            unchanged["notify_email"].as_bool(),
            unchanged["display_name"].as_str()
        ),
        (Some(false), Some("Gus Grey"))
    );
}

#[tokio::test]
async fn links_last_24_hours_to_verify_and_one_hour_to_reset_then_stop_working() {
    let app = TestApp::spawn().await;
    app.register("ora@example.com").await;
    let verify = app.mailed_token("ora@example.com", "verify-email", 1).await;
    let reset = app.reset_link("ora@example.com", 1).await;
    let connection = app.store.database().connection();
    let lifetimes: Vec<(String, i64)> = connection
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT purpose, EXTRACT(EPOCH FROM expires_at - issued_at)::bigint AS seconds \
             FROM one_time_tokens ORDER BY purpose",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get("", "purpose").unwrap(),
                row.try_get("", "seconds").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lifetimes,
        [
            ("reset_password".to_owned(), 3_600),
            ("verify_email".to_owned(), 24 * 3_600)
        ]
    );

    // Past their time, both links are refused and change nothing.
    connection
        .execute_unprepared("UPDATE one_time_tokens SET expires_at = now() - interval '1 second'")
        .await
        .unwrap();
    problem(
        app.post("/api/v1/auth/verify-email", &json!({"token": verify}))
            .await,
        400,
        "invalid_token",
    )
    .await;
    problem(
        app.post(
            "/api/v1/auth/password/reset",
            &json!({"token": reset, "new_password": "an entirely new passphrase"}),
        )
        .await,
        400,
        "invalid_token",
    )
    .await;
    assert_eq!(
        app.login("ora@example.com", "an entirely new passphrase")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn wrong_current_passwords_lock_the_account_as_wrong_logins_do() {
    let app = TestApp::spawn().await;
    let session = app.user("gus@example.com").await;
    let change = |current: &'static str| {
        let app = &app;
        let access = session.access.clone();
        async move {
            app.post_as(
                "/api/v1/auth/password/change",
                &access,
                Some(&json!({"current_password": current, "new_password": "brand new words for gus"})),
            )
            .await
        }
    };
    // Four wrong, then the right one: the change clears the count.
    for _ in 0..4 {
        problem(change("a guess").await, 403, "invalid_credentials").await;
    }
    assert_eq!(change(PASSWORD).await.status(), StatusCode::OK);
    let new_password = "brand new words for gus";
    for _ in 0..4 {
        problem(change("a guess").await, 403, "invalid_credentials").await;
    }
    assert_eq!(
        app.login("gus@example.com", new_password).await.status(),
        StatusCode::OK,
        "four failures after a success do not lock"
    );
    // The fifth in a row does, for the change and for login.
    for _ in 0..5 {
        problem(change("a guess").await, 403, "invalid_credentials").await;
    }
    let locked = change(new_password).await;
    assert!(locked.headers().contains_key("retry-after"));
    problem(locked, 423, "account_locked").await;
    problem(
        app.login("gus@example.com", new_password).await,
        423,
        "account_locked",
    )
    .await;
}

#[tokio::test]
async fn the_password_policy_is_public_and_follows_the_configuration() {
    let app = TestApp::spawn_with(Options::default().with("PASSWORD_MIN_LENGTH", "12")).await;
    let response = app.get("/api/v1/auth/policy").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"password_min_length": 12, "password_max_length": 128})
    );
    // The OpenAPI document tells the same minimum.
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    assert_eq!(
        doc["components"]["schemas"]["RegisterRequest"]["properties"]["password"]["minLength"],
        12
    );
}
