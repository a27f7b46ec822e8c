//! Bytes to packets for `handle_bytes`: each connection has a codec `Framer` bounded by
//! `max_packet_size`; every whole packet goes through the dispatcher, and a decode error ends
//! the connection through `close.rs` with the error's reason code. An unsupported protocol
//! level in CONNECT is answered with CONNACK 0x01 first ([MQTT-3.1.2-2]).
//!
//! Not here: what packets mean (the handlers).

use std::time::Instant;

use crate::codec::{ConnAck, DecodeError, Packet, Properties, Protocol, ReasonCode};

use super::close::{Ending, Violation};
use super::{Broker, ConnId, Phase};

impl Broker {
    pub(super) fn feed_bytes(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.framer.push(bytes);
        // Bounded: each turn takes one whole packet out of the bytes pushed (at most
        // max_packet_size buffered), and stops once the connection is gone.
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            match c.framer.next_packet() {
                Ok(Some(packet)) => self.packet(now, conn, packet),
                Ok(None) => return,
                Err(e) => {
                    self.decode_failed(now, conn, &e);
                    return;
                }
            }
        }
    }

    fn decode_failed(&mut self, now: Instant, conn: ConnId, e: &DecodeError) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let reason = e.reason_code();
        tracing::info!(conn, error = %e, rule = e.rule(), "closing connection: bytes do not decode");
        if c.phase == Phase::AwaitingConnect && reason == ReasonCode::UnsupportedProtocolVersion {
            // The level is unknown: answer in the 3.1.1 layout, which every level can read.
            self.actions.push_back(super::Action::Send {
                conn,
                protocol: Protocol::V3_1_1,
                packet: Packet::ConnAck(ConnAck {
                    session_present: false,
                    reason,
                    properties: Properties::default(),
                }),
            });
            self.end_connection(now, conn, Ending::Refused(reason));
            return;
        }
        self.end_connection(
            now,
            conn,
            Ending::Violation(Violation::new(
                reason,
                if reason == ReasonCode::PacketTooLarge {
                    "packet larger than the maximum packet size"
                } else {
                    "malformed packet"
                },
            )),
        );
    }
}
