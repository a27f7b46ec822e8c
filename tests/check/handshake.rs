//! The "handshake" checker on hand-written traces: flow-control windows seen from the
//! clients [MQTT-3.3.4-7] [MQTT-3.3.4-9], publishes that must end [MQTT-4.4.0-1], and QoS 2
//! exchanges that must be released (section 4.3.3).

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{AckPacket, Persistence, Trace};

fn handshake(t: &Trace) -> Vec<Violation> {
    check::run(["handshake"], t, &CheckConfig::default()).unwrap()
}

/// A subscriber at QoS 2 and a publisher; `window` is the broker's `max_inflight`.
fn world(protocol: &str, window: u64) -> Story {
    let mut s = Story::new(protocol, Persistence::Durable);
    s.max_inflight(window);
    s.connect("monitor", false, false)
        .subscribe("monitor", "s/#", 2);
    s.connect("pub", true, false).after_ms(10);
    s
}

/// Three QoS 2 messages reach the monitor; `complete_first` completes the first exchange
/// before the third PUBLISH arrives.
fn three_inbound(s: &mut Story, complete_first: bool) {
    let m: Vec<String> = (0..3).map(|_| s.publish("pub", "s/1", 2)).collect();
    s.after_ms(5);
    for (i, label) in m.iter().enumerate() {
        let id = i as u16 + 1;
        if i == 2 && complete_first {
            s.ack_received("monitor", AckPacket::Pubrel, 1, &m[0])
                .ack_sent("monitor", AckPacket::Pubcomp, 1, &m[0]);
        }
        s.publish_received("monitor", label, id, false)
            .deliver("monitor", label)
            .ack_sent("monitor", AckPacket::Pubrec, id, label);
    }
}

#[test]
fn mqtt_3_3_4_9_broker_window_exceeded_is_reported() {
    let mut s = world("3.1.1", 2);
    three_inbound(&mut s, false);
    let v = handshake(&s.trace());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].message.contains("[MQTT-3.3.4-9]"), "{}", v[0].message);
    assert!(
        v[0].message.contains("monitor received pub#3"),
        "{}",
        v[0].message
    );
}

#[test]
fn mqtt_3_3_4_9_window_freed_by_pubcomp_is_not_reported() {
    let mut s = world("3.1.1", 2);
    three_inbound(&mut s, true);
    assert_eq!(handshake(&s.trace()), vec![]);
}

/// The monitor (Receive Maximum 1) receives two QoS 1 messages; `ack_between` sends the first
/// PUBACK before the second arrives.
fn receive_maximum_one(ack_between: bool) -> Trace {
    let mut s = Story::new("5.0", Persistence::None);
    s.receive_maximum("monitor", 1)
        .connect("monitor", true, false)
        .subscribe("monitor", "s/#", 1);
    s.connect("pub", true, false).after_ms(10);
    let a = s.publish("pub", "s/1", 1);
    let b = s.publish("pub", "s/1", 1);
    s.after_ms(5).publish_received("monitor", &a, 1, false);
    if ack_between {
        s.ack_sent("monitor", AckPacket::Puback, 1, &a);
    }
    s.publish_received("monitor", &b, 2, false);
    s.trace()
}

#[test]
fn mqtt_3_3_4_9_client_receive_maximum_bounds_the_window() {
    let v = handshake(&receive_maximum_one(false));
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].message.contains("(1:"), "{}", v[0].message);
    assert_eq!(handshake(&receive_maximum_one(true)), vec![]);
}

#[test]
fn a_new_connection_starts_an_empty_window() {
    let mut s = world("3.1.1", 1);
    let a = s.publish("pub", "s/1", 1);
    let b = s.publish("pub", "s/1", 1);
    s.after_ms(5).publish_received("monitor", &a, 1, false);
    s.cut("monitor")
        .after_ms(100)
        .connect("monitor", false, true);
    s.publish_received("monitor", &b, 2, false);
    assert_eq!(handshake(&s.trace()), vec![]);
}

#[test]
fn mqtt_3_3_4_7_client_beyond_broker_receive_maximum_is_reported() {
    for acked in [false, true] {
        let mut s = Story::new("5.0", Persistence::None);
        s.connecting("pub", true)
            .connected_with_window("pub", false, 1);
        let a = s.publish("pub", "s/1", 1);
        let b = s.publish("pub", "s/1", 1);
        s.publish_sent("pub", &a, 1, false);
        if acked {
            s.ack_received("pub", AckPacket::Puback, 1, &a)
                .ack("pub", &a);
        }
        s.publish_sent("pub", &b, 2, false);
        s.ack_received("pub", AckPacket::Puback, 2, &b)
            .ack("pub", &b);
        let v = handshake(&s.trace());
        if acked {
            assert_eq!(v, vec![]);
        } else {
            assert_eq!(v.len(), 1, "{v:#?}");
            assert!(v[0].message.contains("[MQTT-3.3.4-7]"), "{}", v[0].message);
        }
    }
}

/// The publisher asks for a QoS 1 publish, is cut, comes back with its session, and stays
/// connected to the end; `outcome` says what the trace then tells of the publish.
fn hanging(outcome: &str) -> Trace {
    let mut s = world("3.1.1", 10);
    let a = s.publish("pub", "s/1", 1);
    s.publish_sent("pub", &a, 1, false).cut("pub");
    s.after_ms(200).connect("pub", false, true);
    match outcome {
        "acked" => {
            s.publish_sent("pub", &a, 1, true)
                .ack_received("pub", AckPacket::Puback, 1, &a)
                .ack("pub", &a);
        }
        "lost" => {
            s.publish_lost("pub", &a);
        }
        "crashed" => {
            s.crash("pub")
                .restart("pub")
                .after_ms(100)
                .connect("pub", false, true);
        }
        "offline" => {
            s.cut("pub");
        }
        _ => {}
    }
    s.after_ms(100).settle().after_ms(5_000);
    s.end()
}

#[test]
fn mqtt_4_4_0_1_publish_never_resent_after_reconnect_is_reported() {
    let v = handshake(&hanging("nothing"));
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].message.contains("pub#1"), "{}", v[0].message);
    assert!(v[0].message.contains("[MQTT-4.4.0-1]"), "{}", v[0].message);
}

#[test]
fn mqtt_4_4_0_1_publish_that_ends_or_whose_process_died_is_not_reported() {
    for outcome in ["acked", "lost", "crashed", "offline"] {
        assert_eq!(handshake(&hanging(outcome)), vec![], "{outcome}");
    }
}

#[test]
fn a_publish_requested_during_the_settle_phase_is_not_owed_yet() {
    let mut s = world("3.1.1", 10);
    s.settle().after_ms(10);
    let a = s.publish("pub", "s/1", 1);
    s.publish_sent("pub", &a, 1, false);
    assert_eq!(handshake(&s.end()), vec![]);
}

/// The monitor answers a QoS 2 PUBLISH with PUBREC, then is cut and comes back, with its
/// session (`resumed`) or without; `released` says whether the PUBREL came.
fn unreleased(resumed: bool, released: bool) -> Trace {
    let mut s = world("3.1.1", 10);
    let a = s.publish("pub", "s/1", 2);
    s.after_ms(5)
        .publish_received("monitor", &a, 7, false)
        .deliver("monitor", &a)
        .ack_sent("monitor", AckPacket::Pubrec, 7, &a)
        .ack("pub", &a)
        .cut("monitor");
    s.after_ms(200).connect("monitor", false, resumed);
    if released {
        s.ack_received("monitor", AckPacket::Pubrel, 7, &a)
            .ack_sent("monitor", AckPacket::Pubcomp, 7, &a);
    }
    s.settle().after_ms(5_000);
    s.end()
}

#[test]
fn mqtt_4_3_3_qos2_exchange_never_released_is_reported() {
    let v = handshake(&unreleased(true, false));
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].message.contains("PUBREL"), "{}", v[0].message);
    assert!(v[0].message.contains("pub#1 (id 7)"), "{}", v[0].message);
}

#[test]
fn mqtt_4_3_3_released_or_discarded_exchange_is_not_reported() {
    assert_eq!(handshake(&unreleased(true, true)), vec![]);
    // A new session: the broker discarded the exchange with the old one.
    assert_eq!(handshake(&unreleased(false, false)), vec![]);
}

/// The monitor sends SUBSCRIBE `a/#` and UNSUBSCRIBE `s/#` at 1 s, loses its connection
/// before `answered_first` lets the answers through, connects again and sends both again; the
/// second requests are answered if `answered_again`.
fn requests(answered_first: bool, answered_again: bool) -> Trace {
    let mut s = world("5.0", 10);
    s.at_ms(1000)
        .subscribe_requested("monitor", "a/#", 1)
        .unsubscribe_requested("monitor", "s/#");
    if answered_first {
        s.after_ms(5)
            .subscribe_granted("monitor", "a/#", 1, Some(1))
            .unsubscribed("monitor", "s/#");
        return s.after_ms(100).settle().after_ms(5_000).end();
    }
    s.after_ms(2).lost("monitor");
    s.at_ms(2000)
        .connect("monitor", false, true)
        .subscribe_requested("monitor", "a/#", 1)
        .unsubscribe_requested("monitor", "s/#");
    if answered_again {
        s.after_ms(5)
            .subscribe_granted("monitor", "a/#", 1, Some(1))
            .unsubscribed("monitor", "s/#");
    }
    s.after_ms(100).settle().after_ms(5_000).end()
}

/// [MQTT-3.8.4-1] [MQTT-3.10.4-4] Every SUBSCRIBE and UNSUBSCRIBE a connected client sent is
/// answered by the end: requests resent after a lost connection and answered then are fine;
/// requests never answered though the client stayed connected are reported.
#[test]
fn mqtt_3_8_4_1_every_subscribe_and_unsubscribe_is_answered() {
    assert_eq!(handshake(&requests(true, false)), vec![]);
    assert_eq!(handshake(&requests(false, true)), vec![]);
    let v = handshake(&requests(false, false));
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(
        v[0].message
            .contains("monitor sent SUBSCRIBE a/# for monitor at 2.0")
            && v[0].message.contains("never got its SUBACK")
            && v[0].message.contains("[MQTT-3.8.4-1]"),
        "{}",
        v[0]
    );
    assert!(
        v[1].message.contains("UNSUBSCRIBE s/#") && v[1].message.contains("[MQTT-3.10.4-4]"),
        "{}",
        v[1]
    );
}
