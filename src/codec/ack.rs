//! PUBACK, PUBREC, PUBREL and PUBCOMP (MQTT 5.0 sections 3.4-3.7, 3.1.1 the same): a packet
//! identifier, and in 5.0 an optional reason code and properties. The short forms (remaining
//! length 2: success without properties; 3: a reason code without properties) are written
//! whenever they suffice and always accepted. PUBREL's 0b0010 flags are checked in `header.rs`.

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::properties::{self, Context};
use super::reader::Reader;
use super::{Ack, PacketType, Properties, ReasonCode, check_pkid, check_reason, packet_name};
use super::{read_pkid, read_reason};

fn context(kind: PacketType) -> Context {
    match kind {
        PacketType::PubAck => Context::PubAck,
        PacketType::PubRec => Context::PubRec,
        PacketType::PubRel => Context::PubRel,
        PacketType::PubComp => Context::PubComp,
        _ => unreachable!("not an acknowledgement: {kind:?}"),
    }
}

pub(crate) fn read(r: &mut Reader, kind: PacketType, v5: bool) -> Result<Ack, DecodeError> {
    let pkid = read_pkid(r)?;
    if !v5 || r.is_empty() {
        return Ok(Ack::new(pkid));
    }
    let reason = read_reason(r, kind)?;
    let properties = if r.is_empty() {
        Properties::default()
    } else {
        properties::read(r, context(kind))?
    };
    Ok(Ack {
        pkid,
        reason,
        properties,
    })
}

pub(crate) fn len(a: &Ack, kind: PacketType, v5: bool) -> Result<usize, EncodeError> {
    check_pkid(a.pkid, packet_name(kind))?;
    check_reason(a.reason, kind)?;
    if !v5 {
        return Ok(2);
    }
    let props = properties::content_len(&a.properties, context(kind))?;
    Ok(match (a.reason, props) {
        (ReasonCode::Success, 0) => 2,
        (_, 0) => 3,
        (_, n) => 3 + super::varint::len(n) + n,
    })
}

pub(crate) fn write(a: &Ack, kind: PacketType, v5: bool, buf: &mut BytesMut) {
    buf.put_u16(a.pkid);
    if !v5 {
        return;
    }
    let props = properties::content_len(&a.properties, context(kind)).expect("checked by len");
    if a.reason == ReasonCode::Success && props == 0 {
        return;
    }
    buf.put_u8(a.reason.as_u8());
    if props > 0 {
        properties::write(&a.properties, props, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{both_ways, dec, enc};
    use super::super::{Packet, Protocol};
    use super::*;

    /// §3.4.2 the 3.1.1 acknowledgements are a packet identifier only.
    #[test]
    fn v311_acks() {
        both_ways(
            &Packet::PubAck(Ack::new(7)),
            Protocol::V3_1_1,
            &[0x40, 2, 0, 7],
        );
        both_ways(
            &Packet::PubRec(Ack::new(7)),
            Protocol::V3_1_1,
            &[0x50, 2, 0, 7],
        );
        both_ways(
            &Packet::PubRel(Ack::new(7)),
            Protocol::V3_1_1,
            &[0x62, 2, 0, 7],
        );
        both_ways(
            &Packet::PubComp(Ack::new(7)),
            Protocol::V3_1_1,
            &[0x70, 2, 0, 7],
        );
        // a 5.0 reason is not written in 3.1.1
        let mut a = Ack::new(7);
        a.reason = ReasonCode::NoMatchingSubscribers;
        assert_eq!(enc(&Packet::PubAck(a), Protocol::V3_1_1), [0x40, 2, 0, 7]);
        assert_eq!(
            dec(&[0x40, 3, 0, 7, 0], Some(Protocol::V3_1_1)),
            Err(DecodeError::TrailingBytes {
                packet: "PUBACK",
                count: 1
            })
        );
    }

    /// §3.4.2.1 in 5.0 the reason code and properties may be omitted.
    #[test]
    fn v5_short_forms() {
        both_ways(&Packet::PubAck(Ack::new(1)), Protocol::V5, &[0x40, 2, 0, 1]);
        let mut a = Ack::new(1);
        a.reason = ReasonCode::NoMatchingSubscribers;
        both_ways(
            &Packet::PubAck(a.clone()),
            Protocol::V5,
            &[0x40, 3, 0, 1, 0x10],
        );
        a.properties.reason_string = Some("r".into());
        both_ways(
            &Packet::PubAck(a),
            Protocol::V5,
            &[0x40, 8, 0, 1, 0x10, 4, 0x1F, 0, 1, b'r'],
        );
        // the long form of success is accepted too
        assert_eq!(
            dec(&[0x50, 4, 0, 1, 0, 0], Some(Protocol::V5)),
            Ok(Packet::PubRec(Ack::new(1)))
        );
    }

    /// [MQTT-3.6.1-1] PUBREL flags must be 0b0010.
    #[test]
    fn mqtt_3_6_1_1_pubrel_flags() {
        assert_eq!(
            dec(&[0x60, 2, 0, 1], Some(Protocol::V5)),
            Err(DecodeError::InvalidFlags {
                packet: "PUBREL",
                flags: 0
            })
        );
    }

    /// §3.6.2.1 PUBREL carries only 0x00 and 0x92.
    #[test]
    fn pubrel_reason_codes() {
        let mut a = Ack::new(3);
        a.reason = ReasonCode::PacketIdentifierNotFound;
        both_ways(
            &Packet::PubRel(a.clone()),
            Protocol::V5,
            &[0x62, 3, 0, 3, 0x92],
        );
        assert_eq!(
            dec(&[0x62, 3, 0, 3, 0x10], Some(Protocol::V5)),
            Err(DecodeError::InvalidReasonCode {
                packet: "PUBREL",
                code: 0x10
            })
        );
        a.reason = ReasonCode::NoMatchingSubscribers;
        assert!(matches!(
            len(&a, PacketType::PubRel, true),
            Err(EncodeError::ReasonNotAllowed { .. })
        ));
    }

    /// [MQTT-2.2.1-3] acknowledgements carry the non-zero identifier of their PUBLISH.
    #[test]
    fn mqtt_2_2_1_3_ack_packet_identifier_nonzero() {
        assert_eq!(
            dec(&[0x70, 2, 0, 0], Some(Protocol::V5)),
            Err(DecodeError::ZeroPacketId { packet: "PUBCOMP" })
        );
    }

    /// §3.4.2.2 PUBACK properties: only Reason String and User Property.
    #[test]
    fn ack_property_allow_list() {
        assert_eq!(
            dec(&[0x40, 6, 0, 1, 0, 2, 0x23, 0], Some(Protocol::V5)).unwrap_err(),
            DecodeError::PropertyNotAllowed {
                property: "Topic Alias",
                packet: "PUBACK"
            }
        );
    }
}
