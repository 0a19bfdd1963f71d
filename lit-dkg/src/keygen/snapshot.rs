//! Persistence by replay (see "Persistence" in the module documentation): a snapshot is the
//! party's configuration, the seed drawn at construction and every input it accepted; restoring
//! rebuilds the party and feeds it the same inputs, so it reaches the same state and produces
//! byte-identical messages — a restarted party cannot equivocate.
//!
//! Format, in the encoding of `wire`: `"LDKGSNAP" ‖ group name ‖ kind ‖ label ‖ epoch ‖
//! threshold ‖ dealers ‖ receivers ‖ identities ‖ old public key set? ‖ me ‖ identity secret ‖
//! seed ‖ old share? ‖ events`. It holds secrets.

use std::collections::{BTreeMap, BTreeSet};

use lit_crypto::protocol::{PartyId, Protocol, ProtocolError};
use lit_crypto::shamir::SecretShare;
use zeroize::Zeroizing;

use super::{Config, IdentityKey, IdentitySecret, KeyGen, Kind, PublicKeySet, Session};
use crate::group::DkgGroup;
use crate::wire::{Reader, Writer};

const SNAPSHOT_TAG: &[u8; 8] = b"LDKGSNAP";

/// An accepted input, recorded for [`KeyGen::snapshot`].
pub(super) enum Event {
    /// A message accepted from a peer.
    Message(PartyId, Vec<u8>),
    /// A round deadline that passed.
    Timeout,
}

impl<G: DkgGroup> KeyGen<G> {
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
