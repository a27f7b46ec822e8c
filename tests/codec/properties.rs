//! Property tests of the codec: round trips for every packet type in every protocol, framing
//! under any chunking, and truncation as "need more bytes".

use arbitrary::Unstructured;
use bytes::BytesMut;
use mqtt_lab::codec::arbitrary::{packet_types, valid_packet_of};
use mqtt_lab::codec::{Framer, Packet, Protocol, decode, encode, encoded_len};
use proptest::prelude::*;

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::V3_1),
        Just(Protocol::V3_1_1),
        Just(Protocol::V5)
    ]
}

/// A valid packet for `protocol`, of a type chosen uniformly among those of the protocol.
fn packet_in(protocol: Protocol) -> impl Strategy<Value = Packet> {
    let kinds = packet_types(protocol);
    (
        0..kinds.len(),
        proptest::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(move |(k, data)| {
            let mut u = Unstructured::new(&data);
            valid_packet_of(&mut u, protocol, kinds[k]).expect("a type of this protocol")
        })
}

fn protocol_and_packet() -> impl Strategy<Value = (Protocol, Packet)> {
    protocol().prop_flat_map(|p| (Just(p), packet_in(p)))
}

fn encoded(p: &Packet, protocol: Protocol) -> BytesMut {
    let mut buf = BytesMut::new();
    encode(p, protocol, &mut buf).expect("valid packets encode");
    buf
}

proptest! {
    /// decode(encode(p)) == p for every packet type in 3.1, 3.1.1 and 5.0, and encoded_len is
    /// the number of bytes written.
    #[test]
    fn decode_encode_round_trip((protocol, p) in protocol_and_packet()) {
        let mut buf = encoded(&p, protocol);
        prop_assert_eq!(encoded_len(&p, protocol), Ok(buf.len()));
        let decoded = decode(&mut buf, Some(protocol), u32::MAX);
        prop_assert_eq!(decoded, Ok(Some(p)));
        prop_assert!(buf.is_empty());
    }

    /// Every strict prefix of a valid packet is "need more bytes" and consumes nothing.
    #[test]
    fn every_truncation_needs_more_bytes((protocol, p) in protocol_and_packet()) {
        let bytes = encoded(&p, protocol).freeze();
        for cut in 0..bytes.len() {
            let mut prefix = BytesMut::from(&bytes[..cut]);
            prop_assert_eq!(decode(&mut prefix, Some(protocol), u32::MAX), Ok(None), "cut {}", cut);
            prop_assert_eq!(prefix.len(), cut);
        }
    }

    /// Any split of a valid stream into chunks frames to the same packets, in order; a server
    /// framer adopts the protocol of the CONNECT that opens the stream.
    #[test]
    fn any_chunking_frames_the_same_packets(
        (protocol, packets) in protocol().prop_flat_map(|p| (
            Just(p),
            proptest::collection::vec(packet_in(p), 0..8),
        )),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
        server in any::<bool>(),
    ) {
        let mut packets = packets;
        let mut framer = if server {
            // a server framer starts without a protocol and takes it from CONNECT
            let mut u = Unstructured::new(&[7; 64]);
            let c = valid_packet_of(&mut u, protocol, mqtt_lab::codec::PacketType::Connect).unwrap();
            packets.insert(0, c);
            Framer::new(None, u32::MAX)
        } else {
            Framer::new(Some(protocol), u32::MAX)
        };
        let mut stream = BytesMut::new();
        for p in &packets {
            encode(p, protocol, &mut stream).expect("valid packets encode");
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut out = Vec::new();
        for w in points.windows(2) {
            framer.push(&stream[w[0]..w[1]]);
            while let Some(p) = framer.next_packet().expect("a valid stream") {
                out.push(p);
            }
        }
        prop_assert_eq!(out, packets);
        prop_assert_eq!(framer.buffered(), 0);
        if server {
            let expected = if protocol == Protocol::V3_1 { Protocol::V3_1 } else { protocol };
            prop_assert_eq!(framer.protocol(), Some(expected));
        }
    }

    /// Arbitrary bytes never panic the decoder, and what decodes re-encodes to itself.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        mqtt_lab::codec::fuzz::decode_bytes(&data);
        mqtt_lab::codec::fuzz::framer_chunks(&data);
    }
}
