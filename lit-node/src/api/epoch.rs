//! `GET /v1/epoch/keys` (the public sharing of the node's epoch, for nodes joining at the next
//! one) and `GET /v1/network` (the network as the node reads it from the chain).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use lit_api::v1::{EpochKeys, NetworkStatus};

use group::{Group, GroupEncoding};
use lit_api::Bytes;
use lit_crypto::shamir::Commitment;

use super::ApiError;
use crate::config::DevFault;
use crate::service::Node;

pub(super) async fn keys(State(node): State<Arc<Node>>) -> Result<Json<EpochKeys>, ApiError> {
    let keys = node.keys()?;
    let mut answer = crate::epoch::handover::epoch_keys(&keys);
    if node.fault == Some(DevFault::WrongEpochKeys) {
        answer.bls_commitment = Bytes(another_sharing(keys.bls_set.commitment()).to_bytes());
        answer.ecdsa_commitment = Bytes(another_sharing(keys.ecdsa.commitment()).to_bytes());
    }
    Ok(Json(answer))
}

/// The same public key (constant term) with another highest coefficient: a sharing the root
/// keys' hash on the chain cannot tell from the real one.
fn another_sharing<G: Group + GroupEncoding>(c: &Commitment<G>) -> Commitment<G> {
    let mut points = c.points().to_vec();
    if let Some(last) = points.last_mut() {
        *last += G::generator();
    }
    Commitment::from_points(points).unwrap_or_else(|_| c.clone())
}

pub(super) async fn network(
    State(node): State<Arc<Node>>,
) -> Result<Json<NetworkStatus>, ApiError> {
    node.network_status().await.map(Json)
}
