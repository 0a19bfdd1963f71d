//! The `Ledger` contract of `contracts/SPEC.md` as a state machine, for the embedded chain: it
//! lives in the embedded chain's document next to the staking state and moves tokens in the
//! same balance table (the ledger's own tokens are held under [`LEDGER_ACCOUNT`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::payments::{reasons, Account, Charge, Delegation, LedgerParams, Prices, PRODUCTS};
use super::staking::Amount;
use super::ChainError;

/// The token balance key of the ledger's own tokens (deposits and unclaimed rewards).
pub(crate) const LEDGER_ACCOUNT: &str = "ledger";

fn refuse<T>(reason: &str) -> Result<T, ChainError> {
    Err(ChainError::Refused(reason.to_string()))
}

/// A stored delegation (the payer's key and the user's key joined by `:`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct StoredDelegation {
    total_limit: Amount,
    spent: Amount,
    requests_per_period: u32,
    period: u64,
    period_start: u64,
    period_requests: u32,
}

impl From<StoredDelegation> for Delegation {
    fn from(d: StoredDelegation) -> Self {
        Delegation {
            total_limit: d.total_limit,
            spent: d.spent,
            requests_per_period: d.requests_per_period,
            period: d.period,
            period_start: d.period_start,
            period_requests: d.period_requests,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Deposit {
    balance: Amount,
    withdrawal: Amount,
    requested_at: u64,
}

/// The ledger's state. Accounts are lower-case hex addresses without `0x`, as in the rest of
/// the embedded chain.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Book {
    withdraw_delay: u64,
    prices: [Amount; PRODUCTS],
    deposits: BTreeMap<String, Deposit>,
    delegations: BTreeMap<String, StoredDelegation>,
    settled: BTreeMap<String, u64>,
    rewards: BTreeMap<String, Amount>,
    /// The nonces of the owner approvals applied (hex), with their expiry (Unix seconds): an
    /// expired approval is refused anyway, so its nonce is forgotten.
    #[serde(default)]
    approvals: BTreeMap<String, i64>,
}

fn pair(payer: &str, user: &str) -> String {
    format!("{payer}:{user}")
}

/// Moves `amount` between token balances as the token's `transferFrom` would ("transfer
/// failed" when `from` holds too little).
fn move_tokens(
    balances: &mut BTreeMap<String, Amount>,
    from: &str,
    to: &str,
    amount: Amount,
) -> Result<(), ChainError> {
    let have = balances.get(from).copied().unwrap_or(0);
    if have < amount {
        return refuse(reasons::TRANSFER_FAILED);
    }
    balances.insert(from.to_string(), have - amount);
    *balances.entry(to.to_string()).or_insert(0) += amount;
    Ok(())
}

impl Book {
    pub(crate) fn new(params: &LedgerParams) -> Self {
        Self {
            withdraw_delay: params.withdraw_delay,
            ..Self::default()
        }
    }

    pub(crate) fn withdraw_delay(&self) -> u64 {
        self.withdraw_delay
    }

    pub(crate) fn prices(&self) -> Prices {
        Prices(self.prices)
    }

    pub(crate) fn account(&self, user: &str) -> Account {
        let d = self.deposits.get(user).copied().unwrap_or_default();
        Account {
            balance: d.balance,
            withdrawal: d.withdrawal,
            withdrawal_requested_at: d.requested_at,
        }
    }

    pub(crate) fn delegation(&self, payer: &str, user: &str) -> Delegation {
        self.delegations
            .get(&pair(payer, user))
            .copied()
            .unwrap_or_default()
            .into()
    }

    pub(crate) fn settled_batch(&self, node: &str) -> u64 {
        self.settled.get(node).copied().unwrap_or(0)
    }

    pub(crate) fn rewards(&self, node: &str) -> Amount {
        self.rewards.get(node).copied().unwrap_or(0)
    }

    /// Records an owner approval's nonce (forgetting expired ones); refuses one seen before.
    pub(crate) fn use_approval(
        &mut self,
        nonce: &[u8; 32],
        expires: i64,
        now: i64,
    ) -> Result<(), ChainError> {
        self.approvals.retain(|_, until| *until > now);
        let k = hex::encode(nonce);
        if self.approvals.contains_key(&k) {
            return Err(ChainError::ApprovalUsed);
        }
        self.approvals.insert(k, expires);
        Ok(())
    }

    pub(crate) fn set_prices(&mut self, admin: bool, prices: &Prices) -> Result<(), ChainError> {
        if !admin {
            return refuse(reasons::NOT_ADMIN);
        }
        self.prices = prices.0;
        Ok(())
    }

    pub(crate) fn deposit(
        &mut self,
        balances: &mut BTreeMap<String, Amount>,
        me: &str,
        amount: Amount,
    ) -> Result<(), ChainError> {
        if amount == 0 {
            return refuse(reasons::ZERO_AMOUNT);
        }
        move_tokens(balances, me, LEDGER_ACCOUNT, amount)?;
        self.deposits.entry(me.to_string()).or_default().balance += amount;
        Ok(())
    }

    pub(crate) fn request_withdraw(
        &mut self,
        me: &str,
        amount: Amount,
        now: u64,
    ) -> Result<(), ChainError> {
        if amount == 0 {
            return refuse(reasons::ZERO_AMOUNT);
        }
        let d = self.deposits.entry(me.to_string()).or_default();
        if amount > d.balance {
            return refuse(reasons::INSUFFICIENT_BALANCE);
        }
        d.withdrawal = amount;
        d.requested_at = now;
        Ok(())
    }

    pub(crate) fn withdraw(
        &mut self,
        balances: &mut BTreeMap<String, Amount>,
        me: &str,
        now: u64,
    ) -> Result<(), ChainError> {
        let delay = self.withdraw_delay;
        let d = self.deposits.entry(me.to_string()).or_default();
        if d.withdrawal == 0 {
            return refuse(reasons::NO_WITHDRAWAL);
        }
        if now < d.requested_at.saturating_add(delay) {
            return refuse(reasons::DELAY_NOT_OVER);
        }
        let paid = d.withdrawal.min(d.balance);
        d.balance -= paid;
        d.withdrawal = 0;
        d.requested_at = 0;
        move_tokens(balances, LEDGER_ACCOUNT, me, paid)
    }

    pub(crate) fn delegate(
        &mut self,
        me: &str,
        user: &str,
        total_limit: Amount,
        requests_per_period: u32,
        period: u64,
        now: u64,
    ) -> Result<(), ChainError> {
        if requests_per_period > 0 && period == 0 {
            return refuse(reasons::ZERO_PERIOD);
        }
        let k = pair(me, user);
        if total_limit == 0 {
            self.delegations.remove(&k);
        } else {
            self.delegations.insert(
                k,
                StoredDelegation {
                    total_limit,
                    spent: 0,
                    requests_per_period,
                    period,
                    period_start: now,
                    period_requests: 0,
                },
            );
        }
        Ok(())
    }

    /// Settles a node's batch (`member`: whether the node is in the current set). A refusal
    /// leaves the whole book as it was (the caller drops the changed copy).
    pub(crate) fn charge(
        &mut self,
        me: &str,
        member: bool,
        batch: u64,
        charges: &[Charge],
        now: u64,
    ) -> Result<(), ChainError> {
        if !member {
            return refuse(reasons::NOT_A_VALIDATOR);
        }
        let last = self.settled_batch(me);
        if batch <= last {
            return refuse(reasons::BATCH_SETTLED);
        }
        if batch != last + 1 {
            return refuse(reasons::BATCH_OUT_OF_ORDER);
        }
        let prices = self.prices();
        for c in charges {
            // a cap beyond 128 bits is above any amount (the contract computes in 256 bits)
            if checked_cost(&prices, &c.units.0).is_some_and(|cap| c.amount > cap) {
                return refuse(reasons::ABOVE_PRICES);
            }
            let (user, payer) = (hex::encode(c.user.0), hex::encode(c.payer.0));
            let charged = if user == payer {
                let d = self.deposits.entry(user).or_default();
                let charged = c.amount.min(d.balance);
                d.balance -= charged;
                charged
            } else {
                let Some(delegation) = self.delegations.get_mut(&pair(&payer, &user)) else {
                    continue;
                };
                if delegation.period > 0
                    && now >= delegation.period_start.saturating_add(delegation.period)
                {
                    delegation.period_start = now;
                    delegation.period_requests = 0;
                }
                let requests = u32::try_from(c.units.requests()).unwrap_or(u32::MAX);
                delegation.period_requests = delegation.period_requests.saturating_add(requests);
                let d = self.deposits.entry(payer).or_default();
                let charged = c
                    .amount
                    .min(d.balance)
                    .min(delegation.total_limit.saturating_sub(delegation.spent));
                d.balance -= charged;
                delegation.spent += charged;
                charged
            };
            *self.rewards.entry(me.to_string()).or_insert(0) += charged;
        }
        self.settled.insert(me.to_string(), batch);
        Ok(())
    }

    pub(crate) fn claim_rewards(
        &mut self,
        balances: &mut BTreeMap<String, Amount>,
        me: &str,
    ) -> Result<(), ChainError> {
        let amount = self.rewards(me);
        if amount == 0 {
            return refuse(reasons::NO_REWARDS);
        }
        self.rewards.remove(me);
        move_tokens(balances, LEDGER_ACCOUNT, me, amount)
    }
}

/// Σ units·prices, or `None` when it does not fit 128 bits.
fn checked_cost(prices: &Prices, units: &[u64; PRODUCTS]) -> Option<Amount> {
    prices.0.iter().zip(units).try_fold(0u128, |sum, (p, n)| {
        sum.checked_add(p.checked_mul(Amount::from(*n))?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::payments::Units;
    use lit_crypto::eth::Address;

    #[test]
    fn an_approval_is_used_once_and_forgotten_after_its_expiry() {
        let mut book = Book::new(&LedgerParams::default());
        book.use_approval(&[1; 32], 100, 50).unwrap();
        let again = book.use_approval(&[1; 32], 100, 99).unwrap_err();
        assert!(matches!(again, ChainError::ApprovalUsed), "{again}");
        book.use_approval(&[2; 32], 300, 99).unwrap();
        // at 100 the first has expired (nodes refuse it as expired): forgotten, the second kept
        book.use_approval(&[3; 32], 400, 100).unwrap();
        assert_eq!(book.approvals.len(), 2);
        assert!(book.use_approval(&[2; 32], 300, 100).is_err());
    }

    /// The period of a delegation rolls at the first charge after it ended (a clock the
    /// conformance suite cannot set on a real chain).
    #[test]
    fn a_delegations_request_count_restarts_with_each_period() {
        let (payer, user, node) = (Address([4; 20]), Address([5; 20]), "0a".to_string());
        let mut balances = BTreeMap::from([(hex::encode(payer.0), 1000)]);
        let mut book = Book::new(&LedgerParams::default());
        book.set_prices(true, &Prices([1, 1, 1, 0, 0])).unwrap();
        book.deposit(&mut balances, &hex::encode(payer.0), 1000)
            .unwrap();
        let (p, u) = (hex::encode(payer.0), hex::encode(user.0));
        book.delegate(&p, &u, 1000, 5, 60, 100).unwrap();
        let charge = |n: u64| Charge {
            user,
            payer,
            units: Units([n, 0, 0, 0, 0]),
            amount: n as u128,
            requests: [0; 32],
        };
        book.charge(&node, true, 1, &[charge(3)], 120).unwrap();
        book.charge(&node, true, 2, &[charge(4)], 159).unwrap();
        let d = book.delegation(&p, &u);
        assert_eq!((d.period_start, d.period_requests, d.spent), (100, 7, 7));
        assert_eq!(d.requests_in_period(159), 7);
        assert_eq!(d.requests_in_period(160), 0);
        book.charge(&node, true, 3, &[charge(2)], 160).unwrap();
        let d = book.delegation(&p, &u);
        assert_eq!((d.period_start, d.period_requests, d.spent), (160, 2, 9));
        assert_eq!(book.rewards(&node), 9);
        assert_eq!(book.account(&p).balance, 991);
    }

    #[test]
    fn a_cap_beyond_128_bits_is_above_every_amount() {
        let mut book = Book::new(&LedgerParams::default());
        book.set_prices(true, &Prices([u128::MAX, 0, 0, 0, 0]))
            .unwrap();
        let user = Address([5; 20]);
        let big = Charge {
            user,
            payer: user,
            units: Units([2, 0, 0, 0, 0]),
            amount: u128::MAX,
            requests: [0; 32],
        };
        // accepted (the contract computes the cap in 256 bits); the empty balance pays nothing
        book.charge("0a", true, 1, &[big], 1).unwrap();
        assert_eq!(book.rewards("0a"), 0);
    }
}
