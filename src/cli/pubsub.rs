//! `mqtt-lab pub` and `mqtt-lab sub`: command-line MQTT tools on the async client, with the
//! flags of `mosquitto_pub` / `mosquitto_sub` where they overlap.
//!
//! This file holds what both tools share: the connection flags ([`ConnArgs`]), the exit codes,
//! the error type, connecting with a clear verdict, and the `-d` packet trace. The tools
//! themselves are in `pubsub/publish.rs` and `pubsub/subscribe.rs`; each has an async entry
//! point that tests call in-process and a `run_*` wrapper for the binary.
//!
//! TLS (`--cafile`, with `--cert` / `--key` for a client certificate) and WebSockets (`--ws`)
//! are set up by the client's [`Connector`](crate::net::transport::Connector).
//!
//! What is not here: proxies, reconnecting (a lost connection ends the tool).

mod publish;
mod subscribe;

pub use publish::{PubArgs, publish, run_pub};
pub use subscribe::{SubArgs, SubHooks, run_sub, subscribe};

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::cli::EXIT_USAGE;
use crate::client::{ClientConfig, ClientEvent, DownCause};
use crate::codec::{LastWill, Packet, Properties, Protocol, QoS, ReasonCode};
use crate::net::client::{ClientOptions, Events, MqttClient, Observer, Wire};

/// Exit code: the operation failed after connecting (publish not confirmed or rejected,
/// subscription refused, connection lost, output closed with an error).
pub const EXIT_FAILED: i32 = 1;
/// Exit code: the broker could not be reached (TCP connect failed, or no CONNACK in time).
pub const EXIT_UNREACHABLE: i32 = 4;
/// Exit code: the broker refused the connection (CONNACK with an error code, or it closed the
/// connection without a CONNACK).
pub const EXIT_REFUSED: i32 = 5;
/// Exit code: `sub -W` timed out before `-C` messages arrived (the value `mosquitto_sub` uses).
pub const EXIT_TIMEOUT: i32 = 27;

/// A tool's failure: the message printed after `error: ` and the process exit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    pub code: i32,
    pub message: String,
}

impl ToolError {
    pub fn new(code: i32, message: impl Into<String>) -> ToolError {
        ToolError {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> ToolError {
        ToolError::new(EXIT_USAGE, message)
    }
}

/// The connection flags both tools take (as `mosquitto_pub` / `mosquitto_sub` spell them).
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Broker host.
    #[arg(short = 'h', long, default_value = "localhost")]
    pub host: String,
    /// Broker port.
    #[arg(short = 'p', long, default_value_t = 1883)]
    pub port: u16,
    /// Client id (default: mqttlab-<p|s><pid>-<hex>).
    #[arg(short = 'i', long = "id")]
    pub id: Option<String>,
    /// Keep-alive in seconds (0 disables it).
    #[arg(short = 'k', long = "keepalive", default_value_t = 60)]
    pub keepalive: u16,
    /// User name.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw")]
    pub password: Option<String>,
    /// Protocol version: mqttv5, mqttv311 or mqttv31 (also 5, 311, 31).
    #[arg(short = 'V', long = "protocol-version", default_value = "mqttv311", value_parser = parse_protocol)]
    pub protocol: Protocol,
    /// QoS of the messages sent (pub) or of the subscriptions (sub): 0, 1 or 2.
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    pub qos: QoS,
    /// Print every packet sent and received to stderr.
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// Topic of the will, published by the broker if the connection ends without DISCONNECT.
    #[arg(long = "will-topic", value_name = "TOPIC")]
    pub will_topic: Option<String>,
    /// Payload of the will (default empty).
    #[arg(long = "will-payload", value_name = "PAYLOAD")]
    pub will_payload: Option<String>,
    /// QoS of the will.
    #[arg(long = "will-qos", value_name = "QOS", default_value = "0", value_parser = parse_qos)]
    pub will_qos: QoS,
    /// Retain the will.
    #[arg(long = "will-retain")]
    pub will_retain: bool,
    /// Connect over TLS, trusting the certificate authorities in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Client certificate (PEM) for TLS, with --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Name the broker's TLS certificate must carry (default: --host).
    #[arg(long = "tls-server-name", value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Speak MQTT over WebSockets (over TLS with --cafile).
    #[arg(long)]
    pub ws: bool,
    /// The path of the WebSocket URL.
    #[arg(long = "ws-path", value_name = "PATH", default_value = "/mqtt")]
    pub ws_path: String,
}

/// Parses `-V`: `mqttv5`, `mqttv311`, `mqttv31`, or `5`, `311`, `31`.
pub fn parse_protocol(s: &str) -> Result<Protocol, String> {
    match s {
        "mqttv5" | "5" => Ok(Protocol::V5),
        "mqttv311" | "311" => Ok(Protocol::V3_1_1),
        "mqttv31" | "31" => Ok(Protocol::V3_1),
        _ => Err(format!(
            "unknown protocol version {s:?}: use mqttv5, mqttv311 or mqttv31"
        )),
    }
}

/// Parses a QoS flag: 0, 1 or 2.
pub fn parse_qos(s: &str) -> Result<QoS, String> {
    s.parse::<u8>()
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("invalid QoS {s:?}: use 0, 1 or 2"))
}

impl ConnArgs {
    /// `host:port`, with brackets around an IPv6 address.
    pub fn broker(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The client configuration these flags describe. `tool` (`'p'` or `'s'`) marks the
    /// default client id; `persistent` asks for a session that outlives the connection.
    pub fn client_config(&self, tool: char, persistent: bool) -> Result<ClientConfig, ToolError> {
        if self.will_topic.is_none() && (self.will_payload.is_some() || self.will_retain) {
            return Err(ToolError::usage(
                "--will-payload and --will-retain need --will-topic",
            ));
        }
        if let Some(topic) = &self.will_topic {
            crate::client::validate_topic_name(topic)
                .map_err(|why| ToolError::usage(format!("invalid will topic {topic:?}: {why}")))?;
        }
        if self.password.is_some() && self.username.is_none() && !self.protocol.is_v5() {
            return Err(ToolError::usage(
                "-P needs -u with MQTT 3.1.1 and 3.1 (use -V mqttv5 for a password alone)",
            ));
        }
        let client_id = match &self.id {
            Some(id) => id.clone(),
            None => default_client_id(tool),
        };
        if self.protocol == Protocol::V3_1 && !(1..=23).contains(&client_id.len()) {
            return Err(ToolError::usage(
                "MQTT 3.1 client ids are 1 to 23 characters long",
            ));
        }
        let mut config = ClientConfig {
            protocol: self.protocol,
            client_id,
            clean_start: !persistent,
            session_expiry: (persistent && self.protocol.is_v5()).then_some(u32::MAX),
            keep_alive: self.keepalive,
            will: self.will_topic.as_ref().map(|topic| LastWill {
                topic: topic.clone(),
                payload: self.will_payload.clone().unwrap_or_default().into(),
                qos: self.will_qos,
                retain: self.will_retain,
                properties: Properties::default(),
            }),
            username: self.username.clone(),
            password: self.password.clone().map(Into::into),
            ..ClientConfig::default()
        };
        config.reconnect.enabled = false;
        config
            .validate()
            .map_err(|e| ToolError::usage(e.to_string()))?;
        Ok(config)
    }

    /// Options for [`MqttClient::start`], with the `-d` trace when asked for; the TLS files
    /// are read here.
    pub fn options(&self, config: ClientConfig) -> Result<ClientOptions, ToolError> {
        let id = config.client_id.clone();
        let mut options = ClientOptions::new(self.broker(), config);
        if self.debug {
            options.observer = Some(debug_observer(id));
        }
        if (self.cert.is_some() || self.tls_server_name.is_some()) && self.cafile.is_none() {
            return Err(ToolError::usage(
                "--cert, --key and --tls-server-name need --cafile (TLS)",
            ));
        }
        if let Some(ca_file) = &self.cafile {
            let files = crate::net::transport::ClientTlsFiles {
                ca_file: ca_file.clone(),
                cert: self.cert.clone(),
                key: self.key.clone(),
                server_name: self.tls_server_name.clone(),
            };
            options.connector = options
                .connector
                .with_tls(&files, &self.host)
                .map_err(ToolError::usage)?;
        }
        if self.ws {
            if !self.ws_path.starts_with('/') {
                return Err(ToolError::usage("--ws-path must start with /"));
            }
            options.connector = options.connector.with_websocket(&self.ws_path);
        }
        Ok(options)
    }
}

fn default_client_id(tool: char) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "mqttlab-{tool}{}-{:04x}",
        std::process::id() % 10_000_000,
        nanos & 0xffff
    )
}

/// Prints `Client ID sending|received TYPE` lines to stderr, with PUBLISH details.
fn debug_observer(id: String) -> Observer {
    std::sync::Arc::new(move |_at: Instant, wire: Wire<'_>| {
        let (verb, packet) = match wire {
            Wire::Sent(p) => ("sending", p),
            Wire::Received(p) => ("received", p),
        };
        eprintln!("Client {id} {verb} {}", describe(packet));
    })
}

/// A packet as the `-d` trace shows it.
pub fn describe(packet: &Packet) -> String {
    let name = format!("{:?}", packet.packet_type()).to_uppercase();
    match packet {
        Packet::Publish(p) => format!(
            "{name} (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
            u8::from(p.dup),
            p.qos.as_u8(),
            u8::from(p.retain),
            p.pkid,
            p.topic,
            p.payload.len()
        ),
        Packet::ConnAck(c) => format!("{name} ({:?})", c.reason),
        Packet::SubAck(s) => format!("{name} ({:?})", s.reasons),
        _ => name,
    }
}

/// Words for a CONNACK refusal, with its code as the connection's protocol carries it: a 5.0
/// reason code, or a 3.1.1 (and 3.1) return code.
pub fn refusal_text(reason: ReasonCode, protocol: Protocol) -> String {
    use ReasonCode::*;
    if !protocol.is_v5() {
        let code = crate::codec::reason::connack_v3_return_code(reason);
        let words = match code {
            1 => "unacceptable protocol version",
            2 => "identifier rejected",
            4 => "bad user name or password",
            5 => "not authorized",
            _ => "server unavailable",
        };
        return format!("{words} (return code {code})");
    }
    let words = match reason {
        UnsupportedProtocolVersion => "unacceptable protocol version",
        ClientIdentifierNotValid => "client identifier rejected",
        ServerUnavailable => "server unavailable",
        BadUserNameOrPassword => "bad user name or password",
        NotAuthorized => "not authorized",
        ServerBusy => "server busy",
        Banned => "banned",
        other => return format!("{other:?} (0x{:02x})", other.as_u8()),
    };
    format!("{words} ({reason:?}, 0x{:02x})", reason.as_u8())
}

/// A SUBACK refusal of `filter`, with its code as the connection's protocol carries it.
pub fn suback_refusal_text(filter: &str, reason: ReasonCode, protocol: Protocol) -> String {
    if protocol.is_v5() {
        format!("{filter} ({reason:?}, 0x{:02x})", reason.as_u8())
    } else {
        format!(
            "{filter} (Failure, return code 0x{:02x})",
            crate::codec::reason::suback_v3_return_code(reason)
        )
    }
}

/// Starts the client and waits for the broker's verdict on the connection.
pub async fn connect(options: ClientOptions) -> Result<(MqttClient, Events), ToolError> {
    let broker = options.broker.clone();
    let protocol = options.config.protocol;
    let (client, mut events) = MqttClient::start(options)
        .map_err(|e| ToolError::usage(format!("cannot start the client: {e}")))?;
    loop {
        match events.recv().await {
            Some(ClientEvent::Connected { .. }) => return Ok((client, events)),
            Some(ClientEvent::ConnectionLost { cause }) => {
                client.disconnect(ReasonCode::Success).await;
                return Err(connect_failure(&broker, cause, protocol));
            }
            Some(_) => continue,
            None => {
                return Err(ToolError::new(
                    EXIT_FAILED,
                    "the client stopped before connecting",
                ));
            }
        }
    }
}

/// The error for a connection attempt of `protocol` that ended for `cause`.
pub fn connect_failure(broker: &str, cause: DownCause, protocol: Protocol) -> ToolError {
    match cause {
        DownCause::Io(kind) => ToolError::new(
            EXIT_UNREACHABLE,
            format!("cannot connect to {broker}: {kind}"),
        ),
        DownCause::ConnectTimeout => ToolError::new(
            EXIT_UNREACHABLE,
            format!("no CONNACK from {broker} in time"),
        ),
        DownCause::Refused(reason) => ToolError::new(
            EXIT_REFUSED,
            format!(
                "{broker} refused the connection: {}",
                refusal_text(reason, protocol)
            ),
        ),
        DownCause::PeerClosed => ToolError::new(
            EXIT_REFUSED,
            format!("{broker} closed the connection without accepting it"),
        ),
        other => ToolError::new(EXIT_FAILED, format!("connecting to {broker}: {other}")),
    }
}

/// Builds the runtime the tools run on (one thread is plenty).
fn runtime() -> Result<tokio::runtime::Runtime, ToolError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ToolError::new(EXIT_FAILED, format!("cannot start the runtime: {e}")))
}

/// Prints a tool's result and returns its exit code.
fn finish(result: Result<(), ToolError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    #[command(disable_help_flag = true)]
    struct Harness {
        #[command(flatten)]
        conn: ConnArgs,
    }

    fn conn(args: &[&str]) -> ConnArgs {
        let mut argv = vec!["t"];
        argv.extend_from_slice(args);
        Harness::try_parse_from(argv).unwrap().conn
    }

    #[test]
    fn protocol_and_qos_flags_parse_as_mosquitto_spells_them() {
        for (s, p) in [
            ("mqttv5", Protocol::V5),
            ("5", Protocol::V5),
            ("mqttv311", Protocol::V3_1_1),
            ("311", Protocol::V3_1_1),
            ("mqttv31", Protocol::V3_1),
            ("31", Protocol::V3_1),
        ] {
            assert_eq!(parse_protocol(s), Ok(p));
        }
        assert!(parse_protocol("4").is_err());
        assert_eq!(parse_qos("2"), Ok(QoS::ExactlyOnce));
        assert!(parse_qos("3").is_err());
        assert!(parse_qos("x").is_err());
    }

    #[test]
    fn connection_flags_become_the_client_config() {
        let c = conn(&[
            "-h",
            "::1",
            "-p",
            "1999",
            "-i",
            "me",
            "-k",
            "7",
            "-u",
            "user",
            "-P",
            "pw",
            "-V",
            "mqttv5",
            "--will-topic",
            "w/t",
            "--will-payload",
            "bye",
            "--will-qos",
            "1",
            "--will-retain",
        ]);
        assert_eq!(c.broker(), "[::1]:1999");
        let config = c.client_config('s', true).unwrap();
        assert_eq!(config.client_id, "me");
        assert_eq!(config.keep_alive, 7);
        assert_eq!(config.protocol, Protocol::V5);
        assert!(!config.clean_start);
        assert_eq!(config.session_expiry, Some(u32::MAX));
        assert_eq!(config.username.as_deref(), Some("user"));
        assert_eq!(config.password.as_deref(), Some(&b"pw"[..]));
        assert!(!config.reconnect.enabled, "the tools never reconnect");
        let will = config.will.unwrap();
        assert_eq!(
            (
                will.topic.as_str(),
                &will.payload[..],
                will.qos,
                will.retain
            ),
            ("w/t", &b"bye"[..], QoS::AtLeastOnce, true)
        );
    }

    #[test]
    fn inconsistent_connection_flags_are_usage_errors() {
        let e = conn(&["--will-payload", "x"])
            .client_config('p', false)
            .unwrap_err();
        assert_eq!(e.code, EXIT_USAGE);
        assert!(e.message.contains("--will-topic"), "{e}");
        let e = conn(&["--will-topic", "a/#"])
            .client_config('p', false)
            .unwrap_err();
        assert_eq!(e.code, EXIT_USAGE);
        let e = conn(&["-P", "secret"])
            .client_config('p', false)
            .unwrap_err();
        assert_eq!(e.code, EXIT_USAGE);
        let e = conn(&["-V", "31", "-i", "an-id-longer-than-23-chars"])
            .client_config('p', false)
            .unwrap_err();
        assert_eq!(e.code, EXIT_USAGE);
    }

    #[test]
    fn default_client_ids_fit_mqtt_3_1() {
        let c = conn(&["-V", "mqttv31"]);
        let config = c.client_config('p', false).unwrap();
        assert!(config.client_id.starts_with("mqttlab-p"));
        assert!(config.client_id.len() <= 23, "{}", config.client_id);
    }

    #[test]
    fn connect_failures_map_to_distinct_exit_codes() {
        let b = "127.0.0.1:1";
        assert_eq!(
            connect_failure(
                b,
                DownCause::Io(std::io::ErrorKind::ConnectionRefused),
                Protocol::V5
            )
            .code,
            EXIT_UNREACHABLE
        );
        assert_eq!(
            connect_failure(b, DownCause::ConnectTimeout, Protocol::V5).code,
            EXIT_UNREACHABLE
        );
        let e = connect_failure(
            b,
            DownCause::Refused(ReasonCode::NotAuthorized),
            Protocol::V5,
        );
        assert_eq!(e.code, EXIT_REFUSED);
        assert!(
            e.message.ends_with("not authorized (NotAuthorized, 0x87)"),
            "{e}"
        );
        assert_eq!(
            connect_failure(b, DownCause::PeerClosed, Protocol::V3_1_1).code,
            EXIT_REFUSED
        );
    }

    #[test]
    fn a_3_1_1_refusal_is_reported_with_its_3_1_1_return_code() {
        for (reason, text) in [
            (
                ReasonCode::BadUserNameOrPassword,
                "bad user name or password (return code 4)",
            ),
            (ReasonCode::NotAuthorized, "not authorized (return code 5)"),
            (
                ReasonCode::ClientIdentifierNotValid,
                "identifier rejected (return code 2)",
            ),
            (
                ReasonCode::ServerUnavailable,
                "server unavailable (return code 3)",
            ),
        ] {
            for protocol in [Protocol::V3_1_1, Protocol::V3_1] {
                let e = connect_failure("b", DownCause::Refused(reason), protocol);
                assert!(e.message.ends_with(text), "{e}");
                assert!(!e.message.contains("0x8"), "{e}");
            }
        }
        assert_eq!(
            suback_refusal_text("a/#", ReasonCode::UnspecifiedError, Protocol::V3_1_1),
            "a/# (Failure, return code 0x80)"
        );
        assert_eq!(
            suback_refusal_text("a/#", ReasonCode::NotAuthorized, Protocol::V5),
            "a/# (NotAuthorized, 0x87)"
        );
    }
}
