//! What defines a run: the protocol ([`Kind`]), the dealers and receivers, the threshold, the
//! identity keys and the old public key set, and the session id hashed from all of them.
//!
//! Every message carries the session id (see `messages`), so a message of another epoch,
//! group, label, participant set or threshold is refused as out of session, and a signed
//! broadcast of one run cannot be replayed into another.

use std::collections::{BTreeMap, BTreeSet};

use lit_crypto::protocol::{PartyId, ProtocolError};
use sha2::{Digest, Sha256};

use super::{IdentityKey, PublicKeySet, VERSION};
use crate::group::DkgGroup;
use crate::wire::Writer;

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
    /// The protocol's code in message headers, session ids and snapshots.
    pub(super) fn code(self) -> u8 {
        match self {
            Kind::Dkg => 1,
            Kind::Refresh => 2,
            Kind::Reshare => 3,
        }
    }
    /// The inverse of [`Kind::code`].
    pub(super) fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => Kind::Dkg,
            2 => Kind::Refresh,
            3 => Kind::Reshare,
            _ => return None,
        })
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

    /// Refuses sessions no run can succeed in (checked when a party is built).
    pub(super) fn validate(&self) -> Result<(), ProtocolError> {
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
