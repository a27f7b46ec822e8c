//! The built `mqtt-lab broker`'s figures, as an operator reads them: `$SYS/broker/...` topics
//! read with `mosquitto_sub` (the current figures at once on subscribing, then every
//! `sys_interval`), and the Prometheus endpoint of `metrics_listen`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli_broker_persist::free_port;
use crate::support::{WAIT, mosquitto_tools, wait_bounded};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lab");

struct Running {
    child: Child,
    port: u16,
    metrics: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(sys_interval: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics) = (free_port(), free_port());
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "listen = [\"127.0.0.1:{port}\"]\nsys_interval = \"{sys_interval}\"\nmetrics_listen = \"127.0.0.1:{metrics}\"\n"
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["broker", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", metrics)).is_err()
        || TcpStream::connect(("127.0.0.1", port)).is_err()
    {
        assert!(Instant::now() < deadline, "the broker never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    Running {
        child,
        port,
        metrics,
        _dir: dir,
    }
}

/// One HTTP GET; the status line and the body.
fn get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of the sample `name` in a Prometheus text body.
fn sample(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{body}"))
        .parse()
        .unwrap()
}

#[test]
fn sys_figures_reach_mosquitto_sub_at_once_and_then_every_interval() {
    let Some(tools) = mosquitto_tools() else {
        return;
    };
    let b = start("1s");
    let out = Command::new(&tools.sub)
        .args(["-h", "127.0.0.1", "-p", &b.port.to_string()])
        .args([
            "-t",
            "$SYS/broker/uptime",
            "-t",
            "$SYS/broker/clients/connected",
        ])
        .args(["-C", "4", "-W", "10", "-v", "-i", "watcher"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    // On subscribing, the current figures (the watcher itself is connected); a second later,
    // the next publication.
    assert!(lines.contains(&"$SYS/broker/clients/connected 1"), "{text}");
    let uptimes: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("$SYS/broker/uptime "))
        .map(|v| v.strip_suffix(" seconds").unwrap().parse().unwrap())
        .collect();
    assert_eq!(uptimes.len(), 2, "{text}");
    assert!(uptimes[1] >= uptimes[0], "{text}");
}

#[test]
fn the_metrics_endpoint_counts_what_clients_did() {
    let Some(tools) = mosquitto_tools() else {
        return;
    };
    let b = start("0s");
    for i in 0..3 {
        let status = Command::new(&tools.publ)
            .args(["-h", "127.0.0.1", "-p", &b.port.to_string()])
            .args(["-t", "m/t", "-q", "1", "-m", &format!("x{i}")])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let deadline = Instant::now() + WAIT;
    let body = loop {
        let (status, body) = get(b.metrics, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        if sample(&body, "mqtt_lab_clients_connected") == 0 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the publishers never left:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(sample(&body, "mqtt_lab_publish_received_total"), 3);
    assert_eq!(sample(&body, "mqtt_lab_clients_maximum"), 1);
    // CONNECT, PUBLISH, DISCONNECT from each; CONNACK and PUBACK to each.
    assert_eq!(sample(&body, "mqtt_lab_packets_received_total"), 9);
    assert_eq!(sample(&body, "mqtt_lab_packets_sent_total"), 6);
    assert!(sample(&body, "mqtt_lab_bytes_received_total") > 3 * 14);
    let (status, _) = get(b.metrics, "/nothing");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[test]
fn a_bad_metrics_address_is_refused_before_the_broker_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(&config, "metrics_listen = \"nowhere\"\n").unwrap();
    let mut child = Command::new(BIN)
        .args(["broker", "-c"])
        .arg(&config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, "the broker with a bad metrics address");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("line 1: metrics_listen: "), "{err}");
}

/// Polls the endpoint until `name` reads `want`; the body then.
fn await_sample(metrics: u16, name: &str, want: u64) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get(metrics, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        if sample(&body, name) == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never read {want}:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Idle clients are parked (the gauge counts them) and a parked client that writes is woken
/// and answered.
#[test]
fn idle_connections_are_parked_and_one_that_writes_is_woken() {
    let b = start("0s");
    let mut clients = Vec::new();
    for i in 0..10u8 {
        let mut s = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        // CONNECT, 3.1.1, clean session, keep-alive 0, client id "idle-i"
        s.write_all(&[
            0x10,
            18,
            0,
            4,
            b'M',
            b'Q',
            b'T',
            b'T',
            4,
            2,
            0,
            0,
            0,
            6,
            b'i',
            b'd',
            b'l',
            b'e',
            b'-',
            b'0' + i,
        ])
        .unwrap();
        let mut connack = [0u8; 4];
        s.read_exact(&mut connack).unwrap();
        assert_eq!(connack, [0x20, 2, 0, 0]);
        clients.push(s);
    }
    await_sample(b.metrics, "mqtt_lab_connections_parked", 10);
    // PINGREQ from one of them: it is woken, answered, and parked again once quiet
    clients[3].write_all(&[0xC0, 0]).unwrap();
    let mut pingresp = [0u8; 2];
    clients[3].read_exact(&mut pingresp).unwrap();
    assert_eq!(pingresp, [0xD0, 0]);
    await_sample(b.metrics, "mqtt_lab_connections_parked", 10);
    drop(clients);
    await_sample(b.metrics, "mqtt_lab_connections_parked", 0);
}
