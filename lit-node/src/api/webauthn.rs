//! `GET /v1/webauthn/challenge`: a fresh passkey challenge of this node (see
//! [`crate::auth::webauthn`]). Issuing one costs the node no state: it is tagged with a key of
//! this node process and remembered only once used.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use lit_api::webauthn::NodeChallenge;

use super::ApiError;
use crate::service::Node;

pub(super) async fn challenge(
    State(node): State<Arc<Node>>,
) -> Result<Json<NodeChallenge>, ApiError> {
    Ok(Json(node.auth.passkey_challenge()?))
}
