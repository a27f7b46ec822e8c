//! Authentication and authorization seen by third-party clients: our broker, served
//! in-process on a free loopback port with a password file and an ACL, against
//! `mosquitto_pub` / `mosquitto_sub` (processes) and `rumqttc` (3.1.1 and `rumqttc::v5`).
//! Right and wrong credentials and anonymous clients (CONNACK 0x04 / 0x05, 5.0: 0x86 / 0x87,
//! and the mosquitto tools' exit codes), denied subscriptions in SUBACK, a `#` subscriber that
//! never receives what it may not read, denied publishes (5.0: PUBACK / PUBREC 0x87), and a
//! password file written by `mqtt-lab passwd` that the broker accepts.
//!
//! The mosquitto tests are skipped with a message when the clients are not installed, unless
//! `CI` is set: then that is a failure.

use crate::support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{OurBroker, WAIT, find};

use mqtt_lab::broker::auth::{Acl, Auth, HashCost, PasswordFile, password::hash_password};
use mqtt_lab::broker::{Broker, BrokerConfig};

const ACL: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite home/alice/#
topic read home/shared

user bob
topic readwrite home/bob/#

user admin
topic readwrite #

pattern read devices/%c/commands
";

fn password_file(cost: HashCost) -> PasswordFile {
    let mut file = PasswordFile::parse("passwords", "").unwrap();
    for (i, (user, pw)) in [
        ("alice", "wonderland"),
        ("bob", "builder"),
        ("admin", "root"),
    ]
    .into_iter()
    .enumerate()
    {
        let salt = [i as u8 + 1; 16];
        file.set(user, hash_password(pw.as_bytes(), &salt, cost));
    }
    file
}

/// Our broker with `passwords`, the ACL above and `allow_anonymous`, on a free port.
fn auth_broker(passwords: PasswordFile, allow_anonymous: bool) -> OurBroker {
    OurBroker::start_with(move || {
        let auth = Auth {
            passwords: Some(passwords),
            acl: Some(Acl::parse("acl", ACL).unwrap()),
        };
        let config = BrokerConfig {
            allow_anonymous,
            ..BrokerConfig::default()
        };
        Broker::new(config).with_auth(auth)
    })
}

/// The usual test users (cheap hashes) with the ACL above.
fn standard_broker(allow_anonymous: bool) -> OurBroker {
    auth_broker(password_file(HashCost::MINIMAL), allow_anonymous)
}

/// `mosquitto_pub` and `mosquitto_sub`, or `None` (skip) when missing and `CI` is unset.
fn mosquitto() -> Option<(PathBuf, PathBuf)> {
    match (find("mosquitto_pub"), find("mosquitto_sub")) {
        (Some(p), Some(s)) => Some((p, s)),
        _ => {
            let what = "mosquitto_pub and mosquitto_sub (Debian package `mosquitto-clients`)";
            if std::env::var_os("CI").is_some() {
                panic!("CI is set but {what} are not installed");
            }
            eprintln!("SKIPPED: {what} are not installed");
            None
        }
    }
}

/// Runs a command to completion with a bound; kills it when the bound passes.
fn run(program: &PathBuf, args: &[&str]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a client");
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program:?} {args:?} did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `mosquitto_pub` in `version` with optional credentials; returns its exit code.
fn mosquitto_pub_code(pub_bin: &PathBuf, port: u16, version: &str, creds: &[&str]) -> i32 {
    let port = port.to_string();
    let mut args = vec![
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-V",
        version,
        "-q",
        "1",
        "-t",
        "public/x",
        "-m",
        "hi",
    ];
    args.extend_from_slice(creds);
    let out = run(pub_bin, &args);
    out.status
        .code()
        .unwrap_or_else(|| panic!("{}", text(&out)))
}

/// [MQTT-3.1.4-2] [MQTT-3.2.2-8] `mosquitto_pub` with the right user name and password is
/// accepted; a wrong password or unknown user is refused as bad user name or password
/// (exit code = CONNACK code: 4 in 3.1.1, 0x86 in 5.0), an anonymous client when anonymous
/// access is off as not authorized (5; 0x87).
#[test]
fn mqtt5_3_1_4_2_mosquitto_pub_credentials_and_anonymous() {
    let Some((pub_bin, _)) = mosquitto() else {
        return;
    };
    let broker = standard_broker(false);
    let p = broker.port;
    for (version, bad, not_authorized) in [("mqttv311", 4, 5), ("mqttv5", 0x86, 0x87)] {
        assert_eq!(
            mosquitto_pub_code(&pub_bin, p, version, &["-u", "admin", "-P", "root"]),
            0,
            "{version}: right credentials"
        );
        assert_eq!(
            mosquitto_pub_code(&pub_bin, p, version, &["-u", "admin", "-P", "wrong"]),
            bad,
            "{version}: wrong password"
        );
        assert_eq!(
            mosquitto_pub_code(&pub_bin, p, version, &["-u", "mallory", "-P", "root"]),
            bad,
            "{version}: unknown user"
        );
        assert_eq!(
            mosquitto_pub_code(&pub_bin, p, version, &[]),
            not_authorized,
            "{version}: anonymous"
        );
    }
}

/// rumqttc 3.1.1 and v5 clients, each with its event loop in a task.
mod rumq {
    use super::*;

    pub mod v3 {
        use super::*;
        use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions};

        /// Connects and returns the CONNACK code (refusals included).
        pub async fn connect_code(
            port: u16,
            id: &str,
            creds: Option<(&str, &str)>,
        ) -> ConnectReturnCode {
            let mut opts = MqttOptions::new(id, "127.0.0.1", port);
            if let Some((u, p)) = creds {
                opts.set_credentials(u, p);
            }
            let (_client, mut eventloop) = AsyncClient::new(opts, 8);
            loop {
                match tokio::time::timeout(WAIT, eventloop.poll()).await {
                    Ok(Ok(Event::Incoming(rumqttc::Packet::ConnAck(a)))) => return a.code,
                    Ok(Ok(_)) => {}
                    Ok(Err(ConnectionError::ConnectionRefused(code))) => return code,
                    other => panic!("rumqttc: no CONNACK: {other:?}"),
                }
            }
        }
    }

    pub mod v5 {
        use super::*;
        use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
        use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};

        pub async fn connect_code(
            port: u16,
            id: &str,
            creds: Option<(&str, &str)>,
        ) -> ConnectReturnCode {
            let mut opts = MqttOptions::new(id, "127.0.0.1", port);
            if let Some((u, p)) = creds {
                opts.set_credentials(u, p);
            }
            let (_client, mut eventloop) = AsyncClient::new(opts, 8);
            loop {
                match tokio::time::timeout(WAIT, eventloop.poll()).await {
                    Ok(Ok(Event::Incoming(Packet::ConnAck(a)))) => return a.code,
                    Ok(Ok(_)) => {}
                    Ok(Err(ConnectionError::ConnectionRefused(code))) => return code,
                    other => panic!("rumqttc v5: no CONNACK: {other:?}"),
                }
            }
        }
    }
}

/// [MQTT-3.1.4-2] [MQTT-3.2.2-8] rumqttc (3.1.1 and 5.0) with right credentials is
/// accepted; wrong password and unknown user get bad user name or password (0x04 / 0x86),
/// anonymous when anonymous access is off gets not authorized (0x05 / 0x87).
#[tokio::test]
async fn mqtt5_3_1_4_2_rumqttc_credentials_and_anonymous() {
    use rumqttc::ConnectReturnCode as V3;
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as V5;
    let broker = standard_broker(false);
    let p = broker.port;
    type Creds = Option<(&'static str, &'static str)>;
    let cases: [(Creds, V3, V5); 4] = [
        (Some(("alice", "wonderland")), V3::Success, V5::Success),
        (
            Some(("alice", "builder")),
            V3::BadUserNamePassword,
            V5::BadUserNamePassword,
        ),
        (
            Some(("nobody", "wonderland")),
            V3::BadUserNamePassword,
            V5::BadUserNamePassword,
        ),
        (None, V3::NotAuthorized, V5::NotAuthorized),
    ];
    for (creds, v3, v5) in cases {
        assert_eq!(
            rumq::v3::connect_code(p, "r3-cred", creds).await,
            v3,
            "3.1.1 {creds:?}"
        );
        assert_eq!(
            rumq::v5::connect_code(p, "r5-cred", creds).await,
            v5,
            "5.0 {creds:?}"
        );
    }
}

/// With anonymous access on, an anonymous client connects but the ACL still applies: it may
/// subscribe where the anonymous rules let it read, and nowhere else (3.1.1 SUBACK 0x80).
#[test]
fn anonymous_client_limited_to_anonymous_rules() {
    let Some((_, sub_bin)) = mosquitto() else {
        return;
    };
    let broker = standard_broker(true);
    let port = broker.port.to_string();
    let out = run(
        &sub_bin,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-d",
            "-E",
            "-q",
            "1",
            "-t",
            "public/#",
            "-t",
            "home/alice/#",
        ],
    );
    let out = text(&out);
    assert!(out.contains("Subscribed (mid: 1): 1, 128"), "{out}");
}

/// [MQTT-3.9.3-1] a denied filter gets the failure code in its SUBACK slot (3.1.1: 0x80,
/// 5.0: 0x87) while the other filters of the same SUBSCRIBE are granted; seen by
/// `mosquitto_sub -d -E`. `%c` patterns apply to the client identifier.
#[test]
fn mqtt_3_9_3_1_mosquitto_sub_denied_filter_gets_failure_code() {
    let Some((_, sub_bin)) = mosquitto() else {
        return;
    };
    let broker = standard_broker(false);
    let port = broker.port.to_string();
    for (version, denied) in [("mqttv311", "128"), ("mqttv5", "135")] {
        let out = run(
            &sub_bin,
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-V",
                version,
                "-i",
                "dev1",
                "-u",
                "alice",
                "-P",
                "wonderland",
                "-d",
                "-E",
                "-q",
                "1",
                "-t",
                "home/alice/#",
                "-t",
                "home/bob/#",
                "-t",
                "devices/dev1/commands",
                "-t",
                "devices/dev2/commands",
                "-t",
                "home/shared",
            ],
        );
        let out = text(&out);
        let expected = format!("Subscribed (mid: 1): 1, {denied}, 1, {denied}, 1");
        assert!(out.contains(&expected), "{version}: want {expected}: {out}");
    }
}

/// [MQTT-3.9.3-1] rumqttc sees the same SUBACK: 3.1.1 `Failure`, 5.0 `NotAuthorized` for
/// the denied filter, the others granted at the requested QoS.
#[tokio::test]
async fn mqtt_3_9_3_1_rumqttc_denied_filter_gets_failure_code() {
    let broker = standard_broker(false);
    let port = broker.port;
    {
        use rumqttc::{
            AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter, SubscribeReasonCode,
        };
        let mut opts = MqttOptions::new("r3-suback", "127.0.0.1", port);
        opts.set_credentials("alice", "wonderland");
        let (client, mut eventloop) = AsyncClient::new(opts, 8);
        client
            .subscribe_many(
                ["home/alice/#", "home/bob/#", "public/#"]
                    .map(|f| SubscribeFilter::new(f.into(), QoS::AtLeastOnce)),
            )
            .await
            .unwrap();
        let codes = loop {
            match tokio::time::timeout(WAIT, eventloop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::SubAck(s)))) => break s.return_codes,
                Ok(Ok(_)) => {}
                other => panic!("rumqttc: no SUBACK: {other:?}"),
            }
        };
        assert_eq!(
            codes,
            vec![
                SubscribeReasonCode::Success(QoS::AtLeastOnce),
                SubscribeReasonCode::Failure,
                SubscribeReasonCode::Failure,
            ],
            "alice may not read home/bob/# nor public/# (the anonymous rules are not hers)"
        );
    }
    {
        use rumqttc::v5::mqttbytes::QoS;
        use rumqttc::v5::mqttbytes::v5::{Filter, Packet, SubscribeReasonCode};
        use rumqttc::v5::{AsyncClient, Event, MqttOptions};
        let mut opts = MqttOptions::new("r5-suback", "127.0.0.1", port);
        opts.set_credentials("bob", "builder");
        let (client, mut eventloop) = AsyncClient::new(opts, 8);
        client
            .subscribe_many(
                ["home/bob/#", "home/alice/#", "home/bob/x"]
                    .map(|f| Filter::new(f, QoS::ExactlyOnce)),
            )
            .await
            .unwrap();
        let codes = loop {
            match tokio::time::timeout(WAIT, eventloop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::SubAck(s)))) => break s.return_codes,
                Ok(Ok(_)) => {}
                other => panic!("rumqttc v5: no SUBACK: {other:?}"),
            }
        };
        assert_eq!(
            codes,
            vec![
                SubscribeReasonCode::Success(QoS::ExactlyOnce),
                SubscribeReasonCode::NotAuthorized,
                SubscribeReasonCode::Success(QoS::ExactlyOnce),
            ]
        );
    }
}

/// A rumqttc v5 client logged in as a user, with the reason codes these tests look at.
struct Rumq5(support::rumq5::Rumq);

impl Rumq5 {
    async fn connect(port: u16, id: &str, user: &str, password: &str) -> Rumq5 {
        let (r, _) = support::rumq5::Rumq::connect(port, id, |o| {
            o.set_credentials(user, password);
        })
        .await;
        Rumq5(r)
    }

    /// Topic and payload of the next PUBLISH received.
    async fn message(&mut self) -> (String, String) {
        let p = self.0.message().await;
        (
            String::from_utf8(p.topic.to_vec()).unwrap(),
            String::from_utf8(p.payload.to_vec()).unwrap(),
        )
    }

    async fn subscribe(&mut self, filter: &str) {
        use rumqttc::v5::mqttbytes::QoS;
        use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode;
        let codes = self.0.subscribe(filter, QoS::AtLeastOnce).await;
        assert_eq!(codes, vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]);
    }

    /// Publishes at QoS 1 and returns the PUBACK reason.
    async fn publish1(
        &mut self,
        topic: &str,
        payload: &str,
    ) -> rumqttc::v5::mqttbytes::v5::PubAckReason {
        use rumqttc::v5::mqttbytes::QoS;
        use rumqttc::v5::mqttbytes::v5::Packet;
        self.0
            .client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
        self.0
            .until(|p| match p {
                Packet::PubAck(a) => Some(a.reason),
                _ => None,
            })
            .await
    }

    /// Publishes at QoS 2 and returns the PUBREC reason.
    async fn publish2(
        &mut self,
        topic: &str,
        payload: &str,
    ) -> rumqttc::v5::mqttbytes::v5::PubRecReason {
        use rumqttc::v5::mqttbytes::QoS;
        use rumqttc::v5::mqttbytes::v5::Packet;
        self.0
            .client
            .publish(topic, QoS::ExactlyOnce, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
        self.0
            .until(|p| match p {
                Packet::PubRec(a) => Some(a.reason),
                _ => None,
            })
            .await
    }

    async fn disconnect(self) {
        self.0.disconnect().await
    }
}

/// A subscriber with `#` (granted: its user may read something) receives only the topics
/// its user may read: another user's topic, published while it listens, is withheld, and the
/// next readable messages arrive first.
#[tokio::test]
async fn wide_subscription_never_receives_unreadable_topics() {
    let broker = standard_broker(false);
    let port = broker.port;
    let mut alice = Rumq5::connect(port, "r5-alice-wide", "alice", "wonderland").await;
    alice.subscribe("#").await;
    let mut bob = Rumq5::connect(port, "r5-bob", "bob", "builder").await;
    let mut admin = Rumq5::connect(port, "r5-admin", "admin", "root").await;
    use rumqttc::v5::mqttbytes::v5::PubAckReason;
    assert_eq!(
        bob.publish1("home/bob/diary", "private").await,
        PubAckReason::Success
    );
    assert_eq!(
        admin.publish1("public/news", "hello").await,
        PubAckReason::Success
    );
    assert_eq!(
        admin.publish1("home/alice/inbox", "for alice").await,
        PubAckReason::Success
    );
    assert_eq!(
        admin.publish1("home/shared", "shared").await,
        PubAckReason::Success
    );
    assert_eq!(
        alice.message().await,
        ("home/alice/inbox".to_string(), "for alice".to_string()),
        "bob's topic and public/# (anonymous rules) are not alice's to read"
    );
    assert_eq!(
        alice.message().await,
        ("home/shared".to_string(), "shared".to_string())
    );
    for c in [alice, bob, admin] {
        c.disconnect().await;
    }
}

/// A denied 5.0 publish is refused with PUBACK 0x87 (QoS 1) or PUBREC 0x87 (QoS 2) and not
/// delivered; a 3.1.1 one is acknowledged as usual ([MQTT-3.3.5-2]) and dropped as well.
#[tokio::test]
async fn mqtt_3_3_5_2_denied_publish_refused_in_v5_dropped_in_v3() {
    use rumqttc::v5::mqttbytes::v5::{PubAckReason, PubRecReason};
    let broker = standard_broker(false);
    let port = broker.port;
    let mut bob = Rumq5::connect(port, "r5-bob-listen", "bob", "builder").await;
    bob.subscribe("home/bob/#").await;
    let mut alice = Rumq5::connect(port, "r5-alice-pub", "alice", "wonderland").await;
    assert_eq!(
        alice.publish1("home/bob/door", "v5 qos1").await,
        PubAckReason::NotAuthorized
    );
    assert_eq!(
        alice.publish2("home/bob/door", "v5 qos2").await,
        PubRecReason::NotAuthorized
    );
    {
        use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
        let mut opts = MqttOptions::new("r3-alice-pub", "127.0.0.1", port);
        opts.set_credentials("alice", "wonderland");
        let (client, mut eventloop) = AsyncClient::new(opts, 8);
        client
            .publish("home/bob/door", QoS::AtLeastOnce, false, "v3 qos1")
            .await
            .unwrap();
        loop {
            match tokio::time::timeout(WAIT, eventloop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => break,
                Ok(Ok(_)) => {}
                other => panic!("rumqttc: no PUBACK for a denied 3.1.1 publish: {other:?}"),
            }
        }
        client.disconnect().await.unwrap();
        loop {
            match tokio::time::timeout(WAIT, eventloop.poll()).await {
                Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) | Ok(Err(_)) => break,
                Ok(Ok(_)) => {}
                Err(_) => panic!("rumqttc did not disconnect"),
            }
        }
    }
    let mut admin = Rumq5::connect(port, "r5-admin-marker", "admin", "root").await;
    assert_eq!(
        admin.publish1("home/bob/door", "marker").await,
        PubAckReason::Success
    );
    assert_eq!(
        bob.message().await,
        ("home/bob/door".to_string(), "marker".to_string()),
        "no denied publish may be delivered"
    );
    for c in [alice, bob, admin] {
        c.disconnect().await;
    }
}

/// `mqtt-lab passwd` writes a file the broker accepts: a user added by the binary logs in
/// with its password (`mosquitto_pub`, 3.1.1 and 5.0) and not with another.
#[test]
fn passwd_file_from_the_binary_is_accepted_by_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwords");
    let p = path.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-lab"))
        .args(["passwd", "-c", p, "carol", "--password", "s3cret"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let file = PasswordFile::parse(p, &std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(file.contains("carol"));
    let broker = auth_broker(file, false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as V5;
        let port = broker.port;
        assert_eq!(
            rumq::v5::connect_code(port, "r5-carol", Some(("carol", "s3cret"))).await,
            V5::Success
        );
        assert_eq!(
            rumq::v5::connect_code(port, "r5-carol", Some(("carol", "s3cret!"))).await,
            V5::BadUserNamePassword
        );
    });
    let Some((pub_bin, _)) = mosquitto() else {
        return;
    };
    for (version, bad) in [("mqttv311", 4), ("mqttv5", 0x86)] {
        assert_eq!(
            mosquitto_pub_code(
                &pub_bin,
                broker.port,
                version,
                &["-u", "carol", "-P", "s3cret"]
            ),
            0,
            "{version}"
        );
        assert_eq!(
            mosquitto_pub_code(
                &pub_bin,
                broker.port,
                version,
                &["-u", "carol", "-P", "wrong"]
            ),
            bad,
            "{version}"
        );
    }
}
