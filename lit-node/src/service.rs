//! The node's services, callable without HTTP: decryption shares ([`decrypt`]), PKPs ([`pkp`]:
//! mint, permissions, signing), presignature pools ([`presign`]), Lit Actions ([`actions`]) and
//! the quotas per caller on uploads and mints ([`quota`]).
//! [`Node`] is the state they share; `crate::api` puts them on HTTP and `crate::node` builds and
//! runs a node.

pub mod actions;
pub mod decrypt;
pub mod pkp;
pub mod presign;
pub mod quota;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use k256::elliptic_curve::sec1::ToEncodedPoint;
use lit_api::network::NetworkFile;
use lit_api::v1::{
    Attestation, AttestationKind, HandshakeRequest, HandshakeResponse, Health, NetworkKeys,
    NodeIdentity as WireNodeIdentity, SealedBox,
};
use lit_api::{Bytes, Bytes32, ErrorCode};
use lit_attest::{Attester, Binding, Nonce};
use lit_crypto::seal::SealPublicKey;
use lit_crypto::PartyId;
use rand_core::OsRng;

use crate::auth::Authenticator;
use crate::chain::PkpRegistry;
use crate::conditions::Evaluator;
use crate::config::DevFault;
use crate::epoch::NodeKeys;
use crate::error::ApiError;
use crate::identity::NodeIdentity;
use crate::net::PeerNet;
use crate::store::Store;

/// A running node's shared state.
pub struct Node {
    pub(crate) me: PartyId,
    pub(crate) url: String,
    pub(crate) network: NetworkFile,
    pub(crate) identity: Arc<NodeIdentity>,
    pub(crate) keys: RwLock<Option<Arc<NodeKeys>>>,
    pub(crate) status: Arc<Status>,
    pub(crate) evaluator: Evaluator,
    pub(crate) attester: Box<dyn Attester>,
    pub(crate) attestation_kind: AttestationKind,
    pub(crate) auth: Authenticator,
    pub(crate) net: Arc<PeerNet>,
    pub(crate) store: Arc<Store>,
    pub(crate) registry: Option<Arc<dyn PkpRegistry>>,
    pub(crate) pools: presign::Pools,
    /// RPC URLs by chain name (`Lit.Actions.getRpcUrl`).
    pub(crate) chain_urls: BTreeMap<String, String>,
    /// The engine that runs Lit Actions (`/v1/execute`).
    pub(crate) engine: Arc<dyn lit_actions::Engine>,
    /// One permit per action running here.
    pub(crate) action_permits: tokio::sync::Semaphore,
    /// Quotas per caller (`[quotas]`).
    pub(crate) quotas: quota::Quotas,
    pub(crate) max_body_bytes: usize,
    pub(crate) fault: Option<DevFault>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("me", &self.me)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// The node's readiness, as `/health` reports it.
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    /// Installs the key shares of the epoch the node serves from now on.
    pub fn set_keys(&self, keys: Arc<NodeKeys>) {
        let epoch = keys.epoch;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Some(keys);
        self.status.set_serving(epoch);
    }

    /// The keys of the current epoch, if the request names it.
    pub(crate) fn keys_for_epoch(&self, epoch: u64) -> Result<Arc<NodeKeys>, ApiError> {
        let keys = self.keys()?;
        if epoch != keys.epoch {
            return Err(ApiError::new(
                ErrorCode::WrongEpoch,
                format!(
                    "the request is for epoch {epoch}, the node serves epoch {}",
                    keys.epoch
                ),
            ));
        }
        Ok(keys)
    }

    /// The keys of the current epoch.
    pub(crate) fn keys(&self) -> Result<Arc<NodeKeys>, ApiError> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotReady,
                    "the node has no keys yet (DKG running)",
                )
            })
    }
}

impl Node {
    /// The node's identity, epoch, keys and attestation bound to the client's challenge.
    pub fn handshake(&self, req: &HandshakeRequest) -> Result<HandshakeResponse, ApiError> {
        let keys = self.keys()?;
        let identity_key = self.identity.public_key().to_bytes();
        let binding = Binding::new(&identity_key, Nonce(req.challenge.0), keys.epoch);
        let evidence = self
            .attester
            .attest(&binding.report_data())
            .map_err(|e| ApiError::internal(ErrorCode::Internal, "attestation failed", e))?;
        Ok(HandshakeResponse {
            api_version: lit_api::API_VERSION,
            node: WireNodeIdentity {
                party_id: self.me.get(),
                url: self.url.clone(),
                identity_key: Bytes(identity_key.to_vec()),
                seal_key: Bytes32(self.identity.seal_public_key().to_bytes()),
            },
            epoch: keys.epoch,
            threshold: keys.bls_set.threshold() as u32,
            node_count: self.network.nodes.len() as u32,
            domain: self.auth.domain().to_string(),
            network_keys: NetworkKeys {
                bls: Bytes(keys.bls_set.public_key().to_bytes().to_vec()),
                ecdsa: Bytes(
                    keys.ecdsa
                        .public_key()
                        .to_encoded_point(true)
                        .as_bytes()
                        .to_vec(),
                ),
                bls_key_set: Bytes(keys.bls_set.to_bytes()),
            },
            attestation: Attestation {
                kind: self.attestation_kind,
                evidence: Bytes(evidence.to_json().into_bytes()),
            },
            members: Vec::new(),
        })
    }
}

/// What the API reports about the node's readiness (set by the epoch logic).
#[derive(Debug, Default)]
pub struct Status {
    ready: AtomicBool,
    epoch: AtomicU64,
}

impl Status {
    /// Records that the node serves `epoch` (after its DKG or reshare finished).
    pub fn set_serving(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::SeqCst);
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Records that the node stopped serving (shutdown, or epoch change in progress).
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }

    /// The current health.
    pub fn health(&self) -> Health {
        Health {
            ready: self.ready.load(Ordering::SeqCst),
            epoch: self.epoch.load(Ordering::SeqCst),
        }
    }
}

/// Seals a reply (a share) to the client's key as a wire [`SealedBox`].
pub(crate) fn seal_reply(
    client_key: &SealPublicKey,
    info: &[u8],
    aad: &[u8],
    plain: &[u8],
) -> Result<SealedBox, ApiError> {
    let sealed = client_key
        .seal(info, aad, plain, &mut OsRng)
        .map_err(|e| ApiError::internal(ErrorCode::Internal, "sealing the share failed", e))?;
    Ok(SealedBox {
        enc: Bytes(sealed.enc),
        ciphertext: Bytes(sealed.ciphertext),
    })
}

/// A client's ephemeral X25519 key, to seal a reply to.
pub(crate) fn client_key(key: &Bytes32) -> Result<SealPublicKey, ApiError> {
    SealPublicKey::from_bytes(&key.0).map_err(|_| {
        ApiError::new(
            ErrorCode::MalformedRequest,
            "clientPublicKey is not an X25519 key",
        )
    })
}
