//! Negative tests: each tampering or mismatch is refused with its own error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lit_attest::*;
use lit_crypto::testing::seeded_rng;
use rand_core::{OsRng, RngCore};

fn real_verifier(policy: Policy) -> Verifier {
    Verifier::new(policy).with_clock(FixedClock::at_unix(SEP_2025))
}

#[test]
fn self_made_root_with_valid_looking_chain_is_refused() {
    let ev = fake_evidence(fake_report().sign(&fake_key()), "vcek.der");
    // With AMD's pins: refused for the root, specifically.
    let err = Verifier::new(Policy::default().any_measurement())
        .with_clock(FixedClock::at_unix(FAKE_NOW))
        .verify_without_binding(&ev)
        .unwrap_err();
    match err {
        VerifyError::UntrustedRoot { generation, sha256 } => {
            assert_eq!(generation, Generation::Genoa);
            use sha2::Digest;
            assert_eq!(sha256, hex::encode(sha2::Sha256::digest(fake("ark.der"))));
        }
        e => panic!("expected UntrustedRoot, got {e}"),
    }
    // The root is the only thing wrong: pinning the fake root makes the same evidence pass.
    fake_trusting(Policy::default().any_measurement())
        .verify_without_binding(&ev)
        .unwrap();
    // Even with no ARK in the evidence the built-in AMD root is used and the fake ASK fails.
    let Evidence::Snp(mut e) = ev else {
        unreachable!()
    };
    e.ark = None;
    let err = Verifier::new(Policy::default().any_measurement())
        .with_clock(FixedClock::at_unix(FAKE_NOW))
        .verify_without_binding(&Evidence::Snp(e))
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ChainSignature {
                signer: CertRole::Ark,
                subject: CertRole::Intermediate,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn independent_openssl_style_check_of_fake_chain_with_sev_crate() {
    // The fake chain verifies under the sev crate alone: it is "valid-looking".
    use sev::certs::snp::{ca, Certificate, Chain, Verifiable};
    let chain = Chain {
        ca: ca::Chain {
            ark: Certificate::from_der(&fake("ark.der")).unwrap(),
            ask: Certificate::from_der(&fake("ask.der")).unwrap(),
        },
        vek: Certificate::from_der(&fake("vcek.der")).unwrap(),
    };
    (&chain).verify().unwrap();
}

#[test]
fn flipped_bits_are_refused() {
    let ds = dataset("genoa-v5-oak");
    let base = snp(ds);
    let run = |report: Vec<u8>| {
        let mut e = base.clone();
        e.report = report;
        real_verifier(Policy::default().any_measurement()).verify_without_binding(&Evidence::Snp(e))
    };
    run(base.report.clone()).unwrap();
    // Signed part: guest SVN, measurement, report data, a TCB-independent field.
    for off in [0x04usize, 0x20, 0x50, 0x90, 0x90 + 47, 0xC0, 0x140, 0x1A0] {
        let mut r = base.report.clone();
        r[off] ^= 0x01;
        assert_eq!(
            run(r).unwrap_err(),
            VerifyError::BadReportSignature,
            "offset {off:#x}"
        );
    }
    // Signature R and S.
    for off in [0x2A0usize, 0x2A0 + 47, 0x2A0 + 72, 0x2A0 + 72 + 20] {
        let mut r = base.report.clone();
        r[off] ^= 0x80;
        assert_eq!(
            run(r).unwrap_err(),
            VerifyError::BadReportSignature,
            "offset {off:#x}"
        );
    }
    // Unused signature bytes and reserved bytes: refused structurally.
    for off in [
        0x2A0usize + 48,
        0x2A0 + 200,
        0x4A0 - 1,
        0x4C,
        0x18B,
        0x1EB,
        0x210,
    ] {
        let mut r = base.report.clone();
        r[off] ^= 0x01;
        assert_eq!(
            run(r).unwrap_err(),
            VerifyError::Report(ReportError::ReservedNonZero { offset: off }),
            "offset {off:#x}"
        );
    }
    // Version, signature algorithm, signing key selector.
    let mut r = base.report.clone();
    r[0] = 4;
    assert_eq!(
        run(r).unwrap_err(),
        VerifyError::Report(ReportError::UnsupportedVersion(4))
    );
    let mut r = base.report.clone();
    r[0x34] = 2;
    assert_eq!(
        run(r).unwrap_err(),
        VerifyError::Report(ReportError::UnsupportedSignatureAlgorithm(2))
    );
    let mut r = base.report.clone();
    r[0x48] = 3 << 2;
    assert_eq!(
        run(r).unwrap_err(),
        VerifyError::Report(ReportError::ReservedSigningKey(3))
    );
    let mut r = base.report.clone();
    r[0x48] = 7 << 2;
    assert_eq!(run(r).unwrap_err(), VerifyError::ReportNotSigned);
    let mut r = base.report.clone();
    r[0x48] = 0b10;
    assert_eq!(run(r).unwrap_err(), VerifyError::ChipKeyMasked);
    let mut r = base.report.clone();
    r[0x48] = 1 << 2; // says VLEK, certificate is a VCEK
    assert!(matches!(
        run(r).unwrap_err(),
        VerifyError::SignerMismatch { .. }
    ));
    let mut r = base.report.clone();
    r[0x188] = 0x17; // unknown CPU family
    assert_eq!(
        run(r).unwrap_err(),
        VerifyError::Report(ReportError::UnknownCpu {
            family: 0x17,
            model: 0x11
        })
    );
    let mut r = base.report.clone();
    r[0x189] = 0x01; // CPUID says Milan, certificate is Genoa
    assert_eq!(
        run(r).unwrap_err(),
        VerifyError::GenerationMismatch {
            report: Generation::Milan,
            certificate: Generation::Genoa
        }
    );
}

#[test]
fn wrong_generation_chain_is_refused() {
    let genoa = snp(dataset("genoa-v5-oak"));
    let (milan_ark, milan_ask) = chain(dataset("milan-v2-virtee"));
    let ev = Evidence::Snp(genoa.clone().with_chain(milan_ask, milan_ark));
    assert_eq!(
        real_verifier(Policy::default().any_measurement())
            .verify_without_binding(&ev)
            .unwrap_err(),
        VerifyError::WrongGenerationRoot {
            expected: Generation::Genoa,
            found: Generation::Milan
        }
    );
    // Genoa ARK but Turin ASK: ARK does not sign the ASK (and its name says so).
    let (genoa_ark, _) = chain(dataset("genoa-v5-oak"));
    let (_, turin_ask) = chain(dataset("turin-v5-oak"));
    let ev = Evidence::Snp(genoa.clone().with_chain(turin_ask, genoa_ark));
    assert!(matches!(
        real_verifier(Policy::default().any_measurement())
            .verify_without_binding(&ev)
            .unwrap_err(),
        VerifyError::ChainName {
            role: CertRole::Intermediate,
            ..
        }
    ));
    // A Turin VCEK presented for a Genoa report.
    let mut e = genoa;
    e.vek = read(dataset("turin-v5-oak"), "vcek.der");
    assert_eq!(
        real_verifier(Policy::default().any_measurement())
            .verify_without_binding(&Evidence::Snp(e))
            .unwrap_err(),
        VerifyError::GenerationMismatch {
            report: Generation::Genoa,
            certificate: Generation::Turin
        }
    );
}

#[test]
fn another_chips_real_vcek_is_refused() {
    // Milan report with the VCEK of another Milan chip: the real chain verifies, the signature
    // does not.
    let mut e = snp(dataset("milan-v2-virtee"));
    e.vek = read(dataset("milan-v2-debug-gosevguest"), "vcek.der");
    assert_eq!(
        real_verifier(Policy::default().any_measurement())
            .verify_without_binding(&Evidence::Snp(e))
            .unwrap_err(),
        VerifyError::BadReportSignature
    );
}

#[test]
fn vcek_tcb_or_hwid_differing_from_report_is_refused() {
    let report = fake_report().sign(&fake_key());
    let v = fake_trusting(Policy::default().any_measurement());
    assert_eq!(
        v.verify_without_binding(&fake_evidence(report.clone(), "vcek_bad_tcb.der"))
            .unwrap_err(),
        VerifyError::TcbMismatch {
            component: TcbComponent::Snp,
            certificate: 24,
            report: 25
        }
    );
    assert!(matches!(
        v.verify_without_binding(&fake_evidence(report.clone(), "vcek_bad_hwid.der"))
            .unwrap_err(),
        VerifyError::HwIdMismatch { .. }
    ));
    // hwID in DER-wrapped form is accepted.
    v.verify_without_binding(&fake_evidence(report.clone(), "vcek_wrapped_hwid.der"))
        .unwrap();
    // Report REPORTED_TCB microcode raised above the VCEK's.
    let r = fake_report()
        .reported_tcb(TcbVersion {
            microcode: 85,
            ..FAKE_TCB
        })
        .sign(&fake_key());
    assert_eq!(
        v.verify_without_binding(&fake_evidence(r, "vcek.der"))
            .unwrap_err(),
        VerifyError::TcbMismatch {
            component: TcbComponent::Microcode,
            certificate: 84,
            report: 85
        }
    );
    // Masked chip id: refused unless the policy allows it.
    let r = fake_report().chip_id(&[0; 64]).sign(&fake_key());
    assert_eq!(
        v.verify_without_binding(&fake_evidence(r.clone(), "vcek.der"))
            .unwrap_err(),
        VerifyError::ChipIdMasked
    );
    fake_trusting(Policy {
        allow_masked_chip_id: true,
        ..Policy::default().any_measurement()
    })
    .verify_without_binding(&fake_evidence(r, "vcek.der"))
    .unwrap();
}

#[test]
fn vmpl_1_is_refused_by_default() {
    let r = fake_report().vmpl(1).sign(&fake_key());
    assert_eq!(
        fake_trusting(Policy::default().any_measurement())
            .verify_without_binding(&fake_evidence(r.clone(), "vcek.der"))
            .unwrap_err(),
        VerifyError::Vmpl { vmpl: 1, max: 0 }
    );
    fake_trusting(Policy {
        max_vmpl: 1,
        ..Policy::default().any_measurement()
    })
    .verify_without_binding(&fake_evidence(r, "vcek.der"))
    .unwrap();
}

#[test]
fn debug_policy_in_fake_report_is_refused() {
    let r = fake_report().policy(0xB0000).sign(&fake_key());
    assert_eq!(
        fake_trusting(Policy::default().any_measurement())
            .verify_without_binding(&fake_evidence(r, "vcek.der"))
            .unwrap_err(),
        VerifyError::DebugAllowed { policy: 0xB0000 }
    );
}

#[test]
fn truncated_and_oversized_inputs_are_refused() {
    let base = snp(dataset("milan-v2-virtee"));
    let run = |e: SnpEvidence| {
        real_verifier(Policy::default().any_measurement()).verify_without_binding(&Evidence::Snp(e))
    };
    for len in [0usize, 1, 0x2A0, 1183] {
        let mut e = base.clone();
        e.report.truncate(len);
        assert_eq!(
            run(e).unwrap_err(),
            VerifyError::Report(ReportError::Length {
                expected: 1184,
                got: len
            })
        );
    }
    let mut e = base.clone();
    e.report.push(0);
    assert_eq!(
        run(e).unwrap_err(),
        VerifyError::Report(ReportError::Length {
            expected: 1184,
            got: 1185
        })
    );
    // Certificates: truncated, with a trailing byte, empty.
    for (role, f) in [
        (
            CertRole::Vek,
            Box::new(|e: &mut SnpEvidence| e.vek.truncate(e.vek.len() - 1))
                as Box<dyn Fn(&mut SnpEvidence)>,
        ),
        (CertRole::Vek, Box::new(|e: &mut SnpEvidence| e.vek.push(0))),
        (CertRole::Vek, Box::new(|e: &mut SnpEvidence| e.vek.clear())),
        (
            CertRole::Ark,
            Box::new(|e: &mut SnpEvidence| e.ark.as_mut().unwrap().truncate(100)),
        ),
        (
            CertRole::Intermediate,
            Box::new(|e: &mut SnpEvidence| e.intermediate.as_mut().unwrap().push(0)),
        ),
    ] {
        let mut e = base.clone();
        f(&mut e);
        let err = run(e).unwrap_err();
        assert!(
            matches!(err, VerifyError::CertificateParse { role: r, .. } if r == role),
            "{role}: {err}"
        );
    }
    // Non-hex / garbage JSON evidence does not parse.
    assert!(
        Evidence::from_json("{\"format\":\"amd-sev-snp\",\"report\":\"zz\",\"vek\":\"\"}").is_err()
    );
}

#[test]
fn tampered_certificate_signature_is_refused() {
    let mut e = snp(dataset("turin-v5-oak"));
    let n = e.vek.len();
    e.vek[n - 10] ^= 1; // inside the ASK's RSA-PSS signature over the VCEK
    let err = real_verifier(Policy::default().any_measurement())
        .verify_without_binding(&Evidence::Snp(e))
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ChainSignature {
                signer: CertRole::Intermediate,
                subject: CertRole::Vek,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn ca_cache_does_not_bypass_checks() {
    // One verifier, many requests: after a good chain has been seen, a bad one is still refused.
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Verifier>();
    let v = real_verifier(Policy::default().any_measurement());
    let good = snp(dataset("genoa-v5-oak"));
    v.verify_without_binding(&Evidence::Snp(good.clone()))
        .unwrap();
    v.verify_without_binding(&Evidence::Snp(good.clone()))
        .unwrap();
    let mut bad = good.clone();
    bad.intermediate = Some(fake("ask.der"));
    assert!(matches!(
        v.verify_without_binding(&Evidence::Snp(bad)).unwrap_err(),
        VerifyError::ChainSignature {
            signer: CertRole::Ark,
            subject: CertRole::Intermediate,
            ..
        }
    ));
    let mut bad = good.clone();
    let n = bad.vek.len();
    bad.vek[n - 3] ^= 1;
    assert!(matches!(
        v.verify_without_binding(&Evidence::Snp(bad)).unwrap_err(),
        VerifyError::ChainSignature {
            signer: CertRole::Intermediate,
            subject: CertRole::Vek,
            ..
        }
    ));
    let mut bad = good;
    bad.report[0x90] ^= 1;
    assert_eq!(
        v.verify_without_binding(&Evidence::Snp(bad)).unwrap_err(),
        VerifyError::BadReportSignature
    );
}

#[test]
fn any_single_byte_change_in_the_report_is_refused() {
    // Seeded, reproducible: LIT_TEST_SEED=<u64> replays a run.
    let (mut rng, seed) = seeded_rng(
        "any_single_byte_change_in_the_report_is_refused",
        OsRng.next_u64(),
    );
    let mut next = move || rng.next_u64();
    let v = real_verifier(Policy::default().any_measurement());
    let base = snp(dataset("turin-v5-oak"));
    for _ in 0..200 {
        let off = (next() % 1184) as usize;
        let delta = (next() % 255 + 1) as u8;
        let mut e = base.clone();
        e.report[off] ^= delta;
        assert!(
            v.verify_without_binding(&Evidence::Snp(e)).is_err(),
            "byte {off:#x} ^ {delta:#x} accepted (seed {seed})"
        );
    }
}
