//! Identity-based encryption to the network's BLS public key.
//!
//! Anyone can encrypt to an *identity* (any byte string, for access-controlled data the
//! [`crate::identity::AccessControlIdentity`]) under the network public key `pk = s·g1`; the
//! decryption key of an identity is the network's BLS signature on it, `d = s·H1(id)` — so
//! decrypting means asking `T` nodes for signature shares on the identity (which they give only
//! when the access conditions hold), combining them ([`crate::bls::PublicKeySet::combine`]) and
//! calling [`decrypt`]. No node ever sees the data or its key.
//!
//! # Construction
//!
//! Boneh–Franklin IBE (*Identity-Based Encryption from the Weil Pairing*, Crypto 2001, §4.2
//! "FullIdent") with the Fujisaki–Okamoto transform, as in Sui Seal and Lit's own network, with
//! the roles of the groups set by the BLS ciphersuite (keys in G1, identities and signatures in
//! G2), followed by an AEAD for the payload (a KEM/DEM hybrid):
//!
//! ```text
//! Q      = H1(id)                                  hash_to_G2(id, DST_BLS)
//! k      <- 32 random bytes                         the data key
//! σ      <- 32 random bytes
//! r      = H3(σ ‖ k ‖ pk ‖ len(id) ‖ id)            hash_to_field, non-zero
//! U      = r·g1                                     48 bytes
//! V      = σ ⊕ H2(e(r·pk, Q) ‖ U ‖ pk ‖ len(id) ‖ id)
//! W      = k ⊕ H4(σ)
//! C      = AES-256-GCM(key k, nonce n <- 12 random bytes, data, aad = every header byte)
//! ```
//!
//! Decryption with `d`: check `d` is the BLS signature on `id` under `pk` (else
//! [`IbeError::InvalidDecryptionKey`]); `σ = V ⊕ H2(e(U, d) ‖ …)` (as `e(U, d) = e(r·g1, s·Q) =
//! e(r·pk, Q)`); `k = W ⊕ H4(σ)`; recompute `r` and check `U == r·g1` (the FO re-encryption
//! check, which makes any change to `U`, `V` or `W` an error); then open `C`, whose tag
//! covers the whole header. Every failure is an error; no garbage plaintext is ever returned.
//!
//! Hashes and encodings:
//! - `H1`: hash to G2 of RFC 9380 with the BLS signature DST [`crate::bls::DST`]
//!   (`BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`), so the decryption key is exactly a
//!   standard BLS signature on the identity.
//! - `H2`: `SHA-256("LIT-IBE-BLS12381-v1-H2" ‖ …)`; the pairing value is encoded as the 576
//!   bytes of its 12 Fp coefficients, big-endian, in the order of blst's
//!   `blst_bendian_from_fp12` (the usual GT serialization, e.g. of fastcrypto).
//! - `H3`: `hash_to_field` of RFC 9380 (`expand_message_xmd` with SHA-256, 48 bytes reduced mod
//!   the group order) with DST `LIT-IBE-BLS12381-v1-H3_XMD:SHA-256_RO_`.
//! - `H4`: `SHA-256("LIT-IBE-BLS12381-v1-H4" ‖ σ)`.
//! - `len(id)` is a 2-byte big-endian length; points are compressed (48 bytes for G1).
//!
//! # Ciphertext format, version 1
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `LITE` (`4c 49 54 45`) |
//! | 4 | 1 | version `0x01` |
//! | 5 | 1 | scheme `0x01`: BF-IBE + FO on BLS12-381 (pk in G1, ids in G2, H1 = BLS POP DST), AES-256-GCM payload |
//! | 6 | 48 | `pk`, the network public key encrypted to |
//! | 54 | 2 | `len(id)`, big-endian, 1 to 65535 |
//! | 56 | `len(id)` | `id` |
//! | … | 48 | `U` |
//! | … | 32 | `V` |
//! | … | 32 | `W` |
//! | … | 12 | AEAD nonce |
//! | … | rest | AES-256-GCM ciphertext of the data, then its 16-byte tag |
//!
//! The AEAD's associated data is every byte before the nonce. A checked-in vector is in
//! `lit-crypto/testdata/ibe_v1.json` and `tests/ibe.rs` decrypts and re-creates it.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use blstrs::{G1Affine, G1Projective, G2Affine, Scalar};
use ff::Field;
use group::{Curve, Group};
use rand_core::{CryptoRng, OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::bls::{self, PublicKey, Signature};

/// Magic bytes at the start of every ciphertext.
pub const MAGIC: [u8; 4] = *b"LITE";
/// The format version written by this module.
pub const VERSION: u8 = 1;
/// Scheme 1: BF-IBE + FO on BLS12-381 with an AES-256-GCM payload.
pub const SCHEME_BF_IBE_BLS12381_AES256GCM: u8 = 1;
/// The largest identity, in bytes.
pub const MAX_IDENTITY_LEN: usize = u16::MAX as usize;

const H2_DOMAIN: &[u8] = b"LIT-IBE-BLS12381-v1-H2";
const H3_DST: &[u8] = b"LIT-IBE-BLS12381-v1-H3_XMD:SHA-256_RO_";
const H4_DOMAIN: &[u8] = b"LIT-IBE-BLS12381-v1-H4";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const G1_LEN: usize = bls::PUBLIC_KEY_LEN;

/// Errors of identity-based encryption.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IbeError {
    /// The bytes are not a ciphertext of a known format.
    #[error("malformed ciphertext: {0}")]
    Malformed(&'static str),
    /// A format version this code does not read.
    #[error("unsupported ciphertext version {0}")]
    UnsupportedVersion(u8),
    /// A scheme this code does not implement.
    #[error("unsupported ciphertext scheme {0}")]
    UnsupportedScheme(u8),
    /// The identity is empty or longer than 65535 bytes.
    #[error("identity must be 1 to 65535 bytes, got {0}")]
    InvalidIdentityLength(usize),
    /// The decryption key is not the network's signature on this ciphertext's identity
    /// (a signature on another identity, or under another key).
    #[error("the decryption key is not the signature on this ciphertext's identity under its public key")]
    InvalidDecryptionKey,
    /// The ciphertext was encrypted to another public key than the one expected.
    #[error("the ciphertext was encrypted to another public key")]
    WrongPublicKey,
    /// The ciphertext was encrypted to another identity than the one expected.
    #[error("the ciphertext was encrypted to another identity")]
    WrongIdentity,
    /// The ciphertext fails its integrity checks: it was modified.
    #[error("the ciphertext was tampered with (integrity check failed)")]
    Tampered,
    /// The AEAD refused to encrypt (input too large).
    #[error("encryption failed")]
    EncryptionFailed,
}

/// A ciphertext of format version 1 (see the module docs).
#[derive(Clone, PartialEq, Eq)]
pub struct Ciphertext {
    public_key: PublicKey,
    identity: Vec<u8>,
    u: G1Affine,
    v: [u8; 32],
    w: [u8; 32],
    nonce: [u8; NONCE_LEN],
    payload: Vec<u8>,
}

impl Ciphertext {
    /// The network public key this was encrypted to.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The identity this was encrypted to: the message whose BLS signature decrypts it.
    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    /// The length of the encrypted data.
    pub fn plaintext_len(&self) -> usize {
        self.payload.len().saturating_sub(TAG_LEN)
    }

    fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + G1_LEN + 2 + self.identity.len() + G1_LEN + 64);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(SCHEME_BF_IBE_BLS12381_AES256GCM);
        out.extend_from_slice(&self.public_key.to_bytes());
        let len = u16::try_from(self.identity.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.identity);
        out.extend_from_slice(&self.u.to_compressed());
        out.extend_from_slice(&self.v);
        out.extend_from_slice(&self.w);
        out
    }

    /// The version 1 encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header();
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.payload);
        out
    }

    /// Decodes the version 1 encoding; refuses other versions and schemes, bad lengths, points
    /// off the curve, outside the subgroup or at infinity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IbeError> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return Err(IbeError::Malformed("magic"));
        }
        let version = r.byte()?;
        if version != VERSION {
            return Err(IbeError::UnsupportedVersion(version));
        }
        let scheme = r.byte()?;
        if scheme != SCHEME_BF_IBE_BLS12381_AES256GCM {
            return Err(IbeError::UnsupportedScheme(scheme));
        }
        let public_key = PublicKey::from_bytes(r.take(G1_LEN)?)
            .map_err(|_| IbeError::Malformed("public key"))?;
        let len = u16::from_be_bytes(r.array()?) as usize;
        if len == 0 {
            return Err(IbeError::InvalidIdentityLength(0));
        }
        let identity = r.take(len)?.to_vec();
        let u = bls::decode_g1(r.take(G1_LEN)?, "U").map_err(|_| IbeError::Malformed("U"))?;
        let v = r.array()?;
        let w = r.array()?;
        let nonce = r.array()?;
        let payload = r.0.to_vec();
        if payload.len() < TAG_LEN {
            return Err(IbeError::Malformed("truncated payload"));
        }
        Ok(Self {
            public_key,
            identity,
            u,
            v,
            w,
            nonce,
            payload,
        })
    }
}

impl fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ciphertext")
            .field("version", &VERSION)
            .field("public_key", &self.public_key)
            .field("identity", &String::from_utf8_lossy(&self.identity))
            .field("plaintext_len", &self.plaintext_len())
            .finish()
    }
}

bls::serde_via_bytes!(Ciphertext);

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], IbeError> {
        if self.0.len() < n {
            return Err(IbeError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, IbeError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], IbeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

/// Encrypts `plaintext` to `identity` under the network key `pk`, with the operating
/// system's randomness.
pub fn encrypt(pk: &PublicKey, identity: &[u8], plaintext: &[u8]) -> Result<Ciphertext, IbeError> {
    encrypt_with_rng(pk, identity, plaintext, &mut OsRng)
}

/// Encrypts with the given randomness (a seeded RNG makes test vectors reproducible).
pub fn encrypt_with_rng(
    pk: &PublicKey,
    identity: &[u8],
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Ciphertext, IbeError> {
    if identity.is_empty() || identity.len() > MAX_IDENTITY_LEN {
        return Err(IbeError::InvalidIdentityLength(identity.len()));
    }
    let q = bls::hash_to_g2(identity).to_affine();
    let (sigma, key, r) = loop {
        let mut sigma = Zeroizing::new([0u8; 32]);
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(sigma.as_mut());
        rng.fill_bytes(key.as_mut());
        let r = h3(&sigma, &key, pk, identity);
        if !bool::from(r.is_zero()) {
            break (sigma, key, r);
        }
    };
    let u = (G1Projective::generator() * r).to_affine();
    let r_pk = (G1Projective::from(pk.as_affine()) * r).to_affine();
    let mask = h2(&pairing_bytes(&r_pk, &q), &u, pk, identity);
    let v = xor(&sigma, &mask);
    let w = xor(&key, &h4(&sigma));
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut ct = Ciphertext {
        public_key: *pk,
        identity: identity.to_vec(),
        u,
        v,
        w,
        nonce,
        payload: Vec::new(),
    };
    let aad = ct.header();
    let cipher = Aes256Gcm::new(key.as_ref().into());
    ct.payload = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| IbeError::EncryptionFailed)?;
    Ok(ct)
}

/// Decrypts with the decryption key of the ciphertext's identity: the (combined) BLS signature
/// on [`Ciphertext::identity`] under [`Ciphertext::public_key`].
///
/// The key is verified first ([`IbeError::InvalidDecryptionKey`] if it is not that signature);
/// any modification of the ciphertext is [`IbeError::Tampered`]. Callers that know which
/// network key and identity they expect should use [`decrypt_checked`].
pub fn decrypt(ct: &Ciphertext, key: &Signature) -> Result<Zeroizing<Vec<u8>>, IbeError> {
    ct.public_key
        .verify(&ct.identity, key)
        .map_err(|_| IbeError::InvalidDecryptionKey)?;
    let mask = h2(
        &pairing_bytes(&ct.u, key.as_affine()),
        &ct.u,
        &ct.public_key,
        &ct.identity,
    );
    let sigma = Zeroizing::new(xor(&ct.v, &mask));
    let data_key = Zeroizing::new(xor(&ct.w, &h4(&sigma)));
    // Fujisaki–Okamoto: the randomness must re-derive U.
    let r = h3(&sigma, &data_key, &ct.public_key, &ct.identity);
    if (G1Projective::generator() * r).to_affine() != ct.u {
        return Err(IbeError::Tampered);
    }
    let cipher = Aes256Gcm::new(data_key.as_ref().into());
    let plaintext = cipher
        .decrypt(
            &Nonce::from(ct.nonce),
            Payload {
                msg: &ct.payload,
                aad: &ct.header(),
            },
        )
        .map_err(|_| IbeError::Tampered)?;
    Ok(Zeroizing::new(plaintext))
}

/// [`decrypt`], after checking that the ciphertext was made for `expected_pk` and
/// `expected_identity` ([`IbeError::WrongPublicKey`], [`IbeError::WrongIdentity`]).
pub fn decrypt_checked(
    expected_pk: &PublicKey,
    expected_identity: &[u8],
    ct: &Ciphertext,
    key: &Signature,
) -> Result<Zeroizing<Vec<u8>>, IbeError> {
    if ct.public_key != *expected_pk {
        return Err(IbeError::WrongPublicKey);
    }
    if ct.identity != expected_identity {
        return Err(IbeError::WrongIdentity);
    }
    decrypt(ct, key)
}

/// `e(p, q)` encoded as 576 big-endian bytes (blst's `blst_bendian_from_fp12` order).
fn pairing_bytes(p: &G1Affine, q: &G2Affine) -> Zeroizing<[u8; 576]> {
    let gt = blst::blst_fp12::miller_loop(q.as_ref(), p.as_ref()).final_exp();
    Zeroizing::new(gt.to_bendian())
}

fn id_len(identity: &[u8]) -> [u8; 2] {
    u16::try_from(identity.len())
        .unwrap_or(u16::MAX)
        .to_be_bytes()
}

fn h2(gt: &[u8; 576], u: &G1Affine, pk: &PublicKey, identity: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(H2_DOMAIN);
    h.update(gt);
    h.update(u.to_compressed());
    h.update(pk.to_bytes());
    h.update(id_len(identity));
    h.update(identity);
    Zeroizing::new(h.finalize().into())
}

fn h3(sigma: &[u8; 32], key: &[u8; 32], pk: &PublicKey, identity: &[u8]) -> Scalar {
    let mut msg = Zeroizing::new(Vec::with_capacity(64 + G1_LEN + 2 + identity.len()));
    msg.extend_from_slice(sigma);
    msg.extend_from_slice(key);
    msg.extend_from_slice(&pk.to_bytes());
    msg.extend_from_slice(&id_len(identity));
    msg.extend_from_slice(identity);
    // hash_to_field never fails for a non-empty DST; a zero scalar is refused by the callers.
    blst::blst_scalar::hash_to(&msg, H3_DST)
        .and_then(|s| Option::from(Scalar::from_bytes_le(&s.b)))
        .unwrap_or(Scalar::ZERO)
}

fn h4(sigma: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(H4_DOMAIN);
    h.update(sigma);
    Zeroizing::new(h.finalize().into())
}

fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn h3_is_hash_to_field() {
        // Deterministic and in range; different inputs give different scalars.
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let pk = bls::SecretKey::random(&mut rng).public_key();
        let a = h3(&[1; 32], &[2; 32], &pk, b"id");
        assert_eq!(a, h3(&[1; 32], &[2; 32], &pk, b"id"));
        assert_ne!(a, h3(&[1; 32], &[2; 32], &pk, b"id2"));
        assert!(!bool::from(a.is_zero()));
    }
}
