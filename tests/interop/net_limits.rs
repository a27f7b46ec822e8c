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
