//! Building and running a node: [`Node::build`] opens the data directory (identity, encrypted
//! store), finds the node in the network file by its identity key and sets up its verifiers,
//! chains, registry and action engine; [`serve`] puts it on a listener; [`run`] does both, then
//! loads the shares of the current epoch or runs the DKG for epoch 1, starts the presignature
//! pools, and serves until shutdown.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use ed25519_dalek::VerifyingKey;
use lit_api::network::{AttestationMode as NetAttestation, NetworkFile, NetworkNode};
use lit_api::v1::AttestationKind;
use lit_api::{Bytes, Bytes32};
use lit_attest::{Attester, Policy, SimulatedAttester};
use lit_crypto::seal::SealPublicKey;
use lit_crypto::PartyId;
use sha2::{Digest, Sha384};
use tracing::{info, warn};

use crate::api;
use crate::auth::oidc::OidcVerifier;
use crate::auth::Authenticator;
use crate::chain::embedded::EmbeddedStaking;
use crate::chain::evm::EvmStaking;
use crate::chain::evm_payments::EvmPayments;
use crate::chain::evm_registry::EvmRegistry;
use crate::chain::evm_releases::EvmReleases;
use crate::chain::payments::Payments;
use crate::chain::releases::ReleaseRegister;
use crate::chain::staking::{NetworkState, Staking};
use crate::chain::{PkpRegistry, SqliteRegistry};
use crate::conditions::rpc::ChainRpc;
use crate::conditions::Evaluator;
use crate::config::{AttestationMode, Config, DevFault, StakingBackend, StakingConfig};
use crate::epoch::dkg::{self, DkgContext, DkgError};
use crate::epoch::handover::{self, EpochOptions};
use crate::epoch::peers::PeerChecker;
use crate::epoch::{KeysError, NodeKeys};
use crate::identity::{IdentityError, NodeIdentity, StakerKey};
use crate::net::{DriveOptions, Peer, PeerKeys, PeerNet, TransportOptions};
use crate::service::actions::build_engine;
use crate::service::ledger::{Faucet, LedgerBackend, LedgerDesk};
use crate::service::meter::{run_settlement, Meter};
use crate::service::presign::run_pools;
use crate::service::Status;
use crate::store::{KeyFile, SealedKey, StorageKeySource, Store, StoreError};

pub use crate::config::DEV_FAULT_ENV;
pub use crate::epoch::FIRST_EPOCH;
pub use crate::service::{Membership, Node};

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
    #[error(transparent)]
    Dkg(#[from] DkgError),
    /// The attester could not be set up.
    #[error("attestation: {0}")]
    Attestation(String),
}

/// The store's file in the data directory.
const STORE_FILE: &str = "node.redb";
/// The storage key's file in the data directory (simulated attestation only).
const STORAGE_KEY_FILE: &str = "storage.key";

/// Opens the node's data directory (the encrypted store and the identity) with the storage key
/// its attestation mode calls for:
/// - [`AttestationMode::Simulated`]: [`KeyFile`] `storage.key` in the data directory, created
///   with a new store. A store without its key file is refused (it was sealed by the secure
///   processor, or the key was lost) rather than given a new key under which nothing opens.
/// - [`AttestationMode::SevSnp`]: [`SealedKey`] over [`lit_attest::SnpKeyRequester`], a key
///   derived by the AMD secure processor for this image and policy; nothing is written to disk.
pub fn open_data_dir(
    data_dir: &Path,
    mode: AttestationMode,
) -> Result<(Store, NodeIdentity), NodeError> {
    let keys: Box<dyn StorageKeySource> = match mode {
        AttestationMode::Simulated => {
            let key_file = data_dir.join(STORAGE_KEY_FILE);
            let store = data_dir.join(STORE_FILE);
            if store.exists() && !key_file.exists() {
                return Err(NodeError::Store(StoreError::Key(format!(
                    "{} holds a store but no {STORAGE_KEY_FILE}: the store was sealed by an \
                     SEV-SNP node's secure processor, or its key file was lost; a simulated node \
                     cannot open it",
                    data_dir.display()
                ))));
            }
            Box::new(KeyFile::new(key_file))
        }
        AttestationMode::SevSnp => {
            Box::new(SealedKey::new(Box::new(lit_attest::SnpKeyRequester::new())))
        }
    };
    open_data_dir_with(data_dir, keys.as_ref())
}

/// Opens the node's data directory with the storage key from `keys` (tests pass a
/// [`lit_attest::FakeKeyDevice`] in a [`SealedKey`]). A store whose identity does not decrypt
/// under `keys` is [`StoreError::Tampered`]: the node never makes itself a new identity over a
/// store it cannot read.
pub fn open_data_dir_with(
    data_dir: &Path,
    keys: &dyn StorageKeySource,
) -> Result<(Store, NodeIdentity), NodeError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| NodeError::Io(format!("cannot create {}: {e}", data_dir.display())))?;
    let store = Store::open(&data_dir.join(STORE_FILE), keys)?;
    let identity = NodeIdentity::load_or_create(&store).map_err(|e| match e {
        IdentityError::Store(e @ StoreError::Tampered { .. }) => NodeError::Store(e),
        e => NodeError::Io(format!("identity: {e}")),
    })?;
    Ok((store, identity))
}

/// Creates the node's identity if needed and returns its entry for a network file (party id 0:
/// the network's author assigns it).
pub fn init(config: &Config) -> Result<NetworkNode, NodeError> {
    let (_store, identity) = open_data_dir(&config.data_dir, config.attestation)?;
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

/// Environment variable that gives a development node another simulated measurement than the
/// hash of its binary, 96 hex digits: a second "release" on one machine, for tests of the
/// release register. Honoured only with simulated attestation.
pub const SIMULATED_MEASUREMENT_ENV: &str = "LIT_NODE_SIMULATED_MEASUREMENT";

/// The measurement a simulated node claims: `overridden` ([`SIMULATED_MEASUREMENT_ENV`]) if
/// given, else the SHA-384 of its program's file (an image's launch measurement, as near as a
/// process gets). A devnet computes the same from the command it runs a node with, to approve
/// it in the release register.
pub fn simulated_measurement(
    program: &std::path::Path,
    overridden: Option<&str>,
) -> Result<[u8; 48], NodeError> {
    if let Some(text) = overridden {
        let bytes = hex::decode(text.trim().trim_start_matches("0x"))
            .map_err(|e| NodeError::Attestation(format!("{SIMULATED_MEASUREMENT_ENV}: {e}")))?;
        return bytes.try_into().map_err(|b: Vec<u8>| {
            NodeError::Attestation(format!(
                "{SIMULATED_MEASUREMENT_ENV} is {} bytes, not 48",
                b.len()
            ))
        });
    }
    let bytes = std::fs::read(program)
        .map_err(|e| NodeError::Io(format!("reading {}: {e}", program.display())))?;
    let mut out = [0u8; 48];
    out.copy_from_slice(&Sha384::digest(bytes));
    Ok(out)
}

fn measurement_of_this_binary() -> Result<[u8; 48], NodeError> {
    let exe = std::env::current_exe().map_err(|e| NodeError::Io(format!("current exe: {e}")))?;
    simulated_measurement(
        &exe,
        std::env::var(SIMULATED_MEASUREMENT_ENV).ok().as_deref(),
    )
}

/// The checker of the peers' attestation: the release register of `config`'s chain (the
/// embedded chain's own, or `staking.release_register` on an EVM chain) and the operator's
/// `attestation_policy`.
async fn peer_checker(config: &Config) -> Result<PeerChecker, NodeError> {
    let register: Option<Arc<dyn ReleaseRegister>> = match &config.staking {
        Some(staking) => match staking.backend {
            StakingBackend::Embedded => {
                let path = staking
                    .path
                    .as_ref()
                    .ok_or_else(|| NodeError::Io("staking.path is missing".into()))?;
                Some(Arc::new(
                    EmbeddedStaking::open(path, lit_crypto::eth::Address([0; 20])).map_err(
                        |e| NodeError::Io(format!("release register {}: {e}", path.display())),
                    )?,
                ))
            }
            StakingBackend::Evm => match (&staking.rpc_url, &staking.release_register) {
                (Some(rpc_url), Some(contract)) => {
                    let contract = lit_crypto::eth::Address::parse(contract)
                        .map_err(|e| NodeError::Io(format!("staking.release_register: {e}")))?;
                    Some(Arc::new(EvmReleases::open(rpc_url, contract).map_err(
                        |e| NodeError::Io(format!("release register {contract}: {e}")),
                    )?))
                }
                _ => {
                    warn!(
                        "no staking.release_register: peers are checked against the local \
                         attestation_policy alone"
                    );
                    None
                }
            },
        },
        None => None,
    };
    let local = match &config.attestation_policy {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                NodeError::Io(format!("attestation_policy {}: {e}", path.display()))
            })?;
            Some(Policy::from_json(&text).map_err(|e| {
                NodeError::Attestation(format!("attestation_policy {}: {e}", path.display()))
            })?)
        }
        None => None,
    };
    PeerChecker::new(
        register,
        local,
        config.attestation == AttestationMode::Simulated,
    )
    .map_err(|e| NodeError::Io(format!("http client: {e}")))
}

/// A `[staking]` section, the staker's key and, on the embedded chain, the chain.
type StakerView<'a> = (&'a StakingConfig, StakerKey, Option<EmbeddedStaking>);

/// `config`'s `[staking]` section, the node's staker key (`staker.key` in its data directory)
/// and, on the embedded chain, the chain as that staker (the staking contract, the release
/// register and the ledger are all that one file).
fn staker_view(config: &Config) -> Result<Option<StakerView<'_>>, NodeError> {
    let Some(staking) = &config.staking else {
        return Ok(None);
    };
    let staker = StakerKey::load_or_create(&config.data_dir)
        .map_err(|e| NodeError::Io(format!("staker key: {e}")))?;
    let embedded = match staking.backend {
        StakingBackend::Embedded => {
            let path = staking
                .path
                .as_ref()
                .ok_or_else(|| NodeError::Io("staking.path is missing".into()))?;
            Some(
                EmbeddedStaking::open(path, staker.address())
                    .map_err(|e| NodeError::Io(format!("chain {}: {e}", path.display())))?,
            )
        }
        StakingBackend::Evm => None,
    };
    Ok(Some((staking, staker, embedded)))
}

/// Opens the staking contract of `config` as this node's staker (`staker.key` in its data
/// directory).
pub async fn open_staking(config: &Config) -> Result<Option<Arc<dyn Staking>>, NodeError> {
    let Some((staking, staker, embedded)) = staker_view(config)? else {
        return Ok(None);
    };
    match embedded {
        Some(chain) => Ok(Some(Arc::new(chain))),
        None => {
            let missing = |what: &str| {
                NodeError::Io(format!(
                    "staking.{what} is missing (the evm backend needs it)"
                ))
            };
            let rpc_url = staking
                .rpc_url
                .as_deref()
                .ok_or_else(|| missing("rpc_url"))?;
            let contract = staking
                .contract
                .as_deref()
                .ok_or_else(|| missing("contract"))?;
            let contract = lit_crypto::eth::Address::parse(contract)
                .map_err(|e| NodeError::Io(format!("staking.contract: {e}")))?;
            // the URL is not quoted: hosted RPC URLs carry API keys
            let chain = EvmStaking::connect(rpc_url, contract, staker.signing_key())
                .await
                .map_err(|e| NodeError::Io(format!("staking contract {contract}: {e}")))?;
            Ok(Some(Arc::new(chain)))
        }
    }
}

/// Opens the payment ledger of `config`'s chain as this node's staker: the embedded chain's
/// own, or `staking.ledger` on an EVM chain (`None` without one: the network is free).
pub async fn open_payments(config: &Config) -> Result<Option<Arc<dyn Payments>>, NodeError> {
    let Some((staking, staker, embedded)) = staker_view(config)? else {
        return Ok(None);
    };
    match embedded {
        Some(chain) => Ok(Some(Arc::new(chain))),
        None => {
            let (Some(rpc_url), Some(ledger)) = (&staking.rpc_url, &staking.ledger) else {
                warn!("no staking.ledger: requests are not charged");
                return Ok(None);
            };
            let ledger = lit_crypto::eth::Address::parse(ledger)
                .map_err(|e| NodeError::Io(format!("staking.ledger: {e}")))?;
            let chain = EvmPayments::connect(rpc_url, ledger, staker.signing_key())
                .map_err(|e| NodeError::Io(format!("ledger {ledger}: {e}")))?;
            Ok(Some(Arc::new(chain)))
        }
    }
}

/// The ledger's client endpoints of a node whose network has a ledger: where it is, the
/// node's views of it and of the token, and the faucet of a devnet (`[faucet]`).
async fn ledger_desk(
    config: &Config,
    staking: &StakingConfig,
    chain: Arc<dyn Staking>,
    payments: Arc<dyn Payments>,
) -> Result<LedgerDesk, NodeError> {
    let io = |what: &str, e: &dyn std::fmt::Display| NodeError::Io(format!("{what}: {e}"));
    let backend = match staking.backend {
        StakingBackend::Embedded => LedgerBackend::Embedded(
            staking
                .path
                .clone()
                .ok_or_else(|| NodeError::Io("staking.path is missing".into()))?,
        ),
        StakingBackend::Evm => {
            let (Some(rpc_url), Some(ledger)) = (&staking.rpc_url, &staking.ledger) else {
                return Err(NodeError::Io("staking.ledger needs staking.rpc_url".into()));
            };
            let ledger =
                lit_crypto::eth::Address::parse(ledger).map_err(|e| io("staking.ledger", &e))?;
            let token = EvmPayments::open(rpc_url, ledger)
                .map_err(|e| io("staking.ledger", &e))?
                .token()
                .await
                .map_err(|e| io("the ledger's token", &e))?;
            LedgerBackend::Evm {
                rpc_url: rpc_url.clone(),
                ledger,
                token,
            }
        }
    };
    let faucet = match &config.faucet {
        None => None,
        Some(f) => {
            let amount =
                lit_api::ledger::parse_amount("faucet.amount", &f.amount).map_err(NodeError::Io)?;
            let (giver, gas_rpc): (Arc<dyn Staking>, _) = match (&backend, &f.account, &f.key_dir) {
                (LedgerBackend::Embedded(path), Some(account), _) => {
                    let account = lit_crypto::eth::Address::parse(account)
                        .map_err(|e| io("faucet.account", &e))?;
                    (
                        Arc::new(
                            EmbeddedStaking::open(path, account).map_err(|e| io("faucet", &e))?,
                        ),
                        None,
                    )
                }
                (LedgerBackend::Evm { rpc_url, .. }, _, Some(dir)) => {
                    let key =
                        StakerKey::load_or_create(dir).map_err(|e| io("faucet.key_dir", &e))?;
                    let contract = staking.contract.as_deref().unwrap_or_default();
                    let contract = lit_crypto::eth::Address::parse(contract)
                        .map_err(|e| io("staking.contract", &e))?;
                    let giver = EvmStaking::connect(rpc_url, contract, key.signing_key())
                        .await
                        .map_err(|e| io("faucet", &e))?;
                    (Arc::new(giver), Some(rpc_url.clone()))
                }
                _ => {
                    return Err(NodeError::Io(
                        "faucet: an embedded chain's faucet names its `account`, an EVM chain's \
                         its `key_dir`"
                            .into(),
                    ))
                }
            };
            info!(giver = %giver.caller().to_checksum(), amount, "devnet faucet");
            Some(Faucet {
                amount,
                giver,
                gas_rpc,
                one: tokio::sync::Mutex::new(()),
            })
        }
    };
    Ok(LedgerDesk {
        backend,
        payments,
        chain,
        faucet,
    })
}

impl Node {
    /// Builds a node of a static network (members from the network file) from its
    /// configuration: data directory, network file, peers, attester, verifiers, chains,
    /// registry, action engine. It serves no keys until [`Node::set_keys`] (which [`run`] calls
    /// after loading them or running the DKG).
    pub fn build(config: &Config) -> Result<Node, NodeError> {
        Self::assemble(config, None)
    }

    /// Builds a node whose membership follows `chain` (read as `net`): it must be a member of
    /// the current or the next set.
    pub fn build_on_chain(
        config: &Config,
        chain: Arc<dyn Staking>,
        net: &NetworkState,
    ) -> Result<Node, NodeError> {
        Self::assemble(config, Some((chain, net)))
    }

    fn assemble(
        config: &Config,
        chain: Option<(Arc<dyn Staking>, &NetworkState)>,
    ) -> Result<Node, NodeError> {
        let (store, identity) = open_data_dir(&config.data_dir, config.attestation)?;
        let store = Arc::new(store);
        let identity = Arc::new(identity);
        let network = read_network_file(&config.network_file)?;
        let my_key = Bytes32(identity.public_key().to_bytes());
        let (me, peers, membership) = match &chain {
            Some((_, net)) => {
                let entry = net
                    .current
                    .iter()
                    .chain(&net.next)
                    .find(|v| v.identity_key == my_key.0)
                    .ok_or_else(|| {
                        NodeError::Network(format!(
                            "this node (identity key {}, staker {}) is in neither the current \
                             nor the next validator set: stake and join first (`lit-node join`)",
                            hex::encode(my_key.0),
                            chain
                                .as_ref()
                                .map(|(c, _)| c.caller().to_checksum())
                                .unwrap_or_default()
                        ))
                    })?;
                let me = PartyId::new(entry.party_id)
                    .ok_or_else(|| NodeError::Network("party id 0".into()))?;
                let peers = handover::peers_of(net.current.iter().chain(&net.next))
                    .map_err(|e| NodeError::Network(e.to_string()))?;
                (me, peers, handover::membership_of(net))
            }
            None => {
                let (me, peers) = static_peers(&network, &my_key, config)?;
                let membership = Membership {
                    epoch: FIRST_EPOCH,
                    threshold: network.threshold,
                    nodes: network.nodes.clone(),
                    from_chain: false,
                };
                (me, peers, membership)
            }
        };
        let net = PeerNet::new(me, identity.clone(), peers, TransportOptions::default())
            .map_err(|e| NodeError::Io(format!("peer transport: {e}")))?;
        let (attester, attestation_kind): (Box<dyn Attester>, _) = match config.attestation {
            AttestationMode::Simulated => (
                Box::new(SimulatedAttester::new(measurement_of_this_binary()?)),
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
        let on_chain = config.staking.as_ref().and_then(|s| {
            s.pkp_registry
                .as_deref()
                .map(|c| (s.rpc_url.as_deref().unwrap_or_default(), c))
        });
        let registry: Option<Arc<dyn PkpRegistry>> = match (&config.registry, on_chain) {
            (Some(path), _) => {
                Some(Arc::new(SqliteRegistry::open(path).map_err(|e| {
                    NodeError::Io(format!("registry {}: {e}", path.display()))
                })?))
            }
            (None, Some((rpc_url, contract))) => {
                let contract = lit_crypto::eth::Address::parse(contract)
                    .map_err(|e| NodeError::Io(format!("staking.pkp_registry: {e}")))?;
                Some(Arc::new(EvmRegistry::open(rpc_url, contract).map_err(
                    |e| NodeError::Io(format!("PKP registry contract {contract}: {e}")),
                )?))
            }
            (None, None) => None,
        };
        let oidc = if config.oidc.is_empty() {
            None
        } else {
            Some(
                OidcVerifier::new(
                    config.oidc.values().cloned().collect(),
                    Duration::from_secs(10),
                )
                .map_err(|e| NodeError::Io(format!("oidc: {e}")))?,
            )
        };
        let mut chains_by_id = BTreeMap::new();
        for (name, chain) in &config.chains {
            if let Some(id) = chain.chain_id {
                let rpc = ChainRpc::new(&chain.rpc_url, Duration::from_millis(chain.timeout_ms))
                    .map_err(|e| NodeError::Io(format!("chain {name}: {e}")))?;
                chains_by_id.insert(id, rpc);
            }
        }
        let engine = build_engine(&config.actions)
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
        let url = config.public_url();
        let domain = network.domain();
        let tls = if config.insecure_plaintext_http {
            None
        } else {
            let certificate = identity.tls_certificate().map_err(NodeError::Io)?;
            let tls = lit_api::tls::server_config(&certificate)
                .map_err(|e| NodeError::Io(format!("TLS: {e}")))?;
            Some(Arc::new(tls))
        };
        Ok(Node {
            me,
            url: url.clone(),
            network,
            identity,
            tls,
            keys: RwLock::new(None),
            previous_keys: RwLock::new(None),
            membership: RwLock::new(Arc::new(membership)),
            chain: chain.map(|(c, _)| c),
            status: Arc::new(Status::default()),
            evaluator,
            attester,
            attestation_kind,
            auth: Authenticator::new(url, domain, oidc, chains_by_id)
                .with_passkeys(config.webauthn.clone()),
            net,
            store,
            registry,
            pools: Default::default(),
            chain_urls,
            engine,
            action_permits: tokio::sync::Semaphore::new(config.actions.max_concurrent()),
            quotas: crate::service::quota::Quotas::new(&config.quotas),
            meter: Default::default(),
            ledger: Default::default(),
            max_body_bytes: config.max_body_bytes,
            fault: DevFault::from_env(config.attestation),
        })
    }
}

/// The node and its peers from a static network file.
fn static_peers(
    network: &NetworkFile,
    my_key: &Bytes32,
    config: &Config,
) -> Result<(PartyId, BTreeMap<PartyId, Peer>), NodeError> {
    let entry = network
        .nodes
        .iter()
        .find(|n| &n.identity_key == my_key)
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
    Ok((me, peers))
}

/// The node's HTTP application (every endpoint), for [`serve`] or in-process tests.
pub fn app(node: Arc<Node>) -> Router {
    let max_body_bytes = node.max_body_bytes;
    api::router(node, max_body_bytes)
}

/// Serves `node` on `listener` until `shutdown` resolves (then finishes the requests in flight):
/// attested TLS ([`crate::https`]), or plain HTTP for a node configured with
/// `insecure_plaintext_http` (benchmarks).
pub async fn serve(
    node: Arc<Node>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Some(tls) = node.tls.clone() {
        return crate::https::serve(app(node), listener, tls, shutdown).await;
    }
    axum::serve(
        listener,
        app(node).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Runs a node until `shutdown` resolves. Binds the listener first (so peers can reach it while
/// it runs its DKG), then loads its shares or runs the DKG for the first epoch, then serves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    // bind first (a devnet node binds port 0 and reports the port it got, see `devnet`); the
    // store is closed again before `Node::build` opens it
    let (listener, config, chain) = {
        let (_store, identity) = open_data_dir(&config.data_dir, config.attestation)?;
        let chain = open_staking(&config).await?;
        let (listener, config) = crate::devnet::listen(config, &identity).await?;
        (listener, config, chain)
    };
    let node = match chain {
        Some(chain) => {
            let net = chain
                .network()
                .await
                .map_err(|e| NodeError::Io(format!("staking contract: {e}")))?;
            Arc::new(Node::build_on_chain(&config, chain, &net)?)
        }
        None => Arc::new(Node::build(&config)?),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(serve(node.clone(), listener, async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|s| *s).await;
    }));
    info!(party = node.me.get(), url = %node.url, "node listening on {}", config.listen);

    let startup = start(&node, &config);
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

/// Makes `node` serve: loads the key shares of its current epoch, or runs the DKG for the first
/// epoch with the other nodes of its network (which must be reachable), then starts the
/// presignature pools.
pub async fn start(node: &Arc<Node>, config: &Config) -> Result<(), NodeError> {
    if let (Some(chain), Some(staking)) = (node.chain.clone(), &config.staking) {
        // the epoch loop loads the shares of the chain's epoch, or runs the genesis DKG or a
        // handover when the chain says so
        let options = EpochOptions {
            poll: Duration::from_millis(staking.poll_ms),
            grace: Duration::from_millis(staking.grace_ms),
            round_timeout: Duration::from_millis(config.dkg_round_timeout_ms),
            presignature_pool: config.presignature_pool,
            kick_after: (staking.kick_after_ms > 0)
                .then(|| Duration::from_millis(staking.kick_after_ms)),
        };
        info!(
            staker = %chain.caller().to_checksum(),
            "following the staking contract"
        );
        let checker = peer_checker(config).await?;
        if let Some(payments) = open_payments(config).await? {
            let path = config.data_dir.join(crate::service::meter::DEBITS_FILE);
            let meter = Arc::new(
                Meter::open(&path, payments.clone())
                    .await
                    .map_err(|e| NodeError::Io(format!("payments: {e}")))?,
            );
            info!(
                prices = ?meter.prices().0,
                unsettled = meter.pending().map_err(|e| NodeError::Io(e.to_string()))?,
                "charging requests on the ledger"
            );
            let desk = ledger_desk(config, staking, chain.clone(), payments.clone()).await?;
            let _ = node.ledger.set(Arc::new(desk));
            let _ = node.meter.set(meter.clone());
            tokio::spawn(run_settlement(
                meter,
                Duration::from_millis(staking.settle_interval_ms),
            ));
        }
        tokio::spawn(handover::run(node.clone(), chain, options, Some(checker)));
        return Ok(());
    }
    let keys = match NodeKeys::load(&node.store)? {
        Some(keys) => {
            info!(
                epoch = keys.epoch,
                "loaded key shares; serving without a new DKG"
            );
            keys
        }
        None => {
            info!(
                nodes = node.network.nodes.len(),
                threshold = node.network.threshold,
                "running the DKG for epoch {FIRST_EPOCH}"
            );
            let started = Instant::now();
            let cx = DkgContext {
                me: node.me,
                identity: &node.identity,
                net: &node.net,
                store: &node.store,
                fault: match &node.fault {
                    Some(DevFault::Dkg(b)) => Some(b.clone()),
                    _ => None,
                },
                options: DriveOptions {
                    round_timeout: Duration::from_millis(config.dkg_round_timeout_ms),
                    ..DriveOptions::default()
                },
            };
            let keys = dkg::run_first_epoch(&cx, &node.network).await?;
            keys.save(&node.store)?;
            info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "DKG for epoch {FIRST_EPOCH} done; shares stored"
            );
            keys
        }
    };
    let keys = Arc::new(keys);
    node.set_keys(keys.clone());
    info!(epoch = keys.epoch, "serving");
    if node.registry.is_some() {
        tokio::spawn(run_pools(node.clone(), keys, config.presignature_pool));
    }
    Ok(())
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
