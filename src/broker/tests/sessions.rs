//! Clean and persistent sessions, the offline queue and its overflow policy, 5.0 session
//! expiry basics.

use super::*;
use crate::broker::{BrokerEvent, QueueOverflow};
use crate::codec::{Disconnect, ReasonCode};

fn offline_subscriber(config: BrokerConfig) -> Harness {
    let mut h = Harness::with(config);
    h.connect(1, "pub", true);
    h.connect(2, "sub", false);
    h.subscribe(2, "t", QoS::ExactlyOnce);
    h.closed(2, CloseCause::Io);
    h
}

/// [MQTT-3.1.2-4] [MQTT-3.1.2-5] 3.1.1: a persistent session keeps its subscriptions while
/// offline and stores QoS 1 and QoS 2 messages for the client, delivered on resumption. QoS 0
/// messages published while it is offline are dropped (and counted).
#[test]
fn mqtt_3_1_2_5_persistent_session_queues_qos1_and_qos2_while_offline() {
    let mut h = offline_subscriber(BrokerConfig::default());
    h.publish(1, "t", QoS::AtMostOnce, 0, "q0");
    h.publish(1, "t", QoS::AtLeastOnce, 1, "q1");
    h.publish(1, "t", QoS::ExactlyOnce, 2, "q2");
    assert_eq!(h.broker.stats().qos0_offline_dropped, 1);
    h.accept(3);
    h.packet(3, Packet::Connect(connect("sub", false)));
    let out = h.drain();
    assert_eq!(payloads(&out, 3), vec!["q1", "q2"]);
    let p = publishes(&out, 3);
    assert_eq!((p[0].qos, p[1].qos), (QoS::AtLeastOnce, QoS::ExactlyOnce));
    // The subscription survived: a new message is delivered live.
    let out = h.publish(1, "t", QoS::AtMostOnce, 0, "live");
    assert_eq!(payloads(&out, 3), vec!["live"]);
}

/// [MQTT-3.1.2-6] 3.1.1, clean session: the previous session is discarded, and the new one
/// ends with the connection.
#[test]
fn mqtt_3_1_2_6_clean_session_discards_state() {
    let mut h = offline_subscriber(BrokerConfig::default());
    h.publish(1, "t", QoS::AtLeastOnce, 1, "queued");
    let a = h.connect(3, "sub", true);
    assert!(!a.session_present);
    let out = h.publish(1, "t", QoS::AtLeastOnce, 2, "after");
    assert!(
        publishes(&out, 3).is_empty(),
        "subscriptions were discarded"
    );
    assert!(h.broker.session("sub").unwrap().queued().is_empty());
    h.closed(3, CloseCause::PeerClosed);
    assert!(
        h.broker.session("sub").is_none(),
        "a clean session ends with its connection"
    );
}

/// Queue overflow, drop-newest policy: the arriving message is dropped, counted and reported.
#[test]
fn queue_overflow_drop_newest_is_counted_and_reported() {
    let mut h = offline_subscriber(BrokerConfig {
        max_queued_messages: 2,
        ..Default::default()
    });
    for i in 1..=4u16 {
        h.publish(1, "t", QoS::AtLeastOnce, i, &i.to_string());
    }
    assert_eq!(h.broker.stats().queue_overflow_dropped, 2);
    let events: Vec<BrokerEvent> = std::iter::from_fn(|| h.broker.poll_event()).collect();
    assert_eq!(
        events,
        ["3", "4"]
            .iter()
            .map(|p| BrokerEvent::QueueOverflow {
                client_id: "sub".into(),
                topic: "t".into(),
                qos: QoS::AtLeastOnce,
                payload: Bytes::copy_from_slice(p.as_bytes()),
            })
            .collect::<Vec<_>>()
    );
    h.accept(3);
    h.packet(3, Packet::Connect(connect("sub", false)));
    assert_eq!(payloads(&h.drain(), 3), vec!["1", "2"]);
}

/// Queue overflow, drop-oldest policy: the oldest queued message makes room.
#[test]
fn queue_overflow_drop_oldest_keeps_the_newest() {
    let mut h = offline_subscriber(BrokerConfig {
        max_queued_messages: 2,
        queue_overflow: QueueOverflow::DropOldest,
        ..Default::default()
    });
    for i in 1..=4u16 {
        h.publish(1, "t", QoS::AtLeastOnce, i, &i.to_string());
    }
    assert_eq!(h.broker.stats().queue_overflow_dropped, 2);
    h.accept(3);
    h.packet(3, Packet::Connect(connect("sub", false)));
    assert_eq!(payloads(&h.drain(), 3), vec!["3", "4"]);
}

/// The queue behind a full window of an online client is bounded the same way.
#[test]
fn queue_behind_the_window_is_bounded() {
    let mut h = Harness::with(BrokerConfig {
        max_inflight: 1,
        max_queued_messages: 1,
        ..Default::default()
    });
    h.connect(1, "pub", true);
    h.connect(2, "sub", true);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    let mut out = Vec::new();
    for i in 1..=3u16 {
        out.extend(h.publish(1, "t", QoS::AtLeastOnce, i, &i.to_string()));
    }
    assert_eq!(payloads(&out, 2), vec!["1"]);
    assert_eq!(h.broker.stats().queue_overflow_dropped, 1);
    let id = publishes(&out, 2)[0].pkid;
    h.packet(2, Packet::PubAck(ack(id)));
    assert_eq!(payloads(&h.drain(), 2), vec!["2"]);
}

/// 5.0 [MQTT-3.1.2-23]: session expiry interval 0 (or absent) ends the session with the
/// connection; a non-zero one keeps it.
#[test]
fn mqtt5_3_1_2_23_session_expiry_zero_ends_session_at_disconnect() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("zero", false, 0));
    h.connect_with(2, connect_v5("kept", false, 3600));
    h.closed(1, CloseCause::PeerClosed);
    h.closed(2, CloseCause::PeerClosed);
    assert!(h.broker.session("zero").is_none());
    assert!(h.broker.session("kept").is_some());
    assert!(
        !h.connect_with(3, connect_v5("zero", false, 0))
            .session_present
    );
    assert!(
        h.connect_with(4, connect_v5("kept", false, 0))
            .session_present
    );
}

/// 5.0 [MQTT-3.14.2-2]: DISCONNECT may not set a non-zero session expiry after 0 in CONNECT
/// (protocol error); it may shorten a non-zero one to 0, ending the session.
#[test]
fn mqtt5_3_14_2_2_disconnect_session_expiry_rules() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("a", false, 0));
    let mut d = Disconnect::default();
    d.properties.session_expiry_interval = Some(60);
    h.packet(1, Packet::Disconnect(d.clone()));
    let out = h.drain();
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(ReasonCode::ProtocolError))
    );
    assert!(
        matches!(sent(&out, 1).as_slice(), [Packet::Disconnect(x)] if x.reason == ReasonCode::ProtocolError)
    );

    h.connect_with(2, connect_v5("b", false, 60));
    d.properties.session_expiry_interval = Some(0);
    h.packet(2, Packet::Disconnect(d));
    assert_eq!(close_of(&h.drain(), 2), Some(CloseReason::ClientDisconnect));
    assert!(h.broker.session("b").is_none());
}

/// A session's messages take room only while it may hold some: the room is allocated by the
/// first message kept, stays while messages come and go, and is freed once drained when the
/// session goes quiet (PINGREQ, detach). Nothing the client or the journal sees changes.
#[test]
fn a_drained_flow_is_freed_when_the_session_goes_quiet() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.connect(2, "sub", false);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    let holds = |h: &Harness| h.broker.session("sub").unwrap().holds_flow();
    assert!(!holds(&h), "a new session");
    h.publish(1, "t", QoS::AtMostOnce, 0, "q0");
    assert!(!holds(&h), "QoS 0 sent at once is not kept");
    for i in 1..=3 {
        let out = h.publish(1, "t", QoS::AtLeastOnce, i, "m");
        let p = publishes(&out, 2);
        h.packet(2, Packet::PubAck(ack(p[0].pkid)));
        h.drain();
        assert!(holds(&h), "a steady flow keeps its room between messages");
    }
    h.packet(2, Packet::PingReq);
    assert_eq!(sent(&h.drain(), 2), vec![Packet::PingResp]);
    assert!(!holds(&h), "PINGREQ with nothing held");

    h.packet(2, publish("x", QoS::ExactlyOnce, 7, "in"));
    h.drain();
    h.packet(2, Packet::PingReq);
    h.drain();
    assert!(holds(&h), "an identifier awaiting PUBREL is held");
    h.packet(2, Packet::PubRel(ack(7)));
    assert_eq!(sent(&h.drain(), 2), vec![Packet::PubComp(ack(7))]);

    h.closed(2, CloseCause::Io);
    assert!(!holds(&h), "detached with nothing held");
    h.publish(1, "t", QoS::AtLeastOnce, 4, "offline");
    assert!(holds(&h), "queued while offline");
    h.accept(3);
    h.packet(3, Packet::Connect(connect("sub", false)));
    let out = h.drain();
    assert_eq!(payloads(&out, 3), vec!["offline"]);
    h.packet(3, Packet::PubAck(ack(publishes(&out, 3)[0].pkid)));
    h.drain();
    h.closed(3, CloseCause::Io);
    assert!(!holds(&h), "drained, then detached");
}
