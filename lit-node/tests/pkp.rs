//! PKPs on a real 5-node network (T = 4): mint, sign a digest and an EIP-191 message (checked by
//! libsecp256k1), sign EIP-1559 and EIP-155 transactions that a real EVM node (anvil) mines from
//! the PKP's address, permissions enforced by every node, and signing with a node down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use lit_api::v1::{PermissionChange, PkpAuth, PkpInfo, PresignatureSource, ToSign};
use lit_api::{Bytes, Bytes32, ErrorCode};
use lit_client::{
    Bootstrap, ClientError, ConnectOptions, Eip1559Transaction, EthTransaction, LegacyTransaction,
    LitClient, Signer, Wallet,
};
use lit_crypto::eth::{eip191_hash, recover_address, Address};
use lit_node::devnet::LayoutOptions;
use serde_json::json;
use sha3::Digest as _;
use support::evm::Anvil;
use support::net::{libsecp_recover, testnet, TestNet};

/// A wallet as the signer: the client makes it a session for each request.
fn auth<'a>(client: &LitClient, wallet: &'a Wallet) -> Signer<'a> {
    let _ = client;
    Signer::Wallet(wallet)
}

/// `n` node processes, a connected client, and a PKP minted by a fresh owner.
async fn with_pkp(n: usize, options: LayoutOptions) -> (TestNet, LitClient, Wallet, PkpInfo) {
    let net = testnet(n).options(options).start().await;
    let (client, owner, pkp) = support::net::client_and_pkp(&net).await;
    (net, client, owner, pkp)
}

/// anvil's EIP-155 chain id.
async fn chain_id(anvil: &Anvil) -> u64 {
    anvil.chain_id().await
}

/// Whether some node refused with `code`.
fn refused_with(err: &ClientError, code: ErrorCode) -> bool {
    err.failures().iter().any(|f| f.reason.code() == Some(code))
}

#[tokio::test]
async fn mint_sign_send_on_anvil_permissions_and_a_node_down() {
    let anvil = Anvil::start().await;
    let mut net = testnet(5).start().await;
    let client = LitClient::connect_with(
        Bootstrap::NetworkFile(net.network_file()),
        ConnectOptions::devnet(),
    )
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
    // no pools on this network: the group generated the presignature, and says so
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
    let chain_id = chain_id(&anvil).await;
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
    let receipt = anvil.send_raw(&raw).await;
    assert!(receipt.status(), "{receipt:?}");
    assert_eq!(receipt.from.to_checksum(None), pkp.eth_address);
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
    let receipt = anvil.send_raw(&raw).await;
    assert!(receipt.status(), "{receipt:?}");
    assert_eq!(receipt.from.to_checksum(None), pkp.eth_address);
    let balance = anvil.balance(&format!("0x{}", hex::encode(to))).await;
    assert_eq!(balance, alloy_primitives::U256::from(12345 + 1));

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
    assert!(refused_with(&err, ErrorCode::NotPermitted), "{err}");
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
    assert!(refused_with(&err, ErrorCode::NotPermitted), "{err}");
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

#[tokio::test]
async fn pooled_presignatures_are_used_once_even_across_a_crash() {
    let options = LayoutOptions {
        presignature_pool: Some(2),
        ..LayoutOptions::default()
    };
    let (mut net, client, owner, pkp) = with_pkp(5, options).await;
    let sign = |d: u8| {
        let (client, pkp, owner) = (&client, &pkp, &owner);
        async move {
            client
                .pkp_sign(pkp, ToSign::Digest(Bytes32([d; 32])), auth(client, owner))
                .await
        }
    };
    // the pools fill in the background; wait until signatures come from them
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut used = Vec::new();
    loop {
        let sig = sign(1).await.unwrap();
        assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
        used.push(sig.presignature_id);
        if sig.presignature == PresignatureSource::Pool {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no pooled presignature after 90 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // a node crashes in the middle of a signing request and restarts with its data folder
    let in_flight = {
        let (client, pkp, owner) = (&client, &pkp, &owner);
        client.pkp_sign(pkp, ToSign::Digest(Bytes32([2; 32])), auth(client, owner))
    };
    let crash = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        net.kill(2);
    };
    let (interrupted, ()) = tokio::join!(in_flight, crash);
    if let Ok(sig) = interrupted {
        used.push(sig.presignature_id);
    }
    net.restart(2).await;
    for d in 3..9 {
        let sig = sign(d).await.unwrap();
        assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
        used.push(sig.presignature_id);
    }
    let distinct: std::collections::BTreeSet<_> = used.iter().collect();
    assert_eq!(distinct.len(), used.len(), "a presignature was used twice");
    // every node recorded what it used durably
    assert!(net.log(1).contains("presignature pool refilled"));
}

/// A well-formed `/v1/pkp/sign` body for the node at `url` in `group` (its own sealing key and
/// session signature).
fn raw_sign_request(
    pkp: &PkpInfo,
    session: &lit_client::Session,
    url: &str,
    digest: [u8; 32],
    group: &[u32],
    request_id: [u8; 32],
) -> serde_json::Value {
    let (_, seal) = lit_crypto::seal::SealSecretKey::generate(&mut rand_core::OsRng);
    serde_json::to_value(lit_api::v1::PkpSignRequest {
        epoch: 1,
        token_id: pkp.token_id,
        to_sign: ToSign::Digest(Bytes32(digest)),
        auth: PkpAuth::SessionSig(
            session
                .sign_for_node(url, std::time::SystemTime::now())
                .unwrap(),
        ),
        group: group.to_vec(),
        request_id: Bytes32(request_id),
        client_public_key: Bytes32(seal.to_bytes()),
    })
    .unwrap()
}

/// Presignatures are the signing group's business: nobody outside it reserves one (the old
/// `/v1/pkp/presignature` is gone, so anonymous calls cannot drain the pools), and a client
/// that sends the members of a group different requests gets no signature: the members never
/// hear the lead's choice for their request and say so, naming the lead.
#[tokio::test]
async fn presignature_pools_cannot_be_reserved_or_split_by_clients() {
    const POOL: usize = 4;
    let options = LayoutOptions {
        presignature_pool: Some(POOL),
        ..LayoutOptions::default()
    };
    let (net, client, owner, pkp) = with_pkp(5, options).await;
    // T = 4 of 5: five rotation groups, each led by its lowest member, each pool filled to 4
    let groups = lit_api::v1::rotation_groups(&[1, 2, 3, 4, 5], 4);
    assert_eq!(groups.len(), 5);
    let full = groups.len() * POOL;
    let started = Instant::now();
    while net.presignatures_refilled() < full {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "pools not full after 300 s: {} of {full} entries",
            net.presignatures_refilled()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "pools full ({full} entries) after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 20 anonymous reservations, well-formed in the old shape, each to the group's lead: as many
    // as there are pool entries in the whole network; every one is refused
    for i in 0..20 {
        let group = &groups[i % groups.len()];
        let lead = group[0];
        let (status, body) = support::net::post(
            &net.url(lead),
            "/v1/pkp/presignature",
            &json!({"epoch": 1, "group": group}),
        )
        .await;
        let code = support::net::code(&body);
        assert!(
            (status, code) == (404, "not_found") || (status, code) == (403, "unauthorized_peer"),
            "reservation {i} at node {lead}: {status} {body}"
        );
    }
    // an old client's `poolCounter` is refused too, not silently ignored
    let session = client
        .session(
            &owner,
            vec![lit_client::pkp_grant(&pkp).unwrap()],
            Duration::from_secs(600),
        )
        .unwrap();
    let mut old_style =
        raw_sign_request(&pkp, &session, &net.url(1), [1; 32], &groups[0], [0x5a; 32]);
    old_style["poolCounter"] = json!(0);
    let (status, body) =
        support::net::post(&net.url(1), lit_api::v1::paths::PKP_SIGN, &old_style).await;
    assert_eq!(
        (status, support::net::code(&body)),
        (400, "malformed_request"),
        "{body}"
    );

    // a client sends the lead of {1, 2, 3, 4} one digest and its members another (same request
    // id): the members meet in another session than the lead's, hear no choice there, and
    // refuse within a bounded wait, naming the lead; none of them signs
    let group = [1u32, 2, 3, 4];
    let request_id = [0x77; 32];
    let to = |id: u32, digest: [u8; 32]| {
        let url = net.url(id);
        let body = raw_sign_request(&pkp, &session, &url, digest, &group, request_id);
        async move {
            let t = Instant::now();
            let r = support::net::post(&url, lit_api::v1::paths::PKP_SIGN, &body).await;
            (r, t.elapsed())
        }
    };
    let (lead, m2, m3, m4) = tokio::join!(
        to(1, [0xaa; 32]),
        to(2, [0xbb; 32]),
        to(3, [0xbb; 32]),
        to(4, [0xbb; 32]),
    );
    // the lead chose a pooled presignature for its own request and signed it alone (a share
    // nobody can use)
    assert_eq!(lead.0 .0, 200, "{}", lead.0 .1);
    assert_eq!(lead.0 .1["presignature"], "pool", "{}", lead.0 .1);
    for (id, ((status, body), took)) in [(2, m2), (3, m3), (4, m4)] {
        assert_eq!(
            (status, support::net::code(&body)),
            (503, "not_ready"),
            "node {id}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("node 1, the signing group's lead, sent no presignature choice"),
            "node {id}: {message}"
        );
        assert!(
            took < lit_node::service::presign::CHOICE_WAIT + Duration::from_secs(10),
            "node {id} waited {took:?}"
        );
    }

    // the pools are untouched (but for the entry the lead of {1, 2, 3, 4} just used): POOL - 1
    // signatures in a row come from them, whichever groups the client picks
    for d in 0..(POOL - 1) as u8 {
        let sig = client
            .pkp_sign(
                &pkp,
                ToSign::Digest(Bytes32([0x60 + d; 32])),
                auth(&client, &owner),
            )
            .await
            .unwrap();
        assert_eq!(sig.presignature, PresignatureSource::Pool, "signature {d}");
        assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
    }
}

#[tokio::test]
async fn openid_connect_auth_methods_with_scopes_through_the_network() {
    use lit_api::v1::IdTokenPurpose;
    use support::oidc::{Issuer, TestKey};
    let key = TestKey::p256("k1");
    let issuer = Issuer::start(&[&key]).await;
    let other_issuer_key = TestKey::p256("k2");
    let options = LayoutOptions {
        extra_config: format!(
            "[oidc.test]\nissuer = \"https://issuer.test\"\njwks_url = \"{}\"\naudiences = [\"app\"]\n",
            issuer.jwks_url
        ),
        ..LayoutOptions::default()
    };
    let (_net, client, owner, pkp) = with_pkp(5, options).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // an ID token for one request: its nonce names what the request does
    let token = |iss: &str, aud: &str, exp: u64, k: &TestKey, purpose: IdTokenPurpose<'_>| {
        k.token(
            &json!({"iss": iss, "sub": "user-7", "aud": aud, "iat": now - 10, "exp": exp,
                        "nonce": purpose.nonce()}),
        )
    };
    let jwt = |t: String| {
        PkpAuth::AuthMethod(lit_api::v1::AuthMethod {
            auth_method_type: lit_api::v1::AUTH_METHOD_TYPE_OIDC,
            access_token: t,
        })
    };
    let message = ToSign::Message(Bytes(b"signed by a Google-style login".to_vec()));
    let for_message = IdTokenPurpose::PkpSign(&message);
    let good = token("https://issuer.test", "app", now + 600, &key, for_message);

    // not yet permitted
    let code_of = |e: &ClientError| e.failures().iter().find_map(|f| f.reason.code());
    let err = client
        .pkp_sign(&pkp, message.clone(), jwt(good.clone()))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::NotPermitted), "{err}");
    // the owner permits this user (keccak256("sub:aud")) to sign personal messages only
    let id = hex::encode(sha3::Keccak256::digest(b"user-7:app"));
    let permit = |scope: lit_api::v1::PkpScope| PermissionChange::AddAuthMethod {
        method: lit_api::v1::PermittedAuthMethod {
            method_type: lit_api::v1::AUTH_METHOD_TYPE_OIDC,
            id: id.clone(),
            scopes: [scope].into(),
        },
    };
    client
        .pkp_permit(
            &owner,
            pkp.token_id.0,
            permit(lit_api::v1::PkpScope::PersonalSign),
        )
        .await
        .unwrap();
    let sig = client
        .pkp_sign(&pkp, message.clone(), jwt(good.clone()))
        .await
        .unwrap();
    let signer = recover_address(
        &eip191_hash(b"signed by a Google-style login"),
        &sig.signature.to_ethereum_bytes(),
    )
    .unwrap();
    assert_eq!(signer.to_checksum(), pkp.eth_address);
    // the scope allows personal messages, not raw digests
    let digest = ToSign::Digest(Bytes32([1; 32]));
    let for_digest = token(
        "https://issuer.test",
        "app",
        now + 600,
        &key,
        IdTokenPurpose::PkpSign(&digest),
    );
    let err = client
        .pkp_sign(&pkp, digest.clone(), jwt(for_digest))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::NotPermitted), "{err}");
    // the token captured by a node signs nothing else: another message, a digest, a session;
    // a token without a nonce signs nothing at all
    let other = ToSign::Message(Bytes(b"send everything to the operator".to_vec()));
    let no_nonce = key.token(&json!({"iss": "https://issuer.test", "sub": "user-7",
                                     "aud": "app", "iat": now - 10, "exp": now + 600}));
    for (to_sign, t) in [
        (other.clone(), good.clone()),
        (digest.clone(), good.clone()),
        (message.clone(), no_nonce),
    ] {
        let err = client.pkp_sign(&pkp, to_sign, jwt(t)).await.unwrap_err();
        assert_eq!(code_of(&err), Some(ErrorCode::InvalidAuth), "{err}");
        assert!(
            format!("{err:?}").contains("not bound to this request"),
            "{err:?}"
        );
    }
    let (session_key, capability) = client
        .pkp_session_capability(&pkp, Duration::from_secs(600))
        .unwrap();
    let err = client
        .pkp_session_with_capability(&pkp, session_key, capability.clone(), jwt(good.clone()))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::InvalidAuth), "{err}");
    // a PKP session for this user: the token names the capability; the user may then sign
    // anything with the session once permitted to
    client
        .pkp_permit(
            &owner,
            pkp.token_id.0,
            permit(lit_api::v1::PkpScope::SignAnything),
        )
        .await
        .unwrap();
    let (session_key, capability) = client
        .pkp_session_capability(&pkp, Duration::from_secs(600))
        .unwrap();
    let for_session = token(
        "https://issuer.test",
        "app",
        now + 600,
        &key,
        IdTokenPurpose::PkpSession(&capability),
    );
    let session = client
        .pkp_session_with_capability(&pkp, session_key, capability, jwt(for_session))
        .await
        .unwrap();
    let sig = client
        .pkp_sign_with_session(&pkp, digest.clone(), &session)
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
    // a Lit Action run by this user: the token names the action and its parameters
    let run = lit_client::ExecuteJs::code(
        "Lit.Actions.setResponse({ response: Lit.Auth.authMethodContexts[0].userId + ':' + n });",
    )
    .param("n", 1);
    let params = run.js_params().clone();
    let cid = run.action_id().unwrap();
    let for_run = |params| {
        token(
            "https://issuer.test",
            "app",
            now + 600,
            &key,
            IdTokenPurpose::Execute {
                ipfs_id: &cid,
                js_params: params,
            },
        )
    };
    let out = client
        .execute_js(run.clone().auth(jwt(for_run(&params))))
        .await
        .unwrap();
    assert_eq!(out.agreed_response().unwrap(), Some("user-7:1"));
    // the same token with other parameters, or a token for signing, runs nothing
    for auth in [jwt(for_run(&params)), jwt(good.clone())] {
        let err = client
            .execute_js(run.clone().param("n", 2).auth(auth))
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), Some(ErrorCode::InvalidAuth), "{err}");
    }
    // unknown issuer, wrong audience, expired, signed by a key the issuer does not publish
    for (t, expected) in [
        (
            token("https://evil.test", "app", now + 600, &key, for_message),
            ErrorCode::InvalidAuth,
        ),
        (
            token(
                "https://issuer.test",
                "other-app",
                now + 600,
                &key,
                for_message,
            ),
            ErrorCode::InvalidAuth,
        ),
        (
            token("https://issuer.test", "app", now - 3600, &key, for_message),
            ErrorCode::AuthExpired,
        ),
        (
            token(
                "https://issuer.test",
                "app",
                now + 600,
                &other_issuer_key,
                for_message,
            ),
            ErrorCode::InvalidAuth,
        ),
    ] {
        let err = client
            .pkp_sign(&pkp, message.clone(), jwt(t))
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), Some(expected), "{err}");
    }
}

#[tokio::test]
async fn session_signatures_wallet_backed_and_network_signed_pkp_sessions() {
    use lit_api::session::{LitAbility, LitResource, ResourceAbilityRequest};
    use lit_client::{Session, SessionKey};
    let (net, client, owner, pkp) = with_pkp(5, LayoutOptions::default()).await;
    let stranger = Wallet::random();
    let grant =
        ResourceAbilityRequest::new(LitResource::pkp(&pkp.token_id.0), LitAbility::PkpSigning)
            .unwrap();
    let digest = ToSign::Digest(Bytes32([9; 32]));

    // a wallet-backed session of the owner signs on every node of the group
    let session = Session::from_wallet(
        &owner,
        client.domain(),
        vec![grant.clone()],
        Duration::from_secs(600),
    )
    .unwrap();
    let sig = client
        .pkp_sign_with_session(&pkp, digest.clone(), &session)
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);

    // raw requests: a session signature made for another node, an expired session, a replay
    let url = |i: u32| net.url(i);
    let request = |auth: PkpAuth| {
        json!({"epoch": 1, "tokenId": pkp.token_id, "toSign": {"digest": "09".repeat(32)},
               "auth": auth, "group": [1, 2, 3, 4], "requestId": "ab".repeat(32),
               "clientPublicKey": hex::encode(lit_crypto::seal::SealSecretKey::generate(&mut rand_core::OsRng).1.to_bytes())})
    };
    let for_node1 = session
        .sign_for_node(&url(1), std::time::SystemTime::now())
        .unwrap();
    let (status, body) = support::net::post(
        &url(2),
        lit_api::v1::paths::PKP_SIGN,
        &request(PkpAuth::SessionSig(for_node1)),
    )
    .await;
    assert_eq!(
        (status, support::net::code(&body)),
        (401, "invalid_auth"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not for this node"),
        "{body}"
    );
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    let expired = Session::from_wallet_at(
        SessionKey::random(),
        &owner,
        client.domain(),
        vec![grant.clone()],
        old,
        Duration::from_secs(3600),
    )
    .unwrap();
    let expired_sig = expired
        .sign_for_node(&url(2), old + Duration::from_secs(60))
        .unwrap();
    let (status, body) = support::net::post(
        &url(2),
        lit_api::v1::paths::PKP_SIGN,
        &request(PkpAuth::SessionSig(expired_sig)),
    )
    .await;
    assert_eq!(
        (status, support::net::code(&body)),
        (401, "auth_expired"),
        "{body}"
    );
    // a stranger's own session is refused by the PKP's permissions
    let theirs = Session::from_wallet(
        &stranger,
        client.domain(),
        vec![grant.clone()],
        Duration::from_secs(600),
    )
    .unwrap();
    let err = client
        .pkp_sign_with_session(&pkp, digest.clone(), &theirs)
        .await
        .unwrap_err();
    assert!(refused_with(&err, ErrorCode::NotPermitted), "{err}");

    // a PKP session: the network signs the capability (threshold BLS) after checking the owner
    let pkp_session = client
        .pkp_session(&pkp, auth(&client, &owner), Duration::from_secs(600))
        .await
        .unwrap();
    let sig = client
        .pkp_sign_with_session(&pkp, digest.clone(), &pkp_session)
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
    // a PKP session cannot vouch for a new one (which would outlive its 24 hours)
    let err = client
        .pkp_session(&pkp, &pkp_session, Duration::from_secs(600))
        .await
        .unwrap_err();
    assert!(refused_with(&err, ErrorCode::InvalidAuth), "{err:?}");
    assert!(format!("{err:?}").contains("cannot vouch"), "{err:?}");
    // the stranger cannot get one
    let err = client
        .pkp_session(&pkp, auth(&client, &stranger), Duration::from_secs(600))
        .await
        .unwrap_err();
    assert!(refused_with(&err, ErrorCode::NotPermitted), "{err}");
    // nor can anyone get one that outlives the network's limit (24 h)
    let err = client
        .pkp_session(
            &pkp,
            auth(&client, &owner),
            Duration::from_secs(30 * 24 * 3600),
        )
        .await
        .unwrap_err();
    assert!(refused_with(&err, ErrorCode::InvalidAuth), "{err}");

    // Bob, permitted, obtains a PKP session and signs; the owner revokes Bob, and Bob's live
    // session ends at its next use (the owner's own session goes on)
    let bob = Wallet::random();
    client
        .pkp_permit(
            &owner,
            pkp.token_id.0,
            PermissionChange::AddAddress {
                address: bob.address().to_checksum(),
            },
        )
        .await
        .unwrap();
    let bobs = client
        .pkp_session(&pkp, auth(&client, &bob), Duration::from_secs(600))
        .await
        .unwrap();
    let sig = client
        .pkp_sign_with_session(&pkp, digest.clone(), &bobs)
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
    client
        .pkp_permit(
            &owner,
            pkp.token_id.0,
            PermissionChange::RemoveAddress {
                address: bob.address().to_checksum(),
            },
        )
        .await
        .unwrap();
    let err = client
        .pkp_sign_with_session(&pkp, digest.clone(), &bobs)
        .await
        .unwrap_err();
    assert!(refused_with(&err, ErrorCode::NotPermitted), "{err}");
    assert!(err.to_string().contains("no longer permitted"), "{err}");
    let sig = client
        .pkp_sign_with_session(&pkp, digest.clone(), &pkp_session)
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
}

#[tokio::test]
async fn lit_action_auth_permitted_action_decides_and_hostile_actions_end_with_their_limit() {
    let (_net, client, owner, pkp) = with_pkp(3, LayoutOptions::default()).await;
    let code =
        r#"Lit.Actions.setResponse({ response: password === "open sesame" ? "true" : "false" });"#;
    let action = |code: &str, password: &str| {
        let mut params = serde_json::Map::new();
        params.insert("password".into(), json!(password));
        PkpAuth::LitAction(lit_api::v1::LitActionAuth {
            code: code.into(),
            js_params: params,
        })
    };
    let digest = ToSign::Digest(Bytes32([3; 32]));
    let code_of = |e: &ClientError| e.failures().iter().find_map(|f| f.reason.code());
    // not permitted yet
    let err = client
        .pkp_sign(&pkp, digest.clone(), action(code, "open sesame"))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::NotPermitted), "{err}");
    let cid = lit_actions::ActionId::of(code.as_bytes()).to_string();
    let looping = "while (true) {}";
    for c in [code, looping] {
        client
            .pkp_permit(
                &owner,
                pkp.token_id.0,
                PermissionChange::AddAction {
                    cid: lit_actions::ActionId::of(c.as_bytes()).to_string(),
                },
            )
            .await
            .unwrap();
    }
    assert!(client
        .pkp(pkp.token_id.0)
        .await
        .unwrap()
        .permissions
        .actions
        .contains(&cid));
    // the permitted action authorises with the right parameter only
    let sig = client
        .pkp_sign(&pkp, digest.clone(), action(code, "open sesame"))
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
    let err = client
        .pkp_sign(&pkp, digest.clone(), action(code, "guess"))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::NotPermitted), "{err}");
    // other code (another CID) is not permitted, however it answers
    let other = r#"Lit.Actions.setResponse({ response: "true" });"#;
    let err = client
        .pkp_sign(&pkp, digest.clone(), action(other, ""))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::NotPermitted), "{err}");
    // a permitted action that never ends is stopped by its time limit; the nodes keep serving
    let err = client
        .pkp_sign(&pkp, digest.clone(), action(looping, ""))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::InvalidAuth), "{err}");
    assert!(err.to_string().contains("time"), "{err}");
    let sig = client
        .pkp_sign(&pkp, digest, action(code, "open sesame"))
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
}

#[tokio::test]
async fn a_contract_wallet_signs_in_with_eip1271_through_the_network() {
    let anvil = Anvil::start().await;
    let (owner_key, owner_address) = support::net::wallet(0x51);
    let (other_key, _) = support::net::wallet(0x52);
    let code = support::evm::compile(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contracts/Wallet1271.sol"),
    );
    // creation code ‖ abi.encode(owner)
    let mut creation = code["Wallet1271"].clone();
    creation.extend_from_slice(&[0u8; 12]);
    creation.extend_from_slice(&owner_address.0);
    let contract = Address::parse(&anvil.deploy(&creation).await).unwrap();
    let chain_id = chain_id(&anvil).await;
    let options = LayoutOptions {
        extra_config: format!(
            "[chains.anvil]\nrpc_url = \"{}\"\nchain_id = {chain_id}\n",
            anvil.url
        ),
        ..LayoutOptions::default()
    };
    let (_net, client, minter, pkp) = with_pkp(3, options).await;
    client
        .pkp_permit(
            &minter,
            pkp.token_id.0,
            PermissionChange::AddAddress {
                address: contract.to_checksum(),
            },
        )
        .await
        .unwrap();
    // the contract's capability for a session key: a sign-in to the network's domain on the
    // contract's chain, granting pkp-signing on this PKP, signed by a key the contract trusts
    let contract_session = |signer: &k256::ecdsa::SigningKey| {
        let key = lit_client::SessionKey::random();
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap();
        let grants = [lit_client::pkp_grant(&pkp).unwrap()];
        let mut message =
            lit_api::session::capability_siwe_message(&lit_api::session::CapabilityMessage {
                domain: client.domain(),
                address: contract,
                session_key: &key.public_hex(),
                grants: &grants,
                issued_at: (now - time::Duration::minutes(1)).try_into().unwrap(),
                expiration: (now + time::Duration::minutes(10)).try_into().unwrap(),
                nonce: "abcdef123456",
            });
        message.chain_id = chain_id;
        let message = message.to_string();
        let sig = lit_crypto::eth::personal_sign(signer, message.as_bytes()).unwrap();
        let capability = lit_api::v1::AuthSig {
            sig: format!("0x{}", hex::encode(sig)),
            derived_via: lit_node::auth::eip1271::DERIVED_VIA_EIP1271.into(),
            signed_message: message,
            address: contract.to_checksum(),
            algo: None,
        };
        lit_client::Session::from_network_capability(key, capability, grants.to_vec()).unwrap()
    };
    let digest = ToSign::Digest(Bytes32([5; 32]));
    // the contract's owner signs for the contract: every node asks the contract (EIP-1271)
    let sig = client
        .pkp_sign(&pkp, digest.clone(), &contract_session(&owner_key))
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
    // someone else's signature: the contract says no
    let err = client
        .pkp_sign(&pkp, digest, &contract_session(&other_key))
        .await
        .unwrap_err();
    assert!(
        err.failures()
            .iter()
            .any(|f| f.reason.code() == Some(ErrorCode::InvalidAuth)),
        "{err}"
    );
}

/// keccak256 in plain JavaScript (BigInt lanes), for auth actions: the auth engine has no
/// crypto library.
const KECCAK256_JS: &str = r#"
function keccak256(bytes) {
  const M = (1n << 64n) - 1n;
  const RC = [0x1n, 0x8082n, 0x800000000000808an, 0x8000000080008000n, 0x808bn, 0x80000001n,
    0x8000000080008081n, 0x8000000000008009n, 0x8an, 0x88n, 0x80008009n, 0x8000000an,
    0x8000808bn, 0x800000000000008bn, 0x8000000000008089n, 0x8000000000008003n,
    0x8000000000008002n, 0x8000000000000080n, 0x800an, 0x800000008000000an,
    0x8000000080008081n, 0x8000000000008080n, 0x80000001n, 0x8000000080008008n];
  const R = [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14];
  const rot = (v, n) => (n === 0 ? v : ((v << BigInt(n)) | (v >> BigInt(64 - n))) & M);
  const s = new Array(25).fill(0n);
  const p = [...bytes, 1];
  while (p.length % 136) p.push(0);
  p[p.length - 1] |= 0x80;
  for (let off = 0; off < p.length; off += 136) {
    for (let i = 0; i < 17; i++) {
      let lane = 0n;
      for (let b = 7; b >= 0; b--) lane = (lane << 8n) | BigInt(p[off + 8 * i + b]);
      s[i] ^= lane;
    }
    for (let round = 0; round < 24; round++) {
      const C = [0, 1, 2, 3, 4].map((x) => s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20]);
      for (let x = 0; x < 5; x++) {
        const D = C[(x + 4) % 5] ^ rot(C[(x + 1) % 5], 1);
        for (let y = 0; y < 25; y += 5) s[x + y] ^= D;
      }
      const B = new Array(25);
      for (let x = 0; x < 5; x++)
        for (let y = 0; y < 5; y++) B[y + 5 * ((2 * x + 3 * y) % 5)] = rot(s[x + 5 * y], R[x + 5 * y]);
      for (let x = 0; x < 5; x++)
        for (let y = 0; y < 5; y++)
          s[x + 5 * y] = B[x + 5 * y] ^ (~B[((x + 1) % 5) + 5 * y] & M & B[((x + 2) % 5) + 5 * y]);
      s[0] ^= RC[round];
    }
  }
  const out = [];
  for (let i = 0; i < 4; i++) for (let b = 0; b < 8; b++) out.push(Number((s[i] >> BigInt(8 * b)) & 0xffn));
  return out;
}
"#;

/// A spending policy as a PKP's auth action: it authorises only a payment message
/// (`{"to": …, "amount": N}`) of at most 100 to this PKP's own key and token, and only when the
/// bytes the node will sign (`toSign`) are the EIP-191 digest of exactly that message.
fn spending_policy(pkp: &PkpInfo) -> String {
    format!(
        r#"{KECCAK256_JS}
const hex = (b) => b.map((x) => x.toString(16).padStart(2, "0")).join("");
let authorized = false;
let why = "";
try {{
  if (!Array.isArray(message) || !Array.isArray(toSign)) throw new Error("no message shown");
  const prefix = Array.from(new TextEncoder().encode("\x19Ethereum Signed Message:\n" + message.length));
  if (hex(keccak256(prefix.concat(message))) !== hex(toSign)) throw new Error("toSign is not this message");
  if (publicKey !== "{key}" || tokenId !== "{token}") throw new Error("another PKP");
  const order = JSON.parse(new TextDecoder().decode(new Uint8Array(message)));
  if (typeof order.amount !== "number" || order.amount > 100) throw new Error("amount over the limit");
  authorized = true;
}} catch (e) {{
  why = String(e);
}}
console.log(why);
Lit.Actions.setResponse({{ response: JSON.stringify({{ authorized }}) }});
"#,
        key = hex::encode(&pkp.public_key.0),
        token = hex::encode(pkp.token_id.0),
    )
}

#[tokio::test]
async fn an_auth_action_sees_exactly_what_it_authorises() {
    let (_net, client, owner, pkp) = with_pkp(3, LayoutOptions::default()).await;
    let policy = spending_policy(&pkp);
    // a session policy: a session capability of this PKP, never a signing request
    let session_policy = format!(
        r#"Lit.Actions.setResponse({{ response: String(
            typeof sessionCapability === "string" && sessionCapability.includes("{address}")
            && toSign === null && message === null) }});"#,
        address = pkp.eth_address
    );
    for code in [&policy, &session_policy] {
        client
            .pkp_permit(
                &owner,
                pkp.token_id.0,
                PermissionChange::AddAction {
                    cid: lit_actions::ActionId::of(code.as_bytes()).to_string(),
                },
            )
            .await
            .unwrap();
    }
    let with = |code: &str, params: serde_json::Value| {
        PkpAuth::LitAction(lit_api::v1::LitActionAuth {
            code: code.into(),
            js_params: params.as_object().unwrap().clone(),
        })
    };
    let code_of = |e: &ClientError| e.failures().iter().find_map(|f| f.reason.code());
    let order = |amount: u64| {
        format!(r#"{{"to":"0x7777777777777777777777777777777777777777","amount":{amount}}}"#)
            .into_bytes()
    };
    let (good, greedy) = (order(50), order(5000));

    // a payment within the limit signs, and recovers to the PKP's address; the client's values
    // of the names the node owns are replaced by the node's
    let sig = client
        .pkp_sign(
            &pkp,
            ToSign::Message(Bytes(good.clone())),
            with(
                &policy,
                json!({"publicKey": "00", "tokenId": "00", "toSign": [0], "message": [0]}),
            ),
        )
        .await
        .unwrap();
    let signer = recover_address(&eip191_hash(&good), &sig.signature.to_ethereum_bytes()).unwrap();
    assert_eq!(signer.to_checksum(), pkp.eth_address);
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);

    // over the limit: refused
    let err = client
        .pkp_sign(
            &pkp,
            ToSign::Message(Bytes(greedy.clone())),
            with(&policy, json!({})),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::NotPermitted), "{err}");

    // params claiming the good payment (its bytes and digest), but the greedy one to sign, as a
    // digest or as a message: the action is shown what would be signed, and refuses
    let claim = json!({"message": good.clone(), "toSign": eip191_hash(&good).to_vec()});
    for to_sign in [
        ToSign::Digest(Bytes32(eip191_hash(&greedy))),
        ToSign::Message(Bytes(greedy.clone())),
    ] {
        let err = client
            .pkp_sign(&pkp, to_sign.clone(), with(&policy, claim.clone()))
            .await
            .unwrap_err();
        assert_eq!(
            code_of(&err),
            Some(ErrorCode::NotPermitted),
            "{to_sign:?}: {err}"
        );
    }
    // even the good payment's digest, sent bare: the node shows no message with a digest
    let err = client
        .pkp_sign(
            &pkp,
            ToSign::Digest(Bytes32(eip191_hash(&good))),
            with(&policy, claim.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::NotPermitted), "{err}");

    // a session is not a payment: the spending policy, with the good payment claimed, is shown
    // the capability and no toSign, and refuses; the session policy grants it
    let err = client
        .pkp_session(&pkp, with(&policy, claim), Duration::from_secs(600))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::NotPermitted), "{err}");
    let session = client
        .pkp_session(
            &pkp,
            with(&session_policy, json!({"toSign": [1, 2, 3]})),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    let sig = client
        .pkp_sign_with_session(&pkp, ToSign::Digest(Bytes32([5; 32])), &session)
        .await
        .unwrap();
    assert_eq!(libsecp_recover(&sig), pkp.public_key.0);
    // and the session policy never authorises a signature
    let err = client
        .pkp_sign(
            &pkp,
            ToSign::Message(Bytes(good)),
            with(&session_policy, json!({})),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::NotPermitted), "{err}");
}
