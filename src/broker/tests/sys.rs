//! The broker's figures on `$SYS/broker/...` (`sys.rs`).

use std::time::Duration;

use super::*;

fn with_figures(secs: u64) -> Harness {
    Harness::with(BrokerConfig {
        sys_interval: Duration::from_secs(secs),
        ..BrokerConfig::default()
    })
}

/// The figures in `actions` sent to `conn`, as (topic, payload, retain).
fn figures(actions: &[Action], conn: ConnId) -> Vec<(String, String, bool)> {
    publishes(actions, conn)
        .into_iter()
        .filter(|p| p.topic.starts_with("$SYS/broker/"))
        .map(|p| {
            (
                p.topic.clone(),
                String::from_utf8(p.payload.to_vec()).unwrap(),
                p.retain,
            )
        })
        .collect()
}

fn value(figures: &[(String, String, bool)], topic: &str) -> String {
    figures
        .iter()
        .rev()
        .find(|(t, _, _)| t == topic)
        .unwrap_or_else(|| panic!("no {topic} in {figures:?}"))
        .1
        .clone()
}

#[test]
fn figures_are_published_every_interval_at_qos_0_to_sys_subscribers_only() {
    let mut h = with_figures(10);
    h.connect(1, "watcher", true);
    h.subscribe(1, "$SYS/broker/#", QoS::AtLeastOnce);
    h.connect(2, "all", true);
    h.subscribe(2, "#", QoS::AtLeastOnce);
    h.connect(3, "pub", true);
    h.publish(3, "a", QoS::AtLeastOnce, 1, "x");
    h.advance_to(10);
    let out = h.drain();
    let got = figures(&out, 1);
    assert_eq!(got[0].0, "$SYS/broker/uptime");
    assert_eq!(value(&got, "$SYS/broker/uptime"), "10 seconds");
    assert_eq!(value(&got, "$SYS/broker/clients/connected"), "3");
    assert_eq!(value(&got, "$SYS/broker/publish/messages/received"), "1");
    assert_eq!(value(&got, "$SYS/broker/subscriptions/count"), "2");
    assert!(value(&got, "$SYS/broker/version").starts_with("mqtt-lab "));
    // Live figures go to this 3.1.1 client with retain 0 [MQTT-3.3.1-9], at QoS 0.
    assert!(got.iter().all(|(_, _, retain)| !retain));
    assert!(publishes(&out, 1).iter().all(|p| p.qos == QoS::AtMostOnce));
    // A wildcard at the first level never matches a `$` topic [MQTT-4.7.2-1].
    assert!(figures(&out, 2).is_empty());
    h.advance_to(19);
    assert!(figures(&h.drain(), 1).is_empty());
    h.advance_to(20);
    assert_eq!(
        value(&figures(&h.drain(), 1), "$SYS/broker/uptime"),
        "20 seconds"
    );
}

#[test]
fn a_new_sys_subscription_is_sent_the_current_figures_as_retained_messages() {
    let mut h = with_figures(60);
    h.connect(1, "a", true);
    h.advance_to(5);
    h.packet(
        1,
        subscribe(7, &[("$SYS/broker/clients/+", QoS::AtMostOnce)]),
    );
    let got = figures(&h.drain(), 1);
    assert!(
        got.iter()
            .all(|(t, _, retain)| *retain && t.starts_with("$SYS/broker/clients/"))
    );
    assert_eq!(value(&got, "$SYS/broker/clients/connected"), "1");
    assert_eq!(value(&got, "$SYS/broker/clients/total"), "1");
    // Figures are not retained messages of the store.
    assert!(h.broker.durable_state().retained.is_empty());
}

#[test]
fn counters_count_what_the_broker_received_sent_and_refused() {
    let mut h = with_figures(1);
    h.connect(1, "a", false);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.connect(2, "b", true);
    for pkid in 1..=3 {
        h.publish(2, "t", QoS::AtLeastOnce, pkid, "m");
    }
    h.closed(1, CloseCause::PeerClosed);
    h.drain();
    let m = h.broker.metrics(h.now);
    // CONNECT, SUBSCRIBE from a; CONNECT and three PUBLISHes from b.
    assert_eq!(m.traffic.packets_received, 6);
    assert_eq!(m.traffic.publish_received, 3);
    // CONNACK, SUBACK, three PUBLISHes to a; CONNACK and three PUBACKs to b.
    assert_eq!(m.traffic.packets_sent, 9);
    assert_eq!(m.traffic.publish_sent, 3);
    assert_eq!(m.clients_connected, 1);
    assert_eq!(m.clients_disconnected, 1);
    assert_eq!(m.clients_maximum, 2);
    assert_eq!(m.subscriptions, 1);
    h.broker.count_bytes_sent(40);
    h.broker.count_bytes_sent(2);
    assert_eq!(h.broker.metrics(h.now).traffic.bytes_sent, 42);
    h.broker.handle_bytes(h.now, 2, &[0xc0, 0x00]);
    assert_eq!(h.broker.metrics(h.now).traffic.bytes_received, 2);
}

#[test]
fn without_an_interval_no_figure_is_ever_sent() {
    let mut h = Harness::new();
    h.connect(1, "a", true);
    h.subscribe(1, "$SYS/#", QoS::AtMostOnce);
    assert_eq!(h.broker.poll_timeout(), None);
    h.advance_to(3600);
    assert!(figures(&h.drain(), 1).is_empty());
}
