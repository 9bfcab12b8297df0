//! Sign-in with OpenID Connect through HTTP, against a real provider
//! (`oidc-provider` on Node.js): the browser's part is played by following
//! the redirects and submitting the provider's login page.

use pp_testkit::idp::{Browserless, Idp, IdpAccount, IdpClient};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::{Options, Session, TestApp};

const CALLBACK: &str = "https://auction.test/api/v1/auth/oidc/corp/callback";

fn client(id: &str) -> IdpClient {
    IdpClient {
        id: id.into(),
        secret: format!("{id}-secret"),
        redirect_uris: vec![CALLBACK.into()],
    }
}

async fn provider_on(port: u16) -> Idp {
    let mut uma = IdpAccount::verified("uma", "uma@idp.test");
    uma.email_verified = false;
    Idp::start(
        port,
        vec![client("poison-pill"), client("another-app")],
        vec![
            IdpAccount::verified("ann", "ann@idp.test"),
            IdpAccount::verified("cat", "cat@idp.test"),
            IdpAccount::verified("dan", "dan@idp.test"),
            uma,
        ],
    )
    .await
}

async fn app_for(issuer: &str) -> TestApp {
    TestApp::spawn_with(
        Options::default()
            .with("OIDC_PROVIDERS", "corp")
            .with("OIDC_CORP_ISSUER", issuer)
            .with("OIDC_CORP_CLIENT_ID", "poison-pill")
            .with("OIDC_CORP_CLIENT_SECRET", "poison-pill-secret")
            .with("OIDC_CORP_LABEL", "Corp SSO"),
    )
    .await
}

/// A cookie `response` sets, by name.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")).map(str::to_owned))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .filter(|v| !v.is_empty())
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// How a flow ended at the callback.
struct Ended {
    /// Where the callback sent the browser.
    location: String,
    /// The refresh cookie it set, if it signed in.
    refresh: Option<String>,
}

/// The browser's part up to the provider: `start` (with a link ticket and
/// the browser's refresh cookie, for a linking flow); the provider's URL
/// and the flow cookie.
async fn start(app: &TestApp, link: Option<(&str, Option<&str>)>) -> (String, String) {
    let mut url = app.url("/api/v1/auth/oidc/corp/start");
    let mut request = app.client.get(&url);
    if let Some((ticket, refresh)) = link {
        url.push_str(&format!("?link={ticket}"));
        request = app.client.get(&url);
        if let Some(refresh) = refresh {
            request = request.header(COOKIE, format!("refresh_token={refresh}"));
        }
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let flow = set_cookie(&response, "oidc_flow").unwrap_or_default();
    (location(&response), flow)
}

/// The callback, as the browser reaches it: `back` is where the provider
/// sent it (the public URL, here the test server).
async fn callback(app: &TestApp, back: &str, flow: &str) -> Ended {
    let url = back.replace("https://auction.test", &app.address);
    let mut request = app.client.get(url);
    if !flow.is_empty() {
        request = request.header(COOKIE, format!("oidc_flow={flow}"));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    Ended {
        location: location(&response),
        refresh: set_cookie(&response, "refresh_token"),
    }
}

/// A whole flow, signing in at the provider as `login`.
async fn flow(app: &TestApp, login: &str, link: Option<(&str, Option<&str>)>) -> Ended {
    let (at_provider, cookie) = start(app, link).await;
    let back = Browserless::new()
        .authorize(&at_provider, login, &format!("{login}-password"))
        .await;
    callback(app, &back, &cookie).await
}

/// The account a refresh token signs in to.
async fn account_of(app: &TestApp, refresh: &str) -> (Session, Value) {
    let response = app
        .post("/api/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let session = Session {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    };
    let me: Value = app
        .get_as("/api/v1/users/me", &session.access)
        .await
        .json()
        .await
        .unwrap();
    (session, me)
}

async fn audited(app: &TestApp, event: &str) -> Vec<String> {
    app.store
        .audit_records()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event == event)
        .map(|r| r.detail.unwrap_or_default())
        .collect()
}

async fn link_ticket(app: &TestApp, session: &Session) -> String {
    let response = app
        .post_as("/api/v1/auth/oidc/link-ticket", &session.access, None)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    body["ticket"].as_str().unwrap().to_owned()
}

async fn identities(app: &TestApp, session: &Session) -> Vec<Value> {
    app.get_as("/api/v1/users/me/identities", &session.access)
        .await
        .json()
        .await
        .unwrap()
}

async fn unlink(app: &TestApp, session: &Session) -> reqwest::Response {
    app.client
        .delete(app.url("/api/v1/users/me/identities/corp"))
        .bearer_auth(&session.access)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_first_sign_in_makes_a_verified_account_and_the_next_returns_to_it() {
    let idp = provider_on(0).await;
    let app = app_for(idp.issuer()).await;
    let listed: Value = app
        .get("/api/v1/auth/oidc/providers")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([{"name": "corp", "label": "Corp SSO"}]));

    let first = flow(&app, "ann", None).await;
    assert_eq!(first.location, "https://auction.test/auth/complete");
    let (_, me) = account_of(&app, &first.refresh.expect("signed in")).await;
    assert_eq!(me["email"], "ann@idp.test");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["display_name"], "ann at the provider");

    let second = flow(&app, "ann", None).await;
    let (session, again) = account_of(&app, &second.refresh.expect("signed in")).await;
    assert_eq!(again["id"], me["id"]);
    let linked = identities(&app, &session).await;
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0]["provider"], "corp");
    assert_eq!(linked[0]["subject"], "ann");
    assert_eq!(linked[0]["email"], "ann@idp.test");
    let logins = audited(&app, "oidc_login").await;
    assert_eq!(logins.len(), 2, "{logins:?}");
    assert!(logins.iter().any(|d| d.contains("account created")));

    // An address the provider did not verify makes no account.
    let unverified = flow(&app, "uma", None).await;
    assert!(unverified.location.ends_with("?error=email_not_verified"));
    assert!(unverified.refresh.is_none());
}

#[tokio::test]
async fn an_address_with_an_account_is_never_linked_silently() {
    let idp = provider_on(0).await;
    let app = app_for(idp.issuer()).await;
    let owner = app.user("ann@idp.test").await;
    let ended = flow(&app, "ann", None).await;
    assert!(
        ended.location.ends_with("?error=account_exists"),
        "{}",
        ended.location
    );
    assert!(ended.refresh.is_none());
    assert!(identities(&app, &owner).await.is_empty());
    let refusals = audited(&app, "oidc_login_failed").await;
    assert!(
        refusals.iter().any(|d| d.contains("account_exists")),
        "{refusals:?}"
    );
}

#[tokio::test]
async fn an_identity_is_linked_explicitly_signs_in_to_that_account_and_is_unlinked() {
    let idp = provider_on(0).await;
    let app = app_for(idp.issuer()).await;
    let bob = app.user("bob@example.com").await;

    // A ticket without this session's refresh cookie (another site sent
    // the browser) or with another session's links nothing.
    let ticket = link_ticket(&app, &bob).await;
    let (refused, _) = start(&app, Some((&ticket, None))).await;
    assert!(refused.ends_with("?error=invalid_ticket"), "{refused}");
    let other = app.session("bob@example.com").await;
    let ticket = link_ticket(&app, &bob).await;
    let (refused, _) = start(&app, Some((&ticket, Some(&other.refresh)))).await;
    assert!(refused.ends_with("?error=invalid_ticket"), "{refused}");

    let ticket = link_ticket(&app, &bob).await;
    let linked = flow(&app, "dan", Some((&ticket, Some(&bob.refresh)))).await;
    assert_eq!(
        linked.location,
        "https://auction.test/auth/complete?linked=corp"
    );
    assert!(linked.refresh.is_none(), "a link starts no session");
    assert_eq!(identities(&app, &bob).await[0]["subject"], "dan");
    assert_eq!(audited(&app, "oidc_linked").await.len(), 1);
    // A used ticket does not start another link.
    let (refused, _) = start(&app, Some((&ticket, Some(&bob.refresh)))).await;
    assert!(refused.ends_with("?error=invalid_ticket"));

    // Signing in with it now reaches Bob's account.
    let signed_in = flow(&app, "dan", None).await;
    let (_, me) = account_of(&app, &signed_in.refresh.unwrap()).await;
    assert_eq!(me["email"], "bob@example.com");

    // Bob has a password: the identity may go, once.
    assert_eq!(unlink(&app, &bob).await.status(), StatusCode::NO_CONTENT);
    assert!(identities(&app, &bob).await.is_empty());
    let again = unlink(&app, &bob).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert_eq!(audited(&app, "oidc_unlinked").await.len(), 1);
}

#[tokio::test]
async fn the_last_way_to_sign_in_cannot_be_unlinked() {
    let idp = provider_on(0).await;
    let app = app_for(idp.issuer()).await;
    let ended = flow(&app, "cat", None).await;
    let (session, _) = account_of(&app, &ended.refresh.unwrap()).await;
    let refused = unlink(&app, &session).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error_code"], "last_sign_in_method");
    assert_eq!(identities(&app, &session).await.len(), 1);
    // An account made this way has no password anyone knows.
    let login = app.login("cat@idp.test", "cat-password").await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
}

/// A flow whose callback must refuse with `code`, starting no session and
/// leaving an audit entry.
async fn refused_with(app: &TestApp, ended: Ended, code: &str, failures_before: usize) {
    assert!(
        ended.location.ends_with(&format!("?error={code}")),
        "{} should end in {code}",
        ended.location
    );
    assert!(ended.refresh.is_none(), "no session after {code}");
    let failures = audited(app, "oidc_login_failed").await;
    assert_eq!(failures.len(), failures_before + 1, "{failures:?}");
    assert!(failures.iter().any(|d| d.contains(code)), "{failures:?}");
}

#[tokio::test]
async fn every_attack_at_the_callback_is_refused_and_audited() {
    let idp = provider_on(0).await;
    let app = app_for(idp.issuer()).await;
    let mut failures = 0;

    // No flow cookie, or a state that is not the one sent.
    let (at_provider, cookie) = start(&app, None).await;
    let back = Browserless::new()
        .authorize(&at_provider, "ann", "ann-password")
        .await;
    refused_with(
        &app,
        callback(&app, &back, "").await,
        "invalid_state",
        failures,
    )
    .await;
    failures += 1;
    let tampered = back.replace("state=", "state=x");
    refused_with(
        &app,
        callback(&app, &tampered, &cookie).await,
        "invalid_state",
        failures,
    )
    .await;
    failures += 1;

    // The code once more: the provider refuses it.
    let (at_provider, cookie) = start(&app, None).await;
    let back = Browserless::new()
        .authorize(&at_provider, "ann", "ann-password")
        .await;
    assert!(callback(&app, &back, &cookie).await.refresh.is_some());
    refused_with(
        &app,
        callback(&app, &back, &cookie).await,
        "provider_error",
        failures,
    )
    .await;
    failures += 1;

    // A code the provider issued to another client.
    let (at_provider, cookie) = start(&app, None).await;
    let theirs = at_provider.replace("client_id=poison-pill", "client_id=another-app");
    let back = Browserless::new()
        .authorize(&theirs, "ann", "ann-password")
        .await;
    refused_with(
        &app,
        callback(&app, &back, &cookie).await,
        "provider_error",
        failures,
    )
    .await;
    failures += 1;

    // The provider's own refusal.
    let (at_provider, cookie) = start(&app, None).await;
    let state = reqwest::Url::parse(&at_provider)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let denied = format!("{CALLBACK}?error=access_denied&state={state}");
    refused_with(
        &app,
        callback(&app, &denied, &cookie).await,
        "provider_error",
        failures,
    )
    .await;
    failures += 1;

    // ID tokens that fail a check.
    for spec in [
        json!({"claims": {"nonce": "another"}}),
        json!({"claims": {"aud": "another-app"}}),
        json!({"shift": {"exp": -7200, "iat": -7200}}),
        json!({"sign": "foreign", "keep_kid": true}),
        json!({"sign": "none"}),
        json!({"sign": "hs256_public"}),
    ] {
        let (at_provider, cookie) = start(&app, None).await;
        let back = Browserless::new()
            .authorize(&at_provider, "ann", "ann-password")
            .await;
        idp.forge_next_id_token(spec).await;
        refused_with(
            &app,
            callback(&app, &back, &cookie).await,
            "invalid_token",
            failures,
        )
        .await;
        failures += 1;
    }
}

#[tokio::test]
async fn a_provider_down_at_start_up_is_used_once_it_is_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = app_for(&format!("http://127.0.0.1:{port}")).await;
    let (refused, _) = start(&app, None).await;
    assert!(
        refused.ends_with("?error=provider_unavailable"),
        "{refused}"
    );
    let ready = app.get("/ready").await;
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "readiness does not wait for providers"
    );

    let _idp = provider_on(port).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (at, _) = start(&app, None).await;
        if at.starts_with(&format!("http://127.0.0.1:{port}")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {at}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let ended = flow(&app, "ann", None).await;
    assert!(ended.refresh.is_some(), "{}", ended.location);
}
