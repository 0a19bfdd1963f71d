//! Presignatures for PKP signing.
//!
//! A presignature is made and used by exactly one signing group of `T` nodes (see
//! `lit_crypto::ecdsa::Presign` for why), from two Beaver triples the same group generated. A
//! node uses each presignature for one share only: it is recorded as used durably before the
//! share is computed (`super::pkp::StoreUsed`), and a node that crashes and restarts never uses
//! it again.
//!
//! Which presignature a request uses is decided by the group itself, never by the client
//! ([`agree`], for `/v1/pkp/sign` and for an action's `signEcdsa` alike): every member that
//! received the request derives the same peer session from it; the group's lead (its lowest id)
//! reserves one of its pool entries, or decides there is none, and tells the other members in
//! that session (an envelope signed by the lead and sealed to each member). A member that hears
//! nothing from the lead within a bounded wait fails with `not_ready` naming the lead: the lead
//! is down or slow, or the client sent the members different requests (then they meet in
//! different sessions, and no member signs with another's presignature).
//!
//! Two sources:
//! - **Pool** (fast): for each *rotation group* `{k, k+1, …, k+T-1} (mod n)` its lead keeps a
//!   pool of presignatures filled in the background: it picks the next counter, tells the other
//!   members over the peer transport (a signed, sealed control message), and all of them
//!   generate together and store the result under `pool/<group>/<counter>`. Refilling yields to
//!   serving: it waits while signing requests are in flight. The lead hands each counter out
//!   once, to one request, and only after it checked that request's caller; each member
//!   *takes* the entry from its store (a durable delete) before it signs. A member that lacks
//!   the entry refuses (`not_ready`), and the client tries another group.
//! - **Fresh** (slower, always available): the lead has no pool entry (or leads no rotation
//!   group), so the members run two triple generations and one presigning over the peer
//!   transport, labelled by the request's session. A member that does not take part within the
//!   round timeout is named, and the request fails at every node of the group (the client then
//!   picks another group).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lit_api::v1::PresignatureSource;
use lit_api::{Bytes32, ErrorCode};
use lit_crypto::ecdsa::{Presign, Presignature, TripleGeneration};
use lit_crypto::PartyId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use super::Node;
use crate::epoch::NodeKeys;
use crate::error::ApiError;
use crate::net::transport::{drive, DriveError, DriveOptions};
use crate::store::Table;

/// How long a signing group member may stay silent before the request fails.
pub const ONLINE_ROUND_TIMEOUT: Duration = Duration::from_secs(5);

fn online_options() -> DriveOptions {
    DriveOptions {
        round_timeout: ONLINE_ROUND_TIMEOUT,
        max_idle_timeouts: 0,
    }
}

fn drive_error(what: &str, e: DriveError) -> ApiError {
    match e {
        DriveError::TimedOut { silent } => ApiError::new(
            ErrorCode::NotReady,
            format!("{what}: signing group members {silent:?} did not take part"),
        ),
        DriveError::SessionClosed => ApiError::new(
            ErrorCode::NonceReplayed,
            format!("{what}: this request id was already used"),
        ),
        other => ApiError::internal(ErrorCode::Internal, format!("{what} failed"), other),
    }
}

/// Runs two triple generations and a presigning with `group`, labelled `label`.
async fn generate(
    node: &Arc<Node>,
    keys: &NodeKeys,
    group: &[PartyId],
    label: &[u8],
    options: DriveOptions,
) -> Result<Presignature, ApiError> {
    let t = keys.ecdsa.threshold();
    let members: BTreeSet<PartyId> = group.iter().copied().collect();
    let bad = |e: lit_crypto::ecdsa::EcdsaError| {
        ApiError::internal(ErrorCode::Internal, "making a presignature failed", e)
    };
    let mut label0 = label.to_vec();
    label0.extend_from_slice(b"/triple-0");
    let mut label1 = label.to_vec();
    label1.extend_from_slice(b"/triple-1");
    let mut t0 = TripleGeneration::new(&label0, group, node.me, t).map_err(bad)?;
    let mut t1 = TripleGeneration::new(&label1, group, node.me, t).map_err(bad)?;
    let (s0, s1) = (
        Bytes32(*t0.session_id().as_bytes()),
        Bytes32(*t1.session_id().as_bytes()),
    );
    let (a, b) = tokio::join!(
        drive(&node.net, "triple", s0, &members, &mut t0, options, |_| {}),
        drive(&node.net, "triple", s1, &members, &mut t1, options, |_| {}),
    );
    let (a, b) = (
        a.map_err(|e| drive_error("triple generation", e))?,
        b.map_err(|e| drive_error("triple generation", e))?,
    );
    let mut presign = Presign::new(label, group, &keys.ecdsa, a, b).map_err(bad)?;
    let session = Bytes32(*presign.session_id().as_bytes());
    drive(
        &node.net,
        "presign",
        session,
        &members,
        &mut presign,
        options,
        |_| {},
    )
    .await
    .map_err(|e| drive_error("presigning", e))
}

/// How long a member waits for its signing group's lead to say which presignature a PKP
/// signing request uses (the lead checks the caller first, as every member does).
pub const CHOICE_WAIT: Duration = Duration::from_secs(10);

/// What a signing group's lead tells the other members: which presignature the request uses.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
enum Choice {
    /// The group's pool entry `counter`, reserved by the lead for this request only.
    Pool { counter: u64 },
    /// None: the group generates one for this request.
    Fresh,
}

/// The presignature `group` uses for one request, decided by the group: its lead reserves a
/// pool entry (or decides there is none) and tells the other members in `session`; each then
/// takes that entry from its store, or the group generates a fresh presignature labelled by
/// `session`. A member that hears nothing from the lead by `until` fails with `not_ready`,
/// naming the lead.
///
/// `session` must be derived from everything that defines the request (epoch, request id,
/// what is signed, the group, a domain-separation string), so that only members that received
/// the same request meet in it. A node joins a session once: a request served again here is
/// refused with `nonce_replayed` before the lead reserves anything.
pub(crate) async fn agree(
    node: &Arc<Node>,
    keys: &NodeKeys,
    group: &[PartyId],
    session: Bytes32,
    until: tokio::time::Instant,
) -> Result<(Presignature, PresignatureSource), ApiError> {
    let lead = *group
        .first()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "empty signing group"))?;
    // every member, the lead too, claims the session: a replayed request stops here
    let mut inbox = node.net.inbox(session).map_err(|_| {
        ApiError::new(
            ErrorCode::NonceReplayed,
            "this signing request was already served here",
        )
    })?;
    let choice = if lead == node.me {
        let choice = match node.pools.reserve(group) {
            Some(counter) => Choice::Pool { counter },
            None => Choice::Fresh,
        };
        let bytes = serde_json::to_vec(&choice).map_err(|e| {
            ApiError::internal(ErrorCode::Internal, "encoding the presignature choice", e)
        })?;
        let members: BTreeSet<PartyId> = group.iter().copied().collect();
        for p in group.iter().filter(|p| **p != node.me) {
            node.net.send(session, Some(*p), &members, &bytes);
        }
        choice
    } else {
        let started = tokio::time::Instant::now();
        let bytes = loop {
            match tokio::time::timeout_at(until, inbox.recv()).await {
                Ok(Some((from, bytes))) if from == lead => break bytes,
                Ok(Some((from, _))) => {
                    warn!(from = %from, "a presignature choice from a member that does not lead the group");
                }
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::NotReady,
                        format!(
                            "node {lead}, the signing group's lead, sent no presignature choice within {} ms",
                            started.elapsed().as_millis()
                        ),
                    ))
                }
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::internal(
                ErrorCode::NotReady,
                format!(
                    "node {lead}, the signing group's lead, sent an unreadable presignature choice"
                ),
                e,
            )
        })?
    };
    drop(inbox);
    match choice {
        Choice::Pool { counter } => Ok((
            take_pooled(node, keys, group, counter)?,
            PresignatureSource::Pool,
        )),
        Choice::Fresh => Ok((
            generate(node, keys, group, &session.0, online_options()).await?,
            PresignatureSource::Fresh,
        )),
    }
}

/// Takes (durably removes) the pool entry `counter` of `group`, which its lead reserved.
fn take_pooled(
    node: &Node,
    keys: &NodeKeys,
    group: &[PartyId],
    counter: u64,
) -> Result<Presignature, ApiError> {
    let key = pool_key(keys.epoch, group, counter);
    let taken = node
        .store
        .take(Table::Presignatures, &key)
        .map_err(|e| ApiError::internal(ErrorCode::Internal, "presignature store failed", e))?;
    let Some(bytes) = taken else {
        return Err(ApiError::new(
            ErrorCode::NotReady,
            format!(
                "presignature {counter} of this group is not available here; retry with another group"
            ),
        ));
    };
    let p = Presignature::from_secret_bytes(&bytes).map_err(|e| {
        ApiError::internal(ErrorCode::Internal, "stored presignature is unusable", e)
    })?;
    if p.participants() != group {
        return Err(ApiError::new(
            ErrorCode::Internal,
            "stored presignature of another group",
        ));
    }
    Ok(p)
}

/// [`lit_api::v1::rotation_groups`] as party ids.
pub fn rotation_groups(members: &[PartyId], threshold: usize) -> Vec<Vec<PartyId>> {
    let ids: Vec<u32> = members.iter().map(|p| p.get()).collect();
    lit_api::v1::rotation_groups(&ids, threshold)
        .into_iter()
        .map(|g| g.into_iter().filter_map(PartyId::new).collect())
        .collect()
}

fn group_name(group: &[PartyId]) -> String {
    group
        .iter()
        .map(|p| p.get().to_string())
        .collect::<Vec<_>>()
        .join("-")
}

fn pool_prefix(epoch: u64, group: &[PartyId]) -> String {
    format!("pool/{epoch}/{}/", group_name(group))
}

fn pool_key(epoch: u64, group: &[PartyId], counter: u64) -> String {
    format!("{}{counter:016x}", pool_prefix(epoch, group))
}

fn pool_label(epoch: u64, group: &[PartyId], counter: u64) -> Vec<u8> {
    format!(
        "lit-node/presignature-pool/v1/{epoch}/{}/{counter}",
        group_name(group)
    )
    .into_bytes()
}

/// The control message a group's lead sends to start generating a pool entry.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PoolStart {
    epoch: u64,
    group: Vec<u32>,
    counter: u64,
}

/// The transport session that carries pool control messages of an epoch.
pub(crate) fn control_session(network_name: &str, epoch: u64) -> Bytes32 {
    let mut h = Sha256::new();
    h.update(b"lit-node/presignature-pool/control/v1");
    h.update(network_name.as_bytes());
    h.update(epoch.to_be_bytes());
    Bytes32(h.finalize().into())
}

/// The node's presignature pools.
#[derive(Debug, Default)]
pub struct Pools {
    /// Signing requests being served (refilling waits while there are any).
    pub(crate) serving: AtomicUsize,
    /// For groups this node leads: counters generated and not yet handed out.
    available: Mutex<BTreeMap<Vec<PartyId>, BTreeSet<u64>>>,
    /// Entries this node generated since start (for metrics and tests).
    pub(crate) generated: AtomicUsize,
}

impl Pools {
    fn available(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<PartyId>, BTreeSet<u64>>> {
        self.available.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands out the lowest available counter of `group` (this node must lead it), once.
    pub(crate) fn reserve(&self, group: &[PartyId]) -> Option<u64> {
        let mut a = self.available();
        let set = a.get_mut(group)?;
        let c = set.iter().next().copied()?;
        set.remove(&c);
        Some(c)
    }

    /// How many entries of `group` this lead can still hand out.
    pub fn size(&self, group: &[PartyId]) -> usize {
        self.available().get(group).map_or(0, BTreeSet::len)
    }
}

/// Counts a signing request as in flight while alive.
pub(crate) struct Serving<'a>(&'a Pools);

impl<'a> Serving<'a> {
    pub(crate) fn new(pools: &'a Pools) -> Self {
        pools.serving.fetch_add(1, Ordering::SeqCst);
        Self(pools)
    }
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.0.serving.fetch_sub(1, Ordering::SeqCst);
    }
}

fn background_options() -> DriveOptions {
    DriveOptions {
        round_timeout: Duration::from_secs(10),
        max_idle_timeouts: 0,
    }
}

/// Generates pool entry `counter` of `group` and stores it.
async fn generate_entry(
    node: &Arc<Node>,
    keys: &NodeKeys,
    group: &[PartyId],
    counter: u64,
) -> bool {
    let key = pool_key(keys.epoch, group, counter);
    match generate(
        node,
        keys,
        group,
        &pool_label(keys.epoch, group, counter),
        background_options(),
    )
    .await
    {
        Ok(p) => match node
            .store
            .put(Table::Presignatures, &key, &p.to_secret_bytes())
        {
            Ok(()) => {
                node.pools.generated.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                warn!("storing a presignature failed: {e}");
                false
            }
        },
        Err(e) => {
            debug!(group = %group_name(group), counter, "pool generation failed: {}", e.message());
            false
        }
    }
}

/// Runs the node's pool work until the process ends: answers leads' control messages, and
/// keeps the pools of the groups this node leads at `target` entries.
pub(crate) async fn run_pools(node: Arc<Node>, keys: Arc<NodeKeys>, target: usize) {
    if target == 0 {
        return;
    }
    let members: Vec<PartyId> = node
        .membership()
        .nodes
        .iter()
        .filter_map(|n| PartyId::new(n.party_id))
        .collect();
    let t = keys.ecdsa.threshold();
    let groups = rotation_groups(&members, t);
    let led: Vec<Vec<PartyId>> = groups
        .iter()
        .filter(|g| g.first() == Some(&node.me))
        .cloned()
        .collect();
    // what survived a restart
    for g in &led {
        let prefix = pool_prefix(keys.epoch, g);
        let counters: BTreeSet<u64> = node
            .store
            .keys(Table::Presignatures, &prefix)
            .unwrap_or_default()
            .iter()
            .filter_map(|k| u64::from_str_radix(&k[prefix.len()..], 16).ok())
            .collect();
        node.pools.available().insert(g.clone(), counters);
    }
    let control = control_session(&node.network.name, keys.epoch);
    let mut rx = match node.net.open(control) {
        Ok(rx) => rx,
        Err(e) => {
            warn!("pool control channel: {e}");
            return;
        }
    };
    // members: generate when a lead asks (one at a time per node, in a task)
    let member = {
        let (node, keys) = (node.clone(), keys.clone());
        tokio::spawn(async move {
            while let Some((from, bytes)) = rx.recv().await {
                let Ok(start) = serde_json::from_slice::<PoolStart>(&bytes) else {
                    warn!(from = %from, "malformed pool control message");
                    continue;
                };
                let group: Vec<PartyId> = start
                    .group
                    .iter()
                    .filter_map(|p| PartyId::new(*p))
                    .collect();
                if start.epoch != keys.epoch
                    || group.first() != Some(&from)
                    || !group.contains(&node.me)
                    || !groups.contains(&group)
                {
                    warn!(from = %from, "refused a pool control message (not the group's lead, or another epoch)");
                    continue;
                }
                let (node, keys) = (node.clone(), keys.clone());
                tokio::spawn(async move {
                    generate_entry(&node, &keys, &group, start.counter).await;
                });
            }
        })
    };
    // lead: refill, yielding to serving
    let counter_key = |g: &[PartyId]| format!("pool-counter/{}/{}", keys.epoch, group_name(g));
    loop {
        if node.serving_epoch() != Some(keys.epoch) {
            // a new epoch: its pools start over with its shares (this epoch's entries were
            // made with shares that no longer sign)
            member.abort();
            info!(
                epoch = keys.epoch,
                "presignature pools of this epoch stopped"
            );
            return;
        }
        let mut idle = true;
        for g in &led {
            if node.pools.size(g) >= target {
                continue;
            }
            while node.pools.serving.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            idle = false;
            let next = node
                .store
                .get(Table::Meta, &counter_key(g))
                .ok()
                .flatten()
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map_or(0, u64::from_be_bytes);
            if node
                .store
                .put(Table::Meta, &counter_key(g), &(next + 1).to_be_bytes())
                .is_err()
            {
                break;
            }
            let msg = PoolStart {
                epoch: keys.epoch,
                group: g.iter().map(|p| p.get()).collect(),
                counter: next,
            };
            let Ok(bytes) = serde_json::to_vec(&msg) else {
                break;
            };
            let members: BTreeSet<PartyId> = g.iter().copied().collect();
            for p in g.iter().filter(|p| **p != node.me) {
                node.net.send(control, Some(*p), &members, &bytes);
            }
            if generate_entry(&node, &keys, g, next).await {
                node.pools
                    .available()
                    .entry(g.clone())
                    .or_default()
                    .insert(next);
                info!(group = %group_name(g), size = node.pools.size(g), "presignature pool refilled");
            } else {
                // a member is down or slow: back off before trying this group again
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        if idle {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if member.is_finished() {
            return;
        }
    }
}
