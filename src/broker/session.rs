//! A client's session: its subscriptions, the outbound QoS 1/2 inflight window with its packet
//! identifiers, the queue behind the window (and while offline), and the inbound QoS 2 packet
//! identifiers awaiting PUBREL.
//!
//! Order: messages leave in the order they were offered; a message is queued whenever the queue
//! is not empty, so nothing overtakes what waits behind the window (section 4.6). The inflight
//! list is kept in original send order (a PUBREC turns an entry into a pending PUBREL in
//! place), which is the order of the resend on resumption ([MQTT-4.4.0-1]).
//!
//! Message expiry ([MQTT-3.3.2-5]): a queued message whose expiry interval has passed is dropped
//! instead of sent, or when a new message finds the queue full (counted in
//! `BrokerStats::expired_dropped`; the full queue is searched only once the earliest expiry among
//! its messages has passed, so a full queue costs nothing per arrival); a message sent gets the
//! whole seconds that remain as its expiry interval ([MQTT-3.3.2-6]). A message already sent (in
//! flight) is resent on resumption even if it has expired since, as its delivery has begun.
//!
//! Memory: the messages and identifiers a session holds are one boxed [`Flow`], allocated by
//! the first of them, so a session that holds none (an idle client's) keeps one pointer for
//! them instead of empty collections.
//!
//! Not here: routing (`delivery.rs`), the connection the session is attached to and what may be
//! sent on it (`outbound.rs`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::codec::{Packet, Properties, Protocol, Publish, QoS, SubscriptionOptions};

use super::clock;
use super::config::{BrokerConfig, QueueOverflow};
use super::outbound::Tx;

/// An application message as the broker keeps it: what was published, with the 5.0 properties
/// to forward (topic alias and subscription identifiers removed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// The broker's number for it, unique among the messages it holds (`Broker::message`);
    /// every session it is delivered to and the retained store share it under this one id.
    /// 0 in a state written without ids; a restored broker numbers those afresh.
    #[serde(default)]
    pub id: u64,
    pub topic: String,
    pub payload: Bytes,
    /// The QoS it was published with.
    pub qos: QoS,
    /// The retain flag it was published with.
    pub retain: bool,
    /// As published, except the message expiry interval, which `expires_at` replaces.
    pub properties: Properties,
    /// When the message expires, in the broker's logical time (`Broker::clock`); `None` never.
    pub expires_at: Option<Duration>,
}

impl Message {
    /// Whether the message's expiry interval has passed at logical time `now`.
    pub fn expired(&self, now: Duration) -> bool {
        self.expires_at.is_some_and(|at| now > at)
    }
}

/// One message on its way to one session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    pub message: Arc<Message>,
    /// Its place in the session's send order, from the session's counter when it is offered
    /// (`Session::offer`; 0 before): in flight and queued deliveries, and the pending PUBRELs
    /// that keep their delivery's number, are in increasing order.
    #[serde(default)]
    pub seq: u64,
    /// min(published QoS, granted QoS).
    pub qos: QoS,
    /// The retain flag to send: 1 for retained messages sent on subscribe; for live messages 0
    /// unless a 5.0 subscription asked for retain-as-published.
    pub retain: bool,
    /// 5.0 subscription identifiers of the matching subscriptions.
    pub subscription_ids: Vec<u32>,
    /// The shared subscription (`$share/group/filter`) it was delivered through, if any: it is
    /// given to another member if this session ends before it is acknowledged.
    pub share: Option<String>,
    /// Its packet identifier in this session. While queued: the one reserved for it when it
    /// was queued (QoS 1/2), so that sending it later changes nothing that must be made
    /// durable first; 0 when none was reserved (QoS 0, or the session had no identifier to
    /// spare) and one is taken on sending. In flight: the one it was sent with.
    #[serde(default)]
    pub pkid: u16,
    /// Bookkeeping, not state (see [`Placed`]).
    #[serde(skip)]
    pub(crate) placed: Placed,
}

/// What the broker knows of a delivery beyond its state: when it was offered to its session.
/// Every two compare equal, so deliveries compare by their contents alone.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Placed {
    /// The broker event (`Broker::event_no`, from 1) that offered it to its session; 0 for one
    /// restored from a store, whose rows are durable. Output that sends it reveals that event's
    /// changes.
    pub event: u64,
}

impl Delivery {
    /// Whether it may already have been sent under its packet identifier: restored while queued
    /// with a reserved one (moving a delivery into flight is not waited for), so it is sent
    /// with DUP set ([MQTT-3.3.1-1]).
    fn maybe_sent(&self) -> bool {
        self.pkid != 0 && self.placed.event == 0
    }
}

impl PartialEq for Placed {
    fn eq(&self, _: &Placed) -> bool {
        true
    }
}

impl Eq for Placed {}

/// A subscription as granted: its options and its 5.0 subscription identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub options: SubscriptionOptions,
    pub id: Option<u32>,
}

/// An outbound QoS 1/2 message not yet completed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Inflight {
    /// Sent, awaiting PUBACK (QoS 1) or PUBREC (QoS 2).
    Publish { pkid: u16, delivery: Delivery },
    /// PUBREC received and PUBREL sent, awaiting PUBCOMP; `seq` is the released delivery's.
    Release {
        pkid: u16,
        #[serde(default)]
        seq: u64,
    },
}

impl Inflight {
    pub fn pkid(&self) -> u16 {
        match self {
            Inflight::Publish { pkid, .. } | Inflight::Release { pkid, .. } => *pkid,
        }
    }

    /// Its place in the session's send order (`Delivery::seq`).
    pub fn seq(&self) -> u64 {
        match self {
            Inflight::Publish { delivery, .. } => delivery.seq,
            Inflight::Release { seq, .. } => *seq,
        }
    }
}

/// Everything the broker keeps for one client identifier.
///
/// Serialized as `SessionForm` says: its durable fields, without the counters and bookkeeping
/// a restored session computes again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Seconds the session outlives its connection: 0 ends it with the connection (3.1.1 clean
    /// session), `u32::MAX` never (3.1.1 persistent session).
    pub expiry_interval: u32,
    /// Filter → grant, as subscribed.
    pub subscriptions: BTreeMap<String, Grant>,
    /// Its messages in flight and queued and its inbound QoS 2 packet identifiers; allocated
    /// by the first (`Session::flow_mut`).
    flow: FlowBox,
    /// The next outbound packet identifier to try; 0 in a state that does not keep it (see
    /// `DurableState::normalized`), where a restored session goes on after the identifier of
    /// its last delivery in flight.
    pub next_pkid: u16,
    /// The `Delivery::seq` of the next delivery offered. Not kept in the durable state: a
    /// restored session goes on after its highest.
    pub next_seq: u64,
    /// While offline: when the session expires, in the broker's logical time; `None` while
    /// connected or for an interval of `u32::MAX`.
    pub expires_at: Option<Duration>,
    /// Which of its rows changed since the journal last looked (`journal.rs`); not state.
    pub(crate) marks: Marks,
    /// The connection the session is attached to, while its client is connected; `None` in a
    /// session just built or restored. Kept by the broker (`Broker::attach`, `Broker::detach`);
    /// not state.
    pub(crate) conn: Attached,
}

/// A session's message traffic: outbound messages in flight and queued, inbound QoS 2 packet
/// identifiers, and the summaries kept beside the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flow {
    /// Outbound QoS 1/2 messages in flight, in original send order.
    pub inflight: VecDeque<Inflight>,
    /// Messages waiting for room in the window or for the client to come back.
    pub queued: VecDeque<Delivery>,
    /// Inbound QoS 2 packet identifiers received and not yet released by PUBREL.
    pub incoming_qos2: BTreeSet<u16>,
    /// The payload bytes of `queued`, kept by this file's methods and counted again by
    /// `Session::restore_counters`; not state.
    pub(crate) queued_bytes: Tally,
    /// The packet identifiers reserved by queued deliveries (`Delivery::pkid`), kept by this
    /// file's methods and gathered again by `Session::restore_counters`; not state.
    pub(crate) reserved: Reserved,
    /// No queued message expires before this time: a full queue is searched for expired
    /// messages only once it has passed. Kept by this file's methods, 0 (search) in a flow
    /// just built; not state.
    pub(crate) unexpired_until: Floor,
    /// Packet identifiers known to be free, from `Session::next_pkid` on (`Session::alloc_pkid`);
    /// not state.
    pub(crate) free: Free,
}

/// The flow of a session that holds none.
static NO_FLOW: Flow = Flow {
    inflight: VecDeque::new(),
    queued: VecDeque::new(),
    incoming_qos2: BTreeSet::new(),
    queued_bytes: Kept(0),
    reserved: Kept(BTreeSet::new()),
    unexpired_until: Kept(0),
    free: Kept(FreeRun { from: 0, count: 0 }),
};

impl Flow {
    /// No message in flight or queued and no inbound QoS 2 identifier.
    fn is_empty(&self) -> bool {
        self.inflight.is_empty() && self.queued.is_empty() && self.incoming_qos2.is_empty()
    }

    /// In flight then queued, in send order.
    fn seqs(&self) -> impl Iterator<Item = u64> + '_ {
        let queued = self.queued.iter().map(|d| d.seq);
        self.inflight.iter().map(Inflight::seq).chain(queued)
    }

    /// A queued delivery leaves the queue: its reserved identifier, if any, is no longer held
    /// by the queue (it goes into flight with it, or is free again).
    fn unqueued(&mut self, d: &Delivery) {
        self.queued_bytes.0 -= d.message.payload.len();
        if d.pkid != 0 {
            self.reserved.0.remove(&d.pkid);
        }
    }
}

/// A session's [`Flow`], boxed and allocated at first use, so that a session holding no
/// message keeps a pointer instead of empty collections. An absent flow reads as an empty one
/// and compares equal to it. `trim` frees an empty one where a session goes quiet (restored,
/// detached, or its client sending PINGREQ), never per message: a steady flow of messages
/// that drains between them keeps its allocation.
#[derive(Clone, Default)]
struct FlowBox(Option<Box<Flow>>);

impl FlowBox {
    /// A flow holding these; none allocated if they are empty.
    fn of(
        inflight: VecDeque<Inflight>,
        queued: VecDeque<Delivery>,
        incoming_qos2: BTreeSet<u16>,
    ) -> FlowBox {
        let flow = Flow {
            inflight,
            queued,
            incoming_qos2,
            ..Flow::default()
        };
        FlowBox((!flow.is_empty()).then(|| Box::new(flow)))
    }

    fn get(&self) -> &Flow {
        self.0.as_deref().unwrap_or(&NO_FLOW)
    }

    /// The flow, allocated if there was none.
    fn get_mut(&mut self) -> &mut Flow {
        self.0.get_or_insert_default()
    }

    /// The flow if allocated: for changes that an empty flow needs none of.
    fn allocated_mut(&mut self) -> Option<&mut Flow> {
        self.0.as_deref_mut()
    }

    /// Frees the flow if it holds nothing.
    fn trim(&mut self) {
        if self.0.as_ref().is_some_and(|f| f.is_empty()) {
            self.0 = None;
        }
    }
}

impl PartialEq for FlowBox {
    fn eq(&self, other: &FlowBox) -> bool {
        self.get() == other.get()
    }
}

impl Eq for FlowBox {}

impl std::fmt::Debug for FlowBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// The serialized form of a [`Session`]: its durable fields, in this order. Written from the
/// session through its accessors, read into a new session (`From<SessionForm>`).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "Session", rename = "Session")]
struct SessionForm {
    expiry_interval: u32,
    subscriptions: BTreeMap<String, Grant>,
    #[serde(getter = "Session::inflight")]
    inflight: VecDeque<Inflight>,
    #[serde(getter = "Session::queued")]
    queued: VecDeque<Delivery>,
    #[serde(getter = "Session::incoming_qos2")]
    incoming_qos2: BTreeSet<u16>,
    #[serde(default)]
    next_pkid: u16,
    expires_at: Option<Duration>,
}

/// A session as read from a durable state: its counters and bookkeeping are 0 or empty until
/// `Session::restore_counters`.
impl From<SessionForm> for Session {
    fn from(form: SessionForm) -> Session {
        Session {
            expiry_interval: form.expiry_interval,
            subscriptions: form.subscriptions,
            flow: FlowBox::of(form.inflight, form.queued, form.incoming_qos2),
            next_pkid: form.next_pkid,
            next_seq: 0,
            expires_at: form.expires_at,
            marks: Marks::default(),
            conn: Attached::default(),
        }
    }
}

impl serde::Serialize for Session {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SessionForm::serialize(self, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Session {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Session, D::Error> {
        SessionForm::deserialize(deserializer)
    }
}

/// A summary kept beside the state it summarises (a count, a set of identifiers, a bound): it
/// compares equal to every other, so sessions and durable states compare by their contents
/// alone.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Kept<T>(pub T);

impl<T> PartialEq for Kept<T> {
    fn eq(&self, _: &Kept<T>) -> bool {
        true
    }
}

impl<T> Eq for Kept<T> {}

/// The payload bytes of a session's queue.
pub(crate) type Tally = Kept<usize>;

/// The packet identifiers queued deliveries hold.
pub(crate) type Reserved = Kept<BTreeSet<u16>>;

/// A lower bound on the expiry times of a session's queued messages, in nanoseconds of the
/// broker's logical time (8 bytes where a `Duration` takes 16; saturated at `u64::MAX`, which
/// stays a lower bound).
pub(crate) type Floor = Kept<u64>;

/// A run of `count` packet identifiers, from `from` on (wrapping from 65,535 to 1), that no
/// message in flight or queued holds. Only `Session::alloc_pkid` takes identifiers from it, and
/// only it and reservations of what it hands out add identifiers while a run is kept, so the
/// run stays free; it counts only while `from` is the session's next identifier.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FreeRun {
    pub from: u16,
    pub count: u16,
}

/// The free identifiers ahead of a session's next one.
pub(crate) type Free = Kept<FreeRun>;

/// The packet identifier after `p`: 1 after 65,535 (and after 0).
fn next_pkid(p: u16) -> u16 {
    if p == u16::MAX { 1 } else { p + 1 }
}

/// How many identifiers from `from` on (wrapping from 65,535 to 1) no message of `flow` in
/// flight or queued holds: 0 if `from` (or 0, which is none) is held.
fn free_run(from: u16, flow: &Flow) -> u16 {
    if from == 0 {
        return 0;
    }
    // Identifiers 1..=65,535 as 0..65,535, and each held one's distance ahead of `from`.
    let ahead = |q: u16| (u32::from(q) + 65_535 - u32::from(from)) % 65_535;
    let held = flow.inflight.iter().map(Inflight::pkid);
    let nearest = held
        .chain(flow.reserved.0.iter().copied())
        .filter(|&q| q != 0)
        .map(ahead)
        .min()
        .unwrap_or(65_535);
    u16::try_from(nearest).unwrap_or(u16::MAX)
}

/// The connection a session is attached to.
pub(crate) type Attached = Kept<Slot>;

/// A connection or none, in 8 bytes where an `Option<ConnId>` takes 16: the id plus one, so
/// `ConnId::MAX` is not one it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Slot(Option<std::num::NonZeroU64>);

impl Slot {
    /// The connection held, if any.
    pub fn get(self) -> Option<super::ConnId> {
        self.0.map(|n| n.get() - 1)
    }

    /// Holds `conn` instead; gives the connection held before.
    pub fn replace(&mut self, conn: Option<super::ConnId>) -> Option<super::ConnId> {
        let new = conn.map(|c| {
            c.checked_add(1)
                .and_then(std::num::NonZeroU64::new)
                .expect("connection ids are below ConnId::MAX")
        });
        std::mem::replace(&mut self.0, new).map(|n| n.get() - 1)
    }
}

/// `t` in nanoseconds, saturated.
fn nanos(t: Duration) -> u64 {
    u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)
}

impl Floor {
    /// Above every expiry time.
    const NONE: Floor = Kept(u64::MAX);

    /// Takes in a message queued with expiry time `at`.
    fn lower(&mut self, at: Option<Duration>) {
        if let Some(at) = at {
            self.0 = self.0.min(nanos(at));
        }
    }

    /// `now` is past the bound: a queued message may have expired.
    fn passed(&self, now: Duration) -> bool {
        nanos(now) > self.0
    }
}

/// Packet identifiers a session may use: every `u16` but 0.
const PKIDS: usize = u16::MAX as usize;

/// At most this many queued messages hold a reserved packet identifier; those queued behind
/// them take one when they are sent. Bounds the search for a free identifier: with most of the
/// 65,535 reserved by a long queue, every allocation walked long runs of reserved ones.
pub(crate) const MAX_RESERVED: usize = 1024;

/// What changed in one session since the journal last looked: the keys of its changed rows.
/// Bookkeeping, not state: a clone starts empty and every two compare equal, so sessions and
/// durable states compare by their contents alone.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    /// The store holds this session: recording is on and it was persistent when the journal
    /// last looked. Row keys are recorded only then; a session the store does not hold yet is
    /// written whole.
    pub saved: bool,
    /// Its own row (expiry interval, expiry time, user) may have changed.
    pub row: bool,
    /// The keys of its changed rows of the other tables; boxed, allocated by the first key
    /// (most sessions, idle or not held by a store, have none).
    keys: Option<Box<MarkedKeys>>,
}

/// The keys of a session's changed subscription, QoS 2 and outbound rows.
#[derive(Debug, Default)]
pub(crate) struct MarkedKeys {
    pub subs: BTreeSet<String>,
    pub qos2: BTreeSet<u16>,
    pub out: BTreeSet<u64>,
}

impl Marks {
    fn keys(&mut self) -> Option<&mut MarkedKeys> {
        self.saved.then(|| &mut **self.keys.get_or_insert_default())
    }

    pub fn sub(&mut self, filter: &str) {
        if let Some(k) = self.keys() {
            k.subs.insert(filter.to_owned());
        }
    }

    pub fn qos2(&mut self, pkid: u16) {
        if let Some(k) = self.keys() {
            k.qos2.insert(pkid);
        }
    }

    pub fn out(&mut self, seq: u64) {
        if let Some(k) = self.keys() {
            k.out.insert(seq);
        }
    }

    /// The keys marked, which are cleared.
    pub fn take_keys(&mut self) -> MarkedKeys {
        self.keys.take().map(|k| *k).unwrap_or_default()
    }
}

impl Clone for Marks {
    fn clone(&self) -> Marks {
        Marks::default()
    }
}

impl PartialEq for Marks {
    fn eq(&self, _: &Marks) -> bool {
        true
    }
}

impl Eq for Marks {}

/// Why `offer` did not take a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// QoS 0 for an offline session.
    Qos0Offline,
    /// The queue was full; this message was dropped (the arriving one or the oldest one).
    Overflow(Delivery),
}

impl Session {
    pub fn new(expiry_interval: u32) -> Session {
        Session {
            expiry_interval,
            subscriptions: BTreeMap::new(),
            flow: FlowBox::default(),
            next_pkid: 1,
            next_seq: 1,
            expires_at: None,
            marks: Marks::default(),
            conn: Attached::default(),
        }
    }

    /// Its message traffic; an empty one when it holds none.
    pub fn flow(&self) -> &Flow {
        self.flow.get()
    }

    /// Its message traffic, allocated if it held none. The caller may add identifiers in
    /// flight or queued, so the identifiers known to be free are looked for again.
    pub fn flow_mut(&mut self) -> &mut Flow {
        let flow = self.flow.get_mut();
        flow.free = Free::default();
        flow
    }

    /// Holds inbound QoS 2 packet identifier `pkid` until its PUBREL.
    pub fn hold_incoming_qos2(&mut self, pkid: u16) {
        self.flow.get_mut().incoming_qos2.insert(pkid);
    }

    /// Outbound QoS 1/2 messages in flight, in original send order.
    pub fn inflight(&self) -> &VecDeque<Inflight> {
        &self.flow.get().inflight
    }

    /// Messages waiting for room in the window or for the client to come back.
    pub fn queued(&self) -> &VecDeque<Delivery> {
        &self.flow.get().queued
    }

    /// Inbound QoS 2 packet identifiers received and not yet released by PUBREL.
    pub fn incoming_qos2(&self) -> &BTreeSet<u16> {
        &self.flow.get().incoming_qos2
    }

    /// In flight then queued, in send order.
    pub fn seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.flow.get().seqs()
    }

    /// Every message it holds: in flight, then queued.
    pub(crate) fn messages_mut(&mut self) -> impl Iterator<Item = &mut Arc<Message>> + '_ {
        self.flow.allocated_mut().into_iter().flat_map(|flow| {
            let inflight = flow.inflight.iter_mut().filter_map(|entry| match entry {
                Inflight::Publish { delivery, .. } => Some(&mut delivery.message),
                Inflight::Release { .. } => None,
            });
            inflight.chain(flow.queued.iter_mut().map(|d| &mut d.message))
        })
    }

    /// Frees the room of its message traffic if it holds none (see `FlowBox`).
    pub(crate) fn trim(&mut self) {
        self.flow.trim();
    }

    /// Whether room for its message traffic is allocated.
    #[cfg(test)]
    pub(crate) fn holds_flow(&self) -> bool {
        self.flow.0.is_some()
    }

    /// The counters of a restored session: the next `seq` after the highest, the bytes queued,
    /// and, unless the state kept it, the next packet identifier after the one of the last
    /// delivery in flight. A restored session is attached to no connection.
    /// A state written without sequence numbers, or whose order they do not follow, is
    /// numbered afresh in its order.
    pub(crate) fn restore_counters(&mut self) {
        self.conn = Attached::default();
        self.trim();
        if let Some(flow) = self.flow.allocated_mut() {
            let ordered = flow
                .seqs()
                .try_fold(0, |last, seq| (seq > last).then_some(seq));
            if ordered.is_none() {
                let mut n = 0;
                let mut next = || {
                    n += 1;
                    n
                };
                for entry in &mut flow.inflight {
                    match entry {
                        Inflight::Publish { delivery, .. } => delivery.seq = next(),
                        Inflight::Release { seq, .. } => *seq = next(),
                    }
                }
                for d in &mut flow.queued {
                    d.seq = next();
                }
            }
            flow.queued_bytes = Kept(flow.queued.iter().map(|d| d.message.payload.len()).sum());
            // A queued delivery with a reserved identifier may have been sent under it; one
            // whose identifier another entry holds (a state not written by a broker) takes a
            // new one.
            let mut used: BTreeSet<u16> = flow.inflight.iter().map(Inflight::pkid).collect();
            let mut reserved = BTreeSet::new();
            for d in &mut flow.queued {
                d.placed = Placed::default();
                if d.pkid == 0 || d.qos == QoS::AtMostOnce || !used.insert(d.pkid) {
                    d.pkid = 0;
                    continue;
                }
                reserved.insert(d.pkid);
            }
            flow.reserved = Kept(reserved);
            flow.free = Free::default();
        }
        self.next_seq = self.seqs().max().unwrap_or(0) + 1;
        if self.next_pkid == 0 {
            let last = self
                .queued()
                .iter()
                .rev()
                .map(|d| d.pkid)
                .find(|&p| p != 0)
                .or_else(|| self.inflight().back().map(Inflight::pkid));
            self.next_pkid = match last {
                Some(p) if p != u16::MAX => p + 1,
                _ => 1,
            };
        }
    }

    /// Whether the session outlives its connection (and belongs to the durable state).
    pub fn is_persistent(&self) -> bool {
        self.expiry_interval != 0
    }

    /// A packet identifier neither in flight nor reserved. Only called when one is free: with
    /// room in the window (reservations leave room for a whole window, see `reserve`) or by
    /// `reserve`.
    fn alloc_pkid(&mut self) -> u16 {
        let p = self.next_pkid;
        let flow = self.flow.get_mut();
        let mut run = flow.free.0;
        if run.from != p || run.count == 0 {
            run = FreeRun {
                from: p,
                count: free_run(p, flow),
            };
        }
        if run.count == 0 {
            // `p` itself is held: look further one at a time, as rarely as identifiers wrap.
            flow.free.0 = FreeRun::default();
            return self.alloc_pkid_slow();
        }
        let next = next_pkid(p);
        self.next_pkid = next;
        flow.free.0 = FreeRun {
            from: next,
            count: run.count - 1,
        };
        p
    }

    /// `alloc_pkid` when the next identifier is held: the first free one after it.
    fn alloc_pkid_slow(&mut self) -> u16 {
        let flow = self.flow.get();
        for _ in 0..=u16::MAX {
            let p = self.next_pkid;
            self.next_pkid = next_pkid(p);
            if p != 0
                && !flow.reserved.0.contains(&p)
                && !flow.inflight.iter().any(|e| e.pkid() == p)
            {
                return p;
            }
        }
        unreachable!(
            "no free packet identifier with {} messages in flight and {} reserved",
            flow.inflight.len(),
            flow.reserved.0.len()
        );
    }

    /// Reserves a packet identifier for a QoS 1/2 delivery about to be queued, while enough
    /// stay free for a whole window besides ([MQTT-2.2.1-4]: one identifier per message in
    /// flight); without one it takes one when it is sent.
    fn reserve(&mut self, d: &mut Delivery, max_inflight: u16) {
        d.pkid = 0;
        let flow = self.flow.get();
        let busy = flow.inflight.len().max(usize::from(max_inflight));
        let reserved = flow.reserved.0.len();
        if d.qos != QoS::AtMostOnce && reserved < MAX_RESERVED && reserved + busy + 1 < PKIDS {
            d.pkid = self.alloc_pkid();
            self.flow.get_mut().reserved.0.insert(d.pkid);
        }
    }

    /// Queues `d` behind every queued delivery, with a packet identifier reserved if one can
    /// be.
    fn push_queued(&mut self, mut d: Delivery, max_inflight: u16) {
        self.marks.out(d.seq);
        self.reserve(&mut d, max_inflight);
        let flow = self.flow.get_mut();
        flow.queued_bytes.0 += d.message.payload.len();
        flow.unexpired_until.lower(d.message.expires_at);
        flow.queued.push_back(d);
    }

    /// Takes a message for this session: sends it at once when connected with room and nothing
    /// queued, else queues it (QoS 0 for an offline session is dropped).
    /// Expired messages are purged from a full queue before the overflow policy applies;
    /// `expired` counts them.
    pub(crate) fn offer(
        &mut self,
        mut d: Delivery,
        tx: Option<&mut Tx<'_>>,
        now: Duration,
        config: &BrokerConfig,
        expired: &mut u64,
    ) -> Result<(), Refused> {
        d.seq = self.next_seq;
        self.next_seq += 1;
        d.pkid = 0;
        match tx {
            None if d.qos == QoS::AtMostOnce => return Err(Refused::Qos0Offline),
            Some(tx) if self.queued().is_empty() && self.has_room(&d, tx) => {
                self.send(d, tx);
                return Ok(());
            }
            _ => {}
        }
        if self.flow.get().queued_bytes.0 + d.message.payload.len() > config.max_queued_bytes {
            return Err(Refused::Overflow(d));
        }
        let flow = self.flow.get_mut();
        if flow.queued.len() >= config.max_queued_messages && flow.unexpired_until.passed(now) {
            let (marks, bytes, reserved) =
                (&mut self.marks, &mut flow.queued_bytes, &mut flow.reserved);
            let mut floor = Floor::NONE;
            flow.queued.retain(|q| {
                let keep = !q.message.expired(now);
                if keep {
                    floor.lower(q.message.expires_at);
                } else {
                    *expired += 1;
                    marks.out(q.seq);
                    bytes.0 -= q.message.payload.len();
                    reserved.0.remove(&q.pkid);
                }
                keep
            });
            flow.unexpired_until = floor;
        }
        if flow.queued.len() >= config.max_queued_messages {
            match config.queue_overflow {
                QueueOverflow::DropNewest => return Err(Refused::Overflow(d)),
                QueueOverflow::DropOldest => {
                    let Some(old) = flow.queued.pop_front() else {
                        // max_queued_messages == 0: nothing can wait.
                        return Err(Refused::Overflow(d));
                    };
                    flow.unqueued(&old);
                    self.marks.out(old.seq);
                    self.push_queued(d, config.max_inflight);
                    return Err(Refused::Overflow(old));
                }
            }
        }
        self.push_queued(d, config.max_inflight);
        Ok(())
    }

    /// Room in the window, and for a delivery without a reserved identifier a free one (a
    /// store restored under a larger `max_inflight` may hold more reservations than `reserve`
    /// leaves room for: the delivery then waits for acknowledgements to free one).
    fn has_room(&self, d: &Delivery, tx: &Tx<'_>) -> bool {
        let flow = self.flow.get();
        d.qos == QoS::AtMostOnce
            || (flow.inflight.len() < tx.window
                && (d.pkid != 0 || flow.inflight.len() + flow.reserved.0.len() < PKIDS))
    }

    /// Sends one message now (QoS 0) or puts it in flight; an expired message is dropped, and
    /// one too large for the client is treated as sent and completed ([MQTT-3.1.2-25]).
    ///
    /// What the PUBLISH reveals is told to `tx`: the event that offered the delivery, and,
    /// when it takes a packet identifier now, everything (the identifier must be durable
    /// before the PUBLISH leaves, or a broker restarted after a crash would send the message
    /// again under another one).
    fn send(&mut self, mut d: Delivery, tx: &mut Tx<'_>) {
        self.marks.out(d.seq);
        if d.message.expired(tx.now) {
            tx.stats.expired_dropped += 1;
            return;
        }
        let pkid = match d.qos {
            QoS::AtMostOnce => 0,
            _ if d.pkid != 0 => d.pkid,
            _ => {
                tx.needs_everything();
                self.alloc_pkid()
            }
        };
        tx.needs_event(d.placed.event);
        let dup = d.maybe_sent();
        let sent = tx.publish(publish_packet(pkid, &d, dup, tx.protocol, tx.now));
        if sent && d.qos != QoS::AtMostOnce {
            d.pkid = pkid;
            self.flow
                .get_mut()
                .inflight
                .push_back(Inflight::Publish { pkid, delivery: d });
        }
    }

    /// Moves queued messages into the window while there is room, in order.
    pub(crate) fn pump(&mut self, tx: &mut Tx<'_>) {
        // Bounded by the queue length: each turn removes one message.
        while let Some(front) = self.queued().front() {
            if !self.has_room(front, tx) {
                break;
            }
            let flow = self.flow.get_mut();
            let d = flow.queued.pop_front().expect("front exists");
            flow.unqueued(&d);
            self.send(d, tx);
        }
    }

    /// On resumption: every unacknowledged PUBLISH (DUP set) and pending PUBREL again, in
    /// original order, with the original packet identifiers ([MQTT-4.4.0-1]); then the queue.
    /// A PUBLISH now too large for the client is dropped as completed.
    pub(crate) fn resume(&mut self, tx: &mut Tx<'_>) {
        if let Some(flow) = self.flow.allocated_mut() {
            let marks = &mut self.marks;
            flow.inflight.retain(|entry| match entry {
                Inflight::Publish { pkid, delivery } => {
                    let sent =
                        tx.publish(publish_packet(*pkid, delivery, true, tx.protocol, tx.now));
                    if !sent {
                        marks.out(delivery.seq);
                    }
                    sent
                }
                Inflight::Release { pkid, .. } => {
                    tx.control(Packet::PubRel(crate::codec::Ack::new(*pkid)));
                    true
                }
            });
        }
        self.pump(tx);
    }

    /// What this session holds that came through shared subscriptions and may go to another
    /// member, removed, in order: QoS 1 messages in flight or queued, QoS 2 messages not yet
    /// sent. A QoS 2 message sent to this member is never sent to another [MQTT-4.8.2-5].
    pub(crate) fn take_shared(&mut self) -> Vec<Delivery> {
        let Some(flow) = self.flow.allocated_mut() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut kept = VecDeque::with_capacity(flow.inflight.len());
        for entry in std::mem::take(&mut flow.inflight) {
            match entry {
                Inflight::Publish { delivery, .. }
                    if delivery.share.is_some() && delivery.qos != QoS::ExactlyOnce =>
                {
                    self.marks.out(delivery.seq);
                    out.push(delivery)
                }
                other => kept.push_back(other),
            }
        }
        flow.inflight = kept;
        // A QoS 2 message already sent (or that may have been, restored with its packet
        // identifier) stays with this session and ends with it [MQTT-4.8.2-5].
        let (shared, rest): (VecDeque<Delivery>, VecDeque<Delivery>) =
            std::mem::take(&mut flow.queued)
                .into_iter()
                .partition(|d| d.share.is_some() && !(d.qos == QoS::ExactlyOnce && d.maybe_sent()));
        flow.queued = rest;
        for d in &shared {
            self.marks.out(d.seq);
            flow.unqueued(d);
        }
        out.extend(shared);
        out
    }

    /// PUBACK: completes a QoS 1 message. False if no QoS 1 message waits on `pkid`.
    pub(crate) fn puback(&mut self, pkid: u16) -> bool {
        let at = self.inflight().iter().position(
            |e| matches!(e, Inflight::Publish { pkid: p, delivery } if *p == pkid && delivery.qos == QoS::AtLeastOnce),
        );
        self.complete(at)
    }

    /// Removes the in-flight entry at `at`, if any.
    fn complete(&mut self, at: Option<usize>) -> bool {
        let Some(entry) = at.and_then(|i| self.flow.get_mut().inflight.remove(i)) else {
            return false;
        };
        self.marks.out(entry.seq());
        true
    }

    /// PUBREC: a QoS 2 message moves to awaiting PUBCOMP, in place (`release` true), or ends
    /// (5.0 error reason, `release` false). Also true for a repeated PUBREC of an entry already
    /// released, so its PUBREL is sent again. False if `pkid` is not a QoS 2 message in flight.
    pub(crate) fn pubrec(&mut self, pkid: u16, release: bool) -> bool {
        let Some(flow) = self.flow.allocated_mut() else {
            return false;
        };
        let Some(i) = flow.inflight.iter().position(|e| e.pkid() == pkid) else {
            return false;
        };
        match &flow.inflight[i] {
            Inflight::Publish { delivery, .. } if delivery.qos == QoS::ExactlyOnce => {
                let seq = delivery.seq;
                self.marks.out(seq);
                if release {
                    flow.inflight[i] = Inflight::Release { pkid, seq };
                } else {
                    flow.inflight.remove(i);
                }
                true
            }
            Inflight::Release { .. } => release,
            Inflight::Publish { .. } => false,
        }
    }

    /// PUBCOMP: completes a QoS 2 message. False if no PUBREL waits on `pkid`.
    pub(crate) fn pubcomp(&mut self, pkid: u16) -> bool {
        let at = self
            .inflight()
            .iter()
            .position(|e| matches!(e, Inflight::Release { pkid: p, .. } if *p == pkid));
        self.complete(at)
    }

    /// PUBREL: releases an inbound QoS 2 packet identifier. False if `pkid` was not awaiting
    /// PUBREL.
    pub(crate) fn pubrel(&mut self, pkid: u16) -> bool {
        let known = self
            .flow
            .allocated_mut()
            .is_some_and(|flow| flow.incoming_qos2.remove(&pkid));
        if known {
            self.marks.qos2(pkid);
        }
        known
    }
}

/// The PUBLISH packet for one delivery. 5.0 properties are forwarded with this session's
/// subscription identifiers and the remaining message expiry interval ([MQTT-3.3.2-6]); 3.1.1
/// carries none. DUP is never set on QoS 0 ([MQTT-3.3.1-2]).
pub(crate) fn publish_packet(
    pkid: u16,
    d: &Delivery,
    dup: bool,
    protocol: Protocol,
    now: Duration,
) -> Publish {
    let properties = if protocol.is_v5() {
        let mut p = d.message.properties.clone();
        p.subscription_identifiers = d.subscription_ids.clone();
        p.message_expiry_interval = d.message.expires_at.map(|at| clock::secs_left(now, at));
        p
    } else {
        Properties::default()
    };
    Publish {
        dup: dup && d.qos != QoS::AtMostOnce,
        qos: d.qos,
        retain: d.retain,
        topic: d.message.topic.clone(),
        pkid,
        properties,
        payload: d.message.payload.clone(),
    }
}
