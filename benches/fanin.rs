//! What durability costs: QoS 1 fan-in throughput of `mqtt-lab broker` without persistence, with
//! the `durable` store and with the `interval` store, and of mosquitto with `persistence true`,
//! side by side in one run.
//!
//! Workload: 8 publishers (our async client, MQTT 3.1.1, QoS 1, [`WINDOW`] publishes in flight
//! each) send N messages of 64 bytes to `fanin/<publisher>`; one persistent subscriber
//! (clean session off, QoS 1 on `fanin/#`) receives them. A run is timed from the first publish
//! to the last delivery at the subscriber. Each broker is a separate process on loopback with
//! its store in a fresh folder under `target/bench-fanin/` (a real disk: a tmpfs would make
//! syncs free); the configurations take turns, 3 runs each, and the median counts. The disk's
//! `fdatasync` latency is measured first, since it bounds the durable mode.
//!
//! `cargo bench --bench fanin` runs it (50,000 messages) and prints a Markdown table with the
//! ratio to the in-memory broker. `MQTT_LAB_BENCH_MAX_INFLIGHT=N` gives every broker an inflight
//! window of N messages per client (mqtt-lab's `max_inflight`, mosquitto's
//! `max_inflight_messages`; both default to 20). Without `--bench` in its arguments (`cargo test
//! --all-targets`) it runs a short smoke: 400 messages, once, mqtt-lab configurations only.

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
    use std::fs::File;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use super::client::{client_config, connect, median};
    use super::support::{BrokerProcess, free_port, mosquitto, running_as_root};

    use bytes::Bytes;
    use mqtt_lab::client::ClientEvent;
    use mqtt_lab::codec::{Properties, QoS, ReasonCode};
    use mqtt_lab::net::client::{PendingPublish, subscription};

    const PUBLISHERS: usize = 8;
    /// Publishes in flight per publisher.
    const WINDOW: usize = 32;
    const PAYLOAD: usize = 64;
    const FULL_MESSAGES: usize = 50_000;
    const SMOKE_MESSAGES: usize = 400;
    const RUNS: usize = 3;
    /// Bound on starting a broker, connecting and subscribing.
    const WAIT: Duration = Duration::from_secs(10);
    /// Messages per second below which a run is declared stuck.
    const SLOWEST: usize = 200;
    /// mosquitto's `autosave_interval`, in seconds (its default is 1800).
    const MOSQUITTO_AUTOSAVE: u32 = 5;

    /// A broker configuration under test.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Config {
        InMemory,
        Durable,
        Interval,
        Mosquitto,
    }

    impl Config {
        fn name(self) -> String {
            match self {
                Config::InMemory => "mqtt-lab, no persistence".into(),
                Config::Durable => "mqtt-lab, `persistence = \"durable\"`".into(),
                Config::Interval => "mqtt-lab, `persistence = \"interval\"`, 5 s".into(),
                Config::Mosquitto => format!(
                    "mosquitto, `persistence true`, `autosave_interval {MOSQUITTO_AUTOSAVE}` (default 1800)"
                ),
            }
        }

        fn folder(self) -> &'static str {
            match self {
                Config::InMemory => "memory",
                Config::Durable => "durable",
                Config::Interval => "interval",
                Config::Mosquitto => "mosquitto",
            }
        }

        /// Whether `kill -9` may lose messages the broker acknowledged.
        fn loses_on_sigkill(self) -> &'static str {
            match self {
                Config::InMemory => "yes (keeps nothing)",
                Config::Durable => "no",
                Config::Interval | Config::Mosquitto => "yes",
            }
        }
    }

    /// Starts the broker of `config` with its files in `dir` (a fresh folder).
    /// The inflight window every broker is given, if the environment asks for one.
    fn max_inflight() -> Option<u16> {
        let text = std::env::var("MQTT_LAB_BENCH_MAX_INFLIGHT").ok()?;
        match text.parse() {
            Ok(n) if n > 0 => Some(n),
            _ => panic!("MQTT_LAB_BENCH_MAX_INFLIGHT={text:?}: expected a number from 1 to 65535"),
        }
    }

    fn start_broker(config: Config, dir: &Path, mosquitto_bin: Option<&Path>) -> BrokerProcess {
        for _attempt in 0..5 {
            let port = free_port();
            let (program, conf) = match config {
                Config::Mosquitto => {
                    let conf = dir.join("mosquitto.conf");
                    let mut text = format!(
                        "listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n\
                         persistence true\npersistence_location {}/\n\
                         autosave_interval {MOSQUITTO_AUTOSAVE}\nmax_queued_messages 0\n",
                        dir.display()
                    );
                    if running_as_root(dir) {
                        text.push_str("user root\n");
                    }
                    if let Some(n) = max_inflight() {
                        text.push_str(&format!("max_inflight_messages {n}\n"));
                    }
                    std::fs::write(&conf, text).expect("write mosquitto.conf");
                    (mosquitto_bin.expect("mosquitto").to_path_buf(), conf)
                }
                _ => {
                    let conf = dir.join("broker.toml");
                    let persistence = match config {
                        Config::Durable => {
                            "persistence_file = \"state\"\npersistence = \"durable\"\n"
                        }
                        Config::Interval => {
                            "persistence_file = \"state\"\npersistence = \"interval\"\n\
                             autosave_interval = \"5s\"\n"
                        }
                        _ => "",
                    };
                    let inflight = max_inflight()
                        .map(|n| format!("max_inflight = {n}\n"))
                        .unwrap_or_default();
                    std::fs::write(
                        &conf,
                        format!(
                            "listen = [\"127.0.0.1:{port}\"]\n{persistence}\
                             [broker]\nmax_queued_messages = 1000000\n{inflight}"
                        ),
                    )
                    .expect("write broker.toml");
                    (PathBuf::from(env!("CARGO_BIN_EXE_mqtt-lab")), conf)
                }
            };
            let log = dir.join("broker.log");
            let mut args: Vec<&std::ffi::OsStr> = Vec::new();
            if config != Config::Mosquitto {
                args.push("broker".as_ref());
            }
            args.extend(["-c".as_ref(), conf.as_os_str()]);
            if let Some(b) = BrokerProcess::start(&program, &args, port, log, WAIT) {
                return b;
            }
        }
        panic!(
            "{} did not start listening; its log: {}",
            config.name(),
            dir.join("broker.log").display()
        );
    }

    /// One timed run: the messages per second from the first publish to the last delivery.
    async fn run(port: u16, messages: usize, what: &str) -> f64 {
        let (sub, mut sub_events) =
            connect(port, client_config("fanin-sub".into(), false, WINDOW)).await;
        let granted = tokio::time::timeout(
            WAIT,
            sub.subscribe(vec![subscription("fanin/#", QoS::AtLeastOnce)]),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: no SUBACK"))
        .expect("subscribe");
        assert_eq!(granted, vec![ReasonCode::GrantedQoS1], "{what}");

        let per = messages / PUBLISHERS;
        let total = per * PUBLISHERS;
        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        let mut publishers = Vec::new();
        for p in 0..PUBLISHERS {
            let (client, mut events) =
                connect(port, client_config(format!("fanin-pub-{p}"), true, WINDOW)).await;
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            let mut go = go_rx.clone();
            publishers.push(tokio::spawn(async move {
                go.wait_for(|&go| go).await.expect("start signal");
                let topic = format!("fanin/{p}");
                let mut in_flight: std::collections::VecDeque<PendingPublish> =
                    std::collections::VecDeque::new();
                for i in 0..per {
                    if in_flight.len() == WINDOW {
                        let reason = in_flight.pop_front().unwrap().outcome().await?;
                        assert!(!reason.is_error(), "PUBACK {reason:?}");
                    }
                    let mut payload = vec![0u8; PAYLOAD];
                    payload[..8].copy_from_slice(&((p * per + i) as u64).to_be_bytes());
                    let pending = client
                        .publish_start(
                            topic.clone(),
                            Bytes::from(payload),
                            QoS::AtLeastOnce,
                            false,
                            Properties::default(),
                        )
                        .await?;
                    in_flight.push_back(pending);
                }
                for pending in in_flight {
                    let reason = pending.outcome().await?;
                    assert!(!reason.is_error(), "PUBACK {reason:?}");
                }
                client.disconnect(ReasonCode::Success).await;
                Ok::<(), mqtt_lab::net::client::RequestError>(())
            }));
        }

        let bound = WAIT + Duration::from_secs((total / SLOWEST) as u64);
        let start = Instant::now();
        go_tx.send(true).expect("publishers wait");
        let mut seen = vec![false; total];
        let mut received = 0;
        let mut duplicates = 0;
        let deadline = tokio::time::Instant::now() + bound;
        while received < total {
            match tokio::time::timeout_at(deadline, sub_events.recv()).await {
                Ok(Some(ClientEvent::Message(m))) => {
                    let n = u64::from_be_bytes(m.payload[..8].try_into().unwrap()) as usize;
                    if std::mem::replace(&mut seen[n], true) {
                        duplicates += 1;
                    } else {
                        received += 1;
                    }
                }
                Ok(Some(ClientEvent::ConnectionLost { cause })) => {
                    panic!(
                        "{what}: the subscriber lost its connection after {received} of {total}: {cause:?}"
                    )
                }
                Ok(Some(_)) => {}
                Ok(None) => panic!("{what}: the subscriber stopped after {received} of {total}"),
                Err(_) => panic!(
                    "{what}: {received} of {total} messages delivered in {bound:?}; the broker stalled or dropped some"
                ),
            }
        }
        let elapsed = start.elapsed();
        for p in publishers {
            match tokio::time::timeout(WAIT, p).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => panic!("{what}: a publisher failed: {e}"),
                Ok(Err(e)) => panic!("{what}: a publisher panicked: {e}"),
                Err(_) => panic!("{what}: a publisher did not finish"),
            }
        }
        assert_eq!(duplicates, 0, "{what}: duplicates without a reconnect");
        sub.disconnect(ReasonCode::Success).await;
        total as f64 / elapsed.as_secs_f64()
    }

    /// `fdatasync` of 4 KiB written to a file in `dir`, `count` times: (median, mean).
    fn sync_latency(dir: &Path, count: usize) -> (Duration, Duration) {
        let path = dir.join("sync-probe");
        let mut file = File::create(&path).expect("create sync-probe");
        let block = [0x5au8; 4096];
        let mut times = Vec::with_capacity(count);
        for _ in 0..count {
            file.write_all(&block).expect("write sync-probe");
            let t = Instant::now();
            file.sync_data().expect("fdatasync");
            times.push(t.elapsed());
        }
        drop(file);
        let _ = std::fs::remove_file(&path);
        times.sort();
        let mean = times.iter().sum::<Duration>() / count as u32;
        (times[count / 2], mean)
    }

    pub fn main() {
        let full = std::env::args().any(|a| a == "--bench");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-fanin");
        std::fs::create_dir_all(&root).expect("create target/bench-fanin");

        let (messages, runs, syncs) = if full {
            (FULL_MESSAGES, RUNS, 100)
        } else {
            (SMOKE_MESSAGES, 1, 10)
        };
        let mut configs = vec![Config::InMemory, Config::Durable, Config::Interval];
        let mosquitto_bin = if full { mosquitto() } else { None };
        if full {
            if mosquitto_bin.is_some() {
                configs.push(Config::Mosquitto);
            } else {
                println!("SKIPPED: mosquitto is not installed (Debian package `mosquitto`)");
            }
        }

        let (sync_median, sync_mean) = sync_latency(&root, syncs);
        println!(
            "fdatasync of 4 KiB under {}: median {:.2} ms, mean {:.2} ms ({syncs} syncs)",
            root.display(),
            sync_median.as_secs_f64() * 1e3,
            sync_mean.as_secs_f64() * 1e3
        );
        println!(
            "{messages} messages of {PAYLOAD} B from {PUBLISHERS} publishers ({WINDOW} in flight each) \
             to 1 persistent subscriber, QoS 1, broker inflight window {}; median of {runs} run(s)",
            max_inflight().map_or("20 (default)".to_string(), |n| n.to_string())
        );

        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
        for r in 0..runs {
            for (c, &config) in configs.iter().enumerate() {
                let dir = root.join(format!("{}-{r}", config.folder()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("create the broker's folder");
                let broker = start_broker(config, &dir, mosquitto_bin.as_deref());
                let what = format!("{} (log: {})", config.name(), broker.log.display());
                let rate = rt.block_on(run(broker.port, messages, &what));
                drop(broker);
                let _ = std::fs::remove_dir_all(&dir);
                eprintln!("run {}: {}: {rate:.0} msgs/s", r + 1, config.name());
                rates[c].push(rate);
            }
        }

        let medians: Vec<f64> = rates.into_iter().map(median).collect();
        let reference = medians[0];
        println!();
        println!(
            "| config | msgs/s | ratio to mqtt-lab in-memory | loses acknowledged messages on SIGKILL |"
        );
        println!("| --- | ---: | ---: | --- |");
        for (config, rate) in configs.iter().zip(&medians) {
            println!(
                "| {} | {rate:.0} | {:.2} | {} |",
                config.name(),
                rate / reference,
                config.loses_on_sigkill()
            );
        }
    }
}
