//! Passkeys (WebAuthn credentials) as a PKP auth method: Lit's type 3,
//! [`AUTH_METHOD_TYPE_WEBAUTHN`].
//!
//! **Registration** binds a credential to a PKP: the PKP's owner approves adding the auth method
//! `(3, PasskeyCredential::auth_method_id)` the way every permission changes (an owner-signed
//! `PermissionChange::AddAuthMethod`). The id commits to the relying party id, the credential id
//! and the credential's public key, so the registry needs no new field and no node keeps a copy.
//!
//! **Sign-in** is one assertion over a challenge made of *node-issued* challenges: the client asks
//! every node of its request's group for a [`NodeChallenge`] (`GET /v1/webauthn/challenge`),
//! and the authenticator signs [`assertion_challenge`] of the network, the request's purpose
//! ([`crate::v1::IdTokenPurpose::nonce`], as for ID tokens) and those challenges. Each node
//! finds its own challenge in the list (a node whose challenge is absent refuses), checks it is
//! its own, unexpired and unused, and uses it up. The credential is sent as
//! `AuthMethod { authMethodType: 3, accessToken: <JSON of a PasskeyAssertion> }`, as Lit's SDK
//! sends a WebAuthn assertion in `accessToken`.
//!
//! ```
//! use lit_api::webauthn::{assertion_challenge, NodeChallenge, PasskeyCredential};
//! use lit_api::{Bytes, Bytes32};
//! let passkey = PasskeyCredential {
//!     rp_id: "example.com".into(),
//!     credential_id: Bytes(vec![1, 2, 3]),
//!     public_key: Bytes(vec![4; 65]),
//! };
//! assert_eq!(passkey.auth_method_id().len(), 32);
//! let node = |url: &str| NodeChallenge {
//!     node: url.into(),
//!     nonce: Bytes32([7; 32]),
//!     expires_at: 1_800_000_000,
//!     tag: Bytes32([0; 32]),
//! };
//! let both = [node("https://a"), node("https://b")];
//! // another request, another network or another node set: another challenge
//! assert_ne!(
//!     assertion_challenge("net", "purpose", &both),
//!     assertion_challenge("net", "other purpose", &both)
//! );
//! assert_ne!(
//!     assertion_challenge("net", "purpose", &both),
//!     assertion_challenge("other net", "purpose", &both)
//! );
//! assert_ne!(
//!     assertion_challenge("net", "purpose", &both),
//!     assertion_challenge("net", "purpose", &both[..1])
//! );
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{Bytes, Bytes32};

pub use crate::v1::AUTH_METHOD_TYPE_WEBAUTHN;

/// `GET` a node's [`NodeChallenge`].
pub const CHALLENGE_PATH: &str = "/v1/webauthn/challenge";

/// The COSE algorithm of the passkeys accepted: ES256 (ECDSA on P-256 with SHA-256), the
/// algorithm every passkey provider supports.
pub const COSE_ALG_ES256: i64 = -7;

/// The most node challenges one assertion may carry.
pub const MAX_NODE_CHALLENGES: usize = 64;

/// A passkey as the PKP's permission names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasskeyCredential {
    /// The relying party id the credential is scoped to (a domain, e.g. `example.com`).
    pub rp_id: String,
    /// The credential id (raw bytes, as the authenticator returned it).
    pub credential_id: Bytes,
    /// The credential's public key: an ES256 key, SEC1 uncompressed (65 bytes).
    pub public_key: Bytes,
}

impl PasskeyCredential {
    /// The auth method id under which a PKP permits this passkey: SHA-256 of a domain-separated,
    /// length-prefixed encoding of the relying party id, the credential id and the public key.
    /// (Lit's own id, `keccak256("{rawId}:lit")`, names only the credential and keeps the key in
    /// a separate field of Lit's contract, which this registry does not have.)
    pub fn auth_method_id(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"lit/webauthn/credential/v1\n");
        for part in [
            self.rp_id.as_bytes(),
            &self.credential_id.0,
            &self.public_key.0,
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.finalize().into()
    }
}

/// A challenge one node issued (`GET /v1/webauthn/challenge`): its URL, a random nonce, when it
/// expires (unix seconds) and the node's MAC over them (so the node keeps no state until it is
/// used).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeChallenge {
    /// The issuing node's URL.
    pub node: String,
    /// A random nonce.
    pub nonce: Bytes32,
    /// When it expires, unix seconds.
    pub expires_at: u64,
    /// The node's MAC.
    pub tag: Bytes32,
}

/// A passkey sign-in, sent as the JSON `accessToken` of an auth method of type
/// [`AUTH_METHOD_TYPE_WEBAUTHN`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasskeyAssertion {
    /// The passkey (its id must be permitted on the PKP).
    pub credential: PasskeyCredential,
    /// What the request does: [`crate::v1::IdTokenPurpose::nonce`] of it.
    pub purpose: String,
    /// The challenges of the nodes the request goes to, ordered by node URL (strictly
    /// increasing).
    pub challenges: Vec<NodeChallenge>,
    /// The `clientDataJSON` the client made (its `challenge` is [`assertion_challenge`]).
    pub client_data_json: Bytes,
    /// The authenticator data.
    pub authenticator_data: Bytes,
    /// The ES256 signature (ASN.1 DER) over the authenticator data and SHA-256 of the client
    /// data.
    pub signature: Bytes,
}

/// The WebAuthn challenge of a sign-in: SHA-256 of a domain-separated encoding of the network's
/// id ([`crate::owner::network_id`]), the request's purpose and every node challenge, in order.
pub fn assertion_challenge(
    network_id: &str,
    purpose: &str,
    challenges: &[NodeChallenge],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"lit/webauthn/assertion/v1\n");
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    part(network_id.as_bytes());
    part(purpose.as_bytes());
    for c in challenges {
        part(c.node.as_bytes());
        part(&c.nonce.0);
        part(&c.expires_at.to_be_bytes());
        part(&c.tag.0);
    }
    h.finalize().into()
}
