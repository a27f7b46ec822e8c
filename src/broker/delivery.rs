//! Routing: an application message (a PUBLISH or a will) goes to the retained store if it
//! carries the retain flag, then to every session with a matching subscription, one copy per
//! session at min(published QoS, highest granted QoS) ([MQTT-3.3.5-1]), and to one member of
//! each matching shared subscription (`shared.rs`).
//!
//! Not here: the per-session window and queue (`session.rs`), matching (`subtree.rs`), what a
//! connection accepts (`outbound.rs`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::codec::{LastWill, Properties, QoS};

use super::outbound::Tx;
use super::retained::Stored;
use super::session::{Delivery, Message, Refused, Session};
use super::{Action, Broker, BrokerConfig, BrokerEvent, BrokerStats, Conn, ConnId, clock};

/// The 5.0 properties forwarded with a message: all the publisher's application properties;
/// never the topic alias (per connection) nor subscription identifiers (per subscriber). The
/// message expiry interval is kept as `Message::expires_at` and recomputed for each send.
pub(crate) fn forwarded(mut p: Properties) -> Properties {
    p.topic_alias = None;
    p.subscription_identifiers.clear();
    p.message_expiry_interval = None;
    p
}

impl Broker {
    /// An application message as the broker keeps it, with the next id, its expiry counted
    /// from now.
    pub(super) fn message(
        &mut self,
        topic: String,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        properties: Properties,
    ) -> Message {
        let expires_at = properties
            .message_expiry_interval
            .map(|secs| clock::after(self.clock.now(), secs));
        let id = self.next_message_id;
        self.next_message_id += 1;
        Message {
            id,
            topic,
            payload,
            qos,
            retain,
            properties: forwarded(properties),
            expires_at,
        }
    }

    /// Publishes `message` from `origin` (the publishing client, for no-local).
    pub(super) fn publish_message(&mut self, origin: Option<&str>, message: Message) {
        let message = Arc::new(message);
        if message.retain {
            match self
                .retained
                .store(message.clone(), self.config.max_retained, self.clock.now())
            {
                Stored::Kept | Stored::Cleared => {}
                Stored::Full => {
                    self.stats.retained_rejected += 1;
                    tracing::warn!(topic = %message.topic, max = self.config.max_retained, "retained store full: message not retained");
                    self.event(BrokerEvent::RetainedStoreFull {
                        topic: message.topic.clone(),
                    });
                }
            }
        }
        self.route_message(origin, message);
    }

    /// Offers `message` to every matching subscription, without storing it as retained.
    pub(super) fn route_message(&mut self, origin: Option<&str>, message: Arc<Message>) {
        let matches = self.subs.matches(&message.topic, origin);
        for (client, m) in matches {
            let d = Delivery {
                seq: 0,
                qos: message.qos.min(m.qos),
                // [MQTT-3.3.1-9] Live messages go out with retain 0 (5.0: unless retain as published).
                retain: message.retain && m.retain_as_published,
                subscription_ids: m.subscription_ids,
                message: message.clone(),
                share: None,
                pkid: 0,
                placed: Default::default(),
            };
            self.deliver(&client, d);
        }
        for share in self.subs.shared_matches(&message.topic) {
            self.route_shared(&message, share);
        }
    }

    /// Publishes the will of `client_id` with its QoS, retain flag and properties; its message
    /// expiry interval counts from now.
    pub(super) fn publish_will(&mut self, client_id: &str, will: LastWill) {
        tracing::debug!(client_id, topic = %will.topic, "publishing will");
        self.event(BrokerEvent::WillPublished {
            client_id: client_id.to_owned(),
            topic: will.topic.clone(),
        });
        let mut properties = will.properties;
        properties.will_delay_interval = None;
        let message = self.message(will.topic, will.payload, will.qos, will.retain, properties);
        self.publish_message(Some(client_id), message);
    }

    /// The session of `client_id` with the connection it is attached to, if online.
    pub(super) fn session_tx(
        &mut self,
        client_id: &str,
    ) -> Option<(&mut Session, Option<Tx<'_>>, &BrokerConfig)> {
        let session = self.sessions.get_mut(client_id)?;
        let now = self.clock.now();
        let tx = session.conn.0.get().and_then(|conn| {
            let c = self.conns.get_mut(&conn)?;
            Some(tx_on(
                conn,
                c,
                &self.config,
                now,
                &mut self.actions,
                &mut self.stats,
            ))
        });
        Some((session, tx, &self.config))
    }

    /// Offers one delivery to a session; counts and reports what its limits drop.
    pub(super) fn deliver(&mut self, client_id: &str, mut d: Delivery) {
        if !self.may_read(client_id, &d.message.topic) {
            return;
        }
        let now = self.clock.now();
        d.placed.event = self.event_no;
        let Some((session, mut tx, config)) = self.session_tx(client_id) else {
            panic!("subscription tree names {client_id:?}, which has no session");
        };
        let mut expired = 0;
        let result = session.offer(d, tx.as_mut(), now, config, &mut expired);
        self.stats.expired_dropped += expired;
        match result {
            Ok(()) => {}
            Err(Refused::Qos0Offline) => self.stats.qos0_offline_dropped += 1,
            Err(Refused::Overflow(dropped)) => {
                self.stats.queue_overflow_dropped += 1;
                tracing::warn!(
                    client_id,
                    topic = %dropped.message.topic,
                    qos = dropped.qos.as_u8(),
                    policy = ?self.config.queue_overflow,
                    "session queue full: message dropped"
                );
                self.event(BrokerEvent::QueueOverflow {
                    client_id: client_id.to_owned(),
                    topic: dropped.message.topic.clone(),
                    qos: dropped.qos,
                    payload: dropped.message.payload.clone(),
                });
            }
        }
    }

    /// Moves queued messages of `client_id` into its window, if online.
    pub(super) fn pump(&mut self, client_id: &str) {
        let needs = match self.session_tx(client_id) {
            Some((s, Some(mut tx), _)) => {
                s.pump(&mut tx);
                tx.needs
            }
            _ => return,
        };
        self.note_needs(needs);
    }

    /// Completes an outgoing delivery of `client_id`, connected on `conn` (its acknowledgement
    /// just arrived there), with `complete` (PUBACK or PUBCOMP); when it completes one, lets
    /// queued messages into the window it freed. `false`: nothing in flight matched. The session
    /// is looked up once and the connection by its identifier, not by client id.
    pub(super) fn complete_and_pump(
        &mut self,
        conn: ConnId,
        client_id: &str,
        complete: impl FnOnce(&mut Session) -> bool,
    ) -> bool {
        debug_assert_eq!(self.sessions.conn_of(client_id), Some(conn));
        let session = self
            .sessions
            .get_mut(client_id)
            .expect("connected client has a session");
        if !complete(session) {
            return false;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return true;
        };
        let now = self.clock.now();
        let mut tx = tx_on(
            conn,
            c,
            &self.config,
            now,
            &mut self.actions,
            &mut self.stats,
        );
        session.pump(&mut tx);
        let needs = tx.needs;
        self.note_needs(needs);
        true
    }

    /// Merges what output just produced reveals into what the next changes must wait for.
    fn note_needs(&mut self, needs: Option<u64>) {
        self.output_needs = match (self.output_needs, needs) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }

    /// Resends what the session of `client_id` has in flight, then its queue, if online.
    pub(super) fn resume_session(&mut self, client_id: &str) {
        if let Some((s, Some(mut tx), _)) = self.session_tx(client_id) {
            s.resume(&mut tx);
        }
    }
}

/// The transmit side of connection `conn` (its record `c`).
fn tx_on<'a>(
    conn: ConnId,
    c: &'a mut Conn,
    config: &BrokerConfig,
    now: Duration,
    actions: &'a mut VecDeque<Action>,
    stats: &'a mut BrokerStats,
) -> Tx<'a> {
    Tx {
        conn,
        protocol: c.protocol,
        window: usize::from(config.max_inflight.min(c.receive_maximum)),
        now,
        outbound: &mut c.outbound,
        actions,
        stats,
        needs: Some(0),
    }
}
