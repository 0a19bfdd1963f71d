//! The network as real node processes on loopback, spoken to over raw HTTP: the bad inputs each
//! get their documented code while the node keeps serving, shares travel sealed to the
//! client's key, and a node that sends corrupted DKG messages is named and excluded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lit_api::v1::{paths, EncryptionSignResponse, HandshakeResponse, ENCRYPTION_SHARE_SEAL_INFO};
use lit_crypto::bls::{PublicKeySet, SignatureShare};
use lit_crypto::identity::AccessControlIdentity;
use lit_crypto::seal::{SealSecretKey, Sealed};
use lit_node::devnet::LayoutOptions;
use rand_core::OsRng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::net::{auth_sig, code, decrypt_auth, post, post_raw, testnet, user_is, wallet};

async fn handshake(url: &str) -> HandshakeResponse {
    let (status, body) = post(
        url,
        paths::HANDSHAKE,
        &json!({"challenge": "ab".repeat(32)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

fn share_request(
    conditions: &Value,
    data: &[u8],
    auth: &lit_api::v1::AuthSig,
    client: &[u8; 32],
) -> Value {
    json!({
        "epoch": 1,
        "accessControlConditions": conditions,
        "dataToEncryptHash": hex::encode(Sha256::digest(data)),
        "authSig": auth,
        "clientPublicKey": hex::encode(client),
    })
}

fn identity_of(conditions: &Value, data: &[u8]) -> Vec<u8> {
    AccessControlIdentity::for_conditions(conditions, Sha256::digest(data).into())
        .unwrap()
        .to_bytes()
}

#[tokio::test]
async fn bad_requests_get_their_documented_codes_and_the_node_keeps_serving() {
    let net = testnet(3).start().await;
    let url = net.url(1);
    let (key, address) = wallet(1);
    let conditions = user_is(&address);
    let fresh = || SealSecretKey::generate(&mut OsRng).1.to_bytes();
    let domain = net.network().domain();
    let auth =
        |key, conditions: &Value, ttl| decrypt_auth(key, &domain, &url, conditions, b"data", ttl);
    let good = || {
        share_request(
            &conditions,
            b"data",
            &auth(&key, &conditions, 600),
            &fresh(),
        )
    };
    let sign = paths::ENCRYPTION_SIGN;

    let (status, body) = post(&url, sign, &good()).await;
    assert_eq!(status, 200, "{body}");

    // malformed JSON, unknown field, oversized body
    let (status, body) = post_raw(&url, sign, "{\"epoch\": 1,".into()).await;
    assert_eq!((status, code(&body)), (400, "malformed_request"));
    let mut extra = good();
    extra["surprise"] = json!(true);
    let (status, body) = post(&url, sign, &extra).await;
    assert_eq!((status, code(&body)), (400, "malformed_request"));
    let (status, body) = post_raw(&url, sign, "x".repeat(2 * 1024 * 1024)).await;
    assert_eq!((status, code(&body)), (413, "body_too_large"));
    // wrong epoch
    let mut wrong = good();
    wrong["epoch"] = json!(2);
    let (status, body) = post(&url, sign, &wrong).await;
    assert_eq!((status, code(&body)), (409, "wrong_epoch"));
    // expired auth
    let expired = share_request(
        &conditions,
        b"data",
        &auth(&key, &conditions, -60),
        &fresh(),
    );
    let (status, body) = post(&url, sign, &expired).await;
    assert_eq!((status, code(&body)), (401, "auth_expired"), "{body}");
    // a wallet's plain AuthSig, valid as a signature, is refused: any node could replay it
    let (other, _) = wallet(2);
    let plain = share_request(&conditions, b"data", &auth_sig(&key, 600), &fresh());
    let (status, body) = post(&url, sign, &plain).await;
    assert_eq!((status, code(&body)), (401, "invalid_auth"), "{body}");
    // altered session signature (another nonce under the same signature)
    let mut altered = auth(&key, &conditions, 600);
    let nonce_at = altered.signed_message.find("\"nonce\":\"").unwrap() + 9;
    altered
        .signed_message
        .replace_range(nonce_at..nonce_at + 2, "ff");
    let (status, body) = post(
        &url,
        sign,
        &share_request(&conditions, b"data", &altered, &fresh()),
    )
    .await;
    assert_eq!((status, code(&body)), (401, "invalid_auth"), "{body}");
    // replayed nonce (the client key of a request already answered)
    let once = good();
    assert_eq!(post(&url, sign, &once).await.0, 200);
    let (status, body) = post(&url, sign, &once).await;
    assert_eq!((status, code(&body)), (409, "nonce_replayed"));
    // unknown condition type, and too many conditions
    let mut unknown = good();
    unknown["accessControlConditions"][0]["conditionType"] = json!("solRpc");
    let (status, body) = post(&url, sign, &unknown).await;
    assert_eq!(
        (status, code(&body)),
        (400, "unknown_condition_type"),
        "{body}"
    );
    let many: Vec<Value> = (0..31)
        .flat_map(|i| {
            let c = user_is(&address)[0].clone();
            if i == 0 {
                vec![c]
            } else {
                vec![json!({"operator": "or"}), c]
            }
        })
        .collect();
    let (status, body) = post(
        &url,
        sign,
        &share_request(
            &json!(many),
            b"data",
            &auth(&key, &conditions, 600),
            &fresh(),
        ),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid_conditions"), "{body}");
    // conditions not met: another wallet asks
    let (status, body) = post(
        &url,
        sign,
        &share_request(
            &conditions,
            b"data",
            &auth(&other, &conditions, 600),
            &fresh(),
        ),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "conditions_not_met"));
    // a chain the node does not know
    let mut chain = good();
    chain["accessControlConditions"] = json!([{"conditionType": "evmBasic", "contractAddress": "",
        "standardContractType": "", "chain": "nowhere", "method": "eth_getBalance",
        "parameters": [":userAddress", "latest"], "returnValueTest": {"comparator": ">=", "value": "0"}}]);
    let (status, body) = post(&url, sign, &chain).await;
    assert_eq!((status, code(&body)), (502, "chain_unavailable"), "{body}");
    // a bad peer envelope
    let (status, body) = post(
        &url,
        paths::PEER_MESSAGE,
        &json!({"session": "00".repeat(32), "from": 2,
        "payload": {"plain": "00"}, "signature": "00".repeat(64)}),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "unauthorized_peer"), "{body}");

    // still serving
    let (status, body) = post(&url, sign, &good()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(handshake(&url).await.epoch, 1);
}

#[tokio::test]
async fn shares_on_the_wire_are_sealed_to_the_client_key() {
    let net = testnet(5).start().await;
    let hs = handshake(&net.url(1)).await;
    let set = PublicKeySet::from_bytes(&hs.network_keys.bls_key_set.0).unwrap();
    assert_eq!(set.public_key().to_bytes().to_vec(), hs.network_keys.bls.0);
    let (key, address) = wallet(3);
    let conditions = user_is(&address);
    let data = b"the secret";
    let identity = identity_of(&conditions, data);
    let ciphertext = lit_crypto::ibe::encrypt(&set.public_key(), &identity, data).unwrap();

    // capture the responses of four nodes, as an eavesdropper on the wire would
    let mut captured = Vec::new();
    for id in 1..=4 {
        let (secret, public) = SealSecretKey::generate(&mut OsRng);
        let auth = decrypt_auth(
            &key,
            &net.network().domain(),
            &net.url(id),
            &conditions,
            data,
            600,
        );
        let req = share_request(&conditions, data, &auth, &public.to_bytes());
        let (status, body) = post(&net.url(id), paths::ENCRYPTION_SIGN, &req).await;
        assert_eq!(status, 200, "{body}");
        let resp: EncryptionSignResponse = serde_json::from_value(body).unwrap();
        assert_eq!(resp.party_id, id);
        captured.push((secret, resp));
    }
    let aad = |r: &EncryptionSignResponse| {
        lit_api::v1::encryption_share_aad(r.party_id, r.epoch, &identity)
    };
    let sealed = |r: &EncryptionSignResponse| Sealed {
        enc: r.share.enc.0.clone(),
        ciphertext: r.share.ciphertext.0.clone(),
    };
    // without the client key: the bytes are no share, and another key does not open them
    let (eve, _) = SealSecretKey::generate(&mut OsRng);
    for (_, r) in &captured {
        assert!(SignatureShare::from_bytes(&r.share.ciphertext.0).is_err());
        assert!(eve
            .open(&sealed(r), ENCRYPTION_SHARE_SEAL_INFO, &aad(r))
            .is_err());
    }
    // a share relabelled as another node's does not open either
    let (k0, r0) = &captured[0];
    assert!(k0
        .open(
            &sealed(r0),
            ENCRYPTION_SHARE_SEAL_INFO,
            &lit_api::v1::encryption_share_aad(2, 1, &identity)
        )
        .is_err());
    // with the client keys: four valid shares that combine into the decryption key
    let shares: Vec<SignatureShare> = captured
        .iter()
        .map(|(k, r)| {
            let bytes = k
                .open(&sealed(r), ENCRYPTION_SHARE_SEAL_INFO, &aad(r))
                .unwrap();
            let share = SignatureShare::from_bytes(&bytes).unwrap();
            set.verify_share(&identity, &share).unwrap();
            share
        })
        .collect();
    let signature = set.combine(&identity, &shares).unwrap();
    // an independent verifier (blst) accepts the combined signature under the network key
    let pk = blst::min_pk::PublicKey::from_bytes(&set.public_key().to_bytes()).unwrap();
    let sig = blst::min_pk::Signature::from_bytes(&signature.to_bytes()).unwrap();
    assert_eq!(
        sig.verify(true, &identity, lit_crypto::bls::DST, &[], &pk, true),
        blst::BLST_ERROR::BLST_SUCCESS
    );
    let plain = lit_crypto::ibe::decrypt(&ciphertext, &signature).unwrap();
    assert_eq!(plain.as_slice(), data);
}

#[tokio::test]
async fn a_node_sending_corrupted_dkg_shares_is_named_and_excluded() {
    // node 5 deals node 1 a share that does not match its commitment, and defends it
    let net = testnet(5).fault(5, "bad-dkg-share:1").start().await;
    let keys: Vec<_> = futures_util::future::join_all((1..=4).map(|i| {
        let url = net.url(i);
        async move { handshake(&url).await.network_keys }
    }))
    .await;
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "nodes disagree on the network keys"
    );
    for id in 1..=4 {
        let log = net.log(id);
        assert!(
            log.contains("dealers excluded from the key") && log.contains("disqualified=[5]"),
            "node {id}:\n{log}"
        );
    }
    assert!(net.log(1).contains("peer 5 misbehaved"), "{}", net.log(1));
    // the faulty node sees its own views diverge from the honest ones and does not serve
    let log5 = net.log(5);
    assert!(log5.contains("DEVELOPMENT FAULT INJECTION"), "{log5}");
    assert!(log5.contains("DKG for epoch 1 failed"), "{log5}");
    // the four honest nodes hold a working key made without node 5's contribution
    let set = PublicKeySet::from_bytes(&keys[0].bls_key_set.0).unwrap();
    let (key, address) = wallet(4);
    let conditions = user_is(&address);
    let identity = identity_of(&conditions, b"x");
    let mut shares = Vec::new();
    for id in 1..=4 {
        let (secret, public) = SealSecretKey::generate(&mut OsRng);
        let (status, body) = post(
            &net.url(id),
            paths::ENCRYPTION_SIGN,
            &share_request(
                &conditions,
                b"x",
                &decrypt_auth(
                    &key,
                    &net.network().domain(),
                    &net.url(id),
                    &conditions,
                    b"x",
                    600,
                ),
                &public.to_bytes(),
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let r: EncryptionSignResponse = serde_json::from_value(body).unwrap();
        let bytes = secret
            .open(
                &Sealed {
                    enc: r.share.enc.0,
                    ciphertext: r.share.ciphertext.0,
                },
                ENCRYPTION_SHARE_SEAL_INFO,
                &lit_api::v1::encryption_share_aad(id, 1, &identity),
            )
            .unwrap();
        shares.push(SignatureShare::from_bytes(&bytes).unwrap());
    }
    set.combine(&identity, &shares).unwrap();
}

#[tokio::test]
async fn a_silent_node_is_named_and_the_others_finish_the_dkg_without_it() {
    let options = LayoutOptions {
        dkg_round_timeout_ms: Some(1_500),
        ..LayoutOptions::default()
    };
    // node 5 is listed in the network file but never starts
    let net = testnet(5).options(options).absent(5).start().await;
    let keys: Vec<_> = futures_util::future::join_all((1..=4).map(|i| {
        let url = net.url(i);
        async move { handshake(&url).await.network_keys }
    }))
    .await;
    assert!(keys.iter().all(|k| *k == keys[0]));
    for id in 1..=4 {
        let log = net.log(id);
        assert!(
            log.contains("round timed out") && log.contains("silent=[5]"),
            "node {id}:\n{log}"
        );
    }
}
