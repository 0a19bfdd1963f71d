//! Wallet authentication: an EIP-191 `personal_sign` signature over a Sign-In with Ethereum
//! (EIP-4361) message, in Lit's `AuthSig` shape.
//!
//! [`verify_auth_sig`] parses the SIWE message into typed fields, recovers the signer from the
//! signature (secp256k1 public key recovery over the EIP-191 hash), checks that it is the address
//! the message and the `AuthSig` name, and checks the validity window against the caller's clock.
//! What the address may then do (`:userAddress` in conditions, PKP permissions) is decided by
//! the caller.

use lit_api::v1::{AuthSig, DERIVED_VIA_PERSONAL_SIGN};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub use lit_crypto::eth::{eip191_hash, Address, EthError};

impl From<EthError> for AuthError {
    fn from(e: EthError) -> Self {
        match e {
            EthError::BadSignature => AuthError::BadSignature,
            other => AuthError::Malformed(other.to_string()),
        }
    }
}

/// Why an auth signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The `AuthSig` or its SIWE message is not well-formed.
    #[error("malformed auth: {0}")]
    Malformed(String),
    /// The signature does not recover to the claimed address.
    #[error("auth signature is invalid")]
    BadSignature,
    /// The message's `Expiration Time` has passed.
    #[error("auth expired at {0}")]
    Expired(String),
    /// The message's `Not Before` is in the future.
    #[error("auth not valid before {0}")]
    NotYetValid(String),
}

/// The fields of an EIP-4361 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiweMessage {
    /// The requesting domain.
    pub domain: String,
    /// The signer.
    pub address: Address,
    /// The human-readable statement, if any.
    pub statement: Option<String>,
    /// The subject URI.
    pub uri: String,
    /// Must be `1`.
    pub version: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The nonce (at least 8 alphanumeric characters).
    pub nonce: String,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// When it expires.
    pub expiration_time: Option<OffsetDateTime>,
    /// When it becomes valid.
    pub not_before: Option<OffsetDateTime>,
    /// Optional request id.
    pub request_id: Option<String>,
    /// Resources (URIs), e.g. capabilities.
    pub resources: Vec<String>,
}

const PREAMBLE: &str = " wants you to sign in with your Ethereum account:";

fn time_field(name: &str, value: &str) -> Result<OffsetDateTime, AuthError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|e| AuthError::Malformed(format!("{name} {value:?} is not RFC 3339: {e}")))
}

impl SiweMessage {
    /// Checks the validity window (`Expiration Time`, `Not Before`) at `now`.
    pub fn check_validity(&self, now: OffsetDateTime) -> Result<(), AuthError> {
        if let Some(exp) = self.expiration_time {
            if now >= exp {
                return Err(AuthError::Expired(exp.format(&Rfc3339).unwrap_or_default()));
            }
        }
        if let Some(nbf) = self.not_before {
            if now < nbf {
                return Err(AuthError::NotYetValid(
                    nbf.format(&Rfc3339).unwrap_or_default(),
                ));
            }
        }
        Ok(())
    }

    /// Parses the text of an EIP-4361 message.
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        let bad = |m: &str| AuthError::Malformed(format!("SIWE message: {m}"));
        let mut lines = text.split('\n');
        let first = lines.next().ok_or_else(|| bad("empty"))?;
        let domain = first
            .strip_suffix(PREAMBLE)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| bad("first line is not '<domain> wants you to sign in…'"))?
            .to_string();
        let address = Address::parse(lines.next().ok_or_else(|| bad("no address line"))?)?;
        if lines.next() != Some("") {
            return Err(bad("expected an empty line after the address"));
        }
        // optional statement, surrounded by empty lines; then the tagged fields
        let mut rest: Vec<&str> = lines.collect();
        while rest.last() == Some(&"") {
            rest.pop();
        }
        let mut idx = 0;
        let mut statement = None;
        if rest.first() == Some(&"") {
            idx = 1; // no statement (the EIP's ABNF form)
        } else if let Some(first) = rest.first().filter(|l| !l.starts_with("URI: ")) {
            statement = Some((*first).to_string());
            if rest.get(1) != Some(&"") {
                return Err(bad("expected an empty line after the statement"));
            }
            idx = 2;
        }
        let mut field = |tag: &str, required: bool| -> Result<Option<String>, AuthError> {
            match rest.get(idx).and_then(|l| l.strip_prefix(tag)) {
                Some(v) => {
                    idx += 1;
                    Ok(Some(v.to_string()))
                }
                None if required => Err(bad(&format!("missing '{tag}'"))),
                None => Ok(None),
            }
        };
        let uri = field("URI: ", true)?.unwrap_or_default();
        let version = field("Version: ", true)?.unwrap_or_default();
        let chain_id = field("Chain ID: ", true)?
            .unwrap_or_default()
            .parse::<u64>()
            .map_err(|_| bad("Chain ID is not a number"))?;
        let nonce = field("Nonce: ", true)?.unwrap_or_default();
        let issued_at = time_field(
            "Issued At",
            &field("Issued At: ", true)?.unwrap_or_default(),
        )?;
        let expiration_time = field("Expiration Time: ", false)?
            .map(|v| time_field("Expiration Time", &v))
            .transpose()?;
        let not_before = field("Not Before: ", false)?
            .map(|v| time_field("Not Before", &v))
            .transpose()?;
        let request_id = field("Request ID: ", false)?;
        let mut resources = Vec::new();
        if field("Resources:", false)?.is_some() {
            while let Some(r) = field("- ", false)? {
                resources.push(r);
            }
        }
        if idx != rest.len() {
            return Err(bad(&format!("unexpected line {:?}", rest[idx])));
        }
        if version != "1" {
            return Err(bad("Version must be 1"));
        }
        if nonce.len() < 8 || !nonce.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad("Nonce must be at least 8 alphanumeric characters"));
        }
        Ok(Self {
            domain,
            address,
            statement,
            uri,
            version,
            chain_id,
            nonce,
            issued_at,
            expiration_time,
            not_before,
            request_id,
            resources,
        })
    }
}

/// Verifies a wallet `AuthSig` at time `now` and returns the authenticated address with the
/// parsed message.
pub fn verify_auth_sig(
    auth: &AuthSig,
    now: OffsetDateTime,
) -> Result<(Address, SiweMessage), AuthError> {
    if auth.derived_via != DERIVED_VIA_PERSONAL_SIGN {
        return Err(AuthError::Malformed(format!(
            "derivedVia {:?} is not supported (expected {DERIVED_VIA_PERSONAL_SIGN:?})",
            auth.derived_via
        )));
    }
    let claimed = Address::parse(&auth.address)?;
    let message = SiweMessage::parse(&auth.signed_message)?;
    if message.address != claimed {
        return Err(AuthError::Malformed(
            "the SIWE message names another address than the AuthSig".into(),
        ));
    }
    let sig_hex = auth.sig.strip_prefix("0x").unwrap_or(&auth.sig);
    let sig =
        hex::decode(sig_hex).map_err(|_| AuthError::Malformed("signature is not hex".into()))?;
    let signer =
        lit_crypto::eth::recover_address(&eip191_hash(auth.signed_message.as_bytes()), &sig)?;
    if signer != claimed {
        return Err(AuthError::BadSignature);
    }
    message.check_validity(now)?;
    Ok((signer, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    /// Signs like a wallet's `personal_sign`, hex-encoded as in an `AuthSig`.
    fn personal_sign(key: &SigningKey, message: &str) -> String {
        let sig = lit_crypto::eth::personal_sign(key, message.as_bytes()).unwrap();
        format!("0x{}", hex::encode(sig))
    }

    fn message(address: &Address, expiry: &str) -> String {
        format!(
            "localhost wants you to sign in with your Ethereum account:\n{address}\n\n\
             Decrypt my data.\n\nURI: lit:session:abc\nVersion: 1\nChain ID: 1\n\
             Nonce: abcdef123456\nIssued At: 2026-01-01T00:00:00Z\nExpiration Time: {expiry}\n\
             Resources:\n- litEncryptionCondition://*"
        )
    }

    fn wallet(seed: u8) -> (SigningKey, Address) {
        let key = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
        let address = Address::from_public_key(key.verifying_key());
        (key, address)
    }

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    #[test]
    fn valid_auth_sig_verifies_and_names_the_signer() {
        let (key, address) = wallet(3);
        let msg = message(&address, "2026-01-02T00:00:00Z");
        let auth = AuthSig {
            sig: personal_sign(&key, &msg),
            derived_via: DERIVED_VIA_PERSONAL_SIGN.into(),
            signed_message: msg,
            address: address.to_checksum(),
        };
        let (who, parsed) = verify_auth_sig(&auth, at("2026-01-01T12:00:00Z")).unwrap();
        assert_eq!(who, address);
        assert_eq!(parsed.statement.as_deref(), Some("Decrypt my data."));
        assert_eq!(parsed.resources, ["litEncryptionCondition://*"]);
        assert!(matches!(
            verify_auth_sig(&auth, at("2026-01-02T00:00:00Z")),
            Err(AuthError::Expired(_))
        ));
    }

    #[test]
    fn forged_and_mismatched_signatures_are_refused() {
        let (key, address) = wallet(3);
        let (other_key, other) = wallet(4);
        let msg = message(&address, "2026-01-02T00:00:00Z");
        let now = at("2026-01-01T12:00:00Z");
        // signed by someone else
        let forged = AuthSig {
            sig: personal_sign(&other_key, &msg),
            derived_via: DERIVED_VIA_PERSONAL_SIGN.into(),
            signed_message: msg.clone(),
            address: address.to_checksum(),
        };
        assert_eq!(verify_auth_sig(&forged, now), Err(AuthError::BadSignature));
        // message altered after signing
        let mut altered = forged.clone();
        altered.sig = personal_sign(&key, &msg);
        altered.signed_message = msg.replace("Chain ID: 1", "Chain ID: 2");
        assert_eq!(verify_auth_sig(&altered, now), Err(AuthError::BadSignature));
        // AuthSig claims another address than the message
        let mut claims = altered.clone();
        claims.signed_message = msg.clone();
        claims.address = other.to_checksum();
        assert!(matches!(
            verify_auth_sig(&claims, now),
            Err(AuthError::Malformed(_))
        ));
        // bad lengths, bad hex, wrong derivedVia
        for bad_sig in ["0x00", "zz", &format!("0x{}", "00".repeat(65))] {
            let mut a = claims.clone();
            a.address = address.to_checksum();
            a.sig = bad_sig.to_string();
            assert!(verify_auth_sig(&a, now).is_err(), "{bad_sig}");
        }
        let mut via = claims;
        via.derived_via = "lit.bls".into();
        assert!(matches!(
            verify_auth_sig(&via, now),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn siwe_parsing_refuses_malformed_messages() {
        let (_, address) = wallet(5);
        let good = message(&address, "2026-01-02T00:00:00Z");
        SiweMessage::parse(&good).unwrap();
        let no_statement = good.replace("Decrypt my data.\n\n", "\n");
        assert_eq!(SiweMessage::parse(&no_statement).unwrap().statement, None);
        for bad in [
            good.replace(" wants you", " would like you"),
            good.replace("Version: 1", "Version: 2"),
            good.replace("Nonce: abcdef123456", "Nonce: abc"),
            good.replace("2026-01-01T00:00:00Z", "yesterday"),
            good.replace("URI: ", "URL: "),
            format!("{good}\nExtra: line"),
            String::new(),
        ] {
            assert!(SiweMessage::parse(&bad).is_err(), "{bad}");
        }
    }
}
