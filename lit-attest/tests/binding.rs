//! Binding of identity key + nonce into REPORT_DATA, and single-use nonces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use lit_attest::*;

/// A clock the test can move.
#[derive(Clone)]
struct TestClock(Arc<AtomicU64>);

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
}

fn setup() -> (Verifier, TestClock) {
    let clock = TestClock(Arc::new(AtomicU64::new(FAKE_NOW)));
    let ark = fake("ark.der");
    let v = Verifier::new(Policy::default().any_measurement())
        .with_trust_anchors(TrustAnchors::custom(&[(Generation::Genoa, &ark)]))
        .with_clock(clock.clone())
        .with_nonce_ttl(Duration::from_secs(60));
    (v, clock)
}

fn bound_evidence(binding: &Binding) -> Evidence {
    fake_evidence(
        fake_report()
            .report_data(&binding.report_data())
            .sign(&fake_key()),
        "vcek.der",
    )
}

const NODE_KEY: &[u8] = b"node identity public key bytes";

#[test]
fn bound_report_accepted_once() {
    let (v, _) = setup();
    let nonce = v.issue_nonce();
    let b = Binding::new(NODE_KEY, nonce, 7);
    let ev = bound_evidence(&b);
    let ok = v.verify(&ev, &b).unwrap();
    assert_eq!(ok.report.report_data, b.report_data());
    // Replay of the same evidence and nonce.
    assert_eq!(v.verify(&ev, &b).unwrap_err(), VerifyError::NonceReplayed);
}

#[test]
fn report_for_one_nonce_or_key_refused_for_another() {
    let (v, _) = setup();
    let n1 = v.issue_nonce();
    let n2 = v.issue_nonce();
    let ev = bound_evidence(&Binding::new(NODE_KEY, n1, 7));
    // Other nonce (issued, fresh) → binding mismatch.
    assert_eq!(
        v.verify(&ev, &Binding::new(NODE_KEY, n2, 7)).unwrap_err(),
        VerifyError::BindingMismatch
    );
    // Other key.
    assert_eq!(
        v.verify(&ev, &Binding::new(b"another node key", n1, 7))
            .unwrap_err(),
        VerifyError::BindingMismatch
    );
    // Other epoch, other context.
    assert_eq!(
        v.verify(&ev, &Binding::new(NODE_KEY, n1, 8)).unwrap_err(),
        VerifyError::BindingMismatch
    );
    let mut with_ctx = Binding::new(NODE_KEY, n1, 7);
    with_ctx.context = b"net".to_vec();
    assert_eq!(
        v.verify(&ev, &with_ctx).unwrap_err(),
        VerifyError::BindingMismatch
    );
    // Failed attempts do not consume the nonce: the right binding still passes.
    v.verify(&ev, &Binding::new(NODE_KEY, n1, 7)).unwrap();
}

#[test]
fn nonce_not_issued_or_expired_is_refused() {
    let (v, clock) = setup();
    let foreign = Nonce([9; 32]);
    let b = Binding::new(NODE_KEY, foreign, 1);
    assert_eq!(
        v.verify(&bound_evidence(&b), &b).unwrap_err(),
        VerifyError::UnknownNonce
    );
    let nonce = v.issue_nonce();
    let b = Binding::new(NODE_KEY, nonce, 1);
    clock.0.fetch_add(61, Ordering::SeqCst);
    assert_eq!(
        v.verify(&bound_evidence(&b), &b).unwrap_err(),
        VerifyError::NonceExpired
    );
}

#[test]
fn real_report_data_is_not_a_binding_for_us() {
    // A genuine AMD report bound to someone else's data is refused by the binding check.
    let ds = dataset("milan-v2-virtee");
    let v = Verifier::new(Policy::default().any_measurement())
        .with_clock(FixedClock::at_unix(SEP_2025));
    let nonce = v.issue_nonce();
    assert_eq!(
        v.verify(&evidence(ds), &Binding::new(NODE_KEY, nonce, 0))
            .unwrap_err(),
        VerifyError::BindingMismatch
    );
}

#[test]
fn binding_digest_is_length_delimited_sha512() {
    use sha2::{Digest, Sha512};
    let b = Binding {
        identity_public_key: vec![1, 2, 3],
        nonce: Nonce([5; 32]),
        epoch: 0x0102,
        context: vec![9],
    };
    let mut h = Sha512::new();
    h.update(b"LIT-ATTEST-REPORT-DATA-v1");
    h.update([0, 0, 0, 3, 1, 2, 3]);
    h.update([5; 32]);
    h.update([0, 0, 0, 0, 0, 0, 1, 2]);
    h.update([0, 0, 0, 1, 9]);
    let want: [u8; 64] = h.finalize().into();
    assert_eq!(b.report_data(), want);
    assert!(b.matches(&want));
    // Moving a byte between fields changes the digest.
    let c = Binding {
        identity_public_key: vec![1, 2],
        context: vec![3, 9],
        ..b.clone()
    };
    assert_ne!(b.report_data(), c.report_data());
}
