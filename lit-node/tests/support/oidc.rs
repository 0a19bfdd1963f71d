//! A local OpenID Connect issuer for tests: an axum server on loopback publishing a JSON Web
//! Key Set the tests change at run time (key rotation) or take down, and ID tokens signed with
//! the RustCrypto `rsa` (RS256) and `p256` (ES256) implementations.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lit_node::auth::oidc::{OidcIssuer, OidcVerifier};
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "client-app";
/// 2027-01-15T08:00:00Z: the instant every test verifies at (tokens are made around it).
pub const T0: u64 = 1_800_000_000;

pub fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

// ---- signing keys (RustCrypto) ----

pub enum SigningKey {
    Rs256(Box<rsa::RsaPrivateKey>),
    Es256(p256::ecdsa::SigningKey),
}

pub struct TestKey {
    pub kid: String,
    pub key: SigningKey,
}

impl TestKey {
    pub fn rsa(kid: &str) -> Self {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        Self {
            kid: kid.into(),
            key: SigningKey::Rs256(Box::new(key)),
        }
    }

    pub fn p256(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            key: SigningKey::Es256(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng)),
        }
    }

    pub fn alg(&self) -> &'static str {
        match self.key {
            SigningKey::Rs256(_) => "RS256",
            SigningKey::Es256(_) => "ES256",
        }
    }

    /// The public key as a JWK (RFC 7517/7518 §6).
    pub fn jwk(&self) -> Value {
        match &self.key {
            SigningKey::Rs256(k) => json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                "n": URL_SAFE_NO_PAD.encode(k.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(k.e().to_bytes_be()),
            }),
            SigningKey::Es256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC", "crv": "P-256", "use": "sig", "kid": self.kid,
                    "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
                    "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
                })
            }
        }
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use rsa::signature::{SignatureEncoding as _, Signer as _};
        match &self.key {
            SigningKey::Rs256(k) => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**k).clone())
                .sign(message)
                .to_vec(),
            SigningKey::Es256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_bytes().to_vec()
            }
        }
    }

    /// A compact JWS of `claims` with this key's `alg` and `kid`.
    pub fn token(&self, claims: &Value) -> String {
        self.token_with_header(
            &json!({"alg": self.alg(), "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }

    pub fn token_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// RSA key generation is the slow part: the tests share these keys.
pub struct Keys {
    pub rsa_a: TestKey,
    pub rsa_b: TestKey,
    /// Never published.
    pub rsa_rogue: TestKey,
    pub ec: TestKey,
}

pub static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    rsa_a: TestKey::rsa("rsa-a"),
    rsa_b: TestKey::rsa("rsa-b"),
    rsa_rogue: TestKey::rsa("rsa-rogue"),
    ec: TestKey::p256("ec-1"),
});

pub fn claims(sub: &str) -> Value {
    json!({
        "iss": ISSUER, "sub": sub, "aud": AUDIENCE,
        "iat": T0 - 10, "exp": T0 + 3600,
        "email": format!("{sub}@example.com"), "email_verified": true,
    })
}

// ---- the issuer ----

#[derive(Clone, Default)]
pub struct IssuerState {
    pub jwks: Arc<Mutex<Value>>,
    pub fetches: Arc<AtomicUsize>,
    pub down: Arc<AtomicBool>,
}

pub async fn serve_jwks(State(s): State<IssuerState>) -> impl IntoResponse {
    s.fetches.fetch_add(1, Ordering::SeqCst);
    if s.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down".to_string());
    }
    let body = s.jwks.lock().unwrap().to_string();
    (StatusCode::OK, body)
}

pub struct Issuer {
    pub state: IssuerState,
    pub jwks_url: String,
}

impl Issuer {
    pub async fn start(keys: &[&TestKey]) -> Self {
        let state = IssuerState::default();
        let issuer = Issuer {
            state: state.clone(),
            jwks_url: String::new(),
        };
        issuer.publish(keys);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .route("/jwks", get(serve_jwks))
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Issuer {
            jwks_url: format!("http://127.0.0.1:{port}/jwks"),
            ..issuer
        }
    }

    pub fn publish(&self, keys: &[&TestKey]) {
        let keys: Vec<Value> = keys.iter().map(|k| k.jwk()).collect();
        *self.state.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    pub fn publish_raw(&self, jwks: Value) {
        *self.state.jwks.lock().unwrap() = jwks;
    }

    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    pub fn config(&self) -> OidcIssuer {
        OidcIssuer::new(
            ISSUER,
            &self.jwks_url,
            vec![AUDIENCE.into(), "second-app".into()],
        )
    }

    pub fn verifier(&self) -> OidcVerifier {
        OidcVerifier::new(vec![self.config()], Duration::from_secs(5)).unwrap()
    }
}
