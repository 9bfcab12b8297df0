//! Password hashing (argon2id) and the breached-password check (zxcvbn).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use pp_domain::PasswordHash;
use pp_domain::auth::Password;
use pp_domain::auth::ports::{PasswordHasher, PasswordStrength, Verification};
use pp_domain::ports::StoreError;
use tracing::Instrument;
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
    /// OWASP's minimum for argon2id, and docs/spec/api.md's floor: m=19456 KiB, t=2, p=1.
    pub const POLICY: HashParams = HashParams {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    fn params(self) -> anyhow::Result<Params> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))
    }
}

thread_local! {
    /// This hashing thread's argon2 memory (19 MiB at the policy), kept
    /// between hashes: no allocation, copy-initialisation or page faults per
    /// hash. Wiped after every use, as argon2 would on drop: leftover blocks
    /// would let anyone who reads the process's memory test guesses cheaply.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Gives this thread's argon2 memory back (it was wiped after its last
/// use). For a thread that hashed once and goes on to other work: the
/// start-up's dummy hash must not leave 19 MiB behind on it.
fn release_thread_memory() {
    MEMORY.with(|memory| drop(std::mem::take(&mut *memory.borrow_mut())));
}

/// argon2 of `password` and `salt` into `out`, in this thread's memory.
fn argon2_into(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    use zeroize::Zeroize;
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let result =
            argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks]);
        memory[..blocks].iter_mut().for_each(Zeroize::zeroize);
        result
    })
}

/// A new PHC string for `password` under `params`, with a fresh 128-bit salt.
fn hash_new(params: &Params, password: &[u8]) -> Result<String, StoreError> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt = [0u8; 16];
    rand::fill(&mut salt[..]);
    let mut out = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
    argon2_into(&argon2, params, password, &salt, &mut out[..]).map_err(internal)?;
    let phc = argon2::PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(internal)?,
        salt: Some(Salt::new(&salt).map_err(internal)?),
        hash: Some(Output::new(&out[..]).map_err(internal)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the stored hash, compared in constant time.
fn matches(stored: &argon2::PasswordHash, password: &[u8]) -> Result<bool, StoreError> {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return Err(StoreError::Integrity(
            "a stored password hash has no salt or output".into(),
        ));
    };
    let algorithm = Algorithm::try_from(stored.algorithm.as_str()).map_err(internal)?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(internal)?
        .unwrap_or_default();
    let params = Params::try_from(stored).map_err(internal)?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    argon2_into(&argon2, &params, password, salt, &mut out).map_err(internal)?;
    Ok(Output::new(&out).map_err(internal)? == *expected)
}

type Job = Box<dyn FnOnce() + Send>;

/// Threads that only hash, at the lowest CPU priority (nice 19): they use
/// every idle cycle, yet any other thread of the machine (request handlers,
/// the database) preempts them at once. One per core bounds how many hashes
/// run together; the rest queue. Dedicated threads because a thread's
/// priority can be lowered but not raised back without privileges, so the
/// async runtime's shared blocking pool must not be touched.
struct HashPool {
    jobs: mpsc::Sender<Job>,
    threads: usize,
    /// Jobs queued or running now.
    pending: Arc<AtomicUsize>,
    /// The most that may be queued or running: the threads plus the queue.
    capacity: usize,
}

/// One job counted in [`HashPool::pending`] until it has run (or was dropped
/// unrun), whatever became of the caller who waited for it.
struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    fn start(threads: usize, waiting: usize) -> anyhow::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    if let Err(err) =
                        rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19)
                    {
                        tracing::warn!(error = %err, "cannot lower the hashing thread's priority");
                    }
                    loop {
                        let next = queue
                            .lock()
                            .map_err(drop)
                            .and_then(|q| q.recv().map_err(drop));
                        match next {
                            Ok(job) => job(),
                            Err(()) => break,
                        }
                    }
                })?;
        }
        Ok(HashPool {
            jobs,
            threads,
            pending: Arc::new(AtomicUsize::new(0)),
            capacity: threads.saturating_add(waiting),
        })
    }

    /// Runs `work` on a hashing thread and waits for it without blocking.
    ///
    /// # Errors
    /// [`StoreError::Busy`] at once when the queue is full: waiting longer
    /// would only grow a backlog no client waits out.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(StoreError::Busy);
        }
        let counted = Pending(Arc::clone(&self.pending));
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _counted = counted;
                let _ = done.send(work());
            }))
            .map_err(internal)?;
        result.await.map_err(internal)
    }
}

/// argon2id on a pool of low-priority hashing threads, one per core: never
/// on the async workers, at most one hash per core at a time, and a login
/// flood cannot slow other requests down.
pub struct Argon2Hasher {
    params: HashParams,
    pool: HashPool,
    /// A hash of a random password, verified against for unknown accounts so
    /// that they cost the same as known ones.
    dummy: PasswordHash,
}

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("params", &self.params)
            .field("threads", &self.pool.threads)
            .finish_non_exhaustive()
    }
}

fn internal(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unknown(anyhow::anyhow!("password hashing failed: {err}"))
}

impl Argon2Hasher {
    /// A hasher with `params` on `concurrency` hashing threads (at least
    /// one), with room for as many waiting hashes as the threads can finish
    /// in a moment (64 each); see [`Self::with_queue`]. Computes the dummy
    /// hash, so call it at start-up.
    ///
    /// # Errors
    /// When the parameters are invalid.
    pub fn new(params: HashParams, concurrency: usize) -> anyhow::Result<Self> {
        Self::with_queue(params, concurrency, concurrency.max(1) * 64)
    }

    /// [`Self::new`] with room for at most `queue` hashes waiting for a
    /// thread; past that a hash is refused at once with
    /// [`StoreError::Busy`].
    ///
    /// # Errors
    /// When the parameters are invalid.
    pub fn with_queue(
        params: HashParams,
        concurrency: usize,
        queue: usize,
    ) -> anyhow::Result<Self> {
        let mut random = Zeroizing::new([0u8; 32]);
        rand::fill(&mut random[..]);
        let dummy = hash_new(&params.params()?, &random[..]);
        // Computed on the caller's thread, which is not a hashing thread.
        release_thread_memory();
        let dummy = dummy.map_err(|e| anyhow::anyhow!("cannot compute the dummy hash: {e}"))?;
        Ok(Argon2Hasher {
            params,
            pool: HashPool::start(concurrency.max(1), queue)?,
            dummy: PasswordHash::new(dummy),
        })
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
        let params = self.params.params().map_err(internal)?;
        self.pool
            .run(move || hash_new(&params, secret.as_bytes()).map(PasswordHash::new))
            .instrument(tracing::info_span!("password.hash"))
            .await?
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
            .pool
            .run(move || {
                let parsed = argon2::PasswordHash::new(&phc).map_err(internal)?;
                matches(&parsed, secret.as_bytes())
            })
            .instrument(tracing::info_span!("password.verify"))
            .await??;
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
    async fn hashes_interoperate_with_the_argon2_crates_own_hasher_and_verifier() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = Argon2Hasher::new(FAST, 1).unwrap();
        let crate_argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, FAST.params().unwrap());
        let theirs = crate_argon2
            .hash_password(b"a shared passphrase")
            .unwrap()
            .to_string();
        let verdict = hasher
            .verify(
                &pw("a shared passphrase"),
                Some(PasswordHash::new(theirs.clone())),
            )
            .await;
        assert_eq!(
            verdict.unwrap(),
            Verification::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(
            hasher
                .verify(&pw("another one"), Some(PasswordHash::new(theirs)))
                .await
                .unwrap(),
            Verification::Invalid
        );
        let ours = hasher.hash(&pw("a shared passphrase")).await.unwrap();
        let parsed = argon2::PasswordHash::new(ours.as_str()).unwrap();
        assert!(
            crate_argon2
                .verify_password(b"a shared passphrase", &parsed)
                .is_ok()
        );
        assert!(crate_argon2.verify_password(b"not it", &parsed).is_err());
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
    async fn past_the_queue_a_hash_is_refused_at_once_and_room_comes_back() {
        let hasher = Arc::new(Argon2Hasher::with_queue(FAST, 1, 2).unwrap());
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        // One job holds the only thread; two wait in the queue.
        let running = {
            let held = Arc::clone(&held);
            tokio::spawn({
                let hasher = Arc::clone(&hasher);
                async move {
                    hasher
                        .pool
                        .run(move || held.lock().unwrap().recv().is_ok())
                        .await
                }
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let queued: Vec<_> = (0..2)
            .map(|_| {
                let hasher = Arc::clone(&hasher);
                tokio::spawn(async move { hasher.hash(&pw("queued passphrase")).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(matches!(
            hasher.verify(&pw("one too many"), None).await,
            Err(StoreError::Busy)
        ));
        release.send(()).unwrap();
        assert!(running.await.unwrap().unwrap());
        for job in queued {
            assert!(job.await.unwrap().is_ok());
        }
        assert!(hasher.hash(&pw("room again")).await.is_ok());
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
    fn building_the_hasher_leaves_no_argon2_memory_on_the_calling_thread() {
        // The dummy hash is computed here; its memory must not stay with
        // this thread (an idle server would hold 19 MiB for nothing).
        let _hasher = Argon2Hasher::with_queue(FAST, 1, 2).unwrap();
        assert_eq!(MEMORY.with(|memory| memory.borrow().len()), 0);
        let mut out = [0u8; 32];
        argon2_into(
            &Argon2::new(Algorithm::Argon2id, Version::V0x13, FAST.params().unwrap()),
            &FAST.params().unwrap(),
            b"password",
            b"somesaltsomesalt",
            &mut out,
        )
        .unwrap();
        assert!(
            MEMORY.with(|memory| memory.borrow().len()) > 0,
            "a hashing thread keeps it"
        );
    }

    #[test]
    fn invalid_parameters_are_refused() {
        let zero = HashParams {
            memory_kib: 1,
            iterations: 0,
            parallelism: 1,
        };
        assert!(Argon2Hasher::new(zero, 1).is_err());
        assert!(format!("{:?}", Argon2Hasher::new(FAST, 3).unwrap()).contains("threads: 3"));
    }

    #[tokio::test]
    async fn hashing_runs_on_low_priority_threads_one_per_configured_core() {
        let hasher = Argon2Hasher::new(FAST, 2).unwrap();
        let probe = || {
            let nice =
                rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0);
            let name = std::thread::current().name().unwrap_or_default().to_owned();
            (nice, name)
        };
        let (a, b) = tokio::join!(hasher.pool.run(probe), hasher.pool.run(probe));
        for (nice, name) in [a.unwrap(), b.unwrap()] {
            assert_eq!(nice, 19);
            assert!(name.starts_with("argon2-"), "{name}");
        }
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
