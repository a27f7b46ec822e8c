//! Small value types shared by the scenario sections: the protocol version as written in a
//! file (`"3.1.1"`, `"5.0"`), QoS levels as integers `0..=2`, and node names (`"broker"` or a
//! client id). Not here: topic rules (see `topic.rs`), durations (see `duration.rs`).

use serde::{Deserialize, Deserializer};

use crate::codec::{Protocol, QoS};

/// The MQTT version a scenario (or one client) speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (protocol level 4).
    #[serde(rename = "3.1.1")]
    V3_1_1,
    /// MQTT 5.0 (protocol level 5).
    #[serde(rename = "5.0")]
    V5,
}

impl ProtocolVersion {
    /// The codec's protocol for this version.
    pub fn protocol(self) -> Protocol {
        match self {
            ProtocolVersion::V3_1_1 => Protocol::V3_1_1,
            ProtocolVersion::V5 => Protocol::V5,
        }
    }

    pub fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.protocol().fmt(f)
    }
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
