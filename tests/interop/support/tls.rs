//! What the TLS and WebSocket tests share: certificates made for the test run (never kept),
//! the `mqtt-lab broker` binary on a configuration with `[[listener]]`s, and the tools.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::{WAIT, find, wait_bounded};

pub const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lab");

/// The common name of the client certificate: the user name it stands for.
pub const CLIENT_NAME: &str = "device-7";

/// PEM files in a temporary folder: a CA and the server certificate it signed (for
/// `localhost` and `127.0.0.1`), a client certificate it signed, and a second, unrelated CA
/// with a client certificate of its own.
pub struct Certs {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_ca: PathBuf,
    pub other_client_cert: PathBuf,
    pub other_client_key: PathBuf,
}

fn ca(name: &str) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert, Issuer::new(params, key))
}

fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    names: &[&str],
    cn: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Certs {
    pub fn generate() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let (ca_cert, issuer) = ca("mqtt-lab test CA");
        let (server_cert, server_key) = leaf(
            &issuer,
            &["localhost", "127.0.0.1"],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            &issuer,
            &[],
            CLIENT_NAME,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let (other_cert, other_issuer) = ca("another CA");
        let (other_client_cert, other_client_key) = leaf(
            &other_issuer,
            &[],
            CLIENT_NAME,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Certs {
            ca: write("ca.pem", &ca_cert.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            other_ca: write("other-ca.pem", &other_cert.pem()),
            other_client_cert: write("other-client.pem", &other_client_cert),
            other_client_key: write("other-client.key", &other_client_key),
            dir,
        }
    }

    /// The `tls = { ... }` of a listener with the server certificate, and `extra` settings.
    pub fn tls_table(&self, extra: &str) -> String {
        let mut table = format!(
            "tls = {{ cert = {:?}, key = {:?}",
            self.server_cert.display().to_string(),
            self.server_key.display().to_string()
        );
        if !extra.is_empty() {
            table.push_str(", ");
            table.push_str(extra);
        }
        table.push_str(" }");
        table
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `mqtt-lab broker` on a configuration file, its log in a file; killed on drop.
pub struct Broker {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts the broker on `config` (written to a file in a fresh folder) and waits until each
    /// of `ports` accepts TCP connections.
    pub fn start(config: &str, ports: &[u16]) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.toml");
        std::fs::write(&path, config).unwrap();
        let log = dir.path().join("broker.log");
        let mut child = Command::new(BIN)
            .args(["broker", "-c"])
            .arg(&path)
            .env("RUST_LOG", "info,mqtt_lab::net::transport=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        for &port in ports {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!(
                        "the broker exited before listening: {status}\n{}",
                        std::fs::read_to_string(&log).unwrap()
                    );
                }
                assert!(Instant::now() < deadline, "the broker never listened");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Broker {
            child,
            log,
            _dir: dir,
        }
    }

    /// What the broker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Waits until the log holds `text`.
    pub fn wait_for_log(&self, text: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.log().contains(text) {
            assert!(
                Instant::now() < deadline,
                "{text:?} never logged:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command` to its end within the bound; its output.
pub fn run(command: &mut Command, what: &str) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    // Read the pipes while waiting, so that a talkative child does not block.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut s).unwrap();
        s
    });
    let status = wait_bounded(&mut child, what);
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A Python 3 with paho-mqtt (`pip install paho-mqtt==2.1.0`), or `None` (the test is skipped)
/// when there is none and `CI` is unset; with `CI` set a missing paho-mqtt is a failure.
pub fn python_with_paho() -> Option<PathBuf> {
    let python = find("python3");
    let works = python.as_ref().is_some_and(|p| {
        Command::new(p)
            .args(["-c", "import paho.mqtt.client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if works {
        return python;
    }
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") {
        panic!(
            "paho-mqtt is not installed and CI is set: the WebSocket listener must be tested \
             with it (scripts/test.sh installs it with pip install paho-mqtt==2.1.0)"
        );
    }
    eprintln!(
        "\n\n*** SKIPPED: python3 with paho-mqtt is not installed (pip install \
         paho-mqtt==2.1.0); with CI=true this fails ***\n"
    );
    None
}

/// `path` as a string for command lines.
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}
