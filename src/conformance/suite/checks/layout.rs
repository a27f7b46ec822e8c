//! How the broker lays out what it forwards (the PUBLISH variable header, strings kept byte for
//! byte) and what it does with a CONNECT it cannot accept.

use crate::codec::reason::connack_v3_return_code;
use crate::codec::{Packet, Properties, PropertySet, QoS};

use super::super::probe::{Conn, Fault, Got, describe, fixed_header_len, hex, options};
use super::super::{Check, Outcome, Probe};
use super::quiet;

pub const CHECKS: &[Check] = &[
    Check {
        name: "qos0-publish-layout",
        about: "A message published without properties and delivered at QoS 0 begins with its topic name as a UTF-8 string, then (5.0) its Property Length, 0 when the broker adds no properties, then its payload as sent: no packet identifier.",
        v3: &["MQTT-2.3.1-5", "MQTT-3.3.2-1"],
        v5: &["MQTT-2.2.1-2", "MQTT-2.2.2-1", "MQTT-3.3.2-1"],
        needs: &[],
        run: qos0_publish_layout,
    },
    Check {
        name: "strings-kept-as-sent",
        about: "A topic name holding U+FEFF (EF BB BF) and characters of two to four bytes is delivered byte for byte and does not match the same name without U+FEFF (5.0: so are a Content Type, a Response Topic and a User Property name and value holding them).",
        v3: &["MQTT-1.5.3-3"],
        v5: &[
            "MQTT-1.5.4-3",
            "MQTT-1.5.7-1",
            "MQTT-3.3.2-13",
            "MQTT-3.3.2-19",
        ],
        needs: &[],
        run: strings_kept_as_sent,
    },
    Check {
        name: "connect-malformed-no-connack",
        about: "A CONNECT with Will QoS 3, for which no CONNACK return code fits, is answered by closing the connection without any CONNACK.",
        v3: &["MQTT-3.2.2-6"],
        v5: &[],
        needs: &[],
        run: connect_malformed_no_connack,
    },
    Check {
        name: "refused-connect-ignores-what-follows",
        about: "A PUBLISH sent right behind a CONNECT the broker refuses (3.1.1: an empty client identifier with clean session 0; 5.0: an Authentication Method it does not know) is not published.",
        v3: &["MQTT-3.1.4-5"],
        v5: &["MQTT-3.1.4-6"],
        needs: &[],
        run: refused_connect_ignores_what_follows,
    },
];

/// A payload whose bytes would show any field left in front of them.
const PAYLOAD: &[u8] = b"payload";

/// A connection of client `n` whose packets come as bytes, subscribed to `filter` at QoS 0.
fn raw_subscriber(p: &mut Probe, n: u8, filter: &str) -> Result<Conn, Fault> {
    let mut conn = p.open_raw("s")?;
    conn.send(&Packet::Connect(p.connect_packet(&p.client_id(n))))?;
    expect_bytes(&mut conn, p, 0x20, "CONNACK")?;
    conn.send(&Probe::subscribe_packet(1, filter, QoS::AtMostOnce))?;
    expect_bytes(&mut conn, p, 0x90, "SUBACK")?;
    Ok(conn)
}

/// The next packet's bytes, which must begin with `first`.
fn expect_bytes(conn: &mut Conn, p: &Probe, first: u8, what: &str) -> Result<Vec<u8>, Fault> {
    match conn.recv(p.wait) {
        Got::Bytes(b) if b[0] == first => Ok(b),
        g => Err(format!("waited for {what}, got {}", g.describe())),
    }
}

fn qos0_publish_layout(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let mut sub = raw_subscriber(p, 1, &topic)?;
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    // Published at QoS 1, delivered at the QoS 0 the subscription asked for.
    let m = p.publish(&topic, PAYLOAD, QoS::AtLeastOnce, false, 1);
    publisher.send(&m)?;
    let bytes = match sub.recv(p.wait) {
        Got::Bytes(b) if b[0] >> 4 == 3 => b,
        g => return Err(format!("waited for the message, got {}", g.describe())),
    };
    if (bytes[0] >> 1) & 3 != 0 {
        return Err(format!(
            "a message on a QoS 0 subscription came at QoS {}",
            (bytes[0] >> 1) & 3
        ));
    }
    let body = &bytes[fixed_header_len(&bytes)..];
    let len = body
        .get(..2)
        .map_or(0, |l| usize::from(u16::from_be_bytes([l[0], l[1]])));
    let named = body.get(2..2 + len).unwrap_or_default();
    if named != topic.as_bytes() {
        return Err(format!(
            "the QoS 0 PUBLISH {} does not begin with its topic name {topic:?} as a UTF-8 string",
            hex(&bytes)
        ));
    }
    let mut rest = &body[2 + len..];
    if p.v5() {
        // The message was published without properties: the Property Length is 0 unless the
        // broker adds properties of its own, which are skipped. Without the Property Length, or
        // with a packet identifier before it, the payload does not follow where it should.
        let mut len = 0usize;
        let mut used = 0;
        for (i, b) in rest.iter().take(4).enumerate() {
            len |= usize::from(b & 0x7f) << (7 * i);
            used = i + 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        rest = rest.get(used + len..).unwrap_or_default();
    }
    if rest != PAYLOAD {
        return Err(format!(
            "the QoS 0 PUBLISH {} has {} where its payload {} belongs: a QoS 0 PUBLISH carries no packet identifier{}",
            hex(&bytes),
            hex(rest),
            hex(PAYLOAD),
            if p.v5() {
                ", and its Property Length (0 for no properties) comes right after the topic name"
            } else {
                ""
            }
        ));
    }
    publisher.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}

/// U+FEFF and characters of two, three and four bytes.
const MIXED: &str = "\u{FEFF}é€😀";

fn strings_kept_as_sent(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic(&format!("{MIXED}/{MIXED}"));
    let stripped = topic.replace('\u{FEFF}', "");
    let (mut sub, _) = p.connect("s", &p.client_id(1))?;
    p.subscribe(&mut sub, &topic, QoS::AtMostOnce)?;
    // A second subscription, to the name a broker that skips U+FEFF would make of the topic.
    let code = p.subscribe_with(
        &mut sub,
        2,
        &stripped,
        options(QoS::AtMostOnce),
        Properties::default(),
    )?;
    if code.is_error() {
        return Err(format!(
            "the broker refused the subscription to {stripped:?} (0x{:02x})",
            code.as_u8()
        ));
    }
    let properties = if p.v5() {
        Properties::from(PropertySet {
            content_type: Some(format!("text/{MIXED}")),
            response_topic: Some(p.topic(&format!("reply/{MIXED}"))),
            user_properties: vec![(format!("name{MIXED}"), format!("value{MIXED}"))],
            ..PropertySet::default()
        })
    } else {
        Properties::default()
    };
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    let mut m = p.publish(&topic, b"x", QoS::AtMostOnce, false, 0);
    if let Packet::Publish(x) = &mut m {
        x.properties = properties.clone();
    }
    publisher.send(&m)?;
    let got = match sub.expect("the message", p.wait)? {
        Packet::Publish(m) => m,
        other => return Err(format!("waited for the message, got {}", describe(&other))),
    };
    if got.topic != topic {
        return Err(format!(
            "a message published to {topic:?} was delivered with the topic name {:?}: the bytes EF BB BF are U+FEFF wherever they are, and must not be skipped or stripped",
            got.topic
        ));
    }
    let mut wrong = Vec::new();
    if got.properties.content_type != properties.content_type {
        wrong.push(format!("Content Type {:?}", got.properties.content_type));
    }
    if got.properties.response_topic != properties.response_topic {
        wrong.push(format!(
            "Response Topic {:?}",
            got.properties.response_topic
        ));
    }
    if got.properties.user_properties != properties.user_properties {
        wrong.push(format!(
            "User Properties::from(PropertySet {:?})",
            got.properties.user_properties
        ));
    }
    if !wrong.is_empty() {
        return Err(format!(
            "a message published with {} was delivered with {}: strings are kept byte for byte, U+FEFF included",
            describe(&m),
            wrong.join(", ")
        ));
    }
    sub.expect_silence(
        quiet(p),
        &format!("the topic {topic:?} holds U+FEFF, so the filter {stripped:?} does not match it"),
    )?;
    publisher.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn connect_malformed_no_connack(p: &mut Probe) -> Result<Outcome, Fault> {
    let mut c = p.connect_packet(&p.client_id(0));
    c.will = Some(Box::new(p.will(
        &p.topic("will"),
        b"gone",
        QoS::AtMostOnce,
        false,
    )));
    let mut bytes = super::bytes_of(&Packet::Connect(c), p.protocol)?;
    // The connect flags follow the protocol name (2 + 4 bytes) and level: Will QoS 3.
    let flags = fixed_header_len(&bytes) + 7;
    bytes[flags] |= 0x18;
    let mut conn = p.open("a")?;
    conn.send_raw(&bytes, "CONNECT with Will QoS 3")?;
    match conn.recv(p.wait) {
        Got::Closed => Ok(Outcome::Pass),
        Got::Packet(Packet::ConnAck(a)) => Err(format!(
            "a CONNECT with Will QoS 3 was answered with CONNACK return code {}; no return code fits a malformed CONNECT, so the connection must close without a CONNACK",
            connack_v3_return_code(a.reason)
        )),
        g => Err(format!(
            "a CONNECT with Will QoS 3 got {} instead of a close",
            g.describe()
        )),
    }
}

/// An Authentication Method no broker knows: a CONNECT naming it is refused (0x8C).
pub const UNKNOWN_METHOD: &str = "mqtt-lab-conformance-none";

fn refused_connect_ignores_what_follows(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut watcher, _) = p.connect("w", &p.client_id(1))?;
    p.subscribe(&mut watcher, &topic, QoS::AtMostOnce)?;
    let mut c = p.connect_packet("");
    if p.v5() {
        c.client_id = p.client_id(0);
        c.properties.authentication_method = Some(UNKNOWN_METHOD.into());
    } else {
        c.clean_start = false;
    }
    let mut after = super::bytes_of(&Packet::Connect(c.clone()), p.protocol)?;
    let m = p.publish(&topic, b"after", QoS::AtMostOnce, false, 0);
    after.extend(super::bytes_of(&m, p.protocol)?);
    let mut conn = p.open("a")?;
    conn.send_raw(
        &after,
        &format!(
            "{} and, behind it, {}",
            describe(&Packet::Connect(c)),
            describe(&m)
        ),
    )?;
    match conn.recv(p.wait) {
        Got::Packet(Packet::ConnAck(a)) if !a.reason.is_error() => {
            conn.disconnect();
            return Ok(Outcome::Undecided(format!(
                "the broker accepted the CONNECT (0x{:02x}), so nothing was refused",
                a.reason.as_u8()
            )));
        }
        Got::Packet(Packet::ConnAck(_)) | Got::Closed => {}
        g => {
            return Err(format!(
                "waited for a CONNACK or the close, got {}",
                g.describe()
            ));
        }
    }
    watcher.expect_silence(
        p.wait / 2,
        "the broker refused the CONNECT, so it must not act on the PUBLISH sent after it",
    )?;
    conn.expect_close(p.wait)?;
    watcher.disconnect();
    Ok(Outcome::Pass)
}
