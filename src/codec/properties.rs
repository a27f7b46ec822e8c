//! MQTT 5.0 properties (section 2.2.2): reading, sizing and writing a property block, with each
//! packet's allow-list. Decoding rejects unknown, disallowed and duplicated properties (User
//! Property may repeat everywhere, Subscription Identifier in PUBLISH) and invalid values (0 where
//! 0 is forbidden, booleans above 1, wildcards in a Response Topic); encoding checks the same.
//!
//! Not here: the meaning of properties (topic aliases, flow control), which the broker and
//! client implement.

use bytes::{BufMut, BytesMut};

use super::Properties;
use super::error::{DecodeError, EncodeError};
use super::reader::Reader;
use super::topic::validate_topic_name;
use super::varint;
use super::writer::{binary_len, put_binary, put_str, str_len};

/// Where a property block sits: each packet's own block, and the will properties of CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

pub(crate) const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
pub(crate) const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
pub(crate) const CONTENT_TYPE: u8 = 0x03;
pub(crate) const RESPONSE_TOPIC: u8 = 0x08;
pub(crate) const CORRELATION_DATA: u8 = 0x09;
pub(crate) const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
pub(crate) const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
pub(crate) const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
pub(crate) const SERVER_KEEP_ALIVE: u8 = 0x13;
pub(crate) const AUTHENTICATION_METHOD: u8 = 0x15;
pub(crate) const AUTHENTICATION_DATA: u8 = 0x16;
pub(crate) const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
pub(crate) const WILL_DELAY_INTERVAL: u8 = 0x18;
pub(crate) const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
pub(crate) const RESPONSE_INFORMATION: u8 = 0x1A;
pub(crate) const SERVER_REFERENCE: u8 = 0x1C;
pub(crate) const REASON_STRING: u8 = 0x1F;
pub(crate) const RECEIVE_MAXIMUM: u8 = 0x21;
pub(crate) const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
pub(crate) const TOPIC_ALIAS: u8 = 0x23;
pub(crate) const MAXIMUM_QOS: u8 = 0x24;
pub(crate) const RETAIN_AVAILABLE: u8 = 0x25;
pub(crate) const USER_PROPERTY: u8 = 0x26;
pub(crate) const MAXIMUM_PACKET_SIZE: u8 = 0x27;
pub(crate) const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
pub(crate) const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
pub(crate) const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

/// The name of a property identifier as the specification spells it.
pub(crate) fn name(id: u8) -> &'static str {
    match id {
        PAYLOAD_FORMAT_INDICATOR => "Payload Format Indicator",
        MESSAGE_EXPIRY_INTERVAL => "Message Expiry Interval",
        CONTENT_TYPE => "Content Type",
        RESPONSE_TOPIC => "Response Topic",
        CORRELATION_DATA => "Correlation Data",
        SUBSCRIPTION_IDENTIFIER => "Subscription Identifier",
        SESSION_EXPIRY_INTERVAL => "Session Expiry Interval",
        ASSIGNED_CLIENT_IDENTIFIER => "Assigned Client Identifier",
        SERVER_KEEP_ALIVE => "Server Keep Alive",
        AUTHENTICATION_METHOD => "Authentication Method",
        AUTHENTICATION_DATA => "Authentication Data",
        REQUEST_PROBLEM_INFORMATION => "Request Problem Information",
        WILL_DELAY_INTERVAL => "Will Delay Interval",
        REQUEST_RESPONSE_INFORMATION => "Request Response Information",
        RESPONSE_INFORMATION => "Response Information",
        SERVER_REFERENCE => "Server Reference",
        REASON_STRING => "Reason String",
        RECEIVE_MAXIMUM => "Receive Maximum",
        TOPIC_ALIAS_MAXIMUM => "Topic Alias Maximum",
        TOPIC_ALIAS => "Topic Alias",
        MAXIMUM_QOS => "Maximum QoS",
        RETAIN_AVAILABLE => "Retain Available",
        USER_PROPERTY => "User Property",
        MAXIMUM_PACKET_SIZE => "Maximum Packet Size",
        WILDCARD_SUBSCRIPTION_AVAILABLE => "Wildcard Subscription Available",
        SUBSCRIPTION_IDENTIFIER_AVAILABLE => "Subscription Identifier Available",
        SHARED_SUBSCRIPTION_AVAILABLE => "Shared Subscription Available",
        _ => "unknown property",
    }
}

const fn bits(ids: &[u8]) -> u64 {
    let mut m = 0u64;
    let mut i = 0;
    while i < ids.len() {
        m |= 1 << ids[i];
        i += 1;
    }
    m
}

impl Context {
    /// The packet name used in errors.
    pub(crate) fn packet(self) -> &'static str {
        match self {
            Context::Connect => "CONNECT",
            Context::Will => "CONNECT will properties",
            Context::ConnAck => "CONNACK",
            Context::Publish => "PUBLISH",
            Context::PubAck => "PUBACK",
            Context::PubRec => "PUBREC",
            Context::PubRel => "PUBREL",
            Context::PubComp => "PUBCOMP",
            Context::Subscribe => "SUBSCRIBE",
            Context::SubAck => "SUBACK",
            Context::Unsubscribe => "UNSUBSCRIBE",
            Context::UnsubAck => "UNSUBACK",
            Context::Disconnect => "DISCONNECT",
            Context::Auth => "AUTH",
        }
    }

    /// The allow-list of table 2-4, one bit per property identifier.
    fn allowed(self) -> u64 {
        const ACK: u64 = bits(&[REASON_STRING, USER_PROPERTY]);
        match self {
            Context::Connect => bits(&[
                SESSION_EXPIRY_INTERVAL,
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                REQUEST_PROBLEM_INFORMATION,
                REQUEST_RESPONSE_INFORMATION,
                RECEIVE_MAXIMUM,
                TOPIC_ALIAS_MAXIMUM,
                USER_PROPERTY,
                MAXIMUM_PACKET_SIZE,
            ]),
            Context::Will => bits(&[
                PAYLOAD_FORMAT_INDICATOR,
                MESSAGE_EXPIRY_INTERVAL,
                CONTENT_TYPE,
                RESPONSE_TOPIC,
                CORRELATION_DATA,
                WILL_DELAY_INTERVAL,
                USER_PROPERTY,
            ]),
            Context::ConnAck => bits(&[
                SESSION_EXPIRY_INTERVAL,
                ASSIGNED_CLIENT_IDENTIFIER,
                SERVER_KEEP_ALIVE,
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                RESPONSE_INFORMATION,
                SERVER_REFERENCE,
                REASON_STRING,
                RECEIVE_MAXIMUM,
                TOPIC_ALIAS_MAXIMUM,
                MAXIMUM_QOS,
                RETAIN_AVAILABLE,
                USER_PROPERTY,
                MAXIMUM_PACKET_SIZE,
                WILDCARD_SUBSCRIPTION_AVAILABLE,
                SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                SHARED_SUBSCRIPTION_AVAILABLE,
            ]),
            Context::Publish => bits(&[
                PAYLOAD_FORMAT_INDICATOR,
                MESSAGE_EXPIRY_INTERVAL,
                CONTENT_TYPE,
                RESPONSE_TOPIC,
                CORRELATION_DATA,
                SUBSCRIPTION_IDENTIFIER,
                TOPIC_ALIAS,
                USER_PROPERTY,
            ]),
            Context::PubAck
            | Context::PubRec
            | Context::PubRel
            | Context::PubComp
            | Context::SubAck
            | Context::UnsubAck => ACK,
            Context::Subscribe => bits(&[SUBSCRIPTION_IDENTIFIER, USER_PROPERTY]),
            Context::Unsubscribe => bits(&[USER_PROPERTY]),
            Context::Disconnect => bits(&[
                SESSION_EXPIRY_INTERVAL,
                SERVER_REFERENCE,
                REASON_STRING,
                USER_PROPERTY,
            ]),
            Context::Auth => bits(&[
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                REASON_STRING,
                USER_PROPERTY,
            ]),
        }
    }

    pub(crate) fn allows(self, id: u8) -> bool {
        self.allowed() & (1 << id) != 0
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, id: u8) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty { property: name(id) });
    }
    *slot = Some(value);
    Ok(())
}

fn boolean(r: &mut Reader, id: u8) -> Result<u8, DecodeError> {
    let v = r.u8(name(id))?;
    if v > 1 {
        return Err(DecodeError::InvalidPropertyValue {
            property: name(id),
            value: v.into(),
        });
    }
    Ok(v)
}

fn nonzero_u16(r: &mut Reader, id: u8) -> Result<u16, DecodeError> {
    let v = r.u16(name(id))?;
    if v == 0 {
        return Err(DecodeError::InvalidPropertyValue {
            property: name(id),
            value: 0,
        });
    }
    Ok(v)
}

/// Reads a property block: its variable byte integer length, then the properties, all inside a
/// sub-reader of exactly that length.
pub(crate) fn read(r: &mut Reader, ctx: Context) -> Result<Properties, DecodeError> {
    let len = r.varint("property length")? as usize;
    let mut p = Properties::default();
    if len == 0 {
        return Ok(p);
    }
    let mut r = r.sub(len, "properties")?;
    while !r.is_empty() {
        // Identifiers are variable byte integers, but every defined one fits one byte.
        let id = r.u8("property identifier")?;
        if id > SHARED_SUBSCRIPTION_AVAILABLE || name(id) == "unknown property" {
            return Err(DecodeError::UnknownProperty { id });
        }
        if !ctx.allows(id) {
            return Err(DecodeError::PropertyNotAllowed {
                property: name(id),
                packet: ctx.packet(),
            });
        }
        let n = name(id);
        match id {
            PAYLOAD_FORMAT_INDICATOR => {
                let v = boolean(&mut r, id)?;
                set_once(&mut p.payload_format_indicator, v, id)?
            }
            MESSAGE_EXPIRY_INTERVAL => set_once(&mut p.message_expiry_interval, r.u32(n)?, id)?,
            CONTENT_TYPE => set_once(&mut p.content_type, r.string(n)?, id)?,
            RESPONSE_TOPIC => {
                let t = r.string(n)?;
                validate_topic_name(&t).map_err(DecodeError::InvalidTopicName)?;
                set_once(&mut p.response_topic, t, id)?
            }
            CORRELATION_DATA => set_once(&mut p.correlation_data, r.binary(n)?, id)?,
            SUBSCRIPTION_IDENTIFIER => {
                let v = r.varint(n)?;
                if v == 0 {
                    return Err(DecodeError::InvalidPropertyValue {
                        property: n,
                        value: 0,
                    });
                }
                if ctx != Context::Publish && !p.subscription_identifiers.is_empty() {
                    return Err(DecodeError::DuplicateProperty { property: n });
                }
                p.subscription_identifiers.push(v);
            }
            SESSION_EXPIRY_INTERVAL => set_once(&mut p.session_expiry_interval, r.u32(n)?, id)?,
            ASSIGNED_CLIENT_IDENTIFIER => {
                set_once(&mut p.assigned_client_identifier, r.string(n)?, id)?
            }
            SERVER_KEEP_ALIVE => set_once(&mut p.server_keep_alive, r.u16(n)?, id)?,
            AUTHENTICATION_METHOD => set_once(&mut p.authentication_method, r.string(n)?, id)?,
            AUTHENTICATION_DATA => set_once(&mut p.authentication_data, r.binary(n)?, id)?,
            REQUEST_PROBLEM_INFORMATION => {
                let v = boolean(&mut r, id)?;
                set_once(&mut p.request_problem_information, v, id)?
            }
            WILL_DELAY_INTERVAL => set_once(&mut p.will_delay_interval, r.u32(n)?, id)?,
            REQUEST_RESPONSE_INFORMATION => {
                let v = boolean(&mut r, id)?;
                set_once(&mut p.request_response_information, v, id)?
            }
            RESPONSE_INFORMATION => set_once(&mut p.response_information, r.string(n)?, id)?,
            SERVER_REFERENCE => set_once(&mut p.server_reference, r.string(n)?, id)?,
            REASON_STRING => set_once(&mut p.reason_string, r.string(n)?, id)?,
            RECEIVE_MAXIMUM => {
                let v = nonzero_u16(&mut r, id)?;
                set_once(&mut p.receive_maximum, v, id)?
            }
            TOPIC_ALIAS_MAXIMUM => set_once(&mut p.topic_alias_maximum, r.u16(n)?, id)?,
            TOPIC_ALIAS => {
                let v = nonzero_u16(&mut r, id)?;
                set_once(&mut p.topic_alias, v, id)?
            }
            MAXIMUM_QOS => {
                let v = boolean(&mut r, id)?;
                set_once(&mut p.maximum_qos, v, id)?
            }
            RETAIN_AVAILABLE => {
                let v = boolean(&mut r, id)?;
                set_once(&mut p.retain_available, v, id)?
            }
            USER_PROPERTY => {
                let k = r.string("User Property name")?;
                let v = r.string("User Property value")?;
                p.user_properties.push((k, v));
            }
            MAXIMUM_PACKET_SIZE => {
                let v = r.u32(n)?;
                if v == 0 {
                    return Err(DecodeError::InvalidPropertyValue {
                        property: n,
                        value: 0,
                    });
                }
                set_once(&mut p.maximum_packet_size, v, id)?
            }
            WILDCARD_SUBSCRIPTION_AVAILABLE => {
                let v = boolean(&mut r, id)?;
                set_once(&mut p.wildcard_subscription_available, v, id)?
            }
            SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                let v = boolean(&mut r, id)?;
                set_once(&mut p.subscription_identifier_available, v, id)?
            }
            SHARED_SUBSCRIPTION_AVAILABLE => {
                let v = boolean(&mut r, id)?;
                set_once(&mut p.shared_subscription_available, v, id)?
            }
            _ => unreachable!("unknown identifiers are rejected above"),
        }
    }
    Ok(p)
}

fn allow(ctx: Context, id: u8) -> Result<(), EncodeError> {
    if !ctx.allows(id) {
        return Err(EncodeError::PropertyNotAllowed {
            property: name(id),
            packet: ctx.packet(),
        });
    }
    Ok(())
}

fn check_bool(id: u8, v: u8) -> Result<(), EncodeError> {
    if v > 1 {
        return Err(EncodeError::InvalidPropertyValue {
            property: name(id),
            value: v.into(),
        });
    }
    Ok(())
}

fn check_nonzero(id: u8, v: u32) -> Result<(), EncodeError> {
    if v == 0 {
        return Err(EncodeError::InvalidPropertyValue {
            property: name(id),
            value: 0,
        });
    }
    Ok(())
}

/// The size of the properties (without the block's own length prefix), validating each against
/// the allow-list of `ctx`.
pub(crate) fn content_len(p: &Properties, ctx: Context) -> Result<usize, EncodeError> {
    let mut n = 0;
    if let Some(v) = p.payload_format_indicator {
        allow(ctx, PAYLOAD_FORMAT_INDICATOR)?;
        check_bool(PAYLOAD_FORMAT_INDICATOR, v)?;
        n += 2;
    }
    if p.message_expiry_interval.is_some() {
        allow(ctx, MESSAGE_EXPIRY_INTERVAL)?;
        n += 5;
    }
    if let Some(s) = &p.content_type {
        allow(ctx, CONTENT_TYPE)?;
        n += 1 + str_len(s, name(CONTENT_TYPE))?;
    }
    if let Some(s) = &p.response_topic {
        allow(ctx, RESPONSE_TOPIC)?;
        validate_topic_name(s).map_err(EncodeError::InvalidTopicName)?;
        n += 1 + str_len(s, name(RESPONSE_TOPIC))?;
    }
    if let Some(b) = &p.correlation_data {
        allow(ctx, CORRELATION_DATA)?;
        n += 1 + binary_len(b, name(CORRELATION_DATA))?;
    }
    if !p.subscription_identifiers.is_empty() {
        allow(ctx, SUBSCRIPTION_IDENTIFIER)?;
        if ctx != Context::Publish && p.subscription_identifiers.len() > 1 {
            return Err(EncodeError::RepeatedProperty {
                property: name(SUBSCRIPTION_IDENTIFIER),
                packet: ctx.packet(),
            });
        }
        for &id in &p.subscription_identifiers {
            if id == 0 || id > varint::MAX {
                return Err(EncodeError::InvalidPropertyValue {
                    property: name(SUBSCRIPTION_IDENTIFIER),
                    value: id,
                });
            }
            n += 1 + varint::len(id as usize);
        }
    }
    if p.session_expiry_interval.is_some() {
        allow(ctx, SESSION_EXPIRY_INTERVAL)?;
        n += 5;
    }
    if let Some(s) = &p.assigned_client_identifier {
        allow(ctx, ASSIGNED_CLIENT_IDENTIFIER)?;
        n += 1 + str_len(s, name(ASSIGNED_CLIENT_IDENTIFIER))?;
    }
    if p.server_keep_alive.is_some() {
        allow(ctx, SERVER_KEEP_ALIVE)?;
        n += 3;
    }
    if let Some(s) = &p.authentication_method {
        allow(ctx, AUTHENTICATION_METHOD)?;
        n += 1 + str_len(s, name(AUTHENTICATION_METHOD))?;
    }
    if let Some(b) = &p.authentication_data {
        allow(ctx, AUTHENTICATION_DATA)?;
        n += 1 + binary_len(b, name(AUTHENTICATION_DATA))?;
    }
    if let Some(v) = p.request_problem_information {
        allow(ctx, REQUEST_PROBLEM_INFORMATION)?;
        check_bool(REQUEST_PROBLEM_INFORMATION, v)?;
        n += 2;
    }
    if p.will_delay_interval.is_some() {
        allow(ctx, WILL_DELAY_INTERVAL)?;
        n += 5;
    }
    if let Some(v) = p.request_response_information {
        allow(ctx, REQUEST_RESPONSE_INFORMATION)?;
        check_bool(REQUEST_RESPONSE_INFORMATION, v)?;
        n += 2;
    }
    if let Some(s) = &p.response_information {
        allow(ctx, RESPONSE_INFORMATION)?;
        n += 1 + str_len(s, name(RESPONSE_INFORMATION))?;
    }
    if let Some(s) = &p.server_reference {
        allow(ctx, SERVER_REFERENCE)?;
        n += 1 + str_len(s, name(SERVER_REFERENCE))?;
    }
    if let Some(s) = &p.reason_string {
        allow(ctx, REASON_STRING)?;
        n += 1 + str_len(s, name(REASON_STRING))?;
    }
    if let Some(v) = p.receive_maximum {
        allow(ctx, RECEIVE_MAXIMUM)?;
        check_nonzero(RECEIVE_MAXIMUM, v.into())?;
        n += 3;
    }
    if p.topic_alias_maximum.is_some() {
        allow(ctx, TOPIC_ALIAS_MAXIMUM)?;
        n += 3;
    }
    if let Some(v) = p.topic_alias {
        allow(ctx, TOPIC_ALIAS)?;
        check_nonzero(TOPIC_ALIAS, v.into())?;
        n += 3;
    }
    if let Some(v) = p.maximum_qos {
        allow(ctx, MAXIMUM_QOS)?;
        check_bool(MAXIMUM_QOS, v)?;
        n += 2;
    }
    if let Some(v) = p.retain_available {
        allow(ctx, RETAIN_AVAILABLE)?;
        check_bool(RETAIN_AVAILABLE, v)?;
        n += 2;
    }
    for (k, v) in &p.user_properties {
        allow(ctx, USER_PROPERTY)?;
        n += 1 + str_len(k, "User Property name")? + str_len(v, "User Property value")?;
    }
    if let Some(v) = p.maximum_packet_size {
        allow(ctx, MAXIMUM_PACKET_SIZE)?;
        check_nonzero(MAXIMUM_PACKET_SIZE, v)?;
        n += 5;
    }
    if let Some(v) = p.wildcard_subscription_available {
        allow(ctx, WILDCARD_SUBSCRIPTION_AVAILABLE)?;
        check_bool(WILDCARD_SUBSCRIPTION_AVAILABLE, v)?;
        n += 2;
    }
    if let Some(v) = p.subscription_identifier_available {
        allow(ctx, SUBSCRIPTION_IDENTIFIER_AVAILABLE)?;
        check_bool(SUBSCRIPTION_IDENTIFIER_AVAILABLE, v)?;
        n += 2;
    }
    if let Some(v) = p.shared_subscription_available {
        allow(ctx, SHARED_SUBSCRIPTION_AVAILABLE)?;
        check_bool(SHARED_SUBSCRIPTION_AVAILABLE, v)?;
        n += 2;
    }
    if n > varint::MAX as usize {
        return Err(EncodeError::PacketTooLarge { len: n });
    }
    Ok(n)
}

/// The size of the whole block: length prefix and properties.
pub(crate) fn block_len(p: &Properties, ctx: Context) -> Result<usize, EncodeError> {
    let n = content_len(p, ctx)?;
    Ok(varint::len(n) + n)
}

/// Writes the block (length prefix, then the properties in identifier order). `content_len`
/// is what [`content_len`] returned for the same properties.
pub(crate) fn write(p: &Properties, content_len: usize, buf: &mut BytesMut) {
    varint::write(buf, content_len);
    if content_len == 0 {
        return;
    }
    if let Some(v) = p.payload_format_indicator {
        buf.put_u8(PAYLOAD_FORMAT_INDICATOR);
        buf.put_u8(v);
    }
    if let Some(v) = p.message_expiry_interval {
        buf.put_u8(MESSAGE_EXPIRY_INTERVAL);
        buf.put_u32(v);
    }
    if let Some(s) = &p.content_type {
        buf.put_u8(CONTENT_TYPE);
        put_str(buf, s);
    }
    if let Some(s) = &p.response_topic {
        buf.put_u8(RESPONSE_TOPIC);
        put_str(buf, s);
    }
    if let Some(b) = &p.correlation_data {
        buf.put_u8(CORRELATION_DATA);
        put_binary(buf, b);
    }
    for &id in &p.subscription_identifiers {
        buf.put_u8(SUBSCRIPTION_IDENTIFIER);
        varint::write(buf, id as usize);
    }
    if let Some(v) = p.session_expiry_interval {
        buf.put_u8(SESSION_EXPIRY_INTERVAL);
        buf.put_u32(v);
    }
    if let Some(s) = &p.assigned_client_identifier {
        buf.put_u8(ASSIGNED_CLIENT_IDENTIFIER);
        put_str(buf, s);
    }
    if let Some(v) = p.server_keep_alive {
        buf.put_u8(SERVER_KEEP_ALIVE);
        buf.put_u16(v);
    }
    if let Some(s) = &p.authentication_method {
        buf.put_u8(AUTHENTICATION_METHOD);
        put_str(buf, s);
    }
    if let Some(b) = &p.authentication_data {
        buf.put_u8(AUTHENTICATION_DATA);
        put_binary(buf, b);
    }
    if let Some(v) = p.request_problem_information {
        buf.put_u8(REQUEST_PROBLEM_INFORMATION);
        buf.put_u8(v);
    }
    if let Some(v) = p.will_delay_interval {
        buf.put_u8(WILL_DELAY_INTERVAL);
        buf.put_u32(v);
    }
    if let Some(v) = p.request_response_information {
        buf.put_u8(REQUEST_RESPONSE_INFORMATION);
        buf.put_u8(v);
    }
    if let Some(s) = &p.response_information {
        buf.put_u8(RESPONSE_INFORMATION);
        put_str(buf, s);
    }
    if let Some(s) = &p.server_reference {
        buf.put_u8(SERVER_REFERENCE);
        put_str(buf, s);
    }
    if let Some(s) = &p.reason_string {
        buf.put_u8(REASON_STRING);
        put_str(buf, s);
    }
    if let Some(v) = p.receive_maximum {
        buf.put_u8(RECEIVE_MAXIMUM);
        buf.put_u16(v);
    }
    if let Some(v) = p.topic_alias_maximum {
        buf.put_u8(TOPIC_ALIAS_MAXIMUM);
        buf.put_u16(v);
    }
    if let Some(v) = p.topic_alias {
        buf.put_u8(TOPIC_ALIAS);
        buf.put_u16(v);
    }
    if let Some(v) = p.maximum_qos {
        buf.put_u8(MAXIMUM_QOS);
        buf.put_u8(v);
    }
    if let Some(v) = p.retain_available {
        buf.put_u8(RETAIN_AVAILABLE);
        buf.put_u8(v);
    }
    for (k, v) in &p.user_properties {
        buf.put_u8(USER_PROPERTY);
        put_str(buf, k);
        put_str(buf, v);
    }
    if let Some(v) = p.maximum_packet_size {
        buf.put_u8(MAXIMUM_PACKET_SIZE);
        buf.put_u32(v);
    }
    if let Some(v) = p.wildcard_subscription_available {
        buf.put_u8(WILDCARD_SUBSCRIPTION_AVAILABLE);
        buf.put_u8(v);
    }
    if let Some(v) = p.subscription_identifier_available {
        buf.put_u8(SUBSCRIPTION_IDENTIFIER_AVAILABLE);
        buf.put_u8(v);
    }
    if let Some(v) = p.shared_subscription_available {
        buf.put_u8(SHARED_SUBSCRIPTION_AVAILABLE);
        buf.put_u8(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn read_block(bytes: &[u8], ctx: Context) -> Result<Properties, DecodeError> {
        let mut r = Reader::new(Bytes::copy_from_slice(bytes), ctx.packet());
        let p = read(&mut r, ctx)?;
        r.finish()?;
        Ok(p)
    }

    fn write_block(p: &Properties, ctx: Context) -> Result<Vec<u8>, EncodeError> {
        let n = content_len(p, ctx)?;
        let mut buf = BytesMut::new();
        write(p, n, &mut buf);
        assert_eq!(buf.len(), block_len(p, ctx)?);
        Ok(buf.to_vec())
    }

    /// §2.2.2.2 a property not in the packet's allow-list is rejected on both sides.
    #[test]
    fn property_outside_allow_list() {
        // length 5, Session Expiry Interval (0x11) = 10: allowed in CONNECT, not in PUBLISH
        let bytes = [0x05, 0x11, 0x00, 0x00, 0x00, 0x0A];
        assert_eq!(
            read_block(&bytes, Context::Connect)
                .unwrap()
                .session_expiry_interval,
            Some(10)
        );
        assert_eq!(
            read_block(&bytes, Context::Publish),
            Err(DecodeError::PropertyNotAllowed {
                property: "Session Expiry Interval",
                packet: "PUBLISH"
            })
        );
        let p = Properties {
            session_expiry_interval: Some(10),
            ..Properties::default()
        };
        assert_eq!(write_block(&p, Context::Connect).unwrap(), bytes);
        assert!(matches!(
            write_block(&p, Context::Publish),
            Err(EncodeError::PropertyNotAllowed { .. })
        ));
    }

    /// §2.2.2.2 a property other than User Property appearing twice is a protocol error.
    #[test]
    fn duplicate_property_rejected() {
        // Topic Alias (0x23) = 1, twice
        let bytes = [0x06, 0x23, 0x00, 0x01, 0x23, 0x00, 0x02];
        let err = read_block(&bytes, Context::Publish).unwrap_err();
        assert_eq!(
            err,
            DecodeError::DuplicateProperty {
                property: "Topic Alias"
            }
        );
        assert_eq!(err.reason_code(), super::super::ReasonCode::ProtocolError);
    }

    /// §3.3.2.3.8 Subscription Identifier may repeat in PUBLISH, not in SUBSCRIBE.
    #[test]
    fn subscription_identifier_repeats_only_in_publish() {
        let bytes = [0x05, 0x0B, 0x01, 0x0B, 0x80, 0x01];
        assert_eq!(
            read_block(&bytes, Context::Publish)
                .unwrap()
                .subscription_identifiers,
            vec![1, 128]
        );
        assert_eq!(
            read_block(&bytes, Context::Subscribe),
            Err(DecodeError::DuplicateProperty {
                property: "Subscription Identifier"
            })
        );
        // 0 is not a valid subscription identifier
        assert!(matches!(
            read_block(&[0x02, 0x0B, 0x00], Context::Subscribe),
            Err(DecodeError::InvalidPropertyValue { value: 0, .. })
        ));
    }

    /// §2.2.2.2 User Property repeats, in order, in every packet.
    #[test]
    fn user_properties_repeat_in_order() {
        let p = Properties {
            user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            ..Properties::default()
        };
        let bytes = write_block(&p, Context::Auth).unwrap();
        assert_eq!(
            bytes,
            [
                0x0E, 0x26, 0, 1, b'a', 0, 1, b'1', 0x26, 0, 1, b'a', 0, 1, b'2'
            ]
        );
        assert_eq!(read_block(&bytes, Context::Auth).unwrap(), p);
    }

    /// [MQTT-3.3.2-8] Topic Alias 0; §3.1.2.11.3 Receive Maximum 0; booleans above 1.
    #[test]
    fn mqtt_3_3_2_8_invalid_property_values() {
        assert!(matches!(
            read_block(&[0x03, 0x23, 0x00, 0x00], Context::Publish),
            Err(DecodeError::InvalidPropertyValue {
                property: "Topic Alias",
                value: 0
            })
        ));
        assert!(matches!(
            read_block(&[0x03, 0x21, 0x00, 0x00], Context::Connect),
            Err(DecodeError::InvalidPropertyValue {
                property: "Receive Maximum",
                ..
            })
        ));
        assert!(matches!(
            read_block(&[0x02, 0x01, 0x02], Context::Publish),
            Err(DecodeError::InvalidPropertyValue {
                property: "Payload Format Indicator",
                ..
            })
        ));
        let p = Properties {
            maximum_qos: Some(2),
            ..Properties::default()
        };
        assert!(matches!(
            write_block(&p, Context::ConnAck),
            Err(EncodeError::InvalidPropertyValue { .. })
        ));
    }

    /// [MQTT-3.3.2-14] a Response Topic must not contain wildcards.
    #[test]
    fn mqtt_3_3_2_14_response_topic_without_wildcards() {
        let bytes = [0x05, 0x08, 0x00, 0x02, b'a', b'#'];
        assert!(matches!(
            read_block(&bytes, Context::Publish),
            Err(DecodeError::InvalidTopicName(_))
        ));
    }

    /// §2.2.2.2 an unknown identifier is a malformed packet; a block longer than the packet is
    /// truncation, and a property running past its block is too.
    #[test]
    fn unknown_identifier_and_bounds() {
        let err = read_block(&[0x02, 0x04, 0x00], Context::Publish).unwrap_err();
        assert_eq!(err, DecodeError::UnknownProperty { id: 0x04 });
        assert_eq!(err.reason_code(), super::super::ReasonCode::MalformedPacket);
        assert!(matches!(
            read_block(&[0x09, 0x23, 0x00], Context::Publish),
            Err(DecodeError::Truncated { .. })
        ));
        // block of 2 holding a 3-byte Topic Alias
        assert!(matches!(
            read_block(&[0x02, 0x23, 0x00, 0x01], Context::Publish),
            Err(DecodeError::Truncated { .. })
        ));
    }

    /// Every property the model has survives a write and read in its allowed context.
    #[test]
    fn all_connack_properties_round_trip() {
        let p = Properties {
            session_expiry_interval: Some(1),
            assigned_client_identifier: Some("id".into()),
            server_keep_alive: Some(2),
            authentication_method: Some("m".into()),
            authentication_data: Some(Bytes::from_static(b"d")),
            response_information: Some("ri".into()),
            server_reference: Some("sr".into()),
            reason_string: Some("rs".into()),
            receive_maximum: Some(3),
            topic_alias_maximum: Some(4),
            maximum_qos: Some(1),
            retain_available: Some(0),
            user_properties: vec![("k".into(), "v".into())],
            maximum_packet_size: Some(5),
            wildcard_subscription_available: Some(1),
            subscription_identifier_available: Some(0),
            shared_subscription_available: Some(1),
            ..Properties::default()
        };
        let bytes = write_block(&p, Context::ConnAck).unwrap();
        assert_eq!(read_block(&bytes, Context::ConnAck).unwrap(), p);
        let w = Properties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(9),
            content_type: Some("text/plain".into()),
            response_topic: Some("r/t".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            will_delay_interval: Some(7),
            ..Properties::default()
        };
        let bytes = write_block(&w, Context::Will).unwrap();
        assert_eq!(read_block(&bytes, Context::Will).unwrap(), w);
        assert!(
            write_block(&w, Context::Publish).is_err(),
            "will delay is will-only"
        );
    }
}
