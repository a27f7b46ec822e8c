//! The connection limits of the `[broker]` table on real loopback TCP: a connection that never
//! sends CONNECT is closed after `connect_timeout`, a connection beyond `max_connections` is
//! closed at once, and in both cases a well-behaved rumqttc client beside them goes on
//! publishing and receiving.

use crate::support;

use std::time::{Duration, Instant};

use mqtt_lab::broker::{Broker, BrokerConfig};
use rumqttc::QoS;
use support::rumq::Rumq;
use support::{OurBroker, WAIT};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

fn broker(config: BrokerConfig) -> OurBroker {
    OurBroker::start_with(move || Broker::new(config))
}

/// Reads until the broker closes the connection; every byte it sent first.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the broker did not close the connection"),
        }
    }
}

/// A subscriber and a publisher that must still exchange a QoS 1 message.
async fn exchange(sub: &mut Rumq, publ: &mut Rumq, payload: &str) {
    publ.publish("ok/1", QoS::AtLeastOnce, false, payload).await;
    let got = sub.message().await;
    assert_eq!(got.topic, "ok/1");
    assert_eq!(&got.payload[..], payload.as_bytes());
}

/// `connect_timeout`: a TCP connection that sends nothing is closed once the timeout has
/// passed, not before, and with no byte sent to it; clients that did connect are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_connect_timeout_closes_a_silent_tcp_connection() {
    let timeout = Duration::from_millis(400);
    let broker = broker(BrokerConfig {
        connect_timeout: timeout,
        ..BrokerConfig::default()
    });
    let (mut sub, _) = Rumq::connect(broker.port, "ct-sub", |_| {}).await;
    assert_eq!(
        sub.subscribe("ok/#", QoS::AtLeastOnce).await,
        vec![rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let (mut publ, _) = Rumq::connect(broker.port, "ct-pub", |_| {}).await;

    let opened = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", broker.port))
        .await
        .unwrap();
    let sent = read_until_closed(&mut silent).await;
    let after = opened.elapsed();
    assert!(
        sent.is_empty(),
        "no CONNACK to a silent connection: {sent:?}"
    );
    assert!(
        after >= timeout,
        "closed after {after:?}, before the connect timeout of {timeout:?}"
    );

    exchange(&mut sub, &mut publ, "after the silent one").await;
    publ.disconnect().await;
    sub.disconnect().await;
}

/// `max_connections`: one connection more than the limit is closed without a CONNACK; the
/// connected clients go on, and once one leaves a new client is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_max_connections_closes_only_the_extra_tcp_connection() {
    let broker = broker(BrokerConfig {
        max_connections: 2,
        ..BrokerConfig::default()
    });
    let (mut sub, _) = Rumq::connect(broker.port, "mc-sub", |_| {}).await;
    sub.subscribe("ok/#", QoS::AtLeastOnce).await;
    let (mut publ, _) = Rumq::connect(broker.port, "mc-pub", |_| {}).await;

    match Rumq::try_connect(broker.port, "mc-extra", |_| {}).await {
        Ok((_, ack)) => panic!("a connection beyond max_connections got a CONNACK: {ack:?}"),
        Err(_closed) => {}
    }

    exchange(&mut sub, &mut publ, "beside the extra one").await;
    publ.disconnect().await;
    // The broker learns of the DISCONNECT and of the next accept on different tasks: a few
    // tries, bounded, until the freed slot is seen.
    let mut tries = 0;
    let mut again = loop {
        match Rumq::try_connect(broker.port, "mc-pub-again", |_| {}).await {
            Ok((r, _)) => break r,
            Err(_) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("no slot freed after a client left: {e}"),
        }
    };
    exchange(&mut sub, &mut again, "after a slot freed").await;
    again.disconnect().await;
    sub.disconnect().await;
}

/// [MQTT-3.3.4-7] 5.0, and the close that follows a server DISCONNECT: a client that reads
/// slowly (megabytes of its own QoS 0 messages come back to it), sends more QoS 2 PUBLISH
/// packets than the broker's Receive Maximum and goes on writing reads everything the broker
/// sent, the DISCONNECT with 0x93 (Receive Maximum exceeded) last, then the end of the stream:
/// the broker reads on after its last write instead of closing on unread data, which would
/// reset the connection and drop what it had not yet delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_3_3_4_7_server_disconnect_reaches_a_client_still_writing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use bytes::{Bytes, BytesMut};
    use mqtt_lab::codec::{
        self, Connect, Packet, Properties, Protocol, Publish, QoS as Q, Subscribe, Subscription,
        SubscriptionOptions,
    };
    use tokio::io::AsyncWriteExt;

    let broker = broker(BrokerConfig {
        receive_maximum: 2,
        ..BrokerConfig::default()
    });
    let stream = TcpStream::connect(("127.0.0.1", broker.port))
        .await
        .unwrap();
    let encode = |p: &Packet| {
        let mut b = BytesMut::new();
        codec::encode(p, Protocol::V5, &mut b).unwrap();
        b.freeze()
    };
    let publish = |qos: Q, pkid: u16| {
        encode(&Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: "flood/t".into(),
            pkid,
            properties: Properties::default(),
            payload: Bytes::from(vec![7u8; 1024]),
        }))
    };
    let mut opening = BytesMut::new();
    opening.extend_from_slice(&encode(&Packet::Connect(Connect {
        protocol: Protocol::V5,
        clean_start: true,
        keep_alive: 0,
        client_id: "still-writing".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    })));
    opening.extend_from_slice(&encode(&Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: vec![Subscription {
            filter: "flood/#".into(),
            options: SubscriptionOptions {
                qos: Q::AtMostOnce,
                ..SubscriptionOptions::default()
            },
        }],
        properties: Properties::default(),
    })));
    // Echoed back, these fill the client's receive window and the broker's send buffer.
    let echoes: Vec<u8> = (0..8000).flat_map(|_| publish(Q::AtMostOnce, 0)).collect();
    let breach: Vec<u8> = (1..=3)
        .flat_map(|pkid| publish(Q::ExactlyOnce, pkid))
        .collect();
    // PINGREQs, 64 at a time: the client never stops writing while it reads.
    let ping: Vec<u8> = (0..64).flat_map(|_| encode(&Packet::PingReq)).collect();
    let reading_done = Arc::new(AtomicBool::new(false));
    let (mut reader, mut writer) = stream.into_split();
    let flooding = tokio::spawn({
        let reading_done = reading_done.clone();
        async move {
            writer.write_all(&opening).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Errors from here on are the broker closing.
            if writer.write_all(&echoes).await.is_err() || writer.write_all(&breach).await.is_err()
            {
                return;
            }
            while !reading_done.load(Ordering::Relaxed) {
                if writer.write_all(&ping).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
        }
    });
    // Read only once the flood has had time to fill both sides.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut got = BytesMut::new();
    let mut buf = vec![0u8; 64 * 1024];
    let ended = loop {
        match tokio::time::timeout(WAIT, reader.read(&mut buf)).await {
            Ok(Ok(0)) => break "the end of the stream".to_string(),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => break format!("an error: {e}"),
            Err(_) => panic!("the broker did not close the connection"),
        }
    };
    reading_done.store(true, Ordering::Relaxed);
    let _ = flooding.await;
    let mut framer = codec::Framer::new(Some(Protocol::V5), u32::MAX);
    framer.push(&got);
    let mut packets = Vec::new();
    while let Ok(Some(p)) = framer.next_packet() {
        packets.push(p);
    }
    let last = packets.last().map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason),
        _ => None,
    });
    assert_eq!(
        last,
        Some(Some(codec::ReasonCode::ReceiveMaximumExceeded)),
        "the client read {} packets ({} bytes) and then {ended}",
        packets.len(),
        got.len()
    );
    assert_eq!(ended, "the end of the stream");
}
