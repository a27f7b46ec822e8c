//! `mqtt-lab broker`: the broker on real TCP, configured by flags and an optional TOML file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Deserialize;

use crate::broker::auth::{Acl, Auth, PasswordFile};
use crate::broker::{Broker, BrokerConfig, DurableState};
use crate::cli::{EXIT_USAGE, init_logging, require_real_network};
use crate::config::file::{Document, Problem, render};
use crate::net::clock::since_ms;
use crate::net::durability::Mode;
use crate::net::persist;
use crate::net::server::Journal;
use crate::net::store::disk::OsDisk;
use crate::net::store::{Store, StoreError, StoreOptions};
use crate::net::transport::{ServerTlsFiles, TlsVersion, Upgrade};

#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Address to listen on for plain MQTT over TCP, HOST:PORT (repeatable); replaces the config
    /// file's `listen` (its `[[listener]]` entries are kept). Default 127.0.0.1:1883 when
    /// neither gives a listener.
    #[arg(short, long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Vec<String>,
    /// TOML configuration file (listeners, limits, queue policy, persistence).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the log as JSON lines (one object per line: timestamp, level, fields, message)
    /// instead of text.
    #[arg(long)]
    pub log_json: bool,
}

/// The configuration file: `listen`, `password_file`, `acl_file` and the persistence settings
/// at the top, listeners with their own transport under `[[listener]]`, the core's settings
/// under `[broker]` (every field optional; see docs/broker.md for the list and defaults). Relative file paths are relative to the configuration file's folder.
/// Every problem of the file is reported at once, as `FILE: line N: FIELD: REASON`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerFile {
    /// Addresses to listen on for plain MQTT over TCP, `HOST:PORT` (a name like
    /// `localhost:1883` or an IP address).
    #[serde(default)]
    pub listen: Vec<String>,
    /// Listeners with their own transport: TLS, WebSockets, or both.
    #[serde(default)]
    pub listener: Vec<ListenerEntry>,
    /// Users and password hashes (`mqtt-lab passwd`); see docs/auth.md.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Who may publish and subscribe to what; see docs/auth.md.
    #[serde(default)]
    pub acl_file: Option<PathBuf>,
    /// The store (a redb file) where persistent sessions, queued messages, retained messages
    /// and waiting wills are kept across restarts; none when unset.
    pub persistence_file: Option<PathBuf>,
    /// When acknowledged changes reach the disk: `durable` (before any acknowledgement
    /// leaves) or `interval` (synced every `autosave_interval`; a crash may lose the last).
    pub persistence: Keeping,
    /// `interval` persistence: how often committed changes are synced.
    #[serde(with = "crate::config::duration")]
    pub autosave_interval: Duration,
    /// The store's soft size limit in bytes: above it new durable work is refused.
    pub persistence_max_bytes: u64,
    /// How often the broker publishes its figures on `$SYS/broker/...`; `0s` publishes none.
    #[serde(with = "crate::config::duration")]
    pub sys_interval: Duration,
    /// Address of the Prometheus endpoint (`GET /metrics`), `HOST:PORT`; none when unset.
    pub metrics_listen: Option<String>,
    #[serde(default)]
    pub broker: BrokerConfig,
}

impl Default for BrokerFile {
    fn default() -> Self {
        BrokerFile {
            listen: Vec::new(),
            listener: Vec::new(),
            password_file: None,
            acl_file: None,
            persistence_file: None,
            persistence: Keeping::Durable,
            autosave_interval: Duration::from_secs(5),
            persistence_max_bytes: 1 << 30,
            sys_interval: Duration::from_secs(10),
            metrics_listen: None,
            broker: BrokerConfig::default(),
        }
    }
}

/// `persistence` in `broker.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keeping {
    Durable,
    Interval,
}

/// A `[[listener]]`: an address, the transport under MQTT, and TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerEntry {
    /// `HOST:PORT`.
    pub address: String,
    /// `tcp` (MQTT right on TCP, or on TLS) or `websocket` (MQTT over WebSockets).
    #[serde(default)]
    pub transport: TransportKind,
    /// TLS on this listener (under the WebSockets, if any).
    #[serde(default)]
    pub tls: Option<TlsEntry>,
    /// Time a connection has to finish its TLS handshake and WebSocket upgrade.
    #[serde(
        default = "default_handshake_timeout",
        with = "crate::config::duration"
    )]
    pub handshake_timeout: Duration,
}

fn default_handshake_timeout() -> Duration {
    crate::net::transport::HANDSHAKE_TIME
}

/// `transport` of a `[[listener]]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    #[default]
    Tcp,
    Websocket,
}

/// `tls` of a `[[listener]]`: PEM files and the client certificate policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsEntry {
    /// The server certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf certificate.
    pub key: PathBuf,
    /// The authorities whose client certificates are accepted; none: no client certificates.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Refuse clients without a certificate; default: true when `client_ca` is given.
    #[serde(default)]
    pub require_client_cert: Option<bool>,
    /// The certificate's common name is the user name (password and user name of CONNECT are
    /// not looked at).
    #[serde(default)]
    pub use_identity_as_username: bool,
    /// The oldest TLS version accepted: `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: MinVersion,
}

/// `min_version` of `tls`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum MinVersion {
    #[default]
    #[serde(rename = "1.2")]
    V1_2,
    #[serde(rename = "1.3")]
    V1_3,
}

impl TlsEntry {
    fn files(&self) -> ServerTlsFiles {
        ServerTlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: self.client_ca.clone(),
            require_client_cert: self.require_client_cert.unwrap_or(self.client_ca.is_some()),
            use_identity_as_username: self.use_identity_as_username,
            min_version: match self.min_version {
                MinVersion::V1_2 => TlsVersion::V1_2,
                MinVersion::V1_3 => TlsVersion::V1_3,
            },
        }
    }

    /// What is inconsistent in the settings, as (field, reason).
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        let required = self.require_client_cert.unwrap_or(self.client_ca.is_some());
        if self.client_ca.is_none() && self.require_client_cert == Some(true) {
            found.push((
                "require_client_cert",
                "needs client_ca, the authorities that sign client certificates".into(),
            ));
        }
        if self.use_identity_as_username && self.client_ca.is_none() {
            found.push((
                "use_identity_as_username",
                "needs client_ca, the authorities that sign client certificates".into(),
            ));
        } else if self.use_identity_as_username && !required {
            found.push((
                "use_identity_as_username",
                "needs require_client_cert = true (a client without a certificate would have no \
                 user name)"
                    .into(),
            ));
        }
        found
    }
}

/// A listener to open: its address and what it does with each connection.
#[derive(Debug, Clone)]
pub struct ListenerPlan {
    pub address: String,
    pub upgrade: Upgrade,
}

/// Checks a listen address: `HOST:PORT`, the host a name or an IP address (IPv6 in brackets).
fn parse_listen(text: &str) -> Result<String, String> {
    let bad = || format!("{text:?} is not HOST:PORT, like \"localhost:1883\" or \"0.0.0.0:1883\"");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(text.to_string())
}

impl BrokerFile {
    /// Reads and checks the configuration file at `path`; the error lists every problem.
    pub fn load(path: &Path) -> Result<BrokerFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let mut file = BrokerFile::from_str(&text)
            .map_err(|problems| render(&path.display().to_string(), &problems))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let tls_files = file.listener.iter_mut().filter_map(|l| l.tls.as_mut());
        let tls_files =
            tls_files.flat_map(|t| [Some(&mut t.cert), Some(&mut t.key), t.client_ca.as_mut()]);
        for f in [
            file.password_file.as_mut(),
            file.acl_file.as_mut(),
            file.persistence_file.as_mut(),
        ]
        .into_iter()
        .chain(tls_files)
        .flatten()
        {
            *f = dir.join(&*f);
        }
        Ok(file)
    }

    /// Parses and checks configuration text; on failure, every problem in line order.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Result<BrokerFile, Vec<Problem>> {
        let doc = Document::parse(text)?;
        let file: BrokerFile =
            doc.read(doc.root().clone(), &crate::broker::config::RENAMED_FIELDS)?;
        let mut found: Vec<(String, String)> = Vec::new();
        for (i, addr) in file.listen.iter().enumerate() {
            if let Err(reason) = parse_listen(addr) {
                found.push((format!("listen[{i}]"), reason));
            }
        }
        if let Some(Err(reason)) = file.metrics_listen.as_deref().map(parse_listen) {
            found.push(("metrics_listen".into(), reason));
        }
        if !file.broker.sys_interval.is_zero() {
            found.push((
                "broker.sys_interval".into(),
                "is set at the top of the file: `sys_interval = \"10s\"`".into(),
            ));
        }
        for (i, l) in file.listener.iter().enumerate() {
            if let Err(reason) = parse_listen(&l.address) {
                found.push((format!("listener[{i}].address"), reason));
            }
            if l.handshake_timeout.is_zero() {
                found.push((
                    format!("listener[{i}].handshake_timeout"),
                    "must be longer than 0s".into(),
                ));
            }
            for (field, reason) in l.tls.iter().flat_map(TlsEntry::problems) {
                found.push((format!("listener[{i}].tls.{field}"), reason));
            }
        }
        if file.autosave_interval.is_zero() {
            found.push(("autosave_interval".into(), "must be longer than 0s".into()));
        }
        if file.persistence_max_bytes == 0 {
            found.push(("persistence_max_bytes".into(), "must be at least 1".into()));
        }
        for (field, reason) in file.broker.problems() {
            found.push((format!("broker.{field}"), reason));
        }
        if found.is_empty() {
            return Ok(file);
        }
        let mut problems: Vec<Problem> = found
            .into_iter()
            .map(|(field, reason)| doc.problem(field, reason))
            .collect();
        crate::config::file::in_line_order(&mut problems);
        Err(problems)
    }

    /// The listeners to open: `listen` (plain TCP; replaced by `cli_listen` when that is not
    /// empty), then every `[[listener]]`, its TLS files read and checked; `127.0.0.1:1883` when
    /// there is none.
    pub fn listeners(&self, cli_listen: &[String]) -> Result<Vec<ListenerPlan>, String> {
        let plain = if cli_listen.is_empty() {
            &self.listen
        } else {
            cli_listen
        };
        let mut plans: Vec<ListenerPlan> = plain
            .iter()
            .map(|address| ListenerPlan {
                address: address.clone(),
                upgrade: Upgrade::plain(),
            })
            .collect();
        for (i, l) in self.listener.iter().enumerate() {
            let websocket = l.transport == TransportKind::Websocket;
            let upgrade = Upgrade::new(l.tls.as_ref().map(TlsEntry::files).as_ref(), websocket)
                .map_err(|p| match p.field {
                    "transport" => format!("listener[{i}]: {}", p.reason),
                    field => format!("listener[{i}].tls.{field}: {}", p.reason),
                })?
                // Room for a few packets of the largest size in one message.
                .with_max_message(2 * self.broker.max_packet_size as usize)
                .with_handshake_time(l.handshake_timeout);
            plans.push(ListenerPlan {
                address: l.address.clone(),
                upgrade,
            });
        }
        if plans.is_empty() {
            plans.push(ListenerPlan {
                address: "127.0.0.1:1883".to_owned(),
                upgrade: Upgrade::plain(),
            });
        }
        Ok(plans)
    }

    /// Reads the password file and the ACL named by the configuration.
    pub fn auth(&self) -> Result<Auth, String> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|e| format!("{}: cannot read: {e}", path.display()))
        };
        let passwords = match &self.password_file {
            Some(p) => Some(
                PasswordFile::parse(&p.display().to_string(), &read(p)?)
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let acl = match &self.acl_file {
            Some(p) => {
                Some(Acl::parse(&p.display().to_string(), &read(p)?).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        Ok(Auth { passwords, acl })
    }

    /// Opens the store named by `persistence_file`, if any: its lock taken, its last commit
    /// recovered, the state aged by the wall-clock time since that commit. A state file of the
    /// older whole-snapshot format is imported into a new store and kept beside it as
    /// `<file>.mqlstate`.
    /// The state is `None` for a store never committed to.
    pub fn open_store(&self) -> Result<Option<Opened>, String> {
        let Some(path) = &self.persistence_file else {
            return Ok(None);
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: not a file name", path.display()))?
            .to_owned();
        let imported = import_snapshot(path)?;
        let options = StoreOptions::default();
        let (mut store, recovered) =
            Store::open(OsDisk::new(&dir), &name, options).map_err(|e| in_dir(&dir, e))?;
        if let Some((state, saved_at_ms)) = imported {
            store
                .rewrite(&state, saved_at_ms)
                .map_err(|e| in_dir(&dir, e))?;
            tracing::info!(
                sessions = state.sessions.len(),
                retained = state.retained.len(),
                "state file of the older format imported"
            );
            return Ok(Some((store, Some(state.aged(since_ms(saved_at_ms))))));
        }
        tracing::info!(
            sessions = recovered.sessions,
            messages = recovered.messages,
            deliveries = recovered.outbound,
            retained = recovered.retained,
            wills = recovered.wills,
            created = recovered.created,
            "store opened"
        );
        Ok(Some((store, recovered.aged(since_ms))))
    }
}

/// An opened store and the state to restore from it, if it holds one.
pub type Opened = (Store<OsDisk>, Option<DurableState>);

/// A store error, with the store's folder in front of the file name it names.
fn in_dir(dir: &Path, e: StoreError) -> String {
    format!("{}/{e}", dir.display())
}

/// A state file of the whole-snapshot format at `path`: its state and save time, the file moved
/// to `<path>.mqlstate` (so that the store takes its name). `None` for anything else.
fn import_snapshot(path: &Path) -> Result<Option<(DurableState, u64)>, String> {
    let mut head = [0u8; 8];
    let Ok(mut f) = std::fs::File::open(path) else {
        return Ok(None);
    };
    if std::io::Read::read_exact(&mut f, &mut head).is_err() || head != persist::MAGIC {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let (state, saved_at) =
        persist::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let kept = path.with_extension(match path.extension() {
        Some(ext) => format!("{}.mqlstate", ext.to_string_lossy()),
        None => "mqlstate".to_owned(),
    });
    std::fs::rename(path, &kept).map_err(|e| {
        format!(
            "{}: cannot move it to {}: {e}",
            path.display(),
            kept.display()
        )
    })?;
    let ms = saved_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Ok(Some((state, ms)))
}

pub fn run(args: BrokerArgs) -> i32 {
    if let Err(msg) = require_real_network("broker") {
        eprintln!("error: {msg}");
        return EXIT_USAGE;
    }
    init_logging(args.log_json);
    let mut file = match &args.config {
        Some(path) => match BrokerFile::load(path) {
            Ok(f) => f,
            Err(msg) => {
                eprintln!("error: {msg}");
                return EXIT_USAGE;
            }
        },
        None => BrokerFile::default(),
    };
    file.broker.sys_interval = file.sys_interval;
    let auth = match file.auth() {
        Ok(auth) => auth,
        Err(msg) => {
            eprintln!("error: {msg}");
            return EXIT_USAGE;
        }
    };
    let (store, state) = match file.open_store() {
        Ok(Some((store, state))) => (Some(store), state),
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let listen = match file.listeners(&args.listen) {
        Ok(plans) => plans,
        Err(msg) => {
            let origin = args.config.as_deref().unwrap_or(Path::new("broker.toml"));
            eprintln!("error: {}: {msg}", origin.display());
            return EXIT_USAGE;
        }
    };
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
    // The broker runs as a task of the runtime, not on the thread that waits for it: the
    // connections' tasks and the one that routes between them then share worker threads, and
    // handing a packet on is often a switch between tasks instead of between threads.
    let broker = rt.spawn(serve(listen, file, auth, store, state));
    let outcome = rt
        .block_on(broker)
        .unwrap_or_else(|e| Err(format!("the broker stopped: {e}")));
    match outcome {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("error: {msg}");
            1
        }
    }
}

async fn serve(
    listen: Vec<ListenerPlan>,
    file: BrokerFile,
    auth: Auth,
    store: Option<Store<OsDisk>>,
    state: Option<DurableState>,
) -> Result<(), String> {
    let mut listeners = Vec::new();
    for plan in listen {
        let addr = &plan.address;
        let l = tokio::net::TcpListener::bind(addr.as_str())
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        tracing::info!(
            addr = %l.local_addr().map_err(|e| e.to_string())?,
            transport = %plan.upgrade.scheme(),
            "listening"
        );
        listeners.push(crate::net::server::Listener {
            tcp: l,
            upgrade: plan.upgrade,
        });
    }
    let core = match state {
        Some(state) => {
            tracing::info!(
                sessions = state.sessions.len(),
                retained = state.retained.len(),
                wills = state.wills.len(),
                "state restored"
            );
            Broker::restore_at(file.broker.clone(), state, Instant::now())
        }
        None => Broker::new(file.broker.clone()),
    }
    .with_auth(auth);
    let shutdown = shutdown_signal();
    let mode = match file.persistence {
        Keeping::Durable => Mode::Synced,
        Keeping::Interval => Mode::Interval,
    };
    let journal =
        store.map(|s| Journal::new(s, mode, file.autosave_interval, file.persistence_max_bytes));
    let metrics = match &file.metrics_listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr.as_str())
                .await
                .map_err(|e| format!("cannot listen on {addr} (metrics_listen): {e}"))?;
            tracing::info!(addr = %l.local_addr().map_err(|e| e.to_string())?, "metrics endpoint listening");
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            tokio::spawn(crate::net::metrics::serve_metrics(l, tx));
            Some(rx)
        }
        None => None,
    };
    #[cfg(not(madsim))]
    tokio::spawn(crate::net::memory::give_back_freed_memory());
    crate::net::server::serve_observed(core, listeners, journal, metrics, shutdown)
        .await
        .map_err(|e| e.to_string())
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what service managers send).
async fn shutdown_signal() {
    #[cfg(all(unix, not(madsim)))]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_files_are_found_next_to_the_config_and_bad_lines_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("broker.toml");
        std::fs::write(
            &config,
            "password_file = \"users\"\nacl_file = \"acl\"\n[broker]\nallow_anonymous = false\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("users"), "# nobody yet\n").unwrap();
        std::fs::write(dir.path().join("acl"), "user a\ntopic read a/#\n").unwrap();
        let file = BrokerFile::load(&config).unwrap();
        assert!(!file.broker.allow_anonymous);
        let auth = file.auth().unwrap();
        assert!(auth.passwords.unwrap().is_empty());
        assert!(auth.acl.is_some());

        std::fs::write(dir.path().join("acl"), "user a\ntopic rw a/#\n").unwrap();
        let e = file.auth().unwrap_err();
        assert!(e.contains("acl:2: "), "{e}");
        std::fs::remove_file(dir.path().join("users")).unwrap();
        let e = file.auth().unwrap_err();
        assert!(e.contains("users: cannot read"), "{e}");
    }

    #[test]
    fn sys_interval_is_set_at_the_top_and_defaults_to_ten_seconds() {
        let file = BrokerFile::from_str("").unwrap();
        assert_eq!(file.sys_interval, Duration::from_secs(10));
        let file = BrokerFile::from_str("sys_interval = \"0s\"\n").unwrap();
        assert!(file.sys_interval.is_zero());
        let problems = BrokerFile::from_str("[broker]\nsys_interval = \"5s\"\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "broker.sys_interval");
        assert_eq!(problems[0].line, Some(2));
    }

    #[test]
    fn persistence_settings_default_off_and_the_file_is_found_next_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("broker.toml");
        std::fs::write(&config, "listen = []\n").unwrap();
        let file = BrokerFile::load(&config).unwrap();
        assert!(file.open_store().unwrap().is_none());
        assert_eq!(file.autosave_interval, Duration::from_secs(5));
        assert_eq!(file.persistence, Keeping::Durable);

        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(
            &config,
            "persistence_file = \"data/state\"\npersistence = \"interval\"\nautosave_interval = \"250ms\"\n",
        )
        .unwrap();
        let file = BrokerFile::load(&config).unwrap();
        assert_eq!(file.persistence, Keeping::Interval);
        let (store, state) = file.open_store().unwrap().unwrap();
        assert_eq!(store.name(), "state");
        assert_eq!(state, None, "a new store holds no state");
        assert!(dir.path().join("data/state").exists());

        for (text, problem) in [
            (
                "autosave_interval = \"0s\"\n",
                "line 1: autosave_interval: must be longer than 0s",
            ),
            (
                "persistence_max_bytes = 0\n",
                "line 1: persistence_max_bytes: must be at least 1",
            ),
            ("autosave_interval = 5\n", "write \"5s\""),
            ("autosave_interval = \"soon\"\n", "autosave_interval"),
            ("persistence = \"sometimes\"\n", "persistence"),
        ] {
            std::fs::write(&config, text).unwrap();
            let e = BrokerFile::load(&config).unwrap_err();
            assert!(e.contains(problem), "{text}: {e}");
        }
    }
}

#[cfg(test)]
mod listen_tests {
    use super::parse_listen;

    #[test]
    fn a_listen_address_is_host_and_port() {
        for good in [
            "localhost:1883",
            "0.0.0.0:1883",
            "[::1]:1884",
            "broker.example:8883",
        ] {
            assert!(parse_listen(good).is_ok(), "{good}");
        }
        for bad in [
            "localhost",
            "localhost:http",
            ":1883",
            "a b:1883",
            "host:70000",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod listener_tests {
    use super::*;

    #[test]
    fn listener_entries_are_checked_with_their_lines() {
        let shapes = "\
[[listener]]
address = \"0.0.0.0:1\"
transport = \"quic\"

[[listener]]
address = \"0.0.0.0:8885\"
tls = { cert = \"c.pem\", key = \"k.pem\", min_version = \"1.1\", ciphers = \"all\" }
";
        let e = render("broker.toml", &BrokerFile::from_str(shapes).unwrap_err());
        assert_eq!(e.lines().count(), 3, "{e}");
        for expected in [
            "broker.toml: line 3: listener[0].transport: unknown value `quic`, expected `tcp` or \
             `websocket`",
            "broker.toml: line 7: listener[1].tls.min_version: unknown value `1.1`, expected \
             `1.2` or `1.3`",
            "broker.toml: line 7: listener[1].tls.ciphers: unknown field",
        ] {
            assert!(e.contains(expected), "{expected:?} not in\n{e}");
        }
        // Once the shapes are right, the values are checked.
        let values = "\
[[listener]]
address = \"localhost\"

[[listener]]
address = \"0.0.0.0:8883\"
tls = { cert = \"c.pem\", key = \"k.pem\", require_client_cert = true }

[[listener]]
address = \"0.0.0.0:8884\"
tls = { cert = \"c.pem\", key = \"k.pem\", client_ca = \"ca.pem\", require_client_cert = false, use_identity_as_username = true }
";
        let e = render("broker.toml", &BrokerFile::from_str(values).unwrap_err());
        assert_eq!(e.lines().count(), 3, "{e}");
        for expected in [
            "broker.toml: line 2: listener[0].address: ",
            "broker.toml: line 6: listener[1].tls.require_client_cert: needs client_ca",
            "broker.toml: line 10: listener[2].tls.use_identity_as_username: needs \
             require_client_cert = true",
        ] {
            assert!(e.contains(expected), "{expected:?} not in\n{e}");
        }
    }

    #[test]
    fn tls_files_are_found_next_to_the_config_and_a_client_ca_requires_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("broker.toml");
        std::fs::write(
            &config,
            "[[listener]]\naddress = \"127.0.0.1:8883\"\n\
             tls = { cert = \"tls/c.pem\", key = \"tls/k.pem\", client_ca = \"/etc/ca.pem\" }\n",
        )
        .unwrap();
        let file = BrokerFile::load(&config).unwrap();
        let tls = file.listener[0].tls.as_ref().unwrap();
        assert_eq!(tls.cert, dir.path().join("tls/c.pem"));
        assert_eq!(tls.key, dir.path().join("tls/k.pem"));
        assert_eq!(tls.client_ca.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(file.listener[0].transport, TransportKind::Tcp);
        let files = tls.files();
        assert!(files.require_client_cert);
        assert!(!files.use_identity_as_username);
        assert_eq!(files.min_version, TlsVersion::V1_2);
        // Read at start: the missing file is named with its setting.
        let e = file.listeners(&[]).unwrap_err();
        #[cfg(not(madsim))]
        {
            assert!(e.starts_with("listener[0].tls.cert: cannot read "), "{e}");
            assert!(e.contains("tls/c.pem"), "{e}");
        }
        #[cfg(madsim)]
        assert!(e.contains("real network build"), "{e}");
    }

    /// `--listen` replaces `listen`, not the `[[listener]]` entries; with nothing at all the
    /// broker listens on 127.0.0.1:1883.
    #[cfg(not(madsim))]
    #[test]
    fn listen_flags_replace_listen_and_keep_the_listener_entries() {
        let file = BrokerFile::from_str(
            "listen = [\"127.0.0.1:1883\"]\n\
             [[listener]]\naddress = \"127.0.0.1:8080\"\ntransport = \"websocket\"\n",
        )
        .unwrap();
        let plans = |cli: &[&str]| {
            let cli: Vec<String> = cli.iter().map(|s| s.to_string()).collect();
            file.listeners(&cli)
                .unwrap()
                .into_iter()
                .map(|p| format!("{} {}", p.upgrade.scheme(), p.address))
                .collect::<Vec<_>>()
        };
        assert_eq!(plans(&[]), ["mqtt 127.0.0.1:1883", "ws 127.0.0.1:8080"]);
        assert_eq!(
            plans(&["0.0.0.0:1884"]),
            ["mqtt 0.0.0.0:1884", "ws 127.0.0.1:8080"]
        );
        let none = BrokerFile::default().listeners(&[]).unwrap();
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].address, "127.0.0.1:1883");
        assert!(none[0].upgrade.is_plain());
    }
}
