//! The connected client: handshake with every node, verify their attestations and agreement,
//! then encrypt locally and decrypt with shares from a threshold of nodes.
//!
//! # Epochs
//!
//! What a handshake establishes (the epoch, its threshold, members and key set, the nodes that
//! answered) is an [`EpochView`]. The client holds the current one behind a lock and every
//! request works on a snapshot of it, so a request in flight is never affected by another that
//! handshakes again. When nodes refuse a request with `wrong_epoch` (the network moved to
//! another epoch: its key shares were reshared, perhaps among other nodes), the client
//! handshakes again once, checks that the network's public keys did not change, swaps the view
//! and retries the request once ([`LitClient::epoch_retries`] counts these retries).
//!
//! On a network whose membership is on a chain, handshakes list the epoch's members
//! ([`HandshakeResponse::members`]): the client also handshakes with the members its bootstrap
//! did not name (pinning their keys from the list) and leaves out bootstrap nodes that are no
//! longer members (see the `membership` module).

mod membership;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use lit_api::network::{AttestationMode, NetworkFile, NetworkNode, ReleaseSource};
use lit_api::session::{LitAbility, LitResource, ResourceAbilityRequest};
use lit_api::v1::{
    paths, AttestationKind, AuthSig, EncryptionSignRequest, EncryptionSignResponse,
    HandshakeRequest, HandshakeResponse, NetworkKeys,
};
use lit_api::{Bytes32, ErrorEnvelope, API_VERSION};
use lit_attest::{Binding, Policy, Verifier};
use lit_crypto::bls::{PublicKey, PublicKeySet, SignatureShare};
use lit_crypto::identity::AccessControlIdentity;
use lit_crypto::seal::SealSecretKey;
use lit_crypto::PartyId;
use rand_core::{OsRng, RngCore};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::encrypted::{encrypt_conditions_to, encrypt_to, Conditions, EncryptedData};
use crate::error::{ClientError, NodeFailure, NodeFailureReason};
use crate::releases::read_releases;
use crate::shares::{combine_and_decrypt, open_share, NodeRef, ShareCollector};
use crate::wallet::{Wallet, DEFAULT_AUTH_TTL};

use membership::{Answer, Target};

/// The largest response body the client reads from a node.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The default timeout of one request to one node.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a handshake made because of an epoch change waits, by default, for the nodes to
/// agree again (see [`ConnectOptions::with_epoch_settle`]).
pub const DEFAULT_EPOCH_SETTLE: Duration = Duration::from_secs(5);

/// How often, by default, a client that makes requests asks one node for its epoch, to move to
/// a new epoch while the nodes still serve the previous one (see
/// [`ConnectOptions::epoch_check`]).
pub const DEFAULT_EPOCH_CHECK: Duration = Duration::from_secs(1);

/// How long a node that answered a liveness check is taken to be up.
const LIVENESS_MEMORY: Duration = Duration::from_secs(1);

/// How often such a handshake is repeated while the nodes still disagree about the epoch.
const EPOCH_SETTLE_POLL: Duration = Duration::from_millis(250);

/// Where to find the nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// A network file (`lit_api::network::NetworkFile`): the nodes' URLs, with their identity
    /// keys pinned, and the attestation mode.
    NetworkFile(PathBuf),
    /// Bare node URLs: nothing is pinned and no release register is read: attestation is
    /// checked with [`ConnectOptions::policy`] alone (the strict `Policy::default()`, which
    /// approves no software, when none is given).
    Urls(Vec<String>),
}

/// Options of [`LitClient::connect_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The attestation policy the network's release register is added to (the network file
    /// says where the register is). `None`: the strict `Policy::default()`, so the register
    /// alone decides which software is approved.
    pub policy: Option<Policy>,
    /// The client knows it talks to a development network and accepts simulated evidence
    /// (`lit --devnet`). Never implied by a network file: a file that says
    /// `"attestation": "simulated"` is refused without it.
    pub devnet: bool,
    /// The timeout of one request to one node.
    pub request_timeout: Duration,
    /// How long the `AuthSig`s made for decryption are valid.
    pub auth_ttl: Duration,
    /// How long a handshake made again because of an epoch change (or by
    /// [`LitClient::refresh`]) keeps trying while the nodes still disagree about the epoch or
    /// its members (they switch epochs one after the other). Zero: one try.
    pub epoch_settle: Duration,
    /// At most this often, before a request, the client asks one node of its view for the
    /// epoch it serves (`/v1/health`) and handshakes again when it is newer. Nodes serve the
    /// previous epoch for a grace period after a change, so a client that keeps making
    /// requests moves on within that period and never meets `wrong_epoch`; a Lit Action that
    /// met it on some nodes of its group could not be run again. `None`: never.
    pub epoch_check: Option<Duration>,
    /// Accept `http://` node URLs (nodes serving `insecure_plaintext_http`). Only for
    /// measuring what TLS costs on a development network: it needs [`ConnectOptions::devnet`]
    /// too, and gives up everything attested TLS protects (anyone on the path reads and
    /// changes the traffic).
    pub plaintext_http: bool,
    /// The most each request may cost at each node (base units of the network's token),
    /// signed into every session this client makes. `None`: no maximum is
    /// signed, and a network that charges refuses the requests with `price_too_high`.
    pub max_price: Option<u128>,
    /// Who pays for this client's requests, if not the signed-in address: an account that
    /// delegated to it on the network's ledger.
    pub payer: Option<lit_crypto::eth::Address>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            policy: None,
            devnet: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            auth_ttl: DEFAULT_AUTH_TTL,
            epoch_settle: DEFAULT_EPOCH_SETTLE,
            epoch_check: Some(DEFAULT_EPOCH_CHECK),
            plaintext_http: false,
            max_price: None,
            payer: None,
        }
    }
}

impl ConnectOptions {
    /// The options of a client that knows it talks to a development network: the defaults,
    /// plus simulated evidence accepted (see [`ConnectOptions::devnet`]).
    pub fn devnet() -> Self {
        Self {
            devnet: true,
            ..Self::default()
        }
    }

    /// Accept simulated evidence (a development network) or not.
    pub fn with_devnet(mut self, devnet: bool) -> Self {
        self.devnet = devnet;
        self
    }

    /// Sign this maximum price per request and node into every session
    /// ([`ConnectOptions::max_price`]).
    pub fn with_max_price(mut self, max_price: u128) -> Self {
        self.max_price = Some(max_price);
        self
    }

    /// Name `payer` as who pays ([`ConnectOptions::payer`]).
    pub fn with_payer(mut self, payer: lit_crypto::eth::Address) -> Self {
        self.payer = Some(payer);
        self
    }

    /// Use this attestation policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Use this per-request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Make `AuthSig`s valid for this long.
    pub fn with_auth_ttl(mut self, ttl: Duration) -> Self {
        self.auth_ttl = ttl;
        self
    }

    /// Wait this long at most for the nodes to agree when handshaking again after an epoch
    /// change ([`ConnectOptions::epoch_settle`]).
    pub fn with_epoch_settle(mut self, settle: Duration) -> Self {
        self.epoch_settle = settle;
        self
    }

    /// Ask a node for its epoch at most this often before requests (`None`: never; see
    /// [`ConnectOptions::epoch_check`]).
    pub fn with_epoch_check(mut self, every: Option<Duration>) -> Self {
        self.epoch_check = every;
        self
    }

    /// Accept plain-HTTP nodes of a development network (benchmarks of what TLS costs; see
    /// [`ConnectOptions::plaintext_http`]).
    pub fn with_plaintext_http(mut self, plaintext: bool) -> Self {
        self.plaintext_http = plaintext;
        self
    }
}

/// A node that passed the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its party id in the current epoch.
    pub party_id: u32,
    /// The URL the client reaches it at.
    pub url: String,
    /// The URL it announces for itself.
    pub announced_url: String,
    /// Its identity public key.
    pub identity_key: Vec<u8>,
    /// Its X25519 seal key.
    pub seal_key: [u8; 32],
    /// The epoch it reported.
    pub epoch: u64,
    /// The kind of attestation it sent (verified against the policy).
    pub attestation: AttestationKind,
    /// Whether the verified evidence came from AMD hardware.
    pub hardware: bool,
    /// Round-trip time of the handshake.
    pub latency: Duration,
}

/// What one handshake with the network established: the epoch, its threshold, members and key
/// set, and the nodes that answered. [`LitClient`] swaps it when the epoch changes; requests
/// work on one snapshot ([`LitClient::view`]) from start to end.
#[derive(Debug)]
pub struct EpochView {
    nodes: Vec<NodeInfo>,
    /// A connection pool per node (by the URL the client reaches it at), pinned to its
    /// attested identity key.
    clients: BTreeMap<String, reqwest::Client>,
    failures: Vec<NodeFailure>,
    epoch: u64,
    threshold: usize,
    node_count: u32,
    network_keys: NetworkKeys,
    key_set: Arc<PublicKeySet>,
    members: Vec<NetworkNode>,
    domain: String,
}

impl EpochView {
    /// The connections to the node at `url`, pinned to its attested key (`None`: not a node of
    /// this view).
    pub(crate) fn http_to(&self, url: &str) -> Option<&reqwest::Client> {
        self.clients.get(url)
    }

    /// The epoch all healthy nodes agree on.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The number of shares needed (`T`).
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The number of nodes in the epoch.
    pub fn node_count(&self) -> u32 {
        self.node_count
    }

    /// The nodes that passed the handshake: the bootstrap's in its order, then members the
    /// bootstrap did not name, by party id.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// The nodes that failed the handshake (or are no longer members), and why.
    pub fn handshake_failures(&self) -> &[NodeFailure] {
        &self.failures
    }

    /// The epoch's members as the nodes listed them, by party id (empty for a static network).
    pub fn members(&self) -> &[NetworkNode] {
        &self.members
    }

    /// The network's BLS public key set of this epoch (verifies each node's share).
    pub fn key_set(&self) -> &Arc<PublicKeySet> {
        &self.key_set
    }

    /// The network keys as the nodes reported them.
    pub fn network_keys(&self) -> &NetworkKeys {
        &self.network_keys
    }

    /// The party ids of every member, healthy or not: the listed members, or (static networks)
    /// the nodes that answered and the bootstrap nodes that did not.
    pub(crate) fn member_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = if self.members.is_empty() {
            self.nodes
                .iter()
                .map(|n| n.party_id)
                .chain(self.failures.iter().filter_map(|f| f.party_id))
                .collect()
        } else {
            self.members.iter().map(|m| m.party_id).collect()
        };
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The healthy nodes as [`NodeRef`]s.
    pub(crate) fn node_refs(&self) -> Vec<NodeRef> {
        self.nodes
            .iter()
            .map(|n| NodeRef {
                party_id: n.party_id,
                url: n.url.clone(),
            })
            .collect()
    }
}

/// A client connected to a Lit network.
#[derive(Debug)]
pub struct LitClient {
    bootstrap: Bootstrap,
    pub(crate) http: reqwest::Client,
    /// The network's SIWE domain: fixed for the client's life (a network that reports another
    /// one is another network).
    domain: String,
    /// The current epoch's view; swapped by a handshake made again.
    view: RwLock<Arc<EpochView>>,
    /// Held while handshaking again, so that requests failing together handshake once.
    rehandshake: tokio::sync::Mutex<()>,
    /// When a node was last asked for its epoch ([`ConnectOptions::epoch_check`]).
    epoch_checked: std::sync::Mutex<Instant>,
    /// When each node (by URL) last answered a liveness check before a Lit Action.
    alive: std::sync::Mutex<BTreeMap<String, Instant>>,
    epoch_retries: AtomicU64,
    pub(crate) options: ConnectOptions,
    /// Nodes that recently failed for themselves (unreachable, bad answers), with when: signing
    /// groups avoid them for a while. Cleared when the view changes (party ids are per epoch).
    pub(crate) suspects: std::sync::Mutex<std::collections::BTreeMap<u32, Instant>>,
}

impl LitClient {
    /// Connects with default options (see [`LitClient::connect_with`]).
    pub async fn connect(bootstrap: Bootstrap) -> Result<Self, ClientError> {
        Self::connect_with(bootstrap, ConnectOptions::default()).await
    }

    /// Handshakes with every node concurrently, each with a fresh challenge; verifies each
    /// node's attestation (bound to its identity key, the challenge and the epoch) against the
    /// policy and its identity key against the pinned one; refuses nodes that answered but
    /// disagree on the epoch, threshold, node count, members or network keys
    /// ([`ClientError::Disagreement`]); and requires at least `T` healthy nodes
    /// ([`ClientError::TooFewNodes`], naming every failed node). Nodes that failed are kept
    /// out and reported by [`LitClient::handshake_failures`].
    ///
    /// When the nodes list the epoch's members, the members the bootstrap did not name are
    /// handshaken too (pinned to the listed keys), and bootstrap nodes that are no longer
    /// members are left out (listed among the failures as [`NodeFailureReason::NotMember`]).
    pub async fn connect_with(
        bootstrap: Bootstrap,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        let plan = Plan::of(&bootstrap, &options)?;
        let http = http_client(options.request_timeout)?;
        let verifier = Arc::new(Verifier::new(plan.policy().await?));
        let view = establish(&http, &options, &verifier, plan.targets, plan.threshold).await?;
        if let Some(domain) = plan.domain.filter(|d| *d != view.domain) {
            return Err(ClientError::Disagreement {
                what: "domain",
                detail: format!(
                    "the network file names {domain:?}, the nodes {:?}",
                    view.domain
                ),
            });
        }
        Ok(Self {
            domain: view.domain.clone(),
            bootstrap,
            http,
            view: RwLock::new(Arc::new(view)),
            rehandshake: tokio::sync::Mutex::new(()),
            epoch_checked: std::sync::Mutex::new(Instant::now()),
            alive: Default::default(),
            epoch_retries: AtomicU64::new(0),
            options,
            suspects: Default::default(),
        })
    }

    /// The connections to the node at `url`: pinned to its attested key when `view` has it,
    /// else (a node outside the view, asked only for its health) to any node certificate.
    pub(crate) fn http_to(&self, view: &EpochView, url: &str) -> reqwest::Client {
        view.http_to(url).unwrap_or(&self.http).clone()
    }

    /// Handshakes again (with the bootstrap, and the members of the current epoch) and swaps
    /// the view, e.g. after a request failed because the network moved to a new epoch
    /// ([`ClientError::epoch_changed`]; requests do this by themselves once). Refuses a network
    /// whose public keys or domain are not this one's ([`ClientError::Disagreement`]). On error
    /// the client is left as it was.
    pub async fn refresh(&self) -> Result<(), ClientError> {
        let _one_at_a_time = self.rehandshake.lock().await;
        let current = self.view();
        self.handshake_again(&current).await.map(|_| ())
    }

    /// The current view of the network (a snapshot: a later handshake swaps in another one).
    pub fn view(&self) -> Arc<EpochView> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many requests were retried because the network had moved to another epoch.
    pub fn epoch_retries(&self) -> u64 {
        self.epoch_retries.load(Ordering::Relaxed)
    }

    /// The current epoch all healthy nodes agree on.
    pub fn epoch(&self) -> u64 {
        self.view().epoch
    }

    /// The network's SIWE domain: wallets sign capabilities for it (see [`LitClient::session`]).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// A session for `wallet` on this network: a fresh session key and the wallet's capability
    /// (a sign-in to [`LitClient::domain`]) granting `requests` for `ttl` (the nodes accept at
    /// most 24 hours). Each request is then signed for each node afresh.
    pub fn session(
        &self,
        wallet: &Wallet,
        requests: Vec<lit_api::session::ResourceAbilityRequest>,
        ttl: Duration,
    ) -> Result<crate::Session, ClientError> {
        crate::Session::from_wallet(wallet, &self.domain, requests, ttl)
            .map(|s| self.with_payment_terms(s))
            .map_err(|e| ClientError::Config(format!("session: {e}")))
    }

    /// Signs `max_price` into the sessions this client makes from now on (as
    /// [`ConnectOptions::with_max_price`]); `None`: none (0).
    pub fn set_max_price(&mut self, max_price: Option<u128>) {
        self.options.max_price = max_price;
    }

    /// The maximum price this client signs into its sessions, if any.
    pub fn max_price(&self) -> Option<u128> {
        self.options.max_price
    }

    /// `session` with this client's maximum price and payer ([`ConnectOptions::max_price`],
    /// [`ConnectOptions::payer`]).
    pub fn with_payment_terms(&self, mut session: crate::Session) -> crate::Session {
        if let Some(p) = self.options.max_price {
            session = session.with_max_price(p);
        }
        if let Some(p) = self.options.payer {
            session = session.with_payer(p);
        }
        session
    }

    /// The number of shares needed to decrypt.
    pub fn threshold(&self) -> usize {
        self.view().threshold
    }

    /// The number of nodes in the epoch.
    pub fn node_count(&self) -> u32 {
        self.view().node_count
    }

    /// The nodes that passed the handshake (see [`EpochView::nodes`]).
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.view().nodes.clone()
    }

    /// The nodes that failed the handshake, and why.
    pub fn handshake_failures(&self) -> Vec<NodeFailure> {
        self.view().failures.clone()
    }

    /// The current epoch's members as the nodes listed them (empty for a static network).
    pub fn members(&self) -> Vec<NetworkNode> {
        self.view().members.clone()
    }

    /// The network's BLS public key (what data is encrypted to; the same in every epoch).
    pub fn network_public_key(&self) -> PublicKey {
        self.view().key_set.public_key()
    }

    /// The network's BLS public key set of the current epoch (verifies each node's share).
    pub fn key_set(&self) -> Arc<PublicKeySet> {
        self.view().key_set.clone()
    }

    /// The network keys as the nodes reported them.
    pub fn network_keys(&self) -> NetworkKeys {
        self.view().network_keys.clone()
    }

    /// Encrypts `plaintext` under the access control conditions `conditions` (a list given as
    /// `accessControlConditions`, `conditionType` optional, as in Lit's examples), locally, to
    /// the network key. Refuses conditions `lit_api::conditions::parse` refuses.
    pub fn encrypt(
        &self,
        conditions: &serde_json::Value,
        plaintext: &[u8],
    ) -> Result<EncryptedData, ClientError> {
        encrypt_to(&self.network_public_key(), conditions, plaintext)
    }

    /// [`LitClient::encrypt`] with conditions under any of Lit's request keys
    /// (`evmContractConditions`, `unifiedAccessControlConditions`…); refuses what
    /// `lit_api::conditions::parse_as` refuses for that key.
    pub fn encrypt_conditions(
        &self,
        conditions: &Conditions,
        plaintext: &[u8],
    ) -> Result<EncryptedData, ClientError> {
        encrypt_conditions_to(&self.network_public_key(), conditions, plaintext)
    }

    /// Decrypts: asks `T` nodes (in random order, concurrently, each with a fresh ephemeral seal
    /// key) for their share of the decryption key, proving the wallet's address with a fresh
    /// `AuthSig`; opens and verifies each share against the key set; asks the next unused node
    /// whenever one fails; combines `T` verified shares and decrypts, checking the plaintext
    /// against its hash. Handshakes again and retries once if the network moved to another
    /// epoch.
    ///
    /// Fails with [`ClientError::ConditionsNotMet`] when so many nodes refused with
    /// `conditions_not_met` that `T` cannot be reached, [`ClientError::TooFewShares`] when too
    /// few nodes answered with a valid share otherwise; both name every failed node and why.
    pub async fn decrypt(
        &self,
        data: &EncryptedData,
        wallet: &Wallet,
    ) -> Result<Vec<u8>, ClientError> {
        self.decrypt_with_params(data, wallet, &BTreeMap::new())
            .await
    }

    /// [`LitClient::decrypt`], giving every node `lit_params`: the values of the conditions'
    /// `:litParam:<name>` placeholders.
    pub async fn decrypt_with_params(
        &self,
        data: &EncryptedData,
        wallet: &Wallet,
        lit_params: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, ClientError> {
        let identity = data.identity()?;
        let ciphertext = data.ciphertext(Some(&self.network_public_key()))?;
        // a session for exactly this data; each node gets its own signature
        let resource = LitResource::decryption_of(&identity);
        let grant =
            ResourceAbilityRequest::new(resource, LitAbility::AccessControlConditionDecryption)
                .map_err(|e| ClientError::Config(format!("session: {e}")))?;
        let session = self.session(wallet, vec![grant], self.options.auth_ttl)?;
        self.with_epoch_retry("decrypt", |view| {
            self.decrypt_in(view, data, lit_params, &session, &identity, &ciphertext)
        })
        .await
    }

    async fn decrypt_in(
        &self,
        view: Arc<EpochView>,
        data: &EncryptedData,
        lit_params: &BTreeMap<String, String>,
        session: &crate::Session,
        identity: &AccessControlIdentity,
        ciphertext: &lit_crypto::ibe::Ciphertext,
    ) -> Result<Vec<u8>, ClientError> {
        let now = SystemTime::now();
        let auth = view
            .nodes
            .iter()
            .map(|n| {
                session
                    .sign_for_node(&n.url, now)
                    .map(|sig| (n.url.clone(), AuthSig::from(sig)))
                    .map_err(|e| ClientError::Config(format!("session: {e}")))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let mut order = view.node_refs();
        shuffle(&mut order);
        let request = Arc::new(ShareRequest {
            epoch: view.epoch,
            conditions_kind: data.conditions_kind,
            conditions: data.access_control_conditions.clone(),
            lit_params: lit_params.clone(),
            data_hash: data.data_to_encrypt_hash,
            auth,
            identity: *identity,
            key_set: view.key_set.clone(),
        });
        let shares = collect_shares(ShareCollector::new(view.threshold, order), |node| {
            let http = self.http_to(&view, &node.url);
            let request = request.clone();
            async move { request.ask(&http, &node).await }
        })
        .await?;
        let plaintext = combine_and_decrypt(&view.key_set, identity, ciphertext, &shares)?;
        Ok(plaintext.to_vec())
    }

    /// Runs `request` on the current view; if it failed because nodes answered `wrong_epoch`
    /// ([`ClientError::epoch_changed`]), handshakes again (once, shared with requests that
    /// failed alike at the same time) and runs it once more on the new view. A Lit Action that
    /// ran on some nodes is not run again ([`ClientError::ActionIncomplete`]): the view is
    /// renewed for the next request and the error returned. A request that failed because a
    /// node of the view does not serve ([`ClientError::member_not_serving`]: it may have left)
    /// handshakes again too, and runs once more only if the network is at another epoch.
    pub(crate) async fn with_epoch_retry<T, F, Fut>(
        &self,
        what: &'static str,
        request: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(Arc<EpochView>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        self.catch_up().await;
        let view = self.view();
        let error = match request(view.clone()).await {
            Err(e) if e.epoch_changed() => e,
            // a member that stopped serving may have left at an epoch change this view has not
            // seen: the same retry, if the network is at another epoch
            Err(e)
                if e.member_not_serving() && !matches!(e, ClientError::ActionIncomplete { .. }) =>
            {
                e
            }
            other => return other,
        };
        tracing::info!(
            request = what,
            epoch = view.epoch,
            error = %error,
            "nodes answered wrong_epoch or do not serve: handshaking again"
        );
        let fresh = match self.rehandshake_after(&view).await {
            Ok(fresh) => fresh,
            Err(_) if !error.epoch_changed() => return Err(error),
            Err(e) => return Err(e),
        };
        if matches!(error, ClientError::ActionIncomplete { .. })
            || (!error.epoch_changed() && fresh.epoch == view.epoch)
        {
            return Err(error);
        }
        self.epoch_retries.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            request = what,
            from = view.epoch,
            to = fresh.epoch,
            "the network moved to another epoch: retrying the request once"
        );
        request(fresh).await
    }

    /// The members of `group` (party id, URL) that do not answer `/v1/health` as ready, with
    /// why; nodes that answered within the last [`LIVENESS_MEMORY`] are not asked again. A Lit
    /// Action that ran on part of its group cannot be run again, so its group is checked before
    /// it is sent: a node that is down is left out of the group instead.
    pub(crate) async fn unreachable_among(
        &self,
        group: &[(u32, String)],
    ) -> Vec<(u32, String, NodeFailureReason)> {
        let view = self.view();
        let fresh = |url: &str| {
            self.alive
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(url)
                .is_some_and(|t| t.elapsed() < LIVENESS_MEMORY)
        };
        let asks = group
            .iter()
            .filter(|(_, url)| !fresh(url))
            .map(|(party, url)| {
                let health = format!("{}{}", url.trim_end_matches('/'), paths::HEALTH);
                let http = self.http_to(&view, url);
                async move {
                    let answer = get_json::<lit_api::v1::Health>(&http, &health).await;
                    (*party, url.clone(), answer)
                }
            });
        let mut down = Vec::new();
        for (party, url, answer) in futures_util::future::join_all(asks).await {
            match answer {
                Ok(h) if h.ready => {
                    self.alive
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(url, Instant::now());
                }
                Ok(_) => down.push((
                    party,
                    url,
                    NodeFailureReason::Api {
                        code: lit_api::ErrorCode::NotReady,
                        message: "the node does not serve (health: not ready)".into(),
                    },
                )),
                Err(reason) => down.push((party, url, reason)),
            }
        }
        down
    }

    /// Moves to a newer epoch before a request if a node of the view serves one (at most once
    /// per [`ConnectOptions::epoch_check`]). A failure here changes nothing: the request runs
    /// on the view it has and [`LitClient::with_epoch_retry`] handles what it meets.
    async fn catch_up(&self) {
        let Some(every) = self.options.epoch_check else {
            return;
        };
        {
            let mut last = self.epoch_checked.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < every {
                return;
            }
            *last = Instant::now();
        }
        let view = self.view();
        let mut nodes = view.node_refs();
        shuffle(&mut nodes);
        let Some(node) = nodes.first() else {
            return;
        };
        let url = format!("{}{}", node.url.trim_end_matches('/'), paths::HEALTH);
        let http = self.http_to(&view, &node.url);
        let Ok(health) = get_json::<lit_api::v1::Health>(&http, &url).await else {
            return;
        };
        if health.ready && health.epoch > view.epoch {
            tracing::info!(
                from = view.epoch,
                to = health.epoch,
                node = node.party_id,
                "a node serves a newer epoch: handshaking again"
            );
            if let Err(e) = self.rehandshake_after(&view).await {
                tracing::info!(
                    "handshaking again failed, keeping epoch {}: {e}",
                    view.epoch
                );
            }
        }
    }

    /// Handshakes again because a request on `stale` met another epoch, unless another request
    /// did already (then its view is used).
    async fn rehandshake_after(
        &self,
        stale: &Arc<EpochView>,
    ) -> Result<Arc<EpochView>, ClientError> {
        let _one_at_a_time = self.rehandshake.lock().await;
        let current = self.view();
        if !Arc::ptr_eq(&current, stale) {
            return Ok(current);
        }
        self.handshake_again(&current).await
    }

    /// Handshakes with the bootstrap and `current`'s members, waiting up to
    /// [`ConnectOptions::epoch_settle`] while the nodes disagree about the epoch or members;
    /// refuses other network keys or another domain; installs and returns the new view.
    async fn handshake_again(&self, current: &EpochView) -> Result<Arc<EpochView>, ClientError> {
        let plan = Plan::of(&self.bootstrap, &self.options)?;
        // the register is read again: a release revoked since is refused from now on
        let verifier = Arc::new(Verifier::new(plan.policy().await?));
        let targets = membership::rehandshake_targets(&current.members, plan.targets.clone());
        let deadline = Instant::now() + self.options.epoch_settle;
        let view = loop {
            let view = establish(
                &self.http,
                &self.options,
                &verifier,
                targets.clone(),
                plan.threshold,
            );
            match view.await {
                Err(ClientError::Disagreement { what, .. })
                    if matches!(what, "epoch" | "members") && Instant::now() < deadline =>
                {
                    tokio::time::sleep(EPOCH_SETTLE_POLL).await;
                }
                other => break other?,
            }
        };
        check_same_network(current, &view)?;
        let view = Arc::new(view);
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = view.clone();
        self.suspects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(view)
    }
}

/// Drives a [`ShareCollector`]: asks the nodes it names concurrently with `ask` and records
/// each answer until the outcome is decided. Requests still in flight then are cancelled.
pub async fn collect_shares<F, Fut>(
    mut collector: ShareCollector,
    ask: F,
) -> Result<Vec<SignatureShare>, ClientError>
where
    F: Fn(NodeRef) -> Fut,
    Fut: std::future::Future<Output = Result<SignatureShare, NodeFailureReason>> + Send + 'static,
{
    let mut set = JoinSet::new();
    let mut tasks: HashMap<tokio::task::Id, u32> = HashMap::new();
    loop {
        for node in collector.next_requests() {
            let party_id = node.party_id;
            let handle = set.spawn(ask(node));
            tasks.insert(handle.id(), party_id);
        }
        if let Some(outcome) = collector.outcome() {
            set.abort_all();
            return outcome;
        }
        match set.join_next_with_id().await {
            Some(Ok((id, result))) => {
                if let Some(party_id) = tasks.remove(&id) {
                    collector.record(party_id, result);
                }
            }
            Some(Err(e)) => {
                if let Some(party_id) = tasks.remove(&e.id()) {
                    collector.record(
                        party_id,
                        Err(NodeFailureReason::BadResponse(format!(
                            "request task failed: {e}"
                        ))),
                    );
                }
            }
            None => {
                // Nothing in flight and no outcome cannot happen (the collector keeps enough
                // nodes in flight); report it as an error rather than loop.
                return Err(ClientError::TooFewShares {
                    needed: collector.threshold(),
                    got: collector.shares().len(),
                    failures: collector.failures().to_vec(),
                });
            }
        }
    }
}

/// What every node is asked for one decryption.
struct ShareRequest {
    epoch: u64,
    conditions_kind: lit_api::conditions::ConditionsKind,
    conditions: serde_json::Value,
    lit_params: BTreeMap<String, String>,
    data_hash: Bytes32,
    /// The session's signature for each node (by URL), in the `authSig` shape.
    auth: BTreeMap<String, AuthSig>,
    identity: AccessControlIdentity,
    key_set: Arc<PublicKeySet>,
}

impl ShareRequest {
    async fn ask(
        &self,
        http: &reqwest::Client,
        node: &NodeRef,
    ) -> Result<SignatureShare, NodeFailureReason> {
        // A fresh key per request per node: it is also the request's replay nonce.
        let (seal_key, seal_public) = SealSecretKey::generate(&mut OsRng);
        let auth_sig = self.auth.get(&node.url).cloned().ok_or_else(|| {
            NodeFailureReason::Inconsistent(format!("no session signature for {}", node.url))
        })?;
        let body = EncryptionSignRequest {
            epoch: self.epoch,
            conditions_kind: self.conditions_kind,
            access_control_conditions: self.conditions.clone(),
            lit_params: self.lit_params.clone(),
            data_to_encrypt_hash: self.data_hash,
            auth_sig,
            client_public_key: Bytes32(seal_public.to_bytes()),
        };
        let response: EncryptionSignResponse =
            post_json(http, &endpoint(&node.url, paths::ENCRYPTION_SIGN), &body).await?;
        open_share(
            &self.key_set,
            &seal_key,
            node.party_id,
            self.epoch,
            &self.identity,
            &response,
        )
    }
}

/// Where a handshake starts: the bootstrap's targets, the attestation policy it is checked
/// with (before the release register is added), where the register is, and what the network
/// file says of the threshold and domain.
struct Plan {
    targets: Vec<Target>,
    policy: Policy,
    releases: Option<(ReleaseSource, PathBuf)>,
    threshold: Option<usize>,
    domain: Option<String>,
}

impl Plan {
    fn of(bootstrap: &Bootstrap, options: &ConnectOptions) -> Result<Self, ClientError> {
        let mut policy = options.policy.clone().unwrap_or_default();
        if options.devnet {
            policy.allow_simulated = true;
        }
        let plan = match bootstrap {
            Bootstrap::NetworkFile(path) => {
                let file = read_network_file(path)?;
                if file.attestation == AttestationMode::Simulated && !policy.allow_simulated {
                    return Err(ClientError::Config(format!(
                        "{} describes a development network (\"attestation\": \"simulated\"): \
                         its nodes prove nothing about their software. Connect with \
                         `ConnectOptions::devnet()` (`lit --devnet`) if you mean to",
                        path.display()
                    )));
                }
                let dir = path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."));
                Plan {
                    targets: file
                        .nodes
                        .iter()
                        .map(|n| Target {
                            url: n.url.clone(),
                            pin: Some(n.clone()),
                        })
                        .collect(),
                    policy,
                    releases: file.releases.clone().map(|source| (source, dir)),
                    threshold: Some(file.threshold as usize),
                    domain: Some(file.domain()),
                }
            }
            Bootstrap::Urls(urls) => Plan {
                targets: urls
                    .iter()
                    .map(|u| Target {
                        url: u.clone(),
                        pin: None,
                    })
                    .collect(),
                policy,
                releases: None,
                threshold: None,
                domain: None,
            },
        };
        if plan.targets.is_empty() {
            return Err(ClientError::Config("no nodes to connect to".into()));
        }
        if options.plaintext_http && !options.devnet {
            return Err(ClientError::Config(
                "plain HTTP (`plaintext_http`) is only for benchmarks of a development network: \
                 it needs `ConnectOptions::devnet()` too"
                    .into(),
            ));
        }
        for target in &plan.targets {
            check_scheme(&target.url, options.plaintext_http).map_err(ClientError::Config)?;
        }
        Ok(plan)
    }

    /// The policy with the release register, read now.
    async fn policy(&self) -> Result<Policy, ClientError> {
        let mut policy = self.policy.clone();
        if let Some((source, dir)) = &self.releases {
            policy = policy.with_releases(read_releases(source, dir).await?);
        }
        Ok(policy)
    }
}

/// Handshakes with `targets`, then (networks that list their members) with the members the
/// targets did not reach, and checks the answers: the nodes' agreement, that they are members,
/// and that `T` of them answered.
async fn establish(
    http: &reqwest::Client,
    options: &ConnectOptions,
    verifier: &Arc<Verifier>,
    targets: Vec<Target>,
    file_threshold: Option<usize>,
) -> Result<EpochView, ClientError> {
    let (answers, mut failures) = handshake_round(http, options, verifier, &targets).await?;
    // bootstrap nodes that left the network answer for an older epoch
    let (mut answers, departed) = membership::split_departed(answers);
    failures.extend(departed);
    check_agreement(&answers)?;
    let members = answers
        .first()
        .map(|a| membership::sorted(&a.response.members))
        .unwrap_or_default();
    if !members.is_empty() {
        let missing = membership::missing_members(&members, &answers, &failures);
        if !missing.is_empty() {
            let (more, more_failures) = handshake_round(http, options, verifier, &missing).await?;
            answers.extend(more);
            failures.extend(more_failures);
            check_agreement(&answers)?;
        }
        let (kept, not_members) = membership::keep_members(answers, &members);
        answers = kept;
        failures.extend(not_members);
    }

    let Some(first) = answers.first() else {
        return Err(ClientError::TooFewNodes {
            needed: file_threshold.unwrap_or(1),
            healthy: 0,
            failures,
        });
    };
    let threshold = first.response.threshold as usize;
    if answers.len() < threshold {
        return Err(ClientError::TooFewNodes {
            needed: threshold,
            healthy: answers.len(),
            failures,
        });
    }
    // every later request to a node goes over a connection pinned to its attested key
    let mut clients = BTreeMap::new();
    for a in &answers {
        let key = <[u8; 32]>::try_from(a.info.identity_key.as_slice())
            .map_err(|_| ClientError::Config("an identity key is not 32 bytes".into()))?;
        let verifier = lit_api::tls::NodeKeyVerifier::pinned(key);
        clients.insert(
            a.info.url.clone(),
            node_http_client(verifier, options.request_timeout, false)?,
        );
    }
    Ok(EpochView {
        clients,
        epoch: first.response.epoch,
        threshold,
        node_count: first.response.node_count,
        network_keys: first.response.network_keys.clone(),
        key_set: Arc::new(first.key_set.clone()),
        domain: first.response.domain.clone(),
        members,
        nodes: answers.into_iter().map(|a| a.info).collect(),
        failures,
    })
}

/// Handshakes with every target concurrently; answers and failures in the targets' order.
async fn handshake_round(
    http: &reqwest::Client,
    options: &ConnectOptions,
    verifier: &Arc<Verifier>,
    targets: &[Target],
) -> Result<(Vec<Answer>, Vec<NodeFailure>), ClientError> {
    let mut set = JoinSet::new();
    let plaintext = options.plaintext_http;
    for (index, target) in targets.iter().cloned().enumerate() {
        let http = http.clone();
        let verifier = verifier.clone();
        set.spawn(async move {
            let result = match check_scheme(&target.url, plaintext) {
                Ok(()) => handshake(&http, &target.url, target.pin.as_ref(), &verifier).await,
                Err(e) => Err(NodeFailureReason::Unreachable(e)),
            };
            (index, target, result)
        });
    }
    let mut answers = Vec::new();
    let mut failures = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((index, _, Ok(answer))) => answers.push((index, answer)),
            Ok((index, target, Err(reason))) => failures.push((
                index,
                NodeFailure {
                    party_id: target.pin.as_ref().map(|p| p.party_id),
                    url: target.url,
                    reason,
                },
            )),
            Err(e) => {
                return Err(ClientError::Config(format!("a handshake task failed: {e}")));
            }
        }
    }
    answers.sort_by_key(|(i, _)| *i);
    failures.sort_by_key(|(i, _)| *i);
    Ok((
        answers.into_iter().map(|(_, a)| a).collect(),
        failures.into_iter().map(|(_, f)| f).collect(),
    ))
}

/// Refuses a view of another network than `current`'s: other public keys (the BLS key data is
/// encrypted to, the secp256k1 root key PKPs derive from) or another SIWE domain. An epoch
/// change reshares the keys among the new members; it never changes them.
fn check_same_network(current: &EpochView, new: &EpochView) -> Result<(), ClientError> {
    let (old, now) = (&current.network_keys, &new.network_keys);
    if old.bls != now.bls || old.ecdsa != now.ecdsa {
        return Err(ClientError::Disagreement {
            what: "network keys",
            detail: format!(
                "at epoch {} the network's BLS key was {} and its secp256k1 root key {}; at \
                 epoch {} the nodes report {} and {}: that is another network, not an epoch \
                 change (connect to it anew if it is meant)",
                current.epoch,
                hex::encode(old.bls.as_slice()),
                hex::encode(old.ecdsa.as_slice()),
                new.epoch,
                hex::encode(now.bls.as_slice()),
                hex::encode(now.ecdsa.as_slice()),
            ),
        });
    }
    if current.domain != new.domain {
        return Err(ClientError::Disagreement {
            what: "domain",
            detail: format!(
                "the network's domain was {:?} at epoch {}, the nodes now report {:?}",
                current.domain, current.epoch, new.domain
            ),
        });
    }
    Ok(())
}

fn read_network_file(path: &std::path::Path) -> Result<NetworkFile, ClientError> {
    let bad = |reason: String| ClientError::NetworkFile {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    NetworkFile::parse(&text).map_err(|e| bad(e.to_string()))
}

/// The client's connections to nodes before they are attested: TLS to any node certificate,
/// whose key each handshake then compares with the attested identity key (`tls_info`).
fn http_client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    node_http_client(lit_api::tls::NodeKeyVerifier::any_node(), timeout, true)
}

/// An HTTPS client whose server certificates `verifier` checks (see [`lit_api::tls`]).
fn node_http_client(
    verifier: Arc<lit_api::tls::NodeKeyVerifier>,
    timeout: Duration,
    tls_info: bool,
) -> Result<reqwest::Client, ClientError> {
    let tls = lit_api::tls::client_config(verifier, None)
        .map_err(|e| ClientError::Config(format!("TLS: {e}")))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .tls_info(tls_info)
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))
}

/// Refuses a node URL that is not `https://` (unless plain HTTP was asked for, benchmarks):
/// a plain-HTTP URL is what a proxy that strips TLS would hand out.
pub(crate) fn check_scheme(url: &str, plaintext: bool) -> Result<(), String> {
    if url.starts_with("https://") || (plaintext && url.starts_with("http://")) {
        return Ok(());
    }
    Err(format!(
        "{url} is not an https:// URL: nodes serve attested TLS, and a client that spoke plain \
         HTTP to them would let anyone on the path read and change its requests (a proxy that \
         strips TLS)"
    ))
}

pub(crate) fn endpoint(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// One node's handshake, checked: API version, pinned identity key, attestation bound to the
/// identity key, the challenge and the epoch, a key set consistent with the rest, and (when it
/// lists the members) a member list that is well-formed, names the node as it presented itself
/// and holds exactly the key set's parties.
async fn handshake(
    http: &reqwest::Client,
    url: &str,
    pinned: Option<&NetworkNode>,
    verifier: &Verifier,
) -> Result<Answer, NodeFailureReason> {
    let nonce = verifier.issue_nonce();
    let started = Instant::now();
    let body = serde_json::to_vec(&HandshakeRequest {
        challenge: Bytes32(nonce.0),
    })
    .map_err(|e| NodeFailureReason::BadResponse(format!("encoding the request: {e}")))?;
    let request = http
        .post(endpoint(url, paths::HANDSHAKE))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    let (response, tls_key): (HandshakeResponse, _) = read_json_tls(request).await?;
    let latency = started.elapsed();
    let inconsistent = |m: String| NodeFailureReason::Inconsistent(m);
    if response.api_version != API_VERSION {
        return Err(inconsistent(format!(
            "API version {} (expected {API_VERSION})",
            response.api_version
        )));
    }
    let identity_key = response.node.identity_key.0.clone();
    if let Some(pinned) = pinned {
        if identity_key != pinned.identity_key.0 {
            return Err(NodeFailureReason::IdentityMismatch {
                expected: hex::encode(pinned.identity_key.0),
                got: hex::encode(&identity_key),
            });
        }
    }

    let evidence = response
        .attestation
        .decode()
        .map_err(NodeFailureReason::Attestation)?;
    // the report covers the whole answer: a proxy that changed anything in it (the network
    // keys, the members, the node's keys) or passed another node's attestation is refused here
    let binding = Binding {
        context: response.attested_digest().to_vec(),
        ..Binding::new(&identity_key, nonce, response.epoch)
    };
    let verified = verifier.verify(&evidence, &binding).map_err(|e| {
        NodeFailureReason::Attestation(format!(
            "{e} (the attestation covers the node's identity key, this handshake's challenge, \
             the epoch and the whole answer: network keys, members and the node's keys; an \
             answer changed on the way is refused)"
        ))
    })?;
    // the connection must end in the attested enclave: its TLS key is the identity key (an
    // https URL; plain HTTP gets here only with `plaintext_http`, and has no key to compare)
    if url.starts_with("https://")
        && tls_key.as_ref().map(|k| k.as_slice()) != Some(&identity_key[..])
    {
        return Err(NodeFailureReason::TlsNotAttested {
            expected: hex::encode(&identity_key),
            got: tls_key.map(hex::encode).unwrap_or_default(),
        });
    }

    let key_set = PublicKeySet::from_bytes(response.network_keys.bls_key_set.as_slice())
        .map_err(|e| inconsistent(format!("BLS key set: {e}")))?;
    if key_set.public_key().to_bytes().as_slice() != response.network_keys.bls.as_slice() {
        return Err(inconsistent(
            "the BLS key set's public key is not the network BLS key".into(),
        ));
    }
    if key_set.threshold() != response.threshold as usize {
        return Err(inconsistent(format!(
            "threshold {} but the key set's is {}",
            response.threshold,
            key_set.threshold()
        )));
    }
    if key_set.participants().count() != response.node_count as usize {
        return Err(inconsistent(format!(
            "node count {} but the key set has {} participants",
            response.node_count,
            key_set.participants().count()
        )));
    }
    let party =
        PartyId::new(response.node.party_id).ok_or_else(|| inconsistent("party id 0".into()))?;
    key_set
        .public_key_share(party)
        .map_err(|_| inconsistent(format!("party {party} is not in the key set")))?;
    if !response.members.is_empty() {
        membership::check_own_list(&response, &key_set).map_err(inconsistent)?;
    }
    let seal_key = response.node.seal_key.0;
    let info = NodeInfo {
        party_id: response.node.party_id,
        url: url.to_string(),
        announced_url: response.node.url.clone(),
        identity_key,
        seal_key,
        epoch: response.epoch,
        attestation: response.attestation.kind,
        hardware: verified.is_hardware(),
        latency,
    };
    Ok(Answer {
        info,
        response,
        key_set,
    })
}

/// Values reported by nodes, grouped: `Err` naming each value and its nodes when they differ.
pub(crate) fn agree<T: Ord + std::fmt::Display>(
    what: &'static str,
    reports: impl IntoIterator<Item = (String, T)>,
) -> Result<(), ClientError> {
    let mut groups: BTreeMap<T, Vec<String>> = BTreeMap::new();
    for (node, value) in reports {
        groups.entry(value).or_default().push(node);
    }
    if groups.len() <= 1 {
        return Ok(());
    }
    let detail = groups
        .iter()
        .map(|(v, nodes)| format!("{v} from nodes {}", nodes.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    Err(ClientError::Disagreement { what, detail })
}

/// Refuses answering nodes that disagree about the network, naming them.
fn check_agreement(answers: &[Answer]) -> Result<(), ClientError> {
    let node = |a: &Answer| format!("{} ({})", a.info.party_id, a.info.url);
    let each = |value: fn(&HandshakeResponse) -> String| {
        answers.iter().map(move |a| (node(a), value(&a.response)))
    };
    agree("epoch", answers.iter().map(|a| (node(a), a.response.epoch)))?;
    agree("domain", each(|r| format!("{:?}", r.domain)))?;
    agree(
        "threshold",
        answers.iter().map(|a| (node(a), a.response.threshold)),
    )?;
    agree(
        "node count",
        answers.iter().map(|a| (node(a), a.response.node_count)),
    )?;
    agree("members", each(|r| membership::describe(&r.members)))?;
    agree(
        "network keys",
        each(|r| {
            let k = &r.network_keys;
            format!(
                "BLS {} / ECDSA {} / key set {}",
                short_hex(k.bls.as_slice()),
                short_hex(k.ecdsa.as_slice()),
                short_hex(k.bls_key_set.as_slice())
            )
        }),
    )?;
    let mut ids: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for a in answers {
        ids.entry(a.info.party_id)
            .or_default()
            .push(a.info.url.clone());
    }
    if let Some((id, urls)) = ids.iter().find(|(_, urls)| urls.len() > 1) {
        return Err(ClientError::Disagreement {
            what: "party ids",
            detail: format!("party id {id} is claimed by {}", urls.join(", ")),
        });
    }
    Ok(())
}

/// A short fingerprint of bytes for messages: the first 8 bytes of their SHA-256.
pub(crate) fn short_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    hex::encode(digest.get(..8).unwrap_or_default())
}

/// Fisher–Yates with the operating system's randomness.
pub(crate) fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = (OsRng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// `POST`s JSON and reads a JSON answer or the error envelope.
pub(crate) async fn post_json<Req: Serialize, Resp: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    body: &Req,
) -> Result<Resp, NodeFailureReason> {
    post_json_timeout(http, url, body, None).await
}

/// [`post_json`] with this request's own timeout instead of the client's (`None`: the
/// client's).
pub(crate) async fn post_json_timeout<Req: Serialize, Resp: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    body: &Req,
    timeout: Option<Duration>,
) -> Result<Resp, NodeFailureReason> {
    let body = serde_json::to_vec(body)
        .map_err(|e| NodeFailureReason::BadResponse(format!("encoding the request: {e}")))?;
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    read_json(request).await
}

/// `GET`s a JSON answer or the error envelope.
pub(crate) async fn get_json<Resp: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<Resp, NodeFailureReason> {
    read_json(http.get(url)).await
}

/// Sends `request` and reads a JSON answer (at most [`MAX_RESPONSE_BYTES`]) or the error
/// envelope.
async fn read_json<Resp: DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<Resp, NodeFailureReason> {
    read_json_tls(request).await.map(|(r, _)| r)
}

/// [`read_json`], and the Ed25519 key of the TLS certificate the answer came under (a client
/// built with `tls_info`; `None` over plain HTTP or for a certificate of another kind).
async fn read_json_tls<Resp: DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<(Resp, Option<[u8; 32]>), NodeFailureReason> {
    let mut response = request.send().await.map_err(transport_error)?;
    let tls_key = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .and_then(|cert| lit_api::tls::ed25519_key_of(cert).ok());
    let status = response.status();
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(NodeFailureReason::BadResponse(format!(
                "response larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map(|r| (r, tls_key))
            .map_err(|e| NodeFailureReason::BadResponse(format!("HTTP {status}: {e}")));
    }
    match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
        Ok(envelope) => Err(NodeFailureReason::Api {
            code: envelope.error.code,
            message: envelope.error.message,
        }),
        Err(_) => Err(NodeFailureReason::BadResponse(format!(
            "HTTP {status} without an error envelope"
        ))),
    }
}

fn transport_error(e: reqwest::Error) -> NodeFailureReason {
    if e.is_timeout() {
        return NodeFailureReason::Timeout;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    NodeFailureReason::Unreachable(text)
}
