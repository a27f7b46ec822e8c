//! The built `mqtt-lab broker`'s log, as an operator reads it from a file or a pipe: one line
//! when a client connects (client identifier, peer address, protocol version, keep-alive, clean
//! start, session present, user) and one when its connection closes (with the reason), no
//! colour codes when stderr is not a terminal, JSON lines with `--log-json`; and SIGTERM stops
//! an idle broker.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli_broker_persist::free_port;
use crate::support::{WAIT, wait_bounded};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lab");

/// A 3.1.1 CONNECT: client identifier `logged`, keep-alive 30 s, clean session.
const CONNECT: &[u8] = &[
    0x10, 18, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30, 0, 6, b'l', b'o', b'g', b'g', b'e',
    b'd',
];

/// Runs the broker with `extra` flags and stderr in a file; connects one client, which then
/// vanishes; stops the broker with SIGTERM. Returns the client's address and the log.
fn session(extra: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.log");
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["broker", "-l", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let mut stream = loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            break s;
        }
        assert!(Instant::now() < deadline, "the broker never listened");
        std::thread::sleep(Duration::from_millis(20));
    };
    let client = stream.local_addr().unwrap().to_string();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(CONNECT).unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0], "accepted, no session present");
    drop(stream);
    // The close reaches the broker and is logged before it is stopped.
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(&log).unwrap().contains("closed") {
        assert!(Instant::now() < deadline, "no close in the log");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_bounded(&mut child, "the broker after SIGTERM");
    assert!(exit.success(), "{exit}");
    (client, std::fs::read_to_string(&log).unwrap())
}

#[test]
fn each_connection_is_one_line_when_it_opens_and_one_when_it_closes() {
    let (client, log) = session(&[]);
    assert!(!log.contains('\x1b'), "colour codes in a log file:\n{log}");
    let connected: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("client connected"))
        .collect();
    assert_eq!(connected.len(), 1, "{log}");
    for field in [
        format!("peer={client}"),
        "transport=mqtt".into(),
        "client_id=logged".into(),
        "protocol=3.1.1".into(),
        "keep_alive=30".into(),
        "clean_start=true".into(),
        "session_present=false".into(),
        "user=-".into(),
    ] {
        assert!(connected[0].contains(&field), "{field}: {}", connected[0]);
    }
    let closed: Vec<&str> = log.lines().filter(|l| l.contains("closed")).collect();
    assert_eq!(closed.len(), 1, "{log}");
    assert!(
        closed[0].contains(&format!("peer={client}")) && closed[0].contains("client_id=logged"),
        "{}",
        closed[0]
    );
    assert!(closed[0].contains("cause="), "the reason: {}", closed[0]);
}

#[test]
fn with_log_json_every_line_is_a_json_object() {
    let (client, log) = session(&["--log-json"]);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let connected = lines
        .iter()
        .find(|v| v["fields"]["message"] == "client connected")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(connected["fields"]["client_id"], "logged");
    assert_eq!(connected["fields"]["peer"], client.as_str());
    assert_eq!(connected["fields"]["transport"], "mqtt");
    assert_eq!(connected["fields"]["keep_alive"], 30);
    assert_eq!(connected["level"], "INFO");
}
