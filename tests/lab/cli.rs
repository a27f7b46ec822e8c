//! The lab's command line on the real simulated world: a smoke subset of the scenario library
//! over fixed seeds (`run` passes, `--check-determinism` agrees), snapshots of `replay` output,
//! byte-identical replays, and a planted failure that must exit 1 and print its replay line.
//! The commands' functions are called directly (`run_with`, `replay_with` with `lab::world`).

use std::path::{Path, PathBuf};

use mqtt_lab::cli::lab::{self, ReplayArgs, RunArgs};
use mqtt_lab::cli::{EXIT_CRASH, EXIT_OK, EXIT_VIOLATION};

/// The smoke subset: small, fast scenarios covering QoS, wills, retained, sessions and the
/// broker's disk.
const SMOKE: &[&str] = &[
    "scenarios/01-connect/01-connect-and-publish.toml",
    "scenarios/03-qos1/01-qos1-under-cuts.toml",
    "scenarios/05-will/03-will-on-cut.toml",
    "scenarios/06-retained/02-retained-clear.toml",
    "scenarios/07-session/03-broker-restart-durable.toml",
    "scenarios/18-disk/01-sync-errors-v311-and-v5.toml",
    "scenarios/18-disk/02-disk-full-v5.toml",
    "scenarios/18-disk/03-crashes-in-the-middle-of-syncs.toml",
];

/// Replays with a snapshot: (scenario, seed).
const SNAPSHOTS: &[(&str, u64)] = &[
    ("scenarios/01-connect/01-connect-and-publish.toml", 1),
    ("scenarios/05-will/03-will-on-cut.toml", 7),
];

fn run_args(paths: &[PathBuf], seeds: &str) -> RunArgs {
    RunArgs {
        paths: paths.to_vec(),
        seeds: seeds.parse().unwrap(),
        jobs: Some(2),
        junit: None,
        json: false,
        check_determinism: false,
        fail_fast: false,
        no_progress: true,
        shard: None,
        coverage: false,
        html_dir: None,
        target: Default::default(),
    }
}

fn replay_args(path: &Path, seed: u64) -> ReplayArgs {
    ReplayArgs {
        scenario: path.to_path_buf(),
        seed,
        trace: None,
        timeline: true,
        no_timeline: false,
        html: None,
    }
}

fn replay(args: &ReplayArgs) -> (i32, String) {
    let mut out = Vec::new();
    let code = lab::replay_with(args, lab::world, &mut out).unwrap();
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn the_smoke_subset_passes_over_fixed_seeds() {
    let paths: Vec<PathBuf> = SMOKE.iter().map(PathBuf::from).collect();
    let mut out = Vec::new();
    let code = lab::run_with(&run_args(&paths, "1..4"), lab::world, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(code, EXIT_OK, "{text}");
    assert!(text.contains("all 32 seeds passed"), "{text}");
    for path in SMOKE {
        let name = mqtt_lab::scenario::Scenario::load(path).unwrap().name;
        let prefix: String = name.chars().take(30).collect();
        let row = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no row for {name}:\n{text}"));
        // seeds, passed, failed
        assert!(row.contains("     4       4       0  "), "{row}");
    }
}

#[test]
fn check_determinism_finds_every_smoke_seed_repeatable() {
    let paths: Vec<PathBuf> = SMOKE.iter().map(PathBuf::from).collect();
    let mut args = run_args(&paths, "11..12");
    args.check_determinism = true;
    args.json = true;
    let mut out = Vec::new();
    let code = lab::run_with(&args, lab::world, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(code, EXIT_OK, "{v:#}");
    assert_eq!(v["seeds_run"], SMOKE.len() * 2);
    assert_eq!(v["check_determinism"], true);
}

#[test]
fn replay_output_is_byte_identical_across_runs() {
    for (path, seed) in SNAPSHOTS {
        let args = replay_args(Path::new(path), *seed);
        let first = replay(&args);
        let second = replay(&args);
        assert_eq!(first, second, "{path} seed {seed}");
        assert_eq!(first.0, EXIT_OK, "{}", first.1);
    }
}

#[test]
fn replay_snapshots() {
    for (path, seed) in SNAPSHOTS {
        let (_, text) = replay(&replay_args(Path::new(path), *seed));
        let name = Path::new(path).file_stem().unwrap().to_str().unwrap();
        insta::assert_snapshot!(format!("replay_{name}_seed_{seed}"), text);
    }
}

#[test]
fn replay_writes_the_trace_whose_hash_it_prints() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("trace.jsonl");
    let mut args = replay_args(Path::new(SNAPSHOTS[1].0), SNAPSHOTS[1].1);
    args.trace = Some(trace.clone());
    args.no_timeline = true;
    let (_, text) = replay(&args);
    assert!(!text.contains("timeline ("), "{text}");
    let jsonl = std::fs::read_to_string(&trace).unwrap();
    let parsed = mqtt_lab::trace::Trace::from_jsonl(&jsonl).unwrap();
    assert!(parsed.events.len() > 10);
    assert!(
        text.contains(&format!("fingerprint {}\n", parsed.fingerprint())),
        "{text}"
    );
}

/// A scenario whose expectation cannot hold: the sensor never subscribes, yet it is expected
/// to receive the readings. Every seed fails with exit code 1 and names its replay.
#[test]
fn a_planted_failure_exits_1_and_prints_the_line_that_replays_it() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(SMOKE[0]).unwrap().replace(
        r#"receives = [{ client = "monitor", filter = "sensors/#", at_least = 20 }]"#,
        r#"receives = [{ client = "sensor-1", filter = "sensors/#", at_least = 20 }]"#,
    );
    assert!(text.contains(r#"client = "sensor-1", filter"#));
    let file = tmp.path().join("planted.toml");
    std::fs::write(&file, text).unwrap();
    let junit = tmp.path().join("junit.xml");
    let mut args = run_args(std::slice::from_ref(&file), "3..4");
    args.junit = Some(junit.clone());
    let mut out = Vec::new();
    let code = lab::run_with(&args, lab::world, &mut out).unwrap();
    let report = String::from_utf8(out).unwrap();
    assert_eq!(code, EXIT_VIOLATION, "{report}");
    let path = file.display().to_string();
    for seed in [3, 4] {
        assert!(
            report.contains(&format!(
                "  replay: cargo sim-run replay {path} --seed {seed}\n"
            )),
            "{report}"
        );
    }
    assert!(report.contains("[expect]"), "{report}");
    assert!(
        report.contains("2 of 2 seeds failed (exit code 1)"),
        "{report}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(
        xml.matches("<failure type=\"violated\"").count(),
        2,
        "{xml}"
    );

    // The replay of that seed fails the same way, twice the same.
    let (code, first) = replay(&replay_args(&file, 4));
    assert_eq!(code, EXIT_VIOLATION, "{first}");
    assert!(first.contains("[expect]"), "{first}");
    assert!(first.ends_with(&format!("replay: cargo sim-run replay {path} --seed 4\n")));
    assert_eq!(replay(&replay_args(&file, 4)).1, first);
}

/// Exit code 3, whatever else failed: a seed whose world panicked (our own bug), one that hit
/// its time limit, and one whose two runs differ under `--check-determinism`, each reported
/// with its class and replay line, in the table, the JSON and the exit code.
#[test]
fn crashes_time_limits_and_nondeterminism_exit_3_with_their_replay() {
    use mqtt_lab::scenario::Scenario;
    use mqtt_lab::sim::RunStatus;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    let path = PathBuf::from(SMOKE[0]);
    let runs = Mutex::new(BTreeMap::<u64, u32>::new());
    let world = |s: &Scenario, seed: u64| {
        let n = {
            let mut runs = runs.lock().unwrap();
            let n = runs.entry(seed).or_default();
            *n += 1;
            *n
        };
        assert!(seed != 2, "a planted crash in seed 2");
        let mut o = lab::world(s, seed);
        if seed == 3 {
            o.status = RunStatus::TimeLimit;
        }
        if seed == 4 && n == 2 {
            o.trace.events.pop();
        }
        o
    };
    let mut args = run_args(std::slice::from_ref(&path), "1..4");
    args.check_determinism = true;
    let mut out = Vec::new();
    let code = lab::run_with(&args, world, &mut out).unwrap();
    let report = String::from_utf8(out).unwrap();
    assert_eq!(code, EXIT_CRASH, "{report}");
    for (seed, class) in [
        (2, "crashed: a planted crash in seed 2"),
        (3, "hit its time limit"),
        (4, "nondeterministic: two runs differ from trace line"),
    ] {
        assert!(
            report.contains(&format!("seed {seed}: {class}")),
            "seed {seed}: {report}"
        );
        assert!(
            report.contains(&format!(
                "  replay: cargo sim-run replay {} --seed {seed}\n",
                SMOKE[0]
            )),
            "{report}"
        );
    }
    assert!(
        report.contains("3 of 4 seeds failed (exit code 3)"),
        "{report}"
    );
    // Without the time limit and the crash, the nondeterministic seed alone still exits 3.
    args.seeds = "4".parse().unwrap();
    runs.lock().unwrap().clear();
    let code = lab::run_with(&args, world, &mut Vec::new()).unwrap();
    assert_eq!(code, EXIT_CRASH);
}
