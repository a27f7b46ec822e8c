//! 5.0 topic aliases both ways, the receive window we announce, and what survives a reconnect
//! (nothing: mappings and quota belong to one connection).

use super::*;
use crate::codec::{Disconnect, Packet};

fn v5_with(f: impl FnOnce(&mut ClientConfig)) -> H {
    let mut cfg = config(Protocol::V5);
    f(&mut cfg);
    H::new(cfg)
}

fn aliased(pkid: u16, qos: QoS, topic: &str, alias: u16) -> Publish {
    let mut p = incoming(pkid, qos, false);
    p.topic = topic.into();
    p.properties.topic_alias = Some(alias);
    p
}

fn connack_aliases(session_present: bool, max: u16) -> ConnAck {
    let mut ack = connack(session_present);
    ack.properties.topic_alias_maximum = Some(max);
    ack
}

fn delivered_topics(events: &[ClientEvent]) -> Vec<(String, Option<u16>)> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message(p) => Some((p.topic.clone(), p.properties.topic_alias)),
            _ => None,
        })
        .collect()
}

/// The first action is DISCONNECT with `reason`, then the transport closes.
fn assert_disconnected_with(h: &mut H, reason: ReasonCode) {
    let acts = h.actions();
    assert_eq!(
        acts.first(),
        Some(&ClientAction::Send(Packet::Disconnect(Disconnect {
            reason,
            properties: Properties::default(),
        }))),
        "{acts:?}"
    );
    assert_eq!(acts.get(1), Some(&ClientAction::CloseTransport));
    assert!(h.events().contains(&ClientEvent::ConnectionLost {
        cause: DownCause::ProtocolError(reason)
    }));
}

/// (topic, alias) of a sent PUBLISH.
fn wire_topic(p: &Packet) -> (String, Option<u16>) {
    match p {
        Packet::Publish(p) => (p.topic.clone(), p.properties.topic_alias),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// The Topic Alias Maximum we accept is announced in CONNECT, and only when above 0.
#[test]
fn connect_announces_topic_alias_maximum() {
    let mut h = v5_with(|c| c.topic_alias_maximum = 4);
    let connect = h.connect_with(connack(false));
    assert_eq!(connect.properties.topic_alias_maximum, Some(4));
    let mut h = H::v5();
    let connect = h.connect_with(connack(false));
    assert_eq!(connect.properties.topic_alias_maximum, None);
}

/// [MQTT-3.3.2-10] every alias up to our maximum is accepted: the application sees full topics
/// and no alias property.
#[test]
fn mqtt_3_3_2_10_broker_aliases_resolve_to_full_topics() {
    let mut h = v5_with(|c| c.topic_alias_maximum = 2);
    h.connect(false);
    let _ = h.events();
    h.recv(Packet::Publish(aliased(0, QoS::AtMostOnce, "a/1", 1)));
    h.recv(Packet::Publish(aliased(1, QoS::AtLeastOnce, "", 1)));
    h.recv(Packet::Publish(aliased(2, QoS::ExactlyOnce, "b/2", 2)));
    h.recv(Packet::Publish(aliased(3, QoS::AtLeastOnce, "a/3", 1)));
    h.recv(Packet::Publish(aliased(0, QoS::AtMostOnce, "", 1)));
    assert_eq!(
        delivered_topics(&h.events()),
        [
            ("a/1", None),
            ("a/1", None),
            ("b/2", None),
            ("a/3", None),
            ("a/3", None)
        ]
        .map(|(t, a)| (t.to_string(), a))
    );
    let acks = h.sent();
    assert_eq!(
        acks,
        vec![
            Packet::PubAck(ack(1)),
            Packet::PubRec(ack(2)),
            Packet::PubAck(ack(3))
        ]
    );
}

/// [MQTT-3.3.2-8] [MQTT-3.1.2-26] alias 0, or one above our maximum: DISCONNECT 0x94.
#[test]
fn mqtt_3_3_2_8_alias_zero_or_above_our_maximum_is_topic_alias_invalid() {
    for alias in [0, 3] {
        let mut h = v5_with(|c| c.topic_alias_maximum = 2);
        h.connect(false);
        let _ = h.events();
        h.recv(Packet::Publish(aliased(1, QoS::AtLeastOnce, "t", alias)));
        assert_disconnected_with(&mut h, ReasonCode::TopicAliasInvalid);
    }
}

/// An alias with an empty topic that was never set, or an empty topic without alias:
/// DISCONNECT 0x82 (section 3.3.2.3.4, 3.3.2.1).
#[test]
fn unknown_alias_or_missing_topic_is_a_protocol_error() {
    let mut h = v5_with(|c| c.topic_alias_maximum = 2);
    h.connect(false);
    let _ = h.events();
    h.recv(Packet::Publish(aliased(0, QoS::AtMostOnce, "", 2)));
    assert_disconnected_with(&mut h, ReasonCode::ProtocolError);
    let mut h = H::v5();
    h.connect(false);
    let _ = h.events();
    let mut p = incoming(0, QoS::AtMostOnce, false);
    p.topic.clear();
    h.recv(Packet::Publish(p));
    assert_disconnected_with(&mut h, ReasonCode::ProtocolError);
}

/// [MQTT-3.3.2-7] a mapping set on one connection means nothing on the next.
#[test]
fn mqtt_3_3_2_7_inbound_aliases_do_not_survive_a_reconnect() {
    let mut h = v5_with(|c| c.topic_alias_maximum = 2);
    h.connect(false);
    h.recv(Packet::Publish(aliased(0, QoS::AtMostOnce, "a", 1)));
    h.reconnect(true);
    let _ = h.actions();
    let _ = h.events();
    h.recv(Packet::Publish(aliased(0, QoS::AtMostOnce, "", 1)));
    assert_disconnected_with(&mut h, ReasonCode::ProtocolError);
}

/// [MQTT-3.2.2-17] [MQTT-3.3.2-9] outbound aliases: first come first served, never more than
/// the broker's CONNACK maximum, topic only on first use.
#[test]
fn mqtt_3_2_2_17_outbound_aliases_are_capped_by_the_broker() {
    let mut h = v5_with(|c| c.outbound_topic_aliases = 5);
    h.connect_with(connack_aliases(false, 1));
    for topic in ["a", "b", "a", "b", "a"] {
        h.publish(topic, QoS::AtMostOnce);
    }
    let sent: Vec<_> = h.sent().iter().map(wire_topic).collect();
    assert_eq!(
        sent,
        [
            ("a", Some(1)),
            ("b", None),
            ("", Some(1)),
            ("b", None),
            ("", Some(1))
        ]
        .map(|(t, a)| (t.to_string(), a))
    );
}

/// [MQTT-3.2.2-18] A broker that announces no Topic Alias Maximum gets none, whatever our
/// option says.
#[test]
fn mqtt_3_2_2_18_no_aliases_when_the_broker_accepts_none() {
    let mut h = v5_with(|c| c.outbound_topic_aliases = 5);
    h.connect(false);
    h.publish("a", QoS::AtMostOnce);
    h.publish("a", QoS::AtMostOnce);
    let sent: Vec<_> = h.sent().iter().map(wire_topic).collect();
    assert_eq!(sent, vec![("a".to_string(), None); 2]);
}

/// [MQTT-3.3.2-7] after a reconnect, resends carry the full topic and no alias, and aliases
/// are assigned afresh; an alias passed by the application is ignored.
#[test]
fn mqtt_3_3_2_7_resends_carry_the_topic_and_aliases_start_afresh() {
    let mut h = v5_with(|c| c.outbound_topic_aliases = 2);
    h.connect_with(connack_aliases(false, 10));
    h.publish("a", QoS::AtLeastOnce);
    h.c.publish(
        h.now,
        "a",
        Bytes::from_static(b"x"),
        QoS::AtLeastOnce,
        false,
        Properties::from(PropertySet {
            topic_alias: Some(9),
            ..PropertySet::default()
        }),
    )
    .unwrap();
    let sent: Vec<_> = h.sent().iter().map(wire_topic).collect();
    assert_eq!(
        sent,
        [("a", Some(1)), ("", Some(1))].map(|(t, a)| (t.to_string(), a))
    );
    h.c.handle_transport_down(h.now, DownCause::PeerClosed);
    h.fire();
    h.open_with(connack_aliases(true, 10));
    let resent = h.sent();
    assert!(
        resent.iter().all(|p| pub_id(p).1),
        "DUP resends: {resent:?}"
    );
    let resent: Vec<_> = resent.iter().map(wire_topic).collect();
    assert_eq!(resent, vec![("a".to_string(), None); 2]);
    h.publish("a", QoS::AtMostOnce);
    assert_eq!(
        h.sent().iter().map(wire_topic).collect::<Vec<_>>(),
        vec![("a".to_string(), Some(1))],
        "the new connection's first use carries the topic again"
    );
}

/// An alias is not used when the alias property would push the packet over the broker's
/// maximum packet size; the topic goes in full.
#[test]
fn alias_skipped_when_it_would_not_fit() {
    let mut h = v5_with(|c| c.outbound_topic_aliases = 2);
    let mut ack = connack_aliases(false, 10);
    // "a" QoS 0 with 1 payload byte: 2 + 3 + 1 + 1 = 7 bytes; the alias adds 3.
    ack.properties.maximum_packet_size = Some(7);
    h.connect_with(ack);
    h.publish("a", QoS::AtMostOnce);
    assert_eq!(
        h.sent().iter().map(wire_topic).collect::<Vec<_>>(),
        vec![("a".to_string(), None)]
    );
}

/// [MQTT-3.3.4-9] QoS 2 messages awaiting PUBREL fill our receive window; a QoS 1 PUBLISH on
/// top of them exceeds it: DISCONNECT 0x93.
#[test]
fn mqtt_3_3_4_9_qos1_over_open_qos2_exceeds_receive_maximum() {
    let mut h = v5_with(|c| c.receive_maximum = 2);
    h.connect(false);
    let _ = h.events();
    h.recv(Packet::Publish(incoming(1, QoS::ExactlyOnce, false)));
    h.recv(Packet::Publish(incoming(2, QoS::AtLeastOnce, false)));
    h.recv(Packet::Publish(incoming(3, QoS::ExactlyOnce, false)));
    let _ = h.sent();
    h.recv(Packet::Publish(incoming(4, QoS::AtLeastOnce, false)));
    assert_disconnected_with(&mut h, ReasonCode::ReceiveMaximumExceeded);
}

/// Section 4.9: the broker's send quota starts afresh on a new connection, so QoS 2 messages
/// still awaiting PUBREL from the previous one do not count against it.
#[test]
fn receive_window_starts_afresh_on_each_connection() {
    let mut h = v5_with(|c| c.receive_maximum = 1);
    h.connect(false);
    h.recv(Packet::Publish(incoming(1, QoS::ExactlyOnce, false)));
    h.reconnect(true);
    let _ = h.actions();
    let _ = h.events();
    h.recv(Packet::Publish(incoming(2, QoS::ExactlyOnce, false)));
    assert_eq!(h.sent(), vec![Packet::PubRec(ack(2))]);
    h.recv(Packet::PubRel(ack(1)));
    h.recv(Packet::PubRel(ack(2)));
    h.recv(Packet::Publish(incoming(3, QoS::AtLeastOnce, false)));
    assert_eq!(
        h.sent(),
        vec![
            Packet::PubComp(ack(1)),
            Packet::PubComp(ack(2)),
            Packet::PubAck(ack(3))
        ]
    );
}

/// 3.1.1 has no receive maximum to announce: the option does not limit the broker.
#[test]
fn v311_ignores_receive_maximum() {
    let mut cfg = config(Protocol::V3_1_1);
    cfg.receive_maximum = 1;
    let mut h = H::new(cfg);
    h.connect(false);
    h.recv(Packet::Publish(incoming(1, QoS::ExactlyOnce, false)));
    h.recv(Packet::Publish(incoming(2, QoS::ExactlyOnce, false)));
    assert_eq!(
        h.sent(),
        vec![Packet::PubRec(ack(1)), Packet::PubRec(ack(2))]
    );
}
