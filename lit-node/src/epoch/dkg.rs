//! The DKG of the first epoch: a BLS12-381 root key (encryption, network signatures) and a
//! secp256k1 root key (PKPs), two `lit-dkg` sessions run concurrently over the peer transport.
//! Each run snapshots its state to the store after every step, so a node that crashes
//! mid-protocol resumes where it was.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lit_api::network::NetworkFile;
use lit_api::Bytes32;
use lit_crypto::PartyId;
use lit_dkg::byzantine::{Behaviour, Byzantine};
use lit_dkg::{DkgGroup, KeyGen, KeyGenOutput, Session};
use rand_core::OsRng;
use tracing::{info, warn};

use super::{KeysError, NodeKeys, FIRST_EPOCH};
use crate::identity::NodeIdentity;
use crate::net::{drive, DriveError, DriveOptions, PeerNet};
use crate::store::{Store, StoreError, Table};

/// Why a DKG could not produce this node's shares.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DkgError {
    /// The network file lists a node with an unusable key.
    #[error("network file: {0}")]
    Network(String),
    /// The protocol failed.
    #[error("DKG for epoch {epoch} failed: {source}")]
    Protocol {
        /// The epoch.
        epoch: u64,
        /// Why.
        source: DriveError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The output could not become key shares.
    #[error(transparent)]
    Keys(#[from] KeysError),
}

/// What a DKG run needs from the node.
pub struct DkgContext<'a> {
    /// This node.
    pub me: PartyId,
    /// Its identity (the DKG key authenticates its dealings).
    pub identity: &'a NodeIdentity,
    /// The peer transport.
    pub net: &'a Arc<PeerNet>,
    /// The node's store (snapshots).
    pub store: &'a Arc<Store>,
    /// A development fault to play (tests of how peers handle a corrupt dealer).
    pub fault: Option<Behaviour>,
    /// Round timeouts.
    pub options: DriveOptions,
}

/// Runs the DKG of the first epoch with every node of `network`.
pub async fn run_first_epoch(
    cx: &DkgContext<'_>,
    network: &NetworkFile,
) -> Result<NodeKeys, DkgError> {
    let mut identities = BTreeMap::new();
    for n in &network.nodes {
        let id = PartyId::new(n.party_id).ok_or_else(|| DkgError::Network("party id 0".into()))?;
        let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(&n.dkg_key.0)
            .map_err(|_| DkgError::Network(format!("node {}: bad dkg key", n.party_id)))?;
        identities.insert(id, key);
    }
    let t = network.threshold as usize;
    let bls_session = Session::<blstrs::G1Projective>::dkg(
        &format!("{}/bls-root", network.name),
        FIRST_EPOCH,
        identities.clone(),
        t,
    );
    let ecdsa_session = Session::<k256::ProjectivePoint>::dkg(
        &format!("{}/secp256k1-root", network.name),
        FIRST_EPOCH,
        identities,
        t,
    );
    let (bls, ecdsa) = tokio::join!(
        run_keygen(cx, bls_session, None),
        run_keygen(cx, ecdsa_session, None)
    );
    let (bls, ecdsa) = (bls?, ecdsa?);
    Ok(NodeKeys::from_dkg(FIRST_EPOCH, &bls, &ecdsa)?)
}

fn snapshot_key(session: &[u8; 32]) -> String {
    format!("dkg-snapshot/{}", hex::encode(session))
}

/// Runs one party of a DKG, refresh or reshare session (`old_share`: this node's share of the
/// current epoch if it deals in a reshare), snapshotting after every step so that a node that
/// crashes resumes the run.
pub(crate) async fn run_keygen<G: DkgGroup>(
    cx: &DkgContext<'_>,
    session: Session<G>,
    old_share: Option<lit_dkg::KeyShare<G>>,
) -> Result<KeyGenOutput<G>, DkgError>
where
    KeyGen<G>: Send,
{
    let epoch = session.epoch;
    let dkg_err = |source| DkgError::Protocol { epoch, source };
    let store = cx.store;
    let sid = session.id();
    let name = session.label.clone();
    let participants: BTreeSet<PartyId> = session.participants();
    let key = snapshot_key(&sid);
    let restored = match store.get(Table::Meta, &key)? {
        Some(bytes) => match KeyGen::<G>::restore(&bytes) {
            Ok(k) if k.session_id() == sid => {
                info!(protocol = %name, round = k.round(), "resuming the DKG from its snapshot");
                Some(k)
            }
            _ => None,
        },
        None => None,
    };
    let keygen = match restored {
        Some(k) => k,
        None => KeyGen::new(
            session,
            cx.me,
            cx.identity.dkg_key().clone(),
            old_share,
            &mut OsRng,
        )
        .map_err(|e| dkg_err(DriveError::Protocol(e)))?,
    };
    let output = match cx.fault.clone() {
        Some(behaviour) => {
            let mut bad = Byzantine::new(keygen, behaviour, 7);
            drive(
                cx.net,
                &name,
                Bytes32(sid),
                &participants,
                &mut bad,
                cx.options,
                |_| {},
            )
            .await
        }
        None => {
            let mut keygen = keygen;
            let store = store.clone();
            let key = key.clone();
            drive(
                cx.net,
                &name,
                Bytes32(sid),
                &participants,
                &mut keygen,
                cx.options,
                move |k: &KeyGen<G>| {
                    if let Err(e) = store.put(Table::Meta, &key, &k.snapshot()) {
                        warn!("cannot persist the DKG snapshot: {e}");
                    }
                },
            )
            .await
        }
    }
    .map_err(dkg_err)?;
    for (party, faults) in &output.faults {
        warn!(protocol = %name, culprit = party.get(), ?faults, "peer {party} misbehaved in the DKG");
    }
    if !output.disqualified.is_empty() {
        warn!(protocol = %name, disqualified = ?output.disqualified.iter().map(|p| p.get()).collect::<Vec<_>>(),
            "dealers excluded from the key");
    }
    let _ = store.remove(Table::Meta, &key);
    Ok(output)
}
