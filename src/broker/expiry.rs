//! The two timers of an offline session, kept in logical time (`clock.rs`) so that they survive
//! a restart in the durable state:
//!
//! - Session expiry: a session whose connection ended expires `session_expiry_interval` seconds
//!   later (never for `u32::MAX`; at once for 0, in `close.rs`), unless a connection resumes it
//!   first. An expired session is discarded like any ending session (`end_session`).
//! - Will delay (5.0): a will with a delay interval waits; it is cancelled if a connection
//!   resumes the session before it is due ([MQTT-3.1.3-9]), and published at once if the session
//!   ends first. Waiting wills are part of the durable state (`state.rs`), so a restarted
//!   broker still publishes, cancels or ends them.
//!
//! Verbs: `start_session_expiry` (offline), `resumed` (online again), `delay_will`,
//! `fire_expiry_timers`, `end_session`. Not here: how a connection ends (`close.rs`).

use crate::codec::LastWill;

use super::{Broker, BrokerEvent, clock};

impl Broker {
    /// The session of `client_id` lost its connection: its expiry timer starts.
    pub(super) fn start_session_expiry(&mut self, client_id: &str) {
        let now = self.clock.now();
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        s.expires_at =
            (s.expiry_interval != u32::MAX).then(|| clock::after(now, s.expiry_interval));
        s.marks.row = true;
        self.session_timers.set(client_id.to_owned(), s.expires_at);
    }

    /// A connection resumed the session of `client_id`: its expiry timer and any delayed will
    /// are cancelled.
    pub(super) fn resumed(&mut self, client_id: &str) {
        if let Some(s) = self.sessions.get_mut(client_id) {
            s.expires_at = None;
            s.marks.row = true;
        }
        self.session_timers.remove(&client_id.to_owned());
        if self.pending_wills.remove(client_id).is_some() {
            tracing::debug!(client_id, "session resumed: delayed will cancelled");
            self.mark_will(client_id);
        }
        self.will_timers.remove(&client_id.to_owned());
    }

    /// Keeps `will` until `delay_secs` have passed or the session ends.
    pub(super) fn delay_will(&mut self, client_id: &str, will: LastWill, delay_secs: u32) {
        let due = clock::after(self.clock.now(), delay_secs);
        self.pending_wills.insert(client_id.to_owned(), will);
        self.will_timers.set(client_id.to_owned(), Some(due));
        self.mark_will(client_id);
    }

    /// Fires every will delay and session expiry due by the broker's clock, earliest first.
    pub(super) fn fire_expiry_timers(&mut self) {
        let now = self.clock.now();
        // Bounded: each turn removes one timer, and none is added for a time at or before now.
        loop {
            let will = self.will_timers.next().filter(|t| *t <= now);
            let session = self.session_timers.next().filter(|t| *t <= now);
            let fire_will = match (will, session) {
                (None, None) => return,
                (Some(w), Some(s)) => w <= s,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            if fire_will {
                let client = self.will_timers.pop_due(now).expect("due");
                if let Some(will) = self.pending_wills.remove(&client) {
                    self.mark_will(&client);
                    self.publish_will(&client, will);
                }
            } else {
                let client = self.session_timers.pop_due(now).expect("due");
                tracing::debug!(client_id = client, "session expired");
                self.stats.sessions_expired += 1;
                self.event(BrokerEvent::SessionExpired {
                    client_id: client.clone(),
                });
                self.end_session(&client);
            }
        }
    }

    /// The session of `client_id` ends (expiry, clean start, a connection with expiry 0): a
    /// delayed will is published now, then the session is discarded and what it held from
    /// shared subscriptions goes to other members.
    pub(super) fn end_session(&mut self, client_id: &str) {
        self.will_timers.remove(&client_id.to_owned());
        if let Some(will) = self.pending_wills.remove(client_id) {
            self.mark_will(client_id);
            self.publish_will(client_id, will);
        }
        self.session_timers.remove(&client_id.to_owned());
        self.discard_session(client_id);
    }

    /// Notes for the journal that the waiting will of `client_id` changed.
    fn mark_will(&mut self, client_id: &str) {
        if let Some(j) = &mut self.journal {
            j.will(client_id);
        }
    }
}
