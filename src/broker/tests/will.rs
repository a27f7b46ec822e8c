//! The will: published on every close that was not a DISCONNECT, discarded on DISCONNECT.

use super::*;
use crate::broker::BrokerEvent;
use crate::codec::{Disconnect, ReasonCode};

/// A watcher subscribed to `wills/#` at QoS 2, and `dev` connected with a will.
fn setup(protocol: Protocol, qos: QoS, retain: bool) -> Harness {
    let mut h = Harness::new();
    h.connect(9, "watcher", true);
    h.subscribe(9, "wills/#", QoS::ExactlyOnce);
    let mut c = connect("dev", true);
    c.protocol = protocol;
    c.will = Some(Box::new(will("wills/dev", "gone", qos, retain)));
    h.connect_with(1, c);
    h
}

/// [MQTT-3.1.2-8] The will is published when the connection is lost (peer close, IO error),
/// with its QoS.
#[test]
fn mqtt_3_1_2_8_will_published_when_connection_lost() {
    for cause in [CloseCause::PeerClosed, CloseCause::Io, CloseCause::Local] {
        let mut h = setup(Protocol::V3_1_1, QoS::AtLeastOnce, false);
        h.closed(1, cause);
        let out = h.drain();
        let p = publishes(&out, 9);
        assert_eq!(p.len(), 1, "{cause:?}");
        assert_eq!(
            (p[0].topic.as_str(), &p[0].payload[..], p[0].qos),
            ("wills/dev", &b"gone"[..], QoS::AtLeastOnce)
        );
        assert!(close_of(&out, 1).is_none(), "the shell closed it already");
        assert_eq!(
            h.broker.poll_event(),
            Some(BrokerEvent::WillPublished {
                client_id: "dev".into(),
                topic: "wills/dev".into()
            })
        );
    }
}

/// [MQTT-3.1.2-8] A protocol violation publishes the will.
#[test]
fn mqtt_3_1_2_8_will_published_on_protocol_violation() {
    let mut h = setup(Protocol::V3_1_1, QoS::AtMostOnce, false);
    h.packet(1, Packet::Connect(connect("dev", true)));
    let out = h.drain();
    assert_eq!(payloads(&out, 9), vec!["gone"]);
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ProtocolViolation(ReasonCode::ProtocolError))
    );
}

/// [MQTT-3.1.2-10] DISCONNECT discards the will: nothing is published, ever.
#[test]
fn mqtt_3_1_2_10_will_discarded_on_disconnect() {
    let mut h = setup(Protocol::V3_1_1, QoS::AtLeastOnce, true);
    h.packet(1, Packet::Disconnect(Disconnect::default()));
    let out = h.drain();
    assert!(publishes(&out, 9).is_empty());
    assert_eq!(close_of(&out, 1), Some(CloseReason::ClientDisconnect));
    // The shell reporting the close afterwards does not resurrect it.
    h.closed(1, CloseCause::PeerClosed);
    assert!(h.drain().is_empty());
    assert!(h.broker.durable_state().retained.is_empty());
}

/// [MQTT-3.1.2-17] A will with retain set is published as a retained message.
#[test]
fn mqtt_3_1_2_17_will_retain_is_honoured() {
    let mut h = setup(Protocol::V3_1_1, QoS::AtLeastOnce, true);
    h.closed(1, CloseCause::Io);
    h.drain();
    h.connect(2, "late", true);
    h.packet(2, subscribe(1, &[("wills/dev", QoS::AtLeastOnce)]));
    let p = publishes(&h.drain(), 2);
    assert_eq!(p.len(), 1);
    assert!(p[0].retain);
    assert_eq!(&p[0].payload[..], b"gone");
}

/// 5.0: DISCONNECT with reason 0x04 asks for the will to be published.
#[test]
fn mqtt5_3_14_2_1_disconnect_with_will_message_publishes_the_will() {
    let mut h = setup(Protocol::V5, QoS::AtMostOnce, false);
    h.packet(
        1,
        Packet::Disconnect(Disconnect {
            reason: ReasonCode::DisconnectWithWillMessage,
            properties: Properties::default(),
        }),
    );
    let out = h.drain();
    assert_eq!(payloads(&out, 9), vec!["gone"]);
    assert_eq!(close_of(&out, 1), Some(CloseReason::ClientDisconnect));
}

/// 5.0: a plain DISCONNECT (0x00) discards the will.
#[test]
fn mqtt5_3_1_2_10_normal_disconnect_discards_the_will() {
    let mut h = setup(Protocol::V5, QoS::AtMostOnce, false);
    h.packet(1, Packet::Disconnect(Disconnect::default()));
    assert!(publishes(&h.drain(), 9).is_empty());
}
