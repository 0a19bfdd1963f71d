//! Root key shares and PKP key derivation.

use std::fmt;

use k256::elliptic_curve::hash2curve::{ExpandMsgXmd, GroupDigest};
use k256::{AffinePoint, ProjectivePoint, Scalar, Secp256k1};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::protocol::{is_valid_threshold, PartyId};
use crate::shamir::{Commitment, SecretShare};

use super::{EcdsaError, PKP_TWEAK_DST};

/// One node's share of the network's secp256k1 root key, as produced by `lit-dkg` (DKG,
/// refresh or reshare) or, in tests, by [`crate::shamir::deal`].
///
/// It is valid by construction: the secret share matches the Feldman commitment. Zeroized on
/// drop; `Debug` prints `<redacted>`.
#[derive(Clone)]
pub struct KeyShare {
    id: PartyId,
    secret: Scalar,
    commitment: Commitment<ProjectivePoint>,
}

impl KeyShare {
    /// A key share from a Shamir share and the Feldman commitment of the sharing polynomial
    /// (evaluated at `x = id`, the same convention as [`crate::shamir`] and `lit-dkg`).
    ///
    /// Refuses a share that does not match the commitment, a threshold below 2, and a zero
    /// public key.
    pub fn new(
        share: &SecretShare<Scalar>,
        commitment: Commitment<ProjectivePoint>,
    ) -> Result<Self, EcdsaError> {
        commitment
            .verify_share(share)
            .map_err(|_| EcdsaError::InvalidKeyShare(share.id))?;
        if commitment.threshold() < 2 {
            return Err(EcdsaError::InvalidParameters(
                "threshold must be at least 2".into(),
            ));
        }
        if commitment.public_key() == ProjectivePoint::IDENTITY {
            return Err(EcdsaError::Degenerate("root public key is the identity"));
        }
        Ok(Self {
            id: share.id,
            secret: share.value,
            commitment,
        })
    }

    /// The holder.
    pub fn id(&self) -> PartyId {
        self.id
    }

    /// The threshold `T` of the sharing.
    pub fn threshold(&self) -> usize {
        self.commitment.threshold()
    }

    /// Checks that `n` parties can use this sharing (`n/2 < T <= n`).
    pub fn check_threshold_for(&self, n: usize) -> bool {
        is_valid_threshold(n, self.threshold())
    }

    /// The root public key `X = x·G`.
    pub fn public_key(&self) -> AffinePoint {
        self.commitment.public_key().to_affine()
    }

    /// The public key share `x_j·G` of any party `j`.
    pub fn public_share(&self, party: PartyId) -> ProjectivePoint {
        self.commitment.public_share(party)
    }

    /// The Feldman commitment of the sharing.
    pub fn commitment(&self) -> &Commitment<ProjectivePoint> {
        &self.commitment
    }

    /// A hash of the public sharing (commitment), identifying the key-share *epoch*: it changes
    /// at every refresh and reshare while the public key stays the same. Presignatures record
    /// it and are refused under another epoch.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"lit-ecdsa key-share epoch v1");
        h.update(self.commitment.to_bytes());
        h.finalize().into()
    }

    /// The secret Shamir share, for resharing it to the next epoch's holders (the node's
    /// reshare only: it never leaves the node).
    pub fn secret_share(&self) -> SecretShare<Scalar> {
        SecretShare {
            id: self.id,
            value: self.secret,
        }
    }

    /// The secret share as 32 big-endian bytes, for the node's encrypted store only.
    pub fn secret_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.secret.to_bytes().into())
    }

    pub(crate) fn secret(&self) -> Scalar {
        self.secret
    }
}

impl Drop for KeyShare {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyShare({:?}, T = {}, <redacted>)",
            self.id,
            self.threshold()
        )
    }
}

/// The PKP tweak `t = H(key_id)`: RFC 9380 `hash_to_field` into the secp256k1 scalar field with
/// `expand_message_xmd(SHA-256)` and the DST [`PKP_TWEAK_DST`].
pub fn pkp_tweak(key_id: &[u8]) -> Result<Scalar, EcdsaError> {
    hash_to_scalar(PKP_TWEAK_DST, &[key_id])
}

/// The public key of the PKP `key_id`: `X_root + H(key_id)·G`. Anyone can compute it.
pub fn pkp_public_key(root: &AffinePoint, key_id: &[u8]) -> Result<AffinePoint, EcdsaError> {
    let t = pkp_tweak(key_id)?;
    let point = ProjectivePoint::from(*root) + ProjectivePoint::GENERATOR * t;
    if point == ProjectivePoint::IDENTITY {
        return Err(EcdsaError::Degenerate("PKP public key is the identity"));
    }
    Ok(point.to_affine())
}

pub(crate) fn hash_to_scalar(dst: &[u8], msgs: &[&[u8]]) -> Result<Scalar, EcdsaError> {
    Secp256k1::hash_to_scalar::<ExpandMsgXmd<Sha256>>(msgs, &[dst])
        .map_err(|_| EcdsaError::InvalidParameters("hash_to_scalar input too long".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn pkp_tweak_is_pinned_and_domain_separated() {
        // snapshot: changing the DST or the hash changes every PKP address on the network
        assert_eq!(
            hex(&pkp_tweak(b"lit-pkp-0").unwrap().to_bytes()),
            "cdac4714a855631dd4334b60e9bdb966e544207dbafad19b0d0061883a83cfc4"
        );
        assert_ne!(pkp_tweak(b"a").unwrap(), pkp_tweak(b"b").unwrap());
        assert_ne!(
            pkp_tweak(b"a").unwrap(),
            hash_to_scalar(super::super::RERANDOMIZE_DST, &[b"a"]).unwrap()
        );
        // anyone derives the PKP key from public data; it equals (x + t)·G
        let x = Scalar::from(12345u64);
        let root = (ProjectivePoint::GENERATOR * x).to_affine();
        let t = pkp_tweak(b"id").unwrap();
        assert_eq!(
            pkp_public_key(&root, b"id").unwrap(),
            (ProjectivePoint::GENERATOR * (x + t)).to_affine()
        );
    }
}
