//! Criterion benchmarks across the Lit network crates live in `benches/benches/`; run them with
//! `cargo bench -p lit-benches`.
