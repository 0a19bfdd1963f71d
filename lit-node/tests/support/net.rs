//! Real node processes on loopback for tests ([`lit_node::testnet`] running the `lit-node`
//! binary cargo built for them), and raw wire helpers: wallets, auth signatures, and requests
//! built by hand, so tests can send exactly the bad input they mean to.

use k256::ecdsa::SigningKey;
use lit_api::session::{
    capability_siwe_message, CapabilityMessage, LitAbility, LitResource, ResourceAbilityRequest,
    SessionSignedMessage,
};
use lit_api::siwe::SiweMessage;
use lit_api::v1::{AuthSig, DERIVED_VIA_PERSONAL_SIGN};
use lit_crypto::eth::{personal_sign, Address};
use lit_node::devnet::NodeProgram;
pub use lit_node::testnet::{Builder, TestNet};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// A test network of the `lit-node` binary cargo built for these tests: configure it, then
/// `.start().await`.
pub fn testnet(n: usize) -> Builder {
    TestNet::builder(NodeProgram::lit_node(env!("CARGO_BIN_EXE_lit-node")), n)
}

/// The releases a devnet's network file lists (a static devnet's register), as the policy a
/// client given bare URLs needs to approve its nodes.
pub fn listed_releases(net: &TestNet) -> lit_attest::Policy {
    match &net.network().releases {
        Some(lit_api::network::ReleaseSource::Listed { releases }) => {
            lit_attest::Policy::default().with_releases(releases.clone())
        }
        other => panic!("the devnet lists no releases: {other:?}"),
    }
}

/// A wallet from a fixed seed byte.
pub fn wallet(seed: u8) -> (SigningKey, Address) {
    let key = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
    let address = Address::from_public_key(key.verifying_key());
    (key, address)
}

/// An EIP-4361 message for `address`, valid from `issued` until `expires`.
pub fn siwe(address: &Address, issued: OffsetDateTime, expires: OffsetDateTime) -> String {
    SiweMessage {
        statement: Some("Decrypt with Lit.".into()),
        expiration_time: Some(expires.try_into().unwrap()),
        ..SiweMessage::new(
            "localhost",
            *address,
            "lit:session:test",
            1,
            "abcdef123456",
            issued.try_into().unwrap(),
        )
    }
    .to_string()
}

/// A wallet-signed auth valid for `ttl` seconds from now (negative: already expired).
pub fn auth_sig(key: &SigningKey, ttl: i64) -> AuthSig {
    let address = Address::from_public_key(key.verifying_key());
    let now = OffsetDateTime::now_utc();
    let message = siwe(
        &address,
        now - time::Duration::minutes(10),
        now + time::Duration::seconds(ttl),
    );
    let sig = personal_sign(key, message.as_bytes()).unwrap();
    AuthSig {
        sig: format!("0x{}", hex::encode(sig)),
        derived_via: DERIVED_VIA_PERSONAL_SIGN.into(),
        signed_message: message,
        address: address.to_checksum(),
        algo: None,
    }
}

/// A wallet's session signature for the node at `url`, in the `authSig` shape (as decryption
/// requests carry it): a fresh session key whose capability `key` signed, a sign-in to
/// `domain` issued ten minutes ago that expires `ttl` seconds from now (negative: already
/// expired) and grants `ability` on `resource`.
pub fn session_auth(
    key: &SigningKey,
    domain: &str,
    url: &str,
    resource: LitResource,
    ability: LitAbility,
    ttl: i64,
) -> AuthSig {
    session_auth_with(key, domain, url, resource, ability, ttl, |_| {})
}

/// Like [`session_auth`], with `edit` applied to the capability's SIWE message before the
/// wallet signs it (a stretched life, no expiry, another domain).
pub fn session_auth_with(
    key: &SigningKey,
    domain: &str,
    url: &str,
    resource: LitResource,
    ability: LitAbility,
    ttl: i64,
    edit: impl FnOnce(&mut SiweMessage),
) -> AuthSig {
    let address = Address::from_public_key(key.verifying_key());
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let expires = now + time::Duration::seconds(ttl);
    let session = lit_client::SessionKey::random();
    let grants = [ResourceAbilityRequest::new(resource, ability).unwrap()];
    let mut message = capability_siwe_message(&CapabilityMessage {
        domain,
        address,
        session_key: &session.public_hex(),
        grants: &grants,
        issued_at: (now - time::Duration::minutes(10)).try_into().unwrap(),
        expiration: expires.try_into().unwrap(),
        nonce: "abcdef123456",
    });
    edit(&mut message);
    let message = message.to_string();
    let sig = personal_sign(key, message.as_bytes()).unwrap();
    let capability = AuthSig {
        sig: format!("0x{}", hex::encode(sig)),
        derived_via: DERIVED_VIA_PERSONAL_SIGN.into(),
        signed_message: message,
        address: address.to_checksum(),
        algo: None,
    };
    let issued = now.min(expires - time::Duration::seconds(1));
    let rfc = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    session
        .sign_message(&SessionSignedMessage {
            session_key: session.public_hex(),
            resource_ability_requests: grants.to_vec(),
            capabilities: vec![capability],
            issued_at: rfc(issued),
            expiration: rfc(expires.min(now + time::Duration::minutes(5))),
            node_address: url.to_string(),
            nonce: hex::encode(nonce),
            max_price: None,
            payer: None,
        })
        .into()
}

/// The resource of the data `data` encrypted under `conditions`.
pub fn decryption_resource(conditions: &Value, data: &[u8]) -> LitResource {
    use sha2::Digest as _;
    let identity = lit_crypto::identity::AccessControlIdentity::for_conditions(
        conditions,
        sha2::Sha256::digest(data).into(),
    )
    .unwrap();
    LitResource::decryption_of(&identity)
}

/// A session signature for node `url` of a network with SIWE domain `domain` that lets `key`'s
/// wallet decrypt `data` encrypted under `conditions` (see [`session_auth`]).
pub fn decrypt_auth(
    key: &SigningKey,
    domain: &str,
    url: &str,
    conditions: &Value,
    data: &[u8],
    ttl: i64,
) -> AuthSig {
    session_auth(
        key,
        domain,
        url,
        decryption_resource(conditions, data),
        LitAbility::AccessControlConditionDecryption,
        ttl,
    )
}

/// `[:userAddress == address]`, a condition that needs no chain call.
pub fn user_is(address: &Address) -> Value {
    json!([{"conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
            "chain": "anvil", "method": "", "parameters": [":userAddress"],
            "returnValueTest": {"comparator": "=", "value": address.to_checksum()}}])
}

/// An HTTPS client to nodes that accepts any node's certificate (tests that make raw requests).
pub fn https_client() -> reqwest::Client {
    lit_node::https::any_node_client(std::time::Duration::from_secs(30)).unwrap()
}

/// POSTs a raw body; returns the status and the parsed JSON (or the text as a JSON string).
///
/// A node may answer a body it refuses (too large) before it has read it and close the
/// connection, so the client can fail writing the rest (`BrokenPipe`) without seeing the
/// answer: such a send is tried again, a few times, until the answer is read.
pub async fn post_raw(url: &str, path: &str, body: String) -> (u16, Value) {
    let mut attempt = 0;
    let resp = loop {
        attempt += 1;
        let sent = https_client()
            .post(format!("{url}{path}"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => break resp,
            Err(e) if e.is_request() && attempt < 5 => {
                eprintln!("post_raw {path}: the node closed the request early ({e}); again");
            }
            Err(e) => panic!("POST {path}: {e:?}"),
        }
    };
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// POSTs JSON.
pub async fn post(url: &str, path: &str, body: &Value) -> (u16, Value) {
    post_raw(url, path, body.to_string()).await
}

/// The error code of an error envelope.
pub fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error envelope: {body}"))
}

/// The public key (SEC1 compressed) that a PKP signature recovers to with libsecp256k1, an
/// implementation independent of ours.
pub fn libsecp_recover(sig: &lit_client::PkpSignature) -> Vec<u8> {
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

/// A client of `net` (the devnet's network file) and a PKP minted by a fresh owner.
pub async fn client_and_pkp(
    net: &TestNet,
) -> (
    lit_client::LitClient,
    lit_client::Wallet,
    lit_api::v1::PkpInfo,
) {
    let client = lit_client::LitClient::connect_with(
        lit_client::Bootstrap::NetworkFile(net.network_file()),
        lit_client::ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    let owner = lit_client::Wallet::random();
    let pkp = client.mint_pkp(&owner).await.unwrap();
    (client, owner, pkp)
}

/// `wallet`'s view of the devnet's ledger, once it has `tokens` from the devnet's faucet (its
/// admin) and has deposited `deposit` of them.
pub async fn funded(
    net: &mut TestNet,
    wallet: &lit_client::Wallet,
    tokens: u128,
    deposit: u128,
) -> std::sync::Arc<dyn lit_node::chain::payments::Payments> {
    net.devnet()
        .staking_admin()
        .await
        .unwrap()
        .transfer_token(wallet.address(), tokens)
        .await
        .unwrap();
    let ledger = net
        .devnet()
        .payments_as(wallet.signing_key())
        .await
        .unwrap();
    ledger.deposit(deposit).await.unwrap();
    ledger
}

/// Waits until every node in `ids` serves `price` for `product` (an index of the ledger's price
/// list; the nodes read the prices at each settlement): a request served before would be charged
/// the old price.
pub async fn prices_read(net: &TestNet, ids: &[u32], product: usize, price: u128) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for id in ids {
        loop {
            let resp = https_client()
                .get(format!("{}{}", net.url(*id), lit_api::v1::paths::LEDGER))
                .send()
                .await
                .unwrap();
            let status: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
            if status["prices"][product] == price.to_string() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}",
                net.logs(&format!("node {id} never read the prices"))
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}
