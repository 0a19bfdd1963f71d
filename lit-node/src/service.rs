//! The node's services, callable without HTTP: decryption shares ([`decrypt`]), PKPs ([`pkp`]:
//! mint, permissions, signing), presignature pools ([`presign`]), Lit Actions ([`actions`]) and
//! the quotas per caller on uploads and mints ([`quota`]).
//! [`Node`] is the state they share; `crate::api` puts them on HTTP and `crate::node` builds and
//! runs a node.

pub mod actions;
pub mod decrypt;
pub mod ledger;
pub mod meter;
pub mod pkp;
pub mod presign;
pub mod quota;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use k256::elliptic_curve::sec1::ToEncodedPoint;
use lit_api::network::{NetworkFile, NetworkNode};
use lit_api::v1::{
    Attestation, AttestationKind, HandshakeRequest, HandshakeResponse, Health, NetworkKeys,
    NodeIdentity as WireNodeIdentity, PeerAttestRequest, PeerAttestResponse, SealedBox,
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
    /// The TLS server configuration (`None`: the node serves plain HTTP, benchmarks only).
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) keys: RwLock<Option<Arc<NodeKeys>>>,
    /// The previous epoch's keys during their grace period: requests already under way when
    /// the epoch changed still complete.
    pub(crate) previous_keys: RwLock<Option<Arc<NodeKeys>>>,
    /// Who the members of the current epoch are.
    pub(crate) membership: RwLock<Arc<Membership>>,
    /// The staking contract, seen by this node's staker (networks whose membership is on a
    /// chain; `None` for a static network file).
    pub(crate) chain: Option<Arc<dyn crate::chain::staking::Staking>>,
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
    /// Charges for requests (networks with a ledger; set when the node starts).
    pub(crate) meter: std::sync::OnceLock<Arc<meter::Meter>>,
    /// The ledger's endpoints (networks with a ledger; set when the node starts).
    pub(crate) ledger: std::sync::OnceLock<Arc<ledger::LedgerDesk>>,
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

/// The members of an epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The epoch.
    pub epoch: u64,
    /// Its threshold.
    pub threshold: u32,
    /// Its members, by party id.
    pub nodes: Vec<NetworkNode>,
    /// Whether the chain says so (then handshakes list the members for clients).
    pub from_chain: bool,
}

impl Membership {
    /// The member with this party id.
    pub fn node(&self, party_id: u32) -> Option<&NetworkNode> {
        self.nodes.iter().find(|n| n.party_id == party_id)
    }
}

impl Node {
    /// The members of the current epoch.
    pub fn membership(&self) -> Arc<Membership> {
        self.membership
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records the members of the current epoch.
    pub(crate) fn set_membership(&self, membership: Membership) {
        *self.membership.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(membership);
    }

    /// The epoch whose keys the node serves with, if any.
    pub fn serving_epoch(&self) -> Option<u64> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|k| k.epoch)
    }

    /// Serves with `keys` of a new epoch from now on; the keys it replaces serve requests for
    /// their epoch until [`Node::end_grace`].
    pub(crate) fn switch_keys(&self, keys: Arc<NodeKeys>) {
        let epoch = keys.epoch;
        let old = self
            .keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(keys);
        *self
            .previous_keys
            .write()
            .unwrap_or_else(|e| e.into_inner()) = old;
        self.status.set_serving(epoch);
    }

    /// Ends the previous epoch's grace period; returns its epoch.
    pub(crate) fn end_grace(&self) -> Option<u64> {
        self.previous_keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .map(|k| k.epoch)
    }

    /// The node left the network: it no longer serves a current epoch, and its keys serve
    /// requests of their epoch until [`Node::end_grace`].
    pub(crate) fn retire_keys(&self) {
        self.status.set_not_ready();
        let current = self.keys.write().unwrap_or_else(|e| e.into_inner()).take();
        if current.is_some() {
            *self
                .previous_keys
                .write()
                .unwrap_or_else(|e| e.into_inner()) = current;
        }
    }
}

impl Node {
    /// The network as this node reads it from the chain (`GET /v1/network`).
    pub async fn network_status(&self) -> Result<lit_api::v1::NetworkStatus, ApiError> {
        use crate::chain::staking::{EpochState, Validator};
        let Some(chain) = &self.chain else {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "this network's membership is its network file, not a chain",
            ));
        };
        let unavailable = |e: crate::chain::ChainError| {
            ApiError::internal(ErrorCode::ChainUnavailable, "the chain is unavailable", e)
        };
        let net = chain.network().await.map_err(unavailable)?;
        let mut current = Vec::new();
        let mut next = Vec::new();
        for (list, out) in [(&net.current, &mut current), (&net.next, &mut next)] {
            for v in list.iter() {
                let Validator {
                    staker,
                    party_id,
                    url,
                    ..
                } = v;
                let stake = chain.stake_of(*staker).await.map_err(unavailable)?;
                out.push(lit_api::v1::MemberStatus {
                    party_id: *party_id,
                    url: url.clone(),
                    staker: staker.to_checksum(),
                    stake: stake.to_string(),
                });
            }
        }
        Ok(lit_api::v1::NetworkStatus {
            epoch: net.epoch,
            serving_epoch: self.serving_epoch().unwrap_or(0),
            state: match net.state {
                EpochState::Active => "active",
                EpochState::Locked => "locked",
            }
            .to_string(),
            threshold: net.threshold,
            next_threshold: net.next_threshold,
            epoch_start: net.epoch_start,
            epoch_length: net.epoch_length,
            current,
            next,
        })
    }

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

    /// The keys of the epoch the request names: the current one, or the previous one during
    /// its grace period.
    pub(crate) fn keys_for_epoch(&self, epoch: u64) -> Result<Arc<NodeKeys>, ApiError> {
        if let Some(previous) = self
            .previous_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|p| p.epoch == epoch)
        {
            return Ok(previous.clone());
        }
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
        let membership = self.membership();
        let identity_key = self.identity.public_key().to_bytes();
        let mut response = HandshakeResponse {
            api_version: lit_api::API_VERSION,
            node: WireNodeIdentity {
                party_id: self.me.get(),
                url: self.url.clone(),
                identity_key: Bytes(identity_key.to_vec()),
                seal_key: Bytes32(self.identity.seal_public_key().to_bytes()),
            },
            epoch: keys.epoch,
            threshold: keys.bls_set.threshold() as u32,
            node_count: membership.nodes.len() as u32,
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
                evidence: Bytes(Vec::new()),
            },
            members: if membership.from_chain {
                membership.nodes.clone()
            } else {
                Vec::new()
            },
        };
        // the report covers the whole answer, so a proxy cannot change what the client relies on
        response.attestation.evidence = self.evidence(&Binding {
            context: response.attested_digest().to_vec(),
            ..Binding::new(&identity_key, Nonce(req.challenge.0), keys.epoch)
        })?;
        Ok(response)
    }

    /// This node's evidence for `binding`, encoded for an answer.
    fn evidence(&self, binding: &Binding) -> Result<Bytes, ApiError> {
        let evidence = self
            .attester
            .attest(&binding.report_data())
            .map_err(|e| ApiError::internal(ErrorCode::Internal, "attestation failed", e))?;
        Ok(Bytes(evidence.to_json().into_bytes()))
    }

    /// This node's keys for a peer, attested (`POST /v1/peer/attest`; works before the node
    /// holds keys).
    pub fn peer_attest(&self, req: &PeerAttestRequest) -> Result<PeerAttestResponse, ApiError> {
        let identity_key = self.identity.public_key().to_bytes();
        let mut response = PeerAttestResponse {
            identity_key: Bytes32(identity_key),
            seal_key: Bytes32(self.identity.seal_public_key().to_bytes()),
            dkg_key: Bytes(
                self.identity
                    .dkg_key()
                    .verifying_key()
                    .to_encoded_point(true)
                    .as_bytes()
                    .to_vec(),
            ),
            attestation: Attestation {
                kind: self.attestation_kind,
                evidence: Bytes(Vec::new()),
            },
        };
        response.attestation.evidence = self.evidence(&Binding {
            context: response.attested_digest().to_vec(),
            ..Binding::new(&identity_key, Nonce(req.challenge.0), 0)
        })?;
        Ok(response)
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
