//! Wallet authentication: an EIP-191 `personal_sign` signature over a Sign-In with Ethereum
//! (EIP-4361) message, in Lit's `AuthSig` shape.
//!
//! [`verify_auth_sig`] parses the SIWE message into typed fields, recovers the signer from the
//! signature (secp256k1 public key recovery over the EIP-191 hash), checks that it is the address
//! the message and the `AuthSig` name, and checks the validity window against the caller's clock.
//! What the address may then do (`:userAddress` in conditions, PKP permissions) is decided by
//! the caller.

use lit_api::v1::{AuthSig, DERIVED_VIA_PERSONAL_SIGN};
use time::OffsetDateTime;

pub use lit_api::siwe::{SiweError, SiweMessage};
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
    /// The `AuthSig` is not well-formed.
    #[error("malformed auth: {0}")]
    Malformed(String),
    /// Its signed message is not an EIP-4361 message.
    #[error("malformed auth: SIWE message: {0}")]
    Siwe(#[from] SiweError),
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

/// Checks a message's validity window (`Expiration Time`, `Not Before`) at `now`.
pub fn check_validity(message: &SiweMessage, now: OffsetDateTime) -> Result<(), AuthError> {
    if let Some(exp) = &message.expiration_time {
        if now >= exp.datetime() {
            return Err(AuthError::Expired(exp.to_string()));
        }
    }
    if let Some(nbf) = &message.not_before {
        if now < nbf.datetime() {
            return Err(AuthError::NotYetValid(nbf.to_string()));
        }
    }
    Ok(())
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
    let message: SiweMessage = auth.signed_message.parse()?;
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
    check_validity(&message, now)?;
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
        SiweMessage {
            statement: Some("Decrypt my data.".into()),
            expiration_time: Some(expiry.parse().unwrap()),
            resources: vec!["litEncryptionCondition://*".into()],
            ..SiweMessage::new(
                "localhost",
                *address,
                "lit:session:abc",
                1,
                "abcdef123456",
                "2026-01-01T00:00:00Z".parse().unwrap(),
            )
        }
        .to_string()
    }

    fn wallet(seed: u8) -> (SigningKey, Address) {
        let key = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
        let address = Address::from_public_key(key.verifying_key());
        (key, address)
    }

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
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
            algo: None,
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
            algo: None,
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
        // a message that is not EIP-4361 (here: a lowercase address), signed as it is
        let mut lowercase = claims.clone();
        lowercase.address = address.to_checksum();
        lowercase.signed_message = msg.replace(
            &address.to_checksum(),
            &address.to_checksum().to_lowercase(),
        );
        lowercase.sig = personal_sign(&key, &lowercase.signed_message);
        assert!(matches!(
            verify_auth_sig(&lowercase, now),
            Err(AuthError::Siwe(SiweError::Invalid { .. }))
        ));
        let mut via = claims;
        via.derived_via = "lit.bls".into();
        assert!(matches!(
            verify_auth_sig(&via, now),
            Err(AuthError::Malformed(_))
        ));
    }
}
