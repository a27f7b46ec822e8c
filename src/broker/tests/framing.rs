//! `handle_bytes`: framing in any chunking, and bytes that do not decode.

use bytes::BytesMut;

use super::*;
use crate::codec::{self, ReasonCode};

fn encode(packet: &Packet, protocol: Protocol) -> Vec<u8> {
    let mut buf = BytesMut::new();
    codec::encode(packet, protocol, &mut buf).expect("test packets encode");
    buf.to_vec()
}

fn bytes(h: &mut Harness, conn: ConnId, data: &[u8]) {
    h.broker.handle_bytes(h.now, conn, data);
}

/// Packets split into single bytes, or several in one chunk, decode the same.
#[test]
fn packets_in_any_chunking_are_handled() {
    let mut h = Harness::new();
    h.connect(2, "sub", true);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    h.accept(1);
    let connect_bytes = encode(&Packet::Connect(connect("pub", true)), Protocol::V3_1_1);
    for b in &connect_bytes {
        bytes(&mut h, 1, std::slice::from_ref(b));
    }
    assert!(
        matches!(sent(&h.drain(), 1).as_slice(), [Packet::ConnAck(a)] if a.reason == ReasonCode::Success)
    );
    let mut two = encode(&publish("t", QoS::AtLeastOnce, 1, "a"), Protocol::V3_1_1);
    two.extend(encode(
        &publish("t", QoS::AtLeastOnce, 2, "b"),
        Protocol::V3_1_1,
    ));
    let (head, tail) = two.split_at(5);
    bytes(&mut h, 1, head);
    assert!(h.drain().is_empty(), "no whole packet yet");
    bytes(&mut h, 1, tail);
    let out = h.drain();
    assert_eq!(
        sent(&out, 1),
        vec![Packet::PubAck(ack(1)), Packet::PubAck(ack(2))]
    );
    assert_eq!(payloads(&out, 2), vec!["a", "b"]);
}

/// Bytes that are not MQTT close the connection as malformed, with the will published.
#[test]
fn mqtt_4_8_0_1_malformed_bytes_close_the_connection() {
    let mut h = Harness::new();
    h.connect(9, "watcher", true);
    h.subscribe(9, "w", QoS::AtMostOnce);
    h.accept(1);
    let mut c = connect("dev", true);
    c.will = Some(Box::new(will("w", "gone", QoS::AtMostOnce, false)));
    bytes(&mut h, 1, &encode(&Packet::Connect(c), Protocol::V3_1_1));
    h.drain();
    // Packet type 0 is reserved.
    bytes(&mut h, 1, &[0x00, 0x00]);
    let out = h.drain();
    assert!(
        matches!(close_of(&out, 1), Some(CloseReason::ProtocolViolation(r)) if r.is_error()),
        "{out:?}"
    );
    assert_eq!(payloads(&out, 9), vec!["gone"]);
    // Later bytes are ignored.
    bytes(&mut h, 1, &encode(&Packet::PingReq, Protocol::V3_1_1));
    assert!(h.drain().is_empty());
}

/// A packet larger than `max_packet_size` is refused from its fixed header (5.0: DISCONNECT
/// 0x95 first).
#[test]
fn mqtt5_3_1_2_24_packet_larger_than_maximum_closes_with_0x95() {
    let mut h = Harness::with(BrokerConfig {
        max_packet_size: 64,
        ..Default::default()
    });
    h.accept(1);
    bytes(
        &mut h,
        1,
        &encode(&Packet::Connect(connect_v5("c", true, 0)), Protocol::V5),
    );
    h.drain();
    let big = encode(
        &publish("t", QoS::AtMostOnce, 0, &"x".repeat(100)),
        Protocol::V5,
    );
    bytes(&mut h, 1, &big[..10]);
    let out = h.drain();
    assert_eq!(
        sent(&out, 1),
        vec![server_disconnect(
            ReasonCode::PacketTooLarge,
            "packet larger than the maximum packet size"
        )]
    );
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(ReasonCode::PacketTooLarge))
    );
}

/// [MQTT-3.1.2-2] An unsupported protocol level is answered with CONNACK 0x01, then closed.
#[test]
fn mqtt_3_1_2_2_unsupported_protocol_level_gets_connack_0x01() {
    let mut h = Harness::new();
    h.accept(1);
    let mut raw = encode(&Packet::Connect(connect("c", true)), Protocol::V3_1_1);
    // Fixed header (2) + protocol name (2 + 4): the level byte follows.
    assert_eq!(raw[8], 4);
    raw[8] = 9;
    bytes(&mut h, 1, &raw);
    let out = h.drain();
    assert_eq!(
        sent(&out, 1),
        vec![Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::UnsupportedProtocolVersion,
            properties: Properties::default()
        })]
    );
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ConnectRefused(
            ReasonCode::UnsupportedProtocolVersion
        ))
    );
}

/// [MQTT-3.1.0-1] through the framer: a first packet other than CONNECT closes.
#[test]
fn mqtt_3_1_0_1_first_packet_bytes_must_be_connect() {
    let mut h = Harness::new();
    h.accept(1);
    bytes(&mut h, 1, &encode(&Packet::PingReq, Protocol::V3_1_1));
    let out = h.drain();
    assert!(sent(&out, 1).is_empty());
    assert!(matches!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(_))
    ));
}

/// Random bytes after a valid CONNECT never panic the broker, and it keeps serving others.
#[test]
fn random_bytes_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut h = Harness::new();
    h.connect(1000, "other", true);
    for conn in 1..200u64 {
        h.accept(conn);
        bytes(
            &mut h,
            conn,
            &encode(
                &Packet::Connect(connect(&format!("c{conn}"), conn % 2 == 0)),
                Protocol::V3_1_1,
            ),
        );
        for _ in 0..5 {
            let len = rng.random_range(0..40);
            let junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            bytes(&mut h, conn, &junk);
        }
        h.drain();
    }
    h.packet(1000, Packet::PingReq);
    assert_eq!(sent(&h.drain(), 1000), vec![Packet::PingResp]);
}
