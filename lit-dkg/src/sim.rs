//! A deterministic simulator for any [`Protocol`]: it runs `N` protocol objects in one thread,
//! routes their messages through a simulated network that reorders, delays, drops, duplicates
//! and corrupts them, crashes and restarts parties, and lets Byzantine parties (alternative
//! implementations of the same trait) take part.
//!
//! Everything is driven by one seed. The seed is printed to stderr (so a failing test shows
//! it), and the environment variable `LIT_TEST_SEED` overrides the seed given in code, which
//! replays a run exactly.
//!
//! Time is a step counter. Each step delivers one message whose delivery time has come. When no
//! message is deliverable and none is in flight, a round deadline passes: the simulator calls
//! [`Protocol::timeout`] on the waiting parties that entered their current round earliest (a
//! party's round starts when it last sent), so a party held up by a silent peer times out before
//! the parties waiting for *it* do, as with per-node round timers. A run ends when every live
//! party finished, after `max_timeouts × n` successive deadlines without progress, or after
//! `max_steps` steps.
//!
//! ```
//! use lit_dkg::sim::Simulation;
//! # use lit_dkg::{Action, PartyId, Protocol, ProtocolError};
//! # struct Echo(PartyId, Vec<PartyId>, bool);
//! # impl Protocol for Echo {
//! #     type Output = usize;
//! #     fn poke(&mut self) -> Result<Action<usize>, ProtocolError> {
//! #         if !self.2 { self.2 = true; return Ok(Action::Send(vec![lit_dkg::Outgoing { to: None, bytes: vec![1] }])); }
//! #         if self.1.len() == 2 { Ok(Action::Done(self.1.len())) } else { Ok(Action::Wait) }
//! #     }
//! #     fn message(&mut self, from: PartyId, _: &[u8]) -> Result<(), ProtocolError> { self.1.push(from); Ok(()) }
//! # }
//! let parties = PartyId::range(3).map(|p| (p, Echo(p, vec![], false)));
//! let report = Simulation::new(7).run(parties);
//! assert!(report.outcomes.values().all(|o| o.as_ref().is_ok_and(|n| *n == 2)));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lit_crypto::protocol::{Action, PartyId, Protocol, ProtocolError};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use zeroize::Zeroizing;

/// A protocol whose state can be persisted and restored (for crash-restart).
pub trait Restartable: Protocol + Sized + 'static {
    /// Everything the party must persist (secret: store it encrypted).
    fn snapshot(&self) -> Zeroizing<Vec<u8>>;
    /// The party as it was when `snapshot` was taken.
    fn restore(bytes: &[u8]) -> Result<Self, ProtocolError>;
}

/// What the simulated network does to messages. Probabilities are per delivered copy.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Deliver a random deliverable message rather than the oldest.
    pub reorder: bool,
    /// Probability that a copy is held back `1..=max_delay` steps.
    pub delay: f64,
    /// Longest delay in steps.
    pub max_delay: u64,
    /// Probability that a copy is lost.
    pub drop: f64,
    /// Probability that a copy is delivered twice.
    pub duplicate: f64,
    /// Probability that one byte of a copy is flipped.
    pub corrupt: f64,
    /// Scheduled crashes.
    pub crashes: Vec<Crash>,
    /// Parties whose outgoing messages the network never drops or corrupts (e.g. to keep the
    /// honest parties' channels reliable while testing Byzantine ones).
    pub reliable_senders: BTreeSet<PartyId>,
}

impl Faults {
    /// Reordering, delays and duplicates, but nothing lost or corrupted: every honest run
    /// must succeed under these.
    pub fn benign() -> Self {
        Self {
            reorder: true,
            delay: 0.2,
            max_delay: 20,
            duplicate: 0.05,
            ..Self::default()
        }
    }
}

/// A party crashes at `at_step` and restarts from its persisted state `down_for` steps later
/// (a party that cannot persist stays down). Messages sent to it while it is down wait for it
/// (the transport retries); the persisted state is what it held at the crash.
#[derive(Clone, Debug)]
pub struct Crash {
    /// Who.
    pub party: PartyId,
    /// When (simulation step).
    pub at_step: u64,
    /// For how long.
    pub down_for: u64,
}

/// Per-party counters.
#[derive(Clone, Debug, Default)]
pub struct PartyStats {
    /// CPU time spent inside the party's `poke`, `message` and `timeout`.
    pub cpu: Duration,
    /// Bytes the party sent (a broadcast counts once per recipient).
    pub bytes_sent: u64,
    /// Messages the party sent (per recipient).
    pub messages_sent: u64,
    /// Messages the party refused.
    pub refused: u64,
}

/// The result of a run.
#[derive(Debug)]
pub struct Report<O> {
    /// The seed that reproduces the run.
    pub seed: u64,
    /// Each party's output or error; parties that never finished are missing.
    pub outcomes: BTreeMap<PartyId, Result<O, ProtocolError>>,
    /// Every refused message: `(receiver, error)` (the error names the sender).
    pub refused: Vec<(PartyId, ProtocolError)>,
    /// Per-party counters.
    pub stats: BTreeMap<PartyId, PartyStats>,
    /// Steps taken.
    pub steps: u64,
    /// Round deadlines that passed.
    pub timeouts: u64,
}

impl<O> Report<O> {
    /// The outputs of the parties that succeeded.
    pub fn outputs(&self) -> BTreeMap<PartyId, &O> {
        self.outcomes
            .iter()
            .filter_map(|(p, o)| o.as_ref().ok().map(|o| (*p, o)))
            .collect()
    }

    /// The errors of the parties that failed.
    pub fn errors(&self) -> BTreeMap<PartyId, &ProtocolError> {
        self.outcomes
            .iter()
            .filter_map(|(p, o)| o.as_ref().err().map(|e| (*p, e)))
            .collect()
    }

    /// Total CPU time of all parties.
    pub fn total_cpu(&self) -> Duration {
        self.stats.values().map(|s| s.cpu).sum()
    }
}

/// The simulator (see the module documentation).
#[derive(Debug)]
pub struct Simulation {
    seed: u64,
    rng: ChaCha20Rng,
    faults: Faults,
    /// Stop after this many steps.
    pub max_steps: u64,
    /// Stop after this many successive deadlines without progress.
    pub max_timeouts: u64,
}

/// The seed to use: `LIT_TEST_SEED` if set, else `default` (the workspace's one reader of
/// `LIT_TEST_SEED`, shared with the test suites' `lit_crypto::testing::seeded_rng`).
pub use lit_crypto::testing::seed_from_env;

impl Simulation {
    /// A simulation with a reliable, in-order network; `LIT_TEST_SEED` overrides `seed`.
    pub fn new(seed: u64) -> Self {
        let sim = Self::silent(seed);
        eprintln!(
            "lit-dkg sim: seed {} (replay with LIT_TEST_SEED={})",
            sim.seed, sim.seed
        );
        sim
    }

    /// Like [`Simulation::new`] without printing the seed (for benchmarks).
    pub fn silent(seed: u64) -> Self {
        let seed = seed_from_env(seed);
        Self {
            seed,
            rng: ChaCha20Rng::seed_from_u64(seed),
            faults: Faults::default(),
            max_steps: 10_000_000,
            max_timeouts: 8,
        }
    }

    /// Sets the network faults.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The seed in use.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A deterministic RNG derived from the seed and a label, for building the parties.
    pub fn rng(&self, label: &str) -> ChaCha20Rng {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&self.seed.to_le_bytes());
        for (i, b) in label.bytes().enumerate() {
            if let Some(x) = s.get_mut(8 + i % 24) {
                *x ^= b.rotate_left((i / 24) as u32);
            }
        }
        ChaCha20Rng::from_seed(s)
    }

    /// Runs parties of one type (crashed parties stay down: use
    /// [`Simulation::run_restartable`] to restart them).
    pub fn run<P: Protocol + 'static>(
        &mut self,
        parties: impl IntoIterator<Item = (PartyId, P)>,
    ) -> Report<P::Output> {
        self.run_boxed(
            parties
                .into_iter()
                .map(|(p, x)| (p, Box::new(x) as Box<dyn Protocol<Output = P::Output>>))
                .collect(),
        )
    }

    /// Runs parties of different types with the same output (honest and Byzantine ones).
    pub fn run_boxed<O: 'static>(
        &mut self,
        parties: Vec<(PartyId, Box<dyn Protocol<Output = O>>)>,
    ) -> Report<O> {
        self.drive(
            parties
                .into_iter()
                .map(|(p, x)| (p, Box::new(Plain(x)) as Box<dyn SimParty<O>>))
                .collect(),
        )
    }

    /// Runs parties that can be crashed and restarted from their persisted state.
    pub fn run_restartable<P: Restartable>(
        &mut self,
        parties: impl IntoIterator<Item = (PartyId, P)>,
    ) -> Report<P::Output> {
        self.drive(
            parties
                .into_iter()
                .map(|(p, x)| (p, Box::new(Durable(x)) as Box<dyn SimParty<P::Output>>))
                .collect(),
        )
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.rng.next_u64() % n
        }
    }

    fn drive<O>(&mut self, parties: Vec<(PartyId, Box<dyn SimParty<O>>)>) -> Report<O> {
        let ids: Vec<PartyId> = parties.iter().map(|(p, _)| *p).collect();
        let mut slots: BTreeMap<PartyId, Slot<O>> = parties
            .into_iter()
            .map(|(p, x)| (p, Slot::Live(x)))
            .collect();
        let mut report = Report {
            seed: self.seed,
            outcomes: BTreeMap::new(),
            refused: Vec::new(),
            stats: ids.iter().map(|p| (*p, PartyStats::default())).collect(),
            steps: 0,
            timeouts: 0,
        };
        let mut in_flight: Vec<Envelope> = Vec::new();
        let mut crashes = self.faults.crashes.clone();
        crashes.sort_by_key(|c| c.at_step);
        let mut dirty: BTreeSet<PartyId> = ids.iter().copied().collect();
        let mut now: u64 = 0;
        let mut idle_deadlines = 0;
        let mut waiting_since: BTreeMap<PartyId, u64> = BTreeMap::new();
        loop {
            // Crashes and restarts due now.
            while crashes.first().is_some_and(|c| c.at_step <= now) {
                let c = crashes.remove(0);
                if let Some(slot) = slots.get_mut(&c.party) {
                    if let Slot::Live(p) = slot {
                        let snapshot = p.snapshot();
                        *slot = Slot::Down {
                            until: now + c.down_for,
                            snapshot,
                            restore: p.restorer(),
                        };
                    }
                }
            }
            for (id, slot) in slots.iter_mut() {
                if let Slot::Down {
                    until,
                    snapshot: Some(snap),
                    restore: Some(restore),
                } = slot
                {
                    if *until <= now {
                        match restore(snap) {
                            Ok(p) => {
                                *slot = Slot::Live(p);
                                waiting_since.insert(*id, now);
                                dirty.insert(*id);
                            }
                            Err(e) => {
                                report.outcomes.insert(*id, Err(e));
                                *slot = Slot::Finished;
                            }
                        }
                    }
                }
            }
            // Let every party that got input act.
            for id in std::mem::take(&mut dirty) {
                self.pump(
                    id,
                    &ids,
                    &mut slots,
                    &mut report,
                    &mut in_flight,
                    now,
                    &mut waiting_since,
                );
            }
            if slots.values().all(|s| {
                !matches!(
                    s,
                    Slot::Live(_)
                        | Slot::Down {
                            restore: Some(_),
                            ..
                        }
                )
            }) {
                break;
            }
            if report.steps >= self.max_steps {
                break;
            }
            // Deliver one message whose time has come to a live party.
            let deliverable: Vec<usize> = in_flight
                .iter()
                .enumerate()
                .filter(|(_, e)| e.at <= now && matches!(slots.get(&e.to), Some(Slot::Live(_))))
                .map(|(i, _)| i)
                .collect();
            if !deliverable.is_empty() {
                let pick = if self.faults.reorder {
                    deliverable
                        .get(self.below(deliverable.len() as u64) as usize)
                        .copied()
                        .unwrap_or(0)
                } else {
                    deliverable.first().copied().unwrap_or(0)
                };
                let env = in_flight.remove(pick);
                if let Some(Slot::Live(p)) = slots.get_mut(&env.to) {
                    let start = Instant::now();
                    let r = p.message(env.from, &env.bytes);
                    let stats = report.stats.entry(env.to).or_default();
                    stats.cpu += start.elapsed();
                    if let Err(e) = r {
                        stats.refused += 1;
                        report.refused.push((env.to, e));
                    }
                    dirty.insert(env.to);
                }
                report.steps += 1;
                now += 1;
                idle_deadlines = 0;
                continue;
            }
            // Drop what can never be delivered (to finished or permanently crashed parties).
            in_flight.retain(|e| {
                matches!(
                    slots.get(&e.to),
                    Some(Slot::Live(_))
                        | Some(Slot::Down {
                            restore: Some(_),
                            ..
                        })
                )
            });
            // Something will happen later: advance time.
            let next_msg = in_flight.iter().map(|e| e.at).filter(|at| *at > now).min();
            let next_restart = slots
                .values()
                .filter_map(|s| match s {
                    Slot::Down {
                        until,
                        restore: Some(_),
                        ..
                    } => Some(*until),
                    _ => None,
                })
                .min();
            let next_crash = crashes.first().map(|c| c.at_step);
            if let Some(t) = [next_msg, next_restart, next_crash]
                .into_iter()
                .flatten()
                .min()
            {
                if t > now {
                    now = t;
                    continue;
                }
                if next_restart.is_some() || !in_flight.is_empty() {
                    now += 1;
                    continue;
                }
            }
            // Quiescent: the round deadline passes for the parties that have waited longest,
            // i.e. that entered their current round (sent their last messages) earliest. Each
            // party's deadline runs from its own round start, as a node's timers would.
            let Some(oldest) = slots
                .iter()
                .filter(|(_, s)| matches!(s, Slot::Live(_)))
                .map(|(id, _)| waiting_since.get(id).copied().unwrap_or(0))
                .min()
            else {
                break;
            };
            report.timeouts += 1;
            let before = (report.outcomes.len(), in_flight.len());
            for (id, slot) in slots.iter_mut() {
                if waiting_since.get(id).copied().unwrap_or(0) != oldest {
                    continue;
                }
                if let Slot::Live(p) = slot {
                    let start = Instant::now();
                    let r = p.timeout();
                    report.stats.entry(*id).or_default().cpu += start.elapsed();
                    waiting_since.insert(*id, now);
                    if let Err(e) = r {
                        report.outcomes.insert(*id, Err(e));
                        *slot = Slot::Finished;
                    } else {
                        dirty.insert(*id);
                    }
                }
            }
            for id in std::mem::take(&mut dirty) {
                self.pump(
                    id,
                    &ids,
                    &mut slots,
                    &mut report,
                    &mut in_flight,
                    now,
                    &mut waiting_since,
                );
            }
            if (report.outcomes.len(), in_flight.len()) == before {
                idle_deadlines += 1;
                if idle_deadlines > self.max_timeouts.saturating_mul(ids.len() as u64) {
                    break;
                }
            } else {
                idle_deadlines = 0;
            }
            now += 1;
        }
        report
    }

    /// Pokes a party until it waits or finishes, and puts what it sends on the network.
    #[allow(clippy::too_many_arguments)]
    fn pump<O>(
        &mut self,
        id: PartyId,
        ids: &[PartyId],
        slots: &mut BTreeMap<PartyId, Slot<O>>,
        report: &mut Report<O>,
        in_flight: &mut Vec<Envelope>,
        now: u64,
        waiting_since: &mut BTreeMap<PartyId, u64>,
    ) {
        loop {
            let Some(Slot::Live(p)) = slots.get_mut(&id) else {
                return;
            };
            let start = Instant::now();
            let action = p.poke();
            report.stats.entry(id).or_default().cpu += start.elapsed();
            match action {
                Ok(Action::Wait) => return,
                Ok(Action::Done(o)) => {
                    report.outcomes.insert(id, Ok(o));
                    slots.insert(id, Slot::Finished);
                    return;
                }
                Err(e) => {
                    report.outcomes.insert(id, Err(e));
                    slots.insert(id, Slot::Finished);
                    return;
                }
                Ok(Action::Send(out)) => {
                    if !out.is_empty() {
                        waiting_since.insert(id, now);
                    }
                    for o in out {
                        let targets: Vec<PartyId> = match o.to {
                            Some(t) => vec![t],
                            None => ids.iter().copied().filter(|t| *t != id).collect(),
                        };
                        for to in targets {
                            let stats = report.stats.entry(id).or_default();
                            stats.bytes_sent += o.bytes.len() as u64;
                            stats.messages_sent += 1;
                            self.transmit(id, to, &o.bytes, now, in_flight);
                        }
                    }
                }
            }
        }
    }

    fn transmit(
        &mut self,
        from: PartyId,
        to: PartyId,
        bytes: &[u8],
        now: u64,
        q: &mut Vec<Envelope>,
    ) {
        let f = self.faults.clone_probabilities();
        let reliable = self.faults.reliable_senders.contains(&from);
        if !reliable && self.chance(f.drop) {
            return;
        }
        let copies = if self.chance(f.duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let mut b = bytes.to_vec();
            if !reliable && !b.is_empty() && self.chance(f.corrupt) {
                let i = self.below(b.len() as u64) as usize;
                let bit = 1u8 << self.below(8);
                if let Some(x) = b.get_mut(i) {
                    *x ^= bit;
                }
            }
            let at = if self.chance(f.delay) {
                now + 1 + self.below(f.max_delay.max(1))
            } else {
                now
            };
            q.push(Envelope {
                from,
                to,
                bytes: b,
                at,
            });
        }
    }
}

#[derive(Clone, Copy)]
struct Probabilities {
    drop: f64,
    duplicate: f64,
    corrupt: f64,
    delay: f64,
    max_delay: u64,
}

impl Faults {
    fn clone_probabilities(&self) -> Probabilities {
        Probabilities {
            drop: self.drop,
            duplicate: self.duplicate,
            corrupt: self.corrupt,
            delay: self.delay,
            max_delay: self.max_delay,
        }
    }
}

struct Envelope {
    from: PartyId,
    to: PartyId,
    bytes: Vec<u8>,
    at: u64,
}

type Restorer<O> = fn(&[u8]) -> Result<Box<dyn SimParty<O>>, ProtocolError>;

enum Slot<O> {
    Live(Box<dyn SimParty<O>>),
    Down {
        until: u64,
        snapshot: Option<Zeroizing<Vec<u8>>>,
        restore: Option<Restorer<O>>,
    },
    Finished,
}

/// What the simulator needs from a party.
trait SimParty<O> {
    fn poke(&mut self) -> Result<Action<O>, ProtocolError>;
    fn message(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), ProtocolError>;
    fn timeout(&mut self) -> Result<(), ProtocolError>;
    fn snapshot(&self) -> Option<Zeroizing<Vec<u8>>>;
    fn restorer(&self) -> Option<Restorer<O>>;
}

struct Plain<O>(Box<dyn Protocol<Output = O>>);

impl<O> SimParty<O> for Plain<O> {
    fn poke(&mut self) -> Result<Action<O>, ProtocolError> {
        self.0.poke()
    }
    fn message(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.0.message(from, bytes)
    }
    fn timeout(&mut self) -> Result<(), ProtocolError> {
        self.0.timeout()
    }
    fn snapshot(&self) -> Option<Zeroizing<Vec<u8>>> {
        None
    }
    fn restorer(&self) -> Option<Restorer<O>> {
        None
    }
}

struct Durable<P>(P);

impl<P: Restartable> SimParty<P::Output> for Durable<P> {
    fn poke(&mut self) -> Result<Action<P::Output>, ProtocolError> {
        self.0.poke()
    }
    fn message(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.0.message(from, bytes)
    }
    fn timeout(&mut self) -> Result<(), ProtocolError> {
        self.0.timeout()
    }
    fn snapshot(&self) -> Option<Zeroizing<Vec<u8>>> {
        Some(self.0.snapshot())
    }
    fn restorer(&self) -> Option<Restorer<P::Output>> {
        Some(|b| P::restore(b).map(|p| Box::new(Durable(p)) as Box<dyn SimParty<P::Output>>))
    }
}

impl<G: crate::DkgGroup> Restartable for crate::KeyGen<G> {
    fn snapshot(&self) -> Zeroizing<Vec<u8>> {
        crate::KeyGen::snapshot(self)
    }
    fn restore(bytes: &[u8]) -> Result<Self, ProtocolError> {
        crate::KeyGen::restore(bytes)
    }
}

/// Builders for test and benchmark runs of the protocols of this crate.
pub mod setup {
    use std::collections::{BTreeMap, BTreeSet};

    use lit_crypto::protocol::{PartyId, ProtocolError};
    use rand_core::{CryptoRng, RngCore};

    use crate::{DkgGroup, IdentityKey, IdentitySecret, KeyGen, KeyShare, PublicKeySet, Session};

    /// Fresh identity keys for `ids`.
    pub fn identities(
        ids: impl IntoIterator<Item = PartyId>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> BTreeMap<PartyId, IdentitySecret> {
        ids.into_iter()
            .map(|p| (p, IdentitySecret::random(&mut *rng)))
            .collect()
    }

    /// The public identity keys of `secrets`.
    pub fn public_identities(
        secrets: &BTreeMap<PartyId, IdentitySecret>,
    ) -> BTreeMap<PartyId, IdentityKey> {
        secrets
            .iter()
            .map(|(p, s)| (*p, *s.verifying_key()))
            .collect()
    }

    /// The parties of a DKG among `ids` with threshold `t`.
    pub fn dkg<G: DkgGroup>(
        label: &str,
        epoch: u64,
        secrets: &BTreeMap<PartyId, IdentitySecret>,
        t: usize,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<(PartyId, KeyGen<G>)>, ProtocolError> {
        let session = Session::dkg(label, epoch, public_identities(secrets), t);
        secrets
            .iter()
            .map(|(p, s)| Ok((*p, KeyGen::dkg(session.clone(), *p, s.clone(), rng)?)))
            .collect()
    }

    /// The parties of a refresh of `shares` (every holder takes part).
    pub fn refresh<G: DkgGroup>(
        label: &str,
        epoch: u64,
        secrets: &BTreeMap<PartyId, IdentitySecret>,
        shares: &BTreeMap<PartyId, KeyShare<G>>,
        old: &PublicKeySet<G>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<(PartyId, KeyGen<G>)>, ProtocolError> {
        let ids: BTreeMap<PartyId, IdentityKey> = public_identities(secrets);
        let session = Session::refresh(label, epoch, ids, old.clone());
        secrets
            .iter()
            .map(|(p, s)| {
                Ok((
                    *p,
                    KeyGen::new(session.clone(), *p, s.clone(), shares.get(p).cloned(), rng)?,
                ))
            })
            .collect()
    }

    /// The parties of a reshare of `old` from `dealers` (who hold `shares`) to `receivers`
    /// with threshold `t`; `secrets` covers both sets.
    #[allow(clippy::too_many_arguments)]
    pub fn reshare<G: DkgGroup>(
        label: &str,
        epoch: u64,
        secrets: &BTreeMap<PartyId, IdentitySecret>,
        dealers: &BTreeSet<PartyId>,
        receivers: &BTreeSet<PartyId>,
        t: usize,
        shares: &BTreeMap<PartyId, KeyShare<G>>,
        old: &PublicKeySet<G>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<(PartyId, KeyGen<G>)>, ProtocolError> {
        let everyone: BTreeSet<PartyId> = dealers.union(receivers).copied().collect();
        let ids: BTreeMap<PartyId, IdentityKey> = public_identities(secrets)
            .into_iter()
            .filter(|(p, _)| everyone.contains(p))
            .collect();
        let session = Session::reshare(
            label,
            epoch,
            dealers.clone(),
            receivers.clone(),
            t,
            ids,
            old.clone(),
        );
        everyone
            .iter()
            .map(|p| {
                let s = secrets.get(p).cloned().ok_or_else(|| {
                    ProtocolError::InvalidParameters(format!("no identity for {p}"))
                })?;
                let share = if dealers.contains(p) {
                    shares.get(p).cloned()
                } else {
                    None
                };
                Ok((*p, KeyGen::new(session.clone(), *p, s, share, rng)?))
            })
            .collect()
    }
}
