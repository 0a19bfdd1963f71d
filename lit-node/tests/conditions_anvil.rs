//! Access control conditions evaluated against a real EVM node (anvil) with real token
//! contracts deployed: native balance, ERC20, ERC721 (owner, balance, collection name), ERC1155
//! (balance, `balanceOfBatch`), an arbitrary view function by ABI, the block timestamp, and
//! boolean groups — each true for one user and false for another; Lit's shape without
//! `conditionType`, and the `:litParam:` and `:currentActionIpfsId` placeholders.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use lit_api::ErrorCode;
use lit_node::auth::Address;
use lit_node::conditions::{ConditionError, EvalContext, Evaluator};
use lit_node::config::ChainConfig;
use serde_json::{json, Value};
use support::evm::{basic, deploy_condition_contracts, Anvil, ConditionContracts};

struct World {
    _anvil: Anvil,
    evaluator: Evaluator,
    token: String,
    nft: String,
    multi: String,
    membership: String,
    rich: Address,
    poor: Address,
}

fn hex_addr(a: &Address) -> String {
    format!("0x{}", hex::encode(a.0))
}

async fn world() -> World {
    let anvil = Anvil::start().await;
    let rich = Address([0x11; 20]);
    let poor = Address([0x22; 20]);
    let ConditionContracts {
        token,
        nft,
        multi,
        membership,
    } = deploy_condition_contracts(&anvil, &hex_addr(&rich)).await;
    let chains = BTreeMap::from([(
        "anvil".to_string(),
        ChainConfig {
            rpc_url: anvil.url.clone(),
            timeout_ms: 5_000,
            chain_id: None,
        },
    )]);
    World {
        evaluator: Evaluator::new(&chains).unwrap(),
        _anvil: anvil,
        token,
        nft,
        multi,
        membership,
        rich,
        poor,
    }
}

fn status(w: &World, key: &str, cmp: &str, value: &str) -> Value {
    json!({"conditionType": "evmContract", "contractAddress": w.membership,
           "functionName": "status", "functionParams": [":userAddress"],
           "functionAbi": {"name": "status", "type": "function", "stateMutability": "view",
                           "inputs": [{"name": "who", "type": "address", "internalType": "address"}],
                           "outputs": [{"name": "score", "type": "uint256"},
                                       {"name": "member", "type": "bool"},
                                       {"name": "tier", "type": "string"}]},
           "chain": "anvil",
           "returnValueTest": {"key": key, "comparator": cmp, "value": value}})
}

async fn eval(w: &World, conditions: Value, user: &Address) -> Result<bool, ConditionError> {
    let items = lit_api::conditions::parse(&conditions).unwrap();
    w.evaluator
        .evaluate(&items, &EvalContext::for_user(user))
        .await
}

async fn eval_in(
    w: &World,
    conditions: Value,
    ctx: &EvalContext<'_>,
) -> Result<bool, ConditionError> {
    let items = lit_api::conditions::parse(&conditions).unwrap();
    w.evaluator.evaluate(&items, ctx).await
}

/// `c` without its `conditionType`, as Lit's `accessControlConditions` are written.
fn untagged(mut c: Value) -> Value {
    c.as_object_mut().unwrap().remove("conditionType");
    c
}

/// Asserts the conditions hold for the rich user and not for the poor one.
async fn only_rich(w: &World, conditions: Value) {
    assert!(
        eval(w, conditions.clone(), &w.rich).await.unwrap(),
        "rich: {conditions}"
    );
    assert!(
        !eval(w, conditions.clone(), &w.poor).await.unwrap(),
        "poor: {conditions}"
    );
}

#[tokio::test]
async fn conditions_on_a_real_chain() {
    let w = world().await;
    let one_eth = "1000000000000000000";

    // native balance
    only_rich(
        &w,
        json!([basic(
            "",
            "",
            "eth_getBalance",
            &[":userAddress", "latest"],
            ">=",
            one_eth
        )]),
    )
    .await;
    // ERC20
    only_rich(
        &w,
        json!([basic(
            &w.token,
            "ERC20",
            "balanceOf",
            &[":userAddress"],
            ">",
            "0"
        )]),
    )
    .await;
    only_rich(
        &w,
        json!([basic(
            &w.token,
            "ERC20",
            "balanceOf",
            &[":userAddress"],
            "=",
            "500"
        )]),
    )
    .await;
    assert!(!eval(
        &w,
        json!([basic(
            &w.token,
            "ERC20",
            "balanceOf",
            &[":userAddress"],
            ">",
            "500"
        )]),
        &w.rich
    )
    .await
    .unwrap());
    // ERC721 owner and balance
    only_rich(
        &w,
        json!([basic(
            &w.nft,
            "ERC721",
            "ownerOf",
            &["7"],
            "=",
            ":userAddress"
        )]),
    )
    .await;
    only_rich(
        &w,
        json!([basic(
            &w.nft,
            "ERC721",
            "balanceOf",
            &[":userAddress"],
            ">=",
            "1"
        )]),
    )
    .await;
    // ERC1155
    only_rich(
        &w,
        json!([basic(
            &w.multi,
            "ERC1155",
            "balanceOf",
            &[":userAddress", "3"],
            ">=",
            "2"
        )]),
    )
    .await;
    assert!(!eval(
        &w,
        json!([basic(
            &w.multi,
            "ERC1155",
            "balanceOf",
            &[":userAddress", "4"],
            ">",
            "0"
        )]),
        &w.rich
    )
    .await
    .unwrap());
    // any view function by ABI, choosing the output by key
    only_rich(&w, json!([status(&w, "score", ">=", "100")])).await;
    only_rich(&w, json!([status(&w, "member", "=", "true")])).await;
    only_rich(&w, json!([status(&w, "tier", "=", "gold")])).await;
    assert!(
        eval(&w, json!([status(&w, "tier", "contains", "bas")]), &w.poor)
            .await
            .unwrap()
    );
    // block timestamp
    let ts =
        |cmp: &str, v: &str| basic("", "timestamp", "eth_getBlockByNumber", &["latest"], cmp, v);
    assert!(eval(&w, json!([ts(">", "1000000000")]), &w.poor)
        .await
        .unwrap());
    assert!(!eval(&w, json!([ts("<", "1000000000")]), &w.rich)
        .await
        .unwrap());

    // boolean groups, left to right
    let erc20 = basic(&w.token, "ERC20", "balanceOf", &[":userAddress"], ">", "0");
    only_rich(&w, json!([erc20, {"operator": "and"}, [status(&w, "tier", "=", "gold"), {"operator": "or"}, ts("<", "0")]])).await;
    assert!(eval(
        &w,
        json!([erc20, {"operator": "or"}, ts(">", "0")]),
        &w.poor
    )
    .await
    .unwrap());
    assert!(!eval(
        &w,
        json!([ts(">", "0"), {"operator": "and"}, [erc20, {"operator": "and"}, ts(">", "0")]]),
        &w.poor
    )
    .await
    .unwrap());
}

#[tokio::test]
async fn chain_errors_are_typed() {
    let w = world().await;
    // a call that reverts (no such token) is a chain error, not a silent "false"
    let err = eval(
        &w,
        json!([basic(
            &w.nft,
            "ERC721",
            "ownerOf",
            &["99"],
            "=",
            ":userAddress"
        )]),
        &w.rich,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ConditionError::Rpc(_)), "{err}");
    assert_eq!(err.code(), ErrorCode::ChainUnavailable);
    // an ABI that does not match the call arguments
    let mut bad = status(&w, "score", ">", "0");
    bad["functionParams"] = json!([":userAddress", "extra"]);
    assert!(matches!(
        eval(&w, json!([bad]), &w.rich).await,
        Err(ConditionError::Invalid(_))
    ));
    // a non-view function is refused before any call
    let mut write = status(&w, "score", ">", "0");
    write["functionAbi"]["stateMutability"] = json!("nonpayable");
    assert!(matches!(
        eval(&w, json!([write]), &w.rich).await,
        Err(ConditionError::Invalid(_))
    ));
    // an unreachable RPC endpoint
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let chains = BTreeMap::from([(
        "anvil".to_string(),
        ChainConfig {
            rpc_url: format!("http://127.0.0.1:{closed}"),
            timeout_ms: 500,
            chain_id: None,
        },
    )]);
    let down = Evaluator::new(&chains).unwrap();
    let items = lit_api::conditions::parse(&json!([basic(
        "",
        "timestamp",
        "eth_getBlockByNumber",
        &["latest"],
        ">",
        "0"
    )]))
    .unwrap();
    assert!(matches!(
        down.evaluate(&items, &EvalContext::for_user(&w.rich)).await,
        Err(ConditionError::Rpc(_))
    ));
}

#[tokio::test]
async fn lit_s_standard_types_placeholders_and_untagged_shapes() {
    let w = world().await;
    let rich = hex_addr(&w.rich);
    // ERC1155 balanceOfBatch as Lit's docs write it: true if any of the balances passes
    let batch = |owners: &str, ids: &str, cmp: &str, v: &str| {
        untagged(basic(
            &w.multi,
            "ERC1155",
            "balanceOfBatch",
            &[owners, ids],
            cmp,
            v,
        ))
    };
    only_rich(
        &w,
        json!([batch(":userAddress,:userAddress", "1,3", ">", "0")]),
    )
    .await;
    only_rich(
        &w,
        json!([batch(
            ":userAddress,:userAddress,:userAddress",
            "4,5,3",
            ">=",
            "2"
        )]),
    )
    .await;
    assert!(!eval(
        &w,
        json!([batch(":userAddress,:userAddress", "1,3", ">", "2")]),
        &w.rich
    )
    .await
    .unwrap());
    // an address other than the user's in the batch: the rich one's balance counts for anyone
    assert!(eval(
        &w,
        json!([batch(&format!(":userAddress,{rich}"), "3,3", ">", "0")]),
        &w.poor
    )
    .await
    .unwrap());
    for (owners, ids) in [(":userAddress", "1,3"), (":userAddress,:userAddress", "3")] {
        let err = eval(&w, json!([batch(owners, ids, ">", "0")]), &w.rich)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ConditionError::Invalid(_)),
            "{owners} {ids}: {err}"
        );
    }
    // ERC721MetadataName: the collection's name()
    let name =
        |cmp: &str, v: &str| untagged(basic(&w.nft, "ERC721MetadataName", "name", &[], cmp, v));
    assert!(eval(&w, json!([name("=", "Lit Test Collection")]), &w.poor)
        .await
        .unwrap());
    assert!(eval(&w, json!([name("contains", "Test")]), &w.poor)
        .await
        .unwrap());
    assert!(!eval(&w, json!([name("=", "Other")]), &w.poor)
        .await
        .unwrap());
    only_rich(
        &w,
        json!([name("contains", "Lit"), {"operator": "and"},
               untagged(basic(&w.nft, "ERC721", "balanceOf", &[":userAddress"], ">", "0"))]),
    )
    .await;

    // an evmContract condition without conditionType, in a list with an untagged evmBasic one
    only_rich(
        &w,
        json!([untagged(status(&w, "member", "=", "true")), {"operator": "and"},
               [untagged(basic(&w.token, "ERC20", "balanceOf", &[":userAddress"], ">", "0"))]]),
    )
    .await;

    // :litParam in a contract call's parameters and in the expected value
    let params = std::collections::BTreeMap::from([
        ("id".to_string(), "3".to_string()),
        ("min".to_string(), "2".to_string()),
        ("other".to_string(), "4".to_string()),
    ]);
    let multi = |id: &str, min: &str| {
        untagged(basic(
            &w.multi,
            "ERC1155",
            "balanceOf",
            &[":userAddress", id],
            ">=",
            min,
        ))
    };
    let rich_ctx = EvalContext::for_user(&w.rich)
        .with_lit_params(&params)
        .unwrap();
    let poor_ctx = EvalContext::for_user(&w.poor)
        .with_lit_params(&params)
        .unwrap();
    let c = json!([multi(":litParam:id", ":litParam:min")]);
    assert!(eval_in(&w, c.clone(), &rich_ctx).await.unwrap());
    assert!(!eval_in(&w, c.clone(), &poor_ctx).await.unwrap());
    assert!(
        !eval_in(&w, json!([multi(":litParam:other", "1")]), &rich_ctx)
            .await
            .unwrap()
    );
    let err = eval(&w, c, &w.rich).await.unwrap_err();
    assert!(matches!(err, ConditionError::Invalid(_)), "{err}");

    // :currentActionIpfsId inside and outside an action, in a contract call's parameters too
    let cid = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
    let by_cid = json!([untagged(basic(
        "",
        "",
        "",
        &[":currentActionIpfsId"],
        "=",
        cid
    ))]);
    let inside = EvalContext::for_user(&w.poor).in_action(cid);
    assert!(eval_in(&w, by_cid.clone(), &inside).await.unwrap());
    assert!(!eval(&w, by_cid, &w.poor).await.unwrap());
    // outside an action a condition naming it is false even where the rest would hold
    let mut call = status(&w, "tier", "!=", "nothing");
    call["functionParams"] = json!([":currentActionIpfsId"]);
    assert!(!eval(&w, json!([call]), &w.rich).await.unwrap());
}
