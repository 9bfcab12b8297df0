//! Opaque tokens: 256 random bits, handed out as URL-safe base64, stored as
//! their SHA-256 digest. A plain hash (not argon2) is right here: the tokens
//! carry 256 bits of entropy, so there is nothing to brute-force.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pp_domain::auth::ports::SecretTokens;
use pp_domain::auth::tokens::{SecretToken, TokenDigest};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The [`SecretTokens`] port with the operating system's random generator.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomSecretTokens;

impl SecretTokens for RandomSecretTokens {
    fn generate(&self) -> SecretToken {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::fill(&mut bytes[..]);
        let plain = Zeroizing::new(URL_SAFE_NO_PAD.encode(&bytes[..]));
        let digest = self.digest(&plain);
        SecretToken { plain, digest }
    }

    fn digest(&self, plain: &str) -> TokenDigest {
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&Sha256::digest(plain.as_bytes()));
        TokenDigest(digest)
    }

    /// 32 bytes in unpadded URL-safe base64: 43 characters of its alphabet.
    fn well_formed(&self, plain: &str) -> bool {
        plain.len() == 43
            && plain
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_url_safe_and_digest_to_their_stored_form() {
        let tokens = RandomSecretTokens;
        let a = tokens.generate();
        let b = tokens.generate();
        assert_ne!(a.plain, b.plain);
        assert_eq!(a.plain.len(), 43);
        assert!(
            a.plain
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(tokens.digest(&a.plain), a.digest);
        assert_ne!(tokens.digest(&b.plain), a.digest);
        assert!(tokens.well_formed(&a.plain));
    }

    #[test]
    fn only_the_shape_of_a_generated_token_is_well_formed() {
        let tokens = RandomSecretTokens;
        let generated = tokens.generate();
        for bad in [
            "",
            "garbage",
            &generated.plain[..42],
            &format!("{}A", generated.plain.as_str()),
            &format!("{}=", &generated.plain[..42]),
            &format!("{}+", &generated.plain[..42]),
            &format!("{}é", &generated.plain[..41]),
        ] {
            assert!(!tokens.well_formed(bad), "{bad:?}");
        }
    }
}
