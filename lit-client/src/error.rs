//! The client's errors. Every error about nodes names them (party id and URL) and says why each
//! one failed.

use std::fmt;

use lit_api::ErrorCode;

/// Why a node did not give what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeFailureReason {
    /// The node answered with an error envelope.
    Api {
        /// The stable error code.
        code: ErrorCode,
        /// The node's message.
        message: String,
    },
    /// The node could not be reached (connection refused, DNS, TLS…).
    Unreachable(String),
    /// The node did not answer within the request timeout.
    Timeout,
    /// The node answered, but not with a well-formed response of the endpoint.
    BadResponse(String),
    /// The node's decryption share does not open, decode or verify against the key set.
    InvalidShare(String),
    /// The node's attestation evidence was refused by the policy or is not bound to its key and
    /// the client's challenge.
    Attestation(String),
    /// The node's identity key is not the one pinned for its URL in the network file.
    IdentityMismatch {
        /// The pinned key, hex.
        expected: String,
        /// The key the node presented, hex.
        got: String,
    },
    /// The TLS connection does not end in the attested node: its certificate's key is not the
    /// identity key the attestation binds (a proxy terminates TLS in front of the node).
    TlsNotAttested {
        /// The attested identity key, hex.
        expected: String,
        /// The key of the connection's certificate, hex (empty: no certificate at all).
        got: String,
    },
    /// The node's handshake is internally inconsistent (key set, party id, threshold).
    Inconsistent(String),
    /// The node is not a member of the network's current epoch (it left; its answer was for
    /// an older epoch).
    NotMember {
        /// The epoch whose members were listed.
        epoch: u64,
        /// The epoch the node answered for.
        serving: u64,
    },
}

impl NodeFailureReason {
    /// The API error code, when the node answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            NodeFailureReason::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for NodeFailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeFailureReason::Api { code, message } => write!(f, "refused ({code}): {message}"),
            NodeFailureReason::Unreachable(e) => write!(f, "unreachable: {e}"),
            NodeFailureReason::Timeout => f.write_str("timed out"),
            NodeFailureReason::BadResponse(e) => write!(f, "bad response: {e}"),
            NodeFailureReason::InvalidShare(e) => write!(f, "invalid share: {e}"),
            NodeFailureReason::Attestation(e) => write!(f, "attestation refused: {e}"),
            NodeFailureReason::IdentityMismatch { expected, got } => {
                write!(f, "identity key {got} is not the pinned key {expected}")
            }
            NodeFailureReason::TlsNotAttested { expected, got } => write!(
                f,
                "the TLS connection does not end in the attested node: its certificate's key \
                 is {got:?}, the attestation binds identity key {expected} (something between \
                 this client and the node terminates TLS)"
            ),
            NodeFailureReason::Inconsistent(e) => write!(f, "inconsistent handshake: {e}"),
            NodeFailureReason::NotMember { epoch, serving } if epoch == serving => {
                write!(f, "not a member of epoch {epoch}")
            }
            NodeFailureReason::NotMember { epoch, serving } => write!(
                f,
                "not a member of epoch {epoch} (it left the network; it answered for epoch \
                 {serving})"
            ),
        }
    }
}

/// One node that failed, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFailure {
    /// Its party id, when known (from the network file or its handshake).
    pub party_id: Option<u32>,
    /// Its URL.
    pub url: String,
    /// Why it failed.
    pub reason: NodeFailureReason,
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.party_id {
            Some(id) => write!(f, "node {id} ({}): {}", self.url, self.reason),
            None => write!(f, "node {}: {}", self.url, self.reason),
        }
    }
}

/// A list of failures, displayed one per line.
struct Failures<'a>(&'a [NodeFailure]);

impl fmt::Display for Failures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for failure in self.0 {
            write!(f, "\n  - {failure}")?;
        }
        Ok(())
    }
}

/// Party ids, comma-separated.
struct PartyList<'a>(&'a [u32]);

impl fmt::Display for PartyList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Errors of the Lit client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Fewer than the threshold of nodes answered the handshake correctly.
    #[error(
        "too few nodes answered the handshake correctly: need {needed}, got {healthy}; \
         failed nodes:{}",
        Failures(failures)
    )]
    TooFewNodes {
        /// The threshold `T`.
        needed: usize,
        /// Nodes that passed the handshake.
        healthy: usize,
        /// Every node that failed, and why.
        failures: Vec<NodeFailure>,
    },
    /// Fewer than the threshold of nodes returned a valid decryption share.
    #[error(
        "too few nodes answered with a valid share: need {needed}, got {got}; failed nodes:{}",
        Failures(failures)
    )]
    TooFewShares {
        /// The threshold `T`.
        needed: usize,
        /// Valid shares received.
        got: usize,
        /// Every node that failed, and why.
        failures: Vec<NodeFailure>,
    },
    /// So many nodes evaluated the access control conditions as not met that the threshold
    /// cannot be reached: the caller is not allowed to decrypt.
    #[error(
        "access control conditions are not met: {refused} of {nodes} nodes refused, \
         {needed} shares are needed; failed nodes:{}",
        Failures(failures)
    )]
    ConditionsNotMet {
        /// The threshold `T`.
        needed: usize,
        /// Nodes that answered `conditions_not_met`.
        refused: usize,
        /// Nodes that could have been asked.
        nodes: usize,
        /// Every node that failed, and why.
        failures: Vec<NodeFailure>,
    },
    /// The request failed at the nodes asked (each named with its reason).
    #[error("the request failed; nodes:{}", Failures(failures))]
    NodesFailed {
        /// Every node that failed, and why.
        failures: Vec<NodeFailure>,
    },
    /// The signature shares did not combine into a valid signature.
    #[error("combining the signature failed: {0}")]
    Signature(String),
    /// A Lit Action ran on some nodes of its group but failed on others. It is not run again
    /// (it may have had effects, e.g. `fetch`), and the answers of the nodes where it ran are
    /// not used: its results need the whole group.
    #[error(
        "the action ran on node(s) {} of the group but failed on the others; failed nodes:{}",
        PartyList(ran),
        Failures(failures)
    )]
    ActionIncomplete {
        /// The nodes that ran it and answered.
        ran: Vec<u32>,
        /// The nodes that failed, and why.
        failures: Vec<NodeFailure>,
    },
    /// A signature a Lit Action made (`Lit.Actions.signEcdsa`) cannot be combined: shares
    /// missing at some nodes, nodes disagreeing on the key or digest, a key not derived from
    /// the network's root key, or shares that do not combine into a signature by that key.
    #[error("the action's signature {sig_name:?}: {reason}")]
    ActionSignature {
        /// The action's `sigName`.
        sig_name: String,
        /// What is wrong, naming the nodes concerned.
        reason: String,
    },
    /// Healthy nodes disagree about the network (epoch, threshold, node count, members or
    /// keys), or the network a handshake made again reached is not the one connected to
    /// (other network keys or domain).
    #[error("nodes disagree about the {what}: {detail}")]
    Disagreement {
        /// What differs: `epoch`, `domain`, `threshold`, `node count`, `members`,
        /// `network keys`, `party ids`, or (`LitClient::network_status`) a field of the status.
        what: &'static str,
        /// Each value and the nodes that reported it.
        detail: String,
    },
    /// The network file could not be read or is invalid.
    #[error("network file {path}: {reason}")]
    NetworkFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The wallet file could not be read, written or parsed.
    #[error("wallet {path}: {reason}")]
    Wallet {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The access control conditions are invalid.
    #[error("invalid access control conditions: {0}")]
    Conditions(String),
    /// The encrypted data is malformed or does not belong to this network.
    #[error("invalid encrypted data: {0}")]
    EncryptedData(String),
    /// Encryption failed.
    #[error("encryption failed: {0}")]
    Encrypt(String),
    /// The combined key did not decrypt the data, or the plaintext does not match its hash.
    #[error("decryption failed: {0}")]
    Decrypt(String),
    /// A transaction or read on the EVM chain failed; `refused` is the contract's revert
    /// reason when it refused (`contracts/SPEC.md`).
    #[error("chain: {message}")]
    Chain {
        /// What happened.
        message: String,
        /// The contract's revert reason, if it refused.
        refused: Option<String>,
    },
    /// The client was given bad options or no nodes.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A local I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// The nodes this error blames, with their reasons (empty for errors not about nodes).
    pub fn failures(&self) -> &[NodeFailure] {
        match self {
            ClientError::TooFewNodes { failures, .. }
            | ClientError::TooFewShares { failures, .. }
            | ClientError::ConditionsNotMet { failures, .. }
            | ClientError::NodesFailed { failures }
            | ClientError::ActionIncomplete { failures, .. } => failures,
            _ => &[],
        }
    }

    /// Whether some node refused because the request named an epoch other than its current
    /// one: the network has moved on. Requests handshake again and retry once by themselves
    /// ([`crate::LitClient::epoch_retries`]); [`crate::LitClient::refresh`] does it by hand.
    pub fn epoch_changed(&self) -> bool {
        self.failures()
            .iter()
            .any(|f| f.reason.code() == Some(ErrorCode::WrongEpoch))
    }

    /// Whether a node of the client's view answered that it does not serve (`not_ready`): it
    /// may have left at an epoch change the client has not seen yet.
    pub fn member_not_serving(&self) -> bool {
        self.failures()
            .iter()
            .any(|f| f.reason.code() == Some(ErrorCode::NotReady))
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ClientError::Io {
            context: context.into(),
            source,
        }
    }
}
