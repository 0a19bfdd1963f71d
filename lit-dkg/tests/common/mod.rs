//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use lit_dkg::sim::{setup, Report, Simulation};
use lit_dkg::*;

pub type Bls = blstrs::G1Projective;
pub type Secp = k256::ProjectivePoint;

pub fn ids(range: std::ops::RangeInclusive<u32>) -> BTreeSet<PartyId> {
    range.filter_map(PartyId::new).collect()
}

/// Every party succeeded and all agree on the public outputs; returns the shares.
pub fn agreed<G: DkgGroup>(
    report: &Report<KeyGenOutput<G>>,
    expect: &BTreeSet<PartyId>,
) -> (BTreeMap<PartyId, KeyShare<G>>, PublicKeySet<G>) {
    let outs = report.outputs();
    assert_eq!(
        outs.keys().copied().collect::<BTreeSet<_>>(),
        *expect,
        "errors: {:?}",
        report.errors()
    );
    agree_among(&outs.values().copied().collect::<Vec<_>>());
    let first = outs.values().next().unwrap();
    let shares = outs
        .iter()
        .filter_map(|(p, o)| o.share.clone().map(|s| (*p, s)))
        .collect();
    (shares, first.public.clone())
}

/// The given outputs agree on everything public.
pub fn agree_among<G: DkgGroup>(outs: &[&KeyGenOutput<G>]) {
    let first = outs.first().expect("at least one output");
    for o in outs {
        assert_eq!(o.public, first.public);
        assert_eq!(o.qualified, first.qualified);
        assert_eq!(o.disqualified, first.disqualified);
        if let Some(s) = &o.share {
            assert_eq!(s.public, o.public);
            assert_eq!(o.public.shares.get(&s.id()), Some(&s.secret.public::<G>()));
        }
    }
    assert!(first.public.is_consistent());
}

/// Independent check: every window of `T` shares reconstructs the secret key of the group key
/// (Lagrange over the scalars, test only), `T - 1` shares do not, and the public key shares
/// interpolate to the group key.
pub fn check_reconstructs<G: DkgGroup>(
    shares: &BTreeMap<PartyId, KeyShare<G>>,
    public: &PublicKeySet<G>,
) {
    let t = public.threshold;
    let list: Vec<_> = shares.values().map(|s| s.secret.clone()).collect();
    assert_eq!(list.len(), public.shares.len());
    for start in 0..=(list.len() - t) {
        let x = lit_crypto::shamir::reconstruct(&list[start..start + t], t).unwrap();
        assert_eq!(G::generator() * x, public.group_key);
        let pts: Vec<(PartyId, G)> = list[start..start + t]
            .iter()
            .map(|s| (s.id, public.shares[&s.id]))
            .collect();
        assert_eq!(
            lit_crypto::shamir::interpolate_points(&pts).unwrap(),
            public.group_key
        );
    }
    if t > 1 {
        let x = lit_crypto::shamir::reconstruct(&list[..t - 1], t - 1).unwrap();
        assert_ne!(G::generator() * x, public.group_key);
    }
}

pub fn dkg<G: DkgGroup>(
    sim: &mut Simulation,
    secrets: &BTreeMap<PartyId, IdentitySecret>,
    t: usize,
) -> (BTreeMap<PartyId, KeyShare<G>>, PublicKeySet<G>) {
    let mut rng = sim.rng("dkg");
    let parties = setup::dkg::<G>("root", 1, secrets, t, &mut rng).unwrap();
    let report = sim.run(parties);
    let expect = secrets.keys().copied().collect();
    agreed(&report, &expect)
}

#[allow(clippy::too_many_arguments)]
pub fn reshare<G: DkgGroup>(
    sim: &mut Simulation,
    secrets: &BTreeMap<PartyId, IdentitySecret>,
    dealers: &BTreeSet<PartyId>,
    receivers: &BTreeSet<PartyId>,
    t: usize,
    shares: &BTreeMap<PartyId, KeyShare<G>>,
    old: &PublicKeySet<G>,
    epoch: u64,
) -> (BTreeMap<PartyId, KeyShare<G>>, PublicKeySet<G>) {
    let mut rng = sim.rng(&format!("reshare{epoch}"));
    let parties = setup::reshare(
        "root", epoch, secrets, dealers, receivers, t, shares, old, &mut rng,
    )
    .unwrap();
    let report = sim.run(parties);
    let expect = dealers.union(receivers).copied().collect();
    let (new_shares, public) = agreed(&report, &expect);
    assert_eq!(
        new_shares.keys().copied().collect::<BTreeSet<_>>(),
        *receivers
    );
    assert_eq!(public.group_key, old.group_key);
    (new_shares, public)
}
