//! `POST /v1/handshake`: identity, epoch, threshold, network keys and attestation evidence bound
//! to the node's identity key, the client's challenge and the epoch.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use lit_api::v1::{HandshakeRequest, HandshakeResponse, PeerAttestRequest, PeerAttestResponse};

use super::{ApiError, ApiJson};
use crate::service::Node;

pub(super) async fn handshake(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<HandshakeRequest>,
) -> Result<Json<HandshakeResponse>, ApiError> {
    node.handshake(&req).map(Json)
}

/// `POST /v1/peer/attest`: the node's keys, attested for a peer's challenge.
pub(super) async fn peer_attest(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<PeerAttestRequest>,
) -> Result<Json<PeerAttestResponse>, ApiError> {
    node.peer_attest(&req).map(Json)
}
