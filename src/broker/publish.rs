//! Inbound PUBLISH (QoS 0, 1 and 2) and PUBREL.
//!
//! QoS 1: routed, then PUBACK. QoS 2: routed on first receipt and its packet identifier kept as
//! "received" until PUBREL; a PUBLISH with a kept identifier (a resend, DUP set) is answered
//! with PUBREC again and not routed again ([MQTT-4.3.3-2] family: method B of figure 4.3 with
//! the message forwarded at once). PUBREL removes the identifier and is answered with PUBCOMP,
//! also for an unknown identifier (5.0: reason 0x92).
//!
//! Inbound topic aliases (5.0), in the connection's `codec::alias` table: the broker accepts
//! aliases 1 to `topic_alias_maximum` (the value it advertises in CONNACK, [MQTT-3.3.2-12]).
//! An alias above the maximum is answered with DISCONNECT 0x94 ([MQTT-3.3.2-9]); alias 0 does
//! not decode (a protocol error, 0x82; handed in as a packet, 0x94 too, [MQTT-3.3.2-8]); an
//! empty topic with an unknown alias with 0x82. An empty topic without any
//! alias does not decode (0x82); handed in as a packet, it is an invalid topic name (0x90).
//! Mappings belong to the connection ([MQTT-3.3.2-7]).
//!
//! Not here: outbound topic aliases (`outbound.rs`), message expiry (`session.rs`).

use std::time::Instant;

use crate::codec::alias::AliasError;
use crate::codec::topic::TopicRefusal;
use crate::codec::{Ack, Packet, Publish, QoS, ReasonCode};

use super::close::{Ending, Violation};
use super::{Broker, ConnId, StorageHealth};

impl Broker {
    pub(super) fn handle_publish(
        &mut self,
        now: Instant,
        conn: ConnId,
        client_id: &str,
        mut p: Publish,
    ) -> Result<(), Violation> {
        self.sys.traffic.publish_received += 1;
        self.resolve_alias(conn, &mut p)?;
        if let Err(e) = self.topic_limits().check_name(&p.topic) {
            return Err(match e {
                TopicRefusal::Invalid(_) => {
                    Violation::new(ReasonCode::TopicNameInvalid, "invalid topic name")
                }
                TopicRefusal::BeyondLimits => {
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
        if self.publish_denied(conn, client_id, &p)
            || self.publish_over_quota(now, conn, client_id, &p)
        {
            return Ok(());
        }
        let pkid = p.pkid;
        let qos = p.qos;
        let message = self.message(p.topic, p.payload, qos, p.retain, p.properties);
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
                if !session.incoming_qos2().contains(&pkid) {
                    if session.incoming_qos2().len() >= receive_maximum {
                        return Err(Violation::new(
                            ReasonCode::ReceiveMaximumExceeded,
                            "too many QoS 2 messages awaiting PUBREL",
                        ));
                    }
                    session.hold_incoming_qos2(pkid);
                    session.marks.qos2(pkid);
                    self.publish_message(Some(client_id), message);
                }
                self.send(conn, Packet::PubRec(Ack::new(pkid)));
            }
        }
        Ok(())
    }

    /// Refuses a new QoS 1/2 message while the store is over its size limit (`storage.rs`):
    /// 5.0 gets PUBACK/PUBREC 0x97; a 3.1.1 connection is closed, as it has no negative
    /// acknowledgement. A resent QoS 2 message already received is not new work.
    fn publish_over_quota(
        &mut self,
        now: Instant,
        conn: ConnId,
        client_id: &str,
        p: &Publish,
    ) -> bool {
        if self.storage != StorageHealth::OverQuota || p.qos == QoS::AtMostOnce {
            return false;
        }
        if p.qos == QoS::ExactlyOnce
            && self
                .sessions
                .get(client_id)
                .is_some_and(|s| s.incoming_qos2().contains(&p.pkid))
        {
            return false;
        }
        tracing::warn!(client_id, topic = %p.topic, "PUBLISH refused: storage over its size limit");
        if !self.is_v5(conn) {
            self.end_connection(now, conn, Ending::StorageFailed { full: true });
            return true;
        }
        let mut ack = Ack::new(p.pkid);
        ack.reason = ReasonCode::QuotaExceeded;
        ack.properties.reason_string = Some("storage quota exceeded".to_owned());
        self.send(
            conn,
            if p.qos == QoS::AtLeastOnce {
                Packet::PubAck(ack)
            } else {
                Packet::PubRec(ack)
            },
        );
        true
    }

    /// Applies the inbound topic alias of `p`, if any (see the module documentation).
    fn resolve_alias(&mut self, conn: ConnId, p: &mut Publish) -> Result<(), Violation> {
        let c = self
            .conns
            .get_mut(&conn)
            .expect("connection checked by the dispatcher");
        c.aliases_in.resolve(p).map_err(|e| match e {
            AliasError::Invalid => {
                Violation::new(e.reason_code(), "topic alias 0 or above the maximum")
            }
            AliasError::Unknown => Violation::protocol("unknown topic alias"),
        })
    }

    pub(super) fn handle_pubrel(
        &mut self,
        conn: ConnId,
        client_id: &str,
        a: Ack,
    ) -> Result<(), Violation> {
        let known = self
            .sessions
            .get_mut(client_id)
            .expect("connected client has a session")
            .pubrel(a.pkid);
        let v5 = self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5());
        let mut comp = Ack::new(a.pkid);
        if !known && v5 {
            comp.reason = ReasonCode::PacketIdentifierNotFound;
            comp.properties.reason_string = Some("no QoS 2 message awaits PUBREL".to_owned());
        }
        self.send(conn, Packet::PubComp(comp));
        Ok(())
    }
}
