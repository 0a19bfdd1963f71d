//! Lit Actions engines: latency of an empty action, of one making 100 host calls and of ones
//! using the `ethers` global (its first use loads the bundle), cold and warm, and throughput of
//! concurrent small actions. `actions/ethers_bundle` measures what having the bundle costs an
//! action that does not use it (engines with and without it).
//!
//! `cargo bench -p lit-benches --bench actions` (Deno is found through `LIT_DENO`,
//! `.tools/bin/deno` installed by `./test.sh`, or `PATH`; without it only QuickJS is measured;
//! the ethers bundle through `LIT_ETHERS` or `.tools/npm-ethers`, without it the `ethers` cases
//! are skipped).
//!
//! "cold" Deno starts a process for the action (no pool); "warm" takes a process started
//! beforehand (the pool is refilled outside the timed region). QuickJS builds a fresh runtime for
//! every action, so it has no cold/warm distinction.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lit_actions::{
    Action, ActionContext, ActionHost, DenoConfig, DenoEngine, Engine, EngineConfig, EthersSource,
    HostError, Limits, QuickJsEngine,
};

/// Answers `getRpcUrl` at once (the engine's cost alone).
struct BenchHost;

#[async_trait]
impl ActionHost for BenchHost {
    async fn get_rpc_url(&self, _: &ActionContext, chain: &str) -> Result<String, HostError> {
        Ok(format!("https://{chain}.example/rpc"))
    }
}

const EMPTY: &str = r#"Lit.Actions.setResponse({ response: "ok" });"#;
const HUNDRED_CALLS: &str = r#"let n = 0;
for (let i = 0; i < 100; i++) { if ((await Lit.Actions.getRpcUrl({ chain: "ethereum" })).length > 0) n++; }
Lit.Actions.setResponse({ response: String(n) });"#;
/// The first use of `ethers` (which loads the bundle) and a cheap call.
const ETHERS_KECCAK: &str = r#"Lit.Actions.setResponse({ response: ethers.utils.keccak256(ethers.utils.toUtf8Bytes("x")) });"#;
/// A wallet signing a message (elliptic-curve set-up on top of the load).
const ETHERS_WALLET: &str = r#"const w = new ethers.Wallet("0x" + "11".repeat(32));
Lit.Actions.setResponse({ response: await w.signMessage("x") });"#;
const CONCURRENT: usize = 32;

fn config() -> EngineConfig {
    EngineConfig::new(Limits::default().with_time(Duration::from_secs(30)))
}

fn deno(pool: usize) -> Option<Arc<DenoEngine>> {
    deno_with(pool, config())
}

fn deno_with(pool: usize, config: EngineConfig) -> Option<Arc<DenoEngine>> {
    lit_actions::engine::deno::find_deno()?;
    Some(Arc::new(
        DenoEngine::new(
            DenoConfig::new(config)
                .with_pool_size(pool)
                .with_max_concurrent(CONCURRENT),
        )
        .unwrap(),
    ))
}

async fn run_one(engine: &dyn Engine, action: &Action) {
    let out = engine.run(action, Arc::new(BenchHost)).await.unwrap();
    assert!(out.response.is_some());
}

fn latency(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let quickjs: Arc<dyn Engine> = Arc::new(QuickJsEngine::new(config()).unwrap());
    let cold = deno(0);
    let warm = deno(1);
    let ethers = lit_actions::engine::ethers::find_ethers().is_some();
    for (label, code) in [
        ("empty", EMPTY),
        ("100_host_calls", HUNDRED_CALLS),
        ("ethers_keccak", ETHERS_KECCAK),
        ("ethers_wallet", ETHERS_WALLET),
    ] {
        if label.starts_with("ethers") && !ethers {
            continue;
        }
        let action = Action::new(code);
        let mut g = c.benchmark_group(format!("actions/{label}"));
        g.sample_size(10).measurement_time(Duration::from_secs(5));
        g.bench_function("quickjs", |b| {
            b.iter(|| rt.block_on(run_one(quickjs.as_ref(), &action)))
        });
        if let Some(cold) = &cold {
            g.bench_function("deno_cold", |b| {
                b.iter(|| rt.block_on(run_one(cold.as_ref(), &action)))
            });
        }
        if let Some(warm) = &warm {
            g.bench_function("deno_warm", |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            warm.warm_up().await.unwrap();
                            // Let the fresh process reach its read of the action.
                            tokio::time::sleep(Duration::from_millis(150)).await;
                            let start = Instant::now();
                            run_one(warm.as_ref(), &action).await;
                            total += start.elapsed();
                        }
                        total
                    })
                })
            });
        }
        g.finish();
    }
}

/// An empty action on engines with and without the ethers bundle: what the bundle costs an
/// action that does not use it (QuickJS: defining the getter; Deno: a bootstrap carrying the
/// bundle as a string, parsed when a process starts).
fn ethers_bundle(c: &mut Criterion) {
    if lit_actions::engine::ethers::find_ethers().is_none() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let action = Action::new(EMPTY);
    let mut g = c.benchmark_group("actions/ethers_bundle");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for (label, source) in [("with", EthersSource::Find), ("without", EthersSource::Off)] {
        let config = config().with_ethers(source);
        let quickjs: Arc<dyn Engine> = Arc::new(QuickJsEngine::new(config.clone()).unwrap());
        g.bench_function(format!("quickjs_{label}"), |b| {
            b.iter(|| rt.block_on(run_one(quickjs.as_ref(), &action)))
        });
        if let Some(cold) = deno_with(0, config) {
            g.bench_function(format!("deno_cold_{label}"), |b| {
                b.iter(|| rt.block_on(run_one(cold.as_ref(), &action)))
            });
        }
    }
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let action = Action::new(EMPTY);
    let mut engines: Vec<(&str, Arc<dyn Engine>)> =
        vec![("quickjs", Arc::new(QuickJsEngine::new(config()).unwrap()))];
    if let Some(d) = deno(4) {
        engines.push(("deno_pool4", d));
    }
    let mut g = c.benchmark_group("actions/throughput");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(CONCURRENT as u64));
    for (name, engine) in engines {
        g.bench_with_input(BenchmarkId::new(name, CONCURRENT), &engine, |b, engine| {
            b.iter(|| {
                rt.block_on(async {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..CONCURRENT {
                        let e = engine.clone();
                        let a = action.clone();
                        set.spawn(async move { run_one(e.as_ref(), &a).await });
                    }
                    while let Some(r) = set.join_next().await {
                        r.unwrap();
                    }
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, latency, ethers_bundle, throughput);
criterion_main!(benches);
