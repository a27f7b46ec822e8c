//! The durable state: what a store outside the broker keeps so that a restarted broker finds
//! its persistent sessions (subscriptions, inflight and queued messages, inbound QoS 2 packet
//! identifiers) and its retained messages again.
//!
//! Deadlines (session expiry of offline sessions, message expiry) are kept in the broker's
//! logical time (`clock.rs`), with the logical time of the save in `clock`: a restored broker
//! counts whatever remained of each interval from the time it is restored.
//!
//! Not kept: connections, wills (delayed ones included) (a will belongs to a network connection, which a broker crash
//! ends without the broker being able to act; like mosquitto, a restarted broker does not
//! publish them), sessions with expiry interval 0 (they end with their connection anyway).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::Broker;
use super::session::{Message, Session};

/// A snapshot of everything that must survive a broker restart. Cheap to clone: messages are
/// shared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DurableState {
    /// Client id → persistent session (expiry interval non-zero).
    pub sessions: BTreeMap<String, Session>,
    /// Topic → retained message.
    pub retained: BTreeMap<String, Arc<Message>>,
    /// The counter of assigned client identifiers, so none is handed out twice.
    pub next_assigned: u64,
    /// The broker's logical time when the state was taken; `Session::expires_at` and
    /// `Message::expires_at` are in the same time.
    pub clock: Duration,
}

impl Broker {
    pub(super) fn snapshot(&self) -> DurableState {
        DurableState {
            sessions: self
                .sessions
                .iter()
                .filter(|(_, s)| s.is_persistent())
                .map(|(id, s)| (id.clone(), s.clone()))
                .collect(),
            retained: self.retained.map().clone(),
            next_assigned: self.next_assigned,
            clock: self.clock.now(),
        }
    }
}
