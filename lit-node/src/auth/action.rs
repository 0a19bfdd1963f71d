//! Lit Actions as an auth method: a PKP that permits an action (by its CID) lets the action
//! decide. The node runs it in an embedded QuickJS engine with no network and no host
//! capabilities (5 s, default memory), under one of the node's action permits
//! (`actions.max_concurrent`, shared with `/v1/execute`; none free: `rate_limited`); the action
//! authorises by answering `true` or `{"authorized": true}` through `Lit.Actions.setResponse`.
//!
//! The action is shown what it authorises ([`Authorising`]), in `jsParams` (and as globals)
//! under names the node owns. A client's values under these names are replaced, and a name that
//! does not apply to the request is `null`, so an action never reads a client's claim where it
//! expects the node's:
//!
//! | name | `/v1/pkp/sign` | `/v1/session/sign` |
//! |---|---|---|
//! | `toSign` | the 32 bytes that will be signed, as an array of byte values (Lit's `toSign`): the digest given, or for a message its EIP-191 digest | `null` |
//! | `message` | for a message, its raw bytes (an array of byte values); for a digest `null` | `null` |
//! | `sessionCapability` | `null` | the capability text the network will sign |
//! | `publicKey` | the PKP's public key (hex, compressed, as its record) | the same |
//! | `tokenId` | the PKP's token id (hex, as its record) | the same |

use std::sync::Arc;
use std::time::Duration;

use lit_api::v1::{PkpInfo, ToSign};
use lit_api::ErrorCode;
use lit_crypto::eth::eip191_hash;
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::warn;

use super::Authenticator;
use crate::error::ApiError;

/// How long an auth action may run.
pub const AUTH_ACTION_TIME: Duration = Duration::from_secs(5);

/// What an auth action is asked to authorise.
#[derive(Clone, Copy, Debug)]
pub enum Authorising<'a> {
    /// `/v1/pkp/sign`: signing `to_sign` with `pkp`.
    PkpSign {
        /// The PKP.
        pkp: &'a PkpInfo,
        /// What the caller asks to sign.
        to_sign: &'a ToSign,
    },
    /// `/v1/session/sign`: the network's signature over a session capability of `pkp`.
    PkpSession {
        /// The PKP.
        pkp: &'a PkpInfo,
        /// The capability (SIWE text with a ReCap) the network would sign.
        capability: &'a str,
    },
}

impl Authorising<'_> {
    /// The `jsParams` the node sets, replacing a client's values of the same names.
    pub fn params(&self) -> [(&'static str, Value); 5] {
        let bytes = |b: &[u8]| Value::from(b.to_vec());
        let (pkp, to_sign, message, capability) = match *self {
            Authorising::PkpSign { pkp, to_sign } => match to_sign {
                ToSign::Digest(d) => (pkp, bytes(&d.0), Value::Null, Value::Null),
                ToSign::Message(m) => (pkp, bytes(&eip191_hash(&m.0)), bytes(&m.0), Value::Null),
            },
            Authorising::PkpSession { pkp, capability } => {
                (pkp, Value::Null, Value::Null, json!(capability))
            }
        };
        [
            ("toSign", to_sign),
            ("message", message),
            ("sessionCapability", capability),
            ("publicKey", json!(hex::encode(&pkp.public_key.0))),
            ("tokenId", json!(hex::encode(pkp.token_id.0))),
        ]
    }
}

/// One of the node's permits to run an action (`actions.max_concurrent`), or `rate_limited`.
pub fn action_permit(permits: &Semaphore) -> Result<SemaphorePermit<'_>, ApiError> {
    permits.try_acquire().map_err(|_| {
        ApiError::new(
            ErrorCode::RateLimited,
            "this node is running as many actions as it allows at once (actions.max_concurrent); try again shortly",
        )
    })
}

impl Authenticator {
    fn action_engine(&self) -> Result<Arc<lit_actions::QuickJsEngine>, ApiError> {
        if let Some(e) = self.action_engine.get() {
            return Ok(e.clone());
        }
        let engine = lit_actions::QuickJsEngine::new(lit_actions::EngineConfig::new(
            lit_actions::Limits::default().with_time(AUTH_ACTION_TIME),
        ))
        .map_err(|e| {
            ApiError::internal(ErrorCode::Internal, "the action engine is unavailable", e)
        })?;
        Ok(self.action_engine.get_or_init(|| Arc::new(engine)).clone())
    }

    /// Runs a permitted auth action, shown what it authorises, under one of `permits` (none
    /// free: `rate_limited`); `not_permitted` unless it authorises the caller.
    pub async fn action_authorises(
        &self,
        action: &lit_actions::Action,
        authorising: &Authorising<'_>,
        permits: &Semaphore,
    ) -> Result<(), ApiError> {
        let cid = action.id().to_string();
        let action = shown(action, authorising);
        let engine = self.action_engine()?;
        let _permit = action_permit(permits)?;
        let outcome = lit_actions::Engine::run(
            engine.as_ref(),
            &action,
            Arc::new(lit_actions::host::NoCapabilities),
        )
        .await
        .map_err(|e| {
            warn!(%cid, "auth action failed: {e}");
            ApiError::new(
                ErrorCode::InvalidAuth,
                format!("Lit Action {cid} failed: {e}"),
            )
        })?;
        if authorised(outcome.response.as_deref()) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::NotPermitted,
                format!("Lit Action {cid} did not authorise the caller"),
            ))
        }
    }
}

/// The action with what it authorises in its `jsParams`, over the client's values.
fn shown(action: &lit_actions::Action, authorising: &Authorising<'_>) -> lit_actions::Action {
    authorising
        .params()
        .into_iter()
        .fold(action.clone(), |a, (name, value)| a.with_param(name, value))
}

/// Whether an auth action's response authorises: `true`, or an object with `authorized: true`.
fn authorised(response: Option<&str>) -> bool {
    match response.map(str::trim) {
        Some("true") => true,
        Some(other) => serde_json::from_str::<serde_json::Value>(other)
            .map(|v| v == serde_json::json!(true) || v["authorized"] == serde_json::json!(true))
            .unwrap_or(false),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use lit_api::{Bytes, Bytes32};
    use sha3::Digest as _;

    use super::*;

    fn pkp() -> PkpInfo {
        PkpInfo {
            token_id: Bytes32([0xab; 32]),
            key_id: Bytes32([1; 32]),
            public_key: Bytes(vec![2; 33]),
            eth_address: "0x0000000000000000000000000000000000000001".into(),
            owner: "0x0000000000000000000000000000000000000002".into(),
            permissions: Default::default(),
        }
    }

    /// A client that claims every name the node owns.
    fn claiming() -> lit_actions::Action {
        let mut params = serde_json::Map::new();
        for name in [
            "toSign",
            "message",
            "sessionCapability",
            "publicKey",
            "tokenId",
        ] {
            params.insert(name.into(), json!("the client's claim"));
        }
        params.insert("other".into(), json!(7));
        lit_actions::Action::new("").with_params(params)
    }

    #[test]
    fn the_node_shows_what_is_signed_over_the_clients_claims() {
        let pkp = pkp();
        let digest = ToSign::Digest(Bytes32([9; 32]));
        let shown_digest = shown(
            &claiming(),
            &Authorising::PkpSign {
                pkp: &pkp,
                to_sign: &digest,
            },
        );
        let p = shown_digest.params();
        assert_eq!(p["toSign"], json!([9u8; 32].to_vec()));
        assert_eq!(p["message"], Value::Null);
        assert_eq!(p["sessionCapability"], Value::Null);
        assert_eq!(p["publicKey"], json!("02".repeat(33)));
        assert_eq!(p["tokenId"], json!("ab".repeat(32)));
        assert_eq!(p["other"], json!(7));

        let message = ToSign::Message(Bytes(b"pay 5".to_vec()));
        let shown_message = shown(
            &claiming(),
            &Authorising::PkpSign {
                pkp: &pkp,
                to_sign: &message,
            },
        );
        let p = shown_message.params();
        // the EIP-191 digest, by an implementation other than the node's
        let mut prefixed = b"\x19Ethereum Signed Message:\n5".to_vec();
        prefixed.extend_from_slice(b"pay 5");
        let expected: [u8; 32] = sha3::Keccak256::digest(&prefixed).into();
        assert_eq!(p["toSign"], json!(expected.to_vec()));
        assert_eq!(p["message"], json!(b"pay 5".to_vec()));
        assert_eq!(p["sessionCapability"], Value::Null);

        let session = shown(
            &claiming(),
            &Authorising::PkpSession {
                pkp: &pkp,
                capability: "the capability",
            },
        );
        let p = session.params();
        assert_eq!(p["toSign"], Value::Null);
        assert_eq!(p["message"], Value::Null);
        assert_eq!(p["sessionCapability"], json!("the capability"));
        assert_eq!(p["tokenId"], json!("ab".repeat(32)));
    }

    #[tokio::test]
    async fn an_auth_action_sees_to_sign_and_needs_a_permit() {
        let auth = Authenticator::new(
            "http://node".into(),
            "devnet.lit".into(),
            None,
            BTreeMap::new(),
        );
        let code = r#"Lit.Actions.setResponse({ response: JSON.stringify(
            toSign.length === 32 && toSign[0] === 9 && jsParams.toSign[31] === 9
                && message === null && tokenId === "ab".repeat(32)) });"#;
        let action = lit_actions::Action::new(code).with_param("toSign", json!([0u8; 32].to_vec()));
        let pkp = pkp();
        let signs = |d: u8| ToSign::Digest(Bytes32([d; 32]));
        let (nine, zero) = (signs(9), signs(0));
        let permits = Semaphore::new(1);
        let what = |to_sign| Authorising::PkpSign { pkp: &pkp, to_sign };
        auth.action_authorises(&action, &what(&nine), &permits)
            .await
            .unwrap();
        // the client's toSign of zeros is not what the action sees
        let err = auth
            .action_authorises(&action, &what(&zero), &permits)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotPermitted);
        // the permit is given back after each run; with none free the action does not run
        assert_eq!(permits.available_permits(), 1);
        let _busy = permits.try_acquire().unwrap();
        let err = auth
            .action_authorises(&action, &what(&nine), &permits)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::RateLimited);
        assert!(
            err.message().contains("max_concurrent"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn only_true_or_authorized_true_authorises() {
        for yes in ["true", " true\n", r#"{"authorized":true}"#, "true "] {
            assert!(authorised(Some(yes)), "{yes}");
        }
        for no in [
            "false",
            r#"{"authorized":"true"}"#,
            r#"{"authorised":true}"#,
            "1",
            "",
            "not json",
        ] {
            assert!(!authorised(Some(no)), "{no}");
        }
        assert!(!authorised(None));
    }
}
