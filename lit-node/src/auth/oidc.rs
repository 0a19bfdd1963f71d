//! OpenID Connect ID tokens (JWTs) as an auth method.
//!
//! A user proves who they are at a configured identity provider (Google, Apple, any OpenID
//! Connect issuer) by presenting the ID token the provider issued to the application. The node
//! verifies it independently, the way OpenID Connect Core 1.0 §3.1.3.7 ("ID Token Validation")
//! asks a relying party to:
//!
//! 1. The JOSE header (RFC 7515) names a supported asymmetric algorithm: `RS256`, `RS384`,
//!    `RS512`, `PS256`, `PS384`, `PS512`, `ES256` or `ES384` (RFC 7518 §3.1). Unsigned tokens
//!    (`none`), HMAC tokens (`HS*`: the "secret" would be public) and unknown algorithms are
//!    refused, as are headers with `crit` extensions.
//! 2. The (still unverified) `iss` claim selects the issuer configuration; unknown issuers are
//!    refused before any network access.
//! 3. The signature is checked against the issuer's JSON Web Key Set (RFC 7517), fetched from its
//!    `jwks_url` and cached for `jwks_cache_seconds`. A key id (`kid`) that is not in the cached
//!    set makes the verifier fetch the set again, at most once per `jwks_refetch_min_seconds`,
//!    so keys the issuer rotated in are picked up at once and keys it removed stop working at the
//!    next fetch. Keys must match the algorithm (`kty`, `crv`, and `alg`/`use` when present).
//! 4. Claims: `iss` equals the configured issuer, `aud` (a string or an array) contains one of the
//!    configured audiences, `exp` has not passed, and `nbf`/`iat` are not in the future, each with
//!    `leeway_seconds` of clock tolerance. `sub` is required.
//!
//! The verified [`OidcIdentity`] names the user; [`OidcIdentity::auth_method_id`] is the id under
//! which PKP permissions refer to it.
//!
//! ## Lit's auth method types for Google and Apple
//!
//! Lit numbers its auth methods per provider: a Google ID token is `GoogleJwt` (type 6) and a
//! Sign in with Apple ID token `AppleJwt` (type 8), each with the id
//! `keccak256(utf8("{sub}:{aud}"))` (the Lit JS SDK's `getGoogleJwtAuthId` and
//! `AppleProvider.getAuthMethodId`; Lit's relay server mints Apple PKPs under the same id).
//! Here every ID token goes through the one verifier above, and its **issuer** decides its Lit
//! type ([`lit_type_of_issuer`]): a token whose `iss` is `https://accounts.google.com` (or
//! Google's documented bare form `accounts.google.com`) is type 6, one from
//! `https://appleid.apple.com` type 8, and one from any other configured issuer has only the
//! generic [`AUTH_METHOD_TYPE_OIDC`]. The type a client names in its request never widens
//! this: a request that says type 6 or 8 must carry a token of that issuer, and what a token may
//! do is decided by [`OidcIdentity::permission_types`]:
//!
//! | token's issuer | satisfies permissions of type (in this order) |
//! |---|---|
//! | Google | 6 (`GoogleJwt`), then [`AUTH_METHOD_TYPE_OIDC`] |
//! | Apple | 8 (`AppleJwt`), then [`AUTH_METHOD_TYPE_OIDC`] |
//! | any other configured issuer | [`AUTH_METHOD_TYPE_OIDC`] only |
//!
//! So a PKP permission written for Lit (type 6 or 8 with Lit's id) authorizes the same user
//! here, a type-6 permission is never satisfied by an Apple (or any non-Google) token and a
//! type-8 one never by a Google token, while permissions written here before Lit's numbers were
//! known (generic OIDC type, the same id) keep working for Google and Apple users. That last
//! rule is safe because the id names the audience and [`OidcVerifier::new`] refuses an audience
//! shared by two issuers: on a node, `keccak256("{sub}:{aud}")` can only come from the one
//! issuer that `aud` belongs to. The Lit types are the stricter permissions: they also pin the
//! issuer, whatever the node's configuration.
//!
//! Every time comparison, including the cache's age, uses the `now` the caller passes, so a node
//! can verify at a fixed instant and tests need no sleeping.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::{Duration, SystemTime};
//! use lit_node::auth::oidc::{OidcError, OidcIssuer, OidcVerifier};
//!
//! // the node configuration's `[oidc.<name>]` tables
//! let issuers: BTreeMap<String, OidcIssuer> = toml::from_str(r#"
//!     [google]
//!     issuer = "https://accounts.google.com"
//!     jwks_url = "https://www.googleapis.com/oauth2/v3/certs"
//!     audiences = ["1234.apps.googleusercontent.com"]
//!     leeway_seconds = 30
//! "#).unwrap();
//! let verifier = OidcVerifier::new(issuers.into_values().collect(), Duration::from_secs(5))?;
//!
//! // an unsigned token is refused before anything is fetched
//! let unsigned = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2FjY291bnRzLmdvb2dsZS5jb20ifQ.";
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let err = verifier.verify(unsigned, SystemTime::now()).await.unwrap_err();
//! assert_eq!(err, OidcError::UnsupportedAlgorithm("none".into()));
//! assert_eq!(err.code(), lit_api::ErrorCode::InvalidAuth);
//! # });
//! # Ok::<(), OidcError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use lit_api::ErrorCode;
use serde_json::{Map, Value};
use sha3::{Digest as _, Keccak256};

/// The auth method type of an OpenID Connect ID token from any configured issuer.
///
/// Lit's own numbering (`AuthMethodType` in the Lit JS SDK, `packages/constants`) is
/// `1` Ethereum wallet, `2` Lit Action, `3` WebAuthn, `4` Discord, `5` Google OAuth, `6` Google
/// JWT, `8` Apple JWT, `9` Stytch OTP, `10`–`13` Stytch factors. Lit has no generic OpenID Connect
/// type, so this one is ours: the ASCII bytes of `"OIDC"` read as a big-endian number
/// (`0x4f494443`), far from Lit's small values so that the two numberings cannot collide.
pub use lit_api::v1::AUTH_METHOD_TYPE_OIDC;

pub use lit_api::v1::{AUTH_METHOD_TYPE_APPLE_JWT, AUTH_METHOD_TYPE_GOOGLE_JWT};

/// Google's issuer identifier, as its discovery document names it.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// The bare form of [`GOOGLE_ISSUER`] that Google also puts in `iss` ("The value of `iss` in the
/// ID token is equal to `accounts.google.com` or `https://accounts.google.com`", Google's
/// OpenID Connect documentation): accepted for a node configured with [`GOOGLE_ISSUER`].
pub const GOOGLE_ISSUER_BARE: &str = "accounts.google.com";

/// Apple's issuer identifier (Sign in with Apple).
pub const APPLE_ISSUER: &str = "https://appleid.apple.com";

/// Lit's auth method type of ID tokens from `issuer`: [`AUTH_METHOD_TYPE_GOOGLE_JWT`] for
/// Google, [`AUTH_METHOD_TYPE_APPLE_JWT`] for Apple, `None` for every other issuer (whose tokens
/// are [`AUTH_METHOD_TYPE_OIDC`] only).
///
/// ```
/// use lit_node::auth::oidc::lit_type_of_issuer;
/// assert_eq!(lit_type_of_issuer("https://accounts.google.com"), Some(6));
/// assert_eq!(lit_type_of_issuer("accounts.google.com"), Some(6));
/// assert_eq!(lit_type_of_issuer("https://appleid.apple.com"), Some(8));
/// assert_eq!(lit_type_of_issuer("https://accounts.google.com.evil.test"), None);
/// ```
pub fn lit_type_of_issuer(issuer: &str) -> Option<u32> {
    match issuer {
        GOOGLE_ISSUER | GOOGLE_ISSUER_BARE => Some(AUTH_METHOD_TYPE_GOOGLE_JWT),
        APPLE_ISSUER => Some(AUTH_METHOD_TYPE_APPLE_JWT),
        _ => None,
    }
}

/// The issuer whose tokens are Lit's auth method type `t` (for messages).
fn issuer_of_lit_type(t: u32) -> &'static str {
    match t {
        AUTH_METHOD_TYPE_GOOGLE_JWT => GOOGLE_ISSUER,
        AUTH_METHOD_TYPE_APPLE_JWT => APPLE_ISSUER,
        _ => "the provider of that type",
    }
}

/// The issuer identifier a configuration names for a token's `iss`: Google's bare form is
/// [`GOOGLE_ISSUER`], every other issuer itself.
fn canonical_issuer(iss: &str) -> &str {
    if iss == GOOGLE_ISSUER_BARE {
        GOOGLE_ISSUER
    } else {
        iss
    }
}

/// Longest token accepted, in bytes (real ID tokens are 1–2 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Largest JWKS document accepted, in bytes.
pub const MAX_JWKS_LEN: usize = 256 * 1024;

pub use crate::config::OidcIssuer;

/// Why an ID token was refused (or could not be checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The verifier's configuration is invalid.
    #[error("invalid OpenID Connect configuration: {0}")]
    Config(String),
    /// The token is not a well-formed JWT / ID token.
    #[error("malformed ID token: {0}")]
    Malformed(String),
    /// The header names an algorithm that is not accepted.
    #[error(
        "ID token algorithm {0:?} is not accepted (RS256/384/512, PS256/384/512, ES256/384 are)"
    )]
    UnsupportedAlgorithm(String),
    /// The `iss` claim names no configured issuer.
    #[error("ID token issuer {0:?} is not trusted by this node")]
    UnknownIssuer(String),
    /// The issuer's key set has no key for this token, even after fetching it again.
    #[error("issuer {issuer:?} has no {alg} key with kid {kid:?}")]
    UnknownKey {
        /// The issuer.
        issuer: String,
        /// The token's key id, if it has one.
        kid: Option<String>,
        /// The token's algorithm.
        alg: String,
    },
    /// No key of the issuer verifies the signature.
    #[error("ID token signature is invalid (issuer {issuer:?}, kid {kid:?})")]
    BadSignature {
        /// The issuer.
        issuer: String,
        /// The token's key id, if it has one.
        kid: Option<String>,
    },
    /// The `aud` claim contains none of the configured audiences.
    #[error("ID token audience {audiences:?} is not accepted for issuer {issuer:?}")]
    WrongAudience {
        /// The issuer.
        issuer: String,
        /// The token's audiences.
        audiences: Vec<String>,
    },
    /// The `exp` claim (plus leeway) has passed.
    #[error("ID token expired at {expired_at} (unix seconds)")]
    Expired {
        /// The `exp` claim.
        expired_at: u64,
    },
    /// The `nbf` or `iat` claim is in the future (beyond the leeway).
    #[error("ID token is not valid before {valid_from} (unix seconds, from {claim:?})")]
    NotYetValid {
        /// The claim's value.
        valid_from: u64,
        /// `nbf` or `iat`.
        claim: &'static str,
    },
    /// The request named Lit's auth method type of one provider (6 Google JWT, 8 Apple JWT) but
    /// the token is from another issuer.
    #[error(
        "auth method type {claimed} needs an ID token from {}, this one is from {issuer:?}",
        issuer_of_lit_type(*claimed)
    )]
    WrongIssuerForType {
        /// The type the request named.
        claimed: u32,
        /// The token's (verified) issuer.
        issuer: String,
    },
    /// The issuer's key set could not be fetched or parsed.
    #[error("cannot get the key set of issuer {issuer:?} from {url}: {reason}")]
    JwksUnavailable {
        /// The issuer.
        issuer: String,
        /// The configured `jwks_url`.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl OidcError {
    /// The API error code for this error.
    ///
    /// A key set that cannot be fetched maps to [`ErrorCode::Internal`], not to `InvalidAuth`:
    /// the token was not found invalid, the node could not check it, and the client may succeed
    /// at another node or later (`Internal` is retryable, `InvalidAuth` is not).
    pub fn code(&self) -> ErrorCode {
        match self {
            OidcError::Expired { .. } | OidcError::NotYetValid { .. } => ErrorCode::AuthExpired,
            OidcError::JwksUnavailable { .. } | OidcError::Config(_) => ErrorCode::Internal,
            OidcError::Malformed(_)
            | OidcError::UnsupportedAlgorithm(_)
            | OidcError::UnknownIssuer(_)
            | OidcError::UnknownKey { .. }
            | OidcError::BadSignature { .. }
            | OidcError::WrongAudience { .. }
            | OidcError::WrongIssuerForType { .. } => ErrorCode::InvalidAuth,
        }
    }
}

/// A user authenticated by a verified ID token (or by a passkey, in the same shape: see
/// [`OidcIdentity::passkey`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcIdentity {
    /// The issuer (`iss`).
    pub issuer: String,
    /// The user's id at the issuer (`sub`).
    pub subject: String,
    /// The configured audience the token was issued to (the first of the token's `aud` values
    /// that the issuer configuration accepts).
    pub audience: String,
    /// The user's e-mail address, only when the token also says `email_verified: true`.
    pub email: Option<String>,
    /// When the token expires (`exp`).
    pub expires_at: SystemTime,
    /// The `nonce` claim, if any: what the token was issued for (see
    /// [`lit_api::v1::IdTokenPurpose`]).
    pub nonce: Option<String>,
}

impl OidcIdentity {
    /// The auth method id of this user: `keccak256(utf8("{sub}:{aud}"))`.
    ///
    /// This is Lit's convention for OAuth/JWT auth methods (the Lit JS SDK's
    /// `getGoogleJwtAuthId` in `packages/lit-auth-client/src/lib/utils.ts` computes
    /// `keccak256(toUtf8Bytes(`${sub}:${aud}`))`). The issuer is not part of the id, so
    /// [`OidcVerifier::new`] refuses configurations in which two issuers share an audience.
    pub fn auth_method_id(&self) -> [u8; 32] {
        Keccak256::digest(format!("{}:{}", self.subject, self.audience).as_bytes()).into()
    }

    /// Refuses a token that was not issued for `purpose` (its `nonce` claim is another, or
    /// absent): an ID token is the same at every node, so it is accepted only for the one
    /// request it names.
    pub fn check_purpose(
        &self,
        purpose: lit_api::v1::IdTokenPurpose<'_>,
    ) -> Result<(), crate::error::ApiError> {
        let expected = purpose.nonce();
        if self.nonce.as_deref() == Some(expected.as_str()) {
            return Ok(());
        }
        Err(crate::error::ApiError::new(
            lit_api::ErrorCode::InvalidAuth,
            if self.is_passkey() {
                format!(
                    "the passkey assertion is not bound to this request: its purpose must be \
                     {expected} (lit_api::v1::IdTokenPurpose::nonce of this request); it is {:?}",
                    self.nonce
                )
            } else {
                format!(
                    "the ID token is not bound to this request: an ID token is valid at every \
                     node, so its nonce claim must be {expected} \
                     (lit_api::v1::IdTokenPurpose::nonce of this request); it is {:?}",
                    self.nonce
                )
            },
        ))
    }

    /// The auth method type: Lit's type of the issuer ([`lit_type_of_issuer`]: 6 for Google, 8
    /// for Apple), else [`AUTH_METHOD_TYPE_OIDC`]; a passkey user's is 3.
    pub fn auth_method_type(&self) -> u32 {
        if self.is_passkey() {
            return super::webauthn::AUTH_METHOD_TYPE_WEBAUTHN;
        }
        lit_type_of_issuer(&self.issuer).unwrap_or(AUTH_METHOD_TYPE_OIDC)
    }

    /// A passkey user (see [`super::webauthn`]), in the shape of an ID token's user so that
    /// every service treats both alike: the issuer is `webauthn:<rp id>`, the subject the
    /// credential id (base64url), the audience the relying party id, and the `nonce` the purpose
    /// the assertion was made for.
    pub fn passkey(verified: &super::webauthn::VerifiedPasskey) -> Self {
        Self {
            issuer: format!(
                "{}{}",
                super::webauthn::PASSKEY_ISSUER_PREFIX,
                verified.rp_id
            ),
            subject: verified.credential_id.clone(),
            audience: verified.rp_id.clone(),
            email: None,
            expires_at: verified.expires_at,
            nonce: Some(verified.purpose.clone()),
        }
    }

    /// Whether this is a passkey user.
    pub fn is_passkey(&self) -> bool {
        self.issuer
            .starts_with(super::webauthn::PASSKEY_ISSUER_PREFIX)
    }

    /// The types of PKP permission (with id [`OidcIdentity::auth_method_id`]) this user
    /// satisfies, the preferred first: Lit's type of the issuer, if it has one, then
    /// [`AUTH_METHOD_TYPE_OIDC`] (see the module documentation for why both).
    pub fn permission_types(&self) -> Vec<u32> {
        if self.is_passkey() {
            return vec![super::webauthn::AUTH_METHOD_TYPE_WEBAUTHN];
        }
        let mut types: Vec<u32> = lit_type_of_issuer(&self.issuer).into_iter().collect();
        types.push(AUTH_METHOD_TYPE_OIDC);
        types
    }

    /// Refuses the token if the request named a type it is not: [`AUTH_METHOD_TYPE_OIDC`] fits
    /// every issuer, Lit's 6 (Google JWT) and 8 (Apple JWT) only tokens of that issuer.
    pub fn check_claimed_type(&self, claimed: u32) -> Result<(), OidcError> {
        if claimed == AUTH_METHOD_TYPE_OIDC || lit_type_of_issuer(&self.issuer) == Some(claimed) {
            return Ok(());
        }
        Err(OidcError::WrongIssuerForType {
            claimed,
            issuer: self.issuer.clone(),
        })
    }
}

/// The shape of a verification key, which decides the algorithms it can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyShape {
    Rsa,
    P256,
    P384,
}

/// One usable key of a key set.
#[derive(Clone)]
struct VerifyKey {
    kid: Option<String>,
    /// The JWK's `alg`, when it restricts the key to one algorithm.
    alg: Option<String>,
    shape: KeyShape,
    key: DecodingKey,
}

impl VerifyKey {
    fn fits(&self, alg: Algorithm, alg_name: &str) -> bool {
        let shape_ok = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => self.shape == KeyShape::Rsa,
            Algorithm::ES256 => self.shape == KeyShape::P256,
            Algorithm::ES384 => self.shape == KeyShape::P384,
            _ => false,
        };
        shape_ok && self.alg.as_deref().is_none_or(|a| a == alg_name)
    }
}

/// What is known of one issuer's key set.
#[derive(Default)]
struct KeyCache {
    keys: Vec<VerifyKey>,
    /// When `keys` was fetched (None: never).
    fetched_at: Option<SystemTime>,
    /// The last fetch attempt and its error, if it failed.
    last_attempt: Option<SystemTime>,
    last_error: Option<String>,
}

struct IssuerState {
    config: OidcIssuer,
    cache: tokio::sync::Mutex<KeyCache>,
}

/// Verifies ID tokens of the configured issuers. Cheap to share (`Arc`); concurrent
/// verifications of one issuer wait for each other only while its key set is being fetched.
pub struct OidcVerifier {
    issuers: BTreeMap<String, IssuerState>,
    client: reqwest::Client,
}

impl fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn seconds_since(now: SystemTime, then: SystemTime) -> u64 {
    // a clock that went backwards counts as "just now"
    now.duration_since(then).map(|d| d.as_secs()).unwrap_or(0)
}

fn unix_seconds(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::from(d.as_secs()),
        Err(e) => -i128::from(e.duration().as_secs()),
    }
}

impl OidcVerifier {
    /// A verifier for `issuers` whose key set fetches give up after `timeout`.
    ///
    /// Refuses duplicate issuers, empty audience lists, an audience shared by two issuers (the
    /// auth method id would not tell them apart), and `jwks_url`s that are not `http(s)` URLs.
    pub fn new(issuers: Vec<OidcIssuer>, timeout: Duration) -> Result<Self, OidcError> {
        let mut map = BTreeMap::new();
        let mut audiences = BTreeMap::<String, String>::new();
        for config in issuers {
            let bad = |m: String| OidcError::Config(format!("issuer {:?}: {m}", config.issuer));
            if config.issuer.is_empty() {
                return Err(OidcError::Config("an issuer has an empty `issuer`".into()));
            }
            if config
                .issuer
                .starts_with(super::webauthn::PASSKEY_ISSUER_PREFIX)
            {
                return Err(bad("the prefix `webauthn:` names passkey users".into()));
            }
            let url = reqwest::Url::parse(&config.jwks_url)
                .map_err(|e| bad(format!("jwks_url {:?}: {e}", config.jwks_url)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad(format!(
                    "jwks_url {:?} is not http(s)",
                    config.jwks_url
                )));
            }
            if config.audiences.is_empty() || config.audiences.iter().any(String::is_empty) {
                return Err(bad(
                    "audiences must be a non-empty list of non-empty strings".into(),
                ));
            }
            for aud in &config.audiences {
                if let Some(other) = audiences.insert(aud.clone(), config.issuer.clone()) {
                    if other != config.issuer {
                        return Err(bad(format!(
                            "audience {aud:?} is also configured for issuer {other:?}"
                        )));
                    }
                }
            }
            if map.contains_key(&config.issuer) {
                return Err(bad("configured twice".into()));
            }
            map.insert(
                config.issuer.clone(),
                IssuerState {
                    config,
                    cache: tokio::sync::Mutex::new(KeyCache::default()),
                },
            );
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OidcError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            issuers: map,
            client,
        })
    }

    /// The configured issuer identifiers.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.keys().map(String::as_str)
    }

    /// Verifies an ID token at time `now` (see the module documentation for every check).
    pub async fn verify(&self, jwt: &str, now: SystemTime) -> Result<OidcIdentity, OidcError> {
        let token = Token::parse(jwt)?;
        let iss = token
            .claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                OidcError::Malformed("the `iss` claim is missing or not a string".into())
            })?;
        let state = self
            .issuers
            .get(iss)
            .or_else(|| self.issuers.get(canonical_issuer(iss)))
            .ok_or_else(|| OidcError::UnknownIssuer(iss.to_string()))?;
        self.check_signature(state, &token, now).await?;
        check_claims(&state.config, &token.claims, now)
    }

    /// Verifies the signature with a key of the issuer's set, fetching the set when it is stale
    /// or lacks the token's key.
    async fn check_signature(
        &self,
        state: &IssuerState,
        token: &Token<'_>,
        now: SystemTime,
    ) -> Result<(), OidcError> {
        let config = &state.config;
        let mut cache = state.cache.lock().await;
        let stale = cache
            .fetched_at
            .is_none_or(|t| seconds_since(now, t) >= config.jwks_cache_seconds);
        if stale {
            self.refresh(config, &mut cache, now, false).await?;
        }
        let mut candidates = token.candidates(&cache.keys);
        if candidates.is_empty() && !stale {
            // an unknown kid: the issuer may have rotated its keys since the last fetch
            let may_refetch = cache
                .last_attempt
                .is_none_or(|t| seconds_since(now, t) >= config.jwks_refetch_min_seconds);
            if may_refetch {
                // a failed refetch keeps the keys that are still within their cache time
                self.refresh(config, &mut cache, now, true).await?;
                candidates = token.candidates(&cache.keys);
            }
        }
        // the (public) keys are copied out so that other verifications need not wait
        drop(cache);
        if candidates.is_empty() {
            return Err(OidcError::UnknownKey {
                issuer: config.issuer.clone(),
                kid: token.kid.clone(),
                alg: token.alg_name.clone(),
            });
        }
        let verified = candidates.iter().any(|k| {
            // Ok(false) or Err (e.g. a signature of the wrong length) both mean "not this key"
            jsonwebtoken::crypto::verify(
                token.signature,
                token.signing_input.as_bytes(),
                &k.key,
                token.alg,
            )
            .unwrap_or(false)
        });
        if verified {
            Ok(())
        } else {
            Err(OidcError::BadSignature {
                issuer: config.issuer.clone(),
                kid: token.kid.clone(),
            })
        }
    }

    /// Fetches the key set into `cache`, unless the last attempt failed less than
    /// `jwks_refetch_min_seconds` ago (then that failure is returned again). When the fetch
    /// fails, the cached keys are dropped unless `keep_on_failure`.
    async fn refresh(
        &self,
        config: &OidcIssuer,
        cache: &mut KeyCache,
        now: SystemTime,
        keep_on_failure: bool,
    ) -> Result<(), OidcError> {
        let unavailable = |reason: String| OidcError::JwksUnavailable {
            issuer: config.issuer.clone(),
            url: config.jwks_url.clone(),
            reason,
        };
        if let (Some(t), Some(err)) = (cache.last_attempt, &cache.last_error) {
            if seconds_since(now, t) < config.jwks_refetch_min_seconds {
                return Err(unavailable(format!("{err} (not retried yet)")));
            }
        }
        cache.last_attempt = Some(now);
        match self.fetch(&config.jwks_url).await {
            Ok(keys) => {
                tracing::debug!(issuer = %config.issuer, keys = keys.len(), "fetched JWKS");
                cache.keys = keys;
                cache.fetched_at = Some(now);
                cache.last_error = None;
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(issuer = %config.issuer, %reason, "JWKS fetch failed");
                if !keep_on_failure {
                    // keys past their cache time are not used any more
                    cache.keys.clear();
                    cache.fetched_at = None;
                }
                cache.last_error = Some(reason.clone());
                Err(unavailable(reason))
            }
        }
    }

    async fn fetch(&self, url: &str) -> Result<Vec<VerifyKey>, String> {
        let mut response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_LEN {
                return Err(format!("the key set is larger than {MAX_JWKS_LEN} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body)
    }
}

/// Parses a JWKS document; keys that are not usable signature keys are skipped (an issuer may
/// publish encryption keys or key types this verifier does not support).
fn parse_jwks(body: &[u8]) -> Result<Vec<VerifyKey>, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no `keys` array")?;
    Ok(keys
        .iter()
        .filter_map(|k| match parse_jwk(k) {
            Ok(key) => key,
            Err(e) => {
                tracing::debug!(error = %e, "skipping a JWKS key");
                None
            }
        })
        .collect())
}

fn b64(field: &str, v: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(v)
        .map_err(|e| format!("`{field}` is not base64url: {e}"))
}

/// One JWK: `Ok(None)` for a key that is not for signatures or of an unsupported type.
fn parse_jwk(k: &Value) -> Result<Option<VerifyKey>, String> {
    let s = |name: &str| k.get(name).and_then(Value::as_str);
    if s("use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let kid = s("kid").map(str::to_string);
    let alg = s("alg").map(str::to_string);
    let need = |name: &str| s(name).ok_or_else(|| format!("key {kid:?} has no `{name}`"));
    let (shape, key) = match s("kty") {
        Some("RSA") => {
            let (n, e) = (need("n")?, need("e")?);
            if b64("n", n)?.len() < 256 {
                return Err(format!("RSA key {kid:?} is shorter than 2048 bits"));
            }
            b64("e", e)?;
            let key = DecodingKey::from_rsa_components(n, e).map_err(|e| e.to_string())?;
            (KeyShape::Rsa, key)
        }
        Some("EC") => {
            let (shape, len) = match need("crv")? {
                "P-256" => (KeyShape::P256, 32),
                "P-384" => (KeyShape::P384, 48),
                _ => return Ok(None),
            };
            let (x, y) = (need("x")?, need("y")?);
            if b64("x", x)?.len() != len || b64("y", y)?.len() != len {
                return Err(format!(
                    "EC key {kid:?} has coordinates of the wrong length"
                ));
            }
            let key = DecodingKey::from_ec_components(x, y).map_err(|e| e.to_string())?;
            (shape, key)
        }
        _ => return Ok(None),
    };
    Ok(Some(VerifyKey {
        kid,
        alg,
        shape,
        key,
    }))
}

/// A JWT split and decoded, not yet verified.
struct Token<'a> {
    alg: Algorithm,
    alg_name: String,
    kid: Option<String>,
    claims: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a str,
    /// The base64url signature.
    signature: &'a str,
}

fn decode_part(name: &str, part: &str) -> Result<Map<String, Value>, OidcError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| OidcError::Malformed(format!("the {name} is not base64url: {e}")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(OidcError::Malformed(format!(
            "the {name} is not a JSON object"
        ))),
    }
}

impl<'a> Token<'a> {
    fn parse(jwt: &'a str) -> Result<Self, OidcError> {
        if jwt.len() > MAX_TOKEN_LEN {
            return Err(OidcError::Malformed(format!(
                "longer than {MAX_TOKEN_LEN} bytes"
            )));
        }
        let (signing_input, signature) = jwt
            .rsplit_once('.')
            .ok_or_else(|| OidcError::Malformed("not a JWS compact serialization".into()))?;
        let (header, payload) = signing_input
            .split_once('.')
            .filter(|(_, p)| !p.contains('.'))
            .ok_or_else(|| {
                OidcError::Malformed(
                    "a JWT has three dot-separated parts (JWE is not accepted)".into(),
                )
            })?;
        let header = decode_part("header", header)?;
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::Malformed("the header has no `alg`".into()))?
            .to_string();
        let alg = match alg_name.as_str() {
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            _ => return Err(OidcError::UnsupportedAlgorithm(alg_name)),
        };
        if header.contains_key("crit") {
            return Err(OidcError::Malformed(
                "the header has `crit` extensions, none of which are supported".into(),
            ));
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err(OidcError::Malformed("`kid` is not a string".into())),
        };
        if signature.is_empty() {
            return Err(OidcError::Malformed("the signature is empty".into()));
        }
        let claims = decode_part("payload", payload)?;
        Ok(Self {
            alg,
            alg_name,
            kid,
            claims,
            signing_input,
            signature,
        })
    }

    /// The keys of `keys` that may have signed this token: those with its `kid` (or every key,
    /// when the token names none) that fit its algorithm.
    fn candidates(&self, keys: &[VerifyKey]) -> Vec<VerifyKey> {
        keys.iter()
            .filter(|k| self.kid.is_none() || k.kid == self.kid)
            .filter(|k| k.fits(self.alg, &self.alg_name))
            .cloned()
            .collect()
    }
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional), as whole seconds.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i128>, OidcError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => {
            let n = v
                .as_i64()
                .map(i128::from)
                .or_else(|| v.as_u64().map(i128::from))
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.is_finite())
                        .map(|f| f.floor() as i128)
                })
                .ok_or_else(|| OidcError::Malformed(format!("`{name}` is not a number")))?;
            Ok(Some(n))
        }
    }
}

fn clamp_u64(n: i128) -> u64 {
    u64::try_from(n.max(0)).unwrap_or(u64::MAX)
}

/// The claim checks after the signature is verified.
fn check_claims(
    config: &OidcIssuer,
    claims: &Map<String, Value>,
    now: SystemTime,
) -> Result<OidcIdentity, OidcError> {
    let iss = claims.get("iss").and_then(Value::as_str);
    if !iss.is_some_and(|i| i == config.issuer || canonical_issuer(i) == config.issuer) {
        return Err(OidcError::UnknownIssuer(
            iss.unwrap_or_default().to_string(),
        ));
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OidcError::Malformed("the `sub` claim is missing or empty".into()))?
        .to_string();
    let token_audiences: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|a| a.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| OidcError::Malformed("`aud` has a value that is not a string".into()))?,
        _ => {
            return Err(OidcError::Malformed(
                "the `aud` claim is missing or not a string or array".into(),
            ))
        }
    };
    let accepted: BTreeSet<&str> = config.audiences.iter().map(String::as_str).collect();
    let audience = token_audiences
        .iter()
        .find(|a| accepted.contains(a.as_str()))
        .cloned()
        .ok_or_else(|| OidcError::WrongAudience {
            issuer: config.issuer.clone(),
            audiences: token_audiences.clone(),
        })?;

    let now_s = unix_seconds(now);
    let leeway = i128::from(config.leeway_seconds);
    let exp = numeric_date(claims, "exp")?
        .ok_or_else(|| OidcError::Malformed("the `exp` claim is missing".into()))?;
    if now_s >= exp + leeway {
        return Err(OidcError::Expired {
            expired_at: clamp_u64(exp),
        });
    }
    for claim in ["nbf", "iat"] {
        if let Some(t) = numeric_date(claims, claim)? {
            if t > now_s + leeway {
                return Err(OidcError::NotYetValid {
                    valid_from: clamp_u64(t),
                    claim,
                });
            }
        }
    }
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        // Apple sends the string "true"
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|_| email_verified)
        .map(str::to_string);
    Ok(OidcIdentity {
        issuer: config.issuer.clone(),
        subject,
        audience,
        email,
        expires_at: UNIX_EPOCH + Duration::from_secs(clamp_u64(exp)),
        nonce: claims
            .get("nonce")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OidcIssuer {
        OidcIssuer::new(
            "https://issuer.example",
            "http://127.0.0.1:1/jwks",
            vec!["app".into()],
        )
    }

    fn b64j(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn config_parses_from_toml_with_defaults_and_refuses_unknown_fields() {
        let c: OidcIssuer = toml::from_str(
            "issuer = \"https://accounts.google.com\"\n\
             jwks_url = \"https://www.googleapis.com/oauth2/v3/certs\"\n\
             audiences = [\"client-1\"]\n",
        )
        .unwrap();
        assert_eq!(c.jwks_cache_seconds, 600);
        assert_eq!(c.leeway_seconds, 60);
        assert_eq!(c.jwks_refetch_min_seconds, 30);
        assert!(toml::from_str::<OidcIssuer>(
            "issuer = \"i\"\njwks_url = \"https://x\"\naudiences = [\"a\"]\nextra = 1\n"
        )
        .is_err());
    }

    #[test]
    fn bad_configurations_are_refused() {
        let t = Duration::from_secs(1);
        let mut no_aud = config();
        no_aud.audiences.clear();
        let mut ftp = config();
        ftp.jwks_url = "ftp://host/jwks".into();
        let mut shared = config();
        shared.issuer = "https://other.example".into();
        for bad in [
            vec![no_aud],
            vec![ftp],
            vec![config(), config()],
            vec![config(), shared],
        ] {
            assert!(matches!(
                OidcVerifier::new(bad, t),
                Err(OidcError::Config(_))
            ));
        }
        OidcVerifier::new(vec![config()], t).unwrap();
    }

    #[test]
    fn token_parsing_refuses_malformed_tokens_and_bad_algorithms() {
        let claims = b64j(&serde_json::json!({"iss": "x"}));
        let with = |header: Value| format!("{}.{claims}.c2ln", b64j(&header));
        for (alg, ok) in [
            ("RS256", true),
            ("ES256", true),
            ("PS512", true),
            ("none", false),
            ("HS256", false),
            ("EdDSA", false),
            ("rs256", false),
        ] {
            let jwt = with(serde_json::json!({"alg": alg}));
            let r = Token::parse(&jwt);
            assert_eq!(r.is_ok(), ok, "{alg}");
            if !ok {
                assert!(
                    matches!(r, Err(OidcError::UnsupportedAlgorithm(_))),
                    "{alg}"
                );
            }
        }
        for bad in [
            String::new(),
            "a.b".into(),
            "a.b.c.d".into(),
            format!("{}.{claims}.", b64j(&serde_json::json!({"alg": "RS256"}))),
            format!("{}.{claims}.c2ln", b64j(&serde_json::json!({"typ": "JWT"}))),
            with(serde_json::json!({"alg": "RS256", "crit": ["exp"]})),
            with(serde_json::json!({"alg": "RS256", "kid": 5})),
            format!(
                "{}.bm90IGpzb24.c2ln",
                b64j(&serde_json::json!({"alg": "RS256"}))
            ),
            "x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(
                matches!(Token::parse(&bad), Err(OidcError::Malformed(_))),
                "{bad}"
            );
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn claim_checks_apply_leeway_and_audience_rules() {
        let c = config();
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let good = serde_json::json!({"iss": "https://issuer.example", "sub": "u1",
            "aud": ["other", "app"], "exp": 1000, "iat": 900, "nbf": 900.5,
            "email": "u@example.com", "email_verified": "true"});
        let id = check_claims(&c, &claims(good.clone()), at(950)).unwrap();
        assert_eq!(id.audience, "app");
        assert_eq!(id.email.as_deref(), Some("u@example.com"));
        assert_eq!(id.expires_at, at(1000));
        // within the 60 s leeway on both ends
        check_claims(&c, &claims(good.clone()), at(1059)).unwrap();
        check_claims(&c, &claims(good.clone()), at(840)).unwrap();
        assert_eq!(
            check_claims(&c, &claims(good.clone()), at(1060)),
            Err(OidcError::Expired { expired_at: 1000 })
        );
        assert!(matches!(
            check_claims(&c, &claims(good.clone()), at(839)),
            Err(OidcError::NotYetValid {
                valid_from: 900,
                ..
            })
        ));
        let mut unverified = good.clone();
        unverified["email_verified"] = Value::Bool(false);
        assert_eq!(
            check_claims(&c, &claims(unverified), at(950))
                .unwrap()
                .email,
            None
        );
        for (field, value) in [
            ("aud", serde_json::json!("nope")),
            ("aud", serde_json::json!(["nope"])),
        ] {
            let mut t = good.clone();
            t[field] = value;
            assert!(matches!(
                check_claims(&c, &claims(t), at(950)),
                Err(OidcError::WrongAudience { .. })
            ));
        }
        for (field, value) in [
            ("aud", serde_json::json!(5)),
            ("aud", serde_json::json!([5])),
            ("sub", serde_json::json!("")),
            ("exp", serde_json::json!("soon")),
            ("exp", Value::Null),
        ] {
            let mut t = good.clone();
            t[field] = value;
            assert!(
                matches!(
                    check_claims(&c, &claims(t), at(950)),
                    Err(OidcError::Malformed(_))
                ),
                "{field}"
            );
        }
    }

    #[test]
    fn auth_method_id_is_keccak_of_sub_colon_aud() {
        let id = OidcIdentity {
            issuer: "i".into(),
            subject: "12345".into(),
            audience: "client".into(),
            email: None,
            expires_at: UNIX_EPOCH,
            nonce: None,
        };
        // keccak256("12345:client") computed independently with js-sha3 (node):
        // require('js-sha3').keccak256('12345:client')
        assert_eq!(
            hex::encode(id.auth_method_id()),
            "b501efa739bae2487432b6c530fe8213082675191a6aaa51936a5a760367a162"
        );
        assert_ne!(
            id.auth_method_id(),
            OidcIdentity {
                audience: "client2".into(),
                ..id.clone()
            }
            .auth_method_id()
        );
        assert_eq!(id.auth_method_type(), AUTH_METHOD_TYPE_OIDC);
    }

    /// Node endpoints (axum handlers) need `Send` futures and a shareable verifier.
    #[test]
    fn verifier_and_its_future_are_send_and_sync() {
        fn send<T: Send>(_: &T) {}
        fn sync<T: Send + Sync>() {}
        sync::<OidcVerifier>();
        let v = OidcVerifier::new(vec![config()], Duration::from_secs(1)).unwrap();
        send(&v.verify("x", SystemTime::now()));
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            OidcError::Expired { expired_at: 1 }.code(),
            ErrorCode::AuthExpired
        );
        assert_eq!(
            OidcError::UnknownIssuer("x".into()).code(),
            ErrorCode::InvalidAuth
        );
        assert_eq!(
            OidcError::JwksUnavailable {
                issuer: "i".into(),
                url: "u".into(),
                reason: "r".into()
            }
            .code(),
            ErrorCode::Internal
        );
    }
}
