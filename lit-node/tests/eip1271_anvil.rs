//! EIP-1271 contract-wallet auth sigs against a real EVM: `anvil` runs the Solidity wallet of
//! `tests/contracts/Wallet1271.sol` (compiled by `solcjs`), whose `isValidSignature` checks the
//! owner's ECDSA signature with the `ecrecover` precompile, an implementation independent of
//! ours.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use k256::ecdsa::SigningKey;
use lit_api::v1::AuthSig;
use lit_api::ErrorCode;
use lit_node::auth::eip1271::{
    is_valid_signature, verify_contract_auth_sig, Eip1271Error, DERIVED_VIA_EIP1271,
};
use lit_node::auth::{eip191_hash, Address, AuthError, SiweMessage};
use lit_node::conditions::rpc::ChainRpc;
use support::evm::{compile, Anvil};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// anvil's default chain id.
const ANVIL_CHAIN_ID: u64 = 31337;

fn contracts() -> &'static BTreeMap<String, Vec<u8>> {
    static CODE: OnceLock<BTreeMap<String, Vec<u8>>> = OnceLock::new();
    CODE.get_or_init(|| {
        compile(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contracts/Wallet1271.sol"))
    })
}

fn key(seed: u8) -> (SigningKey, Address) {
    let key = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
    let address = Address::from_public_key(key.verifying_key());
    (key, address)
}

/// anvil, the RPC client the verifier uses, and a wallet owned by `owner`.
struct Chain {
    anvil: Anvil,
    rpc: ChainRpc,
    wallet: Address,
}

async fn chain_with_wallet(owner: &Address) -> Chain {
    let anvil = Anvil::start().await;
    // creation code ‖ abi.encode(owner)
    let mut code = contracts()["Wallet1271"].clone();
    code.extend_from_slice(&[0u8; 12]);
    code.extend_from_slice(&owner.0);
    let wallet = Address::parse(&anvil.deploy(&code).await).unwrap();
    let rpc = ChainRpc::new(anvil.url.clone(), Duration::from_secs(10)).unwrap();
    Chain { anvil, rpc, wallet }
}

fn at(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap()
}

fn siwe(address: &Address, chain_id: u64, not_before: &str, expiry: &str) -> String {
    SiweMessage {
        statement: Some("Sign in with my contract wallet.".into()),
        expiration_time: Some(expiry.parse().unwrap()),
        not_before: Some(not_before.parse().unwrap()),
        ..SiweMessage::new(
            "localhost",
            *address,
            "lit:session:abc",
            chain_id,
            "abcdef123456",
            "2026-01-01T00:00:00Z".parse().unwrap(),
        )
    }
    .to_string()
}

/// An `AuthSig` for the contract wallet, signed (EIP-191 `personal_sign`) by `signer`.
fn auth_sig(wallet: &Address, signer: &SigningKey, message: String) -> AuthSig {
    let sig = lit_crypto::eth::personal_sign(signer, message.as_bytes()).unwrap();
    AuthSig {
        sig: format!("0x{}", hex::encode(sig)),
        derived_via: DERIVED_VIA_EIP1271.into(),
        signed_message: message,
        address: wallet.to_checksum(),
        algo: None,
    }
}

const NOW: &str = "2026-01-01T12:00:00Z";

fn valid_message(wallet: &Address) -> String {
    siwe(
        wallet,
        ANVIL_CHAIN_ID,
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:00Z",
    )
}

#[tokio::test]
async fn owner_signed_siwe_verifies_as_the_contract_address() {
    let (owner_key, owner) = key(7);
    let chain = chain_with_wallet(&owner).await;
    let auth = auth_sig(&chain.wallet, &owner_key, valid_message(&chain.wallet));
    let (who, message) = verify_contract_auth_sig(&auth, at(NOW), &chain.rpc)
        .await
        .unwrap();
    assert_eq!(who, chain.wallet);
    assert_ne!(who, owner);
    assert_eq!(message.chain_id, ANVIL_CHAIN_ID);

    // the low-level call: the same signature is valid for this hash and no other
    let sig = hex::decode(auth.sig.trim_start_matches("0x")).unwrap();
    let hash = eip191_hash(auth.signed_message.as_bytes());
    assert!(is_valid_signature(&chain.rpc, &chain.wallet, hash, &sig)
        .await
        .unwrap());
    let mut other_hash = hash;
    other_hash[0] ^= 1;
    assert!(
        !is_valid_signature(&chain.rpc, &chain.wallet, other_hash, &sig)
            .await
            .unwrap()
    );
    // a signature of the wrong length: the wallet answers 0xffffffff
    assert!(
        !is_valid_signature(&chain.rpc, &chain.wallet, hash, &sig[..64])
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn signature_by_another_key_or_for_another_message_is_refused() {
    let (owner_key, owner) = key(7);
    let (stranger_key, _) = key(8);
    let chain = chain_with_wallet(&owner).await;
    let forged = auth_sig(&chain.wallet, &stranger_key, valid_message(&chain.wallet));
    let err = verify_contract_auth_sig(&forged, at(NOW), &chain.rpc)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Eip1271Error::Rejected { contract, reason }
            if *contract == chain.wallet.to_checksum() && reason.contains("0xffffffff")),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::InvalidAuth);

    // the owner's signature, but the message was altered after signing
    let mut altered = auth_sig(&chain.wallet, &owner_key, valid_message(&chain.wallet));
    altered.signed_message = altered.signed_message.replace("my contract", "a contract");
    assert!(matches!(
        verify_contract_auth_sig(&altered, at(NOW), &chain.rpc).await,
        Err(Eip1271Error::Rejected { .. })
    ));

    // signed by the owner, but claiming to be another wallet (the owner's own address, an EOA)
    let mut claims_other = auth_sig(&owner, &owner_key, valid_message(&owner));
    claims_other.derived_via = DERIVED_VIA_EIP1271.into();
    let err = verify_contract_auth_sig(&claims_other, at(NOW), &chain.rpc)
        .await
        .unwrap_err();
    assert!(matches!(err, Eip1271Error::NotAContract { .. }), "{err}");

    // not an EIP-1271 auth sig at all
    let mut wrong_kind = auth_sig(&chain.wallet, &owner_key, valid_message(&chain.wallet));
    wrong_kind.derived_via = "web3.eth.personal.sign".into();
    assert!(matches!(
        verify_contract_auth_sig(&wrong_kind, at(NOW), &chain.rpc).await,
        Err(Eip1271Error::Auth(AuthError::Malformed(_)))
    ));
    drop(chain.anvil);
}

#[tokio::test]
async fn expired_not_yet_valid_and_other_chain_messages_are_refused() {
    let (owner_key, owner) = key(7);
    let chain = chain_with_wallet(&owner).await;
    let good = auth_sig(&chain.wallet, &owner_key, valid_message(&chain.wallet));
    let err = verify_contract_auth_sig(&good, at("2026-01-02T00:00:00Z"), &chain.rpc)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Eip1271Error::Auth(AuthError::Expired(_))),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::AuthExpired);
    let err = verify_contract_auth_sig(&good, at("2025-12-31T23:59:59Z"), &chain.rpc)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Eip1271Error::Auth(AuthError::NotYetValid(_))),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::AuthExpired);

    // validly signed by the owner, but for chain 1 while the RPC serves anvil's chain
    let mainnet = siwe(
        &chain.wallet,
        1,
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:00Z",
    );
    let err = verify_contract_auth_sig(
        &auth_sig(&chain.wallet, &owner_key, mainnet),
        at(NOW),
        &chain.rpc,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        Eip1271Error::WrongChain {
            message: 1,
            rpc: ANVIL_CHAIN_ID
        }
    );
    assert_eq!(err.code(), ErrorCode::InvalidAuth);
}

#[tokio::test]
async fn addresses_that_are_not_eip1271_wallets_are_refused_with_a_clear_error() {
    let (owner_key, owner) = key(7);
    let chain = chain_with_wallet(&owner).await;
    let counter = Address::parse(&chain.anvil.deploy(&contracts()["Counter"]).await).unwrap();
    let sink = Address::parse(&chain.anvil.deploy(&contracts()["Sink"]).await).unwrap();
    let (_, eoa) = key(9);
    chain.anvil.fund(&eoa.to_checksum(), "0x1000").await;

    // a contract without isValidSignature (and without fallback): the call reverts
    let err = verify_contract_auth_sig(
        &auth_sig(&counter, &owner_key, valid_message(&counter)),
        at(NOW),
        &chain.rpc,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Eip1271Error::Rejected { contract, reason }
            if *contract == counter.to_checksum() && reason.contains("reverted")),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::InvalidAuth);

    // a contract whose fallback returns nothing
    let err = verify_contract_auth_sig(
        &auth_sig(&sink, &owner_key, valid_message(&sink)),
        at(NOW),
        &chain.rpc,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Eip1271Error::NotEip1271 { contract, .. } if *contract == sink.to_checksum()),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::InvalidAuth);

    // an externally owned account (funded, but without code)
    let err = verify_contract_auth_sig(
        &auth_sig(&eoa, &owner_key, valid_message(&eoa)),
        at(NOW),
        &chain.rpc,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        Eip1271Error::NotAContract {
            address: eoa.to_checksum()
        }
    );
    assert!(err.to_string().contains("not a contract"), "{err}");
}

#[tokio::test]
async fn an_unreachable_chain_is_a_chain_error_not_a_refusal() {
    let (owner_key, owner) = key(7);
    let chain = chain_with_wallet(&owner).await;
    let auth = auth_sig(&chain.wallet, &owner_key, valid_message(&chain.wallet));
    let url = chain.anvil.url.clone();
    drop(chain.anvil); // anvil is killed: its port refuses connections
    let rpc = ChainRpc::new(url, Duration::from_secs(5)).unwrap();
    let err = verify_contract_auth_sig(&auth, at(NOW), &rpc)
        .await
        .unwrap_err();
    assert!(matches!(err, Eip1271Error::Rpc(_)), "{err}");
    assert_eq!(err.code(), ErrorCode::ChainUnavailable);
}
