//! Threshold ECDSA (cait-sith) costs for n = 3, 5, 7, 10 with T = ceil(2n/3):
//! triple generation among n nodes (all nodes simulated in one thread, so the time is the
//! total CPU of all nodes; per node ≈ total / n since the work is symmetric), presigning among
//! T nodes, one node's signature share, and the client's combination of T shares.
//!
//! Bytes sent per node for one triple and one presignature are printed once per size.
//!
//! Run: `cargo bench -p lit-benches --bench ecdsa`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ff::Field;
use lit_crypto::ecdsa::{
    combine, sign_share, InMemoryUsedPresignatures, KeyShare, MessageDigest, Presign, Presignature,
    SigningContext, Triple, TripleGeneration,
};
use lit_crypto::protocol::{default_threshold, Action, PartyId, Protocol};
use lit_crypto::shamir;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const SIZES: [u32; 4] = [3, 5, 7, 10];

/// Runs the parties to completion; returns the outputs and the bytes each party sent
/// (a broadcast counted once per recipient).
fn run<P: Protocol>(
    parties: Vec<(PartyId, P)>,
) -> (BTreeMap<PartyId, P::Output>, BTreeMap<PartyId, usize>) {
    let ids: Vec<PartyId> = parties.iter().map(|(id, _)| *id).collect();
    let mut parties: BTreeMap<PartyId, P> = parties.into_iter().collect();
    let mut out = BTreeMap::new();
    let mut sent: BTreeMap<PartyId, usize> = BTreeMap::new();
    let mut queue = Vec::new();
    while out.len() < ids.len() {
        for id in &ids {
            if out.contains_key(id) {
                continue;
            }
            let party = parties.get_mut(id).unwrap();
            loop {
                match party.poke().unwrap() {
                    Action::Wait => break,
                    Action::Send(msgs) => {
                        for m in msgs {
                            let targets: Vec<PartyId> = match m.to {
                                Some(to) => vec![to],
                                None => ids.iter().copied().filter(|t| t != id).collect(),
                            };
                            *sent.entry(*id).or_default() += m.bytes.len() * targets.len();
                            for to in targets {
                                queue.push((*id, to, m.bytes.clone()));
                            }
                        }
                    }
                    Action::Done(o) => {
                        out.insert(*id, o);
                        break;
                    }
                }
            }
        }
        for (from, to, bytes) in queue.drain(..) {
            if !out.contains_key(&to) {
                parties.get_mut(&to).unwrap().message(from, &bytes).unwrap();
            }
        }
    }
    (out, sent)
}

fn ids(n: u32) -> Vec<PartyId> {
    PartyId::range(n).collect()
}

fn keys(parties: &[PartyId], t: usize, rng: &mut ChaCha20Rng) -> BTreeMap<PartyId, KeyShare> {
    let secret = k256::Scalar::random(&mut *rng);
    let (shares, commitment) =
        shamir::deal::<_, k256::ProjectivePoint>(secret, t, parties, rng).unwrap();
    shares
        .iter()
        .map(|s| (s.id, KeyShare::new(s, commitment.clone()).unwrap()))
        .collect()
}

fn triple(
    label: &[u8],
    parties: &[PartyId],
    t: usize,
) -> (BTreeMap<PartyId, Triple>, BTreeMap<PartyId, usize>) {
    run(parties
        .iter()
        .map(|&p| (p, TripleGeneration::new(label, parties, p, t).unwrap()))
        .collect())
}

fn presign(
    label: &[u8],
    signers: &[PartyId],
    keys: &BTreeMap<PartyId, KeyShare>,
    mut t0: BTreeMap<PartyId, Triple>,
    mut t1: BTreeMap<PartyId, Triple>,
) -> (BTreeMap<PartyId, Presignature>, BTreeMap<PartyId, usize>) {
    run(signers
        .iter()
        .map(|p| {
            let proto = Presign::new(
                label,
                signers,
                &keys[p],
                t0.remove(p).unwrap(),
                t1.remove(p).unwrap(),
            )
            .unwrap();
            (*p, proto)
        })
        .collect())
}

/// CPU time of this process (user + system) from /proc/self/stat, in seconds (Linux; `None`
/// elsewhere). Unlike wall time it does not grow when other processes share the cores.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the ")" that ends the command name; utime and stime are fields 14 and 15
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

/// Mean CPU seconds per node for one triple among `parties` (all nodes run in this thread).
fn triple_cpu_per_node(
    parties: &[PartyId],
    t: usize,
    runs: u32,
    label: &mut impl FnMut() -> [u8; 8],
) -> Option<f64> {
    let start = process_cpu_seconds()?;
    for _ in 0..runs {
        std::hint::black_box(triple(&label(), parties, t));
    }
    let end = process_cpu_seconds()?;
    Some((end - start) / f64::from(runs) / parties.len() as f64)
}

fn mean_bytes(sent: &BTreeMap<PartyId, usize>) -> usize {
    sent.values().sum::<usize>() / sent.len().max(1)
}

fn bench(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut counter = 0u64;
    let mut label = || {
        counter += 1;
        counter.to_be_bytes()
    };
    let mut group = c.benchmark_group("ecdsa");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let t = default_threshold(n as usize);
        let parties = ids(n);
        let signers: Vec<PartyId> = parties[..t].to_vec();
        let keys = keys(&parties, t, &mut rng);

        let (_, sent) = triple(&label(), &parties, t);
        eprintln!(
            "ecdsa n={n} T={t}: triple generation sends {} bytes per node (mean)",
            mean_bytes(&sent)
        );
        for (who, set) in [("all n", &parties), ("the T signers", &signers)] {
            if let Some(cpu) = triple_cpu_per_node(set, t, 3, &mut label) {
                eprintln!(
                    "ecdsa n={n} T={t}: triple among {who} ({} nodes): {:.1} ms CPU per node",
                    set.len(),
                    cpu * 1e3
                );
            }
        }
        group.bench_with_input(
            BenchmarkId::new(format!("triple_total_all_{n}_nodes"), n),
            &n,
            |b, _| b.iter(|| triple(&label(), &parties, t)),
        );

        // presign among T signers, triples made (untimed) by the same signers
        group.bench_with_input(
            BenchmarkId::new(format!("presign_total_{t}_signers"), n),
            &n,
            |b, _| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (t0, _) = triple(&label(), &signers, t);
                        let (t1, _) = triple(&label(), &signers, t);
                        let start = Instant::now();
                        let (out, sent) = presign(&label(), &signers, &keys, t0, t1);
                        total += start.elapsed();
                        assert_eq!(out.len(), t);
                        std::hint::black_box(sent);
                    }
                    total
                })
            },
        );
        let (t0, _) = triple(&label(), &signers, t);
        let (t1, _) = triple(&label(), &signers, t);
        let (_, sent) = presign(&label(), &signers, &keys, t0, t1);
        eprintln!(
            "ecdsa n={n} T={t}: presigning sends {} bytes per signer (mean)",
            mean_bytes(&sent)
        );

        // one presignature for the sign/combine benches (sign_share consumes it, so clone it
        // through its storage encoding; a fresh ledger per iteration)
        let (t0, _) = triple(&label(), &signers, t);
        let (t1, _) = triple(&label(), &signers, t);
        let (presigs, _) = presign(&label(), &signers, &keys, t0, t1);
        let stored: BTreeMap<PartyId, _> = presigs
            .iter()
            .map(|(p, s)| (*p, s.to_secret_bytes()))
            .collect();
        let ctx = SigningContext {
            root_public_key: keys[&signers[0]].public_key(),
            key_id: b"bench-pkp".to_vec(),
            digest: MessageDigest::eip191(b"benchmark message"),
        };
        let me = signers[0];
        group.bench_with_input(BenchmarkId::new("sign_share_one_node", n), &n, |b, _| {
            b.iter_batched(
                || Presignature::from_secret_bytes(&stored[&me]).unwrap(),
                |presig| {
                    sign_share(
                        &keys[&me],
                        presig,
                        &ctx,
                        &mut InMemoryUsedPresignatures::default(),
                    )
                    .unwrap()
                },
                criterion::BatchSize::SmallInput,
            )
        });
        let shares: Vec<_> = signers
            .iter()
            .map(|p| {
                let presig = Presignature::from_secret_bytes(&stored[p]).unwrap();
                sign_share(
                    &keys[p],
                    presig,
                    &ctx,
                    &mut InMemoryUsedPresignatures::default(),
                )
                .unwrap()
            })
            .collect();
        group.bench_with_input(BenchmarkId::new("combine_client", n), &n, |b, _| {
            b.iter(|| combine(&ctx, &shares).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
