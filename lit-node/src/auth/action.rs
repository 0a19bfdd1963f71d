//! Lit Actions as an auth method: a PKP that permits an action (by its CID) lets the action
//! decide. The node runs it in an embedded QuickJS engine with no network and no host
//! capabilities (5 s, default memory); the action authorises by answering `true` or
//! `{"authorized": true}` through `Lit.Actions.setResponse`.

use std::sync::Arc;
use std::time::Duration;

use lit_api::ErrorCode;
use tracing::warn;

use super::Authenticator;
use crate::error::ApiError;

/// How long an auth action may run.
pub const AUTH_ACTION_TIME: Duration = Duration::from_secs(5);

impl Authenticator {
    fn action_engine(&self) -> Result<Arc<lit_actions::QuickJsEngine>, ApiError> {
        if let Some(e) = self.action_engine.get() {
            return Ok(e.clone());
        }
        let engine = lit_actions::QuickJsEngine::new(lit_actions::EngineConfig::new(
            lit_actions::Limits::default().with_time(AUTH_ACTION_TIME),
        ))
        .map_err(|e| {
            ApiError::internal(ErrorCode::Internal, "the action engine is unavailable", e)
        })?;
        Ok(self.action_engine.get_or_init(|| Arc::new(engine)).clone())
    }

    /// Runs a permitted auth action; `not_permitted` unless it authorises the caller.
    pub async fn action_authorises(&self, action: &lit_actions::Action) -> Result<(), ApiError> {
        let cid = action.id().to_string();
        let engine = self.action_engine()?;
        let outcome = lit_actions::Engine::run(
            engine.as_ref(),
            action,
            Arc::new(lit_actions::host::NoCapabilities),
        )
        .await
        .map_err(|e| {
            warn!(%cid, "auth action failed: {e}");
            ApiError::new(
                ErrorCode::InvalidAuth,
                format!("Lit Action {cid} failed: {e}"),
            )
        })?;
        if authorised(outcome.response.as_deref()) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::NotPermitted,
                format!("Lit Action {cid} did not authorise the caller"),
            ))
        }
    }
}

/// Whether an auth action's response authorises: `true`, or an object with `authorized: true`.
fn authorised(response: Option<&str>) -> bool {
    match response.map(str::trim) {
        Some("true") => true,
        Some(other) => serde_json::from_str::<serde_json::Value>(other)
            .map(|v| v == serde_json::json!(true) || v["authorized"] == serde_json::json!(true))
            .unwrap_or(false),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::authorised;

    #[test]
    fn only_true_or_authorized_true_authorises() {
        for yes in ["true", " true\n", r#"{"authorized":true}"#, "true "] {
            assert!(authorised(Some(yes)), "{yes}");
        }
        for no in [
            "false",
            r#"{"authorized":"true"}"#,
            r#"{"authorised":true}"#,
            "1",
            "",
            "not json",
        ] {
            assert!(!authorised(Some(no)), "{no}");
        }
        assert!(!authorised(None));
    }
}
