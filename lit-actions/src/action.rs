//! An action to run and what running it produced.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cid::ActionId;
use crate::error::ActionError;
use crate::host::AuthContext;
use crate::limits::Budget;

/// JavaScript code with its content id, parameters, auth context and budget.
#[derive(Debug, Clone)]
pub struct Action {
    id: ActionId,
    code: Arc<str>,
    params: Map<String, Value>,
    auth: AuthContext,
    budget: Budget,
    headers: BTreeMap<String, String>,
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
            budget: Budget::unlimited(),
            headers: BTreeMap::new(),
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

    /// Sets what the caller paid for: the engine stops the action when it has used it (no budget,
    /// the default: only the engine's limits apply).
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// Sets `Lit.Headers`: the request headers the caller chose to pass to the action (names as
    /// given, usually lower-case). The node bounds them ([`lit_api::v1::check_action_headers`]).
    pub fn with_headers(mut self, headers: BTreeMap<String, String>) -> Self {
        self.headers = headers;
        self
    }

    /// `Lit.Headers`.
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.headers
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

    /// What the caller paid for.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// `Lit.Auth` as the action sees it: the running action's id is always last in
    /// `actionIpfsIdStack` (a child run by `Lit.Actions.call` is given the stack with its id
    /// pushed already, as Lit pushes it on every call, recursive ones included).
    pub fn auth(&self) -> AuthContext {
        let mut auth = self.auth.clone();
        let id = self.id.to_string();
        if auth.action_ipfs_ids.last() != Some(&id) {
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
    /// Wall time from the start of the host session to the action's end (with a time budget,
    /// always below it).
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

impl Usage {
    /// The billable host calls the action made, all kinds together: signatures, fetches and the
    /// other host calls counted per kind (see [`Budget::host_calls`] for the list). This is the
    /// number compared with [`Budget::host_calls`].
    pub fn total_host_calls(&self) -> u64 {
        total_host_calls(
            self.signatures,
            self.fetches,
            self.host_calls.values().copied(),
        )
    }
}

/// Billable host calls from their counters: the one sum behind [`Usage::total_host_calls`] and the
/// host's check of [`Budget::host_calls`].
pub(crate) fn total_host_calls(
    signatures: u32,
    fetches: u32,
    per_kind: impl IntoIterator<Item = u32>,
) -> u64 {
    per_kind.into_iter().map(u64::from).fold(
        u64::from(signatures) + u64::from(fetches),
        u64::saturating_add,
    )
}
