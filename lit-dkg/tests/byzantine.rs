//! Byzantine dealers: each misbehaviour is detected, the culprit is named, and the honest
//! parties agree (on an output without the culprit, or on aborting with it named).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use lit_dkg::byzantine::{Behaviour, Byzantine};
use lit_dkg::sim::{setup, Faults, Report, Simulation};
use lit_dkg::*;

type Out<G> = KeyGenOutput<G>;

/// Runs a DKG among `n` parties where `bad` misbehave as given.
fn run<G: DkgGroup>(
    seed: u64,
    n: u32,
    t: usize,
    bad: &BTreeMap<PartyId, Behaviour>,
    faults: Faults,
) -> Report<Out<G>> {
    let mut sim = Simulation::new(seed).with_faults(faults);
    let mut rng = sim.rng("ids");
    let secrets = setup::identities(PartyId::range(n), &mut rng);
    let parties = setup::dkg::<G>("root", 1, &secrets, t, &mut rng).unwrap();
    let boxed = parties
        .into_iter()
        .map(|(p, k)| {
            let b: Box<dyn Protocol<Output = Out<G>>> = match bad.get(&p) {
                Some(behaviour) => Box::new(Byzantine::new(
                    k,
                    behaviour.clone(),
                    seed ^ u64::from(p.get()),
                )),
                None => Box::new(k),
            };
            (p, b)
        })
        .collect();
    sim.run_boxed(boxed)
}

fn honest(n: u32, bad: &BTreeMap<PartyId, Behaviour>) -> BTreeSet<PartyId> {
    PartyId::range(n).filter(|p| !bad.contains_key(p)).collect()
}

/// All honest parties finish, agree, exclude exactly the culprits and name them.
fn assert_excluded<G: DkgGroup>(
    report: &Report<Out<G>>,
    n: u32,
    bad: &BTreeMap<PartyId, Behaviour>,
) -> Vec<Fault> {
    let honest = honest(n, bad);
    let outs: Vec<&Out<G>> = honest
        .iter()
        .map(|p| match report.outcomes.get(p) {
            Some(Ok(o)) => o,
            other => panic!("honest {p} did not finish: {other:?}"),
        })
        .collect();
    agree_among(&outs);
    let culprits: BTreeSet<PartyId> = bad.keys().copied().collect();
    let mut seen = Vec::new();
    for o in &outs {
        assert_eq!(o.disqualified, culprits);
        assert_eq!(o.qualified, honest);
        for c in &culprits {
            let f = o
                .faults
                .get(c)
                .unwrap_or_else(|| panic!("culprit {c} not named"));
            seen.extend(f.iter().cloned());
        }
        for h in &honest {
            assert!(
                !o.faults.contains_key(h),
                "honest {h} blamed: {:?}",
                o.faults.get(h)
            );
        }
    }
    // The honest shares reconstruct the key.
    let shares: BTreeMap<PartyId, KeyShare<G>> = honest
        .iter()
        .map(|p| {
            (
                *p,
                outs[0]
                    .share
                    .clone()
                    .map(|_| ())
                    .and(report.outputs()[p].share.clone())
                    .unwrap(),
            )
        })
        .collect();
    let public = &outs[0].public;
    let list: Vec<_> = shares.values().map(|s| s.secret.clone()).collect();
    let x = lit_crypto::shamir::reconstruct(&list, public.threshold).unwrap();
    assert_eq!(G::generator() * x, public.group_key);
    seen
}

/// All honest parties abort and name exactly `culprit`.
fn assert_all_abort_naming<G: DkgGroup>(
    report: &Report<Out<G>>,
    n: u32,
    bad: &BTreeMap<PartyId, Behaviour>,
) {
    let culprits: Vec<PartyId> = bad.keys().copied().collect();
    for p in honest(n, bad) {
        match report.outcomes.get(&p) {
            Some(Err(e)) => assert_eq!(e.culprits(), culprits, "{p}: {e}"),
            other => panic!("honest {p} should abort naming {culprits:?}: {other:?}"),
        }
    }
}

fn one(p: u32, b: Behaviour) -> BTreeMap<PartyId, Behaviour> {
    [(PartyId::new(p).unwrap(), b)].into_iter().collect()
}

fn victim(p: u32) -> PartyId {
    PartyId::new(p).unwrap()
}

#[test]
fn bad_share_to_one_victim_is_disqualified_by_everyone() {
    let bad = one(3, Behaviour::BadShareTo(victim(5)));
    let r = run::<Secp>(1, 7, 5, &bad, Faults::benign());
    let seen = assert_excluded(&r, 7, &bad);
    assert!(
        seen.contains(&Fault::Unjustified {
            complainers: vec![victim(5)]
        }),
        "{seen:?}"
    );
    let r = run::<Bls>(2, 5, 3, &bad, Faults::default());
    assert_excluded(&r, 5, &bad);
}

#[test]
fn inconsistent_commitment_is_disqualified() {
    let bad = one(1, Behaviour::InconsistentCommitment);
    let r = run::<Bls>(3, 6, 4, &bad, Faults::benign());
    let seen = assert_excluded(&r, 6, &bad);
    assert!(
        seen.iter()
            .any(|f| matches!(f, Fault::Unjustified { .. } | Fault::Equivocation { .. })),
        "{seen:?}"
    );
    let r = run::<Secp>(4, 4, 3, &bad, Faults::default());
    assert_excluded(&r, 4, &bad);
}

#[test]
fn equivocating_commitments_are_proven_and_disqualified() {
    let bad = one(
        2,
        Behaviour::Equivocate([victim(4), victim(5)].into_iter().collect()),
    );
    let r = run::<Secp>(5, 7, 5, &bad, Faults::benign());
    let seen = assert_excluded(&r, 7, &bad);
    assert!(seen.contains(&Fault::Equivocation { round: 1 }), "{seen:?}");
    let r = run::<Bls>(6, 4, 3, &bad, Faults::default());
    let seen = assert_excluded(&r, 4, &bad);
    assert!(seen.contains(&Fault::Equivocation { round: 1 }), "{seen:?}");
}

#[test]
fn silent_dealer_is_excluded_after_its_round() {
    let bad = one(4, Behaviour::Silent);
    let r = run::<Secp>(7, 6, 4, &bad, Faults::benign());
    let seen = assert_excluded(&r, 6, &bad);
    assert!(seen.contains(&Fault::Silent { round: 1 }), "{seen:?}");
    assert!(r.timeouts > 0);
}

#[test]
fn garbage_sender_is_refused_and_excluded() {
    let bad = one(1, Behaviour::Garbage);
    let r = run::<Bls>(8, 5, 3, &bad, Faults::benign());
    assert_excluded(&r, 5, &bad);
    // Garbage was refused as malformed, naming its sender.
    let from_garbage: Vec<_> = r
        .refused
        .iter()
        .filter(|(_, e)| e.culprits() == vec![victim(1)])
        .collect();
    assert!(from_garbage.len() >= 4 * 4, "{:?}", r.refused);
    assert!(from_garbage
        .iter()
        .all(|(_, e)| matches!(e, ProtocolError::Malformed { .. })));
}

#[test]
fn withholding_from_one_party_aborts_everyone_naming_the_withholder() {
    let bad = one(2, Behaviour::WithholdFrom(victim(6)));
    let r = run::<Secp>(9, 6, 4, &bad, Faults::benign());
    assert_all_abort_naming(&r, 6, &bad);
}

#[test]
fn two_byzantine_dealers_at_once() {
    let mut bad = one(1, Behaviour::BadShareTo(victim(7)));
    bad.insert(
        victim(9),
        Behaviour::Equivocate([victim(2)].into_iter().collect()),
    );
    bad.insert(victim(4), Behaviour::Silent);
    let r = run::<Secp>(10, 10, 7, &bad, Faults::benign());
    assert_excluded(&r, 10, &bad);
}

#[test]
fn too_many_faulty_dealers_abort_naming_them() {
    let mut bad = one(1, Behaviour::Silent);
    bad.insert(victim(2), Behaviour::InconsistentCommitment);
    // n = 4, T = 3: two faulty dealers leave only 2 < T qualified.
    let r = run::<Secp>(11, 4, 3, &bad, Faults::default());
    for p in honest(4, &bad) {
        match r.outcomes.get(&p) {
            Some(Err(e)) => assert_eq!(e.culprits(), vec![victim(1), victim(2)]),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn reshare_with_a_byzantine_old_member() {
    let mut sim = Simulation::new(12).with_faults(Faults::benign());
    let mut rng = sim.rng("ids");
    let secrets = setup::identities(PartyId::range(8), &mut rng);
    let first: BTreeMap<_, _> = secrets
        .iter()
        .take(5)
        .map(|(p, k)| (*p, k.clone()))
        .collect();
    let (shares, public) = dkg::<Secp>(&mut sim, &first, 3);
    let dealers = ids(1..=5);
    let receivers = ids(3..=8);
    let parties = setup::reshare(
        "root", 2, &secrets, &dealers, &receivers, 4, &shares, &public, &mut rng,
    )
    .unwrap();
    let boxed = parties
        .into_iter()
        .map(|(p, k)| {
            let b: Box<dyn Protocol<Output = Out<Secp>>> = if p.get() == 2 {
                Box::new(Byzantine::new(k, Behaviour::BadShareTo(victim(7)), 5))
            } else {
                Box::new(k)
            };
            (p, b)
        })
        .collect::<Vec<_>>();
    let r = sim.run_boxed(boxed);
    let outs: Vec<_> = ids(1..=8)
        .into_iter()
        .filter(|p| p.get() != 2)
        .map(|p| r.outcomes[&p].as_ref().unwrap())
        .collect();
    agree_among(&outs);
    assert_eq!(outs[0].disqualified, [victim(2)].into_iter().collect());
    assert_eq!(outs[0].public.group_key, public.group_key);
    let new: BTreeMap<_, _> = outs
        .iter()
        .filter_map(|o| o.share.clone().map(|s| (s.id(), s)))
        .collect();
    check_reconstructs(&new, &outs[0].public);
}

/// A dealer that lost its old share (its node missed the previous handover) takes part as a
/// receiver only: it deals nothing, every party disqualifies it as a silent dealer, and it ends
/// with a share of the same key like the others.
#[test]
fn a_dealer_without_its_old_share_takes_part_as_a_receiver() {
    let mut sim = Simulation::new(14).with_faults(Faults::benign());
    let mut rng = sim.rng("ids");
    let secrets = setup::identities(PartyId::range(6), &mut rng);
    let first: BTreeMap<_, _> = secrets
        .iter()
        .take(5)
        .map(|(p, k)| (*p, k.clone()))
        .collect();
    let (mut shares, public) = dkg::<Secp>(&mut sim, &first, 3);
    shares.remove(&victim(2));
    let parties = setup::reshare(
        "root",
        2,
        &secrets,
        &ids(1..=5),
        &ids(1..=6),
        4,
        &shares,
        &public,
        &mut rng,
    )
    .unwrap();
    let r = sim.run(parties);
    let outs: Vec<_> = ids(1..=6)
        .into_iter()
        .map(|p| r.outcomes[&p].as_ref().unwrap())
        .collect();
    agree_among(&outs);
    assert_eq!(outs[0].disqualified, [victim(2)].into_iter().collect());
    assert_eq!(outs[0].public.group_key, public.group_key);
    let new: BTreeMap<_, _> = outs
        .iter()
        .filter_map(|o| o.share.clone().map(|s| (s.id(), s)))
        .collect();
    assert!(new.contains_key(&victim(2)));
    check_reconstructs(&new, &outs[0].public);
}

/// A party that only deals (it leaves at this reshare) still needs its old share.
#[test]
fn a_leaving_dealer_without_its_old_share_is_refused() {
    let mut sim = Simulation::new(15).with_faults(Faults::benign());
    let mut rng = sim.rng("ids");
    let secrets = setup::identities(PartyId::range(5), &mut rng);
    let (mut shares, public) = dkg::<Secp>(&mut sim, &secrets, 3);
    shares.remove(&victim(1));
    let err = setup::reshare(
        "root",
        2,
        &secrets,
        &ids(1..=5),
        &ids(2..=5),
        3,
        &shares,
        &public,
        &mut rng,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("needs its old share"), "{err}");
}
