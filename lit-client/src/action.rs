//! Lit Actions run by the network: upload code to the nodes' action stores, and execute an
//! action on a group of exactly `T` nodes, which run it together; the client checks that their
//! answers agree and combines the signatures the action made.
//!
//! [`LitClient::execute_js`] sends the same [`ExecuteRequest`] (with its own sealing key per
//! node) to every node of a group, waits for all of them, and returns an [`ExecuteJsResult`]:
//!
//! * the response given to `Lit.Actions.setResponse`, as [`ActionResponse::Agreed`] when every
//!   node of the group gave the same one, otherwise [`ActionResponse::Divergent`] with each
//!   node's (this is *not* an error of `execute_js`: the caller decides, e.g. with
//!   [`ExecuteJsResult::agreed_response`]);
//! * the logs of every node, and of the first one ([`ExecuteJsResult::logs`]);
//! * the signatures made with `Lit.Actions.signEcdsa`, by `sigName`: every node's share is
//!   opened with the key it was sealed to, all nodes must agree on the PKP key, its key id and
//!   the digest, the key must be derived from the network's root key with that key id, and the
//!   combined signature must verify and recover to that key;
//! * what the action used on each node.
//!
//! Failures: when every node of the group fails, [`ClientError::NodesFailed`] names each with
//! its reason (the node's message verbatim, e.g. `refused (action_limit): …`); when the action
//! ran on some nodes but failed on others, [`ClientError::ActionIncomplete`]. Another group is
//! tried (up to [`SIGN_ATTEMPTS`] groups, without the nodes that failed for themselves) only
//! when no node of the group got to run the action: every node was unreachable or answered
//! `not_ready` or `rate_limited`. When nodes answered `wrong_epoch` and none ran it, the network
//! moved to another epoch: the client handshakes again and runs the action once more, in the new
//! epoch. An action that threw (`action_failed`), hit a limit (`action_limit`), was refused
//! (`not_permitted`, `invalid_auth`, …) or may have run (a timed out node, or some nodes of the
//! group) is never run again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use futures_util::stream::{FuturesUnordered, StreamExt};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use lit_api::session::{LitAbility, LitResource, ResourceAbilityRequest, ResourceId};
use lit_api::v1::{
    action_share_aad, paths, ActionSignatureShare, ActionUploadRequest, ActionUploadResponse,
    ActionUsage, ExecuteRequest, ExecuteResponse, PkpAuth, ACTION_SHARE_SEAL_INFO,
};
use lit_api::{ActionId, Bytes32, ErrorCode};
use lit_crypto::ecdsa::{
    combine, pkp_public_key, MessageDigest, RecoverableSignature, SignatureShare, SigningContext,
};
use lit_crypto::eth::Address;
use lit_crypto::seal::SealSecretKey;
use rand_core::{OsRng, RngCore};
use serde_json::{Map, Value};

use crate::client::{endpoint, post_json, post_json_timeout, EpochView, LitClient};
use crate::error::{ClientError, NodeFailure, NodeFailureReason};
use crate::pkp::SIGN_ATTEMPTS;
use crate::session::Session;

/// The least time the client waits for one node's answer to `/v1/execute` (the client's
/// request timeout applies when it is longer). Nodes end actions at their time limit (30 s by
/// default) and answer with `action_limit`; this leaves room for that.
pub const DEFAULT_EXECUTE_TIMEOUT: Duration = Duration::from_secs(60);

/// Who runs an action: [`LitClient::execute_js`]'s `Lit.Auth`. `Debug` does not print
/// credentials.
#[derive(Clone)]
#[non_exhaustive]
pub enum ActionAuth<'a> {
    /// No auth: an anonymous caller (the action may still sign with PKPs that permit the
    /// action itself).
    Anonymous,
    /// The same proof for every node: a wallet's `AuthSig` or an auth method.
    Fixed(PkpAuth),
    /// A session: a fresh session signature is made for each node (the session should grant
    /// [`LitAbility::LitActionExecution`] on the action, see [`action_execution_grant`]).
    Session(&'a Session),
    /// A wallet: the client makes a session granting the execution of this action and the
    /// [`ExecuteJs::grant`]s (what the action may sign or decrypt for the wallet).
    Wallet(&'a crate::Wallet),
}

impl ActionAuth<'_> {
    /// The auth to send to the node at `url` (a session signs for each node).
    fn for_node(&self, url: &str) -> Result<Option<PkpAuth>, ClientError> {
        match self {
            ActionAuth::Anonymous => Ok(None),
            ActionAuth::Fixed(auth) => {
                crate::pkp::same_for_every_node(auth)?;
                Ok(Some(auth.clone()))
            }
            ActionAuth::Session(session) => session
                .sign_for_node(url, SystemTime::now())
                .map(|s| Some(PkpAuth::SessionSig(s)))
                .map_err(|e| ClientError::Config(format!("session: {e}"))),
            ActionAuth::Wallet(_) => Err(ClientError::Config(
                "a wallet caller needs its session first (LitClient::execute_js makes it)".into(),
            )),
        }
    }
}

impl std::fmt::Debug for ActionAuth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionAuth::Anonymous => f.write_str("Anonymous"),
            ActionAuth::Fixed(auth) => {
                let kind = match auth {
                    PkpAuth::AuthSig(a) => format!("AuthSig({})", a.address),
                    PkpAuth::AuthMethod(m) => format!("AuthMethod({})", m.auth_method_type),
                    PkpAuth::LitAction(_) => "LitAction".to_string(),
                    PkpAuth::SessionSig(s) => format!("SessionSig({})", s.address),
                };
                write!(f, "Fixed({kind}, <redacted>)")
            }
            ActionAuth::Session(s) => write!(f, "Session({})", s.authorized_address()),
            ActionAuth::Wallet(w) => write!(f, "Wallet({})", w.address()),
        }
    }
}

/// What to run with [`LitClient::execute_js`]: the code (inline or by id), its parameters and
/// the caller's auth.
///
/// ```
/// use lit_client::ExecuteJs;
/// use serde_json::json;
///
/// let run = ExecuteJs::code(r#"Lit.Actions.setResponse({response: "hi " + who});"#)
///     .param("who", "there")
///     .param("n", 3);
/// // the id nodes will report: the CIDv0 `ipfs add` gives the code
/// assert!(run.action_id().unwrap().starts_with("Qm"));
/// // code uploaded before runs by its id
/// let by_id = ExecuteJs::ipfs_id("QmNotAnId");
/// assert!(by_id.action_id().is_err());
/// ```
#[derive(Clone, Debug)]
pub struct ExecuteJs<'a> {
    code: Option<String>,
    ipfs_id: Option<String>,
    params: Map<String, Value>,
    auth: ActionAuth<'a>,
    grants: Vec<ResourceAbilityRequest>,
    timeout: Option<Duration>,
    headers: BTreeMap<String, String>,
}

impl<'a> ExecuteJs<'a> {
    /// Runs this JavaScript code (sent inline; the nodes report its CIDv0).
    pub fn code(code: impl Into<String>) -> Self {
        Self::new(Some(code.into()), None)
    }

    /// Runs the code the nodes stored under this id (IPFS CIDv0, see
    /// [`LitClient::upload_action`]).
    pub fn ipfs_id(cid: impl Into<String>) -> Self {
        Self::new(None, Some(cid.into()))
    }

    fn new(code: Option<String>, ipfs_id: Option<String>) -> Self {
        Self {
            code,
            ipfs_id,
            params: Map::new(),
            auth: ActionAuth::Anonymous,
            grants: Vec::new(),
            timeout: None,
            headers: BTreeMap::new(),
        }
    }

    /// All parameters at once (replacing those set before); the code sees them as `jsParams`
    /// and as globals.
    pub fn params(mut self, params: Map<String, Value>) -> Self {
        self.params = params;
        self
    }

    /// One parameter.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Runs as the holder of this proof (the same for every node).
    pub fn auth(mut self, auth: PkpAuth) -> Self {
        self.auth = ActionAuth::Fixed(auth);
        self
    }

    /// Runs under this session (a session signature made for each node).
    pub fn session(mut self, session: &'a Session) -> Self {
        self.auth = ActionAuth::Session(session);
        self
    }

    /// Runs for this wallet: the client makes a session (one wallet signature) granting the
    /// execution of this action and the [`ExecuteJs::grant`]s, and signs it for each node.
    pub fn wallet(mut self, wallet: &'a crate::Wallet) -> Self {
        self.auth = ActionAuth::Wallet(wallet);
        self
    }

    /// What the action may do for the wallet besides running (with [`ExecuteJs::wallet`]):
    /// e.g. [`crate::pkp_grant`] to sign with one of its PKPs, or decryption of one piece of
    /// data. Without a grant, the action signs only with PKPs that permit the action itself.
    pub fn grant(mut self, grant: ResourceAbilityRequest) -> Self {
        self.grants.push(grant);
        self
    }

    /// Runs anonymously (the default).
    pub fn anonymous(mut self) -> Self {
        self.auth = ActionAuth::Anonymous;
        self
    }

    /// How long to wait for each node's answer (default: the longer of the client's request
    /// timeout and [`DEFAULT_EXECUTE_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Passes a request header to the action, which reads it as `Lit.Headers[name]` (the name
    /// lower-cased, as HTTP names are case-insensitive). Only the headers given here reach the
    /// action; the nodes check them against [`lit_api::v1::check_action_headers`] (at most
    /// [`lit_api::v1::MAX_ACTION_HEADERS`], [`lit_api::v1::MAX_ACTION_HEADER_BYTES`] in all).
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.headers
            .insert(name.as_ref().to_ascii_lowercase(), value.into());
        self
    }

    /// The headers passed to the action.
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.headers
    }

    /// The parameters.
    pub fn js_params(&self) -> &Map<String, Value> {
        &self.params
    }

    /// The caller's auth.
    pub fn caller(&self) -> &ActionAuth<'a> {
        &self.auth
    }

    /// The action's id: the CIDv0 of the code, or the id given (checked to be a CIDv0).
    pub fn action_id(&self) -> Result<String, ClientError> {
        match (&self.code, &self.ipfs_id) {
            (Some(code), _) => Ok(ActionId::of(code.as_bytes()).to_string()),
            (None, Some(id)) => id
                .parse::<ActionId>()
                .map(|id| id.to_string())
                .map_err(|e| ClientError::Config(e.to_string())),
            (None, None) => Err(ClientError::Config("an action needs code or an id".into())),
        }
    }

    /// The auth to send to the node at `url`.
    fn auth_for(&self, url: &str) -> Result<Option<PkpAuth>, ClientError> {
        self.auth.for_node(url)
    }

    /// The request for one node of `group`.
    fn request(
        &self,
        epoch: u64,
        group: &[u32],
        request_id: Bytes32,
        auth: Option<PkpAuth>,
        client_public_key: Bytes32,
    ) -> ExecuteRequest {
        ExecuteRequest {
            epoch,
            code: self.code.clone(),
            ipfs_id: if self.code.is_some() {
                None
            } else {
                self.ipfs_id.clone()
            },
            js_params: self.params.clone(),
            auth,
            group: group.to_vec(),
            request_id,
            client_public_key,
            headers: self.headers.clone(),
        }
    }
}

/// The session grant to run Lit Actions: [`LitAbility::LitActionExecution`] on the action with
/// this id (an IPFS CIDv0), or on every action (`None`). Use it in
/// [`Session::from_wallet`] and run with [`ExecuteJs::session`].
pub fn action_execution_grant(
    ipfs_id: Option<&str>,
) -> Result<ResourceAbilityRequest, ClientError> {
    let id = match ipfs_id {
        Some(id) => ResourceId::Id(
            id.parse::<ActionId>()
                .map_err(|e| ClientError::Config(e.to_string()))?
                .to_string(),
        ),
        None => ResourceId::Any,
    };
    ResourceAbilityRequest::new(LitResource::LitAction(id), LitAbility::LitActionExecution)
        .map_err(|e| ClientError::Config(e.to_string()))
}

/// The response the nodes of the group gave `Lit.Actions.setResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionResponse {
    /// Every node gave this response (`None`: no node called `setResponse`).
    Agreed(Option<String>),
    /// The nodes' responses differ: each node's, by party id.
    Divergent(BTreeMap<u32, Option<String>>),
}

impl ActionResponse {
    /// [`ActionResponse::Agreed`] if every node's response is the same, else
    /// [`ActionResponse::Divergent`].
    pub fn from_nodes(responses: BTreeMap<u32, Option<String>>) -> Self {
        let mut distinct = responses.values();
        match distinct.next() {
            None => ActionResponse::Agreed(None),
            Some(first) if distinct.all(|r| r == first) => ActionResponse::Agreed(first.clone()),
            Some(_) => ActionResponse::Divergent(responses),
        }
    }

    /// The agreed response, or [`ClientError::Disagreement`] naming each node's response.
    pub fn agreed(&self) -> Result<Option<&str>, ClientError> {
        match self {
            ActionResponse::Agreed(r) => Ok(r.as_deref()),
            ActionResponse::Divergent(by_node) => Err(ClientError::Disagreement {
                what: "action response",
                detail: by_node
                    .iter()
                    .map(|(p, r)| match r {
                        Some(r) => format!("node {p}: {r:?}"),
                        None => format!("node {p}: no response"),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
        }
    }

    /// Whether the nodes' responses differ.
    pub fn is_divergent(&self) -> bool {
        matches!(self, ActionResponse::Divergent(_))
    }
}

/// A signature a Lit Action made with `Lit.Actions.signEcdsa`, combined and verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionSignature {
    /// The signature, low-`s`, with its recovery id; it recovers to `public_key`.
    pub signature: RecoverableSignature,
    /// The PKP's public key, SEC1 compressed (33 bytes).
    pub public_key: Vec<u8>,
    /// The PKP's key id (its key is the network root key tweaked by it).
    pub key_id: [u8; 32],
    /// The digest signed.
    pub digest: [u8; 32],
    /// The PKP's Ethereum address.
    pub eth_address: Address,
}

/// What [`LitClient::execute_js`] got from the group.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ExecuteJsResult {
    /// The action's id (IPFS CIDv0), as every node reported it.
    pub ipfs_id: String,
    /// The nodes that ran it (party ids, sorted).
    pub group: Vec<u32>,
    /// The response, agreed or divergent.
    pub response: ActionResponse,
    /// Each node's logs (`console.*`), by party id.
    pub logs: BTreeMap<u32, String>,
    /// The signatures, by `sigName`.
    pub signatures: BTreeMap<String, ActionSignature>,
    /// What the action used on each node, by party id.
    pub usage: BTreeMap<u32, ActionUsage>,
}

impl ExecuteJsResult {
    /// The logs of the first node of the group (the nodes run the same code, so they usually
    /// log the same; [`ExecuteJsResult::logs`] has each node's).
    pub fn logs(&self) -> &str {
        self.logs.values().next().map_or("", String::as_str)
    }

    /// The agreed response, or [`ClientError::Disagreement`] naming each node's.
    pub fn agreed_response(&self) -> Result<Option<&str>, ClientError> {
        self.response.agreed()
    }
}

/// What [`LitClient::upload_action`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActionUpload {
    /// The code's id (IPFS CIDv0), computed locally and confirmed by the nodes.
    pub ipfs_id: String,
    /// The code's size in bytes.
    pub size: u64,
    /// The nodes that stored it (or had it already), sorted.
    pub stored: Vec<u32>,
    /// The nodes that did not, and why.
    pub failures: Vec<NodeFailure>,
}

/// One node's signature share, opened.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OpenedShare {
    public_key: Vec<u8>,
    key_id: [u8; 32],
    digest: [u8; 32],
    share: SignatureShare,
}

/// What one node of the group answered, opened and checked.
#[derive(Debug)]
struct NodeRun {
    response: ExecuteResponse,
    shares: BTreeMap<String, OpenedShare>,
}

/// The context every answer of one execution is checked against.
#[derive(Clone, Debug)]
struct Execution {
    root: k256::AffinePoint,
    epoch: u64,
    request_id: Bytes32,
    ipfs_id: String,
    group: Vec<u32>,
}

/// One node's share of signature `sig_name`: the answer's share sealed to `seal_key` with
/// [`ACTION_SHARE_SEAL_INFO`] and [`action_share_aad`], a share of `party_id` made with a
/// presignature of exactly the execution `group`.
fn open_action_share(
    seal_key: &SealSecretKey,
    (party_id, epoch): (u32, u64),
    request_id: &Bytes32,
    group: &[u32],
    sig_name: &str,
    entry: &ActionSignatureShare,
) -> Result<OpenedShare, NodeFailureReason> {
    let invalid =
        |m: String| NodeFailureReason::InvalidShare(format!("signature {sig_name:?}: {m}"));
    let digest = entry.digest.0;
    let bytes = crate::shares::open_sealed(
        seal_key,
        &entry.share,
        ACTION_SHARE_SEAL_INFO,
        &action_share_aad(party_id, epoch, request_id, sig_name, &digest),
    )
    .map_err(|_| invalid("the sealed share does not open".into()))?;
    let share: SignatureShare =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("share: {e}")))?;
    if share.party.get() != party_id {
        return Err(invalid(format!("the share is party {}'s", share.party)));
    }
    let participants: Vec<u32> = share.participants.iter().map(|p| p.get()).collect();
    if participants != group {
        return Err(invalid(format!(
            "the share's presignature is of nodes {participants:?}, not of the group {group:?}"
        )));
    }
    Ok(OpenedShare {
        public_key: entry.public_key.0.clone(),
        key_id: entry.key_id.0,
        digest,
        share,
    })
}

/// Checks one node's answer (its party, epoch and action id) and opens its shares.
fn check_answer(
    exec: &Execution,
    seal_key: &SealSecretKey,
    party_id: u32,
    response: ExecuteResponse,
) -> Result<NodeRun, NodeFailureReason> {
    if response.party_id != party_id || response.epoch != exec.epoch {
        return Err(NodeFailureReason::BadResponse(format!(
            "answer labelled party {} epoch {}, expected party {party_id} epoch {}",
            response.party_id, response.epoch, exec.epoch
        )));
    }
    if response.ipfs_id != exec.ipfs_id {
        return Err(NodeFailureReason::BadResponse(format!(
            "ran action {} instead of {}",
            response.ipfs_id, exec.ipfs_id
        )));
    }
    let shares = response
        .signed
        .iter()
        .map(|(name, entry)| {
            open_action_share(
                seal_key,
                (party_id, exec.epoch),
                &exec.request_id,
                &exec.group,
                name,
                entry,
            )
            .map(|s| (name.clone(), s))
        })
        .collect::<Result<_, _>>()?;
    Ok(NodeRun { response, shares })
}

/// What a node says it signed: the PKP key, its key id, the digest.
type Signed<'a> = (&'a [u8], [u8; 32], [u8; 32]);

/// Combines each `sigName`'s shares from every node of the group into a verified signature.
fn combine_signatures(
    exec: &Execution,
    runs: &BTreeMap<u32, NodeRun>,
) -> Result<BTreeMap<String, ActionSignature>, ClientError> {
    let names: BTreeSet<&String> = runs.values().flat_map(|r| r.shares.keys()).collect();
    let mut out = BTreeMap::new();
    for name in names {
        let bad = |reason: String| ClientError::ActionSignature {
            sig_name: name.clone(),
            reason,
        };
        let held: BTreeMap<u32, &OpenedShare> = runs
            .iter()
            .filter_map(|(p, r)| r.shares.get(name).map(|s| (*p, s)))
            .collect();
        let missing: Vec<u32> = exec
            .group
            .iter()
            .copied()
            .filter(|p| !held.contains_key(p))
            .collect();
        if !missing.is_empty() {
            return Err(bad(format!(
                "only node(s) {:?} returned a share, node(s) {missing:?} did not (every node of \
                 the group must sign)",
                held.keys().collect::<Vec<_>>()
            )));
        }
        // every node must have signed the same digest with the same key
        let mut what: BTreeMap<Signed<'_>, Vec<u32>> = BTreeMap::new();
        for (p, s) in &held {
            what.entry((s.public_key.as_slice(), s.key_id, s.digest))
                .or_default()
                .push(*p);
        }
        if what.len() > 1 {
            return Err(bad(format!(
                "the nodes signed different things: {}",
                what.iter()
                    .map(|((key, id, digest), nodes)| format!(
                        "key {} (key id {}) digest {} from node(s) {nodes:?}",
                        hex::encode(key),
                        hex::encode(id),
                        hex::encode(digest)
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        let Some(((public_key, key_id, digest), _)) = what.into_iter().next() else {
            continue;
        };
        let derived = pkp_public_key(&exec.root, &key_id).map_err(|e| {
            bad(format!(
                "deriving the key of key id {}: {e}",
                hex::encode(key_id)
            ))
        })?;
        if derived.to_encoded_point(true).as_bytes() != public_key {
            return Err(bad(format!(
                "the nodes' key {} is not the network key derived with key id {}",
                hex::encode(public_key),
                hex::encode(key_id)
            )));
        }
        let context = SigningContext {
            root_public_key: exec.root,
            key_id: key_id.to_vec(),
            digest: MessageDigest::prehashed(digest),
        };
        let shares: Vec<SignatureShare> = held.values().map(|s| s.share.clone()).collect();
        let signature = combine(&context, &shares).map_err(|e| bad(format!("combining: {e}")))?;
        // `combine` verifies; recover once more against the key the nodes named
        if signature.recover(&context.digest).ok() != Some(derived) {
            return Err(bad(
                "the combined signature does not recover to the key".into()
            ));
        }
        let verifying = k256::ecdsa::VerifyingKey::from_affine(derived)
            .map_err(|_| bad("the key is the identity point".into()))?;
        out.insert(
            name.clone(),
            ActionSignature {
                signature,
                public_key: public_key.to_vec(),
                key_id,
                digest,
                eth_address: Address::from_public_key(&verifying),
            },
        );
    }
    Ok(out)
}

/// The result of a group whose every node answered and checked out.
fn assemble(
    exec: &Execution,
    runs: BTreeMap<u32, NodeRun>,
) -> Result<ExecuteJsResult, ClientError> {
    let signatures = combine_signatures(exec, &runs)?;
    let mut responses = BTreeMap::new();
    let mut logs = BTreeMap::new();
    let mut usage = BTreeMap::new();
    for (p, run) in runs {
        responses.insert(p, run.response.response);
        logs.insert(p, run.response.logs);
        usage.insert(p, run.response.usage);
    }
    Ok(ExecuteJsResult {
        ipfs_id: exec.ipfs_id.clone(),
        group: exec.group.clone(),
        response: ActionResponse::from_nodes(responses),
        logs,
        signatures,
        usage,
    })
}

/// Failed before the action could run at that node: it could not be reached, or refused with
/// `not_ready` or `rate_limited`. (Not `wrong_epoch`: another group of the same epoch would be
/// refused alike; [`LitClient::execute_js`] handshakes again instead.)
fn failed_before_running(reason: &NodeFailureReason) -> bool {
    match reason {
        NodeFailureReason::Unreachable(_) => true,
        NodeFailureReason::Api { code, .. } => {
            matches!(code, ErrorCode::NotReady | ErrorCode::RateLimited)
        }
        _ => false,
    }
}

/// What to do after one group answered.
#[derive(Debug)]
enum Round {
    /// Final: a result or an error.
    Done(Result<ExecuteJsResult, ClientError>),
    /// Nothing ran: try another group without `exclude` (`suspects`: nodes that failed for
    /// themselves).
    Retry {
        failures: Vec<NodeFailure>,
        exclude: Vec<u32>,
        suspects: Vec<u32>,
    },
}

/// One member's answer to `/v1/execute`, with the key its shares are sealed to.
#[derive(Debug)]
struct Answer {
    party: u32,
    url: String,
    seal_key: SealSecretKey,
    answer: Result<ExecuteResponse, NodeFailureReason>,
}

/// Decides a group's outcome from every member's answer.
fn finish_round(exec: &Execution, answers: Vec<Answer>) -> Round {
    let mut runs = BTreeMap::new();
    let mut failures = Vec::new();
    for Answer {
        party,
        url,
        seal_key,
        answer,
    } in answers
    {
        match answer.and_then(|r| check_answer(exec, &seal_key, party, r)) {
            Ok(run) => {
                runs.insert(party, run);
            }
            Err(reason) => failures.push(NodeFailure {
                party_id: Some(party),
                url,
                reason,
            }),
        }
    }
    failures.sort_by_key(|f| f.party_id);
    if failures.is_empty() {
        return Round::Done(assemble(exec, runs));
    }
    if !runs.is_empty() {
        return Round::Done(Err(ClientError::ActionIncomplete {
            ran: runs.keys().copied().collect(),
            failures,
        }));
    }
    if failures.iter().all(|f| failed_before_running(&f.reason)) {
        let suspects: Vec<u32> = failures
            .iter()
            .filter(|f| matches!(f.reason, NodeFailureReason::Unreachable(_)))
            .filter_map(|f| f.party_id)
            .collect();
        // without a node to blame, at least do not ask the same group again
        let exclude = if suspects.is_empty() {
            failures.iter().filter_map(|f| f.party_id).take(1).collect()
        } else {
            suspects.clone()
        };
        return Round::Retry {
            failures,
            exclude,
            suspects,
        };
    }
    Round::Done(Err(ClientError::NodesFailed { failures }))
}

impl LitClient {
    /// Runs a Lit Action on a group of exactly `T` nodes (a fresh random request id shared by
    /// the group, a fresh sealing key per node) and combines what they return: see the
    /// [module documentation](crate::action) for the checks, the outcome and when another
    /// group is tried.
    pub async fn execute_js(&self, run: ExecuteJs<'_>) -> Result<ExecuteJsResult, ClientError> {
        let ipfs_id = run.action_id()?;
        lit_api::v1::check_action_headers(&run.headers)
            .map_err(|e| ClientError::Config(format!("action headers: {e}")))?;
        let session;
        let run = match run.auth {
            ActionAuth::Wallet(wallet) => {
                let mut grants = vec![action_execution_grant(Some(&ipfs_id))?];
                grants.extend(run.grants.iter().cloned());
                session = self.session(wallet, grants, self.options.auth_ttl)?;
                ExecuteJs {
                    auth: ActionAuth::Session(&session),
                    ..run
                }
            }
            _ => run,
        };
        let root = self.root_key()?;
        let timeout = run
            .timeout
            .unwrap_or_else(|| self.options.request_timeout.max(DEFAULT_EXECUTE_TIMEOUT));
        self.with_epoch_retry("execute", |view| {
            self.execute_in(view, &run, &ipfs_id, root, timeout)
        })
        .await
    }

    async fn execute_in(
        &self,
        view: std::sync::Arc<EpochView>,
        run: &ExecuteJs<'_>,
        ipfs_id: &str,
        root: k256::AffinePoint,
        timeout: Duration,
    ) -> Result<ExecuteJsResult, ClientError> {
        let mut excluded: BTreeSet<u32> = BTreeSet::new();
        let mut failures: Vec<NodeFailure> = Vec::new();
        for _ in 0..SIGN_ATTEMPTS {
            let Some(group) = self.signing_group(&view, &excluded) else {
                break;
            };
            let ids: Vec<u32> = group.iter().map(|n| n.party_id).collect();
            let members: Vec<(u32, String)> =
                group.iter().map(|n| (n.party_id, n.url.clone())).collect();
            let down = self.unreachable_among(&members).await;
            if !down.is_empty() {
                for (party, url, reason) in down {
                    self.suspect(party);
                    excluded.insert(party);
                    failures.push(NodeFailure {
                        party_id: Some(party),
                        url,
                        reason,
                    });
                }
                continue;
            }
            let mut request_id = [0u8; 32];
            OsRng.fill_bytes(&mut request_id);
            let exec = Execution {
                root,
                epoch: view.epoch(),
                request_id: Bytes32(request_id),
                ipfs_id: ipfs_id.to_string(),
                group: ids.clone(),
            };
            let mut auths = Vec::with_capacity(group.len());
            for node in &group {
                auths.push(run.auth_for(&node.url)?);
            }
            let pending: FuturesUnordered<_> = group
                .iter()
                .zip(auths)
                .map(|(node, auth)| {
                    let (seal_key, seal_public) = SealSecretKey::generate(&mut OsRng);
                    let body = run.request(
                        view.epoch(),
                        &ids,
                        exec.request_id,
                        auth,
                        Bytes32(seal_public.to_bytes()),
                    );
                    let url = endpoint(&node.url, paths::EXECUTE);
                    let http = self.http_to(&view, &node.url);
                    let (party, base) = (node.party_id, node.url.clone());
                    async move {
                        let answer = post_json_timeout(&http, &url, &body, Some(timeout)).await;
                        Answer {
                            party,
                            url: base,
                            seal_key,
                            answer,
                        }
                    }
                })
                .collect();
            let answers: Vec<_> = pending.collect().await;
            match finish_round(&exec, answers) {
                Round::Done(Ok(result)) => return Ok(result),
                Round::Done(Err(e)) => return Err(with_earlier(e, failures)),
                Round::Retry {
                    failures: round,
                    exclude,
                    suspects,
                } => {
                    for p in suspects {
                        self.suspect(p);
                    }
                    excluded.extend(exclude);
                    failures.extend(round);
                }
            }
        }
        Err(ClientError::NodesFailed { failures })
    }

    /// Uploads action code to every healthy node's action store (concurrently), each node
    /// checking it against the CIDv0 computed here. Succeeds when at least `T` nodes stored it
    /// (or had it); the others are listed in [`ActionUpload::failures`]. Otherwise fails with
    /// [`ClientError::NodesFailed`] naming every node that did not store it.
    ///
    /// The upload is anonymous: nodes count it against the hourly quota all anonymous uploads
    /// share (`rate_limited` beyond it). [`Self::upload_action_as`] is counted as its caller.
    pub async fn upload_action(&self, code: &str) -> Result<ActionUpload, ClientError> {
        self.upload_action_as(code, ActionAuth::Anonymous).await
    }

    /// [`Self::upload_action`] as the caller `auth` proves, so that nodes count the upload
    /// against that caller's own quota. A session should grant
    /// [`LitAbility::LitActionExecution`] on the action (see [`action_execution_grant`]).
    pub async fn upload_action_as(
        &self,
        code: &str,
        auth: ActionAuth<'_>,
    ) -> Result<ActionUpload, ClientError> {
        let ipfs_id = ActionId::of(code.as_bytes()).to_string();
        let session;
        let auth = match auth {
            ActionAuth::Wallet(wallet) => {
                let grant = action_execution_grant(Some(&ipfs_id))?;
                session = self.session(wallet, vec![grant], self.options.auth_ttl)?;
                ActionAuth::Session(&session)
            }
            other => other,
        };
        self.with_epoch_retry("action upload", |view| {
            self.upload_in(view, code, &ipfs_id, &auth)
        })
        .await
    }

    async fn upload_in(
        &self,
        view: std::sync::Arc<EpochView>,
        code: &str,
        ipfs_id: &str,
        auth: &ActionAuth<'_>,
    ) -> Result<ActionUpload, ClientError> {
        let size = code.len() as u64;
        let nodes = view.nodes();
        let mut bodies = Vec::with_capacity(nodes.len());
        for node in nodes {
            bodies.push(ActionUploadRequest {
                code: code.to_string(),
                ipfs_id: Some(ipfs_id.to_string()),
                auth: auth.for_node(&node.url)?,
            });
        }
        let pending: FuturesUnordered<_> = nodes
            .iter()
            .zip(&bodies)
            .map(|(node, body)| {
                let url = endpoint(&node.url, paths::ACTION_UPLOAD);
                let http = self.http_to(&view, &node.url);
                async move {
                    let answer: Result<ActionUploadResponse, _> =
                        post_json(&http, &url, body).await;
                    let checked = answer.and_then(|r| {
                        if r.ipfs_id != ipfs_id || r.size != size {
                            Err(NodeFailureReason::BadResponse(format!(
                                "stored {} ({} bytes) instead of {ipfs_id} ({size} bytes)",
                                r.ipfs_id, r.size
                            )))
                        } else {
                            Ok(())
                        }
                    });
                    (node, checked)
                }
            })
            .collect();
        let answers: Vec<_> = pending.collect().await;
        let mut stored = Vec::new();
        let mut failures = Vec::new();
        for (node, answer) in answers {
            match answer {
                Ok(()) => stored.push(node.party_id),
                Err(reason) => failures.push(NodeFailure {
                    party_id: Some(node.party_id),
                    url: node.url.clone(),
                    reason,
                }),
            }
        }
        stored.sort_unstable();
        failures.sort_by_key(|f| f.party_id);
        if stored.len() < view.threshold() {
            return Err(ClientError::NodesFailed { failures });
        }
        Ok(ActionUpload {
            ipfs_id: ipfs_id.to_string(),
            size,
            stored,
            failures,
        })
    }
}

/// Adds the failures of earlier groups to a node error of the last one.
fn with_earlier(error: ClientError, mut earlier: Vec<NodeFailure>) -> ClientError {
    if earlier.is_empty() {
        return error;
    }
    match error {
        ClientError::NodesFailed { failures } => {
            earlier.extend(failures);
            ClientError::NodesFailed { failures: earlier }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Field as _;
    use lit_api::v1::{AuthMethod, SealedBox};
    use lit_api::Bytes;
    use lit_crypto::ecdsa::{
        sign_share, InMemoryUsedPresignatures, KeyShare, Presign, Presignature, TripleGeneration,
    };
    use lit_crypto::protocol::{Action as Step, PartyId, Protocol};
    use lit_crypto::seal::SealPublicKey;
    use sha3::Digest as _;

    // ---------------------------------------------------------------------------------------
    // a real threshold ECDSA key (trusted dealer) and presignatures made by cait-sith

    /// Runs the parties to completion (round robin, in-memory delivery).
    fn run<P: Protocol>(parties: Vec<(PartyId, P)>) -> BTreeMap<PartyId, P::Output> {
        let ids: Vec<PartyId> = parties.iter().map(|(p, _)| *p).collect();
        let mut parties: BTreeMap<PartyId, P> = parties.into_iter().collect();
        let mut out = BTreeMap::new();
        while out.len() < ids.len() {
            let mut queue = Vec::new();
            for id in &ids {
                if out.contains_key(id) {
                    continue;
                }
                loop {
                    match parties.get_mut(id).unwrap().poke().unwrap() {
                        Step::Wait => break,
                        Step::Send(msgs) => {
                            for m in msgs {
                                for to in ids.iter().filter(|to| *to != id) {
                                    if m.to.is_none() || m.to == Some(*to) {
                                        queue.push((*id, *to, m.bytes.clone()));
                                    }
                                }
                            }
                        }
                        Step::Done(o) => {
                            out.insert(*id, o);
                            break;
                        }
                    }
                }
            }
            for (from, to, bytes) in queue {
                if !out.contains_key(&to) {
                    parties.get_mut(&to).unwrap().message(from, &bytes).unwrap();
                }
            }
        }
        out
    }

    fn pid(p: u32) -> PartyId {
        PartyId::new(p).unwrap()
    }

    /// A 2-of-3 root key.
    struct Net {
        keys: BTreeMap<u32, KeyShare>,
        root: k256::AffinePoint,
    }

    fn net() -> Net {
        let ids: Vec<PartyId> = (1..=3).map(pid).collect();
        let secret = k256::Scalar::random(&mut OsRng);
        let (shares, commitment) =
            lit_crypto::shamir::deal::<_, k256::ProjectivePoint>(secret, 2, &ids, &mut OsRng)
                .unwrap();
        let keys: BTreeMap<u32, KeyShare> = shares
            .iter()
            .map(|s| (s.id.get(), KeyShare::new(s, commitment.clone()).unwrap()))
            .collect();
        let root = keys[&1].public_key();
        Net { keys, root }
    }

    /// A presignature of `group` (two triples, then presigning, all by the group).
    fn presignature(net: &Net, group: &[u32]) -> BTreeMap<u32, Presignature> {
        let ids: Vec<PartyId> = group.iter().map(|p| pid(*p)).collect();
        let mut label = [0u8; 16];
        OsRng.fill_bytes(&mut label);
        let triples = |tag: u8| {
            run(ids
                .iter()
                .map(|p| {
                    let l = [&label[..], &[tag]].concat();
                    (*p, TripleGeneration::new(&l, &ids, *p, 2).unwrap())
                })
                .collect())
        };
        let (mut t0, mut t1) = (triples(0), triples(1));
        let presigs = run(ids
            .iter()
            .map(|p| {
                let proto = Presign::new(
                    &label,
                    &ids,
                    &net.keys[&p.get()],
                    t0.remove(p).unwrap(),
                    t1.remove(p).unwrap(),
                )
                .unwrap();
                (*p, proto)
            })
            .collect());
        presigs.into_iter().map(|(p, s)| (p.get(), s)).collect()
    }

    /// What one node signed for one `sigName`.
    #[derive(Clone)]
    struct Signed {
        public_key: Vec<u8>,
        key_id: [u8; 32],
        digest: [u8; 32],
        share: SignatureShare,
    }

    /// Each group member's share of one signature with the PKP `key_id`; member `p` signs
    /// `digest_of(p)`.
    fn sign(
        net: &Net,
        group: &[u32],
        key_id: [u8; 32],
        digest_of: impl Fn(u32) -> [u8; 32],
    ) -> BTreeMap<u32, Signed> {
        let mut presig = presignature(net, group);
        group
            .iter()
            .map(|p| {
                let context = SigningContext {
                    root_public_key: net.root,
                    key_id: key_id.to_vec(),
                    digest: MessageDigest::prehashed(digest_of(*p)),
                };
                let public_key = context.public_key().unwrap().to_encoded_point(true);
                let share = sign_share(
                    &net.keys[p],
                    presig.remove(p).unwrap(),
                    &context,
                    &mut InMemoryUsedPresignatures::default(),
                )
                .unwrap();
                let signed = Signed {
                    public_key: public_key.as_bytes().to_vec(),
                    key_id,
                    digest: digest_of(*p),
                    share,
                };
                (*p, signed)
            })
            .collect()
    }

    /// `signed`'s share sealed to `to` as node `party` seals it.
    fn seal(
        exec: &Execution,
        party: u32,
        sig_name: &str,
        signed: &Signed,
        to: &SealPublicKey,
    ) -> ActionSignatureShare {
        let plain = serde_json::to_vec(&signed.share).unwrap();
        let aad = action_share_aad(
            party,
            exec.epoch,
            &exec.request_id,
            sig_name,
            &signed.digest,
        );
        let sealed = to
            .seal(ACTION_SHARE_SEAL_INFO, &aad, &plain, &mut OsRng)
            .unwrap();
        ActionSignatureShare {
            public_key: Bytes(signed.public_key.clone()),
            key_id: Bytes32(signed.key_id),
            digest: Bytes32(signed.digest),
            share: SealedBox {
                enc: Bytes(sealed.enc),
                ciphertext: Bytes(sealed.ciphertext),
            },
        }
    }

    fn exec(net: &Net, group: &[u32]) -> Execution {
        Execution {
            root: net.root,
            epoch: 7,
            request_id: Bytes32([5; 32]),
            ipfs_id: ActionId::of(b"code").to_string(),
            group: group.to_vec(),
        }
    }

    /// Node `party`'s successful answer: `response`, and `signed` sealed to a fresh client key.
    fn answer(
        exec: &Execution,
        party: u32,
        response: Option<&str>,
        signed: &[(&str, &Signed)],
    ) -> Answer {
        let (seal_key, public) = SealSecretKey::generate(&mut OsRng);
        let signed = signed
            .iter()
            .map(|(name, s)| (name.to_string(), seal(exec, party, name, s, &public)))
            .collect();
        Answer {
            party,
            url: format!("http://node{party}"),
            seal_key,
            answer: Ok(ExecuteResponse {
                party_id: party,
                epoch: exec.epoch,
                ipfs_id: exec.ipfs_id.clone(),
                response: response.map(str::to_string),
                logs: format!("hello from {party}\n"),
                signed,
                usage: ActionUsage {
                    engine: "quickjs".into(),
                    signatures: 1,
                    ..ActionUsage::default()
                },
            }),
        }
    }

    fn failed(party: u32, reason: NodeFailureReason) -> Answer {
        Answer {
            party,
            url: format!("http://node{party}"),
            seal_key: SealSecretKey::generate(&mut OsRng).0,
            answer: Err(reason),
        }
    }

    fn api(code: ErrorCode, message: &str) -> NodeFailureReason {
        NodeFailureReason::Api {
            code,
            message: message.into(),
        }
    }

    fn done(round: Round) -> Result<ExecuteJsResult, ClientError> {
        match round {
            Round::Done(r) => r,
            Round::Retry { .. } => panic!("retried: {round:?}"),
        }
    }

    /// Recovers the signer with libsecp256k1 (independent of k256 and of our code).
    fn libsecp_signer(sig: &RecoverableSignature, digest: &[u8; 32]) -> Address {
        let secp = secp256k1::Secp256k1::verification_only();
        let recid = secp256k1::ecdsa::RecoveryId::try_from(i32::from(sig.recovery_id)).unwrap();
        let rsig =
            secp256k1::ecdsa::RecoverableSignature::from_compact(&sig.to_bytes()[..64], recid)
                .unwrap();
        let msg = secp256k1::Message::from_digest(*digest);
        let key = secp.recover_ecdsa(&msg, &rsig).unwrap();
        // libsecp256k1 refuses high s: this checks the normalisation too
        secp.verify_ecdsa(&msg, &rsig.to_standard(), &key).unwrap();
        Address::from_public_key(
            &k256::ecdsa::VerifyingKey::from_sec1_bytes(&key.serialize_uncompressed()).unwrap(),
        )
    }

    // ---------------------------------------------------------------------------------------
    // combining and checking

    #[test]
    fn a_group_that_agrees_gives_the_response_logs_usage_and_a_verified_signature() {
        let net = net();
        let group = [1, 3];
        let exec = exec(&net, &group);
        let digest: [u8; 32] = sha3::Keccak256::digest(b"sign me").into();
        let shares = sign(&net, &group, [9; 32], |_| digest);
        let answers = vec![
            answer(&exec, 3, Some("ok"), &[("sig", &shares[&3])]),
            answer(&exec, 1, Some("ok"), &[("sig", &shares[&1])]),
        ];
        let result = done(finish_round(&exec, answers)).unwrap();
        assert_eq!(result.response, ActionResponse::Agreed(Some("ok".into())));
        assert_eq!(result.agreed_response().unwrap(), Some("ok"));
        assert_eq!(result.group, vec![1, 3]);
        assert_eq!(result.ipfs_id, exec.ipfs_id);
        assert_eq!(result.logs(), "hello from 1\n");
        assert_eq!(result.logs[&3], "hello from 3\n");
        assert_eq!(result.usage.len(), 2);
        let sig = &result.signatures["sig"];
        let pkp = pkp_public_key(&net.root, &[9; 32]).unwrap();
        assert_eq!(sig.public_key, pkp.to_encoded_point(true).as_bytes());
        assert_eq!((sig.key_id, sig.digest), ([9; 32], digest));
        // the address is the PKP's, and libsecp256k1 recovers it from the signature
        let expected =
            Address::from_public_key(&k256::ecdsa::VerifyingKey::from_affine(pkp).unwrap());
        assert_eq!(sig.eth_address, expected);
        assert_eq!(libsecp_signer(&sig.signature, &digest), expected);
    }

    #[test]
    fn a_share_that_does_not_open_or_belongs_to_another_party_or_group_is_refused() {
        let net = net();
        let group = [1, 2];
        let exec = exec(&net, &group);
        let shares = sign(&net, &group, [1; 32], |_| [2; 32]);
        let (key, public) = SealSecretKey::generate(&mut OsRng);
        let open = |party: u32, name: &str, entry: &ActionSignatureShare, group: &[u32]| {
            open_action_share(&key, (party, 7), &exec.request_id, group, name, entry)
        };
        let good = seal(&exec, 1, "sig", &shares[&1], &public);
        assert_eq!(
            open(1, "sig", &good, &group).unwrap().share,
            shares[&1].share
        );
        // the aad binds the party, the sigName, the digest, the request and the epoch
        for (party, name, entry) in [
            (2, "sig", good.clone()),
            (1, "other", good.clone()),
            (
                1,
                "sig",
                ActionSignatureShare {
                    digest: Bytes32([3; 32]),
                    ..good.clone()
                },
            ),
        ] {
            let err = open(party, name, &entry, &group).unwrap_err();
            assert!(err.to_string().contains("does not open"), "{err}");
        }
        let other_request = Execution {
            request_id: Bytes32([6; 32]),
            ..exec.clone()
        };
        let err = open_action_share(
            &key,
            (1, 7),
            &other_request.request_id,
            &group,
            "sig",
            &good,
        );
        assert!(err.is_err());
        // sealed to another key
        let (_, stranger) = SealSecretKey::generate(&mut OsRng);
        let err = open(
            1,
            "sig",
            &seal(&exec, 1, "sig", &shares[&1], &stranger),
            &group,
        );
        assert!(err.unwrap_err().to_string().contains("does not open"));
        // node 2's share relabelled as node 1's
        let err = open(
            1,
            "sig",
            &seal(&exec, 1, "sig", &shares[&2], &public),
            &group,
        );
        assert!(err.unwrap_err().to_string().contains("party 2's"));
        // a presignature of another group
        let err = open(1, "sig", &good, &[1, 3]).unwrap_err();
        assert!(err.to_string().contains("not of the group [1, 3]"), "{err}");
    }

    #[test]
    fn answers_of_another_party_epoch_or_action_are_refused_and_the_action_is_not_rerun() {
        let net = net();
        let group = [1, 2];
        let exec = exec(&net, &group);
        let tamper = |f: &dyn Fn(&mut ExecuteResponse)| {
            let mut bad = answer(&exec, 2, Some("ok"), &[]);
            if let Ok(r) = &mut bad.answer {
                f(r);
            }
            done(finish_round(
                &exec,
                vec![answer(&exec, 1, Some("ok"), &[]), bad],
            ))
            .unwrap_err()
        };
        for (f, text) in [
            (
                &(|r: &mut ExecuteResponse| r.party_id = 3) as &dyn Fn(&mut ExecuteResponse),
                "labelled party 3",
            ),
            (&|r: &mut ExecuteResponse| r.epoch = 8, "epoch 8"),
            (
                &|r: &mut ExecuteResponse| r.ipfs_id = ActionId::of(b"other").to_string(),
                "instead of",
            ),
        ] {
            let err = tamper(f);
            let ClientError::ActionIncomplete { ran, failures } = &err else {
                panic!("{err:?}")
            };
            assert_eq!(ran, &vec![1]);
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].party_id, Some(2));
            assert!(err.to_string().contains(text), "{err}");
            assert!(err.to_string().contains("ran on node(s) 1"), "{err}");
        }
    }

    #[test]
    fn signatures_missing_at_a_node_or_over_different_digests_are_errors_naming_the_nodes() {
        let net = net();
        let group = [2, 3];
        let exec = exec(&net, &group);
        // node 3 did not sign
        let shares = sign(&net, &group, [4; 32], |_| [8; 32]);
        let answers = vec![
            answer(&exec, 2, None, &[("sig", &shares[&2])]),
            answer(&exec, 3, None, &[]),
        ];
        let err = done(finish_round(&exec, answers)).unwrap_err();
        let ClientError::ActionSignature { sig_name, reason } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(sig_name, "sig");
        assert!(
            reason.contains("only node(s) [2]") && reason.contains("[3] did not"),
            "{err}"
        );

        // the nodes signed different digests
        let shares = sign(&net, &group, [4; 32], |p| [p as u8; 32]);
        let answers = vec![
            answer(&exec, 2, None, &[("sig", &shares[&2])]),
            answer(&exec, 3, None, &[("sig", &shares[&3])]),
        ];
        let err = done(finish_round(&exec, answers)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("signed different things"), "{text}");
        assert!(text.contains(&format!(
            "digest {} from node(s) [2]",
            hex::encode([2u8; 32])
        )));
        assert!(text.contains(&format!(
            "digest {} from node(s) [3]",
            hex::encode([3u8; 32])
        )));
    }

    #[test]
    fn a_key_not_derived_from_the_root_or_a_wrong_share_does_not_give_a_signature() {
        let net = net();
        let group = [1, 2];
        let exec = exec(&net, &group);
        // both nodes name the root key itself as the PKP's key
        let mut shares = sign(&net, &group, [4; 32], |_| [8; 32]);
        let root = net.root.to_encoded_point(true).as_bytes().to_vec();
        let lying: Vec<Signed> = [1, 2]
            .iter()
            .map(|p| Signed {
                public_key: root.clone(),
                ..shares[p].clone()
            })
            .collect();
        let answers = vec![
            answer(&exec, 1, None, &[("sig", &lying[0])]),
            answer(&exec, 2, None, &[("sig", &lying[1])]),
        ];
        let err = done(finish_round(&exec, answers)).unwrap_err();
        assert!(
            err.to_string().contains("is not the network key derived"),
            "{err}"
        );

        // node 2's share is off by one: the combination does not verify
        if let Some(s) = shares.get_mut(&2) {
            s.share.s += k256::Scalar::ONE;
        }
        let answers = vec![
            answer(&exec, 1, None, &[("sig", &shares[&1])]),
            answer(&exec, 2, None, &[("sig", &shares[&2])]),
        ];
        let err = done(finish_round(&exec, answers)).unwrap_err();
        assert!(
            matches!(&err, ClientError::ActionSignature { reason, .. } if reason.contains("combining")),
            "{err}"
        );
    }

    #[test]
    fn divergent_responses_are_a_result_not_an_error() {
        let net = net();
        let exec = exec(&net, &[1, 2]);
        let answers = vec![
            answer(&exec, 1, Some("a"), &[]),
            answer(&exec, 2, Some("b"), &[]),
        ];
        let result = done(finish_round(&exec, answers)).unwrap();
        assert!(result.response.is_divergent());
        let err = result.agreed_response().unwrap_err();
        assert_eq!(
            err.to_string(),
            "nodes disagree about the action response: node 1: \"a\"; node 2: \"b\""
        );
        // one node with a response and one without also diverge; none at all agree on none
        let r = |v: &[(u32, Option<&str>)]| {
            ActionResponse::from_nodes(v.iter().map(|(p, s)| (*p, s.map(str::to_string))).collect())
        };
        assert!(r(&[(1, Some("a")), (2, None)]).is_divergent());
        assert_eq!(r(&[(1, None), (2, None)]), ActionResponse::Agreed(None));
        assert_eq!(
            r(&[(1, Some("x")), (2, Some("x")), (4, Some("x"))])
                .agreed()
                .unwrap(),
            Some("x")
        );
        assert_eq!(
            r(&[(1, Some("x")), (2, None)])
                .agreed()
                .unwrap_err()
                .to_string(),
            "nodes disagree about the action response: node 1: \"x\"; node 2: no response"
        );
    }

    // ---------------------------------------------------------------------------------------
    // failures and retries

    #[test]
    fn when_every_node_refuses_the_error_names_each_with_the_message_verbatim() {
        let net = net();
        let exec = exec(&net, &[1, 2]);
        let limit = "the action exceeded its time limit of 2000 ms";
        let answers = vec![
            failed(2, api(ErrorCode::ActionLimit, limit)),
            failed(1, api(ErrorCode::ActionLimit, limit)),
        ];
        let err = done(finish_round(&exec, answers)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the request failed; nodes:\n  - node 1 (http://node1): refused (action_limit): \
                 {limit}\n  - node 2 (http://node2): refused (action_limit): {limit}"
            )
        );
        // action_failed, not_permitted, a timeout (it may have run), wrong_epoch: never rerun
        for reasons in [
            [
                api(ErrorCode::ActionFailed, "Error: boom"),
                NodeFailureReason::Unreachable("refused".into()),
            ],
            [
                api(ErrorCode::NotPermitted, "no"),
                api(ErrorCode::NotPermitted, "no"),
            ],
            [
                NodeFailureReason::Timeout,
                NodeFailureReason::Unreachable("refused".into()),
            ],
            [
                api(ErrorCode::WrongEpoch, "epoch 8"),
                api(ErrorCode::NotReady, "later"),
            ],
        ] {
            let [a, b] = reasons;
            let round = finish_round(&exec, vec![failed(1, a), failed(2, b)]);
            let err = done(round).unwrap_err();
            assert!(matches!(&err, ClientError::NodesFailed { failures } if failures.len() == 2));
        }
        // one node ran it, the other hit a limit: not rerun, and the result is not used
        let answers = vec![
            answer(&exec, 1, Some("ok"), &[]),
            failed(2, api(ErrorCode::ActionLimit, limit)),
        ];
        let err = done(finish_round(&exec, answers)).unwrap_err();
        assert!(matches!(&err, ClientError::ActionIncomplete { ran, .. } if ran == &vec![1]));
        assert!(err.to_string().contains(limit));
        assert_eq!(err.failures().len(), 1);
    }

    #[test]
    fn a_group_where_nothing_ran_is_replaced_without_the_nodes_that_failed() {
        let net = net();
        let exec = exec(&net, &[1, 2]);
        // node 2 unreachable, node 1 not ready (e.g. it could not reach node 2): blame node 2
        let round = finish_round(
            &exec,
            vec![
                failed(1, api(ErrorCode::NotReady, "peer down")),
                failed(
                    2,
                    NodeFailureReason::Unreachable("connection refused".into()),
                ),
            ],
        );
        let Round::Retry {
            failures,
            exclude,
            suspects,
        } = round
        else {
            panic!("{round:?}")
        };
        assert_eq!((exclude, suspects), (vec![2], vec![2]));
        assert_eq!(failures.len(), 2);
        // nobody to blame (both not ready / rate limited): leave one out so the group changes
        let round = finish_round(
            &exec,
            vec![
                failed(2, api(ErrorCode::RateLimited, "slow down")),
                failed(1, api(ErrorCode::NotReady, "dkg")),
            ],
        );
        let Round::Retry {
            exclude, suspects, ..
        } = round
        else {
            panic!("{round:?}")
        };
        assert_eq!((exclude, suspects), (vec![1], vec![]));
        // earlier groups' failures are reported with the last group's
        let err = with_earlier(
            ClientError::NodesFailed {
                failures: vec![NodeFailure {
                    party_id: Some(3),
                    url: "u3".into(),
                    reason: NodeFailureReason::Timeout,
                }],
            },
            vec![NodeFailure {
                party_id: Some(2),
                url: "u2".into(),
                reason: NodeFailureReason::Unreachable("x".into()),
            }],
        );
        let parties: Vec<_> = err.failures().iter().map(|f| f.party_id).collect();
        assert_eq!(parties, vec![Some(2), Some(3)]);
    }

    #[test]
    fn a_group_in_another_epoch_goes_back_to_the_caller() {
        let net = net();
        let exec = exec(&net, &[1, 2]);
        let elsewhere = || api(ErrorCode::WrongEpoch, "the current epoch is 8");
        // no node ran it: the error says the epoch changed, so execute_js handshakes again and
        // runs it once more (no other group of this epoch is tried: it would be refused alike)
        for other in [elsewhere(), api(ErrorCode::NotReady, "peer")] {
            let err = done(finish_round(
                &exec,
                vec![failed(1, other), failed(2, elsewhere())],
            ))
            .unwrap_err();
            assert!(matches!(err, ClientError::NodesFailed { .. }), "{err}");
            assert!(err.epoch_changed());
        }
        // it ran at node 1 while node 2 was in another epoch: not run again (execute_js only
        // renews its view of the network)
        let shares = sign(&net, &[1, 2], [1; 32], |_| [2; 32]);
        let err = done(finish_round(
            &exec,
            vec![
                answer(&exec, 1, Some("ok"), &[("sig", &shares[&1])]),
                failed(2, elsewhere()),
            ],
        ))
        .unwrap_err();
        assert!(matches!(&err, ClientError::ActionIncomplete { ran, .. } if ran == &vec![1]));
        assert!(err.epoch_changed());
    }

    // ---------------------------------------------------------------------------------------
    // the builder

    #[test]
    fn the_builder_makes_the_request_every_node_gets() {
        let code = "Lit.Actions.setResponse({response: String(n)});";
        let mut params = Map::new();
        params.insert("n".into(), Value::from(1));
        let run = ExecuteJs::code(code)
            .params(params)
            .param("n", 2)
            .param("who", "me");
        assert_eq!(
            run.action_id().unwrap(),
            ActionId::of(code.as_bytes()).to_string()
        );
        assert_eq!(run.js_params()["n"], 2);
        assert!(matches!(run.caller(), ActionAuth::Anonymous));
        let req = run.request(3, &[1, 2], Bytes32([1; 32]), None, Bytes32([2; 32]));
        assert_eq!(req.code.as_deref(), Some(code));
        assert_eq!(req.ipfs_id, None);
        assert_eq!((req.epoch, req.group.clone()), (3, vec![1, 2]));
        assert_eq!(req.js_params["who"], "me");
        // the wire form: camelCase, no auth when anonymous
        let wire = serde_json::to_value(&req).unwrap();
        assert_eq!(wire["jsParams"]["n"], 2);
        assert!(wire.get("auth").is_none() && wire.get("ipfsId").is_none());

        let id = ActionId::of(b"stored").to_string();
        let run = ExecuteJs::ipfs_id(id.clone());
        assert_eq!(run.action_id().unwrap(), id);
        let req = run.request(3, &[1, 2], Bytes32([1; 32]), None, Bytes32([2; 32]));
        assert_eq!((req.code, req.ipfs_id), (None, Some(id)));
        for bad in [
            "QmNotACid",
            "",
            "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        ] {
            let err = ExecuteJs::ipfs_id(bad).action_id().unwrap_err();
            assert!(matches!(err, ClientError::Config(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn auth_is_fixed_per_node_or_a_fresh_session_signature_for_each_node() {
        let wallet = crate::Wallet::random();
        // an auth method is the same for every node; a wallet's AuthSig is refused
        let method = PkpAuth::AuthMethod(lit_api::v1::AuthMethod {
            auth_method_type: lit_api::v1::AUTH_METHOD_TYPE_OIDC,
            access_token: "a.b.c".into(),
        });
        let run = ExecuteJs::code("1").auth(method.clone());
        assert_eq!(run.auth_for("http://a").unwrap(), Some(method.clone()));
        assert_eq!(run.auth_for("http://b").unwrap(), Some(method));
        assert_eq!(run.clone().anonymous().auth_for("http://a").unwrap(), None);
        let plain = PkpAuth::AuthSig(
            wallet
                .auth_sig(SystemTime::now(), Duration::from_secs(60))
                .unwrap(),
        );
        let err = ExecuteJs::code("1")
            .auth(plain)
            .auth_for("http://a")
            .unwrap_err();
        assert!(err.to_string().contains("same at every node"), "{err}");

        let grant = action_execution_grant(None).unwrap();
        assert_eq!(grant.resource().to_string(), "lit-litaction://*");
        let session =
            Session::from_wallet(&wallet, "devnet.lit", vec![grant], Duration::from_secs(60))
                .unwrap();
        let run = ExecuteJs::code("1").session(&session);
        let sig = |url: &str| match run.auth_for(url).unwrap() {
            Some(PkpAuth::SessionSig(s)) => s,
            other => panic!("{other:?}"),
        };
        let (a, b) = (sig("http://a"), sig("http://b"));
        let a: lit_api::session::SessionSignedMessage =
            serde_json::from_str(&a.signed_message).unwrap();
        let b: lit_api::session::SessionSignedMessage =
            serde_json::from_str(&b.signed_message).unwrap();
        assert_eq!(
            (a.node_address.as_str(), b.node_address.as_str()),
            ("http://a", "http://b")
        );
        assert_ne!(a.nonce, b.nonce);

        let id = ActionId::of(b"x").to_string();
        let grant = action_execution_grant(Some(&id)).unwrap();
        assert_eq!(
            grant.resource().to_string(),
            format!("lit-litaction://{id}")
        );
        assert!(action_execution_grant(Some("not-a-cid")).is_err());
    }

    #[test]
    fn debug_does_not_print_credentials() {
        let run = ExecuteJs::code("1").auth(PkpAuth::AuthMethod(AuthMethod {
            auth_method_type: 1,
            access_token: "eyJ.secret-token.sig".into(),
        }));
        let text = format!("{run:?}");
        assert!(!text.contains("secret-token"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}
