//! Tokens: short-lived signed access tokens, opaque single-use secrets.

use std::fmt;
use std::net::IpAddr;

use chrono::Duration;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::email::Email;
use crate::ids::{SessionId, TokenId, UserId};
use crate::item::Timestamp;
use crate::user::Role;

/// What an access token says. The adapter adds `iss`, `aud` and `typ` and
/// checks them; the domain never sees a token of another kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessClaims {
    /// `sub`: the user.
    pub user: UserId,
    /// `role` at issue time (authorization uses the stored role, which may be newer).
    pub role: Role,
    /// `jti`: this token.
    pub token: TokenId,
    /// `sid`: the session (refresh-token family) it belongs to.
    pub session: SessionId,
    /// `iat`.
    pub issued_at: Timestamp,
    /// `exp`.
    pub expires_at: Timestamp,
}

/// Why a presented access token is not accepted. Clients get one answer for
/// all of them; the variant is for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum TokenRejected {
    /// Not a JWT, or a claim is missing or of the wrong type.
    #[error("malformed token")]
    Malformed,
    /// Signed with another algorithm or key, or altered.
    #[error("bad signature")]
    BadSignature,
    /// Issued for another issuer or audience, or not an access token.
    #[error("not an access token of this service")]
    WrongKind,
    /// Past its expiry (beyond the allowed leeway).
    #[error("expired")]
    Expired,
    /// Logged out, or its session was revoked.
    #[error("revoked")]
    Revoked,
}

/// The SHA-256 digest of an opaque token: what is stored instead of the token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub [u8; 32]);

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenDigest({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

/// A freshly generated opaque token: the plaintext goes to its holder once,
/// only the digest is stored.
#[derive(Clone)]
pub struct SecretToken {
    /// The token as handed out (URL-safe).
    pub plain: Zeroizing<String>,
    /// What is stored.
    pub digest: TokenDigest,
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretToken")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// What a login, refresh or password change hands back.
#[derive(Clone)]
pub struct TokenPair {
    /// The signed access token.
    pub access_token: String,
    /// Its lifetime.
    pub access_expires_in: Duration,
    /// The opaque refresh token.
    pub refresh_token: Zeroizing<String>,
    /// Its lifetime.
    pub refresh_expires_in: Duration,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_expires_in", &self.access_expires_in)
            .finish_non_exhaustive()
    }
}

/// What a single-use e-mailed token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OneTimePurpose {
    /// Proves the address (24 h).
    VerifyEmail,
    /// Sets a new password (1 h).
    ResetPassword,
}

impl OneTimePurpose {
    /// The purpose as stored.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            OneTimePurpose::VerifyEmail => "verify_email",
            OneTimePurpose::ResetPassword => "reset_password",
        }
    }

    /// The purpose stored as `name`, if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [OneTimePurpose::VerifyEmail, OneTimePurpose::ResetPassword]
            .into_iter()
            .find(|purpose| purpose.as_str() == name)
    }
}

/// How long each kind of token lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenLifetimes {
    /// Access tokens: 15 minutes.
    pub access: Duration,
    /// Refresh tokens: 7 days.
    pub refresh: Duration,
    /// E-mail verification: 24 hours.
    pub verify_email: Duration,
    /// Password reset: 1 hour.
    pub reset_password: Duration,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        TokenLifetimes {
            access: Duration::minutes(15),
            refresh: Duration::days(7),
            verify_email: Duration::hours(24),
            reset_password: Duration::hours(1),
        }
    }
}

impl TokenLifetimes {
    /// The lifetime of a one-time token.
    #[must_use]
    pub fn of(&self, purpose: OneTimePurpose) -> Duration {
        match purpose {
            OneTimePurpose::VerifyEmail => self.verify_email,
            OneTimePurpose::ResetPassword => self.reset_password,
        }
    }
}

/// Who made a request, for the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The request id every log line of the request carries.
    pub request_id: Option<String>,
    /// The client's address (after trusted-proxy resolution).
    pub ip: Option<IpAddr>,
    /// The W3C `traceparent` of the request's span, when traces are
    /// exported: what the request causes later (its mail) joins its trace.
    pub trace_parent: Option<String>,
}

/// What the audit log records. Never a password, token or link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditEvent {
    /// A login succeeded.
    LoginSucceeded,
    /// A login failed (wrong password, unknown address, locked).
    LoginFailed,
    /// Repeated failures locked the account.
    AccountLocked,
    /// A rotated refresh token was presented again; its family was revoked.
    TokenReused,
    /// The user changed their password.
    PasswordChanged,
    /// The password was reset through an e-mailed link.
    PasswordReset,
    /// An admin changed the user's role.
    RoleChanged,
    /// An admin activated or deactivated the user.
    ActivationChanged,
    /// The user logged out everywhere.
    LoggedOutEverywhere,
    /// An account was registered (its e-mail not yet verified).
    Registered,
    /// An account proved its e-mail address.
    EmailVerified,
    /// A session was logged out.
    LoggedOut,
    /// An admin listed an item.
    ItemCreated,
    /// An admin cancelled an item.
    ItemCancelled,
    /// An admin edited an item before its first bid (the detail names the
    /// fields).
    ItemEdited,
    /// A sign-in through an OpenID provider succeeded (the detail says
    /// when it created the account).
    OidcLogin,
    /// A sign-in or link through an OpenID provider was refused (the
    /// detail names the provider and why).
    OidcLoginFailed,
    /// An identity was linked to the account.
    OidcLinked,
    /// An identity was unlinked from the account.
    OidcUnlinked,
    /// The account turned its second factor on.
    SecondFactorEnabled,
    /// The account turned its second factor off.
    SecondFactorDisabled,
}

impl AuditEvent {
    /// The event as stored.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            AuditEvent::LoginSucceeded => "login_succeeded",
            AuditEvent::LoginFailed => "login_failed",
            AuditEvent::AccountLocked => "account_locked",
            AuditEvent::TokenReused => "token_reused",
            AuditEvent::PasswordChanged => "password_changed",
            AuditEvent::PasswordReset => "password_reset",
            AuditEvent::RoleChanged => "role_changed",
            AuditEvent::ActivationChanged => "activation_changed",
            AuditEvent::LoggedOutEverywhere => "logged_out_everywhere",
            AuditEvent::Registered => "registered",
            AuditEvent::EmailVerified => "email_verified",
            AuditEvent::LoggedOut => "logged_out",
            AuditEvent::ItemCreated => "item_created",
            AuditEvent::ItemCancelled => "item_cancelled",
            AuditEvent::ItemEdited => "item_edited",
            AuditEvent::OidcLogin => "oidc_login",
            AuditEvent::OidcLoginFailed => "oidc_login_failed",
            AuditEvent::OidcLinked => "oidc_linked",
            AuditEvent::OidcUnlinked => "oidc_unlinked",
            AuditEvent::SecondFactorEnabled => "second_factor_enabled",
            AuditEvent::SecondFactorDisabled => "second_factor_disabled",
        }
    }

    /// Every event, in the order the API lists them.
    pub const ALL: [AuditEvent; 21] = [
        AuditEvent::LoginSucceeded,
        AuditEvent::LoginFailed,
        AuditEvent::AccountLocked,
        AuditEvent::TokenReused,
        AuditEvent::PasswordChanged,
        AuditEvent::PasswordReset,
        AuditEvent::RoleChanged,
        AuditEvent::ActivationChanged,
        AuditEvent::LoggedOutEverywhere,
        AuditEvent::Registered,
        AuditEvent::EmailVerified,
        AuditEvent::LoggedOut,
        AuditEvent::ItemCreated,
        AuditEvent::ItemCancelled,
        AuditEvent::ItemEdited,
        AuditEvent::OidcLogin,
        AuditEvent::OidcLoginFailed,
        AuditEvent::OidcLinked,
        AuditEvent::OidcUnlinked,
        AuditEvent::SecondFactorEnabled,
        AuditEvent::SecondFactorDisabled,
    ];

    /// The event stored as `name`, if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == name)
    }
}

/// One entry of the audit trail as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its id (time-ordered).
    pub id: uuid::Uuid,
    /// When.
    pub at: Timestamp,
    /// What, as stored: a name this version may not know (one written by
    /// a newer version during a rolling deploy) is still shown.
    pub event: String,
    /// The account concerned, when known.
    pub user: Option<UserId>,
    /// Who did it, when not the user (an admin).
    pub actor: Option<UserId>,
    /// The request's id.
    pub request_id: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// The short detail.
    pub detail: Option<String>,
}

/// Which entries of the audit trail to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only those about this account.
    pub user: Option<UserId>,
    /// Only this event.
    pub event: Option<AuditEvent>,
}

/// Where a page of the audit trail continues: after this entry, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditCursor {
    /// The last entry's time.
    pub at: Timestamp,
    /// The last entry's id (ties on the time).
    pub id: uuid::Uuid,
}

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// What.
    pub event: AuditEvent,
    /// The account concerned, when known.
    pub user: Option<UserId>,
    /// Who did it, when not the user (an admin).
    pub actor: Option<UserId>,
    /// The request.
    pub context: RequestContext,
    /// A short, secret-free detail (e.g. `user -> admin`).
    pub detail: Option<String>,
}

/// An e-mail with a link to act on, as the domain decides it: whom, why,
/// which link, for how long. Its wording and layout are the mail adapter's.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkMail {
    /// The recipient.
    pub to: Email,
    /// How to greet them: their display name.
    pub name: String,
    /// What the link is for.
    pub purpose: OneTimePurpose,
    /// The link, with its secret token: never logged.
    pub link: String,
    /// When the link stops working (a mail delayed by an outage says how
    /// long it has left; one that missed it is not sent).
    pub expires_at: Timestamp,
}

impl fmt::Debug for LinkMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkMail")
            .field("purpose", &self.purpose)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_event_reads_back_from_its_stored_name() {
        for event in AuditEvent::ALL {
            assert_eq!(AuditEvent::parse(event.as_str()), Some(event));
        }
        assert_eq!(AuditEvent::parse("coffee_made"), None);
    }

    #[test]
    fn a_purpose_reads_back_from_its_stored_name() {
        for purpose in [OneTimePurpose::VerifyEmail, OneTimePurpose::ResetPassword] {
            assert_eq!(OneTimePurpose::parse(purpose.as_str()), Some(purpose));
        }
        assert_eq!(OneTimePurpose::parse("login"), None);
    }

    #[test]
    fn a_secret_token_and_a_token_pair_never_print_their_secrets() {
        let secret = SecretToken {
            plain: Zeroizing::new("refresh-secret".into()),
            digest: TokenDigest([0xab; 32]),
        };
        assert_eq!(
            format!("{secret:?}"),
            "SecretToken { digest: TokenDigest(abab..), .. }"
        );
        let pair = TokenPair {
            access_token: "header.claims.signature".into(),
            access_expires_in: Duration::minutes(15),
            refresh_token: secret.plain,
            refresh_expires_in: Duration::days(7),
        };
        let printed = format!("{pair:?}");
        assert!(printed.starts_with("TokenPair { access_expires_in: "));
        for hidden in ["header.claims.signature", "refresh-secret"] {
            assert!(!printed.contains(hidden), "{printed}");
        }
    }

    #[test]
    fn purposes_and_audit_events_keep_the_names_they_are_stored_under() {
        let purposes = [OneTimePurpose::VerifyEmail, OneTimePurpose::ResetPassword];
        assert_eq!(
            purposes.map(|p| p.as_str()),
            ["verify_email", "reset_password"]
        );
        let events = [
            AuditEvent::LoginSucceeded,
            AuditEvent::LoginFailed,
            AuditEvent::AccountLocked,
            AuditEvent::TokenReused,
            AuditEvent::PasswordChanged,
            AuditEvent::PasswordReset,
            AuditEvent::RoleChanged,
            AuditEvent::ActivationChanged,
            AuditEvent::LoggedOutEverywhere,
        ];
        assert_eq!(
            events.map(|e| e.as_str()),
            [
                "login_succeeded",
                "login_failed",
                "account_locked",
                "token_reused",
                "password_changed",
                "password_reset",
                "role_changed",
                "activation_changed",
                "logged_out_everywhere",
            ]
        );
    }
}
