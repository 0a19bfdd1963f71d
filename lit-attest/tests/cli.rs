//! The `attest` operator CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn td(p: &str) -> String {
    format!("{}/testdata/{p}", env!("CARGO_MANIFEST_DIR"))
}

fn attest(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn accepts_real_report_with_default_policy() {
    let (code, out) = attest(&[
        "verify",
        &td("milan-v2-virtee/report.bin"),
        &td("milan-v2-virtee/vcek.der"),
        "--chain",
        &td("milan-v2-virtee/ask_ark.pem"),
        "--at",
        "1756684800",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("measurement:      7a1e5c266c0108dbc9bb94fa"),
        "{out}"
    );
    assert!(out.contains("verdict: ACCEPTED"), "{out}");
}

#[test]
fn refuses_debug_report_and_accepts_with_policy_file() {
    let args = [
        "verify",
        &td("milan-v2-debug-gosevguest/report.bin"),
        &td("milan-v2-debug-gosevguest/vcek.der"),
        "--at",
        "1756684800",
    ];
    let (code, out) = attest(&args);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("verdict: REFUSED: guest policy 0xb0000 allows debugging"),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("policy.json");
    std::fs::write(&pol, r#"{"allow_debug": true}"#).unwrap();
    let mut with = args.to_vec();
    let pol_path = pol.to_str().unwrap().to_string();
    with.extend(["--policy", &pol_path]);
    // a policy file approves no software unless it says which
    let (code, out) = attest(&with);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is not an approved software image"), "{out}");
    // a release register's entry for this image, test release (debug allowed)
    let report = std::fs::read(td("milan-v2-debug-gosevguest/report.bin")).unwrap();
    let m = hex::encode(
        lit_attest::Report::parse(&report, Some(lit_attest::Generation::Milan))
            .unwrap()
            .measurement,
    );
    std::fs::write(
        &pol,
        format!(r#"{{"releases": [{{"measurement": "{m}", "allow_debug": true}}]}}"#),
    )
    .unwrap();
    let (code, out) = attest(&with);
    assert_eq!(code, 0, "{out}");
    std::fs::write(
        &pol,
        format!(
            r#"{{"releases": [{{"measurement": "{m}", "allow_debug": true, "revoked": true}}]}}"#
        ),
    )
    .unwrap();
    let (code, out) = attest(&with);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("revoked release"), "{out}");
}

#[test]
fn vlek_vmpl_and_usage_errors() {
    let (code, out) = attest(&[
        "verify",
        &td("milan-v3-vlek-aws-trustee/report.bin"),
        &td("milan-v3-vlek-aws-trustee/vlek.der"),
        "--at",
        "1756684800",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("VMPL 1"), "{out}");
    let (code, _) = attest(&["verify", &td("milan-v2-virtee/report.bin")]);
    assert_eq!(code, 2);
    let (code, _) = attest(&["frobnicate"]);
    assert_eq!(code, 2);
    let (code, _) = attest(&["verify", "/nonexistent", "/nonexistent"]);
    assert_eq!(code, 2);
}
