//! Reconnect backoff: exponential from `min_backoff`, doubling per failed attempt up to
//! `max_backoff`, then jittered into `[d × (1 − jitter), d]` with a ChaCha RNG seeded by the
//! client's seed. The attempt count resets when a CONNACK accepts a connection.
//!
//! Only the delays; the timer and the state live in `mod.rs`.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::ReconnectPolicy;

#[derive(Debug)]
pub struct Backoff {
    policy: ReconnectPolicy,
    /// Consecutive failed attempts since the last accepted connection.
    attempt: u32,
    rng: ChaCha8Rng,
}

impl Backoff {
    pub fn new(policy: ReconnectPolicy, seed: u64) -> Backoff {
        Backoff {
            policy,
            attempt: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The delay before the next attempt, and that attempt's number (1 = first retry).
    pub fn next_delay(&mut self) -> (u32, Duration) {
        let exp = self.attempt.min(31);
        let base = self
            .policy
            .min_backoff
            .checked_mul(1u32 << exp)
            .unwrap_or(self.policy.max_backoff)
            .min(self.policy.max_backoff);
        self.attempt = self.attempt.saturating_add(1);
        let r: f64 = self.rng.random();
        let factor = 1.0 - self.policy.jitter * r;
        (self.attempt, base.mul_f64(factor))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: f64) -> ReconnectPolicy {
        ReconnectPolicy {
            enabled: true,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            jitter,
        }
    }

    #[test]
    fn doubles_up_to_the_cap_without_jitter() {
        let mut b = Backoff::new(policy(0.0), 1);
        let delays: Vec<u64> = (0..6)
            .map(|_| b.next_delay().1.as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), (1, Duration::from_millis(100)));
    }

    #[test]
    fn jitter_stays_in_range_and_is_seeded() {
        let mut a = Backoff::new(policy(0.5), 42);
        let mut b = Backoff::new(policy(0.5), 42);
        let mut c = Backoff::new(policy(0.5), 43);
        let da: Vec<Duration> = (0..20).map(|_| a.next_delay().1).collect();
        let db: Vec<Duration> = (0..20).map(|_| b.next_delay().1).collect();
        let dc: Vec<Duration> = (0..20).map(|_| c.next_delay().1).collect();
        assert_eq!(da, db, "same seed, same delays");
        assert_ne!(da, dc, "another seed, other delays");
        for d in &da[5..] {
            assert!(
                *d >= Duration::from_millis(500) && *d <= Duration::from_millis(1000),
                "{d:?}"
            );
        }
        assert!(
            da[5..].windows(2).any(|w| w[0] != w[1]),
            "jitter varies the delay"
        );
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(policy(0.0), 1);
        for _ in 0..100 {
            assert!(b.next_delay().1 <= Duration::from_millis(1000));
        }
    }
}
