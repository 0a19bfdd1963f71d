//! Lit's `Lit.Actions` functions across a real network of node processes (n = 3, T = 2), in both
//! engines, written the way Lit's documentation writes them, each result checked independently:
//! `ethPersonalSignMessageEcdsa` recovers (libsecp256k1, EIP-191 computed here) to the PKP's
//! address; `signAsAction` recovers to the address of `getActionPublicKey`'s key, which is the
//! root key tweaked with the action's key id, and another action has another key; `call` chains
//! to depth 5 with exchanges between nodes inside every child, and depth 6 is refused;
//! `getLatestNonce` answers anvil's transaction count; `Lit.Headers` is what the caller passed;
//! `decryptToSingleNode` gives the plaintext to one member only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use alloy_provider::Provider as _;
use k256::elliptic_curve::sec1::ToEncodedPoint as _;
use lit_api::v1::PkpInfo;
use lit_api::ErrorCode;
use lit_client::{ClientError, ExecuteJs, LitClient, Wallet};
use lit_crypto::eth::Address;
use lit_node::devnet::LayoutOptions;
use serde_json::{json, Value};
use sha3::Digest as _;
use support::evm::Anvil;
use support::net::testnet;

const N: usize = 3;

/// Recovers the signer of `digest` with libsecp256k1 (independent of our code): `rs` is 64
/// bytes, `v` the recovery id.
fn libsecp_signer(rs: &[u8], v: u8, digest: &[u8; 32]) -> Address {
    let secp = secp256k1::Secp256k1::new();
    let sig = secp256k1::ecdsa::RecoverableSignature::from_compact(
        rs,
        secp256k1::ecdsa::RecoveryId::try_from(i32::from(v)).unwrap(),
    )
    .unwrap();
    let key = secp
        .recover_ecdsa(&secp256k1::Message::from_digest(*digest), &sig)
        .unwrap();
    Address::from_public_key(
        &k256::ecdsa::VerifyingKey::from_sec1_bytes(&key.serialize_uncompressed()).unwrap(),
    )
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

fn response(out: &lit_client::ExecuteJsResult) -> Value {
    serde_json::from_str(out.agreed_response().unwrap().unwrap()).unwrap()
}

/// `ethPersonalSignMessageEcdsa` as Lit's docs write it: the client combines the shares; the
/// signature is over the EIP-191 hash (computed here) and recovers to the PKP's address.
async fn personal_sign(client: &LitClient, pkp: &PkpInfo, owner: &Wallet) {
    let code = r#"
const sigShare = await Lit.Actions.ethPersonalSignMessageEcdsa({ message: dataToSign, publicKey, sigName: "sig1" });
Lit.Actions.setResponse({ response: JSON.stringify({ sigShare }) });
"#;
    let message = "Hello from a Lit Action, ünïcode included";
    let out = client
        .execute_js(
            ExecuteJs::code(code)
                .param("dataToSign", message)
                .param("publicKey", hex::encode(&pkp.public_key.0))
                .wallet(owner)
                .grant(lit_client::pkp_grant(pkp).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(response(&out), json!({"sigShare": "success"}));
    let mut eip191 = sha3::Keccak256::new();
    eip191.update(format!("\x19Ethereum Signed Message:\n{}", message.len()).as_bytes());
    eip191.update(message.as_bytes());
    let digest: [u8; 32] = eip191.finalize().into();
    let sig = &out.signatures["sig1"];
    assert_eq!(sig.digest, digest);
    let rsv = sig.signature.to_ethereum_bytes();
    let pkp_address = Address::parse(&pkp.eth_address).unwrap();
    assert_eq!(
        libsecp_signer(&rsv[..64], rsv[64] - 27, &digest),
        pkp_address
    );
    for usage in out.usage.values() {
        assert_eq!(usage.signatures, 1);
    }
}

const AS_ACTION: &str = r#"
const signingScheme = "EcdsaK256Sha256";
const actionIpfsCid = Lit.Auth.actionIpfsIdStack[0];
const signature = await Lit.Actions.signAsAction({ toSign, sigName: "as-action", signingScheme });
const publicKey = await Lit.Actions.getActionPublicKey({ signingScheme, actionIpfsCid });
const verified = await Lit.Actions.verifyActionSignature({ signingScheme, actionIpfsCid, toSign, signOutput: signature });
const otherKey = await Lit.Actions.getActionPublicKey({ signingScheme, actionIpfsCid: otherCid });
Lit.Actions.setResponse({ response: JSON.stringify({ signature, publicKey, verified, otherKey }) });
"#;

/// `signAsAction` needs no PKP and no permission: an anonymous caller's action signs as
/// itself; the signature recovers to the key `getActionPublicKey` gives, which is the root key
/// tweaked with the action's key id; a different action has a different key, which the first
/// one computes the same as the second.
async fn action_keys(client: &LitClient) {
    let digest: [u8; 32] = sha3::Keccak256::digest(b"signed by an action itself").into();
    let other_code = format!("{AS_ACTION}\n// another action");
    let other_cid = ExecuteJs::code(other_code.as_str()).action_id().unwrap();
    let cid = ExecuteJs::code(AS_ACTION).action_id().unwrap();
    let run = |code: &str, other: &str| {
        ExecuteJs::code(code.to_owned())
            .param("toSign", json!(digest.to_vec()))
            .param("otherCid", other.to_owned())
            .anonymous()
    };
    let out = client.execute_js(run(AS_ACTION, &other_cid)).await.unwrap();
    let v = response(&out);
    assert_eq!(v["verified"], json!(true));

    // the key: the network's root key tweaked with the action's key id
    let root = k256::PublicKey::from_sec1_bytes(&client.view().network_keys().ecdsa.0).unwrap();
    let key_of = |cid: &str| {
        let id: lit_actions::ActionId = cid.parse().unwrap();
        let p = lit_crypto::ecdsa::pkp_public_key(
            root.as_affine(),
            &lit_actions::host::action_key_id(&id),
        )
        .unwrap();
        hex::encode(p.to_encoded_point(false).as_bytes())
    };
    assert_eq!(v["publicKey"], key_of(&cid));

    // Lit's SignedDataOutput; libsecp256k1 recovers the key's address
    let sig: Value = serde_json::from_str(v["signature"].as_str().unwrap()).unwrap();
    assert_eq!(sig["verifying_key"], v["publicKey"]);
    assert_eq!(sig["signed_data"], hex::encode(digest));
    let rs: String = serde_json::from_str(sig["signature"].as_str().unwrap()).unwrap();
    let rs = hex::decode(rs).unwrap();
    let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(
        &hex::decode(v["publicKey"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let rid = u8::try_from(sig["recovery_id"].as_u64().unwrap()).unwrap();
    assert_eq!(
        libsecp_signer(&rs, rid, &digest),
        Address::from_public_key(&key)
    );

    // another action: another key, the same whichever action asks for it
    let out = client.execute_js(run(&other_code, &cid)).await.unwrap();
    let w = response(&out);
    assert_eq!(w["publicKey"], key_of(&other_cid));
    assert_ne!(w["publicKey"], v["publicKey"]);
    assert_eq!(w["publicKey"], v["otherKey"]);
    assert_eq!(w["otherKey"], v["publicKey"]);
}

/// Calls itself (its id in `self`) `depth` more times; every level exchanges a value with the
/// other members under the same name, which only works if each child's sessions are its own.
const RECURSE: &str = r#"
const { self, depth } = jsParams;
const values = await Lit.Actions.broadcastAndCollect({ name: "round", value: String(depth) });
if (values.length !== Number(groupSize) || values.some((v) => v !== String(depth))) throw new Error("bad round " + values);
if (depth === 0) {
  Lit.Actions.setResponse({ response: JSON.stringify({ stack: Lit.Auth.actionIpfsIdStack, headers: Lit.Headers }) });
} else {
  Lit.Actions.setResponse({ response: await Lit.Actions.call({ ipfsId: self, params: { self, depth: depth - 1, groupSize } }) });
}
"#;

/// `call` by IPFS id on uploaded code: a chain of 5 nested calls answers with the innermost
/// stack (6 entries), a sixth nested call is refused by name on every node.
async fn call_chains(client: &LitClient) {
    let cid = client.upload_action(RECURSE).await.unwrap().ipfs_id;
    let group = client.view().threshold();
    let run = |depth: u32| {
        ExecuteJs::ipfs_id(cid.clone())
            .param("self", cid.clone())
            .param("depth", depth)
            .param("groupSize", group)
            .header("x-request-tag", "chain")
            .anonymous()
    };
    let out = client.execute_js(run(5)).await.unwrap();
    let v = response(&out);
    assert_eq!(v["stack"], json!(vec![cid.clone(); 6]));
    // headers belong to the request: the caller's, in the children too
    assert_eq!(v["headers"], json!({"x-request-tag": "chain"}));
    for usage in out.usage.values() {
        assert_eq!(usage.host_calls.get("call"), Some(&5));
        assert_eq!(usage.host_calls.get("broadcastAndCollect"), Some(&6));
    }

    let err = client.execute_js(run(6)).await.unwrap_err();
    assert!(has_code(&err, ErrorCode::ActionFailed), "{err:?}");
    let text = failure_text(&err);
    assert!(
        text.contains("the recursion limit of a child action is 5") && text.contains("depth 6"),
        "{text}"
    );
}

/// `getLatestNonce` against anvil: the account's transaction count at the latest block, as
/// anvil itself answers it, in Lit's `0x` hex.
async fn latest_nonce(client: &LitClient, anvil: &Anvil) {
    let code = r#"
const nonce = await Lit.Actions.getLatestNonce({ address, chain: "anvil" });
let unknown;
try { await Lit.Actions.getLatestNonce({ address, chain: "nowhere" }); } catch (e) { unknown = e.message; }
Lit.Actions.setResponse({ response: JSON.stringify({ nonce, unknown }) });
"#;
    for _ in 0..3 {
        anvil
            .fund(&Wallet::random().address().to_checksum(), "0x1")
            .await;
    }
    let expected = anvil
        .provider()
        .get_transaction_count(anvil.deployer.parse().unwrap())
        .latest()
        .await
        .unwrap();
    assert!(expected >= 3);
    let out = client
        .execute_js(
            ExecuteJs::code(code)
                .param("address", anvil.deployer.clone())
                .anonymous(),
        )
        .await
        .unwrap();
    let v = response(&out);
    assert_eq!(v["nonce"], format!("0x{expected:x}"));
    assert!(
        v["unknown"]
            .as_str()
            .unwrap()
            .contains("no RPC for chain \"nowhere\""),
        "{v}"
    );
}

/// `Lit.Headers` is exactly what the caller passed (names lower-cased), and nothing when it
/// passed nothing; headers over the limits are refused before anything runs.
async fn headers(client: &LitClient) {
    let code = r#"Lit.Actions.setResponse({ response: JSON.stringify(Lit.Headers) });"#;
    let out = client
        .execute_js(
            ExecuteJs::code(code)
                .header("X-Api-Key", "secret-123")
                .header("accept", "application/json")
                .anonymous(),
        )
        .await
        .unwrap();
    assert_eq!(
        response(&out),
        json!({"x-api-key": "secret-123", "accept": "application/json"})
    );
    let out = client
        .execute_js(ExecuteJs::code(code).anonymous())
        .await
        .unwrap();
    assert_eq!(response(&out), json!({}));

    let mut many = ExecuteJs::code(code).anonymous();
    for i in 0..=lit_api::v1::MAX_ACTION_HEADERS {
        many = many.header(format!("x-h{i}"), "v");
    }
    let err = client.execute_js(many).await.unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
    let err = client
        .execute_js(ExecuteJs::code(code).header("bad name", "v").anonymous())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not a lower-case HTTP token"),
        "{err}"
    );
}

/// `decryptToSingleNode` as Lit's docs use it: the conditions are checked on every member, the
/// decryption shares go to one member, which alone returns the plaintext (the others return an
/// empty string); a caller the conditions do not admit is refused.
async fn single_node_decryption(client: &LitClient) {
    use base64::Engine as _;
    let code = r#"
const plain = await Lit.Actions.decryptToSingleNode({ accessControlConditions, ciphertext, dataToEncryptHash, authSig: null, chain: "ethereum" });
Lit.Actions.setResponse({ response: plain });
"#;
    let alice = Wallet::random();
    let bob = Wallet::random();
    let conditions = support::net::user_is(&alice.address());
    let secret = "for one node's eyes only";
    let data = client.encrypt(&conditions, secret.as_bytes()).unwrap();
    let grant = lit_api::session::ResourceAbilityRequest::new(
        lit_api::session::LitResource::decryption_of(&data.identity().unwrap()),
        lit_api::session::LitAbility::AccessControlConditionDecryption,
    )
    .unwrap();
    let run = |who| {
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
            .wallet(who)
            .grant(grant.clone())
    };
    let out = client.execute_js(run(&alice)).await.unwrap();
    let lit_client::ActionResponse::Divergent(by_node) = &out.response else {
        panic!("every member returned the same: {:?}", out.response);
    };
    let answers: Vec<&str> = by_node.values().map(|r| r.as_deref().unwrap()).collect();
    assert_eq!(
        answers.iter().filter(|a| **a == secret).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|a| a.is_empty()).count(),
        answers.len() - 1
    );
    let err = client.execute_js(run(&bob)).await.unwrap_err();
    assert!(has_code(&err, ErrorCode::ActionFailed), "{err:?}");
    assert!(failure_text(&err).contains("not met"), "{err}");
}

async fn everything(engine: &str) {
    let anvil = Anvil::start().await;
    let mut extra = format!("[actions]\nengine = \"{engine}\"\ntime_ms = 20000\n");
    if engine == "deno" {
        let deno = lit_actions::engine::deno::find_deno()
            .expect("no deno binary: run ./test.sh, which installs it into .tools");
        extra.push_str(&format!("deno = \"{}\"\n", deno.display()));
    }
    let net = testnet(N)
        .options(LayoutOptions {
            extra_config: extra,
            presignature_pool: Some(0),
            chains: vec![("anvil".into(), anvil.url.clone())],
            ..LayoutOptions::default()
        })
        .start()
        .await;
    let (client, owner, pkp) = support::net::client_and_pkp(&net).await;

    personal_sign(&client, &pkp, &owner).await;
    action_keys(&client).await;
    call_chains(&client).await;
    latest_nonce(&client, &anvil).await;
    headers(&client).await;
    single_node_decryption(&client).await;
    drop(net);
}

#[tokio::test(flavor = "multi_thread")]
async fn lit_functions_across_the_network_quickjs() {
    everything("quickjs").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lit_functions_across_the_network_deno() {
    everything("deno").await;
}
