//! The "ordering" checker on hand-written traces (specification section 4.6).

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{Persistence, Trace};

fn ordering(t: &Trace) -> Vec<Violation> {
    check::run(["ordering"], t, &CheckConfig::default()).unwrap()
}

fn all(t: &Trace) -> Vec<Violation> {
    check::run_all(t, &CheckConfig::default()).unwrap()
}

fn world(qos: u8) -> Story {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("monitor", false, false)
        .subscribe("monitor", "s/#", qos);
    s.connect("a", true, false)
        .connect("b", true, false)
        .after_ms(10);
    s
}

#[test]
fn redeliveries_and_other_publishers_do_not_count() {
    let mut s = world(1);
    let a1 = s.publish("a", "s/1", 1);
    let b1 = s.publish("b", "s/1", 1);
    let a2 = s.publish("a", "s/1", 1);
    let a3 = s.publish("a", "s/1", 1);
    // b's message overtakes a's (different publishers), a1 comes again after a2 (a resend).
    s.after_ms(5)
        .deliver("monitor", &b1)
        .deliver("monitor", &a1)
        .deliver("monitor", &a2);
    s.redeliver("monitor", &a1)
        .redeliver("monitor", &a1)
        .deliver("monitor", &a3);
    for m in [&a1, &b1, &a2, &a3] {
        let who = if m.starts_with('a') { "a" } else { "b" };
        s.ack(who, m);
    }
    assert_eq!(all(&s.end()), vec![]);
}

/// Planted bug: two messages of one publisher reordered.
#[test]
fn reordered_first_deliveries_are_reported() {
    let mut s = world(1);
    let a1 = s.publish("a", "s/1", 1);
    let a2 = s.publish("a", "s/1", 1);
    s.after_ms(5)
        .deliver("monitor", &a2)
        .deliver("monitor", &a1)
        .ack("a", &a1)
        .ack("a", &a2);
    let v = ordering(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("monitor received a#1 after a#2"),
        "{}",
        v[0]
    );
}

#[test]
fn order_holds_across_reconnects_of_one_session() {
    let mut s = world(2);
    let a1 = s.publish("a", "s/1", 2);
    let a2 = s.publish("a", "s/1", 2);
    let a3 = s.publish("a", "s/1", 2);
    s.after_ms(5)
        .deliver("monitor", &a1)
        .cut("monitor")
        .after_ms(100);
    s.connect("monitor", false, true)
        .deliver("monitor", &a3)
        .deliver("monitor", &a2);
    let v = ordering(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("a#2 after a#3"), "{}", v[0]);
}

#[test]
fn qos0_order_is_judged_within_one_connection_only() {
    let mut s = world(0);
    let a1 = s.publish("a", "s/1", 0);
    let a2 = s.publish("a", "s/1", 0);
    s.after_ms(5)
        .deliver("monitor", &a2)
        .cut("monitor")
        .after_ms(100);
    s.connect("monitor", false, true).deliver("monitor", &a1);
    assert_eq!(ordering(&s.trace_ended()), vec![]);
    let a3 = s.publish("a", "s/1", 0);
    let a4 = s.publish("a", "s/1", 0);
    s.deliver("monitor", &a4).deliver("monitor", &a3);
    assert_eq!(ordering(&s.end()).len(), 1);
}

#[test]
fn retained_copies_and_different_topics_are_not_ordered() {
    let mut s = world(1);
    let a1 = s.publish_retained("a", "s/1", 1);
    let a2 = s.publish("a", "s/2", 1);
    let a3 = s.publish("a", "s/1", 1);
    s.after_ms(5)
        .deliver("monitor", &a3)
        .deliver("monitor", &a2)
        .ack("a", &a1)
        .ack("a", &a2)
        .ack("a", &a3);
    // a#1 reaches monitor only as the retained copy for a new subscription: not a forward.
    s.subscribe("monitor", "s/1", 1)
        .deliver_retained("monitor", &a1, 1);
    assert_eq!(ordering(&s.end()), vec![]);
}

/// [MQTT-4.6.0-6] owes order on non-shared subscriptions only: a shared member may get a
/// message handed on from a member whose session ended after later ones. The same reordering
/// through a plain subscription is still reported.
#[test]
fn mqtt5_4_6_0_6_order_is_judged_on_non_shared_subscriptions_only() {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("member", false, false)
        .subscribe("member", "$share/g/s/#", 1)
        .connect("plain", false, false)
        .subscribe("plain", "s/#", 1)
        .connect("a", true, false)
        .after_ms(10);
    let a1 = s.publish("a", "s/1", 1);
    let a2 = s.publish("a", "s/1", 1);
    s.after_ms(5)
        .deliver("member", &a2)
        .deliver("member", &a1)
        .deliver("plain", &a2)
        .deliver("plain", &a1)
        .ack("a", &a1)
        .ack("a", &a2);
    let v = ordering(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.starts_with("plain received"), "{}", v[0]);
}
