//! A `[[client]]` entry: one simulated client node, its session settings, keep-alive, will,
//! subscriptions, reconnect policy and the times it connects and leaves. Not here: workloads
//! (`[[workload]]`) and faults (`[[fault]]`), which refer to clients by id.

use std::time::Duration;

use serde::Deserialize;

use super::duration::{de_duration, de_expiry, de_opt_duration};
use super::values::{ProtocolVersion, de_qos};
use crate::codec::QoS;

/// `[[client]]`: one client node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Client identifier, unique in the scenario; also the node's name. Required; not
    /// `"broker"`.
    pub id: String,
    /// This client's MQTT version. Default: the scenario's `protocol`.
    #[serde(default)]
    pub protocol: Option<ProtocolVersion>,
    /// 3.1.1 Clean Session flag. Default `true`. Only for 3.1.1 clients (5.0 uses
    /// `clean_start`). Read the effective value with [`ClientConfig::clean`].
    #[serde(default)]
    pub clean_session: Option<bool>,
    /// 5.0 Clean Start flag. Default `true`. Only for 5.0 clients.
    #[serde(default)]
    pub clean_start: Option<bool>,
    /// 5.0 Session Expiry Interval: a duration or `"never"`. Default `"0s"` (the session ends
    /// with the connection). Only for 5.0 clients; must be whole seconds.
    #[serde(default, deserialize_with = "de_expiry_opt")]
    pub session_expiry: Option<Duration>,
    /// Keep-alive interval, whole seconds up to 65535s; `"0s"` disables it. Default `"30s"`.
    #[serde(default = "default_keep_alive", deserialize_with = "de_duration")]
    pub keep_alive: Duration,
    /// The will message. Default: none.
    #[serde(default)]
    pub will: Option<WillConfig>,
    /// Subscriptions sent after every connect that finds no session on the broker.
    /// Default: none.
    #[serde(default)]
    pub subscribe: Vec<SubscriptionConfig>,
    /// Whether the subscriptions are sent again after a connect that resumed a session
    /// (`session_present = 1`), as many applications do. Default `false`: only after a connect
    /// that found no session.
    #[serde(default)]
    pub resubscribe: bool,
    /// How the client reconnects after losing its connection.
    #[serde(default)]
    pub reconnect: ReconnectPolicy,
    /// 5.0 Receive Maximum sent in CONNECT: QoS 1/2 messages the broker may have unacknowledged
    /// towards this client on one connection, 1 to 65535. The client disconnects a broker that
    /// sends more (0x93). Default: none sent (65535). Only for 5.0 clients.
    #[serde(default)]
    pub receive_maximum: Option<u16>,
    /// 5.0 Maximum Packet Size sent in CONNECT, in bytes, 64 to 268435460: the broker must not
    /// send larger packets (it drops such messages for this client; the client disconnects a
    /// broker that sends one, 0x95). Default: the broker's `max_packet_size`. Only for 5.0
    /// clients.
    #[serde(default)]
    pub max_packet_size: Option<u32>,
    /// 5.0 Topic Alias Maximum sent in CONNECT: topic aliases the broker may use towards this
    /// client per connection. Default 0 (none). Only for 5.0 clients.
    #[serde(default)]
    pub topic_alias_maximum: u16,
    /// Topic aliases this client uses on its own PUBLISHes per connection, capped by the
    /// broker's Topic Alias Maximum: the first distinct topics it sends on a connection get
    /// aliases. Default 0 (none). Only for 5.0 clients.
    #[serde(default)]
    pub topic_aliases: u16,
    /// When the client first connects. Default `"0s"`.
    #[serde(default, deserialize_with = "de_duration")]
    pub connect_at: Duration,
    /// When the client sends a normal DISCONNECT and goes offline (no will is published).
    /// Default: never.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub disconnect_at: Option<Duration>,
    /// When the client connects again after `disconnect_at` (same id, same session settings).
    /// Default: it stays offline.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub reconnect_at: Option<Duration>,
    /// User name sent in CONNECT. Default: none (anonymous).
    #[serde(default)]
    pub username: Option<String>,
    /// Password sent in CONNECT (plain text). Default: none. A 3.1.1 client needs a
    /// `username` with it.
    #[serde(default)]
    pub password: Option<String>,
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

fn de_expiry_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_expiry(d).map(Some)
}

impl ClientConfig {
    /// The effective protocol of this client, given the scenario's.
    pub fn protocol_or(&self, scenario: ProtocolVersion) -> ProtocolVersion {
        self.protocol.unwrap_or(scenario)
    }

    /// The effective Clean Session (3.1.1) or Clean Start (5.0) flag. Default `true`.
    pub fn clean(&self) -> bool {
        self.clean_session.or(self.clean_start).unwrap_or(true)
    }

    /// The effective 5.0 Session Expiry Interval. Default zero.
    pub fn session_expiry(&self) -> Duration {
        self.session_expiry.unwrap_or(Duration::ZERO)
    }

    /// Whether the broker keeps this client's session after its connection ends: 3.1.1 with
    /// Clean Session 0, or 5.0 with a non-zero Session Expiry Interval.
    pub fn persistent_session(&self, scenario: ProtocolVersion) -> bool {
        if self.protocol_or(scenario).is_v5() {
            self.session_expiry() > Duration::ZERO
        } else {
            !self.clean()
        }
    }
}

/// `will = { ... }`: the will message of a client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WillConfig {
    /// Topic name (no wildcards). Required.
    pub topic: String,
    /// Payload text. Default `""`.
    #[serde(default)]
    pub payload: String,
    /// Default 0.
    #[serde(default, deserialize_with = "de_qos")]
    pub qos: QoS,
    /// Default `false`.
    #[serde(default)]
    pub retain: bool,
    /// 5.0 Will Delay Interval, whole seconds. Default `"0s"`. Only for 5.0 clients.
    #[serde(default, deserialize_with = "de_duration")]
    pub delay: Duration,
}

/// `subscribe = [{ filter = "...", qos = 1 }]`: one subscription.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// Topic filter; `+` and `#` allowed. Required.
    pub filter: String,
    /// Maximum QoS. Default 0.
    #[serde(default, deserialize_with = "de_qos")]
    pub qos: QoS,
    /// 5.0 No Local: do not receive own publishes. Default `false`. Only for 5.0 clients.
    #[serde(default)]
    pub no_local: bool,
    /// 5.0 Retain As Published. Default `false`. Only for 5.0 clients.
    #[serde(default)]
    pub retain_as_published: bool,
    /// 5.0 Retain Handling: 0 send retained on subscribe, 1 only if the subscription is new,
    /// 2 never. Default 0. Only for 5.0 clients.
    #[serde(default)]
    pub retain_handling: u8,
    /// 5.0 Subscription Identifier, 1 to 268435455, carried by the messages this subscription
    /// matches. Default: none. Entries with different identifiers go in separate SUBSCRIBE
    /// packets (the identifier belongs to the packet). Only for 5.0 clients.
    #[serde(default)]
    pub id: Option<u32>,
}

/// `reconnect = { ... }`: the client's reconnect policy. Backoff doubles from `min_backoff`
/// up to `max_backoff` after each failed attempt and resets after a successful CONNACK.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectPolicy {
    /// Whether the client reconnects at all. Default `true`.
    pub enabled: bool,
    /// First wait after a lost connection. Default `"100ms"`.
    #[serde(deserialize_with = "de_duration")]
    pub min_backoff: Duration,
    /// Longest wait between attempts. Default `"5s"`.
    #[serde(deserialize_with = "de_duration")]
    pub max_backoff: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            enabled: true,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}
