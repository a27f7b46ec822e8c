//! A store that fails or fills up: the broker acknowledges nothing it cannot make durable
//! (`storage.rs`).

use super::*;
use crate::broker::StorageHealth;
use crate::codec::ReasonCode;

fn failed(full: bool) -> StorageHealth {
    StorageHealth::Failed { full }
}

/// A persistent 3.1.1 watcher on `wills/#` (offline), a 5.0 client and a 3.1.1 client, both with
/// a will, connected.
fn setup() -> Harness {
    let mut h = Harness::new();
    h.connect(9, "watcher", false);
    h.subscribe(9, "wills/#", QoS::AtLeastOnce);
    h.closed(9, CloseCause::PeerClosed);
    let mut c = connect_v5("v5", true, 0);
    c.will = Some(Box::new(will("wills/v5", "gone", QoS::AtLeastOnce, false)));
    h.connect_with(1, c);
    let mut c = connect("v3", true);
    c.will = Some(Box::new(will("wills/v3", "gone", QoS::AtLeastOnce, false)));
    h.connect_with(2, c);
    h.drain();
    h
}

/// A failed store ends every connection: a 5.0 client is told why (0x80, or 0x97 when the disk
/// is full) in a DISCONNECT before the close [MQTT-3.14.2-1]; the wills are published, since
/// no DISCONNECT came from the clients [MQTT-3.1.2-8].
#[test]
fn mqtt_3_1_2_8_a_failed_store_ends_every_connection_and_publishes_the_wills() {
    for (full, code) in [
        (false, ReasonCode::UnspecifiedError),
        (true, ReasonCode::QuotaExceeded),
    ] {
        let mut h = setup();
        h.broker.handle_storage(h.now, failed(full));
        let out = h.drain();
        assert_eq!(
            sent(&out, 1),
            vec![server_disconnect(
                code,
                if full {
                    "storage full"
                } else {
                    "storage failed"
                }
            )]
        );
        assert_eq!(close_of(&out, 1), Some(CloseReason::StorageFailed(code)));
        assert!(
            sent(&out, 2).is_empty(),
            "3.1.1 has no DISCONNECT from the server"
        );
        assert_eq!(close_of(&out, 2), Some(CloseReason::StorageFailed(code)));
        assert_eq!(h.broker.connection_count(), 0);
        let queued: Vec<&str> = h
            .broker
            .session("watcher")
            .unwrap()
            .queued()
            .iter()
            .map(|d| d.message.topic.as_str())
            .collect();
        assert_eq!(queued, ["wills/v5", "wills/v3"]);
    }
}

/// While the store is failed every CONNECT is refused and the connection closed (3.1.1: 0x03
/// server unavailable [MQTT-3.2.2-5]); once the store is healthy again the same CONNECT is
/// accepted.
#[test]
fn mqtt_3_2_2_5_connect_refused_while_the_store_is_failed() {
    let mut h = setup();
    h.broker.handle_storage(h.now, failed(false));
    h.drain();
    // 5.0: 0x80, or 0x97 for a full disk, and the connection closed [MQTT-3.2.2-7].
    for (conn, c, code) in [
        (3, connect_v5("a", true, 0), ReasonCode::UnspecifiedError),
        (4, connect("b", true), ReasonCode::ServerUnavailable),
    ] {
        let ack = h.connect_with(conn, c);
        assert_eq!(ack.reason, code);
        assert!(!ack.session_present);
    }
    h.broker.handle_storage(h.now, failed(true));
    let ack = h.connect_with(5, connect_v5("c", true, 0));
    assert_eq!(ack.reason, ReasonCode::QuotaExceeded);
    h.broker.handle_storage(h.now, StorageHealth::Ok);
    assert_eq!(
        h.connect_with(6, connect_v5("a", true, 0)).reason,
        ReasonCode::Success
    );
    assert_eq!(
        h.connect(7, "b", false).reason,
        ReasonCode::Success,
        "a persistent session too"
    );
}

/// Over the size limit a new QoS 1/2 message is refused, not routed: 5.0 gets PUBACK/PUBREC
/// 0x97 [MQTT-3.4.2-1]; QoS 0 is still routed; a resent QoS 2 message already received is
/// answered as usual [MQTT-4.3.3-2].
#[test]
fn mqtt_3_4_2_1_over_quota_a_new_qos1_or_qos2_message_is_refused_with_0x97() {
    let mut h = Harness::new();
    h.connect(9, "sub", true);
    h.subscribe(9, "t/#", QoS::ExactlyOnce);
    h.connect_with(1, connect_v5("pub", true, 0));
    h.publish(1, "t/early", QoS::ExactlyOnce, 7, "x");
    h.broker.handle_storage(h.now, StorageHealth::OverQuota);

    let out = h.publish(1, "t/a", QoS::AtLeastOnce, 1, "x");
    let acks = sent(&out, 1);
    let [Packet::PubAck(a)] = &acks[..] else {
        panic!("{acks:?}")
    };
    assert_eq!(a.reason, ReasonCode::QuotaExceeded);
    assert!(publishes(&out, 9).is_empty(), "not routed");

    let out = h.publish(1, "t/b", QoS::ExactlyOnce, 2, "x");
    assert!(
        matches!(&sent(&out, 1)[..], [Packet::PubRec(a)] if a.reason == ReasonCode::QuotaExceeded)
    );
    assert!(publishes(&out, 9).is_empty());

    let out = h.publish(1, "t/early", QoS::ExactlyOnce, 7, "x");
    assert!(matches!(&sent(&out, 1)[..], [Packet::PubRec(a)] if a.reason == ReasonCode::Success));

    let out = h.publish(1, "t/c", QoS::AtMostOnce, 0, "x");
    assert_eq!(payloads(&out, 9), ["x"], "QoS 0 is routed");

    h.broker.handle_storage(h.now, StorageHealth::Ok);
    let out = h.publish(1, "t/d", QoS::AtLeastOnce, 3, "x");
    assert!(matches!(&sent(&out, 1)[..], [Packet::PubAck(a)] if a.reason == ReasonCode::Success));
    assert_eq!(publishes(&out, 9).len(), 1);
}

/// 3.1.1 has no negative PUBACK: over the size limit a QoS 1 PUBLISH closes the connection
/// without an acknowledgement, so the publisher resends it later [MQTT-4.4.0-1].
#[test]
fn mqtt_4_4_0_1_over_quota_a_v311_publisher_is_closed_unacknowledged() {
    let mut h = Harness::new();
    h.connect(1, "pub", false);
    h.broker.handle_storage(h.now, StorageHealth::OverQuota);
    let out = h.publish(1, "t", QoS::AtLeastOnce, 1, "x");
    assert!(sent(&out, 1).is_empty());
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::StorageFailed(ReasonCode::QuotaExceeded))
    );
}

/// Over the size limit a persistent session gets no new subscription (5.0: 0x97; 3.1.1: 0x80)
/// [MQTT-3.9.3-1]; renewing one it has, and subscribing a session that ends with its
/// connection, are granted.
#[test]
fn mqtt_3_9_3_1_over_quota_new_subscriptions_of_persistent_sessions_are_refused() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("keep", true, 600));
    h.subscribe(1, "old", QoS::AtLeastOnce);
    h.connect(2, "v3", false);
    h.connect(3, "clean", true);
    h.broker.handle_storage(h.now, StorageHealth::OverQuota);
    h.packet(
        1,
        subscribe(2, &[("old", QoS::AtLeastOnce), ("new", QoS::AtLeastOnce)]),
    );
    h.packet(2, subscribe(3, &[("new", QoS::AtLeastOnce)]));
    let out = h.drain();
    let Packet::SubAck(s) = &sent(&out, 1)[0] else {
        panic!()
    };
    assert_eq!(
        s.reasons,
        [ReasonCode::GrantedQoS1, ReasonCode::QuotaExceeded]
    );
    let Packet::SubAck(s) = &sent(&out, 2)[0] else {
        panic!()
    };
    assert_eq!(s.reasons, [ReasonCode::UnspecifiedError], "0x80");
    h.subscribe(3, "new", QoS::AtLeastOnce);
}

/// Over the size limit a CONNECT that would create a persistent session is refused (3.1.1:
/// 0x03 [MQTT-3.2.2-5]); resuming one and clean sessions are accepted.
#[test]
fn mqtt_3_2_2_5_over_quota_no_new_persistent_session() {
    let mut h = Harness::new();
    h.connect(1, "old", false);
    h.closed(1, CloseCause::PeerClosed);
    h.broker.handle_storage(h.now, StorageHealth::OverQuota);
    // 5.0: 0x97 quota exceeded [MQTT-3.2.2-7].
    assert_eq!(
        h.connect_with(2, connect_v5("new5", true, 60)).reason,
        ReasonCode::QuotaExceeded
    );
    assert_eq!(
        h.connect(3, "new3", false).reason,
        ReasonCode::ServerUnavailable
    );
    let resumed = h.connect(4, "old", false);
    assert_eq!(
        (resumed.reason, resumed.session_present),
        (ReasonCode::Success, true)
    );
    assert_eq!(h.connect(5, "clean", true).reason, ReasonCode::Success);
}
