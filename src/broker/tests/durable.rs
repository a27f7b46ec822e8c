//! The durable state: what survives a broker restart, and the change journal that tells the
//! shell what to write before acknowledging.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::*;
use crate::broker::DurableState;
use crate::broker::session::{Inflight, Message};

fn restart(h: Harness) -> Harness {
    let state = h.broker.durable_state();
    let config = h.broker.config().clone();
    Harness {
        model: None,
        changes: Vec::new(),
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
    c.will = Some(Box::new(will("w", "gone", QoS::AtLeastOnce, true)));
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

/// [MQTT-4.3.3-2] (3.1.1) across a restart: an inbound QoS 2 identifier still awaiting PUBREL
/// keeps a resent PUBLISH from being forwarded twice.
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

/// The journal records every change a crash would lose, in the batch of the event whose
/// acknowledgement depends on it, and nothing for traffic that changes nothing durable.
#[test]
fn the_journal_records_durable_changes_only() {
    use crate::broker::journal::OutRow;
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.connect(2, "sub", false);
    assert!(
        matches!(&h.changes[..], [Change::SessionDelete { client }, Change::SessionPut { client: c2, .. }] if client == "sub" && c2 == "sub"),
        "a persistent session was created: {:?}",
        h.changes
    );
    h.packet(2, Packet::PingReq);
    h.drain();
    assert!(h.changes.is_empty());
    h.publish(1, "nobody", QoS::AtLeastOnce, 1, "m");
    assert!(h.changes.is_empty(), "no persistent session touched");
    h.subscribe(2, "t", QoS::AtLeastOnce);
    assert!(matches!(&h.changes[..], [Change::SubPut { filter, .. }] if filter == "t"));
    let out = h.publish(1, "t", QoS::AtLeastOnce, 2, "m");
    assert!(
        matches!(&h.changes[..], [Change::OutPut { client, row: OutRow::Publish { .. }, .. }] if client == "sub"),
        "the message is in flight to a persistent session: {:?}",
        h.changes
    );
    h.packet(2, Packet::PubAck(ack(publishes(&out, 2)[0].pkid)));
    h.drain();
    assert!(matches!(&h.changes[..], [Change::OutDelete { client, .. }] if client == "sub"));
    h.packet(1, retained("r", QoS::AtMostOnce, 0, "x"));
    h.drain();
    assert!(
        matches!(&h.changes[..], [Change::RetainedPut { topic, .. }] if topic == "r"),
        "retained store changed"
    );
}

/// A restored broker never hands out an assigned client id twice.
#[test]
fn assigned_ids_stay_unique_across_restart() {
    let mut h = Harness::new();
    let first = h
        .connect_with(1, connect_v5("", true, 0))
        .properties
        .assigned_client_identifier
        .clone()
        .unwrap();
    let mut h = restart(h);
    let second = h
        .connect_with(1, connect_v5("", true, 0))
        .properties
        .assigned_client_identifier
        .clone()
        .unwrap();
    assert_ne!(first, second);
}

/// A restart through the serialized state without the counters a restore computes: every
/// message comes back as a separate copy per place it was held.
fn restart_serialized(h: Harness) -> Harness {
    let json = serde_json::to_string(&h.broker.durable_state().normalized()).unwrap();
    let state: DurableState = serde_json::from_str(&json).unwrap();
    let config = h.broker.config().clone();
    Harness {
        model: None,
        changes: Vec::new(),
        broker: Broker::restore(config, state),
        t0: h.t0,
        now: h.now,
    }
}

/// Every message a session holds (in flight, then queued), in send order.
fn held(h: &Harness, client: &str) -> Vec<Arc<Message>> {
    let s = h.broker.session(client).unwrap();
    let inflight = s.inflight().iter().filter_map(|e| match e {
        Inflight::Publish { delivery, .. } => Some(delivery.message.clone()),
        Inflight::Release { .. } => None,
    });
    inflight
        .chain(s.queued().iter().map(|d| d.message.clone()))
        .collect()
}

/// Two persistent subscribers of `t` (window 2), a retained message on `t` and two more
/// messages: each subscriber holds all three.
fn two_subscribers() -> Harness {
    let mut h = Harness::with(BrokerConfig {
        max_inflight: 2,
        ..Default::default()
    });
    h.connect(1, "pub", true);
    h.connect(2, "a", false);
    h.connect(3, "b", false);
    h.subscribe(2, "t", QoS::ExactlyOnce);
    h.subscribe(3, "t", QoS::AtLeastOnce);
    h.packet(1, retained("t", QoS::AtLeastOnce, 1, "r"));
    h.publish(1, "t", QoS::ExactlyOnce, 2, "m2");
    h.publish(1, "t", QoS::AtLeastOnce, 3, "m3");
    h
}

/// One publish is one message: every session it reaches and the retained store share it, under
/// one id; each publish gets an id of its own.
#[test]
fn one_publish_is_one_message_with_its_own_id_shared_by_every_session() {
    let h = two_subscribers();
    let (a, b) = (held(&h, "a"), held(&h, "b"));
    assert_eq!(a.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        assert!(Arc::ptr_eq(x, y), "{} shared", x.topic);
    }
    let retained = &h.broker.durable_state().retained["t"];
    assert!(Arc::ptr_eq(retained, &a[0]));
    let ids: BTreeSet<u64> = a.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(!ids.contains(&0));
}

/// A session numbers what it is offered in send order: in flight before queued, increasing,
/// and a pending PUBREL keeps its delivery's number.
#[test]
fn seq_increases_in_send_order_and_a_release_keeps_it() {
    let mut h = two_subscribers();
    h.publish(1, "t", QoS::AtLeastOnce, 4, "m4");
    let s = h.broker.session("a").unwrap();
    assert_eq!((s.inflight().len(), s.queued().len()), (2, 2));
    assert_eq!(s.seqs().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    let (first, second) = (s.inflight()[0].pkid(), s.inflight()[1].pkid());
    h.packet(2, Packet::PubRec(ack(second)));
    h.drain();
    let s = h.broker.session("a").unwrap();
    assert!(matches!(s.inflight()[1], Inflight::Release { seq: 2, .. }));
    assert_eq!(s.seqs().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    h.packet(2, Packet::PubAck(ack(first)));
    h.drain();
    let s = h.broker.session("a").unwrap();
    assert_eq!(s.seqs().collect::<Vec<_>>(), vec![2, 3, 4]);
    h.publish(1, "t", QoS::AtLeastOnce, 5, "m5");
    let s = h.broker.session("a").unwrap();
    assert_eq!(s.seqs().collect::<Vec<_>>(), vec![2, 3, 4, 5]);
}

/// After a restart from the serialized state, a message held in several places is one shared
/// message again, and a message published afterwards gets an id none of them has.
#[test]
fn restore_shares_messages_again_and_keeps_ids_unique() {
    let h = two_subscribers();
    let before: Vec<u64> = held(&h, "a").iter().map(|m| m.id).collect();
    let state = h.broker.durable_state();
    let mut h = restart_serialized(h);
    assert_eq!(h.broker.durable_state().normalized(), state.normalized());
    let (a, b) = (held(&h, "a"), held(&h, "b"));
    assert_eq!(a.iter().map(|m| m.id).collect::<Vec<_>>(), before);
    for (x, y) in a.iter().zip(&b) {
        assert!(Arc::ptr_eq(x, y), "{} shared after restore", x.topic);
    }
    assert!(Arc::ptr_eq(&h.broker.durable_state().retained["t"], &a[0]));
    h.connect(1, "pub", true);
    h.publish(1, "t", QoS::AtLeastOnce, 9, "after");
    let late = held(&h, "b").last().unwrap().clone();
    assert_eq!(&late.payload[..], b"after");
    assert!(
        before.iter().all(|&id| late.id > id),
        "{} after {before:?}",
        late.id
    );
}

/// A restored session numbers its next delivery after its highest and, unless the state keeps
/// it, picks the packet identifier after the last one its deliveries hold (queued deliveries
/// hold the one reserved for them). A queued delivery restored with its identifier may have
/// been sent before the stop, so it is sent with DUP set ([MQTT-3.3.1-1]).
#[test]
fn restore_resumes_seq_and_packet_identifiers() {
    let mut h = two_subscribers();
    h.packet(3, Packet::PubAck(ack(1)));
    let out = h.drain();
    let third = publishes(&out, 3)[0].pkid;
    assert_eq!(third, 3);
    h.publish(1, "t", QoS::AtLeastOnce, 4, "m4");
    let s = h.broker.session("b").unwrap();
    assert_eq!(s.seqs().collect::<Vec<_>>(), vec![2, 3, 4]);
    assert_eq!(
        s.inflight().iter().map(Inflight::pkid).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(s.queued()[0].pkid, 4, "reserved when queued");
    let mut kept = h.broker.durable_state();
    kept.sessions.get_mut("b").unwrap().next_pkid = 9;
    let restored = Broker::restore(h.broker.config().clone(), kept);
    assert_eq!(
        restored.session("b").unwrap().next_pkid,
        9,
        "kept by the state"
    );
    let mut h = restart_serialized(h);
    let s = h.broker.session("b").unwrap();
    assert_eq!((s.next_seq, s.next_pkid), (5, 5));
    h.accept(3);
    h.packet(3, Packet::Connect(connect("b", false)));
    let out = h.drain();
    let resent: Vec<(u16, bool)> = publishes(&out, 3).iter().map(|p| (p.pkid, p.dup)).collect();
    assert_eq!(resent, vec![(2, true), (3, true)], "the window is full");
    h.packet(3, Packet::PubAck(ack(2)));
    let out = h.drain();
    let sent = &publishes(&out, 3)[0];
    assert_eq!(
        (sent.pkid, sent.dup),
        (4, true),
        "its reserved identifier, DUP set"
    );
    assert_eq!(
        h.broker.session("b").unwrap().seqs().collect::<Vec<_>>(),
        vec![3, 4]
    );
    h.connect(1, "pub", true);
    h.publish(1, "t", QoS::AtLeastOnce, 5, "m5");
    let s = h.broker.session("b").unwrap();
    assert_eq!(s.seqs().collect::<Vec<_>>(), vec![3, 4, 5]);
}

/// A session whose message traffic was allocated and drained is the session that never had
/// any: equal, and written the same (field for field, in the same order). One written with
/// traffic reads back with it.
#[test]
fn a_drained_flow_is_no_flow_to_compare_and_to_write() {
    use crate::broker::Session;
    let fresh = Session::new(60);
    let mut drained = Session::new(60);
    drained.flow_mut();
    assert!(drained.holds_flow() && !fresh.holds_flow());
    assert_eq!(drained, fresh);
    let json = serde_json::to_string(&drained).unwrap();
    assert_eq!(json, serde_json::to_string(&fresh).unwrap());
    assert_eq!(
        json,
        r#"{"expiry_interval":60,"subscriptions":{},"inflight":[],"queued":[],"incoming_qos2":[],"next_pkid":1,"expires_at":null}"#
    );
    let (mut a, mut b) = (Vec::new(), Vec::new());
    ciborium::into_writer(&drained, &mut a).unwrap();
    ciborium::into_writer(&fresh, &mut b).unwrap();
    assert_eq!(a, b);
    let read: Session = serde_json::from_str(&json).unwrap();
    assert!(!read.holds_flow(), "nothing held, nothing allocated");

    drained.flow_mut().incoming_qos2.insert(7);
    assert_ne!(drained, fresh);
    let read: Session = serde_json::from_str(&serde_json::to_string(&drained).unwrap()).unwrap();
    assert_eq!(read.incoming_qos2(), &BTreeSet::from([7]));
}
