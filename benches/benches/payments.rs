//! What charging costs on the decrypt and PKP-sign paths: two 5-node devnets of real node
//! processes on the embedded chain in the same run, one free (every price 0: the node quotes
//! nothing) and one that charges (each node reads the payer's balance from the ledger, checks
//! it against its unsettled debits and records a debit before it answers), the same requests
//! against each, alternating so that the machine's noise falls on both alike.
//!
//! A PKP signature's end-to-end latency on this machine is dominated by the presignature pools
//! refilling behind it, so the node's metering work on that path (the same quote and record as
//! for a decryption) is also measured alone, in process, on an embedded chain
//! (`payments/meter_quote_and_record`).
//!
//! An empty Lit Action run by a wallet's session is compared the same way (the charging network
//! quotes its base price and budget before the run and records its milliseconds after).
//!
//! `cargo bench -p lit-benches --bench payments`
//! (`LIT_BENCH_SAMPLES`, default 300, sets the decryptions per network; `LIT_BENCH_SIGN_SAMPLES`,
//! default 16, the signatures, which come from the presignature pools filled first;
//! `LIT_BENCH_ACTION_SAMPLES`, default 100, the actions.)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lit_api::v1::{PkpInfo, ToSign};
use lit_api::Bytes32;
use lit_client::{Bootstrap, ConnectOptions, EncryptedData, LitClient, Signer, Wallet};
use lit_node::auth::session::{CapabilitySigner, VerifiedSession};
use lit_node::chain::payments::{Prices, Product, Units};
use lit_node::devnet::{DevnetStaking, LayoutOptions};
use lit_node::service::meter::Meter;
use serde_json::json;

#[path = "support/devnet.rs"]
mod support;

use support::{alternating, compared, env_or, refilled};

/// Presignatures per rotation group: 5 groups.
const POOL: usize = 4;

/// The charging network's prices: a decryption share 7, a PKP signature share 11, an action 5
/// to start, 1 per millisecond and 1 per host call.
const PRICES: [u128; 5] = [7, 11, 5, 1, 1];

/// The signed maximum per request and node: an action's 30 s pass under it.
const MAX_PRICE: u128 = 100_000;

struct Side {
    client: LitClient,
    encrypted: EncryptedData,
    pkp: PkpInfo,
    net: lit_node::testnet::TestNet,
}

async fn side(paid: bool, alice: &Wallet) -> Side {
    let options = LayoutOptions {
        staking: Some(DevnetStaking::default()),
        presignature_pool: Some(POOL),
        ..LayoutOptions::default()
    };
    let mut net = support::start(5, &options, "info").await;
    net.devnet()
        .wait_epoch(1, Duration::from_secs(120))
        .await
        .unwrap();
    if paid {
        net.devnet()
            .payments_admin()
            .await
            .unwrap()
            .set_prices(&Prices(PRICES))
            .await
            .unwrap();
        let faucet = net.devnet().staking_admin().await.unwrap();
        faucet
            .transfer_token(alice.address(), 1_000_000)
            .await
            .unwrap();
        let ledger = net.devnet().payments_as(alice.signing_key()).await.unwrap();
        ledger.deposit(1_000_000).await.unwrap();
    }
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet().with_max_price(MAX_PRICE),
    )
    .await
    .unwrap();
    let conditions = json!([{
        "conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
        "chain": "ethereum", "method": "", "parameters": [":userAddress"],
        "returnValueTest": {"comparator": "=", "value": alice.address().to_checksum()}
    }]);
    let encrypted = client.encrypt(&conditions, &[7u8; 32]).unwrap();
    let pkp = client.mint_pkp(alice).await.unwrap();
    Side {
        client,
        encrypted,
        pkp,
        net,
    }
}

fn main() {
    let Some((rt, mut criterion)) = support::runtime_and_criterion() else {
        return;
    };
    // the node's metering work per request, alone
    let dir = tempfile::tempdir().unwrap();
    let meter = rt.block_on(meter_alone(dir.path()));
    {
        let mut g = criterion.benchmark_group("payments");
        let mut n = 0u64;
        g.bench_function("meter_quote_and_record", |b| {
            b.iter(|| {
                n += 1;
                rt.block_on(quote_and_record(&meter, n))
            })
        });
        g.finish();
    }
    let t = Instant::now();
    let runs = 2000u64;
    for i in 0..runs {
        rt.block_on(quote_and_record(&meter, 1_000_000 + i));
    }
    let meter_cost = t.elapsed() / runs as u32;
    let alice = Wallet::random();
    let free = rt.block_on(side(false, &alice));
    let paid = rt.block_on(side(true, &alice));
    // the nodes read the prices at their next settlement (every 2 s on a devnet)
    std::thread::sleep(Duration::from_secs(3));
    let decrypt = |s: &Side| rt.block_on(s.client.decrypt(&s.encrypted, &alice)).unwrap();
    // the paid network charges: a refused request would fail here
    decrypt(&paid);

    {
        let mut g = criterion.benchmark_group("payments");
        g.bench_function("decrypt_e2e_n5_t4/free", |b| b.iter(|| decrypt(&free)));
        g.bench_function("decrypt_e2e_n5_t4/charged", |b| b.iter(|| decrypt(&paid)));
        g.finish();
    }

    let samples = env_or("LIT_BENCH_SAMPLES", 300) as usize;
    let (with, without) = alternating(samples, || drop(decrypt(&paid)), || drop(decrypt(&free)));
    report("decrypt_e2e", samples, &with, &without);

    // PKP signatures from full pools on both networks
    let full = 5 * POOL;
    let t = Instant::now();
    while (refilled(&free.net) < full || refilled(&paid.net) < full)
        && t.elapsed() < Duration::from_secs(300)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let sign_samples = env_or("LIT_BENCH_SIGN_SAMPLES", 16) as usize;
    let sign = |s: &Side, i: usize| {
        let mut d = [0u8; 32];
        d[..8].copy_from_slice(&(i as u64).to_be_bytes());
        rt.block_on(
            s.client
                .pkp_sign(&s.pkp, ToSign::Digest(Bytes32(d)), Signer::Wallet(&alice)),
        )
        .unwrap();
    };
    let (mut i, mut j) = (0, 0);
    let (with, without) = alternating(
        sign_samples,
        || {
            i += 1;
            sign(&paid, i)
        },
        || {
            j += 1;
            sign(&free, j)
        },
    );
    report("pkp_sign_e2e (pooled)", sign_samples, &with, &without);
    println!(
        "payments/meter_quote_and_record: {:.1} µs per request = {:.2}% of the free PKP \
         signature's p50 in this run ({})",
        meter_cost.as_secs_f64() * 1e6,
        meter_cost.as_secs_f64() / support::percentile(&without, 0.5).as_secs_f64() * 100.0,
        support::ms2(support::percentile(&without, 0.5))
    );

    // an empty Lit Action run by the wallet's session: quoted, run within its budget, recorded
    let action_samples = env_or("LIT_BENCH_ACTION_SAMPLES", 100) as usize;
    let execute = |s: &Side| {
        rt.block_on(
            s.client.execute_js(
                lit_client::ExecuteJs::code("Lit.Actions.setResponse({response: \"ok\"})")
                    .wallet(&alice),
            ),
        )
        .unwrap();
    };
    let (with, without) = alternating(action_samples, || execute(&paid), || execute(&free));
    report(
        "execute_e2e (empty action)",
        action_samples,
        &with,
        &without,
    );
    criterion.final_summary();
}

fn report(what: &str, samples: usize, with: &[Duration], without: &[Duration]) {
    println!(
        "payments/{what} over {samples} alternating requests: {}",
        compared("charged", with, "free", without, "metering overhead")
    );
}

/// A meter on a fresh embedded chain whose ledger charges, with one funded user.
async fn meter_alone(dir: &std::path::Path) -> Meter {
    use lit_node::chain::embedded::EmbeddedStaking;
    use lit_node::chain::payments::{LedgerParams, Payments};
    use lit_node::chain::staking::{Staking, StakingParams};
    let admin = EmbeddedStaking::create(
        &dir.join("chain.sqlite"),
        lit_crypto::eth::Address([0xad; 20]),
        &StakingParams::default(),
        &LedgerParams::default(),
        u128::MAX / 2,
    )
    .unwrap();
    admin.set_prices(&Prices([7, 11, 0, 0, 0])).await.unwrap();
    Staking::transfer_token(&admin, USER, u128::MAX / 4)
        .await
        .unwrap();
    Payments::deposit(&admin.as_caller(USER), u128::MAX / 4)
        .await
        .unwrap();
    let node = std::sync::Arc::new(admin.as_caller(lit_crypto::eth::Address([1; 20])));
    Meter::open(&dir.join("debits.sqlite"), node).await.unwrap()
}

const USER: lit_crypto::eth::Address = lit_crypto::eth::Address([5; 20]);

/// One PKP signature's quote and debit, as the node makes them.
async fn quote_and_record(meter: &Meter, n: u64) {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&n.to_be_bytes());
    let session = VerifiedSession {
        session_key: ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key(),
        authorized_address: USER,
        authorized_by: CapabilitySigner::Wallet,
        expires_at: time::OffsetDateTime::now_utc(),
        requests: vec![],
        grants: vec![],
        network_party: None,
        max_price: 20,
        payer: USER,
        request_id: id,
    };
    let quote = meter
        .quote(&session, Units::one(Product::PkpSign))
        .await
        .unwrap()
        .unwrap();
    meter.record(&quote).unwrap();
}
