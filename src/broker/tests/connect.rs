//! CONNECT and CONNACK: client identifiers, session present, takeover, limits.

use super::*;
use crate::broker::BrokerEvent;
use crate::codec::ReasonCode;

/// [MQTT-3.1.0-1] The first packet from the client must be CONNECT; anything else closes.
#[test]
fn mqtt_3_1_0_1_first_packet_must_be_connect() {
    let mut h = Harness::new();
    h.accept(1);
    h.packet(1, publish("a", QoS::AtMostOnce, 0, "x"));
    let out = h.drain();
    assert!(sent(&out, 1).is_empty(), "nothing is answered: {out:?}");
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(ReasonCode::ProtocolError))
    );
    assert_eq!(h.broker.connection_count(), 0);
}

/// [MQTT-3.1.0-2] A second CONNECT is a protocol violation: the connection is closed.
#[test]
fn mqtt_3_1_0_2_second_connect_is_a_protocol_violation() {
    let mut h = Harness::new();
    h.connect(1, "c", true);
    h.packet(1, Packet::Connect(connect("c", true)));
    let out = h.drain();
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(ReasonCode::ProtocolError))
    );
    assert!(
        sent(&out, 1).is_empty(),
        "3.1.1 gets no DISCONNECT: {out:?}"
    );
}

/// [MQTT-3.1.3-6] An empty client id with clean session is accepted and given a unique id
/// (sent back as the assigned client identifier in MQTT 5).
#[test]
fn mqtt_3_1_3_6_empty_client_id_with_clean_session_is_accepted() {
    let mut h = Harness::new();
    let a = h.connect(1, "", true);
    assert_eq!(a.reason, ReasonCode::Success);
    assert!(!a.session_present);
    let b = h.connect_with(2, connect_v5("", true, 0));
    assert_eq!(b.reason, ReasonCode::Success);
    let assigned = b
        .properties
        .assigned_client_identifier
        .clone()
        .expect("5.0 gets the assigned id");
    assert!(!assigned.is_empty());
    // Both are connected under distinct ids: a publish reaches both subscriptions.
    h.subscribe(1, "t", QoS::AtMostOnce);
    h.subscribe(2, "t", QoS::AtMostOnce);
    let out = h.publish(2, "t", QoS::AtMostOnce, 0, "m");
    assert_eq!(payloads(&out, 1), vec!["m"]);
    assert_eq!(payloads(&out, 2), vec!["m"]);
}

/// MQTT 3.1.1 [MQTT-3.1.3-8]: an empty client id without clean session is refused with
/// "identifier rejected" (0x02; 0x85 in MQTT 5) and the connection closed.
#[test]
fn mqtt_3_1_3_8_empty_client_id_without_clean_session_is_refused() {
    let mut h = Harness::new();
    let a = h.connect(1, "", false);
    assert_eq!(a.reason, ReasonCode::ClientIdentifierNotValid);
    // 3.1.1 [MQTT-3.2.2-4]: a refusing CONNACK has session present 0.
    assert!(!a.session_present);
    // 5.0 [MQTT-3.1.3-8]: the rejected identifier is refused with 0x85.
    let b = h.connect_with(2, connect_v5("", false, 10));
    assert_eq!(b.reason, ReasonCode::ClientIdentifierNotValid);
    assert_eq!(h.broker.connection_count(), 0);
}

/// [MQTT-3.2.2-5] 3.1.1: after a refusing CONNACK the server closes the connection.
#[test]
fn mqtt_3_2_2_5_refused_connect_closes_the_connection() {
    let mut h = Harness::new();
    h.accept(1);
    h.packet(1, Packet::Connect(connect("", false)));
    let out = h.drain();
    assert!(matches!(sent(&out, 1).as_slice(), [Packet::ConnAck(_)]));
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ConnectRefused(
            ReasonCode::ClientIdentifierNotValid
        ))
    );
    // Later packets on it are ignored.
    h.packet(1, Packet::PingReq);
    assert!(h.drain().is_empty());
}

/// MQTT 3.1 caps the client identifier at 23 characters.
#[test]
fn mqtt_3_1_client_id_longer_than_23_is_refused() {
    let mut h = Harness::new();
    let mut c = connect(&"x".repeat(24), true);
    c.protocol = Protocol::V3_1;
    assert_eq!(
        h.connect_with(1, c.clone()).reason,
        ReasonCode::ClientIdentifierNotValid
    );
    c.client_id = "x".repeat(23);
    assert_eq!(h.connect_with(2, c).reason, ReasonCode::Success);
}

#[test]
fn client_id_longer_than_max_client_id_len_is_refused() {
    let mut h = Harness::with(BrokerConfig {
        max_client_id_len: 4,
        ..Default::default()
    });
    assert_eq!(
        h.connect(1, "abcde", true).reason,
        ReasonCode::ClientIdentifierNotValid
    );
    assert_eq!(h.connect(2, "abcd", true).reason, ReasonCode::Success);
}

/// 3.1.1: a CONNECT with the client id of a connected client closes the existing connection
/// [MQTT-3.1.4-2] (publishing its will) and the new one takes the session over [MQTT-3.1.4-3].
#[test]
fn mqtt_3_1_4_3_takeover_closes_existing_connection() {
    let mut h = Harness::new();
    h.connect(9, "watcher", true);
    h.subscribe(9, "wills/#", QoS::AtLeastOnce);
    let mut c = connect("dev", false);
    c.will = Some(Box::new(will("wills/dev", "gone", QoS::AtLeastOnce, false)));
    h.connect_with(1, c);
    h.subscribe(1, "data", QoS::AtLeastOnce);
    h.accept(2);
    h.packet(2, Packet::Connect(connect("dev", false)));
    let out = h.drain();
    assert_eq!(close_of(&out, 1), Some(CloseReason::SessionTakenOver));
    assert_eq!(
        payloads(&out, 9),
        vec!["gone"],
        "the old connection's will is published"
    );
    let Packet::ConnAck(ack) = &sent(&out, 2)[0] else {
        panic!("{out:?}")
    };
    assert!(ack.session_present, "the session is taken over");
    // The subscription moved with the session to the new connection.
    let out = h.publish(9, "data", QoS::AtMostOnce, 0, "d");
    assert_eq!(payloads(&out, 2), vec!["d"]);
    assert!(payloads(&out, 1).is_empty());
    // The old connection is forgotten: its close report changes nothing.
    h.closed(1, CloseCause::PeerClosed);
    assert!(h.drain().is_empty());
    let out = h.publish(9, "data", QoS::AtMostOnce, 0, "e");
    assert_eq!(payloads(&out, 2), vec!["e"]);
}

/// [MQTT-3.1.4-3] 5.0: the existing connection gets DISCONNECT 0x8E before it is closed.
#[test]
fn mqtt5_3_1_4_3_takeover_sends_disconnect_session_taken_over() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("dev", true, 0));
    h.accept(2);
    h.packet(2, Packet::Connect(connect_v5("dev", true, 0)));
    let out = h.drain();
    assert_eq!(
        sent(&out, 1),
        vec![server_disconnect(
            ReasonCode::SessionTakenOver,
            "session taken over by another connection"
        )]
    );
    assert_eq!(close_of(&out, 1), Some(CloseReason::SessionTakenOver));
}

/// [MQTT-3.2.2-1] 3.1.1, clean session: session present is 0.
#[test]
fn mqtt_3_2_2_1_clean_session_gives_session_present_0() {
    let mut h = Harness::new();
    h.connect(1, "c", false);
    h.closed(1, CloseCause::PeerClosed);
    let a = h.connect(2, "c", true);
    assert!(
        !a.session_present,
        "a stored session exists, but clean session discards it"
    );
}

/// [MQTT-3.2.2-2] 3.1.1, resuming a stored session: session present is 1.
#[test]
fn mqtt_3_2_2_2_resumed_session_gives_session_present_1() {
    let mut h = Harness::new();
    assert!(!h.connect(1, "c", false).session_present);
    h.closed(1, CloseCause::PeerClosed);
    assert!(h.connect(2, "c", false).session_present);
}

/// [MQTT-3.2.2-3] No stored session: session present is 0, also after a clean session ended.
#[test]
fn mqtt_3_2_2_3_no_stored_session_gives_session_present_0() {
    let mut h = Harness::new();
    assert!(!h.connect(1, "c", false).session_present);
    h.connect(2, "d", true);
    h.closed(2, CloseCause::PeerClosed);
    assert!(
        !h.connect(3, "d", false).session_present,
        "a clean session ends with its connection"
    );
}

/// A CONNECT must arrive within `connect_timeout` of the accept.
#[test]
fn connect_timeout_closes_a_silent_connection() {
    let mut h = Harness::with(BrokerConfig {
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    });
    h.accept(1);
    assert_eq!(h.broker.poll_timeout(), Some(h.t0 + Duration::from_secs(5)));
    h.advance_to_ms(4999);
    assert!(h.drain().is_empty());
    h.advance_to(5);
    assert_eq!(close_of(&h.drain(), 1), Some(CloseReason::ConnectTimeout));
    assert_eq!(h.broker.poll_timeout(), None);
}

#[test]
fn max_connections_closes_the_extra_connection_at_accept() {
    let mut h = Harness::with(BrokerConfig {
        max_connections: 2,
        ..Default::default()
    });
    h.accept(1);
    h.accept(2);
    h.accept(3);
    assert_eq!(
        close_of(&h.drain(), 3),
        Some(CloseReason::TooManyConnections)
    );
    assert_eq!(h.broker.stats().connections_refused, 1);
    h.closed(1, CloseCause::PeerClosed);
    h.accept(4);
    assert!(h.drain().is_empty());
    assert_eq!(h.broker.connection_count(), 2);
}

#[test]
fn max_sessions_refuses_a_new_session_but_resumes_existing_ones() {
    let mut h = Harness::with(BrokerConfig {
        max_sessions: 1,
        ..Default::default()
    });
    h.connect(1, "a", false);
    h.closed(1, CloseCause::PeerClosed);
    assert_eq!(
        h.connect(2, "b", true).reason,
        ReasonCode::ServerUnavailable
    );
    assert_eq!(
        h.connect_with(3, connect_v5("b", true, 0)).reason,
        ReasonCode::ServerBusy
    );
    assert_eq!(h.connect(4, "a", false).reason, ReasonCode::Success);
}

/// A 3.1.1 client asking for a keep-alive beyond `max_keep_alive` is refused; a 5.0 client is
/// told the server keep-alive and held to it.
#[test]
fn max_keep_alive_refuses_3_1_1_and_sets_server_keep_alive_for_5() {
    let mut h = Harness::with(BrokerConfig {
        max_keep_alive: 60,
        ..Default::default()
    });
    let mut c = connect("a", true);
    c.keep_alive = 61;
    assert_eq!(
        h.connect_with(1, c.clone()).reason,
        ReasonCode::ClientIdentifierNotValid
    );
    c.keep_alive = 60;
    assert_eq!(h.connect_with(2, c).reason, ReasonCode::Success);
    let mut c5 = connect_v5("b", true, 0);
    c5.keep_alive = 0;
    let ack = h.connect_with(3, c5);
    assert_eq!(ack.reason, ReasonCode::Success);
    assert_eq!(ack.properties.server_keep_alive, Some(60));
    h.advance_to(89);
    assert!(close_of(&h.drain(), 3).is_none());
    h.advance_to(90);
    let out = h.drain();
    assert_eq!(close_of(&out, 2), Some(CloseReason::KeepAliveTimeout));
    assert_eq!(close_of(&out, 3), Some(CloseReason::KeepAliveTimeout));
}

/// 5.0 CONNACK advertises the limits a client must respect.
#[test]
fn mqtt5_connack_advertises_limits() {
    let mut h = Harness::with(BrokerConfig {
        receive_maximum: 10,
        max_packet_size: 4096,
        ..Default::default()
    });
    let ack = h.connect_with(1, connect_v5("a", true, 0));
    assert_eq!(ack.properties.receive_maximum, Some(10));
    assert_eq!(ack.properties.maximum_packet_size, Some(4096));
    assert_eq!(
        ack.properties.shared_subscription_available, None,
        "absent means available"
    );
    assert_eq!(ack.properties.topic_alias_maximum, Some(10));
    let mut h = Harness::with(BrokerConfig {
        shared_subscriptions: false,
        topic_alias_maximum: 0,
        ..Default::default()
    });
    let ack = h.connect_with(1, connect_v5("a", true, 0));
    assert_eq!(ack.properties.shared_subscription_available, Some(0));
    assert_eq!(
        ack.properties.topic_alias_maximum, None,
        "absent means 0: no aliases"
    );
    // 3.1.1 CONNACK carries no properties.
    assert!(h.connect(2, "b", true).properties.is_empty());
}

/// [MQTT-3.1.2-9] An invalid will topic is a protocol violation.
#[test]
fn mqtt_3_1_2_9_invalid_will_topic_closes() {
    let mut h = Harness::new();
    let mut c = connect("a", true);
    c.will = Some(Box::new(will("a/+", "x", QoS::AtMostOnce, false)));
    h.accept(1);
    h.packet(1, Packet::Connect(c));
    let out = h.drain();
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(ReasonCode::TopicNameInvalid))
    );
    assert!(h.broker.session("a").is_none());
    assert!(
        !h.broker
            .poll_event()
            .is_some_and(|e| matches!(e, BrokerEvent::WillPublished { .. }))
    );
}

/// What the shell logs of a connection: nothing before its CONNECT is accepted, then the
/// client identifier, protocol, keep-alive and clean start of that CONNECT; nothing once it
/// closed.
#[test]
fn connection_info_describes_an_accepted_connection_only() {
    let mut h = Harness::new();
    h.accept(1);
    assert_eq!(h.broker.connection_info(1), None);
    let mut c = connect_v5("logged", false, 60);
    c.keep_alive = 42;
    h.connect_with(1, c);
    let info = h.broker.connection_info(1).expect("accepted");
    assert_eq!(
        (
            &*info.client_id,
            info.protocol,
            info.keep_alive,
            info.clean_start,
            info.user
        ),
        ("logged", Protocol::V5, 42, false, None)
    );
    h.closed(1, CloseCause::PeerClosed);
    assert_eq!(h.broker.connection_info(1), None);
}
