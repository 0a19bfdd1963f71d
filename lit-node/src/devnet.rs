//! Development networks on loopback: lay out N nodes in a folder (a configuration file and data
//! directory per node, and the shared `network.json`), start one process per node, wait for the
//! DKG, stop them. Re-using a folder restarts the same nodes with their stored shares.
//!
//! ```text
//! DIR/network.json          the network file (every node's URL and keys)
//! DIR/registry.sqlite       the PKP registry the nodes share (on an EVM chain: its PkpRegistry)
//! DIR/node-<i>/config.toml  node i's configuration (`listen = "127.0.0.1:0"`)
//! DIR/node-<i>/data/        node i's identity, encrypted store and storage key
//! DIR/node-<i>/data/url     the URL node i listens at, written by the node once it is bound
//! DIR/node-<i>/node.log     node i's log
//! ```
//!
//! # Ports
//!
//! Nobody picks a port for a node and hopes it is still free when the node binds it: every node
//! binds `127.0.0.1:0` itself and keeps the socket it got. Peers find each other in the network
//! file, so a new devnet starts in two steps:
//!
//! 1. [`layout`] writes each node's configuration (`listen = "127.0.0.1:0"`) and creates its
//!    identity, but no network file yet.
//! 2. [`Devnet::start`] starts the processes. Each node ([`listen`], the first thing
//!    `node::run` does after opening its data folder) binds port 0, writes the URL it got to
//!    `data/url` (a temporary file renamed into place, so a reader never sees half of it) and
//!    polls the network file until it lists the node at that URL, giving up with an error after
//!    [`NETWORK_FILE_WAIT`]. The devnet polls every node's `data/url`, writes `network.json`
//!    (also by rename), and the nodes go on to the DKG.
//!
//! When the network file already lists a node (the same folder run again, or
//! [`Devnet::restart`] after [`Devnet::kill`]), the node binds the port recorded for it there
//! and does not wait. A node whose configuration names a port (an operator's `lit-node run
//! --config`) binds that port, as it always did. A node laid out but not started (`absent` in
//! [`Devnet::start`]) is listed at an address the devnet holds bound but not listening: peers
//! are refused at once, and no other process can take the port while the devnet runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lit_api::network::{
    AttestationMode, NetworkFile, NetworkNode, ReleaseSource, NETWORK_FILE_VERSION,
};
use lit_api::v1::{paths, Health};
use lit_api::Bytes32;
use lit_attest::Release;
use tracing::info;

use crate::chain::embedded::EmbeddedStaking;
use crate::chain::evm::{self, EvmStaking};
use crate::chain::evm_payments::EvmPayments;
use crate::chain::evm_releases::EvmReleases;
use crate::chain::payments::{LedgerParams, Payments};
use crate::chain::releases::ReleaseRegister;
use crate::chain::staking::{Amount, JoinRequest, Staking, StakingParams, TOKEN};
use crate::chain::ChainError;
use crate::config::Config;
use crate::identity::{NodeIdentity, StakerKey};
use crate::node::{init, read_network_file, NodeError};
use lit_crypto::eth::Address;

/// The network file's name inside a devnet folder.
pub const NETWORK_FILE: &str = "network.json";

/// The PKP registry's file name inside a devnet folder (shared by its nodes).
pub const REGISTRY_FILE: &str = "registry.sqlite";

/// The embedded chain's file inside a devnet folder (the staking contract its nodes follow).
pub const CHAIN_FILE: &str = "chain.sqlite";

/// The devnet admin's address inside a devnet folder (hex; the embedded chain's admin and
/// faucet).
pub const ADMIN_FILE: &str = "admin.address";

/// An EVM devnet's record inside its folder: the chain's JSON-RPC URL and the contracts'
/// addresses (JSON).
pub const EVM_CHAIN_FILE: &str = "evm-chain.json";

/// The folder of an EVM devnet's admin account (its `staker.key`): it deploys the contracts,
/// holds the faucet's tokens and may lock the next set at any time.
pub const ADMIN_DIR: &str = "admin";

/// The file in a node's data folder where a node that binds port 0 writes the URL it got.
pub const URL_FILE: &str = "url";

/// How long a node that bound port 0 waits for the network file to list it, and a devnet for
/// its nodes to report their URLs.
pub const NETWORK_FILE_WAIT: Duration = Duration::from_secs(60);

/// How often those waits look again.
const POLL: Duration = Duration::from_millis(20);

/// A laid-out devnet folder.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The folder.
    pub dir: PathBuf,
    /// The threshold.
    pub threshold: u32,
    /// Node configuration files, by party id.
    pub configs: BTreeMap<u32, PathBuf>,
    /// The network file, if it was written already (`None` for a new folder until
    /// [`Devnet::start`] has learnt every node's URL).
    pub network: Option<NetworkFile>,
    /// The nodes' entries for the network file (URLs empty until known).
    nodes: Vec<NetworkNode>,
    /// Each node's staker address (networks on a chain).
    pub stakers: BTreeMap<u32, Address>,
    /// The staking setup (networks on a chain).
    pub staking: Option<DevnetStaking>,
    options: LayoutOptions,
}

impl Layout {
    /// `DIR/network.json`.
    pub fn network_file(&self) -> PathBuf {
        self.dir.join(NETWORK_FILE)
    }

    /// Node `i`'s folder.
    pub fn node_dir(&self, party_id: u32) -> PathBuf {
        self.dir.join(format!("node-{party_id}"))
    }

    /// Node `i`'s data folder (identity, store, the URL it reports).
    pub fn data_dir(&self, party_id: u32) -> PathBuf {
        self.node_dir(party_id).join("data")
    }

    /// Node `i`'s log file.
    pub fn log_file(&self, party_id: u32) -> PathBuf {
        self.node_dir(party_id).join("node.log")
    }
}

/// Options for a new devnet folder.
#[derive(Clone, Debug, Default)]
pub struct LayoutOptions {
    /// Threshold (default: two thirds, rounded up, as `lit_crypto::protocol::default_threshold`).
    pub threshold: Option<usize>,
    /// Chains the nodes may query for conditions: `(name, rpc url)`.
    pub chains: Vec<(String, String)>,
    /// The nodes' `dkg_round_timeout_ms` (default: the node's default).
    pub dkg_round_timeout_ms: Option<u64>,
    /// The nodes' `presignature_pool` (default: the node's default).
    pub presignature_pool: Option<usize>,
    /// TOML appended to every node's configuration (e.g. `[oidc.<name>]` sections).
    pub extra_config: String,
    /// Membership on an embedded staking contract (epochs, joins and leaves) instead of a
    /// fixed network file.
    pub staking: Option<DevnetStaking>,
    /// The nodes serve plain HTTP (`insecure_plaintext_http`): only for measuring what TLS
    /// costs; clients need `ConnectOptions::with_plaintext_http` to connect.
    pub plaintext_http: bool,
}

impl LayoutOptions {
    fn scheme(&self) -> &'static str {
        if self.plaintext_http {
            "http"
        } else {
            "https"
        }
    }
}

/// A devnet whose membership follows a staking contract.
#[derive(Clone, Debug)]
pub struct DevnetStaking {
    /// The chain the contract is on.
    pub chain: DevnetChain,
    /// The contract's parameters (the admin may lock the next set at any time: see
    /// [`Devnet::lock_next_epoch`]).
    pub params: StakingParams,
    /// The nodes' `staking.poll_ms`.
    pub poll_ms: u64,
    /// The nodes' `staking.grace_ms`.
    pub grace_ms: u64,
    /// The nodes' `staking.kick_after_ms` (`None`: the nodes' default).
    pub kick_after_ms: Option<u64>,
    /// The nodes' `staking.settle_interval_ms`: how often they settle their charges.
    pub settle_interval_ms: u64,
}

impl Default for DevnetStaking {
    fn default() -> Self {
        Self {
            params: StakingParams {
                reshare_timeout: 120,
                ..StakingParams::default()
            },
            poll_ms: 200,
            grace_ms: 10_000,
            kick_after_ms: None,
            settle_interval_ms: 2_000,
            chain: DevnetChain::Embedded,
        }
    }
}

/// The chain of a devnet's staking contract.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DevnetChain {
    /// The embedded chain: `chain.sqlite` in the devnet folder.
    #[default]
    Embedded,
    /// The Solidity contracts on an EVM development chain at this JSON-RPC URL (anvil: the
    /// devnet funds its accounts with `anvil_setBalance`). [`Devnet::start`] deploys them from
    /// the devnet's admin account at the first start.
    Evm {
        /// The chain's JSON-RPC URL.
        rpc_url: String,
    },
}

/// An EVM devnet's chain and contracts (`evm-chain.json`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EvmChainRecord {
    /// The chain's JSON-RPC URL.
    pub rpc_url: String,
    /// `LitToken`.
    pub token: String,
    /// `Staking` (the nodes' `staking.contract`).
    pub staking: String,
    /// `PkpRegistry`.
    pub pkp_registry: String,
    /// `ReleaseRegister` (absent in records written before it existed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release_register: String,
    /// `Ledger` (absent in records written before it existed: the network is free).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ledger: String,
}

impl EvmChainRecord {
    fn staking(&self) -> Result<Address, NodeError> {
        Address::parse(&self.staking)
            .map_err(|e| NodeError::Io(format!("{EVM_CHAIN_FILE}: staking: {e}")))
    }

    fn release_register(&self) -> Result<Address, NodeError> {
        Address::parse(&self.release_register).map_err(|e| {
            NodeError::Io(format!(
                "{EVM_CHAIN_FILE}: release_register: {e} (a devnet laid out before the release \
                 register existed: lay it out again)"
            ))
        })
    }
}

/// The EVM record of the devnet in `dir`, if it is on an EVM chain.
pub fn evm_record(dir: &Path) -> Result<Option<EvmChainRecord>, NodeError> {
    let path = dir.join(EVM_CHAIN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| NodeError::Io(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(NodeError::Io(format!("{}: {e}", path.display()))),
    }
}

fn admin_key(dir: &Path) -> Result<StakerKey, NodeError> {
    StakerKey::load_or_create(&dir.join(ADMIN_DIR))
        .map_err(|e| NodeError::Io(format!("the devnet admin's key: {e}")))
}

/// The token supply of a devnet's faucet (its admin).
pub const DEVNET_SUPPLY: Amount = 1_000_000_000 * TOKEN;

impl Layout {
    /// The embedded chain's file.
    pub fn chain_file(&self) -> PathBuf {
        self.dir.join(CHAIN_FILE)
    }

    /// The devnet admin (the embedded chain's admin and faucet).
    pub fn admin(&self) -> Result<Address, NodeError> {
        let path = self.dir.join(ADMIN_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| NodeError::Io(format!("{}: {e}", path.display())))?;
        Address::parse(text.trim()).map_err(|e| NodeError::Io(format!("{}: {e}", path.display())))
    }

    /// The staking contract as the devnet admin.
    pub async fn staking_admin(&self) -> Result<Arc<dyn Staking>, NodeError> {
        self.staking_for(self.admin()?, || admin_key(&self.dir))
            .await
    }

    /// The staking contract as node `party_id`'s staker.
    pub async fn staking_as(&self, party_id: u32) -> Result<Arc<dyn Staking>, NodeError> {
        let staker = self
            .stakers
            .get(&party_id)
            .ok_or_else(|| NodeError::Network(format!("no node {party_id}")))?;
        self.staking_for(*staker, || {
            StakerKey::load_or_create(&self.data_dir(party_id))
                .map_err(|e| NodeError::Io(format!("staker key: {e}")))
        })
        .await
    }

    /// The staking contract as `caller`: on the embedded chain by its address, on an EVM chain
    /// with its key (which signs its transactions).
    async fn staking_for(
        &self,
        caller: Address,
        key: impl FnOnce() -> Result<StakerKey, NodeError>,
    ) -> Result<Arc<dyn Staking>, NodeError> {
        let chain_err = |e: ChainError| NodeError::Io(format!("staking: {e}"));
        match evm_record(&self.dir)? {
            None => Ok(Arc::new(
                EmbeddedStaking::open(&self.chain_file(), caller).map_err(chain_err)?,
            )),
            Some(record) => {
                let key = key()?;
                let chain =
                    EvmStaking::connect(&record.rpc_url, record.staking()?, key.signing_key())
                        .await
                        .map_err(chain_err)?;
                Ok(Arc::new(chain))
            }
        }
    }

    /// The payment ledger as the account of `key` (a user, a payer); on an EVM chain the
    /// account gets ETH for gas first. Tokens come from the faucet: [`Layout::staking_admin`]'s
    /// `transfer_token`.
    pub async fn payments_as(
        &self,
        key: &k256::ecdsa::SigningKey,
    ) -> Result<Arc<dyn Payments>, NodeError> {
        let chain_err = |e: ChainError| NodeError::Io(format!("ledger: {e}"));
        let caller = Address::from_public_key(key.verifying_key());
        match evm_record(&self.dir)? {
            None => Ok(Arc::new(
                EmbeddedStaking::open(&self.chain_file(), caller).map_err(chain_err)?,
            )),
            Some(record) => {
                let ledger = Address::parse(&record.ledger).map_err(|e| {
                    NodeError::Io(format!(
                        "{EVM_CHAIN_FILE}: ledger: {e} (a devnet laid out before the ledger \
                         existed: lay it out again)"
                    ))
                })?;
                evm::dev_fund_gas(&record.rpc_url, caller)
                    .await
                    .map_err(chain_err)?;
                Ok(Arc::new(
                    EvmPayments::connect(&record.rpc_url, ledger, key).map_err(chain_err)?,
                ))
            }
        }
    }

    /// The payment ledger as the devnet admin (who sets the prices).
    pub async fn payments_admin(&self) -> Result<Arc<dyn Payments>, NodeError> {
        match evm_record(&self.dir)? {
            None => Ok(Arc::new(
                EmbeddedStaking::open(&self.chain_file(), self.admin()?)
                    .map_err(|e| NodeError::Io(format!("ledger: {e}")))?,
            )),
            Some(_) => {
                let key = admin_key(&self.dir)?;
                self.payments_as(key.signing_key()).await
            }
        }
    }

    /// The release register as the devnet admin (on a devnet with a staking contract).
    pub async fn release_admin(&self) -> Result<Arc<dyn ReleaseRegister>, NodeError> {
        let chain_err = |e: ChainError| NodeError::Io(format!("release register: {e}"));
        match evm_record(&self.dir)? {
            None => Ok(Arc::new(
                EmbeddedStaking::open(&self.chain_file(), self.admin()?).map_err(chain_err)?,
            )),
            Some(record) => {
                let key = admin_key(&self.dir)?;
                Ok(Arc::new(
                    EvmReleases::connect(
                        &record.rpc_url,
                        record.release_register()?,
                        key.signing_key(),
                    )
                    .map_err(chain_err)?,
                ))
            }
        }
    }

    /// Where the devnet's clients read its release register: the chain's (a devnet on a
    /// staking contract), else the releases listed in `listed` (a static devnet's network file).
    fn release_source(&self, listed: Vec<Release>) -> Result<ReleaseSource, NodeError> {
        if self.staking.is_none() {
            return Ok(ReleaseSource::Listed { releases: listed });
        }
        Ok(match evm_record(&self.dir)? {
            None => ReleaseSource::Embedded {
                path: self.chain_file().display().to_string(),
            },
            Some(record) => ReleaseSource::Evm {
                rpc_url: record.rpc_url.clone(),
                contract: record.release_register()?.to_checksum(),
            },
        })
    }

    /// Approves the software the devnet runs: every measurement in `measurements` that its
    /// release register has never held is added as a release (by the admin, on a chain; in the
    /// network file's list, on a static devnet). A revoked release stays revoked. Returns where
    /// clients read the register.
    async fn approve_releases(
        &self,
        measurements: &BTreeSet<[u8; 48]>,
    ) -> Result<ReleaseSource, NodeError> {
        if self.staking.is_none() {
            let mut listed = match self.network.as_ref().and_then(|n| n.releases.clone()) {
                Some(ReleaseSource::Listed { releases }) => releases,
                _ => Vec::new(),
            };
            for m in measurements {
                if !listed.iter().any(|r| &r.measurement == m) {
                    listed.push(Release::new(*m));
                }
            }
            return self.release_source(listed);
        }
        let admin = self.release_admin().await?;
        let known = admin
            .releases()
            .await
            .map_err(|e| NodeError::Io(format!("release register: {e}")))?;
        for m in measurements {
            if known.iter().any(|r| &r.measurement == m) {
                continue;
            }
            admin
                .add_release(&Release::new(*m))
                .await
                .map_err(|e| NodeError::Io(format!("approve release {}: {e}", hex::encode(m))))?;
            info!(measurement = %hex::encode(m), "approved the nodes' release");
        }
        self.release_source(Vec::new())
    }

    /// On an EVM devnet: deploys the contracts at the addresses its record names unless they
    /// are there (the first start), funding the admin for gas.
    async fn ensure_contracts(&self) -> Result<(), NodeError> {
        let Some(record) = evm_record(&self.dir)? else {
            return Ok(());
        };
        let chain_err = |what: &str, e: ChainError| NodeError::Io(format!("{what}: {e}"));
        if evm::has_code(&record.rpc_url, record.staking()?)
            .await
            .map_err(|e| chain_err("the devnet's chain", e))?
        {
            return Ok(());
        }
        let key = admin_key(&self.dir)?;
        evm::dev_fund_gas(&record.rpc_url, key.address())
            .await
            .map_err(|e| chain_err("fund the admin", e))?;
        let params = self.staking.clone().unwrap_or_default().params;
        let deployed = evm::deploy(
            &record.rpc_url,
            key.signing_key(),
            &params,
            &LedgerParams::default(),
            DEVNET_SUPPLY,
        )
        .await
        .map_err(|e| chain_err("deploy the contracts", e))?;
        if deployed.staking.to_checksum() != record.staking {
            return Err(NodeError::Network(format!(
                "the contracts were deployed at {} instead of {} (the admin account had sent \
                 transactions before): lay the devnet out again on a fresh chain",
                deployed.staking, record.staking
            )));
        }
        info!(staking = %deployed.staking, token = %deployed.token, "deployed the contracts");
        Ok(())
    }

    /// Funds `address` for gas on an EVM devnet (nothing to do on the embedded chain).
    async fn fund_gas(&self, address: Address) -> Result<(), NodeError> {
        match evm_record(&self.dir)? {
            None => Ok(()),
            Some(record) => evm::dev_fund_gas(&record.rpc_url, address)
                .await
                .map_err(|e| NodeError::Io(format!("fund {address} for gas: {e}"))),
        }
    }

    /// Writes node `i`'s folder and configuration and creates its identity; returns its entry
    /// (no URL yet) and its staker address.
    fn add_node_folder(&self, i: u32) -> Result<(NetworkNode, Address, PathBuf), NodeError> {
        node_folder(&self.dir, i, &self.options)
    }
}

fn node_folder(
    dir: &Path,
    i: u32,
    options: &LayoutOptions,
) -> Result<(NetworkNode, Address, PathBuf), NodeError> {
    let io = |what: &str, e: std::io::Error| NodeError::Io(format!("{what}: {e}"));
    let node_dir = dir.join(format!("node-{i}"));
    std::fs::create_dir_all(&node_dir).map_err(|e| io("node folder", e))?;
    // on an EVM chain the PKPs are on it too (owners mint them with their transactions)
    let evm = match &options.staking {
        Some(_) => evm_record(dir)?,
        None => None,
    };
    let mut text = format!(
        "# node {i} of the devnet in {dir}\n\
         # port 0: the node binds a free port and reports it (see lit_node::devnet)\n\
         listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
         network_file = \"../{NETWORK_FILE}\"\n\
         attestation = \"simulated\"\n",
        dir = dir.display()
    );
    if evm.is_none() {
        text.push_str(&format!("registry = \"../{REGISTRY_FILE}\"\n"));
    }
    if let Some(size) = options.presignature_pool {
        text.push_str(&format!("presignature_pool = {size}\n"));
    }
    if options.plaintext_http {
        text.push_str("insecure_plaintext_http = true\n");
    }
    if let Some(ms) = options.dkg_round_timeout_ms {
        text.push_str(&format!("dkg_round_timeout_ms = {ms}\n"));
    }
    if let Some(staking) = &options.staking {
        match &evm {
            None => text.push_str(&format!(
                "\n[staking]\nbackend = \"embedded\"\npath = \"../{CHAIN_FILE}\"\n"
            )),
            Some(record) => {
                text.push_str(&format!(
                    "\n[staking]\nbackend = \"evm\"\nrpc_url = \"{}\"\ncontract = \"{}\"\n\
                     pkp_registry = \"{}\"\n",
                    record.rpc_url, record.staking, record.pkp_registry
                ));
                if !record.release_register.is_empty() {
                    text.push_str(&format!(
                        "release_register = \"{}\"\n",
                        record.release_register
                    ));
                }
                if !record.ledger.is_empty() {
                    text.push_str(&format!("ledger = \"{}\"\n", record.ledger));
                }
            }
        }
        text.push_str(&format!(
            "poll_ms = {}\ngrace_ms = {}\nsettle_interval_ms = {}\n",
            staking.poll_ms, staking.grace_ms, staking.settle_interval_ms
        ));
        if let Some(ms) = staking.kick_after_ms {
            text.push_str(&format!("kick_after_ms = {ms}\n"));
        }
        // the faucet gives from the admin, who holds the token supply
        match &evm {
            None => {
                let admin =
                    std::fs::read_to_string(dir.join(ADMIN_FILE)).map_err(|e| io("admin", e))?;
                text.push_str(&format!("\n[faucet]\naccount = \"{}\"\n", admin.trim()));
            }
            Some(_) => text.push_str(&format!("\n[faucet]\nkey_dir = \"../{ADMIN_DIR}\"\n")),
        }
    }
    for (name, url) in &options.chains {
        text.push_str(&format!("\n[chains.{name}]\nrpc_url = \"{url}\"\n"));
    }
    if !options.extra_config.is_empty() {
        text.push('\n');
        text.push_str(&options.extra_config);
        text.push('\n');
    }
    let config_path = node_dir.join("config.toml");
    std::fs::write(&config_path, text).map_err(|e| io("config", e))?;
    let config = Config::load(&config_path).map_err(|e| NodeError::Io(e.to_string()))?;
    let (mut entry, staker) = init_with_staker(&config)?;
    entry.party_id = i;
    entry.url = String::new();
    Ok((entry, staker, config_path))
}

fn init_with_staker(config: &Config) -> Result<(NetworkNode, Address), NodeError> {
    let entry = init(config)?;
    let staker = StakerKey::load_or_create(&config.data_dir)
        .map_err(|e| NodeError::Io(format!("staker key: {e}")))?;
    Ok((entry, staker.address()))
}

/// Lays out an `n`-node devnet in `dir`, or reuses the one already there.
pub fn layout(dir: &Path, n: usize, options: &LayoutOptions) -> Result<Layout, NodeError> {
    let io = |what: &str, e: std::io::Error| NodeError::Io(format!("{what}: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| io(&dir.display().to_string(), e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| io(&dir.display().to_string(), e))?;
    let network_path = dir.join(NETWORK_FILE);
    if network_path.exists() {
        let network = read_network_file(&network_path)?;
        // a devnet on a staking contract grows and shrinks: its folder says how many nodes
        let on_chain = dir.join(CHAIN_FILE).exists() || dir.join(EVM_CHAIN_FILE).exists();
        if !on_chain && network.nodes.len() != n {
            return Err(NodeError::Network(format!(
                "{} holds a {}-node network, not {n} nodes; use another folder",
                dir.display(),
                network.nodes.len()
            )));
        }
        let configs: BTreeMap<u32, PathBuf> = network
            .nodes
            .iter()
            .map(|node| {
                (
                    node.party_id,
                    dir.join(format!("node-{}", node.party_id))
                        .join("config.toml"),
                )
            })
            .collect();
        let staking = on_chain.then(|| options.staking.clone().unwrap_or_default());
        let mut stakers = BTreeMap::new();
        if staking.is_some() {
            for (id, path) in &configs {
                // the staker key only: the node's store may be open in its running process
                let config = Config::load(path).map_err(|e| NodeError::Io(e.to_string()))?;
                let staker = StakerKey::load_or_create(&config.data_dir)
                    .map_err(|e| NodeError::Io(format!("staker key: {e}")))?;
                stakers.insert(*id, staker.address());
            }
        }
        return Ok(Layout {
            dir,
            threshold: network.threshold,
            configs,
            nodes: network.nodes.clone(),
            network: Some(network),
            stakers,
            options: LayoutOptions {
                staking: staking.clone(),
                ..options.clone()
            },
            staking,
        });
    }
    if n == 0 {
        return Err(NodeError::Network(
            "a network needs at least one node".into(),
        ));
    }
    let threshold = options
        .threshold
        .unwrap_or_else(|| lit_crypto::protocol::default_threshold(n)) as u32;
    if let Some(staking) = &options.staking {
        match &staking.chain {
            DevnetChain::Embedded => {
                let admin_key = k256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
                let admin = Address::from_public_key(admin_key.verifying_key());
                write_atomically(&dir.join(ADMIN_FILE), &admin.to_checksum())?;
                EmbeddedStaking::create(
                    &dir.join(CHAIN_FILE),
                    admin,
                    &staking.params,
                    &crate::chain::payments::LedgerParams::default(),
                    DEVNET_SUPPLY,
                )
                .map_err(|e| NodeError::Io(format!("staking: {e}")))?;
            }
            DevnetChain::Evm { rpc_url } => {
                let admin = admin_key(&dir)?.address();
                write_atomically(&dir.join(ADMIN_FILE), &admin.to_checksum())?;
                let at = evm::deployment_of(admin);
                let record = EvmChainRecord {
                    rpc_url: rpc_url.clone(),
                    token: at.token.to_checksum(),
                    staking: at.staking.to_checksum(),
                    pkp_registry: at.pkp_registry.to_checksum(),
                    release_register: at.release_register.to_checksum(),
                    ledger: at.ledger.to_checksum(),
                };
                let text = serde_json::to_string_pretty(&record)
                    .map_err(|e| NodeError::Io(e.to_string()))?;
                write_atomically(&dir.join(EVM_CHAIN_FILE), &text)?;
            }
        }
    }
    let mut nodes = Vec::with_capacity(n);
    let mut configs = BTreeMap::new();
    let mut stakers = BTreeMap::new();
    for i in 1..=n as u32 {
        let (entry, staker, config_path) = node_folder(&dir, i, options)?;
        nodes.push(entry);
        stakers.insert(i, staker);
        configs.insert(i, config_path);
    }
    // check the file now (with stand-in URLs), so a bad threshold fails before any process runs
    let mut check = network_file(threshold, nodes.clone());
    for node in &mut check.nodes {
        node.url = format!("https://node-{}.invalid", node.party_id);
    }
    check
        .check()
        .map_err(|e| NodeError::Network(e.to_string()))?;
    Ok(Layout {
        dir,
        threshold,
        configs,
        network: None,
        nodes,
        stakers,
        staking: options.staking.clone(),
        options: options.clone(),
    })
}

fn network_file(threshold: u32, nodes: Vec<NetworkNode>) -> NetworkFile {
    let name = match nodes.first() {
        Some(node) => format!("devnet-{}", hex::encode(&node.identity_key.0[..4])),
        None => "devnet".into(),
    };
    NetworkFile {
        version: NETWORK_FILE_VERSION,
        name,
        domain: None,
        threshold,
        attestation: AttestationMode::Simulated,
        releases: None,
        nodes,
    }
}

/// Funds, stakes and joins every node of a new devnet on its staking contract, then locks the
/// set: the nodes run the genesis DKG as the handover to epoch 1.
async fn genesis_joins(layout: &Layout, entries: &[NetworkNode]) -> Result<(), NodeError> {
    for entry in entries {
        join(layout, entry).await?;
    }
    let admin = layout.staking_admin().await?;
    admin
        .lock_next_epoch()
        .await
        .map_err(|e| NodeError::Io(format!("lock the genesis set: {e}")))?;
    info!(
        nodes = entries.len(),
        "genesis set locked on the staking contract"
    );
    Ok(())
}

/// Funds node `entry`'s staker from the faucet, stakes the minimum and asks to join.
async fn join(layout: &Layout, entry: &NetworkNode) -> Result<(), NodeError> {
    let chain_err = |what: &str, e: ChainError| NodeError::Io(format!("{what}: {e}"));
    let admin = layout.staking_admin().await?;
    let me = layout.staking_as(entry.party_id).await?;
    layout.fund_gas(me.caller()).await?;
    let min = admin
        .min_stake()
        .await
        .map_err(|e| chain_err("min stake", e))?;
    admin
        .transfer_token(me.caller(), min)
        .await
        .map_err(|e| chain_err("faucet", e))?;
    me.stake(min).await.map_err(|e| chain_err("stake", e))?;
    me.request_to_join(&JoinRequest {
        url: entry.url.clone(),
        identity_key: entry.identity_key.0,
        seal_key: entry.seal_key.0,
        dkg_key: entry.dkg_key.0.clone(),
    })
    .await
    .map_err(|e| chain_err("join", e))?;
    let net = admin.network().await.map_err(|e| chain_err("read", e))?;
    let got = net
        .next
        .iter()
        .find(|v| v.staker == me.caller())
        .map(|v| v.party_id);
    if got != Some(entry.party_id) {
        return Err(NodeError::Network(format!(
            "node-{} joined as party {got:?}: the devnet's folders and the chain disagree",
            entry.party_id
        )));
    }
    Ok(())
}

/// Writes `text` to `path` through a temporary file and a rename, so a reader sees the old
/// file or the new one, never half of one.
fn write_atomically(path: &Path, text: &str) -> Result<(), NodeError> {
    let io = |e: std::io::Error| NodeError::Io(format!("{}: {e}", path.display()));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The program a devnet runs as each of its nodes.
#[derive(Clone, Debug)]
pub struct NodeProgram {
    program: PathBuf,
    subcommand: &'static str,
}

impl NodeProgram {
    /// A `lit-node` binary, run as `<path> run --config FILE --parent-pid PID` (tests of this
    /// crate pass `env!("CARGO_BIN_EXE_lit-node")`).
    pub fn lit_node(path: impl Into<PathBuf>) -> Self {
        NodeProgram {
            program: path.into(),
            subcommand: "run",
        }
    }

    /// This program, re-executed as `<this program> node --config FILE --parent-pid PID`, for
    /// programs that bring their own nodes (examples, benchmarks, tests of other crates). Such a
    /// program calls [`run_self_node`] first thing in `main`.
    pub fn this_program() -> Result<Self, NodeError> {
        let program =
            std::env::current_exe().map_err(|e| NodeError::Io(format!("current exe: {e}")))?;
        Ok(NodeProgram {
            program,
            subcommand: "node",
        })
    }

    /// The program and its subcommand; the devnet appends `--config FILE --parent-pid PID`.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.arg(self.subcommand);
        c
    }
}

/// One node process of a devnet; dropping it kills the process.
#[derive(Debug)]
pub struct NodeProcess {
    /// Its party id.
    pub party_id: u32,
    child: Option<Child>,
}

impl NodeProcess {
    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Its operating-system process id, while it has not been killed (benchmarks read its
    /// memory in `/proc/<pid>/status`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process (as a crash would: no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The command that starts one node: the program and its leading arguments (and environment)
/// for a party id.
type NodeCommand = Box<dyn Fn(u32) -> Command + Send + Sync>;

/// The running processes of a laid-out devnet; dropping it kills them.
pub struct Devnet {
    layout: Layout,
    network: NetworkFile,
    command: NodeCommand,
    nodes: BTreeMap<u32, NodeProcess>,
    /// Addresses of nodes not running yet, held bound (not listening) so nobody takes them.
    reserved: BTreeMap<u32, tokio::net::TcpSocket>,
}

impl std::fmt::Debug for Devnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devnet")
            .field("dir", &self.layout.dir)
            .field("running", &self.nodes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Devnet {
    /// Starts the nodes of `layout` except those in `absent` with `command(party id)` (the
    /// program and leading arguments that run one node, e.g. [`NodeProgram::command`];
    /// `--config FILE --parent-pid PID` are appended), logging to `node-<i>/node.log`. For a new
    /// folder it learns the ports the nodes bound and writes the network file (see the module
    /// documentation). It does not wait for the DKG: see [`Devnet::wait_ready`].
    pub async fn start(
        layout: Layout,
        command: impl Fn(u32) -> Command + Send + Sync + 'static,
        absent: &BTreeSet<u32>,
    ) -> Result<Self, NodeError> {
        if let Some(id) = absent.iter().find(|id| !layout.configs.contains_key(id)) {
            return Err(NodeError::Network(format!(
                "there is no node {id} to leave out"
            )));
        }
        let command: NodeCommand = Box::new(command);
        layout.ensure_contracts().await?;
        let starting: Vec<u32> = layout
            .configs
            .keys()
            .copied()
            .filter(|id| !absent.contains(id))
            .collect();
        let measurements = starting
            .iter()
            .map(|id| command_measurement(&command(*id)))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let releases = layout.approve_releases(&measurements).await?;
        let mut nodes = BTreeMap::new();
        let mut reserved = BTreeMap::new();
        let network = match &layout.network {
            Some(network) => {
                let mut network = network.clone();
                if network.releases.as_ref() != Some(&releases) {
                    network.releases = Some(releases);
                    save_network_file(&layout, &network)?;
                }
                for &id in &starting {
                    nodes.insert(id, spawn(&layout, id, &command)?);
                }
                network
            }
            None => {
                let mut entries = layout.nodes.clone();
                for entry in entries.iter_mut() {
                    if absent.contains(&entry.party_id) {
                        let (socket, url) = reserve(layout.options.scheme())?;
                        reserved.insert(entry.party_id, socket);
                        entry.url = url;
                    }
                }
                for &id in &starting {
                    // a URL left by an earlier start that never wrote the network file
                    let _ = std::fs::remove_file(url_file(&layout.data_dir(id)));
                    nodes.insert(id, spawn(&layout, id, &command)?);
                }
                let deadline = Instant::now() + NETWORK_FILE_WAIT;
                for entry in entries.iter_mut() {
                    if let Some(p) = nodes.get_mut(&entry.party_id) {
                        entry.url = reported_url(&layout, p, deadline).await?;
                    }
                }
                if layout.staking.is_some() {
                    genesis_joins(&layout, &entries).await?;
                }
                let mut network = network_file(layout.threshold, entries);
                network.releases = Some(releases);
                network
                    .check()
                    .map_err(|e| NodeError::Network(e.to_string()))?;
                save_network_file(&layout, &network)?;
                network
            }
        };
        let layout = Layout {
            network: Some(network.clone()),
            nodes: network.nodes.clone(),
            ..layout
        };
        Ok(Devnet {
            layout,
            network,
            command,
            nodes,
            reserved,
        })
    }

    /// The layout (folder, configurations).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The network file's contents.
    pub fn network(&self) -> &NetworkFile {
        &self.network
    }

    /// The network file.
    pub fn network_file(&self) -> PathBuf {
        self.layout.network_file()
    }

    /// Node `party_id`'s base URL.
    pub fn url(&self, party_id: u32) -> Option<&str> {
        self.network.node(party_id).map(|n| n.url.as_str())
    }

    /// Node `party_id`'s log so far (empty if it has none).
    pub fn log(&self, party_id: u32) -> String {
        std::fs::read_to_string(self.layout.log_file(party_id)).unwrap_or_default()
    }

    /// The process id of node `party_id`, if this devnet started it and has not killed it.
    pub fn pid(&self, party_id: u32) -> Option<u32> {
        self.nodes.get(&party_id).and_then(NodeProcess::pid)
    }

    /// The nodes whose processes run, in party-id order.
    pub fn running(&mut self) -> Vec<u32> {
        self.nodes
            .iter_mut()
            .filter_map(|(id, p)| p.is_running().then_some(*id))
            .collect()
    }

    /// Forgets the processes that exited and returns their party ids.
    pub fn exited(&mut self) -> Vec<u32> {
        let gone: Vec<u32> = self
            .nodes
            .iter_mut()
            .filter_map(|(id, p)| (!p.is_running()).then_some(*id))
            .collect();
        for id in &gone {
            self.nodes.remove(id);
        }
        gone
    }

    /// Kills node `party_id` (as a crash would: no clean shutdown).
    pub fn kill(&mut self, party_id: u32) {
        if let Some(mut p) = self.nodes.remove(&party_id) {
            p.kill();
        }
    }

    /// Starts node `party_id` again (or for the first time, if it was left out), with its data
    /// folder, on the address the network file lists for it. Kills it first if it runs.
    pub fn restart(&mut self, party_id: u32) -> Result<(), NodeError> {
        self.kill(party_id);
        // release the address held for it, for the node to bind
        self.reserved.remove(&party_id);
        let p = spawn(&self.layout, party_id, &self.command)?;
        self.nodes.insert(party_id, p);
        Ok(())
    }

    /// Adds a node to a devnet on a staking contract: lays out `node-<k>`, starts it, funds its
    /// staker, stakes and asks to join (it becomes a member at the next epoch; see
    /// [`Devnet::lock_next_epoch`]), and lists it in the network file. Returns its party id.
    pub async fn add_node(&mut self) -> Result<u32, NodeError> {
        if self.layout.staking.is_none() {
            return Err(NodeError::Network(
                "only a devnet on a staking contract changes its members".into(),
            ));
        }
        let id = self.layout.configs.keys().max().copied().unwrap_or(0) + 1;
        let (mut entry, staker, config) = self.layout.add_node_folder(id)?;
        self.layout.configs.insert(id, config);
        self.layout
            .approve_releases(&BTreeSet::from([command_measurement(&(self.command)(id))?]))
            .await?;
        self.layout.stakers.insert(id, staker);
        let _ = std::fs::remove_file(url_file(&self.layout.data_dir(id)));
        let mut p = spawn(&self.layout, id, &self.command)?;
        entry.url = reported_url(&self.layout, &mut p, Instant::now() + NETWORK_FILE_WAIT).await?;
        self.nodes.insert(id, p);
        join(&self.layout, &entry).await?;
        let mut network = self.network.clone();
        network.nodes.push(entry);
        self.write_network(network)?;
        info!(party = id, "node joined the next set");
        Ok(id)
    }

    /// Node `party_id` asks to leave at the next epoch (its process keeps running; it stops
    /// serving once the epoch changes).
    pub async fn leave(&mut self, party_id: u32) -> Result<(), NodeError> {
        self.layout
            .staking_as(party_id)
            .await?
            .request_to_leave()
            .await
            .map_err(|e| NodeError::Io(format!("leave: {e}")))
    }

    /// The staking contract as node `party_id`'s staker (votes, signals, …).
    pub async fn staking_as(&self, party_id: u32) -> Result<Arc<dyn Staking>, NodeError> {
        self.layout.staking_as(party_id).await
    }

    /// The staking contract as the devnet admin.
    pub async fn staking_admin(&self) -> Result<Arc<dyn Staking>, NodeError> {
        self.layout.staking_admin().await
    }

    /// The payment ledger as the account of `key` ([`Layout::payments_as`]).
    pub async fn payments_as(
        &self,
        key: &k256::ecdsa::SigningKey,
    ) -> Result<Arc<dyn Payments>, NodeError> {
        self.layout.payments_as(key).await
    }

    /// The payment ledger as the devnet admin, who sets the prices.
    pub async fn payments_admin(&self) -> Result<Arc<dyn Payments>, NodeError> {
        self.layout.payments_admin().await
    }

    /// The admin locks the next set now (without waiting for the epoch to end); the nodes then
    /// reshare and advance the epoch.
    pub async fn lock_next_epoch(&self) -> Result<(), NodeError> {
        self.staking_admin()
            .await?
            .lock_next_epoch()
            .await
            .map_err(|e| NodeError::Io(format!("lock: {e}")))
    }

    /// Waits until the chain is at `epoch` and every member of it serves it; returns them.
    pub async fn wait_epoch(
        &mut self,
        epoch: u64,
        timeout: Duration,
    ) -> Result<Vec<u32>, NodeError> {
        let admin = self.staking_admin().await?;
        let http = crate::https::any_node_client(Duration::from_secs(2)).map_err(NodeError::Io)?;
        let start = Instant::now();
        loop {
            let net = admin
                .network()
                .await
                .map_err(|e| NodeError::Io(format!("staking: {e}")))?;
            if net.epoch >= epoch {
                let answers = futures_util::future::join_all(
                    net.current.iter().map(|v| health(&http, &v.url)),
                )
                .await;
                if answers
                    .iter()
                    .all(|h| matches!(h, Some(h) if h.ready && h.epoch == net.epoch))
                {
                    return Ok(net.current.iter().map(|v| v.party_id).collect());
                }
            }
            if start.elapsed() > timeout {
                return Err(NodeError::Io(format!(
                    "epoch {epoch} not served by all its members after {timeout:?} (chain at \
                     epoch {}, {:?})",
                    net.epoch, net.state
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn write_network(&mut self, mut network: NetworkFile) -> Result<(), NodeError> {
        // the bootstrap file lists every node that ever joined; its threshold must stay valid
        let n = network.nodes.len();
        if 2 * network.threshold as usize <= n {
            network.threshold = (n / 2 + 1) as u32;
        }
        network
            .check()
            .map_err(|e| NodeError::Network(e.to_string()))?;
        save_network_file(&self.layout, &network)?;
        self.layout.nodes = network.nodes.clone();
        self.layout.network = Some(network.clone());
        self.network = network;
        Ok(())
    }

    /// Waits until the nodes `party_ids` report ready, calling `progress(ready, total)` when
    /// the count changes. Fails if one of them is not running or exits, or `timeout` passes.
    pub async fn wait_ready(
        &mut self,
        party_ids: &[u32],
        timeout: Duration,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<(), NodeError> {
        let http = crate::https::any_node_client(Duration::from_secs(2)).map_err(NodeError::Io)?;
        let start = Instant::now();
        let mut last = usize::MAX;
        loop {
            for id in party_ids {
                let running = self.nodes.get_mut(id).is_some_and(|p| p.is_running());
                if !running {
                    return Err(NodeError::Io(format!(
                        "node {id} is not running; see {}",
                        self.layout.log_file(*id).display()
                    )));
                }
            }
            // all at once: a node that is bound but not serving yet holds a request until the
            // client's timeout
            let answers = futures_util::future::join_all(
                party_ids
                    .iter()
                    .map(|id| health(&http, self.url(*id).unwrap_or_default())),
            )
            .await;
            let ready = answers
                .iter()
                .filter(|h| matches!(h, Some(h) if h.ready))
                .count();
            if ready != last {
                progress(ready, party_ids.len());
                last = ready;
            }
            if ready == party_ids.len() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(NodeError::Io(format!(
                    "only {ready} of {} nodes ready after {timeout:?}",
                    party_ids.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Starts node `party_id` of `layout` with `command`, logging to `node-<i>/node.log`.
fn spawn(layout: &Layout, party_id: u32, command: &NodeCommand) -> Result<NodeProcess, NodeError> {
    let config = layout
        .configs
        .get(&party_id)
        .ok_or_else(|| NodeError::Network(format!("no node {party_id}")))?;
    let log_path = layout.log_file(party_id);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| NodeError::Io(format!("{}: {e}", log_path.display())))?;
    let log2 = log.try_clone().map_err(|e| NodeError::Io(e.to_string()))?;
    let child = command(party_id)
        .arg("--config")
        .arg(config)
        .arg("--parent-pid")
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| NodeError::Io(format!("cannot start node {party_id}: {e}")))?;
    Ok(NodeProcess {
        party_id,
        child: Some(child),
    })
}

/// An address on loopback held bound but not listening (connections to it are refused, and
/// without `SO_REUSEADDR` no other socket can bind it), and its URL.
fn reserve(scheme: &str) -> Result<(tokio::net::TcpSocket, String), NodeError> {
    let io = |e: std::io::Error| NodeError::Io(format!("cannot reserve a loopback port: {e}"));
    let socket = tokio::net::TcpSocket::new_v4().map_err(io)?;
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .map_err(io)?;
    let addr = socket.local_addr().map_err(io)?;
    Ok((socket, format!("{scheme}://{addr}")))
}

/// The URL node `p` reports in its data folder once it is bound.
async fn reported_url(
    layout: &Layout,
    p: &mut NodeProcess,
    deadline: Instant,
) -> Result<String, NodeError> {
    let path = url_file(&layout.data_dir(p.party_id));
    loop {
        if let Ok(url) = std::fs::read_to_string(&path) {
            return Ok(url);
        }
        if !p.is_running() {
            return Err(NodeError::Io(format!(
                "node {} exited before reporting its URL; see {}",
                p.party_id,
                layout.log_file(p.party_id).display()
            )));
        }
        if Instant::now() > deadline {
            return Err(NodeError::Io(format!(
                "node {} did not report its URL in {} within {NETWORK_FILE_WAIT:?}; see {}",
                p.party_id,
                path.display(),
                layout.log_file(p.party_id).display()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A program file as it is now: path, length and modification time.
type ProgramVersion = (PathBuf, u64, Option<std::time::SystemTime>);

/// The measurement a simulated node run by `command` claims (see
/// [`crate::node::simulated_measurement`]).
fn command_measurement(command: &Command) -> Result<[u8; 48], NodeError> {
    // set or removed for the child, else inherited
    let overridden = match command
        .get_envs()
        .find(|(k, _)| *k == crate::node::SIMULATED_MEASUREMENT_ENV)
    {
        Some((_, value)) => value.map(|v| v.to_string_lossy().into_owned()),
        None => std::env::var(crate::node::SIMULATED_MEASUREMENT_ENV).ok(),
    };
    let program = Path::new(command.get_program());
    let program = if program.components().count() == 1 {
        // a bare name the OS looks up in PATH
        which_in_path(program).unwrap_or_else(|| program.to_path_buf())
    } else {
        program.to_path_buf()
    };
    if overridden.is_some() {
        return crate::node::simulated_measurement(&program, overridden.as_deref());
    }
    // hashing a program file takes a while (a debug build is large): once per file version
    static HASHED: std::sync::Mutex<BTreeMap<ProgramVersion, [u8; 48]>> =
        std::sync::Mutex::new(BTreeMap::new());
    let meta = std::fs::metadata(&program)
        .map_err(|e| NodeError::Io(format!("{}: {e}", program.display())))?;
    let key = (program.clone(), meta.len(), meta.modified().ok());
    if let Some(m) = HASHED.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(*m);
    }
    let m = crate::node::simulated_measurement(&program, None)?;
    HASHED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, m);
    Ok(m)
}

/// Writes `network` as the devnet's network file.
fn save_network_file(layout: &Layout, network: &NetworkFile) -> Result<(), NodeError> {
    let text = serde_json::to_string_pretty(network).map_err(|e| NodeError::Io(e.to_string()))?;
    write_atomically(&layout.network_file(), &text)
}

/// The first file named `name` in a folder of `PATH`.
fn which_in_path(name: &Path) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Where a node with data folder `data_dir` reports its URL.
pub fn url_file(data_dir: &Path) -> PathBuf {
    data_dir.join(URL_FILE)
}

/// Binds the node's listener and returns it with the configuration of the address it got. With
/// a port in `listen` that is all. With port 0 (a devnet node, see the module documentation):
/// if the network file lists this node, it binds the port recorded there; otherwise it binds
/// any free port, writes its URL to `data/url` and waits until the network file lists it there.
pub async fn listen(
    mut config: Config,
    identity: &NodeIdentity,
) -> Result<(tokio::net::TcpListener, Config), NodeError> {
    let bind = |addr: std::net::SocketAddr, why: &'static str| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| NodeError::Io(format!("cannot listen on {addr}{why}: {e}")))
    };
    if config.listen.port() != 0 {
        let listener = bind(config.listen, "").await?;
        return Ok((listener, config));
    }
    if config.url.is_some() {
        return Err(NodeError::Io(
            "`listen` with port 0 takes a free port at start-up, so `url` cannot name it: \
             remove `url` or give `listen` a port"
                .into(),
        ));
    }
    let me = Bytes32(identity.public_key().to_bytes());
    let report =
        |config: &Config| write_atomically(&url_file(&config.data_dir), &config.public_url());
    if let Some(url) = listed_url(&config.network_file, &me)? {
        // a restart: the network file already lists this node
        let port = url_port(&url).ok_or_else(|| {
            NodeError::Network(format!("cannot tell the port of this node's URL {url}"))
        })?;
        config.listen.set_port(port);
        let listener = bind(
            config.listen,
            " (the port the network file lists for this node)",
        )
        .await?;
        config.url = Some(url);
        report(&config)?;
        return Ok((listener, config));
    }
    let listener = bind(config.listen, "").await?;
    config.listen = listener
        .local_addr()
        .map_err(|e| NodeError::Io(format!("the bound address: {e}")))?;
    let url = config.public_url();
    report(&config)?;
    info!(
        %url,
        "bound a free port; waiting until {} lists this node",
        config.network_file.display()
    );
    let deadline = Instant::now() + NETWORK_FILE_WAIT;
    loop {
        match listed_url(&config.network_file, &me)? {
            Some(listed) if listed == url => return Ok((listener, config)),
            Some(listed) => {
                return Err(NodeError::Network(format!(
                    "{} lists this node at {listed}, but it listens at {url}",
                    config.network_file.display()
                )))
            }
            None => {}
        }
        if Instant::now() > deadline {
            return Err(NodeError::Network(format!(
                "this node listens at {url} (written to {}), but {} did not list it within \
                 {NETWORK_FILE_WAIT:?}; a devnet writes that file once all its nodes reported \
                 their URLs",
                url_file(&config.data_dir).display(),
                config.network_file.display()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The URL the network file at `path` lists for the node with identity key `me`; `None` if
/// there is no file yet or it does not list the node.
fn listed_url(path: &Path, me: &Bytes32) -> Result<Option<String>, NodeError> {
    if !path.exists() {
        return Ok(None);
    }
    let network = read_network_file(path)?;
    Ok(network
        .nodes
        .into_iter()
        .find(|n| n.identity_key == *me)
        .map(|n| n.url))
}

/// The port of an `http(s)://host:port[/…]` URL.
fn url_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

/// A node's `/v1/health`, or `None` if it does not answer.
pub async fn health(http: &reqwest::Client, url: &str) -> Option<Health> {
    let resp = http
        .get(format!("{}{}", url.trim_end_matches('/'), paths::HEALTH))
        .send()
        .await
        .ok()?;
    serde_json::from_slice(&resp.bytes().await.ok()?).ok()
}

/// Resolves when the process whose id is `parent` is no longer this process's parent (it
/// exited), so devnet nodes never outlive the devnet or test that started them.
pub async fn parent_exit(parent: u32) {
    #[cfg(unix)]
    loop {
        if std::os::unix::process::parent_id() != parent {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}

/// If this process was started as a node by a devnet of [`NodeProgram::this_program`]
/// (arguments `node --config FILE --parent-pid PID`), runs that node until its parent exits and
/// returns its result; otherwise `None`.
pub fn run_self_node() -> Option<Result<(), NodeError>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("node") {
        return None;
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .ok_or_else(|| NodeError::Io(format!("node: missing {flag}")))
    };
    let run = || -> Result<(), NodeError> {
        let config = Config::load(Path::new(value("--config")?))
            .map_err(|e| NodeError::Io(e.to_string()))?;
        let parent: u32 = value("--parent-pid")?
            .parse()
            .map_err(|_| NodeError::Io("node: --parent-pid is not a number".into()))?;
        crate::node::init_logging();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| NodeError::Io(format!("runtime: {e}")))?;
        rt.block_on(crate::node::run(config, parent_exit(parent)))
    };
    Some(run())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_of_a_url() {
        assert_eq!(url_port("http://127.0.0.1:7471"), Some(7471));
        assert_eq!(url_port("http://127.0.0.1:7471/"), Some(7471));
        assert_eq!(url_port("https://node.example:443/lit"), Some(443));
        assert_eq!(url_port("http://[::1]:80"), Some(80));
        assert_eq!(url_port("http://node.example"), None);
    }
}

/// The anvil process of a devnet on anvil (`lit-node devnet --chain-backend anvil`); dropping it
/// kills the process. The chain's state is kept in `DIR/anvil-state.json` (written every second
/// and on exit), so running the same folder again continues the same chain.
#[derive(Debug)]
pub struct AnvilProcess {
    child: Child,
    /// Its JSON-RPC URL.
    pub url: String,
}

impl AnvilProcess {
    /// Starts anvil for the devnet in `dir`: on the port its `evm-chain.json` names (the same
    /// chain again) or a free one. The program is `$LIT_ANVIL`, else `anvil` on `PATH`, else
    /// `.tools/bin/anvil` (where `./test.sh` installs it).
    pub async fn start(dir: &Path) -> Result<Self, NodeError> {
        let io = |what: &str, e: std::io::Error| NodeError::Io(format!("{what}: {e}"));
        std::fs::create_dir_all(dir).map_err(|e| io(&dir.display().to_string(), e))?;
        let port = match evm_record(dir)? {
            Some(record) => reqwest::Url::parse(&record.rpc_url)
                .ok()
                .and_then(|u| u.port())
                .ok_or_else(|| {
                    NodeError::Io(format!("{EVM_CHAIN_FILE}: no port in {}", record.rpc_url))
                })?,
            None => std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| io("a free port", e))?
                .port(),
        };
        let program = find_anvil().ok_or_else(|| {
            NodeError::Io(
                "anvil not found: set LIT_ANVIL, put anvil on PATH, or run ./test.sh once (it \
                 installs anvil into .tools/bin)"
                    .into(),
            )
        })?;
        let child = Command::new(&program)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .arg("--state")
            .arg(dir.join("anvil-state.json"))
            .args(["--state-interval", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| io(&program.display().to_string(), e))?;
        let mut anvil = AnvilProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while evm::has_code(&anvil.url, Address([0; 20])).await.is_err() {
            if let Ok(Some(status)) = anvil.child.try_wait() {
                return Err(NodeError::Io(format!("anvil exited at start: {status}")));
            }
            if Instant::now() > deadline {
                return Err(NodeError::Io("anvil did not answer in 30 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(anvil)
    }
}

impl Drop for AnvilProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_anvil() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LIT_ANVIL") {
        return Some(PathBuf::from(p));
    }
    which_in_path(Path::new("anvil")).or_else(|| {
        let local = PathBuf::from(".tools/bin/anvil");
        local.is_file().then_some(local)
    })
}
