//! What the benchmarks against a devnet of real node processes share: starting the devnet (the
//! bench binary re-executes itself as the nodes), reading their logs, and reporting latencies.

#![allow(dead_code)] // each bench uses part of it

use std::time::Duration;

use lit_node::devnet::{self, Layout, LayoutOptions, NodeProcess};

/// The `main` of a devnet bench: runs as a node when the devnet re-executed this binary as one,
/// lists nothing for `--list`, and otherwise runs `bench` on a multi-threaded runtime.
pub fn main(bench: impl std::future::Future<Output = ()>) {
    if let Some(node) = devnet::run_self_node() {
        node.unwrap();
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench);
}

/// A devnet of node processes in a temporary folder; dropping it stops them.
pub struct Devnet {
    /// The layout (network file, node folders).
    pub layout: Layout,
    /// The processes (declared before `_dir`: killed before the folder is removed).
    pub nodes: Vec<NodeProcess>,
    _dir: tempfile::TempDir,
}

/// Starts `n` nodes with `options` (nodes log at `log_level`) and waits until all serve.
pub async fn start(n: usize, options: &LayoutOptions, log_level: &'static str) -> Devnet {
    let dir = tempfile::tempdir().unwrap();
    let layout = devnet::layout(dir.path(), n, options).unwrap();
    let node = devnet::self_command().unwrap();
    let command = move || {
        let mut c = node();
        c.env("RUST_LOG", log_level);
        c
    };
    let mut nodes = devnet::spawn_all(&layout, &command).unwrap();
    devnet::wait_ready(&mut nodes, Duration::from_secs(120), |_, _| {})
        .await
        .unwrap();
    Devnet {
        layout,
        nodes,
        _dir: dir,
    }
}

/// Presignatures the devnet's nodes have generated into their pools so far (from their logs).
pub fn refilled(layout: &Layout) -> usize {
    layout
        .network
        .nodes
        .iter()
        .map(|n| {
            std::fs::read_to_string(layout.node_dir(n.party_id).join("node.log"))
                .unwrap_or_default()
                .matches("presignature pool refilled")
                .count()
        })
        .sum()
}

/// A numeric environment variable, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The median and 99th percentile of `v`.
pub fn percentiles(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort();
    let p = |q: f64| v[(((v.len() - 1) as f64) * q).round() as usize];
    format!("p50 {} p99 {} (n = {})", ms(p(0.5)), ms(p(0.99)), v.len())
}
