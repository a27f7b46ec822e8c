//! Connection deadlines: the CONNECT timeout after accept, then the keep-alive deadline
//! (1.5 × keep-alive after the last packet received, [MQTT-3.1.2-24]). One deadline per
//! connection (a `Timers` table). Each packet received moves the keep-alive deadline later with
//! `Timers::extend`, so `poll_timeout` may come before the deadline; the timeout then re-arms it.
//!
//! Not here: what happens when a deadline passes (`mod.rs` → `close.rs`).

use std::time::{Duration, Instant};

use super::ConnId;
use super::timers::Timers;

pub(crate) type Deadlines = Timers<Instant, ConnId>;

/// How long a client may stay silent: one and a half times its keep-alive; `None` for 0.
pub(crate) fn grace(keep_alive_secs: u16) -> Option<Duration> {
    (keep_alive_secs != 0).then(|| Duration::from_millis(u64::from(keep_alive_secs) * 1500))
}
