//! Small values shared by the scenario sections, as written in a file: the protocol version
//! (`"3.1.1"`, `"5.0"`), QoS levels as integers `0..=2`, node names (`"broker"` or a client id),
//! and durations of at most one week of virtual time. Not here: topic rules (see `topic.rs`),
//! the duration grammar (see [`crate::config::duration`]).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::codec::{Protocol, QoS};
use crate::config::duration::{self, Bound};

/// Largest keep-alive MQTT can carry, in seconds (two bytes).
pub const MAX_KEEP_ALIVE_S: u64 = u16::MAX as u64;
/// Largest will delay and message expiry MQTT can carry, in seconds (four bytes).
pub const MAX_INTERVAL_S: u64 = u32::MAX as u64;
/// Largest session expiry short of "never" (0xFFFFFFFF), in seconds.
pub const MAX_SESSION_EXPIRY_S: u64 = u32::MAX as u64 - 1;

/// The longest duration a scenario may state: one week of virtual time.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

const WEEK: Bound = Bound {
    max: MAX_DURATION,
    name: "one week",
};

/// `deserialize_with` adapter for a required duration.
pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration::deserialize_within(d, WEEK)
}

/// `deserialize_with` adapter for an optional duration.
pub(crate) fn de_opt_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// `deserialize_with` adapter for a `[low, high]` duration range.
pub(crate) fn de_duration_range<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<[Duration; 2], D::Error> {
    duration::deserialize_range_within(d, WEEK)
}

/// `deserialize_with` adapter for an optional `[low, high]` duration range.
pub(crate) fn de_opt_duration_range<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<[Duration; 2]>, D::Error> {
    de_duration_range(d).map(Some)
}

/// `deserialize_with` adapter for an optional session expiry: a duration or `"never"`.
pub(crate) fn de_opt_expiry<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration::deserialize_expiry_within(d, WEEK).map(Some)
}

/// `deserialize_with` adapter: a protocol version a scenario speaks, `"3.1.1"` or `"5.0"`.
pub(crate) fn de_protocol<'de, D: Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
    let text = String::deserialize(d)?;
    match text.as_str() {
        "3.1.1" => Ok(Protocol::V3_1_1),
        "5.0" => Ok(Protocol::V5),
        _ => Err(serde::de::Error::custom(format!(
            "unknown protocol `{text}`, expected `3.1.1` or `5.0`"
        ))),
    }
}

/// `deserialize_with` adapter for an optional protocol version.
pub(crate) fn de_opt_protocol<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Protocol>, D::Error> {
    de_protocol(d).map(Some)
}

/// `deserialize_with` adapter: a QoS written as the integer 0, 1 or 2.
pub(crate) fn de_qos<'de, D: Deserializer<'de>>(d: D) -> Result<QoS, D::Error> {
    let n = i64::deserialize(d)?;
    u8::try_from(n)
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| serde::de::Error::custom(format!("qos must be 0, 1 or 2, got {n}")))
}

/// The name every scenario uses for the broker node.
pub const BROKER: &str = "broker";

/// A node of the simulated world: the broker or one client.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Broker,
    Client(String),
}

impl Node {
    /// `"broker"` is the broker; any other name is a client id (checked by validation).
    pub fn from_name(name: &str) -> Node {
        if name == BROKER {
            Node::Broker
        } else {
            Node::Client(name.to_string())
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Node::Broker => BROKER,
            Node::Client(id) => id,
        }
    }
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Most clients in one scenario.
pub const MAX_CLIENTS: usize = 10_000;
