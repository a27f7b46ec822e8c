//! MQTT 5.0 features: topic aliases, flow control, subscription options and identifiers, expiry, properties.

use std::time::Duration;

use bytes::Bytes;

use crate::codec::{
    self, ConnAck, Disconnect, Packet, Properties, PropertySet, Protocol, Publish, QoS, ReasonCode,
    RetainHandling, SubscriptionOptions,
};

use super::super::probe::{Conn, Fault, Got, ack, describe, fixed_header_len, options, text};
use super::super::{Check, Outcome, Probe};
use super::{bytes_of, quiet};

pub const CHECKS: &[Check] = &[
    Check {
        name: "topic-alias-invalid",
        about: "A PUBLISH with Topic Alias 0, or one above the Topic Alias Maximum of the CONNACK (any alias when it announces none), closes the connection, after DISCONNECT 0x94 if any, and nothing follows that DISCONNECT but the close.",
        v3: &[],
        v5: &["MQTT-4.13.1-1", "MQTT-3.14.4-1", "MQTT-3.14.4-2"],
        needs: &[],
        run: topic_alias_invalid,
    },
    Check {
        name: "topic-alias-used",
        about: "A Topic Alias set by a PUBLISH (the highest the broker allows) and then used with an empty topic delivers to the topic it stands for, also after it is set again to another topic.",
        v3: &[],
        v5: &["MQTT-3.3.2-12"],
        needs: &[],
        run: topic_alias_used,
    },
    Check {
        name: "topic-alias-per-connection",
        about: "A Topic Alias set on one connection means nothing on the client's next connection: a PUBLISH using it there is not delivered.",
        v3: &[],
        v5: &["MQTT-3.3.2-7"],
        needs: &[],
        run: topic_alias_per_connection,
    },
    Check {
        name: "topic-alias-to-client",
        about: "The broker sends no Topic Alias to a client that announced no Topic Alias Maximum, none above 1 to one that announced 1, and every alias it sends stands for the message's topic.",
        v3: &[],
        v5: &["MQTT-3.1.2-26", "MQTT-3.1.2-27", "MQTT-3.3.2-11"],
        needs: &[],
        run: topic_alias_to_client,
    },
    Check {
        name: "receive-maximum",
        about: "A subscriber with Receive Maximum 2 has at most 2 unacknowledged QoS 1 PUBLISHes outstanding; the rest follow its PUBACKs.",
        v3: &[],
        v5: &["MQTT-3.3.4-9", "MQTT-4.9.0-2"],
        needs: &[],
        run: receive_maximum,
    },
    Check {
        name: "receive-maximum-other-packets",
        about: "A subscriber with Receive Maximum 1 and three messages waiting gets one at once and no other before its PUBACK, and, with its Receive Maximum used up, still gets PINGRESP, SUBACK and UNSUBACK at once.",
        v3: &[],
        v5: &["MQTT-3.3.4-10", "MQTT-4.9.0-3", "MQTT-4.9.0-1"],
        needs: &[],
        run: receive_maximum_other_packets,
    },
    Check {
        name: "problem-information-off",
        about: "A client asking for no problem and no response information gets no Response Information in CONNACK and no Reason String or User Property on SUBACK, UNSUBACK, PUBACK, PUBREC or PUBCOMP.",
        v3: &[],
        v5: &["MQTT-3.1.2-28", "MQTT-3.1.2-29"],
        needs: &[],
        run: problem_information_off,
    },
    Check {
        name: "diagnostics-within-maximum-packet-size",
        about: "A client with a small Maximum Packet Size (40 bytes) gets every answer within it: a Reason String or User Property that would not fit is left out of CONNACK, SUBACK, UNSUBACK, PUBACK, PUBREC, PUBREL, PUBCOMP and DISCONNECT (answers to an unknown PUBREL and PUBREC, an unknown filter and a Topic Alias 0 included).",
        v3: &[],
        v5: &[
            "MQTT-3.2.2-19",
            "MQTT-3.2.2-20",
            "MQTT-3.4.2-2",
            "MQTT-3.4.2-3",
            "MQTT-3.5.2-2",
            "MQTT-3.5.2-3",
            "MQTT-3.6.2-2",
            "MQTT-3.6.2-3",
            "MQTT-3.7.2-2",
            "MQTT-3.7.2-3",
            "MQTT-3.9.2-2",
            "MQTT-3.11.2-1",
            "MQTT-3.11.2-2",
            "MQTT-3.14.2-3",
            "MQTT-3.14.2-4",
        ],
        needs: &[],
        run: diagnostics_within_maximum_packet_size,
    },
    Check {
        name: "subscription-identifier",
        about: "A message matching subscriptions with Subscription Identifiers carries them: one copy with all of them, or one copy per subscription with its own.",
        v3: &[],
        v5: &["MQTT-3.3.4-3", "MQTT-3.3.4-4", "MQTT-3.3.4-5"],
        needs: &[],
        run: subscription_identifier,
    },
    Check {
        name: "message-expiry",
        about: "A message queued for an offline session is not delivered once its Message Expiry Interval has passed; one still alive is delivered with the interval reduced by the time it waited.",
        v3: &[],
        v5: &["MQTT-3.3.2-5", "MQTT-3.3.2-6"],
        needs: &[],
        run: message_expiry,
    },
    Check {
        name: "no-local",
        about: "A client's own message is not sent back to it on a No Local subscription; another client's message is.",
        v3: &[],
        v5: &["MQTT-3.8.3-3"],
        needs: &[],
        run: no_local,
    },
    Check {
        name: "retain-as-published",
        about: "A retained message forwarded live keeps RETAIN 1 on a Retain As Published subscription and has RETAIN 0 on one without.",
        v3: &[],
        v5: &["MQTT-3.3.1-12", "MQTT-3.3.1-13"],
        needs: &[],
        run: retain_as_published,
    },
    Check {
        name: "retain-handling",
        about: "Retain Handling 1 sends the retained message for a new subscription but not when it is made again; Retain Handling 2 never sends it.",
        v3: &[],
        v5: &["MQTT-3.3.1-10", "MQTT-3.3.1-11"],
        needs: &[],
        run: retain_handling,
    },
    Check {
        name: "maximum-packet-size",
        about: "A message larger than a client's Maximum Packet Size is not sent to it (others get it), and the next message that fits still is.",
        v3: &[],
        v5: &["MQTT-3.1.2-24", "MQTT-3.1.2-25"],
        needs: &[],
        run: maximum_packet_size,
    },
    Check {
        name: "user-properties-forwarded",
        about: "User Properties of a PUBLISH, names repeated, reach the subscriber unchanged and in order.",
        v3: &[],
        v5: &["MQTT-3.3.2-17", "MQTT-3.3.2-18"],
        needs: &[],
        run: user_properties_forwarded,
    },
    Check {
        name: "publish-properties-forwarded",
        about: "Payload Format Indicator, Content Type, Response Topic and Correlation Data of a PUBLISH reach the subscriber unchanged.",
        v3: &[],
        v5: &[
            "MQTT-3.3.2-4",
            "MQTT-3.3.2-15",
            "MQTT-3.3.2-16",
            "MQTT-3.3.2-20",
        ],
        needs: &[],
        run: publish_properties_forwarded,
    },
    Check {
        name: "disconnect-with-will",
        about: "DISCONNECT with Reason Code 0x04 (disconnect with Will Message) has the will published.",
        v3: &[],
        v5: &["MQTT-3.1.2-8"],
        needs: &[],
        run: disconnect_with_will,
    },
    Check {
        name: "will-user-properties-order",
        about: "A will's User Properties, names repeated, are published with it unchanged and in order.",
        v3: &[],
        v5: &["MQTT-3.1.3-10"],
        needs: &[],
        run: will_user_properties_order,
    },
    Check {
        name: "maximum-qos-honoured",
        about: "SUBSCRIBE requests for QoS 0, 1 and 2 are accepted, a PUBLISH at the Maximum QoS of the CONNACK (2 when absent) is taken, and a CONNECT with Will QoS 2 is refused (ideally 0x9B) and closed if and only if that Maximum QoS is below 2.",
        v3: &[],
        v5: &["MQTT-3.2.2-9", "MQTT-3.2.2-10", "MQTT-3.2.2-12"],
        needs: &[],
        run: maximum_qos_honoured,
    },
    Check {
        name: "retain-available-honoured",
        about: "A CONNECT with Will Retain 1 is refused (ideally 0x9A) and closed if and only if the CONNACK says Retain Available 0.",
        v3: &[],
        v5: &["MQTT-3.2.2-13"],
        needs: &[],
        run: retain_available_honoured,
    },
    Check {
        name: "shared-subscription",
        about: "Each message on a shared subscription goes to one member, at no more than the QoS that member was granted.",
        v3: &[],
        v5: &["MQTT-4.8.2-3"],
        needs: &[],
        run: shared_subscription,
    },
];

/// Connects `n` with `properties` on its CONNECT (clean start).
fn connect_props(
    p: &mut Probe,
    name: &str,
    n: u8,
    properties: Properties,
) -> Result<(Conn, ConnAck), Fault> {
    let mut c = p.connect_packet(&p.client_id(n));
    c.properties = properties;
    p.connect_with(name, c)
}

/// Subscribes `conn` to `filter` with `options` (and a Subscription Identifier, if any); the
/// SUBACK's reason code.
fn subscribe_opts(
    p: &Probe,
    conn: &mut Conn,
    pkid: u16,
    filter: &str,
    options: SubscriptionOptions,
    identifier: Option<u32>,
) -> Result<ReasonCode, Fault> {
    let properties = Properties::from(PropertySet {
        subscription_identifiers: identifier.into_iter().collect(),
        ..PropertySet::default()
    });
    p.subscribe_with(conn, pkid, filter, options, properties)
}

/// `subscribe_opts` that must be granted.
fn subscribe_granted(
    p: &Probe,
    conn: &mut Conn,
    pkid: u16,
    filter: &str,
    options: SubscriptionOptions,
) -> Result<(), Fault> {
    let reason = subscribe_opts(p, conn, pkid, filter, options, None)?;
    if reason.is_error() {
        return Err(format!(
            "the subscription to {filter} was refused with 0x{:02x}",
            reason.as_u8()
        ));
    }
    Ok(())
}

/// A PUBLISH of this check with `properties`.
fn publish_props(
    p: &mut Probe,
    topic: &str,
    payload: &[u8],
    qos: QoS,
    retain: bool,
    pkid: u16,
    properties: Properties,
) -> Packet {
    match p.publish(topic, payload, qos, retain, pkid) {
        Packet::Publish(mut x) => {
            x.properties = properties;
            Packet::Publish(x)
        }
        other => other,
    }
}

/// Sends `packet`, a QoS 1 PUBLISH, and waits for its PUBACK; PUBLISHes arriving meanwhile
/// (the client's own subscriptions) are kept in `got`.
fn publish_acked(
    p: &Probe,
    conn: &mut Conn,
    packet: &Packet,
    got: &mut Vec<Publish>,
) -> Result<(), Fault> {
    let Packet::Publish(x) = packet else {
        return Err("the check meant to send a PUBLISH".into());
    };
    conn.send(packet)?;
    loop {
        match conn.expect("PUBACK", p.wait)? {
            Packet::PubAck(a) if a.pkid == x.pkid => {
                if a.reason.is_error() {
                    return Err(format!(
                        "the PUBLISH to {:?} was refused with 0x{:02x}",
                        x.topic,
                        a.reason.as_u8()
                    ));
                }
                return Ok(());
            }
            Packet::Publish(m) => {
                if m.qos != QoS::AtMostOnce {
                    conn.send(&Packet::PubAck(ack(m.pkid)))?;
                }
                got.push(m);
            }
            other => return Err(format!("waited for PUBACK, got {}", describe(&other))),
        }
    }
}

/// PUBLISHes arriving on `conn`: the first within `first`, then each within `quiet` of the one
/// before, up to 64. QoS 1 ones are acknowledged when `acknowledge`. A close or another packet
/// is a fault.
fn collect(
    conn: &mut Conn,
    first: Duration,
    quiet: Duration,
    acknowledge: bool,
) -> Result<Vec<Publish>, Fault> {
    let mut got = Vec::new();
    let mut wait = first;
    while got.len() < 64 {
        match conn.recv(wait) {
            Got::Silent => break,
            Got::Packet(Packet::Publish(m)) => {
                if acknowledge && m.qos == QoS::AtLeastOnce {
                    conn.send(&Packet::PubAck(ack(m.pkid)))?;
                }
                got.push(m);
            }
            g => {
                return Err(format!("waited for PUBLISH packets, got {}", g.describe()));
            }
        }
        wait = quiet;
    }
    Ok(got)
}

/// The bytes of a QoS 0 PUBLISH of "x" to `topic` with Topic Alias `alias`, whatever its value
/// (the codec refuses to encode 0).
fn alias_publish(topic: &str, alias: u16) -> Result<Vec<u8>, Fault> {
    let publish = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.to_owned(),
        pkid: 0,
        properties: Properties::from(PropertySet {
            topic_alias: Some(1),
            ..PropertySet::default()
        }),
        payload: Bytes::from_static(b"x"),
    };
    let mut bytes = bytes_of(&Packet::Publish(publish), Protocol::V5)?;
    // Topic (2 + length), then the property length (1 byte) and Topic Alias (0x23, u16).
    let at = fixed_header_len(&bytes) + 2 + topic.len() + 1;
    if bytes.get(at) != Some(&0x23) {
        return Err("the check could not place its Topic Alias".into());
    }
    bytes[at + 1..at + 3].copy_from_slice(&alias.to_be_bytes());
    Ok(bytes)
}

fn topic_alias_invalid(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (conn, first) = p.connect("a", &p.client_id(0))?;
    conn.disconnect();
    let maximum = first.properties.topic_alias_maximum.unwrap_or(0);
    let mut aliases = vec![0u16];
    if maximum < u16::MAX {
        aliases.push(maximum + 1);
    }
    for alias in aliases {
        let (mut conn, _) = p.connect("a", &p.client_id(0))?;
        let bytes = alias_publish(&topic, alias)?;
        conn.send_raw(
            &bytes,
            &format!("PUBLISH with Topic Alias {alias} (maximum {maximum})"),
        )?;
        match conn.expect_close(p.wait) {
            Err(f) => {
                return Err(format!(
                    "a PUBLISH with Topic Alias {alias}, where the broker's Topic Alias Maximum is {maximum}, is a protocol error that closes the connection: {f}"
                ));
            }
            // Alias 0 is also a malformed packet or protocol error in general terms; an alias
            // above the maximum has its own reason code.
            Ok(Some(ReasonCode::MalformedPacket | ReasonCode::ProtocolError)) if alias == 0 => {}
            Ok(Some(reason)) if reason != ReasonCode::TopicAliasInvalid => {
                return Err(format!(
                    "Topic Alias {alias} (maximum {maximum}) was answered with DISCONNECT 0x{:02x}, not 0x94 (Topic Alias invalid){}",
                    reason.as_u8(),
                    if alias == 0 { ", 0x81 or 0x82" } else { "" }
                ));
            }
            Ok(_) => {}
        }
    }
    Ok(Outcome::Pass)
}

/// A QoS 1 PUBLISH of `topic` (empty: the alias alone) with Topic Alias `alias`.
fn aliased(topic: &str, alias: u16, payload: &[u8], pkid: u16) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: topic.to_string(),
        pkid,
        properties: Properties::from(PropertySet {
            topic_alias: Some(alias),
            ..PropertySet::default()
        }),
        payload: Bytes::copy_from_slice(payload),
    })
}

fn topic_alias_used(p: &mut Probe) -> Result<Outcome, Fault> {
    let (one, two) = (p.topic("one"), p.topic("two"));
    let root = format!("{}/#", p.topic_root());
    let (mut sub, _) = p.connect("s", &p.client_id(1))?;
    p.subscribe(&mut sub, &root, QoS::AtLeastOnce)?;
    let (mut publisher, connack) = p.connect("a", &p.client_id(0))?;
    let maximum = connack.properties.topic_alias_maximum.unwrap_or(0);
    if maximum == 0 {
        return Ok(Outcome::NotApplicable(
            "the CONNACK announces no Topic Alias Maximum: the broker takes no topic aliases"
                .into(),
        ));
    }
    let sent = [
        (one.as_str(), "one-set"),
        ("", "one-used"),
        (two.as_str(), "two-set"),
        ("", "two-used"),
    ];
    let mut own = Vec::new();
    for (n, (topic, payload)) in sent.iter().enumerate() {
        let packet = aliased(topic, maximum, payload.as_bytes(), n as u16 + 1);
        publish_acked(p, &mut publisher, &packet, &mut own)?;
    }
    let got = collect(&mut sub, p.wait, quiet(p), true)?;
    for (payload, topic) in [
        ("one-set", &one),
        ("one-used", &one),
        ("two-set", &two),
        ("two-used", &two),
    ] {
        let copies: Vec<&Publish> = got.iter().filter(|m| text(m) == payload).collect();
        match copies.as_slice() {
            [m] if &m.topic == topic => {}
            [m] => {
                return Err(format!(
                    "the message {payload:?}, sent with Topic Alias {maximum} standing for {topic:?}, was delivered on {:?}",
                    m.topic
                ));
            }
            [] => {
                return Err(format!(
                    "the message {payload:?}, sent with Topic Alias {maximum} standing for {topic:?}, was not delivered"
                ));
            }
            _ => {
                return Err(format!(
                    "the message {payload:?} was delivered {} times",
                    copies.len()
                ));
            }
        }
    }
    publisher.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn topic_alias_per_connection(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let root = format!("{}/#", p.topic_root());
    let (mut sub, _) = p.connect("s", &p.client_id(1))?;
    p.subscribe(&mut sub, &root, QoS::AtMostOnce)?;
    let (mut publisher, connack) = p.connect("a", &p.client_id(0))?;
    if connack.properties.topic_alias_maximum.unwrap_or(0) == 0 {
        return Ok(Outcome::NotApplicable(
            "the CONNACK announces no Topic Alias Maximum: the broker takes no topic aliases"
                .into(),
        ));
    }
    // The payload names the topic, so that a broker keeping the alias is seen delivering it.
    publish_acked(
        p,
        &mut publisher,
        &aliased(&topic, 1, topic.as_bytes(), 1),
        &mut Vec::new(),
    )?;
    match collect(&mut sub, p.wait, quiet(p), false)?.as_slice() {
        [m] if m.topic == topic => {}
        got => {
            return Err(format!(
                "the PUBLISH setting Topic Alias 1 should have been delivered once on {topic:?}, got {} copies",
                got.len()
            ));
        }
    }
    publisher.disconnect();
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    let mut used = aliased("", 1, topic.as_bytes(), 1);
    if let Packet::Publish(x) = &mut used {
        x.qos = QoS::AtMostOnce;
        x.pkid = 0;
    }
    publisher.send(&used)?;
    // The broker may close the connection over the unknown alias, or ignore the message; it
    // must not deliver it.
    let _ = publisher.recv(quiet(p));
    sub.expect_silence(
        quiet(p),
        "Topic Alias 1 was set on the client's previous connection only, so a PUBLISH using it on the new one must not be delivered",
    )?;
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn topic_alias_to_client(p: &mut Probe) -> Result<Outcome, Fault> {
    let root = format!("{}/#", p.topic_root());
    let mut subs = Vec::new();
    for (n, maximum) in [(1u8, None), (2, Some(1u16))] {
        let (mut s, _) = connect_props(
            p,
            &format!("s{n}"),
            n,
            Properties::from(PropertySet {
                topic_alias_maximum: maximum,
                ..PropertySet::default()
            }),
        )?;
        p.subscribe(&mut s, &root, QoS::AtLeastOnce)?;
        subs.push((s, maximum.unwrap_or(0)));
    }
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    // Each payload is its topic, so that the subscriber can tell what an alias must stand for.
    let topics: Vec<String> = [0, 1, 2, 0, 1, 0]
        .iter()
        .map(|k| p.topic(&format!("t{k}")))
        .collect();
    for (n, topic) in topics.iter().enumerate() {
        let packet = p.publish(
            topic,
            topic.as_bytes(),
            QoS::AtLeastOnce,
            false,
            n as u16 + 1,
        );
        publish_acked(p, &mut publisher, &packet, &mut Vec::new())?;
    }
    publisher.disconnect();
    for (mut s, maximum) in subs {
        let got = collect(&mut s, p.wait, quiet(p), true)?;
        let mut aliases = std::collections::BTreeMap::new();
        for m in &got {
            let topic = match m.properties.topic_alias {
                None => m.topic.clone(),
                Some(alias) if alias == 0 || alias > maximum => {
                    return Err(format!(
                        "the broker sent Topic Alias {alias} to a client whose Topic Alias Maximum is {}",
                        if maximum == 0 {
                            "absent".to_string()
                        } else {
                            maximum.to_string()
                        }
                    ));
                }
                Some(alias) if m.topic.is_empty() => match aliases.get(&alias) {
                    Some(t) => String::clone(t),
                    None => {
                        return Err(format!(
                            "the broker used Topic Alias {alias} with an empty topic before setting it on this connection"
                        ));
                    }
                },
                Some(alias) => {
                    aliases.insert(alias, m.topic.clone());
                    m.topic.clone()
                }
            };
            if topic.as_bytes() != &m.payload[..] {
                return Err(format!(
                    "the message published on {:?} reached a client with Topic Alias Maximum {maximum} as {topic:?}",
                    text(m)
                ));
            }
        }
        if got.len() != topics.len() {
            return Err(format!(
                "a client with Topic Alias Maximum {maximum} got {} of the {} QoS 1 messages",
                got.len(),
                topics.len()
            ));
        }
        s.disconnect();
    }
    Ok(Outcome::Pass)
}

fn receive_maximum(p: &mut Probe) -> Result<Outcome, Fault> {
    const LIMIT: usize = 2;
    const SENT: usize = 5;
    let root = format!("{}/#", p.topic_root());
    let topic = p.topic("t");
    let (mut sub, _) = connect_props(
        p,
        "s",
        1,
        Properties::from(PropertySet {
            receive_maximum: Some(LIMIT as u16),
            ..PropertySet::default()
        }),
    )?;
    p.subscribe(&mut sub, &root, QoS::AtLeastOnce)?;
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    for n in 0..SENT {
        let packet = p.publish(
            &topic,
            format!("m{n}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            n as u16 + 1,
        );
        publish_acked(p, &mut publisher, &packet, &mut Vec::new())?;
    }
    publisher.disconnect();
    let mut total = 0;
    let mut first = p.wait;
    while total < SENT {
        // Unacknowledged until the broker has had time to send all it would.
        let got = collect(&mut sub, first, quiet(p), false)?;
        if got.len() > LIMIT {
            return Err(format!(
                "the broker sent {} QoS 1 PUBLISH packets without waiting for a PUBACK to a client whose Receive Maximum is {LIMIT}",
                got.len()
            ));
        }
        if got.is_empty() {
            return Err(format!(
                "{total} of the {SENT} QoS 1 messages arrived; after their PUBACKs the rest never came"
            ));
        }
        if let Some(m) = got.iter().find(|m| m.qos != QoS::AtLeastOnce) {
            return Err(format!(
                "the QoS 1 message {:?} came at QoS {} on a QoS 1 subscription",
                text(m),
                m.qos.as_u8()
            ));
        }
        for m in &got {
            sub.send(&Packet::PubAck(ack(m.pkid)))?;
        }
        total += got.len();
        first = p.wait;
    }
    sub.disconnect();
    Ok(Outcome::Pass)
}

/// Waits for the answer `matches` picks out; QoS 1 PUBLISHes arriving meanwhile are kept
/// unacknowledged in `held`.
fn answer_past_publishes(
    conn: &mut Conn,
    what: &str,
    wait: Duration,
    held: &mut Vec<Publish>,
    matches: impl Fn(&Packet) -> bool,
) -> Result<(), Fault> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match conn.recv(deadline.saturating_duration_since(std::time::Instant::now())) {
            Got::Packet(Packet::Publish(m)) => held.push(m),
            Got::Packet(packet) if matches(&packet) => return Ok(()),
            g => {
                return Err(format!(
                    "with its Receive Maximum used up by an unacknowledged PUBLISH, the client waited for {what} and got {}",
                    g.describe()
                ));
            }
        }
    }
}

fn receive_maximum_other_packets(p: &mut Probe) -> Result<Outcome, Fault> {
    let root = format!("{}/#", p.topic_root());
    let topic = p.topic("t");
    let (mut sub, _) = connect_props(
        p,
        "s",
        1,
        Properties::from(PropertySet {
            receive_maximum: Some(1),
            ..PropertySet::default()
        }),
    )?;
    p.subscribe(&mut sub, &root, QoS::AtLeastOnce)?;
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    for n in 0..3u16 {
        let packet = p.publish(
            &topic,
            format!("m{n}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            n + 1,
        );
        publish_acked(p, &mut publisher, &packet, &mut Vec::new())?;
    }
    publisher.disconnect();
    let mut held = Vec::new();
    match sub.expect("a QoS 1 PUBLISH", p.wait)? {
        Packet::Publish(m) if m.qos == QoS::AtLeastOnce => held.push(m),
        other => {
            return Err(format!(
                "waited for a QoS 1 PUBLISH, got {}",
                describe(&other)
            ));
        }
    }
    sub.send(&Packet::PingReq)?;
    answer_past_publishes(&mut sub, "PINGRESP", p.wait, &mut held, |x| {
        matches!(x, Packet::PingResp)
    })?;
    let other = p.topic("other");
    sub.send(&Probe::subscribe_packet(7, &other, QoS::AtMostOnce))?;
    answer_past_publishes(
        &mut sub,
        "the SUBACK",
        p.wait,
        &mut held,
        |x| matches!(x, Packet::SubAck(s) if s.pkid == 7),
    )?;
    sub.send(&Packet::Unsubscribe(crate::codec::Unsubscribe {
        pkid: 8,
        filters: vec![other],
        properties: Properties::default(),
    }))?;
    answer_past_publishes(
        &mut sub,
        "the UNSUBACK",
        p.wait,
        &mut held,
        |x| matches!(x, Packet::UnsubAck(u) if u.pkid == 8),
    )?;
    if held.len() > 1 {
        return Err(format!(
            "the broker sent {} QoS 1 PUBLISH packets without waiting for a PUBACK to a client whose Receive Maximum is 1: its send quota starts at no more than the Receive Maximum",
            held.len()
        ));
    }
    for m in &held {
        sub.send(&Packet::PubAck(ack(m.pkid)))?;
    }
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn subscription_identifier(p: &mut Probe) -> Result<Outcome, Fault> {
    let root = p.topic_root().to_string();
    let (mut sub, connack) = p.connect("s", &p.client_id(1))?;
    if connack.properties.subscription_identifier_available == Some(0) {
        return Ok(Outcome::NotApplicable(
            "the CONNACK says Subscription Identifiers Available 0".into(),
        ));
    }
    for (pkid, filter, id) in [
        (1, format!("{root}/#"), 7),
        (2, format!("{root}/both/+"), 9),
    ] {
        let reason = subscribe_opts(
            p,
            &mut sub,
            pkid,
            &filter,
            options(QoS::AtMostOnce),
            Some(id),
        )?;
        if reason == ReasonCode::SubscriptionIdentifiersNotSupported {
            return Ok(Outcome::NotApplicable(
                "the SUBACK refuses Subscription Identifiers (0xA1)".into(),
            ));
        }
        if reason.is_error() {
            return Err(format!(
                "the subscription to {filter} was refused with 0x{:02x}",
                reason.as_u8()
            ));
        }
    }
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    let both = p.topic("both/x");
    let packet = p.publish(&both, b"both", QoS::AtMostOnce, false, 0);
    publisher.send(&packet)?;
    let got = collect(&mut sub, p.wait, quiet(p), false)?;
    let mut ids: Vec<Vec<u32>> = got
        .iter()
        .map(|m| {
            let mut ids = m.properties.subscription_identifiers.clone();
            ids.sort_unstable();
            ids
        })
        .collect();
    ids.sort();
    match ids.as_slice() {
        [one] if one == &[7, 9] => {}
        [a, b] if a == &[7] && b == &[9] => {}
        _ => {
            return Err(format!(
                "a message matching the subscriptions with identifiers 7 and 9 came as {} cop{} with identifiers {ids:?}; one copy with [7, 9] or two with [7] and [9] are owed",
                got.len(),
                if got.len() == 1 { "y" } else { "ies" }
            ));
        }
    }
    let only = p.topic("only");
    let packet = p.publish(&only, b"only", QoS::AtMostOnce, false, 0);
    publisher.send(&packet)?;
    let got = collect(&mut sub, p.wait, quiet(p), false)?;
    match got.as_slice() {
        [m] if m.properties.subscription_identifiers == [7] => {}
        _ => {
            return Err(format!(
                "a message matching only the subscription with identifier 7 came as {} copies with identifiers {:?}; one with [7] is owed",
                got.len(),
                got.iter()
                    .map(|m| m.properties.subscription_identifiers.clone())
                    .collect::<Vec<_>>()
            ));
        }
    }
    publisher.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn message_expiry(p: &mut Probe) -> Result<Outcome, Fault> {
    const LONG: u32 = 60;
    let root = format!("{}/#", p.topic_root());
    let topic = p.topic("t");
    let keep = Properties::from(PropertySet {
        session_expiry_interval: Some(60),
        ..PropertySet::default()
    });
    let (mut sub, _) = connect_props(p, "s", 1, keep.clone())?;
    p.subscribe(&mut sub, &root, QoS::AtLeastOnce)?;
    sub.disconnect();
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    for (pkid, payload, expiry) in [(1, "short", 1), (2, "long", LONG)] {
        let packet = publish_props(
            p,
            &topic,
            payload.as_bytes(),
            QoS::AtLeastOnce,
            false,
            pkid,
            Properties::from(PropertySet {
                message_expiry_interval: Some(expiry),
                ..PropertySet::default()
            }),
        );
        publish_acked(p, &mut publisher, &packet, &mut Vec::new())?;
    }
    publisher.disconnect();
    let waited = Duration::from_millis(2500);
    p.note(&format!("waits {} ms", waited.as_millis()));
    std::thread::sleep(waited);
    let mut c = p.connect_packet(&p.client_id(1));
    c.clean_start = false;
    c.properties = keep;
    let (mut sub, connack) = p.connect_with("s", c)?;
    if !connack.session_present {
        return Err(
            "the session, kept for 60 s, was not resumed 2.5 s later (Session Present 0)".into(),
        );
    }
    let got = collect(&mut sub, p.wait, quiet(p), true)?;
    if got.iter().any(|m| text(m) == "short") {
        return Err("a message with Message Expiry Interval 1 was delivered after waiting 2.5 s for the offline subscriber".into());
    }
    let Some(long) = got.iter().find(|m| text(m) == "long") else {
        return Err("the message with Message Expiry Interval 60, queued for the offline subscriber, was not delivered when it came back".into());
    };
    match long.properties.message_expiry_interval {
        Some(left) if left <= LONG - 2 => {}
        left => {
            return Err(format!(
                "the message sent with Message Expiry Interval {LONG} waited 2.5 s and was delivered with {left:?}; at most {} is owed",
                LONG - 2
            ));
        }
    }
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn no_local(p: &mut Probe) -> Result<Outcome, Fault> {
    let root = format!("{}/#", p.topic_root());
    let topic = p.topic("t");
    let (mut a, _) = p.connect("a", &p.client_id(0))?;
    subscribe_granted(
        p,
        &mut a,
        1,
        &root,
        SubscriptionOptions {
            no_local: true,
            ..options(QoS::AtLeastOnce)
        },
    )?;
    let mut own = Vec::new();
    let packet = p.publish(&topic, b"own", QoS::AtLeastOnce, false, 1);
    publish_acked(p, &mut a, &packet, &mut own)?;
    let (mut b, _) = p.connect("b", &p.client_id(1))?;
    let packet = p.publish(&topic, b"other", QoS::AtLeastOnce, false, 1);
    publish_acked(p, &mut b, &packet, &mut Vec::new())?;
    own.extend(collect(&mut a, p.wait, quiet(p), true)?);
    if own.iter().any(|m| text(m) == "own") {
        return Err(
            "the client's own message was sent back to it on its No Local subscription".into(),
        );
    }
    if !own.iter().any(|m| text(m) == "other") {
        return Ok(Outcome::Undecided(
            "another client's message was not delivered on the No Local subscription either".into(),
        ));
    }
    b.disconnect();
    a.disconnect();
    Ok(Outcome::Pass)
}

fn retain_as_published(p: &mut Probe) -> Result<Outcome, Fault> {
    let root = format!("{}/#", p.topic_root());
    let topic = p.topic("t");
    let mut subs = Vec::new();
    for (n, rap) in [(1, true), (2, false)] {
        let (mut s, _) = p.connect(if rap { "rap1" } else { "rap0" }, &p.client_id(n))?;
        subscribe_granted(
            p,
            &mut s,
            1,
            &root,
            SubscriptionOptions {
                retain_as_published: rap,
                ..options(QoS::AtMostOnce)
            },
        )?;
        subs.push((s, rap));
    }
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    let packet = p.publish(&topic, b"kept", QoS::AtLeastOnce, true, 1);
    publish_acked(p, &mut publisher, &packet, &mut Vec::new())?;
    publisher.disconnect();
    for (mut s, rap) in subs {
        let got = collect(&mut s, p.wait, quiet(p), true)?;
        let [m] = got.as_slice() else {
            return Err(format!(
                "the retained message published after the subscription (Retain As Published {}) came {} times, not once",
                u8::from(rap),
                got.len()
            ));
        };
        if m.retain != rap {
            return Err(format!(
                "a message published with RETAIN 1 was forwarded with RETAIN {} on a subscription with Retain As Published {}",
                u8::from(m.retain),
                u8::from(rap)
            ));
        }
        s.disconnect();
    }
    Ok(Outcome::Pass)
}

fn retain_handling(p: &mut Probe) -> Result<Outcome, Fault> {
    let root = format!("{}/#", p.topic_root());
    let topic = p.topic("t");
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    let packet = p.publish(&topic, b"kept", QoS::AtLeastOnce, true, 1);
    publish_acked(p, &mut publisher, &packet, &mut Vec::new())?;
    publisher.disconnect();
    let handling = |h| SubscriptionOptions {
        retain_handling: h,
        ..options(QoS::AtMostOnce)
    };
    let (mut s, _) = p.connect("s", &p.client_id(1))?;
    subscribe_granted(p, &mut s, 1, &root, handling(RetainHandling::SendIfNew))?;
    match s.recv(p.wait) {
        Got::Packet(Packet::Publish(m)) if m.topic == topic && m.retain => {}
        g => {
            return Err(format!(
                "a new subscription with Retain Handling 1 should get the retained message, got {}",
                g.describe()
            ));
        }
    }
    subscribe_granted(p, &mut s, 2, &root, handling(RetainHandling::SendIfNew))?;
    s.expect_silence(
        quiet(p),
        "the subscription with Retain Handling 1 already existed, so its retained message must not be sent again",
    )?;
    s.disconnect();
    let (mut s, _) = p.connect("s2", &p.client_id(2))?;
    subscribe_granted(p, &mut s, 1, &root, handling(RetainHandling::DoNotSend))?;
    s.expect_silence(
        quiet(p),
        "a subscription with Retain Handling 2 must not get retained messages",
    )?;
    s.disconnect();
    Ok(Outcome::Pass)
}

fn maximum_packet_size(p: &mut Probe) -> Result<Outcome, Fault> {
    const LIMIT: u32 = 256;
    let root = format!("{}/#", p.topic_root());
    let topic = p.topic("t");
    let (mut small, _) = connect_props(
        p,
        "small",
        1,
        Properties::from(PropertySet {
            maximum_packet_size: Some(LIMIT),
            ..PropertySet::default()
        }),
    )?;
    p.subscribe(&mut small, &root, QoS::AtLeastOnce)?;
    let (mut other, _) = p.connect("other", &p.client_id(2))?;
    p.subscribe(&mut other, &root, QoS::AtLeastOnce)?;
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    let big = vec![b'b'; 2 * LIMIT as usize];
    for (pkid, payload) in [(1, big.as_slice()), (2, b"fits".as_slice())] {
        let packet = p.publish(&topic, payload, QoS::AtLeastOnce, false, pkid);
        publish_acked(p, &mut publisher, &packet, &mut Vec::new())?;
    }
    publisher.disconnect();
    let got = collect(&mut other, p.wait, quiet(p), true)?;
    if got.len() != 2 {
        return Ok(Outcome::Undecided(format!(
            "a subscriber without a size limit got {} of the 2 messages",
            got.len()
        )));
    }
    let got = collect(&mut small, p.wait, quiet(p), true)?;
    for m in &got {
        let size = codec::encoded_len(&Packet::Publish(m.clone()), Protocol::V5)
            .map_err(|e| format!("the check could not size a PUBLISH: {e}"))?;
        if size > LIMIT as usize {
            return Err(format!(
                "the broker sent a {size}-byte PUBLISH to a client whose Maximum Packet Size is {LIMIT}"
            ));
        }
    }
    if !got.iter().any(|m| text(m) == "fits") {
        return Err(format!(
            "after dropping a message too large for the client's Maximum Packet Size {LIMIT}, the broker did not send the next one, which fits"
        ));
    }
    small.disconnect();
    other.disconnect();
    Ok(Outcome::Pass)
}

/// The Maximum Packet Size of `diagnostics_within_maximum_packet_size`: room for every answer
/// without diagnostics, too little for most with a Reason String.
const DIAGNOSTICS_LIMIT: u32 = 40;

fn diagnostics_within_maximum_packet_size(p: &mut Probe) -> Result<Outcome, Fault> {
    let (mut conn, connack) = connect_props(
        p,
        "a",
        0,
        Properties::from(PropertySet {
            maximum_packet_size: Some(DIAGNOSTICS_LIMIT),
            ..PropertySet::default()
        }),
    )?;
    within_limit(&Packet::ConnAck(connack))?;
    let topic = p.topic("t");
    conn.send(&Probe::subscribe_packet(1, &topic, QoS::AtMostOnce))?;
    within_limit(&conn.expect("the SUBACK", p.wait)?)?;
    conn.send(&Packet::Unsubscribe(crate::codec::Unsubscribe {
        pkid: 2,
        filters: vec![p.topic("never")],
        properties: Properties::default(),
    }))?;
    within_limit(&conn.expect("the UNSUBACK", p.wait)?)?;
    let lonely = p.topic("nobody");
    for (pkid, qos) in [(3, QoS::AtLeastOnce), (4, QoS::ExactlyOnce)] {
        conn.send(&p.publish(&lonely, b"x", qos, false, pkid))?;
        let answer = conn.expect("the acknowledgement", p.wait)?;
        within_limit(&answer)?;
        if matches!(answer, Packet::PubRec(_)) {
            conn.send(&Packet::PubRel(ack(pkid)))?;
            within_limit(&conn.expect("the PUBCOMP", p.wait)?)?;
        }
    }
    // A PUBREL for an identifier with no exchange is answered with PUBCOMP (0x92, Packet
    // Identifier not found, in 5.0); a PUBREC for one may be answered with PUBREL 0x92.
    conn.send(&Packet::PubRel(ack(0x4242)))?;
    within_limit(&conn.expect("the PUBCOMP", p.wait)?)?;
    conn.send(&Packet::PubRec(ack(0x4343)))?;
    match conn.recv(quiet(p)) {
        Got::Packet(answer) => within_limit(&answer)?,
        Got::Silent => {}
        other => {
            return Err(format!(
                "after a PUBREC for an unknown identifier, got {}",
                other.describe()
            ));
        }
    }
    // Topic Alias 0 is a protocol error: DISCONNECT 0x94 (if any) must fit too.
    conn.send_raw(&alias_publish(&topic, 0)?, "PUBLISH with Topic Alias 0")?;
    match conn.recv(p.wait) {
        Got::Packet(answer) => within_limit(&answer)?,
        Got::Closed => {}
        other => {
            return Err(format!(
                "after a PUBLISH with Topic Alias 0, got {}",
                other.describe()
            ));
        }
    }
    Ok(Outcome::Pass)
}

/// An answer to the client of `diagnostics_within_maximum_packet_size` fits its limit.
fn within_limit(answer: &Packet) -> Result<(), Fault> {
    let size = codec::encoded_len(answer, Protocol::V5)
        .map_err(|e| format!("the check could not size {}: {e}", describe(answer)))?;
    if size <= DIAGNOSTICS_LIMIT as usize {
        return Ok(());
    }
    let diagnostics = match answer {
        Packet::ConnAck(x) => Some(&x.properties),
        Packet::SubAck(x) => Some(&x.properties),
        Packet::UnsubAck(x) => Some(&x.properties),
        Packet::PubAck(x) | Packet::PubRec(x) | Packet::PubRel(x) | Packet::PubComp(x) => {
            Some(&x.properties)
        }
        Packet::Disconnect(x) => Some(&x.properties),
        _ => None,
    }
    .is_some_and(|x| x.reason_string.is_some() || !x.user_properties.is_empty());
    Err(if diagnostics {
        format!(
            "the broker sent a {size}-byte {} to a client whose Maximum Packet Size is {DIAGNOSTICS_LIMIT}: a Reason String or User Property that does not fit must be left out",
            describe(answer)
        )
    } else {
        format!(
            "the broker sent a {size}-byte {} to a client whose Maximum Packet Size is {DIAGNOSTICS_LIMIT}",
            describe(answer)
        )
    })
}

/// Publishes one QoS 0 message with `properties` to a subscriber of this check; what it got.
fn forwarded(p: &mut Probe, properties: Properties, payload: &[u8]) -> Result<Publish, Fault> {
    let topic = p.topic("t");
    let (mut sub, _) = p.connect("s", &p.client_id(1))?;
    p.subscribe(&mut sub, &topic, QoS::AtMostOnce)?;
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    let packet = publish_props(p, &topic, payload, QoS::AtMostOnce, false, 0, properties);
    publisher.send(&packet)?;
    let got = match sub.expect("the PUBLISH", p.wait)? {
        Packet::Publish(m) => m,
        other => return Err(format!("waited for the PUBLISH, got {}", describe(&other))),
    };
    publisher.disconnect();
    sub.disconnect();
    Ok(got)
}

fn user_properties_forwarded(p: &mut Probe) -> Result<Outcome, Fault> {
    let sent: Vec<(String, String)> = [("b", "1"), ("a", "2"), ("b", "3"), ("c", ""), ("a", "2")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let got = forwarded(
        p,
        Properties::from(PropertySet {
            user_properties: sent.clone(),
            ..PropertySet::default()
        }),
        b"x",
    )?;
    if got.properties.user_properties != sent {
        return Err(format!(
            "the message was published with User Properties::from(PropertySet {sent:?}) and delivered with {:?}",
            got.properties.user_properties
        ));
    }
    Ok(Outcome::Pass)
}

fn publish_properties_forwarded(p: &mut Probe) -> Result<Outcome, Fault> {
    let sent = Properties::from(PropertySet {
        payload_format_indicator: Some(1),
        content_type: Some("text/plain; charset=utf-8".into()),
        response_topic: Some(p.topic("reply")),
        correlation_data: Some(Bytes::from_static(&[0, 1, 0xfe, 0xff])),
        ..PropertySet::default()
    });
    let got = forwarded(p, sent.clone(), "text ✓".as_bytes())?.properties;
    let mut wrong = Vec::new();
    if got.payload_format_indicator != sent.payload_format_indicator {
        wrong.push(format!(
            "Payload Format Indicator {:?} for {:?}",
            got.payload_format_indicator, sent.payload_format_indicator
        ));
    }
    if got.content_type != sent.content_type {
        wrong.push(format!(
            "Content Type {:?} for {:?}",
            got.content_type, sent.content_type
        ));
    }
    if got.response_topic != sent.response_topic {
        wrong.push(format!(
            "Response Topic {:?} for {:?}",
            got.response_topic, sent.response_topic
        ));
    }
    if got.correlation_data != sent.correlation_data {
        wrong.push(format!(
            "Correlation Data {:?} for {:?}",
            got.correlation_data, sent.correlation_data
        ));
    }
    if !wrong.is_empty() {
        return Err(format!(
            "the message was delivered with {}",
            wrong.join(", ")
        ));
    }
    Ok(Outcome::Pass)
}

fn disconnect_with_will(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("will");
    let (mut watcher, _) = p.connect("w", &p.client_id(1))?;
    p.subscribe(&mut watcher, &topic, QoS::AtMostOnce)?;
    let mut c = p.connect_packet(&p.client_id(0));
    c.will = Some(Box::new(p.will(&topic, b"gone", QoS::AtMostOnce, false)));
    let (mut conn, _) = p.connect_with("a", c)?;
    conn.send(&Packet::Disconnect(Disconnect {
        reason: ReasonCode::DisconnectWithWillMessage,
        properties: Properties::default(),
    }))?;
    match watcher.recv(p.wait) {
        Got::Packet(Packet::Publish(w)) if w.topic == topic && &w.payload[..] == b"gone" => {}
        g => {
            return Err(format!(
                "the client disconnected with Reason Code 0x04 (disconnect with Will Message), but the will did not come: {}",
                g.describe()
            ));
        }
    }
    let _ = conn.recv(Duration::from_millis(50));
    watcher.disconnect();
    Ok(Outcome::Pass)
}

fn shared_subscription(p: &mut Probe) -> Result<Outcome, Fault> {
    const SENT: usize = 6;
    let filter = format!("$share/g/{}/#", p.topic_root());
    let topic = p.topic("t");
    let mut members = Vec::new();
    for (n, qos) in [(1, QoS::AtMostOnce), (2, QoS::AtLeastOnce)] {
        let (mut m, connack) = p.connect(&format!("m{n}"), &p.client_id(n))?;
        if connack.properties.shared_subscription_available == Some(0) {
            return Ok(Outcome::NotApplicable(
                "the CONNACK says Shared Subscription Available 0".into(),
            ));
        }
        let reason = subscribe_opts(p, &mut m, 1, &filter, options(qos), None)?;
        if reason == ReasonCode::SharedSubscriptionsNotSupported {
            return Ok(Outcome::NotApplicable(
                "the SUBACK refuses shared subscriptions (0x9E)".into(),
            ));
        }
        if reason.is_error() {
            return Err(format!(
                "the subscription to {filter} was refused with 0x{:02x}",
                reason.as_u8()
            ));
        }
        let granted = QoS::from_u8(reason.as_u8()).unwrap_or(qos);
        members.push((m, granted));
    }
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    for n in 0..SENT {
        let packet = p.publish(
            &topic,
            format!("m{n}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            n as u16 + 1,
        );
        publish_acked(p, &mut publisher, &packet, &mut Vec::new())?;
    }
    publisher.disconnect();
    let mut copies = [0usize; SENT];
    for (n, (mut m, granted)) in members.into_iter().enumerate() {
        for x in collect(&mut m, p.wait, quiet(p), true)? {
            if x.qos.as_u8() > granted.as_u8() {
                return Err(format!(
                    "member {} of the shared subscription, granted QoS {}, got {:?} at QoS {}",
                    n + 1,
                    granted.as_u8(),
                    text(&x),
                    x.qos.as_u8()
                ));
            }
            match text(&x)
                .strip_prefix('m')
                .and_then(|k| k.parse::<usize>().ok())
            {
                Some(k) if k < SENT => copies[k] += 1,
                _ => {
                    return Err(format!(
                        "a member got a message the check did not send: {}",
                        text(&x)
                    ));
                }
            }
        }
        m.disconnect();
    }
    if let Some((k, c)) = copies.iter().enumerate().find(|(_, c)| **c != 1) {
        return Err(format!(
            "message m{k} went to {c} members of the shared subscription; each message goes to exactly one"
        ));
    }
    Ok(Outcome::Pass)
}

fn problem_information_off(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut conn, connack) = connect_props(
        p,
        "a",
        0,
        Properties::from(PropertySet {
            request_problem_information: Some(0),
            request_response_information: Some(0),
            ..PropertySet::default()
        }),
    )?;
    if let Some(info) = &connack.properties.response_information {
        return Err(format!(
            "the CONNACK carries Response Information {info:?} although the client set Request Response Information 0"
        ));
    }
    let mut answers = Vec::new();
    conn.send(&Probe::subscribe_packet(1, &topic, QoS::AtMostOnce))?;
    answers.push(conn.expect("the SUBACK", p.wait)?);
    // Publishes nobody receives (the client's own subscription is QoS 0 and its filter is
    // another topic): a broker may answer them with 0x10 (no matching subscribers).
    let lonely = p.topic("nobody");
    for (pkid, qos) in [(1, QoS::AtLeastOnce), (2, QoS::ExactlyOnce)] {
        let packet = p.publish(&lonely, b"x", qos, false, pkid);
        conn.send(&packet)?;
        let answer = conn.expect("the acknowledgement", p.wait)?;
        let rec = matches!(answer, Packet::PubRec(_));
        answers.push(answer);
        if rec {
            conn.send(&Packet::PubRel(ack(pkid)))?;
            answers.push(conn.expect("the PUBCOMP", p.wait)?);
        }
    }
    // A filter never subscribed: a broker may answer 0x11 (no subscription existed).
    conn.send(&Packet::Unsubscribe(crate::codec::Unsubscribe {
        pkid: 3,
        filters: vec![p.topic("never")],
        properties: Properties::default(),
    }))?;
    answers.push(conn.expect("the UNSUBACK", p.wait)?);
    for answer in &answers {
        let properties = match answer {
            Packet::SubAck(x) => &x.properties,
            Packet::UnsubAck(x) => &x.properties,
            Packet::PubAck(x) | Packet::PubRec(x) | Packet::PubComp(x) => &x.properties,
            other => return Err(format!("the broker answered with {}", describe(other))),
        };
        if properties.reason_string.is_some() || !properties.user_properties.is_empty() {
            return Err(format!(
                "the broker sent {} to a client that set Request Problem Information 0",
                describe(answer)
            ));
        }
    }
    conn.disconnect();
    Ok(Outcome::Pass)
}

fn will_user_properties_order(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("will");
    let (mut watcher, _) = p.connect("w", &p.client_id(1))?;
    p.subscribe(&mut watcher, &topic, QoS::AtMostOnce)?;
    let sent: Vec<(String, String)> = [("k", "x"), ("k", "y"), ("a", "z"), ("k", "x")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut c = p.connect_packet(&p.client_id(0));
    let mut will = p.will(&topic, b"gone", QoS::AtMostOnce, false);
    will.properties.user_properties = sent.clone();
    c.will = Some(Box::new(will));
    let (conn, _) = p.connect_with("a", c)?;
    conn.drop_abruptly();
    let got = match watcher.expect("the will", p.wait)? {
        Packet::Publish(m) if m.topic == topic => m,
        other => return Err(format!("waited for the will, got {}", describe(&other))),
    };
    if got.properties.user_properties != sent {
        return Err(format!(
            "a will with User Properties::from(PropertySet {sent:?}) was published with {:?}; their order is kept",
            got.properties.user_properties
        ));
    }
    watcher.disconnect();
    Ok(Outcome::Pass)
}

/// Client `n` sends `connect`: `Ok(true)` when accepted (then disconnected), `Ok(false)`
/// when refused with a CONNACK of 0x80 or more (or no CONNACK) and closed.
fn accepted(p: &mut Probe, name: &str, connect: crate::codec::Connect) -> Result<bool, Fault> {
    if connect.will.as_ref().is_some_and(|w| w.retain) {
        p.retained.insert(
            connect
                .will
                .as_ref()
                .map(|w| w.topic.clone())
                .unwrap_or_default(),
        );
    }
    p.sessions.insert(connect.client_id.clone());
    let mut conn = p.open(name)?;
    conn.send(&Packet::Connect(connect))?;
    match conn.recv(p.wait) {
        Got::Packet(Packet::ConnAck(a)) if !a.reason.is_error() => {
            conn.disconnect();
            Ok(true)
        }
        Got::Packet(Packet::ConnAck(_)) => conn.expect_close(p.wait).map(|_| false),
        Got::Closed => Ok(false),
        g => Err(format!("waited for CONNACK, got {}", g.describe())),
    }
}

fn maximum_qos_honoured(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut conn, connack) = p.connect("a", &p.client_id(0))?;
    let maximum = connack.properties.maximum_qos.unwrap_or(2);
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let code = p.subscribe_with(
            &mut conn,
            u16::from(qos.as_u8()) + 1,
            &topic,
            options(qos),
            Properties::default(),
        )?;
        if code.is_error() {
            return Err(format!(
                "a SUBSCRIBE asking for QoS {} was refused with 0x{:02x}; a broker accepts requests for any QoS, granting at most what it supports",
                qos.as_u8(),
                code.as_u8()
            ));
        }
    }
    let top = QoS::from_u8(maximum).unwrap_or(QoS::ExactlyOnce);
    if top != QoS::AtMostOnce {
        // To a topic of its own, so that the answer is not preceded by the message itself.
        let other = p.topic("m");
        conn.send(&p.publish(&other, b"m", top, false, 9))?;
        let answer = conn.expect("the answer to the PUBLISH", p.wait)?;
        match &answer {
            Packet::PubAck(a) | Packet::PubRec(a) if a.reason == ReasonCode::QoSNotSupported => {
                return Err(format!(
                    "a PUBLISH at QoS {maximum}, the Maximum QoS of the CONNACK, was refused with 0x9B (QoS not supported)"
                ));
            }
            Packet::PubRec(a) if !a.reason.is_error() => {
                conn.send(&Packet::PubRel(ack(a.pkid)))?;
                conn.expect("PUBCOMP", p.wait)?;
            }
            Packet::PubAck(_) | Packet::PubRec(_) => {}
            other => {
                return Err(format!(
                    "a PUBLISH at QoS {maximum} was answered with {}",
                    describe(other)
                ));
            }
        }
    }
    conn.disconnect();
    let mut c = p.connect_packet(&p.client_id(1));
    c.will = Some(Box::new(p.will(
        &p.topic("will"),
        b"gone",
        QoS::ExactlyOnce,
        false,
    )));
    match (accepted(p, "b", c)?, maximum < 2) {
        (true, true) => Err(format!(
            "the CONNACK said Maximum QoS {maximum}, yet a CONNECT with Will QoS 2 was accepted; it must be refused and the connection closed"
        )),
        (false, false) => Err(
            "a CONNECT with Will QoS 2 was refused by a broker whose CONNACK announces no Maximum QoS, that is QoS 2".into(),
        ),
        _ => Ok(Outcome::Pass),
    }
}

fn retain_available_honoured(p: &mut Probe) -> Result<Outcome, Fault> {
    let (conn, connack) = p.connect("a", &p.client_id(0))?;
    conn.disconnect();
    let available = connack.properties.retain_available.unwrap_or(1) != 0;
    let mut c = p.connect_packet(&p.client_id(1));
    c.will = Some(Box::new(p.will(
        &p.topic("will"),
        b"gone",
        QoS::AtMostOnce,
        true,
    )));
    match (accepted(p, "b", c)?, available) {
        (true, false) => Err(
            "the CONNACK said Retain Available 0, yet a CONNECT with Will Retain 1 was accepted; it must be refused and the connection closed".into(),
        ),
        (false, true) => Err(
            "a CONNECT with Will Retain 1 was refused by a broker whose CONNACK does not say Retain Available 0".into(),
        ),
        _ => Ok(Outcome::Pass),
    }
}
