//! Distributed key generation, refresh and reshare: one sans-I/O protocol, [`KeyGen`], in
//! three modes that differ only in the constant term each dealer shares and in how receivers
//! combine what they get.
//!
//! | mode      | dealers        | dealer `i` shares `f_i` with `f_i(0) =` | receiver `j` holds                       |
//! |-----------|----------------|------------------------------------------|------------------------------------------|
//! | DKG       | all `n`        | random `a_{i,0}` (with proof of knowledge) | `Σ_{i∈Q} f_i(j)`                        |
//! | refresh   | all `n`        | `0`                                      | `s_j + Σ_{i∈Q} f_i(j)`                   |
//! | reshare   | `≥ T` old      | its old share `s_i`                      | `Σ_{i∈Q} λ_i^Q f_i(j)` (new set, new `T'`) |
//!
//! The DKG is Pedersen's (1991) with Feldman commitments and the complaint/justification phase
//! of Gennaro–Jarecki–Krawczyk–Rabin (GJKR, 2007, "Secure distributed key generation for
//! discrete-log based cryptosystems", protocol *Joint-Feldman* with complaints), plus the
//! proof of knowledge of the constant term of FROST's KeyGen (Komlo–Goldberg 2020) against
//! rogue-key attacks. Like FROST's, it does not prevent the bias of the public key that GJKR's
//! second (Pedersen-commitment) phase prevents; for Schnorr/BLS/ECDSA keys that bias is
//! harmless (GJKR §4; Gennaro et al. 2003 "Secure applications of Pedersen's DKG").
//!
//! Reshare is the protocol of Desmedt–Jajodia (1997) with the verifiability of Wong–Wang–Wing
//! (2002, "Verifiable secret redistribution"): old member `i` deals its share `s_i`; everyone
//! checks `C_{i,0}` against the old public key share `Y_i`; new member `j` computes
//! `s'_j = Σ_{i∈Q} λ_i^Q · f_i(j)` with Lagrange coefficients over the qualified old dealers `Q`
//! (at least `T` of them), so `Σ λ_i C_{i,0} = Σ λ_i Y_i = Y` and the group key is unchanged.
//! Dealing `s_i` rather than `λ_i s_i` lets `Q` be decided *after* the complaint phase.
//!
//! ## Rounds
//! 1. Dealer `i` broadcasts its Feldman commitment `C_i` (and proof of knowledge) and sends
//!    `s_{i,j}` privately to each receiver `j`.
//! 2. Everyone broadcasts the echo (digest and signature) of every round-1 broadcast it got,
//!    and complains about every dealer it holds no valid `(C_i, s_{i,j})` from. Receivers check
//!    all received shares with one random linear combination (one multi-scalar multiplication).
//! 3. Everyone broadcasts the echo of round 2; an accused dealer adds its signed round-1 message
//!    and the disputed shares in the clear. A dealer stays qualified iff every complaint against
//!    it is answered by a share that matches its commitment.
//! 4. Everyone broadcasts the echo of round 3 and the hash of its result (qualified set and
//!    aggregated commitment). A party outputs only if every confirmation it holds from a
//!    party it did not disqualify equals its own; otherwise it aborts naming the culprits.
//!
//! Broadcasts are signed with the sender's identity key, so a digest in an echo that differs
//! from the one received, under a valid signature, proves that the sender equivocated (sent two
//! different messages for the same round); an echo with a bad signature proves the echoer lied.
//!
//! ## Private messages
//! Round-1 shares are the only private messages (`Outgoing { to: Some(j) }`). They are **not**
//! encrypted by this crate: the transport must deliver them confidentially and authenticated to
//! the recipient (the node's peer transport encrypts them to the recipient's identity key).
//!
//! ## Persistence
//! A party's whole state is a deterministic function of its configuration, a 32-byte seed drawn
//! at construction, and the sequence of accepted inputs (messages and timeouts). [`KeyGen::snapshot`]
//! writes exactly that (it holds secrets: the node must store it encrypted, and must persist it
//! before sending what a step produced). [`KeyGen::restore`] replays it, so a restarted party
//! produces byte-identical messages — it can never equivocate by restarting — and re-sends the
//! messages of its latest round.
//!
//! ## Layout
//! - `session`: [`Session`] and [`Kind`], what defines a run, and its session id;
//! - `messages`: one struct per round, one enum for all, their strict encoding;
//! - `inbox`: intake — every received message checked, attributed and stored;
//! - `decide`: the decisions as pure functions — complaints, echo comparison, the qualified
//!   set, the aggregated commitment, the final share, the verdict on the confirmations;
//! - `rounds`: dealing and the end of each round (draw randomness, decide, broadcast);
//! - `snapshot`: persistence by replay.

mod decide;
mod inbox;
pub(crate) mod messages;
mod rounds;
mod session;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use lit_crypto::protocol::{Action, Outgoing, PartyId, Protocol, ProtocolError};
use lit_crypto::shamir::{Polynomial, SecretShare};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use zeroize::Zeroizing;

use crate::group::{eval_in_exponent, hash_to_scalar, DkgGroup};
use decide::Decision;
use inbox::Inbox;
use messages::Context;
use snapshot::Event;

pub use messages::VERSION;
pub use session::{Kind, Session};

/// A participant's public identity key: signs its broadcasts (ECDSA over secp256k1).
pub type IdentityKey = k256::ecdsa::VerifyingKey;
/// A participant's secret identity key (zeroized on drop).
pub type IdentitySecret = k256::ecdsa::SigningKey;

/// The public side of a shared key: threshold, group public key and every holder's public key
/// share `Y_j = s_j · G`. Identical at every honest party after a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKeySet<G: DkgGroup> {
    /// Shares needed to use the key.
    pub threshold: usize,
    /// The group public key `Y`.
    pub group_key: G,
    /// The Feldman commitment `(A_k)_{k<T}` to the sharing polynomial (`A_0 = Y`): for a DKG
    /// `Σ_{i∈Q} C_{i,k}`, for a refresh the old one plus that, for a reshare `Σ λ_i C_{i,k}`.
    pub commitment: Vec<G>,
    /// `Y_j = Σ_k A_k j^k` for every holder `j`.
    pub shares: BTreeMap<PartyId, G>,
}

impl<G: DkgGroup> PublicKeySet<G> {
    /// Whether the commitment has `threshold` points, starts with the group key, and every
    /// public key share is its value at the holder's id.
    pub fn is_consistent(&self) -> bool {
        if self.commitment.len() != self.threshold
            || self.commitment.first() != Some(&self.group_key)
            || !self
                .shares
                .iter()
                .all(|(p, y)| eval_in_exponent(&self.commitment, u64::from(p.get())) == *y)
        {
            return false;
        }
        true
    }
}

/// One holder's share of a key together with the public key set. The secret is zeroized on
/// drop and never printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyShare<G: DkgGroup> {
    /// `s_j` (its `id` is the holder).
    pub secret: SecretShare<G::Scalar>,
    /// The public side.
    pub public: PublicKeySet<G>,
}

impl<G: DkgGroup> KeyShare<G> {
    /// The holder.
    pub fn id(&self) -> PartyId {
        self.secret.id
    }
}

/// Misbehaviour a party observed; the disqualified set itself is agreed by all honest parties.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Sent no valid message for this round before its deadline.
    Silent {
        /// The round.
        round: u8,
    },
    /// A dealer that did not answer complaints with shares matching its commitment (or never
    /// produced a valid commitment).
    Unjustified {
        /// Who complained.
        complainers: Vec<PartyId>,
    },
    /// Sent two different signed broadcasts for the same round (proved by the signatures).
    Equivocation {
        /// The round.
        round: u8,
    },
    /// Echoed a broadcast of another party under a signature that does not verify.
    FalseEcho,
    /// Its commitment has points outside the prime-order subgroup.
    InvalidCommitment,
    /// Its confirmation differs from ours.
    ConfirmationMismatch,
    /// Others echoed a broadcast of this party that never reached us (or the reverse): it
    /// delivered selectively.
    SelectiveDelivery {
        /// The round of the broadcast.
        round: u8,
    },
}

/// What a party holds at the end of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGenOutput<G: DkgGroup> {
    /// The party's new share (`None` for an old member that is not in the new set).
    pub share: Option<KeyShare<G>>,
    /// The public key set (identical at all honest parties).
    pub public: PublicKeySet<G>,
    /// The qualified dealers `Q` (identical at all honest parties).
    pub qualified: BTreeSet<PartyId>,
    /// The dealers that were disqualified (identical at all honest parties).
    pub disqualified: BTreeSet<PartyId>,
    /// What this party saw each misbehaving party do.
    pub faults: BTreeMap<PartyId, Vec<Fault>>,
}

/// The secret configuration of a party.
struct Config<G: DkgGroup> {
    session: Session<G>,
    me: PartyId,
    identity: IdentitySecret,
    old_share: Option<SecretShare<G::Scalar>>,
    seed: Zeroizing<[u8; 32]>,
}

/// One party of a DKG, refresh or reshare run (see the module documentation).
pub struct KeyGen<G: DkgGroup> {
    cfg: Config<G>,
    sid: [u8; 32],
    participants: BTreeSet<PartyId>,
    rng: ChaCha20Rng,
    poly: Option<Polynomial<G::Scalar>>,
    /// My signed round-1 broadcast, re-sent in a justification.
    my_commit_bytes: Vec<u8>,
    /// The round being collected (1..=4); 5 once finished.
    round: u8,
    forced: bool,
    inbox: Inbox<G>,
    /// Valid shares `s_{i,me}` per dealer.
    valid_shares: BTreeMap<PartyId, SecretShare<G::Scalar>>,
    faults: BTreeMap<PartyId, Vec<Fault>>,
    /// `(party, round)` proven to have equivocated.
    equivocators: BTreeSet<(PartyId, u8)>,
    /// Signed digests of broadcasts others echoed but that never reached us: `(sender, round)`.
    unseen: BTreeSet<(PartyId, u8)>,
    /// Broadcasts we hold that a non-faulty echoer did not list: `(sender, round)`.
    unlisted: BTreeSet<(PartyId, u8)>,
    /// Signed round-1 digests echoed by others, for dealers whose commitment we lack.
    echoed_commits: BTreeMap<PartyId, Vec<[u8; 32]>>,
    decision: Option<Decision<G>>,
    outcome: Option<Result<KeyGenOutput<G>, ProtocolError>>,
    outbox: Vec<Outgoing>,
    last_sent: Vec<Outgoing>,
    log: Vec<Event>,
}

impl<G: DkgGroup> fmt::Debug for KeyGen<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyGen")
            .field("kind", &self.cfg.session.kind)
            .field("me", &self.cfg.me)
            .field("round", &self.round)
            .finish_non_exhaustive()
    }
}

impl<G: DkgGroup> KeyGen<G> {
    /// A party of a fresh DKG.
    pub fn dkg(
        session: Session<G>,
        me: PartyId,
        identity: IdentitySecret,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, ProtocolError> {
        Self::new(session, me, identity, None, rng)
    }

    /// A party of a refresh or reshare; `old_share` is its current key share if it is a dealer.
    pub fn new(
        session: Session<G>,
        me: PartyId,
        identity: IdentitySecret,
        old_share: Option<KeyShare<G>>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, ProtocolError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        let old_share = old_share.map(|k| k.secret.clone());
        Self::from_config(Config {
            session,
            me,
            identity,
            old_share,
            seed,
        })
    }

    fn from_config(cfg: Config<G>) -> Result<Self, ProtocolError> {
        let s = &cfg.session;
        s.validate()?;
        let participants = s.participants();
        if !participants.contains(&cfg.me) {
            return Err(ProtocolError::InvalidParameters(
                "this party is not a participant".into(),
            ));
        }
        if s.identities.get(&cfg.me) != Some(cfg.identity.verifying_key()) {
            return Err(ProtocolError::InvalidParameters(
                "identity key does not match the session".into(),
            ));
        }
        let mut dealer = s.dealers.contains(&cfg.me);
        if dealer && s.kind != Kind::Dkg && cfg.old_share.is_none() && s.receivers.contains(&cfg.me)
        {
            // a listed dealer that lost its old share (it missed the last handover) takes part
            // as a receiver only: it deals nothing, and the others disqualify it as a silent
            // dealer, as they would if it were down
            dealer = false;
        }
        if dealer && s.kind != Kind::Dkg {
            let ok = match (&cfg.old_share, s.old.as_ref()) {
                (Some(share), Some(old)) => {
                    share.id == cfg.me
                        && old.shares.get(&cfg.me) == Some(&(G::generator() * share.value))
                }
                _ => false,
            };
            if !ok {
                return Err(ProtocolError::InvalidParameters(
                    "a refresh/reshare dealer needs its old share, matching its public share"
                        .into(),
                ));
            }
        }
        let mut rng = ChaCha20Rng::from_seed(*cfg.seed);
        let mut me = Self {
            sid: s.id(),
            participants,
            poly: None,
            my_commit_bytes: Vec::new(),
            round: 1,
            forced: false,
            inbox: Inbox::new(),
            valid_shares: BTreeMap::new(),
            faults: BTreeMap::new(),
            equivocators: BTreeSet::new(),
            unseen: BTreeSet::new(),
            unlisted: BTreeSet::new(),
            echoed_commits: BTreeMap::new(),
            decision: None,
            outcome: None,
            outbox: Vec::new(),
            last_sent: Vec::new(),
            log: Vec::new(),
            rng: ChaCha20Rng::from_seed([0; 32]),
            cfg,
        };
        if dealer {
            me.deal(&mut rng)?;
        }
        me.rng = rng;
        me.advance();
        Ok(me)
    }

    /// The party this object plays.
    pub fn me(&self) -> PartyId {
        self.cfg.me
    }

    /// The session id every message carries.
    pub fn session_id(&self) -> [u8; 32] {
        self.sid
    }

    /// The round being collected (1 to 4; 5 once finished).
    pub fn round(&self) -> u8 {
        self.round
    }

    pub(crate) fn identity(&self) -> &IdentitySecret {
        &self.cfg.identity
    }

    pub(crate) fn participant_set(&self) -> &BTreeSet<PartyId> {
        &self.participants
    }

    pub(crate) fn ctx(&self) -> Context<'_> {
        Context {
            kind: self.cfg.session.kind.code(),
            sid: &self.sid,
            threshold: self.cfg.session.threshold,
        }
    }

    fn note(&mut self, who: PartyId, fault: Fault) {
        let v = self.faults.entry(who).or_default();
        if !v.contains(&fault) {
            v.push(fault);
        }
    }

    /// Records faults in the order they were found.
    fn note_all(&mut self, faults: Vec<(PartyId, Fault)>) {
        for (who, fault) in faults {
            self.note(who, fault);
        }
    }

    /// Whether every message the current round waits for is here.
    fn round_complete(&self) -> bool {
        let s = &self.cfg.session;
        self.inbox.complete(
            self.round,
            &s.dealers,
            &self.participants,
            s.receivers.contains(&self.cfg.me),
        )
    }

    /// Closes every round that can be closed.
    fn advance(&mut self) {
        while self.outcome.is_none() && self.round <= 4 {
            if !(self.forced || self.round_complete()) {
                return;
            }
            self.forced = false;
            let r = match self.round {
                1 => self.close_round1(),
                2 => self.close_round2(),
                3 => self.close_round3(),
                _ => self.close_round4(),
            };
            self.round += 1;
            if let Err(e) = r {
                self.outcome = Some(Err(e));
            }
        }
    }
}

impl<G: DkgGroup> Protocol for KeyGen<G> {
    type Output = KeyGenOutput<G>;

    fn poke(&mut self) -> Result<Action<Self::Output>, ProtocolError> {
        if !self.outbox.is_empty() {
            return Ok(Action::Send(std::mem::take(&mut self.outbox)));
        }
        match &self.outcome {
            Some(Ok(o)) => Ok(Action::Done(o.clone())),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(Action::Wait),
        }
    }

    fn message(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), ProtocolError> {
        if self.round > 4 {
            return Err(ProtocolError::WrongRound {
                from,
                expected: self.round,
                got: bytes.get(messages::HEADER_LEN - 2).copied().unwrap_or(0),
            });
        }
        self.deliver(from, bytes)?;
        self.log.push(Event::Message(from, bytes.to_vec()));
        self.advance();
        Ok(())
    }

    fn timeout(&mut self) -> Result<(), ProtocolError> {
        if self.round <= 4 && self.outcome.is_none() {
            self.log.push(Event::Timeout);
            self.forced = true;
            self.advance();
        }
        Ok(())
    }
}

/// The challenge of the Schnorr proof of knowledge of `a_{i,0}` (FROST KeyGen round 1), bound
/// to the session and the dealer.
fn pok_challenge<G: DkgGroup>(sid: &[u8; 32], dealer: PartyId, a0: &G, r: &G) -> G::Scalar {
    hash_to_scalar(
        b"lit-dkg/pok",
        &[
            sid,
            &dealer.get().to_be_bytes(),
            a0.to_bytes().as_ref(),
            r.to_bytes().as_ref(),
        ],
    )
}
