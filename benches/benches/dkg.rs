//! DKG and reshare in the `lit-dkg` simulator for n = 4, 10, 25, 50, 100 with T = ceil(2n/3).
//!
//! Before the criterion timings, one run per size prints the figures the issue asks for: total
//! CPU of all parties, per-node CPU, and bytes sent per node. `LIT_BENCH_MAX_N` limits the
//! largest size (default 100).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lit_crypto::protocol::default_threshold;
use lit_dkg::sim::{setup, Report, Simulation};
use lit_dkg::{DkgGroup, IdentitySecret, KeyGenOutput, KeyShare, PartyId, PublicKeySet};

const SIZES: [u32; 5] = [4, 10, 25, 50, 100];

fn sizes() -> Vec<u32> {
    let max: u32 = std::env::var("LIT_BENCH_MAX_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    SIZES.into_iter().filter(|n| *n <= max).collect()
}

struct Setup<G: DkgGroup> {
    secrets: BTreeMap<PartyId, IdentitySecret>,
    shares: BTreeMap<PartyId, KeyShare<G>>,
    public: PublicKeySet<G>,
}

fn run_dkg<G: DkgGroup>(
    n: u32,
    secrets: &BTreeMap<PartyId, IdentitySecret>,
) -> Report<KeyGenOutput<G>> {
    let mut sim = Simulation::silent(1);
    let mut rng = sim.rng("bench");
    let old: BTreeMap<_, _> = secrets
        .iter()
        .take(n as usize)
        .map(|(p, s)| (*p, s.clone()))
        .collect();
    let parties =
        setup::dkg::<G>("bench", 1, &old, default_threshold(n as usize), &mut rng).unwrap();
    let report = sim.run(parties);
    assert_eq!(report.outputs().len(), n as usize, "{:?}", report.errors());
    report
}

/// Old set 1..=n, new set shifted by n/4 (a quarter leaves, a quarter joins); all old deal.
fn run_reshare<G: DkgGroup>(n: u32, s: &Setup<G>) -> Report<KeyGenOutput<G>> {
    let mut sim = Simulation::silent(2);
    let mut rng = sim.rng("bench");
    let dealers: BTreeSet<PartyId> = PartyId::range(n).collect();
    let shift = n / 4;
    let receivers: BTreeSet<PartyId> = (1 + shift..=n + shift).filter_map(PartyId::new).collect();
    let parties = setup::reshare(
        "bench",
        2,
        &s.secrets,
        &dealers,
        &receivers,
        default_threshold(n as usize),
        &s.shares,
        &s.public,
        &mut rng,
    )
    .unwrap();
    let report = sim.run(parties);
    assert_eq!(
        report.outputs().len(),
        dealers.union(&receivers).count(),
        "{:?}",
        report.errors()
    );
    report
}

fn prepare<G: DkgGroup>(n: u32) -> Setup<G> {
    let sim = Simulation::silent(3);
    let mut rng = sim.rng("ids");
    let secrets = setup::identities(PartyId::range(n + n / 4), &mut rng);
    let report = run_dkg::<G>(n, &secrets);
    let outs = report.outputs();
    let public = outs.values().next().unwrap().public.clone();
    let shares = outs
        .iter()
        .map(|(p, o)| (*p, o.share.clone().unwrap()))
        .collect();
    Setup {
        secrets,
        shares,
        public,
    }
}

fn print_stats<O>(what: &str, group: &str, n: u32, wall: Duration, r: &Report<O>) {
    let parties = r.stats.len() as f64;
    let cpu = r.total_cpu();
    let max_cpu = r.stats.values().map(|s| s.cpu).max().unwrap_or_default();
    let bytes: u64 = r.stats.values().map(|s| s.bytes_sent).sum();
    let max_bytes = r
        .stats
        .values()
        .map(|s| s.bytes_sent)
        .max()
        .unwrap_or_default();
    println!(
        "{what:8} {group:13} n={n:3} T={t:3} wall {wall:8.3?}  total CPU {cpu:8.3?}  per node CPU mean {mean:8.3?} max {max_cpu:8.3?}  sent per node mean {kb:9.1} KiB max {mkb:9.1} KiB",
        t = default_threshold(n as usize),
        mean = cpu.div_f64(parties),
        kb = bytes as f64 / parties / 1024.0,
        mkb = max_bytes as f64 / 1024.0,
    );
}

fn stats_for<G: DkgGroup>() {
    for n in sizes() {
        let sim = Simulation::silent(3);
        let mut rng = sim.rng("ids");
        let secrets = setup::identities(PartyId::range(n + n / 4), &mut rng);
        let start = Instant::now();
        let r = run_dkg::<G>(n, &secrets);
        print_stats("DKG", G::NAME, n, start.elapsed(), &r);
        let s = prepare::<G>(n);
        let start = Instant::now();
        let r = run_reshare::<G>(n, &s);
        print_stats("reshare", G::NAME, n, start.elapsed(), &r);
    }
}

fn bench<G: DkgGroup>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("dkg/{}", G::NAME));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in sizes() {
        let s = prepare::<G>(n);
        g.bench_with_input(BenchmarkId::new("dkg", n), &n, |b, n| {
            b.iter(|| run_dkg::<G>(*n, &s.secrets))
        });
        g.bench_with_input(BenchmarkId::new("reshare", n), &n, |b, n| {
            b.iter(|| run_reshare::<G>(*n, &s))
        });
    }
    g.finish();
}

fn all(c: &mut Criterion) {
    stats_for::<blstrs::G1Projective>();
    stats_for::<k256::ProjectivePoint>();
    bench::<blstrs::G1Projective>(c);
    bench::<k256::ProjectivePoint>(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
