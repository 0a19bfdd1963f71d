//! The evidence bundle a node hands to a verifier.

use serde::{Deserialize, Serialize};

/// Format tag of simulated evidence: it is in the serialized form and in every message about it.
pub const SIMULATED_FORMAT: &str = "LIT-SIMULATED-SNP-NOT-HARDWARE";

/// Evidence: a hardware report with its certificates, or a loudly marked simulation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format")]
#[non_exhaustive]
pub enum Evidence {
    /// A report signed by AMD hardware.
    #[serde(rename = "amd-sev-snp")]
    Snp(SnpEvidence),
    /// A report-shaped structure signed by a local key. NOT HARDWARE.
    #[serde(rename = "LIT-SIMULATED-SNP-NOT-HARDWARE")]
    Simulated(SimulatedEvidence),
}

impl Evidence {
    /// Whether this evidence comes from hardware.
    pub fn is_hardware(&self) -> bool {
        matches!(self, Evidence::Snp(_))
    }

    /// Serialize to JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse from JSON.
    pub fn from_json(s: &str) -> Result<Evidence, serde_json::Error> {
        serde_json::from_str(s)
    }
}

/// A hardware report and the certificates to check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnpEvidence {
    /// The 1184-byte `ATTESTATION_REPORT`.
    #[serde(with = "hex::serde")]
    pub report: Vec<u8>,
    /// The VCEK or VLEK certificate (DER).
    #[serde(with = "hex::serde")]
    pub vek: Vec<u8>,
    /// The ASK (for a VCEK) or ASVK (for a VLEK), DER; built-in AMD one when absent.
    #[serde(default, with = "opt_hex")]
    pub intermediate: Option<Vec<u8>>,
    /// The ARK (DER); built-in AMD one when absent. Always checked against the pin.
    #[serde(default, with = "opt_hex")]
    pub ark: Option<Vec<u8>>,
}

impl SnpEvidence {
    /// Evidence from a report and its VCEK/VLEK, using the built-in AMD ASK/ARK.
    pub fn new(report: Vec<u8>, vek: Vec<u8>) -> SnpEvidence {
        SnpEvidence {
            report,
            vek,
            intermediate: None,
            ark: None,
        }
    }

    /// Attach an ASK/ASVK and ARK (DER).
    pub fn with_chain(mut self, intermediate: Vec<u8>, ark: Vec<u8>) -> SnpEvidence {
        self.intermediate = Some(intermediate);
        self.ark = Some(ark);
        self
    }
}

/// Simulated evidence. It says so in its format tag, in `simulated`, and in `warning`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulatedEvidence {
    /// Always `true`.
    pub simulated: bool,
    /// Always [`SIMULATED_FORMAT`].
    pub warning: String,
    /// Report-shaped bytes (1184, layout of a v2 Milan report, `SIGNING_KEY` = none) signed with
    /// ECDSA P-384/SHA-384 by `public_key` in the usual signature field.
    #[serde(with = "hex::serde")]
    pub report: Vec<u8>,
    /// SEC1 P-384 public key of the local signer.
    #[serde(with = "hex::serde")]
    pub public_key: Vec<u8>,
}

mod opt_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let o: Option<String> = Option::deserialize(d)?;
        o.map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}
