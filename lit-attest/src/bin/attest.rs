//! `attest`: operator CLI for AMD SEV-SNP evidence.
//!
//! ```text
//! attest verify <report> <vcek-or-vlek> [--policy FILE] [--chain PEM] [--at UNIX_SECONDS]
//! ```
//! Prints the decoded report and the verdict; exits 0 when accepted, 1 when refused, 2 on usage
//! or I/O errors. Without `--policy` the default policy applies (debug off, VMPL 0) except that
//! any measurement is accepted (it is printed for the operator to compare with the network's
//! releases), and no binding is checked.

use std::process::ExitCode;

use lit_attest::certs::{certificates_from_bytes, select_chain, vek_generation};
use lit_attest::report::ReportHeader;
use lit_attest::{Evidence, FixedClock, Policy, Report, SnpEvidence, Verifier};

const USAGE: &str =
    "usage: attest verify <report> <vcek-or-vlek> [--policy FILE] [--chain PEM] [--at UNIX_SECONDS]
  <report>         1184-byte SEV-SNP attestation report (binary)
  <vcek-or-vlek>   the VCEK or VLEK certificate (DER or PEM)
  --policy FILE    JSON policy (see lit_attest::Policy; its `releases` are a release
                   register's entries); default: debug off, VMPL 0, any measurement
  --chain PEM      ASK/ASVK and ARK (PEM stack or DER); default: AMD's built-in certificates
  --at SECONDS     check certificate validity at this Unix time instead of now";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(msg) => {
            eprintln!("attest: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn run(args: &[String]) -> Result<bool, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("verify") => {}
        Some("-h") | Some("--help") | Some("help") => {
            println!("{USAGE}");
            return Ok(true);
        }
        Some(other) => return Err(format!("unknown command {other:?}")),
        None => return Err("missing command".into()),
    }
    let mut positional = Vec::new();
    let mut policy = Policy::default().any_measurement();
    let mut chain = None;
    let mut at = None;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--policy" => {
                let f = it.next().ok_or("--policy needs a file")?;
                let text = String::from_utf8(read(f)?).map_err(|e| format!("{f}: {e}"))?;
                policy = Policy::from_json(&text).map_err(|e| format!("policy {f}: {e}"))?;
            }
            "--chain" => chain = Some(read(it.next().ok_or("--chain needs a file")?)?),
            "--at" => {
                let s = it.next().ok_or("--at needs Unix seconds")?;
                at = Some(s.parse::<u64>().map_err(|e| format!("--at {s}: {e}"))?);
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => positional.push(a.clone()),
        }
    }
    let [report_path, vek_path] = positional.as_slice() else {
        return Err("verify needs <report> and <vcek-or-vlek>".into());
    };
    let report = read(report_path)?;
    let vek = read(vek_path)?;
    let mut evidence = SnpEvidence::new(report.clone(), vek.clone());
    if let Some(c) = chain {
        let certs = certificates_from_bytes(&c).map_err(|e| format!("--chain: {e}"))?;
        let kind = ReportHeader::parse(&report)
            .map(|h| h.signing_key)
            .unwrap_or(lit_attest::SigningKey::Vcek);
        let (ark, inter) = select_chain(&certs, kind);
        evidence.ark = ark;
        evidence.intermediate = inter;
    }

    // Decode for display (the generation of a v2 report comes from the certificate).
    let generation = vek_generation(&vek).ok();
    match Report::parse(&report, generation) {
        Ok(r) => println!("{r}"),
        Err(e) => println!("(report cannot be decoded: {e})"),
    }

    let mut verifier = Verifier::new(policy);
    if let Some(t) = at {
        verifier = verifier.with_clock(FixedClock::at_unix(t));
    }
    match verifier.verify_without_binding(&Evidence::Snp(evidence)) {
        Ok(v) => {
            println!(
                "verdict: ACCEPTED ({} report, signed by {:?}, AMD root pinned; no binding checked)",
                v.generation, v.signer
            );
            Ok(true)
        }
        Err(e) => {
            println!("verdict: REFUSED: {e}");
            Ok(false)
        }
    }
}
