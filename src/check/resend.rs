//! Resends carry DUP ([MQTT-3.3.1-1]), judged for the "integrity" checker from the packet
//! identifiers a subscriber saw (`delivered` at QoS 1 and 2, `publish_received`).
//!
//! - A QoS 2 `publish_received` whose packet identifier the client still holds awaiting PUBREL
//!   (this process sent PUBREC for it, received no PUBREL since, and no connect since found its
//!   session gone) is a resend whatever else happened: the broker cannot reuse an identifier
//!   before the PUBCOMP that follows that PUBREL. It must carry DUP 1.
//! - A `delivered` without DUP of a message the same client already received with the same
//!   packet identifier, in the same session (no `connected` with session present 0 between), is
//!   a resend too when nothing else can have made a second PUBLISH of it: the label belongs to
//!   one publish request, which its publisher saw acknowledged on the connection it was
//!   requested on (so the broker received it once); the client asked for only one filter
//!   matching its topic (no overlapping subscriptions, which may each bring a copy); and, for
//!   a retained publish, no SUBSCRIBE of a matching filter may have been processed after it
//!   (which would bring a retained copy). Otherwise the verdict is unknown and nothing is said.
//!
//! - A client's own resend (`publish_sent` of a label it already sent under the same packet
//!   identifier in the same session) must carry DUP 1 as well.
//!
//! Not here: how many copies arrive (`qos.rs`), the DUP flag at QoS 0 (`integrity`).

use std::collections::BTreeSet;

use super::model::{Model, Pos, Pub, SubKind};
use super::{Violation, topic};
use crate::trace::{AckPacket, Event, Fault};

/// One PUBLISH with a packet identifier that reached a client.
struct Arrival<'t> {
    pos: Pos,
    label: &'t str,
    topic: &'t str,
    pkid: u16,
    dup: bool,
    /// Arrived while the client held its identifier awaiting PUBREL.
    duplicate: bool,
}

/// A client's own resend carries DUP too ([MQTT-3.3.1-1]): a `publish_sent` of a label this
/// process already sent under the same packet identifier, in the same session (no CONNACK with
/// session present 0 since, no crash or power-off of the process, which forgets what it sent),
/// is a resend and must have DUP 1.
fn client_resends(m: &Model<'_>, checker: &'static str, out: &mut Vec<Violation>) {
    let mut sent: BTreeSet<(&str, &str, u16)> = BTreeSet::new();
    for (pos, e) in m.trace.events.iter().enumerate() {
        let process = e.process().unwrap_or_default();
        match &e.event {
            Event::PublishSent {
                payload,
                packet_id,
                dup,
                ..
            } => {
                let first = sent.insert((process, payload, *packet_id));
                if !first && !dup {
                    out.push(Violation {
                        checker,
                        at_us: m.us(pos),
                        message: format!(
                            "{process} sent {payload} again under packet identifier {packet_id} in the same session without DUP: a resend must set DUP [MQTT-3.3.1-1]"
                        ),
                    });
                }
            }
            Event::Connected {
                session_present: false,
                ..
            } => sent.retain(|(p, ..)| *p != process),
            Event::FaultApplied {
                fault: Fault::ClientCrash { client } | Fault::ClientPowerOff { client },
            } => sent.retain(|(p, ..)| p != client),
            _ => {}
        }
    }
}

/// Every resend without DUP in the trace, reported under `checker`.
pub fn violations(m: &Model<'_>, checker: &'static str) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut arrivals: std::collections::BTreeMap<&str, Vec<Arrival<'_>>> = Default::default();
    // QoS 2 identifiers each process holds awaiting PUBREL.
    let mut awaiting_rel: BTreeSet<(&str, u16)> = BTreeSet::new();
    for (pos, e) in m.trace.events.iter().enumerate() {
        let process = e.process().unwrap_or_default();
        match &e.event {
            Event::Delivered {
                client,
                topic,
                dup,
                packet_id: Some(pkid),
                payload,
                ..
            } => arrivals.entry(client).or_default().push(Arrival {
                pos,
                label: payload,
                topic,
                pkid: *pkid,
                dup: *dup,
                duplicate: false,
            }),
            Event::PublishReceived {
                client,
                qos: 2,
                dup,
                packet_id,
                payload,
            } if awaiting_rel.contains(&(process, *packet_id)) => {
                arrivals.entry(client).or_default().push(Arrival {
                    pos,
                    label: payload,
                    topic: m.unique_pub(payload).map_or("?", |p| p.topic),
                    pkid: *packet_id,
                    dup: *dup,
                    duplicate: true,
                })
            }
            Event::AckSent {
                packet: AckPacket::Pubrec,
                packet_id,
                reason: None,
                ..
            } => {
                awaiting_rel.insert((process, *packet_id));
            }
            Event::AckReceived {
                packet: AckPacket::Pubrel,
                packet_id,
                ..
            } => {
                awaiting_rel.remove(&(process, *packet_id));
            }
            Event::Connected {
                session_present: false,
                ..
            } => awaiting_rel.retain(|(p, _)| *p != process),
            Event::FaultApplied {
                fault: Fault::ClientCrash { client } | Fault::ClientPowerOff { client },
            } => awaiting_rel.retain(|(c, _)| c != client),
            _ => {}
        }
    }
    for (&client, list) in &arrivals {
        for (i, a) in list.iter().enumerate() {
            // A PUBLISH that reached a connection already taken over was sent before the
            // takeover: its flags are judged with that connection, not the session's.
            if a.dup || (!a.duplicate && m.stale(client, a.pos)) {
                continue;
            }
            if a.duplicate {
                out.push(Violation {
                    checker,
                    at_us: m.us(a.pos),
                    message: format!(
                        "{} (on {}) reached {client} again with packet identifier {} while that identifier still awaited PUBREL, without DUP: a resend must set DUP [MQTT-3.3.1-1]",
                        a.label, a.topic, a.pkid
                    ),
                });
                continue;
            }
            let chain = m.chain_at(client, a.pos);
            let Some(first) = list[..i].iter().find(|b| {
                b.pkid == a.pkid
                    && b.label == a.label
                    && b.topic == a.topic
                    && m.chain_at(client, b.pos) == chain
            }) else {
                continue;
            };
            let Some(p) = m.unique_pub(a.label) else {
                continue;
            };
            if !single_forward(m, p)
                || matching_filters(m, client, a.topic, a.pos).len() != 1
                || (p.retain && retained_copy_possible(m, client, p, a.pos))
            {
                continue;
            }
            out.push(Violation {
                checker,
                at_us: m.us(a.pos),
                message: format!(
                    "{} (from {} on {}) reached {client} again with packet identifier {} at {} us without DUP, in the session that received it with that identifier at {} us; the broker received it once and {client} has one matching subscription, so this is a resend, which must set DUP [MQTT-3.3.1-1]",
                    a.label,
                    p.client,
                    a.topic,
                    a.pkid,
                    m.us(a.pos),
                    m.us(first.pos)
                ),
            });
        }
    }
    client_resends(m, checker, &mut out);
    out
}

/// Whether the broker received publish `p` exactly once: its publisher saw it acknowledged on
/// the connection that was open when it asked (a client resends only on a new connection).
pub(super) fn single_forward(m: &Model<'_>, p: &Pub<'_>) -> bool {
    let Some(acked) = p.acked else {
        return false;
    };
    m.epoch_at(p.client, p.pos).is_some_and(|e| {
        Some(e.process) == m.process_of(p.pos) && e.end.is_none_or(|(end, _)| end > acked)
    })
}

/// The distinct filters (shared ones by their whole name) that `client` asked for before `pos`
/// and that match `topic`.
pub(super) fn matching_filters<'t>(
    m: &Model<'t>,
    client: &str,
    topic: &str,
    pos: Pos,
) -> BTreeSet<&'t str> {
    m.clients
        .get(client)
        .map(|log| {
            log.subs
                .iter()
                .filter(|s| {
                    s.pos < pos
                        && matches!(s.kind, SubKind::Requested(_))
                        && topic::subscription_matches(s.filter, topic)
                })
                .map(|s| s.filter)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a SUBSCRIBE of `client` to a filter matching the topic of retained publish `p`,
/// sent before `pos`, may have been processed after the broker stored `p` (its SUBACK came
/// after the request, or not before `pos`): that would bring `p` once more, as a retained copy.
fn retained_copy_possible(m: &Model<'_>, client: &str, p: &Pub<'_>, pos: Pos) -> bool {
    let Some(log) = m.clients.get(client) else {
        return false;
    };
    log.subs.iter().enumerate().any(|(i, s)| {
        if s.pos >= pos
            || !matches!(s.kind, SubKind::Requested(_))
            || !topic::subscription_matches(s.filter, p.topic)
        {
            return false;
        }
        let answer = log.subs[i + 1..]
            .iter()
            .find(|g| g.filter == s.filter && matches!(g.kind, SubKind::Granted(_)))
            .map_or(pos, |g| g.pos);
        answer > p.pos
    })
}
