//! Property tests over random sizes, thresholds and faulty sets within the tolerated bounds:
//! at most `min(n - T, T - 1)` faulty dealers (enough honest ones to reach `T`, too few faulty
//! ones to learn the key).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use lit_dkg::byzantine::{Behaviour, Byzantine};
use lit_dkg::sim::{setup, Faults, Simulation};
use lit_dkg::*;
use proptest::prelude::*;

/// A misbehaviour; its victim is honest (misbehaving only towards other faulty parties is
/// invisible to the honest ones, and harmless).
fn behaviour(kind: u8, other: PartyId) -> Behaviour {
    match kind % 5 {
        0 => Behaviour::BadShareTo(other),
        1 => Behaviour::InconsistentCommitment,
        2 => Behaviour::Equivocate([other].into_iter().collect()),
        3 => Behaviour::Silent,
        _ => Behaviour::Garbage,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn dkg_with_faulty_dealers_excludes_exactly_them(
        n in 2u32..=8,
        t_frac in 0.0f64..1.0,
        faulty_seed in any::<u64>(),
        kinds in proptest::collection::vec(any::<u8>(), 8),
        seed in any::<u64>(),
    ) {
        let n_us = n as usize;
        let t = 1 + ((n_us - 1) as f64 * t_frac) as usize; // 1..=n
        let max_faulty = (n_us - t).min(t.saturating_sub(1));
        let k = (faulty_seed as usize) % (max_faulty + 1);
        let mut pool: Vec<u32> = (1..=n).collect();
        let mut faulty = BTreeMap::new();
        let mut s = faulty_seed;
        for kind in kinds.iter().take(k) {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let who = pool.remove((s >> 33) as usize % pool.len());
            faulty.insert(PartyId::new(who).unwrap(), *kind);
        }
        let victim = PartyId::new(pool[0]).unwrap();
        let faulty: BTreeMap<PartyId, Behaviour> =
            faulty.into_iter().map(|(p, k)| (p, behaviour(k, victim))).collect();
        let mut sim = Simulation::new(seed).with_faults(Faults::benign());
        let mut rng = sim.rng("ids");
        let secrets = setup::identities(PartyId::range(n), &mut rng);
        let parties = setup::dkg::<Secp>("root", 1, &secrets, t, &mut rng).unwrap();
        let boxed = parties.into_iter().map(|(p, kg)| {
            let b: Box<dyn Protocol<Output = KeyGenOutput<Secp>>> = match faulty.get(&p) {
                Some(b) => Box::new(Byzantine::new(kg, b.clone(), seed)),
                None => Box::new(kg),
            };
            (p, b)
        }).collect();
        let report = sim.run_boxed(boxed);
        let honest: BTreeSet<PartyId> = PartyId::range(n).filter(|p| !faulty.contains_key(p)).collect();
        let outs: Vec<&KeyGenOutput<Secp>> = honest.iter().map(|p| {
            report.outcomes.get(p).and_then(|o| o.as_ref().ok()).unwrap_or_else(|| panic!("{p}: {:?}", report.outcomes.get(p)))
        }).collect();
        agree_among(&outs);
        let culprits: BTreeSet<PartyId> = faulty.keys().copied().collect();
        prop_assert_eq!(&outs[0].disqualified, &culprits);
        for o in &outs {
            for c in &culprits {
                prop_assert!(o.faults.contains_key(c));
            }
        }
        let shares: BTreeMap<PartyId, KeyShare<Secp>> = outs.iter().map(|o| {
            let s = o.share.clone().unwrap();
            (s.id(), s)
        }).collect();
        let list: Vec<_> = shares.values().map(|s| s.secret.clone()).collect();
        let x = lit_crypto::shamir::reconstruct(&list, t).unwrap();
        prop_assert_eq!(<Secp as ::group::Group>::generator() * x, outs[0].public.group_key);
    }

    #[test]
    fn reshare_between_random_sets_keeps_the_key(
        n in 1u32..=7,
        t_frac in 0.0f64..1.0,
        leave in 0u32..3,
        join in 0u32..4,
        t2_frac in 0.0f64..1.0,
        seed in any::<u64>(),
    ) {
        let t = 1 + ((n as usize - 1) as f64 * t_frac) as usize;
        let mut sim = Simulation::new(seed).with_faults(Faults::benign());
        let mut rng = sim.rng("ids");
        let secrets = setup::identities(PartyId::range(n + join), &mut rng);
        let first: BTreeMap<_, _> = secrets.iter().take(n as usize).map(|(p, k)| (*p, k.clone())).collect();
        let (shares, public) = dkg::<Bls>(&mut sim, &first, t);
        let dealers: BTreeSet<PartyId> = PartyId::range(n).skip(n as usize - t).collect();
        let receivers: BTreeSet<PartyId> = PartyId::range(n + join).skip(leave.min(n + join - 1) as usize).collect();
        let t2 = 1 + ((receivers.len() - 1) as f64 * t2_frac) as usize;
        let (new, p2) = reshare(&mut sim, &secrets, &dealers, &receivers, t2, &shares, &public, 2);
        check_reconstructs(&new, &p2);
    }
}
