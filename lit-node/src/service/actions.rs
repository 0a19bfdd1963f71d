//! Lit Actions served by the network: the action store (`/v1/actions/upload`), `/v1/execute`,
//! and the node's side of `Lit.Actions` ([`NodeHost`]).
//!
//! A client sends the same execute request to an *execution group* of exactly `T` nodes (the
//! size of a signing group: `cait-sith` presignatures are made and used by exactly the group
//! that signs). Every member runs the action in the configured engine with a [`NodeHost`]; the
//! host calls that need the other members talk to them over the peer transport, in sessions
//! derived from the request id, the action's id, the group and the call's name, so that only
//! nodes running the same action for the same request meet:
//! - `signEcdsa`: the caller or the action must be permitted on the PKP; the group's lead hands
//!   out a pooled presignature (or none, and the group generates a fresh one), each member marks
//!   it used durably, and returns its share sealed to the client, who combines.
//! - `signAndCombineEcdsa`, `decryptAndCombine`, `broadcastAndCollect`: every member sends its
//!   share (or value, or its refusal) sealed to every other member and combines what it
//!   collects.
//! - `getRpcUrl`: the node's RPC URL of a chain, only for a caller that authenticated (the URL
//!   often carries the operator's API key).
//! - `runOnce`: the member chosen from the request id and the section's name runs the function
//!   and sends its result to the others, who wait for it.
//! - `ethPersonalSignMessageEcdsa`: `signEcdsa` of the message's EIP-191 hash (an auth method's
//!   `personal-sign` scope permits it too).
//! - `signAsAction`: like `signAndCombineEcdsa`, with the action's own key (the root key tweaked
//!   with [`action_key_id`] of the running action's CID) and no permission to check: only the
//!   action whose CID it is can run as it. `getActionPublicKey` derives any action's key.
//! - `decryptToSingleNode`: every member checks the conditions and sends its decryption share to
//!   the member chosen from the call's session, which alone combines and returns the plaintext.
//! - `call`: the child (from this node's action store) runs in the same engine with a host of
//!   its own whose sessions are scoped by the parent's scope, the call's index in the parent and
//!   the child's CID, so the same names in parent and child (or twice the same child) never meet;
//!   the child's `signEcdsa` shares are returned with the parent's.
//! - `getLatestNonce`: `eth_getTransactionCount(address, "latest")` on the node's RPC for the
//!   chain (the URL is never answered, and errors do not quote it).
//! - `claimKey`: refused, see [`ActionHost::claim_key`]'s implementation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use lit_actions::host::{
    action_key_id, ActionContext, ActionSignature, BroadcastAndCollect, CallAction, CalledAction,
    CheckConditions, DecryptAndCombine, Encrypt, Encrypted, EthPersonalSign, NoCapabilities,
    RunOnce, RunOnceRole, SignAsAction, SignEcdsa, SigningScheme,
};
use lit_actions::{
    Action, ActionError, ActionHost, AuthContext, Budget, Engine, EngineConfig, HostError,
    NetPolicy,
};
use lit_api::session::{LitAbility, LitResource, ResourceAbilityRequest};
use lit_api::v1::{
    action_share_aad, ActionSignatureShare, ActionUploadRequest, ActionUploadResponse, ActionUsage,
    AuthSig, ExecuteRequest, ExecuteResponse, PkpAuth, PkpInfo, PkpScope, ACTION_SHARE_SEAL_INFO,
};
use lit_api::{Bytes32, ErrorCode};
use lit_crypto::ecdsa::{combine, sign_share, MessageDigest, SignatureShare, SigningContext};
use lit_crypto::eth::Address;
use lit_crypto::identity::AccessControlIdentity;
use lit_crypto::seal::SealPublicKey;
use lit_crypto::PartyId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tracing::{info, warn};

use super::pkp::{blocking, check_record, parse_group, registry, StoreUsed};
use super::{client_key, seal_reply, Node};
use crate::auth::action::action_permit;
use crate::auth::{Caller as Verified, CallerKey};
use crate::chain::payments::{Product, Units};
use crate::chain::staking::Amount;
use crate::config::{ActionsConfig, EngineChoice};
use crate::epoch::NodeKeys;
use crate::error::ApiError;
use crate::service::meter::ActionQuote;
use crate::store::Table;

/// How long a member waits for the others' part of a host call (their shares, values, the
/// presignature choice) before the call fails naming the silent members; never longer than the
/// action has left (so the silent members are named before the action's time limit ends it).
/// A `runOnce` result is awaited as long as the action may run.
pub const PEER_WAIT: Duration = Duration::from_secs(10);

/// Time kept back from the action's deadline for it to handle a failed wait for peers.
const PEER_WAIT_MARGIN: Duration = Duration::from_millis(250);

/// The engine the configuration asks for.
pub fn build_engine(config: &ActionsConfig) -> Result<Arc<dyn Engine>, ActionError> {
    let engine_config = EngineConfig::new(config.limits())
        .with_net(NetPolicy::allow(&config.allow_net))
        .with_ethers(match &config.ethers {
            Some(bundle) => lit_actions::EthersSource::File(bundle.clone()),
            None => lit_actions::EthersSource::Find,
        });
    let deno = || {
        config
            .deno
            .clone()
            .or_else(lit_actions::engine::deno::find_deno)
    };
    let quickjs = || -> Result<Arc<dyn Engine>, ActionError> {
        Ok(Arc::new(lit_actions::QuickJsEngine::new(
            engine_config.clone(),
        )?))
    };
    let with_deno = |binary| -> Result<Arc<dyn Engine>, ActionError> {
        Ok(Arc::new(lit_actions::DenoEngine::new(
            lit_actions::DenoConfig::new(engine_config.clone())
                .with_binary(binary)
                .with_max_concurrent(config.max_concurrent())
                .with_preloaded_ethers(config.preload_ethers),
        )?))
    };
    match config.engine {
        EngineChoice::Quickjs => quickjs(),
        EngineChoice::Auto => match deno() {
            Some(binary) => with_deno(binary),
            None => quickjs(),
        },
        EngineChoice::Deno => match deno() {
            Some(binary) => with_deno(binary),
            None => Err(ActionError::EngineUnavailable {
                engine: "deno",
                reason: "no deno binary: set actions.deno in the configuration or put deno on PATH"
                    .into(),
            }),
        },
    }
}

/// Stores action code in this node's action store under its IPFS CIDv0 (an `ipfsId` given
/// with it must match), counted against the uploader's quota (`[quotas]`, see
/// [`super::quota`]).
///
/// The uploader is the caller its `auth` proves (verified as for running the action: a session
/// must grant `lit-action-execution` on it), or, without `auth`, the anonymous callers
/// together: uploads needed no credential before quotas and still need none, but a flood of
/// them only exhausts the quota they share. Every accepted upload counts, with its code's bytes,
/// whether or not the node had the code already: the quota bounds the work of receiving,
/// hashing and storing. An upload refused for its quota stores nothing; one that fails after
/// it was counted (the store) is given back.
pub async fn upload(
    node: &Arc<Node>,
    req: ActionUploadRequest,
) -> Result<ActionUploadResponse, ApiError> {
    let limit = node.engine.limits().code_bytes;
    if req.code.len() > limit {
        return Err(ApiError::new(
            ErrorCode::BodyTooLarge,
            format!(
                "the code is {} bytes, over this node's limit of {limit}",
                req.code.len()
            ),
        ));
    }
    let action = match &req.ipfs_id {
        Some(id) => Action::with_id(id, req.code.as_str()),
        None => Ok(Action::new(req.code.as_str())),
    }
    .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, e.to_string()))?;
    let id = action.id().to_string();
    let uploader = match &req.auth {
        None => CallerKey::Anonymous,
        Some(auth) => {
            let keys = node.keys()?;
            // an ID token for an upload names the action with no parameters
            verify_caller(node, &keys, Some(auth), &action, &serde_json::Map::new())
                .await?
                .2
        }
    };
    let taken = node.quotas.take_upload(&uploader, req.code.len() as u64)?;
    let created = node
        .store
        .insert_new(Table::Actions, &id, req.code.as_bytes())
        .map_err(|e| {
            node.quotas.give_back_upload(&uploader, taken);
            ApiError::internal(ErrorCode::Internal, "the action store failed", e)
        })?;
    if created {
        info!(cid = %id, bytes = req.code.len(), %uploader, "stored a Lit Action");
    }
    Ok(ActionUploadResponse {
        ipfs_id: id,
        size: req.code.len() as u64,
        created,
    })
}

/// The code of a request: inline, or from the action store by id (both: they must agree).
fn load_action(node: &Node, req: &ExecuteRequest) -> Result<Action, ApiError> {
    let malformed = |m: String| ApiError::new(ErrorCode::MalformedRequest, m);
    match (&req.code, &req.ipfs_id) {
        (None, None) => Err(malformed("give the action's `code` or its `ipfsId`".into())),
        (Some(code), None) => Ok(Action::new(code.as_str())),
        (Some(code), Some(id)) => {
            Action::with_id(id, code.as_str()).map_err(|e| malformed(e.to_string()))
        }
        (None, Some(id)) => stored_action(node, id),
    }
}

/// The action stored under `id` in this node's action store (`Lit.Actions.call` runs these too).
fn stored_action(node: &Node, id: &str) -> Result<Action, ApiError> {
    id.parse::<lit_actions::ActionId>()
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, e.to_string()))?;
    let stored = node
        .store
        .get(Table::Actions, id)
        .map_err(|e| ApiError::internal(ErrorCode::Internal, "the action store failed", e))?;
    let Some(bytes) = stored else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no action {id} in this node's store: upload it first"),
        ));
    };
    let code = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::new(ErrorCode::Internal, "stored action is not UTF-8"))?;
    // the store is keyed by id, but check anyway: a wrong entry must not run
    Action::with_id(id, code).map_err(|e| {
        ApiError::internal(
            ErrorCode::Internal,
            "the stored action does not match its id",
            format_args!("action store entry {id}: {e}"),
        )
    })
}

/// Runs the actions of `LitAction` conditions on this node
/// ([`crate::conditions::LIT_ACTION`]): the stored action by its CID, then its function called
/// with the condition's parameters. The action gets no `Lit.Actions` capability (an action
/// deciding access neither signs, decrypts nor reaches the other nodes) and runs under the
/// node's action limits; `fetch` follows the node's `[actions]` allowed hosts.
pub(crate) struct ConditionActionRunner<'a> {
    pub(crate) node: &'a Node,
}

impl std::fmt::Debug for ConditionActionRunner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConditionActionRunner")
    }
}

#[async_trait]
impl crate::conditions::ConditionActions for ConditionActionRunner<'_> {
    async fn call(
        &self,
        cid: &str,
        method: &str,
        params: &[String],
    ) -> Result<String, crate::conditions::ConditionError> {
        use crate::conditions::{ConditionError, LIT_ACTION};
        let stored = stored_action(self.node, cid).map_err(|e| {
            ConditionError::Invalid(format!("{LIT_ACTION} condition: {}", e.message()))
        })?;
        // `method` is a plain identifier (checked by the evaluator) and the arguments are JSON
        // strings, so the call appended to the action's code is exactly the call it names
        let args =
            serde_json::to_string(params).map_err(|e| ConditionError::Invalid(e.to_string()))?;
        let code = format!(
            "{}\n;{{ const litConditionResult = await {method}(...{args}); \
             Lit.Actions.setResponse({{ response: typeof litConditionResult === \"string\" \
             ? litConditionResult : String(JSON.stringify(litConditionResult)) }}); }}\n",
            stored.code()
        );
        let outcome = self
            .node
            .engine
            .run(&Action::new(code), Arc::new(NoCapabilities))
            .await
            .map_err(|e| {
                ConditionError::Invalid(format!(
                    "{LIT_ACTION} condition: the action {cid} failed: {e}"
                ))
            })?;
        Ok(outcome.response.unwrap_or_default())
    }
}

/// Who called, as the node verified it.
#[derive(Debug, Default, Clone)]
struct Caller {
    /// The wallet (or PKP, for a PKP session) address, EIP-55.
    address: Option<String>,
    /// What the session's capabilities grant that address: inside the action it signs with a
    /// PKP or decrypts only what these cover (a session to run one action does not bring
    /// every PKP and every secret of the wallet along).
    grants: Vec<ResourceAbilityRequest>,
    /// Verified auth methods: (type, id as lowercase hex).
    auth_methods: Vec<(u32, String)>,
    /// The session signature, when the caller sent one (it carries the price terms).
    session: Option<crate::auth::session::VerifiedSession>,
}

impl Caller {
    /// Whether the session grants `ability` on `resource`.
    fn granted(&self, resource: LitResource, ability: LitAbility) -> bool {
        ResourceAbilityRequest::new(resource, ability)
            .is_ok_and(|wanted| self.grants.iter().any(|g| g.covers(&wanted)))
    }

    /// Whether the caller authenticated (wallet, session or auth method).
    fn authenticated(&self) -> bool {
        self.address.is_some() || !self.auth_methods.is_empty()
    }
}

async fn verify_caller(
    node: &Node,
    keys: &NodeKeys,
    auth: Option<&PkpAuth>,
    action: &Action,
    js_params: &serde_json::Map<String, serde_json::Value>,
) -> Result<(Caller, AuthContext, CallerKey), ApiError> {
    let mut ctx = AuthContext::default();
    let mut caller = Caller::default();
    let Some(auth) = auth else {
        return Ok((caller, ctx, CallerKey::Anonymous));
    };
    if matches!(auth, PkpAuth::LitAction(_)) {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            "an action is not an auth for another action: send it as `code` or `ipfsId`",
        ));
    }
    let resource = lit_api::session::LitResource::LitAction(lit_api::session::ResourceId::Id(
        action.id().to_string(),
    ));
    let verified = node
        .auth
        .verify(
            auth,
            resource,
            lit_api::session::LitAbility::LitActionExecution,
            &keys.bls_set.public_key(),
        )
        .await?;
    let key = verified.key();
    match verified {
        Verified::Session(session) => {
            let address = session.authorized_address.to_checksum();
            ctx.auth_sig_address = Some(address.clone());
            caller.address = Some(address);
            caller.grants = session.grants.clone();
            caller.session = Some(session);
        }
        Verified::AuthMethod {
            identity,
            method_type,
            id,
        } => {
            identity.check_purpose(lit_api::v1::IdTokenPurpose::Execute {
                ipfs_id: &action.id().to_string(),
                js_params,
            })?;
            // Lit's fields (userId, appId, authMethodType, lastRetrievedAt, expiration,
            // usedForSignSessionKeyRequest), with the method's id and issuer besides
            let expiration = identity
                .expires_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let retrieved = OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            ctx.auth_method_contexts.push(json!({
                "authMethodType": method_type,
                "authMethodId": format!("0x{id}"),
                "userId": identity.subject,
                "appId": identity.audience,
                "issuer": identity.issuer,
                "lastRetrievedAt": retrieved,
                "expiration": expiration,
                "usedForSignSessionKeyRequest": false,
            }));
            // every permission type the identity satisfies (see `auth::oidc`): a Google user
            // matches a Lit type-6 permission and a generic OpenID Connect one
            for t in identity.permission_types() {
                caller.auth_methods.push((t, id.clone()));
            }
        }
        Verified::LitAction(_) => {
            return Err(ApiError::new(
                ErrorCode::MalformedRequest,
                "an action is not an auth for another action: send it as `code` or `ipfsId`",
            ))
        }
    }
    Ok((caller, ctx, key))
}

/// Records what a run used at the prices of its quote: the base price, its milliseconds
/// (rounded up) and its billable host calls. A run the engine could not carry out is not
/// charged; a run that failed is charged its time, and its host calls when it ran out of them
/// (the engine counts a failed run's calls only then).
fn charge_run(
    node: &Node,
    quote: &ActionQuote,
    outcome: &Result<lit_actions::ActionOutcome, ActionError>,
    elapsed: Duration,
) -> Result<Amount, ApiError> {
    let (duration, calls) = match outcome {
        Ok(o) => (o.usage.duration, o.usage.total_host_calls()),
        Err(ActionError::EngineUnavailable { .. } | ActionError::Engine { .. }) => return Ok(0),
        Err(ActionError::BudgetExhausted { resource, limit }) if resource == Budget::HOST_CALLS => {
            (elapsed, *limit)
        }
        Err(ActionError::BudgetExhausted { limit, .. }) => (Duration::from_millis(*limit), 0),
        Err(_) => (elapsed, 0),
    };
    let ms = u64::try_from(duration.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
    let mut units = Units::one(Product::Action);
    units.0[Product::ActionMs as usize] = ms;
    units.0[Product::ActionHostCall as usize] = calls;
    node.record_action(quote, units)
}

/// How an action's failure is answered: limits and the action's own errors are the caller's
/// to see; the engine's failures stay in the log.
impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        action_error(e)
    }
}

fn action_error(e: ActionError) -> ApiError {
    let code = match &e {
        ActionError::Timeout { .. }
        | ActionError::MemoryLimit { .. }
        | ActionError::CodeTooLarge { .. }
        | ActionError::ResponseTooLarge { .. }
        | ActionError::LogsTooLarge { .. }
        | ActionError::MessageTooLarge { .. }
        | ActionError::TooManyFetches { .. }
        | ActionError::TooManySignatures { .. }
        | ActionError::TooManyHostCalls { .. }
        | ActionError::StackOverflow { .. } => ErrorCode::ActionLimit,
        ActionError::EngineUnavailable { .. } | ActionError::Engine { .. } => {
            return ApiError::internal(ErrorCode::Internal, "the action engine failed", e);
        }
        ActionError::BudgetExhausted { .. } => {
            return ApiError::new(
                ErrorCode::PriceTooHigh,
                format!("{e}: the maxPrice the request signed pays for no more"),
            )
        }
        _ => ErrorCode::ActionFailed,
    };
    ApiError::new(code, e.to_string())
}

/// Runs an action as one member of the execution group: checks the epoch, the group, the
/// client key, the code, the caller, the concurrency cap and the request's nonces, then runs
/// it in the configured engine with this node as its host.
pub async fn execute(
    node: &Arc<Node>,
    req: ExecuteRequest,
) -> Result<(ExecuteResponse, Amount), ApiError> {
    let keys = node.keys_for_epoch(req.epoch)?;
    let group = parse_group(&keys, node.me, &req.group, keys.ecdsa.threshold())?;
    let client = client_key(&req.client_public_key)?;
    let action = load_action(node, &req)?;
    lit_api::v1::check_action_headers(&req.headers)
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, format!("headers: {e}")))?;
    let (caller, auth, key) =
        verify_caller(node, &keys, req.auth.as_ref(), &action, &req.js_params).await?;
    let _permit = action_permit(&node.action_permits)?;
    let price = node.quote_action(caller.session.as_ref()).await?;
    let until = OffsetDateTime::now_utc() + time::Duration::hours(1);
    node.auth
        .fresh_nonce(&key, req.client_public_key.0, until, "clientPublicKey")?;
    let request_nonce: [u8; 32] = Sha256::new()
        .chain_update(b"lit-node/execute/request-id")
        .chain_update(req.request_id.0)
        .finalize()
        .into();
    node.auth
        .fresh_nonce(&key, request_nonce, until, "requestId")?;
    let mut action = action
        .with_params(req.js_params)
        .with_auth(auth)
        .with_headers(req.headers);
    if let Some(quote) = &price {
        let (ms, calls) = quote.budget();
        let mut budget = Budget::unlimited();
        if let Some(ms) = ms {
            budget = budget.with_time(Duration::from_millis(ms));
        }
        if let Some(calls) = calls {
            budget = budget.with_host_calls(u32::try_from(calls).unwrap_or(u32::MAX));
        }
        action = action.with_budget(budget);
    }
    let ipfs_id = action.id().to_string();
    let _serving = super::presign::Serving::new(&node.pools);
    let host = Arc::new(NodeHost {
        node: node.clone(),
        keys: keys.clone(),
        group,
        request_id: req.request_id,
        action_id: Sha256::digest(ipfs_id.as_bytes()).into(),
        client,
        caller,
        deadline: tokio::time::Instant::now() + node.engine.limits().time,
        state: Mutex::new(HostState::default()),
    });
    let started = tokio::time::Instant::now();
    let outcome = node.engine.run(&action, host.clone()).await;
    let charged = match &price {
        None => 0,
        Some(quote) => charge_run(node, quote, &outcome, started.elapsed())?,
    };
    let outcome = outcome.map_err(|e| {
        let e = action_error(e);
        if charged > 0 {
            ApiError::new(e.code(), format!("{} (charged {charged})", e.message()))
        } else {
            e
        }
    })?;
    let signed = std::mem::take(&mut host.state().signed);
    let usage = &outcome.usage;
    let response = ExecuteResponse {
        party_id: node.me.get(),
        epoch: keys.epoch,
        ipfs_id,
        response: outcome.response.clone(),
        logs: outcome.logs.clone(),
        signed,
        usage: ActionUsage {
            engine: node.engine.name().to_owned(),
            duration_ms: usage.duration.as_secs_f64() * 1000.0,
            signatures: usage.signatures,
            fetches: usage.fetches,
            host_calls: usage.host_calls.clone(),
            response_bytes: usage.response_bytes as u64,
            log_bytes: usage.log_bytes as u64,
        },
    };
    Ok((response, charged))
}

#[derive(Default)]
struct HostState {
    /// `signEcdsa` shares by `sigName`, sealed to the client.
    signed: BTreeMap<String, ActionSignatureShare>,
    /// Names used per kind of coordinated call (a name is one exchange).
    names: BTreeSet<(&'static str, String)>,
    /// `decryptAndCombine` calls so far (each is its own exchange).
    decryptions: u64,
    /// `decryptToSingleNode` calls so far (each is its own collection).
    single_decryptions: u64,
    /// `Lit.Actions.call`s so far: the n-th child's sessions are its own.
    children: u64,
}

/// What a member sends the others in an exchange: its part, or why it has none.
#[derive(Serialize, Deserialize)]
enum Part {
    Ok(Vec<u8>),
    Refused(String),
}

/// The node's side of `Lit.Actions` for one execution.
struct NodeHost {
    node: Arc<Node>,
    keys: Arc<NodeKeys>,
    group: Vec<PartyId>,
    request_id: Bytes32,
    action_id: [u8; 32],
    client: SealPublicKey,
    caller: Caller,
    /// When the action's time limit ends it.
    deadline: tokio::time::Instant,
    state: Mutex<HostState>,
}

fn rejected(m: impl Into<String>) -> HostError {
    HostError::Rejected(m.into())
}

fn api_to_host(e: ApiError) -> HostError {
    if let Some(cause) = e.cause() {
        warn!(code = %e.code(), "{}: {cause}", e.message());
    }
    match e.code() {
        ErrorCode::NotReady | ErrorCode::Internal | ErrorCode::ChainUnavailable => {
            HostError::Unavailable(e.message().to_owned())
        }
        _ => HostError::Rejected(e.message().to_owned()),
    }
}

/// The 32-byte hash an ECDSA signature is made over.
fn digest_of(to_sign: &[u8]) -> Result<[u8; 32], HostError> {
    to_sign.try_into().map_err(|_| {
        rejected(format!(
            "toSign must be a 32-byte hash, got {} bytes",
            to_sign.len()
        ))
    })
}

fn parse_hex(what: &str, s: &str) -> Result<Vec<u8>, HostError> {
    hex::decode(s.trim_start_matches("0x")).map_err(|_| rejected(format!("{what} is not hex")))
}

impl NodeHost {
    fn state(&self) -> MutexGuard<'_, HostState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `name` for one call of `kind` in this execution.
    fn claim(&self, kind: &'static str, name: &str) -> Result<(), HostError> {
        if self.state().names.insert((kind, name.to_owned())) {
            Ok(())
        } else {
            Err(rejected(format!("the name {name:?} was already used")))
        }
    }

    /// The peer session of one coordinated call: only members running the same action for the
    /// same request and group meet in it.
    fn session(&self, kind: &str, name: &str) -> Bytes32 {
        let mut h = Sha256::new();
        h.update(b"lit-node/action/v1");
        for part in [kind.as_bytes(), name.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.update(self.keys.epoch.to_be_bytes());
        h.update(self.request_id.0);
        h.update(self.action_id);
        for p in &self.group {
            h.update(p.get().to_be_bytes());
        }
        Bytes32(h.finalize().into())
    }

    /// Until when to wait for peers: [`PEER_WAIT`] from now (`None`: as long as the action
    /// may run), but before the action's deadline.
    fn peer_deadline(&self, wait: Option<Duration>) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let last = self
            .deadline
            .checked_sub(PEER_WAIT_MARGIN)
            .unwrap_or(now)
            .max(now);
        match wait {
            Some(wait) => (now + wait).min(last),
            None => last,
        }
    }

    fn members(&self) -> BTreeSet<PartyId> {
        self.group.iter().copied().collect()
    }

    /// Sends `mine` to every other member (sealed to each) and collects every member's part.
    async fn exchange(
        &self,
        kind: &str,
        name: &str,
        mine: Part,
    ) -> Result<BTreeMap<PartyId, Vec<u8>>, HostError> {
        let session = self.session(kind, name);
        let inbox = self
            .node
            .net
            .inbox(session)
            .map_err(|_| rejected(format!("{kind} {name:?} already ran here")))?;
        let members = self.members();
        let bytes = serde_json::to_vec(&mine).map_err(|e| HostError::Unavailable(e.to_string()))?;
        for p in members.iter().filter(|p| **p != self.node.me) {
            self.node.net.send(session, Some(*p), &members, &bytes);
        }
        let mut parts = BTreeMap::new();
        match mine {
            Part::Ok(b) => {
                parts.insert(self.node.me, b);
            }
            Part::Refused(why) => return Err(rejected(why)),
        }
        self.gather(inbox, kind, name, parts).await
    }

    /// Collects every other member's part from `inbox` into `parts` (which holds this node's),
    /// waiting at most [`PEER_WAIT`]; a refusal, an unreadable part or silence is an error
    /// naming the members at fault.
    async fn gather(
        &self,
        mut inbox: crate::net::transport::Inbox,
        kind: &str,
        name: &str,
        mut parts: BTreeMap<PartyId, Vec<u8>>,
    ) -> Result<BTreeMap<PartyId, Vec<u8>>, HostError> {
        let members = self.members();
        let started = tokio::time::Instant::now();
        let deadline = self.peer_deadline(Some(PEER_WAIT));
        while parts.len() < members.len() {
            let next = tokio::time::timeout_at(deadline, inbox.recv()).await;
            let Ok(Some((from, bytes))) = next else {
                let silent: Vec<u32> = members
                    .iter()
                    .filter(|p| !parts.contains_key(*p))
                    .map(|p| p.get())
                    .collect();
                return Err(HostError::Unavailable(format!(
                    "nodes {silent:?} sent no {kind} for {name:?} within {} ms",
                    started.elapsed().as_millis()
                )));
            };
            if !members.contains(&from) || parts.contains_key(&from) {
                continue;
            }
            match serde_json::from_slice::<Part>(&bytes) {
                Ok(Part::Ok(b)) => {
                    parts.insert(from, b);
                }
                Ok(Part::Refused(why)) => {
                    return Err(rejected(format!("node {from} refused: {why}")));
                }
                Err(_) => {
                    warn!(from = %from, "unreadable {kind} part from a peer");
                    return Err(HostError::Unavailable(format!(
                        "node {from} sent an unreadable {kind}"
                    )));
                }
            }
        }
        Ok(parts)
    }

    /// The message from `from` in `session`, waiting at most `wait` (`None`: as long as the
    /// action may run).
    async fn wait_for(
        &self,
        session: Bytes32,
        from: PartyId,
        what: &str,
        wait: Option<Duration>,
    ) -> Result<Vec<u8>, HostError> {
        let mut inbox = self
            .node
            .net
            .inbox(session)
            .map_err(|_| rejected(format!("{what} already ran here")))?;
        let started = tokio::time::Instant::now();
        let deadline = self.peer_deadline(wait);
        loop {
            match tokio::time::timeout_at(deadline, inbox.recv()).await {
                Ok(Some((sender, bytes))) if sender == from => return Ok(bytes),
                Ok(Some(_)) => continue,
                _ => {
                    return Err(HostError::Unavailable(format!(
                        "node {from} sent no {what} within {} ms",
                        started.elapsed().as_millis()
                    )))
                }
            }
        }
    }

    fn send_all(&self, session: Bytes32, bytes: &[u8]) {
        let members = self.members();
        for p in members.iter().filter(|p| **p != self.node.me) {
            self.node.net.send(session, Some(*p), &members, bytes);
        }
    }

    /// The PKP of a public key, checked against the root key.
    async fn pkp(&self, public_key: &str) -> Result<(PkpInfo, k256::AffinePoint), HostError> {
        let bytes = parse_hex("publicKey", public_key)?;
        let key = k256::PublicKey::from_sec1_bytes(&bytes)
            .map_err(|_| rejected("publicKey is not a secp256k1 public key"))?;
        let token = hex::encode(super::pkp::token_id(key.as_affine()));
        let registry = registry(&self.node).map_err(api_to_host)?;
        let record = blocking(move || registry.get(&token))
            .await
            .map_err(api_to_host)?
            .ok_or_else(|| rejected(format!("no PKP has the public key {public_key}")))?;
        let derived = check_record(&self.keys, &record).map_err(api_to_host)?;
        Ok((record, derived))
    }

    /// Whether this action or its caller may sign with the PKP: anything, or with `personal`
    /// only an EIP-191 message (which an auth method's `personal-sign` scope permits too).
    fn check_permitted(
        &self,
        ctx: &ActionContext,
        record: &PkpInfo,
        personal: bool,
    ) -> Result<(), HostError> {
        let cid = ctx.action_id.to_string();
        let p = &record.permissions;
        let by_action = p.actions.contains(&cid);
        let by_address = self
            .caller
            .address
            .as_ref()
            .is_some_and(|a| *a == record.owner || p.addresses.contains(a))
            && self
                .caller
                .granted(LitResource::pkp(&record.token_id.0), LitAbility::PkpSigning);
        let by_method = self.caller.auth_methods.iter().any(|(t, id)| {
            p.auth_methods.iter().any(|m| {
                m.method_type == *t
                    && m.id.trim_start_matches("0x").eq_ignore_ascii_case(id)
                    && (m.scopes.contains(&PkpScope::SignAnything)
                        || (personal && m.scopes.contains(&PkpScope::PersonalSign)))
            })
        });
        if by_action || by_address || by_method {
            return Ok(());
        }
        let who = match &self.caller.address {
            Some(a) => format!(
                "Lit Action {cid} nor its caller {a} (whose session must grant pkp-signing on \
                 the PKP)"
            ),
            None => format!("Lit Action {cid} (called without auth)"),
        };
        Err(HostError::Rejected(format!(
            "not permitted: neither {who} may sign with PKP {}",
            record.eth_address
        )))
    }

    /// This node's signature share of `req` with its PKP, after the permission check, with a
    /// presignature the group agreed on (marked used durably before the share is computed).
    async fn sign_share(
        &self,
        ctx: &ActionContext,
        req: &SignEcdsa,
    ) -> Result<(SignatureShare, PkpInfo, SigningContext), HostError> {
        let digest = digest_of(&req.to_sign)?;
        self.pkp_share(ctx, &req.public_key, digest, &req.sig_name, false)
            .await
    }

    /// This node's share of `digest` with the PKP of `public_key`, after the permission check
    /// (`personal`: the digest is an EIP-191 message's).
    async fn pkp_share(
        &self,
        ctx: &ActionContext,
        public_key: &str,
        digest: [u8; 32],
        sig_name: &str,
        personal: bool,
    ) -> Result<(SignatureShare, PkpInfo, SigningContext), HostError> {
        let (record, _) = self.pkp(public_key).await?;
        self.check_permitted(ctx, &record, personal)?;
        let (share, context) = self
            .share_with(record.key_id.0.to_vec(), digest, sig_name)
            .await?;
        Ok((share, record, context))
    }

    /// This node's share of `digest` with the key derived from the root key with `key_id` (a
    /// PKP's, or an action's own), with a presignature the group agreed on for `sig_name`
    /// (marked used durably before the share is computed). Permissions are the caller's to check.
    async fn share_with(
        &self,
        key_id: Vec<u8>,
        digest: [u8; 32],
        sig_name: &str,
    ) -> Result<(SignatureShare, SigningContext), HostError> {
        self.claim("signature", sig_name)?;
        let presignature = self.presignature(sig_name).await?;
        let context = SigningContext {
            root_public_key: self.keys.ecdsa.public_key(),
            key_id,
            digest: MessageDigest::prehashed(digest),
        };
        let share = sign_share(
            &self.keys.ecdsa,
            presignature,
            &context,
            &mut StoreUsed(&self.node.store),
        )
        .map_err(|e| {
            warn!("action signing failed: {e}");
            HostError::Unavailable(format!("signing failed: {e}"))
        })?;
        Ok((share, context))
    }

    /// Exchanges this node's share (or why it has none) for `sig_name` with the group and
    /// combines them: the signature, checked to recover to the key, and the key.
    async fn combine_across(
        &self,
        sig_name: &str,
        mine: Result<(SignatureShare, SigningContext), HostError>,
    ) -> Result<
        (
            lit_crypto::ecdsa::RecoverableSignature,
            k256::AffinePoint,
            SigningContext,
        ),
        HostError,
    > {
        let part = match &mine {
            Ok((share, _)) => Part::Ok(serde_json::to_vec(share).unwrap_or_default()),
            Err(e) => Part::Refused(e.to_string()),
        };
        let parts = self.exchange("signature share", sig_name, part).await?;
        let (_, context) = mine?;
        let mut shares = Vec::with_capacity(parts.len());
        for (from, bytes) in parts {
            let share: SignatureShare = serde_json::from_slice(&bytes)
                .map_err(|_| HostError::Unavailable(format!("node {from} sent a bad share")))?;
            if share.party != from {
                return Err(HostError::Unavailable(format!(
                    "node {from} sent party {}'s share",
                    share.party
                )));
            }
            shares.push(share);
        }
        let sig = combine(&context, &shares)
            .map_err(|e| HostError::Unavailable(format!("combining the shares: {e}")))?;
        let public = context
            .public_key()
            .map_err(|e| HostError::Unavailable(e.to_string()))?;
        // combine checks the signature against the key; check again before it leaves the node
        if sig.recover(&context.digest).ok() != Some(public) {
            return Err(HostError::Unavailable(
                "the combined signature does not verify".into(),
            ));
        }
        Ok((sig, public, context))
    }

    /// This node's share of `digest` with the PKP, sealed to the client under `sig_name` (the
    /// client combines the group's shares), as `signEcdsa` returns them.
    async fn share_for_client(
        &self,
        ctx: &ActionContext,
        public_key: &str,
        digest: [u8; 32],
        sig_name: &str,
        personal: bool,
    ) -> Result<(), HostError> {
        let (share, record, context) = self
            .pkp_share(ctx, public_key, digest, sig_name, personal)
            .await?;
        let plain =
            serde_json::to_vec(&share).map_err(|e| HostError::Unavailable(e.to_string()))?;
        let sealed = seal_reply(
            &self.client,
            ACTION_SHARE_SEAL_INFO,
            &action_share_aad(
                self.node.me.get(),
                self.keys.epoch,
                &self.request_id,
                sig_name,
                &context.digest.0,
            ),
            &plain,
        )
        .map_err(api_to_host)?;
        self.state().signed.insert(
            sig_name.to_owned(),
            ActionSignatureShare {
                public_key: record.public_key.clone(),
                key_id: record.key_id,
                digest: Bytes32(context.digest.0),
                share: sealed,
            },
        );
        Ok(())
    }

    /// The member of the group chosen for the call with peer session `session` (`runOnce`,
    /// `decryptToSingleNode`): the same at every member.
    fn chosen(&self, session: &Bytes32) -> Result<PartyId, HostError> {
        let pick: [u8; 8] = session.0[..8].try_into().unwrap_or_default();
        let index = (u64::from_be_bytes(pick) % self.group.len() as u64) as usize;
        self.group
            .get(index)
            .copied()
            .ok_or_else(|| rejected("empty group"))
    }

    /// Combines the group's decryption shares of `identity` and decrypts `ct` (the plaintext
    /// must be UTF-8 text and match the identity's data hash).
    fn open(
        &self,
        parts: BTreeMap<PartyId, Vec<u8>>,
        identity: &AccessControlIdentity,
        ct: &lit_crypto::ibe::Ciphertext,
    ) -> Result<String, HostError> {
        let message = identity.to_bytes();
        let mut shares = Vec::with_capacity(parts.len());
        for (from, bytes) in parts {
            let share = lit_crypto::bls::SignatureShare::from_bytes(&bytes)
                .ok()
                .filter(|s| s.id() == from)
                .filter(|s| self.keys.bls_set.verify_share(&message, s).is_ok())
                .ok_or_else(|| {
                    warn!(from = %from, "invalid decryption share from a peer");
                    HostError::Unavailable(format!("node {from} sent an invalid decryption share"))
                })?;
            shares.push(share);
        }
        let key = self
            .keys
            .bls_set
            .combine(&message, &shares)
            .map_err(|e| HostError::Unavailable(format!("combining the shares: {e}")))?;
        let plain =
            lit_crypto::ibe::decrypt_checked(&self.keys.bls_set.public_key(), &message, ct, &key)
                .map_err(|e| rejected(e.to_string()))?;
        identity
            .verify_plaintext(&plain)
            .map_err(|e| rejected(e.to_string()))?;
        String::from_utf8(plain.to_vec()).map_err(|_| rejected("the plaintext is not UTF-8 text"))
    }

    /// The group's presignature for signature `sig_name`, agreed by the group (see
    /// [`super::presign::agree`]) in this call's session, waiting for the lead at most
    /// [`PEER_WAIT`] and never past the action's deadline.
    async fn presignature(
        &self,
        sig_name: &str,
    ) -> Result<lit_crypto::ecdsa::Presignature, HostError> {
        let session = self.session("presignature", sig_name);
        let until = self.peer_deadline(Some(PEER_WAIT));
        super::presign::agree(&self.node, &self.keys, &self.group, session, until)
            .await
            .map(|(presignature, _)| presignature)
            .map_err(api_to_host)
    }

    /// The address conditions are checked for: the given auth signature's, or the caller's.
    fn condition_user(&self, auth_sig: Option<&serde_json::Value>) -> Result<Address, HostError> {
        match auth_sig {
            Some(v) => {
                let sig: AuthSig = serde_json::from_value(v.clone())
                    .map_err(|e| rejected(format!("authSig: {e}")))?;
                crate::auth::verify_auth_sig(&sig, OffsetDateTime::now_utc())
                    .map(|(a, _)| a)
                    .map_err(|e| rejected(format!("authSig: {e}")))
            }
            None => {
                let a = self.caller.address.as_deref().ok_or_else(|| {
                    rejected("no authSig given and the action was called without a wallet auth")
                })?;
                Address::parse(a).map_err(|e| rejected(e.to_string()))
            }
        }
    }

    /// Whether `conditions` (Lit's `accessControlConditions` shape: `conditionType` optional)
    /// hold for the condition user, with `:currentActionIpfsId` the running action's CID. An
    /// action has no `litParams`: a `:litParam:<name>` is an error here.
    async fn conditions_met(
        &self,
        ctx: &ActionContext,
        conditions: &serde_json::Value,
        auth_sig: Option<&serde_json::Value>,
    ) -> Result<(bool, Address), HostError> {
        let items = lit_api::conditions::parse(conditions).map_err(|e| rejected(e.to_string()))?;
        let user = self.condition_user(auth_sig)?;
        let cid = ctx.action_id.to_string();
        let runner = ConditionActionRunner { node: &self.node };
        let eval = crate::conditions::EvalContext::for_user(&user)
            .in_action(&cid)
            .with_actions(&runner);
        let met = self
            .node
            .evaluator
            .evaluate(&items, &eval)
            .await
            .map_err(|e| match e.code() {
                ErrorCode::ChainUnavailable => HostError::Unavailable(e.to_string()),
                _ => rejected(e.to_string()),
            })?;
        Ok((met, user))
    }

    /// This node's decryption share for `req`, if the caller's session grants decryption of
    /// exactly this data and the conditions hold for the caller. An `authSig` passed to the
    /// action is refused: it would travel to every node of the group, and any of them could
    /// replay it.
    async fn decryption_share(
        &self,
        ctx: &ActionContext,
        req: &DecryptAndCombine,
    ) -> Result<(Vec<u8>, AccessControlIdentity, lit_crypto::ibe::Ciphertext), String> {
        if req.auth_sig.is_some() {
            return Err(
                "decryptAndCombine takes no authSig (any node that saw it could replay \
                        it): the action decrypts for its caller, whose session must grant \
                        access-control-condition-decryption on this data"
                    .into(),
            );
        }
        let data_hash: [u8; 32] = parse_hex("dataToEncryptHash", &req.data_to_encrypt_hash)
            .map_err(|e| e.to_string())?
            .try_into()
            .map_err(|_| "dataToEncryptHash must be 32 bytes".to_owned())?;
        let identity =
            AccessControlIdentity::for_conditions(&req.access_control_conditions, data_hash)
                .map_err(|e| e.to_string())?;
        let resource = LitResource::decryption_of(&identity);
        if !self.caller.granted(
            resource.clone(),
            LitAbility::AccessControlConditionDecryption,
        ) {
            return Err(format!(
                "the caller's session does not grant access-control-condition-decryption on \
                 {resource}"
            ));
        }
        let (met, user) = self
            .conditions_met(ctx, &req.access_control_conditions, None)
            .await
            .map_err(|e| e.to_string())?;
        if !met {
            return Err(format!("access control conditions are not met for {user}"));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(req.ciphertext.trim())
            .map_err(|_| "ciphertext is not base64".to_owned())?;
        let ct = lit_crypto::ibe::Ciphertext::from_bytes(&bytes).map_err(|e| e.to_string())?;
        if ct.identity() != identity.to_bytes() {
            return Err(
                "the ciphertext was encrypted under other conditions or another data hash".into(),
            );
        }
        let share = self.keys.bls.sign(&identity.to_bytes());
        Ok((share.to_bytes().to_vec(), identity, ct))
    }
}

/// A combined signature in the shape Lit's `signAndCombineEcdsa` returns (a JSON string).
fn signature_json(
    sig: &lit_crypto::ecdsa::RecoverableSignature,
    public_key: &k256::AffinePoint,
    digest: &[u8; 32],
) -> String {
    json!({
        "r": hex::encode(sig.r),
        "s": hex::encode(sig.s),
        "v": sig.recovery_id,
        "signature": format!("0x{}", hex::encode(sig.to_ethereum_bytes())),
        "publicKey": hex::encode(public_key.to_encoded_point(false).as_bytes()),
        "dataSigned": hex::encode(digest),
    })
    .to_string()
}

#[async_trait]
impl ActionHost for NodeHost {
    async fn sign_ecdsa(&self, ctx: &ActionContext, req: SignEcdsa) -> Result<(), HostError> {
        let digest = digest_of(&req.to_sign)?;
        self.share_for_client(ctx, &req.public_key, digest, &req.sig_name, false)
            .await
    }

    async fn eth_personal_sign(
        &self,
        ctx: &ActionContext,
        req: EthPersonalSign,
    ) -> Result<(), HostError> {
        self.share_for_client(ctx, &req.public_key, req.digest(), &req.sig_name, true)
            .await
    }

    async fn action_public_key(
        &self,
        _ctx: &ActionContext,
        scheme: SigningScheme,
        action: &lit_actions::ActionId,
    ) -> Result<Vec<u8>, HostError> {
        let SigningScheme::EcdsaK256Sha256 = scheme else {
            return Err(rejected(format!("{scheme:?} is not offered")));
        };
        let key = lit_crypto::ecdsa::pkp_public_key(
            &self.keys.ecdsa.public_key(),
            &action_key_id(action),
        )
        .map_err(|e| HostError::Unavailable(e.to_string()))?;
        Ok(key.to_encoded_point(false).as_bytes().to_vec())
    }

    async fn sign_as_action(
        &self,
        ctx: &ActionContext,
        req: SignAsAction,
    ) -> Result<ActionSignature, HostError> {
        // no permission to check: the key is the running action's own, and only it signs here
        let digest = digest_of(&req.to_sign)?;
        let mine = self
            .share_with(action_key_id(&ctx.action_id), digest, &req.sig_name)
            .await;
        let (sig, public, context) = self.combine_across(&req.sig_name, mine).await?;
        let mut rs = [0u8; 64];
        rs[..32].copy_from_slice(&sig.r);
        rs[32..].copy_from_slice(&sig.s);
        Ok(ActionSignature::new(
            &rs,
            sig.recovery_id,
            public.to_encoded_point(false).as_bytes(),
            &context.digest.0,
        ))
    }

    async fn get_latest_nonce(
        &self,
        _ctx: &ActionContext,
        address: &str,
        chain: &str,
    ) -> Result<String, HostError> {
        use alloy_provider::Provider as _;
        let address: alloy_primitives::Address = address
            .parse()
            .map_err(|_| rejected(format!("address {address:?} is not an Ethereum address")))?;
        let url = self
            .node
            .chain_urls
            .get(chain)
            .ok_or_else(|| rejected(format!("this node has no RPC for chain {chain:?}")))?;
        // the URL often carries the operator's API key: it is logged, never answered
        let unavailable = |e: &dyn std::fmt::Display| {
            warn!(chain, "getLatestNonce: {e}");
            HostError::Unavailable(format!(
                "eth_getTransactionCount on chain {chain:?} failed (see the node's log)"
            ))
        };
        let provider = crate::chain::evm::read_only(url).map_err(|e| unavailable(&e))?;
        let count = tokio::time::timeout_at(
            self.peer_deadline(Some(PEER_WAIT)),
            provider
                .get_transaction_count(address)
                .block_id(alloy_rpc_types_eth::BlockId::latest()),
        )
        .await
        .map_err(|e| unavailable(&e))?
        .map_err(|e| unavailable(&e))?;
        Ok(format!("0x{count:x}"))
    }

    async fn call_action(
        &self,
        _ctx: &ActionContext,
        req: CallAction,
    ) -> Result<CalledAction, HostError> {
        let id = req.ipfs_id.to_string();
        let index = {
            let mut st = self.state();
            st.children += 1;
            st.children
        };
        let child = stored_action(&self.node, &id)
            .map_err(api_to_host)?
            .with_params(req.params)
            .with_auth(req.auth)
            .with_budget(req.budget)
            .with_headers(req.headers);
        // the child's peer sessions are its own: scoped by the parent's scope, the call's index
        // in the parent and the child's id (the same at every member running the same code)
        let scope: [u8; 32] = Sha256::new()
            .chain_update(b"lit-node/action/child/v1")
            .chain_update(self.action_id)
            .chain_update(index.to_be_bytes())
            .chain_update(id.as_bytes())
            .finalize()
            .into();
        let host = Arc::new(NodeHost {
            node: self.node.clone(),
            keys: self.keys.clone(),
            group: self.group.clone(),
            request_id: self.request_id,
            action_id: scope,
            client: self.client.clone(),
            caller: self.caller.clone(),
            deadline: self.deadline,
            state: Mutex::new(HostState::default()),
        });
        let outcome = self
            .node
            .engine
            .run(&child, host.clone())
            .await
            .map_err(|e| rejected(format!("the child action {id} failed: {e}")))?;
        // the child's signEcdsa shares go back to the client with the parent's, as Lit's do
        let signed = std::mem::take(&mut host.state().signed);
        let mut st = self.state();
        for (name, share) in signed {
            if st.signed.contains_key(&name) {
                return Err(rejected(format!(
                    "the sigName {name:?} is used by both the calling action and its child {id}"
                )));
            }
            st.signed.insert(name, share);
        }
        Ok(CalledAction::new(outcome.response, outcome.usage))
    }

    async fn decrypt_to_single_node(
        &self,
        ctx: &ActionContext,
        req: DecryptAndCombine,
    ) -> Result<String, HostError> {
        let n = {
            let mut st = self.state();
            st.single_decryptions += 1;
            st.single_decryptions
        };
        let kind = "single-node decryption share";
        let session = self.session(kind, &n.to_string());
        let leader = self.chosen(&session)?;
        let mine = self.decryption_share(ctx, &req).await;
        if leader != self.node.me {
            // the share (or the refusal) goes to the chosen member only; this one learns nothing
            let part = match &mine {
                Ok((share, _, _)) => Part::Ok(share.clone()),
                Err(why) => Part::Refused(why.clone()),
            };
            let bytes =
                serde_json::to_vec(&part).map_err(|e| HostError::Unavailable(e.to_string()))?;
            self.node
                .net
                .send(session, Some(leader), &self.members(), &bytes);
            mine.map_err(rejected)?;
            return Ok(String::new());
        }
        let inbox = self
            .node
            .net
            .inbox(session)
            .map_err(|_| rejected(format!("{kind} {n} already ran here")))?;
        let (share, identity, ct) = mine.map_err(rejected)?;
        let parts = self
            .gather(inbox, kind, &n.to_string(), [(self.node.me, share)].into())
            .await?;
        self.open(parts, &identity, &ct)
    }

    async fn claim_key(&self, _ctx: &ActionContext, key_id: &str) -> Result<(), HostError> {
        Err(rejected(format!(
            "claimKey({key_id:?}) is not offered by this network: Lit's claim gives the caller \
             node signatures to mint, on Lit's PKP contract, a PKP whose key is derived from the \
             action and the key id; here PKPs are minted by the network (POST /v1/pkp/mint) with \
             a fresh random key id and there is no claim-and-mint. Mint a PKP and permit the \
             action on it instead"
        )))
    }

    async fn sign_and_combine_ecdsa(
        &self,
        ctx: &ActionContext,
        req: SignEcdsa,
    ) -> Result<String, HostError> {
        let mine = self
            .sign_share(ctx, &req)
            .await
            .map(|(share, _, context)| (share, context));
        let (sig, public, context) = self.combine_across(&req.sig_name, mine).await?;
        Ok(signature_json(&sig, &public, &context.digest.0))
    }

    async fn check_conditions(
        &self,
        ctx: &ActionContext,
        req: CheckConditions,
    ) -> Result<bool, HostError> {
        self.conditions_met(ctx, &req.conditions, req.auth_sig.as_ref())
            .await
            .map(|(met, _)| met)
    }

    async fn decrypt_and_combine(
        &self,
        ctx: &ActionContext,
        req: DecryptAndCombine,
    ) -> Result<String, HostError> {
        let n = {
            let mut st = self.state();
            st.decryptions += 1;
            st.decryptions
        };
        let mine = self.decryption_share(ctx, &req).await;
        let part = match &mine {
            Ok((share, _, _)) => Part::Ok(share.clone()),
            Err(why) => Part::Refused(why.clone()),
        };
        let parts = self
            .exchange("decryption share", &n.to_string(), part)
            .await?;
        let (_, identity, ct) = mine.map_err(rejected)?;
        self.open(parts, &identity, &ct)
    }

    async fn encrypt(&self, _ctx: &ActionContext, req: Encrypt) -> Result<Encrypted, HostError> {
        lit_api::conditions::parse(&req.access_control_conditions)
            .map_err(|e| rejected(e.to_string()))?;
        let data_hash: [u8; 32] = Sha256::digest(&req.to_encrypt).into();
        let identity =
            AccessControlIdentity::for_conditions(&req.access_control_conditions, data_hash)
                .map_err(|e| rejected(e.to_string()))?;
        let ct = lit_crypto::ibe::encrypt(
            &self.keys.bls_set.public_key(),
            &identity.to_bytes(),
            &req.to_encrypt,
        )
        .map_err(|e| HostError::Unavailable(e.to_string()))?;
        Ok(Encrypted::new(
            base64::engine::general_purpose::STANDARD.encode(ct.to_bytes()),
            hex::encode(data_hash),
        ))
    }

    async fn pkp_info(
        &self,
        _ctx: &ActionContext,
        token_id: [u8; 32],
    ) -> Result<Option<lit_api::v1::PkpInfo>, HostError> {
        // public on a chain, so public here: any action may read any PKP's permissions
        let registry = registry(&self.node).map_err(api_to_host)?;
        let token = hex::encode(token_id);
        blocking(move || registry.get(&token))
            .await
            .map_err(api_to_host)
    }

    async fn get_rpc_url(&self, _ctx: &ActionContext, chain: &str) -> Result<String, HostError> {
        // an RPC URL often carries the operator's API key: not for anyone who asks
        if !self.caller.authenticated() {
            return Err(rejected(format!(
                "getRpcUrl for chain {chain:?} is refused: the node gives RPC URLs only to callers \
                 that authenticated (run the action with a wallet, session or auth method auth)"
            )));
        }
        self.node
            .chain_urls
            .get(chain)
            .cloned()
            .ok_or_else(|| rejected(format!("this node has no RPC for chain {chain:?}")))
    }

    async fn run_once(&self, _ctx: &ActionContext, req: RunOnce) -> Result<RunOnceRole, HostError> {
        self.claim("runOnce", &req.name)?;
        let session = self.session("runOnce", &req.name);
        let chosen = self.chosen(&session)?;
        if chosen == self.node.me {
            return Ok(RunOnceRole::Run);
        }
        if !req.wait_for_response {
            // not waiting: the chosen node's result is dropped quietly when it arrives
            drop(self.node.net.inbox(session));
            return Ok(RunOnceRole::Wait { result: None });
        }
        // the chosen node's function may take as long as the action may run
        let bytes = self
            .wait_for(
                session,
                chosen,
                &format!("runOnce {:?} result", req.name),
                None,
            )
            .await?;
        let result = String::from_utf8(bytes).map_err(|_| {
            HostError::Unavailable(format!("node {chosen} sent a non-UTF-8 result"))
        })?;
        Ok(RunOnceRole::Wait {
            result: Some(result),
        })
    }

    async fn run_once_result(
        &self,
        _ctx: &ActionContext,
        name: &str,
        result: &str,
    ) -> Result<(), HostError> {
        self.send_all(self.session("runOnce", name), result.as_bytes());
        Ok(())
    }

    async fn broadcast_and_collect(
        &self,
        _ctx: &ActionContext,
        req: BroadcastAndCollect,
    ) -> Result<Vec<String>, HostError> {
        self.claim("broadcast", &req.name)?;
        let parts = self
            .exchange("value", &req.name, Part::Ok(req.value.into_bytes()))
            .await?;
        parts
            .into_iter()
            .map(|(from, b)| {
                String::from_utf8(b)
                    .map_err(|_| HostError::Unavailable(format!("node {from} sent non-UTF-8")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_exceptions_have_their_own_codes() {
        let code = |e: ActionError| action_error(e).code();
        assert_eq!(
            code(ActionError::Timeout { limit_ms: 5 }),
            ErrorCode::ActionLimit
        );
        assert_eq!(
            code(ActionError::MemoryLimit { limit_bytes: 1 }),
            ErrorCode::ActionLimit
        );
        assert_eq!(
            code(ActionError::ResponseTooLarge { size: 2, limit: 1 }),
            ErrorCode::ActionLimit
        );
        assert_eq!(
            code(ActionError::Script {
                message: "Error: x".into()
            }),
            ErrorCode::ActionFailed
        );
        assert_eq!(
            code(ActionError::Engine {
                engine: "deno",
                reason: "spawn".into()
            }),
            ErrorCode::Internal
        );
        let e = action_error(ActionError::Timeout { limit_ms: 2000 });
        assert_eq!(e.message(), "the action exceeded its time limit of 2000 ms");
    }
}
