//! `--json`: the suite's results as one JSON document on stdout, for machines. Every seed is
//! listed with its class and fingerprint; failures carry their violations and replay command.
//! Times are in seconds (floats) or virtual microseconds (`*_us`). Not here: the table.

use serde::Serialize;

use super::coverage::{BEHAVIOURS, Coverage};
use super::summary::rerun_command;
use super::verdict::{Mismatch, SeedResult, SuiteReport, TargetSummary, Verdict};
use crate::check::Violation;

#[derive(Serialize)]
struct Doc<'a> {
    exit_code: i32,
    seeds_asked: u64,
    /// Seeds this run was to judge (fewer run when `stopped_early`).
    seeds_planned: u64,
    seeds_run: usize,
    passed: usize,
    failed: usize,
    check_determinism: bool,
    stopped_early: bool,
    jobs: usize,
    elapsed_s: f64,
    sim_time_s: f64,
    seeds_per_s: f64,
    sim_wall_ratio: f64,
    /// The broker judged by a target run: its address, identity, skipped scenarios and
    /// assumptions. Absent for the simulator.
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a TargetSummary>,
    /// The part of the run (`--shard K/N`); absent for a whole run.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<String>,
    /// The behaviours counted over the run (`--coverage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    coverage: Option<CoverageDoc>,
    scenarios: Vec<ScenarioDoc<'a>>,
}

/// `--coverage` in JSON: seeds counted, and per behaviour how often and in how many seeds.
#[derive(Serialize, serde::Deserialize)]
pub struct CoverageDoc {
    pub seeds: u64,
    pub behaviours: Vec<BehaviourDoc>,
}

#[derive(Serialize, serde::Deserialize)]
pub struct BehaviourDoc {
    pub name: String,
    pub times: u64,
    pub seeds: u64,
}

impl CoverageDoc {
    fn of(c: &Coverage) -> CoverageDoc {
        CoverageDoc {
            seeds: c.seeds,
            behaviours: BEHAVIOURS
                .iter()
                .enumerate()
                .map(|(i, (name, _))| BehaviourDoc {
                    name: name.to_string(),
                    times: c.times.get(i).copied().unwrap_or(0),
                    seeds: c.seeds_with.get(i).copied().unwrap_or(0),
                })
                .collect(),
        }
    }

    /// The coverage back; a behaviour this build does not know is an error.
    pub fn coverage(&self) -> Result<Coverage, String> {
        let mut c = Coverage {
            seeds: self.seeds,
            times: vec![0; BEHAVIOURS.len()],
            seeds_with: vec![0; BEHAVIOURS.len()],
        };
        for b in &self.behaviours {
            let i = BEHAVIOURS
                .iter()
                .position(|(n, _)| *n == b.name)
                .ok_or_else(|| format!("unknown behaviour `{}` in the coverage", b.name))?;
            c.times[i] = b.times;
            c.seeds_with[i] = b.seeds;
        }
        Ok(c)
    }
}

#[derive(Serialize)]
struct ScenarioDoc<'a> {
    path: &'a str,
    name: &'a str,
    seeds: usize,
    passed: usize,
    failed: usize,
    sim_time_s: f64,
    wall_time_s: f64,
    seeds_per_s: f64,
    sim_wall_ratio: f64,
    runs: Vec<RunDoc<'a>>,
}

#[derive(Serialize)]
struct RunDoc<'a> {
    seed: u64,
    class: &'static str,
    fingerprint: &'a str,
    sim_time_us: u64,
    wall_time_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// A crashed run's whole panic message.
    #[serde(skip_serializing_if = "Option::is_none")]
    crash: Option<&'a str>,
    /// Where a nondeterministic seed's two runs parted.
    #[serde(skip_serializing_if = "Option::is_none")]
    mismatch: Option<&'a Mismatch>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    violations: &'a [Violation],
    /// What the checkers could not decide (a target's broker crash at an unseen instant).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    undecided: &'a [Violation],
    #[serde(skip_serializing_if = "Option::is_none")]
    replay: Option<String>,
    /// A failing target run's plan, as `replay` would print it (the run cannot be replayed).
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a str>,
}

fn run_doc<'a>(target: Option<&TargetSummary>, path: &str, r: &'a SeedResult) -> RunDoc<'a> {
    let failed = !r.passed();
    RunDoc {
        seed: r.seed,
        class: r.verdict.class(),
        fingerprint: &r.fingerprint,
        sim_time_us: r.sim_time.as_micros() as u64,
        wall_time_s: r.wall_time.as_secs_f64(),
        detail: match &r.verdict {
            Verdict::Passed | Verdict::Violated | Verdict::Undecided => None,
            other => Some(other.headline(0)),
        },
        crash: match &r.verdict {
            Verdict::Crashed(message) => Some(message),
            _ => None,
        },
        mismatch: match &r.verdict {
            Verdict::Nondeterministic(m) => Some(m),
            _ => None,
        },
        violations: &r.violations,
        undecided: &r.undecided,
        replay: failed.then(|| rerun_command(target, path, r.seed)),
        plan: (failed && target.is_some()).then_some(r.plan.as_str()),
    }
}

/// The document, pretty-printed, ending in a newline.
pub fn render(report: &SuiteReport) -> String {
    let doc = Doc {
        exit_code: report.exit_code(),
        seeds_asked: report.seeds_asked,
        seeds_planned: report.seeds_planned,
        seeds_run: report.seeds_run(),
        passed: report.passed(),
        failed: report.failed(),
        check_determinism: report.check_determinism,
        stopped_early: report.stopped_early(),
        jobs: report.jobs,
        elapsed_s: report.elapsed.as_secs_f64(),
        sim_time_s: report.sim_time().as_secs_f64(),
        seeds_per_s: report.seeds_per_s(),
        sim_wall_ratio: report.sim_wall_ratio(),
        target: report.target.as_ref(),
        shard: report.shard.map(|s| s.to_string()),
        coverage: report.coverage.as_ref().map(CoverageDoc::of),
        scenarios: report
            .scenarios
            .iter()
            .map(|s| ScenarioDoc {
                path: &s.path,
                name: &s.name,
                seeds: s.seeds(),
                passed: s.passed(),
                failed: s.failed(),
                sim_time_s: s.sim_time().as_secs_f64(),
                wall_time_s: s.wall_time().as_secs_f64(),
                seeds_per_s: s.seeds_per_s(),
                sim_wall_ratio: s.sim_wall_ratio(),
                runs: s
                    .results
                    .iter()
                    .map(|r| run_doc(report.target.as_ref(), &s.path, r))
                    .collect(),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&doc).expect("the report always serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::lab::summary::tests::report;

    #[test]
    fn json_lists_every_run_and_failures_carry_their_replay() {
        let v: serde_json::Value = serde_json::from_str(&render(&report())).unwrap();
        assert_eq!(v["exit_code"], 3);
        assert_eq!(v["seeds_run"], 8);
        assert_eq!(v["failed"], 3);
        let runs = v["scenarios"][1]["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 4);
        assert_eq!(runs[0]["class"], "passed");
        assert!(runs[0].get("replay").is_none());
        assert_eq!(runs[1]["class"], "violated");
        assert_eq!(runs[1]["violations"].as_array().unwrap().len(), 5);
        assert_eq!(runs[1]["violations"][0]["checker"], "delivery");
        assert_eq!(
            runs[1]["replay"],
            "cargo sim-run replay 'scenarios/03-qos1/01 cuts.toml' --seed 2"
        );
        assert_eq!(runs[2]["class"], "crashed");
        assert!(
            runs[2]["detail"]
                .as_str()
                .unwrap()
                .contains("index out of bounds")
        );
        assert_eq!(runs[3]["class"], "nondeterministic");
        assert_eq!(runs[0]["sim_time_us"], 10_000_000);
        assert_eq!(v["scenarios"][0]["passed"], 4);
    }
}
