//! The sans-I/O protocol interface shared by every multi-party protocol of the network
//! (DKG, refresh, reshare in `lit-dkg`; triples, presignatures and signing in [`crate::ecdsa`]
//! once it exists).
//!
//! A protocol object never touches a socket, a clock or a thread. A driver — the deterministic
//! simulator `lit_dkg::sim`, a tokio channel driver, or the node's HTTP peer transport — calls
//! [`Protocol::poke`] until it answers [`Action::Wait`], delivers every incoming message with
//! [`Protocol::message`], and repeats until [`Action::Done`]. This is the shape of rustls'
//! `StateMachine` and of cait-sith's `Protocol::{poke, message}`.

use std::fmt;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

/// Identifier of a party in a protocol run, and its Shamir evaluation point.
///
/// It can never be zero: the share at zero *is* the secret. Deserialisation refuses zero.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct PartyId(NonZeroU32);

impl PartyId {
    /// The party id `n`, or `None` when `n == 0`.
    pub const fn new(n: u32) -> Option<Self> {
        match NonZeroU32::new(n) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }

    /// The numeric value (never zero).
    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// The field element `x` at which this party's Shamir share is evaluated.
    pub fn to_scalar<F: ff::PrimeField>(self) -> F {
        F::from(u64::from(self.get()))
    }

    /// Ids `1..=n`, the default numbering of an `n`-party run.
    pub fn range(n: u32) -> impl Iterator<Item = PartyId> {
        (1..=n).filter_map(PartyId::new)
    }
}

impl TryFrom<u32> for PartyId {
    type Error = ZeroPartyId;
    fn try_from(n: u32) -> Result<Self, Self::Error> {
        PartyId::new(n).ok_or(ZeroPartyId)
    }
}

impl From<PartyId> for u32 {
    fn from(p: PartyId) -> u32 {
        p.get()
    }
}

impl fmt::Debug for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.get())
    }
}

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// The error for a party id of zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("party id 0 is not allowed (the share at 0 is the secret)")]
pub struct ZeroPartyId;

/// A message a protocol wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// `None` broadcasts to every other participant; `Some(p)` is private to `p`.
    pub to: Option<PartyId>,
    /// The encoded message, header included.
    pub bytes: Vec<u8>,
}

/// What a protocol wants the driver to do next.
#[derive(Debug)]
pub enum Action<T> {
    /// Nothing to do until more messages arrive.
    Wait,
    /// Send these messages, then poke again.
    Send(Vec<Outgoing>),
    /// The protocol finished with this output; it must not be poked again.
    Done(T),
}

/// A sans-I/O multi-party protocol.
pub trait Protocol {
    /// What a party holds at the end.
    type Output;

    /// Advance as far as possible with what has been received so far.
    fn poke(&mut self) -> Result<Action<Self::Output>, ProtocolError>;

    /// Deliver one message that the transport says came from `from`.
    ///
    /// Messages that are malformed, from outside the session, for a wrong round, duplicated or
    /// equivocating are refused with an error naming `from`; the protocol state is unchanged by
    /// a refused message, so the driver may log it and carry on.
    fn message(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), ProtocolError>;

    /// The driver's deadline for the current round passed: carry on without the parties that
    /// have not sent (a protocol that can exclude silent parties does so and names them, one
    /// that cannot aborts naming them on the next [`Protocol::poke`]). Protocols are sans-I/O,
    /// so only the driver knows time; the default ignores deadlines.
    fn timeout(&mut self) -> Result<(), ProtocolError> {
        Ok(())
    }
}

/// Why a protocol refused a message or aborted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The message could not be decoded.
    #[error("malformed message from {from}: {reason}")]
    Malformed {
        /// The sender.
        from: PartyId,
        /// What was wrong.
        reason: String,
    },
    /// The sender is not a participant of this run.
    #[error("message from {from}, who is not a participant")]
    UnknownSender {
        /// The sender.
        from: PartyId,
    },
    /// The message belongs to another session (other epoch, participants, threshold or purpose)
    /// or another protocol or version.
    #[error("message from {from} belongs to another session")]
    WrongSession {
        /// The sender.
        from: PartyId,
    },
    /// The message is for a round this party does not accept now.
    #[error("message from {from} for round {got}, expected round {expected}")]
    WrongRound {
        /// The sender.
        from: PartyId,
        /// The round the party is in.
        expected: u8,
        /// The round of the message.
        got: u8,
    },
    /// The same message arrived twice.
    #[error("duplicate round {round} message from {from}")]
    Duplicate {
        /// The sender.
        from: PartyId,
        /// The round.
        round: u8,
    },
    /// Two different messages for the same round from the same sender.
    #[error("party {from} equivocated in round {round}")]
    Equivocation {
        /// The sender.
        from: PartyId,
        /// The round.
        round: u8,
    },
    /// The protocol aborted because these parties misbehaved (provably, or by staying silent).
    #[error("aborted, culprits {culprits:?}: {reason}")]
    Aborted {
        /// The parties identified as responsible.
        culprits: Vec<PartyId>,
        /// What they did.
        reason: String,
    },
    /// Too few honest parties remain to finish.
    #[error("too few parties: need {needed}, have {have}")]
    TooFewParties {
        /// How many are needed.
        needed: usize,
        /// How many remain.
        have: usize,
    },
    /// The protocol was set up with invalid parameters.
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
}

impl ProtocolError {
    /// The parties this error blames, if any.
    pub fn culprits(&self) -> Vec<PartyId> {
        match self {
            ProtocolError::Malformed { from, .. }
            | ProtocolError::UnknownSender { from }
            | ProtocolError::WrongSession { from }
            | ProtocolError::WrongRound { from, .. }
            | ProtocolError::Duplicate { from, .. }
            | ProtocolError::Equivocation { from, .. } => vec![*from],
            ProtocolError::Aborted { culprits, .. } => culprits.clone(),
            ProtocolError::TooFewParties { .. } | ProtocolError::InvalidParameters(_) => vec![],
        }
    }
}

/// The network's default threshold for `n` parties: `max(2, ceil(2n/3))`, and `n` itself for
/// `n <= 2`. It always satisfies `n/2 < T <= n`.
pub fn default_threshold(n: usize) -> usize {
    if n <= 2 {
        n
    } else {
        (2 * n).div_ceil(3).max(2)
    }
}

/// Whether `t` is an allowed threshold for `n` parties: `n/2 < t <= n` (an honest majority of the
/// shares is needed to use the key, so two disjoint sets can never both use it).
pub fn is_valid_threshold(n: usize, t: usize) -> bool {
    t >= 1 && t <= n && 2 * t > n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn party_id_zero_is_refused_everywhere() {
        assert!(PartyId::new(0).is_none());
        assert_eq!(PartyId::try_from(0), Err(ZeroPartyId));
        assert!(serde_json::from_str::<PartyId>("0").is_err());
        let p: PartyId = serde_json::from_str("7").unwrap();
        assert_eq!(p.get(), 7);
        assert_eq!(serde_json::to_string(&p).unwrap(), "7");
    }

    #[test]
    fn default_threshold_is_two_thirds_and_valid() {
        assert_eq!(default_threshold(1), 1);
        assert_eq!(default_threshold(2), 2);
        assert_eq!(default_threshold(3), 2);
        assert_eq!(default_threshold(4), 3);
        assert_eq!(default_threshold(10), 7);
        assert_eq!(default_threshold(100), 67);
        for n in 1..200 {
            assert!(is_valid_threshold(n, default_threshold(n)), "n = {n}");
        }
        assert!(!is_valid_threshold(4, 2));
        assert!(!is_valid_threshold(4, 5));
    }

    #[test]
    fn culprits_name_the_sender() {
        let p = PartyId::new(3).unwrap();
        assert_eq!(
            ProtocolError::Duplicate { from: p, round: 1 }.culprits(),
            vec![p]
        );
        assert!(ProtocolError::InvalidParameters("x".into())
            .culprits()
            .is_empty());
    }
}
