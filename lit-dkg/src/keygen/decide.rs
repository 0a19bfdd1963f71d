//! The decisions of the protocol as pure functions: each takes what the party holds and returns
//! what it decides, with the faults it observed in the order it observed them, and touches no
//! state, so each can be read against its paper on its own. `rounds` calls them in order and
//! applies what they return.
//!
//! | function | decides | after |
//! |---|---|---|
//! | [`verify_shares`] | which received shares match their dealer's commitment | Feldman 1987, batched by the small-exponents test of Bellare–Garay–Rabin 1998 |
//! | [`complaints`] | the dealers a party complains about | GJKR 2007 step 1c |
//! | [`check_echoes`] | who equivocated, who echoed falsely, what was delivered selectively | the signed echoes of the module documentation |
//! | [`justification`] | what an accused dealer reveals | GJKR 2007 step 1d |
//! | [`qualify`] | the qualified set `Q` and the disqualified dealers | GJKR 2007 step 2 (`QUAL`) |
//! | [`aggregate`] | the aggregated commitment `A_k = Σ_{i∈Q} w_i C_{i,k}` | Pedersen 1991; Desmedt–Jajodia 1997 and Wong–Wang–Wing 2002 for `w_i = λ_i^Q` |
//! | [`public_key_set`] | the group key and every public key share | Feldman 1987 |
//! | [`own_share`] | the party's new share | the table of the module documentation |
//! | [`verdict`] | whether the confirmations agree, and whom to blame | round 4 of the module documentation |

use std::collections::{BTreeMap, BTreeSet};

use ff::{Field, PrimeField};
use lit_crypto::protocol::{PartyId, ProtocolError};
use lit_crypto::shamir::{lagrange_coefficients, Polynomial, SecretShare};
use sha2::{Digest, Sha256};

use super::inbox::Signed;
use super::messages::{
    self, verify, Echo, Round1Commit, Round2Complain, Round3Justify, Round4Confirm,
};
use super::{Fault, IdentityKey, KeyGenOutput, KeyShare, Kind, PublicKeySet, Session};
use crate::group::{eval_in_exponent, DkgGroup};
use crate::wire::Writer;

/// Faults in the order they were observed (the order each party's list in
/// [`KeyGenOutput::faults`] keeps).
pub(super) type Faults = Vec<(PartyId, Fault)>;

/// What round 3 decided.
pub(super) struct Decision<G: DkgGroup> {
    /// The output, released only if round 4 confirms it (its `faults` are filled in then).
    pub(super) output: KeyGenOutput<G>,
    /// The hash of the result that round 4 compares.
    pub(super) result: [u8; 32],
}

/// `Silent { round }` for every party of `expected` we hold no message of `round` from.
pub(super) fn silent<T>(
    round: u8,
    expected: &BTreeSet<PartyId>,
    held: &BTreeMap<PartyId, T>,
) -> Faults {
    expected
        .iter()
        .filter(|p| !held.contains_key(p))
        .map(|p| (*p, Fault::Silent { round }))
        .collect()
}

/// The dealers among `received` — `(dealer, C_i, s_{i,x})` — whose share to receiver `x`
/// matches their Feldman commitment, `s_{i,x} · G = Σ_k C_{i,k} x^k`: one check
/// `(Σ r_i s_{i,x}) · G == Σ r_i · C_i(x)` with the random 128-bit `r_i` of `r`, and one check
/// per dealer only if the batch fails (to find the culprits).
pub(super) fn verify_shares<G: DkgGroup>(
    x: u64,
    received: &[(PartyId, &[G], G::Scalar)],
    r: &[G::Scalar],
) -> BTreeSet<PartyId> {
    let r = r.get(..received.len()).unwrap_or_default();
    let commits: Vec<&[G]> = received.iter().map(|(_, c, _)| *c).collect();
    let combined = received
        .iter()
        .zip(r)
        .fold(G::Scalar::ZERO, |a, ((_, _, v), r)| a + *v * r);
    if G::generator() * combined == G::weighted_eval(&commits, r, x) {
        return received.iter().map(|(d, _, _)| *d).collect();
    }
    received
        .iter()
        .filter(|(_, c, v)| G::generator() * *v == eval_in_exponent(c, x))
        .map(|(d, _, _)| *d)
        .collect()
}

/// The dealers to complain about at the end of round 1: a receiver complains about every
/// dealer whose share it holds no valid one of (`valid`), a dealer-only party about every
/// dealer whose commitment it lacks.
pub(super) fn complaints(
    dealers: &BTreeSet<PartyId>,
    receiver: bool,
    committed: &BTreeSet<PartyId>,
    valid: &BTreeSet<PartyId>,
) -> Vec<PartyId> {
    let known = if receiver { valid } else { committed };
    dealers
        .iter()
        .filter(|d| !known.contains(d))
        .copied()
        .collect()
}

/// What comparing the echoes of one round's broadcasts with the broadcasts we hold showed.
#[derive(Default)]
pub(super) struct EchoFindings {
    /// Equivocations and false echoes, in the order found.
    pub(super) faults: Faults,
    /// `(sender, round)` proven, by two validly signed digests, to have equivocated.
    pub(super) equivocators: Vec<(PartyId, u8)>,
    /// `(sender, round)` of validly signed broadcasts others echoed that never reached us.
    pub(super) unseen: Vec<(PartyId, u8)>,
    /// For round 1, the digests of those: `(dealer, digest)`.
    pub(super) echoed_commits: Vec<(PartyId, [u8; 32])>,
    /// `(sender, round)` of broadcasts we hold that an echoer did not list.
    pub(super) unlisted: Vec<(PartyId, u8)>,
}

/// Compares the echoes of `round`'s broadcasts, `(echoer, echo list)`, with the digests of
/// the broadcasts of `round` we hold (`held`). A different digest under the sender's valid
/// signature proves that the sender equivocated; under an invalid one, that the echoer lied.
pub(super) fn check_echoes<'a>(
    round: u8,
    echoes: impl IntoIterator<Item = (PartyId, &'a [Echo])>,
    identities: &BTreeMap<PartyId, IdentityKey>,
    held: &BTreeMap<PartyId, [u8; 32]>,
) -> EchoFindings {
    let mut found = EchoFindings::default();
    for (echoer, list) in echoes {
        let listed: BTreeSet<PartyId> = messages::echoed(list);
        for e in list {
            let Some(key) = identities.get(&e.from) else {
                continue;
            };
            match held.get(&e.from) {
                Some(d) if *d == e.digest => {}
                Some(_) => {
                    if verify(key, &e.digest, &e.sig) {
                        found.equivocators.push((e.from, round));
                        found.faults.push((e.from, Fault::Equivocation { round }));
                    } else {
                        found.faults.push((echoer, Fault::FalseEcho));
                    }
                }
                None => {
                    if verify(key, &e.digest, &e.sig) {
                        found.unseen.push((e.from, round));
                        if round == 1 {
                            found.echoed_commits.push((e.from, e.digest));
                        }
                    } else {
                        found.faults.push((echoer, Fault::FalseEcho));
                    }
                }
            }
        }
        for p in held.keys() {
            if *p != echoer && !listed.contains(p) {
                found.unlisted.push((*p, round));
            }
        }
    }
    found
}

/// The parties whose round-2 complaints name `me`.
pub(super) fn accusers(
    complaints: &BTreeMap<PartyId, Signed<Round2Complain>>,
    me: PartyId,
) -> Vec<PartyId> {
    complaints
        .iter()
        .filter(|(_, m)| m.body.complaints.contains(&me))
        .map(|(p, _)| *p)
        .collect()
}

/// The round-3 message: the echo of round 2 and, from an accused dealer, its answer to the
/// complaints against it — its signed round-1 broadcast and the disputed shares `f_i(k)` of
/// the accusers that are receivers (nothing from a party that is not accused or no dealer).
pub(super) fn justification<F: PrimeField>(
    echo: Vec<Echo>,
    poly: Option<&Polynomial<F>>,
    my_commit: &[u8],
    accusers: &[PartyId],
    receivers: &BTreeSet<PartyId>,
) -> Round3Justify<F> {
    let (commit, shares) = match (poly, accusers.is_empty()) {
        (Some(poly), false) => (
            Some(my_commit.to_vec()),
            accusers
                .iter()
                .filter(|a| receivers.contains(a))
                .map(|a| (*a, poly.share(*a)))
                .collect(),
        ),
        _ => (None, Vec::new()),
    };
    Round3Justify {
        echo,
        commit,
        shares,
    }
}

/// Who complained about whom, ignoring the complaints of parties proven to have equivocated
/// in round 2: accused dealer → its accusers.
pub(super) fn complaints_against(
    complaints: &BTreeMap<PartyId, Signed<Round2Complain>>,
    equivocators: &BTreeSet<(PartyId, u8)>,
) -> BTreeMap<PartyId, BTreeSet<PartyId>> {
    let mut against: BTreeMap<PartyId, BTreeSet<PartyId>> = BTreeMap::new();
    for (k, m) in complaints {
        if equivocators.contains(&(*k, 2)) {
            continue;
        }
        for d in &m.body.complaints {
            against.entry(*d).or_default().insert(*k);
        }
    }
    against
}

/// The qualified and disqualified dealers after the complaint phase.
pub(super) struct Qualification<F: PrimeField> {
    /// Dealers with a commitment, no proven round-1 equivocation, and every complaint answered.
    pub(super) qualified: BTreeSet<PartyId>,
    /// The other dealers.
    pub(super) disqualified: BTreeSet<PartyId>,
    /// Shares to me that a qualified dealer revealed in its justification, matching its
    /// commitment.
    pub(super) revealed: Vec<(PartyId, SecretShare<F>)>,
    /// `Unjustified` faults, in dealer order.
    pub(super) faults: Faults,
}

/// Decides `Q`: a dealer stays qualified iff it has a commitment, is not proven to have
/// equivocated in round 1, and every complaint against it (`against`) is answered by a share
/// that matches its commitment (a complaint of a party that is no receiver, by the commitment
/// itself).
pub(super) fn qualify<G: DkgGroup>(
    session: &Session<G>,
    me: PartyId,
    commits: &BTreeMap<PartyId, Signed<Round1Commit<G>>>,
    justifications: &BTreeMap<PartyId, Signed<Round3Justify<G::Scalar>>>,
    against: &BTreeMap<PartyId, BTreeSet<PartyId>>,
    equivocators: &BTreeSet<(PartyId, u8)>,
) -> Qualification<G::Scalar> {
    let mut out = Qualification {
        qualified: BTreeSet::new(),
        disqualified: BTreeSet::new(),
        revealed: Vec::new(),
        faults: Vec::new(),
    };
    for d in &session.dealers {
        let Some(commit) = commits.get(d) else {
            out.disqualified.insert(*d);
            let complainers = against
                .get(d)
                .map(|c| c.iter().copied().collect())
                .unwrap_or_default();
            out.faults.push((*d, Fault::Unjustified { complainers }));
            continue;
        };
        if equivocators.contains(&(*d, 1)) {
            out.disqualified.insert(*d);
            continue;
        }
        let just = justifications.get(d);
        let mut unanswered = Vec::new();
        let mut mine = None;
        for k in against.get(d).into_iter().flatten() {
            let answered = match just {
                None => false,
                Some(j) if !session.receivers.contains(k) => j.body.commit.is_some(),
                Some(j) => j
                    .body
                    .shares
                    .iter()
                    .find(|(p, _)| p == k)
                    .is_some_and(|(_, sh)| {
                        let ok = G::generator() * sh.value
                            == eval_in_exponent(&commit.body.c, u64::from(k.get()));
                        if ok && *k == me {
                            mine = Some(SecretShare {
                                id: me,
                                value: sh.value,
                            });
                        }
                        ok
                    }),
            };
            if !answered {
                unanswered.push(*k);
            }
        }
        if unanswered.is_empty() {
            out.qualified.insert(*d);
            if let Some(share) = mine {
                out.revealed.push((*d, share));
            }
        } else {
            out.disqualified.insert(*d);
            out.faults.push((
                *d,
                Fault::Unjustified {
                    complainers: unanswered,
                },
            ));
        }
    }
    out
}

/// The aggregated commitment of the dealers a run's key is made of.
pub(super) struct Aggregate<G: DkgGroup> {
    /// The dealers combined, in order: all of `Q`, or the first `T` of them for a reshare.
    pub(super) q: Vec<PartyId>,
    /// The Lagrange coefficients `λ_i^q` of a reshare (`None`: all weights are one).
    pub(super) weights: Option<Vec<G::Scalar>>,
    /// `A_k = Σ_{i∈q} w_i C_{i,k}` for `k < T'`.
    pub(super) commitment: Vec<G>,
    /// `Q`, without the dealers whose commitment left the subgroup.
    pub(super) qualified: BTreeSet<PartyId>,
    /// The disqualified dealers, with those.
    pub(super) disqualified: BTreeSet<PartyId>,
}

/// Aggregates the commitments of the qualified dealers. Points are decoded without a subgroup
/// check (see `DkgGroup`): the aggregated commitment is checked once, and only if it fails are
/// the dealers at fault found and disqualified (`InvalidCommitment`, returned with the result
/// even when the run aborts). Aborts, naming the disqualified dealers, when fewer than
/// [`Session::min_qualified`] remain.
pub(super) fn aggregate<G: DkgGroup>(
    session: &Session<G>,
    commits: &BTreeMap<PartyId, Signed<Round1Commit<G>>>,
    mut qualified: BTreeSet<PartyId>,
    mut disqualified: BTreeSet<PartyId>,
) -> (Result<Aggregate<G>, ProtocolError>, Faults) {
    let mut faults = Vec::new();
    let needed = session.min_qualified();
    loop {
        if qualified.len() < needed {
            let abort = ProtocolError::Aborted {
                culprits: disqualified.iter().copied().collect(),
                reason: format!(
                    "only {} qualified dealers, {} needed",
                    qualified.len(),
                    needed
                ),
            };
            return (Err(abort), faults);
        }
        // A reshare needs only T old shares: interpolating from the first T qualified
        // dealers (the same at every honest party) keeps the Lagrange weights and the
        // multi-scalar multiplications of the aggregated commitment at size T, not |Q|.
        let q: Vec<PartyId> = match session.kind {
            Kind::Reshare => qualified.iter().copied().take(needed).collect(),
            _ => qualified.iter().copied().collect(),
        };
        let weights: Option<Vec<G::Scalar>> = match session.kind {
            Kind::Reshare => match lagrange_coefficients::<G::Scalar>(&q) {
                Ok(w) => Some(w),
                Err(e) => return (Err(ProtocolError::InvalidParameters(e.to_string())), faults),
            },
            _ => None,
        };
        // Aggregated commitment A_k = Σ_{i∈Q} w_i C_{i,k}.
        let cs: Vec<&Vec<G>> = q
            .iter()
            .filter_map(|d| commits.get(d).map(|c| &c.body.c))
            .collect();
        let commitment: Vec<G> = (0..session.threshold)
            .map(|k| {
                let col: Vec<G> = cs
                    .iter()
                    .map(|c| c.get(k).copied().unwrap_or_else(G::identity))
                    .collect();
                match &weights {
                    Some(w) => G::msm(&col, w),
                    None => col.iter().fold(G::identity(), |a, b| a + b),
                }
            })
            .collect();
        if commitment.iter().all(|p| p.in_subgroup()) {
            let agg = Aggregate {
                q,
                weights,
                commitment,
                qualified,
                disqualified,
            };
            return (Ok(agg), faults);
        }
        let bad: Vec<PartyId> = q
            .iter()
            .filter(|d| {
                commits
                    .get(d)
                    .is_some_and(|c| !c.body.c.iter().all(|p| p.in_subgroup()))
            })
            .copied()
            .collect();
        if bad.is_empty() {
            let abort = ProtocolError::Aborted {
                culprits: Vec::new(),
                reason: "aggregated commitment outside the prime-order subgroup".into(),
            };
            return (Err(abort), faults);
        }
        for d in bad {
            qualified.remove(&d);
            disqualified.insert(d);
            faults.push((d, Fault::InvalidCommitment));
        }
    }
}

/// The public key set of the result: the commitment `aggregated` (plus the old one for a
/// refresh), its constant term as the group key — which a refresh or reshare must leave
/// unchanged, else the old public key shares were inconsistent — and `Y_j` for every receiver.
pub(super) fn public_key_set<G: DkgGroup>(
    session: &Session<G>,
    aggregated: &[G],
) -> Result<PublicKeySet<G>, ProtocolError> {
    let commitment: Vec<G> = match (session.kind, &session.old) {
        (Kind::Refresh, Some(o)) => aggregated
            .iter()
            .enumerate()
            .map(|(k, a)| *a + o.commitment.get(k).copied().unwrap_or_else(G::identity))
            .collect(),
        _ => aggregated.to_vec(),
    };
    let group_key = commitment.first().copied().unwrap_or_else(G::identity);
    if let (Kind::Reshare | Kind::Refresh, Some(o)) = (session.kind, &session.old) {
        if group_key != o.group_key {
            return Err(ProtocolError::Aborted {
                culprits: Vec::new(),
                reason: "the old public key shares are inconsistent with the group key".into(),
            });
        }
    }
    let shares: BTreeMap<PartyId, G> = session
        .receivers
        .iter()
        .map(|j| (*j, eval_in_exponent(&commitment, u64::from(j.get()))))
        .collect();
    Ok(PublicKeySet {
        threshold: session.threshold,
        group_key,
        commitment,
        shares,
    })
}

/// The new share of `me` if it is a receiver: `Σ_{i∈q} w_i s_{i,me}` over its valid shares
/// (plus its old share for a refresh), checked against its public key share in `public`.
/// Aborts naming a qualified dealer it holds no valid share from.
pub(super) fn own_share<G: DkgGroup>(
    session: &Session<G>,
    me: PartyId,
    q: &[PartyId],
    weights: Option<&[G::Scalar]>,
    valid_shares: &BTreeMap<PartyId, SecretShare<G::Scalar>>,
    old_share: Option<&SecretShare<G::Scalar>>,
    public: &PublicKeySet<G>,
) -> Result<Option<KeyShare<G>>, ProtocolError> {
    if !session.receivers.contains(&me) {
        return Ok(None);
    }
    let mut value = G::Scalar::ZERO;
    for (i, d) in q.iter().enumerate() {
        let sh = valid_shares.get(d).ok_or_else(|| ProtocolError::Aborted {
            culprits: vec![*d],
            reason: "no valid share from a qualified dealer".into(),
        })?;
        let w = weights
            .and_then(|w| w.get(i))
            .copied()
            .unwrap_or(G::Scalar::ONE);
        value += sh.value * w;
    }
    if session.kind == Kind::Refresh {
        value += old_share.map(|o| o.value).unwrap_or(G::Scalar::ZERO);
    }
    let secret = SecretShare { id: me, value };
    if public.shares.get(&me) != Some(&secret.public::<G>()) {
        return Err(ProtocolError::Aborted {
            culprits: Vec::new(),
            reason: "own share does not match the public key share".into(),
        });
    }
    Ok(Some(KeyShare {
        secret,
        public: public.clone(),
    }))
}

/// The hash of the result that round 4 confirms: session id, the dealers combined, the
/// aggregated commitment and the group key.
pub(super) fn result_digest<G: DkgGroup>(
    sid: &[u8; 32],
    q: &[PartyId],
    aggregated: &[G],
    group_key: &G,
) -> [u8; 32] {
    let mut w = Writer::default();
    w.bytes(b"lit-dkg/result").raw(sid).len(q.len());
    for p in q {
        w.party(*p);
    }
    for c in aggregated {
        w.point(c);
    }
    w.point(group_key);
    Sha256::digest(&w.buf).into()
}

/// Round 4: whether every confirmation that counts — from a party neither disqualified nor a
/// proven equivocator — equals our `result`. If not, the views diverged; blame what explains
/// it: proven equivocators, then parties whose broadcasts reached some but not others
/// (`unseen`, `unlisted`), and only then the dissenting confirmers.
pub(super) fn verdict(
    result: &[u8; 32],
    disqualified: &BTreeSet<PartyId>,
    confirms: &BTreeMap<PartyId, Signed<Round4Confirm>>,
    equivocators: &BTreeSet<(PartyId, u8)>,
    unseen: &BTreeSet<(PartyId, u8)>,
    unlisted: &BTreeSet<(PartyId, u8)>,
) -> (Faults, Result<(), ProtocolError>) {
    let mismatched: Vec<PartyId> = confirms
        .iter()
        .filter(|(p, c)| {
            c.body.result != *result
                && !disqualified.contains(p)
                && !equivocators.iter().any(|(e, _)| e == *p)
        })
        .map(|(p, _)| *p)
        .collect();
    let mut faults: Faults = mismatched
        .iter()
        .map(|p| (*p, Fault::ConfirmationMismatch))
        .collect();
    if mismatched.is_empty() {
        return (faults, Ok(()));
    }
    let mut culprits: BTreeSet<PartyId> = equivocators.iter().map(|(p, _)| *p).collect();
    if culprits.is_empty() {
        for (p, round) in unseen.iter().chain(unlisted) {
            culprits.insert(*p);
            faults.push((*p, Fault::SelectiveDelivery { round: *round }));
        }
    }
    if culprits.is_empty() {
        culprits.extend(mismatched);
    }
    let abort = ProtocolError::Aborted {
        culprits: culprits.into_iter().collect(),
        reason: "honest views diverged: confirmations differ".into(),
    };
    (faults, Err(abort))
}
