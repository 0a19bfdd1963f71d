//! The verifier.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use p384::ecdsa::signature::Verifier as _;

use crate::binding::{Binding, Nonce, NonceIssuer};
use crate::certs::{self, Cert, TrustAnchors};
use crate::error::{CertRole, VerifyError};
use crate::evidence::{Evidence, SimulatedEvidence, SnpEvidence, SIMULATED_FORMAT};
use crate::policy::{Clock, Policy, SystemClock};
use crate::report::{Generation, Report, ReportHeader, SigningKey, TcbComponent};

/// Who signed accepted evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signer {
    /// AMD hardware, per-chip key.
    Vcek,
    /// AMD hardware, cloud-provider loaded key.
    Vlek,
    /// A local key: NOT HARDWARE.
    Simulated,
}

/// Evidence that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The decoded report.
    pub report: Report,
    /// Processor generation.
    pub generation: Generation,
    /// Who signed it.
    pub signer: Signer,
}

impl Verified {
    /// Whether the evidence came from AMD hardware.
    pub fn is_hardware(&self) -> bool {
        self.signer != Signer::Simulated
    }
}

/// Verifies evidence against a [`Policy`], AMD's pinned roots and a clock, and issues the
/// single-use nonces that evidence must be bound to.
pub struct Verifier {
    policy: Policy,
    anchors: TrustAnchors,
    clock: Arc<dyn Clock>,
    nonces: NonceIssuer,
    /// SHA-256(ARK ‖ ASK/ASVK) of CA pairs whose signatures already verified (pin, names and
    /// signatures are a pure function of the bytes; validity is still checked every time).
    verified_cas: Mutex<HashSet<[u8; 32]>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("policy", &self.policy)
            .field("anchors", &self.anchors)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with AMD's pinned roots and the system clock.
    pub fn new(policy: Policy) -> Verifier {
        Verifier {
            policy,
            anchors: TrustAnchors::amd(),
            clock: Arc::new(SystemClock),
            nonces: NonceIssuer::default(),
            verified_cas: Mutex::new(HashSet::new()),
        }
    }

    /// Use another clock for certificate validity and nonce expiry.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Verifier {
        self.clock = Arc::new(clock);
        self
    }

    /// Use other trust anchors (test infrastructure only).
    pub fn with_trust_anchors(mut self, anchors: TrustAnchors) -> Verifier {
        self.anchors = anchors;
        self
    }

    /// Nonces expire `ttl` after issue.
    pub fn with_nonce_ttl(mut self, ttl: Duration) -> Verifier {
        self.nonces = NonceIssuer::new(ttl);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Issue a nonce for a node to bind into its next report.
    pub fn issue_nonce(&self) -> Nonce {
        self.nonces.issue(self.clock.now())
    }

    /// Full verification: evidence, policy, and binding to `expected`, whose nonce must have been
    /// issued by this verifier, be unexpired and unused; it is consumed on success.
    pub fn verify(&self, evidence: &Evidence, expected: &Binding) -> Result<Verified, VerifyError> {
        let now = self.clock.now();
        self.nonces.check(&expected.nonce, now)?;
        let v = self.verify_without_binding(evidence)?;
        if !expected.matches(&v.report.report_data) {
            return Err(VerifyError::BindingMismatch);
        }
        self.nonces.redeem(&expected.nonce, now)?;
        Ok(v)
    }

    /// Verification without the `report_data` binding and nonce (operator inspection, the CLI
    /// without a binding). Never use this to admit a node: a report without a fresh binding may
    /// be replayed by anyone who saw it.
    pub fn verify_without_binding(&self, evidence: &Evidence) -> Result<Verified, VerifyError> {
        let v = match evidence {
            Evidence::Snp(e) => self.verify_snp(e)?,
            Evidence::Simulated(e) => self.verify_simulated(e)?,
        };
        self.apply_policy(&v)?;
        Ok(v)
    }

    fn verify_snp(&self, e: &SnpEvidence) -> Result<Verified, VerifyError> {
        // 1. Structure of the report.
        let header = ReportHeader::parse(&e.report)?;
        let kind = match header.signing_key {
            SigningKey::None => return Err(VerifyError::ReportNotSigned),
            k => k,
        };
        if header.mask_chip_key {
            return Err(VerifyError::ChipKeyMasked);
        }
        if kind == SigningKey::Vlek && !self.policy.allow_vlek {
            return Err(VerifyError::VlekNotAllowed);
        }
        let vek = Cert::from_der_or_pem(&e.vek, CertRole::Vek)?;
        if vek.vek_kind() != Some(kind) {
            return Err(VerifyError::SignerMismatch {
                report: kind,
                certificate: vek
                    .subject_cn()
                    .unwrap_or_else(|| "unnamed certificate".into()),
            });
        }

        // 2. Generation: signed CPUID fields (v3+) must agree with the certificate.
        let cert_gen = vek.generation(CertRole::Vek)?;
        if let Some((family, model)) = header.cpuid {
            match header.cpuid_generation {
                None => return Err(crate::error::ReportError::UnknownCpu { family, model }.into()),
                Some(g) if g != cert_gen => {
                    return Err(VerifyError::GenerationMismatch {
                        report: g,
                        certificate: cert_gen,
                    })
                }
                Some(_) => {}
            }
        }
        let generation = cert_gen;

        // Pinned root for that generation.
        let ark_der = match &e.ark {
            Some(a) => Some(a.clone()),
            None if self.anchors.has_builtin() => certs::builtin_ark(generation),
            None => None,
        }
        .ok_or(VerifyError::CertificateParse {
            role: CertRole::Ark,
            reason: "no ARK supplied".into(),
        })?;
        let ark = Cert::from_der_or_pem(&ark_der, CertRole::Ark)?;
        self.anchors.check(generation, &ark.der)?;

        // 3. Chain ARK → ASK/ASVK → VCEK/VLEK, then the report signature.
        let inter_der = match &e.intermediate {
            Some(i) => i.clone(),
            None if self.anchors.has_builtin() => certs::builtin_intermediate(generation, kind)
                .ok_or(if kind == SigningKey::Vlek {
                    VerifyError::MissingAsvk(generation)
                } else {
                    VerifyError::CertificateParse {
                        role: CertRole::Intermediate,
                        reason: "no ASK supplied".into(),
                    }
                })?,
            None => {
                return Err(VerifyError::CertificateParse {
                    role: CertRole::Intermediate,
                    reason: "no ASK/ASVK supplied".into(),
                })
            }
        };
        let inter = Cert::from_der_or_pem(&inter_der, CertRole::Intermediate)?;
        let expected_cn = match kind {
            SigningKey::Vlek => format!("SEV-VLEK-{generation}"),
            _ => format!("SEV-{generation}"),
        };
        if inter.subject_cn().as_deref() != Some(expected_cn.as_str()) {
            return Err(VerifyError::ChainName {
                role: CertRole::Intermediate,
                detail: format!(
                    "subject CN {:?}, expected {expected_cn:?} for a {kind}",
                    inter.subject_cn()
                ),
            });
        }
        let ca_id: [u8; 32] = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update((ark.der.len() as u64).to_be_bytes());
            h.update(&ark.der);
            h.update(&inter.der);
            h.finalize().into()
        };
        let known = self
            .verified_cas
            .lock()
            .map(|set| set.contains(&ca_id))
            .unwrap_or(false);
        if !known {
            ark.signs(&ark, CertRole::Ark, CertRole::Ark)?;
            ark.signs(&inter, CertRole::Ark, CertRole::Intermediate)?;
            if let Ok(mut set) = self.verified_cas.lock() {
                set.insert(ca_id);
            }
        }
        inter.signs(&vek, CertRole::Intermediate, CertRole::Vek)?;
        let now = self.clock.now();
        ark.check_validity(now, CertRole::Ark)?;
        inter.check_validity(now, CertRole::Intermediate)?;
        vek.check_validity(now, CertRole::Vek)?;

        let report = Report::parse(&e.report, Some(generation))?;
        let key = vek.p384_key()?;
        let (r, s) = report.signature_rs();
        let sig = p384::ecdsa::Signature::from_scalars(r, s)
            .map_err(|_| VerifyError::BadReportSignature)?;
        key.verify(report.signed_bytes(), &sig)
            .map_err(|_| VerifyError::BadReportSignature)?;

        // 4. Certificate extensions equal the report.
        certs::check_tcb(&vek.tcb(generation)?, &report.reported_tcb)?;
        if kind == SigningKey::Vcek {
            if report.chip_id_masked() {
                if !self.policy.allow_masked_chip_id {
                    return Err(VerifyError::ChipIdMasked);
                }
            } else {
                let hw = vek.hw_id(report.hw_id().len())?;
                let tail_zero = report
                    .chip_id
                    .get(hw.len()..)
                    .is_some_and(|t| t.iter().all(|&b| b == 0));
                if hw != report.hw_id() || !tail_zero {
                    return Err(VerifyError::HwIdMismatch {
                        certificate: hex::encode(&hw),
                        report: hex::encode(report.chip_id),
                    });
                }
            }
        }
        let signer = if kind == SigningKey::Vlek {
            Signer::Vlek
        } else {
            Signer::Vcek
        };
        Ok(Verified {
            report,
            generation,
            signer,
        })
    }

    fn verify_simulated(&self, e: &SimulatedEvidence) -> Result<Verified, VerifyError> {
        if !self.policy.allow_simulated {
            return Err(VerifyError::SimulatedNotAllowed);
        }
        if !e.simulated || e.warning != SIMULATED_FORMAT {
            return Err(VerifyError::SimulatedInvalid(
                "missing the simulated marker".into(),
            ));
        }
        let report = Report::parse(&e.report, Some(Generation::Milan))?;
        if report.signing_key != SigningKey::None {
            return Err(VerifyError::SimulatedInvalid(
                "a simulated report must say SIGNING_KEY = none".into(),
            ));
        }
        if !self.policy.simulated_keys.is_empty()
            && !self
                .policy
                .simulated_keys
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&hex::encode(&e.public_key)))
        {
            return Err(VerifyError::SimulatedInvalid(
                "signed by a key the policy does not list".into(),
            ));
        }
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&e.public_key)
            .map_err(|e| VerifyError::SimulatedInvalid(format!("bad public key: {e}")))?;
        let (r, s) = report.signature_rs();
        let sig = p384::ecdsa::Signature::from_scalars(r, s)
            .map_err(|_| VerifyError::BadReportSignature)?;
        key.verify(report.signed_bytes(), &sig)
            .map_err(|_| VerifyError::BadReportSignature)?;
        Ok(Verified {
            generation: report.generation,
            report,
            signer: Signer::Simulated,
        })
    }

    /// 5. Policy checks on an authenticated report.
    ///
    /// The measurement decides which rules apply: a revoked release is refused; an active
    /// release adds its TCB floor and flags to the policy's; otherwise the measurement must be
    /// on the policy's own list (or the policy accepts any measurement).
    fn apply_policy(&self, v: &Verified) -> Result<(), VerifyError> {
        let p = &self.policy;
        let r = &v.report;
        let m = hex::encode(r.measurement);
        let release = p.release_of(&r.measurement);
        if release.is_some_and(|rel| rel.revoked) {
            return Err(VerifyError::MeasurementRevoked(m));
        }
        let approved = release.is_some()
            || p.any_measurement
            || p.allowed_measurements
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&m));
        if !approved {
            return Err(VerifyError::MeasurementNotAllowed(m));
        }
        let allow_debug = p.allow_debug || release.is_some_and(|rel| rel.allow_debug);
        if r.policy.debug_allowed() && !allow_debug {
            return Err(VerifyError::DebugAllowed { policy: r.policy.0 });
        }
        if release.is_some_and(|rel| rel.vcek_only) && v.signer == Signer::Vlek {
            return Err(VerifyError::VlekNotAllowedForRelease(m));
        }
        if r.vmpl > p.max_vmpl {
            return Err(VerifyError::Vmpl {
                vmpl: r.vmpl,
                max: p.max_vmpl,
            });
        }
        let floor = release.map(|rel| rel.min_tcb).unwrap_or_default();
        let min = [
            (TcbComponent::Fmc, p.min_tcb.fmc.max(floor.fmc)),
            (
                TcbComponent::Bootloader,
                p.min_tcb.bootloader.max(floor.bootloader),
            ),
            (TcbComponent::Tee, p.min_tcb.tee.max(floor.tee)),
            (TcbComponent::Snp, p.min_tcb.snp.max(floor.snp)),
            (
                TcbComponent::Microcode,
                p.min_tcb.microcode.max(floor.microcode),
            ),
        ];
        for (component, need) in min {
            if let Some(have) = r.reported_tcb.get(component) {
                if have < need {
                    return Err(VerifyError::TcbTooLow {
                        component,
                        have,
                        need,
                    });
                }
            }
        }
        if !p.allowed_chip_ids.is_empty() {
            let full = hex::encode(r.chip_id);
            let hw = hex::encode(r.hw_id());
            if r.chip_id_masked()
                || !p
                    .allowed_chip_ids
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&full) || a.eq_ignore_ascii_case(&hw))
            {
                return Err(VerifyError::ChipIdNotAllowed(hw));
            }
        }
        Ok(())
    }
}
