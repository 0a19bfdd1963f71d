//! Several keys in one run: [`Joint`] runs two protocols side by side as one protocol, each
//! message tagged with the index of the sub-protocol it belongs to. Nest it for more keys, e.g.
//! one BLS root key and one secp256k1 root key:
//! `Joint<KeyGen<blstrs::G1Projective>, KeyGen<k256::ProjectivePoint>>`.
//!
//! The run succeeds when both succeed, and fails with the first error of either (each
//! sub-protocol already agrees on its own culprits).

use lit_crypto::protocol::{Action, Outgoing, PartyId, Protocol, ProtocolError};
use zeroize::Zeroizing;

use crate::sim::Restartable;

/// Two protocols run as one (see the module documentation).
#[derive(Debug)]
pub struct Joint<A: Protocol, B: Protocol> {
    a: A,
    b: B,
    out_a: Option<A::Output>,
    out_b: Option<B::Output>,
}

impl<A: Protocol, B: Protocol> Joint<A, B> {
    /// Runs `a` and `b` together.
    pub fn new(a: A, b: B) -> Self {
        Self {
            a,
            b,
            out_a: None,
            out_b: None,
        }
    }
}

fn tag(t: u8, out: Vec<Outgoing>) -> impl Iterator<Item = Outgoing> {
    out.into_iter().map(move |o| {
        let mut bytes = Vec::with_capacity(o.bytes.len() + 1);
        bytes.push(t);
        bytes.extend_from_slice(&o.bytes);
        Outgoing { to: o.to, bytes }
    })
}

impl<A, B> Protocol for Joint<A, B>
where
    A: Protocol,
    B: Protocol,
    A::Output: Clone,
    B::Output: Clone,
{
    type Output = (A::Output, B::Output);

    fn poke(&mut self) -> Result<Action<Self::Output>, ProtocolError> {
        let mut send = Vec::new();
        if self.out_a.is_none() {
            match self.a.poke()? {
                Action::Send(out) => send.extend(tag(0, out)),
                Action::Done(o) => self.out_a = Some(o),
                Action::Wait => {}
            }
        }
        if self.out_b.is_none() {
            match self.b.poke()? {
                Action::Send(out) => send.extend(tag(1, out)),
                Action::Done(o) => self.out_b = Some(o),
                Action::Wait => {}
            }
        }
        if !send.is_empty() {
            return Ok(Action::Send(send));
        }
        match (&self.out_a, &self.out_b) {
            (Some(a), Some(b)) => Ok(Action::Done((a.clone(), b.clone()))),
            _ => Ok(Action::Wait),
        }
    }

    fn message(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), ProtocolError> {
        match bytes.split_first() {
            Some((0, rest)) if self.out_a.is_none() => self.a.message(from, rest),
            Some((1, rest)) if self.out_b.is_none() => self.b.message(from, rest),
            Some((0 | 1, _)) => Err(ProtocolError::WrongRound {
                from,
                expected: u8::MAX,
                got: 0,
            }),
            _ => Err(ProtocolError::Malformed {
                from,
                reason: "unknown sub-protocol tag".into(),
            }),
        }
    }

    fn timeout(&mut self) -> Result<(), ProtocolError> {
        if self.out_a.is_none() {
            self.a.timeout()?;
        }
        if self.out_b.is_none() {
            self.b.timeout()?;
        }
        Ok(())
    }
}

impl<A, B> Restartable for Joint<A, B>
where
    A: Restartable,
    B: Restartable,
    A::Output: Clone,
    B::Output: Clone,
{
    fn snapshot(&self) -> Zeroizing<Vec<u8>> {
        let a = self.a.snapshot();
        let b = self.b.snapshot();
        let mut out = Zeroizing::new(Vec::with_capacity(a.len() + b.len() + 8));
        out.extend_from_slice(&(a.len() as u64).to_be_bytes());
        out.extend_from_slice(&a);
        out.extend_from_slice(&b);
        out
    }

    fn restore(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let bad = || ProtocolError::InvalidParameters("joint snapshot truncated".into());
        let (len, rest) = bytes.split_at_checked(8).ok_or_else(bad)?;
        let len: [u8; 8] = len.try_into().map_err(|_| bad())?;
        let len = usize::try_from(u64::from_be_bytes(len)).map_err(|_| bad())?;
        let (a, b) = rest.split_at_checked(len).ok_or_else(bad)?;
        Ok(Self::new(A::restore(a)?, B::restore(b)?))
    }
}
