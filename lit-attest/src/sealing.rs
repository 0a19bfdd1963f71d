//! Keys derived by the AMD secure processor for sealing data to a guest (`MSG_KEY_REQ`).
//!
//! An SEV-SNP guest can ask the AMD secure processor (the PSP) for a 256-bit key derived from a
//! root key that never leaves the chip, mixed with facts about the guest that the firmware
//! recorded at launch. AMD SEV-SNP Firmware ABI Specification (AMD pub. 56860), guest messages
//! `MSG_KEY_REQ` / `MSG_KEY_RSP`; Linux exposes it as the
//! `SNP_GET_DERIVED_KEY` ioctl of `/dev/sev-guest` (`Documentation/virt/coco/sev-guest.rst`).
//! The request, field by field ([`KeyRequest`]):
//!
//! | field | here | meaning |
//! |---|---|---|
//! | `ROOT_KEY_SELECT` | [`RootKey`] | 0: the VCEK (chip-unique, known only to that chip's PSP); 1: the VM root key (VMRK), given to the guest by its migration agent |
//! | `GUEST_FIELD_SELECT` | [`GuestFields`] | which launch facts are mixed in: bit 0 guest policy, 1 image id, 2 family id, 3 measurement, 4 guest SVN, 5 TCB version; bits 63:6 reserved, zero (bit 6, the launch mitigation vector, exists only in message version 2, which this crate does not send) |
//! | `VMPL` | [`KeyRequest::vmpl`] | always mixed in; must be ≥ the VMPL of the requesting code |
//! | `GUEST_SVN` | [`KeyRequest::guest_svn`] | mixed in when selected; must not exceed the guest SVN of the launch ID block |
//! | `TCB_VERSION` | [`KeyRequest::tcb_version`] | mixed in when selected; must not exceed the platform's `CommittedTcb` |
//!
//! A field that is selected binds the key to it: another image (measurement), another guest
//! policy, another chip (VCEK root) derives another key, and the firmware refuses a request it
//! could not answer honestly (a VMPL more privileged than the caller, a TCB above the committed
//! one, reserved bits).
//!
//! Two implementations of [`KeyRequester`]:
//! - [`SnpKeyRequester`]: the real one, through the `sev` crate and `/dev/sev-guest`. **Runs only
//!   inside an SEV-SNP guest**; elsewhere every request fails (the device does not exist).
//! - [`FakeKeyDevice`]: **NOT HARDWARE.** A model of the firmware's rules over a secret seed, for
//!   tests and simulated development networks. Whoever holds its seed holds every key it derives.

use std::fmt;

use sha2::Sha256;
use zeroize::Zeroizing;

use crate::attester::SEV_GUEST_DEVICE;
use crate::error::AttestError;

/// `ROOT_KEY_SELECT`: the root key the derived key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RootKey {
    /// The Versioned Chip Endorsement Key: unique to the chip, so a key derived from it cannot be
    /// derived on any other machine. (`ROOT_KEY_SELECT` = 0.)
    Vcek,
    /// The VM Root Key, provided by the guest's migration agent, so the key follows the guest
    /// when it migrates. (`ROOT_KEY_SELECT` = 1.)
    Vmrk,
}

impl RootKey {
    /// The `ROOT_KEY_SELECT` value.
    pub fn select(self) -> u32 {
        match self {
            RootKey::Vcek => 0,
            RootKey::Vmrk => 1,
        }
    }
}

/// `GUEST_FIELD_SELECT`: which launch facts are mixed into the key. Raw bits are kept as given
/// (reserved ones included) so that a request with reserved bits set reaches the device and is
/// refused there, as the firmware does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GuestFields(u64);

impl GuestFields {
    /// Bit 0: the guest policy.
    pub const GUEST_POLICY: GuestFields = GuestFields(1 << 0);
    /// Bit 1: the image id of the launch ID block.
    pub const IMAGE_ID: GuestFields = GuestFields(1 << 1);
    /// Bit 2: the family id of the launch ID block.
    pub const FAMILY_ID: GuestFields = GuestFields(1 << 2);
    /// Bit 3: the launch measurement.
    pub const MEASUREMENT: GuestFields = GuestFields(1 << 3);
    /// Bit 4: the request's guest SVN.
    pub const GUEST_SVN: GuestFields = GuestFields(1 << 4);
    /// Bit 5: the request's TCB version.
    pub const TCB_VERSION: GuestFields = GuestFields(1 << 5);
    /// The bits message version 1 defines; every other bit is reserved and must be zero.
    pub const DEFINED: u64 = 0x3f;

    /// No field selected.
    pub const fn empty() -> GuestFields {
        GuestFields(0)
    }

    /// These raw bits, reserved ones included.
    pub const fn from_bits(bits: u64) -> GuestFields {
        GuestFields(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The reserved bits that are set (zero for a valid request).
    pub const fn reserved(self) -> u64 {
        self.0 & !Self::DEFINED
    }

    /// Whether every bit of `other` is set here.
    pub const fn contains(self, other: GuestFields) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of fields.
    pub const fn union(self, other: GuestFields) -> GuestFields {
        GuestFields(self.0 | other.0)
    }
}

impl std::ops::BitOr for GuestFields {
    type Output = GuestFields;
    fn bitor(self, rhs: GuestFields) -> GuestFields {
        self.union(rhs)
    }
}

impl fmt::Debug for GuestFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(GuestFields, &str); 6] = [
            (GuestFields::GUEST_POLICY, "GUEST_POLICY"),
            (GuestFields::IMAGE_ID, "IMAGE_ID"),
            (GuestFields::FAMILY_ID, "FAMILY_ID"),
            (GuestFields::MEASUREMENT, "MEASUREMENT"),
            (GuestFields::GUEST_SVN, "GUEST_SVN"),
            (GuestFields::TCB_VERSION, "TCB_VERSION"),
        ];
        let mut set = f.debug_set();
        for (bit, name) in NAMES {
            if self.contains(bit) {
                set.entry(&format_args!("{name}"));
            }
        }
        if self.reserved() != 0 {
            set.entry(&format_args!("reserved {:#x}", self.reserved()));
        }
        set.finish()
    }
}

/// The highest VMPL (VMPL 0 is the most privileged).
pub const MAX_VMPL: u32 = 3;

/// A key request (`MSG_KEY_REQ`, message version 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyRequest {
    /// `ROOT_KEY_SELECT`.
    pub root_key: RootKey,
    /// `GUEST_FIELD_SELECT`.
    pub fields: GuestFields,
    /// `VMPL`: mixed into every key; must be ≥ the VMPL the requester runs at, so that less
    /// privileged code in the guest cannot derive a more privileged level's keys.
    pub vmpl: u32,
    /// `GUEST_SVN`: mixed in when [`GuestFields::GUEST_SVN`] is selected; at most the launch's.
    pub guest_svn: u32,
    /// `TCB_VERSION` (the 8 bytes of a TCB version, little-endian, as
    /// [`crate::TcbVersion::encode`] lays them out): mixed in when [`GuestFields::TCB_VERSION`]
    /// is selected; at most the platform's `CommittedTcb`.
    pub tcb_version: u64,
}

impl KeyRequest {
    /// A request from the VCEK for `fields` at `vmpl`, guest SVN and TCB version 0.
    pub const fn vcek(fields: GuestFields, vmpl: u32) -> KeyRequest {
        KeyRequest {
            root_key: RootKey::Vcek,
            fields,
            vmpl,
            guest_svn: 0,
            tcb_version: 0,
        }
    }

    /// The checks that need nothing but the request: reserved bits, VMPL range.
    pub fn check(&self) -> Result<(), KeyRefusal> {
        if self.fields.reserved() != 0 {
            return Err(KeyRefusal::ReservedBits(self.fields.reserved()));
        }
        if self.vmpl > MAX_VMPL {
            return Err(KeyRefusal::VmplOutOfRange(self.vmpl));
        }
        Ok(())
    }
}

/// Why a key request is refused (what the firmware answers `INVALID_PARAM` for, and what the
/// fake device checks): [`AttestError::KeyRefused`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRefusal {
    /// Reserved `GUEST_FIELD_SELECT` bits are set.
    #[error("reserved GUEST_FIELD_SELECT bits {0:#x} are set")]
    ReservedBits(u64),
    /// The VMPL is not 0..=3.
    #[error("VMPL {0} does not exist (0..=3)")]
    VmplOutOfRange(u32),
    /// The request names a VMPL more privileged than the code asking.
    #[error(
        "the request is for VMPL {requested}, more privileged than the caller's VMPL {current}"
    )]
    VmplBelowCurrent {
        /// VMPL in the request.
        requested: u32,
        /// VMPL the requesting code runs at.
        current: u32,
    },
    /// The TCB version exceeds the committed TCB in some component.
    #[error("TCB version {requested:#018x} exceeds the committed TCB {committed:#018x}")]
    TcbAboveCommitted {
        /// TCB version in the request.
        requested: u64,
        /// The platform's committed TCB.
        committed: u64,
    },
    /// The guest SVN exceeds the launch's.
    #[error("guest SVN {requested} exceeds the launch's guest SVN {launch}")]
    GuestSvnAboveLaunch {
        /// SVN in the request.
        requested: u32,
        /// SVN of the launch ID block.
        launch: u32,
    },
    /// The fake device models a guest without a migration agent: it has no VMRK.
    #[error("this guest has no VM root key (no migration agent)")]
    NoVmrk,
}

/// Something that answers key requests.
pub trait KeyRequester: Send + Sync {
    /// The 256-bit key derived for `req`, or why it was refused.
    fn derived_key(&self, req: &KeyRequest) -> Result<Zeroizing<[u8; 32]>, AttestError>;
}

/// The real key requester: `SNP_GET_DERIVED_KEY` on `/dev/sev-guest`, through the `sev` crate.
///
/// **Runs only inside an AMD SEV-SNP guest** (Linux with the `sev-guest` driver). Anywhere else
/// every request fails with [`AttestError::Io`] on `/dev/sev-guest` (not found). configfs-tsm
/// offers reports only, not derived keys.
///
/// Requests are sent as message version 1 (understood by all SNP firmware); version 2 only adds
/// the launch mitigation vector, which no caller here selects. The `sev` crate returns the key in
/// a plain array, which this copies into a [`Zeroizing`] buffer at once.
#[derive(Debug, Clone, Default)]
pub struct SnpKeyRequester {
    _private: (),
}

impl SnpKeyRequester {
    /// The requester for `/dev/sev-guest`.
    pub fn new() -> SnpKeyRequester {
        SnpKeyRequester { _private: () }
    }
}

impl KeyRequester for SnpKeyRequester {
    fn derived_key(&self, req: &KeyRequest) -> Result<Zeroizing<[u8; 32]>, AttestError> {
        req.check().map_err(refused(SEV_GUEST_DEVICE))?;
        snp_derived_key(req)
    }
}

#[cfg(target_os = "linux")]
fn snp_derived_key(req: &KeyRequest) -> Result<Zeroizing<[u8; 32]>, AttestError> {
    use sev::firmware::guest::{DerivedKey, Firmware, GuestFieldSelect};
    let mut fw = Firmware::open().map_err(|e| AttestError::Io {
        path: SEV_GUEST_DEVICE.to_string(),
        source: e,
    })?;
    let mut select = GuestFieldSelect::default();
    select.set_guest_policy(req.fields.contains(GuestFields::GUEST_POLICY));
    select.set_image_id(req.fields.contains(GuestFields::IMAGE_ID));
    select.set_family_id(req.fields.contains(GuestFields::FAMILY_ID));
    select.set_measurement(req.fields.contains(GuestFields::MEASUREMENT));
    select.set_svn(req.fields.contains(GuestFields::GUEST_SVN));
    select.set_tcb_version(req.fields.contains(GuestFields::TCB_VERSION));
    let request = DerivedKey::new(
        req.root_key == RootKey::Vmrk,
        select,
        req.vmpl,
        req.guest_svn,
        req.tcb_version,
        None,
    );
    let key = fw
        .get_derived_key(Some(1), request)
        .map_err(|e| AttestError::KeyRequest(e.to_string()))?;
    Ok(Zeroizing::new(key))
}

#[cfg(not(target_os = "linux"))]
fn snp_derived_key(_req: &KeyRequest) -> Result<Zeroizing<[u8; 32]>, AttestError> {
    Err(AttestError::Io {
        path: SEV_GUEST_DEVICE.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "SEV-SNP guest requests need Linux",
        ),
    })
}

fn refused(_path: &'static str) -> impl Fn(KeyRefusal) -> AttestError {
    AttestError::KeyRefused
}

/// The launch facts the firmware keeps for a guest, which a key request can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchFacts {
    /// The launch measurement (`MEASUREMENT`).
    pub measurement: [u8; 48],
    /// The guest policy (`POLICY`).
    pub guest_policy: u64,
    /// `IMAGE_ID` of the launch ID block.
    pub image_id: [u8; 16],
    /// `FAMILY_ID` of the launch ID block.
    pub family_id: [u8; 16],
    /// Guest SVN of the launch ID block.
    pub guest_svn: u32,
    /// The platform's committed TCB (8 bytes little-endian, as in [`KeyRequest::tcb_version`]).
    pub committed_tcb: u64,
}

impl LaunchFacts {
    /// A guest launched with `measurement`, the policy [`crate::SimulatedAttester`] claims
    /// (`0x30000`: SMT allowed, no debug), zero ids, SVN and TCB.
    pub fn new(measurement: [u8; 48]) -> LaunchFacts {
        LaunchFacts {
            measurement,
            guest_policy: 0x30000,
            image_id: [0; 16],
            family_id: [0; 16],
            guest_svn: 0,
            committed_tcb: 0,
        }
    }
}

/// **NOT HARDWARE.** A fake key-request device for tests and simulated development networks: a
/// secret seed stands in for the chip's root keys, and [`LaunchFacts`] for what the firmware
/// recorded when it launched the guest.
///
/// It follows the firmware's rules: it refuses a request with reserved bits, a VMPL more
/// privileged than the guest's current one, a TCB version above the committed TCB (component by
/// component) or a guest SVN above the launch's, and it has no VMRK. The key is
/// HMAC-SHA256(seed, domain tag ‖ `ROOT_KEY_SELECT` ‖ `GUEST_FIELD_SELECT` ‖ `VMPL` ‖ each
/// selected field, fixed-length), so another measurement or policy gives another key when
/// selected, and an unselected field does not matter. Its keys are not AMD's: the same request
/// on hardware gives another key.
pub struct FakeKeyDevice {
    seed: Zeroizing<[u8; 32]>,
    launch: LaunchFacts,
    vmpl: u32,
}

/// Domain tag of the fake device's derivation.
const FAKE_DOMAIN: &[u8] = b"lit-attest/fake-key-device/NOT-HARDWARE/v1";

impl fmt::Debug for FakeKeyDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeKeyDevice(NOT HARDWARE)")
            .field("seed", &"<redacted>")
            .field("measurement", &hex::encode(self.launch.measurement))
            .field(
                "guest_policy",
                &format_args!("{:#x}", self.launch.guest_policy),
            )
            .field("vmpl", &self.vmpl)
            .finish()
    }
}

impl FakeKeyDevice {
    /// A fake chip with this secret seed, serving a guest launched with `launch`, running at
    /// VMPL 0.
    pub fn new(seed: [u8; 32], launch: LaunchFacts) -> FakeKeyDevice {
        FakeKeyDevice {
            seed: Zeroizing::new(seed),
            launch,
            vmpl: 0,
        }
    }

    /// A fake chip with a fresh random seed.
    pub fn random(launch: LaunchFacts) -> FakeKeyDevice {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, seed.as_mut());
        FakeKeyDevice::new(*seed, launch)
    }

    /// The requesting code runs at this VMPL.
    pub fn with_vmpl(mut self, vmpl: u32) -> FakeKeyDevice {
        self.vmpl = vmpl;
        self
    }

    /// The same chip serving another launch (another image, policy, SVN or TCB), at VMPL 0.
    pub fn relaunch(&self, launch: LaunchFacts) -> FakeKeyDevice {
        FakeKeyDevice::new(*self.seed, launch)
    }

    /// The launch facts this device serves.
    pub fn launch(&self) -> &LaunchFacts {
        &self.launch
    }

    fn check(&self, req: &KeyRequest) -> Result<(), KeyRefusal> {
        req.check()?;
        if req.vmpl < self.vmpl {
            return Err(KeyRefusal::VmplBelowCurrent {
                requested: req.vmpl,
                current: self.vmpl,
            });
        }
        let (r, c) = (
            req.tcb_version.to_le_bytes(),
            self.launch.committed_tcb.to_le_bytes(),
        );
        if r.iter().zip(c.iter()).any(|(r, c)| r > c) {
            return Err(KeyRefusal::TcbAboveCommitted {
                requested: req.tcb_version,
                committed: self.launch.committed_tcb,
            });
        }
        if req.guest_svn > self.launch.guest_svn {
            return Err(KeyRefusal::GuestSvnAboveLaunch {
                requested: req.guest_svn,
                launch: self.launch.guest_svn,
            });
        }
        if req.root_key == RootKey::Vmrk {
            return Err(KeyRefusal::NoVmrk);
        }
        Ok(())
    }
}

impl KeyRequester for FakeKeyDevice {
    fn derived_key(&self, req: &KeyRequest) -> Result<Zeroizing<[u8; 32]>, AttestError> {
        self.check(req)
            .map_err(refused("fake key device (NOT HARDWARE)"))?;
        let f = req.fields;
        let l = &self.launch;
        let mut msg = Zeroizing::new(Vec::with_capacity(FAKE_DOMAIN.len() + 128));
        msg.extend_from_slice(FAKE_DOMAIN);
        msg.extend_from_slice(&req.root_key.select().to_le_bytes());
        msg.extend_from_slice(&f.bits().to_le_bytes());
        msg.extend_from_slice(&req.vmpl.to_le_bytes());
        // every part has a fixed length and is present only when its bit (above) is set: the
        // encoding is unambiguous
        if f.contains(GuestFields::GUEST_POLICY) {
            msg.extend_from_slice(&l.guest_policy.to_le_bytes());
        }
        if f.contains(GuestFields::IMAGE_ID) {
            msg.extend_from_slice(&l.image_id);
        }
        if f.contains(GuestFields::FAMILY_ID) {
            msg.extend_from_slice(&l.family_id);
        }
        if f.contains(GuestFields::MEASUREMENT) {
            msg.extend_from_slice(&l.measurement);
        }
        if f.contains(GuestFields::GUEST_SVN) {
            msg.extend_from_slice(&req.guest_svn.to_le_bytes());
        }
        if f.contains(GuestFields::TCB_VERSION) {
            msg.extend_from_slice(&req.tcb_version.to_le_bytes());
        }
        Ok(hmac_sha256(self.seed.as_ref(), &msg))
    }
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key`.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Zeroizing<[u8; 32]> {
    use hmac::{Hmac, Mac};
    let mut out = Zeroizing::new([0u8; 32]);
    // HMAC accepts keys of any length
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) {
        mac.update(msg);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [0x42; 32];
    const STORE: GuestFields = GuestFields::MEASUREMENT.union(GuestFields::GUEST_POLICY);

    fn device(measurement: u8) -> FakeKeyDevice {
        FakeKeyDevice::new(SEED, LaunchFacts::new([measurement; 48]))
    }

    fn key(dev: &FakeKeyDevice, req: &KeyRequest) -> [u8; 32] {
        *dev.derived_key(req).unwrap()
    }

    fn refusal(dev: &FakeKeyDevice, req: &KeyRequest) -> KeyRefusal {
        match dev.derived_key(req) {
            Err(AttestError::KeyRefused(r)) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn same_request_same_key() {
        let req = KeyRequest::vcek(STORE, 0);
        assert_eq!(key(&device(1), &req), key(&device(1), &req));
        // another chip (seed) gives another key
        let other_chip = FakeKeyDevice::new([7; 32], LaunchFacts::new([1; 48]));
        assert_ne!(key(&device(1), &req), key(&other_chip, &req));
    }

    #[test]
    fn selected_fields_bind_the_key_unselected_do_not() {
        let a = device(1);
        let b = a.relaunch(LaunchFacts::new([2; 48]));
        let mut p = *a.launch();
        p.guest_policy |= 1 << 19; // debug allowed
        let a_debug = a.relaunch(p);

        let store = KeyRequest::vcek(STORE, 0);
        assert_ne!(key(&a, &store), key(&b, &store), "another measurement");
        assert_ne!(key(&a, &store), key(&a_debug, &store), "another policy");

        let policy_only = KeyRequest::vcek(GuestFields::GUEST_POLICY, 0);
        assert_eq!(key(&a, &policy_only), key(&b, &policy_only));
        assert_ne!(key(&a, &policy_only), key(&a_debug, &policy_only));

        let measurement_only = KeyRequest::vcek(GuestFields::MEASUREMENT, 0);
        assert_ne!(key(&a, &measurement_only), key(&b, &measurement_only));
        assert_eq!(key(&a, &measurement_only), key(&a_debug, &measurement_only));

        // a firmware update (committed TCB) and a new guest SVN do not change a key that does
        // not select them; selecting them with new values does
        let mut updated = *a.launch();
        updated.committed_tcb = u64::from_le_bytes([3, 0, 0, 0, 0, 0, 8, 115]);
        updated.guest_svn = 2;
        let a_updated = a.relaunch(updated);
        assert_eq!(key(&a, &store), key(&a_updated, &store));
        let with_tcb = KeyRequest {
            tcb_version: updated.committed_tcb,
            ..KeyRequest::vcek(STORE | GuestFields::TCB_VERSION, 0)
        };
        let with_old_tcb = KeyRequest {
            tcb_version: 0,
            ..with_tcb
        };
        assert_ne!(key(&a_updated, &with_tcb), key(&a_updated, &with_old_tcb));
        let with_svn = KeyRequest {
            guest_svn: 2,
            ..KeyRequest::vcek(STORE | GuestFields::GUEST_SVN, 0)
        };
        assert_ne!(key(&a_updated, &with_svn), key(&a_updated, &store));

        // the selection itself and the VMPL are part of the key
        assert_ne!(key(&a, &store), key(&a, &measurement_only));
        assert_ne!(key(&a, &store), key(&a, &KeyRequest::vcek(STORE, 1)));
    }

    #[test]
    fn the_firmware_rules_are_enforced() {
        let dev = device(1).with_vmpl(1);
        assert_eq!(
            refusal(&dev, &KeyRequest::vcek(STORE, 0)),
            KeyRefusal::VmplBelowCurrent {
                requested: 0,
                current: 1
            }
        );
        dev.derived_key(&KeyRequest::vcek(STORE, 1)).unwrap();
        dev.derived_key(&KeyRequest::vcek(STORE, 3)).unwrap();
        assert_eq!(
            refusal(&dev, &KeyRequest::vcek(STORE, 4)),
            KeyRefusal::VmplOutOfRange(4)
        );

        let dev = device(1);
        let reserved = KeyRequest::vcek(GuestFields::from_bits(STORE.bits() | 1 << 6), 0);
        assert_eq!(refusal(&dev, &reserved), KeyRefusal::ReservedBits(1 << 6));
        let reserved = KeyRequest::vcek(GuestFields::from_bits(1 << 63), 0);
        assert_eq!(refusal(&dev, &reserved), KeyRefusal::ReservedBits(1 << 63));

        // TCB compared per component: above in one component is refused even if the number is
        // smaller
        let mut facts = *dev.launch();
        facts.committed_tcb = u64::from_le_bytes([3, 0, 0, 0, 0, 0, 8, 115]);
        let dev = dev.relaunch(facts);
        let tcb = |b: [u8; 8]| KeyRequest {
            tcb_version: u64::from_le_bytes(b),
            ..KeyRequest::vcek(STORE | GuestFields::TCB_VERSION, 0)
        };
        dev.derived_key(&tcb([3, 0, 0, 0, 0, 0, 8, 115])).unwrap();
        dev.derived_key(&tcb([2, 0, 0, 0, 0, 0, 8, 100])).unwrap();
        assert!(matches!(
            refusal(&dev, &tcb([4, 0, 0, 0, 0, 0, 8, 115])),
            KeyRefusal::TcbAboveCommitted { .. }
        ));
        assert!(matches!(
            refusal(&dev, &tcb([0, 0, 0, 0, 0, 0, 9, 0])),
            KeyRefusal::TcbAboveCommitted { .. }
        ));

        let svn = KeyRequest {
            guest_svn: 1,
            ..KeyRequest::vcek(STORE | GuestFields::GUEST_SVN, 0)
        };
        assert_eq!(
            refusal(&dev, &svn),
            KeyRefusal::GuestSvnAboveLaunch {
                requested: 1,
                launch: 0
            }
        );
        let vmrk = KeyRequest {
            root_key: RootKey::Vmrk,
            ..KeyRequest::vcek(STORE, 0)
        };
        assert_eq!(refusal(&dev, &vmrk), KeyRefusal::NoVmrk);
    }

    #[test]
    fn debug_shows_no_seed_and_says_not_hardware() {
        let shown = format!("{:?}", device(1));
        assert!(shown.contains("NOT HARDWARE"), "{shown}");
        assert!(!shown.contains(&hex::encode(SEED)));
        assert_eq!(
            format!("{:?}", STORE | GuestFields::from_bits(1 << 9)),
            "{GUEST_POLICY, MEASUREMENT, reserved 0x200}"
        );
    }

    #[test]
    fn snp_requester_off_hardware_is_a_clear_error() {
        if std::path::Path::new(SEV_GUEST_DEVICE).exists() {
            eprintln!("{SEV_GUEST_DEVICE} exists: this is an SNP guest, nothing to check");
            return;
        }
        let err = SnpKeyRequester::new()
            .derived_key(&KeyRequest::vcek(STORE, 0))
            .unwrap_err();
        assert!(
            matches!(&err, AttestError::Io { path, source }
                if path == SEV_GUEST_DEVICE && source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        // invalid requests are refused before the device is touched
        let err = SnpKeyRequester::new()
            .derived_key(&KeyRequest::vcek(GuestFields::from_bits(1 << 40), 0))
            .unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
    }
}
