//! The ledger endpoints: `GET /v1/ledger`, `POST /v1/ledger/account`, `/v1/ledger/op` and
//! `/v1/ledger/faucet` (see [`crate::service::ledger`]).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use lit_api::ledger::{
    FaucetRequest, FaucetResponse, LedgerAccount, LedgerAccountRequest, LedgerOpRequest,
    LedgerStatus,
};

use super::{ApiError, ApiJson};
use crate::service::{ledger as service, Node};

pub(super) async fn status(State(node): State<Arc<Node>>) -> Result<Json<LedgerStatus>, ApiError> {
    service::status(&node).await.map(Json)
}

pub(super) async fn account(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<LedgerAccountRequest>,
) -> Result<Json<LedgerAccount>, ApiError> {
    service::account(&node, req).await.map(Json)
}

pub(super) async fn op(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<LedgerOpRequest>,
) -> Result<Json<LedgerAccount>, ApiError> {
    service::apply(&node, req).await.map(Json)
}

pub(super) async fn faucet(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<FaucetRequest>,
) -> Result<Json<FaucetResponse>, ApiError> {
    service::faucet(&node, req).await.map(Json)
}
