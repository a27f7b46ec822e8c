//! Outbound QoS 1 and 2: the inflight window, packet identifiers, the QoS 2 handshake, and the
//! resend on session resumption.

use std::collections::BTreeSet;

use super::*;

fn setup(max_inflight: u16) -> Harness {
    let mut h = Harness::with(BrokerConfig {
        max_inflight,
        ..Default::default()
    });
    h.connect(1, "pub", true);
    h.connect(2, "sub", false);
    h.subscribe(2, "t", QoS::ExactlyOnce);
    h
}

/// At most `max_inflight` messages unacknowledged; each acknowledgement lets the next out.
#[test]
fn inflight_window_holds_back_and_releases_in_order() {
    let mut h = setup(2);
    let mut out = Vec::new();
    for i in 1..=5u16 {
        out.extend(h.publish(1, "t", QoS::AtLeastOnce, i, &i.to_string()));
    }
    let first = publishes(&out, 2);
    assert_eq!(payloads(&out, 2), vec!["1", "2"]);
    assert_eq!(h.broker.session("sub").unwrap().queued().len(), 3);
    h.packet(2, Packet::PubAck(ack(first[0].pkid)));
    assert_eq!(payloads(&h.drain(), 2), vec!["3"]);
    // An acknowledgement for nothing in flight changes nothing.
    h.packet(2, Packet::PubAck(ack(999)));
    assert!(h.drain().is_empty());
    h.packet(2, Packet::PubAck(ack(first[1].pkid)));
    assert_eq!(payloads(&h.drain(), 2), vec!["4"]);
}

/// 5.0: the window is also capped by the client's receive maximum.
#[test]
fn mqtt5_window_capped_by_client_receive_maximum() {
    let mut h = Harness::with(BrokerConfig {
        max_inflight: 10,
        ..Default::default()
    });
    h.connect(1, "pub", true);
    let mut c = connect_v5("sub", true, 0);
    c.properties.receive_maximum = Some(1);
    h.connect_with(2, c);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    let mut out = Vec::new();
    for i in 1..=3u16 {
        out.extend(h.publish(1, "t", QoS::AtLeastOnce, i, "m"));
    }
    assert_eq!(publishes(&out, 2).len(), 1);
}

/// [MQTT-2.3.1-2] Packet identifiers of messages in flight are distinct and not reused until
/// acknowledged, also across the wrap at 65535.
#[test]
fn mqtt_2_3_1_2_pkids_unique_while_in_flight() {
    let mut h = setup(3);
    h.broker.sessions.get_mut("sub").unwrap().next_pkid = 65534;
    let mut out = Vec::new();
    for i in 1..=3u16 {
        out.extend(h.publish(1, "t", QoS::AtLeastOnce, i, "m"));
    }
    let ids: Vec<u16> = publishes(&out, 2).iter().map(|p| p.pkid).collect();
    assert_eq!(ids, vec![65534, 65535, 1]);
    // Free 65535 only; the next message must not reuse 65534 or 1, which are still in flight.
    h.packet(2, Packet::PubAck(ack(65535)));
    h.drain();
    h.broker.sessions.get_mut("sub").unwrap().next_pkid = 65534;
    let out = h.publish(1, "t", QoS::AtLeastOnce, 9, "n");
    assert_eq!(publishes(&out, 2)[0].pkid, 65535);
    let inflight: BTreeSet<u16> = h
        .broker
        .session("sub")
        .unwrap()
        .inflight()
        .iter()
        .map(|e| e.pkid())
        .collect();
    assert_eq!(inflight, BTreeSet::from([1, 65534, 65535]));
}

/// The packet identifiers of `n` QoS 1 messages to "sub", each acknowledged before the next.
fn acked_one_by_one(h: &mut Harness, n: u16) -> Vec<u16> {
    (0..n)
        .map(|i| {
            let out = h.publish(1, "t", QoS::AtLeastOnce, 100 + i, "m");
            let id = publishes(&out, 2)[0].pkid;
            h.packet(2, Packet::PubAck(ack(id)));
            h.drain();
            id
        })
        .collect()
}

/// [MQTT-2.3.1-2] An identifier held in flight ahead of the next one is skipped when the
/// identifiers handed out one after another reach it, and again a lap later.
#[test]
fn mqtt_2_3_1_2_pkid_held_ahead_is_skipped() {
    let mut h = setup(3);
    h.broker.sessions.get_mut("sub").unwrap().next_pkid = 5;
    let stuck = h.publish(1, "t", QoS::AtLeastOnce, 1, "stuck");
    assert_eq!(publishes(&stuck, 2)[0].pkid, 5);
    h.broker.sessions.get_mut("sub").unwrap().next_pkid = 1;
    assert_eq!(acked_one_by_one(&mut h, 7), vec![1, 2, 3, 4, 6, 7, 8]);
    // A lap later the held one is still skipped, and those acknowledged come round again.
    h.broker.sessions.get_mut("sub").unwrap().next_pkid = 65535;
    assert_eq!(acked_one_by_one(&mut h, 6), vec![65535, 1, 2, 3, 4, 6]);
}

/// [MQTT-4.3.3-1] Outbound QoS 2: PUBREC is answered with PUBREL; PUBCOMP completes and frees
/// the slot. A repeated PUBREC gets the PUBREL again.
#[test]
fn mqtt_4_3_3_1_outbound_qos2_handshake() {
    let mut h = setup(1);
    let mut out = h.publish(1, "t", QoS::ExactlyOnce, 1, "a");
    out.extend(h.publish(1, "t", QoS::ExactlyOnce, 2, "b"));
    let p = publishes(&out, 2);
    assert_eq!(p.len(), 1);
    let id = p[0].pkid;
    h.packet(2, Packet::PubRec(ack(id)));
    assert_eq!(sent(&h.drain(), 2), vec![Packet::PubRel(ack(id))]);
    h.packet(2, Packet::PubRec(ack(id)));
    assert_eq!(sent(&h.drain(), 2), vec![Packet::PubRel(ack(id))]);
    // The slot is still taken until PUBCOMP.
    assert_eq!(h.broker.session("sub").unwrap().queued().len(), 1);
    h.packet(2, Packet::PubComp(ack(id)));
    assert_eq!(payloads(&h.drain(), 2), vec!["b"]);
}

/// [MQTT-4.4.0-1] On resumption the server resends unacknowledged PUBLISH packets (DUP set,
/// original identifiers) and pending PUBRELs in their original order, before queued messages.
#[test]
fn mqtt_4_4_0_1_resend_unacked_publish_and_pubrel_in_original_order() {
    let mut h = setup(3);
    let mut out = Vec::new();
    for (i, qos) in [
        (1u16, QoS::ExactlyOnce),
        (2, QoS::AtLeastOnce),
        (3, QoS::ExactlyOnce),
        (4, QoS::AtLeastOnce),
    ] {
        out.extend(h.publish(1, "t", qos, i, &i.to_string()));
    }
    let p = publishes(&out, 2);
    assert_eq!(p.len(), 3);
    // PUBREC for the first and third: they await PUBCOMP; the second awaits PUBACK.
    h.packet(2, Packet::PubRec(ack(p[0].pkid)));
    h.packet(2, Packet::PubRec(ack(p[2].pkid)));
    h.drain();
    h.closed(2, CloseCause::PeerClosed);
    // While offline, one more message is queued.
    h.publish(1, "t", QoS::AtLeastOnce, 5, "5");
    h.accept(3);
    h.packet(3, Packet::Connect(connect("sub", false)));
    let out = h.drain();
    let got = sent(&out, 3);
    let Packet::ConnAck(a) = &got[0] else {
        panic!("{got:?}")
    };
    assert!(a.session_present);
    let mut dup2 = p[1].clone();
    dup2.dup = true;
    assert_eq!(
        got[1..4],
        [
            Packet::PubRel(ack(p[0].pkid)),
            Packet::Publish(dup2),
            Packet::PubRel(ack(p[2].pkid))
        ]
    );
    // The window is full (3 in flight): the queued "4" and "5" wait.
    assert_eq!(got.len(), 4);
    h.packet(3, Packet::PubComp(ack(p[0].pkid)));
    h.packet(3, Packet::PubAck(ack(p[1].pkid)));
    let out = h.drain();
    let next = publishes(&out, 3);
    assert_eq!(payloads(&out, 3), vec!["4", "5"]);
    assert!(next.iter().all(|p| !p.dup), "first deliveries have DUP 0");
}

/// 5.0: a PUBREC with an error reason ends the QoS 2 exchange without PUBREL.
#[test]
fn mqtt5_pubrec_with_error_ends_the_exchange() {
    let mut h = Harness::with(BrokerConfig {
        max_inflight: 1,
        ..Default::default()
    });
    h.connect(1, "pub", true);
    h.connect_with(2, connect_v5("sub", true, 0));
    h.subscribe(2, "t", QoS::ExactlyOnce);
    let out = h.publish(1, "t", QoS::ExactlyOnce, 1, "a");
    h.publish(1, "t", QoS::ExactlyOnce, 2, "b");
    let id = publishes(&out, 2)[0].pkid;
    let mut rec = ack(id);
    rec.reason = crate::codec::ReasonCode::UnspecifiedError;
    h.packet(2, Packet::PubRec(rec));
    let out = h.drain();
    assert_eq!(payloads(&out, 2), vec!["b"]);
    assert!(!sent(&out, 2).iter().any(|p| matches!(p, Packet::PubRel(_))));
}

/// With random acknowledgements, disconnects and reconnects of a persistent subscriber, every
/// QoS 1/2 message is delivered, each is delivered without DUP exactly once, and first
/// deliveries keep publication order ([MQTT-4.4.0-1], 3.1.1 [MQTT-4.6.0-6]).
#[test]
fn mqtt_4_4_0_1_random_disconnects_lose_nothing_and_keep_order() {
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng};
    for seed in 0..20u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut h = setup(3);
        let mut conn: Option<ConnId> = Some(2);
        let mut next_conn = 3;
        let mut published = Vec::new();
        let mut first = Vec::new();
        let mut seen = BTreeMap::<String, usize>::new();
        // What the subscriber holds unacknowledged on its current connection: pkid → QoS 2
        // released (PUBREL received) or not.
        let mut pending: Vec<(u16, QoS)> = Vec::new();
        let mut record = |out: &[Action], c: ConnId, pending: &mut Vec<(u16, QoS)>| {
            for p in sent(out, c) {
                match p {
                    Packet::Publish(p) => {
                        let text = String::from_utf8_lossy(&p.payload).into_owned();
                        if !p.dup {
                            first.push(text.clone());
                        }
                        *seen.entry(text).or_default() += 1;
                        pending.push((p.pkid, p.qos));
                    }
                    Packet::PubRel(a) => pending.push((a.pkid, QoS::AtMostOnce)),
                    _ => {}
                }
            }
        };
        for i in 0..60u16 {
            match rng.random_range(0..6) {
                0 | 1 => {
                    let qos = if rng.random_bool(0.5) {
                        QoS::AtLeastOnce
                    } else {
                        QoS::ExactlyOnce
                    };
                    let out = h.publish(1, "t", qos, i + 1, &format!("m{i}"));
                    published.push(format!("m{i}"));
                    if let Some(c) = conn {
                        record(&out, c, &mut pending);
                    }
                }
                2 | 3 if conn.is_some() && !pending.is_empty() => {
                    let c = conn.unwrap();
                    let (pkid, what) = pending.remove(rng.random_range(0..pending.len()));
                    let reply = match what {
                        QoS::AtLeastOnce => Packet::PubAck(ack(pkid)),
                        QoS::ExactlyOnce => Packet::PubRec(ack(pkid)),
                        QoS::AtMostOnce => Packet::PubComp(ack(pkid)),
                    };
                    h.packet(c, reply);
                    let out = h.drain();
                    record(&out, c, &mut pending);
                }
                4 if conn.is_some() => {
                    h.closed(conn.take().unwrap(), CloseCause::Io);
                    pending.clear();
                }
                5 if conn.is_none() => {
                    let c = next_conn;
                    next_conn += 1;
                    h.accept(c);
                    h.packet(c, Packet::Connect(connect("sub", false)));
                    let out = h.drain();
                    record(&out, c, &mut pending);
                    conn = Some(c);
                }
                _ => {}
            }
        }
        // Heal: reconnect and acknowledge until nothing is left.
        if let Some(c) = conn.take() {
            h.closed(c, CloseCause::Io);
        }
        pending.clear();
        h.accept(999);
        h.packet(999, Packet::Connect(connect("sub", false)));
        let out = h.drain();
        record(&out, 999, &mut pending);
        for _ in 0..1000 {
            let Some((pkid, what)) = pending.pop() else {
                break;
            };
            let reply = match what {
                QoS::AtLeastOnce => Packet::PubAck(ack(pkid)),
                QoS::ExactlyOnce => Packet::PubRec(ack(pkid)),
                QoS::AtMostOnce => Packet::PubComp(ack(pkid)),
            };
            h.packet(999, reply);
            let out = h.drain();
            record(&out, 999, &mut pending);
        }
        assert_eq!(first, published, "seed {seed}: first deliveries, in order");
        assert!(
            published.iter().all(|m| seen.contains_key(m)),
            "seed {seed}"
        );
        let s = h.broker.session("sub").unwrap();
        assert!(
            s.inflight().is_empty() && s.queued().is_empty(),
            "seed {seed}"
        );
    }
}

/// `packets` arrive in one read on `conn`: the actions, and the changes the broker then hands
/// its shell (applied to the model, so later drains still check the journal).
fn read(
    h: &mut Harness,
    conn: ConnId,
    packets: &[Packet],
) -> (Vec<Action>, crate::broker::Changes) {
    let protocol = match packets.first() {
        Some(Packet::Connect(c)) => c.protocol,
        _ => Protocol::V3_1_1,
    };
    let mut buf = bytes::BytesMut::new();
    for p in packets {
        crate::codec::encode(p, protocol, &mut buf).expect("encodes");
    }
    h.broker.handle_bytes(h.now, conn, &buf);
    let out = std::iter::from_fn(|| h.broker.poll_action()).collect();
    let changes = h.broker.take_changes();
    h.model.as_mut().expect("recording").apply(&changes);
    (out, changes)
}

/// A QoS 1/2 message queued behind the window gets its packet identifier when it is queued,
/// so the acknowledgement that lets it into flight changes nothing its PUBLISH must wait for:
/// the output of such a read reveals only the event that queued it. A read holding anything
/// else reveals every change.
#[test]
fn a_queued_message_keeps_its_reserved_identifier_and_needs_only_the_event_that_queued_it() {
    let mut h = Harness::with(BrokerConfig {
        max_inflight: 1,
        ..Default::default()
    });
    h.connect(1, "pub", true);
    h.drain();
    h.accept(2);
    read(&mut h, 2, &[Packet::Connect(connect("sub", false))]);
    h.subscribe(2, "t", QoS::ExactlyOnce);
    let first = publishes(&h.publish(1, "t", QoS::AtLeastOnce, 1, "a"), 2)[0].pkid;
    h.publish(1, "t", QoS::ExactlyOnce, 2, "b");
    let queued_at = h.broker.event_no;
    let reserved = h.broker.session("sub").unwrap().queued()[0].pkid;
    assert!(reserved != 0 && reserved != first, "{reserved}");
    h.publish(1, "t", QoS::AtLeastOnce, 3, "c");
    assert!(h.broker.event_no > queued_at);

    let (out, changes) = read(&mut h, 2, &[Packet::PubAck(ack(first))]);
    let p = publishes(&out, 2);
    assert_eq!((p.len(), p[0].pkid, p[0].dup), (1, reserved, false));
    assert!(
        !changes.ops.is_empty(),
        "the completion and the move are written"
    );
    assert_eq!(changes.output_needs, Some(queued_at));

    // PUBREC → PUBREL: the released state must be durable before the PUBREL leaves.
    let (out, changes) = read(&mut h, 2, &[Packet::PubRec(ack(reserved))]);
    assert!(matches!(sent(&out, 2)[..], [Packet::PubRel(_)]));
    assert_eq!(changes.output_needs, None);
    // PUBCOMP lets "c" in, with a PINGREQ in the same read: everything.
    let (out, changes) = read(
        &mut h,
        2,
        &[Packet::PubComp(ack(reserved)), Packet::PingReq],
    );
    assert_eq!(payloads(&out, 2), vec!["c"]);
    assert_eq!(changes.output_needs, None);
    // An event handled through `handle_packet`, or none at all.
    h.packet(2, Packet::PingReq);
    h.drain();
    let (out, changes) = read(&mut h, 2, &[]);
    assert!(out.is_empty());
    assert_eq!(changes.output_needs, Some(0), "no output reveals nothing");
}

/// [MQTT-2.2.1-4] Reservations leave a whole window of identifiers free: with a window of
/// 65,535 none is reserved, the identifier is taken when the message is sent, and that
/// PUBLISH reveals every change (the identifier must be durable before it leaves).
#[test]
fn mqtt_2_2_1_4_without_identifiers_to_spare_a_queued_message_takes_one_when_sent() {
    let mut h = Harness::with(BrokerConfig {
        max_inflight: u16::MAX,
        ..Default::default()
    });
    h.connect(1, "pub", true);
    let mut c = connect_v5("sub", false, 60);
    c.properties.receive_maximum = Some(1);
    h.accept(2);
    read(&mut h, 2, &[Packet::Connect(c)]);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    let first = publishes(&h.publish(1, "t", QoS::AtLeastOnce, 1, "a"), 2)[0].pkid;
    h.publish(1, "t", QoS::AtLeastOnce, 2, "b");
    assert_eq!(h.broker.session("sub").unwrap().queued()[0].pkid, 0);
    let (out, changes) = read(&mut h, 2, &[Packet::PubAck(ack(first))]);
    assert_eq!(payloads(&out, 2), vec!["b"]);
    assert_ne!(publishes(&out, 2)[0].pkid, first, "{out:?}");
    assert_eq!(changes.output_needs, None);
}

/// [MQTT-2.2.1-4] A queue longer than the identifiers set aside for queued messages: only the
/// first `MAX_RESERVED` hold one while queued, the rest take one when sent, and every message
/// goes out once, in order, with an identifier no other message in flight holds.
#[test]
fn mqtt_2_2_1_4_a_long_queue_reserves_a_bounded_number_of_identifiers() {
    let mut h = Harness::with(BrokerConfig {
        max_inflight: 2,
        max_queued_messages: 3000,
        ..Default::default()
    });
    h.connect(1, "pub", true);
    h.connect(2, "sub", false);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    let n = 2500u16;
    let mut out = Vec::new();
    for i in 1..=n {
        out.extend(h.publish(1, "t", QoS::AtLeastOnce, i, &i.to_string()));
    }
    // two in flight, the rest queued: the first MAX_RESERVED of those hold an identifier
    let bound = super::super::session::MAX_RESERVED;
    assert!(
        bound < usize::from(n) - 2,
        "the queue must be longer than the bound"
    );
    let reserved = h.broker.session("sub").unwrap().flow().reserved.0.len();
    assert_eq!(reserved, bound, "identifiers reserved by the queue");
    let mut got: Vec<String> = Vec::new();
    let mut flying = publishes(&out, 2);
    while let Some(p) = flying.first().cloned() {
        flying.remove(0);
        assert!(
            flying.iter().all(|q| q.pkid != p.pkid),
            "identifier {} twice in flight",
            p.pkid
        );
        got.push(String::from_utf8(p.payload.to_vec()).unwrap());
        h.packet(2, Packet::PubAck(ack(p.pkid)));
        flying.extend(publishes(&h.drain(), 2));
    }
    let want: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
}
