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
use super::shard::{Shard, Split, expected_cost};
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
    /// Run only this shard's part of the (scenario, seed) pairs (`shard.rs`).
    pub shard: Option<Shard>,
    /// Count the behaviours of every seed (`coverage.rs`).
    pub coverage: bool,
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
    let costs: Vec<u64> = scenarios
        .iter()
        .map(|s| expected_cost(&s.scenario))
        .collect();
    let split = Split::new(&counts, &costs, config.shard);
    let total = split.len();
    let jobs = config.jobs.clamp(1, MAX_JOBS).min(total.max(1) as usize);
    let mut left: Vec<u64> = (0..scenarios.len()).map(|i| split.of_scenario(i)).collect();
    let planned = left.clone();
    let progress = Progress::new(
        total,
        config.progress,
        left.iter().filter(|n| **n > 0).count(),
    );
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<(usize, SeedResult)>();
    let mut gathered: Vec<Vec<SeedResult>> = vec![Vec::new(); scenarios.len()];

    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, stop, run_one, split, progress) =
                (&next, &stop, &run_one, &split, &progress);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let (index, position) = split.get(i);
                    let seed = seeds.nth(position);
                    let scenario = &scenarios[index].scenario;
                    progress.started(&scenarios[index].path, seed);
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
        for (index, result) in rx {
            progress.judged(&result);
            gathered[index].push(result);
            left[index] -= 1;
            if left[index] == 0 {
                progress.finished(&scenarios[index].path, &gathered[index]);
            }
        }
    });
    progress.clear();

    let in_shard: Vec<bool> = (0..scenarios.len())
        .map(|i| config.shard.is_none() || planned[i] > 0)
        .collect();
    let scenarios: Vec<ScenarioResults> = scenarios
        .iter()
        .zip(gathered)
        .zip(in_shard)
        .filter(|(_, kept)| *kept)
        .map(|((loaded, mut results), _)| {
            results.sort_by_key(|r| r.seed);
            ScenarioResults {
                path: loaded.path.clone(),
                name: loaded.scenario.name.clone(),
                results,
            }
        })
        .collect();
    let coverage = config.coverage.then(|| {
        let mut total = super::coverage::Coverage::default();
        for s in &scenarios {
            for r in &s.results {
                total.add(&r.coverage);
            }
        }
        total
    });
    SuiteReport {
        scenarios,
        seeds_asked: per_scenario,
        check_determinism: config.check_determinism,
        elapsed: started.elapsed(),
        seeds_planned: total,
        jobs,
        target: None,
        shard: config.shard,
        coverage,
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
    if config.coverage {
        result.coverage = super::coverage::count(&first.trace);
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

/// What a running suite shows on stderr: in a terminal, a bar with the seeds judged, the
/// failures so far, the rate, the time left and the seed started last; otherwise (a CI log)
/// one line per finished scenario; nothing when not wanted.
enum Progress {
    Hidden,
    Bar {
        bar: ProgressBar,
        failed: AtomicU64,
        started: Instant,
    },
    Lines {
        done: AtomicU64,
        of: usize,
    },
}

impl Progress {
    fn new(total: u64, wanted: bool, scenarios: usize) -> Progress {
        if !wanted {
            return Progress::Hidden;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Lines {
                done: AtomicU64::new(0),
                of: scenarios,
            };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} seeds, eta {eta}  {msg}  {prefix}",
        )
        .expect("a valid progress template")
        .progress_chars("=> ");
        bar.set_style(style);
        Progress::Bar {
            bar,
            failed: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// A worker started `seed` of the scenario at `path`.
    fn started(&self, path: &str, seed: u64) {
        if let Progress::Bar { bar, .. } = self {
            bar.set_prefix(format!("{path} seed {seed}"));
        }
    }

    /// A seed was judged.
    fn judged(&self, result: &SeedResult) {
        if let Progress::Bar {
            bar,
            failed,
            started,
        } = self
        {
            if !result.passed() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            bar.inc(1);
            let rate = bar.position() as f64 / started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "{:.1} seeds/s, {} failed",
                rate,
                failed.load(Ordering::Relaxed)
            ));
        }
    }

    /// Every seed of the scenario at `path` this run has of it was judged.
    fn finished(&self, path: &str, results: &[SeedResult]) {
        if let Progress::Lines { done, of } = self {
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            eprintln!("{}", finished_line(n, *of, path, results));
        }
    }

    fn clear(&self) {
        if let Progress::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

/// The log line of a finished scenario: `[3/41] passed  12 seeds  4.1s  scenarios/a.toml`,
/// or `FAILED 2 of 12` for one with failures; the time is the seeds' worker time.
fn finished_line(n: u64, of: usize, path: &str, results: &[SeedResult]) -> String {
    let not_passed = results.iter().filter(|r| !r.passed()).count();
    let undecided = results.iter().filter(|r| r.undecided()).count();
    let failed = not_passed - undecided;
    let verdict = if failed > 0 {
        format!("FAILED {failed} of")
    } else if undecided > 0 {
        format!("undecided {undecided} of")
    } else {
        "passed".to_string()
    };
    let wall: Duration = results.iter().map(|r| r.wall_time).sum();
    format!(
        "[{n}/{of}] {verdict} {} seed{}  {}  {path}",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        super::summary::human(wall)
    )
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
            shard: None,
            coverage: false,
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
    fn the_shards_of_a_suite_run_every_pair_once_between_them() {
        let mut scenarios = loaded(4);
        for (i, s) in scenarios.iter_mut().enumerate() {
            s.scenario.name = format!("s{i}");
            s.scenario.duration = Duration::from_secs(10 * (i as u64 + 1));
        }
        scenarios[1].scenario.max_seeds = std::num::NonZeroU64::new(3);
        let seeds: SeedRange = "1..20".parse().unwrap();
        let whole = Mutex::new(Vec::new());
        run_suite(&scenarios, seeds, &config(2), |s, seed| {
            whole.lock().unwrap().push((s.name.clone(), seed));
            outcome(seed, RunStatus::Completed, 0)
        });
        let mut whole = whole.into_inner().unwrap();
        whole.sort();
        assert_eq!(whole.len(), 3 * 20 + 3);
        let mut union = Vec::new();
        for index in 1..=5 {
            let cfg = SuiteConfig {
                shard: Some(Shard { index, count: 5 }),
                ..config(2)
            };
            let ran = Mutex::new(Vec::new());
            let report = run_suite(&scenarios, seeds, &cfg, |s, seed| {
                ran.lock().unwrap().push((s.name.clone(), seed));
                outcome(seed, RunStatus::Completed, 0)
            });
            let ran = ran.into_inner().unwrap();
            assert_eq!(report.shard, Some(Shard { index, count: 5 }));
            assert_eq!(report.seeds_planned, ran.len() as u64);
            assert!(!report.stopped_early());
            assert!(report.scenarios.iter().all(|s| s.seeds() > 0));
            union.extend(ran);
        }
        union.sort();
        assert_eq!(
            union, whole,
            "the shards together are the run, each pair once"
        );
    }

    #[test]
    fn a_finished_scenario_is_one_log_line() {
        let ok = |seed| {
            let mut r = SeedResult::of(&outcome(seed, RunStatus::Completed, 0));
            r.wall_time = Duration::from_millis(1500);
            r
        };
        let bad = SeedResult::of(&outcome(3, RunStatus::Completed, 2));
        assert_eq!(
            finished_line(2, 7, "scenarios/a.toml", &[ok(1), ok(2)]),
            "[2/7] passed 2 seeds  3.0s  scenarios/a.toml"
        );
        assert_eq!(
            finished_line(3, 7, "b.toml", &[ok(1), bad]),
            "[3/7] FAILED 1 of 2 seeds  1.5s  b.toml"
        );
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
