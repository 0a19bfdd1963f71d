//! PKPs on a real 5-node network (T = 4): mint, sign a digest and an EIP-191 message (checked by
//! libsecp256k1), sign EIP-1559 and EIP-155 transactions that a real EVM node (anvil) mines from
//! the PKP's address, permissions enforced by every node, and signing with a node down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use lit_api::v1::{PermissionChange, PkpAuth, PresignatureSource, ToSign};
use lit_api::{Bytes, Bytes32, ErrorCode};
use lit_client::{
    Bootstrap, ClientError, Eip1559Transaction, EthTransaction, LegacyTransaction, LitClient,
    PkpSignature, Wallet,
};
use lit_crypto::eth::{eip191_hash, recover_address, Address};
use lit_node::devnet::LayoutOptions;
use serde_json::json;
use support::evm::Anvil;
use support::net::TestNet;

fn auth(client: &LitClient, wallet: &Wallet) -> PkpAuth {
    let _ = client;
    PkpAuth::AuthSig(
        wallet
            .auth_sig(std::time::SystemTime::now(), Duration::from_secs(600))
            .unwrap(),
    )
}

/// Recovers the signer of `digest` with libsecp256k1 (an implementation independent of ours).
fn libsecp_recover(sig: &PkpSignature) -> Vec<u8> {
    let secp = secp256k1::Secp256k1::new();
    let rec = secp256k1::ecdsa::RecoverableSignature::from_compact(
        &sig.signature.to_bytes()[..64],
        secp256k1::ecdsa::RecoveryId::try_from(i32::from(sig.signature.recovery_id)).unwrap(),
    )
    .unwrap();
    let pk = secp
        .recover_ecdsa(&secp256k1::Message::from_digest(sig.digest), &rec)
        .unwrap();
    pk.serialize().to_vec()
}

async fn mined(anvil: &Anvil, raw: &[u8]) -> serde_json::Value {
    let hash = anvil
        .rpc(
            "eth_sendRawTransaction",
            json!([format!("0x{}", hex::encode(raw))]),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = anvil.rpc("eth_getTransactionReceipt", json!([hash])).await;
        if !r.is_null() {
            return r;
        }
        assert!(Instant::now() < deadline, "not mined");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn mint_sign_send_on_anvil_permissions_and_a_node_down() {
    let anvil = Anvil::start().await;
    let mut net = TestNet::start(5, LayoutOptions::default()).await;
    let client = LitClient::connect(Bootstrap::NetworkFile(net.network_file()))
        .await
        .unwrap();
    let owner = Wallet::random();
    let stranger = Wallet::random();

    // mint: the record is in the shared registry, every node serves it
    let pkp = client.mint_pkp(&owner).await.unwrap();
    assert_eq!(pkp.owner, owner.address().to_checksum());
    let again = client.pkp(pkp.token_id.0).await.unwrap();
    assert_eq!(again, pkp);

    // a digest, verified by libsecp256k1
    let digest = [0x42u8; 32];
    let sig = client
        .pkp_sign(&pkp, ToSign::Digest(Bytes32(digest)), auth(&client, &owner))
        .await
        .unwrap();
    assert_eq!(sig.presignature, PresignatureSource::Fresh);
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
    // an EIP-191 message recovers to the PKP's address like a wallet's personal_sign
    let sig = client
        .pkp_sign(
            &pkp,
            ToSign::Message(Bytes(b"hello from a PKP".to_vec())),
            auth(&client, &owner),
        )
        .await
        .unwrap();
    let signer = recover_address(
        &eip191_hash(b"hello from a PKP"),
        &sig.signature.to_ethereum_bytes(),
    )
    .unwrap();
    assert_eq!(signer.to_checksum(), pkp.eth_address);

    // fund the PKP on anvil; EIP-1559 and legacy EIP-155 transactions mined from its address
    anvil.fund(&pkp.eth_address, "0xde0b6b3a7640000").await;
    let chain_id = u128::from_str_radix(
        anvil
            .rpc("eth_chainId", json!([]))
            .await
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let to = [0x77u8; 20];
    let tx = EthTransaction::Eip1559(Eip1559Transaction {
        chain_id,
        nonce: 0,
        max_priority_fee_per_gas: 1_000_000_000,
        max_fee_per_gas: 20_000_000_000,
        gas_limit: 21_000,
        to: Some(to),
        value: 12345,
        data: vec![],
    });
    let (raw, _) = client
        .pkp_sign_transaction(&pkp, &tx, auth(&client, &owner))
        .await
        .unwrap();
    let receipt = mined(&anvil, &raw).await;
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    assert_eq!(
        Address::parse(receipt["from"].as_str().unwrap())
            .unwrap()
            .to_checksum(),
        pkp.eth_address
    );
    let legacy = EthTransaction::Legacy(LegacyTransaction {
        chain_id,
        nonce: 1,
        gas_price: 20_000_000_000,
        gas_limit: 21_000,
        to: Some(to),
        value: 1,
        data: vec![],
    });
    let (raw, _) = client
        .pkp_sign_transaction(&pkp, &legacy, auth(&client, &owner))
        .await
        .unwrap();
    let receipt = mined(&anvil, &raw).await;
    assert_eq!(receipt["status"], "0x1");
    assert_eq!(
        Address::parse(receipt["from"].as_str().unwrap())
            .unwrap()
            .to_checksum(),
        pkp.eth_address
    );
    let balance = anvil
        .rpc(
            "eth_getBalance",
            json!([format!("0x{}", hex::encode(to)), "latest"]),
        )
        .await;
    assert_eq!(balance, "0x303a"); // 12345 + 1

    // a stranger is refused by the nodes, with the documented code
    let err = client
        .pkp_sign(
            &pkp,
            ToSign::Digest(Bytes32(digest)),
            auth(&client, &stranger),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NodesFailed { .. }), "{err}");
    assert!(
        err.failures()
            .iter()
            .any(|f| f.reason.code() == Some(ErrorCode::NotPermitted)),
        "{err}"
    );
    // nor may the stranger change permissions
    let err = client
        .pkp_permit(
            &stranger,
            pkp.token_id.0,
            PermissionChange::AddAddress {
                address: stranger.address().to_checksum(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        err.failures()
            .iter()
            .any(|f| f.reason.code() == Some(ErrorCode::NotPermitted)),
        "{err}"
    );
    // the owner permits the stranger, who then signs
    let updated = client
        .pkp_permit(
            &owner,
            pkp.token_id.0,
            PermissionChange::AddAddress {
                address: stranger.address().to_checksum(),
            },
        )
        .await
        .unwrap();
    assert!(updated
        .permissions
        .addresses
        .contains(&stranger.address().to_checksum()));
    let sig = client
        .pkp_sign(
            &pkp,
            ToSign::Digest(Bytes32(digest)),
            auth(&client, &stranger),
        )
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);

    // n - T = 1 node down: signing still works (a group with the dead node is retried without it)
    net.kill(3);
    for _ in 0..3 {
        let sig = client
            .pkp_sign(
                &pkp,
                ToSign::Digest(Bytes32([7; 32])),
                auth(&client, &owner),
            )
            .await
            .unwrap();
        assert!(!sig.group.contains(&3));
        assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
    }
}
