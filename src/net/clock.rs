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

/// Sleeps until `deadline`; returns at once if it has passed.
pub async fn sleep_until(deadline: Instant) {
    #[cfg(madsim)]
    tokio::time::sleep_until(deadline).await;
    #[cfg(not(madsim))]
    tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
}

/// Sleeps until `deadline`, or forever when there is none.
pub async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}
