//! How errors end connections, and robustness against odd event sequences.

use super::*;
use crate::codec::{ReasonCode, SubAck};

/// 5.0 [MQTT-4.13.2-1]: a connected client that breaks the protocol gets DISCONNECT with the
/// reason code, then the close; 3.1.1 gets the close only.
#[test]
fn mqtt5_4_13_2_protocol_error_sends_disconnect_then_closes() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("five", true, 0));
    h.connect(2, "three", true);
    for conn in [1, 2] {
        h.packet(conn, Packet::PingResp);
    }
    let out = h.drain();
    assert_eq!(
        out[..2],
        [
            Action::Send {
                conn: 1,
                protocol: Protocol::V5,
                packet: server_disconnect(
                    ReasonCode::ProtocolError,
                    "server-to-client packet sent by a client"
                )
            },
            Action::Close {
                conn: 1,
                reason: CloseReason::ProtocolViolation(ReasonCode::ProtocolError)
            },
        ]
    );
    assert_eq!(
        out[2..],
        [Action::Close {
            conn: 2,
            reason: CloseReason::ProtocolViolation(ReasonCode::ProtocolError)
        }]
    );
}

/// Server-to-client packets sent by a client are protocol violations.
#[test]
fn mqtt_4_8_server_only_packets_from_a_client_close() {
    for p in [
        Packet::SubAck(SubAck {
            pkid: 1,
            reasons: vec![],
            properties: Properties::default(),
        }),
        Packet::PingResp,
        Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        }),
    ] {
        let mut h = Harness::new();
        h.connect(1, "c", true);
        h.packet(1, p);
        assert!(matches!(
            close_of(&h.drain(), 1),
            Some(CloseReason::ProtocolViolation(_))
        ));
    }
}

/// Events for unknown or closed connections are ignored, never a panic.
#[test]
fn unknown_and_closed_connections_are_tolerated() {
    let mut h = Harness::new();
    h.closed(42, CloseCause::Io);
    h.packet(42, Packet::PingReq);
    h.broker.handle_bytes(h.now, 42, b"\x10\x00");
    assert!(h.drain().is_empty());
    h.connect(1, "c", true);
    h.closed(1, CloseCause::PeerClosed);
    h.closed(1, CloseCause::PeerClosed);
    h.packet(1, Packet::PingReq);
    assert!(h.drain().is_empty());
    // A duplicate accept of a live connection changes nothing.
    h.connect(2, "d", true);
    h.accept(2);
    h.packet(2, Packet::PingReq);
    assert_eq!(sent(&h.drain(), 2), vec![Packet::PingResp]);
}

/// Connecting, subscribing and publishing at random, with random closes: no panic, and the
/// internal maps stay consistent (every online client has a live connection and a session).
#[test]
fn random_event_sequences_keep_the_core_consistent() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut h = Harness::with(BrokerConfig {
        max_inflight: 2,
        max_queued_messages: 3,
        ..Default::default()
    });
    let mut next_conn = 1;
    let mut live: Vec<ConnId> = Vec::new();
    for step in 0..3000u64 {
        h.advance_to_ms(step * 10);
        match rng.random_range(0..10) {
            0 => {
                let id = format!("c{}", rng.random_range(0..4));
                let mut c = connect(&id, rng.random_bool(0.5));
                c.keep_alive = rng.random_range(0..3);
                if rng.random_bool(0.5) {
                    c.protocol = Protocol::V5;
                    c.properties.session_expiry_interval = Some(rng.random_range(0..2));
                }
                h.accept(next_conn);
                h.packet(next_conn, Packet::Connect(c));
                live.push(next_conn);
                next_conn += 1;
            }
            1 if !live.is_empty() => {
                let conn = live.swap_remove(rng.random_range(0..live.len()));
                h.closed(conn, CloseCause::Io);
            }
            2..=3 if !live.is_empty() => {
                let conn = live[rng.random_range(0..live.len())];
                h.packet(
                    conn,
                    subscribe(
                        1,
                        &[(
                            ["#", "a/+", "a/b"][rng.random_range(0..3)],
                            QoS::ExactlyOnce,
                        )],
                    ),
                );
            }
            _ if !live.is_empty() => {
                let conn = live[rng.random_range(0..live.len())];
                let qos = QoS::from_u8(rng.random_range(0..3)).unwrap();
                let pkid = if qos == QoS::AtMostOnce {
                    0
                } else {
                    rng.random_range(1..5)
                };
                let packet = match rng.random_range(0..4) {
                    0 => Packet::PubAck(ack(rng.random_range(1..5))),
                    1 => Packet::PubRec(ack(rng.random_range(1..5))),
                    2 => Packet::PubComp(ack(rng.random_range(1..5))),
                    _ => publish("a/b", qos, pkid, "p"),
                };
                h.packet(conn, packet);
            }
            _ => {}
        }
        for a in h.drain() {
            if let Action::Close { conn, .. } = a {
                live.retain(|c| *c != conn);
            }
        }
        let b = &h.broker;
        let mut online = 0;
        for (client, s) in b.sessions.iter() {
            if let Some(conn) = s.conn.0.get() {
                online += 1;
                assert!(
                    b.conns.contains_key(&conn),
                    "{client} online on a closed connection"
                );
            }
        }
        assert_eq!(online, b.online, "the count of attached sessions");
        for s in b.sessions.values() {
            assert!(s.inflight().len() <= 2);
            assert!(s.queued().len() <= 3);
        }
    }
}
