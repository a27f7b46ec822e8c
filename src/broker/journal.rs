//! The change journal: what a store must write so that it holds the broker's durable state
//! ([`DurableState`]) again, one row at a time, instead of a whole snapshot per change.
//!
//! The durable state is a set of rows, each with a key: a persistent session's own row
//! ([`SessionRow`]), its subscriptions (client, filter), its inbound QoS 2 packet identifiers
//! (client, identifier), its outbound deliveries (client, `Delivery::seq`: queued, in flight,
//! or released and awaiting PUBCOMP, [`OutRow`]), the retained messages (topic), the waiting 5.0
//! wills (client), and the counter of assigned client identifiers. A [`Change`] sets one row to
//! its current value or removes it; `SessionDelete` removes a session with every row under it.
//!
//! The broker records which rows changed as it handles events (keys only, and only once
//! [`super::BrokerCore::record_changes`] turned recording on) and, when the shell asks
//! ([`super::BrokerCore::take_changes`]), turns them into changes holding the rows' current
//! values. So a change costs what it touches, never what is stored, and applying every batch in
//! order to the rows a store held when recording began yields the broker's durable state.
//!
//! [`ModelTables`] applies changes to ordered maps shaped like a store's tables and rebuilds the
//! state from them: the reference a store is compared with, and the check, in the broker's
//! unit tests and fuzz target, that no change was missed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::ConnId;
use super::session::{Delivery, Grant, Inflight, Marks, Message, Session};
use super::state::{DurableState, PendingWill};

/// The changes of one batch, in the order to apply them, and what the output produced since
/// the last batch was taken may reveal of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub ops: Vec<Change>,
    /// The broker's logical time when the batch was taken (`DurableState::clock`).
    pub clock: Duration,
    /// The number of the last event the broker handled (each `handle_*` call counts one):
    /// the batch holds the changes of every event up to it not taken before.
    pub event: u64,
    /// What the output produced since the last batch was taken may reveal: `None`, every
    /// change made so far; `Some(n)`, only the changes of events up to `n` (an
    /// acknowledgement that moved queued messages, offered earlier with their packet
    /// identifiers reserved, into flight: its own changes need not be durable before they
    /// leave). A shell holding output until what it reveals is durable (`net/durability.rs`)
    /// holds it accordingly.
    pub output_needs: Option<u64>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// One row of the durable state set to its current value, or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A persistent session's own row, created or changed.
    SessionPut {
        client: String,
        row: SessionRow,
    },
    /// The session is gone (ended, expired, replaced by a clean start, or no longer
    /// persistent), with its subscriptions, inbound QoS 2 identifiers and deliveries.
    SessionDelete {
        client: String,
    },
    SubPut {
        client: String,
        filter: String,
        grant: Grant,
    },
    SubDelete {
        client: String,
        filter: String,
    },
    /// An inbound QoS 2 packet identifier received and not yet released.
    Qos2Put {
        client: String,
        pkid: u16,
    },
    Qos2Delete {
        client: String,
        pkid: u16,
    },
    /// A delivery offered to the session, sent, or released.
    OutPut {
        client: String,
        seq: u64,
        row: OutRow,
    },
    /// A delivery completed, dropped or handed to another shared-subscription member.
    OutDelete {
        client: String,
        seq: u64,
    },
    RetainedPut {
        topic: String,
        message: Arc<Message>,
    },
    RetainedDelete {
        topic: String,
    },
    /// A 5.0 will waiting for its delay interval.
    WillPut {
        client: String,
        will: Box<PendingWill>,
    },
    WillDelete {
        client: String,
    },
    /// The counter of assigned client identifiers moved on.
    NextAssigned(u64),
}

/// A persistent session's own row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionRow {
    pub expiry_interval: u32,
    /// While offline: when the session expires, in the broker's logical time.
    pub expires_at: Option<Duration>,
    /// The user name the session was authenticated with.
    pub user: Option<String>,
}

/// One outbound delivery of a session, under its `Delivery::seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutRow {
    /// Waiting behind the window or for the client to come back.
    Queued(Delivery),
    /// Sent with `pkid`, awaiting PUBACK (QoS 1) or PUBREC (QoS 2).
    Publish { pkid: u16, delivery: Delivery },
    /// PUBREC received and PUBREL sent, awaiting PUBCOMP.
    Release { pkid: u16 },
}

impl OutRow {
    /// The delivery's message, if the row still holds one (a released delivery does not).
    pub fn message(&self) -> Option<&Arc<Message>> {
        match self {
            OutRow::Queued(d) | OutRow::Publish { delivery: d, .. } => Some(&d.message),
            OutRow::Release { .. } => None,
        }
    }
}

/// The rows of a session, in the journal's terms.
pub(super) fn session_row(s: &Session, user: Option<String>) -> SessionRow {
    SessionRow {
        expiry_interval: s.expiry_interval,
        expires_at: s.expires_at,
        user,
    }
}

/// The outbound rows of a session in send order: in flight, then queued.
pub(super) fn out_rows(s: &Session) -> impl Iterator<Item = (u64, OutRow)> + '_ {
    let inflight = s.inflight().iter().map(|e| (e.seq(), in_flight_row(e)));
    let queued = s
        .queued()
        .iter()
        .map(|d| (d.seq, OutRow::Queued(d.clone())));
    inflight.chain(queued)
}

pub(super) fn in_flight_row(e: &Inflight) -> OutRow {
    match e {
        Inflight::Publish { pkid, delivery } => OutRow::Publish {
            pkid: *pkid,
            delivery: delivery.clone(),
        },
        Inflight::Release { pkid, .. } => OutRow::Release { pkid: *pkid },
    }
}

/// The row of delivery `seq` of a session, if it still has one. Deliveries in flight and
/// queued are each in increasing `seq` order.
pub(super) fn out_row(s: &Session, seq: u64) -> Option<OutRow> {
    let i = s.inflight().partition_point(|e| e.seq() < seq);
    if let Some(e) = s.inflight().get(i)
        && e.seq() == seq
    {
        return Some(in_flight_row(e));
    }
    let i = s.queued().partition_point(|d| d.seq < seq);
    s.queued()
        .get(i)
        .filter(|d| d.seq == seq)
        .map(|d| OutRow::Queued(d.clone()))
}

/// Why rows do not make a durable state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowsError {
    #[error("{table} row {key} belongs to no session")]
    Orphan { table: &'static str, key: String },
    #[error("session {client}: deliveries out of order at seq {seq}")]
    Order { client: String, seq: u64 },
}

/// A durable state as rows in ordered maps, changed by [`Change`]s: what a store's tables hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelTables {
    pub sessions: BTreeMap<String, SessionRow>,
    pub subscriptions: BTreeMap<(String, String), Grant>,
    pub incoming_qos2: BTreeSet<(String, u16)>,
    pub outbound: BTreeMap<(String, u64), OutRow>,
    pub retained: BTreeMap<String, Arc<Message>>,
    pub wills: BTreeMap<String, PendingWill>,
    pub next_assigned: u64,
    pub clock: Duration,
}

impl ModelTables {
    /// The rows of `state`.
    pub fn from_state(state: &DurableState) -> ModelTables {
        let mut t = ModelTables {
            retained: state.retained.clone(),
            wills: state.wills.clone(),
            next_assigned: state.next_assigned,
            clock: state.clock,
            ..ModelTables::default()
        };
        for (client, s) in &state.sessions {
            let user = state.users.get(client).cloned();
            t.sessions.insert(client.clone(), session_row(s, user));
            for (filter, grant) in &s.subscriptions {
                t.subscriptions
                    .insert((client.clone(), filter.clone()), *grant);
            }
            for pkid in s.incoming_qos2() {
                t.incoming_qos2.insert((client.clone(), *pkid));
            }
            for (seq, row) in out_rows(s) {
                t.outbound.insert((client.clone(), seq), row);
            }
        }
        t
    }

    /// Applies a batch, in order.
    pub fn apply(&mut self, changes: &Changes) {
        for change in &changes.ops {
            self.apply_one(change);
        }
        self.clock = changes.clock;
    }

    fn apply_one(&mut self, change: &Change) {
        match change.clone() {
            Change::SessionPut { client, row } => {
                self.sessions.insert(client, row);
            }
            Change::SessionDelete { client } => {
                self.sessions.remove(&client);
                self.subscriptions.retain(|(c, _), _| *c != client);
                self.incoming_qos2.retain(|(c, _)| *c != client);
                self.outbound.retain(|(c, _), _| *c != client);
            }
            Change::SubPut {
                client,
                filter,
                grant,
            } => {
                self.subscriptions.insert((client, filter), grant);
            }
            Change::SubDelete { client, filter } => {
                self.subscriptions.remove(&(client, filter));
            }
            Change::Qos2Put { client, pkid } => {
                self.incoming_qos2.insert((client, pkid));
            }
            Change::Qos2Delete { client, pkid } => {
                self.incoming_qos2.remove(&(client, pkid));
            }
            Change::OutPut { client, seq, row } => {
                self.outbound.insert((client, seq), row);
            }
            Change::OutDelete { client, seq } => {
                self.outbound.remove(&(client, seq));
            }
            Change::RetainedPut { topic, message } => {
                self.retained.insert(topic, message);
            }
            Change::RetainedDelete { topic } => {
                self.retained.remove(&topic);
            }
            Change::WillPut { client, will } => {
                self.wills.insert(client, *will);
            }
            Change::WillDelete { client } => {
                self.wills.remove(&client);
            }
            Change::NextAssigned(n) => self.next_assigned = n,
        }
    }

    /// The durable state the rows hold, with `Session::next_pkid` and `Session::next_seq` left
    /// 0 (as `DurableState::normalized`).
    pub fn state(&self) -> Result<DurableState, RowsError> {
        let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
        let mut users = BTreeMap::new();
        for (client, row) in &self.sessions {
            let mut s = Session::new(row.expiry_interval);
            s.expires_at = row.expires_at;
            s.next_pkid = 0;
            s.next_seq = 0;
            if let Some(user) = &row.user {
                users.insert(client.clone(), user.clone());
            }
            sessions.insert(client.clone(), s);
        }
        let orphan = |table, key: String| RowsError::Orphan { table, key };
        for ((client, filter), grant) in &self.subscriptions {
            let s = sessions
                .get_mut(client)
                .ok_or_else(|| orphan("subscriptions", format!("{client}/{filter}")))?;
            s.subscriptions.insert(filter.clone(), *grant);
        }
        for (client, pkid) in &self.incoming_qos2 {
            let s = sessions
                .get_mut(client)
                .ok_or_else(|| orphan("incoming_qos2", format!("{client}/{pkid}")))?;
            s.flow_mut().incoming_qos2.insert(*pkid);
        }
        for ((client, seq), row) in &self.outbound {
            let s = sessions
                .get_mut(client)
                .ok_or_else(|| orphan("outbound", format!("{client}/{seq}")))?;
            push_out_row(s, client, *seq, row.clone())?;
        }
        Ok(DurableState {
            sessions,
            retained: self.retained.clone(),
            wills: self.wills.clone(),
            users,
            next_assigned: self.next_assigned,
            clock: self.clock,
        })
    }
}

/// Adds the next row, in `seq` order, to a session being rebuilt: in-flight rows come before
/// every queued one.
pub fn push_out_row(s: &mut Session, client: &str, seq: u64, row: OutRow) -> Result<(), RowsError> {
    let order = || RowsError::Order {
        client: client.to_owned(),
        seq,
    };
    match row {
        OutRow::Queued(mut d) => {
            d.seq = seq;
            s.flow_mut().queued.push_back(d);
        }
        OutRow::Publish { pkid, mut delivery } => {
            if !s.queued().is_empty() {
                return Err(order());
            }
            delivery.seq = seq;
            s.flow_mut()
                .inflight
                .push_back(Inflight::Publish { pkid, delivery });
        }
        OutRow::Release { pkid } => {
            if !s.queued().is_empty() {
                return Err(order());
            }
            s.flow_mut()
                .inflight
                .push_back(Inflight::Release { pkid, seq });
        }
    }
    Ok(())
}

/// The broker's own marks while recording (sessions and retained messages keep theirs).
#[derive(Debug, Default)]
pub(super) struct BrokerMarks {
    /// Clients whose waiting will may have changed.
    pub wills: BTreeSet<String>,
    /// The counter of assigned client identifiers as last written (`None`: not yet).
    pub next_assigned: Option<u64>,
}

impl BrokerMarks {
    pub fn will(&mut self, client: &str) {
        self.wills.insert(client.to_owned());
    }
}

/// The broker's sessions by client id, noting which ones were reached for change while the
/// journal records.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    /// Boxed: an ordered map's nodes hold room for several entries, so small entries keep
    /// an idle client's cost near the size of its session.
    /// Keyed by the client id the client's connection shares (`Sessions::client_id`).
    map: BTreeMap<Arc<str>, Box<Session>>,
    /// `Some` while recording: clients whose session was changed, created or removed.
    touched: Option<BTreeSet<String>>,
    /// Clients whose stored session was removed (the store must delete it before anything
    /// written for a new session under the same id).
    cleared: BTreeSet<String>,
}

/// Records that `client`'s session changed, when changes are being recorded.
fn mark_touched(touched: &mut Option<BTreeSet<String>>, client: &str) {
    if let Some(t) = touched
        && !t.contains(client)
    {
        t.insert(client.to_owned());
    }
}

impl Sessions {
    pub fn from_map(map: BTreeMap<String, Session>) -> Sessions {
        Sessions {
            map: map
                .into_iter()
                .map(|(c, s)| (c.into(), Box::new(s)))
                .collect(),
            ..Sessions::default()
        }
    }

    fn touch(&mut self, client: &str) {
        mark_touched(&mut self.touched, client);
    }

    pub fn get(&self, client: &str) -> Option<&Session> {
        self.map.get(client).map(|s| &**s)
    }

    pub fn get_mut(&mut self, client: &str) -> Option<&mut Session> {
        let session = self.map.get_mut(client)?;
        mark_touched(&mut self.touched, client);
        Some(&mut **session)
    }

    /// The session of `client`, created by `new` if there is none.
    pub fn get_or_insert_with(
        &mut self,
        client: &str,
        new: impl FnOnce() -> Session,
    ) -> &mut Session {
        self.touch(client);
        if !self.map.contains_key(client) {
            self.map.insert(client.into(), Box::new(new()));
        }
        self.map.get_mut(client).expect("inserted above")
    }

    /// `client`, as the key of its session, to be shared.
    pub fn client_id(&self, client: &str) -> Option<Arc<str>> {
        self.map.get_key_value(client).map(|(c, _)| c.clone())
    }

    pub fn remove(&mut self, client: &str) -> Option<Session> {
        let s = self.map.remove(client)?;
        self.touch(client);
        if s.marks.saved {
            self.cleared.insert(client.to_owned());
        }
        Some(*s)
    }

    pub fn contains_key(&self, client: &str) -> bool {
        self.map.contains_key(client)
    }

    /// The connection `client`'s session is attached to, if it has a session and is connected.
    pub fn conn_of(&self, client: &str) -> Option<ConnId> {
        self.map.get(client).and_then(|s| s.conn.0.get())
    }

    /// Attaches `client`'s session to `conn` (`None`: detaches it) and gives the connection it
    /// was attached to before; `None` if `client` has no session. Not a change of state: the
    /// journal is not told.
    pub fn set_conn(&mut self, client: &str, conn: Option<ConnId>) -> Option<Option<ConnId>> {
        let s = self.map.get_mut(client)?;
        Some(s.conn.0.replace(conn))
    }

    /// Frees the room of `client`'s message traffic if its session holds none
    /// (`Session::trim`). Not a change of state: the journal is not told.
    pub fn trim(&mut self, client: &str) {
        if let Some(s) = self.map.get_mut(client) {
            s.trim();
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Session)> {
        self.map.iter().map(|(c, s)| (c, &**s))
    }

    pub fn values(&self) -> impl Iterator<Item = &Session> {
        self.map.values().map(|s| &**s)
    }

    /// Starts recording: the store holds every persistent session as it is now. Their own rows
    /// are written again by the first batch (a restore may have started their expiry).
    pub fn record(&mut self) {
        let mut touched = BTreeSet::new();
        for (client, s) in &mut self.map {
            if s.is_persistent() {
                s.marks = Marks::default();
                s.marks.saved = true;
                s.marks.row = true;
                touched.insert(client.to_string());
            }
        }
        self.touched = Some(touched);
    }

    /// The changes of every touched session, their marks cleared. `user` gives a client's
    /// user name.
    pub fn take(&mut self, ops: &mut Vec<Change>, user: impl Fn(&str) -> Option<String>) {
        let Some(touched) = self.touched.as_mut() else {
            return;
        };
        for client in std::mem::take(touched) {
            if self.cleared.remove(&client) {
                ops.push(Change::SessionDelete {
                    client: client.clone(),
                });
            }
            let Some(s) = self.map.get_mut(client.as_str()) else {
                continue;
            };
            let mut marks = std::mem::take(&mut s.marks);
            let keys = marks.take_keys();
            if !s.is_persistent() {
                if marks.saved {
                    ops.push(Change::SessionDelete { client });
                }
                continue;
            }
            s.marks.saved = true;
            if !marks.saved {
                write_whole(ops, &client, s, user(&client));
                continue;
            }
            if marks.row {
                ops.push(Change::SessionPut {
                    client: client.clone(),
                    row: session_row(s, user(&client)),
                });
            }
            for filter in keys.subs {
                ops.push(match s.subscriptions.get(&filter) {
                    Some(grant) => Change::SubPut {
                        client: client.clone(),
                        filter,
                        grant: *grant,
                    },
                    None => Change::SubDelete {
                        client: client.clone(),
                        filter,
                    },
                });
            }
            for pkid in keys.qos2 {
                let client = client.clone();
                ops.push(if s.incoming_qos2().contains(&pkid) {
                    Change::Qos2Put { client, pkid }
                } else {
                    Change::Qos2Delete { client, pkid }
                });
            }
            for seq in keys.out {
                let client = client.clone();
                ops.push(match out_row(s, seq) {
                    Some(row) => Change::OutPut { client, seq, row },
                    None => Change::OutDelete { client, seq },
                });
            }
        }
    }
}

/// Every row of a session the store does not hold yet, after removing whatever the store might
/// still hold under its client id (rows of a session the broker was restored without).
fn write_whole(ops: &mut Vec<Change>, client: &str, s: &Session, user: Option<String>) {
    ops.push(Change::SessionDelete {
        client: client.to_owned(),
    });
    ops.push(Change::SessionPut {
        client: client.to_owned(),
        row: session_row(s, user),
    });
    for (filter, grant) in &s.subscriptions {
        ops.push(Change::SubPut {
            client: client.to_owned(),
            filter: filter.clone(),
            grant: *grant,
        });
    }
    for pkid in s.incoming_qos2() {
        ops.push(Change::Qos2Put {
            client: client.to_owned(),
            pkid: *pkid,
        });
    }
    for (seq, row) in out_rows(s) {
        ops.push(Change::OutPut {
            client: client.to_owned(),
            seq,
            row,
        });
    }
}
