//! `--shard K/N`: one of N machines runs its part of a suite ([`Split`]). Every shard takes an
//! equal share of each scenario's seeds, and the seeds left over are dealt by expected cost,
//! heaviest scenario first, each to the shard with the least cost so far, so every shard
//! computes the same split from the same files and seed range, the shards' union is exactly the
//! whole run, no two shards run the same pair, and no shard runs more than one seed's cost
//! above an even share. A shard runs its pairs in the run's order.
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

/// The (scenario, seed) pairs one shard runs, without listing them: a run of a million seeds
/// per scenario holds a few numbers per scenario, not a pair per seed. Every shard takes an
/// equal share of every scenario's seeds (the seeds at positions `k`, `k + N`, ... of the
/// first `N × ⌊n/N⌋`); the `n mod N` seeds left of each scenario go, heaviest scenario first,
/// to the shards with the least expected cost so far (ties to the lowest shard), one each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    parts: Vec<Part>,
    /// Where each scenario's pairs start among this shard's.
    starts: Vec<u64>,
    total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Part {
    /// Seeds of the scenario in the whole run.
    count: u64,
    /// Shards, and this shard's index (from 0).
    shards: u64,
    index: u64,
    /// The position of the one left-over seed this shard runs, if it runs one.
    extra: Option<u64>,
}

impl Part {
    fn even(&self) -> u64 {
        self.count / self.shards
    }

    fn mine(&self) -> u64 {
        self.even() + u64::from(self.extra.is_some())
    }

    /// The position (among the scenario's seeds) of this shard's `j`-th seed of it.
    fn position(&self, j: u64) -> u64 {
        if j < self.even() {
            self.index + j * self.shards
        } else {
            self.extra.expect("within the shard's seeds")
        }
    }
}

impl Split {
    /// The split of a run whose scenarios have `counts[i]` seeds, each of expected cost
    /// `costs[i]`, for `shard` (every pair for `None`).
    pub fn new(counts: &[u64], costs: &[u64], shard: Option<Shard>) -> Split {
        let (shards, index) =
            shard.map_or((1, 0), |s| (u64::from(s.count), u64::from(s.index - 1)));
        let mut order: Vec<usize> = (0..counts.len()).collect();
        order.sort_by_key(|&i| (Reverse(costs[i]), i));
        let mut loads: BinaryHeap<Reverse<(u64, u64)>> =
            (0..shards).map(|k| Reverse((0, k))).collect();
        let mut extra = vec![None; counts.len()];
        // Every shard gets the even share of every scenario, which changes no shard's rank:
        // only the left-overs are weighed.
        for i in order {
            let even = counts[i] / shards;
            // The left-overs of one scenario go to as many different shards.
            let taken: Vec<(u64, u64)> = (0..counts[i] % shards)
                .map(|j| {
                    let Reverse((load, k)) = loads.pop().expect("at least one shard");
                    if k == index {
                        extra[i] = Some(shards * even + j);
                    }
                    (load.saturating_add(costs[i]), k)
                })
                .collect();
            loads.extend(taken.into_iter().map(Reverse));
        }
        let parts: Vec<Part> = counts
            .iter()
            .zip(extra)
            .map(|(&count, extra)| Part {
                count,
                shards,
                index,
                extra,
            })
            .collect();
        let starts: Vec<u64> = parts
            .iter()
            .scan(0, |next, p| {
                let first = *next;
                *next += p.mine();
                Some(first)
            })
            .collect();
        let total = parts.iter().map(Part::mine).sum();
        Split {
            parts,
            starts,
            total,
        }
    }

    /// Pairs this shard runs.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Pairs of scenario `i` this shard runs.
    pub fn of_scenario(&self, i: usize) -> u64 {
        self.parts[i].mine()
    }

    /// This shard's `n`-th pair, in the run's order: (scenario, position of the seed among the
    /// scenario's seeds).
    pub fn get(&self, n: u64) -> (usize, u64) {
        let i = self.starts.partition_point(|&start| start <= n) - 1;
        // Scenarios without a pair here share a start with the next: take the last of them.
        (i, self.parts[i].position(n - self.starts[i]))
    }
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

    fn pairs(split: &Split) -> Vec<(usize, u64)> {
        (0..split.len()).map(|n| split.get(n)).collect()
    }

    #[test]
    fn every_shard_gets_an_even_share_and_the_left_overs_go_to_the_lightest() {
        let two = |index| Some(Shard { index, count: 2 });
        // 5 seeds of cost 1: positions 0, 2 and the left-over 4 to shard 1; 1, 3 to shard 2.
        assert_eq!(
            pairs(&Split::new(&[5], &[1], two(1))),
            [(0, 0), (0, 2), (0, 4)]
        );
        assert_eq!(pairs(&Split::new(&[5], &[1], two(2))), [(0, 1), (0, 3)]);
        // The heavy scenario's left-over goes first, to shard 1; the light one's then to 2.
        assert_eq!(pairs(&Split::new(&[1, 1], &[1, 9], two(1))), [(1, 0)]);
        assert_eq!(pairs(&Split::new(&[1, 1], &[1, 9], two(2))), [(0, 0)]);
        // A scenario without seeds here is skipped over.
        let s = Split::new(&[1, 0, 0, 2], &[5, 5, 5, 5], two(2));
        assert_eq!(pairs(&s), [(3, 1)]);
        assert_eq!((s.of_scenario(0), s.of_scenario(3)), (0, 1));
    }

    proptest! {
        /// The shards of a run together are exactly the run: every pair in exactly one
        /// shard, each shard in the run's order, and no shard more than the heaviest pair
        /// above an even split.
        #[test]
        fn the_shards_union_is_the_whole_run(
            scenarios in proptest::collection::vec((0u64..40, 1u64..1000), 0..30),
            count in 1u32..12,
        ) {
            let counts: Vec<u64> = scenarios.iter().map(|s| s.0).collect();
            let costs: Vec<u64> = scenarios.iter().map(|s| s.1).collect();
            let total: u64 = scenarios.iter().map(|(n, c)| n * c).sum();
            let heaviest = costs.iter().copied().max().unwrap_or(0);
            let mut seen = std::collections::BTreeMap::new();
            for index in 1..=count {
                let mine = pairs(&Split::new(&counts, &costs, Some(Shard { index, count })));
                prop_assert!(mine.windows(2).all(|w| w[0] < w[1]), "in the run's order");
                let load: u64 = mine.iter().map(|&(i, _)| costs[i]).sum();
                prop_assert!(load <= total / u64::from(count) + heaviest, "load {load}");
                for pair in mine {
                    *seen.entry(pair).or_insert(0) += 1;
                }
            }
            let whole = pairs(&Split::new(&counts, &costs, None));
            prop_assert_eq!(whole.len() as u64, counts.iter().sum::<u64>());
            prop_assert!(seen.values().all(|&n| n == 1));
            prop_assert_eq!(seen.into_keys().collect::<Vec<_>>(), whole);
        }
    }
}
