//! The payment ledger on an EVM chain: the `Ledger` contract (`contracts/src/Ledger.sol`)
//! through alloy, as [`Payments`].
//!
//! Reads are `eth_call`s; deposits, withdrawals, delegations, prices, charges and claims are
//! transactions signed by the account's own key (a user's, a payer's, the admin's, a node's
//! staker key). A refusal is the contract's `require` reason ([`ChainError::Refused`], see
//! [`payments::reasons`](super::payments::reasons)), the same as on the embedded chain. A
//! deposit is two transactions under one lock: the token's `approve` of the ledger (unless the
//! allowance covers it already), then the ledger's `deposit`, which pulls the tokens.
//! [`EvmPayments::open`] gives a view without a key, whose transactions fail before anything is
//! sent.

use std::fmt;
use std::sync::Arc;

use alloy_contract::{CallBuilder, CallDecoder};
use alloy_primitives::{FixedBytes, U256};
use alloy_provider::{DynProvider, Provider};
use async_trait::async_trait;
use lit_crypto::eth::Address;

use super::evm::bindings::{Ledger as Contract, LitToken};
use super::evm::{
    amount, connect, from_evm, latest_block, read_only, send_lock, to_evm, transact, view,
};
use super::payments::{Account, Charge, Delegation, Payments, Prices};
use super::staking::Amount;
use super::ChainError;

/// One account's view of a deployed `Ledger` contract ([`Payments`]).
#[derive(Clone)]
pub struct EvmPayments {
    /// The account that signs this view's transactions; `None` for a read-only view.
    signer: Option<Address>,
    /// One transaction at a time from this account, across its views in this process
    /// ([`send_lock`]): the next nonce is read from the chain, so two concurrent sends would
    /// pick the same.
    sending: Arc<tokio::sync::Mutex<()>>,
    contract: Contract::LedgerInstance<DynProvider>,
}

impl fmt::Debug for EvmPayments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvmPayments")
            .field("signer", &self.signer)
            .field("contract", &self.address())
            .finish_non_exhaustive()
    }
}

impl EvmPayments {
    /// Connects to the `Ledger` contract at `ledger` through the JSON-RPC endpoint `rpc_url`,
    /// acting as the account of `key` (which pays for its transactions).
    pub fn connect(
        rpc_url: &str,
        ledger: Address,
        key: &k256::ecdsa::SigningKey,
    ) -> Result<Self, ChainError> {
        let (provider, signer) = connect(rpc_url, key)?;
        Ok(Self {
            signer: Some(from_evm(signer)),
            sending: send_lock(from_evm(signer)),
            contract: Contract::new(to_evm(ledger), provider),
        })
    }

    /// The ledger at `ledger` through `rpc_url`, read-only: its [`caller`](Payments::caller)
    /// is the zero address and its transactions fail with [`ChainError::Backend`] before
    /// anything is sent.
    pub fn open(rpc_url: &str, ledger: Address) -> Result<Self, ChainError> {
        Ok(Self {
            signer: None,
            sending: Arc::default(),
            contract: Contract::new(to_evm(ledger), read_only(rpc_url)?.erased()),
        })
    }

    /// The contract's address.
    pub fn address(&self) -> Address {
        from_evm(*self.contract.address())
    }

    /// The contract's admin, the only account whose prices it accepts.
    pub async fn admin(&self) -> Result<Address, ChainError> {
        Ok(from_evm(view(self.contract.admin()).await?))
    }

    /// The token deposits are made in (the staking token).
    pub async fn token(&self) -> Result<Address, ChainError> {
        Ok(from_evm(view(self.contract.token()).await?))
    }

    /// Refuses a read-only view's transactions.
    fn check_signer(&self) -> Result<(), ChainError> {
        if self.signer.is_none() {
            return Err(ChainError::Backend(format!(
                "this view of the ledger at {} is read-only: connect with an account's key to \
                 send its transactions",
                self.address()
            )));
        }
        Ok(())
    }

    async fn send<D: CallDecoder>(
        &self,
        call: CallBuilder<&DynProvider, D>,
    ) -> Result<(), ChainError> {
        self.check_signer()?;
        let _one_at_a_time = self.sending.lock().await;
        transact(call).await
    }
}

#[async_trait]
impl Payments for EvmPayments {
    fn caller(&self) -> Address {
        self.signer.unwrap_or(Address([0; 20]))
    }

    async fn prices(&self) -> Result<Prices, ChainError> {
        let prices = view(self.contract.prices()).await?;
        let mut out = [0; super::payments::PRODUCTS];
        for (o, p) in out.iter_mut().zip(prices) {
            *o = amount(p)?;
        }
        Ok(Prices(out))
    }

    async fn account(&self, user: Address) -> Result<Account, ChainError> {
        // both views at one block, so the balance and the request agree
        let at = latest_block(self.contract.provider()).await?;
        let user = to_evm(user);
        let (balance, withdrawal) = futures_util::try_join!(
            view(self.contract.balanceOf(user).block(at)),
            view(self.contract.withdrawal(user).block(at)),
        )?;
        Ok(Account {
            balance: amount(balance)?,
            withdrawal: amount(withdrawal.amount)?,
            withdrawal_requested_at: withdrawal.requestedAt,
        })
    }

    async fn withdraw_delay(&self) -> Result<u64, ChainError> {
        view(self.contract.withdrawDelay()).await
    }

    async fn delegation(&self, payer: Address, user: Address) -> Result<Delegation, ChainError> {
        let d = view(self.contract.delegation(to_evm(payer), to_evm(user))).await?;
        Ok(Delegation {
            total_limit: amount(d.totalLimit)?,
            spent: amount(d.spent)?,
            requests_per_period: d.requestsPerPeriod,
            period: d.period,
            period_start: d.periodStart,
            period_requests: d.periodRequests,
        })
    }

    async fn settled_batch(&self, node: Address) -> Result<u64, ChainError> {
        view(self.contract.settledBatch(to_evm(node))).await
    }

    async fn rewards(&self, node: Address) -> Result<Amount, ChainError> {
        amount(view(self.contract.rewards(to_evm(node))).await?)
    }

    async fn set_prices(&self, prices: &Prices) -> Result<(), ChainError> {
        self.send(self.contract.setPrices(prices.0.map(U256::from)))
            .await
    }

    async fn deposit(&self, amount: Amount) -> Result<(), ChainError> {
        self.check_signer()?;
        let value = U256::from(amount);
        let ledger = *self.contract.address();
        let token = LitToken::new(
            view(self.contract.token()).await?,
            self.contract.provider().clone(),
        );
        // the approval and the deposit back to back: no other send of this view in between
        let _one_at_a_time = self.sending.lock().await;
        let owner = to_evm(self.caller());
        let allowed = view(token.allowance(owner, ledger)).await?;
        if allowed < value {
            transact(token.approve(ledger, value)).await?;
        }
        transact(self.contract.deposit(value)).await
    }

    async fn request_withdraw(&self, amount: Amount) -> Result<(), ChainError> {
        self.send(self.contract.requestWithdraw(U256::from(amount)))
            .await
    }

    async fn withdraw(&self) -> Result<(), ChainError> {
        self.send(self.contract.withdraw()).await
    }

    async fn delegate(
        &self,
        user: Address,
        total_limit: Amount,
        requests_per_period: u32,
        period: u64,
    ) -> Result<(), ChainError> {
        self.send(self.contract.delegate(
            to_evm(user),
            U256::from(total_limit),
            requests_per_period,
            period,
        ))
        .await
    }

    async fn charge(&self, batch: u64, charges: &[Charge]) -> Result<(), ChainError> {
        let charges = charges.iter().map(charge).collect::<Vec<_>>();
        self.send(self.contract.charge(batch, charges)).await
    }

    async fn claim_rewards(&self) -> Result<(), ChainError> {
        self.send(self.contract.claimRewards()).await
    }
}

/// A charge as the contract's `Charge`.
fn charge(c: &Charge) -> Contract::Charge {
    Contract::Charge {
        user: to_evm(c.user),
        payer: to_evm(c.payer),
        units: c.units.0,
        amount: U256::from(c.amount),
        requests: FixedBytes(c.requests),
    }
}
