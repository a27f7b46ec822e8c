//! The "subscription" checker on hand-written traces: No Local, subscription identifiers and
//! Retain As Published, each with a passing and a failing story; plus the 5.0 options as the
//! "delivery" and "retained" checkers and the properties as the "integrity" checker see them.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{MessageProps, Persistence, SubOptions, Trace};

fn run(name: &str, t: &Trace) -> Vec<Violation> {
    check::run([name], t, &CheckConfig::default()).unwrap()
}

fn all(t: &Trace) -> Vec<Violation> {
    check::run_all(t, &CheckConfig::default()).unwrap()
}

fn opts(no_local: bool, rap: bool, retain_handling: u8, id: Option<u32>) -> SubOptions {
    SubOptions {
        no_local,
        retain_as_published: rap,
        retain_handling,
        id,
    }
}

/// "panel" listens on `status/#` with No Local and publishes on it.
fn no_local_world() -> (Story, String) {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("panel", false, false).subscribe_with(
        "panel",
        "status/#",
        1,
        opts(true, false, 0, None),
    );
    let m = s.publish("panel", "status/x", 1);
    s.after_ms(5).ack("panel", &m);
    (s, m)
}

/// [MQTT-3.8.3-3]
#[test]
fn mqtt5_3_8_3_3_no_local_subscriber_is_not_owed_its_own_message_and_must_not_get_it() {
    let (mut s, _m) = no_local_world();
    assert_eq!(all(&s.end()), vec![]);

    let (mut s, m) = no_local_world();
    s.after_ms(5).deliver("panel", &m);
    let v = run("subscription", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("MQTT-3.8.3-3"), "{}", v[0]);

    // Without No Local the same silence is a lost message.
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("panel", false, false)
        .subscribe("panel", "status/#", 1);
    let m = s.publish("panel", "status/x", 1);
    s.after_ms(5).ack("panel", &m);
    let v = run("delivery", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
}

/// A retained copy of its own message, sent because of a new subscription, is not a forward.
#[test]
fn a_retained_copy_of_its_own_message_is_not_judged_by_no_local() {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("panel", false, false);
    let m = s.publish_retained("panel", "status/x", 1);
    s.after_ms(5).ack("panel", &m).after_ms(5);
    s.subscribe_with("panel", "status/#", 1, opts(true, false, 0, None))
        .after_ms(1)
        .deliver_retained("panel", &m, 1);
    assert_eq!(all(&s.end()), vec![]);
}

/// "app" holds `a/#` with id 7 and `a/+` with id 9; "pub" publishes on `a/1`.
fn ids_world() -> (Story, String) {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("app", false, false)
        .subscribe_with("app", "a/#", 1, opts(false, false, 0, Some(7)))
        .subscribe_with("app", "a/+", 1, opts(false, false, 0, Some(9)))
        .connect("pub", true, false);
    let m = s.publish("pub", "a/1", 1);
    s.after_ms(5).ack("pub", &m);
    (s, m)
}

/// [MQTT-3.3.4-3] [MQTT-3.3.4-4] [MQTT-3.3.4-5]
#[test]
fn mqtt_3_3_4_3_a_forwarded_message_carries_the_identifiers_of_its_subscriptions() {
    let (mut s, m) = ids_world();
    s.deliver_ids("app", &m, &[9, 7]);
    assert_eq!(all(&s.end()), vec![]);

    // One copy per subscription is allowed too.
    let (mut s, m) = ids_world();
    s.deliver_ids("app", &m, &[7]).deliver_ids("app", &m, &[9]);
    assert_eq!(run("subscription", &s.end()), vec![]);

    let (mut s, m) = ids_world();
    s.deliver_ids("app", &m, &[7]);
    let v = run("subscription", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message
            .contains("without subscription identifiers [9]"),
        "{}",
        v[0]
    );

    let (mut s, m) = ids_world();
    s.deliver_ids("app", &m, &[7, 10]);
    let v = run("subscription", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("[10]") && v[0].message.contains("MQTT-3.3.4-3"),
        "{}",
        v[0]
    );
}

/// A subscription answered between the publish and its delivery may or may not have caught
/// the message: a missing identifier is forgiven there, a foreign one never.
#[test]
fn identifiers_are_judged_exactly_only_in_clear_windows() {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("app", false, false)
        .subscribe_with("app", "a/#", 1, opts(false, false, 0, Some(7)))
        .connect("pub", true, false);
    let m = s.publish("pub", "a/1", 1);
    s.after_ms(1)
        .subscribe_with("app", "a/+", 1, opts(false, false, 0, Some(9)))
        .after_ms(1)
        .deliver_ids("app", &m, &[7])
        .ack("pub", &m);
    assert_eq!(run("subscription", &s.end()), vec![]);

    // The same unclear window, with an identifier "app" never gave a matching subscription.
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("app", false, false)
        .subscribe_with("app", "a/#", 1, opts(false, false, 0, Some(7)))
        .subscribe_with("app", "b/#", 1, opts(false, false, 0, Some(12)))
        .connect("pub", true, false);
    let m = s.publish("pub", "a/1", 1);
    s.after_ms(1)
        .subscribe_with("app", "a/+", 1, opts(false, false, 0, Some(9)))
        .after_ms(1)
        .deliver_ids("app", &m, &[7, 12])
        .ack("pub", &m);
    let v = run("subscription", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("[12]") && v[0].message.contains("MQTT-3.3.4-3"),
        "{}",
        v[0]
    );
}

/// "mirror" holds `s/#` with Retain As Published; "pub" publishes retained on `s/1`.
fn rap_world() -> (Story, String) {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("mirror", false, false)
        .subscribe_with("mirror", "s/#", 1, opts(false, true, 0, None))
        .connect("pub", true, false);
    let m = s.publish_retained("pub", "s/1", 1);
    s.after_ms(5).ack("pub", &m);
    (s, m)
}

/// [MQTT-3.3.1-13] [MQTT-3.3.1-12] (5.0)
#[test]
fn mqtt_3_3_1_13_retain_as_published_keeps_the_retain_flag_of_forwarded_messages() {
    let (mut s, m) = rap_world();
    s.deliver_as("mirror", &m, 1, true, false);
    assert_eq!(all(&s.end()), vec![]);

    let (mut s, m) = rap_world();
    s.deliver("mirror", &m);
    let v = run("subscription", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("MQTT-3.3.1-13"), "{}", v[0]);

    // Without the option, RETAIN 1 on a forwarded message is the retained checker's finding.
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("plain", false, false)
        .subscribe("plain", "s/#", 1)
        .connect("pub", true, false);
    let m = s.publish_retained("pub", "s/1", 1);
    s.after_ms(5)
        .ack("pub", &m)
        .deliver_as("plain", &m, 1, true, false);
    let v = run("retained", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
}

/// Forwarded messages with RETAIN 1 through Retain As Published still count for QoS 0's at
/// most once.
#[test]
fn forwarded_retained_messages_are_still_judged_by_delivery() {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("mirror", false, false)
        .subscribe_with("mirror", "s/#", 0, opts(false, true, 0, None))
        .connect("pub", true, false);
    let m = s.publish_retained("pub", "s/1", 0);
    s.after_ms(5)
        .deliver_as("mirror", &m, 0, true, false)
        .deliver_as("mirror", &m, 0, true, false);
    let v = run("delivery", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("QoS 0"), "{}", v[0]);
}

/// A viewer subscribing to `cfg/#` after `cfg/1` was set, with retain handling `rh`.
fn handling_world(rh: u8) -> (Story, String) {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("sensor", true, false)
        .connect("viewer", false, false);
    let r = s.publish_retained("sensor", "cfg/1", 1);
    s.after_ms(5).ack("sensor", &r).after_ms(5);
    s.subscribe_with("viewer", "cfg/#", 1, opts(false, false, rh, None));
    (s, r)
}

/// [MQTT-3.3.1-11]
#[test]
fn mqtt5_3_3_1_11_retain_handling_2_sends_no_retained_message() {
    let (mut s, _r) = handling_world(2);
    assert_eq!(all(&s.end()), vec![]);

    let (mut s, r) = handling_world(2);
    s.after_ms(1).deliver_retained("viewer", &r, 1);
    let v = run("retained", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("MQTT-3.3.1-11"), "{}", v[0]);
}

/// [MQTT-3.3.1-10]
#[test]
fn mqtt5_3_3_1_10_retain_handling_1_sends_retained_messages_only_for_a_new_subscription() {
    let (mut s, r) = handling_world(1);
    s.after_ms(1).deliver_retained("viewer", &r, 1).after_ms(5);
    s.subscribe_with("viewer", "cfg/#", 1, opts(false, false, 1, None));
    assert_eq!(all(&s.end()), vec![]);

    let (mut s, r) = handling_world(1);
    s.after_ms(1).deliver_retained("viewer", &r, 1).after_ms(5);
    s.subscribe_with("viewer", "cfg/#", 1, opts(false, false, 1, None))
        .after_ms(1)
        .deliver_retained("viewer", &r, 1);
    let v = run("retained", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("MQTT-3.3.1-10"), "{}", v[0]);

    // The first subscription of a new session is new again; and it is owed the value.
    let (mut s, r) = handling_world(1);
    s.after_ms(1).deliver_retained("viewer", &r, 1).after_ms(5);
    s.lost("viewer").connect("viewer", true, false);
    s.subscribe_with("viewer", "cfg/#", 1, opts(false, false, 1, None));
    let v = run("retained", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("never got the retained value"),
        "{}",
        v[0]
    );
}

fn props(users: &[(&str, &str)]) -> MessageProps {
    MessageProps {
        payload_format: Some(1),
        content_type: Some("application/json".into()),
        response_topic: Some("replies/a".into()),
        correlation_data: Some("req-1".into()),
        user_properties: users
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16]
/// [MQTT-3.3.2-20]
#[test]
fn mqtt_3_3_2_17_properties_are_forwarded_unaltered_and_in_order() {
    let sent = props(&[("a", "1"), ("b", "2"), ("a", "3")]);
    let world = || {
        let mut s = Story::new("5.0", Persistence::Durable);
        s.connect("svc", false, false)
            .subscribe("svc", "req/#", 1)
            .connect("caller", true, false);
        let m = s.publish_with("caller", "req/1", 1, false, sent.clone());
        s.after_ms(5).ack("caller", &m);
        (s, m)
    };
    let (mut s, m) = world();
    s.deliver("svc", &m);
    assert_eq!(all(&s.end()), vec![]);

    let (mut s, m) = world();
    let reordered = props(&[("a", "3"), ("b", "2"), ("a", "1")]);
    s.deliver_full("svc", &m, 1, false, false, reordered, &[]);
    let v = run("integrity", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("MQTT-3.3.2-18"), "{}", v[0]);

    let (mut s, m) = world();
    let stripped = MessageProps {
        content_type: None,
        ..sent.clone()
    };
    s.deliver_full("svc", &m, 1, false, false, stripped, &[]);
    let v = run("integrity", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("content type (none)") && v[0].message.contains("MQTT-3.3.2-20"),
        "{}",
        v[0]
    );
}

/// [MQTT-3.3.1-13] for a 5.0 client inside a 3.1.1 run: the rule follows the client's own
/// CONNECT, not the run's protocol.
#[test]
fn mqtt_3_3_1_13_retain_as_published_holds_for_a_v5_client_of_a_v311_run() {
    let world = || {
        let mut s = Story::new("3.1.1", Persistence::Durable);
        s.protocol("mirror", "5.0")
            .connect("mirror", false, false)
            .subscribe_with("mirror", "s/#", 1, opts(false, true, 0, Some(7)))
            .connect("pub", true, false);
        let m = s.publish_retained("pub", "s/1", 1);
        s.after_ms(5).ack("pub", &m);
        (s, m)
    };
    let (mut s, m) = world();
    s.deliver_full("mirror", &m, 1, true, false, Default::default(), &[7]);
    assert_eq!(all(&s.end()), vec![]);

    let (mut s, m) = world();
    s.deliver_full("mirror", &m, 1, false, false, Default::default(), &[7]);
    let v = run("subscription", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("MQTT-3.3.1-13"), "{}", v[0]);

    // [MQTT-3.3.4-4]: the identifier is owed too.
    let (mut s, m) = world();
    s.deliver_full("mirror", &m, 1, true, false, Default::default(), &[]);
    let v = run("subscription", &s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("MQTT-3.3.4-4"), "{}", v[0]);
}
