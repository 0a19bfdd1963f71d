//! Runnable end-to-end examples for the Lit network crates. Each example is a file in this folder;
//! run one with `cargo run --release -p lit-examples --example NAME`.
