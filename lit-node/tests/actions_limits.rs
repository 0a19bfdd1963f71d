//! Lit Actions on real node processes, over raw HTTP: the action store, bad execute requests
//! (each with its code), hostile actions (an endless loop, a memory bomb, a huge response, a log
//! flood) that end with their limit error while the same node keeps serving, the cap on actions
//! running at once (auth actions of PKP signing included), in both engines, and a member
//! crashing mid-action.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use lit_api::v1::{
    paths, ActionUploadRequest, ExecuteRequest, LitActionAuth, PermissionChange, PkpAuth,
    PkpSignRequest, ToSign,
};
use lit_api::Bytes32;
use lit_client::{Bootstrap, ConnectOptions, LitClient, Wallet};
use lit_crypto::eth::recover_address;
use lit_crypto::seal::SealSecretKey;
use lit_node::devnet::LayoutOptions;
use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};
use support::net::{code, https_client, post, testnet, TestNet};

const N: usize = 3;

/// `[actions]` for `engine` with small limits.
pub fn actions_config(engine: &str) -> String {
    actions_config_with(engine, 2)
}

/// `[actions]` for `engine` with small limits and `max_concurrent` actions at once.
pub fn actions_config_with(engine: &str, max_concurrent: usize) -> String {
    let mut text = format!(
        "[actions]\nengine = \"{engine}\"\ntime_ms = 3000\nmemory_mb = 64\nresponse_bytes = 1024\nlog_bytes = 4096\nmax_concurrent = {max_concurrent}\n"
    );
    if engine == "deno" {
        let deno = lit_actions::engine::deno::find_deno()
            .expect("no deno binary: run ./test.sh, which installs it into .tools");
        text.push_str(&format!("deno = \"{}\"\n", deno.display()));
    }
    text
}

async fn start(engine: &str) -> TestNet {
    start_with(engine, 2).await
}

async fn start_with(engine: &str, max_concurrent: usize) -> TestNet {
    testnet(N)
        .options(LayoutOptions {
            extra_config: actions_config_with(engine, max_concurrent),
            ..LayoutOptions::default()
        })
        .start()
        .await
}

/// An execute request for node `id` alone (fine for actions that make no group calls).
fn request(net: &TestNet, id: u32, code: Option<&str>, ipfs_id: Option<&str>) -> Value {
    let t = net.network().threshold;
    let group: Vec<u32> = (0..t).map(|k| (id - 1 + k) % N as u32 + 1).collect();
    let (_, public) = SealSecretKey::generate(&mut OsRng);
    let mut request_id = [0u8; 32];
    OsRng.fill_bytes(&mut request_id);
    serde_json::to_value(ExecuteRequest {
        epoch: 1,
        code: code.map(str::to_owned),
        ipfs_id: ipfs_id.map(str::to_owned),
        js_params: serde_json::Map::from_iter([("who".to_owned(), json!("world"))]),
        auth: None,
        group,
        request_id: Bytes32(request_id),
        client_public_key: Bytes32(public.to_bytes()),
        headers: Default::default(),
    })
    .unwrap()
}

async fn execute(net: &TestNet, id: u32, code: &str) -> (u16, Value) {
    post(
        &net.url(id),
        paths::EXECUTE,
        &request(net, id, Some(code), None),
    )
    .await
}

const HELLO: &str = r#"console.log("hi"); Lit.Actions.setResponse({response: `hello ${who}`});"#;

const SLEEP_THEN_ANSWER: &str = r#"await new Promise((r) => setTimeout(r, 1000)); Lit.Actions.setResponse({response: "slept"});"#;

async fn still_serves(net: &TestNet, id: u32) {
    let (status, body) = execute(net, id, HELLO).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"], "hello world");
}

async fn store_and_bad_requests(engine: &str) {
    let net = start(engine).await;
    let url = net.url(1);

    // the action store: upload checked against the CID, then run by id
    let cid = lit_actions::ActionId::of(HELLO.as_bytes()).to_string();
    let other = lit_actions::ActionId::of(b"something else").to_string();
    let upload = |code: &str, id: Option<&str>| {
        serde_json::to_value(ActionUploadRequest {
            code: code.to_owned(),
            ipfs_id: id.map(str::to_owned),
            auth: None,
        })
        .unwrap()
    };
    let (status, body) = post(&url, paths::ACTION_UPLOAD, &upload(HELLO, Some(&other))).await;
    assert_eq!((status, code(&body)), (400, "malformed_request"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(&cid));
    let (status, body) = post(&url, paths::EXECUTE, &request(&net, 1, None, Some(&cid))).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, body) = post(&url, paths::ACTION_UPLOAD, &upload(HELLO, Some(&cid))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ipfsId"], cid.as_str());
    assert_eq!(body["created"], true);
    let (_, again) = post(&url, paths::ACTION_UPLOAD, &upload(HELLO, None)).await;
    assert_eq!(again["created"], false);
    let (status, body) = post(&url, paths::EXECUTE, &request(&net, 1, None, Some(&cid))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"], "hello world");
    assert_eq!(body["ipfsId"], cid.as_str());
    assert_eq!(body["logs"], "hi\n");
    assert_eq!(body["usage"]["engine"], engine);
    assert_eq!(body["usage"]["responseBytes"], 11);
    // a stored id on another node: not there
    let (status, body) = post(
        &net.url(2),
        paths::EXECUTE,
        &request(&net, 2, None, Some(&cid)),
    )
    .await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    // code given with an id it does not have
    let (status, body) = post(
        &url,
        paths::EXECUTE,
        &request(&net, 1, Some(HELLO), Some(&other)),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "malformed_request"), "{body}");

    // malformed requests
    let mut neither = request(&net, 1, None, None);
    let (status, body) = post(&url, paths::EXECUTE, &neither).await;
    assert_eq!((status, code(&body)), (400, "malformed_request"), "{body}");
    neither["code"] = json!(HELLO);
    neither["unexpected"] = json!(1);
    let (status, body) = post(&url, paths::EXECUTE, &neither).await;
    assert_eq!((status, code(&body)), (400, "malformed_request"), "{body}");
    let mut outside = request(&net, 1, Some(HELLO), None);
    outside["group"] = json!([2, 3]);
    let (status, body) = post(&url, paths::EXECUTE, &outside).await;
    assert_eq!((status, code(&body)), (400, "malformed_request"), "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not in the"));
    let mut wrong_epoch = request(&net, 1, Some(HELLO), None);
    wrong_epoch["epoch"] = json!(7);
    let (status, body) = post(&url, paths::EXECUTE, &wrong_epoch).await;
    assert_eq!((status, code(&body)), (409, "wrong_epoch"), "{body}");
    let mut action_auth = request(&net, 1, Some(HELLO), None);
    action_auth["auth"] = json!({"litAction": {"code": HELLO}});
    let (status, body) = post(&url, paths::EXECUTE, &action_auth).await;
    assert_eq!((status, code(&body)), (400, "malformed_request"), "{body}");

    // a replayed request id (with a fresh client key) and a replayed client key are refused
    let first = request(&net, 1, Some(HELLO), None);
    assert_eq!(post(&url, paths::EXECUTE, &first).await.0, 200);
    let mut same_id = request(&net, 1, Some(HELLO), None);
    same_id["requestId"] = first["requestId"].clone();
    let (status, body) = post(&url, paths::EXECUTE, &same_id).await;
    assert_eq!((status, code(&body)), (409, "nonce_replayed"), "{body}");
    let mut same_key = request(&net, 1, Some(HELLO), None);
    same_key["clientPublicKey"] = first["clientPublicKey"].clone();
    let (status, body) = post(&url, paths::EXECUTE, &same_key).await;
    assert_eq!((status, code(&body)), (409, "nonce_replayed"), "{body}");

    // an action that throws: its message, typed
    let (status, body) = execute(&net, 1, r#"throw new Error("no luck")"#).await;
    assert_eq!((status, code(&body)), (422, "action_failed"), "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no luck"));
    // a host call the node refuses (an RPC URL for an anonymous caller) is an exception in the
    // action that names what was asked, not a crash
    let (status, body) = execute(
        &net,
        1,
        r#"await Lit.Actions.getRpcUrl({chain: "nowhere"})"#,
    )
    .await;
    assert_eq!((status, code(&body)), (422, "action_failed"), "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nowhere"));
    still_serves(&net, 1).await;
}

async fn hostile(engine: &str) {
    let net = start(engine).await;

    // an endless loop: while it runs, the same node serves others; it ends at its time limit
    let started = Instant::now();
    let looping = {
        let body = request(&net, 1, Some("while (true) {}"), None);
        let url = net.url(1);
        tokio::spawn(async move { post(&url, paths::EXECUTE, &body).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    still_serves(&net, 1).await;
    // with the loop and a second action running, a third is refused at once (max_concurrent = 2)
    let sleeper = {
        let body = request(&net, 1, Some(SLEEP_THEN_ANSWER), None);
        let url = net.url(1);
        tokio::spawn(async move { post(&url, paths::EXECUTE, &body).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = execute(&net, 1, HELLO).await;
    assert_eq!((status, code(&body)), (429, "rate_limited"), "{body}");
    let (status, body) = sleeper.await.unwrap();
    assert_eq!(
        (status, &body["response"]),
        (200, &json!("slept")),
        "{body}"
    );
    still_serves(&net, 1).await;
    assert!(
        !looping.is_finished(),
        "the loop ended before its time limit"
    );
    let (status, body) = looping.await.unwrap();
    assert_eq!((status, code(&body)), (422, "action_limit"), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("time limit of 3000 ms"), "{message}");
    assert!(started.elapsed() >= Duration::from_secs(3));

    // a memory bomb
    let (status, body) = execute(
        &net,
        1,
        "const hoard = []; while (true) hoard.push(new Array(1 << 20).fill(7));",
    )
    .await;
    assert_eq!((status, code(&body)), (422, "action_limit"), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("memory limit"), "{message}");
    still_serves(&net, 1).await;

    // a huge response, and a log flood
    let (status, body) = execute(
        &net,
        1,
        r#"Lit.Actions.setResponse({response: "x".repeat(5000)})"#,
    )
    .await;
    assert_eq!((status, code(&body)), (422, "action_limit"), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("5000 bytes, over the limit of 1024"),
        "{message}"
    );
    let (status, body) = execute(&net, 1, r#"for (;;) console.log("spam spam spam")"#).await;
    assert_eq!((status, code(&body)), (422, "action_limit"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("logs"));

    // the node, and its peers, still serve
    still_serves(&net, 1).await;
    for id in 1..=N as u32 {
        let text = https_client()
            .get(format!("{}{}", net.url(id), paths::HEALTH))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let health: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(health["ready"], true);
    }
}

/// The Lit Action that is a PKP signing request's auth runs under the same cap as `/v1/execute`:
/// with `max_concurrent = 1` and a slow action running, the node refuses it `rate_limited`
/// before running it; once the slow action ends the same auth signs.
#[tokio::test(flavor = "multi_thread")]
async fn auth_actions_count_against_the_action_cap() {
    let net = start_with("quickjs", 1).await;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    let owner = Wallet::random();
    let pkp = client.mint_pkp(&owner).await.unwrap();
    let yes = r#"Lit.Actions.setResponse({ response: "true" });"#;
    client
        .pkp_permit(
            &owner,
            pkp.token_id.0,
            PermissionChange::AddAction {
                cid: lit_actions::ActionId::of(yes.as_bytes()).to_string(),
            },
        )
        .await
        .unwrap();
    let auth = PkpAuth::LitAction(LitActionAuth {
        code: yes.into(),
        js_params: Default::default(),
    });
    let sign_at_1 = || {
        let (_, public) = SealSecretKey::generate(&mut OsRng);
        let mut request_id = [0u8; 32];
        OsRng.fill_bytes(&mut request_id);
        serde_json::to_value(PkpSignRequest {
            epoch: 1,
            token_id: pkp.token_id,
            to_sign: ToSign::Digest(Bytes32([1; 32])),
            auth: auth.clone(),
            group: vec![1, 2],
            request_id: Bytes32(request_id),
            client_public_key: Bytes32(public.to_bytes()),
        })
        .unwrap()
    };

    let slow = r#"await new Promise((r) => setTimeout(r, 2500)); Lit.Actions.setResponse({response: "slept"});"#;
    let sleeper = {
        let body = request(&net, 1, Some(slow), None);
        let url = net.url(1);
        tokio::spawn(async move { post(&url, paths::EXECUTE, &body).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = post(&net.url(1), paths::PKP_SIGN, &sign_at_1()).await;
    assert_eq!((status, code(&body)), (429, "rate_limited"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_concurrent"),
        "{body}"
    );
    assert!(!sleeper.is_finished(), "the slow action ended too soon");
    let (status, body) = sleeper.await.unwrap();
    assert_eq!(
        (status, &body["response"]),
        (200, &json!("slept")),
        "{body}"
    );

    // the permit is free again: the same auth signs, and gives its permit back after running
    let sig = client
        .pkp_sign(&pkp, ToSign::Digest(Bytes32([1; 32])), auth)
        .await
        .unwrap();
    let signer = recover_address(&sig.digest, &sig.signature.to_ethereum_bytes()).unwrap();
    assert_eq!(signer.to_checksum(), pkp.eth_address);
    still_serves(&net, 1).await;
}

/// A member that crashes while the group runs an action: the others name it and answer before
/// the action's time limit, and keep serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_crashing_mid_action_is_named() {
    let mut net = start("quickjs").await;
    let action = r#"
await new Promise((resolve) => setTimeout(resolve, 1500));
const all = await Lit.Actions.broadcastAndCollect({ name: "round", value: "v" });
Lit.Actions.setResponse({ response: String(all.length) });
"#;
    let first = request(&net, 1, Some(action), None);
    assert_eq!(first["group"], json!([1, 2]));
    let mut second = first.clone();
    let (_, public) = SealSecretKey::generate(&mut OsRng);
    second["clientPublicKey"] = json!(hex::encode(public.to_bytes()));
    let one = tokio::spawn({
        let url = net.url(1);
        async move { post(&url, paths::EXECUTE, &first).await }
    });
    let two = tokio::spawn({
        let url = net.url(2);
        async move { post(&url, paths::EXECUTE, &second).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    net.kill(2);
    let started = Instant::now();
    let (status, body) = one.await.unwrap();
    assert_eq!((status, code(&body)), (422, "action_failed"), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("nodes [2] sent no value"), "{message}");
    // named before the action's 3 s time limit would have ended it
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(two.await.unwrap_or((0, Value::Null)).0 != 200);
    still_serves(&net, 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn store_and_bad_requests_quickjs() {
    store_and_bad_requests("quickjs").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn store_and_bad_requests_deno() {
    store_and_bad_requests("deno").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_actions_end_at_their_limits_quickjs() {
    hostile("quickjs").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_actions_end_at_their_limits_deno() {
    hostile("deno").await;
}
