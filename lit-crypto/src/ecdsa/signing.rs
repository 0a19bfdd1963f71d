//! Signature shares (one local step per node) and their combination by the client.

use std::collections::{BTreeMap, BTreeSet};

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::scalar::IsHigh;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{AffinePoint, ProjectivePoint, Scalar, U256};
use serde::{Deserialize, Serialize};

use crate::protocol::PartyId;
use crate::shamir::lagrange_coefficients_at;

use super::keys::{hash_to_scalar, pkp_public_key, pkp_tweak};
use super::{EcdsaError, KeyShare, Presignature, PresignatureId, RERANDOMIZE_DST};

/// The 32-byte digest that is signed (ECDSA's `H(m)`; reduced modulo the group order, as every
/// secp256k1 verifier does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDigest(pub [u8; 32]);

impl MessageDigest {
    /// A raw 32-byte digest, signed as is (for example an Ethereum transaction hash).
    pub fn prehashed(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// The EIP-191 personal-message digest of `message` (see [`crate::eth::eip191_hash`]).
    pub fn eip191(message: &[u8]) -> Self {
        Self(crate::eth::eip191_hash(message))
    }

    fn scalar(&self) -> Scalar {
        <Scalar as Reduce<U256>>::reduce_bytes(&self.0.into())
    }
}

/// What is being signed: with which PKP (root key and `key_id`) and which digest. Nodes and the
/// client build the same context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningContext {
    /// The network's root public key.
    pub root_public_key: AffinePoint,
    /// The PKP's key id (hashed into the tweak).
    pub key_id: Vec<u8>,
    /// The digest to sign.
    pub digest: MessageDigest,
}

impl SigningContext {
    /// The PKP public key `X_root + H(key_id)·G`.
    pub fn public_key(&self) -> Result<AffinePoint, EcdsaError> {
        pkp_public_key(&self.root_public_key, &self.key_id)
    }
}

/// The durable record of used presignatures, kept by each node.
///
/// Contract: [`mark_used`](UsedPresignatures::mark_used) returns `Ok` only after the id is
/// recorded *durably* (committed to storage) and returns
/// [`EcdsaError::PresignatureReused`] if it was already recorded. [`sign_share`] calls it
/// before computing the share, so a share never leaves a node for a presignature that could be
/// used again after a crash.
pub trait UsedPresignatures {
    /// Records `id` as used, refusing an id seen before.
    fn mark_used(&mut self, id: PresignatureId) -> Result<(), EcdsaError>;
}

/// An in-memory [`UsedPresignatures`] (tests, the client, and single-process tools; a node
/// uses its transactional store).
#[derive(Debug, Default, Clone)]
pub struct InMemoryUsedPresignatures(BTreeSet<PresignatureId>);

impl UsedPresignatures for InMemoryUsedPresignatures {
    fn mark_used(&mut self, id: PresignatureId) -> Result<(), EcdsaError> {
        if self.0.insert(id) {
            Ok(())
        } else {
            Err(EcdsaError::PresignatureReused(id))
        }
    }
}

/// One node's signature share, sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureShare {
    /// The sender.
    pub party: PartyId,
    /// The presignature it was made with.
    pub presignature: PresignatureId,
    /// The presignature's participants (sorted).
    pub participants: Vec<PartyId>,
    /// The presignature's threshold.
    pub threshold: u32,
    /// The presignature's nonce point `R` (before re-randomisation).
    pub big_r: AffinePoint,
    /// `s_i = δ⁻¹·(h·k_i + r'·(σ_i + t·k_i))`.
    pub s: Scalar,
}

impl serde::Serialize for PresignatureId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for PresignatureId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <[u8; 32]>::deserialize(d).map(PresignatureId)
    }
}

/// The public re-randomiser `δ = H(presignature id ‖ R ‖ X_pkp ‖ digest)` (DST
/// [`RERANDOMIZE_DST`]); the signature uses the nonce point `R' = δ·R`.
pub fn rerandomizer(
    presignature: &PresignatureId,
    big_r: &AffinePoint,
    pkp_public_key: &AffinePoint,
    digest: &MessageDigest,
) -> Result<Scalar, EcdsaError> {
    let r = big_r.to_encoded_point(true);
    let x = pkp_public_key.to_encoded_point(true);
    let delta = hash_to_scalar(
        RERANDOMIZE_DST,
        &[&presignature.0, r.as_bytes(), x.as_bytes(), &digest.0],
    )?;
    if bool::from(delta.is_zero()) {
        return Err(EcdsaError::Degenerate("zero re-randomiser"));
    }
    Ok(delta)
}

/// The public values every share of one signature shares: `δ`, `R' = δ·R` and `r' = x(R')`.
struct Nonce {
    delta: Scalar,
    big_r: AffinePoint,
    r: Scalar,
}

fn nonce(
    id: &PresignatureId,
    big_r: &AffinePoint,
    pkp: &AffinePoint,
    digest: &MessageDigest,
) -> Result<Nonce, EcdsaError> {
    let delta = rerandomizer(id, big_r, pkp, digest)?;
    let rerandomized = (ProjectivePoint::from(*big_r) * delta).to_affine();
    let r = <Scalar as Reduce<U256>>::reduce_bytes(&rerandomized.x());
    if bool::from(r.is_zero()) {
        return Err(EcdsaError::Degenerate("zero r"));
    }
    Ok(Nonce {
        delta,
        big_r: rerandomized,
        r,
    })
}

/// A node's signature share for `context`, consuming `presignature`.
///
/// Checks that the presignature belongs to this key share (holder, root key, key-share epoch),
/// then records the presignature as used in `used` (refusing a second use with
/// [`EcdsaError::PresignatureReused`]) and only then computes
/// `s_i = δ⁻¹·(h·k_i + r'·(σ_i + t·k_i))`.
pub fn sign_share(
    key: &KeyShare,
    presignature: Presignature,
    context: &SigningContext,
    used: &mut impl UsedPresignatures,
) -> Result<SignatureShare, EcdsaError> {
    if presignature.holder() != key.id() {
        return Err(EcdsaError::InvalidParameters(format!(
            "presignature of {} used with the key share of {}",
            presignature.holder(),
            key.id()
        )));
    }
    if presignature.root_public_key() != key.public_key()
        || presignature.key_fingerprint() != key.fingerprint()
        || context.root_public_key != key.public_key()
    {
        return Err(EcdsaError::KeyMismatch);
    }
    let pkp = context.public_key()?;
    let t = pkp_tweak(&context.key_id)?;
    let id = presignature.id();
    let big_r = presignature.big_r();
    let nonce = nonce(&id, &big_r, &pkp, &context.digest)?;
    used.mark_used(id)?;
    let h = context.digest.scalar();
    let k = presignature.k();
    let sigma_pkp = presignature.sigma() + t * k;
    let delta_inv =
        Option::<Scalar>::from(nonce.delta.invert()).ok_or(EcdsaError::Degenerate("δ"))?;
    let s = delta_inv * (h * k + nonce.r * sigma_pkp);
    Ok(SignatureShare {
        party: key.id(),
        presignature: id,
        participants: presignature.participants().to_vec(),
        threshold: u32::try_from(presignature.threshold())
            .map_err(|_| EcdsaError::InvalidParameters("threshold".into()))?,
        big_r,
        s,
    })
}

/// A standard secp256k1 ECDSA signature with low `s` and its recovery id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoverableSignature {
    /// `r`, big-endian.
    pub r: [u8; 32],
    /// `s <= n/2`, big-endian.
    pub s: [u8; 32],
    /// Recovery id `v ∈ {0, 1, 2, 3}`: bit 0 is the parity of `R.y`, bit 1 says `R.x >= n`.
    pub recovery_id: u8,
}

impl RecoverableSignature {
    /// `r ‖ s ‖ v` with `v ∈ {0, 1}` style recovery id (65 bytes).
    pub fn to_bytes(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[..32].copy_from_slice(&self.r);
        out[32..64].copy_from_slice(&self.s);
        out[64] = self.recovery_id;
        out
    }

    /// `r ‖ s ‖ v` with Ethereum's `v = 27 + recovery id` (the `personal_sign` format).
    pub fn to_ethereum_bytes(&self) -> [u8; 65] {
        let mut out = self.to_bytes();
        out[64] = 27 + self.recovery_id;
        out
    }

    /// As k256 types.
    pub fn to_k256(&self) -> Result<(Signature, RecoveryId), EcdsaError> {
        let sig = Signature::from_scalars(self.r, self.s)
            .map_err(|_| EcdsaError::Malformed("signature scalars"))?;
        let recid =
            RecoveryId::from_byte(self.recovery_id).ok_or(EcdsaError::Malformed("recovery id"))?;
        Ok((sig, recid))
    }

    /// Recovers the signer's public key from the signature and the digest.
    pub fn recover(&self, digest: &MessageDigest) -> Result<AffinePoint, EcdsaError> {
        let (sig, recid) = self.to_k256()?;
        VerifyingKey::recover_from_prehash(&digest.0, &sig, recid)
            .map(|vk| *vk.as_affine())
            .map_err(|_| EcdsaError::CombinedSignatureInvalid)
    }
}

/// Combines signature shares into a verified, low-`s`, recoverable signature (client side).
///
/// The shares must all be made with the same presignature, one from each of its `T`
/// participants. Shares that name another presignature than the majority
/// ([`EcdsaError::PresignatureMismatch`]), senders outside the presignature's group
/// ([`EcdsaError::NotAParticipant`]), duplicates and missing shares are refused by sender
/// before any arithmetic; the combination is then verified (plain ECDSA verification and
/// public-key recovery under the PKP key) and [`EcdsaError::CombinedSignatureInvalid`] is
/// returned if it fails.
pub fn combine(
    context: &SigningContext,
    shares: &[SignatureShare],
) -> Result<RecoverableSignature, EcdsaError> {
    let mut seen = BTreeSet::new();
    for share in shares {
        if !seen.insert(share.party) {
            return Err(EcdsaError::DuplicateShare(share.party));
        }
    }
    // Group by presignature; the largest group (ties: the one holding the smallest party id)
    // is taken as the intended one and the others are blamed.
    let mut groups: BTreeMap<Vec<u8>, Vec<&SignatureShare>> = BTreeMap::new();
    for share in shares {
        groups.entry(group_key(share)).or_default().push(share);
    }
    let majority = groups
        .values()
        .max_by(|a, b| {
            a.len()
                .cmp(&b.len())
                .then_with(|| smallest(b).cmp(&smallest(a)))
        })
        .cloned()
        .unwrap_or_default();
    let first = majority
        .first()
        .copied()
        .ok_or(EcdsaError::NotEnoughShares { needed: 2, got: 0 })?;
    if majority.len() != shares.len() {
        let culprits = shares
            .iter()
            .filter(|s| !majority.iter().any(|m| m.party == s.party))
            .map(|s| s.party)
            .collect();
        return Err(EcdsaError::PresignatureMismatch { culprits });
    }
    for share in shares {
        if !first.participants.contains(&share.party) {
            return Err(EcdsaError::NotAParticipant(share.party));
        }
    }
    let threshold = first.threshold as usize;
    if threshold < 2 || first.participants.len() != threshold {
        return Err(EcdsaError::Malformed(
            "presignature group size differs from its threshold",
        ));
    }
    if shares.len() < threshold {
        return Err(EcdsaError::NotEnoughShares {
            needed: threshold,
            got: shares.len(),
        });
    }
    let pkp = context.public_key()?;
    let nonce = nonce(&first.presignature, &first.big_r, &pkp, &context.digest)?;
    let verifying_key =
        VerifyingKey::from_affine(pkp).map_err(|_| EcdsaError::Degenerate("PKP public key"))?;
    let all: Vec<&SignatureShare> = shares.iter().collect();
    finish(&all, &nonce, context, &verifying_key).ok_or(EcdsaError::CombinedSignatureInvalid)
}

fn group_key(share: &SignatureShare) -> Vec<u8> {
    let mut key = share.presignature.0.to_vec();
    key.extend_from_slice(share.big_r.to_encoded_point(true).as_bytes());
    key.extend_from_slice(&share.threshold.to_be_bytes());
    for p in &share.participants {
        key.extend_from_slice(&p.get().to_be_bytes());
    }
    key
}

fn smallest(group: &[&SignatureShare]) -> Option<PartyId> {
    group.iter().map(|s| s.party).min()
}

/// Interpolates `s` from `chosen`, normalises, and returns the signature if it verifies under
/// `key` (plain ECDSA verification and public-key recovery).
fn finish(
    chosen: &[&SignatureShare],
    nonce: &Nonce,
    context: &SigningContext,
    key: &VerifyingKey,
) -> Option<RecoverableSignature> {
    let ids: Vec<PartyId> = chosen.iter().map(|s| s.party).collect();
    let lambdas = lagrange_coefficients_at::<Scalar>(&ids, Scalar::ZERO).ok()?;
    let mut s = chosen
        .iter()
        .zip(lambdas)
        .fold(Scalar::ZERO, |acc, (c, l)| acc + c.s * l);
    let x = nonce.big_r.x();
    let is_x_reduced = nonce.r.to_bytes() != x;
    let mut is_y_odd = bool::from(nonce.big_r.y_is_odd());
    if bool::from(s.is_high()) {
        s = -s;
        is_y_odd = !is_y_odd;
    }
    let signature = RecoverableSignature {
        r: nonce.r.to_bytes().into(),
        s: s.to_bytes().into(),
        recovery_id: RecoveryId::new(is_y_odd, is_x_reduced).to_byte(),
    };
    let (sig, recid) = signature.to_k256().ok()?;
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    key.verify_prehash(&context.digest.0, &sig).ok()?;
    let recovered = VerifyingKey::recover_from_prehash(&context.digest.0, &sig, recid).ok()?;
    (recovered == *key).then_some(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip191_matches_known_vector() {
        // personal_sign digest of "hello" (well-known value, e.g. ethers `hashMessage("hello")`).
        assert_eq!(
            hex_encode(&MessageDigest::eip191(b"hello").0),
            "50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750"
        );
    }

    fn hex_encode(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
