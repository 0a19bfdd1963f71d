//! `POST /v1/encryption/sign`: a decryption share for a caller whose conditions hold (see
//! [`crate::service::decrypt`]); the `Server-Timing` header reports the node's cost.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lit_api::v1::EncryptionSignRequest;

use super::{ApiError, ApiJson};
use crate::service::Node;

pub(super) async fn sign(
    State(node): State<Arc<Node>>,
    ApiJson(req): ApiJson<EncryptionSignRequest>,
) -> Result<Response, ApiError> {
    let (body, t) = node.decryption_share(&req).await?;
    let mut resp = Json(body).into_response();
    // node-side cost per request, in the standard Server-Timing header (milliseconds)
    if let Ok(v) = HeaderValue::from_str(&format!(
        "conditions;dur={:.3}, share;dur={:.3}, seal;dur={:.3}",
        ms(t.conditions),
        ms(t.share),
        ms(t.seal)
    )) {
        resp.headers_mut().insert("server-timing", v);
    }
    super::charged_header(&mut resp, t.charged);
    Ok(resp)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
