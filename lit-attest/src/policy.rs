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

/// A software release a network approved: one entry of its release register (on the chain, or
/// listed in a static network's file).
///
/// A report whose measurement is an active release must also meet the release's minimum TCB
/// (on top of the policy's own) and its flags. A revoked release is refused by name, whatever
/// else the policy allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The SHA-384 launch measurement of the image.
    #[serde(with = "hex48")]
    pub measurement: [u8; 48],
    /// Minimum `REPORTED_TCB` of a guest running this release, per component.
    #[serde(default)]
    pub min_tcb: MinTcb,
    /// Guests of this release may run with debugging allowed (a test image; never in
    /// production). Without it a report whose guest policy allows debugging is refused.
    #[serde(default)]
    pub allow_debug: bool,
    /// Only VCEK-signed reports: a cloud provider's VLEK does not endorse this release.
    #[serde(default)]
    pub vcek_only: bool,
    /// Revoked by the network's admin: refused from then on (revocation is final).
    #[serde(default)]
    pub revoked: bool,
}

/// The release register's encoding of [`Release::allow_debug`].
pub const RELEASE_FLAG_DEBUG: u32 = 1;
/// The release register's encoding of [`Release::vcek_only`].
pub const RELEASE_FLAG_VCEK_ONLY: u32 = 2;

impl Release {
    /// An active release of `measurement` with no TCB floor of its own and no flags.
    pub fn new(measurement: [u8; 48]) -> Release {
        Release {
            measurement,
            min_tcb: MinTcb::default(),
            allow_debug: false,
            vcek_only: false,
            revoked: false,
        }
    }

    /// The flags as the release register stores them.
    pub fn flags(&self) -> u32 {
        (if self.allow_debug {
            RELEASE_FLAG_DEBUG
        } else {
            0
        }) | (if self.vcek_only {
            RELEASE_FLAG_VCEK_ONLY
        } else {
            0
        })
    }

    /// Sets the flags from the release register's encoding (unknown bits are ignored).
    pub fn with_flags(mut self, flags: u32) -> Release {
        self.allow_debug = flags & RELEASE_FLAG_DEBUG != 0;
        self.vcek_only = flags & RELEASE_FLAG_VCEK_ONLY != 0;
        self
    }
}

mod hex48 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &[u8; 48], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(m))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 48], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(text.trim_start_matches("0x")).map_err(serde::de::Error::custom)?;
        bytes.try_into().map_err(|b: Vec<u8>| {
            serde::de::Error::custom(format!(
                "a measurement is 48 bytes (SHA-384), not {}",
                b.len()
            ))
        })
    }
}

/// Acceptance policy. `Policy::default()` is strict: debug off, VMPL 0 only, any TCB, **no
/// measurement** (a verifier accepts only the releases and measurements it is given), no
/// simulated evidence.
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
    /// Approved software images (SHA-384 launch measurements, hex), with the policy's own TCB
    /// floor and flags. Usually empty: a network's approved images come from its release
    /// register, in `releases`.
    pub allowed_measurements: Vec<String>,
    /// The release register: active releases are approved (each with its own TCB floor and
    /// flags), revoked ones are refused even when `allowed_measurements` lists them.
    pub releases: Vec<Release>,
    /// Accept any measurement not revoked (inspecting evidence, never a network's policy).
    pub any_measurement: bool,
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
            releases: Vec::new(),
            any_measurement: false,
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
    /// The approved measurements still have to be given (see [`Policy::with_releases`]).
    pub fn development() -> Policy {
        Policy {
            allow_simulated: true,
            ..Policy::default()
        }
    }

    /// Adds a release register's entries (active and revoked) to the policy.
    pub fn with_releases(mut self, releases: impl IntoIterator<Item = Release>) -> Policy {
        self.releases.extend(releases);
        self
    }

    /// Accept any measurement that is not revoked (for inspecting evidence).
    pub fn any_measurement(mut self) -> Policy {
        self.any_measurement = true;
        self
    }

    /// The release of `measurement`, if the policy lists it (the revoked entry first, so that a
    /// measurement listed both ways counts as revoked).
    pub fn release_of(&self, measurement: &[u8; 48]) -> Option<&Release> {
        let mut matching = self
            .releases
            .iter()
            .filter(|r| &r.measurement == measurement);
        let first = matching.next()?;
        if first.revoked {
            return Some(first);
        }
        Some(matching.find(|r| r.revoked).unwrap_or(first))
    }

    /// Merges an operator's local override into this policy: its releases and measurements
    /// are added, its TCB floor raised component by component, its chip ids added; flags that
    /// relax the policy (debug, VMPL, VLEK, simulated, any measurement) are taken only from
    /// `self`.
    pub fn merged_with(mut self, local: &Policy) -> Policy {
        self.releases.extend(local.releases.iter().cloned());
        self.allowed_measurements
            .extend(local.allowed_measurements.iter().cloned());
        self.allowed_chip_ids
            .extend(local.allowed_chip_ids.iter().cloned());
        self.simulated_keys
            .extend(local.simulated_keys.iter().cloned());
        let (a, b) = (&mut self.min_tcb, &local.min_tcb);
        a.fmc = a.fmc.max(b.fmc);
        a.bootloader = a.bootloader.max(b.bootloader);
        a.tee = a.tee.max(b.tee);
        a.snp = a.snp.max(b.snp);
        a.microcode = a.microcode.max(b.microcode);
        self
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
    fn a_local_policy_adds_and_raises_but_does_not_relax_or_unrevoke() {
        let register = Policy::development().with_releases([
            Release::new([1; 48]),
            Release {
                revoked: true,
                ..Release::new([2; 48])
            },
        ]);
        let local = Policy {
            allow_debug: true,
            allow_simulated: false,
            any_measurement: true,
            max_vmpl: 3,
            min_tcb: MinTcb {
                snp: 9,
                ..MinTcb::default()
            },
            ..Policy::default().with_releases([Release::new([2; 48]), Release::new([3; 48])])
        };
        let merged = register.merged_with(&local);
        assert!(merged.allow_simulated && !merged.allow_debug && !merged.any_measurement);
        assert_eq!((merged.max_vmpl, merged.min_tcb.snp), (0, 9));
        assert!(merged.release_of(&[2; 48]).is_some_and(|r| r.revoked));
        assert!(merged.release_of(&[3; 48]).is_some_and(|r| !r.revoked));
        assert!(merged.release_of(&[4; 48]).is_none());
    }

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
