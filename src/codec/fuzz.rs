//! Fuzz entry points, compiled with the library so they never rot. Each target in
//! `fuzz/fuzz_targets/` is one line calling one of these; `tests/codec/fuzz_regressions.rs`
//! replays the kept inputs through them. They panic on any violated property:
//!
//! - decoding never panics; whatever decodes re-encodes, to the same length `encoded_len`
//!   reports, and decodes again to the same packet;
//! - the [`Framer`] fed any chunking yields exactly what [`decode`] yields on the whole input,
//!   the same packets and the same error;
//! - a generated valid packet round-trips exactly, and every strict prefix of it is
//!   "need more bytes".

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;

use super::arbitrary::ValidPacket;
use super::{DecodeError, Framer, Packet, Protocol, decode, encode, encoded_len};

/// The maximum packet sizes the byte-level targets choose from.
const MAX_SIZES: [u32; 4] = [u32::MAX, 1 << 16, 256, 16];

fn selector(b: u8) -> (Option<Protocol>, u32) {
    let protocol = match b % 4 {
        0 => None,
        1 => Some(Protocol::V3_1_1),
        2 => Some(Protocol::V5),
        _ => Some(Protocol::V3_1),
    };
    (protocol, MAX_SIZES[usize::from(b >> 2) % MAX_SIZES.len()])
}

/// Encodes a decoded packet again and checks it decodes to the same packet.
fn check_reencodes(packet: &Packet, protocol: Option<Protocol>) {
    let protocol = match packet {
        Packet::Connect(c) => c.protocol,
        _ => protocol.expect("only CONNECT decodes without a protocol"),
    };
    let mut out = BytesMut::new();
    if let Err(e) = encode(packet, protocol, &mut out) {
        panic!("decoded {packet:?} does not encode for {protocol}: {e}");
    }
    assert_eq!(
        encoded_len(packet, protocol),
        Ok(out.len()),
        "encoded_len of {packet:?}"
    );
    let again = decode(&mut out, Some(protocol), u32::MAX);
    assert_eq!(
        again.as_ref(),
        Ok(&Some(packet.clone())),
        "re-decoding {packet:?}"
    );
    assert!(out.is_empty(), "re-decoding {packet:?} leaves bytes");
}

/// Decodes a whole stream the way a connection does: protocol adopted from CONNECT, stopping at
/// the first error or incomplete packet. Checks each packet re-encodes.
fn decode_stream(
    data: &[u8],
    mut protocol: Option<Protocol>,
    max: u32,
) -> (Vec<Packet>, Option<DecodeError>) {
    let mut buf = BytesMut::from(data);
    let mut packets = Vec::new();
    // each turn consumes at least two bytes or stops
    for _ in 0..=data.len() {
        match decode(&mut buf, protocol, max) {
            Ok(Some(p)) => {
                check_reencodes(&p, protocol);
                if let (None, Packet::Connect(c)) = (protocol, &p) {
                    protocol = Some(c.protocol);
                }
                packets.push(p);
            }
            Ok(None) => return (packets, None),
            Err(e) => {
                let _ = (e.reason_code(), e.rule(), e.to_string());
                return (packets, Some(e));
            }
        }
    }
    unreachable!("decode made no progress")
}

/// Arbitrary bytes: the first byte picks the protocol (or none: a server before CONNECT) and a
/// maximum packet size, the rest is decoded as a stream.
pub fn decode_bytes(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (protocol, max) = selector(first);
    decode_stream(rest, protocol, max);
}

/// Arbitrary bytes decoded as an MQTT 3.1.1 stream.
pub fn decode_v311(data: &[u8]) {
    decode_stream(data, Some(Protocol::V3_1_1), u32::MAX);
}

/// Arbitrary bytes decoded as an MQTT 5.0 stream.
pub fn decode_v5(data: &[u8]) {
    decode_stream(data, Some(Protocol::V5), u32::MAX);
}

/// Arbitrary bytes fed to a [`Framer`] in chunks: the first byte picks protocol and maximum
/// size, the second seeds the chunk sizes; the result must equal decoding the whole stream.
pub fn framer_chunks(data: &[u8]) {
    let [first, seed, stream @ ..] = data else {
        return;
    };
    let (protocol, max) = selector(*first);
    let expected = decode_stream(stream, protocol, max);
    let mut framer = Framer::new(protocol, max);
    let mut packets = Vec::new();
    let mut error = None;
    let mut state = u32::from(*seed) | 1;
    let mut rest = stream;
    'feed: loop {
        loop {
            match framer.next_packet() {
                Ok(Some(p)) => packets.push(p),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
        if rest.is_empty() {
            break;
        }
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (((state >> 16) % 24) as usize + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        framer.push(chunk);
        rest = tail;
    }
    assert_eq!(
        (packets, error),
        expected,
        "framer and whole-stream decoding disagree"
    );
}

/// Structure-aware: a generated valid packet must round-trip exactly, its encoded length must be
/// what `encoded_len` says, and every strict prefix must decode to "need more bytes".
pub fn round_trip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(ValidPacket { protocol, packet }) = ValidPacket::arbitrary(&mut u) else {
        return;
    };
    let mut buf = BytesMut::new();
    if let Err(e) = encode(&packet, protocol, &mut buf) {
        panic!("valid {packet:?} does not encode for {protocol}: {e}");
    }
    assert_eq!(encoded_len(&packet, protocol), Ok(buf.len()));
    let bytes = buf.clone().freeze();
    let decoded = decode(&mut buf, Some(protocol), u32::MAX);
    assert_eq!(
        decoded,
        Ok(Some(packet.clone())),
        "round trip for {protocol}"
    );
    assert!(buf.is_empty());
    let step = (bytes.len() / 64).max(1);
    for cut in (0..bytes.len()).step_by(step) {
        let mut prefix = BytesMut::from(&bytes[..cut]);
        assert_eq!(
            decode(&mut prefix, Some(protocol), u32::MAX),
            Ok(None),
            "prefix of {cut}"
        );
        assert_eq!(prefix.len(), cut, "a prefix is not consumed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry points accept the empty input and simple streams.
    #[test]
    fn entry_points_on_simple_inputs() {
        for f in [
            decode_bytes,
            decode_v311,
            decode_v5,
            framer_chunks,
            round_trip,
        ] {
            f(&[]);
            f(&[0x01, 0x05, 0xC0, 0x00, 0xD0, 0x00, 0x30]);
        }
    }

    /// A framer check that fails would panic: an oversize packet after a good one agrees.
    #[test]
    fn framer_agrees_on_oversize() {
        // selector 0b1101 = V3_1_1 with max 256; a PINGREQ then a PUBLISH of 1003 bytes
        let mut data = vec![0b1101, 7, 0xC0, 0x00, 0x30, 0xE8, 0x07];
        data.extend_from_slice(&[0; 64]);
        let (packets, err) = decode_stream(&data[2..], Some(Protocol::V3_1_1), 256);
        assert_eq!(packets, vec![Packet::PingReq]);
        assert!(matches!(err, Some(DecodeError::PacketTooLarge { .. })));
        framer_chunks(&data);
    }
}
