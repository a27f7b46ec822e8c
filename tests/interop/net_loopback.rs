//! The shell end to end on real loopback TCP: our broker server and our async client.

use std::time::Duration;

use mqtt_lab::broker::{Broker, BrokerConfig};
use mqtt_lab::client::{ClientConfig, ClientEvent};
use mqtt_lab::codec::{Protocol, QoS, ReasonCode};
use mqtt_lab::net::client::{ClientOptions, Events, MqttClient, subscription};

async fn start_broker() -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let core = Broker::new(BrokerConfig::default());
        mqtt_lab::net::server::serve(core, vec![listener], None, async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });
    (addr, stop_tx)
}

fn config(id: &str, protocol: Protocol) -> ClientConfig {
    ClientConfig {
        protocol,
        client_id: id.into(),
        ..ClientConfig::default()
    }
}

async fn connected(events: &mut Events) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Some(ClientEvent::Connected {
                session_present, ..
            })) => return session_present,
            Ok(Some(_)) => continue,
            other => panic!("no CONNACK: {other:?}"),
        }
    }
}

async fn next_message(events: &mut Events) -> mqtt_lab::codec::Publish {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Some(ClientEvent::Message(p))) => return p,
            Ok(Some(_)) => continue,
            other => panic!("no message: {other:?}"),
        }
    }
}

#[tokio::test]
async fn publish_and_receive_at_each_qos_in_both_versions() {
    let (addr, _stop) = start_broker().await;
    for protocol in [Protocol::V3_1_1, Protocol::V5] {
        let (sub, mut sub_events) = MqttClient::start(ClientOptions::new(
            &addr,
            config(&format!("sub-{protocol}"), protocol),
        ))
        .unwrap();
        connected(&mut sub_events).await;
        let granted = sub
            .subscribe(vec![subscription("lab/+/x", QoS::ExactlyOnce)])
            .await
            .unwrap();
        assert_eq!(granted, vec![ReasonCode::GrantedQoS2]);

        let (publ, mut pub_events) = MqttClient::start(ClientOptions::new(
            &addr,
            config(&format!("pub-{protocol}"), protocol),
        ))
        .unwrap();
        connected(&mut pub_events).await;
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let payload = format!("{protocol}-{qos:?}");
            publ.publish("lab/a/x", payload.clone(), qos, false)
                .await
                .unwrap();
            let got = next_message(&mut sub_events).await;
            assert_eq!(got.topic, "lab/a/x");
            assert_eq!(got.qos, qos);
            assert_eq!(&got.payload[..], payload.as_bytes());
        }
        publ.disconnect(ReasonCode::Success).await;
        sub.disconnect(ReasonCode::Success).await;
    }
}

#[tokio::test]
async fn retained_message_reaches_a_later_subscriber_with_retain_set() {
    let (addr, _stop) = start_broker().await;
    let (publ, mut ev) = MqttClient::start(ClientOptions::new(
        &addr,
        config("ret-pub", Protocol::V3_1_1),
    ))
    .unwrap();
    connected(&mut ev).await;
    publ.publish("status/door", "open", QoS::AtLeastOnce, true)
        .await
        .unwrap();
    let (sub, mut sev) = MqttClient::start(ClientOptions::new(
        &addr,
        config("ret-sub", Protocol::V3_1_1),
    ))
    .unwrap();
    connected(&mut sev).await;
    sub.subscribe(vec![subscription("status/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    let got = next_message(&mut sev).await;
    assert!(
        got.retain,
        "[MQTT-3.3.1-8] a retained message sent on subscribe has retain set"
    );
    assert_eq!(&got.payload[..], b"open");
}

#[tokio::test]
async fn will_is_published_when_a_connection_is_cut() {
    let (addr, _stop) = start_broker().await;
    let (watcher, mut wev) = MqttClient::start(ClientOptions::new(
        &addr,
        config("watcher", Protocol::V3_1_1),
    ))
    .unwrap();
    connected(&mut wev).await;
    watcher
        .subscribe(vec![subscription("wills/#", QoS::AtLeastOnce)])
        .await
        .unwrap();

    let mut cfg = config("doomed", Protocol::V3_1_1);
    cfg.will = Some(mqtt_lab::codec::LastWill {
        topic: "wills/doomed".into(),
        payload: "gone".into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    cfg.reconnect.enabled = false;
    let mut opts = ClientOptions::new(&addr, cfg);
    let link = opts.link.clone();
    opts.seed = 7;
    let (_doomed, mut dev) = MqttClient::start(opts).unwrap();
    connected(&mut dev).await;
    link.cut();
    let got = next_message(&mut wev).await;
    assert_eq!(got.topic, "wills/doomed");
    assert_eq!(&got.payload[..], b"gone");
}

#[tokio::test]
async fn persistent_session_gets_messages_queued_while_offline() {
    let (addr, _stop) = start_broker().await;
    let mut cfg = config("sleepy", Protocol::V3_1_1);
    cfg.clean_start = false;
    let (sub, mut sev) = MqttClient::start(ClientOptions::new(&addr, cfg.clone())).unwrap();
    assert!(!connected(&mut sev).await);
    sub.subscribe(vec![subscription("q/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    sub.disconnect(ReasonCode::Success).await;

    let (publ, mut pev) =
        MqttClient::start(ClientOptions::new(&addr, config("busy", Protocol::V3_1_1))).unwrap();
    connected(&mut pev).await;
    for i in 0..5 {
        publ.publish("q/n", format!("m{i}"), QoS::AtLeastOnce, false)
            .await
            .unwrap();
    }
    let (_sub, mut sev) = MqttClient::start(ClientOptions::new(&addr, cfg)).unwrap();
    assert!(
        connected(&mut sev).await,
        "[MQTT-3.2.2-2] session present after resuming"
    );
    for i in 0..5 {
        let got = next_message(&mut sev).await;
        assert_eq!(got.payload, format!("m{i}").into_bytes());
    }
}

/// [MQTT-3.1.2-10] The will is removed from the session on a normal DISCONNECT: a watcher
/// subscribed to the will topic sees the publisher's last message and never the will.
#[tokio::test]
async fn mqtt_3_1_2_10_no_will_after_normal_disconnect() {
    let (addr, _stop) = start_broker().await;
    let (watcher, mut wev) = MqttClient::start(ClientOptions::new(
        &addr,
        config("watcher2", Protocol::V3_1_1),
    ))
    .unwrap();
    connected(&mut wev).await;
    watcher
        .subscribe(vec![subscription("st/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    let mut cfg = config("polite", Protocol::V3_1_1);
    cfg.will = Some(mqtt_lab::codec::LastWill {
        topic: "st/polite".into(),
        payload: "will".into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    let (polite, mut pev) = MqttClient::start(ClientOptions::new(&addr, cfg)).unwrap();
    connected(&mut pev).await;
    polite
        .publish("st/polite", "bye", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    polite.disconnect(ReasonCode::Success).await;
    assert_eq!(&next_message(&mut wev).await.payload[..], b"bye");
    // A marker published after the disconnect: the will, if any, would come before it.
    let (marker, mut mev) = MqttClient::start(ClientOptions::new(
        &addr,
        config("marker", Protocol::V3_1_1),
    ))
    .unwrap();
    connected(&mut mev).await;
    marker
        .publish("st/marker", "end", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let next = next_message(&mut wev).await;
    assert_eq!(
        &next.payload[..],
        b"end",
        "a will was published after a normal DISCONNECT: {next:?}"
    );
}

/// [MQTT-3.1.2-24] a broker that sends a packet above the Maximum Packet Size we announced:
/// the shell's framer refuses it from its fixed header and the client sends DISCONNECT 0x95
/// before closing, then reports the loss as the broker's protocol error.
#[tokio::test]
async fn mqtt_3_1_2_24_oversize_packet_from_the_broker_gets_disconnect_0x95() {
    use bytes::BytesMut;
    use mqtt_lab::client::DownCause;
    use mqtt_lab::codec::{self, ConnAck, Packet, Properties, Publish};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // A broker that accepts the CONNECT, then sends a 300-byte PUBLISH.
    let fake = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::new();
        let connect = loop {
            if let Some(p) = codec::decode(&mut buf, None, 1 << 20).unwrap() {
                break p;
            }
            assert!(stream.read_buf(&mut buf).await.unwrap() > 0, "closed early");
        };
        let Packet::Connect(c) = connect else {
            panic!("expected CONNECT, got {connect:?}")
        };
        assert_eq!(c.properties.maximum_packet_size, Some(128));
        let mut out = BytesMut::new();
        let ack = Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        });
        codec::encode(&ack, Protocol::V5, &mut out).unwrap();
        let big = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "big".into(),
            pkid: 0,
            properties: Properties::default(),
            payload: vec![b'x'; 300].into(),
        });
        codec::encode(&big, Protocol::V5, &mut out).unwrap();
        stream.write_all(&out).await.unwrap();
        // Whatever the client answers, until it closes (a reset ends the stream too).
        let mut answer = BytesMut::new();
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            while stream.read_buf(&mut answer).await.is_ok_and(|n| n > 0) {}
        });
        read.await.expect("the client closes the connection");
        codec::decode(&mut answer, Some(Protocol::V5), 1 << 20).unwrap()
    });
    let mut cfg = config("small", Protocol::V5);
    cfg.max_packet_size = 128;
    cfg.reconnect.enabled = false;
    let (client, mut events) = MqttClient::start(ClientOptions::new(addr, cfg)).unwrap();
    assert!(!connected(&mut events).await);
    let cause = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Some(ClientEvent::ConnectionLost { cause })) => break cause,
            Ok(Some(ClientEvent::Message(m))) => panic!("oversize message delivered: {m:?}"),
            Ok(Some(_)) => continue,
            other => panic!("no loss reported: {other:?}"),
        }
    };
    assert_eq!(cause, DownCause::ProtocolError(ReasonCode::PacketTooLarge));
    match fake.await.unwrap() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::PacketTooLarge),
        other => panic!("expected DISCONNECT 0x95, got {other:?}"),
    }
    drop(client);
}
