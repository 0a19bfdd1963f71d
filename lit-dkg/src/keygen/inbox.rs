//! Intake: every received message is checked against the session, the sender's role and its
//! signature, attributed to its sender, and stored once per round. A second, different message
//! for the same round is refused as an equivocation (the broadcast signatures make it provable;
//! see `messages`). A refused message leaves the party unchanged, and its error names the
//! sender.
//!
//! The round-1 commitment checks are those of the paper behind each mode (module
//! documentation of `keygen`): the proof of knowledge of the constant term (FROST KeyGen
//! round 1, Komlo–Goldberg 2020) for a DKG, `C_{i,0} = 0` for a refresh, and `C_{i,0} = Y_i`
//! for a reshare (Wong–Wang–Wing 2002).

use std::collections::{BTreeMap, BTreeSet};

use lit_crypto::protocol::{PartyId, ProtocolError};
use lit_crypto::shamir::SecretShare;

use super::messages::{
    decode, header, Echo, Message, MsgType, Parsed, Round1Commit, Round2Complain, Round3Justify,
    Round4Confirm, SIG_LEN,
};
use super::{pok_challenge, Fault, KeyGen, Kind};
use crate::group::DkgGroup;

/// A received broadcast: the message, its digest and signature (what an echo of it carries).
pub(super) struct Signed<T> {
    pub(super) body: T,
    pub(super) digest: [u8; 32],
    pub(super) sig: [u8; SIG_LEN],
}

/// The messages received so far, one per sender and round (mine included).
pub(super) struct Inbox<G: DkgGroup> {
    pub(super) commits: BTreeMap<PartyId, Signed<Round1Commit<G>>>,
    pub(super) shares: BTreeMap<PartyId, SecretShare<G::Scalar>>,
    pub(super) complaints: BTreeMap<PartyId, Signed<Round2Complain>>,
    pub(super) justifications: BTreeMap<PartyId, Signed<Round3Justify<G::Scalar>>>,
    pub(super) confirms: BTreeMap<PartyId, Signed<Round4Confirm>>,
}

impl<G: DkgGroup> Inbox<G> {
    pub(super) fn new() -> Self {
        Self {
            commits: BTreeMap::new(),
            shares: BTreeMap::new(),
            complaints: BTreeMap::new(),
            justifications: BTreeMap::new(),
            confirms: BTreeMap::new(),
        }
    }

    /// Whether every expected message of `round` is here.
    pub(super) fn complete(
        &self,
        round: u8,
        dealers: &BTreeSet<PartyId>,
        participants: &BTreeSet<PartyId>,
        expects_shares: bool,
    ) -> bool {
        match round {
            1 => {
                dealers.iter().all(|d| self.commits.contains_key(d))
                    && (!expects_shares || dealers.iter().all(|d| self.shares.contains_key(d)))
            }
            2 => participants.iter().all(|p| self.complaints.contains_key(p)),
            3 => participants
                .iter()
                .all(|p| self.justifications.contains_key(p)),
            4 => participants.iter().all(|p| self.confirms.contains_key(p)),
            _ => false,
        }
    }

    /// The echoes of the broadcasts of `round` (1 to 3), by echoer: carried by the messages
    /// of the next round.
    pub(super) fn echoes_of(&self, round: u8) -> Vec<(PartyId, &[Echo])> {
        match round {
            1 => self
                .complaints
                .iter()
                .map(|(p, m)| (*p, m.body.echo.as_slice()))
                .collect(),
            2 => self
                .justifications
                .iter()
                .map(|(p, m)| (*p, m.body.echo.as_slice()))
                .collect(),
            _ => self
                .confirms
                .iter()
                .map(|(p, m)| (*p, m.body.echo.as_slice()))
                .collect(),
        }
    }

    /// The digests of the broadcasts of `round` (1 to 3) we hold, by sender.
    pub(super) fn digests(&self, round: u8) -> BTreeMap<PartyId, [u8; 32]> {
        match round {
            1 => digests(&self.commits),
            2 => digests(&self.complaints),
            _ => digests(&self.justifications),
        }
    }
}

fn digests<T>(map: &BTreeMap<PartyId, Signed<T>>) -> BTreeMap<PartyId, [u8; 32]> {
    map.iter().map(|(p, m)| (*p, m.digest)).collect()
}

/// The echo of every broadcast in `map`: its sender, digest and signature.
pub(super) fn echo_of<T>(map: &BTreeMap<PartyId, Signed<T>>) -> Vec<Echo> {
    map.iter()
        .map(|(p, m)| Echo {
            from: *p,
            digest: m.digest,
            sig: m.sig,
        })
        .collect()
}

impl<G: DkgGroup> KeyGen<G> {
    /// Checks a message from a peer and stores it.
    pub(super) fn deliver(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), ProtocolError> {
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

    /// Stores a message of my own, as if received.
    pub(super) fn accept_own(&mut self, bytes: Vec<u8>) -> Result<(), ProtocolError> {
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

    /// Commitments missing from round 1 that came with a justification (GJKR step 1d): stored
    /// if valid, and proof of equivocation if they differ from the one we hold or from the
    /// digests others echoed.
    pub(super) fn accept_late_commitments(&mut self) {
        let late: Vec<(PartyId, Vec<u8>)> = self
            .inbox
            .justifications
            .iter()
            .filter_map(|(p, j)| j.body.commit.clone().map(|c| (*p, c)))
            .collect();
        for (dealer, bytes) in late {
            let parsed = header(&self.ctx(), dealer, &bytes).and_then(|(t, _)| {
                let key = self
                    .cfg
                    .session
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
    }
}
