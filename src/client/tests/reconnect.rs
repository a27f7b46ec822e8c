//! Reconnect backoff as a timer of the core, and deliberate disconnects.

use super::*;
use crate::codec::{Disconnect, Packet};

#[test]
fn backoff_doubles_per_failed_attempt_and_resets_on_connack() {
    let mut h = H::v311();
    h.connect(false);
    let _ = h.events();
    h.c.handle_transport_down(h.now, DownCause::PeerClosed);
    let mut delays = Vec::new();
    for _ in 0..5 {
        let events = h.events();
        let Some(ClientEvent::Reconnecting { attempt, delay }) = events.last().cloned() else {
            panic!("{events:?}")
        };
        delays.push((attempt, delay.as_secs()));
        let before = h.now;
        assert_eq!(h.fire(), before + delay);
        assert_eq!(h.actions(), vec![ClientAction::OpenTransport]);
        h.c.handle_transport_down(h.now, DownCause::Io(std::io::ErrorKind::ConnectionRefused));
    }
    assert_eq!(delays, vec![(1, 1), (2, 2), (3, 4), (4, 8), (5, 8)]);
    let _ = h.events();
    h.fire();
    h.open_with(connack(true));
    h.c.handle_transport_down(h.now, DownCause::PeerClosed);
    assert_eq!(
        h.events().last(),
        Some(&ClientEvent::Reconnecting {
            attempt: 1,
            delay: Duration::from_secs(1)
        }),
        "a CONNACK resets the backoff"
    );
}

fn jittered_delays(seed: u64) -> Vec<Duration> {
    let mut cfg = config(Protocol::V3_1_1);
    cfg.reconnect.jitter = 1.0;
    let mut c = Client::new(cfg, seed);
    let t0 = Instant::now();
    c.connect(t0);
    let mut out = Vec::new();
    let mut now = t0;
    for _ in 0..6 {
        c.handle_transport_down(now, DownCause::PeerClosed);
        while let Some(e) = c.poll_event() {
            if let ClientEvent::Reconnecting { delay, .. } = e {
                out.push(delay);
            }
        }
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        while c.poll_action().is_some() {}
    }
    out
}

#[test]
fn jitter_comes_from_the_seed() {
    assert_eq!(jittered_delays(11), jittered_delays(11));
    assert_ne!(jittered_delays(11), jittered_delays(12));
    for (i, d) in jittered_delays(11).into_iter().enumerate() {
        let cap = Duration::from_secs(1 << i.min(3));
        assert!(d <= cap, "attempt {i}: {d:?} > {cap:?}");
    }
}

#[test]
fn reconnect_disabled_goes_idle() {
    let mut cfg = config(Protocol::V3_1_1);
    cfg.reconnect.enabled = false;
    let mut h = H::new(cfg);
    h.connect(false);
    let _ = h.events();
    h.c.handle_transport_down(h.now, DownCause::PeerClosed);
    assert_eq!(
        h.events(),
        vec![ClientEvent::ConnectionLost {
            cause: DownCause::PeerClosed
        }]
    );
    assert_eq!(h.c.state(), ConnState::Idle);
    assert_eq!(h.c.poll_timeout(), None);
    h.c.connect(h.now);
    assert_eq!(
        h.actions(),
        vec![ClientAction::OpenTransport],
        "the application may connect again"
    );
}

#[test]
fn connect_during_backoff_cuts_it_short() {
    let mut h = H::v311();
    h.connect(false);
    h.c.handle_transport_down(h.now, DownCause::PeerClosed);
    assert_eq!(h.c.state(), ConnState::Backoff);
    h.c.connect(h.now);
    assert_eq!(h.actions(), vec![ClientAction::OpenTransport]);
    assert_eq!(h.c.state(), ConnState::Connecting);
}

/// A 5.0 broker taking the session over for another connection: reconnecting would take it
/// back and start a takeover war, so the client stops.
#[test]
fn session_taken_over_is_not_reconnected() {
    let mut h = H::v5();
    h.connect(false);
    let _ = h.events();
    h.recv(Packet::Disconnect(Disconnect {
        reason: ReasonCode::SessionTakenOver,
        properties: Properties::default(),
    }));
    assert_eq!(h.actions(), vec![ClientAction::CloseTransport]);
    assert_eq!(
        h.events(),
        vec![ClientEvent::ConnectionLost {
            cause: DownCause::ServerDisconnect(ReasonCode::SessionTakenOver)
        }]
    );
    assert_eq!(h.c.state(), ConnState::Idle);
}

#[test]
fn server_shutting_down_is_reconnected() {
    let mut h = H::v5();
    h.connect(false);
    h.recv(Packet::Disconnect(Disconnect {
        reason: ReasonCode::ServerShuttingDown,
        properties: Properties::default(),
    }));
    assert_eq!(h.c.state(), ConnState::Backoff);
}

/// [MQTT-3.14.4-1] [MQTT-3.14.4-2] 3.1.1: after DISCONNECT the client closes and sends nothing
/// more; no reconnect follows.
#[test]
fn mqtt_3_14_4_1_disconnect_sends_disconnect_then_closes_and_stays_idle() {
    let mut h = H::v311();
    h.connect(false);
    let _ = h.events();
    h.c.disconnect(h.now, ReasonCode::Success);
    assert_eq!(
        h.actions(),
        vec![
            ClientAction::Send(Packet::Disconnect(Disconnect::default())),
            ClientAction::CloseTransport
        ]
    );
    assert_eq!(h.events(), vec![ClientEvent::Disconnected]);
    assert_eq!(h.c.poll_timeout(), None);
    h.c.handle_transport_down(h.now, DownCause::PeerClosed);
    h.at(1000);
    assert!(h.actions().is_empty());
    assert!(h.events().is_empty(), "the close we caused is not a loss");
}

/// 5.0: DISCONNECT 0x04 asks the broker to publish the will.
#[test]
fn v5_disconnect_with_will_message_carries_the_reason() {
    let mut h = H::v5();
    h.connect(false);
    h.c.disconnect(h.now, ReasonCode::DisconnectWithWillMessage);
    let acts = h.actions();
    assert!(
        matches!(&acts[0], ClientAction::Send(Packet::Disconnect(d)) if d.reason == ReasonCode::DisconnectWithWillMessage)
    );
}

/// [MQTT-3.1.2-8] (3.1.1) the will is published when the connection closes without
/// DISCONNECT: "disconnect with will" closes without sending one.
#[test]
fn mqtt_3_1_2_8_v311_disconnect_with_will_closes_without_disconnect() {
    let mut h = H::v311();
    h.connect(false);
    h.c.disconnect(h.now, ReasonCode::DisconnectWithWillMessage);
    assert_eq!(h.actions(), vec![ClientAction::CloseTransport]);
}

#[test]
fn disconnect_while_backing_off_cancels_the_timer() {
    let mut h = H::v311();
    h.connect(false);
    h.c.handle_transport_down(h.now, DownCause::PeerClosed);
    let _ = h.events();
    h.c.disconnect(h.now, ReasonCode::Success);
    assert!(h.actions().is_empty(), "no transport to close");
    assert_eq!(h.events(), vec![ClientEvent::Disconnected]);
    assert_eq!(h.c.poll_timeout(), None);
}

/// Requests in flight at a deliberate disconnect are kept and resumed by the next connect.
#[test]
fn disconnect_keeps_requests_for_the_next_connect() {
    let mut h = H::v311();
    h.connect(false);
    h.publish("t", QoS::AtLeastOnce);
    let first = h.sent();
    h.c.disconnect(h.now, ReasonCode::Success);
    let _ = h.actions();
    h.connect(true);
    let resent = h.sent();
    assert_eq!(resent.len(), 1);
    assert_eq!(pub_id(&resent[0]), (pub_id(&first[0]).0, true));
}
