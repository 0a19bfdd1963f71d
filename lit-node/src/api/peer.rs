//! `POST /v1/peer/message`: envelopes from other nodes, handed to the peer transport (which
//! checks the sender's signature, the session, and that the envelope came over its sender's
//! mutual-TLS connection before any protocol sees the bytes).

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use lit_api::v1::PeerMessage;
use lit_api::ErrorCode;
use tracing::warn;

use super::{ApiError, ApiJson};
use crate::https::TlsConnection;
use crate::net::PeerConnection;
use crate::service::Node;

pub(super) async fn message(
    State(node): State<Arc<Node>>,
    tls: Option<Extension<TlsConnection>>,
    ApiJson(msg): ApiJson<PeerMessage>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let connection = match tls {
        Some(Extension(c)) => PeerConnection::Tls(c.client_key),
        None => PeerConnection::Unchecked,
    };
    node.net.deliver(&msg, connection).map_err(|e| {
        warn!(culprit = ?e.culprit(), "refused a peer envelope: {e}");
        ApiError::new(ErrorCode::UnauthorizedPeer, e.to_string())
    })?;
    Ok(Json(serde_json::json!({})))
}
