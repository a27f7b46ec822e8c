//! Backpressure on real loopback TCP: a subscriber that stops reading slows down the publisher
//! feeding it (the broker stops reading the publisher) instead of being closed once the broker
//! has buffered `MAX_PENDING_WRITE_BYTES` for it; two clients that feed each other and read
//! nothing are closed once they have made no progress for `MAX_STALL`, and a client beside them
//! is served throughout.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_lab::codec::{
    self, Connect, Framer, Packet, Properties, Protocol, Publish, QoS, Subscribe, Subscription,
    SubscriptionOptions,
};
use mqtt_lab::net::server::MAX_PENDING_WRITE_BYTES;
use mqtt_lab::net::throttle::MAX_STALL;
use support::{OurBroker, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Payload of each flood message.
const PAYLOAD: usize = 64 * 1024;

fn encode(p: &Packet) -> Bytes {
    let mut b = BytesMut::new();
    codec::encode(p, Protocol::V3_1_1, &mut b).unwrap();
    b.freeze()
}

fn publish(topic: &str, seq: u32) -> Bytes {
    let mut payload = vec![0x5a; PAYLOAD];
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    encode(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        pkid: 0,
        properties: Properties::default(),
        payload: payload.into(),
    }))
}

/// A 3.1.1 client with keep-alive 0, subscribed at QoS 0 to `filter` (SUBACK read).
async fn client(port: u16, id: &str, filter: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut opening = BytesMut::new();
    opening.extend_from_slice(&encode(&Packet::Connect(Connect {
        protocol: Protocol::V3_1_1,
        clean_start: true,
        keep_alive: 0,
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    })));
    opening.extend_from_slice(&encode(&Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: vec![Subscription {
            filter: filter.into(),
            options: SubscriptionOptions {
                qos: QoS::AtMostOnce,
                ..SubscriptionOptions::default()
            },
        }],
        properties: Properties::default(),
    })));
    s.write_all(&opening).await.unwrap();
    let mut framer = Framer::new(Some(Protocol::V3_1_1), u32::MAX);
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < 2 {
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .expect("CONNACK and SUBACK in time")
            .unwrap();
        assert_ne!(n, 0, "{id}: closed before its SUBACK");
        framer.push(&buf[..n]);
        while let Some(p) = framer.next_packet().unwrap() {
            got.push(p);
        }
    }
    assert!(matches!(got[1], Packet::SubAck(_)), "{id}: {got:?}");
    s
}

/// Waits until `written` stops growing for half a second; what it then is.
async fn settled(written: &AtomicUsize) -> usize {
    let deadline = Instant::now() + WAIT * 3;
    let mut last = written.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = written.load(Ordering::Relaxed);
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// A subscriber that reads nothing while a publisher sends it more than
/// `MAX_PENDING_WRITE_BYTES`: the publisher is held back (it cannot write everything while
/// nobody reads), the subscriber is not closed, and once it reads it gets every message, in
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_a_subscriber_that_stops_reading_holds_its_publisher_back() {
    let broker = OurBroker::start();
    let mut sub = client(broker.port, "bp-sub", "bp/#").await;
    let publ = client(broker.port, "bp-pub", "nothing/here").await;
    let count = (MAX_PENDING_WRITE_BYTES / PAYLOAD * 5 / 4) as u32;
    let written = Arc::new(AtomicUsize::new(0));
    let (_keep_reader, mut writer) = publ.into_split();
    let flooding = tokio::spawn({
        let written = written.clone();
        async move {
            for seq in 0..count {
                let p = publish("bp/flood", seq);
                writer.write_all(&p).await.unwrap();
                written.fetch_add(p.len(), Ordering::Relaxed);
            }
            writer
        }
    });
    let total = count as usize * publish("bp/flood", 0).len();
    let held_at = settled(&written).await;
    assert!(
        held_at < total,
        "the publisher wrote all {total} bytes while its only subscriber read nothing: the \
         broker buffered it all"
    );

    let mut framer = Framer::new(Some(Protocol::V3_1_1), u32::MAX);
    let mut buf = vec![0u8; 256 * 1024];
    let mut next = 0u32;
    while next < count {
        let n = tokio::time::timeout(WAIT, sub.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("message {next} of {count} did not arrive"))
            .unwrap();
        assert_ne!(
            n, 0,
            "the subscriber was closed after {next} of {count} messages"
        );
        framer.push(&buf[..n]);
        while let Some(p) = framer.next_packet().unwrap() {
            let Packet::Publish(p) = p else {
                panic!("not a PUBLISH: {p:?}");
            };
            let seq = u32::from_be_bytes(p.payload[..4].try_into().unwrap());
            assert_eq!(seq, next, "out of order");
            next += 1;
        }
    }
    tokio::time::timeout(WAIT, flooding)
        .await
        .expect("the publisher finishes once the subscriber reads")
        .unwrap();
}

/// Two clients that each publish into the other's subscription and read nothing hold each
/// other back; neither makes progress, so both are dropped once `MAX_STALL` has passed (not
/// before; what was queued for them is discarded, so their writes fail), while a third client
/// is served all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_two_clients_that_feed_each_other_and_read_nothing_are_closed() {
    let broker = OurBroker::start();
    let a = client(broker.port, "bp-a", "to/a").await;
    let b = client(broker.port, "bp-b", "to/b").await;
    let mut bystander = client(broker.port, "bp-c", "to/c").await;
    let started = Instant::now();
    // Each writes until the broker drops its connection, and says when that was.
    let flood = |stream: TcpStream, topic: &'static str| {
        tokio::spawn(async move {
            let (_unread, mut writer) = stream.into_split();
            for seq in 0.. {
                if writer.write_all(&publish(topic, seq)).await.is_err() {
                    break;
                }
            }
            started.elapsed()
        })
    };
    let a = flood(a, "to/b");
    let b = flood(b, "to/a");

    // The bystander's own messages come back while the two are stuck.
    let mut framer = Framer::new(Some(Protocol::V3_1_1), u32::MAX);
    let mut buf = vec![0u8; 128 * 1024];
    for seq in 0..5 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        bystander.write_all(&publish("to/c", seq)).await.unwrap();
        let mut got = None;
        while got.is_none() {
            let n = tokio::time::timeout(WAIT, bystander.read(&mut buf))
                .await
                .expect("the bystander is served")
                .unwrap();
            assert_ne!(n, 0, "the bystander was closed");
            framer.push(&buf[..n]);
            got = framer.next_packet().unwrap();
        }
    }
    let limit = MAX_STALL + WAIT;
    for (name, flooder) in [("a", a), ("b", b)] {
        let closed_after = tokio::time::timeout(limit, flooder)
            .await
            .unwrap_or_else(|_| panic!("{name} not closed within {limit:?}"))
            .unwrap();
        assert!(
            closed_after >= MAX_STALL,
            "{name} closed after {closed_after:?}, before {MAX_STALL:?} without progress"
        );
    }
}
