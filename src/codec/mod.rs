//! The MQTT 3.1.1 and 5.0 wire format, sans-IO: no sockets, no clock.
//!
//! - [`encode`] / [`encoded_len`] write one [`Packet`] for a [`Protocol`].
//! - [`decode`] takes one whole packet from the front of a buffer; [`Framer`] does the same for
//!   bytes arriving in any chunking and rejects an oversize packet from its fixed header.
//! - Every rule the specifications demand of the bytes is checked on both sides; a failure is a
//!   [`DecodeError`] (naming the rule and its MQTT 5.0 reason code) or an [`EncodeError`].
//! - [`topic`]: the topic rules (names, filters, limits, matching) and their wording.
//!   [`alias`]: the 5.0 topic alias tables both cores keep per connection. [`reason`]:
//!   reason-code tables.
//! - [`fuzz`] and [`arbitrary`]: the entry points of the fuzz targets and generators of valid
//!   packets for property tests.
//!
//! One file per packet (`connect.rs`, `publish.rs`, ...; the four acknowledgements of the
//! publish flow share `ack.rs`; PINGREQ and PINGRESP have no body and live here). Not here: what packets
//! mean (sessions, flow control, when to use a topic alias), which the broker and client implement.
//!
//! For MQTT 3.1.1 (and 3.1) the 5.0-only fields are not written: properties are ignored, reason
//! codes become the 3.1.1 return codes of CONNACK and SUBACK (see [`reason`]) and are dropped
//! elsewhere; decoding fills the defaults. PUBLISH at QoS 0 never writes its packet identifier.

pub mod alias;
pub mod arbitrary;
mod error;
mod framer;
pub mod fuzz;
mod header;
mod properties;
mod reader;
pub mod reason;
pub mod topic;
pub mod types;
pub mod varint;
mod writer;

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod suback;
mod subscribe;
mod unsuback;
mod unsubscribe;

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub use error::{DecodeError, EncodeError};
pub use framer::Framer;
pub use topic::TopicError;
pub use types::*;

use reader::Reader;

/// The largest packet MQTT can express, in bytes: a one-byte packet type, a four-byte remaining
/// length, and the largest remaining length it can state ([`varint::MAX`]).
pub const MAX_PACKET_SIZE: u32 = 1 + 4 + varint::MAX;

/// The name of a packet type as the specifications spell it ("PUBLISH").
pub fn packet_name(kind: PacketType) -> &'static str {
    match kind {
        PacketType::Connect => "CONNECT",
        PacketType::ConnAck => "CONNACK",
        PacketType::Publish => "PUBLISH",
        PacketType::PubAck => "PUBACK",
        PacketType::PubRec => "PUBREC",
        PacketType::PubRel => "PUBREL",
        PacketType::PubComp => "PUBCOMP",
        PacketType::Subscribe => "SUBSCRIBE",
        PacketType::SubAck => "SUBACK",
        PacketType::Unsubscribe => "UNSUBSCRIBE",
        PacketType::UnsubAck => "UNSUBACK",
        PacketType::PingReq => "PINGREQ",
        PacketType::PingResp => "PINGRESP",
        PacketType::Disconnect => "DISCONNECT",
        PacketType::Auth => "AUTH",
    }
}

/// The remaining length of `packet`, validating everything the sender owes (CONNECT is sized
/// in the protocol it names).
fn body_len(packet: &Packet, protocol: Protocol) -> Result<usize, EncodeError> {
    let v5 = protocol.is_v5();
    let len = match packet {
        Packet::Connect(c) => connect::len(c)?,
        Packet::ConnAck(c) => connack::len(c, v5)?,
        Packet::Publish(p) => publish::len(p, v5)?,
        Packet::PubAck(a) => ack::len(a, PacketType::PubAck, v5)?,
        Packet::PubRec(a) => ack::len(a, PacketType::PubRec, v5)?,
        Packet::PubRel(a) => ack::len(a, PacketType::PubRel, v5)?,
        Packet::PubComp(a) => ack::len(a, PacketType::PubComp, v5)?,
        Packet::Subscribe(s) => subscribe::len(s, v5)?,
        Packet::SubAck(s) => suback::len(s, v5)?,
        Packet::Unsubscribe(u) => unsubscribe::len(u, v5)?,
        Packet::UnsubAck(u) => unsuback::len(u, v5)?,
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => disconnect::len(d, v5)?,
        Packet::Auth(a) => {
            if !v5 {
                return Err(EncodeError::NotInProtocol {
                    packet: "AUTH",
                    protocol,
                });
            }
            auth::len(a)?
        }
    };
    if len > varint::MAX as usize {
        return Err(EncodeError::PacketTooLarge { len });
    }
    Ok(len)
}

/// The first byte of a fixed header: the packet type and its flags.
#[inline(always)]
fn first_byte(kind: PacketType, flags: u8) -> u8 {
    ((kind as u8) << 4) | flags
}

/// The fixed-header flags of a PUBLISH.
#[inline(always)]
fn publish_flags(p: &Publish) -> u8 {
    (u8::from(p.dup) << 3) | (p.qos.as_u8() << 1) | u8::from(p.retain)
}

/// Writes a fixed header for a body of `len` bytes (already checked to fit) and reserves room
/// for the body. The common header of two bytes is one store, not a copy.
#[inline(always)]
fn put_fixed_header(buf: &mut BytesMut, first: u8, len: usize) {
    buf.reserve(1 + varint::len(len) + len);
    if len < 0x80 {
        buf.put_u16(u16::from_be_bytes([first, len as u8]));
    } else {
        buf.put_u8(first);
        varint::write(buf, len);
    }
}

/// Writes `packet` for `protocol` (CONNECT is written in the protocol it names).
///
/// Each packet type is sized (which validates it) and written in one arm, so a packet costs
/// one dispatch on its type; [`encoded_len`] sizes through the same per-packet functions.
pub fn encode(packet: &Packet, protocol: Protocol, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let v5 = protocol.is_v5();
    macro_rules! framed {
        ($kind:expr, $flags:expr, $len:expr, $write:expr) => {{
            let len = $len;
            if len > varint::MAX as usize {
                return Err(EncodeError::PacketTooLarge { len });
            }
            put_fixed_header(buf, first_byte($kind, $flags), len);
            let start = buf.len();
            let () = $write;
            debug_assert_eq!(
                buf.len() - start,
                len,
                "{:?} wrote a different length",
                $kind
            );
            Ok(())
        }};
    }
    use PacketType as T;
    match packet {
        Packet::Connect(c) => framed!(T::Connect, 0, connect::len(c)?, connect::write(c, buf)),
        Packet::ConnAck(c) => framed!(
            T::ConnAck,
            0,
            connack::len(c, v5)?,
            connack::write(c, v5, buf)
        ),
        Packet::Publish(p) => framed!(
            T::Publish,
            publish_flags(p),
            publish::len(p, v5)?,
            publish::write(p, v5, buf)
        ),
        Packet::PubAck(a) => framed!(
            T::PubAck,
            0,
            ack::len(a, T::PubAck, v5)?,
            ack::write(a, T::PubAck, v5, buf)
        ),
        Packet::PubRec(a) => framed!(
            T::PubRec,
            0,
            ack::len(a, T::PubRec, v5)?,
            ack::write(a, T::PubRec, v5, buf)
        ),
        Packet::PubRel(a) => framed!(
            T::PubRel,
            0b0010,
            ack::len(a, T::PubRel, v5)?,
            ack::write(a, T::PubRel, v5, buf)
        ),
        Packet::PubComp(a) => framed!(
            T::PubComp,
            0,
            ack::len(a, T::PubComp, v5)?,
            ack::write(a, T::PubComp, v5, buf)
        ),
        Packet::Subscribe(s) => framed!(
            T::Subscribe,
            0b0010,
            subscribe::len(s, v5)?,
            subscribe::write(s, v5, buf)
        ),
        Packet::SubAck(s) => framed!(T::SubAck, 0, suback::len(s, v5)?, suback::write(s, v5, buf)),
        Packet::Unsubscribe(u) => framed!(
            T::Unsubscribe,
            0b0010,
            unsubscribe::len(u, v5)?,
            unsubscribe::write(u, v5, buf)
        ),
        Packet::UnsubAck(u) => framed!(
            T::UnsubAck,
            0,
            unsuback::len(u, v5)?,
            unsuback::write(u, v5, buf)
        ),
        Packet::PingReq => framed!(T::PingReq, 0, 0, ()),
        Packet::PingResp => framed!(T::PingResp, 0, 0, ()),
        Packet::Disconnect(d) => framed!(
            T::Disconnect,
            0,
            disconnect::len(d, v5)?,
            disconnect::write(d, v5, buf)
        ),
        Packet::Auth(a) => {
            if !v5 {
                return Err(EncodeError::NotInProtocol {
                    packet: "AUTH",
                    protocol,
                });
            }
            framed!(T::Auth, 0, auth::len(a)?, auth::write(a, buf))
        }
    }
}

/// The size of the whole encoded packet, fixed header included.
pub fn encoded_len(packet: &Packet, protocol: Protocol) -> Result<usize, EncodeError> {
    let len = body_len(packet, protocol)?;
    Ok(1 + varint::len(len) + len)
}

/// Decodes one whole packet from the front of `buf`, consuming it on success. `Ok(None)` means
/// more bytes are needed (nothing is consumed). `protocol` `None` accepts only CONNECT (a server
/// before CONNECT); CONNECT is decoded in the protocol it names whatever `protocol` says.
/// `max_packet_size` bounds the whole packet, fixed header included, and is checked as soon as
/// the fixed header is complete.
pub fn decode(
    buf: &mut BytesMut,
    protocol: Option<Protocol>,
    max_packet_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    let Some(h) = header::parse(buf, max_packet_size)? else {
        return Ok(None);
    };
    header::check_protocol(h.kind, protocol)?;
    let total = h.header_len + h.remaining;
    if buf.len() < total {
        return Ok(None);
    }
    let mut frame = buf.split_to(total).freeze();
    frame.advance(h.header_len);
    read_body(h, protocol, frame)
}

/// Reads the body; each packet is built straight into the returned value once the reader is
/// known to be exhausted (the packet model is large, and moving it is not free).
#[inline]
fn read_body(
    h: header::Header,
    protocol: Option<Protocol>,
    frame: Bytes,
) -> Result<Option<Packet>, DecodeError> {
    let mut r = Reader::new(frame, packet_name(h.kind));
    let v5 = protocol == Some(Protocol::V5);
    macro_rules! whole {
        ($variant:ident, $read:expr) => {{
            let body = $read?;
            r.finish()?;
            Ok(Some(Packet::$variant(body)))
        }};
    }
    match h.kind {
        PacketType::Connect => whole!(Connect, connect::read(&mut r)),
        PacketType::ConnAck => whole!(ConnAck, connack::read(&mut r, v5)),
        PacketType::Publish => whole!(Publish, publish::read(&mut r, h.flags, v5)),
        PacketType::PubAck => whole!(PubAck, ack::read(&mut r, h.kind, v5)),
        PacketType::PubRec => whole!(PubRec, ack::read(&mut r, h.kind, v5)),
        PacketType::PubRel => whole!(PubRel, ack::read(&mut r, h.kind, v5)),
        PacketType::PubComp => whole!(PubComp, ack::read(&mut r, h.kind, v5)),
        PacketType::Subscribe => whole!(Subscribe, subscribe::read(&mut r, v5)),
        PacketType::SubAck => whole!(SubAck, suback::read(&mut r, v5)),
        PacketType::Unsubscribe => whole!(Unsubscribe, unsubscribe::read(&mut r, v5)),
        PacketType::UnsubAck => whole!(UnsubAck, unsuback::read(&mut r, v5)),
        PacketType::PingReq => r.finish().map(|()| Some(Packet::PingReq)),
        PacketType::PingResp => r.finish().map(|()| Some(Packet::PingResp)),
        PacketType::Disconnect => whole!(Disconnect, disconnect::read(&mut r, v5)),
        PacketType::Auth => whole!(Auth, auth::read(&mut r)),
    }
}

/// Reads a packet identifier that must not be 0 [MQTT-2.2.1-3].
pub(crate) fn read_pkid(r: &mut Reader) -> Result<u16, DecodeError> {
    let pkid = r.u16("packet identifier")?;
    if pkid == 0 {
        return Err(DecodeError::ZeroPacketId { packet: r.packet() });
    }
    Ok(pkid)
}

/// Checks a packet identifier to be written [MQTT-2.2.1-3].
pub(crate) fn check_pkid(pkid: u16, packet: &'static str) -> Result<(), EncodeError> {
    if pkid == 0 {
        return Err(EncodeError::ZeroPacketId { packet });
    }
    Ok(())
}

/// Reads a 5.0 reason code that `kind` may carry.
pub(crate) fn read_reason(r: &mut Reader, kind: PacketType) -> Result<ReasonCode, DecodeError> {
    let code = r.u8("reason code")?;
    match reason::from_u8(code) {
        Some(rc) if reason::allowed_in(kind, rc) => Ok(rc),
        _ => Err(DecodeError::InvalidReasonCode {
            packet: packet_name(kind),
            code,
        }),
    }
}

/// Checks a reason code to be written in `kind`.
pub(crate) fn check_reason(code: ReasonCode, kind: PacketType) -> Result<(), EncodeError> {
    if !reason::allowed_in(kind, code) {
        return Err(EncodeError::ReasonNotAllowed {
            packet: packet_name(kind),
            code,
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// Encodes, checks `encoded_len`, and returns the bytes.
    pub(crate) fn enc(p: &Packet, protocol: Protocol) -> Vec<u8> {
        let mut buf = BytesMut::new();
        encode(p, protocol, &mut buf).expect("encodes");
        assert_eq!(encoded_len(p, protocol).unwrap(), buf.len());
        buf.to_vec()
    }

    /// Decodes exactly one whole packet from `bytes`.
    pub(crate) fn dec(bytes: &[u8], protocol: Option<Protocol>) -> Result<Packet, DecodeError> {
        let mut buf = BytesMut::from(bytes);
        let p = decode(&mut buf, protocol, u32::MAX)?.expect("a whole packet");
        assert!(buf.is_empty(), "the whole packet is consumed");
        Ok(p)
    }

    /// Both directions: `p` encodes to `bytes` and `bytes` decodes to `p`.
    pub(crate) fn both_ways(p: &Packet, protocol: Protocol, bytes: &[u8]) {
        assert_eq!(enc(p, protocol), bytes, "encoding of {p:?}");
        assert_eq!(
            dec(bytes, Some(protocol)).as_ref(),
            Ok(p),
            "decoding of {bytes:02x?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    /// §2.1.4 a packet is consumed only once whole; a partial one leaves the buffer untouched.
    #[test]
    fn partial_packet_needs_more_bytes() {
        let mut buf = BytesMut::from(&[0xC0u8][..]);
        assert_eq!(decode(&mut buf, Some(Protocol::V5), 100), Ok(None));
        assert_eq!(buf.len(), 1);
        buf.extend_from_slice(&[0x00, 0xD0, 0x00]);
        assert_eq!(
            decode(&mut buf, Some(Protocol::V5), 100),
            Ok(Some(Packet::PingReq))
        );
        assert_eq!(
            decode(&mut buf, Some(Protocol::V5), 100),
            Ok(Some(Packet::PingResp))
        );
        assert_eq!(decode(&mut buf, Some(Protocol::V5), 100), Ok(None));
    }

    /// [MQTT-3.2.2-15] the maximum packet size counts the whole packet and is checked from the
    /// fixed header alone.
    #[test]
    fn mqtt_3_2_2_15_packet_too_large_from_fixed_header() {
        // PUBLISH with remaining length 200: 203 bytes in all, only the header present
        let mut buf = BytesMut::from(&[0x30u8, 0xC8, 0x01][..]);
        let err = decode(&mut buf, Some(Protocol::V5), 202).unwrap_err();
        assert_eq!(
            err,
            DecodeError::PacketTooLarge {
                size: 203,
                max: 202
            }
        );
        assert_eq!(err.reason_code(), ReasonCode::PacketTooLarge);
        assert_eq!(decode(&mut buf, Some(Protocol::V5), 203), Ok(None));
    }

    /// §1.5.5 a remaining length above 268,435,455 cannot be expressed: such a packet is refused
    /// before anything is written, and sized as refused; a body of exactly the maximum is sized.
    #[test]
    fn encode_refuses_body_over_varint_max() {
        let publish = |payload_len: usize| {
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: "t".into(),
                pkid: 0,
                properties: Properties::default(),
                // zeroed pages are not touched: no memory is used for them
                payload: Bytes::from(vec![0u8; payload_len]),
            })
        };
        let max = varint::MAX as usize;
        let over = publish(max - 3 + 1);
        let mut buf = BytesMut::from(&b"kept"[..]);
        assert_eq!(
            encode(&over, Protocol::V3_1_1, &mut buf),
            Err(EncodeError::PacketTooLarge { len: max + 1 })
        );
        assert_eq!(&buf[..], b"kept");
        assert_eq!(
            encoded_len(&over, Protocol::V5),
            Err(EncodeError::PacketTooLarge { len: max + 2 }),
            "5.0 adds the properties' length"
        );
        assert_eq!(
            encoded_len(&publish(max - 3), Protocol::V3_1_1),
            Ok(1 + 4 + max)
        );
    }

    /// [MQTT-3.1.0-1] before CONNECT only CONNECT is accepted.
    #[test]
    fn mqtt_3_1_0_1_first_packet_must_be_connect() {
        let err = dec(&[0xC0, 0x00], None).unwrap_err();
        assert_eq!(err, DecodeError::ExpectedConnect { got: "PINGREQ" });
        assert_eq!(err.rule(), "MQTT-3.1.0-1");
        assert_eq!(err.reason_code(), ReasonCode::ProtocolError);
    }

    /// 3.1.1 §2.2.1 packet type 15 is reserved in 3.1.1; AUTH cannot be written there.
    #[test]
    fn auth_only_in_v5() {
        assert!(matches!(
            dec(&[0xF0, 0x00], Some(Protocol::V3_1_1)),
            Err(DecodeError::AuthNotInProtocol { .. })
        ));
        assert_eq!(
            dec(&[0xF0, 0x00], Some(Protocol::V5)),
            Ok(Packet::Auth(Auth::default()))
        );
        let mut buf = BytesMut::new();
        assert!(matches!(
            encode(&Packet::Auth(Auth::default()), Protocol::V3_1_1, &mut buf),
            Err(EncodeError::NotInProtocol { .. })
        ));
        assert!(buf.is_empty(), "nothing written on error");
    }

    /// §1.5.5 a remaining length of more than four bytes is malformed.
    #[test]
    fn remaining_length_longer_than_four_bytes() {
        let err = dec(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], Some(Protocol::V5)).unwrap_err();
        assert_eq!(err, DecodeError::RemainingLengthTooLong);
        assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
    }

    /// [MQTT-1.5.5-1] the remaining length uses the fewest bytes.
    #[test]
    fn mqtt_1_5_5_1_remaining_length_minimal() {
        let err = dec(&[0xC0, 0x80, 0x00], Some(Protocol::V5)).unwrap_err();
        assert_eq!(
            err,
            DecodeError::VarintNotMinimal {
                what: "remaining length"
            }
        );
    }

    /// §2.1.2 packet type 0 is reserved.
    #[test]
    fn packet_type_zero_is_reserved() {
        assert_eq!(
            dec(&[0x00, 0x00], Some(Protocol::V5)),
            Err(DecodeError::ReservedPacketType)
        );
    }

    /// [MQTT-2.1.3-1] PINGREQ/PINGRESP carry no body; bytes left over are malformed.
    #[test]
    fn ping_with_a_body_is_malformed() {
        both_ways(&Packet::PingReq, Protocol::V3_1_1, &[0xC0, 0x00]);
        both_ways(&Packet::PingResp, Protocol::V5, &[0xD0, 0x00]);
        assert_eq!(
            dec(&[0xC0, 0x01, 0x00], Some(Protocol::V5)),
            Err(DecodeError::TrailingBytes {
                packet: "PINGREQ",
                count: 1
            })
        );
    }
}
