//! Bytes to packets for [`Client::handle_bytes`]: the core keeps a codec `Framer` for the
//! current transport, bounded by our maximum packet size and started afresh with every
//! `OpenTransport`; every whole packet goes through the dispatcher (`handle.rs`) in arrival
//! order, and bytes that do not decode end the connection (5.0: DISCONNECT with the error's
//! reason code first).
//!
//! Not here: what packets mean (`handle.rs`), reading sockets (the shell).

use std::time::Instant;

use crate::codec::{Framer, Packet, ReasonCode};

use super::{Client, ConnState, DownCause};

impl Client {
    /// Bytes from the current transport, in any chunking. `received` sees every whole packet,
    /// in order, just before the core handles it (for traces and debugging).
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8], mut received: impl FnMut(&Packet)) {
        self.framer.push(bytes);
        // Bounded: each turn takes one whole packet out of the bytes pushed.
        loop {
            match self.framer.next_packet() {
                Ok(Some(packet)) => {
                    received(&packet);
                    self.handle_packet(now, packet);
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "undecodable bytes from the broker");
                    // 5.0: DISCONNECT with the reason (0x95 for a packet above our maximum
                    // size), then close.
                    self.handle_decode_error(now, e.reason_code());
                    return;
                }
            }
        }
    }

    /// The broker's bytes did not decode (malformed, too large): 5.0 sends DISCONNECT with
    /// `reason` (e.g. `MalformedPacket`, `PacketTooLarge`), then the transport is closed and the
    /// loss handled like any other.
    pub fn handle_decode_error(&mut self, now: Instant, reason: ReasonCode) {
        match self.state {
            ConnState::Handshaking | ConnState::Connected => self.protocol_error(now, reason),
            ConnState::Connecting => self.lost(now, DownCause::ProtocolError(reason), true),
            ConnState::Idle | ConnState::Backoff => {}
        }
    }

    /// A framer for a new transport: nothing of the previous one's bytes carries over.
    pub(super) fn new_framer(&mut self) {
        self.framer = Framer::new(Some(self.config.protocol), self.config.max_packet_size);
    }
}
