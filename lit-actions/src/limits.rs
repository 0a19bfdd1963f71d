//! Per-action limits.

use std::time::Duration;

/// The limits every action runs under. Each hit ends the action with an
/// [`ActionError`](crate::ActionError) that names the limit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Limits {
    /// Wall-clock time from the start of the code to its end, host calls included.
    pub time: Duration,
    /// JavaScript heap (QuickJS: the runtime's allocation limit; Deno: V8's old-space limit).
    pub memory_bytes: usize,
    /// Size of the code.
    pub code_bytes: usize,
    /// Size of the response given to `Lit.Actions.setResponse`.
    pub response_bytes: usize,
    /// Total size of the captured `console` output.
    pub log_bytes: usize,
    /// Number of `fetch` calls.
    pub fetches: u32,
    /// Number of signatures (`signEcdsa` and `signAndCombineEcdsa` together).
    pub signatures: u32,
    /// Number of calls of any one other kind of host call (`checkConditions`, `getRpcUrl`, …).
    pub host_calls_per_kind: u32,
    /// Largest single message between the sandbox and the host (a host call's arguments).
    pub message_bytes: usize,
}

impl Default for Limits {
    /// Close to Lit's: 30 s, 256 MB, 16 MB of code, 100 KB of response and logs, 50 fetches,
    /// 10 signatures.
    fn default() -> Self {
        Self {
            time: Duration::from_secs(30),
            memory_bytes: 256 * 1024 * 1024,
            code_bytes: 16 * 1024 * 1024,
            response_bytes: 100 * 1024,
            log_bytes: 100 * 1024,
            fetches: 50,
            signatures: 10,
            host_calls_per_kind: 1000,
            message_bytes: 32 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// These limits with another wall-time limit.
    pub fn with_time(mut self, time: Duration) -> Self {
        self.time = time;
        self
    }

    /// These limits with another memory limit.
    pub fn with_memory_bytes(mut self, bytes: usize) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// These limits with another response size limit.
    pub fn with_response_bytes(mut self, bytes: usize) -> Self {
        self.response_bytes = bytes;
        self
    }

    /// These limits with another log size limit.
    pub fn with_log_bytes(mut self, bytes: usize) -> Self {
        self.log_bytes = bytes;
        self
    }

    /// These limits with another code size limit.
    pub fn with_code_bytes(mut self, bytes: usize) -> Self {
        self.code_bytes = bytes;
        self
    }

    /// These limits with another number of fetches.
    pub fn with_fetches(mut self, n: u32) -> Self {
        self.fetches = n;
        self
    }

    /// These limits with another number of signatures.
    pub fn with_signatures(mut self, n: u32) -> Self {
        self.signatures = n;
        self
    }

    /// These limits with another number of host calls per kind.
    pub fn with_host_calls_per_kind(mut self, n: u32) -> Self {
        self.host_calls_per_kind = n;
        self
    }
}
