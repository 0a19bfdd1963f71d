//! The payment ledger as clients see it through the nodes (`lit balance`, `lit deposit`,
//! `lit withdraw`, `lit delegate`, `lit faucet`).
//!
//! Amounts are decimal strings of base units of the ledger's token (18 decimals), as Lit writes
//! `maxPrice`: they exceed what JSON numbers hold exactly.
//!
//! On an EVM chain an account changes its deposit with its own transactions to the `Ledger`
//! contract (the nodes never send them for it); on the embedded chain of a devnet, which only
//! the nodes reach, it sends the node an [`LedgerOpRequest`] carrying its owner approval of
//! exactly that operation (see [`crate::owner`]): the chain records the approval's nonce with
//! the operation, so a node that replays it, here or at another node, changes nothing.

use serde::{Deserialize, Serialize};

use crate::owner::OwnerApproval;

/// The products a network charges for, by name, in the order of the ledger's price list.
pub const PRODUCTS: [&str; 5] = [
    "decryption",
    "pkp-sign",
    "action",
    "action-ms",
    "action-host-call",
];

/// `GET /v1/ledger`: where the network's ledger is and what it charges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LedgerStatus {
    /// `"embedded"` (a devnet's own chain: operations go through the nodes) or `"evm"`.
    pub backend: String,
    /// EVM: the `Ledger` contract (EIP-55).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<String>,
    /// EVM: the token contract the ledger takes deposits in (EIP-55).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// EVM: the JSON-RPC endpoint this node reads the chain from (it may be private to the
    /// node: a client can use any endpoint of the same chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_url: Option<String>,
    /// The price of one unit of each product at each node, in the order of [`PRODUCTS`].
    pub prices: Vec<String>,
    /// How long a withdrawal waits before it is paid (seconds).
    pub withdraw_delay: u64,
    /// On a devnet with a faucet: the token balance the faucet tops an address up to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faucet: Option<String>,
}

/// `POST /v1/ledger/account`: an account's deposit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LedgerAccountRequest {
    /// The account (EIP-55 or lowercase hex).
    pub address: String,
    /// Also show this payer's delegation to the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

/// An account as the ledger records it and as the answering node has charged it since its last
/// settlement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LedgerAccount {
    /// The account (EIP-55).
    pub address: String,
    /// Its deposit.
    pub balance: String,
    /// Its pending withdrawal ("0": none).
    pub withdrawal: String,
    /// When the withdrawal was requested (Unix seconds; 0: none).
    pub withdrawal_requested_at: u64,
    /// What the answering node charged it and has not settled yet (the deposit falls by it at
    /// the node's next settlement).
    pub unsettled: String,
    /// Its tokens outside the ledger (what it can deposit).
    pub tokens: String,
    /// The delegation asked for ([`LedgerAccountRequest::payer`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<DelegationStatus>,
}

/// A payer's delegation to a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DelegationStatus {
    /// The payer (EIP-55).
    pub payer: String,
    /// What the user may spend in all ("0": no delegation).
    pub total_limit: String,
    /// What it has spent.
    pub spent: String,
    /// Requests allowed per period (0: no request limit).
    pub requests_per_period: u32,
    /// The period (seconds).
    pub period: u64,
    /// The requests charged in the current period.
    pub period_requests: u32,
}

/// An account's operation on its own deposit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
pub enum LedgerOp {
    /// Move tokens into the ledger.
    Deposit {
        /// Base units.
        amount: String,
    },
    /// Ask to withdraw (paid by [`LedgerOp::Withdraw`] after the ledger's delay; replaces an
    /// earlier request).
    RequestWithdraw {
        /// Base units.
        amount: String,
    },
    /// Pay the pending withdrawal (a struct variant, so that fields it does not have are
    /// refused).
    Withdraw {},
    /// Let `user` spend from this account, up to `totalLimit` in all and `requestsPerPeriod`
    /// requests per `period` seconds (0: no request limit); a zero total removes it.
    #[serde(rename_all = "camelCase")]
    Delegate {
        /// The user (EIP-55).
        user: String,
        /// Base units.
        total_limit: String,
        /// Requests per period (0: unlimited).
        requests_per_period: u32,
        /// Seconds.
        period: u64,
    },
}

/// `POST /v1/ledger/op`: an operation of `account` on the embedded chain's ledger, approved by
/// the account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LedgerOpRequest {
    /// The account (EIP-55).
    pub account: String,
    /// What it does.
    pub op: LedgerOp,
    /// Its approval of exactly this operation.
    pub approval: OwnerApproval,
}

/// `POST /v1/ledger/faucet`: test tokens for an address, on a devnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaucetRequest {
    /// Who gets them (EIP-55 or lowercase hex).
    pub address: String,
}

/// What the faucet gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaucetResponse {
    /// The address (EIP-55).
    pub address: String,
    /// Tokens given now ("0" when the address already held the faucet's amount).
    pub given: String,
    /// Its token balance after.
    pub tokens: String,
}

/// Parses a decimal amount of base units.
pub fn parse_amount(what: &str, text: &str) -> Result<u128, String> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{what} {text:?} is not a decimal amount of base units"
        ));
    }
    t.parse()
        .map_err(|_| format!("{what} {text:?} is more than 2^128 base units"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_have_lit_style_json_and_amounts_are_decimal() {
        let op = LedgerOp::Delegate {
            user: "0xAb".into(),
            total_limit: "100".into(),
            requests_per_period: 5,
            period: 60,
        };
        assert_eq!(
            serde_json::to_string(&op).unwrap(),
            r#"{"op":"delegate","user":"0xAb","totalLimit":"100","requestsPerPeriod":5,"period":60}"#
        );
        assert_eq!(
            serde_json::to_string(&LedgerOp::Withdraw {}).unwrap(),
            r#"{"op":"withdraw"}"#
        );
        assert!(serde_json::from_str::<LedgerOp>(r#"{"op":"withdraw","amount":"1"}"#).is_err());
        assert_eq!(parse_amount("amount", "007").unwrap(), 7);
        assert!(parse_amount("amount", "-1").is_err());
        assert!(parse_amount("amount", "1e3").is_err());
        assert!(parse_amount("amount", "").is_err());
        assert!(parse_amount("amount", &"9".repeat(40)).is_err());
    }
}
