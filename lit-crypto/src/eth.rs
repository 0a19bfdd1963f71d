//! Ethereum accounts: addresses (EIP-55), `personal_sign` (EIP-191) hashing, signing and
//! signer recovery over secp256k1. Shared by the node (which verifies wallet signatures) and the
//! client (whose wallet makes them).

use std::fmt;

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use k256::elliptic_curve::sec1::ToEncodedPoint as _;
use k256::AffinePoint;
use sha3::{Digest as _, Keccak256};

/// Why an Ethereum value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EthError {
    /// Not a well-formed address or signature encoding.
    #[error("{0}")]
    Malformed(String),
    /// The signature does not recover to a key.
    #[error("signature is invalid")]
    BadSignature,
}

/// A 20-byte Ethereum address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// Parses `0x` + 40 hex digits (any case; the EIP-55 checksum is checked when the input is
    /// mixed-case).
    pub fn parse(s: &str) -> Result<Self, EthError> {
        let digits = s
            .strip_prefix("0x")
            .ok_or_else(|| EthError::Malformed(format!("address {s:?} lacks 0x")))?;
        let bytes = hex::decode(digits)
            .map_err(|_| EthError::Malformed(format!("address {s:?} is not hex")))?;
        let arr: [u8; 20] = bytes
            .try_into()
            .map_err(|_| EthError::Malformed(format!("address {s:?} is not 20 bytes")))?;
        let address = Address(arr);
        let mixed = digits.chars().any(|c| c.is_ascii_uppercase())
            && digits.chars().any(|c| c.is_ascii_lowercase());
        if mixed && address.to_checksum() != s {
            return Err(EthError::Malformed(format!(
                "address {s:?} has a wrong EIP-55 checksum"
            )));
        }
        Ok(address)
    }

    /// The address of a secp256k1 public key: the last 20 bytes of keccak256 of the
    /// uncompressed point without its `0x04` prefix.
    pub fn from_public_key(key: &VerifyingKey) -> Self {
        Self::from_point(key.as_affine())
    }

    /// The address of a secp256k1 point (see [`Address::from_public_key`]), e.g. a PKP's public
    /// key. The point at infinity, which is no public key, hashes as the empty string.
    pub fn from_point(point: &AffinePoint) -> Self {
        let encoded = point.to_encoded_point(false);
        let hash = Keccak256::digest(encoded.as_bytes().get(1..).unwrap_or_default());
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

/// The token id of a PKP key: keccak256 of its uncompressed point without the `0x04` prefix.
pub fn pkp_token_id(public_key: &AffinePoint) -> [u8; 32] {
    let point = public_key.to_encoded_point(false);
    Keccak256::digest(&point.as_bytes()[1..]).into()
}

/// [`pkp_token_id`] of a SEC1 public key (compressed or not, hex with or without `0x`).
pub fn pkp_token_id_of_hex(public_key: &str) -> Result<[u8; 32], EthError> {
    let bytes = hex::decode(public_key.trim_start_matches("0x"))
        .map_err(|_| EthError::Malformed("a public key must be hex".into()))?;
    let key = k256::PublicKey::from_sec1_bytes(&bytes)
        .map_err(|_| EthError::Malformed("the public key is not a secp256k1 point".into()))?;
    Ok(pkp_token_id(key.as_affine()))
}

/// The EIP-191 `personal_sign` hash of a message (version `0x45`):
/// `keccak256("\x19Ethereum Signed Message:\n" ‖ len(message) ‖ message)` with the length in
/// decimal ASCII.
pub fn eip191_hash(message: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(format!("\x19Ethereum Signed Message:\n{}", message.len()).as_bytes());
    h.update(message);
    h.finalize().into()
}

/// Recovers the address that made a 65-byte `r ‖ s ‖ v` signature over `hash`
/// (`v` is 27/28 or 0/1).
pub fn recover_address(hash: &[u8; 32], signature: &[u8]) -> Result<Address, EthError> {
    let (rs, v) = match signature {
        [rs @ .., v] if rs.len() == 64 => (rs, *v),
        _ => return Err(EthError::Malformed("signature must be 65 bytes".into())),
    };
    let v = if v >= 27 { v - 27 } else { v };
    let recovery = RecoveryId::from_byte(v).ok_or(EthError::BadSignature)?;
    let sig = Signature::from_slice(rs).map_err(|_| EthError::BadSignature)?;
    let key = VerifyingKey::recover_from_prehash(hash, &sig, recovery)
        .map_err(|_| EthError::BadSignature)?;
    Ok(Address::from_public_key(&key))
}

impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_checksum())
    }
}

impl<'de> serde::Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Address::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Signs `message` like a wallet's `personal_sign`: the 65-byte `r ‖ s ‖ v` signature over
/// [`eip191_hash`], with `v` = 27 or 28 and a low `s`.
pub fn personal_sign(key: &SigningKey, message: &[u8]) -> Result<[u8; 65], EthError> {
    let (sig, rec) = key
        .sign_prehash_recoverable(&eip191_hash(message))
        .map_err(|_| EthError::BadSignature)?;
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    out[64] = 27 + rec.to_byte();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut k = [0u8; 32];
        k[31] = 1;
        let one = SigningKey::from_bytes(&k.into()).unwrap();
        assert_eq!(
            Address::from_public_key(one.verifying_key()).to_checksum(),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
        assert_eq!(
            Address::from_point(&AffinePoint::GENERATOR),
            Address::from_public_key(one.verifying_key())
        );
    }

    #[test]
    fn eip191_matches_known_vector() {
        // personal_sign digest of "hello" (well-known value, e.g. ethers `hashMessage("hello")`).
        assert_eq!(
            hex::encode(eip191_hash(b"hello")),
            "50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750"
        );
    }

    #[test]
    fn personal_sign_recovers_to_the_signer_and_checks_with_libsecp256k1() {
        let key = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let address = Address::from_public_key(key.verifying_key());
        let sig = personal_sign(&key, b"hello").unwrap();
        assert_eq!(
            recover_address(&eip191_hash(b"hello"), &sig).unwrap(),
            address
        );
        assert_ne!(
            recover_address(&eip191_hash(b"hellO"), &sig).unwrap(),
            address
        );
        assert!(recover_address(&eip191_hash(b"hello"), &sig[..64]).is_err());
        // independent check: libsecp256k1 recovers the same public key
        let secp = secp256k1::Secp256k1::new();
        let rec = secp256k1::ecdsa::RecoverableSignature::from_compact(
            &sig[..64],
            secp256k1::ecdsa::RecoveryId::try_from(i32::from(sig[64] - 27)).unwrap(),
        )
        .unwrap();
        let msg = secp256k1::Message::from_digest(eip191_hash(b"hello"));
        let pk = secp.recover_ecdsa(&msg, &rec).unwrap();
        assert_eq!(
            pk.serialize(),
            <[u8; 33]>::try_from(key.verifying_key().to_encoded_point(true).as_bytes()).unwrap()
        );
    }
}
