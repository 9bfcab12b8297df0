//! [`AesGcmSealer`]: the domain's `Sealer` port with AES-256-GCM (RustCrypto
//! `aes-gcm`): a fresh random 96-bit nonce per value, and the row the value
//! belongs to ([`SealBinding`]) authenticated as associated data, so a
//! ciphertext copied to another row fails to open.
//!
//! A sealed value is `version (1) ‖ key id (4) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.
//! The key id is a fingerprint of the key, so values sealed under a retired key
//! are recognised and opened with it while new values use the current key.

use std::fmt;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::aes::cipher::consts::U12;
use aes_gcm::{Aes256Gcm, Nonce};
use pp_domain::ports::{SealBinding, SealError, Sealer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

type GcmNonce = Nonce<U12>;

/// The length of a sealing key: 256 bits.
pub const KEY_LEN: usize = 32;

/// One AES-256-GCM key and its fingerprint.
struct SealingKey {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256Gcm,
}

impl SealingKey {
    fn new(key: &[u8; KEY_LEN]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"poison-pill/sealing-key-id/v1")
            .chain_update(key)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        SealingKey {
            id,
            cipher: Aes256Gcm::new(key.into()),
        }
    }
}

/// The AES-256-GCM implementation of [`Sealer`].
pub struct AesGcmSealer {
    current: SealingKey,
    retired: Vec<SealingKey>,
}

impl AesGcmSealer {
    /// Seals with `key` and opens what `key` sealed.
    #[must_use]
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        AesGcmSealer {
            current: SealingKey::new(key),
            retired: Vec::new(),
        }
    }

    /// Also opens values sealed under `keys` (for key rotation); never seals with them.
    #[must_use]
    pub fn with_retired_keys<'a>(
        mut self,
        keys: impl IntoIterator<Item = &'a [u8; KEY_LEN]>,
    ) -> Self {
        self.retired.extend(keys.into_iter().map(SealingKey::new));
        self
    }

    /// A new random key from the operating system's generator.
    ///
    /// # Errors
    /// When the operating system's random generator fails.
    pub fn generate_key() -> Result<Zeroizing<[u8; KEY_LEN]>, SealError> {
        let key = aes_gcm::Key::<Aes256Gcm>::try_generate().map_err(|_| SealError::SealFailed)?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&key);
        Ok(bytes)
    }

    fn key_for(&self, id: &[u8]) -> Option<&SealingKey> {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .find(|key| key.id == id)
    }
}

impl fmt::Debug for AesGcmSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AesGcmSealer")
            .field("current_key_id", &self.current.id)
            .field("retired_keys", &self.retired.len())
            .finish()
    }
}

impl Sealer for AesGcmSealer {
    fn seal(&self, plaintext: &[u8], binding: &SealBinding) -> Result<Vec<u8>, SealError> {
        let nonce = GcmNonce::try_generate().map_err(|_| SealError::SealFailed)?;
        let aad = binding.associated_data();
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::SealFailed)?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&self.current.id);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    fn open(&self, sealed: &[u8], binding: &SealBinding) -> Result<Vec<u8>, SealError> {
        if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != FORMAT_VERSION {
            return Err(SealError::Malformed);
        }
        let (key_id, rest) = sealed[1..].split_at(KEY_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let key = self.key_for(key_id).ok_or(SealError::UnknownKey)?;
        let nonce = GcmNonce::try_from(nonce).map_err(|_| SealError::Malformed)?;
        let aad = binding.associated_data();
        key.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Forged)
    }
}

#[cfg(test)]
mod tests {
    use pp_domain::{ItemId, UserId};
    use proptest::prelude::*;

    use super::*;

    fn key(byte: u8) -> [u8; KEY_LEN] {
        [byte; KEY_LEN]
    }

    fn bid_binding() -> SealBinding {
        SealBinding::Bid {
            item: ItemId::generate(),
            bidder: UserId::generate(),
        }
    }

    #[test]
    fn a_sealed_value_opens_for_its_own_row() {
        let sealer = AesGcmSealer::new(&key(7));
        let binding = bid_binding();
        let sealed = sealer.seal(b"12500", &binding).unwrap();
        assert_eq!(sealer.open(&sealed, &binding).unwrap(), b"12500");
        assert_eq!(sealed.len(), HEADER_LEN + 5 + TAG_LEN);
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let sealer = AesGcmSealer::new(&key(7));
        let binding = bid_binding();
        assert_ne!(
            sealer.seal(b"x", &binding).unwrap(),
            sealer.seal(b"x", &binding).unwrap()
        );
    }

    #[test]
    fn a_value_moved_to_another_row_fails_to_open() {
        let sealer = AesGcmSealer::new(&key(7));
        let item = ItemId::generate();
        let alice = SealBinding::Bid {
            item,
            bidder: UserId::generate(),
        };
        let bob = SealBinding::Bid {
            item,
            bidder: UserId::generate(),
        };
        let other_item = SealBinding::Bid {
            item: ItemId::generate(),
            bidder: UserId::generate(),
        };
        let standing = SealBinding::Standing { item };
        let sealed = sealer.seal(b"12500", &alice).unwrap();
        for wrong in [bob, other_item, standing] {
            assert_eq!(sealer.open(&sealed, &wrong), Err(SealError::Forged));
        }
    }

    #[test]
    fn a_tampered_value_fails_to_open() {
        let sealer = AesGcmSealer::new(&key(7));
        let binding = bid_binding();
        let sealed = sealer.seal(b"12500", &binding).unwrap();
        for i in HEADER_LEN..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert_eq!(sealer.open(&tampered, &binding), Err(SealError::Forged));
        }
    }

    #[test]
    fn garbage_and_unknown_keys_are_told_apart() {
        let sealer = AesGcmSealer::new(&key(7));
        let binding = bid_binding();
        assert_eq!(sealer.open(b"", &binding), Err(SealError::Malformed));
        assert_eq!(sealer.open(&[9u8; 64], &binding), Err(SealError::Malformed));
        let foreign = AesGcmSealer::new(&key(8)).seal(b"1", &binding).unwrap();
        assert_eq!(sealer.open(&foreign, &binding), Err(SealError::UnknownKey));
    }

    #[test]
    fn retired_keys_still_open_but_never_seal() {
        let old = AesGcmSealer::new(&key(1));
        let binding = bid_binding();
        let sealed_before_rotation = old.seal(b"42", &binding).unwrap();
        let rotated = AesGcmSealer::new(&key(2)).with_retired_keys([&key(1)]);
        assert_eq!(
            rotated.open(&sealed_before_rotation, &binding).unwrap(),
            b"42"
        );
        let sealed_after = rotated.seal(b"42", &binding).unwrap();
        assert_eq!(
            old.open(&sealed_after, &binding),
            Err(SealError::UnknownKey)
        );
    }

    #[test]
    fn generated_keys_differ_and_debug_hides_them() {
        let a = AesGcmSealer::generate_key().unwrap();
        let b = AesGcmSealer::generate_key().unwrap();
        assert_ne!(*a, *b);
        let shown = format!("{:?}", AesGcmSealer::new(&a));
        assert!(shown.contains("current_key_id"));
        assert!(!shown.contains(&format!("{:?}", &a[..])));
    }

    proptest! {
        #[test]
        fn any_plaintext_round_trips(plaintext in prop::collection::vec(any::<u8>(), 0..256)) {
            let sealer = AesGcmSealer::new(&key(3));
            let binding = SealBinding::Standing { item: ItemId::generate() };
            let sealed = sealer.seal(&plaintext, &binding).unwrap();
            prop_assert_eq!(sealer.open(&sealed, &binding).unwrap(), plaintext);
        }
    }
}
