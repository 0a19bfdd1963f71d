//! Session signatures made by the real client code (`lit_client::session`) and verified by the
//! node (`lit_node::auth::session`), including PKP sessions whose capability is signed by a
//! trusted-dealer BLS network key combined from threshold shares as the network combines them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use lit_api::session::{
    LitAbility, LitResource, ResourceAbilityRequest, ResourceId, SessionSig, SessionSignedMessage,
};
use lit_api::v1::AuthSig;
use lit_api::ErrorCode;
use lit_client::session::{network_capability, pkp_capability_message, Session, SessionKey};
use lit_client::Wallet;
use lit_crypto::bls;
use lit_crypto::protocol::PartyId;
use lit_node::auth::session::{
    verify_session_sig, CapabilityError, CapabilitySigner, ReplayGuard, SessionContext,
    SessionError,
};
use rand_core::OsRng;
use time::OffsetDateTime;

const NODE: &str = "http://127.0.0.1:7470";
const OTHER_NODE: &str = "http://127.0.0.1:7471";
const T0: u64 = 1_790_000_000;
const TOKEN_A: &str = "a1b2";
const TOKEN_B: &str = "c3d4";

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn odt(secs: u64) -> OffsetDateTime {
    OffsetDateTime::from(at(secs))
}

fn req(resource: &str, ability: LitAbility) -> ResourceAbilityRequest {
    ResourceAbilityRequest::new(resource.parse().unwrap(), ability).unwrap()
}

fn pkp(token: &str) -> ResourceAbilityRequest {
    req(&format!("lit-pkp://{token}"), LitAbility::PkpSigning)
}

/// A network key that nobody in the test uses to sign sessions from wallets.
fn some_network_key() -> bls::PublicKey {
    bls::SecretKey::random(&mut OsRng).public_key()
}

fn wallet_session(grants: Vec<ResourceAbilityRequest>, ttl: u64) -> (Wallet, Session) {
    let wallet = Wallet::random();
    let s = Session::from_wallet_at(
        SessionKey::random(),
        &wallet,
        DOMAIN,
        grants,
        at(T0),
        Duration::from_secs(ttl),
    )
    .unwrap();
    (wallet, s)
}

/// The network's SIWE domain in these tests.
const DOMAIN: &str = "devnet.lit";

/// What the node at `node` of a network with key `network` checks against.
fn context<'a>(node: &'a str, network: &'a bls::PublicKey) -> SessionContext<'a> {
    SessionContext {
        node_address: node,
        domain: DOMAIN,
        network_key: network,
        contract_verified: &[],
    }
}

fn verify(
    sig: &SessionSig,
    request: &ResourceAbilityRequest,
    now: u64,
    network: &bls::PublicKey,
) -> Result<lit_node::auth::session::VerifiedSession, SessionError> {
    verify_session_sig(
        sig,
        &context(NODE, network),
        request,
        odt(now),
        &ReplayGuard::default(),
    )
}

/// Re-signs a modified copy of the session's signed message with `key`.
fn resign(
    key: &SessionKey,
    sig: &SessionSig,
    edit: impl FnOnce(&mut SessionSignedMessage),
) -> SessionSig {
    let mut m: SessionSignedMessage = serde_json::from_str(&sig.signed_message).unwrap();
    edit(&mut m);
    key.sign_message(&m)
}

#[test]
fn valid_wallet_session_verifies_and_names_the_wallet() {
    let (wallet, s) = wallet_session(vec![pkp(TOKEN_A)], 3600);
    let sig = s.sign_for_node(NODE, at(T0 + 10)).unwrap();
    let v = verify(&sig, &pkp(TOKEN_A), T0 + 20, &some_network_key()).unwrap();
    assert_eq!(v.authorized_address, wallet.address());
    assert_eq!(v.authorized_by, CapabilitySigner::Wallet);
    assert_eq!(v.session_key, s.key().public_key());
    assert_eq!(v.expires_at, odt(T0 + 3600));
    // a trailing slash in the node's own address is not a difference
    verify_session_sig(
        &sig,
        &context("http://127.0.0.1:7470/", &some_network_key()),
        &pkp(TOKEN_A),
        odt(T0 + 20),
        &ReplayGuard::default(),
    )
    .unwrap();
}

#[test]
fn a_signature_for_another_node_is_refused() {
    let (_, s) = wallet_session(vec![pkp(TOKEN_A)], 3600);
    let sig = s.sign_for_node(OTHER_NODE, at(T0)).unwrap();
    let err = verify(&sig, &pkp(TOKEN_A), T0, &some_network_key()).unwrap_err();
    assert!(matches!(err, SessionError::WrongNode { .. }), "{err}");
    assert_eq!(err.code(), ErrorCode::InvalidAuth);
    assert!(err.to_string().contains("not for this node"), "{err}");
}

#[test]
fn expired_stale_and_future_signatures_are_refused() {
    let (_, s) = wallet_session(vec![pkp(TOKEN_A)], 600);
    let sig = s.sign_for_node(NODE, at(T0 + 500)).unwrap();
    // at and after expiration
    for now in [T0 + 600, T0 + 700] {
        let err = verify(&sig, &pkp(TOKEN_A), now, &some_network_key()).unwrap_err();
        assert!(matches!(err, SessionError::Expired(_)), "{err}");
        assert_eq!(err.code(), ErrorCode::AuthExpired);
    }
    // issued too long ago (sign each request afresh)
    let (_, long) = wallet_session(vec![pkp(TOKEN_A)], 86_400);
    let old = long.sign_for_node(NODE, at(T0)).unwrap();
    verify(&old, &pkp(TOKEN_A), T0 + 300, &some_network_key()).unwrap();
    let err = verify(&old, &pkp(TOKEN_A), T0 + 301, &some_network_key()).unwrap_err();
    assert!(matches!(err, SessionError::Stale(_)), "{err}");
    assert_eq!(err.code(), ErrorCode::AuthExpired);
    // issued in the future beyond the clock skew; within it is fine
    let future = long.sign_for_node(NODE, at(T0 + 120)).unwrap();
    let err = verify(&future, &pkp(TOKEN_A), T0, &some_network_key()).unwrap_err();
    assert!(matches!(err, SessionError::NotYetValid(_)), "{err}");
    assert_eq!(err.code(), ErrorCode::AuthExpired);
    let near = long.sign_for_node(NODE, at(T0 + 60)).unwrap();
    verify(&near, &pkp(TOKEN_A), T0, &some_network_key()).unwrap();
    // the capability itself expired although the session signature claims otherwise
    let late = s.sign_for_node(NODE, at(T0 + 500)).unwrap();
    let stretched = resign(s.key(), &late, |m| {
        m.issued_at = "2026-09-21T14:23:30Z".into(); // T0 + 610
        m.expiration = "2026-09-21T14:40:00Z".into();
    });
    let err = verify(&stretched, &pkp(TOKEN_A), T0 + 620, &some_network_key()).unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Capability {
                index: 0,
                reason: CapabilityError::Expired(_)
            }
        ),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::AuthExpired);
}

#[test]
fn a_session_outliving_its_capability_is_refused() {
    let (_, s) = wallet_session(vec![pkp(TOKEN_A)], 600);
    let sig = s.sign_for_node(NODE, at(T0)).unwrap();
    let longer = resign(s.key(), &sig, |m| {
        m.expiration = "2026-09-21T14:23:21Z".into(); // T0 + 601
    });
    let err = verify(&longer, &pkp(TOKEN_A), T0 + 1, &some_network_key()).unwrap_err();
    assert!(
        matches!(err, SessionError::OutlivesCapability { .. }),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::InvalidAuth);
}

#[test]
fn resources_and_abilities_must_be_requested_and_granted() {
    let (_, s) = wallet_session(vec![pkp(TOKEN_A)], 600);
    let sig = s.sign_for_node(NODE, at(T0)).unwrap();
    // another PKP than the one requested
    let err = verify(&sig, &pkp(TOKEN_B), T0, &some_network_key()).unwrap_err();
    assert!(matches!(err, SessionError::NotRequested { .. }), "{err}");
    // requested in the session signature, but the capability grants only TOKEN_A
    let wider = resign(s.key(), &sig, |m| {
        m.resource_ability_requests = vec![pkp(TOKEN_B)];
    });
    let err = verify(&wider, &pkp(TOKEN_B), T0, &some_network_key()).unwrap_err();
    assert!(matches!(err, SessionError::NotGranted { .. }), "{err}");
    assert_eq!(err.code(), ErrorCode::InvalidAuth);
    // an ability that is not granted
    let action = req("lit-litaction://*", LitAbility::LitActionExecution);
    let other_ability = resign(s.key(), &sig, |m| {
        m.resource_ability_requests = vec![action.clone()];
    });
    let err = verify(&other_ability, &action, T0, &some_network_key()).unwrap_err();
    assert!(matches!(err, SessionError::NotGranted { .. }), "{err}");
}

#[test]
fn wildcard_grants_cover_specific_resources() {
    let hash = "ab".repeat(32);
    let data = "cd".repeat(32);
    let (_, s) = wallet_session(
        vec![
            pkp("*"),
            req(
                &format!("lit-accesscontrolcondition://{hash}"),
                LitAbility::AccessControlConditionDecryption,
            ),
        ],
        600,
    );
    let sig = s.sign_for_node(NODE, at(T0)).unwrap();
    for token in [TOKEN_A, TOKEN_B] {
        verify(&sig, &pkp(token), T0, &some_network_key()).unwrap();
    }
    let under = req(
        &format!("lit-accesscontrolcondition://{hash}/{data}"),
        LitAbility::AccessControlConditionDecryption,
    );
    verify(&sig, &under, T0, &some_network_key()).unwrap();
    let elsewhere = req(
        &format!("lit-accesscontrolcondition://{data}/{hash}"),
        LitAbility::AccessControlConditionDecryption,
    );
    assert!(matches!(
        verify(&sig, &elsewhere, T0, &some_network_key()),
        Err(SessionError::NotRequested { .. })
    ));
}

#[test]
fn tampering_and_other_keys_are_refused() {
    let (_, s) = wallet_session(vec![pkp("*")], 600);
    let sig = s.sign_for_node(NODE, at(T0)).unwrap();
    let net = some_network_key();
    // signed message altered after signing
    let mut tampered = sig.clone();
    tampered.signed_message = tampered
        .signed_message
        .replace(NODE, "http://127.0.0.1:7472");
    assert_eq!(
        verify(&tampered, &pkp(TOKEN_A), T0, &net),
        Err(SessionError::BadSignature)
    );
    // signature by another session key, claiming the original one
    let intruder = SessionKey::random();
    let mut forged = intruder.sign_message(&serde_json::from_str(&sig.signed_message).unwrap());
    forged.address = sig.address.clone();
    assert_eq!(
        verify(&forged, &pkp(TOKEN_A), T0, &net),
        Err(SessionError::BadSignature)
    );
    // another session key signing in its own name a message naming the original key
    let own = intruder.sign_message(&serde_json::from_str(&sig.signed_message).unwrap());
    assert!(matches!(
        verify(&own, &pkp(TOKEN_A), T0, &net),
        Err(SessionError::SessionKeyMismatch { .. })
    ));
    // ...or its own key, with the capability stolen from the original session
    let stolen = resign(&intruder, &sig, |m| m.session_key = intruder.public_hex());
    let err = verify(&stolen, &pkp(TOKEN_A), T0, &net).unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Capability {
                index: 0,
                reason: CapabilityError::WrongSessionKey { .. }
            }
        ),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::InvalidAuth);
    // a capability whose grant was widened after the wallet signed it
    let widened = resign(s.key(), &sig, |m| {
        let cap = &mut m.capabilities[0];
        cap.signed_message = cap.signed_message.replace("Nonce: ", "Nonce: 0");
    });
    assert!(matches!(
        verify(&widened, &pkp(TOKEN_A), T0, &net),
        Err(SessionError::Capability {
            reason: CapabilityError::BadSignature,
            ..
        })
    ));
    // wrong algo / derivedVia
    let mut algo = sig.clone();
    algo.algo = "secp256k1".into();
    assert!(matches!(
        verify(&algo, &pkp(TOKEN_A), T0, &net),
        Err(SessionError::Unsupported { field: "algo", .. })
    ));
    let mut via = sig.clone();
    via.derived_via = "web3.eth.personal.sign".into();
    assert!(matches!(
        verify(&via, &pkp(TOKEN_A), T0, &net),
        Err(SessionError::Unsupported { .. })
    ));
    // no capabilities at all
    let none = resign(s.key(), &sig, |m| m.capabilities.clear());
    assert!(matches!(
        verify(&none, &pkp(TOKEN_A), T0, &net),
        Err(SessionError::Malformed(_))
    ));
}

#[test]
fn a_replayed_nonce_is_refused() {
    let (_, s) = wallet_session(vec![pkp("*")], 600);
    let guard = ReplayGuard::default();
    let net = some_network_key();
    let sig = s.sign_for_node(NODE, at(T0)).unwrap();
    let check = |sig: &SessionSig| {
        verify_session_sig(
            sig,
            &context(NODE, &net),
            &pkp(TOKEN_A),
            odt(T0 + 1),
            &guard,
        )
    };
    check(&sig).unwrap();
    let err = check(&sig).unwrap_err();
    assert_eq!(err, SessionError::Replayed);
    assert_eq!(err.code(), ErrorCode::NonceReplayed);
    // a fresh signature of the same session is fine
    check(&s.sign_for_node(NODE, at(T0)).unwrap()).unwrap();
    // an invalid signature does not consume its nonce
    let fresh = s.sign_for_node(NODE, at(T0)).unwrap();
    let mut broken = fresh.clone();
    broken.algo = "none".into();
    assert!(check(&broken).is_err());
    check(&fresh).unwrap();
    assert_eq!(guard.len(), 3);
}

/// A network key dealt to 5 nodes with threshold 3; the capability's signature is combined
/// from 3 nodes' shares, as the client combines the network's answers.
#[test]
fn network_signed_pkp_capability_verifies_under_the_network_key_only() {
    let ids: Vec<PartyId> = PartyId::range(5).collect();
    let (set, shares) = bls::deal_with_trusted_dealer(3, &ids, &mut OsRng).unwrap();
    let pkp_address = Wallet::random().address();
    let key = SessionKey::random();
    let grants = vec![pkp(TOKEN_A)];
    let message = pkp_capability_message(
        DOMAIN,
        &pkp_address,
        &key.public_key(),
        &grants,
        at(T0),
        Duration::from_secs(600),
    )
    .unwrap();
    // the network checks the message before signing it
    let parsed = lit_node::auth::session::parse_capability_message(&message).unwrap();
    assert_eq!(parsed.address, pkp_address);
    assert_eq!(parsed.session_key, key.public_hex());
    assert_eq!(parsed.grants, grants);
    // it signs the message with the party that obtained the session
    let party = format!("address:{}", Wallet::random().address().to_checksum());
    let message = lit_api::session::network_grant_message(&message, &party).unwrap();
    let sig_shares: Vec<_> = shares[1..4]
        .iter()
        .map(|s| s.sign(message.as_bytes()))
        .collect();
    let combined = set.combine(message.as_bytes(), &sig_shares).unwrap();
    let capability: AuthSig = network_capability(message, &combined, &pkp_address);
    let session = Session::from_network_capability(key, capability, grants).unwrap();
    let sig = session.sign_for_node(NODE, at(T0 + 5)).unwrap();

    let v = verify(&sig, &pkp(TOKEN_A), T0 + 5, &set.public_key()).unwrap();
    assert_eq!(v.authorized_address, pkp_address);
    assert_eq!(v.authorized_by, CapabilitySigner::Network);
    assert_eq!(v.network_party.as_deref(), Some(party.as_str()));
    // another party written over the signed one breaks the network's signature
    let owner = format!("address:{}", Wallet::random().address().to_checksum());
    let swapped = resign(session.key(), &sig, |m| {
        let (cap, _) =
            lit_api::session::split_network_grant(&m.capabilities[0].signed_message).unwrap();
        m.capabilities[0].signed_message =
            lit_api::session::network_grant_message(cap, &owner).unwrap();
    });
    assert!(matches!(
        verify(&swapped, &pkp(TOKEN_A), T0 + 5, &set.public_key()),
        Err(SessionError::Capability {
            reason: CapabilityError::BadSignature,
            ..
        })
    ));
    // and a network signature over the capability alone names nobody: refused
    let bare = resign(session.key(), &sig, |m| {
        let (cap, _) =
            lit_api::session::split_network_grant(&m.capabilities[0].signed_message).unwrap();
        let cap = cap.to_string();
        let combined = set
            .combine(
                cap.as_bytes(),
                &shares[1..4]
                    .iter()
                    .map(|s| s.sign(cap.as_bytes()))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        m.capabilities[0] = network_capability(cap, &combined, &pkp_address);
    });
    assert!(matches!(
        verify(&bare, &pkp(TOKEN_A), T0 + 5, &set.public_key()),
        Err(SessionError::Capability {
            reason: CapabilityError::Malformed(m),
            ..
        }) if m.contains("party")
    ));
    // refused under another network key
    let err = verify(&sig, &pkp(TOKEN_A), T0 + 5, &some_network_key()).unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Capability {
                reason: CapabilityError::BadSignature,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::InvalidAuth);
    // a network capability claiming another PKP address than its message
    let other = resign(session.key(), &sig, |m| {
        m.capabilities[0].address = Wallet::random().address().to_checksum();
    });
    assert!(matches!(
        verify(&other, &pkp(TOKEN_A), T0 + 5, &set.public_key()),
        Err(SessionError::Capability {
            reason: CapabilityError::Malformed(_),
            ..
        })
    ));
    // a single node's share is not a network signature
    let single = resign(session.key(), &sig, |m| {
        let share = shares[0].sign(m.capabilities[0].signed_message.as_bytes());
        let bytes = share.to_bytes();
        m.capabilities[0].sig = hex::encode(&bytes[bytes.len() - 96..]);
    });
    assert!(matches!(
        verify(&single, &pkp(TOKEN_A), T0 + 5, &set.public_key()),
        Err(SessionError::Capability {
            reason: CapabilityError::BadSignature,
            ..
        })
    ));
    // a capability for another PKP does not grant TOKEN_B
    let wider = resign(session.key(), &sig, |m| {
        m.resource_ability_requests = vec![pkp(TOKEN_B)];
    });
    assert!(matches!(
        verify(&wider, &pkp(TOKEN_B), T0 + 5, &set.public_key()),
        Err(SessionError::NotGranted { .. })
    ));
}

#[test]
fn unknown_resources_and_abilities_in_a_signed_message_are_refused() {
    // the session key is made from a known seed so that the test can sign arbitrary text
    let seed = [42u8; 32];
    let raw = ed25519_dalek::SigningKey::from_bytes(&seed);
    let wallet = Wallet::random();
    let s = Session::from_wallet_at(
        SessionKey::from_bytes(&seed),
        &wallet,
        DOMAIN,
        vec![pkp("*")],
        at(T0),
        Duration::from_secs(600),
    )
    .unwrap();
    let sig = s.sign_for_node(NODE, at(T0)).unwrap();
    for (from, to) in [
        ("lit-pkp://*", "lit-ratelimitincrease://*"),
        ("pkp-signing", "pkp-sign"),
        ("\"nonce\"", "\"unknownField\":1,\"nonce\""),
    ] {
        let text = sig.signed_message.replace(from, to);
        assert_ne!(text, sig.signed_message);
        let mut bad = sig.clone();
        bad.sig = hex::encode(ed25519_dalek::Signer::sign(&raw, text.as_bytes()).to_bytes());
        bad.signed_message = text;
        let err = verify(&bad, &pkp(TOKEN_A), T0, &some_network_key()).unwrap_err();
        assert!(matches!(err, SessionError::Malformed(_)), "{to}: {err}");
        assert_eq!(err.code(), ErrorCode::InvalidAuth);
    }
    assert!("lit-pkp://XYZ".parse::<LitResource>().is_err());
    assert!("pkp-sign".parse::<LitAbility>().is_err());
    assert!(ResourceAbilityRequest::new(
        LitResource::LitAction(ResourceId::Any),
        LitAbility::PkpSigning
    )
    .is_err());
}

#[test]
fn several_capabilities_must_speak_for_one_address_and_their_grants_add_up() {
    let seed = [7u8; 32];
    let wallet = Wallet::random();
    let mk = |w: &Wallet, grants| {
        Session::from_wallet_at(
            SessionKey::from_bytes(&seed),
            w,
            DOMAIN,
            grants,
            at(T0),
            Duration::from_secs(600),
        )
        .unwrap()
    };
    let first = mk(&wallet, vec![pkp(TOKEN_A)]);
    let second = mk(&wallet, vec![pkp(TOKEN_B)]);
    let stranger = mk(&Wallet::random(), vec![pkp(TOKEN_B)]);
    let sig = first.sign_for_node(NODE, at(T0)).unwrap();
    let both = resign(first.key(), &sig, |m| {
        m.capabilities.push(second.capabilities()[0].clone());
        m.resource_ability_requests.push(pkp(TOKEN_B));
    });
    let v = verify(&both, &pkp(TOKEN_B), T0, &some_network_key()).unwrap();
    assert_eq!(v.authorized_address, wallet.address());
    let mixed = resign(first.key(), &sig, |m| {
        m.capabilities.push(stranger.capabilities()[0].clone());
        m.resource_ability_requests.push(pkp(TOKEN_B));
    });
    assert!(matches!(
        verify(&mixed, &pkp(TOKEN_B), T0, &some_network_key()),
        Err(SessionError::Capability {
            index: 1,
            reason: CapabilityError::Malformed(_)
        })
    ));
}

#[test]
fn capability_messages_of_the_wrong_shape_are_refused_before_signing() {
    use lit_node::auth::session::parse_capability_message;
    let pkp_address = Wallet::random().address();
    let key = SessionKey::random();
    let good = pkp_capability_message(
        DOMAIN,
        &pkp_address,
        &key.public_key(),
        &[pkp(TOKEN_A)],
        at(T0),
        Duration::from_secs(600),
    )
    .unwrap();
    parse_capability_message(&good).unwrap();
    let recap_line = good.lines().last().unwrap().to_string();
    let other_recap = lit_api::session::Recap::from_grants(&[pkp(TOKEN_B)]).to_resource_uri();
    let mut no_expiry: Vec<&str> = good.lines().collect();
    no_expiry.retain(|l| !l.starts_with("Expiration Time: "));
    for bad in [
        // the statement no longer says what the ReCap grants
        good.replace(&recap_line, &format!("- {other_recap}")),
        // a second resource
        format!("{good}\n- https://example.com"),
        // not bound to a session key
        good.replace("URI: lit:session:", "URI: https://"),
        good.replace(&key.public_hex(), "abcd"),
        // no expiration
        no_expiry.join("\n"),
        // no ReCap
        good.replace(&format!("\nResources:\n{recap_line}"), ""),
    ] {
        assert_ne!(bad, good);
        assert!(
            matches!(
                parse_capability_message(&bad),
                Err(CapabilityError::Malformed(_))
            ),
            "{bad}"
        );
    }
}
