//! The memory of a broker process (its resident set, RSS, from `/proc`), mqtt-lab beside
//! mosquitto in one run, printed as Markdown tables with ratios.
//!
//! - **Idle connections**: after 50 warm-up connections, N clients connect (MQTT 3.1.1, clean
//!   session, keep-alive 0, one CONNECT each, CONNACK awaited) and stay silent. RSS is read
//!   before, 2 s after the last CONNACK (the bytes per idle connection are the difference
//!   divided by N) and 7 s after they all closed (what the broker gave back).
//! - **Fan-in burst**: 20 publishers each write 5,000 QoS 0 PUBLISH of 1 KiB as fast as the
//!   broker reads them, to one subscriber of `burst/#` that reads as fast as it can. RSS is read
//!   before, sampled every 20 ms during the burst (its peak), and 7 s after everyone left.
//!
//! `cargo bench --bench memory` runs both with N = 10,000; `MQTT_LAB_BENCH_IDLE=10000,100000`
//! sets the counts (each needs an open-file limit, `ulimit -n`, above N + 100 for this process
//! and the brokers; a count above it is reported as skipped). Without `--bench` in its
//! arguments (`cargo test --all-targets`) it runs a smoke: 200 idle connections and a burst of
//! 2 × 200 messages, mqtt-lab only.

/// The simulation build (`--cfg madsim`) has no real sockets or processes: nothing to measure.
#[cfg(madsim)]
fn main() {}

#[cfg(not(madsim))]
fn main() {
    real::main();
}

#[cfg(not(madsim))]
mod support;

#[cfg(not(madsim))]
mod real {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    use super::support::{BrokerProcess, free_port, mosquitto, running_as_root};

    const WAIT: Duration = Duration::from_secs(10);
    const WARM_UP: usize = 50;
    /// After the clients leave: longer than mqtt-lab's trim interval (5 s).
    const SETTLE: Duration = Duration::from_secs(7);
    const PAYLOAD: usize = 1024;

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Peer {
        Ours,
        Mosquitto,
    }

    impl Peer {
        fn name(self) -> &'static str {
            match self {
                Peer::Ours => "mqtt-lab",
                Peer::Mosquitto => "mosquitto",
            }
        }
    }

    fn start(peer: Peer, dir: &Path, mosquitto_bin: Option<&Path>) -> BrokerProcess {
        for _attempt in 0..5 {
            let port = free_port();
            let (program, args): (PathBuf, Vec<String>) = match peer {
                Peer::Ours => {
                    let conf = dir.join("broker.toml");
                    std::fs::write(
                        &conf,
                        format!(
                            "listen = [\"127.0.0.1:{port}\"]\n[broker]\n\
                             max_connections = 1000000\nmax_sessions = 1000000\n"
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
                        "listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\n"
                    );
                    if running_as_root(dir) {
                        text.push_str("user root\n");
                    }
                    std::fs::write(&conf, text).expect("write mosquitto.conf");
                    (
                        mosquitto_bin.expect("mosquitto").to_path_buf(),
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

    /// The resident set of process `pid`, in bytes.
    fn rss(pid: u32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// The soft limit on open files of this process.
    fn open_file_limit() -> u64 {
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
            .unwrap_or(1024)
    }

    /// A 3.1.1 packet: fixed header byte, remaining length, body.
    fn packet(first: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![first];
        mqtt_lab::codec::varint::write(&mut p, body.len());
        p.extend_from_slice(body);
        p
    }

    fn string(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    }

    /// A connected, silent client: CONNECT sent, CONNACK 0 read.
    fn connect(port: u16, id: &str) -> TcpStream {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("{id}: connect: {e}"));
        s.set_read_timeout(Some(WAIT)).expect("read timeout");
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0];
        body.extend(string(id));
        s.write_all(&packet(0x10, &body)).expect("write CONNECT");
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack)
            .unwrap_or_else(|e| panic!("{id}: no CONNACK: {e}"));
        assert_eq!(ack, [0x20, 2, 0, 0], "{id}: CONNACK");
        s
    }

    struct Idle {
        before: u64,
        full: u64,
        after: u64,
    }

    fn idle(port: u16, pid: u32, n: usize) -> Idle {
        let warm: Vec<TcpStream> = (0..WARM_UP)
            .map(|i| connect(port, &format!("warm-{i}")))
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        let before = rss(pid);
        let conns: Vec<TcpStream> = (0..n)
            .map(|i| connect(port, &format!("idle-{i}")))
            .collect();
        std::thread::sleep(Duration::from_secs(2));
        let full = rss(pid);
        drop(conns);
        drop(warm);
        std::thread::sleep(SETTLE);
        Idle {
            before,
            full,
            after: rss(pid),
        }
    }

    struct Burst {
        before: u64,
        peak: u64,
        after: u64,
        delivered: u64,
        sent: u64,
    }

    fn burst(port: u16, pid: u32, publishers: usize, per: usize) -> Burst {
        let mut sub = connect(port, "burst-sub");
        let mut body = vec![0, 1];
        body.extend(string("burst/#"));
        body.push(0);
        sub.write_all(&packet(0x82, &body)).expect("SUBSCRIBE");
        let mut suback = [0u8; 5];
        sub.read_exact(&mut suback).expect("SUBACK");
        assert_eq!(suback, [0x90, 3, 0, 1, 0], "SUBACK");
        let pubs: Vec<TcpStream> = (0..publishers)
            .map(|p| connect(port, &format!("burst-pub-{p}")))
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        let before = rss(pid);

        let done = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(before));
        let sampler = {
            let (done, peak) = (done.clone(), peak.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let total = (publishers * per) as u64;
        let reader = std::thread::spawn(move || {
            // Counts PUBLISH packets; stops at `total` or after a second of silence.
            sub.set_read_timeout(Some(Duration::from_secs(1)))
                .expect("read timeout");
            let mut buf = vec![0u8; 256 * 1024];
            let mut pending: Vec<u8> = Vec::new();
            let mut got = 0u64;
            while got < total {
                let n = match sub.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&buf[..n]);
                let mut at = 0;
                while let Some((len, header)) = frame(&pending[at..]) {
                    if pending[at] >> 4 == 3 {
                        got += 1;
                    }
                    at += header + len;
                }
                pending.drain(..at);
            }
            got
        });
        let message = {
            let mut body = string("burst/x");
            body.extend(std::iter::repeat_n(0x5a, PAYLOAD));
            packet(0x30, &body)
        };
        let writers: Vec<_> = pubs
            .into_iter()
            .map(|mut s| {
                let message = message.clone();
                std::thread::spawn(move || {
                    let batch: Vec<u8> = message.repeat(50);
                    for _ in 0..per / 50 {
                        s.write_all(&batch).expect("PUBLISH");
                    }
                    s.write_all(&[0xE0, 0]).expect("DISCONNECT");
                    s
                })
            })
            .collect();
        let pubs: Vec<TcpStream> = writers
            .into_iter()
            .map(|w| w.join().expect("publisher"))
            .collect();
        let delivered = reader.join().expect("subscriber");
        done.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler");
        drop(pubs);
        std::thread::sleep(SETTLE);
        Burst {
            before,
            peak: peak.load(Ordering::Relaxed),
            after: rss(pid),
            delivered,
            sent: (publishers * (per / 50) * 50) as u64,
        }
    }

    /// The remaining length and header length of the packet at the start of `b`, if whole.
    fn frame(b: &[u8]) -> Option<(usize, usize)> {
        let mut len = 0usize;
        for i in 1..5 {
            let byte = *b.get(i)?;
            len |= usize::from(byte & 0x7f) << (7 * (i - 1));
            if byte & 0x80 == 0 {
                return (b.len() >= i + 1 + len).then_some((len, i + 1));
            }
        }
        panic!("a remaining length longer than 4 bytes from the broker");
    }

    fn mib(b: u64) -> String {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    }

    pub fn main() {
        let full = std::env::args().any(|a| a == "--bench");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-memory");
        let counts: Vec<usize> = match std::env::var("MQTT_LAB_BENCH_IDLE") {
            Ok(text) => text
                .split(',')
                .map(|n| {
                    n.trim().parse().unwrap_or_else(|_| {
                        panic!("MQTT_LAB_BENCH_IDLE={text:?}: expected counts like 10000,100000")
                    })
                })
                .collect(),
            Err(_) if full => vec![10_000],
            Err(_) => vec![200],
        };
        let (publishers, per) = if full { (20, 5_000) } else { (2, 200) };
        let mosquitto_bin = if full { mosquitto() } else { None };
        let mut peers = vec![Peer::Ours];
        match mosquitto_bin {
            Some(_) => peers.push(Peer::Mosquitto),
            None if full => {
                println!("SKIPPED mosquitto: not installed (Debian package `mosquitto`)")
            }
            None => {}
        }
        let limit = open_file_limit();

        println!(
            "| broker | idle connections | RSS before | RSS with them | per idle connection | RSS 7 s after they closed |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        for &n in &counts {
            if n as u64 + 100 > limit {
                println!(
                    "| (skipped) | {n} | | | needs `ulimit -n` ≥ {}; this process has {limit} | |",
                    n + 100
                );
                continue;
            }
            let mut per_conn = Vec::new();
            for &peer in &peers {
                let dir = root.join(format!("idle-{}-{n}", peer.name()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("create the bench folder");
                let broker = start(peer, &dir, mosquitto_bin.as_deref());
                let r = idle(broker.port, broker.child.id(), n);
                let each = r.full.saturating_sub(r.before) as f64 / n as f64;
                per_conn.push(each);
                println!(
                    "| {} | {n} | {} | {} | {each:.0} B | {} |",
                    peer.name(),
                    mib(r.before),
                    mib(r.full),
                    mib(r.after)
                );
            }
            if per_conn.len() == 2 {
                println!(
                    "| mqtt-lab / mosquitto | | | | {:.2} | |",
                    per_conn[0] / per_conn[1]
                );
            }
        }

        println!();
        println!(
            "| broker | burst | delivered | RSS before | peak RSS | RSS 7 s after | peak given back |"
        );
        println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
        for &peer in &peers {
            let dir = root.join(format!("burst-{}", peer.name()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create the bench folder");
            let broker = start(peer, &dir, mosquitto_bin.as_deref());
            let r = burst(broker.port, broker.child.id(), publishers, per);
            assert!(
                r.delivered > 0,
                "{}: the subscriber got nothing (log: {})",
                peer.name(),
                broker.log.display()
            );
            let grown = r.peak.saturating_sub(r.before);
            let back = r.peak.saturating_sub(r.after);
            println!(
                "| {} | {publishers} × {per} × {PAYLOAD} B, QoS 0 | {} of {} | {} | {} | {} | {:.0} % |",
                peer.name(),
                r.delivered,
                r.sent,
                mib(r.before),
                mib(r.peak),
                mib(r.after),
                if grown == 0 {
                    100.0
                } else {
                    100.0 * back as f64 / grown as f64
                }
            );
        }
    }
}
