//! The built `mqtt-lab` binary's `pub` and `sub` against our broker, served in-process on a
//! free loopback port: output formats (`-v`, `-N`, `(null)`), `-C`, `-l`, `-n`, `-r`, `-R`, the
//! protocol versions, the will, and the exit codes (timeout, usage, unreachable broker).
//!
//! `sub` runs with `-d`; its "received SUBACK" line on stderr tells the test when to publish.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{OurBroker, WAIT};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lab");

struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

/// Waits for a child with a bound, reading both pipes on threads; kills it if the bound passes.
fn finish(mut child: Child, what: &str) -> Finished {
    let stdout = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            v
        })
    });
    let stderr = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut v = String::new();
            let _ = s.read_to_string(&mut v);
            v
        })
    });
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`mqtt-lab {what}` did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Finished {
        status,
        stdout: stdout.map(|t| t.join().unwrap()).unwrap_or_default(),
        stderr: stderr.map(|t| t.join().unwrap()).unwrap_or_default(),
    }
}

/// Runs `mqtt-lab ARGS` to completion, with `stdin` as its input.
fn run(args: &[&str], stdin: &str) -> Finished {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    finish(child, args[0])
}

fn pub_ok(broker: &OurBroker, args: &[&str], stdin: &str) {
    let port = broker.port.to_string();
    let mut full = vec!["pub", "-h", "127.0.0.1", "-p", &port];
    full.extend_from_slice(args);
    let f = run(&full, stdin);
    assert!(
        f.status.success(),
        "pub {args:?}: {:?} {}",
        f.status,
        f.stderr
    );
}

/// `mqtt-lab sub -d ARGS`, started and subscribed.
struct Sub {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Sub {
    fn start(broker: &OurBroker, args: &[&str]) -> Sub {
        let mut child = Command::new(BIN)
            .args([
                "sub",
                "-d",
                "-h",
                "127.0.0.1",
                "-p",
                &broker.port.to_string(),
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut seen = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            match stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains("received SUBACK") => break,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("`mqtt-lab sub {args:?}` never subscribed: {seen:?}");
                }
            }
        }
        Sub { child, stderr }
    }

    /// Waits for the tool to exit on its own (`-C`, `-W`).
    fn finish(self) -> Finished {
        let Sub { child, stderr } = self;
        let mut f = finish(child, "sub");
        f.stderr = stderr.try_iter().collect::<Vec<_>>().join("\n");
        f
    }
}

#[test]
fn sub_count_and_verbose_print_topic_and_payload_then_exit_0() {
    let b = OurBroker::start();
    let sub = Sub::start(&b, &["-t", "cli/+", "-C", "2", "-v"]);
    pub_ok(&b, &["-t", "cli/a", "-m", "first"], "");
    pub_ok(&b, &["-t", "cli/b", "-m", "second", "-q", "1"], "");
    let f = sub.finish();
    assert!(f.status.success(), "{:?} {}", f.status, f.stderr);
    assert_eq!(f.stdout, b"cli/a first\ncli/b second\n");
}

#[test]
fn pub_lines_sends_one_message_per_line_including_empty_ones() {
    let b = OurBroker::start();
    for (qos, version) in [("1", "mqttv311"), ("2", "mqttv5"), ("0", "mqttv31")] {
        let sub = Sub::start(&b, &["-t", "lines", "-C", "3", "-q", qos, "-V", version]);
        pub_ok(
            &b,
            &["-t", "lines", "-l", "-q", qos, "-V", version],
            "a\n\nc\n",
        );
        let f = sub.finish();
        assert!(f.status.success(), "{}", f.stderr);
        assert_eq!(f.stdout, b"a\n\nc\n", "QoS {qos} {version}");
    }
}

#[test]
fn pub_null_message_shows_as_null_with_verbose_and_no_newline_with_n() {
    let b = OurBroker::start();
    let sub = Sub::start(&b, &["-t", "n/#", "-C", "2", "-v", "-N"]);
    pub_ok(&b, &["-t", "n/empty", "-n"], "");
    pub_ok(&b, &["-t", "n/full", "-m", "x"], "");
    let f = sub.finish();
    assert_eq!(f.stdout, b"n/empty (null)n/full x");
}

#[test]
fn pub_file_and_stdin_file_send_whole_contents_as_one_message() {
    let b = OurBroker::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload.bin");
    std::fs::write(&path, b"two\nlines").unwrap();
    let sub = Sub::start(&b, &["-t", "file", "-C", "2", "-q", "1"]);
    pub_ok(
        &b,
        &["-t", "file", "-f", path.to_str().unwrap(), "-q", "1"],
        "",
    );
    pub_ok(&b, &["-t", "file", "-s", "-q", "1"], "from\nstdin");
    let f = sub.finish();
    assert_eq!(f.stdout, b"two\nlines\nfrom\nstdin\n");
}

/// [MQTT-3.3.1-8] (3.1.1) `pub -r` is seen by a later `sub` (and skipped by `sub -R`);
/// `pub -r -n` clears it, so a later `sub -W 1` times out with exit code 27 and prints nothing.
#[test]
fn mqtt_3_3_1_8_retain_flag_stale_filter_clear_and_timeout_exit_code() {
    let b = OurBroker::start();
    pub_ok(&b, &["-t", "ret/t", "-m", "kept", "-r", "-q", "1"], "");
    let sub = Sub::start(&b, &["-t", "ret/#", "-C", "1", "-v"]);
    let f = sub.finish();
    assert!(f.status.success());
    assert_eq!(f.stdout, b"ret/t kept\n");

    let sub = Sub::start(&b, &["-t", "ret/#", "-C", "1", "-R"]);
    pub_ok(&b, &["-t", "ret/t", "-m", "live"], "");
    let f = sub.finish();
    assert!(f.status.success());
    assert_eq!(f.stdout, b"live\n", "-R must skip the retained message");

    pub_ok(&b, &["-t", "ret/t", "-n", "-r", "-q", "1"], "");
    let f = run(
        &[
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &b.port.to_string(),
            "-t",
            "ret/#",
            "-W",
            "1",
        ],
        "",
    );
    assert_eq!(f.status.code(), Some(27), "{}", f.stderr);
    assert!(f.stdout.is_empty(), "{:?}", f.stdout);
    assert!(f.stderr.contains("timed out"), "{}", f.stderr);
}

/// [MQTT-3.1.2-8] the will given with `--will-*` is published when the tool is killed.
#[test]
fn mqtt_3_1_2_8_will_flags_publish_a_will_when_the_tool_dies() {
    let b = OurBroker::start();
    let watcher = Sub::start(&b, &["-t", "wills/#", "-C", "1", "-v", "-q", "1"]);
    let mut doomed = Sub::start(
        &b,
        &[
            "-t",
            "x",
            "--will-topic",
            "wills/tool",
            "--will-payload",
            "bye",
            "--will-qos",
            "1",
            "-V",
            "mqttv5",
        ],
    );
    doomed.child.kill().unwrap();
    let _ = doomed.child.wait();
    let f = watcher.finish();
    assert!(f.status.success());
    assert_eq!(f.stdout, b"wills/tool bye\n");
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    for (args, needle) in [
        (&["pub", "--bogus"][..], "--bogus"),
        (&["pub", "-t", "a"][..], "--message"),
        (&["sub", "-t", "a", "-q", "3"][..], "invalid QoS"),
        (&["sub", "-t", "a", "-V", "mqttv4"][..], "mqttv311"),
        (&["sub", "-t", "a/#/b"][..], "invalid topic filter"),
        (&["pub", "-t", "a/+", "-m", "x"][..], "invalid topic"),
        (
            &["pub", "-t", "a", "-m", "x", "--will-payload", "p"][..],
            "--will-topic",
        ),
        (&["sub", "-t", "a", "-c"][..], "-i"),
    ] {
        let f = run(args, "");
        assert_eq!(f.status.code(), Some(2), "{args:?}: {}", f.stderr);
        assert!(f.stderr.contains(needle), "{args:?}: {}", f.stderr);
    }
}

#[test]
fn help_lists_mosquitto_flags_and_exits_0() {
    let f = run(&["sub", "--help"], "");
    assert!(f.status.success());
    let text = String::from_utf8(f.stdout).unwrap();
    for flag in [
        "-h, --host",
        "-p, --port",
        "-C, --count",
        "-W, --timeout",
        "-V, --protocol-version",
    ] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
}

#[test]
fn unreachable_broker_exits_4() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let f = run(
        &["pub", "-h", "127.0.0.1", "-p", &port, "-t", "a", "-m", "x"],
        "",
    );
    assert_eq!(f.status.code(), Some(4), "{}", f.stderr);
    assert!(f.stderr.contains("cannot connect"), "{}", f.stderr);
    let f = run(&["sub", "-h", "127.0.0.1", "-p", &port, "-t", "a"], "");
    assert_eq!(f.status.code(), Some(4), "{}", f.stderr);
}
