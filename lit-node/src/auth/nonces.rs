//! Bounded replay caches. A one-time value (a request's `clientPublicKey` or `requestId`, a
//! session signature's nonce) is remembered until the credential it came with can no longer be
//! accepted, and refused if it comes again before then.
//!
//! Entries are indexed by expiry (`BTreeSet<(expiry, nonce)>`), so every insert first drops the
//! expired ones from the front: each entry is removed once, in O(log n), and no insert scans the
//! cache. The cache holds at most `capacity` live entries, and each *holder* (the verified caller
//! that sent them) at most `per_holder`, so one wallet cannot fill the node's memory nor crowd
//! the others out: it is refused until its own entries expire. A full cache refuses rather than
//! forgets a live entry, which would let that entry be replayed.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use time::OffsetDateTime;

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceRefused {
    /// It is remembered: this is a replay.
    #[error("the nonce was already used")]
    Replayed,
    /// Its holder already holds `limit` live nonces.
    #[error("the caller holds {limit} live nonces, as many as one caller may")]
    HolderFull {
        /// The per-holder cap.
        limit: usize,
    },
    /// The cache holds `limit` live nonces.
    #[error("the node remembers {limit} live nonces, as many as it may")]
    Full {
        /// The global capacity.
        limit: usize,
    },
}

/// Nonces remembered until their expiry, with a global capacity and a cap per holder `H`.
#[derive(Debug)]
pub struct NonceSet<H> {
    capacity: usize,
    per_holder: usize,
    /// Live nonces: expiry (Unix nanoseconds) and holder.
    live: HashMap<[u8; 32], (i128, H)>,
    /// The same nonces by expiry, soonest first.
    by_expiry: BTreeSet<(i128, [u8; 32])>,
    /// How many live nonces each holder has (holders with none are absent).
    held: HashMap<H, usize>,
}

impl<H: Clone + Eq + Hash> NonceSet<H> {
    /// A set of at most `capacity` live nonces, at most `per_holder` of them per holder.
    pub fn new(capacity: usize, per_holder: usize) -> Self {
        Self {
            capacity,
            per_holder,
            live: HashMap::new(),
            by_expiry: BTreeSet::new(),
            held: HashMap::new(),
        }
    }

    /// Records `nonce` for `holder` until `until` (inclusive) at time `now`, after dropping the
    /// entries that expired before `now`. Refuses a nonce remembered (whoever holds it), then a
    /// holder at its cap, then any new nonce when the set is full.
    pub fn insert(
        &mut self,
        nonce: [u8; 32],
        holder: &H,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), NonceRefused> {
        self.evict_expired(now.unix_timestamp_nanos());
        if self.live.contains_key(&nonce) {
            return Err(NonceRefused::Replayed);
        }
        let held = self.held.get(holder).copied().unwrap_or(0);
        if held >= self.per_holder {
            return Err(NonceRefused::HolderFull {
                limit: self.per_holder,
            });
        }
        if self.live.len() >= self.capacity {
            return Err(NonceRefused::Full {
                limit: self.capacity,
            });
        }
        let expiry = until.unix_timestamp_nanos();
        self.live.insert(nonce, (expiry, holder.clone()));
        self.by_expiry.insert((expiry, nonce));
        self.held.insert(holder.clone(), held + 1);
        Ok(())
    }

    /// How many nonces are remembered (including expired ones not dropped yet).
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// How many nonces `holder` has remembered.
    pub fn held_by(&self, holder: &H) -> usize {
        self.held.get(holder).copied().unwrap_or(0)
    }

    /// Drops the entries that expired before `now_ns`, soonest first.
    fn evict_expired(&mut self, now_ns: i128) {
        while let Some(&(expiry, nonce)) = self.by_expiry.first() {
            if expiry >= now_ns {
                break;
            }
            self.by_expiry.pop_first();
            if let Some((_, holder)) = self.live.remove(&nonce) {
                match self.held.get_mut(&holder) {
                    Some(n) if *n > 1 => *n -= 1,
                    _ => {
                        self.held.remove(&holder);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000 + secs).unwrap()
    }

    fn n(i: u8) -> [u8; 32] {
        [i; 32]
    }

    #[test]
    fn replays_are_refused_until_expiry_then_forgotten() {
        let mut set = NonceSet::new(10, 10);
        set.insert(n(1), &"alice", t(10), t(0)).unwrap();
        assert_eq!(
            set.insert(n(1), &"alice", t(10), t(5)),
            Err(NonceRefused::Replayed)
        );
        // a replay by someone else is still a replay
        assert_eq!(
            set.insert(n(1), &"bob", t(10), t(5)),
            Err(NonceRefused::Replayed)
        );
        // remembered exactly at its expiry, dropped after it
        assert_eq!(
            set.insert(n(1), &"alice", t(10), t(10)),
            Err(NonceRefused::Replayed)
        );
        set.insert(n(1), &"alice", t(30), t(11)).unwrap();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn expired_entries_leave_from_the_front_on_insert() {
        let mut set = NonceSet::new(100, 100);
        for i in 0..10u8 {
            set.insert(n(i), &"a", t(i64::from(i)), t(0)).unwrap();
        }
        assert_eq!(set.len(), 10);
        // at t(5): nonces expiring at 0..=4 are dropped, 5..=9 stay
        set.insert(n(50), &"b", t(100), t(5)).unwrap();
        assert_eq!(set.len(), 6);
        assert_eq!(set.held_by(&"a"), 5);
        for i in 0..5u8 {
            set.insert(n(i), &"a", t(100), t(5)).unwrap();
        }
        for i in 5..10u8 {
            assert_eq!(
                set.insert(n(i), &"a", t(100), t(5)),
                Err(NonceRefused::Replayed)
            );
        }
        // everything but the late ones expires; holders with none are forgotten
        set.insert(n(60), &"c", t(200), t(150)).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.held_by(&"a"), 0);
        assert_eq!(set.held_by(&"b"), 0);
        assert!(set.held.len() == 1 && set.by_expiry.len() == 1);
    }

    #[test]
    fn the_per_holder_cap_refuses_only_that_holder() {
        let mut set = NonceSet::new(100, 3);
        for i in 0..3u8 {
            set.insert(n(i), &"greedy", t(60), t(0)).unwrap();
        }
        assert_eq!(
            set.insert(n(3), &"greedy", t(60), t(1)),
            Err(NonceRefused::HolderFull { limit: 3 })
        );
        // the refused nonce was not recorded: it is not a replay for anyone
        set.insert(n(3), &"other", t(60), t(1)).unwrap();
        set.insert(n(4), &"other", t(60), t(1)).unwrap();
        // a replay is named as one even for a holder at its cap
        assert_eq!(
            set.insert(n(0), &"greedy", t(60), t(1)),
            Err(NonceRefused::Replayed)
        );
        // once the holder's nonces expire it may send again
        set.insert(n(5), &"greedy", t(120), t(61)).unwrap();
        assert_eq!(set.held_by(&"greedy"), 1);
    }

    #[test]
    fn the_global_capacity_refuses_new_nonces_until_some_expire() {
        let mut set = NonceSet::new(4, 2);
        set.insert(n(1), &"a", t(10), t(0)).unwrap();
        set.insert(n(2), &"a", t(20), t(0)).unwrap();
        set.insert(n(3), &"b", t(20), t(0)).unwrap();
        set.insert(n(4), &"c", t(20), t(0)).unwrap();
        assert_eq!(
            set.insert(n(5), &"d", t(20), t(1)),
            Err(NonceRefused::Full { limit: 4 })
        );
        // a live nonce is never forgotten to make room
        assert_eq!(
            set.insert(n(1), &"d", t(20), t(1)),
            Err(NonceRefused::Replayed)
        );
        // n(1) expires at t(10): room for one more
        set.insert(n(5), &"d", t(20), t(11)).unwrap();
        assert_eq!(
            set.insert(n(6), &"d", t(20), t(11)),
            Err(NonceRefused::Full { limit: 4 })
        );
        assert_eq!(set.len(), 4);
    }
}
