//! The built `mqtt-lab broker` with a `persistence_file`: a persistent session, its queued
//! message and a retained message survive a clean stop (SIGINT) and a crash after an autosave;
//! a damaged state file stops start-up with an error naming it, and is left as it was.

use crate::support;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use mqtt_lab::broker::DurableState;
use mqtt_lab::net::persist;
use rumqttc::{MqttOptions, QoS};
use support::rumq::Rumq;
use support::{WAIT, wait_bounded};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lab");

/// A running `mqtt-lab broker` process.
struct BrokerProcess {
    child: Child,
    port: u16,
}

impl BrokerProcess {
    /// Starts the broker with `config` on a free loopback port and waits until it accepts.
    fn start(config: &Path) -> BrokerProcess {
        let port = free_port();
        let mut child = Command::new(BIN)
            .args(["broker", "-c"])
            .arg(config)
            .args(["-l", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the broker exited before listening: {status}");
            }
            assert!(Instant::now() < deadline, "the broker never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        BrokerProcess { child, port }
    }

    /// SIGINT, as Ctrl-C sends it; the exit status.
    fn interrupt(self) -> ExitStatus {
        self.signal("INT")
    }

    /// `kill -<name>`; the exit status.
    fn signal(mut self, name: &str) -> ExitStatus {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
        wait_bounded(&mut self.child, "the stopped broker")
    }

    /// SIGKILL: a crash, nothing saved on the way out.
    fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A configuration file in `dir` keeping the state in `dir/state`.
fn config(dir: &Path, autosave: &str) -> (PathBuf, PathBuf) {
    let config = dir.join("broker.toml");
    std::fs::write(
        &config,
        format!("persistence_file = \"state\"\nautosave_interval = \"{autosave}\"\n"),
    )
    .unwrap();
    (config, dir.join("state"))
}

fn persistent(o: &mut MqttOptions) {
    o.set_clean_session(false);
}

/// Connects `id` with clean session 0, subscribes to `filter` at QoS 1 and disconnects; whether
/// CONNACK said session present.
async fn subscribe_and_leave(port: u16, id: &str, filter: &str) -> bool {
    let (mut sub, ack) = Rumq::connect(port, id, persistent).await;
    sub.subscribe(filter, QoS::AtLeastOnce).await;
    sub.disconnect_until_closed().await;
    ack.session_present
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// [MQTT-3.1.2-4] A 3.1.1 session with clean session 0 resumes after the broker restarts:
/// CONNACK says session present, the QoS 1 message queued while it was offline arrives, and a
/// retained message published before the restart is sent on a new subscribe. With an
/// autosave interval of an hour, only the save on SIGINT can have kept them.
#[test]
fn mqtt_3_1_2_4_session_queue_and_retained_survive_a_clean_restart() {
    survives_a_clean_stop("INT");
}

/// The same with SIGTERM, as service managers stop a process.
#[test]
#[cfg(unix)]
fn mqtt_3_1_2_4_session_queue_and_retained_survive_sigterm() {
    survives_a_clean_stop("TERM");
}

fn survives_a_clean_stop(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (config, state) = config(dir.path(), "1h");
    let broker = BrokerProcess::start(&config);
    let port = broker.port;
    runtime().block_on(async {
        assert!(!subscribe_and_leave(port, "keeper", "persist/q").await);
        let (mut publ, _) = Rumq::connect(port, "writer", |_| {}).await;
        publ.publish("persist/q", QoS::AtLeastOnce, false, "queued while away")
            .await;
        publ.publish("persist/r", QoS::AtLeastOnce, true, "kept")
            .await;
        publ.disconnect().await;
    });
    assert!(!state.exists(), "nothing saved before the interval");
    let status = broker.signal(signal);
    assert!(status.success(), "clean stop: {status}");
    assert!(state.exists(), "saved on SIG{signal}");

    let broker = BrokerProcess::start(&config);
    let port = broker.port;
    runtime().block_on(async {
        let (mut sub, ack) = Rumq::connect(port, "keeper", persistent).await;
        assert!(ack.session_present, "the session survived the restart");
        let got = sub.message().await;
        assert_eq!(
            (got.topic.as_ref(), &got.payload[..], got.qos),
            (
                &b"persist/q"[..],
                &b"queued while away"[..],
                QoS::AtLeastOnce
            )
        );
        sub.subscribe("persist/r", QoS::AtLeastOnce).await;
        let got = sub.message().await;
        assert_eq!(
            (got.topic.as_ref(), &got.payload[..], got.retain),
            (&b"persist/r"[..], &b"kept"[..], true)
        );
        sub.disconnect().await;
    });
    assert!(broker.interrupt().success());
}

/// A change is saved within the autosave interval: a broker killed after it (no shutdown
/// save) still finds the queued message on restart.
#[test]
fn an_autosaved_queue_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (config, state) = config(dir.path(), "100ms");
    let broker = BrokerProcess::start(&config);
    let port = broker.port;
    runtime().block_on(async {
        subscribe_and_leave(port, "sleeper", "crash/q").await;
        let (mut publ, _) = Rumq::connect(port, "writer", |_| {}).await;
        publ.publish("crash/q", QoS::AtLeastOnce, false, "before the crash")
            .await;
        publ.disconnect().await;
    });
    let deadline = Instant::now() + WAIT;
    let saved_with_message = || {
        let bytes = std::fs::read(&state).ok()?;
        let (s, _) = persist::decode(&bytes).ok()?;
        (s.sessions.get("sleeper")?.queued.len() == 1).then_some(())
    };
    while saved_with_message().is_none() {
        assert!(
            Instant::now() < deadline,
            "never autosaved the queued message"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    broker.crash();

    let broker = BrokerProcess::start(&config);
    let port = broker.port;
    runtime().block_on(async {
        let (mut sub, ack) = Rumq::connect(port, "sleeper", persistent).await;
        assert!(ack.session_present);
        let got = sub.message().await;
        assert_eq!(&got.payload[..], b"before the crash");
        sub.disconnect().await;
    });
    assert!(broker.interrupt().success());
}

/// The downtime counts towards session expiry (5.0 section 3.1.2.11.2): a persistent session
/// with 3 s left at the stop is gone after 4 s of downtime, even when its client comes back at
/// once after the restart (3.1.1 sessions expire after `max_session_expiry`).
#[test]
fn downtime_counts_towards_session_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        "persistence_file = \"state\"\n[broker]\nmax_session_expiry = \"3s\"\n",
    )
    .unwrap();
    let broker = BrokerProcess::start(&config);
    let port = broker.port;
    runtime().block_on(subscribe_and_leave(port, "brief", "expiry/q"));
    assert!(broker.interrupt().success());
    let (saved, _) = persist::decode(&std::fs::read(dir.path().join("state")).unwrap()).unwrap();
    assert!(
        saved.sessions.contains_key("brief"),
        "saved while not expired"
    );
    std::thread::sleep(Duration::from_secs(4));

    let broker = BrokerProcess::start(&config);
    let port = broker.port;
    runtime().block_on(async {
        let (sub, ack) = Rumq::connect(port, "brief", persistent).await;
        assert!(
            !ack.session_present,
            "the session expired during the downtime"
        );
        sub.disconnect().await;
    });
    assert!(broker.interrupt().success());
}

/// A state file that is corrupt, of another format or version, or too large stops start-up
/// with exit code 1 and an error naming the file and the problem; the file is not touched.
#[test]
fn a_damaged_state_file_stops_start_up_and_is_left_as_it_was() {
    let good = persist::encode(&DurableState::default(), SystemTime::now());
    let mut flipped = good.clone();
    let at = flipped.len() - 33;
    flipped[at] ^= 0x01;
    let mut version = good.clone();
    version[8..12].copy_from_slice(&9u32.to_be_bytes());
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("flipped", flipped, "checksum mismatch"),
        ("truncated", good[..good.len() - 5].to_vec(), "truncated"),
        (
            "magic",
            b"something else entirely".to_vec(),
            "not an mqtt-lab state file",
        ),
        ("version", version, "format version 9 is not supported"),
        (
            "large",
            vec![b'M'; 4096],
            "more than persistence_max_bytes (1000)",
        ),
    ];
    for (name, bytes, problem) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("broker.toml");
        std::fs::write(
            &config,
            "persistence_file = \"state\"\npersistence_max_bytes = 1000\n",
        )
        .unwrap();
        let state = dir.path().join("state");
        std::fs::write(&state, &bytes).unwrap();
        let mut child = Command::new(BIN)
            .args(["broker", "-c"])
            .arg(&config)
            .args(["-l", &format!("127.0.0.1:{}", free_port())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_bounded(&mut child, "the broker with a damaged state file");
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("error: {}: ", state.display())) && stderr.contains(problem),
            "{name}: {stderr}"
        );
        assert_eq!(
            std::fs::read(&state).unwrap(),
            bytes,
            "{name}: file untouched"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{name}: nothing else written: {names:?}");
    }
}
