//! Programmable Key Pairs: minting (a key derived from the network's secp256k1 root key, recorded
//! with its owner in the shared registry), permissions, and threshold signing.
//!
//! Signing: the client sends the same request to a group of exactly `T` nodes (`cait-sith`'s
//! presignatures are made and used by exactly the signing group, see
//! `lit_crypto::ecdsa::Presign`). Each node checks the caller against the PKP's permissions,
//! agrees with the group on a presignature (the group's lead chooses a pooled one or none, see
//! [`super::presign::agree`]; the client has no say), records it as used durably, and only then
//! computes its signature share, which it returns sealed to the caller.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use k256::elliptic_curve::sec1::ToEncodedPoint;
use lit_api::v1::{
    pkp_share_aad, PermissionChange, PkpAuth, PkpInfo, PkpInfoRequest, PkpMintRequest,
    PkpPermissionsRequest, PkpScope, PkpSignRequest, PkpSignResponse, ToSign, PKP_SHARE_SEAL_INFO,
};
use lit_api::{Bytes, Bytes32, ErrorCode};
use lit_crypto::ecdsa::{
    pkp_public_key, sign_share, EcdsaError, MessageDigest, PresignatureId, SigningContext,
    UsedPresignatures,
};
use lit_crypto::eth::{eip191_hash, Address};
use lit_crypto::PartyId;
use rand_core::{OsRng, RngCore};
use sha3::Digest as _;
use time::OffsetDateTime;
use tracing::info;

use lit_api::owner::OwnerAction;
use lit_api::session::{LitAbility, LitResource};
use lit_api::v1::IdTokenPurpose;

use super::{client_key, seal_reply, Node};
use crate::auth::action::Authorising;
use crate::auth::owner::verify_approval;
use crate::auth::session::CapabilitySigner;
use crate::auth::{Caller, CallerKey};
use crate::chain::payments::Product;
use crate::chain::{ChainError, PkpRegistry};
use crate::epoch::NodeKeys;
use crate::error::ApiError;
use crate::store::{Store, Table};

impl From<ChainError> for ApiError {
    fn from(e: ChainError) -> Self {
        match e {
            ChainError::NotFound(t) => ApiError::new(ErrorCode::NotFound, format!("no PKP {t}")),
            e @ ChainError::OwnerTransactions { .. } => {
                ApiError::new(ErrorCode::NotPermitted, e.to_string())
            }
            ChainError::ApprovalUsed => ApiError::new(
                ErrorCode::NonceReplayed,
                "this approval was already used: approve every change anew",
            ),
            ChainError::MintQuota {
                owner,
                limit,
                resets_at,
            } => {
                let resets_at = OffsetDateTime::from_unix_timestamp(resets_at)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "{owner} minted {limit} PKPs on this network in the last hour, as many as \
                         this node allows per owner (quotas.mints_per_hour); the approval was not \
                         used, and the next mint is possible at {}",
                        super::quota::when(resets_at, OffsetDateTime::now_utc())
                    ),
                )
            }
            other => ApiError::internal(ErrorCode::Internal, "the PKP registry failed", other),
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
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(ErrorCode::Internal, "the PKP registry failed", e))??)
}

/// The token id of a PKP key ([`lit_crypto::eth::pkp_token_id`]).
pub fn token_id(public_key: &k256::AffinePoint) -> [u8; 32] {
    lit_crypto::eth::pkp_token_id(public_key)
}

/// The network's identifier, which owner approvals name.
pub(crate) fn network_id(keys: &NodeKeys) -> String {
    lit_api::owner::network_id(&keys.bls_set.public_key().to_bytes())
}

/// Mints a PKP for the owner who approved it: a key derived from the root key with a random
/// key id, recorded in the registry with the approval (which takes effect once). The approving
/// owner is the caller whose quota the mint counts against (`quotas.mints_per_hour`, counted by
/// the registry for the whole network, see `super::quota`); a mint over it is refused
/// `rate_limited` and leaves the approval unused.
pub async fn mint(node: &Node, req: PkpMintRequest) -> Result<PkpInfo, ApiError> {
    let keys = node.keys()?;
    let registry = registry(node)?;
    let owner = Address::parse(&req.owner)
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, format!("owner: {e}")))?;
    let (signer, approval) = verify_approval(
        &network_id(&keys),
        &OwnerAction::Mint { owner: &req.owner },
        &req.approval,
        OffsetDateTime::now_utc(),
    )?;
    if signer != owner {
        return Err(ApiError::new(
            ErrorCode::InvalidAuth,
            format!("the approval is signed by {signer}, not by the owner {owner}"),
        ));
    }
    let mut key_id = [0u8; 32];
    OsRng.fill_bytes(&mut key_id);
    let public = pkp_public_key(&keys.ecdsa.public_key(), &key_id)
        .map_err(|e| ApiError::internal(ErrorCode::Internal, "the PKP key cannot be derived", e))?;
    let record = PkpInfo {
        token_id: Bytes32(token_id(&public)),
        key_id: Bytes32(key_id),
        public_key: Bytes(public.to_encoded_point(true).as_bytes().to_vec()),
        eth_address: Address::from_point(&public).to_checksum(),
        owner: owner.to_checksum(),
        permissions: Default::default(),
    };
    let stored = record.clone();
    let quota = node.quotas.mints_per_hour;
    blocking(move || registry.insert(&stored, &approval, quota)).await?;
    info!(owner = %owner, token = %hex::encode(record.token_id.0), "minted a PKP");
    Ok(record)
}

/// A PKP's registry record.
pub async fn info(node: &Node, req: PkpInfoRequest) -> Result<PkpInfo, ApiError> {
    let registry = registry(node)?;
    let token = hex::encode(req.token_id.0);
    let found = blocking(move || registry.get(&token)).await?;
    found.ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such PKP"))
}

fn parse_address(s: &str) -> Result<String, ApiError> {
    Address::parse(s)
        .map(|a| a.to_checksum())
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, e.to_string()))
}

/// Changes a PKP's permissions; only its owner may.
pub async fn permissions(node: &Node, req: PkpPermissionsRequest) -> Result<PkpInfo, ApiError> {
    let keys = node.keys()?;
    let registry = registry(node)?;
    let (caller, approval) = verify_approval(
        &network_id(&keys),
        &OwnerAction::ChangePermissions {
            token_id: &req.token_id,
            change: &req.change,
        },
        &req.approval,
        OffsetDateTime::now_utc(),
    )?;
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
        registry.update_permissions(&token, &approval, &mut |p| match &change {
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
    Ok(updated)
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

/// The longest life of a PKP session the network signs (Lit's default session life).
pub const MAX_PKP_SESSION: time::Duration = time::Duration::hours(24);

/// What `party` (`address:…`, `auth-method:<type>:<id>`, `action:<CID>`) may sign with the
/// PKP as its permissions stand now; `None` if nothing.
fn scopes_of(record: &PkpInfo, party: &str) -> Option<BTreeSet<PkpScope>> {
    let all = || BTreeSet::from([PkpScope::SignAnything, PkpScope::PersonalSign]);
    if let Some(address) = party.strip_prefix("address:") {
        (address == record.owner || record.permissions.addresses.contains(address)).then(all)
    } else if let Some(cid) = party.strip_prefix("action:") {
        record.permissions.actions.contains(cid).then(all)
    } else if let Some(method) = party.strip_prefix("auth-method:") {
        let (method_type, id) = method.split_once(':')?;
        let method_type: u32 = method_type.parse().ok()?;
        record
            .permissions
            .auth_methods
            .iter()
            .find(|m| m.method_type == method_type && m.id.eq_ignore_ascii_case(id))
            .map(|m| m.scopes.clone())
    } else {
        None
    }
}

/// What a permitted caller may sign with the PKP, who it is among the PKP's parties, and the
/// key its request nonces count under.
struct Permitted {
    scopes: BTreeSet<PkpScope>,
    party: String,
    caller: CallerKey,
    /// Whether the caller used a PKP session (which cannot vouch for a new one).
    via_pkp_session: bool,
    /// The session, when the caller used one (it carries the payment terms).
    session: Option<crate::auth::session::VerifiedSession>,
}

/// What the caller may sign with the PKP. A Lit Action that is the auth is shown what it
/// authorises.
async fn permitted_scopes(
    node: &Node,
    keys: &NodeKeys,
    record: &PkpInfo,
    auth: &PkpAuth,
    authorising: Authorising<'_>,
) -> Result<Permitted, ApiError> {
    let resource = LitResource::pkp(&record.token_id.0);
    let caller = node
        .auth
        .verify(
            auth,
            resource,
            LitAbility::PkpSigning,
            &keys.bls_set.public_key(),
        )
        .await?;
    let key = caller.key();
    let session = match &caller {
        Caller::Session(verified) => Some(verified.clone()),
        _ => None,
    };
    let party = match caller {
        Caller::Session(verified) => match verified.authorized_by {
            CapabilitySigner::Wallet => {
                format!("address:{}", verified.authorized_address.to_checksum())
            }
            CapabilitySigner::Network => {
                let who = verified.authorized_address.to_checksum();
                if who != record.eth_address {
                    return Err(not_permitted(&who));
                }
                // a PKP session is as good as the party that obtained it (signed by the
                // network with the capability), now
                let grant = verified.network_party.clone().ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::NotPermitted,
                        "the network did not issue this PKP session: obtain a new one",
                    )
                })?;
                let scopes = scopes_of(record, &grant).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::NotPermitted,
                        format!(
                            "{grant} obtained this PKP session and is no longer permitted on the PKP"
                        ),
                    )
                })?;
                return Ok(Permitted {
                    scopes,
                    party: grant,
                    caller: key,
                    via_pkp_session: true,
                    session,
                });
            }
        },
        Caller::LitAction(action) => {
            let party = format!("action:{}", action.id());
            if scopes_of(record, &party).is_none() {
                return Err(not_permitted(&format!("Lit Action {}", action.id())));
            }
            node.auth
                .action_authorises(&action, &authorising, &node.action_permits)
                .await?;
            party
        }
        Caller::AuthMethod { identity, id, .. } => {
            identity.check_purpose(match authorising {
                Authorising::PkpSign { to_sign, .. } => IdTokenPurpose::PkpSign(to_sign),
                Authorising::PkpSession { capability, .. } => {
                    IdTokenPurpose::PkpSession(capability)
                }
            })?;
            // Lit's type of the issuer (Google JWT, Apple JWT) first, then generic OIDC: see
            // `auth::oidc` for which token satisfies which permission
            identity
                .permission_types()
                .into_iter()
                .map(|method_type| format!("auth-method:{method_type}:{id}"))
                .find(|party| scopes_of(record, party).is_some())
                .ok_or_else(|| {
                    not_permitted(&format!(
                        "{} (subject {})",
                        identity.issuer, identity.subject
                    ))
                })?
        }
    };
    let scopes = scopes_of(record, &party)
        .ok_or_else(|| not_permitted(party.trim_start_matches("address:")))?;
    Ok(Permitted {
        scopes,
        party,
        caller: key,
        via_pkp_session: false,
        session,
    })
}

/// Never trusts the registry's public key: derives it from the root key and the key id and
/// checks the record against it.
pub(crate) fn check_record(
    keys: &NodeKeys,
    record: &PkpInfo,
) -> Result<k256::AffinePoint, ApiError> {
    let derived = pkp_public_key(&keys.ecdsa.public_key(), &record.key_id.0)
        .map_err(|e| ApiError::internal(ErrorCode::Internal, "the PKP key cannot be derived", e))?;
    if token_id(&derived) != record.token_id.0
        || derived.to_encoded_point(true).as_bytes() != record.public_key.0.as_slice()
    {
        // on a chain anyone can record any key under a key id; no node signs for it
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "the registry's PKP {} is not a key of this network: its public key is not \
                 derived from the root key and its key id",
                hex::encode(record.token_id.0)
            ),
        ));
    }
    Ok(derived)
}

/// The signing group of a request: exactly `threshold` holders of the shares of the request's
/// epoch (`keys`), this node among them. A group with a node that holds none is named by a
/// client whose view of the members is behind: `wrong_epoch`, so it handshakes again.
pub(crate) fn parse_group(
    keys: &NodeKeys,
    me: PartyId,
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
    let holders: BTreeSet<u32> = keys.bls_set.participants().map(|p| p.get()).collect();
    let mut out = Vec::with_capacity(set.len());
    for id in set {
        if !holders.contains(&id) {
            return Err(ApiError::new(
                ErrorCode::WrongEpoch,
                format!(
                    "node {id} holds no shares of epoch {}: handshake again for the members",
                    keys.epoch
                ),
            ));
        }
        out.push(PartyId::new(id).ok_or_else(|| bad("party id 0".into()))?);
    }
    if !out.contains(&me) {
        return Err(bad("this node is not in the signing group".into()));
    }
    Ok(out)
}

/// The network's signature share over a PKP session capability.
pub async fn session_sign(
    node: &Node,
    req: lit_api::v1::SessionSignRequest,
) -> Result<lit_api::v1::SessionSignResponse, ApiError> {
    let keys = node.keys_for_epoch(req.epoch)?;
    let registry = registry(node)?;
    let token = hex::encode(req.token_id.0);
    let record = {
        let token = token.clone();
        blocking(move || registry.get(&token)).await?
    }
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such PKP"))?;
    // never sign text that is not a well-formed capability of this PKP for this PKP only
    let cap = crate::auth::session::parse_capability_message(&req.capability)
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, e.to_string()))?;
    if cap.address.to_checksum() != record.eth_address {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            "the capability must be issued by the PKP's address",
        ));
    }
    if cap.domain != node.auth.domain() {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            format!(
                "the capability is a sign-in to {:?}, not to this network ({:?})",
                cap.domain,
                node.auth.domain()
            ),
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
    let now = OffsetDateTime::now_utc();
    if cap.expires_at - now > MAX_PKP_SESSION {
        return Err(ApiError::new(
            ErrorCode::InvalidAuth,
            format!(
                "a PKP session lives at most {} hours; this capability expires {}",
                MAX_PKP_SESSION.whole_hours(),
                cap.expires_at
            ),
        ));
    }
    let authorising = Authorising::PkpSession {
        pkp: &record,
        capability: &req.capability,
    };
    let Permitted {
        scopes,
        party,
        via_pkp_session,
        ..
    } = permitted_scopes(node, &keys, &record, &req.auth, authorising).await?;
    if via_pkp_session {
        return Err(ApiError::new(
            ErrorCode::InvalidAuth,
            "a PKP session cannot vouch for a new session (it would outlive its 24 hours): \
             use the wallet's session or an auth method",
        ));
    }
    if !scopes.contains(&PkpScope::SignAnything) {
        return Err(ApiError::new(
            ErrorCode::NotPermitted,
            "a PKP session needs an auth permitted to sign anything",
        ));
    }
    // sign who obtained it with the capability: every use re-checks that party's permission
    let grant =
        lit_api::session::network_grant_message(&req.capability, &party).ok_or_else(|| {
            ApiError::new(
                ErrorCode::MalformedRequest,
                "the capability holds a party line of its own",
            )
        })?;
    let client_key = client_key(&req.client_public_key)?;
    let share = keys.bls.sign(grant.as_bytes());
    let sealed = seal_reply(
        &client_key,
        lit_api::v1::SESSION_SHARE_SEAL_INFO,
        &lit_api::v1::encryption_share_aad(node.me.get(), keys.epoch, grant.as_bytes()),
        &share.to_bytes(),
    )?;
    Ok(lit_api::v1::SessionSignResponse {
        party_id: node.me.get(),
        epoch: keys.epoch,
        party,
        share: sealed,
    })
}

/// The peer session in which a signing group agrees on the presignature of one request (and
/// the label of a fresh one): every member derives it from the request alone, so members that
/// were sent different requests never meet.
fn presignature_session(
    epoch: u64,
    req: &PkpSignRequest,
    digest: &[u8; 32],
    group: &[PartyId],
) -> Bytes32 {
    let mut h = sha2::Sha256::new();
    h.update(b"lit-node/pkp-sign/presignature/v2");
    h.update(epoch.to_be_bytes());
    h.update(req.request_id.0);
    h.update(req.token_id.0);
    h.update(digest);
    for p in group {
        h.update(p.get().to_be_bytes());
    }
    Bytes32(h.finalize().into())
}

/// This node's signature share with a PKP, for a caller the PKP permits.
/// A share of the PKP's signature, and what it costs the payer (0 on a free network).
pub async fn sign(
    node: &Arc<Node>,
    req: PkpSignRequest,
) -> Result<(PkpSignResponse, u128), ApiError> {
    let started = Instant::now();
    let _serving = super::presign::Serving::new(&node.pools);
    let keys = node.keys_for_epoch(req.epoch)?;
    let registry = registry(node)?;
    let token = hex::encode(req.token_id.0);
    let record = blocking(move || registry.get(&token))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such PKP"))?;
    let authorising = Authorising::PkpSign {
        pkp: &record,
        to_sign: &req.to_sign,
    };
    let Permitted {
        scopes,
        caller,
        session,
        ..
    } = permitted_scopes(node, &keys, &record, &req.auth, authorising).await?;
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
    let group = parse_group(&keys, node.me, &req.group, keys.ecdsa.threshold())?;
    let client_key = client_key(&req.client_public_key)?;
    let now = OffsetDateTime::now_utc();
    node.auth.fresh_nonce(
        &caller,
        req.client_public_key.0,
        now + time::Duration::hours(1),
        "clientPublicKey",
    )?;
    let quote = node.quote(session.as_ref(), Product::PkpSign).await?;

    // only now, with the caller checked, may the lead hand out a pool entry
    let (presignature, source) = super::presign::agree(
        node,
        &keys,
        &group,
        presignature_session(keys.epoch, &req, &digest, &group),
        tokio::time::Instant::now() + super::presign::CHOICE_WAIT,
    )
    .await?;
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
    .map_err(|e| ApiError::internal(ErrorCode::Internal, "signing failed", e))?;
    let plain = serde_json::to_vec(&share)
        .map_err(|e| ApiError::internal(ErrorCode::Internal, "encoding the share failed", e))?;
    let sealed = seal_reply(
        &client_key,
        PKP_SHARE_SEAL_INFO,
        &pkp_share_aad(node.me.get(), keys.epoch, &req.request_id, &digest),
        &plain,
    )?;
    // the debit is durable before the share leaves the node
    let charged = node.record(quote.as_ref())?;
    Ok((
        PkpSignResponse {
            party_id: node.me.get(),
            epoch: keys.epoch,
            share: sealed,
            presignature: source,
            node_ms: started.elapsed().as_secs_f64() * 1000.0,
        },
        charged,
    ))
}
