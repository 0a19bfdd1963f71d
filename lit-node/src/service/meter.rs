//! Charging for requests: the node's side of the ledger ([`crate::chain::payments`]).
//!
//! For each paid request the node
//! 1. **quotes** it before doing the work ([`Meter::quote`]): the price at the current prices
//!    (read from the ledger at every settlement), refused with `price_too_high` when above the
//!    `maxPrice` the caller signed into the request, and with `payment_required` when the
//!    payer's spendable balance (or its delegation to the caller) less what this node has not
//!    settled yet cannot cover it;
//! 2. **records** the debit once the work is done and before it answers ([`Meter::record`]), in
//!    its own SQLite file (WAL, `synchronous = NORMAL`: a committed debit survives the node's
//!    crash; a power failure may lose the last moments' debits, the node's loss, never a double
//!    charge, as each batch is checkpointed to disk before it is sent): a node that crashes after
//!    answering still has the debit, and one that crashes before answering charged nothing;
//! 3. **settles** its debits in numbered batches ([`Meter::settle`], every
//!    `staking.settle_interval_ms`): the open debits get the next batch number (the ledger's
//!    last settled batch of this node, plus one) before they are sent, and are forgotten only
//!    once the ledger has that batch. A batch that was sent but not forgotten (a crash in
//!    between) is sent again and refused as settled, so no debit is charged twice.
//!
//! Each node checks only its own debits: a payer whose requests are spread over many nodes
//! can be served more than its balance, across nodes, between two settlements. The ledger
//! never lets a balance go below zero, so that excess is the serving nodes' loss, bounded by
//! what a payer can ask in one settlement interval.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use lit_api::ErrorCode;
use lit_crypto::eth::Address;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tracing::{info, warn};

use crate::auth::session::VerifiedSession;
use crate::chain::payments::{
    reasons, Account, Charge, Delegation, Payments, Prices, Product, Units,
};
use crate::chain::staking::Amount;
use crate::chain::ChainError;
use crate::error::ApiError;

/// The name of the debits file in the node's data directory.
pub const DEBITS_FILE: &str = "debits.sqlite";

/// A request the node agreed to serve at a price.
#[derive(Clone, Debug)]
pub struct Quote {
    user: Address,
    payer: Address,
    units: Units,
    price: Amount,
    request_id: [u8; 32],
    /// What the payer's balance could spend when quoted.
    spendable: Amount,
    /// The most this request could cost when quoted: what the balance (and the delegation)
    /// had left here beyond the unsettled debits.
    room: Amount,
}

impl Quote {
    /// The price.
    pub fn price(&self) -> Amount {
        self.price
    }
}

/// A Lit Action the node agreed to run: its base price is quoted like any request, and the
/// run may use what is left of the cap (the smaller of the signed maximum and what the payer
/// has left) in milliseconds and host calls, at the prices of the quote.
#[derive(Clone, Debug)]
pub struct ActionQuote {
    quote: Quote,
    prices: Prices,
    cap: Amount,
}

impl ActionQuote {
    /// What the caller can pay for beyond the base price: milliseconds and billable host calls
    /// (`None`: that resource is free).
    pub fn budget(&self) -> (Option<u64>, Option<u64>) {
        let extra = self.cap.saturating_sub(self.quote.price);
        let of = |product: Product| {
            let price = self.prices.of(product);
            (price > 0).then(|| u64::try_from(extra / price).unwrap_or(u64::MAX))
        };
        (of(Product::ActionMs), of(Product::ActionHostCall))
    }

    /// The price of a run that used `units`: at the quote's prices, never above the cap.
    pub fn price_of(&self, units: &Units) -> Amount {
        self.prices.cost(units).min(self.cap)
    }
}

/// What one settlement did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// The batch number (0: nothing to settle).
    pub batch: u64,
    /// The debits it covered.
    pub debits: usize,
    /// What it asked in all (the ledger may have charged less: see its `Charged` events).
    pub amount: Amount,
}

/// The node's meter: prices, unsettled debits, settlement.
pub struct Meter {
    chain: Arc<dyn Payments>,
    db: Mutex<Connection>,
    prices: RwLock<Prices>,
    settling: tokio::sync::Mutex<()>,
    reads: Mutex<Reads>,
    totals: Mutex<Totals>,
}

/// The unsettled debits' running sums (amount, requests), per payer and per payer and user,
/// kept with the file: the balance check of every quote reads them.
#[derive(Default)]
struct Totals {
    by_payer: HashMap<Address, (Amount, u64)>,
    by_pair: HashMap<(Address, Address), (Amount, u64)>,
}

impl Totals {
    /// Adds (`sign` 1) or takes off (`sign` −1) debits; an entry that falls to nothing goes.
    fn add(&mut self, payer: Address, user: Address, amount: Amount, requests: u64, sign: i8) {
        fn apply(t: &mut (Amount, u64), amount: Amount, requests: u64, sign: i8) {
            if sign > 0 {
                *t = (t.0.saturating_add(amount), t.1.saturating_add(requests));
            } else {
                *t = (t.0.saturating_sub(amount), t.1.saturating_sub(requests));
            }
        }
        let t = self.by_payer.entry(payer).or_default();
        apply(t, amount, requests, sign);
        if t.0 == 0 && t.1 == 0 {
            self.by_payer.remove(&payer);
        }
        let t = self.by_pair.entry((payer, user)).or_default();
        apply(t, amount, requests, sign);
        if t.0 == 0 && t.1 == 0 {
            self.by_pair.remove(&(payer, user));
        }
    }
}

/// How long a read of a deposit or a delegation serves the quotes that it lets through (a
/// quote it would refuse reads again). Each settlement forgets them all.
pub const READ_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The most reads remembered; beyond, all are forgotten.
const MAX_READS: usize = 100_000;

/// Recent ledger reads.
#[derive(Default)]
struct Reads {
    accounts: HashMap<Address, (Instant, Account)>,
    delegations: HashMap<(Address, Address), (Instant, Delegation)>,
}

impl Reads {
    fn remember_account(&mut self, payer: Address, a: Account) {
        if self.accounts.len() >= MAX_READS {
            self.accounts.clear();
        }
        self.accounts.insert(payer, (Instant::now(), a));
    }

    fn remember_delegation(&mut self, payer: Address, user: Address, d: Delegation) {
        if self.delegations.len() >= MAX_READS {
            self.delegations.clear();
        }
        self.delegations.insert((payer, user), (Instant::now(), d));
    }
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("node", &self.chain.caller())
            .finish_non_exhaustive()
    }
}

fn db_error(e: rusqlite::Error) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("debits: {e}"))
}

fn chain_unavailable(e: ChainError) -> ApiError {
    ApiError::new(
        ErrorCode::ChainUnavailable,
        format!("the ledger cannot be read: {e}"),
    )
}

fn amount_text(a: Amount) -> String {
    a.to_string()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Meter {
    /// Opens (creating) the debits file at `path`; charges go through `chain` (the ledger as
    /// this node's staker). Reads the prices once.
    pub async fn open(path: &Path, chain: Arc<dyn Payments>) -> Result<Self, String> {
        let conn = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS debits (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                batch INTEGER,
                user TEXT NOT NULL,
                payer TEXT NOT NULL,
                units TEXT NOT NULL,
                amount TEXT NOT NULL,
                request TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS debits_payer ON debits(payer, user);
             CREATE INDEX IF NOT EXISTS debits_batch ON debits(batch);",
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        let totals = totals_of(&conn).map_err(|e| format!("{}: {e}", path.display()))?;
        let prices = chain
            .prices()
            .await
            .map_err(|e| format!("the ledger's prices: {e}"))?;
        Ok(Self {
            chain,
            db: Mutex::new(conn),
            prices: RwLock::new(prices),
            settling: tokio::sync::Mutex::new(()),
            reads: Mutex::default(),
            totals: Mutex::new(totals),
        })
    }

    /// What this node charged `payer` and has not settled yet.
    pub fn unsettled_of(&self, payer: Address) -> Amount {
        self.unsettled(&payer, None).0
    }

    /// The prices in force here.
    pub fn prices(&self) -> Prices {
        *self.prices.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the prices from the ledger again.
    pub async fn refresh_prices(&self) -> Result<Prices, ChainError> {
        let prices = self.chain.prices().await?;
        *self.prices.write().unwrap_or_else(|e| e.into_inner()) = prices;
        Ok(prices)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The amount and requests of the debits not settled yet for `payer` (and `user`, if given).
    fn unsettled(&self, payer: &Address, user: Option<&Address>) -> (Amount, u64) {
        let totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        match user {
            None => totals.by_payer.get(payer).copied().unwrap_or_default(),
            Some(u) => totals
                .by_pair
                .get(&(*payer, *u))
                .copied()
                .unwrap_or_default(),
        }
    }

    /// Quotes `units` for the request of `session`; `Ok(None)` when they cost nothing here.
    pub async fn quote(
        &self,
        session: &VerifiedSession,
        units: Units,
    ) -> Result<Option<Quote>, ApiError> {
        let price = self.prices().cost(&units);
        if price == 0 {
            return Ok(None);
        }
        self.quote_priced(session, units, price).await.map(Some)
    }

    /// Quotes a Lit Action: its base price as a request, then the budget of its run (see
    /// [`ActionQuote`]); `Ok(None)` when actions are free here. Refused like any request, and
    /// with `price_too_high` (or `payment_required`, when the balance is what is short) when
    /// the cap does not pay for one millisecond beyond the base price.
    pub async fn quote_action(
        &self,
        session: &VerifiedSession,
    ) -> Result<Option<ActionQuote>, ApiError> {
        let prices = self.prices();
        let (base, ms, call) = (
            prices.of(Product::Action),
            prices.of(Product::ActionMs),
            prices.of(Product::ActionHostCall),
        );
        if base == 0 && ms == 0 && call == 0 {
            return Ok(None);
        }
        let quote = self
            .quote_priced(session, Units::one(Product::Action), base)
            .await?;
        let cap = session.max_price.min(quote.room);
        if cap < base.saturating_add(ms) {
            let (code, short) = if session.max_price < base.saturating_add(ms) {
                (ErrorCode::PriceTooHigh, "the maxPrice the request signed")
            } else {
                (
                    ErrorCode::PaymentRequired,
                    "what the payer's balance has left here",
                )
            };
            return Err(ApiError::new(
                code,
                format!(
                    "an action costs {base} to start and {ms} per millisecond at this node: {short} \
                     ({cap}) does not pay for one millisecond"
                ),
            ));
        }
        Ok(Some(ActionQuote { quote, prices, cap }))
    }

    /// Records the run of a quoted action that used `units`, at [`ActionQuote::price_of`]
    /// (the balance's room at the time of recording caps it: the node's loss, never the
    /// payer's overdraft). Returns the price.
    pub fn record_action(&self, action: &ActionQuote, units: Units) -> Result<Amount, ApiError> {
        let quote = Quote {
            units,
            price: action.price_of(&units),
            ..action.quote.clone()
        };
        self.record_inner(&quote, true)
    }

    async fn quote_priced(
        &self,
        session: &VerifiedSession,
        units: Units,
        price: Amount,
    ) -> Result<Quote, ApiError> {
        if price > session.max_price {
            return Err(ApiError::new(
                ErrorCode::PriceTooHigh,
                format!(
                    "this request costs {price} at this node, above the maxPrice of {} the \
                     request signed (sign a higher one: `ConnectOptions::with_max_price` \
                     or `Session::with_max_price`)",
                    session.max_price
                ),
            ));
        }
        // recent reads first; a refusal is only ever given on fresh ones
        match self.quote_from(session, units, price, true).await {
            Err(e) if e.code() == ErrorCode::PaymentRequired => {
                self.quote_from(session, units, price, false).await
            }
            other => other,
        }
    }

    /// The payer's deposit, from a read of the last [`READ_TTL`] when `recent` allows.
    async fn account(&self, payer: Address, recent: bool) -> Result<Account, ApiError> {
        if recent {
            if let Some((at, a)) = self.reads().accounts.get(&payer) {
                if at.elapsed() < READ_TTL {
                    return Ok(*a);
                }
            }
        }
        let a = self.chain.account(payer).await.map_err(chain_unavailable)?;
        self.reads().remember_account(payer, a);
        Ok(a)
    }

    /// A delegation, from a read of the last [`READ_TTL`] when `recent` allows.
    async fn delegation(
        &self,
        payer: Address,
        user: Address,
        recent: bool,
    ) -> Result<Delegation, ApiError> {
        if recent {
            if let Some((at, d)) = self.reads().delegations.get(&(payer, user)) {
                if at.elapsed() < READ_TTL {
                    return Ok(*d);
                }
            }
        }
        let d = self
            .chain
            .delegation(payer, user)
            .await
            .map_err(chain_unavailable)?;
        self.reads().remember_delegation(payer, user, d);
        Ok(d)
    }

    fn reads(&self) -> std::sync::MutexGuard<'_, Reads> {
        self.reads.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn quote_from(
        &self,
        session: &VerifiedSession,
        units: Units,
        price: Amount,
        recent: bool,
    ) -> Result<Quote, ApiError> {
        let (user, payer) = (session.authorized_address, session.payer);
        let account = self.account(payer, recent).await?;
        // the payer's balance covers all its unsettled debits here, its users' included
        let spendable = account.spendable();
        let mut room = spendable.saturating_sub(self.unsettled(&payer, None).0);
        if payer != user {
            let delegation = self.delegation(payer, user, recent).await?;
            if !delegation.exists() {
                return Err(ApiError::new(
                    ErrorCode::PaymentRequired,
                    format!("{payer} does not pay for {user}: it has no delegation to it"),
                ));
            }
            let (pair_amount, pair_requests) = self.unsettled(&payer, Some(&user));
            room = room.min(delegation.remaining().saturating_sub(pair_amount));
            if delegation.remaining() < pair_amount.saturating_add(price) {
                return Err(ApiError::new(
                    ErrorCode::PaymentRequired,
                    format!(
                        "the delegation of {payer} to {user} has {} left ({pair_amount} of it \
                         not yet settled here), less than the price {price}",
                        delegation.remaining()
                    ),
                ));
            }
            let limit = u64::from(delegation.requests_per_period);
            let used =
                u64::from(delegation.requests_in_period(now_secs())).saturating_add(pair_requests);
            if limit > 0 && used.saturating_add(units.requests()) > limit {
                return Err(ApiError::new(
                    ErrorCode::PaymentRequired,
                    format!(
                        "the delegation of {payer} to {user} allows {limit} requests per {} s, \
                         and {used} were made in this period",
                        delegation.period
                    ),
                ));
            }
        }
        let quote = Quote {
            user,
            payer,
            units,
            price,
            request_id: session.request_id,
            spendable,
            room,
        };
        // refuse now rather than after the work
        self.check(&quote)?;
        Ok(quote)
    }

    fn check(&self, quote: &Quote) -> Result<(), ApiError> {
        let (unsettled, _) = self.unsettled(&quote.payer, None);
        if quote.spendable < unsettled.saturating_add(quote.price) {
            return Err(ApiError::new(
                ErrorCode::PaymentRequired,
                format!(
                    "the balance of {} on the ledger can spend {} ({unsettled} of it not yet \
                     settled here), less than the price {}: deposit to the ledger",
                    quote.payer, quote.spendable, quote.price
                ),
            ));
        }
        Ok(())
    }

    /// Records the debit of a served request (before the answer leaves the node): checks the
    /// payer's spendable balance against everything unsettled again, atomically with the
    /// insert, so concurrent requests of one payer cannot overdraw it here. Returns the price.
    pub fn record(&self, quote: &Quote) -> Result<Amount, ApiError> {
        self.record_inner(quote, false)
    }

    /// [`Meter::record`]; `capped`: charges at most what the balance has left instead of
    /// refusing (work whose price is known only after it was done).
    fn record_inner(&self, quote: &Quote, capped: bool) -> Result<Amount, ApiError> {
        // the connection's lock orders the check, the insert and the totals' update
        let mut conn = self.conn();
        let capped_quote;
        let quote = if capped {
            let (unsettled, _) = self.unsettled(&quote.payer, None);
            capped_quote = Quote {
                price: quote.price.min(quote.spendable.saturating_sub(unsettled)),
                ..quote.clone()
            };
            &capped_quote
        } else {
            self.check(quote)?;
            quote
        };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_error)?;
        tx.execute(
            "INSERT INTO debits (batch, user, payer, units, amount, request)
             VALUES (NULL, ?1, ?2, ?3, ?4, ?5)",
            params![
                quote.user.to_checksum(),
                quote.payer.to_checksum(),
                serde_json::to_string(&quote.units).unwrap_or_default(),
                amount_text(quote.price),
                hex::encode(quote.request_id),
            ],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        self.totals.lock().unwrap_or_else(|e| e.into_inner()).add(
            quote.payer,
            quote.user,
            quote.price,
            quote.units.requests(),
            1,
        );
        drop(conn);
        Ok(quote.price)
    }

    /// The debits not settled yet (all payers).
    pub fn pending(&self) -> Result<usize, ApiError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM debits", [], |r| r.get(0))
            .map_err(db_error)?;
        Ok(n as usize)
    }

    /// Settles the debits: the batch sent before and not confirmed, else the open debits as
    /// the next batch. One settlement at a time.
    pub async fn settle(&self) -> Result<Settled, ChainError> {
        let _one = self.settling.lock().await;
        let local = |e: rusqlite::Error| ChainError::Backend(format!("debits: {e}"));
        let assigned: Option<i64> = self
            .conn()
            .query_row(
                "SELECT MIN(batch) FROM debits WHERE batch IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(local)?
            .flatten();
        let batch = match assigned {
            Some(b) => b as u64,
            None => {
                let open: i64 = self
                    .conn()
                    .query_row("SELECT COUNT(*) FROM debits", [], |r| r.get(0))
                    .map_err(local)?;
                if open == 0 {
                    return Ok(Settled::default());
                }
                let next = self.chain.settled_batch(self.chain.caller()).await? + 1;
                let conn = self.conn();
                conn.execute(
                    "UPDATE debits SET batch = ?1 WHERE batch IS NULL",
                    params![next as i64],
                )
                .map_err(local)?;
                // the batch's contents are on disk before it is sent, power loss included:
                // rows that lost their number could be charged again under the next one
                conn.query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))
                    .map_err(local)?;
                next
            }
        };
        let (charges, debits) = self.charges_of(batch).map_err(local)?;
        // what the batch takes off the running totals once it is forgotten (before capping)
        let raw: Vec<(Address, Address, Amount, u64)> = charges
            .iter()
            .map(|c| (c.payer, c.user, c.amount, c.units.requests()))
            .collect();
        // never above the prices in force (a price that fell since the request was served)
        let prices = self.chain.prices().await?;
        let charges: Vec<Charge> = charges
            .into_iter()
            .map(|mut c| {
                c.amount = c.amount.min(prices.cost(&c.units));
                c
            })
            .collect();
        let amount = charges
            .iter()
            .fold(0u128, |s, c| s.saturating_add(c.amount));
        match self.chain.charge(batch, &charges).await {
            Ok(()) => {}
            Err(ChainError::Refused(r)) if r == reasons::BATCH_SETTLED => {
                info!(
                    batch,
                    "batch {batch} had landed before: forgetting its debits"
                );
            }
            Err(ChainError::Refused(r)) if r == reasons::NOT_A_VALIDATOR => {
                warn!(
                    batch,
                    debits,
                    "this node is not in the current set, so the ledger refuses its charges: \
                     {debits} debits ({amount}) are lost"
                );
            }
            Err(e) => return Err(e),
        }
        {
            let conn = self.conn();
            conn.execute("DELETE FROM debits WHERE batch = ?1", params![batch as i64])
                .map_err(local)?;
            let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
            for (payer, user, amount, requests) in &raw {
                totals.add(*payer, *user, *amount, *requests, -1);
            }
        }
        // the balances moved: read them again
        *self.reads() = Reads::default();
        Ok(Settled {
            batch,
            debits,
            amount,
        })
    }

    /// The charges of batch `batch`: one per user and payer, its units and amounts summed and
    /// its request ids digested (SHA-256 of the ids in the order recorded).
    fn charges_of(&self, batch: u64) -> Result<(Vec<Charge>, usize), rusqlite::Error> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT user, payer, units, amount, request FROM debits WHERE batch = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![batch as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut grouped: std::collections::BTreeMap<(String, String), (Units, Amount, Sha256)> =
            Default::default();
        let mut debits = 0;
        for row in rows {
            let (user, payer, units, amount, request) = row?;
            debits += 1;
            let entry = grouped
                .entry((user, payer))
                .or_insert_with(|| (Units::default(), 0, Sha256::new()));
            entry
                .0
                .add(&serde_json::from_str(&units).unwrap_or_default());
            entry.1 = entry.1.saturating_add(amount.parse().unwrap_or(0));
            entry.2.update(hex::decode(request).unwrap_or_default());
        }
        let charges = grouped
            .into_iter()
            .filter_map(|((user, payer), (units, amount, digest))| {
                Some(Charge {
                    user: Address::parse(&user).ok()?,
                    payer: Address::parse(&payer).ok()?,
                    units,
                    amount,
                    requests: digest.finalize().into(),
                })
            })
            .collect();
        Ok((charges, debits))
    }
}

/// The running sums of the debits in the file (at start-up).
fn totals_of(conn: &Connection) -> Result<Totals, rusqlite::Error> {
    let mut totals = Totals::default();
    let mut stmt = conn.prepare("SELECT payer, user, amount, units FROM debits")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (payer, user, amount, units) = row?;
        let (Ok(payer), Ok(user)) = (Address::parse(&payer), Address::parse(&user)) else {
            continue;
        };
        let units: Units = serde_json::from_str(&units).unwrap_or_default();
        totals.add(
            payer,
            user,
            amount.parse().unwrap_or(0),
            units.requests(),
            1,
        );
    }
    Ok(totals)
}

/// Settles every `interval` (and refreshes the prices) until the node stops; a failed
/// settlement is retried at the next tick.
pub async fn run_settlement(meter: Arc<Meter>, interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = meter.refresh_prices().await {
            warn!("reading the ledger's prices: {e}");
        }
        match meter.settle().await {
            Ok(s) if s.debits > 0 => info!(
                batch = s.batch,
                debits = s.debits,
                amount = %s.amount,
                "settled a batch of charges"
            ),
            Ok(_) => {}
            Err(e) => warn!("settling charges (retried at the next tick): {e}"),
        }
    }
}

impl super::Node {
    /// Quotes `product` for a request authorised by `session` (`None`: another kind of auth),
    /// when this node charges; `Ok(None)` when it costs nothing.
    pub(crate) async fn quote(
        &self,
        session: Option<&VerifiedSession>,
        product: Product,
    ) -> Result<Option<Quote>, ApiError> {
        let Some(meter) = self.meter.get() else {
            return Ok(None);
        };
        let units = Units::one(product);
        match session {
            Some(session) => meter.quote(session, units).await,
            None if meter.prices().cost(&units) == 0 => Ok(None),
            None => Err(ApiError::new(
                ErrorCode::PaymentRequired,
                "this network charges for this request, and only a session signature carries \
                 the maxPrice and the payer a charge needs: sign the request with a session \
                 (a PKP session for auth methods and actions)",
            )),
        }
    }

    /// Quotes a Lit Action for a caller authorised by `session` (`None`: another kind of
    /// auth), when this node charges for actions; `Ok(None)` when they are free.
    pub(crate) async fn quote_action(
        &self,
        session: Option<&VerifiedSession>,
    ) -> Result<Option<ActionQuote>, ApiError> {
        let Some(meter) = self.meter.get() else {
            return Ok(None);
        };
        match session {
            Some(session) => meter.quote_action(session).await,
            None if meter.prices().0[Product::Action as usize..]
                .iter()
                .all(|p| *p == 0) =>
            {
                Ok(None)
            }
            None => Err(ApiError::new(
                ErrorCode::PaymentRequired,
                "this network charges for actions, and only a session signature carries the \
                 maxPrice and the payer a charge needs: run the action with a session",
            )),
        }
    }

    /// Records the run of a quoted action that used `units`; returns what it costs.
    pub(crate) fn record_action(
        &self,
        quote: &ActionQuote,
        units: Units,
    ) -> Result<Amount, ApiError> {
        match self.meter.get() {
            Some(meter) => meter.record_action(quote, units),
            None => Ok(0),
        }
    }

    /// Records the debit of a quoted request that was served; returns what it costs (0 for
    /// none).
    pub(crate) fn record(&self, quote: Option<&Quote>) -> Result<Amount, ApiError> {
        match (quote, self.meter.get()) {
            (Some(q), Some(meter)) => meter.record(q),
            _ => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::session::CapabilitySigner;
    use crate::chain::embedded::EmbeddedStaking;
    use crate::chain::payments::LedgerParams;
    use crate::chain::staking::{JoinRequest, Staking, StakingParams};

    fn session(user: Address, payer: Address, max_price: u128, n: u8) -> VerifiedSession {
        VerifiedSession {
            session_key: ed25519_dalek::SigningKey::from_bytes(&[n; 32]).verifying_key(),
            authorized_address: user,
            authorized_by: CapabilitySigner::Wallet,
            expires_at: time::OffsetDateTime::now_utc(),
            requests: vec![],
            grants: vec![],
            network_party: None,
            max_price,
            payer,
            request_id: [n; 32],
        }
    }

    /// A one-member network on an embedded chain whose node (account 1) charges; returns the
    /// admin's view and the node's.
    async fn network(dir: &Path) -> (EmbeddedStaking, Arc<EmbeddedStaking>) {
        let admin = EmbeddedStaking::create(
            &dir.join("chain.sqlite"),
            Address([0xad; 20]),
            &StakingParams::default(),
            &LedgerParams::default(),
            1_000_000 * crate::chain::staking::TOKEN,
        )
        .unwrap();
        let node = admin.as_caller(Address([1; 20]));
        let stake = StakingParams::default().min_stake;
        Staking::transfer_token(&admin, Staking::caller(&node), stake)
            .await
            .unwrap();
        Staking::stake(&node, stake).await.unwrap();
        node.request_to_join(&JoinRequest {
            url: "https://127.0.0.1:1".into(),
            identity_key: [1; 32],
            seal_key: [2; 32],
            dkg_key: vec![2; 33],
        })
        .await
        .unwrap();
        admin.lock_next_epoch().await.unwrap();
        node.signal_ready(1, [7; 32]).await.unwrap();
        admin.advance_epoch([7; 32]).await.unwrap();
        admin.set_prices(&Prices([7, 11, 0, 0, 0])).await.unwrap();
        (admin, Arc::new(node))
    }

    #[tokio::test]
    async fn debits_settle_once_even_when_a_settled_batch_is_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let (admin, node) = network(dir.path()).await;
        let user = Address([5; 20]);
        Staking::transfer_token(&admin, user, 100).await.unwrap();
        Payments::deposit(&admin.as_caller(user), 30).await.unwrap();
        let path = dir.path().join(DEBITS_FILE);
        let meter = Meter::open(&path, node.clone()).await.unwrap();
        let units = Units::one(Product::Decryption);

        // the signed maximum and the balance
        let cheap = meter.quote(&session(user, user, 6, 1), units).await;
        assert_eq!(cheap.unwrap_err().code(), ErrorCode::PriceTooHigh);
        let q1 = meter
            .quote(&session(user, user, 7, 1), units)
            .await
            .unwrap()
            .unwrap();
        let q2 = meter
            .quote(&session(user, user, 7, 2), units)
            .await
            .unwrap()
            .unwrap();
        let q3 = meter
            .quote(&session(user, user, 7, 3), units)
            .await
            .unwrap()
            .unwrap();
        let q4 = meter
            .quote(&session(user, user, 7, 4), units)
            .await
            .unwrap()
            .unwrap();
        // four quotes fit 30 alone; recorded, the fifth cannot: 4 × 7 = 28 unsettled
        for q in [&q1, &q2, &q3, &q4] {
            assert_eq!(meter.record(q).unwrap(), 7);
        }
        let over = meter.quote(&session(user, user, 7, 5), units).await;
        assert_eq!(over.unwrap_err().code(), ErrorCode::PaymentRequired);
        assert_eq!(meter.pending().unwrap(), 4);

        let settled = meter.settle().await.unwrap();
        assert_eq!((settled.batch, settled.debits, settled.amount), (1, 4, 28));
        assert_eq!(node.account(user).await.unwrap().balance, 2);
        assert_eq!(node.rewards(Payments::caller(&*node)).await.unwrap(), 28);
        assert_eq!(meter.pending().unwrap(), 0);
        assert_eq!(meter.settle().await.unwrap(), Settled::default());

        // the state of a node that crashed after its batch landed and before it forgot it:
        // the batch is sent again, refused as settled, and forgotten; nothing is charged twice
        meter
            .conn()
            .execute(
                "INSERT INTO debits (batch, user, payer, units, amount, request)
                 VALUES (1, ?1, ?1, ?2, '7', ?3)",
                params![
                    user.to_checksum(),
                    serde_json::to_string(&units).unwrap(),
                    hex::encode([1u8; 32])
                ],
            )
            .unwrap();
        // a reopened meter (the restarted node) settles what the file holds
        drop(meter);
        let meter = Meter::open(&path, node.clone()).await.unwrap();
        assert_eq!(meter.pending().unwrap(), 1);
        let again = meter.settle().await.unwrap();
        assert_eq!((again.batch, again.debits), (1, 1));
        assert_eq!(meter.pending().unwrap(), 0);
        assert_eq!(node.account(user).await.unwrap().balance, 2);
        assert_eq!(node.rewards(Payments::caller(&*node)).await.unwrap(), 28);
        assert_eq!(
            node.settled_batch(Payments::caller(&*node)).await.unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn an_action_gets_the_budget_its_price_and_the_balance_allow_and_is_charged_within_it() {
        let dir = tempfile::tempdir().unwrap();
        let (admin, node) = network(dir.path()).await;
        // 50 to start, 2 per millisecond, 10 per host call
        admin.set_prices(&Prices([7, 11, 50, 2, 10])).await.unwrap();
        let user = Address([5; 20]);
        Staking::transfer_token(&admin, user, 1000).await.unwrap();
        Payments::deposit(&admin.as_caller(user), 500)
            .await
            .unwrap();
        let meter = Meter::open(&dir.path().join(DEBITS_FILE), node.clone())
            .await
            .unwrap();

        // the signed maximum must pay for the start and one millisecond
        let short = meter.quote_action(&session(user, user, 51, 1)).await;
        assert_eq!(short.unwrap_err().code(), ErrorCode::PriceTooHigh);
        // 250 signed: 200 beyond the start, 100 ms or 20 host calls
        let q = meter
            .quote_action(&session(user, user, 250, 2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(q.budget(), (Some(100), Some(20)));
        // a run of 30 ms and 4 calls costs 50 + 60 + 40; one that used everything costs the cap
        let mut units = Units::one(Product::Action);
        units.0[Product::ActionMs as usize] = 30;
        units.0[Product::ActionHostCall as usize] = 4;
        assert_eq!(meter.record_action(&q, units).unwrap(), 150);
        units.0[Product::ActionMs as usize] = 100;
        assert_eq!(q.price_of(&units), 250);
        // the balance bounds the budget: 500 - 150 unsettled leaves 350, though 10 000 is signed
        let rich = meter
            .quote_action(&session(user, user, 10_000, 3))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rich.budget(), (Some(150), Some(30)));
        // two runs quoted on the same room: the second is charged what is left, not more
        let twin = meter
            .quote_action(&session(user, user, 10_000, 4))
            .await
            .unwrap()
            .unwrap();
        units.0[Product::ActionMs as usize] = 150;
        units.0[Product::ActionHostCall as usize] = 0;
        assert_eq!(meter.record_action(&rich, units).unwrap(), 350);
        assert_eq!(meter.record_action(&twin, units).unwrap(), 0);
        // nothing left: refused before running, as payment_required
        let broke = meter.quote_action(&session(user, user, 10_000, 5)).await;
        assert_eq!(broke.unwrap_err().code(), ErrorCode::PaymentRequired);
        let settled = meter.settle().await.unwrap();
        assert_eq!(settled.amount, 500);
        assert_eq!(node.account(user).await.unwrap().balance, 0);
    }

    #[tokio::test]
    async fn a_delegation_pays_within_its_limits_and_a_free_product_is_not_metered() {
        let dir = tempfile::tempdir().unwrap();
        let (admin, node) = network(dir.path()).await;
        let (payer, user) = (Address([4; 20]), Address([5; 20]));
        Staking::transfer_token(&admin, payer, 1000).await.unwrap();
        let payer_view = admin.as_caller(payer);
        Payments::deposit(&payer_view, 1000).await.unwrap();
        let meter = Meter::open(&dir.path().join(DEBITS_FILE), node.clone())
            .await
            .unwrap();
        let units = Units::one(Product::PkpSign);
        let no_delegation = meter.quote(&session(user, payer, 11, 1), units).await;
        assert_eq!(
            no_delegation.unwrap_err().code(),
            ErrorCode::PaymentRequired
        );
        // two requests per hour, 100 in all
        payer_view.delegate(user, 100, 2, 3600).await.unwrap();
        for n in 1..=2 {
            let q = meter
                .quote(&session(user, payer, 11, n), units)
                .await
                .unwrap()
                .unwrap();
            meter.record(&q).unwrap();
        }
        let third = meter.quote(&session(user, payer, 11, 3), units).await;
        let e = third.unwrap_err();
        assert_eq!(e.code(), ErrorCode::PaymentRequired);
        assert!(
            e.to_string().contains("allows 2 requests per 3600 s"),
            "{e}"
        );
        meter.settle().await.unwrap();
        assert_eq!(node.account(payer).await.unwrap().balance, 1000 - 22);
        let d = node.delegation(payer, user).await.unwrap();
        assert_eq!((d.spent, d.period_requests), (22, 2));
        // settled, the period's count comes from the chain: still two
        assert!(meter
            .quote(&session(user, payer, 11, 4), units)
            .await
            .is_err());
        // the user's own account is not what pays
        assert_eq!(node.account(user).await.unwrap().balance, 0);
        // an action run costs nothing at these prices: no quote, no debit
        let free = meter
            .quote(&session(user, user, 0, 5), Units::one(Product::Action))
            .await
            .unwrap();
        assert!(free.is_none());
    }
}
