//! Our client (the library and the `pub`/`sub` command functions) against the real `mosquitto`
//! broker, started by each test on a free loopback port and killed at the end.
//!
//! When `mosquitto` is not installed the tests are skipped with a message, unless `CI` is set:
//! then a missing broker is a failure.

use std::io::Write;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use mqtt_lab::cli::pubsub::{
    EXIT_REFUSED, EXIT_TIMEOUT, PubArgs, SubArgs, SubHooks, publish, subscribe,
};
use mqtt_lab::cli::{Cli, Command as CliCommand};
use mqtt_lab::client::{ClientConfig, ClientEvent};
use mqtt_lab::codec::{LastWill, Packet, Protocol, Publish, QoS, ReasonCode};
use mqtt_lab::net::client::{ClientOptions, Events, MqttClient, Wire, subscription};

const WAIT: Duration = Duration::from_secs(10);

/// A `mosquitto` process on loopback, killed on drop.
struct Mosquitto {
    child: Child,
    /// Anonymous clients allowed.
    port: u16,
    /// Anonymous clients refused (CONNACK "not authorized").
    closed_port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_mosquitto() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts mosquitto, or returns `None` (skip) when it is not installed and `CI` is unset.
fn start_mosquitto() -> Option<Mosquitto> {
    start_mosquitto_with("")
}

/// [`start_mosquitto`] with `settings` (configuration lines) for the anonymous listener.
fn start_mosquitto_with(settings: &str) -> Option<Mosquitto> {
    let Some(bin) = find_mosquitto() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "`mosquitto` is not installed, and CI is set: install the Debian package `mosquitto`"
            );
        }
        eprintln!("SKIPPED: `mosquitto` is not installed (Debian package `mosquitto`)");
        return None;
    };
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let (port, closed_port) = (free_port(), free_port());
        let conf = dir.path().join("mosquitto.conf");
        let mut f = std::fs::File::create(&conf).unwrap();
        writeln!(
            f,
            "per_listener_settings true\npersistence false\nset_tcp_nodelay true\n\
             listener {port} 127.0.0.1\nallow_anonymous true\n{settings}\n\
             listener {closed_port} 127.0.0.1\nallow_anonymous false\n"
        )
        .unwrap();
        drop(f);
        let mut child = Command::new(&bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break; // a port was taken meanwhile: try others
            }
            let up = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
            if up(port) && up(closed_port) {
                return Some(Mosquitto {
                    child,
                    port,
                    closed_port,
                    _dir: dir,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("mosquitto did not start listening");
}

fn config(id: &str, protocol: Protocol) -> ClientConfig {
    let mut c = ClientConfig {
        protocol,
        client_id: id.into(),
        ..ClientConfig::default()
    };
    c.reconnect.enabled = false;
    c
}

async fn start(port: u16, config: ClientConfig) -> (MqttClient, Events, bool) {
    let (client, mut events) =
        MqttClient::start(ClientOptions::new(format!("127.0.0.1:{port}"), config)).unwrap();
    let present = loop {
        match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(ClientEvent::Connected {
                session_present, ..
            })) => break session_present,
            Ok(Some(_)) => continue,
            other => panic!("no CONNACK from mosquitto: {other:?}"),
        }
    };
    (client, events, present)
}

async fn next_message(events: &mut Events) -> Publish {
    loop {
        match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(ClientEvent::Message(p))) => return p,
            Ok(Some(_)) => continue,
            other => panic!("no message: {other:?}"),
        }
    }
}

fn versions() -> [Protocol; 2] {
    [Protocol::V3_1_1, Protocol::V5]
}

/// [MQTT-3.3.5-1] mosquitto delivers at min(publish QoS, granted QoS), and our QoS 1/2
/// handshakes with it complete (PUBACK; PUBREC/PUBREL/PUBCOMP).
#[tokio::test]
async fn mqtt_3_3_5_1_each_qos_through_mosquitto_in_both_versions() {
    let Some(m) = start_mosquitto() else { return };
    for protocol in versions() {
        let (sub, mut sev, _) = start(m.port, config(&format!("qsub-{protocol}"), protocol)).await;
        let granted = sub
            .subscribe(vec![
                subscription("lab/q2/#", QoS::ExactlyOnce),
                subscription("lab/q1/#", QoS::AtLeastOnce),
            ])
            .await
            .unwrap();
        assert_eq!(
            granted,
            vec![ReasonCode::GrantedQoS2, ReasonCode::GrantedQoS1]
        );
        let (publ, _pev, _) = start(m.port, config(&format!("qpub-{protocol}"), protocol)).await;
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            for (filter, granted) in [("q2", QoS::ExactlyOnce), ("q1", QoS::AtLeastOnce)] {
                let topic = format!("lab/{filter}/x");
                let payload = format!("{protocol}-{qos:?}-{filter}");
                let reason = publ
                    .publish(topic.clone(), payload.clone(), qos, false)
                    .await
                    .unwrap();
                assert!(!reason.is_error(), "{reason:?}");
                let got = next_message(&mut sev).await;
                assert_eq!(got.topic, topic);
                assert_eq!(&got.payload[..], payload.as_bytes());
                assert_eq!(got.qos, qos.min(granted), "{payload}");
                assert!(!got.retain);
            }
        }
        publ.disconnect(ReasonCode::Success).await;
        sub.disconnect(ReasonCode::Success).await;
    }
}

/// [MQTT-3.3.1-8] (3.1.1) a retained message is sent to a later subscriber with retain set;
/// [MQTT-3.3.1-10] an empty retained payload removes it.
#[tokio::test]
async fn mqtt_3_3_1_8_retained_messages_through_mosquitto() {
    let Some(m) = start_mosquitto() else { return };
    // 5.0 states the removal as [MQTT-3.3.1-6].
    for protocol in versions() {
        let topic = format!("status/{}", protocol.level());
        let (publ, _pev, _) = start(m.port, config(&format!("rpub-{protocol}"), protocol)).await;
        publ.publish(topic.clone(), "on", QoS::AtLeastOnce, true)
            .await
            .unwrap();

        let (late, mut lev, _) =
            start(m.port, config(&format!("rlate-{protocol}"), protocol)).await;
        late.subscribe(vec![subscription(topic.clone(), QoS::AtLeastOnce)])
            .await
            .unwrap();
        let got = next_message(&mut lev).await;
        assert!(got.retain, "retained copy must carry retain=1");
        assert_eq!(&got.payload[..], b"on");

        publ.publish(topic.clone(), "", QoS::AtLeastOnce, true)
            .await
            .unwrap();
        // The live clearing message reaches the existing subscriber (retain 0 in 3.1.1 and
        // in 5.0 without retain-as-published).
        let cleared = next_message(&mut lev).await;
        assert!(cleared.payload.is_empty());

        let (later, mut lev2, _) =
            start(m.port, config(&format!("rlater-{protocol}"), protocol)).await;
        later
            .subscribe(vec![subscription(topic.clone(), QoS::AtLeastOnce)])
            .await
            .unwrap();
        publ.publish(topic.clone(), "live", QoS::AtLeastOnce, false)
            .await
            .unwrap();
        let first = next_message(&mut lev2).await;
        assert_eq!(
            (&first.payload[..], first.retain),
            (&b"live"[..], false),
            "the cleared retained message must not be sent"
        );
        for c in [publ, late, later] {
            c.disconnect(ReasonCode::Success).await;
        }
    }
}

/// [MQTT-3.1.2-8] the will is published when the network connection closes without
/// DISCONNECT; [MQTT-3.1.2-10] it is discarded on DISCONNECT.
#[tokio::test]
async fn mqtt_3_1_2_8_will_through_mosquitto_when_our_connection_is_cut() {
    let Some(m) = start_mosquitto() else { return };
    for protocol in versions() {
        let (watcher, mut wev, _) =
            start(m.port, config(&format!("watch-{protocol}"), protocol)).await;
        watcher
            .subscribe(vec![subscription("wills/#", QoS::AtLeastOnce)])
            .await
            .unwrap();
        let with_will = |id: &str| {
            let mut c = config(id, protocol);
            c.will = Some(LastWill {
                topic: format!("wills/{id}"),
                payload: "gone".into(),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Default::default(),
            });
            c
        };

        // A clean DISCONNECT: no will.
        let polite_id = format!("polite-{}", protocol.level());
        let (polite, _pe, _) = start(m.port, with_will(&polite_id)).await;
        polite.disconnect(ReasonCode::Success).await;

        // A cut: the will.
        let doomed_id = format!("doomed-{}", protocol.level());
        let mut opts = ClientOptions::new(format!("127.0.0.1:{}", m.port), with_will(&doomed_id));
        let link = opts.link.clone();
        opts.seed = 3;
        let (_doomed, mut dev) = MqttClient::start(opts).unwrap();
        loop {
            match tokio::time::timeout(WAIT, dev.recv()).await {
                Ok(Some(ClientEvent::Connected { .. })) => break,
                Ok(Some(_)) => {}
                other => panic!("no CONNACK: {other:?}"),
            }
        }
        link.cut();
        let got = next_message(&mut wev).await;
        assert_eq!(
            got.topic,
            format!("wills/{doomed_id}"),
            "the first will seen must be the cut client's, never the polite one's"
        );
        assert_eq!(&got.payload[..], b"gone");
        assert_eq!(got.qos, QoS::AtLeastOnce);
        watcher.disconnect(ReasonCode::Success).await;
    }
}

/// [MQTT-3.1.2-4] (3.1.1) with clean session 0 mosquitto keeps the subscription and queues
/// QoS 1 messages while we are away; [MQTT-3.2.2-2] CONNACK then says session present.
#[tokio::test]
async fn mqtt_3_1_2_4_persistent_session_with_mosquitto() {
    let Some(m) = start_mosquitto() else { return };
    // 5.0 states the rules as [MQTT-3.1.2-5] and [MQTT-3.2.2-3].
    for protocol in versions() {
        let mut cfg = config(&format!("sleepy-{}", protocol.level()), protocol);
        cfg.clean_start = false;
        if protocol.is_v5() {
            cfg.session_expiry = Some(300);
        }
        let (sub, _sev, _) = start(m.port, cfg.clone()).await;
        sub.subscribe(vec![subscription("queue/#", QoS::AtLeastOnce)])
            .await
            .unwrap();
        sub.disconnect(ReasonCode::Success).await;

        let (publ, _pev, _) = start(m.port, config(&format!("busy-{protocol}"), protocol)).await;
        for i in 0..3 {
            publ.publish("queue/n", format!("m{i}"), QoS::AtLeastOnce, false)
                .await
                .unwrap();
        }
        let (sub, mut sev, present) = start(m.port, cfg).await;
        assert!(present, "session present after resuming");
        for i in 0..3 {
            let got = next_message(&mut sev).await;
            assert_eq!(&got.payload[..], format!("m{i}").as_bytes());
        }
        sub.disconnect(ReasonCode::Success).await;
        publ.disconnect(ReasonCode::Success).await;
    }
}

fn pub_args<S: AsRef<str>>(argv: &[S]) -> PubArgs {
    let mut full = vec!["mqtt-lab", "pub"];
    full.extend(argv.iter().map(AsRef::as_ref));
    match Cli::try_parse_from(full).unwrap().command {
        CliCommand::Pub(a) => a,
        other => panic!("{other:?}"),
    }
}

fn sub_args<S: AsRef<str>>(argv: &[S]) -> SubArgs {
    let mut full = vec!["mqtt-lab", "sub"];
    full.extend(argv.iter().map(AsRef::as_ref));
    match Cli::try_parse_from(full).unwrap().command {
        CliCommand::Sub(a) => a,
        other => panic!("{other:?}"),
    }
}

/// What a `sub` task ends with: its output and its result.
type SubTask = tokio::task::JoinHandle<(Vec<u8>, Result<(), mqtt_lab::cli::pubsub::ToolError>)>;

/// Runs `sub` in a task; returns its output and result once it ends, after `ready`.
fn spawn_sub(args: SubArgs) -> (tokio::sync::oneshot::Receiver<()>, SubTask) {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut out = Vec::new();
        let hooks = SubHooks {
            subscribed: Some(ready_tx),
            stop: None,
        };
        let r = subscribe(&args, &mut out, hooks).await;
        (out, r)
    });
    (ready_rx, task)
}

fn no_stdin() -> Box<dyn std::io::BufRead + Send> {
    Box::new(std::io::empty())
}

/// The `pub` and `sub` tools against mosquitto: `-l` lines in order at each QoS, `-v`, `-C`.
#[tokio::test]
async fn pub_and_sub_commands_through_mosquitto_at_each_qos() {
    let Some(m) = start_mosquitto() else { return };
    let port = m.port.to_string();
    for version in ["mqttv311", "mqttv5"] {
        for qos in ["0", "1", "2"] {
            let topic = format!("cli/{version}/{qos}");
            let (ready, task) = spawn_sub(sub_args(&[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "cli/#",
                "-q",
                "2",
                "-v",
                "-C",
                "3",
                "-V",
                version,
                "-W",
                "20",
            ]));
            tokio::time::timeout(WAIT, ready).await.unwrap().unwrap();
            let args = pub_args(&[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                &topic,
                "-l",
                "-q",
                qos,
                "-V",
                version,
            ]);
            publish(&args, Box::new(&b"one\ntwo\nthree\n"[..]))
                .await
                .unwrap();
            let (out, r) = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
            r.unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{topic} one\n{topic} two\n{topic} three\n")
            );
        }
    }
}

/// `sub -R` skips the retained (stale) message; `sub -W` gives up with exit code 27.
#[tokio::test]
async fn sub_command_skips_stale_messages_and_times_out_against_mosquitto() {
    let Some(m) = start_mosquitto() else { return };
    let port = m.port.to_string();
    let base = ["-h", "127.0.0.1", "-p", port.as_str()];
    let with = |extra: &[&'static str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    publish(
        &pub_args(&with(&["-t", "stale/t", "-m", "old", "-r", "-q", "1"])),
        no_stdin(),
    )
    .await
    .unwrap();

    let (ready, task) = spawn_sub(sub_args(&with(&[
        "-t", "stale/#", "-R", "-C", "1", "-W", "20",
    ])));
    tokio::time::timeout(WAIT, ready).await.unwrap().unwrap();
    publish(
        &pub_args(&with(&["-t", "stale/t", "-m", "fresh"])),
        no_stdin(),
    )
    .await
    .unwrap();
    let (out, r) = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    r.unwrap();
    assert_eq!(out, b"fresh\n");

    // Without -R the retained message is printed (and counts).
    let (ready, task) = spawn_sub(sub_args(&with(&["-t", "stale/#", "-C", "1", "-N"])));
    tokio::time::timeout(WAIT, ready).await.unwrap().unwrap();
    let (out, r) = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    r.unwrap();
    assert_eq!(out, b"old");

    let (_ready, task) = spawn_sub(sub_args(&with(&["-t", "nothing/#", "-W", "1"])));
    let (out, r) = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    assert_eq!(r.unwrap_err().code, EXIT_TIMEOUT);
    assert!(out.is_empty());
}

/// A CONNACK refusal (anonymous client on a listener that needs a password) ends `pub` with
/// the refusal exit code and names the reason.
#[tokio::test]
async fn pub_command_reports_a_connack_refusal_from_mosquitto() {
    let Some(m) = start_mosquitto() else { return };
    let port = m.closed_port.to_string();
    for version in ["mqttv311", "mqttv5"] {
        let args = pub_args(&[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "x",
            "-m",
            "y",
            "-V",
            version,
        ]);
        let e = tokio::time::timeout(WAIT, publish(&args, no_stdin()))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(e.code, EXIT_REFUSED, "{e}");
        assert!(e.message.contains("not authorized"), "{version}: {e}");
    }
}

/// `pub --will-topic`: `pub` ends with DISCONNECT, so mosquitto discards its will
/// ([MQTT-3.1.2-10]), in-process and as a process that exits right after (which would lose a
/// DISCONNECT still waiting to be written).
#[tokio::test]
async fn mqtt_3_1_2_10_pub_command_disconnects_cleanly_so_its_will_is_discarded() {
    let Some(m) = start_mosquitto() else { return };
    let port = m.port.to_string();
    let (watcher, mut wev, _) = start(m.port, config("will-watch", Protocol::V3_1_1)).await;
    watcher
        .subscribe(vec![subscription("toolwill/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    for version in ["mqttv311", "mqttv5"] {
        let args = pub_args(&[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "toolwill/data",
            "-m",
            version,
            "-q",
            "1",
            "-V",
            version,
            "--will-topic",
            "toolwill/dead",
            "--will-payload",
            "dead",
            "--will-qos",
            "1",
        ]);
        publish(&args, no_stdin()).await.unwrap();
        let got = next_message(&mut wev).await;
        assert_eq!(got.topic, "toolwill/data");
        let status = Command::new(env!("CARGO_BIN_EXE_mqtt-lab"))
            .args([
                "pub",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "toolwill/data",
                "-m",
                version,
                "-q",
                "0",
                "-V",
                version,
                "--will-topic",
                "toolwill/dead",
                "--will-qos",
                "1",
            ])
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let got = next_message(&mut wev).await;
        assert_eq!(got.topic, "toolwill/data");
    }
    // A marker after both runs: if either will had been published it would come first.
    let (publ, _e, _) = start(m.port, config("will-marker", Protocol::V3_1_1)).await;
    publ.publish("toolwill/marker", "m", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let got = next_message(&mut wev).await;
    assert_eq!(
        got.topic, "toolwill/marker",
        "no will may precede the marker"
    );
}

/// [MQTT-3.1.2-10] `disconnect()` returns only once DISCONNECT is written: a program that
/// exits right after it (here: drops its runtime) must not lose the DISCONNECT, or mosquitto
/// would publish the will. Writes are held back 200 ms by the link so the race is certain.
#[tokio::test]
async fn mqtt_3_1_2_10_disconnect_completes_after_disconnect_is_written() {
    let Some(m) = start_mosquitto() else { return };
    let (watcher, mut wev, _) = start(m.port, config("flush-watch", Protocol::V3_1_1)).await;
    watcher
        .subscribe(vec![subscription("flush/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    let port = m.port;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut cfg = config("flush-doomed", Protocol::V3_1_1);
            cfg.will = Some(LastWill {
                topic: "flush/will".into(),
                payload: "lost".into(),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Default::default(),
            });
            let opts = ClientOptions::new(format!("127.0.0.1:{port}"), cfg);
            let link = opts.link.clone();
            let (client, mut events) = MqttClient::start(opts).unwrap();
            loop {
                match tokio::time::timeout(WAIT, events.recv()).await {
                    Ok(Some(ClientEvent::Connected { .. })) => break,
                    Ok(Some(_)) => {}
                    other => panic!("no CONNACK: {other:?}"),
                }
            }
            link.set_extra_delay(Duration::from_millis(200));
            client.disconnect(ReasonCode::Success).await;
        });
        drop(rt);
    })
    .join()
    .unwrap();
    let (publ, _e, _) = start(m.port, config("flush-marker", Protocol::V3_1_1)).await;
    publ.publish("flush/marker", "m", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let got = next_message(&mut wev).await;
    assert_eq!(got.topic, "flush/marker", "the will must not be published");
}

/// [MQTT-3.2.2-17] [MQTT-3.3.2-9] our outbound topic aliases against mosquitto configured to
/// accept 1: though our client would use 2, one topic is aliased and the others are sent in
/// full, the alias reused with an empty topic, at every QoS; the subscriber, which accepts
/// aliases and announces Receive Maximum 2, gets every message once on its full topic, and
/// mosquitto never trips its limits.
#[tokio::test]
async fn mqtt_3_3_2_9_our_topic_aliases_through_mosquitto() {
    let Some(m) = start_mosquitto_with("max_topic_alias 1") else {
        return;
    };
    let mut sub_config = config("alias-sub", Protocol::V5);
    sub_config.topic_alias_maximum = 4;
    sub_config.receive_maximum = 2;
    let (sub, mut sev, _) = start(m.port, sub_config).await;
    sub.subscribe(vec![subscription("alias/#", QoS::ExactlyOnce)])
        .await
        .unwrap();
    let mut pub_config = config("alias-pub", Protocol::V5);
    pub_config.outbound_topic_aliases = 2;
    // (topic, alias) of every PUBLISH the publisher writes.
    type Written = Vec<(String, Option<u16>)>;
    let wire: Arc<Mutex<Written>> = Arc::default();
    let mut options = ClientOptions::new(format!("127.0.0.1:{}", m.port), pub_config);
    options.observer = Some({
        let wire = wire.clone();
        Arc::new(move |_, w| {
            if let Wire::Sent(Packet::Publish(p)) = w {
                wire.lock()
                    .unwrap()
                    .push((p.topic.clone(), p.properties.topic_alias));
            }
        })
    });
    let (publ, _pev) = MqttClient::start(options).unwrap();
    let topics = ["alias/a", "alias/b", "alias/c"];
    let mut sent = Vec::new();
    for round in 0..3 {
        for (i, topic) in topics.iter().enumerate() {
            let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][(round + i) % 3];
            let payload = format!("{round}-{i}");
            let reason = publ
                .publish(topic.to_string(), payload.clone(), qos, false)
                .await
                .unwrap();
            assert!(!reason.is_error(), "{reason:?}");
            sent.push((topic.to_string(), payload));
        }
    }
    // Each (topic, QoS) carries one message; QoS 0 may overtake QoS 1 and 2 held back by
    // Receive Maximum, so the arrivals are compared as a set.
    let mut got = Vec::new();
    for _ in 0..sent.len() {
        let p = next_message(&mut sev).await;
        assert_eq!(p.properties.topic_alias, None);
        got.push((p.topic, String::from_utf8(p.payload.to_vec()).unwrap()));
    }
    got.sort();
    sent.sort();
    assert_eq!(got, sent);
    let wire = wire.lock().unwrap().clone();
    let expect: Written = [
        ("alias/a", Some(1)),
        ("alias/b", None),
        ("alias/c", None),
        ("", Some(1)),
        ("alias/b", None),
        ("alias/c", None),
        ("", Some(1)),
        ("alias/b", None),
        ("alias/c", None),
    ]
    .map(|(t, a)| (t.to_string(), a))
    .into();
    assert_eq!(wire, expect);
    publ.disconnect(ReasonCode::Success).await;
    sub.disconnect(ReasonCode::Success).await;
}
