//! The PKP endpoints: `POST /v1/pkp/mint`, `/v1/pkp/info`, `/v1/pkp/permissions` and
//! `/v1/pkp/sign` (see [`crate::service::pkp`]).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lit_api::v1::{PkpInfo, PkpInfoRequest, PkpMintRequest, PkpPermissionsRequest, PkpSignRequest};

use super::{ApiError, ApiJson};
use crate::service::{pkp as service, Node};

pub(super) async fn mint(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<PkpMintRequest>,
) -> Result<Json<PkpInfo>, ApiError> {
    service::mint(&node, req).await.map(Json)
}

pub(super) async fn info(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<PkpInfoRequest>,
) -> Result<Json<PkpInfo>, ApiError> {
    service::info(&node, req).await.map(Json)
}

pub(super) async fn permissions(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<PkpPermissionsRequest>,
) -> Result<Json<PkpInfo>, ApiError> {
    service::permissions(&node, req).await.map(Json)
}

pub(super) async fn sign(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<PkpSignRequest>,
) -> Result<Response, ApiError> {
    let (body, charged) = service::sign(&node, req).await?;
    let mut resp = Json(body).into_response();
    super::charged_header(&mut resp, charged);
    Ok(resp)
}
