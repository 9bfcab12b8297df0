//! Ports of the account flows: hashing, tokens, sessions, audit, limits.

use std::time::Duration as StdDuration;

use async_trait::async_trait;

use super::password::Password;
use super::tokens::{
    AccessClaims, AuditCursor, AuditEntry, AuditFilter, AuditRecord, OneTimePurpose, SecretToken,
    TokenDigest, TokenRejected,
};
use crate::ids::{SessionId, TokenId, UserId};
use crate::item::Timestamp;
use crate::outbox::NewOutboxMail;
use crate::ports::StoreError;
use crate::user::{PasswordHash, User};

/// The outcome of checking a password against a hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The password matches; `needs_rehash` when the hash is below the
    /// current parameters and should be replaced now that the password is known.
    Valid {
        /// Whether to re-hash.
        needs_rehash: bool,
    },
    /// It does not.
    Invalid,
}

/// Password hashing (argon2id). Slow by design: implementations run it off
/// the async workers and bound how many run at once.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password with the current parameters.
    ///
    /// # Errors
    /// [`StoreError::Unknown`] when hashing fails (it should not).
    async fn hash(&self, password: &Password) -> Result<PasswordHash, StoreError>;

    /// Checks `password` against `hash`, or, when `hash` is `None` (an unknown
    /// account), against a dummy hash so that both cost the same time.
    ///
    /// # Errors
    /// [`StoreError::Unknown`] when hashing fails; a malformed stored hash is
    /// [`StoreError::Integrity`].
    async fn verify(
        &self,
        password: &Password,
        hash: Option<PasswordHash>,
    ) -> Result<Verification, StoreError>;
}

/// The breached-password and guessability check for new passwords.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait PasswordStrength: Send + Sync {
    /// Whether `password` is common, breached or built from `user_inputs`
    /// (the account's address and name).
    #[allow(clippy::needless_lifetimes)] // mockall cannot mock the elided form
    fn too_common<'a>(&self, password: &str, user_inputs: &[&'a str]) -> bool;
}

/// Signed access tokens (JWT).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait AccessTokens: Send + Sync {
    /// Signs `claims` as an access token.
    ///
    /// # Errors
    /// [`StoreError::Unknown`] when signing fails.
    fn issue(&self, claims: &AccessClaims) -> Result<String, StoreError>;

    /// Verifies a presented token at `now`: algorithm, signature, issuer,
    /// audience, kind and expiry (with at most a few seconds of leeway).
    ///
    /// # Errors
    /// [`TokenRejected`] naming why it is not accepted.
    fn verify(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenRejected>;
}

/// Opaque secrets (refresh, verification and reset tokens): random, handed out
/// once, stored only as digests.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait SecretTokens: Send + Sync {
    /// A new 256-bit random token and its digest.
    fn generate(&self) -> SecretToken;
    /// The digest of a presented token, to look it up.
    fn digest(&self, plain: &str) -> TokenDigest;
    /// Whether `plain` has the shape of a token [`generate`](Self::generate)
    /// hands out, so that garbage is refused without a lookup.
    fn well_formed(&self, plain: &str) -> bool;
}

/// Revoked access tokens, checked on every request before anything else.
/// A fast path only: a revoked session is refused by [`SessionStore`] too, so
/// an unreachable list never lets a revoked token through.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RevocationList: Send + Sync {
    /// Revokes `token` until it expires anyway at `expires_at`.
    ///
    /// # Errors
    /// When the list is unreachable (the caller carries on: see above).
    async fn revoke(&self, token: TokenId, expires_at: Timestamp) -> anyhow::Result<()>;

    /// Whether `token` was revoked.
    ///
    /// # Errors
    /// When the list is unreachable.
    async fn is_revoked(&self, token: TokenId) -> anyhow::Result<bool>;
}

/// A refresh token to store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// Its digest.
    pub digest: TokenDigest,
    /// Its session (family).
    pub session: SessionId,
    /// Its user.
    pub user: UserId,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// What happened to a presented refresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// It was current: it is now spent and its successor is stored.
    Rotated {
        /// Its session.
        session: SessionId,
        /// Its user.
        user: UserId,
    },
    /// It had already been rotated: someone replayed it.
    Reused {
        /// Its session, to revoke.
        session: SessionId,
        /// Its user.
        user: UserId,
    },
    /// Unknown, expired, or its session was revoked.
    Invalid,
}

/// What [`SessionStore::start_session`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStart {
    /// The session and its first refresh token are stored.
    Started,
    /// Nothing was stored: the password was replaced or the account
    /// deactivated after the login checked it.
    Stale,
}

/// Sessions (refresh-token families).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Starts a session with its first refresh token, provided the account
    /// is still active and its stored hash is still `verified`, the one
    /// the login checked the password against. Decided atomically with a
    /// concurrent reset, change or deactivation: either the session is
    /// stored first and they revoke it, or they commit first and it is
    /// [`SessionStart::Stale`].
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn start_session(
        &self,
        first: NewRefreshToken,
        verified: &PasswordHash,
    ) -> Result<SessionStart, StoreError>;

    /// Atomically spends `presented` and stores `successor` in the same
    /// session. Of two concurrent rotations of one token exactly one is
    /// [`Rotation::Rotated`]; the other is [`Rotation::Reused`].
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn rotate_refresh_token(
        &self,
        presented: TokenDigest,
        successor: TokenDigest,
        now: Timestamp,
        successor_expires_at: Timestamp,
    ) -> Result<Rotation, StoreError>;

    /// Spends every live refresh token of `successor.session` and stores
    /// `successor` (after a password change, the current session continues
    /// with a new token only).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn replace_refresh_tokens(
        &self,
        successor: NewRefreshToken,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Revokes one session: its refresh tokens and access tokens stop working.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn revoke_session(&self, session: SessionId, at: Timestamp) -> Result<(), StoreError>;

    /// Revokes every session of `user` but `except`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn revoke_user_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// The user of `session` when the session is not revoked and the user is
    /// active; `None` otherwise. Checked on every authenticated request.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn active_session_user(&self, session: SessionId) -> Result<Option<User>, StoreError>;

    /// The session of a live (unspent, unexpired) refresh token, without
    /// using it: proves that a request comes from the browser holding that
    /// session's refresh cookie.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn session_of_refresh_token(
        &self,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<SessionId>, StoreError>;

    /// Whether `session` can still be renewed at `now`: it holds a refresh
    /// token that is neither spent nor expired. A session that cannot is
    /// over even if nobody revoked it.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn session_renewable(
        &self,
        session: SessionId,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}

/// A single-use e-mailed token to store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOneTimeToken {
    /// Its digest.
    pub digest: TokenDigest,
    /// Its user.
    pub user: UserId,
    /// What it is for.
    pub purpose: OneTimePurpose,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// A single-use token and the mail that carries its link, stored together
/// (the mail in the outbox): a link is mailed if and only if it exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLink {
    /// The token, by its digest.
    pub token: NewOneTimeToken,
    /// The mail with the token in its link.
    pub mail: NewOutboxMail,
}

/// How many single-use tokens (so e-mails) an account may be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IssueCap {
    /// At most this many…
    pub at_most: u32,
    /// …issued since this moment.
    pub since: Timestamp,
}

/// Single-use tokens for e-mail verification and password reset.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OneTimeTokenStore: Send + Sync {
    /// Stores a token and its mail unless its user was issued
    /// `cap.at_most` tokens (of any purpose) since `cap.since`; `false`
    /// when the cap refused it. Counting and storing are one step:
    /// concurrent requests for one account never overshoot the cap.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn issue_one_time_token(&self, link: NewLink, cap: IssueCap) -> Result<bool, StoreError>;

    /// The user of a live (unused, unexpired) token for `purpose`, without using it.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn peek_one_time_token(
        &self,
        digest: TokenDigest,
        purpose: OneTimePurpose,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError>;

    /// Uses a live token for `purpose`: of two concurrent uses only one gets
    /// the user; a used, expired or unknown token gives `None`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn consume_one_time_token(
        &self,
        digest: TokenDigest,
        purpose: OneTimePurpose,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError>;
}

/// What a ticket opens: a ticket issued for one never works for the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TicketPurpose {
    /// A WebSocket of personal notifications.
    Socket,
    /// A flow linking an OpenID identity to the ticket's account.
    LinkIdentity,
}

impl TicketPurpose {
    /// The purpose as stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TicketPurpose::Socket => "socket",
            TicketPurpose::LinkIdentity => "link",
        }
    }
}

/// Tickets: single-use, short-lived, session-bound, stored as digests.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Stores a ticket for `purpose` issued in `session`, valid until
    /// `expires_at`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn issue_ticket(
        &self,
        digest: TokenDigest,
        purpose: TicketPurpose,
        session: SessionId,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Uses a ticket for `purpose`: of two concurrent redemptions only one
    /// gets its session; an unknown, used or expired ticket, or one issued
    /// for another purpose, gives `None`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn redeem_ticket(
        &self,
        digest: TokenDigest,
        purpose: TicketPurpose,
        now: Timestamp,
    ) -> Result<Option<SessionId>, StoreError>;

    /// Forgets tickets that expired before `now` unused; returns how many.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn purge_expired_tickets(&self, now: Timestamp) -> Result<u64, StoreError>;
}

/// The audit log.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an entry.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn record(&self, entry: AuditEntry) -> Result<(), StoreError>;

    /// Up to `limit` entries that pass `filter`, newest first, after `after`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn audit_trail(
        &self,
        filter: AuditFilter,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}

/// A rate limit: at most `max` hits per sliding `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Hits allowed per window.
    pub max: u32,
    /// The window.
    pub window: StdDuration,
}

/// The answer to one hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the hit is allowed (and was counted).
    pub allowed: bool,
    /// The limit.
    pub limit: u32,
    /// Hits left in the window after this one.
    pub remaining: u32,
    /// Until the oldest counted hit leaves the window (a slot frees up).
    pub reset_after: StdDuration,
}

/// Sliding-window rate limiting shared by all instances.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts a hit on `key` under `limit`. Never fails: an implementation
    /// that loses its shared store falls back to limiting on its own.
    async fn hit(&self, key: &str, limit: RateLimit) -> RateDecision;
}
