//! SUBACK (MQTT 5.0 section 3.9, 3.1.1 section 3.9): a packet identifier, 5.0 properties, one
//! reason code per filter. In 3.1.1 a failure is the return code 0x80.

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::properties::{self, Context};
use super::reader::Reader;
use super::{PacketType, Properties, SubAck, check_pkid, check_reason, read_pkid, read_reason};

pub(crate) fn read(r: &mut Reader, v5: bool) -> Result<SubAck, DecodeError> {
    let pkid = read_pkid(r)?;
    let properties = if v5 {
        properties::read(r, Context::SubAck)?
    } else {
        Properties::default()
    };
    let mut reasons = Vec::new();
    while !r.is_empty() {
        let reason = if v5 {
            read_reason(r, PacketType::SubAck)?
        } else {
            let code = r.u8("return code")?;
            super::reason::suback_from_v3(code).ok_or(DecodeError::InvalidReasonCode {
                packet: "SUBACK",
                code,
            })?
        };
        reasons.push(reason);
    }
    if reasons.is_empty() {
        return Err(DecodeError::NoReasonCodes { packet: "SUBACK" });
    }
    Ok(SubAck {
        pkid,
        reasons,
        properties,
    })
}

pub(crate) fn len(s: &SubAck, v5: bool) -> Result<usize, EncodeError> {
    check_pkid(s.pkid, "SUBACK")?;
    if s.reasons.is_empty() {
        return Err(EncodeError::NoReasonCodes { packet: "SUBACK" });
    }
    for &r in &s.reasons {
        check_reason(r, PacketType::SubAck)?;
    }
    let props = if v5 {
        properties::block_len(&s.properties, Context::SubAck)?
    } else {
        0
    };
    Ok(2 + props + s.reasons.len())
}

pub(crate) fn write(s: &SubAck, v5: bool, buf: &mut BytesMut) {
    buf.put_u16(s.pkid);
    if v5 {
        let n = properties::content_len(&s.properties, Context::SubAck).expect("checked by len");
        properties::write(&s.properties, n, buf);
        for r in &s.reasons {
            buf.put_u8(r.as_u8());
        }
    } else {
        for &r in &s.reasons {
            buf.put_u8(super::reason::suback_v3_return_code(r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{both_ways, dec, enc};
    use super::super::{Packet, Protocol, ReasonCode};
    use super::*;

    fn suback(reasons: Vec<ReasonCode>) -> Packet {
        Packet::SubAck(SubAck {
            pkid: 9,
            reasons,
            properties: Properties::default(),
        })
    }

    /// 3.1.1 §3.9.3 return codes 0, 1, 2 and 0x80 (failure).
    #[test]
    fn v311_suback() {
        both_ways(
            &suback(vec![ReasonCode::GrantedQoS1, ReasonCode::UnspecifiedError]),
            Protocol::V3_1_1,
            &[0x90, 4, 0, 9, 0x01, 0x80],
        );
        // every 5.0 failure is 0x80 in 3.1.1
        assert_eq!(
            enc(&suback(vec![ReasonCode::NotAuthorized]), Protocol::V3_1_1),
            [0x90, 3, 0, 9, 0x80]
        );
        assert_eq!(
            dec(&[0x90, 3, 0, 9, 0x03], Some(Protocol::V3_1_1)),
            Err(DecodeError::InvalidReasonCode {
                packet: "SUBACK",
                code: 3
            })
        );
    }

    /// 5.0 §3.9.3 SUBACK reason codes, after the property length.
    #[test]
    fn v5_suback() {
        both_ways(
            &suback(vec![
                ReasonCode::GrantedQoS2,
                ReasonCode::WildcardSubscriptionsNotSupported,
            ]),
            Protocol::V5,
            &[0x90, 5, 0, 9, 0, 0x02, 0xA2],
        );
        assert_eq!(
            dec(&[0x90, 4, 0, 9, 0, 0x04], Some(Protocol::V5)),
            Err(DecodeError::InvalidReasonCode {
                packet: "SUBACK",
                code: 4
            })
        );
    }

    /// §3.9.3 a SUBACK answers at least one filter.
    #[test]
    fn empty_suback() {
        assert_eq!(
            dec(&[0x90, 2, 0, 9], Some(Protocol::V3_1_1)),
            Err(DecodeError::NoReasonCodes { packet: "SUBACK" })
        );
        assert_eq!(
            len(
                &SubAck {
                    pkid: 1,
                    reasons: vec![],
                    properties: Properties::default()
                },
                true
            ),
            Err(EncodeError::NoReasonCodes { packet: "SUBACK" })
        );
    }
}
