//! Two processes with one client identifier (a takeover) on hand-written traces: the session is
//! judged by the client identifier, each connection by its process. The first process's
//! connection is half-open (a black hole) when the second connects; what the first records
//! afterwards belongs to the connection the broker closed.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{Persistence, Trace};

fn all(t: &Trace) -> Vec<Violation> {
    check::run_all(t, &CheckConfig::default()).unwrap()
}

fn names(v: &[Violation]) -> Vec<&str> {
    v.iter().map(|v| v.checker).collect()
}

/// A monitor with a persistent session (process `monitor`) receives a QoS 1 reading whose
/// PUBACK a black hole then eats; a second reading goes into the hole. A second process
/// `monitor-b` takes the session over (session present `resumed`) and the broker resends both
/// there (with DUP if `resend_dup`); then the first process's hole heals, it sees the original
/// PUBLISH of the second reading and its connection closed, and it crashes for good.
fn monitor_taken_over(protocol: &str, resumed: bool, resend_dup: bool) -> Trace {
    let mut s = Story::new(protocol, Persistence::Durable);
    s.process("monitor-b", "monitor");
    if protocol == "5.0" {
        s.session_expiry("monitor", 600)
            .session_expiry("monitor-b", 600);
    }
    s.connect("monitor", false, false)
        .subscribe("monitor", "sensors/#", 1);
    s.connect("sensor", true, false);
    let m1 = s.at_ms(500).publish("sensor", "sensors/1", 1);
    s.after_ms(5)
        .ack("sensor", &m1)
        .deliver_packet("monitor", &m1, 1, false, false, Some(1), None);
    s.at_ms(1000).black_hole("monitor");
    let m2 = s.at_ms(1500).publish("sensor", "sensors/1", 1);
    s.after_ms(5).ack("sensor", &m2);
    s.at_ms(2000).connect("monitor-b", false, resumed);
    if !resumed {
        s.subscribe("monitor-b", "sensors/#", 1);
    }
    s.after_ms(5)
        .deliver_packet("monitor-b", &m1, 1, false, resend_dup, Some(1), None)
        .deliver_packet("monitor-b", &m2, 1, false, resend_dup, Some(2), None);
    s.at_ms(3000)
        .heal_black_hole("monitor")
        .deliver_packet("monitor", &m2, 1, false, false, Some(2), None)
        .lost("monitor");
    s.after_ms(5).crash("monitor");
    s.at_ms(10_000).end()
}

/// The session goes on with the second process that took it over (5.0 [MQTT-3.1.4-3],
/// 3.1.1 [MQTT-3.1.4-2]): its resumed session, the resend with DUP and the old connection's
/// late copy are all correct.
#[test]
fn mqtt5_3_1_4_3_a_second_process_resumes_the_session_it_took_over() {
    for protocol in ["3.1.1", "5.0"] {
        let t = monitor_taken_over(protocol, true, true);
        assert_eq!(all(&t), vec![], "{protocol}");
        // The second process's events carry the client identifier and their process.
        let b = t
            .events
            .iter()
            .find(|e| e.process.as_deref() == Some("monitor-b"))
            .unwrap();
        assert_eq!(b.event.client(), Some("monitor"));
        assert!(t.to_jsonl().contains(r#""client":"monitor","#));
    }
}

/// [MQTT-3.2.2-2] (3.1.1) The session held by the first connection is the second's: session
/// present 0 for a CONNECT without clean start is reported.
#[test]
fn mqtt_3_2_2_2_a_takeover_that_loses_the_session_is_reported() {
    // 5.0 states the rule as [MQTT-3.2.2-3].
    for protocol in ["3.1.1", "5.0"] {
        let t = monitor_taken_over(protocol, false, true);
        let v = all(&t);
        assert!(
            v.iter().any(|v| v.checker == "session"
                && v.message
                    .contains("resumed without clean start and got session present = 0")),
            "{protocol}: {v:#?}"
        );
    }
}

/// [MQTT-3.3.1-1] The broker's resend to the second process must carry DUP; the first
/// process's late copy of the original (DUP 0) is that closed connection's and is not a
/// resend.
#[test]
fn mqtt_3_3_1_1_the_resend_to_the_new_process_sets_dup() {
    let t = monitor_taken_over("3.1.1", true, false);
    let v = all(&t);
    assert!(
        v.iter()
            .any(|v| v.checker == "integrity" && v.message.contains("MQTT-3.3.1-1")),
        "{v:#?}"
    );
    // Only the copies to the second process are resends; the late copy at 3 s is not one.
    assert!(v.iter().all(|v| v.at_us < 3_000_000), "{v:#?}");
}

/// A sensor process with a will goes half-open and a second process connects with its client
/// identifier (`will delay` 0 in 3.1.1, `delay_s` in 5.0); `will_at`: when the monitor gets
/// the first process's will, if at all.
fn sensor_taken_over(protocol: &str, delay_s: u32, clean: bool, will_at: Option<u64>) -> Trace {
    let mut s = Story::new(protocol, Persistence::Durable);
    s.process("sensor-b", "sensor");
    s.connect("monitor", false, false)
        .subscribe("monitor", "status/#", 1);
    if protocol == "5.0" {
        s.session_expiry("sensor", 600)
            .session_expiry("sensor-b", 600);
        s.will_delayed("sensor", "status/sensor", 1, false, delay_s);
    } else {
        s.will("sensor", "status/sensor", 1, false);
    }
    s.keep_alive("sensor", 30).keep_alive("sensor-b", 30);
    s.connect("sensor", false, false);
    s.at_ms(1000).black_hole("sensor");
    s.at_ms(2000).connect("sensor-b", clean, !clean);
    let will = |s: &mut Story, before: u64| {
        if let Some(at) = will_at.filter(|&at| at < before) {
            s.at_ms(at).deliver_will_of("monitor", "sensor", 1);
        }
    };
    will(&mut s, 3000);
    s.at_ms(3000).crash("sensor");
    s.at_ms(5000).heal_black_hole("sensor");
    if will_at.is_some_and(|at| at >= 3000) {
        s.at_ms(will_at.unwrap_or_default())
            .deliver_will_of("monitor", "sensor", 1);
    }
    s.at_ms(20_000).end()
}

/// [MQTT-3.1.4-3] (3.1.1) The connection taken over ended without DISCONNECT: its will is
/// published once, by the takeover plus the slack; a missing one is reported.
#[test]
fn mqtt_3_1_4_3_the_will_of_a_connection_taken_over_is_published() {
    assert_eq!(
        all(&sensor_taken_over("3.1.1", 0, false, Some(2010))),
        vec![]
    );
    let v = all(&sensor_taken_over("3.1.1", 0, false, None));
    assert_eq!(names(&v), vec!["will"], "{v:#?}");
    assert!(v[0].message.contains("never reached monitor"), "{}", v[0]);
    // Late: long after the broker closed the connection itself.
    let v = all(&sensor_taken_over("3.1.1", 0, false, Some(9000)));
    assert_eq!(names(&v), vec!["will"], "{v:#?}");
    assert!(v[0].message.contains("after the deadline"), "{}", v[0]);
}

/// [MQTT-3.1.3-9] (5.0) The session goes on at once on the new connection, within the will
/// delay: the will must not be published; with clean start the session ends and it may be.
#[test]
fn mqtt_3_1_3_9_a_takeover_within_the_will_delay_cancels_the_will() {
    assert_eq!(all(&sensor_taken_over("5.0", 5, false, None)), vec![]);
    let v = all(&sensor_taken_over("5.0", 5, false, Some(2010)));
    assert!(
        v.iter()
            .any(|v| v.checker == "will" && v.message.contains("must not be published")),
        "{v:#?}"
    );
    assert_eq!(all(&sensor_taken_over("5.0", 5, true, Some(2010))), vec![]);
}

/// Two processes of client `device` with wills take the session from each other: `device-b`
/// sends its CONNECT at 2 s while `device` is connected; its CONNACK comes at 2.05 s and the
/// monitor gets `device`'s will at `will_ms`.
fn will_of_a_connection_taken_over(protocol: &str, will_ms: u64) -> Trace {
    let mut s = Story::new(protocol, Persistence::None);
    s.process("device-b", "device");
    s.connect("monitor", false, false)
        .subscribe("monitor", "status/#", 1);
    s.will("device", "status/device", 1, false)
        .will("device-b", "status/device", 1, false);
    s.connect("device", false, false);
    if will_ms < 2000 {
        s.at_ms(will_ms).deliver_will("monitor", "device");
    }
    s.at_ms(2000).connecting("device-b", false);
    if will_ms >= 2000 {
        s.at_ms(will_ms).deliver_will("monitor", "device");
    }
    s.at_ms(2050.max(will_ms))
        .connected("device-b", false, true);
    s.after_ms(5).lost("device");
    s.at_ms(10_000).end()
}

/// [MQTT-3.1.4-2] (3.1.1) The broker ends the old connection when it reads the other process's
/// CONNECT, before any CONNACK shows the takeover: the will may come from that CONNECT on, and
/// a will before it is still reported.
#[test]
fn mqtt_3_1_4_2_a_taken_over_connection_s_will_may_come_from_the_rival_connect() {
    // 5.0 states the rule as [MQTT-3.1.4-3].
    for protocol in ["3.1.1", "5.0"] {
        let t = will_of_a_connection_taken_over(protocol, 2020);
        assert_eq!(all(&t), vec![], "{protocol}");
        let t = will_of_a_connection_taken_over(protocol, 1500);
        let v = all(&t);
        assert_eq!(names(&v), ["will"], "{protocol}: {v:?}");
        assert!(
            v[0].message
                .contains("while the connection was still healthy"),
            "{}",
            v[0]
        );
    }
}

/// How the first process (`dev`) sees its connection end after `dev-b` took it over at 2 s.
#[derive(Clone, Copy, PartialEq)]
enum OldEnd {
    /// The broker closed it: seen at once.
    Closed,
    /// The first process's own keep-alive gave up, 20 s later.
    OwnKeepAlive,
    /// Never: still open at the end of the run.
    Open,
}

/// `dev` connects at 0 s; `dev-b`, another process with its client identifier, connects at
/// 2 s and resumes the session; the run ends at 40 s. `hole`: `dev`'s link is black-holed
/// from 1.5 s on, so nothing can reach it.
fn takeover(protocol: &str, old: OldEnd, hole: bool) -> Trace {
    let mut s = Story::new(protocol, Persistence::Durable);
    s.process("dev-b", "dev");
    for p in ["dev", "dev-b"] {
        s.keep_alive(p, 10);
        if protocol == "5.0" {
            s.session_expiry(p, 600);
        }
    }
    s.connect("dev", false, false);
    if hole {
        s.at_ms(1500).black_hole("dev");
    }
    s.at_ms(2000).connect("dev-b", false, true);
    match old {
        OldEnd::Closed => {
            s.after_ms(3).lost("dev");
        }
        OldEnd::OwnKeepAlive => {
            s.at_ms(22_000).timed_out("dev");
        }
        OldEnd::Open => {}
    }
    s.at_ms(40_000).end()
}

/// The broker closes the connection it took a session from: a close seen at once is right; a
/// connection that only its own keep-alive ends, or that stays open to the end, was never
/// closed by the broker.
/// [MQTT-3.1.4-2] (3.1.1)
/// [MQTT-3.1.4-3] (5.0)
#[test]
fn a_taken_over_connection_is_closed_by_the_broker() {
    for protocol in ["3.1.1", "5.0"] {
        let id = if protocol == "5.0" {
            "MQTT-3.1.4-3" // 5.0
        } else {
            "MQTT-3.1.4-2" // 3.1.1
        };
        assert_eq!(all(&takeover(protocol, OldEnd::Closed, false)), vec![]);
        for (old, words) in [
            (OldEnd::OwnKeepAlive, "only by its own keep-alive"),
            (OldEnd::Open, "still open at the end"),
        ] {
            let v = all(&takeover(protocol, old, false));
            assert_eq!(names(&v), ["session"], "{protocol}: {v:?}");
            assert!(
                v[0].message.contains(words) && v[0].message.contains(id),
                "{}",
                v[0]
            );
        }
        // A black hole on the old link can keep the close from it: nothing is judged.
        for old in [OldEnd::OwnKeepAlive, OldEnd::Open] {
            let v = check::run(
                ["session"],
                &takeover(protocol, old, true),
                &CheckConfig::default(),
            )
            .unwrap();
            assert_eq!(v, vec![], "{protocol}");
        }
    }
}
