//! Keep-alive: 1.5 × keep-alive of silence ends the connection abnormally.

use super::*;
use crate::codec::ReasonCode;

fn connect_ka(id: &str, keep_alive: u16) -> Connect {
    let mut c = connect(id, true);
    c.keep_alive = keep_alive;
    c.will = Some(Box::new(will("wills", id, QoS::AtMostOnce, false)));
    c
}

/// [MQTT-3.1.2-24] 3.1.1: silent for one and a half times the keep-alive, disconnected as if
/// the network failed (the will is published), not a moment earlier.
#[test]
fn mqtt_3_1_2_24_silent_for_one_and_a_half_keep_alive_is_disconnected() {
    let mut h = Harness::new();
    h.connect(9, "watcher", true);
    h.subscribe(9, "wills", QoS::AtMostOnce);
    h.connect_with(1, connect_ka("dev", 10));
    assert_eq!(
        h.broker.poll_timeout(),
        Some(h.t0 + Duration::from_secs(15))
    );
    h.advance_to_ms(14_999);
    assert!(h.drain().is_empty());
    h.advance_to(15);
    let out = h.drain();
    assert_eq!(close_of(&out, 1), Some(CloseReason::KeepAliveTimeout));
    assert_eq!(
        payloads(&out, 9),
        vec!["dev"],
        "a keep-alive timeout publishes the will"
    );
    assert_eq!(h.broker.poll_timeout(), None);
}

/// 3.1.1 [MQTT-3.1.2-24]: any control packet (here PINGREQ, answered by PINGRESP
/// [MQTT-3.12.4-1]) restarts the keep-alive period.
#[test]
fn mqtt_3_12_4_1_pingreq_answered_and_keeps_the_connection_alive() {
    let mut h = Harness::new();
    h.connect_with(1, connect_ka("dev", 10));
    for s in [10, 20, 30] {
        h.advance_to(s);
        h.packet(1, Packet::PingReq);
        assert_eq!(sent(&h.drain(), 1), vec![Packet::PingResp]);
    }
    h.advance_to(44);
    assert!(h.drain().is_empty());
    h.packet(1, publish("x", QoS::AtMostOnce, 0, "p"));
    h.advance_to(58);
    assert!(
        h.drain().is_empty(),
        "the PUBLISH at 44 s counts as activity"
    );
    h.advance_to(59);
    assert_eq!(close_of(&h.drain(), 1), Some(CloseReason::KeepAliveTimeout));
}

/// 3.1.1 [MQTT-3.1.2-24] counts packets the server does not receive; while the shell holds a
/// connection back (it stops reading it: backpressure), what the client sends waits unread, so
/// the connection is not timed out, and its keep-alive period restarts when reading resumes.
#[test]
fn mqtt_3_1_2_24_a_connection_the_server_does_not_read_is_not_timed_out() {
    let mut h = Harness::new();
    h.connect_with(1, connect_ka("dev", 10));
    h.advance_to(5);
    h.broker.handle_held(h.now, 1, true);
    assert_eq!(h.broker.poll_timeout(), None);
    h.packet(1, Packet::PingReq);
    assert_eq!(sent(&h.drain(), 1), vec![Packet::PingResp]);
    assert_eq!(
        h.broker.poll_timeout(),
        None,
        "a packet read while held (it was on its way) does not restart the clock"
    );
    h.advance_to(100);
    assert!(h.drain().is_empty());
    h.broker.handle_held(h.now, 1, false);
    h.advance_to_ms(114_999);
    assert!(
        h.drain().is_empty(),
        "a whole period from the moment reading resumed"
    );
    h.advance_to(115);
    assert_eq!(close_of(&h.drain(), 1), Some(CloseReason::KeepAliveTimeout));
}

/// Section 3.1.2.10: a keep-alive of 0 turns the mechanism off.
#[test]
fn mqtt_3_1_2_keep_alive_zero_never_times_out() {
    let mut h = Harness::new();
    h.connect_with(1, connect_ka("dev", 0));
    assert_eq!(h.broker.poll_timeout(), None);
    h.advance_to(100_000);
    assert!(h.drain().is_empty());
}

/// 5.0: the client is told DISCONNECT 0x8D before the close.
#[test]
fn mqtt5_keep_alive_timeout_sends_disconnect_0x8d() {
    let mut h = Harness::new();
    let mut c = connect_v5("dev", true, 0);
    c.keep_alive = 2;
    h.connect_with(1, c);
    h.advance_to(3);
    let out = h.drain();
    assert_eq!(
        sent(&out, 1),
        vec![server_disconnect(
            ReasonCode::KeepAliveTimeout,
            "keep-alive timeout"
        )]
    );
    assert_eq!(close_of(&out, 1), Some(CloseReason::KeepAliveTimeout));
}

/// Deadlines of several connections fire in time order, each once.
#[test]
fn several_deadlines_fire_in_order() {
    let mut h = Harness::new();
    h.connect_with(1, connect_ka("a", 4));
    h.connect_with(2, connect_ka("b", 2));
    h.accept(3);
    h.advance_to(100);
    let closes: Vec<_> = h
        .drain()
        .into_iter()
        .filter_map(|a| match a {
            Action::Close { conn, reason } => Some((conn, reason)),
            Action::Send { .. } => None,
        })
        .collect();
    assert_eq!(
        closes,
        vec![
            (2, CloseReason::KeepAliveTimeout),
            (1, CloseReason::KeepAliveTimeout),
            (3, CloseReason::ConnectTimeout)
        ]
    );
}
