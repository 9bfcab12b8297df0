//! Prints the median time of one argon2id hash at the policy parameters,
//! through the production hasher, for `make bench` (login throughput is
//! judged against cores ÷ this time).
//!
//! `hash_time` times one hash at a time on one hashing thread. `hash_time N`
//! keeps N hashes running side by side on N hashing threads and prints the
//! time each one took: on a machine whose cores share a cache or memory
//! bandwidth that the hashes contend for, this is longer, and it bounds
//! what any server can reach on that machine.
#![allow(clippy::print_stdout, clippy::expect_used)] // a measuring tool

use std::sync::Arc;
use std::time::Instant;

use pp_crypto::{Argon2Hasher, HashParams};
use pp_domain::auth::Password;
use pp_domain::auth::ports::PasswordHasher;

const HASHES_PER_THREAD: usize = 25;

fn main() {
    let side_by_side: usize = std::env::args()
        .nth(1)
        .map_or(1, |n| n.parse().expect("the number of hashes side by side"))
        .max(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let hasher = Arc::new(
        Argon2Hasher::new(HashParams::POLICY, side_by_side)
            .expect("the policy parameters are valid"),
    );
    let mut times: Vec<f64> = runtime.block_on(async {
        let mut lanes = tokio::task::JoinSet::new();
        for _ in 0..side_by_side {
            let hasher = Arc::clone(&hasher);
            lanes.spawn(async move {
                let password = Password::presented("a benchmark passphrase of ordinary length");
                let mut times = Vec::with_capacity(HASHES_PER_THREAD);
                for _ in 0..HASHES_PER_THREAD {
                    let started = Instant::now();
                    hasher.hash(&password).await.expect("hashing works");
                    times.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                times
            });
        }
        lanes.join_all().await.concat()
    });
    times.sort_by(f64::total_cmp);
    println!("{:.2}", times[times.len() / 2]);
}
