//! Paying for the network: an account's deposit in the network's ledger, its withdrawals, its
//! delegations to other users, and a devnet's faucet (`lit deposit`, `lit withdraw`,
//! `lit delegate`, `lit balance`, `lit faucet`).
//!
//! On an EVM chain the wallet sends its own transactions to the `Ledger` contract (it pays the
//! gas; the contract's address comes from the nodes, which must agree on it). On a devnet's
//! embedded chain, which only the nodes reach, the wallet signs an owner approval of exactly
//! the operation and a node applies it (the chain records the approval, so it takes effect
//! once at most, whichever node it is sent to).
//!
//! ```no_run
//! # async fn run(client: &lit_client::LitClient, wallet: &lit_client::Wallet) -> Result<(), lit_client::ClientError> {
//! client.faucet(wallet.address()).await?; // a devnet's test tokens
//! client.deposit(wallet, 1_000_000).await?;
//! let account = client.ledger_account(wallet.address(), None).await?;
//! println!("deposit {} (unsettled at one node: {})", account.balance, account.unsettled);
//! # Ok(()) }
//! ```

use std::time::SystemTime;

use alloy_primitives::U256;
use alloy_provider::Provider;
use futures_util::stream::{FuturesUnordered, StreamExt};
use lit_api::ledger::{
    parse_amount, FaucetRequest, FaucetResponse, LedgerAccount, LedgerAccountRequest, LedgerOp,
    LedgerOpRequest, LedgerStatus, PRODUCTS,
};
use lit_api::owner::OwnerAction;
use lit_api::v1::paths;
use lit_crypto::eth::Address;

use crate::chain::{send, wallet_provider};
use crate::client::{endpoint, get_json};
use crate::error::{NodeFailure, NodeFailureReason};
use crate::owner::APPROVAL_TTL;
use crate::{ClientError, LitClient, Wallet};

alloy_sol_types::sol! {
    /// The account's side of `contracts/src/Ledger.sol` (see `contracts/SPEC.md`).
    #[sol(rpc)]
    interface Ledger {
        function deposit(uint256 amount) external;
        function requestWithdraw(uint256 amount) external;
        function withdraw() external;
        function delegate(address user, uint256 totalLimit, uint32 requestsPerPeriod, uint64 period) external;
    }

    /// The token's `approve` (`contracts/src/LitToken.sol`).
    #[sol(rpc)]
    interface LedgerToken {
        function approve(address spender, uint256 value) external returns (bool);
    }
}

/// The headroom of [`LedgerPrices::max_price`] over the current prices, so that a price
/// change between reading them and the request does not refuse it.
pub const MAX_PRICE_HEADROOM: u128 = 2;

/// The network's prices, per unit and per node, as the answering nodes read them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerPrices(pub [u128; 5]);

impl LedgerPrices {
    /// The price of the product named `name` (one of [`PRODUCTS`]).
    pub fn of(&self, name: &str) -> Option<u128> {
        PRODUCTS.iter().position(|p| *p == name).map(|i| self.0[i])
    }

    /// A maximum price to sign for requests of one node: [`MAX_PRICE_HEADROOM`] times the
    /// dearest single request (a decryption share, a PKP signature share, or an action run of
    /// `action_ms` milliseconds and `action_host_calls` host calls).
    pub fn max_price(&self, action_ms: u64, action_host_calls: u64) -> u128 {
        let [decryption, sign, action, ms, call] = self.0;
        let action = action
            .saturating_add(ms.saturating_mul(u128::from(action_ms)))
            .saturating_add(call.saturating_mul(u128::from(action_host_calls)));
        decryption
            .max(sign)
            .max(action)
            .saturating_mul(MAX_PRICE_HEADROOM)
    }
}

/// The network's ledger: where it is, its prices and its faucet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerInfo {
    /// What the answering nodes said (the first; they agree on where the ledger is).
    pub status: LedgerStatus,
    /// The highest price of each product among the answers.
    pub prices: LedgerPrices,
}

impl LitClient {
    /// The network's ledger, as every answering node reads it: they must agree on where it
    /// is (backend, contract, token); prices are the highest any of them charges.
    pub async fn ledger(&self) -> Result<LedgerInfo, ClientError> {
        let view = self.view();
        let pending: FuturesUnordered<_> = view
            .nodes()
            .iter()
            .map(|node| {
                let url = endpoint(&node.url, paths::LEDGER);
                let http = self.http_to(&view, &node.url);
                async move {
                    let answer: Result<LedgerStatus, _> = get_json(&http, &url).await;
                    (node, answer)
                }
            })
            .collect();
        let mut answers: Vec<LedgerStatus> = Vec::new();
        let mut failures = Vec::new();
        for (node, answer) in pending.collect::<Vec<_>>().await {
            match answer {
                Ok(status) => answers.push(status),
                Err(reason) => failures.push(NodeFailure {
                    party_id: Some(node.party_id),
                    url: node.url.clone(),
                    reason,
                }),
            }
        }
        let Some(first) = answers.first().cloned() else {
            return Err(ClientError::NodesFailed { failures });
        };
        let mut prices = LedgerPrices::default();
        for a in &answers {
            if (&a.backend, &a.ledger, &a.token) != (&first.backend, &first.ledger, &first.token) {
                return Err(ClientError::Config(format!(
                    "the nodes disagree on the network's ledger ({} {:?} and {} {:?}): \
                     check the network file",
                    first.backend, first.ledger, a.backend, a.ledger
                )));
            }
            if a.prices.len() != PRODUCTS.len() {
                return Err(ClientError::Config(format!(
                    "a node lists {} prices, not {}",
                    a.prices.len(),
                    PRODUCTS.len()
                )));
            }
            for (i, p) in a.prices.iter().enumerate() {
                let p = parse_amount("price", p).map_err(ClientError::Config)?;
                prices.0[i] = prices.0[i].max(p);
            }
        }
        Ok(LedgerInfo {
            status: first,
            prices,
        })
    }

    /// `address`'s deposit (and `payer`'s delegation to it) as one node reads it, with what
    /// that node charged it and has not settled yet.
    pub async fn ledger_account(
        &self,
        address: Address,
        payer: Option<Address>,
    ) -> Result<LedgerAccount, ClientError> {
        self.ask_any(
            "ledger account",
            paths::LEDGER_ACCOUNT,
            &LedgerAccountRequest {
                address: address.to_checksum(),
                payer: payer.map(|p| p.to_checksum()),
            },
        )
        .await
    }

    /// Tops `address` up to the faucet's amount of test tokens (devnets; on an EVM devnet it
    /// also gets ETH for gas).
    pub async fn faucet(&self, address: Address) -> Result<FaucetResponse, ClientError> {
        self.ask_any(
            "faucet",
            paths::LEDGER_FAUCET,
            &FaucetRequest {
                address: address.to_checksum(),
            },
        )
        .await
    }

    /// Deposits `amount` of `wallet`'s tokens.
    pub async fn deposit(
        &self,
        wallet: &Wallet,
        amount: u128,
    ) -> Result<LedgerAccount, ClientError> {
        self.ledger_op(
            wallet,
            LedgerOp::Deposit {
                amount: amount.to_string(),
            },
            None,
        )
        .await
    }

    /// Asks to withdraw `amount` of `wallet`'s deposit; [`LitClient::withdraw`] pays it once
    /// the ledger's delay has passed.
    pub async fn request_withdraw(
        &self,
        wallet: &Wallet,
        amount: u128,
    ) -> Result<LedgerAccount, ClientError> {
        self.ledger_op(
            wallet,
            LedgerOp::RequestWithdraw {
                amount: amount.to_string(),
            },
            None,
        )
        .await
    }

    /// Pays `wallet`'s pending withdrawal.
    pub async fn withdraw(&self, wallet: &Wallet) -> Result<LedgerAccount, ClientError> {
        self.ledger_op(wallet, LedgerOp::Withdraw {}, None).await
    }

    /// Lets `user` spend from `wallet`'s deposit: up to `total_limit` in all, and
    /// `requests_per_period` requests per `period` seconds (0: no request limit); a zero
    /// `total_limit` removes the delegation.
    pub async fn delegate(
        &self,
        wallet: &Wallet,
        user: Address,
        total_limit: u128,
        requests_per_period: u32,
        period: u64,
    ) -> Result<LedgerAccount, ClientError> {
        self.ledger_op(
            wallet,
            LedgerOp::Delegate {
                user: user.to_checksum(),
                total_limit: total_limit.to_string(),
                requests_per_period,
                period,
            },
            None,
        )
        .await
    }

    /// Performs `op` on `wallet`'s deposit: on an EVM chain with the wallet's own transactions
    /// through `rpc_url` (default: the endpoint the nodes name), on the embedded chain through
    /// a node with the wallet's approval. Answers the account afterwards.
    pub async fn ledger_op(
        &self,
        wallet: &Wallet,
        op: LedgerOp,
        rpc_url: Option<&str>,
    ) -> Result<LedgerAccount, ClientError> {
        let info = self.ledger().await?;
        let account = wallet.address().to_checksum();
        match info.status.backend.as_str() {
            "embedded" => {
                let approval = wallet.approve(
                    &self.network_id(),
                    &OwnerAction::Ledger {
                        account: &account,
                        op: &op,
                    },
                    SystemTime::now(),
                    APPROVAL_TTL,
                )?;
                self.ask_any(
                    "ledger operation",
                    paths::LEDGER_OP,
                    &LedgerOpRequest {
                        account,
                        op,
                        approval,
                    },
                )
                .await
            }
            "evm" => {
                let status = &info.status;
                let rpc_url = rpc_url.or(status.rpc_url.as_deref()).ok_or_else(|| {
                    ClientError::Config(
                        "the nodes name no RPC endpoint for the ledger's chain: give one".into(),
                    )
                })?;
                let contract = |what: &str, a: &Option<String>| {
                    a.as_deref()
                        .ok_or_else(|| ClientError::Config(format!("the nodes name no {what}")))
                        .and_then(|a| {
                            Address::parse(a)
                                .map_err(|e| ClientError::Config(format!("{what} {a:?}: {e}")))
                        })
                };
                let ledger_at = contract("Ledger contract", &status.ledger)?;
                let token_at = contract("token contract", &status.token)?;
                let provider = wallet_provider(rpc_url, wallet)?;
                let gas = provider
                    .get_balance(wallet.address().0.into())
                    .await
                    .map_err(|e| ClientError::Chain {
                        message: format!("reading the wallet's ETH balance: {e}"),
                        refused: None,
                    })?;
                if gas.is_zero() {
                    return Err(ClientError::Config(format!(
                        "the wallet {} has no ETH to pay for the gas of its transactions to the \
                         ledger (`lit faucet` gives some on a devnet)",
                        wallet.address().to_checksum()
                    )));
                }
                let ledger = Ledger::new(ledger_at.0.into(), provider.clone());
                let amount = |text: &str| {
                    parse_amount("amount", text)
                        .map(U256::from)
                        .map_err(ClientError::Config)
                };
                match &op {
                    LedgerOp::Deposit { amount: a } => {
                        let token = LedgerToken::new(token_at.0.into(), provider.clone());
                        send("approve", token.approve(ledger_at.0.into(), amount(a)?)).await?;
                        send("deposit", ledger.deposit(amount(a)?)).await?;
                    }
                    LedgerOp::RequestWithdraw { amount: a } => {
                        send("requestWithdraw", ledger.requestWithdraw(amount(a)?)).await?;
                    }
                    LedgerOp::Withdraw {} => send("withdraw", ledger.withdraw()).await?,
                    LedgerOp::Delegate {
                        user,
                        total_limit,
                        requests_per_period,
                        period,
                    } => {
                        let user = Address::parse(user)
                            .map_err(|e| ClientError::Config(format!("user {user:?}: {e}")))?;
                        send(
                            "delegate",
                            ledger.delegate(
                                user.0.into(),
                                amount(total_limit)?,
                                *requests_per_period,
                                *period,
                            ),
                        )
                        .await?;
                    }
                }
                self.ledger_account(wallet.address(), None).await
            }
            other => Err(ClientError::NodesFailed {
                failures: vec![NodeFailure {
                    party_id: None,
                    url: String::new(),
                    reason: NodeFailureReason::BadResponse(format!(
                        "unknown ledger backend {other:?}"
                    )),
                }],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_max_price_covers_the_dearest_request_twice() {
        let prices = LedgerPrices([7, 11, 5, 1, 2]);
        assert_eq!(prices.of("pkp-sign"), Some(11));
        assert_eq!(prices.of("nothing"), None);
        // an action of 30 s and 10 host calls: 5 + 30000 + 20
        assert_eq!(prices.max_price(30_000, 10), 2 * 30_025);
        assert_eq!(prices.max_price(0, 0), 22);
        assert_eq!(LedgerPrices::default().max_price(30_000, 10), 0);
        assert_eq!(LedgerPrices([u128::MAX; 5]).max_price(1, 1), u128::MAX);
    }
}
