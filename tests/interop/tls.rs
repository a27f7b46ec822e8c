//! `mqtt-lab broker` with TLS listeners, against `mosquitto_pub` / `mosquitto_sub` (OpenSSL) and
//! our own client: TLS 1.2 and 1.3, a listener that accepts 1.3 only, client certificates
//! whose common name is the user name (checked by an ACL and the connection log), and the
//! refusals: an untrusted server certificate, a missing or untrusted client certificate, plain
//! MQTT on a TLS port. Certificates are made for each test (support/tls.rs).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::mosquitto_tools;
use crate::support::tls::{BIN, Broker, CLIENT_NAME, Certs, free_port, run, s};

/// A retained message published with `mosquitto_pub` and read back with `mosquitto_sub`, both
/// with `args` (the TLS flags); panics with their output if either fails.
fn mosquitto_round_trip(port: u16, args: &[&str], topic: &str, openssl_conf: Option<&Path>) {
    let tools = mosquitto_tools().expect("checked by the caller");
    let port = port.to_string();
    let env = |c: &mut Command| {
        if let Some(conf) = openssl_conf {
            c.env("OPENSSL_CONF", conf);
        }
    };
    let mut publ = Command::new(&tools.publ);
    let mut sub = Command::new(&tools.sub);
    env(&mut publ);
    env(&mut sub);
    let out = run(
        publ.args(["-h", "localhost", "-p", &port, "-q", "1", "-r"])
            .args(["-t", topic, "-m", "over tls"])
            .args(args),
        "mosquitto_pub",
    );
    succeeded(&out, "mosquitto_pub", args);
    let out = run(
        sub.args(["-h", "localhost", "-p", &port, "-q", "1"])
            .args(["-t", topic, "-C", "1", "-W", "10"])
            .args(args),
        "mosquitto_sub",
    );
    succeeded(&out, "mosquitto_sub", args);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over tls\n");
}

/// Fails with the output of `what` unless it succeeded.
fn succeeded(out: &Output, what: &str, args: &[&str]) {
    assert!(
        out.status.success(),
        "{what} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `mosquitto_pub` with `args` and returns whether it succeeded, with its stderr.
fn mosquitto_pub(port: u16, args: &[&str], openssl_conf: Option<&Path>) -> (bool, String) {
    let tools = mosquitto_tools().expect("checked by the caller");
    let mut publ = Command::new(&tools.publ);
    if let Some(conf) = openssl_conf {
        publ.env("OPENSSL_CONF", conf);
    }
    let out = run(
        publ.args(["-h", "localhost", "-p", &port.to_string(), "-q", "1"])
            .args(["-t", "refused", "-m", "x"])
            .args(args),
        "mosquitto_pub",
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An OpenSSL configuration that caps the client at TLS 1.2 (`mosquitto_pub --tls-version
/// tlsv1.2` only sets the oldest version it accepts).
fn openssl_conf_tls12(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("openssl-tls12.cnf");
    std::fs::write(
        &path,
        "openssl_conf = default_conf\n\
         [default_conf]\nssl_conf = ssl_sect\n\
         [ssl_sect]\nsystem_default = system_default_sect\n\
         [system_default_sect]\nMaxProtocol = TLSv1.2\n",
    )
    .unwrap();
    path
}

#[test]
fn mosquitto_clients_speak_tls_1_2_and_1_3_and_a_1_3_listener_refuses_1_2() {
    if mosquitto_tools().is_none() {
        return;
    }
    let certs = Certs::generate();
    let (tls, tls13, plain) = (free_port(), free_port(), free_port());
    let broker = Broker::start(
        &format!(
            "listen = [\"127.0.0.1:{plain}\"]\n\
             [[listener]]\naddress = \"127.0.0.1:{tls}\"\n{}\n\
             [[listener]]\naddress = \"127.0.0.1:{tls13}\"\n{}\n",
            certs.tls_table(""),
            certs.tls_table("min_version = \"1.3\""),
        ),
        &[plain, tls, tls13],
    );
    // A peer that connects and never starts its handshake holds up nobody.
    let _idle = TcpStream::connect(("127.0.0.1", tls)).unwrap();
    let ca = s(&certs.ca);
    let tls12 = openssl_conf_tls12(certs.dir.path());
    // TLS 1.3, then TLS 1.2 (the client capped by its OpenSSL configuration).
    mosquitto_round_trip(
        tls,
        &["--cafile", ca, "--tls-version", "tlsv1.3"],
        "tls/1.3",
        None,
    );
    broker.wait_for_log("version=Some(TLSv1_3)");
    mosquitto_round_trip(tls, &["--cafile", ca], "tls/1.2", Some(&tls12));
    broker.wait_for_log("version=Some(TLSv1_2)");
    mosquitto_round_trip(tls13, &["--cafile", ca], "tls13", None);
    let (ok, _) = mosquitto_pub(tls13, &["--cafile", ca], Some(&tls12));
    assert!(!ok, "a TLS 1.2 client was accepted by a TLS 1.3 listener");

    // A server certificate the client does not trust.
    let (ok, _) = mosquitto_pub(tls, &["--cafile", s(&certs.other_ca)], None);
    assert!(!ok, "a client trusting another CA connected");
    // Plain MQTT on the TLS port is closed; the plain listener goes on working.
    let mut raw = TcpStream::connect(("127.0.0.1", tls)).unwrap();
    raw.set_read_timeout(Some(crate::support::WAIT)).unwrap();
    raw.write_all(&[
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30, 0, 1, b'x',
    ])
    .unwrap();
    let mut buf = [0u8; 64];
    let n = raw.read(&mut buf).unwrap_or(0);
    assert!(n == 0 || buf[0] != 0x20, "plain MQTT got a CONNACK on TLS");
    broker.wait_for_log("TLS handshake failed");
    mosquitto_round_trip(plain, &[], "plain", None);
    broker.wait_for_log("transport=mqtts");
}

/// `handshake_timeout` of a `[[listener]]`: a peer that connects and never starts its TLS
/// handshake is dropped once the listener's time has passed, with a log line saying so.
#[test]
fn a_listener_drops_a_peer_that_does_not_finish_its_handshake_in_time() {
    let certs = Certs::generate();
    let tls = free_port();
    let broker = Broker::start(
        &format!(
            "[[listener]]\naddress = \"127.0.0.1:{tls}\"\nhandshake_timeout = \"300ms\"\n{}\n",
            certs.tls_table(""),
        ),
        &[tls],
    );
    let started = std::time::Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", tls)).unwrap();
    silent.set_read_timeout(Some(crate::support::WAIT)).unwrap();
    let mut buf = [0u8; 16];
    let n = silent.read(&mut buf);
    let after = started.elapsed();
    assert!(
        matches!(n, Ok(0)) || n.is_err(),
        "the silent peer got {n:?} instead of the end of the connection"
    );
    assert!(
        after >= std::time::Duration::from_millis(300) && after < crate::support::WAIT,
        "dropped after {after:?}, for a handshake time of 300ms"
    );
    broker.wait_for_log("handshake not done within 300ms");
}

#[test]
fn a_client_certificate_name_is_the_user_name_and_untrusted_or_missing_ones_are_refused() {
    if mosquitto_tools().is_none() {
        return;
    }
    let certs = Certs::generate();
    let acl = certs.dir.path().join("acl");
    std::fs::write(
        &acl,
        format!("user {CLIENT_NAME}\ntopic readwrite devices/{CLIENT_NAME}/#\n"),
    )
    .unwrap();
    let port = free_port();
    let broker = Broker::start(
        &format!(
            "acl_file = {:?}\n\
             [[listener]]\naddress = \"127.0.0.1:{port}\"\n{}\n\
             [broker]\nallow_anonymous = false\n",
            s(&acl),
            certs.tls_table(&format!(
                "client_ca = {:?}, use_identity_as_username = true",
                s(&certs.ca)
            )),
        ),
        &[port],
    );
    let ca = s(&certs.ca);
    let with_cert = [
        "--cafile",
        ca,
        "--cert",
        s(&certs.client_cert),
        "--key",
        s(&certs.client_key),
    ];
    // Anonymous access is off and no password is given: the certificate is the login, and
    // the ACL lets that user write and read its own topics.
    let topic = format!("devices/{CLIENT_NAME}/state");
    mosquitto_round_trip(port, &with_cert, &topic, None);
    broker.wait_for_log(&format!("user={CLIENT_NAME}"));
    // A user name given in CONNECT changes nothing.
    mosquitto_round_trip(
        port,
        &[&with_cert[..], &["-u", "admin", "-P", "guess"]].concat(),
        &topic,
        None,
    );
    // The ACL judges the client under its certificate's name: another device's topics are
    // not for it.
    let tools = mosquitto_tools().expect("checked above");
    let out = run(
        Command::new(&tools.sub)
            .args(["-h", "localhost", "-p", &port.to_string(), "-V", "mqttv5"])
            .args(["-t", "devices/device-8/#", "-C", "1", "-W", "2"])
            .args(with_cert),
        "mosquitto_sub",
    );
    assert!(out.stdout.is_empty(), "received another device's messages");
    broker.wait_for_log("subscription not authorized");
    assert!(broker.log().contains("filter=\"devices/device-8/#\""));

    // No certificate, or one of another CA: refused during the handshake.
    let (ok, _) = mosquitto_pub(port, &["--cafile", ca], None);
    assert!(!ok, "a client without a certificate connected");
    let (ok, _) = mosquitto_pub(
        port,
        &[
            "--cafile",
            ca,
            "--cert",
            s(&certs.other_client_cert),
            "--key",
            s(&certs.other_client_key),
        ],
        None,
    );
    assert!(!ok, "a client with an untrusted certificate connected");
    broker.wait_for_log("TLS handshake failed");
}

#[test]
fn our_client_connects_over_tls_with_and_without_a_client_certificate() {
    let certs = Certs::generate();
    let (open, strict, optional) = (free_port(), free_port(), free_port());
    let _broker = Broker::start(
        &format!(
            "[[listener]]\naddress = \"127.0.0.1:{open}\"\n{}\n\
             [[listener]]\naddress = \"127.0.0.1:{strict}\"\n{}\n\
             [[listener]]\naddress = \"127.0.0.1:{optional}\"\n{}\n",
            certs.tls_table(""),
            certs.tls_table(&format!("client_ca = {:?}", s(&certs.ca))),
            certs.tls_table(&format!(
                "client_ca = {:?}, require_client_cert = false",
                s(&certs.ca)
            )),
        ),
        &[open, strict, optional],
    );
    let ca = s(&certs.ca);
    let ours = |port: u16, tool: &str, args: &[&str]| {
        run(
            Command::new(BIN)
                .args([tool, "-h", "localhost", "-p", &port.to_string(), "-q", "1"])
                .args(args),
            "mqtt-lab",
        )
    };
    let client_cert = [
        "--cert",
        s(&certs.client_cert),
        "--key",
        s(&certs.client_key),
    ];
    for (port, extra) in [
        (open, &[][..]),
        (optional, &[]),
        (optional, &client_cert),
        (strict, &client_cert),
    ] {
        let tls = [&["--cafile", ca][..], extra].concat();
        let out = ours(
            port,
            "pub",
            &[&tls[..], &["-t", "ours", "-m", "hi", "-r"]].concat(),
        );
        succeeded(&out, "mqtt-lab pub", &tls);
        let out = ours(
            port,
            "sub",
            &[&tls[..], &["-t", "ours", "-C", "1", "-W", "10"]].concat(),
        );
        succeeded(&out, "mqtt-lab sub", &tls);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    }
    // Without its certificate on the strict listener, or trusting another CA: no connection.
    let out = ours(strict, "pub", &["--cafile", ca, "-t", "x", "-m", "x"]);
    assert!(!out.status.success(), "connected without a certificate");
    let out = ours(
        open,
        "pub",
        &["--cafile", s(&certs.other_ca), "-t", "x", "-m", "x"],
    );
    assert!(!out.status.success(), "trusted a certificate of another CA");
    // Where a certificate is optional, one of another CA is still refused.
    let out = ours(
        optional,
        "pub",
        &[
            "--cafile",
            ca,
            "--cert",
            s(&certs.other_client_cert),
            "--key",
            s(&certs.other_client_key),
            "-t",
            "x",
            "-m",
            "x",
        ],
    );
    assert!(
        !out.status.success(),
        "an untrusted client certificate was accepted"
    );
}

#[test]
fn bad_tls_files_stop_start_up_with_a_clear_error() {
    let certs = Certs::generate();
    let dir = certs.dir.path();
    std::fs::write(dir.join("not-pem"), "hello\n").unwrap();
    let port = free_port();
    for (tls, expected) in [
        (
            format!(
                "tls = {{ cert = \"missing.pem\", key = {:?} }}",
                s(&certs.server_key)
            ),
            "listener[0].tls.cert: cannot read ",
        ),
        (
            format!(
                "tls = {{ cert = \"not-pem\", key = {:?} }}",
                s(&certs.server_key)
            ),
            "listener[0].tls.cert: ",
        ),
        (
            format!(
                "tls = {{ cert = {:?}, key = {:?} }}",
                s(&certs.server_cert),
                s(&certs.client_key)
            ),
            "does not match the certificate",
        ),
        (
            format!(
                "tls = {{ cert = {:?}, key = {:?}, client_ca = \"not-pem\" }}",
                s(&certs.server_cert),
                s(&certs.server_key)
            ),
            "listener[0].tls.client_ca: ",
        ),
        (
            format!(
                "tls = {{ cert = {:?}, key = {:?}, use_identity_as_username = true }}",
                s(&certs.server_cert),
                s(&certs.server_key)
            ),
            "line 3: listener[0].tls.use_identity_as_username: needs client_ca",
        ),
    ] {
        let config = dir.join("broker.toml");
        std::fs::write(
            &config,
            format!("[[listener]]\naddress = \"127.0.0.1:{port}\"\n{tls}\n"),
        )
        .unwrap();
        let out = run(
            Command::new(BIN).args(["broker", "-c", s(&config)]),
            "the broker that cannot start",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{tls}: {stderr}");
        assert!(stderr.contains(expected), "{tls}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
