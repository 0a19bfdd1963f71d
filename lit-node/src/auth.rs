//! Authentication: one entry point, [`Authenticator::verify`], from the credential a request
//! carries to the caller the node verified.
//!
//! | credential | module | verified caller |
//! |---|---|---|
//! | session signature (per node, one resource and ability) whose capability a wallet signed (EIP-191 over SIWE, [`siwe`]; or EIP-1271, [`eip1271`]) or the network signed (a PKP session) | [`session`] | [`Caller::Session`] |
//! | OpenID Connect ID token (generic, or Lit's Google JWT / Apple JWT types by issuer) | [`oidc`] | [`Caller::AuthMethod`] |
//! | passkey (WebAuthn assertion over node-issued challenges, Lit's type 3) | [`webauthn`] | [`Caller::AuthMethod`] |
//! | Lit Action (decides by running) | [`action`] | [`Caller::LitAction`] (not yet run) |
//!
//! A wallet's `AuthSig` on its own is refused: it is the same at every node, so any node that
//! saw it could replay it at the others. It is accepted only as a session's capability: a
//! sign-in to this network's domain that grants a session key exactly the resources and
//! abilities it names (a ReCap), for at most [`MAX_AUTH_LIFETIME`].
//!
//! Request nonces (`clientPublicKey`, `requestId`) are remembered by [`Authenticator::fresh_nonce`]
//! in a bounded cache ([`nonces`]) with a cap per verified caller ([`CallerKey`]).
//!
//! What the caller may then do (`:userAddress` in conditions, PKP permissions) is decided by the
//! services; this module only says who is asking. Each credential's errors convert into
//! [`ApiError`] here, with internal causes (RPC URLs, JWKS endpoints) kept out of the client's
//! message.

pub mod action;
pub mod eip1271;
pub mod nonces;
pub mod oidc;
pub mod owner;
pub mod session;
pub mod siwe;
pub mod webauthn;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use lit_api::session::{LitAbility, LitResource, ResourceAbilityRequest, SessionSig};
use lit_api::v1::{AuthMethod, AuthSig, PkpAuth};
use lit_api::ErrorCode;
use lit_crypto::bls::PublicKey as BlsPublicKey;
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::conditions::rpc::ChainRpc;
use crate::conditions::ConditionError;
use crate::error::ApiError;
pub use siwe::{
    check_validity, eip191_hash, verify_auth_sig, Address, AuthError, SiweError, SiweMessage,
};

/// Who sent a request, as the node verified it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Caller {
    /// A session key acting for a wallet or a PKP, for the resource and ability asked.
    Session(session::VerifiedSession),
    /// A user of an identity provider.
    AuthMethod {
        /// The verified identity.
        identity: oidc::OidcIdentity,
        /// The auth method type.
        method_type: u32,
        /// The auth method id (lowercase hex).
        id: String,
    },
    /// A Lit Action that decides by running; the service checks that the PKP permits it before
    /// running it with [`Authenticator::action_authorises`].
    LitAction(lit_actions::Action),
}

impl Caller {
    /// The key its request nonces are counted under.
    pub fn key(&self) -> CallerKey {
        match self {
            Caller::Session(session) => CallerKey::Address(session.authorized_address),
            Caller::AuthMethod {
                method_type, id, ..
            } => CallerKey::AuthMethod(*method_type, id.to_ascii_lowercase()),
            Caller::LitAction(action) => CallerKey::LitAction(action.id().to_string()),
        }
    }
}

/// Whose request nonces these are: the verified caller, for the per-caller bound of the nonce
/// cache (one wallet cannot fill the node's memory with nonces, nor crowd out the others).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallerKey {
    /// A wallet, or the address a session speaks for (wallet or PKP).
    Address(Address),
    /// A user of an auth method: its type and id (lowercase hex).
    AuthMethod(u32, String),
    /// Whoever runs a Lit Action as their auth: the action's CID.
    LitAction(String),
    /// Callers that did not authenticate, all under one bound.
    Anonymous,
}

impl std::fmt::Display for CallerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallerKey::Address(a) => write!(f, "{}", a.to_checksum()),
            CallerKey::AuthMethod(t, id) => write!(f, "auth method {t}:{id}"),
            CallerKey::LitAction(cid) => write!(f, "Lit Action {cid}"),
            CallerKey::Anonymous => f.write_str("anonymous callers"),
        }
    }
}

/// The most request nonces the node remembers at once.
pub const NONCE_CAPACITY: usize = 1_000_000;
/// The most live request nonces one caller ([`CallerKey`]) may hold (a fiftieth of
/// [`NONCE_CAPACITY`]: at least fifty callers are needed to fill the cache).
pub const NONCE_PER_CALLER: usize = 20_000;

/// The node's verifiers of every kind of credential.
pub struct Authenticator {
    /// This node's URL (session signatures name the node they were made for).
    node_url: String,
    /// The network's SIWE domain (capabilities are sign-ins to it).
    domain: String,
    oidc: Option<oidc::OidcVerifier>,
    /// The relying party passkeys are accepted for, if any.
    passkeys: Option<webauthn::Passkeys>,
    /// Chains with a known chain id (for EIP-1271 contract-wallet auth).
    chains_by_id: BTreeMap<u64, ChainRpc>,
    sessions: session::ReplayGuard,
    nonces: Mutex<nonces::NonceSet<CallerKey>>,
    action_engine: OnceLock<Arc<lit_actions::QuickJsEngine>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("node_url", &self.node_url)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Verifiers for the node at `node_url` of the network whose SIWE domain is `domain`, with
    /// OpenID Connect issuers (if any) and the chains that contract wallets may live on.
    pub fn new(
        node_url: String,
        domain: String,
        oidc: Option<oidc::OidcVerifier>,
        chains_by_id: BTreeMap<u64, ChainRpc>,
    ) -> Self {
        Self {
            node_url,
            domain,
            oidc,
            passkeys: None,
            chains_by_id,
            sessions: session::ReplayGuard::default(),
            nonces: Mutex::new(nonces::NonceSet::new(NONCE_CAPACITY, NONCE_PER_CALLER)),
            action_engine: OnceLock::new(),
        }
    }

    /// Accepts passkeys of the relying party `config` (the node configuration's `[webauthn]`).
    pub fn with_passkeys(mut self, config: Option<webauthn::WebAuthnConfig>) -> Self {
        self.passkeys = config.map(|c| webauthn::Passkeys::new(c, self.node_url.clone()));
        self
    }

    /// A fresh passkey challenge of this node (`GET /v1/webauthn/challenge`).
    pub fn passkey_challenge(&self) -> Result<lit_api::webauthn::NodeChallenge, ApiError> {
        let passkeys = self
            .passkeys
            .as_ref()
            .ok_or(webauthn::WebAuthnError::NotConfigured)?;
        Ok(passkeys.issue(std::time::SystemTime::now()))
    }

    /// A passkey sign-in (an auth method of type 3 whose `accessToken` is the JSON of a
    /// [`lit_api::webauthn::PasskeyAssertion`]) on the network of `network_key`: verified (see
    /// [`webauthn`]), then this node's challenge is used up (`nonce_replayed` the second time).
    /// The identity it returns names the purpose the user signed for in its `nonce`, which the
    /// service compares with the request's, as for ID tokens.
    pub fn passkey(
        &self,
        method: &AuthMethod,
        network_key: &BlsPublicKey,
    ) -> Result<(oidc::OidcIdentity, String), ApiError> {
        let passkeys = self
            .passkeys
            .as_ref()
            .ok_or(webauthn::WebAuthnError::NotConfigured)?;
        let assertion: lit_api::webauthn::PasskeyAssertion =
            serde_json::from_str(&method.access_token).map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidAuth,
                    format!("a passkey's accessToken is the JSON of a PasskeyAssertion: {e}"),
                )
            })?;
        let network_id = lit_api::owner::network_id(&network_key.to_bytes());
        let verified = passkeys.verify(&assertion, &network_id, std::time::SystemTime::now())?;
        let id = hex::encode(verified.id);
        self.fresh_nonce(
            &CallerKey::AuthMethod(webauthn::AUTH_METHOD_TYPE_WEBAUTHN, id.clone()),
            verified.nonce,
            OffsetDateTime::from(verified.expires_at),
            "passkey challenge",
        )?;
        Ok((oidc::OidcIdentity::passkey(&verified), id))
    }

    /// The network's SIWE domain, which capabilities must name.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The entry point: verifies `auth` for `resource` and `ability` and says who called.
    ///
    /// A wallet speaks only through a session signature made for this node that grants exactly
    /// those ([`Authenticator::session`]): a wallet's `AuthSig` sent as such is the same at
    /// every node, so any node that saw it could replay it at the others, and is refused.
    pub async fn verify(
        &self,
        auth: &PkpAuth,
        resource: LitResource,
        ability: LitAbility,
        network_key: &BlsPublicKey,
    ) -> Result<Caller, ApiError> {
        match auth {
            PkpAuth::AuthSig(sig) => Err(bearer_auth_sig(sig)),
            PkpAuth::SessionSig(sig) => self
                .session(sig, resource, ability, network_key)
                .await
                .map(Caller::Session),
            PkpAuth::AuthMethod(method) => {
                let (identity, id) =
                    if method.auth_method_type == webauthn::AUTH_METHOD_TYPE_WEBAUTHN {
                        self.passkey(method, network_key)?
                    } else {
                        self.auth_method(method).await?
                    };
                Ok(Caller::AuthMethod {
                    // the issuer's type, whatever (compatible) type the request named
                    method_type: identity.auth_method_type(),
                    identity,
                    id,
                })
            }
            PkpAuth::LitAction(action) => Ok(Caller::LitAction(
                lit_actions::Action::new(action.code.clone()).with_params(action.js_params.clone()),
            )),
        }
    }

    /// A wallet credential in an `authSig` field (Lit's SDK sends each node its session
    /// signature there): a session signature for this node granting `ability` on `resource`.
    pub async fn session_in_auth_sig(
        &self,
        sig: &AuthSig,
        resource: LitResource,
        ability: LitAbility,
        network_key: &BlsPublicKey,
    ) -> Result<session::VerifiedSession, ApiError> {
        if sig.derived_via != lit_api::session::DERIVED_VIA_SESSION_SIG {
            return Err(bearer_auth_sig(sig));
        }
        let session_sig = SessionSig {
            sig: sig.sig.clone(),
            derived_via: sig.derived_via.clone(),
            signed_message: sig.signed_message.clone(),
            address: sig.address.clone(),
            algo: sig.algo.clone().unwrap_or_default(),
        };
        self.session(&session_sig, resource, ability, network_key)
            .await
    }

    /// A session signature made for this node that grants `ability` on `resource`, whose
    /// capabilities are sign-ins to this network. Contract wallets' (EIP-1271) capabilities
    /// are put to their contract first, and only when the session key's signature for this
    /// node verifies, so that a forged request costs the node no chain call.
    pub async fn session(
        &self,
        sig: &SessionSig,
        resource: LitResource,
        ability: LitAbility,
        network_key: &BlsPublicKey,
    ) -> Result<session::VerifiedSession, ApiError> {
        let request = ResourceAbilityRequest::new(resource, ability).map_err(|e| {
            ApiError::internal(ErrorCode::Internal, "the resource cannot be named", e)
        })?;
        let now = OffsetDateTime::now_utc();
        let mut contract_verified = Vec::new();
        for cap in session::contract_capabilities(sig, &self.node_url) {
            let message: SiweMessage = cap.signed_message.parse().map_err(AuthError::from)?;
            let rpc = self.chains_by_id.get(&message.chain_id).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ChainUnavailable,
                    format!(
                        "no chain with id {} is configured for contract wallets",
                        message.chain_id
                    ),
                )
            })?;
            eip1271::verify_contract_auth_sig(&cap, now, rpc).await?;
            contract_verified.push(sha2::Sha256::digest(cap.signed_message.as_bytes()).into());
        }
        let ctx = session::SessionContext {
            node_address: &self.node_url,
            domain: &self.domain,
            network_key,
            contract_verified: &contract_verified,
        };
        Ok(session::verify_session_sig(
            sig,
            &ctx,
            &request,
            now,
            &self.sessions,
        )?)
    }

    /// An auth method credential (an OpenID Connect ID token from a configured issuer, sent as
    /// the generic OIDC type or as Lit's type of its issuer: 6 Google JWT, 8 Apple JWT, see
    /// [`oidc`]); returns the identity and its auth method id (lowercase hex).
    pub async fn auth_method(
        &self,
        method: &AuthMethod,
    ) -> Result<(oidc::OidcIdentity, String), ApiError> {
        use lit_api::v1::{
            AUTH_METHOD_TYPE_APPLE_JWT, AUTH_METHOD_TYPE_GOOGLE_JWT, AUTH_METHOD_TYPE_OIDC,
        };
        if ![
            AUTH_METHOD_TYPE_OIDC,
            AUTH_METHOD_TYPE_GOOGLE_JWT,
            AUTH_METHOD_TYPE_APPLE_JWT,
        ]
        .contains(&method.auth_method_type)
        {
            return Err(ApiError::new(
                ErrorCode::InvalidAuth,
                format!(
                    "auth method type {} is not supported",
                    method.auth_method_type
                ),
            ));
        }
        let verifier = self.oidc.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidAuth,
                "this node accepts no OpenID Connect issuer",
            )
        })?;
        let identity = verifier
            .verify(&method.access_token, std::time::SystemTime::now())
            .await?;
        identity.check_claimed_type(method.auth_method_type)?;
        let id = hex::encode(identity.auth_method_id());
        Ok((identity, id))
    }

    /// Records a request nonce (a client's one-time key, a request id) of `caller` until
    /// `until`: `nonce_replayed` if it was seen before (from anyone), `rate_limited` if the
    /// caller already holds [`NONCE_PER_CALLER`] live nonces here or the node holds
    /// [`NONCE_CAPACITY`].
    pub fn fresh_nonce(
        &self,
        caller: &CallerKey,
        nonce: [u8; 32],
        until: OffsetDateTime,
        what: &str,
    ) -> Result<(), ApiError> {
        let now = OffsetDateTime::now_utc();
        let inserted = self
            .nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(nonce, caller, until, now);
        inserted.map_err(|e| match e {
            nonces::NonceRefused::Replayed => ApiError::new(
                ErrorCode::NonceReplayed,
                format!("this {what} was already used: make a fresh one for every request"),
            ),
            nonces::NonceRefused::HolderFull { limit } => ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many recent requests from {caller}: this node remembers at most {limit} \
                     live request nonces per caller until their auth expires; try again later"
                ),
            ),
            nonces::NonceRefused::Full { limit } => ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "this node remembers as many recent requests as it may ({limit}); try again later"
                ),
            ),
        })
    }
}

/// The longest life of a wallet's sign-in (a capability's `Issued At` to `Expiration Time`) a
/// node accepts: 24 hours, Lit's default.
pub const MAX_AUTH_LIFETIME: time::Duration = time::Duration::hours(24);

/// The refusal of a wallet's `AuthSig` sent where a per-node credential is needed.
fn bearer_auth_sig(sig: &AuthSig) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidAuth,
        format!(
            "a wallet's AuthSig (derivedVia {:?}) is valid at every node, so any node could \
             replay it: send each node its own session signature (a session key with the \
             wallet's capability for this resource, as lit-client does)",
            sig.derived_via
        ),
    )
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Expired(_) | AuthError::NotYetValid(_) => {
                ApiError::new(ErrorCode::AuthExpired, e.to_string())
            }
            AuthError::Malformed(_) | AuthError::Siwe(_) | AuthError::BadSignature => {
                ApiError::new(ErrorCode::InvalidAuth, e.to_string())
            }
        }
    }
}

impl From<ConditionError> for ApiError {
    fn from(e: ConditionError) -> Self {
        match e {
            // the RPC's error text names the endpoint, whose URL often carries an API key
            ConditionError::Rpc(_) => ApiError::internal(
                ErrorCode::ChainUnavailable,
                "the chain's RPC endpoint failed or timed out",
                e,
            ),
            ConditionError::Invalid(_) | ConditionError::UnknownChain(_) => {
                ApiError::new(e.code(), e.to_string())
            }
        }
    }
}

impl From<eip1271::Eip1271Error> for ApiError {
    fn from(e: eip1271::Eip1271Error) -> Self {
        match e {
            eip1271::Eip1271Error::Rpc(rpc) => rpc.into(),
            other => ApiError::new(other.code(), other.to_string()),
        }
    }
}

impl From<session::SessionError> for ApiError {
    fn from(e: session::SessionError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

impl From<webauthn::WebAuthnError> for ApiError {
    fn from(e: webauthn::WebAuthnError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

impl From<oidc::OidcError> for ApiError {
    fn from(e: oidc::OidcError) -> Self {
        match e.code() {
            // the key set's endpoint and the fetch error stay in the log
            ErrorCode::Internal => ApiError::internal(
                ErrorCode::Internal,
                "the identity provider's keys could not be checked",
                e,
            ),
            code => ApiError::new(code, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session signature for `node` whose one capability is a contract wallet's
    /// (EIP-1271) on chain 31337, which this node has no RPC for: asking the contract fails.
    fn contract_session(node: &str) -> SessionSig {
        let key = lit_client::SessionKey::random();
        let grants = [ResourceAbilityRequest::new(
            LitResource::Pkp(lit_api::session::ResourceId::Any),
            LitAbility::PkpSigning,
        )
        .unwrap()];
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let mut message =
            lit_api::session::capability_siwe_message(&lit_api::session::CapabilityMessage {
                domain: "devnet.lit",
                address: Address([9; 20]),
                session_key: &key.public_hex(),
                grants: &grants,
                issued_at: now.try_into().unwrap(),
                expiration: (now + time::Duration::minutes(10)).try_into().unwrap(),
                nonce: "abcdef123456",
            });
        message.chain_id = 31337;
        let capability = AuthSig {
            sig: format!("0x{}", "11".repeat(65)),
            derived_via: eip1271::DERIVED_VIA_EIP1271.into(),
            signed_message: message.to_string(),
            address: Address([9; 20]).to_checksum(),
            algo: None,
        };
        lit_client::Session::from_network_capability(key, capability, grants.to_vec())
            .unwrap()
            .sign_for_node(node, std::time::SystemTime::now())
            .unwrap()
    }

    /// A contract wallet's capability is put to its chain only once the session key's signature
    /// for this node verifies: a forged or misdirected request costs the node no chain call.
    #[tokio::test]
    async fn contract_wallet_capabilities_reach_the_chain_only_behind_a_valid_session_signature() {
        let auth = Authenticator::new(
            "http://node".into(),
            "devnet.lit".into(),
            None,
            BTreeMap::new(),
        );
        let network = lit_crypto::bls::SecretKey::random(&mut rand_core::OsRng).public_key();
        let ask = |sig: SessionSig| {
            let auth = &auth;
            async move {
                auth.session(
                    &sig,
                    LitResource::Pkp(lit_api::session::ResourceId::Id("ab".repeat(32))),
                    LitAbility::PkpSigning,
                    &network,
                )
                .await
                .unwrap_err()
            }
        };
        // valid: the node goes on to ask the contract's chain (which it has no RPC for)
        let err = ask(contract_session("http://node")).await;
        assert_eq!(err.code(), ErrorCode::ChainUnavailable, "{}", err.message());
        // a forged session signature, or one made for another node: refused before any chain
        let mut forged = contract_session("http://node");
        forged.sig = "00".repeat(64);
        let err = ask(forged).await;
        assert_eq!(err.code(), ErrorCode::InvalidAuth, "{}", err.message());
        let err = ask(contract_session("http://other")).await;
        assert_eq!(err.code(), ErrorCode::InvalidAuth, "{}", err.message());
        assert!(
            err.message().contains("not for this node"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn request_nonces_are_refused_on_replay_and_bounded_per_caller() {
        let auth = Authenticator::new(
            "http://node".into(),
            "devnet.lit".into(),
            None,
            BTreeMap::new(),
        );
        *auth.nonces.lock().unwrap() = nonces::NonceSet::new(10, 2);
        let until = OffsetDateTime::now_utc() + time::Duration::minutes(5);
        let alice = CallerKey::Address(Address([1; 20]));
        auth.fresh_nonce(&alice, [1; 32], until, "clientPublicKey")
            .unwrap();
        let replay = auth
            .fresh_nonce(&CallerKey::Anonymous, [1; 32], until, "clientPublicKey")
            .unwrap_err();
        assert_eq!(replay.code(), ErrorCode::NonceReplayed);
        assert!(replay.message().contains("clientPublicKey"));
        auth.fresh_nonce(&alice, [2; 32], until, "requestId")
            .unwrap();
        let full = auth
            .fresh_nonce(&alice, [3; 32], until, "requestId")
            .unwrap_err();
        assert_eq!(full.code(), ErrorCode::RateLimited);
        assert!(
            full.message().contains(&Address([1; 20]).to_checksum())
                && full.message().contains("at most 2"),
            "{}",
            full.message()
        );
        // only alice is held back
        for (i, other) in [
            CallerKey::Address(Address([2; 20])),
            CallerKey::AuthMethod(7, "ab".into()),
            CallerKey::Anonymous,
        ]
        .iter()
        .enumerate()
        {
            auth.fresh_nonce(other, [10 + i as u8; 32], until, "requestId")
                .unwrap();
        }
    }
}
