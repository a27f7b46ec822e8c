//! 5.0 features: message expiry, the client's maximum packet size, receive maximum, topic
//! aliases in both directions, subscription options, problem and response information, AUTH.

use super::*;
use crate::codec::{Auth, ReasonCode, RetainHandling, SubAck};

/// A PUBLISH packet with a message expiry interval.
fn expiring(topic: &str, qos: QoS, pkid: u16, payload: &str, secs: u32) -> Packet {
    let Packet::Publish(mut p) = publish(topic, qos, pkid, payload) else {
        unreachable!()
    };
    p.properties.message_expiry_interval = Some(secs);
    Packet::Publish(p)
}

/// [MQTT-3.3.2-5] A message queued for an offline session whose expiry interval passes is not
/// delivered; [MQTT-3.3.2-6] one still alive is sent with the interval that remains.
#[test]
fn mqtt5_3_3_2_5_expired_queued_message_is_not_delivered() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("pub", true, 0));
    h.connect_with(2, connect_v5("sub", false, 100));
    h.subscribe(2, "t", QoS::AtLeastOnce);
    h.closed(2, CloseCause::Io);
    h.packet(1, expiring("t", QoS::AtLeastOnce, 1, "short", 5));
    h.packet(1, expiring("t", QoS::AtLeastOnce, 2, "long", 20));
    h.packet(1, publish("t", QoS::AtLeastOnce, 3, "forever"));
    h.drain();
    h.advance_to(6);
    h.accept(3);
    h.packet(3, Packet::Connect(connect_v5("sub", false, 100)));
    let p = publishes(&h.drain(), 3);
    let got: Vec<_> = p
        .iter()
        .map(|p| {
            (
                String::from_utf8_lossy(&p.payload).into_owned(),
                p.properties.message_expiry_interval,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("long".to_string(), Some(14)),
            ("forever".to_string(), None)
        ]
    );
    assert_eq!(h.broker.stats().expired_dropped, 1);
}

/// [MQTT-3.3.2-6] A message forwarded at once carries its whole interval; one held behind the
/// inflight window carries what remains when it is sent.
#[test]
fn mqtt5_3_3_2_6_remaining_interval_sent_on() {
    let mut h = Harness::with(BrokerConfig {
        max_inflight: 1,
        ..Default::default()
    });
    h.connect_with(1, connect_v5("pub", true, 0));
    h.connect_with(2, connect_v5("sub", true, 0));
    h.subscribe(2, "t", QoS::AtLeastOnce);
    h.packet(1, expiring("t", QoS::AtLeastOnce, 1, "a", 30));
    h.packet(1, expiring("t", QoS::AtLeastOnce, 2, "b", 30));
    let first = publishes(&h.drain(), 2);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].properties.message_expiry_interval, Some(30));
    h.advance_to_ms(10_500);
    h.packet(2, Packet::PubAck(ack(first[0].pkid)));
    let second = publishes(&h.drain(), 2);
    assert_eq!(
        second[0].properties.message_expiry_interval,
        Some(20),
        "19.5 s remain, rounded up"
    );
}

/// [MQTT-3.3.2-5] Retained messages expire too: a new subscriber gets one with the remaining
/// interval before it expires, and nothing after.
#[test]
fn mqtt5_3_3_2_5_retained_message_expires() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("pub", true, 0));
    let Packet::Publish(mut p) = retained("r", QoS::AtMostOnce, 0, "x") else {
        unreachable!()
    };
    p.properties.message_expiry_interval = Some(5);
    h.packet(1, Packet::Publish(p));
    h.advance_to(3);
    h.connect_with(2, connect_v5("early", true, 0));
    h.packet(2, subscribe(1, &[("r", QoS::AtMostOnce)]));
    let p = publishes(&h.drain(), 2);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].properties.message_expiry_interval, Some(2));
    h.advance_to(6);
    h.connect_with(3, connect_v5("late", true, 0));
    h.packet(3, subscribe(1, &[("r", QoS::AtMostOnce)]));
    assert!(publishes(&h.drain(), 3).is_empty());
    assert!(h.broker.durable_state().retained.is_empty());
}

/// A 5.0 subscriber announcing a maximum packet size of `max`.
fn small_subscriber(h: &mut Harness, conn: ConnId, max: u32) {
    let mut c = connect_v5("small", true, 0);
    c.properties.maximum_packet_size = Some(max);
    h.connect_with(conn, c);
    h.subscribe(conn, "t", QoS::AtLeastOnce);
}

/// [MQTT-3.1.2-24] The broker never sends a packet larger than the client's maximum;
/// [MQTT-3.1.2-25] a PUBLISH too large is dropped as if sent and completed: it takes no place in
/// the inflight window and is not resent.
#[test]
fn mqtt5_3_1_2_25_oversize_publish_dropped_as_if_sent() {
    let mut h = Harness::with(BrokerConfig {
        max_inflight: 1,
        ..Default::default()
    });
    h.connect_with(1, connect_v5("pub", true, 0));
    small_subscriber(&mut h, 2, 40);
    let out = h.publish(1, "t", QoS::AtLeastOnce, 1, &"x".repeat(100));
    assert!(publishes(&out, 2).is_empty());
    assert_eq!(h.broker.stats().oversize_dropped, 1);
    assert!(h.broker.session("small").unwrap().inflight().is_empty());
    let out = h.publish(1, "t", QoS::AtLeastOnce, 2, "fits");
    assert_eq!(payloads(&out, 2), vec!["fits"], "the window is free");
    for a in &out {
        if let Action::Send {
            conn: 2,
            packet,
            protocol,
        } = a
        {
            assert!(crate::codec::encoded_len(packet, *protocol).unwrap() <= 40);
        }
    }
}

/// [MQTT-3.1.2-25] (and [MQTT-3.9.2-1]) A SUBACK too large with its reason string is sent
/// without it.
#[test]
fn mqtt5_3_1_2_25_reason_string_removed_to_fit() {
    let mut h = Harness::new();
    let mut c = connect_v5("small", true, 0);
    c.properties.maximum_packet_size = Some(16);
    h.connect_with(1, c);
    h.packet(1, subscribe(3, &[("a/#/b", QoS::AtMostOnce)]));
    let out = h.drain();
    let [Packet::SubAck(s)] = &sent(&out, 1)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(s.reasons, vec![ReasonCode::TopicFilterInvalid]);
    assert_eq!(s.properties.reason_string, None);
    // With room, the reason string is there.
    h.connect_with(2, connect_v5("big", true, 0));
    h.packet(2, subscribe(3, &[("a/#/b", QoS::AtMostOnce)]));
    let out = h.drain();
    let [Packet::SubAck(s)] = &sent(&out, 2)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        s.properties.reason_string.as_deref(),
        Some("invalid topic filter")
    );
}

/// [MQTT-3.1.2-29] Request problem information 0: no reason string on a SUBACK, but still on
/// DISCONNECT.
#[test]
fn mqtt5_3_1_2_29_request_problem_information_zero() {
    let mut h = Harness::new();
    let mut c = connect_v5("quiet", true, 0);
    c.properties.request_problem_information = Some(0);
    h.connect_with(1, c);
    h.packet(1, subscribe(3, &[("a/#/b", QoS::AtMostOnce)]));
    let out = h.drain();
    let [Packet::SubAck(SubAck { properties, .. })] = &sent(&out, 1)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(properties.reason_string, None);
    h.packet(1, Packet::PingResp);
    assert_eq!(
        sent(&h.drain(), 1),
        vec![server_disconnect(
            ReasonCode::ProtocolError,
            "server-to-client packet sent by a client"
        )]
    );
}

/// [MQTT-3.3.4-9] family, inbound: a slot freed by PUBREL may be used again; only more than
/// `receive_maximum` unreleased QoS 2 messages at once gets DISCONNECT 0x93.
#[test]
fn mqtt5_3_3_4_9_receive_maximum_counts_only_unreleased() {
    let mut h = Harness::with(BrokerConfig {
        receive_maximum: 1,
        ..Default::default()
    });
    let connack = h.connect_with(1, connect_v5("a", true, 0));
    assert_eq!(connack.properties.receive_maximum, Some(1));
    h.publish(1, "t", QoS::ExactlyOnce, 1, "1");
    h.packet(1, Packet::PubRel(ack(1)));
    h.drain();
    let out = h.publish(1, "t", QoS::ExactlyOnce, 2, "2");
    assert_eq!(sent(&out, 1), vec![Packet::PubRec(ack(2))]);
    let out = h.publish(1, "t", QoS::ExactlyOnce, 3, "3");
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(
            ReasonCode::ReceiveMaximumExceeded
        ))
    );
}

/// A 5.0 PUBLISH with a topic alias.
fn aliased(topic: &str, alias: u16, payload: &str) -> Packet {
    let Packet::Publish(mut p) = publish(topic, QoS::AtMostOnce, 0, payload) else {
        unreachable!()
    };
    p.properties.topic_alias = Some(alias);
    Packet::Publish(p)
}

/// [MQTT-3.3.2-12] The broker accepts aliases up to its maximum: a topic with an alias sets the
/// mapping, an empty topic with the alias uses it, and subscribers get the full topic.
#[test]
fn mqtt5_3_3_2_12_inbound_topic_alias_is_resolved() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("pub", true, 0));
    h.connect(2, "sub", true);
    h.subscribe(2, "#", QoS::AtMostOnce);
    h.packet(1, aliased("a/b", 10, "1"));
    h.packet(1, aliased("", 10, "2"));
    h.packet(1, aliased("c", 10, "3"));
    h.packet(1, aliased("", 10, "4"));
    let p = publishes(&h.drain(), 2);
    let got: Vec<_> = p
        .iter()
        .map(|p| (p.topic.as_str(), &p.payload[..]))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a/b", &b"1"[..]),
            ("a/b", &b"2"[..]),
            ("c", &b"3"[..]),
            ("c", &b"4"[..])
        ]
    );
}

/// [MQTT-3.3.2-8] [MQTT-3.3.2-9] Alias 0 or above the maximum: DISCONNECT 0x94.
#[test]
fn mqtt5_3_3_2_8_alias_zero_or_too_large_disconnects_0x94() {
    for alias in [0, 11] {
        let mut h = Harness::new();
        h.connect_with(1, connect_v5("pub", true, 0));
        h.packet(1, aliased("t", alias, "x"));
        assert_eq!(
            close_of(&h.drain(), 1),
            Some(CloseReason::ProtocolViolation(
                ReasonCode::TopicAliasInvalid
            )),
            "alias {alias}"
        );
    }
}

/// [MQTT-3.3.2-7] Aliases do not carry over to a new connection: an alias set before a
/// reconnect is unknown after it (protocol error 0x82).
#[test]
fn mqtt5_3_3_2_7_aliases_reset_on_reconnect() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("pub", false, 100));
    h.packet(1, aliased("t", 1, "x"));
    h.closed(1, CloseCause::Io);
    h.connect_with(2, connect_v5("pub", false, 100));
    h.packet(2, aliased("", 1, "y"));
    assert_eq!(
        close_of(&h.drain(), 2),
        Some(CloseReason::ProtocolViolation(ReasonCode::ProtocolError))
    );
}

/// Outbound aliases [MQTT-3.3.2-11]: towards a client allowing 2 aliases, the first two topics
/// get aliases 1 and 2 (topic sent once, then empty), a third topic goes in full; a new
/// connection starts afresh; a client allowing none gets none.
#[test]
fn mqtt5_3_3_2_11_outbound_aliases_bounded_and_per_connection() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    let mut c = connect_v5("sub", false, 100);
    c.properties.topic_alias_maximum = Some(2);
    h.connect_with(2, c.clone());
    h.subscribe(2, "#", QoS::AtMostOnce);
    h.connect_with(3, connect_v5("plain", true, 0));
    h.subscribe(3, "#", QoS::AtMostOnce);
    let mut out = Vec::new();
    for t in ["a", "b", "c", "a", "b", "c"] {
        out.extend(h.publish(1, t, QoS::AtMostOnce, 0, t));
    }
    let got: Vec<_> = publishes(&out, 2)
        .iter()
        .map(|p| (p.topic.clone(), p.properties.topic_alias))
        .collect();
    let s = |t: &str| t.to_string();
    assert_eq!(
        got,
        vec![
            (s("a"), Some(1)),
            (s("b"), Some(2)),
            (s("c"), None),
            (s(""), Some(1)),
            (s(""), Some(2)),
            (s("c"), None)
        ]
    );
    assert!(
        publishes(&out, 3)
            .iter()
            .all(|p| p.properties.topic_alias.is_none() && !p.topic.is_empty())
    );
    h.closed(2, CloseCause::Io);
    h.connect_with(4, c);
    let p = publishes(&h.publish(1, "b", QoS::AtMostOnce, 0, "b"), 4);
    assert_eq!(
        (p[0].topic.as_str(), p[0].properties.topic_alias),
        ("b", Some(1))
    );
}

/// [MQTT-3.8.3-3] No local at the broker: the publisher's own no-local subscription gets
/// nothing, another client's does.
#[test]
fn mqtt5_3_8_3_3_no_local_not_sent_back_to_publisher() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("me", true, 0));
    h.connect_with(2, connect_v5("other", true, 0));
    let Packet::Subscribe(mut s) = subscribe(1, &[("t", QoS::AtMostOnce)]) else {
        unreachable!()
    };
    s.filters[0].options.no_local = true;
    h.packet(1, Packet::Subscribe(s.clone()));
    h.packet(2, Packet::Subscribe(s));
    h.drain();
    let out = h.publish(1, "t", QoS::AtMostOnce, 0, "x");
    assert!(publishes(&out, 1).is_empty());
    assert_eq!(payloads(&out, 2), vec!["x"]);
}

/// [MQTT-3.3.4-3] Each matching subscription's identifier is delivered with the message.
#[test]
fn mqtt5_3_3_4_3_subscription_identifiers_of_all_matching_subscriptions() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.connect_with(2, connect_v5("sub", true, 0));
    for (pkid, filter, id) in [(1, "a/+", 7), (2, "a/#", 3), (3, "b", 9)] {
        let Packet::Subscribe(mut s) = subscribe(pkid, &[(filter, QoS::AtMostOnce)]) else {
            unreachable!()
        };
        s.properties.subscription_identifiers = vec![id];
        h.packet(2, Packet::Subscribe(s));
    }
    h.drain();
    let p = publishes(&h.publish(1, "a/x", QoS::AtMostOnce, 0, "m"), 2);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].properties.subscription_identifiers, vec![3, 7]);
}

/// [MQTT-3.8.4-4] Retain handling 2 sends no retained message; 1 only for a new
/// subscription.
#[test]
fn mqtt5_3_8_4_4_retain_handling_two_and_one() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.packet(1, retained("r", QoS::AtMostOnce, 0, "x"));
    h.connect_with(2, connect_v5("sub", true, 0));
    let sub = |handling| {
        let Packet::Subscribe(mut s) = subscribe(1, &[("r", QoS::AtMostOnce)]) else {
            unreachable!()
        };
        s.filters[0].options.retain_handling = handling;
        Packet::Subscribe(s)
    };
    h.packet(2, sub(RetainHandling::DoNotSend));
    assert!(publishes(&h.drain(), 2).is_empty());
    h.packet(2, sub(RetainHandling::SendIfNew));
    assert!(publishes(&h.drain(), 2).is_empty(), "it existed");
    h.packet(2, sub(RetainHandling::SendAtSubscribe));
    assert_eq!(payloads(&h.drain(), 2), vec!["x"]);
}

/// Request response information 1 gets the configured response information in CONNACK;
/// without the request, none.
#[test]
fn mqtt5_3_1_2_28_response_information_on_request() {
    let mut h = Harness::with(BrokerConfig {
        response_information: Some("replies/".into()),
        ..Default::default()
    });
    let mut c = connect_v5("a", true, 0);
    c.properties.request_response_information = Some(1);
    let ack = h.connect_with(1, c);
    assert_eq!(
        ack.properties.response_information.as_deref(),
        Some("replies/")
    );
    let ack = h.connect_with(2, connect_v5("b", true, 0));
    assert_eq!(ack.properties.response_information, None);
}

/// [MQTT-4.12.0-1] An unsupported authentication method is refused with CONNACK 0x8C and the
/// connection closed, with no session.
#[test]
fn mqtt5_4_12_0_1_unsupported_authentication_method_refused() {
    let mut h = Harness::new();
    let mut c = connect_v5("a", true, 0);
    c.properties.authentication_method = Some("SCRAM-SHA-1".into());
    h.accept(1);
    h.packet(1, Packet::Connect(c));
    let out = h.drain();
    let [Packet::ConnAck(a)] = &sent(&out, 1)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(a.reason, ReasonCode::BadAuthenticationMethod);
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ConnectRefused(
            ReasonCode::BadAuthenticationMethod
        ))
    );
    assert!(h.broker.session("a").is_none());
}

/// An AUTH packet on a connection that did not start enhanced authentication is a protocol
/// error (DISCONNECT 0x82).
#[test]
fn mqtt5_4_12_stray_auth_is_a_protocol_error() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("a", true, 0));
    h.packet(1, Packet::Auth(Auth::default()));
    assert_eq!(
        close_of(&h.drain(), 1),
        Some(CloseReason::ProtocolViolation(ReasonCode::ProtocolError))
    );
}

/// Passes packets between client cores and the broker until nothing moves; returns every
/// PUBLISH as it crossed, with the connection and whether the broker sent it.
fn exchange(
    h: &mut Harness,
    clients: &mut [(ConnId, crate::client::Client)],
) -> Vec<(ConnId, bool, Publish)> {
    use crate::client::ClientAction;
    let mut wire = Vec::new();
    loop {
        let mut moved = false;
        for (conn, c) in clients.iter_mut() {
            while let Some(action) = c.poll_action() {
                moved = true;
                match action {
                    ClientAction::OpenTransport => {
                        h.accept(*conn);
                        c.handle_transport_up(h.now);
                    }
                    ClientAction::Send(packet) => {
                        if let Packet::Publish(p) = &packet {
                            wire.push((*conn, false, p.clone()));
                        }
                        h.packet(*conn, packet);
                    }
                    ClientAction::CloseTransport => h.closed(*conn, CloseCause::Local),
                }
            }
        }
        for action in h.drain() {
            if let Action::Send { conn, packet, .. } = action {
                moved = true;
                if let Packet::Publish(p) = &packet {
                    wire.push((conn, true, p.clone()));
                }
                let (_, c) = clients
                    .iter_mut()
                    .find(|(id, _)| *id == conn)
                    .expect("known");
                c.handle_packet(h.now, packet);
            }
        }
        if !moved {
            return wire;
        }
    }
}

/// Both cores keep their aliases in the `codec::alias` tables: the client's outbound table
/// feeds the broker's inbound one, the broker's outbound table the subscriber's inbound one, and
/// every message arrives with its full topic.
#[test]
fn mqtt5_topic_aliases_between_client_and_broker_cores() {
    use crate::client::{Client, ClientConfig, ClientEvent};
    let mut h = Harness::new();
    let client = |id: &str, f: fn(&mut ClientConfig)| {
        let mut c = ClientConfig {
            protocol: Protocol::V5,
            client_id: id.into(),
            clean_start: true,
            ..ClientConfig::default()
        };
        f(&mut c);
        Client::new(c, 1)
    };
    let mut clients = [
        (1, client("pub", |c| c.outbound_topic_aliases = 2)),
        (2, client("sub", |c| c.topic_alias_maximum = 1)),
    ];
    for (_, c) in clients.iter_mut() {
        c.connect(h.now);
    }
    exchange(&mut h, &mut clients);
    let all = vec![Subscription {
        filter: "#".into(),
        options: SubscriptionOptions::default(),
    }];
    clients[1]
        .1
        .subscribe(h.now, all, Properties::default())
        .unwrap();
    exchange(&mut h, &mut clients);
    for topic in ["a/b", "a/b", "c", "d", "c", "a/b"] {
        let payload = Bytes::from_static(b"x");
        clients[0]
            .1
            .publish(
                h.now,
                topic,
                payload,
                QoS::AtMostOnce,
                false,
                Properties::default(),
            )
            .unwrap();
    }
    let wire = exchange(&mut h, &mut clients);
    let sent = |by_broker: bool| -> Vec<(String, Option<u16>)> {
        wire.iter()
            .filter(|(_, b, _)| *b == by_broker)
            .map(|(_, _, p)| (p.topic.clone(), p.properties.topic_alias))
            .collect()
    };
    let t = |s: &str, a: Option<u16>| (s.to_owned(), a);
    assert_eq!(
        sent(false),
        vec![
            t("a/b", Some(1)),
            t("", Some(1)),
            t("c", Some(2)),
            t("d", None),
            t("", Some(2)),
            t("", Some(1)),
        ]
    );
    assert_eq!(
        sent(true),
        vec![
            t("a/b", Some(1)),
            t("", Some(1)),
            t("c", None),
            t("d", None),
            t("c", None),
            t("", Some(1)),
        ]
    );
    let got: Vec<String> = std::iter::from_fn(|| clients[1].1.poll_event())
        .filter_map(|e| match e {
            ClientEvent::Message(p) => Some(p.topic),
            _ => None,
        })
        .collect();
    assert_eq!(got, ["a/b", "a/b", "c", "d", "c", "a/b"]);
}

/// [MQTT-3.3.2-5] A full queue makes room by dropping the messages that have expired, each time
/// one has: an arrival finds room while one has expired and overflows while none has.
#[test]
fn mqtt5_3_3_2_5_a_full_queue_drops_what_expired_to_make_room() {
    let mut h = Harness::with(BrokerConfig {
        max_queued_messages: 3,
        ..BrokerConfig::default()
    });
    h.connect_with(1, connect_v5("pub", true, 0));
    h.connect_with(2, connect_v5("sub", false, 100));
    h.subscribe(2, "t", QoS::AtLeastOnce);
    h.closed(2, CloseCause::Io);
    h.packet(1, expiring("t", QoS::AtLeastOnce, 1, "a", 5));
    h.packet(1, expiring("t", QoS::AtLeastOnce, 2, "b", 20));
    h.packet(1, publish("t", QoS::AtLeastOnce, 3, "c"));
    h.advance_to(6);
    h.packet(1, publish("t", QoS::AtLeastOnce, 4, "d"));
    h.packet(1, publish("t", QoS::AtLeastOnce, 5, "e"));
    h.advance_to(21);
    h.packet(1, publish("t", QoS::AtLeastOnce, 6, "f"));
    h.drain();
    let stats = h.broker.stats();
    assert_eq!(
        (stats.expired_dropped, stats.queue_overflow_dropped),
        (2, 1)
    );
    h.accept(3);
    h.packet(3, Packet::Connect(connect_v5("sub", false, 100)));
    let got: Vec<_> = publishes(&h.drain(), 3)
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect();
    assert_eq!(got, ["c", "d", "f"]);
}
