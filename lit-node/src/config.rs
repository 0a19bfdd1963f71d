//! The node's configuration file (TOML).
//!
//! ```toml
//! listen = "127.0.0.1:7471"          # where the HTTP API listens (port 0: a free port, reported
//!                                    # to the devnet that started the node; see `devnet`)
//! url = "https://127.0.0.1:7471"     # how peers and clients reach it (defaults to https://<listen>)
//! data_dir = "node-1"                # identity, shares and state (relative to the config file)
//! network_file = "network.json"      # the network description (relative to the config file)
//! attestation = "simulated"          # "simulated" (development) or "sev-snp"
//! max_body_bytes = 1048576
//! registry = "registry.sqlite"      # the PKP registry shared by the devnet's nodes (optional)
//! presignature_pool = 4              # presignatures kept per signing group this node leads
//! dkg_round_timeout_ms = 15000       # a DKG round with no progress for this long goes on without
//!                                    # the silent peers (they are named in the log)
//! attestation_policy = "policy.json" # the operator's own additions to the release register's
//!                                    # policy for peers (lit-attest JSON; optional)
//!
//! [staking]                         # membership from a staking contract (absent: the network
//!                                    # file's members, epoch 1 forever)
//! backend = "embedded"               # "embedded" (an SQLite file shared on one machine) or "evm"
//! path = "chain.sqlite"              # embedded: the file (relative to the config file)
//! rpc_url = "http://127.0.0.1:8545"  # evm: the chain's JSON-RPC endpoint
//! contract = "0x…"                   # evm: the Staking contract
//! pkp_registry = "0x…"               # evm: the PkpRegistry contract, where PKPs are read (then
//!                                    # `registry` must be absent: owners mint on chain)
//! release_register = "0x…"           # evm: the ReleaseRegister contract; peers are checked
//!                                    # against it (the embedded chain holds its own)
//! poll_ms = 500                      # how often the node reads the chain
//! grace_ms = 30000                   # how long the previous epoch's shares still serve
//! kick_after_ms = 300000             # a member unreachable this long gets this node's vote to
//!                                    # kick it (0: never vote)
//!
//! [chains.anvil]
//! rpc_url = "http://127.0.0.1:8545"
//! timeout_ms = 5000
//! chain_id = 31337                   # for contract-wallet (EIP-1271) auth on this chain
//!
//! [oidc.google]                      # ID tokens accepted as PKP auth methods
//! issuer = "https://accounts.google.com"
//! jwks_url = "https://www.googleapis.com/oauth2/v3/certs"
//! audiences = ["<your OAuth client id>"]
//!
//! [webauthn]                         # passkeys accepted as PKP auth methods (Lit's type 3)
//! rp_id = "example.com"              # the relying party id the passkeys are scoped to
//! origins = ["https://example.com"]  # the pages that may use them
//!
//! [actions]                          # Lit Actions (`/v1/execute`); every key is optional
//! engine = "auto"                    # "auto" (deno when installed, else quickjs), "deno", "quickjs"
//! deno = "/usr/local/bin/deno"       # the Deno binary (default: found as `auto` finds it)
//! ethers = "/opt/ethers/dist/ethers.umd.min.js"  # the `ethers` global of actions: the browser
//!                                    # bundle of npm's ethers@5.7.2 (default: $LIT_ETHERS, else
//!                                    # the workspace's .tools/npm-ethers that ./test.sh installs;
//!                                    # none: a use of `ethers` throws an error naming ethers@5);
//!                                    # set but unreadable or not ethers v5: the node won't start
//! preload_ethers = false             # Deno: evaluate the bundle as each warm process starts
//!                                    # (~0.2 s of CPU per action) rather than on first use
//! time_ms = 30000                    # wall time per action, host calls included
//! memory_mb = 256                    # JavaScript heap
//! code_bytes = 16777216
//! response_bytes = 102400
//! log_bytes = 102400
//! fetches = 50
//! signatures = 10
//! host_calls_per_kind = 1000
//! max_concurrent = 16                # actions running at once; more are refused (rate_limited)
//! allow_net = ["api.example.com", "127.0.0.1:8080"]   # hosts `fetch` may reach (none by default)
//!
//! [quotas]                           # per caller and hour; beyond them: rate_limited (every key
//!                                    # is optional; see `service::quota`)
//! mints_per_hour = 100               # PKP mints per owner, counted by the registry for the network
//! uploads_per_hour = 100             # Lit Action uploads per caller (the anonymous ones together)
//! upload_bytes_per_hour = 67108864   # bytes of code uploaded per caller (64 MiB)
//! tracked_callers = 100000           # uploaders counted at once; a new one beyond waits
//! ```
//!
//! Unknown keys are refused, so a typo is an error at start-up rather than a silently ignored
//! setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How the node attests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttestationMode {
    /// Development networks: evidence that says loudly it is not hardware.
    Simulated,
    /// A real AMD SEV-SNP guest.
    SevSnp,
}

/// One chain the conditions may query.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// Per-call timeout in milliseconds.
    #[serde(default = "default_rpc_timeout_ms")]
    pub timeout_ms: u64,
    /// Its EIP-155 chain id: contract-wallet (EIP-1271) auth signatures name it in their SIWE
    /// message, and are checked on the chain with that id.
    #[serde(default)]
    pub chain_id: Option<u64>,
}

fn default_rpc_timeout_ms() -> u64 {
    5_000
}

fn default_max_body_bytes() -> usize {
    lit_api::MAX_BODY_BYTES
}

/// The parsed configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Public URL (defaults to `https://<listen>`; nodes serve attested TLS).
    #[serde(default)]
    pub url: Option<String>,
    /// Serve plain HTTP instead of attested TLS. Only for measuring what TLS costs (the
    /// benchmarks); refused unless `attestation = "simulated"`, and clients connect to such a
    /// node only with `ConnectOptions::with_plaintext_http`.
    #[serde(default)]
    pub insecure_plaintext_http: bool,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Network description file.
    pub network_file: PathBuf,
    /// Attestation mode.
    #[serde(default = "default_attestation")]
    pub attestation: AttestationMode,
    /// Largest accepted request body.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// The development PKP registry (an SQLite file every node of the devnet opens); without it
    /// the PKP endpoints answer `not_found`.
    #[serde(default)]
    pub registry: Option<PathBuf>,
    /// Presignatures kept ready per signing group this node leads (0: always generate fresh).
    #[serde(default = "default_presignature_pool")]
    pub presignature_pool: usize,
    /// A DKG round that accepts nothing for this long continues without the silent peers.
    #[serde(default = "default_dkg_round_timeout_ms")]
    pub dkg_round_timeout_ms: u64,
    /// Where membership and epochs come from (absent: the network file, epoch 1 forever).
    #[serde(default)]
    pub staking: Option<StakingConfig>,
    /// The operator's additions to the policy peers are checked with (lit-attest JSON: extra
    /// releases or measurements, a higher TCB floor, chip ids; `Policy::merged_with`).
    #[serde(default)]
    pub attestation_policy: Option<PathBuf>,
    /// Chains by name.
    #[serde(default)]
    pub chains: BTreeMap<String, ChainConfig>,
    /// OpenID Connect issuers whose ID tokens are accepted as PKP auth methods, by name.
    #[serde(default)]
    pub oidc: BTreeMap<String, OidcIssuer>,
    /// The relying party whose passkeys are accepted as PKP auth methods (absent: none).
    #[serde(default)]
    pub webauthn: Option<crate::auth::webauthn::WebAuthnConfig>,
    /// How Lit Actions run.
    #[serde(default)]
    pub actions: ActionsConfig,
    /// What one caller may do per hour.
    #[serde(default)]
    pub quotas: QuotasConfig,
    /// A development network's faucet (`lit faucet`); absent: none.
    #[serde(default)]
    pub faucet: Option<FaucetConfig>,
}

/// The `[faucet]` section: test tokens for new wallets on a devnet, from the token's first
/// holder. On an EVM chain the faucet also gives the address ETH for gas (`anvil_setBalance`:
/// a development chain only).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaucetConfig {
    /// The token balance the faucet tops an address up to (base units, decimal; default
    /// 1000 tokens).
    #[serde(default = "default_faucet_amount")]
    pub amount: String,
    /// Embedded chain: the account that gives (the devnet's admin; the embedded chain moves
    /// its tokens without a key).
    #[serde(default)]
    pub account: Option<String>,
    /// EVM chain: the folder of the key that gives and pays the gas (`staker.key`, as
    /// `lit-node init` writes it).
    #[serde(default)]
    pub key_dir: Option<PathBuf>,
}

fn default_faucet_amount() -> String {
    (1000u128 * 10u128.pow(18)).to_string()
}

/// Which backend holds the staking contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StakingBackend {
    /// An SQLite file shared by the nodes of a one-machine devnet (`chain::embedded`).
    Embedded,
    /// The Solidity contracts on an EVM chain.
    Evm,
}

/// The `[staking]` section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StakingConfig {
    /// The backend.
    pub backend: StakingBackend,
    /// Embedded: the chain's file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// EVM: the JSON-RPC endpoint.
    #[serde(default)]
    pub rpc_url: Option<String>,
    /// EVM: the Staking contract's address.
    #[serde(default)]
    pub contract: Option<String>,
    /// EVM: the PkpRegistry contract's address; the node reads PKPs from it (instead of the
    /// development `registry` file).
    #[serde(default)]
    pub pkp_registry: Option<String>,
    /// EVM: the ReleaseRegister contract's address; the node checks its peers' attestation
    /// against it (the embedded chain holds its own register).
    #[serde(default)]
    pub release_register: Option<String>,
    /// How often the node reads the chain (milliseconds).
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// How long the previous epoch's shares serve after a switch (milliseconds).
    #[serde(default = "default_grace_ms")]
    pub grace_ms: u64,
    /// A current member that does not answer `/v1/health` for this long gets this node's vote
    /// to kick it (milliseconds; 0: the node never votes on its own).
    #[serde(default = "default_kick_after_ms")]
    pub kick_after_ms: u64,
    /// EVM: the Ledger contract's address; the node charges its requests there (absent: the
    /// network is free). The embedded chain holds its own ledger.
    #[serde(default)]
    pub ledger: Option<String>,
    /// How often the node settles its charges with the ledger and reads its prices again
    /// (milliseconds).
    #[serde(default = "default_settle_interval_ms")]
    pub settle_interval_ms: u64,
}

fn default_settle_interval_ms() -> u64 {
    10_000
}

fn default_kick_after_ms() -> u64 {
    300_000
}

fn default_poll_ms() -> u64 {
    500
}

fn default_grace_ms() -> u64 {
    30_000
}

/// Which JavaScript engine runs Lit Actions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineChoice {
    /// Deno when a binary is found, otherwise QuickJS.
    #[default]
    Auto,
    /// The Deno runtime (start-up fails without the binary).
    Deno,
    /// The embedded QuickJS engine.
    Quickjs,
}

/// The `[actions]` section: engine and per-action limits (defaults: `lit_actions::Limits`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionsConfig {
    /// The engine.
    #[serde(default)]
    pub engine: EngineChoice,
    /// The Deno binary.
    #[serde(default)]
    pub deno: Option<PathBuf>,
    /// The ethers v5 browser bundle (`dist/ethers.umd.min.js` of npm's `ethers@5.7.2`) that
    /// defines the `ethers` global of actions (default: found by
    /// `lit_actions::engine::ethers::find_ethers`).
    #[serde(default)]
    pub ethers: Option<PathBuf>,
    /// Deno: evaluate the ethers bundle when each warm process starts, before its action arrives
    /// (the action's first use of `ethers` is then free; every process pays for it), rather than
    /// on an action's first use (the default).
    #[serde(default)]
    pub preload_ethers: bool,
    /// Wall time per action in milliseconds.
    #[serde(default)]
    pub time_ms: Option<u64>,
    /// JavaScript heap in MiB.
    #[serde(default)]
    pub memory_mb: Option<usize>,
    /// Largest code.
    #[serde(default)]
    pub code_bytes: Option<usize>,
    /// Largest response.
    #[serde(default)]
    pub response_bytes: Option<usize>,
    /// Largest logs.
    #[serde(default)]
    pub log_bytes: Option<usize>,
    /// Fetches per action.
    #[serde(default)]
    pub fetches: Option<u32>,
    /// Signatures per action.
    #[serde(default)]
    pub signatures: Option<u32>,
    /// Calls of any one other host function per action.
    #[serde(default)]
    pub host_calls_per_kind: Option<u32>,
    /// Hosts (`host` or `host:port`) that `fetch` may reach.
    #[serde(default)]
    pub allow_net: Vec<String>,
    /// Actions this node runs at once (default 16); more are refused with `rate_limited`.
    #[serde(default)]
    pub max_concurrent: Option<usize>,
}

/// Actions a node runs at once unless configured otherwise.
pub const DEFAULT_MAX_CONCURRENT_ACTIONS: usize = 16;

impl ActionsConfig {
    /// Actions run at once.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
            .unwrap_or(DEFAULT_MAX_CONCURRENT_ACTIONS)
    }

    /// The limits, defaults overridden by what is set.
    pub fn limits(&self) -> lit_actions::Limits {
        let d = lit_actions::Limits::default();
        let mut l = d
            .clone()
            .with_code_bytes(self.code_bytes.unwrap_or(d.code_bytes))
            .with_response_bytes(self.response_bytes.unwrap_or(d.response_bytes))
            .with_log_bytes(self.log_bytes.unwrap_or(d.log_bytes))
            .with_fetches(self.fetches.unwrap_or(d.fetches))
            .with_signatures(self.signatures.unwrap_or(d.signatures))
            .with_host_calls_per_kind(self.host_calls_per_kind.unwrap_or(d.host_calls_per_kind));
        if let Some(ms) = self.time_ms {
            l = l.with_time(std::time::Duration::from_millis(ms));
        }
        if let Some(mb) = self.memory_mb {
            l = l.with_memory_bytes(mb.saturating_mul(1024 * 1024));
        }
        l
    }
}

/// The `[quotas]` section: what one caller may do per hour, until requests are charged (see
/// `service::quota` for who the caller is and how each is counted).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasConfig {
    /// PKP mints per owner (the approving address) in any hour, counted by the shared registry
    /// across the network (default 100).
    #[serde(default = "default_mints_per_hour")]
    pub mints_per_hour: u32,
    /// Lit Action uploads per caller and hour at this node; uploads without `auth` share one
    /// quota (default 100).
    #[serde(default = "default_uploads_per_hour")]
    pub uploads_per_hour: u32,
    /// Bytes of Lit Action code per caller and hour at this node (default 64 MiB: four uploads
    /// of the largest code `[actions]` accepts by default).
    #[serde(default = "default_upload_bytes_per_hour")]
    pub upload_bytes_per_hour: u64,
    /// Uploaders this node counts at once (default 100 000); while that many have an hour
    /// running, a new one is refused until the soonest ends.
    #[serde(default = "default_tracked_callers")]
    pub tracked_callers: usize,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        Self {
            mints_per_hour: default_mints_per_hour(),
            uploads_per_hour: default_uploads_per_hour(),
            upload_bytes_per_hour: default_upload_bytes_per_hour(),
            tracked_callers: default_tracked_callers(),
        }
    }
}

fn default_mints_per_hour() -> u32 {
    100
}

fn default_uploads_per_hour() -> u32 {
    100
}

fn default_upload_bytes_per_hour() -> u64 {
    64 << 20
}

fn default_tracked_callers() -> usize {
    100_000
}

fn default_presignature_pool() -> usize {
    4
}

fn default_dkg_round_timeout_ms() -> u64 {
    15_000
}

fn default_attestation() -> AttestationMode {
    AttestationMode::Simulated
}

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("invalid configuration in {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (with line and column).
        message: String,
    },
}

impl Config {
    /// Reads and parses `path`; relative paths inside are resolved against its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses configuration text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        let mut config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        if config.max_body_bytes == 0 {
            return Err("max_body_bytes must be positive".into());
        }
        if config.dkg_round_timeout_ms == 0 {
            return Err("dkg_round_timeout_ms must be positive".into());
        }
        if config.insecure_plaintext_http && config.attestation != AttestationMode::Simulated {
            return Err(
                "insecure_plaintext_http is for benchmarks of simulated nodes only: a node in \
                 sev-snp mode serves attested TLS"
                    .into(),
            );
        }
        if let Some(url) = &config.url {
            let scheme = format!("{}://", config.scheme());
            if !url.starts_with(&scheme) {
                return Err(format!(
                    "url {url:?} must start with {scheme} (the node serves {})",
                    if config.insecure_plaintext_http {
                        "plain HTTP (insecure_plaintext_http)"
                    } else {
                        "HTTPS: attested TLS"
                    }
                ));
            }
        }
        for (name, chain) in &config.chains {
            if !(chain.rpc_url.starts_with("http://") || chain.rpc_url.starts_with("https://")) {
                return Err(format!("chains.{name}.rpc_url must be an http(s) URL"));
            }
        }
        if config.actions.time_ms == Some(0)
            || config.actions.memory_mb == Some(0)
            || config.actions.max_concurrent == Some(0)
        {
            return Err(
                "actions.time_ms, actions.memory_mb and actions.max_concurrent must be positive"
                    .into(),
            );
        }
        let q = &config.quotas;
        if q.mints_per_hour == 0
            || q.uploads_per_hour == 0
            || q.upload_bytes_per_hour == 0
            || q.tracked_callers == 0
        {
            return Err("quotas.mints_per_hour, quotas.uploads_per_hour, \
                 quotas.upload_bytes_per_hour and quotas.tracked_callers must be positive"
                .into());
        }
        if let Some(faucet) = &mut config.faucet {
            lit_api::ledger::parse_amount("faucet.amount", &faucet.amount)?;
            if faucet.account.is_some() == faucet.key_dir.is_some() {
                return Err(
                    "faucet needs exactly one of account (embedded chain) and key_dir \
                     (EVM chain)"
                        .into(),
                );
            }
            if config.staking.is_none() {
                return Err("faucet needs a [staking] chain".into());
            }
            faucet.key_dir = faucet.key_dir.take().map(|d| base.join(d));
        }
        config.actions.deno = config.actions.deno.map(|d| base.join(d));
        config.actions.ethers = config.actions.ethers.map(|e| base.join(e));
        config.data_dir = base.join(&config.data_dir);
        config.network_file = base.join(&config.network_file);
        config.registry = config.registry.map(|r| base.join(r));
        config.attestation_policy = config.attestation_policy.map(|p| base.join(p));
        if let Some(staking) = &mut config.staking {
            match staking.backend {
                StakingBackend::Embedded if staking.path.is_none() => {
                    return Err("staking.path is needed for the embedded backend".into());
                }
                StakingBackend::Evm if staking.rpc_url.is_none() || staking.contract.is_none() => {
                    return Err("staking.rpc_url and staking.contract are needed for evm".into());
                }
                StakingBackend::Embedded if staking.pkp_registry.is_some() => {
                    return Err("staking.pkp_registry is for the evm backend".into());
                }
                _ => {}
            }
            if staking.pkp_registry.is_some() && config.registry.is_some() {
                return Err(
                    "registry and staking.pkp_registry exclude each other: PKPs are \
                     either in the devnet's file or on the chain"
                        .into(),
                );
            }
            if staking.settle_interval_ms == 0 {
                return Err("staking.settle_interval_ms must be positive".into());
            }
            if staking.backend == StakingBackend::Embedded && staking.ledger.is_some() {
                return Err("staking.ledger is for the evm backend".into());
            }
            if staking.poll_ms == 0 {
                return Err("staking.poll_ms must be positive".into());
            }
            staking.path = staking.path.as_ref().map(|p| base.join(p));
        }
        Ok(config)
    }

    /// `https`, or `http` for a node serving [`Config::insecure_plaintext_http`].
    pub fn scheme(&self) -> &'static str {
        if self.insecure_plaintext_http {
            "http"
        } else {
            "https"
        }
    }

    /// The public URL.
    pub fn public_url(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| format!("{}://{}", self.scheme(), self.listen))
    }
}

fn default_cache_seconds() -> u64 {
    600
}

fn default_leeway_seconds() -> u64 {
    60
}

fn default_refetch_min_seconds() -> u64 {
    30
}

/// One trusted OpenID Connect issuer, as written in the node configuration (`[oidc.<name>]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuer {
    /// The issuer identifier, exactly as tokens carry it in `iss`
    /// (e.g. `https://accounts.google.com`).
    pub issuer: String,
    /// Where the issuer publishes its JSON Web Key Set (`http://` or `https://`), e.g.
    /// `https://www.googleapis.com/oauth2/v3/certs`.
    pub jwks_url: String,
    /// The accepted audiences (the application's client ids); at least one.
    pub audiences: Vec<String>,
    /// How long a fetched key set is used before it is fetched again (default 600).
    #[serde(default = "default_cache_seconds")]
    pub jwks_cache_seconds: u64,
    /// Clock tolerance for `exp`, `nbf` and `iat`, in seconds (default 60).
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
    /// Fewest seconds between two fetches of the key set caused by an unknown key id, or after a
    /// failed fetch (default 30). Bounds the load a stream of tokens with made-up key ids can put
    /// on the issuer.
    #[serde(default = "default_refetch_min_seconds")]
    pub jwks_refetch_min_seconds: u64,
}

impl OidcIssuer {
    /// A configuration with the default cache time, leeway and refetch interval.
    pub fn new(
        issuer: impl Into<String>,
        jwks_url: impl Into<String>,
        audiences: Vec<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            jwks_url: jwks_url.into(),
            audiences,
            jwks_cache_seconds: default_cache_seconds(),
            leeway_seconds: default_leeway_seconds(),
            jwks_refetch_min_seconds: default_refetch_min_seconds(),
        }
    }
}

/// Environment variable that makes a development node misbehave, for tests of how peers and
/// clients handle a faulty member: `bad-dkg-share:<victim party id>` or `dkg-garbage` (in the
/// DKG), or `wrong-decryption-share` (answers `/v1/encryption/sign` with a share of the wrong
/// message), or `wrong-epoch-keys` (answers `/v1/epoch/keys` with another sharing of the same root
/// keys). Honoured only with simulated attestation.
pub const DEV_FAULT_ENV: &str = "LIT_NODE_DEV_FAULT";

/// A development fault (see [`DEV_FAULT_ENV`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DevFault {
    /// Misbehave in the DKG.
    Dkg(lit_dkg::byzantine::Behaviour),
    /// Answer decryption requests with a share of the wrong message.
    WrongDecryptionShare,
    /// Answer `GET /v1/epoch/keys` with another sharing of the same root keys (what a member
    /// would serve to give a joining node shares it cannot use).
    WrongEpochKeys,
}

impl DevFault {
    /// The fault [`DEV_FAULT_ENV`] asks for, honoured only on development networks.
    pub fn from_env(mode: AttestationMode) -> Option<DevFault> {
        let value = std::env::var(DEV_FAULT_ENV).ok()?;
        if mode != AttestationMode::Simulated {
            tracing::warn!("{DEV_FAULT_ENV} is ignored outside development networks");
            return None;
        }
        let fault = if let Some(victim) = value.strip_prefix("bad-dkg-share:") {
            DevFault::Dkg(lit_dkg::byzantine::Behaviour::BadShareTo(
                lit_crypto::PartyId::new(victim.parse().ok()?)?,
            ))
        } else if value == "dkg-garbage" {
            DevFault::Dkg(lit_dkg::byzantine::Behaviour::Garbage)
        } else if value == "wrong-decryption-share" {
            DevFault::WrongDecryptionShare
        } else if value == "wrong-epoch-keys" {
            DevFault::WrongEpochKeys
        } else {
            tracing::warn!("unknown {DEV_FAULT_ENV} value {value:?}");
            return None;
        };
        tracing::warn!(?fault, "DEVELOPMENT FAULT INJECTION: this node misbehaves");
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
listen = "127.0.0.1:7471"
data_dir = "node-1"
network_file = "network.json"

[chains.anvil]
rpc_url = "http://127.0.0.1:8545"
"#;

    #[test]
    fn parses_with_defaults_and_resolves_paths() {
        let c = Config::parse(EXAMPLE, Path::new("/srv/lit")).unwrap();
        assert_eq!(c.public_url(), "https://127.0.0.1:7471");
        assert_eq!(c.data_dir, Path::new("/srv/lit/node-1"));
        assert_eq!(c.network_file, Path::new("/srv/lit/network.json"));
        assert_eq!(c.attestation, AttestationMode::Simulated);
        assert_eq!(c.max_body_bytes, lit_api::MAX_BODY_BYTES);
        assert_eq!(c.chains["anvil"].timeout_ms, 5_000);
        assert_eq!(c.actions.engine, EngineChoice::Auto);
        assert_eq!(c.actions.limits(), lit_actions::Limits::default());
    }

    #[test]
    fn action_limits_come_from_the_actions_section() {
        let text = format!(
            "{EXAMPLE}\n[actions]\nengine = \"quickjs\"\ntime_ms = 2000\nmemory_mb = 32\nresponse_bytes = 10\nallow_net = [\"127.0.0.1:9\"]\n"
        );
        let c = Config::parse(&text, Path::new(".")).unwrap();
        assert_eq!(c.actions.engine, EngineChoice::Quickjs);
        let l = c.actions.limits();
        assert_eq!(l.time, std::time::Duration::from_secs(2));
        assert_eq!(l.memory_bytes, 32 << 20);
        assert_eq!(l.response_bytes, 10);
        assert_eq!(l.fetches, lit_actions::Limits::default().fetches);
        let zero = text.replace("time_ms = 2000", "time_ms = 0");
        assert!(Config::parse(&zero, Path::new(".")).is_err());
        let typo = text.replace("engine = \"quickjs\"", "engine = \"v8\"");
        assert!(Config::parse(&typo, Path::new(".")).is_err());
    }

    #[test]
    fn the_ethers_bundle_is_a_path_relative_to_the_configuration() {
        let c = Config::parse(EXAMPLE, Path::new("/etc/lit")).unwrap();
        assert_eq!(c.actions.ethers, None);
        let text = format!("{EXAMPLE}\n[actions]\nethers = \"npm/ethers.umd.min.js\"\n");
        let c = Config::parse(&text, Path::new("/etc/lit")).unwrap();
        assert_eq!(
            c.actions.ethers.as_deref(),
            Some(Path::new("/etc/lit/npm/ethers.umd.min.js"))
        );
        // a node configured with a bundle it cannot read does not start
        let missing = ActionsConfig {
            engine: EngineChoice::Quickjs,
            ..c.actions
        };
        assert!(matches!(
            crate::service::actions::build_engine(&missing),
            Err(lit_actions::ActionError::EngineUnavailable { reason, .. })
                if reason.contains("/etc/lit/npm/ethers.umd.min.js")
        ));
    }

    #[test]
    fn quotas_have_defaults_and_come_from_the_quotas_section() {
        let c = Config::parse(EXAMPLE, Path::new(".")).unwrap();
        assert_eq!(c.quotas, QuotasConfig::default());
        assert_eq!(
            (
                c.quotas.mints_per_hour,
                c.quotas.uploads_per_hour,
                c.quotas.upload_bytes_per_hour,
                c.quotas.tracked_callers
            ),
            (100, 100, 64 << 20, 100_000)
        );
        let text =
            format!("{EXAMPLE}\n[quotas]\nmints_per_hour = 2\nupload_bytes_per_hour = 500\n");
        let c = Config::parse(&text, Path::new(".")).unwrap();
        assert_eq!(c.quotas.mints_per_hour, 2);
        assert_eq!(c.quotas.upload_bytes_per_hour, 500);
        assert_eq!(c.quotas.uploads_per_hour, 100);
        let zero = text.replace("mints_per_hour = 2", "mints_per_hour = 0");
        let err = Config::parse(&zero, Path::new(".")).unwrap_err();
        assert!(err.contains("quotas.mints_per_hour"), "{err}");
        let typo = text.replace("mints_per_hour", "mint_per_hour");
        assert!(Config::parse(&typo, Path::new(".")).is_err());
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        let typo = EXAMPLE.replace("data_dir", "datadir");
        assert!(Config::parse(&typo, Path::new(".")).is_err());
        let bad_url = EXAMPLE.replace("http://127.0.0.1:8545", "ftp://x");
        let err = Config::parse(&bad_url, Path::new(".")).unwrap_err();
        assert!(err.contains("chains.anvil.rpc_url"), "{err}");
        let bad_listen = EXAMPLE.replace("127.0.0.1:7471", "nowhere");
        assert!(Config::parse(&bad_listen, Path::new(".")).is_err());
        let bad_mode = format!("attestation = \"tpm\"\n{EXAMPLE}");
        assert!(Config::parse(&bad_mode, Path::new(".")).is_err());
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = Config::load(Path::new("/nonexistent/lit.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/lit.toml"));
    }
}
