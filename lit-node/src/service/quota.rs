//! Quotas per caller (issue "denial of service": uploads and mints have quotas per caller; later
//! they are charged, see payments).
//!
//! - **Lit Action uploads** are counted here, in memory, per node: each node keeps its own action
//!   store (the client uploads to every node), so each node bounds what it is asked to hash and
//!   store. The caller is the uploader's verified identity ([`CallerKey`]) when the upload
//!   carries an `auth`; uploads without one are counted **together**, under
//!   [`CallerKey::Anonymous`], as the request nonces are (`auth::nonces`). Uploads stay possible
//!   without a credential (no client changes needed), but a stranger flooding them can only
//!   exhaust the anonymous share, never an authenticated caller's; a caller who wants its own
//!   quota signs its uploads. Counting by the peer's IP address was not chosen: behind a proxy
//!   every caller has the proxy's address, and one IPv6 host owns billions of addresses.
//! - **PKP mints** are counted by the registry (`crate::chain`), per owner (the address whose
//!   approval the mint carries), in the transaction that records the mint. The registry is shared
//!   by every node, so the quota holds for the network rather than per node (a client refused
//!   `rate_limited` tries the next node, which would otherwise grant N times the quota), it
//!   survives restarts, and a refused mint rolls back with its approval unrecorded. It costs no
//!   node memory: the registry keeps one row per mint of the last hour.
//!
//! [`WindowCounter`] is the upload counter: a fixed window per caller, opened by the caller's
//! first request and lasting [`QUOTA_WINDOW`], counting requests and an amount (bytes). Memory
//! is bounded: windows are indexed by their end, every call first drops the ended ones from the
//! front (each once, O(log n)), and at most `capacity` callers are tracked at once. A new caller
//! arriving when `capacity` windows are running is refused until the soonest ends, rather than
//! one running window being forgotten, which would hand its caller a fresh quota: a flood of
//! distinct callers (fresh wallets cost nothing) then bounds the node's uploads per window at
//! `capacity` times the per-caller allowance instead of growing the counter. Like the protocols,
//! the counter reads no clock: every call is given `now`.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Mutex;

use lit_api::ErrorCode;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::CallerKey;
use crate::config::QuotasConfig;
use crate::error::ApiError;

/// How long one quota window lasts: an hour (the `…_per_hour` keys of `[quotas]`).
pub const QUOTA_WINDOW: time::Duration = time::Duration::hours(1);

/// What one caller may spend in one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    /// Requests.
    pub requests: u32,
    /// The amount all of them together may carry (for uploads: code bytes).
    pub amount: u64,
}

/// Why a request was refused; nothing was counted for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaRefused {
    /// The caller made `limit` requests in its window, which ends at `resets_at`.
    #[error("{limit} requests in the current window, until {resets_at}")]
    Requests {
        /// Requests per window.
        limit: u32,
        /// When the caller's window ends.
        resets_at: OffsetDateTime,
    },
    /// The caller spent `used` of `limit` in its window: `asked` more does not fit.
    #[error(
        "{used} of {limit} spent in the current window, {asked} more asked, until {resets_at}"
    )]
    Amount {
        /// Amount per window.
        limit: u64,
        /// What the caller spent so far in its window.
        used: u64,
        /// What the refused request carries.
        asked: u64,
        /// When the caller's window ends.
        resets_at: OffsetDateTime,
    },
    /// One request carries more than a whole window's amount: it never fits.
    #[error("{asked} is more than a whole window's {limit}")]
    TooLarge {
        /// Amount per window.
        limit: u64,
        /// What the refused request carries.
        asked: u64,
    },
    /// `capacity` callers have a window running; a new one waits for the soonest to end.
    #[error("{capacity} callers tracked, the soonest window ends at {resets_at}")]
    Full {
        /// The most callers tracked at once.
        capacity: usize,
        /// When the soonest window ends.
        resets_at: OffsetDateTime,
    },
}

/// What [`WindowCounter::take`] counted, to give back with [`WindowCounter::give_back`] if the
/// request then fails for another reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The window it was counted in.
    window: u64,
    amount: u64,
}

/// One caller's running window.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// When it ends (Unix nanoseconds).
    ends: i128,
    /// Its unique number (ties between equal ends; tells a later window of the same caller
    /// apart).
    id: u64,
    requests: u32,
    amount: u64,
}

/// Requests and amounts per caller `K` in fixed windows, for at most `capacity` callers at once.
#[derive(Debug)]
pub struct WindowCounter<K> {
    allowance: Allowance,
    window: time::Duration,
    capacity: usize,
    windows: HashMap<K, Window>,
    /// The running windows by end, soonest first.
    by_end: BTreeMap<(i128, u64), K>,
    next_id: u64,
}

impl<K: Clone + Eq + Hash> WindowCounter<K> {
    /// A counter granting `allowance` per caller and `window`, tracking at most `capacity`
    /// callers at once.
    pub fn new(allowance: Allowance, window: time::Duration, capacity: usize) -> Self {
        Self {
            allowance,
            window,
            capacity,
            windows: HashMap::new(),
            by_end: BTreeMap::new(),
            next_id: 0,
        }
    }

    /// Counts one request of `key` carrying `amount` at time `now`, after dropping the windows
    /// that ended by `now`; a caller without a running window opens one. Refused (and nothing
    /// counted) when the request does not fit in the caller's window, or when the caller is new
    /// and `capacity` callers are tracked.
    pub fn take(
        &mut self,
        key: &K,
        amount: u64,
        now: OffsetDateTime,
    ) -> Result<Taken, QuotaRefused> {
        let now_ns = now.unix_timestamp_nanos();
        self.drop_ended(now_ns);
        if amount > self.allowance.amount {
            return Err(QuotaRefused::TooLarge {
                limit: self.allowance.amount,
                asked: amount,
            });
        }
        if let Some(w) = self.windows.get_mut(key) {
            let resets_at = at(w.ends);
            if w.requests >= self.allowance.requests {
                return Err(QuotaRefused::Requests {
                    limit: self.allowance.requests,
                    resets_at,
                });
            }
            if amount > self.allowance.amount - w.amount {
                return Err(QuotaRefused::Amount {
                    limit: self.allowance.amount,
                    used: w.amount,
                    asked: amount,
                    resets_at,
                });
            }
            w.requests += 1;
            w.amount += amount;
            return Ok(Taken {
                window: w.id,
                amount,
            });
        }
        if self.allowance.requests == 0 {
            return Err(QuotaRefused::Requests {
                limit: 0,
                resets_at: now + self.window,
            });
        }
        if self.windows.len() >= self.capacity {
            let resets_at = self
                .by_end
                .first_key_value()
                .map_or(now + self.window, |(&(ends, _), _)| at(ends));
            return Err(QuotaRefused::Full {
                capacity: self.capacity,
                resets_at,
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        let ends = (now + self.window).unix_timestamp_nanos();
        self.windows.insert(
            key.clone(),
            Window {
                ends,
                id,
                requests: 1,
                amount,
            },
        );
        self.by_end.insert((ends, id), key.clone());
        Ok(Taken { window: id, amount })
    }

    /// Uncounts a request counted by [`Self::take`] that then failed for another reason (if
    /// its window is still running).
    pub fn give_back(&mut self, key: &K, taken: Taken) {
        if let Some(w) = self.windows.get_mut(key) {
            if w.id == taken.window {
                w.requests = w.requests.saturating_sub(1);
                w.amount = w.amount.saturating_sub(taken.amount);
            }
        }
    }

    /// How many callers are tracked (including windows ended but not dropped yet).
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }

    /// Requests and amount `key` spent in its running window (zero without one).
    pub fn spent(&self, key: &K) -> (u32, u64) {
        self.windows
            .get(key)
            .map_or((0, 0), |w| (w.requests, w.amount))
    }

    /// Drops the windows that ended by `now_ns`, soonest first.
    fn drop_ended(&mut self, now_ns: i128) {
        while let Some(entry) = self.by_end.first_entry() {
            if entry.key().0 > now_ns {
                break;
            }
            let key = entry.remove();
            self.windows.remove(&key);
        }
    }
}

/// A Unix-nanosecond instant (one the counter computed from an `OffsetDateTime`).
fn at(ns: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ns).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `resets_at` for a message: RFC 3339 and the seconds left from `now`.
pub(crate) fn when(resets_at: OffsetDateTime, now: OffsetDateTime) -> String {
    let text = resets_at
        .format(&Rfc3339)
        .unwrap_or_else(|_| resets_at.unix_timestamp().to_string());
    let secs = (resets_at - now).whole_seconds().max(0);
    format!("{text} (in {secs} s)")
}

/// The node's quotas (`[quotas]`): the upload counter, and the mint allowance it hands the
/// registry.
#[derive(Debug)]
pub(crate) struct Quotas {
    uploads: Mutex<WindowCounter<CallerKey>>,
    /// PKP mints per owner per hour, counted by the registry.
    pub(crate) mints_per_hour: u32,
}

impl Quotas {
    /// The quotas the configuration sets.
    pub(crate) fn new(config: &QuotasConfig) -> Self {
        Self {
            uploads: Mutex::new(WindowCounter::new(
                Allowance {
                    requests: config.uploads_per_hour,
                    amount: config.upload_bytes_per_hour,
                },
                QUOTA_WINDOW,
                config.tracked_callers,
            )),
            mints_per_hour: config.mints_per_hour,
        }
    }

    /// Counts an upload of `bytes` by `caller`: `rate_limited` naming the limit and when it
    /// resets when it does not fit (nothing counted), `body_too_large` when it never would.
    pub(crate) fn take_upload(&self, caller: &CallerKey, bytes: u64) -> Result<Taken, ApiError> {
        let now = OffsetDateTime::now_utc();
        let taken = self
            .uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(caller, bytes, now);
        let hint = if *caller == CallerKey::Anonymous {
            " (uploads without `auth` share one quota: authenticate to be counted on your own)"
        } else {
            ""
        };
        taken.map_err(|refused| match refused {
            QuotaRefused::Requests { limit, resets_at } => ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "{caller} uploaded {limit} Lit Actions to this node in the current hour, as \
                     many as it allows per caller (quotas.uploads_per_hour){hint}; the quota \
                     resets at {}",
                    when(resets_at, now)
                ),
            ),
            QuotaRefused::Amount {
                limit,
                used,
                asked,
                resets_at,
            } => ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "{caller} uploaded {used} bytes of Lit Action code to this node in the \
                     current hour: {asked} more would pass its quota of {limit} bytes per caller \
                     (quotas.upload_bytes_per_hour){hint}; the quota resets at {}",
                    when(resets_at, now)
                ),
            ),
            QuotaRefused::TooLarge { limit, asked } => ApiError::new(
                ErrorCode::BodyTooLarge,
                format!(
                    "the code is {asked} bytes, more than this node accepts from one caller in \
                     an hour ({limit} bytes, quotas.upload_bytes_per_hour)"
                ),
            ),
            QuotaRefused::Full {
                capacity,
                resets_at,
            } => ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "this node counts the uploads of {capacity} callers this hour, as many as it \
                     may (quotas.tracked_callers); it takes uploads from a new caller again at {}",
                    when(resets_at, now)
                ),
            ),
        })
    }

    /// Uncounts an upload that failed after it was counted.
    pub(crate) fn give_back_upload(&self, caller: &CallerKey, taken: Taken) {
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .give_back(caller, taken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000 + secs).unwrap()
    }

    const HOUR: time::Duration = time::Duration::hours(1);

    fn counter(requests: u32, amount: u64, capacity: usize) -> WindowCounter<&'static str> {
        WindowCounter::new(Allowance { requests, amount }, HOUR, capacity)
    }

    #[test]
    fn the_request_after_the_allowance_is_refused_until_the_window_ends() {
        let mut c = counter(3, 1_000, 10);
        for s in 0..3 {
            c.take(&"alice", 10, t(s)).unwrap();
        }
        // alice's window opened at t(0): it ends at t(3600)
        assert_eq!(
            c.take(&"alice", 10, t(100)),
            Err(QuotaRefused::Requests {
                limit: 3,
                resets_at: t(3600)
            })
        );
        // the refusal counted nothing; others are not affected
        assert_eq!(c.spent(&"alice"), (3, 30));
        c.take(&"bob", 10, t(100)).unwrap();
        // still refused just before the end, a fresh window exactly at it
        assert!(c.take(&"alice", 10, t(3599)).is_err());
        c.take(&"alice", 10, t(3600)).unwrap();
        assert_eq!(c.spent(&"alice"), (1, 10));
        // the new window runs from t(3600)
        c.take(&"alice", 10, t(3601)).unwrap();
        c.take(&"alice", 10, t(3602)).unwrap();
        assert_eq!(
            c.take(&"alice", 10, t(7199)),
            Err(QuotaRefused::Requests {
                limit: 3,
                resets_at: t(7200)
            })
        );
    }

    #[test]
    fn the_amount_is_counted_and_a_request_that_never_fits_is_named() {
        let mut c = counter(100, 1_000, 10);
        c.take(&"alice", 600, t(0)).unwrap();
        assert_eq!(
            c.take(&"alice", 500, t(1)),
            Err(QuotaRefused::Amount {
                limit: 1_000,
                used: 600,
                asked: 500,
                resets_at: t(3600)
            })
        );
        // what still fits is taken
        c.take(&"alice", 400, t(2)).unwrap();
        assert_eq!(c.spent(&"alice"), (2, 1_000));
        assert_eq!(
            c.take(&"bob", 1_001, t(3)),
            Err(QuotaRefused::TooLarge {
                limit: 1_000,
                asked: 1_001
            })
        );
        // a refused new caller was not tracked
        assert_eq!(c.tracked(), 1);
    }

    #[test]
    fn what_is_given_back_is_uncounted_in_its_own_window_only() {
        let mut c = counter(1, 100, 10);
        let taken = c.take(&"alice", 50, t(0)).unwrap();
        assert!(c.take(&"alice", 1, t(1)).is_err());
        c.give_back(&"alice", taken);
        assert_eq!(c.spent(&"alice"), (0, 0));
        let old = c.take(&"alice", 50, t(2)).unwrap();
        // a later window is not touched by what was taken in an earlier one
        c.take(&"alice", 50, t(3602)).unwrap();
        c.give_back(&"alice", old);
        assert_eq!(c.spent(&"alice"), (1, 50));
    }

    #[test]
    fn at_most_capacity_callers_are_tracked_and_ended_windows_leave_from_the_front() {
        let mut c = counter(5, 1_000, 3);
        c.take(&"a", 1, t(0)).unwrap();
        c.take(&"b", 1, t(10)).unwrap();
        c.take(&"c", 1, t(20)).unwrap();
        // a flood of new callers is refused while three windows run; the tracked ones go on
        for (i, name) in ["d", "e", "f", "g"].iter().enumerate() {
            assert_eq!(
                c.take(name, 1, t(30 + i as i64)),
                Err(QuotaRefused::Full {
                    capacity: 3,
                    resets_at: t(3600)
                })
            );
        }
        c.take(&"b", 1, t(40)).unwrap();
        assert_eq!(c.tracked(), 3);
        // a's window ends at t(3600): one new caller fits, the next waits for b's (t(3610))
        c.take(&"d", 1, t(3600)).unwrap();
        assert_eq!(
            c.take(&"e", 1, t(3601)),
            Err(QuotaRefused::Full {
                capacity: 3,
                resets_at: t(3610)
            })
        );
        assert_eq!(c.spent(&"a"), (0, 0));
        // long after, every window has ended: all of them are dropped by the next call
        c.take(&"z", 1, t(100_000)).unwrap();
        assert_eq!(c.tracked(), 1);
        assert_eq!(c.by_end.len(), 1);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_distinct_callers() {
        let mut c: WindowCounter<u64> = WindowCounter::new(
            Allowance {
                requests: 1,
                amount: 10,
            },
            HOUR,
            100,
        );
        // 200 000 distinct callers spread over ten hours
        let mut accepted = 0;
        for i in 0..200_000u64 {
            let now = t((i * 36_000 / 200_000) as i64);
            if c.take(&i, 1, now).is_ok() {
                accepted += 1;
            }
            assert!(c.tracked() <= 100 && c.by_end.len() <= 100);
        }
        // at most capacity new windows per hour: 100 in each of the ten hours started
        assert!(accepted <= 100 * 10 + 100, "{accepted}");
        assert!(accepted >= 100 * 9, "{accepted}");
    }
}
