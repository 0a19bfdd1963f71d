//! Verification of session signatures (see [`lit_api::session`] for the wire format).
//!
//! A node accepts a request signed with a session key when [`verify_session_sig`] succeeds:
//!
//! 1. `algo` is `ed25519` and `derivedVia` is `litSessionSignViaNacl`;
//! 2. the ed25519 signature by `address` (the session key) over the bytes of `signedMessage`
//!    verifies (strict verification), and the signed message's `sessionKey` is that key;
//! 3. `nodeAddress` is this node (a signature made for another node is refused);
//! 4. the signature is valid now: `issuedAt` is not in the future (beyond [`CLOCK_SKEW`]), not
//!    older than [`MAX_SIGNATURE_AGE`], and `expiration` has not passed;
//! 5. the requested resource and ability are among the signed `resourceAbilityRequests` and
//!    granted by a capability (wildcards `*` allowed);
//! 6. every capability verifies (a wallet's EIP-191 signature through
//!    [`crate::auth::verify_auth_sig`], a contract wallet's EIP-1271 signature as its contract
//!    answered, or the network's BLS signature for PKP sessions), is a sign-in to this network's
//!    domain, binds this session key in its `URI`, carries one ReCap whose statement matches it,
//!    lives at most [`crate::auth::MAX_AUTH_LIFETIME`] if a wallet signed it, and all name the
//!    same address; the session signature expires no later than any capability;
//! 7. its nonce was not seen before ([`ReplayGuard`], which also bounds the live nonces of each
//!    authorized address). Only fully valid signatures consume a nonce.
//!
//! What the authorized address may then do (PKP permissions, conditions) is the caller's
//! decision.

use std::sync::Mutex;

use ed25519_dalek::{Signature, VerifyingKey};
use lit_api::session::{
    Recap, ResourceAbilityRequest, SessionSig, SessionSignedMessage, DERIVED_VIA_NETWORK_BLS,
    DERIVED_VIA_SESSION_SIG, NETWORK_SIGNATURE_LEN, RECAP_PREFIX, SESSION_SIG_ALGO,
    SESSION_URI_PREFIX,
};
use lit_api::v1::{AuthSig, DERIVED_VIA_PERSONAL_SIGN};
use lit_api::ErrorCode;
use lit_crypto::eth::Address;
use sha2::{Digest as _, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::auth::nonces::{NonceRefused, NonceSet};
use crate::auth::{verify_auth_sig, AuthError, SiweError, SiweMessage};

/// How far in the future an `issuedAt` may lie (clock skew between client and node).
pub const CLOCK_SKEW: Duration = Duration::seconds(60);
/// How old (by `issuedAt`) a session signature may be. Clients sign each request afresh, so
/// this bounds how long a node must remember nonces.
pub const MAX_SIGNATURE_AGE: Duration = Duration::minutes(5);
/// The most capabilities one session signature may carry.
pub const MAX_CAPABILITIES: usize = 8;
/// The default number of nonces a [`ReplayGuard`] remembers.
pub const DEFAULT_REPLAY_CAPACITY: usize = 1_000_000;
/// The default number of live nonces a [`ReplayGuard`] remembers for one authorized address
/// (a fiftieth of [`DEFAULT_REPLAY_CAPACITY`]; nonces live at most [`MAX_SIGNATURE_AGE`]).
pub const DEFAULT_REPLAY_PER_ADDRESS: usize = 20_000;

/// A session signature that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSession {
    /// The session public key.
    pub session_key: VerifyingKey,
    /// The address the capabilities speak for: the wallet, or the PKP for network-signed ones.
    pub authorized_address: Address,
    /// Who signed the capabilities.
    pub authorized_by: CapabilitySigner,
    /// When the session signature expires.
    pub expires_at: OffsetDateTime,
    /// Everything the signature requests (the checked request is among them).
    pub requests: Vec<ResourceAbilityRequest>,
    /// Everything its capabilities grant: what else the session may do in the same request
    /// (a Lit Action's caller signs or decrypts inside the action only with such a grant).
    pub grants: Vec<ResourceAbilityRequest>,
    /// For a PKP session (network-signed capabilities): the party that obtained it, which the
    /// network signed with the capability (`lit_api::session::network_grant_message`).
    pub network_party: Option<String>,
    /// The most the request may cost at this node (base units; 0 if the caller signed none).
    pub max_price: u128,
    /// Who pays: the signed `payer`, else the authorized address.
    pub payer: Address,
    /// The request's id: SHA-256 of the signed message (unique by its nonce), which a node's
    /// charges digest.
    pub request_id: [u8; 32],
}

/// Who signed a capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapabilitySigner {
    /// A wallet (EIP-191 `personal_sign`): the authorized address is the wallet's.
    Wallet,
    /// The network's BLS key (a PKP session): the authorized address is the PKP's.
    Network,
}

/// Why a session signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session signature or its signed message is not well-formed.
    #[error("malformed session signature: {0}")]
    Malformed(String),
    /// An `algo` or `derivedVia` this node does not support.
    #[error("unsupported {field} {value:?}")]
    Unsupported {
        /// `algo` or `derivedVia`.
        field: &'static str,
        /// The value sent.
        value: String,
    },
    /// The ed25519 signature does not verify under the session key.
    #[error("session signature is invalid")]
    BadSignature,
    /// The signed message names another session key than the one that signed it.
    #[error("the signed message names session key {claimed}, but {signer} signed it")]
    SessionKeyMismatch {
        /// `sessionKey` in the signed message.
        claimed: String,
        /// The signing key (`address`).
        signer: String,
    },
    /// The signature was made for another node.
    #[error("session signature is for node {got:?}, not for this node ({expected:?})")]
    WrongNode {
        /// This node.
        expected: String,
        /// The node the signature names.
        got: String,
    },
    /// `expiration` has passed.
    #[error("session signature expired at {0}")]
    Expired(String),
    /// `issuedAt` is in the future.
    #[error("session signature is issued in the future ({0})")]
    NotYetValid(String),
    /// `issuedAt` is older than [`MAX_SIGNATURE_AGE`]: sign each request afresh.
    #[error("session signature issued at {0} is too old; sign each request afresh")]
    Stale(String),
    /// The session signature expires after one of its capabilities.
    #[error("session signature expires at {session}, after its capability ({capability})")]
    OutlivesCapability {
        /// The session signature's expiration.
        session: String,
        /// The earliest capability expiration.
        capability: String,
    },
    /// The signed `resourceAbilityRequests` do not include the request.
    #[error("the session signature does not request {ability} on {resource}")]
    NotRequested {
        /// The resource requested.
        resource: String,
        /// The ability requested.
        ability: String,
    },
    /// No capability grants the request.
    #[error("no capability grants {ability} on {resource}")]
    NotGranted {
        /// The resource requested.
        resource: String,
        /// The ability requested.
        ability: String,
    },
    /// A capability was refused.
    #[error("capability {index}: {reason}")]
    Capability {
        /// Its position in `capabilities`.
        index: usize,
        /// Why.
        reason: CapabilityError,
    },
    /// The nonce was used before.
    #[error("session signature nonce was already used")]
    Replayed,
    /// The node remembers too many recent nonces to accept another now.
    #[error("too many recent session signatures; try again later")]
    ReplayCacheFull,
    /// The node remembers too many recent nonces of this authorized address.
    #[error("too many recent session signatures for {0} (the node remembers at most {1} per address until they expire); try again later")]
    TooManyForAddress(String, usize),
}

/// Why a capability was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapabilityError {
    /// Not a well-formed capability.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A `derivedVia` this node does not support.
    #[error("unsupported derivedVia {0:?}")]
    Unsupported(String),
    /// The wallet or network signature does not verify.
    #[error("signature is invalid")]
    BadSignature,
    /// The capability is for another SIWE domain than this network's.
    #[error("it is a sign-in to {got:?}, not to this network ({expected:?})")]
    WrongDomain {
        /// The network's domain.
        expected: String,
        /// The capability's domain.
        got: String,
    },
    /// A wallet capability that lives longer than [`crate::auth::MAX_AUTH_LIFETIME`].
    #[error("it lives from {issued} to {expires}: at most {max_hours} hours is accepted")]
    TooLong {
        /// `Issued At`.
        issued: String,
        /// `Expiration Time`.
        expires: String,
        /// The most accepted.
        max_hours: i64,
    },
    /// An EIP-1271 capability that its contract was not asked about (or refused).
    #[error("the contract wallet's signature was not verified")]
    ContractUnverified,
    /// The capability is for another session key.
    #[error("it is for session {got:?}, not for this session key {expected:?}")]
    WrongSessionKey {
        /// `lit:session:<this key>`.
        expected: String,
        /// The capability's `URI`.
        got: String,
    },
    /// It has expired.
    #[error("expired at {0}")]
    Expired(String),
    /// It is not valid yet.
    #[error("not valid before {0}")]
    NotYetValid(String),
}

impl SessionError {
    /// The stable API code: `auth_expired` for expiry and validity windows, `nonce_replayed`
    /// for a replay, `rate_limited` when the replay cache is full (for everyone, or for the
    /// authorized address), `invalid_auth` otherwise
    /// (including a signature for another node).
    pub fn code(&self) -> ErrorCode {
        match self {
            SessionError::Expired(_) | SessionError::NotYetValid(_) | SessionError::Stale(_) => {
                ErrorCode::AuthExpired
            }
            SessionError::Capability {
                reason: CapabilityError::Expired(_) | CapabilityError::NotYetValid(_),
                ..
            } => ErrorCode::AuthExpired,
            SessionError::Replayed => ErrorCode::NonceReplayed,
            SessionError::ReplayCacheFull | SessionError::TooManyForAddress(..) => {
                ErrorCode::RateLimited
            }
            _ => ErrorCode::InvalidAuth,
        }
    }
}

/// A capability's SIWE message, parsed and checked (not its signature).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCapability {
    /// The SIWE `domain` (the network's, for a capability a node accepts).
    pub domain: String,
    /// The granting address (wallet or PKP).
    pub address: Address,
    /// The session key (hex) from `URI: lit:session:<key>`.
    pub session_key: String,
    /// What the ReCap grants.
    pub grants: Vec<ResourceAbilityRequest>,
    /// `Issued At`.
    pub issued_at: OffsetDateTime,
    /// `Expiration Time` (required).
    pub expires_at: OffsetDateTime,
    /// `Not Before`, if any.
    pub not_before: Option<OffsetDateTime>,
    /// For a network-signed capability: the party that obtained it (signed with it).
    pub network_party: Option<String>,
}

/// Parses a capability message and checks its shape: a valid EIP-4361 message with
/// `URI: lit:session:<64 hex digits>`, an expiration, exactly one resource, which is a ReCap of
/// Lit grants, and the EIP-5573 statement of that ReCap. Signature and times are not checked
/// here. The network runs this before signing a PKP capability.
pub fn parse_capability_message(text: &str) -> Result<ParsedCapability, CapabilityError> {
    let siwe: SiweMessage = text
        .parse()
        .map_err(|e: SiweError| CapabilityError::Malformed(e.to_string()))?;
    capability_of(siwe)
}

fn capability_of(siwe: SiweMessage) -> Result<ParsedCapability, CapabilityError> {
    let bad = |m: String| CapabilityError::Malformed(m);
    let session_key = siwe
        .uri
        .strip_prefix(SESSION_URI_PREFIX)
        .filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            bad(format!(
                "URI {:?} is not {SESSION_URI_PREFIX}<session key hex>",
                siwe.uri
            ))
        })?
        .to_ascii_lowercase();
    let expires_at = siwe
        .expiration_time
        .as_ref()
        .map(|t| t.datetime())
        .ok_or_else(|| bad("a capability must have an Expiration Time".into()))?;
    let [resource] = siwe.resources.as_slice() else {
        return Err(bad(format!(
            "expected exactly one resource ({RECAP_PREFIX}…), found {}",
            siwe.resources.len()
        )));
    };
    let recap = Recap::from_resource_uri(resource).map_err(|e| bad(e.to_string()))?;
    let grants = recap.grants().map_err(|e| bad(e.to_string()))?;
    if siwe.statement.as_deref() != Some(recap.statement().as_str()) {
        return Err(bad(
            "the statement does not state what the ReCap grants (EIP-5573)".into(),
        ));
    }
    Ok(ParsedCapability {
        domain: siwe.domain,
        address: siwe.address,
        session_key,
        grants,
        issued_at: siwe.issued_at.datetime(),
        expires_at,
        not_before: siwe.not_before.map(|t| t.datetime()),
        network_party: None,
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// What a node checks session signatures against: itself and its network.
#[derive(Clone, Copy, Debug)]
pub struct SessionContext<'a> {
    /// This node's URL: a session signature names the one node it is for.
    pub node_address: &'a str,
    /// The network's SIWE domain ([`lit_api::network::NetworkFile::domain`]): every capability
    /// must be a sign-in to it.
    pub domain: &'a str,
    /// The network's BLS key, which signs PKP sessions' capabilities.
    pub network_key: &'a lit_crypto::bls::PublicKey,
    /// The SHA-256 of the signed messages of EIP-1271 capabilities whose contract wallet
    /// accepted them (asked on chain by the caller beforehand, see
    /// [`crate::auth::Authenticator::session`]); any other EIP-1271 capability is refused.
    pub contract_verified: &'a [[u8; 32]],
}

/// Verifies one capability for `session_key_hex` (lowercase hex) at `now`: its signature (a
/// wallet's, a contract wallet's as `ctx` says, or the network's), its session key, its domain
/// and its life (a wallet's at most [`crate::auth::MAX_AUTH_LIFETIME`]; PKP sessions are
/// bounded where the network signs them).
pub fn verify_capability(
    cap: &AuthSig,
    session_key_hex: &str,
    now: OffsetDateTime,
    ctx: &SessionContext<'_>,
) -> Result<(CapabilitySigner, ParsedCapability), CapabilityError> {
    let network_bls_key = ctx.network_key;
    let (signer, parsed) = match cap.derived_via.as_str() {
        DERIVED_VIA_PERSONAL_SIGN => {
            let (_, siwe) = verify_auth_sig(cap, now).map_err(|e| match e {
                AuthError::BadSignature => CapabilityError::BadSignature,
                AuthError::Expired(t) => CapabilityError::Expired(t),
                AuthError::NotYetValid(t) => CapabilityError::NotYetValid(t),
                other => CapabilityError::Malformed(other.to_string()),
            })?;
            (CapabilitySigner::Wallet, capability_of(siwe)?)
        }
        DERIVED_VIA_NETWORK_BLS => {
            let claimed = Address::parse(&cap.address)
                .map_err(|e| CapabilityError::Malformed(e.to_string()))?;
            let (capability, party) = lit_api::session::split_network_grant(&cap.signed_message)
                .ok_or_else(|| {
                    CapabilityError::Malformed(
                        "a network-signed capability must name the party that obtained it".into(),
                    )
                })?;
            let mut parsed = parse_capability_message(capability)?;
            parsed.network_party = Some(party.to_string());
            if parsed.address != claimed {
                return Err(CapabilityError::Malformed(
                    "the SIWE message names another address than the capability".into(),
                ));
            }
            let digits = cap.sig.strip_prefix("0x").unwrap_or(&cap.sig);
            let bytes = hex::decode(digits)
                .map_err(|_| CapabilityError::Malformed("signature is not hex".into()))?;
            if bytes.len() != NETWORK_SIGNATURE_LEN {
                return Err(CapabilityError::Malformed(format!(
                    "a network signature is {NETWORK_SIGNATURE_LEN} bytes, got {}",
                    bytes.len()
                )));
            }
            let sig = lit_crypto::bls::Signature::from_bytes(&bytes)
                .map_err(|_| CapabilityError::BadSignature)?;
            network_bls_key
                .verify(cap.signed_message.as_bytes(), &sig)
                .map_err(|_| CapabilityError::BadSignature)?;
            if now >= parsed.expires_at {
                return Err(CapabilityError::Expired(rfc3339(parsed.expires_at)));
            }
            if let Some(nbf) = parsed.not_before.filter(|nbf| now < *nbf) {
                return Err(CapabilityError::NotYetValid(rfc3339(nbf)));
            }
            (CapabilitySigner::Network, parsed)
        }
        crate::auth::eip1271::DERIVED_VIA_EIP1271 => {
            let hash: [u8; 32] = Sha256::digest(cap.signed_message.as_bytes()).into();
            if !ctx.contract_verified.contains(&hash) {
                return Err(CapabilityError::ContractUnverified);
            }
            let siwe: SiweMessage = cap
                .signed_message
                .parse()
                .map_err(|e: SiweError| CapabilityError::Malformed(e.to_string()))?;
            (CapabilitySigner::Wallet, capability_of(siwe)?)
        }
        other => return Err(CapabilityError::Unsupported(other.to_string())),
    };
    if parsed.domain != ctx.domain {
        return Err(CapabilityError::WrongDomain {
            expected: ctx.domain.to_string(),
            got: parsed.domain,
        });
    }
    if signer == CapabilitySigner::Wallet
        && parsed.expires_at - parsed.issued_at > crate::auth::MAX_AUTH_LIFETIME
    {
        return Err(CapabilityError::TooLong {
            issued: rfc3339(parsed.issued_at),
            expires: rfc3339(parsed.expires_at),
            max_hours: crate::auth::MAX_AUTH_LIFETIME.whole_hours(),
        });
    }
    if parsed.issued_at > now + CLOCK_SKEW {
        return Err(CapabilityError::NotYetValid(rfc3339(parsed.issued_at)));
    }
    if parsed.session_key != session_key_hex {
        return Err(CapabilityError::WrongSessionKey {
            expected: format!("{SESSION_URI_PREFIX}{session_key_hex}"),
            got: format!("{SESSION_URI_PREFIX}{}", parsed.session_key),
        });
    }
    Ok((signer, parsed))
}

/// The EIP-1271 capabilities of `sig`, if its session key's signature verifies and names this
/// node (`node_address`); none otherwise. Their contracts are asked before
/// [`verify_session_sig`] (which refuses any not asked).
pub fn contract_capabilities(sig: &SessionSig, node_address: &str) -> Vec<AuthSig> {
    let verified = || -> Option<SessionSignedMessage> {
        let key: [u8; 32] = hex::decode(&sig.address).ok()?.try_into().ok()?;
        let signature: [u8; 64] = hex::decode(&sig.sig).ok()?.try_into().ok()?;
        VerifyingKey::from_bytes(&key)
            .ok()?
            .verify_strict(
                sig.signed_message.as_bytes(),
                &Signature::from_bytes(&signature),
            )
            .ok()?;
        serde_json::from_str(&sig.signed_message).ok()
    };
    match verified() {
        Some(m) if node_eq(&m.node_address, node_address) => m
            .capabilities
            .into_iter()
            .filter(|c| c.derived_via == crate::auth::eip1271::DERIVED_VIA_EIP1271)
            .take(MAX_CAPABILITIES)
            .collect(),
        _ => Vec::new(),
    }
}

fn node_eq(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn parse_time(field: &str, value: &str) -> Result<OffsetDateTime, SessionError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|e| SessionError::Malformed(format!("{field} {value:?} is not RFC 3339: {e}")))
}

/// Verifies a session signature for `request` at this node (`ctx.node_address`, compared
/// ignoring a trailing `/`) of this network at time `now`, and records its nonce in `replay`.
/// See the module documentation for the checks.
pub fn verify_session_sig(
    sig: &SessionSig,
    ctx: &SessionContext<'_>,
    request: &ResourceAbilityRequest,
    now: OffsetDateTime,
    replay: &ReplayGuard,
) -> Result<VerifiedSession, SessionError> {
    let expected_node_address = ctx.node_address;
    if sig.algo != SESSION_SIG_ALGO {
        return Err(SessionError::Unsupported {
            field: "algo",
            value: sig.algo.clone(),
        });
    }
    if sig.derived_via != DERIVED_VIA_SESSION_SIG {
        return Err(SessionError::Unsupported {
            field: "derivedVia",
            value: sig.derived_via.clone(),
        });
    }
    // 1. the session key's signature over the exact bytes
    let key_bytes: [u8; 32] = hex::decode(&sig.address)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SessionError::Malformed("address is not a 32-byte hex key".into()))?;
    let session_key = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| SessionError::Malformed("address is not an ed25519 public key".into()))?;
    let sig_bytes: [u8; 64] = hex::decode(&sig.sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SessionError::Malformed("sig is not a 64-byte hex signature".into()))?;
    session_key
        .verify_strict(
            sig.signed_message.as_bytes(),
            &Signature::from_bytes(&sig_bytes),
        )
        .map_err(|_| SessionError::BadSignature)?;
    let message: SessionSignedMessage = serde_json::from_str(&sig.signed_message)
        .map_err(|e| SessionError::Malformed(format!("signedMessage: {e}")))?;
    let key_hex = hex::encode(key_bytes);
    if message.session_key.to_ascii_lowercase() != key_hex {
        return Err(SessionError::SessionKeyMismatch {
            claimed: message.session_key,
            signer: key_hex,
        });
    }
    // 2. for this node
    if !node_eq(&message.node_address, expected_node_address) {
        return Err(SessionError::WrongNode {
            expected: expected_node_address.to_string(),
            got: message.node_address,
        });
    }
    // 3. validity window
    let issued_at = parse_time("issuedAt", &message.issued_at)?;
    let expires_at = parse_time("expiration", &message.expiration)?;
    if expires_at <= issued_at {
        return Err(SessionError::Malformed(
            "expiration is not after issuedAt".into(),
        ));
    }
    if issued_at > now + CLOCK_SKEW {
        return Err(SessionError::NotYetValid(message.issued_at));
    }
    if now >= expires_at {
        return Err(SessionError::Expired(message.expiration));
    }
    if now - issued_at > MAX_SIGNATURE_AGE {
        return Err(SessionError::Stale(message.issued_at));
    }
    if !(32..=64).contains(&message.nonce.len())
        || !message
            .nonce
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(SessionError::Malformed(
            "nonce must be 32 to 64 lowercase hex digits".into(),
        ));
    }
    // 4. requested
    if !message
        .resource_ability_requests
        .iter()
        .any(|r| r.covers(request))
    {
        return Err(SessionError::NotRequested {
            resource: request.resource().to_string(),
            ability: request.ability().to_string(),
        });
    }
    // 5. capabilities
    if message.capabilities.is_empty() || message.capabilities.len() > MAX_CAPABILITIES {
        return Err(SessionError::Malformed(format!(
            "expected 1 to {MAX_CAPABILITIES} capabilities, got {}",
            message.capabilities.len()
        )));
    }
    let mut authorized: Option<(Address, CapabilitySigner)> = None;
    let mut granted = false;
    let mut earliest: Option<OffsetDateTime> = None;
    let mut network_party: Option<String> = None;
    let mut grants = Vec::new();
    for (index, cap) in message.capabilities.iter().enumerate() {
        let (signer, parsed) = verify_capability(cap, &key_hex, now, ctx)
            .map_err(|reason| SessionError::Capability { index, reason })?;
        match authorized {
            None => authorized = Some((parsed.address, signer)),
            Some((a, s)) if a == parsed.address && s == signer => {}
            Some(_) => {
                return Err(SessionError::Capability {
                    index,
                    reason: CapabilityError::Malformed(
                        "capabilities speak for different addresses or signers".into(),
                    ),
                })
            }
        }
        granted |= parsed.grants.iter().any(|g| g.covers(request));
        grants.extend(parsed.grants);
        if let Some(party) = &parsed.network_party {
            if network_party.as_ref().is_some_and(|p| p != party) {
                return Err(SessionError::Capability {
                    index,
                    reason: CapabilityError::Malformed(
                        "network-signed capabilities obtained by different parties".into(),
                    ),
                });
            }
            network_party = Some(party.clone());
        }
        earliest = Some(earliest.map_or(parsed.expires_at, |e| e.min(parsed.expires_at)));
    }
    let (Some((authorized_address, authorized_by)), Some(capability_expiry)) =
        (authorized, earliest)
    else {
        return Err(SessionError::Malformed("no capabilities".into()));
    };
    if !granted {
        return Err(SessionError::NotGranted {
            resource: request.resource().to_string(),
            ability: request.ability().to_string(),
        });
    }
    if expires_at > capability_expiry {
        return Err(SessionError::OutlivesCapability {
            session: message.expiration,
            capability: rfc3339(capability_expiry),
        });
    }
    let max_price = match &message.max_price {
        None => 0,
        Some(p) if !p.is_empty() && p.len() <= 39 && p.bytes().all(|b| b.is_ascii_digit()) => p
            .parse::<u128>()
            .map_err(|_| SessionError::Malformed(format!("maxPrice {p:?} is too large")))?,
        Some(p) => {
            return Err(SessionError::Malformed(format!(
                "maxPrice {p:?} is not a decimal amount of base units"
            )))
        }
    };
    let payer = match &message.payer {
        None => authorized_address,
        Some(p) => {
            Address::parse(p).map_err(|e| SessionError::Malformed(format!("payer {p:?}: {e}")))?
        }
    };
    // 6. replay, last: only valid signatures consume a nonce
    let remember_until = expires_at.min(issued_at + MAX_SIGNATURE_AGE);
    replay.check_and_insert(
        &key_bytes,
        &message.nonce,
        &authorized_address,
        remember_until,
        now,
    )?;
    Ok(VerifiedSession {
        session_key,
        authorized_address,
        authorized_by,
        expires_at,
        requests: message.resource_ability_requests,
        grants,
        network_party,
        max_price,
        payer,
        request_id: Sha256::digest(sig.signed_message.as_bytes()).into(),
    })
}

/// Remembers the nonces of accepted session signatures until those signatures can no longer
/// be accepted anyway (expired or older than [`MAX_SIGNATURE_AGE`]), up to a capacity and up to
/// a cap per authorized address (the wallet or PKP the session speaks for), so that one address
/// cannot fill the cache and lock the others out. A [`NonceSet`]: expired nonces leave from the
/// front on every insert.
/// In memory: a restarted node forgets them, which is safe only because signatures live at most
/// [`MAX_SIGNATURE_AGE`].
#[derive(Debug)]
pub struct ReplayGuard {
    inner: Mutex<NonceSet<Address>>,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CAPACITY, DEFAULT_REPLAY_PER_ADDRESS)
    }
}

impl ReplayGuard {
    /// A guard that remembers at most `capacity` live nonces, `per_address` of them for one
    /// authorized address.
    pub fn new(capacity: usize, per_address: usize) -> Self {
        Self {
            inner: Mutex::new(NonceSet::new(capacity, per_address)),
        }
    }

    /// Records `nonce` of `session_key`, authorized by `address`, to be remembered until
    /// `until`; refuses a nonce seen before ([`SessionError::Replayed`]), a new one when the
    /// address has `per_address` live nonces ([`SessionError::TooManyForAddress`]) and any new
    /// one when `capacity` live nonces are remembered ([`SessionError::ReplayCacheFull`]).
    pub fn check_and_insert(
        &self,
        session_key: &[u8],
        nonce: &str,
        address: &Address,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), SessionError> {
        let mut h = Sha256::new();
        h.update(b"lit-node/session-nonce/v1");
        h.update((session_key.len() as u64).to_be_bytes());
        h.update(session_key);
        h.update(nonce.as_bytes());
        let id: [u8; 32] = h.finalize().into();
        let inserted = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, address, until, now);
        inserted.map_err(|e| match e {
            NonceRefused::Replayed => SessionError::Replayed,
            NonceRefused::HolderFull { limit } => {
                SessionError::TooManyForAddress(address.to_checksum(), limit)
            }
            NonceRefused::Full { .. } => SessionError::ReplayCacheFull,
        })
    }

    /// How many nonces are remembered (including ones that expired but were not purged yet).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000 + secs).unwrap()
    }

    #[test]
    fn replay_guard_refuses_replays_forgets_after_expiry_and_is_bounded() {
        let a = Address([1; 20]);
        let g = ReplayGuard::new(2, 2);
        g.check_and_insert(b"k1", "n1", &a, t(10), t(0)).unwrap();
        assert_eq!(
            g.check_and_insert(b"k1", "n1", &a, t(10), t(5)),
            Err(SessionError::Replayed)
        );
        // same nonce, other session key: distinct
        g.check_and_insert(b"k2", "n1", &a, t(20), t(5)).unwrap();
        assert_eq!(
            g.check_and_insert(b"k3", "n3", &Address([3; 20]), t(20), t(5)),
            Err(SessionError::ReplayCacheFull)
        );
        assert_eq!(SessionError::ReplayCacheFull.code(), ErrorCode::RateLimited);
        // still remembered exactly at its expiry, purged after it
        assert_eq!(
            g.check_and_insert(b"k1", "n1", &a, t(10), t(10)),
            Err(SessionError::Replayed)
        );
        g.check_and_insert(b"k3", "n3", &Address([3; 20]), t(20), t(11))
            .unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(
            g.check_and_insert(b"k2", "n1", &a, t(20), t(11)),
            Err(SessionError::Replayed)
        );
    }

    #[test]
    fn replay_guard_bounds_each_authorized_address() {
        let (greedy, other) = (Address([1; 20]), Address([2; 20]));
        let g = ReplayGuard::new(10, 2);
        g.check_and_insert(b"k1", "n1", &greedy, t(60), t(0))
            .unwrap();
        // a second session key of the same address counts against the same bound
        g.check_and_insert(b"k2", "n1", &greedy, t(60), t(0))
            .unwrap();
        let err = g
            .check_and_insert(b"k3", "n1", &greedy, t(60), t(1))
            .unwrap_err();
        assert_eq!(
            err,
            SessionError::TooManyForAddress(greedy.to_checksum(), 2)
        );
        assert_eq!(err.code(), ErrorCode::RateLimited);
        assert!(err.to_string().contains(&greedy.to_checksum()), "{err}");
        // another address is not affected; the greedy one may send again once its nonces expire
        g.check_and_insert(b"k3", "n1", &other, t(60), t(1))
            .unwrap();
        g.check_and_insert(b"k3", "n2", &greedy, t(120), t(61))
            .unwrap();
    }

    #[test]
    fn error_codes() {
        assert_eq!(SessionError::Replayed.code(), ErrorCode::NonceReplayed);
        assert_eq!(
            SessionError::Expired("x".into()).code(),
            ErrorCode::AuthExpired
        );
        assert_eq!(
            SessionError::Stale("x".into()).code(),
            ErrorCode::AuthExpired
        );
        assert_eq!(
            SessionError::Capability {
                index: 0,
                reason: CapabilityError::Expired("x".into())
            }
            .code(),
            ErrorCode::AuthExpired
        );
        let wrong = SessionError::WrongNode {
            expected: "http://a".into(),
            got: "http://b".into(),
        };
        assert_eq!(wrong.code(), ErrorCode::InvalidAuth);
        assert!(wrong.to_string().contains("not for this node"));
        assert_eq!(SessionError::BadSignature.code(), ErrorCode::InvalidAuth);
    }
}
