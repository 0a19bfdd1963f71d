//! Identity-based encryption to the network key: threshold decryption end to end, wrong keys and
//! identities, tampering, the versioned format and its checked-in vector, and access-control
//! identities with canonical conditions JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lit_crypto::bls::{self, KeyShare, PublicKeySet, SecretKey, Signature};
use lit_crypto::ibe::{self, Ciphertext, IbeError};
use lit_crypto::identity::{self, AccessControlIdentity, IdentityError};
use lit_crypto::testing::seeded_rng;
use lit_crypto::PartyId;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// The default seed of the randomized tests (`LIT_TEST_SEED` overrides it).
const SEED: u64 = 446;

fn network(rng: &mut ChaCha20Rng) -> (PublicKeySet, Vec<KeyShare>) {
    let ids: Vec<PartyId> = PartyId::range(5).collect();
    bls::deal_with_trusted_dealer(3, &ids, rng).unwrap()
}

/// What a client does: ask three nodes for signature shares on the identity and combine them.
fn decryption_key(set: &PublicKeySet, shares: &[KeyShare], identity: &[u8]) -> Signature {
    let sig_shares: Vec<_> = shares
        .iter()
        .skip(1)
        .take(3)
        .map(|s| s.sign(identity))
        .collect();
    set.combine(identity, &sig_shares).unwrap()
}

#[test]
fn threshold_decryption_roundtrip() {
    let (mut rng, _) = seeded_rng("roundtrip", SEED);
    let (set, shares) = network(&mut rng);
    let pk = set.public_key();
    for len in [0usize, 1, 31, 32, 33, 1000, 70_000] {
        let mut data = vec![0u8; len];
        rng.fill_bytes(&mut data);
        let id = format!("identity for {len} bytes").into_bytes();
        let ct = ibe::encrypt_with_rng(&pk, &id, &data, &mut rng).unwrap();
        assert_eq!(ct.plaintext_len(), len);
        assert_eq!(ct.identity(), id.as_slice());
        assert_eq!(ct.public_key(), &pk);
        let key = decryption_key(&set, &shares, &id);
        assert_eq!(ibe::decrypt(&ct, &key).unwrap().as_slice(), data.as_slice());
        assert_eq!(
            ibe::decrypt_checked(&pk, &id, &ct, &key)
                .unwrap()
                .as_slice(),
            data.as_slice()
        );
        // through bytes and through JSON
        let back = Ciphertext::from_bytes(&ct.to_bytes()).unwrap();
        assert_eq!(back, ct);
        let json = serde_json::to_string(&ct).unwrap();
        assert_eq!(json, format!("\"{}\"", hex::encode(ct.to_bytes())));
        assert_eq!(serde_json::from_str::<Ciphertext>(&json).unwrap(), ct);
    }
    // OsRng entry point: two encryptions of the same data differ
    let a = ibe::encrypt(&pk, b"id", b"same").unwrap();
    let b = ibe::encrypt(&pk, b"id", b"same").unwrap();
    assert_ne!(a.to_bytes(), b.to_bytes());
}

#[test]
fn wrong_key_or_identity_is_a_clear_error() {
    let (mut rng, _) = seeded_rng("wrong", SEED);
    let (set, shares) = network(&mut rng);
    let pk = set.public_key();
    let ct = ibe::encrypt_with_rng(&pk, b"identity A", b"secret data", &mut rng).unwrap();

    // the network's signature on another identity
    let other_id = decryption_key(&set, &shares, b"identity B");
    assert_eq!(
        ibe::decrypt(&ct, &other_id),
        Err(IbeError::InvalidDecryptionKey)
    );
    // another network's signature on the right identity
    let (other_set, other_shares) = network(&mut rng);
    let other_key = decryption_key(&other_set, &other_shares, b"identity A");
    assert_eq!(
        ibe::decrypt(&ct, &other_key),
        Err(IbeError::InvalidDecryptionKey)
    );
    // the caller's expectations
    let right = decryption_key(&set, &shares, b"identity A");
    assert_eq!(
        ibe::decrypt_checked(&other_set.public_key(), b"identity A", &ct, &right),
        Err(IbeError::WrongPublicKey)
    );
    assert_eq!(
        ibe::decrypt_checked(&pk, b"identity B", &ct, &right),
        Err(IbeError::WrongIdentity)
    );
    assert_eq!(
        ibe::decrypt(&ct, &right).unwrap().as_slice(),
        b"secret data"
    );
    // identities must be 1..=65535 bytes
    assert_eq!(
        ibe::encrypt(&pk, b"", b"x").unwrap_err(),
        IbeError::InvalidIdentityLength(0)
    );
    assert_eq!(
        ibe::encrypt(&pk, &vec![b'a'; 65_536], b"x").unwrap_err(),
        IbeError::InvalidIdentityLength(65_536)
    );
}

/// Every single-bit change of a ciphertext, and every truncation, is refused.
#[test]
fn tampering_is_always_detected() {
    let (mut rng, _) = seeded_rng("tamper", SEED);
    let sk = SecretKey::random(&mut rng);
    let pk = sk.public_key();
    let id = b"tamper-test";
    let ct = ibe::encrypt_with_rng(&pk, id, b"0123456789abcdef0123", &mut rng).unwrap();
    let key = sk.sign(id);
    let bytes = ct.to_bytes();
    let id_at = 56;
    let u_at = id_at + id.len();
    let v_at = u_at + 48; // then W (32), nonce (12), AEAD payload
    for i in 0..bytes.len() {
        for bit in [0u8, 7] {
            let mut t = bytes.clone();
            t[i] ^= 1 << bit;
            let result = Ciphertext::from_bytes(&t).and_then(|c| ibe::decrypt(&c, &key));
            let err = result.expect_err(&format!("flip of bit {bit} at byte {i} accepted"));
            // V, W, the nonce and the payload are protected by the FO check and the AEAD
            if i >= v_at {
                assert_eq!(err, IbeError::Tampered, "byte {i}");
            }
            if i < 4 {
                assert_eq!(err, IbeError::Malformed("magic"));
            }
        }
    }
    for cut in 0..bytes.len() {
        assert!(Ciphertext::from_bytes(&bytes[..cut])
            .and_then(|c| ibe::decrypt(&c, &key))
            .is_err());
    }
    // a valid but different U
    let mut t = bytes.clone();
    let other_u = SecretKey::random(&mut rng).public_key().to_bytes();
    t[u_at..v_at].copy_from_slice(&other_u);
    let c = Ciphertext::from_bytes(&t).unwrap();
    assert_eq!(ibe::decrypt(&c, &key), Err(IbeError::Tampered));
    // the ciphertext re-labelled to another key: the key no longer verifies under it
    let mut t = bytes.clone();
    let sk2 = SecretKey::random(&mut rng);
    t[6..54].copy_from_slice(&sk2.public_key().to_bytes());
    let c = Ciphertext::from_bytes(&t).unwrap();
    assert_eq!(ibe::decrypt(&c, &key), Err(IbeError::InvalidDecryptionKey));
    // ...and even with that key's own signature, the payload does not open
    assert_eq!(ibe::decrypt(&c, &sk2.sign(id)), Err(IbeError::Tampered));
    // a ciphertext re-labelled to another identity, decrypted with that identity's key
    let mut t = bytes.clone();
    t[id_at] ^= 1;
    let c = Ciphertext::from_bytes(&t).unwrap();
    assert_eq!(
        ibe::decrypt(&c, &sk.sign(c.identity())),
        Err(IbeError::Tampered)
    );
}

#[test]
fn versions_and_schemes_are_checked() {
    let (mut rng, _) = seeded_rng("version", SEED);
    let sk = SecretKey::random(&mut rng);
    let bytes = ibe::encrypt_with_rng(&sk.public_key(), b"v", b"x", &mut rng)
        .unwrap()
        .to_bytes();
    assert_eq!(&bytes[..6], b"LITE\x01\x01");
    let mut t = bytes.clone();
    t[4] = 2;
    assert_eq!(
        Ciphertext::from_bytes(&t),
        Err(IbeError::UnsupportedVersion(2))
    );
    let mut t = bytes.clone();
    t[5] = 9;
    assert_eq!(
        Ciphertext::from_bytes(&t),
        Err(IbeError::UnsupportedScheme(9))
    );
    let mut t = bytes.clone();
    t[54..56].copy_from_slice(&[0, 0]);
    assert_eq!(
        Ciphertext::from_bytes(&t),
        Err(IbeError::InvalidIdentityLength(0))
    );
    let mut t = bytes.clone();
    t[54..56].copy_from_slice(&[0xff, 0xff]);
    assert_eq!(
        Ciphertext::from_bytes(&t),
        Err(IbeError::Malformed("truncated"))
    );
    // U (after the 1-byte identity "v") and pk at infinity are refused at decoding
    let mut t = bytes.clone();
    t[57..105].copy_from_slice(&infinity_g1());
    assert_eq!(Ciphertext::from_bytes(&t), Err(IbeError::Malformed("U")));
    let mut t = bytes.clone();
    t[6..54].copy_from_slice(&infinity_g1());
    assert_eq!(
        Ciphertext::from_bytes(&t),
        Err(IbeError::Malformed("public key"))
    );
    assert!(serde_json::from_str::<Ciphertext>("\"4c495445\"").is_err());
    assert!(serde_json::from_str::<Ciphertext>("\"not hex\"").is_err());
}

/// The checked-in version 1 vector decrypts, and re-encrypting with its seed reproduces it
/// byte for byte (so the format cannot drift unnoticed).
#[test]
fn checked_in_vector() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../testdata/ibe_v1.json")).unwrap();
    let field = |k: &str| hex::decode(v[k].as_str().unwrap()).unwrap();
    let sk = SecretKey::from_bytes(&field("secret_key")).unwrap();
    let identity = v["identity"].as_str().unwrap().as_bytes().to_vec();
    let plaintext = field("plaintext");
    let ct_bytes = field("ciphertext");
    assert_eq!(field("public_key"), sk.public_key().to_bytes().to_vec());
    let conditions = v["conditions"].as_str().unwrap();
    assert_eq!(
        AccessControlIdentity::new(conditions, &plaintext)
            .unwrap()
            .to_bytes(),
        identity
    );
    let ct = Ciphertext::from_bytes(&ct_bytes).unwrap();
    let key = Signature::from_bytes(&field("decryption_key")).unwrap();
    assert_eq!(key, sk.sign(&identity));
    assert_eq!(
        ibe::decrypt(&ct, &key).unwrap().as_slice(),
        plaintext.as_slice()
    );
    let mut rng = ChaCha20Rng::seed_from_u64(v["encryption_seed"].as_u64().unwrap());
    let again = ibe::encrypt_with_rng(&sk.public_key(), &identity, &plaintext, &mut rng).unwrap();
    assert_eq!(again.to_bytes(), ct_bytes);
}

/// Prints a fresh vector (run with `--ignored --nocapture` to regenerate the test data).
#[test]
#[ignore]
fn print_vector() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let sk = SecretKey::random(&mut rng);
    let conditions = r#"[{"chain":"ethereum","method":"eth_getBalance","parameters":[":userAddress","latest"],"returnValueTest":{"comparator":">=","value":"1000000000000"},"standardContractType":"","contractAddress":""}]"#;
    let plaintext = b"hello, lit network";
    let identity = AccessControlIdentity::new(conditions, plaintext)
        .unwrap()
        .to_string();
    let seed = 42u64;
    let mut erng = ChaCha20Rng::seed_from_u64(seed);
    let ct =
        ibe::encrypt_with_rng(&sk.public_key(), identity.as_bytes(), plaintext, &mut erng).unwrap();
    let v = serde_json::json!({
        "secret_key": hex::encode(sk.to_bytes().as_ref()),
        "public_key": hex::encode(sk.public_key().to_bytes()),
        "conditions": conditions,
        "identity": identity,
        "plaintext": hex::encode(plaintext),
        "decryption_key": hex::encode(sk.sign(identity.as_bytes()).to_bytes()),
        "encryption_seed": seed,
        "ciphertext": hex::encode(ct.to_bytes()),
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}

// ---------------------------------------------------------------------------------------------
// Access-control identities
// ---------------------------------------------------------------------------------------------

#[test]
fn equal_conditions_in_any_key_order_hash_the_same() {
    let a = r#"[{"contractAddress":"","standardContractType":"","chain":"ethereum","method":"eth_getBalance","parameters":[":userAddress","latest"],"returnValueTest":{"comparator":">=","value":"1"}}]"#;
    let b = r#"
        [ {
            "returnValueTest": { "value": "1", "comparator": ">=" },
            "parameters": [ ":userAddress", "latest" ],
            "method": "eth_getBalance",
            "chain": "ethereum",
            "standardContractType": "",
            "contractAddress": ""
        } ]"#;
    assert_eq!(
        identity::canonical_json(a).unwrap(),
        identity::canonical_json(b).unwrap()
    );
    assert_eq!(
        identity::conditions_hash(a).unwrap(),
        identity::conditions_hash(b).unwrap()
    );
    let expected = r#"[{"chain":"ethereum","contractAddress":"","method":"eth_getBalance","parameters":[":userAddress","latest"],"returnValueTest":{"comparator":">=","value":"1"},"standardContractType":""}]"#;
    assert_eq!(identity::canonical_json(a).unwrap(), expected);
    // a parsed value canonicalizes the same
    let value: serde_json::Value = serde_json::from_str(b).unwrap();
    assert_eq!(identity::canonical_json_value(&value).unwrap(), expected);
    // escaped and literal unicode are the same string; different values differ
    assert_eq!(
        identity::conditions_hash(r#"{"v":"caf\u00e9"}"#).unwrap(),
        identity::conditions_hash("{\"v\":\"café\"}").unwrap()
    );
    assert_ne!(
        identity::conditions_hash(r#"{"v":"1"}"#).unwrap(),
        identity::conditions_hash(r#"{"v":1}"#).unwrap()
    );
    // array order is meaningful
    assert_ne!(
        identity::conditions_hash("[1,2]").unwrap(),
        identity::conditions_hash("[2,1]").unwrap()
    );
}

#[test]
fn access_control_identity_format() {
    let conditions = r#"{"a":1}"#;
    let id = AccessControlIdentity::new(conditions, b"data").unwrap();
    let s = id.to_string();
    // sha256("{\"a\":1}") and sha256("data"), computed independently with coreutils sha256sum
    assert_eq!(
        s,
        "lit-accesscontrolcondition://015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862/3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"
    );
    assert_eq!(s.parse::<AccessControlIdentity>().unwrap(), id);
    assert_eq!(id.to_bytes(), s.as_bytes());
    assert!(id.matches_conditions(r#"{ "a" : 1 }"#).unwrap());
    assert!(!id.matches_conditions(r#"{"a":2}"#).unwrap());
    id.verify_plaintext(b"data").unwrap();
    assert_eq!(
        id.verify_plaintext(b"other"),
        Err(IdentityError::DataHashMismatch)
    );
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, format!("\"{s}\""));
    assert_eq!(
        serde_json::from_str::<AccessControlIdentity>(&json).unwrap(),
        id
    );

    let h = "0".repeat(64);
    for bad in [
        format!("lit-accesscontrolcondition://{h}"),
        format!("lit-accesscontrolcondition://{h}/{}", "0".repeat(63)),
        format!("lit-accesscontrolcondition://{h}/{}", "A".repeat(64)),
        format!("lit-accesscontrolcondition://{h}/{h}/"),
        format!("https://{h}/{h}"),
    ] {
        assert!(bad.parse::<AccessControlIdentity>().is_err(), "{bad}");
    }
}

#[test]
fn encrypt_under_conditions_end_to_end() {
    let (mut rng, _) = seeded_rng("conditions", SEED);
    let (set, shares) = network(&mut rng);
    let conditions = r#"[{"chain":"ethereum","method":"","parameters":[":currentActionIpfsId"],"returnValueTest":{"comparator":"=","value":"QmTest"}}]"#;
    let data = b"the launch codes";
    let id = AccessControlIdentity::new(conditions, data).unwrap();
    let ct = ibe::encrypt(&set.public_key(), &id.to_bytes(), data).unwrap();
    // a node would parse the identity, check the conditions hash, then sign
    let parsed: AccessControlIdentity =
        std::str::from_utf8(ct.identity()).unwrap().parse().unwrap();
    assert!(parsed.matches_conditions(conditions).unwrap());
    let key = decryption_key(&set, &shares, ct.identity());
    let plaintext = ibe::decrypt(&ct, &key).unwrap();
    parsed.verify_plaintext(&plaintext).unwrap();
    assert_eq!(plaintext.as_slice(), data);
}

fn infinity_g1() -> [u8; 48] {
    let mut b = [0u8; 48];
    b[0] = 0xc0;
    b
}
