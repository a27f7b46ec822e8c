//! The shell's clock: `std::time::Instant` everywhere (virtual under the simulator), the wall
//! clock a store stamps its commits with (virtual too), and one adapter for the timer type that
//! differs between real tokio and madsim.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (virtual under the simulator).
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The wall-clock time since `ms` (milliseconds since the Unix epoch); zero if the clock reads
/// earlier.
pub fn since_ms(ms: u64) -> Duration {
    Duration::from_millis(wall_ms().saturating_sub(ms))
}

/// `deadline` as the runtime's timers take it (its own type under real tokio, `Instant` under
/// madsim).
#[cfg(not(madsim))]
fn runtime_instant(deadline: Instant) -> tokio::time::Instant {
    tokio::time::Instant::from_std(deadline)
}

#[cfg(madsim)]
fn runtime_instant(deadline: Instant) -> Instant {
    deadline
}

/// Sleeps until `deadline`; returns at once if it has passed.
pub async fn sleep_until(deadline: Instant) {
    tokio::time::sleep_until(runtime_instant(deadline)).await;
}

/// A timer kept across the turns of a loop and armed again only when its deadline changes: a
/// loop that turns for every event does not register a new timer with the runtime each turn.
pub struct Timer {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    deadline: Option<Instant>,
}

impl Default for Timer {
    /// A timer without a deadline.
    fn default() -> Timer {
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        Timer {
            sleep: Box::pin(tokio::time::sleep_until(runtime_instant(far))),
            deadline: None,
        }
    }
}

impl Timer {
    /// Fires at `deadline` from now on, or never.
    pub fn set(&mut self, deadline: Option<Instant>) {
        if deadline == self.deadline {
            return;
        }
        self.deadline = deadline;
        if let Some(d) = deadline {
            self.sleep.as_mut().reset(runtime_instant(d));
        }
    }

    /// Returns at the deadline (at once if it has passed); never without one.
    pub async fn fired(&mut self) {
        match self.deadline {
            Some(_) => self.sleep.as_mut().await,
            None => std::future::pending().await,
        }
    }
}
