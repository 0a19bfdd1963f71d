//! What attested TLS costs on the decrypt path: two 5-node devnets of real node processes in
//! the same run, one serving attested TLS (the default) and one serving plain HTTP
//! (`insecure_plaintext_http`, benchmarks only), the same decryption against each, with the
//! requests alternating between the two so that the machine's noise falls on both alike.
//!
//! `cargo bench -p lit-benches --bench tls`
//! (`LIT_BENCH_SAMPLES`, default 300, sets the number of decryptions per network.)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use lit_client::{Bootstrap, ConnectOptions, EncryptedData, LitClient, Wallet};
use lit_node::devnet::LayoutOptions;
use serde_json::json;

#[path = "support/devnet.rs"]
mod support;

use support::{alternating, compared, env_or};

struct Side {
    client: LitClient,
    encrypted: EncryptedData,
    _net: lit_node::testnet::TestNet,
}

async fn side(plaintext: bool, alice: &Wallet) -> Side {
    let options = LayoutOptions {
        plaintext_http: plaintext,
        ..LayoutOptions::default()
    };
    let net = support::start(5, &options, "warn").await;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet().with_plaintext_http(plaintext),
    )
    .await
    .unwrap();
    let conditions = json!([{
        "conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
        "chain": "ethereum", "method": "", "parameters": [":userAddress"],
        "returnValueTest": {"comparator": "=", "value": alice.address().to_checksum()}
    }]);
    let encrypted = client.encrypt(&conditions, &[7u8; 32]).unwrap();
    Side {
        client,
        encrypted,
        _net: net,
    }
}

fn main() {
    let Some((rt, mut criterion)) = support::runtime_and_criterion() else {
        return;
    };
    let alice = Wallet::random();
    let tls = rt.block_on(side(false, &alice));
    let plain = rt.block_on(side(true, &alice));
    let decrypt = |s: &Side| rt.block_on(s.client.decrypt(&s.encrypted, &alice)).unwrap();

    {
        let mut g = criterion.benchmark_group("tls");
        g.bench_function("decrypt_e2e_n5_t4/attested_tls", |b| {
            b.iter(|| decrypt(&tls))
        });
        g.bench_function("decrypt_e2e_n5_t4/plain_http", |b| {
            b.iter(|| decrypt(&plain))
        });
        // a client's connect: 5 handshakes, each a new TLS connection
        g.bench_function("connect_n5/attested_tls", |b| {
            b.iter(|| {
                rt.block_on(LitClient::connect_with(
                    Bootstrap::NetworkFile(tls._net.network_file()),
                    ConnectOptions::devnet(),
                ))
                .unwrap()
            })
        });
        g.bench_function("connect_n5/plain_http", |b| {
            b.iter(|| {
                rt.block_on(LitClient::connect_with(
                    Bootstrap::NetworkFile(plain._net.network_file()),
                    ConnectOptions::devnet().with_plaintext_http(true),
                ))
                .unwrap()
            })
        });
        g.finish();
    }

    // percentiles, the two networks alternating request by request
    let samples = env_or("LIT_BENCH_SAMPLES", 300) as usize;
    let (with, without) = alternating(samples, || drop(decrypt(&tls)), || drop(decrypt(&plain)));
    println!(
        "tls/decrypt_e2e over {samples} alternating requests: {}",
        compared(
            "attested TLS",
            &with,
            "plain HTTP",
            &without,
            "TLS overhead"
        )
    );
    criterion.final_summary();
}
