//! Owner approvals (see [`lit_api::owner`]): the PKP owner's EIP-191 signature over one mint or
//! one permission change, for this network, with a nonce and a short expiry. The node checks
//! the signature and the window; the registry records the nonce with the change it applies, so
//! an approval takes effect once across every node, and a node operator who sees one cannot
//! replay it (at its own node or another), stretch it, or apply it to another PKP or change.

use lit_api::owner::{approval_message, OwnerAction, OwnerApproval, MAX_APPROVAL_LIFETIME_SECS};
use lit_api::ErrorCode;
use lit_crypto::eth::{eip191_hash, recover_address, Address};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::session::CLOCK_SKEW;
use crate::chain::Approval;
use crate::error::ApiError;

/// Checks `approval` of `action` on the network `network_id` at `now`; returns the signer and
/// the record the registry keeps with the action.
pub fn verify_approval(
    network_id: &str,
    action: &OwnerAction<'_>,
    approval: &OwnerApproval,
    now: OffsetDateTime,
) -> Result<(Address, Approval), ApiError> {
    let invalid = |m: String| ApiError::new(ErrorCode::InvalidAuth, m);
    let expires = OffsetDateTime::parse(&approval.expires_at, &Rfc3339)
        .map_err(|e| invalid(format!("expiresAt is not an RFC 3339 time: {e}")))?;
    if expires <= now {
        return Err(ApiError::new(
            ErrorCode::AuthExpired,
            format!("the approval expired at {}", approval.expires_at),
        ));
    }
    let longest = time::Duration::seconds(MAX_APPROVAL_LIFETIME_SECS) + CLOCK_SKEW;
    if expires - now > longest {
        return Err(invalid(format!(
            "the approval lives until {}: at most {MAX_APPROVAL_LIFETIME_SECS} s from now is accepted",
            approval.expires_at
        )));
    }
    let message = approval_message(network_id, action, &approval.nonce, &approval.expires_at);
    let signer = recover_address(&eip191_hash(message.as_bytes()), &approval.signature.0)
        .map_err(|_| invalid("the approval's signature is invalid".into()))?;
    Ok((
        signer,
        Approval {
            signer: signer.to_checksum(),
            nonce: approval.nonce.0,
            expires: expires.unix_timestamp(),
        },
    ))
}
