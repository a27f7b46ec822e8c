//! The shell's clock: `std::time::Instant` everywhere (virtual under the simulator), and one
//! adapter for the timer type that differs between real tokio and madsim.

use std::time::Instant;

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
