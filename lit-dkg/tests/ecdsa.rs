//! Threshold ECDSA (lit_crypto::ecdsa) driven by the deterministic simulator on root keys made by
//! this crate's DKG, refresh and reshare: PKP public keys survive both and signing keeps
//! working. Every signature is checked by k256 and by libsecp256k1 (C, via the `secp256k1`
//! crate) recovering the expected Ethereum address. `LIT_TEST_SEED` replays a run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use lit_crypto::ecdsa::{
    combine, pkp_public_key, pkp_tweak, sign_share, InMemoryUsedPresignatures, KeyShare,
    MessageDigest, Presign, Presignature, RecoverableSignature, SigningContext, Triple,
    TripleGeneration,
};
use lit_crypto::eth::Address;
use lit_crypto::protocol::{default_threshold, PartyId, ProtocolError};
use lit_crypto::shamir::{self, Commitment};
use lit_dkg::sim::{setup, Crash, Faults, Report, Simulation};
use lit_dkg::{IdentitySecret, KeyGenOutput};

type Secp = k256::ProjectivePoint;
type DkgShares = BTreeMap<PartyId, lit_dkg::KeyShare<Secp>>;

fn ids(list: impl IntoIterator<Item = u32>) -> BTreeSet<PartyId> {
    list.into_iter().filter_map(PartyId::new).collect()
}

fn finished<O>(report: Report<O>, expect: &BTreeSet<PartyId>) -> BTreeMap<PartyId, O> {
    assert!(
        report.outcomes.values().all(|o| o.is_ok()),
        "seed {}: errors {:?}",
        report.seed,
        report.errors()
    );
    let out: BTreeMap<PartyId, O> = report
        .outcomes
        .into_iter()
        .map(|(p, o)| (p, o.unwrap()))
        .collect();
    assert_eq!(&out.keys().copied().collect::<BTreeSet<_>>(), expect);
    out
}

fn key_outputs(report: Report<KeyGenOutput<Secp>>, expect: &BTreeSet<PartyId>) -> DkgShares {
    let everyone: BTreeSet<PartyId> = report.outcomes.keys().copied().collect();
    finished(report, &everyone)
        .into_iter()
        .filter_map(|(p, o)| o.share.map(|s| (p, s)))
        .inspect(|(p, _)| assert!(expect.contains(p)))
        .collect()
}

/// lit-dkg's share (evaluated at x = id, Feldman commitment) is our ECDSA key share as is.
fn ecdsa_keys(shares: &DkgShares) -> BTreeMap<PartyId, KeyShare> {
    shares
        .iter()
        .map(|(p, s)| {
            let commitment = Commitment::from_points(s.public.commitment.clone()).unwrap();
            (*p, KeyShare::new(&s.secret, commitment).unwrap())
        })
        .collect()
}

/// Test-only: the root secret from T shares, to compute the expected address independently.
fn root_secret(shares: &DkgShares) -> k256::Scalar {
    let t = shares.values().next().unwrap().public.threshold;
    let list: Vec<_> = shares.values().map(|s| s.secret.clone()).collect();
    shamir::reconstruct(&list[..t], t).unwrap()
}

/// The Ethereum address of a libsecp256k1 public key (the one derivation, `lit_crypto::eth`).
fn address_of(pk: &secp256k1::PublicKey) -> [u8; 20] {
    let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(&pk.serialize_uncompressed()).unwrap();
    Address::from_public_key(&key).0
}

fn address_of_secret(sk: &k256::Scalar) -> [u8; 20] {
    let secp = secp256k1::Secp256k1::new();
    let sk = secp256k1::SecretKey::from_byte_array(&sk.to_bytes().into()).unwrap();
    address_of(&secp256k1::PublicKey::from_secret_key(&secp, &sk))
}

fn check(sig: &RecoverableSignature, digest: &MessageDigest, expected: [u8; 20]) {
    let secp = secp256k1::Secp256k1::verification_only();
    let msg = secp256k1::Message::from_digest(digest.0);
    let recid = secp256k1::ecdsa::RecoveryId::try_from(i32::from(sig.recovery_id)).unwrap();
    let rsig =
        secp256k1::ecdsa::RecoverableSignature::from_compact(&sig.to_bytes()[..64], recid).unwrap();
    let pk = secp.recover_ecdsa(&msg, &rsig).unwrap();
    secp.verify_ecdsa(&msg, &rsig.to_standard(), &pk).unwrap();
    assert_eq!(address_of(&pk), expected);
    let (k_sig, k_recid) = sig.to_k256().unwrap();
    let vk = k256::ecdsa::VerifyingKey::recover_from_prehash(&digest.0, &k_sig, k_recid).unwrap();
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    vk.verify_prehash(&digest.0, &k_sig).unwrap();
}

fn triples(
    sim: &mut Simulation,
    label: &str,
    set: &BTreeSet<PartyId>,
    t: usize,
) -> BTreeMap<PartyId, Triple> {
    let list: Vec<PartyId> = set.iter().copied().collect();
    let parties: Vec<_> = list
        .iter()
        .map(|&p| {
            (
                p,
                TripleGeneration::new(label.as_bytes(), &list, p, t).unwrap(),
            )
        })
        .collect();
    finished(sim.run(parties), set)
}

fn presignature(
    sim: &mut Simulation,
    label: &str,
    set: &BTreeSet<PartyId>,
    keys: &BTreeMap<PartyId, KeyShare>,
) -> BTreeMap<PartyId, Presignature> {
    let t = keys.values().next().unwrap().threshold();
    let mut t0 = triples(sim, &format!("{label}/0"), set, t);
    let mut t1 = triples(sim, &format!("{label}/1"), set, t);
    let list: Vec<PartyId> = set.iter().copied().collect();
    let parties: Vec<_> = list
        .iter()
        .map(|p| {
            let proto = Presign::new(
                label.as_bytes(),
                &list,
                &keys[p],
                t0.remove(p).unwrap(),
                t1.remove(p).unwrap(),
            )
            .unwrap();
            (*p, proto)
        })
        .collect();
    finished(sim.run(parties), set)
}

/// `signers` sign `message` for PKP `key_id`; the combined signature is checked independently.
fn sign_and_check(
    keys: &BTreeMap<PartyId, KeyShare>,
    mut presig: BTreeMap<PartyId, Presignature>,
    signers: &BTreeSet<PartyId>,
    key_id: &[u8],
    message: &[u8],
    expected: [u8; 20],
) {
    let ctx = SigningContext {
        root_public_key: keys.values().next().unwrap().public_key(),
        key_id: key_id.to_vec(),
        digest: MessageDigest::eip191(message),
    };
    let shares: Vec<_> = signers
        .iter()
        .map(|p| {
            sign_share(
                &keys[p],
                presig.remove(p).unwrap(),
                &ctx,
                &mut InMemoryUsedPresignatures::default(),
            )
            .unwrap()
        })
        .collect();
    check(&combine(&ctx, &shares).unwrap(), &ctx.digest, expected);
}

#[test]
fn pkp_signing_on_dkg_keys_survives_refresh_and_reshare() {
    let mut sim = Simulation::new(2026).with_faults(Faults::benign());
    let mut rng = sim.rng("identities");
    let secrets: BTreeMap<PartyId, IdentitySecret> = setup::identities(ids(1..=6), &mut rng);
    let first = ids(1..=4);
    let members: BTreeMap<_, _> = secrets
        .iter()
        .filter(|(p, _)| first.contains(p))
        .map(|(p, s)| (*p, s.clone()))
        .collect();
    let t = default_threshold(first.len());

    // DKG of the root key
    let parties = setup::dkg::<Secp>("root", 1, &members, t, &mut rng).unwrap();
    let shares = key_outputs(sim.run(parties), &first);
    let public = shares.values().next().unwrap().public.clone();
    let keys = ecdsa_keys(&shares);
    let root = keys[&PartyId::new(1).unwrap()].public_key();
    assert_eq!(Secp::from(root), public.group_key);
    let sk = root_secret(&shares);
    let pkps: Vec<(&[u8], [u8; 20])> = [b"pkp-one".as_slice(), b"pkp-two"]
        .into_iter()
        .map(|id| (id, address_of_secret(&(sk + pkp_tweak(id).unwrap()))))
        .collect();
    let pkp_keys: Vec<_> = pkps
        .iter()
        .map(|(id, _)| pkp_public_key(&root, id).unwrap())
        .collect();

    // a pool of two presignatures for the root key, by two signing groups of T, serves both
    // PKPs (triples, presignature and signature by exactly the group)
    let signers = [ids([1, 2, 4]), ids([2, 3, 4])];
    let pool = [
        presignature(&mut sim, "epoch1/p0", &signers[0], &keys),
        presignature(&mut sim, "epoch1/p1", &signers[1], &keys),
    ];
    for ((presig, set), (key_id, addr)) in pool.into_iter().zip(&signers).zip(&pkps) {
        sign_and_check(&keys, presig, set, key_id, b"epoch 1", *addr);
    }

    // refresh: new shares, same key
    let parties = setup::refresh("root", 2, &members, &shares, &public, &mut rng).unwrap();
    let refreshed = key_outputs(sim.run(parties), &first);
    let public2 = refreshed.values().next().unwrap().public.clone();
    assert_eq!(public2.group_key, public.group_key);
    let keys2 = ecdsa_keys(&refreshed);
    for (i, (key_id, addr)) in pkps.iter().enumerate() {
        assert_eq!(
            pkp_public_key(&keys2[&PartyId::new(1).unwrap()].public_key(), key_id).unwrap(),
            pkp_keys[i]
        );
        let presig = presignature(&mut sim, &format!("epoch2/p{i}"), &ids([1, 3, 4]), &keys2);
        sign_and_check(&keys2, presig, &ids([1, 3, 4]), key_id, b"epoch 2", *addr);
    }

    // reshare from {1,2,3,4} to {2,3,4,5,6} with T' = default_threshold(5)
    let receivers = ids(2..=6);
    let t3 = default_threshold(receivers.len());
    let parties = setup::reshare(
        "root", 3, &secrets, &first, &receivers, t3, &refreshed, &public2, &mut rng,
    )
    .unwrap();
    let reshared = key_outputs(sim.run(parties), &receivers);
    assert_eq!(reshared.len(), receivers.len());
    let keys3 = ecdsa_keys(&reshared);
    assert_eq!(keys3.values().next().unwrap().threshold(), t3);
    for (i, (key_id, addr)) in pkps.iter().enumerate() {
        let root3 = keys3.values().next().unwrap().public_key();
        assert_eq!(pkp_public_key(&root3, key_id).unwrap(), pkp_keys[i]);
        let signers: BTreeSet<PartyId> = receivers.iter().copied().skip(i).take(t3).collect();
        let presig = presignature(&mut sim, &format!("epoch3/p{i}"), &signers, &keys3);
        sign_and_check(&keys3, presig, &signers, key_id, b"epoch 3", *addr);
    }
}

/// A node that crashes and never comes back: the others time out and name it.
#[test]
fn crashed_node_is_named_by_the_triple_protocol() {
    let mut sim = Simulation::new(7).with_faults(Faults {
        crashes: vec![Crash {
            party: PartyId::new(3).unwrap(),
            at_step: 0,
            down_for: u64::MAX / 2,
        }],
        ..Faults::default()
    });
    let list: Vec<PartyId> = ids(1..=3).into_iter().collect();
    let parties: Vec<_> = list
        .iter()
        .map(|&p| (p, TripleGeneration::new(b"crash", &list, p, 2).unwrap()))
        .collect();
    let report = sim.run(parties);
    let errors = report.errors();
    assert!(!errors.is_empty(), "the run cannot finish without party 3");
    for (who, err) in errors {
        assert_ne!(who.get(), 3);
        assert!(matches!(err, ProtocolError::Aborted { .. }), "{err:?}");
        assert_eq!(err.culprits(), vec![PartyId::new(3).unwrap()]);
    }
}

/// Duplicating, delaying, reordering network: duplicates are refused by the session header
/// (naming the sender) before cait-sith sees them, and the run still completes.
#[test]
fn triples_complete_under_duplicates_and_reordering() {
    let mut sim = Simulation::new(11).with_faults(Faults {
        reorder: true,
        duplicate: 0.3,
        delay: 0.3,
        max_delay: 10,
        ..Faults::default()
    });
    let list: Vec<PartyId> = ids(1..=4).into_iter().collect();
    let parties: Vec<_> = list
        .iter()
        .map(|&p| (p, TripleGeneration::new(b"dups", &list, p, 3).unwrap()))
        .collect();
    let report = sim.run(parties);
    assert!(!report.refused.is_empty(), "no duplicate was injected");
    assert!(report
        .refused
        .iter()
        .all(|(_, e)| matches!(e, ProtocolError::Duplicate { .. })));
    let out = finished(report, &ids(1..=4));
    let first = out.values().next().unwrap().commitments();
    assert!(out.values().all(|t| t.commitments() == first));
}
