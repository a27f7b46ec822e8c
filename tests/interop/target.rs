//! `mqtt-lab run --target`: scenarios judged against a real broker on loopback, every client
//! behind a fault proxy, in real time. Our broker passes a story with cuts, a partition and a
//! client crash; the same broker set up to break the story's guarantee (a queue of two messages
//! for a persistent subscriber that is away) fails it; what a target run cannot do is skipped
//! with its reason.

use std::net::SocketAddr;
use std::process::Command;

use mqtt_lab::broker::{Broker, BrokerConfig};
use mqtt_lab::check::CheckConfig;
use mqtt_lab::scenario::Scenario;
use mqtt_lab::sim::RunStatus;
use mqtt_lab::target;
use mqtt_lab::trace::Event;

use crate::support::OurBroker;

/// Persistent QoS 1 subscribers, a QoS 1 publisher, and every fault a target run applies: a cut,
/// a one-way partition, the monitor crashed and away for 3 s (about 50 messages wait in its
/// session), a black hole and split writes. Nine seconds of real time.
const STORY: &str = r#"
name = "target: qos1 through cuts, partitions and a crash"
protocol = "5.0"
duration = "9s"
faults_until = "5s"

[[client]]
id = "monitor"
clean_start = false
session_expiry = "10m"
keep_alive = "2s"
subscribe = [{ filter = "line/#", qos = 1 }]

[[client]]
id = "panel"
protocol = "3.1.1"
clean_session = false
keep_alive = "2s"
subscribe = [{ filter = "line/+", qos = 1 }]

[[client]]
id = "sensor"
keep_alive = "2s"
connect_at = "300ms"

[[workload]]
client = "sensor"
topic = "line/1"
qos = 1
count = 60
every = "60ms"

[[fault]]
at = "500ms"
cut = "sensor"

[[fault]]
at = "1s"
partition = { between = ["panel", "broker"], oneway = true, for = "700ms" }

[[fault]]
at = "1200ms"
crash = "monitor"
restart_after = "3s"

[[fault]]
at = "2500ms"
blackhole = { client = "panel", for = "600ms" }

[[fault]]
at = "3500ms"
split_writes = { client = "panel", max_fragment = 3, for = "1s" }

[expect]
checkers = ["delivery", "ordering", "session", "integrity", "handshake"]
no_loss = ["qos1"]
"#;

fn story() -> Scenario {
    Scenario::from_str(STORY, "target-story.toml").unwrap()
}

fn addr(broker: &OurBroker) -> SocketAddr {
    ([127, 0, 0, 1], broker.port).into()
}

#[test]
fn our_broker_passes_a_story_with_every_fault_a_target_run_applies() {
    let broker = OurBroker::start();
    let s = story();
    assert_eq!(target::unsupported(&s), None);
    let out = target::run_seed(&s, 1, addr(&broker), &CheckConfig::default());
    assert_eq!(out.status, RunStatus::Completed);
    assert!(out.violations.is_empty(), "{:#?}", out.violations);
    let events: Vec<&Event> = out.trace.events.iter().map(|e| &e.event).collect();
    let faults = events
        .iter()
        .filter(|e| matches!(e, Event::FaultApplied { .. }))
        .count();
    assert_eq!(faults, 5, "every fault was applied");
    let acked = events
        .iter()
        .filter(|e| matches!(e, Event::PublishAcked { .. }))
        .count();
    let delivered = events
        .iter()
        .filter(|e| matches!(e, Event::Delivered { client, .. } if client == "monitor"))
        .count();
    assert!(
        acked >= 50,
        "the sensor's messages were acknowledged: {acked}"
    );
    assert!(
        delivered >= acked,
        "the monitor got them: {delivered} of {acked}"
    );
    assert!(
        events.iter().any(|e| matches!(e, Event::RunEnded)),
        "the trace is whole"
    );
    // The queue bound is required of the target; its inflight window is its own.
    assert!(matches!(
        events[0],
        Event::RunStarted {
            max_queued_messages: Some(1000),
            max_inflight: None,
            ..
        }
    ));
}

#[test]
fn a_broker_that_drops_an_away_subscribers_messages_fails_the_story() {
    let broker = OurBroker::start_with(|| {
        Broker::new(BrokerConfig {
            max_queued_messages: 2,
            ..BrokerConfig::default()
        })
    });
    let out = target::run_seed(&story(), 1, addr(&broker), &CheckConfig::default());
    assert_eq!(out.status, RunStatus::Completed);
    assert!(
        out.violations
            .iter()
            .any(|v| v.message.contains("never reached monitor")),
        "{:#?}",
        out.violations
    );
}

#[test]
fn the_command_runs_a_target_and_skips_what_it_cannot_do_with_the_reason() {
    let broker = OurBroker::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("01-story.toml"), STORY).unwrap();
    let crashing = STORY
        .replace("name = \"target:", "name = \"target with a broker crash:")
        .replace(
            "[expect]",
            "[[fault]]\nat = \"4s\"\ncrash_broker = { restart_after = \"500ms\" }\n\n[expect]",
        );
    std::fs::write(dir.path().join("02-broker-crash.toml"), crashing).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-lab"))
        .arg("run")
        .arg(dir.path())
        .args(["--seeds", "1", "--no-progress", "--target"])
        .arg(format!("127.0.0.1:{}", broker.port))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("all 1 seeds passed"), "{stdout}");
    assert!(
        stderr.contains("skipped")
            && stderr.contains("02-broker-crash.toml")
            && stderr.contains("broker crashes"),
        "{stderr}"
    );
    assert!(stderr.contains("not bit-reproducible"), "{stderr}");

    let bad = Command::new(env!("CARGO_BIN_EXE_mqtt-lab"))
        .arg("run")
        .arg(dir.path())
        .args(["--target", "not an address"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--target not an address"));
}
