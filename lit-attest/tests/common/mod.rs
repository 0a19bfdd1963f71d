//! Shared helpers for the integration tests: the real datasets in `testdata/`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use lit_attest::report::ReportBuilder;
use lit_attest::*;
use p384::pkcs8::DecodePrivateKey;

/// 2025-09-01T00:00:00Z: inside the validity of every dataset certificate (Genoa VCEK from
/// 2025-08-07, VLEK until 2025-12-10).
pub const SEP_2025: u64 = 1_756_684_800;
/// 2026-01-01T00:00:00Z: after the VLEK expired.
pub const JAN_2026: u64 = 1_767_225_600;

pub struct Dataset {
    pub dir: &'static str,
    pub generation: Generation,
    pub vlek: bool,
    pub vek_file: &'static str,
    pub debug: bool,
    pub vmpl: u32,
}

impl Dataset {
    /// The least policy this dataset passes (debug / VMPL as the data has them), any
    /// measurement.
    pub fn policy(&self) -> Policy {
        Policy {
            allow_debug: self.debug,
            max_vmpl: self.vmpl,
            any_measurement: true,
            ..Policy::default()
        }
    }
}

pub const DATASETS: &[Dataset] = &[
    Dataset {
        dir: "milan-v2-virtee",
        generation: Generation::Milan,
        vlek: false,
        vek_file: "vcek.der",
        debug: false,
        vmpl: 0,
    },
    Dataset {
        dir: "milan-v2-debug-gosevguest",
        generation: Generation::Milan,
        vlek: false,
        vek_file: "vcek.der",
        debug: true,
        vmpl: 0,
    },
    Dataset {
        dir: "milan-v3-vlek-aws-trustee",
        generation: Generation::Milan,
        vlek: true,
        vek_file: "vlek.der",
        debug: false,
        vmpl: 1,
    },
    Dataset {
        dir: "genoa-v5-oak",
        generation: Generation::Genoa,
        vlek: false,
        vek_file: "vcek.der",
        debug: false,
        vmpl: 0,
    },
    Dataset {
        dir: "turin-v5-oak",
        generation: Generation::Turin,
        vlek: false,
        vek_file: "vcek.der",
        debug: false,
        vmpl: 0,
    },
];

pub fn dataset(dir: &str) -> &'static Dataset {
    DATASETS.iter().find(|d| d.dir == dir).unwrap()
}

pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

pub fn read(ds: &Dataset, file: &str) -> Vec<u8> {
    std::fs::read(testdata().join(ds.dir).join(file)).unwrap()
}

/// ARK and ASK/ASVK (DER) of a dataset, from its PEM files.
pub fn chain(ds: &Dataset) -> (Vec<u8>, Vec<u8>) {
    let dir = testdata().join(ds.dir);
    let mut pems = Vec::new();
    for f in ["ask_ark.pem", "ask_ark_asvk.pem", "ark.pem", "ask.pem"] {
        if let Ok(b) = std::fs::read(dir.join(f)) {
            pems.extend(lit_attest::certs::certificates_from_bytes(&b).unwrap());
        }
    }
    let kind = if ds.vlek {
        SigningKey::Vlek
    } else {
        SigningKey::Vcek
    };
    let (ark, inter) = lit_attest::certs::select_chain(&pems, kind);
    (ark.unwrap(), inter.unwrap())
}

pub fn snp(ds: &Dataset) -> SnpEvidence {
    let (ark, inter) = chain(ds);
    SnpEvidence::new(read(ds, "report.bin"), read(ds, ds.vek_file)).with_chain(inter, ark)
}

pub fn evidence(ds: &Dataset) -> Evidence {
    Evidence::Snp(snp(ds))
}

/// 2027-01-15: inside the validity of the fake chain (made 2026-11-26, 10 years).
pub const FAKE_NOW: u64 = 1_800_000_000;

pub fn fake(file: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/fake")
            .join(file),
    )
    .unwrap()
}

pub fn fake_key() -> p384::ecdsa::SigningKey {
    let pem = String::from_utf8(fake("vcek.key")).unwrap();
    p384::ecdsa::SigningKey::from_pkcs8_pem(&pem).unwrap()
}

pub fn fake_chip() -> [u8; 64] {
    let hex_id = String::from_utf8(fake("chip_id.hex")).unwrap();
    let mut id = [0u8; 64];
    hex::decode_to_slice(hex_id.trim(), &mut id).unwrap();
    id
}

pub const FAKE_TCB: TcbVersion = TcbVersion {
    fmc: None,
    bootloader: 10,
    tee: 0,
    snp: 25,
    microcode: 84,
};

/// A Genoa v5 report that is right in every respect except that the fake VCEK signed it.
pub fn fake_report() -> ReportBuilder {
    ReportBuilder::new(5, Generation::Genoa)
        .tcb(FAKE_TCB)
        .chip_id(&fake_chip())
        .measurement(&[0x42; 48])
}

pub fn fake_evidence(report: Vec<u8>, vcek: &str) -> Evidence {
    Evidence::Snp(SnpEvidence::new(report, fake(vcek)).with_chain(fake("ask.der"), fake("ark.der")))
}

/// A verifier that pins the fake ARK as if it were AMD's Genoa root.
pub fn fake_trusting(policy: Policy) -> Verifier {
    let ark = fake("ark.der");
    Verifier::new(policy)
        .with_trust_anchors(TrustAnchors::custom(&[(Generation::Genoa, &ark)]))
        .with_clock(FixedClock::at_unix(FAKE_NOW))
}
