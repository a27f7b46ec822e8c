//! Inbound PUBLISH (QoS 0, 1 and 2) and PUBREL.
//!
//! QoS 1: routed, then PUBACK. QoS 2: routed on first receipt and its packet identifier kept as
//! "received" until PUBREL; a PUBLISH with a kept identifier (a resend, DUP set) is answered
//! with PUBREC again and not routed again ([MQTT-4.3.3-2] family: method B of figure 4.3 with
//! the message forwarded at once). PUBREL removes the identifier and is answered with PUBCOMP,
//! also for an unknown identifier (5.0: reason 0x92).
//!
//! Not here: topic aliases (none allowed: the broker advertises a maximum of 0), message expiry.

use std::time::Instant;

use crate::codec::{Ack, Packet, Publish, QoS, ReasonCode};

use super::close::Violation;
use super::delivery::forwarded;
use super::session::Message;
use super::topic::{self, TopicError};
use super::{Broker, ConnId};

impl Broker {
    pub(super) fn handle_publish(
        &mut self,
        _now: Instant,
        conn: ConnId,
        client_id: &str,
        p: Publish,
    ) -> Result<(), Violation> {
        if p.properties.topic_alias.is_some() {
            // Topic alias maximum is 0 ([MQTT-3.3.2-8]).
            return Err(Violation::new(
                ReasonCode::TopicAliasInvalid,
                "topic alias not allowed",
            ));
        }
        if let Err(e) = topic::check_name(&p.topic, &self.config) {
            return Err(match e {
                TopicError::Invalid => {
                    Violation::new(ReasonCode::TopicNameInvalid, "invalid topic name")
                }
                TopicError::TooLong => {
                    Violation::new(ReasonCode::TopicNameInvalid, "topic name beyond limits")
                }
            });
        }
        if (p.qos == QoS::AtMostOnce) != (p.pkid == 0) {
            return Err(Violation::new(
                ReasonCode::MalformedPacket,
                "packet identifier does not fit QoS",
            ));
        }
        if p.qos == QoS::AtMostOnce && p.dup {
            // [MQTT-3.3.1-2]
            return Err(Violation::new(
                ReasonCode::MalformedPacket,
                "DUP set on QoS 0",
            ));
        }
        if self.publish_denied(conn, client_id, &p) {
            return Ok(());
        }
        let pkid = p.pkid;
        let qos = p.qos;
        let message = Message {
            topic: p.topic,
            payload: p.payload,
            qos,
            retain: p.retain,
            properties: forwarded(p.properties),
        };
        match qos {
            QoS::AtMostOnce => self.publish_message(Some(client_id), message),
            QoS::AtLeastOnce => {
                self.publish_message(Some(client_id), message);
                self.send(conn, Packet::PubAck(Ack::new(pkid)));
            }
            QoS::ExactlyOnce => {
                let receive_maximum = usize::from(self.config.receive_maximum);
                let session = self
                    .sessions
                    .get_mut(client_id)
                    .expect("connected client has a session");
                if !session.incoming_qos2.contains(&pkid) {
                    if session.incoming_qos2.len() >= receive_maximum {
                        return Err(Violation::new(
                            ReasonCode::ReceiveMaximumExceeded,
                            "too many QoS 2 messages awaiting PUBREL",
                        ));
                    }
                    session.incoming_qos2.insert(pkid);
                    if session.is_persistent() {
                        self.dirty = true;
                    }
                    self.publish_message(Some(client_id), message);
                }
                self.send(conn, Packet::PubRec(Ack::new(pkid)));
            }
        }
        Ok(())
    }

    pub(super) fn handle_pubrel(
        &mut self,
        conn: ConnId,
        client_id: &str,
        a: Ack,
    ) -> Result<(), Violation> {
        let session = self
            .sessions
            .get_mut(client_id)
            .expect("connected client has a session");
        let known = session.incoming_qos2.remove(&a.pkid);
        if known && session.is_persistent() {
            self.dirty = true;
        }
        let v5 = self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5());
        let mut comp = Ack::new(a.pkid);
        if !known && v5 {
            comp.reason = ReasonCode::PacketIdentifierNotFound;
        }
        self.send(conn, Packet::PubComp(comp));
        Ok(())
    }
}
