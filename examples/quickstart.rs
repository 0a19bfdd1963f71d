//! Quickstart: a five-node Lit network on this machine, doing the main flow end to end.
//!
//! 1. Start five node processes on loopback. Each stakes and joins on a staking contract (the
//!    embedded one: an SQLite file, nothing to install); they run a distributed key generation
//!    (no machine ever holds the network key) and serve epoch 1.
//! 2. Connect a client: it handshakes with every node, checks each node's attestation (simulated
//!    on a development network) and that all nodes agree on the epoch and the keys.
//! 3. Alice encrypts a secret under a condition that needs no chain: "the caller is Alice"
//!    (`:userAddress` equals her address). Encryption is local; no node sees the secret.
//! 4. Alice decrypts: four nodes (the threshold) each check her wallet signature and the
//!    condition, and return their share of the decryption key sealed to her; the client
//!    verifies every share and combines them.
//! 5. Bob asks too and is refused by every node.
//! 6. Alice mints a Programmable Key Pair (a key derived from the network's threshold ECDSA key)
//!    and runs a Lit Action on four nodes that signs with it; the client combines their shares
//!    into a signature that recovers to the PKP's Ethereum address.
//! 7. A sixth operator stakes and joins; at the next epoch the six nodes reshare the keys (the
//!    public keys stay the same) and Alice's old ciphertext still decrypts.
//! 8. One node is stopped; Alice still decrypts with the other five.
//!
//! `cargo run --release -p lit-examples --example quickstart`
//!
//! The example re-executes itself as the node processes (`quickstart node --config FILE`), so
//! it needs nothing but this workspace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error;
use std::time::{Duration, Instant};

use lit_client::{Bootstrap, ConnectOptions, LitClient, Wallet};
use lit_node::devnet::{self, Devnet, DevnetStaking, LayoutOptions, NodeProgram};
use sha3::Digest as _;

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
    // each node binds a free port itself and reports it; the devnet writes the network file
    let options = LayoutOptions {
        staking: Some(DevnetStaking::default()),
        ..LayoutOptions::default()
    };
    let layout = devnet::layout(dir.path(), 5, &options)?;
    let node = NodeProgram::this_program()?;
    let started = Instant::now();
    let mut net = Devnet::start(layout, move |_| node.command(), &Default::default()).await?;
    net.wait_ready(&[1, 2, 3, 4, 5], Duration::from_secs(120), |ready, n| {
        println!("   DKG: {ready}/{n} nodes hold their key shares");
    })
    .await?;
    println!(
        "   ready in {} (threshold {} of {})",
        ms(started.elapsed()),
        net.network().threshold,
        net.network().nodes.len()
    );

    println!("2. Connecting a client (handshake, attestation, key agreement)");
    let t = Instant::now();
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await?;
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

    println!("6. Alice mints a PKP and runs a Lit Action that signs with it");
    let t = Instant::now();
    let pkp = client.mint_pkp(&alice).await?;
    println!("   PKP {} minted in {}", pkp.eth_address, ms(t.elapsed()));
    // the action signs the hash it is given (a real one would compute or check it first)
    let action = r#"
await Lit.Actions.signEcdsa({ toSign: digest, publicKey, sigName: "greeting" });
Lit.Actions.setResponse({ response: `signed for ${Lit.Auth.authSigAddress}` });
"#;
    let digest: [u8; 32] = sha3::Keccak256::digest(b"hello from a Lit Action").into();
    let t = Instant::now();
    let out = client
        .execute_js(
            lit_client::ExecuteJs::code(action)
                .param("digest", serde_json::json!(digest.to_vec()))
                .param("publicKey", hex::encode(&pkp.public_key.0))
                // Alice's session lets the action run and sign with her PKP, nothing else
                .wallet(&alice)
                .grant(lit_client::pkp_grant(&pkp)?),
        )
        .await?;
    let sig = out
        .signatures
        .get("greeting")
        .ok_or("the action returned no signature")?;
    let signer = lit_crypto::eth::recover_address(&digest, &sig.signature.to_ethereum_bytes())?;
    println!(
        "   nodes {:?} ran it in {} ({:?}); signature 0x{}… recovers to {} in {}",
        out.group,
        out.usage.values().next().map_or("?", |u| u.engine.as_str()),
        out.agreed_response()?.unwrap_or_default(),
        &hex::encode(sig.signature.to_ethereum_bytes())[..16],
        signer,
        ms(t.elapsed())
    );
    assert_eq!(signer.to_checksum(), pkp.eth_address);

    println!("7. A sixth node stakes and joins; the network reshares its keys to epoch 2");
    let t = Instant::now();
    let six = net.add_node().await?;
    net.lock_next_epoch().await?;
    let members = net.wait_epoch(2, Duration::from_secs(120)).await?;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await?;
    println!(
        "   node {six} joined; {} members serve epoch {} (threshold {}) with the same BLS key \
         {}… ({})",
        members.len(),
        client.epoch(),
        client.threshold(),
        &hex::encode(client.network_public_key().to_bytes())[..16],
        ms(t.elapsed())
    );
    let t = Instant::now();
    let plain = client.decrypt(&encrypted, &alice).await?;
    assert_eq!(plain, secret);
    println!(
        "   Alice's epoch-1 ciphertext decrypts at epoch 2 in {}",
        ms(t.elapsed())
    );

    println!("8. Stopping node 3; Alice decrypts again");
    net.kill(3);
    let t = Instant::now();
    let plain = client.decrypt(&encrypted, &alice).await?;
    assert_eq!(plain, secret);
    println!(
        "   decrypted again with {} of {} nodes in {}",
        members.len() - 1,
        members.len(),
        ms(t.elapsed())
    );

    println!("Stopping the network.");
    drop(net);
    println!("Done in {}.", ms(total.elapsed()));
    Ok(())
}
