//! The "delivery" checker on hand-written traces: QoS 0 at most once, QoS 1 at least once to
//! every entitled subscriber, QoS 2 exactly once.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{AckPacket, Persistence, Trace};

fn delivery(t: &Trace) -> Vec<Violation> {
    check::run(["delivery"], t, &CheckConfig::default()).unwrap()
}

fn all(t: &Trace) -> Vec<Violation> {
    check::run_all(t, &CheckConfig::default()).unwrap()
}

/// A persistent monitor subscribed to `s/#` at `qos`, and a connected sensor.
fn world(persistence: Persistence, qos: u8) -> Story {
    let mut s = Story::new("3.1.1", persistence);
    s.connect("monitor", false, false)
        .subscribe("monitor", "s/#", qos);
    s.connect("sensor", true, false).after_ms(10);
    s
}

#[test]
fn qos1_duplicates_and_dup_redeliveries_are_fine() {
    let mut s = world(Persistence::Durable, 1);
    let m1 = s.publish("sensor", "s/1", 1);
    s.after_ms(5)
        .deliver("monitor", &m1)
        .redeliver("monitor", &m1)
        .redeliver("monitor", &m1)
        .ack("sensor", &m1);
    assert_eq!(all(&s.end()), vec![]);
}

#[test]
fn lost_qos0_is_fine_but_duplicated_qos0_is_not() {
    let mut s = world(Persistence::Durable, 2);
    let m1 = s.publish("sensor", "s/1", 0);
    let m2 = s.publish("sensor", "s/1", 0);
    s.after_ms(5).deliver("monitor", &m2);
    assert_eq!(all(&s.trace_ended()), vec![]);
    s.after_ms(5).deliver("monitor", &m2);
    let v = delivery(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("QoS 0 message sensor#2")
            && v[0].message.contains("2 times to monitor"),
        "{}",
        v[0]
    );
    let _ = m1;
}

#[test]
fn message_published_while_a_persistent_subscriber_is_offline_is_queued_for_it() {
    let mut s = world(Persistence::Durable, 1);
    s.cut("monitor").after_ms(100);
    let m1 = s.publish("sensor", "s/1", 1);
    s.after_ms(5).ack("sensor", &m1).after_ms(500);
    s.connect("monitor", false, true)
        .after_ms(5)
        .redeliver("monitor", &m1);
    assert_eq!(all(&s.end()), vec![]);
}

/// Planted bug: a QoS 1 message dropped after a reconnect.
#[test]
fn qos1_lost_after_reconnect_is_reported() {
    let mut s = world(Persistence::Durable, 1);
    s.cut("monitor").after_ms(100);
    let m1 = s.publish("sensor", "s/1", 1);
    s.after_ms(5).ack("sensor", &m1).after_ms(500);
    s.connect("monitor", false, true);
    let v = delivery(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("QoS 1 message sensor#1")
            && v[0].message.contains("never reached monitor"),
        "{}",
        v[0]
    );
    assert!(v[0].message.contains("s/#"), "{}", v[0]);
}

#[test]
fn a_new_session_is_owed_nothing_from_before_it() {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("monitor", true, false)
        .subscribe("monitor", "s/#", 1);
    s.connect("sensor", true, false).after_ms(10);
    s.cut("monitor").after_ms(100);
    let m1 = s.publish("sensor", "s/1", 1);
    s.after_ms(5).ack("sensor", &m1).after_ms(500);
    // The session is gone (session present 0): the subscription must be made again.
    s.connect("monitor", true, false)
        .subscribe("monitor", "s/#", 1);
    assert_eq!(all(&s.end()), vec![]);
}

#[test]
fn broker_crash_without_persistence_forgives_but_durable_does_not() {
    for (persistence, expect) in [(Persistence::None, 0), (Persistence::Durable, 1)] {
        let mut s = world(persistence, 1);
        s.cut("monitor").after_ms(100);
        let m1 = s.publish("sensor", "s/1", 1);
        s.after_ms(5).ack("sensor", &m1).after_ms(100);
        s.broker_crash()
            .lost("sensor")
            .after_ms(1000)
            .broker_restart()
            .after_ms(100);
        let present = persistence == Persistence::Durable;
        s.connect("monitor", false, present)
            .connect("sensor", true, false);
        if !present {
            s.subscribe("monitor", "s/#", 1);
        }
        let t = s.end();
        assert_eq!(
            delivery(&t).len(),
            expect,
            "{persistence:?}: {:?}",
            delivery(&t)
        );
        if !present {
            assert_eq!(all(&t), vec![]);
        }
    }
}

/// Planted bug: a QoS 2 message forwarded twice.
#[test]
fn qos2_delivered_twice_is_reported() {
    let mut s = world(Persistence::Durable, 2);
    let m1 = s.publish("sensor", "s/1", 2);
    s.after_ms(5)
        .deliver("monitor", &m1)
        .after_ms(5)
        .deliver("monitor", &m1)
        .ack("sensor", &m1);
    let v = delivery(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("QoS 2 message sensor#1"), "{}", v[0]);
    assert!(v[0].message.contains("twice to monitor"), "{}", v[0]);
}

#[test]
fn qos2_redelivered_after_the_subscriber_crashed_is_forgiven() {
    let mut s = world(Persistence::Durable, 2);
    let m1 = s.publish("sensor", "s/1", 2);
    s.after_ms(5)
        .deliver("monitor", &m1)
        .crash("monitor")
        .after_ms(200)
        .restart("monitor");
    s.connect("monitor", false, true)
        .redeliver("monitor", &m1)
        .ack("sensor", &m1);
    assert_eq!(all(&s.end()), vec![]);
}

#[test]
fn qos2_published_but_granted_qos1_may_repeat() {
    let mut s = world(Persistence::Durable, 1);
    let m1 = s.publish("sensor", "s/1", 2);
    s.after_ms(5)
        .deliver_as("monitor", &m1, 1, false, false)
        .deliver_as("monitor", &m1, 1, false, true);
    s.ack("sensor", &m1);
    assert_eq!(all(&s.end()), vec![]);
}

#[test]
fn nothing_is_owed_to_late_subscribers_unsubscribers_or_at_granted_qos0() {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("late", false, false)
        .connect("gone", false, false)
        .subscribe("gone", "s/#", 1);
    s.connect("zero", false, false)
        .subscribe_granted("zero", "s/#", 1, Some(0));
    s.connect("sensor", true, false);
    let m1 = s.publish("sensor", "s/1", 1);
    s.subscribe("late", "s/#", 1)
        .unsubscribe("gone", "s/#")
        .after_ms(5)
        .ack("sensor", &m1);
    assert_eq!(all(&s.end()), vec![]);
}

#[test]
fn a_possibly_overflowed_queue_excuses_losses() {
    let mut s = world(Persistence::Durable, 1);
    s.max_queued(2);
    s.cut("monitor").after_ms(100);
    let ms: Vec<String> = (0..4).map(|_| s.publish("sensor", "s/1", 1)).collect();
    for m in &ms {
        s.ack("sensor", m);
    }
    s.after_ms(500)
        .connect("monitor", false, true)
        .deliver("monitor", &ms[0])
        .deliver("monitor", &ms[1]);
    let t = s.end();
    assert_eq!(all(&t), vec![]);
    // With room for all four, the two missing ones are owed.
    let mut t2 = t.clone();
    if let mqtt_lab::trace::Event::RunStarted {
        max_queued_messages,
        ..
    } = &mut t2.events[0].event
    {
        *max_queued_messages = Some(4);
    }
    assert_eq!(delivery(&t2).len(), 2, "{:?}", delivery(&t2));
}

#[test]
fn liveness_is_not_demanded_for_publishes_acknowledged_after_settling_began() {
    let mut s = world(Persistence::Durable, 1);
    s.settle();
    let m1 = s.publish("sensor", "s/1", 1);
    s.ack("sensor", &m1);
    assert_eq!(all(&s.end()), vec![]);
}

#[test]
fn a_subscriber_not_connected_at_the_end_is_not_judged() {
    let mut s = world(Persistence::Durable, 1);
    let m1 = s.publish("sensor", "s/1", 1);
    s.ack("sensor", &m1).power_off("monitor");
    assert_eq!(delivery(&s.end()), vec![]);
}

/// A QoS 2 publisher process crashes after the broker's PUBREC and before its PUBREL; a fresh
/// process resumes the session and sends another message under the same packet identifier.
/// `released`: the first exchange ended (PUBCOMP received) before the crash.
fn identifier_reused_by_a_fresh_process(released: bool) -> Trace {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.process("sensor-b", "sensor");
    s.session_expiry("sensor", 600)
        .session_expiry("sensor-b", 600)
        .session_expiry("monitor", 600);
    s.connect("monitor", false, false)
        .subscribe("monitor", "s/#", 2);
    s.connect("sensor", false, false).after_ms(10);
    let first = s.publish("sensor", "s/1", 2);
    s.publish_sent("sensor", &first, 7, false).after_ms(5);
    s.deliver("monitor", &first);
    s.ack_received("sensor", AckPacket::Pubrec, 7, &first);
    if released {
        s.ack_sent("sensor", AckPacket::Pubrel, 7, &first)
            .after_ms(5)
            .ack_received("sensor", AckPacket::Pubcomp, 7, &first)
            .ack("sensor", &first);
    }
    s.after_ms(100).crash("sensor").after_ms(500);
    s.connect("sensor-b", false, true).after_ms(10);
    let second = s.publish("sensor-b", "s/1", 2);
    s.publish_sent("sensor-b", &second, 7, false).after_ms(5);
    // The broker answers as for a resend of the first message and drops this one.
    s.ack_received("sensor-b", AckPacket::Pubrec, 7, &second)
        .ack_sent("sensor-b", AckPacket::Pubrel, 7, &second)
        .after_ms(5)
        .ack_received("sensor-b", AckPacket::Pubcomp, 7, &second)
        .ack("sensor-b", &second);
    s.after_ms(10_000).end()
}

/// [MQTT-4.3.3-10] Until the PUBREL, a PUBLISH with the identifier of an unreleased QoS 2
/// exchange is a resend: the broker must not deliver it again. A fresh process that resumes the
/// session and reuses the identifier has its message dropped rightly, acknowledgement or not;
/// once the exchange ended, the same loss is reported.
#[test]
fn mqtt_4_3_3_10_a_message_under_an_identifier_the_session_still_holds_is_not_owed() {
    assert_eq!(all(&identifier_reused_by_a_fresh_process(false)), vec![]);
    let v = delivery(&identifier_reused_by_a_fresh_process(true));
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].message.contains("sensor-b#1") && v[0].message.contains("never reached monitor"),
        "{}",
        v[0]
    );
}
