//! The outbox while disconnected: order, and each overflow policy.

use super::*;
use crate::codec::Packet;

fn topics(sent: &[Packet]) -> Vec<String> {
    sent.iter()
        .map(|p| match p {
            Packet::Publish(p) => p.topic.clone(),
            Packet::Subscribe(s) => format!("sub:{}", s.filters[0].filter),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn requests_made_while_disconnected_are_sent_in_order_after_connack() {
    let mut h = H::v311();
    h.publish("t/1", QoS::AtMostOnce);
    h.subscribe("s", QoS::AtLeastOnce);
    h.publish("t/2", QoS::ExactlyOnce);
    assert!(h.actions().is_empty());
    assert_eq!(h.c.buffered_len(), 3);
    h.c.connect(h.now);
    assert_eq!(h.actions(), vec![ClientAction::OpenTransport]);
    h.c.handle_transport_up(h.now);
    let connect = h.sent();
    assert_eq!(connect.len(), 1, "nothing before CONNACK");
    h.recv(Packet::ConnAck(connack(false)));
    assert_eq!(topics(&h.sent()), vec!["t/1", "sub:s", "t/2"]);
}

fn overflow(policy: BufferPolicy) -> (H, Vec<RequestId>) {
    let mut cfg = config(Protocol::V3_1_1);
    cfg.max_buffered = 2;
    cfg.buffer_policy = policy;
    let mut h = H::new(cfg);
    let ids = (1..=2)
        .map(|i| h.publish(&format!("t/{i}"), QoS::AtLeastOnce))
        .collect();
    (h, ids)
}

#[test]
fn drop_oldest_reports_the_evicted_publish_lost() {
    let (mut h, ids) = overflow(BufferPolicy::DropOldest);
    let third = h.publish("t/3", QoS::AtLeastOnce);
    assert_eq!(
        h.events(),
        vec![ClientEvent::PublishLost {
            id: ids[0],
            why: LostReason::BufferOverflow
        }]
    );
    h.connect(false);
    assert_eq!(topics(&h.sent()), vec!["t/2", "t/3"]);
    let _ = third;
}

#[test]
fn drop_newest_reports_the_new_publish_lost() {
    let (mut h, _) = overflow(BufferPolicy::DropNewest);
    let third = h.publish("t/3", QoS::AtLeastOnce);
    assert_eq!(
        h.events(),
        vec![ClientEvent::PublishLost {
            id: third,
            why: LostReason::BufferOverflow
        }]
    );
    h.connect(false);
    assert_eq!(topics(&h.sent()), vec!["t/1", "t/2"]);
}

#[test]
fn reject_refuses_the_new_publish() {
    let (mut h, _) = overflow(BufferPolicy::Reject);
    let err = h.c.publish(
        h.now,
        "t/3",
        Bytes::new(),
        QoS::AtLeastOnce,
        false,
        Properties::default(),
    );
    assert_eq!(err, Err(ClientError::BufferFull(2)));
    assert!(h.events().is_empty());
    h.connect(false);
    assert_eq!(topics(&h.sent()), vec!["t/1", "t/2"]);
}

#[test]
fn a_full_outbox_refuses_subscribes_instead_of_dropping_them() {
    let (mut h, _) = overflow(BufferPolicy::DropOldest);
    assert_eq!(
        h.c.subscribe(
            h.now,
            vec![sub("s", QoS::AtMostOnce)],
            Properties::default()
        ),
        Err(ClientError::BufferFull(2))
    );
}
