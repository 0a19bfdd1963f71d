//! Session signatures, client side: an ephemeral ed25519 [`SessionKey`], a capability for it
//! (signed by a wallet, or by the network for PKP sessions), and a fresh [`SessionSig`] per node
//! and request ([`Session::sign_for_node`]). The wire format is [`lit_api::session`].
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use lit_api::session::{LitAbility, LitResource, ResourceAbilityRequest, ResourceId};
//! use lit_client::session::Session;
//! use lit_client::Wallet;
//!
//! let wallet = Wallet::random();
//! let request = ResourceAbilityRequest::new(
//!     LitResource::Pkp(ResourceId::Any),
//!     LitAbility::PkpSigning,
//! ).unwrap();
//! // the capability is a sign-in to the network's domain (`LitClient::domain`)
//! let session =
//!     Session::from_wallet(&wallet, "devnet.lit", vec![request], Duration::from_secs(3600))
//!         .unwrap();
//! assert_eq!(session.authorized_address(), wallet.address());
//! let a = session.sign_for_node("http://127.0.0.1:7470", SystemTime::now()).unwrap();
//! let b = session.sign_for_node("http://127.0.0.1:7470", SystemTime::now()).unwrap();
//! assert_eq!(a.algo, "ed25519");
//! assert_eq!(a.address, session.key().public_hex());
//! assert_ne!(a.signed_message, b.signed_message); // a fresh nonce every time
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use lit_api::session::{
    capability_siwe_message, CapabilityMessage, ResourceAbilityRequest, SessionSig,
    SessionSignedMessage, SessionSigs, DERIVED_VIA_SESSION_SIG, SESSION_SIG_ALGO,
    SESSION_URI_PREFIX,
};
use lit_api::siwe::{SiweError, SiweMessage, Timestamp};
use lit_api::v1::{AuthSig, DERIVED_VIA_PERSONAL_SIGN};
use lit_crypto::eth::{personal_sign, Address};
use rand_core::{OsRng, RngCore};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::wallet::Wallet;

/// The default lifetime of a session's capability.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Why a session could not be made or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A time could not be represented or formatted.
    #[error("time: {0}")]
    Time(String),
    /// The wallet could not sign.
    #[error("signing the capability: {0}")]
    Signing(String),
    /// A capability that does not fit this session.
    #[error("invalid capability: {0}")]
    InvalidCapability(String),
    /// A session with nothing to request.
    #[error("a session needs at least one resource ability request")]
    NoRequests,
    /// The session's capability has expired: make a new session.
    #[error("the session expired at {0}")]
    Expired(String),
}

/// An ephemeral ed25519 session key. Zeroized on drop; `Debug` shows only the public key.
pub struct SessionKey(SigningKey);

impl SessionKey {
    /// A fresh random key.
    pub fn random() -> Self {
        Self(SigningKey::generate(&mut OsRng))
    }

    /// The key of a 32-byte seed.
    pub fn from_bytes(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// The public key as lowercase hex (the `address` of its session signatures and the
    /// `lit:session:` URI of its capabilities).
    pub fn public_hex(&self) -> String {
        hex::encode(self.public_key().to_bytes())
    }

    /// Signs `message` as a [`SessionSig`]: ed25519 over the bytes of its JSON. Low level:
    /// [`Session::sign_for_node`] fills the message correctly.
    pub fn sign_message(&self, message: &SessionSignedMessage) -> SessionSig {
        let text = message.to_json();
        let sig = self.0.sign(text.as_bytes());
        SessionSig {
            sig: hex::encode(sig.to_bytes()),
            derived_via: DERIVED_VIA_SESSION_SIG.to_string(),
            signed_message: text,
            address: self.public_hex(),
            algo: SESSION_SIG_ALGO.to_string(),
        }
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKey")
            .field("public", &self.public_hex())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A session: a key, the capabilities granting it rights, and what it requests.
#[derive(Debug)]
pub struct Session {
    key: SessionKey,
    capabilities: Vec<AuthSig>,
    requests: Vec<ResourceAbilityRequest>,
    authorized_address: Address,
    expires_at: OffsetDateTime,
    /// The most each request may cost at each node (base units), signed into every request.
    max_price: Option<u128>,
    /// Who pays, if not the authorized address.
    payer: Option<Address>,
}

fn whole_seconds(t: SystemTime) -> Result<OffsetDateTime, SessionError> {
    OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .map_err(|e| SessionError::Time(e.to_string()))
}

fn rfc3339(t: OffsetDateTime) -> Result<String, SessionError> {
    t.format(&Rfc3339)
        .map_err(|e| SessionError::Time(e.to_string()))
}

fn timestamp(t: OffsetDateTime) -> Result<Timestamp, SessionError> {
    Timestamp::try_from(t).map_err(|e| SessionError::Time(e.to_string()))
}

fn random_hex(bytes: usize) -> String {
    let mut b = Zeroizing::new(vec![0u8; bytes]);
    OsRng.fill_bytes(&mut b);
    hex::encode(b.as_slice())
}

/// The SIWE text of a PKP session's capability, which the network signs with its BLS key
/// after checking the caller's auth method: granting `grants` to `session_key` for the PKP at
/// `pkp_address`, from `now` for `ttl`, with a fresh nonce. Built by
/// [`lit_api::session::capability_siwe_message`], which the node uses too.
pub fn pkp_capability_message(
    domain: &str,
    pkp_address: &Address,
    session_key: &VerifyingKey,
    grants: &[ResourceAbilityRequest],
    now: SystemTime,
    ttl: Duration,
) -> Result<String, SessionError> {
    if grants.is_empty() {
        return Err(SessionError::NoRequests);
    }
    let issued = whole_seconds(now)?;
    Ok(capability_siwe_message(&CapabilityMessage {
        domain,
        address: *pkp_address,
        session_key: &hex::encode(session_key.to_bytes()),
        grants,
        issued_at: timestamp(issued)?,
        expiration: timestamp(issued + ttl)?,
        nonce: &random_hex(16),
    })
    .to_string())
}

/// A network-signed capability from the combined BLS signature over `message` (the capability
/// and the party that obtained it, `lit_api::session::network_grant_message`).
pub fn network_capability(
    message: String,
    signature: &lit_crypto::bls::Signature,
    pkp_address: &Address,
) -> AuthSig {
    lit_api::session::network_capability(message, &signature.to_bytes(), pkp_address.to_checksum())
}

/// The fields of a capability message the client needs: address, session key, expiration.
fn read_capability(cap: &AuthSig) -> Result<(Address, String, OffsetDateTime), SessionError> {
    let bad = |m: &str| SessionError::InvalidCapability(m.to_string());
    let text = if cap.derived_via == lit_api::session::DERIVED_VIA_NETWORK_BLS {
        lit_api::session::split_network_grant(&cap.signed_message)
            .ok_or_else(|| bad("the network's capability names no party"))?
            .0
    } else {
        cap.signed_message.as_str()
    };
    let message: SiweMessage = text.parse().map_err(|e: SiweError| bad(&e.to_string()))?;
    let key = message
        .uri
        .strip_prefix(SESSION_URI_PREFIX)
        .ok_or_else(|| bad("URI is not lit:session:<key>"))?
        .to_string();
    let expires = message
        .expiration_time
        .ok_or_else(|| bad("no Expiration Time"))?
        .datetime();
    Ok((message.address, key, expires))
}

impl Session {
    /// A new session key with a capability signed by `wallet`, a sign-in to the network's
    /// `domain` granting `requests`, valid from now for `ttl` (nodes accept at most 24 hours).
    pub fn from_wallet(
        wallet: &Wallet,
        domain: &str,
        requests: Vec<ResourceAbilityRequest>,
        ttl: Duration,
    ) -> Result<Self, SessionError> {
        Self::from_wallet_at(
            SessionKey::random(),
            wallet,
            domain,
            requests,
            SystemTime::now(),
            ttl,
        )
    }

    /// Like [`Session::from_wallet`] with a given key and clock.
    pub fn from_wallet_at(
        key: SessionKey,
        wallet: &Wallet,
        domain: &str,
        requests: Vec<ResourceAbilityRequest>,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<Self, SessionError> {
        if requests.is_empty() {
            return Err(SessionError::NoRequests);
        }
        let issued = whole_seconds(now)?;
        let expires_at = issued + ttl;
        let message = capability_siwe_message(&CapabilityMessage {
            domain,
            address: wallet.address(),
            session_key: &key.public_hex(),
            grants: &requests,
            issued_at: timestamp(issued)?,
            expiration: timestamp(expires_at)?,
            nonce: &random_hex(16),
        })
        .to_string();
        let sig = personal_sign(wallet.signing_key(), message.as_bytes())
            .map_err(|e| SessionError::Signing(e.to_string()))?;
        let capability = AuthSig {
            sig: format!("0x{}", hex::encode(sig)),
            derived_via: DERIVED_VIA_PERSONAL_SIGN.to_string(),
            signed_message: message,
            address: wallet.address().to_checksum(),
            algo: None,
        };
        Ok(Self {
            key,
            capabilities: vec![capability],
            requests,
            authorized_address: wallet.address(),
            expires_at,
            max_price: None,
            payer: None,
        })
    }

    /// A PKP session: `key` with the network-signed `capability` for it (see
    /// [`pkp_capability_message`] and [`network_capability`]), requesting `requests`. Refuses a
    /// capability for another session key. The signature itself is checked by the nodes.
    pub fn from_network_capability(
        key: SessionKey,
        capability: AuthSig,
        requests: Vec<ResourceAbilityRequest>,
    ) -> Result<Self, SessionError> {
        if requests.is_empty() {
            return Err(SessionError::NoRequests);
        }
        let (address, bound, expires_at) = read_capability(&capability)?;
        if bound != key.public_hex() {
            return Err(SessionError::InvalidCapability(format!(
                "it is for session key {bound}, not {}",
                key.public_hex()
            )));
        }
        Ok(Self {
            key,
            capabilities: vec![capability],
            requests,
            authorized_address: address,
            expires_at,
            max_price: None,
            payer: None,
        })
    }

    /// Signs `max_price` (base units) into every request of this session: the most a request
    /// may cost at each node. A network that charges refuses requests without one
    /// (`price_too_high`); a node whose price is higher refuses likewise.
    pub fn with_max_price(mut self, max_price: u128) -> Self {
        self.max_price = Some(max_price);
        self
    }

    /// Names `payer` as who pays for this session's requests: an address that delegated to
    /// the authorized address on the network's ledger.
    pub fn with_payer(mut self, payer: Address) -> Self {
        self.payer = Some(payer);
        self
    }

    /// The most each request may cost at each node, if signed.
    pub fn max_price(&self) -> Option<u128> {
        self.max_price
    }

    /// The session key.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// The capabilities.
    pub fn capabilities(&self) -> &[AuthSig] {
        &self.capabilities
    }

    /// What the session requests.
    pub fn requests(&self) -> &[ResourceAbilityRequest] {
        &self.requests
    }

    /// The wallet or PKP address the session speaks for.
    pub fn authorized_address(&self) -> Address {
        self.authorized_address
    }

    /// When the capability, hence the session, expires.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// A session signature for the node at `node_url`, issued at `now` (whole seconds), expiring
    /// with the capability, with a fresh random nonce.
    pub fn sign_for_node(
        &self,
        node_url: &str,
        now: SystemTime,
    ) -> Result<SessionSig, SessionError> {
        let issued = whole_seconds(now)?;
        if issued >= self.expires_at {
            return Err(SessionError::Expired(rfc3339(self.expires_at)?));
        }
        Ok(self.key.sign_message(&SessionSignedMessage {
            session_key: self.key.public_hex(),
            resource_ability_requests: self.requests.clone(),
            capabilities: self.capabilities.clone(),
            issued_at: rfc3339(issued)?,
            expiration: rfc3339(self.expires_at)?,
            node_address: node_url.to_string(),
            nonce: random_hex(16),
            max_price: self.max_price.map(|p| p.to_string()),
            payer: self.payer.map(|p| p.to_checksum()),
        }))
    }

    /// Session signatures for each node URL (Lit's `SessionSigs`).
    pub fn sign_for_nodes<'a>(
        &self,
        node_urls: impl IntoIterator<Item = &'a str>,
        now: SystemTime,
    ) -> Result<SessionSigs, SessionError> {
        node_urls
            .into_iter()
            .map(|url| Ok((url.to_string(), self.sign_for_node(url, now)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier as _};
    use lit_api::session::{LitAbility, LitResource, Recap, ResourceId};
    use lit_crypto::eth::{eip191_hash, recover_address};

    fn pkp_any() -> ResourceAbilityRequest {
        ResourceAbilityRequest::new(LitResource::Pkp(ResourceId::Any), LitAbility::PkpSigning)
            .unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn wallet_session_capability_is_a_recap_siwe_signed_by_the_wallet() {
        let wallet = Wallet::random();
        let key = SessionKey::from_bytes(&[9; 32]);
        let public = key.public_hex();
        let s = Session::from_wallet_at(
            key,
            &wallet,
            "devnet.lit",
            vec![pkp_any()],
            at(1_790_000_000),
            Duration::from_secs(600),
        )
        .unwrap();
        let [cap] = s.capabilities() else { panic!() };
        assert_eq!(cap.derived_via, "web3.eth.personal.sign");
        let sig = hex::decode(cap.sig.strip_prefix("0x").unwrap()).unwrap();
        assert_eq!(
            recover_address(&eip191_hash(cap.signed_message.as_bytes()), &sig).unwrap(),
            wallet.address()
        );
        let lines: Vec<&str> = cap.signed_message.lines().collect();
        assert!(lines.contains(&format!("URI: lit:session:{public}").as_str()));
        assert!(lines.contains(&"Expiration Time: 2026-09-21T14:23:20Z"));
        let recap = Recap::from_resource_uri(lines.last().unwrap().strip_prefix("- ").unwrap());
        assert_eq!(recap.unwrap().grants().unwrap(), vec![pkp_any()]);
        assert_eq!(s.expires_at().unix_timestamp(), 1_790_000_600);
    }

    #[test]
    fn sign_for_node_signs_the_message_with_the_session_key_and_a_fresh_nonce() {
        let wallet = Wallet::random();
        let s = Session::from_wallet(&wallet, "devnet.lit", vec![pkp_any()], DEFAULT_SESSION_TTL)
            .unwrap();
        let now = SystemTime::now();
        let sigs = s.sign_for_nodes(["http://a:1", "http://b:2"], now).unwrap();
        let mut nonces = Vec::new();
        for (url, sig) in &sigs {
            let bytes: [u8; 64] = hex::decode(&sig.sig).unwrap().try_into().unwrap();
            s.key()
                .public_key()
                .verify(
                    sig.signed_message.as_bytes(),
                    &Signature::from_bytes(&bytes),
                )
                .unwrap();
            let m: SessionSignedMessage = serde_json::from_str(&sig.signed_message).unwrap();
            assert_eq!(&m.node_address, url);
            assert_eq!(m.session_key, sig.address);
            assert_eq!(m.capabilities, s.capabilities());
            assert_eq!(m.nonce.len(), 32);
            nonces.push(m.nonce);
        }
        assert_ne!(nonces[0], nonces[1]);
        // an expired session refuses to sign
        let late = now + DEFAULT_SESSION_TTL + Duration::from_secs(1);
        assert!(matches!(
            s.sign_for_node("http://a:1", late),
            Err(SessionError::Expired(_))
        ));
    }

    #[test]
    fn network_capability_must_bind_the_session_key() {
        let pkp = Wallet::random().address();
        let key = SessionKey::random();
        let msg = pkp_capability_message(
            "devnet.lit",
            &pkp,
            &key.public_key(),
            &[pkp_any()],
            SystemTime::now(),
            Duration::from_secs(60),
        )
        .unwrap();
        let secret = lit_crypto::bls::SecretKey::random(&mut OsRng);
        let unnamed = network_capability(msg.clone(), &secret.sign(msg.as_bytes()), &pkp);
        assert!(matches!(
            Session::from_network_capability(SessionKey::random(), unnamed, vec![pkp_any()]),
            Err(SessionError::InvalidCapability(m)) if m.contains("names no party")
        ));
        let msg = lit_api::session::network_grant_message(&msg, "address:0x00").unwrap();
        let cap = network_capability(msg.clone(), &secret.sign(msg.as_bytes()), &pkp);
        assert_eq!(cap.derived_via, "lit.bls");
        assert_eq!(cap.sig.len(), 192);
        let other =
            Session::from_network_capability(SessionKey::random(), cap.clone(), vec![pkp_any()]);
        assert!(matches!(other, Err(SessionError::InvalidCapability(_))));
        let s = Session::from_network_capability(key, cap, vec![pkp_any()]).unwrap();
        assert_eq!(s.authorized_address(), pkp);
        assert!(Session::from_network_capability(
            SessionKey::random(),
            s.capabilities()[0].clone(),
            vec![]
        )
        .is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let key = SessionKey::from_bytes(&[7; 32]);
        let dbg = format!("{key:?}");
        assert!(dbg.contains("<redacted>") && dbg.contains(&key.public_hex()));
        assert!(!dbg.contains(&hex::encode([7u8; 32])));
    }
}
