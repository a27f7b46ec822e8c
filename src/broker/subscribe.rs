//! SUBSCRIBE and UNSUBSCRIBE.
//!
//! Each filter is granted the QoS asked for, or refused in its SUBACK slot (3.1.1: 0x80; 5.0: the
//! specific code, with a reason string) when it is invalid, beyond the topic limits, a shared
//! subscription while they are off, or one subscription too many. Shared subscriptions are
//! offered to 3.1.1 clients too (as mosquitto does). A subscription to an existing filter replaces it
//! ([MQTT-3.8.4-3]). After the SUBACK, retained messages matching each new subscription are
//! sent with retain set ([MQTT-3.3.1-6]), at min(retained QoS, granted QoS), subject to 5.0
//! retain handling; expired retained messages are not sent. Shared subscriptions get no
//! retained messages (sections 3.3.1.3 and 4.8.2: only a new non-shared subscription gets them),
//! and no local on one is a protocol error
//! ([MQTT-3.8.3-4]).
//!
//! A filter the ACL does not allow gets 3.1.1 0x80 / 5.0 0x87 (see `auth/`).
//! Not here: choosing a shared subscription's member (`shared.rs`).

use crate::codec::topic::{TopicRefusal, shared_subscription};
use crate::codec::{
    Packet, Protocol, ReasonCode, RetainHandling, SubAck, Subscribe, UnsubAck, Unsubscribe,
};

use super::close::Violation;
use super::session::{Delivery, Grant};
use super::{Broker, ConnId, StorageHealth};

impl Broker {
    pub(super) fn handle_subscribe(
        &mut self,
        conn: ConnId,
        client_id: &str,
        s: Subscribe,
    ) -> Result<(), Violation> {
        if s.filters.is_empty() {
            // [MQTT-3.8.3-3]
            return Err(Violation::protocol("SUBSCRIBE without filters"));
        }
        let protocol = self
            .conns
            .get(&conn)
            .map_or(Protocol::V3_1_1, |c| c.protocol);
        let v5 = protocol.is_v5();
        let fail = |code: ReasonCode| {
            if v5 {
                code
            } else {
                ReasonCode::UnspecifiedError
            }
        };
        let id = if v5 {
            s.properties.subscription_identifiers.first().copied()
        } else {
            None
        };
        let mut reasons = Vec::with_capacity(s.filters.len());
        let mut retained_to_send = Vec::new();
        let mut problems: Vec<&'static str> = Vec::new();
        for sub in &s.filters {
            if v5 && sub.options.no_local && shared_subscription(&sub.filter).is_some() {
                return Err(Violation::protocol("no local on a shared subscription"));
            }
        }
        for sub in s.filters {
            let filter = sub.filter;
            let shared = filter.starts_with("$share/");
            let reason = match self.topic_limits().check_filter(&filter) {
                Err(TopicRefusal::Invalid(_)) => {
                    problems.push("invalid topic filter");
                    fail(ReasonCode::TopicFilterInvalid)
                }
                Err(TopicRefusal::BeyondLimits) => {
                    problems.push("topic filter beyond limits");
                    fail(ReasonCode::QuotaExceeded)
                }
                Ok(()) if shared && !self.config.shared_subscriptions => {
                    problems.push("shared subscriptions are off");
                    fail(ReasonCode::SharedSubscriptionsNotSupported)
                }
                Ok(()) if !self.may_subscribe(client_id, &filter) => {
                    fail(ReasonCode::NotAuthorized)
                }
                Ok(()) if self.subscription_over_quota(client_id, &filter) => {
                    problems.push("storage quota exceeded");
                    fail(ReasonCode::QuotaExceeded)
                }
                Ok(()) => {
                    let grant = Grant {
                        options: sub.options,
                        id,
                    };
                    match self.store_subscription(client_id, &filter, grant) {
                        None => {
                            problems.push("too many subscriptions");
                            fail(ReasonCode::QuotaExceeded)
                        }
                        Some(existed) => {
                            let send_retained = !shared
                                && match sub.options.retain_handling {
                                    RetainHandling::SendAtSubscribe => true,
                                    RetainHandling::SendIfNew => !existed,
                                    RetainHandling::DoNotSend => false,
                                };
                            if send_retained {
                                retained_to_send.push((filter, grant));
                            }
                            ReasonCode::granted(sub.options.qos)
                        }
                    }
                }
            };
            reasons.push(reason);
        }
        problems.dedup();
        let mut properties = crate::codec::Properties::default();
        if v5 && !problems.is_empty() {
            properties.reason_string = Some(problems.join("; "));
        }
        self.send(
            conn,
            Packet::SubAck(SubAck {
                pkid: s.pkid,
                reasons,
                properties,
            }),
        );
        self.send_retained(client_id, retained_to_send);
        Ok(())
    }

    /// Whether a new subscription of a persistent session must be refused because the store
    /// is over its size limit (`storage.rs`).
    fn subscription_over_quota(&self, client_id: &str, filter: &str) -> bool {
        self.storage == StorageHealth::OverQuota
            && self
                .sessions
                .get(client_id)
                .is_some_and(|s| s.is_persistent() && !s.subscriptions.contains_key(filter))
    }

    /// Adds or replaces the subscription of `client_id` to `filter`; `Some(whether it existed)`,
    /// or `None` when a new one would exceed `max_subscriptions_per_client`.
    fn store_subscription(&mut self, client_id: &str, filter: &str, grant: Grant) -> Option<bool> {
        let session = self
            .sessions
            .get_mut(client_id)
            .expect("connected client has a session");
        let existed = session.subscriptions.contains_key(filter);
        if !existed && session.subscriptions.len() >= self.config.max_subscriptions_per_client {
            return None;
        }
        session.subscriptions.insert(filter.to_owned(), grant);
        session.marks.sub(filter);
        self.subs.insert(filter, client_id, grant);
        Some(existed)
    }

    /// Sends the retained messages matching each new subscription ([MQTT-3.3.1-9]).
    fn send_retained(&mut self, client_id: &str, subscriptions: Vec<(String, Grant)>) {
        let now = self.clock.now();
        for (filter, grant) in subscriptions {
            for message in self.retained.matching(&filter, now) {
                let d = Delivery {
                    seq: 0,
                    qos: message.qos.min(grant.options.qos),
                    retain: true,
                    subscription_ids: grant.id.into_iter().collect(),
                    message,
                    share: None,
                    pkid: 0,
                    placed: Default::default(),
                };
                self.deliver(client_id, d);
            }
            self.send_figures(client_id, &filter, grant.id.into_iter().collect());
        }
    }

    pub(super) fn handle_unsubscribe(
        &mut self,
        conn: ConnId,
        client_id: &str,
        u: Unsubscribe,
    ) -> Result<(), Violation> {
        if u.filters.is_empty() {
            // [MQTT-3.10.3-2]
            return Err(Violation::protocol("UNSUBSCRIBE without filters"));
        }
        let v5 = self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5());
        let session = self
            .sessions
            .get_mut(client_id)
            .expect("connected client has a session");
        let mut reasons = Vec::new();
        for filter in &u.filters {
            let existed = session.subscriptions.remove(filter).is_some();
            if existed {
                session.marks.sub(filter);
                self.subs.remove(filter, client_id);
                if shared_subscription(filter).is_some()
                    && self.subs.share_members(filter).is_empty()
                {
                    self.share_cursors.remove(filter);
                }
            }
            if v5 {
                reasons.push(if existed {
                    ReasonCode::Success
                } else {
                    ReasonCode::NoSubscriptionExisted
                });
            }
        }
        self.send(
            conn,
            Packet::UnsubAck(UnsubAck {
                pkid: u.pkid,
                reasons,
                properties: Default::default(),
            }),
        );
        Ok(())
    }
}
