//! Threshold BLS and IBE benchmarks, next to raw blst sign/verify and one G2 scalar
//! multiplication measured in the same run.
//!
//! `cargo bench -p lit-benches --bench bls`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use blstrs::{G2Projective, Scalar};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ff::Field;
use group::Group;
use lit_crypto::bls::{self, SignatureShare, DST};
use lit_crypto::protocol::default_threshold;
use lit_crypto::{ibe, PartyId};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const MSG: &[u8] = b"benchmark message: 32 bytes long";

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(1)
}

/// Raw blst and one G2 scalar multiplication: the yardsticks for the rest.
fn primitives(c: &mut Criterion) {
    let mut g = c.benchmark_group("bls/primitives");
    let mut ikm = [0u8; 32];
    rng().fill_bytes(&mut ikm);
    let sk = blst::min_pk::SecretKey::key_gen(&ikm, &[]).unwrap();
    let pk = sk.sk_to_pk();
    let sig = sk.sign(MSG, DST, &[]);
    g.bench_function("blst_sign", |b| b.iter(|| sk.sign(MSG, DST, &[])));
    g.bench_function("blst_verify", |b| {
        b.iter(|| sig.verify(true, MSG, DST, &[], &pk, true))
    });
    let point = G2Projective::random(&mut rng());
    let scalar = Scalar::random(&mut rng());
    g.bench_function("g2_scalar_mul", |b| b.iter(|| point * scalar));
    g.bench_function("hash_to_g2", |b| b.iter(|| bls::hash_to_g2(MSG)));
    g.finish();
}

fn shares(c: &mut Criterion) {
    let mut g = c.benchmark_group("bls/share");
    let ids: Vec<PartyId> = PartyId::range(10).collect();
    let (set, key_shares) = bls::deal_with_trusted_dealer(7, &ids, &mut rng()).unwrap();
    let share = key_shares[0].sign(MSG);
    g.bench_function("sign", |b| b.iter(|| key_shares[0].sign(MSG)));
    g.bench_function("verify", |b| b.iter(|| set.verify_share(MSG, &share)));
    g.finish();
}

fn combine(c: &mut Criterion) {
    let mut g = c.benchmark_group("bls/combine");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(4));
    for n in [4u32, 10, 50, 100] {
        let t = default_threshold(n as usize);
        let ids: Vec<PartyId> = PartyId::range(n).collect();
        let (set, key_shares) = bls::deal_with_trusted_dealer(t, &ids, &mut rng()).unwrap();
        let sig_shares: Vec<SignatureShare> =
            key_shares.iter().take(t).map(|k| k.sign(MSG)).collect();
        // Lagrange interpolation + one multi-scalar multiplication, no verification
        g.bench_with_input(BenchmarkId::new("combine_only", t), &sig_shares, |b, s| {
            b.iter(|| set.combine_unverified(s).unwrap())
        });
        // the fast path: combine, then verify the result once
        g.bench_with_input(
            BenchmarkId::new("combine_verify", t),
            &sig_shares,
            |b, s| b.iter(|| set.combine(MSG, s).unwrap()),
        );
        // verify every share first (batch verification), then combine
        g.bench_with_input(BenchmarkId::new("verify_all", t), &sig_shares, |b, s| {
            b.iter(|| {
                set.verify_shares(MSG, s).unwrap();
                set.combine_unverified(s).unwrap()
            })
        });
        // verify every share on its own (one pairing check each), then combine
        g.bench_with_input(BenchmarkId::new("verify_each", t), &sig_shares, |b, s| {
            b.iter(|| {
                for share in s {
                    set.verify_share(MSG, share).unwrap();
                }
                set.combine_unverified(s).unwrap()
            })
        });
        // the naive alternative to the MSM: T separate G2 scalar multiplications, summed
        let points: Vec<G2Projective> =
            sig_shares.iter().map(|s| (*s.as_affine()).into()).collect();
        let lambdas: Vec<Scalar> = (0..t).map(|_| Scalar::random(&mut rng())).collect();
        g.bench_with_input(
            BenchmarkId::new("naive_t_scalar_muls", t),
            &points,
            |b, p| {
                b.iter(|| {
                    p.iter()
                        .zip(&lambdas)
                        .fold(G2Projective::identity(), |acc, (p, l)| acc + p * l)
                })
            },
        );
    }
    g.finish();
}

fn encryption(c: &mut Criterion) {
    let mut g = c.benchmark_group("ibe");
    g.sample_size(20);
    let ids: Vec<PartyId> = PartyId::range(5).collect();
    let (set, key_shares) = bls::deal_with_trusted_dealer(3, &ids, &mut rng()).unwrap();
    let pk = set.public_key();
    let identity = b"lit-accesscontrolcondition://benchmark";
    let shares: Vec<_> = key_shares[..3].iter().map(|k| k.sign(identity)).collect();
    let key = set.combine(identity, &shares).unwrap();
    for (label, len) in [("32B", 32usize), ("1MiB", 1 << 20)] {
        let mut data = vec![0u8; len];
        rng().fill_bytes(&mut data);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(BenchmarkId::new("encrypt", label), |b| {
            b.iter(|| ibe::encrypt(&pk, identity, &data).unwrap())
        });
        let ct = ibe::encrypt(&pk, identity, &data).unwrap();
        g.bench_function(BenchmarkId::new("decrypt", label), |b| {
            b.iter(|| ibe::decrypt(&ct, &key).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, primitives, shares, combine, encryption);
criterion_main!(benches);
