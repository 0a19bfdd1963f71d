//! Paying with the `lit` command line, against four node processes whose membership and ledger
//! are on a devnet's embedded chain (this test binary re-executes itself as the nodes): a new
//! wallet is refused with `payment_required`; after `lit faucet` and `lit deposit` the same
//! `lit decrypt` succeeds, and once the nodes settle the deposit has fallen by exactly what the
//! nodes that served charged. A dApp's `lit delegate` then pays for another wallet's requests
//! (`--payer`) until its per-period limit, then `payment_required` again; `--max-price` below
//! the price is `price_too_high`; `lit withdraw` asks and refuses to pay before the delay.
//!
//! Then the same on the Solidity contracts on anvil, where `lit deposit`, `lit delegate` and
//! `lit withdraw` are the wallet's own transactions to the `Ledger` contract the nodes name,
//! and no node applies an account's operation for it.
//!
//! A test without the libtest harness (`harness = false`): `main` is the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lit_node::chain::payments::{Payments, Prices};
use lit_node::devnet::{
    self, AnvilProcess, DevnetChain, DevnetStaking, LayoutOptions, NodeProgram,
};
use lit_node::testnet::TestNet;
use serde_json::{json, Value};

/// Decryption 7 per node; the rest free.
const PRICES: Prices = Prices([7, 11, 0, 0, 0]);
const NODES: usize = 4;

fn main() {
    if let Some(node) = devnet::run_self_node() {
        node.unwrap();
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        println!("paying_with_the_cli: test");
        println!("paying_on_an_evm_chain: test");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(paying_with_the_cli());
    println!("test paying_with_the_cli ... ok");
    rt.block_on(paying_on_an_evm_chain());
    println!("test paying_on_an_evm_chain ... ok");
}

/// Runs `lit ARGS` on `network` as `wallet`; returns success, stdout, stderr.
fn lit(network: &str, wallet: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lit"))
        .args(args)
        .env("LIT_NETWORK", network)
        .env("LIT_WALLET", wallet)
        .env_remove("LIT_POLICY")
        .env_remove("LIT_MAX_PRICE")
        .env_remove("LIT_PAYER")
        .env("LIT_DEVNET", "true")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `lit ARGS --json`, which must succeed.
fn lit_json(network: &str, wallet: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out, err) = lit(network, wallet, &all);
    assert!(ok, "lit {args:?}: {err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("lit {args:?}: {e}: {out}"))
}

fn balance(network: &str, wallet: &Path) -> u128 {
    lit_json(network, wallet, &["balance"])["balance"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Waits until every node has read the ledger's prices (at its next settlement): a request
/// served before is free.
async fn prices_read(net: &TestNet) {
    let http = lit_node::https::any_node_client(Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in 1..=NODES as u32 {
        loop {
            let resp = http
                .get(format!("{}/v1/ledger", net.url(id)))
                .send()
                .await
                .unwrap();
            let status: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
            if status["prices"][0] == PRICES.0[0].to_string() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}",
                net.logs("prices never read")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Waits until the deposit of `wallet` stays put for three settlement intervals; returns it.
fn settled(network: &str, wallet: &Path, net: &TestNet) -> u128 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = balance(network, wallet);
    let mut same = 0;
    while same < 3 {
        std::thread::sleep(Duration::from_millis(600));
        let now = balance(network, wallet);
        if now == last {
            same += 1;
        } else {
            (last, same) = (now, 0);
        }
        assert!(Instant::now() < deadline, "{}", net.logs("never settled"));
    }
    last
}

/// Four nodes on `chain` that settle every 500 ms, at epoch 1, charging [`PRICES`]; the
/// ledger as its admin.
async fn start(chain: DevnetChain) -> (TestNet, Arc<dyn Payments>) {
    let options = LayoutOptions {
        staking: Some(DevnetStaking {
            chain,
            settle_interval_ms: 500,
            ..DevnetStaking::default()
        }),
        ..LayoutOptions::default()
    };
    let mut net = TestNet::builder(NodeProgram::this_program().unwrap(), NODES)
        .options(options)
        .start()
        .await;
    if let Err(e) = net.devnet().wait_epoch(1, Duration::from_secs(180)).await {
        panic!("{}", net.logs(&format!("epoch 1: {e}")));
    }
    let admin = net.devnet().payments_admin().await.unwrap();
    admin.set_prices(&PRICES).await.unwrap();
    (net, admin)
}

async fn paying_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (mut net, admin) = start(DevnetChain::Embedded).await;
    let network = net.network_file().display().to_string();
    let alice = dir.path().join("alice.json");
    let bob = dir.path().join("bob.json");
    let p = |name: &str| dir.path().join(name).display().to_string();
    let address = |w: &Path| {
        lit_json(&network, w, &["wallet", "address"])["address"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(lit(&network, &alice, &["wallet", "new"]).0);
    assert!(lit(&network, &bob, &["wallet", "new"]).0);
    let (alice_address, bob_address) = (address(&alice), address(&bob));

    // data for alice, data for bob
    for (who, addr) in [("alice", &alice_address), ("bob", &bob_address)] {
        let conditions = json!([{"conditionType": "evmBasic", "contractAddress": "",
            "standardContractType": "", "chain": "ethereum", "method": "", "parameters": [":userAddress"],
            "returnValueTest": {"comparator": "=", "value": addr}}]);
        std::fs::write(p(&format!("{who}.conditions")), conditions.to_string()).unwrap();
        std::fs::write(p(&format!("{who}.txt")), format!("for {who}")).unwrap();
        let (ok, _, err) = lit(
            &network,
            &alice,
            &[
                "encrypt",
                "--conditions",
                &p(&format!("{who}.conditions")),
                "--in",
                &p(&format!("{who}.txt")),
                "--out",
                &p(&format!("{who}.enc")),
            ],
        );
        assert!(ok, "{err}");
    }
    let decrypt = |wallet: &Path, who: &str, extra: &[&str]| {
        let mut args = vec!["decrypt", "--in", "", "--out", "-"];
        let input = p(&format!("{who}.enc"));
        args[2] = &input;
        args.extend_from_slice(extra);
        lit(&network, wallet, &args)
    };

    // once the nodes have read the prices, a new wallet is refused by every node
    prices_read(&net).await;
    let (ok, _, refused) = decrypt(&alice, "alice", &[]);
    assert!(!ok && refused.contains("payment_required"), "{refused}");
    assert!(!refused.contains("price_too_high"), "{refused}");
    // a maximum price below the price: price_too_high, before the balance is looked at
    let (ok, _, err) = decrypt(&alice, "alice", &["--max-price", "6"]);
    assert!(!ok && err.contains("price_too_high"), "{err}");

    // the faucet, a deposit: the same request succeeds
    let got = lit_json(&network, &alice, &["faucet"]);
    assert_eq!(got["given"], (1000 * 10u128.pow(18)).to_string());
    let (ok, _, err) = lit(&network, &alice, &["deposit", "1000"]);
    assert!(ok, "{err}");
    assert_eq!(balance(&network, &alice), 1000);
    let (ok, out, err) = decrypt(&alice, "alice", &[]);
    assert!(ok, "{err}");
    assert_eq!(out, "for alice");
    // what it cost: the price once per node that served (at least T of them), each paid to
    // that node
    let after = settled(&network, &alice, &net);
    let spent = 1000 - after;
    let threshold = net.network().threshold as u128;
    assert!(
        spent.is_multiple_of(7) && (threshold..=NODES as u128).contains(&(spent / 7)),
        "one decryption cost {spent}"
    );
    let mut paid = 0;
    for id in 1..=NODES as u32 {
        let node = net.devnet().staking_as(id).await.unwrap().caller();
        paid += admin.rewards(node).await.unwrap();
    }
    assert_eq!(paid, spent);

    // alice pays for bob: one node request per hour
    let (ok, _, err) = decrypt(&bob, "bob", &["--payer", &alice_address]);
    assert!(!ok && err.contains("payment_required"), "{err}");
    let (ok, _, err) = lit(
        &network,
        &alice,
        &[
            "delegate",
            "--to",
            &bob_address,
            "--limit",
            "500",
            "--requests",
            "1",
            "--period",
            "3600",
        ],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = decrypt(&bob, "bob", &["--payer", &alice_address]);
    assert!(ok, "{err}");
    assert_eq!(out, "for bob");
    let now = settled(&network, &alice, &net);
    assert!(
        now < after && (after - now).is_multiple_of(7),
        "{after} then {now}"
    );
    let shown = lit_json(&network, &bob, &["balance", "--payer", &alice_address]);
    assert_eq!(shown["balance"], "0");
    assert_eq!(shown["delegation"]["spent"], (after - now).to_string());
    // the period's request is used: every node refuses
    let (ok, _, err) = decrypt(&bob, "bob", &["--payer", &alice_address]);
    assert!(!ok && err.contains("payment_required"), "{err}");
    assert!(!err.contains("for bob"));

    // withdrawals wait for the ledger's delay
    let (ok, _, err) = lit(&network, &alice, &["withdraw", "100"]);
    assert!(ok, "{err}");
    let (ok, _, err) = lit(&network, &alice, &["withdraw", "--complete"]);
    assert!(!ok && err.contains("withdrawal delay not over"), "{err}");
    let shown = lit_json(&network, &alice, &["balance"]);
    assert_eq!(shown["withdrawal"], "100");
    assert_eq!(shown["prices"]["decryption"], "7");
    // a bad amount is refused before anything is sent
    let (ok, _, err) = lit(&network, &alice, &["deposit", "1.5"]);
    assert!(!ok && err.contains("not a decimal amount"), "{err}");
}

async fn paying_on_an_evm_chain() {
    let dir = tempfile::tempdir().unwrap();
    let chain = AnvilProcess::start(&dir.path().join("anvil"))
        .await
        .unwrap();
    let (mut net, admin) = start(DevnetChain::Evm {
        rpc_url: chain.url.clone(),
    })
    .await;
    let network = net.network_file().display().to_string();
    let carol = dir.path().join("carol.json");
    let p = |name: &str| dir.path().join(name).display().to_string();
    assert!(lit(&network, &carol, &["wallet", "new"]).0);
    let carol_address = lit_json(&network, &carol, &["wallet", "address"])["address"]
        .as_str()
        .unwrap()
        .to_string();
    let conditions = json!([{"conditionType": "evmBasic", "contractAddress": "",
        "standardContractType": "", "chain": "ethereum", "method": "", "parameters": [":userAddress"],
        "returnValueTest": {"comparator": "=", "value": carol_address}}]);
    std::fs::write(p("c.conditions"), conditions.to_string()).unwrap();
    std::fs::write(p("c.txt"), "for carol").unwrap();
    let (ok, _, err) = lit(
        &network,
        &carol,
        &[
            "encrypt",
            "--conditions",
            &p("c.conditions"),
            "--in",
            &p("c.txt"),
            "--out",
            &p("c.enc"),
        ],
    );
    assert!(ok, "{err}");

    // a new wallet has no ETH for gas and no tokens: the faucet gives both, then it deposits
    // with its own transactions (approve, deposit)
    let shown = lit_json(&network, &carol, &["balance"]);
    assert_eq!(
        (shown["backend"].as_str(), shown["tokens"].as_str()),
        (Some("evm"), Some("0"))
    );
    let (ok, _, err) = lit(&network, &carol, &["deposit", "1000"]);
    assert!(!ok && err.contains("no ETH to pay for the gas"), "{err}");
    lit_json(&network, &carol, &["faucet"]);
    let (ok, _, err) = lit(&network, &carol, &["deposit", "1000"]);
    assert!(ok, "{err}");
    assert_eq!(balance(&network, &carol), 1000);
    prices_read(&net).await;
    let (ok, _, err) = lit(
        &network,
        &carol,
        &[
            "decrypt",
            "--in",
            &p("c.enc"),
            "--out",
            "-",
            "--max-price",
            "0",
        ],
    );
    assert!(!ok && err.contains("price_too_high"), "{err}");
    let (ok, out, err) = lit(
        &network,
        &carol,
        &["decrypt", "--in", &p("c.enc"), "--out", "-"],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "for carol");
    let after = settled(&network, &carol, &net);
    let mut paid = 0;
    for id in 1..=NODES as u32 {
        let node = net.devnet().staking_as(id).await.unwrap().caller();
        paid += admin.rewards(node).await.unwrap();
    }
    assert_eq!(paid, 1000 - after);
    assert!(paid >= 7 * net.network().threshold as u128, "{paid}");

    // a delegation and a withdrawal request are carol's transactions too; the contract refuses
    // to pay the withdrawal before its delay, with its reason
    let (ok, _, err) = lit(
        &network,
        &carol,
        &[
            "delegate",
            "--to",
            "0x00000000000000000000000000000000000000d4",
            "--limit",
            "100",
        ],
    );
    assert!(ok, "{err}");
    let shown = lit_json(
        &network,
        &carol,
        &[
            "balance",
            "0x00000000000000000000000000000000000000d4",
            "--payer",
            &carol_address,
        ],
    );
    assert_eq!(shown["delegation"]["totalLimit"], "100");
    let (ok, _, err) = lit(&network, &carol, &["withdraw", "10"]);
    assert!(ok, "{err}");
    let (ok, _, err) = lit(&network, &carol, &["withdraw", "--complete"]);
    assert!(!ok && err.contains("withdrawal delay not over"), "{err}");

    // no node applies an account's operation on an EVM chain, whoever approved it
    let http = lit_node::https::any_node_client(Duration::from_secs(10)).unwrap();
    let resp = http
        .post(format!("{}/v1/ledger/op", net.url(1)))
        .header("content-type", "application/json")
        .body(
            json!({"account": carol_address, "op": {"op": "withdraw"},
                   "approval": {"nonce": "00".repeat(32), "expiresAt": "2026-01-01T00:00:00Z",
                                "signature": format!("0x{}", "00".repeat(65))}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "not_permitted", "{body}");
}
