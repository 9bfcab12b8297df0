//! E-mail addresses, normalised once at the edge so that one address is one account.

use std::fmt;

use email_address::{EmailAddress, Options};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The longest address SMTP can carry (RFC 5321 path limit minus the brackets).
const MAX_LEN: usize = Email::MAX_CHARS;

/// A syntactically valid e-mail address, trimmed and lower-cased.
///
/// Lower-casing the whole address (local part included) is what users expect:
/// `Alice@Example.com` and `alice@example.com` are one account.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// Why a string is not an acceptable e-mail address.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum InvalidEmail {
    /// Longer than an SMTP path allows.
    #[error("must be at most {MAX_LEN} characters")]
    TooLong,
    /// Not an address of the form `name@example.com`.
    #[error("must be an address like name@example.com ({0})")]
    Syntax(String),
}

impl Email {
    /// The longest address, in characters (RFC 5321's path limit).
    pub const MAX_CHARS: usize = 254;

    /// Trims, lower-cases and checks the syntax (a domain with a top-level
    /// domain; no display name, no IP literal).
    ///
    /// # Errors
    /// [`InvalidEmail`] naming what is wrong.
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        // Counted as given: lower-casing may lengthen it (`İ` is two).
        let trimmed = raw.trim();
        if trimmed.chars().count() > MAX_LEN {
            return Err(InvalidEmail::TooLong);
        }
        let normalised = trimmed.to_lowercase();
        let options = Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        EmailAddress::parse_with_options(&normalised, options)
            .map_err(|e| InvalidEmail::Syntax(e.to_string()))?;
        Ok(Email(normalised))
    }

    /// The normalised address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidEmail;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Email::parse(&raw)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        let email = Email::parse("  Alice.Smith@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "alice.smith@example.com");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "alice@[127.0.0.1]",
            "Alice <alice@example.com>",
            "a b@example.com",
        ] {
            assert!(
                matches!(Email::parse(bad), Err(InvalidEmail::Syntax(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn addresses_travel_as_plain_strings_normalised_and_checked_on_the_way_in() {
        let email: Email = serde_json::from_str(r#"" Ann@Example.com ""#).unwrap();
        assert_eq!(email.to_string(), "ann@example.com");
        assert_eq!(
            serde_json::to_string(&email).unwrap(),
            r#""ann@example.com""#
        );
        assert_eq!(String::from(email), "ann@example.com");
        let refused = serde_json::from_str::<Email>(r#""ann""#).unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("must be an address like name@example.com"),
            "{refused}"
        );
    }

    #[test]
    fn overlong_addresses_are_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(InvalidEmail::TooLong));
    }
}
