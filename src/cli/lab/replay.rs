//! The text of `mqtt-lab replay`: what the seed derived (the plan), the timeline, the
//! violations, the fingerprint and the verdict, and for a failure the line that replays it.
//! Depends only on the run's outcome minus its wall time, so a replay prints the same bytes
//! every time. Not here: running the seed.

use std::fmt::Write as _;

use super::summary::replay_command;
use super::timeline;
use super::verdict::Verdict;
use crate::config::duration::format_duration;
use crate::sim::RunOutcome;

/// The whole replay report for the scenario at `path`.
pub fn render(path: &str, outcome: &RunOutcome, with_timeline: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario {path}");
    out.push_str(&outcome.plan.describe());
    out.push('\n');
    if with_timeline {
        let _ = writeln!(out, "timeline ({} events):", outcome.trace.events.len());
        out.push_str(&timeline::render(&outcome.trace));
        out.push('\n');
    }
    for i in &outcome.unfired {
        let _ = writeln!(
            out,
            "fault[{i}] never fired: its trigger event did not come before faults_until"
        );
    }
    if outcome.violations.is_empty() {
        let _ = writeln!(out, "violations: none");
    } else {
        let _ = writeln!(out, "violations ({}):", outcome.violations.len());
        for v in &outcome.violations {
            let _ = writeln!(out, "  {v}");
        }
    }
    if !outcome.undecided.is_empty() {
        let _ = writeln!(out, "undecided ({}):", outcome.undecided.len());
        for v in &outcome.undecided {
            let _ = writeln!(out, "  {v}");
        }
    }
    let verdict = Verdict::of(outcome);
    if let Verdict::Crashed(message) = &verdict {
        let _ = writeln!(out, "crash:");
        for line in message.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(
        out,
        "simulated {} in {} trace events",
        format_duration(outcome.sim_time),
        outcome.trace.events.len()
    );
    let _ = writeln!(out, "fingerprint {}", outcome.fingerprint());
    match verdict {
        Verdict::Passed => {
            let _ = writeln!(out, "verdict: passed");
        }
        Verdict::Undecided => {
            let _ = writeln!(out, "verdict: undecided, neither passed nor failed");
        }
        other => {
            let _ = writeln!(
                out,
                "verdict: FAILED, {}",
                other.headline(outcome.violations.len())
            );
            let _ = writeln!(out, "replay: {}", replay_command(path, outcome.seed));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::lab::verdict::tests::outcome;
    use crate::sim::RunStatus;
    use std::time::Duration;

    #[test]
    fn replay_of_a_violation() {
        insta::assert_snapshot!(render(
            "scenarios/x.toml",
            &outcome(17, RunStatus::Completed, 2),
            true
        ));
    }

    #[test]
    fn replay_of_a_crash_without_timeline() {
        let text = render(
            "scenarios/x.toml",
            &outcome(3, RunStatus::Crashed("boom\n  at line 7".into()), 0),
            false,
        );
        assert!(!text.contains("timeline"));
        assert!(text.contains("crash:\n  boom\n    at line 7\n"), "{text}");
        assert!(text.ends_with(
            "verdict: FAILED, crashed: boom\nreplay: cargo sim-run replay scenarios/x.toml --seed 3\n"
        ));
    }

    #[test]
    fn a_pass_has_no_replay_line_and_no_wall_time() {
        let mut a = outcome(5, RunStatus::Completed, 0);
        let text = render("x.toml", &a, true);
        assert!(text.ends_with("verdict: passed\n"), "{text}");
        assert!(text.starts_with("scenario x.toml\nseed 5: two clients\n"));
        a.wall_time = Duration::from_secs(99);
        assert_eq!(render("x.toml", &a, true), text, "wall time never printed");
    }
}
