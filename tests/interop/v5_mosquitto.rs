//! `mosquitto_pub` and `mosquitto_sub` (processes) speaking MQTT 5.0 (`-V mqttv5`) through our
//! broker, served in-process on a free loopback port: PUBLISH properties set with `-D publish`
//! arrive unchanged (read back with `mosquitto_sub -F`), message expiry of queued messages,
//! session expiry with `-x`, subscription identifiers, topic aliases from the publisher and
//! will properties.
//!
//! The subscriber runs with `-d` under `stdbuf -oL`, so "received SUBACK" tells the test when
//! to publish; each message is printed by `-F` on one line starting with `MSG|`. When the
//! clients are not installed the tests are skipped with a message, unless `CI` is set: then
//! that is a failure.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{OurBroker, Tools, WAIT, mosquitto_tools as tools, wait_bounded};

/// A running `mosquitto_sub -d -V mqttv5 -F 'MSG|…'`, its stdout read line by line.
struct Sub {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Sub {
    /// Starts `mosquitto_sub -d -V mqttv5 -i ID -F 'MSG|FORMAT' ARGS` and waits for its SUBACK
    /// or, for a resumed session, a first message (which may come before the SUBACK).
    fn start(tools: &Tools, port: u16, id: &str, format: &str, args: &[&str]) -> Sub {
        let mut child = Command::new(&tools.stdbuf)
            .arg("-oL")
            .arg(&tools.sub)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-d"])
            .args(["-V", "mqttv5", "-i", id, "-F", &format!("MSG|{format}")])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mosquitto_sub");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut sub = Sub {
            child,
            lines,
            seen: Vec::new(),
        };
        sub.wait_for(|l| l.contains("received SUBACK") || l.starts_with("MSG|"));
        sub
    }

    /// Reads lines until one matches.
    fn wait_for(&mut self, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!("mosquitto_sub: expected line not seen; got {:?}", self.seen),
            }
        }
    }

    /// Waits for exit (it must have been started with -C or -E) and returns the exit status
    /// and the `MSG|` lines, without the prefix.
    fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let status = wait_bounded(&mut self.child, "mosquitto_sub");
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            self.seen.push(line);
        }
        let msgs = self
            .seen
            .iter()
            .filter_map(|l| l.strip_prefix("MSG|"))
            .map(str::to_owned)
            .collect();
        (status, msgs)
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mosquitto_pub -V mqttv5 ARGS` to completion and checks that it succeeded.
fn publish(tools: &Tools, port: u16, id: &str, args: &[&str], stdin: Option<&str>) {
    let mut child = Command::new(&tools.publ)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-i", id])
        .args(["-V", "mqttv5"])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mosquitto_pub");
    if let Some(text) = stdin {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(text.as_bytes()).unwrap();
    }
    let status = wait_bounded(&mut child, "mosquitto_pub");
    let output = child.wait_with_output().unwrap();
    assert!(
        status.success(),
        "mosquitto_pub {args:?} failed ({status}): {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18]
/// [MQTT-3.3.2-20] content type, response topic, correlation data, payload format indicator
/// and user properties (in order, a repeated key kept) set with `mosquitto_pub -D publish`
/// reach a 5.0 `mosquitto_sub` unchanged, at each QoS.
#[test]
fn mqtt_3_3_2_17_mosquitto_v5_publish_properties_arrive_unchanged() {
    let Some(t) = tools() else { return };
    let broker = OurBroker::start();
    let sub = Sub::start(
        &t,
        broker.port,
        "v5m-props-sub",
        "%t|%q|%F|%C|%R|%D|%P|%p",
        &["-t", "props/#", "-q", "2", "-C", "3"],
    );
    for qos in ["0", "1", "2"] {
        publish(
            &t,
            broker.port,
            &format!("v5m-props-pub-{qos}"),
            &[
                "-t",
                "props/x",
                "-q",
                qos,
                "-m",
                &format!("payload-{qos}"),
                "-D",
                "publish",
                "content-type",
                "text/plain; charset=utf-8",
                "-D",
                "publish",
                "response-topic",
                "props/reply",
                "-D",
                "publish",
                "correlation-data",
                "corr-42",
                "-D",
                "publish",
                "payload-format-indicator",
                "1",
                "-D",
                "publish",
                "user-property",
                "k",
                "v1",
                "-D",
                "publish",
                "user-property",
                "other",
                "x y",
                "-D",
                "publish",
                "user-property",
                "k",
                "v2",
            ],
            None,
        );
    }
    let (status, msgs) = sub.finish();
    assert!(status.success(), "{msgs:?}");
    let expected: Vec<String> = (0..3)
        .map(|q| {
            format!(
                "props/x|{q}|1|text/plain; charset=utf-8|props/reply|corr-42|k:v1 other:x y k:v2|payload-{q}"
            )
        })
        .collect();
    assert_eq!(msgs, expected);
}

/// [MQTT-3.3.2-5] a message whose expiry passes while it is queued for an offline persistent
/// session (`-c -x 3600`) is not delivered; [MQTT-3.3.2-6] the other one arrives with the
/// remaining interval (`%E`, at most what was published, more than 0).
#[test]
fn mqtt_3_3_2_5_mosquitto_v5_message_expiry_while_queued() {
    let Some(t) = tools() else { return };
    let broker = OurBroker::start();
    let persistent = ["-c", "-x", "3600", "-t", "mexp/#", "-q", "1"];
    let (status, _) = Sub::start(
        &t,
        broker.port,
        "v5m-mexp-sub",
        "%t",
        &[&persistent[..], &["-E"]].concat(),
    )
    .finish();
    assert!(status.success());
    for (topic, expiry) in [("mexp/short", "1"), ("mexp/long", "3600")] {
        publish(
            &t,
            broker.port,
            "v5m-mexp-pub",
            &[
                "-t",
                topic,
                "-q",
                "1",
                "-m",
                topic,
                "-D",
                "publish",
                "message-expiry-interval",
                expiry,
            ],
            None,
        );
    }
    // Longer than the short interval (the broker counts whole seconds, rounded up).
    std::thread::sleep(Duration::from_millis(2500));
    let (status, msgs) = Sub::start(
        &t,
        broker.port,
        "v5m-mexp-sub",
        "%t|%E",
        &[&persistent[..], &["-C", "1"]].concat(),
    )
    .finish();
    assert!(status.success(), "{msgs:?}");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let (topic, left) = msgs[0].split_once('|').unwrap();
    assert_eq!(
        topic, "mexp/long",
        "the expired message must not be delivered"
    );
    let left: u32 = left.parse().expect("%E: the remaining interval is sent on");
    assert!((1..=3600).contains(&left), "remaining interval {left}");
}

/// [MQTT-3.1.2-23] a persistent session with `-x 3600` keeps its subscription and receives
/// what was published while it was away; with `-x 0` the session ends with the connection
/// and a marker published after the message is the first thing it gets.
#[test]
fn mqtt5_3_1_2_23_mosquitto_v5_session_expiry_interval() {
    let Some(t) = tools() else { return };
    let broker = OurBroker::start();
    for (expiry, kept) in [("3600", true), ("0", false)] {
        let id = format!("v5m-sx-{expiry}");
        let topic = format!("sx/{expiry}");
        let args = ["-c", "-x", expiry, "-t", &topic, "-q", "1"];
        let (status, _) =
            Sub::start(&t, broker.port, &id, "%p", &[&args[..], &["-E"]].concat()).finish();
        assert!(status.success());
        publish(
            &t,
            broker.port,
            "v5m-sx-pub",
            &["-t", &topic, "-q", "1", "-m", "while-away"],
            None,
        );
        let sub = Sub::start(
            &t,
            broker.port,
            &id,
            "%p",
            &[&args[..], &["-C", "1"]].concat(),
        );
        publish(
            &t,
            broker.port,
            "v5m-sx-pub",
            &["-t", &topic, "-q", "1", "-m", "marker"],
            None,
        );
        let (status, msgs) = sub.finish();
        assert!(status.success());
        let first = if kept { "while-away" } else { "marker" };
        assert_eq!(msgs, vec![first.to_string()], "session expiry {expiry}");
    }
}

/// [MQTT-3.3.4-3] a subscription identifier given with `-D subscribe subscription-identifier`
/// comes back with each matching message (`%S`).
#[test]
fn mqtt_3_3_4_3_mosquitto_v5_subscription_identifier() {
    let Some(t) = tools() else { return };
    let broker = OurBroker::start();
    let sub = Sub::start(
        &t,
        broker.port,
        "v5m-sid-sub",
        "%t|%S",
        &[
            "-t",
            "sid/#",
            "-q",
            "1",
            "-C",
            "2",
            "-D",
            "subscribe",
            "subscription-identifier",
            "4242",
        ],
    );
    for topic in ["sid/a", "sid/b/c"] {
        publish(
            &t,
            broker.port,
            "v5m-sid-pub",
            &["-t", topic, "-m", "x"],
            None,
        );
    }
    let (status, msgs) = sub.finish();
    assert!(status.success());
    assert_eq!(msgs, vec!["sid/a|4242", "sid/b/c|4242"]);
}

/// [MQTT-3.3.2-12] `mosquitto_pub -l -D publish topic-alias 1` (the topic with the alias
/// once, then the alias alone, on one connection) reaches a 5.0 subscriber with the full
/// topic and no alias (`%A` empty: it allows none).
///
/// Not checked here: the broker's own outbound aliases towards `mosquitto_sub -D connect
/// topic-alias-maximum N`; libmosquitto 2.0.11 treats the alias-only PUBLISH that follows as a
/// protocol error, while rumqttc accepts it (see `interop_v5_rumqttc.rs`).
#[test]
fn mqtt_3_3_2_12_mosquitto_v5_topic_alias_from_publisher() {
    let Some(t) = tools() else { return };
    let broker = OurBroker::start();
    let plain = Sub::start(
        &t,
        broker.port,
        "v5m-ta-plain",
        "%t|%A|%p",
        &["-t", "alias/#", "-q", "1", "-C", "3"],
    );
    publish(
        &t,
        broker.port,
        "v5m-ta-pub",
        &[
            "-t",
            "alias/some/long/topic",
            "-q",
            "1",
            "-l",
            "-D",
            "publish",
            "topic-alias",
            "1",
        ],
        Some("l1\nl2\nl3\n"),
    );
    let (status, msgs) = plain.finish();
    assert!(status.success(), "{msgs:?}");
    let expected: Vec<String> = (1..=3)
        .map(|i| format!("alias/some/long/topic||l{i}"))
        .collect();
    assert_eq!(msgs, expected);
}

/// [MQTT-3.1.3-9] [MQTT-3.3.2-17] the will of a killed 5.0 `mosquitto_sub`, with user
/// property and content type set by `-D will`, reaches a watcher with its properties.
#[test]
fn mqtt_3_1_2_8_mosquitto_v5_will_properties_arrive_unchanged() {
    let Some(t) = tools() else { return };
    let broker = OurBroker::start();
    let watcher = Sub::start(
        &t,
        broker.port,
        "v5m-will-watch",
        "%t|%C|%P|%p",
        &["-t", "wills/#", "-q", "1", "-C", "1"],
    );
    let doomed = Sub::start(
        &t,
        broker.port,
        "v5m-will-doomed",
        "%p",
        &[
            "-t",
            "unrelated",
            "--will-topic",
            "wills/doomed",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
            "-D",
            "will",
            "user-property",
            "why",
            "killed",
            "-D",
            "will",
            "content-type",
            "text/plain",
        ],
    );
    drop(doomed); // SIGKILL: the connection ends without DISCONNECT
    let (status, msgs) = watcher.finish();
    assert!(status.success());
    assert_eq!(msgs, vec!["wills/doomed|text/plain|why:killed|gone"]);
}
