//! Inbound publishes: QoS 0/1/2 delivery and acknowledgement, exactly-once QoS 2 under
//! resends, and the broker mistakes that end the connection.

use super::*;
use crate::codec::Packet;

fn messages(events: &[ClientEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Message(_)))
        .count()
}

#[test]
fn qos0_is_delivered_without_acknowledgement() {
    let mut h = H::v311();
    h.connect(false);
    let _ = h.events();
    h.recv(Packet::Publish(incoming(0, QoS::AtMostOnce, false)));
    assert_eq!(
        h.events(),
        vec![ClientEvent::Message(incoming(0, QoS::AtMostOnce, false))]
    );
    assert!(h.actions().is_empty());
}

/// [MQTT-4.3.2-4] QoS 1: PUBACK for every PUBLISH, a resend included (QoS 1 may duplicate).
#[test]
fn mqtt_4_3_2_4_qos1_is_delivered_and_acked_every_time() {
    let mut h = H::v311();
    h.connect(false);
    let _ = h.events();
    h.recv(Packet::Publish(incoming(3, QoS::AtLeastOnce, false)));
    h.recv(Packet::Publish(incoming(3, QoS::AtLeastOnce, true)));
    assert_eq!(
        h.sent(),
        vec![Packet::PubAck(ack(3)), Packet::PubAck(ack(3))]
    );
    let events = h.events();
    assert_eq!(messages(&events), 2);
    assert_eq!(
        events[1],
        ClientEvent::Message(incoming(3, QoS::AtLeastOnce, true)),
        "DUP is passed through"
    );
}

/// [MQTT-4.3.3-9] until PUBREL, a PUBLISH with the same identifier is acknowledged with
/// PUBREC and not delivered again; [MQTT-4.3.3-11] PUBREL is answered with PUBCOMP.
#[test]
fn mqtt_4_3_3_9_qos2_delivered_exactly_once_under_resends() {
    let mut h = H::v311();
    h.connect(false);
    let _ = h.events();
    h.recv(Packet::Publish(incoming(7, QoS::ExactlyOnce, false)));
    h.recv(Packet::Publish(incoming(7, QoS::ExactlyOnce, true)));
    h.recv(Packet::Publish(incoming(7, QoS::ExactlyOnce, true)));
    assert_eq!(h.sent(), vec![Packet::PubRec(ack(7)); 3]);
    assert_eq!(messages(&h.events()), 1);
    h.recv(Packet::PubRel(ack(7)));
    assert_eq!(h.sent(), vec![Packet::PubComp(ack(7))]);
    h.recv(Packet::PubRel(ack(7)));
    assert_eq!(
        h.sent(),
        vec![Packet::PubComp(ack(7))],
        "a repeated PUBREL still gets PUBCOMP"
    );
    h.recv(Packet::Publish(incoming(7, QoS::ExactlyOnce, false)));
    assert_eq!(
        messages(&h.events()),
        1,
        "after PUBREL the identifier carries a new message"
    );
}

/// The broker resends the QoS 2 PUBLISH after a reconnect with the session: still one delivery.
#[test]
fn qos2_exactly_once_across_a_resumed_session() {
    let mut h = H::v311();
    h.connect(false);
    h.recv(Packet::Publish(incoming(9, QoS::ExactlyOnce, false)));
    assert_eq!(messages(&h.events()), 1);
    let _ = h.sent();
    h.reconnect(true);
    h.recv(Packet::Publish(incoming(9, QoS::ExactlyOnce, true)));
    assert_eq!(messages(&h.events()), 0);
    assert_eq!(h.sent(), vec![Packet::PubRec(ack(9))]);
    h.recv(Packet::PubRel(ack(9)));
    assert_eq!(h.sent(), vec![Packet::PubComp(ack(9))]);
}

/// Without the session, the broker has forgotten the exchange: the identifier is fresh.
#[test]
fn qos2_state_is_dropped_with_the_session() {
    let mut h = H::v311();
    h.connect(false);
    h.recv(Packet::Publish(incoming(9, QoS::ExactlyOnce, false)));
    let _ = h.events();
    let _ = h.sent();
    h.reconnect(false);
    h.recv(Packet::Publish(incoming(9, QoS::ExactlyOnce, false)));
    assert_eq!(messages(&h.events()), 1);
}

/// 5.0: PUBREL for an unknown identifier is answered with PUBCOMP 0x92.
#[test]
fn v5_pubrel_for_unknown_identifier_gets_not_found() {
    let mut h = H::v5();
    h.connect(false);
    h.recv(Packet::PubRel(ack(42)));
    assert_eq!(
        h.sent(),
        vec![Packet::PubComp(Ack {
            pkid: 42,
            reason: ReasonCode::PacketIdentifierNotFound,
            properties: Properties::default()
        })]
    );
}

/// [MQTT-3.3.4-9] the broker must not exceed our receive maximum of unacknowledged QoS 2.
#[test]
fn mqtt_3_3_4_9_broker_exceeding_receive_maximum_is_disconnected() {
    let mut cfg = config(Protocol::V5);
    cfg.receive_maximum = 2;
    let mut h = H::new(cfg);
    h.connect(false);
    let _ = h.events();
    for pkid in 1..=3 {
        h.recv(Packet::Publish(incoming(pkid, QoS::ExactlyOnce, false)));
    }
    let acts = h.actions();
    assert_eq!(
        acts[2],
        ClientAction::Send(Packet::Disconnect(crate::codec::Disconnect {
            reason: ReasonCode::ReceiveMaximumExceeded,
            properties: Properties::default(),
        }))
    );
    assert_eq!(acts[3], ClientAction::CloseTransport);
    assert_eq!(messages(&h.events()), 2);
}

/// [MQTT-3.1.2-27] we announce no topic aliases, so the broker must not use one.
#[test]
fn mqtt_3_1_2_27_topic_alias_without_our_permission_is_an_error() {
    let mut h = H::v5();
    h.connect(false);
    let _ = h.events();
    let mut p = incoming(0, QoS::AtMostOnce, false);
    p.properties.topic_alias = Some(1);
    h.recv(Packet::Publish(p));
    let acts = h.actions();
    assert!(
        matches!(&acts[0], ClientAction::Send(Packet::Disconnect(d)) if d.reason == ReasonCode::TopicAliasInvalid)
    );
    assert_eq!(messages(&h.events()), 0);
}

#[test]
fn packets_after_close_are_ignored() {
    let mut h = H::v311();
    h.connect(false);
    h.c.disconnect(h.now, ReasonCode::Success);
    let _ = h.actions();
    let _ = h.events();
    h.recv(Packet::Publish(incoming(1, QoS::AtLeastOnce, false)));
    assert!(h.actions().is_empty());
    assert!(h.events().is_empty());
}

/// Undecodable bytes: 5.0 says why in DISCONNECT before closing; then the usual reconnect.
#[test]
fn decode_error_disconnects_with_the_reason_and_reconnects() {
    let mut h = H::v5();
    h.connect(false);
    let _ = h.events();
    h.c.handle_decode_error(h.now, ReasonCode::MalformedPacket);
    let acts = h.actions();
    assert!(
        matches!(&acts[0], ClientAction::Send(Packet::Disconnect(d)) if d.reason == ReasonCode::MalformedPacket)
    );
    assert_eq!(acts[1], ClientAction::CloseTransport);
    assert_eq!(
        h.events()[0],
        ClientEvent::ConnectionLost {
            cause: DownCause::ProtocolError(ReasonCode::MalformedPacket)
        }
    );
    assert_eq!(h.c.state(), ConnState::Backoff);
}

/// The bytes of `packets` encoded back to back.
fn wire(packets: &[Packet], protocol: Protocol) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    for p in packets {
        crate::codec::encode(p, protocol, &mut buf).expect("encodes");
    }
    buf.to_vec()
}

/// Feeds `chunk` as bytes; returns the packets the core saw.
fn feed(h: &mut H, chunk: &[u8]) -> Vec<Packet> {
    let mut seen = Vec::new();
    h.c.handle_bytes(h.now, chunk, |p| seen.push(p.clone()));
    seen
}

/// The core frames the broker's bytes itself: packets split across chunks wait for their
/// last byte, packets coalesced in one chunk are all handled, in order.
#[test]
fn bytes_split_and_coalesced_are_framed_in_order() {
    let mut h = H::v5();
    h.c.connect(h.now);
    assert_eq!(h.actions(), vec![ClientAction::OpenTransport]);
    h.c.handle_transport_up(h.now);
    assert!(matches!(h.sent().as_slice(), [Packet::Connect(_)]));
    let packets = [
        Packet::ConnAck(connack(false)),
        Packet::Publish(incoming(0, QoS::AtMostOnce, false)),
        Packet::Publish(incoming(5, QoS::AtLeastOnce, false)),
        Packet::PingResp,
    ];
    let bytes = wire(&packets, Protocol::V5);
    // CONNACK cut after its first byte; the second chunk ends inside the first PUBLISH.
    assert_eq!(feed(&mut h, &bytes[..1]), vec![]);
    assert_eq!(h.c.state(), ConnState::Handshaking);
    assert_eq!(feed(&mut h, &bytes[1..8]), packets[..1].to_vec());
    assert_eq!(h.c.state(), ConnState::Connected);
    // The rest in one chunk: two PUBLISHes and a PINGRESP.
    assert_eq!(feed(&mut h, &bytes[8..]), packets[1..].to_vec());
    assert_eq!(h.sent(), vec![Packet::PubAck(ack(5))]);
    let events = h.events();
    assert_eq!(messages(&events), 2);
    // A byte at a time gives the same packets.
    let mut one_by_one = H::v5();
    one_by_one.c.connect(one_by_one.now);
    one_by_one.c.handle_transport_up(one_by_one.now);
    let seen: Vec<Packet> = bytes
        .iter()
        .flat_map(|b| feed(&mut one_by_one, &[*b]))
        .collect();
    assert_eq!(seen, packets.to_vec());
}

/// Bytes that do not decode end the connection with their reason (5.0: in DISCONNECT); a
/// partial packet of one transport does not carry over to the next.
#[test]
fn undecodable_bytes_disconnect_and_a_new_transport_starts_clean() {
    let mut h = H::v5();
    h.connect(false);
    let _ = h.events();
    let _ = feed(&mut h, &[0x30]);
    h.c.handle_transport_down(h.now, DownCause::PeerClosed);
    h.fire();
    assert_eq!(h.actions(), vec![ClientAction::OpenTransport]);
    h.c.handle_transport_up(h.now);
    let _ = h.sent();
    let resumed = Packet::ConnAck(connack(true));
    assert_eq!(
        feed(&mut h, &wire(std::slice::from_ref(&resumed), Protocol::V5)),
        vec![resumed]
    );
    assert_eq!(h.c.state(), ConnState::Connected);
    let _ = h.events();
    // Packet type 0 is reserved: it does not decode.
    assert_eq!(feed(&mut h, &[0x00, 0x00]), vec![]);
    let acts = h.actions();
    assert!(
        matches!(&acts[0], ClientAction::Send(Packet::Disconnect(d)) if d.reason == ReasonCode::MalformedPacket),
        "{acts:?}"
    );
    assert_eq!(acts[1], ClientAction::CloseTransport);
}
