//! The lab as a test command for mutation testing (`scripts/mutants.sh`): every library
//! scenario over a few seeds, all checkers and expectations the scenario names, nothing else.
//! Ignored in the normal test run (the library runs in full under `cargo lab`); a mutant of the
//! broker or client core that this test does not fail survived the lab.
//!
//! `MQTT_LAB_MUTANT_SEEDS` sets how many seeds per scenario (default 2, from seed 1; a
//! scenario's `max_seeds` caps it). The first failing seed ends the run.

use std::path::{Path, PathBuf};

use mqtt_lab::scenario::Scenario;
use mqtt_lab::sim::{RunOptions, run_seed};

fn library_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            library_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "toml") {
            out.push(p);
        }
    }
}

#[test]
#[ignore = "mutation testing's test command: scripts/mutants.sh"]
fn the_library_passes_its_first_seeds() {
    let seeds: u64 = std::env::var("MQTT_LAB_MUTANT_SEEDS")
        .ok()
        .map(|s| s.parse().expect("MQTT_LAB_MUTANT_SEEDS: a whole number"))
        .unwrap_or(2);
    let mut files = Vec::new();
    library_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"),
        &mut files,
    );
    assert!(files.len() > 50, "the library is missing: {files:?}");
    for path in files {
        let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let n = s.max_seeds.map_or(seeds, |m| m.get().min(seeds));
        for seed in 1..=n {
            let out = run_seed(&s, seed, &RunOptions::default());
            assert!(
                out.passed(),
                "{} seed {seed}: {:#?}",
                path.display(),
                out.violations
            );
        }
    }
}
