//! Lit Actions: `POST /v1/execute` and `POST /v1/actions/upload` (see
//! [`crate::service::actions`]).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use lit_api::v1::{ActionUploadRequest, ActionUploadResponse, ExecuteRequest, ExecuteResponse};

use super::{ApiError, ApiJson};
use crate::service::{actions as service, Node};

pub(super) async fn execute(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<ExecuteRequest>,
) -> Result<Json<ExecuteResponse>, ApiError> {
    service::execute(&node, req).await.map(Json)
}

pub(super) async fn upload(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<ActionUploadRequest>,
) -> Result<Json<ActionUploadResponse>, ApiError> {
    service::upload(&node, req).await.map(Json)
}
