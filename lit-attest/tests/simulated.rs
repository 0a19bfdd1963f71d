//! The simulated attester: accepted only when the policy allows it, and loudly not hardware.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lit_attest::*;

fn bind(v: &Verifier) -> Binding {
    Binding::new(b"node-key", v.issue_nonce(), 3)
}

#[test]
fn refused_by_default_policy() {
    let att = SimulatedAttester::new([7; 48]);
    let v = Verifier::new(Policy::default());
    let b = bind(&v);
    let ev = att.attest(&b.report_data()).unwrap();
    assert!(!ev.is_hardware());
    assert_eq!(
        v.verify(&ev, &b).unwrap_err(),
        VerifyError::SimulatedNotAllowed
    );
    assert!(VerifyError::SimulatedNotAllowed
        .to_string()
        .contains("SIMULATED"));
}

#[test]
fn accepted_when_allowed_with_same_binding_rules() {
    let att = SimulatedAttester::new([7; 48]);
    let v = Verifier::new(Policy::development().allow_measurement(&[7; 48]));
    let b = bind(&v);
    let ev = att.attest(&b.report_data()).unwrap();
    let json = ev.to_json();
    assert!(json.contains("LIT-SIMULATED-SNP-NOT-HARDWARE"));
    assert!(json.contains("\"simulated\":true"));
    let ev = Evidence::from_json(&json).unwrap();
    let ok = v.verify(&ev, &b).unwrap();
    assert_eq!(ok.signer, Signer::Simulated);
    assert!(!ok.is_hardware());
    // Replay refused; other nonce refused.
    assert_eq!(v.verify(&ev, &b).unwrap_err(), VerifyError::NonceReplayed);
    let b2 = bind(&v);
    assert_eq!(
        v.verify(&ev, &b2).unwrap_err(),
        VerifyError::BindingMismatch
    );
}

#[test]
fn policy_checks_apply_and_tampering_detected() {
    let v = Verifier::new(Policy::development().any_measurement());
    let b = bind(&v);
    let ev = SimulatedAttester::new([1; 48])
        .with_guest_policy(0xB0000)
        .attest(&b.report_data())
        .unwrap();
    assert_eq!(
        v.verify(&ev, &b).unwrap_err(),
        VerifyError::DebugAllowed { policy: 0xB0000 }
    );
    let ev = SimulatedAttester::new([1; 48])
        .with_vmpl(2)
        .attest(&b.report_data())
        .unwrap();
    assert_eq!(
        v.verify(&ev, &b).unwrap_err(),
        VerifyError::Vmpl { vmpl: 2, max: 0 }
    );
    // Tampered measurement.
    let Evidence::Simulated(mut s) = SimulatedAttester::new([1; 48])
        .attest(&b.report_data())
        .unwrap()
    else {
        panic!("not simulated")
    };
    s.report[0x90] ^= 1;
    assert_eq!(
        v.verify(&Evidence::Simulated(s.clone()), &b).unwrap_err(),
        VerifyError::BadReportSignature
    );
    // Marker removed.
    s.report[0x90] ^= 1;
    s.simulated = false;
    assert!(matches!(
        v.verify(&Evidence::Simulated(s), &b).unwrap_err(),
        VerifyError::SimulatedInvalid(_)
    ));
}

#[test]
fn simulated_key_allow_list() {
    let att = SimulatedAttester::new([1; 48]);
    let other = SimulatedAttester::new([1; 48]);
    let policy = Policy {
        allow_simulated: true,
        simulated_keys: vec![hex::encode(att.public_key())],
        releases: vec![Release::new([1; 48])],
        ..Policy::default()
    };
    let v = Verifier::new(policy);
    let b = bind(&v);
    assert!(matches!(
        v.verify(&other.attest(&b.report_data()).unwrap(), &b)
            .unwrap_err(),
        VerifyError::SimulatedInvalid(_)
    ));
    v.verify(&att.attest(&b.report_data()).unwrap(), &b)
        .unwrap();
    assert!(format!("{att:?}").contains("<redacted>"));
}
