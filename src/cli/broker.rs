//! `mqtt-lab broker`: the broker on real TCP, configured by flags and an optional TOML file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::broker::{Broker, BrokerConfig};
use crate::cli::{EXIT_USAGE, init_logging, require_real_network};

#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Address to listen on (repeatable). Default 127.0.0.1:1883, or the config file's `listen`.
    #[arg(short, long, value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,
    /// TOML configuration file (listeners, limits, queue policy).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The configuration file: `listen` at the top, the core's settings under
/// `[broker]` (every field optional; see the README for the list and defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerFile {
    #[serde(default)]
    pub listen: Vec<SocketAddr>,
    #[serde(default)]
    pub broker: BrokerConfig,
}

impl BrokerFile {
    pub fn load(path: &Path) -> Result<BrokerFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let file: BrokerFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        file.broker
            .validate()
            .map_err(|e| format!("{}: broker.{}: {}", path.display(), e.field, e.reason))?;
        Ok(file)
    }
}

pub fn run(args: BrokerArgs) -> i32 {
    if let Err(msg) = require_real_network("broker") {
        eprintln!("error: {msg}");
        return EXIT_USAGE;
    }
    init_logging();
    let file = match &args.config {
        Some(path) => match BrokerFile::load(path) {
            Ok(f) => f,
            Err(msg) => {
                eprintln!("error: {msg}");
                return EXIT_USAGE;
            }
        },
        None => BrokerFile::default(),
    };
    let mut listen = args.listen.clone();
    if listen.is_empty() {
        listen = file.listen.clone();
    }
    if listen.is_empty() {
        listen.push(SocketAddr::from(([127, 0, 0, 1], 1883)));
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(serve(listen, file)) {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("error: {msg}");
            1
        }
    }
}

async fn serve(listen: Vec<SocketAddr>, file: BrokerFile) -> Result<(), String> {
    let mut listeners = Vec::new();
    for addr in &listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        tracing::info!(addr = %l.local_addr().map_err(|e| e.to_string())?, "listening");
        listeners.push(l);
    }
    let core = Broker::new(file.broker.clone());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    crate::net::server::serve(core, listeners, None, shutdown)
        .await
        .map_err(|e| e.to_string())
}
