//! Epoch transitions on the embedded staking contract with real node processes (issue 16):
//! for each network size, the time from locking the next set to every member serving the new
//! epoch (a reshare of both root keys among all members), and the latency of decryptions and
//! PKP signatures that one client keeps making throughout, in steady state and while a
//! transition runs.
//!
//! Not a criterion bench: a transition takes seconds and changes the network, so each is
//! measured once per round. Requests that fail (a client that has not learnt the new epoch yet
//! reconnects and tries again) are counted.
//!
//! `cargo bench -p lit-benches --bench epochs`
//! (`LIT_BENCH_SIZES`, default `5,10,20`: network sizes; `LIT_BENCH_EPOCHS`, default 3:
//! transitions per size.)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lit_api::v1::ToSign;
use lit_api::Bytes32;
use lit_client::{Bootstrap, ConnectOptions, LitClient, Signer, Wallet};
use lit_node::devnet::{DevnetStaking, LayoutOptions};
use lit_node::testnet::TestNet;

#[path = "support/devnet.rs"]
mod support;

use support::{env_or, ms, percentiles};

#[derive(Default)]
struct Samples {
    steady: Vec<Duration>,
    transition: Vec<Duration>,
}

/// One client decrypting (or PKP-signing) in a loop until `stop`; each latency is filed under
/// steady state or transition by `in_transition` at the time the request started.
async fn load(
    network_file: std::path::PathBuf,
    sign: bool,
    in_transition: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Samples>>,
    failures: Arc<AtomicU64>,
) {
    let connect = || {
        LitClient::connect_with(
            Bootstrap::NetworkFile(network_file.clone()),
            ConnectOptions::devnet(),
        )
    };
    let mut client = connect().await.unwrap();
    let alice = Wallet::random();
    let conditions = serde_json::json!([{
        "conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
        "chain": "ethereum", "method": "", "parameters": [":userAddress"],
        "returnValueTest": {"comparator": "=", "value": alice.address().to_checksum()}
    }]);
    let encrypted = client.encrypt(&conditions, b"load").unwrap();
    let pkp = client.mint_pkp(&alice).await.unwrap();
    while !stop.load(Ordering::SeqCst) {
        let during = in_transition.load(Ordering::SeqCst);
        let t = Instant::now();
        let ok = if sign {
            client
                .pkp_sign(
                    &pkp,
                    ToSign::Digest(Bytes32([7; 32])),
                    Signer::Wallet(&alice),
                )
                .await
                .is_ok()
        } else {
            client.decrypt(&encrypted, &alice).await.is_ok()
        };
        let took = t.elapsed();
        if ok {
            let mut s = samples.lock().unwrap();
            if during {
                s.transition.push(took);
            } else {
                s.steady.push(took);
            }
        } else {
            failures.fetch_add(1, Ordering::SeqCst);
            if let Ok(c) = connect().await {
                client = c;
            }
        }
    }
}

async fn size(n: usize, epochs: u64) {
    let options = LayoutOptions {
        staking: Some(DevnetStaking {
            poll_ms: 100,
            ..DevnetStaking::default()
        }),
        extra_config: "[actions]\nengine = \"quickjs\"\n".into(),
        ..LayoutOptions::default()
    };
    let started = Instant::now();
    let mut net: TestNet = support::start(n, &options, "warn").await;
    net.devnet()
        .wait_epoch(1, Duration::from_secs(600))
        .await
        .unwrap();
    println!(
        "n = {n}: genesis DKG and start {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let in_transition = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let decrypts = Arc::new(Mutex::new(Samples::default()));
    let signs = Arc::new(Mutex::new(Samples::default()));
    let failures = Arc::new(AtomicU64::new(0));
    let tasks = [(false, decrypts.clone()), (true, signs.clone())].map(|(sign, samples)| {
        tokio::spawn(load(
            net.network_file(),
            sign,
            in_transition.clone(),
            stop.clone(),
            samples,
            failures.clone(),
        ))
    });
    let mut times = Vec::new();
    for epoch in 2..2 + epochs {
        tokio::time::sleep(Duration::from_secs(3)).await; // steady state
        in_transition.store(true, Ordering::SeqCst);
        let t = Instant::now();
        net.devnet().lock_next_epoch().await.unwrap();
        net.devnet()
            .wait_epoch(epoch, Duration::from_secs(600))
            .await
            .unwrap();
        times.push(t.elapsed());
        in_transition.store(false, Ordering::SeqCst);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let list: Vec<String> = times.iter().map(|t| ms(*t)).collect();
    println!(
        "n = {n}: transition (lock → all serve): {}",
        list.join(", ")
    );
    for (what, samples) in [("decrypt", &decrypts), ("pkp sign", &signs)] {
        let s = samples.lock().unwrap();
        println!(
            "n = {n}: {what:8} steady {} | during a transition {}",
            percentiles(s.steady.clone()),
            percentiles(s.transition.clone())
        );
    }
    println!(
        "n = {n}: failed requests (then reconnected): {}",
        failures.load(Ordering::SeqCst)
    );
}

fn main() {
    support::main(async {
        let sizes: Vec<usize> = std::env::var("LIT_BENCH_SIZES")
            .unwrap_or_else(|_| "5,10,20".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let epochs = env_or("LIT_BENCH_EPOCHS", 3);
        for n in sizes {
            size(n, epochs).await;
        }
    });
}
