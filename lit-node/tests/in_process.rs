//! The node's handlers in process: three nodes built with `Node::build` in this test's runtime,
//! served on listeners the test bound first (port 0: no free-port race), their first-epoch DKG
//! run over real HTTP between them, and the client endpoints called through the router with
//! `oneshot` — no node processes, no client SDK in between.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use k256::ecdsa::SigningKey;
use lit_api::network::{AttestationMode, NetworkFile, NETWORK_FILE_VERSION};
use lit_api::owner::OwnerAction;
use lit_api::session::{LitAbility, LitResource, ResourceId};
use lit_api::siwe::SiweMessage;
use lit_api::v1::{
    paths, pkp_share_aad, EncryptionSignResponse, HandshakeResponse, PermissionChange, PkpInfo,
    PkpSignResponse, PKP_SHARE_SEAL_INFO,
};
use lit_api::Bytes32;
use lit_client::Wallet;
use lit_crypto::ecdsa::{combine, MessageDigest, SignatureShare, SigningContext};
use lit_crypto::eth::Address;
use lit_crypto::identity::{conditions_hash, AccessControlIdentity};
use lit_crypto::seal::{SealSecretKey, Sealed};
use lit_node::config::Config;
use lit_node::node::{self, Node};
use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};
use support::net::{auth_sig, session_auth, session_auth_with, user_is, wallet};
use tower::ServiceExt;

struct InProcess {
    _dir: tempfile::TempDir,
    nodes: BTreeMap<u32, Arc<Node>>,
    /// Each node's URL (session signatures name it).
    urls: BTreeMap<u32, String>,
    epoch: u64,
    /// What owner approvals name (from the network's BLS key).
    network_id: String,
}

fn config(dir: &std::path::Path, port: u16, extra: &str) -> Config {
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\nnetwork_file = \"../network.json\"\n\
         attestation = \"simulated\"\nregistry = \"../registry.sqlite\"\npresignature_pool = 0\n\
         dkg_round_timeout_ms = 5000\n{extra}"
    );
    Config::parse(&text, dir).unwrap()
}

impl InProcess {
    /// `n` nodes with threshold `t`; `extra` is appended to every configuration.
    async fn start(n: u32, t: u32, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut listeners = BTreeMap::new();
        let mut configs = BTreeMap::new();
        let mut urls = BTreeMap::new();
        let mut entries = Vec::new();
        for id in 1..=n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let node_dir = dir.path().join(format!("node-{id}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let config = config(&node_dir, port, extra);
            urls.insert(id, config.public_url());
            let mut entry = node::init(&config).unwrap();
            entry.party_id = id;
            entries.push(entry);
            listeners.insert(id, listener);
            configs.insert(id, config);
        }
        let network = NetworkFile {
            version: NETWORK_FILE_VERSION,
            name: "in-process".into(),
            domain: None,
            threshold: t,
            attestation: AttestationMode::Simulated,
            releases: None,
            nodes: entries,
        };
        std::fs::write(
            dir.path().join("network.json"),
            serde_json::to_string_pretty(&network).unwrap(),
        )
        .unwrap();
        let mut nodes = BTreeMap::new();
        for (id, config) in &configs {
            let node = Arc::new(Node::build(config).unwrap());
            let listener = listeners.remove(id).unwrap();
            tokio::spawn(node::serve(
                node.clone(),
                listener,
                std::future::pending::<()>(),
            ));
            nodes.insert(*id, node);
        }
        let starts = nodes.iter().map(|(id, node)| {
            let config = &configs[id];
            async move { node::start(node, config).await }
        });
        for r in futures_util::future::join_all(starts).await {
            r.unwrap();
        }
        let epoch = nodes[&1].status().health().epoch;
        let hs = nodes[&1]
            .handshake(&lit_api::v1::HandshakeRequest {
                challenge: Bytes32([0; 32]),
            })
            .unwrap();
        InProcess {
            _dir: dir,
            nodes,
            urls,
            epoch,
            network_id: lit_api::owner::network_id(&hs.network_keys.bls.0),
        }
    }

    /// The network's SIWE domain (its name is "in-process").
    const DOMAIN: &'static str = "in-process.lit";

    /// A session signature of `key`'s wallet for node `id`, granting `ability` on `resource`
    /// (see [`support::net::session_auth`]), as JSON.
    fn session(
        &self,
        key: &SigningKey,
        id: u32,
        resource: LitResource,
        ability: LitAbility,
    ) -> Value {
        serde_json::to_value(session_auth(
            key,
            Self::DOMAIN,
            &self.urls[&id],
            resource,
            ability,
            600,
        ))
        .unwrap()
    }

    /// POSTs `body` to node `id`'s router in process.
    async fn call(&self, id: u32, path: &str, body: &Value) -> (StatusCode, Value) {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = node::app(self.nodes[&id].clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Approves `action` on `network` with `key`, living `ttl` seconds (negative: expired that long
/// ago).
fn approve(key: &SigningKey, network: &str, action: &OwnerAction<'_>, ttl: i64) -> Value {
    let wallet = Wallet::from_signing_key(key.clone());
    let now = std::time::SystemTime::now();
    let approval = if ttl >= 0 {
        wallet.approve(network, action, now, Duration::from_secs(ttl as u64))
    } else {
        wallet.approve(
            network,
            action,
            now - Duration::from_secs(ttl.unsigned_abs() * 2),
            Duration::from_secs(ttl.unsigned_abs()),
        )
    };
    serde_json::to_value(approval.unwrap()).unwrap()
}

fn mint_body(net: &InProcess, key: &SigningKey) -> Value {
    let owner = Address::from_public_key(key.verifying_key()).to_checksum();
    let approval = approve(
        key,
        &net.network_id,
        &OwnerAction::Mint { owner: &owner },
        600,
    );
    json!({"owner": owner, "approval": approval})
}

fn change_body(
    net: &InProcess,
    key: &SigningKey,
    token: &Bytes32,
    change: &PermissionChange,
    ttl: i64,
) -> Value {
    let approval = approve(
        key,
        &net.network_id,
        &OwnerAction::ChangePermissions {
            token_id: token,
            change,
        },
        ttl,
    );
    json!({"tokenId": hex::encode(token.0), "change": change, "approval": approval})
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<not an error>")
}

fn fresh_client() -> (SealSecretKey, String) {
    let (secret, public) = SealSecretKey::generate(&mut OsRng);
    (secret, hex::encode(public.to_bytes()))
}

fn open(secret: &SealSecretKey, sealed: &Value, info: &[u8], aad: &[u8]) -> Vec<u8> {
    let bytes =
        |k: &str| hex::decode(sealed[k].as_str().unwrap().trim_start_matches("0x")).unwrap();
    secret
        .open(
            &Sealed {
                enc: bytes("enc"),
                ciphertext: bytes("ciphertext"),
            },
            info,
            aad,
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_encryption_and_pkp_sign_handlers_in_process() {
    let net = InProcess::start(3, 2, "").await;
    assert_eq!(net.epoch, 1);

    // handshake: every node names itself and the same network keys, bound to the challenge
    let mut keys = Vec::new();
    for id in 1..=3 {
        let challenge = hex::encode([id as u8; 32]);
        let (status, body) = net
            .call(id, paths::HANDSHAKE, &json!({"challenge": challenge}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let hs: HandshakeResponse = serde_json::from_value(body).unwrap();
        assert_eq!((hs.node.party_id, hs.epoch, hs.threshold), (id, 1, 2));
        keys.push(hs.network_keys);
    }
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
    let key_set = lit_crypto::bls::PublicKeySet::from_bytes(&keys[0].bls_key_set.0).unwrap();
    let (status, body) = net
        .call(1, paths::HANDSHAKE, &json!({"challenge": "00"}))
        .await;
    assert_eq!((status.as_u16(), code(&body)), (400, "malformed_request"));

    // encryption: Alice's share opens and verifies; Bob is refused; a reused key is refused
    let (alice_key, alice) = wallet(1);
    let (bob_key, _) = wallet(2);
    let conditions = user_is(&alice);
    let data_hash = [7u8; 32];
    let resource = acc_resource(&conditions, data_hash);
    let request = |key: &SigningKey, client: &str| {
        json!({"epoch": 1, "accessControlConditions": conditions,
               "dataToEncryptHash": hex::encode(data_hash),
               "authSig": net.session(key, 2, resource.clone(), DECRYPTION),
               "clientPublicKey": client})
    };
    let (secret, client) = fresh_client();
    let (status, body) = net
        .call(2, paths::ENCRYPTION_SIGN, &request(&alice_key, &client))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response: EncryptionSignResponse = serde_json::from_value(body).unwrap();
    let identity = AccessControlIdentity::from_hashes(
        conditions_hash(&conditions.to_string()).unwrap(),
        data_hash,
    );
    lit_client::shares::open_share(&key_set, &secret, 2, 1, &identity, &response)
        .expect("the share opens and verifies against the key set");
    let (status, body) = net
        .call(2, paths::ENCRYPTION_SIGN, &request(&alice_key, &client))
        .await;
    assert_eq!((status.as_u16(), code(&body)), (409, "nonce_replayed"));
    let (_, client) = fresh_client();
    let (status, body) = net
        .call(2, paths::ENCRYPTION_SIGN, &request(&bob_key, &client))
        .await;
    assert_eq!((status.as_u16(), code(&body)), (403, "conditions_not_met"));

    // PKP: Alice mints, signs through both members of the group {1, 2}; the combined signature
    // recovers to the PKP's address. A stranger is refused before any share is made.
    let (status, body) = net
        .call(1, paths::PKP_MINT, &mint_body(&net, &alice_key))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pkp: PkpInfo = serde_json::from_value(body).unwrap();
    let digest = [0x42u8; 32];
    let mut request_id = [0u8; 32];
    OsRng.fill_bytes(&mut request_id);
    let sign = |key: &SigningKey, id: u32, client: &str| {
        json!({"epoch": 1, "tokenId": hex::encode(pkp.token_id.0),
               "toSign": {"digest": hex::encode(digest)},
               "auth": {"sessionSig": net.session(key, id, pkp_resource(&pkp), LitAbility::PkpSigning)},
               "group": [1, 2], "requestId": hex::encode(request_id), "clientPublicKey": client})
    };
    let (_, stranger_client) = fresh_client();
    let (status, body) = net
        .call(1, paths::PKP_SIGN, &sign(&bob_key, 1, &stranger_client))
        .await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (403, "not_permitted"),
        "{body}"
    );
    let (s1, c1) = fresh_client();
    let (s2, c2) = fresh_client();
    let (b1, b2) = (sign(&alice_key, 1, &c1), sign(&alice_key, 2, &c2));
    let ((st1, r1), (st2, r2)) = tokio::join!(
        net.call(1, paths::PKP_SIGN, &b1),
        net.call(2, paths::PKP_SIGN, &b2)
    );
    assert_eq!((st1, st2), (StatusCode::OK, StatusCode::OK), "{r1} {r2}");
    let mut shares = Vec::new();
    for (party, secret, body) in [(1u32, &s1, r1), (2, &s2, r2)] {
        let response: PkpSignResponse = serde_json::from_value(body).unwrap();
        let aad = pkp_share_aad(party, 1, &Bytes32(request_id), &digest);
        let plain = open(
            secret,
            &serde_json::to_value(&response.share).unwrap(),
            PKP_SHARE_SEAL_INFO,
            &aad,
        );
        shares.push(serde_json::from_slice::<SignatureShare>(&plain).unwrap());
    }
    let root = k256::PublicKey::from_sec1_bytes(&keys[0].ecdsa.0).unwrap();
    let context = SigningContext {
        root_public_key: *root.as_affine(),
        key_id: pkp.key_id.0.to_vec(),
        digest: MessageDigest::prehashed(digest),
    };
    let signature = combine(&context, &shares).expect("the shares combine");
    let recovered = signature
        .recover(&MessageDigest::prehashed(digest))
        .unwrap();
    assert_eq!(
        Address::from_point(&recovered).to_checksum(),
        pkp.eth_address
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpc_failure_reaches_the_client_as_chain_unavailable_without_the_url() {
    // the RPC URL carries a provider key, as hosted RPC URLs do; nothing listens on port 9
    let secret_url = "http://127.0.0.1:9/v3/PROVIDER-API-KEY-1234";
    let extra = format!("[chains.anvil]\nrpc_url = \"{secret_url}\"\ntimeout_ms = 2000\n");
    let net = InProcess::start(3, 2, &extra).await;
    let (alice_key, alice) = wallet(1);
    let balance = json!([{"conditionType": "evmBasic", "contractAddress": "",
        "standardContractType": "", "chain": "anvil", "method": "eth_getBalance",
        "parameters": [":userAddress", "latest"],
        "returnValueTest": {"comparator": ">=", "value": "0"}}]);
    let (_, client) = fresh_client();
    let (status, body) = net
        .call(
            1,
            paths::ENCRYPTION_SIGN,
            &json!({"epoch": 1, "accessControlConditions": balance,
                    "dataToEncryptHash": hex::encode([1u8; 32]),
                    "authSig": net.session(&alice_key, 1, acc_resource(&balance, [1u8; 32]), DECRYPTION),
                    "clientPublicKey": client}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (502, "chain_unavailable"),
        "{body}"
    );
    let text = body.to_string();
    for leak in ["PROVIDER-API-KEY", "127.0.0.1:9", "/v3/"] {
        assert!(!text.contains(leak), "the answer leaks {leak:?}: {text}");
    }
    let _ = alice;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_approval_takes_effect_once_for_its_network_pkp_and_change() {
    let net = InProcess::start(3, 2, "").await;
    let (alice_key, _) = wallet(1);
    let (bob_key, bob) = wallet(2);
    let (carol_key, carol) = wallet(3);

    // a mint approval works once: replayed at another node it is refused
    let mint = mint_body(&net, &alice_key);
    let (status, body) = net.call(1, paths::PKP_MINT, &mint).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pkp: PkpInfo = serde_json::from_value(body).unwrap();
    let (status, body) = net.call(2, paths::PKP_MINT, &mint).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (409, "nonce_replayed"),
        "{body}"
    );
    let (_, body) = net
        .call(1, paths::PKP_MINT, &mint_body(&net, &alice_key))
        .await;
    let other: PkpInfo = serde_json::from_value(body).unwrap();
    // a mint for an owner approved by someone else
    let mut forged = mint_body(&net, &bob_key);
    forged["owner"] = json!(pkp.owner);
    let (status, body) = net.call(1, paths::PKP_MINT, &forged).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (401, "invalid_auth"),
        "{body}"
    );

    let add_bob = PermissionChange::AddAddress {
        address: bob.to_checksum(),
    };
    let remove_bob = PermissionChange::RemoveAddress {
        address: bob.to_checksum(),
    };
    let add = change_body(&net, &alice_key, &pkp.token_id, &add_bob, 600);
    let (status, body) = net.call(1, paths::PKP_PERMISSIONS, &add).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // captured by node 1's operator and replayed at node 2, or at node 1 again
    for id in [2, 1] {
        let (status, body) = net.call(id, paths::PKP_PERMISSIONS, &add).await;
        assert_eq!(
            (status.as_u16(), code(&body)),
            (409, "nonce_replayed"),
            "{body}"
        );
    }
    // Alice removes Bob; the old "add Bob" replayed at node 3 does not bring him back
    let remove = change_body(&net, &alice_key, &pkp.token_id, &remove_bob, 600);
    let (status, body) = net.call(2, paths::PKP_PERMISSIONS, &remove).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = net.call(3, paths::PKP_PERMISSIONS, &add).await;
    assert_eq!(status.as_u16(), 409);

    // an approval of one change is not an approval of another change or of another PKP
    let mut tampered = change_body(&net, &alice_key, &pkp.token_id, &add_bob, 600);
    tampered["change"] = json!({"op": "addAddress", "address": carol.to_checksum()});
    let (status, body) = net.call(1, paths::PKP_PERMISSIONS, &tampered).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (403, "not_permitted"),
        "{body}"
    );
    let mut moved = change_body(&net, &alice_key, &pkp.token_id, &add_bob, 600);
    moved["tokenId"] = json!(hex::encode(other.token_id.0));
    let (status, body) = net.call(1, paths::PKP_PERMISSIONS, &moved).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (403, "not_permitted"),
        "{body}"
    );
    // a stranger's own approval of a change to Alice's PKP
    let stranger = change_body(&net, &carol_key, &pkp.token_id, &add_bob, 600);
    let (status, body) = net.call(1, paths::PKP_PERMISSIONS, &stranger).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (403, "not_permitted"),
        "{body}"
    );

    // stretched or spent lifetimes
    let month = change_body(&net, &alice_key, &pkp.token_id, &add_bob, 30 * 24 * 3600);
    let (status, body) = net.call(1, paths::PKP_PERMISSIONS, &month).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (401, "invalid_auth"),
        "{body}"
    );
    assert!(body.to_string().contains("at most 3600 s"), "{body}");
    let expired = change_body(&net, &alice_key, &pkp.token_id, &add_bob, -60);
    let (status, body) = net.call(1, paths::PKP_PERMISSIONS, &expired).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (401, "auth_expired"),
        "{body}"
    );

    // an approval made for another network
    let elsewhere = lit_api::owner::network_id(&[7u8; 48]);
    assert_ne!(net.network_id, elsewhere);
    let approval = approve(
        &alice_key,
        &elsewhere,
        &OwnerAction::ChangePermissions {
            token_id: &pkp.token_id,
            change: &add_bob,
        },
        600,
    );
    let body = json!({"tokenId": hex::encode(pkp.token_id.0), "change": add_bob,
                      "approval": approval});
    let (status, body) = net.call(1, paths::PKP_PERMISSIONS, &body).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (403, "not_permitted"),
        "{body}"
    );

    // a sign-in (any AuthSig, even Alice's own) is no approval at all
    let signin = json!({"authSig": auth_sig(&alice_key, 600),
                        "tokenId": hex::encode(pkp.token_id.0), "change": add_bob});
    let (status, body) = net.call(1, paths::PKP_PERMISSIONS, &signin).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (400, "malformed_request"),
        "{body}"
    );

    // after all that, nobody is permitted on Alice's PKP
    let (_, body) = net
        .call(
            2,
            paths::PKP_INFO,
            &json!({"tokenId": hex::encode(pkp.token_id.0)}),
        )
        .await;
    let record: PkpInfo = serde_json::from_value(body).unwrap();
    assert!(record.permissions.addresses.is_empty(), "{record:?}");
}

/// The decryption resource of data with hash `data_hash` under `conditions`.
fn acc_resource(conditions: &Value, data_hash: [u8; 32]) -> LitResource {
    let identity = AccessControlIdentity::for_conditions(conditions, data_hash).unwrap();
    LitResource::decryption_of(&identity)
}

/// `lit-pkp://<token id>`.
fn pkp_resource(pkp: &PkpInfo) -> LitResource {
    LitResource::pkp(&pkp.token_id.0)
}

/// An edit of a capability's SIWE message before the wallet signs it.
type Edit<'a> = dyn Fn(&mut SiweMessage) + 'a;

const DECRYPTION: LitAbility = LitAbility::AccessControlConditionDecryption;

/// What a malicious node operator (or a website the user signed in to) can do with a wallet
/// credential it saw: nothing anywhere else. A plain AuthSig is refused everywhere; a session
/// signature captured at node 1 is refused at nodes 2 and 3 (and replayed at node 1); a
/// capability that is a sign-in to another domain, has no expiry, lives 30 days, or grants
/// something else (one action, other data, another PKP) decrypts and signs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_credential_is_good_only_at_its_node_for_its_network_resource_and_a_day() {
    let net = InProcess::start(3, 2, "").await;
    let (alice_key, alice) = wallet(1);
    let now = time::OffsetDateTime::now_utc();
    let (_, body) = net
        .call(1, paths::PKP_MINT, &mint_body(&net, &alice_key))
        .await;
    let pkp: PkpInfo = serde_json::from_value(body).unwrap();
    let data_hash = [1u8; 32];
    let secret = acc_resource(&user_is(&alice), data_hash);
    let decrypt = |auth: &Value| {
        json!({"epoch": 1, "accessControlConditions": user_is(&alice),
               "dataToEncryptHash": hex::encode(data_hash), "authSig": auth,
               "clientPublicKey": fresh_client().1})
    };
    let sign = |auth: &Value| {
        json!({"epoch": 1, "tokenId": hex::encode(pkp.token_id.0),
               "toSign": {"digest": "11".repeat(32)}, "auth": {"sessionSig": auth},
               "group": [1, 2], "requestId": "cd".repeat(32), "clientPublicKey": fresh_client().1})
    };
    let refused = |status: StatusCode, body: &Value, code_: &str, text: &str| {
        assert_eq!((status.as_u16(), code(body)), (401, code_), "{body}");
        assert!(body.to_string().contains(text), "{body}");
    };

    // Alice's own valid sign-in as a plain AuthSig: the same at every node, so refused
    let plain = serde_json::to_value(auth_sig(&alice_key, 600)).unwrap();
    let (status, body) = net.call(2, paths::ENCRYPTION_SIGN, &decrypt(&plain)).await;
    refused(status, &body, "invalid_auth", "valid at every node");
    let (status, body) = net
        .call(
            1,
            paths::PKP_SIGN,
            &json!({"epoch": 1, "tokenId": hex::encode(pkp.token_id.0),
                    "toSign": {"digest": "11".repeat(32)}, "auth": {"authSig": plain},
                    "group": [1, 2], "requestId": "cd".repeat(32),
                    "clientPublicKey": fresh_client().1}),
        )
        .await;
    refused(status, &body, "invalid_auth", "valid at every node");
    let capability =
        lit_api::session::capability_siwe_message(&lit_api::session::CapabilityMessage {
            domain: InProcess::DOMAIN,
            address: Address::parse(&pkp.eth_address).unwrap(),
            session_key: &"cd".repeat(32),
            grants: &[lit_api::session::ResourceAbilityRequest::new(
                pkp_resource(&pkp),
                LitAbility::PkpSigning,
            )
            .unwrap()],
            issued_at: now.replace_nanosecond(0).unwrap().try_into().unwrap(),
            expiration: (now.replace_nanosecond(0).unwrap() + time::Duration::hours(1))
                .try_into()
                .unwrap(),
            nonce: "abcdef123456",
        })
        .to_string();
    let (status, body) = net
        .call(
            1,
            paths::SESSION_SIGN,
            &json!({"epoch": 1, "tokenId": hex::encode(pkp.token_id.0), "auth": {"authSig": plain},
                    "capability": capability, "clientPublicKey": fresh_client().1}),
        )
        .await;
    refused(status, &body, "invalid_auth", "valid at every node");
    let (status, body) = net
        .call(
            1,
            paths::EXECUTE,
            &json!({"epoch": 1, "code": "Lit.Actions.setResponse({response: \"hi\"});",
                    "auth": {"authSig": plain}, "group": [1, 2], "requestId": "ef".repeat(32),
                    "clientPublicKey": fresh_client().1}),
        )
        .await;
    refused(status, &body, "invalid_auth", "valid at every node");

    // a session signature made for node 1, captured there: refused at nodes 2 and 3
    let for_node_1 = net.session(&alice_key, 1, secret.clone(), DECRYPTION);
    for id in [2, 3] {
        let (status, body) = net
            .call(id, paths::ENCRYPTION_SIGN, &decrypt(&for_node_1))
            .await;
        refused(status, &body, "invalid_auth", "not for this node");
    }
    let (status, body) = net
        .call(1, paths::ENCRYPTION_SIGN, &decrypt(&for_node_1))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = net
        .call(1, paths::ENCRYPTION_SIGN, &decrypt(&for_node_1))
        .await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (409, "nonce_replayed"),
        "{body}"
    );
    let pkp_for_node_1 = net.session(&alice_key, 1, pkp_resource(&pkp), LitAbility::PkpSigning);
    let (status, body) = net.call(2, paths::PKP_SIGN, &sign(&pkp_for_node_1)).await;
    refused(status, &body, "invalid_auth", "not for this node");

    // capabilities that are not a day's sign-in to this network
    let edited = |id: u32, resource: LitResource, ability, edit: &dyn Fn(&mut SiweMessage)| {
        serde_json::to_value(session_auth_with(
            &alice_key,
            InProcess::DOMAIN,
            &net.urls[&id],
            resource,
            ability,
            600,
            |m| edit(m),
        ))
        .unwrap()
    };
    let month = now + time::Duration::days(30);
    let cases: [(&str, &Edit<'_>); 3] = [
        ("not to this network", &|m| {
            m.domain = "app.example.com".into()
        }),
        ("must have an Expiration Time", &|m| {
            m.expiration_time = None
        }),
        ("at most 24 hours", &move |m| {
            m.expiration_time = Some(month.try_into().unwrap())
        }),
    ];
    for (expected, edit) in cases {
        let (status, body) = net
            .call(
                2,
                paths::ENCRYPTION_SIGN,
                &decrypt(&edited(2, secret.clone(), DECRYPTION, edit)),
            )
            .await;
        refused(status, &body, "invalid_auth", expected);
        let (status, body) = net
            .call(
                1,
                paths::PKP_SIGN,
                &sign(&edited(1, pkp_resource(&pkp), LitAbility::PkpSigning, edit)),
            )
            .await;
        refused(status, &body, "invalid_auth", expected);
    }

    // a capability made for one action (or other data, another PKP) grants nothing else
    let action: LitResource = "lit-litaction://QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
        .parse()
        .unwrap();
    let for_action = |id| {
        net.session(
            &alice_key,
            id,
            action.clone(),
            LitAbility::LitActionExecution,
        )
    };
    let other_data = acc_resource(&user_is(&alice), [2u8; 32]);
    let other_pkp = LitResource::Pkp(ResourceId::Id("ab".repeat(32)));
    for auth in [
        for_action(2),
        net.session(&alice_key, 2, other_data, DECRYPTION),
    ] {
        let (status, body) = net.call(2, paths::ENCRYPTION_SIGN, &decrypt(&auth)).await;
        refused(status, &body, "invalid_auth", "does not request");
    }
    for auth in [
        for_action(1),
        net.session(&alice_key, 1, other_pkp, LitAbility::PkpSigning),
    ] {
        let (status, body) = net.call(1, paths::PKP_SIGN, &sign(&auth)).await;
        refused(status, &body, "invalid_auth", "does not request");
    }

    // a day's sign-in to this network for exactly this data is good
    let day = edited(3, secret, DECRYPTION, &|m| {
        m.expiration_time = Some((now + time::Duration::hours(23)).try_into().unwrap())
    });
    let (status, body) = net.call(3, paths::ENCRYPTION_SIGN, &decrypt(&day)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// An upload of `code` to node `id`, by `key`'s wallet (a session for that node granting the
/// action) or anonymous.
fn upload_body(net: &InProcess, id: u32, code: &str, key: Option<&SigningKey>) -> Value {
    let mut body = json!({"code": code});
    if let Some(key) = key {
        let action = LitResource::LitAction(ResourceId::Id(
            lit_api::ActionId::of(code.as_bytes()).to_string(),
        ));
        body["auth"] =
            json!({"sessionSig": net.session(key, id, action, LitAbility::LitActionExecution)});
    }
    body
}

/// Asserts a `rate_limited` answer whose message names `limit` and when it resets.
fn assert_rate_limited(status: StatusCode, body: &Value, limit: &str) {
    assert_eq!(
        (status.as_u16(), code(body)),
        (429, "rate_limited"),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(limit) && message.contains(" s)"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_mints_beyond_their_quota_are_refused_for_that_caller_alone() {
    let quotas =
        "[quotas]\nmints_per_hour = 2\nuploads_per_hour = 2\nupload_bytes_per_hour = 4096\n";
    let net = InProcess::start(3, 2, quotas).await;
    let (alice_key, _) = wallet(1);
    let (bob_key, _) = wallet(2);
    let (carol_key, _) = wallet(3);
    let action = |n: u32| format!("Lit.Actions.setResponse({{response: \"{n}\"}});");

    // uploads: Alice's two are stored, her third is refused and stores nothing
    for n in 1..=2 {
        let (status, body) = net
            .call(
                1,
                paths::ACTION_UPLOAD,
                &upload_body(&net, 1, &action(n), Some(&alice_key)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = net
        .call(
            1,
            paths::ACTION_UPLOAD,
            &upload_body(&net, 1, &action(3), Some(&alice_key)),
        )
        .await;
    assert_rate_limited(status, &body, "quotas.uploads_per_hour");
    // Bob, at the same node, still uploads; the code Alice was refused was not stored
    let (status, body) = net
        .call(
            1,
            paths::ACTION_UPLOAD,
            &upload_body(&net, 1, &action(3), Some(&bob_key)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["created"], true, "{body}");
    // every node counts its own uploads
    let (status, body) = net
        .call(
            2,
            paths::ACTION_UPLOAD,
            &upload_body(&net, 2, &action(1), Some(&alice_key)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // anonymous uploads share one quota; a caller who signs is not held back by them
    for n in 4..=5 {
        let (status, body) = net
            .call(
                1,
                paths::ACTION_UPLOAD,
                &upload_body(&net, 1, &action(n), None),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = net
        .call(
            1,
            paths::ACTION_UPLOAD,
            &upload_body(&net, 1, &action(6), None),
        )
        .await;
    assert_rate_limited(status, &body, "quotas.uploads_per_hour");
    assert!(body.to_string().contains("anonymous"), "{body}");
    let (status, body) = net
        .call(
            1,
            paths::ACTION_UPLOAD,
            &upload_body(&net, 1, &action(6), Some(&carol_key)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // bytes: Dave's 3000 bytes fit in 4096, 2000 more do not; 5000 at once never would
    let (dave_key, _) = wallet(4);
    let big = |n: usize, len: usize| {
        let head = format!("// {n}\n");
        format!("{head}{}", " ".repeat(len - head.len()))
    };
    let (status, body) = net
        .call(
            3,
            paths::ACTION_UPLOAD,
            &upload_body(&net, 3, &big(1, 3000), Some(&dave_key)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = net
        .call(
            3,
            paths::ACTION_UPLOAD,
            &upload_body(&net, 3, &big(2, 2000), Some(&dave_key)),
        )
        .await;
    assert_rate_limited(status, &body, "quotas.upload_bytes_per_hour");
    let (status, body) = net
        .call(
            3,
            paths::ACTION_UPLOAD,
            &upload_body(&net, 3, &big(3, 5000), Some(&carol_key)),
        )
        .await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (413, "body_too_large"),
        "{body}"
    );
    // a bad credential is refused as one, not counted
    let mut forged = upload_body(&net, 3, &action(7), Some(&carol_key));
    forged["auth"]["sessionSig"]["sig"] = json!("00".repeat(64));
    let (status, body) = net.call(3, paths::ACTION_UPLOAD, &forged).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (401, "invalid_auth"),
        "{body}"
    );

    // mints: Alice's two at two nodes fill her quota for the network; a third is refused at
    // every node, and its approval is not used up (replayed, it is refused for the quota again,
    // not as a replay)
    for id in [1, 2] {
        let (status, body) = net
            .call(id, paths::PKP_MINT, &mint_body(&net, &alice_key))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let third = mint_body(&net, &alice_key);
    for id in [3, 1, 2] {
        let (status, body) = net.call(id, paths::PKP_MINT, &third).await;
        assert_rate_limited(status, &body, "quotas.mints_per_hour");
    }
    // Bob still mints
    let (status, body) = net
        .call(3, paths::PKP_MINT, &mint_body(&net, &bob_key))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pkp: PkpInfo = serde_json::from_value(body).unwrap();
    assert_eq!(
        pkp.owner,
        Address::from_public_key(bob_key.verifying_key()).to_checksum()
    );
}
