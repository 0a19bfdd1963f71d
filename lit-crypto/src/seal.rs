//! Public-key encryption of small payloads to one recipient: key shares sent from node to node,
//! and signature/decryption shares returned to a client, so that an eavesdropper who collects a
//! threshold of responses learns nothing.
//!
//! This is HPKE (RFC 9180) in base mode with the suite DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, ChaCha20-Poly1305, through the `hpke` crate. The `info` string binds the purpose
//! (each use site passes its own domain tag) and `aad` binds the context (request id, epoch…):
//! a sealed box opened with another purpose or context fails.

use std::fmt;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

type Kem = X25519HkdfSha256;

/// Length of a recipient public key and of the encapsulated key, in bytes.
pub const KEY_LEN: usize = 32;

/// Why sealing or opening failed. Opening failures are deliberately opaque.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A key had the wrong length or was not a valid X25519 key.
    #[error("invalid {0} key encoding")]
    InvalidKey(&'static str),
    /// The box does not open with this key, purpose and context (tampered, or not for us).
    #[error("sealed box does not open with this key and context")]
    Open,
    /// Encryption failed (only on internal errors of the HPKE library).
    #[error("sealing failed")]
    Seal,
}

/// A recipient's secret key. Zeroized on drop by the `hpke` crate; never printed.
pub struct SealSecretKey(<Kem as hpke::Kem>::PrivateKey);

/// A recipient's public key (32 bytes).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HexKey", into = "HexKey")]
pub struct SealPublicKey(<Kem as hpke::Kem>::PublicKey);

/// A sealed payload: the encapsulated key and the AEAD ciphertext with its tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The sender's ephemeral public key (HPKE `enc`), 32 bytes.
    #[serde(with = "hex::serde")]
    pub enc: Vec<u8>,
    /// `ChaCha20-Poly1305` ciphertext followed by its 16-byte tag.
    #[serde(with = "hex::serde")]
    pub ciphertext: Vec<u8>,
}

impl SealSecretKey {
    /// A fresh key pair.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> (Self, SealPublicKey) {
        let (sk, pk) = Kem::gen_keypair(rng);
        (Self(sk), SealPublicKey(pk))
    }

    /// The key pair derived deterministically from 32+ bytes of secret input keying material
    /// (RFC 9180 `DeriveKeyPair`), e.g. from a node's stored seed.
    pub fn derive(ikm: &[u8]) -> (Self, SealPublicKey) {
        let (sk, pk) = Kem::derive_keypair(ikm);
        (Self(sk), SealPublicKey(pk))
    }

    /// The secret key bytes, for storage encrypted at rest.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; KEY_LEN]> {
        let mut out = zeroize::Zeroizing::new([0u8; KEY_LEN]);
        out.copy_from_slice(&self.0.to_bytes());
        out
    }

    /// Parses stored secret key bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        <Kem as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| SealError::InvalidKey("secret"))
    }

    /// The matching public key.
    pub fn public_key(&self) -> SealPublicKey {
        SealPublicKey(Kem::sk_to_pk(&self.0))
    }

    /// Opens a box sealed to this key with the same `info` and `aad`.
    pub fn open(&self, sealed: &Sealed, info: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed.enc)
            .map_err(|_| SealError::Open)?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.0,
            &enc,
            info,
            &sealed.ciphertext,
            aad,
        )
        .map_err(|_| SealError::Open)
    }
}

impl fmt::Debug for SealSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealSecretKey(<redacted>)")
    }
}

impl SealPublicKey {
    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        let mut out = [0u8; KEY_LEN];
        out.copy_from_slice(&self.0.to_bytes());
        out
    }

    /// Parses a 32-byte encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        <Kem as hpke::Kem>::PublicKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| SealError::InvalidKey("public"))
    }

    /// Seals `plaintext` to this key for purpose `info` and context `aad`.
    pub fn seal(
        &self,
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Sealed, SealError> {
        let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
            &OpModeS::Base,
            &self.0,
            info,
            plaintext,
            aad,
            rng,
        )
        .map_err(|_| SealError::Seal)?;
        Ok(Sealed {
            enc: enc.to_bytes().to_vec(),
            ciphertext,
        })
    }
}

impl fmt::Debug for SealPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealPublicKey({})", hex::encode(self.to_bytes()))
    }
}

#[derive(Serialize, Deserialize)]
struct HexKey(#[serde(with = "hex::serde")] Vec<u8>);

impl TryFrom<HexKey> for SealPublicKey {
    type Error = SealError;
    fn try_from(h: HexKey) -> Result<Self, SealError> {
        SealPublicKey::from_bytes(&h.0)
    }
}

impl From<SealPublicKey> for HexKey {
    fn from(k: SealPublicKey) -> HexKey {
        HexKey(k.to_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let (sk, pk) = SealSecretKey::generate(&mut rng);
        let boxed = pk
            .seal(b"purpose", b"ctx", b"share bytes", &mut rng)
            .unwrap();
        assert_eq!(sk.open(&boxed, b"purpose", b"ctx").unwrap(), b"share bytes");
        // another purpose, another context, another key, a flipped bit: all refused
        assert_eq!(sk.open(&boxed, b"other", b"ctx"), Err(SealError::Open));
        assert_eq!(sk.open(&boxed, b"purpose", b"ctx2"), Err(SealError::Open));
        let (sk2, _) = SealSecretKey::generate(&mut rng);
        assert_eq!(sk2.open(&boxed, b"purpose", b"ctx"), Err(SealError::Open));
        let mut bad = boxed.clone();
        bad.ciphertext[0] ^= 1;
        assert_eq!(sk.open(&bad, b"purpose", b"ctx"), Err(SealError::Open));
        let mut bad = boxed;
        bad.enc.truncate(10);
        assert_eq!(sk.open(&bad, b"purpose", b"ctx"), Err(SealError::Open));
    }

    #[test]
    fn keys_roundtrip_and_refuse_bad_lengths() {
        let (sk, pk) = SealSecretKey::derive(&[9u8; 32]);
        let again = SealSecretKey::from_bytes(sk.to_bytes().as_ref()).unwrap();
        assert_eq!(again.public_key(), pk);
        assert_eq!(SealPublicKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
        assert!(SealPublicKey::from_bytes(&[1u8; 31]).is_err());
        assert!(SealSecretKey::from_bytes(&[1u8; 33]).is_err());
        let json = serde_json::to_string(&pk).unwrap();
        assert_eq!(serde_json::from_str::<SealPublicKey>(&json).unwrap(), pk);
        assert!(serde_json::from_str::<SealPublicKey>("\"abcd\"").is_err());
        assert!(!format!("{sk:?}").contains(&hex::encode(sk.to_bytes().as_ref())));
    }
}
