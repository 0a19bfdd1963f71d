//! Presignatures for PKP signing.
//!
//! A presignature is made and used by exactly one signing group of `T` nodes (see
//! `lit_crypto::ecdsa::Presign` for why), from two Beaver triples the same group generated. A
//! node uses each presignature for one share only: it is recorded as used durably before the
//! share is computed (`crate::pkp::StoreUsed`), and a node that crashes and restarts never uses
//! it again.
//!
//! [`for_request`] generates a fresh presignature with the group named in the request: the
//! group's nodes all received the same request, so they derive the same session label from it
//! and run two triple generations and one presigning over the peer transport. A group member
//! that does not take part within the round timeout is named, and the request fails at every
//! node of the group (the client then picks another group).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lit_api::v1::{PkpSignRequest, PresignatureSource};
use lit_api::{Bytes32, ErrorCode};
use lit_crypto::ecdsa::{Presign, Presignature, TripleGeneration};
use lit_crypto::PartyId;
use sha2::{Digest, Sha256};
use tracing::warn;

use crate::api::ApiError;
use crate::keys::NodeKeys;
use crate::node::Node;
use crate::transport::{drive, DriveError, DriveOptions};

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
        other => {
            warn!("{what}: {other}");
            ApiError::new(ErrorCode::Internal, format!("{what} failed: {other}"))
        }
    }
}

/// The session label of a request's fresh presignature: every member of the group derives it
/// from the request alone.
fn request_label(
    epoch: u64,
    req: &PkpSignRequest,
    digest: &[u8; 32],
    group: &[PartyId],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"lit-node/pkp-sign/fresh-presignature/v1");
    h.update(epoch.to_be_bytes());
    h.update(req.request_id.0);
    h.update(req.token_id.0);
    h.update(digest);
    for p in group {
        h.update(p.get().to_be_bytes());
    }
    h.finalize().into()
}

/// Runs two triple generations and a presigning with `group`, labelled `label`.
pub(crate) async fn generate(
    node: &Arc<Node>,
    keys: &NodeKeys,
    group: &[PartyId],
    label: &[u8],
    options: DriveOptions,
) -> Result<Presignature, ApiError> {
    let t = keys.ecdsa.threshold();
    let members: BTreeSet<PartyId> = group.iter().copied().collect();
    let bad = |e: lit_crypto::ecdsa::EcdsaError| ApiError::new(ErrorCode::Internal, e.to_string());
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

/// A presignature for this request's signing group.
pub(crate) async fn for_request(
    node: &Arc<Node>,
    keys: &NodeKeys,
    group: &[PartyId],
    req: &PkpSignRequest,
    digest: &[u8; 32],
) -> Result<(Presignature, PresignatureSource), ApiError> {
    let label = request_label(keys.epoch, req, digest, group);
    let p = generate(node, keys, group, &label, online_options()).await?;
    Ok((p, PresignatureSource::Fresh))
}
