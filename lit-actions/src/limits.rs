//! Per-action limits: the engine's [`Limits`], the same for every action, and an action's
//! [`Budget`], what its caller paid for, which can only lower them.

use std::time::Duration;

use crate::error::ActionError;

/// The limits every action runs under. Each hit ends the action with an
/// [`ActionError`] that names the limit.
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

/// What the caller paid for, on top of the engine's limits: it can only lower them.
///
/// A node that charges actions by usage turns the price its caller signed into a budget and runs
/// the action with it ([`Action::with_budget`](crate::Action::with_budget)). The action is stopped
/// when it has used its budget, with [`ActionError::BudgetExhausted`] naming the resource; when an
/// engine limit is reached first (or at the same point), the error is the limit's, as without a
/// budget. The default is unlimited: the action runs under the engine's limits alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Budget {
    /// Wall-clock time, measured as [`Limits::time`] is (the action runs for the smaller of the
    /// two). An action that ends in time reports a [`Usage::duration`](crate::Usage::duration)
    /// below it.
    pub time: Option<Duration>,
    /// Billable host calls, all kinds together: every call the action makes to the host that the
    /// engine's limits count, that is each `Lit.Actions` call counted per kind
    /// ([`Limits::host_calls_per_kind`]: `checkConditions`, `decryptAndCombine`, `encrypt`,
    /// `getRpcUrl`, `runOnce`, `broadcastAndCollect`, `pubkeyToTokenId`, and `pkpInfo`, which
    /// each PKP permission query makes once), each signature (`signEcdsa`,
    /// `signAndCombineEcdsa`) and each `fetch`. Not billable: `setResponse` and `console` output
    /// (bounded by their size limits), timers (their cost is time) and the reply of a `runOnce`
    /// section (part of its `runOnce` call). A call is counted once its arguments are valid and
    /// before the host performs it, whether the host then succeeds or fails. The call that would
    /// make the count exceed this number ends the action without being performed.
    /// [`Usage::total_host_calls`](crate::Usage::total_host_calls) is the count compared.
    pub host_calls: Option<u32>,
}

impl Budget {
    /// The [`ActionError::BudgetExhausted::resource`] of a run out of time.
    pub const TIME: &'static str = "time";
    /// The [`ActionError::BudgetExhausted::resource`] of a run out of host calls.
    pub const HOST_CALLS: &'static str = "host calls";

    /// No budget: only the engine's limits apply (the default).
    pub const fn unlimited() -> Self {
        Self {
            time: None,
            host_calls: None,
        }
    }

    /// This budget with this much time.
    pub fn with_time(mut self, time: Duration) -> Self {
        self.time = Some(time);
        self
    }

    /// This budget with this many billable host calls.
    pub fn with_host_calls(mut self, n: u32) -> Self {
        self.host_calls = Some(n);
        self
    }

    /// Whether this budget lowers no limit.
    pub fn is_unlimited(&self) -> bool {
        self.time.is_none() && self.host_calls.is_none()
    }

    /// The time an action may run: the engine's limit, lowered by the budget.
    pub(crate) fn time_allowed(&self, limits: &Limits) -> Duration {
        self.time.map_or(limits.time, |t| t.min(limits.time))
    }

    /// The error of an action still running at [`Budget::time_allowed`]: the budget's when it is
    /// below the engine's limit, otherwise the limit's ([`ActionError::Timeout`], as without a
    /// budget).
    pub(crate) fn time_up(&self, limits: &Limits) -> ActionError {
        match self.time {
            Some(time) if time < limits.time => ActionError::BudgetExhausted {
                resource: Self::TIME.to_owned(),
                limit: millis(time),
            },
            _ => ActionError::Timeout {
                limit_ms: millis(limits.time),
            },
        }
    }

    /// The error of the billable host call number `made` (this call included), if that is one too
    /// many for the budget.
    pub(crate) fn host_calls_exceeded(&self, made: u64) -> Option<ActionError> {
        let limit = u64::from(self.host_calls?);
        (made > limit).then(|| ActionError::BudgetExhausted {
            resource: Self::HOST_CALLS.to_owned(),
            limit,
        })
    }
}

/// Whole milliseconds (rounded down).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default().with_time(Duration::from_secs(30))
    }

    #[test]
    fn no_budget_is_the_limits() {
        assert_eq!(Budget::default(), Budget::unlimited());
        assert!(Budget::unlimited().is_unlimited());
        let b = Budget::unlimited();
        assert_eq!(b.time_allowed(&limits()), Duration::from_secs(30));
        assert_eq!(
            b.time_up(&limits()),
            ActionError::Timeout { limit_ms: 30_000 }
        );
        assert_eq!(b.host_calls_exceeded(u64::MAX), None);
    }

    #[test]
    fn a_shorter_budget_ends_the_action_by_name() {
        let b = Budget::unlimited().with_time(Duration::from_millis(300));
        assert!(!b.is_unlimited());
        assert_eq!(b.time_allowed(&limits()), Duration::from_millis(300));
        let e = b.time_up(&limits());
        assert_eq!(
            e,
            ActionError::BudgetExhausted {
                resource: "time".into(),
                limit: 300
            }
        );
        assert_eq!(
            e.to_string(),
            "the action used all the time its caller paid for (300 ms)"
        );
    }

    #[test]
    fn a_budget_never_raises_a_limit() {
        for time in [Duration::from_secs(30), Duration::from_secs(3600)] {
            let b = Budget::unlimited().with_time(time);
            assert_eq!(b.time_allowed(&limits()), Duration::from_secs(30));
            assert_eq!(
                b.time_up(&limits()),
                ActionError::Timeout { limit_ms: 30_000 }
            );
        }
    }

    #[test]
    fn the_call_over_the_budget_is_refused() {
        let b = Budget::unlimited().with_host_calls(3);
        assert_eq!(b.host_calls_exceeded(3), None);
        let e = b.host_calls_exceeded(4);
        assert_eq!(
            e,
            Some(ActionError::BudgetExhausted {
                resource: "host calls".into(),
                limit: 3
            })
        );
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("the action used all the host calls its caller paid for (3 calls)")
        );
        let none = Budget::unlimited().with_host_calls(0);
        assert!(none.host_calls_exceeded(1).is_some());
    }
}
