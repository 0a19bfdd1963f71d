//! A man in the middle between the client and every node of a real network.
//!
//! - The nodes' attestation covers the whole handshake answer
//!   (`HandshakeResponse::attested_digest`), so a proxy that swaps the network's key set (so
//!   that data would be encrypted to the attacker) or passes another node's attestation makes
//!   `connect` fail with an attestation error.
//! - The attested identity key is the node's TLS key (`lit_api::tls`), so a proxy that
//!   terminates TLS and passes every answer through unchanged is refused too
//!   ([`NodeFailureReason::TlsNotAttested`]), and one that strips TLS (hands out `http://`
//!   URLs) is refused before any request.
//! - A proxy that relays the TLS bytes without terminating them connects: the connection still
//!   ends in the node.
//! - Between nodes, an envelope a member signed is accepted only over that member's own
//!   mutual-TLS connection.
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
use support::net::{https_client, testnet};

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

fn attacker_certificate() -> lit_api::tls::NodeCertificate {
    let seed = [0xa7; 32];
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    lit_api::tls::NodeCertificate::new(&seed, &public).unwrap()
}

/// A network file whose nodes are reached through proxies that terminate TLS (or, with
/// `strip_tls`, serve plain HTTP) and `tamper` with the answers.
async fn through_proxies(
    net: &lit_node::testnet::TestNet,
    tamper: Tamper,
    strip_tls: bool,
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
            http: https_client(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(relay).with_state(proxy);
        if strip_tls {
            node.url = format!("http://{addr}");
            tokio::spawn(async move { axum::serve(listener, app).await });
        } else {
            // the proxy's own certificate: it cannot have the node's key
            node.url = format!("https://{addr}");
            let tls = Arc::new(lit_api::tls::server_config(&attacker_certificate()).unwrap());
            tokio::spawn(lit_node::https::serve(
                app,
                listener,
                tls,
                std::future::pending(),
            ));
        }
    }
    let path = dir.join(format!("{tamper:?}-{strip_tls}.json"));
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

    // relaying the TLS bytes is harmless: the connections still end in the nodes
    let relayed = through_tcp_relays(&net, dir.path()).await;
    let client = LitClient::connect_with(Bootstrap::NetworkFile(relayed), ConnectOptions::devnet())
        .await
        .unwrap();
    assert_eq!(client.network_public_key(), set.public_key());
    assert_eq!(client.nodes().len(), 4);

    for tamper in [Tamper::SwapKeySet, Tamper::OtherNodesAttestation] {
        let file = through_proxies(&net, tamper, false, &attacker_set, dir.path()).await;
        let e = LitClient::connect_with(Bootstrap::NetworkFile(file), ConnectOptions::devnet())
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(refused_for_attestation(&e), "{tamper:?}: {e}");
    }

    // terminating TLS and passing every answer through unchanged: the attestation verifies,
    // but the connection's key is the proxy's, not the attested one
    let file = through_proxies(&net, Tamper::Nothing, false, &attacker_set, dir.path()).await;
    let e = LitClient::connect_with(Bootstrap::NetworkFile(file), ConnectOptions::devnet())
        .await
        .map(|_| ())
        .unwrap_err();
    let attacker = hex::encode(lit_api::tls::ed25519_key_of(attacker_certificate().der()).unwrap());
    assert_eq!(e.failures().len(), 4, "{e}");
    for f in e.failures() {
        assert!(
            matches!(&f.reason, NodeFailureReason::TlsNotAttested { got, .. } if *got == attacker),
            "{e}"
        );
    }
    assert!(e.to_string().contains("terminates TLS"), "{e}");

    // stripping TLS: the client does not speak plain HTTP to a network
    let file = through_proxies(&net, Tamper::Nothing, true, &attacker_set, dir.path()).await;
    let e = LitClient::connect_with(Bootstrap::NetworkFile(file), ConnectOptions::devnet())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Config(m) if m.contains("is not an https:// URL")),
        "{e}"
    );
}

/// A network file whose nodes are reached through relays of the raw TCP bytes.
async fn through_tcp_relays(
    net: &lit_node::testnet::TestNet,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let mut file = net.network().clone();
    for node in file.nodes.iter_mut() {
        let target = node.url.trim_start_matches("https://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        node.url = format!("https://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    let mut outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
    }
    let path = dir.join("relayed.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    path
}

/// A member's signed envelope counts only over that member's own mutual-TLS connection: sent
/// without a client certificate, or under another key, it is refused; under the member's own
/// certificate it is accepted. (Node 4 is stopped first so that its data folder can be opened,
/// as its operator could.)
#[tokio::test(flavor = "multi_thread")]
async fn peer_envelopes_need_their_senders_mutual_tls() {
    let mut net = testnet(4).start().await;
    net.kill(4);
    let data_dir = net.dir().join("node-4").join("data");
    let (store, identity) =
        lit_node::node::open_data_dir(&data_dir, lit_node::config::AttestationMode::Simulated)
            .unwrap();
    drop(store);
    let msg = lit_node::net::peer::seal_envelope(
        &identity,
        lit_crypto::PartyId::new(4).unwrap(),
        lit_api::Bytes32([0x5e; 32]),
        None,
        b"a broadcast of node 4",
        &mut OsRng,
    )
    .unwrap();
    let send = |http: reqwest::Client| {
        let url = format!("{}{}", net.url(1), paths::PEER_MESSAGE);
        let body = serde_json::to_vec(&msg).unwrap();
        async move {
            let resp = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let with_cert = |cert: &lit_api::tls::NodeCertificate| {
        let tls =
            lit_api::tls::client_config(lit_api::tls::NodeKeyVerifier::any_node(), Some(cert))
                .unwrap();
        reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .build()
            .unwrap()
    };

    let (status, body) = send(https_client()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("unauthorized_peer") && body.contains("mutual-TLS"),
        "{body}"
    );
    let (status, body) = send(with_cert(&attacker_certificate())).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("mutual-TLS"), "{body}");
    let (status, body) = send(with_cert(&identity.tls_certificate().unwrap())).await;
    assert_eq!(status, 200, "{body}");
}
