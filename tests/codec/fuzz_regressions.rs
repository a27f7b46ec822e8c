//! Replays every kept fuzz input (fuzz/regressions/<target>/) and every seed
//! (fuzz/seeds/<target>/) through the fuzz entry points, so a crash once found stays fixed.

use std::path::Path;

use mqtt_lab::codec::fuzz;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 7] = [
    ("decode_v311", fuzz::decode_v311),
    ("decode_v5", fuzz::decode_v5),
    ("decode_bytes", fuzz::decode_bytes),
    ("framer_chunks", fuzz::framer_chunks),
    ("round_trip", fuzz::round_trip),
    ("broker_core", mqtt_lab::broker::fuzz::broker_core),
    ("client_core", mqtt_lab::client::fuzz::client_core),
];

/// Runs every file of `dir/<target>/` through its target; returns how many ran.
fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let mut count = 0;
    for (name, target) in TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.expect("readable entry").path()).collect();
        files.sort();
        for file in files {
            if file
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let data = std::fs::read(&file).expect("readable input");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} fails on {}", file.display());
            count += 1;
        }
    }
    count
}

#[test]
fn regressions_replay() {
    let n = replay("regressions");
    assert!(n >= 1, "the kept crash inputs are found");
}

#[test]
fn seeds_replay() {
    let n = replay("seeds");
    assert!(n >= 40, "the seed corpus is found ({n} files)");
}
