//! Acknowledgements from a subscriber for outbound QoS 1/2 messages: PUBACK, PUBREC, PUBCOMP.
//! Each completed message frees a slot in the inflight window, which the queue then fills.
//!
//! An acknowledgement for an identifier not in flight is ignored, except PUBREC, which is
//! answered with PUBREL (5.0: reason 0x92) so the client can finish its side.
//!
//! Not here: PUBREL from a publisher (`publish.rs`).

use crate::codec::{Ack, Packet, ReasonCode};

use super::close::Violation;
use super::{Broker, ConnId};

impl Broker {
    pub(super) fn handle_puback(
        &mut self,
        conn: ConnId,
        client_id: &str,
        a: Ack,
    ) -> Result<(), Violation> {
        if !self.complete_and_pump(conn, client_id, |s| s.puback(a.pkid)) {
            tracing::debug!(
                client_id,
                pkid = a.pkid,
                "PUBACK for no QoS 1 message in flight: ignored"
            );
        }
        Ok(())
    }

    pub(super) fn handle_pubrec(
        &mut self,
        conn: ConnId,
        client_id: &str,
        a: Ack,
    ) -> Result<(), Violation> {
        let release = !a.reason.is_error();
        let v5 = self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5());
        let s = self
            .sessions
            .get_mut(client_id)
            .expect("connected client has a session");
        if s.pubrec(a.pkid, release) {
            if release {
                self.send(conn, Packet::PubRel(Ack::new(a.pkid)));
            } else {
                self.pump(client_id);
            }
        } else if release {
            tracing::debug!(
                client_id,
                pkid = a.pkid,
                "PUBREC for no QoS 2 message in flight"
            );
            let mut rel = Ack::new(a.pkid);
            if v5 {
                rel.reason = ReasonCode::PacketIdentifierNotFound;
                rel.properties.reason_string = Some("no QoS 2 message in flight".to_owned());
            }
            self.send(conn, Packet::PubRel(rel));
        }
        Ok(())
    }

    pub(super) fn handle_pubcomp(
        &mut self,
        conn: ConnId,
        client_id: &str,
        a: Ack,
    ) -> Result<(), Violation> {
        if !self.complete_and_pump(conn, client_id, |s| s.pubcomp(a.pkid)) {
            tracing::debug!(
                client_id,
                pkid = a.pkid,
                "PUBCOMP for no PUBREL in flight: ignored"
            );
        }
        Ok(())
    }
}
