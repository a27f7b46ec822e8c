//! The "subscription" checker: what the 5.0 options and identifier of a subscription promise
//! about each message forwarded through it, seen from the subscriber.
//!
//! - No Local: a client is never forwarded its own message (a publish request it made with
//!   that label and topic) when every subscription it asked for that matches the topic had No
//!   Local [MQTT-3.8.3-3]. Retained copies sent because of a new subscription are not
//!   forwarded messages and are not judged by this rule.
//! - Subscription identifiers: a delivery carries only identifiers that the client gave a
//!   matching subscription before it [MQTT-3.3.4-3]; a forwarded message carries exactly the
//!   identifiers of the matching subscriptions the client held when it was published, all in
//!   one copy or spread over one copy per subscription [MQTT-3.3.4-4] [MQTT-3.3.4-5]. This
//!   exact rule is judged only in clear windows: nothing of a matching filter was subscribed,
//!   unsubscribed or answered, and no new session began, between the publish request and the
//!   delivery; the message has exactly one publish request; the client holds no matching
//!   shared subscription.
//! - Retain As Published: a forwarded message of a retained publish carries RETAIN 1 when every
//!   matching subscription the client held (in a clear window, as above) had Retain As
//!   Published [MQTT-3.3.1-13].
//!
//! Not here: RETAIN 1 on a forwarded message without Retain As Published and retain handling
//! (the "retained" checker), No Local in what the client is owed (the "delivery" checker),
//! application properties (the "integrity" checker).

use std::collections::BTreeSet;

use super::model::{Del, Model, Pos, Pub, SubEv, SubKind};
use super::{CheckConfig, Violation, topic};
use crate::trace::Trace;

/// The checker's name in the registry.
pub const NAME: &str = "subscription";

pub fn check(trace: &Trace, _cfg: &CheckConfig) -> Vec<Violation> {
    let m = Model::new(trace);
    let mut out = Vec::new();
    for d in &m.dels {
        let Some(log) = m.clients.get(d.client) else {
            continue;
        };
        let asked: Vec<&SubEv<'_>> = log
            .subs
            .iter()
            .filter(|s| {
                s.pos < d.pos
                    && matches!(s.kind, SubKind::Requested(_))
                    && topic::subscription_matches(s.filter, d.topic)
            })
            .collect();
        let say = |message: String| Violation {
            checker: NAME,
            at_us: m.us(d.pos),
            message,
        };
        let own = m
            .pubs_with(d.label)
            .any(|p| p.client == d.client && p.topic == d.topic && p.pos < d.pos);
        let forwarded = m.forwarded(d) == Some(true);
        if own && forwarded && !asked.is_empty() && asked.iter().all(|s| s.options.no_local) {
            out.push(say(format!(
                "{} got its own message {} on {}, but every subscription of it matching the topic had No Local [MQTT-3.8.3-3]", // 5.0
                d.client, d.label, d.topic
            )));
        }
        let given: BTreeSet<u32> = asked.iter().filter_map(|s| s.options.id).collect();
        let foreign: Vec<u32> = d
            .ids
            .iter()
            .copied()
            .filter(|id| !given.contains(id))
            .collect();
        if !foreign.is_empty() {
            out.push(say(format!(
                "{} got {} on {} with subscription identifiers {:?}, but it gave {:?} no subscription matching the topic (its identifiers there: {:?}) [MQTT-3.3.4-3]",
                d.client, d.label, d.topic, d.ids, foreign, given
            )));
            continue;
        }
        // 5.0 rules hold for a client whose connection is 5.0, whatever the scenario's.
        if !m.v5_at(d.client, d.pos)
            || !forwarded
            || asked.iter().any(|s| topic::shared(s.filter).is_some())
        {
            continue;
        }
        let Some(p) = m.unique_pub(d.label).filter(|p| p.topic == d.topic) else {
            continue;
        };
        let Some(held) = held_clearly(&m, d, p) else {
            continue;
        };
        let expected: BTreeSet<u32> = held.iter().filter_map(|s| s.options.id).collect();
        let got: BTreeSet<u32> = d.ids.iter().copied().collect();
        let extra: Vec<u32> = got.difference(&expected).copied().collect();
        if !extra.is_empty() {
            out.push(say(format!(
                "{} got {} on {} with subscription identifiers {:?}, but its matching subscriptions when {} published it had {:?} [MQTT-3.3.4-3]",
                d.client, d.label, d.topic, d.ids, p.client, expected
            )));
        } else if first_forward(&m, d) {
            // One copy with every identifier, or one copy per subscription: together they
            // carry them all.
            let all: BTreeSet<u32> = m
                .dels_of(d.label, d.client)
                .filter(|e| m.forwarded(e) == Some(true))
                .flat_map(|e| e.ids.iter().copied())
                .collect();
            let missing: Vec<u32> = expected.difference(&all).copied().collect();
            // A QoS 0 copy of its own may have been lost to a fault on the way.
            let lossless = d.qos >= 1 || !m.disturbed(d.client, p.pos, m.end.unwrap_or(d.pos));
            if !missing.is_empty() && lossless {
                out.push(say(format!(
                    "{} got {} on {} without subscription identifiers {:?} of its matching subscriptions (it carried {:?}) [MQTT-3.3.4-4]",
                    d.client, d.label, d.topic, missing, d.ids
                )));
            }
        }
        if p.retain
            && !d.retain
            && !held.is_empty()
            && held.iter().all(|s| s.options.retain_as_published)
        {
            out.push(say(format!(
                "{} got {} on {} with RETAIN 0, but it was published retained and every matching subscription of {} had Retain As Published [MQTT-3.3.1-13]",
                d.client, d.label, d.topic, d.client
            )));
        }
    }
    out
}

/// Whether `d` is the first forwarded delivery of its label to its client.
fn first_forward(m: &Model<'_>, d: &Del<'_>) -> bool {
    m.dels_of(d.label, d.client)
        .find(|e| m.forwarded(e) == Some(true))
        .is_some_and(|e| e.pos == d.pos)
}

/// The requests of the matching plain subscriptions `d.client` held when `p` was published,
/// if that is clear: no event of a matching filter and no new session from `p`'s request to
/// `d`, and each such filter's latest event before `p` settled (granted or gone). A
/// subscription with No Local does not count for the client's own message.
fn held_clearly<'a, 't>(m: &'a Model<'t>, d: &Del<'_>, p: &Pub<'_>) -> Option<Vec<&'a SubEv<'t>>> {
    let log = m.clients.get(d.client)?;
    let matching = |s: &&SubEv<'_>| topic::matches(s.filter, d.topic);
    let window = |pos: Pos| p.pos <= pos && pos <= d.pos;
    if log.subs.iter().filter(matching).any(|s| window(s.pos))
        || log
            .epochs
            .iter()
            .any(|e| !e.session_present && window(e.start))
        || m.lossy_crash_between(p.pos, d.pos).is_some()
    {
        return None;
    }
    let chain = m.chain_at(d.client, p.pos);
    let mut filters: Vec<&str> = log.subs.iter().filter(matching).map(|s| s.filter).collect();
    filters.sort_unstable();
    filters.dedup();
    let mut held = Vec::new();
    for f in filters {
        let evs: Vec<&SubEv<'t>> = log
            .subs
            .iter()
            .filter(|s| s.filter == f && s.pos < p.pos)
            .collect();
        let Some(last) = evs.last() else {
            continue;
        };
        match last.kind {
            SubKind::Requested(_) => return None,
            SubKind::Granted(None) | SubKind::UnsubRequested => continue,
            SubKind::Granted(Some(_)) => {}
        }
        if m.chain_at(d.client, last.pos) != chain {
            continue;
        }
        let Some(request) = evs
            .iter()
            .rev()
            .find(|s| matches!(s.kind, SubKind::Requested(_)))
        else {
            continue;
        };
        if request.options.no_local && p.client == d.client {
            continue;
        }
        held.push(*request);
    }
    Some(held)
}
