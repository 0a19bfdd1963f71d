//! Access control conditions evaluated against a real EVM node (anvil) with real token
//! contracts deployed: native balance, ERC20, ERC721, ERC1155, an arbitrary view function by
//! ABI, the block timestamp, and boolean groups — each true for one user and false for another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use lit_api::ErrorCode;
use lit_node::auth::Address;
use lit_node::conditions::{ConditionError, Evaluator};
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
    w.evaluator.evaluate(&items, user).await
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
        down.evaluate(&items, &w.rich).await,
        Err(ConditionError::Rpc(_))
    ));
}
