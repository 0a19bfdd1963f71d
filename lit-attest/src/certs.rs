//! AMD certificates: pinned roots, the ARK → ASK/ASVK → VCEK/VLEK chain, and the AMD X.509
//! extensions of the VCEK (AMD pub. 57230, "VCEK Certificate and KDS Interface Specification").
//!
//! Signatures are checked by the `sev` crate (RSA-PSS/SHA-384 with `crypto_nossl`); this module
//! only selects, pins and names certificates, and never exposes `sev` types.

use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, DecodePem, Encode};

use crate::error::{CertRole, VerifyError};
use crate::report::{Generation, SigningKey, TcbComponent, TcbVersion};

/// SHA-256 of AMD's ARK certificate (DER) per generation. These are the pins: an ARK whose digest
/// differs is refused, however well its chain verifies. Values from the AMD KDS certificates
/// (`https://kdsintf.amd.com/vcek/v1/{Milan,Genoa,Turin}/cert_chain`), identical to the builtin
/// certificates of the `sev` crate; see `testdata/README.md`.
pub const AMD_ARK_SHA256: [(Generation, &str); 3] = [
    (
        Generation::Milan,
        "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
    ),
    (
        Generation::Genoa,
        "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
    ),
    (
        Generation::Turin,
        "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
    ),
];

/// AMD's Milan ASVK (VLEK signing key) certificate, PEM. Public AMD data from the KDS
/// (`/vlek/v1/Milan/cert_chain`); a copy is in `testdata/milan-v3-vlek-aws-trustee`.
const MILAN_ASVK_PEM: &[u8] = include_bytes!("../certs/milan_asvk.pem");

const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
const OID_FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
const OID_HW_ID: &str = "1.3.6.1.4.1.3704.1.4";
const OID_PRODUCT_NAME: &str = "1.3.6.1.4.1.3704.1.2";

/// The set of pinned root digests a verifier trusts, per generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchors {
    pins: Vec<(Generation, [u8; 32])>,
    builtin: bool,
}

impl Default for TrustAnchors {
    fn default() -> Self {
        TrustAnchors::amd()
    }
}

impl TrustAnchors {
    /// AMD's roots for Milan, Genoa and Turin (the only sensible choice in production).
    pub fn amd() -> TrustAnchors {
        let pins = AMD_ARK_SHA256
            .iter()
            .filter_map(|(g, h)| {
                let mut d = [0u8; 32];
                hex::decode_to_slice(h, &mut d).ok()?;
                Some((*g, d))
            })
            .collect();
        TrustAnchors {
            pins,
            builtin: true,
        }
    }

    /// Anchors that pin exactly the given ARK certificates (DER) instead of AMD's. For test
    /// infrastructure that owns its own root; never use this to accept real nodes.
    pub fn custom(roots: &[(Generation, &[u8])]) -> TrustAnchors {
        TrustAnchors {
            pins: roots
                .iter()
                .map(|(g, der)| (*g, Sha256::digest(der).into()))
                .collect(),
            builtin: false,
        }
    }

    fn pin(&self, g: Generation) -> Option<&[u8; 32]> {
        self.pins.iter().find(|(pg, _)| *pg == g).map(|(_, d)| d)
    }

    /// Check the ARK (DER) against the pin for `g`.
    pub(crate) fn check(&self, g: Generation, ark_der: &[u8]) -> Result<(), VerifyError> {
        let digest: [u8; 32] = Sha256::digest(ark_der).into();
        if self.pin(g) == Some(&digest) {
            return Ok(());
        }
        if let Some((found, _)) = self.pins.iter().find(|(_, d)| *d == digest) {
            return Err(VerifyError::WrongGenerationRoot {
                expected: g,
                found: *found,
            });
        }
        Err(VerifyError::UntrustedRoot {
            generation: g,
            sha256: hex::encode(digest),
        })
    }

    /// Whether the built-in AMD ARK/ASK/ASVK may be used when the evidence carries none.
    pub(crate) fn has_builtin(&self) -> bool {
        self.builtin
    }
}

/// A parsed certificate, keeping both the DER and the `sev` view for signature checks.
#[derive(Clone)]
pub(crate) struct Cert {
    pub der: Vec<u8>,
    pub x509: x509_cert::Certificate,
    sev: sev::certs::snp::Certificate,
}

impl Cert {
    pub fn from_der(der: &[u8], role: CertRole) -> Result<Cert, VerifyError> {
        let err = |reason: String| VerifyError::CertificateParse { role, reason };
        let x509 = x509_cert::Certificate::from_der(der).map_err(|e| err(e.to_string()))?;
        // Reject trailing garbage / non-canonical encodings: re-encoding must give the input.
        let re = x509.to_der().map_err(|e| err(e.to_string()))?;
        if re != der {
            return Err(err(
                "not canonical DER (trailing or re-encoded bytes)".into()
            ));
        }
        let sev = sev::certs::snp::Certificate::from_der(der).map_err(|e| err(e.to_string()))?;
        Ok(Cert {
            der: der.to_vec(),
            x509,
            sev,
        })
    }

    /// Parse DER, or one PEM certificate.
    pub fn from_der_or_pem(bytes: &[u8], role: CertRole) -> Result<Cert, VerifyError> {
        if bytes.starts_with(b"-----BEGIN") {
            let c = x509_cert::Certificate::from_pem(bytes).map_err(|e| {
                VerifyError::CertificateParse {
                    role,
                    reason: e.to_string(),
                }
            })?;
            let der = c.to_der().map_err(|e| VerifyError::CertificateParse {
                role,
                reason: e.to_string(),
            })?;
            Cert::from_der(&der, role)
        } else {
            Cert::from_der(bytes, role)
        }
    }

    fn cn(name: &x509_cert::name::Name) -> Option<String> {
        const CN: &str = "2.5.4.3";
        for rdn in name.0.iter() {
            for atv in rdn.0.iter() {
                if atv.oid.to_string() == CN {
                    if let Ok(s) = atv
                        .value
                        .decode_as::<x509_cert::der::asn1::PrintableStringRef>()
                    {
                        return Some(s.as_str().to_string());
                    }
                    if let Ok(s) = atv.value.decode_as::<x509_cert::der::asn1::Utf8StringRef>() {
                        return Some(s.as_str().to_string());
                    }
                    if let Ok(s) = atv.value.decode_as::<x509_cert::der::asn1::Ia5StringRef>() {
                        return Some(s.as_str().to_string());
                    }
                }
            }
        }
        None
    }

    pub fn subject_cn(&self) -> Option<String> {
        Cert::cn(&self.x509.tbs_certificate.subject)
    }

    pub fn issuer_cn(&self) -> Option<String> {
        Cert::cn(&self.x509.tbs_certificate.issuer)
    }

    /// `self` signs `subject` (RSA-PSS with SHA-384, checked by `sev`).
    pub fn signs(
        &self,
        subject: &Cert,
        signer: CertRole,
        sub: CertRole,
    ) -> Result<(), VerifyError> {
        use sev::certs::snp::Verifiable;
        if self.x509.tbs_certificate.subject != subject.x509.tbs_certificate.issuer {
            return Err(VerifyError::ChainName {
                role: sub,
                detail: format!(
                    "issuer {:?} is not the subject of the {signer} ({:?})",
                    subject.issuer_cn(),
                    self.subject_cn()
                ),
            });
        }
        (&self.sev, &subject.sev)
            .verify()
            .map_err(|e| VerifyError::ChainSignature {
                signer,
                subject: sub,
                reason: e.to_string(),
            })
    }

    /// Validity period as Unix seconds.
    pub fn validity(&self) -> (u64, u64) {
        let v = &self.x509.tbs_certificate.validity;
        (
            v.not_before.to_unix_duration().as_secs(),
            v.not_after.to_unix_duration().as_secs(),
        )
    }

    pub fn check_validity(&self, now: SystemTime, role: CertRole) -> Result<(), VerifyError> {
        let now_unix = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let (nb, na) = self.validity();
        if now_unix < nb || now_unix > na {
            return Err(VerifyError::CertificateValidity {
                role,
                now_unix,
                not_before_unix: nb,
                not_after_unix: na,
            });
        }
        Ok(())
    }

    fn extension(&self, oid: &str) -> Option<&[u8]> {
        self.x509
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    fn spl(&self, oid: &'static str) -> Result<u8, VerifyError> {
        let raw = self.extension(oid).ok_or(VerifyError::Extension {
            oid,
            detail: "missing".into(),
        })?;
        let v = u32::from_der(raw).map_err(|e| VerifyError::Extension {
            oid,
            detail: format!("not a DER INTEGER: {e}"),
        })?;
        u8::try_from(v).map_err(|_| VerifyError::Extension {
            oid,
            detail: format!("SPL {v} out of range"),
        })
    }

    /// TCB certified by the VCEK/VLEK (fmcSPL only on Turin).
    pub fn tcb(&self, g: Generation) -> Result<TcbVersion, VerifyError> {
        Ok(TcbVersion {
            fmc: if g.is_turin_like() {
                Some(self.spl(OID_FMC_SPL)?)
            } else {
                None
            },
            bootloader: self.spl(OID_BL_SPL)?,
            tee: self.spl(OID_TEE_SPL)?,
            snp: self.spl(OID_SNP_SPL)?,
            microcode: self.spl(OID_UCODE_SPL)?,
        })
    }

    /// The hwID extension: AMD stores the raw bytes (64, or 8 on Turin) as the extension value;
    /// a DER OCTET STRING wrapping them is accepted too.
    pub fn hw_id(&self, len: usize) -> Result<Vec<u8>, VerifyError> {
        let raw = self.extension(OID_HW_ID).ok_or(VerifyError::Extension {
            oid: OID_HW_ID,
            detail: "missing".into(),
        })?;
        if raw.len() == len {
            return Ok(raw.to_vec());
        }
        match x509_cert::der::asn1::OctetString::from_der(raw) {
            Ok(os) if os.as_bytes().len() == len => Ok(os.as_bytes().to_vec()),
            _ => Err(VerifyError::Extension {
                oid: OID_HW_ID,
                detail: format!(
                    "expected {len} bytes raw or DER-wrapped, got {} bytes",
                    raw.len()
                ),
            }),
        }
    }

    /// Generation named by the certificate: the issuer CN (`SEV-Milan`, `SEV-VLEK-Genoa`, …),
    /// or for an ARK/ASK its own subject (`ARK-Milan`), falling back to the productName extension.
    pub fn generation(&self, role: CertRole) -> Result<Generation, VerifyError> {
        let issuer = self.issuer_cn().unwrap_or_default();
        let from_cn = issuer
            .rsplit('-')
            .next()
            .and_then(Generation::from_product_name);
        if let Some(g) = from_cn {
            return Ok(g);
        }
        let product = self
            .extension(OID_PRODUCT_NAME)
            .and_then(|raw| x509_cert::der::asn1::Ia5StringRef::from_der(raw).ok())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        Generation::from_product_name(&product).ok_or(VerifyError::UnknownGeneration {
            role,
            detail: format!("issuer CN {issuer:?}, productName {product:?}"),
        })
    }

    /// Kind of endorsement key by subject CN.
    pub fn vek_kind(&self) -> Option<SigningKey> {
        match self.subject_cn().as_deref() {
            Some("SEV-VCEK") => Some(SigningKey::Vcek),
            Some("SEV-VLEK") => Some(SigningKey::Vlek),
            _ => None,
        }
    }

    /// The P-384 public key (SEC1) of the certificate.
    pub fn p384_key(&self) -> Result<p384::ecdsa::VerifyingKey, VerifyError> {
        const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
        const SECP384R1: &str = "1.3.132.0.34";
        let spki = &self.x509.tbs_certificate.subject_public_key_info;
        if spki.algorithm.oid.to_string() != EC_PUBLIC_KEY {
            return Err(VerifyError::VekKey(format!(
                "algorithm {} is not id-ecPublicKey",
                spki.algorithm.oid
            )));
        }
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<x509_cert::der::asn1::ObjectIdentifier>().ok())
            .map(|o| o.to_string());
        if curve.as_deref() != Some(SECP384R1) {
            return Err(VerifyError::VekKey(format!(
                "curve {curve:?} is not secp384r1"
            )));
        }
        p384::ecdsa::VerifyingKey::from_sec1_bytes(self.sev.public_key_sec1())
            .map_err(|e| VerifyError::VekKey(e.to_string()))
    }
}

/// Built-in AMD ARK (DER) for a generation, from the `sev` crate.
pub(crate) fn builtin_ark(g: Generation) -> Option<Vec<u8>> {
    use sev::certs::snp::builtin;
    let pem = match g {
        Generation::Milan => builtin::milan::ARK,
        Generation::Genoa => builtin::genoa::ARK,
        Generation::Turin => builtin::turin::ARK,
    };
    pem_to_der(pem)
}

/// Built-in AMD ASK (for VCEK) or ASVK (for VLEK; Milan only) as DER.
pub(crate) fn builtin_intermediate(g: Generation, kind: SigningKey) -> Option<Vec<u8>> {
    use sev::certs::snp::builtin;
    match kind {
        SigningKey::Vcek => pem_to_der(match g {
            Generation::Milan => builtin::milan::ASK,
            Generation::Genoa => builtin::genoa::ASK,
            Generation::Turin => builtin::turin::ASK,
        }),
        SigningKey::Vlek if g == Generation::Milan => pem_to_der(MILAN_ASVK_PEM),
        _ => None,
    }
}

fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    x509_cert::Certificate::from_pem(pem).ok()?.to_der().ok()
}

/// Split a PEM stack (or a single DER) into DER certificates.
pub fn certificates_from_bytes(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if bytes.starts_with(b"-----BEGIN") || bytes.windows(10).any(|w| w == b"-----BEGIN") {
        let certs = x509_cert::Certificate::load_pem_chain(bytes).map_err(|e| e.to_string())?;
        certs
            .iter()
            .map(|c| c.to_der().map_err(|e| e.to_string()))
            .collect()
    } else {
        Ok(vec![bytes.to_vec()])
    }
}

/// Pick the ARK and the intermediate that fits `kind` out of a set of certificates (in any
/// order): the ARK is the self-issued one, the ASK has CN `SEV-<gen>`, the ASVK `SEV-VLEK-<gen>`.
pub fn select_chain(certs: &[Vec<u8>], kind: SigningKey) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let mut ark = None;
    let mut inter = None;
    for der in certs {
        let Ok(c) = x509_cert::Certificate::from_der(der) else {
            continue;
        };
        let subject = Cert::cn(&c.tbs_certificate.subject).unwrap_or_default();
        if c.tbs_certificate.subject == c.tbs_certificate.issuer {
            ark = Some(der.clone());
        } else if subject.starts_with("SEV-VLEK-") {
            if kind == SigningKey::Vlek {
                inter = Some(der.clone());
            }
        } else if subject.starts_with("SEV-") && kind == SigningKey::Vcek {
            inter = Some(der.clone());
        }
    }
    (ark, inter)
}

/// Compare the certificate's TCB with the report's `REPORTED_TCB`, component by component.
pub(crate) fn check_tcb(cert: &TcbVersion, report: &TcbVersion) -> Result<(), VerifyError> {
    for (component, c) in cert.components() {
        let r = report.get(component).unwrap_or(0);
        if c != r {
            return Err(VerifyError::TcbMismatch {
                component,
                certificate: c,
                report: r,
            });
        }
    }
    if cert.fmc.is_none() {
        if let Some(r) = report.fmc {
            return Err(VerifyError::TcbMismatch {
                component: TcbComponent::Fmc,
                certificate: 0,
                report: r,
            });
        }
    }
    Ok(())
}

/// The processor generation a VCEK/VLEK certificate (DER or PEM) was issued for.
pub fn vek_generation(vek: &[u8]) -> Result<Generation, VerifyError> {
    Cert::from_der_or_pem(vek, CertRole::Vek)?.generation(CertRole::Vek)
}
