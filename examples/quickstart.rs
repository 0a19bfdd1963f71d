//! Quickstart: a five-node Lit network on this machine, doing the main flow end to end.
//!
//! 1. Start five node processes on loopback. They run a distributed key generation (no machine
//!    ever holds the network key) and serve.
//! 2. Connect a client: it handshakes with every node, checks each node's attestation (simulated
//!    on a development network) and that all nodes agree on the epoch and the keys.
//! 3. Alice encrypts a secret under a condition that needs no chain: "the caller is Alice"
//!    (`:userAddress` equals her address). Encryption is local; no node sees the secret.
//! 4. Alice decrypts: four nodes (the threshold) each check her wallet signature and the
//!    condition, and return their share of the decryption key sealed to her; the client
//!    verifies every share and combines them.
//! 5. Bob asks too and is refused by every node.
//! 6. One node is stopped; Alice still decrypts with the other four.
//!
//! `cargo run --release -p lit-examples --example quickstart`
//!
//! The example re-executes itself as the node processes (`quickstart node --config FILE`), so
//! it needs nothing but this workspace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error;
use std::time::{Duration, Instant};

use lit_client::{Bootstrap, LitClient, Wallet};
use lit_node::devnet::{self, LayoutOptions};

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> Result<(), Box<dyn Error>> {
    if let Some(node) = devnet::run_self_node() {
        return Ok(node?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(quickstart())
}

async fn quickstart() -> Result<(), Box<dyn Error>> {
    let total = Instant::now();
    let dir = tempfile::tempdir()?;
    println!(
        "1. Starting a 5-node network on loopback (in {})",
        dir.path().display()
    );
    let layout = devnet::layout(dir.path(), 5, &LayoutOptions::default())?;
    let mut nodes = devnet::spawn_all(&layout, &devnet::self_command()?)?;
    let started = Instant::now();
    devnet::wait_ready(&mut nodes, Duration::from_secs(120), |ready, n| {
        println!("   DKG: {ready}/{n} nodes hold their key shares");
    })
    .await?;
    println!(
        "   ready in {} (threshold {} of {})",
        ms(started.elapsed()),
        layout.network.threshold,
        layout.network.nodes.len()
    );

    println!("2. Connecting a client (handshake, attestation, key agreement)");
    let t = Instant::now();
    let client = LitClient::connect(Bootstrap::NetworkFile(layout.network_file())).await?;
    println!(
        "   {} nodes agree on epoch {}; network BLS key {}… ({})",
        client.nodes().len(),
        client.epoch(),
        &hex::encode(client.network_public_key().to_bytes())[..16],
        ms(t.elapsed())
    );

    let alice = Wallet::random();
    let bob = Wallet::random();
    println!(
        "3. Alice ({}) encrypts a secret only she may decrypt",
        alice.address()
    );
    let conditions = serde_json::json!([{
        "conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
        "chain": "ethereum", "method": "", "parameters": [":userAddress"],
        "returnValueTest": {"comparator": "=", "value": alice.address().to_checksum()}
    }]);
    let secret = b"the launch code is 0000";
    let t = Instant::now();
    let encrypted = client.encrypt(&conditions, secret)?;
    println!(
        "   ciphertext: {} bytes, locally in {}",
        encrypted.ciphertext.0.len(),
        ms(t.elapsed())
    );

    println!("4. Alice decrypts (shares from the threshold of nodes, each verified)");
    let t = Instant::now();
    let plain = client.decrypt(&encrypted, &alice).await?;
    println!(
        "   decrypted {:?} in {}",
        String::from_utf8_lossy(&plain),
        ms(t.elapsed())
    );
    assert_eq!(plain, secret);

    println!("5. Bob ({}) tries the same", bob.address());
    match client.decrypt(&encrypted, &bob).await {
        Ok(_) => return Err("Bob decrypted Alice's secret".into()),
        Err(e) => println!("   refused, as it should be: {e}"),
    }

    let stopped = nodes.remove(2);
    println!(
        "6. Stopping node {}; Alice decrypts again",
        stopped.party_id
    );
    drop(stopped);
    let t = Instant::now();
    let plain = client.decrypt(&encrypted, &alice).await?;
    assert_eq!(plain, secret);
    println!(
        "   decrypted again with 4 of 5 nodes in {}",
        ms(t.elapsed())
    );

    println!("Stopping the network.");
    drop(nodes);
    println!("Done in {}.", ms(total.elapsed()));
    Ok(())
}
