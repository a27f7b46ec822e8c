//! Every file of the scenario library loads, validates, tells its story in a comment at the
//! top, and plans deterministically.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mqtt_lab::scenario::{FaultSource, Scenario};

fn library_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Every `.toml` file under `dir`, sorted.
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn library() -> Vec<(PathBuf, Scenario)> {
    toml_files(&library_root())
        .into_iter()
        .map(|p| {
            let s = Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
            (p, s)
        })
        .collect()
}

#[test]
fn every_library_file_loads_and_validates() {
    let all = library();
    assert!(all.len() >= 20, "only {} scenarios", all.len());
    for (path, s) in &all {
        assert_eq!(s.origin(), path.display().to_string());
        assert!(!s.expect.checkers.is_empty());
    }
}

#[test]
fn every_area_folder_is_numbered_and_present() {
    let areas: BTreeSet<String> = toml_files(&library_root())
        .iter()
        .map(|p| {
            p.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let expected = [
        "01-connect",
        "02-qos0",
        "03-qos1",
        "04-qos2",
        "05-will",
        "06-retained",
        "07-session",
        "08-keepalive",
        "09-takeover",
        "10-broker-restart",
        "11-swarm",
        "12-mqtt5",
        "13-auth",
        "14-limits",
        "15-adversarial",
        "16-misses",
        "17-traps",
        "18-disk",
        "19-figures",
    ];
    assert_eq!(areas, expected.iter().map(|s| s.to_string()).collect());
}

#[test]
fn every_file_tells_its_story_in_a_comment_at_the_top() {
    for path in toml_files(&library_root()) {
        let text = std::fs::read_to_string(&path).unwrap();
        let story: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
        assert!(
            story.len() >= 2,
            "{}: start with a comment of at least two lines telling the story",
            path.display()
        );
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            name.as_bytes()[..2].iter().all(u8::is_ascii_digit) && name.as_bytes()[2] == b'-',
            "{name}: file names start with a two-digit number"
        );
    }
}

#[test]
fn scenario_names_are_unique() {
    let mut seen = BTreeSet::new();
    for (path, s) in library() {
        assert!(
            seen.insert(s.name.clone()),
            "{}: name {:?} used twice",
            path.display(),
            s.name
        );
    }
}

#[test]
fn library_plans_are_deterministic_and_inside_the_faults_phase() {
    for (path, s) in library() {
        for seed in [1, 2, 3, 1000] {
            let plan = s.plan(seed);
            assert_eq!(plan, s.plan(seed), "{}", path.display());
            assert_eq!(plan.describe(), s.plan(seed).describe());
            for f in &plan.faults {
                assert!(f.at < s.faults_until(), "{}: {f}", path.display());
                if let Some(heal) = f.heals_at() {
                    assert!(heal <= s.faults_until(), "{}: {f}", path.display());
                }
            }
        }
    }
}

#[test]
fn swarm_scenarios_draw_different_fault_mixes_per_seed() {
    let swarm: Vec<_> = library()
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains("11-swarm"))
        .collect();
    assert!(swarm.len() >= 3);
    for (path, s) in swarm {
        assert!(
            s.random.is_some(),
            "{}: a swarm scenario needs [random]",
            path.display()
        );
        let mixes: BTreeSet<String> = (0..8)
            .map(|seed| {
                let plan = s.plan(seed);
                plan.faults
                    .iter()
                    .filter(|f| f.source == FaultSource::Random)
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect();
        assert!(
            mixes.len() >= 6,
            "{}: only {} distinct mixes in 8 seeds",
            path.display(),
            mixes.len()
        );
    }
}

#[test]
fn the_readme_example_is_a_valid_scenario() {
    let readme = std::fs::read_to_string(library_root().join("README.md")).unwrap();
    let start = readme
        .find("```toml\n")
        .expect("README has a ```toml example")
        + 8;
    let end = start + readme[start..].find("```").unwrap();
    let s = Scenario::from_str(&readme[start..end], "scenarios/README.md")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !s.faults.is_empty() && s.random.is_some(),
        "the example shows scripted and random faults"
    );
}
