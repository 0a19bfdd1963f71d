//! Every real AMD dataset in `testdata/` verifies against the pinned root of its generation, and
//! the decoder agrees with `expected.json` (decoded independently at the ABI offsets) and with
//! the `sev` crate's own decoder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lit_attest::*;

#[test]
fn every_dataset_verifies_with_its_pinned_root() {
    for ds in DATASETS {
        let ev = evidence(ds);
        let policy = ds.policy();
        let v = Verifier::new(policy)
            .with_clock(FixedClock::at_unix(SEP_2025))
            .verify_without_binding(&ev)
            .unwrap_or_else(|e| panic!("{}: {e}", ds.dir));
        assert_eq!(v.generation, ds.generation, "{}", ds.dir);
        assert!(v.is_hardware());
        assert_eq!(
            v.signer,
            if ds.vlek { Signer::Vlek } else { Signer::Vcek },
            "{}",
            ds.dir
        );
    }
}

#[test]
fn every_dataset_verifies_with_builtin_chain() {
    // No ASK/ARK in the evidence: the built-in AMD certificates are used (Milan ASVK for VLEK).
    for ds in DATASETS {
        let mut ev = snp(ds);
        ev.intermediate = None;
        ev.ark = None;
        Verifier::new(ds.policy())
            .with_clock(FixedClock::at_unix(SEP_2025))
            .verify_without_binding(&Evidence::Snp(ev))
            .unwrap_or_else(|e| panic!("{}: {e}", ds.dir));
    }
}

#[test]
fn decoder_matches_expected_json_and_sev_crate() {
    for ds in DATASETS {
        let raw = read(ds, "report.bin");
        let exp: serde_json::Value = serde_json::from_slice(&read(ds, "expected.json")).unwrap();
        let r = Report::parse(&raw, Some(ds.generation)).unwrap();
        let s = |k: &str| exp[k].as_str().unwrap().to_string();
        let n = |k: &str| exp[k].as_u64().unwrap();
        assert_eq!(r.version as u64, n("version"), "{}", ds.dir);
        assert_eq!(r.guest_svn as u64, n("guest_svn"));
        assert_eq!(format!("{:#x}", r.policy.0), s("policy"));
        assert_eq!(
            r.policy.debug_allowed(),
            exp["policy_debug_allowed"].as_bool().unwrap()
        );
        assert_eq!(
            r.policy.smt_allowed(),
            exp["policy_smt_allowed"].as_bool().unwrap()
        );
        assert_eq!(r.vmpl as u64, n("vmpl"));
        assert_eq!(r.sig_algo as u64, n("sig_algo"));
        assert_eq!(format!("{:#x}", r.platform_info), s("platform_info"));
        assert_eq!(r.signing_key.to_string(), s("signing_key"));
        assert_eq!(r.mask_chip_key, exp["mask_chip_key"].as_bool().unwrap());
        assert_eq!(hex::encode(r.report_data), s("report_data"));
        assert_eq!(hex::encode(r.measurement), s("measurement"));
        assert_eq!(hex::encode(r.host_data), s("host_data"));
        assert_eq!(hex::encode(r.id_key_digest), s("id_key_digest"));
        assert_eq!(hex::encode(r.report_id), s("report_id"));
        assert_eq!(hex::encode(r.chip_id), s("chip_id"));
        assert_eq!(r.current_fw.to_string(), s("current_fw"));
        assert_eq!(r.committed_fw.to_string(), s("committed_fw"));
        for (key, tcb) in [
            ("current_tcb", r.current_tcb),
            ("reported_tcb", r.reported_tcb),
            ("committed_tcb", r.committed_tcb),
            ("launch_tcb", r.launch_tcb),
        ] {
            let t = &exp[key];
            assert_eq!(
                tcb.bootloader as u64,
                t["bootloader"].as_u64().unwrap(),
                "{key}"
            );
            assert_eq!(tcb.tee as u64, t["tee"].as_u64().unwrap(), "{key}");
            assert_eq!(tcb.snp as u64, t["snp"].as_u64().unwrap(), "{key}");
            assert_eq!(
                tcb.microcode as u64,
                t["microcode"].as_u64().unwrap(),
                "{key}"
            );
            assert_eq!(tcb.fmc.map(u64::from), t["fmc"].as_u64(), "{key}");
        }
        assert_eq!(r.cpuid_fam_id.map(u64::from), exp["cpuid_fam_id"].as_u64());
        assert_eq!(r.cpuid_mod_id.map(u64::from), exp["cpuid_mod_id"].as_u64());
        assert_eq!(r.cpuid_step.map(u64::from), exp["cpuid_step"].as_u64());
        if let Some(v) = exp.get("launch_mit_vector") {
            assert_eq!(
                format!("{:#x}", r.launch_mit_vector.unwrap()),
                v.as_str().unwrap()
            );
            assert_eq!(
                format!("{:#x}", r.current_mit_vector.unwrap()),
                exp["current_mit_vector"].as_str().unwrap()
            );
        }
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha384::digest(r.signed_bytes())),
            s("sha384_signed_region_0_0x2a0")
        );

        // Independent decoder: the sev crate (its v2 decoder needs a non-masked chip id).
        use sev::parser::ByteParser;
        let theirs = sev::firmware::guest::AttestationReport::from_bytes(&raw).unwrap();
        assert_eq!(theirs.measurement, r.measurement);
        assert_eq!(theirs.report_data, r.report_data);
        assert_eq!(theirs.chip_id, r.chip_id);
        assert_eq!(theirs.vmpl, r.vmpl);
        assert_eq!(u64::from(theirs.policy), r.policy.0);
        assert_eq!(theirs.reported_tcb.bootloader, r.reported_tcb.bootloader);
        assert_eq!(theirs.reported_tcb.snp, r.reported_tcb.snp);
        assert_eq!(theirs.reported_tcb.microcode, r.reported_tcb.microcode);
        assert_eq!(theirs.reported_tcb.fmc, r.reported_tcb.fmc);
    }
}

#[test]
fn independent_check_with_sev_crate_chain_verification() {
    // The sev crate's own Chain + report verification accepts the same data (independent of our
    // pinning/extension code), so our acceptance is not an artefact of our own parser.
    use sev::certs::snp::{ca, Certificate, Chain, Verifiable};
    use sev::parser::ByteParser;
    for ds in DATASETS {
        let ev = snp(ds);
        let chain = Chain {
            ca: ca::Chain {
                ark: Certificate::from_der(ev.ark.as_ref().unwrap()).unwrap(),
                ask: Certificate::from_der(ev.intermediate.as_ref().unwrap()).unwrap(),
            },
            vek: Certificate::from_der(&ev.vek).unwrap(),
        };
        let report = sev::firmware::guest::AttestationReport::from_bytes(&ev.report).unwrap();
        (&chain, &report).verify().unwrap();
    }
}

#[test]
fn pinned_digests_equal_builtin_and_testdata_arks() {
    use sha2::Digest;
    for ds in DATASETS {
        let ev = snp(ds);
        let d = hex::encode(sha2::Sha256::digest(ev.ark.as_ref().unwrap()));
        let pin = lit_attest::certs::AMD_ARK_SHA256
            .iter()
            .find(|(g, _)| *g == ds.generation)
            .unwrap()
            .1;
        assert_eq!(d, pin, "{}", ds.dir);
    }
}

#[test]
fn debug_report_refused_by_default_accepted_when_allowed() {
    let ds = dataset("milan-v2-debug-gosevguest");
    let ev = evidence(ds);
    let err = Verifier::new(any())
        .with_clock(FixedClock::at_unix(SEP_2025))
        .verify_without_binding(&ev)
        .unwrap_err();
    assert_eq!(err, VerifyError::DebugAllowed { policy: 0xb0000 });
    let p = Policy {
        allow_debug: true,
        ..any()
    };
    Verifier::new(p)
        .with_clock(FixedClock::at_unix(SEP_2025))
        .verify_without_binding(&ev)
        .unwrap();
}

#[test]
fn vlek_report_vmpl1_refused_by_default_and_expired_after_dec_2025() {
    let ds = dataset("milan-v3-vlek-aws-trustee");
    let ev = evidence(ds);
    let err = Verifier::new(any())
        .with_clock(FixedClock::at_unix(SEP_2025))
        .verify_without_binding(&ev)
        .unwrap_err();
    assert_eq!(err, VerifyError::Vmpl { vmpl: 1, max: 0 });
    let p = Policy {
        max_vmpl: 1,
        ..any()
    };
    Verifier::new(p.clone())
        .with_clock(FixedClock::at_unix(SEP_2025))
        .verify_without_binding(&ev)
        .unwrap();
    // After 2025-12-10 the VLEK has expired.
    let err = Verifier::new(p.clone())
        .with_clock(FixedClock::at_unix(JAN_2026))
        .verify_without_binding(&ev)
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::CertificateValidity {
                role: CertRole::Vek,
                ..
            }
        ),
        "{err}"
    );
    // A policy refusing VLEKs.
    let err = Verifier::new(Policy {
        allow_vlek: false,
        ..p
    })
    .with_clock(FixedClock::at_unix(SEP_2025))
    .verify_without_binding(&ev)
    .unwrap_err();
    assert_eq!(err, VerifyError::VlekNotAllowed);
}

#[test]
fn measurement_allow_list_and_min_tcb_per_component() {
    let ds = dataset("genoa-v5-oak");
    let ev = evidence(ds);
    let r = Report::parse(&read(ds, "report.bin"), None).unwrap();
    let at = |p: Policy| {
        Verifier::new(p)
            .with_clock(FixedClock::at_unix(SEP_2025))
            .verify_without_binding(&ev)
    };
    at(Policy::default().allow_measurement(&r.measurement)).unwrap();
    let mut other = r.measurement;
    other[0] ^= 1;
    assert_eq!(
        at(Policy::default().allow_measurement(&other)).unwrap_err(),
        VerifyError::MeasurementNotAllowed(hex::encode(r.measurement))
    );
    // Genoa TCB bl10 tee0 snp25 uc84. Microcode far above the minimum does not make up for SNP.
    let p = Policy {
        min_tcb: MinTcb {
            snp: 26,
            microcode: 1,
            ..MinTcb::default()
        },
        ..any()
    };
    assert_eq!(
        at(p).unwrap_err(),
        VerifyError::TcbTooLow {
            component: TcbComponent::Snp,
            have: 25,
            need: 26
        }
    );
    let p = Policy {
        min_tcb: MinTcb {
            bootloader: 10,
            snp: 25,
            microcode: 84,
            ..MinTcb::default()
        },
        ..any()
    };
    at(p).unwrap();
    // Chip allow-list.
    let p = Policy {
        allowed_chip_ids: vec![hex::encode(r.chip_id)],
        ..any()
    };
    at(p).unwrap();
    let p = Policy {
        allowed_chip_ids: vec!["00".repeat(64)],
        ..any()
    };
    assert!(matches!(
        at(p).unwrap_err(),
        VerifyError::ChipIdNotAllowed(_)
    ));
}

#[test]
fn turin_fmc_min_tcb_and_8_byte_chip_id() {
    let ds = dataset("turin-v5-oak");
    let ev = evidence(ds);
    let r = Report::parse(&read(ds, "report.bin"), None).unwrap();
    assert_eq!(r.hw_id().len(), 8);
    let at = |p: Policy| {
        Verifier::new(p)
            .with_clock(FixedClock::at_unix(SEP_2025))
            .verify_without_binding(&ev)
    };
    let p = Policy {
        min_tcb: MinTcb {
            fmc: 1,
            ..MinTcb::default()
        },
        ..any()
    };
    assert_eq!(
        at(p).unwrap_err(),
        VerifyError::TcbTooLow {
            component: TcbComponent::Fmc,
            have: 0,
            need: 1
        }
    );
    // The 8-byte Turin hwID is accepted in the chip allow-list.
    let p = Policy {
        allowed_chip_ids: vec![hex::encode(r.hw_id())],
        ..any()
    };
    at(p).unwrap();
}

/// The policies of these tests check everything but the measurement, unless they say so.
fn any() -> Policy {
    Policy::default().any_measurement()
}

/// A network's release register decides which real AMD reports are accepted: a report is
/// accepted when its measurement is an active release and its TCB meets the release's floor,
/// refused when no release lists it, when its release is revoked, or when its TCB is below the
/// release's floor; a release's flags admit a debug guest or refuse a VLEK-signed report.
#[test]
fn real_reports_against_a_release_register() {
    let verify = |ds: &Dataset, p: Policy| {
        Verifier::new(p)
            .with_clock(FixedClock::at_unix(SEP_2025))
            .verify_without_binding(&evidence(ds))
    };
    for ds in DATASETS {
        let r = Report::parse(&read(ds, "report.bin"), Some(ds.generation)).unwrap();
        let m = hex::encode(r.measurement);
        let base = Policy {
            max_vmpl: ds.vmpl,
            ..Policy::default()
        };
        let mut release = Release::new(r.measurement);
        release.allow_debug = ds.debug;
        // No release lists it: refused by the default policy, which no longer accepts any
        // measurement.
        assert_eq!(
            verify(ds, base.clone()).unwrap_err(),
            VerifyError::MeasurementNotAllowed(m.clone()),
            "{}",
            ds.dir
        );
        let mut other = release.clone();
        other.measurement[47] ^= 1;
        assert_eq!(
            verify(ds, base.clone().with_releases([other])).unwrap_err(),
            VerifyError::MeasurementNotAllowed(m.clone()),
            "{}",
            ds.dir
        );
        // An active release: accepted.
        let v = verify(ds, base.clone().with_releases([release.clone()])).unwrap();
        assert_eq!(v.report.measurement, r.measurement);
        // Revoked: refused by name, even with the measurement on the local list too.
        let revoked = Release {
            revoked: true,
            ..release.clone()
        };
        assert_eq!(
            verify(
                ds,
                base.clone()
                    .allow_measurement(&r.measurement)
                    .with_releases([release.clone(), revoked.clone()])
            )
            .unwrap_err(),
            VerifyError::MeasurementRevoked(m.clone()),
            "{}",
            ds.dir
        );
        assert_eq!(
            verify(ds, base.clone().any_measurement().with_releases([revoked])).unwrap_err(),
            VerifyError::MeasurementRevoked(m.clone())
        );
        // A TCB floor one above the report's SNP firmware: refused; at it: accepted.
        let snp = r.reported_tcb.get(TcbComponent::Snp).unwrap();
        let above = Release {
            min_tcb: MinTcb {
                snp: snp + 1,
                ..MinTcb::default()
            },
            ..release.clone()
        };
        assert_eq!(
            verify(ds, base.clone().with_releases([above])).unwrap_err(),
            VerifyError::TcbTooLow {
                component: TcbComponent::Snp,
                have: snp,
                need: snp + 1
            },
            "{}",
            ds.dir
        );
        let at = Release {
            min_tcb: MinTcb {
                snp,
                ..MinTcb::default()
            },
            ..release.clone()
        };
        verify(ds, base.clone().with_releases([at])).unwrap();
        // Flags.
        if ds.debug {
            let no_debug = Release {
                allow_debug: false,
                ..release.clone()
            };
            assert!(matches!(
                verify(ds, base.clone().with_releases([no_debug])).unwrap_err(),
                VerifyError::DebugAllowed { .. }
            ));
        }
        let vcek_only = Release {
            vcek_only: true,
            ..release.clone()
        };
        let result = verify(ds, base.clone().with_releases([vcek_only]));
        if ds.vlek {
            assert_eq!(
                result.unwrap_err(),
                VerifyError::VlekNotAllowedForRelease(m.clone())
            );
        } else {
            result.unwrap();
        }
    }
}

#[test]
fn a_release_round_trips_through_json_and_flags() {
    let mut r = Release::new([0xab; 48]);
    r.min_tcb.snp = 22;
    r.vcek_only = true;
    let text = serde_json::to_string(&r).unwrap();
    assert!(text.contains(&"ab".repeat(48)), "{text}");
    assert_eq!(serde_json::from_str::<Release>(&text).unwrap(), r);
    assert_eq!(r.flags(), RELEASE_FLAG_VCEK_ONLY);
    assert_eq!(Release::new([0xab; 48]).with_flags(3).flags(), 3);
    let err = serde_json::from_str::<Release>(r#"{"measurement": "abcd"}"#).unwrap_err();
    assert!(err.to_string().contains("48 bytes"), "{err}");
}
