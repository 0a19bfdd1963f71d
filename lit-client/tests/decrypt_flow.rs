//! The decryption flow without HTTP: nodes are simulated by trusted-dealer key shares that
//! answer exactly like a node answers `POST /v1/encryption/sign` (sign the identity, seal the
//! share to the request's client key), and the client side runs the real share collection,
//! opening, verification, combination and decryption.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use lit_api::v1::{
    encryption_share_aad, EncryptionSignResponse, SealedBox, ENCRYPTION_SHARE_SEAL_INFO,
};
use lit_api::{Bytes, ErrorCode};
use lit_client::{
    collect_shares, combine_and_decrypt, encrypt_to, open_share, Bootstrap, ClientError,
    ConnectOptions, EncryptedData, LitClient, NodeFailureReason, NodeRef, ShareCollector,
};
use lit_crypto::bls::{deal_with_trusted_dealer, KeyShare, PublicKeySet, SignatureShare};
use lit_crypto::identity::AccessControlIdentity;
use lit_crypto::seal::{SealPublicKey, SealSecretKey};
use lit_crypto::PartyId;
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore};
use serde_json::json;

const EPOCH: u64 = 7;

/// A seeded RNG (`LIT_TEST_SEED=<u64>` replays a run; the seed is printed).
fn rng() -> ChaCha20Rng {
    lit_crypto::testing::seeded_rng("decrypt_flow", OsRng.next_u64()).0
}

fn conditions() -> serde_json::Value {
    json!([{"conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
            "chain": "anvil", "method": "", "parameters": [":userAddress"],
            "returnValueTest": {"comparator": "=", "value": "0x50e2dac5e78B5905CB09495547452cEE64426db2"}}])
}

struct Network {
    set: PublicKeySet,
    shares: BTreeMap<u32, KeyShare>,
}

fn network(t: usize, n: u32, rng: &mut ChaCha20Rng) -> Network {
    let ids: Vec<PartyId> = PartyId::range(n).collect();
    let (set, shares) = deal_with_trusted_dealer(t, &ids, rng).unwrap();
    Network {
        set,
        shares: shares.into_iter().map(|s| (s.id().get(), s)).collect(),
    }
}

fn url(id: u32) -> String {
    format!("http://127.0.0.1:{}", 7470 + id)
}

fn order(n: u32) -> Vec<NodeRef> {
    (1..=n)
        .map(|id| NodeRef {
            party_id: id,
            url: url(id),
        })
        .collect()
}

/// What an honest node answers: its share on the identity, sealed to the client key with the
/// share's context.
fn node_answer(
    key: &KeyShare,
    epoch: u64,
    identity: &AccessControlIdentity,
    client_key: &SealPublicKey,
) -> EncryptionSignResponse {
    seal_share(
        &key.sign(&identity.to_bytes()),
        key.id().get(),
        epoch,
        identity,
        client_key,
    )
}

fn seal_share(
    share: &SignatureShare,
    party_id: u32,
    epoch: u64,
    identity: &AccessControlIdentity,
    client_key: &SealPublicKey,
) -> EncryptionSignResponse {
    let aad = encryption_share_aad(party_id, epoch, &identity.to_bytes());
    let sealed = client_key
        .seal(
            ENCRYPTION_SHARE_SEAL_INFO,
            &aad,
            &share.to_bytes(),
            &mut OsRng,
        )
        .unwrap();
    EncryptionSignResponse {
        party_id,
        epoch,
        share: SealedBox {
            enc: Bytes(sealed.enc),
            ciphertext: Bytes(sealed.ciphertext),
        },
    }
}

fn identity_of(data: &EncryptedData) -> AccessControlIdentity {
    data.identity().unwrap()
}

/// The client side of one request, against an in-process node answer function.
fn ask_with(
    set: &PublicKeySet,
    identity: &AccessControlIdentity,
    party_id: u32,
    answer: impl FnOnce(&SealPublicKey) -> Result<EncryptionSignResponse, NodeFailureReason>,
) -> Result<SignatureShare, NodeFailureReason> {
    let (sk, pk) = SealSecretKey::generate(&mut OsRng);
    let response = answer(&pk)?;
    open_share(set, &sk, party_id, EPOCH, identity, &response)
}

#[test]
fn encrypted_data_json_roundtrip_and_refusals() {
    let mut rng = rng();
    let net = network(2, 3, &mut rng);
    let data = encrypt_to(&net.set.public_key(), &conditions(), b"hello lit").unwrap();
    let text = data.to_json();
    assert!(text.contains("\"accessControlConditions\""));
    assert!(text.contains("\"dataToEncryptHash\""));
    assert_eq!(EncryptedData::from_json(&text).unwrap(), data);

    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["surprise"] = json!(1);
    assert!(matches!(
        EncryptedData::from_json(&value.to_string()),
        Err(ClientError::EncryptedData(_))
    ));
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["version"] = json!(2);
    let err = EncryptedData::from_json(&value.to_string()).unwrap_err();
    assert!(err.to_string().contains("version 2"), "{err}");
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value.as_object_mut().unwrap().remove("ciphertext");
    assert!(EncryptedData::from_json(&value.to_string()).is_err());
}

#[test]
fn encryption_refuses_invalid_conditions() {
    let mut rng = rng();
    let net = network(2, 3, &mut rng);
    let pk = net.set.public_key();
    for bad in [
        json!({"not": "a list"}),
        json!([]),
        json!([{"conditionType": "nope"}]),
    ] {
        assert!(
            matches!(encrypt_to(&pk, &bad, b"x"), Err(ClientError::Conditions(_))),
            "{bad}"
        );
    }
}

#[test]
fn ciphertext_must_match_its_identity_and_network() {
    let mut rng = rng();
    let net = network(2, 3, &mut rng);
    let other = network(2, 3, &mut rng);
    let data = encrypt_to(&net.set.public_key(), &conditions(), b"secret").unwrap();
    assert!(data.ciphertext(Some(&net.set.public_key())).is_ok());
    let err = data.ciphertext(Some(&other.set.public_key())).unwrap_err();
    assert!(err.to_string().contains("another network"), "{err}");

    // swapping in other conditions or another data hash breaks the identity binding
    let mut changed = data.clone();
    changed.access_control_conditions[0]["chain"] = json!("ethereum");
    assert!(changed.ciphertext(None).is_err());
    let mut changed = data.clone();
    changed.data_to_encrypt_hash.0[0] ^= 1;
    assert!(changed.ciphertext(None).is_err());
}

#[test]
fn threshold_shares_decrypt_locally() {
    let mut rng = rng();
    let net = network(3, 5, &mut rng);
    let plaintext = b"the network decrypts only with T shares".to_vec();
    let data = encrypt_to(&net.set.public_key(), &conditions(), &plaintext).unwrap();
    let identity = identity_of(&data);
    let ct = data.ciphertext(Some(&net.set.public_key())).unwrap();

    let shares: Vec<SignatureShare> = [5u32, 2, 4]
        .iter()
        .map(|id| {
            ask_with(&net.set, &identity, *id, |pk| {
                Ok(node_answer(&net.shares[id], EPOCH, &identity, pk))
            })
            .unwrap()
        })
        .collect();
    let out = combine_and_decrypt(&net.set, &identity, &ct, &shares).unwrap();
    assert_eq!(&*out, plaintext.as_slice());

    // T-1 shares are not enough
    let err = combine_and_decrypt(&net.set, &identity, &ct, &shares[..2]).unwrap_err();
    assert!(matches!(err, ClientError::Decrypt(_)), "{err}");
}

#[test]
fn share_verification_refuses_bad_shares() {
    let mut rng = rng();
    let net = network(3, 5, &mut rng);
    let other = network(3, 5, &mut rng);
    let data = encrypt_to(&net.set.public_key(), &conditions(), b"data").unwrap();
    let identity = identity_of(&data);
    let elsewhere = AccessControlIdentity::from_hashes([1; 32], [2; 32]);

    let invalid = |r: Result<SignatureShare, NodeFailureReason>, what: &str| match r {
        Err(NodeFailureReason::InvalidShare(m)) => eprintln!("{what}: {m}"),
        other => panic!("{what}: expected an invalid share, got {other:?}"),
    };

    // the honest answer passes
    assert!(ask_with(&net.set, &identity, 1, |pk| Ok(node_answer(
        &net.shares[&1],
        EPOCH,
        &identity,
        pk
    )))
    .is_ok());
    // a share under another key (another network's dealing)
    invalid(
        ask_with(&net.set, &identity, 1, |pk| {
            Ok(node_answer(&other.shares[&1], EPOCH, &identity, pk))
        }),
        "wrong key",
    );
    // a share on another identity, sealed with the right context
    invalid(
        ask_with(&net.set, &identity, 1, |pk| {
            Ok(seal_share(
                &net.shares[&1].sign(&elsewhere.to_bytes()),
                1,
                EPOCH,
                &identity,
                pk,
            ))
        }),
        "wrong identity",
    );
    // a share sealed to another client key
    invalid(
        ask_with(&net.set, &identity, 1, |_| {
            let (_, someone_else) = SealSecretKey::generate(&mut OsRng);
            Ok(node_answer(
                &net.shares[&1],
                EPOCH,
                &identity,
                &someone_else,
            ))
        }),
        "sealed to another key",
    );
    // sealed under another identity's context
    invalid(
        ask_with(&net.set, &identity, 1, |pk| {
            Ok(seal_share(
                &net.shares[&1].sign(&identity.to_bytes()),
                1,
                EPOCH,
                &elsewhere,
                pk,
            ))
        }),
        "other context",
    );
    // node 1 passes off node 2's share as its own (relabelled context)
    invalid(
        ask_with(&net.set, &identity, 1, |pk| {
            Ok(seal_share(
                &net.shares[&2].sign(&identity.to_bytes()),
                1,
                EPOCH,
                &identity,
                pk,
            ))
        }),
        "another party's share",
    );
    // answer claims to be another party / another epoch
    invalid(
        ask_with(&net.set, &identity, 1, |pk| {
            Ok(node_answer(&net.shares[&2], EPOCH, &identity, pk))
        }),
        "another party id",
    );
    invalid(
        ask_with(&net.set, &identity, 1, |pk| {
            Ok(node_answer(&net.shares[&1], EPOCH + 1, &identity, pk))
        }),
        "another epoch",
    );
    // garbage in the box
    invalid(
        ask_with(&net.set, &identity, 1, |pk| {
            let mut r = node_answer(&net.shares[&1], EPOCH, &identity, pk);
            if let Some(b) = r.share.ciphertext.0.first_mut() {
                *b ^= 1;
            }
            Ok(r)
        }),
        "tampered box",
    );
}

#[test]
fn collector_asks_threshold_then_replaces_failures() {
    let mut rng = rng();
    let net = network(3, 5, &mut rng);
    let identity = AccessControlIdentity::from_hashes([3; 32], [4; 32]);
    let share = |id: u32| net.shares[&id].sign(&identity.to_bytes());

    let mut c = ShareCollector::new(3, order(5));
    let first: Vec<u32> = c.next_requests().iter().map(|n| n.party_id).collect();
    assert_eq!(first, [1, 2, 3]);
    assert!(c.next_requests().is_empty());
    assert!(c.outcome().is_none());
    c.record(1, Ok(share(1)));
    c.record(
        2,
        Err(NodeFailureReason::Unreachable("connection refused".into())),
    );
    // one failure: exactly one more node is asked
    let next: Vec<u32> = c.next_requests().iter().map(|n| n.party_id).collect();
    assert_eq!(next, [4]);
    // answers from nodes that were not asked are ignored
    c.record(5, Ok(share(5)));
    c.record(3, Ok(share(3)));
    assert!(c.outcome().is_none());
    c.record(4, Ok(share(4)));
    let shares = c.outcome().unwrap().unwrap();
    let ids: Vec<u32> = shares.iter().map(|s| s.id().get()).collect();
    assert_eq!(ids, [1, 3, 4]);
    assert!(c.next_requests().is_empty());
}

#[test]
fn too_few_shares_names_the_failed_nodes() {
    let mut c = ShareCollector::new(3, order(5));
    let mut rng = rng();
    let net = network(3, 5, &mut rng);
    let identity = AccessControlIdentity::from_hashes([3; 32], [4; 32]);
    let killed = [2u32, 3, 5];
    let mut asked = Vec::new();
    loop {
        let batch = c.next_requests();
        if let Some(outcome) = c.outcome() {
            let err = outcome.unwrap_err();
            let text = err.to_string();
            assert!(text.contains("too few nodes answered"), "{text}");
            assert!(text.contains("need 3, got 2"), "{text}");
            for id in killed {
                assert!(text.contains(&format!("node {id} ({})", url(id))), "{text}");
            }
            for id in [1u32, 4] {
                assert!(!text.contains(&url(id)), "{text}");
            }
            match err {
                ClientError::TooFewShares {
                    needed,
                    got,
                    failures,
                } => {
                    assert_eq!((needed, got), (3, 2));
                    let ids: Vec<u32> = failures.iter().filter_map(|f| f.party_id).collect();
                    assert_eq!(ids, killed);
                }
                other => panic!("{other:?}"),
            }
            break;
        }
        assert!(!batch.is_empty());
        for node in batch {
            asked.push(node.party_id);
            let result = if killed.contains(&node.party_id) {
                Err(NodeFailureReason::Unreachable("connection refused".into()))
            } else {
                Ok(net.shares[&node.party_id].sign(&identity.to_bytes()))
            };
            c.record(node.party_id, result);
        }
    }
    assert_eq!(asked, [1, 2, 3, 4, 5]);
}

#[test]
fn conditions_not_met_when_refusals_make_the_threshold_unreachable() {
    let refusal = || NodeFailureReason::Api {
        code: ErrorCode::ConditionsNotMet,
        message: "access control conditions are not met".into(),
    };
    // 3 of 5 refuse (T = 3): stop as soon as T is unreachable, name the nodes
    let mut c = ShareCollector::new(3, order(5));
    for n in c.next_requests() {
        c.record(n.party_id, Err(refusal()));
    }
    let err = c.outcome().unwrap().unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            ClientError::ConditionsNotMet {
                refused: 3,
                nodes: 5,
                needed: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(text.contains("conditions are not met"), "{text}");
    for id in [1, 2, 3] {
        assert!(text.contains(&url(id)), "{text}");
    }

    // 2 refuse and 1 is down: T is unreachable but not because of the conditions alone
    let mut c = ShareCollector::new(3, order(5));
    let mut rng = rng();
    let net = network(3, 5, &mut rng);
    let identity = AccessControlIdentity::from_hashes([3; 32], [4; 32]);
    for n in c.next_requests() {
        let r = match n.party_id {
            1 | 2 => Err(refusal()),
            _ => Ok(net.shares[&n.party_id].sign(&identity.to_bytes())),
        };
        c.record(n.party_id, r);
    }
    for n in c.next_requests() {
        c.record(n.party_id, Err(NodeFailureReason::Timeout));
    }
    for n in c.next_requests() {
        c.record(n.party_id, Err(NodeFailureReason::Timeout));
    }
    let err = c.outcome().unwrap().unwrap_err();
    assert!(
        matches!(err, ClientError::TooFewShares { got: 1, .. }),
        "{err:?}"
    );
    assert_eq!(err.failures().len(), 4);
}

#[tokio::test]
async fn collect_shares_replaces_a_cheating_node_and_decrypts() {
    let mut rng = rng();
    let net = Arc::new(network(3, 5, &mut rng));
    let other = Arc::new(network(3, 5, &mut rng));
    let plaintext = b"robust against one cheating and one dead node".to_vec();
    let data = encrypt_to(&net.set.public_key(), &conditions(), &plaintext).unwrap();
    let identity = identity_of(&data);
    let ct = data.ciphertext(Some(&net.set.public_key())).unwrap();

    // node 1 answers with a share under another key, node 2 is down
    let shares = collect_shares(ShareCollector::new(3, order(5)), |node| {
        let net = net.clone();
        let other = other.clone();
        async move {
            let id = node.party_id;
            ask_with(&net.set, &identity, id, |pk| match id {
                1 => Ok(node_answer(&other.shares[&1], EPOCH, &identity, pk)),
                2 => Err(NodeFailureReason::Unreachable("connection refused".into())),
                _ => Ok(node_answer(&net.shares[&id], EPOCH, &identity, pk)),
            })
        }
    })
    .await
    .unwrap();
    let ids: Vec<u32> = shares.iter().map(|s| s.id().get()).collect();
    assert_eq!(ids, [3, 4, 5]);
    let out = combine_and_decrypt(&net.set, &identity, &ct, &shares).unwrap();
    assert_eq!(&*out, plaintext.as_slice());

    // with two nodes dead and one cheating, T is out of reach: the error names those three
    let err = collect_shares(ShareCollector::new(3, order(5)), |node| {
        let net = net.clone();
        let other = other.clone();
        async move {
            let id = node.party_id;
            ask_with(&net.set, &identity, id, |pk| match id {
                1 => Ok(node_answer(&other.shares[&1], EPOCH, &identity, pk)),
                2 | 3 => Err(NodeFailureReason::Unreachable("connection refused".into())),
                _ => Ok(node_answer(&net.shares[&id], EPOCH, &identity, pk)),
            })
        }
    })
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("too few nodes answered with a valid share: need 3"),
        "{text}"
    );
    assert!(
        text.contains(&format!("node 1 ({}): invalid share", url(1))),
        "{text}"
    );
    for id in [2, 3] {
        assert!(
            text.contains(&format!("node {id} ({}): unreachable", url(id))),
            "{text}"
        );
    }
    let mut failed: Vec<u32> = err.failures().iter().filter_map(|f| f.party_id).collect();
    failed.sort_unstable();
    assert_eq!(failed, [1, 2, 3]);
}

#[tokio::test]
async fn bad_network_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.json");
    let err = LitClient::connect_with(Bootstrap::NetworkFile(missing), ConnectOptions::devnet())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NetworkFile { .. }), "{err}");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"version": 1, "name": "x", "threshold": 1, "attestation": "simulated", "nodes": []}"#,
    )
    .unwrap();
    let err = LitClient::connect_with(Bootstrap::NetworkFile(bad), ConnectOptions::devnet())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no nodes"), "{err}");
    let err = LitClient::connect(Bootstrap::Urls(vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Config(_)), "{err}");
}
