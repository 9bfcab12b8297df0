//! Administration: the admin guard, listing with cursors, role and activation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, problem};

#[tokio::test]
async fn a_user_is_forbidden_on_every_admin_route() {
    let app = TestApp::spawn().await;
    let user = app.user("quin@example.com").await;
    let id = uuid::Uuid::new_v4();
    for (method, path, body) in [
        (Method::GET, "/api/v1/users".to_owned(), None),
        (Method::GET, format!("/api/v1/users/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/users/{id}"),
            Some(json!({"role": "admin"})),
        ),
    ] {
        let response = app
            .send(method.clone(), &path, Some(&user.access), body.as_ref())
            .await;
        problem(response, 403, "forbidden").await;
        let anonymous = app.send(method, &path, None, body.as_ref()).await;
        let body = problem(anonymous, 401, "unauthorized").await;
        assert_eq!(body["instance"], path);
    }
}

#[tokio::test]
async fn admins_page_through_accounts_with_opaque_cursors() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    for i in 0..4 {
        app.register(&format!("u{i}@example.com")).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/users?limit=2".to_owned();
    loop {
        let page: Value = app.get_as(&path, &admin.access).await.json().await.unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                assert_eq!(page["has_more"], true);
                path = format!("/api/v1/users?limit=2&cursor={cursor}");
            }
            None => {
                assert_eq!(page["has_more"], false);
                break;
            }
        }
    }
    assert_eq!(
        seen,
        [
            "u3@example.com",
            "u2@example.com",
            "u1@example.com",
            "u0@example.com",
            "root@example.com"
        ]
    );

    let first: Value = app
        .get_as("/api/v1/users?limit=1", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let mut tampered = cursor.to_owned().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [tampered.as_str(), "garbage", "a.b"] {
        let response = app
            .get_as(&format!("/api/v1/users?cursor={bad}"), &admin.access)
            .await;
        problem(response, 400, "invalid_cursor").await;
    }
    for limit in ["0", "101", "ten"] {
        let response = app
            .get_as(&format!("/api/v1/users?limit={limit}"), &admin.access)
            .await;
        problem(response, 422, "validation_failed").await;
    }
}

#[tokio::test]
async fn role_changes_are_audited_and_deactivation_ends_sessions_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin("boss@example.com").await;
    let worker = app.user("rae@example.com").await;
    let me: Value = app
        .get_as("/api/v1/users/me", &worker.access)
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/v1/users/{}", me["id"].as_str().unwrap());

    let got: Value = app.get_as(&path, &admin.access).await.json().await.unwrap();
    assert_eq!(got["email"], "rae@example.com");
    problem(
        app.get_as(
            &format!("/api/v1/users/{}", uuid::Uuid::new_v4()),
            &admin.access,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    problem(
        app.get_as("/api/v1/users/not-a-uuid", &admin.access).await,
        404,
        "not_found",
    )
    .await;

    let promoted = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(&json!({"role": "admin"})),
        )
        .await;
    assert_eq!(promoted.status(), StatusCode::OK);
    assert_eq!(promoted.json::<Value>().await.unwrap()["role"], "admin");
    let bad = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(&json!({"role": "root"})),
        )
        .await;
    problem(bad, 422, "validation_failed").await;
    let smuggle = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(&json!({"email": "x@example.com"})),
        )
        .await;
    problem(smuggle, 422, "validation_failed").await;

    let deactivated = app
        .send(
            Method::PATCH,
            &path,
            Some(&admin.access),
            Some(&json!({"is_active": false})),
        )
        .await;
    assert_eq!(deactivated.status(), StatusCode::OK);
    problem(
        app.get_as("/api/v1/users/me", &worker.access).await,
        401,
        "invalid_token",
    )
    .await;
    problem(
        app.login("rae@example.com", crate::support::PASSWORD).await,
        403,
        "account_disabled",
    )
    .await;

    let records = app.store.audit_records().await.unwrap();
    let role = records.iter().find(|r| r.event == "role_changed").unwrap();
    assert_eq!(role.detail.as_deref(), Some("user -> admin"));
    assert!(
        role.actor.is_some()
            && role.request_id.is_some()
            && role.ip.as_deref() == Some("127.0.0.1")
    );
    assert!(
        records
            .iter()
            .any(|r| r.event == "activation_changed" && r.detail.as_deref() == Some("deactivated"))
    );
}

#[tokio::test]
async fn the_audit_log_never_holds_a_password_token_or_link() {
    let app = TestApp::spawn().await;
    let session = app.user("sam@example.com").await;
    app.login("sam@example.com", "a wrong password guess").await;
    app.post(
        "/api/v1/auth/refresh",
        &json!({"refresh_token": session.refresh}),
    )
    .await;
    app.post(
        "/api/v1/auth/refresh",
        &json!({"refresh_token": session.refresh}),
    )
    .await;
    let reset = app.reset_link("sam@example.com", 1).await;
    let records = app.store.audit_records().await.unwrap();
    assert!(records.len() >= 3);
    let dump = format!("{records:?}");
    for secret in [
        crate::support::PASSWORD,
        "a wrong password guess",
        &session.refresh,
        &session.access,
        &reset,
        "token=",
    ] {
        assert!(!dump.contains(secret), "{secret} in the audit log");
    }
}
