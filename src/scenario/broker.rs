//! The `[broker]` section: persistence and limits of the one broker node. Every field has a
//! default, so the section may be left out. Not here: how the broker enforces them.

use serde::Deserialize;

/// What survives a broker crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// Nothing survives: sessions, subscriptions, inflight and queued messages and retained
    /// messages are lost with the process (the default).
    #[default]
    None,
    /// Sessions, subscriptions, inflight and queued messages and retained messages survive a
    /// crash, as a store outside the node's memory would keep them.
    Durable,
}

/// What the broker does when a session's queue of messages for an offline (or slow) client
/// is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// The new message is dropped (the default; mosquitto's behaviour).
    #[default]
    DropNewest,
    /// The oldest queued message is dropped to make room.
    DropOldest,
}

/// `[broker]`: settings of the broker node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// What survives a broker crash. Default `"none"`.
    pub persistence: Persistence,
    /// QoS 1 and 2 messages in flight towards one client at a time (5.0: the broker's
    /// Receive Maximum as well). Default 20.
    pub max_inflight: u16,
    /// Messages queued per session beyond the inflight window. Default 1000.
    pub max_queued: usize,
    /// What happens when a queue is full. Default `"drop_newest"`.
    pub queue_overflow: OverflowPolicy,
    /// Largest packet accepted, in bytes. Default 1,048,576 (1 MiB).
    pub max_packet_size: u32,
    /// Retained messages kept at most. Default 10,000.
    pub max_retained: usize,
    /// Sessions (connected or not) kept at most. Default 1,000.
    pub max_sessions: usize,
    /// Upper bound on a 5.0 Session Expiry Interval the broker accepts (a longer request is
    /// cut to this). Default: none (`"never"` is honoured).
    #[serde(deserialize_with = "super::duration::de_opt_duration")]
    pub max_session_expiry: Option<std::time::Duration>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            persistence: Persistence::None,
            max_inflight: 20,
            max_queued: 1000,
            queue_overflow: OverflowPolicy::DropNewest,
            max_packet_size: 1_048_576,
            max_retained: 10_000,
            max_sessions: 1_000,
            max_session_expiry: None,
        }
    }
}
