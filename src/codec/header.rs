//! The fixed header (section 2.1): packet type, flags, remaining length. Everything checked
//! here needs only the first bytes of a packet, so [`Framer`](super::Framer) rejects a bad or
//! oversize packet before buffering its body.

use super::error::DecodeError;
use super::{PacketType, Protocol, packet_name, varint};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub kind: PacketType,
    pub flags: u8,
    /// 2..=5 bytes.
    pub header_len: usize,
    pub remaining: usize,
}

fn kind_of(nibble: u8) -> Option<PacketType> {
    Some(match nibble {
        1 => PacketType::Connect,
        2 => PacketType::ConnAck,
        3 => PacketType::Publish,
        4 => PacketType::PubAck,
        5 => PacketType::PubRec,
        6 => PacketType::PubRel,
        7 => PacketType::PubComp,
        8 => PacketType::Subscribe,
        9 => PacketType::SubAck,
        10 => PacketType::Unsubscribe,
        11 => PacketType::UnsubAck,
        12 => PacketType::PingReq,
        13 => PacketType::PingResp,
        14 => PacketType::Disconnect,
        15 => PacketType::Auth,
        _ => return None,
    })
}

/// The flags of the first byte: fixed per type [MQTT-2.1.3-1], PUBLISH's QoS not 3
/// [MQTT-3.3.1-4] and no DUP at QoS 0 [MQTT-3.3.1-2].
fn check_flags(kind: PacketType, flags: u8) -> Result<(), DecodeError> {
    match kind {
        PacketType::Publish => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(DecodeError::QoS3);
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(DecodeError::DupWithQoS0);
            }
            Ok(())
        }
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe if flags == 0b0010 => {
            Ok(())
        }
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => {
            Err(DecodeError::InvalidFlags {
                packet: packet_name(kind),
                flags,
            })
        }
        _ if flags == 0 => Ok(()),
        _ => Err(DecodeError::InvalidFlags {
            packet: packet_name(kind),
            flags,
        }),
    }
}

/// Parses the fixed header at the front of `buf`. `Ok(None)`: it is not complete yet. Errors
/// are reported as soon as the bytes showing them are present, in the order: first byte,
/// remaining length, size.
pub(crate) fn parse(buf: &[u8], max_packet_size: u32) -> Result<Option<Header>, DecodeError> {
    let Some(&b0) = buf.first() else {
        return Ok(None);
    };
    let kind = kind_of(b0 >> 4).ok_or(DecodeError::ReservedPacketType)?;
    let flags = b0 & 0x0F;
    check_flags(kind, flags)?;
    let (remaining, n) = match varint::parse(&buf[1..]) {
        varint::Parsed::Value(v, n) => (v as usize, n),
        varint::Parsed::Incomplete => return Ok(None),
        varint::Parsed::TooLong => return Err(DecodeError::RemainingLengthTooLong),
        varint::Parsed::NotMinimal => {
            return Err(DecodeError::VarintNotMinimal {
                what: "remaining length",
            });
        }
    };
    let header_len = 1 + n;
    let size = (header_len + remaining) as u64;
    if size > u64::from(max_packet_size) {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    Ok(Some(Header {
        kind,
        flags,
        header_len,
        remaining,
    }))
}

/// The checks that depend on the negotiated protocol: only CONNECT before CONNECT
/// [MQTT-3.1.0-1], no AUTH before 5.0.
pub(crate) fn check_protocol(
    kind: PacketType,
    protocol: Option<Protocol>,
) -> Result<(), DecodeError> {
    match protocol {
        None if kind != PacketType::Connect => Err(DecodeError::ExpectedConnect {
            got: packet_name(kind),
        }),
        Some(p) if !p.is_v5() && kind == PacketType::Auth => {
            Err(DecodeError::AuthNotInProtocol { protocol: p })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [MQTT-2.1.3-1] reserved flags must be exactly as the table lists them.
    #[test]
    fn mqtt_2_1_3_1_reserved_flags() {
        // PUBREL, SUBSCRIBE, UNSUBSCRIBE: 0b0010
        for b0 in [0x62u8, 0x82, 0xA2] {
            assert!(parse(&[b0, 0], 10).is_ok(), "{b0:#x}");
            assert!(matches!(
                parse(&[b0 & 0xF0, 0], 10),
                Err(DecodeError::InvalidFlags { .. })
            ));
            assert!(matches!(
                parse(&[b0 | 1, 0], 10),
                Err(DecodeError::InvalidFlags { .. })
            ));
        }
        // all other non-PUBLISH types: 0
        for t in [1u8, 2, 4, 5, 7, 9, 11, 12, 13, 14, 15] {
            assert!(parse(&[t << 4, 0], 10).is_ok());
            let err = parse(&[(t << 4) | 0b0100, 0], 10).unwrap_err();
            assert!(matches!(
                err,
                DecodeError::InvalidFlags { flags: 0b0100, .. }
            ));
            assert_eq!(err.rule(), "MQTT-2.1.3-1");
        }
    }

    /// [MQTT-3.3.1-4] a PUBLISH must not have both QoS bits set; checked from the first byte.
    #[test]
    fn mqtt_3_3_1_4_qos_3_rejected_from_first_byte() {
        let err = parse(&[0x36], 10).unwrap_err();
        assert_eq!(err, DecodeError::QoS3);
        assert_eq!(err.rule(), "MQTT-3.3.1-4");
        assert_eq!(err.reason_code(), super::super::ReasonCode::MalformedPacket);
    }

    /// [MQTT-3.3.1-2] DUP must be 0 for QoS 0.
    #[test]
    fn mqtt_3_3_1_2_dup_must_be_zero_for_qos0() {
        assert_eq!(parse(&[0x38, 0], 10), Err(DecodeError::DupWithQoS0));
        assert!(parse(&[0x3A, 0], 10).is_ok(), "DUP with QoS 1 is fine");
    }

    /// §2.1.4 the header is complete only with the last remaining-length byte.
    #[test]
    fn incomplete_header() {
        assert_eq!(parse(&[], 10), Ok(None));
        assert_eq!(parse(&[0x30], 10), Ok(None));
        assert_eq!(parse(&[0x30, 0x80], 1000), Ok(None));
        let h = parse(&[0x30, 0x80, 0x01], 1000).unwrap().unwrap();
        assert_eq!((h.header_len, h.remaining), (3, 128));
    }
}
