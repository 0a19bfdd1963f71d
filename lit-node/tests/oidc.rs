//! OpenID Connect ID token verification against a local issuer on loopback.
//!
//! The issuer is an axum server publishing a JSON Web Key Set the tests change at run time (key
//! rotation) or take down. Tokens are signed here with the RustCrypto `rsa` (RS256) and `p256`
//! (ES256) implementations; the verifier checks them with `ring` (through `jsonwebtoken`), an
//! independent implementation. Every check runs at an explicit instant, so no test sleeps.
//!
//! Lit's auth method types for Google (6) and Apple (8) ID tokens are checked through a network
//! of real node processes configured with local issuers under Google's and Apple's issuer
//! identifiers: a permission written the way Lit writes it signs, and the types do not mix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lit_api::ErrorCode;
use lit_node::auth::oidc::{
    OidcError, OidcIssuer, OidcVerifier, AUTH_METHOD_TYPE_APPLE_JWT, AUTH_METHOD_TYPE_GOOGLE_JWT,
    AUTH_METHOD_TYPE_OIDC,
};
use serde_json::json;
use sha3::{Digest as _, Keccak256};
use support::oidc::*;

// ---- tests ----

#[tokio::test]
async fn rs256_and_es256_tokens_verify_with_the_right_identity() {
    let keys = &*KEYS;
    let issuer = Issuer::start(&[&keys.rsa_a, &keys.ec]).await;
    let verifier = issuer.verifier();

    let id = verifier
        .verify(&keys.rsa_a.token(&claims("alice")), at(T0))
        .await
        .unwrap();
    assert_eq!(id.issuer, ISSUER);
    assert_eq!(id.subject, "alice");
    assert_eq!(id.audience, AUDIENCE);
    assert_eq!(id.email.as_deref(), Some("alice@example.com"));
    assert_eq!(id.expires_at, at(T0 + 3600));
    let expected: [u8; 32] = Keccak256::digest(format!("alice:{AUDIENCE}")).into();
    assert_eq!(id.auth_method_id(), expected);
    assert_eq!(id.auth_method_type(), AUTH_METHOD_TYPE_OIDC);

    // ES256, with `aud` as an array whose second entry is the configured one
    let mut c = claims("bob");
    c["aud"] = json!(["someone-else", "second-app"]);
    let id = verifier.verify(&keys.ec.token(&c), at(T0)).await.unwrap();
    assert_eq!(id.subject, "bob");
    assert_eq!(id.audience, "second-app");
    let expected: [u8; 32] = Keccak256::digest(b"bob:second-app").into();
    assert_eq!(id.auth_method_id(), expected);

    // a token without `kid` is checked against every key that fits its algorithm
    let no_kid = keys
        .rsa_a
        .token_with_header(&json!({"alg": "RS256"}), &claims("carol"));
    assert_eq!(
        verifier.verify(&no_kid, at(T0)).await.unwrap().subject,
        "carol"
    );
    // one fetch served all of it (the key set is cached)
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn unknown_issuer_is_refused_without_fetching_anything() {
    let keys = &*KEYS;
    let issuer = Issuer::start(&[&keys.rsa_a]).await;
    let verifier = issuer.verifier();
    let mut c = claims("alice");
    c["iss"] = json!("https://evil.test");
    let err = verifier
        .verify(&keys.rsa_a.token(&c), at(T0))
        .await
        .unwrap_err();
    assert_eq!(err, OidcError::UnknownIssuer("https://evil.test".into()));
    assert_eq!(err.code(), ErrorCode::InvalidAuth);
    c["iss"] = json!(42);
    assert!(matches!(
        verifier.verify(&keys.rsa_a.token(&c), at(T0)).await,
        Err(OidcError::Malformed(_))
    ));
    assert_eq!(issuer.fetches(), 0);
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let keys = &*KEYS;
    let issuer = Issuer::start(&[&keys.rsa_a]).await;
    let verifier = issuer.verifier();
    for aud in [
        json!("other-app"),
        json!(["other-app", "third-app"]),
        json!([]),
    ] {
        let mut c = claims("alice");
        c["aud"] = aud.clone();
        let err = verifier
            .verify(&keys.rsa_a.token(&c), at(T0))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, OidcError::WrongAudience { issuer, .. } if issuer == ISSUER),
            "{aud}: {err}"
        );
        assert_eq!(err.code(), ErrorCode::InvalidAuth);
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let keys = &*KEYS;
    let issuer = Issuer::start(&[&keys.ec]).await;
    let verifier = issuer.verifier();
    let token = keys.ec.token(&claims("alice"));
    // `exp` is T0 + 3600 and the leeway 60 s
    verifier.verify(&token, at(T0 + 3659)).await.unwrap();
    let err = verifier.verify(&token, at(T0 + 3660)).await.unwrap_err();
    assert_eq!(
        err,
        OidcError::Expired {
            expired_at: T0 + 3600
        }
    );
    assert_eq!(err.code(), ErrorCode::AuthExpired);

    let mut c = claims("alice");
    c["nbf"] = json!(T0 + 600);
    let err = verifier
        .verify(&keys.ec.token(&c), at(T0))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        OidcError::NotYetValid {
            valid_from: T0 + 600,
            claim: "nbf"
        }
    );
    assert_eq!(err.code(), ErrorCode::AuthExpired);
    // issued in the future
    let mut c = claims("alice");
    c["iat"] = json!(T0 + 61);
    assert!(matches!(
        verifier.verify(&keys.ec.token(&c), at(T0)).await,
        Err(OidcError::NotYetValid { claim: "iat", .. })
    ));
    // and no `exp` at all
    let mut c = claims("alice");
    c.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        verifier.verify(&keys.ec.token(&c), at(T0)).await,
        Err(OidcError::Malformed(_))
    ));
}

#[tokio::test]
async fn signatures_by_keys_not_in_the_jwks_are_refused() {
    let keys = &*KEYS;
    let issuer = Issuer::start(&[&keys.rsa_a, &keys.ec]).await;
    let verifier = issuer.verifier();
    // the rogue key claims the published kid
    let forged = keys.rsa_rogue.token_with_header(
        &json!({"alg": "RS256", "kid": keys.rsa_a.kid}),
        &claims("alice"),
    );
    let err = verifier.verify(&forged, at(T0)).await.unwrap_err();
    assert_eq!(
        err,
        OidcError::BadSignature {
            issuer: ISSUER.into(),
            kid: Some("rsa-a".into())
        }
    );
    assert_eq!(err.code(), ErrorCode::InvalidAuth);
    // ... or names no kid at all
    let forged = keys
        .rsa_rogue
        .token_with_header(&json!({"alg": "RS256"}), &claims("alice"));
    assert!(matches!(
        verifier.verify(&forged, at(T0)).await,
        Err(OidcError::BadSignature { kid: None, .. })
    ));
    // ... or its own kid, which the issuer does not publish
    let err = verifier
        .verify(&keys.rsa_rogue.token(&claims("alice")), at(T0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OidcError::UnknownKey { kid: Some(k), .. } if k == "rsa-rogue"),
        "{err}"
    );
    // a genuine token whose payload was changed after signing
    let genuine = keys.rsa_a.token(&claims("alice"));
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims("mallory")), parts[2]);
    assert!(matches!(
        verifier.verify(&tampered, at(T0)).await,
        Err(OidcError::BadSignature { .. })
    ));
    // an ES256 token pointing at the RSA key's kid: the key does not fit the algorithm
    let mixed = keys.ec.token_with_header(
        &json!({"alg": "ES256", "kid": keys.rsa_a.kid}),
        &claims("alice"),
    );
    assert!(matches!(
        verifier.verify(&mixed, at(T0)).await,
        Err(OidcError::UnknownKey { .. })
    ));
}

#[tokio::test]
async fn alg_none_and_hmac_tokens_are_refused() {
    let keys = &*KEYS;
    let issuer = Issuer::start(&[&keys.rsa_a]).await;
    let verifier = issuer.verifier();
    let payload = b64(&claims("alice"));

    // unsigned
    let none = format!("{}.{payload}.", b64(&json!({"alg": "none", "typ": "JWT"})));
    let err = verifier.verify(&none, at(T0)).await.unwrap_err();
    assert_eq!(err, OidcError::UnsupportedAlgorithm("none".into()));
    assert_eq!(err.code(), ErrorCode::InvalidAuth);

    // HS256 keyed with the issuer's public RSA modulus (the classic algorithm confusion)
    use hmac::Mac as _;
    let header = b64(&json!({"alg": "HS256", "kid": keys.rsa_a.kid}));
    let input = format!("{header}.{payload}");
    let public = keys.rsa_a.jwk()["n"].as_str().unwrap().to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(public.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let hs = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(
        verifier.verify(&hs, at(T0)).await.unwrap_err(),
        OidcError::UnsupportedAlgorithm("HS256".into())
    );
    // unknown algorithms too
    let odd = format!("{}.{payload}.c2ln", b64(&json!({"alg": "XS999"})));
    assert!(matches!(
        verifier.verify(&odd, at(T0)).await,
        Err(OidcError::UnsupportedAlgorithm(_))
    ));
    assert_eq!(issuer.fetches(), 0);
}

#[tokio::test]
async fn rotated_keys_are_fetched_and_removed_keys_stop_working() {
    let keys = &*KEYS;
    let issuer = Issuer::start(&[&keys.rsa_a]).await;
    let verifier = issuer.verifier(); // refetch at most every 30 s, cache 600 s
    let old = keys.rsa_a.token(&claims("alice"));
    let new = keys.rsa_b.token(&claims("alice"));

    verifier.verify(&old, at(T0)).await.unwrap();
    assert_eq!(issuer.fetches(), 1);

    // the issuer rotates: key B replaces key A
    issuer.publish(&[&keys.rsa_b]);
    // within 30 s of the last fetch the unknown kid does not trigger another fetch
    assert!(matches!(
        verifier.verify(&new, at(T0 + 5)).await,
        Err(OidcError::UnknownKey { .. })
    ));
    assert_eq!(issuer.fetches(), 1);
    // afterwards it does, and the new key works at once (long before the 600 s cache time)
    let id = verifier.verify(&new, at(T0 + 31)).await.unwrap();
    assert_eq!(id.subject, "alice");
    assert_eq!(issuer.fetches(), 2);
    // the removed key is gone with that fetch
    let err = verifier.verify(&old, at(T0 + 32)).await.unwrap_err();
    assert!(
        matches!(&err, OidcError::UnknownKey { kid: Some(k), .. } if k == "rsa-a"),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::InvalidAuth);
    assert_eq!(issuer.fetches(), 2);
    // and stays gone when the refetch is allowed again
    assert!(matches!(
        verifier.verify(&old, at(T0 + 62)).await,
        Err(OidcError::UnknownKey { .. })
    ));
    assert_eq!(issuer.fetches(), 3);
    verifier.verify(&new, at(T0 + 63)).await.unwrap();
    assert_eq!(issuer.fetches(), 3);
}

#[tokio::test]
async fn cached_keys_are_used_until_the_cache_time_then_refetched() {
    let keys = &*KEYS;
    let issuer = Issuer::start(&[&keys.rsa_a, &keys.rsa_b]).await;
    let mut config = issuer.config();
    config.jwks_cache_seconds = 100;
    let verifier = OidcVerifier::new(vec![config], Duration::from_secs(5)).unwrap();
    let a = keys.rsa_a.token(&claims("alice"));
    verifier.verify(&a, at(T0)).await.unwrap();
    // key A is removed; the cached set still has it until the cache time passes
    issuer.publish(&[&keys.rsa_b]);
    verifier.verify(&a, at(T0 + 99)).await.unwrap();
    assert_eq!(issuer.fetches(), 1);
    assert!(matches!(
        verifier.verify(&a, at(T0 + 100)).await,
        Err(OidcError::UnknownKey { .. })
    ));
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn unusable_keys_in_the_jwks_are_skipped() {
    let keys = &*KEYS;
    let issuer = Issuer::start(&[]).await;
    issuer.publish_raw(json!({"keys": [
        {"kty": "RSA", "use": "enc", "kid": "enc-1", "n": "AQAB", "e": "AQAB"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": "AAAA"},
        {"kty": "RSA", "kid": "short", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "kid": "bad-ec", "x": "AAAA", "y": "AAAA"},
        {"kid": "no-kty"},
        keys.rsa_a.jwk(),
    ]}));
    let verifier = issuer.verifier();
    verifier
        .verify(&keys.rsa_a.token(&claims("alice")), at(T0))
        .await
        .unwrap();
    // a key whose `alg` is RS256 does not verify other algorithms (here RS512)
    let rs512 = keys
        .rsa_a
        .token_with_header(&json!({"alg": "RS512", "kid": "rsa-a"}), &claims("alice"));
    assert!(matches!(
        verifier.verify(&rs512, at(T0)).await,
        Err(OidcError::UnknownKey { .. })
    ));
}

#[tokio::test]
async fn jwks_endpoint_down_gives_a_clear_error() {
    let keys = &*KEYS;
    let issuer = Issuer::start(&[&keys.rsa_a]).await;
    let verifier = issuer.verifier();
    let token = keys.rsa_a.token(&claims("alice"));

    issuer.state.down.store(true, Ordering::SeqCst);
    let err = verifier.verify(&token, at(T0)).await.unwrap_err();
    match &err {
        OidcError::JwksUnavailable {
            issuer: iss,
            url,
            reason,
        } => {
            assert_eq!(iss, ISSUER);
            assert_eq!(url, &issuer.jwks_url);
            assert!(reason.contains("503"), "{reason}");
        }
        other => panic!("expected JwksUnavailable, got {other}"),
    }
    assert!(err.to_string().contains(&issuer.jwks_url), "{err}");
    assert_eq!(err.code(), ErrorCode::Internal);
    assert_eq!(issuer.fetches(), 1);
    // a failed fetch is not retried for 30 s: the same error, without hitting the issuer
    assert!(matches!(
        verifier.verify(&token, at(T0 + 10)).await,
        Err(OidcError::JwksUnavailable { .. })
    ));
    assert_eq!(issuer.fetches(), 1);
    // once the issuer is back and the interval has passed, tokens verify again
    issuer.state.down.store(false, Ordering::SeqCst);
    verifier.verify(&token, at(T0 + 30)).await.unwrap();
    assert_eq!(issuer.fetches(), 2);

    // nothing listening at all
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = issuer.config();
    config.jwks_url = format!("http://127.0.0.1:{closed}/jwks");
    let verifier = OidcVerifier::new(vec![config], Duration::from_secs(5)).unwrap();
    let err = verifier.verify(&token, at(T0)).await.unwrap_err();
    assert!(
        matches!(&err, OidcError::JwksUnavailable { reason, .. } if reason.contains("request failed")),
        "{err}"
    );
    // a JWKS that is not JSON
    issuer.publish_raw(json!("not a key set"));
    let verifier = issuer.verifier();
    let err = verifier.verify(&token, at(T0)).await.unwrap_err();
    assert!(
        matches!(&err, OidcError::JwksUnavailable { reason, .. } if reason.contains("keys")),
        "{err}"
    );
}

#[tokio::test]
async fn a_failed_refetch_for_an_unknown_kid_keeps_the_cached_keys() {
    let keys = &*KEYS;
    let issuer = Issuer::start(&[&keys.rsa_a]).await;
    let verifier = issuer.verifier();
    let good = keys.rsa_a.token(&claims("alice"));
    verifier.verify(&good, at(T0)).await.unwrap();
    issuer.state.down.store(true, Ordering::SeqCst);
    // a made-up kid makes the verifier try the (now failing) issuer...
    let err = verifier
        .verify(&keys.rsa_rogue.token(&claims("alice")), at(T0 + 31))
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::JwksUnavailable { .. }), "{err}");
    assert_eq!(issuer.fetches(), 2);
    // ...but the keys fetched before, still within their cache time, keep working
    verifier.verify(&good, at(T0 + 32)).await.unwrap();
    assert_eq!(issuer.fetches(), 2);
}

// ---- Lit's Google JWT (6) and Apple JWT (8) auth method types ----

/// A verifier trusting local issuers under Google's and Apple's identifiers and a generic one.
fn provider_verifier(google: &Issuer, apple: &Issuer, generic: &Issuer) -> OidcVerifier {
    OidcVerifier::new(
        vec![
            OidcIssuer::new(
                "https://accounts.google.com",
                &google.jwks_url,
                vec!["google-app".into()],
            ),
            OidcIssuer::new(
                "https://appleid.apple.com",
                &apple.jwks_url,
                vec!["com.example.app".into()],
            ),
            generic.config(),
        ],
        Duration::from_secs(5),
    )
    .unwrap()
}

fn provider_claims(iss: &str, sub: &str, aud: &str) -> serde_json::Value {
    json!({"iss": iss, "sub": sub, "aud": aud, "iat": T0 - 10, "exp": T0 + 3600})
}

#[tokio::test]
async fn the_issuer_decides_lit_s_auth_method_type() {
    let (g, a, o) = (TestKey::p256("g"), TestKey::p256("a"), TestKey::p256("o"));
    let (google, apple, generic) = (
        Issuer::start(&[&g]).await,
        Issuer::start(&[&a]).await,
        Issuer::start(&[&o]).await,
    );
    let verifier = provider_verifier(&google, &apple, &generic);
    let verify = |k: &TestKey, c: serde_json::Value| {
        let token = k.token(&c);
        let verifier = &verifier;
        async move { verifier.verify(&token, at(T0)).await }
    };

    let google_user = verify(
        &g,
        provider_claims("https://accounts.google.com", "g-1", "google-app"),
    )
    .await
    .unwrap();
    assert_eq!(google_user.auth_method_type(), AUTH_METHOD_TYPE_GOOGLE_JWT);
    assert_eq!(
        google_user.permission_types(),
        [AUTH_METHOD_TYPE_GOOGLE_JWT, AUTH_METHOD_TYPE_OIDC]
    );
    // Lit's id for Google and Apple users: keccak256(utf8("{sub}:{aud}"))
    let expected: [u8; 32] = Keccak256::digest(b"g-1:google-app").into();
    assert_eq!(google_user.auth_method_id(), expected);
    // Google also writes its issuer without the scheme: the same user, the same type
    let bare = verify(
        &g,
        provider_claims("accounts.google.com", "g-1", "google-app"),
    )
    .await
    .unwrap();
    assert_eq!(bare.issuer, "https://accounts.google.com");
    assert_eq!(bare.auth_method_id(), expected);
    assert_eq!(bare.auth_method_type(), AUTH_METHOD_TYPE_GOOGLE_JWT);

    let apple_user = verify(
        &a,
        provider_claims("https://appleid.apple.com", "a-1", "com.example.app"),
    )
    .await
    .unwrap();
    assert_eq!(apple_user.auth_method_type(), AUTH_METHOD_TYPE_APPLE_JWT);
    assert_eq!(
        apple_user.permission_types(),
        [AUTH_METHOD_TYPE_APPLE_JWT, AUTH_METHOD_TYPE_OIDC]
    );
    let other_user = verify(&o, claims("o-1")).await.unwrap();
    assert_eq!(other_user.auth_method_type(), AUTH_METHOD_TYPE_OIDC);
    assert_eq!(other_user.permission_types(), [AUTH_METHOD_TYPE_OIDC]);

    // the type a request names must fit the issuer (OIDC fits every issuer)
    for (user, ok, bad) in [
        (
            &google_user,
            AUTH_METHOD_TYPE_GOOGLE_JWT,
            AUTH_METHOD_TYPE_APPLE_JWT,
        ),
        (
            &apple_user,
            AUTH_METHOD_TYPE_APPLE_JWT,
            AUTH_METHOD_TYPE_GOOGLE_JWT,
        ),
        (
            &other_user,
            AUTH_METHOD_TYPE_OIDC,
            AUTH_METHOD_TYPE_GOOGLE_JWT,
        ),
    ] {
        user.check_claimed_type(ok).unwrap();
        user.check_claimed_type(AUTH_METHOD_TYPE_OIDC).unwrap();
        let err = user.check_claimed_type(bad).unwrap_err();
        assert_eq!(
            err,
            OidcError::WrongIssuerForType {
                claimed: bad,
                issuer: user.issuer.clone()
            }
        );
        assert_eq!(err.code(), ErrorCode::InvalidAuth);
    }
    assert!(other_user
        .check_claimed_type(AUTH_METHOD_TYPE_APPLE_JWT)
        .unwrap_err()
        .to_string()
        .contains("https://appleid.apple.com"));

    // a token naming Google's issuer but signed by another issuer's key is still refused
    let err = verify(
        &o,
        provider_claims("https://accounts.google.com", "g-1", "google-app"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OidcError::UnknownKey { .. }), "{err}");
    // and the bare form is Google's alone
    let err = verify(
        &g,
        provider_claims("appleid.apple.com", "a-1", "com.example.app"),
    )
    .await
    .unwrap_err();
    assert_eq!(err, OidcError::UnknownIssuer("appleid.apple.com".into()));
}

/// A PKP permission written for Lit (type 6 for a Google user, type 8 for an Apple user, with
/// Lit's id) authorizes the same user through a network of real nodes; a Google token does not
/// satisfy a type-8 permission nor an Apple token a type-6 one, and another issuer's token
/// neither. The nodes trust local issuers configured under Google's and Apple's identifiers.
#[tokio::test]
async fn lit_google_and_apple_jwt_permissions_sign_through_the_network() {
    use lit_api::v1::{
        AuthMethod, IdTokenPurpose, PermissionChange, PermittedAuthMethod, PkpAuth, PkpScope,
        ToSign,
    };
    use lit_api::Bytes;
    use lit_client::ClientError;
    use lit_crypto::eth::{eip191_hash, recover_address};
    use lit_node::devnet::LayoutOptions;

    let (g, a, o) = (TestKey::p256("g"), TestKey::p256("a"), TestKey::p256("o"));
    let (google, apple, generic) = (
        Issuer::start(&[&g]).await,
        Issuer::start(&[&a]).await,
        Issuer::start(&[&o]).await,
    );
    let options = LayoutOptions {
        extra_config: format!(
            "[oidc.google]\nissuer = \"https://accounts.google.com\"\njwks_url = \"{}\"\n\
             audiences = [\"google-app\"]\n\n\
             [oidc.apple]\nissuer = \"https://appleid.apple.com\"\njwks_url = \"{}\"\n\
             audiences = [\"com.example.app\"]\n\n\
             [oidc.generic]\nissuer = \"{ISSUER}\"\njwks_url = \"{}\"\naudiences = [\"{AUDIENCE}\"]\n",
            google.jwks_url, apple.jwks_url, generic.jwks_url
        ),
        ..LayoutOptions::default()
    };
    let started = std::time::Instant::now();
    let net = support::net::testnet(3).options(options).start().await;
    let (client, owner, pkp) = support::net::client_and_pkp(&net).await;
    eprintln!("network up and PKP minted in {:?}", started.elapsed());

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let message = ToSign::Message(Bytes(b"signed by a Lit-style social login".to_vec()));
    let nonce = IdTokenPurpose::PkpSign(&message).nonce();
    // an ID token for this request, sent as Lit's SDK sends it: `authMethodType` and the JWT
    let jwt = |k: &TestKey, method_type: u32, iss: &str, sub: &str, aud: &str| {
        PkpAuth::AuthMethod(AuthMethod {
            auth_method_type: method_type,
            access_token: k.token(&json!({"iss": iss, "sub": sub, "aud": aud,
                "iat": now - 10, "exp": now + 600, "nonce": nonce})),
        })
    };
    let google_jwt =
        |t: u32, sub: &str| jwt(&g, t, "https://accounts.google.com", sub, "google-app");
    let apple_jwt =
        |t: u32, sub: &str| jwt(&a, t, "https://appleid.apple.com", sub, "com.example.app");
    // Lit's auth method id: keccak256(utf8("{sub}:{aud}")), hex
    let lit_id = |sub: &str, aud: &str| hex::encode(Keccak256::digest(format!("{sub}:{aud}")));
    let permit = |method_type: u32, id: String| PermissionChange::AddAuthMethod {
        method: PermittedAuthMethod {
            method_type,
            id,
            scopes: [PkpScope::PersonalSign].into(),
        },
    };
    let code_of = |e: &ClientError| e.failures().iter().find_map(|f| f.reason.code());
    let signs = |sig: &lit_client::PkpSignature| {
        recover_address(
            &eip191_hash(b"signed by a Lit-style social login"),
            &sig.signature.to_ethereum_bytes(),
        )
        .unwrap()
        .to_checksum()
            == pkp.eth_address
    };

    // the owner permits, as Lit writes them: Google user g-1 as type 6, Apple user a-1 as
    // type 8; and, crossed, Google user g-2 as type 8 and Apple user a-2 as type 6, and the
    // generic issuer's o-1 as type 6
    for (t, id) in [
        (AUTH_METHOD_TYPE_GOOGLE_JWT, lit_id("g-1", "google-app")),
        (AUTH_METHOD_TYPE_APPLE_JWT, lit_id("a-1", "com.example.app")),
        (AUTH_METHOD_TYPE_APPLE_JWT, lit_id("g-2", "google-app")),
        (
            AUTH_METHOD_TYPE_GOOGLE_JWT,
            lit_id("a-2", "com.example.app"),
        ),
        (AUTH_METHOD_TYPE_GOOGLE_JWT, lit_id("o-1", AUDIENCE)),
    ] {
        client
            .pkp_permit(&owner, pkp.token_id.0, permit(t, id))
            .await
            .unwrap();
    }

    // a type-6 permission authorizes the Google user, whether the request names type 6 (as
    // Lit's SDK does) or the generic OIDC type
    for t in [AUTH_METHOD_TYPE_GOOGLE_JWT, AUTH_METHOD_TYPE_OIDC] {
        let sig = client
            .pkp_sign(&pkp, message.clone(), google_jwt(t, "g-1"))
            .await
            .unwrap();
        assert!(signs(&sig), "Google user as type {t}");
    }
    // a type-8 permission the Apple user
    let sig = client
        .pkp_sign(
            &pkp,
            message.clone(),
            apple_jwt(AUTH_METHOD_TYPE_APPLE_JWT, "a-1"),
        )
        .await
        .unwrap();
    assert!(signs(&sig), "Apple user");

    // a Google token does not satisfy a type-8 permission, nor an Apple token a type-6 one,
    // nor another issuer's token a type-6 one (whatever type the request names)
    for (auth, who) in [
        (google_jwt(AUTH_METHOD_TYPE_GOOGLE_JWT, "g-2"), "g-2"),
        (google_jwt(AUTH_METHOD_TYPE_OIDC, "g-2"), "g-2"),
        (apple_jwt(AUTH_METHOD_TYPE_APPLE_JWT, "a-2"), "a-2"),
        (apple_jwt(AUTH_METHOD_TYPE_OIDC, "a-2"), "a-2"),
        (
            jwt(&o, AUTH_METHOD_TYPE_OIDC, ISSUER, "o-1", AUDIENCE),
            "o-1",
        ),
    ] {
        let err = client
            .pkp_sign(&pkp, message.clone(), auth)
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), Some(ErrorCode::NotPermitted), "{who}: {err}");
        assert!(format!("{err:?}").contains(who), "{who}: {err:?}");
    }
    // a request that names the other provider's type is refused before any permission
    for auth in [
        google_jwt(AUTH_METHOD_TYPE_APPLE_JWT, "g-2"),
        apple_jwt(AUTH_METHOD_TYPE_GOOGLE_JWT, "a-2"),
        jwt(&o, AUTH_METHOD_TYPE_GOOGLE_JWT, ISSUER, "o-1", AUDIENCE),
    ] {
        let err = client
            .pkp_sign(&pkp, message.clone(), auth)
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), Some(ErrorCode::InvalidAuth), "{err}");
        assert!(
            format!("{err:?}").contains("needs an ID token from"),
            "{err:?}"
        );
    }

    // a generic OIDC permission written for a Google user before Lit's types: still honoured
    // (its id names Google's audience, which no other issuer of a node may have)
    client
        .pkp_permit(
            &owner,
            pkp.token_id.0,
            permit(AUTH_METHOD_TYPE_OIDC, lit_id("g-3", "google-app")),
        )
        .await
        .unwrap();
    let sig = client
        .pkp_sign(
            &pkp,
            message.clone(),
            google_jwt(AUTH_METHOD_TYPE_GOOGLE_JWT, "g-3"),
        )
        .await
        .unwrap();
    assert!(signs(&sig), "Google user under a generic OIDC permission");
    eprintln!("done in {:?}", started.elapsed());
}
