//! The client over HTTP against in-process test nodes on loopback.
//!
//! The real node (`lit-node`) is not a dependency of the client; these test nodes implement the
//! two endpoints with the real cryptography the protocol prescribes (simulated SEV-SNP evidence
//! bound to the identity key, the challenge and the epoch; trusted-dealer BLS key shares;
//! HPKE-sealed shares; EIP-191 auth signature recovery; refusal of replayed client keys), and
//! can be told to misbehave. End-to-end tests against real `lit-node` processes live with the
//! node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use lit_api::network::{AttestationMode, NetworkFile, NetworkNode};
use lit_api::v1::{
    encryption_share_aad, paths, Attestation, AttestationKind, EncryptionSignRequest,
    EncryptionSignResponse, HandshakeRequest, HandshakeResponse, NetworkKeys, NodeIdentity,
    SealedBox, ENCRYPTION_SHARE_SEAL_INFO,
};
use lit_api::{ApiError, Bytes, Bytes32, ErrorCode, ErrorEnvelope};
use lit_attest::{Attester, Binding, Nonce, SimulatedAttester};
use lit_client::{
    Bootstrap, ClientError, ConnectOptions, LitClient, NodeFailureReason, Policy, Wallet,
};
use lit_crypto::bls::{deal_with_trusted_dealer, KeyShare, PublicKeySet};
use lit_crypto::eth::{eip191_hash, recover_address, Address};
use lit_crypto::identity::{conditions_hash, AccessControlIdentity};
use lit_crypto::seal::SealPublicKey;
use lit_crypto::PartyId;
use rand_core::{OsRng, RngCore};
use serde_json::json;

/// How a test node behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behavior {
    Honest,
    /// Refuses every share with `conditions_not_met`.
    ConditionsNotMet,
    /// Answers share requests with `not_ready` (shutting down).
    NotReady,
    /// Binds its attestation to a challenge of its own instead of the client's.
    StaleAttestation,
    /// Reports another epoch in its handshake.
    OtherEpoch,
    /// Returns a share signed on another identity.
    WrongShare,
}

struct TestNode {
    party_id: u32,
    url: String,
    identity_key: [u8; 32],
    attester: SimulatedAttester,
    set: PublicKeySet,
    share: KeyShare,
    epoch: u64,
    behavior: Mutex<Behavior>,
    seen_client_keys: Mutex<HashSet<[u8; 32]>>,
    /// Addresses that meet the (test) conditions.
    allowed: Mutex<Option<Address>>,
}

fn error(code: ErrorCode, message: &str) -> Response {
    let status = StatusCode::from_u16(code.http_status()).unwrap();
    (
        status,
        Json(ErrorEnvelope {
            error: ApiError::new(code, message),
        }),
    )
        .into_response()
}

async fn handshake(
    State(node): State<Arc<TestNode>>,
    Json(req): Json<HandshakeRequest>,
) -> Response {
    let behavior = *node.behavior.lock().unwrap();
    let epoch = if behavior == Behavior::OtherEpoch {
        node.epoch + 1
    } else {
        node.epoch
    };
    let challenge = if behavior == Behavior::StaleAttestation {
        Nonce([9; 32])
    } else {
        Nonce(req.challenge.0)
    };
    let binding = Binding::new(&node.identity_key, challenge, epoch);
    let evidence = node.attester.attest(&binding.report_data()).unwrap();
    Json(HandshakeResponse {
        api_version: 1,
        node: NodeIdentity {
            party_id: node.party_id,
            url: node.url.clone(),
            identity_key: Bytes(node.identity_key.to_vec()),
            seal_key: Bytes32([node.party_id as u8; 32]),
        },
        epoch,
        threshold: node.set.threshold() as u32,
        node_count: node.set.participants().count() as u32,
        network_keys: NetworkKeys {
            bls: Bytes(node.set.public_key().to_bytes().to_vec()),
            ecdsa: Bytes(vec![2; 33]),
            bls_key_set: Bytes(node.set.to_bytes()),
        },
        attestation: Attestation {
            kind: AttestationKind::Simulated,
            evidence: Bytes(evidence.to_json().into_bytes()),
        },
    })
    .into_response()
}

async fn encryption_sign(
    State(node): State<Arc<TestNode>>,
    Json(req): Json<EncryptionSignRequest>,
) -> Response {
    let behavior = *node.behavior.lock().unwrap();
    if behavior == Behavior::NotReady {
        return error(ErrorCode::NotReady, "shutting down");
    }
    if req.epoch != node.epoch {
        return error(ErrorCode::WrongEpoch, "wrong epoch");
    }
    if !node
        .seen_client_keys
        .lock()
        .unwrap()
        .insert(req.client_public_key.0)
    {
        return error(ErrorCode::NonceReplayed, "clientPublicKey reused");
    }
    // the auth signature must recover to the claimed address
    let sig = hex::decode(req.auth_sig.sig.trim_start_matches("0x")).unwrap();
    let signer = recover_address(&eip191_hash(req.auth_sig.signed_message.as_bytes()), &sig);
    let claimed = Address::parse(&req.auth_sig.address);
    let user = match (signer, claimed) {
        (Ok(s), Ok(c)) if s == c => c,
        _ => return error(ErrorCode::InvalidAuth, "bad signature"),
    };
    if behavior == Behavior::ConditionsNotMet || *node.allowed.lock().unwrap() != Some(user) {
        return error(
            ErrorCode::ConditionsNotMet,
            "access control conditions are not met",
        );
    }
    let chash = conditions_hash(&req.access_control_conditions.to_string()).unwrap();
    let identity = AccessControlIdentity::from_hashes(chash, req.data_to_encrypt_hash.0).to_bytes();
    let signed = if behavior == Behavior::WrongShare {
        node.share.sign(b"something else")
    } else {
        node.share.sign(&identity)
    };
    let client_key = SealPublicKey::from_bytes(&req.client_public_key.0).unwrap();
    let sealed = client_key
        .seal(
            ENCRYPTION_SHARE_SEAL_INFO,
            &encryption_share_aad(node.party_id, node.epoch, &identity),
            &signed.to_bytes(),
            &mut OsRng,
        )
        .unwrap();
    Json(EncryptionSignResponse {
        party_id: node.party_id,
        epoch: node.epoch,
        share: SealedBox {
            enc: Bytes(sealed.enc),
            ciphertext: Bytes(sealed.ciphertext),
        },
    })
    .into_response()
}

struct TestNetwork {
    nodes: Vec<Arc<TestNode>>,
    file: NetworkFile,
    dir: tempfile::TempDir,
}

impl TestNetwork {
    /// `n` nodes with threshold `t`; the nodes listed in `dead` are in the network file but
    /// nothing listens at their address.
    async fn start(t: usize, n: u32, dead: &[u32]) -> Self {
        let ids: Vec<PartyId> = PartyId::range(n).collect();
        let (set, shares) = deal_with_trusted_dealer(t, &ids, &mut OsRng).unwrap();
        let mut nodes = Vec::new();
        let mut file_nodes = Vec::new();
        for share in shares {
            let party_id = share.id().get();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let mut identity_key = [0u8; 32];
            OsRng.fill_bytes(&mut identity_key);
            let node = Arc::new(TestNode {
                party_id,
                url: url.clone(),
                identity_key,
                attester: SimulatedAttester::new([7; 48]),
                set: set.clone(),
                share,
                epoch: 3,
                behavior: Mutex::new(Behavior::Honest),
                seen_client_keys: Mutex::new(HashSet::new()),
                allowed: Mutex::new(None),
            });
            if dead.contains(&party_id) {
                drop(listener); // the port is closed: connection refused
            } else {
                let app = Router::new()
                    .route(paths::HANDSHAKE, post(handshake))
                    .route(paths::ENCRYPTION_SIGN, post(encryption_sign))
                    .with_state(node.clone());
                tokio::spawn(async move { axum::serve(listener, app).await });
            }
            file_nodes.push(NetworkNode {
                party_id,
                url,
                identity_key: Bytes32(identity_key),
                seal_key: Bytes32([party_id as u8; 32]),
                dkg_key: Bytes(vec![2; 33]),
            });
            nodes.push(node);
        }
        let file = NetworkFile {
            version: 1,
            name: "test".into(),
            threshold: t as u32,
            attestation: AttestationMode::Simulated,
            nodes: file_nodes,
        };
        let net = Self {
            nodes,
            file,
            dir: tempfile::tempdir().unwrap(),
        };
        net.write_file();
        net
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("network.json")
    }

    fn write_file(&self) {
        std::fs::write(
            self.path(),
            serde_json::to_string_pretty(&self.file).unwrap(),
        )
        .unwrap();
    }

    fn node(&self, id: u32) -> &TestNode {
        &self.nodes[id as usize - 1]
    }

    fn set_behavior(&self, id: u32, b: Behavior) {
        *self.node(id).behavior.lock().unwrap() = b;
    }

    fn allow(&self, who: Address) {
        for n in &self.nodes {
            *n.allowed.lock().unwrap() = Some(who);
        }
    }

    async fn connect(&self) -> Result<LitClient, ClientError> {
        LitClient::connect_with(
            Bootstrap::NetworkFile(self.path()),
            ConnectOptions::default().with_request_timeout(Duration::from_secs(5)),
        )
        .await
    }
}

fn conditions() -> serde_json::Value {
    json!([{"conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
            "chain": "anvil", "method": "", "parameters": [":userAddress"],
            "returnValueTest": {"comparator": "=", "value": ":userAddress"}}])
}

#[tokio::test]
async fn connect_encrypt_decrypt_over_http() {
    let net = TestNetwork::start(3, 5, &[]).await;
    let client = net.connect().await.unwrap();
    assert_eq!(client.epoch(), 3);
    assert_eq!(client.threshold(), 3);
    assert_eq!(client.node_count(), 5);
    assert_eq!(client.nodes().len(), 5);
    assert!(client.handshake_failures().is_empty());
    assert_eq!(client.network_public_key(), net.node(1).set.public_key());
    for (i, info) in client.nodes().iter().enumerate() {
        assert_eq!(info.party_id, i as u32 + 1);
        assert_eq!(info.attestation, AttestationKind::Simulated);
        assert!(!info.hardware);
        assert_eq!(info.identity_key, net.node(info.party_id).identity_key);
    }

    let wallet = Wallet::random();
    net.allow(wallet.address());
    let plaintext = b"over the wire".to_vec();
    let data = client.encrypt(&conditions(), &plaintext).unwrap();
    // decrypting twice works: every request uses a fresh client key (the nodes refuse reuse)
    for _ in 0..2 {
        assert_eq!(client.decrypt(&data, &wallet).await.unwrap(), plaintext);
    }
    // someone else is refused by every node
    let stranger = Wallet::random();
    let err = client.decrypt(&data, &stranger).await.unwrap_err();
    assert!(
        matches!(err, ClientError::ConditionsNotMet { refused: 3, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn two_dead_nodes_are_tolerated_and_three_are_named() {
    let net = TestNetwork::start(3, 5, &[2, 4]).await;
    let client = net.connect().await.unwrap();
    assert_eq!(client.nodes().len(), 3);
    let failed: Vec<Option<u32>> = client
        .handshake_failures()
        .iter()
        .map(|f| f.party_id)
        .collect();
    assert_eq!(failed, [Some(2), Some(4)]);
    assert!(client
        .handshake_failures()
        .iter()
        .all(|f| matches!(f.reason, NodeFailureReason::Unreachable(_))));

    let wallet = Wallet::random();
    net.allow(wallet.address());
    let data = client.encrypt(&conditions(), b"three of five").unwrap();
    assert_eq!(
        client.decrypt(&data, &wallet).await.unwrap(),
        b"three of five"
    );

    // a third node goes down after the handshake: too few shares, and the error says which
    net.set_behavior(5, Behavior::NotReady);
    let err = client.decrypt(&data, &wallet).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("too few nodes answered"), "{text}");
    assert!(
        text.contains(&format!("node 5 ({})", net.node(5).url)),
        "{text}"
    );
    assert!(text.contains("not_ready"), "{text}");

    // a third dead node at connect: too few healthy nodes, naming all three
    let net = TestNetwork::start(3, 5, &[1, 2, 4]).await;
    let err = net.connect().await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            ClientError::TooFewNodes {
                needed: 3,
                healthy: 2,
                ..
            }
        ),
        "{text}"
    );
    for id in [1, 2, 4] {
        assert!(
            text.contains(&format!("node {id} ({}): unreachable", net.node(id).url)),
            "{text}"
        );
    }
}

#[tokio::test]
async fn invalid_shares_are_replaced_by_other_nodes() {
    let net = TestNetwork::start(3, 5, &[]).await;
    let client = net.connect().await.unwrap();
    let wallet = Wallet::random();
    net.allow(wallet.address());
    let data = client.encrypt(&conditions(), b"robust").unwrap();
    net.set_behavior(1, Behavior::WrongShare);
    net.set_behavior(3, Behavior::WrongShare);
    for _ in 0..3 {
        assert_eq!(client.decrypt(&data, &wallet).await.unwrap(), b"robust");
    }
    net.set_behavior(5, Behavior::WrongShare);
    let err = client.decrypt(&data, &wallet).await.unwrap_err();
    let mut culprits: Vec<u32> = err
        .failures()
        .iter()
        .filter(|f| matches!(f.reason, NodeFailureReason::InvalidShare(_)))
        .filter_map(|f| f.party_id)
        .collect();
    culprits.sort_unstable();
    // T = 3 is unreachable once three shares failed; all three cheaters may not have been
    // asked by then, but every named culprit is a cheater and at least three nodes failed
    assert!(culprits.iter().all(|id| [1, 3, 5].contains(id)), "{err}");
    assert_eq!(err.failures().len(), 3, "{err}");
}

#[tokio::test]
async fn pinned_identity_keys_and_attestation_binding_are_enforced() {
    let mut net = TestNetwork::start(3, 5, &[]).await;
    // the file pins another key for node 2; node 4 binds its evidence to a stale challenge
    net.file.nodes[1].identity_key = Bytes32([0xee; 32]);
    net.write_file();
    net.set_behavior(4, Behavior::StaleAttestation);
    let client = net.connect().await.unwrap();
    let ids: Vec<u32> = client.nodes().iter().map(|n| n.party_id).collect();
    assert_eq!(ids, [1, 3, 5]);
    let failures = client.handshake_failures();
    assert!(
        matches!(
            &failures[0],
            f if f.party_id == Some(2) && matches!(f.reason, NodeFailureReason::IdentityMismatch { .. })
        ),
        "{failures:?}"
    );
    assert!(
        matches!(
            &failures[1],
            f if f.party_id == Some(4) && matches!(f.reason, NodeFailureReason::Attestation(_))
        ),
        "{failures:?}"
    );

    // a strict policy refuses simulated evidence: no healthy node, each one named
    let err = LitClient::connect_with(
        Bootstrap::NetworkFile(net.path()),
        ConnectOptions::default().with_policy(Policy::default()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ClientError::TooFewNodes { healthy: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("attestation refused"), "{err}");

    // bare URLs: nothing pinned, attestation per the given policy
    let urls: Vec<String> = net.nodes.iter().map(|n| n.url.clone()).collect();
    let client = LitClient::connect_with(
        Bootstrap::Urls(urls),
        ConnectOptions::default().with_policy(Policy::development()),
    )
    .await
    .unwrap();
    assert_eq!(client.nodes().len(), 4);
}

#[tokio::test]
async fn disagreeing_nodes_are_refused() {
    let net = TestNetwork::start(3, 5, &[]).await;
    net.set_behavior(2, Behavior::OtherEpoch);
    let err = net.connect().await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ClientError::Disagreement { what: "epoch", .. }),
        "{text}"
    );
    assert!(
        text.contains(&format!("4 from nodes 2 ({})", net.node(2).url)),
        "{text}"
    );
}

#[tokio::test]
async fn bad_network_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.json");
    let err = LitClient::connect(Bootstrap::NetworkFile(missing))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NetworkFile { .. }), "{err}");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"version": 1, "name": "x", "threshold": 1, "attestation": "simulated", "nodes": []}"#,
    )
    .unwrap();
    let err = LitClient::connect(Bootstrap::NetworkFile(bad))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no nodes"), "{err}");
    let err = LitClient::connect(Bootstrap::Urls(vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Config(_)), "{err}");
}

/// Runs the `lit` binary.
async fn lit(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lit"))
        .args(args)
        .env_remove("LIT_NETWORK")
        .env_remove("LIT_WALLET")
        .env_remove("LIT_POLICY")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_wallet_handshake_encrypt_decrypt() {
    let net = TestNetwork::start(3, 5, &[3]).await;
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let network = net.path().display().to_string();

    let (ok, stdout, _) = lit(&["wallet", "new", "--out", &p("w.json")]).await;
    assert!(ok);
    let address = stdout.trim().to_string();
    assert!(
        address.starts_with("0x") && address.len() == 42,
        "{address}"
    );
    let (ok, _, stderr) = lit(&["wallet", "new", "--out", &p("w.json")]).await;
    assert!(!ok);
    assert!(stderr.contains("refusing to overwrite"), "{stderr}");
    let (ok, stdout, _) = lit(&["--wallet", &p("w.json"), "wallet", "address", "--json"]).await;
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["address"], address.as_str());

    let (ok, stdout, stderr) = lit(&["--network", &network, "--json", "handshake"]).await;
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["epoch"], 3);
    assert_eq!(v["threshold"], 3);
    assert_eq!(v["nodes"].as_array().unwrap().len(), 4);
    assert_eq!(v["nodes"][0]["attestation"], "simulated");
    assert_eq!(v["failures"][0]["partyId"], 3);
    let (ok, stdout, _) = lit(&["--network", &network, "handshake"]).await;
    assert!(ok);
    assert!(
        stdout.contains("simulated") && stdout.contains(&net.node(1).url),
        "{stdout}"
    );

    net.allow(Address::parse(&address).unwrap());
    std::fs::write(p("conditions.json"), conditions().to_string()).unwrap();
    std::fs::write(p("plain.txt"), b"from the command line").unwrap();
    let (ok, _, stderr) = lit(&[
        "--network",
        &network,
        "encrypt",
        "--conditions",
        &p("conditions.json"),
        "--in",
        &p("plain.txt"),
        "--out",
        &p("secret.json"),
    ])
    .await;
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = lit(&[
        "--network",
        &network,
        "--wallet",
        &p("w.json"),
        "decrypt",
        "--in",
        &p("secret.json"),
        "--out",
        &p("out.txt"),
    ])
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(
        std::fs::read(p("out.txt")).unwrap(),
        b"from the command line"
    );

    // errors: typed text on stderr, non-zero exit
    for id in [1, 2, 4, 5] {
        net.set_behavior(id, Behavior::ConditionsNotMet);
    }
    let (ok, stdout, stderr) = lit(&[
        "--network",
        &network,
        "--wallet",
        &p("w.json"),
        "decrypt",
        "--in",
        &p("secret.json"),
        "--out",
        &p("out2.txt"),
    ])
    .await;
    assert!(!ok);
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with("error: access control conditions are not met"),
        "{stderr}"
    );
    assert!(!std::path::Path::new(&p("out2.txt")).exists());
}
