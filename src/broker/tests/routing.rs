//! Routing: wildcards, `$` topics, delivery QoS, overlapping subscriptions, order, SUBSCRIBE
//! and UNSUBSCRIBE.

use super::*;
use crate::codec::{ReasonCode, UnsubAck, Unsubscribe};

/// `+` and `#` through the broker: each subscriber gets exactly the matching messages.
#[test]
fn mqtt_4_7_1_wildcards_route_to_matching_subscribers() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.connect(2, "plus", true);
    h.connect(3, "hash", true);
    h.subscribe(2, "s/+/t", QoS::AtMostOnce);
    h.subscribe(3, "s/#", QoS::AtMostOnce);
    let mut out = Vec::new();
    for topic in ["s/a/t", "s", "s/a/b", "x/a/t"] {
        out.extend(h.publish(1, topic, QoS::AtMostOnce, 0, topic));
    }
    assert_eq!(payloads(&out, 2), vec!["s/a/t"]);
    assert_eq!(payloads(&out, 3), vec!["s/a/t", "s", "s/a/b"]);
}

/// [MQTT-4.7.2-1] A leading wildcard does not match a topic starting with `$`.
#[test]
fn mqtt_4_7_2_1_dollar_topics_not_matched_by_leading_wildcards() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.connect(2, "all", true);
    h.connect(3, "sys", true);
    h.subscribe(2, "#", QoS::AtMostOnce);
    h.subscribe(3, "$SYS/#", QoS::AtMostOnce);
    let out = h.publish(1, "$SYS/load", QoS::AtMostOnce, 0, "l");
    assert!(payloads(&out, 2).is_empty());
    assert_eq!(payloads(&out, 3), vec!["l"]);
}

/// Delivery QoS is min(published QoS, granted QoS) (section 3.8.4).
#[test]
fn mqtt_3_8_4_delivery_qos_is_min_of_published_and_granted() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    for (conn, q) in [
        (10, QoS::AtMostOnce),
        (11, QoS::AtLeastOnce),
        (12, QoS::ExactlyOnce),
    ] {
        h.connect(conn, &format!("s{conn}"), true);
        h.subscribe(conn, "t", q);
    }
    for (pub_qos, pkid) in [
        (QoS::AtMostOnce, 0),
        (QoS::AtLeastOnce, 1),
        (QoS::ExactlyOnce, 2),
    ] {
        let out = h.publish(1, "t", pub_qos, pkid, "m");
        for (conn, granted) in [
            (10, QoS::AtMostOnce),
            (11, QoS::AtLeastOnce),
            (12, QoS::ExactlyOnce),
        ] {
            let p = publishes(&out, conn);
            assert_eq!(p.len(), 1);
            assert_eq!(
                p[0].qos,
                pub_qos.min(granted),
                "published {pub_qos:?}, granted {granted:?}"
            );
            assert_eq!(p[0].pkid == 0, p[0].qos == QoS::AtMostOnce);
        }
    }
}

/// [MQTT-3.3.5-1] Overlapping subscriptions: one copy, at the highest granted QoS.
#[test]
fn mqtt_3_3_5_1_overlapping_subscriptions_deliver_one_copy_at_max_qos() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.connect(2, "sub", true);
    h.subscribe(2, "a/#", QoS::AtMostOnce);
    h.subscribe(2, "a/+", QoS::ExactlyOnce);
    h.subscribe(2, "a/b", QoS::AtLeastOnce);
    let out = h.publish(1, "a/b", QoS::ExactlyOnce, 1, "m");
    let p = publishes(&out, 2);
    assert_eq!(p.len(), 1, "{out:?}");
    assert_eq!(p[0].qos, QoS::ExactlyOnce);
}

/// [MQTT-3.8.4-3] A SUBSCRIBE to an existing filter replaces the subscription.
#[test]
fn mqtt_3_8_4_3_resubscribe_replaces_the_subscription() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.connect(2, "sub", true);
    h.subscribe(2, "t", QoS::ExactlyOnce);
    h.subscribe(2, "t", QoS::AtMostOnce);
    let out = h.publish(1, "t", QoS::ExactlyOnce, 1, "m");
    let p = publishes(&out, 2);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].qos, QoS::AtMostOnce);
    assert_eq!(h.broker.session("sub").unwrap().subscriptions.len(), 1);
}

/// [MQTT-3.8.4-4] [MQTT-3.9.3-1] 3.1.1: one SUBACK return code per filter, in order; invalid
/// and excess filters get the failure code 0x80.
#[test]
fn mqtt_3_9_3_1_suback_codes_in_order_with_failures() {
    let mut h = Harness::with(BrokerConfig {
        max_subscriptions_per_client: 2,
        ..Default::default()
    });
    h.connect(1, "c", true);
    h.packet(
        1,
        subscribe(
            5,
            &[
                ("a", QoS::AtLeastOnce),
                ("b/#/c", QoS::AtMostOnce),
                ("c", QoS::ExactlyOnce),
                ("d", QoS::AtMostOnce),
            ],
        ),
    );
    let out = h.drain();
    let [Packet::SubAck(s)] = &sent(&out, 1)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(s.pkid, 5);
    assert_eq!(
        s.reasons,
        vec![
            ReasonCode::GrantedQoS1,
            ReasonCode::UnspecifiedError,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError
        ]
    );
    // Resubscribing to an existing filter is not one more subscription.
    h.subscribe(1, "a", QoS::AtMostOnce);
}

/// 5.0: the failure codes are specific, and shared subscriptions are refused with 0x9E.
#[test]
fn mqtt5_3_9_3_suback_reason_codes() {
    let mut h = Harness::with(BrokerConfig {
        shared_subscriptions: false,
        ..Default::default()
    });
    h.connect_with(1, connect_v5("c", true, 0));
    h.packet(
        1,
        subscribe(
            1,
            &[("a/#/b", QoS::AtMostOnce), ("$share/g/t", QoS::AtMostOnce)],
        ),
    );
    let out = h.drain();
    let [Packet::SubAck(s)] = &sent(&out, 1)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        s.reasons,
        vec![
            ReasonCode::TopicFilterInvalid,
            ReasonCode::SharedSubscriptionsNotSupported
        ]
    );
    assert_eq!(
        s.properties.reason_string.as_deref(),
        Some("invalid topic filter; shared subscriptions are off")
    );
}

/// [MQTT-3.10.4-1] UNSUBSCRIBE deletes the subscription; [MQTT-3.10.4-4] it is answered with
/// UNSUBACK, also when nothing matched (5.0: 0x11 for that filter).
#[test]
fn mqtt_3_10_4_1_unsubscribe_stops_delivery() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.connect(2, "sub", true);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    h.packet(
        2,
        Packet::Unsubscribe(Unsubscribe {
            pkid: 4,
            filters: vec!["t".into(), "nope".into()],
            properties: Properties::default(),
        }),
    );
    let out = h.drain();
    assert_eq!(
        sent(&out, 2),
        vec![Packet::UnsubAck(UnsubAck {
            pkid: 4,
            reasons: vec![],
            properties: Properties::default()
        })]
    );
    let out = h.publish(1, "t", QoS::AtLeastOnce, 1, "m");
    assert!(publishes(&out, 2).is_empty());

    h.connect_with(3, connect_v5("sub5", true, 0));
    h.subscribe(3, "t", QoS::AtMostOnce);
    h.packet(
        3,
        Packet::Unsubscribe(Unsubscribe {
            pkid: 2,
            filters: vec!["t".into(), "nope".into()],
            properties: Properties::default(),
        }),
    );
    let out = h.drain();
    let [Packet::UnsubAck(u)] = &sent(&out, 3)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        u.reasons,
        vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
    );
}

/// [MQTT-4.6.0-6] 3.1.1, topics are ordered: messages of one publisher on one topic reach a
/// subscriber in the order published, even when the inflight window holds some back, and a
/// QoS 0 message does not overtake QoS 1 messages queued before it.
#[test]
fn mqtt_4_6_0_6_order_kept_per_publisher_and_topic() {
    let mut h = Harness::with(BrokerConfig {
        max_inflight: 2,
        ..Default::default()
    });
    h.connect(1, "pub", true);
    h.connect(2, "sub", true);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    let mut got = Vec::new();
    let mut pkid = 0;
    for i in 0..10u16 {
        let qos = if i % 3 == 2 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let id = if qos == QoS::AtMostOnce { 0 } else { i + 1 };
        let out = h.publish(1, "t", qos, id, &i.to_string());
        got.extend(publishes(&out, 2));
        // The subscriber acknowledges one message in three.
        if i % 3 == 0
            && let Some(p) = got
                .iter()
                .rev()
                .find(|p| p.qos == QoS::AtLeastOnce && p.pkid != pkid)
        {
            pkid = p.pkid;
            h.packet(2, Packet::PubAck(ack(pkid)));
            got.extend(publishes(&h.drain(), 2));
        }
    }
    // Drain the rest by acknowledging everything in flight.
    for _ in 0..20 {
        let inflight: Vec<u16> = h
            .broker
            .session("sub")
            .unwrap()
            .inflight()
            .iter()
            .map(|e| e.pkid())
            .collect();
        if inflight.is_empty() {
            break;
        }
        for p in inflight {
            h.packet(2, Packet::PubAck(ack(p)));
            got.extend(publishes(&h.drain(), 2));
        }
    }
    let order: Vec<String> = got
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect();
    let expected: Vec<String> = (0..10).map(|i: u16| i.to_string()).collect();
    assert_eq!(order, expected);
}
