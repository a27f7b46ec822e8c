//! `mosquitto_pub` and `mosquitto_sub` (processes) exchanging messages through our broker,
//! served in-process on a free loopback port: each QoS in MQTT 3.1.1 and 5.0, QoS downgrade,
//! order of many messages, retained messages and a will.
//!
//! The subscriber runs with `-d` under `stdbuf -oL`, so its debug lines (which show each
//! PUBLISH's QoS and retain flag) arrive as they happen and "received SUBACK" tells the test
//! when to publish. When the clients are not installed the tests are skipped with a message,
//! unless `CI` is set: then that is a failure.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Instant;
use support::{OurBroker, Tools, WAIT, mosquitto_tools as tools, wait_bounded};

/// A running `mosquitto_sub -d`, its stdout read line by line as it comes.
struct Sub {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Sub {
    /// Starts `mosquitto_sub -d -i ID ARGS` and waits until its SUBACK arrived.
    fn start(tools: &Tools, port: u16, id: &str, args: &[&str]) -> Sub {
        let mut child = Command::new(&tools.stdbuf)
            .arg("-oL")
            .arg(&tools.sub)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-d", "-i", id])
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
        sub.wait_for(|l| l.contains("received SUBACK"));
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

    /// Waits for exit (it must have been started with -C) and returns every line printed.
    fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let status = wait_bounded(&mut self.child, "mosquitto_sub");
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mosquitto_pub ARGS` to completion; returns its output (debug lines with `-d`; keep
/// that output small, it is read once the process has exited).
fn publish(tools: &Tools, port: u16, id: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(&tools.publ)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-i", id])
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
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        status.success(),
        "mosquitto_pub {args:?} failed ({status}): {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

/// The `(qos, retain)` of every PUBLISH the subscriber received, from its debug lines.
fn received_publishes(lines: &[String]) -> Vec<(u8, u8)> {
    lines
        .iter()
        .filter(|l| l.contains("received PUBLISH ("))
        .map(|l| {
            let flag = |f: &str| {
                let at = l.find(&format!(", {f}")).expect("flag in debug line") + 3;
                l[at..at + 1].parse::<u8>().unwrap()
            };
            (flag("q"), flag("r"))
        })
        .collect()
}

/// The payload lines (`-v`: `topic payload`), without the debug lines.
fn payload_lines(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed (mid"))
        .cloned()
        .collect()
}

/// [MQTT-3.3.5-1] mosquitto clients exchange messages through our broker at each QoS, in
/// both protocol versions: the publisher's handshakes complete (PUBACK; PUBREC/PUBCOMP) and
/// each subscriber gets min(publish QoS, granted QoS).
#[test]
fn mqtt_3_3_5_1_mosquitto_clients_at_each_qos_in_both_versions() {
    let Some(t) = tools() else { return };
    let broker = OurBroker::start();
    for version in ["mqttv311", "mqttv5"] {
        let topic = format!("qos/{version}");
        let q2 = Sub::start(
            &t,
            broker.port,
            &format!("q2-{version}"),
            &["-t", &topic, "-q", "2", "-v", "-C", "3", "-V", version],
        );
        let q1 = Sub::start(
            &t,
            broker.port,
            &format!("q1-{version}"),
            &["-t", &topic, "-q", "1", "-v", "-C", "3", "-V", version],
        );
        for qos in ["0", "1", "2"] {
            let out = publish(
                &t,
                broker.port,
                &format!("p-{version}-{qos}"),
                &[
                    "-d",
                    "-t",
                    &topic,
                    "-m",
                    &format!("m{qos}"),
                    "-q",
                    qos,
                    "-V",
                    version,
                ],
                None,
            );
            match qos {
                "1" => assert!(out.contains("received PUBACK"), "{out}"),
                "2" => {
                    assert!(out.contains("received PUBREC"), "{out}");
                    assert!(out.contains("received PUBCOMP"), "{out}");
                }
                _ => {}
            }
        }
        let expected: Vec<String> = (0..3).map(|q| format!("{topic} m{q}")).collect();
        let (status, lines) = q2.finish();
        assert!(status.success(), "{lines:?}");
        assert_eq!(payload_lines(&lines), expected);
        assert_eq!(received_publishes(&lines), vec![(0, 0), (1, 0), (2, 0)]);
        let (status, lines) = q1.finish();
        assert!(status.success(), "{lines:?}");
        assert_eq!(payload_lines(&lines), expected);
        assert_eq!(received_publishes(&lines), vec![(0, 0), (1, 0), (1, 0)]);
    }
}

/// [MQTT-4.6.0-6] messages from one publisher on one topic arrive in order: 200 lines of
/// `mosquitto_pub -l -V mqttv5` to a 3.1.1 `mosquitto_sub`, at QoS 1 and 2.
#[test]
fn mqtt_4_6_0_6_many_lines_arrive_in_order_across_versions() {
    let Some(t) = tools() else { return };
    let broker = OurBroker::start();
    let text: String = (0..200).map(|i| format!("line-{i}\n")).collect();
    for qos in ["1", "2"] {
        let topic = format!("order/{qos}");
        let sub = Sub::start(
            &t,
            broker.port,
            &format!("order-sub-{qos}"),
            &["-t", &topic, "-q", qos, "-C", "200", "-V", "mqttv311"],
        );
        publish(
            &t,
            broker.port,
            &format!("order-pub-{qos}"),
            &["-t", &topic, "-l", "-q", qos, "-V", "mqttv5"],
            Some(&text),
        );
        let (status, lines) = sub.finish();
        assert!(status.success());
        let expected: Vec<String> = (0..200).map(|i| format!("line-{i}")).collect();
        assert_eq!(payload_lines(&lines), expected);
    }
}

/// [MQTT-3.3.1-8] (3.1.1) a later `mosquitto_sub` gets a retained message with retain set;
/// [MQTT-3.3.1-10] `mosquitto_pub -r -n` clears it.
#[test]
fn mqtt_3_3_1_8_mosquitto_clients_retained_message() {
    let Some(t) = tools() else { return };
    // 5.0 states the clearing as [MQTT-3.3.1-6].
    let broker = OurBroker::start();
    for version in ["mqttv311", "mqttv5"] {
        let topic = format!("ret/{version}/door");
        publish(
            &t,
            broker.port,
            "ret-pub",
            &["-t", &topic, "-m", "open", "-r", "-q", "1", "-V", version],
            None,
        );
        let sub = Sub::start(
            &t,
            broker.port,
            "ret-sub",
            &["-t", &topic, "-q", "1", "-v", "-C", "1", "-V", version],
        );
        let (status, lines) = sub.finish();
        assert!(status.success());
        assert_eq!(payload_lines(&lines), vec![format!("{topic} open")]);
        assert_eq!(received_publishes(&lines), vec![(1, 1)]);

        publish(
            &t,
            broker.port,
            "ret-clear",
            &["-t", &topic, "-n", "-r", "-q", "1", "-V", version],
            None,
        );
        let filter = format!("ret/{version}/#");
        let sub = Sub::start(
            &t,
            broker.port,
            "ret-sub2",
            &["-t", &filter, "-q", "1", "-v", "-C", "1", "-V", version],
        );
        let marker = format!("ret/{version}/marker");
        publish(
            &t,
            broker.port,
            "ret-marker",
            &["-t", &marker, "-m", "live", "-q", "1", "-V", version],
            None,
        );
        let (_, lines) = sub.finish();
        assert_eq!(
            payload_lines(&lines),
            vec![format!("{marker} live")],
            "the cleared retained message must not be sent"
        );
    }
}

/// [MQTT-3.1.2-8] a `mosquitto_sub` with a will is killed; another one receives the will.
#[test]
fn mqtt_3_1_2_8_will_of_a_killed_mosquitto_client() {
    let Some(t) = tools() else { return };
    let broker = OurBroker::start();
    for version in ["mqttv311", "mqttv5"] {
        let watcher = Sub::start(
            &t,
            broker.port,
            "will-watch",
            &["-t", "wills/#", "-q", "1", "-v", "-C", "1", "-V", version],
        );
        let doomed = Sub::start(
            &t,
            broker.port,
            "will-doomed",
            &[
                "-t",
                "unrelated",
                "-V",
                version,
                "--will-topic",
                "wills/doomed",
                "--will-payload",
                "gone",
                "--will-qos",
                "1",
            ],
        );
        drop(doomed); // SIGKILL: the connection ends without DISCONNECT
        let (status, lines) = watcher.finish();
        assert!(status.success());
        assert_eq!(payload_lines(&lines), vec!["wills/doomed gone".to_string()]);
        assert_eq!(received_publishes(&lines), vec![(1, 0)]);
    }
}
