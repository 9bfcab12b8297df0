//! The account flows of docs/spec/api.md, written against the ports only.

use std::sync::Arc;

use chrono::Duration;
use thiserror::Error;

use super::lockout::{FailedAttempt, LockoutPolicy, LoginFailures};
use super::password::{Password, PasswordPolicy};
use super::ports::{
    AccessTokens, AuditLog, IssueCap, Mailer, NewOneTimeToken, NewRefreshToken, OneTimeTokenStore,
    PasswordHasher, PasswordStrength, RevocationList, Rotation, SecretTokens, SessionStart,
    SessionStore, Verification,
};
use super::tokens::{
    AccessClaims, AuditEntry, AuditEvent, LinkMail, OneTimePurpose, RequestContext, SecretToken,
    TokenLifetimes, TokenPair, TokenRejected,
};
use crate::email::Email;
use crate::ids::{SessionId, TokenId, UserId};
use crate::item::Timestamp;
use crate::ports::{
    Clock, CreateUserError, PasswordReplacement, ReplacePasswordError, StoreError, UserStore,
};
use crate::user::{
    Credentials, DisplayName, NewUser, PasswordHash, Role, User, UserChanges, UserCursor,
};
use crate::validation::{Collector, ValidationErrors};

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
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
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
}

impl CheckPlace {
    fn locked(self) -> &'static str {
        match self {
            CheckPlace::Login => "locked",
            CheckPlace::PasswordChange => "locked, at password change",
        }
    }

    fn wrong(self) -> &'static str {
        match self {
            CheckPlace::Login => "wrong password",
            CheckPlace::PasswordChange => "wrong current password",
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

    /// Checks `password` against `credentials`, lockout included: a locked
    /// account is refused without checking; a wrong password is counted,
    /// together with the lock it reaches, unless concurrent failures locked
    /// the account meanwhile; a right one then re-reads the lock (a guess
    /// that happens to be right after the lock tells nothing) and clears the
    /// count. Every refusal is audited, with `place` in its detail.
    async fn check_password(
        &self,
        credentials: &Credentials,
        password: &Password,
        now: Timestamp,
        context: &RequestContext,
        place: CheckPlace,
    ) -> Result<PasswordCheck, StoreError> {
        let user = credentials.user.id;
        let locked = |retry_after| PasswordCheck::Locked { retry_after };
        if let Some(retry_after) = credentials.failures.remaining_lock(now) {
            self.audit_login_failure(user, context, place.locked().into())
                .await?;
            return Ok(locked(retry_after));
        }
        let verification = self
            .ports
            .hasher
            .verify(password, Some(credentials.password_hash.clone()))
            .await?;
        let Verification::Valid { needs_rehash } = verification else {
            return match self
                .ports
                .users
                .record_wrong_password(user, now, self.policy.lockout)
                .await?
            {
                FailedAttempt::AlreadyLocked { retry_after } => {
                    self.audit_login_failure(user, context, "locked meanwhile".into())
                        .await?;
                    Ok(locked(retry_after))
                }
                FailedAttempt::Counted {
                    failures,
                    locks_for,
                } => {
                    self.audit_login_failure(user, context, place.wrong().into())
                        .await?;
                    if let Some(lock) = locks_for {
                        let detail =
                            format!("{failures} failures, locked for {} min", lock.num_minutes());
                        self.audit(
                            AuditEvent::AccountLocked,
                            Some(user),
                            None,
                            context,
                            Some(detail),
                        )
                        .await?;
                    }
                    Ok(PasswordCheck::Wrong)
                }
            };
        };
        let failures = self
            .ports
            .users
            .credentials_by_id(user)
            .await?
            .map(|c| c.failures)
            .unwrap_or_default();
        if let Some(retry_after) = failures.remaining_lock(now) {
            self.audit_login_failure(user, context, "locked meanwhile".into())
                .await?;
            return Ok(locked(retry_after));
        }
        if failures != LoginFailures::default() {
            self.ports.users.clear_login_failures(user).await?;
        }
        Ok(PasswordCheck::Right { needs_rehash })
    }

    async fn issue_one_time(&self, user: &User, purpose: OneTimePurpose) -> Result<(), StoreError> {
        let now = self.now();
        let token = self.ports.secrets.generate();
        let issued = self
            .ports
            .one_time
            .issue_one_time_token(
                NewOneTimeToken {
                    digest: token.digest,
                    user: user.id,
                    purpose,
                    issued_at: now,
                    expires_at: now + self.policy.lifetimes.of(purpose),
                },
                IssueCap {
                    at_most: self.policy.mails_per_account_per_hour,
                    since: now - Duration::hours(1),
                },
            )
            .await?;
        if !issued {
            return Ok(());
        }
        let path = match purpose {
            OneTimePurpose::VerifyEmail => "verify-email",
            OneTimePurpose::ResetPassword => "reset-password",
        };
        // The mailer queues; a failure to queue is logged by the adapter and
        // must not tell the caller whether the address exists.
        let _ = self
            .ports
            .mailer
            .send(LinkMail {
                to: user.email.clone(),
                name: user.display_name.clone(),
                purpose,
                link: format!(
                    "{base}/{path}?token={token}",
                    base = self.policy.public_url,
                    token = token.plain.as_str(),
                ),
                valid_for: self.policy.lifetimes.of(purpose),
            })
            .await;
        Ok(())
    }

    fn token_pair(
        &self,
        user: &User,
        session: SessionId,
        refresh: &SecretToken,
        now: Timestamp,
    ) -> Result<TokenPair, StoreError> {
        let lifetimes = self.policy.lifetimes;
        let claims = AccessClaims {
            user: user.id,
            role: user.role,
            token: TokenId::generate(),
            session,
            issued_at: now,
            expires_at: now + lifetimes.access,
        };
        Ok(TokenPair {
            access_token: self.ports.access.issue(&claims)?,
            access_expires_in: lifetimes.access,
            refresh_token: refresh.plain.clone(),
            refresh_expires_in: lifetimes.refresh,
        })
    }

    fn new_refresh(
        &self,
        session: SessionId,
        user: UserId,
        now: Timestamp,
    ) -> (SecretToken, NewRefreshToken) {
        let token = self.ports.secrets.generate();
        let record = NewRefreshToken {
            digest: token.digest,
            session,
            user,
            issued_at: now,
            expires_at: now + self.policy.lifetimes.refresh,
        };
        (token, record)
    }

    /// A new session for `user`, unless the account's stored hash is no
    /// longer `verified` or the account was deactivated meanwhile (`None`).
    async fn start_session(
        &self,
        user: &User,
        verified: &PasswordHash,
    ) -> Result<Option<TokenPair>, StoreError> {
        let now = self.now();
        let (token, record) = self.new_refresh(SessionId::generate(), user.id, now);
        match self.ports.sessions.start_session(record, verified).await? {
            SessionStart::Started => {
                Ok(Some(self.token_pair(user, record.session, &token, now)?))
            }
            SessionStart::Stale => Ok(None),
        }
    }

    /// Registers an account and e-mails a verification link.
    ///
    /// # Errors
    /// [`RegisterError::Invalid`] with every broken rule,
    /// [`RegisterError::EmailTaken`] when the address has an account.
    pub async fn register(&self, registration: Registration) -> Result<User, RegisterError> {
        let mut errors = Collector::default();
        let email = errors.check("email", Email::parse(&registration.email));
        let name = match registration.display_name.as_deref() {
            Some(raw) => errors.check("display_name", DisplayName::parse(raw)),
            None => email.as_ref().map(DisplayName::from_email),
        };
        let password = self.new_password(
            "password",
            &registration.password,
            email
                .as_ref()
                .map_or(registration.email.as_str(), Email::as_str),
            name.as_ref().map_or("", DisplayName::as_str),
            &mut errors,
        );
        let (email, name, password) = errors.finish((|| Some((email?, name?, password?)))())?;

        let hash = self.ports.hasher.hash(&password).await?;
        let user = self
            .ports
            .users
            .insert_user(NewUser {
                id: UserId::generate(),
                email,
                display_name: name.into_string(),
                password_hash: hash,
                role: Role::User,
                email_verified: false,
                created_at: self.now(),
            })
            .await
            .map_err(|e| match e {
                CreateUserError::EmailTaken => RegisterError::EmailTaken,
                CreateUserError::Store(e) => RegisterError::Store(e),
            })?;
        self.issue_one_time(&user, OneTimePurpose::VerifyEmail)
            .await?;
        Ok(user)
    }

    /// Creates an account without the web flow (the `admin create-user` command).
    ///
    /// # Errors
    /// As [`AuthService::register`].
    pub async fn create_user(
        &self,
        email: &str,
        password: Password,
        role: Role,
        verified: bool,
    ) -> Result<User, RegisterError> {
        let mut errors = Collector::default();
        let email = errors.check("email", Email::parse(email));
        let name = email.as_ref().map(DisplayName::from_email);
        let password = self.new_password(
            "password",
            &password,
            email.as_ref().map_or("", Email::as_str),
            name.as_ref().map_or("", DisplayName::as_str),
            &mut errors,
        );
        let (email, name, password) = errors.finish((|| Some((email?, name?, password?)))())?;
        let hash = self.ports.hasher.hash(&password).await?;
        self.ports
            .users
            .insert_user(NewUser {
                id: UserId::generate(),
                email,
                display_name: name.into_string(),
                password_hash: hash,
                role,
                email_verified: verified,
                created_at: self.now(),
            })
            .await
            .map_err(|e| match e {
                CreateUserError::EmailTaken => RegisterError::EmailTaken,
                CreateUserError::Store(e) => RegisterError::Store(e),
            })
    }

    /// Proves an address with the token from its verification e-mail.
    ///
    /// # Errors
    /// [`OneTimeError::InvalidToken`] for an unknown, used or expired token.
    pub async fn verify_email(&self, token: &str) -> Result<User, OneTimeError> {
        let now = self.now();
        let digest = self.ports.secrets.digest(token);
        let user = self
            .ports
            .one_time
            .consume_one_time_token(digest, OneTimePurpose::VerifyEmail, now)
            .await?
            .ok_or(OneTimeError::InvalidToken)?;
        self.ports
            .users
            .mark_email_verified(user, now)
            .await?
            .ok_or(OneTimeError::InvalidToken)
    }

    /// Sends a new verification link when the address has an unverified
    /// account; says nothing either way.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn resend_verification(&self, email: &str) -> Result<(), StoreError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        match self.ports.users.user_by_email(&email).await? {
            Some(user) if user.is_active && !user.email_verified => {
                self.issue_one_time(&user, OneTimePurpose::VerifyEmail)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// Logs in: one answer for an unknown address and a wrong password, in the
    /// same time; lockout after repeated failures.
    ///
    /// # Errors
    /// [`LoginError`] naming why.
    pub async fn login(
        &self,
        email: &str,
        password: &Password,
        context: &RequestContext,
    ) -> Result<TokenPair, LoginError> {
        let now = self.now();
        let credentials = match Email::parse(email) {
            Ok(email) => self.ports.users.credentials_by_email(&email).await?,
            Err(_) => None,
        };
        let Some(credentials) = credentials else {
            self.ports.hasher.verify(password, None).await?;
            self.audit(
                AuditEvent::LoginFailed,
                None,
                None,
                context,
                Some("unknown account".into()),
            )
            .await?;
            return Err(LoginError::InvalidCredentials);
        };
        let user = &credentials.user;
        let needs_rehash = match self
            .check_password(&credentials, password, now, context, CheckPlace::Login)
            .await?
        {
            PasswordCheck::Right { needs_rehash } => needs_rehash,
            PasswordCheck::Wrong => return Err(LoginError::InvalidCredentials),
            PasswordCheck::Locked { retry_after } => {
                return Err(LoginError::Locked { retry_after });
            }
        };
        if !user.is_active {
            return Err(LoginError::AccountDisabled);
        }
        if self.policy.require_verified_email && !user.email_verified {
            return Err(LoginError::EmailNotVerified);
        }
        // The hash the password was checked against: a reset, change or
        // deactivation that commits while it was being checked must win.
        let mut verified = credentials.password_hash.clone();
        if needs_rehash {
            let stronger = self.ports.hasher.hash(password).await?;
            if self
                .ports
                .users
                .upgrade_password_hash(user.id, &verified, stronger.clone(), now)
                .await?
            {
                verified = stronger;
            }
        }
        let Some(pair) = self.start_session(user, &verified).await? else {
            self.audit_login_failure(user.id, context, "password replaced meanwhile".into())
                .await?;
            return Err(LoginError::InvalidCredentials);
        };
        self.audit(
            AuditEvent::LoginSucceeded,
            Some(user.id),
            None,
            context,
            None,
        )
        .await?;
        Ok(pair)
    }

    /// Rotates a refresh token. A token presented a second time revokes its
    /// whole session.
    ///
    /// # Errors
    /// [`RefreshError::Invalid`] or [`RefreshError::Reused`].
    pub async fn refresh(
        &self,
        presented: &str,
        context: &RequestContext,
    ) -> Result<TokenPair, RefreshError> {
        let now = self.now();
        let presented = self.ports.secrets.digest(presented);
        let successor = self.ports.secrets.generate();
        let rotation = self
            .ports
            .sessions
            .rotate_refresh_token(
                presented,
                successor.digest,
                now,
                now + self.policy.lifetimes.refresh,
            )
            .await?;
        match rotation {
            Rotation::Rotated { session, user } => {
                let Some(user) = self
                    .ports
                    .users
                    .user_by_id(user)
                    .await?
                    .filter(|u| u.is_active)
                else {
                    self.ports.sessions.revoke_session(session, now).await?;
                    return Err(RefreshError::Invalid);
                };
                Ok(self.token_pair(&user, session, &successor, now)?)
            }
            Rotation::Reused { session, user } => {
                self.ports.sessions.revoke_session(session, now).await?;
                self.audit(
                    AuditEvent::TokenReused,
                    Some(user),
                    None,
                    context,
                    Some(format!("session {session} revoked")),
                )
                .await?;
                Err(RefreshError::Reused)
            }
            Rotation::Invalid => Err(RefreshError::Invalid),
        }
    }

    /// Checks a bearer token: signature and claims, then the blacklist and
    /// that its session and user are still live (so revocation holds even
    /// when the blacklist is unreachable).
    ///
    /// # Errors
    /// [`AuthError::Rejected`] naming why it is refused.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        let claims = self.ports.access.verify(bearer, self.now())?;
        // Both checks at once: the request waits for one round trip, not two.
        let (revoked, user) = futures_util::future::join(
            self.ports.revocations.is_revoked(claims.token),
            self.ports.sessions.active_session_user(claims.session),
        )
        .await;
        if let Ok(true) = revoked {
            return Err(TokenRejected::Revoked.into());
        }
        let user = user?
            .filter(|user| user.id == claims.user)
            .ok_or(TokenRejected::Revoked)?;
        Ok(Principal {
            user,
            session: claims.session,
            token: claims.token,
            expires_at: claims.expires_at,
        })
    }

    /// Ends the principal's session: the access token is blacklisted and the
    /// session (with its refresh tokens) revoked.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn logout(&self, principal: &Principal) -> Result<(), StoreError> {
        self.ports
            .sessions
            .revoke_session(principal.session, self.now())
            .await?;
        // The session revocation already refuses the token; the blacklist
        // only makes the refusal cheaper, so its failure is not fatal.
        let _ = self
            .ports
            .revocations
            .revoke(principal.token, principal.expires_at)
            .await;
        Ok(())
    }

    /// Ends every session of the principal's account.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn logout_all(
        &self,
        principal: &Principal,
        context: &RequestContext,
    ) -> Result<(), StoreError> {
        self.ports
            .sessions
            .revoke_user_sessions(principal.user.id, None, self.now())
            .await?;
        let _ = self
            .ports
            .revocations
            .revoke(principal.token, principal.expires_at)
            .await;
        self.audit(
            AuditEvent::LoggedOutEverywhere,
            Some(principal.user.id),
            None,
            context,
            None,
        )
        .await
    }

    /// E-mails a reset link when the address has an active account; says
    /// nothing either way. A locked account may reset its password.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn forgot_password(&self, email: &str) -> Result<(), StoreError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        match self.ports.users.user_by_email(&email).await? {
            Some(user) if user.is_active => {
                self.issue_one_time(&user, OneTimePurpose::ResetPassword)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// Sets a new password with a reset link's token, unlocks the account and
    /// revokes every session and every other reset link. The token is used
    /// only when the password is acceptable, so a refused password does not
    /// waste the link.
    ///
    /// # Errors
    /// [`OneTimeError::InvalidToken`] or [`OneTimeError::Invalid`].
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &Password,
        context: &RequestContext,
    ) -> Result<(), OneTimeError> {
        let now = self.now();
        let digest = self.ports.secrets.digest(token);
        let purpose = OneTimePurpose::ResetPassword;
        let owner = self
            .ports
            .one_time
            .peek_one_time_token(digest, purpose, now)
            .await?
            .ok_or(OneTimeError::InvalidToken)?;
        let user = self
            .ports
            .users
            .user_by_id(owner)
            .await?
            .ok_or(OneTimeError::InvalidToken)?;
        let mut errors = Collector::default();
        let password = self.new_password(
            "new_password",
            new_password,
            user.email.as_str(),
            &user.display_name,
            &mut errors,
        );
        let password = errors.finish(password)?;
        let hash = self.ports.hasher.hash(&password).await?;
        // The link is spent with the replacement: of two resets at once,
        // with this link or another of the account's, one wins.
        self.ports
            .users
            .replace_password(PasswordReplacement {
                user: owner,
                hash,
                at: now,
                keep_session: None,
                link: Some(digest),
            })
            .await
            .map_err(|err| match err {
                ReplacePasswordError::LinkSpent => OneTimeError::InvalidToken,
                ReplacePasswordError::Store(err) => OneTimeError::Store(err),
            })?;
        self.audit(AuditEvent::PasswordReset, Some(owner), None, context, None)
            .await?;
        Ok(())
    }

    /// Changes the principal's password: the current one must be right. Other
    /// sessions and unused reset links are revoked; this one continues with
    /// new tokens.
    ///
    /// # Errors
    /// [`ChangePasswordError::WrongPassword`] or [`ChangePasswordError::Invalid`].
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &Password,
        new_password: &Password,
        context: &RequestContext,
    ) -> Result<TokenPair, ChangePasswordError> {
        let now = self.now();
        let user = &principal.user;
        // A new password of the wrong length is refused first: the request
        // is wrong whatever the current password, and is not a guess. The
        // costlier strength check waits until the caller proved the
        // current password.
        let mut errors = Collector::default();
        errors.check(
            "new_password",
            self.policy.passwords.check_length(new_password.expose()),
        );
        errors.finish(Some(()))?;
        let credentials = self
            .ports
            .users
            .credentials_by_id(user.id)
            .await?
            .ok_or(ChangePasswordError::WrongPassword)?;
        // Guessing the password here is guessing it at login: the same
        // count, the same lock.
        match self
            .check_password(
                &credentials,
                current,
                now,
                context,
                CheckPlace::PasswordChange,
            )
            .await?
        {
            PasswordCheck::Right { .. } => {}
            PasswordCheck::Wrong => return Err(ChangePasswordError::WrongPassword),
            PasswordCheck::Locked { retry_after } => {
                return Err(ChangePasswordError::Locked { retry_after });
            }
        }
        let mut errors = Collector::default();
        let password = self.new_password(
            "new_password",
            new_password,
            user.email.as_str(),
            &user.display_name,
            &mut errors,
        );
        let password = errors.finish(password)?;
        let hash = self.ports.hasher.hash(&password).await?;
        // A reset link mailed before would undo the change: it dies too.
        self.ports
            .users
            .replace_password(PasswordReplacement {
                user: user.id,
                hash,
                at: now,
                keep_session: Some(principal.session),
                link: None,
            })
            .await
            .map_err(|err| match err {
                ReplacePasswordError::Store(err) => err,
                ReplacePasswordError::LinkSpent => {
                    StoreError::Integrity("a change spent a reset link it was not given".into())
                }
            })?;
        let (token, record) = self.new_refresh(principal.session, user.id, now);
        self.ports
            .sessions
            .replace_refresh_tokens(record, now)
            .await?;
        self.audit(
            AuditEvent::PasswordChanged,
            Some(user.id),
            None,
            context,
            None,
        )
        .await?;
        Ok(self.token_pair(user, principal.session, &token, now)?)
    }

    /// Changes the principal's display name.
    ///
    /// # Errors
    /// [`AdminError::NotFound`] when the account vanished meanwhile.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        display_name: DisplayName,
    ) -> Result<User, AdminError> {
        let changes = UserChanges {
            display_name: Some(display_name),
            ..UserChanges::default()
        };
        self.ports
            .users
            .update_user(principal.user.id, changes, self.now())
            .await?
            .ok_or(AdminError::NotFound)
    }

    /// One page of accounts, newest first, and where the next page starts.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn list_users(
        &self,
        after: Option<UserCursor>,
        limit: u32,
    ) -> Result<(Vec<User>, Option<UserCursor>), StoreError> {
        let mut users = self.ports.users.list_users(after, limit + 1).await?;
        let has_more = users.len() > limit as usize;
        users.truncate(limit as usize);
        let next = users.last().filter(|_| has_more).map(|last| UserCursor {
            created_at: last.created_at,
            id: last.id,
        });
        Ok((users, next))
    }

    /// An account by id.
    ///
    /// # Errors
    /// [`AdminError::NotFound`] for an unknown id.
    pub async fn user(&self, id: UserId) -> Result<User, AdminError> {
        self.ports
            .users
            .user_by_id(id)
            .await?
            .ok_or(AdminError::NotFound)
    }

    /// An admin changes an account's role or activation. Deactivating revokes
    /// every session at once; each change is audited.
    ///
    /// # Errors
    /// [`AdminError::NotFound`] for an unknown id.
    pub async fn administer_user(
        &self,
        admin: &Principal,
        id: UserId,
        role: Option<Role>,
        is_active: Option<bool>,
        context: &RequestContext,
    ) -> Result<User, AdminError> {
        let now = self.now();
        let before = self.user(id).await?;
        let changes = UserChanges {
            display_name: None,
            role,
            is_active,
        };
        let after = self
            .ports
            .users
            .update_user(id, changes, now)
            .await?
            .ok_or(AdminError::NotFound)?;
        let actor = Some(admin.user.id);
        if before.role != after.role {
            let detail = format!("{} -> {}", before.role, after.role);
            self.audit(
                AuditEvent::RoleChanged,
                Some(id),
                actor,
                context,
                Some(detail),
            )
            .await?;
        }
        // Whatever `before` said: another admin may have reactivated the
        // account since, and sessions started meanwhile must end too.
        if is_active == Some(false) {
            self.ports
                .sessions
                .revoke_user_sessions(id, None, now)
                .await?;
        }
        if before.is_active != after.is_active {
            let detail = if after.is_active {
                "activated"
            } else {
                "deactivated"
            };
            self.audit(
                AuditEvent::ActivationChanged,
                Some(id),
                actor,
                context,
                Some(detail.into()),
            )
            .await?;
        }
        Ok(after)
    }
}

#[cfg(test)]
mod tests;
