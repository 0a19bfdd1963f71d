//! One conformance suite for every backend of the staking contract, the release register and
//! the payment ledger (`contracts/SPEC.md`): each case runs on the embedded chain and on the
//! Solidity contracts on a real anvil, and both must accept and refuse the same calls with the
//! same reasons.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use lit_attest::{MinTcb, Release, RELEASE_FLAG_DEBUG, RELEASE_FLAG_VCEK_ONLY};
use lit_crypto::eth::Address;
use lit_node::chain::embedded::EmbeddedStaking;
use lit_node::chain::evm::bindings::PkpRegistry;
use lit_node::chain::evm::{self, EvmStaking};
use lit_node::chain::evm_payments::EvmPayments;
use lit_node::chain::evm_releases::EvmReleases;
use lit_node::chain::payments::{reasons, Charge, LedgerParams, Payments, Prices, Units};
use lit_node::chain::releases::ReleaseRegister;
use lit_node::chain::staking::{
    root_keys_hash, EpochState, JoinRequest, Staking, StakingParams, TOKEN,
};
use lit_node::chain::ChainError;

mod support;

use support::chain::{account_key, Anvil};

/// A fresh staking contract and release register: the admin (who holds the token supply, as
/// the faucet, and alone changes the register) and seven other accounts with no tokens.
struct Deployment {
    admin: Arc<dyn Staking>,
    accounts: Vec<Arc<dyn Staking>>,
    /// The admin's view of the release register.
    releases_admin: Arc<dyn ReleaseRegister>,
    /// The release register as `accounts[i]` sees it.
    releases: Vec<Arc<dyn ReleaseRegister>>,
    /// The admin's view of the payment ledger.
    payments_admin: Arc<dyn Payments>,
    /// The payment ledger as `accounts[i]` sees it.
    payments: Vec<Arc<dyn Payments>>,
    /// Keeps the backend alive (a temporary folder, a running anvil).
    _guard: Box<dyn std::any::Any + Send>,
}

const MIN_STAKE: u128 = 100 * TOKEN;
/// The token supply, all at the admin (the faucet).
const SUPPLY: u128 = 1_000_000 * TOKEN;

/// The ledger's withdrawal delay (seconds): short, so that a case can wait for it.
const WITHDRAW_DELAY: u64 = 2;

fn ledger_params() -> LedgerParams {
    LedgerParams {
        withdraw_delay: WITHDRAW_DELAY,
    }
}

fn params() -> StakingParams {
    StakingParams {
        min_stake: MIN_STAKE,
        epoch_length: 3600,
        reshare_timeout: 600,
        kick_slash_percent: 10,
    }
}

async fn embedded() -> Deployment {
    let dir = tempfile::tempdir().unwrap();
    let admin = EmbeddedStaking::create(
        &dir.path().join("chain.sqlite"),
        Address([0xad; 20]),
        &params(),
        &ledger_params(),
        SUPPLY,
    )
    .unwrap();
    // one value per account serves both contracts, as on the embedded chain
    let accounts: Vec<Arc<EmbeddedStaking>> = (1..=7u8)
        .map(|i| Arc::new(admin.as_caller(Address([i; 20]))))
        .collect();
    let admin = Arc::new(admin);
    Deployment {
        admin: admin.clone(),
        releases_admin: admin.clone(),
        payments_admin: admin,
        accounts: accounts
            .iter()
            .map(|a| a.clone() as Arc<dyn Staking>)
            .collect(),
        releases: accounts
            .iter()
            .map(|a| a.clone() as Arc<dyn ReleaseRegister>)
            .collect(),
        payments: accounts
            .into_iter()
            .map(|a| a as Arc<dyn Payments>)
            .collect(),
        _guard: Box::new(dir),
    }
}

/// The same contract on a fresh anvil: deployed by account 0 (the admin and faucet), seven
/// other accounts with ETH for gas and no tokens.
async fn anvil() -> Deployment {
    let chain = Anvil::start().await;
    let admin_key = account_key(0);
    chain.fund_account(&admin_key).await;
    let deployed = evm::deploy(&chain.url, &admin_key, &params(), &ledger_params(), SUPPLY)
        .await
        .unwrap();
    let admin = EvmStaking::connect(&chain.url, deployed.staking, &admin_key)
        .await
        .unwrap();
    let releases_admin =
        EvmReleases::connect(&chain.url, deployed.release_register, &admin_key).unwrap();
    let payments_admin = EvmPayments::connect(&chain.url, deployed.ledger, &admin_key).unwrap();
    let mut accounts: Vec<Arc<dyn Staking>> = Vec::new();
    let mut releases: Vec<Arc<dyn ReleaseRegister>> = Vec::new();
    let mut payments: Vec<Arc<dyn Payments>> = Vec::new();
    for i in 1..=7 {
        let key = account_key(i);
        chain.fund_account(&key).await;
        let account = EvmStaking::connect(&chain.url, deployed.staking, &key)
            .await
            .unwrap();
        accounts.push(Arc::new(account));
        let view = EvmReleases::connect(&chain.url, deployed.release_register, &key).unwrap();
        releases.push(Arc::new(view));
        payments.push(Arc::new(
            EvmPayments::connect(&chain.url, deployed.ledger, &key).unwrap(),
        ));
    }
    Deployment {
        admin: Arc::new(admin),
        accounts,
        releases_admin: Arc::new(releases_admin),
        releases,
        payments_admin: Arc::new(payments_admin),
        payments,
        _guard: Box::new(chain),
    }
}

fn join_request(i: u8) -> JoinRequest {
    JoinRequest {
        url: format!("http://127.0.0.1:{}", 7000 + i as u16),
        identity_key: [i; 32],
        seal_key: [i ^ 0x80; 32],
        dkg_key: {
            let mut k = vec![2u8; 33];
            k[1] = i;
            k
        },
    }
}

#[track_caller]
fn refused<T: std::fmt::Debug>(r: Result<T, ChainError>, reason: &str) {
    match r {
        Err(ChainError::Refused(got)) => assert_eq!(got, reason),
        other => panic!("expected the refusal {reason:?}, got {other:?}"),
    }
}

/// Funds `account` from the faucet and stakes `amount`.
async fn fund_and_stake(d: &Deployment, account: usize, amount: u128) {
    let who = d.accounts[account].caller();
    d.admin.transfer_token(who, amount).await.unwrap();
    d.accounts[account].stake(amount).await.unwrap();
}

/// Accounts `0..n` stake, join, and become epoch 1's set through a genesis handover.
async fn genesis(d: &Deployment, n: usize) -> [u8; 32] {
    for i in 0..n {
        fund_and_stake(d, i, MIN_STAKE).await;
        d.accounts[i]
            .request_to_join(&join_request(i as u8 + 1))
            .await
            .unwrap();
    }
    d.admin.lock_next_epoch().await.unwrap();
    let hash = root_keys_hash(b"bls root", b"ecdsa root");
    let t = d.admin.network().await.unwrap().next_threshold as usize;
    for a in &d.accounts[..t] {
        a.signal_ready(1, hash).await.unwrap();
    }
    d.admin.advance_epoch(hash).await.unwrap();
    hash
}

async fn joining_needs_enough_stake_once_and_a_fresh_identity(d: Deployment) {
    let a = &d.accounts[0];
    refused(a.stake(0).await, "zero amount");
    refused(a.stake(TOKEN).await, "transfer failed");
    fund_and_stake(&d, 0, MIN_STAKE - 1).await;
    refused(
        a.request_to_join(&join_request(1)).await,
        "stake below minimum",
    );
    fund_and_stake(&d, 0, 1).await;
    assert_eq!(d.admin.stake_of(a.caller()).await.unwrap(), MIN_STAKE);
    let mut bad = join_request(1);
    bad.dkg_key.pop();
    refused(a.request_to_join(&bad).await, "bad dkg key");
    a.request_to_join(&join_request(1)).await.unwrap();
    refused(
        a.request_to_join(&join_request(1)).await,
        "already a validator",
    );
    fund_and_stake(&d, 1, MIN_STAKE).await;
    refused(
        d.accounts[1].request_to_join(&join_request(1)).await,
        "identity key in use",
    );
    d.accounts[1]
        .request_to_join(&join_request(2))
        .await
        .unwrap();
    let net = d.admin.network().await.unwrap();
    assert_eq!(net.epoch, 0);
    assert!(net.current.is_empty());
    let ids: Vec<u32> = net.next.iter().map(|v| v.party_id).collect();
    assert_eq!(ids, [1, 2]);
    assert_eq!(net.next[0].staker, a.caller());
    assert_eq!(net.next[1].identity_key, [2; 32]);
    assert_eq!(net.next[1].url, "http://127.0.0.1:7002");
    // a pending joiner that leaves is out of the next set, and may withdraw
    d.accounts[1].request_to_leave().await.unwrap();
    assert_eq!(d.admin.network().await.unwrap().next.len(), 1);
    d.accounts[1].withdraw(MIN_STAKE).await.unwrap();
    assert_eq!(
        d.admin.token_balance(d.accounts[1].caller()).await.unwrap(),
        MIN_STAKE
    );
    refused(d.accounts[2].request_to_leave().await, "not a validator");
}

async fn the_genesis_handover_needs_the_admin_a_lock_and_enough_ready_signals(d: Deployment) {
    for i in 0..4 {
        fund_and_stake(&d, i, MIN_STAKE).await;
        d.accounts[i]
            .request_to_join(&join_request(i as u8 + 1))
            .await
            .unwrap();
    }
    refused(d.accounts[0].lock_next_epoch().await, "epoch not over");
    refused(d.admin.advance_epoch([1; 32]).await, "not locked");
    refused(d.accounts[0].signal_ready(1, [1; 32]).await, "not locked");
    d.admin.lock_next_epoch().await.unwrap();
    refused(d.admin.lock_next_epoch().await, "locked");
    let net = d.admin.network().await.unwrap();
    assert_eq!(net.state, EpochState::Locked);
    assert_eq!((net.next.len(), net.next_threshold), (4, 3));
    fund_and_stake(&d, 4, MIN_STAKE).await;
    refused(
        d.accounts[4].request_to_join(&join_request(5)).await,
        "locked",
    );
    refused(d.accounts[0].request_to_leave().await, "locked");
    refused(d.accounts[0].withdraw(1).await, "still a validator");

    let hash = root_keys_hash(b"bls", b"ecdsa");
    refused(d.accounts[4].signal_ready(1, hash).await, "not in next set");
    refused(d.accounts[0].signal_ready(2, hash).await, "wrong epoch");
    d.accounts[0].signal_ready(1, hash).await.unwrap();
    refused(
        d.accounts[0].signal_ready(1, hash).await,
        "already signalled",
    );
    assert!(d
        .admin
        .has_signalled(1, d.accounts[0].caller())
        .await
        .unwrap());
    assert!(!d
        .admin
        .has_signalled(1, d.accounts[1].caller())
        .await
        .unwrap());
    d.accounts[1].signal_ready(1, hash).await.unwrap();
    // one member votes for other keys: it does not count towards `hash`
    d.accounts[2].signal_ready(1, [9; 32]).await.unwrap();
    assert_eq!(d.admin.ready_count(1, hash).await.unwrap(), 2);
    refused(d.admin.advance_epoch(hash).await, "not enough ready");
    d.accounts[3].signal_ready(1, hash).await.unwrap();
    d.accounts[4].advance_epoch(hash).await.unwrap();

    let net = d.admin.network().await.unwrap();
    assert_eq!(
        (net.epoch, net.state, net.threshold),
        (1, EpochState::Active, 3)
    );
    assert_eq!(net.current.len(), 4);
    assert_eq!(net.root_keys_hash, hash);
    assert_eq!(net.next, net.current);
    refused(d.admin.advance_epoch(hash).await, "not locked");
}

async fn members_join_leave_and_are_kicked_at_the_next_epoch(d: Deployment) {
    let hash = genesis(&d, 4).await;
    let (a, b, c, dd, e) = (
        &d.accounts[0],
        &d.accounts[1],
        &d.accounts[2],
        &d.accounts[3],
        &d.accounts[4],
    );
    refused(
        a.request_to_join(&join_request(1)).await,
        "already a validator",
    );
    fund_and_stake(&d, 4, MIN_STAKE).await;
    e.request_to_join(&join_request(5)).await.unwrap();
    a.request_to_leave().await.unwrap();
    // a member that changes its mind stays
    b.request_to_leave().await.unwrap();
    b.request_to_join(&join_request(2)).await.unwrap();

    refused(e.vote_to_kick(dd.caller()).await, "not a current validator");
    refused(
        a.vote_to_kick(e.caller()).await,
        "target not a current validator",
    );
    a.vote_to_kick(dd.caller()).await.unwrap();
    refused(a.vote_to_kick(dd.caller()).await, "already voted");
    b.vote_to_kick(dd.caller()).await.unwrap();
    assert_eq!(d.admin.stake_of(dd.caller()).await.unwrap(), MIN_STAKE);
    c.vote_to_kick(dd.caller()).await.unwrap(); // the third of T = 3
    assert_eq!(
        d.admin.stake_of(dd.caller()).await.unwrap(),
        MIN_STAKE * 9 / 10
    );

    let net = d.admin.network().await.unwrap();
    let next: Vec<u32> = net.next.iter().map(|v| v.party_id).collect();
    assert_eq!(next, [2, 3, 5]);
    assert_eq!(net.next_threshold, 2);
    d.admin.lock_next_epoch().await.unwrap();
    refused(b.signal_ready(2, [7; 32]).await, "wrong key set");
    refused(a.signal_ready(2, hash).await, "not in next set");
    b.signal_ready(2, hash).await.unwrap();
    e.signal_ready(2, hash).await.unwrap();
    d.admin.advance_epoch(hash).await.unwrap();

    let net = d.admin.network().await.unwrap();
    assert_eq!(net.epoch, 2);
    let current: Vec<u32> = net.current.iter().map(|v| v.party_id).collect();
    assert_eq!(current, [2, 3, 5]);
    assert_eq!(net.threshold, 2);
    // those who left, by choice or by vote, take their (slashed) stake back
    refused(b.withdraw(1).await, "still a validator");
    refused(a.withdraw(MIN_STAKE + 1).await, "insufficient stake");
    a.withdraw(MIN_STAKE).await.unwrap();
    dd.withdraw(MIN_STAKE * 9 / 10).await.unwrap();
    assert_eq!(d.admin.token_balance(a.caller()).await.unwrap(), MIN_STAKE);
    assert_eq!(d.admin.stake_of(dd.caller()).await.unwrap(), 0);
    // a member that left may come back later with its old party id
    fund_and_stake(&d, 0, MIN_STAKE).await;
    a.request_to_join(&join_request(1)).await.unwrap();
    let next: Vec<u32> = d
        .admin
        .network()
        .await
        .unwrap()
        .next
        .iter()
        .map(|v| v.party_id)
        .collect();
    assert_eq!(next, [1, 2, 3, 5]);
}

async fn anyone_locks_after_the_epoch_and_abandons_after_the_timeout(d: Deployment) {
    let hash = genesis(&d, 3).await;
    refused(d.accounts[0].lock_next_epoch().await, "epoch not over");
    refused(d.accounts[0].set_epoch_length(0).await, "not admin");
    d.admin.set_epoch_length(0).await.unwrap();
    d.accounts[0].lock_next_epoch().await.unwrap();
    refused(
        d.accounts[0].abandon_reshare().await,
        "reshare not timed out",
    );
    d.accounts[0].signal_ready(2, hash).await.unwrap();
    d.admin.abandon_reshare().await.unwrap();
    let net = d.admin.network().await.unwrap();
    assert_eq!((net.epoch, net.state), (1, EpochState::Active));
    assert_eq!(net.next.len(), 3);
    // the signals of an abandoned handover do not count for the next one
    d.accounts[1].lock_next_epoch().await.unwrap();
    assert_eq!(d.admin.ready_count(2, hash).await.unwrap(), 0);
    d.accounts[0].signal_ready(2, hash).await.unwrap();
    d.accounts[1].signal_ready(2, hash).await.unwrap();
    d.accounts[2].advance_epoch(hash).await.unwrap();
    assert_eq!(d.admin.network().await.unwrap().epoch, 2);
    refused(d.admin.abandon_reshare().await, "not locked");
}

async fn a_kick_while_locked_waits_for_the_following_lock_and_identity_keys_follow_the_records(
    d: Deployment,
) {
    let hash = genesis(&d, 3).await;
    let (a, b, c, e, f) = (
        &d.accounts[0],
        &d.accounts[1],
        &d.accounts[2],
        &d.accounts[3],
        &d.accounts[4],
    );
    // kicked while locked: it stays in the locked set, is slashed once, and leaves at the next lock
    d.admin.lock_next_epoch().await.unwrap();
    a.vote_to_kick(c.caller()).await.unwrap();
    b.vote_to_kick(c.caller()).await.unwrap(); // T = 2
    c.vote_to_kick(c.caller()).await.unwrap(); // past the threshold: no second slash
    assert_eq!(
        d.admin.stake_of(c.caller()).await.unwrap(),
        MIN_STAKE * 9 / 10
    );
    let ids = |v: &[lit_node::chain::staking::Validator]| -> Vec<u32> {
        v.iter().map(|v| v.party_id).collect()
    };
    assert_eq!(ids(&d.admin.network().await.unwrap().next), [1, 2, 3]);
    refused(c.withdraw(1).await, "still a validator");
    a.signal_ready(2, hash).await.unwrap();
    b.signal_ready(2, hash).await.unwrap();
    c.advance_epoch(hash).await.unwrap();
    let net = d.admin.network().await.unwrap();
    assert_eq!(
        (ids(&net.current), ids(&net.next)),
        (vec![1, 2, 3], vec![1, 2])
    );
    d.admin.lock_next_epoch().await.unwrap();
    a.signal_ready(3, hash).await.unwrap();
    b.signal_ready(3, hash).await.unwrap();
    a.advance_epoch(hash).await.unwrap();
    let net = d.admin.network().await.unwrap();
    assert_eq!((net.epoch, ids(&net.current)), (3, vec![1, 2]));
    c.withdraw(MIN_STAKE * 9 / 10).await.unwrap();

    // an identity key is in use while another staker's record has it
    fund_and_stake(&d, 3, MIN_STAKE).await;
    fund_and_stake(&d, 4, MIN_STAKE).await;
    refused(
        e.request_to_join(&join_request(1)).await,
        "identity key in use",
    );
    a.request_to_leave().await.unwrap();
    let renewed = JoinRequest {
        identity_key: [0x11; 32],
        ..join_request(1)
    };
    a.request_to_join(&renewed).await.unwrap(); // stays, with a new identity key
    e.request_to_join(&join_request(1)).await.unwrap();
    refused(
        f.request_to_join(&JoinRequest {
            identity_key: [0x11; 32],
            ..join_request(5)
        })
        .await,
        "identity key in use",
    );
    let net = d.admin.network().await.unwrap();
    assert_eq!(ids(&net.next), [1, 2, 4]);
    assert_eq!(net.next[0].identity_key, [0x11; 32]);
    assert_eq!(net.next[2].identity_key, [1; 32]);
}

/// A release of measurement `[n; 48]` with a TCB floor of its own (`tcb`, `tcb + 1`, … per
/// component) and `flags`.
fn release(n: u8, tcb: u8, flags: u32) -> Release {
    Release {
        min_tcb: MinTcb {
            fmc: tcb,
            bootloader: tcb + 1,
            tee: tcb + 2,
            snp: tcb + 3,
            microcode: tcb + 4,
        },
        ..Release::new([n; 48])
    }
    .with_flags(flags)
}

async fn the_admin_alone_adds_each_release_once_and_revokes_it_for_good(d: Deployment) {
    let (admin, other) = (&d.releases_admin, &d.releases[0]);
    assert_eq!(admin.caller(), d.admin.caller());
    assert_eq!(other.caller(), d.accounts[0].caller());
    assert!(other.releases().await.unwrap().is_empty());
    let a = release(1, 1, 0);
    let b = release(2, 7, RELEASE_FLAG_DEBUG);
    let c = release(3, 0, RELEASE_FLAG_DEBUG | RELEASE_FLAG_VCEK_ONLY);
    refused(other.add_release(&a).await, "not admin");
    admin.add_release(&a).await.unwrap();
    // the `revoked` of an addition is ignored: a release is added active
    admin
        .add_release(&Release {
            revoked: true,
            ..b.clone()
        })
        .await
        .unwrap();
    admin.add_release(&c).await.unwrap();
    // everyone reads them back as added, in the order of addition
    let added = vec![a.clone(), b.clone(), c.clone()];
    assert_eq!(other.releases().await.unwrap(), added);
    assert_eq!(admin.releases().await.unwrap(), added);

    // the admin check comes first, then existence
    refused(
        admin.add_release(&Release::new(a.measurement)).await,
        "release exists",
    );
    refused(other.add_release(&a).await, "not admin");
    refused(other.revoke_release(&b.measurement).await, "not admin");
    refused(other.revoke_release(&[9; 48]).await, "not admin");
    refused(admin.revoke_release(&[9; 48]).await, "no such release");
    assert_eq!(admin.releases().await.unwrap(), added);

    // revocation is final: once only, and the measurement cannot come back
    admin.revoke_release(&b.measurement).await.unwrap();
    refused(
        admin.revoke_release(&b.measurement).await,
        "release revoked",
    );
    refused(other.revoke_release(&b.measurement).await, "not admin");
    refused(admin.add_release(&b).await, "release exists");
    refused(admin.add_release(&release(2, 9, 0)).await, "release exists");
    let revoked = Release {
        revoked: true,
        ..b.clone()
    };
    assert_eq!(
        other.releases().await.unwrap(),
        [a.clone(), revoked.clone(), c.clone()]
    );
    // the register only grows
    let d4 = release(4, 2, RELEASE_FLAG_VCEK_ONLY);
    admin.add_release(&d4).await.unwrap();
    assert_eq!(other.releases().await.unwrap(), [a, revoked, c, d4]);
}

const PRICES: Prices = Prices([10, 20, 30, 1, 2]);

fn charge(user: Address, payer: Address, units: [u64; 5], amount: u128) -> Charge {
    Charge {
        user,
        payer,
        units: Units(units),
        amount,
        requests: [units[0] as u8; 32],
    }
}

/// Gives account `i` `tokens` base units from the faucet and deposits `deposit` of them.
async fn fund_and_deposit(d: &Deployment, i: usize, tokens: u128, deposit: u128) {
    d.admin
        .transfer_token(d.accounts[i].caller(), tokens)
        .await
        .unwrap();
    d.payments[i].deposit(deposit).await.unwrap();
}

async fn deposits_withdraw_after_the_delay_and_only_the_admin_prices(d: Deployment) {
    let user = &d.payments[4];
    let me = user.caller();
    refused(user.deposit(0).await, reasons::ZERO_AMOUNT);
    refused(user.deposit(TOKEN).await, reasons::TRANSFER_FAILED);
    fund_and_deposit(&d, 4, 10 * TOKEN, 4 * TOKEN).await;
    assert_eq!(user.account(me).await.unwrap().balance, 4 * TOKEN);
    assert_eq!(d.accounts[4].token_balance(me).await.unwrap(), 6 * TOKEN);

    refused(user.request_withdraw(0).await, reasons::ZERO_AMOUNT);
    refused(
        user.request_withdraw(5 * TOKEN).await,
        reasons::INSUFFICIENT_BALANCE,
    );
    refused(user.withdraw().await, reasons::NO_WITHDRAWAL);
    user.request_withdraw(TOKEN).await.unwrap();
    let account = user.account(me).await.unwrap();
    assert_eq!(
        (account.balance, account.withdrawal, account.spendable()),
        (4 * TOKEN, TOKEN, 3 * TOKEN)
    );
    assert!(account.withdrawal_requested_at > 0);
    refused(user.withdraw().await, reasons::DELAY_NOT_OVER);

    // prices: the admin's alone, the same for every reader
    assert!(user.prices().await.unwrap().is_free());
    refused(user.set_prices(&PRICES).await, reasons::NOT_ADMIN);
    d.payments_admin.set_prices(&PRICES).await.unwrap();
    assert_eq!(d.payments[0].prices().await.unwrap(), PRICES);
    assert_eq!(user.withdraw_delay().await.unwrap(), WITHDRAW_DELAY);

    // once the delay has passed (a chain's clock may run ahead of this one: retry for a while)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match user.withdraw().await {
            Ok(()) => break,
            Err(ChainError::Refused(r))
                if r == reasons::DELAY_NOT_OVER && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let account = user.account(me).await.unwrap();
    assert_eq!((account.balance, account.withdrawal), (3 * TOKEN, 0));
    assert_eq!(d.accounts[4].token_balance(me).await.unwrap(), 7 * TOKEN);
    refused(user.withdraw().await, reasons::NO_WITHDRAWAL);
}

async fn members_charge_numbered_batches_within_prices_and_balances(d: Deployment) {
    genesis(&d, 3).await;
    d.payments_admin.set_prices(&PRICES).await.unwrap();
    let (node0, node1, node2) = (&d.payments[0], &d.payments[1], &d.payments[2]);
    let u = d.payments[4].caller();
    fund_and_deposit(&d, 4, 1000, 500).await;

    // only current members charge, each batch once and in order
    refused(d.payments[5].charge(1, &[]).await, reasons::NOT_A_VALIDATOR);
    refused(node0.charge(2, &[]).await, reasons::BATCH_OUT_OF_ORDER);
    refused(node0.charge(0, &[]).await, reasons::BATCH_SETTLED);
    // above its units at the prices: the whole batch is refused, nothing charged
    let fair = charge(u, u, [2, 1, 0, 0, 0], 40);
    refused(
        node0
            .charge(1, &[fair.clone(), charge(u, u, [1, 0, 0, 0, 0], 11)])
            .await,
        reasons::ABOVE_PRICES,
    );
    assert_eq!(node0.settled_batch(node0.caller()).await.unwrap(), 0);
    assert_eq!(node0.account(u).await.unwrap().balance, 500);

    node0.charge(1, std::slice::from_ref(&fair)).await.unwrap();
    assert_eq!(node0.account(u).await.unwrap().balance, 460);
    assert_eq!(node0.rewards(node0.caller()).await.unwrap(), 40);
    assert_eq!(node0.settled_batch(node0.caller()).await.unwrap(), 1);
    // the same batch again (a node that crashed before recording it): charged once
    refused(node0.charge(1, &[fair]).await, reasons::BATCH_SETTLED);
    assert_eq!(node0.account(u).await.unwrap().balance, 460);

    // each node numbers its own batches
    node1
        .charge(1, &[charge(u, u, [3, 0, 0, 0, 0], 30)])
        .await
        .unwrap();
    assert_eq!(node1.account(u).await.unwrap().balance, 430);
    // more than the balance: the balance goes to zero, never below, the rest is the node's loss
    node0
        .charge(2, &[charge(u, u, [0, 0, 1, 500, 0], 530)])
        .await
        .unwrap();
    assert_eq!(node0.account(u).await.unwrap().balance, 0);
    assert_eq!(node0.rewards(node0.caller()).await.unwrap(), 470);
    // an empty batch is a batch
    node2.charge(1, &[]).await.unwrap();
    assert_eq!(node2.settled_batch(node2.caller()).await.unwrap(), 1);

    // rewards: to the node that served
    let before = d.accounts[0].token_balance(node0.caller()).await.unwrap();
    node0.claim_rewards().await.unwrap();
    assert_eq!(
        d.accounts[0].token_balance(node0.caller()).await.unwrap(),
        before + 470
    );
    assert_eq!(node0.rewards(node0.caller()).await.unwrap(), 0);
    refused(node0.claim_rewards().await, reasons::NO_REWARDS);
    refused(node2.claim_rewards().await, reasons::NO_REWARDS);
    assert_eq!(node1.rewards(node1.caller()).await.unwrap(), 30);
}

async fn a_payer_delegates_within_a_total_and_the_chain_counts_requests(d: Deployment) {
    genesis(&d, 3).await;
    d.payments_admin.set_prices(&PRICES).await.unwrap();
    let (node0, node1) = (&d.payments[0], &d.payments[1]);
    let payer = &d.payments[4];
    let (p, u) = (payer.caller(), d.payments[5].caller());
    fund_and_deposit(&d, 4, 100, 100).await;

    refused(payer.delegate(u, 50, 3, 0).await, reasons::ZERO_PERIOD);
    // no delegation: nothing is charged to the payer
    node0
        .charge(1, &[charge(u, p, [1, 0, 0, 0, 0], 10)])
        .await
        .unwrap();
    assert_eq!(payer.account(p).await.unwrap().balance, 100);
    assert_eq!(node0.rewards(node0.caller()).await.unwrap(), 0);

    payer.delegate(u, 50, 3, 3600).await.unwrap();
    let got = node0.delegation(p, u).await.unwrap();
    assert_eq!(
        (
            got.total_limit,
            got.spent,
            got.requests_per_period,
            got.period
        ),
        (50, 0, 3, 3600)
    );
    assert!(got.exists() && got.period_start > 0 && got.period_requests == 0);
    node0
        .charge(2, &[charge(u, p, [2, 0, 0, 0, 0], 20)])
        .await
        .unwrap();
    // beyond the total: charged up to it
    node1
        .charge(1, &[charge(u, p, [0, 0, 1, 5, 0], 35)])
        .await
        .unwrap();
    let got = node0.delegation(p, u).await.unwrap();
    assert_eq!((got.spent, got.period_requests), (50, 3));
    assert_eq!(payer.account(p).await.unwrap().balance, 50);
    // at the total: nothing more, though the requests still count
    node0
        .charge(3, &[charge(u, p, [1, 0, 0, 0, 0], 10)])
        .await
        .unwrap();
    let got = node0.delegation(p, u).await.unwrap();
    assert_eq!((got.spent, got.period_requests), (50, 4));
    assert_eq!(payer.account(p).await.unwrap().balance, 50);
    // the user's own deposit was never touched
    assert_eq!(node0.account(u).await.unwrap().balance, 0);
    assert_eq!(
        node0.rewards(node0.caller()).await.unwrap() + node1.rewards(node1.caller()).await.unwrap(),
        50
    );

    // a new delegation starts from zero; a zero total removes it
    payer.delegate(u, 10, 0, 0).await.unwrap();
    let got = node0.delegation(p, u).await.unwrap();
    assert_eq!(
        (got.total_limit, got.spent, got.requests_per_period),
        (10, 0, 0)
    );
    payer.delegate(u, 0, 0, 0).await.unwrap();
    assert!(!node0.delegation(p, u).await.unwrap().exists());
}

/// One test per case and backend.
macro_rules! conformance {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::$backend().await).await;
                }
            )*
        }
    };
}

conformance!(embedded:
    joining_needs_enough_stake_once_and_a_fresh_identity,
    the_genesis_handover_needs_the_admin_a_lock_and_enough_ready_signals,
    members_join_leave_and_are_kicked_at_the_next_epoch,
    anyone_locks_after_the_epoch_and_abandons_after_the_timeout,
    a_kick_while_locked_waits_for_the_following_lock_and_identity_keys_follow_the_records,
    the_admin_alone_adds_each_release_once_and_revokes_it_for_good,
    deposits_withdraw_after_the_delay_and_only_the_admin_prices,
    members_charge_numbered_batches_within_prices_and_balances,
    a_payer_delegates_within_a_total_and_the_chain_counts_requests,
);

conformance!(anvil:
    joining_needs_enough_stake_once_and_a_fresh_identity,
    the_genesis_handover_needs_the_admin_a_lock_and_enough_ready_signals,
    members_join_leave_and_are_kicked_at_the_next_epoch,
    anyone_locks_after_the_epoch_and_abandons_after_the_timeout,
    a_kick_while_locked_waits_for_the_following_lock_and_identity_keys_follow_the_records,
    the_admin_alone_adds_each_release_once_and_revokes_it_for_good,
    deposits_withdraw_after_the_delay_and_only_the_admin_prices,
    members_charge_numbered_batches_within_prices_and_balances,
    a_payer_delegates_within_a_total_and_the_chain_counts_requests,
);

/// The release register on anvil, beyond what the embedded chain can express: the contracts are
/// where `deployment_of` says, a measurement must be 48 bytes, and a view without a key reads
/// the register but sends nothing.
#[tokio::test]
async fn release_register_contract_checks_lengths_and_a_read_only_view_sends_nothing() {
    use alloy_primitives::Bytes;
    use lit_node::chain::evm::bindings::ReleaseRegister as Contract;
    use lit_node::chain::evm::{to_evm, transact, view};

    let chain = Anvil::start().await;
    let admin_key = account_key(0);
    let admin = chain.fund_account(&admin_key).await;
    let deployed = evm::deploy(&chain.url, &admin_key, &params(), &ledger_params(), SUPPLY)
        .await
        .unwrap();
    assert_eq!(deployed, evm::deployment_of(admin));
    assert!(evm::has_code(&chain.url, deployed.release_register)
        .await
        .unwrap());

    let (provider, _) = evm::connect(&chain.url, &admin_key).unwrap();
    let contract = Contract::new(to_evm(deployed.release_register), provider);
    assert_eq!(view(contract.admin()).await.unwrap(), to_evm(admin));
    let tcb = Contract::Tcb {
        fmc: 0,
        bootloader: 1,
        tee: 2,
        snp: 3,
        microcode: 4,
    };
    for len in [0, 47, 49, 64] {
        refused(
            transact(contract.addRelease(Bytes::from(vec![1u8; len]), tcb.clone(), 0)).await,
            "measurement must be 48 bytes",
        );
    }
    let added = release(1, 0, RELEASE_FLAG_VCEK_ONLY);
    let as_admin = EvmReleases::connect(&chain.url, deployed.release_register, &admin_key).unwrap();
    as_admin.add_release(&added).await.unwrap();
    let stored = view(contract.releases()).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].addedAt > 0 && stored[0].revokedAt == 0);

    let read_only = EvmReleases::open(&chain.url, deployed.release_register).unwrap();
    assert_eq!(read_only.address(), deployed.release_register);
    assert_eq!(read_only.admin().await.unwrap(), admin);
    assert_eq!(read_only.releases().await.unwrap(), vec![added.clone()]);
    for sent in [
        read_only.add_release(&release(2, 0, 0)).await,
        read_only.revoke_release(&added.measurement).await,
    ] {
        assert!(
            matches!(&sent, Err(ChainError::Backend(m)) if m.contains("read-only")),
            "{sent:?}"
        );
    }
    as_admin.revoke_release(&added.measurement).await.unwrap();
    let stored = view(contract.releases()).await.unwrap();
    assert!(stored[0].revoked && stored[0].revokedAt >= stored[0].addedAt);
    assert!(read_only.releases().await.unwrap()[0].revoked);
}

/// The PKP registry on anvil, through its alloy bindings: a PKP's record is what its minter
/// sent, only the token's owner changes its permissions, and the permissions stay with the
/// token when it changes hands.
#[tokio::test]
async fn pkp_registry_permissions_belong_to_the_owner_and_follow_the_token() {
    use alloy_primitives::{keccak256, Bytes, FixedBytes, U256};
    use lit_node::chain::evm::{to_evm, transact, view};

    let chain = Anvil::start().await;
    let (alice_key, bob_key) = (account_key(0), account_key(1));
    let alice = to_evm(chain.fund_account(&alice_key).await);
    let bob = to_evm(chain.fund_account(&bob_key).await);
    let carol = to_evm(Address([0xca; 20]));
    let deployed = evm::deploy(&chain.url, &alice_key, &params(), &ledger_params(), SUPPLY)
        .await
        .unwrap();
    let registry = |key| {
        let (provider, _) = evm::connect(&chain.url, key).unwrap();
        PkpRegistry::new(to_evm(deployed.pkp_registry), provider)
    };
    let (as_alice, as_bob) = (registry(&alice_key), registry(&bob_key));

    // mint: the record is the minter's, the token id the hash of the key
    let point = account_key(100).verifying_key().to_encoded_point(false);
    let public_key = Bytes::copy_from_slice(&point.as_bytes()[1..]);
    let salt = FixedBytes([7; 32]);
    refused(
        transact(as_alice.mint(salt, Bytes::from(point.as_bytes().to_vec()))).await,
        "bad public key",
    );
    let id = as_alice
        .mint(salt, public_key.clone())
        .call()
        .await
        .unwrap();
    transact(as_alice.mint(salt, public_key.clone()))
        .await
        .unwrap();
    assert_eq!(id, U256::from_be_bytes(keccak256(&public_key).0));
    refused(
        transact(as_bob.mint(salt, public_key.clone())).await,
        "exists",
    );
    let record = view(as_bob.pkp(id)).await.unwrap();
    assert_eq!(record.owner, alice);
    assert_eq!(
        record.keyId,
        keccak256([alice.as_slice(), salt.as_slice()].concat())
    );
    assert_eq!(record.publicKey, public_key);
    assert_eq!(view(as_bob.tokensOf(alice)).await.unwrap(), [id]);
    refused(view(as_bob.pkp(id + U256::from(1))).await, "no such PKP");

    // the owner grants: an address, an auth method (scopes replaced when granted again), an action
    let (oidc, user) = (0x4f49_4443, Bytes::from_static(b"sub:aud hash"));
    let action = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG".to_string();
    transact(as_alice.addPermittedAddress(id, carol))
        .await
        .unwrap();
    transact(as_alice.addPermittedAuthMethod(id, oidc, user.clone(), 1))
        .await
        .unwrap();
    transact(as_alice.addPermittedAuthMethod(id, oidc, user.clone(), 3))
        .await
        .unwrap();
    transact(as_alice.addPermittedAction(id, action.clone()))
        .await
        .unwrap();
    refused(
        transact(as_alice.addPermittedAuthMethod(id, oidc, user.clone(), 0)).await,
        "no scopes",
    );
    refused(
        transact(as_alice.addPermittedAddress(id + U256::from(1), carol)).await,
        "no such PKP",
    );

    // nobody else changes anything
    let not_owner = |r: Result<(), ChainError>| refused(r, "not owner");
    not_owner(transact(as_bob.addPermittedAddress(id, bob)).await);
    not_owner(transact(as_bob.removePermittedAddress(id, carol)).await);
    not_owner(transact(as_bob.addPermittedAuthMethod(id, 1, Bytes::new(), 1)).await);
    not_owner(transact(as_bob.removePermittedAuthMethod(id, oidc, user.clone())).await);
    not_owner(transact(as_bob.addPermittedAction(id, "Qm".into())).await);
    not_owner(transact(as_bob.removePermittedAction(id, action.clone())).await);

    let granted = (
        vec![carol],
        vec![(oidc, user.clone(), 3u8)],
        vec![action.clone()],
    );
    assert_eq!(permissions(&as_bob, id).await, granted);

    // the token changes hands with its permissions; the new owner, alone, changes them
    refused(
        transact(as_bob.transferFrom(alice, bob, id)).await,
        "not owner nor approved",
    );
    transact(as_alice.transferFrom(alice, bob, id))
        .await
        .unwrap();
    assert_eq!(view(as_alice.ownerOf(id)).await.unwrap(), bob);
    assert!(view(as_alice.tokensOf(alice)).await.unwrap().is_empty());
    assert_eq!(view(as_alice.tokensOf(bob)).await.unwrap(), [id]);
    assert_eq!(permissions(&as_alice, id).await, granted);
    not_owner(transact(as_alice.removePermittedAddress(id, carol)).await);
    transact(as_bob.removePermittedAddress(id, carol))
        .await
        .unwrap();
    transact(as_bob.removePermittedAuthMethod(id, oidc, user.clone()))
        .await
        .unwrap();
    assert_eq!(
        permissions(&as_alice, id).await,
        (vec![], vec![], vec![action.clone()])
    );
}

/// A PKP's permissions as plain tuples: addresses, auth methods (type, id, scopes), actions.
async fn permissions(
    registry: &PkpRegistry::PkpRegistryInstance<alloy_provider::DynProvider>,
    id: alloy_primitives::U256,
) -> Permissions {
    let p = evm::view(registry.getPermissions(id)).await.unwrap();
    let methods = p
        .methods
        .into_iter()
        .map(|m| (m.methodType, m.id, m.scopes))
        .collect();
    (p.addresses, methods, p.actions)
}

type Permissions = (
    Vec<alloy_primitives::Address>,
    Vec<(u32, alloy_primitives::Bytes, u8)>,
    Vec<String>,
);

/// The two PKP registries read the same PKP the same way: the devnet file (changed through
/// owner approvals) and `PkpRegistry` on anvil (changed by the owner's transactions, which
/// the EVM registry refuses to send for anyone).
#[tokio::test(flavor = "multi_thread")]
async fn both_pkp_registries_read_a_pkp_alike_and_the_chain_one_writes_nothing() {
    use alloy_primitives::{Bytes, FixedBytes};
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    use lit_api::v1::{PermittedAuthMethod, PkpScope, AUTH_METHOD_TYPE_OIDC};
    use lit_node::chain::evm::{to_evm, transact};
    use lit_node::chain::evm_registry::EvmRegistry;
    use lit_node::chain::{Approval, Permissions, PkpRecord, PkpRegistry as _, SqliteRegistry};

    let chain = Anvil::start().await;
    let owner_key = account_key(0);
    let owner = chain.fund_account(&owner_key).await;
    let deployed = evm::deploy(&chain.url, &owner_key, &params(), &ledger_params(), SUPPLY)
        .await
        .unwrap();
    let (provider, _) = evm::connect(&chain.url, &owner_key).unwrap();
    let contract = PkpRegistry::new(to_evm(deployed.pkp_registry), provider);

    // the PKP: any key (the registries do not check keys; the nodes do)
    let public = *account_key(100).verifying_key().as_affine();
    let point = public.to_encoded_point(false);
    let salt = [7u8; 32];
    let key_id = lit_client::chain::key_id(&owner, &salt);
    let token_id = lit_node::service::pkp::token_id(&public);
    let method = PermittedAuthMethod {
        method_type: AUTH_METHOD_TYPE_OIDC,
        id: "abcd01".into(),
        scopes: [PkpScope::SignAnything, PkpScope::PersonalSign].into(),
    };
    let expected = PkpRecord {
        token_id: lit_api::Bytes32(token_id),
        key_id: lit_api::Bytes32(key_id),
        public_key: lit_api::Bytes(public.to_encoded_point(true).as_bytes().to_vec()),
        eth_address: Address::from_point(&public).to_checksum(),
        owner: owner.to_checksum(),
        permissions: Permissions {
            addresses: [Address([0xb0; 20]).to_checksum()].into(),
            auth_methods: vec![method.clone()],
            actions: ["QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG".to_string()].into(),
        },
    };

    // on the chain, by the owner's transactions
    transact(contract.mint(
        FixedBytes(salt),
        Bytes::copy_from_slice(&point.as_bytes()[1..]),
    ))
    .await
    .unwrap();
    let token = alloy_primitives::U256::from_be_bytes(token_id);
    transact(contract.addPermittedAddress(token, to_evm(Address([0xb0; 20]))))
        .await
        .unwrap();
    transact(contract.addPermittedAuthMethod(
        token,
        method.method_type,
        Bytes::from(hex::decode(&method.id).unwrap()),
        3,
    ))
    .await
    .unwrap();
    for cid in &expected.permissions.actions {
        transact(contract.addPermittedAction(token, cid.clone()))
            .await
            .unwrap();
    }

    // in the devnet file, through approvals
    let dir = tempfile::tempdir().unwrap();
    let file = SqliteRegistry::open(&dir.path().join("registry.sqlite")).unwrap();
    let approval = move |n: u8| Approval {
        signer: owner.to_checksum(),
        nonce: [n; 32],
        expires: i64::MAX / 2,
    };
    let bare = PkpRecord {
        permissions: Permissions::default(),
        ..expected.clone()
    };
    file.insert(&bare, &approval(1), 10).unwrap();
    let perms = expected.permissions.clone();
    file.update_permissions(&hex::encode(token_id), &approval(2), &mut |p| {
        *p = perms.clone()
    })
    .unwrap();

    let on_chain = Arc::new(EvmRegistry::open(&chain.url, deployed.pkp_registry).unwrap());
    let read = {
        let on_chain = on_chain.clone();
        tokio::task::spawn_blocking(move || {
            let id = hex::encode(token_id);
            (
                on_chain.get(&id).unwrap(),
                on_chain.by_owner(&owner).unwrap(),
                on_chain.by_owner(&Address([0xee; 20])).unwrap(),
                on_chain.get(&hex::encode([0x55u8; 32])).unwrap(),
                on_chain.insert(&bare, &approval(3), 10),
                on_chain.update_permissions(&id, &approval(4), &mut |_| {}),
            )
        })
        .await
        .unwrap()
    };
    let id = hex::encode(token_id);
    assert_eq!(read.0.as_ref(), Some(&expected));
    assert_eq!(file.get(&id).unwrap().as_ref(), Some(&expected));
    assert_eq!(read.1, vec![expected.clone()]);
    assert_eq!(file.by_owner(&owner).unwrap(), vec![expected]);
    assert!(read.2.is_empty() && file.by_owner(&Address([0xee; 20])).unwrap().is_empty());
    assert!(read.3.is_none() && file.get(&hex::encode([0x55u8; 32])).unwrap().is_none());
    let contract = deployed.pkp_registry.to_checksum();
    for refused in [read.4.map(|_| ()), read.5.map(|_| ())] {
        assert!(
            matches!(&refused, Err(ChainError::OwnerTransactions { contract: c }) if *c == contract),
            "{refused:?}"
        );
    }
}
