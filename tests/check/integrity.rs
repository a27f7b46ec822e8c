//! The "integrity" checker on hand-written traces: nothing delivered that was never published.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{Event, Persistence, Trace};

fn integrity(t: &Trace) -> Vec<Violation> {
    check::run(["integrity"], t, &CheckConfig::default()).unwrap()
}

fn world() -> Story {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("monitor", false, false)
        .subscribe("monitor", "s/#", 1);
    s.connect("sensor", true, false);
    s
}

fn delivered(
    s: &mut Story,
    topic: &str,
    qos: u8,
    retain: bool,
    dup: bool,
    payload: &str,
) -> Vec<Violation> {
    let mut t = s.trace();
    t.push(
        s.now_us(),
        Event::Delivered {
            client: "monitor".into(),
            topic: topic.into(),
            qos,
            retain,
            dup,
            packet_id: None,
            payload: payload.into(),
            size: 32,
            message_expiry_s: None,
            properties: Default::default(),
            subscription_ids: Vec::new(),
        },
    );
    integrity(&t)
}

#[test]
fn published_messages_and_wills_pass() {
    let mut s = world();
    s.keep_alive("sensor", 4)
        .will("sensor", "s/status", 1, false)
        .connect("sensor", true, false);
    let m1 = s.publish("sensor", "s/1", 1);
    s.deliver("monitor", &m1)
        .cut("sensor")
        .deliver_will("monitor", "sensor");
    assert_eq!(
        check::run_all(&s.end(), &CheckConfig::default()).unwrap(),
        vec![]
    );
}

#[test]
fn a_message_never_published_is_reported() {
    let mut s = world();
    let v = delivered(&mut s, "s/1", 1, false, false, "sensor#9");
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message
            .contains("sensor#9 (on s/1, to monitor) was delivered but never published"),
        "{}",
        v[0]
    );
    // Published, but on another topic.
    s.publish("sensor", "s/2", 1);
    assert_eq!(
        delivered(&mut s, "s/1", 1, false, false, "sensor#1").len(),
        1
    );
}

/// [MQTT-4.7.2-1]: `$` topics are the server's. A message the broker publishes itself there
/// (mosquitto's `$SYS/broker/uptime`) was published by no client and is no violation; it is
/// still judged by whom it reaches, and a lab label on a `$` topic is still a message of the
/// run that must have been published.
#[test]
fn mqtt_4_7_2_1_the_brokers_own_dollar_messages_are_not_fabrications() {
    let mut s = world();
    s.subscribe("monitor", "$SYS/#", 0);
    assert_eq!(
        delivered(&mut s, "$SYS/broker/uptime", 0, false, false, "22 seconds"),
        vec![]
    );
    let v = delivered(&mut s, "$SYS/broker/load", 0, false, false, "sensor#9");
    assert!(v[0].message.contains("never published"), "{v:?}");
    // A `#` subscriber is not owed it: the broker's own message reaching it is reported.
    let mut plain = Story::new("3.1.1", Persistence::Durable);
    plain
        .connect("monitor", false, false)
        .subscribe("monitor", "#", 0);
    let v = delivered(
        &mut plain,
        "$SYS/broker/uptime",
        0,
        false,
        false,
        "22 seconds",
    );
    assert!(
        v[0].message
            .contains("never subscribed to a matching filter"),
        "{v:?}"
    );
}

#[test]
fn flags_above_what_was_published_or_granted_are_reported() {
    let mut s = world();
    s.publish("sensor", "s/1", 1);
    assert_eq!(
        delivered(&mut s, "s/1", 1, false, false, "sensor#1"),
        vec![]
    );
    assert!(
        delivered(&mut s, "s/1", 2, false, false, "sensor#1")[0]
            .message
            .contains("at QoS 2 but published at QoS 1")
    );
    assert!(
        delivered(&mut s, "s/1", 1, true, false, "sensor#1")[0]
            .message
            .contains("never published retained")
    );
    s.publish("sensor", "s/0", 0);
    assert!(
        delivered(&mut s, "s/0", 0, false, true, "sensor#2")[0]
            .message
            .contains("MQTT-3.3.1-2")
    );
    s.publish("sensor", "s/2", 2);
    assert!(
        delivered(&mut s, "s/2", 2, false, false, "sensor#3")[0]
            .message
            .contains("above the QoS 1")
    );
}

#[test]
fn a_delivery_without_a_subscription_is_reported() {
    let mut s = world();
    s.publish("sensor", "other/1", 0);
    let v = delivered(&mut s, "other/1", 0, false, false, "sensor#1");
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("never subscribed"), "{}", v[0]);
}

/// A client that closed its connection on a broker's protocol violation (here 0x93, Receive
/// Maximum exceeded) is a violation, named with the reason; an ordinary loss is not.
#[test]
fn a_broker_protocol_violation_seen_by_a_client_is_reported() {
    let mut s = world();
    s.lost("sensor").connect("sensor", true, false);
    assert_eq!(integrity(&s.trace()), vec![]);
    s.protocol_error("monitor", 0x93)
        .connect("monitor", false, true);
    let v = integrity(&s.trace());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains(
            "monitor closed its connection because the broker broke the protocol (reason 0x93 ReceiveMaximumExceeded)"
        ),
        "{}",
        v[0]
    );
}

/// A 5.0 broker's DISCONNECT accusing the client (here 0x95, Packet too large) is a violation
/// named with the reason; one that does not (0x8E, Session taken over) is not.
#[test]
fn a_broker_accusing_a_client_of_a_protocol_breach_is_reported() {
    let mut s = world();
    s.server_disconnect("sensor", 0x8E)
        .connect("sensor", true, false);
    assert_eq!(integrity(&s.trace()), vec![]);
    s.server_disconnect("monitor", 0x95)
        .connect("monitor", false, true);
    let v = integrity(&s.trace());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains(
            "the broker closed monitor's connection accusing it of breaking the protocol (reason 0x95 PacketTooLarge)"
        ),
        "{}",
        v[0]
    );
}

/// A sensor with a persistent session sends `sensor#1` (QoS 1, identifier 7), loses its
/// connection before the PUBACK and sends it again after reconnecting, with `dup`, into a
/// session the broker `resumed` (session present) or not.
fn client_resend(dup: bool, resumed: bool) -> Trace {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("monitor", false, false)
        .subscribe("monitor", "s/#", 1)
        .connect("sensor", false, false);
    let m = s.publish("sensor", "s/1", 1);
    s.publish_sent("sensor", &m, 7, false)
        .after_ms(5)
        .cut("sensor")
        .after_ms(100)
        .connect("sensor", false, resumed)
        .publish_sent("sensor", &m, 7, dup)
        .after_ms(5)
        .deliver("monitor", &m)
        .ack("sensor", &m);
    s.at_ms(10_000).end()
}

/// [MQTT-3.3.1-1] A client's own resend carries DUP, like the broker's: the same message under
/// the same packet identifier in a resumed session without DUP is reported; with DUP, or as
/// the first send of a new session, it is not.
#[test]
fn mqtt_3_3_1_1_a_client_resend_without_dup_is_reported() {
    assert_eq!(integrity(&client_resend(true, true)), vec![]);
    assert_eq!(integrity(&client_resend(false, false)), vec![]);
    let v = integrity(&client_resend(false, true));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("sensor sent sensor#1 again")
            && v[0].message.contains("MQTT-3.3.1-1"),
        "{}",
        v[0]
    );
}
