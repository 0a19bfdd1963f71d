//! Node-to-node transport over HTTP and the driver that runs sans-I/O protocol objects on it.
//!
//! Outgoing protocol bytes are wrapped by [`crate::net::peer::seal_envelope`] (signed by this node,
//! private payloads sealed to the recipient) and `POST`ed to the peer's
//! [`lit_api::v1::paths::PEER_MESSAGE`]; each delivery is retried with backoff until the peer
//! acknowledges it or the delivery deadline passes, so a peer that starts late or restarts
//! still receives everything. Incoming envelopes are checked by [`crate::net::peer::open_envelope`]
//! and routed by session to the protocol run that waits for them; envelopes for a session that
//! has not started here yet are held (bounded) until it does.
//!
//! [`drive`] runs a [`Protocol`]: it sends what the protocol emits, delivers what arrives, logs
//! and names every peer whose message the protocol refused, and tells the protocol when a round
//! made no progress for the round timeout, so it can exclude silent peers where it allows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lit_api::tls::{self, NodeKeyVerifier, TrustedKeys};
use lit_api::v1::{paths, PeerMessage};
use lit_api::Bytes32;
use lit_crypto::protocol::{Action, Protocol, ProtocolError};
use lit_crypto::PartyId;
use rand_core::OsRng;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::identity::NodeIdentity;
use crate::net::peer::{open_envelope, seal_envelope, EnvelopeError, PeerKeys};

/// Sessions not started on this node yet for which envelopes are held.
const MAX_PENDING_SESSIONS: usize = 1024;
/// Messages held per pending session.
const MAX_PENDING_MESSAGES: usize = 1024;
/// How long a finished session is remembered (its late envelopes are dropped quietly) and how
/// long envelopes for a session that never starts here are held.
const SESSION_MEMORY: Duration = Duration::from_secs(600);

/// A member of the network as the transport knows it.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Base URL.
    pub url: String,
    /// Its public keys.
    pub keys: PeerKeys,
}

enum Slot {
    Open(mpsc::UnboundedSender<(PartyId, Vec<u8>)>),
    Pending(Instant, Vec<(PartyId, Vec<u8>)>),
    Closed(Instant),
}

/// The sessions this node knows of.
#[derive(Default)]
struct Sessions {
    slots: HashMap<Bytes32, Slot>,
    pending: usize,
    last_purge: Option<Instant>,
}

impl Sessions {
    /// Forgets finished sessions and held envelopes older than [`SESSION_MEMORY`] (at most
    /// once a minute).
    fn purge(&mut self, now: Instant) {
        if self
            .last_purge
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(60))
        {
            return;
        }
        self.last_purge = Some(now);
        self.slots.retain(|_, slot| match slot {
            Slot::Open(_) => true,
            Slot::Pending(t, _) | Slot::Closed(t) => now.duration_since(*t) < SESSION_MEMORY,
        });
        self.pending = self
            .slots
            .values()
            .filter(|s| matches!(s, Slot::Pending(..)))
            .count();
    }
}

/// Timing of deliveries.
#[derive(Clone, Copy, Debug)]
pub struct TransportOptions {
    /// How long a message is retried before it is given up.
    pub delivery_deadline: Duration,
    /// Per-attempt HTTP timeout.
    pub request_timeout: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            delivery_deadline: Duration::from_secs(120),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The TLS connection an envelope arrived over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerConnection {
    /// Served over TLS: the client certificate's key, if it presented one.
    Tls(Option<[u8; 32]>),
    /// Served without TLS (in-process tests, plaintext benchmarks): nothing to check.
    Unchecked,
}

fn member_keys(peers: &BTreeMap<PartyId, Peer>) -> Vec<[u8; 32]> {
    peers.values().map(|p| p.keys.identity.to_bytes()).collect()
}

/// The members a node talks to, with their keys by party id.
struct Members {
    peers: BTreeMap<PartyId, Peer>,
    keys: BTreeMap<PartyId, PeerKeys>,
}

impl Members {
    fn new(peers: BTreeMap<PartyId, Peer>) -> Self {
        let keys = peers
            .iter()
            .map(|(p, peer)| (*p, peer.keys.clone()))
            .collect();
        Self { peers, keys }
    }
}

/// This node's side of the peer network.
pub struct PeerNet {
    me: PartyId,
    identity: Arc<NodeIdentity>,
    /// The members this node talks to (the current set, and the next one during a handover);
    /// replaced at each epoch ([`PeerNet::set_peers`]).
    peers: std::sync::RwLock<Arc<Members>>,
    /// The members' identity keys: the only TLS server keys `http` accepts.
    trusted: TrustedKeys,
    /// Mutual TLS: presents this node's certificate and accepts only members' certificates.
    http: reqwest::Client,
    sessions: Mutex<Sessions>,
    options: TransportOptions,
}

impl std::fmt::Debug for PeerNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerNet")
            .field("me", &self.me)
            .field("peers", &self.members().peers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a protocol run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriveError {
    /// The protocol aborted (its error names the culprits).
    #[error("protocol aborted: {0}")]
    Protocol(#[from] ProtocolError),
    /// No progress for too long; the peers that never sent are named.
    #[error("protocol timed out waiting for {silent:?}")]
    TimedOut {
        /// Peers from which nothing was accepted.
        silent: Vec<u32>,
    },
    /// The session was already run on this node.
    #[error("session was already run on this node")]
    SessionClosed,
}

impl PeerNet {
    /// A transport for node `me` among `peers` (which may include `me`; it is skipped). Its
    /// HTTPS client presents this node's certificate (mutual TLS, see [`lit_api::tls`]) and
    /// accepts only servers whose key is a member's identity key.
    pub fn new(
        me: PartyId,
        identity: Arc<NodeIdentity>,
        peers: BTreeMap<PartyId, Peer>,
        options: TransportOptions,
    ) -> Result<Arc<Self>, String> {
        let trusted = TrustedKeys::new(member_keys(&peers));
        let certificate = identity.tls_certificate()?;
        let tls = tls::client_config(
            NodeKeyVerifier::trusting(trusted.clone()),
            Some(&certificate),
        )
        .map_err(|e| format!("TLS: {e}"))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(options.request_timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Self {
            me,
            identity,
            peers: std::sync::RwLock::new(Arc::new(Members::new(peers))),
            trusted,
            http,
            sessions: Mutex::new(Sessions::default()),
            options,
        }))
    }

    /// This node's party id.
    pub fn me(&self) -> PartyId {
        self.me
    }

    fn members(&self) -> Arc<Members> {
        self.peers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the members this node talks to (at an epoch change: the current set and the
    /// next one). Envelopes from others are refused from now on.
    pub fn set_peers(&self, peers: BTreeMap<PartyId, Peer>) {
        self.trusted.replace(member_keys(&peers));
        *self.peers.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Members::new(peers));
    }

    /// The party ids this node talks to.
    pub fn peer_ids(&self) -> BTreeSet<PartyId> {
        self.members().peers.keys().copied().collect()
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        // a poisoned lock only means another request panicked; the map itself is consistent
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Accepts an envelope from the network: checks it and hands it to its session.
    /// `connection` is the TLS connection it came over ([`PeerConnection::Unchecked`] only where
    /// the node serves without TLS, in in-process tests and plaintext benchmarks): the envelope's
    /// sender must be the peer whose certificate the connection presented, so that a peer's
    /// signed envelope replayed by anyone else is refused at the door.
    pub fn deliver(
        &self,
        msg: &PeerMessage,
        connection: PeerConnection,
    ) -> Result<(), EnvelopeError> {
        let members = self.members();
        let (from, bytes) =
            open_envelope(&self.identity, self.me, &msg.session, &members.keys, msg)?;
        if let PeerConnection::Tls(client_key) = connection {
            let sender_key = members.keys.get(&from).map(|k| k.identity.to_bytes());
            if client_key.is_none() || client_key != sender_key {
                return Err(EnvelopeError::NotOverPeerTls(from.get()));
            }
        }
        let mut sessions = self.sessions();
        let now = Instant::now();
        sessions.purge(now);
        let pending = sessions.pending;
        match sessions.slots.get_mut(&msg.session) {
            Some(Slot::Open(tx)) => {
                // the receiver is gone only when the run finished: the message is moot
                let _ = tx.send((from, bytes));
            }
            Some(Slot::Pending(_, held)) => {
                if held.len() < MAX_PENDING_MESSAGES {
                    held.push((from, bytes));
                }
            }
            Some(Slot::Closed(_)) => {}
            None => {
                if pending < MAX_PENDING_SESSIONS {
                    sessions
                        .slots
                        .insert(msg.session, Slot::Pending(now, vec![(from, bytes)]));
                    sessions.pending += 1;
                } else {
                    warn!(from = %from, "dropping envelope for an unknown session: too many pending");
                }
            }
        }
        Ok(())
    }

    /// Registers a session and returns what arrived for it so far and what will arrive.
    pub(crate) fn open(
        &self,
        session: Bytes32,
    ) -> Result<mpsc::UnboundedReceiver<(PartyId, Vec<u8>)>, DriveError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut sessions = self.sessions();
        let now = Instant::now();
        sessions.purge(now);
        match sessions.slots.remove(&session) {
            Some(Slot::Closed(_)) | Some(Slot::Open(_)) => {
                sessions.slots.insert(session, Slot::Closed(now));
                return Err(DriveError::SessionClosed);
            }
            Some(Slot::Pending(_, held)) => {
                sessions.pending = sessions.pending.saturating_sub(1);
                for m in held {
                    let _ = tx.send(m);
                }
            }
            None => {}
        }
        sessions.slots.insert(session, Slot::Open(tx));
        Ok(rx)
    }

    fn close(&self, session: Bytes32) {
        self.sessions()
            .slots
            .insert(session, Slot::Closed(Instant::now()));
    }

    /// Opens `session` for receiving outside a [`Protocol`] run (request/response exchanges
    /// between nodes); the session is closed when the inbox is dropped.
    pub(crate) fn inbox(self: &Arc<Self>, session: Bytes32) -> Result<Inbox, DriveError> {
        let rx = self.open(session)?;
        Ok(Inbox {
            net: self.clone(),
            session,
            rx,
        })
    }

    /// Sends protocol bytes: to one peer (sealed) or to every other participant (signed, in the
    /// clear). Deliveries run in the background with retries.
    pub fn send(
        self: &Arc<Self>,
        session: Bytes32,
        to: Option<PartyId>,
        participants: &BTreeSet<PartyId>,
        bytes: &[u8],
    ) {
        match to {
            Some(to) => {
                let members = self.members();
                let Some(peer) = members.peers.get(&to) else {
                    warn!(to = %to, "protocol addressed a party that is not a member");
                    return;
                };
                match seal_envelope(
                    &self.identity,
                    self.me,
                    session,
                    Some((to, &peer.keys)),
                    bytes,
                    &mut OsRng,
                ) {
                    Ok(env) => self.spawn_delivery(to, env),
                    Err(e) => warn!(to = %to, "cannot seal to peer: {e}"),
                }
            }
            None => {
                let env = match seal_envelope(
                    &self.identity,
                    self.me,
                    session,
                    None,
                    bytes,
                    &mut OsRng,
                ) {
                    Ok(env) => env,
                    Err(e) => {
                        warn!("cannot sign broadcast: {e}");
                        return;
                    }
                };
                for p in participants.iter().filter(|p| **p != self.me) {
                    self.spawn_delivery(*p, env.clone());
                }
            }
        }
    }

    fn spawn_delivery(self: &Arc<Self>, to: PartyId, env: PeerMessage) {
        let members = self.members();
        let Some(peer) = members.peers.get(&to) else {
            return;
        };
        let url = format!("{}{}", peer.url.trim_end_matches('/'), paths::PEER_MESSAGE);
        let http = self.http.clone();
        let deadline = Instant::now() + self.options.delivery_deadline;
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                match http.post(&url).json_body(&env).send().await {
                    Ok(resp) if resp.status().is_success() => return,
                    Ok(resp) if resp.status().is_client_error() => {
                        let status = resp.status();
                        let text = resp.text().await.unwrap_or_default();
                        warn!(to = %to, %status, "peer refused our envelope: {text}");
                        return;
                    }
                    Ok(resp) => {
                        debug!(to = %to, status = %resp.status(), "peer not ready, retrying")
                    }
                    Err(e) => debug!(to = %to, "peer unreachable ({e}), retrying"),
                }
                if Instant::now() + backoff > deadline {
                    warn!(to = %to, attempts, "giving up delivering to peer {to} at {url}");
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
    }
}

/// The messages of one open session (see [`PeerNet::inbox`]).
pub(crate) struct Inbox {
    net: Arc<PeerNet>,
    session: Bytes32,
    rx: mpsc::UnboundedReceiver<(PartyId, Vec<u8>)>,
}

impl Inbox {
    /// The next message and its (authenticated) sender.
    pub(crate) async fn recv(&mut self) -> Option<(PartyId, Vec<u8>)> {
        self.rx.recv().await
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.net.close(self.session);
    }
}

/// `reqwest` is built without its `json` feature: a JSON body by hand.
trait JsonBody {
    fn json_body<T: serde::Serialize>(self, value: &T) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body<T: serde::Serialize>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    }
}

/// How [`drive`] paces a run.
#[derive(Clone, Copy, Debug)]
pub struct DriveOptions {
    /// A round that accepts no message for this long is told [`Protocol::timeout`].
    pub round_timeout: Duration,
    /// After this many timeouts without progress the run is abandoned.
    pub max_idle_timeouts: u32,
}

impl Default for DriveOptions {
    fn default() -> Self {
        Self {
            round_timeout: Duration::from_secs(15),
            max_idle_timeouts: 3,
        }
    }
}

/// Runs `proto` in `session` among `participants` until it outputs. `checkpoint` is called
/// after every accepted input (to persist a snapshot for crash-restart).
pub async fn drive<P: Protocol>(
    net: &Arc<PeerNet>,
    name: &str,
    session: Bytes32,
    participants: &BTreeSet<PartyId>,
    proto: &mut P,
    options: DriveOptions,
    mut checkpoint: impl FnMut(&P),
) -> Result<P::Output, DriveError> {
    let mut rx = net.open(session)?;
    let result = async {
        let mut heard: BTreeSet<PartyId> = BTreeSet::new();
        let mut idle = 0u32;
        // the round clock restarts only when the protocol advances (sends), not on every
        // accepted message: early messages for a later round must not delay this round's
        // deadline, or the nodes' deadlines drift apart
        let mut deadline = tokio::time::Instant::now() + options.round_timeout;
        loop {
            match proto.poke()? {
                Action::Send(out) => {
                    for o in out {
                        net.send(session, o.to, participants, &o.bytes);
                    }
                    deadline = tokio::time::Instant::now() + options.round_timeout;
                    continue;
                }
                Action::Done(output) => return Ok(output),
                Action::Wait => {}
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((from, bytes))) => match proto.message(from, &bytes) {
                    Ok(()) => {
                        heard.insert(from);
                        idle = 0;
                        checkpoint(proto);
                    }
                    Err(e) => {
                        warn!(protocol = name, culprits = ?e.culprits().iter().map(|p| p.get()).collect::<Vec<_>>(),
                            "refused a message from peer {from}: {e}");
                    }
                },
                Ok(None) => return Err(DriveError::SessionClosed),
                Err(_) => {
                    idle += 1;
                    let silent: Vec<u32> = participants
                        .iter()
                        .filter(|p| **p != net.me && !heard.contains(p))
                        .map(|p| p.get())
                        .collect();
                    if idle > options.max_idle_timeouts {
                        return Err(DriveError::TimedOut { silent });
                    }
                    info!(protocol = name, ?silent, "round timed out; continuing without silent peers");
                    proto.timeout()?;
                    checkpoint(proto);
                    deadline = tokio::time::Instant::now() + options.round_timeout;
                }
            }
        }
    }
    .await;
    net.close(session);
    result
}
