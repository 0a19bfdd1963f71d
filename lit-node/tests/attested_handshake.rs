//! A man in the middle between the client and every node of a real network: the nodes'
//! attestation covers the whole handshake answer (`HandshakeResponse::attested_digest`), so a
//! proxy that swaps the network's key set (so that data would be encrypted to the attacker) or
//! passes another node's attestation makes `connect` fail with an attestation error, while the
//! same proxy passing answers through unchanged connects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use lit_api::v1::{paths, HandshakeResponse};
use lit_client::{Bootstrap, ClientError, ConnectOptions, LitClient, NodeFailureReason};
use lit_crypto::bls::{deal_with_trusted_dealer, PublicKeySet};
use rand_core::OsRng;
use serde_json::Value;
use support::net::testnet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tamper {
    /// Answers pass unchanged.
    Nothing,
    /// The handshake's BLS key set and public key become the attacker's (same threshold and
    /// parties, so every other check of the client passes).
    SwapKeySet,
    /// The handshake carries the attestation another node made for the same challenge.
    OtherNodesAttestation,
}

struct Proxy {
    node: String,
    /// Another node, whose attestation [`Tamper::OtherNodesAttestation`] passes on.
    other: String,
    tamper: Tamper,
    attacker_set: Vec<u8>,
    http: reqwest::Client,
}

async fn forward(http: &reqwest::Client, base: &str, path: &str, body: Bytes) -> (u16, Bytes) {
    let resp = http
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap())
}

async fn relay(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let get = req.method() == axum::http::Method::GET;
    let body = axum::body::to_bytes(req.into_body(), 1 << 24)
        .await
        .unwrap();
    if get {
        let resp = p
            .http
            .get(format!("{}{path}", p.node))
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        return (status, resp.bytes().await.unwrap()).into_response();
    }
    let (status, answer) = forward(&p.http, &p.node, &path, body.clone()).await;
    let status = StatusCode::from_u16(status).unwrap();
    if path != paths::HANDSHAKE || status != StatusCode::OK || p.tamper == Tamper::Nothing {
        return (status, answer).into_response();
    }
    let mut json: Value = serde_json::from_slice(&answer).unwrap();
    match p.tamper {
        Tamper::SwapKeySet => {
            let set = PublicKeySet::from_bytes(&p.attacker_set).unwrap();
            json["networkKeys"]["blsKeySet"] = Value::String(hex::encode(&p.attacker_set));
            json["networkKeys"]["bls"] = Value::String(hex::encode(set.public_key().to_bytes()));
        }
        Tamper::OtherNodesAttestation => {
            let (_, other) = forward(&p.http, &p.other, &path, body).await;
            let other: Value = serde_json::from_slice(&other).unwrap();
            json["attestation"] = other["attestation"].clone();
        }
        Tamper::Nothing => {}
    }
    (status, serde_json::to_vec(&json).unwrap()).into_response()
}

/// A network file whose nodes are reached through proxies that `tamper` with the answers.
async fn through_proxies(
    net: &lit_node::testnet::TestNet,
    tamper: Tamper,
    attacker_set: &[u8],
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let mut file = net.network().clone();
    let urls: Vec<String> = file.nodes.iter().map(|n| n.url.clone()).collect();
    for (i, node) in file.nodes.iter_mut().enumerate() {
        let proxy = Arc::new(Proxy {
            node: urls[i].clone(),
            other: urls[(i + 1) % urls.len()].clone(),
            tamper,
            attacker_set: attacker_set.to_vec(),
            http: reqwest::Client::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        node.url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(relay).with_state(proxy);
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let path = dir.join(format!("{tamper:?}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    path
}

fn refused_for_attestation(e: &ClientError) -> bool {
    !e.failures().is_empty()
        && e.failures().iter().all(|f| {
            matches!(&f.reason, NodeFailureReason::Attestation(m) if m.contains("changed on the way"))
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_that_changes_the_handshake_is_refused() {
    let net = testnet(4).start().await;
    // the attacker's key set: the same threshold and parties as the network's
    let (status, body) = support::net::post(
        &net.url(1),
        paths::HANDSHAKE,
        &serde_json::json!({"challenge": "cd".repeat(32)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let real: HandshakeResponse = serde_json::from_value(body).unwrap();
    let set = PublicKeySet::from_bytes(real.network_keys.bls_key_set.as_slice()).unwrap();
    let parties: Vec<_> = set.participants().collect();
    let (attacker, _) = deal_with_trusted_dealer(set.threshold(), &parties, &mut OsRng).unwrap();
    let attacker_set = attacker.to_bytes();
    let dir = tempfile::tempdir().unwrap();

    // the proxies themselves are transparent: unchanged answers connect
    let honest = through_proxies(&net, Tamper::Nothing, &attacker_set, dir.path()).await;
    let client = LitClient::connect_with(Bootstrap::NetworkFile(honest), ConnectOptions::devnet())
        .await
        .unwrap();
    assert_eq!(client.network_public_key(), set.public_key());

    for tamper in [Tamper::SwapKeySet, Tamper::OtherNodesAttestation] {
        let file = through_proxies(&net, tamper, &attacker_set, dir.path()).await;
        let e = LitClient::connect_with(Bootstrap::NetworkFile(file), ConnectOptions::devnet())
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(refused_for_attestation(&e), "{tamper:?}: {e}");
    }
}
