//! UNSUBACK (MQTT 5.0 section 3.11, 3.1.1 section 3.11): a packet identifier; in 5.0 also
//! properties and one reason code per filter. In 3.1.1 the reason codes are not written.

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::properties::{self, Context};
use super::reader::Reader;
use super::{PacketType, Properties, UnsubAck, check_pkid, check_reason, read_pkid, read_reason};

pub(crate) fn read(r: &mut Reader, v5: bool) -> Result<UnsubAck, DecodeError> {
    let pkid = read_pkid(r)?;
    if !v5 {
        return Ok(UnsubAck {
            pkid,
            reasons: Vec::new(),
            properties: Properties::default(),
        });
    }
    let properties = properties::read(r, Context::UnsubAck)?;
    let mut reasons = Vec::new();
    while !r.is_empty() {
        reasons.push(read_reason(r, PacketType::UnsubAck)?);
    }
    if reasons.is_empty() {
        return Err(DecodeError::NoReasonCodes { packet: "UNSUBACK" });
    }
    Ok(UnsubAck {
        pkid,
        reasons,
        properties,
    })
}

pub(crate) fn len(u: &UnsubAck, v5: bool) -> Result<usize, EncodeError> {
    check_pkid(u.pkid, "UNSUBACK")?;
    if !v5 {
        return Ok(2);
    }
    if u.reasons.is_empty() {
        return Err(EncodeError::NoReasonCodes { packet: "UNSUBACK" });
    }
    for &r in &u.reasons {
        check_reason(r, PacketType::UnsubAck)?;
    }
    Ok(2 + properties::block_len(&u.properties, Context::UnsubAck)? + u.reasons.len())
}

pub(crate) fn write(u: &UnsubAck, v5: bool, buf: &mut BytesMut) {
    buf.put_u16(u.pkid);
    if v5 {
        let n = properties::content_len(&u.properties, Context::UnsubAck).expect("checked by len");
        properties::write(&u.properties, n, buf);
        for r in &u.reasons {
            buf.put_u8(r.as_u8());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{both_ways, dec, enc};
    use super::super::{Packet, Protocol, ReasonCode};
    use super::*;

    /// §3.11 3.1.1: packet identifier only; 5.0: properties and reason codes.
    #[test]
    fn unsuback_both_versions() {
        let u = UnsubAck {
            pkid: 2,
            reasons: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
            properties: Properties::default(),
        };
        both_ways(
            &Packet::UnsubAck(u.clone()),
            Protocol::V5,
            &[0xB0, 5, 0, 2, 0, 0x00, 0x11],
        );
        assert_eq!(enc(&Packet::UnsubAck(u), Protocol::V3_1_1), [0xB0, 2, 0, 2]);
        let v3 = UnsubAck {
            pkid: 2,
            reasons: vec![],
            properties: Properties::default(),
        };
        both_ways(&Packet::UnsubAck(v3), Protocol::V3_1_1, &[0xB0, 2, 0, 2]);
    }

    /// §3.11.3 5.0 UNSUBACK codes only; at least one.
    #[test]
    fn unsuback_codes() {
        assert_eq!(
            dec(&[0xB0, 4, 0, 2, 0, 0x01], Some(Protocol::V5)),
            Err(DecodeError::InvalidReasonCode {
                packet: "UNSUBACK",
                code: 1
            })
        );
        assert_eq!(
            dec(&[0xB0, 3, 0, 2, 0], Some(Protocol::V5)),
            Err(DecodeError::NoReasonCodes { packet: "UNSUBACK" })
        );
    }
}
