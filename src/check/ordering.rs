//! The "ordering" checker: specification section 4.6, seen from each subscriber.
//!
//! For one publisher, one topic and one published QoS, the first deliveries of messages to a
//! subscriber come in the order the publisher requested them [MQTT-4.6.0-6]. Which
//! deliveries are compared:
//! - only first deliveries: a label already delivered to that subscriber before (a DUP
//!   resend, a QoS 1 duplicate, a retained copy) is a redelivery and is left out, and so are
//!   retained copies (retain flag set: sent because of a new subscription, not forwarded),
//!   and deliveries that may be either (5.0 Retain As Published, see `Model::forwarded`);
//! - QoS 1 and 2: across reconnects within one session of the subscriber (its session chain:
//!   every reconnect had `session_present = true`); after a new session begins, order starts
//!   over, since the old session's messages were discarded;
//! - QoS 0: within one connection of the subscriber only.
//!
//! Messages are ordered by their publish request; only labels that occur in exactly one
//! publish request are judged. Losses are not this checker's concern ("delivery").
//!
//! Order is owed on non-shared subscriptions only (5.0 [MQTT-4.6.0-6]): a member of a shared
//! subscription group may get a message handed on from a member whose session ended after
//! later ones. So a delivery is judged only when the subscriber never asked for a shared
//! filter matching its topic (copies through a shared and a plain filter cannot be told
//! apart); "shared" judges what groups are owed.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{Model, Pos};
use super::{CheckConfig, Violation, topic};
use crate::trace::Trace;

/// The checker's name in the registry.
pub const NAME: &str = "ordering";

pub fn check(trace: &Trace, _cfg: &CheckConfig) -> Vec<Violation> {
    let m = Model::new(trace);
    let mut out = Vec::new();
    for &s in m.clients.keys() {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        // (publisher, topic, qos, scope) -> (request position, label) of the latest-published
        // message first-delivered so far.
        let mut last: BTreeMap<(&str, &str, u8, Pos), (Pos, &str)> = BTreeMap::new();
        // A delivery to a connection already taken over is that connection's, not the
        // session's.
        for d in m
            .dels
            .iter()
            .filter(|d| d.client == s && !m.stale(s, d.pos))
        {
            if !seen.insert(d.label)
                || m.forwarded(d) != Some(true)
                || shared_matches(&m, s, d.topic)
            {
                continue;
            }
            let Some(p) = m.unique_pub(d.label) else {
                continue;
            };
            let scope = if p.qos >= 1 {
                m.chain_at(s, d.pos).unwrap_or(0)
            } else {
                m.epoch_at(s, d.pos).map_or(0, |e| e.start)
            };
            // Order is owed per publishing process (its own session state).
            let publisher = m.process_of(p.pos).unwrap_or(p.client);
            let key = (publisher, p.topic, p.qos, scope);
            match last.get(&key) {
                Some(&(prev_pos, prev_label)) if prev_pos > p.pos => out.push(Violation {
                    checker: NAME,
                    at_us: m.us(d.pos),
                    // The message names the rule by its 3.1.1 label.
                    // 5.0 states it as [MQTT-4.6.0-5], owed on every non-shared subscription
                    // (5.0 [MQTT-4.6.0-6]).
                    message: format!(
                        "{s} received {} after {prev_label}, but {} published {} first (topic {}, QoS {}); first deliveries must keep the publisher's order [MQTT-4.6.0-6]", // 3.1.1
                        p.label, p.client, p.label, p.topic, p.qos
                    ),
                }),
                _ => {
                    last.insert(key, (p.pos, p.label));
                }
            }
        }
    }
    out
}

/// Whether `client` ever asked for a shared subscription whose filter matches `topic`.
fn shared_matches(m: &Model<'_>, client: &str, topic: &str) -> bool {
    m.clients.get(client).is_some_and(|log| {
        log.subs
            .iter()
            .any(|s| topic::shared(s.filter).is_some_and(|(_, inner)| topic::matches(inner, topic)))
    })
}
