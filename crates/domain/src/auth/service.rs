//! The account flows of docs/spec/api.md, written against the ports only:
//! the service, its policy, ports and errors here, and one file per flow in
//! `service/`: `sessions.rs` (login, refresh, logout, bearer tokens),
//! `registration.rs` (register, verify, the mailed links), `passwords.rs`
//! (the checked password and its lockout, forgot, reset, change),
//! `oidc.rs` (sign-in and linking through OpenID providers) and
//! `second_factor.rs` (TOTP enrolment and challenged logins) and
//! `admin.rs` (the profile and accounts).

use std::sync::Arc;

use chrono::Duration;
use thiserror::Error;

use super::lockout::{FailedAttempt, LockoutPolicy, LoginFailures};
use super::password::{Password, PasswordPolicy};
use super::ports::{
    AccessTokens, AuditLog, IssueCap, NewLink, NewOneTimeToken, NewRefreshToken, OneTimeTokenStore,
    PasswordHasher, PasswordStrength, RevocationList, Rotation, SecretTokens, SessionStart,
    SessionStore, Verification,
};
use super::tokens::{
    AccessClaims, AuditCursor, AuditEntry, AuditEvent, AuditFilter, AuditRecord, LinkMail,
    OneTimePurpose, RequestContext, SecretToken, TokenLifetimes, TokenPair, TokenRejected,
};
use crate::email::Email;
use crate::ids::{SessionId, TokenId, UserId};
use crate::item::Timestamp;
use crate::outbox::{NewOutboxMail, OutgoingMail};
use crate::ports::{
    Clock, CreateUserError, PasswordReplacement, ReplacePasswordError, StoreError, UserStore,
};
use crate::user::{
    Credentials, DisplayName, NewUser, PasswordHash, Role, User, UserChanges, UserCursor,
};
use crate::validation::{Collector, ValidationErrors};

mod admin;
mod oidc;
mod passwords;
mod registration;
mod second_factor;
mod sessions;

pub use oidc::ProviderSignIn;
pub use second_factor::{AdminRefusal, SecondFactorOff};

/// Deployment choices for the account flows.
#[derive(Clone, Debug)]
pub struct AuthPolicy {
    /// Length rules for new passwords.
    pub passwords: PasswordPolicy,
    /// Lockout after failed logins.
    pub lockout: LockoutPolicy,
    /// Token lifetimes.
    pub lifetimes: TokenLifetimes,
    /// Login (and bidding) need a verified address.
    pub require_verified_email: bool,
    /// The base of links in e-mails, without a trailing slash.
    pub public_url: String,
    /// Verification and reset e-mails an account may be sent per hour
    /// (`MAILS_PER_ACCOUNT_PER_HOUR`); past it a request is answered alike
    /// and nothing is sent, so nobody can flood someone's inbox.
    pub mails_per_account_per_hour: u32,
    /// Admins must have a second factor on to use admin routes
    /// (`REQUIRE_ADMIN_2FA`); they may still log in to enrol.
    pub require_admin_second_factor: bool,
}

/// Everything the account flows talk to.
#[derive(Clone)]
pub struct AuthPorts {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// Sessions and refresh tokens.
    pub sessions: Arc<dyn SessionStore>,
    /// E-mailed single-use tokens.
    pub one_time: Arc<dyn OneTimeTokenStore>,
    /// The audit log.
    pub audit: Arc<dyn AuditLog>,
    /// argon2id.
    pub hasher: Arc<dyn PasswordHasher>,
    /// The breached-password check.
    pub strength: Arc<dyn PasswordStrength>,
    /// JWTs.
    pub access: Arc<dyn AccessTokens>,
    /// Opaque tokens.
    pub secrets: Arc<dyn SecretTokens>,
    /// The access-token blacklist.
    pub revocations: Arc<dyn RevocationList>,
    /// Identities linked from OpenID providers.
    pub identities: Arc<dyn super::identities::IdentityStore>,
    /// Second factors, recovery codes and login challenges.
    pub second_factors: Arc<dyn super::second_factor::SecondFactorStore>,
    /// TOTP codes and recovery codes.
    pub codes: Arc<dyn super::second_factor::OneTimeCodes>,
    /// `now`.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AuthPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPorts").finish_non_exhaustive()
    }
}

/// An authenticated request's user and token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The account, as stored now (its role may be newer than the token's).
    pub user: User,
    /// The session the token belongs to.
    pub session: SessionId,
    /// The token's id.
    pub token: TokenId,
    /// When the token expires.
    pub expires_at: Timestamp,
}

impl Principal {
    /// Whether the account is an admin.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

/// Why registration failed.
#[derive(Debug, Error)]
pub enum RegisterError {
    /// A field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Another account has the address.
    #[error("the e-mail address is taken")]
    EmailTaken,
    /// Infrastructure failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a login failed.
#[derive(Debug, Error)]
pub enum LoginError {
    /// Unknown address or wrong password: one answer for both.
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    /// Too many failures; try again later.
    #[error("the account is locked")]
    Locked {
        /// How long until it unlocks.
        retry_after: Duration,
    },
    /// The address must be verified first.
    #[error("verify your e-mail address first")]
    EmailNotVerified,
    /// An admin deactivated the account.
    #[error("the account is deactivated")]
    AccountDisabled,
    /// The password was right; the account's second factor completes the
    /// login, with this challenge.
    #[error("a second factor is required")]
    SecondFactorRequired(super::second_factor::IssuedChallenge),
    /// Infrastructure failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a second-factor step failed.
#[derive(Debug, Error)]
pub enum SecondFactorError {
    /// The login challenge is unknown, used or expired: log in again.
    #[error("the login challenge is invalid or expired")]
    InvalidChallenge,
    /// The code or recovery code is wrong or was used already.
    #[error("the code is wrong or was used already")]
    InvalidCode,
    /// The password is wrong.
    #[error("the password is wrong")]
    WrongPassword,
    /// The account has no password its owner knows (made by an OpenID
    /// sign-in): set one through a reset first.
    #[error("the account has no password yet")]
    PasswordNotSet,
    /// Too many wrong passwords or codes: locked for this long.
    #[error("the account is locked")]
    Locked {
        /// Until the lock lifts.
        retry_after: Duration,
    },
    /// The second factor is on already.
    #[error("the second factor is already on")]
    AlreadyEnabled,
    /// The second factor is not on (or there is no enrolment to confirm).
    #[error("the second factor is not on")]
    NotEnabled,
    /// An admin deactivated the account.
    #[error("the account is deactivated")]
    AccountDisabled,
    /// Infrastructure failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a refresh failed.
#[derive(Debug, Error)]
pub enum RefreshError {
    /// Unknown, expired or revoked.
    #[error("invalid refresh token")]
    Invalid,
    /// Already used: the whole session was revoked.
    #[error("refresh token reused; the session was revoked")]
    Reused,
    /// Infrastructure failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an e-mailed token could not be used.
#[derive(Debug, Error)]
pub enum OneTimeError {
    /// Unknown, used or expired.
    #[error("invalid or expired token")]
    InvalidToken,
    /// The new password breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Infrastructure failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a password change failed.
#[derive(Debug, Error)]
pub enum ChangePasswordError {
    /// The current password is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// Too many wrong passwords (here or at login): locked for this long.
    #[error("the account is locked")]
    Locked {
        /// Until the lock lifts.
        retry_after: Duration,
    },
    /// The new password breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Infrastructure failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`AuthService::check_password`] found.
enum PasswordCheck {
    /// Right; `needs_rehash` when the stored hash is below policy.
    Right { needs_rehash: bool },
    /// Wrong, and counted.
    Wrong,
    /// Refused: the account is locked for this long.
    Locked { retry_after: Duration },
}

/// Where a password is checked, as the audit log tells it.
#[derive(Clone, Copy)]
enum CheckPlace {
    Login,
    PasswordChange,
    SecondFactor,
    SecondFactorSetup,
}

impl CheckPlace {
    fn locked(self) -> &'static str {
        match self {
            CheckPlace::Login => "locked",
            CheckPlace::PasswordChange => "locked, at password change",
            CheckPlace::SecondFactor => "locked, at second factor",
            CheckPlace::SecondFactorSetup => "locked, at second-factor settings",
        }
    }

    fn wrong(self) -> &'static str {
        match self {
            CheckPlace::Login => "wrong password",
            CheckPlace::PasswordChange => "wrong current password",
            CheckPlace::SecondFactor => "wrong second-factor code",
            CheckPlace::SecondFactorSetup => "wrong password, at second-factor settings",
        }
    }
}

/// Why a bearer token was not accepted.
#[derive(Debug, Error)]
pub enum AuthError {
    /// The token is invalid, expired or revoked.
    #[error(transparent)]
    Rejected(#[from] TokenRejected),
    /// Infrastructure failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an admin change failed.
#[derive(Debug, Error)]
pub enum AdminError {
    /// No such account.
    #[error("user not found")]
    NotFound,
    /// Infrastructure failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A registration request.
#[derive(Clone, Debug)]
pub struct Registration {
    /// The address, as typed.
    pub email: String,
    /// The password, as typed.
    pub password: Password,
    /// The name to show; the address's local part when absent.
    pub display_name: Option<String>,
}

/// Registration, login, sessions, verification, passwords, administration.
#[derive(Clone)]
pub struct AuthService {
    ports: AuthPorts,
    policy: AuthPolicy,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl AuthService {
    /// Wires the flows to their ports.
    #[must_use]
    pub fn new(ports: AuthPorts, policy: AuthPolicy) -> Self {
        AuthService { ports, policy }
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &AuthPolicy {
        &self.policy
    }

    fn now(&self) -> Timestamp {
        self.ports.clock.now()
    }

    /// Records `event` after the change it reports is stored: a failure to
    /// record it is the audit log's to report (the adapter logs and counts
    /// it), not the caller's, whose change stands.
    async fn audit_after(
        &self,
        event: AuditEvent,
        user: Option<UserId>,
        actor: Option<UserId>,
        context: &RequestContext,
        detail: Option<String>,
    ) {
        let _ = self.audit(event, user, actor, context, detail).await;
    }

    async fn audit(
        &self,
        event: AuditEvent,
        user: Option<UserId>,
        actor: Option<UserId>,
        context: &RequestContext,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        self.ports
            .audit
            .record(AuditEntry {
                at: self.now(),
                event,
                user,
                actor,
                context: context.clone(),
                detail,
            })
            .await
    }

    /// Audits a failed login (or password check) of `user`: why, in `detail`.
    async fn audit_login_failure(
        &self,
        user: UserId,
        context: &RequestContext,
        detail: String,
    ) -> Result<(), StoreError> {
        self.audit(
            AuditEvent::LoginFailed,
            Some(user),
            None,
            context,
            Some(detail),
        )
        .await
    }

    /// Checks a new password against the length rules and the breached list,
    /// with the account's own address and name as words to avoid.
    fn new_password(
        &self,
        field: &str,
        raw: &Password,
        email: &str,
        name: &str,
        errors: &mut Collector,
    ) -> Option<Password> {
        let local = email.split('@').next().unwrap_or_default();
        let inputs = [email, local, name];
        errors.check(
            field,
            self.policy.passwords.new_password(raw.expose(), |pw| {
                self.ports.strength.too_common(pw, &inputs)
            }),
        )
    }
}

#[cfg(test)]
mod tests;
