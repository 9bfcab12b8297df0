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
    assert_eq!(response.headers()["cache-control"], "no-store");
    let flow = set_cookie(&response, "oidc_flow").unwrap_or_default();
    if !flow.is_empty() {
        let attributes = cookie_line(&response, "oidc_flow");
        for attribute in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/api/v1/auth/oidc/corp/callback",
            "Max-Age=600",
        ] {
            assert!(
                attributes.contains(attribute),
                "{attribute} in {attributes}"
            );
        }
    }
    (location(&response), flow)
}

/// The whole `Set-Cookie` line of `name`.
fn cookie_line(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_default()
        .to_owned()
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
    // Every callback clears the flow cookie, on its path.
    let cleared = cookie_line(&response, "oidc_flow");
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("Path=/api/v1/auth/oidc/corp/callback"),
        "{cleared}"
    );
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
    let (at_provider, _) = start(&app, Some((&ticket, Some(&bob.refresh)))).await;
    assert!(
        at_provider.contains("prompt=login"),
        "a link asks who is there: {at_provider}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_sign_in_of_an_account_with_a_second_factor_waits_for_its_code() {
    let idp = provider_on(0).await;
    let app = app_for(idp.issuer()).await;
    let bob = app.user("bob@example.com").await;
    let ticket = link_ticket(&app, &bob).await;
    flow(&app, "dan", Some((&ticket, Some(&bob.refresh)))).await;
    let (phone, _) = crate::mfa::enrol(&app, &bob).await;

    let ended = flow(&app, "dan", None).await;
    assert!(ended.refresh.is_none(), "no session before the code");
    let challenge = ended
        .location
        .strip_prefix("https://auction.test/auth/complete#mfa=")
        .unwrap_or_else(|| panic!("{}", ended.location))
        .to_owned();
    let done = app
        .post(
            "/api/v1/auth/mfa",
            &json!({"challenge": challenge, "code": phone.code(1)}),
        )
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    let session = crate::support::session_of(done).await;
    assert_eq!(app.me(&session.access).await["email"], "bob@example.com");
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
/// leaving one audit entry naming the code and `reason`.
async fn refused_with(app: &TestApp, ended: Ended, code: &str, reason: &str) {
    assert!(
        ended.location.ends_with(&format!("?error={code}")),
        "{} should end in {code}",
        ended.location
    );
    assert!(ended.refresh.is_none(), "no session after {code}");
    let failures = audited(app, "oidc_login_failed").await;
    let newest = failures.last().cloned().unwrap_or_default();
    assert!(
        newest.contains(code) && newest.contains(reason),
        "the newest refusal {newest:?} names {code} and {reason}"
    );
}

/// Where the provider sends a browser that signed in as Ann.
async fn back_from_provider(at_provider: &str) -> String {
    Browserless::new()
        .authorize(at_provider, "ann", "ann-password")
        .await
}

#[tokio::test]
async fn every_attack_at_the_callback_is_refused_and_audited() {
    let idp = provider_on(0).await;
    let app = app_for(idp.issuer()).await;
    let logins_before = audited(&app, "oidc_login").await.len();

    // No flow cookie; a state that is not the one sent; none; no code.
    let (at_provider, cookie) = start(&app, None).await;
    let back = back_from_provider(&at_provider).await;
    refused_with(
        &app,
        callback(&app, &back, "").await,
        "invalid_state",
        "no flow cookie",
    )
    .await;
    let tampered = back.replace("state=", "state=x");
    refused_with(
        &app,
        callback(&app, &tampered, &cookie).await,
        "invalid_state",
        "state differs",
    )
    .await;
    let url = reqwest::Url::parse(&back).unwrap();
    let without = |dropped: &str| {
        let mut url = url.clone();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != dropped)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(kept);
        url.to_string()
    };
    refused_with(
        &app,
        callback(&app, &without("state"), &cookie).await,
        "invalid_state",
        "no state",
    )
    .await;
    refused_with(
        &app,
        callback(&app, &without("code"), &cookie).await,
        "provider_error",
        "no code",
    )
    .await;
    assert_eq!(audited(&app, "oidc_login").await.len(), logins_before);
    // The same cookie and the untouched URL still sign in: the refusals
    // above were for what was changed.
    assert!(callback(&app, &back, &cookie).await.refresh.is_some());
    // That code once more: the provider refuses it.
    refused_with(
        &app,
        callback(&app, &back, &cookie).await,
        "provider_error",
        "invalid_grant",
    )
    .await;

    // A code the provider issued to another client.
    let (at_provider, cookie) = start(&app, None).await;
    let theirs = at_provider.replace("client_id=poison-pill", "client_id=another-app");
    let back = back_from_provider(&theirs).await;
    assert!(back.contains("code=") && !back.contains("error="), "{back}");
    refused_with(
        &app,
        callback(&app, &back, &cookie).await,
        "provider_error",
        "invalid_grant",
    )
    .await;

    // The provider's own refusal, its text kept to what an error code may hold.
    let (at_provider, cookie) = start(&app, None).await;
    let state = reqwest::Url::parse(&at_provider)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let denied = format!("{CALLBACK}?error=access_denied%0A%22forged%22&state={state}");
    refused_with(
        &app,
        callback(&app, &denied, &cookie).await,
        "provider_error",
        "access_denied",
    )
    .await;
    let newest = audited(&app, "oidc_login_failed").await.pop().unwrap();
    assert!(
        !newest.contains('\n') && !newest.contains('"'),
        "{newest:?}"
    );

    // ID tokens that fail a check; the forgery itself is sound (a token
    // re-signed unchanged signs in).
    let (at_provider, cookie) = start(&app, None).await;
    let back = back_from_provider(&at_provider).await;
    idp.forge_next_id_token(json!({})).await;
    assert!(callback(&app, &back, &cookie).await.refresh.is_some());
    let logins_before = audited(&app, "oidc_login").await.len();
    for (spec, reason) in [
        (json!({"claims": {"nonce": "another"}}), "once"),
        (json!({"claims": {"aud": "another-app"}}), "udience"),
        (json!({"shift": {"exp": -7200, "iat": -7200}}), "xpire"),
        (json!({"sign": "foreign", "keep_kid": true}), "ignature"),
        (json!({"sign": "none"}), "ID token"),
        (json!({"sign": "hs256_public"}), "ID token"),
    ] {
        let (at_provider, cookie) = start(&app, None).await;
        let back = back_from_provider(&at_provider).await;
        idp.forge_next_id_token(spec).await;
        refused_with(
            &app,
            callback(&app, &back, &cookie).await,
            "invalid_token",
            reason,
        )
        .await;
    }
    // A key the provider never published, right after the keys were
    // fetched: not known yet, so "try again", still no session.
    let (at_provider, cookie) = start(&app, None).await;
    let back = back_from_provider(&at_provider).await;
    idp.forge_next_id_token(json!({"sign": "foreign"})).await;
    refused_with(
        &app,
        callback(&app, &back, &cookie).await,
        "provider_unavailable",
        "not published",
    )
    .await;
    assert_eq!(audited(&app, "oidc_login").await.len(), logins_before);
}

#[tokio::test]
async fn a_link_refused_at_the_callback_links_nothing() {
    let idp = provider_on(0).await;
    let app = app_for(idp.issuer()).await;
    // Ann's identity already has an account of its own.
    let ann = flow(&app, "ann", None).await;
    assert!(ann.refresh.is_some());
    let bob = app.user("bob@example.com").await;
    let ticket = link_ticket(&app, &bob).await;
    let ended = flow(&app, "ann", Some((&ticket, Some(&bob.refresh)))).await;
    refused_with(&app, ended, "identity_in_use", "linking").await;
    assert!(identities(&app, &bob).await.is_empty());

    // Bob logs out while at the provider: the link no longer holds.
    let ticket = link_ticket(&app, &bob).await;
    let (at_provider, cookie) = start(&app, Some((&ticket, Some(&bob.refresh)))).await;
    let back = Browserless::new()
        .authorize(&at_provider, "dan", "dan-password")
        .await;
    let logout = app.post_as("/api/v1/auth/logout", &bob.access, None).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    refused_with(
        &app,
        callback(&app, &back, &cookie).await,
        "invalid_ticket",
        "linking",
    )
    .await;
    let again = app.session("bob@example.com").await;
    assert!(identities(&app, &again).await.is_empty());
}

#[tokio::test]
async fn the_unversioned_paths_send_the_flow_to_v1_and_identities_are_never_cached() {
    let idp = provider_on(0).await;
    let app = app_for(idp.issuer()).await;
    let moved = app
        .client
        .get(app.url("/api/auth/oidc/corp/start?link=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&moved), "/api/v1/auth/oidc/corp/start?link=abc");
    let unknown = app.get("/api/v1/auth/oidc/nobody/start").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let unknown = app
        .get("/api/v1/auth/oidc/nobody/callback?code=x&state=y")
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(audited(&app, "oidc_login_failed").await.is_empty());
    let bob = app.user("bob@example.com").await;
    let listed = app.get_as("/api/v1/users/me/identities", &bob.access).await;
    assert_eq!(listed.headers()["cache-control"], "no-store");
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
