//! MQTT 5.0 topic alias tables, both directions, for one network connection at a time
//! (section 3.3.2.3.4); the broker and client cores each keep one pair per connection. Mappings
//! never outlive a connection: a new one starts with empty tables ([MQTT-3.3.2-7]).
//!
//! - Inbound ([`InboundAliases`]): the peer may use aliases 1 to the Topic Alias Maximum we
//!   announced ([MQTT-3.1.2-26], [MQTT-3.2.2-17], [MQTT-3.3.2-10]). A PUBLISH with a topic and an
//!   alias sets (or replaces) the mapping; one with an empty topic and an alias uses it. Alias 0
//!   or above our maximum is "Topic Alias invalid" (0x94, [MQTT-3.3.2-8], [MQTT-3.3.2-9]); an
//!   alias used before it was set is a protocol error (0x82).
//! - Outbound ([`OutboundAliases`]): up to the peer's Topic Alias Maximum (capped by our own
//!   option) aliases per connection. The first distinct topics sent on the connection get
//!   aliases 1, 2, ... in order of first use: the first PUBLISH of a topic carries the topic and
//!   its alias, later ones the alias and an empty topic. Once every alias is taken further
//!   topics go in full; aliases are never reassigned.
//!
//! Both tables hold at most their maximum (a `u16`) entries. Sans-IO, like the rest of the
//! codec. Not here: which packets get an alias (the cores decide: a resend after a reconnect
//! goes with the full topic, an alias is dropped when the packet would be too large), and what
//! the core does with an [`AliasError`] (a DISCONNECT with its reason code).

use std::collections::BTreeMap;

use super::{Publish, ReasonCode};

/// How the peer misused an inbound topic alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasError {
    /// Alias 0, or above the maximum we announced ([MQTT-3.3.2-8], [MQTT-3.3.2-9]).
    Invalid,
    /// An empty topic with an alias no PUBLISH of this connection has set.
    Unknown,
}

impl AliasError {
    /// The reason code of the DISCONNECT this mistake calls for.
    pub fn reason_code(self) -> ReasonCode {
        match self {
            AliasError::Invalid => ReasonCode::TopicAliasInvalid,
            AliasError::Unknown => ReasonCode::ProtocolError,
        }
    }
}

/// Aliases the peer sets on the current connection: alias → topic. The map is allocated by
/// the first alias set (most connections set none).
#[derive(Debug, Clone, Default)]
pub struct InboundAliases {
    max: u16,
    #[allow(
        clippy::box_collection,
        reason = "8 bytes per connection that sets no alias"
    )]
    topics: Option<Box<BTreeMap<u16, String>>>,
}

impl InboundAliases {
    /// A table accepting aliases 1 to `max` (0: none).
    pub fn new(max: u16) -> InboundAliases {
        InboundAliases { max, topics: None }
    }

    /// A new connection: no mapping carries over.
    pub fn reset(&mut self) {
        self.topics = None;
    }

    /// Resolves the alias of an inbound PUBLISH, leaving the full topic in `p` and no alias
    /// property. A PUBLISH without an alias is left as it is (its topic may be empty, which is
    /// the caller's to judge).
    pub fn resolve(&mut self, p: &mut Publish) -> Result<(), AliasError> {
        let Some(alias) = p.properties.topic_alias.take() else {
            return Ok(());
        };
        if alias == 0 || alias > self.max {
            return Err(AliasError::Invalid);
        }
        if p.topic.is_empty() {
            match self.topics.as_ref().and_then(|t| t.get(&alias)) {
                Some(topic) => p.topic = topic.clone(),
                None => return Err(AliasError::Unknown),
            }
        } else {
            let topics = self.topics.get_or_insert_default();
            topics.insert(alias, p.topic.clone());
        }
        Ok(())
    }

    /// The number of mappings set.
    pub fn len(&self) -> usize {
        self.topics.as_ref().map_or(0, |t| t.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Aliases we assign on the current connection: topic → alias. The map is allocated by the
/// first alias assigned (most connections get none).
#[derive(Debug, Clone, Default)]
pub struct OutboundAliases {
    /// For this connection: the peer's maximum, capped by our own option.
    max: u16,
    #[allow(
        clippy::box_collection,
        reason = "8 bytes per connection given no alias"
    )]
    aliases: Option<Box<BTreeMap<String, u16>>>,
}

impl OutboundAliases {
    /// A new connection on which `max` aliases may be used (0: none).
    pub fn reset(&mut self, max: u16) {
        self.max = max;
        self.aliases = None;
    }

    /// The alias `topic` should be sent with: `Some((alias, known))` where `known` means the
    /// peer already has the mapping (send an empty topic). `None`: send the topic in full.
    pub fn choose(&self, topic: &str) -> Option<(u16, bool)> {
        if let Some(&a) = self.aliases.as_ref().and_then(|m| m.get(topic)) {
            return Some((a, true));
        }
        if self.len() < usize::from(self.max) {
            let a = u16::try_from(self.len() + 1).expect("bounded by max");
            return Some((a, false));
        }
        None
    }

    /// A PUBLISH of `topic` carrying `alias` was sent: a new alias becomes known to the peer.
    pub fn commit(&mut self, topic: &str, alias: u16) {
        let aliases = self.aliases.get_or_insert_default();
        if !aliases.contains_key(topic) {
            aliases.insert(topic.to_owned(), alias);
        }
    }

    /// The number of aliases assigned.
    pub fn len(&self) -> usize {
        self.aliases.as_ref().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Rewrites `p` to use `alias` (from [`OutboundAliases::choose`]): the property set, and the
/// topic taken out (returned) when the peer already knows the mapping.
pub fn apply(p: &mut Publish, alias: u16, known: bool) -> Option<String> {
    p.properties.topic_alias = Some(alias);
    known.then(|| std::mem::take(&mut p.topic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Properties, PropertySet, QoS};

    fn publish(topic: &str, alias: Option<u16>) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.into(),
            pkid: 0,
            properties: Properties::from(PropertySet {
                topic_alias: alias,
                ..PropertySet::default()
            }),
            payload: bytes::Bytes::new(),
        }
    }

    /// [MQTT-3.3.2-10] every alias from 1 to our maximum is accepted; a set mapping resolves an
    /// empty topic, and a new topic replaces it.
    #[test]
    fn mqtt_3_3_2_10_aliases_up_to_our_maximum_resolve() {
        let mut a = InboundAliases::new(2);
        let mut p = publish("a/b", Some(2));
        a.resolve(&mut p).unwrap();
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("a/b", None));
        let mut p = publish("", Some(2));
        a.resolve(&mut p).unwrap();
        assert_eq!(p.topic, "a/b");
        let mut p = publish("c", Some(2));
        a.resolve(&mut p).unwrap();
        let mut p = publish("", Some(2));
        a.resolve(&mut p).unwrap();
        assert_eq!(
            p.topic, "c",
            "a topic with a known alias replaces the mapping"
        );
        assert_eq!(a.len(), 1);
    }

    /// [MQTT-3.3.2-8] alias 0 and aliases above our maximum are "Topic Alias invalid".
    #[test]
    fn mqtt_3_3_2_8_alias_zero_or_above_maximum_is_invalid() {
        let mut a = InboundAliases::new(2);
        for alias in [0, 3] {
            assert_eq!(
                a.resolve(&mut publish("t", Some(alias))),
                Err(AliasError::Invalid)
            );
        }
        let mut none = InboundAliases::new(0);
        assert_eq!(
            none.resolve(&mut publish("t", Some(1))),
            Err(AliasError::Invalid)
        );
    }

    /// An alias used before any PUBLISH set it is a protocol error; no alias is no mistake here.
    #[test]
    fn unknown_alias_or_missing_topic_is_a_protocol_error() {
        let mut a = InboundAliases::new(3);
        assert_eq!(
            a.resolve(&mut publish("", Some(1))),
            Err(AliasError::Unknown)
        );
        assert_eq!(
            a.resolve(&mut publish("", None)),
            Ok(()),
            "no alias: the caller's to judge"
        );
    }

    /// [MQTT-3.3.2-7] nothing carries over to the next connection.
    #[test]
    fn mqtt_3_3_2_7_reset_forgets_every_mapping() {
        let mut a = InboundAliases::new(3);
        a.resolve(&mut publish("t", Some(1))).unwrap();
        a.reset();
        assert_eq!(
            a.resolve(&mut publish("", Some(1))),
            Err(AliasError::Unknown)
        );
        let mut o = OutboundAliases::default();
        o.reset(1);
        o.commit("t", 1);
        o.reset(1);
        assert_eq!(o.choose("t"), Some((1, false)));
    }

    /// [MQTT-3.3.2-9] outbound aliases stay within the maximum; first use carries the topic,
    /// later uses only the alias; topics beyond the maximum go in full.
    #[test]
    fn mqtt_3_3_2_9_outbound_assignment_is_first_come_and_bounded() {
        let mut o = OutboundAliases::default();
        o.reset(2);
        for (topic, want) in [
            ("a", Some((1, false))),
            ("b", Some((2, false))),
            ("a", Some((1, true))),
            ("c", None),
            ("b", Some((2, true))),
        ] {
            let got = o.choose(topic);
            assert_eq!(got, want, "{topic}");
            if let Some((alias, _)) = got {
                o.commit(topic, alias);
            }
        }
        assert_eq!(o.len(), 2);
        let mut p = publish("a", None);
        assert_eq!(apply(&mut p, 1, true).as_deref(), Some("a"));
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("", Some(1)));
        let mut p = publish("b", None);
        assert_eq!(apply(&mut p, 2, false), None);
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("b", Some(2)));
    }

    /// One side's outbound table and the other side's inbound table with the same maximum:
    /// what the sender leaves out, the receiver puts back.
    #[test]
    fn outbound_table_feeds_inbound_table() {
        let mut out = OutboundAliases::default();
        out.reset(2);
        let mut inb = InboundAliases::new(2);
        for topic in ["a", "b", "a", "c", "b", "c", "a"] {
            let mut p = publish(topic, None);
            if let Some((alias, known)) = out.choose(topic) {
                apply(&mut p, alias, known);
                out.commit(topic, alias);
            }
            inb.resolve(&mut p).unwrap();
            assert_eq!((p.topic.as_str(), p.properties.topic_alias), (topic, None));
        }
        assert_eq!((out.len(), inb.len()), (2, 2));
    }
}
