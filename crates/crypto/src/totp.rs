//! The [`OneTimeCodes`] port: RFC 6238 with totp-rs, as every authenticator
//! app reads it (HMAC-SHA1, six digits, 30-second steps, one step of skew
//! either side), and recovery codes of 80 random bits.
//!
//! Recovery codes are stored as plain SHA-256 digests, like the other
//! opaque tokens: at 80 bits a leaked digest cannot be searched back to its
//! code, and a digest can be looked up by equality (a salted slow hash
//! would need every code of an account tried in turn).

use pp_domain::Timestamp;
use pp_domain::auth::second_factor::{OneTimeCodes, TotpEnrolment, TotpSecret, TotpStep};
use pp_domain::auth::tokens::TokenDigest;
use pp_domain::ports::StoreError;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

/// The issuer an authenticator app shows beside the account.
const ISSUER: &str = "Poison Pill";

/// Bytes of a new secret: 160 bits, RFC 4226's recommendation for SHA-1.
const SECRET_LEN: usize = 20;

/// Crockford's base32 alphabet, lower-case: no i, l, o or u to misread.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Characters of a recovery code (5 bits each: 80 bits), shown in groups.
const RECOVERY_LEN: usize = 16;
const RECOVERY_GROUP: usize = 4;

/// The [`OneTimeCodes`] port.
#[derive(Clone, Copy, Debug, Default)]
pub struct TotpCodes;

fn totp(secret: &TotpSecret, account: &str) -> Result<Totp, totp_rs::TotpError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(secret.as_bytes().to_vec())
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
}

/// A typed recovery code as generated: lower-case, no separators, and
/// Crockford's look-alikes (o, i, l) read as the digits they stand for.
fn normalized(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect()
}

impl OneTimeCodes for TotpCodes {
    fn new_secret(&self) -> TotpSecret {
        let mut bytes = vec![0u8; SECRET_LEN];
        rand::fill(&mut bytes[..]);
        TotpSecret::from_bytes(bytes)
    }

    fn enrolment(&self, secret: &TotpSecret, account: &str) -> Result<TotpEnrolment, StoreError> {
        let unusable = |err: totp_rs::TotpError| {
            StoreError::Integrity(format!("no authenticator URI for this account: {err}"))
        };
        let totp = totp(secret, account).map_err(unusable)?;
        Ok(TotpEnrolment {
            secret: Zeroizing::new(totp.secret().to_base32()),
            uri: Zeroizing::new(totp.to_url().map_err(unusable)?),
        })
    }

    fn check(&self, secret: &TotpSecret, code: &str, now: Timestamp) -> Option<TotpStep> {
        // The account name is only for the URI; checking needs none.
        let totp = totp(secret, "").ok()?;
        let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let seconds = u64::try_from(now.timestamp()).ok()?;
        let counter = totp.check(&typed, seconds)?;
        i64::try_from(counter).ok().map(TotpStep)
    }

    fn recovery_codes(&self, count: usize) -> Vec<Zeroizing<String>> {
        (0..count)
            .map(|_| {
                let mut bytes = Zeroizing::new([0u8; RECOVERY_LEN]);
                rand::fill(&mut bytes[..]);
                let mut code = Zeroizing::new(String::with_capacity(RECOVERY_LEN + 3));
                for (i, byte) in bytes.iter().enumerate() {
                    if i > 0 && i % RECOVERY_GROUP == 0 {
                        code.push('-');
                    }
                    code.push(char::from(RECOVERY_ALPHABET[usize::from(byte & 31)]));
                }
                code
            })
            .collect()
    }

    fn recovery_digest(&self, code: &str) -> TokenDigest {
        let normalized = Zeroizing::new(normalized(code));
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&Sha256::digest(normalized.as_bytes()));
        TokenDigest(digest)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    /// RFC 6238's SHA-1 test secret.
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn codes_match_rfc_6238s_test_vectors_and_name_their_step() {
        // Appendix B: 59 s gives 94287082 in eight digits; the six-digit
        // code is its last six.
        let codes = TotpCodes;
        let at = |s| Utc.timestamp_opt(s, 0).unwrap();
        assert_eq!(
            codes.check(&rfc_secret(), "287082", at(59)),
            Some(TotpStep(1))
        );
        // 1111111109 s: 07081804.
        assert_eq!(
            codes.check(&rfc_secret(), "081804", at(1_111_111_109)),
            Some(TotpStep(37_037_036))
        );
        // Typed with a space, still the code.
        assert_eq!(
            codes.check(&rfc_secret(), "081 804", at(1_111_111_109)),
            Some(TotpStep(37_037_036))
        );
        // One step either side is accepted, two are not.
        assert_eq!(
            codes.check(&rfc_secret(), "081804", at(1_111_111_109 + 30)),
            Some(TotpStep(37_037_036))
        );
        assert_eq!(
            codes.check(&rfc_secret(), "081804", at(1_111_111_109 + 61)),
            None
        );
        for wrong in ["081805", "81804", "0818040", "+81804", "abcdef", ""] {
            assert_eq!(
                codes.check(&rfc_secret(), wrong, at(1_111_111_109)),
                None,
                "{wrong}"
            );
        }
        assert_eq!(codes.check(&rfc_secret(), "081804", at(-1)), None);
    }

    #[test]
    fn an_enrolment_shows_the_secret_in_base32_and_an_otpauth_uri() {
        let codes = TotpCodes;
        let shown = codes.enrolment(&rfc_secret(), "ann@example.com").unwrap();
        assert_eq!(shown.secret.as_str(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert!(
            shown
                .uri
                .starts_with("otpauth://totp/Poison%20Pill:ann%40example.com?"),
            "{}",
            shown.uri.as_str()
        );
        assert!(
            shown
                .uri
                .contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        );
        assert!(shown.uri.contains("issuer=Poison%20Pill"));
        assert!(codes.enrolment(&rfc_secret(), "a:b").is_err());
    }

    #[test]
    fn secrets_are_160_random_bits() {
        let codes = TotpCodes;
        let (a, b) = (codes.new_secret(), codes.new_secret());
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a, b);
    }

    #[test]
    fn recovery_codes_are_grouped_crockford_and_digest_however_typed() {
        let codes = TotpCodes;
        let made = codes.recovery_codes(10);
        assert_eq!(made.len(), 10);
        let distinct: std::collections::BTreeSet<_> = made.iter().map(|c| c.as_str()).collect();
        assert_eq!(distinct.len(), 10);
        for code in &made {
            assert_eq!(code.len(), 19, "{}", code.as_str());
            assert_eq!(code.matches('-').count(), 3);
            assert!(
                code.bytes()
                    .all(|b| b == b'-' || RECOVERY_ALPHABET.contains(&b))
            );
        }
        let code = made[0].as_str();
        let typed = format!(" {} ", code.to_uppercase().replace('-', " "));
        assert_eq!(codes.recovery_digest(&typed), codes.recovery_digest(code));
        assert_eq!(
            codes.recovery_digest("0000-1111"),
            codes.recovery_digest("oooo-ilIL")
        );
        assert_ne!(
            codes.recovery_digest(code),
            codes.recovery_digest(made[1].as_str())
        );
    }
}
