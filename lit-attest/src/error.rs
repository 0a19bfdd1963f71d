//! Typed errors. Every check of the verifier has its own variant.

use crate::report::{Generation, SigningKey, TcbComponent};

/// A malformed report (structure only, before any cryptography).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The report is not exactly 1184 bytes.
    #[error("report length {got} bytes, expected {expected}")]
    Length {
        /// Required length.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// `VERSION` is not one of 2, 3, 5.
    #[error("unsupported report version {0} (allowed: 2, 3, 5)")]
    UnsupportedVersion(u32),
    /// A reserved byte is not zero.
    #[error("reserved byte at offset {offset:#x} is not zero")]
    ReservedNonZero {
        /// Offset in the report.
        offset: usize,
    },
    /// `SIGNATURE_ALGO` is not ECDSA P-384 with SHA-384.
    #[error("unsupported signature algorithm {0} (expected 1 = ECDSA P-384/SHA-384)")]
    UnsupportedSignatureAlgorithm(u32),
    /// `SIGNING_KEY` holds a reserved value.
    #[error("reserved SIGNING_KEY value {0}")]
    ReservedSigningKey(u32),
    /// The signed CPUID fields name no known SEV-SNP processor.
    #[error("unknown processor: CPUID family {family:#x} model {model:#x}")]
    UnknownCpu {
        /// CPUID family.
        family: u8,
        /// CPUID model.
        model: u8,
    },
    /// A v2 report without a generation from elsewhere.
    #[error("report v2 has no CPUID fields and no generation was given")]
    GenerationUnknown,
    /// The CPUID fields disagree with the expected generation.
    #[error("report CPUID says {report}, expected {expected}")]
    GenerationMismatch {
        /// Generation from CPUID.
        report: Generation,
        /// Generation expected.
        expected: Generation,
    },
}

/// Which certificate of the chain an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertRole {
    /// AMD Root Key.
    Ark,
    /// AMD SEV Signing Key (VCEK issuer) or AMD SEV VLEK Signing Key (VLEK issuer).
    Intermediate,
    /// The VCEK or VLEK.
    Vek,
}

impl std::fmt::Display for CertRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertRole::Ark => "ARK",
            CertRole::Intermediate => "ASK/ASVK",
            CertRole::Vek => "VCEK/VLEK",
        })
    }
}

/// Why a piece of evidence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The report is malformed.
    #[error("malformed report: {0}")]
    Report(#[from] ReportError),
    /// The report is not signed (`SIGNING_KEY` = none).
    #[error("report is not signed (SIGNING_KEY = none)")]
    ReportNotSigned,
    /// `MASK_CHIP_KEY` is set: the firmware wrote zeros instead of a signature.
    #[error("MASK_CHIP_KEY is set: the report carries no hardware signature")]
    ChipKeyMasked,
    /// A certificate could not be parsed.
    #[error("{role} certificate cannot be parsed: {reason}")]
    CertificateParse {
        /// Which certificate.
        role: CertRole,
        /// Parser message.
        reason: String,
    },
    /// The certificate does not match the key the report says signed it.
    #[error("report says it was signed by the {report}, but the certificate is a {certificate}")]
    SignerMismatch {
        /// Signing key in the report.
        report: SigningKey,
        /// Kind of certificate presented (its subject CN).
        certificate: String,
    },
    /// The policy does not accept VLEK-signed reports.
    #[error("VLEK-signed reports are not allowed by the policy")]
    VlekNotAllowed,
    /// The generation cannot be told from the certificate.
    #[error("cannot tell the processor generation from the {role} certificate ({detail})")]
    UnknownGeneration {
        /// Which certificate.
        role: CertRole,
        /// What was found.
        detail: String,
    },
    /// The report's CPUID fields and the certificate disagree about the generation.
    #[error("report CPUID says {report} but the certificate is for {certificate}")]
    GenerationMismatch {
        /// From CPUID.
        report: Generation,
        /// From the certificate.
        certificate: Generation,
    },
    /// The presented ARK is AMD's root for another generation.
    #[error("ARK is AMD's {found} root, but the report is from a {expected} processor")]
    WrongGenerationRoot {
        /// Generation of the report.
        expected: Generation,
        /// Generation whose root was presented.
        found: Generation,
    },
    /// The presented ARK is not pinned: not AMD's root.
    #[error("ARK is not pinned for {generation}: SHA-256 {sha256} is not AMD's root")]
    UntrustedRoot {
        /// Generation of the report.
        generation: Generation,
        /// SHA-256 of the presented ARK (hex).
        sha256: String,
    },
    /// No intermediate (ASVK) was supplied and none is built in for this generation.
    #[error("no {0} ASVK supplied or built in; the VLEK chain cannot be checked")]
    MissingAsvk(Generation),
    /// A signature in the certificate chain does not verify.
    #[error("certificate chain broken: {signer} does not sign {subject}: {reason}")]
    ChainSignature {
        /// Signing certificate.
        signer: CertRole,
        /// Signed certificate.
        subject: CertRole,
        /// Library message.
        reason: String,
    },
    /// An issuer name does not equal its signer's subject name, or the intermediate is the wrong kind.
    #[error("{role} certificate has the wrong name: {detail}")]
    ChainName {
        /// Which certificate.
        role: CertRole,
        /// What is wrong.
        detail: String,
    },
    /// A certificate is outside its validity period at the verifier's clock.
    #[error(
        "{role} certificate is not valid at {now_unix} (valid {not_before_unix}..{not_after_unix})"
    )]
    CertificateValidity {
        /// Which certificate.
        role: CertRole,
        /// Clock reading (Unix seconds).
        now_unix: u64,
        /// notBefore (Unix seconds).
        not_before_unix: u64,
        /// notAfter (Unix seconds).
        not_after_unix: u64,
    },
    /// The VCEK/VLEK public key is not a valid P-384 key.
    #[error("VCEK/VLEK public key is not an ECDSA P-384 key: {0}")]
    VekKey(String),
    /// The report signature does not verify under the VCEK/VLEK.
    #[error("report signature does not verify under the VCEK/VLEK")]
    BadReportSignature,
    /// A required VCEK extension is missing or malformed.
    #[error("VCEK/VLEK extension {oid} missing or malformed: {detail}")]
    Extension {
        /// Extension OID.
        oid: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A TCB component in the certificate differs from `REPORTED_TCB`.
    #[error("TCB {component} mismatch: certificate {certificate}, report {report}")]
    TcbMismatch {
        /// Component.
        component: TcbComponent,
        /// Value in the certificate.
        certificate: u8,
        /// Value in the report.
        report: u8,
    },
    /// The VCEK's hardware id differs from `CHIP_ID`.
    #[error("VCEK hwID {certificate} does not match report CHIP_ID {report}")]
    HwIdMismatch {
        /// hwID from the certificate (hex).
        certificate: String,
        /// CHIP_ID from the report (hex, as many bytes as the generation uses).
        report: String,
    },
    /// `CHIP_ID` is masked (all zero) for a VCEK-signed report and the policy requires it.
    #[error("CHIP_ID is masked (all zero) and the policy does not allow masked chip ids")]
    ChipIdMasked,
    /// Debugging is allowed by the guest policy.
    #[error("guest policy {policy:#x} allows debugging")]
    DebugAllowed {
        /// The guest policy.
        policy: u64,
    },
    /// The report was requested from a VMPL the policy does not accept.
    #[error("report VMPL {vmpl} exceeds the policy maximum {max}")]
    Vmpl {
        /// VMPL in the report.
        vmpl: u32,
        /// Highest allowed.
        max: u32,
    },
    /// A TCB component is below the policy minimum.
    #[error("TCB {component} = {have} is below the minimum {need}")]
    TcbTooLow {
        /// Component.
        component: TcbComponent,
        /// Reported value.
        have: u8,
        /// Minimum.
        need: u8,
    },
    /// The measurement is not one of the approved images.
    #[error("measurement {0} is not an approved software image (no active release of the network's register, nor the local policy, lists it)")]
    MeasurementNotAllowed(String),
    /// The measurement is a release the network's admin revoked.
    #[error("measurement {0} is a revoked release: the network no longer approves this software")]
    MeasurementRevoked(String),
    /// The report is signed by a VLEK but its release accepts only VCEK-signed reports.
    #[error("the release {0} accepts only VCEK-signed reports, and this one is signed by a VLEK")]
    VlekNotAllowedForRelease(String),
    /// The chip id is not on the allow-list.
    #[error("chip id {0} is not allowed by the policy")]
    ChipIdNotAllowed(String),
    /// `report_data` does not equal the expected binding digest.
    #[error("report_data does not bind the expected identity key, nonce and epoch")]
    BindingMismatch,
    /// The nonce was never issued by this verifier (or has been forgotten after expiry).
    #[error("nonce was not issued by this verifier")]
    UnknownNonce,
    /// The nonce expired before the evidence was verified.
    #[error("nonce expired")]
    NonceExpired,
    /// The nonce was already used by an earlier successful verification.
    #[error("nonce already used (replay)")]
    NonceReplayed,
    /// Simulated evidence and the policy does not allow it.
    #[error(
        "evidence is SIMULATED (not hardware) and the policy does not allow simulated evidence"
    )]
    SimulatedNotAllowed,
    /// Simulated evidence that is malformed or signed by a key the policy does not list.
    #[error("simulated evidence refused: {0}")]
    SimulatedInvalid(String),
}

/// Why evidence could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// Neither configfs-tsm nor `/dev/sev-guest` exists: this machine is not an SNP guest.
    #[error("not an SNP guest: neither {tsm} nor {device} exists")]
    NotSnpGuest {
        /// configfs-tsm report directory looked for.
        tsm: String,
        /// Guest device looked for.
        device: String,
    },
    /// File I/O on configfs-tsm or the cache failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// Path involved.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The secure processor (or the fake key device) refused a key request (`MSG_KEY_REQ`).
    #[error("the key request was refused: {0}")]
    KeyRefused(crate::sealing::KeyRefusal),
    /// The key request (`SNP_GET_DERIVED_KEY`) failed.
    #[error("SNP_GET_DERIVED_KEY (MSG_KEY_REQ) failed: {0}")]
    KeyRequest(String),
    /// The configfs-tsm provider is not the SEV guest driver.
    #[error("configfs-tsm provider is {0:?}, expected \"sev_guest\"")]
    WrongProvider(String),
    /// Another writer changed the configfs-tsm entry while we used it.
    #[error("configfs-tsm generation changed from {before} to {after}: concurrent request")]
    TsmRace {
        /// Generation read before reading the report.
        before: String,
        /// Generation read after.
        after: String,
    },
    /// The SNP_GET_REPORT ioctl failed.
    #[error("SNP_GET_REPORT failed: {0}")]
    Firmware(String),
    /// The firmware returned a malformed report.
    #[error("firmware returned a malformed report: {0}")]
    Report(#[from] ReportError),
    /// The auxblob / certificate table is malformed.
    #[error("malformed certificate table: {0}")]
    CertTable(String),
    /// No VCEK/VLEK could be obtained.
    #[error("no VCEK/VLEK available: {0}")]
    NoVek(String),
    /// Fetching from the AMD key distribution service failed.
    #[error("fetching {url} failed: {reason}")]
    Fetch {
        /// URL.
        url: String,
        /// Reason.
        reason: String,
    },
}
