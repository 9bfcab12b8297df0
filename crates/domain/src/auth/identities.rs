//! Identities from OpenID Connect providers, as the account flows see them:
//! what a provider vouched for (after the adapter validated its ID token),
//! the identities an account has linked, and the store behind them.
//!
//! An identity is `(provider, subject)`: the subject is the provider's own,
//! stable id of the person; the e-mail address is only remembered as it was
//! at link time. Nothing is ever linked by a matching address: an identity
//! joins an account only through an explicit link from a signed-in session,
//! or by creating a new account (see [`AuthService::sign_in_with`]).
//!
//! [`AuthService::sign_in_with`]: super::AuthService::sign_in_with

use async_trait::async_trait;
use thiserror::Error;

use crate::email::Email;
use crate::ids::UserId;
use crate::item::Timestamp;
use crate::ports::StoreError;
use crate::user::{NewUser, User};

/// A configured provider's name: `[a-z0-9_]+`, at most 32 characters (it
/// appears in paths and, upper-cased, in variable names).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderName(String);

/// A provider name that breaks the rule.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("a provider name is 1 to 32 of a-z, 0-9 and _: {0:?}")]
pub struct InvalidProviderName(pub String);

impl ProviderName {
    /// The longest name.
    pub const MAX_LEN: usize = 32;

    /// Checks `name`.
    ///
    /// # Errors
    /// [`InvalidProviderName`] unless it is 1 to 32 of `a-z`, `0-9`, `_`.
    pub fn parse(name: &str) -> Result<Self, InvalidProviderName> {
        let valid = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(ProviderName(name.to_owned()))
        } else {
            Err(InvalidProviderName(name.to_owned()))
        }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProviderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a provider vouched for in an ID token whose signature, issuer,
/// audience, expiry and nonce were checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// Who vouched.
    pub provider: ProviderName,
    /// The provider's id of the person (`sub`).
    pub subject: String,
    /// The `email` claim, if any.
    pub email: Option<String>,
    /// The `email_verified` claim; `false` when missing.
    pub email_verified: bool,
    /// The `name` claim, if any.
    pub name: Option<String>,
}

/// An identity to link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIdentity {
    /// The provider.
    pub provider: ProviderName,
    /// Its subject.
    pub subject: String,
    /// The account it joins.
    pub user: UserId,
    /// The address the provider gave at link time.
    pub email: Option<String>,
    /// When.
    pub linked_at: Timestamp,
}

impl NewIdentity {
    /// `identity`, joining `user` at `at`.
    #[must_use]
    pub fn of(identity: &VerifiedIdentity, user: UserId, at: Timestamp) -> Self {
        NewIdentity {
            provider: identity.provider.clone(),
            subject: identity.subject.clone(),
            user,
            email: identity.email.clone(),
            linked_at: at,
        }
    }
}

/// A linked identity, as its account's owner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedIdentity {
    /// The provider.
    pub provider: ProviderName,
    /// Its subject.
    pub subject: String,
    /// The address at link time.
    pub email: Option<String>,
    /// When it was linked.
    pub linked_at: Timestamp,
}

/// What linking an identity did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkOutcome {
    /// It now belongs to the account.
    Linked,
    /// It already did: nothing changed.
    AlreadyLinked,
    /// Another account has it.
    InUse,
    /// The account has another identity of that provider.
    ProviderTaken,
}

/// What creating an account for a new identity did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewAccountOutcome {
    /// The account, with the identity linked.
    Created(User),
    /// An account has the address.
    EmailTaken,
    /// The identity was linked meanwhile (a concurrent first sign-in).
    IdentityInUse,
}

/// What unlinking did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnlinkOutcome {
    /// The identity is gone from the account.
    Unlinked,
    /// The account has no identity of that provider.
    NotLinked,
    /// It is the account's last way to sign in (no password set, no other
    /// identity): kept.
    LastMethod,
}

/// Linked identities.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The account `(provider, subject)` belongs to.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn account_of(
        &self,
        provider: &ProviderName,
        subject: &str,
    ) -> Result<Option<UserId>, StoreError>;

    /// Creates `user` (verified, with no password it knows) and links
    /// `identity` to it, both or neither.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn create_account_with_identity(
        &self,
        user: NewUser,
        identity: NewIdentity,
    ) -> Result<NewAccountOutcome, StoreError>;

    /// Links `identity` to its account.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn link_identity(&self, identity: NewIdentity) -> Result<LinkOutcome, StoreError>;

    /// `user`'s identities, by provider.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn identities_of(&self, user: UserId) -> Result<Vec<LinkedIdentity>, StoreError>;

    /// Unlinks `user`'s identity of `provider`, unless it is the account's
    /// last way to sign in; decided under the account's row lock, so two
    /// concurrent unlinks cannot leave an account with none.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn unlink_identity(
        &self,
        user: UserId,
        provider: &ProviderName,
    ) -> Result<UnlinkOutcome, StoreError>;
}

/// A provider offered on the sign-in pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Its name (in paths).
    pub name: ProviderName,
    /// The button's text.
    pub label: String,
}

/// What a started sign-in keeps until the provider sends the browser back:
/// the HTTP layer holds it in a short-lived cookie only the server can read.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    /// The provider it went to.
    pub provider: ProviderName,
    /// The `state` sent, to compare with the one returned.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier of the challenge sent.
    pub pkce_verifier: String,
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// A started sign-in: where to send the browser, and what to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInStart {
    /// The provider's authorization URL.
    pub url: String,
    /// What the callback needs.
    pub pending: PendingSignIn,
}

/// Why a provider gave no identity.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ProviderFailure {
    /// No provider of that name is configured.
    #[error("no such provider")]
    UnknownProvider,
    /// Its discovery document or keys could not be fetched (yet).
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// It refused the code, or answered with an error.
    #[error("the provider refused: {0}")]
    Refused(String),
    /// Its ID token failed a check (signature, issuer, audience, expiry,
    /// nonce, authorized party).
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
}

impl ProviderFailure {
    /// The code the callback redirects with.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ProviderFailure::UnknownProvider => "unknown_provider",
            ProviderFailure::Unavailable(_) => "provider_unavailable",
            ProviderFailure::Refused(_) => "provider_error",
            ProviderFailure::InvalidToken(_) => "invalid_token",
        }
    }
}

/// The configured OpenID providers: the authorization code flow with PKCE,
/// `state` and `nonce`, and the checked ID token at the end.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdentityProviders: Send + Sync {
    /// The providers, in configuration order.
    fn providers(&self) -> Vec<ProviderInfo>;

    /// Starts a sign-in with `provider`; `reauthenticate` makes the
    /// provider ask the person to sign in again even if it has a session
    /// (`prompt=login`): a link must take the identity of whoever is at the
    /// keyboard, not of whoever last used the provider in this browser.
    ///
    /// # Errors
    /// [`ProviderFailure::UnknownProvider`], or `Unavailable` while its
    /// discovery has not succeeded.
    async fn start(
        &self,
        provider: &ProviderName,
        reauthenticate: bool,
    ) -> Result<SignInStart, ProviderFailure>;

    /// Exchanges `code` for tokens and checks the ID token against
    /// `pending`. The caller has compared the returned `state` already.
    ///
    /// # Errors
    /// [`ProviderFailure`] naming why.
    async fn finish(
        &self,
        code: &str,
        pending: &PendingSignIn,
    ) -> Result<VerifiedIdentity, ProviderFailure>;
}

/// Why a sign-in or link through a provider was refused: each is a short
/// code the callback redirects with (`/auth/complete?error=CODE`).
#[derive(Debug, Error)]
pub enum OidcError {
    /// A new identity whose provider did not say `email_verified: true`.
    #[error("the provider did not verify the e-mail address")]
    EmailNotVerified,
    /// A new identity whose address an account has: its owner signs in
    /// and links explicitly.
    #[error("an account has this e-mail address")]
    AccountExists,
    /// The identity belongs to another account.
    #[error("the identity is linked to another account")]
    IdentityInUse,
    /// The account has another identity of that provider.
    #[error("the account already has an identity of this provider")]
    ProviderAlreadyLinked,
    /// The identity's account was deactivated.
    #[error("the account is deactivated")]
    AccountDisabled,
    /// A link ticket that is malformed, unknown, used or expired.
    #[error("invalid or expired link ticket")]
    InvalidTicket,
    /// Infrastructure failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OidcError {
    /// The code the callback redirects with.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::EmailNotVerified => "email_not_verified",
            OidcError::AccountExists => "account_exists",
            OidcError::IdentityInUse => "identity_in_use",
            OidcError::ProviderAlreadyLinked => "provider_already_linked",
            OidcError::AccountDisabled => "account_disabled",
            OidcError::InvalidTicket => "invalid_ticket",
            OidcError::Store(_) => "server_error",
        }
    }
}

/// Why unlinking was refused.
#[derive(Debug, Error)]
pub enum UnlinkError {
    /// No identity of that provider on the account.
    #[error("no identity of this provider is linked")]
    NotLinked,
    /// It is the account's last way to sign in.
    #[error("the account would have no way to sign in")]
    LastMethod,
    /// Infrastructure failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The address a provider vouched for, when it may create an account:
/// present, well-formed and verified by the provider.
///
/// # Errors
/// [`OidcError::EmailNotVerified`] otherwise.
pub fn vouched_email(identity: &VerifiedIdentity) -> Result<Email, OidcError> {
    if !identity.email_verified {
        return Err(OidcError::EmailNotVerified);
    }
    identity
        .email
        .as_deref()
        .and_then(|email| Email::parse(email).ok())
        .ok_or(OidcError::EmailNotVerified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(email: Option<&str>, verified: bool) -> VerifiedIdentity {
        VerifiedIdentity {
            provider: ProviderName::parse("corp").unwrap(),
            subject: "248289761001".into(),
            email: email.map(str::to_owned),
            email_verified: verified,
            name: None,
        }
    }

    #[test]
    fn provider_names_are_short_lowercase_words() {
        for good in ["google", "corp_sso", "a", "k8s", &"x".repeat(32)] {
            assert_eq!(ProviderName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "Google",
            "corp-sso",
            "a b",
            "ü",
            "../x",
            &"x".repeat(33),
        ] {
            assert!(ProviderName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_a_verified_well_formed_address_may_make_an_account() {
        let ok = vouched_email(&identity(Some("Ann@Example.com"), true)).unwrap();
        assert_eq!(ok.as_str(), "ann@example.com");
        for refused in [
            identity(Some("ann@example.com"), false),
            identity(None, true),
            identity(Some("not an address"), true),
        ] {
            assert!(matches!(
                vouched_email(&refused),
                Err(OidcError::EmailNotVerified)
            ));
        }
    }

    #[test]
    fn every_provider_failure_has_its_redirect_code_and_a_pending_sign_in_hides_its_secrets() {
        let codes = [
            ProviderFailure::UnknownProvider,
            ProviderFailure::Unavailable("down".into()),
            ProviderFailure::Refused("invalid_grant".into()),
            ProviderFailure::InvalidToken("nonce".into()),
        ]
        .map(|f| f.code());
        assert_eq!(
            codes,
            [
                "unknown_provider",
                "provider_unavailable",
                "provider_error",
                "invalid_token"
            ]
        );
        let pending = PendingSignIn {
            provider: ProviderName::parse("corp").unwrap(),
            state: "the-state".into(),
            nonce: "the-nonce".into(),
            pkce_verifier: "the-verifier".into(),
        };
        let printed = format!("{pending:?}");
        assert!(printed.contains("corp"));
        for secret in ["the-state", "the-nonce", "the-verifier"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }

    #[test]
    fn every_refusal_has_its_redirect_code() {
        let codes = [
            OidcError::EmailNotVerified,
            OidcError::AccountExists,
            OidcError::IdentityInUse,
            OidcError::ProviderAlreadyLinked,
            OidcError::AccountDisabled,
            OidcError::InvalidTicket,
            OidcError::Store(StoreError::Busy),
        ]
        .map(|e| e.code());
        assert_eq!(
            codes,
            [
                "email_not_verified",
                "account_exists",
                "identity_in_use",
                "provider_already_linked",
                "account_disabled",
                "invalid_ticket",
                "server_error"
            ]
        );
    }
}
