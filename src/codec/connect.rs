//! CONNECT (MQTT 5.0 section 3.1, 3.1.1 section 3.1; 3.1's "MQIsdp" level 3 decodes too).
//!
//! Decoded in the protocol its name and level announce, whatever was negotiated before.
//! Not here: client identifier policy, authentication, session handling (the broker's).

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::properties::{self, Context};
use super::reader::Reader;
use super::topic::validate_topic_name;
use super::writer::{binary_len, put_binary, put_str, str_len};
use super::{Connect, LastWill, Properties, Protocol, QoS};

const CLEAN_START: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

fn protocol_of(name: &str, level: u8) -> Result<Protocol, DecodeError> {
    match (name, level) {
        ("MQTT", 4) => Ok(Protocol::V3_1_1),
        ("MQTT", 5) => Ok(Protocol::V5),
        ("MQIsdp", 3) => Ok(Protocol::V3_1),
        ("MQTT", level) => Err(DecodeError::UnsupportedProtocolLevel {
            name: "MQTT",
            level,
        }),
        ("MQIsdp", level) => Err(DecodeError::UnsupportedProtocolLevel {
            name: "MQIsdp",
            level,
        }),
        (name, _) => Err(DecodeError::UnknownProtocolName {
            name: name.to_owned(),
        }),
    }
}

pub(crate) fn read(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name = r.with_str("protocol name", |s| match s {
        "MQTT" => Ok("MQTT"),
        "MQIsdp" => Ok("MQIsdp"),
        other => Err(DecodeError::UnknownProtocolName {
            name: other.to_owned(),
        }),
    })??;
    let level = r.u8("protocol level")?;
    let protocol = protocol_of(name, level)?;
    let v5 = protocol.is_v5();
    let flags = r.u8("connect flags")?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let will_qos = (flags >> 3) & 0b11;
    let has_will = flags & WILL != 0;
    if !has_will && (will_qos != 0 || flags & WILL_RETAIN != 0) {
        return Err(DecodeError::WillFlagsWithoutWill);
    }
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::WillQoS3)?;
    if !v5 && flags & PASSWORD != 0 && flags & USERNAME == 0 {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let keep_alive = r.u16("keep alive")?;
    let properties = if v5 {
        properties::read(r, Context::Connect)?
    } else {
        Properties::default()
    };
    let client_id = r.string("client identifier")?;
    let will = if has_will {
        let properties = if v5 {
            properties::read(r, Context::Will)?
        } else {
            Properties::default()
        };
        let topic = r.string("will topic")?;
        validate_topic_name(&topic).map_err(DecodeError::InvalidTopicName)?;
        let payload = r.binary("will payload")?;
        Some(LastWill {
            topic,
            payload,
            qos: will_qos,
            retain: flags & WILL_RETAIN != 0,
            properties,
        })
    } else {
        None
    };
    let username = if flags & USERNAME != 0 {
        Some(r.string("user name")?)
    } else {
        None
    };
    let password = if flags & PASSWORD != 0 {
        Some(r.binary("password")?)
    } else {
        None
    };
    Ok(Connect {
        protocol,
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        client_id,
        will: will.map(Box::new),
        username,
        password,
        properties,
    })
}

#[inline]
pub(crate) fn len(c: &Connect) -> Result<usize, EncodeError> {
    let v5 = c.protocol.is_v5();
    if !v5 && c.password.is_some() && c.username.is_none() {
        return Err(EncodeError::PasswordWithoutUsername);
    }
    // protocol name, level, flags, keep alive
    let mut n = 2 + c.protocol.name().len() + 1 + 1 + 2;
    if v5 {
        n += properties::block_len(&c.properties, Context::Connect)?;
    }
    n += str_len(&c.client_id, "client identifier")?;
    if let Some(w) = &c.will {
        if v5 {
            n += properties::block_len(&w.properties, Context::Will)?;
        }
        // a valid topic name fits in 65535 bytes and holds no U+0000
        validate_topic_name(&w.topic).map_err(EncodeError::InvalidTopicName)?;
        n += 2 + w.topic.len();
        n += binary_len(&w.payload, "will payload")?;
    }
    if let Some(u) = &c.username {
        n += str_len(u, "user name")?;
    }
    if let Some(p) = &c.password {
        n += binary_len(p, "password")?;
    }
    Ok(n)
}

#[inline]
pub(crate) fn write(c: &Connect, buf: &mut BytesMut) {
    let v5 = c.protocol.is_v5();
    put_str(buf, c.protocol.name());
    buf.put_u8(c.protocol.level());
    let mut flags = 0u8;
    if c.clean_start {
        flags |= CLEAN_START;
    }
    if let Some(w) = &c.will {
        flags |= WILL | (w.qos.as_u8() << 3);
        if w.retain {
            flags |= WILL_RETAIN;
        }
    }
    if c.password.is_some() {
        flags |= PASSWORD;
    }
    if c.username.is_some() {
        flags |= USERNAME;
    }
    buf.put_u8(flags);
    buf.put_u16(c.keep_alive);
    if v5 {
        let n = properties::content_len(&c.properties, Context::Connect).expect("checked by len");
        properties::write(&c.properties, n, buf);
    }
    put_str(buf, &c.client_id);
    if let Some(w) = &c.will {
        if v5 {
            let n = properties::content_len(&w.properties, Context::Will).expect("checked by len");
            properties::write(&w.properties, n, buf);
        }
        put_str(buf, &w.topic);
        put_binary(buf, &w.payload);
    }
    if let Some(u) = &c.username {
        put_str(buf, u);
    }
    if let Some(p) = &c.password {
        put_binary(buf, p);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{both_ways, dec};
    use super::super::{Packet, PropertySet, ReasonCode, TopicError};
    use super::*;
    use bytes::Bytes;

    fn connect(protocol: Protocol) -> Connect {
        Connect {
            protocol,
            clean_start: true,
            keep_alive: 60,
            client_id: "c1".into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }
    }

    /// §3.1.2 a minimal 3.1.1 CONNECT.
    #[test]
    fn minimal_v311_connect() {
        #[rustfmt::skip]
        let bytes = [
            0x10, 14,                               // CONNECT, remaining length
            0x00, 0x04, b'M', b'Q', b'T', b'T',     // protocol name
            0x04,                                   // level 4
            0x02,                                   // clean session
            0x00, 0x3C,                             // keep alive 60
            0x00, 0x02, b'c', b'1',                 // client id
        ];
        both_ways(
            &Packet::Connect(connect(Protocol::V3_1_1)),
            Protocol::V3_1_1,
            &bytes,
        );
    }

    /// MQTT 3.1: protocol name "MQIsdp", level 3.
    #[test]
    fn mqtt_3_1_mqisdp_connect() {
        #[rustfmt::skip]
        let bytes = [
            0x10, 16,
            0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p',
            0x03,                                   // level 3
            0x02, 0x00, 0x3C,
            0x00, 0x02, b'c', b'1',
        ];
        both_ways(
            &Packet::Connect(connect(Protocol::V3_1)),
            Protocol::V3_1_1,
            &bytes,
        );
        // decoded before any protocol is known, and whatever protocol was assumed
        assert_eq!(
            dec(&bytes, None),
            Ok(Packet::Connect(connect(Protocol::V3_1)))
        );
        assert_eq!(
            dec(&bytes, Some(Protocol::V5)),
            Ok(Packet::Connect(connect(Protocol::V3_1)))
        );
    }

    /// §3.1 a 5.0 CONNECT with properties, a will with will properties, user name and password.
    #[test]
    fn full_v5_connect() {
        let mut c = connect(Protocol::V5);
        c.properties.session_expiry_interval = Some(0x10);
        c.will = Some(Box::new(LastWill {
            topic: "w".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::from(PropertySet {
                will_delay_interval: Some(5),
                ..PropertySet::default()
            }),
        }));
        c.username = Some("u".into());
        c.password = Some(Bytes::from_static(b"p"));
        #[rustfmt::skip]
        let bytes = [
            0x10, 40,
            0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,
            0b1110_1110,                            // user, password, will retain, will QoS 1, will, clean
            0x00, 0x3C,
            0x05, 0x11, 0x00, 0x00, 0x00, 0x10,     // properties: session expiry 16
            0x00, 0x02, b'c', b'1',
            0x05, 0x18, 0x00, 0x00, 0x00, 0x05,     // will properties: will delay 5
            0x00, 0x01, b'w',
            0x00, 0x03, b'b', b'y', b'e',
            0x00, 0x01, b'u',
            0x00, 0x01, b'p',
        ];
        both_ways(&Packet::Connect(c), Protocol::V5, &bytes);
    }

    /// [MQTT-3.1.2-1] an unknown protocol name; [MQTT-3.1.2-2] an unsupported level: both 0x84.
    #[test]
    fn mqtt_3_1_2_1_and_2_protocol_name_and_level() {
        let bad_name = [
            0x10, 10, 0x00, 0x04, b'M', b'Q', b'T', b'X', 0x04, 0x02, 0x00, 0x00,
        ];
        let err = dec(&bad_name, None).unwrap_err();
        assert_eq!(
            err,
            DecodeError::UnknownProtocolName {
                name: "MQTX".into()
            }
        );
        assert_eq!(err.reason_code(), ReasonCode::UnsupportedProtocolVersion);
        let bad_level = [
            0x10, 10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x00,
        ];
        let err = dec(&bad_level, None).unwrap_err();
        assert_eq!(
            err,
            DecodeError::UnsupportedProtocolLevel {
                name: "MQTT",
                level: 6
            }
        );
        assert_eq!(err.rule(), "MQTT-3.1.2-2");
        assert_eq!(err.reason_code(), ReasonCode::UnsupportedProtocolVersion);
    }

    /// [MQTT-3.1.2-3] the reserved connect flag must be 0.
    #[test]
    fn mqtt_3_1_2_3_reserved_flag() {
        let bytes = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x03, 0, 0, 0, 0];
        assert_eq!(dec(&bytes, None), Err(DecodeError::ConnectReservedFlag));
    }

    /// 3.1.1: will QoS [MQTT-3.1.2-13] and will retain [MQTT-3.1.2-15] need the will flag
    /// ([MQTT-3.1.2-11]); will QoS 3 is malformed [MQTT-3.1.2-14].
    #[test]
    fn mqtt_3_1_2_13_14_15_will_flags() {
        for flags in [0x08u8, 0x20] {
            let bytes = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 0, 0, 0];
            assert_eq!(
                dec(&bytes, None),
                Err(DecodeError::WillFlagsWithoutWill),
                "{flags:#x}"
            );
        }
        let bytes = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x1C, 0, 0, 0, 0];
        assert_eq!(dec(&bytes, None), Err(DecodeError::WillQoS3));
    }

    /// [MQTT-3.1.2-22] (3.1.1) no password without a user name; MQTT 5 allows it.
    #[test]
    fn mqtt_3_1_2_22_password_needs_user_name_in_v311() {
        let bytes = [
            0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x40, 0, 0, 0, 0, 0, 1, b'p',
        ];
        assert_eq!(dec(&bytes, None), Err(DecodeError::PasswordWithoutUsername));
        let mut c = connect(Protocol::V3_1_1);
        c.password = Some(Bytes::from_static(b"p"));
        assert_eq!(len(&c), Err(EncodeError::PasswordWithoutUsername));
        c.protocol = Protocol::V5;
        assert!(len(&c).is_ok());
    }

    /// 3.1.1: the will topic is a UTF-8 string [MQTT-3.1.3-10] and a topic name, without
    /// wildcards [MQTT-4.7.1-1].
    #[test]
    fn will_topic_is_a_topic_name() {
        #[rustfmt::skip]
        let bytes = [
            0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x04, 0, 0,
            0, 0,                       // client id ""
            0, 1, b'#',                 // will topic "#"
            0, 0,                       // will payload
        ];
        assert!(matches!(
            dec(&bytes, None),
            Err(DecodeError::InvalidTopicName(_))
        ));
    }

    /// A will topic that is not a valid topic name is not written: U+0000, a wildcard, more
    /// than 65535 bytes.
    #[test]
    fn invalid_will_topic_not_encodable() {
        for (topic, e) in [
            ("a\0".to_owned(), TopicError::NullCharacter),
            ("a/+".to_owned(), TopicError::WildcardInName),
            ("".to_owned(), TopicError::Empty),
            ("a".repeat(65536), TopicError::TooLong),
        ] {
            let mut c = connect(Protocol::V3_1_1);
            c.will = Some(Box::new(LastWill {
                topic,
                payload: Bytes::new(),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Properties::default(),
            }));
            assert_eq!(len(&c), Err(EncodeError::InvalidTopicName(e)));
        }
    }

    /// §2.1.4 a CONNECT ending inside its payload is malformed, not "need more bytes".
    #[test]
    fn connect_ending_early_is_malformed() {
        let bytes = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x80, 0, 0, 0, 0];
        assert_eq!(
            dec(&bytes, None),
            Err(DecodeError::Truncated {
                packet: "CONNECT",
                what: "user name"
            })
        );
    }
}
