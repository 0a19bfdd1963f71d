//! Access control conditions evaluated by every node of a real 5-node network against a real
//! EVM node (anvil) with real token contracts: for each kind of condition a user who meets it
//! decrypts, and a user who does not gets no share from any node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lit_api::v1::paths;
use lit_client::{Bootstrap, ClientError, ConnectOptions, LitClient, Wallet};
use lit_crypto::seal::SealSecretKey;
use lit_node::devnet::LayoutOptions;
use rand_core::OsRng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::evm::{basic, deploy_condition_contracts, Anvil, ConditionContracts};
use support::net::{code, decrypt_auth, post, testnet, TestNet};

/// Every node refuses `wallet` with `conditions_not_met`: no share leaves any node.
async fn no_node_answers(net: &TestNet, conditions: &Value, seed: u8) {
    let key = k256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).unwrap();
    for id in 1..=5 {
        let client_key = SealSecretKey::generate(&mut OsRng).1.to_bytes();
        let body = json!({
            "epoch": 1,
            "accessControlConditions": conditions,
            "dataToEncryptHash": hex::encode(Sha256::digest(b"payload")),
            "authSig": decrypt_auth(
                &key,
                &net.network().domain(),
                &net.url(id),
                conditions,
                b"payload",
                600,
            ),
            "clientPublicKey": hex::encode(client_key),
        });
        let (status, resp) = post(&net.url(id), paths::ENCRYPTION_SIGN, &body).await;
        assert_eq!(
            (status, code(&resp)),
            (403, "conditions_not_met"),
            "node {id}: {conditions}"
        );
    }
}

#[tokio::test]
async fn conditions_on_anvil_through_the_network() {
    let anvil = Anvil::start().await;
    const RICH: u8 = 0x31;
    const POOR: u8 = 0x32;
    let rich = Wallet::from_bytes(&[RICH; 32]).unwrap();
    let poor = Wallet::from_bytes(&[POOR; 32]).unwrap();
    let r = format!("0x{}", hex::encode(rich.address().0));
    let ConditionContracts {
        token,
        nft,
        membership,
        ..
    } = deploy_condition_contracts(&anvil, &r).await;

    let options = LayoutOptions {
        chains: vec![("anvil".into(), anvil.url.clone())],
        ..LayoutOptions::default()
    };
    let net = testnet(5).options(options).start().await;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();

    let balance = basic(
        "",
        "",
        "eth_getBalance",
        &[":userAddress", "latest"],
        ">=",
        "1000000000000000000",
    );
    let erc20 = basic(&token, "ERC20", "balanceOf", &[":userAddress"], ">", "0");
    let erc721 = basic(&nft, "ERC721", "ownerOf", &["7"], "=", ":userAddress");
    let contract_call = json!({"conditionType": "evmContract", "contractAddress": membership,
        "functionName": "status", "functionParams": [":userAddress"],
        "functionAbi": {"name": "status", "type": "function", "stateMutability": "view",
            "inputs": [{"name": "who", "type": "address", "internalType": "address"}],
            "outputs": [{"name": "score", "type": "uint256"}, {"name": "member", "type": "bool"},
                        {"name": "tier", "type": "string"}]},
        "chain": "anvil", "returnValueTest": {"key": "member", "comparator": "=", "value": "true"}});
    let ts = |cmp: &str| {
        basic(
            "",
            "timestamp",
            "eth_getBlockByNumber",
            &["latest"],
            cmp,
            "0",
        )
    };
    let is_rich = basic(
        "",
        "",
        "",
        &[":userAddress"],
        "=",
        &rich.address().to_checksum(),
    );

    // (conditions, whether the rich user passes, whether the poor user passes)
    let cases: Vec<(&str, Value, bool, bool)> = vec![
        ("native balance", json!([balance]), true, false),
        ("ERC20 balance", json!([erc20]), true, false),
        ("ERC721 owner", json!([erc721]), true, false),
        ("contract call", json!([contract_call]), true, false),
        ("timestamp true", json!([ts(">")]), true, true),
        ("timestamp false", json!([ts("<")]), false, false),
        (
            "and group",
            json!([erc20, {"operator": "and"}, [erc721, {"operator": "or"}, ts("<")]]),
            true,
            false,
        ),
        (
            "or group",
            json!([is_rich, {"operator": "or"}, ts(">")]),
            true,
            true,
        ),
        (
            "and with a false member",
            json!([ts(">"), {"operator": "and"}, [erc20, {"operator": "and"}, ts("<")]]),
            false,
            false,
        ),
    ];
    for (name, conditions, rich_ok, poor_ok) in cases {
        let encrypted = client.encrypt(&conditions, b"payload").unwrap();
        for (who, wallet, seed, ok) in [
            ("rich", &rich, RICH, rich_ok),
            ("poor", &poor, POOR, poor_ok),
        ] {
            let result = client.decrypt(&encrypted, wallet).await;
            if ok {
                assert_eq!(result.unwrap(), b"payload", "{name}: {who}");
            } else {
                let err = result.unwrap_err();
                assert!(
                    matches!(err, ClientError::ConditionsNotMet { .. }),
                    "{name}: {who}: {err}"
                );
                no_node_answers(&net, &conditions, seed).await;
            }
        }
    }
}
