//! The format's traps in the simulated world (`cargo sim --test lab traps::`): unsubscribes
//! reach the broker whatever the cuts (a broker that keeps the subscription is among the
//! planted bugs, `planted_bugs.rs`), and each library scenario of `scenarios/17-traps/` passes on the real broker.

use std::path::Path;

use mqtt_lab::scenario::Scenario;
use mqtt_lab::sim::{RunOptions, RunOutcome, run_seed};
use mqtt_lab::trace::Event;

fn library(path: &str) -> Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(path);
    Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

fn describe(out: &RunOutcome) -> String {
    let mut text = format!("{} seed {}: {:?}\n", out.scenario, out.seed, out.status);
    for v in &out.violations {
        text.push_str(&format!("  {v}\n"));
    }
    text
}

const UNSUBSCRIBE: &str = "17-traps/01-unsubscribe-under-cuts.toml";

#[test]
fn mqtt_3_10_4_2_unsubscribes_under_cuts_stop_the_stream() {
    let s = library(UNSUBSCRIBE);
    for seed in 1..=3 {
        let out = run_seed(&s, seed, &RunOptions::default());
        assert!(out.passed(), "{}", describe(&out));
        for client in ["monitor", "viewer"] {
            assert!(
                out.trace.events.iter().any(|e| matches!(&e.event,
                    Event::Unsubscribed { client: c, filter } if c == client && filter == "sensors/#")),
                "seed {seed}: {client} never got its UNSUBACK"
            );
        }
    }
}

const TRIGGERED: &str = "17-traps/03-qos2-handshakes-cut-by-events.toml";

#[test]
fn a_fault_fires_right_after_its_trace_event_the_same_way_every_time() {
    let s = library(TRIGGERED);
    for seed in 1..=3 {
        let out = run_seed(&s, seed, &RunOptions::default());
        assert!(out.passed(), "{}", describe(&out));
        assert_eq!(out.unfired, Vec::<usize>::new(), "seed {seed}");
        let events = &out.trace.events;
        let fifth = events
            .iter()
            .position(|e| matches!(&e.event, Event::Delivered { client, payload, .. } if client == "sink" && payload == "pub#5"))
            .expect("pub#5 delivered");
        let cut = events[fifth..]
            .iter()
            .find(|e| matches!(&e.event, Event::FaultApplied { fault: mqtt_lab::trace::Fault::Cut { client } } if client == "sink"))
            .expect("the sink is cut after pub#5");
        let lag = cut.at_us - events[fifth].at_us;
        assert!(lag < 1_000, "seed {seed}: the cut is {lag} us late");
        let again = run_seed(&s, seed, &RunOptions::default());
        assert_eq!(out.fingerprint(), again.fingerprint(), "seed {seed}");
    }
}

#[test]
fn a_fault_whose_event_never_comes_never_fires_and_the_outcome_says_so() {
    let s = Scenario::from_str(
        r#"
name = "a trigger that never comes"
protocol = "3.1.1"
duration = "10s"
[[client]]
id = "mon"
subscribe = [{ filter = "t/#", qos = 1 }]
[[client]]
id = "pub"
[[workload]]
client = "pub"
topic = "t/1"
qos = 1
count = 3
start = "1s"
[[fault]]
after = { event = "delivered", client = "mon", payload = "pub#4" }
crash_broker = { restart_after = "1s" }
[[fault]]
after = { event = "connected", client = "mon" }
at = "500ms"
blackhole = { client = "mon", for = "1s" }
[expect]
checkers = ["delivery"]
receives = [{ client = "mon", exactly = 3 }]
"#,
        "inline.toml",
    )
    .unwrap();
    let out = run_seed(&s, 1, &RunOptions::default());
    assert!(out.passed(), "{}", describe(&out));
    assert_eq!(out.unfired, vec![0]);
    let connected = out
        .trace
        .events
        .iter()
        .find(|e| matches!(&e.event, Event::Connected { client, .. } if client == "mon"))
        .unwrap()
        .at_us;
    let hole: Vec<u64> = out
        .trace
        .events
        .iter()
        .filter(|e| {
            matches!(
                &e.event,
                Event::FaultApplied { .. } | Event::FaultHealed { .. }
            )
        })
        .map(|e| e.at_us)
        .collect();
    assert_eq!(hole, [connected + 500_000, connected + 1_500_000]);
}
