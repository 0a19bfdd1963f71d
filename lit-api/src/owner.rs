//! Owner approvals: what a PKP's owner signs to mint a PKP or to change its permissions.
//!
//! A sign-in (SIWE) says only "this wallet was here"; replayed, it would let whoever holds it
//! change the owner's permissions at any node. An approval instead names one **network** (by
//! [`network_id`], derived from the network's BLS public key, which never changes across
//! epochs), one **action** (mint for this owner, or exactly this change of exactly this PKP), a
//! **nonce** the registry records when it applies the action (so each approval takes effect once
//! across all nodes) and a short **expiry** (nodes refuse approvals that live longer than
//! [`MAX_APPROVAL_LIFETIME_SECS`]). The owner signs the [`approval_message`] text with EIP-191
//! `personal_sign`, so any Ethereum wallet can show it to the user and sign it.
//!
//! ```text
//! Lit PKP permissions change
//! Network: lit:3f8c…
//! PKP: 0x5a1e…
//! Change: {"op":"addAddress","address":"0x…"}
//! Nonce: 9b2f…
//! Expires: 2026-12-06T21:00:00Z
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::LedgerOp;
use crate::v1::PermissionChange;
use crate::{Bytes, Bytes32};

/// The longest life a node accepts for an approval, from now to its expiry: one hour.
pub const MAX_APPROVAL_LIFETIME_SECS: i64 = 3600;

/// The network's identifier: `lit:` and the first 20 bytes of SHA-256 over the domain tag and
/// the network's BLS public key (48-byte compressed G1), in hex.
pub fn network_id(bls_public_key: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"lit/network-id/v1")
        .chain_update(bls_public_key)
        .finalize();
    format!("lit:{}", hex::encode(&digest[..20]))
}

/// What an owner approves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerAction<'a> {
    /// Mint a PKP owned by `owner` (EIP-55).
    Mint {
        /// The owner.
        owner: &'a str,
    },
    /// Change the permissions of PKP `token_id`.
    ChangePermissions {
        /// The PKP.
        token_id: &'a Bytes32,
        /// The change.
        change: &'a PermissionChange,
    },
    /// An operation of `account` on its deposit in the network's ledger.
    Ledger {
        /// The account (EIP-55).
        account: &'a str,
        /// The operation.
        op: &'a LedgerOp,
    },
}

/// An owner's approval of one action, sent with the request that performs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OwnerApproval {
    /// Random, used once: the registry records it with the action.
    pub nonce: Bytes32,
    /// When the approval ends (RFC 3339, UTC).
    pub expires_at: String,
    /// The owner's EIP-191 signature (65 bytes `r ‖ s ‖ v`) over [`approval_message`].
    pub signature: Bytes,
}

/// The text the owner signs.
pub fn approval_message(
    network_id: &str,
    action: &OwnerAction<'_>,
    nonce: &Bytes32,
    expires_at: &str,
) -> String {
    let body = match action {
        OwnerAction::Mint { owner } => {
            format!("Lit PKP mint\nNetwork: {network_id}\nOwner: {owner}")
        }
        OwnerAction::ChangePermissions { token_id, change } => format!(
            "Lit PKP permissions change\nNetwork: {network_id}\nPKP: 0x{}\nChange: {}",
            hex::encode(token_id.0),
            // serialising a PermissionChange cannot fail (strings and numbers only)
            serde_json::to_string(change).unwrap_or_default()
        ),
        OwnerAction::Ledger { account, op } => format!(
            "Lit ledger\nNetwork: {network_id}\nAccount: {account}\nOperation: {}",
            // strings and numbers only: cannot fail
            serde_json::to_string(op).unwrap_or_default()
        ),
    };
    format!(
        "{body}\nNonce: {}\nExpires: {expires_at}",
        hex::encode(nonce.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_network_action_nonce_and_expiry() {
        let token = Bytes32([0xab; 32]);
        let change = PermissionChange::AddAction { cid: "QmX".into() };
        let text = approval_message(
            &network_id(&[1u8; 48]),
            &OwnerAction::ChangePermissions {
                token_id: &token,
                change: &change,
            },
            &Bytes32([7; 32]),
            "2026-12-06T21:00:00Z",
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Lit PKP permissions change");
        assert!(
            lines[1].starts_with("Network: lit:") && lines[1].len() == "Network: lit:".len() + 40
        );
        assert_eq!(lines[2], format!("PKP: 0x{}", "ab".repeat(32)));
        assert_eq!(lines[3], r#"Change: {"op":"addAction","cid":"QmX"}"#);
        assert_eq!(lines[4], format!("Nonce: {}", "07".repeat(32)));
        assert_eq!(lines[5], "Expires: 2026-12-06T21:00:00Z");
        assert_ne!(network_id(&[1u8; 48]), network_id(&[2u8; 48]));
        let mint = approval_message(
            "lit:00",
            &OwnerAction::Mint { owner: "0xAb" },
            &Bytes32([0; 32]),
            "x",
        );
        assert!(mint.starts_with("Lit PKP mint\nNetwork: lit:00\nOwner: 0xAb\nNonce: "));
        let ledger = approval_message(
            "lit:00",
            &OwnerAction::Ledger {
                account: "0xAb",
                op: &LedgerOp::Deposit { amount: "5".into() },
            },
            &Bytes32([0; 32]),
            "x",
        );
        assert!(ledger.starts_with(
            "Lit ledger\nNetwork: lit:00\nAccount: 0xAb\nOperation: {\"op\":\"deposit\",\"amount\":\"5\"}\nNonce: "
        ));
    }
}
