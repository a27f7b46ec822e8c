//! Outbound publishes, subscribes and unsubscribes: QoS flows, packet identifiers, windows,
//! broker limits, and what a reconnect does to requests in flight.

use super::*;
use crate::codec::{Packet, Unsubscribe};

#[test]
fn qos0_is_written_at_once_and_reported_sent() {
    let mut h = H::v311();
    h.connect(false);
    let _ = h.events();
    let id = h.publish("a/b", QoS::AtMostOnce);
    let sent = h.sent();
    assert_eq!(pub_id(&sent[0]), (0, false));
    assert_eq!(h.events(), vec![ClientEvent::PublishSent { id }]);
    assert_eq!(h.c.inflight_len(), 0);
}

#[test]
fn qos1_completes_on_puback() {
    let mut h = H::v311();
    h.connect(false);
    let _ = h.events();
    let id = h.publish("a/b", QoS::AtLeastOnce);
    let (pkid, dup) = pub_id(&h.sent()[0]);
    assert!(pkid != 0 && !dup);
    assert!(h.events().is_empty(), "not acknowledged yet");
    h.recv(Packet::PubAck(ack(pkid)));
    assert_eq!(
        h.events(),
        vec![ClientEvent::PublishAcked {
            id,
            reason: ReasonCode::Success
        }]
    );
    assert_eq!(h.c.inflight_len(), 0);
    h.recv(Packet::PubAck(ack(pkid)));
    assert!(h.events().is_empty(), "a repeated PUBACK completes nothing");
}

/// [MQTT-4.3.3-3] after PUBREC the sender sends PUBREL and must not re-send the PUBLISH;
/// PUBCOMP completes it.
#[test]
fn mqtt_4_3_3_3_qos2_pubrec_then_pubrel_then_pubcomp() {
    let mut h = H::v311();
    h.connect(false);
    let _ = h.events();
    let id = h.publish("a/b", QoS::ExactlyOnce);
    let (pkid, _) = pub_id(&h.sent()[0]);
    h.recv(Packet::PubRec(ack(pkid)));
    assert_eq!(h.sent(), vec![Packet::PubRel(ack(pkid))]);
    assert!(h.events().is_empty());
    h.recv(Packet::PubRec(ack(pkid)));
    assert_eq!(
        h.sent(),
        vec![Packet::PubRel(ack(pkid))],
        "a repeated PUBREC gets the PUBREL again"
    );
    h.recv(Packet::PubAck(ack(pkid)));
    assert!(h.events().is_empty(), "PUBACK does not complete QoS 2");
    h.recv(Packet::PubComp(ack(pkid)));
    assert_eq!(
        h.events(),
        vec![ClientEvent::PublishAcked {
            id,
            reason: ReasonCode::Success
        }]
    );
    // After a reconnect with the session, nothing is left to resend.
    h.reconnect(true);
    assert!(h.sent().is_empty());
}

/// 5.0: a PUBREC with an error reason ends the QoS 2 exchange (no PUBREL) and frees the quota.
#[test]
fn v5_error_pubrec_completes_without_pubrel() {
    let mut h = H::v5();
    h.connect(false);
    let _ = h.events();
    let id = h.publish("a/b", QoS::ExactlyOnce);
    let (pkid, _) = pub_id(&h.sent()[0]);
    h.recv(Packet::PubRec(Ack {
        pkid,
        reason: ReasonCode::NotAuthorized,
        properties: Properties::default(),
    }));
    assert!(h.sent().is_empty());
    assert_eq!(
        h.events(),
        vec![ClientEvent::PublishAcked {
            id,
            reason: ReasonCode::NotAuthorized
        }]
    );
    assert_eq!(h.c.inflight_len(), 0);
}

/// [MQTT-4.4.0-1] on reconnect with a session, unacknowledged PUBLISH (DUP 1, [MQTT-3.3.1-1])
/// and PUBREL packets are re-sent with their original identifiers, PUBLISHes in their original
/// order ([MQTT-4.6.0-1]), PUBRELs in PUBREC order ([MQTT-4.6.0-3]).
#[test]
fn mqtt_4_4_0_1_resend_unacked_publish_with_dup_in_order() {
    let mut h = H::v311();
    h.connect(false);
    let a = h.publish("t/a", QoS::AtLeastOnce);
    let b = h.publish("t/b", QoS::ExactlyOnce);
    let c = h.publish("t/c", QoS::ExactlyOnce);
    let d = h.publish("t/d", QoS::AtLeastOnce);
    let ids: Vec<u16> = h.sent().iter().map(|p| pub_id(p).0).collect();
    h.recv(Packet::PubRec(ack(ids[2])));
    assert_eq!(h.sent(), vec![Packet::PubRel(ack(ids[2]))]);
    h.recv(Packet::PubAck(ack(ids[3])));
    let _ = h.events();

    h.reconnect(true);
    let resent = h.sent();
    assert_eq!(resent.len(), 3, "{resent:?}");
    assert_eq!(pub_id(&resent[0]), (ids[0], true));
    assert_eq!(pub_id(&resent[1]), (ids[1], true));
    assert_eq!(resent[2], Packet::PubRel(ack(ids[2])));
    match &resent[0] {
        Packet::Publish(p) => assert_eq!((p.topic.as_str(), p.qos), ("t/a", QoS::AtLeastOnce)),
        _ => unreachable!(),
    }
    // Acks after the resend still complete the original requests.
    h.recv(Packet::PubAck(ack(ids[0])));
    h.recv(Packet::PubRec(ack(ids[1])));
    h.recv(Packet::PubComp(ack(ids[2])));
    let _ = h.sent();
    h.recv(Packet::PubComp(ack(ids[1])));
    let done: Vec<RequestId> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::PublishAcked { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(done, vec![a, c, b]);
    assert!(
        !done.contains(&d),
        "d was acknowledged before the drop, and only once"
    );
}

/// Session present 0 after a reconnect: the broker lost the session. In-flight publishes are
/// reported `PublishLost { SessionLost }` and not re-sent; publishes still buffered are sent.
#[test]
fn session_lost_reports_unconfirmed_publishes_and_sends_buffered_ones() {
    let mut h = H::v311();
    h.connect(false);
    let a = h.publish("t/a", QoS::AtLeastOnce);
    let b = h.publish("t/b", QoS::ExactlyOnce);
    let ids: Vec<u16> = h.sent().iter().map(|p| pub_id(p).0).collect();
    h.recv(Packet::PubRec(ack(ids[1])));
    let _ = h.sent();
    h.c.handle_transport_down(h.now, DownCause::Io(std::io::ErrorKind::ConnectionReset));
    let c = h.publish("t/c", QoS::AtLeastOnce);
    assert!(h.actions().is_empty(), "buffered while disconnected");
    let _ = h.events();
    h.fire();
    h.open_with(connack(false));
    let events = h.events();
    assert_eq!(
        &events[1..],
        &[
            ClientEvent::PublishLost {
                id: a,
                why: LostReason::SessionLost
            },
            ClientEvent::PublishLost {
                id: b,
                why: LostReason::SessionLost
            },
        ]
    );
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "only the buffered publish: {sent:?}");
    let (pkid, dup) = pub_id(&sent[0]);
    assert!(!dup);
    h.recv(Packet::PubAck(ack(pkid)));
    assert_eq!(
        h.events(),
        vec![ClientEvent::PublishAcked {
            id: c,
            reason: ReasonCode::Success
        }]
    );
    h.recv(Packet::PubComp(ack(ids[1])));
    assert!(
        h.events().is_empty(),
        "a lost publish never completes later"
    );
}

/// [MQTT-2.2.1-3] identifiers are unique among requests in flight; publishes, subscribes and
/// unsubscribes share the space; a freed identifier is not the next one handed out.
#[test]
fn mqtt_2_2_1_3_identifiers_shared_and_not_reused_while_in_flight() {
    let mut h = H::v311();
    h.connect(false);
    h.publish("t", QoS::AtLeastOnce);
    h.subscribe("s/#", QoS::AtLeastOnce);
    h.c.unsubscribe(h.now, vec!["u".into()], Properties::default())
        .unwrap();
    let sent = h.sent();
    let pkids: Vec<u16> = sent
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.pkid,
            Packet::Subscribe(s) => s.pkid,
            Packet::Unsubscribe(u) => u.pkid,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(pkids, vec![1, 2, 3]);
    h.recv(Packet::PubAck(ack(1)));
    h.publish("t", QoS::AtLeastOnce);
    assert_eq!(pub_id(&h.sent()[0]).0, 4, "1 is free but handed out last");
}

/// Exhaustion: with all 65535 identifiers in flight, the next request waits (never a
/// duplicate) and takes the first identifier freed.
#[test]
fn identifier_exhaustion_waits_for_a_free_identifier() {
    let mut cfg = config(Protocol::V3_1_1);
    cfg.max_inflight = u16::MAX;
    cfg.max_buffered = 10;
    let mut h = H::new(cfg);
    h.connect(false);
    for _ in 0..u16::MAX {
        h.publish("t", QoS::AtLeastOnce);
    }
    assert_eq!(h.actions().len(), usize::from(u16::MAX));
    let _ = h.events();
    let waiting = h.publish("t", QoS::AtLeastOnce);
    assert!(h.actions().is_empty(), "no identifier left: it waits");
    assert_eq!(h.c.buffered_len(), 1);
    h.recv(Packet::PubAck(ack(500)));
    assert_eq!(pub_id(&h.sent()[0]), (500, false));
    h.recv(Packet::PubAck(ack(500)));
    let events = h.events();
    assert_eq!(
        events.last(),
        Some(&ClientEvent::PublishAcked {
            id: waiting,
            reason: ReasonCode::Success
        })
    );
}

/// `max_inflight` bounds requests in flight; the rest wait in order, QoS 0 included (one FIFO).
#[test]
fn max_inflight_window_keeps_fifo_order() {
    let mut cfg = config(Protocol::V3_1_1);
    cfg.max_inflight = 2;
    let mut h = H::new(cfg);
    h.connect(false);
    h.publish("t/1", QoS::AtLeastOnce);
    h.publish("t/2", QoS::AtLeastOnce);
    h.publish("t/3", QoS::AtLeastOnce);
    let q0 = h.publish("t/4", QoS::AtMostOnce);
    assert_eq!(h.sent().len(), 2);
    assert_eq!(h.c.buffered_len(), 2);
    let _ = h.events();
    h.recv(Packet::PubAck(ack(2)));
    let sent = h.sent();
    let topics: Vec<&str> = sent
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.topic.as_str(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(topics, vec!["t/3", "t/4"]);
    assert!(h.events().contains(&ClientEvent::PublishSent { id: q0 }));
}

/// [MQTT-3.3.4-7] the client must not have more QoS 1/2 publishes unacknowledged than the
/// broker's receive maximum.
#[test]
fn mqtt_3_3_4_7_respects_broker_receive_maximum() {
    let mut h = H::v5();
    h.connect_with(ConnAck {
        session_present: false,
        reason: ReasonCode::Success,
        properties: Properties::from(PropertySet {
            receive_maximum: Some(1),
            ..PropertySet::default()
        }),
    });
    h.publish("t/1", QoS::ExactlyOnce);
    h.publish("t/2", QoS::AtLeastOnce);
    h.subscribe("s", QoS::AtMostOnce);
    let sent = h.sent();
    assert_eq!(
        sent.len(),
        1,
        "second publish waits; the subscribe waits behind it: {sent:?}"
    );
    let (pkid, _) = pub_id(&sent[0]);
    h.recv(Packet::PubRec(ack(pkid)));
    assert_eq!(
        h.sent(),
        vec![Packet::PubRel(ack(pkid))],
        "PUBREC (success) does not free the quota"
    );
    h.recv(Packet::PubComp(ack(pkid)));
    let sent = h.sent();
    assert_eq!(sent.len(), 2);
    assert!(matches!(&sent[1], Packet::Subscribe(_)));
}

/// [MQTT-3.2.2-15] never send a packet larger than the broker's maximum packet size; buffered
/// ones found too large at CONNACK are reported lost.
#[test]
fn mqtt_3_2_2_15_never_exceeds_broker_maximum_packet_size() {
    let mut h = H::v5();
    let big = Bytes::from(vec![0u8; 200]);
    let queued =
        h.c.publish(
            h.now,
            "t",
            big.clone(),
            QoS::AtLeastOnce,
            false,
            Properties::default(),
        )
        .unwrap();
    let small = h.publish("t", QoS::AtLeastOnce);
    h.connect_with(ConnAck {
        session_present: false,
        reason: ReasonCode::Success,
        properties: Properties::from(PropertySet {
            maximum_packet_size: Some(100),
            ..PropertySet::default()
        }),
    });
    let events = h.events();
    assert!(events.contains(&ClientEvent::PublishLost {
        id: queued,
        why: LostReason::PacketTooLarge
    }));
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(pub_id(&sent[0]).0, 1, "the small one, the only one sent");
    let err =
        h.c.publish(
            h.now,
            "t",
            big,
            QoS::AtLeastOnce,
            false,
            Properties::default(),
        )
        .unwrap_err();
    assert!(
        matches!(err, ClientError::PacketTooLarge { max: 100, .. }),
        "{err:?}"
    );
    assert!(h.actions().is_empty());
    let _ = small;
}

/// [MQTT-3.2.2-11] no PUBLISH above the broker's maximum QoS; [MQTT-3.2.2-14] no retained
/// PUBLISH when retain is not available.
#[test]
fn mqtt_3_2_2_11_maximum_qos_and_3_2_2_14_retain_available() {
    let mut h = H::v5();
    let buffered_q2 = h.publish("t", QoS::ExactlyOnce);
    let buffered_retained =
        h.c.publish(
            h.now,
            "t",
            Bytes::new(),
            QoS::AtMostOnce,
            true,
            Properties::default(),
        )
        .unwrap();
    h.connect_with(ConnAck {
        session_present: false,
        reason: ReasonCode::Success,
        properties: Properties::from(PropertySet {
            maximum_qos: Some(1),
            retain_available: Some(0),
            ..PropertySet::default()
        }),
    });
    let events = h.events();
    assert!(events.contains(&ClientEvent::PublishLost {
        id: buffered_q2,
        why: LostReason::QoSNotSupported
    }));
    assert!(events.contains(&ClientEvent::PublishLost {
        id: buffered_retained,
        why: LostReason::RetainNotSupported
    }));
    assert!(h.actions().is_empty());
    assert_eq!(
        h.c.publish(
            h.now,
            "t",
            Bytes::new(),
            QoS::ExactlyOnce,
            false,
            Properties::default()
        ),
        Err(ClientError::QoSNotSupported(QoS::AtLeastOnce))
    );
    assert_eq!(
        h.c.publish(
            h.now,
            "t",
            Bytes::new(),
            QoS::AtMostOnce,
            true,
            Properties::default()
        ),
        Err(ClientError::RetainNotSupported)
    );
    h.publish("t", QoS::AtLeastOnce);
    assert_eq!(h.sent().len(), 1);
}

#[test]
fn subscribe_and_unsubscribe_complete_with_their_reasons() {
    let mut h = H::v5();
    h.connect(false);
    let _ = h.events();
    let id =
        h.c.subscribe(
            h.now,
            vec![sub("a/+", QoS::AtLeastOnce), sub("b/#", QoS::ExactlyOnce)],
            Properties::default(),
        )
        .unwrap();
    let pkid = match &h.sent()[0] {
        Packet::Subscribe(s) => {
            assert_eq!(s.filters.len(), 2);
            s.pkid
        }
        other => panic!("{other:?}"),
    };
    h.recv(suback(
        pkid,
        vec![ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized],
    ));
    assert_eq!(
        h.events(),
        vec![ClientEvent::Subscribed {
            id,
            reasons: vec![ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized]
        }]
    );
    let id =
        h.c.unsubscribe(h.now, vec!["a/+".into()], Properties::default())
            .unwrap();
    let pkid = match &h.sent()[0] {
        Packet::Unsubscribe(Unsubscribe { pkid, .. }) => *pkid,
        other => panic!("{other:?}"),
    };
    h.recv(Packet::UnsubAck(crate::codec::UnsubAck {
        pkid,
        reasons: vec![ReasonCode::Success],
        properties: Properties::default(),
    }));
    assert_eq!(
        h.events(),
        vec![ClientEvent::Unsubscribed {
            id,
            reasons: vec![ReasonCode::Success]
        }]
    );
}

#[test]
fn invalid_topics_and_filters_are_refused_before_queueing() {
    let mut h = H::v311();
    assert!(matches!(
        h.c.publish(
            h.now,
            "a/+",
            Bytes::new(),
            QoS::AtMostOnce,
            false,
            Properties::default()
        ),
        Err(ClientError::InvalidTopic(_))
    ));
    assert!(matches!(
        h.c.subscribe(
            h.now,
            vec![sub("a/#/b", QoS::AtMostOnce)],
            Properties::default()
        ),
        Err(ClientError::InvalidFilter(_))
    ));
    assert_eq!(
        h.c.subscribe(h.now, vec![], Properties::default()),
        Err(ClientError::NoFilters)
    );
    assert_eq!(
        h.c.unsubscribe(h.now, vec![], Properties::default()),
        Err(ClientError::NoFilters)
    );
    assert_eq!(h.c.buffered_len(), 0);
}

/// An unanswered SUBSCRIBE is re-sent after a reconnect, with or without the session.
#[test]
fn unanswered_subscribe_is_resent_after_reconnect() {
    for session_present in [true, false] {
        let mut h = H::v311();
        h.connect(false);
        let id = h.subscribe("a", QoS::AtLeastOnce);
        let first = h.sent();
        h.reconnect(session_present);
        assert_eq!(h.sent(), first, "session present {session_present}");
        let pkid = match &first[0] {
            Packet::Subscribe(s) => s.pkid,
            _ => unreachable!(),
        };
        h.recv(suback(pkid, vec![ReasonCode::GrantedQoS1]));
        assert!(h.events().contains(&ClientEvent::Subscribed {
            id,
            reasons: vec![ReasonCode::GrantedQoS1]
        }));
    }
}

/// 3.1.1 publishes carry no properties even when the application passes some.
#[test]
fn v311_drops_publish_properties() {
    let mut h = H::v311();
    h.connect(false);
    let props = Properties::from(PropertySet {
        message_expiry_interval: Some(5),
        ..PropertySet::default()
    });
    h.c.publish(h.now, "t", Bytes::new(), QoS::AtMostOnce, false, props)
        .unwrap();
    match &h.sent()[0] {
        Packet::Publish(p) => assert!(p.properties.is_empty()),
        other => panic!("{other:?}"),
    }
}
