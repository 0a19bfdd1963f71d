//! The client HTTP API (axum): the router, the one error type every handler returns, and the
//! JSON extractor that turns every bad body into the documented error envelope.
//!
//! Handlers stay thin: they parse (through [`ApiJson`], which refuses unknown fields, wrong
//! types and oversized bodies with [`ErrorCode::MalformedRequest`] /
//! [`ErrorCode::BodyTooLarge`]), call into the node, and return `Result<Json<_>, ApiError>`.
//! An error's internal cause is logged once, when it becomes a response, and never sent.

mod encryption;
mod epoch;
mod execute;
mod handshake;
mod ledger;
mod peer;
mod pkp;
mod session;
mod webauthn;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lit_api::v1::{paths, Health};
use lit_api::{ErrorCode, ErrorEnvelope};

use crate::service::{Node, Status};

pub use crate::error::ApiError;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.into_client();
        let status = StatusCode::from_u16(error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ErrorEnvelope { error })).into_response()
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(
                ApiError::new(ErrorCode::BodyTooLarge, "request body is too large"),
            ),
            Err(rejection) => Err(ApiError::new(
                ErrorCode::MalformedRequest,
                rejection.body_text(),
            )),
        }
    }
}

/// The node's HTTP application: every endpoint, the body size limit and the envelope for
/// unknown paths.
pub fn router(node: Arc<Node>, max_body_bytes: usize) -> Router {
    let routes = Router::new()
        .route(paths::HANDSHAKE, post(handshake::handshake))
        .route(paths::PEER_ATTEST, post(handshake::peer_attest))
        .route(paths::ENCRYPTION_SIGN, post(encryption::sign))
        .route(paths::PEER_MESSAGE, post(peer::message))
        .route(paths::PKP_MINT, post(pkp::mint))
        .route(paths::PKP_INFO, post(pkp::info))
        .route(paths::PKP_PERMISSIONS, post(pkp::permissions))
        .route(paths::PKP_SIGN, post(pkp::sign))
        .route(paths::SESSION_SIGN, post(session::sign))
        .route(paths::EXECUTE, post(execute::execute))
        .route(lit_api::webauthn::CHALLENGE_PATH, get(webauthn::challenge))
        .route(paths::ACTION_UPLOAD, post(execute::upload))
        .route(paths::EPOCH_KEYS, get(epoch::keys))
        .route(paths::NETWORK_STATUS, get(epoch::network))
        .route(paths::LEDGER, get(ledger::status))
        .route(paths::LEDGER_ACCOUNT, post(ledger::account))
        .route(paths::LEDGER_OP, post(ledger::op))
        .route(paths::LEDGER_FAUCET, post(ledger::faucet))
        .with_state(node.clone());
    base(node.status().clone(), max_body_bytes, routes)
}

/// `/health`, the body limit and the fallback around `extra`.
fn base(status: Arc<Status>, max_body_bytes: usize, extra: Router) -> Router {
    Router::new()
        .route(paths::HEALTH, get(health))
        .with_state(status)
        .merge(extra)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

async fn health(State(status): State<Arc<Status>>) -> Json<Health> {
    Json(status.health())
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
}

/// Says in [`lit_api::v1::CHARGED_HEADER`] what the request cost the payer (nothing when free).
fn charged_header(resp: &mut axum::response::Response, charged: u128) {
    if charged > 0 {
        if let Ok(v) = axum::http::HeaderValue::from_str(&charged.to_string()) {
            resp.headers_mut().insert(lit_api::v1::CHARGED_HEADER, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lit_api::v1::HandshakeRequest;

    async fn echo(ApiJson(req): ApiJson<HandshakeRequest>) -> Json<HandshakeRequest> {
        Json(req)
    }

    async fn serve() -> (String, Arc<Status>) {
        let status = Arc::new(Status::default());
        let extra = Router::new().route("/v1/test/echo", post(echo));
        let app = base(status.clone(), 1024, extra);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, status)
    }

    async fn post_raw(url: &str, body: String) -> (u16, String) {
        let resp = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn get_health(base: &str) -> Health {
        let text = reqwest::get(format!("{base}{}", paths::HEALTH))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn code(body: &str) -> ErrorCode {
        serde_json::from_str::<ErrorEnvelope>(body)
            .unwrap_or_else(|e| panic!("not an error envelope ({e}): {body}"))
            .error
            .code
    }

    #[tokio::test]
    async fn bad_bodies_get_the_documented_envelope_and_the_server_keeps_serving() {
        let (base, status) = serve().await;
        let echo = format!("{base}/v1/test/echo");
        let good = format!(r#"{{"challenge":"{}"}}"#, "ab".repeat(32));
        assert_eq!(post_raw(&echo, good.clone()).await.0, 200);

        for (body, expected) in [
            ("{not json".to_string(), ErrorCode::MalformedRequest),
            (
                r#"{"challenge":"00"}"#.to_string(),
                ErrorCode::MalformedRequest,
            ),
            (
                format!(r#"{{"challenge":"{}","extra":1}}"#, "ab".repeat(32)),
                ErrorCode::MalformedRequest,
            ),
            ("{}".to_string(), ErrorCode::MalformedRequest),
            ("x".repeat(4096), ErrorCode::BodyTooLarge),
        ] {
            let (http, text) = post_raw(&echo, body.clone()).await;
            assert_eq!(code(&text), expected, "{body:.40}");
            assert_eq!(http, expected.http_status());
        }
        let (http, text) = post_raw(&format!("{base}/v1/nope"), good.clone()).await;
        assert_eq!((http, code(&text)), (404, ErrorCode::NotFound));

        // still serving, and health follows the status
        assert_eq!(post_raw(&echo, good).await.0, 200);
        let health = get_health(&base).await;
        assert_eq!(
            health,
            Health {
                ready: false,
                epoch: 0
            }
        );
        status.set_serving(3);
        let health = get_health(&base).await;
        assert_eq!(
            health,
            Health {
                ready: true,
                epoch: 3
            }
        );
    }
}
