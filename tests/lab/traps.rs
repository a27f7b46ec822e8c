//! The format's traps in the simulated world (`cargo sim --test lab traps::`): unsubscribes
//! reach the broker whatever the cuts (and a broker that keeps the subscription is caught),
//! and each library scenario of `scenarios/17-traps/` passes on the real broker.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use mqtt_lab::broker::auth::Auth;
use mqtt_lab::broker::{
    Action, Broker, BrokerConfig, BrokerCore, BrokerEvent, CloseCause, CloseReason, ConnId,
    DurableState,
};
use mqtt_lab::codec::{Framer, Packet};
use mqtt_lab::scenario::Scenario;
use mqtt_lab::sim::{BrokerFactory, RunOptions, RunOutcome, RunStatus, run_seed};
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

/// The real broker, except that every inbound UNSUBSCRIBE names a filter nobody holds: the
/// broker answers it with an UNSUBACK and keeps the subscription.
struct KeepsSubscriptions {
    inner: Broker,
    framers: BTreeMap<ConnId, Framer>,
    max_packet_size: u32,
    out: std::collections::VecDeque<Action>,
}

const NOBODY_HOLDS: &str = "planted/never-subscribed";

impl BrokerCore for KeepsSubscriptions {
    fn handle_accept(&mut self, now: Instant, conn: ConnId) {
        self.framers
            .insert(conn, Framer::new(None, self.max_packet_size));
        self.inner.handle_accept(now, conn);
    }
    fn handle_bytes(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(framer) = self.framers.get_mut(&conn) else {
            return;
        };
        framer.push(bytes);
        loop {
            let Some(framer) = self.framers.get_mut(&conn) else {
                return;
            };
            match framer.next_packet() {
                Ok(Some(packet)) => self.handle_packet(now, conn, packet),
                Ok(None) => return,
                Err(e) => {
                    self.framers.remove(&conn);
                    self.inner.handle_closed(now, conn, CloseCause::Io);
                    self.out.push_back(Action::Close {
                        conn,
                        reason: CloseReason::ProtocolViolation(e.reason_code()),
                    });
                    return;
                }
            }
        }
    }
    fn handle_packet(&mut self, now: Instant, conn: ConnId, mut packet: Packet) {
        if let Packet::Unsubscribe(u) = &mut packet {
            for f in &mut u.filters {
                *f = NOBODY_HOLDS.to_string();
            }
        }
        self.inner.handle_packet(now, conn, packet)
    }
    fn handle_closed(&mut self, now: Instant, conn: ConnId, cause: CloseCause) {
        self.framers.remove(&conn);
        self.inner.handle_closed(now, conn, cause)
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn poll_action(&mut self) -> Option<Action> {
        if let Some(a) = self.out.pop_front() {
            return Some(a);
        }
        let action = self.inner.poll_action()?;
        if let Action::Close { conn, .. } = &action {
            self.framers.remove(conn);
        }
        Some(action)
    }
    fn poll_event(&mut self) -> Option<BrokerEvent> {
        self.inner.poll_event()
    }
    fn durable_state(&self) -> DurableState {
        self.inner.durable_state()
    }
    fn is_dirty(&self) -> bool {
        self.inner.is_dirty()
    }
    fn take_dirty(&mut self) -> bool {
        self.inner.take_dirty()
    }
}

fn keeps_subscriptions() -> BrokerFactory {
    Arc::new(
        |config: BrokerConfig, auth: Auth, state: Option<DurableState>| {
            let max_packet_size = config.max_packet_size;
            let inner = match state {
                Some(s) => Broker::restore_at(config, s, Instant::now()),
                None => Broker::new(config),
            }
            .with_auth(auth);
            Box::new(KeepsSubscriptions {
                inner,
                framers: BTreeMap::new(),
                max_packet_size,
                out: Default::default(),
            }) as Box<dyn BrokerCore + Send>
        },
    )
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

#[test]
fn a_broker_that_keeps_the_subscription_is_caught() {
    let s = library(UNSUBSCRIBE);
    let options = RunOptions {
        broker: keeps_subscriptions(),
        ..RunOptions::default()
    };
    for seed in 1..=3 {
        let out = run_seed(&s, seed, &options);
        assert_eq!(out.status, RunStatus::Completed, "{}", describe(&out));
        assert!(
            out.violations
                .iter()
                .any(|v| v.checker == "unsubscribe" && v.message.contains("[MQTT-3.10.4-2]")),
            "{}",
            describe(&out)
        );
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
