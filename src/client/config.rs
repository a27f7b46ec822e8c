//! The client's configuration: CONNECT options, limits, timers, reconnect and buffer policy.
//!
//! Every field has a default (see [`ClientConfig::default`] and docs/client.md) and the whole
//! struct deserializes with serde, missing fields taking their defaults. Durations are written
//! as strings with a unit in the grammar of [`crate::config::duration`] (`"250ms"`, `"10s"`,
//! `"2m"`, `"1h"`); the protocol as `"3.1"`, `"3.1.1"` or `"5.0"`. Validation of the values
//! happens in [`ClientConfig::validate`]; nothing here talks to a broker.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Deserializer};

use crate::codec::{LastWill, MAX_PACKET_SIZE, Properties, PropertySet, Protocol, QoS};

/// Client settings. docs/client.md gives the behaviour each one controls.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    #[serde(deserialize_with = "de_protocol")]
    pub protocol: Protocol,
    /// May be empty: 5.0 brokers assign one (kept for reconnects); 3.1.1 brokers accept an
    /// empty id only with a clean session.
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5.0), sent on every CONNECT.
    pub clean_start: bool,
    /// 5.0 session expiry interval in seconds; `None` sends nothing (0: session ends with the
    /// connection).
    pub session_expiry: Option<u32>,
    /// Seconds; 0 disables keep-alive. A 5.0 broker may override it (server keep alive).
    pub keep_alive: u16,
    #[serde(deserialize_with = "de_will")]
    pub will: Option<LastWill>,
    pub username: Option<String>,
    #[serde(deserialize_with = "de_password")]
    pub password: Option<Bytes>,
    /// Inbound QoS 1/2 publishes we accept unacknowledged on one connection (5.0 property,
    /// sent when below 65535). A 5.0 broker that exceeds it is disconnected with 0x93
    /// (Receive Maximum exceeded). Ignored by 3.1.1, whose broker is never told.
    pub receive_maximum: u16,
    /// Largest packet we accept (5.0 property when below [`MAX_PACKET_SIZE`]; the shell's
    /// framer enforces it in both versions, 5.0 with DISCONNECT 0x95 Packet too large).
    pub max_packet_size: u32,
    /// Topic aliases the broker may use towards us per connection (5.0 Topic Alias Maximum,
    /// sent when above 0). 0, the default, refuses every alias. 5.0 only.
    pub topic_alias_maximum: u16,
    /// Topic aliases we use on our PUBLISHes per connection, further capped by the broker's
    /// CONNACK Topic Alias Maximum: the first distinct topics sent on a connection get aliases
    /// in order of first use. 0, the default, never uses aliases. 5.0 only.
    pub outbound_topic_aliases: u16,
    /// Requests holding a packet identifier at once (QoS 1/2 publishes, subscribes,
    /// unsubscribes). Outbound QoS 1/2 publishes are further limited by the broker's receive
    /// maximum.
    pub max_inflight: u16,
    /// After a PINGREQ, how long to wait for any packet before the connection is declared dead.
    #[serde(deserialize_with = "crate::config::duration::deserialize")]
    pub ping_timeout: Duration,
    /// From asking for a transport until CONNACK.
    #[serde(deserialize_with = "crate::config::duration::deserialize")]
    pub connect_timeout: Duration,
    pub reconnect: ReconnectPolicy,
    /// Requests waiting to be written (made while disconnected, or waiting for an inflight slot
    /// or a packet identifier).
    pub max_buffered: usize,
    pub buffer_policy: BufferPolicy,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            protocol: Protocol::V3_1_1,
            client_id: String::new(),
            clean_start: true,
            session_expiry: None,
            keep_alive: 60,
            will: None,
            username: None,
            password: None,
            receive_maximum: u16::MAX,
            max_packet_size: 1024 * 1024,
            topic_alias_maximum: 0,
            outbound_topic_aliases: 0,
            max_inflight: 100,
            ping_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            reconnect: ReconnectPolicy::default(),
            max_buffered: 1000,
            buffer_policy: BufferPolicy::DropOldest,
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("client config field `{field}`: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: &'static str,
}

impl ClientConfig {
    /// Checks the values against each other and against the protocol.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, reason| Err(ConfigError { field, reason });
        if self.receive_maximum == 0 {
            return err("receive_maximum", "must be at least 1");
        }
        if self.max_inflight == 0 {
            return err("max_inflight", "must be at least 1");
        }
        if self.max_packet_size < 64 || self.max_packet_size > MAX_PACKET_SIZE {
            return err("max_packet_size", "must be between 64 and 268435460");
        }
        if self.client_id.len() > usize::from(u16::MAX) {
            return err("client_id", "longer than 65535 bytes");
        }
        if self.ping_timeout.is_zero() {
            return err("ping_timeout", "must be positive");
        }
        if self.connect_timeout.is_zero() {
            return err("connect_timeout", "must be positive");
        }
        if !(0.0..=1.0).contains(&self.reconnect.jitter) {
            return err("reconnect.jitter", "must be between 0 and 1");
        }
        if self.reconnect.min_backoff.is_zero() {
            return err("reconnect.min_backoff", "must be positive");
        }
        if self.reconnect.max_backoff < self.reconnect.min_backoff {
            return err("reconnect.max_backoff", "must not be below min_backoff");
        }
        if self.client_id.is_empty() && !self.clean_start && !self.protocol.is_v5() {
            return err(
                "client_id",
                "3.1.1 and 3.1 need a client id unless clean_start is set",
            );
        }
        if self.topic_alias_maximum > 0 && !self.protocol.is_v5() {
            return err("topic_alias_maximum", "topic aliases need MQTT 5.0");
        }
        if self.outbound_topic_aliases > 0 && !self.protocol.is_v5() {
            return err("outbound_topic_aliases", "topic aliases need MQTT 5.0");
        }
        if self.password.is_some() && self.username.is_none() && !self.protocol.is_v5() {
            return err("password", "3.1.1 needs a username with a password");
        }
        if let Some(will) = &self.will
            && crate::codec::topic::validate_topic_name(&will.topic).is_err()
        {
            return err("will.topic", "not a valid topic name");
        }
        Ok(())
    }
}

/// Reconnect after a lost connection, with exponential backoff and seeded jitter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconnectPolicy {
    pub enabled: bool,
    /// The delay before the first retry (before jitter).
    #[serde(deserialize_with = "crate::config::duration::deserialize")]
    pub min_backoff: Duration,
    /// The delay stops doubling here.
    #[serde(deserialize_with = "crate::config::duration::deserialize")]
    pub max_backoff: Duration,
    /// 0: exact delays; 1: anywhere between 0 and the delay. The delay is drawn uniformly from
    /// `[d × (1 − jitter), d]`.
    pub jitter: f64,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            enabled: true,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            jitter: 0.5,
        }
    }
}

/// What happens to a publish when the outbox already holds `max_buffered` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferPolicy {
    /// The oldest buffered publish is dropped (`PublishLost { BufferOverflow }`) to make room:
    /// fresh data wins.
    #[default]
    DropOldest,
    /// The new publish is accepted and at once reported `PublishLost { BufferOverflow }`: what
    /// was buffered first is kept, without gaps.
    DropNewest,
    /// `publish` returns [`ClientError::BufferFull`](super::ClientError::BufferFull).
    Reject,
}

fn de_protocol<'de, D: Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "3.1" | "V3_1" => Ok(Protocol::V3_1),
        "3.1.1" | "V3_1_1" => Ok(Protocol::V3_1_1),
        "5" | "5.0" | "V5" => Ok(Protocol::V5),
        _ => Err(serde::de::Error::custom(format!(
            "unknown protocol {s:?}: expected \"3.1\", \"3.1.1\" or \"5.0\""
        ))),
    }
}

fn de_password<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Bytes>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Bytes::from))
}

/// The will as written in a configuration file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WillSpec {
    topic: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    qos: u8,
    #[serde(default)]
    retain: bool,
    /// 5.0 will delay interval, seconds.
    #[serde(default)]
    delay: Option<u32>,
}

fn de_will<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LastWill>, D::Error> {
    let Some(spec) = Option::<WillSpec>::deserialize(d)? else {
        return Ok(None);
    };
    let qos = QoS::from_u8(spec.qos).ok_or_else(|| {
        serde::de::Error::custom(format!("will qos {} is not 0, 1 or 2", spec.qos))
    })?;
    Ok(Some(LastWill {
        topic: spec.topic,
        payload: Bytes::from(spec.payload),
        qos,
        retain: spec.retain,
        properties: Properties::from(PropertySet {
            will_delay_interval: spec.delay,
            ..PropertySet::default()
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes_with_defaults_and_units() {
        let c: ClientConfig = serde_json::from_str(
            r#"{"protocol":"5.0","client_id":"s1","keep_alive":5,"ping_timeout":"1500ms",
                "reconnect":{"max_backoff":"2m"},"will":{"topic":"a/b","payload":"x","qos":1,"delay":3},
                "buffer_policy":"drop_newest"}"#,
        )
        .unwrap();
        assert_eq!(c.protocol, Protocol::V5);
        assert_eq!(c.ping_timeout, Duration::from_millis(1500));
        assert_eq!(c.reconnect.max_backoff, Duration::from_secs(120));
        assert_eq!(
            c.reconnect.min_backoff,
            ReconnectPolicy::default().min_backoff
        );
        assert_eq!(c.buffer_policy, BufferPolicy::DropNewest);
        let will = c.will.as_ref().unwrap();
        assert_eq!(
            (will.qos, will.properties.will_delay_interval),
            (QoS::AtLeastOnce, Some(3))
        );
        assert_eq!(c.max_inflight, ClientConfig::default().max_inflight);
        c.validate().unwrap();
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        assert!(serde_json::from_str::<ClientConfig>(r#"{"keepalive":5}"#).is_err());
        assert!(serde_json::from_str::<ClientConfig>(r#"{"ping_timeout":"5"}"#).is_err());
        assert!(serde_json::from_str::<ClientConfig>(r#"{"protocol":"4"}"#).is_err());
        let bad = ClientConfig {
            max_inflight: 0,
            ..ClientConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "max_inflight");
        let mut bad = ClientConfig::default();
        bad.reconnect.jitter = 1.5;
        assert_eq!(bad.validate().unwrap_err().field, "reconnect.jitter");
        let bad = ClientConfig {
            topic_alias_maximum: 1,
            ..ClientConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "topic_alias_maximum");
        let bad = ClientConfig {
            outbound_topic_aliases: 1,
            ..ClientConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "outbound_topic_aliases");
    }
}
