//! Lit Action execution against a 5-node devnet on loopback (real node processes, real HTTP,
//! T = 4), per engine: latency of an empty action and of an action that signs with a PKP
//! (`signEcdsa`, shares combined by the client) starting from full presignature pools (which
//! refill in the background as the run uses them).
//!
//! `cargo bench -p lit-benches --bench execute`
//! (`LIT_BENCH_SAMPLES`, default 100, sets the sample count per measurement.)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lit_client::{Bootstrap, ConnectOptions, ExecuteJs, LitClient, Wallet};
use lit_node::devnet::LayoutOptions;
use serde_json::json;

#[path = "support/devnet.rs"]
mod support;

use support::{env_or, percentiles, refilled};

const EMPTY: &str = "";
const SIGN: &str = r#"
await Lit.Actions.signEcdsa({ toSign, publicKey, sigName: "sig" });
Lit.Actions.setResponse({ response: "signed" });
"#;

/// Presignatures the pools hold per rotation group (5 groups).
const POOL: usize = 24;

async fn bench_engine(engine: &str, deno: Option<&std::path::Path>) {
    let mut extra = format!("[actions]\nengine = \"{engine}\"\n");
    if let Some(d) = deno {
        extra.push_str(&format!("deno = \"{}\"\n", d.display()));
    }
    let options = LayoutOptions {
        presignature_pool: Some(POOL),
        extra_config: extra,
        ..LayoutOptions::default()
    };
    let net = support::start(5, &options, "info").await;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    let owner = Wallet::random();
    let pkp = client.mint_pkp(&owner).await.unwrap();
    let n = env_or("LIT_BENCH_SAMPLES", 100);

    // wait for the pools (5 groups x POOL) first: their generation would load the CPUs
    let t = Instant::now();
    while refilled(&net) < 5 * POOL && t.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "execute/{engine}: pools filled with {} presignatures in {:.1} s",
        refilled(&net),
        t.elapsed().as_secs_f64()
    );
    // warm-up (Deno's warm process pool, QuickJS's first runtime, HTTP connections)
    for _ in 0..5 {
        client.execute_js(ExecuteJs::code(EMPTY)).await.unwrap();
    }
    let mut lat = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        client.execute_js(ExecuteJs::code(EMPTY)).await.unwrap();
        lat.push(t.elapsed());
    }
    println!("execute/{engine}/empty action: {}", percentiles(lat));

    let mut lat = Vec::new();
    for i in 0..n {
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&i.to_be_bytes());
        let run = ExecuteJs::code(SIGN)
            .param("toSign", json!(digest.to_vec()))
            .param("publicKey", json!(hex::encode(&pkp.public_key.0)))
            .wallet(&owner)
            .grant(lit_client::pkp_grant(&pkp).unwrap());
        let t = Instant::now();
        let out = client.execute_js(run).await.unwrap();
        lat.push(t.elapsed());
        assert!(out.signatures.contains_key("sig"));
    }
    // the first requests find every pool full; after them, each used presignature is being
    // regenerated in the background on the same two cores while the next requests run
    println!(
        "execute/{engine}/sign with a PKP, first 10 (pools full): {}",
        percentiles(lat[..lat.len().min(10)].to_vec())
    );
    println!(
        "execute/{engine}/sign with a PKP, all (pools refilling meanwhile): {}",
        percentiles(lat)
    );
}

fn main() {
    support::main(async {
        bench_engine("quickjs", None).await;
        match lit_actions::engine::deno::find_deno() {
            Some(deno) => bench_engine("deno", Some(&deno)).await,
            None => println!("execute/deno: skipped, no deno binary (./test.sh installs one)"),
        }
    });
}
