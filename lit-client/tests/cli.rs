//! The `lit` command line against a real network: three node processes on loopback (this test
//! binary re-executes itself as the nodes, so it needs no other binary), then `lit wallet`,
//! `lit handshake`, `lit encrypt` and `lit decrypt` as a user would run them, including the
//! error a refused wallet gets, then `lit pkp …` and `lit action …`.
//!
//! A test without the libtest harness (`harness = false`): `main` is the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use lit_node::devnet::{self, NodeProgram};
use lit_node::testnet::TestNet;
use serde_json::{json, Value};

fn main() {
    // this binary is also the node processes of the test network
    if let Some(node) = devnet::run_self_node() {
        node.unwrap();
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::args().any(|a| a == "--list") {
        println!("cli_against_real_nodes: test");
        return;
    }
    rt.block_on(cli_against_real_nodes());
    println!("test cli_against_real_nodes ... ok");
}

/// Runs `lit ARGS`; returns success, stdout, stderr.
fn lit(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lit"))
        .args(args)
        .env_remove("LIT_NETWORK")
        .env_remove("LIT_WALLET")
        .env_remove("LIT_POLICY")
        .env("LIT_DEVNET", "true")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

async fn cli_against_real_nodes() {
    let dir = tempfile::tempdir().unwrap();
    // no presignature pools: a test network has none unless asked
    let net = TestNet::builder(NodeProgram::this_program().unwrap(), 3)
        .start()
        .await;
    let p = |name: &str| dir.path().join(name).display().to_string();
    let network = net.network_file().display().to_string();

    // wallets
    let (ok, stdout, stderr) = lit(&["wallet", "new", "--out", &p("alice.json")]);
    assert!(ok, "{stderr}");
    let alice = stdout.trim().to_string();
    assert!(alice.starts_with("0x") && alice.len() == 42, "{alice}");
    let (ok, _, stderr) = lit(&["wallet", "new", "--out", &p("alice.json")]);
    assert!(!ok && stderr.contains("refusing to overwrite"), "{stderr}");
    let (ok, stdout, _) = lit(&["--wallet", &p("alice.json"), "--json", "wallet", "address"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["address"], alice.as_str());
    let (ok, _, _) = lit(&["wallet", "new", "--out", &p("bob.json")]);
    assert!(ok);

    // handshake: table and JSON
    let (ok, stdout, stderr) = lit(&["--network", &network, "--json", "handshake"]);
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (v["epoch"].as_u64(), v["threshold"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(v["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(v["nodes"][0]["attestation"], "simulated");
    let (ok, stdout, _) = lit(&["--network", &network, "handshake"]);
    assert!(
        ok && stdout.contains("simulated") && stdout.contains(&net.url(1)),
        "{stdout}"
    );

    // encrypt for Alice, decrypt as Alice
    let conditions = json!([{"conditionType": "evmBasic", "contractAddress": "",
        "standardContractType": "", "chain": "ethereum", "method": "",
        "parameters": [":userAddress"], "returnValueTest": {"comparator": "=", "value": alice}}]);
    std::fs::write(p("conditions.json"), conditions.to_string()).unwrap();
    std::fs::write(p("plain.txt"), b"from the command line").unwrap();
    let (ok, _, stderr) = lit(&[
        "--network",
        &network,
        "encrypt",
        "--conditions",
        &p("conditions.json"),
        "--in",
        &p("plain.txt"),
        "--out",
        &p("secret.json"),
    ]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = lit(&[
        "--network",
        &network,
        "--wallet",
        &p("alice.json"),
        "decrypt",
        "--in",
        &p("secret.json"),
        "--out",
        &p("out.txt"),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(
        std::fs::read(p("out.txt")).unwrap(),
        b"from the command line"
    );

    // Bob is refused: typed error on stderr, non-zero exit, no output file
    let (ok, stdout, stderr) = lit(&[
        "--network",
        &network,
        "--wallet",
        &p("bob.json"),
        "decrypt",
        "--in",
        &p("secret.json"),
        "--out",
        &p("bob.txt"),
    ]);
    assert!(!ok && stdout.is_empty());
    assert!(
        stderr.starts_with("error: access control conditions are not met"),
        "{stderr}"
    );
    assert!(!Path::new(&p("bob.txt")).exists());

    // PKPs: Alice mints one and signs a message with it; Bob may not until she permits him
    let (ok, stdout, stderr) = lit(&[
        "--network",
        &network,
        "--wallet",
        &p("alice.json"),
        "--json",
        "pkp",
        "mint",
    ]);
    assert!(ok, "{stderr}");
    let pkp: Value = serde_json::from_str(&stdout).unwrap();
    let token = pkp["tokenId"].as_str().unwrap().to_string();
    let pkp_address = pkp["ethAddress"].as_str().unwrap().to_string();
    let sign_as = |wallet: &str| {
        lit(&[
            "--network",
            &network,
            "--wallet",
            &p(wallet),
            "pkp",
            "sign",
            "--pkp",
            &token,
            "--message",
            "signed on the command line",
        ])
    };
    let (ok, stdout, stderr) = sign_as("alice.json");
    assert!(ok, "{stderr}");
    let sig = hex::decode(stdout.trim().trim_start_matches("0x")).unwrap();
    let signer = lit_crypto::eth::recover_address(
        &lit_crypto::eth::eip191_hash(b"signed on the command line"),
        &sig,
    )
    .unwrap();
    assert_eq!(signer.to_checksum(), pkp_address);
    let (ok, _, stderr) = sign_as("bob.json");
    assert!(!ok && stderr.contains("not_permitted"), "{stderr}");
    let bob = {
        let (_, out, _) = lit(&["--wallet", &p("bob.json"), "wallet", "address"]);
        out.trim().to_string()
    };
    let (ok, _, stderr) = lit(&[
        "--network",
        &network,
        "--wallet",
        &p("alice.json"),
        "pkp",
        "permit",
        "--pkp",
        &token,
        "--address",
        &bob,
    ]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = sign_as("bob.json");
    assert!(ok, "{stderr}");

    // Lit Actions: upload, run inline and by id, sign with Alice's PKP, errors and divergence
    actions(&network, &p, &pkp).await;

    // a missing network file is a clear error too
    let (ok, _, stderr) = lit(&["--network", &p("nope.json"), "handshake"]);
    assert!(!ok && stderr.contains("nope.json"), "{stderr}");
    drop(net);
}

/// `lit action upload` and `lit action run` against the running nodes (2 of 3).
async fn actions(network: &str, p: &dyn Fn(&str) -> String, pkp: &Value) {
    let code = "console.log(`hello from the CLI`);\nLit.Actions.setResponse({ response: `hi ${name}` });\n";
    std::fs::write(p("hello.js"), code).unwrap();
    let cid = lit_api::ActionId::of(code.as_bytes()).to_string();

    // upload: the CID computed locally, confirmed by every node
    let (ok, stdout, stderr) = lit(&["--network", network, "action", "upload", &p("hello.js")]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), cid);
    let (ok, stdout, stderr) = lit(&[
        "--network",
        network,
        "--json",
        "action",
        "upload",
        &p("hello.js"),
    ]);
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["ipfsId"], cid.as_str());
    assert_eq!(v["stored"], json!([1, 2, 3]));

    // run the file, anonymously: response and logs for humans
    let (ok, stdout, stderr) = lit(&[
        "--network",
        network,
        "--wallet",
        &p("nobody.json"),
        "action",
        "run",
        &p("hello.js"),
        "--params",
        r#"{"name": "cli"}"#,
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("response: hi cli"), "{stdout}");
    assert!(stdout.contains("hello from the CLI"), "{stdout}");
    assert!(stdout.contains(&cid), "{stdout}");

    // run it by id as Alice, JSON
    std::fs::write(p("params.json"), r#"{"name": "by id"}"#).unwrap();
    let (ok, stdout, stderr) = lit(&[
        "--network",
        network,
        "--wallet",
        &p("alice.json"),
        "--json",
        "action",
        "run",
        "--ipfs-id",
        &cid,
        "--params",
        &format!("@{}", p("params.json")),
    ]);
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["response"], "hi by id");
    assert_eq!(v["agreed"], true);
    assert_eq!(v["ipfsId"], cid.as_str());
    assert_eq!(v["group"].as_array().unwrap().len(), 2);
    assert!(v["logs"].as_str().unwrap().contains("hello from the CLI"));
    assert_eq!(v["usage"].as_object().unwrap().len(), 2);

    // an action signing with Alice's PKP (she owns it): the signature recovers to the PKP
    let sign = "await Lit.Actions.signEcdsa({ toSign, publicKey, sigName: \"sig\" });\n";
    std::fs::write(p("sign.js"), sign).unwrap();
    let digest = lit_crypto::eth::eip191_hash(b"an action signed this on the command line");
    let params = json!({"toSign": digest.to_vec(), "publicKey": pkp["publicKey"]}).to_string();
    let (alice_wallet, sign_js) = (p("alice.json"), p("sign.js"));
    let run_sign = |json: bool, auth: &str, grant: Option<&str>| {
        let mut args = vec!["--network", network, "--wallet", alice_wallet.as_str()];
        if json {
            args.push("--json");
        }
        args.extend([
            "action",
            "run",
            sign_js.as_str(),
            "--params",
            params.as_str(),
        ]);
        args.extend(["--auth", auth]);
        if let Some(token) = grant {
            args.extend(["--grant-pkp", token]);
        }
        lit(&args)
    };
    // a wallet session to run the action only: it does not bring Alice's PKP along
    let (ok, _, stderr) = run_sign(false, "wallet", None);
    assert!(!ok && stderr.contains("not permitted"), "{stderr}");
    let (ok, stdout, stderr) = run_sign(true, "wallet", pkp["tokenId"].as_str());
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let sig = &v["signatures"]["sig"];
    assert_eq!(sig["ethAddress"], pkp["ethAddress"]);
    assert_eq!(sig["digest"], format!("0x{}", hex::encode(digest)));
    let bytes = hex::decode(sig["signature"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    assert_eq!(bytes.len(), 65);
    let signer = lit_crypto::eth::recover_address(&digest, &bytes).unwrap();
    assert_eq!(signer.to_checksum(), pkp["ethAddress"].as_str().unwrap());
    // anonymous, the same action is refused: the PKP permits neither the caller nor the action
    let (ok, _, stderr) = run_sign(false, "none", None);
    assert!(!ok && stderr.contains("action_failed"), "{stderr}");

    // an action that throws: every node's message, verbatim
    std::fs::write(p("throw.js"), "throw new Error(\"boom from the CLI\");\n").unwrap();
    let (ok, stdout, stderr) = lit(&["--network", network, "action", "run", &p("throw.js")]);
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(
        stderr.matches("refused (action_failed)").count() == 2
            && stderr.contains("boom from the CLI"),
        "{stderr}"
    );

    // responses that differ between the nodes: shown per node, exit status 1
    std::fs::write(
        p("random.js"),
        "Lit.Actions.setResponse({ response: String(Math.random()) });\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = lit(&["--network", network, "action", "run", &p("random.js")]);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("responses differ"), "{stdout}");
    assert!(
        stderr.contains("disagree about the action response"),
        "{stderr}"
    );

    // bad invocations
    let (ok, _, stderr) = lit(&["--network", network, "action", "run", "--ipfs-id", "QmNope"]);
    assert!(!ok && stderr.contains("QmNope"), "{stderr}");
    let (ok, _, stderr) = lit(&[
        "--network",
        network,
        "action",
        "run",
        &p("hello.js"),
        "--params",
        "[1]",
    ]);
    assert!(
        !ok && stderr.contains("--params must be a JSON object"),
        "{stderr}"
    );
}
