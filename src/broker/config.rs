//! The broker's configuration: every bound the core enforces, with its default, and the checks
//! that refuse a value the broker could not work with ([`BrokerConfig::problems`]).
//!
//! This is the `[broker]` table of both `broker.toml` and a scenario file (unknown fields are
//! refused). Durations use the grammar of [`crate::config::duration`] (`"500ms"`, `"10s"`,
//! `"2m"`; a session expiry may be `"never"`). Listener addresses, persistence, users and ACL
//! belong to whoever runs the core (the shell's `broker.toml`, a scenario) and are not here.

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

/// Every bound of the broker core. docs/broker.md gives the behaviour at each limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Largest packet accepted from a client, in bytes (whole packet). Advertised in 5.0 CONNACK.
    pub max_packet_size: u32,
    /// Connections open at once; one more is closed right after it is accepted.
    pub max_connections: usize,
    /// Time allowed between accepting a connection and receiving its CONNECT.
    #[serde(with = "crate::config::duration")]
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
    /// session expires after it too. Written as a duration in whole seconds, or `"never"`.
    #[serde(with = "crate::config::duration::expiry_secs")]
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
    /// Whether clients without a verified user name may connect (see docs/auth.md).
    pub allow_anonymous: bool,
    /// How often the broker publishes its figures on `$SYS/broker/...` topics (`sys.rs`);
    /// `0s` (the default of the core and of scenarios) publishes none. `mqtt-lab broker` sets
    /// it from its own top-level `sys_interval` (default 10 s).
    #[serde(with = "crate::config::duration")]
    pub sys_interval: Duration,
}

/// Names the `[broker]` table (of `broker.toml` and of a scenario) refuses, with the name to use
/// instead.
pub const RENAMED_FIELDS: [crate::config::file::Renamed; 3] = [
    crate::config::file::Renamed {
        field: "broker.max_queued",
        now: "max_queued_messages",
    },
    crate::config::file::Renamed {
        field: "broker.max_subscriptions",
        now: "max_subscriptions_per_client",
    },
    crate::config::file::Renamed {
        field: "broker.max_topic_length",
        now: "max_topic_len",
    },
];

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
            sys_interval: Duration::ZERO,
        }
    }
}

/// A configuration value the broker cannot work with: the first of [`BrokerConfig::problems`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("broker config: `{field}` {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

/// The smallest `max_packet_size`: room for a CONNECT with a short client id and a will.
pub const MIN_PACKET_SIZE: u32 = 64;

impl BrokerConfig {
    /// The topic length and level limits of `max_topic_len` and `max_topic_levels`.
    pub fn topic_limits(&self) -> crate::codec::topic::TopicLimits {
        crate::codec::topic::TopicLimits {
            max_len: self.max_topic_len,
            max_levels: self.max_topic_levels,
        }
    }

    /// Checks every value; `Broker::new` panics on a configuration this refuses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some((field, reason)) => Err(ConfigError { field, reason }),
            None => Ok(()),
        }
    }

    /// Every value the broker could not work with, as `(field, reason)`, in field order.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = Vec::new();
        let max = crate::codec::MAX_PACKET_SIZE;
        if !(MIN_PACKET_SIZE..=max).contains(&self.max_packet_size) {
            out.push((
                "max_packet_size",
                format!(
                    "{} is outside {MIN_PACKET_SIZE} to {max} bytes (below {MIN_PACKET_SIZE} not even a CONNECT with a short client id and a will fits)",
                    self.max_packet_size
                ),
            ));
        }
        let at_least_one: [(&'static str, usize); 8] = [
            ("max_connections", self.max_connections),
            ("max_inflight", usize::from(self.max_inflight)),
            ("receive_maximum", usize::from(self.receive_maximum)),
            ("max_queued_bytes", self.max_queued_bytes),
            (
                "max_subscriptions_per_client",
                self.max_subscriptions_per_client,
            ),
            ("max_sessions", self.max_sessions),
            ("max_topic_levels", self.max_topic_levels),
            ("max_keep_alive", usize::from(self.max_keep_alive)),
        ];
        for (field, value) in at_least_one {
            if value == 0 {
                out.push((field, "must be at least 1".to_string()));
            }
        }
        if self.connect_timeout.is_zero() {
            out.push(("connect_timeout", "must be longer than 0s".to_string()));
        }
        if !(1..=65_535).contains(&self.max_topic_len) {
            out.push((
                "max_topic_len",
                format!("{} is outside 1 to 65535 bytes", self.max_topic_len),
            ));
        }
        if !(1..=65_535).contains(&self.max_client_id_len) {
            out.push((
                "max_client_id_len",
                format!("{} is outside 1 to 65535 bytes", self.max_client_id_len),
            ));
        }
        out
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
        let e = toml::from_str::<BrokerConfig>("connect_timeout = 7").unwrap_err();
        assert!(e.to_string().contains("write \"7s\""), "{e}");
        let c: BrokerConfig = toml::from_str("connect_timeout = \"2m\"").unwrap();
        assert_eq!(c.connect_timeout, Duration::from_secs(120));
        let c: BrokerConfig = toml::from_str("max_session_expiry = \"1h\"").unwrap();
        assert_eq!(c.max_session_expiry, 3600);
        let c: BrokerConfig = toml::from_str("max_session_expiry = \"never\"").unwrap();
        assert_eq!(c.max_session_expiry, u32::MAX);
        assert!(toml::from_str::<BrokerConfig>("max_session_expiry = \"1.5s\"").is_err());
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
        let unusable = BrokerConfig {
            max_packet_size: 20,
            max_connections: 0,
            max_client_id_len: 0,
            receive_maximum: 0,
            ..Default::default()
        };
        let fields: Vec<&str> = unusable.problems().iter().map(|p| p.0).collect();
        assert_eq!(
            fields,
            [
                "max_packet_size",
                "max_connections",
                "receive_maximum",
                "max_client_id_len"
            ]
        );
    }

    #[test]
    fn default_round_trips_through_toml() {
        let text = toml::to_string(&BrokerConfig::default()).unwrap();
        let back: BrokerConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, BrokerConfig::default());
    }
}
