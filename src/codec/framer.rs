//! The streaming framer: bytes pushed in any chunking, whole packets out.
//!
//! [`Framer::push`] appends bytes and checks the fixed header of every packet as soon as it is
//! complete; a packet above the maximum size (or with an invalid first byte or remaining
//! length) is rejected there, and neither its body nor anything after it is buffered.
//! [`Framer::next_packet`] then yields the packets before it, then the error. After any error
//! the framer is closed: it drops pushed bytes and repeats the error. Not here: reading sockets.

use bytes::BytesMut;

use super::error::DecodeError;
use super::{Packet, Protocol, decode, header};

/// Call order: `push` whatever arrived, then `next_packet` until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    protocol: Option<Protocol>,
    max_packet_size: u32,
    /// Bytes of `buf` that are whole, header-checked packets.
    scanned: usize,
    /// An error found in a fixed header past `scanned`, reported once the packets before it
    /// are; or, once `failed`, the error reported.
    error: Option<Box<DecodeError>>,
    /// `error` was reported; the framer stays closed.
    failed: bool,
}

impl Framer {
    /// `protocol` `None`: a server before CONNECT (only CONNECT is accepted, and its protocol is
    /// adopted). `max_packet_size` bounds a whole packet, fixed header included.
    pub fn new(protocol: Option<Protocol>, max_packet_size: u32) -> Framer {
        Framer {
            buf: BytesMut::new(),
            protocol,
            max_packet_size,
            scanned: 0,
            error: None,
            failed: false,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.buf.extend_from_slice(bytes);
        self.scan();
    }

    /// Checks the fixed headers of the packets not yet checked; stops at the first incomplete
    /// one. Each turn passes over one whole packet, so the loop is bounded by the buffer.
    fn scan(&mut self) {
        while self.scanned < self.buf.len() {
            match header::parse(&self.buf[self.scanned..], self.max_packet_size) {
                Ok(Some(h)) => {
                    let total = h.header_len + h.remaining;
                    if self.buf.len() - self.scanned < total {
                        return;
                    }
                    self.scanned += total;
                }
                Ok(None) => return,
                Err(e) => {
                    self.buf.truncate(self.scanned);
                    self.error = Some(Box::new(e));
                    return;
                }
            }
        }
    }

    /// The next whole packet; `Ok(None)` when more bytes are needed.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, DecodeError> {
        if self.buf.is_empty() || self.failed {
            return match &self.error {
                Some(e) => {
                    self.failed = true;
                    Err((**e).clone())
                }
                None => Ok(None),
            };
        }
        let before = self.buf.len();
        match decode(&mut self.buf, self.protocol, self.max_packet_size) {
            Ok(Some(packet)) => {
                self.scanned = self.scanned.saturating_sub(before - self.buf.len());
                if let (None, Packet::Connect(c)) = (self.protocol, &packet) {
                    self.protocol = Some(c.protocol);
                }
                if self.buf.is_empty() {
                    // Nothing left to decode: an idle connection keeps no buffer.
                    self.buf = BytesMut::new();
                }
                Ok(Some(packet))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.buf = BytesMut::new();
                self.scanned = 0;
                self.error = Some(Box::new(e.clone()));
                self.failed = true;
                Err(e)
            }
        }
    }

    /// The protocol packets are decoded in (`None` until CONNECT).
    pub fn protocol(&self) -> Option<Protocol> {
        self.protocol
    }

    /// Sets the protocol (a client, once it knows what it sent in CONNECT).
    pub fn set_protocol(&mut self, p: Protocol) {
        self.protocol = Some(p);
    }

    /// Bytes held and not yet returned as packets.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The maximum packet size in force.
    pub fn max_packet_size(&self) -> u32 {
        self.max_packet_size
    }

    /// Changes the maximum packet size (for the packets whose header is not yet checked).
    pub fn set_max_packet_size(&mut self, max: u32) {
        self.max_packet_size = max;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Ack, QoS, ReasonCode};

    const CONNECT_V5: [u8; 15] = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 0,
    ];

    /// Whole packets out of one byte at a time; "need more bytes" is not an error.
    #[test]
    fn byte_by_byte() {
        let mut f = Framer::new(None, 1024);
        let mut stream = CONNECT_V5.to_vec();
        stream.extend_from_slice(&[0x40, 3, 0, 1, 0x10, 0xC0, 0]);
        let mut out = Vec::new();
        for b in &stream {
            f.push(std::slice::from_ref(b));
            while let Some(p) = f.next_packet().unwrap() {
                out.push(p);
            }
        }
        assert_eq!(out.len(), 3);
        assert!(matches!(out[0], Packet::Connect(_)));
        // the PUBACK reason code is read because the framer adopted 5.0 from CONNECT
        let mut ack = Ack::new(1);
        ack.reason = ReasonCode::NoMatchingSubscribers;
        assert_eq!(out[1], Packet::PubAck(ack));
        assert_eq!(out[2], Packet::PingReq);
        assert_eq!(f.protocol(), Some(Protocol::V5));
        assert_eq!(f.buffered(), 0);
    }

    /// Once every whole packet is out, the framer holds no memory (an idle connection keeps
    /// no buffer); a partial packet keeps its bytes.
    #[test]
    fn nothing_held_between_packets() {
        let mut f = Framer::new(None, 1024);
        f.push(&CONNECT_V5[..10]);
        assert_eq!(f.next_packet().unwrap(), None);
        assert!(f.buf.capacity() >= 10);
        f.push(&CONNECT_V5[10..]);
        assert!(matches!(f.next_packet().unwrap(), Some(Packet::Connect(_))));
        assert_eq!(f.buf.capacity(), 0);
    }

    /// [MQTT-3.2.2-15] an oversize packet is rejected from its fixed header; its body is never
    /// buffered, and the packets before it still come out first.
    #[test]
    fn mqtt_3_2_2_15_oversize_rejected_before_body() {
        let mut f = Framer::new(Some(Protocol::V3_1_1), 64);
        let mut chunk = vec![0xC0, 0x00];
        chunk.extend_from_slice(&[0x30, 0xE8, 0x07]); // PUBLISH, remaining length 1000
        chunk.extend_from_slice(&[0xAA; 500]);
        f.push(&chunk);
        assert_eq!(f.buffered(), 2, "only the PINGREQ is held");
        f.push(&[0xAA; 500]);
        assert_eq!(f.buffered(), 2);
        assert_eq!(f.next_packet(), Ok(Some(Packet::PingReq)));
        let err = f.next_packet().unwrap_err();
        assert_eq!(
            err,
            DecodeError::PacketTooLarge {
                size: 1003,
                max: 64
            }
        );
        assert_eq!(f.next_packet(), Err(err), "the framer stays closed");
    }

    /// A malformed packet closes the framer.
    #[test]
    fn malformed_packet_closes() {
        let mut f = Framer::new(Some(Protocol::V5), 1024);
        f.push(&[0x62, 2, 0, 0, 0xC0, 0]);
        assert_eq!(
            f.next_packet(),
            Err(DecodeError::ZeroPacketId { packet: "PUBREL" })
        );
        f.push(&[0xC0, 0]);
        assert!(f.next_packet().is_err());
        assert_eq!(f.buffered(), 0);
    }

    /// [MQTT-3.1.0-1] a server framer before CONNECT rejects anything else.
    #[test]
    fn mqtt_3_1_0_1_server_framer_wants_connect() {
        let mut f = Framer::new(None, 1024);
        f.push(&[0x30, 5, 0, 1, b'a', b'h', b'i']);
        assert_eq!(
            f.next_packet(),
            Err(DecodeError::ExpectedConnect { got: "PUBLISH" })
        );
    }

    /// A client sets the protocol it connected with.
    #[test]
    fn set_protocol_changes_decoding() {
        let mut f = Framer::new(Some(Protocol::V3_1_1), 1024);
        f.set_protocol(Protocol::V5);
        f.push(&[0x32, 8, 0, 1, b'a', 0, 7, 0, b'h', b'i']);
        let Some(Packet::Publish(p)) = f.next_packet().unwrap() else {
            panic!()
        };
        assert_eq!(
            (p.qos, p.pkid, &p.payload[..]),
            (QoS::AtLeastOnce, 7, &b"hi"[..])
        );
    }
}
