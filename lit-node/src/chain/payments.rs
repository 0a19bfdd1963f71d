//! Paying for the network (`contracts/SPEC.md`, `Ledger`): users deposit the staking token, the
//! network's admin prices each product, nodes charge users for the requests they served in
//! numbered batches, payers let their users spend from their balance, and each node claims what
//! it charged.
//!
//! **Who is paid.** A fee goes to the node that served the request, not to the epoch's members
//! by stake. Each node charges for its own share of a request (a decryption served by T nodes
//! pays T shares, as in Lit, where each node is paid its own price); a node that serves more
//! earns more, and a node out of the current set earns nothing because the contract refuses its
//! charges. Splitting by stake would pay a member that answers nothing as much as one that
//! answers everything.
//!
//! **What stops a node from overcharging.** A charge is at most its units times the current
//! prices (the contract checks), and never more than the user's balance (a user's balance never
//! goes below zero: what the balance cannot cover is recorded as the charge's shortfall and is
//! the node's loss). Each batch is numbered per node and lands once, so a node that retries a
//! batch after a crash cannot charge it twice. The units themselves are the node's word; the
//! charge carries a digest of the request ids it covers so that a user can audit it against its
//! own requests.
//!
//! Two backends implement [`Payments`]: the embedded chain ([`super::embedded`]) and the
//! Solidity contract through alloy; one conformance suite checks both.

use async_trait::async_trait;
use lit_crypto::eth::Address;
use serde::{Deserialize, Serialize};

use super::staking::Amount;
use super::ChainError;

/// The contract's revert reasons, the same on every backend.
pub mod reasons {
    /// Only the admin sets prices.
    pub const NOT_ADMIN: &str = "not admin";
    /// A deposit or withdrawal of nothing.
    pub const ZERO_AMOUNT: &str = "zero amount";
    /// The token transfer failed (no allowance, not enough tokens).
    pub const TRANSFER_FAILED: &str = "transfer failed";
    /// A withdrawal request above the balance.
    pub const INSUFFICIENT_BALANCE: &str = "insufficient balance";
    /// `withdraw` with no request pending.
    pub const NO_WITHDRAWAL: &str = "no withdrawal requested";
    /// `withdraw` before the delay passed.
    pub const DELAY_NOT_OVER: &str = "withdrawal delay not over";
    /// A delegation with a request limit needs a period.
    pub const ZERO_PERIOD: &str = "zero period";
    /// Only current members charge.
    pub const NOT_A_VALIDATOR: &str = "not a validator";
    /// The batch landed before.
    pub const BATCH_SETTLED: &str = "batch already settled";
    /// A batch number that skips one.
    pub const BATCH_OUT_OF_ORDER: &str = "batch out of order";
    /// A charge above its units times the current prices.
    pub const ABOVE_PRICES: &str = "charge above prices";
    /// `claimRewards` with nothing to claim.
    pub const NO_REWARDS: &str = "no rewards";
}

/// The number of products.
pub const PRODUCTS: usize = 5;

/// An account's own operation on its deposit (what it sends the `Ledger` contract itself; on
/// the embedded chain, a node applies it for the account with its approval).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerCall {
    /// [`Payments::deposit`].
    Deposit(Amount),
    /// [`Payments::request_withdraw`].
    RequestWithdraw(Amount),
    /// [`Payments::withdraw`].
    Withdraw,
    /// [`Payments::delegate`].
    Delegate {
        /// The user.
        user: Address,
        /// Its total limit (0 removes the delegation).
        total_limit: Amount,
        /// Requests per period (0: no limit).
        requests_per_period: u32,
        /// Seconds.
        period: u64,
    },
}

/// What a node charges for, per unit; the index into [`Prices`] and [`Charge::units`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Product {
    /// One decryption share.
    Decryption = 0,
    /// One PKP signature share.
    PkpSign = 1,
    /// One run of a Lit Action (its base price).
    Action = 2,
    /// One millisecond of an action's run.
    ActionMs = 3,
    /// One host call of an action (`Lit.Actions.*`).
    ActionHostCall = 4,
}

impl Product {
    /// Every product, in index order.
    pub const ALL: [Product; PRODUCTS] = [
        Product::Decryption,
        Product::PkpSign,
        Product::Action,
        Product::ActionMs,
        Product::ActionHostCall,
    ];

    /// Whether a unit of this product is one request (counted against delegations' request
    /// limits).
    pub fn is_request(self) -> bool {
        matches!(
            self,
            Product::Decryption | Product::PkpSign | Product::Action
        )
    }
}

/// The price of one unit of each product, per node, in base units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prices(pub [Amount; PRODUCTS]);

impl Prices {
    /// The price of one unit of `product`.
    pub fn of(&self, product: Product) -> Amount {
        self.0[product as usize]
    }

    /// The price of `units` (saturating: a sum this large is refused anyway).
    pub fn cost(&self, units: &Units) -> Amount {
        self.0.iter().zip(units.0).fold(0u128, |sum, (price, n)| {
            sum.saturating_add(price.saturating_mul(Amount::from(n)))
        })
    }

    /// Whether every price is zero (the network is free).
    pub fn is_free(&self) -> bool {
        self.0.iter().all(|p| *p == 0)
    }
}

/// Units of each product.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Units(pub [u64; PRODUCTS]);

impl Units {
    /// One unit of `product`.
    pub fn one(product: Product) -> Self {
        let mut u = Self::default();
        u.0[product as usize] = 1;
        u
    }

    /// Adds `other` (saturating).
    pub fn add(&mut self, other: &Units) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }

    /// The requests among these units (decryptions, signatures and action runs).
    pub fn requests(&self) -> u64 {
        Product::ALL
            .iter()
            .filter(|p| p.is_request())
            .map(|p| self.0[*p as usize])
            .fold(0u64, u64::saturating_add)
    }
}

/// One user's charge in a node's batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// Who made the requests.
    pub user: Address,
    /// Who pays: the user, or a payer that delegated to it.
    pub payer: Address,
    /// What was served.
    pub units: Units,
    /// What the node asks (at most `units` at the current prices).
    pub amount: Amount,
    /// A digest of the ids of the requests charged (for audits; the contract only records it).
    pub requests: [u8; 32],
}

/// A user's deposit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// Its balance.
    pub balance: Amount,
    /// The amount of its pending withdrawal request (0 if none).
    pub withdrawal: Amount,
    /// When it requested it (Unix seconds; 0 if none).
    pub withdrawal_requested_at: u64,
}

impl Account {
    /// What new requests may still spend: the balance less the pending withdrawal.
    pub fn spendable(&self) -> Amount {
        self.balance.saturating_sub(self.withdrawal)
    }
}

/// A payer's delegation to one user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delegation {
    /// The most the user may spend from the payer's balance in all (0: no delegation).
    pub total_limit: Amount,
    /// What it spent so far.
    pub spent: Amount,
    /// The most requests per period (0: no limit).
    pub requests_per_period: u32,
    /// The period (seconds).
    pub period: u64,
    /// When the stored period began (Unix seconds).
    pub period_start: u64,
    /// Requests charged in the stored period.
    pub period_requests: u32,
}

impl Delegation {
    /// Whether there is a delegation.
    pub fn exists(&self) -> bool {
        self.total_limit > 0
    }

    /// What the user may still spend under it.
    pub fn remaining(&self) -> Amount {
        self.total_limit.saturating_sub(self.spent)
    }

    /// The requests charged in the period that contains `now` (0 once the stored period ended).
    pub fn requests_in_period(&self, now: u64) -> u32 {
        if self.period > 0 && now >= self.period_start.saturating_add(self.period) {
            0
        } else {
            self.period_requests
        }
    }
}

/// The parameters a ledger is created with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerParams {
    /// How long a withdrawal request waits before it can be paid (seconds): long enough for
    /// every node to settle what it served before the request.
    pub withdraw_delay: u64,
}

impl Default for LedgerParams {
    fn default() -> Self {
        Self {
            withdraw_delay: 600,
        }
    }
}

/// One account's view of the network's ledger. Every call that changes state is made by
/// [`Payments::caller`]; a refusal is [`ChainError::Refused`] with one of [`reasons`].
#[async_trait]
pub trait Payments: Send + Sync {
    /// The account this view acts for.
    fn caller(&self) -> Address;

    /// The current prices.
    async fn prices(&self) -> Result<Prices, ChainError>;
    /// `user`'s deposit.
    async fn account(&self, user: Address) -> Result<Account, ChainError>;
    /// How long a withdrawal waits (seconds).
    async fn withdraw_delay(&self) -> Result<u64, ChainError>;
    /// `payer`'s delegation to `user` (all zero if none).
    async fn delegation(&self, payer: Address, user: Address) -> Result<Delegation, ChainError>;
    /// The last batch `node` settled (0 if none).
    async fn settled_batch(&self, node: Address) -> Result<u64, ChainError>;
    /// What `node` may claim.
    async fn rewards(&self, node: Address) -> Result<Amount, ChainError>;

    /// Sets the prices (admin).
    async fn set_prices(&self, prices: &Prices) -> Result<(), ChainError>;
    /// Deposits `amount` of the caller's tokens (on a chain: approves the ledger, then deposits).
    async fn deposit(&self, amount: Amount) -> Result<(), ChainError>;
    /// Asks to withdraw `amount` once the delay has passed (replaces an earlier request).
    async fn request_withdraw(&self, amount: Amount) -> Result<(), ChainError>;
    /// Pays the pending withdrawal (what the balance still holds of it).
    async fn withdraw(&self) -> Result<(), ChainError>;
    /// Lets `user` spend up to `total_limit` of the caller's balance, at most
    /// `requests_per_period` requests per `period` seconds (0: no request limit); a zero
    /// `total_limit` removes the delegation.
    async fn delegate(
        &self,
        user: Address,
        total_limit: Amount,
        requests_per_period: u32,
        period: u64,
    ) -> Result<(), ChainError>;
    /// Settles batch number `batch` of the caller's charges (a current member's).
    async fn charge(&self, batch: u64, charges: &[Charge]) -> Result<(), ChainError>;
    /// Pays the caller its rewards.
    async fn claim_rewards(&self) -> Result<(), ChainError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_counts_each_product_at_its_price_and_requests_leave_out_metering() {
        let prices = Prices([10, 20, 30, 1, 2]);
        let mut units = Units::one(Product::Decryption);
        units.add(&Units([0, 2, 1, 150, 3]));
        assert_eq!(units, Units([1, 2, 1, 150, 3]));
        assert_eq!(prices.cost(&units), 10 + 40 + 30 + 150 + 6);
        assert_eq!(units.requests(), 4);
        assert!(!prices.is_free() && Prices::default().is_free());
        // no overflow: a huge count saturates (and the contract refuses it)
        assert_eq!(
            Prices([u128::MAX, 0, 0, 0, 0]).cost(&Units([2, 0, 0, 0, 0])),
            u128::MAX
        );
    }

    #[test]
    fn a_delegation_period_rolls_over() {
        let d = Delegation {
            total_limit: 100,
            spent: 40,
            requests_per_period: 5,
            period: 60,
            period_start: 1000,
            period_requests: 4,
        };
        assert_eq!(d.remaining(), 60);
        assert_eq!(d.requests_in_period(1059), 4);
        assert_eq!(d.requests_in_period(1060), 0);
        let account = Account {
            balance: 10,
            withdrawal: 15,
            withdrawal_requested_at: 1,
        };
        assert_eq!(account.spendable(), 0);
    }
}
