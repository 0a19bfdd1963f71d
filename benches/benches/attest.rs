//! Verification latency of AMD SEV-SNP evidence (real Milan, Genoa and Turin reports, full
//! chain, under a policy built from a release register that lists their measurements).
//!
//! `cold`: a new verifier per verification (a client's first handshake: ARK and ASK signatures,
//! RSA-4096, are checked). `cached`: one verifier (a client handshaking again, with the same
//! verifier: the verified ARK → ASK pairs are remembered; the VCEK and report are checked
//! every time).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use lit_attest::{
    Attester, Evidence, FixedClock, Generation, Policy, Release, Report, SimulatedAttester,
    SnpEvidence, Verifier,
};

fn testdata(p: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../lit-attest/testdata/{p}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let sets = [
        ("genoa-v5-oak", Generation::Genoa),
        ("turin-v5-oak", Generation::Turin),
        ("milan-v2-virtee", Generation::Milan),
    ];
    let releases: Vec<Release> = sets
        .iter()
        .map(|(ds, g)| {
            let report = testdata(&format!("{ds}/report.bin"));
            Release::new(Report::parse(&report, Some(*g)).unwrap().measurement)
        })
        .collect();
    let policy = Policy::default().with_releases(releases);
    let verifier = || Verifier::new(policy.clone()).with_clock(FixedClock::at_unix(1_756_684_800));
    let cached = verifier();
    for (ds, _) in sets {
        let ev = Evidence::Snp(SnpEvidence::new(
            testdata(&format!("{ds}/report.bin")),
            testdata(&format!("{ds}/vcek.der")),
        ));
        cached.verify_without_binding(&ev).unwrap();
        c.bench_function(&format!("attest/verify_snp/{ds}/cached"), |b| {
            b.iter(|| cached.verify_without_binding(&ev).unwrap())
        });
        c.bench_function(&format!("attest/verify_snp/{ds}/cold"), |b| {
            b.iter(|| verifier().verify_without_binding(&ev).unwrap())
        });
    }
    let dev = Verifier::new(Policy::development().with_releases([Release::new([1; 48])]));
    let ev = SimulatedAttester::new([1; 48]).attest(&[0; 64]).unwrap();
    c.bench_function("attest/verify_simulated", |b| {
        b.iter(|| dev.verify_without_binding(&ev).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
