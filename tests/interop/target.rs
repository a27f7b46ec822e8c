//! `mqtt-lab run --target`: scenarios judged against a real broker on loopback, every client
//! behind a fault proxy, in real time. Our broker passes a story with cuts, a partition and a
//! client crash, under a name prefix; the same broker set up to break the story's guarantee (a
//! queue of two messages for a persistent subscriber that is away) fails it; four runs of the
//! same client identifiers share one broker at once; a durable `mqtt-lab broker` process
//! killed and started again by the user's commands keeps every acknowledged message; what a
//! target run cannot do is skipped with its reason.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use mqtt_lab::broker::{Broker, BrokerConfig};
use mqtt_lab::check::CheckConfig;
use mqtt_lab::scenario::{Scenario, TimeScale};
use mqtt_lab::sim::{RunOutcome, RunStatus};
use mqtt_lab::target::{self, BrokerCommands, Names, Target};
use mqtt_lab::trace::Event;

use crate::support::OurBroker;

const ONE: TimeScale = TimeScale::ONE;

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

/// Runs `seed` of `s` against `t` and asserts the run completed with nothing broken.
fn passes(s: &Scenario, seed: u64, t: &Target, names: &Names, scale: TimeScale) -> RunOutcome {
    let out = target::run_seed(s, seed, t, names, scale, &CheckConfig::default());
    assert_eq!(out.status, RunStatus::Completed, "seed {seed}");
    assert!(
        out.violations.is_empty(),
        "seed {seed}: {:#?}",
        out.violations
    );
    out
}

fn target_of(broker: &OurBroker) -> Target {
    Target {
        addr: addr(broker),
        broker: BrokerCommands::default(),
    }
}

/// The story with a broker crash and restart in its middle, against a durable broker.
fn crashing_story() -> String {
    STORY
        .replace("name = \"target:", "name = \"target with a broker crash:")
        .replace(
            "[expect]",
            "[[fault]]\nat = \"4s\"\ncrash_broker = { restart_after = \"500ms\" }\n\n\
             [broker]\npersistence = \"durable\"\n\n[expect]",
        )
}

#[test]
fn our_broker_passes_a_story_with_every_fault_a_target_run_applies() {
    let broker = OurBroker::start();
    let s = story();
    let t = target_of(&broker);
    assert_eq!(target::unsupported(&s, &t), None);
    assert_eq!(target::needs_broker_alone(&s), None);
    let out = passes(&s, 1, &t, &Names::tagged("t1"), ONE);
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
    // The clients used prefixed names on the wire; the trace has the scenario's own.
    assert!(events.iter().all(|e| match e {
        Event::Delivered { topic, .. } => topic == "line/1",
        Event::SubscribeRequested { filter, .. } => filter == "line/#" || filter == "line/+",
        _ => true,
    }));
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
fn loss_and_latency_reach_a_target_as_tcp_shows_them_and_our_broker_keeps_its_guarantees() {
    let broker = OurBroker::start();
    let lossy = STORY.replace(
        "[expect]",
        "[network]\nlatency = [\"5ms\", \"20ms\"]\n\n[random]\nswarm = false\nloss = [0.05, 0.05]\n\n[expect]",
    );
    let s = Scenario::from_str(&lossy, "lossy.toml").unwrap();
    let t = target_of(&broker);
    assert_eq!(
        target::unsupported(&s, &t),
        None,
        "loss runs against a target"
    );
    let out = passes(&s, 3, &t, &Names::tagged("lossy"), ONE);
    assert_eq!(out.plan.loss, 0.05);
    // Every chunk waits at least 5 ms each way: no CONNACK comes sooner after its CONNECT.
    let mut connecting = std::collections::BTreeMap::new();
    for e in &out.trace.events {
        match &e.event {
            Event::Connecting { client, .. } => {
                connecting.insert(client.clone(), e.at_us);
            }
            Event::Connected { client, .. } => {
                let rtt = e.at_us - connecting[client];
                assert!(
                    rtt >= 10_000,
                    "{client} connected {rtt} us after its CONNECT"
                );
            }
            _ => {}
        }
    }
}

#[test]
fn a_broker_that_drops_an_away_subscribers_messages_fails_the_story() {
    let broker = OurBroker::start_with(|| {
        Broker::new(BrokerConfig {
            max_queued_messages: 2,
            ..BrokerConfig::default()
        })
    });
    let out = target::run_seed(
        &story(),
        1,
        &target_of(&broker),
        &Names::default(),
        ONE,
        &CheckConfig::default(),
    );
    assert_eq!(out.status, RunStatus::Completed);
    assert!(
        out.violations
            .iter()
            .any(|v| v.message.contains("never reached monitor")),
        "{:#?}",
        out.violations
    );

    // The command reports it with the target's identity, the rerun command and the files the
    // failing run left, which hold its trace and timeline.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("story.toml");
    std::fs::write(&file, STORY).unwrap();
    let failures = dir.path().join("failures");
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-lab"))
        .arg("run")
        .arg(&file)
        .args(["--seeds", "1", "--no-progress", "--json", "--target"])
        .arg(format!("127.0.0.1:{}", broker.port))
        .arg("--failures-dir")
        .arg(&failures)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &doc["target"];
    assert_eq!(t["address"], format!("127.0.0.1:{}", broker.port));
    let identity = t["identity"].as_str().unwrap();
    assert!(
        identity.contains("3.1.1 accepted; 5.0 accepted") && identity.contains("receive maximum"),
        "{identity}"
    );
    let run = &doc["scenarios"][0]["runs"][0];
    assert_eq!(run["class"], "violated");
    let plan = run["plan"].as_str().unwrap();
    assert!(
        plan.starts_with("seed 1: target:") && plan.contains("partition panel"),
        "the failing run's plan: {plan}"
    );
    assert!(
        run["replay"]
            .as_str()
            .unwrap()
            .contains("--target 127.0.0.1:")
    );
    let (trace, timeline) = mqtt_lab::cli::lab::summary::evidence_files(
        &failures.display().to_string(),
        &file.display().to_string(),
        1,
    );
    assert_eq!(t["failures_dir"], failures.display().to_string());
    let timeline = std::fs::read_to_string(timeline).unwrap();
    assert!(timeline.contains("never reached monitor"), "{timeline}");
    let trace = std::fs::read_to_string(trace).unwrap();
    assert!(
        trace.lines().count() > 100 && trace.contains("run_ended"),
        "{}",
        &trace[..200]
    );
}

#[test]
fn the_command_runs_a_target_and_skips_what_it_cannot_do_with_the_reason() {
    let broker = OurBroker::start();
    let dir = tempfile::tempdir().unwrap();
    // Two scenarios of the same client identifiers and topics, two seeds each, four runs at
    // once: they share the broker only because each has its own prefix.
    std::fs::write(dir.path().join("01-story.toml"), STORY).unwrap();
    let copy = STORY.replace("name = \"target:", "name = \"target, again:");
    std::fs::write(dir.path().join("03-story-again.toml"), copy).unwrap();
    std::fs::write(dir.path().join("02-broker-crash.toml"), crashing_story()).unwrap();
    // A queue limit no packet shows: not run unless the target is said to be configured so.
    let limited = STORY
        .replace("name = \"target:", "name = \"target with a queue limit:")
        .replace("[expect]", "[broker]\nmax_queued_messages = 5\n\n[expect]");
    std::fs::write(dir.path().join("04-queue-limit.toml"), limited).unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-lab"))
        .arg("run")
        .arg(dir.path())
        .args([
            "--seeds",
            "1..2",
            "--jobs",
            "4",
            "--no-progress",
            "--target",
        ])
        .arg(format!("127.0.0.1:{}", broker.port))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("all 4 seeds passed"), "{stdout}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the four 9-second runs went at once"
    );
    assert!(
        stderr.contains("skipped")
            && stderr.contains("02-broker-crash.toml")
            && stderr.contains("broker crashes"),
        "{stderr}"
    );
    assert!(stderr.contains("not bit-reproducible"), "{stderr}");
    assert!(
        stdout.contains("needs configuration")
            && stdout.contains("04-queue-limit.toml: set max_queued_messages = 5")
            && stdout.contains("--assume-configured"),
        "{stdout}"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_mqtt-lab"))
        .arg("run")
        .arg(dir.path())
        .args(["--target", "not an address"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--target not an address"));
}

/// Commands that kill and start a durable `mqtt-lab broker` process on `port`, its pid in
/// `dir`.
fn broker_commands(dir: &Path, port: u16) -> (String, String) {
    let config = dir.join("broker.toml");
    std::fs::write(&config, "persistence_file = \"state\"\n").unwrap();
    let pid = dir.join("broker.pid");
    let start = format!(
        "'{}' broker -c '{}' -l 127.0.0.1:{port} >/dev/null 2>&1 & echo $! > '{}'",
        env!("CARGO_BIN_EXE_mqtt-lab"),
        config.display(),
        pid.display()
    );
    let stop = format!(
        "p=$(cat '{0}'); kill -9 $p; while kill -0 $p 2>/dev/null; do sleep 0.05; done",
        pid.display()
    );
    (start, stop)
}

/// Kills the broker the commands started when the test ends, whatever happened.
struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("sh").args(["-c", &self.0]).status();
    }
}

#[test]
fn broker_crash_faults_run_the_users_commands_and_a_durable_broker_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (start, stop) = broker_commands(dir.path(), port);
    assert!(
        Command::new("sh")
            .args(["-c", &start])
            .status()
            .unwrap()
            .success()
    );
    let _guard = KillOnDrop(stop.clone());
    let t = Target {
        addr: ([127, 0, 0, 1], port).into(),
        broker: BrokerCommands::new(None, Some(stop.clone()), Some(start.clone())).unwrap(),
    };
    // The first start may still be binding.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(t.addr).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the broker never listened");
    });
    let pid_before = std::fs::read_to_string(dir.path().join("broker.pid")).unwrap();

    let s = Scenario::from_str(&crashing_story(), "crash.toml").unwrap();
    assert_eq!(target::unsupported(&s, &t), None);
    assert!(target::unsupported(&s, &target_of_port(port)).is_some());
    assert!(
        target::needs_broker_alone(&s)
            .unwrap()
            .contains("restarts the broker")
    );
    let out = passes(&s, 1, &t, &Names::default(), ONE);
    let pid_after = std::fs::read_to_string(dir.path().join("broker.pid")).unwrap();
    assert_ne!(pid_before, pid_after, "the broker process was replaced");
    let healed = out.trace.events.iter().any(|e| {
        matches!(&e.event, Event::FaultHealed { fault } if format!("{fault:?}").contains("BrokerCrash"))
    });
    assert!(healed, "the restart is in the trace");
    // The kill's instant is unseen: the trace has when the lab knew the broker down, and the
    // two readings of that window agree (a durable broker keeps everything either way).
    let at = |name: &str| {
        out.trace
            .events
            .iter()
            .position(|e| format!("{:?}", e.event).starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in the trace"))
    };
    assert!(at("FaultApplied { fault: BrokerCrash") < at("FaultTookEffect"));
    assert!(at("FaultTookEffect") < at("FaultHealed { fault: BrokerCrash"));
    assert!(out.undecided.is_empty(), "{:#?}", out.undecided);

    // A command that fails ends the run as the lab's error, naming the command.
    let broken = Target {
        addr: t.addr,
        broker: BrokerCommands::new(Some("echo cannot restart >&2; exit 7".into()), None, None)
            .unwrap(),
    };
    let out = target::run_seed(
        &s,
        1,
        &broken,
        &Names::default(),
        ONE,
        &CheckConfig::default(),
    );
    match &out.status {
        RunStatus::Crashed(why) => assert!(
            why.contains("--broker-restart") && why.contains("cannot restart"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
}

fn target_of_port(port: u16) -> Target {
    Target {
        addr: ([127, 0, 0, 1], port).into(),
        broker: BrokerCommands::default(),
    }
}

#[test]
fn a_story_runs_on_a_scaled_clock_with_its_protocol_times_scaled_too() {
    let broker = OurBroker::start();
    let s = story();
    let half = TimeScale::new(0.5).unwrap();
    assert_eq!(target::unscalable(&s, half), None);
    let out = passes(&s, 1, &target_of(&broker), &Names::tagged("half"), half);
    // The 9-second story ended after 4.5 s, and its clients asked for half their keep-alive.
    let end = out.trace.end_us();
    assert!((4_500_000..9_000_000).contains(&end), "ended at {end} us");
    assert_eq!(out.plan.duration, std::time::Duration::from_millis(4500));
    let keep_alives: Vec<u16> = out
        .trace
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Connecting { keep_alive_s, .. } => Some(*keep_alive_s),
            _ => None,
        })
        .collect();
    assert!(
        !keep_alives.is_empty() && keep_alives.iter().all(|&k| k == 1),
        "{keep_alives:?}"
    );
    // The fault plan is the same plan, at half its times.
    let cut = out
        .trace
        .events
        .iter()
        .find(|e| matches!(&e.event, Event::FaultApplied { .. }));
    assert!(
        cut.is_some_and(|e| (250_000..500_000).contains(&e.at_us)),
        "{cut:?}"
    );

    // A quarter would make the 2 s keep-alive half a second: the command skips the story.
    let quarter = TimeScale::new(0.25).unwrap();
    let why = target::unscalable(&s, quarter).unwrap();
    assert!(why.contains("keep_alive 2s would be 500ms"), "{why}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("story.toml");
    std::fs::write(&file, STORY).unwrap();
    let run = |scale: &str| {
        Command::new(env!("CARGO_BIN_EXE_mqtt-lab"))
            .arg("run")
            .arg(&file)
            .args([
                "--seeds",
                "1",
                "--no-progress",
                "--time-scale",
                scale,
                "--target",
            ])
            .arg(format!("127.0.0.1:{}", broker.port))
            .output()
            .unwrap()
    };
    let out = run("0.25");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("does not allow --time-scale 0.25") && stdout.contains("keep_alive"),
        "{stdout}"
    );
    let out = run("0");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not between 0.01 and 100"));
}

#[test]
fn a_run_alone_clears_the_retained_messages_it_left_on_dollar_topics() {
    // `#` does not match `$` topics: the clean-up asks for them by name, or the next run's
    // subscriber gets a retained message this run never published.
    const DOLLAR: &str = r#"
name = "a retained $ topic"
protocol = "3.1.1"
duration = "2s"

[[client]]
id = "watcher"
subscribe = [{ filter = "$lab/#", qos = 1 }]

[[client]]
id = "late"
connect_at = "1500ms"
subscribe = [{ filter = "$lab/#", qos = 1 }]

[[client]]
id = "setter"

[[workload]]
client = "setter"
topic = "$lab/state"
qos = 1
retain = true
start = "1s"

[target]
requires = ["clients may publish on $ topics"]

[expect]
checkers = ["integrity", "retained"]
"#;
    let broker = OurBroker::start();
    let s = Scenario::from_str(DOLLAR, "dollar.toml").unwrap();
    assert!(target::needs_broker_alone(&s).is_some());
    for run in 1..=2 {
        let out = passes(&s, run, &target_of(&broker), &Names::default(), ONE);
        let retained = out
            .trace
            .events
            .iter()
            .filter(|e| matches!(&e.event, Event::Delivered { retain: true, .. }))
            .count();
        assert_eq!(
            retained, 1,
            "run {run}: the watcher got this run's retained value"
        );
    }
}
