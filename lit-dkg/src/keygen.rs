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

pub(crate) mod messages;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ff::{Field, PrimeField};
use lit_crypto::protocol::{Action, Outgoing, PartyId, Protocol, ProtocolError};
use lit_crypto::shamir::{lagrange_coefficients, Polynomial, SecretShare};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::group::{eval_in_exponent, hash_to_scalar, DkgGroup};
use crate::wire::{Reader, Writer};
use messages::{
    decode, encode, header, verify, Context, Echo, Message, MsgType, Parsed, Round1Commit,
    Round1Share, Round2Complain, Round3Justify, Round4Confirm, SIG_LEN,
};

pub use messages::VERSION;

/// A participant's public identity key: signs its broadcasts (ECDSA over secp256k1).
pub type IdentityKey = k256::ecdsa::VerifyingKey;
/// A participant's secret identity key (zeroized on drop).
pub type IdentitySecret = k256::ecdsa::SigningKey;

/// Which of the three protocols a session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Fresh key generation.
    Dkg,
    /// Same set, same key, new shares.
    Refresh,
    /// Old set `(n, T)` to new set `(n', T')`, same key.
    Reshare,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Dkg => 1,
            Kind::Refresh => 2,
            Kind::Reshare => 3,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => Kind::Dkg,
            2 => Kind::Refresh,
            3 => Kind::Reshare,
            _ => return None,
        })
    }
}

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

/// Everything that defines a run; every participant must be given the same.
#[derive(Clone, Debug)]
pub struct Session<G: DkgGroup> {
    /// Which protocol.
    pub kind: Kind,
    /// What the key is for (e.g. `"bls-root"`), bound into the session id.
    pub label: String,
    /// The epoch this run belongs to.
    pub epoch: u64,
    /// Who deals (DKG and refresh: everybody; reshare: participating old members, at least `T`).
    pub dealers: BTreeSet<PartyId>,
    /// Who ends with a share (DKG and refresh: everybody; reshare: the new set).
    pub receivers: BTreeSet<PartyId>,
    /// The threshold of the resulting sharing.
    pub threshold: usize,
    /// The identity key of every participant (dealers and receivers).
    pub identities: BTreeMap<PartyId, IdentityKey>,
    /// The current public key set (refresh and reshare).
    pub old: Option<PublicKeySet<G>>,
}

impl<G: DkgGroup> Session<G> {
    /// A DKG among the parties of `identities` with threshold `threshold`.
    pub fn dkg(
        label: &str,
        epoch: u64,
        identities: BTreeMap<PartyId, IdentityKey>,
        threshold: usize,
    ) -> Self {
        let all: BTreeSet<PartyId> = identities.keys().copied().collect();
        Self {
            kind: Kind::Dkg,
            label: label.to_string(),
            epoch,
            dealers: all.clone(),
            receivers: all,
            threshold,
            identities,
            old: None,
        }
    }

    /// A refresh of `old` among its holders (identities of all of them).
    pub fn refresh(
        label: &str,
        epoch: u64,
        identities: BTreeMap<PartyId, IdentityKey>,
        old: PublicKeySet<G>,
    ) -> Self {
        let all: BTreeSet<PartyId> = old.shares.keys().copied().collect();
        Self {
            kind: Kind::Refresh,
            label: label.to_string(),
            epoch,
            dealers: all.clone(),
            receivers: all,
            threshold: old.threshold,
            identities,
            old: Some(old),
        }
    }

    /// A reshare of `old` from `dealers` (old holders, at least `old.threshold`) to `receivers`
    /// with threshold `threshold`; `identities` covers both sets.
    pub fn reshare(
        label: &str,
        epoch: u64,
        dealers: BTreeSet<PartyId>,
        receivers: BTreeSet<PartyId>,
        threshold: usize,
        identities: BTreeMap<PartyId, IdentityKey>,
        old: PublicKeySet<G>,
    ) -> Self {
        Self {
            kind: Kind::Reshare,
            label: label.to_string(),
            epoch,
            dealers,
            receivers,
            threshold,
            identities,
            old: Some(old),
        }
    }

    /// Dealers and receivers together.
    pub fn participants(&self) -> BTreeSet<PartyId> {
        self.dealers.union(&self.receivers).copied().collect()
    }

    /// The session id: SHA-256 over a domain tag, the protocol, version, group, label, epoch,
    /// both sets, the threshold, the identity keys and the old public key set.
    pub fn id(&self) -> [u8; 32] {
        let mut w = Writer::default();
        w.bytes(b"lit-dkg/session")
            .u8(VERSION)
            .u8(self.kind.code())
            .bytes(G::NAME.as_bytes())
            .bytes(self.label.as_bytes())
            .u64(self.epoch)
            .len(self.threshold);
        w.len(self.dealers.len());
        self.dealers.iter().for_each(|p| {
            w.party(*p);
        });
        w.len(self.receivers.len());
        self.receivers.iter().for_each(|p| {
            w.party(*p);
        });
        w.len(self.identities.len());
        for (p, k) in &self.identities {
            w.party(*p).raw(&k.to_sec1_bytes());
        }
        if let Some(old) = &self.old {
            w.u8(1).len(old.threshold).point(&old.group_key);
            w.len(old.commitment.len());
            old.commitment.iter().for_each(|c| {
                w.point(c);
            });
            w.len(old.shares.len());
            for (p, y) in &old.shares {
                w.party(*p).point(y);
            }
        } else {
            w.u8(0);
        }
        Sha256::digest(&w.buf).into()
    }

    /// The least number of qualified dealers for the run to succeed: `T'` for a DKG or refresh
    /// (so that at least one honest dealer contributes when fewer than `T'` parties are
    /// faulty), the old threshold `T` for a reshare (to interpolate).
    pub fn min_qualified(&self) -> usize {
        match (self.kind, &self.old) {
            (Kind::Reshare, Some(old)) => old.threshold,
            _ => self.threshold,
        }
    }

    fn validate(&self) -> Result<(), ProtocolError> {
        let bad = |s: &str| Err(ProtocolError::InvalidParameters(s.to_string()));
        if self.dealers.is_empty() || self.receivers.is_empty() {
            return bad("no dealers or no receivers");
        }
        if self.threshold == 0 || self.threshold > self.receivers.len() {
            return bad("threshold must be between 1 and the number of receivers");
        }
        if !self
            .participants()
            .iter()
            .all(|p| self.identities.contains_key(p))
        {
            return bad("an identity key is missing");
        }
        match (self.kind, &self.old) {
            (Kind::Dkg, None) => {
                if self.dealers != self.receivers {
                    return bad("DKG dealers and receivers must be the same set");
                }
            }
            (Kind::Refresh, Some(old)) => {
                let holders: BTreeSet<PartyId> = old.shares.keys().copied().collect();
                if self.dealers != holders || self.receivers != holders {
                    return bad("refresh runs among exactly the holders of the old key");
                }
                if self.threshold != old.threshold {
                    return bad("refresh keeps the threshold");
                }
            }
            (Kind::Reshare, Some(old)) => {
                if !self.dealers.iter().all(|d| old.shares.contains_key(d)) {
                    return bad("a reshare dealer holds no old share");
                }
                if self.dealers.len() < old.threshold || old.threshold == 0 {
                    return bad("a reshare needs at least T old members");
                }
            }
            _ => return bad("refresh and reshare need the old public key set, DKG none"),
        }
        if let Some(old) = &self.old {
            if old.commitment.len() != old.threshold
                || old.commitment.first() != Some(&old.group_key)
            {
                return bad("the old commitment does not match the old threshold and key");
            }
        }
        Ok(())
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

/// An accepted input, recorded for [`KeyGen::snapshot`].
enum Event {
    Message(PartyId, Vec<u8>),
    Timeout,
}

/// A received broadcast: the message, its digest and signature (and raw bytes for round 1,
/// which a dealer re-sends inside its justification).
struct Signed<T> {
    body: T,
    digest: [u8; 32],
    sig: [u8; SIG_LEN],
}

#[derive(Default)]
struct Inbox<G: DkgGroup> {
    commits: BTreeMap<PartyId, Signed<Round1Commit<G>>>,
    shares: BTreeMap<PartyId, SecretShare<G::Scalar>>,
    complaints: BTreeMap<PartyId, Signed<Round2Complain>>,
    justifications: BTreeMap<PartyId, Signed<Round3Justify<G::Scalar>>>,
    confirms: BTreeMap<PartyId, Signed<Round4Confirm>>,
}

/// The secret configuration of a party.
struct Config<G: DkgGroup> {
    session: Session<G>,
    me: PartyId,
    identity: IdentitySecret,
    old_share: Option<SecretShare<G::Scalar>>,
    seed: Zeroizing<[u8; 32]>,
}

/// What round 3 decided.
struct Decision<G: DkgGroup> {
    output: KeyGenOutput<G>,
    result: [u8; 32],
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

const SNAPSHOT_TAG: &[u8; 8] = b"LDKGSNAP";

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
        let dealer = s.dealers.contains(&cfg.me);
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
            inbox: Inbox {
                commits: BTreeMap::new(),
                shares: BTreeMap::new(),
                complaints: BTreeMap::new(),
                justifications: BTreeMap::new(),
                confirms: BTreeMap::new(),
            },
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

    /// Round 1: choose `f_i`, commit, prove, share.
    fn deal(&mut self, rng: &mut ChaCha20Rng) -> Result<(), ProtocolError> {
        let s = &self.cfg.session;
        let constant = match s.kind {
            Kind::Dkg => G::Scalar::random(&mut *rng),
            Kind::Refresh => G::Scalar::ZERO,
            Kind::Reshare => self
                .cfg
                .old_share
                .as_ref()
                .map(|x| x.value)
                .unwrap_or(G::Scalar::ZERO),
        };
        let poly = Polynomial::random(constant, s.threshold, rng)
            .map_err(|e| ProtocolError::InvalidParameters(e.to_string()))?;
        let c: Vec<G> = poly.commit::<G>().points().to_vec();
        let pok = if s.kind == Kind::Dkg {
            let mut k = G::Scalar::random(&mut *rng);
            let r = G::generator() * k;
            let a0 = c.first().copied().unwrap_or_else(G::identity);
            let chall = pok_challenge::<G>(&self.sid, self.cfg.me, &a0, &r);
            let mu = k + poly.constant() * chall;
            k = G::Scalar::ZERO; // the nonce is a secret: do not leave it on the stack
            let _ = k;
            Some((r, mu))
        } else {
            None
        };
        let commit = Message::Commit(Round1Commit { c, pok });
        let (bytes, _, _) = encode(&self.ctx(), &commit, &self.cfg.identity)?;
        self.my_commit_bytes = bytes.clone();
        let mut out = vec![Outgoing { to: None, bytes }];
        let receivers: Vec<PartyId> = s.receivers.iter().copied().collect();
        for j in receivers {
            let msg: Message<G> = Message::Share(Round1Share { s: poly.share(j) });
            let (bytes, _, _) = encode(&self.ctx(), &msg, &self.cfg.identity)?;
            if j == self.cfg.me {
                self.accept_own(bytes)?;
            } else {
                out.push(Outgoing { to: Some(j), bytes });
            }
        }
        self.accept_own(self.my_commit_bytes.clone())?;
        self.poly = Some(poly);
        self.send(out);
        Ok(())
    }

    fn send(&mut self, out: Vec<Outgoing>) {
        self.last_sent.clone_from(&out);
        self.outbox.extend(out);
    }

    /// Encodes a broadcast, stores it as received from myself and queues it.
    fn broadcast(&mut self, msg: Message<G>) -> Result<(), ProtocolError> {
        let (bytes, _, _) = encode(&self.ctx(), &msg, &self.cfg.identity)?;
        self.accept_own(bytes.clone())?;
        self.send(vec![Outgoing { to: None, bytes }]);
        Ok(())
    }

    fn accept_own(&mut self, bytes: Vec<u8>) -> Result<(), ProtocolError> {
        let me = self.cfg.me;
        let (t, _) = header(&self.ctx(), me, &bytes)?;
        let key = *self.cfg.identity.verifying_key();
        let parsed = decode::<G>(&self.ctx(), me, &bytes, t, &key)?;
        self.store(me, parsed)
    }

    /// Checks and stores a decoded message (duplicates and equivocations are refused).
    fn store(&mut self, from: PartyId, p: Parsed<G>) -> Result<(), ProtocolError> {
        let round = p.msg.msg_type().round();
        fn put<T>(
            map: &mut BTreeMap<PartyId, Signed<T>>,
            from: PartyId,
            round: u8,
            s: Signed<T>,
        ) -> Result<(), ProtocolError> {
            match map.get(&from) {
                Some(old) if old.digest == s.digest => {
                    Err(ProtocolError::Duplicate { from, round })
                }
                Some(_) => Err(ProtocolError::Equivocation { from, round }),
                None => {
                    map.insert(from, s);
                    Ok(())
                }
            }
        }
        let (digest, sig) = (p.digest, p.sig);
        match p.msg {
            Message::Commit(body) => {
                self.check_commit(from, &body)?;
                put(
                    &mut self.inbox.commits,
                    from,
                    round,
                    Signed { body, digest, sig },
                )
            }
            Message::Share(mut body) => {
                body.s.id = self.cfg.me;
                match self.inbox.shares.get(&from) {
                    Some(old) if old.value == body.s.value => {
                        Err(ProtocolError::Duplicate { from, round })
                    }
                    Some(_) => Err(ProtocolError::Equivocation { from, round }),
                    None => {
                        self.inbox.shares.insert(from, body.s);
                        Ok(())
                    }
                }
            }
            Message::Complain(body) => {
                self.check_listed(from, &body.echo, &self.cfg.session.dealers)?;
                if !body
                    .complaints
                    .iter()
                    .all(|d| self.cfg.session.dealers.contains(d))
                {
                    return Err(ProtocolError::Malformed {
                        from,
                        reason: "complaint against a non-dealer".into(),
                    });
                }
                put(
                    &mut self.inbox.complaints,
                    from,
                    round,
                    Signed { body, digest, sig },
                )
            }
            Message::Justify(body) => {
                self.check_listed(from, &body.echo, &self.participants)?;
                if (body.commit.is_some() || !body.shares.is_empty())
                    && !self.cfg.session.dealers.contains(&from)
                {
                    return Err(ProtocolError::Malformed {
                        from,
                        reason: "justification from a non-dealer".into(),
                    });
                }
                put(
                    &mut self.inbox.justifications,
                    from,
                    round,
                    Signed { body, digest, sig },
                )
            }
            Message::Confirm(body) => {
                self.check_listed(from, &body.echo, &self.participants)?;
                put(
                    &mut self.inbox.confirms,
                    from,
                    round,
                    Signed { body, digest, sig },
                )
            }
        }
    }

    fn check_listed(
        &self,
        from: PartyId,
        echo: &[Echo],
        allowed: &BTreeSet<PartyId>,
    ) -> Result<(), ProtocolError> {
        if echo.iter().all(|e| allowed.contains(&e.from)) {
            Ok(())
        } else {
            Err(ProtocolError::Malformed {
                from,
                reason: "echo of a party that cannot have sent in that round".into(),
            })
        }
    }

    /// The public checks of a round-1 commitment: degree (checked by the decoder), and the
    /// constant term: proof of knowledge (DKG), identity (refresh), old public share (reshare).
    fn check_commit(&self, from: PartyId, c: &Round1Commit<G>) -> Result<(), ProtocolError> {
        let bad = |reason: &str| {
            Err(ProtocolError::Malformed {
                from,
                reason: reason.to_string(),
            })
        };
        let a0 = c.c.first().copied().unwrap_or_else(G::identity);
        match (self.cfg.session.kind, &c.pok) {
            (Kind::Dkg, Some((r, mu))) => {
                let chall = pok_challenge::<G>(&self.sid, from, &a0, r);
                if G::generator() * mu != *r + a0 * chall || bool::from(a0.is_identity()) {
                    return bad("proof of knowledge of the constant term does not verify");
                }
            }
            (Kind::Dkg, None) => return bad("missing proof of knowledge"),
            (Kind::Refresh, None) => {
                if !bool::from(a0.is_identity()) {
                    return bad("refresh commitment does not share zero");
                }
            }
            (Kind::Reshare, None) => {
                let old = self
                    .cfg
                    .session
                    .old
                    .as_ref()
                    .and_then(|o| o.shares.get(&from));
                if old != Some(&a0) {
                    return bad("reshare commitment does not share the dealer's old share");
                }
            }
            _ => return bad("unexpected proof of knowledge"),
        }
        Ok(())
    }

    fn note(&mut self, who: PartyId, fault: Fault) {
        let v = self.faults.entry(who).or_default();
        if !v.contains(&fault) {
            v.push(fault);
        }
    }

    fn round_complete(&self, round: u8) -> bool {
        let s = &self.cfg.session;
        match round {
            1 => {
                s.dealers.iter().all(|d| self.inbox.commits.contains_key(d))
                    && (!s.receivers.contains(&self.cfg.me)
                        || s.dealers.iter().all(|d| self.inbox.shares.contains_key(d)))
            }
            2 => self
                .participants
                .iter()
                .all(|p| self.inbox.complaints.contains_key(p)),
            3 => self
                .participants
                .iter()
                .all(|p| self.inbox.justifications.contains_key(p)),
            4 => self
                .participants
                .iter()
                .all(|p| self.inbox.confirms.contains_key(p)),
            _ => false,
        }
    }

    /// Closes every round that can be closed.
    fn advance(&mut self) {
        while self.outcome.is_none() && self.round <= 4 {
            if !(self.forced || self.round_complete(self.round)) {
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

    fn silent(&mut self, round: u8, present: BTreeSet<PartyId>, expected: &BTreeSet<PartyId>) {
        for p in expected.difference(&present) {
            self.note(*p, Fault::Silent { round });
        }
    }

    /// End of round 1: verify the received shares in one batch, complain, echo.
    fn close_round1(&mut self) -> Result<(), ProtocolError> {
        let me = self.cfg.me;
        let dealers = self.cfg.session.dealers.clone();
        let present: BTreeSet<PartyId> = self.inbox.commits.keys().copied().collect();
        self.silent(1, present, &dealers);
        let receiver = self.cfg.session.receivers.contains(&me);
        let mut complaints = Vec::new();
        if receiver {
            let candidates: Vec<PartyId> = dealers
                .iter()
                .filter(|d| self.inbox.commits.contains_key(d) && self.inbox.shares.contains_key(d))
                .copied()
                .collect();
            let valid = self.batch_verify(&candidates);
            for d in &dealers {
                if valid.contains(d) {
                    if let Some(share) = self.inbox.shares.get(d) {
                        self.valid_shares.insert(*d, share.clone());
                    }
                } else {
                    complaints.push(*d);
                }
            }
        } else {
            complaints = dealers
                .iter()
                .filter(|d| !self.inbox.commits.contains_key(d))
                .copied()
                .collect();
        }
        let echo = self
            .inbox
            .commits
            .iter()
            .map(|(p, m)| Echo {
                from: *p,
                digest: m.digest,
                sig: m.sig,
            })
            .collect();
        self.broadcast(Message::Complain(Round2Complain { echo, complaints }))
    }

    /// The dealers whose share to me matches their commitment: one check
    /// `(Σ r_i s_{i,j}) · G == Σ r_i · C_i(j)` with random 128-bit `r_i`, and one check per
    /// dealer only if the batch fails (to find the culprits).
    fn batch_verify(&mut self, dealers: &[PartyId]) -> BTreeSet<PartyId> {
        let x = u64::from(self.cfg.me.get());
        let r: Vec<G::Scalar> = (0..dealers.len())
            .map(|_| {
                let hi = u128::from(self.rng.next_u64());
                G::Scalar::from_u128(hi << 64 | u128::from(self.rng.next_u64()))
            })
            .collect();
        let mut commits: Vec<&[G]> = Vec::with_capacity(dealers.len());
        let mut values = Vec::with_capacity(dealers.len());
        let mut ids = Vec::with_capacity(dealers.len());
        for d in dealers {
            if let (Some(c), Some(s)) = (self.inbox.commits.get(d), self.inbox.shares.get(d)) {
                commits.push(&c.body.c);
                values.push(s.value);
                ids.push(*d);
            }
        }
        let r = r.get(..ids.len()).unwrap_or_default();
        let combined = values
            .iter()
            .zip(r)
            .fold(G::Scalar::ZERO, |a, (v, r)| a + *v * r);
        if G::generator() * combined == G::weighted_eval(&commits, r, x) {
            return ids.into_iter().collect();
        }
        ids.iter()
            .zip(commits.iter().zip(&values))
            .filter(|(_, (c, v))| G::generator() * **v == eval_in_exponent(c, x))
            .map(|(d, _)| *d)
            .collect()
    }

    fn digest_of(&self, round: u8, p: PartyId) -> Option<[u8; 32]> {
        match round {
            1 => self.inbox.commits.get(&p).map(|m| m.digest),
            2 => self.inbox.complaints.get(&p).map(|m| m.digest),
            3 => self.inbox.justifications.get(&p).map(|m| m.digest),
            _ => None,
        }
    }

    /// Compares the echoes of `round`'s broadcasts with what we received.
    fn check_echoes(&mut self, round: u8, echoes: Vec<(PartyId, Vec<Echo>)>) {
        for (echoer, list) in echoes {
            let listed: BTreeSet<PartyId> = messages::echoed(&list);
            for e in list {
                let Some(key) = self.cfg.session.identities.get(&e.from).copied() else {
                    continue;
                };
                match self.digest_of(round, e.from) {
                    Some(d) if d == e.digest => {}
                    Some(_) => {
                        if verify(&key, &e.digest, &e.sig) {
                            self.equivocators.insert((e.from, round));
                            self.note(e.from, Fault::Equivocation { round });
                        } else {
                            self.note(echoer, Fault::FalseEcho);
                        }
                    }
                    None => {
                        if verify(&key, &e.digest, &e.sig) {
                            self.unseen.insert((e.from, round));
                            if round == 1 {
                                self.echoed_commits
                                    .entry(e.from)
                                    .or_default()
                                    .push(e.digest);
                            }
                        } else {
                            self.note(echoer, Fault::FalseEcho);
                        }
                    }
                }
            }
            let held: Vec<PartyId> = match round {
                1 => self.inbox.commits.keys().copied().collect(),
                2 => self.inbox.complaints.keys().copied().collect(),
                _ => self.inbox.justifications.keys().copied().collect(),
            };
            for p in held {
                if p != echoer && !listed.contains(&p) {
                    self.unlisted.insert((p, round));
                }
            }
        }
    }

    /// End of round 2: check the echoes of round 1, answer complaints against me, echo.
    fn close_round2(&mut self) -> Result<(), ProtocolError> {
        let present: BTreeSet<PartyId> = self.inbox.complaints.keys().copied().collect();
        let all = self.participants.clone();
        self.silent(2, present, &all);
        let echoes: Vec<(PartyId, Vec<Echo>)> = self
            .inbox
            .complaints
            .iter()
            .map(|(p, m)| (*p, m.body.echo.clone()))
            .collect();
        self.check_echoes(1, echoes);
        let me = self.cfg.me;
        let accusers: Vec<PartyId> = self
            .inbox
            .complaints
            .iter()
            .filter(|(_, m)| m.body.complaints.contains(&me))
            .map(|(p, _)| *p)
            .collect();
        let (commit, shares) = match (&self.poly, accusers.is_empty()) {
            (Some(poly), false) => (
                Some(self.my_commit_bytes.clone()),
                accusers
                    .iter()
                    .filter(|a| self.cfg.session.receivers.contains(a))
                    .map(|a| (*a, poly.share(*a)))
                    .collect(),
            ),
            _ => (None, Vec::new()),
        };
        let echo = self
            .inbox
            .complaints
            .iter()
            .map(|(p, m)| Echo {
                from: *p,
                digest: m.digest,
                sig: m.sig,
            })
            .collect();
        self.broadcast(Message::Justify(Round3Justify {
            echo,
            commit,
            shares,
        }))
    }

    /// End of round 3: decide the qualified set and compute the outputs.
    fn close_round3(&mut self) -> Result<(), ProtocolError> {
        let present: BTreeSet<PartyId> = self.inbox.justifications.keys().copied().collect();
        let all = self.participants.clone();
        self.silent(3, present, &all);
        let echoes: Vec<(PartyId, Vec<Echo>)> = self
            .inbox
            .justifications
            .iter()
            .map(|(p, m)| (*p, m.body.echo.clone()))
            .collect();
        self.check_echoes(2, echoes);
        let s = self.cfg.session.clone();
        let me = self.cfg.me;

        // Commitments missing from round 1 may come with the justification.
        let late: Vec<(PartyId, Vec<u8>)> = self
            .inbox
            .justifications
            .iter()
            .filter_map(|(p, j)| j.body.commit.clone().map(|c| (*p, c)))
            .collect();
        for (dealer, bytes) in late {
            let parsed = header(&self.ctx(), dealer, &bytes).and_then(|(t, _)| {
                let key = s
                    .identities
                    .get(&dealer)
                    .copied()
                    .ok_or(ProtocolError::UnknownSender { from: dealer })?;
                if t != MsgType::Commit {
                    return Err(ProtocolError::Malformed {
                        from: dealer,
                        reason: "justification does not carry a commitment".into(),
                    });
                }
                decode::<G>(&self.ctx(), dealer, &bytes, t, &key)
            });
            let Ok(parsed) = parsed else { continue };
            match self.inbox.commits.get(&dealer) {
                Some(mine) if mine.digest != parsed.digest => {
                    self.equivocators.insert((dealer, 1));
                    self.note(dealer, Fault::Equivocation { round: 1 });
                }
                Some(_) => {}
                None => {
                    let d = parsed.digest;
                    if self.store(dealer, parsed).is_ok() {
                        let conflicting = self
                            .echoed_commits
                            .get(&dealer)
                            .is_some_and(|v| v.iter().any(|e| *e != d));
                        if conflicting {
                            self.equivocators.insert((dealer, 1));
                            self.note(dealer, Fault::Equivocation { round: 1 });
                        }
                    }
                }
            }
        }

        // Complaints, ignoring those of parties proven to have equivocated in round 2.
        let mut against: BTreeMap<PartyId, BTreeSet<PartyId>> = BTreeMap::new();
        for (k, m) in &self.inbox.complaints {
            if self.equivocators.contains(&(*k, 2)) {
                continue;
            }
            for d in &m.body.complaints {
                against.entry(*d).or_default().insert(*k);
            }
        }

        let mut qualified = BTreeSet::new();
        let mut disqualified = BTreeSet::new();
        for d in &s.dealers {
            let Some(commit) = self.inbox.commits.get(d) else {
                disqualified.insert(*d);
                let complainers = against
                    .get(d)
                    .map(|c| c.iter().copied().collect())
                    .unwrap_or_default();
                self.note(*d, Fault::Unjustified { complainers });
                continue;
            };
            if self.equivocators.contains(&(*d, 1)) {
                disqualified.insert(*d);
                continue;
            }
            let just = self.inbox.justifications.get(d);
            let mut unanswered = Vec::new();
            let mut mine = None;
            for k in against.get(d).into_iter().flatten() {
                let answered = match just {
                    None => false,
                    Some(j) if !s.receivers.contains(k) => j.body.commit.is_some(),
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
                qualified.insert(*d);
                if let Some(share) = mine {
                    self.valid_shares.insert(*d, share);
                }
            } else {
                disqualified.insert(*d);
                self.note(
                    *d,
                    Fault::Unjustified {
                        complainers: unanswered,
                    },
                );
            }
        }

        // Points are decoded without a subgroup check (see `DkgGroup`): check the aggregated
        // commitment once, and only if it fails find and disqualify the dealers at fault.
        let needed = s.min_qualified();
        let (q, weights, agg) = loop {
            if qualified.len() < needed {
                return Err(ProtocolError::Aborted {
                    culprits: disqualified.iter().copied().collect(),
                    reason: format!(
                        "only {} qualified dealers, {} needed",
                        qualified.len(),
                        needed
                    ),
                });
            }
            // A reshare needs only T old shares: interpolating from the first T qualified
            // dealers (the same at every honest party) keeps the Lagrange weights and the
            // multi-scalar multiplications of the aggregated commitment at size T, not |Q|.
            let q: Vec<PartyId> = match s.kind {
                Kind::Reshare => qualified.iter().copied().take(needed).collect(),
                _ => qualified.iter().copied().collect(),
            };
            let weights: Option<Vec<G::Scalar>> = match s.kind {
                Kind::Reshare => Some(
                    lagrange_coefficients::<G::Scalar>(&q)
                        .map_err(|e| ProtocolError::InvalidParameters(e.to_string()))?,
                ),
                _ => None,
            };
            // Aggregated commitment A_k = Σ_{i∈Q} w_i C_{i,k}.
            let commits: Vec<&Vec<G>> = q
                .iter()
                .filter_map(|d| self.inbox.commits.get(d).map(|c| &c.body.c))
                .collect();
            let agg: Vec<G> = (0..s.threshold)
                .map(|k| {
                    let col: Vec<G> = commits
                        .iter()
                        .map(|c| c.get(k).copied().unwrap_or_else(G::identity))
                        .collect();
                    match &weights {
                        Some(w) => G::msm(&col, w),
                        None => col.iter().fold(G::identity(), |a, b| a + b),
                    }
                })
                .collect();
            if agg.iter().all(|p| p.in_subgroup()) {
                break (q, weights, agg);
            }
            let bad: Vec<PartyId> = q
                .iter()
                .filter(|d| {
                    self.inbox
                        .commits
                        .get(d)
                        .is_some_and(|c| !c.body.c.iter().all(|p| p.in_subgroup()))
                })
                .copied()
                .collect();
            if bad.is_empty() {
                return Err(ProtocolError::Aborted {
                    culprits: Vec::new(),
                    reason: "aggregated commitment outside the prime-order subgroup".into(),
                });
            }
            for d in bad {
                qualified.remove(&d);
                disqualified.insert(d);
                self.note(d, Fault::InvalidCommitment);
            }
        };
        let old = s.old.clone();
        let commitment: Vec<G> = match (s.kind, &old) {
            (Kind::Refresh, Some(o)) => agg
                .iter()
                .enumerate()
                .map(|(k, a)| *a + o.commitment.get(k).copied().unwrap_or_else(G::identity))
                .collect(),
            _ => agg.clone(),
        };
        let group_key = commitment.first().copied().unwrap_or_else(G::identity);
        if let (Kind::Reshare | Kind::Refresh, Some(o)) = (s.kind, &old) {
            if group_key != o.group_key {
                return Err(ProtocolError::Aborted {
                    culprits: Vec::new(),
                    reason: "the old public key shares are inconsistent with the group key".into(),
                });
            }
        }
        let shares: BTreeMap<PartyId, G> = s
            .receivers
            .iter()
            .map(|j| (*j, eval_in_exponent(&commitment, u64::from(j.get()))))
            .collect();
        let public = PublicKeySet {
            threshold: s.threshold,
            group_key,
            commitment,
            shares,
        };
        let share = if s.receivers.contains(&me) {
            let mut value = G::Scalar::ZERO;
            for (i, d) in q.iter().enumerate() {
                let sh = self
                    .valid_shares
                    .get(d)
                    .ok_or_else(|| ProtocolError::Aborted {
                        culprits: vec![*d],
                        reason: "no valid share from a qualified dealer".into(),
                    })?;
                let w = weights
                    .as_ref()
                    .and_then(|w| w.get(i))
                    .copied()
                    .unwrap_or(G::Scalar::ONE);
                value += sh.value * w;
            }
            if s.kind == Kind::Refresh {
                value += self
                    .cfg
                    .old_share
                    .as_ref()
                    .map(|o| o.value)
                    .unwrap_or(G::Scalar::ZERO);
            }
            let secret = SecretShare { id: me, value };
            if public.shares.get(&me) != Some(&secret.public::<G>()) {
                return Err(ProtocolError::Aborted {
                    culprits: Vec::new(),
                    reason: "own share does not match the public key share".into(),
                });
            }
            Some(KeyShare {
                secret,
                public: public.clone(),
            })
        } else {
            None
        };
        let mut w = Writer::default();
        w.bytes(b"lit-dkg/result").raw(&self.sid).len(q.len());
        for p in &q {
            w.party(*p);
        }
        for c in &agg {
            w.point(c);
        }
        w.point(&group_key);
        let result: [u8; 32] = Sha256::digest(&w.buf).into();
        self.decision = Some(Decision {
            output: KeyGenOutput {
                share,
                public,
                qualified,
                disqualified,
                faults: BTreeMap::new(),
            },
            result,
        });
        let echo = self
            .inbox
            .justifications
            .iter()
            .map(|(p, m)| Echo {
                from: *p,
                digest: m.digest,
                sig: m.sig,
            })
            .collect();
        self.broadcast(Message::Confirm(Round4Confirm { echo, result }))
    }

    /// End of round 4: release the output if every confirmation agrees.
    fn close_round4(&mut self) -> Result<(), ProtocolError> {
        let present: BTreeSet<PartyId> = self.inbox.confirms.keys().copied().collect();
        let all = self.participants.clone();
        self.silent(4, present, &all);
        let echoes: Vec<(PartyId, Vec<Echo>)> = self
            .inbox
            .confirms
            .iter()
            .map(|(p, m)| (*p, m.body.echo.clone()))
            .collect();
        self.check_echoes(3, echoes);
        let Some(decision) = self.decision.take() else {
            return Err(ProtocolError::Aborted {
                culprits: Vec::new(),
                reason: "no decision".into(),
            });
        };
        let mut mismatched = Vec::new();
        for (p, c) in &self.inbox.confirms {
            if c.body.result != decision.result
                && !decision.output.disqualified.contains(p)
                && !self.equivocators.iter().any(|(e, _)| e == p)
            {
                mismatched.push(*p);
            }
        }
        for p in &mismatched {
            self.note(*p, Fault::ConfirmationMismatch);
        }
        if mismatched.is_empty() {
            let mut output = decision.output;
            output.faults = self.faults.clone();
            self.outcome = Some(Ok(output));
            return Ok(());
        }
        // Views diverged. Blame what explains it: proven equivocators, then parties whose
        // broadcasts reached some but not others, and only then the dissenting confirmers.
        let mut culprits: BTreeSet<PartyId> = self.equivocators.iter().map(|(p, _)| *p).collect();
        if culprits.is_empty() {
            let selective: Vec<(PartyId, u8)> =
                self.unseen.iter().chain(&self.unlisted).copied().collect();
            for (p, round) in selective {
                culprits.insert(p);
                self.note(p, Fault::SelectiveDelivery { round });
            }
        }
        if culprits.is_empty() {
            culprits.extend(mismatched);
        }
        Err(ProtocolError::Aborted {
            culprits: culprits.into_iter().collect(),
            reason: "honest views diverged: confirmations differ".into(),
        })
    }

    fn deliver(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), ProtocolError> {
        if from == self.cfg.me {
            return Err(ProtocolError::Malformed {
                from,
                reason: "a message from myself".into(),
            });
        }
        if !self.participants.contains(&from) {
            return Err(ProtocolError::UnknownSender { from });
        }
        let (t, round) = header(&self.ctx(), from, bytes)?;
        if round < self.round {
            return Err(ProtocolError::WrongRound {
                from,
                expected: self.round,
                got: round,
            });
        }
        let s = &self.cfg.session;
        if (t == MsgType::Commit || t == MsgType::Share) && !s.dealers.contains(&from) {
            return Err(ProtocolError::Malformed {
                from,
                reason: "round-1 message from a non-dealer".into(),
            });
        }
        if t == MsgType::Share && !s.receivers.contains(&self.cfg.me) {
            return Err(ProtocolError::Malformed {
                from,
                reason: "share sent to a non-receiver".into(),
            });
        }
        let key = s
            .identities
            .get(&from)
            .copied()
            .ok_or(ProtocolError::UnknownSender { from })?;
        let parsed = decode::<G>(&self.ctx(), from, bytes, t, &key)?;
        self.store(from, parsed)
    }

    /// The persisted state (see the module documentation). It contains secrets.
    pub fn snapshot(&self) -> Zeroizing<Vec<u8>> {
        let c = &self.cfg;
        let s = &c.session;
        let mut w = Writer::default();
        w.raw(SNAPSHOT_TAG)
            .bytes(G::NAME.as_bytes())
            .u8(s.kind.code());
        w.bytes(s.label.as_bytes()).u64(s.epoch).len(s.threshold);
        w.len(s.dealers.len());
        s.dealers.iter().for_each(|p| {
            w.party(*p);
        });
        w.len(s.receivers.len());
        s.receivers.iter().for_each(|p| {
            w.party(*p);
        });
        w.len(s.identities.len());
        for (p, k) in &s.identities {
            w.party(*p).bytes(&k.to_sec1_bytes());
        }
        match &s.old {
            Some(o) => {
                w.u8(1).len(o.threshold).point(&o.group_key);
                w.len(o.commitment.len());
                o.commitment.iter().for_each(|c| {
                    w.point(c);
                });
                w.len(o.shares.len());
                for (p, y) in &o.shares {
                    w.party(*p).point(y);
                }
            }
            None => {
                w.u8(0);
            }
        }
        w.party(c.me)
            .raw(&c.identity.to_bytes())
            .raw(c.seed.as_ref());
        match &c.old_share {
            Some(sh) => {
                w.u8(1).scalar(&sh.value);
            }
            None => {
                w.u8(0);
            }
        }
        w.len(self.log.len());
        for e in &self.log {
            match e {
                Event::Message(p, b) => {
                    w.u8(1).party(*p).bytes(b);
                }
                Event::Timeout => {
                    w.u8(2);
                }
            }
        }
        Zeroizing::new(w.buf)
    }

    /// Restarts a party from [`KeyGen::snapshot`], replaying its inputs; it then re-sends the
    /// messages of its latest round.
    pub fn restore(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let me0 = PartyId::new(1).ok_or_else(|| ProtocolError::InvalidParameters("id".into()))?;
        let bad = |e: crate::wire::WireError| ProtocolError::Malformed {
            from: me0,
            reason: format!("snapshot: {}", e.0),
        };
        let mut r = Reader::new(bytes);
        if r.take(8).map_err(bad)? != SNAPSHOT_TAG || r.bytes().map_err(bad)? != G::NAME.as_bytes()
        {
            return Err(ProtocolError::InvalidParameters(
                "not a snapshot of this group".into(),
            ));
        }
        let kind = Kind::from_code(r.u8().map_err(bad)?)
            .ok_or_else(|| ProtocolError::InvalidParameters("snapshot kind".into()))?;
        let label = String::from_utf8(r.bytes().map_err(bad)?.to_vec())
            .map_err(|_| ProtocolError::InvalidParameters("snapshot label".into()))?;
        let epoch = r.u64().map_err(bad)?;
        let threshold = r.u32().map_err(bad)? as usize;
        let dealers: BTreeSet<PartyId> = r.parties().map_err(bad)?.into_iter().collect();
        let receivers: BTreeSet<PartyId> = r.parties().map_err(bad)?.into_iter().collect();
        let n = r.len(5).map_err(bad)?;
        let mut identities = BTreeMap::new();
        for _ in 0..n {
            let p = r.party().map_err(bad)?;
            let k = IdentityKey::from_sec1_bytes(r.bytes().map_err(bad)?)
                .map_err(|_| ProtocolError::InvalidParameters("snapshot identity".into()))?;
            identities.insert(p, k);
        }
        let old = match r.u8().map_err(bad)? {
            1 => {
                let threshold = r.u32().map_err(bad)? as usize;
                let group_key = r.point::<G>().map_err(bad)?;
                let n = r.len(1).map_err(bad)?;
                let commitment = (0..n)
                    .map(|_| r.point::<G>())
                    .collect::<Result<Vec<G>, _>>()
                    .map_err(bad)?;
                let n = r.len(4).map_err(bad)?;
                let mut shares = BTreeMap::new();
                for _ in 0..n {
                    shares.insert(r.party().map_err(bad)?, r.point::<G>().map_err(bad)?);
                }
                Some(PublicKeySet {
                    threshold,
                    group_key,
                    commitment,
                    shares,
                })
            }
            _ => None,
        };
        let me = r.party().map_err(bad)?;
        let sk: [u8; 32] = r.array().map_err(bad)?;
        let identity = IdentitySecret::from_slice(&Zeroizing::new(sk)[..])
            .map_err(|_| ProtocolError::InvalidParameters("snapshot identity key".into()))?;
        let seed = Zeroizing::new(r.array::<32>().map_err(bad)?);
        let old_share = match r.u8().map_err(bad)? {
            1 => Some(SecretShare {
                id: me,
                value: r.scalar().map_err(bad)?,
            }),
            _ => None,
        };
        let mut events = Vec::new();
        for _ in 0..r.len(1).map_err(bad)? {
            match r.u8().map_err(bad)? {
                1 => events.push(Event::Message(
                    r.party().map_err(bad)?,
                    r.bytes().map_err(bad)?.to_vec(),
                )),
                _ => events.push(Event::Timeout),
            }
        }
        r.finish().map_err(bad)?;
        let session = Session {
            kind,
            label,
            epoch,
            dealers,
            receivers,
            threshold,
            identities,
            old,
        };
        let mut p = Self::from_config(Config {
            session,
            me,
            identity,
            old_share,
            seed,
        })?;
        for e in events {
            match e {
                Event::Message(from, bytes) => {
                    // Accepted once, so accepted again: the replay is deterministic.
                    let _ = p.message(from, &bytes);
                }
                Event::Timeout => {
                    let _ = p.timeout();
                }
            }
        }
        p.outbox = p.last_sent.clone();
        Ok(p)
    }
}

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
