//! Owner approvals from a wallet (see [`lit_api::owner`]): the EIP-191 signature that mints a
//! PKP or changes its permissions, for one network, once, within a short time.

use std::time::{Duration, SystemTime};

use lit_api::owner::{approval_message, OwnerAction, OwnerApproval};
use lit_api::{Bytes, Bytes32};
use lit_crypto::eth::personal_sign;
use rand_core::{OsRng, RngCore};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::{ClientError, Wallet};

/// How long the approvals the client makes live: ten minutes (nodes accept at most an hour).
pub const APPROVAL_TTL: Duration = Duration::from_secs(600);

impl Wallet {
    /// This wallet's approval of `action` on the network `network_id`, valid from `now` for
    /// `ttl`, with a fresh random nonce.
    pub fn approve(
        &self,
        network_id: &str,
        action: &OwnerAction<'_>,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<OwnerApproval, ClientError> {
        let expires = (OffsetDateTime::from(now) + ttl)
            .replace_nanosecond(0)
            .map_err(|e| ClientError::Config(format!("time: {e}")))?
            .format(&Rfc3339)
            .map_err(|e| ClientError::Config(format!("time: {e}")))?;
        let mut nonce = [0u8; 32];
        OsRng.fill_bytes(&mut nonce);
        let nonce = Bytes32(nonce);
        let message = approval_message(network_id, action, &nonce, &expires);
        let signature = personal_sign(self.signing_key(), message.as_bytes())
            .map_err(|e| ClientError::Config(format!("signing the approval: {e}")))?;
        Ok(OwnerApproval {
            nonce,
            expires_at: expires,
            signature: Bytes(signature.to_vec()),
        })
    }
}
