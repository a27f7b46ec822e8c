//! Generators of valid packets from unstructured bytes (the `arbitrary` crate): the
//! structure-aware fuzz target and the property tests draw from them.
//!
//! "Valid" means valid for the protocol it is generated for, so that `decode(encode(p)) == p`
//! holds exactly: no 5.0-only fields in 3.1.1 packets, reason codes each packet may carry,
//! topic names and filters that pass validation, packet identifiers where they belong. Invalid
//! packets are the byte-level fuzz targets' business.

use arbitrary::{Arbitrary, Result, Unstructured};
use bytes::Bytes;

use super::properties::{self as props, Context};
use super::topic::validate_topic_filter;
use super::{
    Ack, Auth, ConnAck, Connect, Disconnect, LastWill, Packet, PacketType, Properties, PropertySet,
    Protocol, Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, Subscription,
    SubscriptionOptions, UnsubAck, Unsubscribe, reason,
};

/// Every packet type, in type order.
pub const PACKET_TYPES: [PacketType; 15] = [
    PacketType::Connect,
    PacketType::ConnAck,
    PacketType::Publish,
    PacketType::PubAck,
    PacketType::PubRec,
    PacketType::PubRel,
    PacketType::PubComp,
    PacketType::Subscribe,
    PacketType::SubAck,
    PacketType::Unsubscribe,
    PacketType::UnsubAck,
    PacketType::PingReq,
    PacketType::PingResp,
    PacketType::Disconnect,
    PacketType::Auth,
];

/// The packet types that exist in `protocol` (AUTH only in 5.0).
pub fn packet_types(protocol: Protocol) -> &'static [PacketType] {
    if protocol.is_v5() {
        &PACKET_TYPES
    } else {
        &PACKET_TYPES[..14]
    }
}

/// A protocol and a packet valid in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPacket {
    pub protocol: Protocol,
    pub packet: Packet,
}

impl<'a> Arbitrary<'a> for ValidPacket {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let protocol = Protocol::arbitrary(u)?;
        let packet = valid_packet(u, protocol)?;
        Ok(ValidPacket { protocol, packet })
    }
}

/// A valid packet of any type that exists in `protocol`.
pub fn valid_packet(u: &mut Unstructured, protocol: Protocol) -> Result<Packet> {
    let kind = *u.choose(packet_types(protocol))?;
    valid_packet_of(u, protocol, kind)
}

const WORDS: [&str; 10] = [
    "a", "b", "sport", "tennis", "$SYS", "", "x y", "é", "ü/", "0",
];

fn word(u: &mut Unstructured) -> Result<String> {
    if u.ratio(1, 5)? {
        // anything without separators and wildcards
        let s = string(u, 12)?;
        return Ok(s.replace(['/', '+', '#'], ""));
    }
    Ok(u.choose(&WORDS)?.replace('/', ""))
}

/// A string without U+0000, at most `max` bytes.
pub fn string(u: &mut Unstructured, max: usize) -> Result<String> {
    let s: &str = u.arbitrary()?;
    let mut s = s.replace('\0', "");
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    Ok(s)
}

fn bytes(u: &mut Unstructured, max: usize) -> Result<Bytes> {
    let b: &[u8] = u.arbitrary()?;
    Ok(Bytes::copy_from_slice(&b[..b.len().min(max)]))
}

/// A valid, non-empty topic name.
pub fn topic_name(u: &mut Unstructured) -> Result<String> {
    let levels = u.int_in_range(1..=4)?;
    let mut t = Vec::with_capacity(levels);
    for _ in 0..levels {
        t.push(word(u)?);
    }
    let t = t.join("/");
    Ok(if t.is_empty() { "t".into() } else { t })
}

/// A valid topic filter, sometimes with wildcards, sometimes shared.
pub fn topic_filter(u: &mut Unstructured) -> Result<String> {
    let levels = u.int_in_range(1..=4)?;
    let mut f = Vec::with_capacity(levels);
    for i in 0..levels {
        let w = match u.int_in_range(0..=5)? {
            0 => "+".to_owned(),
            1 if i + 1 == levels => "#".to_owned(),
            _ => word(u)?,
        };
        f.push(w);
    }
    let mut f = f.join("/");
    // a word can spell "$share", which would make the filter a (malformed) shared one
    if validate_topic_filter(&f).is_err() {
        f = "f".into();
    }
    if u.ratio(1, 6)? {
        let group = word(u)?;
        let group = if group.is_empty() { "g".into() } else { group };
        f = format!("$share/{group}/{f}");
    }
    debug_assert_eq!(validate_topic_filter(&f), Ok(()), "{f:?}");
    Ok(f)
}

fn maybe<T>(
    u: &mut Unstructured,
    allowed: bool,
    f: impl FnOnce(&mut Unstructured) -> Result<T>,
) -> Result<Option<T>> {
    if allowed && u.ratio(1, 3)? {
        Ok(Some(f(u)?))
    } else {
        Ok(None)
    }
}

/// Valid properties for `ctx`.
pub(crate) fn properties(u: &mut Unstructured, ctx: Context) -> Result<Properties> {
    let a = |id| ctx.allows(id);
    let boolean = |u: &mut Unstructured| u.int_in_range(0..=1u8);
    let mut p = Properties::from(PropertySet {
        payload_format_indicator: maybe(u, a(props::PAYLOAD_FORMAT_INDICATOR), boolean)?,
        message_expiry_interval: maybe(u, a(props::MESSAGE_EXPIRY_INTERVAL), |u| u.arbitrary())?,
        content_type: maybe(u, a(props::CONTENT_TYPE), |u| string(u, 30))?,
        response_topic: maybe(u, a(props::RESPONSE_TOPIC), topic_name)?,
        correlation_data: maybe(u, a(props::CORRELATION_DATA), |u| bytes(u, 30))?,
        subscription_identifiers: Vec::new(),
        session_expiry_interval: maybe(u, a(props::SESSION_EXPIRY_INTERVAL), |u| u.arbitrary())?,
        assigned_client_identifier: maybe(u, a(props::ASSIGNED_CLIENT_IDENTIFIER), |u| {
            string(u, 23)
        })?,
        server_keep_alive: maybe(u, a(props::SERVER_KEEP_ALIVE), |u| u.arbitrary())?,
        authentication_method: maybe(u, a(props::AUTHENTICATION_METHOD), |u| string(u, 20))?,
        authentication_data: maybe(u, a(props::AUTHENTICATION_DATA), |u| bytes(u, 30))?,
        request_problem_information: maybe(u, a(props::REQUEST_PROBLEM_INFORMATION), boolean)?,
        will_delay_interval: maybe(u, a(props::WILL_DELAY_INTERVAL), |u| u.arbitrary())?,
        request_response_information: maybe(u, a(props::REQUEST_RESPONSE_INFORMATION), boolean)?,
        response_information: maybe(u, a(props::RESPONSE_INFORMATION), |u| string(u, 20))?,
        server_reference: maybe(u, a(props::SERVER_REFERENCE), |u| string(u, 20))?,
        reason_string: maybe(u, a(props::REASON_STRING), |u| string(u, 30))?,
        receive_maximum: maybe(u, a(props::RECEIVE_MAXIMUM), |u| {
            u.int_in_range(1..=u16::MAX)
        })?,
        topic_alias_maximum: maybe(u, a(props::TOPIC_ALIAS_MAXIMUM), |u| u.arbitrary())?,
        topic_alias: maybe(u, a(props::TOPIC_ALIAS), |u| u.int_in_range(1..=u16::MAX))?,
        maximum_qos: maybe(u, a(props::MAXIMUM_QOS), boolean)?,
        retain_available: maybe(u, a(props::RETAIN_AVAILABLE), boolean)?,
        user_properties: Vec::new(),
        maximum_packet_size: maybe(u, a(props::MAXIMUM_PACKET_SIZE), |u| {
            u.int_in_range(1..=u32::MAX)
        })?,
        wildcard_subscription_available: maybe(
            u,
            a(props::WILDCARD_SUBSCRIPTION_AVAILABLE),
            boolean,
        )?,
        subscription_identifier_available: maybe(
            u,
            a(props::SUBSCRIPTION_IDENTIFIER_AVAILABLE),
            boolean,
        )?,
        shared_subscription_available: maybe(u, a(props::SHARED_SUBSCRIPTION_AVAILABLE), boolean)?,
    });
    if a(props::SUBSCRIPTION_IDENTIFIER) {
        let max = if ctx == Context::Publish { 3 } else { 1 };
        for _ in 0..u.int_in_range(0..=max)? {
            p.subscription_identifiers
                .push(u.int_in_range(1..=super::varint::MAX)?);
        }
    }
    for _ in 0..u.int_in_range(0..=2)? {
        p.user_properties.push((string(u, 10)?, string(u, 10)?));
    }
    Ok(p)
}

fn props_for(u: &mut Unstructured, v5: bool, ctx: Context) -> Result<Properties> {
    if v5 {
        properties(u, ctx)
    } else {
        Ok(Properties::default())
    }
}

fn reason_for(u: &mut Unstructured, kind: PacketType) -> Result<ReasonCode> {
    let allowed: Vec<ReasonCode> = reason::ALL
        .iter()
        .copied()
        .filter(|&c| reason::allowed_in(kind, c))
        .collect();
    Ok(*u.choose(&allowed)?)
}

fn pkid(u: &mut Unstructured) -> Result<u16> {
    u.int_in_range(1..=u16::MAX)
}

fn qos(u: &mut Unstructured) -> Result<QoS> {
    QoS::arbitrary(u)
}

/// A valid packet of type `kind` for `protocol` (AUTH only for 5.0: an error otherwise).
pub fn valid_packet_of(
    u: &mut Unstructured,
    protocol: Protocol,
    kind: PacketType,
) -> Result<Packet> {
    let v5 = protocol.is_v5();
    Ok(match kind {
        PacketType::Connect => connect(u, protocol)?,
        PacketType::ConnAck => connack(u, v5)?,
        PacketType::Publish => publish(u, v5)?,
        PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
            publish_ack(u, v5, kind)?
        }
        PacketType::Subscribe => subscribe(u, v5)?,
        PacketType::SubAck => suback(u, v5)?,
        PacketType::Unsubscribe => {
            let mut filters = Vec::new();
            for _ in 0..u.int_in_range(1..=4)? {
                filters.push(topic_filter(u)?);
            }
            Packet::Unsubscribe(Unsubscribe {
                pkid: pkid(u)?,
                filters,
                properties: props_for(u, v5, Context::Unsubscribe)?,
            })
        }
        PacketType::UnsubAck => {
            let mut reasons = Vec::new();
            if v5 {
                for _ in 0..u.int_in_range(1..=4)? {
                    reasons.push(reason_for(u, kind)?);
                }
            }
            Packet::UnsubAck(UnsubAck {
                pkid: pkid(u)?,
                reasons,
                properties: props_for(u, v5, Context::UnsubAck)?,
            })
        }
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => {
            if v5 {
                Packet::Disconnect(Disconnect {
                    reason: reason_for(u, kind)?,
                    properties: properties(u, Context::Disconnect)?,
                })
            } else {
                Packet::Disconnect(Disconnect::default())
            }
        }
        PacketType::Auth => {
            if !v5 {
                return Err(arbitrary::Error::IncorrectFormat);
            }
            Packet::Auth(Auth {
                reason: reason_for(u, kind)?,
                properties: properties(u, Context::Auth)?,
            })
        }
    })
}

/// CONNECT: a will, a user name and a password each maybe (3.1.1: no password alone).
fn connect(u: &mut Unstructured, protocol: Protocol) -> Result<Packet> {
    let will = if u.arbitrary()? {
        Some(LastWill {
            topic: topic_name(u)?,
            payload: bytes(u, 64)?,
            qos: qos(u)?,
            retain: u.arbitrary()?,
            properties: props_for(u, protocol.is_v5(), Context::Will)?,
        })
    } else {
        None
    };
    let username = if u.arbitrary()? {
        Some(string(u, 20)?)
    } else {
        None
    };
    let password = if (protocol.is_v5() || username.is_some()) && u.arbitrary()? {
        Some(bytes(u, 20)?)
    } else {
        None
    };
    Ok(Packet::Connect(Connect {
        protocol,
        clean_start: u.arbitrary()?,
        keep_alive: u.arbitrary()?,
        client_id: string(u, 23)?,
        will: will.map(Box::new),
        username,
        password,
        properties: props_for(u, protocol.is_v5(), Context::Connect)?,
    }))
}

/// CONNACK: session present only with success; 3.1.1 return codes 0 to 5.
fn connack(u: &mut Unstructured, v5: bool) -> Result<Packet> {
    let reason = if v5 {
        reason_for(u, PacketType::ConnAck)?
    } else {
        reason::connack_from_v3(u.int_in_range(0..=5)?).expect("0..=5 are return codes")
    };
    Ok(Packet::ConnAck(ConnAck {
        session_present: !reason.is_error() && u.arbitrary()?,
        reason,
        properties: props_for(u, v5, Context::ConnAck)?,
    }))
}

/// PUBLISH: 5.0 sometimes with a topic alias and no topic.
fn publish(u: &mut Unstructured, v5: bool) -> Result<Packet> {
    let qos = qos(u)?;
    let mut properties = props_for(u, v5, Context::Publish)?;
    let topic = if v5 && u.ratio(1, 5)? {
        properties.topic_alias = Some(u.int_in_range(1..=u16::MAX)?);
        String::new()
    } else {
        topic_name(u)?
    };
    Ok(Packet::Publish(Publish {
        dup: qos != QoS::AtMostOnce && u.arbitrary()?,
        qos,
        retain: u.arbitrary()?,
        topic,
        pkid: if qos == QoS::AtMostOnce { 0 } else { pkid(u)? },
        properties,
        payload: bytes(u, 2048)?,
    }))
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP (`kind`).
fn publish_ack(u: &mut Unstructured, v5: bool, kind: PacketType) -> Result<Packet> {
    let ctx = match kind {
        PacketType::PubAck => Context::PubAck,
        PacketType::PubRec => Context::PubRec,
        PacketType::PubRel => Context::PubRel,
        _ => Context::PubComp,
    };
    let ack = Ack {
        pkid: pkid(u)?,
        reason: if v5 {
            reason_for(u, kind)?
        } else {
            ReasonCode::Success
        },
        properties: props_for(u, v5, ctx)?,
    };
    Ok(match kind {
        PacketType::PubAck => Packet::PubAck(ack),
        PacketType::PubRec => Packet::PubRec(ack),
        PacketType::PubRel => Packet::PubRel(ack),
        _ => Packet::PubComp(ack),
    })
}

/// SUBSCRIBE: 1 to 4 filters; no local never on a shared subscription.
fn subscribe(u: &mut Unstructured, v5: bool) -> Result<Packet> {
    let mut filters = Vec::new();
    for _ in 0..u.int_in_range(1..=4)? {
        let filter = topic_filter(u)?;
        let mut options = SubscriptionOptions {
            qos: qos(u)?,
            ..Default::default()
        };
        if v5 {
            options.no_local =
                super::topic::shared_subscription(&filter).is_none() && u.arbitrary()?;
            options.retain_as_published = u.arbitrary()?;
            options.retain_handling = RetainHandling::arbitrary(u)?;
        }
        filters.push(Subscription { filter, options });
    }
    Ok(Packet::Subscribe(Subscribe {
        pkid: pkid(u)?,
        filters,
        properties: props_for(u, v5, Context::Subscribe)?,
    }))
}

/// SUBACK: 1 to 4 reason codes (3.1.1: the four return codes).
fn suback(u: &mut Unstructured, v5: bool) -> Result<Packet> {
    let mut reasons = Vec::new();
    for _ in 0..u.int_in_range(1..=4)? {
        reasons.push(if v5 {
            reason_for(u, PacketType::SubAck)?
        } else {
            *u.choose(&[
                ReasonCode::Success,
                ReasonCode::GrantedQoS1,
                ReasonCode::GrantedQoS2,
                ReasonCode::UnspecifiedError,
            ])?
        });
    }
    Ok(Packet::SubAck(SubAck {
        pkid: pkid(u)?,
        reasons,
        properties: props_for(u, v5, Context::SubAck)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every generated packet is valid: it encodes, and decodes back to itself.
    #[test]
    fn generated_packets_round_trip() {
        let data: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
            for &kind in packet_types(protocol) {
                for start in (0..2048).step_by(97) {
                    let mut u = Unstructured::new(&data[start..]);
                    let p = valid_packet_of(&mut u, protocol, kind).unwrap();
                    assert_eq!(p.packet_type(), kind);
                    let bytes = super::super::test_util::enc(&p, protocol);
                    assert_eq!(super::super::test_util::dec(&bytes, Some(protocol)), Ok(p));
                }
            }
        }
    }
}
