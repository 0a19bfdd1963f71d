//! Passkeys (WebAuthn) as a PKP auth method (Lit's type 3): node-issued challenges and the
//! verification of an assertion (W3C Web Authentication Level 3, §7.2 "Verifying an
//! Authentication Assertion").
//!
//! What is bound (see [`lit_api::webauthn`] for the wire side):
//! - the **credential**: the PKP permits `(3, PasskeyCredential::auth_method_id)`, a hash of the
//!   relying party id, the credential id and its public key, added with the owner's approval;
//! - the **node and the moment**: each node issues its own challenge (a random nonce, an expiry
//!   [`CHALLENGE_LIFETIME`] ahead, and an HMAC-SHA-256 under a key only this node process holds,
//!   over its URL, the nonce and the expiry), and accepts an assertion only if its own challenge
//!   is in it, verifies, has not expired, and was never used before here (it is then used up);
//! - the **network and the request**: the signed WebAuthn challenge is
//!   [`lit_api::webauthn::assertion_challenge`] of the network's id, the request's purpose (the
//!   same [`lit_api::v1::IdTokenPurpose`] an ID token must name) and every node challenge;
//! - the **relying party**: the authenticator data's `rpIdHash` is SHA-256 of the configured
//!   relying party id (which the credential must name too), and the client data's `origin` is one
//!   of the configured origins and its `type` `webauthn.get`;
//! - the **user**: the authenticator says the user was present (UP) and, unless the node is
//!   configured otherwise, verified (UV).
//!
//! What is refused, each with its [`WebAuthnError`]: another origin or relying party, a
//! challenge of another node (or none of this node's), an expired or forged node challenge, an
//! assertion over another request, network or node set, a signature by another key (another
//! credential), and an assertion used a second time (`nonce_replayed`, from the node's nonce
//! cache). Signature counters are not checked: passkeys synced between devices report 0, and a
//! counter would be state every node must agree on.
//!
//! Only ES256 credentials are accepted (every passkey provider offers ES256).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use lit_api::webauthn::{
    assertion_challenge, NodeChallenge, PasskeyAssertion, MAX_NODE_CHALLENGES,
};
use lit_api::{Bytes32, ErrorCode};
use rand_core::{OsRng, RngCore as _};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

pub use lit_api::v1::AUTH_METHOD_TYPE_WEBAUTHN;

/// How long a node's challenge may be used.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(300);

/// The prefix of the `issuer` of a passkey user's [`super::oidc::OidcIdentity`]
/// (`webauthn:<rp id>`); no OpenID Connect issuer may start with it.
pub const PASSKEY_ISSUER_PREFIX: &str = "webauthn:";

/// The node configuration's `[webauthn]` table: the relying party passkeys are accepted for.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebAuthnConfig {
    /// The relying party id (the application's domain, e.g. `example.com`).
    pub rp_id: String,
    /// The origins the application's pages are served from (e.g. `https://example.com`).
    pub origins: Vec<String>,
    /// Whether the authenticator must have verified the user (PIN, biometrics); default true.
    #[serde(default = "default_true")]
    pub require_user_verification: bool,
}

fn default_true() -> bool {
    true
}

/// Why a passkey sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebAuthnError {
    /// This node has no `[webauthn]` configuration.
    #[error("this node accepts no passkeys (no [webauthn] relying party is configured)")]
    NotConfigured,
    /// A field of the assertion cannot be parsed.
    #[error("malformed passkey assertion: {what}")]
    Malformed {
        /// What is wrong.
        what: &'static str,
    },
    /// The credential or the authenticator data names another relying party.
    #[error("the passkey is for relying party {rp_id:?}, this node accepts {expected:?}")]
    WrongRpId {
        /// The relying party id of the credential (or `rpIdHash` mismatch: the credential's).
        rp_id: String,
        /// The configured one.
        expected: String,
    },
    /// The client data's origin is not a configured one.
    #[error("origin {origin:?} is not an origin of this relying party")]
    WrongOrigin {
        /// The client data's origin.
        origin: String,
    },
    /// The client data is not of a `webauthn.get` ceremony.
    #[error("client data type {ty:?} is not webauthn.get")]
    WrongCeremony {
        /// The client data's `type`.
        ty: String,
    },
    /// None of the assertion's node challenges is this node's.
    #[error("the assertion carries no challenge of this node ({node}): ask it for one")]
    NoChallengeForThisNode {
        /// This node's URL.
        node: String,
    },
    /// The node challenges are not ordered by node URL, repeat one, or are too many.
    #[error("the node challenges must be at most {MAX_NODE_CHALLENGES}, ordered by node URL")]
    ChallengeList,
    /// This node's challenge does not carry this node's MAC.
    #[error("the challenge is not one this node issued")]
    ChallengeForged,
    /// This node's challenge has expired.
    #[error("the challenge expired at {expired_at} (unix seconds)")]
    ChallengeExpired {
        /// Its expiry.
        expired_at: u64,
    },
    /// The client data's challenge is not the one of this network, request and node challenges.
    #[error(
        "the assertion was not made for this request on this network with these node challenges"
    )]
    ChallengeMismatch,
    /// The authenticator did not report user presence.
    #[error("the authenticator did not report the user present")]
    UserNotPresent,
    /// The authenticator did not report user verification, which this node requires.
    #[error(
        "the authenticator did not verify the user (PIN or biometrics), which this node requires"
    )]
    UserNotVerified,
    /// The credential's public key is not an ES256 (P-256) key.
    #[error("the passkey's public key is not a P-256 key (only ES256 passkeys are accepted)")]
    UnsupportedKey,
    /// The signature does not verify with the credential's key.
    #[error("the passkey assertion's signature is invalid")]
    BadSignature,
}

impl WebAuthnError {
    /// The API error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            WebAuthnError::ChallengeExpired { .. } => ErrorCode::AuthExpired,
            _ => ErrorCode::InvalidAuth,
        }
    }
}

/// A passkey sign-in the node verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPasskey {
    /// The permission id ([`lit_api::webauthn::PasskeyCredential::auth_method_id`]).
    pub id: [u8; 32],
    /// The credential id, base64url.
    pub credential_id: String,
    /// The relying party id.
    pub rp_id: String,
    /// The purpose the user signed for (compare with the request's).
    pub purpose: String,
    /// This node's challenge, to be used up: its nonce and expiry.
    pub nonce: [u8; 32],
    /// When this node's challenge expires.
    pub expires_at: SystemTime,
}

/// The passkey side of a node: its relying party and its challenge key.
pub struct Passkeys {
    config: WebAuthnConfig,
    node_url: String,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("rp_id", &self.config.rp_id)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The fields of `clientDataJSON` that are checked.
#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    ty: String,
    challenge: String,
    origin: String,
}

impl Passkeys {
    /// The passkeys of the relying party `config` at the node at `node_url`, with a fresh
    /// challenge key (challenges do not outlive the process).
    pub fn new(config: WebAuthnConfig, node_url: String) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut key[..]);
        Self {
            config,
            node_url,
            key,
        }
    }

    fn tag(&self, nonce: &[u8; 32], expires_at: u64) -> [u8; 32] {
        // HMAC accepts keys of any length: this cannot fail
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.key[..])
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"lit/webauthn/node-challenge/v1\n");
        mac.update(&(self.node_url.len() as u64).to_be_bytes());
        mac.update(self.node_url.as_bytes());
        mac.update(nonce);
        mac.update(&expires_at.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A fresh challenge of this node, valid for [`CHALLENGE_LIFETIME`] from `now`.
    pub fn issue(&self, now: SystemTime) -> NodeChallenge {
        let mut nonce = [0u8; 32];
        OsRng.fill_bytes(&mut nonce);
        let expires_at = unix(now + CHALLENGE_LIFETIME);
        NodeChallenge {
            node: self.node_url.clone(),
            nonce: Bytes32(nonce),
            expires_at,
            tag: Bytes32(self.tag(&nonce, expires_at)),
        }
    }

    /// Verifies a sign-in on the network `network_id` at `now` (every check of the module
    /// documentation but the replay, which the caller checks with [`VerifiedPasskey::nonce`]).
    pub fn verify(
        &self,
        assertion: &PasskeyAssertion,
        network_id: &str,
        now: SystemTime,
    ) -> Result<VerifiedPasskey, WebAuthnError> {
        let config = &self.config;
        let credential = &assertion.credential;
        if credential.rp_id != config.rp_id {
            return Err(WebAuthnError::WrongRpId {
                rp_id: credential.rp_id.clone(),
                expected: config.rp_id.clone(),
            });
        }
        // this node's challenge: present, its own, unexpired
        let list = &assertion.challenges;
        if list.len() > MAX_NODE_CHALLENGES || list.windows(2).any(|w| w[0].node >= w[1].node) {
            return Err(WebAuthnError::ChallengeList);
        }
        let mine = list
            .iter()
            .find(|c| c.node == self.node_url)
            .ok_or_else(|| WebAuthnError::NoChallengeForThisNode {
                node: self.node_url.clone(),
            })?;
        let expected_tag = self.tag(&mine.nonce.0, mine.expires_at);
        if !constant_time_eq(&expected_tag, &mine.tag.0) {
            return Err(WebAuthnError::ChallengeForged);
        }
        if unix(now) >= mine.expires_at {
            return Err(WebAuthnError::ChallengeExpired {
                expired_at: mine.expires_at,
            });
        }
        // the client data (§7.2 steps 10-14)
        let client: ClientData =
            serde_json::from_slice(&assertion.client_data_json.0).map_err(|_| {
                WebAuthnError::Malformed {
                    what: "clientDataJSON is not JSON with type, challenge and origin",
                }
            })?;
        if client.ty != "webauthn.get" {
            return Err(WebAuthnError::WrongCeremony { ty: client.ty });
        }
        let challenge = assertion_challenge(network_id, &assertion.purpose, list);
        let signed = URL_SAFE_NO_PAD
            .decode(client.challenge.trim_end_matches('='))
            .map_err(|_| WebAuthnError::Malformed {
                what: "the client data's challenge is not base64url",
            })?;
        if !constant_time_eq(&signed, &challenge) {
            return Err(WebAuthnError::ChallengeMismatch);
        }
        if !config.origins.contains(&client.origin) {
            return Err(WebAuthnError::WrongOrigin {
                origin: client.origin,
            });
        }
        // the authenticator data (steps 15-17): rpIdHash, flags
        let data = &assertion.authenticator_data.0;
        let (rp_id_hash, rest) = data.split_at_checked(32).ok_or(WebAuthnError::Malformed {
            what: "the authenticator data is shorter than 37 bytes",
        })?;
        let flags = match rest {
            [flags, _, _, _, _, ..] => *flags,
            _ => {
                return Err(WebAuthnError::Malformed {
                    what: "the authenticator data is shorter than 37 bytes",
                })
            }
        };
        if rp_id_hash != &Sha256::digest(config.rp_id.as_bytes())[..] {
            return Err(WebAuthnError::WrongRpId {
                rp_id: "(the authenticator data's rpIdHash)".into(),
                expected: config.rp_id.clone(),
            });
        }
        if flags & 0x01 == 0 {
            return Err(WebAuthnError::UserNotPresent);
        }
        if config.require_user_verification && flags & 0x04 == 0 {
            return Err(WebAuthnError::UserNotVerified);
        }
        // the signature (steps 19-21) over authenticatorData || SHA-256(clientDataJSON)
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&credential.public_key.0)
            .map_err(|_| WebAuthnError::UnsupportedKey)?;
        let signature = p256::ecdsa::Signature::from_der(&assertion.signature.0)
            .map_err(|_| WebAuthnError::BadSignature)?;
        let mut message = data.clone();
        message.extend_from_slice(&Sha256::digest(&assertion.client_data_json.0));
        use p256::ecdsa::signature::Verifier as _;
        key.verify(&message, &signature)
            .map_err(|_| WebAuthnError::BadSignature)?;
        Ok(VerifiedPasskey {
            id: credential.auth_method_id(),
            credential_id: URL_SAFE_NO_PAD.encode(&credential.credential_id.0),
            rp_id: credential.rp_id.clone(),
            purpose: assertion.purpose.clone(),
            nonce: mine.nonce.0,
            expires_at: UNIX_EPOCH + Duration::from_secs(mine.expires_at),
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passkeys() -> Passkeys {
        Passkeys::new(
            WebAuthnConfig {
                rp_id: "example.com".into(),
                origins: vec!["https://example.com".into()],
                require_user_verification: true,
            },
            "http://node-a".into(),
        )
    }

    #[test]
    fn challenges_are_the_node_s_own_and_expire() {
        let p = passkeys();
        let now = SystemTime::now();
        let c = p.issue(now);
        assert_eq!(p.tag(&c.nonce.0, c.expires_at), c.tag.0);
        // another node process (another key) did not issue it
        let other = passkeys();
        assert_ne!(other.tag(&c.nonce.0, c.expires_at), c.tag.0);
        // a stretched expiry breaks the tag
        assert_ne!(p.tag(&c.nonce.0, c.expires_at + 1), c.tag.0);
        assert!(format!("{p:?}").contains("<redacted>"));
    }

    /// A hand-made assertion (an authenticator's output, signed with a P-256 key here): the
    /// checks a WebAuthn client would never let through are tried on it.
    struct Made {
        assertion: PasskeyAssertion,
    }

    fn made(p: &Passkeys, rp_id: &str, flags: u8, origin: &str, network: &str) -> Made {
        use lit_api::webauthn::PasskeyCredential;
        use lit_api::Bytes;
        use p256::ecdsa::signature::Signer as _;
        let key = p256::ecdsa::SigningKey::random(&mut OsRng);
        let credential = PasskeyCredential {
            rp_id: "example.com".into(),
            credential_id: Bytes(vec![9; 16]),
            public_key: Bytes(
                key.verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
            ),
        };
        let challenges = vec![p.issue(SystemTime::now())];
        let purpose = "ab".repeat(32);
        let challenge = assertion_challenge(network, &purpose, &challenges);
        let client_data = serde_json::json!({"type": "webauthn.get",
            "challenge": URL_SAFE_NO_PAD.encode(challenge), "origin": origin});
        let client_data_json = client_data.to_string().into_bytes();
        let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend_from_slice(&[0, 0, 0, 0]);
        let mut message = data.clone();
        message.extend_from_slice(&Sha256::digest(&client_data_json));
        let signature: p256::ecdsa::Signature = key.sign(&message);
        Made {
            assertion: PasskeyAssertion {
                credential,
                purpose,
                challenges,
                client_data_json: Bytes(client_data_json),
                authenticator_data: Bytes(data),
                signature: Bytes(signature.to_der().as_bytes().to_vec()),
            },
        }
    }

    #[test]
    fn assertions_are_checked_step_by_step_with_typed_errors() {
        let p = passkeys();
        let now = SystemTime::now();
        let good = made(&p, "example.com", 0x05, "https://example.com", "net");
        let verified = p.verify(&good.assertion, "net", now).unwrap();
        assert_eq!(verified.id, good.assertion.credential.auth_method_id());
        assert_eq!(verified.purpose, "ab".repeat(32));
        let refused = |a: &PasskeyAssertion, network: &str| p.verify(a, network, now).unwrap_err();
        // another network
        let a = made(&p, "example.com", 0x05, "https://example.com", "net").assertion;
        assert_eq!(refused(&a, "other net"), WebAuthnError::ChallengeMismatch);
        // an authenticator that signed for another relying party id (rpIdHash)
        let a = made(&p, "evil.com", 0x05, "https://example.com", "net").assertion;
        assert!(matches!(
            refused(&a, "net"),
            WebAuthnError::WrongRpId { .. }
        ));
        // user not present; present but not verified
        let a = made(&p, "example.com", 0x04, "https://example.com", "net").assertion;
        assert_eq!(refused(&a, "net"), WebAuthnError::UserNotPresent);
        let a = made(&p, "example.com", 0x01, "https://example.com", "net").assertion;
        assert_eq!(refused(&a, "net"), WebAuthnError::UserNotVerified);
        // another origin
        let a = made(&p, "example.com", 0x05, "https://evil.com", "net").assertion;
        assert!(matches!(
            refused(&a, "net"),
            WebAuthnError::WrongOrigin { .. }
        ));
        // a challenge of another node process (another key), one with a stretched expiry, an
        // expired one
        let base = made(&p, "example.com", 0x05, "https://example.com", "net").assertion;
        let mut a = base.clone();
        a.challenges = vec![passkeys().issue(now)];
        assert_eq!(refused(&a, "net"), WebAuthnError::ChallengeForged);
        let mut a = base.clone();
        a.challenges[0].expires_at += 1;
        assert_eq!(refused(&a, "net"), WebAuthnError::ChallengeForged);
        let later = now + CHALLENGE_LIFETIME + Duration::from_secs(1);
        assert!(matches!(
            p.verify(&base, "net", later),
            Err(WebAuthnError::ChallengeExpired { .. })
        ));
        // no challenge of this node; a list out of order
        let mut a = base.clone();
        a.challenges[0].node = "http://node-b".into();
        assert!(matches!(
            refused(&a, "net"),
            WebAuthnError::NoChallengeForThisNode { .. }
        ));
        let mut a = base.clone();
        let duplicate = a.challenges[0].clone();
        a.challenges.insert(0, duplicate);
        assert_eq!(refused(&a, "net"), WebAuthnError::ChallengeList);
        // another key, or a tampered client data or authenticator data
        let mut a = base.clone();
        a.credential.public_key = made(&p, "example.com", 0x05, "https://example.com", "net")
            .assertion
            .credential
            .public_key;
        assert_eq!(refused(&a, "net"), WebAuthnError::BadSignature);
        let mut a = base.clone();
        a.authenticator_data.0.push(0);
        assert_eq!(refused(&a, "net"), WebAuthnError::BadSignature);
        let mut a = base.clone();
        a.credential.public_key.0 = vec![4; 65];
        assert_eq!(refused(&a, "net"), WebAuthnError::UnsupportedKey);
        let mut a = base.clone();
        a.client_data_json.0 = b"[]".to_vec();
        assert!(matches!(
            refused(&a, "net"),
            WebAuthnError::Malformed { .. }
        ));
        let mut a = base;
        a.credential.rp_id = "evil.com".into();
        assert!(matches!(
            refused(&a, "net"),
            WebAuthnError::WrongRpId { .. }
        ));
        assert_eq!(
            WebAuthnError::ChallengeExpired { expired_at: 1 }.code(),
            ErrorCode::AuthExpired
        );
    }

    #[test]
    fn config_parses_with_user_verification_required_by_default() {
        let c: WebAuthnConfig =
            toml::from_str("rp_id = \"example.com\"\norigins = [\"https://example.com\"]\n")
                .unwrap();
        assert!(c.require_user_verification);
        assert!(
            toml::from_str::<WebAuthnConfig>("rp_id = \"x\"\norigins = []\nmore = 1\n").is_err()
        );
    }
}
