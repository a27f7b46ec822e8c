//! A timer table: one deadline per key, indexed by time so the earliest is the first entry.
//! Used for connection deadlines (`keepalive.rs`, in `Instant`s) and for session expiry and will
//! delay (in the broker's logical time, see `clock.rs`).
//!
//! Verbs: `set` (add or move), `remove`, `get`, `next`, `pop_due`. Not here: what happens when a
//! deadline passes (`mod.rs`).

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub(crate) struct Timers<T, K> {
    by_time: BTreeSet<(T, K)>,
    by_key: BTreeMap<K, T>,
}

impl<T, K> Default for Timers<T, K> {
    fn default() -> Self {
        Timers {
            by_time: BTreeSet::new(),
            by_key: BTreeMap::new(),
        }
    }
}

impl<T: Ord + Copy, K: Ord + Clone> Timers<T, K> {
    /// Sets (or moves, or with `None` removes) the deadline of `key`.
    pub fn set(&mut self, key: K, at: Option<T>) {
        self.remove(&key);
        if let Some(at) = at {
            self.by_time.insert((at, key.clone()));
            self.by_key.insert(key, at);
        }
    }

    pub fn remove(&mut self, key: &K) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_time.remove(&(old, key.clone()));
        }
    }

    /// The deadline of `key`, if it has one.
    pub fn get(&self, key: &K) -> Option<T> {
        self.by_key.get(key).copied()
    }

    pub fn next(&self) -> Option<T> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The key with the earliest deadline at or before `now`, removed.
    pub fn pop_due(&mut self, now: T) -> Option<K> {
        let (at, key) = self.by_time.first()?.clone();
        if at > now {
            return None;
        }
        self.remove(&key);
        Some(key)
    }
}
