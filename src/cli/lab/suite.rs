//! Running a suite: every (scenario, seed) pair on `jobs` worker threads, a progress bar on
//! stderr, `--fail-fast` and `--check-determinism`. The world itself is passed in as a
//! function, so the scheduler works (and is tested) apart from the simulator; each call runs
//! one seed on its own thread and runtime, the workers only hand out the work. Not here:
//! loading scenarios (`discover.rs`) or printing results (`summary.rs` and friends).

use std::io::IsTerminal;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::discover::LoadedScenario;
use super::seeds::SeedRange;
use super::verdict::{ScenarioResults, SeedResult, SuiteReport};
use crate::scenario::Scenario;
use crate::sim::{RunOutcome, RunStatus};

/// Most worker threads.
pub const MAX_JOBS: usize = 256;

/// How to run a suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteConfig {
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// Run every seed twice and compare the traces.
    pub check_determinism: bool,
    /// Start no new seed after the first failure.
    pub fail_fast: bool,
    /// Draw a progress bar on stderr (only when it is a terminal).
    pub progress: bool,
    /// Keep the plan of every seed that does not pass ([`SeedResult::plan`]): a run on the
    /// real network cannot be replayed, so its report prints what it was asked to do.
    pub keep_plans: bool,
}

/// Runs every seed of `seeds` for every scenario with `run_one`, and gathers the results
/// (scenarios in the given order, seeds increasing). A panic escaping `run_one` counts as a
/// crash of that seed.
pub fn run_suite<F>(
    scenarios: &[LoadedScenario],
    seeds: SeedRange,
    config: &SuiteConfig,
    run_one: F,
) -> SuiteReport
where
    F: Fn(&Scenario, u64) -> RunOutcome + Sync,
{
    let per_scenario = seeds.len();
    let counts: Vec<u64> = scenarios
        .iter()
        .map(|s| seed_count(&s.scenario, per_scenario))
        .collect();
    // Where each scenario's seeds start in the list of all (scenario, seed) pairs.
    let starts: Vec<u64> = counts
        .iter()
        .scan(0, |next, count| {
            let first = *next;
            *next += count;
            Some(first)
        })
        .collect();
    let total: u64 = counts.iter().sum();
    let jobs = config.jobs.clamp(1, MAX_JOBS).min(total.max(1) as usize);
    let progress = progress_bar(total, config.progress);
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<(usize, SeedResult)>();
    let mut gathered: Vec<Vec<SeedResult>> = vec![Vec::new(); scenarios.len()];

    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, stop, run_one, starts) = (&next, &stop, &run_one, &starts);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let index = starts.partition_point(|&start| start <= i) - 1;
                    let seed = seeds.nth(i - starts[index]);
                    let scenario = &scenarios[index].scenario;
                    let result = judge_seed(scenario, seed, config, run_one);
                    if config.fail_fast && !result.passed() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if tx.send((index, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut failed = 0u64;
        for (index, result) in rx {
            if !result.passed() {
                failed += 1;
                progress.set_message(format!("{failed} failed"));
            }
            progress.inc(1);
            gathered[index].push(result);
        }
    });
    progress.finish_and_clear();

    let scenarios = scenarios
        .iter()
        .zip(gathered)
        .map(|(loaded, mut results)| {
            results.sort_by_key(|r| r.seed);
            ScenarioResults {
                path: loaded.path.clone(),
                name: loaded.scenario.name.clone(),
                results,
            }
        })
        .collect();
    SuiteReport {
        scenarios,
        seeds_asked: per_scenario,
        check_determinism: config.check_determinism,
        elapsed: started.elapsed(),
        seeds_planned: total,
        jobs,
        target: None,
    }
}

/// How many seeds of a range of `asked` the suite runs of `scenario`: the first ones, at most
/// its `max_seeds`.
pub fn seed_count(scenario: &Scenario, asked: u64) -> u64 {
    scenario
        .max_seeds
        .map_or(asked, |most| most.get().min(asked))
}

/// One seed, run once (or twice and compared), judged.
fn judge_seed<F>(scenario: &Scenario, seed: u64, config: &SuiteConfig, run_one: &F) -> SeedResult
where
    F: Fn(&Scenario, u64) -> RunOutcome,
{
    let first = guarded(scenario, seed, run_one);
    let mut result = if config.check_determinism {
        SeedResult::of_pair(&first, &guarded(scenario, seed, run_one))
    } else {
        SeedResult::of(&first)
    };
    if config.keep_plans && !result.passed() {
        result.plan = first.plan.describe();
    }
    result
}

/// `run_one`, with a panic that escapes it turned into a crashed outcome.
fn guarded<F>(scenario: &Scenario, seed: u64, run_one: &F) -> RunOutcome
where
    F: Fn(&Scenario, u64) -> RunOutcome,
{
    let started = Instant::now();
    match catch_unwind(AssertUnwindSafe(|| run_one(scenario, seed))) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".to_string());
            RunOutcome {
                scenario: scenario.name.clone(),
                seed,
                plan: scenario.plan(seed),
                status: RunStatus::Crashed(message),
                trace: Default::default(),
                violations: Vec::new(),
                undecided: Vec::new(),
                sim_time: Duration::ZERO,
                wall_time: started.elapsed(),
                unfired: Vec::new(),
            }
        }
    }
}

fn progress_bar(total: u64, wanted: bool) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} seeds  {per_sec}  eta {eta}  {msg}",
    )
    .expect("a valid progress template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::lab::verdict::Verdict;
    use crate::cli::lab::verdict::tests::{outcome, scenario, trace};
    use std::sync::Mutex;

    fn loaded(n: usize) -> Vec<LoadedScenario> {
        (0..n)
            .map(|i| LoadedScenario {
                path: format!("s{i}.toml"),
                scenario: scenario(),
            })
            .collect()
    }

    fn config(jobs: usize) -> SuiteConfig {
        SuiteConfig {
            jobs,
            check_determinism: false,
            fail_fast: false,
            progress: false,
            keep_plans: false,
        }
    }

    #[test]
    fn every_pair_runs_once_and_results_come_back_sorted() {
        let calls = Mutex::new(Vec::new());
        let seeds: SeedRange = "3..12".parse().unwrap();
        let report = run_suite(&loaded(3), seeds, &config(4), |_, seed| {
            calls.lock().unwrap().push(seed);
            outcome(seed, RunStatus::Completed, usize::from(seed == 7))
        });
        let mut calls = calls.into_inner().unwrap();
        calls.sort();
        assert_eq!(calls.len(), 30);
        assert_eq!(calls.iter().filter(|s| **s == 3).count(), 3);
        assert_eq!(report.scenarios.len(), 3);
        for (i, s) in report.scenarios.iter().enumerate() {
            assert_eq!(s.path, format!("s{i}.toml"));
            let order: Vec<u64> = s.results.iter().map(|r| r.seed).collect();
            assert_eq!(order, (3..=12).collect::<Vec<_>>());
            assert_eq!(s.failed(), 1);
        }
        assert_eq!(report.exit_code(), 1);
        assert!(!report.stopped_early());
        assert_eq!(report.jobs, 4);
    }

    #[test]
    fn a_scenario_s_max_seeds_keeps_it_to_the_first_seeds_of_the_range() {
        let mut scenarios = loaded(3);
        scenarios[1].scenario.max_seeds = std::num::NonZeroU64::new(2);
        scenarios[2].scenario.max_seeds = std::num::NonZeroU64::new(50);
        let seeds: SeedRange = "3..12".parse().unwrap();
        let report = run_suite(&scenarios, seeds, &config(2), |_, seed| {
            outcome(seed, RunStatus::Completed, 0)
        });
        let ran: Vec<Vec<u64>> = report
            .scenarios
            .iter()
            .map(|s| s.results.iter().map(|r| r.seed).collect())
            .collect();
        assert_eq!(ran[0], (3..=12).collect::<Vec<_>>());
        assert_eq!(ran[1], [3, 4]);
        assert_eq!(ran[2], (3..=12).collect::<Vec<_>>());
        assert_eq!(report.seeds_planned, 22);
        assert!(!report.stopped_early());
    }

    #[test]
    fn jobs_never_exceed_the_work() {
        let report = run_suite(&loaded(1), "1".parse().unwrap(), &config(8), |_, s| {
            outcome(s, RunStatus::Completed, 0)
        });
        assert_eq!(report.jobs, 1);
        assert_eq!(report.exit_code(), 0);
    }

    #[test]
    fn a_suite_that_keeps_plans_keeps_those_of_the_seeds_that_did_not_pass() {
        for keep_plans in [false, true] {
            let cfg = SuiteConfig {
                keep_plans,
                ..config(2)
            };
            let report = run_suite(&loaded(1), "1..3".parse().unwrap(), &cfg, |_, seed| {
                outcome(seed, RunStatus::Completed, usize::from(seed == 2))
            });
            let plans: Vec<bool> = report.scenarios[0]
                .results
                .iter()
                .map(|r| r.plan.starts_with(&format!("seed {}: ", r.seed)))
                .collect();
            assert_eq!(plans, [false, keep_plans, false]);
        }
    }

    #[test]
    fn fail_fast_stops_handing_out_seeds() {
        let seeds: SeedRange = "1..1000".parse().unwrap();
        let cfg = SuiteConfig {
            fail_fast: true,
            ..config(2)
        };
        let report = run_suite(&loaded(2), seeds, &cfg, |_, seed| {
            outcome(seed, RunStatus::Completed, usize::from(seed == 5))
        });
        assert!(report.stopped_early());
        assert!(report.seeds_run() < 20, "ran {}", report.seeds_run());
        assert_eq!(report.failed(), 1);
        assert_eq!(report.exit_code(), 1);
    }

    #[test]
    fn check_determinism_runs_twice_and_flags_a_difference() {
        let calls = Mutex::new(std::collections::BTreeMap::<u64, u64>::new());
        let cfg = SuiteConfig {
            check_determinism: true,
            ..config(2)
        };
        let report = run_suite(&loaded(1), "1..4".parse().unwrap(), &cfg, |_, seed| {
            let mut calls = calls.lock().unwrap();
            let n = calls.entry(seed).or_default();
            *n += 1;
            let mut o = outcome(seed, RunStatus::Completed, 0);
            if seed == 2 && *n == 2 {
                o.trace = trace(3);
            }
            o
        });
        assert!(calls.into_inner().unwrap().values().all(|n| *n == 2));
        let verdicts: Vec<_> = report.scenarios[0]
            .results
            .iter()
            .map(|r| r.verdict.class())
            .collect();
        assert_eq!(verdicts, ["passed", "nondeterministic", "passed", "passed"]);
        assert_eq!(report.exit_code(), 3);
        assert!(report.check_determinism);
    }

    #[test]
    fn a_panic_in_the_world_is_a_crash_of_that_seed() {
        let report = run_suite(
            &loaded(1),
            "1..3".parse().unwrap(),
            &config(1),
            |_, seed| {
                assert!(seed != 2, "world fell over");
                outcome(seed, RunStatus::Completed, 0)
            },
        );
        let r = &report.scenarios[0].results[1];
        assert_eq!(r.verdict, Verdict::Crashed("world fell over".into()));
        assert_eq!(report.exit_code(), 3);
        assert_eq!(report.passed(), 2);
    }
}
