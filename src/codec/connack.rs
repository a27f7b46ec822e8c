//! CONNACK (MQTT 5.0 section 3.2, 3.1.1 section 3.2). In 3.1.1 the reason code travels as a
//! return code 0..=5 (see [`reason::connack_v3_return_code`](super::reason)).

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::properties::{self, Context};
use super::reader::Reader;
use super::{ConnAck, PacketType, Properties, check_reason, read_reason, reason};

pub(crate) fn read(r: &mut Reader, v5: bool) -> Result<ConnAck, DecodeError> {
    let flags = r.u8("acknowledge flags")?;
    if flags & 0xFE != 0 {
        return Err(DecodeError::ConnAckReservedFlags { flags });
    }
    let session_present = flags & 1 != 0;
    let (reason, properties) = if v5 {
        let reason = read_reason(r, PacketType::ConnAck)?;
        (reason, properties::read(r, Context::ConnAck)?)
    } else {
        let code = r.u8("return code")?;
        let reason = reason::connack_from_v3(code).ok_or(DecodeError::InvalidReasonCode {
            packet: "CONNACK",
            code,
        })?;
        (reason, Properties::default())
    };
    if session_present && reason.is_error() {
        return Err(DecodeError::SessionPresentWithError);
    }
    Ok(ConnAck {
        session_present,
        reason,
        properties,
    })
}

pub(crate) fn len(c: &ConnAck, v5: bool) -> Result<usize, EncodeError> {
    check_reason(c.reason, PacketType::ConnAck)?;
    if c.session_present && c.reason.is_error() {
        return Err(EncodeError::SessionPresentWithError);
    }
    let props = if v5 {
        properties::block_len(&c.properties, Context::ConnAck)?
    } else {
        0
    };
    Ok(2 + props)
}

pub(crate) fn write(c: &ConnAck, v5: bool, buf: &mut BytesMut) {
    buf.put_u8(u8::from(c.session_present));
    if v5 {
        buf.put_u8(c.reason.as_u8());
        let n = properties::content_len(&c.properties, Context::ConnAck).expect("checked by len");
        properties::write(&c.properties, n, buf);
    } else {
        buf.put_u8(reason::connack_v3_return_code(c.reason));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{both_ways, dec, enc};
    use super::super::{Packet, Protocol, ReasonCode};
    use super::*;

    fn connack(session_present: bool, reason: ReasonCode) -> Packet {
        Packet::ConnAck(ConnAck {
            session_present,
            reason,
            properties: Properties::default(),
        })
    }

    /// 3.1.1 §3.2.2 session present and return code; 5.0 adds the property length.
    #[test]
    fn connack_both_versions() {
        both_ways(
            &connack(true, ReasonCode::Success),
            Protocol::V3_1_1,
            &[0x20, 2, 0x01, 0x00],
        );
        both_ways(
            &connack(false, ReasonCode::NotAuthorized),
            Protocol::V3_1_1,
            &[0x20, 2, 0x00, 0x05],
        );
        both_ways(
            &connack(true, ReasonCode::Success),
            Protocol::V5,
            &[0x20, 3, 0x01, 0x00, 0x00],
        );
        both_ways(
            &connack(false, ReasonCode::Banned),
            Protocol::V5,
            &[0x20, 3, 0x00, 0x8A, 0x00],
        );
    }

    /// 3.1.1 §3.2.2.3: 5.0 refusals become the nearest 3.1.1 return code; properties are dropped.
    #[test]
    fn v5_reasons_mapped_for_v311() {
        assert_eq!(
            enc(&connack(false, ReasonCode::Banned), Protocol::V3_1_1),
            [0x20, 2, 0, 5]
        );
        assert_eq!(
            enc(&connack(false, ReasonCode::ServerBusy), Protocol::V3_1_1),
            [0x20, 2, 0, 3]
        );
        let mut c = ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        };
        c.properties.receive_maximum = Some(10);
        assert_eq!(enc(&Packet::ConnAck(c), Protocol::V3_1_1), [0x20, 2, 0, 0]);
    }

    /// §3.2.2.1 acknowledge flags bits 7-1 are reserved.
    #[test]
    fn reserved_acknowledge_flags() {
        assert_eq!(
            dec(&[0x20, 2, 0x02, 0x00], Some(Protocol::V3_1_1)),
            Err(DecodeError::ConnAckReservedFlags { flags: 2 })
        );
    }

    /// [MQTT-3.2.2-6] session present must be 0 with a non-zero reason code.
    #[test]
    fn mqtt_3_2_2_6_session_present_with_refusal() {
        assert_eq!(
            dec(&[0x20, 3, 0x01, 0x87, 0x00], Some(Protocol::V5)),
            Err(DecodeError::SessionPresentWithError)
        );
        assert_eq!(
            len(
                &ConnAck {
                    session_present: true,
                    reason: ReasonCode::NotAuthorized,
                    properties: Properties::default()
                },
                true
            ),
            Err(EncodeError::SessionPresentWithError)
        );
    }

    /// §3.2.2.2 only the CONNACK reason codes; 3.1.1 return codes above 5 are malformed.
    #[test]
    fn invalid_connack_codes() {
        assert_eq!(
            dec(&[0x20, 3, 0x00, 0x01, 0x00], Some(Protocol::V5)),
            Err(DecodeError::InvalidReasonCode {
                packet: "CONNACK",
                code: 1
            })
        );
        assert_eq!(
            dec(&[0x20, 2, 0x00, 0x06], Some(Protocol::V3_1_1)),
            Err(DecodeError::InvalidReasonCode {
                packet: "CONNACK",
                code: 6
            })
        );
    }

    /// §3.2.2.3 CONNACK properties from the allow-list.
    #[test]
    fn connack_properties() {
        let mut c = ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        };
        c.properties.assigned_client_identifier = Some("x".into());
        both_ways(
            &Packet::ConnAck(c),
            Protocol::V5,
            &[0x20, 7, 0x00, 0x00, 0x04, 0x12, 0x00, 0x01, b'x'],
        );
    }
}
