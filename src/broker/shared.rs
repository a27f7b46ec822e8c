//! Shared subscriptions (`$share/group/filter`, MQTT 5.0 section 4.8.2): each message matching
//! a shared subscription goes to exactly one of its members.
//!
//! Distribution is round-robin, deterministic: the members of a shared subscription are ordered
//! by client id, and each message goes to the first member after the one that received the
//! previous message (wrapping around) whose client is connected. When no member is connected, a
//! QoS 1/2 message goes to the next member in the same order (queued in its session) and a QoS 0
//! message is dropped (counted in `qos0_offline_dropped`).
//!
//! When a member's session ends (expiry, clean start, a connection with expiry 0), the messages
//! it received through shared subscriptions and had not acknowledged (PUBLISH in flight, not
//! PUBREL) or not yet been sent (queued) are given to other members of the same shared
//! subscription, in their original order, by the same rule. If no member is left they are
//! dropped. A member that merely disconnects keeps them: its session may resume.
//!
//! Not here: matching (`subtree.rs`), validation of the filter (`subscribe.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Broker;
use super::session::{Delivery, Grant, Message};
use super::subtree::SharedMatch;
use crate::codec::QoS;

impl Broker {
    /// Delivers `message` to one member of the matching shared subscription.
    pub(super) fn route_shared(&mut self, message: &Arc<Message>, share: SharedMatch) {
        let Some((client, grant)) = self.pick_member(&share.name, &share.members, message.qos)
        else {
            self.stats.qos0_offline_dropped += 1;
            return;
        };
        let d = Delivery {
            seq: 0,
            qos: message.qos.min(grant.options.qos),
            retain: message.retain && grant.options.retain_as_published,
            subscription_ids: grant.id.into_iter().collect(),
            message: message.clone(),
            share: Some(share.name),
            pkid: 0,
            placed: Default::default(),
        };
        self.deliver(&client, d);
    }

    /// Gives a delivery of a session that ended (`leaving`) to another member of its shared
    /// subscription.
    pub(super) fn redistribute(&mut self, leaving: &str, d: Delivery) {
        let Some(name) = d.share.clone() else {
            return;
        };
        let mut members = self.subs.share_members(&name);
        members.remove(leaving);
        let Some((client, grant)) = self.pick_member(&name, &members, d.message.qos) else {
            tracing::debug!(share = name, "no member left: message dropped");
            return;
        };
        tracing::debug!(
            share = name,
            from = leaving,
            to = client,
            "shared message redistributed"
        );
        let d = Delivery {
            seq: 0,
            qos: d.message.qos.min(grant.options.qos),
            retain: d.retain,
            subscription_ids: grant.id.into_iter().collect(),
            message: d.message,
            share: Some(name),
            pkid: 0,
            placed: Default::default(),
        };
        self.deliver(&client, d);
    }

    /// The member the next message of shared subscription `name` goes to (see the module
    /// documentation), and moves the rotation on.
    fn pick_member(
        &mut self,
        name: &str,
        members: &BTreeMap<String, Grant>,
        qos: QoS,
    ) -> Option<(String, Grant)> {
        let last = self.share_cursors.get(name).cloned();
        let after = |(c, _): &(&String, &Grant)| last.as_ref().is_none_or(|l| *c > l);
        let order: Vec<(&String, &Grant)> = members
            .iter()
            .filter(after)
            .chain(members.iter().filter(|m| !after(m)))
            .collect();
        let chosen = order
            .iter()
            .find(|(c, _)| self.sessions.conn_of(c).is_some())
            .or_else(|| order.first().filter(|_| qos != QoS::AtMostOnce))
            .map(|(c, g)| ((*c).clone(), **g))?;
        self.share_cursors.insert(name.to_owned(), chosen.0.clone());
        Some(chosen)
    }
}
