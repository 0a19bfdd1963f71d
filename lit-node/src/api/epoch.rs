//! `GET /v1/epoch/keys` (the public sharing of the node's epoch, for nodes joining at the next
//! one) and `GET /v1/network` (the network as the node reads it from the chain).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use lit_api::v1::{EpochKeys, NetworkStatus};

use super::ApiError;
use crate::service::Node;

pub(super) async fn keys(State(node): State<Arc<Node>>) -> Result<Json<EpochKeys>, ApiError> {
    let keys = node.keys()?;
    Ok(Json(crate::epoch::handover::epoch_keys(&keys)))
}

pub(super) async fn network(
    State(node): State<Arc<Node>>,
) -> Result<Json<NetworkStatus>, ApiError> {
    node.network_status().await.map(Json)
}
