//! Conditions as Lit writes them, through a real 5-node network and a real EVM node (anvil)
//! with real ERC-20/721/1155 contracts: each of Lit's request shapes (`accessControlConditions`
//! without `conditionType`, `evmContractConditions`, `unifiedAccessControlConditions`), Lit's
//! standard types (`balanceOfBatch`, `ERC721MetadataName`) and placeholders (`:litParam:`,
//! `:currentActionIpfsId` outside an action) decrypt for the user who meets them and for no
//! one else; inside an action `:currentActionIpfsId` is the action's CID; malformed shapes are refused with their codes; and a ciphertext's conditions are
//! the ones the nodes check: altering any field of them, an operator or their order changes
//! the identity, and shares the nodes give for the altered list do not decrypt it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use lit_api::conditions::ConditionsKind;
use lit_api::v1::{paths, EncryptionSignResponse};
use lit_client::{
    combine_and_decrypt, open_share, Bootstrap, ClientError, Conditions, ConnectOptions,
    EncryptedData, LitClient, Wallet,
};
use lit_crypto::identity::AccessControlIdentity;
use lit_crypto::seal::SealSecretKey;
use lit_node::devnet::LayoutOptions;
use rand_core::OsRng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::evm::{basic, deploy_condition_contracts, Anvil, ConditionContracts};
use support::net::{code, decrypt_auth, post, testnet, TestNet};

const RICH: u8 = 0x41;
const POOR: u8 = 0x42;
const DATA: &[u8] = b"payload";

/// (name, request key, list, litParams, whether the rich user decrypts, whether the poor one does)
type Case<'a> = (
    &'a str,
    ConditionsKind,
    Value,
    &'a BTreeMap<String, String>,
    bool,
    bool,
);

fn untagged(mut c: Value) -> Value {
    c.as_object_mut().unwrap().remove("conditionType");
    c
}

/// A raw decryption request to node `id` from the wallet of `seed`, with `list` under `kind`.
async fn ask(
    net: &TestNet,
    id: u32,
    seed: u8,
    kind: ConditionsKind,
    list: &Value,
    lit_params: &BTreeMap<String, String>,
) -> (u16, Value, SealSecretKey) {
    let key = k256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).unwrap();
    let (seal, client_key) = SealSecretKey::generate(&mut OsRng);
    let mut body = json!({
        "epoch": 1,
        "dataToEncryptHash": hex::encode(Sha256::digest(DATA)),
        "authSig": decrypt_auth(&key, &net.network().domain(), &net.url(id), list, DATA, 600),
        "clientPublicKey": hex::encode(client_key.to_bytes()),
    });
    body[kind.key()] = list.clone();
    if !lit_params.is_empty() {
        body["litParams"] = json!(lit_params);
    }
    let (status, resp) = post(&net.url(id), paths::ENCRYPTION_SIGN, &body).await;
    (status, resp, seal)
}

/// Every node refuses the wallet of `seed` with `conditions_not_met`.
async fn no_node_answers(net: &TestNet, seed: u8, kind: ConditionsKind, list: &Value) {
    for id in 1..=5 {
        let (status, resp, _) = ask(net, id, seed, kind, list, &BTreeMap::new()).await;
        assert_eq!(
            (status, code(&resp)),
            (403, "conditions_not_met"),
            "node {id}: {kind:?} {list}"
        );
    }
}

fn identity(list: &Value) -> AccessControlIdentity {
    AccessControlIdentity::for_conditions(list, Sha256::digest(DATA).into()).unwrap()
}

/// Asks nodes for shares of the decryption key of `list` as the rich user until the threshold,
/// combines them and tries to decrypt `data`'s ciphertext with the key for `list`'s identity.
async fn decrypt_with_shares_for(
    net: &TestNet,
    client: &LitClient,
    data: &EncryptedData,
    list: &Value,
) -> Result<Vec<u8>, ClientError> {
    let id = identity(list);
    let key_set = client.key_set();
    let mut shares = Vec::new();
    for node in 1..=5 {
        if shares.len() == client.threshold() {
            break;
        }
        let (status, resp, seal) = ask(
            net,
            node,
            RICH,
            data.conditions_kind,
            list,
            &BTreeMap::new(),
        )
        .await;
        assert_eq!(status, 200, "node {node}: {resp}");
        let resp: EncryptionSignResponse = serde_json::from_value(resp).unwrap();
        shares.push(open_share(&key_set, &seal, resp.party_id, resp.epoch, &id, &resp).unwrap());
    }
    let ct = data.ciphertext(None)?;
    combine_and_decrypt(&key_set, &id, &ct, &shares).map(|p| p.to_vec())
}

/// Every variant of `list` with one change: each string, number or boolean inside a condition
/// altered, each array element of a condition dropped, `conditionType` added where it is
/// absent and removed where present, each operator flipped, and adjacent items swapped.
fn alterations(list: &Value) -> Vec<(String, Value)> {
    fn walk(v: &Value, path: String, out: &mut Vec<(String, Value)>, root: &Value) {
        let set = |out: &mut Vec<(String, Value)>, what: String, new: Value| {
            let mut changed = root.clone();
            *changed.pointer_mut(&path).unwrap() = new;
            out.push((what, changed));
        };
        match v {
            Value::String(s) => set(out, format!("{path} string"), json!(format!("{s}1"))),
            Value::Bool(b) => set(out, format!("{path} bool"), json!(!b)),
            Value::Number(n) => set(
                out,
                format!("{path} number"),
                json!(n.as_i64().unwrap() + 1),
            ),
            Value::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    walk(item, format!("{path}/{i}"), out, root);
                    if !path.is_empty() && !item.is_object() {
                        let mut fewer = a.clone();
                        fewer.remove(i);
                        set(out, format!("{path}/{i} dropped"), Value::Array(fewer));
                    }
                }
                // adjacent items, and the two conditions around each operator
                for gap in [1, 2] {
                    for i in gap..a.len() {
                        let mut swapped = a.clone();
                        swapped.swap(i - gap, i);
                        if swapped != *a {
                            set(
                                out,
                                format!("{path} swap {} {i}", i - gap),
                                Value::Array(swapped),
                            );
                        }
                    }
                }
            }
            Value::Object(m) => {
                if let Some(op) = m.get("operator").and_then(Value::as_str) {
                    let other = if op == "and" { "or" } else { "and" };
                    set(out, format!("{path} operator"), json!({"operator": other}));
                    return;
                }
                for (k, item) in m {
                    walk(item, format!("{path}/{k}"), out, root);
                }
                let is_leaf = m.contains_key("returnValueTest");
                if is_leaf {
                    let mut toggled = m.clone();
                    if toggled.remove("conditionType").is_none() {
                        let kind = if m.contains_key("functionAbi") {
                            "evmContract"
                        } else {
                            "evmBasic"
                        };
                        toggled.insert("conditionType".into(), json!(kind));
                    }
                    set(
                        out,
                        format!("{path} conditionType toggled"),
                        Value::Object(toggled),
                    );
                }
            }
            Value::Null => {}
        }
    }
    let mut out = Vec::new();
    walk(list, String::new(), &mut out, list);
    out
}

#[tokio::test]
async fn lit_shaped_conditions_through_the_network() {
    let anvil = Anvil::start().await;
    let rich = Wallet::from_bytes(&[RICH; 32]).unwrap();
    let poor = Wallet::from_bytes(&[POOR; 32]).unwrap();
    let r = format!("0x{}", hex::encode(rich.address().0));
    let ConditionContracts {
        token,
        nft,
        multi,
        membership,
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

    // Lit's documented shapes ("Basic Examples", "Custom Contract Calls")
    let erc20 = basic(&token, "ERC20", "balanceOf", &[":userAddress"], ">", "0");
    let erc721 = basic(&nft, "ERC721", "ownerOf", &["7"], "=", ":userAddress");
    let batch = basic(
        &multi,
        "ERC1155",
        "balanceOfBatch",
        &[":userAddress,:userAddress", "1,3"],
        ">",
        "0",
    );
    let collection = basic(&nft, "ERC721MetadataName", "name", &[], "contains", "Lit");
    let by_param = basic(
        &multi,
        "ERC1155",
        "balanceOf",
        &[":userAddress", ":litParam:tokenId"],
        ">=",
        "2",
    );
    let in_action = basic("", "", "", &[":currentActionIpfsId"], "!=", "Qm");
    let is_rich = basic(
        "",
        "",
        "",
        &[":userAddress"],
        "=",
        &rich.address().to_checksum(),
    );
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
    let status = |key: &str, cmp: &str, value: &str| {
        json!({"conditionType": "evmContract", "contractAddress": membership,
            "functionName": "status", "functionParams": [":userAddress"],
            "functionAbi": {"name": "status", "type": "function", "stateMutability": "view",
                "inputs": [{"name": "who", "type": "address", "internalType": "address"}],
                "outputs": [{"name": "score", "type": "uint256", "internalType": "uint256"},
                            {"name": "member", "type": "bool", "internalType": "bool"},
                            {"name": "tier", "type": "string", "internalType": "string"}]},
            "chain": "anvil", "returnValueTest": {"key": key, "comparator": cmp, "value": value}})
    };
    let u = untagged;
    use ConditionsKind::{AccessControl, EvmContract, Unified};

    let no_params = BTreeMap::new();
    let token_3 = BTreeMap::from([("tokenId".to_string(), "3".to_string())]);
    let token_4 = BTreeMap::from([("tokenId".to_string(), "4".to_string())]);
    let cases: Vec<Case> = vec![
        (
            "accessControlConditions, Lit's address check",
            AccessControl,
            json!([u(is_rich.clone())]),
            &no_params,
            true,
            false,
        ),
        (
            "accessControlConditions without conditionType",
            AccessControl,
            json!([u(erc20.clone()), {"operator": "and"}, [u(batch.clone()), {"operator": "or"}, u(erc721.clone())]]),
            &no_params,
            true,
            false,
        ),
        (
            "ERC721MetadataName and a contract call, untagged",
            AccessControl,
            json!([u(collection.clone()), {"operator": "and"}, u(status("member", "=", "true"))]),
            &no_params,
            true,
            false,
        ),
        (
            "evmContractConditions",
            EvmContract,
            json!([u(status("tier", "=", "gold")), {"operator": "or"}, [status("score", ">=", "100")]]),
            &no_params,
            true,
            false,
        ),
        (
            "unifiedAccessControlConditions",
            Unified,
            json!([erc20.clone(), {"operator": "and"}, [status("member", "=", "true"), {"operator": "or"}, ts("<")]]),
            &no_params,
            true,
            false,
        ),
        (
            "litParam selects token 3",
            AccessControl,
            json!([u(by_param.clone())]),
            &token_3,
            true,
            false,
        ),
        (
            "litParam selects token 4",
            AccessControl,
            json!([u(by_param.clone())]),
            &token_4,
            false,
            false,
        ),
        (
            "currentActionIpfsId outside an action",
            Unified,
            json!([in_action.clone(), {"operator": "or"}, ts("<")]),
            &no_params,
            false,
            false,
        ),
    ];
    for (name, kind, list, params, rich_ok, poor_ok) in &cases {
        let encrypted = client
            .encrypt_conditions(&Conditions::new(*kind, list.clone()), DATA)
            .unwrap();
        assert_eq!(encrypted.conditions_kind, *kind);
        for (who, wallet, seed, ok) in [
            ("rich", &rich, RICH, *rich_ok),
            ("poor", &poor, POOR, *poor_ok),
        ] {
            let result = client.decrypt_with_params(&encrypted, wallet, params).await;
            if ok {
                assert_eq!(result.unwrap(), DATA, "{name}: {who}");
            } else {
                let err = result.unwrap_err();
                assert!(
                    matches!(err, ClientError::ConditionsNotMet { .. }),
                    "{name}: {who}: {err}"
                );
                if params.is_empty() {
                    no_node_answers(&net, seed, *kind, list).await;
                }
            }
        }
    }
    eprintln!(
        "{} request shapes decrypt for the right user only",
        cases.len()
    );

    // a litParam the request does not give is the condition's error at every node
    for id in 1..=5 {
        let (status, resp, _) = ask(
            &net,
            id,
            RICH,
            AccessControl,
            &json!([u(by_param.clone())]),
            &no_params,
        )
        .await;
        assert_eq!(
            (status, code(&resp)),
            (400, "invalid_conditions"),
            "node {id}: {resp}"
        );
    }
    // shapes refused before any evaluation, with their codes
    let refused: Vec<(Value, u16, &str)> = vec![
        (
            json!({"evmContractConditions": [u(erc20.clone())]}),
            400,
            "invalid_conditions",
        ),
        (
            json!({"unifiedAccessControlConditions": [u(erc20.clone())]}),
            400,
            "invalid_conditions",
        ),
        (
            json!({"solRpcConditions": [{"method": "getBalance", "params": [":userAddress"]}]}),
            400,
            "unknown_condition_type",
        ),
        (
            json!({"unifiedAccessControlConditions": [{"conditionType": "cosmos", "path": "/x", "chain": "cosmos",
            "returnValueTest": {"key": "", "comparator": "=", "value": "1"}}]}),
            400,
            "unknown_condition_type",
        ),
        (
            json!({"accessControlConditions": [u(erc20.clone())], "evmContractConditions": [status("member", "=", "true")]}),
            400,
            "malformed_request",
        ),
        (json!({}), 400, "malformed_request"),
    ];
    for (lists, want_status, want_code) in refused {
        let key = k256::ecdsa::SigningKey::from_bytes(&[RICH; 32].into()).unwrap();
        let any = json!([u(erc20.clone())]);
        let mut body = json!({
            "epoch": 1,
            "dataToEncryptHash": hex::encode(Sha256::digest(DATA)),
            "authSig": decrypt_auth(&key, &net.network().domain(), &net.url(1), &any, DATA, 600),
            "clientPublicKey": hex::encode(SealSecretKey::generate(&mut OsRng).1.to_bytes()),
        });
        for (k, v) in lists.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, resp) = post(&net.url(1), paths::ENCRYPTION_SIGN, &body).await;
        assert_eq!(
            (status, code(&resp)),
            (want_status, want_code),
            "{lists}: {resp}"
        );
    }
    // the SDK refuses them before any request
    assert!(matches!(
        client.encrypt_conditions(
            &Conditions::new(EvmContract, json!([u(erc20.clone())])),
            DATA
        ),
        Err(ClientError::Conditions(_))
    ));

    // :currentActionIpfsId inside an action is the running action's CID
    let code = r#"
const met = await Lit.Actions.checkConditions({ conditions, authSig: null, chain: "anvil" });
Lit.Actions.setResponse({ response: JSON.stringify(met) });
"#;
    let cid = lit_api::cid::ActionId::of(code.as_bytes()).to_string();
    for (expected, answer) in [(cid.as_str(), "true"), ("QmSomeOtherAction", "false")] {
        let by_cid = json!([u(basic(
            "",
            "",
            "",
            &[":currentActionIpfsId"],
            "=",
            expected
        ))]);
        let out = client
            .execute_js(
                lit_client::ExecuteJs::code(code)
                    .param("conditions", by_cid)
                    .wallet(&poor),
            )
            .await
            .unwrap();
        assert_eq!(out.agreed_response().unwrap(), Some(answer), "{expected}");
    }

    // A ciphertext's conditions are the ones the nodes check. The rich user meets this list
    // and many of its alterations; any alteration is another identity, so neither the SDK nor
    // shares the nodes give for the altered list open the ciphertext.
    let original = json!([
        u(is_rich.clone()), {"operator": "and"},
        [u(erc20.clone()), {"operator": "or"}, u(status("score", ">=", "100"))],
        {"operator": "and"}, u(ts(">"))
    ]);
    let data = client.encrypt(&original, DATA).unwrap();
    assert_eq!(client.decrypt(&data, &rich).await.unwrap(), DATA);
    // the harness itself: shares for the original list decrypt
    assert_eq!(
        decrypt_with_shares_for(&net, &client, &data, &original)
            .await
            .unwrap(),
        DATA
    );
    let altered = alterations(&original);
    let mut met_by_rich = 0;
    for (what, list) in &altered {
        assert_ne!(identity(list), identity(&original), "{what}");
        let mut tampered = data.clone();
        tampered.access_control_conditions = list.clone();
        assert!(client.decrypt(&tampered, &rich).await.is_err(), "{what}");
    }
    // through the nodes, for the alterations the rich user still meets
    for (what, list) in &altered {
        let Ok(items) = lit_api::conditions::parse(list) else {
            continue;
        };
        let _ = items;
        let (status, _, _) = ask(&net, 1, RICH, AccessControl, list, &no_params).await;
        if status != 200 {
            continue;
        }
        met_by_rich += 1;
        let result = decrypt_with_shares_for(&net, &client, &data, list).await;
        assert!(
            matches!(result, Err(ClientError::Decrypt(_))),
            "{what}: {result:?}"
        );
    }
    eprintln!(
        "{} alterations change the identity; {met_by_rich} are met by the rich user, and their shares do not decrypt",
        altered.len()
    );
    assert!(met_by_rich >= 5, "only {met_by_rich} alterations met");
}
