//! The durable state: what survives a broker restart, and the dirty flag that tells the shell
//! to save it before acknowledging.

use super::*;

fn restart(h: Harness) -> Harness {
    let state = h.broker.durable_state();
    let config = h.broker.config().clone();
    Harness {
        broker: Broker::restore(config, state),
        t0: h.t0,
        now: h.now,
    }
}

/// After a restart, persistent sessions are offline: their subscriptions still route, queued
/// and in-flight messages are delivered on resumption (in flight first, DUP set), and the
/// session-present flag is 1.
#[test]
fn restore_keeps_persistent_sessions_and_resends_in_flight() {
    let mut h = Harness::with(BrokerConfig {
        max_inflight: 1,
        ..Default::default()
    });
    h.connect(1, "pub", false);
    h.connect(2, "sub", false);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    let out = h.publish(1, "t", QoS::AtLeastOnce, 1, "a");
    h.publish(1, "t", QoS::AtLeastOnce, 2, "b");
    let first = publishes(&out, 2)[0].clone();
    let mut h = restart(h);
    assert_eq!(h.broker.connection_count(), 0);
    h.connect(1, "pub", false);
    h.publish(1, "t", QoS::AtLeastOnce, 3, "c");
    h.accept(2);
    h.packet(2, Packet::Connect(connect("sub", false)));
    let out = h.drain();
    let Packet::ConnAck(a) = &sent(&out, 2)[0] else {
        panic!("{out:?}")
    };
    assert!(a.session_present);
    let p = publishes(&out, 2);
    assert_eq!(p.len(), 1, "window of 1: only the resend");
    assert_eq!(
        (p[0].pkid, p[0].dup, &p[0].payload[..]),
        (first.pkid, true, &b"a"[..])
    );
    h.packet(2, Packet::PubAck(ack(first.pkid)));
    let out = h.drain();
    assert_eq!(payloads(&out, 2), vec!["b"]);
    h.packet(2, Packet::PubAck(ack(publishes(&out, 2)[0].pkid)));
    assert_eq!(payloads(&h.drain(), 2), vec!["c"]);
}

/// Retained messages survive; clean sessions do not; wills of connected clients are not
/// published by the restarted broker.
#[test]
fn restore_keeps_retained_but_not_clean_sessions_or_wills() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.packet(1, retained("r", QoS::AtMostOnce, 0, "kept"));
    let mut c = connect("dev", true);
    c.will = Some(will("w", "gone", QoS::AtLeastOnce, true));
    h.connect_with(2, c);
    h.connect(3, "watcher", false);
    h.subscribe(3, "w", QoS::AtLeastOnce);
    h.drain();
    let state = h.broker.durable_state();
    assert_eq!(state.sessions.keys().collect::<Vec<_>>(), vec!["watcher"]);
    let mut h = restart(h);
    assert!(h.broker.session("dev").is_none());
    assert!(h.drain().is_empty());
    h.accept(3);
    h.packet(3, Packet::Connect(connect("watcher", false)));
    assert!(
        publishes(&h.drain(), 3).is_empty(),
        "no will after a broker restart"
    );
    h.connect(4, "late", true);
    h.packet(4, subscribe(1, &[("#", QoS::AtMostOnce)]));
    assert_eq!(payloads(&h.drain(), 4), vec!["kept"]);
}

/// [MQTT-4.3.3-2] across a restart: an inbound QoS 2 identifier still awaiting PUBREL keeps a
/// resent PUBLISH from being forwarded twice.
#[test]
fn mqtt_4_3_3_2_qos2_received_state_survives_restart() {
    let mut h = Harness::new();
    h.connect(1, "pub", false);
    h.connect(2, "sub", false);
    h.subscribe(2, "t", QoS::AtMostOnce);
    h.publish(1, "t", QoS::ExactlyOnce, 5, "m");
    let mut h = restart(h);
    h.connect(2, "sub", false);
    h.connect(1, "pub", false);
    let Packet::Publish(mut again) = publish("t", QoS::ExactlyOnce, 5, "m") else {
        unreachable!()
    };
    again.dup = true;
    h.packet(1, Packet::Publish(again));
    let out = h.drain();
    assert_eq!(sent(&out, 1), vec![Packet::PubRec(ack(5))]);
    assert!(publishes(&out, 2).is_empty());
}

/// The dirty flag is raised by every change a crash would lose, before the acknowledgement
/// leaves, and not by traffic that changes nothing durable.
#[test]
fn dirty_flag_tracks_durable_changes() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.connect(2, "sub", false);
    assert!(h.broker.take_dirty(), "a persistent session was created");
    assert!(!h.broker.is_dirty());
    h.packet(2, Packet::PingReq);
    h.drain();
    assert!(!h.broker.take_dirty());
    h.publish(1, "nobody", QoS::AtLeastOnce, 1, "m");
    assert!(!h.broker.take_dirty(), "no persistent session touched");
    h.subscribe(2, "t", QoS::AtLeastOnce);
    assert!(h.broker.take_dirty());
    let before = h.broker.durable_state();
    let out = h.publish(1, "t", QoS::AtLeastOnce, 2, "m");
    assert!(
        h.broker.take_dirty(),
        "the message is in flight to a persistent session"
    );
    assert_ne!(h.broker.durable_state(), before);
    h.packet(2, Packet::PubAck(ack(publishes(&out, 2)[0].pkid)));
    assert!(h.broker.take_dirty());
    h.packet(1, retained("r", QoS::AtMostOnce, 0, "x"));
    assert!(h.broker.take_dirty(), "retained store changed");
}

/// A restored broker never hands out an assigned client id twice.
#[test]
fn assigned_ids_stay_unique_across_restart() {
    let mut h = Harness::new();
    let first = h
        .connect_with(1, connect_v5("", true, 0))
        .properties
        .assigned_client_identifier
        .unwrap();
    let mut h = restart(h);
    let second = h
        .connect_with(1, connect_v5("", true, 0))
        .properties
        .assigned_client_identifier
        .unwrap();
    assert_ne!(first, second);
}
