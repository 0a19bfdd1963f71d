//! Threshold BLS signatures on BLS12-381.
//!
//! # Scheme
//!
//! Public keys are in G1 (48-byte compressed points), signatures in G2 (96-byte compressed
//! points), and messages are hashed to G2 with the ciphersuite
//! [`DST`] = `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_` of the IETF BLS signature draft
//! (draft-irtf-cfrg-bls-signature-05, section 4.2.3; hash to curve per RFC 9380). Signing is
//! `σ = sk · H(m)` and verification checks `e(pk, H(m)) == e(g1, σ)`, so a combined threshold
//! signature is an ordinary BLS signature: any verifier of that ciphersuite accepts it (the
//! tests check it with `blst::min_pk`, a separate code path, and a vector in `testdata/` was
//! also checked with Python's `py_ecc`).
//!
//! # Threshold
//!
//! The secret key `sk = f(0)` is Shamir-shared with a polynomial `f` of degree `T - 1`
//! (see [`crate::shamir`]); party `i` holds `f(i)` ([`KeyShare`]) and signs `σ_i = f(i) · H(m)`
//! ([`SignatureShare`]). The public side of a sharing is a [`PublicKeySet`]: the Feldman
//! commitment `(a_k · g1)_k` to `f` and the participants, from which the public key
//! `pk = f(0) · g1` and every public key share `pk_i = f(i) · g1` follow. A signature share is
//! checked against `pk_i` with the same pairing equation. Any `T` valid shares combine into
//! `σ = Σ λ_i · σ_i` (Lagrange coefficients at zero, computed with one batched inversion, and
//! summed by one multi-scalar multiplication rather than `T` separate multiplications).
//!
//! [`PublicKeySet::combine`] interpolates first and verifies the result once (the fast path);
//! only when that fails does it verify every share on its own and report the bad ones by
//! [`PartyId`]. Structural faults are refused before any curve arithmetic: fewer than `T`
//! shares, duplicate identifiers, identifiers outside the set, and shares of another key set
//! (every share carries the [`KeySetId`] of the set it belongs to). A zero identifier, a point
//! at infinity or a point outside the prime-order subgroup cannot even be represented: the
//! constructors and decoders refuse them ("parse, don't validate").
//!
//! # Encodings
//!
//! Every type has a fixed byte encoding (`to_bytes`/`from_bytes`, points compressed as in the
//! ZCash/IETF format, scalars and party ids big-endian) and a serde form that is the lowercase
//! hex of those bytes in human-readable formats (JSON) and the raw bytes otherwise. Secret types
//! ([`SecretKey`], [`KeyShare`]) have byte encodings returned in [`Zeroizing`] buffers but no
//! `Serialize`, so that they are never serialized by accident.

use std::collections::BTreeMap;
use std::fmt;

use blstrs::{Bls12, G1Affine, G1Projective, G2Affine, G2Prepared, G2Projective, Scalar};
use ff::Field;
use group::{prime::PrimeCurveAffine, Curve, Group};
use pairing::{MillerLoopResult, MultiMillerLoop};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::protocol::PartyId;
use crate::shamir::{self, Commitment, SecretShare, ShamirError};

/// The domain separation tag of the proof-of-possession ciphersuite with public keys in G1.
pub const DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// Length of an encoded [`PublicKey`] (a compressed G1 point).
pub const PUBLIC_KEY_LEN: usize = 48;
/// Length of an encoded [`Signature`] (a compressed G2 point).
pub const SIGNATURE_LEN: usize = 96;
/// Length of an encoded [`SecretKey`] (a big-endian scalar).
pub const SECRET_KEY_LEN: usize = 32;
/// Length of an encoded [`KeySetId`].
pub const KEY_SET_ID_LEN: usize = 32;
/// Length of an encoded [`KeyShare`]: key set id, party id, scalar.
pub const KEY_SHARE_LEN: usize = KEY_SET_ID_LEN + 4 + SECRET_KEY_LEN;
/// Length of an encoded [`PublicKeyShare`]: key set id, party id, G1 point.
pub const PUBLIC_KEY_SHARE_LEN: usize = KEY_SET_ID_LEN + 4 + PUBLIC_KEY_LEN;
/// Length of an encoded [`SignatureShare`]: key set id, party id, G2 point.
pub const SIGNATURE_SHARE_LEN: usize = KEY_SET_ID_LEN + 4 + SIGNATURE_LEN;

/// Domain tag of the hash that names a key set.
const KEY_SET_ID_DOMAIN: &[u8] = b"lit-crypto/bls/key-set-id/v1";
/// Domain tag of the hash that derives batch verification coefficients.
const BATCH_DOMAIN: &[u8] = b"lit-crypto/bls/batch-verify/v1";

/// Errors of threshold BLS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlsError {
    /// Fewer shares than the threshold.
    #[error("need {needed} shares, got {got}")]
    NotEnoughShares {
        /// The threshold `T`.
        needed: usize,
        /// Shares given.
        got: usize,
    },
    /// Two shares carry the same identifier.
    #[error("duplicate share from party {0}")]
    DuplicateId(PartyId),
    /// An encoded party identifier is zero (the share at zero would be the secret).
    #[error("party id 0 is not allowed")]
    ZeroId,
    /// The party is not a participant of the key set.
    #[error("party {0} is not a participant of this key set")]
    UnknownParty(PartyId),
    /// The share belongs to another key set (another key, or another epoch of the same key).
    #[error("share of party {0} belongs to another key set")]
    ForeignShare(PartyId),
    /// These shares failed verification against their public key shares.
    #[error("invalid signature shares from parties {culprits:?}")]
    InvalidShares {
        /// The parties whose shares do not verify.
        culprits: Vec<PartyId>,
    },
    /// After discarding the invalid shares, fewer than the threshold remain.
    #[error("only {valid} valid shares, need {needed}; invalid shares from {culprits:?}")]
    TooManyInvalidShares {
        /// The threshold `T`.
        needed: usize,
        /// Valid shares left.
        valid: usize,
        /// The parties whose shares do not verify.
        culprits: Vec<PartyId>,
    },
    /// The shares interpolate to the point at infinity (only possible with invalid shares).
    #[error("the shares combine to the point at infinity")]
    Degenerate,
    /// A signature does not verify (deliberately uninformative).
    #[error("invalid signature")]
    InvalidSignature,
    /// A secret key share does not match its public key share in the key set.
    #[error("key share of party {0} does not match the key set")]
    KeyShareMismatch(PartyId),
    /// Invalid threshold or participants for a key set.
    #[error("invalid key set: {0}")]
    InvalidKeySet(&'static str),
    /// Bytes that do not encode a valid value.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The type being decoded.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl BlsError {
    /// The parties this error blames, if any.
    pub fn culprits(&self) -> Vec<PartyId> {
        match self {
            BlsError::DuplicateId(p)
            | BlsError::UnknownParty(p)
            | BlsError::ForeignShare(p)
            | BlsError::KeyShareMismatch(p) => vec![*p],
            BlsError::InvalidShares { culprits }
            | BlsError::TooManyInvalidShares { culprits, .. } => culprits.clone(),
            // No party to blame: a caller's mistake, a bad encoding, or an opaque failure
            // (`InvalidSignature` deliberately names nobody).
            BlsError::NotEnoughShares { .. }
            | BlsError::ZeroId
            | BlsError::Degenerate
            | BlsError::InvalidSignature
            | BlsError::InvalidKeySet(_)
            | BlsError::Malformed { .. } => vec![],
        }
    }
}

impl From<ShamirError> for BlsError {
    fn from(e: ShamirError) -> Self {
        match e {
            ShamirError::DuplicateId(p) => BlsError::DuplicateId(p),
            ShamirError::NotEnoughShares { needed, got } => {
                BlsError::NotEnoughShares { needed, got }
            }
            ShamirError::InvalidThreshold { .. } => BlsError::InvalidKeySet("invalid threshold"),
            ShamirError::ShareMismatch(p) => BlsError::KeyShareMismatch(p),
            ShamirError::Malformed(reason) => BlsError::Malformed {
                what: "sharing",
                reason,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Plain BLS: keys and signatures
// ---------------------------------------------------------------------------------------------

/// `H(m)`: the message hashed to G2 with [`DST`].
pub fn hash_to_g2(msg: &[u8]) -> G2Projective {
    G2Projective::hash_to_curve(msg, DST, &[])
}

/// Checks `e(pk, h) == e(g1, sig)` with one multi-Miller loop and one final exponentiation.
fn pairing_check(pk: &G1Affine, h: &G2Prepared, sig: &G2Affine) -> bool {
    let neg_g1 = -G1Affine::generator();
    let sig = G2Prepared::from(*sig);
    Bls12::multi_miller_loop(&[(pk, h), (&neg_g1, &sig)])
        .final_exponentiation()
        .is_identity()
        .into()
}

/// A whole BLS secret key. For tests, examples and the trusted dealer only: the network's key
/// exists only as shares. Zeroized on drop; `Debug` prints `<redacted>`.
#[derive(Clone)]
pub struct SecretKey(Scalar);

impl SecretKey {
    /// A uniformly random non-zero key.
    pub fn random(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        loop {
            let s = Scalar::random(&mut *rng);
            if !bool::from(s.is_zero()) {
                return Self(s);
            }
        }
    }

    /// The public key `sk · g1`.
    pub fn public_key(&self) -> PublicKey {
        PublicKey((G1Projective::generator() * self.0).to_affine())
    }

    /// The signature `sk · H(msg)`.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature((hash_to_g2(msg) * self.0).to_affine())
    }

    /// Big-endian encoding (as `blst::min_pk::SecretKey::to_bytes`).
    pub fn to_bytes(&self) -> Zeroizing<[u8; SECRET_KEY_LEN]> {
        Zeroizing::new(self.0.to_bytes_be())
    }

    /// Decodes [`SecretKey::to_bytes`]; refuses non-canonical and zero scalars.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        let s = decode_scalar(bytes, "secret key")?;
        if bool::from(s.is_zero()) {
            return Err(malformed("secret key", "zero"));
        }
        Ok(Self(s))
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0 = Scalar::ZERO;
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A BLS public key: a G1 point in the prime-order subgroup, never the point at infinity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(G1Affine);

impl PublicKey {
    /// Verifies a signature on `msg`. The error is deliberately uninformative.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), BlsError> {
        let h = G2Prepared::from(hash_to_g2(msg).to_affine());
        if pairing_check(&self.0, &h, &sig.0) {
            Ok(())
        } else {
            Err(BlsError::InvalidSignature)
        }
    }

    /// The point.
    pub fn as_affine(&self) -> &G1Affine {
        &self.0
    }

    /// A public key from a point; refuses the point at infinity and points off the curve or
    /// outside the prime-order subgroup (which `blstrs`' unchecked constructors can make).
    pub fn from_affine(p: G1Affine) -> Result<Self, BlsError> {
        if bool::from(p.is_identity()) {
            return Err(malformed("public key", "point at infinity"));
        }
        if !bool::from(p.is_on_curve() & p.is_torsion_free()) {
            return Err(malformed("public key", "not a point of the G1 subgroup"));
        }
        Ok(Self(p))
    }

    /// The 48-byte compressed point.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.0.to_compressed()
    }

    /// Decodes a compressed point; refuses bad lengths, points off the curve or outside the
    /// subgroup, non-canonical encodings and the point at infinity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        Ok(Self(decode_g1(bytes, "public key")?))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.to_bytes()))
    }
}

/// A BLS signature: a G2 point in the prime-order subgroup, never the point at infinity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(G2Affine);

impl Signature {
    /// The point.
    pub fn as_affine(&self) -> &G2Affine {
        &self.0
    }

    /// The 96-byte compressed point.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0.to_compressed()
    }

    /// Decodes a compressed point; refuses bad lengths, points off the curve or outside the
    /// subgroup, non-canonical encodings and the point at infinity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        Ok(Self(decode_g2(bytes, "signature")?))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.to_bytes()))
    }
}

// ---------------------------------------------------------------------------------------------
// Threshold: key sets and shares
// ---------------------------------------------------------------------------------------------

/// The name of a key set: `SHA-256("lit-crypto/bls/key-set-id/v1" ‖ commitment)`, where the
/// commitment is the Feldman commitment's compressed points. Every share carries it, so that
/// shares of another key — or of another epoch of the same key, after a reshare — are refused
/// by name before any pairing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeySetId([u8; KEY_SET_ID_LEN]);

impl KeySetId {
    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; KEY_SET_ID_LEN] {
        self.0
    }

    /// Any 32 bytes name a key set.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        let arr: [u8; KEY_SET_ID_LEN] = bytes
            .try_into()
            .map_err(|_| malformed("key set id", "length"))?;
        Ok(Self(arr))
    }
}

impl fmt::Debug for KeySetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySetId({})", hex::encode(self.0))
    }
}

impl fmt::Display for KeySetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The public side of a `T`-of-`n` sharing of a BLS key: the Feldman commitment to the
/// sharing polynomial and the participants, with every public key share precomputed.
///
/// Built by the DKG (`lit-dkg`) from the sum of the dealers' commitments, or by
/// [`deal_with_trusted_dealer`] in tests and examples.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKeySet {
    id: KeySetId,
    commitment: Commitment<G1Projective>,
    public_key: PublicKey,
    shares: BTreeMap<PartyId, G1Affine>,
}

impl PublicKeySet {
    /// A key set from the commitment `(a_k · g1)_{k < T}` and the participants' ids.
    ///
    /// Refuses: no participants, duplicates, `T > n`, a public key at infinity, and a
    /// participant whose public key share is at infinity (it could not sign).
    pub fn new(
        commitment: Commitment<G1Projective>,
        participants: &[PartyId],
    ) -> Result<Self, BlsError> {
        shamir::check_distinct(participants)?;
        let threshold = commitment.threshold();
        if participants.is_empty() {
            return Err(BlsError::InvalidKeySet("no participants"));
        }
        if threshold > participants.len() {
            return Err(BlsError::InvalidKeySet("threshold exceeds participants"));
        }
        let points = commitment.points();
        for p in points {
            let a = p.to_affine();
            if !bool::from(a.is_on_curve() & a.is_torsion_free()) {
                return Err(BlsError::InvalidKeySet(
                    "commitment point outside the G1 subgroup",
                ));
            }
        }
        let public_key = PublicKey::from_affine(commitment.public_key().to_affine())
            .map_err(|_| BlsError::InvalidKeySet("public key at infinity"))?;
        let mut shares = BTreeMap::new();
        for &id in participants {
            // f(id) · g1 = Σ_k C_k · id^k, as one multi-scalar multiplication.
            let x: Scalar = id.to_scalar();
            let mut powers = Vec::with_capacity(threshold);
            let mut acc = Scalar::ONE;
            for _ in 0..threshold {
                powers.push(acc);
                acc *= x;
            }
            let point = G1Projective::multi_exp(points, &powers);
            if bool::from(point.is_identity()) {
                return Err(BlsError::InvalidKeySet("public key share at infinity"));
            }
            shares.insert(id, point.to_affine());
        }
        let mut h = Sha256::new();
        h.update(KEY_SET_ID_DOMAIN);
        h.update(commitment.to_bytes());
        let id = KeySetId(h.finalize().into());
        Ok(Self {
            id,
            commitment,
            public_key,
            shares,
        })
    }

    /// The name of this key set.
    pub fn id(&self) -> KeySetId {
        self.id
    }

    /// The threshold `T`: the number of shares needed to sign.
    pub fn threshold(&self) -> usize {
        self.commitment.threshold()
    }

    /// The group public key `f(0) · g1`.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The Feldman commitment to the sharing polynomial.
    pub fn commitment(&self) -> &Commitment<G1Projective> {
        &self.commitment
    }

    /// The participants, in increasing order.
    pub fn participants(&self) -> impl Iterator<Item = PartyId> + '_ {
        self.shares.keys().copied()
    }

    /// The public key share of a participant.
    pub fn public_key_share(&self, id: PartyId) -> Result<PublicKeyShare, BlsError> {
        let point = self.shares.get(&id).ok_or(BlsError::UnknownParty(id))?;
        Ok(PublicKeyShare {
            key_set: self.id,
            id,
            point: *point,
        })
    }

    /// Checks that a secret key share belongs to this set and matches its public key share.
    pub fn check_key_share(&self, share: &KeyShare) -> Result<(), BlsError> {
        let id = share.id();
        if share.key_set != self.id {
            return Err(BlsError::ForeignShare(id));
        }
        let expected = self.shares.get(&id).ok_or(BlsError::UnknownParty(id))?;
        if (G1Projective::generator() * share.share.value).to_affine() == *expected {
            Ok(())
        } else {
            Err(BlsError::KeyShareMismatch(id))
        }
    }

    /// Verifies one signature share on `msg` against the signer's public key share.
    pub fn verify_share(&self, msg: &[u8], share: &SignatureShare) -> Result<(), BlsError> {
        let h = G2Prepared::from(hash_to_g2(msg).to_affine());
        self.verify_share_prepared(&h, share)
    }

    /// Verifies many signature shares on `msg` at once and, if any is invalid, names every
    /// invalid one.
    ///
    /// Batch verification by a random linear combination: with coefficients `ρ_i` of 128 bits
    /// derived by hashing `H(msg)` and every share (so no signer can choose them), it checks
    /// `e(Σ ρ_i·pk_i, H(msg)) == e(g1, Σ ρ_i·σ_i)` with two multi-scalar multiplications and
    /// one pairing check instead of one pairing check per share; an invalid share passes with
    /// probability at most 2^-128. Only on failure is each share checked on its own.
    pub fn verify_shares(&self, msg: &[u8], shares: &[SignatureShare]) -> Result<(), BlsError> {
        for s in shares {
            if s.key_set != self.id {
                return Err(BlsError::ForeignShare(s.id));
            }
        }
        let pks = shares
            .iter()
            .map(|s| {
                self.shares
                    .get(&s.id)
                    .map(|p| G1Projective::from(*p))
                    .ok_or(BlsError::UnknownParty(s.id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if shares.is_empty() {
            return Ok(());
        }
        let h_point = hash_to_g2(msg).to_affine();
        let h = G2Prepared::from(h_point);
        let mut transcript = Sha256::new();
        transcript.update(BATCH_DOMAIN);
        transcript.update(h_point.to_compressed());
        for s in shares {
            transcript.update(s.to_bytes());
        }
        let rhos: Vec<Scalar> = (0u32..)
            .take(shares.len())
            .map(|i| {
                let mut t = transcript.clone();
                t.update(i.to_be_bytes());
                let digest: [u8; 32] = t.finalize().into();
                let mut le = [0u8; 32];
                le[..16].copy_from_slice(&digest[..16]);
                Option::from(Scalar::from_bytes_le(&le)).unwrap_or(Scalar::ONE)
            })
            .collect();
        let sigs: Vec<G2Projective> = shares.iter().map(|s| s.point.into()).collect();
        let pk_sum = G1Projective::multi_exp(&pks, &rhos).to_affine();
        let sig_sum = G2Projective::multi_exp(&sigs, &rhos).to_affine();
        if pairing_check(&pk_sum, &h, &sig_sum) {
            return Ok(());
        }
        let culprits = self.find_invalid(&h, shares);
        if culprits.is_empty() {
            return Err(BlsError::InvalidSignature);
        }
        Err(BlsError::InvalidShares { culprits })
    }

    fn verify_share_prepared(
        &self,
        h: &G2Prepared,
        share: &SignatureShare,
    ) -> Result<(), BlsError> {
        if share.key_set != self.id {
            return Err(BlsError::ForeignShare(share.id));
        }
        let pk = self
            .shares
            .get(&share.id)
            .ok_or(BlsError::UnknownParty(share.id))?;
        if pairing_check(pk, h, &share.point) {
            Ok(())
        } else {
            Err(BlsError::InvalidShares {
                culprits: vec![share.id],
            })
        }
    }

    /// Structural checks shared by every combination: enough shares, all of this set, all
    /// participants, no duplicates.
    fn check_shares(&self, shares: &[SignatureShare]) -> Result<(), BlsError> {
        if shares.len() < self.threshold() {
            return Err(BlsError::NotEnoughShares {
                needed: self.threshold(),
                got: shares.len(),
            });
        }
        for s in shares {
            if s.key_set != self.id {
                return Err(BlsError::ForeignShare(s.id));
            }
            if !self.shares.contains_key(&s.id) {
                return Err(BlsError::UnknownParty(s.id));
            }
        }
        let ids: Vec<PartyId> = shares.iter().map(|s| s.id).collect();
        shamir::check_distinct(&ids)?;
        Ok(())
    }

    /// Lagrange interpolation at zero in G2: `Σ λ_i · σ_i` by one multi-scalar multiplication.
    fn interpolate(shares: &[SignatureShare]) -> Result<G2Projective, BlsError> {
        let ids: Vec<PartyId> = shares.iter().map(|s| s.id).collect();
        let lambdas = shamir::lagrange_coefficients::<Scalar>(&ids)?;
        let points: Vec<G2Projective> = shares.iter().map(|s| s.point.into()).collect();
        Ok(G2Projective::multi_exp(&points, &lambdas))
    }

    /// Combines at least `T` signature shares **without verifying** the result: the caller
    /// must verify it (as [`PublicKeySet::combine`] does) before trusting it. All the given
    /// shares are interpolated, so one bad share among them spoils the result.
    pub fn combine_unverified(&self, shares: &[SignatureShare]) -> Result<Signature, BlsError> {
        self.check_shares(shares)?;
        let sig = Self::interpolate(shares)?;
        if bool::from(sig.is_identity()) {
            return Err(BlsError::Degenerate);
        }
        Ok(Signature(sig.to_affine()))
    }

    /// Combines at least `T` signature shares on `msg` into the group signature and verifies
    /// it against the group public key.
    ///
    /// Fast path: interpolate all the shares, verify once. Only if that fails is every share
    /// verified on its own, and the error names the parties whose shares are invalid.
    pub fn combine(&self, msg: &[u8], shares: &[SignatureShare]) -> Result<Signature, BlsError> {
        self.check_shares(shares)?;
        let h = G2Prepared::from(hash_to_g2(msg).to_affine());
        if let Some(sig) = self.fast_path(&h, shares)? {
            return Ok(sig);
        }
        let culprits = self.find_invalid(&h, shares);
        if culprits.is_empty() {
            // Valid shares always combine to a valid signature; keep an error, never a panic.
            return Err(BlsError::InvalidSignature);
        }
        Err(BlsError::InvalidShares { culprits })
    }

    /// Like [`PublicKeySet::combine`], but when some shares are invalid it drops them and
    /// combines the remaining valid ones if at least `T` are left. Returns the signature and
    /// the parties whose shares were dropped.
    pub fn combine_robust(
        &self,
        msg: &[u8],
        shares: &[SignatureShare],
    ) -> Result<(Signature, Vec<PartyId>), BlsError> {
        self.check_shares(shares)?;
        let h = G2Prepared::from(hash_to_g2(msg).to_affine());
        if let Some(sig) = self.fast_path(&h, shares)? {
            return Ok((sig, vec![]));
        }
        let culprits = self.find_invalid(&h, shares);
        let valid: Vec<SignatureShare> = shares
            .iter()
            .filter(|s| !culprits.contains(&s.id))
            .copied()
            .collect();
        if valid.len() < self.threshold() {
            return Err(BlsError::TooManyInvalidShares {
                needed: self.threshold(),
                valid: valid.len(),
                culprits,
            });
        }
        match self.fast_path(&h, &valid)? {
            Some(sig) => Ok((sig, culprits)),
            None => Err(BlsError::InvalidSignature),
        }
    }

    fn fast_path(
        &self,
        h: &G2Prepared,
        shares: &[SignatureShare],
    ) -> Result<Option<Signature>, BlsError> {
        let sig = Self::interpolate(shares)?;
        if bool::from(sig.is_identity()) {
            return Ok(None);
        }
        let sig = sig.to_affine();
        Ok(pairing_check(&self.public_key.0, h, &sig).then_some(Signature(sig)))
    }

    fn find_invalid(&self, h: &G2Prepared, shares: &[SignatureShare]) -> Vec<PartyId> {
        shares
            .iter()
            .filter(|s| self.verify_share_prepared(h, s).is_err())
            .map(|s| s.id)
            .collect()
    }

    /// Encoding: `n` (u32 big-endian), the `n` participant ids (u32 big-endian, increasing),
    /// then the `T` compressed G1 points of the commitment (`T` follows from the length).
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.shares.len();
        let mut out = Vec::with_capacity(4 + 4 * n + PUBLIC_KEY_LEN * self.threshold());
        out.extend_from_slice(&(n as u32).to_be_bytes());
        for id in self.shares.keys() {
            out.extend_from_slice(&id.get().to_be_bytes());
        }
        out.extend_from_slice(&self.commitment.to_bytes());
        out
    }

    /// Decodes [`PublicKeySet::to_bytes`] and recomputes every public key share.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        const WHAT: &str = "public key set";
        let (n, rest) = split_u32(bytes).ok_or(malformed(WHAT, "truncated"))?;
        let n = n as usize;
        let id_bytes = n.checked_mul(4).ok_or(malformed(WHAT, "length"))?;
        if rest.len() < id_bytes {
            return Err(malformed(WHAT, "truncated"));
        }
        let (ids_raw, points_raw) = rest.split_at(id_bytes);
        let ids = ids_raw
            .chunks_exact(4)
            .map(decode_party_id)
            .collect::<Result<Vec<_>, _>>()?;
        if !ids.windows(2).all(|w| w.first() < w.get(1)) {
            return Err(malformed(WHAT, "participants not strictly increasing"));
        }
        if points_raw.is_empty() || points_raw.len() % PUBLIC_KEY_LEN != 0 {
            return Err(malformed(WHAT, "commitment length"));
        }
        let points = points_raw
            .chunks_exact(PUBLIC_KEY_LEN)
            .map(|c| decode_g1(c, "commitment point").map(G1Projective::from))
            .collect::<Result<Vec<_>, _>>()?;
        let commitment = Commitment::from_points(points)?;
        Self::new(commitment, &ids)
    }
}

impl fmt::Debug for PublicKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeySet")
            .field("id", &self.id)
            .field("threshold", &self.threshold())
            .field("participants", &self.shares.len())
            .field("public_key", &self.public_key)
            .finish()
    }
}

/// One party's share `f(id)` of the secret key, tagged with its key set. Zeroized on drop;
/// `Debug` prints `<redacted>`; no `Serialize` (use [`KeyShare::to_bytes`] deliberately).
#[derive(Clone)]
pub struct KeyShare {
    key_set: KeySetId,
    share: SecretShare<Scalar>,
}

impl KeyShare {
    /// A key share of `set`; refuses a share that does not match its public key share.
    pub fn new(share: SecretShare<Scalar>, set: &PublicKeySet) -> Result<Self, BlsError> {
        let ks = Self {
            key_set: set.id(),
            share,
        };
        set.check_key_share(&ks)?;
        Ok(ks)
    }

    /// The holder.
    pub fn id(&self) -> PartyId {
        self.share.id
    }

    /// The secret Shamir share, for resharing it to the next epoch's holders (the node's
    /// reshare only: it never leaves the node).
    pub fn secret_share(&self) -> &SecretShare<Scalar> {
        &self.share
    }

    /// The key set this share belongs to.
    pub fn key_set_id(&self) -> KeySetId {
        self.key_set
    }

    /// The public key share `f(id) · g1`.
    pub fn public_key_share(&self) -> PublicKeyShare {
        PublicKeyShare {
            key_set: self.key_set,
            id: self.share.id,
            point: (G1Projective::generator() * self.share.value).to_affine(),
        }
    }

    /// The signature share `f(id) · H(msg)`.
    pub fn sign(&self, msg: &[u8]) -> SignatureShare {
        SignatureShare {
            key_set: self.key_set,
            id: self.share.id,
            point: (hash_to_g2(msg) * self.share.value).to_affine(),
        }
    }

    /// Encoding: key set id (32 bytes), party id (u32 big-endian), share (32-byte big-endian
    /// scalar), in a buffer zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(KEY_SHARE_LEN));
        out.extend_from_slice(&self.key_set.0);
        out.extend_from_slice(&self.share.id.get().to_be_bytes());
        out.extend_from_slice(Zeroizing::new(self.share.value.to_bytes_be()).as_ref());
        out
    }

    /// Decodes [`KeyShare::to_bytes`]. This checks the encoding only; check the share against
    /// its key set with [`PublicKeySet::check_key_share`] after loading it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        const WHAT: &str = "key share";
        if bytes.len() != KEY_SHARE_LEN {
            return Err(malformed(WHAT, "length"));
        }
        let (key_set, rest) = bytes.split_at(KEY_SET_ID_LEN);
        let (id, value) = rest.split_at(4);
        Ok(Self {
            key_set: KeySetId::from_bytes(key_set)?,
            share: SecretShare {
                id: decode_party_id(id)?,
                value: decode_scalar(value, WHAT)?,
            },
        })
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyShare({:?}, {}, <redacted>)",
            self.share.id, self.key_set
        )
    }
}

/// A participant's public key share `f(id) · g1`, tagged with its key set.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKeyShare {
    key_set: KeySetId,
    id: PartyId,
    point: G1Affine,
}

impl PublicKeyShare {
    /// The participant.
    pub fn id(&self) -> PartyId {
        self.id
    }

    /// The key set.
    pub fn key_set_id(&self) -> KeySetId {
        self.key_set
    }

    /// The point `f(id) · g1`.
    pub fn as_affine(&self) -> &G1Affine {
        &self.point
    }

    /// Verifies a signature share on `msg` by this participant.
    pub fn verify(&self, msg: &[u8], share: &SignatureShare) -> Result<(), BlsError> {
        if share.key_set != self.key_set {
            return Err(BlsError::ForeignShare(share.id));
        }
        if share.id != self.id {
            return Err(BlsError::UnknownParty(share.id));
        }
        let h = G2Prepared::from(hash_to_g2(msg).to_affine());
        if pairing_check(&self.point, &h, &share.point) {
            Ok(())
        } else {
            Err(BlsError::InvalidShares {
                culprits: vec![share.id],
            })
        }
    }

    /// Encoding: key set id (32 bytes), party id (u32 big-endian), compressed G1 point.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_SHARE_LEN] {
        let mut out = [0u8; PUBLIC_KEY_SHARE_LEN];
        let (a, rest) = out.split_at_mut(KEY_SET_ID_LEN);
        let (b, c) = rest.split_at_mut(4);
        a.copy_from_slice(&self.key_set.0);
        b.copy_from_slice(&self.id.get().to_be_bytes());
        c.copy_from_slice(&self.point.to_compressed());
        out
    }

    /// Decodes [`PublicKeyShare::to_bytes`]; refuses a zero id and invalid points.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        const WHAT: &str = "public key share";
        if bytes.len() != PUBLIC_KEY_SHARE_LEN {
            return Err(malformed(WHAT, "length"));
        }
        let (key_set, rest) = bytes.split_at(KEY_SET_ID_LEN);
        let (id, point) = rest.split_at(4);
        Ok(Self {
            key_set: KeySetId::from_bytes(key_set)?,
            id: decode_party_id(id)?,
            point: decode_g1(point, WHAT)?,
        })
    }
}

impl fmt::Debug for PublicKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKeyShare({:?}, {})",
            self.id,
            hex::encode(self.point.to_compressed())
        )
    }
}

/// A participant's signature share `f(id) · H(m)`, tagged with its key set.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignatureShare {
    key_set: KeySetId,
    id: PartyId,
    point: G2Affine,
}

impl SignatureShare {
    /// The signer.
    pub fn id(&self) -> PartyId {
        self.id
    }

    /// The key set.
    pub fn key_set_id(&self) -> KeySetId {
        self.key_set
    }

    /// The point `f(id) · H(m)`.
    pub fn as_affine(&self) -> &G2Affine {
        &self.point
    }

    /// Encoding: key set id (32 bytes), party id (u32 big-endian), compressed G2 point.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_SHARE_LEN] {
        let mut out = [0u8; SIGNATURE_SHARE_LEN];
        let (a, rest) = out.split_at_mut(KEY_SET_ID_LEN);
        let (b, c) = rest.split_at_mut(4);
        a.copy_from_slice(&self.key_set.0);
        b.copy_from_slice(&self.id.get().to_be_bytes());
        c.copy_from_slice(&self.point.to_compressed());
        out
    }

    /// Decodes [`SignatureShare::to_bytes`]; refuses a zero id, the point at infinity and
    /// points off the curve or outside the subgroup.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        const WHAT: &str = "signature share";
        if bytes.len() != SIGNATURE_SHARE_LEN {
            return Err(malformed(WHAT, "length"));
        }
        let (key_set, rest) = bytes.split_at(KEY_SET_ID_LEN);
        let (id, point) = rest.split_at(4);
        Ok(Self {
            key_set: KeySetId::from_bytes(key_set)?,
            id: decode_party_id(id)?,
            point: decode_g2(point, WHAT)?,
        })
    }
}

impl fmt::Debug for SignatureShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SignatureShare({:?}, {})",
            self.id,
            hex::encode(self.point.to_compressed())
        )
    }
}

/// A trusted-dealer `T`-of-`n` sharing of a fresh random key among `ids`.
///
/// **For tests, benchmarks and examples only**: the dealer knows the whole key. The network
/// never deals keys; it runs the DKG of `lit-dkg`, where nobody ever knows the secret.
pub fn deal_with_trusted_dealer(
    threshold: usize,
    ids: &[PartyId],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(PublicKeySet, Vec<KeyShare>), BlsError> {
    let secret = SecretKey::random(rng);
    deal_key_with_trusted_dealer(&secret, threshold, ids, rng)
}

/// A trusted-dealer sharing of the given key (see [`deal_with_trusted_dealer`]).
pub fn deal_key_with_trusted_dealer(
    secret: &SecretKey,
    threshold: usize,
    ids: &[PartyId],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(PublicKeySet, Vec<KeyShare>), BlsError> {
    let (shares, commitment) = shamir::deal::<Scalar, G1Projective>(secret.0, threshold, ids, rng)?;
    let set = PublicKeySet::new(commitment, ids)?;
    let shares = shares
        .into_iter()
        .map(|s| KeyShare::new(s, &set))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((set, shares))
}

// ---------------------------------------------------------------------------------------------
// Decoding helpers
// ---------------------------------------------------------------------------------------------

fn malformed(what: &'static str, reason: &'static str) -> BlsError {
    BlsError::Malformed { what, reason }
}

fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

pub(crate) fn decode_party_id(bytes: &[u8]) -> Result<PartyId, BlsError> {
    let arr: [u8; 4] = bytes
        .try_into()
        .map_err(|_| malformed("party id", "length"))?;
    PartyId::new(u32::from_be_bytes(arr)).ok_or(BlsError::ZeroId)
}

fn decode_scalar(bytes: &[u8], what: &'static str) -> Result<Scalar, BlsError> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| malformed(what, "length"))?;
    let arr = Zeroizing::new(arr);
    Option::from(Scalar::from_bytes_be(&arr)).ok_or(malformed(what, "scalar not canonical"))
}

pub(crate) fn decode_g1(bytes: &[u8], what: &'static str) -> Result<G1Affine, BlsError> {
    let arr: [u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| malformed(what, "length"))?;
    let p: G1Affine = Option::from(G1Affine::from_compressed(&arr))
        .ok_or(malformed(what, "not a point of the G1 subgroup"))?;
    if bool::from(p.is_identity()) {
        return Err(malformed(what, "point at infinity"));
    }
    Ok(p)
}

pub(crate) fn decode_g2(bytes: &[u8], what: &'static str) -> Result<G2Affine, BlsError> {
    let arr: [u8; SIGNATURE_LEN] = bytes.try_into().map_err(|_| malformed(what, "length"))?;
    let p: G2Affine = Option::from(G2Affine::from_compressed(&arr))
        .ok_or(malformed(what, "not a point of the G2 subgroup"))?;
    if bool::from(p.is_identity()) {
        return Err(malformed(what, "point at infinity"));
    }
    Ok(p)
}

// ---------------------------------------------------------------------------------------------
// serde: lowercase hex in human-readable formats, raw bytes otherwise
// ---------------------------------------------------------------------------------------------

/// Implements `Serialize`/`Deserialize` through `to_bytes`/`from_bytes`.
macro_rules! serde_via_bytes {
    ($($t:ty),* $(,)?) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let bytes = self.to_bytes();
                let bytes: &[u8] = bytes.as_ref();
                if s.is_human_readable() {
                    s.serialize_str(&hex::encode(bytes))
                } else {
                    s.serialize_bytes(bytes)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let bytes = $crate::bls::serde_bytes::deserialize(d)?;
                <$t>::from_bytes(&bytes).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
pub(crate) use serde_via_bytes;

serde_via_bytes!(
    PublicKey,
    Signature,
    KeySetId,
    PublicKeySet,
    PublicKeyShare,
    SignatureShare
);

/// Reads bytes written by `serde_via_bytes!`: a hex string in human-readable formats, a byte
/// string (or a sequence of bytes) otherwise.
pub(crate) mod serde_bytes {
    use std::fmt;

    use serde::de::{Error, SeqAccess, Visitor};

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a hex string or bytes")
        }

        fn visit_str<E: Error>(self, v: &str) -> Result<Vec<u8>, E> {
            hex::decode(v).map_err(E::custom)
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }

    /// Deserializes bytes from hex (human-readable) or raw bytes.
    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            d.deserialize_str(BytesVisitor)
        } else {
            d.deserialize_bytes(BytesVisitor)
        }
    }
}
