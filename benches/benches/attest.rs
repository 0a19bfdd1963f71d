//! Verification latency of AMD SEV-SNP evidence (real Genoa and Turin reports, full chain).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use lit_attest::{
    Attester, Evidence, FixedClock, Policy, SimulatedAttester, SnpEvidence, Verifier,
};

fn testdata(p: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../lit-attest/testdata/{p}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let verifier = Verifier::new(Policy::default()).with_clock(FixedClock::at_unix(1_756_684_800));
    for ds in ["genoa-v5-oak", "turin-v5-oak", "milan-v2-virtee"] {
        let ev = Evidence::Snp(SnpEvidence::new(
            testdata(&format!("{ds}/report.bin")),
            testdata(&format!("{ds}/vcek.der")),
        ));
        verifier.verify_without_binding(&ev).unwrap();
        c.bench_function(&format!("attest/verify_snp/{ds}"), |b| {
            b.iter(|| verifier.verify_without_binding(&ev).unwrap())
        });
    }
    let dev = Verifier::new(Policy::development());
    let ev = SimulatedAttester::new([1; 48]).attest(&[0; 64]).unwrap();
    c.bench_function("attest/verify_simulated", |b| {
        b.iter(|| dev.verify_without_binding(&ev).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
