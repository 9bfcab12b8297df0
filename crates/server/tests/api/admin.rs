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
        (Method::GET, "/api/v1/admin/audit".to_owned(), None),
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

#[tokio::test]
async fn admins_read_the_audit_trail_newest_first_filtered_and_in_pages() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada@example.com").await;
    let user = app.user("uma@example.com").await;
    let uma = app.me(&user.access).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.login("uma@example.com", "a wrong password guess").await;
    let item = app
        .list_item(&admin.access, 100, 10, std::time::Duration::from_secs(3600))
        .await;
    let cancel = app
        .post_as(&format!("/api/v1/items/{item}/cancel"), &admin.access, None)
        .await;
    assert_eq!(cancel.status(), StatusCode::OK);
    let logout = app.post_as("/api/v1/auth/logout", &user.access, None).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    let page = |query: String| {
        let app = &app;
        let token = admin.access.clone();
        async move {
            let response = app
                .get_as(&format!("/api/v1/admin/audit{query}"), &token)
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{query}");
            response.json::<Value>().await.unwrap()
        }
    };
    let events = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["event"].as_str().unwrap().to_owned())
            .collect()
    };

    // Uma's story, newest first: registered, verified, logged in, failed, logged out.
    let umas = page(format!("?user_id={uma}")).await;
    assert_eq!(
        events(&umas),
        [
            "logged_out",
            "login_failed",
            "login_succeeded",
            "email_verified",
            "registered"
        ]
    );
    let entry = &umas["items"][0];
    assert_eq!(entry["user_id"], uma.as_str());
    assert!(
        entry["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(entry["ip"], "127.0.0.1");
    assert!(entry["at"].as_str().is_some() && entry["id"].as_str().is_some());
    assert_eq!(umas["has_more"], false);

    // What the admin did to items, with the admin as actor.
    let created = page("?event=item_created".into()).await;
    assert_eq!(events(&created), ["item_created"]);
    assert_eq!(
        created["items"][0]["actor_id"],
        admin_id(&app, &admin.access).await
    );
    assert_eq!(
        created["items"][0]["details"],
        format!("item {item}").as_str()
    );
    let cancelled = page("?event=item_cancelled".into()).await;
    assert_eq!(events(&cancelled), ["item_cancelled"]);

    // Pages of two walk the whole trail once, newest first.
    let everything = events(&page("?limit=100".into()).await);
    let mut walked = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let this = page(query).await;
        walked.extend(events(&this));
        match this["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(walked, everything);
    assert!(everything.len() >= 10, "{everything:?}");

    // Bad filters are named; a cursor of another filter is refused.
    let unknown = app
        .get_as("/api/v1/admin/audit?event=coffee_made", &admin.access)
        .await;
    let body = problem(unknown, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "event");
    let malformed = app
        .get_as("/api/v1/admin/audit?user_id=nobody", &admin.access)
        .await;
    problem(malformed, 422, "validation_failed").await;
    let first = page("?limit=1".into()).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let foreign = app
        .get_as(
            &format!("/api/v1/admin/audit?event=registered&cursor={cursor}"),
            &admin.access,
        )
        .await;
    problem(foreign, 400, "invalid_cursor").await;
}

async fn admin_id(app: &TestApp, token: &str) -> Value {
    app.me(token).await["id"].clone()
}

#[tokio::test]
async fn admins_find_accounts_by_part_of_their_address_and_see_who_is_active() {
    let app = TestApp::spawn().await;
    let admin = app.admin("boss@example.com").await;
    app.user("rae.field@example.com").await;
    app.user("ray_x@example.com").await;
    let found = |query: &str| {
        let path = format!("/api/v1/users?email={query}");
        let app = &app;
        let token = admin.access.clone();
        async move {
            let response = app.get_as(&path, &token).await;
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| {
                    (
                        u["email"].as_str().unwrap().to_owned(),
                        u["is_active"].clone(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        found("RAE.").await,
        [("rae.field@example.com".to_owned(), json!(true))]
    );
    assert_eq!(found("y_x").await.len(), 1, "`_` is a letter");
    assert_eq!(found("%25").await.len(), 0, "`%` is a letter");
    let id = app.me(&app.user("gone@example.com").await.access).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deactivated = app
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(&admin.access),
            Some(&json!({"is_active": false})),
        )
        .await;
    assert_eq!(deactivated.status(), StatusCode::OK);
    assert_eq!(
        found("gone").await,
        [("gone@example.com".to_owned(), json!(false))]
    );
    let long = "a".repeat(255);
    problem(
        app.get_as(&format!("/api/v1/users?email={long}"), &admin.access)
            .await,
        422,
        "validation_failed",
    )
    .await;
}
