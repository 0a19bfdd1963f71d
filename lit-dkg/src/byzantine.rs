//! Byzantine parties for tests: alternative implementations of the key-generation protocol that
//! run an honest [`KeyGen`] inside and tamper with what it sends (re-signing tampered
//! broadcasts with their own identity key, as a real attacker would).

use std::collections::BTreeSet;

use ff::Field;
use lit_crypto::protocol::{Action, Outgoing, PartyId, Protocol, ProtocolError};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::keygen::messages::{decode, encode, header, Message, MsgType};
use crate::{DkgGroup, KeyGen, KeyGenOutput};

/// How a Byzantine party misbehaves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behaviour {
    /// Sends the victim a share that does not match its commitment, and "justifies" the
    /// victim's complaint with the same bad share.
    BadShareTo(PartyId),
    /// Broadcasts a commitment to a different polynomial than the one it shares.
    InconsistentCommitment,
    /// Sends these parties a second, validly signed round-1 commitment (equivocation).
    Equivocate(BTreeSet<PartyId>),
    /// Sends nothing at all to this party.
    WithholdFrom(PartyId),
    /// Sends nothing at all.
    Silent,
    /// Replaces every message by random bytes of the same length.
    Garbage,
}

/// A Byzantine party (see the module documentation).
#[derive(Debug)]
pub struct Byzantine<G: DkgGroup> {
    inner: KeyGen<G>,
    behaviour: Behaviour,
    rng: ChaCha20Rng,
}

impl<G: DkgGroup> Byzantine<G> {
    /// Wraps an honest party.
    pub fn new(inner: KeyGen<G>, behaviour: Behaviour, seed: u64) -> Self {
        Self {
            inner,
            behaviour,
            rng: ChaCha20Rng::seed_from_u64(seed),
        }
    }

    /// Decodes one of our own messages, lets `f` change it, and re-encodes (and re-signs) it.
    fn rewrite(&self, bytes: &[u8], f: impl FnOnce(&mut Message<G>)) -> Vec<u8> {
        let me = self.inner.me();
        let ctx = self.inner.ctx();
        let key = *self.inner.identity().verifying_key();
        let Ok((t, _)) = header(&ctx, me, bytes) else {
            return bytes.to_vec();
        };
        let Ok(mut parsed) = decode::<G>(&ctx, me, bytes, t, &key) else {
            return bytes.to_vec();
        };
        f(&mut parsed.msg);
        encode(&ctx, &parsed.msg, self.inner.identity())
            .map(|(b, _, _)| b)
            .unwrap_or_else(|_| bytes.to_vec())
    }

    fn msg_type(&self, bytes: &[u8]) -> Option<MsgType> {
        header(&self.inner.ctx(), self.inner.me(), bytes)
            .ok()
            .map(|(t, _)| t)
    }

    /// The tampered commitment: `C_1 + G` (or `C_0 + G` at threshold 1).
    fn other_commitment(&self, bytes: &[u8]) -> Vec<u8> {
        self.rewrite(bytes, |m| {
            if let Message::Commit(c) = m {
                let k = usize::from(c.c.len() > 1);
                if let Some(p) = c.c.get_mut(k) {
                    *p += G::generator();
                }
            }
        })
    }

    fn tamper(&mut self, out: Vec<Outgoing>) -> Vec<Outgoing> {
        let others: Vec<PartyId> = self
            .inner
            .participant_set()
            .iter()
            .copied()
            .filter(|p| *p != self.inner.me())
            .collect();
        let mut result = Vec::new();
        for o in out {
            let t = self.msg_type(&o.bytes);
            match &self.behaviour {
                Behaviour::BadShareTo(victim) => {
                    let victim = *victim;
                    let bytes = match t {
                        Some(MsgType::Share) if o.to == Some(victim) => {
                            self.rewrite(&o.bytes, |m| {
                                if let Message::Share(s) = m {
                                    s.s.value += G::Scalar::ONE;
                                }
                            })
                        }
                        Some(MsgType::Justify) => self.rewrite(&o.bytes, |m| {
                            if let Message::Justify(j) = m {
                                for (p, s) in &mut j.shares {
                                    if *p == victim {
                                        s.value += G::Scalar::ONE;
                                    }
                                }
                            }
                        }),
                        _ => o.bytes,
                    };
                    result.push(Outgoing { to: o.to, bytes });
                }
                Behaviour::InconsistentCommitment => {
                    let bytes = match t {
                        Some(MsgType::Commit) => self.other_commitment(&o.bytes),
                        Some(MsgType::Justify) => {
                            let mut j = o.bytes.clone();
                            let mut tampered = None;
                            if let Ok((_, _)) = header(&self.inner.ctx(), self.inner.me(), &j) {
                                let key = *self.inner.identity().verifying_key();
                                if let Ok(p) = decode::<G>(
                                    &self.inner.ctx(),
                                    self.inner.me(),
                                    &j,
                                    MsgType::Justify,
                                    &key,
                                ) {
                                    if let Message::Justify(just) = p.msg {
                                        tampered = just.commit.map(|c| self.other_commitment(&c));
                                    }
                                }
                            }
                            if let Some(c) = tampered {
                                j = self.rewrite(&j, |m| {
                                    if let Message::Justify(just) = m {
                                        just.commit = Some(c);
                                    }
                                });
                            }
                            j
                        }
                        _ => o.bytes,
                    };
                    result.push(Outgoing { to: o.to, bytes });
                }
                Behaviour::Equivocate(victims) => {
                    if t == Some(MsgType::Commit) && o.to.is_none() {
                        let alt = self.other_commitment(&o.bytes);
                        for p in &others {
                            let bytes = if victims.contains(p) {
                                alt.clone()
                            } else {
                                o.bytes.clone()
                            };
                            result.push(Outgoing {
                                to: Some(*p),
                                bytes,
                            });
                        }
                    } else {
                        result.push(o);
                    }
                }
                Behaviour::WithholdFrom(victim) => match o.to {
                    Some(p) if p == *victim => {}
                    Some(_) => result.push(o),
                    None => {
                        result.extend(others.iter().filter(|p| *p != victim).map(|p| Outgoing {
                            to: Some(*p),
                            bytes: o.bytes.clone(),
                        }))
                    }
                },
                Behaviour::Silent => {}
                Behaviour::Garbage => {
                    let mut bytes = vec![0u8; o.bytes.len()];
                    self.rng.fill_bytes(&mut bytes);
                    result.push(Outgoing { to: o.to, bytes });
                }
            }
        }
        result
    }
}

impl<G: DkgGroup> Protocol for Byzantine<G> {
    type Output = KeyGenOutput<G>;

    fn poke(&mut self) -> Result<Action<Self::Output>, ProtocolError> {
        match self.inner.poke()? {
            Action::Send(out) => Ok(Action::Send(self.tamper(out))),
            other => Ok(other),
        }
    }

    fn message(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.inner.message(from, bytes)
    }

    fn timeout(&mut self) -> Result<(), ProtocolError> {
        self.inner.timeout()
    }
}
