//! Retained messages.

use super::*;
use crate::broker::BrokerEvent;
use crate::codec::RetainHandling;

fn with_publisher(config: BrokerConfig) -> Harness {
    let mut h = Harness::with(config);
    h.connect(1, "pub", true);
    h
}

/// 3.1.1: [MQTT-3.3.1-5] a retained message is stored; [MQTT-3.3.1-6] a new subscriber gets
/// it; [MQTT-3.3.1-8] with the retain flag set.
#[test]
fn mqtt_3_3_1_6_retained_message_sent_to_new_subscriber_with_retain_1() {
    let mut h = with_publisher(BrokerConfig::default());
    h.packet(1, retained("a/b", QoS::AtLeastOnce, 1, "r"));
    h.drain();
    h.connect(2, "sub", true);
    h.packet(2, subscribe(1, &[("a/+", QoS::ExactlyOnce)]));
    let out = h.drain();
    let got = sent(&out, 2);
    assert!(matches!(got[0], Packet::SubAck(_)), "SUBACK first: {got:?}");
    let p = publishes(&out, 2);
    assert_eq!(p.len(), 1);
    assert!(p[0].retain);
    assert_eq!(p[0].qos, QoS::AtLeastOnce, "min(retained QoS, granted QoS)");
    assert_eq!(&p[0].payload[..], b"r");
}

/// [MQTT-3.3.1-9] 3.1.1: a message forwarded to an existing subscription has retain 0, even
/// if it was published with retain 1.
#[test]
fn mqtt_3_3_1_9_live_forwarding_clears_retain() {
    let mut h = with_publisher(BrokerConfig::default());
    h.connect(2, "sub", true);
    h.subscribe(2, "t", QoS::AtMostOnce);
    h.packet(1, retained("t", QoS::AtMostOnce, 0, "r"));
    let p = publishes(&h.drain(), 2);
    assert_eq!(p.len(), 1);
    assert!(!p[0].retain);
}

/// [MQTT-3.3.1-7] 3.1.1: a newer retained message replaces the old, one per topic.
#[test]
fn mqtt_3_3_1_7_newer_retained_message_replaces_the_old() {
    let mut h = with_publisher(BrokerConfig::default());
    h.packet(1, retained("t", QoS::AtMostOnce, 0, "old"));
    h.packet(1, retained("t", QoS::AtMostOnce, 0, "new"));
    h.packet(1, retained("u", QoS::AtMostOnce, 0, "other"));
    h.drain();
    h.connect(2, "sub", true);
    h.packet(2, subscribe(1, &[("#", QoS::AtMostOnce)]));
    assert_eq!(payloads(&h.drain(), 2), vec!["new", "other"]);
}

/// [MQTT-3.3.1-10] 3.1.1: a retained PUBLISH with an empty payload is forwarded as normal and
/// removes the retained message; [MQTT-3.3.1-11] it is not stored itself.
#[test]
fn mqtt_3_3_1_10_empty_payload_clears_the_retained_message() {
    let mut h = with_publisher(BrokerConfig::default());
    h.connect(2, "live", true);
    h.subscribe(2, "t", QoS::AtMostOnce);
    h.packet(1, retained("t", QoS::AtMostOnce, 0, "r"));
    h.packet(1, retained("t", QoS::AtMostOnce, 0, ""));
    assert_eq!(payloads(&h.drain(), 2), vec!["r", ""]);
    h.connect(3, "late", true);
    h.packet(3, subscribe(1, &[("t", QoS::AtMostOnce)]));
    assert!(publishes(&h.drain(), 3).is_empty());
    assert!(h.broker.durable_state().retained.is_empty());
}

/// `max_retained`: a retained message for a new topic beyond the limit is forwarded but not
/// retained (counted and reported); existing topics can still be replaced.
#[test]
fn max_retained_bounds_the_store() {
    let mut h = with_publisher(BrokerConfig {
        max_retained: 1,
        ..Default::default()
    });
    h.connect(2, "live", true);
    h.subscribe(2, "#", QoS::AtMostOnce);
    h.packet(1, retained("a", QoS::AtMostOnce, 0, "1"));
    h.packet(1, retained("b", QoS::AtMostOnce, 0, "2"));
    h.packet(1, retained("a", QoS::AtMostOnce, 0, "3"));
    assert_eq!(payloads(&h.drain(), 2), vec!["1", "2", "3"]);
    assert_eq!(h.broker.stats().retained_rejected, 1);
    assert_eq!(
        h.broker.poll_event(),
        Some(BrokerEvent::RetainedStoreFull { topic: "b".into() })
    );
    h.connect(3, "late", true);
    h.packet(3, subscribe(1, &[("#", QoS::AtMostOnce)]));
    assert_eq!(payloads(&h.drain(), 3), vec!["3"]);
}

/// 5.0 retain handling: 1 sends retained messages only for a new subscription, 2 never; retain
/// as published keeps the flag on live forwarding.
#[test]
fn mqtt5_3_8_3_1_retain_handling_and_retain_as_published() {
    let mut h = with_publisher(BrokerConfig::default());
    h.packet(1, retained("t", QoS::AtMostOnce, 0, "r"));
    h.drain();
    h.connect_with(2, connect_v5("sub", true, 0));
    let sub = |rh: RetainHandling, rap: bool| {
        let Packet::Subscribe(mut s) = subscribe(1, &[("t", QoS::AtMostOnce)]) else {
            unreachable!()
        };
        s.filters[0].options.retain_handling = rh;
        s.filters[0].options.retain_as_published = rap;
        Packet::Subscribe(s)
    };
    h.packet(2, sub(RetainHandling::DoNotSend, false));
    assert!(publishes(&h.drain(), 2).is_empty());
    h.packet(2, sub(RetainHandling::SendIfNew, false));
    assert!(
        publishes(&h.drain(), 2).is_empty(),
        "the subscription existed"
    );
    h.packet(2, sub(RetainHandling::SendAtSubscribe, true));
    assert_eq!(payloads(&h.drain(), 2), vec!["r"]);
    h.packet(1, retained("t", QoS::AtMostOnce, 0, "live"));
    let p = publishes(&h.drain(), 2);
    assert!(p[0].retain, "retain as published");
}

/// [MQTT-3.3.1-12] 3.1.1: a PUBLISH with retain 0 neither stores nor replaces nor removes a
/// retained message.
#[test]
fn mqtt_3_3_1_12_retain_0_leaves_the_retained_message_alone() {
    let mut h = with_publisher(BrokerConfig::default());
    h.packet(1, retained("t", QoS::AtMostOnce, 0, "kept"));
    h.packet(1, publish("t", QoS::AtMostOnce, 0, "plain"));
    h.packet(1, publish("t", QoS::AtMostOnce, 0, ""));
    h.packet(1, publish("u", QoS::AtMostOnce, 0, "not retained"));
    h.drain();
    h.connect(2, "sub", true);
    h.packet(2, subscribe(1, &[("#", QoS::AtMostOnce)]));
    assert_eq!(payloads(&h.drain(), 2), vec!["kept"]);
}
