//! The broker's configuration: every bound the core enforces, with its default.
//!
//! Deserialised from the `[broker]` table of a TOML file (unknown fields are refused). Durations
//! are written as whole seconds (`10`) or as a string with a unit (`"500ms"`, `"10s"`, `"2m"`,
//! `"1h"`). Listener addresses and persistence are the shell's business and are not here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What happens when a message must be queued for a session whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueOverflow {
    /// The arriving message is dropped; the queue keeps the older ones.
    #[default]
    DropNewest,
    /// The oldest queued message is dropped to make room for the arriving one.
    DropOldest,
}

/// Every bound of the broker core. See the README for the behaviour at each limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Largest packet accepted from a client, in bytes (whole packet). Advertised in 5.0 CONNACK.
    pub max_packet_size: u32,
    /// Connections open at once; one more is closed right after it is accepted.
    pub max_connections: usize,
    /// Time allowed between accepting a connection and receiving its CONNECT.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Outbound QoS 1 and 2 messages unacknowledged at once, per session (further capped by a
    /// 5.0 client's receive maximum).
    pub max_inflight: u16,
    /// Messages queued per session behind the inflight window or while the client is offline.
    pub max_queued_messages: usize,
    /// Payload bytes queued per session; a message that would go beyond it is dropped (the
    /// arriving one, whatever `queue_overflow` says), reported like a full queue.
    pub max_queued_bytes: usize,
    /// What a full queue does with one more message.
    pub queue_overflow: QueueOverflow,
    /// Subscriptions per session; a SUBSCRIBE beyond it gets a failure code for that filter.
    pub max_subscriptions_per_client: usize,
    /// Retained messages held at once; a retained message for a new topic beyond it is forwarded
    /// but not retained.
    pub max_retained: usize,
    /// Sessions held at once (online and offline); a CONNECT that would create one more is
    /// refused with "server unavailable" (5.0: 0x89 server busy).
    pub max_sessions: usize,
    /// Longest topic name or filter, in bytes.
    pub max_topic_len: usize,
    /// Most levels in a topic name or filter.
    pub max_topic_levels: usize,
    /// Longest keep-alive, in seconds. 65535 means unlimited. Below 65535, a 3.1.1 client asking
    /// for more (or for 0) is refused with "identifier rejected"; a 5.0 client is told this value
    /// as server keep-alive.
    pub max_keep_alive: u16,
    /// Longest client identifier, in bytes (MQTT 3.1 caps it at 23 whatever this says).
    pub max_client_id_len: usize,
    /// Inbound QoS 2 messages awaiting PUBREL at once, per session. Advertised in 5.0 CONNACK;
    /// a client exceeding it is disconnected (5.0: 0x93).
    pub receive_maximum: u16,
    /// Observations (see `BrokerEvent`) buffered until polled; the oldest are dropped beyond it.
    pub max_pending_events: usize,
    /// Longest session expiry interval granted, in seconds (`u32::MAX`: sessions may never
    /// expire). A 5.0 client asking for more is told this value in CONNACK; a 3.1.1 persistent
    /// session expires after it too.
    pub max_session_expiry: u32,
    /// Inbound topic aliases accepted per connection (5.0), advertised in CONNACK; 0 refuses
    /// every alias.
    pub topic_alias_maximum: u16,
    /// Outbound topic aliases the broker uses per connection, further capped by the client's
    /// topic alias maximum; 0 never uses aliases.
    pub max_outbound_topic_aliases: u16,
    /// Whether shared subscriptions (`$share/group/filter`) are accepted; when off they are
    /// refused with 0x9E and CONNACK says so.
    pub shared_subscriptions: bool,
    /// Sent as response information in CONNACK to a 5.0 client that asks for it (request
    /// response information 1); nothing is sent when unset.
    pub response_information: Option<String>,
    /// Whether clients without a verified user name may connect (see the README).
    pub allow_anonymous: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_packet_size: 1024 * 1024,
            max_connections: 10_000,
            connect_timeout: Duration::from_secs(10),
            max_inflight: 20,
            max_queued_messages: 1000,
            max_queued_bytes: 64 * 1024 * 1024,
            queue_overflow: QueueOverflow::DropNewest,
            max_subscriptions_per_client: 1000,
            max_retained: 10_000,
            max_sessions: 100_000,
            max_topic_len: 65_535,
            max_topic_levels: 128,
            max_keep_alive: u16::MAX,
            max_client_id_len: 256,
            receive_maximum: u16::MAX,
            max_pending_events: 1024,
            max_session_expiry: u32::MAX,
            topic_alias_maximum: 10,
            max_outbound_topic_aliases: 10,
            shared_subscriptions: true,
            response_information: None,
            allow_anonymous: true,
        }
    }
}

/// A configuration value out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("broker config: `{field}` {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: &'static str,
}

/// The largest packet the protocol can express (remaining length 268,435,455 + 5 header bytes).
pub const PROTOCOL_MAX_PACKET_SIZE: u32 = 268_435_460;

impl BrokerConfig {
    /// Checks every value; `Broker::new` panics on a configuration this refuses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, reason| Err(ConfigError { field, reason });
        if self.max_packet_size < 2 || self.max_packet_size > PROTOCOL_MAX_PACKET_SIZE {
            return err("max_packet_size", "must be between 2 and 268435460");
        }
        if self.max_inflight == 0 {
            return err("max_inflight", "must be at least 1");
        }
        if self.receive_maximum == 0 {
            return err("receive_maximum", "must be at least 1");
        }
        if self.max_topic_len == 0 || self.max_topic_len > 65_535 {
            return err("max_topic_len", "must be between 1 and 65535");
        }
        if self.max_topic_levels == 0 {
            return err("max_topic_levels", "must be at least 1");
        }
        if self.max_client_id_len == 0 || self.max_client_id_len > 65_535 {
            return err("max_client_id_len", "must be between 1 and 65535");
        }
        if self.max_keep_alive == 0 {
            return err("max_keep_alive", "must be at least 1");
        }
        if self.connect_timeout.is_zero() {
            return err("connect_timeout", "must be positive");
        }
        Ok(())
    }
}

/// Serde for durations: whole seconds as an integer, or a string with a unit.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if d.subsec_nanos() == 0 {
            s.serialize_str(&format!("{}s", d.as_secs()))
        } else {
            s.serialize_str(&format!("{}ms", d.as_millis()))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => parse(&t).map_err(de::Error::custom),
        }
    }

    /// Parses `"500ms"`, `"10s"`, `"2m"`, `"1h"` or a bare number of seconds.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: expected e.g. \"10s\""))?;
        let d = match unit.trim() {
            "ms" => Some(Duration::from_millis(n)),
            "" | "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            _ => {
                return Err(format!(
                    "invalid duration {text:?}: unit must be ms, s, m or h"
                ));
            }
        };
        d.ok_or_else(|| format!("duration {text:?} is too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_fields_override_defaults_and_durations_take_units() {
        let c: BrokerConfig = toml::from_str(
            "max_inflight = 5\nconnect_timeout = \"1500ms\"\nqueue_overflow = \"drop_oldest\"\n",
        )
        .unwrap();
        assert_eq!(c.max_inflight, 5);
        assert_eq!(c.connect_timeout, Duration::from_millis(1500));
        assert_eq!(c.queue_overflow, QueueOverflow::DropOldest);
        assert_eq!(
            c.max_queued_messages,
            BrokerConfig::default().max_queued_messages
        );
        let c: BrokerConfig = toml::from_str("connect_timeout = 7").unwrap();
        assert_eq!(c.connect_timeout, Duration::from_secs(7));
        let c: BrokerConfig = toml::from_str("connect_timeout = \"2m\"").unwrap();
        assert_eq!(c.connect_timeout, Duration::from_secs(120));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let e = toml::from_str::<BrokerConfig>("max_inflite = 5").unwrap_err();
        assert!(e.to_string().contains("max_inflite"), "{e}");
        assert!(toml::from_str::<BrokerConfig>("connect_timeout = \"5 parsecs\"").is_err());
        assert!(toml::from_str::<BrokerConfig>("queue_overflow = \"drop_all\"").is_err());
        let bad = BrokerConfig {
            max_inflight: 0,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "max_inflight");
        assert_eq!(BrokerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn default_round_trips_through_toml() {
        let text = toml::to_string(&BrokerConfig::default()).unwrap();
        let back: BrokerConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, BrokerConfig::default());
    }
}
