//! Connection deadlines: the CONNECT timeout after accept, then the keep-alive deadline
//! (1.5 × keep-alive after the last packet received, [MQTT-3.1.2-24]). One deadline per
//! connection, indexed by time so `poll_timeout` is the first entry.
//!
//! Verbs: `set` (add or move), `remove`, `next`, `pop_due`. Not here: what happens when a deadline
//! passes (`mod.rs` → `close.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::ConnId;

#[derive(Debug, Default, Clone)]
pub(crate) struct Deadlines {
    by_time: BTreeSet<(Instant, ConnId)>,
    by_conn: BTreeMap<ConnId, Instant>,
}

impl Deadlines {
    /// Sets (or moves, or with `None` removes) the deadline of `conn`.
    pub fn set(&mut self, conn: ConnId, at: Option<Instant>) {
        self.remove(conn);
        if let Some(at) = at {
            self.by_time.insert((at, conn));
            self.by_conn.insert(conn, at);
        }
    }

    pub fn remove(&mut self, conn: ConnId) {
        if let Some(old) = self.by_conn.remove(&conn) {
            self.by_time.remove(&(old, conn));
        }
    }

    pub fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The connection with the earliest deadline at or before `now`, removed.
    pub fn pop_due(&mut self, now: Instant) -> Option<ConnId> {
        let &(at, conn) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.remove(conn);
        Some(conn)
    }
}

/// How long a client may stay silent: one and a half times its keep-alive; `None` for 0.
pub(crate) fn grace(keep_alive_secs: u16) -> Option<Duration> {
    (keep_alive_secs != 0).then(|| Duration::from_millis(u64::from(keep_alive_secs) * 1500))
}
