//! Inbound packet dispatch: one method per packet type the broker may send, and the one place
//! that decides which broker mistakes are protocol errors (and with which reason code).
//!
//! Lenient where the specification lets a late or repeated acknowledgement happen (a PUBACK
//! for an identifier no longer in flight is ignored); strict where state would go wrong.

use std::time::Instant;

use crate::codec::{Ack, ConnAck, Packet, Properties, Publish, QoS, ReasonCode, SubAck, UnsubAck};

use super::events::{ClientEvent, DownCause, LostReason};
use super::inbound::Qos2Publish;
use super::inflight::Stage;
use super::{BrokerLimits, Client, ConnState, MAX_PACKET_SIZE};

impl Client {
    /// A packet decoded from the current transport, in arrival order.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) {
        match self.state {
            ConnState::Handshaking => match packet {
                Packet::ConnAck(ack) => self.on_connack(now, ack),
                // [MQTT-3.2.0-1] the first packet from the server must be CONNACK.
                _ => self.protocol_error(now, ReasonCode::ProtocolError),
            },
            ConnState::Connected => {
                self.keepalive.on_received(now);
                match packet {
                    Packet::Publish(p) => self.on_publish(now, p),
                    Packet::PubAck(a) => self.on_puback(now, a),
                    Packet::PubRec(a) => self.on_pubrec(now, a),
                    Packet::PubRel(a) => self.on_pubrel(now, a),
                    Packet::PubComp(a) => self.on_pubcomp(now, a),
                    Packet::SubAck(s) => self.on_suback(now, s),
                    Packet::UnsubAck(u) => self.on_unsuback(now, u),
                    Packet::PingResp => {}
                    Packet::Disconnect(d) => {
                        self.lost(now, DownCause::ServerDisconnect(d.reason), true)
                    }
                    Packet::ConnAck(_)
                    | Packet::Connect(_)
                    | Packet::Subscribe(_)
                    | Packet::Unsubscribe(_)
                    | Packet::PingReq
                    | Packet::Auth(_) => self.protocol_error(now, ReasonCode::ProtocolError),
                }
            }
            ConnState::Idle | ConnState::Connecting | ConnState::Backoff => {
                tracing::debug!(?packet, state = ?self.state, "packet without a live connection; ignored")
            }
        }
    }

    fn on_connack(&mut self, now: Instant, ack: ConnAck) {
        if ack.reason.is_error() {
            self.lost(now, DownCause::Refused(ack.reason), true);
            return;
        }
        // [MQTT-3.2.2-4] (5.0) a client without session state that gets session present 1
        // must close; with clean start we never have one.
        if self.config.clean_start && ack.session_present {
            self.protocol_error(now, ReasonCode::ProtocolError);
            return;
        }
        let mut keep_alive = self.config.keep_alive;
        self.broker = BrokerLimits::default();
        if self.protocol().is_v5() {
            let p = &ack.properties;
            if p.receive_maximum == Some(0) || p.maximum_packet_size == Some(0) {
                // [MQTT-3.2.2-?] 0 is not a valid receive maximum or maximum packet size.
                self.protocol_error(now, ReasonCode::ProtocolError);
                return;
            }
            self.broker = BrokerLimits {
                receive_maximum: p.receive_maximum.unwrap_or(u16::MAX),
                max_packet_size: p.maximum_packet_size.unwrap_or(MAX_PACKET_SIZE),
                maximum_qos: p
                    .maximum_qos
                    .and_then(QoS::from_u8)
                    .unwrap_or(QoS::ExactlyOnce),
                retain_available: p.retain_available != Some(0),
                topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            };
            // [MQTT-3.2.2-21] the server keep alive replaces ours.
            if let Some(k) = p.server_keep_alive {
                keep_alive = k;
            }
            if let Some(id) = &p.assigned_client_identifier {
                self.client_id = id.clone();
            }
        }
        // [MQTT-3.2.2-17] never more aliases than the broker accepts.
        self.aliases_out.reset(
            self.config
                .outbound_topic_aliases
                .min(self.broker.topic_alias_maximum),
        );
        self.state = ConnState::Connected;
        self.connect_deadline = None;
        self.backoff.reset();
        self.keepalive.start(now, keep_alive);
        self.events.push_back(ClientEvent::Connected {
            session_present: ack.session_present,
            reason: ack.reason,
            properties: ack.properties,
        });
        if !ack.session_present {
            self.forget_session();
        }
        self.drop_unsendable();
        self.resend_inflight(now);
        self.pump(now);
    }

    /// The broker has no session for us: in-flight publishes are reported lost (not re-sent:
    /// the broker may already have forwarded them); (un)subscribes will be re-sent; inbound
    /// QoS 2 identifiers will never be released.
    fn forget_session(&mut self) {
        for pkid in self.inflight.pkids_in_order() {
            if self.inflight.get(pkid).expect("known").stage.is_publish() {
                let entry = self.complete(pkid);
                self.events.push_back(ClientEvent::PublishLost {
                    id: entry.id,
                    why: LostReason::SessionLost,
                });
            }
        }
        self.awaiting_rel.clear();
    }

    /// Buffered publishes the new broker limits forbid are reported lost.
    fn drop_unsendable(&mut self) {
        let limits = self.broker;
        let protocol = self.protocol();
        let verdict = |p: &Publish| {
            if p.qos > limits.maximum_qos {
                Some(LostReason::QoSNotSupported)
            } else if p.retain && !limits.retain_available {
                Some(LostReason::RetainNotSupported)
            } else if super::publish_len(protocol, p.clone())
                .1
                .expect("checked when queued")
                > limits.max_packet_size as usize
            {
                Some(LostReason::PacketTooLarge)
            } else {
                None
            }
        };
        for (id, why) in self.outbox.drain_publishes_where(verdict) {
            self.events.push_back(ClientEvent::PublishLost { id, why });
        }
    }

    fn on_publish(&mut self, now: Instant, mut p: Publish) {
        if p.qos != QoS::AtMostOnce && p.pkid == 0 {
            self.protocol_error(now, ReasonCode::MalformedPacket);
            return;
        }
        // Aliases beyond what we announced (none for 3.1.1, where the property cannot
        // arrive) are refused ([MQTT-3.1.2-26], [MQTT-3.3.2-8]); the topic is resolved.
        if let Err(e) = self.aliases_in.resolve(&mut p) {
            self.protocol_error(now, e.reason_code());
            return;
        }
        // Section 3.3.2.1: a zero-length topic without an alias is a protocol error.
        if p.topic.is_empty() {
            self.protocol_error(now, ReasonCode::ProtocolError);
            return;
        }
        match p.qos {
            QoS::AtMostOnce => self.events.push_back(ClientEvent::Message(p)),
            QoS::AtLeastOnce => {
                // [MQTT-3.3.4-9] the broker keeps within our receive maximum; QoS 2 messages
                // awaiting PUBREL still count.
                if !self.awaiting_rel.admit_qos1() {
                    self.protocol_error(now, ReasonCode::ReceiveMaximumExceeded);
                    return;
                }
                // [MQTT-4.3.2-4] PUBACK for every QoS 1 PUBLISH, resends included.
                let pkid = p.pkid;
                self.events.push_back(ClientEvent::Message(p));
                self.send(now, Packet::PubAck(Ack::new(pkid)));
            }
            QoS::ExactlyOnce => match self.awaiting_rel.on_publish(p.pkid) {
                Qos2Publish::Deliver => {
                    let pkid = p.pkid;
                    self.events.push_back(ClientEvent::Message(p));
                    self.send(now, Packet::PubRec(Ack::new(pkid)));
                }
                // [MQTT-4.3.3-9] until PUBREL, the same identifier is not a new message.
                Qos2Publish::Duplicate => self.send(now, Packet::PubRec(Ack::new(p.pkid))),
                // [MQTT-3.3.4-9] more unacknowledged QoS 2 than our receive maximum.
                Qos2Publish::OverLimit => {
                    self.protocol_error(now, ReasonCode::ReceiveMaximumExceeded)
                }
            },
        }
    }

    fn on_puback(&mut self, now: Instant, a: Ack) {
        match self.inflight.get(a.pkid).map(|e| &e.stage) {
            Some(Stage::Publish(p)) if p.qos == QoS::AtLeastOnce => {
                let entry = self.complete(a.pkid);
                self.events.push_back(ClientEvent::PublishAcked {
                    id: entry.id,
                    reason: a.reason,
                });
                self.pump(now);
            }
            _ => tracing::debug!(
                pkid = a.pkid,
                "PUBACK for no QoS 1 publish in flight; ignored"
            ),
        }
    }

    fn on_pubrec(&mut self, now: Instant, a: Ack) {
        match self.inflight.get(a.pkid).map(|e| &e.stage) {
            Some(Stage::Publish(p)) if p.qos == QoS::ExactlyOnce => {
                if a.reason.is_error() {
                    // 5.0: an error PUBREC ends the exchange; no PUBREL follows.
                    let entry = self.complete(a.pkid);
                    self.events.push_back(ClientEvent::PublishAcked {
                        id: entry.id,
                        reason: a.reason,
                    });
                    self.pump(now);
                } else {
                    // [MQTT-4.3.3-3] PUBREL after PUBREC; the PUBLISH is never sent again.
                    self.inflight.mark_pubrel(a.pkid);
                    self.send(now, Packet::PubRel(Ack::new(a.pkid)));
                }
            }
            // A repeated PUBREC: repeat the PUBREL.
            Some(Stage::PubRel) => self.send(now, Packet::PubRel(Ack::new(a.pkid))),
            _ => {
                let reason = self.not_found();
                self.send(
                    now,
                    Packet::PubRel(Ack {
                        pkid: a.pkid,
                        reason,
                        properties: Properties::default(),
                    }),
                );
            }
        }
    }

    fn on_pubrel(&mut self, now: Instant, a: Ack) {
        // [MQTT-4.3.3-11] PUBCOMP for every PUBREL, known identifier or not.
        let reason = if self.awaiting_rel.on_pubrel(a.pkid) {
            ReasonCode::Success
        } else {
            self.not_found()
        };
        self.send(
            now,
            Packet::PubComp(Ack {
                pkid: a.pkid,
                reason,
                properties: Properties::default(),
            }),
        );
    }

    fn on_pubcomp(&mut self, now: Instant, a: Ack) {
        match self.inflight.get(a.pkid).map(|e| &e.stage) {
            Some(Stage::PubRel) => {
                let entry = self.complete(a.pkid);
                self.events.push_back(ClientEvent::PublishAcked {
                    id: entry.id,
                    reason: a.reason,
                });
                self.pump(now);
            }
            _ => tracing::debug!(pkid = a.pkid, "PUBCOMP for no PUBREL in flight; ignored"),
        }
    }

    fn on_suback(&mut self, now: Instant, s: SubAck) {
        match self.inflight.get(s.pkid).map(|e| &e.stage) {
            Some(Stage::Subscribe(_)) => {
                let entry = self.complete(s.pkid);
                self.events.push_back(ClientEvent::Subscribed {
                    id: entry.id,
                    reasons: s.reasons,
                });
                self.pump(now);
            }
            _ => tracing::debug!(pkid = s.pkid, "SUBACK for no SUBSCRIBE in flight; ignored"),
        }
    }

    fn on_unsuback(&mut self, now: Instant, u: UnsubAck) {
        match self.inflight.get(u.pkid).map(|e| &e.stage) {
            Some(Stage::Unsubscribe(_)) => {
                let entry = self.complete(u.pkid);
                self.events.push_back(ClientEvent::Unsubscribed {
                    id: entry.id,
                    reasons: u.reasons,
                });
                self.pump(now);
            }
            _ => tracing::debug!(
                pkid = u.pkid,
                "UNSUBACK for no UNSUBSCRIBE in flight; ignored"
            ),
        }
    }

    /// The reason for an acknowledgement of an unknown identifier (3.1.1 has no reasons).
    fn not_found(&self) -> ReasonCode {
        if self.protocol().is_v5() {
            ReasonCode::PacketIdentifierNotFound
        } else {
            ReasonCode::Success
        }
    }
}
