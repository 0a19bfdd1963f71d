//! Collecting decryption shares, without I/O: which node to ask next, opening and verifying
//! each answer, and combining `T` verified shares into the decryption key.
//!
//! [`crate::LitClient::decrypt`] drives a [`ShareCollector`] over HTTP; tests drive it with
//! answers built like a node builds them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use lit_api::v1::{encryption_share_aad, EncryptionSignResponse, ENCRYPTION_SHARE_SEAL_INFO};
use lit_api::ErrorCode;
use lit_crypto::bls::{PublicKeySet, SignatureShare};
use lit_crypto::ibe::{self, Ciphertext};
use lit_crypto::identity::AccessControlIdentity;
use lit_crypto::seal::{SealSecretKey, Sealed};
use zeroize::Zeroizing;

use crate::error::{ClientError, NodeFailure, NodeFailureReason};

/// A node to ask: its party id in the current epoch and its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRef {
    /// Its party id.
    pub party_id: u32,
    /// Its base URL.
    pub url: String,
}

/// Opens and verifies one node's answer to `POST /v1/encryption/sign`.
///
/// The answer must come from `party_id` for `epoch`, open with `seal_key` (the ephemeral key of
/// this very request) under the context of the share, decode as a signature share of that
/// party, and verify on `identity` against `key_set`. Anything else is
/// [`NodeFailureReason::InvalidShare`].
pub fn open_share(
    key_set: &PublicKeySet,
    seal_key: &SealSecretKey,
    party_id: u32,
    epoch: u64,
    identity: &AccessControlIdentity,
    response: &EncryptionSignResponse,
) -> Result<SignatureShare, NodeFailureReason> {
    open_bls_share(
        key_set,
        seal_key,
        (party_id, epoch),
        (response.party_id, response.epoch),
        ENCRYPTION_SHARE_SEAL_INFO,
        &identity.to_bytes(),
        &response.share,
    )
}

/// Opens and verifies a node's sealed BLS signature share on `message` (sealed with `info` and
/// [`encryption_share_aad`]): the answer's `(party, epoch)` must be the expected ones, and the
/// share must open, be that party's, and verify against `key_set`.
/// Opens a wire [`lit_api::v1::SealedBox`] sealed to `seal_key` with `info` and `aad`.
pub(crate) fn open_sealed(
    seal_key: &SealSecretKey,
    sealed: &lit_api::v1::SealedBox,
    info: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, lit_crypto::seal::SealError> {
    let sealed = Sealed {
        enc: sealed.enc.0.clone(),
        ciphertext: sealed.ciphertext.0.clone(),
    };
    seal_key.open(&sealed, info, aad).map(Zeroizing::new)
}

pub(crate) fn open_bls_share(
    key_set: &PublicKeySet,
    seal_key: &SealSecretKey,
    (party_id, epoch): (u32, u64),
    (answer_party, answer_epoch): (u32, u64),
    info: &[u8],
    message: &[u8],
    sealed: &lit_api::v1::SealedBox,
) -> Result<SignatureShare, NodeFailureReason> {
    let invalid = |m: String| NodeFailureReason::InvalidShare(m);
    if answer_party != party_id {
        return Err(invalid(format!(
            "answer claims party id {answer_party} instead of {party_id}"
        )));
    }
    if answer_epoch != epoch {
        return Err(invalid(format!(
            "share is for epoch {answer_epoch} instead of {epoch}"
        )));
    }
    let aad = encryption_share_aad(party_id, epoch, message);
    let bytes = open_sealed(seal_key, sealed, info, &aad).map_err(|e| invalid(e.to_string()))?;
    let share = SignatureShare::from_bytes(&bytes).map_err(|e| invalid(e.to_string()))?;
    if share.id().get() != party_id {
        return Err(invalid(format!(
            "share is party {}'s, not {party_id}'s",
            share.id()
        )));
    }
    key_set
        .verify_share(message, &share)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(share)
}

/// Combines `T` verified shares on the identity into the decryption key and decrypts.
///
/// The ciphertext must have been made for the key set's public key and `identity`, and the
/// plaintext must hash to the identity's data hash.
pub fn combine_and_decrypt(
    key_set: &PublicKeySet,
    identity: &AccessControlIdentity,
    ciphertext: &Ciphertext,
    shares: &[SignatureShare],
) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    let message = identity.to_bytes();
    let key = key_set
        .combine(&message, shares)
        .map_err(|e| ClientError::Decrypt(format!("combining the shares: {e}")))?;
    let plaintext = ibe::decrypt_checked(&key_set.public_key(), &message, ciphertext, &key)
        .map_err(|e| ClientError::Decrypt(e.to_string()))?;
    identity
        .verify_plaintext(&plaintext)
        .map_err(|e| ClientError::Decrypt(e.to_string()))?;
    Ok(plaintext)
}

/// The state of collecting `T` valid shares from a list of nodes, asked in order.
///
/// Sans-I/O: the driver asks the nodes [`ShareCollector::next_requests`] returns (concurrently),
/// feeds each answer to [`ShareCollector::record`], and stops when
/// [`ShareCollector::outcome`] is `Some`. At any time exactly enough nodes are in flight to
/// reach `T` if they all answer; every failure makes the next unused node be asked.
#[derive(Debug)]
pub struct ShareCollector {
    threshold: usize,
    nodes: usize,
    unasked: VecDeque<NodeRef>,
    in_flight: BTreeMap<u32, NodeRef>,
    shares: BTreeMap<u32, SignatureShare>,
    failures: Vec<NodeFailure>,
}

impl ShareCollector {
    /// Collects `threshold` shares from `order` (already shuffled by the caller).
    pub fn new(threshold: usize, order: Vec<NodeRef>) -> Self {
        let mut seen = BTreeSet::new();
        let unasked: VecDeque<NodeRef> = order
            .into_iter()
            .filter(|n| seen.insert(n.party_id))
            .collect();
        Self {
            threshold,
            nodes: unasked.len(),
            unasked,
            in_flight: BTreeMap::new(),
            shares: BTreeMap::new(),
            failures: Vec::new(),
        }
    }

    /// The nodes to ask now (possibly none). They count as in flight until recorded.
    pub fn next_requests(&mut self) -> Vec<NodeRef> {
        let mut out = Vec::new();
        if self.shares.len() >= self.threshold || self.unreachable() {
            return out;
        }
        while self.shares.len() + self.in_flight.len() < self.threshold {
            let Some(node) = self.unasked.pop_front() else {
                break;
            };
            self.in_flight.insert(node.party_id, node.clone());
            out.push(node);
        }
        out
    }

    /// Records a node's answer: a verified share or why it failed. Answers from nodes that are
    /// not in flight are ignored.
    pub fn record(&mut self, party_id: u32, result: Result<SignatureShare, NodeFailureReason>) {
        let Some(node) = self.in_flight.remove(&party_id) else {
            return;
        };
        match result {
            Ok(share) if share.id().get() == party_id => {
                self.shares.insert(party_id, share);
            }
            Ok(share) => self.failures.push(NodeFailure {
                party_id: Some(party_id),
                url: node.url,
                reason: NodeFailureReason::InvalidShare(format!("share is party {}'s", share.id())),
            }),
            Err(reason) => self.failures.push(NodeFailure {
                party_id: Some(party_id),
                url: node.url,
                reason,
            }),
        }
    }

    /// The number of shares needed.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The verified shares so far.
    pub fn shares(&self) -> Vec<SignatureShare> {
        self.shares.values().copied().collect()
    }

    /// The failures so far.
    pub fn failures(&self) -> &[NodeFailure] {
        &self.failures
    }

    /// Nodes asked and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// `T` can no longer be reached.
    fn unreachable(&self) -> bool {
        self.shares.len() + self.in_flight.len() + self.unasked.len() < self.threshold
    }

    /// Decided: `T` shares, or `T` unreachable and every node asked has answered (so the error
    /// counts every share that arrived and names every node that failed).
    fn outcome_ready(&self) -> bool {
        self.shares.len() >= self.threshold || (self.unreachable() && self.in_flight.is_empty())
    }

    /// `Some` once the collection is decided: `T` shares, or an error once `T` can no longer be
    /// reached and the nodes in flight have answered ([`ClientError::ConditionsNotMet`] when the nodes that refused with
    /// `conditions_not_met` alone make `T` unreachable, [`ClientError::TooFewShares`] otherwise;
    /// both list every failed node).
    pub fn outcome(&self) -> Option<Result<Vec<SignatureShare>, ClientError>> {
        if self.shares.len() >= self.threshold {
            return Some(Ok(self.shares().into_iter().take(self.threshold).collect()));
        }
        if !self.outcome_ready() {
            return None;
        }
        let refused = self
            .failures
            .iter()
            .filter(|f| f.reason.code() == Some(ErrorCode::ConditionsNotMet))
            .count();
        Some(Err(
            if self.nodes.saturating_sub(refused) < self.threshold {
                ClientError::ConditionsNotMet {
                    needed: self.threshold,
                    refused,
                    nodes: self.nodes,
                    failures: self.failures.clone(),
                }
            } else {
                ClientError::TooFewShares {
                    needed: self.threshold,
                    got: self.shares.len(),
                    failures: self.failures.clone(),
                }
            },
        ))
    }
}
