//! One throwaway wallet floods one node of a 3-node devnet (real node processes, real HTTP,
//! T = 2) with authenticated requests that each carry a fresh credential, and the node's memory
//! and latency are measured per block of requests (issue 15: the replay caches are bounded per
//! caller, so the flood neither grows the node nor crowds others out).
//!
//! Each request is a `/v1/pkp/sign` with a session signature made afresh for that node (a new
//! nonce) by a session of the throwaway wallet, granted `pkp-signing` on a PKP another wallet
//! minted and that does not permit the throwaway one. The node verifies the signature and its
//! wallet capability in full, records the nonce in its session replay guard
//! (`lit_node::auth::session::ReplayGuard`, a `NonceSet` capped at 20 000 live nonces per
//! authorized address, each remembered 5 minutes), and only then refuses the request
//! `not_permitted`; once the wallet holds 20 000 live nonces, a request is verified as fully
//! and refused `rate_limited` instead. Of the node's two replay caches this is the one a
//! flood of refused requests reaches: the request nonces (`clientPublicKey`, `requestId`) are
//! recorded only after the caller's permission is checked.
//!
//! Per block of 10 000 requests the table shows the answers by code, the p50 / p99 / max
//! latency, the throughput and the node process's resident memory (`VmRSS` of
//! `/proc/<pid>/status`). The load is a closed loop (each worker sends its next request when the
//! last one is answered), so the latency is mostly the wait behind the other requests in flight
//! and follows the throughput the machine gives the node. A run shorter than the nonces' 5
//! minutes sees the first 20 000 requests accepted and the rest refused. At the end another wallet sends a request to the same node (its
//! nonce must be accepted: answered `not_permitted`, not `rate_limited`), and the PKP's owner
//! signs through a group that contains that node.
//!
//! `cargo bench -p lit-benches --bench flood`
//! (`LIT_BENCH_REQUESTS`, default 200000, sets the number of requests; `LIT_BENCH_CONCURRENCY`,
//! default 32, how many are in flight at once over keep-alive connections.)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use lit_api::error::ErrorEnvelope;
use lit_api::session::{LitAbility, LitResource, ResourceAbilityRequest};
use lit_api::v1::{paths, PkpAuth, PkpInfo, PkpSignRequest, ToSign};
use lit_api::Bytes32;
use lit_client::{Bootstrap, ConnectOptions, LitClient, Session, Wallet};
use lit_node::devnet::LayoutOptions;
use rand_core::{OsRng, RngCore};

#[path = "support/devnet.rs"]
mod support;

use support::env_or;

/// Requests per row of the table.
const BLOCK: u64 = 10_000;
/// The node the flood goes to.
const TARGET: u32 = 1;

/// What every request needs, shared by the workers.
struct Flood {
    http: reqwest::Client,
    /// The target node's URL (session signatures name it).
    url: String,
    endpoint: String,
    epoch: u64,
    group: Vec<u32>,
    pkp: PkpInfo,
    /// The first message seen for each answer, to show what the node said.
    samples: Mutex<BTreeMap<String, String>>,
}

impl Flood {
    /// A `/v1/pkp/sign` body for request `i`, with a session signature made now (fresh nonce).
    fn body(&self, session: &Session, i: u64) -> Vec<u8> {
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&i.to_be_bytes());
        let mut request_id = [0u8; 32];
        let mut client_key = [0u8; 32];
        OsRng.fill_bytes(&mut request_id);
        OsRng.fill_bytes(&mut client_key);
        let auth = session.sign_for_node(&self.url, SystemTime::now()).unwrap();
        serde_json::to_vec(&PkpSignRequest {
            epoch: self.epoch,
            token_id: self.pkp.token_id,
            to_sign: ToSign::Digest(Bytes32(digest)),
            auth: PkpAuth::SessionSig(auth),
            group: self.group.clone(),
            request_id: Bytes32(request_id),
            client_public_key: Bytes32(client_key),
        })
        .unwrap()
    }

    /// Sends request `i` and returns its latency (the whole answer read) and its answer: the
    /// error code, `ok`, `http_<status>` for a body that is no error envelope, or `transport`.
    async fn send(&self, session: &Session, i: u64) -> (Duration, String) {
        let body = self.body(session, i);
        let t = Instant::now();
        let sent = self
            .http
            .post(&self.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let answer = match sent {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(bytes) => Some((status, bytes)),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        let elapsed = t.elapsed();
        let (code, message) = match answer {
            None => ("transport".to_string(), "connection failed".to_string()),
            Some((status, _)) if status.is_success() => ("ok".into(), String::new()),
            Some((status, bytes)) => match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
                Ok(e) => (e.error.code.as_str().to_string(), e.error.message),
                Err(_) => (
                    format!("http_{}", status.as_u16()),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ),
            },
        };
        let mut samples = self.samples.lock().unwrap();
        if !samples.contains_key(&code) {
            samples.insert(code.clone(), message);
        }
        (elapsed, code)
    }
}

/// What one block of requests measured.
#[derive(Default)]
struct Block {
    latencies: Vec<Duration>,
    answers: BTreeMap<String, u64>,
}

impl Block {
    fn merge(&mut self, other: Block) {
        self.latencies.extend(other.latencies);
        for (code, n) in other.answers {
            *self.answers.entry(code).or_default() += n;
        }
    }

    fn count(&self, code: &str) -> u64 {
        self.answers.get(code).copied().unwrap_or(0)
    }
}

/// Sends requests `range` with `concurrency` of them in flight.
async fn run_block(
    flood: &Arc<Flood>,
    session: &Arc<Session>,
    range: Range<u64>,
    concurrency: usize,
) -> Block {
    let next = Arc::new(AtomicU64::new(range.start));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (flood, session, next) = (flood.clone(), session.clone(), next.clone());
            let end = range.end;
            tokio::spawn(async move {
                let mut block = Block::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        return block;
                    }
                    let (latency, code) = flood.send(&session, i).await;
                    block.latencies.push(latency);
                    *block.answers.entry(code).or_default() += 1;
                }
            })
        })
        .collect();
    let mut block = Block::default();
    for w in workers {
        block.merge(w.await.unwrap());
    }
    block
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB; `None` off Linux.
fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// The `q` quantile of sorted `v` (nearest rank).
fn quantile(v: &[Duration], q: f64) -> Duration {
    v[(((v.len() - 1) as f64) * q).round() as usize]
}

/// A session of `wallet` on the network with SIWE domain `domain`, granted `pkp-signing` on
/// `pkp` for an hour.
fn session_of(domain: &str, wallet: &Wallet, pkp: &PkpInfo) -> Session {
    let grant =
        ResourceAbilityRequest::new(LitResource::pkp(&pkp.token_id.0), LitAbility::PkpSigning)
            .unwrap();
    Session::from_wallet(wallet, domain, vec![grant], Duration::from_secs(3600)).unwrap()
}

fn main() {
    let total = env_or("LIT_BENCH_REQUESTS", 200_000);
    let concurrency = env_or("LIT_BENCH_CONCURRENCY", 32).max(1) as usize;
    support::main(async move {
        let net = support::start(3, &LayoutOptions::default(), "warn").await;
        let client = LitClient::connect_with(
            Bootstrap::NetworkFile(net.network_file()),
            ConnectOptions::devnet(),
        )
        .await
        .unwrap();
        let domain = client.domain().to_string();
        let owner = Wallet::random();
        let pkp = client.mint_pkp(&owner).await.unwrap();
        let throwaway = Wallet::random();
        let pid = net.pid(TARGET);
        let flood = Arc::new(Flood {
            http: reqwest::Client::builder()
                .use_preconfigured_tls(
                    lit_api::tls::client_config(lit_api::tls::NodeKeyVerifier::any_node(), None)
                        .unwrap(),
                )
                .pool_max_idle_per_host(concurrency)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            url: net.url(TARGET),
            endpoint: format!(
                "{}{}",
                net.url(TARGET).trim_end_matches('/'),
                paths::PKP_SIGN
            ),
            epoch: client.epoch(),
            group: (1..=client.threshold() as u32).collect(),
            pkp,
            samples: Mutex::new(BTreeMap::new()),
        });
        let session = Arc::new(session_of(&domain, &throwaway, &flood.pkp));

        let rss_start = proc_kib(pid, "VmRSS");
        println!(
            "flood: {total} /v1/pkp/sign requests from throwaway wallet {} to node {TARGET} \
             (pid {pid}) of 3, {concurrency} in flight, each with a fresh session signature; \
             node RSS before: {} MiB",
            throwaway.address().to_checksum(),
            mib(rss_start)
        );
        println!(
            "{:>6} {:>8} {:>13} {:>12} {:>6} {:>8} {:>8} {:>8} {:>7} {:>8}",
            "block",
            "sent",
            "not_permitted",
            "rate_limited",
            "other",
            "p50 ms",
            "p99 ms",
            "max ms",
            "req/s",
            "RSS MiB"
        );
        let started = Instant::now();
        let mut all = Block::default();
        let mut start = 0;
        let mut row = 1;
        while start < total {
            let end = (start + BLOCK).min(total);
            let t = Instant::now();
            let mut block = run_block(&flood, &session, start..end, concurrency).await;
            let seconds = t.elapsed().as_secs_f64();
            block.latencies.sort();
            let (refused, limited) = (block.count("not_permitted"), block.count("rate_limited"));
            println!(
                "{:>6} {:>8} {:>13} {:>12} {:>6} {:>8} {:>8} {:>8} {:>7.0} {:>8}",
                row,
                end,
                refused,
                limited,
                (end - start) - refused - limited,
                ms(quantile(&block.latencies, 0.5)),
                ms(quantile(&block.latencies, 0.99)),
                ms(*block.latencies.last().unwrap()),
                (end - start) as f64 / seconds,
                mib(proc_kib(pid, "VmRSS")),
            );
            all.merge(block);
            start = end;
            row += 1;
        }
        let seconds = started.elapsed().as_secs_f64();
        all.latencies.sort();
        println!(
            "all {total}: p50 {} ms, p99 {} ms, max {} ms, {:.0} req/s over {seconds:.1} s; \
             node RSS {} MiB before, {} MiB after, peak (VmHWM) {} MiB",
            ms(quantile(&all.latencies, 0.5)),
            ms(quantile(&all.latencies, 0.99)),
            ms(*all.latencies.last().unwrap()),
            total as f64 / seconds,
            mib(rss_start),
            mib(proc_kib(pid, "VmRSS")),
            mib(proc_kib(pid, "VmHWM")),
        );
        println!("answers by code:");
        let samples = flood.samples.lock().unwrap().clone();
        for (code, n) in &all.answers {
            let said = samples.get(code).map_or("", String::as_str);
            println!("  {code:>14}: {n:>7}  (first answer: {said})");
        }

        // the flooding wallet, once more
        let (latency, code) = flood.send(&session, total).await;
        println!(
            "throwaway wallet once more at node {TARGET}: {code} in {} ms",
            ms(latency)
        );
        // another wallet at the same node: its nonce is accepted (refused only by the PKP)
        let other = Wallet::random();
        let (latency, other_code) = flood
            .send(&session_of(&domain, &other, &flood.pkp), 0)
            .await;
        println!(
            "another wallet ({}) at node {TARGET}: {other_code} in {} ms \
             (not_permitted: its session nonce was accepted, the PKP refused it)",
            other.address().to_checksum(),
            ms(latency)
        );
        // the PKP's owner signs through a group with the flooded node in it
        let owners = session_of(&domain, &owner, &flood.pkp);
        let mut signed = None;
        for _ in 0..8 {
            let t = Instant::now();
            let sig = client
                .pkp_sign_with_session(&flood.pkp, ToSign::Digest(Bytes32([7; 32])), &owners)
                .await
                .unwrap_or_else(|e| panic!("the owner's signature failed after the flood: {e}"));
            if sig.group.contains(&TARGET) {
                signed = Some((sig.group, t.elapsed()));
                break;
            }
        }
        let (group, latency) = signed.expect("no signing group with the flooded node in 8 tries");
        println!(
            "the PKP's owner signed with group {group:?} (node {TARGET} in it) in {} ms; \
             the signature recovers to the PKP's key",
            ms(latency)
        );
        assert_eq!(
            other_code, "not_permitted",
            "another wallet was crowded out of node {TARGET}'s replay cache"
        );
    });
}
