//! The durable state: what a store outside the broker keeps so that a restarted broker finds
//! its persistent sessions (subscriptions, inflight and queued messages, inbound QoS 2 packet
//! identifiers, the verified user name), its retained messages and the 5.0 wills waiting for
//! their Will Delay Interval again.
//!
//! Deadlines (session expiry of offline sessions, message expiry, will delay) are kept in the
//! broker's logical time (`clock.rs`), with the logical time of the save in `clock`: a restored
//! broker counts whatever remained of each interval from the time it is restored. A store that
//! knows how long the state waited (the time from the save to the restart) hands it over
//! [`DurableState::aged`] by that time, so the downtime counts towards every interval as if
//! the broker had kept running.
//!
//! Not kept: connections, and with them the wills of clients still connected at the save (a
//! will belongs to a network connection, which a broker crash ends without the broker being
//! able to act; like mosquitto, a restarted broker does not publish them); sessions with expiry
//! interval 0 (they end with their connection anyway).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::Broker;
use super::session::{Message, Session};
use crate::codec::LastWill;

/// A snapshot of everything that must survive a broker restart. Cheap to clone: messages are
/// shared.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DurableState {
    /// Client id → persistent session (expiry interval non-zero).
    pub sessions: BTreeMap<String, Session>,
    /// Topic → retained message.
    pub retained: BTreeMap<String, Arc<Message>>,
    /// Client id → the 5.0 will of its lost connection, waiting for its Will Delay Interval
    /// ([MQTT-3.1.3-9]); published when due, cancelled by a resumption, published at once
    /// when the session ends first.
    pub wills: BTreeMap<String, PendingWill>,
    /// Client id → the user name its session was authenticated with (sessions of anonymous
    /// clients have none), so that access rules apply to it before it connects again.
    pub users: BTreeMap<String, String>,
    /// The counter of assigned client identifiers, so none is handed out twice.
    pub next_assigned: u64,
    /// The broker's logical time when the state was taken; `Session::expires_at`,
    /// `Message::expires_at` and `PendingWill::due` are in the same time.
    pub clock: Duration,
}

/// A will waiting for its delay interval.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingWill {
    /// When it is published, in the broker's logical time.
    pub due: Duration,
    pub will: LastWill,
}

impl DurableState {
    /// The state as a broker would see it `elapsed` later: its logical clock moved on, so a
    /// broker restored from it counts `elapsed` (the time the state spent in a store while no
    /// broker ran) towards every session expiry, message expiry and will delay.
    #[must_use]
    pub fn aged(mut self, elapsed: Duration) -> DurableState {
        self.clock = self.clock.saturating_add(elapsed);
        self
    }

    /// The state without the counters a restored session can compute again
    /// (`Session::next_pkid`, `Session::next_seq`): what a store needs to keep, and what
    /// comparisons of states use.
    #[must_use]
    pub fn normalized(mut self) -> DurableState {
        for s in self.sessions.values_mut() {
            s.next_pkid = 0;
            s.next_seq = 0;
        }
        self
    }

    /// The state with one shared copy of each message, and the `Message::id` that comes after
    /// every id in it. A message without an id (0: a state written without ids), or one whose id
    /// names another message, gets an id of its own.
    pub(super) fn shared(mut self) -> (DurableState, u64) {
        let mut next = 1;
        self.each_message(|m| next = next.max(m.id.saturating_add(1)));
        let mut by_id: BTreeMap<u64, Arc<Message>> = BTreeMap::new();
        self.each_message(|m| match by_id.get(&m.id) {
            Some(known) if known == m => *m = known.clone(),
            None if m.id != 0 => {
                by_id.insert(m.id, m.clone());
            }
            _ => {
                Arc::make_mut(m).id = next;
                next += 1;
                by_id.insert(m.id, m.clone());
            }
        });
        (self, next)
    }

    /// Calls `f` on every message the state holds: retained, in flight and queued.
    fn each_message(&mut self, mut f: impl FnMut(&mut Arc<Message>)) {
        self.retained.values_mut().for_each(&mut f);
        for s in self.sessions.values_mut() {
            s.messages_mut().for_each(&mut f);
        }
    }
}

impl Broker {
    pub(super) fn snapshot(&self) -> DurableState {
        let sessions: BTreeMap<String, Session> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.is_persistent())
            .map(|(id, s)| (id.to_string(), s.clone()))
            .collect();
        let wills = self
            .pending_wills
            .iter()
            .filter_map(|(id, will)| {
                let due = self.will_timers.get(id)?;
                Some((
                    id.clone(),
                    PendingWill {
                        due,
                        will: will.clone(),
                    },
                ))
            })
            .collect();
        DurableState {
            users: self.durable_users(&sessions),
            sessions,
            retained: self.retained.map().clone(),
            wills,
            next_assigned: self.next_assigned,
            clock: self.clock.now(),
        }
    }
}
