//! A real OpenID provider for tests: `idp/idp.mjs`, the certified
//! `oidc-provider` npm package on Node.js, on a port of 127.0.0.1, with
//! the clients and accounts a test gives it, login and consent pages that
//! check the password, and test-only endpoints to rotate its signing key.
//! `make idp` (or `scripts/test-idp.sh`) installs its packages once.
//!
//! [`Browserless`] plays the user's browser through the provider's pages,
//! so a test can follow an authorization URL to the code it returns.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A client registered with the provider.
#[derive(Clone, Debug)]
pub struct IdpClient {
    pub id: String,
    pub secret: String,
    pub redirect_uris: Vec<String>,
}

/// An account the provider signs in.
#[derive(Clone, Debug)]
pub struct IdpAccount {
    pub subject: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub password: String,
}

impl IdpAccount {
    /// An account with a verified address, named after its subject.
    #[must_use]
    pub fn verified(subject: &str, email: &str) -> Self {
        IdpAccount {
            subject: subject.to_owned(),
            email: email.to_owned(),
            email_verified: true,
            name: format!("{subject} at the provider"),
            password: format!("{subject}-password"),
        }
    }
}

/// The provider, running until dropped.
#[derive(Debug)]
pub struct Idp {
    child: Child,
    issuer: String,
    clients: Vec<IdpClient>,
    accounts: Vec<IdpAccount>,
}

/// Where `idp.mjs` and its packages are.
#[must_use]
pub fn idp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("idp")
}

impl Idp {
    /// Starts the provider on `port` of 127.0.0.1 (0 for a free one) and
    /// returns once it serves.
    ///
    /// # Panics
    /// When Node.js or the packages are missing (`make idp` installs them)
    /// or the provider does not start within 20 s.
    pub async fn start(port: u16, clients: Vec<IdpClient>, accounts: Vec<IdpAccount>) -> Self {
        let dir = idp_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "the test OpenID provider's packages are missing: run `make idp` (npm ci in {})",
            dir.display()
        );
        let clients_json: Vec<Value> = clients
            .iter()
            .map(|c| {
                json!({"client_id": c.id, "client_secret": c.secret, "redirect_uris": c.redirect_uris})
            })
            .collect();
        let accounts_json: Vec<Value> = accounts
            .iter()
            .map(|a| {
                json!({"sub": a.subject, "email": a.email, "email_verified": a.email_verified,
                       "name": a.name, "password": a.password})
            })
            .collect();
        let mut child = Command::new("node")
            .arg(dir.join("idp.mjs"))
            .arg(port.to_string())
            .env("IDP_CLIENTS", Value::from(clients_json).to_string())
            .env("IDP_ACCOUNTS", Value::from(accounts_json).to_string())
            .env("IDP_AUTO_CONSENT", "1")
            .env("IDP_EXIT_ON_STDIN_EOF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node (Node.js 20 or later is needed for the test OpenID provider)");
        let stdout = child.stdout.take().expect("the provider's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the test OpenID provider starts within 20 s")
            .expect("read the provider's stdout")
            .expect("the provider prints its issuer");
        let issuer = first
            .strip_prefix("issuer ")
            .unwrap_or_else(|| panic!("the provider's first line names its issuer: {first:?}"))
            .to_owned();
        // Keep draining stdout so the provider never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Idp {
            child,
            issuer,
            clients,
            accounts,
        }
    }

    /// `http://127.0.0.1:PORT`, exactly as its discovery document says.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Its port.
    ///
    /// # Panics
    /// Never: the issuer always ends in its port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the issuer ends in its port")
    }

    /// The registered clients.
    #[must_use]
    pub fn clients(&self) -> &[IdpClient] {
        &self.clients
    }

    /// The accounts.
    #[must_use]
    pub fn accounts(&self) -> &[IdpAccount] {
        &self.accounts
    }

    /// Publishes a new signing key first in its key set (new ID tokens are
    /// signed with it); `drop_old` unpublishes the others. Returns the new
    /// key's id.
    ///
    /// # Panics
    /// When the provider does not answer.
    pub async fn rotate_key(&self, drop_old: bool) -> String {
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/_test/rotate", self.issuer))
            .json(&json!({ "drop_old": drop_old }))
            .send()
            .await
            .expect("rotate the provider's key")
            .json()
            .await
            .expect("the rotation's answer");
        answer["kid"].as_str().unwrap_or_default().to_owned()
    }

    /// Arms a one-shot forgery: the next token response carries an ID
    /// token changed as `spec` says (`{"claims": {…}}`, `{"shift": {"exp":
    /// -3600}}`, `{"sign": "foreign" | "none" | "hs256_public"}`; see
    /// `idp/idp.mjs`), so a relying party meets each kind of bad token
    /// through the real code flow.
    ///
    /// # Panics
    /// When the provider does not answer.
    pub async fn forge_next_id_token(&self, spec: Value) {
        let answer = reqwest::Client::new()
            .post(format!("{}/_test/forge", self.issuer))
            .json(&spec)
            .send()
            .await
            .expect("arm the provider's forgery");
        assert!(answer.status().is_success(), "forge: {}", answer.status());
    }

    /// Stops the provider (its port is free again).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The user's browser, without a browser: follows an authorization URL
/// through the provider's login (and consent) pages, keeping the provider's
/// cookies, until the provider redirects to the client.
#[derive(Debug)]
pub struct Browserless {
    client: reqwest::Client,
}

impl Default for Browserless {
    fn default() -> Self {
        Self::new()
    }
}

impl Browserless {
    /// A fresh browser: no cookies, so no session at the provider.
    ///
    /// # Panics
    /// Never in practice (a client with a cookie store builds).
    #[must_use]
    pub fn new() -> Self {
        Self::with_client(
            reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client with cookies"),
        )
    }

    /// A browser on `client`, whose cookie store it shares (the test's
    /// requests to the application and the provider then carry one jar).
    /// `client` must not follow redirects.
    #[must_use]
    pub fn with_client(client: reqwest::Client) -> Self {
        Browserless { client }
    }

    /// Follows `authorize_url`, signing in as `login` with `password` when
    /// the provider asks; returns the URL the provider finally redirects to
    /// outside itself (the client's redirect URI with `code` and `state`,
    /// or `error`).
    ///
    /// # Panics
    /// When the provider's pages do not lead there within a few steps.
    pub async fn authorize(&self, authorize_url: &str, login: &str, password: &str) -> String {
        let origin = reqwest::Url::parse(authorize_url)
            .expect("an absolute authorization URL")
            .origin();
        let at_provider =
            |url: &str| reqwest::Url::parse(url).is_ok_and(|url| url.origin() == origin);
        let origin = origin.ascii_serialization();
        let mut next = authorize_url.to_owned();
        for _ in 0..10 {
            if !at_provider(&next) {
                return next;
            }
            let mut response = self
                .client
                .get(&next)
                .send()
                .await
                .expect("follow the provider");
            if response.status() == 200 && next.contains("/interaction/") {
                // A page: the login form, or the consent form.
                let uid = next.rsplit('/').next().unwrap_or_default().to_owned();
                let page = response.text().await.unwrap_or_default();
                response = if page.contains("name=\"password\"") {
                    self.client
                        .post(format!("{origin}/interaction/{uid}/login"))
                        .form(&[("login", login), ("password", password)])
                } else {
                    self.client
                        .post(format!("{origin}/interaction/{uid}/confirm"))
                        .form(&[("confirm", "yes")])
                }
                .send()
                .await
                .expect("post the provider's form");
            }
            let status = response.status();
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            let Some(location) = location else {
                let body = response.text().await.unwrap_or_default();
                panic!("the provider answered {status} without a redirect: {body}");
            };
            next = if location.starts_with('/') {
                format!("{origin}{location}")
            } else {
                location
            };
        }
        panic!("the provider's pages did not lead back to the client");
    }
}
