//! Throughput of the load shapes an operator meets, through `mqtt-lab broker` and, when they
//! are installed, mosquitto and rumqttd, side by side in one run, printed as a Markdown table of
//! deliveries per second with the ratio of each peer to mqtt-lab.
//!
//! Shapes (payloads of 64 B, our async client, MQTT 3.1.1, [`WINDOW`] publishes in flight per
//! publisher):
//! - **fan-in QoS 0 / 1 / 2**: 8 publishers on `load/in/<p>` → 1 subscriber of `load/in/#`.
//! - **fan-out QoS 0 / 1**: 1 publisher on `load/out` → 50 subscribers of `load/out`.
//! - **many topics QoS 1**: 8 publishers, each over 100 topics `load/t/<p>/<k>` in turn → 8
//!   subscribers, subscriber `p` on `load/t/<p>/+`.
//!
//! Every broker keeps up to [`INFLIGHT`] QoS 1/2 messages in flight to each subscriber (rumqttd's
//! default `max_inflight_count`; mqtt-lab's `max_inflight` and mosquitto's
//! `max_inflight_messages` are set to it, both 20 by default), so the window does not decide the
//! comparison.
//!
//! A run is timed from the first publish to the last delivery (or, at QoS 0, to the last
//! delivery before a second of silence: a broker may drop QoS 0 messages); the rate is
//! deliveries per second. Each shape runs 3 times per broker, brokers interleaved, and the
//! median counts. Each broker is a process of its own on loopback.
//!
//! `cargo bench --bench load` runs it (`MQTT_LAB_BENCH_MESSAGES=N` sets the deliveries per run,
//! default 100,000; `MQTT_LAB_BENCH_SHAPES='fan-out|QoS 2'` runs only the shapes whose name contains
//! one of the words). Without `--bench` in its arguments (`cargo test --all-targets`) it is a
//! smoke: 2,000 deliveries per shape, once, mqtt-lab only.

/// The simulation build (`--cfg madsim`) has no real sockets or processes: nothing to measure.
#[cfg(madsim)]
fn main() {}

#[cfg(not(madsim))]
fn main() {
    real::main();
}

#[cfg(not(madsim))]
#[path = "support/client.rs"]
mod client;
#[cfg(not(madsim))]
mod support;

#[cfg(not(madsim))]
mod real {
    use std::collections::VecDeque;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use mqtt_lab::client::ClientEvent;
    use mqtt_lab::codec::{Properties, QoS};
    use mqtt_lab::net::client::{MqttClient, PendingPublish, subscription};

    use super::client::{client_config, connect, median};
    use super::support::{BrokerProcess, find, free_port, mosquitto, running_as_root};

    /// Publishes in flight per publisher.
    const WINDOW: usize = 32;
    /// Messages in flight from each broker to each subscriber.
    const INFLIGHT: usize = 100;
    const PAYLOAD: usize = 64;
    const RUNS: usize = 3;
    const WAIT: Duration = Duration::from_secs(10);
    /// Deliveries per second below which a run is declared stuck.
    const SLOWEST: usize = 200;

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Peer {
        Ours,
        Mosquitto,
        Rumqttd,
    }

    impl Peer {
        fn name(self) -> &'static str {
            match self {
                Peer::Ours => "mqtt-lab",
                Peer::Mosquitto => "mosquitto",
                Peer::Rumqttd => "rumqttd",
            }
        }
    }

    #[derive(Clone, Copy)]
    struct Shape {
        name: &'static str,
        publishers: usize,
        subscribers: usize,
        qos: QoS,
        /// Topics per publisher (1: one fixed topic).
        topics: usize,
    }

    const SHAPES: &[Shape] = &[
        Shape {
            name: "fan-in 8→1, QoS 0",
            publishers: 8,
            subscribers: 1,
            qos: QoS::AtMostOnce,
            topics: 1,
        },
        Shape {
            name: "fan-in 8→1, QoS 1",
            publishers: 8,
            subscribers: 1,
            qos: QoS::AtLeastOnce,
            topics: 1,
        },
        Shape {
            name: "fan-in 8→1, QoS 2",
            publishers: 8,
            subscribers: 1,
            qos: QoS::ExactlyOnce,
            topics: 1,
        },
        Shape {
            name: "fan-out 1→50, QoS 0",
            publishers: 1,
            subscribers: 50,
            qos: QoS::AtMostOnce,
            topics: 1,
        },
        Shape {
            name: "fan-out 1→50, QoS 1",
            publishers: 1,
            subscribers: 50,
            qos: QoS::AtLeastOnce,
            topics: 1,
        },
        Shape {
            name: "many topics 8×100, QoS 1",
            publishers: 8,
            subscribers: 8,
            qos: QoS::AtLeastOnce,
            topics: 100,
        },
    ];

    impl Shape {
        /// The topic of message `i` of publisher `p`.
        fn topic(&self, p: usize, i: usize) -> String {
            if self.topics > 1 {
                format!("load/t/{p}/{}", i % self.topics)
            } else if self.subscribers > 1 {
                "load/out".into()
            } else {
                format!("load/in/{p}")
            }
        }

        /// The filter of subscriber `s`.
        fn filter(&self, s: usize) -> String {
            if self.topics > 1 {
                format!("load/t/{s}/+")
            } else if self.subscribers > 1 {
                "load/out".into()
            } else {
                "load/in/#".into()
            }
        }

        /// The deliveries each publish makes.
        fn copies(&self) -> usize {
            if self.topics > 1 { 1 } else { self.subscribers }
        }
    }

    fn start(peer: Peer, dir: &Path, bins: &Bins) -> BrokerProcess {
        for _attempt in 0..5 {
            let port = free_port();
            let (program, args): (PathBuf, Vec<String>) = match peer {
                Peer::Ours => {
                    let conf = dir.join("broker.toml");
                    std::fs::write(
                        &conf,
                        format!(
                            "listen = [\"127.0.0.1:{port}\"]\n[broker]\nmax_queued_messages = 1000000\n\
                             max_inflight = {INFLIGHT}\n"
                        ),
                    )
                    .expect("write broker.toml");
                    (
                        PathBuf::from(env!("CARGO_BIN_EXE_mqtt-lab")),
                        vec!["broker".into(), "-c".into(), conf.display().to_string()],
                    )
                }
                Peer::Mosquitto => {
                    let conf = dir.join("mosquitto.conf");
                    let mut text = format!(
                        "listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n\
                         max_queued_messages 0\nmax_inflight_messages {INFLIGHT}\n"
                    );
                    if running_as_root(dir) {
                        text.push_str("user root\n");
                    }
                    std::fs::write(&conf, text).expect("write mosquitto.conf");
                    (
                        bins.mosquitto.clone().expect("mosquitto"),
                        vec!["-c".into(), conf.display().to_string()],
                    )
                }
                Peer::Rumqttd => {
                    let conf = dir.join("rumqttd.toml");
                    std::fs::write(&conf, rumqttd_config(bins, port)).expect("write rumqttd.toml");
                    (
                        bins.rumqttd.clone().expect("rumqttd"),
                        vec!["-c".into(), conf.display().to_string()],
                    )
                }
            };
            let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
            if let Some(b) =
                BrokerProcess::start(&program, &args, port, dir.join("broker.log"), WAIT)
            {
                return b;
            }
        }
        panic!("{} did not start listening", peer.name());
    }

    /// rumqttd's own default configuration (`rumqttd generate-config`) with its 3.1.1 listener
    /// on `port`, its other listeners (5.0, websockets, console, metrics) removed.
    fn rumqttd_config(bins: &Bins, port: u16) -> String {
        let out = std::process::Command::new(bins.rumqttd.as_ref().expect("rumqttd"))
            .arg("generate-config")
            .output()
            .expect("run rumqttd generate-config");
        let text = String::from_utf8(out.stdout).expect("rumqttd's configuration is UTF-8");
        let mut keep = true;
        let mut config = String::new();
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with('[') {
                keep = !(t.starts_with("[v5")
                    || t.starts_with("[ws")
                    || t.starts_with("[console")
                    || t.starts_with("[prometheus")
                    || t.starts_with("[metrics")
                    || t.starts_with("[bridge"));
            }
            if !keep {
                continue;
            }
            if t.starts_with("listen") && t.contains("1883") {
                config.push_str(&format!("listen = \"127.0.0.1:{port}\"\n"));
            } else {
                config.push_str(line);
                config.push('\n');
            }
        }
        config
    }

    struct Bins {
        mosquitto: Option<PathBuf>,
        rumqttd: Option<PathBuf>,
    }

    /// One timed run of `shape` with `deliveries` deliveries owed: deliveries per second, and
    /// the deliveries made.
    async fn run(port: u16, shape: Shape, deliveries: usize, what: &str) -> (f64, usize) {
        let per = deliveries / shape.copies() / shape.publishers;
        let owed = per * shape.publishers * shape.copies();
        let mut subs = Vec::new();
        for s in 0..shape.subscribers {
            let (client, events) =
                connect(port, client_config(format!("load-sub-{s}"), true, WINDOW)).await;
            tokio::time::timeout(
                WAIT,
                client.subscribe(vec![subscription(shape.filter(s), shape.qos)]),
            )
            .await
            .unwrap_or_else(|_| panic!("{what}: no SUBACK"))
            .expect("subscribe");
            subs.push((client, events));
        }
        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        let mut publishers = Vec::new();
        for p in 0..shape.publishers {
            let (client, mut events) =
                connect(port, client_config(format!("load-pub-{p}"), true, WINDOW)).await;
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            let mut go = go_rx.clone();
            publishers.push(tokio::spawn(async move {
                go.wait_for(|&go| go).await.expect("start signal");
                let mut in_flight: VecDeque<PendingPublish> = VecDeque::new();
                for i in 0..per {
                    if in_flight.len() == WINDOW {
                        in_flight.pop_front().unwrap().outcome().await?;
                    }
                    let mut payload = vec![0u8; PAYLOAD];
                    payload[..8].copy_from_slice(&((p * per + i) as u64).to_be_bytes());
                    in_flight.push_back(
                        client
                            .publish_start(
                                shape.topic(p, i),
                                Bytes::from(payload),
                                shape.qos,
                                false,
                                Properties::default(),
                            )
                            .await?,
                    );
                }
                for pending in in_flight {
                    pending.outcome().await?;
                }
                Ok::<MqttClient, mqtt_lab::net::client::RequestError>(client)
            }));
        }
        let (report_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
        let start = Instant::now();
        let bound = WAIT + Duration::from_secs((owed / SLOWEST) as u64);
        let per_sub = owed / shape.subscribers;
        for (client, mut events) in subs {
            let report_tx = report_tx.clone();
            // At QoS 0 a broker may drop messages: a subscriber stops after a second without any.
            let silence = if shape.qos == QoS::AtMostOnce {
                Duration::from_secs(1)
            } else {
                bound
            };
            tokio::spawn(async move {
                let mut got = 0;
                while got < per_sub {
                    match tokio::time::timeout(silence, events.recv()).await {
                        Ok(Some(ClientEvent::Message(_))) => {
                            got += 1;
                            let _ = report_tx.send(Some(Instant::now()));
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                }
                let _ = report_tx.send(None);
                client
                    .disconnect(mqtt_lab::codec::ReasonCode::Success)
                    .await;
            });
        }
        drop(report_tx);
        go_tx.send(true).expect("publishers wait");
        // One report per delivery, and one (`None`) per subscriber that is done; a run with no
        // delivery for `WAIT` is stuck.
        let (mut delivered, mut done, mut last) = (0usize, 0usize, start);
        while done < shape.subscribers {
            match tokio::time::timeout(WAIT, reports.recv()).await {
                Ok(Some(Some(at))) => {
                    delivered += 1;
                    last = at;
                }
                Ok(Some(None)) => done += 1,
                Ok(None) => break,
                Err(_) => {
                    panic!("{what}: {delivered} of {owed} deliveries, then none for {WAIT:?}")
                }
            }
        }
        let elapsed = last.duration_since(start);
        for p in publishers {
            match tokio::time::timeout(WAIT, p).await {
                Ok(Ok(Ok(client))) => {
                    client
                        .disconnect(mqtt_lab::codec::ReasonCode::Success)
                        .await
                }
                Ok(Ok(Err(e))) => panic!("{what}: a publisher failed: {e}"),
                Ok(Err(e)) => panic!("{what}: a publisher panicked: {e}"),
                Err(_) => panic!("{what}: a publisher did not finish"),
            }
        }
        if shape.qos != QoS::AtMostOnce {
            assert_eq!(
                delivered,
                owed,
                "{what}: deliveries at QoS {}",
                shape.qos.as_u8()
            );
        }
        (
            delivered as f64 / elapsed.as_secs_f64().max(1e-6),
            delivered,
        )
    }

    pub fn main() {
        let full = std::env::args().any(|a| a == "--bench");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-load");
        let deliveries: usize = match std::env::var("MQTT_LAB_BENCH_MESSAGES") {
            Ok(t) => t
                .parse()
                .unwrap_or_else(|_| panic!("MQTT_LAB_BENCH_MESSAGES={t:?}: expected a count")),
            Err(_) if full => 100_000,
            Err(_) => 2_000,
        };
        let runs = if full { RUNS } else { 1 };
        let bins = Bins {
            mosquitto: if full { mosquitto() } else { None },
            rumqttd: if full { find("rumqttd") } else { None },
        };
        let mut peers = vec![Peer::Ours];
        for (peer, bin, how) in [
            (
                Peer::Mosquitto,
                &bins.mosquitto,
                "Debian package `mosquitto`",
            ),
            (Peer::Rumqttd, &bins.rumqttd, "`cargo install rumqttd`"),
        ] {
            match bin {
                Some(_) => peers.push(peer),
                None if full => println!("SKIPPED {}: not installed ({how})", peer.name()),
                None => {}
            }
        }
        let only: Vec<String> = std::env::var("MQTT_LAB_BENCH_SHAPES")
            .map(|v| v.split('|').map(|w| w.trim().to_string()).collect())
            .unwrap_or_default();
        let chosen =
            |shape: &Shape| only.is_empty() || only.iter().any(|w| shape.name.contains(w.as_str()));
        if !SHAPES.iter().any(chosen) {
            let names: Vec<&str> = SHAPES.iter().map(|s| s.name).collect();
            panic!(
                "MQTT_LAB_BENCH_SHAPES={:?} names no shape; the shapes are: {}",
                only.join("|"),
                names.join("; ")
            );
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        println!(
            "{deliveries} deliveries per run, {PAYLOAD} B payloads, {WINDOW} publishes in flight per publisher; median of {runs} run(s), deliveries per second"
        );
        println!();
        let mut header = "| shape |".to_string();
        let mut rule = "| --- |".to_string();
        for peer in &peers {
            header.push_str(&format!(" {} |", peer.name()));
            rule.push_str(" ---: |");
        }
        for peer in &peers[1..] {
            header.push_str(&format!(" mqtt-lab / {} |", peer.name()));
            rule.push_str(" ---: |");
        }
        println!("{header}");
        println!("{rule}");
        for &shape in SHAPES.iter().filter(|s| chosen(s)) {
            let mut rates: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
            for r in 0..runs {
                for (k, &peer) in peers.iter().enumerate() {
                    let dir = root.join(format!("{}-{r}", peer.name()));
                    let _ = std::fs::remove_dir_all(&dir);
                    std::fs::create_dir_all(&dir).expect("create the bench folder");
                    let broker = start(peer, &dir, &bins);
                    let what = format!(
                        "{} on {} (log: {})",
                        shape.name,
                        peer.name(),
                        broker.log.display()
                    );
                    // A broker that fails a shape (a stuck run, lost QoS 1/2 messages) is shown
                    // as failed; the others go on.
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        rt.block_on(run(broker.port, shape, deliveries, &what))
                    }));
                    match outcome {
                        Ok((rate, got)) => {
                            eprintln!("run {}: {what}: {rate:.0}/s ({got} deliveries)", r + 1);
                            rates[k].push(rate);
                        }
                        Err(_) => {
                            eprintln!("run {}: {what}: FAILED", r + 1);
                            rates[k].push(f64::NAN);
                        }
                    }
                }
            }
            let medians: Vec<f64> = rates.into_iter().map(median).collect();
            let mut row = format!("| {} |", shape.name);
            for m in &medians {
                row.push_str(&if m.is_nan() {
                    " failed |".to_string()
                } else {
                    format!(" {m:.0} |")
                });
            }
            for m in &medians[1..] {
                let ratio = medians[0] / m;
                row.push_str(&if ratio.is_nan() {
                    " - |".to_string()
                } else {
                    format!(" {ratio:.2} |")
                });
            }
            println!("{row}");
        }
    }
}
