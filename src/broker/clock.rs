//! The broker's logical clock: durable deadlines (session expiry, message expiry) are kept as a
//! `Duration` of logical time, which a store can persist, rather than as an `Instant`, which
//! means nothing in another process.
//!
//! Logical time runs with the `now` the shell passes in. A fresh broker starts at zero; a
//! restored broker continues from the logical time saved in the state (`DurableState::clock`),
//! anchored at the `now` given to `Broker::restore_at` (or, with `Broker::restore`, at the first
//! `now` the broker sees). Whatever remained of an interval at the save remains at the restart,
//! unless the store hands the state over [aged](super::DurableState::aged) by the time it
//! waited (as the lab's store and the broker's persistence file do): then the downtime counts
//! as if the broker had kept running.
//!
//! Not here: the timers themselves (`timers.rs`).

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub(crate) struct Clock {
    /// The instant that corresponds to logical time `base`; `None` until the first `now`.
    anchor: Option<Instant>,
    base: Duration,
    /// The logical time of the latest `now` seen.
    now: Duration,
}

impl Clock {
    /// A clock at logical time `base`, anchored at `anchor` if given, else at the first `tick`.
    pub fn new(base: Duration, anchor: Option<Instant>) -> Clock {
        Clock {
            anchor,
            base,
            now: base,
        }
    }

    /// Moves the clock to `now` (never backwards).
    pub fn tick(&mut self, now: Instant) {
        let anchor = *self.anchor.get_or_insert(now);
        let t = self.base + now.saturating_duration_since(anchor);
        self.now = self.now.max(t);
    }

    /// The logical time of the latest `now`.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The instant of logical time `t` (the anchor for any time before it); `None` before the
    /// clock is anchored.
    pub fn instant(&self, t: Duration) -> Option<Instant> {
        let anchor = self.anchor?;
        Some(anchor + t.saturating_sub(self.base))
    }
}

/// `secs` seconds after `t`.
pub(crate) fn after(t: Duration, secs: u32) -> Duration {
    t + Duration::from_secs(u64::from(secs))
}

/// Whole seconds left from `now` until `deadline`, rounded up; 0 if it has passed.
pub(crate) fn secs_left(now: Duration, deadline: Duration) -> u32 {
    let left = deadline.saturating_sub(now);
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}
