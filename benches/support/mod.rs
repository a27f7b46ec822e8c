//! What the benchmarks that run brokers as processes share: starting and stopping a broker,
//! finding mosquitto, free loopback ports.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A broker process, killed on drop.
pub struct BrokerProcess {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl BrokerProcess {
    /// Starts `program` with `args` (its configuration naming `port`), logging to `log`, and
    /// waits until it accepts connections on `port`; `None` if it exited first (the port was
    /// taken meanwhile) or did not listen within `wait`.
    pub fn start(
        program: &Path,
        args: &[&std::ffi::OsStr],
        port: u16,
        log: PathBuf,
        wait: Duration,
    ) -> Option<BrokerProcess> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("create the broker's log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if child.try_wait().expect("broker status").is_some() {
                return None;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(BrokerProcess { child, port, log });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The program `name` on the `PATH`, in an `sbin` folder (where Debian puts mosquitto) or in
/// `~/.cargo/bin` (where `cargo install` puts rumqttd).
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let cargo = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .chain(cargo)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn mosquitto() -> Option<PathBuf> {
    find("mosquitto")
}

/// Whether `dir` belongs to root (mosquitto run as root then needs `user root`).
pub fn running_as_root(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).is_ok_and(|m| m.uid() == 0)
}
