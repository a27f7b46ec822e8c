//! DISCONNECT (MQTT 5.0 section 3.14, 3.1.1 section 3.14). In 3.1.1 it has no body; in 5.0 the
//! reason code and properties may be omitted (remaining length 0: normal disconnection; 1: a
//! reason code without properties).

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::properties::{self, Context};
use super::reader::Reader;
use super::{Disconnect, PacketType, Properties, ReasonCode, check_reason, read_reason};

pub(crate) fn read(r: &mut Reader, v5: bool) -> Result<Disconnect, DecodeError> {
    if !v5 || r.is_empty() {
        return Ok(Disconnect::default());
    }
    let reason = read_reason(r, PacketType::Disconnect)?;
    let properties = if r.is_empty() {
        Properties::default()
    } else {
        properties::read(r, Context::Disconnect)?
    };
    Ok(Disconnect { reason, properties })
}

pub(crate) fn len(d: &Disconnect, v5: bool) -> Result<usize, EncodeError> {
    check_reason(d.reason, PacketType::Disconnect)?;
    if !v5 {
        return Ok(0);
    }
    let props = properties::content_len(&d.properties, Context::Disconnect)?;
    Ok(match (d.reason, props) {
        (ReasonCode::Success, 0) => 0,
        (_, 0) => 1,
        (_, n) => 1 + super::varint::len(n) + n,
    })
}

pub(crate) fn write(d: &Disconnect, v5: bool, buf: &mut BytesMut) {
    if !v5 {
        return;
    }
    let props =
        properties::content_len(&d.properties, Context::Disconnect).expect("checked by len");
    if d.reason == ReasonCode::Success && props == 0 {
        return;
    }
    buf.put_u8(d.reason.as_u8());
    if props > 0 {
        properties::write(&d.properties, props, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{both_ways, dec, enc};
    use super::super::{Packet, Protocol};
    use super::*;

    /// §3.14 the short forms of 5.0 and the empty 3.1.1 DISCONNECT.
    #[test]
    fn disconnect_forms() {
        both_ways(
            &Packet::Disconnect(Disconnect::default()),
            Protocol::V3_1_1,
            &[0xE0, 0],
        );
        both_ways(
            &Packet::Disconnect(Disconnect::default()),
            Protocol::V5,
            &[0xE0, 0],
        );
        let mut d = Disconnect {
            reason: ReasonCode::DisconnectWithWillMessage,
            ..Default::default()
        };
        both_ways(
            &Packet::Disconnect(d.clone()),
            Protocol::V5,
            &[0xE0, 1, 0x04],
        );
        d.properties.session_expiry_interval = Some(0);
        both_ways(
            &Packet::Disconnect(d.clone()),
            Protocol::V5,
            &[0xE0, 7, 0x04, 5, 0x11, 0, 0, 0, 0],
        );
        assert_eq!(enc(&Packet::Disconnect(d), Protocol::V3_1_1), [0xE0, 0]);
    }

    /// §3.14.2.1 only DISCONNECT reason codes; 3.1.1 DISCONNECT has no body.
    #[test]
    fn disconnect_invalid() {
        assert_eq!(
            dec(&[0xE0, 1, 0x01], Some(Protocol::V5)),
            Err(DecodeError::InvalidReasonCode {
                packet: "DISCONNECT",
                code: 1
            })
        );
        assert_eq!(
            dec(&[0xE0, 1, 0x00], Some(Protocol::V3_1_1)),
            Err(DecodeError::TrailingBytes {
                packet: "DISCONNECT",
                count: 1
            })
        );
    }
}
