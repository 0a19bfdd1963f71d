//! Producing evidence: configfs-tsm against a directory laid out like configfs, the "not an SNP
//! guest" error, the host certificate table, and the KDS URL + cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use lit_attest::attester::{cert_guid, parse_cert_table, CertKind, RawEvidence};
use lit_attest::kds::{fetch_vcek, vcek_url, VcekCache, VcekFetcher};
use lit_attest::*;

/// Build a SEV certificate table like the host puts in `auxblob`.
fn cert_table(entries: &[(CertKind, &[u8])]) -> Vec<u8> {
    let header = 24 * (entries.len() + 1);
    let mut table = Vec::new();
    let mut data = Vec::new();
    for (kind, der) in entries {
        table.extend(cert_guid(*kind).unwrap());
        table.extend(((header + data.len()) as u32).to_le_bytes());
        table.extend((der.len() as u32).to_le_bytes());
        data.extend_from_slice(der);
    }
    table.extend([0u8; 24]);
    table.extend(data);
    table
}

fn configfs_entry(root: &std::path::Path, report: &[u8], aux: &[u8]) -> std::path::PathBuf {
    let entry = root.join("entry0");
    std::fs::create_dir_all(&entry).unwrap();
    std::fs::write(entry.join("provider"), "sev_guest\n").unwrap();
    std::fs::write(entry.join("generation"), "1\n").unwrap();
    std::fs::write(entry.join("outblob"), report).unwrap();
    std::fs::write(entry.join("auxblob"), aux).unwrap();
    entry
}

#[test]
fn configfs_tsm_request_and_host_certificates() {
    let ds = dataset("genoa-v5-oak");
    let (ark, ask) = chain(ds);
    let vcek = read(ds, "vcek.der");
    let aux = cert_table(&[
        (CertKind::Ark, &ark),
        (CertKind::Ask, &ask),
        (CertKind::Vcek, &vcek),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let entry = configfs_entry(tmp.path(), &read(ds, "report.bin"), &aux);

    let data = [0xAB; 64];
    let raw = ConfigfsTsm::new(tmp.path())
        .request_in(&entry, &data, Some(0))
        .unwrap();
    // What the kernel would have received.
    assert_eq!(std::fs::read(entry.join("inblob")).unwrap(), data);
    assert_eq!(
        std::fs::read_to_string(entry.join("privlevel")).unwrap(),
        "0"
    );
    assert_eq!(raw.report, read(ds, "report.bin"));
    assert_eq!(raw.certs.len(), 3);

    let ev = SnpAttester::new(VekSource::HostOnly).complete(raw).unwrap();
    let Evidence::Snp(snp) = &ev else { panic!() };
    assert_eq!(snp.vek, vcek);
    assert_eq!(snp.ark.as_deref(), Some(ark.as_slice()));
    Verifier::new(Policy::default().any_measurement())
        .with_clock(FixedClock::at_unix(SEP_2025))
        .verify_without_binding(&ev)
        .unwrap();
}

#[test]
fn configfs_tsm_wrong_provider_and_bad_outblob() {
    let ds = dataset("genoa-v5-oak");
    let tmp = tempfile::tempdir().unwrap();
    let entry = configfs_entry(tmp.path(), &read(ds, "report.bin"), &[]);
    std::fs::write(entry.join("provider"), "tdx_guest\n").unwrap();
    let err = ConfigfsTsm::new(tmp.path())
        .request_in(&entry, &[0; 64], None)
        .unwrap_err();
    assert!(
        matches!(err, AttestError::WrongProvider(ref p) if p == "tdx_guest"),
        "{err}"
    );
    // A truncated outblob is a malformed report.
    std::fs::write(entry.join("provider"), "sev_guest\n").unwrap();
    std::fs::write(entry.join("outblob"), [0u8; 100]).unwrap();
    let err = ConfigfsTsm::new(tmp.path())
        .request_in(&entry, &[0; 64], None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::Report(ReportError::Length { got: 100, .. })
        ),
        "{err}"
    );
}

#[test]
fn fresh_entry_is_created_and_removed() {
    // In a plain directory mkdir works but no kernel fills in the attributes: the request fails
    // on the missing `provider` file and the entry is removed again.
    let tmp = tempfile::tempdir().unwrap();
    let err = ConfigfsTsm::new(tmp.path())
        .request(&[0; 64], None)
        .unwrap_err();
    assert!(
        matches!(err, AttestError::Io { ref path, .. } if path.ends_with("provider")),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn not_an_snp_guest() {
    let tmp = tempfile::tempdir().unwrap();
    let att = SnpAttester::new(VekSource::HostOnly)
        .with_paths(tmp.path().join("no-tsm"), tmp.path().join("no-sev-guest"));
    let err = att.attest(&[0; 64]).unwrap_err();
    assert!(matches!(err, AttestError::NotSnpGuest { .. }), "{err}");
    assert!(err.to_string().contains("not an SNP guest"));
}

#[test]
fn cert_table_malformed() {
    assert!(matches!(
        parse_cert_table(&[]),
        Err(AttestError::CertTable(_))
    ));
    let mut t = cert_table(&[(CertKind::Vcek, b"abc")]);
    // Point the entry past the end.
    t[16..20].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(
        parse_cert_table(&t),
        Err(AttestError::CertTable(_))
    ));
    let t = cert_table(&[(CertKind::Vlek, b"xyz")]);
    assert_eq!(
        parse_cert_table(&t).unwrap(),
        vec![(CertKind::Vlek, b"xyz".to_vec())]
    );
}

#[test]
fn kds_urls_for_known_datasets() {
    let milan = Report::parse(
        &read(dataset("milan-v2-virtee"), "report.bin"),
        Some(Generation::Milan),
    )
    .unwrap();
    assert_eq!(
        vcek_url(Generation::Milan, &milan.chip_id, &milan.reported_tcb),
        "https://kdsintf.amd.com/vcek/v1/Milan/d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc15d7af38db757039029f0efacfd08e244324884738c72b082e2f87a44d541eb6?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"
    );
    let genoa = Report::parse(&read(dataset("genoa-v5-oak"), "report.bin"), None).unwrap();
    assert_eq!(
        vcek_url(Generation::Genoa, &genoa.chip_id, &genoa.reported_tcb),
        "https://kdsintf.amd.com/vcek/v1/Genoa/d2421d976f95ce0ba849b7cc5c789122f1e59c77a037272c137ae4d188bb102adbc7c53d0302bff82a432c94a305dec7a7a270ceb19a10f04a83316c6486968d?blSPL=10&teeSPL=00&snpSPL=25&ucodeSPL=84"
    );
    let turin = Report::parse(&read(dataset("turin-v5-oak"), "report.bin"), None).unwrap();
    assert_eq!(
        vcek_url(Generation::Turin, &turin.chip_id, &turin.reported_tcb),
        "https://kdsintf.amd.com/vcek/v1/Turin/3b42092f69c656d3?fmcSPL=00&blSPL=01&teeSPL=00&snpSPL=02&ucodeSPL=71"
    );
}

/// Serves fixed bodies by URL (the network is not reachable here) and counts requests.
struct MapFetcher(HashMap<String, Vec<u8>>, AtomicUsize);

impl VcekFetcher for MapFetcher {
    fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.get(url).cloned().ok_or_else(|| format!("404 {url}"))
    }
}

#[test]
fn vcek_fetch_through_disk_cache() {
    let ds = dataset("turin-v5-oak");
    let report = Report::parse(&read(ds, "report.bin"), None).unwrap();
    let url = vcek_url(Generation::Turin, &report.chip_id, &report.reported_tcb);
    let fetcher = MapFetcher(
        HashMap::from([(url, read(ds, "vcek.der"))]),
        AtomicUsize::new(0),
    );
    let tmp = tempfile::tempdir().unwrap();
    let cache = VcekCache::new(tmp.path().join("vcek-cache"));
    let a = fetch_vcek(
        Generation::Turin,
        &report.chip_id,
        &report.reported_tcb,
        &cache,
        &fetcher,
    )
    .unwrap();
    let b = fetch_vcek(
        Generation::Turin,
        &report.chip_id,
        &report.reported_tcb,
        &cache,
        &fetcher,
    )
    .unwrap();
    assert_eq!(a, read(ds, "vcek.der"));
    assert_eq!(a, b);
    assert_eq!(
        fetcher.1.load(Ordering::SeqCst),
        1,
        "second call served from the cache"
    );
    // A different TCB is another URL: not found.
    let other = TcbVersion {
        microcode: 72,
        ..report.reported_tcb
    };
    let err = fetch_vcek(Generation::Turin, &report.chip_id, &other, &cache, &fetcher).unwrap_err();
    assert!(matches!(err, AttestError::Fetch { .. }), "{err}");

    // The attester completes a bare report through the KDS source, and it verifies.
    let att = SnpAttester::new(VekSource::Kds {
        cache,
        fetcher: Box::new(MapFetcher(HashMap::new(), AtomicUsize::new(0))),
    });
    let ev = att
        .complete(RawEvidence {
            report: read(ds, "report.bin"),
            certs: Vec::new(),
        })
        .unwrap();
    Verifier::new(Policy::default().any_measurement())
        .with_clock(FixedClock::at_unix(SEP_2025))
        .verify_without_binding(&ev)
        .unwrap();
}
