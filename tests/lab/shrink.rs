//! Shrinking failing seeds: for bugs planted in the broker (`planted.rs`), the first seed of a
//! library scenario on which the named checker reports the bug is shrunk with the planted
//! broker, and the shrunk file must still fail on that seed with that checker and be strictly
//! smaller (fewer clients, faults or messages, or a shorter run, and larger on none).
//!
//! docs/lab.md ("Shrinking a failing seed") lists the figures these tests print.

use crate::planted::{self, Bug};

use std::ops::RangeInclusive;
use std::path::Path;

use mqtt_lab::cli::lab::shrink::{self, Size};
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

    let shrunk = shrink::shrink(&text, relative, seed, BUDGET, |s, seed| {
        run_seed(s, seed, &opts)
    })
    .unwrap_or_else(|e| panic!("{bug:?} on {relative} seed {seed}: {e}"));

    let small = Scenario::from_str(&shrunk.text, "shrunk.toml")
        .unwrap_or_else(|e| panic!("the shrunk file is invalid: {e}\n{}", shrunk.text));
    let again = run_seed(&small, seed, &opts);
    assert_eq!(again.status, RunStatus::Completed, "{}", shrunk.text);
    assert!(
        again.violations.iter().any(|v| v.checker == checker),
        "{bug:?} on {relative} seed {seed}: the shrunk file no longer fails with {checker}: {:#?}\n{}",
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
    let again = shrink::shrink(&text, relative, seed, BUDGET, |s, seed| {
        run_seed(s, seed, &opts)
    })
    .unwrap();
    assert_eq!(again.text, shrunk.text, "same input, same file");
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

#[test]
fn qos2_forwarded_twice_shrinks() {
    shrinks(
        Bug::Qos2ForwardedTwice,
        "04-qos2/01-qos2-exactly-once-under-cuts.toml",
        1..=2,
        "delivery",
    );
}

#[test]
fn qos1_dropped_after_reconnect_shrinks() {
    shrinks(
        Bug::Qos1DroppedAfterReconnect,
        "03-qos1/01-qos1-under-cuts.toml",
        1..=2,
        "delivery",
    );
}

#[test]
fn will_after_disconnect_shrinks() {
    shrinks(
        Bug::WillAfterDisconnect,
        "05-will/04-no-will-after-disconnect.toml",
        1..=2,
        "will",
    );
}

#[test]
fn reordered_shrinks() {
    shrinks(
        Bug::Reordered,
        "11-swarm/01-swarm-qos1-v311.toml",
        1..=3,
        "ordering",
    );
}

#[test]
fn retained_not_cleared_shrinks() {
    shrinks(
        Bug::RetainedNotCleared,
        "06-retained/02-retained-clear.toml",
        1..=2,
        "retained",
    );
}

#[test]
fn shared_to_all_shrinks() {
    shrinks(
        Bug::SharedToAll,
        "12-mqtt5/01-shared-two-members-under-cuts.toml",
        1..=2,
        "shared",
    );
}

#[test]
fn session_forgotten_shrinks() {
    shrinks(
        Bug::SessionForgotten,
        "07-session/03-broker-restart-durable.toml",
        1..=2,
        "session",
    );
}

#[test]
fn no_will_after_crash_shrinks() {
    shrinks(
        Bug::NoWillAfterCrash,
        "05-will/01-will-on-crash.toml",
        1..=2,
        mqtt_lab::check::expect::NAME,
    );
}
