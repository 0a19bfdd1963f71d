//! Wallet authentication: an EIP-191 `personal_sign` signature over a Sign-In with Ethereum
//! (EIP-4361) message, in Lit's `AuthSig` shape.
//!
//! [`verify_auth_sig`] parses the SIWE message into typed fields, recovers the signer from the
//! signature (secp256k1 public key recovery over the EIP-191 hash), checks that it is the address
//! the message and the `AuthSig` name, and checks the validity window against the caller's clock.
//! What the address may then do (`:userAddress` in conditions, PKP permissions) is decided by
//! the caller.

use std::fmt;

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use lit_api::v1::{AuthSig, DERIVED_VIA_PERSONAL_SIGN};
use sha3::{Digest as _, Keccak256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A 20-byte Ethereum address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// Parses `0x` + 40 hex digits (any case; the EIP-55 checksum is checked when the input is
    /// mixed-case).
    pub fn parse(s: &str) -> Result<Self, AuthError> {
        let digits = s
            .strip_prefix("0x")
            .ok_or_else(|| AuthError::Malformed(format!("address {s:?} lacks 0x")))?;
        let bytes = hex::decode(digits)
            .map_err(|_| AuthError::Malformed(format!("address {s:?} is not hex")))?;
        let arr: [u8; 20] = bytes
            .try_into()
            .map_err(|_| AuthError::Malformed(format!("address {s:?} is not 20 bytes")))?;
        let address = Address(arr);
        let mixed = digits.chars().any(|c| c.is_ascii_uppercase())
            && digits.chars().any(|c| c.is_ascii_lowercase());
        if mixed && address.to_checksum() != s {
            return Err(AuthError::Malformed(format!(
                "address {s:?} has a wrong EIP-55 checksum"
            )));
        }
        Ok(address)
    }

    /// The address of a secp256k1 public key: the last 20 bytes of keccak256 of the
    /// uncompressed point without its `0x04` prefix.
    pub fn from_public_key(key: &VerifyingKey) -> Self {
        let point = key.to_encoded_point(false);
        let hash = Keccak256::digest(&point.as_bytes()[1..]);
        let mut out = [0u8; 20];
        out.copy_from_slice(&hash[12..]);
        Address(out)
    }

    /// The EIP-55 mixed-case checksummed form.
    pub fn to_checksum(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = Keccak256::digest(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0xf;
            if c.is_ascii_alphabetic() && nibble >= 8 {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
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

/// The EIP-191 `personal_sign` hash of a message.
pub fn eip191_hash(message: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(format!("\x19Ethereum Signed Message:\n{}", message.len()).as_bytes());
    h.update(message);
    h.finalize().into()
}

/// Recovers the address that made a 65-byte `r ‖ s ‖ v` signature over `hash`
/// (`v` is 27/28 or 0/1).
pub fn recover_address(hash: &[u8; 32], signature: &[u8]) -> Result<Address, AuthError> {
    let (rs, v) = match signature {
        [rs @ .., v] if rs.len() == 64 => (rs, *v),
        _ => return Err(AuthError::Malformed("signature must be 65 bytes".into())),
    };
    let v = if v >= 27 { v - 27 } else { v };
    let recovery = RecoveryId::from_byte(v).ok_or(AuthError::BadSignature)?;
    let sig = Signature::from_slice(rs).map_err(|_| AuthError::BadSignature)?;
    let key = VerifyingKey::recover_from_prehash(hash, &sig, recovery)
        .map_err(|_| AuthError::BadSignature)?;
    Ok(Address::from_public_key(&key))
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
    let signer = recover_address(&eip191_hash(auth.signed_message.as_bytes()), &sig)?;
    if signer != claimed {
        return Err(AuthError::BadSignature);
    }
    if let Some(exp) = message.expiration_time {
        if now >= exp {
            return Err(AuthError::Expired(exp.format(&Rfc3339).unwrap_or_default()));
        }
    }
    if let Some(nbf) = message.not_before {
        if now < nbf {
            return Err(AuthError::NotYetValid(
                nbf.format(&Rfc3339).unwrap_or_default(),
            ));
        }
    }
    Ok((signer, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    /// Signs like a wallet's `personal_sign` (for tests; the client SDK has its own wallet).
    fn personal_sign(key: &SigningKey, message: &str) -> String {
        let (sig, rec) = key
            .sign_prehash_recoverable(&eip191_hash(message.as_bytes()))
            .unwrap();
        let mut out = sig.to_bytes().to_vec();
        out.push(27 + rec.to_byte());
        format!("0x{}", hex::encode(out))
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
    fn known_address_and_checksum() {
        // An example address from the EIP-55 specification.
        let a = Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap();
        assert_eq!(
            a.to_checksum(),
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        );
        assert!(Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD").is_err());
        assert!(Address::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").is_ok());
        assert!(Address::parse("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").is_err());
        assert!(Address::parse("0x5aaeb6").is_err());
        // the secp256k1 generator's address (private key 1), a widely published value
        let one = SigningKey::from_bytes(&{
            let mut k = [0u8; 32];
            k[31] = 1;
            k.into()
        })
        .unwrap();
        assert_eq!(
            Address::from_public_key(one.verifying_key()).to_checksum(),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
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
