//! Programmable Key Pairs: minting (a key derived from the network's secp256k1 root key, recorded
//! with its owner in the shared registry), permissions, and threshold signing.
//!
//! Signing: the client sends the same request to a group of exactly `T` nodes (`cait-sith`'s
//! presignatures are made and used by exactly the signing group, see
//! `lit_crypto::ecdsa::Presign`). Each node checks the caller against the PKP's permissions,
//! obtains a presignature for the group (see [`crate::presign`]), records it as used durably, and
//! only then computes its signature share, which it returns sealed to the caller.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use lit_api::v1::{
    paths, pkp_share_aad, PermissionChange, PkpAuth, PkpInfo, PkpInfoRequest, PkpMintRequest,
    PkpPermissionsRequest, PkpScope, PkpSignRequest, PkpSignResponse, PresignatureReserveRequest,
    PresignatureReserveResponse, ToSign, PKP_SHARE_SEAL_INFO,
};
use lit_api::{Bytes, Bytes32, ErrorCode};
use lit_crypto::ecdsa::{
    pkp_public_key, sign_share, EcdsaError, MessageDigest, PresignatureId, SigningContext,
    UsedPresignatures,
};
use lit_crypto::eth::{eip191_hash, Address};
use lit_crypto::PartyId;
use rand_core::{OsRng, RngCore};
use sha3::{Digest as _, Keccak256};
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::api::{ApiError, ApiJson};
use crate::auth::verify_auth_sig;
use crate::chain::{ChainError, PkpRegistry};
use crate::node::{auth_error, Node};
use crate::store::{Store, Table};

/// The PKP routes.
pub(crate) fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route(paths::PKP_MINT, post(mint))
        .route(paths::PKP_INFO, post(info))
        .route(paths::PKP_PERMISSIONS, post(permissions))
        .route(paths::PKP_SIGN, post(sign))
        .route(paths::PKP_PRESIGNATURE, post(reserve))
        .route(paths::SESSION_SIGN, post(session_sign))
}

fn chain_error(e: ChainError) -> ApiError {
    match e {
        ChainError::NotFound(t) => ApiError::new(ErrorCode::NotFound, format!("no PKP {t}")),
        other => {
            warn!("registry: {other}");
            ApiError::new(ErrorCode::Internal, "the PKP registry failed")
        }
    }
}

pub(crate) fn registry(node: &Node) -> Result<Arc<dyn PkpRegistry>, ApiError> {
    node.registry.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "this node has no PKP registry configured (`registry` in its configuration)",
        )
    })
}

/// Runs a registry call off the async workers (SQLite may wait for another process's lock).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ChainError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "registry task failed"))?
        .map_err(chain_error)
}

/// The token id of a PKP key: keccak256 of its uncompressed point without the `0x04` prefix.
pub fn token_id(public_key: &k256::AffinePoint) -> [u8; 32] {
    let point = public_key.to_encoded_point(false);
    Keccak256::digest(&point.as_bytes()[1..]).into()
}

async fn mint(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<PkpMintRequest>,
) -> Result<Json<PkpInfo>, ApiError> {
    let keys = node.keys()?;
    let registry = registry(&node)?;
    let (owner, _) =
        verify_auth_sig(&req.auth_sig, OffsetDateTime::now_utc()).map_err(auth_error)?;
    let mut key_id = [0u8; 32];
    OsRng.fill_bytes(&mut key_id);
    let public = pkp_public_key(&keys.ecdsa.public_key(), &key_id)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let record = PkpInfo {
        token_id: Bytes32(token_id(&public)),
        key_id: Bytes32(key_id),
        public_key: Bytes(public.to_encoded_point(true).as_bytes().to_vec()),
        eth_address: Address::from_point(&public).to_checksum(),
        owner: owner.to_checksum(),
        permissions: Default::default(),
    };
    let stored = record.clone();
    blocking(move || registry.insert(&stored)).await?;
    info!(owner = %owner, token = %hex::encode(record.token_id.0), "minted a PKP");
    Ok(Json(record))
}

async fn info(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<PkpInfoRequest>,
) -> Result<Json<PkpInfo>, ApiError> {
    let registry = registry(&node)?;
    let token = hex::encode(req.token_id.0);
    let found = blocking(move || registry.get(&token)).await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such PKP"))
}

fn parse_address(s: &str) -> Result<String, ApiError> {
    Address::parse(s)
        .map(|a| a.to_checksum())
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, e.to_string()))
}

async fn permissions(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<PkpPermissionsRequest>,
) -> Result<Json<PkpInfo>, ApiError> {
    let registry = registry(&node)?;
    let (caller, _) =
        verify_auth_sig(&req.auth_sig, OffsetDateTime::now_utc()).map_err(auth_error)?;
    let token = hex::encode(req.token_id.0);
    let current = {
        let (registry, token) = (registry.clone(), token.clone());
        blocking(move || registry.get(&token)).await?
    }
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such PKP"))?;
    if current.owner != caller.to_checksum() {
        return Err(ApiError::new(
            ErrorCode::NotPermitted,
            format!(
                "only the owner {} changes this PKP's permissions",
                current.owner
            ),
        ));
    }
    // validate before touching the registry
    let change = match req.change {
        PermissionChange::AddAddress { address } => PermissionChange::AddAddress {
            address: parse_address(&address)?,
        },
        PermissionChange::RemoveAddress { address } => PermissionChange::RemoveAddress {
            address: parse_address(&address)?,
        },
        PermissionChange::AddAuthMethod { method } => {
            if method.scopes.is_empty() || hex::decode(&method.id).is_err() {
                return Err(ApiError::new(
                    ErrorCode::MalformedRequest,
                    "an auth method needs a hex id and at least one scope",
                ));
            }
            PermissionChange::AddAuthMethod { method }
        }
        PermissionChange::AddAction { cid } => {
            cid.parse::<lit_actions::ActionId>()
                .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, e.to_string()))?;
            PermissionChange::AddAction { cid }
        }
        other => other,
    };
    let updated = blocking(move || {
        registry.update_permissions(&token, &mut |p| match &change {
            PermissionChange::AddAddress { address } => {
                p.addresses.insert(address.clone());
            }
            PermissionChange::RemoveAddress { address } => {
                p.addresses.remove(address);
            }
            PermissionChange::AddAuthMethod { method } => {
                p.auth_methods
                    .retain(|m| !(m.method_type == method.method_type && m.id == method.id));
                p.auth_methods.push(method.clone());
            }
            PermissionChange::RemoveAuthMethod { method_type, id } => {
                p.auth_methods
                    .retain(|m| !(m.method_type == *method_type && m.id == *id));
            }
            PermissionChange::AddAction { cid } => {
                p.actions.insert(cid.clone());
            }
            PermissionChange::RemoveAction { cid } => {
                p.actions.remove(cid);
            }
        })
    })
    .await?;
    Ok(Json(updated))
}

/// Durable used-presignature records in the node's store.
pub(crate) struct StoreUsed<'a>(pub &'a Store);

impl UsedPresignatures for StoreUsed<'_> {
    fn mark_used(&mut self, id: PresignatureId) -> Result<(), EcdsaError> {
        match self.0.insert_new(
            Table::Presignatures,
            &format!("used/{}", hex::encode(id.0)),
            &[1],
        ) {
            Ok(true) => Ok(()),
            Ok(false) => Err(EcdsaError::PresignatureReused(id)),
            Err(e) => Err(EcdsaError::InvalidParameters(format!(
                "cannot record the presignature as used: {e}"
            ))),
        }
    }
}

fn not_permitted(who: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotPermitted,
        format!("{who} may not sign with this PKP"),
    )
}

/// Who the caller of a signing request is, verified.
pub(crate) async fn caller_address(
    node: &Node,
    sig: &lit_api::v1::AuthSig,
) -> Result<Address, ApiError> {
    let now = OffsetDateTime::now_utc();
    if sig.derived_via == crate::eip1271::DERIVED_VIA_EIP1271 {
        let message: crate::auth::SiweMessage = sig
            .signed_message
            .parse()
            .map_err(|e: crate::auth::SiweError| auth_error(e.into()))?;
        let rpc = node.chains_by_id.get(&message.chain_id).ok_or_else(|| {
            ApiError::new(
                ErrorCode::ChainUnavailable,
                format!(
                    "no chain with id {} is configured for contract wallets",
                    message.chain_id
                ),
            )
        })?;
        let (address, _) = crate::eip1271::verify_contract_auth_sig(sig, now, rpc)
            .await
            .map_err(|e| ApiError::new(e.code(), e.to_string()))?;
        return Ok(address);
    }
    verify_auth_sig(sig, now)
        .map(|(a, _)| a)
        .map_err(auth_error)
}

/// Verifies a session signature made for this node that grants `ability` on `resource`.
pub(crate) fn verify_session_for(
    node: &Node,
    keys: &crate::keys::NodeKeys,
    sig: &lit_api::session::SessionSig,
    resource: lit_api::session::LitResource,
    ability: lit_api::session::LitAbility,
) -> Result<crate::session::VerifiedSession, ApiError> {
    let request = lit_api::session::ResourceAbilityRequest::new(resource, ability)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    crate::session::verify_session_sig(
        sig,
        &node.url,
        &request,
        OffsetDateTime::now_utc(),
        &keys.bls_set.public_key(),
        &node.session_replay,
    )
    .map_err(|e| ApiError::new(e.code(), e.to_string()))
}

/// Verifies an auth method credential (an OpenID Connect ID token from a configured issuer);
/// returns the identity and its auth method id (lowercase hex).
pub(crate) async fn verify_auth_method(
    node: &Node,
    method: &lit_api::v1::AuthMethod,
) -> Result<(crate::oidc::OidcIdentity, String), ApiError> {
    if method.auth_method_type != lit_api::v1::AUTH_METHOD_TYPE_OIDC {
        return Err(ApiError::new(
            ErrorCode::InvalidAuth,
            format!(
                "auth method type {} is not supported",
                method.auth_method_type
            ),
        ));
    }
    let verifier = node.oidc.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidAuth,
            "this node accepts no OpenID Connect issuer",
        )
    })?;
    let identity = verifier
        .verify(&method.access_token, std::time::SystemTime::now())
        .await
        .map_err(|e| ApiError::new(e.code(), e.to_string()))?;
    let id = hex::encode(identity.auth_method_id());
    Ok((identity, id))
}

/// What the caller may sign with the PKP.
async fn permitted_scopes(
    node: &Node,
    keys: &crate::keys::NodeKeys,
    record: &PkpInfo,
    auth: &PkpAuth,
) -> Result<BTreeSet<PkpScope>, ApiError> {
    let all = || BTreeSet::from([PkpScope::SignAnything, PkpScope::PersonalSign]);
    match auth {
        PkpAuth::SessionSig(sig) => {
            let verified = verify_session_for(
                node,
                keys,
                sig,
                lit_api::session::LitResource::Pkp(lit_api::session::ResourceId::Id(hex::encode(
                    record.token_id.0,
                ))),
                lit_api::session::LitAbility::PkpSigning,
            )?;
            let who = verified.authorized_address.to_checksum();
            let ok = match verified.authorized_by {
                crate::session::CapabilitySigner::Wallet => {
                    who == record.owner || record.permissions.addresses.contains(&who)
                }
                crate::session::CapabilitySigner::Network => who == record.eth_address,
            };
            if ok {
                Ok(all())
            } else {
                Err(not_permitted(&who))
            }
        }
        PkpAuth::AuthSig(sig) => {
            let caller = caller_address(node, sig).await?.to_checksum();
            if caller == record.owner || record.permissions.addresses.contains(&caller) {
                Ok(BTreeSet::from([
                    PkpScope::SignAnything,
                    PkpScope::PersonalSign,
                ]))
            } else {
                Err(not_permitted(&caller))
            }
        }
        PkpAuth::LitAction(action) => {
            let run =
                lit_actions::Action::new(action.code.clone()).with_params(action.js_params.clone());
            let cid = run.id().to_string();
            if !record.permissions.actions.contains(&cid) {
                return Err(not_permitted(&format!("Lit Action {cid}")));
            }
            let engine = node.auth_engine().map_err(|e| {
                warn!("action engine: {e}");
                ApiError::new(ErrorCode::Internal, "the action engine is unavailable")
            })?;
            let outcome = lit_actions::Engine::run(
                engine.as_ref(),
                &run,
                Arc::new(lit_actions::host::NoCapabilities),
            )
            .await
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidAuth,
                    format!("Lit Action {cid} failed: {e}"),
                )
            })?;
            let authorised = match outcome.response.as_deref().map(str::trim) {
                Some("true") => true,
                Some(other) => serde_json::from_str::<serde_json::Value>(other)
                    .map(|v| {
                        v == serde_json::json!(true) || v["authorized"] == serde_json::json!(true)
                    })
                    .unwrap_or(false),
                None => false,
            };
            if authorised {
                Ok(all())
            } else {
                Err(ApiError::new(
                    ErrorCode::NotPermitted,
                    format!("Lit Action {cid} did not authorise the caller"),
                ))
            }
        }
        PkpAuth::AuthMethod(method) => {
            let (identity, id) = verify_auth_method(node, method).await?;
            record
                .permissions
                .auth_methods
                .iter()
                .find(|m| {
                    m.method_type == method.auth_method_type && m.id.eq_ignore_ascii_case(&id)
                })
                .map(|m| m.scopes.clone())
                .ok_or_else(|| {
                    not_permitted(&format!(
                        "{} (subject {})",
                        identity.issuer, identity.subject
                    ))
                })
        }
    }
}

/// Never trusts the registry's public key: derives it from the root key and the key id and
/// checks the record against it.
pub(crate) fn check_record(
    keys: &crate::keys::NodeKeys,
    record: &PkpInfo,
) -> Result<k256::AffinePoint, ApiError> {
    let derived = pkp_public_key(&keys.ecdsa.public_key(), &record.key_id.0)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    if token_id(&derived) != record.token_id.0
        || derived.to_encoded_point(true).as_bytes() != record.public_key.0.as_slice()
    {
        warn!(token = %hex::encode(record.token_id.0), "registry record does not match its key id");
        return Err(ApiError::new(
            ErrorCode::Internal,
            "the PKP record is inconsistent",
        ));
    }
    Ok(derived)
}

/// The signing group of a request: exactly `threshold` members of the network, this node among
/// them.
pub(crate) fn parse_group(
    node: &Node,
    group: &[u32],
    threshold: usize,
) -> Result<Vec<PartyId>, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::MalformedRequest, m);
    let set: BTreeSet<u32> = group.iter().copied().collect();
    if set.len() != group.len() || set.len() != threshold {
        return Err(bad(format!(
            "the signing group must be exactly {threshold} distinct nodes"
        )));
    }
    let mut out = Vec::with_capacity(set.len());
    for id in set {
        if node.network.node(id).is_none() {
            return Err(bad(format!("{id} is not a member of the network")));
        }
        out.push(PartyId::new(id).ok_or_else(|| bad("party id 0".into()))?);
    }
    if !out.contains(&node.me) {
        return Err(bad("this node is not in the signing group".into()));
    }
    Ok(out)
}

/// The network's signature share over a PKP session capability.
async fn session_sign(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<lit_api::v1::SessionSignRequest>,
) -> Result<Json<lit_api::v1::SessionSignResponse>, ApiError> {
    let keys = node.keys_for_epoch(req.epoch)?;
    if matches!(req.auth, PkpAuth::SessionSig(_)) {
        return Err(ApiError::new(
            ErrorCode::InvalidAuth,
            "a session cannot vouch for a new session: use the wallet or auth method",
        ));
    }
    let registry = registry(&node)?;
    let token = hex::encode(req.token_id.0);
    let record = {
        let token = token.clone();
        blocking(move || registry.get(&token)).await?
    }
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such PKP"))?;
    // never sign text that is not a well-formed capability of this PKP for this PKP only
    let cap = crate::session::parse_capability_message(&req.capability)
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, e.to_string()))?;
    if cap.address.to_checksum() != record.eth_address {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            "the capability must be issued by the PKP's address",
        ));
    }
    let only_this_pkp = cap.grants.iter().all(|g| {
        *g.resource()
            == lit_api::session::LitResource::Pkp(lit_api::session::ResourceId::Id(token.clone()))
    });
    if !only_this_pkp {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            "a PKP session may only grant abilities on its own PKP",
        ));
    }
    let scopes = permitted_scopes(&node, &keys, &record, &req.auth).await?;
    if !scopes.contains(&PkpScope::SignAnything) {
        return Err(ApiError::new(
            ErrorCode::NotPermitted,
            "a PKP session needs an auth permitted to sign anything",
        ));
    }
    let client_key = crate::node::client_key(&req.client_public_key)?;
    let share = keys.bls.sign(req.capability.as_bytes());
    let sealed = crate::node::seal_reply(
        &client_key,
        lit_api::v1::SESSION_SHARE_SEAL_INFO,
        &lit_api::v1::encryption_share_aad(node.me.get(), keys.epoch, req.capability.as_bytes()),
        &share.to_bytes(),
    )?;
    Ok(Json(lit_api::v1::SessionSignResponse {
        party_id: node.me.get(),
        epoch: keys.epoch,
        share: sealed,
    }))
}

async fn reserve(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<PresignatureReserveRequest>,
) -> Result<Json<PresignatureReserveResponse>, ApiError> {
    let keys = node.keys_for_epoch(req.epoch)?;
    let group = parse_group(&node, &req.group, keys.ecdsa.threshold())?;
    if group.first() != Some(&node.me) {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            "ask the group's lead (its lowest party id)",
        ));
    }
    let counter = node.pools.reserve(&group);
    Ok(Json(PresignatureReserveResponse {
        counter,
        remaining: node.pools.size(&group) as u64,
    }))
}

async fn sign(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<PkpSignRequest>,
) -> Result<Json<PkpSignResponse>, ApiError> {
    let started = Instant::now();
    let _serving = crate::presign::Serving::new(&node.pools);
    let keys = node.keys_for_epoch(req.epoch)?;
    let registry = registry(&node)?;
    let token = hex::encode(req.token_id.0);
    let record = blocking(move || registry.get(&token))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such PKP"))?;
    let scopes = permitted_scopes(&node, &keys, &record, &req.auth).await?;
    check_record(&keys, &record)?;
    let root = keys.ecdsa.public_key();
    let digest = match &req.to_sign {
        ToSign::Digest(d) => {
            if !scopes.contains(&PkpScope::SignAnything) {
                return Err(ApiError::new(
                    ErrorCode::NotPermitted,
                    "this auth may only sign personal messages (EIP-191), not raw digests",
                ));
            }
            d.0
        }
        ToSign::Message(m) => eip191_hash(&m.0),
    };
    let group = parse_group(&node, &req.group, keys.ecdsa.threshold())?;
    let client_key = crate::node::client_key(&req.client_public_key)?;
    let now = OffsetDateTime::now_utc();
    if !node.replay_insert(req.client_public_key.0, now + time::Duration::hours(1), now) {
        return Err(ApiError::new(
            ErrorCode::NonceReplayed,
            "this clientPublicKey was already used: make a fresh key for every request",
        ));
    }

    let (presignature, source) =
        crate::presign::for_request(&node, &keys, &group, &req, &digest).await?;
    let context = SigningContext {
        root_public_key: root,
        key_id: record.key_id.0.to_vec(),
        digest: MessageDigest::prehashed(digest),
    };
    let share = sign_share(
        &keys.ecdsa,
        presignature,
        &context,
        &mut StoreUsed(&node.store),
    )
    .map_err(|e| {
        warn!("signing failed: {e}");
        ApiError::new(ErrorCode::Internal, format!("signing failed: {e}"))
    })?;
    let plain = serde_json::to_vec(&share)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let sealed = crate::node::seal_reply(
        &client_key,
        PKP_SHARE_SEAL_INFO,
        &pkp_share_aad(node.me.get(), keys.epoch, &req.request_id, &digest),
        &plain,
    )?;
    Ok(Json(PkpSignResponse {
        party_id: node.me.get(),
        epoch: keys.epoch,
        share: sealed,
        presignature: source,
        node_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}
