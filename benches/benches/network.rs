//! End-to-end decryption against a 5-node devnet on loopback (real node processes, real HTTP):
//! latency (criterion, plus p50/p99 over a fixed number of sequential requests), sustained
//! throughput with concurrent clients, and the node-side cost per request broken out from the
//! nodes' `Server-Timing` headers (condition check, share, sealing of the reply), next to the
//! crypto-only cost of the same steps measured in this run.
//!
//! `cargo bench -p lit-benches --bench network`
//! (`LIT_BENCH_SAMPLES`, default 300, sets the percentile sample count; `LIT_BENCH_SECONDS`,
//! default 10, the throughput run.)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lit_api::v1::{paths, ENCRYPTION_SHARE_SEAL_INFO};
use lit_client::{Bootstrap, ConnectOptions, EncryptedData, LitClient, Wallet};
use lit_crypto::seal::SealSecretKey;
use lit_node::devnet::LayoutOptions;
use lit_node::testnet::TestNet;
use rand_core::OsRng;
use serde_json::json;

#[path = "support/devnet.rs"]
mod support;

use support::{env_or, ms2 as ms, percentile};

fn main() {
    let Some((rt, mut criterion)) = support::runtime_and_criterion() else {
        return;
    };

    let net = rt.block_on(support::start(5, &LayoutOptions::default(), "warn"));
    let client = Arc::new(
        rt.block_on(LitClient::connect_with(
            Bootstrap::NetworkFile(net.network_file()),
            ConnectOptions::devnet(),
        ))
        .unwrap(),
    );
    let alice = Arc::new(Wallet::random());
    let conditions = json!([{
        "conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
        "chain": "ethereum", "method": "", "parameters": [":userAddress"],
        "returnValueTest": {"comparator": "=", "value": alice.address().to_checksum()}
    }]);
    let encrypted: Arc<EncryptedData> = Arc::new(client.encrypt(&conditions, &[7u8; 32]).unwrap());

    // criterion: one decryption end to end (T = 4 shares over HTTP, verified, combined)
    {
        let mut g = criterion.benchmark_group("network");
        g.bench_function("decrypt_e2e_n5_t4", |b| {
            b.iter(|| rt.block_on(client.decrypt(&encrypted, &alice)).unwrap())
        });
        // a client's connect: 5 handshakes, each attestation verified against the release
        // register (the network file's list) and bound to the challenge and the whole answer
        g.bench_function("connect_n5_verified", |b| {
            b.iter(|| {
                rt.block_on(LitClient::connect_with(
                    Bootstrap::NetworkFile(net.network_file()),
                    ConnectOptions::devnet(),
                ))
                .unwrap()
            })
        });
        // the same steps without the network, in this run: a node's share, sealing and opening
        let identity = encrypted.identity().unwrap().to_bytes();
        let ciphertext = encrypted.ciphertext(None).unwrap();
        let ids: Vec<lit_crypto::PartyId> = lit_crypto::PartyId::range(5).collect();
        let (_, dealt) = lit_crypto::bls::deal_with_trusted_dealer(4, &ids, &mut OsRng).unwrap();
        g.bench_function("crypto_only/share_sign", |b| {
            b.iter(|| dealt[0].sign(&identity))
        });
        let share_bytes = dealt[0].sign(&identity).to_bytes();
        let (client_secret, client_public) = SealSecretKey::generate(&mut OsRng);
        g.bench_function("crypto_only/seal_share", |b| {
            b.iter(|| {
                client_public
                    .seal(ENCRYPTION_SHARE_SEAL_INFO, b"aad", &share_bytes, &mut OsRng)
                    .unwrap()
            })
        });
        let sealed = client_public
            .seal(ENCRYPTION_SHARE_SEAL_INFO, b"aad", &share_bytes, &mut OsRng)
            .unwrap();
        g.bench_function("crypto_only/open_share", |b| {
            b.iter(|| {
                client_secret
                    .open(&sealed, ENCRYPTION_SHARE_SEAL_INFO, b"aad")
                    .unwrap()
            })
        });
        g.bench_function("crypto_only/client_verify4_combine_decrypt", |b| {
            // what the client does after the shares arrive, with the live network's key set:
            // collect real shares once, then time verification, combination and decryption
            let shares = rt.block_on(collect_real_shares(&net, &encrypted, &alice));
            b.iter(|| {
                lit_client::combine_and_decrypt(
                    &client.key_set(),
                    &encrypted.identity().unwrap(),
                    &ciphertext,
                    &shares,
                )
                .unwrap()
            })
        });
        g.finish();
    }

    // percentiles over sequential requests
    let samples = env_or("LIT_BENCH_SAMPLES", 300) as usize;
    let mut lat: Vec<Duration> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            rt.block_on(client.decrypt(&encrypted, &alice)).unwrap();
            t.elapsed()
        })
        .collect();
    lat.sort();
    println!(
        "network/decrypt_e2e latency over {samples} sequential requests: p50 {} p99 {} max {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap())
    );

    // sustained throughput with concurrent clients
    let seconds = env_or("LIT_BENCH_SECONDS", 10);
    for concurrency in [1usize, 8, 32] {
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        rt.block_on(async {
            let tasks: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (client, encrypted, alice, done) = (
                        client.clone(),
                        encrypted.clone(),
                        alice.clone(),
                        done.clone(),
                    );
                    tokio::spawn(async move {
                        while Instant::now() < deadline {
                            client.decrypt(&encrypted, &alice).await.unwrap();
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        let n = done.load(Ordering::Relaxed);
        println!(
            "network/decrypt_e2e throughput with {concurrency} concurrent clients: {:.1} decryptions/s ({n} in {seconds} s)",
            n as f64 / seconds as f64
        );
    }

    // node-side cost per request, from Server-Timing
    let (conditions_ms, share_ms, seal_ms) =
        rt.block_on(server_timing(&net, &encrypted, &alice, 200));
    println!(
        "network/node-side cost per request (mean of 200, node 1): condition check {conditions_ms:.3} ms, share {share_ms:.3} ms, seal reply {seal_ms:.3} ms"
    );
    criterion.final_summary();
    drop(net);
}

/// A decryption request for the node at `node_url` of `net`: Alice's session (granting the
/// decryption of `encrypted`) signed for that node, and a fresh client key.
fn share_request(
    net: &TestNet,
    node_url: &str,
    encrypted: &EncryptedData,
    alice: &Wallet,
    client_key: [u8; 32],
) -> serde_json::Value {
    use lit_api::session::{LitAbility, LitResource, ResourceAbilityRequest};
    let identity = encrypted.identity().unwrap();
    let grant = ResourceAbilityRequest::new(
        LitResource::decryption_of(&identity),
        LitAbility::AccessControlConditionDecryption,
    )
    .unwrap();
    let session = lit_client::Session::from_wallet(
        alice,
        &net.network().domain(),
        vec![grant],
        Duration::from_secs(600),
    )
    .unwrap();
    let auth: lit_api::v1::AuthSig = session
        .sign_for_node(node_url, SystemTime::now())
        .unwrap()
        .into();
    json!({
        "epoch": 1,
        "accessControlConditions": encrypted.access_control_conditions,
        "dataToEncryptHash": encrypted.data_to_encrypt_hash,
        "authSig": auth,
        "clientPublicKey": hex::encode(client_key),
    })
}

async fn collect_real_shares(
    net: &TestNet,
    encrypted: &EncryptedData,
    alice: &Wallet,
) -> Vec<lit_crypto::bls::SignatureShare> {
    let http = lit_node::https::any_node_client(Duration::from_secs(30)).unwrap();
    let identity = encrypted.identity().unwrap().to_bytes();
    let mut shares = Vec::new();
    for node in net.network().nodes.iter().take(4) {
        let (secret, public) = SealSecretKey::generate(&mut OsRng);
        let body = share_request(net, &node.url, encrypted, alice, public.to_bytes());
        let resp = http
            .post(format!("{}{}", node.url, paths::ENCRYPTION_SIGN))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let r: lit_api::v1::EncryptionSignResponse =
            serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        let bytes = secret
            .open(
                &lit_crypto::seal::Sealed {
                    enc: r.share.enc.0,
                    ciphertext: r.share.ciphertext.0,
                },
                ENCRYPTION_SHARE_SEAL_INFO,
                &lit_api::v1::encryption_share_aad(r.party_id, r.epoch, &identity),
            )
            .unwrap();
        shares.push(lit_crypto::bls::SignatureShare::from_bytes(&bytes).unwrap());
    }
    shares
}

async fn server_timing(
    net: &TestNet,
    encrypted: &EncryptedData,
    alice: &Wallet,
    n: usize,
) -> (f64, f64, f64) {
    let http = lit_node::https::any_node_client(Duration::from_secs(30)).unwrap();
    let url = format!("{}{}", net.url(1), paths::ENCRYPTION_SIGN);
    let mut sums = [0f64; 3];
    for _ in 0..n {
        let (_, public) = SealSecretKey::generate(&mut OsRng);
        let resp = http
            .post(&url)
            .header("content-type", "application/json")
            .body(share_request(net, &net.url(1), encrypted, alice, public.to_bytes()).to_string())
            .send()
            .await
            .unwrap();
        let header = resp.headers()["server-timing"]
            .to_str()
            .unwrap()
            .to_string();
        for part in header.split(", ") {
            let (name, dur) = part.split_once(";dur=").unwrap();
            let v: f64 = dur.parse().unwrap();
            match name {
                "conditions" => sums[0] += v,
                "share" => sums[1] += v,
                "seal" => sums[2] += v,
                _ => {}
            }
        }
    }
    (sums[0] / n as f64, sums[1] / n as f64, sums[2] / n as f64)
}
