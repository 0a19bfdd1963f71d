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
use std::time::{Duration, Instant};

use lit_api::v1::{PkpInfo, PresignatureSource, ToSign};
use lit_api::Bytes32;
use lit_client::{Bootstrap, ConnectOptions, LitClient, Wallet};
use lit_node::devnet::LayoutOptions;
use lit_node::testnet::TestNet;

#[path = "support/devnet.rs"]
mod support;

use support::{env_or, percentiles, refilled};

struct Net {
    devnet: TestNet,
    client: Arc<LitClient>,
    owner: Arc<Wallet>,
    pkp: Arc<PkpInfo>,
}

async fn start(pool: usize) -> Net {
    let options = LayoutOptions {
        presignature_pool: Some(pool),
        ..LayoutOptions::default()
    };
    let devnet = support::start(5, &options, "info").await;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(devnet.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    let owner = Wallet::random();
    let pkp = client.mint_pkp(&owner).await.unwrap();
    Net {
        devnet,
        client: Arc::new(client),
        owner: Arc::new(owner),
        pkp: Arc::new(pkp),
    }
}

/// The owner signs: the client makes it a session granting pkp-signing on the PKP.
fn auth(owner: &Wallet) -> lit_client::Signer<'_> {
    lit_client::Signer::Wallet(owner)
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

fn main() {
    let samples = env_or("LIT_BENCH_SAMPLES", 30);
    let seconds = env_or("LIT_BENCH_SECONDS", 10);
    support::main(async {
        // no pool: every signature generates its presignature with the group
        let fresh = start(0).await;
        let mut lat = Vec::new();
        for i in 0..samples {
            lat.push(sign(&fresh, i).await.0);
        }
        println!(
            "pkp/sign, empty pool (fresh presignature each): {}",
            percentiles(lat)
        );
        drop(fresh);

        // pools of 8 per rotation group: 5 groups x 8 = 40 presignatures to make
        let target = 8usize;
        let pooled = start(target).await;
        let t = Instant::now();
        let total = 5 * target;
        while refilled(&pooled.devnet) < total && t.elapsed() < Duration::from_secs(300) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let made = refilled(&pooled.devnet);
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
            println!(
                "pkp/sign, pool exhausted for the chosen group (fresh): {}",
                percentiles(cold)
            );
        }

        // sustained: concurrent clients for a while (pool refills compete with serving)
        for concurrency in [1usize, 8] {
            let done = Arc::new(AtomicU64::new(0));
            let pool_hits = Arc::new(AtomicU64::new(0));
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let tasks: Vec<_> = (0..concurrency)
                .map(|c| {
                    let (client, pkp, owner) = (
                        pooled.client.clone(),
                        pooled.pkp.clone(),
                        pooled.owner.clone(),
                    );
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
