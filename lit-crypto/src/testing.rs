//! Reproducible randomness for tests, simulations and benchmarks: a run draws everything from
//! one seed, prints it, and takes it from the environment variable `LIT_TEST_SEED` when that is
//! set, so that any failing run can be replayed exactly (`LIT_TEST_SEED=<u64> cargo test …`).
//!
//! [`seed_from_env`] is always compiled: the simulator of `lit-dkg`, which is library code, takes
//! its seed from it. `seeded_rng` needs the `test-util` feature (it pulls in `rand_chacha`),
//! which test suites enable in their dev-dependencies:
//!
//! ```toml
//! [dev-dependencies]
//! lit-crypto = { workspace = true, features = ["test-util"] }
//! ```
//!
//! ```
//! # #[cfg(feature = "test-util")] {
//! use rand_core::RngCore;
//!
//! // Prints "combine: LIT_TEST_SEED=20261126" (or the seed from the environment).
//! let (mut rng, seed) = lit_crypto::testing::seeded_rng("combine", 20_261_126);
//! let _ = (rng.next_u64(), seed);
//! # }
//! ```

/// The environment variable that overrides the seed of a run.
pub const SEED_VAR: &str = "LIT_TEST_SEED";

/// The seed of a run: `LIT_TEST_SEED` if it is set to a `u64` (surrounding whitespace
/// ignored), else `default`. Callers print the seed they use so that a run can be replayed.
pub fn seed_from_env(default: u64) -> u64 {
    std::env::var(SEED_VAR)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// A ChaCha20 RNG seeded from [`seed_from_env`]`(default_seed)`, and that seed; prints
/// `"{label}: LIT_TEST_SEED={seed}"` to stderr, which a test shows when it fails. For a seed
/// that changes from run to run, pass a random `default_seed` (e.g. `OsRng.next_u64()`).
#[cfg(feature = "test-util")]
pub fn seeded_rng(label: &str, default_seed: u64) -> (rand_chacha::ChaCha20Rng, u64) {
    use rand_core::SeedableRng;

    let seed = seed_from_env(default_seed);
    eprintln!("{label}: {SEED_VAR}={seed}");
    (rand_chacha::ChaCha20Rng::seed_from_u64(seed), seed)
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use rand_core::RngCore;

    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let (mut a, s) = seeded_rng("a", 7);
        let (mut b, t) = seeded_rng("b", 7);
        assert_eq!(s, t);
        assert_eq!(a.next_u64(), b.next_u64());
    }
}
