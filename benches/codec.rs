//! Encode and decode of PUBLISH (64 B and 1 KiB payloads), CONNECT and SUBSCRIBE, mqtt-lab
//! side by side with mqttbytes (its MQTT 3.1.1 codec) on the same bytes in the same run.
//!
//! `cargo bench --bench codec` (add `-- --quick` for a short run). After criterion's groups, a
//! summary measures each pair again, interleaved, and prints a Markdown table with the ratio
//! mqtt-lab / mqttbytes (below 1: mqtt-lab is faster).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mqtt_lab::codec::{
    self, Connect, LastWill, Packet, Properties, Protocol, Publish, QoS, Subscribe, Subscription,
    SubscriptionOptions,
};
use mqttbytes::v4;

const TOPIC: &str = "sensors/building-1/floor-2/temperature";
const MAX: u32 = 1 << 20;

/// One benchmark case: the same packet in both models, and its bytes.
struct Case {
    name: &'static str,
    ours: Packet,
    theirs: v4::Packet,
    bytes: Bytes,
}

fn publish(payload_len: usize) -> (Packet, v4::Packet) {
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    let ours = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TOPIC.into(),
        pkid: 42,
        properties: Properties::default(),
        payload: Bytes::from(payload.clone()),
    });
    let mut theirs = v4::Publish::new(TOPIC, mqttbytes::QoS::AtLeastOnce, payload);
    theirs.pkid = 42;
    (ours, v4::Packet::Publish(theirs))
}

fn connect() -> (Packet, v4::Packet) {
    let ours = Packet::Connect(Connect {
        protocol: Protocol::V3_1_1,
        clean_start: true,
        keep_alive: 60,
        client_id: "client-0123456789".into(),
        will: Some(Box::new(LastWill {
            topic: "clients/client-0123456789/status".into(),
            payload: Bytes::from_static(b"offline"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::default(),
        })),
        username: Some("user".into()),
        password: Some(Bytes::from_static(b"secret-password")),
        properties: Properties::default(),
    });
    let mut theirs = v4::Connect::new("client-0123456789");
    theirs.keep_alive = 60;
    theirs.last_will = Some(v4::LastWill::new(
        "clients/client-0123456789/status",
        b"offline".to_vec(),
        mqttbytes::QoS::AtLeastOnce,
        true,
    ));
    theirs.set_login("user", "secret-password");
    (ours, v4::Packet::Connect(theirs))
}

fn subscribe() -> (Packet, v4::Packet) {
    let filters = [
        "sensors/+/floor-2/temperature",
        "alerts/#",
        "clients/client-0123456789/cmd",
        "a/b/c/d",
    ];
    let ours = Packet::Subscribe(Subscribe {
        pkid: 7,
        filters: filters
            .iter()
            .map(|f| Subscription {
                filter: (*f).into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..Default::default()
                },
            })
            .collect(),
        properties: Properties::default(),
    });
    let mut theirs = v4::Subscribe::new_many(
        filters
            .iter()
            .map(|f| v4::SubscribeFilter::new((*f).into(), mqttbytes::QoS::AtLeastOnce)),
    );
    theirs.pkid = 7;
    (ours, v4::Packet::Subscribe(theirs))
}

fn ours_encode(p: &Packet, buf: &mut BytesMut) {
    codec::encode(p, Protocol::V3_1_1, buf).expect("encodes");
}

fn theirs_encode(p: &v4::Packet, buf: &mut BytesMut) {
    let r = match p {
        v4::Packet::Publish(p) => p.write(buf),
        v4::Packet::Connect(p) => p.write(buf),
        v4::Packet::Subscribe(p) => p.write(buf),
        _ => unreachable!("not benchmarked"),
    };
    r.expect("encodes");
}

fn ours_decode(buf: &mut BytesMut) -> Packet {
    codec::decode(buf, Some(Protocol::V3_1_1), MAX)
        .expect("decodes")
        .expect("whole")
}

fn theirs_decode(buf: &mut BytesMut) -> v4::Packet {
    v4::read(buf, MAX as usize).expect("decodes")
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (name, (ours, theirs)) in [
        ("publish_64B", publish(64)),
        ("publish_1KiB", publish(1024)),
        ("connect", connect()),
        ("subscribe", subscribe()),
    ] {
        let mut a = BytesMut::new();
        ours_encode(&ours, &mut a);
        let mut b = BytesMut::new();
        theirs_encode(&theirs, &mut b);
        assert_eq!(a, b, "{name}: both codecs write the same bytes");
        let mut check = a.clone();
        assert_eq!(
            ours_decode(&mut check),
            ours,
            "{name}: mqtt-lab decodes its input"
        );
        let mut check = a.clone();
        assert_eq!(
            theirs_decode(&mut check),
            theirs,
            "{name}: mqttbytes decodes its input"
        );
        out.push(Case {
            name,
            ours,
            theirs,
            bytes: a.freeze(),
        });
    }
    out
}

/// Packets per decoded stream: decoding runs over a buffer holding this many copies, as a
/// connection's read buffer would.
const STREAM: usize = 64;

fn stream_of(case: &Case) -> BytesMut {
    let mut s = BytesMut::with_capacity(case.bytes.len() * STREAM);
    for _ in 0..STREAM {
        s.extend_from_slice(&case.bytes);
    }
    s
}

fn bench(c: &mut Criterion) {
    for case in cases() {
        let stream = stream_of(&case);
        let mut g = c.benchmark_group(format!("decode/{}", case.name));
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_function("mqtt-lab", |b| {
            b.iter_batched_ref(
                || stream.clone(),
                |buf| {
                    for _ in 0..STREAM {
                        black_box(ours_decode(buf));
                    }
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function("mqttbytes", |b| {
            b.iter_batched_ref(
                || stream.clone(),
                |buf| {
                    for _ in 0..STREAM {
                        black_box(theirs_decode(buf));
                    }
                },
                BatchSize::SmallInput,
            )
        });
        g.finish();

        let mut g = c.benchmark_group(format!("encode/{}", case.name));
        g.throughput(Throughput::Bytes(case.bytes.len() as u64));
        let mut buf = BytesMut::with_capacity(4096);
        g.bench_function("mqtt-lab", |b| {
            b.iter(|| {
                buf.clear();
                ours_encode(black_box(&case.ours), &mut buf);
                black_box(buf.len())
            })
        });
        g.bench_function("mqttbytes", |b| {
            b.iter(|| {
                buf.clear();
                theirs_encode(black_box(&case.theirs), &mut buf);
                black_box(buf.len())
            })
        });
        g.finish();
    }
}

/// The best time per packet over `rounds` rounds; `prepare` (untimed) makes the round's input,
/// `run` handles `per_round` packets.
fn best_ns<T>(
    rounds: usize,
    per_round: usize,
    mut prepare: impl FnMut() -> T,
    mut run: impl FnMut(&mut T),
) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let mut input = prepare();
        let t = Instant::now();
        run(&mut input);
        best = best.min(t.elapsed());
    }
    best.as_nanos() as f64 / per_round as f64
}

fn summary() {
    println!();
    println!(
        "| case | mqtt-lab | mqttbytes | ratio (mqtt-lab / mqttbytes) | mqtt-lab throughput |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    const ROUNDS: usize = 300;
    const ENCODES: usize = 2_000;
    for case in cases() {
        let len = case.bytes.len();
        let stream = stream_of(&case);
        let (mut od, mut td, mut oe, mut te) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
        // interleaved, so that both see the same machine load
        for _ in 0..5 {
            od = od.min(best_ns(
                ROUNDS,
                STREAM,
                || stream.clone(),
                |b| {
                    for _ in 0..STREAM {
                        black_box(ours_decode(b));
                    }
                },
            ));
            td = td.min(best_ns(
                ROUNDS,
                STREAM,
                || stream.clone(),
                |b| {
                    for _ in 0..STREAM {
                        black_box(theirs_decode(b));
                    }
                },
            ));
            oe = oe.min(best_ns(
                ROUNDS / 10,
                ENCODES,
                || BytesMut::with_capacity(4096),
                |b| {
                    for _ in 0..ENCODES {
                        b.clear();
                        ours_encode(black_box(&case.ours), b);
                    }
                },
            ));
            te = te.min(best_ns(
                ROUNDS / 10,
                ENCODES,
                || BytesMut::with_capacity(4096),
                |b| {
                    for _ in 0..ENCODES {
                        b.clear();
                        theirs_encode(black_box(&case.theirs), b);
                    }
                },
            ));
        }
        let mib_s = |ns: f64| len as f64 / ns * 1e9 / (1024.0 * 1024.0);
        for (op, o, t) in [("decode", od, td), ("encode", oe, te)] {
            println!(
                "| {op} {} ({len} B) | {o:.0} ns | {t:.0} ns | {:.2} | {:.0} MiB/s |",
                case.name,
                o / t,
                mib_s(o)
            );
        }
    }
}

fn bench_and_summary(c: &mut Criterion) {
    bench(c);
    summary();
}

criterion_group!(benches, bench_and_summary);
criterion_main!(benches);
