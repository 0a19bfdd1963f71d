//! Lit's `LitAction` conditions through a network of real node processes: every node runs the
//! stored action's function with the condition's parameters (`:userAddress` resolved) and
//! compares what it returns. The right user decrypts, the wrong one gets no share; an action
//! that is not in the store, a method that is not a function name, an action that throws and
//! one that never ends are refused with `invalid_conditions`, not hung on or granted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lit_client::{Bootstrap, ClientError, ConnectOptions, LitClient, Wallet};
use lit_node::devnet::LayoutOptions;
use serde_json::{json, Value};
use support::net::testnet;

/// The shape of Lit's docs: the action defines `go`; the node calls it.
const ALLOW_LIST: &str = r#"
const go = async (user, allowed) => {
  await new Promise((r) => setTimeout(r, 1));
  return allowed.split(",").map((a) => a.toLowerCase()).includes(user.toLowerCase());
};
"#;

fn lit_action(cid: &str, method: &str, parameters: &[&str], value: &str) -> Value {
    json!([{
        "contractAddress": format!("ipfs://{cid}"),
        "standardContractType": "LitAction",
        "chain": "ethereum",
        "method": method,
        "parameters": parameters,
        "returnValueTest": {"comparator": "=", "value": value},
    }])
}

#[tokio::test]
async fn lit_action_conditions_decide_by_the_action_s_answer() {
    // a short action time limit, for the action that never ends
    let options = LayoutOptions {
        extra_config: "[actions]\ntime_ms = 2000\n".into(),
        ..LayoutOptions::default()
    };
    let net = testnet(3).options(options).start().await;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    let alice = Wallet::random();
    let bob = Wallet::random();
    let alice_hex = format!("0x{}", hex::encode(alice.address().0));

    let cid = client.upload_action(ALLOW_LIST).await.unwrap().ipfs_id;
    let conditions = lit_action(&cid, "go", &[":userAddress", &alice_hex], "true");
    let data = client.encrypt(&conditions, b"for alice").unwrap();
    assert_eq!(client.decrypt(&data, &alice).await.unwrap(), b"for alice");
    let err = client.decrypt(&data, &bob).await.unwrap_err();
    assert!(
        matches!(err, ClientError::ConditionsNotMet { .. }),
        "bob: {err}"
    );

    // the comparison is of the function's answer: "false" holds for bob only
    let data = client
        .encrypt(
            &lit_action(&cid, "go", &[":userAddress", &alice_hex], "false"),
            b"not for alice",
        )
        .unwrap();
    assert_eq!(client.decrypt(&data, &bob).await.unwrap(), b"not for alice");
    assert!(client.decrypt(&data, &alice).await.is_err());

    // refused with a reason, never granted
    let throws = client
        .upload_action("const go = async () => { throw new Error(\"no\"); };")
        .await
        .unwrap()
        .ipfs_id;
    let loops = client
        .upload_action("const go = async () => { while (true) {} };")
        .await
        .unwrap()
        .ipfs_id;
    let missing = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
    for (what, conditions, expect) in [
        (
            "an action not in the store",
            lit_action(missing, "go", &[], "true"),
            "upload it first",
        ),
        (
            "a method that is not a function name",
            lit_action(
                &cid,
                "go(); Lit.Actions.setResponse({response: 'true'}); (()=>1)",
                &[],
                "true",
            ),
            "must name a JavaScript function",
        ),
        (
            "an action that throws",
            lit_action(&throws, "go", &[], "true"),
            "failed",
        ),
        (
            "an action that never ends",
            lit_action(&loops, "go", &[], "true"),
            "time limit",
        ),
        (
            "a contractAddress that is not ipfs://",
            json!([{
                "contractAddress": cid,
                "standardContractType": "LitAction",
                "chain": "ethereum",
                "method": "go",
                "parameters": [],
                "returnValueTest": {"comparator": "=", "value": "true"},
            }]),
            "ipfs://<CID>",
        ),
    ] {
        let data = client.encrypt(&conditions, b"x").unwrap();
        let err = client.decrypt(&data, &alice).await.unwrap_err();
        let text = format!("{err:?}");
        assert!(
            text.contains("invalid_conditions") || text.contains("InvalidConditions"),
            "{what}: {text}"
        );
        assert!(text.contains(expect), "{what}: {text}");
    }
}
