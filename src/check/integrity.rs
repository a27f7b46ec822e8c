//! The "integrity" checker: nothing is delivered that was never published, and what is
//! delivered matches what was published and subscribed to.
//!
//! For every delivery to a client:
//! - some publish request with the same payload label on the same topic was made before it,
//!   or some client's CONNECT carried a will with that label and topic;
//! - its QoS is no higher than that of such a publish (or will) and no higher than the highest
//!   QoS the client asked for or was granted on a matching filter before it (section 3.8.4);
//! - its retain flag is set only if such a publish (or will) had retain set;
//! - DUP is 0 at QoS 0 [MQTT-3.3.1-2];
//! - the client had asked for a subscription matching the topic before it (a shared
//!   subscription matches through its inner filter);
//! - (5.0) it carries exactly the application properties of such a publish: payload format
//!   indicator [MQTT-3.3.2-4], response topic [MQTT-3.3.2-15], correlation data
//!   [MQTT-3.3.2-16], user properties, all of them in their order [MQTT-3.3.2-17]
//!   [MQTT-3.3.2-18], content type [MQTT-3.3.2-20]; a will carries none (the lab's wills have
//!   none). Not compared: message expiry (the broker sends what remains of it), topic aliases
//!   (per connection) and subscription identifiers (per subscriber: the "subscription"
//!   checker).
//!
//! And no client ever closed its connection because the broker broke the protocol
//! (`connection_lost` with cause `protocol_error`): an alias it never set or above the maximum
//! the client announced, more unacknowledged messages than the client's Receive Maximum, a
//! packet above its Maximum Packet Size, a malformed packet; nor rejected a CONNACK
//! (`connect_failed` with `protocol_error`). The other way round, no 5.0 broker closed a
//! connection accusing the client of breaking the protocol (`connection_lost` with cause
//! `server_disconnect` and reason 0x81 Malformed Packet, 0x82 Protocol Error, 0x93 Receive
//! Maximum exceeded, 0x94 Topic Alias invalid, 0x95 Packet too large, 0x9A Retain not
//! supported or 0x9B QoS not supported): the lab's clients keep to the rules, so one of the
//! two sides is wrong. (0x90 Topic Name invalid is left out: `beyond_limits` workloads earn
//! it on purpose.) A CONNACK's Session Present is 0 after a CONNECT
//! with clean start (3.1.1 [MQTT-3.2.2-1], 5.0 [MQTT-3.2.2-2]) and in a CONNACK that refuses
//! the connection (3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]), judged on `connect_failed` too
//! (the "session" checker judges accepted ones).
//!
//! Beside these, from their own files: resends carry DUP ([`resend`](super::resend),
//! [MQTT-3.3.1-1]) and the message expiry interval arrives aged ([`expiry`](super::expiry),
//! [MQTT-3.3.2-6]), and a retained copy arrives at min(published, granted) QoS
//! ([`qos`](super::qos), [MQTT-3.8.4-6]), and no SUBACK grants a `$share/...` filter after a
//! 5.0 CONNACK announced Shared Subscription Available 0 ([`announced`](super::announced), 5.0
//! section 3.2.2.3.13).
//!
//! Not here: how many times, in which order, or whether a message should have arrived.

use super::model::{Model, SubKind};
use super::{CheckConfig, Violation, topic};
use std::collections::BTreeMap;

use crate::codec::reason;
use crate::trace::{Event, LossCause, MessageProps, Trace, WillSpec};

/// The checker's name in the registry.
pub const NAME: &str = "integrity";

pub fn check(trace: &Trace, _cfg: &CheckConfig) -> Vec<Violation> {
    let m = Model::new(trace);
    let mut wills: BTreeMap<&str, Vec<(usize, &WillSpec)>> = BTreeMap::new();
    for log in m.clients.values() {
        for a in &log.attempts {
            if let Some(w) = a.will {
                wills
                    .entry(w.payload.as_str())
                    .or_default()
                    .push((a.pos, w));
            }
        }
    }
    let mut out = protocol_errors(trace);
    out.extend(super::resend::violations(&m, NAME));
    out.extend(super::expiry::violations(&m, NAME));
    out.extend(super::qos::retained_violations(&m, NAME));
    out.extend(super::announced::violations(trace, NAME));
    for d in &m.dels {
        let mut say = |message: String| {
            out.push(Violation {
                checker: NAME,
                at_us: m.us(d.pos),
                message,
            })
        };
        let who = format!("{} (on {}, to {})", d.label, d.topic, d.client);
        // (qos, retain, properties) of every publish or will this delivery could carry.
        let none = MessageProps::default();
        let mut sources: Vec<(u8, bool, &MessageProps)> = m
            .pubs_with(d.label)
            .filter(|p| p.topic == d.topic && p.pos < d.pos)
            .map(|p| (p.qos, p.retain, p.props))
            .collect();
        for &(pos, w) in wills.get(d.label).into_iter().flatten() {
            if pos < d.pos && w.topic == d.topic {
                sources.push((w.qos, w.retain, &none));
            }
        }
        // A message on a `$` topic that no client of the run could have written is the
        // broker's own (such as `$SYS/broker/uptime`): `$` topics are the server's
        // ([MQTT-4.7.2-1] and its note). Only whom it reaches is judged.
        let servers_own =
            d.topic.starts_with('$') && crate::trace::payload::parse_label(d.label).is_none();
        if sources.is_empty() && !servers_own {
            say(format!(
                "{who} was delivered but never published: no publish request or will carried it before"
            ));
            continue;
        }
        let max_qos = sources.iter().map(|s| s.0).max().unwrap_or(0);
        if sources.is_empty() {
            // The broker's own message: nothing of the run to compare it with.
        } else if d.qos > max_qos {
            say(format!(
                "{who} was delivered at QoS {} but published at QoS {max_qos} at most",
                d.qos
            ));
        }
        if !sources.is_empty() && d.retain && !sources.iter().any(|s| s.1) {
            say(format!(
                "{who} was delivered with the retain flag but never published retained"
            ));
        }
        if !sources.is_empty() && !sources.iter().any(|s| s.2 == d.props) {
            say(props_changed(&who, d.props, sources[0].2));
        }
        if d.qos == 0 && d.dup {
            say(format!(
                "{who} was delivered at QoS 0 with DUP set [MQTT-3.3.1-2]"
            ));
        }
        let subs = m
            .clients
            .get(d.client)
            .map(|l| l.subs.as_slice())
            .unwrap_or(&[]);
        let asked: Vec<u8> = subs
            .iter()
            .filter(|s| s.pos < d.pos && topic::subscription_matches(s.filter, d.topic))
            .filter_map(|s| match s.kind {
                SubKind::Requested(q) | SubKind::Granted(Some(q)) => Some(q),
                _ => None,
            })
            .collect();
        match asked.iter().max() {
            None => say(format!(
                "{who} was delivered to {}, which never subscribed to a matching filter",
                d.client
            )),
            Some(&q) if d.qos > q => say(format!(
                "{who} was delivered at QoS {} above the QoS {q} {} asked for or was granted",
                d.qos, d.client
            )),
            Some(_) => {}
        }
    }
    out
}

/// Every connection a client closed on a broker's protocol violation, and every CONNACK it
/// rejected or that refused it with a wrong Session Present.
/// DISCONNECT reasons by which a broker says the client broke the protocol.
const ACCUSATIONS: [u8; 7] = [0x81, 0x82, 0x93, 0x94, 0x95, 0x9A, 0x9B];

fn protocol_errors(trace: &Trace) -> Vec<Violation> {
    let mut out = Vec::new();
    // Per process: whether its latest CONNECT had clean start, and was 5.0.
    let mut asked: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
    for e in &trace.events {
        let process = e.process().unwrap_or_default();
        let mut say = |message: String| {
            out.push(Violation {
                checker: NAME,
                at_us: e.at_us,
                message,
            })
        };
        match &e.event {
            Event::Connecting {
                protocol,
                clean_start,
                session_expiry_s,
                ..
            } => {
                // Traces without the protocol: only 5.0 sends a session expiry interval.
                let v5 = protocol
                    .as_deref()
                    .map_or(session_expiry_s.is_some(), |p| p.starts_with('5'));
                asked.insert(process, (*clean_start, v5));
            }
            Event::ConnectionLost {
                client,
                cause: LossCause::ProtocolError,
                reason: code,
            } => say(format!(
                "{client} closed its connection because the broker broke the protocol ({})",
                describe(*code)
            )),
            Event::ConnectionLost {
                client,
                cause: LossCause::ServerDisconnect,
                reason: Some(code),
            } if ACCUSATIONS.contains(code) => say(format!(
                "the broker closed {client}'s connection accusing it of breaking the protocol ({}): the client sent what it must not, or the broker misjudged it",
                describe(Some(*code))
            )),
            Event::ConnectFailed {
                client,
                code,
                session_present,
                protocol_error,
                ..
            } => {
                let (clean_start, v5) = asked.get(process).copied().unwrap_or_default();
                if *session_present == Some(true) && clean_start {
                    let rule = if v5 {
                        "MQTT-3.2.2-2" // 5.0
                    } else {
                        "MQTT-3.2.2-1" // 3.1.1
                    };
                    say(format!(
                        "{client} got a CONNACK with session present 1 for a CONNECT with clean start [{rule}], and rejected it"
                    ));
                } else if *session_present == Some(true) && code.is_some() {
                    let rule = if v5 {
                        "MQTT-3.2.2-6" // 5.0
                    } else {
                        "MQTT-3.2.2-4" // 3.1.1
                    };
                    say(format!(
                        "{client} got a CONNACK refusing it with session present 1: a refusal has session present 0 [{rule}]"
                    ));
                } else if protocol_error.is_some() {
                    say(format!(
                        "{client} rejected the broker's answer to its CONNECT as a protocol error ({})",
                        describe(*protocol_error)
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

fn describe(code: Option<u8>) -> String {
    match code {
        Some(c) => match reason::from_u8(c) {
            Some(r) => format!("reason 0x{c:02X} {r:?}"),
            None => format!("reason 0x{c:02X}"),
        },
        None => "no reason recorded".into(),
    }
}

/// What differs between the properties a delivery carried and those it was published with.
fn props_changed(who: &str, got: &MessageProps, sent: &MessageProps) -> String {
    let mut diffs: Vec<String> = Vec::new();
    let mut field = |name: &str, rule: &str, got: String, sent: String| {
        if got != sent {
            diffs.push(format!("{name} {got} instead of {sent} [{rule}]"));
        }
    };
    let show = |v: Option<&str>| v.map_or_else(|| "(none)".to_string(), |v| format!("{v:?}"));
    field(
        "payload format indicator",
        "MQTT-3.3.2-4",
        show(got.payload_format.map(|f| f.to_string()).as_deref()),
        show(sent.payload_format.map(|f| f.to_string()).as_deref()),
    );
    field(
        "response topic",
        "MQTT-3.3.2-15",
        show(got.response_topic.as_deref()),
        show(sent.response_topic.as_deref()),
    );
    field(
        "correlation data",
        "MQTT-3.3.2-16",
        show(got.correlation_data.as_deref()),
        show(sent.correlation_data.as_deref()),
    );
    let pairs = |v: &[(String, String)]| {
        let kv: Vec<String> = v.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("[{}]", kv.join(", "))
    };
    field(
        "user properties",
        "MQTT-3.3.2-17, MQTT-3.3.2-18",
        pairs(&got.user_properties),
        pairs(&sent.user_properties),
    );
    field(
        "content type",
        "MQTT-3.3.2-20",
        show(got.content_type.as_deref()),
        show(sent.content_type.as_deref()),
    );
    format!(
        "{who} was delivered with other properties than it was published with: {}",
        diffs.join("; ")
    )
}
