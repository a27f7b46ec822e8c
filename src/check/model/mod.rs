//! The checkers' own model of a run, rebuilt from the trace alone: publish requests with their
//! acknowledgements, deliveries, each client's connect attempts, connections ("epochs") and
//! session chains, subscriptions, faults and broker crashes, and which user the broker verified
//! for each client; with the questions about them that every checker asks (when, in which
//! connection or session, what the ACL allows).
//!
//! - `record.rs`: building the model from the trace ([`Model::new`]).
//! - `entitled.rs`: what a client is owed: the subscriptions that cover a message, the
//!   entitlement rule that the delivery, will and retained checkers share (see docs/checkers.md), and
//!   the excuses (expiry, queue overflow).
//!
//! Positions (`Pos`) are indices into the trace; "before" and "after" are decided by position,
//! durations by `at_us`. Nothing here judges; the checkers do. Not here: reading the ACL
//! ([`access`](super::access)).

mod entitled;
mod record;

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::access::Rules;
use crate::trace::{Fault, LossCause, MessageProps, Persistence, SubOptions, Trace, WillSpec};

/// An index into the trace.
pub type Pos = usize;

/// One publish request.
#[derive(Debug)]
pub struct Pub<'t> {
    pub pos: Pos,
    pub client: &'t str,
    pub topic: &'t str,
    pub qos: u8,
    pub retain: bool,
    pub label: &'t str,
    pub size: u32,
    /// The 5.0 message expiry interval, in seconds.
    pub expiry_s: Option<u32>,
    /// The 5.0 application properties sent with it.
    pub props: &'t MessageProps,
    /// The PUBACK or PUBCOMP that completed it reached the publisher; `None` also when the
    /// message was `shadowed`.
    pub acked: Option<Pos>,
    pub lost: Option<Pos>,
    /// A QoS 2 PUBLISH of it reused a packet identifier the session still held for an earlier
    /// QoS 2 message (a fresh process resuming a session knows nothing of the identifiers its
    /// predecessor left open): the broker rightly takes it for a resend of that one, answers
    /// it and drops it [MQTT-4.3.3-10], so its acknowledgement promises nothing.
    pub shadowed: Option<Pos>,
}

/// One delivery to the application.
#[derive(Debug)]
pub struct Del<'t> {
    pub pos: Pos,
    pub client: &'t str,
    pub topic: &'t str,
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    /// The packet identifier of the PUBLISH (QoS 1 and 2), if the trace recorded it.
    pub pkid: Option<u16>,
    pub label: &'t str,
    /// The 5.0 message expiry interval it carried, in seconds.
    pub expiry_s: Option<u32>,
    /// The 5.0 application properties it carried.
    pub props: &'t MessageProps,
    /// The subscription identifiers it carried.
    pub ids: &'t [u32],
}

/// One CONNECT sent.
#[derive(Debug)]
pub struct Attempt<'t> {
    pub pos: Pos,
    /// The process that sent it (the client identifier unless the trace names another).
    pub process: &'t str,
    /// Whether this CONNECT was 5.0 (its `protocol`; in traces without one, whether it sent a
    /// session expiry). Every rule that differs between the versions follows the connection's
    /// own CONNECT, never the scenario's.
    pub v5: bool,
    pub clean_start: bool,
    pub keep_alive_s: u16,
    pub session_expiry_s: Option<u32>,
    pub will: Option<&'t WillSpec>,
    /// The user name and password sent.
    pub username: Option<&'t str>,
    pub password: Option<&'t str>,
    /// Where it was answered by a successful CONNACK (`connected`).
    pub connected: Option<Pos>,
    /// Where it failed (`connect_failed`), or was overtaken by the client going away.
    pub failed: Option<Pos>,
}

impl Attempt<'_> {
    /// Whether the session of this connection ends with it: a session expiry of 0, or without
    /// one, clean session / clean start.
    pub fn session_ends_with_connection(&self) -> bool {
        match self.session_expiry_s {
            Some(e) => e == 0,
            None => self.clean_start,
        }
    }
}

/// How an established connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Disconnect {
        with_will: bool,
    },
    Lost(LossCause),
    /// A cut fault on the connection.
    Cut,
    /// Client crash or power-off.
    ClientGone,
    BrokerCrash,
    /// Another process connected with the same client identifier: the broker closed this
    /// connection before it answered that CONNECT [MQTT-3.1.4-3]. What the old process
    /// records afterwards belongs to the closed connection.
    TakenOver,
}

/// One established connection, from `connected` to its end.
#[derive(Debug)]
pub struct Epoch<'t> {
    pub attempt: usize,
    /// The process it belongs to.
    pub process: &'t str,
    pub start: Pos,
    pub session_present: bool,
    /// Session chain number: grows at every `connected` with `session_present = false`.
    pub chain: usize,
    pub end: Option<(Pos, End)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubKind {
    Requested(u8),
    Granted(Option<u8>),
    UnsubRequested,
}

#[derive(Debug)]
pub struct SubEv<'t> {
    pub pos: Pos,
    pub filter: &'t str,
    pub kind: SubKind,
    /// The 5.0 options of a `Requested` event (defaults for the others).
    pub options: SubOptions,
}

/// Everything one client did.
#[derive(Debug, Default)]
pub struct ClientLog<'t> {
    pub attempts: Vec<Attempt<'t>>,
    pub epochs: Vec<Epoch<'t>>,
    pub subs: Vec<SubEv<'t>>,
    /// Crash and power-off positions (the process and its memory were lost), and the
    /// positions where an event of another process than the previous event's was recorded
    /// under this client identifier (the client's memory there is another process's).
    pub gone: Vec<Pos>,
    /// The process of this client's latest event, while building.
    last_process: Option<&'t str>,
    /// While building: packet identifier → label of a QoS 2 PUBLISH this client's session
    /// sent whose exchange has not ended (no PUBCOMP, or failing PUBREC, received yet): the
    /// broker may still hold the identifier.
    held_ids: BTreeMap<u16, &'t str>,
}

/// A fault from applied to healed (`end` = `None`: still applied at the end; instant faults
/// end where they start).
#[derive(Debug)]
pub struct FaultSpan<'t> {
    pub fault: &'t Fault,
    pub start: Pos,
    pub end: Option<Pos>,
}

/// A subscription that covers a topic, as used by entitlement.
#[derive(Debug, Clone, Copy)]
pub struct Held<'t> {
    pub filter: &'t str,
    pub granted_at: Pos,
    /// min(message QoS, every grant of the filter from `granted_at` on).
    pub qos: u8,
}

pub struct Model<'t> {
    pub trace: &'t Trace,
    pub v5: bool,
    pub persistence: Persistence,
    pub max_queued: Option<u64>,
    pub settle: Option<Pos>,
    pub end: Option<Pos>,
    pub pubs: Vec<Pub<'t>>,
    pub dels: Vec<Del<'t>>,
    pub clients: BTreeMap<&'t str, ClientLog<'t>>,
    pub faults: Vec<FaultSpan<'t>>,
    pub broker_crashes: Vec<Pos>,
    pubs_by_label: BTreeMap<&'t str, Vec<usize>>,
    dels_by_label: BTreeMap<&'t str, Vec<usize>>,
    /// Per client: the last position where its queue may have overflowed.
    overflow: RefCell<BTreeMap<&'t str, Option<Pos>>>,
    /// The broker's users and ACL (`auth_configured`); `None`: everything is allowed (also
    /// when the ACL cannot be read: the "acl" checker reports that).
    pub auth: Option<Rules>,
    /// Per client: the user name the broker verified (see [`user_of`](Model::user_of)).
    users: BTreeMap<&'t str, Option<String>>,
    /// Process → the client identifier of its events, for processes the trace names apart
    /// from their client identifier (`process`).
    processes: BTreeMap<&'t str, &'t str>,
    /// Per position: the process that recorded a client's event there.
    process_at: Vec<Option<&'t str>>,
}

impl<'t> Model<'t> {
    pub fn us(&self, pos: Pos) -> u64 {
        self.trace
            .events
            .get(pos)
            .map_or_else(|| self.trace.end_us(), |e| e.at_us)
    }

    /// The publish requests carrying `label`.
    pub fn pubs_with(&self, label: &str) -> impl Iterator<Item = &Pub<'t>> {
        self.pubs_by_label
            .get(label)
            .into_iter()
            .flatten()
            .map(|&i| &self.pubs[i])
    }

    /// The only publish request carrying `label`, if exactly one does.
    pub fn unique_pub(&self, label: &str) -> Option<&Pub<'t>> {
        match self.pubs_by_label.get(label).map(Vec::as_slice) {
            Some([i]) => Some(&self.pubs[*i]),
            _ => None,
        }
    }

    /// Deliveries of `label` to anyone, in order.
    pub fn dels_with(&self, label: &str) -> impl Iterator<Item = &Del<'t>> {
        self.dels_by_label
            .get(label)
            .into_iter()
            .flatten()
            .map(|&i| &self.dels[i])
    }

    /// Deliveries of `label` to `client`, in order.
    pub fn dels_of<'a>(
        &'a self,
        label: &str,
        client: &'a str,
    ) -> impl Iterator<Item = &'a Del<'t>> {
        self.dels_by_label
            .get(label)
            .into_iter()
            .flatten()
            .map(|&i| &self.dels[i])
            .filter(move |d| d.client == client)
    }

    /// Liveness is demanded for obligations arising before the settle phase began, and only
    /// in a complete trace (one with `settle_started` and `run_ended`).
    pub fn liveness_due(&self, pos: Pos) -> bool {
        matches!((self.settle, self.end), (Some(s), Some(_)) if pos < s)
    }

    /// Like [`liveness_due`](Model::liveness_due), for an obligation falling due at `at_us`.
    pub fn liveness_due_us(&self, at_us: u64) -> bool {
        matches!((self.settle, self.end), (Some(s), Some(_)) if at_us < self.us(s))
    }

    /// A broker crash at a position in `(a, b)` that lost state (persistence `none`).
    pub fn lossy_crash_between(&self, a: Pos, b: Pos) -> Option<Pos> {
        if self.persistence != Persistence::None {
            return None;
        }
        self.broker_crashes
            .iter()
            .copied()
            .find(|&c| a < c && c < b)
    }

    /// A crash or power-off of `client` at a position in `(a, b)`, or a change of the
    /// process recording its events in `(a, b]`: the client's memory at `b` is not that at `a`.
    pub fn gone_between(&self, client: &str, a: Pos, b: Pos) -> Option<Pos> {
        self.clients
            .get(client)?
            .gone
            .iter()
            .copied()
            .find(|&g| a < g && (g < b || (g == b && self.process_of(b).is_some())))
    }

    /// The client identifier of a node (process) named in a fault: the one its events carry.
    pub fn client_of<'a>(&'a self, node: &'a str) -> &'a str {
        self.processes.get(node).copied().unwrap_or(node)
    }

    /// The processes of `client`: its own name and every process the trace names apart from
    /// it.
    pub fn processes_of<'a>(&'a self, client: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        std::iter::once(client).chain(
            self.processes
                .iter()
                .filter(move |(p, c)| **c == client && **p != client)
                .map(|(p, _)| *p),
        )
    }

    /// The process that recorded the client's event at `pos`.
    pub fn process_of(&self, pos: Pos) -> Option<&'t str> {
        self.process_at.get(pos).copied().flatten()
    }

    /// Whether the client's event at `pos` was recorded by a process whose connection had
    /// already been taken over by another process of the same client identifier (and which has
    /// not sent a CONNECT since): it belongs to a connection the broker has closed.
    pub fn stale(&self, client: &str, pos: Pos) -> bool {
        let Some(process) = self.process_of(pos) else {
            return false;
        };
        let Some(log) = self.clients.get(client) else {
            return false;
        };
        let Some(epoch) = log.epochs.iter().rev().find(|e| e.start < pos) else {
            return false;
        };
        if epoch.process == process {
            return false;
        }
        // The session's latest connection is another process's: stale unless this process
        // has connected or is connecting since.
        !log.attempts
            .iter()
            .any(|a| a.process == process && a.pos > epoch.start && a.pos < pos)
    }

    /// The connection of `client` open at `pos` (started before it, not ended before it).
    pub fn epoch_at(&self, client: &str, pos: Pos) -> Option<&Epoch<'t>> {
        self.clients
            .get(client)?
            .epochs
            .iter()
            .rev()
            .find(|e| e.start < pos)
            .filter(|e| e.end.is_none_or(|(end, _)| end >= pos))
    }

    /// Whether the latest CONNECT `client` sent before `pos` was 5.0 (the scenario's protocol
    /// if it sent none).
    pub fn v5_at(&self, client: &str, pos: Pos) -> bool {
        self.clients
            .get(client)
            .and_then(|log| log.attempts.iter().rev().find(|a| a.pos < pos))
            .map_or(self.v5, |a| a.v5)
    }

    /// The session chain `client` was in at `pos` (that of its latest connection before it).
    pub fn chain_at(&self, client: &str, pos: Pos) -> Option<usize> {
        self.clients
            .get(client)?
            .epochs
            .iter()
            .rev()
            .find(|e| e.start < pos)
            .map(|e| e.chain)
    }

    /// Whether `client` kept one session from `pos` to the end of the run and was connected at
    /// the end: every later `connected` had `session_present = true` and its last connection
    /// never ended.
    pub fn session_kept_to_end(&self, client: &str, pos: Pos) -> bool {
        let Some(log) = self.clients.get(client) else {
            return false;
        };
        let Some(last) = log.epochs.last() else {
            return false;
        };
        last.end.is_none() && self.chain_at(client, pos) == Some(last.chain)
    }

    /// The user name the broker verified for `client`: the one of its accepted CONNECTs (none
    /// without users).
    pub fn user_of(&self, client: &str) -> Option<&str> {
        self.users.get(client)?.as_deref()
    }

    /// Whether the broker's ACL lets `client` receive messages on `topic` (always without an
    /// ACL).
    pub fn may_read(&self, client: &str, topic: &str) -> bool {
        self.auth
            .as_ref()
            .is_none_or(|a| a.may_read(self.user_of(client), client, topic))
    }

    /// Whether the broker's ACL lets `client` publish on `topic` (always without an ACL).
    pub fn may_write(&self, client: &str, topic: &str) -> bool {
        self.auth
            .as_ref()
            .is_none_or(|a| a.may_write(self.user_of(client), client, topic))
    }

    /// Whether a fault that can disturb `client`'s connection was applied at some point in
    /// `[a, b]` (positions).
    pub fn disturbed(&self, client: &str, a: Pos, b: Pos) -> bool {
        self.faults.iter().any(|f| {
            self.processes_of(client).any(|p| f.fault.disturbs(p))
                && f.start <= b
                && f.end.is_none_or(|e| e >= a)
        })
    }

    /// The first position at or after `at_us`.
    pub fn pos_at_us(&self, at_us: u64) -> Pos {
        self.trace.events.partition_point(|e| e.at_us < at_us)
    }

    /// Where the broker runs again after a crash at `crash` (the crash's heal), in
    /// microseconds; the end of the run if it never came back.
    pub fn broker_back_us(&self, crash: Pos) -> u64 {
        self.faults
            .iter()
            .find(|f| f.start == crash && matches!(f.fault, Fault::BrokerCrash))
            .and_then(|f| f.end)
            .map_or_else(|| self.trace.end_us(), |p| self.us(p))
    }

    /// Time during which the broker was paused, crashed or not yet restarted within
    /// `[a_us, b_us]`, in microseconds.
    pub fn broker_stalled_us(&self, a_us: u64, b_us: u64) -> u64 {
        let end_us = self.trace.end_us();
        self.faults
            .iter()
            .filter(|f| {
                matches!(f.fault, Fault::BrokerCrash)
                    || matches!(f.fault, Fault::Pause { node } if node == crate::trace::BROKER)
            })
            .map(|f| {
                let s = self.us(f.start).max(a_us);
                let e = f.end.map_or(end_us, |e| self.us(e)).min(b_us);
                e.saturating_sub(s)
            })
            .sum()
    }
}
