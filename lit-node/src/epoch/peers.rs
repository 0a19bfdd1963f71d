//! Node-to-node attestation: a node checks every member it works with (the current set, and the
//! next one during a handover) against the network's release register, as clients do.
//!
//! Each check asks the peer's `POST /v1/peer/attest` with a fresh challenge: the peer answers
//! with its keys and evidence bound to its identity key, the challenge and a digest of its keys
//! (so a proxy can neither replay another node's evidence nor swap the keys shares are sealed
//! to). The evidence must be accepted by the policy built from the register (active releases,
//! their TCB floors and flags; revoked ones refused), plus the operator's local additions
//! (`attestation_policy`), and the keys must be the ones the chain records for the member.
//!
//! A refused peer is left out of this node's peer set (its envelopes are refused, nothing is
//! sealed to it) and, if it is a current member, gets this node's vote to kick it. A peer that
//! does not answer is not refused here: the liveness check handles it.

use std::sync::Arc;
use std::time::Duration;

use lit_api::v1::{paths, PeerAttestRequest, PeerAttestResponse};
use lit_api::Bytes32;
use lit_attest::{Binding, Policy, Verifier};

use crate::chain::releases::ReleaseRegister;
use crate::chain::staking::Validator;
use crate::chain::ChainError;

/// How long a peer has to answer a check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What a check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The peer runs approved software with the keys the chain records.
    Accepted,
    /// The peer answered and is refused (the reason names the release or the mismatch).
    Refused(String),
    /// The peer did not answer (left to the liveness check).
    Unreachable(String),
}

/// Checks peers' attestation against the release register.
pub struct PeerChecker {
    register: Option<Arc<dyn ReleaseRegister>>,
    local: Option<Policy>,
    allow_simulated: bool,
}

impl std::fmt::Debug for PeerChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerChecker")
            .field("register", &self.register.is_some())
            .field("local", &self.local.is_some())
            .field("allow_simulated", &self.allow_simulated)
            .finish()
    }
}

impl PeerChecker {
    /// A checker reading `register` (`None`: the local policy alone approves software), adding
    /// the operator's `local` policy, accepting simulated evidence only on a development
    /// network (`allow_simulated`: this node attests with simulated evidence itself).
    pub fn new(
        register: Option<Arc<dyn ReleaseRegister>>,
        local: Option<Policy>,
        allow_simulated: bool,
    ) -> Result<Self, String> {
        Ok(Self {
            register,
            local,
            allow_simulated,
        })
    }

    /// The policy of a round of checks, with the register read now.
    pub async fn policy(&self) -> Result<Policy, ChainError> {
        let mut policy = Policy {
            allow_simulated: self.allow_simulated,
            ..Policy::default()
        };
        if let Some(register) = &self.register {
            policy = policy.with_releases(register.releases().await?);
        }
        if let Some(local) = &self.local {
            policy = policy.merged_with(local);
        }
        Ok(policy)
    }

    /// Checks `peer` with `verifier` (built from [`PeerChecker::policy`]).
    pub async fn check(&self, verifier: &Verifier, peer: &Validator) -> Verdict {
        let nonce = verifier.issue_nonce();
        let url = format!("{}{}", peer.url.trim_end_matches('/'), paths::PEER_ATTEST);
        // a TLS connection that ends in the key the chain records: a proxy in front of the
        // peer fails here, before any evidence is read
        let pinned = lit_api::tls::NodeKeyVerifier::pinned(peer.identity_key);
        let http = match crate::https::node_client(pinned, CHECK_TIMEOUT) {
            Ok(http) => http,
            Err(e) => return Verdict::Unreachable(e),
        };
        let sent = http
            .post(&url)
            .header("content-type", "application/json")
            .body(
                serde_json::to_vec(&PeerAttestRequest {
                    challenge: Bytes32(nonce.0),
                })
                .unwrap_or_default(),
            )
            .send()
            .await;
        let response = match sent {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => return Verdict::Unreachable(format!("answered HTTP {}", r.status())),
            Err(e) => {
                let text = crate::https::error_chain(&e);
                // something answers at the peer's address, but not with the peer's key
                if text.contains(lit_api::tls::NOT_THE_ATTESTED_KEY) {
                    return Verdict::Refused(format!(
                        "the TLS connection does not end in its identity key: {text}"
                    ));
                }
                return Verdict::Unreachable(text);
            }
        };
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Verdict::Unreachable(e.to_string()),
        };
        match serde_json::from_slice::<PeerAttestResponse>(&body) {
            Ok(answer) => match verify(verifier, peer, &answer, nonce) {
                Ok(()) => Verdict::Accepted,
                Err(reason) => Verdict::Refused(reason),
            },
            Err(e) => Verdict::Refused(format!("a malformed attestation answer: {e}")),
        }
    }
}

/// The checks of one answer: the keys the chain records, then the evidence under the policy,
/// bound to the identity key, the challenge and the keys.
fn verify(
    verifier: &Verifier,
    peer: &Validator,
    answer: &PeerAttestResponse,
    nonce: lit_attest::Nonce,
) -> Result<(), String> {
    if answer.identity_key.0 != peer.identity_key {
        return Err(format!(
            "its identity key {} is not the one the chain records ({})",
            hex::encode(answer.identity_key.0),
            hex::encode(peer.identity_key)
        ));
    }
    if answer.seal_key.0 != peer.seal_key || answer.dkg_key.0 != peer.dkg_key {
        return Err("its sealing or DKG key is not the one the chain records".into());
    }
    let evidence = answer.attestation.decode()?;
    let binding = Binding {
        context: answer.attested_digest().to_vec(),
        ..Binding::new(&peer.identity_key, nonce, 0)
    };
    verifier
        .verify(&evidence, &binding)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
