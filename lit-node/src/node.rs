//! A running node: start-up (identity, store, network file, DKG for epoch 1 or the stored
//! shares), the client endpoints `/v1/handshake` and `/v1/encryption/sign`, and the peer
//! endpoint that feeds the transport.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use ed25519_dalek::VerifyingKey;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use lit_api::network::{AttestationMode as NetAttestation, NetworkFile, NetworkNode};
use lit_api::v1::{
    encryption_share_aad, paths, Attestation, AttestationKind, EncryptionSignRequest,
    EncryptionSignResponse, HandshakeRequest, HandshakeResponse, NetworkKeys,
    NodeIdentity as WireNodeIdentity, PeerMessage, SealedBox, ENCRYPTION_SHARE_SEAL_INFO,
};
use lit_api::{Bytes, Bytes32, ErrorCode};
use lit_attest::{Attester, Binding, Nonce, SimulatedAttester};
use lit_crypto::identity::{conditions_hash, AccessControlIdentity};
use lit_crypto::seal::SealPublicKey;
use lit_crypto::PartyId;
use lit_dkg::byzantine::{Behaviour, Byzantine};
use lit_dkg::{DkgGroup, KeyGen, KeyGenOutput, Session};
use rand_core::OsRng;
use sha2::{Digest, Sha384};
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::api::{self, ApiError, ApiJson, Status};
use crate::auth::{verify_auth_sig, AuthError};
use crate::chain::{PkpRegistry, SqliteRegistry};
use crate::conditions::Evaluator;
use crate::config::{AttestationMode, Config};
use crate::identity::NodeIdentity;
use crate::keys::{KeysError, NodeKeys};
use crate::peer::PeerKeys;
use crate::store::{KeyFile, Store, StoreError, Table};
use crate::transport::{drive, DriveError, DriveOptions, Peer, PeerNet, TransportOptions};

/// The epoch the first DKG creates.
pub const FIRST_EPOCH: u64 = 1;

/// Environment variable that makes a development node misbehave, for tests of how peers and
/// clients handle a faulty member: `bad-dkg-share:<victim party id>` or `dkg-garbage` (in the
/// DKG), or `wrong-decryption-share` (answers `/v1/encryption/sign` with a share of the wrong
/// message). Honoured only with simulated attestation.
pub const DEV_FAULT_ENV: &str = "LIT_NODE_DEV_FAULT";

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The data directory or network file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key material failed.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// The network file is unusable for this node.
    #[error("network file: {0}")]
    Network(String),
    /// The DKG failed.
    #[error("DKG for epoch {epoch} failed: {source}")]
    Dkg {
        /// The epoch.
        epoch: u64,
        /// Why.
        source: DriveError,
    },
    /// The attester could not be set up.
    #[error("attestation: {0}")]
    Attestation(String),
}

/// Opens the node's data directory: the encrypted store and the identity.
pub fn open_data_dir(data_dir: &Path) -> Result<(Store, NodeIdentity), NodeError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| NodeError::Io(format!("cannot create {}: {e}", data_dir.display())))?;
    let store = Store::open(
        &data_dir.join("node.redb"),
        &KeyFile::new(data_dir.join("storage.key")),
    )?;
    let identity = NodeIdentity::load_or_create(&store)
        .map_err(|e| NodeError::Io(format!("identity: {e}")))?;
    Ok((store, identity))
}

/// Creates the node's identity if needed and returns its entry for a network file (party id 0:
/// the network's author assigns it).
pub fn init(config: &Config) -> Result<NetworkNode, NodeError> {
    let (_store, identity) = open_data_dir(&config.data_dir)?;
    Ok(network_entry(&identity, 0, config.public_url()))
}

fn network_entry(identity: &NodeIdentity, party_id: u32, url: String) -> NetworkNode {
    NetworkNode {
        party_id,
        url,
        identity_key: Bytes32(identity.public_key().to_bytes()),
        seal_key: Bytes32(identity.seal_public_key().to_bytes()),
        dkg_key: Bytes(
            identity
                .dkg_key()
                .verifying_key()
                .to_encoded_point(true)
                .as_bytes()
                .to_vec(),
        ),
    }
}

/// Reads and checks the network file.
pub fn read_network_file(path: &Path) -> Result<NetworkFile, NodeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| NodeError::Io(format!("cannot read {}: {e}", path.display())))?;
    NetworkFile::parse(&text).map_err(|e| NodeError::Network(format!("{}: {e}", path.display())))
}

/// Remembers the client keys (request nonces) already answered, until their auth expires.
#[derive(Default)]
struct ReplayCache {
    seen: HashMap<[u8; 32], OffsetDateTime>,
}

impl ReplayCache {
    const PURGE_AT: usize = 100_000;

    /// Records `nonce` until `until`; false if it was already recorded.
    fn insert(&mut self, nonce: [u8; 32], until: OffsetDateTime, now: OffsetDateTime) -> bool {
        if self.seen.len() >= Self::PURGE_AT {
            self.seen.retain(|_, exp| *exp > now);
        }
        match self.seen.get(&nonce) {
            Some(exp) if *exp > now => false,
            _ => {
                self.seen.insert(nonce, until);
                true
            }
        }
    }
}

/// A running node's shared state.
pub struct Node {
    pub(crate) me: PartyId,
    pub(crate) url: String,
    pub(crate) network: NetworkFile,
    identity: Arc<NodeIdentity>,
    keys: RwLock<Option<Arc<NodeKeys>>>,
    status: Arc<Status>,
    pub(crate) evaluator: Evaluator,
    attester: Box<dyn Attester>,
    attestation_kind: AttestationKind,
    replay: Mutex<ReplayCache>,
    pub(crate) net: Arc<PeerNet>,
    pub(crate) store: Arc<Store>,
    pub(crate) registry: Option<Arc<dyn PkpRegistry>>,
    pub(crate) pools: crate::presign::Pools,
    pub(crate) oidc: Option<crate::oidc::OidcVerifier>,
    pub(crate) session_replay: crate::session::ReplayGuard,
    auth_engine: std::sync::OnceLock<Arc<lit_actions::QuickJsEngine>>,
    /// Chains with a known chain id (for EIP-1271 contract-wallet auth).
    pub(crate) chains_by_id: BTreeMap<u64, crate::conditions::rpc::ChainRpc>,
    /// RPC URLs by chain name (`Lit.Actions.getRpcUrl`).
    pub(crate) chain_urls: BTreeMap<String, String>,
    /// The engine that runs Lit Actions (`/v1/execute`).
    pub(crate) engine: Arc<dyn lit_actions::Engine>,
    /// One permit per action running here.
    pub(crate) action_permits: tokio::sync::Semaphore,
    fault: Option<DevFault>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("me", &self.me)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn measurement_of_this_binary() -> [u8; 48] {
    let mut out = [0u8; 48];
    let digest = std::env::current_exe()
        .and_then(std::fs::read)
        .map(Sha384::digest)
        .unwrap_or_else(|_| Sha384::digest(b"lit-node: executable unreadable"));
    out.copy_from_slice(&digest);
    out
}

/// Runs a node until `shutdown` resolves. Binds the listener first (so peers can reach it while
/// it runs its DKG), then loads its shares or runs the DKG for the first epoch, then serves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let (store, identity) = open_data_dir(&config.data_dir)?;
    let (listener, config) = crate::devnet::listen(config, &identity).await?;
    let store = Arc::new(store);
    let identity = Arc::new(identity);
    let network = read_network_file(&config.network_file)?;
    let my_key = Bytes32(identity.public_key().to_bytes());
    let entry = network
        .nodes
        .iter()
        .find(|n| n.identity_key == my_key)
        .ok_or_else(|| {
            NodeError::Network(format!(
                "this node's identity key {} is not listed in {}",
                hex::encode(my_key.0),
                config.network_file.display()
            ))
        })?;
    let me = PartyId::new(entry.party_id).ok_or_else(|| NodeError::Network("party id 0".into()))?;
    let mut peers = BTreeMap::new();
    for n in &network.nodes {
        let id = PartyId::new(n.party_id).ok_or_else(|| NodeError::Network("party id 0".into()))?;
        let identity_key = VerifyingKey::from_bytes(&n.identity_key.0)
            .map_err(|_| NodeError::Network(format!("node {}: bad identity key", n.party_id)))?;
        let seal = SealPublicKey::from_bytes(&n.seal_key.0)
            .map_err(|_| NodeError::Network(format!("node {}: bad seal key", n.party_id)))?;
        peers.insert(
            id,
            Peer {
                url: n.url.clone(),
                keys: PeerKeys {
                    identity: identity_key,
                    seal,
                },
            },
        );
    }
    let net = PeerNet::new(me, identity.clone(), peers, TransportOptions::default())
        .map_err(|e| NodeError::Io(format!("http client: {e}")))?;
    let (attester, attestation_kind): (Box<dyn Attester>, _) = match config.attestation {
        AttestationMode::Simulated => (
            Box::new(SimulatedAttester::new(measurement_of_this_binary())),
            AttestationKind::Simulated,
        ),
        AttestationMode::SevSnp => (
            Box::new(lit_attest::SnpAttester::new(
                lit_attest::VekSource::HostOnly,
            )),
            AttestationKind::SevSnp,
        ),
    };
    if (network.attestation == NetAttestation::SevSnp)
        != (config.attestation == AttestationMode::SevSnp)
    {
        return Err(NodeError::Attestation(
            "the node's attestation mode differs from the network file's".into(),
        ));
    }
    let evaluator =
        Evaluator::new(&config.chains).map_err(|e| NodeError::Io(format!("chains: {e}")))?;
    let registry: Option<Arc<dyn PkpRegistry>> = match &config.registry {
        Some(path) => {
            Some(Arc::new(SqliteRegistry::open(path).map_err(|e| {
                NodeError::Io(format!("registry {}: {e}", path.display()))
            })?))
        }
        None => None,
    };
    let oidc = if config.oidc.is_empty() {
        None
    } else {
        Some(
            crate::oidc::OidcVerifier::new(
                config.oidc.values().cloned().collect(),
                Duration::from_secs(10),
            )
            .map_err(|e| NodeError::Io(format!("oidc: {e}")))?,
        )
    };
    let mut chains_by_id = BTreeMap::new();
    for (name, chain) in &config.chains {
        if let Some(id) = chain.chain_id {
            let rpc = crate::conditions::rpc::ChainRpc::new(
                &chain.rpc_url,
                Duration::from_millis(chain.timeout_ms),
            )
            .map_err(|e| NodeError::Io(format!("chain {name}: {e}")))?;
            chains_by_id.insert(id, rpc);
        }
    }
    let engine = crate::actions::build_engine(&config.actions)
        .map_err(|e| NodeError::Io(format!("Lit Actions: {e}")))?;
    info!(
        engine = engine.name(),
        time_limit_ms = engine.limits().time.as_millis() as u64,
        "Lit Actions engine ready"
    );
    let chain_urls = config
        .chains
        .iter()
        .map(|(name, c)| (name.clone(), c.rpc_url.clone()))
        .collect();
    let status = Arc::new(Status::default());
    let node = Arc::new(Node {
        me,
        url: config.public_url(),
        network: network.clone(),
        identity: identity.clone(),
        keys: RwLock::new(None),
        status: status.clone(),
        evaluator,
        attester,
        attestation_kind,
        replay: Mutex::new(ReplayCache::default()),
        net: net.clone(),
        store: store.clone(),
        registry,
        pools: Default::default(),
        oidc,
        session_replay: Default::default(),
        auth_engine: std::sync::OnceLock::new(),
        chains_by_id,
        chain_urls,
        engine,
        action_permits: tokio::sync::Semaphore::new(config.actions.max_concurrent()),
        fault: dev_fault(config.attestation),
    });

    let app = app(node.clone(), config.max_body_bytes);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        let mut rx = stop_rx;
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .await
    });
    info!(party = me.get(), url = %node.url, "node listening on {}", config.listen);

    let pool_target = config.presignature_pool;
    let startup = {
        let node = node.clone();
        let store = store.clone();
        async move {
            let keys = match NodeKeys::load(&store)? {
                Some(keys) => {
                    info!(
                        epoch = keys.epoch,
                        "loaded key shares; serving without a new DKG"
                    );
                    keys
                }
                None => {
                    info!(
                        nodes = network.nodes.len(),
                        threshold = network.threshold,
                        "running the DKG for epoch {FIRST_EPOCH}"
                    );
                    let started = Instant::now();
                    let options = DriveOptions {
                        round_timeout: Duration::from_millis(config.dkg_round_timeout_ms),
                        ..DriveOptions::default()
                    };
                    let keys = run_dkg(&node, &store, &network, options).await?;
                    keys.save(&store)?;
                    info!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "DKG for epoch {FIRST_EPOCH} done; shares stored"
                    );
                    keys
                }
            };
            let epoch = keys.epoch;
            let keys = Arc::new(keys);
            *node.keys.write().unwrap_or_else(|e| e.into_inner()) = Some(keys.clone());
            status.set_serving(epoch);
            info!(epoch, "serving");
            if node.registry.is_some() {
                tokio::spawn(crate::presign::run_pools(node.clone(), keys, pool_target));
            }
            Ok::<(), NodeError>(())
        }
    };
    tokio::pin!(shutdown);
    let outcome = tokio::select! {
        r = startup => r,
        _ = &mut shutdown => { let _ = stop_tx.send(true); let _ = server.await; return Ok(()); }
    };
    if let Err(e) = outcome {
        let _ = stop_tx.send(true);
        let _ = server.await;
        return Err(e);
    }
    shutdown.await;
    node.status.set_not_ready();
    let _ = stop_tx.send(true);
    let _ = server.await;
    Ok(())
}

/// A development fault (see [`DEV_FAULT_ENV`]).
#[derive(Clone, Debug, PartialEq, Eq)]
enum DevFault {
    Dkg(Behaviour),
    WrongDecryptionShare,
}

fn dev_fault(mode: AttestationMode) -> Option<DevFault> {
    let value = std::env::var(DEV_FAULT_ENV).ok()?;
    if mode != AttestationMode::Simulated {
        warn!("{DEV_FAULT_ENV} is ignored outside development networks");
        return None;
    }
    let fault = if let Some(victim) = value.strip_prefix("bad-dkg-share:") {
        DevFault::Dkg(Behaviour::BadShareTo(PartyId::new(victim.parse().ok()?)?))
    } else if value == "dkg-garbage" {
        DevFault::Dkg(Behaviour::Garbage)
    } else if value == "wrong-decryption-share" {
        DevFault::WrongDecryptionShare
    } else {
        warn!("unknown {DEV_FAULT_ENV} value {value:?}");
        return None;
    };
    warn!(?fault, "DEVELOPMENT FAULT INJECTION: this node misbehaves");
    Some(fault)
}

async fn run_dkg(
    node: &Arc<Node>,
    store: &Arc<Store>,
    network: &NetworkFile,
    options: DriveOptions,
) -> Result<NodeKeys, NodeError> {
    let mut identities = BTreeMap::new();
    for n in &network.nodes {
        let id = PartyId::new(n.party_id).ok_or_else(|| NodeError::Network("party id 0".into()))?;
        let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(&n.dkg_key.0)
            .map_err(|_| NodeError::Network(format!("node {}: bad dkg key", n.party_id)))?;
        identities.insert(id, key);
    }
    let t = network.threshold as usize;
    let fault = match &node.fault {
        Some(DevFault::Dkg(b)) => Some(b.clone()),
        _ => None,
    };
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
        run_keygen(node, store, bls_session, fault.clone(), options),
        run_keygen(node, store, ecdsa_session, fault, options),
    );
    let (bls, ecdsa) = (bls?, ecdsa?);
    let keys = NodeKeys::from_dkg(FIRST_EPOCH, &bls, &ecdsa)?;
    Ok(keys)
}

fn snapshot_key(session: &[u8; 32]) -> String {
    format!("dkg-snapshot/{}", hex::encode(session))
}

async fn run_keygen<G: DkgGroup>(
    node: &Arc<Node>,
    store: &Arc<Store>,
    session: Session<G>,
    fault: Option<Behaviour>,
    options: DriveOptions,
) -> Result<KeyGenOutput<G>, NodeError>
where
    KeyGen<G>: Send,
{
    let dkg_err = |source| NodeError::Dkg {
        epoch: FIRST_EPOCH,
        source,
    };
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
        None => KeyGen::dkg(
            session,
            node.me,
            node.identity.dkg_key().clone(),
            &mut OsRng,
        )
        .map_err(|e| dkg_err(DriveError::Protocol(e)))?,
    };
    let output = match fault {
        Some(behaviour) => {
            let mut bad = Byzantine::new(keygen, behaviour, 7);
            drive(
                &node.net,
                &name,
                Bytes32(sid),
                &participants,
                &mut bad,
                options,
                |_| {},
            )
            .await
        }
        None => {
            let mut keygen = keygen;
            let store = store.clone();
            let key = key.clone();
            drive(
                &node.net,
                &name,
                Bytes32(sid),
                &participants,
                &mut keygen,
                options,
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

/// The node's HTTP application.
pub fn app(node: Arc<Node>, max_body_bytes: usize) -> Router {
    let routes = Router::new()
        .route(paths::HANDSHAKE, post(handshake))
        .route(paths::ENCRYPTION_SIGN, post(encryption_sign))
        .route(paths::PEER_MESSAGE, post(peer_message))
        .merge(crate::pkp::routes())
        .merge(crate::actions::routes())
        .with_state(node.clone());
    api::router(node.status.clone(), max_body_bytes, routes)
}

impl Node {
    /// Records a request nonce until `until`; false if it was seen before.
    pub(crate) fn replay_insert(
        &self,
        nonce: [u8; 32],
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> bool {
        self.replay
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(nonce, until, now)
    }

    /// The engine that runs Lit Actions used as auth methods (embedded QuickJS: no network,
    /// 5 s, default memory).
    pub(crate) fn auth_engine(
        &self,
    ) -> Result<Arc<lit_actions::QuickJsEngine>, lit_actions::ActionError> {
        if let Some(e) = self.auth_engine.get() {
            return Ok(e.clone());
        }
        let engine = Arc::new(lit_actions::QuickJsEngine::new(
            lit_actions::EngineConfig::new(
                lit_actions::Limits::default().with_time(Duration::from_secs(5)),
            ),
        )?);
        Ok(self.auth_engine.get_or_init(|| engine).clone())
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

async fn handshake(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<HandshakeRequest>,
) -> Result<Json<HandshakeResponse>, ApiError> {
    let keys = node.keys()?;
    let identity_key = node.identity.public_key().to_bytes();
    let binding = Binding::new(&identity_key, Nonce(req.challenge.0), keys.epoch);
    let evidence = node.attester.attest(&binding.report_data()).map_err(|e| {
        warn!("attestation failed: {e}");
        ApiError::new(ErrorCode::Internal, "attestation failed")
    })?;
    Ok(Json(HandshakeResponse {
        api_version: lit_api::API_VERSION,
        node: WireNodeIdentity {
            party_id: node.me.get(),
            url: node.url.clone(),
            identity_key: Bytes(identity_key.to_vec()),
            seal_key: Bytes32(node.identity.seal_public_key().to_bytes()),
        },
        epoch: keys.epoch,
        threshold: keys.bls_set.threshold() as u32,
        node_count: node.network.nodes.len() as u32,
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
            kind: node.attestation_kind,
            evidence: Bytes(evidence.to_json().into_bytes()),
        },
    }))
}

pub(crate) fn auth_error(e: AuthError) -> ApiError {
    match e {
        AuthError::Expired(_) | AuthError::NotYetValid(_) => {
            ApiError::new(ErrorCode::AuthExpired, e.to_string())
        }
        other => ApiError::new(ErrorCode::InvalidAuth, other.to_string()),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn encryption_sign(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<EncryptionSignRequest>,
) -> Result<Response, ApiError> {
    let keys = node.keys_for_epoch(req.epoch)?;
    let items = lit_api::conditions::parse(&req.access_control_conditions).map_err(|e| {
        let code = match e {
            lit_api::conditions::ConditionsError::UnknownType(_) => ErrorCode::UnknownConditionType,
            _ => ErrorCode::InvalidConditions,
        };
        ApiError::new(code, e.to_string())
    })?;
    let now = OffsetDateTime::now_utc();
    let (user, message) = verify_auth_sig(&req.auth_sig, now).map_err(auth_error)?;
    let expires = message.expiration_time.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidAuth,
            "the auth message must have an Expiration Time",
        )
    })?;
    let fresh = node.replay_insert(req.client_public_key.0, expires, now);
    if !fresh {
        return Err(ApiError::new(
            ErrorCode::NonceReplayed,
            "this clientPublicKey was already used: make a fresh key for every request",
        ));
    }
    let client_key = client_key(&req.client_public_key)?;

    let t0 = Instant::now();
    let met = node
        .evaluator
        .evaluate(&items, &user)
        .await
        .map_err(|e| ApiError::new(e.code(), e.to_string()))?;
    let t_conditions = t0.elapsed();
    if !met {
        return Err(ApiError::new(
            ErrorCode::ConditionsNotMet,
            format!("access control conditions are not met for {user}"),
        ));
    }
    let canonical = serde_json::to_string(&req.access_control_conditions)
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, e.to_string()))?;
    let chash = conditions_hash(&canonical)
        .map_err(|e| ApiError::new(ErrorCode::InvalidConditions, e.to_string()))?;
    let identity = AccessControlIdentity::from_hashes(chash, req.data_to_encrypt_hash.0).to_bytes();

    let t1 = Instant::now();
    let share = if node.fault == Some(DevFault::WrongDecryptionShare) {
        keys.bls.sign(b"not the identity")
    } else {
        keys.bls.sign(&identity)
    };
    let t_share = t1.elapsed();
    let t2 = Instant::now();
    let sealed = seal_reply(
        &client_key,
        ENCRYPTION_SHARE_SEAL_INFO,
        &encryption_share_aad(node.me.get(), keys.epoch, &identity),
        &share.to_bytes(),
    )?;
    let t_seal = t2.elapsed();
    let body = EncryptionSignResponse {
        party_id: node.me.get(),
        epoch: keys.epoch,
        share: sealed,
    };
    let mut resp = Json(body).into_response();
    // node-side cost per request, in the standard Server-Timing header (milliseconds)
    if let Ok(v) = HeaderValue::from_str(&format!(
        "conditions;dur={:.3}, share;dur={:.3}, seal;dur={:.3}",
        ms(t_conditions),
        ms(t_share),
        ms(t_seal)
    )) {
        resp.headers_mut().insert("server-timing", v);
    }
    Ok(resp)
}

async fn peer_message(
    State(node): State<Arc<Node>>,
    ApiJson(msg): ApiJson<PeerMessage>,
) -> Result<Json<serde_json::Value>, ApiError> {
    node.net.deliver(&msg).map_err(|e| {
        warn!(culprit = ?e.culprit(), "refused a peer envelope: {e}");
        ApiError::new(ErrorCode::UnauthorizedPeer, e.to_string())
    })?;
    Ok(Json(serde_json::json!({})))
}

/// Seals a reply (a share) to the client's key as a wire [`SealedBox`].
pub(crate) fn seal_reply(
    client_key: &SealPublicKey,
    info: &[u8],
    aad: &[u8],
    plain: &[u8],
) -> Result<SealedBox, ApiError> {
    let sealed = client_key.seal(info, aad, plain, &mut OsRng).map_err(|e| {
        warn!("sealing a share failed: {e}");
        ApiError::new(ErrorCode::Internal, "sealing the share failed")
    })?;
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

/// Sets up logging to stderr (`RUST_LOG` overrides the default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
