//! The one error every request path of the node returns.
//!
//! An [`ApiError`] has two parts: what the client is told (a stable [`ErrorCode`] and a message
//! safe to send) and, optionally, the internal cause (an RPC URL, a store path, an engine's
//! text) which is logged once, when the error becomes a response, and never sent. Domain errors
//! (auth, chain, conditions, actions, the registry, the protocol driver) convert into it through
//! `From` impls next to their definitions, so services propagate them with `?`.

use std::fmt;

use lit_api::ErrorCode;
use tracing::warn;

/// An API error: the client part (code + safe message) and the internal cause, never sent.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiError {
    client: lit_api::ApiError,
    internal: Option<String>,
}

impl ApiError {
    /// An error with this code and a message that is safe to send.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            client: lit_api::ApiError::new(code, message),
            internal: None,
        }
    }

    /// An error whose `cause` stays in the node's log: the client gets `code` and `message`.
    pub fn internal(code: ErrorCode, message: impl Into<String>, cause: impl fmt::Display) -> Self {
        Self {
            client: lit_api::ApiError::new(code, message),
            internal: Some(cause.to_string()),
        }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.client.code
    }

    /// The message the client gets.
    pub fn message(&self) -> &str {
        &self.client.message
    }

    /// The internal cause, if any (logged, never sent).
    pub fn cause(&self) -> Option<&str> {
        self.internal.as_deref()
    }

    /// What the client is sent; logs the internal cause, once.
    pub fn into_client(self) -> lit_api::ApiError {
        if let Some(cause) = &self.internal {
            warn!(code = %self.client.code, "{}: {cause}", self.client.message);
        }
        self.client
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.client.code, self.client.message)?;
        if let Some(cause) = &self.internal {
            write!(f, " (internal: {cause})")?;
        }
        Ok(())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.client.code, self.client.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_kept_apart_from_what_the_client_gets() {
        let e = ApiError::internal(
            ErrorCode::ChainUnavailable,
            "the chain is unavailable",
            "error sending request for url (http://key@rpc.example/v3/SECRET)",
        );
        assert_eq!(e.code(), ErrorCode::ChainUnavailable);
        assert!(e.cause().is_some_and(|c| c.contains("SECRET")));
        assert!(!e.to_string().contains("SECRET"));
        let sent = serde_json::to_string(&e.into_client()).unwrap();
        assert!(!sent.contains("SECRET"), "{sent}");
    }
}
