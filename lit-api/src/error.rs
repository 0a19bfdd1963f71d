//! The one error envelope every endpoint returns on failure:
//!
//! ```json
//! {"error": {"code": "conditions_not_met", "message": "access control conditions are not met"}}
//! ```
//!
//! `code` is stable and machine-readable (clients match on it); `message` is for humans and may
//! change. Internal causes are logged by the node, never sent.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Stable machine-readable error codes. The string form (`as_str`) is the wire form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not valid JSON for this endpoint (syntax, types, unknown or missing fields).
    MalformedRequest,
    /// The body is larger than the node accepts.
    BodyTooLarge,
    /// The request names an epoch other than the node's current one.
    WrongEpoch,
    /// The auth signature is invalid, or signed by someone else than it claims.
    InvalidAuth,
    /// The auth message has expired or is not yet valid.
    AuthExpired,
    /// A nonce or challenge was already used.
    NonceReplayed,
    /// A condition has a type the node does not know.
    UnknownConditionType,
    /// The conditions are well-formed but invalid (too many, bad operator placement, bad ABI…).
    InvalidConditions,
    /// The conditions were evaluated and are not met: no share is returned.
    ConditionsNotMet,
    /// A chain the conditions need is not configured, or its RPC failed.
    ChainUnavailable,
    /// The node has no key for this epoch yet (DKG running) or is shutting down.
    NotReady,
    /// The path or resource does not exist.
    NotFound,
    /// The request came from a peer that is not part of the network, or is badly signed.
    UnauthorizedPeer,
    /// The caller is authenticated but not permitted to do this (e.g. sign with another's PKP).
    NotPermitted,
    /// Too many requests from this caller.
    RateLimited,
    /// Something failed inside the node; the cause is in its logs.
    Internal,
    /// The Lit Action threw an exception it did not catch (the message has it).
    ActionFailed,
    /// The Lit Action hit one of its limits (time, memory, response or log size, number of
    /// calls); the message names the limit.
    ActionLimit,
    /// The payer's balance (or the payer's delegation to the caller) cannot cover the request
    /// at the current price; the message says what it lacks.
    PaymentRequired,
    /// The current price of the request is above the maximum the caller signed.
    PriceTooHigh,
    /// A code this version does not know (a newer node's); parsed, never sent by this version.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The wire form, e.g. `"conditions_not_met"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::WrongEpoch => "wrong_epoch",
            ErrorCode::InvalidAuth => "invalid_auth",
            ErrorCode::AuthExpired => "auth_expired",
            ErrorCode::NonceReplayed => "nonce_replayed",
            ErrorCode::UnknownConditionType => "unknown_condition_type",
            ErrorCode::InvalidConditions => "invalid_conditions",
            ErrorCode::ConditionsNotMet => "conditions_not_met",
            ErrorCode::ChainUnavailable => "chain_unavailable",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::NotFound => "not_found",
            ErrorCode::UnauthorizedPeer => "unauthorized_peer",
            ErrorCode::NotPermitted => "not_permitted",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::ActionFailed => "action_failed",
            ErrorCode::ActionLimit => "action_limit",
            ErrorCode::PaymentRequired => "payment_required",
            ErrorCode::PriceTooHigh => "price_too_high",
            ErrorCode::Unknown => "unknown",
        }
    }

    /// The HTTP status a node answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::MalformedRequest
            | ErrorCode::UnknownConditionType
            | ErrorCode::InvalidConditions => 400,
            ErrorCode::ActionFailed | ErrorCode::ActionLimit => 422,
            ErrorCode::InvalidAuth | ErrorCode::AuthExpired => 401,
            ErrorCode::ConditionsNotMet | ErrorCode::UnauthorizedPeer | ErrorCode::NotPermitted => {
                403
            }
            ErrorCode::PaymentRequired | ErrorCode::PriceTooHigh => 402,
            ErrorCode::NotFound => 404,
            ErrorCode::WrongEpoch | ErrorCode::NonceReplayed => 409,
            ErrorCode::BodyTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal | ErrorCode::Unknown => 500,
            ErrorCode::ChainUnavailable => 502,
            ErrorCode::NotReady => 503,
        }
    }

    /// Whether a client may get a different answer from another node or later (so it should try
    /// elsewhere), as opposed to an answer every honest node gives alike.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::NotReady
                | ErrorCode::Internal
                | ErrorCode::ChainUnavailable
                | ErrorCode::RateLimited
                | ErrorCode::WrongEpoch
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as sent on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(deny_unknown_fields)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The body of every error response: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ApiError,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 21] = [
        ErrorCode::MalformedRequest,
        ErrorCode::BodyTooLarge,
        ErrorCode::WrongEpoch,
        ErrorCode::InvalidAuth,
        ErrorCode::AuthExpired,
        ErrorCode::NonceReplayed,
        ErrorCode::UnknownConditionType,
        ErrorCode::InvalidConditions,
        ErrorCode::ConditionsNotMet,
        ErrorCode::ChainUnavailable,
        ErrorCode::NotReady,
        ErrorCode::NotFound,
        ErrorCode::UnauthorizedPeer,
        ErrorCode::NotPermitted,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::ActionFailed,
        ErrorCode::ActionLimit,
        ErrorCode::PaymentRequired,
        ErrorCode::PriceTooHigh,
        ErrorCode::Unknown,
    ];

    #[test]
    fn wire_form_matches_as_str_and_statuses_are_errors() {
        for code in ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert!((400..600).contains(&code.http_status()), "{code}");
        }
    }

    #[test]
    fn envelope_snapshot() {
        let env = ErrorEnvelope {
            error: ApiError::new(ErrorCode::ConditionsNotMet, "not met"),
        };
        let json = serde_json::to_string(&env).unwrap();
        assert_eq!(
            json,
            r#"{"error":{"code":"conditions_not_met","message":"not met"}}"#
        );
        assert_eq!(serde_json::from_str::<ErrorEnvelope>(&json).unwrap(), env);
    }

    #[test]
    fn a_newer_code_parses_as_unknown_and_keeps_its_message() {
        let env: ErrorEnvelope =
            serde_json::from_str(r#"{"error":{"code":"quota_exhausted","message":"top up"}}"#)
                .unwrap();
        assert_eq!(env.error, ApiError::new(ErrorCode::Unknown, "top up"));
        assert!(!ErrorCode::Unknown.is_retryable());
        assert!(
            serde_json::from_str::<ErrorEnvelope>(r#"{"error":{"code":7,"message":"x"}}"#).is_err()
        );
    }
}
