//! The built web app served by `serve`: its files, and its index.html for
//! every client-side route, without shadowing the API.

use reqwest::StatusCode;

use crate::support::{Options, TestApp, problem};

#[tokio::test]
async fn the_web_app_is_served_with_client_routes_falling_back_to_its_index() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><title>Poison Pill</title>",
    )
    .unwrap();
    std::fs::create_dir(web.path().join("assets")).unwrap();
    std::fs::write(web.path().join("assets/app.js"), "console.log('hi')").unwrap();
    let app =
        TestApp::spawn_with(Options::default().with("WEB_DIR", web.path().display().to_string()))
            .await;

    for path in ["/", "/items/some-id", "/verify-email?token=abc", "/me/bids"] {
        let page = app.get(path).await;
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("<title>Poison Pill</title>"),
            "{path}"
        );
    }
    let asset = app.get("/assets/app.js").await;
    assert_eq!(asset.status(), StatusCode::OK);
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(asset.text().await.unwrap(), "console.log('hi')");
    // The API, its problems and the operational endpoints still win.
    problem(app.get("/api/v1/nothing-here").await, 404, "not_found").await;
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
    assert!(app.get("/api/openapi.json").await.status().is_success());
}

#[tokio::test]
async fn without_a_built_web_app_only_the_api_answers() {
    let app = TestApp::spawn_with(Options::default().with("WEB_DIR", "/nonexistent/dist")).await;
    assert_eq!(app.get("/").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn access_tokens_live_as_long_as_configured() {
    let app = TestApp::spawn_with(Options::default().with("ACCESS_TOKEN_TTL_SECS", "60")).await;
    app.verified_user("brief@example.com").await;
    let login = app
        .login("brief@example.com", crate::support::PASSWORD)
        .await;
    let body: serde_json::Value = login.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
}
