//! Epoch changes from the client's side, against fake nodes on loopback that answer like nodes
//! do (handshake with simulated attestation, decryption shares, `wrong_epoch` for another
//! epoch) and whose epoch, members and key shares the test changes at will: requests follow
//! the network into its next epoch (one handshake and one retry), members that joined are
//! found, members that left are dropped, nodes switching one after the other are waited for,
//! and a "next epoch" under other keys is refused. Then `GET /v1/network` through
//! `LitClient::network_status` and `lit network`.
//!
//! The same scenarios against real `lit-node` processes whose membership changes through the
//! staking contract belong with the node's tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lit_api::network::NetworkNode;
use lit_api::v1::{
    encryption_share_aad, paths, Attestation, AttestationKind, EncryptionSignRequest,
    EncryptionSignResponse, HandshakeRequest, HandshakeResponse, MemberStatus, NetworkKeys,
    NetworkStatus, NodeIdentity, SealedBox, ENCRYPTION_SHARE_SEAL_INFO,
};
use lit_api::{ApiError, Bytes, Bytes32, ErrorCode, ErrorEnvelope, API_VERSION};
use lit_attest::{Attester, Binding, Nonce, SimulatedAttester};
use lit_client::{
    Bootstrap, ClientError, ConnectOptions, EncryptedData, LitClient, NodeFailureReason, Policy,
    Wallet,
};
use lit_crypto::bls::{deal_key_with_trusted_dealer, KeyShare, PublicKeySet, SecretKey};
use lit_crypto::identity::AccessControlIdentity;
use lit_crypto::seal::SealPublicKey;
use lit_crypto::PartyId;
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore};
use serde_json::json;

/// A seeded RNG (`LIT_TEST_SEED=<u64>` replays a run; the seed is printed).
fn rng(label: &str) -> ChaCha20Rng {
    lit_crypto::testing::seeded_rng(label, OsRng.next_u64()).0
}

/// One epoch of the fake network: its number, threshold, members (listed in handshakes when
/// `listed`) and the key shares of its sharing.
struct Epoch {
    number: u64,
    set: PublicKeySet,
    shares: BTreeMap<u32, KeyShare>,
    members: Vec<NetworkNode>,
    listed: bool,
    root: Vec<u8>,
}

/// A fake node: its keys, the epoch it serves (none: `not_ready`), its handshake count.
struct FakeNode {
    party: u32,
    url: String,
    identity: [u8; 32],
    seal: [u8; 32],
    attester: SimulatedAttester,
    serving: Mutex<Option<Arc<Epoch>>>,
    handshakes: AtomicU64,
    /// What it answers to `GET /v1/network` (none: `not_found`).
    status: Mutex<Option<NetworkStatus>>,
}

impl FakeNode {
    fn entry(&self) -> NetworkNode {
        NetworkNode {
            party_id: self.party,
            url: self.url.clone(),
            identity_key: Bytes32(self.identity),
            seal_key: Bytes32(self.seal),
            dkg_key: Bytes(vec![self.party as u8; 33]),
        }
    }

    fn epoch(&self) -> Option<Arc<Epoch>> {
        self.serving.lock().unwrap().clone()
    }
}

fn refuse(code: ErrorCode, message: &str) -> Response {
    let status = StatusCode::from_u16(code.http_status()).unwrap();
    let envelope = ErrorEnvelope {
        error: ApiError::new(code, message),
    };
    (status, Json(envelope)).into_response()
}

async fn handshake(
    State(node): State<Arc<FakeNode>>,
    Json(req): Json<HandshakeRequest>,
) -> Response {
    node.handshakes.fetch_add(1, Ordering::SeqCst);
    let Some(epoch) = node.epoch() else {
        return refuse(ErrorCode::NotReady, "no keys");
    };
    let mut response = HandshakeResponse {
        api_version: API_VERSION,
        node: NodeIdentity {
            party_id: node.party,
            url: node.url.clone(),
            identity_key: Bytes(node.identity.to_vec()),
            seal_key: Bytes32(node.seal),
        },
        epoch: epoch.number,
        threshold: epoch.set.threshold() as u32,
        node_count: epoch.shares.len() as u32,
        network_keys: NetworkKeys {
            bls: Bytes(epoch.set.public_key().to_bytes().to_vec()),
            ecdsa: Bytes(epoch.root.clone()),
            bls_key_set: Bytes(epoch.set.to_bytes()),
        },
        domain: "fake.lit".into(),
        attestation: Attestation {
            kind: AttestationKind::Simulated,
            evidence: Bytes(Vec::new()),
        },
        members: if epoch.listed {
            epoch.members.clone()
        } else {
            Vec::new()
        },
    };
    let binding = Binding {
        context: response.attested_digest().to_vec(),
        ..Binding::new(&node.identity, Nonce(req.challenge.0), epoch.number)
    };
    let evidence = node.attester.attest(&binding.report_data()).unwrap();
    response.attestation.evidence = Bytes(evidence.to_json().into_bytes());
    Json(response).into_response()
}

async fn network_status(State(node): State<Arc<FakeNode>>) -> Response {
    match node.status.lock().unwrap().clone() {
        Some(status) => Json(status).into_response(),
        None => refuse(ErrorCode::NotFound, "no chain"),
    }
}

async fn encryption_sign(
    State(node): State<Arc<FakeNode>>,
    Json(req): Json<EncryptionSignRequest>,
) -> Response {
    let Some(epoch) = node.epoch() else {
        return refuse(ErrorCode::NotReady, "no keys");
    };
    if req.epoch != epoch.number {
        return refuse(
            ErrorCode::WrongEpoch,
            &format!("the current epoch is {}", epoch.number),
        );
    }
    let identity = AccessControlIdentity::for_conditions(
        &req.access_control_conditions,
        req.data_to_encrypt_hash.0,
    )
    .unwrap();
    let share = epoch.shares[&node.party].sign(&identity.to_bytes());
    let aad = encryption_share_aad(node.party, epoch.number, &identity.to_bytes());
    let sealed = SealPublicKey::from_bytes(&req.client_public_key.0)
        .unwrap()
        .seal(
            ENCRYPTION_SHARE_SEAL_INFO,
            &aad,
            &share.to_bytes(),
            &mut OsRng,
        )
        .unwrap();
    Json(EncryptionSignResponse {
        party_id: node.party,
        epoch: epoch.number,
        share: SealedBox {
            enc: Bytes(sealed.enc),
            ciphertext: Bytes(sealed.ciphertext),
        },
    })
    .into_response()
}

/// Fake nodes 1..=n on loopback, serving nothing until an epoch is given to them.
struct FakeNet {
    nodes: BTreeMap<u32, Arc<FakeNode>>,
    secret: SecretKey,
    root: Vec<u8>,
}

impl FakeNet {
    async fn start(n: u32) -> FakeNet {
        let mut rng = rng("epochs");
        let mut nodes = BTreeMap::new();
        for party in 1..=n {
            let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .unwrap();
            let url = format!("https://{}", listener.local_addr().unwrap());
            // a real ed25519 identity: the fake node serves TLS with its certificate, as nodes do
            let mut seed = [0u8; 32];
            let mut seal = [0u8; 32];
            rng.fill_bytes(&mut seed);
            rng.fill_bytes(&mut seal);
            let identity = ed25519_dalek::SigningKey::from_bytes(&seed)
                .verifying_key()
                .to_bytes();
            let certificate = lit_api::tls::NodeCertificate::new(&seed, &identity).unwrap();
            let tls = Arc::new(lit_api::tls::server_config(&certificate).unwrap());
            let node = Arc::new(FakeNode {
                party,
                url,
                identity,
                seal,
                attester: SimulatedAttester::new(FAKE_MEASUREMENT),
                serving: Mutex::new(None),
                handshakes: AtomicU64::new(0),
                status: Mutex::new(None),
            });
            let router = Router::new()
                .route(paths::HANDSHAKE, post(handshake))
                .route(paths::ENCRYPTION_SIGN, post(encryption_sign))
                .route(paths::NETWORK_STATUS, get(network_status))
                .with_state(node.clone());
            tokio::spawn(lit_node::https::serve(
                router,
                listener,
                tls,
                std::future::pending(),
            ));
            nodes.insert(party, node);
        }
        FakeNet {
            nodes,
            secret: SecretKey::random(&mut rng),
            root: k256::SecretKey::random(&mut rng)
                .public_key()
                .to_sec1_bytes()
                .to_vec(),
        }
    }

    /// Epoch `number`: the network's key reshared `t`-of-`members` (`listed`: handshakes list
    /// the members, as on a chain network).
    fn epoch(&self, number: u64, t: usize, members: &[u32], listed: bool) -> Arc<Epoch> {
        self.epoch_of(&self.secret, number, t, members, listed)
    }

    fn epoch_of(
        &self,
        secret: &SecretKey,
        number: u64,
        t: usize,
        members: &[u32],
        listed: bool,
    ) -> Arc<Epoch> {
        let ids: Vec<PartyId> = members.iter().map(|p| PartyId::new(*p).unwrap()).collect();
        let (set, shares) =
            deal_key_with_trusted_dealer(secret, t, &ids, &mut rng("reshare")).unwrap();
        Arc::new(Epoch {
            number,
            set,
            shares: shares.into_iter().map(|s| (s.id().get(), s)).collect(),
            members: members.iter().map(|p| self.nodes[p].entry()).collect(),
            listed,
            root: self.root.clone(),
        })
    }

    /// Node `party` serves `epoch` from now on (`None`: it answers `not_ready`).
    fn serve(&self, party: u32, epoch: Option<&Arc<Epoch>>) {
        *self.nodes[&party].serving.lock().unwrap() = epoch.cloned();
    }

    /// Node `party` answers `status` to `GET /v1/network`.
    fn report(&self, party: u32, status: &NetworkStatus) {
        *self.nodes[&party].status.lock().unwrap() = Some(status.clone());
    }

    /// A network file naming `parties` (`"name": "fake"`: the domain `fake.lit` the nodes
    /// report).
    fn network_file(&self, dir: &std::path::Path, parties: &[u32], t: u32) -> std::path::PathBuf {
        let file = lit_api::network::NetworkFile {
            version: 1,
            name: "fake".into(),
            domain: None,
            threshold: t,
            attestation: lit_api::network::AttestationMode::Simulated,
            releases: Some(lit_api::network::ReleaseSource::Listed {
                releases: vec![lit_client::Release::new(FAKE_MEASUREMENT)],
            }),
            nodes: parties.iter().map(|p| self.nodes[p].entry()).collect(),
        };
        let path = dir.join("network.json");
        std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
        path
    }

    fn url(&self, party: u32) -> String {
        self.nodes[&party].url.clone()
    }

    fn handshakes(&self, party: u32) -> u64 {
        self.nodes[&party].handshakes.load(Ordering::SeqCst)
    }

    async fn connect(&self, bootstrap: &[u32]) -> Result<LitClient, ClientError> {
        let urls = bootstrap.iter().map(|p| self.url(*p)).collect();
        LitClient::connect_with(Bootstrap::Urls(urls), options()).await
    }
}

/// The software the fake nodes claim to run: the one release their network approves.
const FAKE_MEASUREMENT: [u8; 48] = [7; 48];

fn options() -> ConnectOptions {
    ConnectOptions::devnet()
        .with_policy(Policy::default().with_releases([lit_client::Release::new(FAKE_MEASUREMENT)]))
        .with_request_timeout(Duration::from_secs(5))
        .with_epoch_settle(Duration::from_secs(5))
}

fn secret_for(wallet: &Wallet, client: &LitClient) -> EncryptedData {
    let conditions = json!([{"conditionType": "evmBasic", "contractAddress": "",
        "standardContractType": "", "chain": "ethereum", "method": "",
        "parameters": [":userAddress"],
        "returnValueTest": {"comparator": "=", "value": wallet.address().to_checksum()}}]);
    client.encrypt(&conditions, b"across epochs").unwrap()
}

fn parties(client: &LitClient) -> Vec<u32> {
    let mut ids: Vec<u32> = client.nodes().iter().map(|n| n.party_id).collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn requests_follow_the_network_into_its_next_epoch_with_new_members() {
    let net = FakeNet::start(4).await;
    let first = net.epoch(1, 2, &[1, 2, 3], true);
    for p in [1, 2, 3] {
        net.serve(p, Some(&first));
    }
    // the bootstrap knows nodes 1-3; node 4 has not joined yet
    let client = net.connect(&[1, 2, 3]).await.unwrap();
    assert_eq!((client.epoch(), parties(&client)), (1, vec![1, 2, 3]));
    let members: Vec<u32> = client.members().iter().map(|m| m.party_id).collect();
    assert_eq!(members, [1, 2, 3]);
    let alice = Wallet::random();
    let data = secret_for(&alice, &client);
    assert_eq!(
        client.decrypt(&data, &alice).await.unwrap(),
        b"across epochs"
    );
    assert_eq!(client.epoch_retries(), 0);

    // epoch 2: node 1 left (it still answers, for epoch 1), node 4 joined; the key is
    // reshared among 2, 3 and 4
    let second = net.epoch(2, 2, &[2, 3, 4], true);
    for p in [2, 3, 4] {
        net.serve(p, Some(&second));
    }
    assert_eq!(
        client.decrypt(&data, &alice).await.unwrap(),
        b"across epochs"
    );
    assert_eq!(client.epoch_retries(), 1);
    assert_eq!((client.epoch(), parties(&client)), (2, vec![2, 3, 4]));
    let left = client.handshake_failures();
    assert!(
        left.iter().any(|f| f.party_id == Some(1)
            && f.reason
                == NodeFailureReason::NotMember {
                    epoch: 2,
                    serving: 1
                }),
        "{left:?}"
    );
    // the next request needs no retry
    assert_eq!(
        client.decrypt(&data, &alice).await.unwrap(),
        b"across epochs"
    );
    assert_eq!(client.epoch_retries(), 1);

    // a new client bootstrapped from the old list finds node 4 and leaves node 1 out, even
    // when node 1 is gone altogether
    let fresh = net.connect(&[1, 2]).await.unwrap();
    assert_eq!((fresh.epoch(), parties(&fresh)), (2, vec![2, 3, 4]));
    net.serve(1, None);
    let fresh = net.connect(&[1, 2, 3]).await.unwrap();
    assert_eq!((fresh.epoch(), parties(&fresh)), (2, vec![2, 3, 4]));
    assert_eq!(
        fresh.decrypt(&data, &alice).await.unwrap(),
        b"across epochs"
    );
    assert_eq!(fresh.epoch_retries(), 0);
}

#[tokio::test]
async fn requests_failing_together_handshake_once_and_each_retry_once() {
    let net = FakeNet::start(3).await;
    let first = net.epoch(1, 2, &[1, 2, 3], false);
    for p in [1, 2, 3] {
        net.serve(p, Some(&first));
    }
    let client = Arc::new(net.connect(&[1, 2, 3]).await.unwrap());
    let alice = Arc::new(Wallet::random());
    let data = Arc::new(secret_for(&alice, &client));
    let before = net.handshakes(1);
    // a static network (no member list) moves to epoch 2 with the same members
    let second = net.epoch(2, 2, &[1, 2, 3], false);
    for p in [1, 2, 3] {
        net.serve(p, Some(&second));
    }
    let requests: Vec<_> = (0..4)
        .map(|_| {
            let (client, alice, data) = (client.clone(), alice.clone(), data.clone());
            tokio::spawn(async move { client.decrypt(&data, &alice).await })
        })
        .collect();
    for r in requests {
        assert_eq!(r.await.unwrap().unwrap(), b"across epochs");
    }
    assert_eq!(client.epoch(), 2);
    assert_eq!(client.epoch_retries(), 4);
    assert_eq!(net.handshakes(1) - before, 1, "one handshake for all four");
    // refresh by hand still works (and changes nothing here)
    client.refresh().await.unwrap();
    assert_eq!(client.epoch(), 2);
}

#[tokio::test]
async fn the_client_waits_for_nodes_that_switch_epochs_one_after_the_other() {
    let net = Arc::new(FakeNet::start(3).await);
    let first = net.epoch(1, 2, &[1, 2, 3], true);
    for p in [1, 2, 3] {
        net.serve(p, Some(&first));
    }
    let client = net.connect(&[1, 2, 3]).await.unwrap();
    let alice = Wallet::random();
    let data = secret_for(&alice, &client);
    // nodes 1 and 2 switch now, node 3 a little later: meanwhile they disagree
    let second = net.epoch(2, 2, &[1, 2, 3], true);
    net.serve(1, Some(&second));
    net.serve(2, Some(&second));
    let late = {
        let (net, second) = (net.clone(), second.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            net.serve(3, Some(&second));
        })
    };
    assert_eq!(
        client.decrypt(&data, &alice).await.unwrap(),
        b"across epochs"
    );
    late.await.unwrap();
    assert_eq!((client.epoch(), client.epoch_retries()), (2, 1));
    // a client that does not wait gets the disagreement
    let impatient = LitClient::connect_with(
        Bootstrap::Urls(vec![net.url(1), net.url(2), net.url(3)]),
        options().with_epoch_settle(Duration::ZERO),
    )
    .await
    .unwrap();
    // nodes 1 and 2 move on to epoch 3, node 3 stays behind
    let third = net.epoch(3, 2, &[1, 2, 3], true);
    net.serve(1, Some(&third));
    net.serve(2, Some(&third));
    let err = impatient.decrypt(&data, &alice).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Disagreement { what: "epoch", .. }),
        "{err}"
    );
    assert_eq!((impatient.epoch(), impatient.epoch_retries()), (2, 0));
}

#[tokio::test]
async fn a_next_epoch_under_other_keys_is_refused_not_followed() {
    let net = FakeNet::start(3).await;
    let first = net.epoch(1, 2, &[1, 2, 3], true);
    for p in [1, 2, 3] {
        net.serve(p, Some(&first));
    }
    let client = net.connect(&[1, 2, 3]).await.unwrap();
    let alice = Wallet::random();
    let data = secret_for(&alice, &client);
    let key = client.network_public_key();
    // "epoch 2" of another key: another network behind the same addresses
    let other = net.epoch_of(
        &SecretKey::random(&mut rng("other")),
        2,
        2,
        &[1, 2, 3],
        true,
    );
    for p in [1, 2, 3] {
        net.serve(p, Some(&other));
    }
    let err = client.decrypt(&data, &alice).await.unwrap_err();
    match &err {
        ClientError::Disagreement { what, detail } => {
            assert_eq!(*what, "network keys");
            assert!(detail.contains("another network"), "{detail}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(client.epoch_retries(), 0);
    // the client stays on what it knew
    assert_eq!((client.epoch(), client.network_public_key()), (1, key));
    assert!(client.refresh().await.is_err());
    assert_eq!(client.epoch(), 1);
}

/// Runs `lit ARGS` (without blocking the fake nodes' runtime); returns success, stdout, stderr.
async fn lit(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lit"))
        .args(args)
        .env_remove("LIT_NETWORK")
        .env_remove("LIT_WALLET")
        .env_remove("LIT_POLICY")
        .env("LIT_DEVNET", "true")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn the_network_status_is_what_the_nodes_agree_on() {
    let net = FakeNet::start(4).await;
    let first = net.epoch(1, 2, &[1, 2, 3], true);
    for p in [1, 2, 3] {
        net.serve(p, Some(&first));
    }
    let member = |p: u32, tokens: u64| MemberStatus {
        party_id: p,
        url: net.url(p),
        staker: format!("0x{p:040x}"),
        stake: format!("{tokens}000000000000000000"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let status = NetworkStatus {
        epoch: 1,
        serving_epoch: 1,
        state: "active".into(),
        threshold: 2,
        next_threshold: 3,
        epoch_start: now - 600,
        epoch_length: 3600,
        current: vec![member(1, 1000), member(2, 1500), member(3, 1000)],
        next: vec![
            member(1, 1000),
            member(2, 1500),
            member(3, 1000),
            member(4, 32),
        ],
    };
    net.report(1, &status);
    net.report(2, &status);
    // node 3 has not switched to the chain's epoch yet
    net.report(
        3,
        &NetworkStatus {
            serving_epoch: 0,
            ..status.clone()
        },
    );
    let client = net.connect(&[1, 2, 3]).await.unwrap();
    let report = client.network_status().await.unwrap();
    assert_eq!(report.status.current, status.current);
    assert_eq!(report.status.next, status.next);
    assert_eq!(report.serving_other_epoch(), [(3, 0)]);
    assert_eq!(report.epoch_end(), now + 3000);

    // the command line
    let dir = tempfile::tempdir().unwrap();
    let file = net.network_file(dir.path(), &[1, 2, 3], 2);
    let file = file.to_str().unwrap();
    let (ok, stdout, stderr) = lit(&["--network", file, "--json", "network"]).await;
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (v["epoch"].as_u64(), v["threshold"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(v["current"][1]["stakeTokens"], "1500.0");
    assert_eq!(v["next"][3]["stakeTokens"], "32.0");
    assert_eq!(v["next"][3]["stake"], "32000000000000000000");
    assert_eq!(v["nextThreshold"], 3);
    assert_eq!(v["servingOtherEpoch"], json!([{"partyId": 3, "epoch": 0}]));
    assert_eq!(v["epochEnd"], now + 3000);
    let (ok, stdout, stderr) = lit(&["--network", file, "network"]).await;
    assert!(ok, "{stderr}");
    for expected in [
        "epoch 1 (active), threshold 2 of 3",
        "node 3 serves no epoch yet",
        "1500.0",
        "next set: threshold 3 of 4",
        &net.url(4),
        "ends",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in\n{stdout}");
    }

    // node 2 reads another stake for the newcomer: a disagreement naming it
    let mut other = status.clone();
    other.next[3].stake = "1".into();
    net.report(2, &other);
    match client.network_status().await.unwrap_err() {
        ClientError::Disagreement { what, detail } => {
            assert_eq!(what, "next set");
            assert!(
                detail.contains(&format!("from nodes 2 ({})", net.url(2))),
                "{detail}"
            );
        }
        other => panic!("{other}"),
    }
    let (ok, _, stderr) = lit(&["--network", file, "network"]).await;
    assert!(
        !ok && stderr.contains("nodes disagree about the next set") && stderr.contains(&net.url(2)),
        "{stderr}"
    );
    // fewer than T nodes know the chain (a static network's nodes do not serve it)
    *net.nodes[&1].status.lock().unwrap() = None;
    *net.nodes[&2].status.lock().unwrap() = None;
    match client.network_status().await.unwrap_err() {
        ClientError::NodesFailed { failures } => assert_eq!(failures.len(), 2),
        other => panic!("{other}"),
    }
}
