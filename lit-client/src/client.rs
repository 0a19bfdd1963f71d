//! The connected client: handshake with every node, verify their attestations and agreement,
//! then encrypt locally and decrypt with shares from a threshold of nodes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lit_api::network::{AttestationMode, NetworkFile, NetworkNode};
use lit_api::session::{LitAbility, LitResource, ResourceAbilityRequest};
use lit_api::v1::{
    paths, AttestationKind, AuthSig, EncryptionSignRequest, EncryptionSignResponse,
    HandshakeRequest, HandshakeResponse, NetworkKeys,
};
use lit_api::{Bytes32, ErrorEnvelope, API_VERSION};
use lit_attest::{Binding, Evidence, Policy, Verifier};
use lit_crypto::bls::{PublicKey, PublicKeySet, SignatureShare};
use lit_crypto::identity::AccessControlIdentity;
use lit_crypto::seal::SealSecretKey;
use lit_crypto::PartyId;
use rand_core::{OsRng, RngCore};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::encrypted::{encrypt_to, EncryptedData};
use crate::error::{ClientError, NodeFailure, NodeFailureReason};
use crate::shares::{combine_and_decrypt, open_share, NodeRef, ShareCollector};
use crate::wallet::{Wallet, DEFAULT_AUTH_TTL};

/// The largest response body the client reads from a node.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The default timeout of one request to one node.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to find the nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// A network file (`lit_api::network::NetworkFile`): the nodes' URLs, with their identity
    /// keys pinned, and the attestation mode.
    NetworkFile(PathBuf),
    /// Bare node URLs: nothing is pinned, and attestation is checked with
    /// [`ConnectOptions::policy`] (strict `Policy::default()` when none is given).
    Urls(Vec<String>),
}

/// Options of [`LitClient::connect_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The attestation policy. `None`: `Policy::development()` for a network file that says
    /// `"attestation": "simulated"`, the strict `Policy::default()` otherwise.
    pub policy: Option<Policy>,
    /// The timeout of one request to one node.
    pub request_timeout: Duration,
    /// How long the `AuthSig`s made for decryption are valid.
    pub auth_ttl: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            policy: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            auth_ttl: DEFAULT_AUTH_TTL,
        }
    }
}

impl ConnectOptions {
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

/// A client connected to a Lit network.
#[derive(Debug)]
pub struct LitClient {
    bootstrap: Bootstrap,
    pub(crate) http: reqwest::Client,
    pub(crate) nodes: Vec<NodeInfo>,
    failures: Vec<NodeFailure>,
    pub(crate) epoch: u64,
    pub(crate) threshold: usize,
    node_count: u32,
    pub(crate) network_keys: NetworkKeys,
    domain: String,
    key_set: Arc<PublicKeySet>,
    pub(crate) options: ConnectOptions,
    /// Nodes that recently failed for themselves (unreachable, bad answers), with when: signing
    /// groups avoid them for a while.
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
    /// disagree on the epoch, threshold, node count or network keys
    /// ([`ClientError::Disagreement`]); and requires at least `T` healthy nodes
    /// ([`ClientError::TooFewNodes`], naming every failed node). Nodes that failed are kept
    /// out and reported by [`LitClient::handshake_failures`].
    pub async fn connect_with(
        bootstrap: Bootstrap,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        let (targets, file_policy, file_threshold, file_domain) = match &bootstrap {
            Bootstrap::NetworkFile(path) => {
                let file = read_network_file(path)?;
                let policy = match file.attestation {
                    AttestationMode::Simulated => Policy::development(),
                    AttestationMode::SevSnp => Policy::default(),
                };
                let targets: Vec<(String, Option<NetworkNode>)> = file
                    .nodes
                    .iter()
                    .map(|n| (n.url.clone(), Some(n.clone())))
                    .collect();
                (
                    targets,
                    policy,
                    Some(file.threshold as usize),
                    Some(file.domain()),
                )
            }
            Bootstrap::Urls(urls) => (
                urls.iter().map(|u| (u.clone(), None)).collect(),
                Policy::default(),
                None,
                None,
            ),
        };
        if targets.is_empty() {
            return Err(ClientError::Config("no nodes to connect to".into()));
        }
        let policy = options.policy.clone().unwrap_or(file_policy);
        let http = http_client(options.request_timeout)?;
        let verifier = Arc::new(Verifier::new(policy));

        let mut set = JoinSet::new();
        for (index, (url, pinned)) in targets.iter().cloned().enumerate() {
            let http = http.clone();
            let verifier = verifier.clone();
            set.spawn(async move {
                let party_id = pinned.as_ref().map(|p| p.party_id);
                let result = handshake(&http, &url, pinned.as_ref(), &verifier).await;
                (index, url, party_id, result)
            });
        }
        let mut answers = Vec::new();
        let mut failures = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((index, _, _, Ok(ok))) => answers.push((index, ok)),
                Ok((index, url, party_id, Err(reason))) => failures.push((
                    index,
                    NodeFailure {
                        party_id,
                        url,
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
        let answers: Vec<(NodeInfo, HandshakeResponse, PublicKeySet)> =
            answers.into_iter().map(|(_, a)| a).collect();
        let failures: Vec<NodeFailure> = failures.into_iter().map(|(_, f)| f).collect();

        let Some((_, first, first_set)) = answers.first() else {
            return Err(ClientError::TooFewNodes {
                needed: file_threshold.unwrap_or(1),
                healthy: 0,
                failures,
            });
        };
        check_agreement(&answers)?;
        let threshold = first.threshold as usize;
        if answers.len() < threshold {
            return Err(ClientError::TooFewNodes {
                needed: threshold,
                healthy: answers.len(),
                failures,
            });
        }
        if let Some(domain) = file_domain.filter(|d| *d != first.domain) {
            return Err(ClientError::Disagreement {
                what: "domain",
                detail: format!(
                    "the network file names {domain:?}, the nodes {:?}",
                    first.domain
                ),
            });
        }
        let domain = first.domain.clone();
        let key_set = Arc::new(first_set.clone());
        Ok(Self {
            domain,
            bootstrap,
            http,
            epoch: first.epoch,
            threshold,
            node_count: first.node_count,
            network_keys: first.network_keys.clone(),
            key_set,
            nodes: answers.into_iter().map(|(info, _, _)| info).collect(),
            failures,
            options,
            suspects: Default::default(),
        })
    }

    /// Handshakes again with the same bootstrap and options, e.g. after a decryption failed
    /// because the network moved to a new epoch ([`ClientError::epoch_changed`]). On error the
    /// client is left as it was.
    pub async fn refresh(&mut self) -> Result<(), ClientError> {
        *self = Self::connect_with(self.bootstrap.clone(), self.options.clone()).await?;
        Ok(())
    }

    /// The current epoch all healthy nodes agree on.
    pub fn epoch(&self) -> u64 {
        self.epoch
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
            .map_err(|e| ClientError::Config(format!("session: {e}")))
    }

    /// The number of shares needed to decrypt.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The number of nodes in the epoch.
    pub fn node_count(&self) -> u32 {
        self.node_count
    }

    /// The nodes that passed the handshake, in bootstrap order.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// The nodes that failed the handshake, and why.
    pub fn handshake_failures(&self) -> &[NodeFailure] {
        &self.failures
    }

    /// The network's BLS public key (what data is encrypted to).
    pub fn network_public_key(&self) -> PublicKey {
        self.key_set.public_key()
    }

    /// The network's BLS public key set (verifies each node's share).
    pub fn key_set(&self) -> &PublicKeySet {
        &self.key_set
    }

    /// The network keys as the nodes reported them.
    pub fn network_keys(&self) -> &NetworkKeys {
        &self.network_keys
    }

    /// Encrypts `plaintext` under the access control conditions `conditions`, locally, to the
    /// network key. Refuses conditions `lit_api::conditions::parse` refuses.
    pub fn encrypt(
        &self,
        conditions: &serde_json::Value,
        plaintext: &[u8],
    ) -> Result<EncryptedData, ClientError> {
        encrypt_to(&self.key_set.public_key(), conditions, plaintext)
    }

    /// Decrypts: asks `T` nodes (in random order, concurrently, each with a fresh ephemeral seal
    /// key) for their share of the decryption key, proving the wallet's address with a fresh
    /// `AuthSig`; opens and verifies each share against the key set; asks the next unused node
    /// whenever one fails; combines `T` verified shares and decrypts, checking the plaintext
    /// against its hash.
    ///
    /// Fails with [`ClientError::ConditionsNotMet`] when so many nodes refused with
    /// `conditions_not_met` that `T` cannot be reached, [`ClientError::TooFewShares`] when too
    /// few nodes answered with a valid share otherwise; both name every failed node and why.
    pub async fn decrypt(
        &self,
        data: &EncryptedData,
        wallet: &Wallet,
    ) -> Result<Vec<u8>, ClientError> {
        let identity = data.identity()?;
        let ciphertext = data.ciphertext(Some(&self.key_set.public_key()))?;
        // a session for exactly this data; each node gets its own signature
        let resource = LitResource::decryption_of(&identity);
        let grant =
            ResourceAbilityRequest::new(resource, LitAbility::AccessControlConditionDecryption)
                .map_err(|e| ClientError::Config(format!("session: {e}")))?;
        let session = self.session(wallet, vec![grant], self.options.auth_ttl)?;
        let now = SystemTime::now();
        let auth = self
            .nodes
            .iter()
            .map(|n| {
                session
                    .sign_for_node(&n.url, now)
                    .map(|sig| (n.url.clone(), AuthSig::from(sig)))
                    .map_err(|e| ClientError::Config(format!("session: {e}")))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let mut order: Vec<NodeRef> = self
            .nodes
            .iter()
            .map(|n| NodeRef {
                party_id: n.party_id,
                url: n.url.clone(),
            })
            .collect();
        shuffle(&mut order);
        let request = Arc::new(ShareRequest {
            epoch: self.epoch,
            conditions: data.access_control_conditions.clone(),
            data_hash: data.data_to_encrypt_hash,
            auth,
            identity,
            key_set: self.key_set.clone(),
        });
        let shares = collect_shares(ShareCollector::new(self.threshold, order), |node| {
            let http = self.http.clone();
            let request = request.clone();
            async move { request.ask(&http, &node).await }
        })
        .await?;
        let plaintext = combine_and_decrypt(&self.key_set, &identity, &ciphertext, &shares)?;
        Ok(plaintext.to_vec())
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
    conditions: serde_json::Value,
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
            access_control_conditions: self.conditions.clone(),
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

fn read_network_file(path: &std::path::Path) -> Result<NetworkFile, ClientError> {
    let bad = |reason: String| ClientError::NetworkFile {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    NetworkFile::parse(&text).map_err(|e| bad(e.to_string()))
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))
}

pub(crate) fn endpoint(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// One node's handshake, checked: API version, pinned identity key, attestation bound to the
/// identity key, the challenge and the epoch, and a key set consistent with the rest.
async fn handshake(
    http: &reqwest::Client,
    url: &str,
    pinned: Option<&NetworkNode>,
    verifier: &Verifier,
) -> Result<(NodeInfo, HandshakeResponse, PublicKeySet), NodeFailureReason> {
    let nonce = verifier.issue_nonce();
    let started = Instant::now();
    let response: HandshakeResponse = post_json(
        http,
        &endpoint(url, paths::HANDSHAKE),
        &HandshakeRequest {
            challenge: Bytes32(nonce.0),
        },
    )
    .await?;
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

    let evidence = std::str::from_utf8(response.attestation.evidence.as_slice())
        .map_err(|_| NodeFailureReason::Attestation("evidence is not UTF-8".into()))
        .and_then(|s| {
            Evidence::from_json(s)
                .map_err(|e| NodeFailureReason::Attestation(format!("evidence: {e}")))
        })?;
    let hardware = evidence.is_hardware();
    let claims_hardware = response.attestation.kind == AttestationKind::SevSnp;
    if hardware != claims_hardware {
        return Err(NodeFailureReason::Attestation(format!(
            "attestation kind {:?} does not match the evidence",
            response.attestation.kind
        )));
    }
    let binding = Binding::new(&identity_key, nonce, response.epoch);
    let verified = verifier
        .verify(&evidence, &binding)
        .map_err(|e| NodeFailureReason::Attestation(e.to_string()))?;

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
    Ok((info, response, key_set))
}

/// Refuses answering nodes that disagree about the network, naming them.
fn check_agreement(
    answers: &[(NodeInfo, HandshakeResponse, PublicKeySet)],
) -> Result<(), ClientError> {
    fn differ<T: Ord + std::fmt::Display>(
        what: &'static str,
        answers: &[(NodeInfo, HandshakeResponse, PublicKeySet)],
        value: impl Fn(&HandshakeResponse) -> T,
    ) -> Result<(), ClientError> {
        let mut groups: BTreeMap<T, Vec<String>> = BTreeMap::new();
        for (info, response, _) in answers {
            groups
                .entry(value(response))
                .or_default()
                .push(format!("{} ({})", info.party_id, info.url));
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
    differ("epoch", answers, |r| r.epoch)?;
    differ("domain", answers, |r| r.domain.clone())?;
    differ("threshold", answers, |r| r.threshold)?;
    differ("node count", answers, |r| r.node_count)?;
    differ("network keys", answers, |r| {
        let k = &r.network_keys;
        format!(
            "BLS {} / ECDSA {} / key set {}",
            short_hex(k.bls.as_slice()),
            short_hex(k.ecdsa.as_slice()),
            short_hex(k.bls_key_set.as_slice())
        )
    })?;
    let mut ids: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (info, _, _) in answers {
        ids.entry(info.party_id).or_default().push(info.url.clone());
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
fn short_hex(bytes: &[u8]) -> String {
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
    let mut response = request.send().await.map_err(transport_error)?;
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
