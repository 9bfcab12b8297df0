//! A second factor for password accounts: time-based one-time codes
//! (RFC 6238) from an authenticator app, and single-use recovery codes for
//! when the app is lost.
//!
//! An account enrols by proving its password, receiving a new secret, and
//! confirming it with a first code; only then is the factor on, and ten
//! recovery codes are shown once (stored as digests). A login of an
//! enrolled account answers with a short-lived challenge instead of a
//! session; the challenge and a code complete it. Each code is accepted
//! once: the store keeps the last time step used and takes only later ones,
//! atomically, so two requests with one code cannot both pass. Wrong codes
//! count toward the login lockout like wrong passwords, and a right
//! password alone does not clear the count.
//!
//! The codes themselves (HMAC, base32, the `otpauth://` URI) are the
//! [`OneTimeCodes`] port's; the secrets, steps, recovery codes and
//! challenges are the [`SecondFactorStore`]'s.

use std::fmt;

use async_trait::async_trait;
use chrono::Duration;
use zeroize::Zeroizing;

use super::tokens::TokenDigest;
use crate::ids::UserId;
use crate::item::Timestamp;
use crate::ports::StoreError;
use crate::user::PasswordHash;

/// How long a login's challenge stays open for its code.
pub const CHALLENGE_LIFETIME: Duration = Duration::minutes(5);

/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;

/// A shared TOTP secret (kept zeroed on drop, never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    /// Wraps secret bytes.
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        TotpSecret(Zeroizing::new(bytes))
    }

    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// A time step of RFC 6238 (30 s by default): the unit of replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TotpStep(pub i64);

/// What an authenticator app needs to start producing codes.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpEnrolment {
    /// The secret in base32, for typing in.
    pub secret: Zeroizing<String>,
    /// The `otpauth://totp/...` URI, for a QR code.
    pub uri: Zeroizing<String>,
}

impl fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrolment(..)")
    }
}

/// Generates and checks codes: RFC 6238 over HMAC-SHA1, six digits, 30 s
/// steps (what every authenticator app understands).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait OneTimeCodes: Send + Sync {
    /// A new random secret.
    fn new_secret(&self) -> TotpSecret;

    /// What to show for `secret`, labelled with `account` (the address).
    ///
    /// # Errors
    /// When the URI cannot be built (an unusable label).
    fn enrolment(&self, secret: &TotpSecret, account: &str) -> Result<TotpEnrolment, StoreError>;

    /// The step whose code `code` is, when it is one of `secret` within a
    /// step of `now` (clocks drift).
    fn check(&self, secret: &TotpSecret, code: &str, now: Timestamp) -> Option<TotpStep>;

    /// `count` new recovery codes, as shown to their owner.
    fn recovery_codes(&self, count: usize) -> Vec<Zeroizing<String>>;

    /// The digest a recovery code is stored as, however it was typed
    /// (case, spaces and dashes do not matter).
    fn recovery_digest(&self, code: &str) -> TokenDigest;
}

/// An account's TOTP secret as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpCredential {
    /// The secret.
    pub secret: TotpSecret,
    /// Whether a first code confirmed it (the factor is on).
    pub confirmed: bool,
}

/// A login waiting for its second factor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewChallenge {
    /// The digest of the challenge handed out.
    pub digest: TokenDigest,
    /// Whose login it is.
    pub user: UserId,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it lapses.
    pub expires_at: Timestamp,
    /// The hash the password was checked against: no challenge opens once
    /// a reset or change replaced it (or the account was deactivated).
    pub verified: PasswordHash,
}

/// Where second factors, their recovery codes and open challenges live.
/// A password reset or change closes the account's open challenges in the
/// same transaction (the password they followed is no longer the one).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SecondFactorStore: Send + Sync {
    /// Stores `secret` as `user`'s unconfirmed one, replacing an earlier
    /// unconfirmed one; `false` when a confirmed one exists.
    async fn save_unconfirmed_totp(
        &self,
        user: UserId,
        secret: &TotpSecret,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// `user`'s secret, confirmed or not.
    async fn totp(&self, user: UserId) -> Result<Option<TotpCredential>, StoreError>;

    /// Confirms `user`'s unconfirmed secret with the code of `step` (which
    /// is used up), turns the factor on and stores `recovery` as the
    /// recovery codes; `false` when there was no unconfirmed secret.
    async fn confirm_totp(
        &self,
        user: UserId,
        step: TotpStep,
        recovery: Vec<TokenDigest>,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Uses the code of `step`: `true` only when it is later than every
    /// step used before (so a code is never accepted twice).
    async fn use_totp_step(&self, user: UserId, step: TotpStep) -> Result<bool, StoreError>;

    /// Uses a recovery code: `true` only the first time for an unused one.
    async fn use_recovery_code(
        &self,
        user: UserId,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// How many unused recovery codes `user` has.
    async fn recovery_codes_left(&self, user: UserId) -> Result<u32, StoreError>;

    /// Turns the factor off: the secret, recovery codes and open
    /// challenges go. `false` when it was not on.
    async fn remove_totp(&self, user: UserId) -> Result<bool, StoreError>;

    /// Opens a login challenge, unless the account's password hash is no
    /// longer `challenge.verified` or the account was deactivated meanwhile
    /// (`false`).
    async fn open_challenge(&self, challenge: NewChallenge) -> Result<bool, StoreError>;

    /// Whose login the challenge `digest` is, while it is open.
    async fn challenge_user(
        &self,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError>;

    /// Closes the challenge: `true` for the one request that closed it
    /// while open.
    async fn close_challenge(
        &self,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}

/// What completes a challenged login, or proves the factor to disable it.
#[derive(Clone, PartialEq, Eq)]
pub enum SecondFactorProof {
    /// A code from the authenticator app.
    Code(String),
    /// One of the recovery codes.
    RecoveryCode(Zeroizing<String>),
}

impl fmt::Debug for SecondFactorProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecondFactorProof::Code(_) => f.write_str("Code(..)"),
            SecondFactorProof::RecoveryCode(_) => f.write_str("RecoveryCode(..)"),
        }
    }
}

/// Where an account's second factor stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecondFactorStatus {
    /// Whether it is on.
    pub enabled: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
}

/// A challenge handed to a login that needs its second factor.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedChallenge {
    /// The challenge, for `POST /auth/mfa`.
    pub challenge: Zeroizing<String>,
    /// How long it stays open.
    pub expires_in: Duration,
}

impl fmt::Debug for IssuedChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedChallenge")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}
