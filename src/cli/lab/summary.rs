//! The human report of a suite: one table row per scenario (seeds, passed, failed, simulated
//! time, wall time, seeds/s, sim/wall), a total row, then every failure with its first few
//! violations and the one command that replays it. Also the replay command itself and the
//! duration format of reports. Not here: JUnit and JSON (`junit.rs`, `json.rs`).

use std::fmt::Write as _;
use std::time::Duration;

use super::verdict::{ScenarioResults, SeedResult, SuiteReport, TargetSummary, Verdict};

/// Violations printed per failing seed; the rest are counted.
pub const VIOLATIONS_SHOWN: usize = 3;
/// Failing seeds printed in full per scenario; the rest are listed by number.
pub const FAILURES_SHOWN: usize = 10;
/// Lines of a failing target run's plan printed in the report (the timeline file has all).
const PLAN_LINES_SHOWN: usize = 24;

/// Widest scenario name in the table; longer names are cut with `…`.
const NAME_WIDTH: usize = 56;

/// The command that replays `seed` of the scenario at `path` (the path as given, quoted for a
/// POSIX shell when it needs it).
pub fn replay_command(path: &str, seed: u64) -> String {
    format!("cargo sim-run replay {} --seed {seed}", shell_quote(path))
}

/// The command that runs `seed` of the scenario at `path` again: its replay in the simulator,
/// or the same plan against the same broker for a target run.
pub fn rerun_command(target: Option<&TargetSummary>, path: &str, seed: u64) -> String {
    match target {
        Some(t) => format!(
            "mqtt-lab run {} --target {}{} --seeds {seed}",
            shell_quote(path),
            shell_quote(&t.address),
            t.rerun_flags
        ),
        None => replay_command(path, seed),
    }
}

/// `s` as one file name: characters other than ASCII letters, digits, `-`, `_` and `.`
/// become `_`, and leading dots and underscores go.
pub fn file_safe(s: &str) -> String {
    let safe: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    safe.trim_start_matches(['.', '_']).to_string()
}

/// The trace (JSON Lines) and timeline files a failing target run of `seed` of the scenario at
/// `path` leaves in `dir`.
pub fn evidence_files(dir: &str, path: &str, seed: u64) -> (String, String) {
    let stem = file_safe(path.trim_end_matches(".toml"));
    (
        format!("{dir}/{stem}-seed{seed}.trace.jsonl"),
        format!("{dir}/{stem}-seed{seed}.timeline.txt"),
    )
}

/// `s` as one word of a shell command line.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A duration for reports: `340ms`, `4.1s`, `3m05s`, `3h20m`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3_600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60)
    }
}

fn cut(name: &str, width: usize) -> String {
    if name.chars().count() <= width {
        name.to_string()
    } else {
        let head: String = name.chars().take(width - 1).collect();
        format!("{head}…")
    }
}

/// The table, then the failures (if any), the slowest seeds, then one closing line.
pub fn render(report: &SuiteReport) -> String {
    let mut out = table(report);
    out.push('\n');
    if let Some(t) = &report.target {
        out.push_str(&target_lines(t));
        out.push('\n');
    }
    out.push_str(&failures(report));
    out.push_str(&slowest(report));
    if let Some(coverage) = &report.coverage {
        out.push_str(&coverage.render());
        out.push('\n');
    }
    out.push_str(&closing_line(report));
    out.push('\n');
    out
}

/// Seeds listed by [`slowest`].
pub const SLOWEST_SHOWN: usize = 5;

/// The seeds that took the most wall time, slowest first, when the run had more than that
/// many: `slowest seeds:` then one line each with its time and replay command.
pub fn slowest(report: &SuiteReport) -> String {
    let mut all: Vec<(&ScenarioResults, &SeedResult)> = report
        .scenarios
        .iter()
        .flat_map(|s| s.results.iter().map(move |r| (s, r)))
        .collect();
    if all.len() <= SLOWEST_SHOWN {
        return String::new();
    }
    all.sort_by_key(|(s, r)| (std::cmp::Reverse(r.wall_time), s.path.as_str(), r.seed));
    let mut out = String::from("slowest seeds:\n");
    for (s, r) in all.iter().take(SLOWEST_SHOWN) {
        let _ = writeln!(
            out,
            "  {:>8}  {}",
            human(r.wall_time),
            rerun_command(report.target.as_ref(), &s.path, r.seed)
        );
    }
    out.push('\n');
    out
}

/// A scenario's label in the table, at most `width` characters: its name, and its file when
/// another scenario of the run has the same name (the name is cut first, then the file's
/// front).
fn label(report: &SuiteReport, s: &ScenarioResults, width: usize) -> String {
    let shared = report
        .scenarios
        .iter()
        .filter(|other| other.name == s.name)
        .count()
        > 1;
    if !shared {
        return cut(&s.name, width);
    }
    let file = format!(" ({})", s.path);
    let file_width = file.chars().count();
    if file_width + 2 > width {
        let tail: Vec<char> = file.chars().skip(file_width + 1 - width).collect();
        return format!("…{}", tail.into_iter().collect::<String>());
    }
    format!("{}{file}", cut(&s.name, width - file_width))
}

/// The summary table (scenario rows and a total row).
pub fn table(report: &SuiteReport) -> String {
    let width = report
        .scenarios
        .iter()
        .map(|s| label(report, s, NAME_WIDTH).chars().count())
        .max()
        .unwrap_or(0)
        .max("scenario".len());
    let mut out = String::new();
    let row = |out: &mut String, cells: [&str; 8]| {
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>6}  {:>6}  {:>9}  {:>8}  {:>8}  {:>9}",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7]
        );
    };
    row(
        &mut out,
        [
            "scenario",
            "seeds",
            "passed",
            "failed",
            if report.target.is_some() {
                "run time"
            } else {
                "simulated"
            },
            "wall",
            "seeds/s",
            if report.target.is_some() {
                "run/wall"
            } else {
                "sim/wall"
            },
        ],
    );
    for s in &report.scenarios {
        row(
            &mut out,
            [
                &label(report, s, width),
                &s.seeds().to_string(),
                &s.passed().to_string(),
                &s.failed().to_string(),
                &human(s.sim_time()),
                &human(s.wall_time()),
                &format!("{:.1}", s.seeds_per_s()),
                &format!("{:.0}x", s.sim_wall_ratio()),
            ],
        );
    }
    let total = format!("total ({} scenarios)", report.scenarios.len());
    row(
        &mut out,
        [
            &total,
            &report.seeds_run().to_string(),
            &report.passed().to_string(),
            &report.failed().to_string(),
            &human(report.sim_time()),
            &human(report.elapsed),
            &format!("{:.1}", report.seeds_per_s()),
            &format!("{:.0}x", report.sim_wall_ratio()),
        ],
    );
    let _ = writeln!(
        out,
        "(rows: wall and rates per worker; total: elapsed time with {} worker{}{})",
        report.jobs,
        if report.jobs == 1 { "" } else { "s" },
        if report.check_determinism {
            ", every seed run twice"
        } else {
            ""
        }
    );
    out
}

/// Every failure: what broke and the command that replays it.
pub fn failures(report: &SuiteReport) -> String {
    let mut out = String::new();
    for s in &report.scenarios {
        let failing: Vec<&SeedResult> = s.failures().collect();
        for f in failing.iter().take(FAILURES_SHOWN) {
            failure(&mut out, report.target.as_ref(), s, f);
        }
        if failing.len() > FAILURES_SHOWN {
            let rest: Vec<String> = failing[FAILURES_SHOWN..]
                .iter()
                .map(|f| f.seed.to_string())
                .collect();
            let _ = writeln!(
                out,
                "FAILED {} ({}): {} more failing seeds: {}",
                s.name,
                s.path,
                rest.len(),
                rest.join(", ")
            );
            let _ = writeln!(
                out,
                "  replay any of them: {}",
                rerun_command(
                    report.target.as_ref(),
                    &s.path,
                    failing[FAILURES_SHOWN].seed
                )
            );
            out.push('\n');
        }
    }
    out
}

/// The target's identity, the scenarios it did not run and why, and what the others assumed.
fn target_lines(t: &TargetSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "target {}", t.identity);
    let _ = writeln!(
        out,
        "real network: not bit-reproducible; a rerun runs the same plan (faults, workloads, client seeds), not the same trace"
    );
    if !t.time_scale.is_one() {
        let _ = writeln!(
            out,
            "time scale {}: every time of each run (faults, workloads, keep-alives, expiries) multiplied by it; traces show the times as run",
            t.time_scale
        );
    }
    for s in &t.skipped {
        let what = if s.class == "needs_configuration" {
            "needs configuration"
        } else {
            "skipped"
        };
        let _ = writeln!(out, "{what} {}: {}", s.path, s.reason);
    }
    for a in &t.assumed {
        let _ = writeln!(out, "assumed by {}: {}", a.path, a.settings.join("; "));
    }
    out
}

fn failure(out: &mut String, target: Option<&TargetSummary>, s: &ScenarioResults, f: &SeedResult) {
    let _ = writeln!(
        out,
        "{} {} ({}) seed {}: {}",
        if f.undecided() { "UNDECIDED" } else { "FAILED" },
        s.name,
        s.path,
        f.seed,
        f.verdict.headline(f.violations.len())
    );
    if !matches!(f.verdict, Verdict::Nondeterministic(_)) || !f.violations.is_empty() {
        for v in f.violations.iter().take(VIOLATIONS_SHOWN) {
            let _ = writeln!(out, "  {v}");
        }
        if f.violations.len() > VIOLATIONS_SHOWN {
            let _ = writeln!(
                out,
                "  ... and {} more",
                f.violations.len() - VIOLATIONS_SHOWN
            );
        }
    }
    for v in f.undecided.iter().take(VIOLATIONS_SHOWN) {
        let _ = writeln!(out, "  undecided: {v}");
    }
    if target.is_some() {
        // The run cannot be replayed: what it was asked to do is printed with it.
        let lines: Vec<&str> = f.plan.lines().collect();
        for line in lines.iter().take(PLAN_LINES_SHOWN) {
            let _ = writeln!(out, "  plan: {line}");
        }
        if lines.len() > PLAN_LINES_SHOWN {
            let _ = writeln!(
                out,
                "  plan: ... {} more lines in the timeline file",
                lines.len() - PLAN_LINES_SHOWN
            );
        }
    }
    let label = if target.is_some() { "rerun" } else { "replay" };
    let _ = writeln!(out, "  {label}: {}", rerun_command(target, &s.path, f.seed));
    if let Some(t) = target {
        let (trace, timeline) = evidence_files(&t.failures_dir, &s.path, f.seed);
        let _ = writeln!(out, "  trace: {trace}  timeline: {timeline}");
    }
    out.push('\n');
}

/// `all 3800 seeds passed` / `2 of 3800 seeds failed` (+ why the run stopped early).
pub fn closing_line(report: &SuiteReport) -> String {
    let undecided = report.undecided();
    let mut line = if report.failed() == 0 && undecided == 0 {
        format!("all {} seeds passed", report.seeds_run())
    } else if report.failed() == 0 {
        format!(
            "{} of {} seeds passed, {undecided} undecided: neither passed nor failed (exit code {})",
            report.passed(),
            report.seeds_run(),
            report.exit_code()
        )
    } else {
        format!(
            "{} of {} seeds failed{} (exit code {})",
            report.failed(),
            report.seeds_run(),
            if undecided > 0 {
                format!(", {undecided} undecided")
            } else {
                String::new()
            },
            report.exit_code()
        )
    };
    if report.stopped_early() {
        let _ = write!(
            line,
            "; --fail-fast stopped the run, {} of {} seeds not run",
            report.seeds_planned - report.seeds_run() as u64,
            report.seeds_planned
        );
    }
    line
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::lab::verdict::tests::outcome;
    use crate::cli::lab::verdict::{Assumed, Mismatch, SeedResult, Skipped};
    use crate::sim::RunStatus;

    /// Two scenarios: one all passing, one with a violation, a crash and a mismatch.
    pub(crate) fn report() -> SuiteReport {
        let ok = |seed| SeedResult::of(&outcome(seed, RunStatus::Completed, 0));
        let mut nondet = ok(4);
        nondet.verdict = Verdict::Nondeterministic(Mismatch {
            first: "a".repeat(64),
            second: "b".repeat(64),
            line: 12,
        });
        SuiteReport {
            scenarios: vec![
                ScenarioResults {
                    path: "scenarios/01-connect/01-connect-and-publish.toml".into(),
                    name: "connect and publish on a calm network".into(),
                    results: (1..=4).map(ok).collect(),
                },
                ScenarioResults {
                    path: "scenarios/03-qos1/01 cuts.toml".into(),
                    name: "qos1 under cuts".into(),
                    results: vec![
                        ok(1),
                        SeedResult::of(&outcome(2, RunStatus::Completed, 5)),
                        SeedResult::of(&outcome(
                            3,
                            RunStatus::Crashed("index out of bounds\nbacktrace".into()),
                            0,
                        )),
                        nondet,
                    ],
                },
            ],
            seeds_asked: 4,
            check_determinism: true,
            elapsed: Duration::from_millis(100),
            seeds_planned: 8,
            jobs: 2,
            target: None,
            shard: None,
            coverage: None,
        }
    }

    fn target(address: &str, flags: &str) -> TargetSummary {
        TargetSummary {
            address: address.into(),
            rerun_flags: flags.into(),
            identity: format!("{address}: 3.1.1 accepted; 5.0 accepted"),
            ..TargetSummary::default()
        }
    }

    #[test]
    fn a_target_run_is_rerun_against_the_same_target_with_its_commands() {
        assert_eq!(
            rerun_command(Some(&target("127.0.0.1:1884", "")), "scenarios/x.toml", 3),
            "mqtt-lab run scenarios/x.toml --target 127.0.0.1:1884 --seeds 3"
        );
        assert_eq!(
            rerun_command(
                Some(&target(
                    "127.0.0.1:1884",
                    " --broker-restart 'systemctl restart mosquitto'"
                )),
                "x.toml",
                3
            ),
            "mqtt-lab run x.toml --target 127.0.0.1:1884 --broker-restart 'systemctl restart mosquitto' --seeds 3"
        );
        assert_eq!(
            rerun_command(None, "scenarios/x.toml", 3),
            replay_command("scenarios/x.toml", 3)
        );
        let mut r = report();
        r.target = Some(target("broker.example:1883", ""));
        for f in &mut r.scenarios[1].results {
            f.plan = outcome(f.seed, RunStatus::Completed, 0).plan.describe();
        }
        let text = failures(&r);
        assert!(
            text.contains("rerun: mqtt-lab run 'scenarios/03-qos1/01 cuts.toml' --target broker.example:1883 --seeds 2"),
            "{text}"
        );
        assert!(!text.contains("sim-run"), "{text}");
        assert!(
            text.contains("  plan: seed 2: ") && text.contains("  plan:   phases: faults 0s.."),
            "a target failure prints its plan: {text}"
        );
        r.target = None;
        assert!(!failures(&r).contains("plan:"), "a replay shows it instead");
    }

    #[test]
    fn a_target_report_names_the_target_what_it_skipped_and_assumed() {
        let mut r = report();
        let mut t = target("broker.example:1883", "");
        t.skipped.push(Skipped {
            path: "a.toml".into(),
            class: "needs_configuration",
            reason: "set topic_alias_maximum = 3 (its 5.0 CONNACK says 10)".into(),
        });
        t.skipped.push(Skipped {
            path: "b.toml".into(),
            class: "unsupported",
            reason: "needs what a target run cannot do: storage faults".into(),
        });
        t.assumed.push(Assumed {
            path: "c.toml".into(),
            settings: vec!["max_queued_messages = 2".into()],
        });
        r.target = Some(t);
        let text = render(&r);
        for line in [
            "target broker.example:1883: 3.1.1 accepted; 5.0 accepted",
            "not bit-reproducible",
            "needs configuration a.toml: set topic_alias_maximum = 3",
            "skipped b.toml: needs what a target run cannot do",
            "assumed by c.toml: max_queued_messages = 2",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        assert!(text.starts_with("scenario") && text.lines().next().unwrap().contains("run time"));
        assert!(!render(&report()).contains("run time"));
        assert!(!text.contains("time scale"), "a scale of 1 goes unsaid");
        if let Some(t) = &mut r.target {
            t.time_scale = crate::scenario::TimeScale::new(0.5).unwrap();
        }
        assert!(render(&r).contains("time scale 0.5: every time of each run"));
    }

    #[test]
    fn replay_command_keeps_the_path_and_quotes_when_needed() {
        assert_eq!(
            replay_command("scenarios/x.toml", 17),
            "cargo sim-run replay scenarios/x.toml --seed 17"
        );
        assert_eq!(
            replay_command("my scenarios/it's.toml", 3),
            r"cargo sim-run replay 'my scenarios/it'\''s.toml' --seed 3"
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_millis(340)), "340ms");
        assert_eq!(human(Duration::from_millis(4_140)), "4.1s");
        assert_eq!(human(Duration::from_secs(185)), "3m05s");
        assert_eq!(human(Duration::from_secs(12_000)), "3h20m");
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abcd", 4), "abcd");
    }

    #[test]
    fn the_report_of_a_failing_suite() {
        insta::assert_snapshot!(render(&report()));
    }

    #[test]
    fn the_slowest_seeds_come_slowest_first_with_their_replay() {
        let mut r = report();
        r.scenarios[1].results[2].wall_time = Duration::from_secs(9);
        r.scenarios[0].results[3].wall_time = Duration::from_secs(3);
        let text = slowest(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "slowest seeds:");
        assert_eq!(
            lines[1],
            "      9.0s  cargo sim-run replay 'scenarios/03-qos1/01 cuts.toml' --seed 3"
        );
        assert!(
            lines[2].ends_with("01-connect-and-publish.toml --seed 4"),
            "{text}"
        );
        assert_eq!(lines.len(), 2 + SLOWEST_SHOWN, "{text}");
        assert_eq!(lines[1 + SLOWEST_SHOWN], "");
        r.scenarios.truncate(1);
        r.scenarios[0].results.truncate(SLOWEST_SHOWN);
        assert_eq!(
            slowest(&r),
            "",
            "a run no longer than the list lists nothing"
        );
    }

    #[test]
    fn rows_of_scenarios_with_one_name_show_their_files() {
        let mut r = report();
        r.scenarios[1].name = r.scenarios[0].name.clone();
        let text = table(&r);
        assert!(
            text.contains(
                "\nconn… (scenarios/01-connect/01-connect-and-publish.toml)       4       4"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\nconnect and publish on… (scenarios/03-qos1/01 cuts.toml)       4       1"
            ),
            "{text}"
        );
        let long = "x/".repeat(40);
        r.scenarios[1].path = long.clone();
        let row = label(&r, &r.scenarios[1], NAME_WIDTH);
        assert_eq!(row.chars().count(), NAME_WIDTH);
        assert!(row.starts_with('…') && row.ends_with("x/)"), "{row}");
    }

    #[test]
    fn every_failure_ends_with_its_replay_line() {
        let text = failures(&report());
        let blocks: Vec<&str> = text.trim_end().split("\n\n").collect();
        assert_eq!(blocks.len(), 3, "{text}");
        for (block, seed) in blocks.iter().zip([2, 3, 4]) {
            let last = block.lines().last().unwrap();
            assert_eq!(
                last,
                format!(
                    "  replay: cargo sim-run replay 'scenarios/03-qos1/01 cuts.toml' --seed {seed}"
                )
            );
        }
        assert!(blocks[0].contains("... and 2 more"), "{}", blocks[0]);
        assert!(blocks[1].contains("crashed: index out of bounds"));
        assert!(
            !blocks[1].contains("backtrace"),
            "first line of a panic only"
        );
    }

    #[test]
    fn many_failures_are_listed_by_seed_after_the_first_ten() {
        let mut r = report();
        r.scenarios[1].results = (1..=14)
            .map(|s| SeedResult::of(&outcome(s, RunStatus::Completed, 1)))
            .collect();
        let text = failures(&r);
        assert_eq!(text.matches("  replay: ").count(), FAILURES_SHOWN);
        assert!(
            text.contains("4 more failing seeds: 11, 12, 13, 14"),
            "{text}"
        );
        assert!(text.contains("replay any of them: cargo sim-run replay"));
    }

    #[test]
    fn closing_line_counts_and_fail_fast() {
        let mut r = report();
        assert_eq!(closing_line(&r), "3 of 8 seeds failed (exit code 3)");
        r.scenarios[1].results.truncate(1);
        assert_eq!(
            closing_line(&r),
            "all 5 seeds passed; --fail-fast stopped the run, 3 of 8 seeds not run"
        );
        // A scenario kept to fewer seeds by its max_seeds plans fewer: none are missing.
        r.seeds_planned = 5;
        assert_eq!(closing_line(&r), "all 5 seeds passed");
    }
}
