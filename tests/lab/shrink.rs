//! Shrinking failing seeds: for every bug planted in the broker (`planted.rs`), the first
//! scenario proving it (`planted_bugs.rs`) is shrunk with the planted broker on the first seed
//! where the named checker reports the bug. The shrunk file must still fail on that seed with
//! that checker and be strictly smaller (fewer clients, faults or messages, or a shorter run,
//! and larger on none), and the command must write the same file again.
//!
//! docs/lab.md ("Shrinking a failing seed") lists the figures these tests print.

use crate::planted::{self, Bug};
use crate::planted_bugs::CASES;

use std::ops::RangeInclusive;
use std::path::Path;

use mqtt_lab::cli::lab::shrink::{self, Settings, ShrinkArgs, Size};
use mqtt_lab::scenario::Scenario;
use mqtt_lab::sim::{RunOptions, RunStatus, run_seed};

/// Candidate runs per shrink: enough for these scenarios to reach their fixpoint.
const BUDGET: usize = 400;

fn options(bug: Bug) -> RunOptions {
    RunOptions {
        broker: planted::factory(bug),
        ..RunOptions::default()
    }
}

/// Shrinks `relative` on the first seed of `seeds` where `checker` catches `bug`, checks the
/// result, and prints a row of the table in docs/lab.md.
fn shrinks(bug: Bug, relative: &str, seeds: RangeInclusive<u64>, checker: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    let original = Scenario::from_str(&text, relative).unwrap_or_else(|e| panic!("{e}"));
    let opts = options(bug);
    let seed = seeds
        .clone()
        .find(|&seed| {
            let out = run_seed(&original, seed, &opts);
            out.violations.iter().any(|v| v.checker == checker)
        })
        .unwrap_or_else(|| panic!("{bug:?}: {checker} catches nothing on {relative} {seeds:?}"));

    let settings = Settings {
        max_runs: BUDGET,
        checker: Some(checker.to_string()),
    };
    let shrunk = shrink::shrink(&text, relative, seed, &settings, |s, seed| {
        run_seed(s, seed, &opts)
    })
    .unwrap_or_else(|e| panic!("{bug:?} on {relative} seed {seed}: {e}"));

    let small = Scenario::from_str(&shrunk.text, "shrunk.toml")
        .unwrap_or_else(|e| panic!("the shrunk file is invalid: {e}\n{}", shrunk.text));
    let again = run_seed(&small, seed, &opts);
    assert_eq!(again.status, RunStatus::Completed, "{}", shrunk.text);
    assert!(
        again.violations.iter().any(|v| v.checker == checker),
        "{bug:?} on {relative} seed {seed}: the shrunk file no longer fails with {checker}: \
         {:#?}\n{}",
        again.violations,
        shrunk.text
    );
    assert_eq!(Size::of(&small, seed), shrunk.after);
    assert!(
        shrunk.after.smaller_than(&shrunk.before),
        "{bug:?} on {relative}: {} is not smaller than {}",
        shrunk.after,
        shrunk.before
    );
    // The command: same input, same file, and the report ends with the replay line.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shrunk.toml");
    let args = ShrinkArgs {
        scenario: path.clone(),
        seed,
        out: Some(out.clone()),
        max_runs: BUDGET,
        checker: Some(checker.to_string()),
    };
    let mut report = Vec::new();
    let code = shrink::shrink_with(&args, |s, seed| run_seed(s, seed, &opts), &mut report)
        .unwrap_or_else(|e| panic!("{e}"));
    let report = String::from_utf8(report).unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        shrunk.text.replace(relative, &path.display().to_string()),
        "same input, same file"
    );
    assert!(
        report.ends_with(&format!(
            "replay: cargo sim-run replay {} --seed {seed}\n",
            out.display()
        )),
        "{report}"
    );
    if std::env::var_os("SHRINK_REPORT").is_some() {
        eprintln!("{report}");
    }
    let figures = |s: &Size| {
        format!(
            "{}/{}/{}/{}",
            s.clients,
            s.faults,
            s.messages,
            mqtt_lab::config::duration::format_duration(s.duration)
        )
    };
    eprintln!(
        "| {bug:?} | `{relative}` seed {seed} | {checker} | {} → {} | {} |",
        figures(&shrunk.before),
        figures(&shrunk.after),
        shrunk.runs
    );
}

/// The first scenario proving each planted bug (`planted_bugs.rs`), shrunk on its first
/// failing seed.
#[test]
fn the_first_proof_of_every_planted_bug_shrinks() {
    for bug in Bug::ALL {
        let case = CASES
            .iter()
            .find(|c| c.bug == bug)
            .unwrap_or_else(|| panic!("no scenario proves {bug:?}"));
        shrinks(bug, case.scenario, case.seeds.clone(), case.checker);
    }
}
