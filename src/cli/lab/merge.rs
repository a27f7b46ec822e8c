//! `mqtt-lab merge`: the `--json` reports of the shards of one run (`run --shard K/N` on N
//! machines) read back and combined into the report of the whole run: one table (or JSON), one
//! JUnit file, one exit code. The reports must be every shard of one run, or whole runs of
//! different scenarios: a shard missing or given twice, a (scenario, seed) pair in two reports,
//! or reports of different seed ranges are errors, never a smaller report that passes.
//! Not here: splitting a run (`shard.rs`), the renderings (`summary.rs`, `json.rs`, `junit.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::coverage::Coverage;
use super::json::CoverageDoc;
use super::shard::Shard;
use super::verdict::{Mismatch, ScenarioResults, SeedResult, SuiteReport, Verdict};
use crate::check::{Violation, registry::violation_source};

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The `run --json` reports to combine: every shard of one run (`--shard 1/N` to `N/N`).
    #[arg(required = true, value_name = "REPORTS")]
    pub reports: Vec<PathBuf>,
    /// Print the combined report as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the combined report as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// A `run --json` document, as far as merging needs it.
#[derive(Deserialize)]
struct Doc {
    seeds_asked: u64,
    seeds_planned: u64,
    check_determinism: bool,
    jobs: usize,
    elapsed_s: f64,
    #[serde(default)]
    shard: Option<String>,
    #[serde(default)]
    target: Option<serde_json::Value>,
    #[serde(default)]
    coverage: Option<CoverageDoc>,
    scenarios: Vec<ScenarioDoc>,
}

#[derive(Deserialize)]
struct ScenarioDoc {
    path: String,
    name: String,
    runs: Vec<RunDoc>,
}

#[derive(Deserialize)]
struct RunDoc {
    seed: u64,
    class: String,
    fingerprint: String,
    sim_time_us: u64,
    wall_time_s: f64,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    crash: Option<String>,
    #[serde(default)]
    mismatch: Option<Mismatch>,
    #[serde(default)]
    violations: Vec<ViolationDoc>,
    #[serde(default)]
    undecided: Vec<ViolationDoc>,
}

#[derive(Deserialize)]
struct ViolationDoc {
    checker: String,
    at_us: u64,
    message: String,
}

/// Reads the reports at `paths` and combines them; every problem is an `Err` naming its file.
pub fn merge_files(paths: &[PathBuf]) -> Result<SuiteReport, String> {
    let mut docs = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the report: {e}", path.display()))?;
        docs.push((path.as_path(), text));
    }
    merge(&docs)
}

/// Combines the reports (each with the file it came from, for errors).
pub fn merge(docs: &[(&Path, String)]) -> Result<SuiteReport, String> {
    let mut parsed = Vec::new();
    for (path, text) in docs {
        let doc: Doc = serde_json::from_str(text).map_err(|e| {
            format!(
                "{}: not a report of `mqtt-lab run --json`: {e}",
                path.display()
            )
        })?;
        if doc.target.is_some() {
            return Err(format!(
                "{}: a report of `run --target`: each shard of a target run judged its own broker, \
                 so its failures are rerun against it; read those reports apart",
                path.display()
            ));
        }
        parsed.push((*path, doc));
    }
    let Some((first_path, first)) = parsed.first() else {
        return Err("no report to merge".into());
    };
    for (path, doc) in &parsed {
        if doc.seeds_asked != first.seeds_asked || doc.check_determinism != first.check_determinism
        {
            return Err(format!(
                "{} and {}: not reports of one run ({} and {} seeds per scenario{})",
                first_path.display(),
                path.display(),
                first.seeds_asked,
                doc.seeds_asked,
                if doc.check_determinism != first.check_determinism {
                    "; one checked determinism, the other not"
                } else {
                    ""
                }
            ));
        }
    }
    check_shards(&parsed)?;

    let mut order: Vec<String> = Vec::new();
    let mut by_path: BTreeMap<String, ScenarioResults> = BTreeMap::new();
    let mut seen: BTreeMap<(String, u64), &Path> = BTreeMap::new();
    for (path, doc) in &parsed {
        for s in &doc.scenarios {
            let entry = by_path.entry(s.path.clone()).or_insert_with(|| {
                order.push(s.path.clone());
                ScenarioResults {
                    path: s.path.clone(),
                    name: s.name.clone(),
                    results: Vec::new(),
                }
            });
            for run in &s.runs {
                if let Some(other) = seen.insert((s.path.clone(), run.seed), path) {
                    return Err(format!(
                        "{} seed {} is in both {} and {}: merge the shards of one run, each once",
                        s.path,
                        run.seed,
                        other.display(),
                        path.display()
                    ));
                }
                entry
                    .results
                    .push(seed_result(run).map_err(|e| format!("{}: {e}", path.display()))?);
            }
        }
    }
    order.sort();
    let mut coverage: Option<Coverage> = None;
    for (path, doc) in &parsed {
        if let Some(c) = &doc.coverage {
            let c = c
                .coverage()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            coverage.get_or_insert_with(Coverage::default).merge(&c);
        }
    }
    let scenarios = order
        .into_iter()
        .filter_map(|p| by_path.remove(&p))
        .map(|mut s| {
            s.results.sort_by_key(|r| r.seed);
            s
        })
        .collect();
    Ok(SuiteReport {
        scenarios,
        seeds_asked: first.seeds_asked,
        check_determinism: first.check_determinism,
        // The shards ran side by side: the whole took as long as the longest.
        elapsed: parsed
            .iter()
            .map(|(_, d)| Duration::from_secs_f64(d.elapsed_s.max(0.0)))
            .max()
            .unwrap_or_default(),
        seeds_planned: parsed.iter().map(|(_, d)| d.seeds_planned).sum(),
        jobs: parsed.iter().map(|(_, d)| d.jobs).sum(),
        target: None,
        shard: None,
        coverage,
    })
}

/// Every report a shard of one run, each shard once, or none a shard.
fn check_shards(parsed: &[(&Path, Doc)]) -> Result<(), String> {
    let mut shards: BTreeMap<Shard, &Path> = BTreeMap::new();
    let mut whole = Vec::new();
    for (path, doc) in parsed {
        match &doc.shard {
            None => whole.push(*path),
            Some(text) => {
                let shard: Shard = text
                    .parse()
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if let Some(other) = shards.insert(shard, path) {
                    return Err(format!(
                        "shard {shard} given twice: {} and {}",
                        other.display(),
                        path.display()
                    ));
                }
            }
        }
    }
    if shards.is_empty() {
        return Ok(());
    }
    if let Some(path) = whole.first() {
        return Err(format!(
            "{} is a whole run, the others are shards: merge the shards of one run",
            path.display()
        ));
    }
    let counts: BTreeSet<u32> = shards.keys().map(|s| s.count).collect();
    if counts.len() > 1 {
        return Err(format!(
            "shards of different splits ({}): merge the shards of one run",
            shards
                .keys()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let count = *counts.first().expect("a shard");
    let missing: Vec<String> = (1..=count)
        .filter(|index| {
            !shards.contains_key(&Shard {
                index: *index,
                count,
            })
        })
        .map(|index| format!("{index}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "shard{} {} missing: the merged report would leave out part of the run",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ));
    }
    Ok(())
}

fn seed_result(run: &RunDoc) -> Result<SeedResult, String> {
    let verdict = match run.class.as_str() {
        "passed" => Verdict::Passed,
        "violated" => Verdict::Violated,
        "undecided" => Verdict::Undecided,
        "time_limit" => Verdict::TimeLimit,
        "crashed" => Verdict::Crashed(
            run.crash
                .clone()
                .or_else(|| run.detail.clone())
                .unwrap_or_else(|| "a crash without a message".into()),
        ),
        "nondeterministic" => {
            Verdict::Nondeterministic(run.mismatch.clone().ok_or_else(|| {
                format!("seed {}: nondeterministic without its mismatch", run.seed)
            })?)
        }
        other => return Err(format!("seed {}: unknown class `{other}`", run.seed)),
    };
    let violations = |list: &[ViolationDoc]| -> Result<Vec<Violation>, String> {
        list.iter()
            .map(|v| {
                Ok(Violation {
                    checker: violation_source(&v.checker).ok_or_else(|| {
                        format!("seed {}: unknown checker `{}`", run.seed, v.checker)
                    })?,
                    at_us: v.at_us,
                    message: v.message.clone(),
                })
            })
            .collect()
    };
    Ok(SeedResult {
        seed: run.seed,
        verdict,
        violations: violations(&run.violations)?,
        undecided: violations(&run.undecided)?,
        plan: String::new(),
        fingerprint: run.fingerprint.clone(),
        sim_time: Duration::from_micros(run.sim_time_us),
        wall_time: Duration::from_secs_f64(run.wall_time_s.max(0.0)),
        coverage: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::lab::json;
    use crate::cli::lab::summary::tests::report;

    fn split(report: &SuiteReport, count: u32) -> Vec<SuiteReport> {
        (1..=count)
            .map(|index| {
                let shard = Shard { index, count };
                let mut part = report.clone();
                part.shard = Some(shard);
                for s in &mut part.scenarios {
                    s.results
                        .retain(|r| r.seed % u64::from(count) == u64::from(index - 1));
                }
                part.scenarios.retain(|s| !s.results.is_empty());
                part.seeds_planned = part.seeds_run() as u64;
                part
            })
            .collect()
    }

    fn docs(parts: &[SuiteReport]) -> Vec<(PathBuf, String)> {
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| (PathBuf::from(format!("shard{i}.json")), json::render(p)))
            .collect()
    }

    fn merged(docs: &[(PathBuf, String)]) -> Result<SuiteReport, String> {
        let borrowed: Vec<(&Path, String)> =
            docs.iter().map(|(p, t)| (p.as_path(), t.clone())).collect();
        merge(&borrowed)
    }

    #[test]
    fn the_shards_of_a_run_merge_into_the_run() {
        let whole = report();
        let back = merged(&docs(&split(&whole, 3))).unwrap();
        assert_eq!(back.scenarios.len(), whole.scenarios.len());
        for (a, b) in back.scenarios.iter().zip(&whole.scenarios) {
            assert_eq!(a.path, b.path);
            assert_eq!(a.results.len(), b.results.len());
            for (x, y) in a.results.iter().zip(&b.results) {
                assert_eq!(
                    (x.seed, &x.verdict, &x.violations),
                    (y.seed, &y.verdict, &y.violations)
                );
                assert_eq!(x.fingerprint, y.fingerprint);
                assert_eq!(x.sim_time, y.sim_time);
            }
        }
        assert_eq!(back.exit_code(), whole.exit_code());
        assert_eq!(back.seeds_planned, whole.seeds_planned);
        assert!(!back.stopped_early());
        // What the table says of the merged run is what it says of the whole run.
        let table = |r: &SuiteReport| crate::cli::lab::summary::failures(r);
        assert_eq!(table(&back), table(&whole));
    }

    #[test]
    fn the_shards_coverage_adds_up() {
        let mut parts = split(&report(), 2);
        let mut one = vec![0; crate::cli::lab::coverage::BEHAVIOURS.len()];
        one[0] = 2;
        for p in &mut parts {
            let mut c = Coverage::default();
            c.add(&one);
            p.coverage = Some(c);
        }
        let back = merged(&docs(&parts)).unwrap();
        let c = back.coverage.expect("coverage merged");
        assert_eq!((c.seeds, c.times[0], c.seeds_with[0]), (2, 4, 2));
        let mut whole = report();
        whole.coverage = parts[0].coverage.clone();
        let text = json::render(&whole).replace("\"session_resumed\"", "\"made_up\"");
        let err = merged(&[(PathBuf::from("c.json"), text)]).unwrap_err();
        assert!(err.contains("unknown behaviour `made_up`"), "{err}");
    }

    #[test]
    fn a_missing_or_repeated_shard_or_pair_is_an_error() {
        let parts = docs(&split(&report(), 3));
        let err = merged(&parts[..2]).unwrap_err();
        assert!(err.contains("shard 3/3 missing"), "{err}");
        let twice = [parts.clone(), vec![parts[1].clone()]].concat();
        let err = merged(&twice).unwrap_err();
        assert!(err.contains("shard 2/3 given twice"), "{err}");
        let whole = docs(&[report()]);
        let err = merged(&[whole[0].clone(), whole[0].clone()]).unwrap_err();
        assert!(err.contains("seed 1 is in both"), "{err}");
        let err = merged(&[(PathBuf::from("x.json"), "{}".into())]).unwrap_err();
        assert!(err.starts_with("x.json: not a report"), "{err}");
    }

    #[test]
    fn reports_of_different_seed_ranges_do_not_merge() {
        let mut other = report();
        other.seeds_asked = 5;
        for s in &mut other.scenarios {
            s.path.push_str(".other");
        }
        let err = merged(&docs(&[report(), other])).unwrap_err();
        assert!(
            err.contains("not reports of one run (4 and 5 seeds"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_checker_is_an_error_not_a_dropped_violation() {
        let text = json::render(&report()).replace("\"delivery\"", "\"made-up\"");
        let err = merged(&[(PathBuf::from("a.json"), text)]).unwrap_err();
        assert!(err.contains("unknown checker `made-up`"), "{err}");
    }
}
