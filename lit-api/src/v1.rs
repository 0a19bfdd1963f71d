//! Requests and responses of the `/v1` endpoints. Every request type refuses unknown fields.

use serde::{Deserialize, Serialize};

use crate::{Bytes, Bytes32};

/// Endpoint paths.
pub mod paths {
    /// `POST`: [`super::HandshakeRequest`] → [`super::HandshakeResponse`].
    pub const HANDSHAKE: &str = "/v1/handshake";
    /// `POST`: [`super::EncryptionSignRequest`] → [`super::EncryptionSignResponse`].
    pub const ENCRYPTION_SIGN: &str = "/v1/encryption/sign";
    /// `GET`: [`super::Health`].
    pub const HEALTH: &str = "/v1/health";
    /// `POST`: [`super::PeerMessage`], node to node only.
    pub const PEER_MESSAGE: &str = "/v1/peer/message";
    /// `POST`: [`super::PkpMintRequest`] → [`super::PkpInfo`].
    pub const PKP_MINT: &str = "/v1/pkp/mint";
    /// `POST`: [`super::PkpInfoRequest`] → [`super::PkpInfo`].
    pub const PKP_INFO: &str = "/v1/pkp/info";
    /// `POST`: [`super::PkpPermissionsRequest`] → [`super::PkpInfo`].
    pub const PKP_PERMISSIONS: &str = "/v1/pkp/permissions";
    /// `POST`: [`super::PkpSignRequest`] → [`super::PkpSignResponse`].
    pub const PKP_SIGN: &str = "/v1/pkp/sign";
    /// `POST`: [`super::SessionSignRequest`] → [`super::SessionSignResponse`].
    pub const SESSION_SIGN: &str = "/v1/session/sign";
    /// `POST`: [`super::ExecuteRequest`] → [`super::ExecuteResponse`].
    pub const EXECUTE: &str = "/v1/execute";
    /// `POST`: [`super::ActionUploadRequest`] → [`super::ActionUploadResponse`].
    pub const ACTION_UPLOAD: &str = "/v1/actions/upload";
    /// `GET`: [`super::EpochKeys`] of the node's current epoch (public: the commitments that a
    /// node joining at the next epoch needs to take part in the reshare).
    pub const EPOCH_KEYS: &str = "/v1/epoch/keys";
    /// `GET`: [`super::NetworkStatus`]: the network as the chain records it (`lit network`).
    pub const NETWORK_STATUS: &str = "/v1/network";
    /// `POST`: a node's attestation for a peer ([`super::PeerAttestRequest`]), also before it
    /// holds keys (a joining node is checked before it receives shares).
    pub const PEER_ATTEST: &str = "/v1/peer/attest";
    /// `GET`: [`crate::ledger::LedgerStatus`]: the ledger and its prices.
    pub const LEDGER: &str = "/v1/ledger";
    /// `POST`: [`crate::ledger::LedgerAccountRequest`] → [`crate::ledger::LedgerAccount`].
    pub const LEDGER_ACCOUNT: &str = "/v1/ledger/account";
    /// `POST`: [`crate::ledger::LedgerOpRequest`] (embedded chain) →
    /// [`crate::ledger::LedgerAccount`].
    pub const LEDGER_OP: &str = "/v1/ledger/op";
    /// `POST`: [`crate::ledger::FaucetRequest`] → [`crate::ledger::FaucetResponse`] (devnets).
    pub const LEDGER_FAUCET: &str = "/v1/ledger/faucet";
}

/// An Ethereum wallet's signature over a SIWE (EIP-4361) message, in Lit's `AuthSig` shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthSig {
    /// The 65-byte `r ‖ s ‖ v` EIP-191 signature, hex with `0x`.
    pub sig: String,
    /// How it was made: `"web3.eth.personal.sign"` for EIP-191 wallet signatures.
    pub derived_via: String,
    /// The SIWE message that was signed.
    pub signed_message: String,
    /// The address that claims to have signed, `0x` + 40 hex digits.
    pub address: String,
    /// Absent for wallet signatures; `"ed25519"` when this is a per-node session signature
    /// ([`crate::session::SessionSig`]) sent where Lit's SDK sends one, in the `authSig` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algo: Option<String>,
}

/// The `derivedVia` of an EIP-191 wallet signature.
pub const DERIVED_VIA_PERSONAL_SIGN: &str = "web3.eth.personal.sign";

/// `POST /v1/handshake`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HandshakeRequest {
    /// A fresh random challenge the node binds into its attestation.
    pub challenge: Bytes32,
}

/// Which kind of attestation evidence a node sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttestationKind {
    /// An AMD SEV-SNP report with its VCEK/VLEK certificate.
    SevSnp,
    /// A development-network simulation: NOT hardware, accepted only by policies that allow it.
    Simulated,
}

/// Attestation evidence, bound to the node identity key and the client's challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attestation {
    /// The kind of evidence.
    pub kind: AttestationKind,
    /// The evidence bundle as encoded by `lit-attest`.
    pub evidence: Bytes,
}

/// The network's long-lived public keys (the same across reshares).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkKeys {
    /// The BLS12-381 G1 public key (48 bytes compressed): encryption and network signatures.
    pub bls: Bytes,
    /// The secp256k1 root key (33 bytes compressed) from which PKP keys derive.
    pub ecdsa: Bytes,
    /// The BLS public key set (`lit_crypto::bls::PublicKeySet::to_bytes`): the threshold
    /// commitment from which every node's public key share follows, so clients verify each
    /// share they receive. Its public key is `bls`.
    pub bls_key_set: Bytes,
}

/// A node as it describes itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeIdentity {
    /// Its party id in the current epoch (its Shamir evaluation point).
    pub party_id: u32,
    /// Its public URL.
    pub url: String,
    /// Its identity (signing) public key.
    pub identity_key: Bytes,
    /// Its X25519 key for sealing payloads to it.
    pub seal_key: Bytes32,
}

/// `POST /v1/handshake` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HandshakeResponse {
    /// The API version the node speaks.
    pub api_version: u32,
    /// Who the node is.
    pub node: NodeIdentity,
    /// The current epoch.
    pub epoch: u64,
    /// Shares needed to combine.
    pub threshold: u32,
    /// Nodes in the epoch.
    pub node_count: u32,
    /// The network's public keys.
    pub network_keys: NetworkKeys,
    /// The network's SIWE domain ([`crate::network::NetworkFile::domain`]): wallets' capabilities
    /// must be sign-ins to it.
    pub domain: String,
    /// The node's attestation bound to its identity key and the request's challenge.
    pub attestation: Attestation,
    /// The members of the epoch (networks whose membership is on a chain: clients reach the
    /// members that joined after their network file was written); empty for a static network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<crate::network::NetworkNode>,
}

/// `POST /v1/peer/attest`: a peer's challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerAttestRequest {
    /// A fresh random challenge the node binds into its attestation.
    pub challenge: Bytes32,
}

/// `POST /v1/peer/attest` answer: the node's keys, attested. The attestation binds the identity
/// key, the peer's challenge, epoch 0 (a node is checked before it serves any epoch) and
/// [`PeerAttestResponse::attested_digest`], so a proxy cannot pass another node's evidence off
/// or swap the keys peers seal shares to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerAttestResponse {
    /// The node's ed25519 identity key.
    pub identity_key: Bytes32,
    /// Its X25519 key (peers seal private payloads to it).
    pub seal_key: Bytes32,
    /// Its secp256k1 DKG key (SEC1 compressed).
    pub dkg_key: Bytes,
    /// The evidence.
    pub attestation: Attestation,
}

/// The domain tag of [`PeerAttestResponse::attested_digest`].
pub const PEER_ATTESTED_DOMAIN: &[u8] = b"lit/v1/peer-attested";

impl PeerAttestResponse {
    /// The `context` of the attestation's binding: SHA-256 of [`PEER_ATTESTED_DOMAIN`] and the
    /// JSON of this answer with an empty evidence (the keys and the evidence kind).
    pub fn attested_digest(&self) -> [u8; 32] {
        let unattested = PeerAttestResponse {
            attestation: self.attestation.without_evidence(),
            ..self.clone()
        };
        attested_digest_of(PEER_ATTESTED_DOMAIN, &unattested)
    }
}

/// The domain tag of [`HandshakeResponse::attested_digest`].
pub const HANDSHAKE_ATTESTED_DOMAIN: &[u8] = b"lit/v1/handshake-attested";

impl HandshakeResponse {
    /// What the node's attestation covers besides its identity key, the client's challenge and
    /// the epoch (the `context` of its `lit_attest::Binding`): SHA-256 of
    /// [`HANDSHAKE_ATTESTED_DOMAIN`] and the JSON of this answer with an empty evidence. It
    /// covers everything the client relies on: the network keys and key set, threshold, node
    /// count, domain, members, and the node's party id, URL and seal key. A client that verified
    /// the attestation against it knows that no proxy changed any of these (for example swapped
    /// the key set, so that data would be encrypted to another key).
    pub fn attested_digest(&self) -> [u8; 32] {
        let unattested = HandshakeResponse {
            attestation: self.attestation.without_evidence(),
            ..self.clone()
        };
        attested_digest_of(HANDSHAKE_ATTESTED_DOMAIN, &unattested)
    }
}

impl Attestation {
    /// The evidence, decoded, and checked to be of the kind the answer claims (hardware evidence
    /// for `sev-snp`, simulated evidence otherwise). It is not verified here.
    pub fn decode(&self) -> Result<lit_attest::Evidence, String> {
        let text = std::str::from_utf8(self.evidence.as_slice())
            .map_err(|_| "evidence is not UTF-8".to_string())?;
        let evidence =
            lit_attest::Evidence::from_json(text).map_err(|e| format!("evidence: {e}"))?;
        if evidence.is_hardware() != (self.kind == AttestationKind::SevSnp) {
            return Err(format!(
                "attestation kind {:?} does not match the evidence",
                self.kind
            ));
        }
        Ok(evidence)
    }

    /// The same kind, no evidence: what an answer's attested digest covers of it.
    fn without_evidence(&self) -> Attestation {
        Attestation {
            kind: self.kind,
            evidence: Bytes(Vec::new()),
        }
    }
}

/// SHA-256 of `domain` and the JSON of `unattested` (an answer with its evidence left out).
fn attested_digest_of<T: Serialize>(domain: &[u8], unattested: &T) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(domain);
    // serializing a struct of this crate cannot fail: no maps with non-string keys
    h.update(serde_json::to_vec(unattested).unwrap_or_default());
    h.finalize().into()
}

/// `GET /v1/network`: the network as the node reads it from the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkStatus {
    /// The chain's current epoch.
    pub epoch: u64,
    /// The epoch whose shares this node serves (0: none).
    pub serving_epoch: u64,
    /// `"active"` (operators may join and leave) or `"locked"` (the next set is reshared).
    pub state: String,
    /// The current set's threshold.
    pub threshold: u32,
    /// The next set's threshold.
    pub next_threshold: u32,
    /// When the epoch began (Unix seconds).
    pub epoch_start: u64,
    /// Epoch length (seconds).
    pub epoch_length: u64,
    /// The current members.
    pub current: Vec<MemberStatus>,
    /// The next set (locked or prospective).
    pub next: Vec<MemberStatus>,
}

/// One validator in [`NetworkStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberStatus {
    /// Its party id.
    pub party_id: u32,
    /// Its URL.
    pub url: String,
    /// Its staker address (EIP-55).
    pub staker: String,
    /// Its stake in token base units (decimal; 18 decimals).
    pub stake: String,
}

/// `GET /v1/epoch/keys`: the public sharing of the node's current epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EpochKeys {
    /// The epoch.
    pub epoch: u64,
    /// The holders of its shares (party ids, ascending).
    pub holders: Vec<u32>,
    /// The Feldman commitment of the BLS sharing (`lit_crypto::shamir::Commitment::to_bytes`).
    pub bls_commitment: Bytes,
    /// The Feldman commitment of the secp256k1 sharing.
    pub ecdsa_commitment: Bytes,
}

/// A payload sealed to one recipient (HPKE `enc` and ciphertext; see `lit_crypto::seal`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SealedBox {
    /// The encapsulated key.
    pub enc: Bytes,
    /// The AEAD ciphertext and tag.
    pub ciphertext: Bytes,
}

/// `POST /v1/encryption/sign`: ask for this node's decryption-key share for the identity
/// `lit-accesscontrolcondition://<sha256(canonical conditions)>/<dataToEncryptHash>`.
///
/// The conditions come under exactly one of Lit's keys: `accessControlConditions`,
/// `evmContractConditions` or `unifiedAccessControlConditions` (`solRpcConditions` is accepted
/// as a shape and refused by the node with `unknown_condition_type`); none or two of them is
/// `malformed_request`. See [`crate::conditions`] for what each key takes. The identity hashes
/// the list alone, as sent, whichever key carries it.
///
/// ```json
/// {"epoch": 1, "evmContractConditions": [...], "dataToEncryptHash": "…",
///  "authSig": {...}, "clientPublicKey": "…", "litParams": {"tier": "gold"}}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "EncryptionSignRequestWire",
    into = "EncryptionSignRequestWire"
)]
pub struct EncryptionSignRequest {
    /// The epoch the client believes is current.
    pub epoch: u64,
    /// The request key the conditions came under.
    pub conditions_kind: crate::conditions::ConditionsKind,
    /// The condition list, as JSON (parsed by [`crate::conditions::parse_as`] with
    /// `conditions_kind`), whichever key it came under.
    pub access_control_conditions: serde_json::Value,
    /// SHA-256 of the plaintext.
    pub data_to_encrypt_hash: Bytes32,
    /// The caller's wallet signature, which gives `:userAddress` its meaning.
    pub auth_sig: AuthSig,
    /// The client's ephemeral X25519 key; the share is sealed to it. It is also the request's
    /// nonce: a node answers each key once and refuses a replay with `nonce_replayed`, so a
    /// client makes a fresh key for every request.
    pub client_public_key: Bytes32,
    /// The values of `:litParam:<name>` placeholders (JSON `litParams`, optional): chosen by
    /// the requester, so they select what the conditions check, never prove anything.
    pub lit_params: std::collections::BTreeMap<String, String>,
}

/// The JSON shape of [`EncryptionSignRequest`] (optional lists, checked into one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EncryptionSignRequestWire {
    epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_control_conditions: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    evm_contract_conditions: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unified_access_control_conditions: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sol_rpc_conditions: Option<serde_json::Value>,
    data_to_encrypt_hash: Bytes32,
    auth_sig: AuthSig,
    client_public_key: Bytes32,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    lit_params: std::collections::BTreeMap<String, String>,
}

impl TryFrom<EncryptionSignRequestWire> for EncryptionSignRequest {
    type Error = crate::conditions::ConditionsError;
    fn try_from(w: EncryptionSignRequestWire) -> Result<Self, Self::Error> {
        let (conditions_kind, access_control_conditions) =
            crate::conditions::ConditionsKind::pick([
                w.access_control_conditions,
                w.evm_contract_conditions,
                w.unified_access_control_conditions,
                w.sol_rpc_conditions,
            ])?;
        Ok(Self {
            epoch: w.epoch,
            conditions_kind,
            access_control_conditions,
            data_to_encrypt_hash: w.data_to_encrypt_hash,
            auth_sig: w.auth_sig,
            client_public_key: w.client_public_key,
            lit_params: w.lit_params,
        })
    }
}

impl From<EncryptionSignRequest> for EncryptionSignRequestWire {
    fn from(r: EncryptionSignRequest) -> Self {
        let [access_control_conditions, evm_contract_conditions, unified_access_control_conditions, sol_rpc_conditions] =
            r.conditions_kind.spread(r.access_control_conditions);
        Self {
            epoch: r.epoch,
            access_control_conditions,
            evm_contract_conditions,
            unified_access_control_conditions,
            sol_rpc_conditions,
            data_to_encrypt_hash: r.data_to_encrypt_hash,
            auth_sig: r.auth_sig,
            client_public_key: r.client_public_key,
            lit_params: r.lit_params,
        }
    }
}

/// `POST /v1/encryption/sign` answer: the node's BLS signature share on the identity, sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionSignResponse {
    /// The answering node's party id.
    pub party_id: u32,
    /// The epoch of the share.
    pub epoch: u64,
    /// The signature share, sealed to `clientPublicKey`.
    pub share: SealedBox,
}

/// The HPKE `info` of a sealed [`EncryptionSignResponse::share`].
pub const ENCRYPTION_SHARE_SEAL_INFO: &[u8] = b"lit/v1/encryption-share";

/// The response header in which a node that charges for a request says what it charged the
/// payer (base units of the ledger's token, decimal).
pub const CHARGED_HEADER: &str = "x-lit-charged";

/// The HPKE associated data of a sealed [`EncryptionSignResponse::share`]: the answering node's
/// party id and the epoch (big-endian), then the identity the share signs, so a share cannot be
/// passed off as another node's, another epoch's or another identity's.
pub fn encryption_share_aad(party_id: u32, epoch: u64, identity: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(12 + identity.len());
    aad.extend_from_slice(&party_id.to_be_bytes());
    aad.extend_from_slice(&epoch.to_be_bytes());
    aad.extend_from_slice(identity);
    aad
}

/// What a permitted auth method may have a PKP sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PkpScope {
    /// Any digest.
    SignAnything,
    /// Only EIP-191 personal messages (the node hashes the message itself).
    PersonalSign,
}

/// [`PkpScope::SignAnything`] in the `PkpRegistry` contract's scope bits.
pub const SCOPE_BIT_SIGN_ANYTHING: u8 = 1;
/// [`PkpScope::PersonalSign`] in the `PkpRegistry` contract's scope bits.
pub const SCOPE_BIT_PERSONAL_SIGN: u8 = 2;

/// An auth method permitted to use a PKP.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermittedAuthMethod {
    /// The method type ([`AUTH_METHOD_TYPE_OIDC`], …).
    pub method_type: u32,
    /// The user's id under that method (e.g. keccak256 of `sub:aud` for OpenID Connect), hex.
    pub id: String,
    /// What it may sign.
    pub scopes: std::collections::BTreeSet<PkpScope>,
}

/// The auth method type of OpenID Connect JWTs from any configured issuer: the ASCII bytes of
/// "OIDC". Lit numbers its auth methods per provider (1 wallet, 2 Lit Action, 5 Google,
/// 6 Google JWT, 8 Apple JWT, … in its JS SDK) and has no generic OIDC type, so this one is ours.
pub const AUTH_METHOD_TYPE_OIDC: u32 = 0x4f49_4443;

/// Lit's auth method type of a passkey (WebAuthn credential): `AuthMethodType.WebAuthn` in
/// Lit's JS SDK.
pub const AUTH_METHOD_TYPE_WEBAUTHN: u32 = 3;

/// Lit's auth method type of a Google ID token (`AuthMethodType.GoogleJwt` in Lit's JS SDK):
/// an OpenID Connect ID token whose issuer is Google (`https://accounts.google.com`), with
/// Lit's id `keccak256(utf8("{sub}:{aud}"))`.
pub const AUTH_METHOD_TYPE_GOOGLE_JWT: u32 = 6;

/// Lit's auth method type of a Sign in with Apple ID token (`AuthMethodType.AppleJwt` in Lit's
/// JS SDK): an OpenID Connect ID token whose issuer is Apple (`https://appleid.apple.com`),
/// with Lit's id `keccak256(utf8("{sub}:{aud}"))`.
pub const AUTH_METHOD_TYPE_APPLE_JWT: u32 = 8;

/// What an ID token (an auth method's credential) is accepted for. An ID token is the same at
/// every node until it expires, so a node that saw it could replay it at the others: a node
/// accepts one only if its `nonce` claim is [`IdTokenPurpose::nonce`] of the request it comes
/// with, so that a replay can only ask for what the user asked for. The client asks its
/// identity provider for a token with that nonce (the OpenID Connect `nonce` parameter).
///
/// ```
/// use lit_api::v1::{IdTokenPurpose, ToSign};
/// use lit_api::Bytes32;
/// let to_sign = ToSign::Digest(Bytes32([7; 32]));
/// let nonce = IdTokenPurpose::PkpSign(&to_sign).nonce();
/// assert_eq!(nonce.len(), 64);
/// assert_ne!(nonce, IdTokenPurpose::PkpSession("a capability").nonce());
/// ```
#[derive(Clone, Copy, Debug)]
pub enum IdTokenPurpose<'a> {
    /// `/v1/pkp/sign`: signing exactly this.
    PkpSign(&'a ToSign),
    /// `/v1/session/sign`: the network's signature over exactly this capability (which binds
    /// the session key).
    PkpSession(&'a str),
    /// `/v1/execute`: running this action (its CIDv0) with exactly these parameters.
    Execute {
        /// The action's IPFS CIDv0.
        ipfs_id: &'a str,
        /// Its `jsParams`.
        js_params: &'a serde_json::Map<String, serde_json::Value>,
    },
}

impl IdTokenPurpose<'_> {
    /// The `nonce` claim for this purpose: the lowercase hex SHA-256 of a domain-separated
    /// encoding (`lit/id-token/…`) of what the request does.
    pub fn nonce(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        match self {
            IdTokenPurpose::PkpSign(ToSign::Digest(d)) => {
                h.update(b"lit/id-token/pkp-sign/digest\n");
                h.update(d.0);
            }
            IdTokenPurpose::PkpSign(ToSign::Message(m)) => {
                h.update(b"lit/id-token/pkp-sign/message\n");
                h.update(&m.0);
            }
            IdTokenPurpose::PkpSession(capability) => {
                h.update(b"lit/id-token/session-sign\n");
                h.update(capability.as_bytes());
            }
            IdTokenPurpose::Execute { ipfs_id, js_params } => {
                h.update(b"lit/id-token/execute\n");
                h.update(ipfs_id.as_bytes());
                h.update(b"\n");
                // a `Map` serializes its keys in order: the same text at every node
                h.update(
                    serde_json::Value::Object((*js_params).clone())
                        .to_string()
                        .as_bytes(),
                );
            }
        }
        hex::encode(h.finalize())
    }
}

/// Who may use a PKP besides its owner.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PkpPermissions {
    /// Wallet addresses (EIP-55) that may sign anything.
    pub addresses: std::collections::BTreeSet<String>,
    /// Auth methods, each with its scopes.
    pub auth_methods: Vec<PermittedAuthMethod>,
    /// Lit Action ids (IPFS CIDv0) that may sign with the PKP.
    pub actions: std::collections::BTreeSet<String>,
}

/// A PKP as the network records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PkpInfo {
    /// keccak256 of the uncompressed public key (64 bytes, without the 0x04 prefix).
    pub token_id: Bytes32,
    /// The derivation id: the PKP key is `root + H(key_id)·G`.
    pub key_id: Bytes32,
    /// The PKP public key, SEC1 compressed (33 bytes).
    pub public_key: Bytes,
    /// Its Ethereum address (EIP-55).
    pub eth_address: String,
    /// Its owner (EIP-55).
    pub owner: String,
    /// Who else may use it.
    pub permissions: PkpPermissions,
}

/// `POST /v1/pkp/mint`: a new PKP owned by the authenticated wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PkpMintRequest {
    /// The owner (EIP-55).
    pub owner: String,
    /// The owner's approval of this mint (see [`crate::owner`]).
    pub approval: crate::owner::OwnerApproval,
}

/// `POST /v1/pkp/info`: a PKP's public record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PkpInfoRequest {
    /// The PKP.
    pub token_id: Bytes32,
}

/// One change to a PKP's permissions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
pub enum PermissionChange {
    /// Permit a wallet address.
    AddAddress {
        /// EIP-55 address.
        address: String,
    },
    /// Revoke a wallet address.
    RemoveAddress {
        /// EIP-55 address.
        address: String,
    },
    /// Permit an auth method (replacing its scopes if present).
    #[serde(rename_all = "camelCase")]
    AddAuthMethod {
        /// The method.
        method: PermittedAuthMethod,
    },
    /// Revoke an auth method.
    #[serde(rename_all = "camelCase")]
    RemoveAuthMethod {
        /// Its type.
        method_type: u32,
        /// Its id, hex.
        id: String,
    },
    /// Permit a Lit Action.
    AddAction {
        /// Its IPFS CIDv0.
        cid: String,
    },
    /// Revoke a Lit Action.
    RemoveAction {
        /// Its IPFS CIDv0.
        cid: String,
    },
}

/// `POST /v1/pkp/permissions`: the owner changes who may use the PKP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PkpPermissionsRequest {
    /// The PKP.
    pub token_id: Bytes32,
    /// The change.
    pub change: PermissionChange,
    /// The owner's approval of exactly this change (see [`crate::owner`]).
    pub approval: crate::owner::OwnerApproval,
}

/// What to sign with a PKP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ToSign {
    /// A 32-byte digest (e.g. an Ethereum transaction's signing hash); needs the
    /// `sign-anything` scope.
    Digest(Bytes32),
    /// A message the node hashes with EIP-191 (`personal_sign`).
    Message(Bytes),
}

/// How the caller of `/v1/pkp/sign` proves who it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum PkpAuth {
    /// A wallet signature (the owner, or a permitted address): EIP-191 by an externally owned
    /// account, or EIP-1271 by a contract wallet (`derivedVia: "EIP1271"`).
    AuthSig(AuthSig),
    /// An auth method the PKP permits (e.g. an OpenID Connect ID token), with its scopes.
    AuthMethod(AuthMethod),
    /// A Lit Action the PKP permits (by its IPFS CIDv0), run by each node with `jsParams`: it
    /// authorises the caller by `Lit.Actions.setResponse({response: "true"})`.
    LitAction(LitActionAuth),
    /// A session signature made for this node, granting `pkp-signing` on this PKP: backed by
    /// a wallet capability (the owner or a permitted address) or a network-signed capability
    /// for the PKP itself (from `/v1/session/sign`).
    SessionSig(crate::session::SessionSig),
}

/// `POST /v1/session/sign`: the node's BLS signature share over a capability for a PKP session
/// (a SIWE message by the PKP's address, binding a session key, granting `pkp-signing` on this
/// PKP), after checking that `auth` may sign anything with the PKP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionSignRequest {
    /// The epoch the client believes is current.
    pub epoch: u64,
    /// The PKP the session acts as.
    pub token_id: Bytes32,
    /// The caller's proof (not a session signature).
    pub auth: PkpAuth,
    /// The capability message (`lit_api::session::capability_siwe_message`).
    pub capability: String,
    /// The client's ephemeral X25519 key; the share is sealed to it.
    pub client_public_key: Bytes32,
}

/// `POST /v1/session/sign` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionSignResponse {
    /// The answering node.
    pub party_id: u32,
    /// The epoch of its key share.
    pub epoch: u64,
    /// Who the node found the auth to be (`address:<EIP-55>`, `auth-method:<type>:<id hex>` or
    /// `action:<CID>`): the network signs it with the capability, see
    /// [`crate::session::network_grant_message`].
    pub party: String,
    /// Its BLS signature share over the bytes of
    /// `network_grant_message(capability, party)`, sealed with [`SESSION_SHARE_SEAL_INFO`] and
    /// [`encryption_share_aad`] (party id, epoch, those bytes).
    pub share: SealedBox,
}

/// The HPKE `info` of a sealed [`SessionSignResponse::share`].
pub const SESSION_SHARE_SEAL_INFO: &[u8] = b"lit/v1/session-capability-share";

/// Lit Action auth: the code (its CID must be permitted on the PKP) and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LitActionAuth {
    /// The JavaScript source.
    pub code: String,
    /// Parameters, available to the code as globals and as `jsParams`.
    #[serde(default)]
    pub js_params: serde_json::Map<String, serde_json::Value>,
}

/// A credential of an auth method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthMethod {
    /// The method type: [`AUTH_METHOD_TYPE_OIDC`], or Lit's [`AUTH_METHOD_TYPE_GOOGLE_JWT`] /
    /// [`AUTH_METHOD_TYPE_APPLE_JWT`] for an ID token of that issuer.
    pub auth_method_type: u32,
    /// The credential (for OpenID Connect: the ID token, a JWT).
    pub access_token: String,
}

/// `POST /v1/pkp/sign`: the node's ECDSA signature share with a PKP. The client sends the same
/// request (but its own `clientPublicKey` per node) to every node of `group`, exactly
/// `threshold` nodes, which sign together: they agree among themselves on the presignature (a
/// pooled one their lead hands out, or a fresh one) and say which in
/// [`PkpSignResponse::presignature`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PkpSignRequest {
    /// The epoch the client believes is current.
    pub epoch: u64,
    /// The PKP.
    pub token_id: Bytes32,
    /// What to sign.
    pub to_sign: ToSign,
    /// The caller's proof.
    pub auth: PkpAuth,
    /// The signing group: exactly `threshold` party ids, this node among them.
    pub group: Vec<u32>,
    /// A fresh random id of this signing request, the same at every node of the group.
    pub request_id: Bytes32,
    /// The client's ephemeral X25519 key (fresh per request and node); the share is sealed to it.
    pub client_public_key: Bytes32,
}

/// The *rotation groups* `{k, k+1, …, k+T-1} (mod n)` of the sorted `members`, each sorted:
/// every member is in `T` of them. Nodes keep presignature pools for these groups, and clients
/// prefer them, so pooled presignatures get used.
pub fn rotation_groups(members: &[u32], threshold: usize) -> Vec<Vec<u32>> {
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let n = sorted.len();
    if threshold == 0 || threshold > n {
        return Vec::new();
    }
    let mut groups: Vec<Vec<u32>> = (0..n)
        .map(|k| {
            let mut g: Vec<u32> = (0..threshold).map(|i| sorted[(k + i) % n]).collect();
            g.sort_unstable();
            g
        })
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// Where the presignature of a signature came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PresignatureSource {
    /// Taken from the group's pre-generated pool (fast path).
    Pool,
    /// Generated for this request by the group (the pool was empty or unusable; slower).
    Fresh,
}

/// `POST /v1/pkp/sign` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PkpSignResponse {
    /// The answering node.
    pub party_id: u32,
    /// The epoch of its key share.
    pub epoch: u64,
    /// The signature share (`lit_crypto::ecdsa::SignatureShare` as JSON), sealed to
    /// `clientPublicKey` with [`PKP_SHARE_SEAL_INFO`] and [`pkp_share_aad`].
    pub share: SealedBox,
    /// Where the presignature came from.
    pub presignature: PresignatureSource,
    /// Time the node spent on the request, in milliseconds.
    pub node_ms: f64,
}

/// The HPKE `info` of a sealed [`PkpSignResponse::share`].
pub const PKP_SHARE_SEAL_INFO: &[u8] = b"lit/v1/pkp-signature-share";

/// The HPKE associated data of a sealed [`PkpSignResponse::share`]: party id, epoch, request id
/// and the digest signed.
pub fn pkp_share_aad(
    party_id: u32,
    epoch: u64,
    request_id: &Bytes32,
    digest: &[u8; 32],
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(76);
    aad.extend_from_slice(&party_id.to_be_bytes());
    aad.extend_from_slice(&epoch.to_be_bytes());
    aad.extend_from_slice(&request_id.0);
    aad.extend_from_slice(digest);
    aad
}

/// `POST /v1/actions/upload`: stores Lit Action code in the node's action store under its
/// content id (IPFS CIDv0), so that `/v1/execute` can run it by id. Uploads count against the
/// uploader's hourly quota at each node (`rate_limited` beyond it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionUploadRequest {
    /// The JavaScript source.
    pub code: String,
    /// The id the uploader expects; the node refuses the upload if the code has another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipfs_id: Option<String>,
    /// Who uploads, verified as for running the action (a session must grant
    /// `lit-action-execution` on it): the upload counts against that caller's quota. Absent:
    /// it counts against the one quota all anonymous uploads share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<PkpAuth>,
}

/// `POST /v1/actions/upload` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionUploadResponse {
    /// The code's content id (IPFS CIDv0).
    pub ipfs_id: String,
    /// Its size in bytes.
    pub size: u64,
    /// False if the node already had it.
    pub created: bool,
}

/// `POST /v1/execute`: run a Lit Action. The client sends the same request (but its own
/// `clientPublicKey` per node) to every node of `group`, exactly `threshold` nodes, which run
/// the action together: their host calls (`signEcdsa`, `runOnce`, `broadcastAndCollect`, …)
/// talk to each other over the peer transport.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteRequest {
    /// The epoch the client believes is current.
    pub epoch: u64,
    /// The code, inline. Exactly one of `code` and `ipfsId` (or both, when they agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The content id of code uploaded to the node's action store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipfs_id: Option<String>,
    /// Parameters, available to the code as `jsParams` and as globals.
    #[serde(default)]
    pub js_params: serde_json::Map<String, serde_json::Value>,
    /// Who is calling (becomes `Lit.Auth`); absent: an anonymous caller, whose action may still
    /// sign with PKPs that permit the action itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<PkpAuth>,
    /// The execution group: exactly `threshold` party ids, this node among them.
    pub group: Vec<u32>,
    /// A fresh random id of this execution, the same at every node of the group.
    pub request_id: Bytes32,
    /// The client's ephemeral X25519 key (fresh per request and node); signature shares are
    /// sealed to it.
    pub client_public_key: Bytes32,
    /// Request headers the caller chose to pass to the action, as `Lit.Headers` (names
    /// lower-case; at most [`MAX_ACTION_HEADERS`] of them, [`MAX_ACTION_HEADER_BYTES`] in all,
    /// see [`check_action_headers`]). Only these: a node never passes its own HTTP headers.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
}

/// Most headers a caller may pass to an action ([`ExecuteRequest::headers`]).
pub const MAX_ACTION_HEADERS: usize = 32;

/// Most bytes of header names and values together a caller may pass to an action.
pub const MAX_ACTION_HEADER_BYTES: usize = 8 * 1024;

/// Checks headers for [`ExecuteRequest::headers`]: at most [`MAX_ACTION_HEADERS`], at most
/// [`MAX_ACTION_HEADER_BYTES`] of names and values, names lower-case HTTP tokens (RFC 9110
/// §5.1), values visible ASCII, spaces and tabs without leading or trailing white space
/// (§5.5). The error names the first header at fault.
pub fn check_action_headers(
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    if headers.len() > MAX_ACTION_HEADERS {
        return Err(format!(
            "{} headers, over the limit of {MAX_ACTION_HEADERS}",
            headers.len()
        ));
    }
    let bytes: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_ACTION_HEADER_BYTES {
        return Err(format!(
            "the headers are {bytes} bytes, over the limit of {MAX_ACTION_HEADER_BYTES}"
        ));
    }
    const TCHAR: &[u8] = b"!#$%&'*+-.^_`|~";
    for (name, value) in headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || TCHAR.contains(&b));
        if !token {
            return Err(format!(
                "header name {name:?} is not a lower-case HTTP token"
            ));
        }
        let visible = value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        if !visible || value.trim() != value {
            return Err(format!(
                "header {name:?} has a value that is not a valid field value"
            ));
        }
    }
    Ok(())
}

/// What one node's run of an action produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteResponse {
    /// The answering node.
    pub party_id: u32,
    /// The epoch of its key shares.
    pub epoch: u64,
    /// The action's content id.
    pub ipfs_id: String,
    /// What the action gave `Lit.Actions.setResponse`, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// What the action wrote with `console.*`.
    pub logs: String,
    /// The signature shares of `Lit.Actions.signEcdsa`, by `sigName`.
    #[serde(default)]
    pub signed: std::collections::BTreeMap<String, ActionSignatureShare>,
    /// What the action used.
    pub usage: ActionUsage,
}

/// One `signEcdsa` share of an action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionSignatureShare {
    /// The PKP's public key (SEC1 compressed).
    pub public_key: Bytes,
    /// The PKP's key id (the client derives the key from it and the root key).
    pub key_id: Bytes32,
    /// The 32-byte digest signed.
    pub digest: Bytes32,
    /// The share (`lit_crypto::ecdsa::SignatureShare` as JSON), sealed with
    /// [`ACTION_SHARE_SEAL_INFO`] and [`action_share_aad`].
    pub share: SealedBox,
}

/// What an action used on one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionUsage {
    /// The engine that ran it (`deno`, `quickjs`).
    pub engine: String,
    /// Wall time from start to end, host calls included, in milliseconds.
    pub duration_ms: f64,
    /// Signatures (`signEcdsa` and `signAndCombineEcdsa`).
    pub signatures: u32,
    /// `fetch` calls.
    pub fetches: u32,
    /// Other host calls, by JavaScript name.
    pub host_calls: std::collections::BTreeMap<String, u32>,
    /// Size of the response.
    pub response_bytes: u64,
    /// Size of the logs.
    pub log_bytes: u64,
}

/// The HPKE `info` of a sealed [`ActionSignatureShare::share`].
pub const ACTION_SHARE_SEAL_INFO: &[u8] = b"lit/v1/action-signature-share";

/// The HPKE associated data of a sealed [`ActionSignatureShare::share`]: party id, epoch,
/// request id, the length-prefixed `sigName` and the digest signed.
pub fn action_share_aad(
    party_id: u32,
    epoch: u64,
    request_id: &Bytes32,
    sig_name: &str,
    digest: &[u8; 32],
) -> Vec<u8> {
    let mut aad = pkp_share_aad(party_id, epoch, request_id, digest);
    aad.extend_from_slice(&(sig_name.len() as u64).to_be_bytes());
    aad.extend_from_slice(sig_name.as_bytes());
    aad
}

/// A protocol message between nodes, signed by the sender's identity key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerMessage {
    /// The protocol session (hash of purpose, epoch, participants, thresholds).
    pub session: Bytes32,
    /// The sender's party id.
    pub from: u32,
    /// The recipient's party id for a private message; absent for a broadcast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
    /// The protocol bytes: in the clear for broadcasts, sealed to the recipient otherwise.
    pub payload: PeerPayload,
    /// The sender's ed25519 signature over session, sender, recipient and payload.
    pub signature: Bytes,
}

/// The payload of a [`PeerMessage`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum PeerPayload {
    /// A broadcast, readable by every member.
    Plain(Bytes),
    /// A private message sealed to the recipient.
    Sealed(SealedBox),
}

/// `GET /v1/health` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Health {
    /// Whether the node holds keys and serves requests.
    pub ready: bool,
    /// The current epoch (0 before the first DKG finished).
    pub epoch: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_headers_are_bounded_and_well_formed() {
        let h = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(check_action_headers(&h(&[])).is_ok());
        assert!(check_action_headers(&h(&[("x-api-key", "k 1\t2"), ("accept", "*/*")])).is_ok());
        for bad in [
            h(&[("X-Upper", "v")]),
            h(&[("bad name", "v")]),
            h(&[("", "v")]),
            h(&[("x", "line\r\nbreak")]),
            h(&[("x", " padded")]),
            h(&[("x", "caf\u{e9}")]),
        ] {
            assert!(check_action_headers(&bad).is_err(), "{bad:?}");
        }
        let many: std::collections::BTreeMap<String, String> = (0..=MAX_ACTION_HEADERS)
            .map(|i| (format!("x-{i}"), "v".to_owned()))
            .collect();
        assert!(check_action_headers(&many)
            .unwrap_err()
            .contains("over the limit"));
        let big = h(&[("x", &"v".repeat(MAX_ACTION_HEADER_BYTES))]);
        assert!(check_action_headers(&big)
            .unwrap_err()
            .contains("over the limit"));
        // absent on the wire when empty: requests without headers stay as they were
        let text = serde_json::to_value(ExecuteRequest {
            epoch: 1,
            code: Some("1".into()),
            ipfs_id: None,
            js_params: serde_json::Map::new(),
            auth: None,
            group: vec![1],
            request_id: Bytes32([0; 32]),
            client_public_key: Bytes32([0; 32]),
            headers: Default::default(),
        })
        .unwrap_or_default();
        assert!(text.get("headers").is_none(), "{text}");
    }
    use serde_json::json;

    fn request_json() -> serde_json::Value {
        json!({
            "epoch": 1,
            "accessControlConditions": [{"conditionType": "evmBasic", "contractAddress": "",
                "standardContractType": "", "chain": "anvil", "method": "",
                "parameters": [":userAddress"],
                "returnValueTest": {"comparator": "=", "value": "0xabc"}}],
            "dataToEncryptHash": "11".repeat(32),
            "authSig": {"sig": "0x00", "derivedVia": DERIVED_VIA_PERSONAL_SIGN,
                        "signedMessage": "m", "address": "0xabc"},
            "clientPublicKey": "22".repeat(32),
        })
    }

    #[test]
    fn encryption_request_roundtrips_and_parses_conditions() {
        let req: EncryptionSignRequest = serde_json::from_value(request_json()).unwrap();
        assert_eq!(req.data_to_encrypt_hash, Bytes32([0x11; 32]));
        assert_eq!(serde_json::to_value(&req).unwrap(), request_json());
        let items = crate::conditions::parse(&req.access_control_conditions).unwrap();
        assert_eq!(crate::conditions::count(&items), 1);
        assert!(req.lit_params.is_empty());
    }

    #[test]
    fn encryption_request_takes_exactly_one_of_lit_s_condition_keys() {
        use crate::conditions::ConditionsKind;
        let list = request_json()["accessControlConditions"].clone();
        for kind in ConditionsKind::ALL {
            let mut body = request_json();
            body.as_object_mut()
                .unwrap()
                .remove("accessControlConditions");
            body[kind.key()] = list.clone();
            body["litParams"] = json!({"tier": "gold"});
            let req: EncryptionSignRequest = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(req.conditions_kind, kind);
            assert_eq!(req.access_control_conditions, list);
            assert_eq!(req.lit_params["tier"], "gold");
            assert_eq!(serde_json::to_value(&req).unwrap(), body);
        }
        let mut two = request_json();
        two["unifiedAccessControlConditions"] = list;
        let err = serde_json::from_value::<EncryptionSignRequest>(two).unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
        let mut none = request_json();
        none.as_object_mut()
            .unwrap()
            .remove("accessControlConditions");
        let err = serde_json::from_value::<EncryptionSignRequest>(none).unwrap_err();
        assert!(err.to_string().contains("got none"), "{err}");
    }

    #[test]
    fn unknown_and_missing_fields_are_refused() {
        let mut extra = request_json();
        extra["surprise"] = json!(true);
        assert!(serde_json::from_value::<EncryptionSignRequest>(extra).is_err());
        let mut missing = request_json();
        missing.as_object_mut().unwrap().remove("authSig");
        assert!(serde_json::from_value::<EncryptionSignRequest>(missing).is_err());
        let mut nested = request_json();
        nested["authSig"]["extra"] = json!(1);
        assert!(serde_json::from_value::<EncryptionSignRequest>(nested).is_err());
        assert!(serde_json::from_str::<HandshakeRequest>(r#"{"challenge":"00"}"#).is_err());
    }

    #[test]
    fn rotation_groups_cover_every_member_t_times() {
        let g = rotation_groups(&[5, 1, 2, 3, 4], 4);
        assert_eq!(g.len(), 5);
        assert!(g.contains(&vec![1, 2, 4, 5]) && g.contains(&vec![1, 2, 3, 4]));
        for m in 1..=5 {
            assert_eq!(g.iter().filter(|x| x.contains(&m)).count(), 4);
        }
        assert_eq!(rotation_groups(&[1, 2, 3], 3), vec![vec![1, 2, 3]]);
        assert!(rotation_groups(&[1, 2], 3).is_empty());
    }

    #[test]
    fn attestation_kind_wire_names() {
        assert_eq!(
            serde_json::to_string(&AttestationKind::SevSnp).unwrap(),
            "\"sev-snp\""
        );
        assert_eq!(
            serde_json::to_string(&AttestationKind::Simulated).unwrap(),
            "\"simulated\""
        );
    }
}
