//! What a verifier accepts, and the clock it checks certificate validity against.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Minimum TCB, compared component by component (a higher microcode does not make up for a
/// lower SNP firmware).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinTcb {
    /// Minimum FMC SPL (only checked on Turin, which has the component).
    pub fmc: u8,
    /// Minimum boot loader SPL.
    pub bootloader: u8,
    /// Minimum TEE SPL.
    pub tee: u8,
    /// Minimum SNP firmware SPL.
    pub snp: u8,
    /// Minimum microcode SPL.
    pub microcode: u8,
}

/// Acceptance policy. `Policy::default()` is strict: debug off, VMPL 0 only, any TCB, no
/// measurement allow-list, no simulated evidence.
///
/// Serialized as JSON for the `attest` CLI (`--policy FILE`); measurements and chip ids are hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Accept guests whose policy allows debugging (never in production).
    pub allow_debug: bool,
    /// Highest VMPL accepted (0 = only the most privileged level).
    pub max_vmpl: u32,
    /// Minimum `REPORTED_TCB`, per component.
    pub min_tcb: MinTcb,
    /// Approved software images (SHA-384 launch measurements, hex). Empty = any measurement.
    pub allowed_measurements: Vec<String>,
    /// Allowed hardware (CHIP_ID, hex, 64 bytes; or the 8-byte Turin hwID). Empty = any chip.
    pub allowed_chip_ids: Vec<String>,
    /// Accept a VCEK-signed report whose CHIP_ID is masked (all zero); the hwID check is skipped.
    pub allow_masked_chip_id: bool,
    /// Accept reports signed by a VLEK (a cloud provider's endorsement key).
    pub allow_vlek: bool,
    /// Accept `Simulated` evidence (development networks only).
    pub allow_simulated: bool,
    /// If non-empty, simulated evidence must be signed by one of these keys (SEC1 hex).
    pub simulated_keys: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow_debug: false,
            max_vmpl: 0,
            min_tcb: MinTcb::default(),
            allowed_measurements: Vec::new(),
            allowed_chip_ids: Vec::new(),
            allow_masked_chip_id: false,
            allow_vlek: true,
            allow_simulated: false,
            simulated_keys: Vec::new(),
        }
    }
}

impl Policy {
    /// A policy for development networks: everything of the default, plus simulated evidence.
    pub fn development() -> Policy {
        Policy {
            allow_simulated: true,
            ..Policy::default()
        }
    }

    /// Add an approved measurement.
    pub fn allow_measurement(mut self, m: &[u8; 48]) -> Policy {
        self.allowed_measurements.push(hex::encode(m));
        self
    }

    /// Parse from JSON.
    pub fn from_json(s: &str) -> Result<Policy, serde_json::Error> {
        serde_json::from_str(s)
    }
}

/// Source of the current time for certificate validity checks.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock stuck at one instant (tests, and offline checks of old evidence).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub SystemTime);

impl FixedClock {
    /// At `secs` seconds after the Unix epoch.
    pub fn at_unix(secs: u64) -> FixedClock {
        FixedClock(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_unknown_fields_refused() {
        let p = Policy {
            max_vmpl: 1,
            min_tcb: MinTcb {
                snp: 8,
                ..MinTcb::default()
            },
            ..Policy::default().allow_measurement(&[0xAB; 48])
        };
        let s = serde_json::to_string(&p).unwrap_or_default();
        assert_eq!(Policy::from_json(&s).ok(), Some(p));
        assert_eq!(Policy::from_json("{}").ok(), Some(Policy::default()));
        assert!(Policy::from_json(r#"{"allow_debugg": true}"#).is_err());
    }
}
