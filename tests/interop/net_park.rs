//! Parked connections on real loopback TCP: a plain TCP connection quiet for longer than
//! `PARK_AFTER` leaves the runtime's reactor and has no task (`src/net/park.rs`); whatever
//! concerns it next (a packet from its client, a message, its client's end, a takeover) must
//! reach it as if it had never slept. Raw 3.1.1 packets with keep-alive 0, so nothing but the
//! test's own steps wakes a connection.

use crate::support;

use mqtt_lab::net::park::PARK_AFTER;
use support::{OurBroker, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Long enough for every quiet connection to be parked.
fn nap() -> tokio::time::Sleep {
    tokio::time::sleep(PARK_AFTER * 4)
}

fn string(s: &str) -> Vec<u8> {
    let mut v = u16::try_from(s.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

fn packet(header: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut v = vec![header, u8::try_from(body.len()).unwrap()];
    v.extend_from_slice(body);
    v
}

/// Connects `id` (clean session, keep-alive 0), with a QoS 1 will when given; CONNACK checked.
async fn connect(port: u16, id: &str, will: Option<(&str, &str)>) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut body = string("MQTT");
    body.push(4);
    body.push(if will.is_some() {
        0x02 | 0x04 | 0x08
    } else {
        0x02
    });
    body.extend_from_slice(&[0, 0]);
    body.extend(string(id));
    if let Some((topic, message)) = will {
        body.extend(string(topic));
        body.extend(string(message));
    }
    s.write_all(&packet(0x10, &body)).await.unwrap();
    assert_eq!(read(&mut s, 4).await, [0x20, 2, 0, 0], "CONNACK of {id}");
    s
}

async fn read(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .expect("the broker answered in time")
        .expect("the connection is open");
    buf
}

/// Reads one QoS 1 PUBLISH and acknowledges it: its topic and payload.
async fn receive(s: &mut TcpStream) -> (String, String) {
    let head = read(s, 2).await;
    assert_eq!(head[0], 0x32, "a QoS 1 PUBLISH");
    let body = read(s, usize::from(head[1])).await;
    let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let topic = String::from_utf8(body[2..2 + topic_len].to_vec()).unwrap();
    let pkid = &body[2 + topic_len..4 + topic_len];
    let payload = String::from_utf8(body[4 + topic_len..].to_vec()).unwrap();
    s.write_all(&[0x40, 2, pkid[0], pkid[1]]).await.unwrap();
    (topic, payload)
}

/// Subscribes to `filter` at QoS 1; SUBACK checked.
async fn subscribe(s: &mut TcpStream, filter: &str) {
    let mut body = vec![0, 1];
    body.extend(string(filter));
    body.push(1);
    s.write_all(&packet(0x82, &body)).await.unwrap();
    assert_eq!(read(s, 5).await, [0x90, 3, 0, 1, 1], "SUBACK of {filter}");
}

/// Publishes `payload` to `topic` at QoS 1 with identifier `pkid`; PUBACK checked.
async fn publish(s: &mut TcpStream, topic: &str, pkid: u8, payload: &str) {
    let mut body = string(topic);
    body.extend_from_slice(&[0, pkid]);
    body.extend_from_slice(payload.as_bytes());
    s.write_all(&packet(0x32, &body)).await.unwrap();
    assert_eq!(read(s, 4).await, [0x40, 2, 0, pkid], "PUBACK of {payload}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_connection_wakes_for_its_client_for_the_broker_and_at_its_end() {
    let broker = OurBroker::start();
    let mut sub = connect(broker.port, "park-sub", None).await;
    subscribe(&mut sub, "park/#").await;
    let mut publ = connect(broker.port, "park-pub", Some(("park/will", "gone"))).await;
    nap().await;

    // The publisher wakes for its own packet, the subscriber for the message.
    publish(&mut publ, "park/a", 7, "one").await;
    assert_eq!(receive(&mut sub).await, ("park/a".into(), "one".into()));
    nap().await;

    // A PINGREQ after a nap is answered.
    sub.write_all(&[0xC0, 0]).await.unwrap();
    assert_eq!(read(&mut sub, 2).await, [0xD0, 0], "PINGRESP");
    nap().await;

    // The publisher's end, while it sleeps, is seen: its will is published.
    drop(publ);
    assert_eq!(receive(&mut sub).await, ("park/will".into(), "gone".into()));
    nap().await;

    // A takeover closes the sleeping subscriber's connection.
    let _again = connect(broker.port, "park-sub", None).await;
    let mut rest = Vec::new();
    let n = tokio::time::timeout(WAIT, sub.read_to_end(&mut rest))
        .await
        .expect("the taken-over connection is closed in time");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "nothing more is sent: {rest:?}"
    );
}

/// Many clients publishing at intervals around `PARK_AFTER`, so that connections park and wake
/// over and over while messages cross them both ways: every PUBACK arrives, and the subscriber
/// receives every message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_parking_and_waking_over_and_over_lose_nothing() {
    const PUBLISHERS: usize = 60;
    const EACH: usize = 6;
    let broker = OurBroker::start();
    let mut sub = connect(broker.port, "churn-sub", None).await;
    subscribe(&mut sub, "churn/#").await;
    let receiver = tokio::spawn(async move {
        let mut got = std::collections::BTreeSet::new();
        for _ in 0..PUBLISHERS * EACH {
            let (topic, payload) = receive(&mut sub).await;
            assert!(got.insert((topic, payload.clone())), "{payload} twice");
        }
        got
    });
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let port = broker.port;
        publishers.push(tokio::spawn(async move {
            let mut s = connect(port, &format!("churn-{p}"), None).await;
            for m in 0..EACH {
                // Just under, at and over the quiet time, in turn.
                let gap = PARK_AFTER * u32::try_from((p + m) % 3).unwrap()
                    + PARK_AFTER / 2 * u32::try_from(m % 2).unwrap();
                tokio::time::sleep(gap).await;
                let pkid = u8::try_from(m + 1).unwrap();
                publish(&mut s, &format!("churn/{p}"), pkid, &format!("{p}-{m}")).await;
            }
            s
        }));
    }
    let mut open = Vec::new();
    for p in publishers {
        open.push(p.await.unwrap());
    }
    let got = tokio::time::timeout(WAIT * 3, receiver)
        .await
        .expect("every message arrived in time")
        .unwrap();
    let expected: std::collections::BTreeSet<(String, String)> = (0..PUBLISHERS)
        .flat_map(|p| (0..EACH).map(move |m| (format!("churn/{p}"), format!("{p}-{m}"))))
        .collect();
    assert_eq!(got, expected);
}
