//! Backpressure: which connections the broker stops reading because a connection their
//! messages go to is too far behind.
//!
//! When the output an event of `source` produced leaves another connection more than
//! [`HIGH_WATER`] bytes not yet written, `source` is *held*: its reader waits, so the client
//! is slowed down by TCP instead of the broker buffering without bound. Each connection that
//! went over the mark keeps the set of sources it holds; once it is back under [`LOW_WATER`]
//! (or gone), it lets them go, and a source held by nobody is read again. A connection never
//! holds itself back.
//!
//! A connection holding others must make progress: one whose writer completes nothing for
//! [`MAX_STALL`] while it is over the mark is reported [`Throttle::stalled`] and closed by the
//! shell, so two clients that feed each other and read nothing cannot hold each other for ever.
//!
//! Pure bookkeeping, no I/O and no clock of its own: the shell (`server.rs`) tells it what was
//! written and when, and acts on what it returns.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::broker::ConnId;

/// Bytes waiting for a connection's writer above which the connections feeding it are held.
pub const HIGH_WATER: usize = 4 * 1024 * 1024;
/// Bytes waiting below which a connection lets the sources it holds go.
pub const LOW_WATER: usize = 1024 * 1024;
/// How long a connection over [`HIGH_WATER`] may go without completing a write.
pub const MAX_STALL: Duration = Duration::from_secs(30);

/// A connection over the mark: whom it holds, and its last progress.
#[derive(Debug)]
struct Behind {
    holds: BTreeSet<ConnId>,
    progress: Instant,
}

/// Who holds whom. Empty (and allocation-free) while every connection keeps up.
#[derive(Debug, Default)]
pub struct Throttle {
    behind: BTreeMap<ConnId, Behind>,
    /// A held source → how many connections hold it.
    held: BTreeMap<ConnId, usize>,
}

impl Throttle {
    /// An event of `source` handed `target` output, leaving it `pending` bytes behind. True
    /// when `source` was not held and now is: the shell stops reading it.
    pub fn fed(&mut self, now: Instant, source: ConnId, target: ConnId, pending: usize) -> bool {
        if source == target || pending <= HIGH_WATER {
            return false;
        }
        let behind = self.behind.entry(target).or_insert_with(|| Behind {
            holds: BTreeSet::new(),
            progress: now,
        });
        if !behind.holds.insert(source) {
            return false;
        }
        let count = self.held.entry(source).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// `target`'s writer completed a write and has `pending` bytes left. The sources it lets
    /// go that nobody else holds: the shell reads them again.
    pub fn wrote(&mut self, now: Instant, target: ConnId, pending: usize) -> Vec<ConnId> {
        let Some(behind) = self.behind.get_mut(&target) else {
            return Vec::new();
        };
        behind.progress = now;
        if pending >= LOW_WATER {
            return Vec::new();
        }
        self.let_go(target)
    }

    /// `conn` is gone: what it held is let go (as [`Throttle::wrote`]), and it is held no
    /// more.
    pub fn gone(&mut self, conn: ConnId) -> Vec<ConnId> {
        self.held.remove(&conn);
        let mut free = self.let_go(conn);
        free.retain(|&c| c != conn);
        free
    }

    /// Whether `conn` is held by some connection (what the shell learns from `fed` and the
    /// lists of sources let go; asked by the tests).
    #[cfg(test)]
    fn is_held(&self, conn: ConnId) -> bool {
        self.held.contains_key(&conn)
    }

    /// When the first connection over the mark has gone [`MAX_STALL`] without progress.
    pub fn deadline(&self) -> Option<Instant> {
        self.behind.values().map(|b| b.progress + MAX_STALL).min()
    }

    /// The connections over the mark that made no progress for [`MAX_STALL`] as of `now`.
    pub fn stalled(&self, now: Instant) -> Vec<ConnId> {
        self.behind
            .iter()
            .filter(|(_, b)| b.progress + MAX_STALL <= now)
            .map(|(&c, _)| c)
            .collect()
    }

    fn let_go(&mut self, target: ConnId) -> Vec<ConnId> {
        let Some(behind) = self.behind.remove(&target) else {
            return Vec::new();
        };
        let mut free = Vec::new();
        for source in behind.holds {
            if let Some(count) = self.held.get_mut(&source) {
                *count -= 1;
                if *count == 0 {
                    self.held.remove(&source);
                    free.push(source);
                }
            }
        }
        free
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OVER: usize = HIGH_WATER + 1;

    #[test]
    fn a_source_is_held_while_a_connection_it_feeds_is_over_the_mark() {
        let t0 = Instant::now();
        let mut t = Throttle::default();
        assert!(!t.fed(t0, 1, 2, HIGH_WATER), "at the mark is not over it");
        assert!(t.fed(t0, 1, 2, OVER));
        assert!(t.is_held(1));
        assert!(!t.fed(t0, 1, 2, OVER + 10), "held once");
        assert!(
            t.wrote(t0, 2, LOW_WATER).is_empty(),
            "not yet under the low mark"
        );
        assert!(t.is_held(1));
        assert_eq!(t.wrote(t0, 2, LOW_WATER - 1), vec![1]);
        assert!(!t.is_held(1));
        assert_eq!(t.deadline(), None, "nobody is behind");
    }

    #[test]
    fn a_source_fed_into_two_slow_connections_waits_for_both() {
        let t0 = Instant::now();
        let mut t = Throttle::default();
        assert!(t.fed(t0, 1, 2, OVER));
        assert!(!t.fed(t0, 1, 3, OVER), "already held");
        assert!(t.wrote(t0, 2, 0).is_empty(), "3 still holds it");
        assert_eq!(t.gone(3), vec![1]);
    }

    #[test]
    fn a_connection_never_holds_itself_and_a_gone_source_is_not_let_go() {
        let t0 = Instant::now();
        let mut t = Throttle::default();
        assert!(!t.fed(t0, 2, 2, OVER));
        assert!(t.fed(t0, 1, 2, OVER));
        assert!(
            t.fed(t0, 2, 1, OVER),
            "two connections feeding each other hold each other"
        );
        assert_eq!(t.gone(1), vec![2], "2 was held by 1 alone");
        assert!(
            t.wrote(t0, 2, 0).is_empty(),
            "1 is gone: nothing to read again"
        );
        assert!(!t.is_held(1) && !t.is_held(2));
    }

    #[test]
    fn a_connection_over_the_mark_without_progress_stalls() {
        let t0 = Instant::now();
        let mut t = Throttle::default();
        t.fed(t0, 1, 2, OVER);
        assert_eq!(t.deadline(), Some(t0 + MAX_STALL));
        let later = t0 + Duration::from_secs(10);
        assert!(t.wrote(later, 2, OVER).is_empty());
        assert_eq!(t.deadline(), Some(later + MAX_STALL), "a write is progress");
        assert!(
            t.stalled(later + MAX_STALL - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(t.stalled(later + MAX_STALL), vec![2]);
    }
}
