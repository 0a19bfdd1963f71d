//! The node's side of `Lit.Actions`: the [`ActionHost`] trait and the shapes of its calls.
//!
//! Engines only marshal: every call below reaches the host with its arguments already checked
//! against these types (a wrong type is a JavaScript `TypeError` in the action, never a host
//! call). Names and argument shapes are Lit's.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cid::ActionId;
use crate::error::HostError;

/// `Lit.Auth`: who is running the action, as the node established it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthContext {
    /// Ids of the actions in the call chain (the running action's id is always included);
    /// `Lit.Auth.actionIpfsIdStack`, Lit's name.
    #[serde(rename = "actionIpfsIdStack")]
    pub action_ipfs_ids: Vec<String>,
    /// Address recovered from the caller's auth signature, when there is one.
    pub auth_sig_address: Option<String>,
    /// Auth methods the caller proved (their JSON, as the node resolved them).
    pub auth_method_contexts: Vec<Value>,
    /// Resources the session grants.
    pub resources: Vec<Value>,
    /// A custom auth resource set by a previous action.
    pub custom_auth_resource: Option<String>,
}

impl AuthContext {
    /// A context for a caller authenticated by `address` (an auth signature).
    pub fn with_address(address: impl Into<String>) -> Self {
        Self {
            auth_sig_address: Some(address.into()),
            ..Self::default()
        }
    }
}

/// What the host knows about the action making a call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ActionContext {
    /// The running action's id.
    pub action_id: ActionId,
    /// `Lit.Auth`.
    pub auth: AuthContext,
}

/// `Lit.Actions.signEcdsa` / `signAndCombineEcdsa` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SignEcdsa {
    /// The 32-byte message hash to sign.
    pub to_sign: Vec<u8>,
    /// The PKP's public key (hex, with or without `0x`).
    pub public_key: String,
    /// Name under which the signature (share) is returned.
    pub sig_name: String,
}

/// `Lit.Actions.checkConditions` arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct CheckConditions {
    /// Access control conditions (Lit's JSON).
    pub conditions: Value,
    /// The caller's auth signature, if any.
    #[serde(default)]
    pub auth_sig: Option<Value>,
    /// The chain the conditions are checked on.
    pub chain: String,
}

/// `Lit.Actions.decryptAndCombine` arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct DecryptAndCombine {
    /// The conditions the data was encrypted under.
    pub access_control_conditions: Value,
    /// The ciphertext (base64).
    pub ciphertext: String,
    /// Hash of the plaintext (hex).
    pub data_to_encrypt_hash: String,
    /// The caller's auth signature, if any (`null` uses the action's own authority).
    #[serde(default)]
    pub auth_sig: Option<Value>,
    /// The chain the conditions are checked on.
    pub chain: String,
}

/// `Lit.Actions.encrypt` arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct Encrypt {
    /// The conditions to encrypt under.
    pub access_control_conditions: Value,
    /// The plaintext (Lit's spelling: `to_encrypt`).
    #[serde(rename = "to_encrypt")]
    pub to_encrypt: Vec<u8>,
}

/// What `Lit.Actions.encrypt` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Encrypted {
    /// The ciphertext (base64).
    pub ciphertext: String,
    /// Hash of the plaintext (hex).
    pub data_to_encrypt_hash: String,
}

impl Encrypted {
    /// An encryption result.
    pub fn new(ciphertext: String, data_to_encrypt_hash: String) -> Self {
        Self {
            ciphertext,
            data_to_encrypt_hash,
        }
    }
}

/// `Lit.Actions.runOnce` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct RunOnce {
    /// Name of this run-once section (unique within the action).
    pub name: String,
    /// Whether the other nodes wait for the chosen node's result.
    #[serde(default)]
    pub wait_for_response: bool,
}

/// The host's decision for a `runOnce` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "role")]
#[non_exhaustive]
pub enum RunOnceRole {
    /// This node is the chosen one: it runs the function and reports the result with
    /// [`ActionHost::run_once_result`].
    Run,
    /// Another node runs it; here is its result (`None` when not waiting for it).
    Wait {
        /// The chosen node's result.
        result: Option<String>,
    },
}

/// `Lit.Actions.broadcastAndCollect` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct BroadcastAndCollect {
    /// Name of the round.
    pub name: String,
    /// This node's value.
    pub value: String,
}

/// The node's implementation of `Lit.Actions`. Calls may be concurrent (an action may
/// `Promise.all` them) and may take network round trips.
///
/// Every method has Lit's meaning; a returned [`HostError`] is thrown into the action. A
/// method a host does not implement rejects the call with [`HostError::Unsupported`].
#[async_trait]
pub trait ActionHost: Send + Sync {
    /// `signEcdsa`: produce this node's signature share of `to_sign` with the PKP.
    async fn sign_ecdsa(&self, _ctx: &ActionContext, _req: SignEcdsa) -> Result<(), HostError> {
        Err(HostError::Unsupported("signEcdsa"))
    }
    /// `signAndCombineEcdsa`: sign with the PKP across the network and return the combined
    /// signature (Lit returns it as a JSON string).
    async fn sign_and_combine_ecdsa(
        &self,
        _ctx: &ActionContext,
        _req: SignEcdsa,
    ) -> Result<String, HostError> {
        Err(HostError::Unsupported("signAndCombineEcdsa"))
    }
    /// `checkConditions`: whether the conditions hold for the auth signature.
    async fn check_conditions(
        &self,
        _ctx: &ActionContext,
        _req: CheckConditions,
    ) -> Result<bool, HostError> {
        Err(HostError::Unsupported("checkConditions"))
    }
    /// `decryptAndCombine`: decrypt across the network and return the plaintext.
    async fn decrypt_and_combine(
        &self,
        _ctx: &ActionContext,
        _req: DecryptAndCombine,
    ) -> Result<String, HostError> {
        Err(HostError::Unsupported("decryptAndCombine"))
    }
    /// `encrypt`: encrypt to the network key under conditions.
    async fn encrypt(&self, _ctx: &ActionContext, _req: Encrypt) -> Result<Encrypted, HostError> {
        Err(HostError::Unsupported("encrypt"))
    }
    /// `getRpcUrl`: the node's RPC endpoint for a chain.
    async fn get_rpc_url(&self, _ctx: &ActionContext, _chain: &str) -> Result<String, HostError> {
        Err(HostError::Unsupported("getRpcUrl"))
    }
    /// `runOnce`: whether this node runs the section, or the chosen node's result.
    async fn run_once(
        &self,
        _ctx: &ActionContext,
        _req: RunOnce,
    ) -> Result<RunOnceRole, HostError> {
        Err(HostError::Unsupported("runOnce"))
    }
    /// The result of a `runOnce` section this node was chosen for, to share with the others.
    async fn run_once_result(
        &self,
        _ctx: &ActionContext,
        _name: &str,
        _result: &str,
    ) -> Result<(), HostError> {
        Err(HostError::Unsupported("runOnce"))
    }
    /// The PKP permission queries (`isPermittedAction`, `getPermittedAddresses`,
    /// `getPermittedAuthMethodScopes`, …, answered by the runtime from this): the network's
    /// record of the PKP with token id `token_id`, `None` when it has no such PKP (Lit's
    /// contract then answers with empty lists and `false`).
    async fn pkp_info(
        &self,
        _ctx: &ActionContext,
        _token_id: [u8; 32],
    ) -> Result<Option<lit_api::v1::PkpInfo>, HostError> {
        Err(HostError::Unsupported("PKP permission queries"))
    }
    /// `broadcastAndCollect`: send `value` to the other nodes, return every node's value.
    async fn broadcast_and_collect(
        &self,
        _ctx: &ActionContext,
        _req: BroadcastAndCollect,
    ) -> Result<Vec<String>, HostError> {
        Err(HostError::Unsupported("broadcastAndCollect"))
    }
}

/// A host that offers no `Lit.Actions` capability: every call is rejected with
/// [`HostError::Unsupported`]. For actions that only compute, log and set a response.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCapabilities;

impl ActionHost for NoCapabilities {}
