//! PUBLISH (MQTT 5.0 section 3.3, 3.1.1 section 3.3). The payload is a zero-copy slice of the
//! decoded buffer. The fixed-header flags (QoS 3, DUP at QoS 0) are checked in `header.rs`.
//! Not here: topic alias resolution, payload format checks (the broker's and client's).

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::properties::{self, Context};
use super::reader::Reader;
use super::topic::{TopicError, has_wildcard_or_nul, validate_topic_name};
use super::{Properties, Publish, QoS, read_pkid};

#[inline]
pub(crate) fn read(r: &mut Reader, flags: u8, v5: bool) -> Result<Publish, DecodeError> {
    let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::QoS3)?;
    // U+0000 and UTF-8 are checked by the reader; wildcards in the same breath
    let (topic, wildcard) = r.with_str("topic name", |s| {
        (s.to_owned(), has_wildcard_or_nul(s.as_bytes()))
    })?;
    let pkid = if qos == QoS::AtMostOnce {
        0
    } else {
        read_pkid(r)?
    };
    let properties = if v5 {
        properties::read(r, Context::Publish)?
    } else {
        Properties::default()
    };
    if topic.is_empty() {
        if !v5 {
            return Err(DecodeError::InvalidTopicName(TopicError::Empty));
        }
        if properties.topic_alias.is_none() {
            return Err(DecodeError::EmptyTopicWithoutAlias);
        }
    } else if wildcard {
        return Err(DecodeError::InvalidTopicName(TopicError::WildcardInName));
    }
    Ok(Publish {
        dup: flags & 0b1000 != 0,
        qos,
        retain: flags & 1 != 0,
        topic,
        pkid,
        properties,
        payload: r.rest(),
    })
}

#[inline]
pub(crate) fn len(p: &Publish, v5: bool) -> Result<usize, EncodeError> {
    let mut n = 2 + p.topic.len();
    if p.topic.is_empty() {
        if !v5 {
            return Err(EncodeError::InvalidTopicName(TopicError::Empty));
        }
        if p.properties.topic_alias.is_none() {
            return Err(EncodeError::EmptyTopicWithoutAlias);
        }
    } else {
        validate_topic_name(&p.topic).map_err(EncodeError::InvalidTopicName)?;
    }
    if p.qos == QoS::AtMostOnce {
        if p.dup {
            return Err(EncodeError::DupWithQoS0);
        }
    } else {
        super::check_pkid(p.pkid, "PUBLISH")?;
        n += 2;
    }
    if v5 {
        n += properties::block_len(&p.properties, Context::Publish)?;
    }
    Ok(n + p.payload.len())
}

#[inline]
pub(crate) fn write(p: &Publish, v5: bool, buf: &mut BytesMut) {
    super::writer::put_str(buf, &p.topic);
    if p.qos != QoS::AtMostOnce {
        buf.put_u16(p.pkid);
    }
    if v5 {
        let n = properties::content_len(&p.properties, Context::Publish).expect("checked by len");
        properties::write(&p.properties, n, buf);
    }
    buf.put_slice(&p.payload);
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{both_ways, dec, enc};
    use super::super::{Packet, Protocol, ReasonCode, encode};
    use super::*;
    use bytes::Bytes;

    fn publish(qos: QoS, pkid: u16) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: "a/b".into(),
            pkid,
            properties: Properties::default(),
            payload: Bytes::from_static(b"hi"),
        }
    }

    /// §3.3 QoS 0 has no packet identifier; QoS 1 and 2 do.
    #[test]
    fn publish_qos_0_1_2() {
        let p = publish(QoS::AtMostOnce, 0);
        both_ways(
            &Packet::Publish(p),
            Protocol::V3_1_1,
            &[0x30, 7, 0, 3, b'a', b'/', b'b', b'h', b'i'],
        );
        let mut p = publish(QoS::AtLeastOnce, 10);
        p.retain = true;
        p.dup = true;
        both_ways(
            &Packet::Publish(p),
            Protocol::V3_1_1,
            &[0x3B, 9, 0, 3, b'a', b'/', b'b', 0, 10, b'h', b'i'],
        );
        let p = publish(QoS::ExactlyOnce, 0x0102);
        both_ways(
            &Packet::Publish(p),
            Protocol::V5,
            &[0x34, 10, 0, 3, b'a', b'/', b'b', 1, 2, 0, b'h', b'i'],
        );
    }

    /// 5.0 §3.3.2.3 PUBLISH properties, Subscription Identifier repeated.
    #[test]
    fn publish_with_properties_v5() {
        let mut p = publish(QoS::AtMostOnce, 0);
        p.properties.subscription_identifiers = vec![1, 2];
        p.properties.message_expiry_interval = Some(1);
        #[rustfmt::skip]
        let bytes = [
            0x30, 17, 0, 3, b'a', b'/', b'b',
            9, 0x02, 0, 0, 0, 1, 0x0B, 1, 0x0B, 2,
            b'h', b'i',
        ];
        both_ways(&Packet::Publish(p.clone()), Protocol::V5, &bytes);
        // properties are not written in 3.1.1
        assert_eq!(
            enc(&Packet::Publish(p), Protocol::V3_1_1),
            [0x30, 7, 0, 3, b'a', b'/', b'b', b'h', b'i']
        );
    }

    /// [MQTT-2.2.1-3] QoS 1 and 2 need a non-zero packet identifier.
    #[test]
    fn mqtt_2_2_1_3_publish_packet_identifier_nonzero() {
        let err = dec(&[0x32, 5, 0, 1, b'a', 0, 0], Some(Protocol::V3_1_1)).unwrap_err();
        assert_eq!(err, DecodeError::ZeroPacketId { packet: "PUBLISH" });
        assert_eq!(err.reason_code(), ReasonCode::ProtocolError);
        let mut buf = BytesMut::new();
        assert_eq!(
            encode(
                &Packet::Publish(publish(QoS::AtLeastOnce, 0)),
                Protocol::V5,
                &mut buf
            ),
            Err(EncodeError::ZeroPacketId { packet: "PUBLISH" })
        );
    }

    /// [MQTT-3.3.1-2] DUP with QoS 0 cannot be written either.
    #[test]
    fn mqtt_3_3_1_2_dup_qos0_not_encodable() {
        let mut p = publish(QoS::AtMostOnce, 0);
        p.dup = true;
        assert_eq!(len(&p, true), Err(EncodeError::DupWithQoS0));
    }

    /// [MQTT-3.3.2-2] the topic name must not contain wildcards: 0x90 Topic Name Invalid.
    #[test]
    fn mqtt_3_3_2_2_wildcard_in_topic_name() {
        let err = dec(&[0x30, 5, 0, 3, b'a', b'/', b'+'], Some(Protocol::V3_1_1)).unwrap_err();
        assert_eq!(
            err,
            DecodeError::InvalidTopicName(TopicError::WildcardInName)
        );
        assert_eq!(err.rule(), "MQTT-3.3.2-2");
        assert_eq!(err.reason_code(), ReasonCode::TopicNameInvalid);
        let mut p = publish(QoS::AtMostOnce, 0);
        p.topic = "a/#".into();
        assert_eq!(
            len(&p, true),
            Err(EncodeError::InvalidTopicName(TopicError::WildcardInName))
        );
    }

    /// [MQTT-4.7.3-1] an empty topic name is invalid in 3.1.1; in 5.0 only with a topic alias.
    #[test]
    fn mqtt_4_7_3_1_empty_topic_name() {
        assert_eq!(
            dec(&[0x30, 2, 0, 0], Some(Protocol::V3_1_1)),
            Err(DecodeError::InvalidTopicName(TopicError::Empty))
        );
        assert_eq!(
            dec(&[0x30, 3, 0, 0, 0], Some(Protocol::V5)),
            Err(DecodeError::EmptyTopicWithoutAlias)
        );
        let mut p = publish(QoS::AtMostOnce, 0);
        p.topic = String::new();
        p.properties.topic_alias = Some(3);
        both_ways(
            &Packet::Publish(p),
            Protocol::V5,
            &[0x30, 8, 0, 0, 3, 0x23, 0, 3, b'h', b'i'],
        );
    }

    /// [MQTT-1.5.4-2] a topic name with U+0000 is malformed.
    #[test]
    fn mqtt_1_5_4_2_null_in_topic() {
        assert_eq!(
            dec(&[0x30, 4, 0, 2, b'a', 0], Some(Protocol::V5)),
            Err(DecodeError::NullCharacter { what: "topic name" })
        );
    }

    /// The payload shares the buffer it was decoded from.
    #[test]
    fn payload_is_zero_copy() {
        let mut buf = BytesMut::from(&[0x30u8, 7, 0, 3, b'a', b'/', b'b', b'h', b'i'][..]);
        let base = buf.as_ptr();
        let decoded = super::super::decode(&mut buf, Some(Protocol::V3_1_1), 100).unwrap();
        let Some(Packet::Publish(p)) = decoded else {
            panic!("a publish")
        };
        assert_eq!(p.payload.as_ptr(), base.wrapping_add(7));
    }
}
