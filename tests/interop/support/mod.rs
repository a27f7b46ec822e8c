//! What the interop and command-line tests share: our broker on a free loopback port, finding
//! the mosquitto tools (skipped when missing, unless `CI` is set), and bounded waits.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use mqtt_lab::broker::{Broker, BrokerConfig};

#[cfg(not(madsim))]
pub mod rumq;
#[cfg(not(madsim))]
pub mod rumq5;
#[cfg(not(madsim))]
pub mod tls;

/// The bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// Our broker served on its own runtime thread on a free loopback port; stopped on drop.
pub struct OurBroker {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OurBroker {
    /// The broker with its default configuration.
    pub fn start() -> OurBroker {
        OurBroker::start_with(|| Broker::new(BrokerConfig::default()))
    }

    /// The broker that `core` builds (on the broker's thread).
    pub fn start_with(core: impl FnOnce() -> Broker + Send + 'static) -> OurBroker {
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                mqtt_lab::net::server::serve(core(), vec![listener], None, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            });
        });
        let port = port_rx.recv_timeout(WAIT).expect("broker did not start");
        OurBroker {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for OurBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Our broker as a task of the caller's runtime; it stops when the sender is dropped or used.
pub async fn start_broker() -> (u16, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let core = Broker::new(BrokerConfig::default());
        mqtt_lab::net::server::serve(core, vec![listener], None, async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });
    (port, stop_tx)
}

/// `name` on the `PATH`.
pub fn find(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Every program in `names`, or `None` (the test is skipped) when one is missing and `CI` is
/// unset; with `CI` set a missing program is a failure.
pub fn programs(names: &[&str], what: &str) -> Option<Vec<PathBuf>> {
    let found: Vec<Option<PathBuf>> = names.iter().map(|n| find(n)).collect();
    if found.iter().all(Option::is_some) {
        return Some(found.into_iter().flatten().collect());
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {what} are not all installed");
    }
    eprintln!("SKIPPED: {what} are not all installed");
    None
}

/// Waits for a child with a bound; kills it when the bound passes.
pub fn wait_bounded(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The mosquitto command-line clients and `stdbuf` (to line-buffer `mosquitto_sub`).
pub struct Tools {
    pub publ: PathBuf,
    pub sub: PathBuf,
    pub stdbuf: PathBuf,
}

/// The tools, or `None` (skip) when they are missing and `CI` is unset.
pub fn mosquitto_tools() -> Option<Tools> {
    let found = programs(
        &["mosquitto_pub", "mosquitto_sub", "stdbuf"],
        "mosquitto_pub, mosquitto_sub (Debian package `mosquitto-clients`) and stdbuf (coreutils)",
    )?;
    let [publ, sub, stdbuf] = <[PathBuf; 3]>::try_from(found).ok()?;
    Some(Tools { publ, sub, stdbuf })
}
