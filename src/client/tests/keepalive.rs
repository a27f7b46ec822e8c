//! Keep-alive: PINGREQ timing, death detection, and the broker's override.

use super::*;
use crate::codec::Packet;

/// [MQTT-3.1.2-23] 3.1.1: the client sends PINGREQ when it has sent nothing for the keep-alive.
#[test]
fn mqtt_3_1_2_23_pingreq_when_idle() {
    let mut h = H::v311();
    h.connect(false);
    assert_eq!(h.c.poll_timeout(), Some(h.t0 + Duration::from_secs(10)));
    h.at_ms(9_999);
    assert!(h.actions().is_empty());
    h.at(10);
    assert_eq!(h.sent(), vec![Packet::PingReq]);
    h.at(11);
    h.recv(Packet::PingResp);
    assert!(h.actions().is_empty());
    assert_eq!(
        h.c.poll_timeout(),
        Some(h.t0 + Duration::from_secs(20)),
        "10 s after the PINGREQ"
    );
}

#[test]
fn sending_postpones_the_ping() {
    let mut h = H::v311();
    h.connect(false);
    h.at(6);
    h.publish("t", QoS::AtMostOnce);
    let _ = h.sent();
    h.recv(Packet::PingResp); // anything received
    h.at(10);
    assert!(h.actions().is_empty(), "sent and received at 6 s");
    h.at(16);
    assert_eq!(h.sent(), vec![Packet::PingReq]);
}

/// A client that only sends (QoS 0 into a half-open connection) still pings, because nothing
/// was received, and so still notices the dead connection.
#[test]
fn ping_also_when_nothing_received_so_half_open_is_detected_while_publishing() {
    let mut h = H::v311();
    h.connect(false);
    for s in 1..=9 {
        h.at(s);
        h.publish("t", QoS::AtMostOnce);
    }
    let _ = h.actions();
    h.at(10);
    assert_eq!(h.sent(), vec![Packet::PingReq]);
    h.at(12);
    h.publish("t", QoS::AtMostOnce);
    let _ = h.actions();
    let _ = h.events();
    h.at(13);
    assert_eq!(h.actions(), vec![ClientAction::CloseTransport]);
    assert_eq!(
        h.events()[0],
        ClientEvent::ConnectionLost {
            cause: DownCause::KeepAliveTimeout
        }
    );
}

/// No answer within ping_timeout: close without DISCONNECT (the broker must publish the will),
/// report the loss, schedule a reconnect.
#[test]
fn no_answer_within_ping_timeout_declares_the_connection_dead() {
    let mut h = H::v5();
    h.connect(false);
    let _ = h.events();
    h.at(10);
    assert_eq!(h.sent(), vec![Packet::PingReq]);
    assert_eq!(h.c.poll_timeout(), Some(h.t0 + Duration::from_secs(13)));
    h.at_ms(12_999);
    assert!(h.actions().is_empty());
    h.at(13);
    assert_eq!(
        h.actions(),
        vec![ClientAction::CloseTransport],
        "no DISCONNECT: the will must fire"
    );
    assert_eq!(
        h.events(),
        vec![
            ClientEvent::ConnectionLost {
                cause: DownCause::KeepAliveTimeout
            },
            ClientEvent::Reconnecting {
                attempt: 1,
                delay: Duration::from_secs(1)
            },
        ]
    );
    assert_eq!(h.c.state(), ConnState::Backoff);
}

#[test]
fn any_packet_answers_the_ping() {
    let mut h = H::v311();
    h.connect(false);
    h.at(10);
    let _ = h.sent();
    h.at(12);
    h.recv(Packet::Publish(incoming(0, QoS::AtMostOnce, false)));
    h.at(13);
    assert!(h.actions().is_empty());
    assert_eq!(h.c.state(), ConnState::Connected);
}

#[test]
fn keep_alive_zero_arms_no_timer() {
    let mut cfg = config(Protocol::V3_1_1);
    cfg.keep_alive = 0;
    let mut h = H::new(cfg);
    h.connect(false);
    assert_eq!(h.c.poll_timeout(), None);
    h.at(100_000);
    assert!(h.actions().is_empty());
}

/// [MQTT-3.2.2-21] the server keep alive replaces ours.
#[test]
fn mqtt_3_2_2_21_server_keep_alive_overrides() {
    let mut h = H::v5();
    h.connect_with(ConnAck {
        session_present: false,
        reason: ReasonCode::Success,
        properties: Properties::from(PropertySet {
            server_keep_alive: Some(4),
            ..PropertySet::default()
        }),
    });
    assert_eq!(h.c.poll_timeout(), Some(h.t0 + Duration::from_secs(4)));
    h.at(4);
    assert_eq!(h.sent(), vec![Packet::PingReq]);
}
