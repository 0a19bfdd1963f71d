//! Paying for requests on a devnet of real node processes with the embedded chain's ledger:
//! every node refuses a request whose signed `maxPrice` is below its price (`price_too_high`)
//! or whose payer cannot cover it (`payment_required`); after a deposit the same request is
//! served, each node says what it charged, and once the nodes settle the balance has fallen
//! by exactly those charges, each paid to the node that served. A payer's delegation pays for
//! another user up to its request limit. A node killed between serving and settling settles
//! its debits when it comes back, once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use lit_api::ledger::{LedgerOp, LedgerOpRequest};
use lit_api::owner::OwnerAction;
use lit_api::session::{LitAbility, ResourceAbilityRequest};
use lit_api::v1::{paths, ToSign, CHARGED_HEADER};
use lit_api::Bytes32;
use lit_client::{Bootstrap, ConnectOptions, LitClient, Session, Signer, Wallet};
use lit_crypto::eth::Address;
use lit_node::chain::payments::Prices;
use lit_node::devnet::{DevnetStaking, LayoutOptions};
use lit_node::testnet::TestNet;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::net::{
    code, decryption_resource, funded, https_client, libsecp_recover, post, prices_read, testnet,
    user_is,
};

/// Decryption 7, PKP signature 11 per node; actions free (their own test sets their prices).
const PRICES: Prices = Prices([7, 11, 0, 0, 0]);
const TIMEOUT: Duration = Duration::from_secs(120);
const NODES: u32 = 4;

async fn start(settle_interval_ms: u64) -> TestNet {
    let options = LayoutOptions {
        staking: Some(DevnetStaking {
            settle_interval_ms,
            ..DevnetStaking::default()
        }),
        ..LayoutOptions::default()
    };
    let mut net = testnet(NODES as usize).options(options).start().await;
    net.devnet().wait_epoch(1, TIMEOUT).await.unwrap();
    net
}

/// What one node answered.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    /// The error code ("" for a share).
    code: String,
    /// `x-lit-charged` (0 when absent).
    charged: u128,
}

/// Asks every node for a decryption share of `data` under `conditions` as `wallet`, each
/// request signed with `max_price` and `payer` (raw requests, so that every node answers).
async fn ask_every_node(
    net: &TestNet,
    wallet: &Wallet,
    conditions: &Value,
    data: &[u8],
    max_price: Option<u128>,
    payer: Option<Address>,
) -> Vec<Answer> {
    let grant = ResourceAbilityRequest::new(
        decryption_resource(conditions, data),
        LitAbility::AccessControlConditionDecryption,
    )
    .unwrap();
    let mut session = Session::from_wallet(
        wallet,
        &net.network().domain(),
        vec![grant],
        Duration::from_secs(600),
    )
    .unwrap();
    if let Some(p) = max_price {
        session = session.with_max_price(p);
    }
    if let Some(p) = payer {
        session = session.with_payer(p);
    }
    let mut answers = Vec::new();
    for id in 1..=NODES {
        let url = net.url(id);
        let auth: lit_api::v1::AuthSig = session
            .sign_for_node(&url, std::time::SystemTime::now())
            .unwrap()
            .into();
        let mut client_key = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut client_key);
        let body = json!({
            "epoch": 1,
            "accessControlConditions": conditions,
            "dataToEncryptHash": hex::encode(Sha256::digest(data)),
            "authSig": auth,
            "clientPublicKey": hex::encode(client_key),
        });
        let resp = https_client()
            .post(format!("{url}{}", paths::ENCRYPTION_SIGN))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let charged = resp
            .headers()
            .get(CHARGED_HEADER)
            .map(|v| v.to_str().unwrap().parse().unwrap())
            .unwrap_or(0);
        let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        let code = body["error"]["code"].as_str().unwrap_or("").to_string();
        answers.push(Answer {
            status,
            code,
            charged,
        });
    }
    answers
}

fn all(status: u16, code: &str, charged: u128) -> Vec<Answer> {
    (0..NODES)
        .map(|_| Answer {
            status,
            code: code.into(),
            charged,
        })
        .collect()
}

/// The nodes' stakers (who the ledger pays).
async fn stakers(net: &mut TestNet) -> Vec<Address> {
    let mut out = Vec::new();
    for id in 1..=NODES {
        out.push(net.devnet().staking_as(id).await.unwrap().caller());
    }
    out
}

/// Waits until `cond` holds of `payments`' reading, or fails with the nodes' logs.
async fn eventually<F, Fut>(net: &TestNet, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !cond().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            net.logs(&format!("never: {what}"))
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn users_pay_each_node_for_what_it_served_and_delegations_pay_up_to_their_limit() {
    let mut net = start(500).await;
    let admin = net.devnet().payments_admin().await.unwrap();
    let alice = Wallet::random();
    let conditions = user_is(&alice.address());
    let data = b"paid for";

    // a free network: served without a price
    assert_eq!(
        ask_every_node(&net, &alice, &conditions, data, None, None).await,
        all(200, "", 0)
    );

    // prices: once the nodes read them, a request without a signed maximum is refused
    admin.set_prices(&PRICES).await.unwrap();
    eventually(&net, "the nodes charge", || async {
        ask_every_node(&net, &alice, &conditions, data, None, None).await
            == all(402, "price_too_high", 0)
    })
    .await;
    assert_eq!(
        ask_every_node(&net, &alice, &conditions, data, Some(6), None).await,
        all(402, "price_too_high", 0)
    );
    // no balance: every node refuses
    assert_eq!(
        ask_every_node(&net, &alice, &conditions, data, Some(10), None).await,
        all(402, "payment_required", 0)
    );

    // the faucet, then a deposit: every node serves and says what it charged
    let ledger = funded(&mut net, &alice, 1_000, 200).await;
    assert_eq!(
        ask_every_node(&net, &alice, &conditions, data, Some(10), None).await,
        all(200, "", 7)
    );
    // settled: the balance fell by exactly the four charges, each paid to its node, once
    eventually(&net, "the charges are settled", || async {
        ledger.account(alice.address()).await.unwrap().balance == 200 - 4 * 7
    })
    .await;
    let nodes = stakers(&mut net).await;
    for node in &nodes {
        assert_eq!(admin.rewards(*node).await.unwrap(), 7, "{node}");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ledger.account(alice.address()).await.unwrap().balance, 172);

    // through the SDK: the client signs its maximum price into every request
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet().with_max_price(20),
    )
    .await
    .unwrap();
    let encrypted = client.encrypt(&conditions, data).unwrap();
    assert_eq!(client.decrypt(&encrypted, &alice).await.unwrap(), data);
    let pkp = client.mint_pkp(&alice).await.unwrap();
    let sig = client
        .pkp_sign(
            &pkp,
            ToSign::Digest(Bytes32([9; 32])),
            Signer::Wallet(&alice),
        )
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
    // a client without a maximum price is refused
    let unpriced = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    let refused = unpriced
        .pkp_sign(
            &pkp,
            ToSign::Digest(Bytes32([9; 32])),
            Signer::Wallet(&alice),
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("price_too_high"), "{refused}");
    // what the SDK's requests cost: each price once per node that served (at least T of
    // them); settled when the balance stays put for three settlement intervals
    let mut last = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = ledger.account(alice.address()).await.unwrap().balance;
        if now == last {
            break;
        }
        last = now;
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            net.logs("unsettled")
        );
    }
    let spent = 172 - last;
    let t = client.threshold() as u128;
    assert!(
        (t..=4).any(|a| (t..=4).any(|b| 7 * a + 11 * b == spent)),
        "the SDK's decryption and signature cost {spent}"
    );
    let mut paid = 0;
    for node in &nodes {
        paid += admin.rewards(*node).await.unwrap();
    }
    assert_eq!(paid, 200 - last);

    // a dApp pays for bob: up to 4 node requests per hour
    let bob = Wallet::random();
    let bobs = user_is(&bob.address());
    let none = ask_every_node(&net, &bob, &bobs, data, Some(10), Some(alice.address())).await;
    assert_eq!(none, all(402, "payment_required", 0));
    ledger.delegate(bob.address(), 50, 4, 3600).await.unwrap();
    let before = ledger.account(alice.address()).await.unwrap().balance;

    assert_eq!(
        ask_every_node(&net, &bob, &bobs, data, Some(10), Some(alice.address())).await,
        all(200, "", 7)
    );
    eventually(&net, "bob's requests are counted", || async {
        ledger
            .delegation(alice.address(), bob.address())
            .await
            .unwrap()
            .period_requests
            == 4
    })
    .await;
    assert_eq!(
        ledger.account(alice.address()).await.unwrap().balance,
        before - 28
    );
    assert_eq!(ledger.account(bob.address()).await.unwrap().balance, 0);
    // the period's four requests are used: every node refuses the fifth
    assert_eq!(
        ask_every_node(&net, &bob, &bobs, data, Some(10), Some(alice.address())).await,
        all(402, "payment_required", 0)
    );
    // and nobody else can name alice as payer
    let mallory = Wallet::random();
    let hers = user_is(&mallory.address());
    assert_eq!(
        ask_every_node(&net, &mallory, &hers, data, Some(10), Some(alice.address())).await,
        all(402, "payment_required", 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_before_it_settles_charges_its_debits_once_when_it_is_back() {
    // the nodes settle at start-up, then once a minute: the debits below wait
    let mut net = start(60_000).await;
    let admin = net.devnet().payments_admin().await.unwrap();
    admin.set_prices(&PRICES).await.unwrap();
    let alice = Wallet::random();
    funded(&mut net, &alice, 1_000, 100).await;
    let conditions = user_is(&alice.address());
    // the prices are read at start-up and every minute: restart node 2 so it has them
    net.kill(2);
    net.devnet().restart(2).unwrap();
    net.devnet().wait_epoch(1, TIMEOUT).await.unwrap();
    let answers = ask_every_node(&net, &alice, &conditions, b"x", Some(10), None).await;
    assert_eq!(
        answers[1],
        Answer {
            status: 200,
            code: String::new(),
            charged: 7
        }
    );

    // killed before its next settlement: the debit is in its file
    net.kill(2);
    let node2 = net.devnet().staking_as(2).await.unwrap().caller();
    assert_eq!(admin.rewards(node2).await.unwrap(), 0);
    let debits = net.devnet().layout().data_dir(2).join("debits.sqlite");
    let rows: i64 = rusqlite::Connection::open(&debits)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM debits", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);

    // back up, it settles at start-up; restarted again, it charges nothing more
    net.devnet().restart(2).unwrap();
    eventually(&net, "node 2 settles", || async {
        admin.rewards(node2).await.unwrap() == 7
    })
    .await;
    net.kill(2);
    net.devnet().restart(2).unwrap();
    net.devnet().wait_epoch(1, TIMEOUT).await.unwrap();
    assert_eq!(admin.rewards(node2).await.unwrap(), 7);
    assert_eq!(admin.settled_batch(node2).await.unwrap(), 1);
}

/// An owner-approved ledger operation of `wallet`, as the client sends it.
fn approved(
    wallet: &Wallet,
    network_id: &str,
    account: Address,
    op: LedgerOp,
    now: std::time::SystemTime,
    ttl: Duration,
) -> Value {
    let account = account.to_checksum();
    let approval = wallet
        .approve(
            network_id,
            &OwnerAction::Ledger {
                account: &account,
                op: &op,
            },
            now,
            ttl,
        )
        .unwrap();
    serde_json::to_value(LedgerOpRequest {
        account,
        op,
        approval,
    })
    .unwrap()
}

/// On the embedded chain a node applies an account's own ledger operation with the account's
/// approval: once, whichever node it reaches (a node that replays it, here or elsewhere,
/// changes nothing), only for the operation, the account, the network and the time signed.
#[tokio::test(flavor = "multi_thread")]
async fn ledger_operations_through_the_nodes_take_effect_once_and_only_as_approved() {
    let net = start(500).await;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    let network = client.network_id();
    let alice = Wallet::random();
    let now = std::time::SystemTime::now;
    let ttl = Duration::from_secs(600);

    // the faucet tops an address up to its amount, not beyond
    let thousand = (1000 * 10u128.pow(18)).to_string();
    let got = client.faucet(alice.address()).await.unwrap();
    assert_eq!(
        (got.given.as_str(), got.tokens.as_str()),
        (thousand.as_str(), thousand.as_str())
    );
    let again = client.faucet(alice.address()).await.unwrap();
    assert_eq!(
        (again.given.as_str(), again.tokens.as_str()),
        ("0", thousand.as_str())
    );
    let (status, body) = post(
        &net.url(2),
        paths::LEDGER_FAUCET,
        &json!({"address": "0x12"}),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "malformed_request"), "{body}");

    // a deposit approved by alice, at node 1
    let deposit = LedgerOp::Deposit {
        amount: "500".into(),
    };
    let request = approved(
        &alice,
        &network,
        alice.address(),
        deposit.clone(),
        now(),
        ttl,
    );
    let (status, body) = post(&net.url(1), paths::LEDGER_OP, &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["balance"], "500");
    // replayed at every node, node 1 included: refused, nothing moves
    for id in 1..=NODES {
        let (_, body) = post(&net.url(id), paths::LEDGER_OP, &request).await;
        assert_eq!(code(&body), "nonce_replayed", "node {id}: {body}");
    }
    // the approval of 500 does not deposit 5000
    let mut stretched = request.clone();
    stretched["op"]["amount"] = json!("5000");
    stretched["approval"] = approved(
        &alice,
        &network,
        alice.address(),
        deposit.clone(),
        now(),
        ttl,
    )["approval"]
        .clone();
    let (_, body) = post(&net.url(2), paths::LEDGER_OP, &stretched).await;
    assert_eq!(code(&body), "invalid_auth", "{body}");
    // bob cannot move alice's tokens, whatever he signs
    let bob = Wallet::random();
    let bobs = approved(&bob, &network, alice.address(), deposit.clone(), now(), ttl);
    let (_, body) = post(&net.url(3), paths::LEDGER_OP, &bobs).await;
    assert_eq!(code(&body), "invalid_auth", "{body}");
    // an approval that lives two hours, an expired one, another network's
    let long = approved(
        &alice,
        &network,
        alice.address(),
        deposit.clone(),
        now(),
        Duration::from_secs(7200),
    );
    let (_, body) = post(&net.url(1), paths::LEDGER_OP, &long).await;
    assert_eq!(code(&body), "invalid_auth", "{body}");
    let past = now() - Duration::from_secs(700);
    let expired = approved(
        &alice,
        &network,
        alice.address(),
        deposit.clone(),
        past,
        ttl,
    );
    let (_, body) = post(&net.url(1), paths::LEDGER_OP, &expired).await;
    assert_eq!(code(&body), "auth_expired", "{body}");
    let other = approved(
        &alice,
        "lit:0000000000000000000000000000000000000000",
        alice.address(),
        deposit.clone(),
        now(),
        ttl,
    );
    let (_, body) = post(&net.url(1), paths::LEDGER_OP, &other).await;
    assert_eq!(code(&body), "invalid_auth", "{body}");
    let account = client.ledger_account(alice.address(), None).await.unwrap();
    assert_eq!(
        (account.balance.as_str(), account.unsettled.as_str()),
        ("500", "0")
    );

    // a refused operation still uses its approval: a withdrawal before the delay is over
    // cannot be sent again once it would pass
    client.request_withdraw(&alice, 200).await.unwrap();
    let withdraw = approved(
        &alice,
        &network,
        alice.address(),
        LedgerOp::Withdraw {},
        now(),
        ttl,
    );
    let (_, body) = post(&net.url(1), paths::LEDGER_OP, &withdraw).await;
    assert_eq!(code(&body), "not_permitted", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("withdrawal delay not over"),
        "{body}"
    );
    let (_, body) = post(&net.url(2), paths::LEDGER_OP, &withdraw).await;
    assert_eq!(code(&body), "nonce_replayed", "{body}");

    // delegation through the SDK, read back with the account
    client
        .delegate(&alice, bob.address(), 40, 3, 60)
        .await
        .unwrap();
    let bobs = client
        .ledger_account(bob.address(), Some(alice.address()))
        .await
        .unwrap();
    let d = bobs.delegation.unwrap();
    assert_eq!(
        (d.total_limit.as_str(), d.requests_per_period, d.period),
        ("40", 3, 60)
    );
    let info = client.ledger().await.unwrap();
    assert_eq!(info.status.backend, "embedded");
    assert_eq!(info.status.withdraw_delay, 600);
    assert_eq!(info.status.faucet.as_deref(), Some(thousand.as_str()));
}

/// Lit Actions are charged by what they use at each node of the group (a base price, each
/// millisecond, each billable host call), within the price the caller signed: a run that would
/// cost more is stopped at it and charged at most it.
#[tokio::test(flavor = "multi_thread")]
async fn actions_are_charged_by_their_usage_and_stopped_at_the_signed_price() {
    let mut net = start(500).await;
    // an action: 50 to start, 1 per millisecond, 20 per host call
    net.devnet()
        .payments_admin()
        .await
        .unwrap()
        .set_prices(&Prices([0, 0, 50, 1, 20]))
        .await
        .unwrap();
    let alice = Wallet::random();
    let ledger = funded(&mut net, &alice, 1_000_000, 100_000).await;
    let connect = |max_price: u128| {
        LitClient::connect_with(
            Bootstrap::NetworkFile(net.network_file()),
            ConnectOptions::devnet().with_max_price(max_price),
        )
    };
    let client = connect(5_000).await.unwrap();
    let pkp = client.mint_pkp(&alice).await.unwrap();
    let code = r#"
for (let i = 0; i < 3; i++) await Lit.Actions.pubkeyToTokenId({ publicKey });
Lit.Actions.setResponse({ response: "done" });
"#;
    let params = || {
        let mut p = serde_json::Map::new();
        p.insert("publicKey".into(), json!(hex::encode(&pkp.public_key.0)));
        p
    };
    // the nodes read the prices at their next settlement
    prices_read(&net, &[1, 2, 3, 4], 2, 50).await;
    // an anonymous caller signs no price: refused
    let anonymous = client
        .execute_js(lit_client::ExecuteJs::code(code).params(params()))
        .await
        .unwrap_err();
    assert!(
        anonymous.to_string().contains("payment_required"),
        "{anonymous}"
    );
    let before = ledger.account(alice.address()).await.unwrap().balance;
    let run = client
        .execute_js(
            lit_client::ExecuteJs::code(code)
                .params(params())
                .wallet(&alice),
        )
        .await
        .unwrap();
    assert_eq!(run.agreed_response().unwrap(), Some("done"));
    // each node of the group charged its own usage: 50 + its milliseconds + 3 calls
    let mut expected = 0;
    for usage in run.usage.values() {
        let calls: u32 = usage.host_calls.values().sum::<u32>() + usage.signatures + usage.fetches;
        assert_eq!(calls, 3, "{usage:?}");
        let ms = ((usage.duration_ms * 1000.0).floor() as u128).div_ceil(1000);
        expected += 50 + ms + 20 * 3;
    }
    eventually(&net, "the action's charges are settled", || async {
        before - ledger.account(alice.address()).await.unwrap().balance == expected
    })
    .await;

    // a signed maximum that does not pay for the start and one millisecond: refused before
    // running, nothing charged
    // (a run by alice under `max_price` that fails: its error's text)
    let refused = |max_price: u128, code: &'static str| {
        let (alice, params) = (&alice, params());
        let connecting = connect(max_price);
        async move {
            let run = lit_client::ExecuteJs::code(code)
                .params(params)
                .wallet(alice);
            connecting
                .await
                .unwrap()
                .execute_js(run)
                .await
                .unwrap_err()
                .to_string()
        }
    };
    let err = refused(50, code).await;
    assert!(err.contains("price_too_high"), "{err}");
    // a loop that never ends, with 50 + 300 signed: stopped after 300 ms at each node and
    // charged the 350 it paid for
    let settled_before = ledger.account(alice.address()).await.unwrap().balance;
    let text = refused(350, "while (true) {}").await;
    assert!(
        text.contains("price_too_high") && text.contains("time its caller paid for (300 ms)"),
        "{text}"
    );
    let group = client.threshold() as u128;
    eventually(&net, "the stopped runs are charged", || async {
        settled_before - ledger.account(alice.address()).await.unwrap().balance == 350 * group
    })
    .await;
    // host calls: 50 + 60 signed pays for three calls at most (or 60 ms): the fourth of ten
    // stops the run
    let many = "for (let i = 0; i < 10; i++) await Lit.Actions.pubkeyToTokenId({ publicKey });";
    let err = refused(50 + 40 + 20, many).await;
    assert!(err.contains("price_too_high"), "{err}");
}
