//! The built `mqtt-lab broker` with a `persistence_file` (a redb store): a persistent session,
//! its queued message and a retained message survive a clean stop (SIGINT, SIGTERM) and a
//! SIGKILL right after the acknowledgement; downtime counts towards expiry; a damaged store
//! stops start-up with an error naming it and is left as it was; a second broker cannot open a
//! store in use; a state file of the older snapshot format is imported.

use crate::support;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use mqtt_lab::broker::{DurableState, Session};
use mqtt_lab::net::persist;
use mqtt_lab::net::store::disk::OsDisk;
use mqtt_lab::net::store::{Store, StoreOptions};
use rumqttc::{MqttOptions, QoS};
use support::rumq::Rumq;
use support::{WAIT, wait_bounded};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lab");

/// A running `mqtt-lab broker` process.
pub struct BrokerProcess {
    child: Child,
    pub port: u16,
}

impl BrokerProcess {
    /// Starts the broker with `config` on a free loopback port and waits until it accepts.
    fn start(config: &Path) -> BrokerProcess {
        BrokerProcess::start_on(config, free_port())
    }

    /// Starts the broker with `config` on `port` and waits until it accepts.
    pub fn start_on(config: &Path, port: u16) -> BrokerProcess {
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
    pub fn interrupt(self) -> ExitStatus {
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
    pub fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A test that fails leaves no broker running.
impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A configuration file in `dir` keeping the store in `dir/state`, with `extra` lines.
fn config(dir: &Path, extra: &str) -> (PathBuf, PathBuf) {
    let config = dir.join("broker.toml");
    std::fs::write(&config, format!("persistence_file = \"state\"\n{extra}")).unwrap();
    (config, dir.join("state"))
}

/// The state in the store `dir/state` (no broker may hold it).
fn stored(dir: &Path) -> DurableState {
    let (_, recovered) = Store::open(OsDisk::new(dir), "state", StoreOptions::default()).unwrap();
    recovered.state
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
/// retained message published before the restart is sent on a new subscribe.
#[test]
fn mqtt_3_1_2_4_session_queue_and_retained_survive_a_clean_restart() {
    survives_a_restart("INT", "");
}

/// The same 3.1.1 session with SIGTERM, as service managers stop a process, in `interval`
/// persistence.
#[test]
#[cfg(unix)]
fn mqtt_3_1_2_4_session_queue_and_retained_survive_sigterm_in_interval_mode() {
    survives_a_restart("TERM", INTERVAL_1H);
}

/// `interval` persistence syncing every hour.
const INTERVAL_1H: &str = "persistence = \"interval\"\nautosave_interval = \"1h\"\n";

/// [MQTT-4.3.2-2] (3.1.1) Nothing acknowledged is lost when the broker is killed: a message
/// whose PUBACK reached its publisher, and a retained message, are there after a SIGKILL that
/// came right after the acknowledgement (no clean stop, no interval to wait).
#[test]
fn mqtt_4_3_2_2_acknowledged_messages_survive_sigkill() {
    survives_a_restart("KILL", "");
}

/// The weaker `interval` persistence loses what was acknowledged since its last sync when the
/// broker is killed: the reason `durable` is the default.
#[test]
#[should_panic(expected = "the session survived the restart")]
fn interval_persistence_loses_acknowledged_messages_on_sigkill() {
    survives_a_restart("KILL", INTERVAL_1H);
}

fn survives_a_restart(signal: &str, extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path(), extra);
    let broker = BrokerProcess::start(&config);
    let port = broker.port;
    runtime().block_on(async {
        assert!(!subscribe_and_leave(port, "keeper", "persist/q").await);
        let (mut publ, _) = Rumq::connect(port, "writer", |_| {}).await;
        publ.publish("persist/q", QoS::AtLeastOnce, false, "queued while away")
            .await;
        publ.publish("persist/r", QoS::AtLeastOnce, true, "kept")
            .await;
    });
    if signal == "KILL" {
        broker.crash();
    } else {
        let status = broker.signal(signal);
        assert!(status.success(), "clean stop: {status}");
    }

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

/// The downtime counts towards session expiry (5.0 section 3.1.2.11.2): a persistent session
/// with 3 s left at the stop is gone after 4 s of downtime, even when its client comes back at
/// once after the restart (3.1.1 sessions expire after `max_session_expiry`).
#[test]
fn downtime_counts_towards_session_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path(), "[broker]\nmax_session_expiry = \"3s\"\n");
    let broker = BrokerProcess::start(&config);
    let port = broker.port;
    runtime().block_on(subscribe_and_leave(port, "brief", "expiry/q"));
    assert!(broker.interrupt().success());
    assert!(
        stored(dir.path()).sessions.contains_key("brief"),
        "stored while not expired"
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

/// Runs the broker on `config` until it exits; its exit code and what it wrote to stderr.
fn start_up_failure(config: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(["broker", "-c"])
        .arg(config)
        .args(["-l", &format!("127.0.0.1:{}", free_port())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, "the broker that cannot start");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

/// A store whose bytes are damaged, or a file that is not a store, stops start-up with exit
/// code 1 and an error naming the file and the problem; the file is not touched.
#[test]
fn a_damaged_store_stops_start_up_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (config, state) = config(dir.path(), "");
    let broker = BrokerProcess::start(&config);
    runtime().block_on(subscribe_and_leave(broker.port, "keeper", "damage/#"));
    assert!(broker.interrupt().success());
    let good = std::fs::read(&state).unwrap();
    let mut flipped = good.clone();
    for i in (0..flipped.len()).step_by(97) {
        flipped[i] ^= 0x5a;
    }
    for (name, bytes) in [
        ("flipped", flipped),
        ("not a store", b"something else entirely".to_vec()),
    ] {
        std::fs::write(&state, &bytes).unwrap();
        let (code, stderr) = start_up_failure(&config);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains("error: ")
                && stderr.contains("/state: the store is damaged")
                && stderr.contains("it was left as it was"),
            "{name}: {stderr}"
        );
        assert_eq!(
            std::fs::read(&state).unwrap(),
            bytes,
            "{name}: file untouched"
        );
    }
}

/// One broker per store: a second broker on the same store stops with exit code 1 and says who
/// holds it; the first one keeps serving.
#[test]
fn a_second_broker_cannot_open_a_store_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path(), "");
    let first = BrokerProcess::start(&config);
    let (code, stderr) = start_up_failure(&config);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("in use by another broker"), "{stderr}");
    runtime().block_on(subscribe_and_leave(first.port, "still", "here/#"));
    assert!(first.interrupt().success());
}

/// A state file of the older snapshot format (`MQLSTATE`) is imported into a new store at
/// start-up, its sessions resumed; the old file is kept beside it as `state.mqlstate`.
#[test]
fn a_state_file_of_the_snapshot_format_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let (config, state) = config(dir.path(), "");
    let old = DurableState {
        sessions: [("veteran".to_owned(), Session::new(u32::MAX))].into(),
        ..DurableState::default()
    };
    let bytes = persist::encode(&old, SystemTime::now());
    std::fs::write(&state, &bytes).unwrap();
    let broker = BrokerProcess::start(&config);
    runtime().block_on(async {
        let (sub, ack) = Rumq::connect(broker.port, "veteran", persistent).await;
        assert!(ack.session_present, "the imported session is resumed");
        sub.disconnect().await;
    });
    assert!(broker.interrupt().success());
    assert_eq!(
        std::fs::read(dir.path().join("state.mqlstate")).unwrap(),
        bytes,
        "the old file is kept"
    );
    assert!(stored(dir.path()).sessions.contains_key("veteran"));
}
