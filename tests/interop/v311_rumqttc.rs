//! `rumqttc` (a third-party MQTT 3.1.1 client) against our broker, served in-process on a free
//! loopback port: each QoS, retained messages, a will when a connection drops, and messages
//! queued for a persistent session.

use crate::support;

use support::rumq::Rumq;
use support::{WAIT, start_broker};

use rumqttc::{LastWill, MqttOptions, QoS, SubscribeReasonCode};

fn min_qos(a: QoS, b: QoS) -> QoS {
    if (a as u8) <= (b as u8) { a } else { b }
}

/// [MQTT-3.8.4-6] [MQTT-3.3.5-1] (3.1.1) rumqttc subscribers receive at min(publish QoS,
/// granted QoS), and rumqttc publishers complete PUBACK and PUBREC/PUBREL/PUBCOMP with our
/// broker.
#[tokio::test]
async fn mqtt_3_3_5_1_rumqttc_publishes_and_receives_at_each_qos() {
    let (port, _stop) = start_broker().await;
    let (mut sub2, _) = Rumq::connect(port, "r-sub2", |_| {}).await;
    let (mut sub1, _) = Rumq::connect(port, "r-sub1", |_| {}).await;
    assert_eq!(
        sub2.subscribe("lab/#", QoS::ExactlyOnce).await,
        vec![SubscribeReasonCode::Success(QoS::ExactlyOnce)]
    );
    assert_eq!(
        sub1.subscribe("lab/+/x", QoS::AtLeastOnce).await,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let (mut publ, _) = Rumq::connect(port, "r-pub", |_| {}).await;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let payload = format!("{qos:?}");
        publ.publish("lab/a/x", qos, false, &payload).await;
        for (sub, granted) in [(&mut sub2, QoS::ExactlyOnce), (&mut sub1, QoS::AtLeastOnce)] {
            let got = sub.message().await;
            assert_eq!(got.topic, "lab/a/x");
            assert_eq!(&got.payload[..], payload.as_bytes());
            assert_eq!(
                got.qos,
                min_qos(qos, granted),
                "{payload} granted {granted:?}"
            );
            assert!(!got.retain);
        }
    }
    publ.disconnect().await;
    sub1.disconnect().await;
    sub2.disconnect().await;
}

/// [MQTT-3.3.1-8] (3.1.1) a later rumqttc subscriber gets the retained message with retain
/// set; [MQTT-3.3.1-10] an empty retained payload removes it.
#[tokio::test]
async fn mqtt_3_3_1_8_rumqttc_sees_retained_message_with_retain_set() {
    let (port, _stop) = start_broker().await;
    let (mut publ, _) = Rumq::connect(port, "r-ret-pub", |_| {}).await;
    publ.publish("status/door", QoS::AtLeastOnce, true, "open")
        .await;
    let (mut late, _) = Rumq::connect(port, "r-ret-late", |_| {}).await;
    late.subscribe("status/#", QoS::AtLeastOnce).await;
    let got = late.message().await;
    assert!(got.retain, "retained copy must carry retain=1");
    assert_eq!(&got.payload[..], b"open");
    assert_eq!(got.qos, QoS::AtLeastOnce);

    publ.publish("status/door", QoS::AtLeastOnce, true, "")
        .await;
    let cleared = late.message().await;
    assert!(cleared.payload.is_empty());
    let (mut later, _) = Rumq::connect(port, "r-ret-later", |_| {}).await;
    later.subscribe("status/#", QoS::AtLeastOnce).await;
    publ.publish("status/window", QoS::AtLeastOnce, false, "live")
        .await;
    let first = later.message().await;
    assert_eq!(
        (first.topic.as_str(), first.retain),
        ("status/window", false),
        "the cleared retained message must not be sent"
    );
    for c in [publ, late, later] {
        c.disconnect().await;
    }
}

/// [MQTT-3.1.2-8] when a rumqttc client's connection drops without DISCONNECT (its event loop
/// is dropped), another rumqttc client receives its will, at the will's QoS.
#[tokio::test]
async fn mqtt_3_1_2_8_rumqttc_will_on_dropped_connection() {
    let (port, _stop) = start_broker().await;
    let (mut watcher, _) = Rumq::connect(port, "r-watch", |_| {}).await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;
    let (doomed, _) = Rumq::connect(port, "r-doomed", |o| {
        o.set_last_will(LastWill::new(
            "wills/r-doomed",
            "gone",
            QoS::AtLeastOnce,
            false,
        ));
    })
    .await;
    doomed.task.abort();
    drop(doomed);
    let got = watcher.message().await;
    assert_eq!(got.topic, "wills/r-doomed");
    assert_eq!(&got.payload[..], b"gone");
    assert_eq!(got.qos, QoS::AtLeastOnce);
    watcher.disconnect().await;
}

/// [MQTT-3.1.2-10] a will is discarded when the client sends DISCONNECT.
#[tokio::test]
async fn mqtt_3_1_2_10_rumqttc_will_discarded_on_disconnect() {
    let (port, _stop) = start_broker().await;
    let (mut watcher, _) = Rumq::connect(port, "r-watch2", |_| {}).await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;
    let (polite, _) = Rumq::connect(port, "r-polite", |o| {
        o.set_last_will(LastWill::new(
            "wills/r-polite",
            "gone",
            QoS::AtLeastOnce,
            false,
        ));
    })
    .await;
    polite.disconnect().await;
    let (mut marker, _) = Rumq::connect(port, "r-marker", |_| {}).await;
    marker
        .publish("wills/marker", QoS::AtLeastOnce, false, "m")
        .await;
    let got = watcher.message().await;
    assert_eq!(got.topic, "wills/marker", "no will may precede the marker");
    marker.disconnect().await;
    watcher.disconnect().await;
}

/// [MQTT-3.1.2-4] [MQTT-3.2.2-2] (3.1.1) a rumqttc client with clean session 0 reconnects to
/// find its session present and the QoS 1 messages queued while it was away, in order.
#[tokio::test]
async fn mqtt_3_1_2_4_rumqttc_persistent_session_gets_queued_messages() {
    let (port, _stop) = start_broker().await;
    let persistent = |o: &mut MqttOptions| {
        o.set_clean_session(false);
    };
    let (mut sub, ack) = Rumq::connect(port, "r-sleepy", persistent).await;
    assert!(!ack.session_present);
    sub.subscribe("queue/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;

    let (mut publ, _) = Rumq::connect(port, "r-busy", |_| {}).await;
    for i in 0..5 {
        publ.publish("queue/n", QoS::AtLeastOnce, false, &format!("m{i}"))
            .await;
    }
    let (mut sub, ack) = Rumq::connect(port, "r-sleepy", persistent).await;
    assert!(ack.session_present, "session present after resuming");
    for i in 0..5 {
        let got = sub.message().await;
        assert_eq!(&got.payload[..], format!("m{i}").as_bytes());
        assert_eq!(got.qos, QoS::AtLeastOnce);
    }
    sub.disconnect().await;
    publ.disconnect().await;
}

/// rumqttc and our own client talk through our broker both ways at QoS 2.
#[tokio::test]
async fn rumqttc_and_our_client_exchange_messages_at_qos_2() {
    use mqtt_lab::client::{ClientConfig, ClientEvent};
    use mqtt_lab::codec::{QoS as OurQoS, ReasonCode};
    use mqtt_lab::net::client::{ClientOptions, MqttClient, subscription};

    let (port, _stop) = start_broker().await;
    let config = ClientConfig {
        client_id: "ours".into(),
        ..ClientConfig::default()
    };
    let (ours, mut events) =
        MqttClient::start(ClientOptions::new(format!("127.0.0.1:{port}"), config)).unwrap();
    ours.subscribe(vec![subscription("to-ours", OurQoS::ExactlyOnce)])
        .await
        .unwrap();
    let (mut theirs, _) = Rumq::connect(port, "theirs", |_| {}).await;
    theirs.subscribe("to-theirs", QoS::ExactlyOnce).await;

    theirs
        .publish("to-ours", QoS::ExactlyOnce, false, "hi ours")
        .await;
    let got = loop {
        match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(ClientEvent::Message(p))) => break p,
            Ok(Some(_)) => {}
            other => panic!("no message for our client: {other:?}"),
        }
    };
    assert_eq!(
        (&got.payload[..], got.qos),
        (&b"hi ours"[..], OurQoS::ExactlyOnce)
    );

    let reason = ours
        .publish("to-theirs", "hi theirs", OurQoS::ExactlyOnce, false)
        .await
        .unwrap();
    assert_eq!(reason, ReasonCode::Success);
    let got = theirs.message().await;
    assert_eq!(
        (&got.payload[..], got.qos),
        (&b"hi theirs"[..], QoS::ExactlyOnce)
    );
    ours.disconnect(ReasonCode::Success).await;
    theirs.disconnect().await;
}
