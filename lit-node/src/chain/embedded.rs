//! The embedded chain: the staking contract of `contracts/SPEC.md` as a state machine in one
//! SQLite file that every node of a one-machine devnet opens (the file the PKP registry uses).
//!
//! Each call runs in an `IMMEDIATE` transaction (SQLite serialises writers across processes):
//! read the ledger, apply the call as the contract would, write it back. Nothing here needs
//! more than a Rust toolchain, which is what the quickstart promises; the `evm` backend runs the
//! same calls on the Solidity contracts and the conformance suite checks that both agree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use lit_crypto::eth::Address;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::ledger_book::Book;
use super::payments::{Account, Charge, Delegation, LedgerCall, LedgerParams, Payments, Prices};
use super::releases::{self, ReleaseRegister};
use super::staking::{
    threshold_for, Amount, EpochState, JoinRequest, NetworkState, Staking, StakingParams, Validator,
};
use super::ChainError;
use lit_attest::Release;

/// One staker's record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Staker {
    stake: Amount,
    /// 0 until its first join.
    party_id: u32,
    url: String,
    identity_key: [u8; 32],
    seal_key: [u8; 32],
    dkg_key: Vec<u8>,
    /// Asked to join; in the next set.
    pending_join: bool,
    /// A current member that asked to leave.
    leaving: bool,
    /// A current member voted out.
    kicked: bool,
}

/// The whole contract state (tokens included), stored as one JSON document.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Ledger {
    admin: [u8; 20],
    min_stake: Amount,
    epoch_length: u64,
    reshare_timeout: u64,
    kick_slash_percent: u8,
    epoch: u64,
    locked: bool,
    epoch_start: u64,
    locked_at: u64,
    threshold: u32,
    next_threshold: u32,
    root_keys_hash: [u8; 32],
    last_party_id: u32,
    slashed: Amount,
    /// Token balances by address (hex).
    balances: BTreeMap<String, Amount>,
    /// Stakers by address (hex).
    stakers: BTreeMap<String, Staker>,
    /// The current set (staker hex), by party id.
    current: Vec<String>,
    /// The locked next set (staker hex), by party id.
    locked_list: Vec<String>,
    /// Ready signals for `epoch + 1`: staker → root keys hash.
    ready: BTreeMap<String, [u8; 32]>,
    /// Kick votes of this epoch: target → voters.
    kick_votes: BTreeMap<String, BTreeSet<String>>,
    /// The release register, in the order of addition.
    #[serde(default)]
    releases: Vec<Release>,
    /// The payment ledger (`Ledger`).
    #[serde(default)]
    book: Book,
}

fn key(a: &Address) -> String {
    hex::encode(a.0)
}

fn refuse<T>(reason: &str) -> Result<T, ChainError> {
    Err(ChainError::Refused(reason.to_string()))
}

impl Ledger {
    fn new(
        admin: Address,
        params: &StakingParams,
        ledger: &LedgerParams,
        supply: Amount,
        now: u64,
    ) -> Self {
        Self {
            admin: admin.0,
            min_stake: params.min_stake,
            epoch_length: params.epoch_length,
            reshare_timeout: params.reshare_timeout,
            kick_slash_percent: params.kick_slash_percent,
            epoch: 0,
            locked: false,
            epoch_start: now,
            locked_at: 0,
            threshold: 0,
            next_threshold: 0,
            root_keys_hash: [0; 32],
            last_party_id: 0,
            slashed: 0,
            balances: BTreeMap::from([(key(&admin), supply)]),
            stakers: BTreeMap::new(),
            current: Vec::new(),
            locked_list: Vec::new(),
            ready: BTreeMap::new(),
            kick_votes: BTreeMap::new(),
            releases: Vec::new(),
            book: Book::new(ledger),
        }
    }

    fn is_admin(&self, k: &str) -> bool {
        k == hex::encode(self.admin)
    }

    fn staker(&self, k: &str) -> Option<&Staker> {
        self.stakers.get(k)
    }

    fn is_current(&self, k: &str) -> bool {
        self.current.iter().any(|c| c == k)
    }

    fn by_party(&self, mut list: Vec<String>) -> Vec<String> {
        list.sort_by_key(|k| self.staker(k).map(|s| s.party_id).unwrap_or(0));
        list
    }

    /// The next set while active: current members not leaving or kicked, plus pending joiners.
    fn prospective(&self) -> Vec<String> {
        let mut next: Vec<String> = self
            .current
            .iter()
            .filter(|k| self.staker(k).is_some_and(|s| !s.leaving && !s.kicked))
            .cloned()
            .collect();
        next.extend(
            self.stakers
                .iter()
                .filter(|(k, s)| s.pending_join && !self.is_current(k))
                .map(|(k, _)| k.clone()),
        );
        self.by_party(next)
    }

    fn next_list(&self) -> Vec<String> {
        if self.locked {
            self.locked_list.clone()
        } else {
            self.prospective()
        }
    }

    fn validator(&self, k: &str) -> Option<Validator> {
        let s = self.staker(k)?;
        let staker = Address(hex::decode(k).ok()?.try_into().ok()?);
        Some(Validator {
            staker,
            party_id: s.party_id,
            url: s.url.clone(),
            identity_key: s.identity_key,
            seal_key: s.seal_key,
            dkg_key: s.dkg_key.clone(),
        })
    }

    fn state(&self) -> NetworkState {
        let next = self.next_list();
        NetworkState {
            epoch: self.epoch,
            state: if self.locked {
                EpochState::Locked
            } else {
                EpochState::Active
            },
            epoch_start: self.epoch_start,
            epoch_length: self.epoch_length,
            reshare_timeout: self.reshare_timeout,
            locked_at: self.locked_at,
            threshold: self.threshold,
            next_threshold: if self.locked {
                self.next_threshold
            } else {
                threshold_for(next.len())
            },
            current: self
                .current
                .iter()
                .filter_map(|k| self.validator(k))
                .collect(),
            next: next.iter().filter_map(|k| self.validator(k)).collect(),
            root_keys_hash: self.root_keys_hash,
        }
    }

    fn transfer(&mut self, from: &str, to: &str, amount: Amount) -> Result<(), ChainError> {
        let have = self.balances.get(from).copied().unwrap_or(0);
        if have < amount {
            return refuse("insufficient balance");
        }
        self.balances.insert(from.to_string(), have - amount);
        *self.balances.entry(to.to_string()).or_insert(0) += amount;
        Ok(())
    }

    fn stake(&mut self, me: &str, amount: Amount) -> Result<(), ChainError> {
        if amount == 0 {
            return refuse("zero amount");
        }
        if self.balances.get(me).copied().unwrap_or(0) < amount {
            return refuse("transfer failed");
        }
        self.transfer(me, "contract", amount)?;
        self.stakers.entry(me.to_string()).or_default().stake += amount;
        Ok(())
    }

    fn request_to_join(&mut self, me: &str, req: &JoinRequest) -> Result<(), ChainError> {
        let s = self.staker(me).cloned().unwrap_or_default();
        if s.stake < self.min_stake {
            return refuse("stake below minimum");
        }
        let current = self.is_current(me);
        if (current && !s.leaving) || s.pending_join {
            return refuse("already a validator");
        }
        if self
            .stakers
            .iter()
            .any(|(k, o)| k != me && o.party_id != 0 && o.identity_key == req.identity_key)
        {
            return refuse("identity key in use");
        }
        if req.dkg_key.len() != 33 {
            return refuse("bad dkg key");
        }
        if self.locked {
            return refuse("locked");
        }
        let party_id = if s.party_id == 0 {
            self.last_party_id += 1;
            self.last_party_id
        } else {
            s.party_id
        };
        let entry = self.stakers.entry(me.to_string()).or_default();
        entry.party_id = party_id;
        entry.url = req.url.clone();
        entry.identity_key = req.identity_key;
        entry.seal_key = req.seal_key;
        entry.dkg_key = req.dkg_key.clone();
        if current {
            entry.leaving = false;
        } else {
            entry.pending_join = true;
        }
        Ok(())
    }

    fn request_to_leave(&mut self, me: &str) -> Result<(), ChainError> {
        let current = self.is_current(me);
        let pending = self.staker(me).is_some_and(|s| s.pending_join);
        if !current && !pending {
            return refuse("not a validator");
        }
        if self.locked {
            return refuse("locked");
        }
        let s = self.stakers.entry(me.to_string()).or_default();
        if current {
            s.leaving = true;
        } else {
            s.pending_join = false;
        }
        Ok(())
    }

    fn withdraw(&mut self, me: &str, amount: Amount) -> Result<(), ChainError> {
        let pending = self.staker(me).is_some_and(|s| s.pending_join);
        let locked_in = self.locked && self.locked_list.iter().any(|k| k == me);
        if self.is_current(me) || pending || locked_in {
            return refuse("still a validator");
        }
        let stake = self.staker(me).map(|s| s.stake).unwrap_or(0);
        if amount > stake {
            return refuse("insufficient stake");
        }
        self.stakers.entry(me.to_string()).or_default().stake -= amount;
        self.transfer("contract", me, amount)
    }

    fn vote_to_kick(&mut self, me: &str, target: &str) -> Result<(), ChainError> {
        if !self.is_current(me) {
            return refuse("not a current validator");
        }
        if !self.is_current(target) {
            return refuse("target not a current validator");
        }
        let votes = self.kick_votes.entry(target.to_string()).or_default();
        if !votes.insert(me.to_string()) {
            return refuse("already voted");
        }
        let count = votes.len() as u32;
        let already = self.staker(target).is_some_and(|s| s.kicked);
        if count >= self.threshold && !already {
            let pct = Amount::from(self.kick_slash_percent);
            let s = self.stakers.entry(target.to_string()).or_default();
            let cut = s.stake * pct / 100;
            s.stake -= cut;
            s.kicked = true;
            self.slashed += cut;
        }
        Ok(())
    }

    fn lock(&mut self, me: &str, now: u64) -> Result<(), ChainError> {
        if self.locked {
            return refuse("locked");
        }
        let admin = me == hex::encode(self.admin);
        let over = self.epoch >= 1 && now >= self.epoch_start.saturating_add(self.epoch_length);
        if !admin && !over {
            return refuse("epoch not over");
        }
        let next = self.prospective();
        if next.is_empty() {
            return refuse("empty next set");
        }
        self.next_threshold = threshold_for(next.len());
        self.locked_list = next;
        self.locked_at = now;
        self.locked = true;
        Ok(())
    }

    fn signal_ready(
        &mut self,
        me: &str,
        next_epoch: u64,
        hash: [u8; 32],
    ) -> Result<(), ChainError> {
        if !self.locked {
            return refuse("not locked");
        }
        if next_epoch != self.epoch + 1 {
            return refuse("wrong epoch");
        }
        if !self.locked_list.iter().any(|k| k == me) {
            return refuse("not in next set");
        }
        if self.ready.contains_key(me) {
            return refuse("already signalled");
        }
        if self.epoch >= 1 && hash != self.root_keys_hash {
            return refuse("wrong key set");
        }
        self.ready.insert(me.to_string(), hash);
        Ok(())
    }

    fn ready_count(&self, next_epoch: u64, hash: &[u8; 32]) -> u32 {
        if !self.locked || next_epoch != self.epoch + 1 {
            return 0;
        }
        self.ready.values().filter(|h| *h == hash).count() as u32
    }

    fn advance(&mut self, hash: [u8; 32], now: u64) -> Result<(), ChainError> {
        if !self.locked {
            return refuse("not locked");
        }
        if self.ready_count(self.epoch + 1, &hash) < self.next_threshold {
            return refuse("not enough ready");
        }
        let new_set = std::mem::take(&mut self.locked_list);
        for (k, s) in self.stakers.iter_mut() {
            s.pending_join = false;
            if !new_set.contains(k) {
                s.leaving = false;
                s.kicked = false;
            }
        }
        self.current = new_set;
        self.threshold = self.next_threshold;
        if self.epoch == 0 {
            self.root_keys_hash = hash;
        }
        self.epoch += 1;
        self.epoch_start = now;
        self.locked = false;
        self.ready.clear();
        self.kick_votes.clear();
        Ok(())
    }

    fn abandon(&mut self, me: &str, now: u64) -> Result<(), ChainError> {
        if !self.locked {
            return refuse("not locked");
        }
        let admin = me == hex::encode(self.admin);
        if !admin && now < self.locked_at.saturating_add(self.reshare_timeout) {
            return refuse("reshare not timed out");
        }
        self.locked = false;
        self.locked_list.clear();
        self.ready.clear();
        self.epoch_start = now;
        Ok(())
    }
}

/// The embedded chain's file, shared by the processes of a devnet.
#[derive(Debug)]
struct Db {
    conn: Mutex<Connection>,
}

fn backend(e: rusqlite::Error) -> ChainError {
    ChainError::Backend(e.to_string())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Db {
    fn open(path: &Path) -> Result<Self, ChainError> {
        let conn = super::open_shared(path)?;
        super::retry_busy(|| {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS staking (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    ledger TEXT NOT NULL
                );",
            )
        })
        .map_err(backend)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn read(&self) -> Result<Ledger, ChainError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        load(&conn)
    }

    /// Applies `f` to the ledger in one transaction; a refusal changes nothing.
    fn apply<T>(
        &self,
        f: impl FnOnce(&mut Ledger) -> Result<T, ChainError>,
    ) -> Result<T, ChainError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let mut ledger = load(&tx)?;
        let out = f(&mut ledger)?;
        let text =
            serde_json::to_string(&ledger).map_err(|e| ChainError::Backend(e.to_string()))?;
        tx.execute("UPDATE staking SET ledger = ?1 WHERE id = 1", params![text])
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(out)
    }
}

fn load(conn: &Connection) -> Result<Ledger, ChainError> {
    let text: Option<String> = conn
        .query_row("SELECT ledger FROM staking WHERE id = 1", [], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    let text = text.ok_or_else(|| {
        ChainError::Backend("the embedded chain has no staking contract (create it first)".into())
    })?;
    serde_json::from_str(&text).map_err(|_| ChainError::Corrupt("staking ledger".into()))
}

/// One account's view of the embedded chain ([`Staking`]).
#[derive(Debug, Clone)]
pub struct EmbeddedStaking {
    db: Arc<Db>,
    caller: Address,
}

impl EmbeddedStaking {
    /// Creates the staking contract and the payment ledger in the file at `path` (the admin
    /// receives the token supply, as the faucet) unless they exist; returns the admin's view.
    pub fn create(
        path: &Path,
        admin: Address,
        params: &StakingParams,
        ledger: &LedgerParams,
        supply: Amount,
    ) -> Result<Self, ChainError> {
        let db = Db::open(path)?;
        let text = serde_json::to_string(&Ledger::new(admin, params, ledger, supply, now_secs()))
            .map_err(|e| ChainError::Backend(e.to_string()))?;
        db.conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .execute(
                "INSERT OR IGNORE INTO staking (id, ledger) VALUES (1, ?1)",
                params![text],
            )
            .map_err(backend)?;
        Ok(Self {
            db: Arc::new(db),
            caller: admin,
        })
    }

    /// Opens the embedded chain at `path` as `caller`.
    pub fn open(path: &Path, caller: Address) -> Result<Self, ChainError> {
        let db = Db::open(path)?;
        db.read()?;
        Ok(Self {
            db: Arc::new(db),
            caller,
        })
    }

    /// The same chain seen by another account.
    pub fn as_caller(&self, caller: Address) -> Self {
        Self {
            db: self.db.clone(),
            caller,
        }
    }

    fn me(&self) -> String {
        key(&self.caller)
    }

    /// Applies the caller's own ledger operation `call` with its owner approval, after recording
    /// the approval's nonce: the embedded chain's counterpart of the caller sending its own
    /// transaction. An approval seen before is refused with [`ChainError::ApprovalUsed`] and
    /// changes nothing.
    pub fn apply_approved(
        &self,
        approval: &super::Approval,
        call: &LedgerCall,
    ) -> Result<(), ChainError> {
        let me = self.me();
        let now = now_secs();
        // the nonce in its own write first: a refused operation still uses its approval, so
        // whoever holds it cannot try it again later, when the operation would pass
        self.db.apply(|l| {
            l.book.use_approval(
                &approval.nonce,
                approval.expires,
                i64::try_from(now).unwrap_or(i64::MAX),
            )
        })?;
        self.db.apply(|l| match call {
            LedgerCall::Deposit(amount) => l.book.deposit(&mut l.balances, &me, *amount),
            LedgerCall::RequestWithdraw(amount) => l.book.request_withdraw(&me, *amount, now),
            LedgerCall::Withdraw => l.book.withdraw(&mut l.balances, &me, now),
            LedgerCall::Delegate {
                user,
                total_limit,
                requests_per_period,
                period,
            } => l.book.delegate(
                &me,
                &key(user),
                *total_limit,
                *requests_per_period,
                *period,
                now,
            ),
        })
    }
}

#[async_trait]
impl Staking for EmbeddedStaking {
    fn caller(&self) -> Address {
        self.caller
    }

    async fn network(&self) -> Result<NetworkState, ChainError> {
        Ok(self.db.read()?.state())
    }

    async fn min_stake(&self) -> Result<Amount, ChainError> {
        Ok(self.db.read()?.min_stake)
    }

    async fn stake_of(&self, who: Address) -> Result<Amount, ChainError> {
        Ok(self
            .db
            .read()?
            .staker(&key(&who))
            .map(|s| s.stake)
            .unwrap_or(0))
    }

    async fn token_balance(&self, who: Address) -> Result<Amount, ChainError> {
        Ok(self
            .db
            .read()?
            .balances
            .get(&key(&who))
            .copied()
            .unwrap_or(0))
    }

    async fn ready_count(&self, next_epoch: u64, hash: [u8; 32]) -> Result<u32, ChainError> {
        Ok(self.db.read()?.ready_count(next_epoch, &hash))
    }

    async fn has_signalled(&self, next_epoch: u64, who: Address) -> Result<bool, ChainError> {
        let l = self.db.read()?;
        Ok(l.locked && next_epoch == l.epoch + 1 && l.ready.contains_key(&key(&who)))
    }

    async fn transfer_token(&self, to: Address, amount: Amount) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| l.transfer(&me, &key(&to), amount))
    }

    async fn stake(&self, amount: Amount) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| l.stake(&me, amount))
    }

    async fn request_to_join(&self, request: &JoinRequest) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| l.request_to_join(&me, request))
    }

    async fn request_to_leave(&self) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| l.request_to_leave(&me))
    }

    async fn withdraw(&self, amount: Amount) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| l.withdraw(&me, amount))
    }

    async fn vote_to_kick(&self, target: Address) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| l.vote_to_kick(&me, &key(&target)))
    }

    async fn lock_next_epoch(&self) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| l.lock(&me, now_secs()))
    }

    async fn signal_ready(
        &self,
        next_epoch: u64,
        root_keys_hash: [u8; 32],
    ) -> Result<(), ChainError> {
        let me = self.me();
        self.db
            .apply(|l| l.signal_ready(&me, next_epoch, root_keys_hash))
    }

    async fn advance_epoch(&self, root_keys_hash: [u8; 32]) -> Result<(), ChainError> {
        self.db.apply(|l| l.advance(root_keys_hash, now_secs()))
    }

    async fn abandon_reshare(&self) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| l.abandon(&me, now_secs()))
    }

    async fn set_epoch_length(&self, seconds: u64) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| {
            if me != hex::encode(l.admin) {
                return refuse("not admin");
            }
            l.epoch_length = seconds;
            Ok(())
        })
    }
}

#[async_trait]
impl ReleaseRegister for EmbeddedStaking {
    fn caller(&self) -> Address {
        self.caller
    }

    async fn releases(&self) -> Result<Vec<Release>, ChainError> {
        Ok(self.db.read()?.releases)
    }

    async fn add_release(&self, release: &Release) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| {
            let admin = me == hex::encode(l.admin);
            releases::add_to(&mut l.releases, admin, release)
        })
    }

    async fn revoke_release(&self, measurement: &[u8; 48]) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| {
            let admin = me == hex::encode(l.admin);
            releases::revoke_in(&mut l.releases, admin, measurement)
        })
    }
}

#[async_trait]
impl Payments for EmbeddedStaking {
    fn caller(&self) -> Address {
        self.caller
    }

    async fn prices(&self) -> Result<Prices, ChainError> {
        Ok(self.db.read()?.book.prices())
    }

    async fn account(&self, user: Address) -> Result<Account, ChainError> {
        Ok(self.db.read()?.book.account(&key(&user)))
    }

    async fn withdraw_delay(&self) -> Result<u64, ChainError> {
        Ok(self.db.read()?.book.withdraw_delay())
    }

    async fn delegation(&self, payer: Address, user: Address) -> Result<Delegation, ChainError> {
        Ok(self.db.read()?.book.delegation(&key(&payer), &key(&user)))
    }

    async fn settled_batch(&self, node: Address) -> Result<u64, ChainError> {
        Ok(self.db.read()?.book.settled_batch(&key(&node)))
    }

    async fn rewards(&self, node: Address) -> Result<Amount, ChainError> {
        Ok(self.db.read()?.book.rewards(&key(&node)))
    }

    async fn set_prices(&self, prices: &Prices) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| {
            let admin = l.is_admin(&me);
            l.book.set_prices(admin, prices)
        })
    }

    async fn deposit(&self, amount: Amount) -> Result<(), ChainError> {
        let me = self.me();
        self.db
            .apply(|l| l.book.deposit(&mut l.balances, &me, amount))
    }

    async fn request_withdraw(&self, amount: Amount) -> Result<(), ChainError> {
        let me = self.me();
        self.db
            .apply(|l| l.book.request_withdraw(&me, amount, now_secs()))
    }

    async fn withdraw(&self) -> Result<(), ChainError> {
        let me = self.me();
        self.db
            .apply(|l| l.book.withdraw(&mut l.balances, &me, now_secs()))
    }

    async fn delegate(
        &self,
        user: Address,
        total_limit: Amount,
        requests_per_period: u32,
        period: u64,
    ) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| {
            l.book.delegate(
                &me,
                &key(&user),
                total_limit,
                requests_per_period,
                period,
                now_secs(),
            )
        })
    }

    async fn charge(&self, batch: u64, charges: &[Charge]) -> Result<(), ChainError> {
        let me = self.me();
        self.db.apply(|l| {
            let member = l.is_current(&me);
            l.book.charge(&me, member, batch, charges, now_secs())
        })
    }

    async fn claim_rewards(&self) -> Result<(), ChainError> {
        let me = self.me();
        self.db
            .apply(|l| l.book.claim_rewards(&mut l.balances, &me))
    }
}
