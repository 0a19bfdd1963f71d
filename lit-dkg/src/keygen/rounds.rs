//! Dealing and the end of each round: what a party draws, sends and records when a round
//! closes (all messages expected arrived, or its deadline passed). The decisions themselves are
//! the pure functions of `decide`; the steps follow the "Rounds" of the module documentation
//! (GJKR 2007 Joint-Feldman with complaints, FROST's proof of knowledge, Wong–Wang–Wing's
//! verifiable redistribution for a reshare).

use std::collections::{BTreeMap, BTreeSet};

use ff::{Field, PrimeField};
use lit_crypto::protocol::{Outgoing, PartyId, ProtocolError};
use lit_crypto::shamir::Polynomial;
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use super::decide::{self, Aggregate, Decision, Qualification};
use super::inbox::echo_of;
use super::messages::{encode, Message, Round1Commit, Round1Share, Round2Complain, Round4Confirm};
use super::{pok_challenge, KeyGen, KeyGenOutput, Kind};
use crate::group::DkgGroup;

impl<G: DkgGroup> KeyGen<G> {
    /// Round 1: choose `f_i`, commit, prove, share.
    pub(super) fn deal(&mut self, rng: &mut ChaCha20Rng) -> Result<(), ProtocolError> {
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

    /// Compares the echoes of `round`'s broadcasts (carried by the next round's messages) with
    /// what we received, and records what that shows.
    fn check_echoes(&mut self, round: u8) {
        let found = decide::check_echoes(
            round,
            self.inbox.echoes_of(round),
            &self.cfg.session.identities,
            &self.inbox.digests(round),
        );
        self.note_all(found.faults);
        self.equivocators.extend(found.equivocators);
        self.unseen.extend(found.unseen);
        for (dealer, digest) in found.echoed_commits {
            self.echoed_commits.entry(dealer).or_default().push(digest);
        }
        self.unlisted.extend(found.unlisted);
    }

    /// End of round 1: verify the received shares in one batch, complain, echo.
    pub(super) fn close_round1(&mut self) -> Result<(), ProtocolError> {
        let me = self.cfg.me;
        let silent = decide::silent(1, &self.cfg.session.dealers, &self.inbox.commits);
        self.note_all(silent);
        let s = &self.cfg.session;
        let receiver = s.receivers.contains(&me);
        let committed: BTreeSet<PartyId> = self.inbox.commits.keys().copied().collect();
        let mut valid = BTreeSet::new();
        if receiver {
            let received: Vec<(PartyId, &[G], G::Scalar)> = s
                .dealers
                .iter()
                .filter_map(|d| {
                    let c = self.inbox.commits.get(d)?;
                    let sh = self.inbox.shares.get(d)?;
                    Some((*d, c.body.c.as_slice(), sh.value))
                })
                .collect();
            // Random 128-bit coefficients of the batch check, from the party's seeded RNG.
            let r: Vec<G::Scalar> = (0..received.len())
                .map(|_| {
                    let hi = u128::from(self.rng.next_u64());
                    G::Scalar::from_u128(hi << 64 | u128::from(self.rng.next_u64()))
                })
                .collect();
            valid = decide::verify_shares(u64::from(me.get()), &received, &r);
            for d in &valid {
                if let Some(share) = self.inbox.shares.get(d) {
                    self.valid_shares.insert(*d, share.clone());
                }
            }
        }
        let complaints = decide::complaints(&s.dealers, receiver, &committed, &valid);
        let echo = echo_of(&self.inbox.commits);
        self.broadcast(Message::Complain(Round2Complain { echo, complaints }))
    }

    /// End of round 2: check the echoes of round 1, answer complaints against me, echo.
    pub(super) fn close_round2(&mut self) -> Result<(), ProtocolError> {
        let silent = decide::silent(2, &self.participants, &self.inbox.complaints);
        self.note_all(silent);
        self.check_echoes(1);
        let accusers = decide::accusers(&self.inbox.complaints, self.cfg.me);
        let justify = decide::justification(
            echo_of(&self.inbox.complaints),
            self.poly.as_ref(),
            &self.my_commit_bytes,
            &accusers,
            &self.cfg.session.receivers,
        );
        self.broadcast(Message::Justify(justify))
    }

    /// End of round 3: decide the qualified set and compute the outputs.
    pub(super) fn close_round3(&mut self) -> Result<(), ProtocolError> {
        let silent = decide::silent(3, &self.participants, &self.inbox.justifications);
        self.note_all(silent);
        self.check_echoes(2);
        // Commitments missing from round 1 may come with the justification.
        self.accept_late_commitments();

        let me = self.cfg.me;
        let s = &self.cfg.session;
        let against = decide::complaints_against(&self.inbox.complaints, &self.equivocators);
        let Qualification {
            qualified,
            disqualified,
            revealed,
            faults,
        } = decide::qualify(
            s,
            me,
            &self.inbox.commits,
            &self.inbox.justifications,
            &against,
            &self.equivocators,
        );
        self.note_all(faults);
        self.valid_shares.extend(revealed);

        let s = &self.cfg.session;
        let (aggregate, faults) =
            decide::aggregate(s, &self.inbox.commits, qualified, disqualified);
        self.note_all(faults);
        let Aggregate {
            q,
            weights,
            commitment,
            qualified,
            disqualified,
        } = aggregate?;
        let s = &self.cfg.session;
        let public = decide::public_key_set(s, &commitment)?;
        let share = decide::own_share(
            s,
            me,
            &q,
            weights.as_deref(),
            &self.valid_shares,
            self.cfg.old_share.as_ref(),
            &public,
        )?;
        let result = decide::result_digest(&self.sid, &q, &commitment, &public.group_key);
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
        let echo = echo_of(&self.inbox.justifications);
        self.broadcast(Message::Confirm(Round4Confirm { echo, result }))
    }

    /// End of round 4: release the output if every confirmation agrees.
    pub(super) fn close_round4(&mut self) -> Result<(), ProtocolError> {
        let silent = decide::silent(4, &self.participants, &self.inbox.confirms);
        self.note_all(silent);
        self.check_echoes(3);
        let Some(decision) = self.decision.take() else {
            return Err(ProtocolError::Aborted {
                culprits: Vec::new(),
                reason: "no decision".into(),
            });
        };
        let (faults, verdict) = decide::verdict(
            &decision.result,
            &decision.output.disqualified,
            &self.inbox.confirms,
            &self.equivocators,
            &self.unseen,
            &self.unlisted,
        );
        self.note_all(faults);
        verdict?;
        let mut output = decision.output;
        output.faults = self.faults.clone();
        self.outcome = Some(Ok(output));
        Ok(())
    }
}
