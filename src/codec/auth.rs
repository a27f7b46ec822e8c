//! AUTH (MQTT 5.0 section 3.15; it does not exist in 3.1.1, see `header.rs`): a reason code
//! (0x00, 0x18, 0x19) and properties, both omitted for success without properties.
//! Not here: the authentication exchange itself.

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::properties::{self, Context};
use super::reader::Reader;
use super::{Auth, PacketType, Properties, ReasonCode, check_reason, read_reason};

pub(crate) fn read(r: &mut Reader) -> Result<Auth, DecodeError> {
    if r.is_empty() {
        return Ok(Auth::default());
    }
    let reason = read_reason(r, PacketType::Auth)?;
    let properties = if r.is_empty() {
        Properties::default()
    } else {
        properties::read(r, Context::Auth)?
    };
    Ok(Auth { reason, properties })
}

pub(crate) fn len(a: &Auth) -> Result<usize, EncodeError> {
    check_reason(a.reason, PacketType::Auth)?;
    let props = properties::content_len(&a.properties, Context::Auth)?;
    Ok(match (a.reason, props) {
        (ReasonCode::Success, 0) => 0,
        (_, 0) => 1,
        (_, n) => 1 + super::varint::len(n) + n,
    })
}

pub(crate) fn write(a: &Auth, buf: &mut BytesMut) {
    let props = properties::content_len(&a.properties, Context::Auth).expect("checked by len");
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
    use super::super::test_util::{both_ways, dec};
    use super::super::{Packet, Protocol};
    use super::*;
    use bytes::Bytes;

    /// §3.15.2 continue authentication with a method and data.
    #[test]
    fn auth_continue() {
        let mut a = Auth {
            reason: ReasonCode::ContinueAuthentication,
            ..Auth::default()
        };
        a.properties.authentication_method = Some("m".into());
        a.properties.authentication_data = Some(Bytes::from_static(b"d"));
        both_ways(
            &Packet::Auth(a),
            Protocol::V5,
            &[0xF0, 10, 0x18, 8, 0x15, 0, 1, b'm', 0x16, 0, 1, b'd'],
        );
    }

    /// §3.15.2.1 AUTH carries only 0x00, 0x18, 0x19.
    #[test]
    fn auth_reason_codes() {
        assert_eq!(
            dec(&[0xF0, 1, 0x87], Some(Protocol::V5)),
            Err(DecodeError::InvalidReasonCode {
                packet: "AUTH",
                code: 0x87
            })
        );
        both_ways(
            &Packet::Auth(Auth {
                reason: ReasonCode::ReAuthenticate,
                ..Auth::default()
            }),
            Protocol::V5,
            &[0xF0, 1, 0x19],
        );
    }
}
