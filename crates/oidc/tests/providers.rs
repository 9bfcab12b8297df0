//! The adapter against a real OpenID provider (`oidc-provider` on Node.js,
//! started per test on a port of its own): discovery, the code flow, the
//! ID-token checks, key rotation, and a provider that is down at start-up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;
use std::time::Duration;

use pp_domain::auth::identities::{
    IdentityProviders, PendingSignIn, ProviderFailure, ProviderName, SignInStart,
};
use pp_oidc::{OidcProviders, ProviderHttp, ProviderSettings, SettingsError};
use pp_testkit::idp::{Browserless, Idp, IdpAccount, IdpClient};

const PUBLIC_URL: &str = "http://127.0.0.1:9";

fn corp() -> ProviderName {
    ProviderName::parse("corp").unwrap()
}

fn client(id: &str) -> IdpClient {
    IdpClient {
        id: id.into(),
        secret: format!("{id}-secret"),
        redirect_uris: vec![format!("{PUBLIC_URL}/api/v1/auth/oidc/corp/callback")],
    }
}

fn settings(issuer: &str, client_id: &str) -> ProviderSettings {
    ProviderSettings {
        name: corp(),
        label: "Corp SSO".into(),
        issuer: issuer.into(),
        client_id: client_id.into(),
        client_secret: format!("{client_id}-secret").into(),
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
    }
}

fn http() -> ProviderHttp {
    ProviderHttp::new(Duration::from_secs(5)).unwrap()
}

async fn provider_with(idp: &Idp, client_id: &str) -> OidcProviders {
    let providers =
        OidcProviders::new(vec![settings(idp.issuer(), client_id)], PUBLIC_URL, http()).unwrap();
    assert!(providers.discover().await);
    providers
}

async fn idp() -> Idp {
    let mut unverified = IdpAccount::verified("uma", "uma@idp.test");
    unverified.email_verified = false;
    Idp::start(
        0,
        vec![client("poison-pill"), client("another-app")],
        vec![IdpAccount::verified("ann", "ann@idp.test"), unverified],
    )
    .await
}

/// Signs in at the provider as `login`; the code the provider returned.
async fn code_for(start: &SignInStart, login: &str) -> String {
    let back = Browserless::new()
        .authorize(&start.url, login, &format!("{login}-password"))
        .await;
    let url = reqwest::Url::parse(&back).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query.get("state"), Some(&start.pending.state), "{back}");
    query
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {back}"))
}

#[tokio::test]
async fn a_sign_in_yields_the_identity_the_provider_vouched_for() {
    let idp = idp().await;
    let providers = provider_with(&idp, "poison-pill").await;
    assert_eq!(providers.providers()[0].label, "Corp SSO");
    let start = providers.start(&corp(), false).await.unwrap();
    assert!(start.url.starts_with(idp.issuer()));
    for param in [
        "code_challenge_method=S256",
        "state=",
        "nonce=",
        "scope=openid",
    ] {
        assert!(start.url.contains(param), "{param} in {}", start.url);
    }
    let code = code_for(&start, "ann").await;
    let identity = providers.finish(&code, &start.pending).await.unwrap();
    assert_eq!(identity.subject, "ann");
    assert_eq!(identity.email.as_deref(), Some("ann@idp.test"));
    assert!(identity.email_verified);
    assert_eq!(identity.name.as_deref(), Some("ann at the provider"));

    // The same code again: the provider refuses it.
    let replayed = providers.finish(&code, &start.pending).await;
    assert!(
        matches!(&replayed, Err(ProviderFailure::Refused(why)) if why == "invalid_grant"),
        "{replayed:?}"
    );

    // An address the provider did not verify says so.
    let start = providers.start(&corp(), false).await.unwrap();
    let code = code_for(&start, "uma").await;
    let identity = providers.finish(&code, &start.pending).await.unwrap();
    assert!(!identity.email_verified);
}

#[tokio::test]
async fn a_wrong_nonce_a_wrong_verifier_or_another_clients_code_gets_no_identity() {
    let idp = idp().await;
    let providers = provider_with(&idp, "poison-pill").await;

    let start = providers.start(&corp(), false).await.unwrap();
    let code = code_for(&start, "ann").await;
    let other_nonce = PendingSignIn {
        nonce: "a-nonce-from-another-start".into(),
        ..start.pending.clone()
    };
    let refused = providers.finish(&code, &other_nonce).await;
    assert!(
        matches!(&refused, Err(ProviderFailure::InvalidToken(why)) if why.contains("once")),
        "{refused:?}"
    );

    let start = providers.start(&corp(), false).await.unwrap();
    let code = code_for(&start, "ann").await;
    let other_verifier = PendingSignIn {
        pkce_verifier: "x".repeat(64),
        ..start.pending.clone()
    };
    assert!(matches!(
        providers.finish(&code, &other_verifier).await,
        Err(ProviderFailure::Refused(_))
    ));

    // A code issued to another client of the same provider.
    let another = provider_with(&idp, "another-app").await;
    let theirs = another.start(&corp(), false).await.unwrap();
    let code = code_for(&theirs, "ann").await;
    assert!(matches!(
        providers.finish(&code, &theirs.pending).await,
        Err(ProviderFailure::Refused(_))
    ));
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_when_a_token_names_it() {
    let idp = idp().await;
    let providers = provider_with(&idp, "poison-pill").await;
    idp.rotate_key(true).await;
    // Within a minute of the last fetch the set is not fetched again: try
    // again later …
    let start = providers.start(&corp(), false).await.unwrap();
    let code = code_for(&start, "ann").await;
    let refused = providers.finish(&code, &start.pending).await;
    assert!(
        matches!(&refused, Err(ProviderFailure::Unavailable(_))),
        "{refused:?}"
    );
    // … after it, an unknown key id fetches it once.
    providers.forget_key_fetch_time();
    let start = providers.start(&corp(), false).await.unwrap();
    let code = code_for(&start, "ann").await;
    providers.finish(&code, &start.pending).await.unwrap();
}

#[tokio::test]
async fn a_provider_down_at_start_up_is_used_once_it_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let providers = Arc::new(
        OidcProviders::new(
            vec![settings(&format!("http://127.0.0.1:{port}"), "poison-pill")],
            PUBLIC_URL,
            http(),
        )
        .unwrap(),
    );
    assert!(!providers.discover().await);
    assert!(matches!(
        providers.start(&corp(), false).await,
        Err(ProviderFailure::Unavailable(_))
    ));
    let background = providers.spawn_discovery();
    let idp = Idp::start(
        port,
        vec![client("poison-pill")],
        vec![IdpAccount::verified("ann", "ann@idp.test")],
    )
    .await;
    tokio::time::timeout(Duration::from_secs(30), background)
        .await
        .expect("discovered within 30 s")
        .unwrap();
    let start = providers.start(&corp(), false).await.unwrap();
    let code = code_for(&start, "ann").await;
    providers.finish(&code, &start.pending).await.unwrap();
    idp.stop().await;
}

#[tokio::test]
async fn an_unknown_provider_or_an_insecure_issuer_is_refused() {
    let providers = OidcProviders::new(vec![], PUBLIC_URL, http()).unwrap();
    assert!(matches!(
        providers.start(&corp(), false).await,
        Err(ProviderFailure::UnknownProvider)
    ));
    for issuer in ["http://idp.example.com", "not a url"] {
        let refused = OidcProviders::new(vec![settings(issuer, "x")], PUBLIC_URL, http());
        assert!(
            matches!(
                refused,
                Err(SettingsError::InsecureIssuer(_) | SettingsError::Issuer(..))
            ),
            "{issuer}"
        );
    }
    for loopback in [
        "http://localhost:1",
        "http://[::1]:1",
        "https://idp.example.com",
    ] {
        assert!(OidcProviders::new(vec![settings(loopback, "x")], PUBLIC_URL, http()).is_ok());
    }
}

/// Signs in with the provider's next ID token forged as `spec`.
async fn forged(idp: &Idp, providers: &OidcProviders, spec: serde_json::Value) -> ProviderFailure {
    let start = providers.start(&corp(), false).await.unwrap();
    let code = code_for(&start, "ann").await;
    idp.forge_next_id_token(spec.clone()).await;
    match providers.finish(&code, &start.pending).await {
        Ok(identity) => panic!("{spec} gave {identity:?}"),
        Err(failure) => failure,
    }
}

#[tokio::test]
async fn every_kind_of_bad_id_token_is_refused() {
    use serde_json::json;
    let idp = idp().await;
    let providers = provider_with(&idp, "poison-pill").await;
    // The forgery itself is sound: unchanged claims re-signed pass.
    let start = providers.start(&corp(), false).await.unwrap();
    let code = code_for(&start, "ann").await;
    idp.forge_next_id_token(json!({})).await;
    providers.finish(&code, &start.pending).await.unwrap();

    for (spec, why) in [
        (json!({"claims": {"aud": "another-app"}}), "audience"),
        (
            json!({"claims": {"aud": ["poison-pill", "another-app"]}}),
            "audience",
        ),
        (
            json!({"claims": {"azp": "another-app"}}),
            "authorized party",
        ),
        (json!({"claims": {"iss": "http://evil.test"}}), "issuer"),
        (json!({"claims": {"nonce": "another"}}), "nonce"),
        (json!({"claims": {"nonce": null}}), "nonce"),
        (json!({"shift": {"exp": -7200, "iat": -7200}}), "expired"),
        (json!({"shift": {"iat": -3600}}), "issued too long ago"),
        (json!({"shift": {"iat": 3600}}), "issued in the future"),
        (json!({"sign": "none"}), "alg none"),
        (
            json!({"sign": "hs256_public"}),
            "HMAC keyed with the public key",
        ),
    ] {
        let failure = forged(&idp, &providers, spec.clone()).await;
        assert!(
            matches!(failure, ProviderFailure::InvalidToken(_)),
            "{why} ({spec}): {failure:?}"
        );
    }
    // A key the provider never published: once the set was fetched again
    // and still lacks it, the token is invalid.
    providers.forget_key_fetch_time();
    let failure = forged(&idp, &providers, json!({"sign": "foreign"})).await;
    assert!(
        matches!(failure, ProviderFailure::InvalidToken(_)),
        "{failure:?}"
    );
}
