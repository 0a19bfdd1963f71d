//! The groups a key can live in, and the group arithmetic the protocols need beyond `group`:
//! multi-scalar multiplication, multiplication by a small integer (a party id) and hashing to a
//! scalar.

use std::fmt;

use ff::{Field, PrimeField};
use group::{Group, GroupEncoding};
use sha2::{Digest, Sha512};

/// A prime-order group a distributed key can be generated in.
///
/// Implemented for BLS12-381 G1 (`blstrs::G1Projective`, the BLS root key: public keys in G1)
/// and secp256k1 (`k256::ProjectivePoint`, the ECDSA root key).
///
/// Points travel *uncompressed* in protocol messages: decompression (a square root, and for
/// BLS12-381 a subgroup check per point) would dominate a receiver's work, since it decodes
/// `n · T` commitment points. Decoding checks that a point is on the curve; membership in the
/// prime-order subgroup is checked once on the aggregated commitment (see [`DkgGroup::in_subgroup`]).
pub trait DkgGroup: Group + GroupEncoding + fmt::Debug + Send + Sync + 'static {
    /// A stable name, bound into the session id so that keys of different groups never mix.
    const NAME: &'static str;
    /// Length of a point on the wire.
    const WIRE_LEN: usize;

    /// Appends the wire encoding of the point.
    fn write_wire(&self, out: &mut Vec<u8>);

    /// Decodes a point on the curve (not necessarily in the prime-order subgroup); `None` if
    /// the bytes are not a point of the curve.
    fn read_wire(bytes: &[u8]) -> Option<Self>;

    /// Whether the point lies in the prime-order subgroup (always, for prime-order curves).
    fn in_subgroup(&self) -> bool {
        true
    }

    /// `Σ scalars[i] · points[i]` (the slices have the same length).
    fn msm(points: &[Self], scalars: &[Self::Scalar]) -> Self {
        pippenger(points, scalars)
    }

    /// `Σ_i w_i · C_i(x)` where `C_i(x) = Σ_k C_{i,k} x^k`: a random linear combination of
    /// several committed polynomials evaluated at a small `x`.
    fn weighted_eval(commitments: &[&[Self]], weights: &[Self::Scalar], x: u64) -> Self {
        let evals: Vec<Self> = commitments.iter().map(|c| eval_in_exponent(c, x)).collect();
        Self::msm(&evals, weights)
    }
}

impl DkgGroup for blstrs::G1Projective {
    const NAME: &'static str = "BLS12-381-G1";
    const WIRE_LEN: usize = 96;

    fn write_wire(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&blstrs::G1Affine::from(self).to_uncompressed());
    }

    fn read_wire(bytes: &[u8]) -> Option<Self> {
        let arr: &[u8; 96] = bytes.try_into().ok()?;
        let p: Option<blstrs::G1Affine> = blstrs::G1Affine::from_uncompressed_unchecked(arr).into();
        p.filter(|p| bool::from(p.is_on_curve())).map(Self::from)
    }

    fn in_subgroup(&self) -> bool {
        bool::from(blstrs::G1Affine::from(self).is_torsion_free())
    }

    fn msm(points: &[Self], scalars: &[Self::Scalar]) -> Self {
        // blst's Pippenger; it needs at least two points to be worth the affine conversion.
        if points.len() < 2 {
            return naive_msm(points, scalars);
        }
        blstrs::G1Projective::multi_exp(points, scalars)
    }

    /// One multi-scalar multiplication over all `n · T` commitment points with scalars
    /// `w_i · x^k` (blst's Pippenger beats Horner per polynomial here).
    fn weighted_eval(commitments: &[&[Self]], weights: &[Self::Scalar], x: u64) -> Self {
        let x = blstrs::Scalar::from(x);
        let mut points = Vec::new();
        let mut scalars = Vec::new();
        for (c, w) in commitments.iter().zip(weights) {
            let mut acc = *w;
            for p in c.iter() {
                points.push(*p);
                scalars.push(acc);
                acc *= x;
            }
        }
        Self::msm(&points, &scalars)
    }
}

impl DkgGroup for k256::ProjectivePoint {
    const NAME: &'static str = "secp256k1";
    const WIRE_LEN: usize = 65;

    /// SEC1 uncompressed; the identity (which has no SEC1 form of this length) as 65 zeros.
    fn write_wire(&self, out: &mut Vec<u8>) {
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        if bool::from(self.is_identity()) {
            out.extend_from_slice(&[0u8; 65]);
        } else {
            out.extend_from_slice(self.to_affine().to_encoded_point(false).as_bytes());
        }
    }

    fn read_wire(bytes: &[u8]) -> Option<Self> {
        use k256::elliptic_curve::sec1::FromEncodedPoint;
        if bytes.len() != 65 {
            return None;
        }
        if bytes.iter().all(|b| *b == 0) {
            return Some(Self::IDENTITY);
        }
        if bytes.first() != Some(&4) {
            return None;
        }
        let ep = k256::EncodedPoint::from_bytes(bytes).ok()?;
        Option::<k256::AffinePoint>::from(k256::AffinePoint::from_encoded_point(&ep))
            .map(Self::from)
    }
}

/// `Σ s_i · P_i` one multiplication at a time.
pub fn naive_msm<G: Group>(points: &[G], scalars: &[G::Scalar]) -> G {
    points
        .iter()
        .zip(scalars)
        .fold(G::identity(), |acc, (p, s)| acc + *p * s)
}

/// Pippenger's bucket method for any `group` 0.13 group (used for secp256k1; BLS uses blst's).
pub fn pippenger<G: Group>(points: &[G], scalars: &[G::Scalar]) -> G {
    let n = points.len().min(scalars.len());
    if n < 8 {
        return naive_msm(&points[..n], &scalars[..n]);
    }
    // Little-endian scalar bytes whatever the field's own representation order.
    let little_endian = G::Scalar::ONE.to_repr().as_ref().first() == Some(&1);
    let digits: Vec<Vec<u8>> = scalars[..n]
        .iter()
        .map(|s| {
            let mut b = s.to_repr().as_ref().to_vec();
            if !little_endian {
                b.reverse();
            }
            b
        })
        .collect();
    let bits = G::Scalar::NUM_BITS as usize;
    // Window width minimising (windows) × (additions into buckets + bucket summation).
    let c = (2..=16usize)
        .min_by_key(|c| bits.div_ceil(*c) * (n + (2usize << *c)))
        .unwrap_or(4);
    let windows = bits.div_ceil(c);
    let mut acc = G::identity();
    let mut buckets = vec![G::identity(); (1 << c) - 1];
    for w in (0..windows).rev() {
        for _ in 0..c {
            acc = acc.double();
        }
        buckets.iter_mut().for_each(|b| *b = G::identity());
        for (p, d) in points.iter().zip(&digits) {
            let digit = window(d, w * c, c);
            if let Some(b) = digit.checked_sub(1).and_then(|i| buckets.get_mut(i)) {
                *b += p;
            }
        }
        let mut running = G::identity();
        let mut sum = G::identity();
        for b in buckets.iter().rev() {
            running += b;
            sum += running;
        }
        acc += sum;
    }
    acc
}

/// Bits `[start, start + width)` of a little-endian byte string.
fn window(bytes: &[u8], start: usize, width: usize) -> usize {
    let mut v = 0usize;
    for k in 0..width {
        let bit = start + k;
        let byte = bytes.get(bit / 8).copied().unwrap_or(0);
        v |= usize::from((byte >> (bit % 8)) & 1) << k;
    }
    v
}

/// `x · P` for a small integer `x` by double-and-add over its few bits (a party id has at most
/// 32 bits, against 255 for a full scalar).
pub fn mul_small<G: Group>(p: &G, x: u64) -> G {
    let mut acc = G::identity();
    for bit in (0..(u64::BITS - x.leading_zeros())).rev() {
        acc = acc.double();
        if (x >> bit) & 1 == 1 {
            acc += p;
        }
    }
    acc
}

/// `Σ_k C_k · x^k` for a small integer `x`, by Horner's rule with [`mul_small`]: the public
/// value at `x` of a polynomial committed to by `coefficients` (lowest degree first).
pub fn eval_in_exponent<G: Group>(coefficients: &[G], x: u64) -> G {
    coefficients
        .iter()
        .rev()
        .fold(G::identity(), |acc, c| mul_small(&acc, x) + c)
}

/// Hashes the domain and the parts to a scalar: SHA-512, read as a 512-bit integer and reduced
/// (bias below 2^-250 for 255-bit fields).
pub fn hash_to_scalar<F: PrimeField>(domain: &[u8], parts: &[&[u8]]) -> F {
    let mut h = Sha512::new();
    h.update((domain.len() as u64).to_be_bytes());
    h.update(domain);
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let wide = h.finalize();
    let shift = F::from_u128(u128::MAX) + F::ONE; // 2^128
    wide.chunks(16).fold(F::ZERO, |acc, chunk| {
        let mut b = [0u8; 16];
        b.copy_from_slice(chunk);
        acc * shift + F::from_u128(u128::from_be_bytes(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn msm_matches<G: DkgGroup>() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        for n in [0usize, 1, 2, 7, 8, 33, 100] {
            let points: Vec<G> = (0..n).map(|_| G::random(&mut rng)).collect();
            let scalars: Vec<G::Scalar> = (0..n).map(|_| G::Scalar::random(&mut rng)).collect();
            assert_eq!(G::msm(&points, &scalars), naive_msm(&points, &scalars));
            assert_eq!(pippenger(&points, &scalars), naive_msm(&points, &scalars));
        }
        let p = G::random(&mut rng);
        for x in [0u64, 1, 2, 3, 100, u64::from(u32::MAX)] {
            assert_eq!(mul_small(&p, x), p * G::Scalar::from(x));
        }
        let c: Vec<G> = (0..5).map(|_| G::random(&mut rng)).collect();
        let x = 7u64;
        let expected = c.iter().enumerate().fold(G::identity(), |a, (k, ck)| {
            a + *ck * G::Scalar::from(x).pow_vartime([k as u64])
        });
        assert_eq!(eval_in_exponent(&c, x), expected);
    }

    fn wire_roundtrip<G: DkgGroup>() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        for p in [G::identity(), G::generator(), G::random(&mut rng)] {
            let mut b = Vec::new();
            p.write_wire(&mut b);
            assert_eq!(b.len(), G::WIRE_LEN);
            assert_eq!(G::read_wire(&b), Some(p));
            assert!(p.in_subgroup());
            b[G::WIRE_LEN - 1] ^= 1;
            assert_eq!(G::read_wire(&b), None, "off-curve point accepted");
        }
        let cs: Vec<Vec<G>> = (0..4)
            .map(|_| (0..3).map(|_| G::random(&mut rng)).collect())
            .collect();
        let refs: Vec<&[G]> = cs.iter().map(|c| c.as_slice()).collect();
        let w: Vec<G::Scalar> = (0..4).map(|_| G::Scalar::random(&mut rng)).collect();
        let expected = cs
            .iter()
            .zip(&w)
            .fold(G::identity(), |a, (c, w)| a + eval_in_exponent(c, 5) * w);
        assert_eq!(G::weighted_eval(&refs, &w, 5), expected);
    }

    #[test]
    fn wire_encoding_roundtrips_and_refuses_points_off_the_curve() {
        wire_roundtrip::<blstrs::G1Projective>();
        wire_roundtrip::<k256::ProjectivePoint>();
    }

    #[test]
    fn bls_points_outside_the_subgroup_are_detected() {
        // A point on the curve but not in G1: hash to the curve without clearing the cofactor
        // is not exposed, so search x until y^2 = x^3 + 4 has a root, via blst's decoder.
        let mut found = false;
        for x in 1u8..=255 {
            let mut b = [0u8; 48];
            b[47] = x;
            b[0] |= 0x80; // compressed flag
            if let Some(p) =
                Option::<blstrs::G1Affine>::from(blstrs::G1Affine::from_compressed_unchecked(&b))
            {
                if !bool::from(p.is_torsion_free()) {
                    assert!(!blstrs::G1Projective::from(p).in_subgroup());
                    found = true;
                    break;
                }
            }
        }
        assert!(found);
    }

    #[test]
    fn msm_and_small_multiplication_agree_with_the_naive_ones() {
        msm_matches::<blstrs::G1Projective>();
        msm_matches::<k256::ProjectivePoint>();
    }

    #[test]
    fn hash_to_scalar_is_domain_separated() {
        let a: k256::Scalar = hash_to_scalar(b"a", &[b"x"]);
        let b: k256::Scalar = hash_to_scalar(b"b", &[b"x"]);
        let c: k256::Scalar = hash_to_scalar(b"a", &[b"x", b""]);
        assert!(a != b && a != c);
    }
}
