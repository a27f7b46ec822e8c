//! The simulated world end to end (`cargo sim --test lab world::`): runs are deterministic, library
//! scenarios pass on the real broker and client for fixed seeds, each fault shows in the trace as
//! the world documents it, and bugs planted in the broker by test doubles are caught by the
//! scenario and checker meant to catch them — again on replay.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use mqtt_lab::broker::{
    Action, BrokerConfig, BrokerCore, BrokerEvent, CloseCause, ConnId, DurableState,
};
use mqtt_lab::codec::{Ack, Framer, Packet, QoS, ReasonCode};
use mqtt_lab::scenario::Scenario;
use mqtt_lab::sim::{BrokerFactory, RunOptions, RunOutcome, RunStatus, real_broker, run_seed};
use mqtt_lab::trace::{Event, Fault, LossCause};

fn library(path: &str) -> Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(path);
    Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

fn inline(text: &str) -> Scenario {
    Scenario::from_str(text, "inline.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn run(s: &Scenario, seed: u64) -> RunOutcome {
    run_seed(s, seed, &RunOptions::default())
}

fn describe(out: &RunOutcome) -> String {
    let mut text = format!("{} seed {}: {:?}\n", out.scenario, out.seed, out.status);
    for v in &out.violations {
        text.push_str(&format!("  {v}\n"));
    }
    text
}

/// Events with their times, for assertions on one run.
fn events(out: &RunOutcome) -> Vec<(u64, &Event)> {
    out.trace
        .events
        .iter()
        .map(|e| (e.at_us, &e.event))
        .collect()
}

fn at_of(out: &RunOutcome, pred: impl Fn(&Event) -> bool) -> Option<u64> {
    events(out)
        .into_iter()
        .find(|(_, e)| pred(e))
        .map(|(t, _)| t)
}

// ---- determinism ------------------------------------------------------------------------------

#[test]
fn the_same_seed_gives_the_same_trace_and_other_seeds_differ() {
    for path in [
        "03-qos1/01-qos1-under-cuts.toml",
        "10-broker-restart/02-broker-crash-durable-inflight.toml",
        "11-swarm/01-swarm-qos1-v311.toml",
        "11-swarm/04-swarm-many-clients.toml",
    ] {
        let s = library(path);
        let mut prints = BTreeSet::new();
        for seed in [7, 8] {
            let a = run(&s, seed);
            let b = run(&s, seed);
            assert_eq!(a.status, RunStatus::Completed, "{}", describe(&a));
            assert_eq!(
                a.trace.to_jsonl(),
                b.trace.to_jsonl(),
                "{path} seed {seed}: two runs differ"
            );
            assert_eq!(a.violations, b.violations);
            prints.insert(a.fingerprint());
        }
        assert_eq!(prints.len(), 2, "{path}: seeds 7 and 8 gave one trace");
    }
}

#[test]
fn a_trace_starts_with_run_started_and_ends_at_the_duration() {
    let s = library("03-qos1/01-qos1-under-cuts.toml");
    let out = run(&s, 1);
    assert!(out.passed(), "{}", describe(&out));
    let evs = events(&out);
    assert!(matches!(
        evs[0],
        (
            0,
            Event::RunStarted {
                seed: 1,
                max_inflight: Some(10),
                ..
            }
        )
    ));
    assert_eq!(
        evs.last().map(|(t, e)| (*t, (*e).clone())),
        Some((40_000_000, Event::RunEnded))
    );
    let settle = at_of(&out, |e| *e == Event::SettleStarted);
    assert_eq!(settle, Some(25_000_000));
    out.trace.validate().unwrap();
    assert_eq!(out.sim_time, std::time::Duration::from_secs(40));
}

// ---- the library on the real code -------------------------------------------------------------

#[test]
fn library_smoke_scenarios_pass_on_fixed_seeds() {
    for path in [
        "01-connect/01-connect-and-publish.toml",
        "03-qos1/01-qos1-under-cuts.toml",
        "03-qos1/03-qos1-broker-crash-durable.toml",
        "04-qos2/01-qos2-exactly-once-under-cuts.toml",
        "05-will/01-will-on-crash.toml",
        "05-will/02-will-on-power-off.toml",
        "05-will/04-no-will-after-disconnect.toml",
        "06-retained/01-retained-late-subscriber.toml",
        "06-retained/02-retained-clear.toml",
        "07-session/03-broker-restart-durable.toml",
        "08-keepalive/01-keepalive-detects-power-off.toml",
    ] {
        let s = library(path);
        for seed in 1..=5 {
            let out = run(&s, seed);
            assert!(out.passed(), "{path}: {}", describe(&out));
        }
    }
}

// ---- faults as the trace shows them -----------------------------------------------------------

const WILL_WORLD: &str = r#"
name = "fault shapes"
protocol = "3.1.1"
duration = "40s"
faults_until = "30s"
[[client]]
id = "monitor"
subscribe = [{ filter = "status/#", qos = 1 }]
[[client]]
id = "sensor"
keep_alive = "4s"
will = { topic = "status/sensor", qos = 1 }
"#;

fn will_delivered(out: &RunOutcome, label: &str) -> Option<u64> {
    at_of(
        out,
        |e| matches!(e, Event::Delivered { client, payload, .. } if client == "monitor" && payload == label),
    )
}

#[test]
fn a_crash_resets_the_connection_at_once_and_the_restart_is_a_fresh_process() {
    let s = inline(&format!(
        "{WILL_WORLD}[[fault]]\nat = \"5s\"\ncrash = \"sensor\"\nrestart_after = \"2s\"\n[expect]\ncheckers = [\"will\"]\n"
    ));
    let out = run(&s, 3);
    assert!(out.passed(), "{}", describe(&out));
    let crash = Fault::ClientCrash {
        client: "sensor".into(),
    };
    assert_eq!(
        at_of(&out, |e| *e
            == Event::FaultApplied {
                fault: crash.clone()
            }),
        Some(5_000_000)
    );
    assert_eq!(
        at_of(&out, |e| *e
            == Event::FaultHealed {
                fault: crash.clone()
            }),
        Some(7_000_000)
    );
    let will = will_delivered(&out, "sensor#will-1").expect("will of the crashed connection");
    assert!(
        (5_000_000..5_100_000).contains(&will),
        "the broker reads EOF at once: will at {will}"
    );
    // The fresh process connects again with the next will label: the counter is on its disk.
    let again = at_of(&out, |e| {
        matches!(e, Event::Connecting { client, will: Some(w), .. } if client == "sensor" && w.payload == "sensor#will-2")
    })
    .expect("the restarted process connects");
    assert!(again >= 7_000_000, "{again}");
}

#[test]
fn a_power_off_is_silent_until_keep_alive_expires() {
    let s = inline(&format!(
        "{WILL_WORLD}[[fault]]\nat = \"5s\"\npower_off = \"sensor\"\nrestart_after = \"20s\"\n[expect]\ncheckers = [\"will\"]\n"
    ));
    let out = run(&s, 4);
    assert!(out.passed(), "{}", describe(&out));
    let will = will_delivered(&out, "sensor#will-1").expect("will after keep-alive");
    // Last traffic before 5 s, 1.5 x 4 s of silence: not before 5 s + 6 s - 4 s (the last
    // PINGREQ may be up to one keep-alive old), and well before the power comes back at 25 s.
    assert!((7_000_000..12_000_000).contains(&will), "will at {will} us");
    // The frozen client saw nothing: no loss is recorded for it before the power comes back.
    assert_eq!(
        at_of(
            &out,
            |e| matches!(e, Event::ConnectionLost { client, .. } if client == "sensor")
        ),
        None
    );
}

#[test]
fn a_cut_closes_both_ends_and_the_client_reconnects_by_its_backoff() {
    let s = inline(&format!(
        "{WILL_WORLD}[[fault]]\nat = \"5s\"\ncut = \"sensor\"\n[expect]\ncheckers = [\"will\"]\n"
    ));
    let out = run(&s, 5);
    assert!(out.passed(), "{}", describe(&out));
    assert_eq!(
        at_of(
            &out,
            |e| matches!(e, Event::ConnectionLost { client, cause: LossCause::Closed, .. } if client == "sensor")
        ),
        Some(5_000_000)
    );
    let will = will_delivered(&out, "sensor#will-1").expect("a cut fires the will");
    assert!((5_000_000..5_100_000).contains(&will), "{will}");
    let back = at_of(
        &out,
        |e| matches!(e, Event::Connected { client, .. } if client == "sensor"),
    );
    assert!(back.is_some());
    // Default reconnect: 100 ms without jitter, then the TCP connect.
    let reconnect = events(&out)
        .into_iter()
        .filter(|(_, e)| matches!(e, Event::Connecting { client, .. } if client == "sensor"))
        .map(|(t, _)| t)
        .nth(1)
        .expect("a second CONNECT");
    assert!((5_100_000..5_120_000).contains(&reconnect), "{reconnect}");
}

#[test]
fn a_partition_stalls_silently_and_heals() {
    let s = inline(&format!(
        "{WILL_WORLD}[[fault]]\nat = \"5s\"\npartition = {{ between = [\"sensor\", \"broker\"], for = \"10s\" }}\n[expect]\ncheckers = [\"will\"]\n"
    ));
    let out = run(&s, 6);
    assert!(out.passed(), "{}", describe(&out));
    // Nothing closes: the broker's keep-alive (1.5 x 4 s after the sensor's last packet, at
    // most 4 s before the partition) ends the connection and fires the will.
    let will =
        will_delivered(&out, "sensor#will-1").expect("the broker's keep-alive fires the will");
    assert!((7_000_000..12_000_000).contains(&will), "{will}");
    // The simulator lets the broker's close cross the partition; every reconnect is refused
    // until the heal.
    let lost = at_of(
        &out,
        |e| matches!(e, Event::ConnectionLost { client, .. } if client == "sensor"),
    )
    .expect("the sensor learns its connection is gone");
    assert!((7_000_000..12_000_000).contains(&lost), "{lost}");
    let healed = at_of(&out, |e| {
        matches!(
            e,
            Event::FaultHealed {
                fault: Fault::Partition { .. }
            }
        )
    });
    assert_eq!(healed, Some(15_000_000));
    let back: Vec<u64> = events(&out)
        .into_iter()
        .filter(|(t, e)| {
            *t > 1_000_000 && matches!(e, Event::Connected { client, .. } if client == "sensor")
        })
        .map(|(t, _)| t)
        .collect();
    assert!(
        back.first().is_some_and(|&t| t >= 15_000_000),
        "the sensor is back only after the heal: {back:?}"
    );
}

#[test]
fn a_durable_broker_crash_keeps_sessions_and_a_none_broker_forgets_them() {
    let base = r#"
name = "broker crash"
protocol = "3.1.1"
duration = "20s"
faults_until = "10s"
[[client]]
id = "monitor"
clean_session = false
subscribe = [{ filter = "t/#", qos = 1 }]
[[fault]]
at = "3s"
crash_broker = { restart_after = "2s" }
[expect]
checkers = ["session"]
"#;
    for (persistence, present) in [("durable", true), ("none", false)] {
        let s = inline(&base.replace(
            "[[client]]",
            &format!("[broker]\npersistence = \"{persistence}\"\n[[client]]"),
        ));
        let out = run(&s, 2);
        assert!(out.passed(), "{}", describe(&out));
        let after: Vec<bool> = events(&out)
            .into_iter()
            .filter_map(|(t, e)| match e {
                Event::Connected {
                    session_present, ..
                } if t > 5_000_000 => Some(*session_present),
                _ => None,
            })
            .collect();
        assert_eq!(after.first(), Some(&present), "{persistence}: {after:?}");
    }
}

// ---- planted bugs -----------------------------------------------------------------------------

/// A test double around the real core: frames inbound bytes itself so a rule can see (and
/// change) every packet, and filters the actions the core asks for.
struct Tap<R: Rule> {
    inner: Box<dyn BrokerCore + Send>,
    framers: BTreeMap<ConnId, Framer>,
    max_packet: u32,
    rule: R,
}

trait Rule: Send + 'static {
    /// Handles one inbound packet; by default passes it on.
    fn inbound(&mut self, core: &mut dyn BrokerCore, now: Instant, conn: ConnId, p: Packet) {
        core.handle_packet(now, conn, p)
    }
    /// Whether an action reaches the shell.
    fn keep(&mut self, _action: &Action) -> bool {
        true
    }
}

impl<R: Rule> BrokerCore for Tap<R> {
    fn handle_accept(&mut self, now: Instant, conn: ConnId) {
        self.framers
            .insert(conn, Framer::new(None, self.max_packet));
        self.inner.handle_accept(now, conn)
    }
    fn handle_bytes(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(f) = self.framers.get_mut(&conn) else {
            return;
        };
        f.push(bytes);
        let mut packets = Vec::new();
        while let Ok(Some(p)) = f.next_packet() {
            packets.push(p);
        }
        for p in packets {
            self.rule.inbound(&mut *self.inner, now, conn, p);
        }
    }
    fn handle_packet(&mut self, now: Instant, conn: ConnId, packet: Packet) {
        self.rule.inbound(&mut *self.inner, now, conn, packet)
    }
    fn handle_closed(&mut self, now: Instant, conn: ConnId, cause: CloseCause) {
        self.framers.remove(&conn);
        self.inner.handle_closed(now, conn, cause)
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now)
    }
    fn handle_held(&mut self, now: Instant, conn: ConnId, held: bool) {
        self.inner.handle_held(now, conn, held)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn poll_action(&mut self) -> Option<Action> {
        loop {
            let a = self.inner.poll_action()?;
            if self.rule.keep(&a) {
                return Some(a);
            }
        }
    }
    fn poll_event(&mut self) -> Option<BrokerEvent> {
        self.inner.poll_event()
    }
    fn durable_state(&self) -> DurableState {
        self.inner.durable_state()
    }
    fn record_changes(&mut self) {
        self.inner.record_changes()
    }
    fn take_changes(&mut self) -> mqtt_lab::broker::Changes {
        self.inner.take_changes()
    }
    fn handle_storage(&mut self, now: Instant, health: mqtt_lab::broker::StorageHealth) {
        self.inner.handle_storage(now, health)
    }
}

fn tapped<R: Rule>(make: fn() -> R) -> RunOptions {
    let real = real_broker();
    let factory: BrokerFactory = Arc::new(move |config: BrokerConfig, auth, state| {
        let max_packet = config.max_packet_size;
        Box::new(Tap {
            inner: real(config, auth, state),
            framers: BTreeMap::new(),
            max_packet,
            rule: make(),
        }) as Box<dyn BrokerCore + Send>
    });
    RunOptions {
        broker: factory,
        ..RunOptions::default()
    }
}

/// Forwards every new inbound QoS 2 PUBLISH twice: the copy gets a packet identifier the client
/// never uses, is released at once, and its PUBREC and PUBCOMP never leave the broker.
#[derive(Default)]
struct QoS2Twice {
    hidden: BTreeSet<(ConnId, u16)>,
}

impl Rule for QoS2Twice {
    fn inbound(&mut self, core: &mut dyn BrokerCore, now: Instant, conn: ConnId, p: Packet) {
        if let Packet::Publish(publish) = &p
            && publish.qos == QoS::ExactlyOnce
            && !publish.dup
        {
            let copy = publish.pkid | 0x8000;
            core.handle_packet(now, conn, p.clone());
            let mut twin = publish.clone();
            twin.pkid = copy;
            self.hidden.insert((conn, copy));
            core.handle_packet(now, conn, Packet::Publish(twin));
            core.handle_packet(now, conn, Packet::PubRel(Ack::new(copy)));
            return;
        }
        core.handle_packet(now, conn, p)
    }
    fn keep(&mut self, a: &Action) -> bool {
        match a {
            Action::Send {
                conn,
                packet: Packet::PubRec(ack) | Packet::PubComp(ack),
                ..
            } => !self.hidden.contains(&(*conn, ack.pkid)),
            _ => true,
        }
    }
}

/// Never lets a will out: drops every PUBLISH whose payload is a will label.
#[derive(Default)]
struct DropWills;

impl Rule for DropWills {
    fn keep(&mut self, a: &Action) -> bool {
        !matches!(a, Action::Send { packet: Packet::Publish(p), .. } if p.payload.windows(6).any(|w| w == b"#will-"))
    }
}

/// Treats a normal DISCONNECT as a dropped connection, so the will is published.
#[derive(Default)]
struct WillAfterDisconnect;

impl Rule for WillAfterDisconnect {
    fn inbound(&mut self, core: &mut dyn BrokerCore, now: Instant, conn: ConnId, p: Packet) {
        match p {
            Packet::Disconnect(d) if d.reason == ReasonCode::Success => {
                core.handle_closed(now, conn, CloseCause::PeerClosed)
            }
            p => core.handle_packet(now, conn, p),
        }
    }
}

/// Never clears a retained message: a retained PUBLISH with an empty payload is forwarded
/// without its RETAIN flag, so the old value stays.
#[derive(Default)]
struct KeepRetained;

impl Rule for KeepRetained {
    fn inbound(&mut self, core: &mut dyn BrokerCore, now: Instant, conn: ConnId, p: Packet) {
        match p {
            Packet::Publish(mut publish) if publish.retain && publish.payload.is_empty() => {
                publish.retain = false;
                core.handle_packet(now, conn, Packet::Publish(publish))
            }
            p => core.handle_packet(now, conn, p),
        }
    }
}

/// Forgets every session on restart: the durable state is never restored.
fn amnesiac_broker() -> RunOptions {
    let real = real_broker();
    RunOptions {
        broker: Arc::new(move |config, auth, _state| real(config, auth, None)),
        ..RunOptions::default()
    }
}

/// Runs `seeds` until one fails; asserts the failure names `checker`, and that replaying the
/// seed gives the same trace and violations.
fn caught(path: &str, options: &RunOptions, checker: &str, seeds: std::ops::RangeInclusive<u64>) {
    let s = library(path);
    let clean = run_seed(&s, *seeds.start(), &RunOptions::default());
    assert!(
        clean.passed(),
        "the real code must pass first: {}",
        describe(&clean)
    );
    for seed in seeds.clone() {
        let out = run_seed(&s, seed, options);
        assert_eq!(out.status, RunStatus::Completed, "{}", describe(&out));
        if out.violations.iter().any(|v| v.checker == checker) {
            let again = run_seed(&s, seed, options);
            assert_eq!(again.fingerprint(), out.fingerprint(), "replay differs");
            assert_eq!(again.violations, out.violations, "replay differs");
            return;
        }
    }
    panic!("{path}: the planted bug escaped the {checker} checker over seeds {seeds:?}");
}

#[test]
fn planted_qos2_forwarded_twice_is_caught_by_delivery() {
    caught(
        "04-qos2/01-qos2-exactly-once-under-cuts.toml",
        &tapped(QoS2Twice::default),
        "delivery",
        1..=1,
    );
}

#[test]
fn planted_lost_will_after_a_crash_is_caught_by_will_reaches() {
    caught(
        "05-will/01-will-on-crash.toml",
        &tapped(DropWills::default),
        "expect",
        1..=1,
    );
}

#[test]
fn planted_will_after_disconnect_is_caught_by_will() {
    caught(
        "05-will/04-no-will-after-disconnect.toml",
        &tapped(WillAfterDisconnect::default),
        "will",
        1..=1,
    );
}

#[test]
fn planted_retained_message_not_cleared_is_caught_by_retained() {
    caught(
        "06-retained/02-retained-clear.toml",
        &tapped(KeepRetained::default),
        "retained",
        1..=1,
    );
}

#[test]
fn planted_session_forgotten_on_restart_is_caught_by_session() {
    caught(
        "07-session/03-broker-restart-durable.toml",
        &amnesiac_broker(),
        "session",
        1..=1,
    );
}

/// A broker core that panics on its first connection: our own bug, inside the simulation.
#[derive(Default)]
struct PanicOnAccept;

impl Rule for PanicOnAccept {
    fn inbound(&mut self, _core: &mut dyn BrokerCore, _now: Instant, _conn: ConnId, p: Packet) {
        if let Packet::Connect(c) = p {
            panic!("planted panic on CONNECT from {}", c.client_id);
        }
    }
}

#[test]
fn a_panic_inside_the_simulation_is_a_crashed_run_with_its_message() {
    let s = library("01-connect/01-connect-and-publish.toml");
    let out = run_seed(&s, 1, &tapped(PanicOnAccept::default));
    match &out.status {
        RunStatus::Crashed(message) => {
            assert!(message.contains("planted panic on CONNECT"), "{message}")
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    assert!(!out.passed());
    assert!(out.violations.is_empty(), "a crashed run is not judged");
    assert!(matches!(
        out.trace.events.first().map(|e| &e.event),
        Some(Event::RunStarted { .. })
    ));
}

/// 3.1.1: a second process connecting with the client identifier of a half-open connection
/// takes the session over [MQTT-3.1.4-2]: its events carry the client identifier and its
/// process, the old connection's will is published when the broker closes it, and the session
/// is resumed on the new connection [MQTT-3.1.4-3].
#[test]
fn mqtt_3_1_4_3_a_second_process_takes_the_session_over() {
    let s = library("09-takeover/03-second-process-takes-over-v311.toml");
    let out = run(&s, 1);
    assert!(out.passed(), "{}", describe(&out));
    let trace = &out.trace;
    let takeover = trace
        .events
        .iter()
        .find(|e| {
            e.process.as_deref() == Some("sensor-1-b")
                && matches!(&e.event, Event::Connected { client, session_present: true, .. } if client == "sensor-1")
        })
        .map(|e| e.at_us)
        .expect("the second process resumed the session of sensor-1");
    // No event of a process named by its client identifier carries `process`.
    assert!(
        trace
            .events
            .iter()
            .all(|e| e.process.as_deref() != Some("sensor-1"))
    );
    let will = will_delivered(&out, "sensor-1#will-1").expect("the old connection's will");
    assert!(
        (takeover - 100_000..takeover + 100_000).contains(&will),
        "the broker closes the old connection when it takes the session over: will at {will}, takeover at {takeover}"
    );
}
