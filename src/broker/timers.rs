//! A timer table: one deadline per key, indexed by time so the earliest is the first entry.
//! Used for connection deadlines (`keepalive.rs`, in `Instant`s) and for session expiry and will
//! delay (in the broker's logical time, see `clock.rs`).
//!
//! Verbs: `set` (add or move), `extend` (move later), `remove`, `get`, `next`, `pop_due`. Not
//! here: what happens when a deadline passes (`mod.rs`).

use std::collections::{BTreeMap, BTreeSet};

/// A deadline per key, in time order. A deadline moved later by [`Timers::extend`] keeps its
/// entry in the time index at the time it was armed and is re-armed when that time comes, so a
/// deadline pushed back on every packet costs one lookup, not two removals and two insertions.
#[derive(Debug, Clone)]
pub(crate) struct Timers<T, K> {
    /// `(armed, key)`: when to look at `key` again, at or before its deadline.
    by_time: BTreeSet<(T, K)>,
    /// key → `(armed, deadline)`.
    by_key: BTreeMap<K, (T, T)>,
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
            self.by_key.insert(key, (at, at));
        }
    }

    /// Sets the deadline of `key` to `at`: in place when `at` is not before the time its entry
    /// is armed at (a deadline moved later), else as `set`.
    pub fn extend(&mut self, key: K, at: T) {
        match self.by_key.get_mut(&key) {
            Some((armed, due)) if *armed <= at => *due = at,
            _ => self.set(key, Some(at)),
        }
    }

    pub fn remove(&mut self, key: &K) {
        if let Some((armed, _)) = self.by_key.remove(key) {
            self.by_time.remove(&(armed, key.clone()));
        }
    }

    /// The deadline of `key`, if it has one.
    pub fn get(&self, key: &K) -> Option<T> {
        self.by_key.get(key).map(|&(_, due)| due)
    }

    /// When to call [`Timers::pop_due`] next: the earliest deadline, or earlier when a deadline
    /// was extended (the call then re-arms it and returns nothing for it).
    pub fn next(&self) -> Option<T> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The key with the earliest deadline at or before `now`, removed. Bounded: an extended
    /// deadline met on the way is re-armed at its deadline, after `now`, once.
    pub fn pop_due(&mut self, now: T) -> Option<K> {
        loop {
            let (armed, key) = self.by_time.first()?.clone();
            if armed > now {
                return None;
            }
            let entry = self
                .by_key
                .get_mut(&key)
                .expect("every armed key has a deadline");
            let due = entry.1;
            if due <= now {
                self.remove(&key);
                return Some(key);
            }
            entry.0 = due;
            self.by_time.remove(&(armed, key.clone()));
            self.by_time.insert((due, key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Timers;

    /// Every key due at or before `now`, in the order `pop_due` gives them.
    fn due(t: &mut Timers<u64, u32>, now: u64) -> Vec<u32> {
        std::iter::from_fn(|| t.pop_due(now)).collect()
    }

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let mut t = Timers::default();
        t.set(1, Some(30));
        t.set(2, Some(10));
        t.set(3, Some(20));
        assert_eq!(t.next(), Some(10));
        assert_eq!(due(&mut t, 9), Vec::<u32>::new());
        assert_eq!(due(&mut t, 20), vec![2, 3]);
        assert_eq!(t.get(&1), Some(30));
        assert_eq!(due(&mut t, 100), vec![1]);
        assert_eq!(t.next(), None);
    }

    #[test]
    fn an_extended_deadline_is_not_due_at_its_old_time() {
        let mut t = Timers::default();
        t.set(1, Some(10));
        t.set(2, Some(15));
        t.extend(1, 25);
        t.extend(1, 40);
        assert_eq!(t.get(&1), Some(40));
        // Woken at the old time: nothing is due, and the key waits for its new deadline.
        assert_eq!(t.next(), Some(10));
        assert_eq!(due(&mut t, 12), Vec::<u32>::new());
        assert_eq!(t.next(), Some(15));
        assert_eq!(due(&mut t, 39), vec![2]);
        assert_eq!(t.next(), Some(40));
        assert_eq!(due(&mut t, 40), vec![1]);
    }

    #[test]
    fn extend_earlier_or_of_a_new_key_sets_the_deadline() {
        let mut t = Timers::default();
        t.extend(1, 20);
        assert_eq!(t.next(), Some(20));
        t.extend(1, 5);
        assert_eq!((t.get(&1), t.next()), (Some(5), Some(5)));
        assert_eq!(due(&mut t, 5), vec![1]);
    }

    #[test]
    fn a_removed_or_reset_key_leaves_nothing_behind() {
        let mut t = Timers::default();
        t.set(1, Some(10));
        t.extend(1, 50);
        t.remove(&1);
        assert_eq!((t.get(&1), t.next()), (None, None));
        t.set(2, Some(10));
        t.extend(2, 50);
        t.set(2, Some(30));
        assert_eq!(t.next(), Some(30));
        assert_eq!(due(&mut t, 100), vec![2]);
        assert_eq!(t.next(), None);
    }
}
