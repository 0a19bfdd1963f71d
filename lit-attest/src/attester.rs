//! Producing evidence: on a real SNP guest (configfs-tsm or `/dev/sev-guest`), or simulated.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use crate::error::AttestError;
use crate::evidence::{Evidence, SimulatedEvidence, SnpEvidence, SIMULATED_FORMAT};
use crate::kds::{self, VcekCache, VcekFetcher};
use crate::report::{Generation, ReportBuilder, ReportHeader, SigningKey, TcbVersion};

/// Default configfs-tsm report directory.
pub const TSM_REPORT_ROOT: &str = "/sys/kernel/config/tsm/report";
/// Default SEV guest device.
pub const SEV_GUEST_DEVICE: &str = "/dev/sev-guest";

/// Something that produces evidence binding `report_data` (see [`crate::Binding::report_data`]).
pub trait Attester: Send + Sync {
    /// Produce evidence whose report carries `report_data`.
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError>;
}

/// A report from the firmware plus whatever certificates came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvidence {
    /// The 1184-byte report.
    pub report: Vec<u8>,
    /// Certificates from the host (auxblob / extended report), as `(kind, DER)`.
    pub certs: Vec<(CertKind, Vec<u8>)>,
}

/// Kind of a certificate in the host-provided certificate table (GUIDs from the GHCB spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertKind {
    /// AMD Root Key.
    Ark,
    /// AMD SEV Signing Key.
    Ask,
    /// VCEK.
    Vcek,
    /// VLEK.
    Vlek,
    /// Anything else.
    Other,
}

/// Certificate-table GUIDs (GHCB spec; bytes in the order the GUID is written).
const GUIDS: [(&str, CertKind); 4] = [
    ("c0b406a4a803495297433fb6014cd0ae", CertKind::Ark),
    ("4ab7b379bbac4fe4a02f05aef327c782", CertKind::Ask),
    ("63da758de6644564adc5f4b93be8accd", CertKind::Vcek),
    ("a8074bc2a25a483eaae639c045a0b8a1", CertKind::Vlek),
];

/// The 16-byte GUID of a certificate kind, as it appears in the table.
pub fn cert_guid(kind: CertKind) -> Option<[u8; 16]> {
    let (h, _) = GUIDS.iter().find(|(_, k)| *k == kind)?;
    let mut g = [0u8; 16];
    hex::decode_to_slice(h, &mut g).ok()?;
    Some(g)
}

/// Parse a SEV certificate table (configfs-tsm `auxblob`, extended report): entries of
/// `GUID (16) ‖ offset u32le ‖ length u32le`, ended by an all-zero entry; offsets are from the
/// start of the table.
pub fn parse_cert_table(blob: &[u8]) -> Result<Vec<(CertKind, Vec<u8>)>, AttestError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    loop {
        let entry = blob
            .get(pos..pos + 24)
            .ok_or_else(|| AttestError::CertTable("table not terminated".into()))?;
        let (guid, rest) = entry.split_at(16);
        if entry.iter().all(|&b| b == 0) {
            break;
        }
        let mut w = [0u8; 4];
        w.copy_from_slice(rest.get(0..4).unwrap_or(&[0; 4]));
        let off = u32::from_le_bytes(w) as usize;
        w.copy_from_slice(rest.get(4..8).unwrap_or(&[0; 4]));
        let len = u32::from_le_bytes(w) as usize;
        let data = blob
            .get(off..off.saturating_add(len))
            .ok_or_else(|| AttestError::CertTable(format!("entry at {pos} out of bounds")))?;
        let kind = [CertKind::Ark, CertKind::Ask, CertKind::Vcek, CertKind::Vlek]
            .into_iter()
            .find(|k| cert_guid(*k).as_ref().map(|g| g.as_slice()) == Some(guid))
            .unwrap_or(CertKind::Other);
        out.push((kind, data.to_vec()));
        pos += 24;
    }
    Ok(out)
}

/// The configfs-tsm interface (Linux `Documentation/ABI/testing/configfs-tsm`): create a
/// directory under the report root, write `inblob` (the 64 bytes of report data), read
/// `outblob` (the report) and `auxblob` (the host's certificates). `generation` counts writes and
/// detects a concurrent writer; `provider` names the driver (`sev_guest`).
#[derive(Debug, Clone)]
pub struct ConfigfsTsm {
    root: PathBuf,
}

static TSM_COUNTER: AtomicU64 = AtomicU64::new(0);

impl ConfigfsTsm {
    /// The interface rooted at `root` (normally [`TSM_REPORT_ROOT`]).
    pub fn new(root: impl Into<PathBuf>) -> ConfigfsTsm {
        ConfigfsTsm { root: root.into() }
    }

    /// Whether the root exists.
    pub fn available(&self) -> bool {
        self.root.is_dir()
    }

    /// Request a report in a fresh entry (created with `mkdir`, removed afterwards).
    pub fn request(
        &self,
        report_data: &[u8; 64],
        vmpl: Option<u32>,
    ) -> Result<RawEvidence, AttestError> {
        let name = format!(
            "lit-attest-{}-{}",
            std::process::id(),
            TSM_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = self.root.join(name);
        std::fs::create_dir(&dir).map_err(|e| io_err(&dir, e))?;
        let result = self.request_in(&dir, report_data, vmpl);
        // configfs removes the attribute files with the directory.
        let _ = std::fs::remove_dir(&dir);
        result
    }

    /// Request a report in an existing entry directory.
    pub fn request_in(
        &self,
        dir: &Path,
        report_data: &[u8; 64],
        vmpl: Option<u32>,
    ) -> Result<RawEvidence, AttestError> {
        let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| io_err(&dir.join(f), e));
        let provider = String::from_utf8_lossy(&read("provider")?)
            .trim()
            .to_string();
        if provider != "sev_guest" {
            return Err(AttestError::WrongProvider(provider));
        }
        if let Some(v) = vmpl {
            let p = dir.join("privlevel");
            std::fs::write(&p, v.to_string()).map_err(|e| io_err(&p, e))?;
        }
        let p = dir.join("inblob");
        std::fs::write(&p, report_data).map_err(|e| io_err(&p, e))?;
        let before = String::from_utf8_lossy(&read("generation")?)
            .trim()
            .to_string();
        let report = read("outblob")?;
        let aux = match std::fs::read(dir.join("auxblob")) {
            Ok(b) if !b.is_empty() => parse_cert_table(&b)?,
            _ => Vec::new(),
        };
        let after = String::from_utf8_lossy(&read("generation")?)
            .trim()
            .to_string();
        if before != after {
            return Err(AttestError::TsmRace { before, after });
        }
        ReportHeader::parse(&report)?;
        Ok(RawEvidence { report, certs: aux })
    }
}

fn io_err(p: &Path, e: std::io::Error) -> AttestError {
    AttestError::Io {
        path: p.display().to_string(),
        source: e,
    }
}

/// Request a report through the `/dev/sev-guest` ioctls (via the `sev` crate): first
/// `SNP_GET_EXT_REPORT`, which also returns the host's certificates where the host provides them,
/// then plain `SNP_GET_REPORT` if the extended request is refused.
#[cfg(target_os = "linux")]
pub fn dev_sev_guest_report(
    report_data: &[u8; 64],
    vmpl: Option<u32>,
) -> Result<RawEvidence, AttestError> {
    use sev::firmware::host::CertType;
    let mut fw = sev::firmware::guest::Firmware::open()
        .map_err(|e| io_err(Path::new(SEV_GUEST_DEVICE), e))?;
    let (report, certs) = match fw.get_ext_report(None, Some(*report_data), vmpl) {
        Ok((report, table)) => {
            let certs = table
                .unwrap_or_default()
                .into_iter()
                .map(|e| {
                    let kind = match e.cert_type {
                        CertType::ARK => CertKind::Ark,
                        CertType::ASK => CertKind::Ask,
                        CertType::VCEK => CertKind::Vcek,
                        CertType::VLEK => CertKind::Vlek,
                        _ => CertKind::Other,
                    };
                    (kind, e.data)
                })
                .collect();
            (report, certs)
        }
        Err(_) => (
            fw.get_report(None, Some(*report_data), vmpl)
                .map_err(|e| AttestError::Firmware(e.to_string()))?,
            Vec::new(),
        ),
    };
    ReportHeader::parse(&report)?;
    Ok(RawEvidence { report, certs })
}

/// Where the VCEK/VLEK comes from when the host does not supply it.
pub enum VekSource {
    /// A certificate given up front (DER), e.g. provisioned by the operator.
    Provided(Vec<u8>),
    /// The AMD Key Distribution Service, through a disk cache and a caller-supplied fetcher.
    Kds {
        /// On-disk cache.
        cache: VcekCache,
        /// HTTP GET.
        fetcher: Box<dyn VcekFetcher>,
    },
    /// Only what the host supplies with the report (auxblob / extended report).
    HostOnly,
}

impl fmt::Debug for VekSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VekSource::Provided(_) => f.write_str("Provided"),
            VekSource::Kds { cache, .. } => f.debug_struct("Kds").field("cache", cache).finish(),
            VekSource::HostOnly => f.write_str("HostOnly"),
        }
    }
}

/// The attester for a real SNP guest.
#[derive(Debug)]
pub struct SnpAttester {
    tsm_root: PathBuf,
    device: PathBuf,
    vmpl: Option<u32>,
    vek: VekSource,
}

impl SnpAttester {
    /// Use configfs-tsm at its standard path if present, else `/dev/sev-guest`.
    pub fn new(vek: VekSource) -> SnpAttester {
        SnpAttester {
            tsm_root: PathBuf::from(TSM_REPORT_ROOT),
            device: PathBuf::from(SEV_GUEST_DEVICE),
            vmpl: None,
            vek,
        }
    }

    /// Look for configfs-tsm and the guest device at other paths.
    pub fn with_paths(
        mut self,
        tsm_root: impl Into<PathBuf>,
        device: impl Into<PathBuf>,
    ) -> SnpAttester {
        self.tsm_root = tsm_root.into();
        self.device = device.into();
        self
    }

    /// Request the report at this VMPL.
    pub fn with_vmpl(mut self, vmpl: u32) -> SnpAttester {
        self.vmpl = Some(vmpl);
        self
    }

    fn raw(&self, report_data: &[u8; 64]) -> Result<RawEvidence, AttestError> {
        let tsm = ConfigfsTsm::new(&self.tsm_root);
        if tsm.available() {
            return tsm.request(report_data, self.vmpl);
        }
        #[cfg(target_os = "linux")]
        if self.device.exists() {
            return dev_sev_guest_report(report_data, self.vmpl);
        }
        Err(AttestError::NotSnpGuest {
            tsm: self.tsm_root.display().to_string(),
            device: self.device.display().to_string(),
        })
    }

    /// Turn a raw report into evidence: certificates from the host if present, else from
    /// [`VekSource`].
    pub fn complete(&self, raw: RawEvidence) -> Result<Evidence, AttestError> {
        let header = ReportHeader::parse(&raw.report)?;
        let want = match header.signing_key {
            SigningKey::Vlek => CertKind::Vlek,
            _ => CertKind::Vcek,
        };
        let pick = |k: CertKind| {
            raw.certs
                .iter()
                .find(|(c, _)| *c == k)
                .map(|(_, d)| d.clone())
        };
        let vek = match pick(want) {
            Some(v) => v,
            None => match &self.vek {
                VekSource::Provided(d) => d.clone(),
                VekSource::Kds { cache, fetcher } => {
                    let generation = header.cpuid_generation.ok_or_else(|| {
                        AttestError::NoVek(
                            "report v2 has no CPUID fields; cannot choose the KDS product".into(),
                        )
                    })?;
                    let report = crate::report::Report::parse(&raw.report, Some(generation))?;
                    kds::fetch_vcek(
                        generation,
                        &report.chip_id,
                        &report.reported_tcb,
                        cache,
                        fetcher.as_ref(),
                    )?
                }
                VekSource::HostOnly => {
                    return Err(AttestError::NoVek("the host supplied no VCEK/VLEK".into()))
                }
            },
        };
        let mut ev = SnpEvidence::new(raw.report, vek);
        if want == CertKind::Vcek {
            ev.intermediate = pick(CertKind::Ask);
        }
        ev.ark = pick(CertKind::Ark);
        Ok(Evidence::Snp(ev))
    }
}

impl Attester for SnpAttester {
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        let raw = self.raw(report_data)?;
        self.complete(raw)
    }
}

/// A development-only attester: report-shaped evidence signed by a local P-384 key, marked
/// `LIT-SIMULATED-SNP-NOT-HARDWARE` everywhere. Verifiers refuse it unless their policy says
/// `allow_simulated`.
pub struct SimulatedAttester {
    key: Zeroizing<[u8; 48]>,
    measurement: [u8; 48],
    policy: u64,
    vmpl: u32,
    tcb: TcbVersion,
}

impl fmt::Debug for SimulatedAttester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedAttester")
            .field("key", &"<redacted>")
            .field("measurement", &hex::encode(self.measurement))
            .finish()
    }
}

impl SimulatedAttester {
    /// A simulated attester with a fresh random key, claiming `measurement`.
    pub fn new(measurement: [u8; 48]) -> SimulatedAttester {
        let sk = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let mut key = Zeroizing::new([0u8; 48]);
        key.copy_from_slice(&sk.to_bytes());
        SimulatedAttester {
            key,
            measurement,
            policy: 0x30000,
            vmpl: 0,
            tcb: TcbVersion::default(),
        }
    }

    /// Claim this guest policy (e.g. with debug) in the simulated report.
    pub fn with_guest_policy(mut self, policy: u64) -> SimulatedAttester {
        self.policy = policy;
        self
    }

    /// Claim this VMPL.
    pub fn with_vmpl(mut self, vmpl: u32) -> SimulatedAttester {
        self.vmpl = vmpl;
        self
    }

    /// Claim this TCB.
    pub fn with_tcb(mut self, tcb: TcbVersion) -> SimulatedAttester {
        self.tcb = tcb;
        self
    }

    fn signing_key(&self) -> Result<p384::ecdsa::SigningKey, AttestError> {
        p384::ecdsa::SigningKey::from_slice(self.key.as_slice())
            .map_err(|e| AttestError::Firmware(format!("simulated key: {e}")))
    }

    /// The SEC1 public key verifiers may list in `Policy::simulated_keys`.
    pub fn public_key(&self) -> Vec<u8> {
        self.signing_key()
            .map(|k| k.verifying_key().to_encoded_point(true).as_bytes().to_vec())
            .unwrap_or_default()
    }
}

impl Attester for SimulatedAttester {
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        let sk = self.signing_key()?;
        let report = ReportBuilder::new(2, Generation::Milan)
            .policy(self.policy)
            .vmpl(self.vmpl)
            .signing_key(SigningKey::None)
            .tcb(self.tcb)
            .measurement(&self.measurement)
            .report_data(report_data)
            .sign(&sk);
        Ok(Evidence::Simulated(SimulatedEvidence {
            simulated: true,
            warning: SIMULATED_FORMAT.to_string(),
            report,
            public_key: sk
                .verifying_key()
                .to_encoded_point(true)
                .as_bytes()
                .to_vec(),
        }))
    }
}
