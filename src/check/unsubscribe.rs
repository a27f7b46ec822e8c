//! The "unsubscribe" checker: what an UNSUBACK promises the client that asked for it.
//!
//! Once a client has the UNSUBACK for a filter, the broker has deleted that subscription and
//! must add no new message for the client through it [MQTT-3.10.4-2] (3.1.1 and 5.0 alike): a
//! message published (requested by its publisher) after that UNSUBACK, on a topic that no other
//! filter of the client matches, must never reach it. The broker may still finish messages it
//! had started or buffered before, so a message requested before the UNSUBACK is not judged
//! here, and neither is one requested between the UNSUBSCRIBE and its UNSUBACK ("may"). A
//! filter counts as held again from the client's next SUBSCRIBE of it. That such messages are
//! not owed is the entitlement rule's part (docs/checkers.md, "Entitled"): a subscription stops
//! entitling at the UNSUBSCRIBE.
//!
//! Not here: deliveries through filters never subscribed (the "integrity" checker), wills (the
//! broker publishes them at an instant the trace does not show).

use std::collections::BTreeMap;

use super::model::{Model, Pos};
use super::{CheckConfig, Violation, topic};
use crate::trace::{Event, Trace};

/// The checker's name in the registry.
pub const NAME: &str = "unsubscribe";

/// What one client did with one filter, in trace order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// SUBSCRIBE sent.
    Subscribe,
    /// UNSUBACK received.
    Unsubscribed,
}

pub fn check(trace: &Trace, _cfg: &CheckConfig) -> Vec<Violation> {
    let m = Model::new(trace);
    let mut steps: BTreeMap<(&str, &str), Vec<(Pos, Step)>> = BTreeMap::new();
    for (pos, e) in trace.events.iter().enumerate() {
        let (client, filter, step) = match &e.event {
            Event::SubscribeRequested { client, filter, .. } => (client, filter, Step::Subscribe),
            Event::Unsubscribed { client, filter } => (client, filter, Step::Unsubscribed),
            _ => continue,
        };
        steps
            .entry((client.as_str(), filter.as_str()))
            .or_default()
            .push((pos, step));
    }
    let mut out = Vec::new();
    for d in &m.dels {
        let Some(requested) = m
            .pubs_with(d.label)
            .filter(|p| p.topic == d.topic && p.pos < d.pos)
            .map(|p| p.pos)
            .min()
        else {
            continue;
        };
        let matching: Vec<(&str, &Vec<(Pos, Step)>)> = steps
            .range((d.client, "")..)
            .take_while(|((c, _), _)| *c == d.client)
            .filter(|((_, f), s)| {
                topic::subscription_matches(f, d.topic)
                    && s.iter()
                        .any(|(pos, step)| *step == Step::Subscribe && *pos < d.pos)
            })
            .map(|((_, f), s)| (*f, s))
            .collect();
        // Each matching filter was given up (UNSUBACK) before the request, and not asked for
        // again before the delivery.
        let given_up: Option<Vec<(&str, Pos)>> = matching
            .iter()
            .map(|(f, s)| {
                let unsuback = s
                    .iter()
                    .filter(|(pos, step)| *step == Step::Unsubscribed && *pos < requested)
                    .map(|(pos, _)| *pos)
                    .max()?;
                let again = s
                    .iter()
                    .any(|(pos, step)| *step == Step::Subscribe && *pos > unsuback && *pos < d.pos);
                (!again).then_some((*f, unsuback))
            })
            .collect();
        let Some(given_up) = given_up.filter(|g| !g.is_empty()) else {
            continue;
        };
        let filters: Vec<String> = given_up
            .iter()
            .map(|(f, pos)| format!("{f} (UNSUBACK at {} us)", m.us(*pos)))
            .collect();
        out.push(Violation {
            checker: NAME,
            at_us: m.us(d.pos),
            message: format!(
                "{} received {} on {}, published at {} us, after it had unsubscribed from every filter matching the topic: {} [MQTT-3.10.4-2]",
                d.client,
                d.label,
                d.topic,
                m.us(requested),
                filters.join(", ")
            ),
        });
    }
    out
}
