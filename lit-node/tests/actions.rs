//! Lit Actions across a real network of node processes (n = 4, T = 3), in both engines, through
//! the client SDK: signing with a PKP (permitted by the caller or by the action's CID, refused
//! otherwise), signatures combined by the client and inside the nodes and checked by
//! libsecp256k1, condition-gated decryption inside the nodes, `runOnce` on exactly one node,
//! `broadcastAndCollect` seeing every member's value, `fetch` reaching an allowed local HTTP
//! server but not another one, and `getRpcUrl` answering only callers that authenticated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use lit_api::v1::{PermissionChange, PkpInfo};
use lit_api::ErrorCode;
use lit_client::{Bootstrap, ClientError, ConnectOptions, ExecuteJs, LitClient, Wallet};
use lit_crypto::eth::Address;
use lit_node::devnet::LayoutOptions;
use serde_json::{json, Value};
use sha3::Digest as _;
use support::net::{testnet, user_is};

const N: usize = 4;

/// A local HTTP server: `/ping` answers `pong`, `/count` counts its hits.
struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
}

async fn server() -> Server {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new()
        .route("/ping", axum::routing::get(|| async { "pong" }))
        .route(
            "/count",
            axum::routing::get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                async move { n.to_string() }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server { port, hits }
}

/// Recovers the signer of `digest` with libsecp256k1 (independent of our code).
fn libsecp_signer(rsv: &[u8], digest: &[u8; 32]) -> Address {
    let secp = secp256k1::Secp256k1::new();
    let v = i32::from(rsv[64] % 27);
    let sig = secp256k1::ecdsa::RecoverableSignature::from_compact(
        &rsv[..64],
        secp256k1::ecdsa::RecoveryId::try_from(v).unwrap(),
    )
    .unwrap();
    let key = secp
        .recover_ecdsa(&secp256k1::Message::from_digest(*digest), &sig)
        .unwrap();
    Address::from_public_key(
        &k256::ecdsa::VerifyingKey::from_sec1_bytes(&key.serialize_uncompressed()).unwrap(),
    )
}

/// `code` with the parameters to decrypt `data` (encrypted under `conditions`).
fn decrypting<'a>(
    code: &str,
    conditions: &Value,
    data: &lit_client::EncryptedData,
) -> ExecuteJs<'a> {
    ExecuteJs::code(code)
        .param("accessControlConditions", conditions.clone())
        .param(
            "ciphertext",
            base64::engine::general_purpose::STANDARD.encode(&data.ciphertext.0),
        )
        .param(
            "dataToEncryptHash",
            hex::encode(data.data_to_encrypt_hash.0),
        )
}

/// Names the lifetime a closure's `ExecuteJs` borrows its caller for.
fn caller_run<F: for<'a> Fn(Option<&'a Wallet>, bool) -> ExecuteJs<'a>>(f: F) -> F {
    f
}

/// Names the lifetime a closure's `ExecuteJs` borrows its wallet for.
fn wallet_run<F: for<'a> Fn(&'a Wallet) -> ExecuteJs<'a>>(f: F) -> F {
    f
}

fn failure_text(err: &ClientError) -> String {
    err.failures()
        .iter()
        .map(|f| f.reason.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

fn has_code(err: &ClientError, code: ErrorCode) -> bool {
    !err.failures().is_empty() && err.failures().iter().all(|f| f.reason.code() == Some(code))
}

const SIGN: &str = r#"
await Lit.Actions.signEcdsa({ toSign, publicKey, sigName: "client-combined" });
const inside = await Lit.Actions.signAndCombineEcdsa({ toSign, publicKey, sigName: "node-combined" });
Lit.Actions.setResponse({ response: inside });
"#;

async fn signing(client: &LitClient, pkp: &PkpInfo, owner: &Wallet) {
    let digest: [u8; 32] = sha3::Keccak256::digest(b"an action signs this").into();
    // a wallet caller's session grants the execution, and pkp-signing on the PKP if asked
    let with_grant = caller_run(|caller: Option<&Wallet>, grant: bool| {
        let run = ExecuteJs::code(SIGN)
            .param("toSign", json!(digest.to_vec()))
            .param("publicKey", json!(hex::encode(&pkp.public_key.0)));
        match caller {
            Some(w) if grant => run.wallet(w).grant(lit_client::pkp_grant(pkp).unwrap()),
            Some(w) => run.wallet(w),
            None => run.anonymous(),
        }
    });
    let run = caller_run(move |caller: Option<&Wallet>, _| with_grant(caller, true));
    let pkp_address = Address::parse(&pkp.eth_address).unwrap();

    // the owner's session to run this action only: it does not bring the owner's PKPs along
    let err = client
        .execute_js(with_grant(Some(owner), false))
        .await
        .unwrap_err();
    assert!(has_code(&err, ErrorCode::ActionFailed), "{err:?}");
    assert!(failure_text(&err).contains("not permitted"), "{err}");

    // the owner, whose session also grants pkp-signing on the PKP: permitted by address
    let out = client.execute_js(run(Some(owner), true)).await.unwrap();
    let sig = &out.signatures["client-combined"];
    assert_eq!(sig.digest, digest);
    assert_eq!(sig.eth_address, pkp_address);
    assert_eq!(
        libsecp_signer(&sig.signature.to_ethereum_bytes(), &digest),
        pkp_address
    );
    // the signature combined inside the nodes: every member returned the same one
    let inside: Value = serde_json::from_str(out.agreed_response().unwrap().unwrap()).unwrap();
    let rsv = hex::decode(
        inside["signature"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
    )
    .unwrap();
    assert_eq!(libsecp_signer(&rsv, &digest), pkp_address);
    assert_eq!(inside["dataSigned"], hex::encode(digest));
    for usage in out.usage.values() {
        assert_eq!(usage.signatures, 2);
    }

    // a stranger, and an anonymous caller: refused by every node, nothing signed
    let stranger = Wallet::random();
    for caller in [Some(&stranger), None] {
        let err = client.execute_js(run(caller, true)).await.unwrap_err();
        assert!(has_code(&err, ErrorCode::ActionFailed), "{err:?}");
        assert!(failure_text(&err).contains("not permitted"), "{err}");
    }

    // once the owner permits the action itself, anyone may run it
    let cid = ExecuteJs::code(SIGN).action_id().unwrap();
    client
        .pkp_permit(owner, pkp.token_id.0, PermissionChange::AddAction { cid })
        .await
        .unwrap();
    let out = client.execute_js(run(None, true)).await.unwrap();
    let sig = &out.signatures["client-combined"];
    assert_eq!(
        libsecp_signer(&sig.signature.to_ethereum_bytes(), &digest),
        pkp_address
    );
}

/// Lit's PKP permission queries, written as Lit's documentation writes them (token ids as
/// `pubkeyToTokenId` gives them and in decimal, user ids as bytes), answered from the network's
/// record of the PKP, which the client reads independently.
async fn permission_queries(client: &LitClient, pkp: &PkpInfo, owner: &Wallet) {
    let friend = Wallet::random();
    let method_id = hex::encode([0x5a; 20]);
    for change in [
        PermissionChange::AddAddress {
            address: friend.address().to_checksum(),
        },
        PermissionChange::AddAuthMethod {
            method: lit_api::v1::PermittedAuthMethod {
                method_type: 6,
                id: method_id.clone(),
                scopes: [lit_api::v1::PkpScope::PersonalSign].into(),
            },
        },
    ] {
        client
            .pkp_permit(owner, pkp.token_id.0, change)
            .await
            .unwrap();
    }
    let code = r#"
const tokenId = await Lit.Actions.pubkeyToTokenId({ publicKey });
const decimal = BigInt(tokenId).toString();
const userId = Lit.Actions.uint8arrayFromString(methodId, "base16");
const out = {
  tokenId,
  actions: await Lit.Actions.getPermittedActions({ tokenId: decimal }),
  addresses: await Lit.Actions.getPermittedAddresses({ tokenId }),
  authMethods: await Lit.Actions.getPermittedAuthMethods({ tokenId }),
  scopes: await Lit.Actions.getPermittedAuthMethodScopes({ tokenId, authMethodType: "6", userId, maxScopeId: 4 }),
  isAction: await Lit.Actions.isPermittedAction({ tokenId, ipfsId: permittedCid }),
  isOtherAction: await Lit.Actions.isPermittedAction({ tokenId, ipfsId: Lit.Auth.actionIpfsIdStack[0] }),
  isFriend: await Lit.Actions.isPermittedAddress({ tokenId, address: friend.toLowerCase() }),
  isStranger: await Lit.Actions.isPermittedAddress({ tokenId, address: "0x" + "11".repeat(20) }),
  isMethod: await Lit.Actions.isPermittedAuthMethod({ tokenId, authMethodType: 6, userId }),
  isOtherType: await Lit.Actions.isPermittedAuthMethod({ tokenId, authMethodType: 5, userId }),
  unknownPkp: await Lit.Actions.getPermittedAddresses({ tokenId: "0x" + "00".repeat(32) }),
};
let refused = null;
try { await Lit.Actions.getPermittedActions({ tokenId: "not a number" }); } catch (e) { refused = e.name; }
out.refused = refused;
Lit.Actions.setResponse({ response: JSON.stringify(out) });
"#;
    let permitted = ExecuteJs::code(SIGN).action_id().unwrap().to_string();
    let out = client
        .execute_js(
            ExecuteJs::code(code)
                .param("publicKey", json!(hex::encode(&pkp.public_key.0)))
                .param("methodId", json!(method_id))
                .param("permittedCid", json!(permitted))
                .param("friend", json!(friend.address().to_checksum()))
                .anonymous(),
        )
        .await
        .unwrap();
    let got: Value = serde_json::from_str(out.agreed_response().unwrap().unwrap()).unwrap();
    let record = client.pkp(pkp.token_id.0).await.unwrap();
    let actions: Vec<String> = record.permissions.actions.iter().cloned().collect();
    let addresses: Vec<String> = record.permissions.addresses.iter().cloned().collect();
    assert_eq!(actions, vec![permitted]);
    assert_eq!(addresses, vec![friend.address().to_checksum()]);
    assert_eq!(
        got,
        json!({
            "tokenId": format!("0x{}", hex::encode(pkp.token_id.0)),
            "actions": actions,
            "addresses": addresses,
            "authMethods": [{"auth_method_type": 6, "id": format!("0x{method_id}"), "user_pubkey": "0x"}],
            // Lit's scope ids: 1 sign anything, 2 personal sign
            "scopes": [false, false, true, false],
            "isAction": true,
            "isOtherAction": false,
            "isFriend": true,
            "isStranger": false,
            "isMethod": true,
            "isOtherType": false,
            "unknownPkp": [],
            "refused": "TypeError",
        })
    );
}

/// A wallet session granting `lit-action-execution`: every node verifies its own session
/// signature and sees the wallet as `Lit.Auth.authSigAddress`; a session for another action is
/// refused.
async fn session_auth(client: &LitClient, owner: &Wallet) {
    let code = "Lit.Actions.setResponse({ response: Lit.Auth.authSigAddress })";
    let grant = lit_client::action_execution_grant(None).unwrap();
    let session = lit_client::Session::from_wallet(
        owner,
        client.domain(),
        vec![grant],
        Duration::from_secs(600),
    )
    .unwrap();
    let out = client
        .execute_js(ExecuteJs::code(code).session(&session))
        .await
        .unwrap();
    assert_eq!(
        out.agreed_response().unwrap(),
        Some(owner.address().to_checksum().as_str())
    );
    let other = lit_client::action_execution_grant(Some(
        &ExecuteJs::code("another action").action_id().unwrap(),
    ))
    .unwrap();
    let narrow = lit_client::Session::from_wallet(
        owner,
        client.domain(),
        vec![other],
        Duration::from_secs(600),
    )
    .unwrap();
    let err = client
        .execute_js(ExecuteJs::code(code).session(&narrow))
        .await
        .unwrap_err();
    assert!(!err.failures().is_empty(), "{err:?}");
    assert!(
        err.failures().iter().all(|f| matches!(
            f.reason.code(),
            Some(ErrorCode::InvalidAuth | ErrorCode::NotPermitted)
        )),
        "{err:?}"
    );
}

const DECRYPT: &str = r#"
const allowed = await Lit.Actions.checkConditions({ conditions: accessControlConditions, chain: "ethereum" });
console.log(`conditions met: ${allowed}`);
const plaintext = await Lit.Actions.decryptAndCombine({
  accessControlConditions, ciphertext, dataToEncryptHash, authSig: null, chain: "ethereum",
});
Lit.Actions.setResponse({ response: plaintext });
"#;

async fn gated_decryption(client: &LitClient) {
    let alice = Wallet::random();
    let bob = Wallet::random();
    let conditions = user_is(&alice.address());
    let data = client
        .encrypt(&conditions, b"the secret only Alice's action opens")
        .unwrap();
    let identity = data.identity().unwrap();
    let decrypt_grant = lit_api::session::ResourceAbilityRequest::new(
        lit_api::session::LitResource::decryption_of(&identity),
        lit_api::session::LitAbility::AccessControlConditionDecryption,
    )
    .unwrap();
    let bare = |code: &str| decrypting(code, &conditions, &data);
    // Alice's session to run the action only: the action cannot decrypt her data
    let err = client
        .execute_js(bare(DECRYPT).wallet(&alice))
        .await
        .unwrap_err();
    assert!(has_code(&err, ErrorCode::ActionFailed), "{err:?}");
    assert!(failure_text(&err).contains("does not grant"), "{err}");
    // an authSig handed to the action (which every member would see) is refused
    let with_auth_sig = DECRYPT.replace(
        "authSig: null",
        "authSig: { sig: \"0x00\", derivedVia: \"web3.eth.personal.sign\", signedMessage: \"x\", \
         address: \"0x0000000000000000000000000000000000000000\" }",
    );
    let err = client
        .execute_js(
            bare(&with_auth_sig)
                .wallet(&alice)
                .grant(decrypt_grant.clone()),
        )
        .await
        .unwrap_err();
    assert!(has_code(&err, ErrorCode::ActionFailed), "{err:?}");
    assert!(failure_text(&err).contains("takes no authSig"), "{err}");
    let run = wallet_run(|who: &Wallet| {
        decrypting(DECRYPT, &conditions, &data)
            .wallet(who)
            .grant(decrypt_grant.clone())
    });
    let out = client.execute_js(run(&alice)).await.unwrap();
    assert_eq!(
        out.agreed_response().unwrap(),
        Some("the secret only Alice's action opens")
    );
    assert!(out.logs().contains("conditions met: true"));
    let err = client.execute_js(run(&bob)).await.unwrap_err();
    assert!(has_code(&err, ErrorCode::ActionFailed), "{err:?}");
    assert!(failure_text(&err).contains("not met"), "{err}");
}

async fn run_once_and_broadcast(client: &LitClient, server: &Server) {
    // runOnce: the function runs on exactly one node (the server counts one hit), and every
    // node returns that node's result
    let before = server.hits.load(Ordering::SeqCst);
    let code = format!(
        r#"
const result = await Lit.Actions.runOnce({{ waitForResponse: true, name: "once" }}, async () => {{
  console.log("ran the function");
  const hit = await (await fetch("http://127.0.0.1:{}/count")).text();
  return `hit ${{hit}}, token ${{Math.random()}}`;
}});
Lit.Actions.setResponse({{ response: result }});
"#,
        server.port
    );
    let out = client.execute_js(ExecuteJs::code(code)).await.unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), before + 1);
    let response = out.agreed_response().unwrap().unwrap();
    assert!(
        response.starts_with(&format!("hit {}", before + 1)),
        "{response}"
    );
    let ran: Vec<u32> = out
        .logs
        .iter()
        .filter(|(_, logs)| logs.contains("ran the function"))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(ran.len(), 1, "{:?}", out.logs);
    assert!(out.group.contains(&ran[0]));

    // broadcastAndCollect: every member's value, the same list at every member
    let code = r#"
const mine = `value-${Math.random()}`;
console.log(mine);
const all = await Lit.Actions.broadcastAndCollect({ name: "round", value: mine });
Lit.Actions.setResponse({ response: JSON.stringify(all.sort()) });
"#;
    let out = client.execute_js(ExecuteJs::code(code)).await.unwrap();
    let all: Vec<String> = serde_json::from_str(out.agreed_response().unwrap().unwrap()).unwrap();
    assert_eq!(all.len(), out.group.len());
    for id in &out.group {
        let mine = out.logs[id].trim();
        assert!(all.iter().any(|v| v == mine), "{mine} not in {all:?}");
    }
}

async fn fetch_policy(client: &LitClient, allowed: &Server, other: &Server) {
    let code = format!(
        r#"
const pong = await (await fetch("http://127.0.0.1:{}/ping")).text();
let refused = "";
try {{ await fetch("http://127.0.0.1:{}/ping"); }} catch (e) {{ refused = String(e); }}
Lit.Actions.setResponse({{ response: JSON.stringify({{ pong, refused }}) }});
"#,
        allowed.port, other.port
    );
    let out = client.execute_js(ExecuteJs::code(code)).await.unwrap();
    let v: Value = serde_json::from_str(out.agreed_response().unwrap().unwrap()).unwrap();
    assert_eq!(v["pong"], "pong");
    let refused = v["refused"].as_str().unwrap();
    assert!(
        refused.contains(&format!("127.0.0.1:{}", other.port)),
        "{refused}"
    );
    assert_eq!(other.hits.load(Ordering::SeqCst), 0);
    for usage in out.usage.values() {
        assert_eq!(usage.fetches, 2);
    }
}

/// A chain RPC URL with the operator's API key in it.
const SECRET_RPC: &str = "http://127.0.0.1:9/v2/operator-api-key-5f1e9c";

/// `getRpcUrl` gives the node's RPC URL to a caller that authenticated, and refuses an
/// anonymous one clearly, without the URL in the answer or the error.
async fn rpc_urls(client: &LitClient, owner: &Wallet) {
    let caught = r#"
let answer;
try { answer = "url: " + await Lit.Actions.getRpcUrl({ chain: "secretchain" }); }
catch (e) { answer = "refused: " + String(e); }
Lit.Actions.setResponse({ response: answer });
"#;
    let out = client
        .execute_js(ExecuteJs::code(caught).anonymous())
        .await
        .unwrap();
    let answer = out.agreed_response().unwrap().unwrap();
    assert!(answer.starts_with("refused: "), "{answer}");
    assert!(answer.contains("authenticated"), "{answer}");
    assert!(!answer.contains("operator-api-key"), "{answer}");
    assert!(!answer.contains("127.0.0.1:9"), "{answer}");
    // uncaught, it fails the action; the error names the refusal, not the URL
    let uncaught = r#"Lit.Actions.setResponse({ response: await Lit.Actions.getRpcUrl({ chain: "secretchain" }) });"#;
    let err = client
        .execute_js(ExecuteJs::code(uncaught).anonymous())
        .await
        .unwrap_err();
    assert!(has_code(&err, ErrorCode::ActionFailed), "{err:?}");
    let text = format!("{err} {err:?} {}", failure_text(&err));
    assert!(text.contains("authenticated"), "{text}");
    assert!(!text.contains("operator-api-key"), "{text}");

    // a wallet's caller gets it, a chain the node does not know is an error naming it
    let out = client
        .execute_js(ExecuteJs::code(caught).wallet(owner))
        .await
        .unwrap();
    assert_eq!(
        out.agreed_response().unwrap(),
        Some(format!("url: {SECRET_RPC}").as_str())
    );
    let unknown = r#"Lit.Actions.setResponse({ response: await Lit.Actions.getRpcUrl({ chain: "nowhere" }) });"#;
    let err = client
        .execute_js(ExecuteJs::code(unknown).wallet(owner))
        .await
        .unwrap_err();
    assert!(has_code(&err, ErrorCode::ActionFailed), "{err:?}");
    assert!(failure_text(&err).contains("nowhere"), "{err}");
}

async fn everything(engine: &str) {
    let allowed = server().await;
    let other = server().await;
    let mut extra = format!(
        "[actions]\nengine = \"{engine}\"\ntime_ms = 20000\nallow_net = [\"127.0.0.1:{}\"]\n",
        allowed.port
    );
    if engine == "deno" {
        let deno = lit_actions::engine::deno::find_deno()
            .expect("no deno binary: run ./test.sh, which installs it into .tools");
        extra.push_str(&format!("deno = \"{}\"\n", deno.display()));
    }
    let net = testnet(N)
        .options(LayoutOptions {
            extra_config: extra,
            // pooled presignatures in one engine's run, fresh ones in the other's
            presignature_pool: Some(if engine == "deno" { 2 } else { 0 }),
            chains: vec![("secretchain".into(), SECRET_RPC.into())],
            ..LayoutOptions::default()
        })
        .start()
        .await;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    let owner = Wallet::random();
    let pkp = client.mint_pkp(&owner).await.unwrap();

    signing(&client, &pkp, &owner).await;
    permission_queries(&client, &pkp, &owner).await;
    session_auth(&client, &owner).await;
    gated_decryption(&client).await;
    run_once_and_broadcast(&client, &allowed).await;
    fetch_policy(&client, &allowed, &other).await;
    rpc_urls(&client, &owner).await;
    drop(net);
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_across_the_network_quickjs() {
    everything("quickjs").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_across_the_network_deno() {
    everything("deno").await;
}
