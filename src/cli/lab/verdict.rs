//! What one seed of a suite came to ([`SeedResult`], [`Verdict`]), the failure classes and
//! their exit codes, and the per-scenario and whole-suite tallies. Only what the reports need
//! is kept; traces are dropped as soon as a seed is judged. Not here: running (`suite.rs`) and
//! printing (`summary.rs`, `junit.rs`, `json.rs`).

use std::time::Duration;

use crate::check::Violation;
use crate::cli::{EXIT_CRASH, EXIT_OK, EXIT_VIOLATION};
use crate::sim::{RunOutcome, RunStatus};

/// How one seed ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Completed, and every checker and expectation held.
    Passed,
    /// Completed, and at least one guarantee was broken.
    Violated,
    /// Completed, nothing broken, but some guarantee holds or not depending on an instant the
    /// lab did not see (a target's broker crash): neither passed nor failed.
    Undecided,
    /// Our own code panicked during the run.
    Crashed(String),
    /// The run hit its (virtual) time limit.
    TimeLimit,
    /// Two runs of the seed gave different traces.
    Nondeterministic(Mismatch),
}

/// Where two runs of one seed parted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mismatch {
    pub first: String,
    pub second: String,
    /// 1-based line of the first difference between the two JSON Lines traces.
    pub line: usize,
}

impl Verdict {
    /// The verdict of a single run.
    pub fn of(outcome: &RunOutcome) -> Verdict {
        match &outcome.status {
            RunStatus::Crashed(msg) => Verdict::Crashed(msg.clone()),
            RunStatus::TimeLimit => Verdict::TimeLimit,
            RunStatus::Completed if !outcome.violations.is_empty() => Verdict::Violated,
            RunStatus::Completed if !outcome.undecided.is_empty() => Verdict::Undecided,
            RunStatus::Completed => Verdict::Passed,
        }
    }

    /// The failure class, one word, as used in JSON and JUnit: `passed`, `violated`,
    /// `undecided`, `crashed`, `time_limit`, `nondeterministic`.
    pub fn class(&self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Violated => "violated",
            Verdict::Undecided => "undecided",
            Verdict::Crashed(_) => "crashed",
            Verdict::TimeLimit => "time_limit",
            Verdict::Nondeterministic(_) => "nondeterministic",
        }
    }

    /// 0 passed or undecided, 1 a guarantee broken, 3 crashed / time limit / nondeterministic.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Passed | Verdict::Undecided => EXIT_OK,
            Verdict::Violated => EXIT_VIOLATION,
            Verdict::Crashed(_) | Verdict::TimeLimit | Verdict::Nondeterministic(_) => EXIT_CRASH,
        }
    }

    /// One line: `2 violations`, `crashed: <message>`, ...
    pub fn headline(&self, violations: usize) -> String {
        match self {
            Verdict::Passed => "passed".into(),
            Verdict::Violated if violations == 1 => "1 violation".into(),
            Verdict::Violated => format!("{violations} violations"),
            Verdict::Undecided => "undecided".into(),
            Verdict::Crashed(msg) => format!("crashed: {}", first_line(msg)),
            Verdict::TimeLimit => "hit its time limit".into(),
            Verdict::Nondeterministic(m) => format!(
                "nondeterministic: two runs differ from trace line {} (fingerprints {} and {})",
                m.line,
                short(&m.first),
                short(&m.second)
            ),
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The first 12 hex digits of a fingerprint.
pub fn short(fingerprint: &str) -> &str {
    &fingerprint[..fingerprint.len().min(12)]
}

/// The worst exit code: 3 outranks 1, 1 outranks 0.
pub fn worst(codes: impl IntoIterator<Item = i32>) -> i32 {
    codes.into_iter().fold(EXIT_OK, |acc, c| match (acc, c) {
        (EXIT_CRASH, _) | (_, EXIT_CRASH) => EXIT_CRASH,
        (EXIT_VIOLATION, _) | (_, EXIT_VIOLATION) => EXIT_VIOLATION,
        _ => EXIT_OK,
    })
}

/// What a suite keeps of one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedResult {
    pub seed: u64,
    pub verdict: Verdict,
    /// Broken guarantees, in time order (of the first run).
    pub violations: Vec<Violation>,
    /// What the checkers could not decide, in time order ([`RunOutcome::undecided`]).
    pub undecided: Vec<Violation>,
    /// The seed's plan as `Plan::describe` prints it, for a seed that did not pass of a suite
    /// that keeps plans (`SuiteConfig::keep_plans`: a target run's report prints it, the run
    /// itself cannot be replayed); empty otherwise.
    pub plan: String,
    pub fingerprint: String,
    /// Virtual time covered (one run).
    pub sim_time: Duration,
    /// Wall time spent (both runs under `--check-determinism`).
    pub wall_time: Duration,
    /// How often each behaviour of `coverage::BEHAVIOURS` happened (first run), for a suite
    /// that counts them (`--coverage`); empty otherwise.
    pub coverage: Vec<u64>,
}

impl SeedResult {
    /// The result of one run.
    pub fn of(outcome: &RunOutcome) -> SeedResult {
        SeedResult {
            seed: outcome.seed,
            verdict: Verdict::of(outcome),
            violations: outcome.violations.clone(),
            undecided: outcome.undecided.clone(),
            plan: String::new(),
            fingerprint: outcome.fingerprint(),
            sim_time: outcome.sim_time,
            wall_time: outcome.wall_time,
            coverage: Vec::new(),
        }
    }

    /// The result of two runs of one seed: the first run's, unless their traces differ.
    pub fn of_pair(first: &RunOutcome, second: &RunOutcome) -> SeedResult {
        let mut result = SeedResult::of(first);
        result.wall_time += second.wall_time;
        let other = second.fingerprint();
        if other != result.fingerprint {
            let (a, b) = (first.trace.to_jsonl(), second.trace.to_jsonl());
            result.verdict = Verdict::Nondeterministic(Mismatch {
                first: result.fingerprint.clone(),
                second: other,
                line: first_difference(&a, &b),
            });
        }
        result
    }

    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }

    /// Neither passed nor failed.
    pub fn undecided(&self) -> bool {
        self.verdict == Verdict::Undecided
    }
}

/// 1-based number of the first line where `a` and `b` differ (one past the shorter when one
/// is a prefix of the other).
pub fn first_difference(a: &str, b: &str) -> usize {
    let (mut la, mut lb) = (a.lines(), b.lines());
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            _ => return n,
        }
    }
}

/// The results of one scenario file, seeds in increasing order.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioResults {
    /// The path as given (or found in a given folder).
    pub path: String,
    /// The scenario's `name`.
    pub name: String,
    pub results: Vec<SeedResult>,
}

impl ScenarioResults {
    pub fn seeds(&self) -> usize {
        self.results.len()
    }

    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.seeds() - self.passed() - self.undecided()
    }

    pub fn undecided(&self) -> usize {
        self.results.iter().filter(|r| r.undecided()).count()
    }

    /// The seeds that did not pass: failed or undecided.
    pub fn failures(&self) -> impl Iterator<Item = &SeedResult> {
        self.results.iter().filter(|r| !r.passed())
    }

    pub fn sim_time(&self) -> Duration {
        self.results.iter().map(|r| r.sim_time).sum()
    }

    /// Wall time summed over the seeds (time spent by the workers on this scenario).
    pub fn wall_time(&self) -> Duration {
        self.results.iter().map(|r| r.wall_time).sum()
    }

    /// Seeds per second of worker time.
    pub fn seeds_per_s(&self) -> f64 {
        rate(self.seeds() as f64, self.wall_time())
    }

    /// Simulated seconds per wall second.
    pub fn sim_wall_ratio(&self) -> f64 {
        rate(self.sim_time().as_secs_f64(), self.wall_time())
    }

    pub fn exit_code(&self) -> i32 {
        worst(self.results.iter().map(|r| r.verdict.exit_code()))
    }
}

fn rate(amount: f64, per: Duration) -> f64 {
    if per.is_zero() {
        0.0
    } else {
        amount / per.as_secs_f64()
    }
}

/// Everything a suite run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteReport {
    pub scenarios: Vec<ScenarioResults>,
    /// Seeds each scenario was asked to run.
    pub seeds_asked: u64,
    /// Whether each seed was run twice.
    pub check_determinism: bool,
    /// Wall time from the first seed started to the last one judged.
    pub elapsed: Duration,
    /// Seeds the run was to judge: every scenario's seeds of the range, at most its
    /// `max_seeds`.
    pub seeds_planned: u64,
    pub jobs: usize,
    /// The broker judged (`run --target`); `None` for the simulator.
    pub target: Option<TargetSummary>,
    /// The part of the run this report covers (`--shard`); `None` for a whole run.
    pub shard: Option<super::shard::Shard>,
    /// The behaviours counted over the run (`--coverage`).
    pub coverage: Option<super::coverage::Coverage>,
}

/// A suite run against a real broker (`run --target`): what the report says besides the runs.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TargetSummary {
    /// HOST:PORT as given.
    pub address: String,
    /// What a rerun needs besides `--target` (the broker commands), shell-quoted.
    #[serde(skip)]
    pub rerun_flags: String,
    /// Where each failing run's trace and timeline are (see `summary::evidence_files`).
    pub failures_dir: String,
    /// The scenario paths in the order the report lists them (the runs may go in another).
    #[serde(skip)]
    pub order: Vec<String>,
    /// The factor every time of each run was multiplied by (`--time-scale`; 1 as written).
    pub time_scale: crate::scenario::TimeScale,
    /// What the target's CONNACKs revealed, one line.
    pub identity: String,
    /// Scenarios not run, and why.
    pub skipped: Vec<Skipped>,
    /// Scenarios run on assumptions about the target's configuration.
    pub assumed: Vec<Assumed>,
}

/// A scenario a target run left out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub path: String,
    /// `needs_configuration` (a setting the target showed otherwise) or `unsupported` (what a
    /// target run cannot do).
    pub class: &'static str,
    pub reason: String,
}

/// What a scenario run against a target took for granted of its configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Assumed {
    pub path: String,
    pub settings: Vec<String>,
}

impl SuiteReport {
    /// `--fail-fast` stopped the run before every planned seed ran.
    pub fn stopped_early(&self) -> bool {
        (self.seeds_run() as u64) < self.seeds_planned
    }

    pub fn seeds_run(&self) -> usize {
        self.scenarios.iter().map(|s| s.seeds()).sum()
    }

    pub fn passed(&self) -> usize {
        self.scenarios.iter().map(|s| s.passed()).sum()
    }

    pub fn failed(&self) -> usize {
        self.scenarios.iter().map(|s| s.failed()).sum()
    }

    pub fn undecided(&self) -> usize {
        self.scenarios.iter().map(|s| s.undecided()).sum()
    }

    pub fn sim_time(&self) -> Duration {
        self.scenarios.iter().map(|s| s.sim_time()).sum()
    }

    /// Seeds per second of elapsed (real) time, all workers together.
    pub fn seeds_per_s(&self) -> f64 {
        rate(self.seeds_run() as f64, self.elapsed)
    }

    /// Simulated seconds per elapsed second, all workers together.
    pub fn sim_wall_ratio(&self) -> f64 {
        rate(self.sim_time().as_secs_f64(), self.elapsed)
    }

    /// 0 all passed, 1 a guarantee broken, 3 a crash, time limit or determinism mismatch
    /// (3 outranks 1).
    pub fn exit_code(&self) -> i32 {
        worst(self.scenarios.iter().map(|s| s.exit_code()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::trace::{Event, Trace};

    pub(crate) const SCENARIO: &str = r#"
name = "two clients"
protocol = "3.1.1"
duration = "10s"
[[client]]
id = "monitor"
subscribe = [{ filter = "sensors/#", qos = 1 }]
[[client]]
id = "sensor-1"
[[workload]]
client = "sensor-1"
topic = "sensors/1/temp"
qos = 1
count = 2
[random]
cuts_per_minute = [1, 4]
[expect]
checkers = ["delivery"]
"#;

    pub(crate) fn scenario() -> Scenario {
        Scenario::from_str(SCENARIO, "scenarios/x.toml").unwrap()
    }

    pub(crate) fn trace(extra_us: u64) -> Trace {
        let mut t = Trace::new();
        t.push(
            0,
            Event::RunStarted {
                scenario: "two clients".into(),
                seed: 17,
                protocol: "3.1.1".into(),
                persistence: crate::trace::Persistence::None,
                max_queued_messages: Some(1000),
                max_inflight: None,
            },
        );
        t.push(10_000_000 + extra_us, Event::RunEnded);
        t
    }

    /// An outcome as the world would return it.
    pub(crate) fn outcome(seed: u64, status: RunStatus, violations: usize) -> RunOutcome {
        RunOutcome {
            scenario: "two clients".into(),
            seed,
            plan: scenario().plan(seed),
            status,
            trace: trace(0),
            violations: (0..violations)
                .map(|i| Violation {
                    checker: "delivery",
                    at_us: 2_000_000 + i as u64 * 1_500_000,
                    message: format!("monitor never received sensor-1#{}", i + 1),
                })
                .collect(),
            undecided: Vec::new(),
            sim_time: Duration::from_secs(10),
            wall_time: Duration::from_millis(20),
            unfired: Vec::new(),
        }
    }

    #[test]
    fn verdicts_and_their_exit_codes() {
        let v = |status, n| Verdict::of(&outcome(1, status, n));
        assert_eq!(v(RunStatus::Completed, 0), Verdict::Passed);
        assert_eq!(v(RunStatus::Completed, 2), Verdict::Violated);
        assert_eq!(v(RunStatus::TimeLimit, 0), Verdict::TimeLimit);
        assert_eq!(
            v(RunStatus::Crashed("boom".into()), 1),
            Verdict::Crashed("boom".into()),
            "a crash outranks violations"
        );
        assert_eq!(Verdict::Passed.exit_code(), 0);
        assert_eq!(Verdict::Violated.exit_code(), 1);
        assert_eq!(Verdict::TimeLimit.exit_code(), 3);
        assert_eq!(Verdict::Crashed("x".into()).exit_code(), 3);
        assert_eq!(worst([0, 1, 0]), 1);
        assert_eq!(worst([1, 3, 0]), 3);
        assert_eq!(worst([3, 1]), 3);
        assert_eq!(worst([]), 0);
    }

    #[test]
    fn what_the_checkers_could_not_decide_neither_passes_nor_fails() {
        let mut o = outcome(1, RunStatus::Completed, 0);
        o.undecided = outcome(1, RunStatus::Completed, 1).violations;
        let r = SeedResult::of(&o);
        assert_eq!(r.verdict, Verdict::Undecided);
        assert!(!r.passed() && r.undecided());
        assert_eq!((r.verdict.class(), r.verdict.exit_code()), ("undecided", 0));
        assert_eq!(r.undecided.len(), 1);
        let s = ScenarioResults {
            path: "a.toml".into(),
            name: "a".into(),
            results: vec![r, SeedResult::of(&outcome(2, RunStatus::Completed, 1))],
        };
        assert_eq!((s.passed(), s.failed(), s.undecided()), (0, 1, 1));
        o.violations = outcome(1, RunStatus::Completed, 1).violations;
        assert_eq!(Verdict::of(&o), Verdict::Violated, "a violation outranks");
    }

    #[test]
    fn two_runs_that_differ_are_a_failure_of_their_own() {
        let a = outcome(5, RunStatus::Completed, 0);
        let same = SeedResult::of_pair(&a, &a.clone());
        assert_eq!(same.verdict, Verdict::Passed);
        assert_eq!(
            same.wall_time,
            Duration::from_millis(40),
            "both runs counted"
        );
        let mut b = a.clone();
        b.trace = trace(1);
        let r = SeedResult::of_pair(&a, &b);
        let Verdict::Nondeterministic(m) = &r.verdict else {
            panic!("{:?}", r.verdict)
        };
        assert_eq!(m.line, 2);
        assert_eq!(m.first, a.fingerprint());
        assert_eq!(m.second, b.fingerprint());
        assert_eq!(r.verdict.exit_code(), 3);
        assert!(r.verdict.headline(0).contains("trace line 2"));
    }

    #[test]
    fn first_difference_counts_lines_from_one() {
        assert_eq!(first_difference("a\nb\n", "a\nc\n"), 2);
        assert_eq!(first_difference("a\n", "b\n"), 1);
        assert_eq!(first_difference("a\nb\n", "a\n"), 2);
    }

    #[test]
    fn tallies_and_rates() {
        let results = ScenarioResults {
            path: "x.toml".into(),
            name: "x".into(),
            results: vec![
                SeedResult::of(&outcome(1, RunStatus::Completed, 0)),
                SeedResult::of(&outcome(2, RunStatus::Completed, 1)),
                SeedResult::of(&outcome(3, RunStatus::Completed, 0)),
                SeedResult::of(&outcome(4, RunStatus::Completed, 0)),
            ],
        };
        assert_eq!(
            (results.seeds(), results.passed(), results.failed()),
            (4, 3, 1)
        );
        assert_eq!(results.sim_time(), Duration::from_secs(40));
        assert_eq!(results.wall_time(), Duration::from_millis(80));
        assert!((results.seeds_per_s() - 50.0).abs() < 1e-9);
        assert!((results.sim_wall_ratio() - 500.0).abs() < 1e-9);
        assert_eq!(results.exit_code(), 1);
        assert_eq!(results.failures().map(|r| r.seed).collect::<Vec<_>>(), [2]);
    }
}
