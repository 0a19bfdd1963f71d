//! The release register (`contracts/SPEC.md`, `ReleaseRegister`): the software the network
//! approves, as [`lit_attest::Release`] entries that the network's admin adds and revokes.
//!
//! Nodes and clients build their attestation [`lit_attest::Policy`] from it: an active
//! release is accepted with its own minimum TCB and flags; a revoked one is refused by name.
//! A release is added once and revocation is final, so a register only grows, and a verifier
//! that reads it twice never sees a revoked release come back.

use async_trait::async_trait;
use lit_attest::Release;
use lit_crypto::eth::Address;

use super::ChainError;

/// The contract's revert reasons, the same on every backend.
pub mod reasons {
    /// Only the admin adds and revokes releases.
    pub const NOT_ADMIN: &str = "not admin";
    /// A measurement is added once (even after its revocation).
    pub const EXISTS: &str = "release exists";
    /// No release has this measurement.
    pub const UNKNOWN: &str = "no such release";
    /// The release was revoked already.
    pub const REVOKED: &str = "release revoked";
}

/// One account's view of the release register.
#[async_trait]
pub trait ReleaseRegister: Send + Sync {
    /// The account that sends this view's transactions.
    fn caller(&self) -> Address;
    /// Every release ever added, in the order of addition; revoked ones say so.
    async fn releases(&self) -> Result<Vec<Release>, ChainError>;
    /// Approves `release` (admin only; its `revoked` is ignored). A measurement is added once.
    async fn add_release(&self, release: &Release) -> Result<(), ChainError>;
    /// Revokes the active release of `measurement` (admin only; final).
    async fn revoke_release(&self, measurement: &[u8; 48]) -> Result<(), ChainError>;
}

/// Applies an addition to a register's list as the contract does.
pub(crate) fn add_to(
    list: &mut Vec<Release>,
    admin: bool,
    release: &Release,
) -> Result<(), ChainError> {
    if !admin {
        return Err(ChainError::Refused(reasons::NOT_ADMIN.into()));
    }
    if list.iter().any(|r| r.measurement == release.measurement) {
        return Err(ChainError::Refused(reasons::EXISTS.into()));
    }
    list.push(Release {
        revoked: false,
        ..release.clone()
    });
    Ok(())
}

/// Applies a revocation to a register's list as the contract does.
pub(crate) fn revoke_in(
    list: &mut [Release],
    admin: bool,
    measurement: &[u8; 48],
) -> Result<(), ChainError> {
    if !admin {
        return Err(ChainError::Refused(reasons::NOT_ADMIN.into()));
    }
    let release = list
        .iter_mut()
        .find(|r| &r.measurement == measurement)
        .ok_or_else(|| ChainError::Refused(reasons::UNKNOWN.into()))?;
    if release.revoked {
        return Err(ChainError::Refused(reasons::REVOKED.into()));
    }
    release.revoked = true;
    Ok(())
}
