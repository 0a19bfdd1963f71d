//! Threshold ECDSA end to end: triples, presignatures, PKP signing, combination, and every
//! bad-input case, each signature checked by k256 *and* by libsecp256k1 (the C library of
//! Bitcoin Core, through the `secp256k1` crate) with Ethereum address recovery.
//!
//! Set `LIT_TEST_SEED=<u64>` to replay a run (the seed drives key dealing and message order;
//! cait-sith draws its own protocol randomness from the OS).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ff::Field;
use k256::{ProjectivePoint, Scalar};
use lit_crypto::ecdsa::{
    combine, pkp_public_key, pkp_tweak, sign_share, EcdsaError, InMemoryUsedPresignatures,
    KeyShare, MessageDigest, Presign, Presignature, RecoverableSignature, SignatureShare,
    SigningContext, Triple, TripleGeneration, HEADER_LEN,
};
use lit_crypto::eth::Address;
use lit_crypto::protocol::{default_threshold, Action, PartyId, Protocol, ProtocolError};
use lit_crypto::shamir::{self, Commitment, SecretShare};
use lit_crypto::testing::seeded_rng;
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore, SeedableRng};
use sha3::{Digest, Keccak256};

// ---------------------------------------------------------------------------------------------
// a small round-robin driver (lit_dkg::sim drives the same objects in lit-dkg/tests/ecdsa.rs)

/// Runs the parties to completion, delivering messages in a random (seeded) order.
fn run<P: Protocol>(
    parties: Vec<(PartyId, P)>,
    rng: &mut ChaCha20Rng,
) -> BTreeMap<PartyId, P::Output> {
    run_from(parties, Vec::new(), rng)
}

/// [`run`], starting with messages `(from, to, bytes)` already in flight.
fn run_from<P: Protocol>(
    parties: Vec<(PartyId, P)>,
    mut queue: Vec<(PartyId, PartyId, Vec<u8>)>,
    rng: &mut ChaCha20Rng,
) -> BTreeMap<PartyId, P::Output> {
    let ids: Vec<PartyId> = parties.iter().map(|(id, _)| *id).collect();
    let mut parties: BTreeMap<PartyId, P> = parties.into_iter().collect();
    let mut out = BTreeMap::new();
    loop {
        let mut progressed = false;
        for id in &ids {
            if out.contains_key(id) {
                continue;
            }
            let party = parties.get_mut(id).unwrap();
            loop {
                match party.poke().unwrap() {
                    Action::Wait => break,
                    Action::Send(msgs) => {
                        progressed = true;
                        for m in msgs {
                            match m.to {
                                Some(to) => queue.push((*id, to, m.bytes)),
                                None => {
                                    for to in ids.iter().filter(|to| *to != id) {
                                        queue.push((*id, *to, m.bytes.clone()));
                                    }
                                }
                            }
                        }
                    }
                    Action::Done(o) => {
                        progressed = true;
                        out.insert(*id, o);
                        break;
                    }
                }
            }
        }
        if out.len() == ids.len() {
            return out;
        }
        for i in (1..queue.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            queue.swap(i, j);
        }
        for (from, to, bytes) in queue.drain(..) {
            progressed = true;
            if let Some(p) = parties.get_mut(&to) {
                if !out.contains_key(&to) {
                    p.message(from, &bytes).unwrap();
                }
            }
        }
        assert!(progressed, "protocol deadlocked");
    }
}

fn ids(range: impl IntoIterator<Item = u32>) -> Vec<PartyId> {
    range
        .into_iter()
        .map(|i| PartyId::new(i).unwrap())
        .collect()
}

/// Trusted-dealer root key (the network uses lit-dkg's DKG; see lit-dkg/tests/ecdsa.rs).
fn deal_key(
    parties: &[PartyId],
    t: usize,
    rng: &mut ChaCha20Rng,
) -> (Scalar, BTreeMap<PartyId, KeyShare>) {
    let (secret, shares, commitment) = deal_raw(parties, t, rng);
    (secret, key_shares(&shares, &commitment))
}

fn deal_raw(
    parties: &[PartyId],
    t: usize,
    rng: &mut ChaCha20Rng,
) -> (
    Scalar,
    Vec<SecretShare<Scalar>>,
    Commitment<ProjectivePoint>,
) {
    let secret = Scalar::random(&mut *rng);
    let (shares, commitment) = shamir::deal::<_, ProjectivePoint>(secret, t, parties, rng).unwrap();
    (secret, shares, commitment)
}

fn key_shares(
    shares: &[SecretShare<Scalar>],
    commitment: &Commitment<ProjectivePoint>,
) -> BTreeMap<PartyId, KeyShare> {
    shares
        .iter()
        .map(|s| (s.id, KeyShare::new(s, commitment.clone()).unwrap()))
        .collect()
}

fn triples(
    label: &str,
    parties: &[PartyId],
    t: usize,
    rng: &mut ChaCha20Rng,
) -> BTreeMap<PartyId, Triple> {
    let protos = parties
        .iter()
        .map(|&p| {
            (
                p,
                TripleGeneration::new(label.as_bytes(), parties, p, t).unwrap(),
            )
        })
        .collect();
    run(protos, rng)
}

/// A presignature among `signers` (a subset of the triple holders).
fn presign(
    label: &str,
    signers: &[PartyId],
    keys: &BTreeMap<PartyId, KeyShare>,
    mut t0: BTreeMap<PartyId, Triple>,
    mut t1: BTreeMap<PartyId, Triple>,
    rng: &mut ChaCha20Rng,
) -> BTreeMap<PartyId, Presignature> {
    let protos = signers
        .iter()
        .map(|p| {
            let proto = Presign::new(
                label.as_bytes(),
                signers,
                &keys[p],
                t0.remove(p).unwrap(),
                t1.remove(p).unwrap(),
            )
            .unwrap();
            (*p, proto)
        })
        .collect();
    run(protos, rng)
}

/// A pool of `count` presignatures among `parties` (triples generated by the same parties).
fn presignature_pool(
    tag: &str,
    parties: &[PartyId],
    keys: &BTreeMap<PartyId, KeyShare>,
    count: usize,
    rng: &mut ChaCha20Rng,
) -> Vec<BTreeMap<PartyId, Presignature>> {
    let t = keys.values().next().unwrap().threshold();
    (0..count)
        .map(|i| {
            let t0 = triples(&format!("{tag}/triple/{i}/0"), parties, t, rng);
            let t1 = triples(&format!("{tag}/triple/{i}/1"), parties, t, rng);
            presign(&format!("{tag}/presign/{i}"), parties, keys, t0, t1, rng)
        })
        .collect()
}

fn context(
    keys: &BTreeMap<PartyId, KeyShare>,
    key_id: &[u8],
    digest: MessageDigest,
) -> SigningContext {
    SigningContext {
        root_public_key: keys.values().next().unwrap().public_key(),
        key_id: key_id.to_vec(),
        digest,
    }
}

/// Signature shares of `signers` with their presignature shares (consumed).
fn shares_of(
    signers: &[PartyId],
    keys: &BTreeMap<PartyId, KeyShare>,
    presig: &mut BTreeMap<PartyId, Presignature>,
    ctx: &SigningContext,
    used: &mut BTreeMap<PartyId, InMemoryUsedPresignatures>,
) -> Vec<SignatureShare> {
    signers
        .iter()
        .map(|p| {
            sign_share(
                &keys[p],
                presig.remove(p).unwrap(),
                ctx,
                used.entry(*p).or_default(),
            )
            .unwrap()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// independent verification: libsecp256k1 (C) computes and recovers the keys; their addresses
// are hashed by `Address::from_public_key`, which `lit_crypto::eth` pins to published vectors

/// The Ethereum address of a libsecp256k1 public key.
fn address_of(pk: &secp256k1::PublicKey) -> Address {
    Address::from_public_key(
        &k256::ecdsa::VerifyingKey::from_sec1_bytes(&pk.serialize_uncompressed()).unwrap(),
    )
}

fn eth_address_from_secret(sk: &Scalar) -> Address {
    let secp = secp256k1::Secp256k1::new();
    let sk = secp256k1::SecretKey::from_byte_array(&sk.to_bytes().into()).unwrap();
    address_of(&secp256k1::PublicKey::from_secret_key(&secp, &sk))
}

fn independently_verify(sig: &RecoverableSignature, digest: &MessageDigest, expected: Address) {
    let secp = secp256k1::Secp256k1::verification_only();
    let msg = secp256k1::Message::from_digest(digest.0);
    let recid = secp256k1::ecdsa::RecoveryId::try_from(i32::from(sig.recovery_id)).unwrap();
    let rsig =
        secp256k1::ecdsa::RecoverableSignature::from_compact(&sig.to_bytes()[..64], recid).unwrap();
    let pk = secp.recover_ecdsa(&msg, &rsig).unwrap();
    // libsecp256k1's verify refuses high s, so this also checks the normalisation
    secp.verify_ecdsa(&msg, &rsig.to_standard(), &pk).unwrap();
    assert_eq!(address_of(&pk), expected, "recovered address differs");
    // and k256's own verifier on the PKP key
    let (k_sig, k_recid) = sig.to_k256().unwrap();
    let vk = k256::ecdsa::VerifyingKey::recover_from_prehash(&digest.0, &k_sig, k_recid).unwrap();
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    vk.verify_prehash(&digest.0, &k_sig).unwrap();
}

// ---------------------------------------------------------------------------------------------

/// For n in 3..=10 with T = ceil(2n/3) (one test per n, so they run in parallel): two PKPs sign
/// from one pool of presignatures made by two different T-subsets of the n nodes (triples
/// generated by the same subsets, as a node pool does per signing group), one EIP-191 message
/// and one raw digest.
fn t_of_n_signing_with_a_shared_presignature_pool(n: u32) {
    let (mut rng, _) = seeded_rng(&format!("t_of_n_signing_n{n}"), OsRng.next_u64());
    let t = default_threshold(n as usize);
    let parties = ids(1..=n);
    let (root_secret, keys) = deal_key(&parties, t, &mut rng);
    let groups = [parties[..t].to_vec(), parties[parties.len() - t..].to_vec()];
    // the pool: one presignature per signing group, all for the root key
    let mut pool: Vec<(Vec<PartyId>, BTreeMap<PartyId, Presignature>)> = groups
        .iter()
        .enumerate()
        .map(|(g, signers)| {
            let mut p = presignature_pool(&format!("n{n}/g{g}"), signers, &keys, 1, &mut rng);
            (signers.clone(), p.pop().unwrap())
        })
        .collect();
    let mut used = BTreeMap::new();
    for (i, key_id) in [b"pkp-alpha".as_slice(), b"pkp-beta"].iter().enumerate() {
        let digest = if i == 0 {
            MessageDigest::eip191(format!("hello from {n} nodes").as_bytes())
        } else {
            MessageDigest::prehashed(Keccak256::digest(b"raw tx").into())
        };
        let ctx = context(&keys, key_id, digest);
        let (signers, mut presig) = pool.pop().unwrap();
        let shares = shares_of(&signers, &keys, &mut presig, &ctx, &mut used);
        let sig = combine(&ctx, &shares).unwrap();
        let pkp_secret = root_secret + pkp_tweak(key_id).unwrap();
        let expected = eth_address_from_secret(&pkp_secret);
        assert_eq!(Address::from_point(&ctx.public_key().unwrap()), expected);
        independently_verify(&sig, &digest, expected);
    }
}

macro_rules! t_of_n_tests {
    ($($name:ident: $n:expr,)*) => {$(
        #[test]
        fn $name() {
            t_of_n_signing_with_a_shared_presignature_pool($n);
        }
    )*};
}

t_of_n_tests! {
    t_of_n_signing_n3: 3,
    t_of_n_signing_n4: 4,
    t_of_n_signing_n5: 5,
    t_of_n_signing_n6: 6,
    t_of_n_signing_n7: 7,
    t_of_n_signing_n8: 8,
    t_of_n_signing_n9: 9,
    t_of_n_signing_n10: 10,
}

/// Refresh: same set, new shares (add a sharing of zero). Reshare: old T-subset deals
/// `λ_j·x_j` to a new set with a new threshold. PKP keys stay, old presignatures are refused.
/// (The real protocols are lit-dkg's; lit-dkg/tests/ecdsa.rs runs this flow on their output.)
#[test]
fn refresh_and_reshare_keep_pkp_keys_and_signing_works() {
    let (mut rng, _) = seeded_rng(
        "refresh_and_reshare_keep_pkp_keys_and_signing_works",
        OsRng.next_u64(),
    );
    let parties = ids(1..=4);
    let (root_secret, shares, commitment) = deal_raw(&parties, 3, &mut rng);
    let keys = key_shares(&shares, &commitment);
    let key_id = b"pkp-refresh";
    let pkp_before = pkp_public_key(&keys[&parties[0]].public_key(), key_id).unwrap();
    let expected = eth_address_from_secret(&(root_secret + pkp_tweak(key_id).unwrap()));
    let mut old_pool = presignature_pool("before", &ids([1, 2, 3]), &keys, 1, &mut rng);

    // refresh
    let (zero_shares, zero_commit) =
        shamir::deal::<_, ProjectivePoint>(Scalar::ZERO, 3, &parties, &mut rng).unwrap();
    let refreshed_shares: Vec<SecretShare<Scalar>> = shares
        .iter()
        .zip(&zero_shares)
        .map(|(s, z)| SecretShare {
            id: s.id,
            value: s.value + z.value,
        })
        .collect();
    let refreshed = key_shares(&refreshed_shares, &commitment.add(&zero_commit));
    assert_ne!(
        refreshed[&parties[0]].fingerprint(),
        keys[&parties[0]].fingerprint()
    );
    let ctx = context(&refreshed, key_id, MessageDigest::eip191(b"after refresh"));
    assert_eq!(ctx.public_key().unwrap(), pkp_before);
    // an old-epoch presignature is refused with the new shares
    let mut old = old_pool.pop().unwrap();
    let err = sign_share(
        &refreshed[&parties[0]],
        old.remove(&parties[0]).unwrap(),
        &ctx,
        &mut InMemoryUsedPresignatures::default(),
    )
    .unwrap_err();
    assert_eq!(err, EcdsaError::KeyMismatch);
    let signers = ids([1, 3, 4]);
    let mut pool = presignature_pool("refreshed", &signers, &refreshed, 1, &mut rng);
    let mut used = BTreeMap::new();
    let shares = shares_of(&signers, &refreshed, &mut pool[0], &ctx, &mut used);
    independently_verify(&combine(&ctx, &shares).unwrap(), &ctx.digest, expected);

    // reshare from {1,2,3} (T = 3) to {3,5,6,7,8} (T' = 4)
    let old_set = ids([1, 2, 3]);
    let new_set = ids([3, 5, 6, 7, 8]);
    let lambdas = shamir::lagrange_coefficients::<Scalar>(&old_set).unwrap();
    let mut new_values: BTreeMap<PartyId, Scalar> = BTreeMap::new();
    let mut new_commit: Option<Commitment<ProjectivePoint>> = None;
    for (j, l) in old_set.iter().zip(lambdas) {
        let x_j = refreshed_shares.iter().find(|s| s.id == *j).unwrap().value;
        let (sub, c) = shamir::deal::<_, ProjectivePoint>(x_j * l, 4, &new_set, &mut rng).unwrap();
        for s in &sub {
            *new_values.entry(s.id).or_insert(Scalar::ZERO) += s.value;
        }
        new_commit = Some(match new_commit {
            None => c,
            Some(acc) => acc.add(&c),
        });
    }
    let reshared_shares: Vec<SecretShare<Scalar>> = new_values
        .iter()
        .map(|(id, v)| SecretShare { id: *id, value: *v })
        .collect();
    let reshared = key_shares(&reshared_shares, &new_commit.unwrap());
    let ctx = context(&reshared, key_id, MessageDigest::prehashed([7u8; 32]));
    assert_eq!(ctx.public_key().unwrap(), pkp_before);
    let signers = ids([3, 5, 7, 8]);
    let mut pool = presignature_pool("reshared", &signers, &reshared, 1, &mut rng);
    let shares = shares_of(&signers, &reshared, &mut pool[0], &ctx, &mut used);
    independently_verify(&combine(&ctx, &shares).unwrap(), &ctx.digest, expected);
}

// ---------------------------------------------------------------------------------------------
// bad input

fn pid(i: u32) -> PartyId {
    PartyId::new(i).unwrap()
}

/// Shares for one message from the group {1, 2, 3} of a 4-node key (T = 3), plus a second
/// presignature of the same group.
struct Fixture {
    keys: BTreeMap<PartyId, KeyShare>,
    ctx: SigningContext,
    shares: Vec<SignatureShare>,
    other: BTreeMap<PartyId, Presignature>,
    expected: Address,
}

fn fixture(rng: &mut ChaCha20Rng) -> Fixture {
    let parties = ids(1..=4);
    let (root, keys) = deal_key(&parties, 3, rng);
    let group = ids([1, 2, 3]);
    let mut pool = presignature_pool("fixture", &group, &keys, 2, rng);
    let key_id = b"pkp-faults";
    let ctx = context(&keys, key_id, MessageDigest::eip191(b"fault tests"));
    let mut used = BTreeMap::new();
    let shares = shares_of(&group, &keys, &mut pool[0], &ctx, &mut used);
    Fixture {
        expected: eth_address_from_secret(&(root + pkp_tweak(key_id).unwrap())),
        keys,
        ctx,
        shares,
        other: pool.pop().unwrap(),
    }
}

#[test]
fn bad_signature_shares_give_typed_errors_naming_the_sender() {
    let (mut rng, _) = seeded_rng(
        "bad_signature_shares_give_typed_errors_naming_the_sender",
        OsRng.next_u64(),
    );
    let Fixture {
        keys,
        ctx,
        shares,
        mut other,
        expected,
    } = fixture(&mut rng);
    // the three honest shares combine
    independently_verify(&combine(&ctx, &shares).unwrap(), &ctx.digest, expected);

    // a corrupted share: detected (the combination never verifies), not attributable
    let mut corrupted = shares.clone();
    corrupted[1].s += Scalar::ONE;
    assert_eq!(
        combine(&ctx, &corrupted),
        Err(EcdsaError::CombinedSignatureInvalid)
    );

    // fewer than T shares
    assert_eq!(
        combine(&ctx, &shares[..2]),
        Err(EcdsaError::NotEnoughShares { needed: 3, got: 2 })
    );
    assert_eq!(
        combine(&ctx, &[]),
        Err(EcdsaError::NotEnoughShares { needed: 2, got: 0 })
    );

    // duplicate sender
    let mut dup = shares.clone();
    dup.push(shares[0].clone());
    assert_eq!(combine(&ctx, &dup), Err(EcdsaError::DuplicateShare(pid(1))));

    // participant outside the presignature's set
    let mut outsider = shares[..2].to_vec();
    let mut fake = shares[2].clone();
    fake.party = pid(9);
    outsider.push(fake);
    let err = combine(&ctx, &outsider).unwrap_err();
    assert_eq!(err, EcdsaError::NotAParticipant(pid(9)));
    assert_eq!(err.culprits(), vec![pid(9)]);

    // wrong presignature: party 3 signs with a share of another presignature
    let mut used = InMemoryUsedPresignatures::default();
    let wrong = sign_share(
        &keys[&pid(3)],
        other.remove(&pid(3)).unwrap(),
        &ctx,
        &mut used,
    )
    .unwrap();
    let mut mixed = shares.clone();
    mixed[2] = wrong;
    assert_eq!(
        combine(&ctx, &mixed),
        Err(EcdsaError::PresignatureMismatch {
            culprits: vec![pid(3)]
        })
    );

    // shares for another message (or PKP) never combine into a signature for this one
    let mut other_msg = ctx.clone();
    other_msg.digest = MessageDigest::eip191(b"something else");
    assert_eq!(
        combine(&other_msg, &shares),
        Err(EcdsaError::CombinedSignatureInvalid)
    );
    let mut other_pkp = ctx.clone();
    other_pkp.key_id = b"another pkp".to_vec();
    assert_eq!(
        combine(&other_pkp, &shares),
        Err(EcdsaError::CombinedSignatureInvalid)
    );

    // a presignature share used with another party's key share is refused
    let err = sign_share(
        &keys[&pid(1)],
        other.remove(&pid(2)).unwrap(),
        &ctx,
        &mut used,
    );
    assert!(
        matches!(err, Err(EcdsaError::InvalidParameters(_))),
        "{err:?}"
    );
}

#[test]
fn reused_presignature_is_refused() {
    let (mut rng, _) = seeded_rng("reused_presignature_is_refused", OsRng.next_u64());
    let parties = ids(1..=3);
    let (_, keys) = deal_key(&parties, 2, &mut rng);
    let mut pool = presignature_pool("reuse", &ids([1, 2]), &keys, 1, &mut rng);
    let presig = pool[0].remove(&pid(1)).unwrap();
    let id = presig.id();
    // the node stores its presignature; a bug or crash could load it twice
    let stored = presig.to_secret_bytes();
    let copy = Presignature::from_secret_bytes(&stored).unwrap();
    assert_eq!(copy.id(), id);
    assert_eq!(copy.big_r(), presig.big_r());
    let ctx = context(&keys, b"pkp", MessageDigest::prehashed([1u8; 32]));
    let mut used = InMemoryUsedPresignatures::default();
    let first = sign_share(&keys[&pid(1)], presig, &ctx, &mut used).unwrap();
    let ctx2 = context(&keys, b"pkp", MessageDigest::prehashed([2u8; 32]));
    assert_eq!(
        sign_share(&keys[&pid(1)], copy, &ctx2, &mut used),
        Err(EcdsaError::PresignatureReused(id))
    );
    // the first share is still good
    let mut used_by_2 = InMemoryUsedPresignatures::default();
    let second = sign_share(
        &keys[&pid(2)],
        pool[0].remove(&pid(2)).unwrap(),
        &ctx,
        &mut used_by_2,
    );
    independently_verify(
        &combine(&ctx, &[first, second.unwrap()]).unwrap(),
        &ctx.digest,
        Address::from_point(&ctx.public_key().unwrap()),
    );
    // malformed stored bytes are refused
    assert!(Presignature::from_secret_bytes(&stored[..stored.len() - 1]).is_err());
    let mut extra = stored.to_vec();
    extra.push(0);
    assert!(Presignature::from_secret_bytes(&extra).is_err());
    let mut bad_point = stored.to_vec();
    let r_at = bad_point.len() - 64 - 33;
    bad_point[r_at] = 0x05;
    assert_eq!(
        Presignature::from_secret_bytes(&bad_point).unwrap_err(),
        EcdsaError::Malformed("point")
    );
}

#[test]
fn protocol_messages_are_checked_before_cait_sith() {
    let (mut rng, _) = seeded_rng(
        "protocol_messages_are_checked_before_cait_sith",
        OsRng.next_u64(),
    );
    let parties = ids(1..=3);
    let new =
        |p: u32, label: &str| TripleGeneration::new(label.as_bytes(), &parties, pid(p), 2).unwrap();
    let mut p1 = new(1, "session A");
    let mut p2 = new(2, "session A");
    let p3 = new(3, "session A");
    let mut foreign = new(1, "session B");
    let Action::Send(msgs) = p1.poke().unwrap() else {
        panic!("expected a message")
    };
    let first = msgs[0].clone();
    assert_eq!(first.to, None);
    assert!(first.bytes.len() > HEADER_LEN);
    let Action::Send(foreign_msgs) = foreign.poke().unwrap() else {
        panic!("expected a message")
    };

    let refused = |r: Result<(), ProtocolError>| r.unwrap_err();
    assert_eq!(
        refused(p2.message(pid(4), &first.bytes)),
        ProtocolError::UnknownSender { from: pid(4) }
    );
    assert_eq!(
        refused(p2.message(pid(2), &first.bytes)),
        ProtocolError::UnknownSender { from: pid(2) }
    );
    assert_eq!(
        refused(p2.message(pid(1), &foreign_msgs[0].bytes)),
        ProtocolError::WrongSession { from: pid(1) }
    );
    assert!(matches!(
        refused(p2.message(pid(1), &first.bytes[..HEADER_LEN - 1])),
        ProtocolError::Malformed { .. }
    ));
    // a message addressed to party 3 delivered to party 2
    let mut misrouted = first.bytes.clone();
    misrouted[38..42].copy_from_slice(&3u32.to_be_bytes());
    assert!(matches!(
        refused(p2.message(pid(1), &misrouted)),
        ProtocolError::Malformed { .. }
    ));
    // the real message is accepted once; again is a duplicate; a different body an equivocation
    p2.message(pid(1), &first.bytes).unwrap();
    assert_eq!(
        refused(p2.message(pid(1), &first.bytes)),
        ProtocolError::Duplicate {
            from: pid(1),
            round: 0
        }
    );
    let mut equivocal = first.bytes.clone();
    *equivocal.last_mut().unwrap() ^= 1;
    assert_eq!(
        refused(p2.message(pid(1), &equivocal)),
        ProtocolError::Equivocation {
            from: pid(1),
            round: 0
        }
    );
    // refused messages left the state intact: the run completes with consistent triples
    let queue = vec![(pid(1), pid(3), first.bytes.clone())];
    let out = run_from(
        vec![(pid(1), p1), (pid(2), p2), (pid(3), p3)],
        queue,
        &mut rng,
    );
    let commitments: Vec<_> = out.values().map(|t| t.commitments()).collect();
    assert!(commitments.windows(2).all(|w| w[0] == w[1]));
    let (a, b, c) = commitments[0];
    assert_ne!(a, b);
    assert_ne!(ProjectivePoint::from(c), ProjectivePoint::IDENTITY);
}

#[test]
fn bad_parameters_are_refused() {
    let parties = ids(1..=3);
    assert_eq!(
        TripleGeneration::new(b"x", &parties, pid(7), 2).unwrap_err(),
        EcdsaError::NotAParticipant(pid(7))
    );
    assert!(matches!(
        TripleGeneration::new(b"x", &ids([1, 2, 2]), pid(1), 2),
        Err(EcdsaError::InvalidParameters(_))
    ));
    assert!(matches!(
        TripleGeneration::new(b"x", &parties, pid(1), 4),
        Err(EcdsaError::InvalidParameters(_))
    ));
    assert!(matches!(
        TripleGeneration::new(b"x", &parties, pid(1), 1),
        Err(EcdsaError::InvalidParameters(_))
    ));
    // a key share that does not match its commitment
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (_, mut shares, commitment) = deal_raw(&parties, 2, &mut rng);
    shares[1].value += Scalar::ONE;
    assert_eq!(
        KeyShare::new(&shares[1], commitment).unwrap_err(),
        EcdsaError::InvalidKeyShare(pid(2))
    );
}

/// Shares dealt at non-contiguous ids (x = 2, 5, 9) work unchanged: our PartyId(i) is
/// cait-sith's Participant(i - 1), both evaluating at x = i.
#[test]
fn identifier_mapping_with_non_contiguous_ids() {
    let (mut rng, _) = seeded_rng(
        "identifier_mapping_with_non_contiguous_ids",
        OsRng.next_u64(),
    );
    let parties = ids([2, 5, 9]);
    let (root, keys) = deal_key(&parties, 2, &mut rng);
    let mut pool = presignature_pool("ids", &ids([2, 9]), &keys, 1, &mut rng);
    let ctx = context(&keys, b"pkp-ids", MessageDigest::eip191(b"ids"));
    let mut used = BTreeMap::new();
    let shares = shares_of(&ids([9, 2]), &keys, &mut pool[0], &ctx, &mut used);
    let expected = eth_address_from_secret(&(root + pkp_tweak(b"pkp-ids").unwrap()));
    independently_verify(&combine(&ctx, &shares).unwrap(), &ctx.digest, expected);
}

#[test]
fn secrets_do_not_print() {
    let (mut rng, _) = seeded_rng("secrets_do_not_print", OsRng.next_u64());
    let parties = ids(1..=2);
    let (_, shares, commitment) = deal_raw(&parties, 2, &mut rng);
    let keys = key_shares(&shares, &commitment);
    let shown = format!("{:?}", keys[&pid(1)]);
    let secret_hex: String = shares[0]
        .value
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        shown.contains("redacted") && !shown.contains(&secret_hex),
        "{shown}"
    );
    let mut pool = presignature_pool("print", &parties, &keys, 1, &mut rng);
    let presig = pool[0].remove(&pid(1)).unwrap();
    let shown = format!("{presig:?}");
    assert!(shown.contains("redacted"), "{shown}");
    let stored = presig.to_secret_bytes();
    let k_hex: String = stored[stored.len() - 64..stored.len() - 32]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!shown.contains(&k_hex));
    let t = triples("print-triple", &parties, 2, &mut rng);
    assert!(format!("{:?}", t[&pid(1)]).contains("redacted"));
}

/// Triples and presignatures survive the node's store (encode, decode) and still work;
/// malformed encodings are refused.
#[test]
fn stored_triples_and_presignatures_round_trip() {
    let (mut rng, _) = seeded_rng(
        "stored_triples_and_presignatures_round_trip",
        OsRng.next_u64(),
    );
    let parties = ids(1..=3);
    let (root, keys) = deal_key(&parties, 2, &mut rng);
    let reload = |m: BTreeMap<PartyId, Triple>| -> BTreeMap<PartyId, Triple> {
        m.into_iter()
            .map(|(p, t)| {
                let bytes = t.to_secret_bytes();
                let back = Triple::from_secret_bytes(&bytes).unwrap();
                assert_eq!(back.id(), t.id());
                assert_eq!(back.commitments(), t.commitments());
                assert_eq!(back.to_secret_bytes(), bytes);
                assert!(Triple::from_secret_bytes(&bytes[..bytes.len() - 1]).is_err());
                (p, back)
            })
            .collect()
    };
    let group = ids([1, 3]);
    let t0 = reload(triples("stored/0", &group, 2, &mut rng));
    let t1 = reload(triples("stored/1", &group, 2, &mut rng));
    let mut presig = presign("stored", &group, &keys, t0, t1, &mut rng);
    let ctx = context(&keys, b"pkp-stored", MessageDigest::eip191(b"stored"));
    let mut used = BTreeMap::new();
    let shares = shares_of(&ids([1, 3]), &keys, &mut presig, &ctx, &mut used);
    let expected = eth_address_from_secret(&(root + pkp_tweak(b"pkp-stored").unwrap()));
    independently_verify(&combine(&ctx, &shares).unwrap(), &ctx.digest, expected);
}

/// A silent party: after the driver's deadline the protocol aborts naming it.
#[test]
fn timeout_names_the_silent_party() {
    let parties = ids(1..=3);
    let mut live: BTreeMap<PartyId, TripleGeneration> = [1, 2]
        .into_iter()
        .map(|p| {
            (
                pid(p),
                TripleGeneration::new(b"silent", &parties, pid(p), 2).unwrap(),
            )
        })
        .collect();
    // party 3 never sends anything; 1 and 2 exchange messages until they are stuck
    loop {
        let mut queue = Vec::new();
        for (id, proto) in live.iter_mut() {
            while let Action::Send(msgs) = proto.poke().unwrap() {
                for m in msgs {
                    queue.push((*id, m));
                }
            }
        }
        if queue.is_empty() {
            break;
        }
        for (from, m) in queue {
            for (to, proto) in live.iter_mut() {
                if *to != from && m.to.is_none_or(|t| t == *to) {
                    proto.message(from, &m.bytes).unwrap();
                }
            }
        }
    }
    let p1 = live.get_mut(&pid(1)).unwrap();
    p1.timeout().unwrap();
    let err = p1.poke().unwrap_err();
    assert!(matches!(err, ProtocolError::Aborted { .. }), "{err:?}");
    assert_eq!(err.culprits(), vec![pid(3)]);
}

/// A presignature is made by exactly T parties from triples of exactly that group: a larger
/// group would let 2T - n colluders use it twice (see `Presign::new`).
#[test]
fn presigning_groups_larger_than_t_are_refused() {
    let (mut rng, _) = seeded_rng(
        "presigning_groups_larger_than_t_are_refused",
        OsRng.next_u64(),
    );
    let parties = ids(1..=3);
    let (_, keys) = deal_key(&parties, 2, &mut rng);
    // triples by all three, presigning by all three: refused
    let mut t0 = triples("big/0", &parties, 2, &mut rng);
    let mut t1 = triples("big/1", &parties, 2, &mut rng);
    let err = Presign::new(
        b"big",
        &parties,
        &keys[&pid(1)],
        t0.remove(&pid(1)).unwrap(),
        t1.remove(&pid(1)).unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, EcdsaError::InvalidParameters(_)), "{err:?}");
    // triples by all three, presigning by two of them: refused too
    let err = Presign::new(
        b"big",
        &ids([2, 3]),
        &keys[&pid(2)],
        t0.remove(&pid(2)).unwrap(),
        t1.remove(&pid(2)).unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, EcdsaError::InvalidParameters(_)), "{err:?}");
    // triples of another group (party 3 holds no share of them)
    let mut t2 = triples("other/0", &ids([1, 2]), 2, &mut rng);
    let mut t3 = triples("other/1", &ids([1, 2]), 2, &mut rng);
    let err = Presign::new(
        b"x",
        &ids([1, 3]),
        &keys[&pid(1)],
        t2.remove(&pid(1)).unwrap(),
        t3.remove(&pid(1)).unwrap(),
    )
    .unwrap_err();
    assert_eq!(err, EcdsaError::NotAParticipant(pid(3)));
}
