//! Session signatures: the wire types shared by the node (which verifies them) and the client
//! (which makes them), modelled on Lit's `SessionSigs`.
//!
//! A client makes an ephemeral ed25519 **session key** and obtains a **capability** for it: an
//! [`AuthSig`] over a Sign-In with Ethereum (EIP-4361) message whose `URI` is
//! `lit:session:<session key hex>` and whose last resource is an EIP-5573 ReCap
//! (`urn:recap:<base64url JSON>`) granting resources and abilities. The capability is signed
//! either by a wallet (EIP-191, `derivedVia: "web3.eth.personal.sign"`) or by the network itself
//! for PKP-based sessions (`derivedVia: "lit.bls"`, a BLS signature by the network key over the
//! message bytes). Each request is then signed per node with the session key: a [`SessionSig`]
//! whose `signedMessage` is the JSON of a [`SessionSignedMessage`] naming the node, the
//! requested resources and abilities, a validity window and a fresh nonce.
//!
//! Shapes follow Lit's JS SDK (`SessionSig` with `derivedVia: "litSessionSignViaNacl"` and
//! `algo: "ed25519"`; signed message fields `sessionKey`, `resourceAbilityRequests`,
//! `capabilities`, `issuedAt`, `expiration`, `nodeAddress`; resource prefixes `lit-pkp`,
//! `lit-accesscontrolcondition`, `lit-litaction`; abilities `pkp-signing`,
//! `access-control-condition-decryption`, `lit-action-execution`, mapped into the ReCap
//! namespace `Threshold` as `Signing`, `Decryption`, `Execution` as the SDK's
//! `getRecapNamespaceAndAbility` does). Differences: a resource travels as its URI string
//! (`"lit-pkp://…"`) rather than as `{resource, resourcePrefix}`, and the signed message carries a
//! `nonce` for replay protection.
//!
//! ```
//! use lit_api::session::{LitAbility, LitResource, Recap, ResourceAbilityRequest, ResourceId};
//!
//! let grant = ResourceAbilityRequest::new(
//!     LitResource::Pkp(ResourceId::Any),
//!     LitAbility::PkpSigning,
//! ).unwrap();
//! let recap = Recap::from_grants(std::slice::from_ref(&grant));
//! let uri = recap.to_resource_uri();
//! assert!(uri.starts_with("urn:recap:"));
//! let back = Recap::from_resource_uri(&uri).unwrap();
//! assert_eq!(back.grants().unwrap(), vec![grant]);
//! assert_eq!(
//!     recap.statement(),
//!     "I further authorize the stated URI to perform the following actions on my behalf: \
//!      (1) 'Threshold': 'Signing' for 'lit-pkp://*'."
//! );
//! // unknown resources and abilities are refused
//! assert!("lit-ratelimitincrease://*".parse::<LitResource>().is_err());
//! assert!("pkp-sign".parse::<LitAbility>().is_err());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lit_crypto::eth::Address;
use serde::{Deserialize, Serialize};

use crate::siwe::{SiweMessage, Timestamp};
use crate::v1::AuthSig;

/// The `derivedVia` of a session signature (an ed25519 signature by the session key).
pub const DERIVED_VIA_SESSION_SIG: &str = "litSessionSignViaNacl";
/// The `algo` of a session signature.
pub const SESSION_SIG_ALGO: &str = "ed25519";
/// The `derivedVia` of a capability signed by the network's BLS key (PKP-based sessions).
pub const DERIVED_VIA_NETWORK_BLS: &str = "lit.bls";
/// The `URI` prefix of a capability's SIWE message; the session key (hex) follows.
pub const SESSION_URI_PREFIX: &str = "lit:session:";
/// The prefix of an EIP-5573 ReCap resource URI.
pub const RECAP_PREFIX: &str = "urn:recap:";
/// The EIP-5573 statement prefix that a ReCap's human-readable statement starts with.
pub const RECAP_STATEMENT_PREFIX: &str =
    "I further authorize the stated URI to perform the following actions on my behalf:";
/// The ReCap namespace of every Lit ability (as in Lit's SDK).
pub const RECAP_NAMESPACE: &str = "Threshold";
/// The length of a BLS signature (G2, compressed) in a network-signed capability.
pub const NETWORK_SIGNATURE_LEN: usize = 96;

/// Session signatures for several nodes, keyed by node URL (Lit's `SessionSigs`).
pub type SessionSigs = BTreeMap<String, SessionSig>;

/// A request signed by a session key for one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionSig {
    /// The ed25519 signature (64 bytes, hex without `0x`) over the bytes of `signedMessage`.
    pub sig: String,
    /// Always [`DERIVED_VIA_SESSION_SIG`].
    pub derived_via: String,
    /// The JSON of a [`SessionSignedMessage`], exactly as signed.
    pub signed_message: String,
    /// The session public key (32 bytes, hex without `0x`).
    pub address: String,
    /// Always [`SESSION_SIG_ALGO`].
    pub algo: String,
}

/// A session signature travels in an `authSig` field (as Lit's SDK sends it to
/// `/web/encryption/sign`): the same fields, with `algo`.
impl From<SessionSig> for AuthSig {
    fn from(s: SessionSig) -> Self {
        AuthSig {
            sig: s.sig,
            derived_via: s.derived_via,
            signed_message: s.signed_message,
            address: s.address,
            algo: Some(s.algo),
        }
    }
}

/// What a session key signs for one node and one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionSignedMessage {
    /// The session public key (hex), the same as [`SessionSig::address`].
    pub session_key: String,
    /// What the request does.
    pub resource_ability_requests: Vec<ResourceAbilityRequest>,
    /// The capabilities granting the session key its rights.
    pub capabilities: Vec<AuthSig>,
    /// When this signature was made (RFC 3339).
    pub issued_at: String,
    /// When it stops being valid (RFC 3339); at most the capabilities' expiration.
    pub expiration: String,
    /// The URL of the one node this signature is for.
    pub node_address: String,
    /// Random per signed request (hex, 16 to 32 bytes): a node accepts each nonce once.
    pub nonce: String,
    /// The most this request may cost at this node, in the token's base units (a decimal
    /// string, as Lit's `maxPrice`). Absent: 0, so a network that charges refuses the request
    /// with `price_too_high` rather than charge a price the caller never signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<String>,
    /// Who pays (an address that delegated to the authorized address); absent: the authorized
    /// address itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

impl SessionSignedMessage {
    /// The JSON text that the session key signs.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and vectors into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why a session value was refused while parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionWireError {
    /// A resource URI with an unknown prefix.
    #[error("unknown resource {0:?} (supported: lit-pkp://, lit-accesscontrolcondition://, lit-litaction://)")]
    UnknownResource(String),
    /// A resource with a known prefix but a malformed id.
    #[error("resource {resource:?}: {reason}")]
    BadResourceId {
        /// The resource.
        resource: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An unknown ability.
    #[error("unknown ability {0:?} (supported: pkp-signing, access-control-condition-decryption, lit-action-execution)")]
    UnknownAbility(String),
    /// An ability applied to a resource of another kind.
    #[error("ability {ability} does not apply to resource {resource}")]
    AbilityMismatch {
        /// The resource.
        resource: String,
        /// The ability.
        ability: LitAbility,
    },
    /// A ReCap that is not well-formed or grants something this network does not know.
    #[error("ReCap: {0}")]
    BadRecap(String),
}

/// The id part of a resource URI: a concrete id or the wildcard `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceId {
    /// `*`: every resource of the kind.
    Any,
    /// One resource.
    Id(String),
}

impl ResourceId {
    fn as_str(&self) -> &str {
        match self {
            ResourceId::Any => "*",
            ResourceId::Id(id) => id,
        }
    }
}

/// A Lit resource. The wire form is its URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LitResource {
    /// `lit-pkp://<token id, lowercase hex without 0x, 1 to 64 digits>` or `lit-pkp://*`.
    Pkp(ResourceId),
    /// `lit-accesscontrolcondition://<hex sha256(conditions)>[/<hex sha256(data)>]` or `…://*`.
    /// A grant of the conditions hash alone covers every data hash under it.
    AccessControlCondition(ResourceId),
    /// `lit-litaction://<IPFS CIDv0 of the action>` or `lit-litaction://*`.
    LitAction(ResourceId),
}

const PKP_PREFIX: &str = "lit-pkp://";
const ACC_PREFIX: &str = "lit-accesscontrolcondition://";
const ACTION_PREFIX: &str = "lit-litaction://";

fn is_lower_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && is_lower_hex(s)
}

impl LitResource {
    /// `lit-pkp://<token id>`: the PKP with this token id.
    pub fn pkp(token_id: &[u8; 32]) -> Self {
        LitResource::Pkp(ResourceId::Id(hex::encode(token_id)))
    }

    /// `lit-accesscontrolcondition://<conditions hash>/<data hash>`: the data encrypted under
    /// `identity` (the identity's own URI).
    pub fn decryption_of(identity: &lit_crypto::identity::AccessControlIdentity) -> Self {
        LitResource::AccessControlCondition(ResourceId::Id(format!(
            "{}/{}",
            hex::encode(identity.conditions_hash()),
            hex::encode(identity.data_hash())
        )))
    }

    /// The scheme prefix, e.g. `lit-pkp://`.
    pub fn prefix(&self) -> &'static str {
        match self {
            LitResource::Pkp(_) => PKP_PREFIX,
            LitResource::AccessControlCondition(_) => ACC_PREFIX,
            LitResource::LitAction(_) => ACTION_PREFIX,
        }
    }

    /// The id part.
    pub fn id(&self) -> &ResourceId {
        match self {
            LitResource::Pkp(id)
            | LitResource::AccessControlCondition(id)
            | LitResource::LitAction(id) => id,
        }
    }

    /// Whether a grant of `self` covers a request for `requested`: the same kind, and the same
    /// id, or `*`, or (for access control conditions) the conditions hash of `requested`.
    pub fn covers(&self, requested: &LitResource) -> bool {
        if self.prefix() != requested.prefix() {
            return false;
        }
        match (self.id(), requested.id()) {
            (ResourceId::Any, _) => true,
            (ResourceId::Id(_), ResourceId::Any) => false,
            (ResourceId::Id(g), ResourceId::Id(r)) => {
                g == r
                    || (matches!(self, LitResource::AccessControlCondition(_))
                        && r.strip_prefix(g.as_str())
                            .is_some_and(|rest| rest.starts_with('/')))
            }
        }
    }
}

impl fmt::Display for LitResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.prefix(), self.id().as_str())
    }
}

impl FromStr for LitResource {
    type Err = SessionWireError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| SessionWireError::BadResourceId {
            resource: s.to_string(),
            reason,
        };
        let (make, id): (fn(ResourceId) -> LitResource, &str) =
            if let Some(id) = s.strip_prefix(PKP_PREFIX) {
                (LitResource::Pkp, id)
            } else if let Some(id) = s.strip_prefix(ACC_PREFIX) {
                (LitResource::AccessControlCondition, id)
            } else if let Some(id) = s.strip_prefix(ACTION_PREFIX) {
                (LitResource::LitAction, id)
            } else {
                return Err(SessionWireError::UnknownResource(s.to_string()));
            };
        if id == "*" {
            return Ok(make(ResourceId::Any));
        }
        let resource = make(ResourceId::Id(id.to_string()));
        match &resource {
            LitResource::Pkp(_) => {
                if !(is_lower_hex(id) && id.len() <= 64) {
                    return Err(bad("a PKP token id is 1 to 64 lowercase hex digits"));
                }
            }
            LitResource::AccessControlCondition(_) => {
                let ok = match id.split_once('/') {
                    Some((c, d)) => is_hash(c) && is_hash(d),
                    None => is_hash(id),
                };
                if !ok {
                    return Err(bad(
                        "expected <64 hex digits> or <64 hex digits>/<64 hex digits>, lowercase",
                    ));
                }
            }
            LitResource::LitAction(_) => {
                const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
                if !(id.len() == 46
                    && id.starts_with("Qm")
                    && id.chars().all(|c| BASE58.contains(c)))
                {
                    return Err(bad(
                        "a Lit Action id is an IPFS CIDv0 (Qm…, 46 base58 characters)",
                    ));
                }
            }
        }
        Ok(resource)
    }
}

impl Serialize for LitResource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LitResource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a session may do with a resource (Lit's `LitAbility`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LitAbility {
    /// `pkp-signing`: sign with a PKP (`lit-pkp://` resources).
    PkpSigning,
    /// `access-control-condition-decryption`: get decryption shares
    /// (`lit-accesscontrolcondition://` resources).
    AccessControlConditionDecryption,
    /// `lit-action-execution`: run a Lit Action (`lit-litaction://` resources).
    LitActionExecution,
}

impl LitAbility {
    /// Every ability.
    pub const ALL: [LitAbility; 3] = [
        LitAbility::PkpSigning,
        LitAbility::AccessControlConditionDecryption,
        LitAbility::LitActionExecution,
    ];

    /// The wire form, e.g. `"pkp-signing"`.
    pub fn as_str(self) -> &'static str {
        match self {
            LitAbility::PkpSigning => "pkp-signing",
            LitAbility::AccessControlConditionDecryption => "access-control-condition-decryption",
            LitAbility::LitActionExecution => "lit-action-execution",
        }
    }

    /// The ReCap ability (namespace [`RECAP_NAMESPACE`]): `Signing`, `Decryption`, `Execution`.
    pub fn recap_ability(self) -> &'static str {
        match self {
            LitAbility::PkpSigning => "Signing",
            LitAbility::AccessControlConditionDecryption => "Decryption",
            LitAbility::LitActionExecution => "Execution",
        }
    }

    /// Whether the ability applies to resources of this kind.
    pub fn applies_to(self, resource: &LitResource) -> bool {
        matches!(
            (self, resource),
            (LitAbility::PkpSigning, LitResource::Pkp(_))
                | (
                    LitAbility::AccessControlConditionDecryption,
                    LitResource::AccessControlCondition(_)
                )
                | (LitAbility::LitActionExecution, LitResource::LitAction(_))
        )
    }
}

impl fmt::Display for LitAbility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LitAbility {
    type Err = SessionWireError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LitAbility::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| SessionWireError::UnknownAbility(s.to_string()))
    }
}

impl Serialize for LitAbility {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LitAbility {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A resource with an ability that applies to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawRequest", into = "RawRequest")]
pub struct ResourceAbilityRequest {
    resource: LitResource,
    ability: LitAbility,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    resource: LitResource,
    ability: LitAbility,
}

impl TryFrom<RawRequest> for ResourceAbilityRequest {
    type Error = SessionWireError;
    fn try_from(r: RawRequest) -> Result<Self, Self::Error> {
        Self::new(r.resource, r.ability)
    }
}

impl From<ResourceAbilityRequest> for RawRequest {
    fn from(r: ResourceAbilityRequest) -> Self {
        RawRequest {
            resource: r.resource,
            ability: r.ability,
        }
    }
}

impl ResourceAbilityRequest {
    /// A request, refused if the ability does not apply to the resource's kind.
    pub fn new(resource: LitResource, ability: LitAbility) -> Result<Self, SessionWireError> {
        if !ability.applies_to(&resource) {
            return Err(SessionWireError::AbilityMismatch {
                resource: resource.to_string(),
                ability,
            });
        }
        Ok(Self { resource, ability })
    }

    /// The resource.
    pub fn resource(&self) -> &LitResource {
        &self.resource
    }

    /// The ability.
    pub fn ability(&self) -> LitAbility {
        self.ability
    }

    /// Whether `self`, as a grant, covers `requested` (same ability, resource covered).
    pub fn covers(&self, requested: &ResourceAbilityRequest) -> bool {
        self.ability == requested.ability && self.resource.covers(&requested.resource)
    }
}

/// A nota-bene object of a ReCap ability (caveats; this network accepts only empty ones).
pub type NotaBene = serde_json::Map<String, serde_json::Value>;

/// An EIP-5573 ReCap object: `{"att": {resource: {"namespace/ability": [{}…]}}, "prf": []}`.
///
/// Kept generic so any ReCap decodes; [`Recap::grants`] then accepts only Lit resources and
/// abilities, with empty nota-bene objects (caveats this network does not interpret are refused,
/// as EIP-5573 asks of verifiers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recap {
    /// Attenuations: resource URI → ability (`namespace/name`) → nota-bene objects.
    pub att: BTreeMap<String, BTreeMap<String, Vec<NotaBene>>>,
    /// Proofs (CIDs of delegations); this network accepts none.
    #[serde(default)]
    pub prf: Vec<String>,
}

impl Recap {
    /// The ReCap that grants exactly `grants`.
    pub fn from_grants(grants: &[ResourceAbilityRequest]) -> Self {
        let mut att: BTreeMap<String, BTreeMap<String, Vec<_>>> = BTreeMap::new();
        for g in grants {
            att.entry(g.resource.to_string()).or_default().insert(
                format!("{RECAP_NAMESPACE}/{}", g.ability.recap_ability()),
                vec![serde_json::Map::new()],
            );
        }
        Recap {
            att,
            prf: Vec::new(),
        }
    }

    /// `urn:recap:` + base64url (no padding) of the JSON (keys sorted, compact).
    pub fn to_resource_uri(&self) -> String {
        // Serializing maps of strings cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{RECAP_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Decodes a `urn:recap:` resource URI.
    pub fn from_resource_uri(uri: &str) -> Result<Self, SessionWireError> {
        let bad = |m: String| SessionWireError::BadRecap(m);
        let payload = uri
            .strip_prefix(RECAP_PREFIX)
            .ok_or_else(|| bad(format!("{uri:?} does not start with {RECAP_PREFIX}")))?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|e| bad(format!("not unpadded base64url: {e}")))?;
        serde_json::from_slice(&json).map_err(|e| bad(format!("not a ReCap object: {e}")))
    }

    /// The Lit grants of this ReCap. Refuses unknown resources, namespaces and abilities,
    /// abilities that do not apply to their resource, non-empty nota-bene, proofs, and an
    /// empty ReCap.
    pub fn grants(&self) -> Result<Vec<ResourceAbilityRequest>, SessionWireError> {
        if !self.prf.is_empty() {
            return Err(SessionWireError::BadRecap(
                "delegation proofs (prf) are not supported".into(),
            ));
        }
        let mut out = Vec::new();
        for (resource, abilities) in &self.att {
            let resource: LitResource = resource.parse()?;
            if abilities.is_empty() {
                return Err(SessionWireError::BadRecap(format!(
                    "{resource} has no abilities"
                )));
            }
            for (name, notes) in abilities {
                let ability = name
                    .strip_prefix(RECAP_NAMESPACE)
                    .and_then(|r| r.strip_prefix('/'))
                    .and_then(|a| LitAbility::ALL.into_iter().find(|x| x.recap_ability() == a))
                    .ok_or_else(|| {
                        SessionWireError::BadRecap(format!("unknown ability {name:?}"))
                    })?;
                if notes.is_empty() || notes.iter().any(|n| !n.is_empty()) {
                    return Err(SessionWireError::BadRecap(format!(
                        "{name} on {resource}: expected [{{}}] (caveats are not supported)"
                    )));
                }
                out.push(ResourceAbilityRequest::new(resource.clone(), ability)?);
            }
        }
        if out.is_empty() {
            return Err(SessionWireError::BadRecap("grants nothing".into()));
        }
        Ok(out)
    }

    /// The EIP-5573 statement for this ReCap: the fixed prefix, then for each resource (sorted)
    /// and each namespace (sorted) `(N) '<namespace>': '<ability>', … for '<resource>'.`
    pub fn statement(&self) -> String {
        let mut out = String::from(RECAP_STATEMENT_PREFIX);
        let mut n = 0;
        for (resource, abilities) in &self.att {
            let mut by_namespace: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for name in abilities.keys() {
                let (ns, ability) = name.split_once('/').unwrap_or(("", name));
                by_namespace.entry(ns).or_default().push(ability);
            }
            for (ns, list) in by_namespace {
                n += 1;
                let list: Vec<String> = list.iter().map(|a| format!("'{a}'")).collect();
                out.push_str(&format!(
                    " ({n}) '{ns}': {} for '{resource}'.",
                    list.join(", ")
                ));
            }
        }
        out
    }
}

/// The fields of a capability's SIWE message (see [`capability_siwe_message`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapabilityMessage<'a> {
    /// The SIWE `domain`: the network's ([`crate::network::NetworkFile::domain`]); nodes refuse
    /// a capability for another domain.
    pub domain: &'a str,
    /// The granting address: the wallet, or the PKP for network-signed capabilities.
    pub address: Address,
    /// The session public key (hex) the capability is for.
    pub session_key: &'a str,
    /// What it grants.
    pub grants: &'a [ResourceAbilityRequest],
    /// When it was issued (the client writes whole seconds, UTC).
    pub issued_at: Timestamp,
    /// When it expires.
    pub expiration: Timestamp,
    /// At least 8 alphanumeric characters.
    pub nonce: &'a str,
}

/// A capability: an EIP-4361 message from the network's domain on chain 1 with the ReCap
/// statement, `URI: lit:session:<session key>`, an expiration, and the ReCap as its one
/// resource. The client builds wallet capabilities with it; for PKP sessions both the client and
/// the network build the message the network signs with it, so they agree byte for byte.
pub fn capability_siwe_message(m: &CapabilityMessage<'_>) -> SiweMessage {
    let recap = Recap::from_grants(m.grants);
    SiweMessage {
        statement: Some(recap.statement()),
        expiration_time: Some(m.expiration.clone()),
        resources: vec![recap.to_resource_uri()],
        ..SiweMessage::new(
            m.domain,
            m.address,
            format!("{SESSION_URI_PREFIX}{}", m.session_key),
            1,
            m.nonce,
            m.issued_at.clone(),
        )
    }
}

/// What separates a PKP session's capability from the party that obtained it in the message the
/// network signs ([`network_grant_message`]). A SIWE message never contains it (its statement is
/// one line, and its other lines are fields), and a party never contains a line break.
pub const NETWORK_GRANT_PARTY_SEPARATOR: &str = "\n\nObtained by: ";

/// The message the network signs for a PKP session: the capability (a SIWE message from
/// [`capability_siwe_message`]) followed by [`NETWORK_GRANT_PARTY_SEPARATOR`] and the party the
/// nodes checked before signing (`address:<EIP-55>`, `auth-method:<type>:<id hex>` or
/// `action:<CID>`). The signature binds both, so every later use of the session can re-check
/// that party's permission on the PKP without a record of who obtained which session.
/// `None` if the party contains a line break or the capability already holds the separator.
pub fn network_grant_message(capability: &str, party: &str) -> Option<String> {
    if party.is_empty()
        || party.contains('\n')
        || capability.contains(NETWORK_GRANT_PARTY_SEPARATOR)
    {
        return None;
    }
    Some(format!(
        "{capability}{NETWORK_GRANT_PARTY_SEPARATOR}{party}"
    ))
}

/// The capability and the party of a [`network_grant_message`], if `signed` is one.
pub fn split_network_grant(signed: &str) -> Option<(&str, &str)> {
    let (capability, party) = signed.rsplit_once(NETWORK_GRANT_PARTY_SEPARATOR)?;
    (!party.is_empty()
        && !party.contains('\n')
        && !capability.contains(NETWORK_GRANT_PARTY_SEPARATOR))
    .then_some((capability, party))
}

/// A network-signed capability: `derivedVia: "lit.bls"`, `sig` = hex (no `0x`) of the 96-byte
/// BLS signature by the network key over the bytes of `message` (a [`network_grant_message`]),
/// `address` = the PKP's address.
pub fn network_capability(
    message: String,
    signature: &[u8; NETWORK_SIGNATURE_LEN],
    pkp_address: String,
) -> AuthSig {
    AuthSig {
        sig: hex::encode(signature),
        derived_via: DERIVED_VIA_NETWORK_BLS.to_string(),
        signed_message: message,
        address: pkp_address,
        algo: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const HASH_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const CID: &str = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";

    #[test]
    fn a_network_grant_splits_into_its_capability_and_party() {
        let cap = "example.com wants you to sign in with your Ethereum account:\n0xabc\n\nI further authorize\n\nURI: lit:session:00";
        let signed = network_grant_message(cap, "address:0xAbC").unwrap();
        assert_eq!(split_network_grant(&signed), Some((cap, "address:0xAbC")));
        // a party cannot smuggle a line, and a capability cannot carry a party of its own
        assert_eq!(network_grant_message(cap, "address:0x1\nURI: x"), None);
        assert_eq!(network_grant_message(cap, ""), None);
        assert_eq!(network_grant_message(&signed, "address:0x2"), None);
        assert_eq!(split_network_grant(cap), None);
        assert_eq!(
            split_network_grant(&format!(
                "{signed}{NETWORK_GRANT_PARTY_SEPARATOR}address:0x2"
            )),
            None
        );
    }

    fn req(resource: &str, ability: LitAbility) -> ResourceAbilityRequest {
        ResourceAbilityRequest::new(resource.parse().unwrap(), ability).unwrap()
    }

    #[test]
    fn resources_and_abilities_roundtrip_their_wire_strings() {
        for s in [
            "lit-pkp://*",
            "lit-pkp://0abc",
            &format!("lit-pkp://{HASH_A}"),
            "lit-accesscontrolcondition://*",
            &format!("lit-accesscontrolcondition://{HASH_A}"),
            &format!("lit-accesscontrolcondition://{HASH_A}/{HASH_B}"),
            "lit-litaction://*",
            &format!("lit-litaction://{CID}"),
        ] {
            let r: LitResource = s.parse().unwrap();
            assert_eq!(r.to_string(), s);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{s}\""));
        }
        for a in LitAbility::ALL {
            assert_eq!(a.as_str().parse::<LitAbility>().unwrap(), a);
        }
        assert_eq!(
            serde_json::to_string(&LitAbility::AccessControlConditionDecryption).unwrap(),
            "\"access-control-condition-decryption\""
        );
    }

    #[test]
    fn unknown_or_malformed_resources_and_abilities_are_refused() {
        for s in [
            "lit-ratelimitincrease://*",
            "litPKPCapability://*",
            "lit-pkp:/abc",
            "",
        ] {
            assert!(
                matches!(
                    s.parse::<LitResource>(),
                    Err(SessionWireError::UnknownResource(_))
                ),
                "{s}"
            );
        }
        for s in [
            "lit-pkp://",
            "lit-pkp://0xabc",
            "lit-pkp://ABC",
            &format!("lit-pkp://{HASH_A}0"),
            "lit-accesscontrolcondition://abc",
            &format!("lit-accesscontrolcondition://{HASH_A}/"),
            &format!("lit-accesscontrolcondition://{HASH_A}/{HASH_B}/x"),
            "lit-litaction://Qm",
            &format!("lit-litaction://{}0", &CID[..45]),
            "lit-pkp://**",
        ] {
            assert!(
                matches!(
                    s.parse::<LitResource>(),
                    Err(SessionWireError::BadResourceId { .. })
                ),
                "{s}"
            );
        }
        for s in ["pkp-sign", "PKP-SIGNING", "", "rate-limit-increase-auth"] {
            assert!(s.parse::<LitAbility>().is_err(), "{s}");
        }
        // via serde, inside a request
        let bad = r#"{"resource":"lit-pkp://*","ability":"pkp-sign"}"#;
        assert!(serde_json::from_str::<ResourceAbilityRequest>(bad).is_err());
        let bad = r#"{"resource":"lit-foo://*","ability":"pkp-signing"}"#;
        assert!(serde_json::from_str::<ResourceAbilityRequest>(bad).is_err());
        let extra = r#"{"resource":"lit-pkp://*","ability":"pkp-signing","x":1}"#;
        assert!(serde_json::from_str::<ResourceAbilityRequest>(extra).is_err());
        let mismatch = r#"{"resource":"lit-pkp://*","ability":"lit-action-execution"}"#;
        assert!(serde_json::from_str::<ResourceAbilityRequest>(mismatch)
            .unwrap_err()
            .to_string()
            .contains("does not apply"));
        let ok = r#"{"resource":"lit-pkp://ab","ability":"pkp-signing"}"#;
        assert_eq!(
            serde_json::from_str::<ResourceAbilityRequest>(ok).unwrap(),
            req("lit-pkp://ab", LitAbility::PkpSigning)
        );
    }

    #[test]
    fn grants_cover_exact_ids_wildcards_and_condition_prefixes() {
        let any_pkp = req("lit-pkp://*", LitAbility::PkpSigning);
        let pkp_a = req("lit-pkp://a1", LitAbility::PkpSigning);
        let pkp_b = req("lit-pkp://b2", LitAbility::PkpSigning);
        assert!(any_pkp.covers(&pkp_a) && pkp_a.covers(&pkp_a));
        assert!(!pkp_a.covers(&pkp_b) && !pkp_a.covers(&any_pkp));
        // another ability on the same kind is not covered; another kind never is
        let act = req("lit-litaction://*", LitAbility::LitActionExecution);
        assert!(!act.covers(&pkp_a) && !any_pkp.covers(&act));
        let cond = req(
            &format!("lit-accesscontrolcondition://{HASH_A}"),
            LitAbility::AccessControlConditionDecryption,
        );
        let under = req(
            &format!("lit-accesscontrolcondition://{HASH_A}/{HASH_B}"),
            LitAbility::AccessControlConditionDecryption,
        );
        let other = req(
            &format!("lit-accesscontrolcondition://{HASH_B}/{HASH_A}"),
            LitAbility::AccessControlConditionDecryption,
        );
        assert!(cond.covers(&under) && !cond.covers(&other) && !under.covers(&cond));
    }

    #[test]
    fn recap_roundtrip_statement_and_refusals() {
        let grants = vec![
            req("lit-pkp://ab", LitAbility::PkpSigning),
            req("lit-litaction://*", LitAbility::LitActionExecution),
        ];
        let recap = Recap::from_grants(&grants);
        let uri = recap.to_resource_uri();
        let json = URL_SAFE_NO_PAD
            .decode(uri.strip_prefix(RECAP_PREFIX).unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"att":{"lit-litaction://*":{"Threshold/Execution":[{}]},"lit-pkp://ab":{"Threshold/Signing":[{}]}},"prf":[]}"#
        );
        let mut back = Recap::from_resource_uri(&uri).unwrap().grants().unwrap();
        back.sort();
        let mut expected = grants.clone();
        expected.sort();
        assert_eq!(back, expected);
        assert_eq!(
            recap.statement(),
            "I further authorize the stated URI to perform the following actions on my behalf: \
             (1) 'Threshold': 'Execution' for 'lit-litaction://*'. \
             (2) 'Threshold': 'Signing' for 'lit-pkp://ab'."
        );

        let encode = |json: &str| format!("{RECAP_PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
        for (json, why) in [
            (
                r#"{"att":{"lit-pkp://*":{"Threshold/Minting":[{}]}},"prf":[]}"#,
                "ability",
            ),
            (
                r#"{"att":{"lit-pkp://*":{"Other/Signing":[{}]}},"prf":[]}"#,
                "ability",
            ),
            (
                r#"{"att":{"lit-pkp://*":{"Threshold/Execution":[{}]}},"prf":[]}"#,
                "apply",
            ),
            (
                r#"{"att":{"lit-foo://*":{"Threshold/Signing":[{}]}},"prf":[]}"#,
                "resource",
            ),
            (
                r#"{"att":{"lit-pkp://*":{"Threshold/Signing":[{"max":1}]}},"prf":[]}"#,
                "caveats",
            ),
            (
                r#"{"att":{"lit-pkp://*":{"Threshold/Signing":[]}},"prf":[]}"#,
                "caveats",
            ),
            (
                r#"{"att":{"lit-pkp://*":{"Threshold/Signing":[{}]}},"prf":["bafy"]}"#,
                "prf",
            ),
            (r#"{"att":{},"prf":[]}"#, "nothing"),
            (r#"{"att":{"lit-pkp://*":{}},"prf":[]}"#, "no abilities"),
        ] {
            let err = Recap::from_resource_uri(&encode(json))
                .and_then(|r| r.grants())
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{json}: {err}");
        }
        for bad in [
            "urn:recap:!!!".to_string(),
            format!("urn:recap:{}=", URL_SAFE_NO_PAD.encode(r#"{"att":{}}"#)),
            encode(r#"{"att":{},"extra":1}"#),
            encode("[]"),
            "urn:other:e30".into(),
        ] {
            assert!(Recap::from_resource_uri(&bad).is_err(), "{bad}");
        }
    }

    /// Decodes the ReCap of the `siwe-recap` reference implementation's test vector
    /// (npm `siwe-recap@0.0.1-alpha.0`, `test/valid.json`, "withCaps") and re-encodes it to the
    /// same URI: our encoding (sorted keys, compact JSON, unpadded base64url) is the reference's.
    #[test]
    fn reference_recap_vector_decodes_and_reencodes_identically() {
        let uri = "urn:recap:eyJhdHQiOnsia2VwbGVyOmVuczpleGFtcGxlLmV0aDovL2RlZmF1bHQva3YiOnsia3YvZ2V0Ijpbe31dLCJrdi9saXN0Ijpbe31dLCJrdi9tZXRhZGF0YSI6W3t9XX0sImtlcGxlcjplbnM6ZXhhbXBsZS5ldGg6Ly9kZWZhdWx0L2t2L2RhcHAtc3BhY2UiOnsia3YvZGVsZXRlIjpbe31dLCJrdi9nZXQiOlt7fV0sImt2L2xpc3QiOlt7fV0sImt2L21ldGFkYXRhIjpbe31dLCJrdi9wdXQiOlt7fV19LCJrZXBsZXI6ZW5zOmV4YW1wbGUuZXRoOi8vZGVmYXVsdC9rdi9wdWJsaWMiOnsia3YvZGVsZXRlIjpbe31dLCJrdi9nZXQiOlt7fV0sImt2L2xpc3QiOlt7fV0sImt2L21ldGFkYXRhIjpbe31dLCJrdi9wdXQiOlt7fV19LCJ1cm46Y3JlZGVudGlhbDp0eXBlOnR5cGUxIjp7ImNyZWRlbnRpYWwvcHJlc2VudCI6W3t9XX19LCJwcmYiOltdfQ";
        let recap = Recap::from_resource_uri(uri).unwrap();
        assert_eq!(recap.att.len(), 4);
        let kv = &recap.att["kepler:ens:example.eth://default/kv"];
        assert_eq!(
            kv.keys().collect::<Vec<_>>(),
            ["kv/get", "kv/list", "kv/metadata"]
        );
        assert_eq!(recap.to_resource_uri(), uri);
        // not a Lit grant
        assert!(matches!(
            recap.grants(),
            Err(SessionWireError::UnknownResource(_))
        ));
    }

    #[test]
    fn session_sig_and_signed_message_refuse_unknown_fields() {
        let sig = SessionSig {
            sig: "00".into(),
            derived_via: DERIVED_VIA_SESSION_SIG.into(),
            signed_message: "{}".into(),
            address: "11".into(),
            algo: SESSION_SIG_ALGO.into(),
        };
        let json = serde_json::to_value(&sig).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"sig":"00","derivedVia":"litSessionSignViaNacl",
                "signedMessage":"{}","address":"11","algo":"ed25519"})
        );
        let mut extra = json.clone();
        extra["extra"] = 1.into();
        assert!(serde_json::from_value::<SessionSig>(extra).is_err());

        let msg = SessionSignedMessage {
            session_key: "11".into(),
            resource_ability_requests: vec![req("lit-pkp://*", LitAbility::PkpSigning)],
            capabilities: vec![],
            issued_at: "2026-01-01T00:00:00Z".into(),
            expiration: "2026-01-01T00:10:00Z".into(),
            node_address: "http://127.0.0.1:7470".into(),
            nonce: "ab".repeat(16),
            max_price: None,
            payer: None,
        };
        let text = msg.to_json();
        assert!(text.contains(
            r#""resourceAbilityRequests":[{"resource":"lit-pkp://*","ability":"pkp-signing"}]"#
        ));
        assert!(text.contains(r#""nodeAddress":"http://127.0.0.1:7470""#));
        assert_eq!(
            serde_json::from_str::<SessionSignedMessage>(&text).unwrap(),
            msg
        );
        let extra = text.replacen('{', r#"{"extra":true,"#, 1);
        assert!(serde_json::from_str::<SessionSignedMessage>(&extra).is_err());
        // the payment fields appear only when set
        assert!(!text.contains("maxPrice") && !text.contains("payer"));
        let paid = SessionSignedMessage {
            max_price: Some("1000".into()),
            payer: Some("0x00000000000000000000000000000000000000aa".into()),
            ..msg
        };
        let text = paid.to_json();
        assert!(text.contains(r#""maxPrice":"1000""#) && text.contains(r#""payer":"0x0"#));
        assert_eq!(
            serde_json::from_str::<SessionSignedMessage>(&text).unwrap(),
            paid
        );
    }

    #[test]
    fn capability_message_has_the_session_uri_statement_and_recap() {
        let grants = [req("lit-pkp://*", LitAbility::PkpSigning)];
        let message = capability_siwe_message(&CapabilityMessage {
            domain: "devnet.lit",
            address: Address::parse("0x5B38Da6a701c568545dCfcB03FcB875f56beddC4").unwrap(),
            session_key: &"cd".repeat(32),
            grants: &grants,
            issued_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            expiration: "2026-01-02T00:00:00Z".parse().unwrap(),
            nonce: "abcdefgh1234",
        });
        let text = message.to_string();
        assert_eq!(text.parse::<SiweMessage>().unwrap(), message);
        let recap = Recap::from_grants(&grants);
        assert_eq!(
            text,
            format!(
                "devnet.lit wants you to sign in with your Ethereum account:\n\
                 0x5B38Da6a701c568545dCfcB03FcB875f56beddC4\n\n{}\n\n\
                 URI: lit:session:{}\nVersion: 1\nChain ID: 1\nNonce: abcdefgh1234\n\
                 Issued At: 2026-01-01T00:00:00Z\nExpiration Time: 2026-01-02T00:00:00Z\n\
                 Resources:\n- {}",
                recap.statement(),
                "cd".repeat(32),
                recap.to_resource_uri()
            )
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "devnet.lit wants you to sign in with your Ethereum account:"
        );
        assert_eq!(lines[3], Recap::from_grants(&grants).statement());
        assert_eq!(lines[5], format!("URI: lit:session:{}", "cd".repeat(32)));
        assert_eq!(lines[lines.len() - 2], "Resources:");
        let recap = lines[lines.len() - 1].strip_prefix("- ").unwrap();
        assert_eq!(
            Recap::from_resource_uri(recap).unwrap().grants().unwrap(),
            grants
        );
        let cap = network_capability(text.clone(), &[7; 96], "0xabc".into());
        assert_eq!(cap.derived_via, "lit.bls");
        assert_eq!(cap.sig, "07".repeat(96));
    }
}
