//! 5.0 shared subscriptions (`$share/group/filter`, section 4.8.2): one member per message,
//! round-robin by client id, redistribution when a member's session ends.

use super::*;
use crate::codec::ReasonCode;

/// `pub` on 1 (3.1.1) and members `a`, `b`, `c` (5.0, session expiry 100) on 11, 12, 13, all in
/// `$share/g/t/#` at QoS 1.
fn group() -> Harness {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    for (conn, id) in [(13, "c"), (11, "a"), (12, "b")] {
        h.connect_with(conn, connect_v5(id, false, 100));
        h.subscribe(conn, "$share/g/t/#", QoS::AtLeastOnce);
    }
    h
}

/// Which member connection got each PUBLISH in `out`.
fn receivers(out: &[Action]) -> Vec<ConnId> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send {
                conn,
                packet: Packet::Publish(_),
                ..
            } => Some(*conn),
            _ => None,
        })
        .collect()
}

/// Section 4.8.2: each message goes to exactly one member, in round-robin order of client id
/// (a, b, c, a, ...), whatever the order the members subscribed in.
#[test]
fn mqtt5_4_8_2_each_message_to_one_member_round_robin() {
    let mut h = group();
    let mut got = Vec::new();
    for i in 0..6u16 {
        got.extend(receivers(&h.publish(
            1,
            "t/x",
            QoS::AtLeastOnce,
            i + 1,
            &i.to_string(),
        )));
    }
    assert_eq!(got, vec![11, 12, 13, 11, 12, 13]);
}

/// A non-shared subscriber gets every message besides the group's one copy.
#[test]
fn mqtt5_4_8_2_shared_and_plain_subscriptions_both_deliver() {
    let mut h = group();
    h.connect(20, "plain", true);
    h.subscribe(20, "t/#", QoS::AtMostOnce);
    let out = h.publish(1, "t/x", QoS::AtMostOnce, 0, "m");
    assert_eq!(receivers(&out), vec![20, 11]);
}

/// Offline members are skipped; with every member offline a QoS 1 message is queued at the
/// next member in turn and a QoS 0 message dropped.
#[test]
fn mqtt5_4_8_2_offline_members_skipped() {
    let mut h = group();
    h.closed(12, CloseCause::Io);
    let mut got = Vec::new();
    for i in 0..4u16 {
        got.extend(receivers(&h.publish(
            1,
            "t/x",
            QoS::AtLeastOnce,
            i + 1,
            "m",
        )));
    }
    assert_eq!(got, vec![11, 13, 11, 13]);
    h.closed(11, CloseCause::Io);
    h.closed(13, CloseCause::Io);
    h.drain();
    h.publish(1, "t/x", QoS::AtLeastOnce, 9, "q1");
    let before = h.broker.stats().qos0_offline_dropped;
    h.publish(1, "t/x", QoS::AtMostOnce, 0, "q0");
    assert_eq!(h.broker.stats().qos0_offline_dropped, before + 1);
    let queued: Vec<usize> = ["a", "b", "c"]
        .iter()
        .map(|id| h.broker.session(id).unwrap().queued().len())
        .collect();
    assert_eq!(queued, vec![1, 0, 0], "after c comes a");
}

/// When a member's session ends, its unacknowledged shared messages go to another member; a
/// member that only disconnects keeps them.
#[test]
fn mqtt5_4_8_2_unacknowledged_messages_redistributed_when_session_ends() {
    let mut h = group();
    let out = h.publish(1, "t/x", QoS::AtLeastOnce, 1, "for-a");
    assert_eq!(receivers(&out), vec![11]);
    h.closed(11, CloseCause::Io);
    h.drain();
    assert_eq!(h.broker.session("a").unwrap().inflight().len(), 1, "kept");
    // a comes back with clean start: its old session ends.
    h.accept(21);
    h.packet(21, Packet::Connect(connect_v5("a", true, 0)));
    let out = h.drain();
    assert_eq!(payloads(&out, 12), vec!["for-a"], "b is next after a");
    assert!(payloads(&out, 21).is_empty());
}

/// [MQTT-4.8.2-5] 5.0: a QoS 2 message sent to a member whose session then ends is not sent to
/// another member; a QoS 2 message only queued for it (never sent) still is.
#[test]
fn mqtt5_4_8_2_5_qos2_sent_to_a_member_not_sent_to_another() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    for (conn, id) in [(11, "a"), (12, "b")] {
        h.connect_with(conn, connect_v5(id, false, 100));
        h.subscribe(conn, "$share/g/t", QoS::ExactlyOnce);
    }
    let out = h.publish(1, "t", QoS::ExactlyOnce, 1, "sent");
    assert_eq!(receivers(&out), vec![11]);
    h.closed(11, CloseCause::Io);
    h.closed(12, CloseCause::Io);
    h.drain();
    // Both offline: the next message waits, unsent, at b (next in turn).
    h.publish(1, "t", QoS::ExactlyOnce, 2, "unsent");
    assert_eq!(h.broker.session("b").unwrap().queued().len(), 1);
    // b's session ends: the unsent message moves to a, offline, where it waits beside the
    // sent one.
    h.accept(22);
    h.packet(22, Packet::Connect(connect_v5("b", true, 100)));
    h.drain();
    let a = h.broker.session("a").unwrap();
    assert_eq!((a.inflight().len(), a.queued().len()), (1, 1));
    h.subscribe(22, "$share/g/t", QoS::ExactlyOnce);
    // a's session ends: only the message never sent to a goes to b.
    h.accept(21);
    h.packet(21, Packet::Connect(connect_v5("a", true, 0)));
    let out = h.drain();
    assert_eq!(payloads(&out, 22), vec!["unsent"]);
    assert!(payloads(&out, 21).is_empty());
}

/// Redistribution also happens when the session expires.
#[test]
fn mqtt5_4_8_2_redistributed_on_session_expiry() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.connect_with(11, connect_v5("a", false, 5));
    h.subscribe(11, "$share/g/t", QoS::AtLeastOnce);
    h.connect_with(12, connect_v5("b", false, 100));
    h.subscribe(12, "$share/g/t", QoS::AtLeastOnce);
    h.closed(12, CloseCause::Io);
    assert_eq!(
        receivers(&h.publish(1, "t", QoS::AtLeastOnce, 1, "m")),
        vec![11]
    );
    h.closed(11, CloseCause::Io);
    h.advance_to(5);
    assert!(h.broker.session("a").is_none());
    assert_eq!(h.broker.session("b").unwrap().queued().len(), 1);
    h.accept(22);
    h.packet(22, Packet::Connect(connect_v5("b", false, 100)));
    assert_eq!(payloads(&h.drain(), 22), vec!["m"]);
}

/// Retained messages are not sent for a new shared subscription (section 4.8.2).
#[test]
fn mqtt5_4_8_2_no_retained_messages_for_shared_subscriptions() {
    let mut h = Harness::new();
    h.connect(1, "pub", true);
    h.packet(1, retained("t", QoS::AtMostOnce, 0, "r"));
    h.connect_with(2, connect_v5("m", true, 0));
    h.subscribe(2, "$share/g/t", QoS::AtMostOnce);
    h.subscribe(2, "t", QoS::AtMostOnce);
    let out = h.drain();
    assert!(publishes(&out, 2).is_empty());
    h.packet(2, subscribe(3, &[("t", QoS::AtMostOnce)]));
    assert_eq!(payloads(&h.drain(), 2), vec!["r"], "the plain one does");
}

/// [MQTT-3.8.3-4] No local on a shared subscription is a protocol error; a malformed share
/// name is an invalid filter.
#[test]
fn mqtt5_3_8_3_4_no_local_on_shared_subscription_is_a_protocol_error() {
    let mut h = Harness::new();
    h.connect_with(1, connect_v5("m", true, 0));
    h.packet(
        1,
        subscribe(
            1,
            &[
                ("$share/g", QoS::AtMostOnce),
                ("$share//t", QoS::AtMostOnce),
                ("$share/g+/t", QoS::AtMostOnce),
            ],
        ),
    );
    let out = h.drain();
    let [Packet::SubAck(s)] = &sent(&out, 1)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(s.reasons, vec![ReasonCode::TopicFilterInvalid; 3]);
    let Packet::Subscribe(mut s) = subscribe(2, &[("$share/g/t", QoS::AtMostOnce)]) else {
        unreachable!()
    };
    s.filters[0].options.no_local = true;
    h.packet(1, Packet::Subscribe(s));
    assert_eq!(
        close_of(&h.drain(), 1),
        Some(CloseReason::ProtocolViolation(ReasonCode::ProtocolError))
    );
}

/// Shared subscriptions survive a restart with their group.
#[test]
fn mqtt5_4_8_2_shared_subscriptions_survive_restore() {
    let h = group();
    let state = h.broker.durable_state();
    let mut h = Harness {
        model: None,
        changes: Vec::new(),
        broker: Broker::restore_at(h.broker.config().clone(), state, h.now),
        t0: h.t0,
        now: h.now,
    };
    h.connect(1, "pub", true);
    h.connect_with(12, connect_v5("b", false, 100));
    let out = h.publish(1, "t/x", QoS::AtMostOnce, 0, "m");
    assert_eq!(receivers(&out), vec![12]);
}
