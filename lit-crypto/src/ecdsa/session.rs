//! Session binding and the adapter from cait-sith's `Protocol` to ours.
//!
//! Every message we emit is `header ‖ cait-sith bytes`, with the header
//!
//! ```text
//! magic "LECD" (4) | protocol tag (1) | version (1) | session id (32) | to (4, 0 = broadcast) | seq (4)
//! ```
//!
//! `seq` numbers the sender's messages in this run. A message is checked against the header
//! (sender is a participant, protocol, version, session, recipient, no duplicate or equivocating
//! `seq`) *before* its bytes reach cait-sith.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use cait_sith::protocol::{Action as CsAction, Participant, Protocol as CsProtocol};
use sha2::{Digest, Sha256};

use crate::protocol::{Action, Outgoing, PartyId, ProtocolError};

use super::EcdsaError;

const MAGIC: &[u8; 4] = b"LECD";
const VERSION: u8 = 1;
/// Length of the header we put in front of every cait-sith message.
pub const HEADER_LEN: usize = 4 + 1 + 1 + 32 + 4 + 4;

/// Which protocol a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProtocolTag {
    Triple = 1,
    Presign = 2,
}

impl ProtocolTag {
    fn name(self) -> &'static [u8] {
        match self {
            ProtocolTag::Triple => b"triple",
            ProtocolTag::Presign => b"presign",
        }
    }
}

/// The identifier of one protocol run: a hash of the protocol, a caller-chosen unique label
/// (e.g. epoch and pool counter), the sorted participants and the threshold.
///
/// All participants must derive the same id; every run must use a fresh label.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub(crate) [u8; 32]);

impl SessionId {
    pub(crate) fn new(
        tag: ProtocolTag,
        label: &[u8],
        participants: &BTreeSet<PartyId>,
        threshold: usize,
    ) -> Self {
        let mut h = Sha256::new();
        h.update(b"lit-ecdsa session v1");
        h.update([tag as u8]);
        h.update(tag.name());
        h.update((label.len() as u64).to_be_bytes());
        h.update(label);
        h.update((threshold as u64).to_be_bytes());
        h.update((participants.len() as u64).to_be_bytes());
        for p in participants {
            h.update(p.get().to_be_bytes());
        }
        Self(h.finalize().into())
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// Checks a participant list: at least 2, no duplicates, `me` in it, `1 <= threshold <= len`.
pub(crate) fn check_participants(
    participants: &[PartyId],
    me: PartyId,
    threshold: usize,
) -> Result<BTreeSet<PartyId>, EcdsaError> {
    let set: BTreeSet<PartyId> = participants.iter().copied().collect();
    if set.len() != participants.len() {
        return Err(EcdsaError::InvalidParameters(
            "duplicate participant".into(),
        ));
    }
    if set.len() < 2 {
        return Err(EcdsaError::InvalidParameters(
            "at least two participants are needed".into(),
        ));
    }
    if threshold < 2 || threshold > set.len() {
        return Err(EcdsaError::InvalidParameters(format!(
            "threshold {threshold} for {} participants",
            set.len()
        )));
    }
    if !set.contains(&me) {
        return Err(EcdsaError::NotAParticipant(me));
    }
    Ok(set)
}

/// Our id `i` is cait-sith's `Participant(i - 1)` (cait-sith evaluates shares at `p + 1`).
pub(crate) fn to_cs(p: PartyId) -> Participant {
    Participant::from(p.get() - 1)
}

/// cait-sith's `Participant(p)` is our id `p + 1`.
pub(crate) fn from_cs(p: Participant) -> Option<PartyId> {
    u32::from(p).checked_add(1).and_then(PartyId::new)
}

/// A cait-sith protocol object behind our header and session checks.
pub(crate) struct Wrapped<O> {
    inner: Box<dyn CsProtocol<Output = O> + Send>,
    tag: ProtocolTag,
    session: SessionId,
    me: PartyId,
    participants: BTreeSet<PartyId>,
    next_seq: u32,
    /// `(sender, seq) -> SHA-256(message)`, for duplicate and equivocation detection.
    seen: BTreeMap<(PartyId, u32), [u8; 32]>,
    /// Accepted messages per sender.
    received: BTreeMap<PartyId, u32>,
    timed_out: bool,
    done: bool,
}

impl<O> Wrapped<O> {
    pub(crate) fn new(
        inner: Box<dyn CsProtocol<Output = O> + Send>,
        tag: ProtocolTag,
        session: SessionId,
        me: PartyId,
        participants: BTreeSet<PartyId>,
    ) -> Self {
        Self {
            inner,
            tag,
            session,
            me,
            participants,
            next_seq: 0,
            seen: BTreeMap::new(),
            received: BTreeMap::new(),
            timed_out: false,
            done: false,
        }
    }

    fn header(&mut self, to: Option<PartyId>) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(MAGIC);
        out.push(self.tag as u8);
        out.push(VERSION);
        out.extend_from_slice(&self.session.0);
        out.extend_from_slice(&to.map_or(0, PartyId::get).to_be_bytes());
        out.extend_from_slice(&self.next_seq.to_be_bytes());
        self.next_seq = self.next_seq.wrapping_add(1);
        out
    }

    fn frame(&mut self, to: Option<PartyId>, payload: Vec<u8>) -> Outgoing {
        let mut bytes = self.header(to);
        bytes.extend_from_slice(&payload);
        Outgoing { to, bytes }
    }

    pub(crate) fn poke(&mut self) -> Result<Action<O>, ProtocolError> {
        if self.done {
            return Err(ProtocolError::InvalidParameters(
                "protocol already finished".into(),
            ));
        }
        let action = self.inner.poke().map_err(|e| ProtocolError::Aborted {
            // cait-sith aborts without naming anyone (it has no identifiable abort).
            culprits: vec![],
            reason: format!("cait-sith: {e}"),
        })?;
        if !matches!(action, CsAction::Wait) {
            self.timed_out = false;
        }
        Ok(match action {
            CsAction::Wait if self.timed_out => {
                return Err(ProtocolError::Aborted {
                    culprits: self.lagging(),
                    reason: "timed out waiting for messages".into(),
                })
            }
            CsAction::Wait => Action::Wait,
            CsAction::SendMany(m) => Action::Send(vec![self.frame(None, m)]),
            CsAction::SendPrivate(p, m) => {
                let to = from_cs(p).ok_or_else(|| {
                    ProtocolError::InvalidParameters("cait-sith addressed an invalid id".into())
                })?;
                Action::Send(vec![self.frame(Some(to), m)])
            }
            CsAction::Return(o) => {
                self.done = true;
                Action::Done(o)
            }
        })
    }

    /// The driver's deadline passed: the next [`Wrapped::poke`] that cannot progress aborts.
    pub(crate) fn timeout(&mut self) {
        self.timed_out = true;
    }

    /// The parties that sent fewer messages than the most advanced sender (cait-sith's
    /// protocols are symmetric: every party sends the same messages to each peer, so whoever is
    /// behind is the one we are waiting for); all other parties if nobody is ahead.
    fn lagging(&self) -> Vec<PartyId> {
        let others = self.participants.iter().copied().filter(|p| *p != self.me);
        let count = |p: &PartyId| self.received.get(p).copied().unwrap_or(0);
        let max = others.clone().map(|p| count(&p)).max().unwrap_or(0);
        let behind: Vec<PartyId> = others.clone().filter(|p| count(p) < max).collect();
        if behind.is_empty() {
            others.collect()
        } else {
            behind
        }
    }

    pub(crate) fn message(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), ProtocolError> {
        if from == self.me || !self.participants.contains(&from) {
            return Err(ProtocolError::UnknownSender { from });
        }
        let (header, payload) =
            bytes
                .split_at_checked(HEADER_LEN)
                .ok_or_else(|| ProtocolError::Malformed {
                    from,
                    reason: "shorter than the header".into(),
                })?;
        let field = |range: std::ops::Range<usize>| header.get(range).unwrap_or_default();
        if field(0..4) != MAGIC
            || field(4..5) != [self.tag as u8]
            || field(5..6) != [VERSION]
            || field(6..38) != self.session.0
        {
            return Err(ProtocolError::WrongSession { from });
        }
        let to = u32::from_be_bytes(field(38..42).try_into().unwrap_or_default());
        if to != 0 && to != self.me.get() {
            return Err(ProtocolError::Malformed {
                from,
                reason: format!("addressed to party {to}"),
            });
        }
        let seq = u32::from_be_bytes(field(42..46).try_into().unwrap_or_default());
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let round = u8::try_from(seq).unwrap_or(u8::MAX);
        match self.seen.get(&(from, seq)) {
            Some(d) if *d == digest => return Err(ProtocolError::Duplicate { from, round }),
            Some(_) => return Err(ProtocolError::Equivocation { from, round }),
            None => {}
        }
        if payload.is_empty() {
            return Err(ProtocolError::Malformed {
                from,
                reason: "empty payload".into(),
            });
        }
        self.seen.insert((from, seq), digest);
        *self.received.entry(from).or_default() += 1;
        self.inner.message(to_cs(from), payload.to_vec());
        Ok(())
    }
}
