//! A `[[workload]]` entry: a stream of PUBLISH packets sent by one client. Not here: who
//! receives them (that follows from subscriptions) or how the payload is laid out (the
//! simulator tags each payload with its publisher and sequence number).

use std::time::Duration;

use serde::Deserialize;

use super::duration::{de_duration, de_opt_duration};
use super::properties::MessageProperties;
use super::values::de_qos;
use crate::codec::QoS;

/// `[[workload]]`: `count` messages from `client` to `topic`, one every `every` (or at
/// `rate` per second) starting at `start`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// The publishing client's id. Required.
    pub client: String,
    /// Topic name (no wildcards). Required.
    pub topic: String,
    /// Default 0.
    #[serde(default, deserialize_with = "de_qos")]
    pub qos: QoS,
    /// RETAIN flag on every message. Default `false`.
    #[serde(default)]
    pub retain: bool,
    /// Number of messages. Default 1.
    #[serde(default = "default_count")]
    pub count: u32,
    /// Interval between messages. Default `"100ms"` unless `rate` is given; not both.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub every: Option<Duration>,
    /// Messages per second (a float above 0, at most 1000). Not with `every`.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Payload size in bytes. Default 16. The simulator writes an identifying tag
    /// (publisher and sequence number) and pads to this size; a smaller size still carries
    /// the whole tag.
    #[serde(default)]
    pub size: Option<u32>,
    /// A fixed payload text for every message instead of a tagged one (for example `""` with
    /// `retain = true` to clear a retained message). Not with `size`. Messages with a fixed
    /// payload are told apart only by their order.
    #[serde(default)]
    pub payload: Option<String>,
    /// 5.0 Message Expiry Interval sent with every message (whole seconds, at least 1s): the
    /// broker drops a message still waiting for a subscriber after it. Default: none. 5.0 only.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub message_expiry: Option<Duration>,
    /// 5.0 application properties sent with every message (payload format, content type,
    /// response topic, correlation data, user properties). Default: none. 5.0 only.
    #[serde(default)]
    pub properties: Option<MessageProperties>,
    /// Virtual time of the first message. Default `"0s"`; a message due while the client is
    /// offline waits in the client until it is connected again.
    #[serde(default, deserialize_with = "de_duration")]
    pub start: Duration,
    /// The workload deliberately breaks the broker's limits (`max_packet_size`,
    /// `max_topic_length`, `max_topic_levels`): a misbehaving client whose messages the broker
    /// must refuse. QoS 0 only. Default `false` (a workload beyond a limit is an error).
    #[serde(default)]
    pub beyond_limits: bool,
}

fn default_count() -> u32 {
    1
}

/// Default interval between messages of a workload.
pub const DEFAULT_EVERY: Duration = Duration::from_millis(100);
/// Default payload size in bytes.
pub const DEFAULT_SIZE: u32 = 16;

impl Workload {
    /// The interval between two messages: `every`, or `1 / rate` rounded to the microsecond,
    /// or 100ms.
    pub fn interval(&self) -> Duration {
        match (self.every, self.rate) {
            (Some(every), _) => every,
            (None, Some(rate)) => Duration::from_micros((1_000_000.0 / rate).round() as u64),
            (None, None) => DEFAULT_EVERY,
        }
    }

    /// Payload size in bytes (ignored when `payload` is set).
    pub fn size(&self) -> u32 {
        self.size.unwrap_or(DEFAULT_SIZE)
    }

    /// The message expiry interval in whole seconds, as sent in each PUBLISH.
    pub fn message_expiry_s(&self) -> Option<u32> {
        self.message_expiry
            .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
    }

    /// When message number `seq` (0-based) is due.
    pub fn due(&self, seq: u32) -> Duration {
        self.start + self.interval() * seq
    }

    /// When the last message is due (`start` when `count` is 0).
    pub fn last_due(&self) -> Duration {
        self.due(self.count.saturating_sub(1))
    }
}
