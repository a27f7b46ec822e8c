//! Rules that close the checkers' misses, each judged both ways on hand-written traces: DUP on
//! resends, Session Present and protocol errors on rejected CONNACKs, the message expiry
//! interval as received, the QoS and number of copies of each delivery.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{AckPacket, Persistence, Trace};

fn run(checker: &str, t: &Trace) -> Vec<Violation> {
    check::run([checker], t, &CheckConfig::default()).unwrap()
}

fn all(t: &Trace) -> Vec<Violation> {
    check::run_all(t, &CheckConfig::default()).unwrap()
}

fn one_with(v: &[Violation], checker: &str, text: &str) {
    assert!(
        v.iter()
            .any(|v| v.checker == checker && v.message.contains(text)),
        "no [{checker}] violation with {text:?} in {v:#?}"
    );
}

/// A persistent monitor subscribed to `s/#` at `qos`, and a connected sensor.
fn world(protocol: &str, qos: u8) -> Story {
    let mut s = Story::new(protocol, Persistence::Durable);
    s.connect("monitor", false, false)
        .subscribe("monitor", "s/#", qos);
    s.connect("sensor", true, false).after_ms(10);
    s
}

/// The monitor receives `m` with packet id 3, loses its connection, resumes its session and
/// receives `m` again with packet id 3 and `dup`.
fn resent(qos: u8, dup: bool) -> Trace {
    let mut s = world("3.1.1", qos);
    let m = s.publish("sensor", "s/1", qos);
    s.after_ms(5)
        .deliver_packet("monitor", &m, qos, false, false, Some(3), None)
        .ack("sensor", &m);
    s.after_ms(5).cut("monitor").after_ms(100);
    s.connect("monitor", false, true);
    s.after_ms(5)
        .deliver_packet("monitor", &m, qos, false, dup, Some(3), None);
    s.end()
}

#[test]
fn mqtt_3_3_1_1_qos1_resend_after_resume_sets_dup() {
    let v = run("integrity", &resent(1, false));
    assert_eq!(v.len(), 1, "{v:#?}");
    one_with(&v, "integrity", "[MQTT-3.3.1-1]");
    assert_eq!(all(&resent(1, true)), vec![]);
}

#[test]
fn mqtt_3_3_1_1_qos2_resend_seen_by_the_client_as_a_duplicate_sets_dup() {
    let story = |dup: bool| {
        let mut s = world("5.0", 2);
        let m = s.publish("sensor", "s/1", 2);
        s.after_ms(5)
            .publish_received("monitor", &m, 9, false)
            .deliver_packet("monitor", &m, 2, false, false, Some(9), None)
            .ack_sent("monitor", AckPacket::Pubrec, 9, &m)
            .ack("sensor", &m);
        s.after_ms(5).cut("monitor").after_ms(100);
        s.connect("monitor", false, true);
        s.after_ms(5).publish_received("monitor", &m, 9, dup);
        s.end()
    };
    let v = run("integrity", &story(false));
    assert_eq!(v.len(), 1, "{v:#?}");
    one_with(&v, "integrity", "still awaited PUBREL");
    assert_eq!(all(&story(true)), vec![]);
}

/// Two messages with one packet identifier are two first sends, and a second copy through an
/// overlapping subscription, or after a new session, is not a resend: none is judged.
#[test]
fn mqtt_3_3_1_1_first_sends_are_not_judged_as_resends() {
    let mut s = world("3.1.1", 1);
    let m1 = s.publish("sensor", "s/1", 1);
    s.after_ms(5)
        .deliver_packet("monitor", &m1, 1, false, false, Some(1), None)
        .ack("sensor", &m1);
    let m2 = s.publish("sensor", "s/1", 1);
    s.after_ms(5)
        .deliver_packet("monitor", &m2, 1, false, false, Some(1), None)
        .ack("sensor", &m2);
    assert_eq!(all(&s.trace_ended()), vec![]);

    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("monitor", false, false)
        .subscribe("monitor", "s/#", 1)
        .subscribe("monitor", "s/+", 1);
    s.connect("sensor", true, false).after_ms(10);
    let m = s.publish("sensor", "s/1", 1);
    s.after_ms(5)
        .deliver_packet("monitor", &m, 1, false, false, Some(1), None)
        .deliver_packet("monitor", &m, 1, false, false, Some(1), None)
        .ack("sensor", &m);
    assert_eq!(all(&s.end()), vec![]);
}

/// The 3.1.1 CONNECT had clean start; the CONNACK said session present 1 and the client
/// rejected it.
#[test]
fn mqtt_3_2_2_1_session_present_on_a_rejected_connack_is_judged() {
    let story = |session_present: bool| {
        let mut s = Story::new("3.1.1", Persistence::None);
        s.connecting("monitor", true);
        if session_present {
            s.connack_rejected("monitor", true, 0x82);
        } else {
            s.connect_failed("monitor");
        }
        s.after_ms(100).connect("monitor", true, false);
        s.end()
    };
    let v = run("integrity", &story(true));
    assert_eq!(v.len(), 1, "{v:#?}");
    one_with(&v, "integrity", "[MQTT-3.2.2-1]");
    assert_eq!(all(&story(false)), vec![]);
}

#[test]
fn a_connack_rejected_as_a_protocol_error_is_a_violation() {
    let mut s = Story::new("5.0", Persistence::None);
    s.connecting("monitor", false)
        .connack_rejected("monitor", false, 0x82);
    s.after_ms(100).connect("monitor", false, false);
    let v = run("integrity", &s.end());
    assert_eq!(v.len(), 1, "{v:#?}");
    one_with(&v, "integrity", "rejected the broker's answer");
}

/// The monitor (5.0, persistent) is offline from 0.5 s to 20 s; a message with a 60 s expiry
/// interval is acknowledged at 1.01 s (so it waited at least 18 whole seconds) and reaches it
/// on the connection asked for at 20 s, carrying `got`.
fn expiring(got: Option<u32>, dup: bool) -> Trace {
    let mut s = world("5.0", 1);
    s.at_ms(500).cut("monitor");
    s.at_ms(1000);
    let m = s.publish_expiring("sensor", "s/1", 1, 60);
    s.after_ms(10).ack("sensor", &m);
    s.at_ms(20_000).connect("monitor", false, true);
    s.after_ms(5)
        .deliver_packet("monitor", &m, 1, false, dup, Some(1), got);
    s.end()
}

#[test]
fn mqtt_3_3_2_6_expiry_interval_is_aged_by_the_time_waited() {
    for got in [Some(42), Some(30)] {
        assert_eq!(all(&expiring(got, false)), vec![], "{got:?}");
    }
    let v = run("integrity", &expiring(Some(60), false));
    assert_eq!(v.len(), 1, "{v:#?}");
    one_with(&v, "integrity", "at most 42 s may remain [MQTT-3.3.2-6]");
    let v = run("integrity", &expiring(None, false));
    one_with(&v, "integrity", "arrived without one");
}

#[test]
fn mqtt_3_3_2_5_a_first_delivery_never_carries_expiry_0() {
    let v = run("integrity", &expiring(Some(0), false));
    assert_eq!(v.len(), 1, "{v:#?}");
    one_with(&v, "integrity", "[MQTT-3.3.2-5]");
    assert_eq!(run("integrity", &expiring(Some(0), true)), vec![]);
}

#[test]
fn mqtt_3_3_2_6_no_expiry_interval_where_none_was_sent() {
    let mut s = world("5.0", 1);
    let m = s.publish("sensor", "s/1", 1);
    s.after_ms(5)
        .deliver_packet("monitor", &m, 1, false, false, Some(1), Some(10))
        .ack("sensor", &m);
    let v = run("integrity", &s.end());
    assert_eq!(v.len(), 1, "{v:#?}");
    one_with(&v, "integrity", "published without one");
}

/// The monitor holds `s/#` at QoS 0 and `s/1` at QoS 1; a QoS 1 message on `s/1` reaches it
/// at the QoS of each copy in `copies`.
fn overlapping(protocol: &str, copies: &[u8]) -> Trace {
    let mut s = Story::new(protocol, Persistence::Durable);
    s.connect("monitor", false, false)
        .subscribe("monitor", "s/#", 0)
        .subscribe("monitor", "s/1", 1);
    s.connect("sensor", true, false).after_ms(10);
    let m = s.publish("sensor", "s/1", 1);
    s.after_ms(5);
    for (i, &q) in copies.iter().enumerate() {
        let pkid = (q > 0).then_some(i as u16 + 1);
        s.deliver_packet("monitor", &m, q, false, false, pkid, None);
    }
    s.ack("sensor", &m);
    s.end()
}

#[test]
fn mqtt_3_3_5_1_overlapping_subscriptions_deliver_at_the_highest_qos() {
    for protocol in ["3.1.1", "5.0"] {
        let v = run("delivery", &overlapping(protocol, &[0]));
        assert_eq!(v.len(), 1, "{protocol}: {v:#?}");
        let rule = if protocol == "5.0" {
            "[MQTT-3.3.4-2]"
        } else {
            "[MQTT-3.3.5-1]"
        };
        one_with(&v, "delivery", rule);
        assert_eq!(all(&overlapping(protocol, &[1])), vec![], "{protocol}");
        assert_eq!(all(&overlapping(protocol, &[0, 1])), vec![], "{protocol}");
    }
}

#[test]
fn mqtt_3_3_5_1_at_most_one_copy_per_matching_subscription() {
    let v = run("delivery", &overlapping("5.0", &[1, 0, 1]));
    assert_eq!(v.len(), 1, "{v:#?}");
    one_with(&v, "delivery", "3 times without DUP");
    // One subscription: a second copy without DUP is one too many.
    let mut s = world("3.1.1", 1);
    let m = s.publish("sensor", "s/1", 1);
    s.after_ms(5)
        .deliver("monitor", &m)
        .deliver("monitor", &m)
        .ack("sensor", &m);
    let v = run("delivery", &s.end());
    assert_eq!(v.len(), 1, "{v:#?}");
    one_with(&v, "delivery", "2 times without DUP");
}

/// A QoS 2 retained message read through a QoS 1 subscription arrives at QoS `got`.
fn retained_read(got: u8) -> Trace {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("sensor", true, false);
    let m = s.publish_retained("sensor", "s/1", 2);
    s.after_ms(5).ack("sensor", &m);
    s.after_ms(10).connect("monitor", true, false);
    s.subscribe("monitor", "s/#", 1);
    s.after_ms(5).deliver_retained("monitor", &m, got);
    s.end()
}

/// 3.1.1: a retained copy goes at the lower of the published and the granted QoS.
#[test]
fn mqtt_3_8_4_6_retained_copy_at_min_of_published_and_granted_qos() {
    let v = run("integrity", &retained_read(0));
    assert_eq!(v.len(), 1, "{v:#?}");
    one_with(&v, "integrity", "[MQTT-3.8.4-6]");
    assert_eq!(all(&retained_read(1)), vec![]);
}

#[test]
fn a_client_that_reconnects_must_end_the_run_connected() {
    use mqtt_lab::check::expect::{self, Expectations};
    let expect = Expectations {
        connected_at_end: vec!["monitor".into()],
        ..Expectations::default()
    };
    // CONNACKs rejected again and again: never connected at the end.
    let mut s = Story::new("3.1.1", Persistence::None);
    for _ in 0..3 {
        s.connecting("monitor", true)
            .connack_rejected("monitor", true, 0x82)
            .after_ms(100);
    }
    let v = expect::check(&expect, &s.end());
    assert_eq!(v.len(), 1, "{v:#?}");
    one_with(
        &v,
        "expect",
        "monitor was not connected at the end of the run",
    );
    // Connected at the end, refused for its credentials, or crashed for good: nothing owed.
    let mut s = Story::new("3.1.1", Persistence::None);
    s.connecting("monitor", true).connect_failed("monitor");
    s.after_ms(100).connect("monitor", true, false);
    assert_eq!(expect::check(&expect, &s.end()), vec![]);
    let mut s = Story::new("3.1.1", Persistence::None);
    s.connecting("monitor", true)
        .connect_refused("monitor", 0x04);
    assert_eq!(expect::check(&expect, &s.end()), vec![]);
    let mut s = Story::new("3.1.1", Persistence::None);
    s.connect("monitor", true, false).crash("monitor");
    assert_eq!(expect::check(&expect, &s.end()), vec![]);
}
