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
    }
}
