//! Decoding of the AMD SEV-SNP `ATTESTATION_REPORT` structure.
//!
//! Offsets follow the AMD SEV-SNP Firmware ABI specification (AMD pub. 56860, table
//! "ATTESTATION_REPORT Structure"), versions 2, 3 and 5. The decoder keeps the raw bytes so that
//! the signature is checked over exactly what the firmware signed (bytes `0x000..0x2A0`), never
//! over a re-encoding.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ReportError;

/// Length of an attestation report in bytes.
pub const REPORT_LEN: usize = 0x4A0;
/// End (exclusive) of the signed region of a report.
pub const SIGNED_LEN: usize = 0x2A0;

/// Report versions this crate accepts.
pub const SUPPORTED_VERSIONS: [u32; 3] = [2, 3, 5];

/// `SIGNATURE_ALGO` value for ECDSA P-384 with SHA-384.
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// AMD EPYC processor generation that supports SEV-SNP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Generation {
    /// 3rd generation EPYC (Zen 3).
    Milan,
    /// 4th generation EPYC (Zen 4).
    Genoa,
    /// 5th generation EPYC (Zen 5).
    Turin,
}

impl Generation {
    /// All generations this crate pins a root for.
    pub const ALL: [Generation; 3] = [Generation::Milan, Generation::Genoa, Generation::Turin];

    /// The product name AMD uses in certificate names and KDS URLs.
    pub fn name(self) -> &'static str {
        match self {
            Generation::Milan => "Milan",
            Generation::Genoa => "Genoa",
            Generation::Turin => "Turin",
        }
    }

    /// Generation from the signed CPUID family / model fields (report v3+).
    ///
    /// Family 0x19 models 0x00–0x0F are Milan, 0x10–0x1F and 0xA0–0xAF Genoa (incl. Bergamo/Siena);
    /// family 0x1A models 0x00–0x11 Turin.
    pub fn from_cpuid(family: u8, model: u8) -> Option<Generation> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Generation::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Some(Generation::Genoa),
            (0x1A, 0x00..=0x11) => Some(Generation::Turin),
            _ => None,
        }
    }

    /// Generation from a product name (`"Milan"`, `"Genoa-B1"`, …), case-sensitive prefix match.
    pub fn from_product_name(name: &str) -> Option<Generation> {
        Generation::ALL
            .into_iter()
            .find(|g| name.starts_with(g.name()))
    }

    /// Whether this generation uses the Turin TCB layout (with an FMC component) and 8-byte
    /// hardware ids.
    pub fn is_turin_like(self) -> bool {
        matches!(self, Generation::Turin)
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A TCB version: the security patch level of each firmware component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TcbVersion {
    /// FMC (first mutable code) SPL; present only on Turin and later.
    pub fmc: Option<u8>,
    /// Boot loader SPL.
    pub bootloader: u8,
    /// TEE (PSP OS) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

/// One component of a [`TcbVersion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TcbComponent {
    /// FMC SPL (Turin).
    Fmc,
    /// Boot loader SPL.
    Bootloader,
    /// TEE SPL.
    Tee,
    /// SNP firmware SPL.
    Snp,
    /// Microcode SPL.
    Microcode,
}

impl fmt::Display for TcbComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcbComponent::Fmc => "fmc",
            TcbComponent::Bootloader => "bootloader",
            TcbComponent::Tee => "tee",
            TcbComponent::Snp => "snp",
            TcbComponent::Microcode => "microcode",
        })
    }
}

impl TcbVersion {
    /// Decode the 8-byte TCB_VERSION for a generation. Returns the offset (within the 8 bytes)
    /// of a non-zero reserved byte as the error.
    fn decode(b: [u8; 8], generation: Generation) -> Result<TcbVersion, usize> {
        if generation.is_turin_like() {
            // Turin: FMC, BOOT_LOADER, TEE, SNP, reserved[3], MICROCODE.
            if let Some(i) = (4..7).find(|&i| b[i] != 0) {
                return Err(i);
            }
            Ok(TcbVersion {
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            })
        } else {
            // Milan/Genoa: BOOT_LOADER, TEE, reserved[4], SNP, MICROCODE.
            if let Some(i) = (2..6).find(|&i| b[i] != 0) {
                return Err(i);
            }
            Ok(TcbVersion {
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            })
        }
    }

    /// Encode for a generation (inverse of the decoder).
    pub fn encode(&self, generation: Generation) -> [u8; 8] {
        if generation.is_turin_like() {
            [
                self.fmc.unwrap_or(0),
                self.bootloader,
                self.tee,
                self.snp,
                0,
                0,
                0,
                self.microcode,
            ]
        } else {
            [
                self.bootloader,
                self.tee,
                0,
                0,
                0,
                0,
                self.snp,
                self.microcode,
            ]
        }
    }

    /// Components as `(component, value)` pairs; FMC only when present.
    pub fn components(&self) -> Vec<(TcbComponent, u8)> {
        let mut v = Vec::with_capacity(5);
        if let Some(fmc) = self.fmc {
            v.push((TcbComponent::Fmc, fmc));
        }
        v.extend([
            (TcbComponent::Bootloader, self.bootloader),
            (TcbComponent::Tee, self.tee),
            (TcbComponent::Snp, self.snp),
            (TcbComponent::Microcode, self.microcode),
        ]);
        v
    }

    /// The value of one component (`None` for FMC on pre-Turin).
    pub fn get(&self, c: TcbComponent) -> Option<u8> {
        match c {
            TcbComponent::Fmc => self.fmc,
            TcbComponent::Bootloader => Some(self.bootloader),
            TcbComponent::Tee => Some(self.tee),
            TcbComponent::Snp => Some(self.snp),
            TcbComponent::Microcode => Some(self.microcode),
        }
    }
}

impl fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc={fmc} ")?;
        }
        write!(
            f,
            "bl={} tee={} snp={} ucode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )
    }
}

/// Which key signed the report (`SIGNING_KEY`, bits 4:2 of the word at 0x48).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key (value 0).
    Vcek,
    /// Versioned Loaded Endorsement Key (value 1).
    Vlek,
    /// No key: the report is not signed (value 7).
    None,
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SigningKey::Vcek => "VCEK",
            SigningKey::Vlek => "VLEK",
            SigningKey::None => "none",
        })
    }
}

/// A firmware version `major.minor.build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Build number.
    pub build: u8,
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// Guest policy bits (ABI spec table "Guest Policy Structure").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    /// Bit 16: SMT allowed on the host.
    pub fn smt_allowed(self) -> bool {
        self.0 & (1 << 16) != 0
    }
    /// Bit 18: association with a migration agent allowed.
    pub fn migrate_ma_allowed(self) -> bool {
        self.0 & (1 << 18) != 0
    }
    /// Bit 19: debugging allowed (the hypervisor can read/write guest memory).
    pub fn debug_allowed(self) -> bool {
        self.0 & (1 << 19) != 0
    }
}

/// A decoded attestation report. Every field is taken from the raw bytes, which are kept.
/// Serializable for display (JSON); decode with [`Report::parse`], never by deserializing.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// `VERSION` (2, 3 or 5).
    pub version: u32,
    /// `GUEST_SVN`.
    pub guest_svn: u32,
    /// `POLICY`.
    pub policy: GuestPolicy,
    /// `FAMILY_ID` supplied at launch.
    #[serde(with = "hex::serde")]
    pub family_id: [u8; 16],
    /// `IMAGE_ID` supplied at launch.
    #[serde(with = "hex::serde")]
    pub image_id: [u8; 16],
    /// `VMPL` of the requesting code.
    pub vmpl: u32,
    /// `SIGNATURE_ALGO`.
    pub sig_algo: u32,
    /// `CURRENT_TCB`.
    pub current_tcb: TcbVersion,
    /// `PLATFORM_INFO`.
    pub platform_info: u64,
    /// `AUTHOR_KEY_EN` (bit 0 of 0x48).
    pub author_key_en: bool,
    /// `MASK_CHIP_KEY` (bit 1 of 0x48): the firmware did not sign the report.
    pub mask_chip_key: bool,
    /// `SIGNING_KEY` (bits 4:2 of 0x48).
    pub signing_key: SigningKey,
    /// `REPORT_DATA`: 64 bytes chosen by the guest (here: the binding digest).
    #[serde(with = "hex::serde")]
    pub report_data: [u8; 64],
    /// `MEASUREMENT`: SHA-384 launch digest of the guest image.
    #[serde(with = "hex::serde")]
    pub measurement: [u8; 48],
    /// `HOST_DATA`.
    #[serde(with = "hex::serde")]
    pub host_data: [u8; 32],
    /// `ID_KEY_DIGEST`.
    #[serde(with = "hex::serde")]
    pub id_key_digest: [u8; 48],
    /// `AUTHOR_KEY_DIGEST`.
    #[serde(with = "hex::serde")]
    pub author_key_digest: [u8; 48],
    /// `REPORT_ID`.
    #[serde(with = "hex::serde")]
    pub report_id: [u8; 32],
    /// `REPORT_ID_MA`.
    #[serde(with = "hex::serde")]
    pub report_id_ma: [u8; 32],
    /// `REPORTED_TCB`: the TCB the VCEK was derived from.
    pub reported_tcb: TcbVersion,
    /// `CPUID_FAM_ID` (v3+).
    pub cpuid_fam_id: Option<u8>,
    /// `CPUID_MOD_ID` (v3+).
    pub cpuid_mod_id: Option<u8>,
    /// `CPUID_STEP` (v3+).
    pub cpuid_step: Option<u8>,
    /// `CHIP_ID` (all zero when masked; only the first 8 bytes used on Turin).
    #[serde(with = "hex::serde")]
    pub chip_id: [u8; 64],
    /// `COMMITTED_TCB`.
    pub committed_tcb: TcbVersion,
    /// `CURRENT_BUILD/MINOR/MAJOR`.
    pub current_fw: FirmwareVersion,
    /// `COMMITTED_BUILD/MINOR/MAJOR`.
    pub committed_fw: FirmwareVersion,
    /// `LAUNCH_TCB`.
    pub launch_tcb: TcbVersion,
    /// `LAUNCH_MIT_VECTOR` (v5).
    pub launch_mit_vector: Option<u64>,
    /// `CURRENT_MIT_VECTOR` (v5).
    pub current_mit_vector: Option<u64>,
    /// The generation whose layout was used to decode the TCB fields.
    pub generation: Generation,
    #[serde(skip)]
    raw: Vec<u8>,
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("version", &self.version)
            .field("generation", &self.generation)
            .field("policy", &format_args!("{:#x}", self.policy.0))
            .field("vmpl", &self.vmpl)
            .field("signing_key", &self.signing_key)
            .field("reported_tcb", &self.reported_tcb)
            .field("measurement", &hex::encode(self.measurement))
            .field("report_data", &hex::encode(self.report_data))
            .finish_non_exhaustive()
    }
}

/// Fixed-size slice of the report (the caller has checked the length).
fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = b.get(off..off + N) {
        out.copy_from_slice(src);
    }
    out
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(arr(b, off))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(arr(b, off))
}

/// Reserved ranges (must be zero) of the signed part, per version.
fn reserved_ranges(version: u32) -> Vec<std::ops::Range<usize>> {
    let mut v = vec![0x4C..0x50, 0x1EB..0x1EC, 0x1EF..0x1F0];
    if version >= 3 {
        v.push(0x18B..0x1A0);
    } else {
        v.push(0x188..0x1A0);
    }
    if version >= 5 {
        v.push(0x208..SIGNED_LEN);
    } else {
        v.push(0x1F8..SIGNED_LEN);
    }
    v
}

/// Header fields needed before the generation is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportHeader {
    /// `VERSION`.
    pub version: u32,
    /// `SIGNING_KEY`.
    pub signing_key: SigningKey,
    /// `MASK_CHIP_KEY`.
    pub mask_chip_key: bool,
    /// Generation from the signed CPUID fields (v3+), if recognised.
    pub cpuid_generation: Option<Generation>,
    /// The raw CPUID family and model (v3+).
    pub cpuid: Option<(u8, u8)>,
}

impl ReportHeader {
    /// Check everything that does not depend on the processor generation: length, version,
    /// reserved bytes, signature algorithm, key selection, and the unused parts of the signature.
    pub fn parse(bytes: &[u8]) -> Result<ReportHeader, ReportError> {
        if bytes.len() != REPORT_LEN {
            return Err(ReportError::Length {
                expected: REPORT_LEN,
                got: bytes.len(),
            });
        }
        let version = u32_at(bytes, 0);
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(ReportError::UnsupportedVersion(version));
        }
        for r in reserved_ranges(version) {
            if let Some(off) = bytes
                .get(r.clone())
                .and_then(|s| s.iter().position(|&x| x != 0))
            {
                return Err(ReportError::ReservedNonZero {
                    offset: r.start + off,
                });
            }
        }
        let sig_algo = u32_at(bytes, 0x34);
        if sig_algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(ReportError::UnsupportedSignatureAlgorithm(sig_algo));
        }
        let key_info = u32_at(bytes, 0x48);
        if key_info >> 5 != 0 {
            return Err(ReportError::ReservedNonZero { offset: 0x48 });
        }
        let signing_key = match (key_info >> 2) & 0x7 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            other => return Err(ReportError::ReservedSigningKey(other)),
        };
        let mask_chip_key = key_info & 0b10 != 0;
        // Signature: R and S are 72-byte little-endian fields of which P-384 uses 48 bytes; the
        // rest and the 368 reserved bytes must be zero so that the unsigned tail is not malleable.
        let sig = &bytes[SIGNED_LEN..];
        for r in [48..72, 72 + 48..144, 144..REPORT_LEN - SIGNED_LEN] {
            if let Some(off) = sig
                .get(r.clone())
                .and_then(|s| s.iter().position(|&x| x != 0))
            {
                return Err(ReportError::ReservedNonZero {
                    offset: SIGNED_LEN + r.start + off,
                });
            }
        }
        let (cpuid, cpuid_generation) = if version >= 3 {
            let (fam, model) = (bytes[0x188], bytes[0x189]);
            (Some((fam, model)), Generation::from_cpuid(fam, model))
        } else {
            (None, None)
        };
        Ok(ReportHeader {
            version,
            signing_key,
            mask_chip_key,
            cpuid_generation,
            cpuid,
        })
    }
}

impl Report {
    /// Decode a report. For v3+ reports the generation comes from the signed CPUID fields and
    /// must agree with `generation` if one is given; v2 reports carry no CPUID, so the caller must
    /// say which generation (the verifier takes it from the certificate).
    pub fn parse(bytes: &[u8], generation: Option<Generation>) -> Result<Report, ReportError> {
        let h = ReportHeader::parse(bytes)?;
        let generation = match (h.cpuid, h.cpuid_generation, generation) {
            (Some((family, model)), None, _) => {
                return Err(ReportError::UnknownCpu { family, model })
            }
            (_, Some(g), Some(given)) if g != given => {
                return Err(ReportError::GenerationMismatch {
                    report: g,
                    expected: given,
                })
            }
            (_, Some(g), _) => g,
            (None, None, Some(given)) => given,
            (None, None, None) => return Err(ReportError::GenerationUnknown),
        };
        let tcb = |off: usize| {
            TcbVersion::decode(arr(bytes, off), generation)
                .map_err(|i| ReportError::ReservedNonZero { offset: off + i })
        };
        let fw = |off: usize| FirmwareVersion {
            build: bytes[off],
            minor: bytes[off + 1],
            major: bytes[off + 2],
        };
        let key_info = u32_at(bytes, 0x48);
        let v3 = h.version >= 3;
        let v5 = h.version >= 5;
        Ok(Report {
            version: h.version,
            guest_svn: u32_at(bytes, 0x04),
            policy: GuestPolicy(u64_at(bytes, 0x08)),
            family_id: arr(bytes, 0x10),
            image_id: arr(bytes, 0x20),
            vmpl: u32_at(bytes, 0x30),
            sig_algo: u32_at(bytes, 0x34),
            current_tcb: tcb(0x38)?,
            platform_info: u64_at(bytes, 0x40),
            author_key_en: key_info & 1 != 0,
            mask_chip_key: h.mask_chip_key,
            signing_key: h.signing_key,
            report_data: arr(bytes, 0x50),
            measurement: arr(bytes, 0x90),
            host_data: arr(bytes, 0xC0),
            id_key_digest: arr(bytes, 0xE0),
            author_key_digest: arr(bytes, 0x110),
            report_id: arr(bytes, 0x140),
            report_id_ma: arr(bytes, 0x160),
            reported_tcb: tcb(0x180)?,
            cpuid_fam_id: v3.then(|| bytes[0x188]),
            cpuid_mod_id: v3.then(|| bytes[0x189]),
            cpuid_step: v3.then(|| bytes[0x18A]),
            chip_id: arr(bytes, 0x1A0),
            committed_tcb: tcb(0x1E0)?,
            current_fw: fw(0x1E8),
            committed_fw: fw(0x1EC),
            launch_tcb: tcb(0x1F0)?,
            launch_mit_vector: v5.then(|| u64_at(bytes, 0x1F8)),
            current_mit_vector: v5.then(|| u64_at(bytes, 0x200)),
            generation,
            raw: bytes.to_vec(),
        })
    }

    /// The raw 1184 bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The signed region (bytes `0x000..0x2A0`).
    pub fn signed_bytes(&self) -> &[u8] {
        self.raw.get(..SIGNED_LEN).unwrap_or(&[])
    }

    /// Signature `(r, s)` as big-endian 48-byte scalars.
    pub fn signature_rs(&self) -> ([u8; 48], [u8; 48]) {
        let mut r: [u8; 48] = arr(&self.raw, SIGNED_LEN);
        let mut s: [u8; 48] = arr(&self.raw, SIGNED_LEN + 72);
        r.reverse();
        s.reverse();
        (r, s)
    }

    /// Whether `CHIP_ID` is all zero (masked by the platform's `MASK_CHIP_ID` setting).
    pub fn chip_id_masked(&self) -> bool {
        self.chip_id.iter().all(|&b| b == 0)
    }

    /// The hardware id as the VCEK and the KDS use it: 8 bytes on Turin, 64 otherwise.
    pub fn hw_id(&self) -> &[u8] {
        let n = if self.generation.is_turin_like() {
            8
        } else {
            64
        };
        self.chip_id.get(..n).unwrap_or(&[])
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "SEV-SNP attestation report v{} ({})",
            self.version, self.generation
        )?;
        writeln!(f, "  guest_svn:        {}", self.guest_svn)?;
        writeln!(
            f,
            "  policy:           {:#x} (debug {}, smt {}, migrate_ma {})",
            self.policy.0,
            if self.policy.debug_allowed() {
                "ALLOWED"
            } else {
                "off"
            },
            self.policy.smt_allowed(),
            self.policy.migrate_ma_allowed()
        )?;
        writeln!(f, "  vmpl:             {}", self.vmpl)?;
        writeln!(f, "  signing key:      {}", self.signing_key)?;
        writeln!(f, "  mask_chip_key:    {}", self.mask_chip_key)?;
        writeln!(f, "  platform_info:    {:#x}", self.platform_info)?;
        if let (Some(fam), Some(m), Some(s)) =
            (self.cpuid_fam_id, self.cpuid_mod_id, self.cpuid_step)
        {
            writeln!(
                f,
                "  cpuid:            family {fam:#x} model {m:#x} stepping {s:#x}"
            )?;
        }
        writeln!(f, "  measurement:      {}", hex::encode(self.measurement))?;
        writeln!(f, "  report_data:      {}", hex::encode(self.report_data))?;
        writeln!(f, "  host_data:        {}", hex::encode(self.host_data))?;
        writeln!(f, "  id_key_digest:    {}", hex::encode(self.id_key_digest))?;
        writeln!(f, "  report_id:        {}", hex::encode(self.report_id))?;
        writeln!(f, "  chip_id:          {}", hex::encode(self.chip_id))?;
        writeln!(f, "  current_tcb:      {}", self.current_tcb)?;
        writeln!(f, "  reported_tcb:     {}", self.reported_tcb)?;
        writeln!(f, "  committed_tcb:    {}", self.committed_tcb)?;
        writeln!(f, "  launch_tcb:       {}", self.launch_tcb)?;
        writeln!(f, "  current fw:       {}", self.current_fw)?;
        write!(f, "  committed fw:     {}", self.committed_fw)
    }
}

/// Build a raw report (used by the simulated attester and by tests): fields are laid out at the
/// ABI offsets for `generation`, the signature area is left zero.
#[derive(Debug, Clone)]
pub struct ReportBuilder {
    bytes: Vec<u8>,
    generation: Generation,
}

impl ReportBuilder {
    /// Start a report of `version` for `generation` with sensible defaults (policy 0x30000,
    /// VMPL 0, ECDSA P-384 signature algorithm, VCEK signing key).
    pub fn new(version: u32, generation: Generation) -> ReportBuilder {
        let mut bytes = vec![0u8; REPORT_LEN];
        bytes[0..4].copy_from_slice(&version.to_le_bytes());
        bytes[0x08..0x10].copy_from_slice(&0x30000u64.to_le_bytes());
        bytes[0x34..0x38].copy_from_slice(&SIG_ALGO_ECDSA_P384_SHA384.to_le_bytes());
        if version >= 3 {
            let (fam, model) = match generation {
                Generation::Milan => (0x19, 0x01),
                Generation::Genoa => (0x19, 0x11),
                Generation::Turin => (0x1A, 0x02),
            };
            bytes[0x188] = fam;
            bytes[0x189] = model;
            bytes[0x18A] = 1;
        }
        ReportBuilder { bytes, generation }
    }

    /// Start from existing raw bytes (e.g. a real report to modify in a test).
    pub fn from_bytes(bytes: &[u8], generation: Generation) -> ReportBuilder {
        let mut b = bytes.to_vec();
        b.resize(REPORT_LEN, 0);
        ReportBuilder {
            bytes: b,
            generation,
        }
    }

    fn put(&mut self, off: usize, src: &[u8]) {
        if let Some(dst) = self.bytes.get_mut(off..off + src.len()) {
            dst.copy_from_slice(src);
        }
    }

    /// Set `POLICY`.
    pub fn policy(mut self, policy: u64) -> Self {
        self.put(0x08, &policy.to_le_bytes());
        self
    }
    /// Set `VMPL`.
    pub fn vmpl(mut self, vmpl: u32) -> Self {
        self.put(0x30, &vmpl.to_le_bytes());
        self
    }
    /// Set the `SIGNING_KEY` selector (0 VCEK, 1 VLEK, 7 none).
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        let v: u32 = match key {
            SigningKey::Vcek => 0,
            SigningKey::Vlek => 1,
            SigningKey::None => 7,
        };
        let old = u32_at(&self.bytes, 0x48) & !(0x7 << 2);
        self.put(0x48, &(old | (v << 2)).to_le_bytes());
        self
    }
    /// Set `REPORT_DATA`.
    pub fn report_data(mut self, data: &[u8; 64]) -> Self {
        self.put(0x50, data);
        self
    }
    /// Set `MEASUREMENT`.
    pub fn measurement(mut self, m: &[u8; 48]) -> Self {
        self.put(0x90, m);
        self
    }
    /// Set `CHIP_ID`.
    pub fn chip_id(mut self, id: &[u8; 64]) -> Self {
        self.put(0x1A0, id);
        self
    }
    /// Set all four TCB fields (current, reported, committed, launch).
    pub fn tcb(mut self, tcb: TcbVersion) -> Self {
        let t = tcb.encode(self.generation);
        for off in [0x38, 0x180, 0x1E0, 0x1F0] {
            self.put(off, &t);
        }
        self
    }
    /// Set only `REPORTED_TCB`.
    pub fn reported_tcb(mut self, tcb: TcbVersion) -> Self {
        let t = tcb.encode(self.generation);
        self.put(0x180, &t);
        self
    }
    /// Bytes of the signed region, to be signed with ECDSA P-384/SHA-384.
    pub fn signed_bytes(&self) -> &[u8] {
        self.bytes.get(..SIGNED_LEN).unwrap_or(&[])
    }
    /// Finish with a signature given as big-endian `r`, `s`.
    pub fn finish_with_signature(mut self, r_be: &[u8; 48], s_be: &[u8; 48]) -> Vec<u8> {
        let mut r = *r_be;
        let mut s = *s_be;
        r.reverse();
        s.reverse();
        // Clear the whole signature area first.
        for b in self.bytes.iter_mut().skip(SIGNED_LEN) {
            *b = 0;
        }
        self.put(SIGNED_LEN, &r);
        self.put(SIGNED_LEN + 72, &s);
        self.bytes
    }
    /// Finish, signing with a P-384 key.
    pub fn sign(self, key: &p384::ecdsa::SigningKey) -> Vec<u8> {
        use p384::ecdsa::signature::Signer;
        let sig: p384::ecdsa::Signature = key.sign(self.signed_bytes());
        let (r, s) = sig.split_bytes();
        let mut rb = [0u8; 48];
        let mut sb = [0u8; 48];
        rb.copy_from_slice(&r);
        sb.copy_from_slice(&s);
        self.finish_with_signature(&rb, &sb)
    }
}
