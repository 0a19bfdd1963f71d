//! Epochs on a staking contract, with real node processes, on the embedded chain and on the
//! Solidity contracts on anvil: operators join (5 → 7), leave (7 → 6) and a crashed node is
//! voted out (6 → 5); at every epoch the shares are reshared among the new set while the BLS
//! public key and every PKP address stay the same, so data encrypted at epoch 1 decrypts and a
//! PKP minted at epoch 1 signs at epoch 4 (a transaction anvil mines). Members that crash
//! during a handover, and handovers that cannot finish, are covered too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lit_api::v1::ToSign;
use lit_api::Bytes32;
use lit_client::{
    Bootstrap, ConnectOptions, Eip1559Transaction, EthTransaction, LitClient, Signer, Wallet,
};
use lit_node::chain::payments::Prices;
use lit_node::chain::staking::{EpochState, StakingParams};
use lit_node::devnet::{DevnetChain, DevnetStaking, LayoutOptions};
use lit_node::epoch::NodeKeys;
use lit_node::testnet::TestNet;
use support::net::{funded, https_client, libsecp_recover, prices_read, testnet, user_is};

const EPOCH_TIMEOUT: Duration = Duration::from_secs(180);

/// What each payer deposits when a network charges.
const DEPOSIT: u128 = 10_000_000;

/// The most a request may cost at one node in these tests (the networks that charge price a
/// decryption share 7 and a PKP signature share 11).
const MAX_PRICE: u128 = 100;

async fn client(net: &TestNet) -> LitClient {
    LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet().with_max_price(MAX_PRICE),
    )
    .await
    .unwrap_or_else(|e| panic!("{}", net.logs(&format!("connect: {e}"))))
}

/// What the client under load saw.
#[derive(Debug, Default)]
struct LoadReport {
    decrypted: u64,
    signed: u64,
    executed: u64,
    failures: Vec<String>,
    epoch_retries: u64,
    epochs_seen: std::collections::BTreeSet<u64>,
}

/// How the test steers the client under load: `stop` ends it; holding `between_rounds` for
/// writing waits until its round in flight is over and holds the next one.
struct LoadControl {
    stop: Arc<AtomicBool>,
    between_rounds: Arc<tokio::sync::RwLock<()>>,
}

/// One client that decrypts, signs with a PKP and runs an action in a loop until `stop`,
/// through every epoch change; a request that fails even after the SDK's one retry is a failure.
async fn load(
    network_file: std::path::PathBuf,
    alice: Wallet,
    encrypted: lit_client::EncryptedData,
    secret: Vec<u8>,
    owner: Wallet,
    pkp: lit_api::v1::PkpInfo,
    control: LoadControl,
) -> LoadReport {
    let LoadControl {
        stop,
        between_rounds,
    } = control;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(network_file),
        ConnectOptions::devnet().with_max_price(MAX_PRICE),
    )
    .await
    .unwrap();
    let mut report = LoadReport::default();
    let mut round = 0u8;
    while !stop.load(Ordering::SeqCst) {
        let _round = between_rounds.read().await;
        round = round.wrapping_add(1);
        match client.decrypt(&encrypted, &alice).await {
            Ok(plain) if plain == secret => report.decrypted += 1,
            Ok(_) => report.failures.push("decrypt: wrong plaintext".into()),
            Err(e) => report.failures.push(format!("decrypt: {e}")),
        }
        let digest = [round; 32];
        match client
            .pkp_sign(
                &pkp,
                ToSign::Digest(Bytes32(digest)),
                Signer::Wallet(&owner),
            )
            .await
        {
            Ok(sig) if libsecp_recover(&sig) == pkp.public_key.0 => report.signed += 1,
            Ok(_) => report.failures.push("sign: wrong key".into()),
            Err(e) => report.failures.push(format!("sign: {e}")),
        }
        let action = "Lit.Actions.setResponse({response: `round ${round}`})";
        let want = format!("round {round}");
        match client
            .execute_js(
                lit_client::ExecuteJs::code(action).param("round", serde_json::json!(round)),
            )
            .await
        {
            Ok(out) if out.agreed_response().ok().flatten() == Some(want.as_str()) => {
                report.executed += 1
            }
            Ok(out) => report
                .failures
                .push(format!("execute: {:?}", out.agreed_response())),
            Err(e) => report.failures.push(format!("execute: {e}")),
        }
        report.epochs_seen.insert(client.epoch());
    }
    report.epoch_retries = client.epoch_retries();
    report
}

/// A PKP of `owner`: on anvil minted by the owner's own transaction to the devnet's
/// `PkpRegistry` (the nodes read PKPs from the chain and refuse to mint), on the embedded chain
/// through the nodes.
async fn mint(
    net: &TestNet,
    client: &LitClient,
    anvil: &support::chain::Anvil,
    owner: &Wallet,
    on_anvil: bool,
) -> lit_api::v1::PkpInfo {
    if !on_anvil {
        return client.mint_pkp(owner).await.unwrap();
    }
    let refused = client.mint_pkp(owner).await.unwrap_err();
    assert!(refused.to_string().contains("PkpRegistry"), "{refused}");
    anvil.fund_account(owner.signing_key()).await;
    let record = lit_node::devnet::evm_record(net.dir()).unwrap().unwrap();
    let chain = lit_client::PkpChain::new(&record.rpc_url, &record.pkp_registry).unwrap();
    client.mint_pkp_on_chain(owner, &chain).await.unwrap()
}

/// The PKP signs `digest` for its owner, and libsecp256k1 recovers the PKP's key from it.
async fn signs_for_its_key(
    client: &LitClient,
    pkp: &lit_api::v1::PkpInfo,
    owner: &Wallet,
    digest: [u8; 32],
) {
    let sig = client
        .pkp_sign(pkp, ToSign::Digest(Bytes32(digest)), Signer::Wallet(owner))
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
}

/// Posts a signed broadcast envelope for session `[tag; 32]` from the stopped node whose data
/// folder is `data_dir` (party `party`), as that node's operator could, to the node at `url`;
/// returns the HTTP status.
async fn envelope_from(data_dir: &std::path::Path, party: u32, url: &str, tag: u8) -> u16 {
    let (store, identity) =
        lit_node::node::open_data_dir(data_dir, lit_node::config::AttestationMode::Simulated)
            .unwrap();
    drop(store);
    // over mutual TLS with the node's own certificate, as its operator could
    let tls = lit_api::tls::client_config(
        lit_api::tls::NodeKeyVerifier::any_node(),
        Some(&identity.tls_certificate().unwrap()),
    )
    .unwrap();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let msg = lit_node::net::peer::seal_envelope(
        &identity,
        lit_crypto::PartyId::new(party).unwrap(),
        Bytes32([tag; 32]),
        None,
        b"from a node that may have left",
        &mut rand_core::OsRng,
    )
    .unwrap();
    http.post(format!("{url}{}", lit_api::v1::paths::PEER_MESSAGE))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&msg).unwrap())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn next_epoch(net: &mut TestNet, epoch: u64) -> Vec<u32> {
    if let Err(e) = net.devnet().lock_next_epoch().await {
        panic!("{}", net.logs(&format!("lock: {e}")));
    }
    match net.devnet().wait_epoch(epoch, EPOCH_TIMEOUT).await {
        Ok(members) => members,
        Err(e) => panic!("{}", net.logs(&format!("epoch {epoch}: {e}"))),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn members_join_leave_and_are_voted_out_while_the_keys_stay_embedded_chain() {
    members_join_leave_and_are_voted_out(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn members_join_leave_and_are_voted_out_while_the_keys_stay_solidity_on_anvil() {
    members_join_leave_and_are_voted_out(true).await;
}

/// 5 → 7 → 6 → 5 under load, the staking contract on the embedded chain or (`on_anvil`) the
/// Solidity contracts on anvil; at epoch 4 the PKP of epoch 1 signs a transaction anvil mines.
async fn members_join_leave_and_are_voted_out(on_anvil: bool) {
    let anvil = support::evm::Anvil::start().await;
    let chain = match on_anvil {
        true => DevnetChain::Evm {
            rpc_url: anvil.url.clone(),
        },
        false => DevnetChain::Embedded,
    };
    let options = LayoutOptions {
        staking: Some(DevnetStaking {
            chain,
            // the members vote out one that has not answered for 4 s
            kick_after_ms: Some(4000),
            ..DevnetStaking::default()
        }),
        dkg_round_timeout_ms: Some(3000),
        ..LayoutOptions::default()
    };
    let mut net = testnet(5).options(options).start().await;
    assert_eq!(
        net.devnet()
            .wait_epoch(1, EPOCH_TIMEOUT)
            .await
            .unwrap()
            .len(),
        5
    );

    // epoch 1: data encrypted, a PKP minted and used
    let c1 = client(&net).await;
    assert_eq!((c1.epoch(), c1.threshold(), c1.nodes().len()), (1, 4, 5));
    let bls_key = c1.network_public_key();
    let alice = Wallet::random();
    let secret = b"written at epoch 1";
    let encrypted = c1.encrypt(&user_is(&alice.address()), secret).unwrap();
    assert_eq!(c1.decrypt(&encrypted, &alice).await.unwrap(), secret);
    let owner = Wallet::random();
    let pkp = mint(&net, &c1, &anvil, &owner, on_anvil).await;
    signs_for_its_key(&c1, &pkp, &owner, [0x11; 32]).await;

    // from here on the network charges a decryption share 7 and a PKP signature share 11 (actions
    // are free), paid from alice's and the owner's deposits
    net.devnet()
        .payments_admin()
        .await
        .unwrap()
        .set_prices(&Prices([7, 11, 0, 0, 0]))
        .await
        .unwrap();
    let mut ledgers = Vec::new();
    for wallet in [&alice, &owner] {
        let ledger = funded(&mut net, wallet, DEPOSIT, DEPOSIT).await;
        ledgers.push((wallet.address(), ledger));
    }
    prices_read(&net, &[1, 2, 3, 4, 5], 0, 7).await;

    // from here on a client decrypts, signs and runs actions without pause
    let stop = Arc::new(AtomicBool::new(false));
    let between_rounds = Arc::new(tokio::sync::RwLock::new(()));
    let loaded = tokio::spawn(load(
        net.network_file(),
        alice.clone(),
        encrypted.clone(),
        secret.to_vec(),
        owner.clone(),
        pkp.clone(),
        LoadControl {
            stop: stop.clone(),
            between_rounds: between_rounds.clone(),
        },
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // epoch 2: two operators stake and join (5 → 7)
    let six = net.devnet().add_node().await.unwrap();
    let seven = net.devnet().add_node().await.unwrap();
    assert_eq!((six, seven), (6, 7));
    let members = next_epoch(&mut net, 2).await;
    assert_eq!(members, [1, 2, 3, 4, 5, 6, 7]);

    // epoch 3: node 1 leaves (7 → 6)
    net.devnet().leave(1).await.unwrap();
    let members = next_epoch(&mut net, 3).await;
    assert_eq!(members, [2, 3, 4, 5, 6, 7]);
    // what node 1 earned as a member; out of the set, the ledger takes no charge of it
    let staker1 = net.devnet().layout().stakers[&1];
    let ledger_admin = net.devnet().payments_admin().await.unwrap();
    let earned1 = ledger_admin.rewards(staker1).await.unwrap();
    let log = net.log(1);
    assert!(log.contains("this node left the network"), "{log}");

    // epoch 4: node 6 crashes; the members vote it out on their own (T of 6 votes), and it loses
    // 10% of its stake
    // (between two rounds of the client: an action in flight on a node that crashes fails, as
    // it ran on part of its group and is not run again; the epoch changes happen mid-round)
    let paused = between_rounds.write().await;
    net.kill(6);
    drop(paused);
    // node 6 is still a member: node 2 takes a signed envelope from it (for a session it will
    // hold until one opens)
    let node2 = net.devnet().url(2).unwrap().to_string();
    let data6 = net.devnet().layout().data_dir(6);
    assert_eq!(envelope_from(&data6, 6, &node2, 0x06).await, 200);
    let admin = net.devnet().staking_admin().await.unwrap();
    let staker6 = net.devnet().layout().stakers[&6];
    let stake = admin.stake_of(staker6).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while admin.stake_of(staker6).await.unwrap() == stake {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            net.logs("the members did not vote node 6 out")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(admin.stake_of(staker6).await.unwrap(), stake * 9 / 10);
    // (the last voter logs its vote once the chain took it)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let voters: Vec<u32> = [2, 3, 4, 5, 7]
            .into_iter()
            .filter(|id| net.log(*id).contains("voted to kick node 6"))
            .collect();
        if voters.len() >= 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "voters {voters:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let members = next_epoch(&mut net, 4).await;
    assert_eq!(members, [2, 3, 4, 5, 7]);
    // the node voted out stays a peer for the grace period (requests of epoch 3 in flight
    // complete among epoch 3's members); then its envelopes are refused
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut tag = 0x16;
    while envelope_from(&data6, 6, &node2, tag).await != 403 {
        assert!(
            std::time::Instant::now() < deadline,
            "node 6 is still a peer of node 2"
        );
        tag += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let state = admin.network().await.unwrap();
    assert_eq!(
        (state.epoch, state.state, state.threshold),
        (4, EpochState::Active, 4)
    );

    // the client under load went through every epoch; no request failed (the SDK retried
    // those that met a new epoch once, transparently)
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let report = loaded.await.unwrap();
    eprintln!("under load: {report:?}");
    assert!(report.failures.is_empty(), "{report:?}");
    assert!(report.epochs_seen.contains(&4), "{report:?}");
    assert!(report.decrypted > 0 && report.signed > 0 && report.executed > 0);

    // the charges match the requests served: once every node has settled, what the two payers
    // paid is what the nodes were paid, and each request was served by at least T (4 here in
    // every epoch) and at most all 7 nodes, retries included: paid, or lost by a node that
    // crashed or left before it settled
    let mut last = u128::MAX;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let paid = loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut left = 0;
        for (who, ledger) in &ledgers {
            left += ledger.account(*who).await.unwrap().balance;
        }
        if left == last {
            break 2 * DEPOSIT - left;
        }
        last = left;
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            net.logs("never settled")
        );
    };
    let mut earned = std::collections::BTreeMap::new();
    for (id, staker) in net.devnet().layout().stakers.clone() {
        earned.insert(id, ledger_admin.rewards(staker).await.unwrap());
    }
    assert_eq!(earned.values().sum::<u128>(), paid, "{earned:?}");
    // what was served and is not paid: the debits node 6 had not settled when it crashed (still
    // in its file: it never came back) and those node 1 settled after it left (refused and
    // logged as lost)
    let debits6 = net.devnet().layout().data_dir(6).join("debits.sqlite");
    let lost6: u128 = rusqlite::Connection::open(&debits6)
        .unwrap()
        .prepare("SELECT amount FROM debits")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|a| a.unwrap().parse::<u128>().unwrap())
        .sum();
    let lost1: u128 = net
        .log(1)
        .lines()
        .filter_map(|l| {
            l.split(") are lost")
                .next()
                .filter(|_| l.contains(") are lost"))
        })
        .filter_map(|l| l.rsplit('(').next()?.parse::<u128>().ok())
        .sum();
    let served = paid + lost6 + lost1;
    let (d, s, r) = (
        report.decrypted as u128,
        report.signed as u128,
        report.epoch_retries as u128,
    );
    assert!(
        4 * (7 * d + 11 * s) <= served && served <= 7 * (7 * (d + r) + 11 * (s + r)),
        "{paid} paid, {lost6} lost by node 6 and {lost1} by node 1, for {report:?}"
    );
    // each member of the last epoch was paid, those that joined at epoch 2 too; node 1 kept
    // what it earned before it left and got nothing after
    for id in [2, 3, 4, 5, 7] {
        assert!(earned[&id] > 0, "node {id}: {earned:?}");
    }
    assert!(
        earned1 > 0 && earned[&1] == earned1,
        "{earned1} then {earned:?}"
    );

    // the same keys: what epoch 1 encrypted decrypts, the PKP signs for the same address
    let c4 = client(&net).await;
    assert_eq!((c4.epoch(), c4.threshold(), c4.node_count()), (4, 4, 5));
    assert_eq!(c4.network_public_key(), bls_key);
    // what `lit network` shows: the chain's view, as every member reports it
    let report = c4.network_status().await.unwrap();
    let parties =
        |m: &[lit_api::v1::MemberStatus]| m.iter().map(|v| v.party_id).collect::<Vec<_>>();
    assert_eq!((report.status.epoch, report.status.threshold), (4, 4));
    assert_eq!(parties(&report.status.current), [2, 3, 4, 5, 7]);
    assert_eq!(report.status.state, "active");
    assert!(
        report.serving.values().all(|e| *e == 4),
        "{:?}",
        report.serving
    );
    let stake = |p: u32| {
        report
            .status
            .current
            .iter()
            .find(|v| v.party_id == p)
            .map(|v| v.stake.clone())
    };
    assert_eq!(
        stake(2).unwrap(),
        admin.min_stake().await.unwrap().to_string()
    );
    assert_eq!(c4.decrypt(&encrypted, &alice).await.unwrap(), secret);
    signs_for_its_key(&c4, &pkp, &owner, [0x44; 32]).await;

    // the node that left erased every share it held after its grace period, and is no
    // longer a peer
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !net.log(1).contains("stopped serving and erased its shares") {
        assert!(std::time::Instant::now() < deadline, "{}", net.log(1));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    net.kill(1);
    let data1 = net.devnet().layout().data_dir(1);
    let (store, _) =
        lit_node::node::open_data_dir(&data1, lit_node::config::AttestationMode::Simulated)
            .unwrap();
    assert_eq!(NodeKeys::stored_epochs(&store).unwrap(), Vec::<u64>::new());
    drop(store);
    assert_eq!(envelope_from(&data1, 1, &node2, 0x01).await, 403);

    // the PKP minted at epoch 1 signs a transaction at epoch 4, and anvil mines it from the
    // PKP's address
    anvil.fund(&pkp.eth_address, "0xde0b6b3a7640000").await;
    let to = [0x44u8; 20];
    let tx = EthTransaction::Eip1559(Eip1559Transaction {
        chain_id: anvil.chain_id().await,
        nonce: 0,
        max_priority_fee_per_gas: 1_000_000_000,
        max_fee_per_gas: 20_000_000_000,
        gas_limit: 21_000,
        to: Some(to),
        value: 4444,
        data: vec![],
    });
    let (raw, _) = c4
        .pkp_sign_transaction(&pkp, &tx, Signer::Wallet(&owner))
        .await
        .unwrap();
    let receipt = anvil.send_raw(&raw).await;
    assert!(receipt.status(), "{receipt:?}");
    assert_eq!(receipt.from.to_checksum(None), pkp.eth_address);
}

/// The same life on the Solidity contracts on a real EVM node (anvil): the devnet deploys the
/// contracts, every node follows them with its own staker key (funded for gas), a node joins
/// (4 → 5), a member restarts and serves the epoch from its stored shares, a node leaves
/// (5 → 4), and the keys of epoch 1 decrypt and sign at epoch 3. Node 1, the first member a
/// joining node asks for the current public sharing, lies about it (same root keys, another
/// polynomial): the joining node takes the sharing only T members agree on.
#[tokio::test(flavor = "multi_thread")]
async fn epochs_on_the_solidity_contracts_on_anvil() {
    let anvil = support::evm::Anvil::start().await;
    let options = LayoutOptions {
        staking: Some(DevnetStaking {
            chain: DevnetChain::Evm {
                rpc_url: anvil.url.clone(),
            },
            ..DevnetStaking::default()
        }),
        dkg_round_timeout_ms: Some(3000),
        ..LayoutOptions::default()
    };
    let mut net = testnet(4)
        .options(options)
        .fault(1, "wrong-epoch-keys")
        .start()
        .await;
    let members = match net.devnet().wait_epoch(1, EPOCH_TIMEOUT).await {
        Ok(members) => members,
        Err(e) => panic!("{}", net.logs(&format!("epoch 1: {e}"))),
    };
    assert_eq!(members, [1, 2, 3, 4]);
    // the nodes' configurations name the contract on anvil, not a file
    let config = std::fs::read_to_string(net.devnet().layout().configs[&1].clone()).unwrap();
    assert!(
        config.contains("backend = \"evm\"") && config.contains(&anvil.url),
        "{config}"
    );

    let c1 = client(&net).await;
    assert_eq!((c1.epoch(), c1.threshold(), c1.nodes().len()), (1, 3, 4));
    let bls_key = c1.network_public_key();
    let alice = Wallet::random();
    let secret = b"written at epoch 1 on anvil";
    let encrypted = c1.encrypt(&user_is(&alice.address()), secret).unwrap();
    let owner = Wallet::random();
    let pkp = mint(&net, &c1, &anvil, &owner, true).await;
    signs_for_its_key(&c1, &pkp, &owner, [0x21; 32]).await;

    // node 1 serves another sharing of the same root keys than the other members
    let url =
        |net: &mut TestNet, id: u32| format!("{}/v1/epoch/keys", net.devnet().url(id).unwrap());
    let sharing = |url: String| async move {
        let body = https_client()
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        serde_json::from_slice::<lit_api::v1::EpochKeys>(&body)
            .unwrap()
            .bls_commitment
    };
    let (lie, truth) = (
        sharing(url(&mut net, 1)).await,
        sharing(url(&mut net, 2)).await,
    );
    assert_ne!(lie, truth);
    assert_eq!(sharing(url(&mut net, 3)).await, truth);

    // epoch 2: node 5 stakes and joins (4 → 5)
    assert_eq!(net.devnet().add_node().await.unwrap(), 5);
    assert_eq!(next_epoch(&mut net, 2).await, [1, 2, 3, 4, 5]);

    // a member restarts: it serves epoch 2 from its stored shares, no new key generation
    net.restart(3).await;
    let members = net.devnet().wait_epoch(2, EPOCH_TIMEOUT).await.unwrap();
    assert_eq!(members, [1, 2, 3, 4, 5]);
    let log = net.log(3);
    assert!(log.contains("serving without a new DKG"), "{log}");

    // epoch 3: node 1 leaves (5 → 4)
    net.devnet().leave(1).await.unwrap();
    assert_eq!(next_epoch(&mut net, 3).await, [2, 3, 4, 5]);
    let admin = net.devnet().staking_admin().await.unwrap();
    let state = admin.network().await.unwrap();
    assert_eq!(
        (state.epoch, state.state, state.threshold),
        (3, EpochState::Active, 3)
    );

    let c3 = client(&net).await;
    assert_eq!((c3.epoch(), c3.threshold(), c3.node_count()), (3, 3, 4));
    assert_eq!(c3.network_public_key(), bls_key);
    assert_eq!(c3.decrypt(&encrypted, &alice).await.unwrap(), secret);
    signs_for_its_key(&c3, &pkp, &owner, [0x23; 32]).await;
}

/// A client of the network at `epoch`, once the nodes it reaches agree on it (members that
/// are down or have no shares do not answer the handshake).
async fn client_at(net: &TestNet, epoch: u64) -> LitClient {
    let deadline = std::time::Instant::now() + EPOCH_TIMEOUT;
    loop {
        match LitClient::connect_with(
            Bootstrap::NetworkFile(net.network_file()),
            ConnectOptions::devnet(),
        )
        .await
        {
            Ok(c) if c.epoch() == epoch => return c,
            Ok(c) => assert!(
                std::time::Instant::now() < deadline,
                "{}",
                net.logs(&format!("the client sees epoch {}", c.epoch()))
            ),
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "{}",
                net.logs(&format!("connect: {e}"))
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the chain is at `epoch` (whether or not every member serves it).
async fn chain_at(net: &mut TestNet, epoch: u64) {
    let admin = net.devnet().staking_admin().await.unwrap();
    let deadline = std::time::Instant::now() + EPOCH_TIMEOUT;
    while admin.network().await.unwrap().epoch < epoch {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            net.logs(&format!("the chain did not reach epoch {epoch}"))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A member that is down during a handover (it crashed): the others reshare without it and the
/// epoch advances; back up, it is a member without shares of the epoch and says so, and the next
/// handover gives it shares again (it receives as a node joining would). Data and PKPs of
/// epoch 1 work throughout.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_down_during_a_handover_gets_its_shares_at_the_next_one() {
    let options = LayoutOptions {
        staking: Some(DevnetStaking::default()),
        dkg_round_timeout_ms: Some(2000),
        ..LayoutOptions::default()
    };
    let mut net = testnet(5).options(options).start().await;
    net.devnet().wait_epoch(1, EPOCH_TIMEOUT).await.unwrap();
    let c1 = client(&net).await;
    let alice = Wallet::random();
    let secret = b"written before the crash";
    let encrypted = c1.encrypt(&user_is(&alice.address()), secret).unwrap();
    let owner = Wallet::random();
    let pkp = c1.mint_pkp(&owner).await.unwrap();

    // node 2 crashes; node 6 joins; the handover to epoch 2 runs among the other five
    net.kill(2);
    assert_eq!(net.devnet().add_node().await.unwrap(), 6);
    net.devnet().lock_next_epoch().await.unwrap();
    chain_at(&mut net, 2).await;
    let c2 = client_at(&net, 2).await;
    assert_eq!((c2.epoch(), c2.threshold(), c2.node_count()), (2, 4, 6));
    assert_eq!(c2.decrypt(&encrypted, &alice).await.unwrap(), secret);
    signs_for_its_key(&c2, &pkp, &owner, [0x52; 32]).await;

    // node 2 comes back: a member of epoch 2 without its shares
    net.devnet().restart(2).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !net.log(2).contains("holds no shares of it") {
        assert!(std::time::Instant::now() < deadline, "{}", net.log(2));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // the next handover gives it shares: every member of epoch 3 serves, node 2 included
    let members = next_epoch(&mut net, 3).await;
    assert_eq!(members, [1, 2, 3, 4, 5, 6]);
    let c3 = client(&net).await;
    assert_eq!(c3.network_public_key(), c1.network_public_key());
    assert_eq!(c3.decrypt(&encrypted, &alice).await.unwrap(), secret);
    signs_for_its_key(&c3, &pkp, &owner, [0x53; 32]).await;
}

/// A handover that cannot reach the next threshold (three of the four joining nodes are down, so
/// at most four of the seven receivers can signal, and five must) is abandoned after the
/// contract's reshare timeout while the current set keeps serving epoch 1; the next lock, with
/// the joining nodes back, hands over to epoch 2 with the same keys.
#[tokio::test(flavor = "multi_thread")]
async fn a_handover_that_cannot_finish_is_abandoned_and_the_next_one_succeeds() {
    let staking = DevnetStaking::default();
    let options = LayoutOptions {
        staking: Some(DevnetStaking {
            params: StakingParams {
                reshare_timeout: 8,
                ..staking.params
            },
            ..staking
        }),
        dkg_round_timeout_ms: Some(2000),
        ..LayoutOptions::default()
    };
    let mut net = testnet(4).options(options).start().await;
    net.devnet().wait_epoch(1, EPOCH_TIMEOUT).await.unwrap();
    let c1 = client(&net).await;
    let alice = Wallet::random();
    let secret = b"kept through an abandoned handover";
    let encrypted = c1.encrypt(&user_is(&alice.address()), secret).unwrap();
    let owner = Wallet::random();
    let pkp = c1.mint_pkp(&owner).await.unwrap();

    for id in [5, 6, 7] {
        assert_eq!(net.devnet().add_node().await.unwrap(), id);
    }
    for id in [5, 6, 7] {
        net.kill(id);
    }
    let admin = net.devnet().staking_admin().await.unwrap();
    net.devnet().lock_next_epoch().await.unwrap();
    let locked = admin.network().await.unwrap();
    assert_eq!(
        (locked.state, locked.next.len(), locked.next_threshold),
        (EpochState::Locked, 7, 5)
    );

    // the nodes abandon it after the timeout; epoch 1 serves all along
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = admin.network().await.unwrap();
        if state.state == EpochState::Active {
            assert_eq!(state.epoch, 1);
            break;
        }
        assert_eq!(c1.decrypt(&encrypted, &alice).await.unwrap(), secret);
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            net.logs("the handover was not abandoned")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        (1..=4).any(|id| net.log(id).contains("abandoned the handover")),
        "{}",
        net.logs("no node says it abandoned the handover")
    );
    assert_eq!(c1.decrypt(&encrypted, &alice).await.unwrap(), secret);
    signs_for_its_key(&c1, &pkp, &owner, [0x61; 32]).await;

    // the joining nodes come back; the next lock hands over
    for id in [5, 6, 7] {
        net.devnet().restart(id).unwrap();
    }
    let members = next_epoch(&mut net, 2).await;
    assert_eq!(members, [1, 2, 3, 4, 5, 6, 7]);
    let c2 = client(&net).await;
    assert_eq!((c2.epoch(), c2.threshold()), (2, 5));
    assert_eq!(c2.network_public_key(), c1.network_public_key());
    assert_eq!(c2.decrypt(&encrypted, &alice).await.unwrap(), secret);
    signs_for_its_key(&c2, &pkp, &owner, [0x62; 32]).await;
}
