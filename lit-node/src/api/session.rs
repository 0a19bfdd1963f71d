//! `POST /v1/session/sign`: the network's BLS share over a PKP session capability (see
//! [`crate::service::pkp::session_sign`]).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use lit_api::v1::{SessionSignRequest, SessionSignResponse};

use super::{ApiError, ApiJson};
use crate::service::{pkp as service, Node};

pub(super) async fn sign(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<SessionSignRequest>,
) -> Result<Json<SessionSignResponse>, ApiError> {
    service::session_sign(&node, req).await.map(Json)
}
