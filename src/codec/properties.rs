//! MQTT 5.0 properties (section 2.2.2): reading, sizing and writing a property block, with each
//! packet's allow-list. Decoding rejects unknown, disallowed and duplicated properties (User
//! Property may repeat everywhere, Subscription Identifier in PUBLISH) and invalid values (0 where
//! 0 is forbidden, booleans above 1, wildcards in a Response Topic); encoding checks the same.
//!
//! The 27 properties are declared once, in the `properties!` table below: identifier, constant,
//! field of [`Properties`], value rule and name. Their reading, sizing and writing follow from the
//! field's type ([`Field`]) and the rule ([`Rule`]); properties are written in identifier order.
//!
//! Not here: the meaning of properties (topic aliases, flow control), which the broker and
//! client implement.

use bytes::{BufMut, Bytes, BytesMut};

use super::Properties;
use super::error::{DecodeError, EncodeError};
use super::reader::Reader;
use super::topic::{TopicError, validate_topic_name};
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

/// What a property's value must satisfy beyond its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Any,
    /// 0 or 1.
    Boolean,
    /// Not 0.
    NonZero,
    /// A valid topic name (no wildcards) [MQTT-3.3.2-14].
    TopicName,
}

/// One row of the property table.
#[derive(Debug)]
struct Prop {
    id: u8,
    name: &'static str,
    rule: Rule,
}

/// Why a value breaks its [`Rule`].
enum Broken {
    Value(u32),
    Topic(TopicError),
}

impl Broken {
    fn decode(self, p: &Prop) -> DecodeError {
        match self {
            Broken::Value(value) => DecodeError::InvalidPropertyValue {
                property: p.name,
                value,
            },
            Broken::Topic(e) => DecodeError::InvalidTopicName(e),
        }
    }

    fn encode(self, p: &Prop) -> EncodeError {
        match self {
            Broken::Value(value) => EncodeError::InvalidPropertyValue {
                property: p.name,
                value,
            },
            Broken::Topic(e) => EncodeError::InvalidTopicName(e),
        }
    }
}

/// A value type on the wire: a byte, a two or four byte integer, a string or binary data.
trait Wire: Sized {
    fn get(r: &mut Reader, what: &'static str) -> Result<Self, DecodeError>;
    /// Encoded bytes, checking what the type demands (string length, no U+0000).
    fn size(&self, what: &'static str) -> Result<usize, EncodeError>;
    fn put(&self, buf: &mut BytesMut);
    /// The value `rule` judges.
    fn check(&self, rule: Rule) -> Result<(), Broken>;
}

fn check_number(rule: Rule, v: u32) -> Result<(), Broken> {
    match rule {
        Rule::Boolean if v > 1 => Err(Broken::Value(v)),
        Rule::NonZero if v == 0 => Err(Broken::Value(v)),
        _ => Ok(()),
    }
}

/// The fixed-size integers: a byte, a two byte and a four byte integer (section 1.5).
macro_rules! integer_wire {
    ($($t:ty: $get:ident, $put:ident, $size:literal;)*) => {$(
        impl Wire for $t {
            fn get(r: &mut Reader, what: &'static str) -> Result<Self, DecodeError> {
                r.$get(what)
            }
            fn size(&self, _: &'static str) -> Result<usize, EncodeError> {
                Ok($size)
            }
            fn put(&self, buf: &mut BytesMut) {
                buf.$put(*self);
            }
            fn check(&self, rule: Rule) -> Result<(), Broken> {
                check_number(rule, u32::from(*self))
            }
        }
    )*};
}

integer_wire! {
    u8: u8, put_u8, 1;
    u16: u16, put_u16, 2;
    u32: u32, put_u32, 4;
}

impl Wire for String {
    fn get(r: &mut Reader, what: &'static str) -> Result<Self, DecodeError> {
        r.string(what)
    }
    fn size(&self, what: &'static str) -> Result<usize, EncodeError> {
        str_len(self, what)
    }
    fn put(&self, buf: &mut BytesMut) {
        put_str(buf, self);
    }
    fn check(&self, rule: Rule) -> Result<(), Broken> {
        match rule {
            Rule::TopicName => validate_topic_name(self).map_err(Broken::Topic),
            _ => Ok(()),
        }
    }
}

impl Wire for Bytes {
    fn get(r: &mut Reader, what: &'static str) -> Result<Self, DecodeError> {
        r.binary(what)
    }
    fn size(&self, what: &'static str) -> Result<usize, EncodeError> {
        binary_len(self, what)
    }
    fn put(&self, buf: &mut BytesMut) {
        put_binary(buf, self);
    }
    fn check(&self, _: Rule) -> Result<(), Broken> {
        Ok(())
    }
}

/// A field of [`Properties`]: how its property is read, sized and written.
trait Field {
    /// Reads one occurrence of the property (its identifier already read and allowed).
    fn read_one(&mut self, r: &mut Reader, p: &Prop, ctx: Context) -> Result<(), DecodeError>;
    /// The bytes of every occurrence, identifiers included (0 when absent), checking the
    /// allow-list of `ctx` and the values.
    fn encoded_len(&self, p: &Prop, ctx: Context) -> Result<usize, EncodeError>;
    fn write_all(&self, id: u8, buf: &mut BytesMut);
}

/// A property that appears at most once.
impl<T: Wire> Field for Option<T> {
    fn read_one(&mut self, r: &mut Reader, p: &Prop, _: Context) -> Result<(), DecodeError> {
        let v = T::get(r, p.name)?;
        v.check(p.rule).map_err(|b| b.decode(p))?;
        if self.is_some() {
            return Err(DecodeError::DuplicateProperty { property: p.name });
        }
        *self = Some(v);
        Ok(())
    }

    fn encoded_len(&self, p: &Prop, ctx: Context) -> Result<usize, EncodeError> {
        let Some(v) = self else {
            return Ok(0);
        };
        allow(ctx, p)?;
        v.check(p.rule).map_err(|b| b.encode(p))?;
        Ok(1 + v.size(p.name)?)
    }

    fn write_all(&self, id: u8, buf: &mut BytesMut) {
        if let Some(v) = self {
            buf.put_u8(id);
            v.put(buf);
        }
    }
}

/// Subscription Identifier: a variable byte integer, repeated only in PUBLISH
/// ([MQTT-3.3.4-3], section 3.8.2.1.2).
impl Field for Vec<u32> {
    fn read_one(&mut self, r: &mut Reader, p: &Prop, ctx: Context) -> Result<(), DecodeError> {
        let v = r.varint(p.name)?;
        check_number(p.rule, v).map_err(|b| b.decode(p))?;
        if ctx != Context::Publish && !self.is_empty() {
            return Err(DecodeError::DuplicateProperty { property: p.name });
        }
        self.push(v);
        Ok(())
    }

    fn encoded_len(&self, p: &Prop, ctx: Context) -> Result<usize, EncodeError> {
        if self.is_empty() {
            return Ok(0);
        }
        allow(ctx, p)?;
        if ctx != Context::Publish && self.len() > 1 {
            return Err(EncodeError::RepeatedProperty {
                property: p.name,
                packet: ctx.packet(),
            });
        }
        let mut n = 0;
        for &id in self {
            if id > varint::MAX {
                return Err(Broken::Value(id).encode(p));
            }
            check_number(p.rule, id).map_err(|b| b.encode(p))?;
            n += 1 + varint::len(id as usize);
        }
        Ok(n)
    }

    fn write_all(&self, id: u8, buf: &mut BytesMut) {
        for &v in self {
            buf.put_u8(id);
            varint::write(buf, v as usize);
        }
    }
}

/// User Property: a name and a value, repeated in order in every packet (section 3.1.2.11.8).
impl Field for Vec<(String, String)> {
    fn read_one(&mut self, r: &mut Reader, _: &Prop, _: Context) -> Result<(), DecodeError> {
        let k = r.string("User Property name")?;
        let v = r.string("User Property value")?;
        self.push((k, v));
        Ok(())
    }

    fn encoded_len(&self, p: &Prop, ctx: Context) -> Result<usize, EncodeError> {
        if self.is_empty() {
            return Ok(0);
        }
        allow(ctx, p)?;
        let mut n = 0;
        for (k, v) in self {
            n += 1 + str_len(k, "User Property name")? + str_len(v, "User Property value")?;
        }
        Ok(n)
    }

    fn write_all(&self, id: u8, buf: &mut BytesMut) {
        for (k, v) in self {
            buf.put_u8(id);
            put_str(buf, k);
            put_str(buf, v);
        }
    }
}

fn allow(ctx: Context, p: &Prop) -> Result<(), EncodeError> {
    if !ctx.allows(p.id) {
        return Err(EncodeError::PropertyNotAllowed {
            property: p.name,
            packet: ctx.packet(),
        });
    }
    Ok(())
}

/// Declares every property once: `identifier CONSTANT field Rule "Name as the specification
/// spells it";`, in identifier order. From it come the constants, the name lookup, and the
/// dispatch of reading, sizing and writing to each field.
macro_rules! properties {
    ($($id:literal $konst:ident $field:ident $rule:ident $name:literal;)*) => {
        $(pub(crate) const $konst: u8 = $id;)*

        /// The table row of a property identifier; `None` for an unknown one.
        fn lookup(id: u8) -> Option<&'static Prop> {
            match id {
                $($id => Some(&Prop { id: $id, name: $name, rule: Rule::$rule }),)*
                _ => None,
            }
        }

        /// Every property identifier, in order.
        #[cfg(test)]
        const IDS: &[u8] = &[$($id),*];

        fn read_field(
            p: &mut Properties,
            prop: &Prop,
            r: &mut Reader,
            ctx: Context,
        ) -> Result<(), DecodeError> {
            match prop.id {
                $($id => p.$field.read_one(r, prop, ctx),)*
                _ => unreachable!("identifiers come from the table"),
            }
        }

        fn fields_len(p: &Properties, ctx: Context) -> Result<usize, EncodeError> {
            let mut n = 0;
            $(n += p.$field.encoded_len(&Prop { id: $id, name: $name, rule: Rule::$rule }, ctx)?;)*
            Ok(n)
        }

        fn write_fields(p: &Properties, buf: &mut BytesMut) {
            $(p.$field.write_all($id, buf);)*
        }

        /// `p` with only the property `id` kept.
        #[cfg(test)]
        fn only(p: &Properties, id: u8) -> Properties {
            let mut q = Properties::default();
            match id {
                $($id => q.$field = p.$field.clone(),)*
                _ => {}
            }
            q
        }
    };
}

properties! {
    0x01 PAYLOAD_FORMAT_INDICATOR payload_format_indicator Boolean "Payload Format Indicator";
    0x02 MESSAGE_EXPIRY_INTERVAL message_expiry_interval Any "Message Expiry Interval";
    0x03 CONTENT_TYPE content_type Any "Content Type";
    0x08 RESPONSE_TOPIC response_topic TopicName "Response Topic";
    0x09 CORRELATION_DATA correlation_data Any "Correlation Data";
    0x0B SUBSCRIPTION_IDENTIFIER subscription_identifiers NonZero "Subscription Identifier";
    0x11 SESSION_EXPIRY_INTERVAL session_expiry_interval Any "Session Expiry Interval";
    0x12 ASSIGNED_CLIENT_IDENTIFIER assigned_client_identifier Any "Assigned Client Identifier";
    0x13 SERVER_KEEP_ALIVE server_keep_alive Any "Server Keep Alive";
    0x15 AUTHENTICATION_METHOD authentication_method Any "Authentication Method";
    0x16 AUTHENTICATION_DATA authentication_data Any "Authentication Data";
    0x17 REQUEST_PROBLEM_INFORMATION request_problem_information Boolean "Request Problem Information";
    0x18 WILL_DELAY_INTERVAL will_delay_interval Any "Will Delay Interval";
    0x19 REQUEST_RESPONSE_INFORMATION request_response_information Boolean "Request Response Information";
    0x1A RESPONSE_INFORMATION response_information Any "Response Information";
    0x1C SERVER_REFERENCE server_reference Any "Server Reference";
    0x1F REASON_STRING reason_string Any "Reason String";
    0x21 RECEIVE_MAXIMUM receive_maximum NonZero "Receive Maximum";
    0x22 TOPIC_ALIAS_MAXIMUM topic_alias_maximum Any "Topic Alias Maximum";
    0x23 TOPIC_ALIAS topic_alias NonZero "Topic Alias";
    0x24 MAXIMUM_QOS maximum_qos Boolean "Maximum QoS";
    0x25 RETAIN_AVAILABLE retain_available Boolean "Retain Available";
    0x26 USER_PROPERTY user_properties Any "User Property";
    0x27 MAXIMUM_PACKET_SIZE maximum_packet_size NonZero "Maximum Packet Size";
    0x28 WILDCARD_SUBSCRIPTION_AVAILABLE wildcard_subscription_available Boolean "Wildcard Subscription Available";
    0x29 SUBSCRIPTION_IDENTIFIER_AVAILABLE subscription_identifier_available Boolean "Subscription Identifier Available";
    0x2A SHARED_SUBSCRIPTION_AVAILABLE shared_subscription_available Boolean "Shared Subscription Available";
}

/// The name of a property identifier as the specification spells it.
#[cfg(test)]
fn name(id: u8) -> &'static str {
    lookup(id).map_or("unknown property", |p| p.name)
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
        let Some(prop) = lookup(id) else {
            return Err(DecodeError::UnknownProperty { id });
        };
        if !ctx.allows(id) {
            return Err(DecodeError::PropertyNotAllowed {
                property: prop.name,
                packet: ctx.packet(),
            });
        }
        read_field(&mut p, prop, &mut r, ctx)?;
    }
    Ok(p)
}

/// The size of the properties (without the block's own length prefix), validating each against
/// the allow-list of `ctx`.
pub(crate) fn content_len(p: &Properties, ctx: Context) -> Result<usize, EncodeError> {
    if p.is_unset() {
        return Ok(0);
    }
    let n = fields_len(p, ctx)?;
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
    write_fields(p, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::PropertySet;
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

    const CONTEXTS: [Context; 14] = [
        Context::Connect,
        Context::Will,
        Context::ConnAck,
        Context::Publish,
        Context::PubAck,
        Context::PubRec,
        Context::PubRel,
        Context::PubComp,
        Context::Subscribe,
        Context::SubAck,
        Context::Unsubscribe,
        Context::UnsubAck,
        Context::Disconnect,
        Context::Auth,
    ];

    proptest::proptest! {
        /// Every property, alone in its block, is sized exactly as many bytes as are written
        /// for it, and reads back as itself.
        #[test]
        fn every_property_len_equals_bytes_written(seed in proptest::collection::vec(0u8.., 0..512)) {
            let mut u = arbitrary::Unstructured::new(&seed);
            for ctx in CONTEXTS {
                let Ok(p) = super::super::arbitrary::properties(&mut u, ctx) else {
                    return Ok(());
                };
                for &id in IDS {
                    let q = only(&p, id);
                    if q.is_empty() {
                        continue;
                    }
                    let n = content_len(&q, ctx).expect("generated properties are valid");
                    let mut buf = BytesMut::new();
                    write(&q, n, &mut buf);
                    proptest::prop_assert_eq!(buf.len(), varint::len(n) + n, "{}", name(id));
                    proptest::prop_assert_eq!(buf[varint::len(n)], id);
                    proptest::prop_assert_eq!(read_block(&buf, ctx), Ok(q));
                }
            }
        }
    }

    /// The table covers the 27 properties of section 2.2.2.2, each with its own name.
    #[test]
    fn table_declares_27_distinct_properties() {
        assert_eq!(IDS.len(), 27);
        let names: std::collections::BTreeSet<_> = IDS.iter().map(|&id| name(id)).collect();
        assert_eq!(names.len(), 27);
        assert!(IDS.windows(2).all(|w| w[0] < w[1]), "identifier order");
        assert_eq!(name(0x04), "unknown property");
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
        let p = Properties::from(PropertySet {
            session_expiry_interval: Some(10),
            ..PropertySet::default()
        });
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
        let p = Properties::from(PropertySet {
            user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            ..PropertySet::default()
        });
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
        let p = Properties::from(PropertySet {
            maximum_qos: Some(2),
            ..PropertySet::default()
        });
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
        let p = Properties::from(PropertySet {
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
            ..PropertySet::default()
        });
        let bytes = write_block(&p, Context::ConnAck).unwrap();
        assert_eq!(read_block(&bytes, Context::ConnAck).unwrap(), p);
        let w = Properties::from(PropertySet {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(9),
            content_type: Some("text/plain".into()),
            response_topic: Some("r/t".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            will_delay_interval: Some(7),
            ..PropertySet::default()
        });
        let bytes = write_block(&w, Context::Will).unwrap();
        assert_eq!(read_block(&bytes, Context::Will).unwrap(), w);
        assert!(
            write_block(&w, Context::Publish).is_err(),
            "will delay is will-only"
        );
    }
}
