//! The payment ledger for clients (`/v1/ledger…`): where it is and its prices, an account's
//! deposit, an account's own operations on the embedded chain, and a devnet's faucet.
//!
//! On an EVM chain an account sends its own transactions to the `Ledger` contract; no node
//! sends one for anyone. The embedded chain of a devnet is a file only the nodes open, so
//! there a node applies an account's operation for it, with the account's owner approval of
//! exactly that operation (`lit_api::owner`): the chain records the approval's nonce first, so
//! the node cannot apply it twice, and no other node can either.

use std::path::PathBuf;
use std::sync::Arc;

use lit_api::ledger::{
    parse_amount, DelegationStatus, FaucetRequest, FaucetResponse, LedgerAccount,
    LedgerAccountRequest, LedgerOp, LedgerOpRequest, LedgerStatus,
};
use lit_api::owner::OwnerAction;
use lit_api::ErrorCode;
use lit_crypto::eth::Address;
use time::OffsetDateTime;
use tracing::info;

use super::Node;
use crate::auth::owner::verify_approval;
use crate::chain::embedded::EmbeddedStaking;
use crate::chain::payments::{reasons, LedgerCall, Payments};
use crate::chain::staking::{Amount, Staking};
use crate::chain::ChainError;
use crate::error::ApiError;

/// Where the ledger is.
#[derive(Debug)]
pub enum LedgerBackend {
    /// The devnet's embedded chain, in this file.
    Embedded(PathBuf),
    /// The `Ledger` contract on an EVM chain.
    Evm {
        /// The node's JSON-RPC endpoint.
        rpc_url: String,
        /// The contract.
        ledger: Address,
        /// Its token.
        token: Address,
    },
}

/// A devnet's faucet: tops addresses up to `amount` tokens from `giver`'s.
pub struct Faucet {
    /// The balance it tops up to.
    pub amount: Amount,
    /// The token's first holder, as the chain sees it.
    pub giver: Arc<dyn Staking>,
    /// EVM: the chain to give gas on (`anvil_setBalance`).
    pub gas_rpc: Option<String>,
    /// One gift at a time from this node (two would both see the old balance).
    pub one: tokio::sync::Mutex<()>,
}

/// What the ledger endpoints need.
pub struct LedgerDesk {
    /// Where the ledger is.
    pub backend: LedgerBackend,
    /// The node's view of the ledger (reads).
    pub payments: Arc<dyn Payments>,
    /// The node's view of the staking contract (token balances).
    pub chain: Arc<dyn Staking>,
    /// The faucet, on a devnet that has one.
    pub faucet: Option<Faucet>,
}

impl std::fmt::Debug for LedgerDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerDesk")
            .field("backend", &self.backend)
            .field("faucet", &self.faucet.as_ref().map(|f| f.amount))
            .finish_non_exhaustive()
    }
}

fn desk(node: &Node) -> Result<&Arc<LedgerDesk>, ApiError> {
    node.ledger.get().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "this network has no ledger: its requests are free",
        )
    })
}

fn unavailable(e: ChainError) -> ApiError {
    ApiError::new(
        ErrorCode::ChainUnavailable,
        format!("the ledger cannot be read: {e}"),
    )
}

fn parse_address(what: &str, text: &str) -> Result<Address, ApiError> {
    Address::parse(text)
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, format!("{what} {text:?}: {e}")))
}

fn amount(what: &str, text: &str) -> Result<Amount, ApiError> {
    parse_amount(what, text).map_err(|m| ApiError::new(ErrorCode::MalformedRequest, m))
}

/// `GET /v1/ledger`.
pub async fn status(node: &Node) -> Result<LedgerStatus, ApiError> {
    let desk = desk(node)?;
    let prices = match node.meter.get() {
        Some(meter) => meter.prices(),
        None => desk.payments.prices().await.map_err(unavailable)?,
    };
    let withdraw_delay = desk.payments.withdraw_delay().await.map_err(unavailable)?;
    let (backend, ledger, token, rpc_url) = match &desk.backend {
        LedgerBackend::Embedded(_) => ("embedded", None, None, None),
        LedgerBackend::Evm {
            rpc_url,
            ledger,
            token,
        } => (
            "evm",
            Some(ledger.to_checksum()),
            Some(token.to_checksum()),
            Some(rpc_url.clone()),
        ),
    };
    Ok(LedgerStatus {
        backend: backend.into(),
        ledger,
        token,
        rpc_url,
        prices: prices.0.iter().map(u128::to_string).collect(),
        withdraw_delay,
        faucet: desk.faucet.as_ref().map(|f| f.amount.to_string()),
    })
}

/// `POST /v1/ledger/account`.
pub async fn account(node: &Node, req: LedgerAccountRequest) -> Result<LedgerAccount, ApiError> {
    let desk = desk(node)?;
    let who = parse_address("address", &req.address)?;
    let payer = req
        .payer
        .as_deref()
        .map(|p| parse_address("payer", p))
        .transpose()?;
    read_account(node, desk, who, payer).await
}

async fn read_account(
    node: &Node,
    desk: &LedgerDesk,
    who: Address,
    payer: Option<Address>,
) -> Result<LedgerAccount, ApiError> {
    let a = desk.payments.account(who).await.map_err(unavailable)?;
    let tokens = desk.chain.token_balance(who).await.map_err(unavailable)?;
    let delegation = match payer {
        None => None,
        Some(payer) => {
            let d = desk
                .payments
                .delegation(payer, who)
                .await
                .map_err(unavailable)?;
            Some(DelegationStatus {
                payer: payer.to_checksum(),
                total_limit: d.total_limit.to_string(),
                spent: d.spent.to_string(),
                requests_per_period: d.requests_per_period,
                period: d.period,
                period_requests: d.requests_in_period(now_secs()),
            })
        }
    };
    Ok(LedgerAccount {
        address: who.to_checksum(),
        balance: a.balance.to_string(),
        withdrawal: a.withdrawal.to_string(),
        withdrawal_requested_at: a.withdrawal_requested_at,
        unsettled: node
            .meter
            .get()
            .map_or(0, |m| m.unsettled_of(who))
            .to_string(),
        tokens: tokens.to_string(),
        delegation,
    })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks an operation's fields.
fn ledger_call(op: &LedgerOp) -> Result<LedgerCall, ApiError> {
    Ok(match op {
        LedgerOp::Deposit { amount: a } => LedgerCall::Deposit(amount("amount", a)?),
        LedgerOp::RequestWithdraw { amount: a } => {
            LedgerCall::RequestWithdraw(amount("amount", a)?)
        }
        LedgerOp::Withdraw {} => LedgerCall::Withdraw,
        LedgerOp::Delegate {
            user,
            total_limit,
            requests_per_period,
            period,
        } => LedgerCall::Delegate {
            user: parse_address("user", user)?,
            total_limit: amount("totalLimit", total_limit)?,
            requests_per_period: *requests_per_period,
            period: *period,
        },
    })
}

/// `POST /v1/ledger/op`: an account's own operation, on the embedded chain.
pub async fn apply(node: &Node, req: LedgerOpRequest) -> Result<LedgerAccount, ApiError> {
    let desk = desk(node)?;
    let path = match &desk.backend {
        LedgerBackend::Embedded(path) => path.clone(),
        LedgerBackend::Evm { ledger, .. } => {
            return Err(ApiError::new(
                ErrorCode::NotPermitted,
                format!(
                    "on this network the account sends its own transactions to the Ledger \
                     contract at {} (`lit deposit` does); no node sends them for it",
                    ledger.to_checksum()
                ),
            ))
        }
    };
    let keys = node.keys()?;
    let account = parse_address("account", &req.account)?;
    let call = ledger_call(&req.op)?;
    let network_id = super::pkp::network_id(&keys);
    let account_text = account.to_checksum();
    let (signer, approval) = verify_approval(
        &network_id,
        &OwnerAction::Ledger {
            account: &req.account,
            op: &req.op,
        },
        &req.approval,
        OffsetDateTime::now_utc(),
    )?;
    if signer != account {
        return Err(ApiError::new(
            ErrorCode::InvalidAuth,
            format!(
                "the approval is signed by {}, not by the account {account_text}",
                signer.to_checksum()
            ),
        ));
    }
    tokio::task::spawn_blocking(move || {
        EmbeddedStaking::open(&path, account)?.apply_approved(&approval, &call)
    })
    .await
    .map_err(|e| ApiError::internal(ErrorCode::Internal, "the ledger failed", e))?
    .map_err(refused)?;
    info!(account = %account_text, op = ?req.op, "ledger operation applied");
    read_account(node, desk, account, None).await
}

/// How the chain's answer to an account's operation is told to the account.
fn refused(e: ChainError) -> ApiError {
    match e {
        ChainError::ApprovalUsed => ApiError::new(
            ErrorCode::NonceReplayed,
            "this approval was already used: approve every operation anew",
        ),
        ChainError::Refused(reason) => {
            let hint = match reason.as_str() {
                reasons::TRANSFER_FAILED => {
                    ": the account holds fewer tokens than it deposits (`lit faucet` gives test \
                     tokens on a devnet)"
                }
                reasons::DELAY_NOT_OVER => ": try again once the ledger's withdrawal delay is over",
                _ => "",
            };
            ApiError::new(
                ErrorCode::NotPermitted,
                format!("the ledger refused the operation: {reason}{hint}"),
            )
        }
        other => unavailable(other),
    }
}

/// `POST /v1/ledger/faucet`: tops the address up to the faucet's amount.
pub async fn faucet(node: &Node, req: FaucetRequest) -> Result<FaucetResponse, ApiError> {
    let desk = desk(node)?;
    let faucet = desk.faucet.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "this node has no faucet (only development networks have one: `[faucet]`)",
        )
    })?;
    let to = parse_address("address", &req.address)?;
    let _one = faucet.one.lock().await;
    let have = desk.chain.token_balance(to).await.map_err(unavailable)?;
    let given = faucet.amount.saturating_sub(have);
    if let Some(rpc) = &faucet.gas_rpc {
        crate::chain::evm::dev_fund_gas(rpc, to)
            .await
            .map_err(unavailable)?;
    }
    if given > 0 {
        faucet
            .giver
            .transfer_token(to, given)
            .await
            .map_err(|e| match e {
                ChainError::Refused(reason) => ApiError::new(
                    ErrorCode::NotPermitted,
                    format!("the faucet is empty ({reason})"),
                ),
                other => unavailable(other),
            })?;
        info!(to = %to.to_checksum(), given, "faucet");
    }
    Ok(FaucetResponse {
        address: to.to_checksum(),
        given: given.to_string(),
        tokens: have.saturating_add(given).to_string(),
    })
}
