//! An action to run and what running it produced.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cid::ActionId;
use crate::error::ActionError;
use crate::host::AuthContext;

/// JavaScript code with its content id, parameters and auth context.
#[derive(Debug, Clone)]
pub struct Action {
    id: ActionId,
    code: Arc<str>,
    params: Map<String, Value>,
    auth: AuthContext,
}

impl Action {
    /// An action given by its code; its id is computed.
    pub fn new(code: impl Into<String>) -> Self {
        let code: Arc<str> = Arc::from(code.into());
        Self {
            id: ActionId::of(code.as_bytes()),
            code,
            params: Map::new(),
            auth: AuthContext::default(),
        }
    }

    /// An action requested by id, with the code fetched for it: fails unless the code has that id.
    pub fn with_id(id: &str, code: impl Into<String>) -> Result<Self, ActionError> {
        let expected: ActionId = id.parse()?;
        let action = Self::new(code);
        if action.id != expected {
            return Err(ActionError::IdMismatch {
                expected,
                actual: action.id,
            });
        }
        Ok(action)
    }

    /// Adds `jsParams` (each key also becomes a global variable).
    pub fn with_params(mut self, params: Map<String, Value>) -> Self {
        self.params = params;
        self
    }

    /// Adds one `jsParams` entry.
    pub fn with_param(mut self, name: impl Into<String>, value: Value) -> Self {
        self.params.insert(name.into(), value);
        self
    }

    /// Sets `Lit.Auth`.
    pub fn with_auth(mut self, auth: AuthContext) -> Self {
        self.auth = auth;
        self
    }

    /// The action's content id.
    pub fn id(&self) -> &ActionId {
        &self.id
    }

    /// The code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The `jsParams`.
    pub fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    /// `Lit.Auth` as the action sees it: the running action's id is always in `actionIpfsIdStack`.
    pub fn auth(&self) -> AuthContext {
        let mut auth = self.auth.clone();
        let id = self.id.to_string();
        if !auth.action_ipfs_ids.contains(&id) {
            auth.action_ipfs_ids.push(id);
        }
        auth
    }
}

/// What a successful action produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActionOutcome {
    /// What the action gave `Lit.Actions.setResponse` (the last call wins), if anything.
    pub response: Option<String>,
    /// Everything the action wrote with `console.*`, one line per call.
    pub logs: String,
    /// What the action used.
    pub usage: Usage,
}

/// What an action used, counted by the host side (the same for every engine).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// Wall time from the start of the host session to the action's end.
    pub duration: std::time::Duration,
    /// Signatures asked for (`signEcdsa` and `signAndCombineEcdsa`).
    pub signatures: u32,
    /// `fetch` calls.
    pub fetches: u32,
    /// Other host calls, by JavaScript name (`checkConditions`, `runOnce`, …).
    pub host_calls: std::collections::BTreeMap<String, u32>,
    /// Size of the response.
    pub response_bytes: usize,
    /// Size of the logs.
    pub log_bytes: usize,
}
