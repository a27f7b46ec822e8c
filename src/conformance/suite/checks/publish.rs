//! Publishing: the QoS 0, 1 and 2 flows, topic names and filters, SUBSCRIBE and UNSUBSCRIBE, matching.

use std::time::{Duration, Instant};

use crate::codec::{
    ConnAck, Packet, Properties, Publish, QoS, ReasonCode, Subscribe, Subscription, UnsubAck,
    Unsubscribe,
};

use super::super::probe::{Conn, Fault, Got, ack, describe, options, text};
use super::super::{Check, Outcome, Probe};
use super::{bytes_of, quiet};

pub const CHECKS: &[Check] = &[
    Check {
        name: "qos1-puback",
        about: "A QoS 1 PUBLISH is answered with a PUBACK of its packet identifier; a second PUBLISH with the same identifier after the PUBACK is a new message, delivered too.",
        v3: &["MQTT-3.3.4-1", "MQTT-4.3.2-2", "MQTT-2.3.1-6"],
        v5: &[
            "MQTT-3.3.4-1",
            "MQTT-4.3.2-4",
            "MQTT-4.3.2-5",
            "MQTT-2.2.1-5",
        ],
        needs: &[],
        run: qos1_puback,
    },
    Check {
        name: "qos2-pubrec-pubcomp",
        about: "A QoS 2 PUBLISH is answered with a PUBREC of its packet identifier, and the PUBREL that follows with a PUBCOMP of the same identifier (5.0: each with a reason code defined for it).",
        v3: &["MQTT-3.3.4-1", "MQTT-4.3.3-2", "MQTT-2.3.1-6"],
        v5: &[
            "MQTT-3.3.4-1",
            "MQTT-4.3.3-8",
            "MQTT-4.3.3-11",
            "MQTT-2.2.1-5",
            "MQTT-3.5.2-1",
            "MQTT-3.7.2-1",
        ],
        needs: &[],
        run: qos2_pubrec_pubcomp,
    },
    Check {
        name: "qos2-exactly-once",
        about: "A QoS 2 PUBLISH sent again with DUP 1 before the PUBREL gets a PUBREC again but reaches a subscriber once, with DUP 0; after the PUBCOMP its identifier starts a new message.",
        v3: &["MQTT-4.3.3-2", "MQTT-3.3.1-3"],
        v5: &["MQTT-4.3.3-10", "MQTT-4.3.3-12", "MQTT-3.3.1-3"],
        needs: &[],
        run: qos2_exactly_once,
    },
    Check {
        name: "delivered-qos-minimum",
        about: "Subscribers granted QoS 0, 1 and 2 get messages published at QoS 0, 1 and 2 at the lower of the published and the granted QoS.",
        v3: &["MQTT-3.8.4-6"],
        v5: &["MQTT-3.8.4-8"],
        needs: &[],
        run: delivered_qos_minimum,
    },
    Check {
        name: "publish-qos3",
        about: "A PUBLISH with both QoS bits set (QoS 3) is malformed: the connection closes.",
        v3: &["MQTT-3.3.1-4"],
        v5: &["MQTT-3.3.1-4", "MQTT-4.13.1-1"],
        needs: &[],
        run: publish_qos3,
    },
    Check {
        name: "publish-topic-wildcard",
        about: "A PUBLISH whose topic name holds a wildcard ('+' or '#') is a protocol violation: the connection closes.",
        v3: &["MQTT-3.3.2-2", "MQTT-4.7.1-1", "MQTT-4.8.0-1"],
        v5: &["MQTT-3.3.2-2", "MQTT-4.7.0-1", "MQTT-4.13.1-1"],
        needs: &[],
        run: publish_topic_wildcard,
    },
    Check {
        name: "pubrel-reserved-flags",
        about: "A PUBREL with flags 0000 instead of 0010 is malformed: the connection closes instead of a PUBCOMP.",
        v3: &["MQTT-3.6.1-1"],
        v5: &["MQTT-3.6.1-1"],
        needs: &[],
        run: pubrel_reserved_flags,
    },
    Check {
        name: "subscribe-unsubscribe-reserved-flags",
        about: "A SUBSCRIBE, and an UNSUBSCRIBE, with flags 0000 instead of 0010 is malformed: the connection closes without a SUBACK or UNSUBACK.",
        v3: &["MQTT-3.8.1-1", "MQTT-3.10.1-1"],
        v5: &["MQTT-3.8.1-1", "MQTT-3.10.1-1"],
        needs: &[],
        run: subscribe_unsubscribe_reserved_flags,
    },
    Check {
        name: "suback-per-filter",
        about: "A SUBSCRIBE of three filters is answered with one SUBACK of its packet identifier holding three codes in the filters' order, each a granted QoS no higher than requested or a failure.",
        v3: &[
            "MQTT-3.8.4-1",
            "MQTT-3.8.4-2",
            "MQTT-3.8.4-4",
            "MQTT-3.8.4-5",
            "MQTT-3.9.3-1",
            "MQTT-3.9.3-2",
            "MQTT-2.3.1-7",
        ],
        v5: &[
            "MQTT-3.8.4-1",
            "MQTT-3.8.4-2",
            "MQTT-3.8.4-5",
            "MQTT-3.8.4-6",
            "MQTT-3.8.4-7",
            "MQTT-3.9.3-1",
            "MQTT-3.9.3-2",
            "MQTT-2.2.1-6",
        ],
        needs: &[],
        run: suback_per_filter,
    },
    Check {
        name: "subscribe-options-invalid",
        about: "A SUBSCRIBE asking for QoS 3, and one with a reserved bit of its options byte set, is malformed: the connection closes without a SUBACK.",
        v3: &["MQTT-3.8.3-4"],
        v5: &["MQTT-3.8.3-5"],
        needs: &[],
        run: subscribe_options_invalid,
    },
    Check {
        name: "subscribe-unsubscribe-no-filters",
        about: "A SUBSCRIBE, and an UNSUBSCRIBE, without any topic filter is a protocol violation: the connection closes.",
        v3: &["MQTT-4.8.0-1"],
        v5: &["MQTT-4.13.1-1"],
        needs: &[],
        run: subscribe_unsubscribe_no_filters,
    },
    Check {
        name: "subscribe-invalid-filter",
        about: "A SUBSCRIBE of a filter with '#' not last (\"a/#/b\") or '+' not filling its level (\"a+\") is refused: a SUBACK failure code for it, or the connection closes.",
        v3: &["MQTT-4.7.1-2", "MQTT-4.7.1-3"],
        v5: &["MQTT-4.7.1-1", "MQTT-4.7.1-2"],
        needs: &[],
        run: subscribe_invalid_filter,
    },
    Check {
        name: "wildcard-matching",
        about: "Filters with '+' and '#' get exactly the messages of the topics they match ('#' its parent level too), and each delivery names the topic published to.",
        v3: &["MQTT-3.3.2-3", "MQTT-4.5.0-1"],
        v5: &["MQTT-3.3.2-3", "MQTT-4.5.0-1"],
        needs: &[],
        run: wildcard_matching,
    },
    Check {
        name: "dollar-topic-not-matched-by-wildcard",
        about: "A filter starting with '+' does not match a topic starting with '$', though it matches the same topic without the '$'.",
        v3: &["MQTT-4.7.2-1"],
        v5: &["MQTT-4.7.2-1"],
        needs: &[],
        run: dollar_topic_not_matched_by_wildcard,
    },
    Check {
        name: "subscribe-same-filter-replaces",
        about: "A second SUBSCRIBE of the same filter replaces the first: a message is delivered once, at the QoS of the second subscription.",
        v3: &["MQTT-3.8.4-3"],
        v5: &["MQTT-3.8.4-3"],
        needs: &[],
        run: subscribe_same_filter_replaces,
    },
    Check {
        name: "unsubscribe-stops-delivery",
        about: "An UNSUBSCRIBE is answered with an UNSUBACK of its packet identifier (also when no subscription existed), and messages published after it are not delivered.",
        v3: &[
            "MQTT-3.10.4-1",
            "MQTT-3.10.4-2",
            "MQTT-3.10.4-4",
            "MQTT-3.10.4-5",
            "MQTT-2.3.1-7",
        ],
        v5: &[
            "MQTT-3.10.4-1",
            "MQTT-3.10.4-2",
            "MQTT-3.10.4-4",
            "MQTT-3.10.4-5",
            "MQTT-3.11.3-2",
            "MQTT-2.2.1-6",
        ],
        needs: &[],
        run: unsubscribe_stops_delivery,
    },
    Check {
        name: "unsubscribe-several-filters",
        about: "An UNSUBSCRIBE of three filters (two held, one not) is handled as three: one UNSUBACK answers it (in 5.0, with a code per filter, in their order), and neither held filter delivers afterwards while a fourth one still does.",
        v3: &["MQTT-3.10.4-6"],
        v5: &["MQTT-3.10.4-6", "MQTT-3.11.3-1"],
        needs: &[],
        run: unsubscribe_several_filters,
    },
    Check {
        name: "ordered-delivery",
        about: "QoS 1 messages of one publisher on one topic reach a subscriber in the order they were published.",
        v3: &["MQTT-4.6.0-5", "MQTT-4.6.0-6"],
        v5: &["MQTT-4.6.0-5", "MQTT-4.6.0-6"],
        needs: &[],
        run: ordered_delivery,
    },
    Check {
        name: "topic-matching-exact",
        about: "Matching is case-sensitive and without normalisation: a filter \"Case\" does not get \"case\" or \"CASE\", and \"café\" (U+00E9) does not get \"cafe\" with a combining accent.",
        v3: &["MQTT-4.7.3-4", "MQTT-3.3.2-3"],
        v5: &["MQTT-4.7.3-4", "MQTT-3.3.2-3"],
        needs: &[],
        run: topic_matching_exact,
    },
    Check {
        name: "topic-null-character",
        about: "A PUBLISH topic name, and a SUBSCRIBE filter, holding U+0000 is malformed: the connection closes.",
        v3: &["MQTT-1.5.3-2", "MQTT-4.7.3-2"],
        v5: &["MQTT-1.5.4-2", "MQTT-4.7.3-2", "MQTT-4.13.1-1"],
        needs: &[],
        run: topic_null_character,
    },
    Check {
        name: "topic-ill-formed-utf8",
        about: "A PUBLISH topic name holding an encoded surrogate (ED A0 80) or the byte FF, and a SUBSCRIBE filter holding FF, are malformed: the connection closes.",
        v3: &["MQTT-1.5.3-1"],
        v5: &["MQTT-1.5.4-1", "MQTT-4.13.1-1"],
        needs: &[],
        run: topic_ill_formed_utf8,
    },
];

/// A packet identifier whose two bytes differ, so that an answer with them swapped shows.
const ID: u16 = 0x1234;

/// The highest QoS the broker takes from clients (5.0: Maximum QoS in the CONNACK).
fn max_qos(ack: &ConnAck) -> u8 {
    ack.properties.maximum_qos.unwrap_or(2)
}

fn qos_of(n: u8) -> QoS {
    QoS::from_u8(n.min(2)).unwrap_or(QoS::ExactlyOnce)
}

/// The QoS a SUBACK code grants; `None` for a failure.
fn granted(code: ReasonCode) -> Option<u8> {
    match code {
        ReasonCode::Success => Some(0),
        ReasonCode::GrantedQoS1 => Some(1),
        ReasonCode::GrantedQoS2 => Some(2),
        _ => None,
    }
}

/// Subscribes `conn` to `filter` with packet identifier `pkid`; the QoS the SUBACK grants.
fn subscribe(p: &Probe, conn: &mut Conn, pkid: u16, filter: &str, qos: QoS) -> Result<u8, Fault> {
    let code = p.subscribe_with(conn, pkid, filter, options(qos), Properties::default())?;
    granted(code).ok_or_else(|| {
        format!(
            "the broker refused the subscription to {filter:?} (0x{:02x})",
            code.as_u8()
        )
    })
}

/// A connection of client `n` subscribed to `filter` at `qos`, and the QoS granted.
fn subscriber(
    p: &mut Probe,
    name: &str,
    n: u8,
    filter: &str,
    qos: QoS,
) -> Result<(Conn, u8), Fault> {
    let (mut conn, _) = p.connect(name, &p.client_id(n))?;
    let granted = subscribe(p, &mut conn, 1, filter, qos)?;
    Ok((conn, granted))
}

/// How a publish flow ended when it did not fail.
enum Flow {
    Done,
    /// A 5.0 broker answered with a reason code of 0x80 or more: it did not take the message.
    Refused(ReasonCode),
}

impl Flow {
    fn undecided(r: ReasonCode) -> Outcome {
        Outcome::Undecided(format!(
            "the broker refused a PUBLISH with reason code 0x{:02x}, so the check has nothing to judge",
            r.as_u8()
        ))
    }
}

/// Publishes `payload` on `topic` at `qos` with identifier `pkid` and completes the flow:
/// PUBACK; or PUBREC, PUBREL, PUBCOMP; each answer carrying `pkid`.
fn publish_flow(
    p: &mut Probe,
    conn: &mut Conn,
    topic: &str,
    payload: &[u8],
    qos: QoS,
    pkid: u16,
) -> Result<Flow, Fault> {
    let packet = p.publish(topic, payload, qos, false, pkid);
    conn.send(&packet)?;
    match qos {
        QoS::AtMostOnce => Ok(Flow::Done),
        QoS::AtLeastOnce => match conn.expect("PUBACK", p.wait)? {
            Packet::PubAck(a) if a.pkid == pkid && a.reason.is_error() => {
                Ok(Flow::Refused(a.reason))
            }
            Packet::PubAck(a) if a.pkid == pkid => Ok(Flow::Done),
            other => Err(format!(
                "a QoS 1 PUBLISH with identifier {pkid} was answered with {} instead of a PUBACK of identifier {pkid}",
                describe(&other)
            )),
        },
        QoS::ExactlyOnce => {
            match conn.expect("PUBREC", p.wait)? {
                Packet::PubRec(a) if a.pkid == pkid && a.reason.is_error() => {
                    return Ok(Flow::Refused(a.reason));
                }
                Packet::PubRec(a) if a.pkid == pkid => {}
                other => {
                    return Err(format!(
                        "a QoS 2 PUBLISH with identifier {pkid} was answered with {} instead of a PUBREC of identifier {pkid}",
                        describe(&other)
                    ));
                }
            }
            pubrel_pubcomp(p, conn, pkid).map(|()| Flow::Done)
        }
    }
}

/// Sends PUBREL `pkid` and waits for its PUBCOMP (5.0: success).
fn pubrel_pubcomp(p: &Probe, conn: &mut Conn, pkid: u16) -> Result<(), Fault> {
    conn.send(&Packet::PubRel(ack(pkid)))?;
    match conn.expect("PUBCOMP", p.wait)? {
        Packet::PubComp(a) if a.pkid == pkid && a.reason == ReasonCode::Success => Ok(()),
        other => Err(format!(
            "a PUBREL with identifier {pkid} was answered with {} instead of a successful PUBCOMP of identifier {pkid}",
            describe(&other)
        )),
    }
}

/// The next PUBLISH on `conn` before `deadline`, acknowledged as its QoS asks (a PUBREL that
/// comes for an earlier QoS 2 delivery is answered with its PUBCOMP on the way); `None` when
/// nothing comes.
fn next_delivery(conn: &mut Conn, deadline: Instant) -> Result<Option<Publish>, Fault> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match conn.recv(left) {
            Got::Silent => return Ok(None),
            Got::Packet(Packet::Publish(m)) => {
                match m.qos {
                    QoS::AtMostOnce => {}
                    QoS::AtLeastOnce => conn.send(&Packet::PubAck(ack(m.pkid)))?,
                    QoS::ExactlyOnce => conn.send(&Packet::PubRec(ack(m.pkid)))?,
                }
                return Ok(Some(m));
            }
            Got::Packet(Packet::PubRel(a)) => conn.send(&Packet::PubComp(ack(a.pkid)))?,
            g => {
                return Err(format!(
                    "a subscriber waiting for messages got {}",
                    g.describe()
                ));
            }
        }
    }
}

/// The messages `conn` gets: until `expected` have come (each awaited for `wait`), then any
/// more within `quiet`.
fn collect(
    conn: &mut Conn,
    expected: usize,
    wait: Duration,
    quiet: Duration,
) -> Result<Vec<Publish>, Fault> {
    let mut got = Vec::new();
    while got.len() < expected {
        match next_delivery(conn, Instant::now() + wait)? {
            Some(m) => got.push(m),
            None => return Ok(got),
        }
    }
    let deadline = Instant::now() + quiet;
    while let Some(m) = next_delivery(conn, deadline)? {
        got.push(m);
    }
    Ok(got)
}

fn texts(got: &[Publish]) -> Vec<String> {
    got.iter().map(text).collect()
}

/// A packet of first byte `first` and `body`, with its remaining length.
pub(super) fn raw_packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A string field of `bytes` as they are: two length bytes, then the bytes.
pub(super) fn raw_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A QoS 0 PUBLISH of `topic` bytes as they are.
fn raw_publish(v5: bool, topic: &[u8]) -> Vec<u8> {
    let mut body = raw_string(topic);
    if v5 {
        body.push(0);
    }
    body.extend_from_slice(b"x");
    raw_packet(0x30, &body)
}

/// A SUBSCRIBE of identifier `pkid` and `filters` (bytes as they are), each at QoS 1.
fn raw_subscribe(v5: bool, pkid: u16, filters: &[&[u8]]) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    for f in filters {
        body.extend(raw_string(f));
        body.push(1);
    }
    raw_packet(0x82, &body)
}

/// An UNSUBSCRIBE of identifier `pkid` and `filters` (bytes as they are).
fn raw_unsubscribe(v5: bool, pkid: u16, filters: &[&[u8]]) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    for f in filters {
        body.extend(raw_string(f));
    }
    raw_packet(0xA2, &body)
}

/// On a fresh connection of client `n`, sends `bytes` and waits for the close.
fn closes_on(p: &mut Probe, n: u8, bytes: &[u8], what: &str) -> Result<(), Fault> {
    let name = format!("{}", (b'a' + n) as char);
    let (mut conn, _) = p.connect(&name, &p.client_id(n))?;
    conn.send_raw(bytes, what)?;
    conn.expect_close(p.wait)
        .map(drop)
        .map_err(|f| format!("after a {what}: {f}"))
}

fn qos1_puback(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut sub, _) = subscriber(p, "s", 1, &topic, QoS::AtLeastOnce)?;
    let (mut conn, _) = p.connect("a", &p.client_id(0))?;
    for payload in [&b"first"[..], b"second"] {
        if let Flow::Refused(r) = publish_flow(p, &mut conn, &topic, payload, QoS::AtLeastOnce, ID)?
        {
            return Ok(Flow::undecided(r));
        }
    }
    let got = collect(&mut sub, 2, p.wait, quiet(p))?;
    if texts(&got) != ["first", "second"] {
        return Err(format!(
            "two QoS 1 messages with the same identifier, the second sent after the first's PUBACK, reached the subscriber as {:?}, not as two messages",
            texts(&got)
        ));
    }
    conn.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn qos2_pubrec_pubcomp(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut sub, _) = subscriber(p, "s", 1, &topic, QoS::ExactlyOnce)?;
    let (mut conn, connack) = p.connect("a", &p.client_id(0))?;
    if max_qos(&connack) < 2 {
        return Ok(Outcome::NotApplicable(
            "the broker takes no QoS 2 messages (Maximum QoS)".into(),
        ));
    }
    if let Flow::Refused(r) = publish_flow(p, &mut conn, &topic, b"m", QoS::ExactlyOnce, ID)? {
        return Ok(Flow::undecided(r));
    }
    let got = collect(&mut sub, 1, p.wait, quiet(p))?;
    if texts(&got) != ["m"] {
        return Err(format!(
            "a QoS 2 message reached the subscriber as {:?}, not once",
            texts(&got)
        ));
    }
    conn.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn qos2_exactly_once(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut sub, _) = subscriber(p, "s", 1, &topic, QoS::ExactlyOnce)?;
    let (mut conn, connack) = p.connect("a", &p.client_id(0))?;
    if max_qos(&connack) < 2 {
        return Ok(Outcome::NotApplicable(
            "the broker takes no QoS 2 messages (Maximum QoS)".into(),
        ));
    }
    let Packet::Publish(mut first) = p.publish(&topic, b"once", QoS::ExactlyOnce, false, ID) else {
        return Err("the check could not build its PUBLISH".into());
    };
    conn.send(&Packet::Publish(first.clone()))?;
    for attempt in ["the PUBLISH", "the PUBLISH sent again with DUP 1"] {
        match conn.expect("PUBREC", p.wait)? {
            Packet::PubRec(a) if a.pkid == ID && a.reason.is_error() => {
                return Ok(Flow::undecided(a.reason));
            }
            Packet::PubRec(a) if a.pkid == ID => {}
            other => {
                return Err(format!(
                    "{attempt} (QoS 2, identifier {ID}) was answered with {} instead of a PUBREC of identifier {ID}",
                    describe(&other)
                ));
            }
        }
        if !first.dup {
            first.dup = true;
            conn.send(&Packet::Publish(first.clone()))?;
        }
    }
    pubrel_pubcomp(p, &mut conn, ID)?;
    // The identifier is free again: the same one now starts a new message.
    if let Flow::Refused(r) = publish_flow(p, &mut conn, &topic, b"again", QoS::ExactlyOnce, ID)? {
        return Ok(Flow::undecided(r));
    }
    let got = collect(&mut sub, 2, p.wait, quiet(p))?;
    let once = got.iter().filter(|m| &m.payload[..] == b"once").count();
    if once != 1 {
        return Err(format!(
            "a QoS 2 message sent twice before its PUBREL reached the subscriber {once} times, not once"
        ));
    }
    if !got.iter().any(|m| &m.payload[..] == b"again") {
        return Err(format!(
            "after the PUBCOMP, a new QoS 2 message with the same identifier did not reach the subscriber (it got {:?})",
            texts(&got)
        ));
    }
    if let Some(m) = got.iter().find(|m| m.dup) {
        return Err(format!(
            "the broker's first sending of {:?} to the subscriber has DUP 1 (the publisher's DUP must not be passed on)",
            text(m)
        ));
    }
    conn.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn delivered_qos_minimum(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let mut subs = Vec::new();
    for q in 0..3u8 {
        let (conn, g) = subscriber(p, &format!("s{q}"), q + 1, &topic, qos_of(q))?;
        subs.push((conn, q, g));
    }
    let (mut conn, connack) = p.connect("a", &p.client_id(0))?;
    let top = max_qos(&connack).min(2);
    for q in 0..=top {
        let payload = [b'0' + q];
        if let Flow::Refused(r) =
            publish_flow(p, &mut conn, &topic, &payload, qos_of(q), ID + u16::from(q))?
        {
            return Ok(Flow::undecided(r));
        }
    }
    for (sub, requested, g) in &mut subs {
        let got = collect(sub, usize::from(top) + 1, p.wait, quiet(p))?;
        let mut seen = Vec::new();
        for m in &got {
            let published = m.payload.first().map_or(9, |b| b.wrapping_sub(b'0'));
            if published > 2 {
                return Err(format!(
                    "the subscriber got a message it was not sent: {:?}",
                    text(m)
                ));
            }
            let owed = published.min(*g);
            if m.qos.as_u8() != owed {
                return Err(format!(
                    "a message published at QoS {published} reached a subscriber granted QoS {g} (asked {requested}) at QoS {}, not {owed}",
                    m.qos.as_u8()
                ));
            }
            seen.push(published);
        }
        seen.sort_unstable();
        if seen != (0..=top).collect::<Vec<u8>>() {
            return Err(format!(
                "a subscriber granted QoS {g} got the messages published at QoS {seen:?}, not each of 0 to {top} once"
            ));
        }
    }
    conn.disconnect();
    for (sub, _, _) in subs {
        sub.disconnect();
    }
    Ok(Outcome::Pass)
}

fn publish_qos3(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let mut bytes = bytes_of(
        &p.publish(&topic, b"x", QoS::AtLeastOnce, false, ID),
        p.protocol,
    )?;
    bytes[0] = (bytes[0] & 0xF0) | 0b0110;
    closes_on(p, 0, &bytes, "PUBLISH with QoS 3").map(|()| Outcome::Pass)
}

fn publish_topic_wildcard(p: &mut Probe) -> Result<Outcome, Fault> {
    let v5 = p.v5();
    let plus = p.topic("+/x");
    let hash = p.topic("#");
    closes_on(
        p,
        0,
        &raw_publish(v5, plus.as_bytes()),
        &format!("PUBLISH to {plus:?}"),
    )?;
    closes_on(
        p,
        1,
        &raw_publish(v5, hash.as_bytes()),
        &format!("PUBLISH to {hash:?}"),
    )?;
    Ok(Outcome::Pass)
}

fn pubrel_reserved_flags(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut conn, connack) = p.connect("a", &p.client_id(0))?;
    if max_qos(&connack) < 2 {
        return Ok(Outcome::NotApplicable(
            "the broker takes no QoS 2 messages (Maximum QoS)".into(),
        ));
    }
    let publish = p.publish(&topic, b"x", QoS::ExactlyOnce, false, ID);
    conn.send(&publish)?;
    match conn.expect("PUBREC", p.wait)? {
        Packet::PubRec(a) if a.pkid == ID && a.reason.is_error() => {
            return Ok(Flow::undecided(a.reason));
        }
        Packet::PubRec(a) if a.pkid == ID => {}
        other => {
            return Err(format!(
                "a QoS 2 PUBLISH with identifier {ID} was answered with {} instead of a PUBREC",
                describe(&other)
            ));
        }
    }
    let mut bytes = bytes_of(&Packet::PubRel(ack(ID)), p.protocol)?;
    bytes[0] &= 0xF0;
    conn.send_raw(&bytes, "PUBREL with flags 0000")?;
    conn.expect_close(p.wait).map(|_| Outcome::Pass)
}

fn subscribe_unsubscribe_reserved_flags(p: &mut Probe) -> Result<Outcome, Fault> {
    let filter = p.topic("t");
    let mut sub = bytes_of(
        &Probe::subscribe_packet(ID, &filter, QoS::AtMostOnce),
        p.protocol,
    )?;
    sub[0] &= 0xF0;
    closes_on(p, 0, &sub, "SUBSCRIBE with flags 0000")?;
    let mut unsub = bytes_of(
        &Packet::Unsubscribe(Unsubscribe {
            pkid: ID,
            filters: vec![filter],
            properties: Properties::default(),
        }),
        p.protocol,
    )?;
    unsub[0] &= 0xF0;
    closes_on(p, 1, &unsub, "UNSUBSCRIBE with flags 0000")?;
    Ok(Outcome::Pass)
}

fn subscribe_options_invalid(p: &mut Probe) -> Result<Outcome, Fault> {
    let filter = p.topic("t");
    let sub = bytes_of(
        &Probe::subscribe_packet(ID, &filter, QoS::AtMostOnce),
        p.protocol,
    )?;
    // The options byte (3.1.1: requested QoS) is the packet's last.
    for (n, options, what) in [
        (0, 0x03, "SUBSCRIBE asking for QoS 3"),
        (1, 0x40, "SUBSCRIBE with reserved option bit 6 set"),
    ] {
        let mut bytes = sub.clone();
        if let Some(last) = bytes.last_mut() {
            *last = options;
        }
        closes_on(p, n, &bytes, what)?;
    }
    Ok(Outcome::Pass)
}

fn suback_per_filter(p: &mut Probe) -> Result<Outcome, Fault> {
    let requested = [2u8, 0, 1];
    let filters = [p.topic("a"), p.topic("b/+"), p.topic("c/#")];
    let (mut conn, _) = p.connect("a", &p.client_id(0))?;
    conn.send(&Packet::Subscribe(Subscribe {
        pkid: ID,
        filters: filters
            .iter()
            .zip(requested)
            .map(|(f, q)| Subscription {
                filter: f.to_string(),
                options: options(qos_of(q)),
            })
            .collect(),
        properties: Properties::default(),
    }))?;
    let reasons = match conn.expect("SUBACK", p.wait)? {
        Packet::SubAck(s) if s.pkid == ID => s.reasons,
        other => {
            return Err(format!(
                "a SUBSCRIBE with identifier {ID} was answered with {} instead of a SUBACK of identifier {ID}",
                describe(&other)
            ));
        }
    };
    if reasons.len() != requested.len() {
        return Err(format!(
            "a SUBSCRIBE of {} filters got a SUBACK with {} codes",
            requested.len(),
            reasons.len()
        ));
    }
    for (i, (code, asked)) in reasons.iter().zip(requested).enumerate() {
        match granted(*code) {
            Some(g) if g > asked => {
                return Err(format!(
                    "code {} of the SUBACK grants QoS {g} to the filter asking QoS {asked}: the codes are not in the filters' order (or grant more than asked)",
                    i + 1
                ));
            }
            Some(_) => {}
            None if code.is_error() => {}
            None => {
                return Err(format!(
                    "code {} of the SUBACK, 0x{:02x}, is no SUBACK code",
                    i + 1,
                    code.as_u8()
                ));
            }
        }
    }
    conn.disconnect();
    if reasons.iter().all(|r| r.is_error()) {
        return Ok(Outcome::Undecided(
            "the broker refused all three subscriptions, so their order does not show".into(),
        ));
    }
    Ok(Outcome::Pass)
}

fn subscribe_unsubscribe_no_filters(p: &mut Probe) -> Result<Outcome, Fault> {
    let v5 = p.v5();
    closes_on(
        p,
        0,
        &raw_subscribe(v5, ID, &[]),
        "SUBSCRIBE without topic filters",
    )?;
    closes_on(
        p,
        1,
        &raw_unsubscribe(v5, ID, &[]),
        "UNSUBSCRIBE without topic filters",
    )?;
    Ok(Outcome::Pass)
}

fn subscribe_invalid_filter(p: &mut Probe) -> Result<Outcome, Fault> {
    let v5 = p.v5();
    for (n, leaf) in [(0u8, "a/#/b"), (1, "a+")] {
        let filter = p.topic(leaf);
        let name = format!("{}", (b'a' + n) as char);
        let (mut conn, _) = p.connect(&name, &p.client_id(n))?;
        conn.send_raw(
            &raw_subscribe(v5, ID, &[filter.as_bytes()]),
            &format!("SUBSCRIBE of {filter:?}"),
        )?;
        match conn.recv(p.wait) {
            Got::Closed => {}
            Got::Packet(Packet::Disconnect(_)) if v5 => {
                conn.expect_close(p.wait)?;
            }
            Got::Packet(Packet::SubAck(s))
                if s.pkid == ID && s.reasons.len() == 1 && s.reasons[0].is_error() =>
            {
                conn.disconnect();
            }
            g => {
                return Err(format!(
                    "a SUBSCRIBE of the invalid filter {filter:?} got {} instead of a SUBACK of identifier {ID} with a failure code, or a close",
                    g.describe()
                ));
            }
        }
    }
    Ok(Outcome::Pass)
}

fn wildcard_matching(p: &mut Probe) -> Result<Outcome, Fault> {
    // Each filter, and the leaves of the topics it must get.
    let cases: [(&str, &[&str]); 3] = [
        ("+/b", &["a/b", "c/b"]),
        ("a/#", &["a", "a/b", "a/b/c"]),
        ("+", &["a", "c"]),
    ];
    let published = ["a/b", "c/b", "a", "a/b/c", "c/d", "c"];
    let mut subs = Vec::new();
    for (n, (leaf, _)) in cases.iter().enumerate() {
        let filter = p.topic(leaf);
        let (conn, _) = subscriber(p, &format!("s{n}"), n as u8 + 1, &filter, QoS::AtLeastOnce)?;
        subs.push(conn);
    }
    let (mut conn, _) = p.connect("a", &p.client_id(0))?;
    for (i, leaf) in published.iter().enumerate() {
        let topic = p.topic(leaf);
        if let Flow::Refused(r) = publish_flow(
            p,
            &mut conn,
            &topic,
            leaf.as_bytes(),
            QoS::AtLeastOnce,
            i as u16 + 1,
        )? {
            return Ok(Flow::undecided(r));
        }
    }
    for (sub, (filter, owed)) in subs.iter_mut().zip(cases) {
        let got = collect(sub, owed.len(), p.wait, quiet(p))?;
        let mut leaves = texts(&got);
        leaves.sort();
        let mut want: Vec<String> = owed.iter().map(|s| s.to_string()).collect();
        want.sort();
        if leaves != want {
            return Err(format!(
                "the filter {:?} got the topics {leaves:?} under {:?}, where it matches {want:?} of {published:?}",
                p.topic(filter),
                p.topic_root()
            ));
        }
        if let Some(m) = got.iter().find(|m| m.topic != p.topic(&text(m))) {
            return Err(format!(
                "the message published to {:?} was delivered with the topic name {:?}",
                p.topic(&text(m)),
                m.topic
            ));
        }
    }
    conn.disconnect();
    for sub in subs {
        sub.disconnect();
    }
    Ok(Outcome::Pass)
}

fn dollar_topic_not_matched_by_wildcard(p: &mut Probe) -> Result<Outcome, Fault> {
    let plain = p.topic("x");
    let dollar = format!("${plain}");
    // The filter replaces the first level with '+': it matches both topics but for the '$'.
    let rest = plain.split_once('/').map_or("", |(_, r)| r);
    let wild = format!("+/{rest}");
    let (mut wildcard, _) = subscriber(p, "w", 1, &wild, QoS::AtLeastOnce)?;
    // A broker may keep topics starting with '$' to itself: refusing to take them decides
    // nothing here.
    let (mut exact, _) = p.connect("e", &p.client_id(2))?;
    if let Err(f) = subscribe(p, &mut exact, 1, &dollar, QoS::AtLeastOnce) {
        return Ok(Outcome::Undecided(format!(
            "the broker did not take a subscription to {dollar:?}: {f}"
        )));
    }
    let (mut conn, _) = p.connect("a", &p.client_id(0))?;
    match publish_flow(p, &mut conn, &dollar, b"dollar", QoS::AtLeastOnce, 1) {
        Ok(Flow::Done) => {}
        Ok(Flow::Refused(r)) => {
            return Ok(Outcome::Undecided(format!(
                "the broker refused a PUBLISH to {dollar:?} (0x{:02x}), so there is nothing to match",
                r.as_u8()
            )));
        }
        Err(f) => {
            return Ok(Outcome::Undecided(format!(
                "the broker did not take a PUBLISH to {dollar:?}: {f}"
            )));
        }
    }
    if let Flow::Refused(r) = publish_flow(p, &mut conn, &plain, b"plain", QoS::AtLeastOnce, 2)? {
        return Ok(Flow::undecided(r));
    }
    let got = collect(&mut wildcard, 1, p.wait, quiet(p))?;
    if let Some(m) = got.iter().find(|m| m.topic.starts_with('$')) {
        return Err(format!(
            "the filter {wild:?}, starting with a wildcard, got the message published to {:?}",
            m.topic
        ));
    }
    if texts(&got) != ["plain"] {
        return Err(format!(
            "the filter {wild:?} did not get the message published to {plain:?} (got {:?})",
            texts(&got)
        ));
    }
    let control = collect(&mut exact, 1, p.wait, Duration::ZERO)?;
    conn.disconnect();
    wildcard.disconnect();
    exact.disconnect();
    if texts(&control) != ["dollar"] {
        return Ok(Outcome::Undecided(format!(
            "the broker did not deliver the message published to {dollar:?} to a subscription of that very topic either, so the wildcard's silence shows nothing"
        )));
    }
    Ok(Outcome::Pass)
}

fn subscribe_same_filter_replaces(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut sub, _) = subscriber(p, "s", 1, &topic, QoS::AtMostOnce)?;
    let second = subscribe(p, &mut sub, 2, &topic, QoS::AtLeastOnce)?;
    let (mut conn, _) = p.connect("a", &p.client_id(0))?;
    if let Flow::Refused(r) = publish_flow(p, &mut conn, &topic, b"m", QoS::AtLeastOnce, ID)? {
        return Ok(Flow::undecided(r));
    }
    let got = collect(&mut sub, 1, p.wait, quiet(p))?;
    if got.len() != 1 {
        return Err(format!(
            "after two SUBSCRIBEs of the same filter, one message reached the subscriber {} times, not once",
            got.len()
        ));
    }
    let owed = second.min(1);
    if got[0].qos.as_u8() != owed {
        return Err(format!(
            "the message came at QoS {}, not at QoS {owed} of the second subscription, which replaces the first (QoS 0)",
            got[0].qos.as_u8()
        ));
    }
    conn.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}

/// Sends UNSUBSCRIBE `pkid` of `filter` and waits for its UNSUBACK; in 5.0 its one code.
fn unsubscribe(
    p: &Probe,
    conn: &mut Conn,
    pkid: u16,
    filter: &str,
) -> Result<Option<ReasonCode>, Fault> {
    conn.send(&Packet::Unsubscribe(Unsubscribe {
        pkid,
        filters: vec![filter.to_string()],
        properties: Properties::default(),
    }))?;
    match conn.expect("UNSUBACK", p.wait)? {
        Packet::UnsubAck(UnsubAck {
            pkid: id, reasons, ..
        }) if id == pkid => {
            if !p.v5() {
                return Ok(None);
            }
            match reasons[..] {
                [r] => Ok(Some(r)),
                _ => Err(format!(
                    "an UNSUBSCRIBE of one filter got an UNSUBACK with {} codes",
                    reasons.len()
                )),
            }
        }
        other => Err(format!(
            "an UNSUBSCRIBE with identifier {pkid} was answered with {} instead of an UNSUBACK of identifier {pkid}",
            describe(&other)
        )),
    }
}

fn unsubscribe_several_filters(p: &mut Probe) -> Result<Outcome, Fault> {
    let [a, b, c, kept] = ["a", "b", "c", "kept"].map(|leaf| p.topic(leaf));
    let (mut sub, _) = p.connect("s", &p.client_id(1))?;
    for filter in [&a, &c, &kept] {
        p.subscribe(&mut sub, filter, QoS::AtMostOnce)?;
    }
    sub.send(&Packet::Unsubscribe(Unsubscribe {
        pkid: ID,
        filters: vec![a.clone(), b.clone(), c.clone()],
        properties: Properties::default(),
    }))?;
    match sub.expect("UNSUBACK", p.wait)? {
        Packet::UnsubAck(UnsubAck { pkid, reasons, .. }) if pkid == ID => {
            if p.v5() {
                let held = |r: ReasonCode| r == ReasonCode::Success;
                let unheld = |r: ReasonCode| {
                    matches!(r, ReasonCode::Success | ReasonCode::NoSubscriptionExisted)
                };
                match reasons[..] {
                    [ra, rb, rc] if held(ra) && unheld(rb) && held(rc) => {}
                    [ra, rb, rc] if ra.is_error() || rb.is_error() || rc.is_error() => {
                        return Ok(Outcome::Undecided(format!(
                            "the broker refused part of the UNSUBSCRIBE ({reasons:?})"
                        )));
                    }
                    _ => {
                        return Err(format!(
                            "the UNSUBACK of [held, not held, held] carries {reasons:?}: one code per filter, in their order, is owed (0x00, 0x00 or 0x11, 0x00)"
                        ));
                    }
                }
            }
        }
        other => {
            return Err(format!(
                "waited for UNSUBACK {ID}, got {}",
                describe(&other)
            ));
        }
    }
    // A second UNSUBACK (one per filter) would come before the PINGRESP.
    sub.send(&Packet::PingReq)?;
    match sub.expect("PINGRESP", p.wait)? {
        Packet::PingResp => {}
        other => {
            return Err(format!(
                "after the UNSUBACK the broker sent {}: one UNSUBSCRIBE gets one UNSUBACK",
                describe(&other)
            ));
        }
    }
    let (mut conn, _) = p.connect("a", &p.client_id(0))?;
    for topic in [&a, &c, &kept] {
        conn.send(&p.publish(topic, topic.as_bytes(), QoS::AtMostOnce, false, 0))?;
    }
    let got = collect(&mut sub, 1, p.wait, quiet(p))?;
    let topics: Vec<&str> = got.iter().map(|m| m.topic.as_str()).collect();
    conn.disconnect();
    sub.disconnect();
    match topics[..] {
        [t] if t == kept => Ok(Outcome::Pass),
        [] => Ok(Outcome::Undecided(format!(
            "the message on {kept:?}, still subscribed, never came"
        ))),
        _ => Err(format!(
            "after unsubscribing {a:?} and {c:?} in one UNSUBSCRIBE, the subscriber got messages on {topics:?}"
        )),
    }
}

fn unsubscribe_stops_delivery(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut sub, _) = subscriber(p, "s", 1, &topic, QoS::AtLeastOnce)?;
    let (mut conn, _) = p.connect("a", &p.client_id(0))?;
    if let Flow::Refused(r) = publish_flow(p, &mut conn, &topic, b"before", QoS::AtLeastOnce, 1)? {
        return Ok(Flow::undecided(r));
    }
    let got = collect(&mut sub, 1, p.wait, Duration::ZERO)?;
    if texts(&got) != ["before"] {
        return Err(format!(
            "the subscriber did not get the message published before the UNSUBSCRIBE (got {:?})",
            texts(&got)
        ));
    }
    match unsubscribe(p, &mut sub, ID, &topic)? {
        None | Some(ReasonCode::Success) => {}
        Some(ReasonCode::NoSubscriptionExisted) => {
            return Err(format!(
                "the UNSUBACK says no subscription existed for {topic:?}, which the client holds"
            ));
        }
        Some(r) if r.is_error() => {
            return Ok(Outcome::Undecided(format!(
                "the broker refused the UNSUBSCRIBE (0x{:02x})",
                r.as_u8()
            )));
        }
        Some(r) => {
            return Err(format!(
                "the UNSUBACK code 0x{:02x} is no UNSUBACK code",
                r.as_u8()
            ));
        }
    }
    if let Flow::Refused(r) = publish_flow(p, &mut conn, &topic, b"after", QoS::AtLeastOnce, 2)? {
        return Ok(Flow::undecided(r));
    }
    let after = collect(&mut sub, 0, p.wait, quiet(p))?;
    if !after.is_empty() {
        return Err(format!(
            "after the UNSUBACK, the subscriber still got {:?}",
            texts(&after)
        ));
    }
    let never = p.topic("never");
    match unsubscribe(p, &mut sub, ID + 1, &never)? {
        None | Some(ReasonCode::Success | ReasonCode::NoSubscriptionExisted) => {}
        Some(r) if r.is_error() => {}
        Some(r) => {
            return Err(format!(
                "the UNSUBACK code 0x{:02x} is no UNSUBACK code",
                r.as_u8()
            ));
        }
    }
    conn.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn ordered_delivery(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut sub, _) = subscriber(p, "s", 1, &topic, QoS::AtLeastOnce)?;
    let (mut conn, connack) = p.connect("a", &p.client_id(0))?;
    let window = usize::from(connack.properties.receive_maximum.unwrap_or(u16::MAX)).max(1);
    let count = 12u16;
    let mut unacked = Vec::new();
    for i in 1..=count {
        let packet = p.publish(
            &topic,
            format!("{i:03}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            i,
        );
        conn.send(&packet)?;
        unacked.push(i);
        // Within the broker's Receive Maximum: wait for a PUBACK before sending more.
        while unacked.len() >= window || (i == count && !unacked.is_empty()) {
            match conn.expect("PUBACK", p.wait)? {
                Packet::PubAck(a) if unacked.contains(&a.pkid) => {
                    if a.reason.is_error() {
                        return Ok(Flow::undecided(a.reason));
                    }
                    unacked.retain(|id| *id != a.pkid);
                }
                other => {
                    return Err(format!(
                        "waited for the PUBACKs of {unacked:?}, got {}",
                        describe(&other)
                    ));
                }
            }
        }
    }
    let got = collect(&mut sub, usize::from(count), p.wait, quiet(p))?;
    let want: Vec<String> = (1..=count).map(|i| format!("{i:03}")).collect();
    if texts(&got) != want {
        return Err(format!(
            "{count} QoS 1 messages published in order on one topic reached the subscriber as {:?}",
            texts(&got)
        ));
    }
    conn.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn topic_matching_exact(p: &mut Probe) -> Result<Outcome, Fault> {
    let filters = ["Case", "caf\u{e9}"];
    let published = ["case", "CASE", "Case", "cafe\u{301}", "caf\u{e9}"];
    let (mut sub, _) = subscriber(p, "s", 1, &p.topic(filters[0]), QoS::AtLeastOnce)?;
    subscribe(p, &mut sub, 2, &p.topic(filters[1]), QoS::AtLeastOnce)?;
    let (mut conn, _) = p.connect("a", &p.client_id(0))?;
    for (i, leaf) in published.iter().enumerate() {
        let topic = p.topic(leaf);
        if let Flow::Refused(r) = publish_flow(
            p,
            &mut conn,
            &topic,
            leaf.as_bytes(),
            QoS::AtLeastOnce,
            i as u16 + 1,
        )? {
            return Ok(Flow::undecided(r));
        }
    }
    let got = collect(&mut sub, filters.len(), p.wait, quiet(p))?;
    let mut leaves = texts(&got);
    leaves.sort();
    let mut want: Vec<String> = filters.iter().map(|s| s.to_string()).collect();
    want.sort();
    if leaves != want {
        return Err(format!(
            "the filters {filters:?} got the topics {leaves:?} of {published:?}: matching must compare the exact characters"
        ));
    }
    if let Some(m) = got.iter().find(|m| m.topic != p.topic(&text(m))) {
        return Err(format!(
            "the message published to {:?} was delivered with the topic name {:?}",
            p.topic(&text(m)),
            m.topic
        ));
    }
    conn.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn topic_null_character(p: &mut Probe) -> Result<Outcome, Fault> {
    let v5 = p.v5();
    let name = p.topic("a\u{0}b");
    closes_on(
        p,
        0,
        &raw_publish(v5, name.as_bytes()),
        "PUBLISH whose topic name holds U+0000",
    )?;
    closes_on(
        p,
        1,
        &raw_subscribe(v5, ID, &[name.as_bytes()]),
        "SUBSCRIBE whose filter holds U+0000",
    )?;
    Ok(Outcome::Pass)
}

fn topic_ill_formed_utf8(p: &mut Probe) -> Result<Outcome, Fault> {
    let v5 = p.v5();
    let with = |p: &Probe, bad: &[u8]| {
        let mut t = p.topic("a").into_bytes();
        t.extend_from_slice(bad);
        t
    };
    let surrogate = with(p, &[0xED, 0xA0, 0x80]);
    let ff = with(p, &[0xFF]);
    closes_on(
        p,
        0,
        &raw_publish(v5, &surrogate),
        "PUBLISH whose topic name holds the surrogate U+D800 (ED A0 80)",
    )?;
    closes_on(
        p,
        1,
        &raw_publish(v5, &ff),
        "PUBLISH whose topic name holds the byte FF",
    )?;
    closes_on(
        p,
        2,
        &raw_subscribe(v5, ID, &[&ff]),
        "SUBSCRIBE whose filter holds the byte FF",
    )?;
    Ok(Outcome::Pass)
}
