//! Prints the median time of one argon2id hash at the policy parameters,
//! through the production hasher restricted to one thread, for `make bench`
//! (login throughput is judged against cores ÷ this time).
#![allow(clippy::print_stdout, clippy::expect_used)] // a measuring tool

use std::time::Instant;

use pp_crypto::{Argon2Hasher, HashParams};
use pp_domain::auth::Password;
use pp_domain::auth::ports::PasswordHasher;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let hasher = Argon2Hasher::new(HashParams::POLICY, 1).expect("the policy parameters are valid");
    let password = Password::presented("a benchmark passphrase of ordinary length");
    let mut times: Vec<f64> = runtime.block_on(async {
        let mut times = Vec::new();
        for _ in 0..25 {
            let started = Instant::now();
            hasher.hash(&password).await.expect("hashing works");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times
    });
    times.sort_by(f64::total_cmp);
    println!("{:.2}", times[times.len() / 2]);
}
