//! Accounts as the auction sees them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::email::Email;
use crate::ids::UserId;
use crate::item::Timestamp;
use crate::validation::is_forbidden_in_text;

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Bids, sees its own bids.
    User,
    /// Also lists and cancels items and manages accounts.
    Admin,
}

/// A role name that is neither `user` nor `admin`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("must be \"user\" or \"admin\"")]
pub struct UnknownRole;

impl Role {
    /// The role as the API and the database spell it.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            _ => Err(UnknownRole),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A password hash in PHC string form; opaque to the domain.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by the password hasher or read from storage.
    #[must_use]
    pub fn new(phc: String) -> Self {
        PasswordHash(phc)
    }

    /// The PHC string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// The name shown for an account: 1 to 100 characters after trimming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

/// Why a display name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum InvalidDisplayName {
    /// Nothing but white space.
    #[error("must not be empty")]
    Empty,
    /// More than 100 characters.
    #[error("must be at most 100 characters")]
    TooLong,
    /// A control character or a bidirectional override.
    #[error("must not contain control characters")]
    ControlCharacter,
}

impl DisplayName {
    /// The longest name, in code points after trimming.
    pub const MAX_CHARS: usize = 100;

    /// # Errors
    /// [`InvalidDisplayName`] when empty after trimming, too long, or
    /// holding a control character.
    pub fn parse(raw: &str) -> Result<Self, InvalidDisplayName> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            Err(InvalidDisplayName::Empty)
        } else if trimmed.chars().count() > Self::MAX_CHARS {
            Err(InvalidDisplayName::TooLong)
        } else if trimmed.chars().any(|c| is_forbidden_in_text(c, false)) {
            Err(InvalidDisplayName::ControlCharacter)
        } else {
            Ok(DisplayName(trimmed.to_owned()))
        }
    }

    /// A default name for an address: its local part, shortened to fit.
    #[must_use]
    pub fn from_email(email: &Email) -> Self {
        let local = email.as_str().split('@').next().unwrap_or_default();
        DisplayName(local.chars().take(Self::MAX_CHARS).collect())
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Takes the name out.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

/// An account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Its address, unique case-insensitively.
    pub email: Email,
    /// The name shown to others.
    pub display_name: String,
    /// What it may do.
    pub role: Role,
    /// Whether the address was proven.
    pub email_verified: bool,
    /// `false` once an admin deactivated it.
    pub is_active: bool,
    /// Whether it wants e-mail notices (outbid, exhausted, won); on unless
    /// its user turned it off.
    pub notify_email: bool,
    /// Whether its logins need a second factor (a confirmed TOTP secret).
    pub totp_enabled: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

/// An account to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    /// Its id, chosen by the caller.
    pub id: UserId,
    /// Its address.
    pub email: Email,
    /// The name shown to others.
    pub display_name: String,
    /// The password's hash.
    pub password_hash: PasswordHash,
    /// What it may do.
    pub role: Role,
    /// Whether the address is already proven (e.g. created by an admin).
    pub email_verified: bool,
    /// When it is created.
    pub created_at: Timestamp,
}

/// What login needs of an account: the account, its hash, its failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The account.
    pub user: User,
    /// Its password hash.
    pub password_hash: PasswordHash,
    /// Whether its owner knows a password (an account an OpenID sign-in
    /// made has an unknowable one until a reset sets one).
    pub password_set: bool,
    /// Its consecutive failed logins and lock.
    pub failures: crate::auth::lockout::LoginFailures,
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// A new display name (by the user).
    pub display_name: Option<DisplayName>,
    /// A new role (by an admin).
    pub role: Option<Role>,
    /// Activation (by an admin).
    pub is_active: Option<bool>,
    /// E-mail notices on or off (by the user).
    pub notify_email: Option<bool>,
}

/// Where a page of the account list continues: after this account, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserCursor {
    /// The last account's creation time.
    pub created_at: Timestamp,
    /// The last account's id (ties on the time).
    pub id: UserId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Ann ").unwrap().as_str(), "Ann");
        assert_eq!(DisplayName::parse(" "), Err(InvalidDisplayName::Empty));
        assert_eq!(
            DisplayName::parse(&"é".repeat(101)),
            Err(InvalidDisplayName::TooLong)
        );
        let email = Email::parse("ann.smith@example.com").unwrap();
        assert_eq!(DisplayName::from_email(&email).into_string(), "ann.smith");
        for bad in [
            "Ann\0",
            "A\nnn",
            "Ann\u{1b}[2J",
            "\u{202E}nnA",
            "A\u{85}nn",
            "A\u{2028}nn",
        ] {
            assert_eq!(
                DisplayName::parse(bad),
                Err(InvalidDisplayName::ControlCharacter),
                "{bad:?}"
            );
        }
        assert!(DisplayName::parse("Zoë 🎨 O'Brien-Łukasz").is_ok());
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in [Role::User, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(role.to_string(), role.as_str());
        }
        assert_eq!("root".parse::<Role>(), Err(UnknownRole));
    }

    #[test]
    fn password_hashes_never_print() {
        let hash = PasswordHash::new("$argon2id$secret".into());
        assert_eq!(format!("{hash:?}"), "PasswordHash(..)");
        assert_eq!(hash.as_str(), "$argon2id$secret");
    }
}
