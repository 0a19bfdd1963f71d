//! Errors of the runtime and of the host.

use crate::cid::{ActionId, CidError};

/// Why an action ended without a result. Limits name themselves; nothing here affects the node or
/// other actions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// The wall-time limit was reached (this includes an action whose promise never settles).
    #[error("the action exceeded its time limit of {limit_ms} ms")]
    Timeout {
        /// The limit, in milliseconds.
        limit_ms: u64,
    },
    /// The memory limit was reached.
    #[error("the action exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The limit.
        limit_bytes: usize,
    },
    /// The code is larger than allowed.
    #[error("the action's code is {size} bytes, over the limit of {limit}")]
    CodeTooLarge {
        /// Size of the code.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The response given to `setResponse` is larger than allowed.
    #[error("the action's response is {size} bytes, over the limit of {limit}")]
    ResponseTooLarge {
        /// Size of the response.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The captured console output grew larger than allowed.
    #[error("the action's logs exceeded the limit of {limit} bytes")]
    LogsTooLarge {
        /// The limit.
        limit: usize,
    },
    /// A host call's message was larger than allowed.
    #[error("a message from the action is {size} bytes, over the limit of {limit}")]
    MessageTooLarge {
        /// Size of the message.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many `fetch` calls.
    #[error("the action made more than {limit} fetches")]
    TooManyFetches {
        /// The limit.
        limit: u32,
    },
    /// Too many signatures.
    #[error("the action asked for more than {limit} signatures")]
    TooManySignatures {
        /// The limit.
        limit: u32,
    },
    /// Too many host calls of one kind.
    #[error("the action made more than {limit} calls of Lit.Actions.{kind}")]
    TooManyHostCalls {
        /// The JavaScript name of the call.
        kind: String,
        /// The limit.
        limit: u32,
    },
    /// The action used all of a resource its caller paid for (its [`Budget`](crate::Budget)),
    /// below the engine's limit for it. Out of time, the action ran for `limit` ms (it is stopped
    /// then); out of host calls, it made `limit` billable calls and the one refused was not
    /// performed.
    #[error("the action used all the {resource} its caller paid for ({limit} {})", budget_unit(.resource))]
    BudgetExhausted {
        /// [`Budget::TIME`](crate::Budget::TIME) (`"time"`) or
        /// [`Budget::HOST_CALLS`](crate::Budget::HOST_CALLS) (`"host calls"`).
        resource: String,
        /// The budget: milliseconds of time, or a number of billable host calls.
        limit: u64,
    },
    /// The JavaScript call stack overflowed (unbounded recursion).
    #[error("the action overflowed its call stack: {message}")]
    StackOverflow {
        /// The engine's message.
        message: String,
    },
    /// The code threw an exception that it did not catch.
    #[error("the action threw: {message}")]
    Script {
        /// The exception, as `Name: message` (and the stack when the engine has one).
        message: String,
    },
    /// The code does not have the id it was given under.
    #[error("the code has id {actual}, not the requested {expected}")]
    IdMismatch {
        /// The requested id.
        expected: ActionId,
        /// The id of the code given.
        actual: ActionId,
    },
    /// The id given is not a CIDv0.
    #[error(transparent)]
    InvalidId(#[from] CidError),
    /// The sandboxed process broke the message protocol (for example user code writing its own
    /// frames to the host channel); the action is ended.
    #[error("the sandbox broke the host protocol: {reason}")]
    SandboxViolation {
        /// What was wrong.
        reason: String,
    },
    /// The engine could not be started (Deno binary missing, process spawn failure, …).
    #[error("the {engine} engine is unavailable: {reason}")]
    EngineUnavailable {
        /// The engine's name.
        engine: &'static str,
        /// Why.
        reason: String,
    },
    /// The engine failed in a way that is not the action's fault.
    #[error("the {engine} engine failed: {reason}")]
    Engine {
        /// The engine's name.
        engine: &'static str,
        /// Why.
        reason: String,
    },
}

/// The unit of a [`ActionError::BudgetExhausted`] limit.
fn budget_unit(resource: &str) -> &'static str {
    if resource == crate::Budget::TIME {
        "ms"
    } else {
        "calls"
    }
}

/// An error of the node's side of a host call. It is thrown into the action as a JavaScript
/// `Error`, which the action may catch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The request is not acceptable (bad key, unknown chain, …).
    #[error("{0}")]
    Rejected(String),
    /// The node could not serve the request now (peers unreachable, …).
    #[error("{0}")]
    Unavailable(String),
    /// The node does not offer this call.
    #[error("{0} is not supported by this node")]
    Unsupported(&'static str),
}
