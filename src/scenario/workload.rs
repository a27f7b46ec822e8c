//! A `[[workload]]` entry: a stream of PUBLISH packets sent by one client, and its checks
//! (against its client's protocol and the broker's limits). Not here: who
//! receives them (that follows from subscriptions) or how the payload is laid out (the
//! simulator tags each payload with its publisher and sequence number).

use std::time::Duration;

use serde::Deserialize;

use super::checks::{Checks, d};
use super::client::ClientConfig;
use super::properties::MessageProperties;
use super::topic::check_topic_name;
use super::values::{MAX_INTERVAL_S, de_duration, de_opt_duration, de_qos};
use crate::broker::BrokerConfig;
use crate::codec::{Protocol, QoS};

/// Most messages in one workload.
pub const MAX_COUNT: u32 = 100_000;

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
    /// Number of messages, at least 1. Default 1.
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
    /// `max_topic_len`, `max_topic_levels`): a misbehaving client whose messages the broker
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

    /// When the last message is due.
    pub fn last_due(&self) -> Duration {
        self.due(self.count.saturating_sub(1))
    }
}

impl Workload {
    /// Checks `workload[i]`; `clients` and `protocol` tell which protocol its client speaks,
    /// `broker` the limits its messages must fit.
    pub(crate) fn check(
        &self,
        c: &mut Checks<'_>,
        i: usize,
        clients: &[ClientConfig],
        protocol: Protocol,
        broker: &BrokerConfig,
    ) {
        let at = |f: &str| format!("workload[{i}].{f}");
        c.client_ref(&at("client"), &self.client);
        if let Err(reason) = check_topic_name(&self.topic) {
            c.fail(at("topic"), reason);
        }
        // An unknown client is reported above; judge its 5.0 fields as if it spoke 5.0.
        let v5 = clients
            .iter()
            .find(|cl| cl.id == self.client)
            .is_none_or(|cl| cl.protocol_or(protocol).is_v5());
        self.check_pace(c, i);
        self.check_v5_fields(c, i, v5);
        self.check_limits(c, i, broker);
    }

    /// `count`, `every` or `rate`, `start`, and the last message inside the run.
    fn check_pace(&self, c: &mut Checks<'_>, i: usize) {
        let at = |f: &str| format!("workload[{i}].{f}");
        if self.count == 0 {
            c.fail(
                at("count"),
                "must be at least 1: a workload sends something",
            );
        } else if self.count > MAX_COUNT {
            c.fail(
                at("count"),
                format!("{} messages, more than {MAX_COUNT}", self.count),
            );
        }
        match (self.every, self.rate) {
            (Some(_), Some(_)) => c.fail(at("rate"), "give either every or rate, not both"),
            (Some(every), None) => {
                if every < Duration::from_millis(1) {
                    c.fail(at("every"), "must be at least 1ms");
                }
            }
            (None, Some(rate)) => {
                if !(rate > 0.0 && rate <= 1000.0) {
                    c.fail(
                        at("rate"),
                        format!("{rate} is not a rate above 0 and at most 1000 per second"),
                    );
                }
            }
            (None, None) => {}
        }
        if self.payload.is_some() && self.size.is_some() {
            c.fail(at("payload"), "give either payload or size, not both");
        }
        c.within_run(&at("start"), self.start);
        if self.count > 0 && self.start < c.duration {
            let last = self.last_due();
            if last >= c.duration {
                let reason = format!(
                    "the last of {} messages is due at {}, not before the end of the run ({})",
                    self.count,
                    d(last),
                    d(c.duration)
                );
                c.fail(at("count"), reason);
            }
        }
    }

    /// Message expiry and properties, which only 5.0 sends.
    fn check_v5_fields(&self, c: &mut Checks<'_>, i: usize, v5: bool) {
        let at = |f: &str| format!("workload[{i}].{f}");
        if let Some(expiry) = self.message_expiry {
            if !v5 {
                c.fail(at("message_expiry"), "message expiry is MQTT 5.0 only");
            } else if expiry < Duration::from_secs(1) {
                c.fail(at("message_expiry"), "must be at least 1s");
            } else {
                c.whole_seconds(&at("message_expiry"), expiry, MAX_INTERVAL_S);
            }
        }
        if let Some(props) = &self.properties {
            if !v5 {
                c.fail(at("properties"), "message properties are MQTT 5.0 only");
            }
            for (field, reason) in props.problems() {
                c.fail(at(&format!("properties.{field}")), reason);
            }
        }
    }

    /// Messages fit the broker's limits, or the workload says it breaks them on purpose.
    fn check_limits(&self, c: &mut Checks<'_>, i: usize, broker: &BrokerConfig) {
        let at = |f: &str| format!("workload[{i}].{f}");
        let props_len = self.properties.as_ref().map_or(0, |p| p.wire_len());
        let payload_len = self
            .payload
            .as_ref()
            .map_or(self.size(), |p| p.len() as u32)
            .saturating_add(props_len);
        let room = broker
            .max_packet_size
            .saturating_sub(self.topic.len() as u32 + 16);
        let topic_beyond = !broker.topic_limits().admits(&self.topic);
        if self.beyond_limits {
            if payload_len <= room && !topic_beyond {
                c.fail(
                    at("beyond_limits"),
                    "the workload breaks none of max_packet_size, max_topic_len and max_topic_levels",
                );
            }
            if self.qos.as_u8() != 0 {
                c.fail(
                    at("qos"),
                    "a beyond_limits workload is QoS 0: a refused QoS 1 or 2 message would be sent again after every reconnect",
                );
            }
        } else if topic_beyond {
            c.fail(
                at("topic"),
                format!(
                    "{:?} is beyond broker.max_topic_len {} or max_topic_levels {} (set beyond_limits = true to send it anyway)",
                    self.topic, broker.max_topic_len, broker.max_topic_levels
                ),
            );
        }
        if payload_len > room && !self.beyond_limits {
            let field = if self.payload.is_some() {
                at("payload")
            } else {
                at("size")
            };
            c.fail(
                field,
                format!(
                    "{payload_len}-byte payloads do not fit in broker.max_packet_size {}",
                    broker.max_packet_size
                ),
            );
        }
    }
}
