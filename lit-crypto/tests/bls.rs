//! Threshold BLS: dealing, signing, share verification, combination and its refusals,
//! encodings, and verification by an independent implementation (`blst::min_pk`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use blstrs::{G1Affine, G2Affine};
use lit_crypto::bls::{
    self, BlsError, KeyShare, PublicKey, PublicKeySet, PublicKeyShare, SecretKey, Signature,
    SignatureShare, DST,
};
use lit_crypto::testing::seeded_rng;
use lit_crypto::PartyId;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// The default seed of the randomized tests (`LIT_TEST_SEED` overrides it).
const SEED: u64 = 20_261_126;

fn ids(n: u32) -> Vec<PartyId> {
    PartyId::range(n).collect()
}

fn pid(n: u32) -> PartyId {
    PartyId::new(n).unwrap()
}

/// Verification by blst's own `min_pk` API (hashing, decoding and pairing done by blst's
/// high-level verifier, not by our blstrs code path).
fn blst_verifies(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(pk) = blst::min_pk::PublicKey::from_bytes(pk) else {
        return false;
    };
    let Ok(sig) = blst::min_pk::Signature::from_bytes(sig) else {
        return false;
    };
    sig.verify(true, msg, DST, &[], &pk, true) == blst::BLST_ERROR::BLST_SUCCESS
}

fn deal(n: u32, t: usize, rng: &mut ChaCha20Rng) -> (SecretKey, PublicKeySet, Vec<KeyShare>) {
    let sk = SecretKey::random(rng);
    let (set, shares) = bls::deal_key_with_trusted_dealer(&sk, t, &ids(n), rng).unwrap();
    (sk, set, shares)
}

#[test]
fn any_t_shares_combine_to_the_plain_signature() {
    let (mut rng, _) = seeded_rng("combine", SEED);
    for (n, t) in [(1u32, 1usize), (2, 2), (3, 2), (5, 3), (7, 5), (10, 7)] {
        let (sk, set, shares) = deal(n, t, &mut rng);
        assert_eq!(set.threshold(), t);
        assert_eq!(set.public_key(), sk.public_key());
        let msg = format!("message for {t}-of-{n}").into_bytes();
        let sig_shares: Vec<SignatureShare> = shares.iter().map(|s| s.sign(&msg)).collect();
        set.verify_shares(&msg, &sig_shares).unwrap();
        for s in &sig_shares {
            set.verify_share(&msg, s).unwrap();
            set.public_key_share(s.id())
                .unwrap()
                .verify(&msg, s)
                .unwrap();
        }
        // every window of t shares, in both orders, and all n shares together
        for start in 0..=(sig_shares.len() - t) {
            let window = &sig_shares[start..start + t];
            let sig = set.combine(&msg, window).unwrap();
            assert_eq!(sig, sk.sign(&msg));
            let mut reversed = window.to_vec();
            reversed.reverse();
            assert_eq!(set.combine(&msg, &reversed).unwrap(), sig);
            assert_eq!(set.combine_unverified(window).unwrap(), sig);
            set.public_key().verify(&msg, &sig).unwrap();
            assert!(blst_verifies(
                &set.public_key().to_bytes(),
                &msg,
                &sig.to_bytes()
            ));
            assert!(!blst_verifies(
                &set.public_key().to_bytes(),
                b"another message",
                &sig.to_bytes()
            ));
        }
        assert_eq!(set.combine(&msg, &sig_shares).unwrap(), sk.sign(&msg));
    }
}

#[test]
fn plain_bls_agrees_with_blst() {
    let (mut rng, _) = seeded_rng("plain", SEED);
    for len in [0usize, 1, 32, 1000] {
        let mut msg = vec![0u8; len];
        rng.fill_bytes(&mut msg);
        let sk = SecretKey::random(&mut rng);
        let ours = sk.sign(&msg);
        // blst signs with the same key and must produce the same bytes
        let theirs = blst::min_pk::SecretKey::from_bytes(sk.to_bytes().as_ref())
            .unwrap()
            .sign(&msg, DST, &[]);
        assert_eq!(ours.to_bytes(), theirs.to_bytes());
        assert_eq!(
            sk.public_key().to_bytes(),
            blst::min_pk::SecretKey::from_bytes(sk.to_bytes().as_ref())
                .unwrap()
                .sk_to_pk()
                .to_bytes()
        );
        sk.public_key().verify(&msg, &ours).unwrap();
        let other = SecretKey::random(&mut rng).sign(&msg);
        assert_eq!(
            sk.public_key().verify(&msg, &other),
            Err(BlsError::InvalidSignature)
        );
    }
}

/// The checked-in vector: re-verified by blst, and re-created from its seed by dealing and
/// combining shares (so the file is both an independent check and a regression snapshot).
#[test]
fn checked_in_vector() {
    let text = include_str!("../testdata/bls_threshold_vector.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let field = |k: &str| v[k].as_str().unwrap().to_owned();
    let pk = hex::decode(field("public_key")).unwrap();
    let msg = hex::decode(field("message")).unwrap();
    let sig = hex::decode(field("signature")).unwrap();
    assert_eq!(field("ciphersuite").as_bytes(), DST);
    assert!(blst_verifies(&pk, &msg, &sig));
    let mut bad = sig.clone();
    bad[95] ^= 1;
    assert!(!blst_verifies(&pk, &msg, &bad));

    let seed = v["seed"].as_u64().unwrap();
    let n = v["n"].as_u64().unwrap() as u32;
    let t = v["threshold"].as_u64().unwrap() as usize;
    let signers: Vec<PartyId> = v["signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| pid(x.as_u64().unwrap() as u32))
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (set, shares) = bls::deal_with_trusted_dealer(t, &ids(n), &mut rng).unwrap();
    assert_eq!(set.public_key().to_bytes().to_vec(), pk);
    let sig_shares: Vec<SignatureShare> = shares
        .iter()
        .filter(|s| signers.contains(&s.id()))
        .map(|s| s.sign(&msg))
        .collect();
    let combined = set.combine(&msg, &sig_shares).unwrap();
    assert_eq!(combined.to_bytes().to_vec(), sig);
}

/// Prints a fresh vector (run with `--ignored --nocapture` to regenerate the test data).
#[test]
#[ignore]
fn print_vector() {
    let seed = 20_261_126u64;
    let (n, t) = (5u32, 3usize);
    let signers = [1u32, 3, 5];
    let msg = b"lit-crypto threshold BLS test vector";
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (set, shares) = bls::deal_with_trusted_dealer(t, &ids(n), &mut rng).unwrap();
    let sig_shares: Vec<SignatureShare> = shares
        .iter()
        .filter(|s| signers.contains(&s.id().get()))
        .map(|s| s.sign(msg))
        .collect();
    let sig = set.combine(msg, &sig_shares).unwrap();
    let v = serde_json::json!({
        "ciphersuite": std::str::from_utf8(DST).unwrap(),
        "seed": seed, "n": n, "threshold": t, "signers": signers,
        "public_key": hex::encode(set.public_key().to_bytes()),
        "message": hex::encode(msg),
        "signature": hex::encode(sig.to_bytes()),
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}

#[test]
fn combination_refuses_structural_faults() {
    let (mut rng, _) = seeded_rng("structural", SEED);
    let (_, set, shares) = deal(6, 4, &mut rng);
    let msg = b"m";
    let sig: Vec<SignatureShare> = shares.iter().map(|s| s.sign(msg)).collect();

    // fewer than T
    assert_eq!(
        set.combine(msg, &sig[..3]),
        Err(BlsError::NotEnoughShares { needed: 4, got: 3 })
    );
    assert_eq!(
        set.combine_unverified(&sig[..3]),
        Err(BlsError::NotEnoughShares { needed: 4, got: 3 })
    );
    assert_eq!(
        set.combine_robust(msg, &[]),
        Err(BlsError::NotEnoughShares { needed: 4, got: 0 })
    );

    // duplicate identifier (the same share twice makes up the count)
    let dup = [sig[0], sig[1], sig[2], sig[1]];
    assert_eq!(set.combine(msg, &dup), Err(BlsError::DuplicateId(pid(2))));
    assert_eq!(set.combine(msg, &dup).unwrap_err().culprits(), vec![pid(2)]);

    // a share of another key set
    let (_, _, other_shares) = deal(6, 4, &mut rng);
    let foreign = [sig[0], sig[1], sig[2], other_shares[4].sign(msg)];
    assert_eq!(
        set.combine(msg, &foreign),
        Err(BlsError::ForeignShare(pid(5)))
    );
    assert_eq!(
        set.verify_shares(msg, &foreign),
        Err(BlsError::ForeignShare(pid(5)))
    );
    assert_eq!(
        set.verify_share(msg, &other_shares[4].sign(msg)),
        Err(BlsError::ForeignShare(pid(5)))
    );

    // a party outside the set: same polynomial, but P6 is not a participant of `smaller`
    let smaller = PublicKeySet::new(set.commitment().clone(), &ids(5)).unwrap();
    assert_eq!(smaller.id(), set.id());
    assert_eq!(
        smaller.combine(msg, &sig[2..]),
        Err(BlsError::UnknownParty(pid(6)))
    );
    assert!(smaller.public_key_share(pid(6)).is_err());
    // ...while the other five still combine in it
    smaller.combine(msg, &sig[..4]).unwrap();
}

#[test]
fn invalid_shares_are_named() {
    let (mut rng, _) = seeded_rng("invalid", SEED);
    let (sk, set, shares) = deal(7, 5, &mut rng);
    let msg = b"the message";
    let mut sig: Vec<SignatureShare> = shares.iter().map(|s| s.sign(msg)).collect();
    // P3 and P6 sign something else: well-formed shares of this set that do not verify
    sig[2] = shares[2].sign(b"not the message");
    sig[5] = shares[5].sign(b"not the message either");

    assert_eq!(
        set.verify_share(msg, &sig[2]),
        Err(BlsError::InvalidShares {
            culprits: vec![pid(3)]
        })
    );
    let err = set.combine(msg, &sig).unwrap_err();
    assert_eq!(
        err,
        BlsError::InvalidShares {
            culprits: vec![pid(3), pid(6)]
        }
    );
    assert_eq!(err.culprits(), vec![pid(3), pid(6)]);
    // batch verification finds the same culprits, and accepts the valid ones
    assert_eq!(set.verify_shares(msg, &sig), Err(err.clone()));
    set.verify_shares(msg, &[sig[0], sig[1], sig[3], sig[4], sig[6]])
        .unwrap();
    set.verify_shares(msg, &[]).unwrap();
    // exactly T shares with one bad
    assert_eq!(
        set.combine(msg, &sig[..5]),
        Err(BlsError::InvalidShares {
            culprits: vec![pid(3)]
        })
    );
    // combine_unverified does not notice: the result simply does not verify
    let garbage = set.combine_unverified(&sig[..5]).unwrap();
    assert!(set.public_key().verify(msg, &garbage).is_err());

    // robust combination drops the bad shares when T good ones remain
    let (good, culprits) = set.combine_robust(msg, &sig).unwrap();
    assert_eq!(good, sk.sign(msg));
    assert_eq!(culprits, vec![pid(3), pid(6)]);
    // ...and refuses, naming them, when fewer than T remain
    assert_eq!(
        set.combine_robust(msg, &sig[..6]),
        Err(BlsError::TooManyInvalidShares {
            needed: 5,
            valid: 4,
            culprits: vec![pid(3), pid(6)]
        })
    );
    // a share bound to another participant's id (copied point, forged header) is caught too
    let mut forged = sig[0].to_bytes();
    forged[32..36].copy_from_slice(&3u32.to_be_bytes());
    let forged = SignatureShare::from_bytes(&forged).unwrap();
    let set_of = [sig[0], sig[1], forged, sig[3], sig[4]];
    assert_eq!(
        set.combine(msg, &set_of),
        Err(BlsError::InvalidShares {
            culprits: vec![pid(3)]
        })
    );
}

#[test]
fn key_shares_are_checked_against_the_set() {
    let (mut rng, _) = seeded_rng("keyshares", SEED);
    let (_, set, shares) = deal(4, 3, &mut rng);
    for s in &shares {
        set.check_key_share(s).unwrap();
        assert_eq!(s.public_key_share(), set.public_key_share(s.id()).unwrap());
        let back = KeyShare::from_bytes(&s.to_bytes()).unwrap();
        set.check_key_share(&back).unwrap();
        assert_eq!(back.sign(b"x"), s.sign(b"x"));
    }
    let mut bytes = shares[1].to_bytes().to_vec();
    bytes[67] ^= 1; // change the scalar
    let wrong = KeyShare::from_bytes(&bytes).unwrap();
    assert_eq!(
        set.check_key_share(&wrong),
        Err(BlsError::KeyShareMismatch(pid(2)))
    );
    let (_, other, _) = deal(4, 3, &mut rng);
    assert_eq!(
        other.check_key_share(&shares[0]),
        Err(BlsError::ForeignShare(pid(1)))
    );
    // secrets never print
    let shown = format!("{:?} {:?}", shares[0], SecretKey::random(&mut rng));
    assert!(shown.contains("redacted"), "{shown}");
    assert!(!shown.contains(&hex::encode(&shares[0].to_bytes()[36..])));
}

#[test]
fn key_set_parameters_are_checked() {
    let (mut rng, _) = seeded_rng("params", SEED);
    assert!(bls::deal_with_trusted_dealer(4, &ids(3), &mut rng).is_err());
    assert!(bls::deal_with_trusted_dealer(0, &ids(3), &mut rng).is_err());
    let (_, set, _) = deal(4, 3, &mut rng);
    assert_eq!(
        PublicKeySet::new(set.commitment().clone(), &ids(2)),
        Err(BlsError::InvalidKeySet("threshold exceeds participants"))
    );
    assert_eq!(
        PublicKeySet::new(set.commitment().clone(), &[pid(1), pid(2), pid(1)]),
        Err(BlsError::DuplicateId(pid(1)))
    );
}

// ---------------------------------------------------------------------------------------------
// Encodings
// ---------------------------------------------------------------------------------------------

fn json_roundtrip<T>(value: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let json = serde_json::to_string(value).unwrap();
    assert!(
        json.starts_with('"') && json.ends_with('"'),
        "hex string: {json}"
    );
    serde_json::from_str(&json).unwrap()
}

#[test]
fn every_public_type_roundtrips() {
    let (mut rng, _) = seeded_rng("roundtrip", SEED);
    let (_, set, shares) = deal(5, 3, &mut rng);
    let msg = b"roundtrip";
    let share = shares[3].sign(msg);
    let pks = set.public_key_share(pid(2)).unwrap();
    let sig = set
        .combine(msg, &shares.iter().map(|s| s.sign(msg)).collect::<Vec<_>>())
        .unwrap();
    let pk = set.public_key();

    assert_eq!(PublicKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
    assert_eq!(json_roundtrip(&pk), pk);
    assert_eq!(Signature::from_bytes(&sig.to_bytes()).unwrap(), sig);
    assert_eq!(json_roundtrip(&sig), sig);
    assert_eq!(
        SignatureShare::from_bytes(&share.to_bytes()).unwrap(),
        share
    );
    assert_eq!(json_roundtrip(&share), share);
    assert_eq!(PublicKeyShare::from_bytes(&pks.to_bytes()).unwrap(), pks);
    assert_eq!(json_roundtrip(&pks), pks);
    assert_eq!(PublicKeySet::from_bytes(&set.to_bytes()).unwrap(), set);
    assert_eq!(json_roundtrip(&set), set);
    assert_eq!(json_roundtrip(&set.id()), set.id());
    let sk = SecretKey::random(&mut rng);
    assert_eq!(
        SecretKey::from_bytes(sk.to_bytes().as_ref())
            .unwrap()
            .public_key(),
        sk.public_key()
    );
    // the hex is the byte encoding
    assert_eq!(
        serde_json::to_string(&pk).unwrap(),
        format!("\"{}\"", hex::encode(pk.to_bytes()))
    );
}

#[test]
fn malformed_encodings_are_refused() {
    let (mut rng, _) = seeded_rng("malformed", SEED);
    let (_, set, shares) = deal(5, 3, &mut rng);
    let share = shares[0].sign(b"m").to_bytes();
    let pks = set.public_key_share(pid(1)).unwrap().to_bytes();

    // lengths
    for len in [0usize, 1, 47, 49, 96] {
        assert!(PublicKey::from_bytes(&vec![0u8; len]).is_err());
    }
    assert!(Signature::from_bytes(&share[36..131]).is_err());
    assert!(SignatureShare::from_bytes(&share[..131]).is_err());
    assert!(PublicKeyShare::from_bytes(&pks[1..]).is_err());
    assert!(KeyShare::from_bytes(&shares[0].to_bytes()[..67]).is_err());
    assert!(SecretKey::from_bytes(&[0u8; 32]).is_err());
    assert!(SecretKey::from_bytes(&[0xffu8; 32]).is_err()); // not canonical

    // zero identifier
    let mut zero = share;
    zero[32..36].copy_from_slice(&[0, 0, 0, 0]);
    assert_eq!(SignatureShare::from_bytes(&zero), Err(BlsError::ZeroId));
    let mut zero = pks;
    zero[32..36].copy_from_slice(&[0, 0, 0, 0]);
    assert_eq!(PublicKeyShare::from_bytes(&zero), Err(BlsError::ZeroId));
    let mut set_bytes = set.to_bytes();
    set_bytes[4..8].copy_from_slice(&[0, 0, 0, 0]);
    assert_eq!(PublicKeySet::from_bytes(&set_bytes), Err(BlsError::ZeroId));
    let mut ks = shares[0].to_bytes().to_vec();
    ks[32..36].copy_from_slice(&[0, 0, 0, 0]);
    assert_eq!(KeyShare::from_bytes(&ks).unwrap_err(), BlsError::ZeroId);

    // points at infinity
    let mut inf_g1 = [0u8; 48];
    inf_g1[0] = 0xc0;
    let mut inf_g2 = [0u8; 96];
    inf_g2[0] = 0xc0;
    assert!(matches!(
        PublicKey::from_bytes(&inf_g1),
        Err(BlsError::Malformed {
            reason: "point at infinity",
            ..
        })
    ));
    assert!(matches!(
        Signature::from_bytes(&inf_g2),
        Err(BlsError::Malformed {
            reason: "point at infinity",
            ..
        })
    ));
    let mut inf_share = share;
    inf_share[36..].copy_from_slice(&inf_g2);
    assert!(matches!(
        SignatureShare::from_bytes(&inf_share),
        Err(BlsError::Malformed {
            reason: "point at infinity",
            ..
        })
    ));

    // points on the curve but outside the prime-order subgroup
    let g1_bad = non_subgroup_g1(&mut rng);
    let g2_bad = non_subgroup_g2(&mut rng);
    assert!(matches!(
        PublicKey::from_bytes(&g1_bad),
        Err(BlsError::Malformed {
            reason: "not a point of the G1 subgroup",
            ..
        })
    ));
    assert!(matches!(
        Signature::from_bytes(&g2_bad),
        Err(BlsError::Malformed {
            reason: "not a point of the G2 subgroup",
            ..
        })
    ));
    let mut bad_share = share;
    bad_share[36..].copy_from_slice(&g2_bad);
    assert!(matches!(
        SignatureShare::from_bytes(&bad_share),
        Err(BlsError::Malformed {
            reason: "not a point of the G2 subgroup",
            ..
        })
    ));
    let mut bad_pks = pks;
    bad_pks[36..].copy_from_slice(&g1_bad);
    assert!(PublicKeyShare::from_bytes(&bad_pks).is_err());
    let mut bad_set = set.to_bytes();
    let at = bad_set.len() - 48;
    bad_set[at..].copy_from_slice(&g1_bad);
    assert!(PublicKeySet::from_bytes(&bad_set).is_err());

    // public key sets: truncated, non-increasing ids, ragged commitment
    let bytes = set.to_bytes();
    for cut in [0usize, 3, 4, 10, 24, bytes.len() - 1] {
        assert!(
            PublicKeySet::from_bytes(&bytes[..cut]).is_err(),
            "cut {cut}"
        );
    }
    let mut swapped = bytes.clone();
    swapped[4..8].copy_from_slice(&2u32.to_be_bytes());
    swapped[8..12].copy_from_slice(&1u32.to_be_bytes());
    assert!(PublicKeySet::from_bytes(&swapped).is_err());
    let mut huge = bytes.clone();
    huge[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(PublicKeySet::from_bytes(&huge).is_err());

    // serde: bad hex, wrong type
    assert!(serde_json::from_str::<PublicKey>("\"zz\"").is_err());
    assert!(serde_json::from_str::<PublicKey>("\"00\"").is_err());
    assert!(serde_json::from_str::<Signature>("42").is_err());
    assert!(serde_json::from_str::<SignatureShare>(&format!(
        "\"{}\"",
        hex::encode(zero_id_share(&share))
    ))
    .is_err());
}

fn zero_id_share(share: &[u8; bls::SIGNATURE_SHARE_LEN]) -> Vec<u8> {
    let mut v = share.to_vec();
    v[32..36].copy_from_slice(&[0, 0, 0, 0]);
    v
}

/// A compressed G1 point on the curve but (with overwhelming probability) not in the
/// prime-order subgroup, found by trying random x coordinates.
fn non_subgroup_g1(rng: &mut ChaCha20Rng) -> [u8; 48] {
    loop {
        let mut b = [0u8; 48];
        rng.fill_bytes(&mut b);
        b[0] = (b[0] & 0x1f) | 0x80; // compressed, not infinity
        let on_curve: Option<G1Affine> = G1Affine::from_compressed_unchecked(&b).into();
        if on_curve.is_some() && bool::from(G1Affine::from_compressed(&b).is_none()) {
            return b;
        }
    }
}

/// As [`non_subgroup_g1`], in G2.
fn non_subgroup_g2(rng: &mut ChaCha20Rng) -> [u8; 96] {
    loop {
        let mut b = [0u8; 96];
        rng.fill_bytes(&mut b);
        b[0] = (b[0] & 0x1f) | 0x80;
        b[48] &= 0x1f;
        let on_curve: Option<G2Affine> = G2Affine::from_compressed_unchecked(&b).into();
        if on_curve.is_some() && bool::from(G2Affine::from_compressed(&b).is_none()) {
            return b;
        }
    }
}
