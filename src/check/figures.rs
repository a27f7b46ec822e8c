//! The "figures" checker: the broker's own figures (`$SYS/broker/...`, recorded as `figure`
//! events) against what the clients observed.
//!
//! A publication of the figures starts with `$SYS/broker/uptime` (`N seconds` since the broker
//! started); the figures a client receives after an uptime and before its next one, on the same
//! connection, belong to that publication. The broker started at the beginning of the run or at
//! the end of its latest crash, and counts from its first event, so a publication with uptime
//! `u` was made no earlier than `start + u`: every counter must count at least what clients saw
//! answered before that instant, since the start. Judged, as lower bounds:
//!
//! - `publish/messages/received`: PUBACKs and PUBRECs clients received (each answers a PUBLISH
//!   the broker received);
//! - `publish/messages/sent`: PUBLISH packets clients received (`publish_received` at QoS 1
//!   and 2, `delivered` at QoS 0, figures);
//! - `messages/received`: those PUBACKs and PUBRECs, the PUBCOMPs (each answers a PUBREL), and
//!   every CONNACK (each answers a CONNECT);
//! - `messages/sent`: every CONNACK, every acknowledgement clients received and every PUBLISH;
//! - `clients/refused`: CONNACKs refusing credentials or authorization (3.1.1 return codes 4
//!   and 5, 5.0 reason codes 0x86 and 0x87);
//! - `subscriptions/denied`: SUBACK failures 0x87 (not authorized, 5.0);
//! - `publish/messages/denied`: PUBACKs and PUBRECs 0x87 (5.0).
//!
//! A broker judged from outside may have been running before the run: an uptime longer than
//! the time since the run started (or since the broker's latest restart) says so, and then its
//! start is unknown and no lower bound is set until it restarts.
//!
//! Also: every figure but the version is a whole number (uptime `N seconds`), a counter never
//! goes down between two publications of one broker run, and `clients/total` is
//! `clients/connected` plus `clients/disconnected` in one publication.
//!
//! Not here: what the figures are (`broker/sys.rs`); figures a client received without the
//! uptime before them are only read for their shape.

use std::collections::BTreeMap;

use super::{CheckConfig, Violation};
use crate::trace::{AckPacket, Event, Fault, Trace};

/// The checker's name in the registry.
pub const NAME: &str = "figures";

/// The counters judged: they only grow within one run of the broker.
const COUNTERS: [&str; 8] = [
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/publish/messages/received",
    "$SYS/broker/publish/messages/sent",
    "$SYS/broker/clients/refused",
    "$SYS/broker/subscriptions/denied",
    "$SYS/broker/publish/messages/denied",
    "$SYS/broker/clients/maximum",
];

const UPTIME: &str = "$SYS/broker/uptime";
const VERSION: &str = "$SYS/broker/version";

/// What clients saw answered since the broker's start, counted event by event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// PUBACK, PUBREC received.
    publish_acks: u64,
    /// PUBCOMP received.
    pubcomps: u64,
    /// PUBREL received.
    pubrels: u64,
    /// CONNACKs, accepting or refusing.
    connacks: u64,
    /// PUBLISH packets received.
    publishes: u64,
    /// CONNACKs refusing credentials or authorization.
    login_refusals: u64,
    /// SUBACK failures 0x87.
    subscriptions_denied: u64,
    /// PUBACK / PUBREC 0x87.
    publishes_denied: u64,
}

impl Seen {
    /// The lower bound the observations set on the counter `topic`.
    fn bound(&self, topic: &str) -> Option<(u64, &'static str)> {
        Some(match topic {
            "$SYS/broker/publish/messages/received" => {
                (self.publish_acks, "PUBACKs and PUBRECs clients received")
            }
            "$SYS/broker/publish/messages/sent" => {
                (self.publishes, "PUBLISH packets clients received")
            }
            "$SYS/broker/messages/received" => (
                self.publish_acks + self.pubcomps + self.connacks,
                "PUBACKs, PUBRECs, PUBCOMPs and CONNACKs clients received",
            ),
            "$SYS/broker/messages/sent" => (
                self.publish_acks + self.pubcomps + self.pubrels + self.connacks + self.publishes,
                "CONNACKs, acknowledgements and PUBLISH packets clients received",
            ),
            "$SYS/broker/clients/refused" => (
                self.login_refusals,
                "CONNACKs refusing credentials or authorization",
            ),
            "$SYS/broker/subscriptions/denied" => (
                self.subscriptions_denied,
                "SUBACK failures 0x87 (not authorized)",
            ),
            "$SYS/broker/publish/messages/denied" => (
                self.publishes_denied,
                "PUBACKs and PUBRECs 0x87 (not authorized)",
            ),
            _ => return None,
        })
    }
}

/// One client's current publication: its uptime, where it started, and its figures so far.
#[derive(Debug)]
struct Publication {
    uptime_s: u64,
    /// The broker's start, in microseconds; `None` when it started before the run (a broker
    /// judged from outside that was running already): then no bound is set.
    start_us: Option<u64>,
    values: BTreeMap<String, u64>,
}

pub fn check(trace: &Trace, _cfg: &CheckConfig) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut violation = |at_us: u64, message: String| {
        out.push(Violation {
            checker: NAME,
            at_us,
            message,
        })
    };
    // Observations since the broker's latest start, with their time, in trace order.
    let mut seen: Vec<(u64, Seen)> = vec![(0, Seen::default())];
    // The broker's start: the run's, or the end of its latest crash; `None` once an uptime
    // shows that it started before that.
    let mut start_us = Some(0);
    let mut current: BTreeMap<&str, Publication> = BTreeMap::new();
    // The latest value of each counter, with its uptime, within this run of the broker.
    let mut latest: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for e in &trace.events {
        let at = e.at_us;
        let mut now = seen.last().map(|(_, s)| *s).unwrap_or_default();
        match &e.event {
            Event::FaultApplied {
                fault: Fault::BrokerCrash,
            } => {
                current.clear();
                latest.clear();
                continue;
            }
            Event::FaultHealed {
                fault: Fault::BrokerCrash,
            } => {
                start_us = Some(at);
                seen = vec![(at, Seen::default())];
                continue;
            }
            Event::Connected { client, .. } | Event::ConnectionLost { client, .. } => {
                current.remove(client.as_str());
                if matches!(e.event, Event::Connected { .. }) {
                    now.connacks += 1;
                }
            }
            Event::ConnectFailed { client, code, .. } => {
                current.remove(client.as_str());
                if let Some(code) = code {
                    now.connacks += 1;
                    if matches!(code, 4 | 5 | 0x86 | 0x87) {
                        now.login_refusals += 1;
                    }
                }
            }
            Event::AckReceived { packet, reason, .. } => match packet {
                AckPacket::Puback | AckPacket::Pubrec => {
                    now.publish_acks += 1;
                    if *reason == Some(0x87) {
                        now.publishes_denied += 1;
                    }
                }
                AckPacket::Pubcomp => now.pubcomps += 1,
                AckPacket::Pubrel => now.pubrels += 1,
            },
            Event::PublishReceived { .. } | Event::Delivered { qos: 0, .. } => now.publishes += 1,
            Event::SubscribeGranted {
                granted: None,
                code: Some(0x87),
                ..
            } => now.subscriptions_denied += 1,
            Event::Figure {
                client,
                topic,
                value,
                ..
            } => {
                let client = client.as_str();
                let figure = figure(topic, value);
                match figure {
                    Err(why) => {
                        violation(at, format!("{client} received {topic} = {value:?}: {why}"))
                    }
                    Ok(None) => {}
                    Ok(Some(n)) if topic == UPTIME => {
                        if start_us.is_some_and(|s| n.saturating_mul(1_000_000) > at - s) {
                            start_us = None;
                        }
                        current.insert(
                            client,
                            Publication {
                                uptime_s: n,
                                start_us,
                                values: BTreeMap::new(),
                            },
                        );
                    }
                    Ok(Some(n)) => {
                        if let Some(p) = current.get_mut(client) {
                            p.values.insert(topic.clone(), n);
                            judge(p, topic, n, client, at, &seen, &mut latest, &mut violation);
                        }
                    }
                }
                now.publishes += 1;
            }
            _ => {}
        }
        if seen.last().is_none_or(|(_, s)| *s != now) {
            seen.push((at, now));
        }
    }
    out
}

/// The value of a figure: `None` for the version, the number for the others (uptime in
/// seconds), or why it is not one.
fn figure(topic: &str, value: &str) -> Result<Option<u64>, String> {
    if topic == VERSION {
        return Ok(None);
    }
    let number = match topic {
        UPTIME => value
            .strip_suffix(" seconds")
            .ok_or("the uptime is not `N seconds`")?,
        _ => value,
    };
    number
        .parse()
        .map(Some)
        .map_err(|_| "not a whole number".to_string())
}

/// Judges the figure `topic` = `n` of publication `p`, received by `client` at `at`.
#[allow(clippy::too_many_arguments)]
fn judge<'t>(
    p: &Publication,
    topic: &'t str,
    n: u64,
    client: &str,
    at: u64,
    seen: &[(u64, Seen)],
    latest: &mut BTreeMap<&'t str, (u64, u64)>,
    violation: &mut impl FnMut(u64, String),
) {
    // What clients saw strictly before the publication can have been made.
    let observed = p.start_us.map(|start| {
        let made_by_us = start + p.uptime_s * 1_000_000;
        let before = seen.partition_point(|(t, _)| *t < made_by_us);
        before.checked_sub(1).map(|i| seen[i].1).unwrap_or_default()
    });
    if let Some((bound, what)) = observed.and_then(|o| o.bound(topic))
        && n < bound
    {
        violation(
            at,
            format!(
                "{client} received {topic} = {n} with uptime {} s, but clients had seen {bound} {what} in the broker's first {} s",
                p.uptime_s, p.uptime_s
            ),
        );
    }
    if COUNTERS.contains(&topic) {
        if let Some(&(was, at_uptime)) = latest.get(topic)
            && at_uptime < p.uptime_s
            && n < was
        {
            violation(
                at,
                format!(
                    "{client} received {topic} = {n} with uptime {} s, below the {was} published with uptime {at_uptime} s by the same run of the broker",
                    p.uptime_s
                ),
            );
        }
        let entry = latest.entry(topic).or_insert((n, p.uptime_s));
        if p.uptime_s >= entry.1 {
            *entry = (n.max(entry.0), p.uptime_s);
        }
    }
    if topic == "$SYS/broker/clients/total"
        && let (Some(c), Some(d)) = (
            p.values.get("$SYS/broker/clients/connected"),
            p.values.get("$SYS/broker/clients/disconnected"),
        )
        && c + d != n
    {
        violation(
            at,
            format!(
                "{client} received clients/total = {n}, but connected {c} + disconnected {d} in the same publication"
            ),
        );
    }
}
