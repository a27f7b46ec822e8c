//! Routing: an application message (a PUBLISH or a will) goes to the retained store if it
//! carries the retain flag, then to every session with a matching subscription, one copy per
//! session at min(published QoS, highest granted QoS) ([MQTT-3.3.5-1]).
//!
//! Not here: the per-session window and queue (`session.rs`), matching (`subtree.rs`).

use std::sync::Arc;

use crate::codec::{LastWill, Properties};

use super::retained::Stored;
use super::session::{Delivery, Link, Message, Refused};
use super::{Broker, BrokerEvent};

/// The 5.0 properties forwarded with a message: all the publisher's application properties;
/// never the topic alias (per connection) nor subscription identifiers (per subscriber).
pub(crate) fn forwarded(mut p: Properties) -> Properties {
    p.topic_alias = None;
    p.subscription_identifiers.clear();
    p
}

impl Broker {
    /// Publishes `message` from `origin` (the publishing client, for no-local).
    pub(super) fn publish_message(&mut self, origin: Option<&str>, message: Message) {
        let message = Arc::new(message);
        if message.retain {
            match self
                .retained
                .store(message.clone(), self.config.max_retained)
            {
                Stored::Kept | Stored::Cleared => self.dirty = true,
                Stored::Full => {
                    self.stats.retained_rejected += 1;
                    tracing::warn!(topic = %message.topic, max = self.config.max_retained, "retained store full: message not retained");
                    self.event(BrokerEvent::RetainedStoreFull {
                        topic: message.topic.clone(),
                    });
                }
            }
        }
        let matches = self.subs.matches(&message.topic, origin);
        for (client, m) in matches {
            let d = Delivery {
                qos: message.qos.min(m.qos),
                // [MQTT-3.3.1-9] Live messages go out with retain 0 (5.0: unless retain as published).
                retain: message.retain && m.retain_as_published,
                subscription_ids: m.subscription_ids,
                message: message.clone(),
            };
            self.deliver(&client, d);
        }
    }

    /// Publishes the will of `client_id` with its QoS and retain flag.
    pub(super) fn publish_will(&mut self, client_id: &str, will: LastWill) {
        tracing::debug!(client_id, topic = %will.topic, "publishing will");
        self.event(BrokerEvent::WillPublished {
            client_id: client_id.to_owned(),
            topic: will.topic.clone(),
        });
        let mut properties = forwarded(will.properties);
        properties.will_delay_interval = None;
        let message = Message {
            topic: will.topic,
            payload: will.payload,
            qos: will.qos,
            retain: will.retain,
            properties,
        };
        self.publish_message(Some(client_id), message);
    }

    /// The connection `client_id` is attached to, if online.
    pub(super) fn link(&self, client_id: &str) -> Option<Link> {
        let conn = *self.online.get(client_id)?;
        let c = self.conns.get(&conn)?;
        let window = usize::from(self.config.max_inflight.min(c.receive_maximum));
        Some(Link {
            conn,
            protocol: c.protocol,
            window,
        })
    }

    /// Offers one delivery to a session; counts and reports what its limits drop.
    pub(super) fn deliver(&mut self, client_id: &str, d: Delivery) {
        if !self.may_read(client_id, &d.message.topic) {
            return;
        }
        let link = self.link(client_id);
        let Some(session) = self.sessions.get_mut(client_id) else {
            panic!("subscription tree names {client_id:?}, which has no session");
        };
        if session.is_persistent() {
            self.dirty = true;
        }
        match session.offer(d, link, &self.config, &mut self.actions) {
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
        let Some(link) = self.link(client_id) else {
            return;
        };
        if let Some(s) = self.sessions.get_mut(client_id) {
            s.pump(&link, &mut self.actions);
        }
    }
}
