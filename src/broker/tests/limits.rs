//! Every configured limit: a client breaking it gets what the specification names (a reason
//! code, a closed connection or a dropped message), and the other clients are not affected.

use std::time::Duration;

use bytes::BytesMut;

use super::*;
use crate::broker::BrokerEvent;
use crate::codec::{self, Disconnect, ReasonCode};

/// Client `pub_conn` publishes on `topic` at QoS 0 and `sub_conn` (subscribed to it) gets it.
fn still_works(h: &mut Harness, pub_conn: ConnId, sub_conn: ConnId, topic: &str) {
    let out = h.publish(pub_conn, topic, QoS::AtMostOnce, 0, "alive");
    assert_eq!(payloads(&out, sub_conn), ["alive"], "{out:?}");
    assert_eq!(close_of(&out, pub_conn), None);
    assert_eq!(close_of(&out, sub_conn), None);
}

/// Two connected clients, 10 subscribed to `ok/#`, 11 publishing.
fn bystanders(h: &mut Harness) {
    h.connect(10, "bystander-sub", true);
    h.subscribe(10, "ok/#", QoS::AtMostOnce);
    h.connect(11, "bystander-pub", true);
}

/// The reason codes of the DISCONNECT packets among `packets` (the reason string is free text).
fn disconnects(packets: &[Packet]) -> Vec<ReasonCode> {
    packets
        .iter()
        .map(|p| match p {
            Packet::Disconnect(Disconnect { reason, .. }) => *reason,
            other => panic!("expected only DISCONNECT, got {other:?}"),
        })
        .collect()
}

#[test]
fn limit_max_connections_closes_only_the_extra_connection() {
    let mut h = Harness::with(BrokerConfig {
        max_connections: 2,
        ..Default::default()
    });
    bystanders(&mut h);
    h.accept(3);
    let out = h.drain();
    assert_eq!(close_of(&out, 3), Some(CloseReason::TooManyConnections));
    assert_eq!(h.broker.connection_count(), 2);
    still_works(&mut h, 11, 10, "ok/1");
}

#[test]
fn limit_connect_timeout_closes_only_the_silent_connection() {
    let mut h = Harness::with(BrokerConfig {
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    });
    bystanders(&mut h);
    h.accept(3);
    h.advance_to(4);
    assert_eq!(close_of(&h.drain(), 3), None);
    h.advance_to(5);
    let out = h.drain();
    assert_eq!(close_of(&out, 3), Some(CloseReason::ConnectTimeout));
    assert!(sent(&out, 3).is_empty(), "no CONNACK to a silent client");
    still_works(&mut h, 11, 10, "ok/1");
}

/// 5.0: a packet larger than the maximum packet size the broker advertised is answered with
/// DISCONNECT 0x95 "packet too large" (section 3.2.2.3.6).
#[test]
fn limit_max_packet_size_disconnects_only_the_sender_with_0x95() {
    let mut h = Harness::with(BrokerConfig {
        max_packet_size: 64,
        ..Default::default()
    });
    bystanders(&mut h);
    h.connect_with(1, connect_v5("big", true, 0));
    let mut buf = BytesMut::new();
    codec::encode(
        &publish("ok/1", QoS::AtMostOnce, 0, &"x".repeat(100)),
        Protocol::V5,
        &mut buf,
    )
    .unwrap();
    h.broker.handle_bytes(h.now, 1, &buf);
    let out = h.drain();
    assert_eq!(disconnects(&sent(&out, 1)), [ReasonCode::PacketTooLarge]);
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(ReasonCode::PacketTooLarge))
    );
    assert!(payloads(&out, 10).is_empty());
    still_works(&mut h, 11, 10, "ok/1");
}

#[test]
fn limit_max_inflight_holds_back_only_the_slow_session() {
    let mut h = Harness::with(BrokerConfig {
        max_inflight: 2,
        ..Default::default()
    });
    h.connect(1, "slow", true);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.connect(2, "fast", true);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    h.connect(3, "pub", true);
    let mut slow = 0;
    for i in 0..4u16 {
        let out = h.publish(3, "t", QoS::AtLeastOnce, i + 1, &i.to_string());
        slow += payloads(&out, 1).len();
        // The fast subscriber acknowledges at once and so receives every message.
        for p in publishes(&out, 2) {
            h.packet(2, Packet::PubAck(ack(p.pkid)));
        }
        assert_eq!(payloads(&out, 2), [i.to_string()], "{out:?}");
    }
    assert_eq!(slow, 2, "the window holds the rest back");
    assert_eq!(h.broker.session("slow").unwrap().queued().len(), 2);
}

#[test]
fn limit_max_queued_messages_drops_only_for_the_full_session() {
    let mut h = Harness::with(BrokerConfig {
        max_queued_messages: 2,
        ..Default::default()
    });
    h.connect(1, "offline", false);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.closed(1, CloseCause::PeerClosed);
    h.connect(2, "online", true);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    h.connect(3, "pub", true);
    for i in 0..3u16 {
        let out = h.publish(3, "t", QoS::AtLeastOnce, i + 1, &i.to_string());
        assert_eq!(payloads(&out, 2), [i.to_string()]);
        for p in publishes(&out, 2) {
            h.packet(2, Packet::PubAck(ack(p.pkid)));
        }
    }
    let events: Vec<_> = std::iter::from_fn(|| h.broker.poll_event()).collect();
    assert!(
        matches!(&events[..], [BrokerEvent::QueueOverflow { client_id, .. }] if client_id == "offline"),
        "{events:?}"
    );
    assert_eq!(h.broker.session("offline").unwrap().queued().len(), 2);
    assert_eq!(h.broker.stats().queue_overflow_dropped, 1);
}

#[test]
fn limit_max_queued_bytes_drops_the_message_that_would_go_beyond() {
    let mut h = Harness::with(BrokerConfig {
        max_queued_bytes: 10,
        ..Default::default()
    });
    h.connect(1, "offline", false);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.closed(1, CloseCause::PeerClosed);
    h.connect(2, "online", true);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    h.connect(3, "pub", true);
    // 4 + 4 bytes fit, 4 more would make 12, 2 more make exactly 10.
    for (i, payload) in ["aaaa", "bbbb", "cccc", "dd"].into_iter().enumerate() {
        let out = h.publish(3, "t", QoS::AtLeastOnce, i as u16 + 1, payload);
        assert_eq!(
            payloads(&out, 2),
            [payload],
            "the online session gets everything"
        );
        for p in publishes(&out, 2) {
            h.packet(2, Packet::PubAck(ack(p.pkid)));
        }
    }
    let events: Vec<_> = std::iter::from_fn(|| h.broker.poll_event()).collect();
    assert_eq!(
        events,
        [BrokerEvent::QueueOverflow {
            client_id: "offline".into(),
            topic: "t".into(),
            qos: QoS::AtLeastOnce,
            payload: bytes::Bytes::from_static(b"cccc"),
        }]
    );
    // On reconnection exactly the messages that fitted arrive, in order.
    let ack = h.connect(4, "offline", false);
    assert!(ack.session_present);
    h.drain();
    let queued: Vec<_> = h
        .broker
        .session("offline")
        .unwrap()
        .inflight()
        .iter()
        .map(|e| match e {
            crate::broker::Inflight::Publish { delivery, .. } => {
                String::from_utf8_lossy(&delivery.message.payload).into_owned()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(queued, ["aaaa", "bbbb", "dd"]);
}

/// 5.0: one subscription too many gets 0x97 "quota exceeded" in its SUBACK slot; the other
/// filters of the same SUBSCRIBE, and other clients, are granted.
#[test]
fn limit_max_subscriptions_per_client_refuses_with_0x97() {
    let mut h = Harness::with(BrokerConfig {
        max_subscriptions_per_client: 2,
        ..Default::default()
    });
    h.connect_with(1, connect_v5("greedy", true, 0));
    h.packet(
        1,
        subscribe(
            1,
            &[
                ("a", QoS::AtMostOnce),
                ("b", QoS::AtMostOnce),
                ("c", QoS::AtMostOnce),
            ],
        ),
    );
    let out = h.drain();
    let Some(Packet::SubAck(s)) = sent(&out, 1).first().cloned() else {
        panic!("{out:?}");
    };
    assert_eq!(
        s.reasons,
        [
            ReasonCode::Success,
            ReasonCode::Success,
            ReasonCode::QuotaExceeded
        ]
    );
    h.connect(2, "modest", true);
    h.subscribe(2, "c", QoS::AtMostOnce);
    h.subscribe(2, "ok/#", QoS::AtMostOnce);
    h.connect(3, "pub", true);
    still_works(&mut h, 3, 2, "c");
}

/// A topic name beyond the configured length or levels is refused (5.0: DISCONNECT 0x90 "topic
/// name invalid"); a filter beyond them gets a failure code in its SUBACK slot (5.0: 0x97).
#[test]
fn limit_max_topic_len_and_levels_refuse_only_the_offender() {
    let mut h = Harness::with(BrokerConfig {
        max_topic_levels: 3,
        max_topic_len: 20,
        ..Default::default()
    });
    bystanders(&mut h);
    h.connect_with(1, connect_v5("deep", true, 0));
    h.packet(
        1,
        subscribe(
            1,
            &[
                ("a/b/c/d", QoS::AtMostOnce),
                (&"x".repeat(21), QoS::AtMostOnce),
                ("a/b", QoS::AtMostOnce),
            ],
        ),
    );
    let out = h.drain();
    let Some(Packet::SubAck(s)) = sent(&out, 1).first().cloned() else {
        panic!("{out:?}");
    };
    assert_eq!(
        s.reasons,
        [
            ReasonCode::QuotaExceeded,
            ReasonCode::QuotaExceeded,
            ReasonCode::Success
        ]
    );
    let out = h.publish(1, "ok/a/b/c", QoS::AtMostOnce, 0, "too deep");
    assert_eq!(disconnects(&sent(&out, 1)), [ReasonCode::TopicNameInvalid]);
    assert!(payloads(&out, 10).is_empty());
    h.connect_with(2, connect_v5("long", true, 0));
    let out = h.publish(
        2,
        &format!("ok/{}", "y".repeat(18)),
        QoS::AtMostOnce,
        0,
        "too long",
    );
    assert_eq!(disconnects(&sent(&out, 2)), [ReasonCode::TopicNameInvalid]);
    still_works(&mut h, 11, 10, "ok/b/c");
}
