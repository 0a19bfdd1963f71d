//! What the benchmarks against a devnet of real node processes share: starting the devnet (the
//! bench binary re-executes itself as the nodes), reading their logs, and reporting latencies.

#![allow(dead_code)] // each bench uses part of it

use std::time::Duration;

use lit_node::devnet::{self, LayoutOptions, NodeProgram};
use lit_node::testnet::TestNet;

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

/// The set-up of a devnet bench that drives criterion itself: a multi-threaded runtime and
/// criterion (50 samples, 8 s each, command-line options applied), or `None` when this process
/// ran as one of the devnet's nodes or was only asked to `--list`.
pub fn runtime_and_criterion() -> Option<(tokio::runtime::Runtime, criterion::Criterion)> {
    if let Some(node) = devnet::run_self_node() {
        node.unwrap();
        return None;
    }
    if std::env::args().any(|a| a == "--list") {
        return None;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let criterion = criterion::Criterion::default()
        .configure_from_args()
        .sample_size(50)
        .measurement_time(Duration::from_secs(8));
    Some((rt, criterion))
}

/// Starts `n` nodes with `options` (nodes log at `log_level`; this bench binary re-executed as
/// each node) and waits until all serve. Dropping the network stops them.
pub async fn start(n: usize, options: &LayoutOptions, log_level: &str) -> TestNet {
    TestNet::builder(NodeProgram::this_program().unwrap(), n)
        .options(options.clone())
        .log_level(log_level)
        .start()
        .await
}

/// Presignatures the network's nodes have generated into their pools so far (from their logs).
pub fn refilled(net: &TestNet) -> usize {
    net.presignatures_refilled()
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

/// `d` in milliseconds with two decimals.
pub fn ms2(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The `q` quantile (0 to 1) of `sorted`, which is not empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The median and 99th percentile of `v`.
pub fn percentiles(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort();
    let p = |q: f64| percentile(&v, q);
    format!("p50 {} p99 {} (n = {})", ms(p(0.5)), ms(p(0.99)), v.len())
}

/// Times `a` and `b` `samples` times each, alternating request by request so that the
/// machine's noise falls on both alike; returns both latencies, sorted.
pub fn alternating(
    samples: usize,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut ta, mut tb) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for _ in 0..samples {
        let t = std::time::Instant::now();
        a();
        ta.push(t.elapsed());
        let t = std::time::Instant::now();
        b();
        tb.push(t.elapsed());
    }
    ta.sort();
    tb.sort();
    (ta, tb)
}

/// `A p50 … p90 … | B p50 … p90 … | <what> at p50 +x ms (y×)` for sorted latencies of `a`
/// against the baseline `b`.
pub fn compared(a_name: &str, a: &[Duration], b_name: &str, b: &[Duration], what: &str) -> String {
    let (pa, pb) = (percentile(a, 0.5), percentile(b, 0.5));
    format!(
        "{a_name} p50 {} p90 {} | {b_name} p50 {} p90 {} | {what} at p50 {:+.2} ms ({:.3}x)",
        ms2(pa),
        ms2(percentile(a, 0.9)),
        ms2(pb),
        ms2(percentile(b, 0.9)),
        (pa.as_secs_f64() - pb.as_secs_f64()) * 1e3,
        pa.as_secs_f64() / pb.as_secs_f64()
    )
}
