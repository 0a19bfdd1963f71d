//! Lit Actions: `POST /v1/execute` and `POST /v1/actions/upload` (see
//! [`crate::service::actions`]).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lit_api::v1::{ActionUploadRequest, ActionUploadResponse, ExecuteRequest, ExecuteResponse};

use super::{ApiError, ApiJson};
use crate::service::{actions as service, Node};

pub(super) async fn execute(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<ExecuteRequest>,
) -> Result<Response, ApiError> {
    let (body, charged) = service::execute(&node, req).await?;
    let mut resp = Json::<ExecuteResponse>(body).into_response();
    super::charged_header(&mut resp, charged);
    Ok(resp)
}

pub(super) async fn upload(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<ActionUploadRequest>,
) -> Result<Json<ActionUploadResponse>, ApiError> {
    service::upload(&node, req).await.map(Json)
}
