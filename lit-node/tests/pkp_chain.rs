//! PKPs on the chain: a devnet on the Solidity contracts on anvil, whose nodes read PKPs and
//! their permissions from `PkpRegistry`. Owners mint, permit, revoke and transfer with their own
//! transactions; nodes refuse to do any of it for anyone; the contract refuses everyone but the
//! owner; a record whose key is not derived from its key id is refused by the client and by the
//! nodes; a PKP session ends when the party that obtained it loses its permission on chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use lit_api::v1::{PermissionChange, PkpAuth, ToSign};
use lit_api::{Bytes32, ErrorCode};
use lit_client::{Bootstrap, ClientError, ConnectOptions, LitClient, PkpChain, Signer, Wallet};
use lit_node::chain::evm;
use lit_node::devnet::{DevnetChain, DevnetStaking, LayoutOptions};
use rand_core::{OsRng, RngCore};
use serde_json::json;
use support::net::{code, libsecp_recover, post, testnet};

fn refused_by_nodes(e: &ClientError) -> bool {
    e.failures()
        .iter()
        .any(|f| f.reason.code() == Some(ErrorCode::NotPermitted))
}

async fn signs(client: &LitClient, pkp: &lit_api::v1::PkpInfo, signer: Signer<'_>, tag: u8) {
    let sig = client
        .pkp_sign(pkp, ToSign::Digest(Bytes32([tag; 32])), signer)
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn pkps_live_on_the_chain_and_only_their_owners_change_them() {
    let anvil = support::chain::Anvil::start().await;
    let options = LayoutOptions {
        staking: Some(DevnetStaking {
            chain: DevnetChain::Evm {
                rpc_url: anvil.url.clone(),
            },
            ..DevnetStaking::default()
        }),
        ..LayoutOptions::default()
    };
    let mut net = testnet(4).options(options).start().await;
    net.devnet()
        .wait_epoch(1, Duration::from_secs(120))
        .await
        .unwrap();
    let config = std::fs::read_to_string(net.devnet().layout().configs[&1].clone()).unwrap();
    assert!(
        config.contains("pkp_registry = ") && !config.contains("registry = \"../"),
        "{config}"
    );
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    let record = lit_node::devnet::evm_record(net.dir()).unwrap().unwrap();
    let chain = PkpChain::new(&record.rpc_url, &record.pkp_registry).unwrap();
    let [owner, bob, carol] = [(); 3].map(|_| Wallet::random());
    for w in [&owner, &bob, &carol] {
        anvil.fund_account(w.signing_key()).await;
    }

    // the nodes mint for nobody: the owner's transaction does
    let e = client.mint_pkp(&owner).await.unwrap_err();
    assert!(
        refused_by_nodes(&e) && e.to_string().contains(&record.pkp_registry),
        "{e}"
    );
    let pkp = client.mint_pkp_on_chain(&owner, &chain).await.unwrap();
    assert_eq!(pkp.owner, owner.address().to_checksum());
    signs(&client, &pkp, Signer::Wallet(&owner), 1).await;
    let token = pkp.token_id.0;

    // nor do they change permissions; another wallet's transaction is refused by the contract
    let add_bob = PermissionChange::AddAddress {
        address: bob.address().to_checksum(),
    };
    let e = client
        .pkp_permit(&owner, token, add_bob.clone())
        .await
        .unwrap_err();
    assert!(refused_by_nodes(&e), "{e}");
    let e = client
        .pkp_permit_on_chain(&bob, &chain, token, add_bob.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Chain { refused: Some(r), .. } if r == "not owner"),
        "{e}"
    );
    let e = client
        .pkp_sign(&pkp, ToSign::Digest(Bytes32([2; 32])), Signer::Wallet(&bob))
        .await
        .unwrap_err();
    assert!(refused_by_nodes(&e), "{e}");

    // the owner permits bob on chain: bob signs, and obtains a PKP session
    let info = client
        .pkp_permit_on_chain(&owner, &chain, token, add_bob)
        .await
        .unwrap();
    assert!(info
        .permissions
        .addresses
        .contains(&bob.address().to_checksum()));
    signs(&client, &pkp, Signer::Wallet(&bob), 3).await;
    let session = client
        .pkp_session(&pkp, Signer::Wallet(&bob), Duration::from_secs(600))
        .await
        .unwrap();
    signs(&client, &pkp, Signer::Session(&session), 4).await;

    // the owner revokes bob on chain: bob's wallet and the session he obtained stop
    client
        .pkp_permit_on_chain(
            &owner,
            &chain,
            token,
            PermissionChange::RemoveAddress {
                address: bob.address().to_checksum(),
            },
        )
        .await
        .unwrap();
    for signer in [Signer::Wallet(&bob), Signer::Session(&session)] {
        let e = client
            .pkp_sign(&pkp, ToSign::Digest(Bytes32([5; 32])), signer)
            .await
            .unwrap_err();
        assert!(refused_by_nodes(&e), "{e}");
    }

    // the token moves to carol: she signs, the previous owner no longer does
    let info = client
        .pkp_transfer_on_chain(&owner, &chain, token, &carol.address())
        .await
        .unwrap();
    assert_eq!(info.owner, carol.address().to_checksum());
    assert_eq!(info.public_key, pkp.public_key);
    signs(&client, &pkp, Signer::Wallet(&carol), 6).await;
    let e = client
        .pkp_sign(
            &pkp,
            ToSign::Digest(Bytes32([7; 32])),
            Signer::Wallet(&owner),
        )
        .await
        .unwrap_err();
    assert!(refused_by_nodes(&e), "{e}");

    // anyone can record a key of their own under some key id: the contract does not check keys,
    // the client and every node do
    let mallory = Wallet::random();
    anvil.fund_account(mallory.signing_key()).await;
    let point = mallory
        .signing_key()
        .verifying_key()
        .to_encoded_point(false);
    let mut salt = [0u8; 32];
    OsRng.fill_bytes(&mut salt);
    let (provider, _) = evm::connect(&anvil.url, mallory.signing_key()).unwrap();
    let registry = evm::bindings::PkpRegistry::new(evm::to_evm(chain.registry()), provider);
    evm::transact(registry.mint(
        alloy_primitives::FixedBytes(salt),
        alloy_primitives::Bytes::copy_from_slice(&point.as_bytes()[1..]),
    ))
    .await
    .unwrap();
    let forged_token: [u8; 32] = {
        use sha3::Digest;
        sha3::Keccak256::digest(&point.as_bytes()[1..]).into()
    };
    let e = client.pkp(forged_token).await.unwrap_err();
    assert!(e.to_string().contains("not derived"), "{e}");
    // a node asked to sign with it directly refuses too
    let url = net.devnet().url(1).unwrap();
    let (status, forged) = post(
        url,
        "/v1/pkp/info",
        &json!({ "tokenId": hex::encode(forged_token) }),
    )
    .await;
    assert_eq!(status, 200, "{forged}");
    let forged: lit_api::v1::PkpInfo = serde_json::from_value(forged).unwrap();
    let session = lit_client::Session::from_wallet(
        &mallory,
        client.domain(),
        vec![lit_client::pkp_grant(&forged).unwrap()],
        Duration::from_secs(600),
    )
    .unwrap();
    let auth = PkpAuth::SessionSig(
        session
            .sign_for_node(url, std::time::SystemTime::now())
            .unwrap(),
    );
    let request = lit_api::v1::PkpSignRequest {
        epoch: 1,
        token_id: Bytes32(forged_token),
        to_sign: ToSign::Digest(Bytes32([8; 32])),
        auth,
        group: vec![1, 2, 3],
        request_id: Bytes32([9; 32]),
        client_public_key: Bytes32([10; 32]),
    };
    let (status, body) = post(
        url,
        "/v1/pkp/sign",
        &serde_json::to_value(&request).unwrap(),
    )
    .await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    assert!(body.to_string().contains("not derived"), "{body}");
}
