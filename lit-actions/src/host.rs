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

/// `Lit.Actions.ethPersonalSignMessageEcdsa` arguments: `message` is signed as an Ethereum
/// personal message (EIP-191: `keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ message)`),
/// otherwise as [`SignEcdsa`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct EthPersonalSign {
    /// The message (Lit takes a string and signs its UTF-8 bytes).
    pub message: Vec<u8>,
    /// The PKP's public key (hex, with or without `0x`).
    pub public_key: String,
    /// Name under which the signature share is returned.
    pub sig_name: String,
}

impl EthPersonalSign {
    /// The 32-byte digest that is signed: the EIP-191 hash of the message.
    pub fn digest(&self) -> [u8; 32] {
        lit_crypto::eth::eip191_hash(&self.message)
    }
}

/// A signing scheme by Lit's name (`signingScheme` of `signAsAction`, `getActionPublicKey`,
/// `verifyActionSignature`). The network holds one secp256k1 ECDSA root key, so only
/// `EcdsaK256Sha256` is offered; Lit's other names are known and refused by name
/// ([`SigningScheme::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SigningScheme {
    /// ECDSA on secp256k1 over a 32-byte message hash.
    EcdsaK256Sha256,
}

/// Lit's signing schemes that this network does not offer (its keys are secp256k1 ECDSA and
/// BLS12-381 for encryption only).
pub const UNSUPPORTED_SIGNING_SCHEMES: [&str; 14] = [
    "EcdsaP256Sha256",
    "EcdsaP384Sha384",
    "SchnorrEd25519Sha512",
    "SchnorrK256Sha256",
    "SchnorrP256Sha256",
    "SchnorrP384Sha384",
    "SchnorrRistretto25519Sha512",
    "SchnorrEd448Shake256",
    "SchnorrRedJubjubBlake2b512",
    "SchnorrK256Taproot",
    "SchnorrRedDecaf377Blake2b512",
    "SchnorrkelSubstrate",
    "Bls12381G1ProofOfPossession",
    "Bls12381",
];

impl SigningScheme {
    /// Lit's name of the scheme.
    pub fn name(self) -> &'static str {
        match self {
            SigningScheme::EcdsaK256Sha256 => "EcdsaK256Sha256",
        }
    }

    /// The scheme named `name`; Lit's schemes this network does not offer and unknown names
    /// are refused with a message that says which.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "EcdsaK256Sha256" => Ok(SigningScheme::EcdsaK256Sha256),
            other if UNSUPPORTED_SIGNING_SCHEMES.contains(&other) => Err(format!(
                "signing scheme {other:?} is not supported by this network (its keys are \
                 secp256k1 ECDSA): use \"EcdsaK256Sha256\""
            )),
            other => Err(format!(
                "unknown signing scheme {other:?} (this network signs with \"EcdsaK256Sha256\")"
            )),
        }
    }
}

/// The key id of an action's own key ([`ActionHost::action_public_key`], `signAsAction`): a
/// domain-separation tag followed by the CID's multihash. PKP key ids are always 32 bytes, this
/// one is longer, so no action key is ever a PKP's, and two CIDs never share a key.
pub fn action_key_id(action: &ActionId) -> Vec<u8> {
    let mut id = ACTION_KEY_DOMAIN.to_vec();
    id.extend_from_slice(action.multihash());
    id
}

/// How deep `Lit.Actions.call` may nest, as Lit's: the action the caller ran is at depth 0, a
/// child it calls at depth 1, and a call that would run a child at depth 6 is refused.
pub const MAX_CALL_DEPTH: usize = 5;

/// The domain-separation tag of [`action_key_id`].
pub const ACTION_KEY_DOMAIN: &[u8] = b"lit-actions/action-key/v1:";

/// `Lit.Actions.signAsAction` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignAsAction {
    /// The 32-byte message hash to sign.
    pub to_sign: Vec<u8>,
    /// Name of the signature (unique among the action's signatures).
    pub sig_name: String,
    /// The scheme.
    pub scheme: SigningScheme,
}

/// A signature made with `signAsAction`, in Lit's shape (`SignedDataOutput`): `signature` is the
/// JSON text of the `(r, s)` signature as upper-case hex of its 64 bytes (as the `ecdsa` crate
/// serialises it), `verifying_key` the uncompressed SEC1 public key in hex, `signed_data` the
/// message hash in hex, `recovery_id` 0 or 1. The action receives it as a JSON string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActionSignature {
    /// `"\"<R‖S upper-case hex>\""`.
    pub signature: String,
    /// Uncompressed SEC1 public key, hex.
    pub verifying_key: String,
    /// The 32-byte hash signed, hex.
    pub signed_data: String,
    /// The recovery id (`v - 27` in Ethereum terms).
    pub recovery_id: Option<u8>,
}

impl ActionSignature {
    /// The output for a low-`s` signature `rs` (64 bytes) of `digest` by `public_key`
    /// (uncompressed SEC1, 65 bytes), with its recovery id.
    pub fn new(rs: &[u8; 64], recovery_id: u8, public_key: &[u8], digest: &[u8; 32]) -> Self {
        Self {
            signature: format!("\"{}\"", hex::encode_upper(rs)),
            verifying_key: hex::encode(public_key),
            signed_data: hex::encode(digest),
            recovery_id: Some(recovery_id),
        }
    }
}

/// `Lit.Actions.call` arguments, with the share of the caller's budget the child may use.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallAction {
    /// The child's content id.
    pub ipfs_id: ActionId,
    /// The child's `jsParams`.
    pub params: serde_json::Map<String, Value>,
    /// `Lit.Auth` of the child: the caller's, with the child's id pushed on
    /// `actionIpfsIdStack`.
    pub auth: AuthContext,
    /// What the child may still use of the caller's budget.
    pub budget: crate::Budget,
    /// `Lit.Headers` of the child: the request's, as the caller's.
    pub headers: std::collections::BTreeMap<String, String>,
}

/// What a child action run by `Lit.Actions.call` produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CalledAction {
    /// Its response (`None`: it never called `setResponse`).
    pub response: Option<String>,
    /// What it used (added to the caller's usage).
    pub usage: crate::Usage,
}

impl CalledAction {
    /// A child's result.
    pub fn new(response: Option<String>, usage: crate::Usage) -> Self {
        Self { response, usage }
    }
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
    /// `ethPersonalSignMessageEcdsa`: this node's signature share of the EIP-191 hash of the
    /// message with the PKP (as [`ActionHost::sign_ecdsa`]; a PKP's `personal-sign` scope
    /// suffices for it).
    async fn eth_personal_sign(
        &self,
        _ctx: &ActionContext,
        _req: EthPersonalSign,
    ) -> Result<(), HostError> {
        Err(HostError::Unsupported("ethPersonalSignMessageEcdsa"))
    }
    /// `getActionPublicKey`: the public key of the action `action`'s own key (uncompressed
    /// SEC1 bytes), derived from the network's root key with [`action_key_id`].
    async fn action_public_key(
        &self,
        _ctx: &ActionContext,
        _scheme: SigningScheme,
        _action: &ActionId,
    ) -> Result<Vec<u8>, HostError> {
        Err(HostError::Unsupported("getActionPublicKey"))
    }
    /// `signAsAction`: sign with the running action's own key across the network and return
    /// the combined signature. Only the action itself can: no PKP or caller permission applies.
    async fn sign_as_action(
        &self,
        _ctx: &ActionContext,
        _req: SignAsAction,
    ) -> Result<ActionSignature, HostError> {
        Err(HostError::Unsupported("signAsAction"))
    }
    /// `getLatestNonce`: the transaction count of `address` at the latest block of `chain`
    /// (`eth_getTransactionCount`), as `0x` hex as Lit gives it.
    async fn get_latest_nonce(
        &self,
        _ctx: &ActionContext,
        _address: &str,
        _chain: &str,
    ) -> Result<String, HostError> {
        Err(HostError::Unsupported("getLatestNonce"))
    }
    /// `call`: run the action `req.ipfs_id` (code the node has) as a child of the calling
    /// action, with its own sessions between nodes, and return what it produced.
    async fn call_action(
        &self,
        _ctx: &ActionContext,
        _req: CallAction,
    ) -> Result<CalledAction, HostError> {
        Err(HostError::Unsupported("call"))
    }
    /// `decryptToSingleNode`: as `decryptAndCombine`, but the decryption shares go to one node
    /// of the group, chosen per call, which alone learns (and returns) the plaintext; the
    /// others return an empty string.
    async fn decrypt_to_single_node(
        &self,
        _ctx: &ActionContext,
        _req: DecryptAndCombine,
    ) -> Result<String, HostError> {
        Err(HostError::Unsupported("decryptToSingleNode"))
    }
    /// `claimKey`: claim a key derived from the action and `key_id` (Lit's claim-and-mint).
    async fn claim_key(&self, _ctx: &ActionContext, _key_id: &str) -> Result<(), HostError> {
        Err(HostError::Unsupported("claimKey"))
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
