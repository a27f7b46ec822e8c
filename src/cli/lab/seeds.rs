//! Seed ranges as written on the command line: `7` (one seed), `1..500` (1 to 500, both
//! included), `1..=500` (the same). Not here: running the seeds (`suite.rs`).

use std::fmt;
use std::str::FromStr;

/// Most seeds one `--seeds` range may hold.
pub const MAX_SEEDS: u64 = 10_000_000;

/// An inclusive range of seeds, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedRange {
    pub first: u64,
    pub last: u64,
}

impl SeedRange {
    /// How many seeds the range holds.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true: a range holds at least one seed. (For clippy's `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `i`-th seed of the range (`i < len()`).
    pub fn nth(&self, i: u64) -> u64 {
        assert!(i < self.len(), "seed index {i} out of {self}");
        self.first + i
    }

    /// The seeds in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + use<> {
        self.first..=self.last
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..{}", self.first, self.last)
        }
    }
}

impl FromStr for SeedRange {
    type Err = String;

    fn from_str(s: &str) -> Result<SeedRange, String> {
        let number = |t: &str| {
            t.trim().parse::<u64>().map_err(|_| {
                format!(
                    "{t:?} is not a seed (a whole number from 0 to {}); write `7`, `1..500` or `1..=500`",
                    u64::MAX
                )
            })
        };
        let (first, last) = match s.split_once("..") {
            None => {
                let n = number(s)?;
                (n, n)
            }
            Some((a, b)) => {
                let b = b.strip_prefix('=').unwrap_or(b);
                (number(a)?, number(b)?)
            }
        };
        if first > last {
            return Err(format!(
                "{s:?} is empty: the first seed {first} is after the last {last}"
            ));
        }
        if last - first >= MAX_SEEDS {
            return Err(format!(
                "{s:?} holds {} seeds; at most {MAX_SEEDS} per run",
                u128::from(last - first) + 1
            ));
        }
        Ok(SeedRange { first, last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_and_inclusive_ranges() {
        assert_eq!("7".parse(), Ok(SeedRange { first: 7, last: 7 }));
        let r: SeedRange = "1..500".parse().unwrap();
        assert_eq!((r.first, r.last, r.len()), (1, 500, 500));
        assert_eq!("1..=500".parse(), Ok(r));
        assert_eq!(" 3 .. 5".parse::<SeedRange>().unwrap().len(), 3);
        assert_eq!(r.iter().take(3).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(r.nth(499), 500);
        assert_eq!(r.to_string(), "1..500");
        assert_eq!("9".parse::<SeedRange>().unwrap().to_string(), "9");
        let top = format!("{}..{}", u64::MAX - 1, u64::MAX);
        assert_eq!(top.parse::<SeedRange>().unwrap().len(), 2);
    }

    #[test]
    fn bad_ranges_say_why() {
        let e = "5..1".parse::<SeedRange>().unwrap_err();
        assert!(e.contains("is empty"), "{e}");
        let e = "x".parse::<SeedRange>().unwrap_err();
        assert!(e.contains("not a seed"), "{e}");
        let e = "1..".parse::<SeedRange>().unwrap_err();
        assert!(e.contains("not a seed"), "{e}");
        let e = "-1".parse::<SeedRange>().unwrap_err();
        assert!(e.contains("not a seed"), "{e}");
        let e = format!("0..{}", u64::MAX).parse::<SeedRange>().unwrap_err();
        assert!(e.contains("at most"), "{e}");
        assert!(format!("0..{}", MAX_SEEDS - 1).parse::<SeedRange>().is_ok());
        assert!(format!("0..{MAX_SEEDS}").parse::<SeedRange>().is_err());
    }

    #[test]
    #[should_panic(expected = "out of")]
    fn nth_past_the_end_is_a_bug() {
        SeedRange { first: 1, last: 2 }.nth(2);
    }
}
