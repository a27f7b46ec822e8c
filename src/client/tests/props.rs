//! Property tests: random interleavings of application requests, broker answers, inbound
//! resends, connection drops and time, checked against invariants observable from the
//! outputs alone, and replayed to check determinism.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::codec::Packet;

#[derive(Debug, Clone)]
enum Op {
    Publish(u8),
    Subscribe,
    /// Answer the n-th (mod len) request the broker has not answered yet.
    Answer(usize),
    /// The broker sends a QoS 2 PUBLISH with this identifier (maybe a resend).
    InboundQos2(u16),
    InboundPubRel(u16),
    Drop,
    /// Bring the connection up if it is down, with this session-present flag.
    Up(bool),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..3).prop_map(Op::Publish),
        1 => Just(Op::Subscribe),
        4 => (0usize..8).prop_map(Op::Answer),
        2 => (1u16..5).prop_map(Op::InboundQos2),
        1 => (1u16..5).prop_map(Op::InboundPubRel),
        1 => Just(Op::Drop),
        2 => any::<bool>().prop_map(Op::Up),
        2 => (0u64..8000).prop_map(Op::Advance),
    ]
}

/// Everything the client emitted, for the determinism check.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
enum Out {
    A(ClientAction),
    E(ClientEvent),
    T(Option<Duration>),
}

struct Run {
    transcript: Vec<Out>,
}

/// Runs `ops` against a scripted broker, asserting the invariants as it goes.
fn run(ops: &[Op], seed: u64) -> Run {
    let mut cfg = config(Protocol::V5);
    cfg.max_inflight = 4;
    cfg.max_buffered = 6;
    cfg.receive_maximum = 3;
    cfg.reconnect.jitter = 0.7;
    let t0 = Instant::now();
    let mut now = t0;
    let mut c = Client::new(cfg, seed);
    let mut transcript = Vec::new();
    // The broker's view: requests it holds unanswered, by identifier, in arrival order.
    let mut at_broker: BTreeMap<u16, Packet> = BTreeMap::new();
    let mut arrival: Vec<u16> = Vec::new();
    // Inbound QoS 2 identifiers delivered and not yet released.
    let mut delivered: BTreeSet<u16> = BTreeSet::new();
    let mut finished: BTreeSet<RequestId> = BTreeSet::new();
    c.connect(now);

    for op in ops {
        match op {
            Op::Publish(q) => {
                let _ = c.publish(
                    now,
                    "t",
                    Bytes::from_static(b"p"),
                    QoS::from_u8(*q).unwrap(),
                    false,
                    Properties::default(),
                );
            }
            Op::Subscribe => {
                let _ = c.subscribe(
                    now,
                    vec![sub("f/#", QoS::AtLeastOnce)],
                    Properties::default(),
                );
            }
            Op::Answer(n) if c.state() == ConnState::Connected && !arrival.is_empty() => {
                let pkid = arrival[n % arrival.len()];
                let reply = match &at_broker[&pkid] {
                    Packet::Publish(p) if p.qos == QoS::AtLeastOnce => Packet::PubAck(ack(pkid)),
                    Packet::Publish(_) => Packet::PubRec(ack(pkid)),
                    Packet::PubRel(_) => Packet::PubComp(ack(pkid)),
                    Packet::Subscribe(_) => suback(pkid, vec![ReasonCode::GrantedQoS1]),
                    other => panic!("{other:?}"),
                };
                at_broker.remove(&pkid);
                arrival.retain(|&p| p != pkid);
                c.handle_packet(now, reply);
            }
            Op::Answer(_) => {}
            Op::InboundQos2(pkid) if c.state() == ConnState::Connected => {
                c.handle_packet(
                    now,
                    Packet::Publish(incoming(*pkid, QoS::ExactlyOnce, delivered.contains(pkid))),
                );
            }
            Op::InboundPubRel(pkid) if c.state() == ConnState::Connected => {
                delivered.remove(pkid);
                c.handle_packet(now, Packet::PubRel(ack(*pkid)));
            }
            Op::InboundQos2(_) | Op::InboundPubRel(_) => {}
            Op::Drop => c.handle_transport_down(now, DownCause::PeerClosed),
            Op::Up(session_present) => {
                if c.state() == ConnState::Backoff || c.state() == ConnState::Idle {
                    c.connect(now);
                }
                if c.state() == ConnState::Connecting {
                    c.handle_transport_up(now);
                }
                if c.state() == ConnState::Handshaking {
                    if !session_present {
                        at_broker.clear();
                        arrival.clear();
                        delivered.clear();
                    }
                    c.handle_packet(now, Packet::ConnAck(connack(*session_present)));
                }
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(*ms);
                if c.poll_timeout().is_some_and(|t| t <= now) {
                    c.handle_timeout(now);
                }
            }
        }
        while let Some(a) = c.poll_action() {
            if let ClientAction::Send(p) = &a {
                let (pkid, fresh) = match p {
                    Packet::Publish(p) if p.qos != QoS::AtMostOnce => (p.pkid, !p.dup),
                    Packet::Subscribe(s) => (s.pkid, true),
                    Packet::PubRel(a) => (a.pkid, false),
                    Packet::PubRec(a) => {
                        // Our PUBREC: the message was delivered once and is held until PUBREL.
                        delivered.insert(a.pkid);
                        (0, false)
                    }
                    _ => (0, false),
                };
                if pkid != 0 {
                    if fresh {
                        if let Some(held) = at_broker.get(&pkid) {
                            assert_eq!(held, p, "identifier {pkid} reused while in flight");
                        }
                    } else if let Packet::Publish(_) = p {
                        assert!(
                            at_broker.contains_key(&pkid),
                            "DUP resend of {pkid} the broker no longer holds"
                        );
                    }
                    if !arrival.contains(&pkid) {
                        arrival.push(pkid);
                    }
                    at_broker.insert(pkid, p.clone());
                }
            }
            transcript.push(Out::A(a));
        }
        while let Some(e) = c.poll_event() {
            match &e {
                ClientEvent::PublishSent { id }
                | ClientEvent::PublishAcked { id, .. }
                | ClientEvent::PublishLost { id, .. }
                | ClientEvent::Subscribed { id, .. } => {
                    assert!(finished.insert(*id), "request {id} finished twice");
                }
                _ => {}
            }
            transcript.push(Out::E(e));
        }
        assert!(c.inflight_len() <= 4);
        assert!(c.buffered_len() <= 6);
        transcript.push(Out::T(c.poll_timeout().map(|t| t - t0)));
    }
    Run { transcript }
}

/// Counts deliveries per inbound QoS 2 identifier between releases.
fn qos2_deliveries_are_single(transcript: &[Out]) {
    let mut held: BTreeSet<u16> = BTreeSet::new();
    for o in transcript {
        match o {
            Out::E(ClientEvent::Message(p)) if p.qos == QoS::ExactlyOnce => {
                assert!(
                    held.insert(p.pkid),
                    "QoS 2 message {} delivered twice",
                    p.pkid
                );
            }
            Out::A(ClientAction::Send(Packet::PubComp(a))) => {
                held.remove(&a.pkid);
            }
            Out::E(ClientEvent::Connected {
                session_present: false,
                ..
            }) => held.clear(),
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn invariants_hold_and_runs_are_deterministic(ops in proptest::collection::vec(op(), 1..120), seed in any::<u64>()) {
        let first = run(&ops, seed);
        qos2_deliveries_are_single(&first.transcript);
        let second = run(&ops, seed);
        prop_assert_eq!(first.transcript, second.transcript);
    }
}
