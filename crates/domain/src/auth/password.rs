//! Passwords: the policy of docs/spec/api.md (NIST SP 800-63B-4 for single-factor passwords).

use std::fmt;

use thiserror::Error;
use zeroize::Zeroizing;

/// A plaintext password. Never printed; its memory is wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password presented for verification (login, current password):
    /// no policy applies to what is checked, only to what is set.
    #[must_use]
    pub fn presented(raw: &str) -> Self {
        Password(Zeroizing::new(raw.to_owned()))
    }

    /// The password.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Why a new password was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PasswordProblem {
    /// Fewer code points than the minimum.
    #[error("must be at least {0} characters long")]
    TooShort(usize),
    /// More code points than the maximum (never truncated).
    #[error("must be at most {0} characters long")]
    TooLong(usize),
    /// A common or breached password, or one built from the account's own details.
    #[error("is too common or too easy to guess; choose a longer phrase of unrelated words")]
    TooCommon,
}

/// The length rules for new passwords. No composition rules, by design.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_chars: usize,
}

impl PasswordPolicy {
    /// The lowest minimum the configuration may set.
    pub const FLOOR: usize = 8;
    /// The default minimum.
    pub const DEFAULT_MIN: usize = 15;
    /// The maximum length.
    pub const MAX_CHARS: usize = 128;

    /// A policy with `min_chars` as the minimum.
    ///
    /// # Errors
    /// When `min_chars` is below [`Self::FLOOR`] or above [`Self::MAX_CHARS`].
    pub fn new(min_chars: usize) -> Result<Self, String> {
        if (Self::FLOOR..=Self::MAX_CHARS).contains(&min_chars) {
            Ok(PasswordPolicy { min_chars })
        } else {
            Err(format!(
                "must be between {} and {}",
                Self::FLOOR,
                Self::MAX_CHARS
            ))
        }
    }

    /// The minimum length in code points.
    #[must_use]
    pub fn min_chars(&self) -> usize {
        self.min_chars
    }

    /// Checks the length, counted in Unicode code points.
    ///
    /// # Errors
    /// [`PasswordProblem::TooShort`] or [`PasswordProblem::TooLong`].
    pub fn check_length(&self, raw: &str) -> Result<(), PasswordProblem> {
        let chars = raw.chars().count();
        if chars < self.min_chars {
            Err(PasswordProblem::TooShort(self.min_chars))
        } else if chars > Self::MAX_CHARS {
            Err(PasswordProblem::TooLong(Self::MAX_CHARS))
        } else {
            Ok(())
        }
    }

    /// A new password: the length rules, then `too_common` (a breached-password
    /// and guessability check given the account's own details).
    ///
    /// # Errors
    /// The first [`PasswordProblem`] that applies.
    pub fn new_password(
        &self,
        raw: &str,
        too_common: impl FnOnce(&str) -> bool,
    ) -> Result<Password, PasswordProblem> {
        self.check_length(raw)?;
        if too_common(raw) {
            return Err(PasswordProblem::TooCommon);
        }
        Ok(Password(Zeroizing::new(raw.to_owned())))
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_chars: Self::DEFAULT_MIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_code_points_and_never_truncated() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            policy.check_length(&"é".repeat(14)),
            Err(PasswordProblem::TooShort(15))
        );
        assert_eq!(policy.check_length(&"é".repeat(15)), Ok(()));
        assert_eq!(policy.check_length(&"🔑".repeat(128)), Ok(()));
        assert_eq!(
            policy.check_length(&"a".repeat(129)),
            Err(PasswordProblem::TooLong(128))
        );
    }

    #[test]
    fn the_minimum_is_configurable_but_never_below_eight() {
        assert!(PasswordPolicy::new(7).is_err());
        assert!(PasswordPolicy::new(129).is_err());
        let eight = PasswordPolicy::new(8).unwrap();
        assert_eq!(eight.min_chars(), 8);
        assert!(eight.check_length("abcdefgh").is_ok());
    }

    #[test]
    fn a_common_password_is_refused_after_the_length_check() {
        let policy = PasswordPolicy::default();
        let everything_is_common = |_: &str| true;
        let refused = policy.new_password("passwordpassword", everything_is_common);
        assert_eq!(refused, Err(PasswordProblem::TooCommon));
        // Were the list consulted first, a short password would be too common.
        let short = policy.new_password("short", everything_is_common);
        assert_eq!(short, Err(PasswordProblem::TooShort(15)));
        let accepted = policy
            .new_password("correct horse battery staple", |_| false)
            .unwrap();
        assert_eq!(accepted.expose(), "correct horse battery staple");
        assert_eq!(format!("{accepted:?}"), "Password(..)");
    }
}
