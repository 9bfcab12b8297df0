//! Password hashing (argon2id) and the breached-password check (zxcvbn).

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use pp_domain::PasswordHash;
use pp_domain::auth::Password;
use pp_domain::auth::ports::{PasswordHasher, PasswordStrength, Verification};
use pp_domain::ports::StoreError;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl HashParams {
    /// OWASP's minimum for argon2id, and api.md's floor: m=19456 KiB, t=2, p=1.
    pub const POLICY: HashParams = HashParams {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    fn argon2(self) -> anyhow::Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// argon2id behind a semaphore sized to the cores: hashing runs on the
/// blocking pool, never on the async workers, and at most `concurrency`
/// hashes run at once, so a login flood queues instead of starving the rest.
pub struct Argon2Hasher {
    params: HashParams,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against for unknown accounts so
    /// that they cost the same as known ones.
    dummy: PasswordHash,
}

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("params", &self.params)
            .field("available_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

fn internal(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unknown(anyhow::anyhow!("password hashing failed: {err}"))
}

impl Argon2Hasher {
    /// A hasher with `params` and at most `concurrency` hashes at once
    /// (at least one). Computes the dummy hash, so call it at start-up.
    ///
    /// # Errors
    /// When the parameters are invalid.
    pub fn new(params: HashParams, concurrency: usize) -> anyhow::Result<Self> {
        let argon2 = params.argon2()?;
        let mut random = Zeroizing::new([0u8; 32]);
        rand::fill(&mut random[..]);
        let dummy = argon2
            .hash_password(&random[..])
            .map_err(|e| anyhow::anyhow!("cannot compute the dummy hash: {e}"))?;
        Ok(Argon2Hasher {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: PasswordHash::new(dummy.to_string()),
        })
    }

    /// A hasher sized to this machine's cores with the policy parameters.
    ///
    /// # Errors
    /// As [`Argon2Hasher::new`].
    pub fn for_this_machine() -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self::new(HashParams::POLICY, cores)
    }

    /// Runs `work` on the blocking pool once a permit is free.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(Argon2<'static>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(internal)?;
        let argon2 = self.params.argon2().map_err(internal)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(argon2)
        })
        .await
        .map_err(internal)?
    }

    /// Whether `stored` was made with weaker settings than the current ones.
    fn below_policy(&self, stored: &argon2::PasswordHash) -> bool {
        let Ok(params) = Params::try_from(stored) else {
            return true;
        };
        stored.algorithm.as_str() != "argon2id"
            || params.m_cost() < self.params.memory_kib
            || params.t_cost() < self.params.iterations
            || params.p_cost() < self.params.parallelism
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, StoreError> {
        let secret = Zeroizing::new(password.expose().to_owned());
        self.blocking(move |argon2| {
            argon2
                .hash_password(secret.as_bytes())
                .map(|hash| PasswordHash::new(hash.to_string()))
                .map_err(internal)
        })
        .await
    }

    async fn verify(
        &self,
        password: &Password,
        hash: Option<PasswordHash>,
    ) -> Result<Verification, StoreError> {
        let known = hash.is_some();
        let phc = hash.unwrap_or_else(|| self.dummy.clone());
        let parsed = argon2::PasswordHash::new(phc.as_str()).map_err(|e| {
            StoreError::Integrity(format!("a stored password hash is malformed: {e}"))
        })?;
        let needs_rehash = self.below_policy(&parsed);
        let secret = Zeroizing::new(password.expose().to_owned());
        let phc = phc.as_str().to_owned();
        let matches = self
            .blocking(move |argon2| {
                let parsed = argon2::PasswordHash::new(&phc).map_err(internal)?;
                Ok(argon2.verify_password(secret.as_bytes(), &parsed).is_ok())
            })
            .await?;
        Ok(if matches && known {
            Verification::Valid { needs_rehash }
        } else {
            Verification::Invalid
        })
    }
}

/// The breached-password check: zxcvbn's frequency lists (the most common
/// passwords among them), keyboard patterns, repeats and sequences, and the
/// account's own details. A password scoring below 3 of 4 ("safely
/// unguessable") is refused; a long passphrase of unrelated words passes.
#[derive(Clone, Copy, Debug, Default)]
pub struct ZxcvbnStrength;

impl PasswordStrength for ZxcvbnStrength {
    fn too_common(&self, password: &str, user_inputs: &[&str]) -> bool {
        let inputs: Vec<&str> = user_inputs
            .iter()
            .copied()
            .filter(|s| !s.is_empty())
            .collect();
        zxcvbn::zxcvbn(password, &inputs).score() < zxcvbn::Score::Three
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters so tests stay fast; the policy is checked separately.
    const FAST: HashParams = HashParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    fn pw(raw: &str) -> Password {
        Password::presented(raw)
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = Argon2Hasher::new(FAST, 2).unwrap();
        let hash = hasher
            .hash(&pw("correct horse battery staple"))
            .await
            .unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        let right = hasher
            .verify(&pw("correct horse battery staple"), Some(hash.clone()))
            .await;
        assert_eq!(
            right.unwrap(),
            Verification::Valid {
                needs_rehash: false
            }
        );
        let wrong = hasher
            .verify(&pw("correct horse battery stapler"), Some(hash))
            .await;
        assert_eq!(wrong.unwrap(), Verification::Invalid);
    }

    #[tokio::test]
    async fn an_unknown_account_is_checked_against_the_dummy_and_always_fails() {
        let hasher = Argon2Hasher::new(FAST, 1).unwrap();
        let dummy = hasher.dummy.clone();
        assert!(dummy.as_str().starts_with("$argon2id$"));
        assert_eq!(
            hasher.verify(&pw("anything"), None).await.unwrap(),
            Verification::Invalid
        );
    }

    #[tokio::test]
    async fn a_hash_below_policy_asks_for_a_rehash() {
        let weak = Argon2Hasher::new(FAST, 1).unwrap();
        let hash = weak.hash(&pw("a long enough passphrase")).await.unwrap();
        let strong = Argon2Hasher::new(HashParams::POLICY, 1).unwrap();
        let verdict = strong
            .verify(&pw("a long enough passphrase"), Some(hash))
            .await;
        assert_eq!(verdict.unwrap(), Verification::Valid { needs_rehash: true });
        let current = strong.hash(&pw("a long enough passphrase")).await.unwrap();
        assert!(current.as_str().contains("m=19456,t=2,p=1"));
        let verdict = strong
            .verify(&pw("a long enough passphrase"), Some(current))
            .await;
        assert_eq!(
            verdict.unwrap(),
            Verification::Valid {
                needs_rehash: false
            }
        );
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_integrity_error() {
        let hasher = Argon2Hasher::new(FAST, 1).unwrap();
        let result = hasher
            .verify(&pw("x"), Some(PasswordHash::new("not a phc string".into())))
            .await;
        assert!(matches!(result, Err(StoreError::Integrity(_))));
    }

    #[test]
    fn invalid_parameters_are_refused() {
        let zero = HashParams {
            memory_kib: 1,
            iterations: 0,
            parallelism: 1,
        };
        assert!(Argon2Hasher::new(zero, 1).is_err());
        assert!(
            format!("{:?}", Argon2Hasher::new(FAST, 3).unwrap()).contains("available_permits: 3")
        );
    }

    #[test]
    fn common_and_personal_passwords_are_too_common_but_passphrases_are_not() {
        let strength = ZxcvbnStrength;
        for weak in [
            "passwordpassword",
            "123456789012345",
            "qwertyuiopasdfgh",
            "aaaaaaaaaaaaaaaa",
        ] {
            assert!(strength.too_common(weak, &[]), "{weak} was accepted");
        }
        assert!(strength.too_common(
            "ann.smith@example.com",
            &["ann.smith@example.com", "ann.smith"]
        ));
        for strong in [
            "correct horse battery staple",
            "violet kettle drums at dawn",
            "Xq7!vR2#mL9@pW4$",
        ] {
            assert!(
                !strength.too_common(strong, &["ann@example.com", ""]),
                "{strong} was refused"
            );
        }
    }
}
