//! The "retained" checker on hand-written traces: a new subscriber sees the latest retained
//! value, never an older one, and none after a clear.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{Persistence, Trace};

fn retained(t: &Trace) -> Vec<Violation> {
    check::run(["retained"], t, &CheckConfig::default()).unwrap()
}

fn all(t: &Trace) -> Vec<Violation> {
    check::run_all(t, &CheckConfig::default()).unwrap()
}

/// A sensor that has set `cfg/1` twice (both acknowledged), and a fresh viewer.
fn world(persistence: Persistence) -> (Story, String, String) {
    let mut s = Story::new("3.1.1", persistence);
    s.connect("sensor", true, false)
        .connect("viewer", true, false);
    let r1 = s.publish_retained("sensor", "cfg/1", 1);
    s.after_ms(5).ack("sensor", &r1);
    let r2 = s.publish_retained("sensor", "cfg/1", 1);
    s.after_ms(5).ack("sensor", &r2).after_ms(100);
    (s, r1, r2)
}

#[test]
fn a_replaced_retained_value_gives_the_newest() {
    let (mut s, _r1, r2) = world(Persistence::Durable);
    s.subscribe("viewer", "cfg/#", 1)
        .deliver_retained("viewer", &r2, 1);
    assert_eq!(all(&s.end()), vec![]);
}

#[test]
fn an_older_retained_value_is_reported() {
    let (mut s, r1, _r2) = world(Persistence::Durable);
    s.subscribe("viewer", "cfg/#", 1)
        .deliver_retained("viewer", &r1, 1);
    let v = retained(&s.end());
    assert!(!v.is_empty());
    assert!(
        v[0].message.contains("got retained sensor#1 on cfg/1")
            && v[0].message.contains("was sensor#2"),
        "{}",
        v[0]
    );
}

/// Planted bug: a retained message not cleared.
#[test]
fn a_value_after_a_clear_is_reported() {
    let (mut s, _r1, r2) = world(Persistence::Durable);
    s.clear_retained("sensor", "cfg/1", 1)
        .after_ms(5)
        .ack("sensor", "")
        .after_ms(10);
    s.subscribe("viewer", "cfg/1", 1);
    assert_eq!(
        all(&s.trace_ended()),
        vec![],
        "nothing is owed after a clear"
    );
    s.deliver_retained("viewer", &r2, 1);
    let v = retained(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("(none)") && v[0].message.contains("had been cleared"),
        "{}",
        v[0]
    );
}

#[test]
fn a_missing_retained_value_is_reported() {
    let (mut s, _r1, _r2) = world(Persistence::Durable);
    s.subscribe("viewer", "cfg/+", 1);
    let v = retained(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message
            .contains("never got the retained value sensor#2 of cfg/1"),
        "{}",
        v[0]
    );
}

#[test]
fn a_retained_publish_in_flight_during_the_subscribe_allows_either_value() {
    for pick in [1, 2] {
        let (mut s, _r1, r2) = world(Persistence::Durable);
        let r3 = s.publish_retained("sensor", "cfg/1", 1);
        s.subscribe("viewer", "cfg/1", 1)
            .after_ms(5)
            .ack("sensor", &r3);
        let got = if pick == 1 { &r2 } else { &r3 };
        s.deliver_retained("viewer", got, 1);
        // r3 was published after the subscription could have been processed: it may also be
        // forwarded live.
        s.deliver("viewer", &r3);
        assert_eq!(all(&s.end()), vec![], "pick {pick}");
    }
}

#[test]
fn a_crash_without_persistence_clears_and_a_durable_one_keeps() {
    let (mut s, _r1, r2) = world(Persistence::None);
    s.broker_crash()
        .lost("sensor")
        .lost("viewer")
        .after_ms(500)
        .broker_restart();
    s.connect("viewer", true, false)
        .subscribe("viewer", "cfg/1", 1);
    assert_eq!(all(&s.trace_ended()), vec![]);
    s.deliver_retained("viewer", &r2, 1);
    assert_eq!(retained(&s.end()).len(), 1);

    let (mut s, _r1, r2) = world(Persistence::Durable);
    s.broker_crash()
        .lost("sensor")
        .lost("viewer")
        .after_ms(500)
        .broker_restart();
    s.connect("viewer", true, false)
        .subscribe("viewer", "cfg/1", 1)
        .deliver_retained("viewer", &r2, 1);
    assert_eq!(all(&s.end()), vec![]);
}

/// 3.1.1: a message forwarded to an existing subscription carries retain 0.
#[test]
fn a_live_forward_with_the_retain_flag_is_reported() {
    let (mut s, _r1, _r2) = world(Persistence::Durable);
    s.subscribe("viewer", "cfg/1", 0)
        .deliver_retained("viewer", "sensor#2", 0);
    let r3 = s.publish_retained("sensor", "cfg/1", 1);
    s.after_ms(100)
        .deliver_retained("viewer", &r3, 0)
        .ack("sensor", &r3);
    let v = retained(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("MQTT-3.3.1-9"), "{}", v[0]);
}

#[test]
fn a_dup_resend_of_the_retained_value_after_reconnect_is_fine() {
    let (mut s, _r1, r2) = world(Persistence::Durable);
    s.disconnect("viewer")
        .connect("viewer", false, false)
        .subscribe("viewer", "cfg/1", 1);
    s.deliver_retained("viewer", &r2, 1)
        .cut("viewer")
        .connect("viewer", false, true);
    s.deliver_as("viewer", &r2, 1, true, true);
    assert_eq!(all(&s.end()), vec![]);
}

#[test]
fn a_subscribe_whose_suback_was_lost_may_still_bring_the_retained_value() {
    let (mut s, _r1, r2) = world(Persistence::Durable);
    s.disconnect("viewer")
        .connect("viewer", false, false)
        .subscribe_requested("viewer", "cfg/1", 1);
    s.cut("viewer")
        .after_ms(100)
        .connect("viewer", false, true)
        .deliver_as("viewer", &r2, 1, true, true);
    assert_eq!(retained(&s.end()), vec![]);
}

const ACL: &str = "\
user sensor
topic readwrite cfg/#
user viewer
topic read cfg/1
user intruder
topic read cfg/#
";

/// The `world` with users and an ACL: `sensor` may set `cfg/#`, `viewer` read only `cfg/1`,
/// `intruder` write nothing.
fn world_with_acl() -> (Story, String) {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.auth(
        true,
        &[("sensor", "s"), ("viewer", "v"), ("intruder", "i")],
        Some(ACL),
    );
    s.credentials("sensor", "sensor", Some("s"))
        .credentials("viewer", "viewer", Some("v"))
        .credentials("intruder", "intruder", Some("i"))
        .connect("sensor", true, false)
        .connect("viewer", true, false)
        .connect("intruder", true, false);
    let r1 = s.publish_retained("sensor", "cfg/1", 1);
    s.after_ms(5).ack("sensor", &r1);
    (s, r1)
}

/// A denied retained publish, acknowledged as 3.1.1 must ([MQTT-3.3.5-2]), replaces nothing:
/// the value before it is still the one a new subscriber gets.
#[test]
fn a_denied_retained_publish_does_not_replace_the_value() {
    let (mut s, r1) = world_with_acl();
    let bad = s.publish_retained("intruder", "cfg/1", 1);
    s.after_ms(5)
        .ack("intruder", &bad)
        .after_ms(100)
        .subscribe("viewer", "cfg/#", 1)
        .deliver_retained("viewer", &r1, 1);
    assert_eq!(all(&s.end()), vec![]);

    let (mut s, _r1) = world_with_acl();
    let bad = s.publish_retained("intruder", "cfg/1", 1);
    s.after_ms(5)
        .ack("intruder", &bad)
        .after_ms(100)
        .subscribe("viewer", "cfg/#", 1)
        .deliver_retained("viewer", &bad, 1);
    assert!(
        !retained(&s.end()).is_empty(),
        "the denied value was retained"
    );
}

/// A retained value on a topic the subscriber may not read is not owed to it.
#[test]
fn a_retained_value_the_subscriber_may_not_read_is_not_owed() {
    let (mut s, r1) = world_with_acl();
    let other = s.publish_retained("sensor", "cfg/2", 1);
    s.after_ms(5)
        .ack("sensor", &other)
        .after_ms(100)
        .subscribe("viewer", "cfg/#", 1)
        .deliver_retained("viewer", &r1, 1);
    assert_eq!(retained(&s.end()), vec![]);

    let (mut s, _r1) = world_with_acl();
    s.after_ms(100).subscribe("viewer", "cfg/#", 1);
    let v = retained(&s.end());
    assert_eq!(v.len(), 1, "cfg/1 is readable and owed: {v:?}");
}
