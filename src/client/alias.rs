//! MQTT 5.0 topic aliases, both directions, for one network connection at a time
//! (section 3.3.2.3.4). Mappings never outlive a connection: the core resets both tables
//! whenever a new transport starts ([MQTT-3.3.2-7]).
//!
//! - Inbound: the broker may use aliases 1 to the Topic Alias Maximum we sent in CONNECT
//!   ([MQTT-3.1.2-26], [MQTT-3.3.2-10]). A PUBLISH with a topic and an alias sets (or replaces)
//!   the mapping; one with an empty topic and an alias uses it. Alias 0 or above our maximum is
//!   "Topic Alias invalid" (0x94, [MQTT-3.3.2-8]); an alias used before it was set is a
//!   protocol error (0x82).
//! - Outbound: up to `min(outbound_topic_aliases, the broker's CONNACK Topic Alias Maximum)`
//!   aliases per connection ([MQTT-3.2.2-17], [MQTT-3.3.2-9]). The first distinct topics sent
//!   on the connection get aliases 1, 2, ... in order of first use: the first PUBLISH of a topic
//!   carries the topic and its alias, later ones the alias and an empty topic. Once every alias
//!   is taken further topics go in full; aliases are never reassigned.
//!
//! Both tables hold at most their maximum (a `u16`) entries. Not here: resends after a
//! reconnect, which the core sends with the full topic and no alias.

use std::collections::BTreeMap;

use crate::codec::{Publish, ReasonCode};

/// Aliases the broker sets on the current connection: alias → topic.
#[derive(Debug, Default)]
pub struct InboundAliases {
    max: u16,
    topics: BTreeMap<u16, String>,
}

impl InboundAliases {
    pub fn new(max: u16) -> InboundAliases {
        InboundAliases {
            max,
            topics: BTreeMap::new(),
        }
    }

    /// A new connection: no mapping carries over.
    pub fn reset(&mut self) {
        self.topics.clear();
    }

    /// Resolves the alias of an inbound PUBLISH, leaving the full topic in `p` and no alias
    /// property. `Err` is the reason of the DISCONNECT the broker's mistake calls for.
    pub fn resolve(&mut self, p: &mut Publish) -> Result<(), ReasonCode> {
        let Some(alias) = p.properties.topic_alias.take() else {
            // Section 3.3.2.1: a zero-length topic without an alias is a protocol error.
            return if p.topic.is_empty() {
                Err(ReasonCode::ProtocolError)
            } else {
                Ok(())
            };
        };
        if alias == 0 || alias > self.max {
            return Err(ReasonCode::TopicAliasInvalid);
        }
        if p.topic.is_empty() {
            match self.topics.get(&alias) {
                Some(topic) => p.topic = topic.clone(),
                None => return Err(ReasonCode::ProtocolError),
            }
        } else {
            self.topics.insert(alias, p.topic.clone());
        }
        Ok(())
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.topics.len()
    }
}

/// Aliases we assign on the current connection: topic → alias.
#[derive(Debug, Default)]
pub struct OutboundAliases {
    /// For this connection: our option capped by the broker's maximum.
    max: u16,
    aliases: BTreeMap<String, u16>,
}

impl OutboundAliases {
    /// A new connection whose CONNACK allows `max` aliases (already capped by our option).
    pub fn reset(&mut self, max: u16) {
        self.max = max;
        self.aliases.clear();
    }

    /// The alias `p` should be sent with: `Some((alias, known))` where `known` means the
    /// broker already has the mapping (send an empty topic). `None`: send the topic in full.
    pub fn choose(&self, topic: &str) -> Option<(u16, bool)> {
        if let Some(&a) = self.aliases.get(topic) {
            return Some((a, true));
        }
        if self.aliases.len() < usize::from(self.max) {
            let a = u16::try_from(self.aliases.len() + 1).expect("bounded by max");
            return Some((a, false));
        }
        None
    }

    /// `p` left with alias `alias` set; a new alias becomes known to the broker.
    pub fn commit(&mut self, topic: &str, alias: u16) {
        if !self.aliases.contains_key(topic) {
            self.aliases.insert(topic.to_owned(), alias);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.aliases.len()
    }
}

/// Rewrites `p` to use `alias`: the property set, and the topic taken out (returned) when the
/// broker already knows the mapping.
pub fn apply(p: &mut Publish, alias: u16, known: bool) -> Option<String> {
    p.properties.topic_alias = Some(alias);
    known.then(|| std::mem::take(&mut p.topic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Properties, QoS};

    fn publish(topic: &str, alias: Option<u16>) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.into(),
            pkid: 0,
            properties: Properties {
                topic_alias: alias,
                ..Properties::default()
            },
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
                Err(ReasonCode::TopicAliasInvalid)
            );
        }
        let mut none = InboundAliases::new(0);
        assert_eq!(
            none.resolve(&mut publish("t", Some(1))),
            Err(ReasonCode::TopicAliasInvalid)
        );
    }

    /// An alias used before any PUBLISH set it, or no topic and no alias: protocol error.
    #[test]
    fn unknown_alias_or_missing_topic_is_a_protocol_error() {
        let mut a = InboundAliases::new(3);
        assert_eq!(
            a.resolve(&mut publish("", Some(1))),
            Err(ReasonCode::ProtocolError)
        );
        assert_eq!(
            a.resolve(&mut publish("", None)),
            Err(ReasonCode::ProtocolError)
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
            Err(ReasonCode::ProtocolError)
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
}
