//! Quotas per caller on a real network of node processes (n = 3), through the client SDK: a mint
//! beyond the owner's quota is refused by every node the client tries (the shared registry
//! counts the network's mints, so trying another node does not help), while another owner still
//! mints; anonymous uploads beyond their shared quota are refused by every node, while the same
//! code uploaded by a signed-in caller or under a session is stored by all of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use lit_api::ErrorCode;
use lit_client::{
    action_execution_grant, ActionAuth, Bootstrap, ClientError, ConnectOptions, ExecuteJs,
    LitClient, Wallet,
};
use lit_node::devnet::LayoutOptions;
use support::net::testnet;

const N: usize = 3;

/// Whether every one of the `N` nodes refused with `rate_limited`, naming `limit`.
fn all_rate_limited(err: &ClientError, limit: &str) -> bool {
    err.failures().len() == N
        && err.failures().iter().all(|f| {
            f.reason.code() == Some(ErrorCode::RateLimited) && f.reason.to_string().contains(limit)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mints_and_uploads_beyond_the_quota_are_refused_by_every_node() {
    let net = testnet(N)
        .options(LayoutOptions {
            extra_config: "[quotas]\nmints_per_hour = 1\nuploads_per_hour = 1\n".into(),
            ..LayoutOptions::default()
        })
        .start()
        .await;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    let (alice, bob) = (Wallet::random(), Wallet::random());

    client.mint_pkp(&alice).await.unwrap();
    let err = client.mint_pkp(&alice).await.unwrap_err();
    assert!(all_rate_limited(&err, "quotas.mints_per_hour"), "{err:?}");
    let pkp = client.mint_pkp(&bob).await.unwrap();
    assert_eq!(pkp.owner, bob.address().to_checksum());

    // the anonymous uploads' one upload per node and hour is spent by the first
    let first = client.upload_action("/* one */").await.unwrap();
    assert_eq!(first.stored, vec![1, 2, 3]);
    let code = "Lit.Actions.setResponse({ response: \"two\" });";
    let err = client.upload_action(code).await.unwrap_err();
    assert!(all_rate_limited(&err, "quotas.uploads_per_hour"), "{err:?}");
    // a signed-in caller has a quota of its own
    let stored = client
        .upload_action_as(code, ActionAuth::Wallet(&alice))
        .await
        .unwrap();
    assert_eq!(stored.stored, vec![1, 2, 3]);
    let err = client
        .upload_action_as("/* three */", ActionAuth::Wallet(&alice))
        .await
        .unwrap_err();
    assert!(all_rate_limited(&err, "quotas.uploads_per_hour"), "{err:?}");
    // so does a session's wallet (a session signature made for each node, granting the action)
    let grant = action_execution_grant(Some(&stored.ipfs_id)).unwrap();
    let session = client
        .session(&bob, vec![grant], Duration::from_secs(600))
        .unwrap();
    let again = client
        .upload_action_as(code, ActionAuth::Session(&session))
        .await
        .unwrap();
    assert_eq!(again.stored, vec![1, 2, 3]);
    // which grants uploading that action, not another
    let err = client
        .upload_action_as("/* four */", ActionAuth::Session(&session))
        .await
        .unwrap_err();
    assert!(
        err.failures().len() == N
            && err.failures().iter().all(|f| matches!(
                f.reason.code(),
                Some(ErrorCode::InvalidAuth | ErrorCode::NotPermitted)
            )),
        "{err:?}"
    );
    // and the code is there to run by id
    let out = client
        .execute_js(ExecuteJs::ipfs_id(&stored.ipfs_id))
        .await
        .unwrap();
    assert_eq!(out.agreed_response().unwrap(), Some("two"));
}
