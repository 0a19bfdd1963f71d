//! Shamir secret sharing and Feldman commitments, generic over any prime-order group of the
//! `ff`/`group` 0.13 generation (BLS12-381 G1/G2 through `blstrs`, secp256k1 through `k256`).
//!
//! A `T`-of-`n` sharing uses a polynomial `f` of degree `T - 1` with `f(0)` the secret; party `i`
//! (a [`PartyId`], never zero) holds `f(i)`. Any `T` shares recover `f(0)` by Lagrange
//! interpolation; fewer reveal nothing. A Feldman commitment `C_k = a_k · G` to the coefficients
//! lets anyone check a share (`f(i) · G == Σ C_k · i^k`) and compute every public key share.
//!
//! This is written here rather than taken from `vsss-rs` so that identifiers are [`PartyId`]s by
//! type, Lagrange coefficients use one batched inversion, and secrets zeroize through our own
//! types; the maths is the textbook one (Shamir 1979, Feldman 1987).

use std::collections::BTreeSet;
use std::fmt;

use ff::{Field, PrimeField};
use group::{Group, GroupEncoding};
use rand_core::{CryptoRng, RngCore};

use crate::protocol::PartyId;

/// Errors of sharing, interpolation and commitment checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShamirError {
    /// The threshold is zero or larger than the number of parties.
    #[error("invalid threshold {threshold} for {parties} parties")]
    InvalidThreshold {
        /// Requested threshold.
        threshold: usize,
        /// Number of parties.
        parties: usize,
    },
    /// An identifier appears twice.
    #[error("duplicate party id {0}")]
    DuplicateId(PartyId),
    /// Fewer points than needed.
    #[error("need {needed} shares, got {got}")]
    NotEnoughShares {
        /// Shares needed.
        needed: usize,
        /// Shares given.
        got: usize,
    },
    /// A share does not match the commitment of its dealer.
    #[error("share of party {0} does not match the commitment")]
    ShareMismatch(PartyId),
    /// Bytes that do not encode a valid value.
    #[error("malformed encoding: {0}")]
    Malformed(&'static str),
}

/// A polynomial over the scalar field, lowest coefficient first. Zeroized on drop.
#[derive(Clone)]
pub struct Polynomial<F: PrimeField> {
    coefficients: Vec<F>,
}

impl<F: PrimeField> Polynomial<F> {
    /// A random polynomial of degree `threshold - 1` with `f(0) = secret`.
    pub fn random(
        secret: F,
        threshold: usize,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, ShamirError> {
        if threshold == 0 {
            return Err(ShamirError::InvalidThreshold {
                threshold,
                parties: 0,
            });
        }
        let mut coefficients = Vec::with_capacity(threshold);
        coefficients.push(secret);
        coefficients.extend((1..threshold).map(|_| F::random(&mut *rng)));
        Ok(Self { coefficients })
    }

    /// `f(0)`.
    pub fn constant(&self) -> F {
        self.coefficients.first().copied().unwrap_or(F::ZERO)
    }

    /// Number of coefficients (the threshold `T`).
    pub fn threshold(&self) -> usize {
        self.coefficients.len()
    }

    /// `f(x)` by Horner's rule.
    pub fn evaluate(&self, x: F) -> F {
        self.coefficients
            .iter()
            .rev()
            .fold(F::ZERO, |acc, c| acc * x + c)
    }

    /// The share of `id`.
    pub fn share(&self, id: PartyId) -> SecretShare<F> {
        SecretShare {
            id,
            value: self.evaluate(id.to_scalar()),
        }
    }

    /// The Feldman commitment `(a_k · G)_k` to the coefficients.
    pub fn commit<G: Group<Scalar = F>>(&self) -> Commitment<G> {
        Commitment {
            points: self
                .coefficients
                .iter()
                .map(|a| G::generator() * a)
                .collect(),
        }
    }
}

impl<F: PrimeField> Drop for Polynomial<F> {
    fn drop(&mut self) {
        for c in &mut self.coefficients {
            *c = F::ZERO;
        }
    }
}

impl<F: PrimeField> fmt::Debug for Polynomial<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Polynomial(degree {}, <redacted>)", self.threshold() - 1)
    }
}

/// One party's secret share `f(id)`. Zeroized on drop; `Debug` does not print the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretShare<F: PrimeField> {
    /// The holder.
    pub id: PartyId,
    /// `f(id)`.
    pub value: F,
}

impl<F: PrimeField> SecretShare<F> {
    /// The share as a point: `value · G`.
    pub fn public<G: Group<Scalar = F>>(&self) -> G {
        G::generator() * self.value
    }
}

impl<F: PrimeField> Drop for SecretShare<F> {
    fn drop(&mut self) {
        self.value = F::ZERO;
    }
}

impl<F: PrimeField> fmt::Debug for SecretShare<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretShare({:?}, <redacted>)", self.id)
    }
}

/// A Feldman commitment to a polynomial: `C_k = a_k · G`, so `C_0` is the public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commitment<G: Group> {
    points: Vec<G>,
}

impl<G: Group + GroupEncoding> Commitment<G> {
    /// A commitment from its points (lowest degree first); at least one point.
    pub fn from_points(points: Vec<G>) -> Result<Self, ShamirError> {
        if points.is_empty() {
            return Err(ShamirError::Malformed("empty commitment"));
        }
        Ok(Self { points })
    }

    /// The committed points, lowest degree first.
    pub fn points(&self) -> &[G] {
        &self.points
    }

    /// The threshold `T` (number of coefficients).
    pub fn threshold(&self) -> usize {
        self.points.len()
    }

    /// `C_0 = f(0) · G`, the public key.
    pub fn public_key(&self) -> G {
        self.points.first().copied().unwrap_or_else(G::identity)
    }

    /// `f(id) · G = Σ C_k · id^k`, the public key share of `id` (Horner in the exponent).
    pub fn public_share(&self, id: PartyId) -> G {
        let x: G::Scalar = id.to_scalar();
        self.points
            .iter()
            .rev()
            .fold(G::identity(), |acc, c| acc * x + c)
    }

    /// Checks `share · G == public_share(share.id)`.
    pub fn verify_share(&self, share: &SecretShare<G::Scalar>) -> Result<(), ShamirError> {
        if G::generator() * share.value == self.public_share(share.id) {
            Ok(())
        } else {
            Err(ShamirError::ShareMismatch(share.id))
        }
    }

    /// The sum of two commitments (commitment to `f + g`), padding the shorter one.
    pub fn add(&self, other: &Self) -> Self {
        let len = self.points.len().max(other.points.len());
        let points = (0..len)
            .map(|k| {
                let a = self.points.get(k).copied().unwrap_or_else(G::identity);
                let b = other.points.get(k).copied().unwrap_or_else(G::identity);
                a + b
            })
            .collect();
        Self { points }
    }

    /// Encoding: the compressed points one after the other.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.points
            .iter()
            .flat_map(|p| p.to_bytes().as_ref().to_vec())
            .collect()
    }

    /// Decodes [`Commitment::to_bytes`]; refuses bad lengths and invalid points.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ShamirError> {
        let width = G::Repr::default().as_ref().len();
        if bytes.is_empty() || !bytes.len().is_multiple_of(width) {
            return Err(ShamirError::Malformed("commitment length"));
        }
        let points = bytes
            .chunks(width)
            .map(|chunk| {
                let mut repr = G::Repr::default();
                repr.as_mut().copy_from_slice(chunk);
                Option::<G>::from(G::from_bytes(&repr)).ok_or(ShamirError::Malformed("point"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_points(points)
    }
}

/// A trusted-dealer sharing of `secret` among `ids` with threshold `threshold`.
///
/// For tests, benchmarks and examples only: the network never deals keys, it runs the DKG of
/// `lit-dkg`, where nobody ever knows the secret.
pub fn deal<F: PrimeField, G: Group<Scalar = F> + GroupEncoding>(
    secret: F,
    threshold: usize,
    ids: &[PartyId],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Vec<SecretShare<F>>, Commitment<G>), ShamirError> {
    check_distinct(ids)?;
    if threshold == 0 || threshold > ids.len() {
        return Err(ShamirError::InvalidThreshold {
            threshold,
            parties: ids.len(),
        });
    }
    let poly = Polynomial::random(secret, threshold, rng)?;
    let shares = ids.iter().map(|&id| poly.share(id)).collect();
    Ok((shares, poly.commit()))
}

/// Refuses duplicate identifiers.
pub fn check_distinct(ids: &[PartyId]) -> Result<(), ShamirError> {
    let mut seen = BTreeSet::new();
    for &id in ids {
        if !seen.insert(id) {
            return Err(ShamirError::DuplicateId(id));
        }
    }
    Ok(())
}

/// The Lagrange coefficients `λ_i(x) = Π_{j≠i} (x - x_j) / (x_i - x_j)` for interpolating at
/// `x` from the points of `ids`, computed with a single field inversion (Montgomery's batch
/// inversion). Use `x = 0` to recover the secret.
pub fn lagrange_coefficients_at<F: PrimeField>(
    ids: &[PartyId],
    x: F,
) -> Result<Vec<F>, ShamirError> {
    check_distinct(ids)?;
    let xs: Vec<F> = ids.iter().map(|id| id.to_scalar()).collect();
    // numerators n_i = Π_{j≠i} (x - x_j), denominators d_i = Π_{j≠i} (x_i - x_j)
    let mut numerators = Vec::with_capacity(xs.len());
    let mut denominators = Vec::with_capacity(xs.len());
    for (i, xi) in xs.iter().enumerate() {
        let mut num = F::ONE;
        let mut den = F::ONE;
        for (j, xj) in xs.iter().enumerate() {
            if i != j {
                num *= x - xj;
                den *= *xi - xj;
            }
        }
        numerators.push(num);
        denominators.push(den);
    }
    batch_invert(&mut denominators)?;
    Ok(numerators
        .into_iter()
        .zip(denominators)
        .map(|(n, d)| n * d)
        .collect())
}

/// The Lagrange coefficients at zero (see [`lagrange_coefficients_at`]).
pub fn lagrange_coefficients<F: PrimeField>(ids: &[PartyId]) -> Result<Vec<F>, ShamirError> {
    lagrange_coefficients_at(ids, F::ZERO)
}

/// Inverts every element in place with one inversion; fails if any element is zero.
pub fn batch_invert<F: Field>(values: &mut [F]) -> Result<(), ShamirError> {
    let mut prefix = Vec::with_capacity(values.len());
    let mut acc = F::ONE;
    for v in values.iter() {
        prefix.push(acc);
        acc *= v;
    }
    let mut inv =
        Option::<F>::from(acc.invert()).ok_or(ShamirError::Malformed("zero denominator"))?;
    for (v, p) in values.iter_mut().zip(prefix).rev() {
        let next = inv * *v;
        *v = inv * p;
        inv = next;
    }
    Ok(())
}

/// Recovers `f(0)` from at least `threshold` shares (tests and key export only; the network
/// never reconstructs a key).
pub fn reconstruct<F: PrimeField>(
    shares: &[SecretShare<F>],
    threshold: usize,
) -> Result<F, ShamirError> {
    if shares.len() < threshold {
        return Err(ShamirError::NotEnoughShares {
            needed: threshold,
            got: shares.len(),
        });
    }
    let ids: Vec<PartyId> = shares.iter().map(|s| s.id).collect();
    let lambdas = lagrange_coefficients::<F>(&ids)?;
    Ok(shares
        .iter()
        .zip(lambdas)
        .fold(F::ZERO, |acc, (s, l)| acc + s.value * l))
}

/// Interpolates `f(0) · G` from public points `(id, f(id) · G)` (generic, one multiplication
/// per point; curve-specific code may use a multi-scalar multiplication instead).
pub fn interpolate_points<G: Group>(points: &[(PartyId, G)]) -> Result<G, ShamirError> {
    let ids: Vec<PartyId> = points.iter().map(|(id, _)| *id).collect();
    let lambdas = lagrange_coefficients::<G::Scalar>(&ids)?;
    Ok(points
        .iter()
        .zip(lambdas)
        .fold(G::identity(), |acc, ((_, p), l)| acc + *p * l))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn ids(n: u32) -> Vec<PartyId> {
        PartyId::range(n).collect()
    }

    fn roundtrip<G: Group + GroupEncoding>(seed: u64) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for n in 1..=7u32 {
            for t in 1..=n as usize {
                let secret = G::Scalar::random(&mut rng);
                let (shares, commitment) = deal::<_, G>(secret, t, &ids(n), &mut rng).unwrap();
                assert_eq!(commitment.public_key(), G::generator() * secret);
                for s in &shares {
                    commitment.verify_share(s).unwrap();
                    assert_eq!(commitment.public_share(s.id), s.public::<G>());
                }
                // every window of t shares reconstructs; t - 1 shares are refused
                for start in 0..=(shares.len() - t) {
                    let subset = &shares[start..start + t];
                    assert_eq!(reconstruct(subset, t).unwrap(), secret);
                    let pts: Vec<_> = subset.iter().map(|s| (s.id, s.public::<G>())).collect();
                    assert_eq!(interpolate_points(&pts).unwrap(), commitment.public_key());
                }
                assert!(matches!(
                    reconstruct(&shares[..t - 1], t),
                    Err(ShamirError::NotEnoughShares { .. })
                ));
                let decoded = Commitment::<G>::from_bytes(&commitment.to_bytes()).unwrap();
                assert_eq!(decoded, commitment);
            }
        }
    }

    #[test]
    fn share_and_reconstruct_bls12_381() {
        roundtrip::<blstrs::G1Projective>(1);
    }

    #[test]
    fn share_and_reconstruct_secp256k1() {
        roundtrip::<k256::ProjectivePoint>(2);
    }

    #[test]
    fn wrong_share_is_named() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (mut shares, c) =
            deal::<_, k256::ProjectivePoint>(k256::Scalar::ONE, 3, &ids(5), &mut rng).unwrap();
        shares[2].value += k256::Scalar::ONE;
        assert_eq!(
            c.verify_share(&shares[2]),
            Err(ShamirError::ShareMismatch(shares[2].id))
        );
    }

    #[test]
    fn duplicates_and_bad_thresholds_are_refused() {
        let p = PartyId::new(1).unwrap();
        assert_eq!(
            lagrange_coefficients::<blstrs::Scalar>(&[p, p]),
            Err(ShamirError::DuplicateId(p))
        );
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        assert!(
            deal::<_, blstrs::G1Projective>(blstrs::Scalar::ONE, 4, &ids(3), &mut rng).is_err()
        );
        assert!(
            deal::<_, blstrs::G1Projective>(blstrs::Scalar::ONE, 0, &ids(3), &mut rng).is_err()
        );
    }

    #[test]
    fn malformed_commitments_are_refused() {
        assert!(Commitment::<blstrs::G1Projective>::from_bytes(&[]).is_err());
        assert!(Commitment::<blstrs::G1Projective>::from_bytes(&[0u8; 47]).is_err());
        assert!(Commitment::<blstrs::G1Projective>::from_bytes(&[0xffu8; 48]).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = SecretShare {
            id: PartyId::new(2).unwrap(),
            value: k256::Scalar::from(12345u64),
        };
        let shown = format!("{s:?}");
        assert!(shown.contains("redacted") && !shown.contains("12345"));
    }

    proptest::proptest! {
        #[test]
        fn lagrange_matches_naive(n in 1u32..12, seed in 0u64..1000) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let x = k256::Scalar::random(&mut rng);
            let ids = ids(n);
            let fast = lagrange_coefficients_at(&ids, x).unwrap();
            for (i, xi) in ids.iter().enumerate() {
                let mut l = k256::Scalar::ONE;
                for xj in &ids {
                    if xi != xj {
                        let a: k256::Scalar = xi.to_scalar();
                        let b: k256::Scalar = xj.to_scalar();
                        l *= (x - b) * (a - b).invert().unwrap();
                    }
                }
                proptest::prop_assert_eq!(fast[i], l);
            }
        }
    }
}
