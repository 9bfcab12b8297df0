//! # pp-oidc
//!
//! The domain's [`IdentityProviders`] port on the `openidconnect` crate:
//! each configured provider is discovered (`{issuer}/.well-known/openid-configuration`
//! and its key set) at start-up and again in the background until it
//! answers, so a provider that is down then does not keep the service from
//! starting; a sign-in is the authorization code flow with PKCE (S256),
//! `state` and `nonce`; the ID token's signature is checked against the
//! provider's published keys with only the asymmetric algorithms it
//! publishes (never `none`, never HMAC: a verifier without the client
//! secret refuses them), and its issuer, audience, authorized party,
//! expiry, issue time and nonce are checked. An ID token signed with a key
//! the cached set does not hold makes the set be fetched again (at most
//! once a minute), which is how a provider's key rotation is followed.

mod http;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreIdTokenVerifier,
    CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, JsonWebKeySetUrl,
    JwsSigningAlgorithm, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, TokenResponse,
};
use pp_domain::auth::identities::{
    IdentityProviders, PendingSignIn, ProviderFailure, ProviderInfo, ProviderName, SignInStart,
    VerifiedIdentity,
};
use secrecy::{ExposeSecret, SecretString};

pub use crate::http::ProviderHttp;

/// One configured provider.
#[derive(Clone, Debug)]
pub struct ProviderSettings {
    /// Its name, in paths and variable names.
    pub name: ProviderName,
    /// The sign-in button's text.
    pub label: String,
    /// Its issuer, exactly as its discovery document states it.
    pub issuer: String,
    /// Our client id there.
    pub client_id: String,
    /// Our client secret there.
    pub client_secret: SecretString,
    /// The scopes asked for (`openid` is always among them).
    pub scopes: Vec<String>,
}

/// Why the configuration of a provider is refused at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The issuer is not an absolute URL.
    #[error("OIDC provider {0}: the issuer is not a URL: {1}")]
    Issuer(String, String),
    /// An `http` issuer on a host that is not loopback.
    #[error("OIDC provider {0}: the issuer must be https (http only on a loopback host)")]
    InsecureIssuer(String),
    /// The redirect URI built from `PUBLIC_URL` is not a URL.
    #[error("OIDC provider {0}: the redirect URI is not a URL: {1}")]
    RedirectUri(String, String),
}

/// How long an ID token's issue time may lie in the past (a provider's
/// token is fresh: the code was just exchanged), and the clock skew allowed.
const MAX_TOKEN_AGE: chrono::Duration = chrono::Duration::minutes(10);
const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(60);
/// At most one key-set fetch a minute per provider: an attacker's tokens
/// with made-up key ids must not turn us into a load generator.
const JWKS_REFRESH_EVERY: Duration = Duration::from_secs(60);
/// At most one on-demand discovery every few seconds per provider while it
/// is down: sign-in attempts must not each wait for their own.
const DISCOVERY_RETRY_AFTER: Duration = Duration::from_secs(5);

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
>;

/// A provider after discovery.
#[derive(Debug)]
struct Discovered {
    client: Client,
    jwks_uri: JsonWebKeySetUrl,
    algorithms: Vec<CoreJwsSigningAlgorithm>,
    /// The key set, and when it was fetched.
    keys: RwLock<(Arc<CoreJsonWebKeySet>, Instant)>,
    /// Held while the key set is fetched again: one fetch at a time.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Provider {
    settings: ProviderSettings,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    discovered: RwLock<Option<Arc<Discovered>>>,
    /// Held while discovering, with when the last attempt began: requests
    /// that find the provider undiscovered share one attempt at a time, and
    /// at most one every few seconds.
    attempt: tokio::sync::Mutex<Option<Instant>>,
}

/// The configured providers.
#[derive(Debug)]
pub struct OidcProviders {
    providers: Vec<Provider>,
    http: ProviderHttp,
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(PoisonError::into_inner).clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock.write().unwrap_or_else(PoisonError::into_inner) = value;
}

impl OidcProviders {
    /// The providers of `settings`, with redirect URIs under `public_url`
    /// (`{public_url}/api/v1/auth/oidc/{name}/callback`). Nothing is
    /// fetched yet: see [`discover`](Self::discover).
    ///
    /// # Errors
    /// [`SettingsError`] for a malformed or insecure issuer.
    pub fn new(
        settings: Vec<ProviderSettings>,
        public_url: &str,
        http: ProviderHttp,
    ) -> Result<Self, SettingsError> {
        let mut providers = Vec::with_capacity(settings.len());
        for settings in settings {
            let name = settings.name.to_string();
            let issuer = IssuerUrl::new(settings.issuer.clone())
                .map_err(|e| SettingsError::Issuer(name.clone(), e.to_string()))?;
            if !secure_or_loopback(issuer.url()) {
                return Err(SettingsError::InsecureIssuer(name));
            }
            let redirect = RedirectUrl::new(format!(
                "{}/api/v1/auth/oidc/{name}/callback",
                public_url.trim_end_matches('/')
            ))
            .map_err(|e| SettingsError::RedirectUri(name.clone(), e.to_string()))?;
            providers.push(Provider {
                settings,
                issuer,
                redirect,
                discovered: RwLock::new(None),
                attempt: tokio::sync::Mutex::new(None),
            });
        }
        Ok(OidcProviders { providers, http })
    }

    /// Discovers every provider not discovered yet; true when all are.
    /// A failure is logged and left for the next call.
    pub async fn discover(&self) -> bool {
        let mut all = true;
        for provider in &self.providers {
            if read(&provider.discovered).is_some() {
                continue;
            }
            let mut attempt = provider.attempt.lock().await;
            *attempt = Some(Instant::now());
            all &= self.attempt_discovery(provider).await.is_ok();
        }
        all
    }

    /// One discovery of `provider`, kept when it succeeds; logged either way.
    async fn attempt_discovery(&self, provider: &Provider) -> Result<Arc<Discovered>, String> {
        match self.discover_one(provider).await {
            Ok(discovered) => {
                tracing::info!(provider = %provider.settings.name, "OIDC provider discovered");
                let discovered = Arc::new(discovered);
                write(&provider.discovered, Some(Arc::clone(&discovered)));
                Ok(discovered)
            }
            Err(error) => {
                tracing::warn!(provider = %provider.settings.name, %error, "OIDC discovery failed; retrying in the background");
                Err(error)
            }
        }
    }

    /// Discovers in the background until every provider answered: once
    /// now, then after 1, 2, 4 … up to 60 seconds.
    pub fn spawn_discovery(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let providers = Arc::clone(self);
        tokio::spawn(async move {
            let mut pause = Duration::from_secs(1);
            while !providers.discover().await {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(60));
            }
        })
    }

    async fn discover_one(&self, provider: &Provider) -> Result<Discovered, String> {
        let metadata = CoreProviderMetadata::discover_async(provider.issuer.clone(), &self.http)
            .await
            .map_err(|e| error_chain(&e))?;
        // Only the asymmetric algorithms it publishes: never `none`, never
        // an HMAC keyed with something public.
        let algorithms: Vec<CoreJwsSigningAlgorithm> = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|alg| !alg.uses_shared_secret() && **alg != CoreJwsSigningAlgorithm::None)
            .cloned()
            .collect();
        if algorithms.is_empty() {
            return Err("the provider publishes no asymmetric ID-token algorithm".into());
        }
        // client_secret_basic unless it only takes client_secret_post.
        let auth_type = match metadata.token_endpoint_auth_methods_supported() {
            Some(methods)
                if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                    && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
            {
                AuthType::RequestBody
            }
            _ => AuthType::BasicAuth,
        };
        let token_uri = metadata
            .token_endpoint()
            .cloned()
            .ok_or("the provider publishes no token endpoint")?;
        let jwks_uri = metadata.jwks_uri().clone();
        if !secure_or_loopback(token_uri.url()) || !secure_or_loopback(jwks_uri.url()) {
            return Err("the provider's token endpoint or key set is not https".into());
        }
        let keys = metadata.jwks().clone();
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.settings.client_id.clone()),
            Some(ClientSecret::new(
                provider.settings.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_token_uri(token_uri)
        .set_redirect_uri(provider.redirect.clone())
        .set_auth_type(auth_type);
        Ok(Discovered {
            client,
            jwks_uri,
            algorithms,
            keys: RwLock::new((Arc::new(keys), Instant::now())),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    fn provider(&self, name: &ProviderName) -> Result<&Provider, ProviderFailure> {
        self.providers
            .iter()
            .find(|p| p.settings.name == *name)
            .ok_or(ProviderFailure::UnknownProvider)
    }

    async fn discovered(&self, provider: &Provider) -> Result<Arc<Discovered>, ProviderFailure> {
        if let Some(discovered) = read(&provider.discovered) {
            return Ok(discovered);
        }
        // Not yet: one attempt now, so a provider that came back is usable
        // before the background retry's next turn; shared by whoever asks
        // meanwhile, and not repeated within a few seconds.
        let mut attempt = provider.attempt.lock().await;
        if let Some(discovered) = read(&provider.discovered) {
            return Ok(discovered);
        }
        if attempt.is_some_and(|at| at.elapsed() < DISCOVERY_RETRY_AFTER) {
            return Err(ProviderFailure::Unavailable(
                "discovery failed moments ago".into(),
            ));
        }
        *attempt = Some(Instant::now());
        self.attempt_discovery(provider)
            .await
            .map_err(ProviderFailure::Unavailable)
    }

    /// The ID-token checks, against `keys`.
    fn verifier(
        provider: &Provider,
        discovered: &Discovered,
        keys: CoreJsonWebKeySet,
    ) -> CoreIdTokenVerifier<'static> {
        // A public-client verifier holds no secret, so an HMAC-signed token
        // has nothing to verify against and is refused.
        CoreIdTokenVerifier::new_public_client(
            ClientId::new(provider.settings.client_id.clone()),
            provider.issuer.clone(),
            keys,
        )
        .set_allowed_algs(discovered.algorithms.clone())
        .set_time_fn(|| chrono::Utc::now() - CLOCK_SKEW)
        .set_issue_time_verifier_fn(|issued| {
            let now = chrono::Utc::now();
            if issued > now + CLOCK_SKEW {
                Err(format!("issued in the future ({issued})"))
            } else if issued < now - MAX_TOKEN_AGE - CLOCK_SKEW {
                Err(format!("issued too long ago ({issued})"))
            } else {
                Ok(())
            }
        })
    }

    /// Fetches the key set again unless it was fetched within the last
    /// minute; true when it was.
    async fn refresh_keys(&self, discovered: &Discovered) -> Result<bool, ProviderFailure> {
        let _one_at_a_time = discovered.refreshing.lock().await;
        let fetched = read(&discovered.keys).1;
        if fetched.elapsed() < JWKS_REFRESH_EVERY {
            return Ok(false);
        }
        let keys = CoreJsonWebKeySet::fetch_async(&discovered.jwks_uri, &self.http)
            .await
            .map_err(|e| ProviderFailure::Unavailable(error_chain(&e)))?;
        write(&discovered.keys, (Arc::new(keys), Instant::now()));
        Ok(true)
    }

    /// Lets the next unknown key id fetch the key set at once (tests).
    #[doc(hidden)]
    pub fn forget_key_fetch_time(&self) {
        for provider in &self.providers {
            if let Some(discovered) = read(&provider.discovered) {
                let mut keys = discovered
                    .keys
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if let Some(long_ago) = Instant::now().checked_sub(JWKS_REFRESH_EVERY * 2) {
                    keys.1 = long_ago;
                }
            }
        }
    }
}

/// `https`, or any scheme on a loopback host (local providers and tests):
/// the client secret and the codes cross this connection.
fn secure_or_loopback(url: &url::Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain == "localhost",
        None => false,
    };
    url.scheme() == "https" || loopback
}

/// An error and its causes on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[async_trait]
impl IdentityProviders for OidcProviders {
    fn providers(&self) -> Vec<ProviderInfo> {
        self.providers
            .iter()
            .map(|p| ProviderInfo {
                name: p.settings.name.clone(),
                label: p.settings.label.clone(),
            })
            .collect()
    }

    async fn start(
        &self,
        name: &ProviderName,
        reauthenticate: bool,
    ) -> Result<SignInStart, ProviderFailure> {
        let provider = self.provider(name)?;
        let discovered = self.discovered(provider).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = discovered.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        if reauthenticate {
            request = request.add_prompt(CoreAuthPrompt::Login);
        }
        let (url, state, nonce) = request
            // openidconnect adds `openid` itself.
            .add_scopes(
                provider
                    .settings
                    .scopes
                    .iter()
                    .filter(|scope| *scope != "openid")
                    .cloned()
                    .map(Scope::new),
            )
            .set_pkce_challenge(challenge)
            .url();
        Ok(SignInStart {
            url: url.to_string(),
            pending: PendingSignIn {
                provider: name.clone(),
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
            },
        })
    }

    async fn finish(
        &self,
        code: &str,
        pending: &PendingSignIn,
    ) -> Result<VerifiedIdentity, ProviderFailure> {
        let provider = self.provider(&pending.provider)?;
        let discovered = self.discovered(provider).await?;
        let tokens: CoreTokenResponse = discovered
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(refusal) => {
                    ProviderFailure::Refused(refusal.error().to_string())
                }
                other => ProviderFailure::Unavailable(error_chain(&other)),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| ProviderFailure::InvalidToken("no ID token".into()))?;
        let nonce = Nonce::new(pending.nonce.clone());
        let check = |keys: Arc<CoreJsonWebKeySet>| {
            id_token
                .claims(
                    &Self::verifier(provider, &discovered, (*keys).clone()),
                    &nonce,
                )
                .cloned()
        };
        let claims = match check(read(&discovered.keys).0) {
            // A key we do not hold: the provider may have rotated its keys.
            // Fetched again within the last minute: try again later (a
            // rotation is rare, a flood of made-up key ids is not).
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                if !self.refresh_keys(&discovered).await? {
                    return Err(ProviderFailure::Unavailable(
                        "the ID token's signing key is not published yet".into(),
                    ));
                }
                check(read(&discovered.keys).0)
            }
            checked => checked,
        }
        .map_err(|e| ProviderFailure::InvalidToken(error_chain(&e)))?;
        // openidconnect refuses audiences beside ours; `azp` is ours to
        // check (OpenID Connect Core 3.1.3.7).
        if let Some(azp) = claims.authorized_party()
            && azp.as_str() != provider.settings.client_id
        {
            return Err(ProviderFailure::InvalidToken(format!(
                "authorized party {} is not this client",
                azp.as_str()
            )));
        }
        Ok(VerifiedIdentity {
            provider: pending.provider.clone(),
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|names| names.get(None))
                .map(|n| n.as_str().to_owned()),
        })
    }
}
