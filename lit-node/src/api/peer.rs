//! `POST /v1/peer/message`: envelopes from other nodes, handed to the peer transport (which
//! checks the sender's signature and the session before any protocol sees the bytes).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use lit_api::v1::PeerMessage;
use lit_api::ErrorCode;
use tracing::warn;

use super::{ApiError, ApiJson};
use crate::service::Node;

pub(super) async fn message(
    State(node): State<Arc<Node>>,
    ApiJson(msg): ApiJson<PeerMessage>,
) -> Result<Json<serde_json::Value>, ApiError> {
    node.net.deliver(&msg).map_err(|e| {
        warn!(culprit = ?e.culprit(), "refused a peer envelope: {e}");
        ApiError::new(ErrorCode::UnauthorizedPeer, e.to_string())
    })?;
    Ok(Json(serde_json::json!({})))
}
