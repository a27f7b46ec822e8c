//! Outbound packet identifiers: 1..=65535, never two requests in flight with the same one
//! ([MQTT-2.2.1-3] / [MQTT-2.3.1-2]). QoS 1/2 publishes, subscribes and unsubscribes share the
//! space. Allocation continues after the last identifier handed out, so a freed identifier is
//! reused as late as possible (a stale acknowledgement cannot hit a fresh request soon).
//!
//! Only the pool: which request holds an identifier lives in `inflight`.

use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct PkidPool {
    in_use: BTreeSet<u16>,
    /// The identifier tried first by the next allocation.
    next: u16,
}

impl Default for PkidPool {
    fn default() -> Self {
        PkidPool {
            in_use: BTreeSet::new(),
            next: 1,
        }
    }
}

impl PkidPool {
    /// A free identifier, or `None` when all 65535 are in flight.
    pub fn alloc(&mut self) -> Option<u16> {
        if self.in_use.len() == usize::from(u16::MAX) {
            return None;
        }
        // The first free identifier at or after `next`, wrapping past 65535 to 1.
        let candidate =
            first_gap(&self.in_use, self.next).or_else(|| first_gap(&self.in_use, 1))?;
        self.in_use.insert(candidate);
        self.next = if candidate == u16::MAX {
            1
        } else {
            candidate + 1
        };
        Some(candidate)
    }

    pub fn free(&mut self, pkid: u16) {
        let was = self.in_use.remove(&pkid);
        assert!(was, "freeing packet identifier {pkid} that is not in use");
    }
}

/// The smallest identifier `>= from` not in `used`, if any below 65536.
fn first_gap(used: &BTreeSet<u16>, from: u16) -> Option<u16> {
    let mut want = from;
    for &u in used.range(from..) {
        if u != want {
            return Some(want);
        }
        if u == u16::MAX {
            return None;
        }
        want = u + 1;
    }
    Some(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [MQTT-2.2.1-3] a new request must use a currently unused packet identifier; 0 is never used.
    #[test]
    fn mqtt_2_2_1_3_ids_unique_while_in_use_and_exhaustion_is_none() {
        let mut pool = PkidPool::default();
        let mut seen = BTreeSet::new();
        for _ in 0..u16::MAX {
            let id = pool.alloc().expect("space left");
            assert_ne!(id, 0);
            assert!(seen.insert(id), "{id} handed out twice");
        }
        assert_eq!(
            pool.alloc(),
            None,
            "exhausted pool must not hand out a duplicate"
        );
        pool.free(40_000);
        assert_eq!(pool.alloc(), Some(40_000));
        assert_eq!(pool.alloc(), None);
    }

    #[test]
    fn freed_ids_are_reused_last() {
        let mut pool = PkidPool::default();
        assert_eq!(pool.alloc(), Some(1));
        pool.free(1);
        assert_eq!(
            pool.alloc(),
            Some(2),
            "continues after the last id, not the freed one"
        );
        pool.in_use.insert(3);
        assert_eq!(pool.alloc(), Some(4), "skips an id in use");
    }

    #[test]
    fn wraps_after_65535() {
        let mut pool = PkidPool {
            in_use: BTreeSet::new(),
            next: u16::MAX,
        };
        assert_eq!(pool.alloc(), Some(u16::MAX));
        assert_eq!(pool.alloc(), Some(1));
        pool.in_use.insert(2);
        pool.free(u16::MAX);
        pool.next = u16::MAX - 1;
        assert_eq!(pool.alloc(), Some(u16::MAX - 1));
        assert_eq!(pool.alloc(), Some(u16::MAX));
        assert_eq!(pool.alloc(), Some(3));
    }
}
