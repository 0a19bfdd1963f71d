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
    /// The node's attestation bound to its identity key and the request's challenge.
    pub attestation: Attestation,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionSignRequest {
    /// The epoch the client believes is current.
    pub epoch: u64,
    /// The conditions, as JSON (parsed by [`crate::conditions::parse`]).
    pub access_control_conditions: serde_json::Value,
    /// SHA-256 of the plaintext.
    pub data_to_encrypt_hash: Bytes32,
    /// The caller's wallet signature, which gives `:userAddress` its meaning.
    pub auth_sig: AuthSig,
    /// The client's ephemeral X25519 key; the share is sealed to it. It is also the request's
    /// nonce: a node answers each key once and refuses a replay with `nonce_replayed`, so a
    /// client makes a fresh key for every request.
    pub client_public_key: Bytes32,
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
