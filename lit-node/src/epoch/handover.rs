//! Epochs run by the nodes, following the staking contract (`chain::staking`).
//!
//! Each node polls the chain and acts on what it sees:
//! - **the epoch is over** (and this node is a current member): it locks the next set;
//! - **the next set is locked**: the current members (dealers, with their shares) and the next
//!   set (receivers) run `lit-dkg`'s reshare of both root keys over the peer transport, while
//!   the current epoch keeps serving. At genesis (epoch 0) the locked set runs the DKG instead.
//!   A receiver stores its new shares as *pending*, checks that the root keys did not change,
//!   and signals readiness with their hash; once the next threshold has signalled, any of them
//!   advances the epoch;
//! - **the chain advanced**: a member of the new set switches to the pending shares (the old
//!   ones keep serving requests for their epoch during a grace period, then are erased), its
//!   presignature pools start over; a node that left stops serving and erases its shares;
//! - **the handover timed out** (a crashed member, fewer than the next threshold ready): any
//!   node abandons it; the current set keeps serving and the next epoch retries;
//! - **a member does not answer** (`/v1/health`, asked every second by each serving member) for
//!   `staking.kick_after_ms`: this node votes to kick it, once per epoch; with `T` votes the
//!   contract slashes it and it leaves at the next epoch;
//! - **a member runs software the release register does not approve** (or revoked; checked
//!   through `/v1/peer/attest`, see [`super::peers`], every [`ATTEST_EVERY`] and whenever the
//!   members change): this node leaves it out of its peers and, when it is a current member,
//!   votes to kick it.
//!
//! A handover's sessions are labelled with the time the set was locked, so a retried handover
//! with the same sets never collides with an abandoned one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::VerifyingKey;
use lit_api::network::NetworkNode;
use lit_api::v1::{paths, EpochKeys};
use lit_api::{Bytes, Bytes32};
use lit_crypto::seal::SealPublicKey;
use lit_crypto::shamir::Commitment;
use lit_crypto::PartyId;
use lit_dkg::{KeyGenOutput, Session};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::dkg::{run_keygen, DkgContext, DkgError};
use super::peers::{PeerChecker, Verdict};
use super::{KeysError, NodeKeys};
use crate::chain::staking::{root_keys_hash, EpochState, NetworkState, Staking, Validator};
use crate::chain::ChainError;
use crate::net::{DriveOptions, Peer, PeerKeys};
use crate::service::presign::run_pools;
use crate::service::{Membership, Node};

/// How the node follows the chain.
#[derive(Clone, Copy, Debug)]
pub struct EpochOptions {
    /// How often the chain is read.
    pub poll: Duration,
    /// How long the previous epoch's shares serve after a switch.
    pub grace: Duration,
    /// Round timeout of the handover's protocols.
    pub round_timeout: Duration,
    /// Presignatures kept per signing group this node leads.
    pub presignature_pool: usize,
    /// A current member unreachable this long gets this node's vote to kick it (`None`: never).
    pub kick_after: Option<Duration>,
}

/// Why a handover failed at this node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandoverError {
    /// The chain failed or refused.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A member's registered key is unusable.
    #[error("validator {party}: {what}")]
    BadValidator {
        /// Its party id.
        party: u32,
        /// What is wrong.
        what: &'static str,
    },
    /// The protocol failed.
    #[error(transparent)]
    Dkg(#[from] DkgError),
    /// Key material failed.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// The reshare produced other root keys than the network's (never signalled).
    #[error("the reshare for epoch {0} produced other root keys; not signalling readiness")]
    RootKeysChanged(u64),
    /// A new member could not learn the current epoch's public sharing from enough members.
    #[error("the public sharing of epoch {epoch}: {detail}")]
    OldKeys {
        /// The epoch.
        epoch: u64,
        /// What went wrong.
        detail: String,
    },
}

/// The peers of a set of validators (by party id).
pub fn peers_of<'a>(
    validators: impl IntoIterator<Item = &'a Validator>,
) -> Result<BTreeMap<PartyId, Peer>, HandoverError> {
    let mut peers = BTreeMap::new();
    for v in validators {
        let bad = |what| HandoverError::BadValidator {
            party: v.party_id,
            what,
        };
        let id = PartyId::new(v.party_id).ok_or_else(|| bad("party id 0"))?;
        let identity =
            VerifyingKey::from_bytes(&v.identity_key).map_err(|_| bad("identity key"))?;
        let seal = SealPublicKey::from_bytes(&v.seal_key).map_err(|_| bad("seal key"))?;
        peers.insert(
            id,
            Peer {
                url: v.url.clone(),
                keys: PeerKeys { identity, seal },
            },
        );
    }
    Ok(peers)
}

/// A validator as a network-file entry (what handshakes list for clients).
pub fn network_node(v: &Validator) -> NetworkNode {
    NetworkNode {
        party_id: v.party_id,
        url: v.url.clone(),
        identity_key: Bytes32(v.identity_key),
        seal_key: Bytes32(v.seal_key),
        dkg_key: Bytes(v.dkg_key.clone()),
    }
}

/// The membership of the chain's current epoch.
pub fn membership_of(net: &NetworkState) -> Membership {
    Membership {
        epoch: net.epoch,
        threshold: net.threshold,
        nodes: net.current.iter().map(network_node).collect(),
        from_chain: true,
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A handover is identified by the epoch it leads to and when its set was locked.
type HandoverId = (u64, u64);

/// How often, at most, a node checks its peers' attestation when the members do not change.
pub const ATTEST_EVERY: Duration = Duration::from_secs(10);

/// The node's epoch loop: runs until the process ends. With `checker`, the members' attestation
/// is checked against the release register (see [`super::peers`]).
pub async fn run(
    node: Arc<Node>,
    chain: Arc<dyn Staking>,
    options: EpochOptions,
    checker: Option<PeerChecker>,
) {
    let mut w = Watcher {
        node,
        chain,
        options,
        attestation: Attestations {
            checker: checker.map(Arc::new),
            ..Attestations::default()
        },
        running: None,
        finished: BTreeSet::new(),
        grace_until: None,
        missing_warned: None,
        members_of: BTreeMap::new(),
        liveness: Liveness::new(),
    };
    loop {
        if let Err(e) = w.step().await {
            warn!("epoch: {e}");
        }
        tokio::time::sleep(w.options.poll).await;
    }
}

struct Watcher {
    node: Arc<Node>,
    chain: Arc<dyn Staking>,
    options: EpochOptions,
    running: Option<(HandoverId, JoinHandle<Result<(), HandoverError>>)>,
    /// Handovers this node finished its part of (successfully or not): never run twice.
    finished: BTreeSet<HandoverId>,
    grace_until: Option<Instant>,
    missing_warned: Option<u64>,
    /// The members of the chain's current epoch and of the one before, as last seen: during a
    /// grace period the previous epoch's members stay peers, so that requests of that epoch
    /// in flight complete among its members.
    members_of: BTreeMap<u64, Vec<Validator>>,
    liveness: Liveness,
    attestation: Attestations,
}

/// What this node found of its peers' attestation.
#[derive(Default)]
struct Attestations {
    checker: Option<Arc<PeerChecker>>,
    /// The round of checks in flight.
    round: Option<JoinHandle<Vec<(Validator, Verdict)>>>,
    /// Refused members by identity key, with the reason.
    refused: BTreeMap<[u8; 32], String>,
    /// When the last round ran, and the members (identity keys) it checked.
    last: Option<(Instant, BTreeSet<[u8; 32]>)>,
    /// The refused members this node voted to kick, by epoch.
    voted: BTreeSet<(u64, u32)>,
}

/// What this node saw of the other members' health, to vote out those that stay unreachable.
struct Liveness {
    /// The current members' identity keys: a health answer counts only over a TLS connection
    /// that ends in a member.
    keys: lit_api::tls::TrustedKeys,
    http: reqwest::Client,
    /// Since when each member (party id) has not answered, for the members that do not.
    unreachable_since: BTreeMap<u32, Instant>,
    /// The members this node voted to kick, by epoch.
    voted: BTreeSet<(u64, u32)>,
    last_check: Option<Instant>,
}

impl Liveness {
    fn new() -> Self {
        let keys = lit_api::tls::TrustedKeys::default();
        let verifier = lit_api::tls::NodeKeyVerifier::trusting(keys.clone());
        Self {
            keys,
            // building a client fails only when TLS cannot initialise at all; the default
            // client then fails every probe over TLS, which reads as members not answering
            http: crate::https::node_client(verifier, HEALTH_TIMEOUT)
                .unwrap_or_else(|_| reqwest::Client::new()),
            unreachable_since: BTreeMap::new(),
            voted: BTreeSet::new(),
            last_check: None,
        }
    }
}

/// How long a member has to answer `/v1/health`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the members' health is asked (at most).
const HEALTH_EVERY: Duration = Duration::from_secs(1);

fn refused_ok(r: Result<(), ChainError>) -> Result<bool, ChainError> {
    match r {
        Ok(()) => Ok(true),
        Err(ChainError::Refused(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

impl Watcher {
    async fn step(&mut self) -> Result<(), HandoverError> {
        let net = self.chain.network().await?;
        let me = self.node.me.get();
        let current = net.current.iter().any(|v| v.party_id == me);
        let next = net.next.iter().any(|v| v.party_id == me);

        // the peers: the current set, the next one during a handover, and the previous one
        // during a grace period
        self.check_attestations(&net).await;
        self.members_of.insert(net.epoch, net.current.clone());
        self.members_of.retain(|epoch, _| *epoch + 1 >= net.epoch);
        let previous = match self.grace_until {
            Some(_) => net
                .epoch
                .checked_sub(1)
                .and_then(|e| self.members_of.get(&e)),
            None => None,
        };
        let refused = &self.attestation.refused;
        let peers = peers_of(
            net.current
                .iter()
                .chain(&net.next)
                .chain(previous.into_iter().flatten())
                .filter(|v| !refused.contains_key(&v.identity_key)),
        )?;
        if self.node.net.peer_ids() != peers.keys().copied().collect() {
            self.node.net.set_peers(peers);
        }
        self.follow_epoch(&net, current)?;
        self.end_grace_when_due()?;
        if current && self.node.serving_epoch() == Some(net.epoch) {
            self.vote_out_the_unreachable(&net).await?;
            self.vote_out_the_refused(&net).await?;
        }

        // a finished handover task
        if let Some((id, task)) = self.running.take() {
            if task.is_finished() {
                match task.await {
                    Ok(Ok(())) => info!(epoch = id.0, "handover done at this node"),
                    Ok(Err(e)) => warn!(epoch = id.0, "handover failed at this node: {e}"),
                    Err(e) => warn!(epoch = id.0, "handover task failed: {e}"),
                }
                self.finished.insert(id);
            } else {
                self.running = Some((id, task));
            }
        }

        let now = now_secs();
        match net.state {
            EpochState::Active => {
                if current && net.epoch_over(now) && refused_ok(self.chain.lock_next_epoch().await)?
                {
                    info!(epoch = net.epoch + 1, "locked the next validator set");
                }
            }
            EpochState::Locked => {
                let id = (net.epoch + 1, net.locked_at);
                if net.reshare_timed_out(now) {
                    if refused_ok(self.chain.abandon_reshare().await)? {
                        warn!(epoch = id.0, "abandoned the handover: it timed out");
                    }
                    return Ok(());
                }
                let dealer = current && self.node.serving_epoch() == Some(net.epoch);
                let busy = self.running.is_some() || self.finished.contains(&id);
                if (dealer || next) && !busy {
                    // the handover's sessions are labelled with `locked_at`: a member that starts
                    // it from a read that a second read contradicts would talk alone (seen once
                    // on anvil: epoch 2 Locked with the previous lock's time); wait for the chain
                    let again = self.chain.network().await?;
                    let settled = (again.epoch, again.state, again.locked_at)
                        == (net.epoch, net.state, net.locked_at);
                    if !settled {
                        warn!(
                            epoch = id.0,
                            "two reads of the chain disagree about the lock; reading again"
                        );
                    } else if next && self.chain.has_signalled(id.0, self.chain.caller()).await? {
                        self.finished.insert(id);
                    } else {
                        info!(
                            epoch = id.0,
                            dealers = net.current.len(),
                            receivers = net.next.len(),
                            threshold = net.next_threshold,
                            "handover to the next epoch starts"
                        );
                        let task = tokio::spawn(handover(
                            self.node.clone(),
                            self.chain.clone(),
                            net.clone(),
                            self.options,
                        ));
                        self.running = Some((id, task));
                    }
                }
                if next && self.finished.contains(&id) {
                    if let Some(keys) = NodeKeys::load_epoch(&self.node.store, id.0)? {
                        let (bls, ecdsa) = keys.root_keys();
                        let hash = root_keys_hash(&bls, &ecdsa);
                        if self.chain.ready_count(id.0, hash).await? >= net.next_threshold
                            && refused_ok(self.chain.advance_epoch(hash).await)?
                        {
                            info!(epoch = id.0, "advanced the epoch");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Serves the chain's current epoch if this node is a member with its shares; stops
    /// serving if it left.
    fn follow_epoch(&mut self, net: &NetworkState, current: bool) -> Result<(), HandoverError> {
        let serving = self.node.serving_epoch();
        if net.epoch == 0 || serving == Some(net.epoch) {
            if current && self.node.membership().epoch != net.epoch {
                self.node.set_membership(membership_of(net));
            }
            return Ok(());
        }
        if current {
            let Some(keys) = NodeKeys::load_epoch(&self.node.store, net.epoch)? else {
                if self.missing_warned != Some(net.epoch) {
                    warn!(
                        epoch = net.epoch,
                        "this node is a member of epoch {} but holds no shares of it (it missed \
                         the handover); it serves again after the next one",
                        net.epoch
                    );
                    self.missing_warned = Some(net.epoch);
                }
                return Ok(());
            };
            NodeKeys::make_current(&self.node.store, net.epoch)?;
            let keys = Arc::new(keys);
            self.node.set_membership(membership_of(net));
            self.node.switch_keys(keys.clone());
            self.grace_until = serving.map(|_| Instant::now() + self.options.grace);
            // shares this process did not make: stored before a restart
            if !self.finished.iter().any(|(e, _)| *e == net.epoch) {
                info!(
                    epoch = net.epoch,
                    "loaded key shares; serving without a new DKG"
                );
            }
            info!(
                epoch = net.epoch,
                members = net.current.len(),
                threshold = net.threshold,
                "serving the new epoch"
            );
            if self.node.registry.is_some() {
                tokio::spawn(run_pools(
                    self.node.clone(),
                    keys,
                    self.options.presignature_pool,
                ));
            }
        } else if let Some(held) = serving {
            // requests of its last epoch in flight complete during the grace period; then it
            // erases every share (`end_grace_when_due`)
            self.node.retire_keys();
            self.grace_until = Some(Instant::now() + self.options.grace);
            info!(
                epoch = net.epoch,
                held,
                "this node left the network: it serves requests of epoch {held} for the grace \
                 period, then erases its shares"
            );
        }
        Ok(())
    }

    /// Asks the other current members' `/v1/health`; votes to kick a member that has not
    /// answered for `kick_after` (once per epoch; the contract kicks it when `T` members voted,
    /// and it leaves at the next epoch). A member that answers, even "not ready" (restarting,
    /// or without shares after a missed handover), is not voted against.
    async fn vote_out_the_unreachable(&mut self, net: &NetworkState) -> Result<(), ChainError> {
        let Some(kick_after) = self.options.kick_after else {
            return Ok(());
        };
        let live = &mut self.liveness;
        if live.last_check.is_some_and(|t| t.elapsed() < HEALTH_EVERY) {
            return Ok(());
        }
        live.last_check = Some(Instant::now());
        let me = self.node.me.get();
        let others: Vec<&Validator> = net.current.iter().filter(|v| v.party_id != me).collect();
        live.keys.replace(others.iter().map(|v| v.identity_key));
        let asks = others.iter().map(|v| {
            let url = format!("{}/v1/health", v.url.trim_end_matches('/'));
            let http = live.http.clone();
            async move { http.get(url).timeout(HEALTH_TIMEOUT).send().await.is_ok() }
        });
        let answered = futures_util::future::join_all(asks).await;
        let now = Instant::now();
        live.unreachable_since
            .retain(|party, _| others.iter().any(|v| v.party_id == *party));
        live.voted.retain(|(epoch, _)| *epoch == net.epoch);
        for (v, answered) in others.iter().zip(answered) {
            if answered {
                live.unreachable_since.remove(&v.party_id);
                continue;
            }
            let since = *live.unreachable_since.entry(v.party_id).or_insert(now);
            if now - since < kick_after || live.voted.contains(&(net.epoch, v.party_id)) {
                continue;
            }
            match self.chain.vote_to_kick(v.staker).await {
                Ok(()) => warn!(
                    party = v.party_id,
                    unreachable_s = (now - since).as_secs(),
                    "voted to kick node {}: it has not answered for {} s",
                    v.party_id,
                    (now - since).as_secs()
                ),
                // voted already, or it is out already
                Err(ChainError::Refused(reason)) => {
                    info!(party = v.party_id, %reason, "no kick vote")
                }
                Err(e) => return Err(e),
            }
            live.voted.insert((net.epoch, v.party_id));
        }
        Ok(())
    }

    /// Checks the attestation of the current and next members (not this node) against the
    /// release register, every [`ATTEST_EVERY`] or at once when the members changed. A register
    /// that cannot be read keeps the last verdicts.
    async fn check_attestations(&mut self, net: &NetworkState) {
        let Some(checker) = self.attestation.checker.clone() else {
            return;
        };
        let me = self.node.me.get();
        let members: Vec<Validator> = net
            .current
            .iter()
            .chain(&net.next)
            .filter(|v| v.party_id != me)
            .cloned()
            .collect();
        // a finished round's verdicts
        if let Some(round) = self.attestation.round.take() {
            if !round.is_finished() {
                self.attestation.round = Some(round);
            } else if let Ok(verdicts) = round.await {
                self.apply_verdicts(verdicts);
            }
        }
        self.attestation
            .refused
            .retain(|key, _| members.iter().any(|v| v.identity_key == *key));
        let keys: BTreeSet<[u8; 32]> = members.iter().map(|v| v.identity_key).collect();
        let due = match &self.attestation.last {
            None => true,
            Some((at, checked)) => at.elapsed() >= ATTEST_EVERY || *checked != keys,
        };
        if !due || self.attestation.round.is_some() {
            return;
        }
        self.attestation.last = Some((Instant::now(), keys));
        // a round runs beside the epoch loop: a silent peer must not hold up the chain's events
        self.attestation.round = Some(tokio::spawn(async move {
            let policy = match checker.policy().await {
                Ok(p) => p,
                Err(e) => {
                    warn!("cannot read the release register to check the peers: {e}");
                    return Vec::new();
                }
            };
            let verifier = lit_attest::Verifier::new(policy);
            let verdicts =
                futures_util::future::join_all(members.iter().map(|v| checker.check(&verifier, v)))
                    .await;
            members.into_iter().zip(verdicts).collect()
        }));
    }

    /// Records a round's verdicts: refused members are left out of the peers from the next step.
    fn apply_verdicts(&mut self, verdicts: Vec<(Validator, Verdict)>) {
        for (v, verdict) in verdicts {
            match verdict {
                Verdict::Accepted => {
                    if self.attestation.refused.remove(&v.identity_key).is_some() {
                        info!(
                            party = v.party_id,
                            "node {}'s attestation is accepted again", v.party_id
                        );
                    }
                }
                Verdict::Refused(reason) => {
                    if self.attestation.refused.get(&v.identity_key) != Some(&reason) {
                        warn!(
                            party = v.party_id,
                            %reason,
                            "refused node {} as a peer: its attestation does not pass the \
                             release register's policy",
                            v.party_id
                        );
                    }
                    self.attestation.refused.insert(v.identity_key, reason);
                }
                // the liveness check handles silence; an earlier verdict stands
                Verdict::Unreachable(_) => {}
            }
        }
    }

    /// Votes to kick the current members whose attestation this node refused (once per epoch).
    async fn vote_out_the_refused(&mut self, net: &NetworkState) -> Result<(), ChainError> {
        self.attestation
            .voted
            .retain(|(epoch, _)| *epoch == net.epoch);
        for v in &net.current {
            let Some(reason) = self.attestation.refused.get(&v.identity_key) else {
                continue;
            };
            if !self.attestation.voted.insert((net.epoch, v.party_id)) {
                continue;
            }
            match self.chain.vote_to_kick(v.staker).await {
                Ok(()) => warn!(
                    party = v.party_id,
                    %reason,
                    "voted to kick node {}: its attestation is refused",
                    v.party_id
                ),
                Err(ChainError::Refused(r)) => {
                    info!(party = v.party_id, reason = %r, "no kick vote")
                }
                Err(e) => {
                    self.attestation.voted.remove(&(net.epoch, v.party_id));
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// After the grace period, forgets the previous epoch's keys and erases older shares.
    fn end_grace_when_due(&mut self) -> Result<(), HandoverError> {
        if self.grace_until.is_some_and(|t| Instant::now() >= t) {
            self.grace_until = None;
            self.node.end_grace();
            let Some(serving) = self.node.serving_epoch() else {
                // it left the network
                let held = NodeKeys::stored_epochs(&self.node.store)?;
                for epoch in &held {
                    NodeKeys::erase(&self.node.store, *epoch)?;
                }
                info!(
                    ?held,
                    "this node left the network: it stopped serving and erased its shares"
                );
                return Ok(());
            };
            for epoch in NodeKeys::stored_epochs(&self.node.store)? {
                if epoch < serving {
                    NodeKeys::erase(&self.node.store, epoch)?;
                    info!(epoch, "erased the shares of an ended epoch");
                }
            }
        }
        Ok(())
    }
}

/// This node's part of the handover to `net.epoch + 1`.
async fn handover(
    node: Arc<Node>,
    chain: Arc<dyn Staking>,
    net: NetworkState,
    options: EpochOptions,
) -> Result<(), HandoverError> {
    let next_epoch = net.epoch + 1;
    let started = Instant::now();
    let me = node.me;
    let mut identities = BTreeMap::new();
    for v in net.current.iter().chain(&net.next) {
        let bad = |what| HandoverError::BadValidator {
            party: v.party_id,
            what,
        };
        let id = PartyId::new(v.party_id).ok_or_else(|| bad("party id 0"))?;
        let key =
            k256::ecdsa::VerifyingKey::from_sec1_bytes(&v.dkg_key).map_err(|_| bad("dkg key"))?;
        identities.insert(id, key);
    }
    let ids = |set: &[Validator]| -> BTreeSet<PartyId> {
        set.iter()
            .filter_map(|v| PartyId::new(v.party_id))
            .collect()
    };
    let (dealers, receivers) = (ids(&net.current), ids(&net.next));
    let threshold = net.next_threshold as usize;
    let name = &node.network.name;
    let label = |key: &str| format!("{name}/{key}/handover-{}", net.locked_at);
    let cx = DkgContext {
        me,
        identity: &node.identity,
        net: &node.net,
        store: &node.store,
        fault: None,
        options: DriveOptions {
            round_timeout: options.round_timeout,
            ..DriveOptions::default()
        },
    };
    let (bls, ecdsa): (
        KeyGenOutput<blstrs::G1Projective>,
        KeyGenOutput<k256::ProjectivePoint>,
    ) = if net.epoch == 0 {
        let receivers_only: BTreeMap<_, _> = identities
            .into_iter()
            .filter(|(p, _)| receivers.contains(p))
            .collect();
        let bls = Session::dkg(
            &label("bls-root"),
            next_epoch,
            receivers_only.clone(),
            threshold,
        );
        let ecdsa = Session::dkg(
            &label("secp256k1-root"),
            next_epoch,
            receivers_only,
            threshold,
        );
        let (b, e) = tokio::join!(run_keygen(&cx, bls, None), run_keygen(&cx, ecdsa, None));
        (b?, e?)
    } else {
        let mine = node.keys().ok().filter(|k| k.epoch == net.epoch);
        let (old_bls, old_ecdsa, shares) = match &mine {
            Some(keys) if dealers.contains(&me) => {
                let (b, e) = keys.dkg_public();
                let (sb, se) = keys.dkg_shares();
                (b, e, Some((sb, se)))
            }
            _ => {
                let (b, e) = old_public_sets(&net).await?;
                (b, e, None)
            }
        };
        let (share_b, share_e) = match shares {
            Some((b, e)) => (Some(b), Some(e)),
            None => (None, None),
        };
        let bls = Session::reshare(
            &label("bls-root"),
            next_epoch,
            dealers.clone(),
            receivers.clone(),
            threshold,
            identities.clone(),
            old_bls,
        );
        let ecdsa = Session::reshare(
            &label("secp256k1-root"),
            next_epoch,
            dealers,
            receivers.clone(),
            threshold,
            identities,
            old_ecdsa,
        );
        let (b, e) = tokio::join!(
            run_keygen(&cx, bls, share_b),
            run_keygen(&cx, ecdsa, share_e)
        );
        (b?, e?)
    };
    if !receivers.contains(&me) {
        info!(
            epoch = next_epoch,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "dealt this node's shares to the next set"
        );
        return Ok(());
    }
    let keys = NodeKeys::from_dkg(next_epoch, &bls, &ecdsa)?;
    let (bls_root, ecdsa_root) = keys.root_keys();
    let hash = root_keys_hash(&bls_root, &ecdsa_root);
    if net.epoch >= 1 && hash != net.root_keys_hash {
        return Err(HandoverError::RootKeysChanged(next_epoch));
    }
    keys.save_pending(&node.store)?;
    chain.signal_ready(next_epoch, hash).await?;
    info!(
        epoch = next_epoch,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "holds its shares of the next epoch; signalled readiness"
    );
    Ok(())
}

/// The current epoch's public sharing, for a node that joins without shares: asked of every
/// current member, accepted when `threshold` of them give the same answer and its root keys
/// hash to the chain's.
async fn old_public_sets(
    net: &NetworkState,
) -> Result<
    (
        lit_dkg::PublicKeySet<blstrs::G1Projective>,
        lit_dkg::PublicKeySet<k256::ProjectivePoint>,
    ),
    HandoverError,
> {
    let err = |detail: String| HandoverError::OldKeys {
        epoch: net.epoch,
        detail,
    };
    // over TLS connections that end in current members, and taken only when T agree
    let members = lit_api::tls::TrustedKeys::new(net.current.iter().map(|v| v.identity_key));
    let http = crate::https::node_client(
        lit_api::tls::NodeKeyVerifier::trusting(members),
        Duration::from_secs(5),
    )
    .map_err(err)?;
    let holders: Vec<u32> = net.current.iter().map(|v| v.party_id).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut votes: BTreeMap<Vec<u8>, (usize, EpochKeys)> = BTreeMap::new();
        for v in &net.current {
            let url = format!("{}{}", v.url.trim_end_matches('/'), paths::EPOCH_KEYS);
            let Ok(resp) = http.get(&url).send().await else {
                continue;
            };
            let Ok(bytes) = resp.bytes().await else {
                continue;
            };
            let Ok(keys) = serde_json::from_slice::<EpochKeys>(&bytes) else {
                continue;
            };
            if keys.epoch != net.epoch || keys.holders != holders {
                continue;
            }
            let mut id = keys.bls_commitment.0.clone();
            id.extend_from_slice(&keys.ecdsa_commitment.0);
            votes.entry(id).or_insert((0, keys)).0 += 1;
        }
        if let Some((_, keys)) = votes
            .into_values()
            .find(|(n, _)| *n >= net.threshold as usize)
        {
            let bls = Commitment::<blstrs::G1Projective>::from_bytes(&keys.bls_commitment.0)
                .map_err(|e| err(format!("BLS commitment: {e}")))?;
            let ecdsa = Commitment::<k256::ProjectivePoint>::from_bytes(&keys.ecdsa_commitment.0)
                .map_err(|e| err(format!("secp256k1 commitment: {e}")))?;
            let (bls_root, ecdsa_root) = super::keys::root_keys_of(&bls, &ecdsa);
            let hash = root_keys_hash(&bls_root, &ecdsa_root);
            if hash != net.root_keys_hash {
                return Err(err("its root keys are not the network's".into()));
            }
            let parties: Vec<PartyId> = holders.iter().filter_map(|p| PartyId::new(*p)).collect();
            return Ok((
                super::keys::dkg_public_set(&bls, &parties),
                super::keys::dkg_public_set(&ecdsa, &parties),
            ));
        }
        if Instant::now() >= deadline {
            return Err(err(format!(
                "fewer than {} current members agreed on it",
                net.threshold
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `GET /v1/epoch/keys`: the node's current public sharing.
pub fn epoch_keys(keys: &NodeKeys) -> EpochKeys {
    EpochKeys {
        epoch: keys.epoch,
        holders: keys.bls_set.participants().map(|p| p.get()).collect(),
        bls_commitment: Bytes(keys.bls_set.commitment().to_bytes()),
        ecdsa_commitment: Bytes(keys.ecdsa.commitment().to_bytes()),
    }
}
