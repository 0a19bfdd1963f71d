//! Encryption and decryption through the SDK against real node processes: n = 5, T = 4, with
//! nodes killed and restarted; and a client that refuses a network whose nodes disagree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use lit_client::{Bootstrap, ClientError, ConnectOptions, LitClient, NodeFailureReason, Wallet};
use support::net::{listed_releases, testnet, user_is};

fn failed_parties(e: &ClientError) -> BTreeSet<u32> {
    e.failures().iter().filter_map(|f| f.party_id).collect()
}

#[tokio::test]
async fn decrypt_with_nodes_killed_and_restarted() {
    let mut net = testnet(5).start().await;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    assert_eq!(
        (client.epoch(), client.threshold(), client.nodes().len()),
        (1, 4, 5)
    );
    let alice = Wallet::random();
    let bob = Wallet::random();
    let secret = b"meet at the usual place";
    let conditions = user_is(&alice.address());
    let encrypted = client.encrypt(&conditions, secret).unwrap();
    assert_eq!(client.decrypt(&encrypted, &alice).await.unwrap(), secret);

    // another wallet: every node it asked refused, and the error says so
    let err = client.decrypt(&encrypted, &bob).await.unwrap_err();
    assert!(matches!(err, ClientError::ConditionsNotMet { .. }), "{err}");
    assert!(err
        .failures()
        .iter()
        .all(|f| f.reason.code() == Some(lit_api::ErrorCode::ConditionsNotMet)));

    // one node down: still decrypts
    net.kill(2);
    assert_eq!(client.decrypt(&encrypted, &alice).await.unwrap(), secret);

    // two nodes down: too few answered, and the error names them
    net.kill(4);
    let err = client.decrypt(&encrypted, &alice).await.unwrap_err();
    match &err {
        ClientError::TooFewShares { needed, got, .. } => assert_eq!((*needed, *got), (4, 3)),
        other => panic!("expected TooFewShares, got {other}"),
    }
    assert_eq!(failed_parties(&err), BTreeSet::from([2, 4]), "{err}");
    assert!(err.failures().iter().all(|f| matches!(
        f.reason,
        NodeFailureReason::Unreachable(_) | NodeFailureReason::Timeout
    )));
    let text = err.to_string();
    assert!(
        text.contains("too few nodes") && text.contains(&net.url(2)) && text.contains(&net.url(4)),
        "{text}"
    );

    // the killed node restarts from its data folder, without a new DKG, and serves again
    net.restart(4).await;
    assert!(net
        .log(4)
        .contains("loaded key shares; serving without a new DKG"));
    assert_eq!(client.decrypt(&encrypted, &alice).await.unwrap(), secret);
    // and a fresh client sees the same network
    let again = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    assert_eq!(again.network_keys(), client.network_keys());
    assert_eq!(again.decrypt(&encrypted, &alice).await.unwrap(), secret);
}

#[tokio::test]
async fn the_client_refuses_a_network_whose_nodes_disagree() {
    let a = testnet(3).start().await;
    let b = testnet(3).start().await;
    // two separate networks of the same size and threshold, presented as one
    let urls = vec![a.url(1), a.url(2), b.url(3)];
    let dev = || ConnectOptions::devnet().with_policy(listed_releases(&a));
    let err = LitClient::connect_with(Bootstrap::Urls(urls), dev())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Disagreement { .. }), "{err}");
    // each network on its own is fine
    LitClient::connect_with(
        Bootstrap::NetworkFile(a.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    LitClient::connect_with(Bootstrap::Urls(vec![b.url(1), b.url(2), b.url(3)]), dev())
        .await
        .unwrap();
    LitClient::connect_with(
        Bootstrap::NetworkFile(b.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    // a network file naming another SIWE domain than its nodes report: the client would make
    // capabilities every node refuses, so it refuses the network up front
    let mut file = a.network().clone();
    file.domain = Some("elsewhere.lit".into());
    let path = a.dir().join("elsewhere.json");
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
    let err = LitClient::connect_with(Bootstrap::NetworkFile(path), ConnectOptions::devnet())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Disagreement { what: "domain", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn cheating_and_impostor_nodes_are_left_out_and_named() {
    // node 2 answers with a share of the wrong message
    let net = testnet(5).fault(2, "wrong-decryption-share").start().await;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    let alice = Wallet::random();
    let encrypted = client.encrypt(&user_is(&alice.address()), b"x").unwrap();
    // with T = 4 of 5 the client succeeds only by detecting node 2's share and asking node 5,
    // whatever order it asks in
    for _ in 0..4 {
        assert_eq!(client.decrypt(&encrypted, &alice).await.unwrap(), b"x");
    }

    // a network file that pins another identity key for node 3: the client leaves node 3 out,
    // so with node 2 cheating too few valid shares remain, and both are named
    let mut file = net.network().clone();
    file.nodes[2].identity_key = lit_api::Bytes32([0xee; 32]);
    let pinned = net.dir().join("pinned.json");
    std::fs::write(&pinned, serde_json::to_string(&file).unwrap()).unwrap();
    let client = LitClient::connect_with(Bootstrap::NetworkFile(pinned), ConnectOptions::devnet())
        .await
        .unwrap();
    let failures = client.handshake_failures();
    assert!(
        failures.len() == 1
            && failures[0].party_id == Some(3)
            && matches!(
                failures[0].reason,
                NodeFailureReason::IdentityMismatch { .. }
            ),
        "{failures:?}"
    );
    let err = client.decrypt(&encrypted, &alice).await.unwrap_err();
    assert!(matches!(err, ClientError::TooFewShares { .. }), "{err}");
    assert!(
        err.failures().iter().any(
            |f| f.party_id == Some(2) && matches!(f.reason, NodeFailureReason::InvalidShare(_))
        ),
        "{err}"
    );
}
