//! DKG, refresh and reshare end to end in the simulator, checked by independent means
//! (reconstruction of the secret, standard BLS verification).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use lit_dkg::sim::{setup, Crash, Faults, Simulation};
use lit_dkg::*;

fn thresholds(n: usize) -> Vec<usize> {
    let mut t: Vec<usize> = vec![
        1,
        n.div_ceil(2),
        lit_crypto::protocol::default_threshold(n),
        n,
    ];
    t.sort();
    t.dedup();
    t
}

fn dkg_refresh_reshare_all_sizes<G: DkgGroup>(seed: u64) {
    let mut sim = Simulation::new(seed);
    let mut rng = sim.rng("ids");
    for n in 1..=10u32 {
        let secrets = setup::identities(PartyId::range(n + 2), &mut rng);
        let members = ids(1..=n);
        let first: BTreeMap<_, _> = secrets
            .iter()
            .filter(|(p, _)| members.contains(p))
            .map(|(p, s)| (*p, s.clone()))
            .collect();
        for t in thresholds(n as usize) {
            let (shares, public) = dkg::<G>(&mut sim, &first, t);
            assert_eq!(public.threshold, t);
            check_reconstructs(&shares, &public);

            // Refresh: same key, new shares; old and new shares do not combine.
            let mut rng2 = sim.rng("refresh");
            let parties = setup::refresh("root", 2, &first, &shares, &public, &mut rng2).unwrap();
            let report = sim.run(parties);
            let (fresh, public2) = agreed(&report, &members);
            assert_eq!(public2.group_key, public.group_key);
            check_reconstructs(&fresh, &public2);
            if t > 1 {
                assert!(fresh.values().all(|s| s.secret != shares[&s.id()].secret));
                let mut mixed: Vec<_> = fresh
                    .values()
                    .take(t - 1)
                    .map(|s| s.secret.clone())
                    .collect();
                mixed.push(shares.values().last().unwrap().secret.clone());
                let x = lit_crypto::shamir::reconstruct(&mixed, t).unwrap();
                assert_ne!(G::generator() * x, public.group_key);
            }

            // Reshare to a changed membership: drop party 1, add n+1 and n+2.
            let dealers: BTreeSet<_> = members.iter().copied().skip(n as usize - t).collect();
            let receivers: BTreeSet<_> = ids(2..=n + 2);
            let t2 = lit_crypto::protocol::default_threshold(receivers.len());
            let (new, public3) = reshare(
                &mut sim, &secrets, &dealers, &receivers, t2, &fresh, &public2, 3,
            );
            check_reconstructs(&new, &public3);
        }
    }
}

#[test]
fn dkg_refresh_reshare_n1_to_10_secp256k1() {
    dkg_refresh_reshare_all_sizes::<Secp>(11);
}

#[test]
fn dkg_refresh_reshare_n1_to_10_bls12_381() {
    dkg_refresh_reshare_all_sizes::<Bls>(12);
}

/// Signs with threshold BLS (lit-crypto) and verifies with blst's standard verifier.
fn bls_sign_and_verify(
    shares: &BTreeMap<PartyId, KeyShare<Bls>>,
    public: &PublicKeySet<Bls>,
    msg: &[u8],
) {
    use lit_crypto::bls;
    let participants: Vec<PartyId> = public.shares.keys().copied().collect();
    let commitment =
        lit_crypto::shamir::Commitment::from_points(public.commitment.clone()).unwrap();
    let set = bls::PublicKeySet::new(commitment, &participants).unwrap();
    let sig_shares: Vec<_> = shares
        .values()
        .take(public.threshold)
        .map(|s| {
            bls::KeyShare::new(s.secret.clone(), &set)
                .unwrap()
                .sign(msg)
        })
        .collect();
    let sig = set.combine(msg, &sig_shares).unwrap();
    let pk = blst::min_pk::PublicKey::from_bytes(&set.public_key().to_bytes()).unwrap();
    let sig = blst::min_pk::Signature::from_bytes(&sig.to_bytes()).unwrap();
    assert_eq!(
        sig.verify(true, msg, bls::DST, &[], &pk, true),
        blst::BLST_ERROR::BLST_SUCCESS
    );
    use ::group::Curve;
    assert_eq!(pk.to_bytes(), public.group_key.to_affine().to_compressed());
}

#[test]
fn reshare_5_to_7_to_4_to_4_keeps_the_key_bls_signs() {
    let mut sim = Simulation::new(21).with_faults(Faults::benign());
    let mut rng = sim.rng("ids");
    let secrets = setup::identities(PartyId::range(12), &mut rng);
    let pick = |s: &BTreeSet<PartyId>| -> BTreeMap<PartyId, IdentitySecret> {
        secrets
            .iter()
            .filter(|(p, _)| s.contains(p))
            .map(|(p, k)| (*p, k.clone()))
            .collect()
    };
    let a = ids(1..=5);
    let (s0, p0) = dkg::<Bls>(&mut sim, &pick(&a), 4);
    bls_sign_and_verify(&s0, &p0, b"epoch 1");
    // 5 -> 7: members 3..=9 (1 and 2 leave, 6..=9 join); only 4 old members deal.
    let b = ids(3..=9);
    let (s1, p1) = reshare(&mut sim, &secrets, &ids(2..=5), &b, 5, &s0, &p0, 2);
    bls_sign_and_verify(&s1, &p1, b"epoch 2");
    check_reconstructs(&s1, &p1);
    // 7 -> 4: members 6, 7, 10, 11.
    let c: BTreeSet<_> = [6, 7, 10, 11]
        .into_iter()
        .filter_map(PartyId::new)
        .collect();
    let (s2, p2) = reshare(&mut sim, &secrets, &b, &c, 3, &s1, &p1, 3);
    bls_sign_and_verify(&s2, &p2, b"epoch 3");
    // 4 -> 4 with a changed membership: 7 leaves, 12 joins.
    let d: BTreeSet<_> = [6, 10, 11, 12]
        .into_iter()
        .filter_map(PartyId::new)
        .collect();
    let (s3, p3) = reshare(&mut sim, &secrets, &c, &d, 3, &s2, &p2, 4);
    bls_sign_and_verify(&s3, &p3, b"epoch 4");
    check_reconstructs(&s3, &p3);
    assert_eq!(p3.group_key, p0.group_key);
}

#[test]
fn two_reshares_in_a_row_secp256k1_reconstructs_the_same_key() {
    let mut sim = Simulation::new(22);
    let mut rng = sim.rng("ids");
    let secrets = setup::identities(PartyId::range(9), &mut rng);
    let a = ids(1..=5);
    let first: BTreeMap<_, _> = secrets
        .iter()
        .filter(|(p, _)| a.contains(p))
        .map(|(p, k)| (*p, k.clone()))
        .collect();
    let (s0, p0) = dkg::<Secp>(&mut sim, &first, 4);
    let secret0 = lit_crypto::shamir::reconstruct(
        &s0.values().map(|s| s.secret.clone()).collect::<Vec<_>>(),
        4,
    )
    .unwrap();
    let b = ids(3..=9);
    let (s1, p1) = reshare(&mut sim, &secrets, &a, &b, 5, &s0, &p0, 2);
    let c = ids(2..=5);
    let (s2, p2) = reshare(&mut sim, &secrets, &b, &c, 3, &s1, &p1, 3);
    let secret2 = lit_crypto::shamir::reconstruct(
        &s2.values().map(|s| s.secret.clone()).collect::<Vec<_>>(),
        3,
    )
    .unwrap();
    assert_eq!(secret0, secret2);
    assert_eq!(p2.group_key, p0.group_key);
}

#[test]
fn a_bls_and_a_secp256k1_key_in_one_run() {
    let mut sim = Simulation::new(23).with_faults(Faults::benign());
    let mut rng = sim.rng("ids");
    let secrets = setup::identities(PartyId::range(4), &mut rng);
    let bls = setup::dkg::<Bls>("bls-root", 1, &secrets, 3, &mut rng).unwrap();
    let ecdsa = setup::dkg::<Secp>("ecdsa-root", 1, &secrets, 3, &mut rng).unwrap();
    let parties = bls
        .into_iter()
        .zip(ecdsa)
        .map(|((p, a), (_, b))| (p, Joint::new(a, b)));
    let report = sim.run(parties);
    let outs = report.outputs();
    assert_eq!(outs.len(), 4, "{:?}", report.errors());
    let bls_outs: Vec<_> = outs.values().map(|(a, _)| a).collect();
    let ecdsa_outs: Vec<_> = outs.values().map(|(_, b)| b).collect();
    agree_among(&bls_outs);
    agree_among(&ecdsa_outs);
    let bls_shares = outs
        .iter()
        .map(|(p, (a, _))| (*p, a.share.clone().unwrap()))
        .collect();
    bls_sign_and_verify(&bls_shares, &bls_outs[0].public, b"joint");
    let ecdsa_shares = outs
        .iter()
        .map(|(p, (_, b))| (*p, b.share.clone().unwrap()))
        .collect();
    check_reconstructs(&ecdsa_shares, &ecdsa_outs[0].public);
}

#[test]
fn benign_network_reorder_delay_duplicate() {
    for seed in 0..5 {
        let mut sim = Simulation::new(100 + seed).with_faults(Faults::benign());
        let mut rng = sim.rng("ids");
        let secrets = setup::identities(PartyId::range(7), &mut rng);
        let (shares, public) = dkg::<Secp>(&mut sim, &secrets, 5);
        check_reconstructs(&shares, &public);
    }
}

#[test]
fn crash_and_restart_from_persisted_state() {
    for (seed, at) in [(31u64, 3u64), (32, 20), (33, 45), (34, 80)] {
        let mut sim = Simulation::new(seed).with_faults(Faults {
            crashes: vec![
                Crash {
                    party: PartyId::new(2).unwrap(),
                    at_step: at,
                    down_for: 30,
                },
                Crash {
                    party: PartyId::new(5).unwrap(),
                    at_step: at + 7,
                    down_for: 5,
                },
            ],
            ..Faults::benign()
        });
        let mut rng = sim.rng("ids");
        let secrets = setup::identities(PartyId::range(6), &mut rng);
        let parties = setup::dkg::<Bls>("root", 1, &secrets, 4, &mut rng).unwrap();
        let report = sim.run_restartable(parties);
        let (shares, public) = agreed(&report, &ids(1..=6));
        assert!(public.shares.len() == 6 && public.threshold == 4);
        check_reconstructs(&shares, &public);
        // Nobody was disqualified: a restarted party re-sends identical messages.
        assert!(report.outputs().values().all(|o| o.disqualified.is_empty()));
    }
}

#[test]
fn snapshot_restores_an_identical_party() {
    let sim = Simulation::new(41);
    let mut rng = sim.rng("ids");
    let secrets = setup::identities(PartyId::range(3), &mut rng);
    let mut parties = setup::dkg::<Secp>("root", 1, &secrets, 2, &mut rng).unwrap();
    let (p, party) = parties.remove(0);
    let snap = party.snapshot();
    let mut again = KeyGen::<Secp>::restore(&snap).unwrap();
    let mut party = party;
    let (Action::Send(a), Action::Send(b)) = (party.poke().unwrap(), again.poke().unwrap()) else {
        panic!("both send round 1");
    };
    assert_eq!(a, b, "a restarted party must not equivocate");
    assert_eq!(again.me(), p);
    // The restored state is a secret: the snapshot of a different group is refused.
    assert!(KeyGen::<Bls>::restore(&snap).is_err());
    assert!(KeyGen::<Secp>::restore(&snap[..snap.len() - 1]).is_err());
}

#[test]
fn lossy_corrupting_network_never_splits_honest_parties() {
    let mut finished = 0;
    for seed in 0..8u64 {
        let mut sim = Simulation::new(200 + seed).with_faults(Faults {
            drop: 0.02,
            corrupt: 0.03,
            ..Faults::benign()
        });
        let mut rng = sim.rng("ids");
        let secrets = setup::identities(PartyId::range(5), &mut rng);
        let parties = setup::dkg::<Secp>("root", 1, &secrets, 3, &mut rng).unwrap();
        let report = sim.run(parties);
        // Corrupted copies were refused as malformed (or as an equivocation of a private share).
        assert!(report.refused.iter().all(|(_, e)| !e.culprits().is_empty()));
        let outs: Vec<_> = report.outputs().into_values().collect();
        if !outs.is_empty() {
            agree_among(&outs);
            finished += 1;
        }
        for e in report.errors().values() {
            assert!(matches!(e, ProtocolError::Aborted { .. }), "{e}");
        }
    }
    assert!(finished > 0);
}

/// A member removed at a reshare keeps its old share; with `T' - 1` shares of the new epoch it
/// reconstructs nothing (neither the key nor a share consistent with the new sharing), and
/// neither do old and new shares of members who stayed. Only `T'` new shares give the key.
#[test]
fn old_shares_mixed_with_new_ones_give_nothing_after_a_reshare() {
    use lit_crypto::shamir::reconstruct;
    let mut sim = Simulation::new(23).with_faults(Faults::benign());
    let mut rng = sim.rng("ids");
    let secrets = setup::identities(PartyId::range(9), &mut rng);
    let a = ids(1..=5);
    let first: BTreeMap<_, _> = secrets
        .iter()
        .filter(|(p, _)| a.contains(p))
        .map(|(p, k)| (*p, k.clone()))
        .collect();
    let (s0, p0) = dkg::<Bls>(&mut sim, &first, 4);
    // 1 and 2 leave, 6..=9 join: T' = 5
    let b = ids(3..=9);
    let (s1, p1) = reshare(&mut sim, &secrets, &a, &b, 5, &s0, &p0, 2);
    let party = |i: u32| PartyId::new(i).unwrap();
    let key = |shares: Vec<lit_crypto::shamir::SecretShare<_>>| {
        <Bls as ::group::Group>::generator() * reconstruct(&shares, 5).unwrap()
    };
    let new = |i: u32| s1[&party(i)].secret.clone();
    let old = |i: u32| s0[&party(i)].secret.clone();
    assert_eq!(
        key(vec![new(3), new(4), new(5), new(6), new(7)]),
        p0.group_key
    );
    // the removed member 1's share with four new ones
    assert_ne!(
        key(vec![old(1), new(4), new(5), new(6), new(7)]),
        p0.group_key
    );
    // members who stayed, mixing their old and new shares
    assert_ne!(
        key(vec![old(3), old(4), new(5), new(6), new(7)]),
        p0.group_key
    );
    // and the old sharing no longer agrees with the new public shares
    assert_ne!(
        <Bls as ::group::Group>::generator() * old(3).value,
        p1.shares[&party(3)]
    );
}
