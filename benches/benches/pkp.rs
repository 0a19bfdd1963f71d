//! PKP signing against a 5-node devnet on loopback (real node processes, real HTTP, T = 4):
//! latency with a warm presignature pool and with no pool (a fresh presignature per request),
//! sustained signatures per second, and the background refill rate of the pools.
//!
//! `cargo bench -p lit-benches --bench pkp`
//! (`LIT_BENCH_SAMPLES`, default 30, sets the latency sample count; `LIT_BENCH_SECONDS`,
//! default 10, the throughput run.)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lit_api::v1::{PkpAuth, PkpInfo, PresignatureSource, ToSign};
use lit_api::Bytes32;
use lit_client::{Bootstrap, LitClient, Wallet};
use lit_node::devnet::{self, LayoutOptions, NodeProcess};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn percentiles(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort();
    let p = |q: f64| v[(((v.len() - 1) as f64) * q).round() as usize];
    format!("p50 {} p99 {} (n = {})", ms(p(0.5)), ms(p(0.99)), v.len())
}

struct Net {
    _dir: tempfile::TempDir,
    layout: devnet::Layout,
    _nodes: Vec<NodeProcess>,
    client: Arc<LitClient>,
    owner: Arc<Wallet>,
    pkp: Arc<PkpInfo>,
}

async fn start(pool: usize) -> Net {
    let dir = tempfile::tempdir().unwrap();
    let options = LayoutOptions {
        presignature_pool: Some(pool),
        ..LayoutOptions::default()
    };
    let layout = devnet::layout(dir.path(), 5, &options).unwrap();
    let node = devnet::self_command().unwrap();
    let command = move || {
        let mut c = node();
        c.env("RUST_LOG", "info");
        c
    };
    let mut nodes = devnet::spawn_all(&layout, &command).unwrap();
    devnet::wait_ready(&mut nodes, Duration::from_secs(120), |_, _| {})
        .await
        .unwrap();
    let client = LitClient::connect(Bootstrap::NetworkFile(layout.network_file()))
        .await
        .unwrap();
    let owner = Wallet::random();
    let pkp = client.mint_pkp(&owner).await.unwrap();
    Net {
        _dir: dir,
        layout,
        _nodes: nodes,
        client: Arc::new(client),
        owner: Arc::new(owner),
        pkp: Arc::new(pkp),
    }
}

fn auth(owner: &Wallet) -> PkpAuth {
    PkpAuth::AuthSig(
        owner
            .auth_sig(SystemTime::now(), Duration::from_secs(600))
            .unwrap(),
    )
}

async fn sign(net: &Net, i: u64) -> (Duration, PresignatureSource) {
    let mut d = [0u8; 32];
    d[..8].copy_from_slice(&i.to_be_bytes());
    let t = Instant::now();
    let sig = net
        .client
        .pkp_sign(&net.pkp, ToSign::Digest(Bytes32(d)), auth(&net.owner))
        .await
        .unwrap();
    (t.elapsed(), sig.presignature)
}

fn refilled(layout: &devnet::Layout) -> usize {
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

fn main() {
    if let Some(node) = devnet::run_self_node() {
        node.unwrap();
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let samples = env_or("LIT_BENCH_SAMPLES", 30);
    let seconds = env_or("LIT_BENCH_SECONDS", 10);
    rt.block_on(async {
        // no pool: every signature generates its presignature with the group
        let fresh = start(0).await;
        let mut lat = Vec::new();
        for i in 0..samples {
            lat.push(sign(&fresh, i).await.0);
        }
        println!("pkp/sign, empty pool (fresh presignature each): {}", percentiles(lat));
        drop(fresh);

        // pools of 8 per rotation group: 5 groups x 8 = 40 presignatures to make
        let target = 8usize;
        let pooled = start(target).await;
        let t = Instant::now();
        let total = 5 * target;
        while refilled(&pooled.layout) < total && t.elapsed() < Duration::from_secs(300) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let made = refilled(&pooled.layout);
        println!(
            "pkp/pool refill from empty: {made} presignatures in {:.1} s = {:.2} presignatures/s (5 nodes, 2 cores, idle)",
            t.elapsed().as_secs_f64(),
            made as f64 / t.elapsed().as_secs_f64()
        );
        let mut warm = Vec::new();
        let mut cold = Vec::new();
        for i in 0..samples.min(total as u64 - 5) {
            let (d, source) = sign(&pooled, 1000 + i).await;
            match source {
                PresignatureSource::Pool => warm.push(d),
                PresignatureSource::Fresh => cold.push(d),
            }
        }
        println!("pkp/sign, warm pool: {}", percentiles(warm));
        if !cold.is_empty() {
            println!("pkp/sign, pool exhausted for the chosen group (fresh): {}", percentiles(cold));
        }

        // sustained: concurrent clients for a while (pool refills compete with serving)
        for concurrency in [1usize, 8] {
            let done = Arc::new(AtomicU64::new(0));
            let pool_hits = Arc::new(AtomicU64::new(0));
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let tasks: Vec<_> = (0..concurrency)
                .map(|c| {
                    let (client, pkp, owner) = (pooled.client.clone(), pooled.pkp.clone(), pooled.owner.clone());
                    let (done, pool_hits) = (done.clone(), pool_hits.clone());
                    tokio::spawn(async move {
                        let mut i = 0u64;
                        while Instant::now() < deadline {
                            let mut d = [0u8; 32];
                            d[0] = c as u8;
                            d[1..9].copy_from_slice(&i.to_be_bytes());
                            i += 1;
                            let sig = client
                                .pkp_sign(&pkp, ToSign::Digest(Bytes32(d)), auth(&owner))
                                .await
                                .unwrap();
                            done.fetch_add(1, Ordering::Relaxed);
                            if sig.presignature == PresignatureSource::Pool {
                                pool_hits.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let n = done.load(Ordering::Relaxed);
            println!(
                "pkp/sign throughput with {concurrency} concurrent clients: {:.2} signatures/s ({n} in {seconds} s, {} from the pool)",
                n as f64 / seconds as f64,
                pool_hits.load(Ordering::Relaxed)
            );
        }
    });
}
