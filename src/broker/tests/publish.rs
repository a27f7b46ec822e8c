//! Inbound PUBLISH at each QoS, its acknowledgements, and bad PUBLISH packets.

use super::*;
use crate::codec::ReasonCode;

fn pub_sub() -> Harness {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.connect(2, "sub", true);
    h.subscribe(2, "t", QoS::ExactlyOnce);
    h
}

/// QoS 0: forwarded, not acknowledged.
#[test]
fn mqtt_4_3_1_qos0_forwarded_without_ack() {
    let mut h = pub_sub();
    let out = h.publish(1, "t", QoS::AtMostOnce, 0, "m");
    assert!(sent(&out, 1).is_empty());
    let p = publishes(&out, 2);
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].qos, p[0].pkid, p[0].dup), (QoS::AtMostOnce, 0, false));
}

/// [MQTT-4.3.2-2] 3.1.1, QoS 1: the receiver answers PUBACK with the packet identifier.
#[test]
fn mqtt_4_3_2_2_qos1_answered_with_puback() {
    let mut h = pub_sub();
    let out = h.publish(1, "t", QoS::AtLeastOnce, 42, "m");
    assert_eq!(sent(&out, 1), vec![Packet::PubAck(ack(42))]);
    assert_eq!(payloads(&out, 2), vec!["m"]);
}

/// [MQTT-4.3.3-2] 3.1.1, QoS 2: PUBREC; until PUBREL, a PUBLISH with the same packet
/// identifier is acknowledged with PUBREC again and never forwarded a second time.
#[test]
fn mqtt_4_3_3_2_qos2_resent_publish_is_not_forwarded_twice() {
    let mut h = pub_sub();
    let out = h.publish(1, "t", QoS::ExactlyOnce, 7, "once");
    assert_eq!(sent(&out, 1), vec![Packet::PubRec(ack(7))]);
    assert_eq!(payloads(&out, 2), vec!["once"]);
    let Packet::Publish(mut again) = publish("t", QoS::ExactlyOnce, 7, "once") else {
        unreachable!()
    };
    again.dup = true;
    h.packet(1, Packet::Publish(again));
    let out = h.drain();
    assert_eq!(sent(&out, 1), vec![Packet::PubRec(ack(7))]);
    assert!(
        publishes(&out, 2).is_empty(),
        "the resend is not forwarded: {out:?}"
    );
    h.packet(1, Packet::PubRel(ack(7)));
    assert_eq!(sent(&h.drain(), 1), vec![Packet::PubComp(ack(7))]);
    // After PUBREL the identifier is free: a new message with it is a new message.
    let out = h.publish(1, "t", QoS::ExactlyOnce, 7, "second");
    assert_eq!(payloads(&out, 2), vec!["second"]);
}

/// [MQTT-4.3.3-2] 3.1.1: the "received" state survives the publisher's reconnection
/// (persistent session): the resent PUBLISH after reconnecting is still not forwarded again.
#[test]
fn mqtt_4_3_3_2_qos2_received_state_survives_reconnect() {
    let mut h = Harness::new();
    h.connect(1, "pub", false);
    h.connect(2, "sub", true);
    h.subscribe(2, "t", QoS::ExactlyOnce);
    let out = h.publish(1, "t", QoS::ExactlyOnce, 3, "m");
    assert_eq!(payloads(&out, 2), vec!["m"]);
    h.closed(1, CloseCause::Io);
    h.connect(3, "pub", false);
    let Packet::Publish(mut again) = publish("t", QoS::ExactlyOnce, 3, "m") else {
        unreachable!()
    };
    again.dup = true;
    h.packet(3, Packet::Publish(again));
    let out = h.drain();
    assert_eq!(sent(&out, 3), vec![Packet::PubRec(ack(3))]);
    assert!(publishes(&out, 2).is_empty());
}

/// A PUBREL for an unknown packet identifier is still answered with PUBCOMP (5.0: 0x92).
#[test]
fn mqtt_4_3_3_pubrel_for_unknown_pkid_answered_with_pubcomp() {
    let mut h = Harness::new();
    h.connect(1, "a", true);
    h.packet(1, Packet::PubRel(ack(9)));
    assert_eq!(sent(&h.drain(), 1), vec![Packet::PubComp(ack(9))]);
    h.connect_with(2, connect_v5("b", true, 0));
    h.packet(2, Packet::PubRel(ack(9)));
    let mut comp = ack(9);
    comp.reason = ReasonCode::PacketIdentifierNotFound;
    comp.properties.reason_string = Some("no QoS 2 message awaits PUBREL".into());
    assert_eq!(sent(&h.drain(), 2), vec![Packet::PubComp(comp)]);
}

/// [MQTT-3.3.2-2] A topic name with wildcards ends the connection.
#[test]
fn mqtt_3_3_2_2_wildcard_in_topic_name_closes() {
    let mut h = pub_sub();
    let out = h.publish(1, "t/+", QoS::AtMostOnce, 0, "m");
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(ReasonCode::TopicNameInvalid))
    );
    assert!(publishes(&out, 2).is_empty());
}

/// [MQTT-3.3.1-2] DUP must be 0 on QoS 0; a QoS > 0 PUBLISH needs a non-zero identifier.
#[test]
fn mqtt_3_3_1_2_dup_on_qos0_closes() {
    let mut h = pub_sub();
    let Packet::Publish(mut p) = publish("t", QoS::AtMostOnce, 0, "m") else {
        unreachable!()
    };
    p.dup = true;
    h.packet(1, Packet::Publish(p));
    assert_eq!(
        close_of(&h.drain(), 1),
        Some(CloseReason::ProtocolViolation(ReasonCode::MalformedPacket))
    );
    h.connect(3, "p3", true);
    let out = h.publish(3, "t", QoS::AtLeastOnce, 0, "m");
    assert_eq!(
        close_of(&out, 3),
        Some(CloseReason::ProtocolViolation(ReasonCode::MalformedPacket))
    );
}

#[test]
fn topic_beyond_configured_limits_closes() {
    let mut h = Harness::with(BrokerConfig {
        max_topic_levels: 2,
        ..Default::default()
    });
    h.connect(1, "a", true);
    let out = h.publish(1, "a/b/c", QoS::AtMostOnce, 0, "m");
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(ReasonCode::TopicNameInvalid))
    );
}

/// 5.0: more QoS 2 messages awaiting PUBREL than our receive maximum: DISCONNECT 0x93.
#[test]
fn mqtt5_3_3_4_receive_maximum_exceeded_disconnects_0x93() {
    let mut h = Harness::with(BrokerConfig {
        receive_maximum: 2,
        ..Default::default()
    });
    h.connect_with(1, connect_v5("a", true, 0));
    h.publish(1, "t", QoS::ExactlyOnce, 1, "1");
    h.publish(1, "t", QoS::ExactlyOnce, 2, "2");
    let out = h.publish(1, "t", QoS::ExactlyOnce, 3, "3");
    assert_eq!(
        sent(&out, 1),
        vec![server_disconnect(
            ReasonCode::ReceiveMaximumExceeded,
            "too many QoS 2 messages awaiting PUBREL"
        )]
    );
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(
            ReasonCode::ReceiveMaximumExceeded
        ))
    );
}

/// 5.0: application properties are forwarded unchanged; subscription identifiers are the
/// subscriber's; a 3.1.1 subscriber gets none.
#[test]
fn mqtt5_3_3_2_properties_forwarded_unchanged() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("pub", true, 0));
    h.connect_with(2, connect_v5("sub5", true, 0));
    h.connect(3, "sub3", true);
    let Packet::Subscribe(mut s) = subscribe(1, &[("t", QoS::AtLeastOnce)]) else {
        unreachable!()
    };
    s.properties.subscription_identifiers = vec![17];
    h.packet(2, Packet::Subscribe(s));
    h.subscribe(3, "t", QoS::AtLeastOnce);
    h.drain();
    let Packet::Publish(mut p) = publish("t", QoS::AtLeastOnce, 5, "m") else {
        unreachable!()
    };
    p.properties.user_properties = vec![("k".into(), "v".into()), ("k".into(), "w".into())];
    p.properties.content_type = Some("text/plain".into());
    p.properties.correlation_data = Some(Bytes::from_static(b"c"));
    p.properties.response_topic = Some("r".into());
    p.properties.payload_format_indicator = Some(1);
    let expected_props = p.properties.clone();
    h.packet(1, Packet::Publish(p));
    let out = h.drain();
    let got5 = &publishes(&out, 2)[0];
    let mut want = expected_props;
    want.subscription_identifiers = vec![17];
    assert_eq!(got5.properties, want);
    assert!(publishes(&out, 3)[0].properties.is_empty());
}

/// [MQTT-3.3.2-9] 5.0: with a topic alias maximum of 0 the broker allows no aliases, so one is
/// answered with DISCONNECT 0x94.
#[test]
fn mqtt5_3_3_2_9_topic_alias_beyond_maximum_disconnects_0x94() {
    let mut h = Harness::with(BrokerConfig {
        topic_alias_maximum: 0,
        ..Default::default()
    });
    h.connect_with(1, connect_v5("pub", true, 0));
    let Packet::Publish(mut p) = publish("t", QoS::AtMostOnce, 0, "m") else {
        unreachable!()
    };
    p.properties.topic_alias = Some(1);
    h.packet(1, Packet::Publish(p));
    let out = h.drain();
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(
            ReasonCode::TopicAliasInvalid
        ))
    );
}

/// [MQTT-3.3.1-3] The DUP flag of an incoming PUBLISH is not propagated to subscribers.
#[test]
fn mqtt_3_3_1_3_incoming_dup_not_propagated() {
    let mut h = pub_sub();
    let Packet::Publish(mut p) = publish("t", QoS::AtLeastOnce, 4, "m") else {
        unreachable!()
    };
    p.dup = true;
    h.packet(1, Packet::Publish(p));
    let out = h.drain();
    let got = publishes(&out, 2);
    assert_eq!(got.len(), 1);
    assert!(!got[0].dup);
}
