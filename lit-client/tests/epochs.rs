//! Epoch changes from the client's side, against fake nodes on loopback that answer like nodes
//! do (handshake with simulated attestation, decryption shares, `wrong_epoch` for another
//! epoch) and whose epoch, members and key shares the test changes at will: requests follow
//! the network into its next epoch (one handshake and one retry), members that joined are
//! found, members that left are dropped, nodes switching one after the other are waited for,
//! and a "next epoch" under other keys is refused.
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
use axum::routing::post;
use axum::{Json, Router};
use lit_api::network::NetworkNode;
use lit_api::v1::{
    encryption_share_aad, paths, Attestation, AttestationKind, EncryptionSignRequest,
    EncryptionSignResponse, HandshakeRequest, HandshakeResponse, NetworkKeys, NodeIdentity,
    SealedBox, ENCRYPTION_SHARE_SEAL_INFO,
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
}

impl FakeNode {
    fn entry(&self) -> NetworkNode {
        NetworkNode {
            party_id: self.party,
            url: self.url.clone(),
            identity_key: Bytes32(self.identity),
            seal_key: Bytes32(self.seal),
            dkg_key: Bytes(vec![2; 33]),
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
    let binding = Binding::new(&node.identity, Nonce(req.challenge.0), epoch.number);
    let evidence = node.attester.attest(&binding.report_data()).unwrap();
    Json(HandshakeResponse {
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
            evidence: Bytes(evidence.to_json().into_bytes()),
        },
        members: if epoch.listed {
            epoch.members.clone()
        } else {
            Vec::new()
        },
    })
    .into_response()
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
            let url = format!("http://{}", listener.local_addr().unwrap());
            let mut identity = [0u8; 32];
            let mut seal = [0u8; 32];
            rng.fill_bytes(&mut identity);
            rng.fill_bytes(&mut seal);
            let node = Arc::new(FakeNode {
                party,
                url,
                identity,
                seal,
                attester: SimulatedAttester::new([7; 48]),
                serving: Mutex::new(None),
                handshakes: AtomicU64::new(0),
            });
            let router = Router::new()
                .route(paths::HANDSHAKE, post(handshake))
                .route(paths::ENCRYPTION_SIGN, post(encryption_sign))
                .with_state(node.clone());
            tokio::spawn(async move { axum::serve(listener, router).await });
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

fn options() -> ConnectOptions {
    ConnectOptions::default()
        .with_policy(Policy::development())
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
