//! The broker core, sans-IO: events in, actions out, time passed in as `now`. No sockets, no
//! clock, no randomness; only ordered collections are iterated, so the same events give the same
//! actions.
//!
//! # Driving a [`Broker`] (any [`BrokerCore`])
//! 1. Feed what the network did: [`BrokerCore::handle_accept`] for a new connection, then
//!    [`BrokerCore::handle_bytes`] (or, for a shell that decodes itself and in tests,
//!    [`BrokerCore::handle_packet`]) as data arrives, and [`BrokerCore::handle_closed`] when the
//!    connection ends on the shell's side.
//! 2. When the time given by [`BrokerCore::poll_timeout`] is reached, call
//!    [`BrokerCore::handle_timeout`].
//! 3. After every `handle_*` call, drain [`BrokerCore::poll_action`] until `None` and perform
//!    the actions in order (a `Close` comes after the packets to send first on that
//!    connection), and drain [`BrokerCore::poll_event`] for observations. With a store, take
//!    [`BrokerCore::take_changes`] too, and write none of those actions' bytes before the store
//!    has those changes (and every earlier one) on disk. Call `poll_timeout` again: any call
//!    may move the deadline.
//!
//! Connection ids are chosen by the shell and never reused. After the core emits `Close` for a
//! connection it forgets it; a later `handle_closed` or `handle_bytes` for it is ignored.
//!
//! # Layout
//! `mod.rs` (types, dispatcher), `connect.rs`, `publish.rs` (inbound PUBLISH and PUBREL,
//! inbound topic aliases), `acks.rs` (PUBACK, PUBREC, PUBCOMP from subscribers), `subscribe.rs`
//! (SUBSCRIBE, UNSUBSCRIBE), `disconnect.rs`, `framing.rs` (bytes to packets), `close.rs` (the
//! one place deciding how a connection ends), `delivery.rs` (routing), `shared.rs` (shared
//! subscriptions), `session.rs`, `outbound.rs` (maximum packet size, outbound topic aliases),
//! `expiry.rs` (session expiry and will delay timers), `subtree.rs`, `retained.rs`,
//! `keepalive.rs`, `timers.rs`, `clock.rs` (logical time), `state.rs` (durable state),
//! `config.rs`. Topic rules and limits are [`crate::codec::topic`]'s.
//!
//! Authentication and authorization: `auth/`, handed in with [`Broker::with_auth`]. Not here:
//! enhanced authentication (an authentication method in CONNECT is refused).

mod acks;
pub mod auth;
mod clock;
mod close;
pub mod config;
mod connect;
mod delivery;
mod disconnect;
mod expiry;
mod framing;
pub mod fuzz;
pub mod journal;
mod keepalive;
mod outbound;
mod publish;
mod retained;
pub mod session;
mod shared;
mod state;
pub mod storage;
mod subscribe;
mod subtree;
pub mod sys;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::alias::InboundAliases;
use crate::codec::topic::TopicLimits;
use crate::codec::{Framer, LastWill, Packet, Protocol, QoS, ReasonCode};

pub use config::{BrokerConfig, ConfigError, QueueOverflow};
pub use journal::{Change, Changes};
pub use session::{Delivery, Grant, Inflight, Message, Session};
pub use state::{DurableState, PendingWill};
pub use storage::StorageHealth;
pub use sys::{Metrics, Traffic};

use clock::Clock;
use close::Ending;
use keepalive::Deadlines;
use outbound::Outbound;
use retained::Retained;
use subtree::SubTree;
use timers::Timers;

/// A connection, as numbered by the shell. Never reused.
pub type ConnId = u64;

/// How the shell saw a connection end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CloseCause {
    /// The peer closed its side (read returned end of stream).
    PeerClosed,
    /// A read or write failed (reset, broken pipe, ...).
    Io,
    /// This side closed it (the shell shutting down, or a `Close` the core asked for).
    Local,
}

/// Why the core asks the shell to close a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CloseReason {
    /// The client sent DISCONNECT.
    ClientDisconnect,
    /// CONNECT was answered with a refusing CONNACK carrying this code.
    ConnectRefused(ReasonCode),
    /// No CONNECT within `connect_timeout` after accept.
    ConnectTimeout,
    /// Silent for 1.5 × keep-alive.
    KeepAliveTimeout,
    /// Another connection took the session over ([MQTT-3.1.4-3]).
    SessionTakenOver,
    /// The client broke the protocol or sent bytes that do not decode; the code says how (a 5.0
    /// client got it in a DISCONNECT first).
    ProtocolViolation(ReasonCode),
    /// `max_connections` connections were already open.
    TooManyConnections,
    /// The store failed: nothing is served until it is rewritten (`storage.rs`); a 5.0 client
    /// got a DISCONNECT with this code first.
    StorageFailed(ReasonCode),
}

/// What the core asks the shell to do.
#[must_use = "actions must be performed by the shell"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Encode `packet` with `protocol` and write it to `conn`.
    Send {
        conn: ConnId,
        protocol: Protocol,
        packet: Packet,
    },
    /// Flush what was sent to `conn`, then close it. The core has forgotten `conn`.
    Close { conn: ConnId, reason: CloseReason },
}

/// Observations for traces and operators (also logged through `tracing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerEvent {
    /// A message for `client_id` was dropped because its queue was full (see `QueueOverflow`).
    QueueOverflow {
        client_id: String,
        topic: String,
        qos: QoS,
        payload: Bytes,
    },
    /// A retained message for a new topic was forwarded but not retained: the store was full.
    RetainedStoreFull { topic: String },
    /// The will of `client_id` was published.
    WillPublished { client_id: String, topic: String },
    /// The session of `client_id` expired while offline and was discarded.
    SessionExpired { client_id: String },
}

/// Counters of what limits and policies did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Messages dropped by queue overflow.
    pub queue_overflow_dropped: u64,
    /// QoS 0 messages for offline sessions, dropped.
    pub qos0_offline_dropped: u64,
    /// Retained messages not retained because the store was full.
    pub retained_rejected: u64,
    /// Connections closed at accept because of `max_connections`.
    pub connections_refused: u64,
    /// Events dropped because nobody polled them.
    pub events_dropped: u64,
    /// Messages not delivered because their message expiry interval passed.
    pub expired_dropped: u64,
    /// Packets not sent because they were larger than the client's maximum packet size.
    pub oversize_dropped: u64,
    /// Sessions discarded by session expiry.
    pub sessions_expired: u64,
}

/// The broker's inputs and outputs; implemented by [`Broker`]. The shell and the simulator are
/// generic over it, so tests can wrap the core. See the module documentation for the call order.
pub trait BrokerCore {
    /// A connection was accepted.
    fn handle_accept(&mut self, now: Instant, conn: ConnId);
    /// A connection was accepted whose peer the shell already authenticated as `identity`
    /// (the name of a verified TLS client certificate): its CONNECT is accepted as that user,
    /// whatever user name and password it carries. `None` is [`BrokerCore::handle_accept`].
    /// A core without authentication ignores the identity (the default).
    fn handle_accept_as(&mut self, now: Instant, conn: ConnId, identity: Option<&str>) {
        let _ = identity;
        self.handle_accept(now, conn);
    }
    /// Bytes arrived on `conn`; they are framed and decoded, and each packet handled.
    fn handle_bytes(&mut self, now: Instant, conn: ConnId, bytes: &[u8]);
    /// One decoded packet arrived on `conn`.
    fn handle_packet(&mut self, now: Instant, conn: ConnId, packet: Packet);
    /// The shell saw `conn` end. Unknown or already-closed connections are ignored.
    fn handle_closed(&mut self, now: Instant, conn: ConnId, cause: CloseCause);
    /// Fires every deadline at or before `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// The earliest pending deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next action to perform, in order.
    #[must_use]
    fn poll_action(&mut self) -> Option<Action>;
    /// The next observation, in order.
    #[must_use]
    fn poll_event(&mut self) -> Option<BrokerEvent>;
    /// What a durable store keeps: persistent sessions and retained messages.
    fn durable_state(&self) -> DurableState;
    /// Starts recording changes for [`BrokerCore::take_changes`]: a store holds
    /// [`BrokerCore::durable_state`] as it is now.
    fn record_changes(&mut self);
    /// The changes to the durable state since the last call (none before
    /// [`BrokerCore::record_changes`]), in the order a store applies them (`journal.rs`).
    fn take_changes(&mut self) -> Changes;
    /// The store's health changed (`storage.rs`): a failed store ends every connection.
    fn handle_storage(&mut self, now: Instant, health: StorageHealth);
    /// The shell stopped (`true`) or resumed reading `conn` (backpressure: a connection its
    /// messages go to is far behind). While it is not read its keep-alive is not timed: what
    /// the client sent waits unread, and the keep-alive clock restarts when reading resumes.
    fn handle_held(&mut self, _now: Instant, _conn: ConnId, _held: bool) {}
    /// The shell wrote `bytes` bytes to connections (counted for the figures).
    fn count_bytes_sent(&mut self, _bytes: usize) {}
    /// Every figure as of `now`, for the shell's metrics endpoint; `None` if the core keeps none.
    fn metrics(&self, _now: Instant) -> Option<Metrics> {
        None
    }
    /// Who is on `conn`, once a CONNECT was accepted on it (for the shell's logs).
    fn connection_info(&self, _conn: ConnId) -> Option<ConnectionInfo> {
        None
    }
}

/// What the broker knows of an accepted connection's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Shared with the broker's session (one allocation per client).
    pub client_id: std::sync::Arc<str>,
    pub protocol: Protocol,
    /// The keep-alive in force, in seconds (the client's, or the one the broker imposed).
    pub keep_alive: u16,
    pub clean_start: bool,
    /// The authenticated user name, if any.
    pub user: Option<String>,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Accepted; the first packet must be CONNECT.
    AwaitingConnect,
    /// CONNECT accepted for `client_id`.
    Connected { client_id: std::sync::Arc<str> },
}

#[derive(Debug)]
struct Conn {
    phase: Phase,
    /// The protocol of the CONNECT (3.1.1 until one arrives).
    protocol: Protocol,
    keep_alive: u16,
    /// The CONNECT's Clean Session / Clean Start flag.
    clean_start: bool,
    /// Boxed: most connections have none, and a will is large.
    will: Option<Box<LastWill>>,
    /// The client's receive maximum (5.0; 65535 otherwise).
    receive_maximum: u16,
    /// Bytes received and not yet decoded (`handle_bytes`).
    framer: Framer,
    /// What may be sent to the client (maximum packet size, problem information, aliases).
    outbound: Outbound,
    /// Inbound topic aliases: up to `topic_alias_maximum` once a 5.0 CONNECT arrived, none
    /// before or with another protocol.
    aliases_in: InboundAliases,
    /// The user the shell authenticated the peer as ([`BrokerCore::handle_accept_as`]).
    #[allow(
        clippy::box_collection,
        reason = "a thin pointer: 8 bytes per connection, most of which have none"
    )]
    identity: Option<Box<String>>,
    /// The shell is not reading it ([`BrokerCore::handle_held`]): no keep-alive deadline.
    held: bool,
}

/// The MQTT broker core. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    auth: auth::Authorizer,
    /// Boxed: see `journal::Sessions`.
    conns: BTreeMap<ConnId, Box<Conn>>,
    /// How many sessions are attached to a connection (`Session::conn`).
    online: u64,
    sessions: journal::Sessions,
    subs: SubTree,
    retained: Retained,
    deadlines: Deadlines,
    /// Logical time, in which durable deadlines are kept.
    clock: Clock,
    /// Offline sessions with a finite expiry interval, by expiry time.
    session_timers: Timers<Duration, String>,
    /// Wills waiting for their delay interval, by the time they are due.
    will_timers: Timers<Duration, String>,
    /// Client id → its delayed will.
    pending_wills: BTreeMap<String, LastWill>,
    /// Shared subscription name → the member that received its last message.
    share_cursors: BTreeMap<String, String>,
    actions: VecDeque<Action>,
    events: VecDeque<BrokerEvent>,
    stats: BrokerStats,
    /// Traffic counters and the `$SYS` timer (`sys.rs`).
    sys: sys::Sys,
    /// The number used for the next assigned client identifier.
    next_assigned: u64,
    /// The `Message::id` of the next message; above every id the broker holds.
    next_message_id: u64,
    /// `Some` while recording changes (`journal.rs`).
    journal: Option<journal::BrokerMarks>,
    storage: StorageHealth,
    /// The number of the event being handled (each `handle_*` call is one).
    event_no: u64,
    /// What the output produced since changes were last taken reveals (`Changes::output_needs`).
    output_needs: Option<u64>,
}

impl Broker {
    /// A broker with no state. Panics if `config.validate()` fails.
    pub fn new(config: BrokerConfig) -> Broker {
        Broker::restore(config, DurableState::default())
    }

    /// A broker resuming from a saved state: every session offline, no connection, each
    /// waiting will still waiting. Wills of clients connected when the state was saved are not
    /// kept (see docs/broker.md). The remaining session expiry, message expiry and will delay
    /// intervals are counted from the first `now` the broker is given (see
    /// [`Broker::restore_at`]). Panics if `config.validate()` fails.
    pub fn restore(config: BrokerConfig, state: DurableState) -> Broker {
        Broker::restore_with(config, state, None)
    }

    /// A broker resuming from a saved state at `now`: as [`Broker::restore`], with whatever
    /// remained of each session expiry, message expiry and will delay interval when the state
    /// was saved counted from `now` (a store that counts the downtime hands over
    /// [`DurableState::aged`]). A will already due is published at the first timeout. A session that was connected when the state was saved starts its expiry
    /// interval at `now`. Panics if `config.validate()` fails.
    pub fn restore_at(config: BrokerConfig, state: DurableState, now: Instant) -> Broker {
        Broker::restore_with(config, state, Some(now))
    }

    fn restore_with(config: BrokerConfig, state: DurableState, now: Option<Instant>) -> Broker {
        if let Err(e) = config.validate() {
            panic!("{e}");
        }
        let clock = Clock::new(state.clock, now);
        let (state, next_message_id) = state.shared();
        let mut sessions: BTreeMap<String, Session> = state
            .sessions
            .into_iter()
            .filter(|(_, s)| s.is_persistent())
            .collect();
        let mut subs = SubTree::default();
        let mut session_timers = Timers::default();
        for (client, s) in &mut sessions {
            s.restore_counters();
            for (filter, grant) in &s.subscriptions {
                subs.insert(filter, client, *grant);
            }
            if s.expires_at.is_none() && s.expiry_interval != u32::MAX {
                s.expires_at = Some(clock::after(clock.now(), s.expiry_interval));
            }
            session_timers.set(client.clone(), s.expires_at);
        }
        let mut will_timers = Timers::default();
        let mut pending_wills = BTreeMap::new();
        for (client, w) in state.wills {
            will_timers.set(client.clone(), Some(w.due));
            pending_wills.insert(client, w.will);
        }
        let mut broker = Broker {
            config,
            auth: auth::Authorizer::default(),
            conns: BTreeMap::new(),
            online: 0,
            sessions: journal::Sessions::from_map(sessions),
            subs,
            retained: Retained::from_map(state.retained),
            deadlines: Deadlines::default(),
            clock,
            session_timers,
            will_timers,
            pending_wills,
            share_cursors: BTreeMap::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            stats: BrokerStats::default(),
            sys: sys::Sys::default(),
            next_assigned: state.next_assigned,
            next_message_id,
            journal: None,
            storage: StorageHealth::Ok,
            event_no: 0,
            output_needs: Some(0),
        };
        broker.restore_users(state.users);
        broker
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn stats(&self) -> BrokerStats {
        self.stats
    }

    /// The session of `client_id`, if any.
    pub fn session(&self, client_id: &str) -> Option<&Session> {
        self.sessions.get(client_id)
    }

    /// The number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The configured bounds on topic names and filters.
    fn topic_limits(&self) -> TopicLimits {
        self.config.topic_limits()
    }

    /// Sends a packet other than a routed PUBLISH to a known connection, as its limits allow
    /// (`outbound.rs`).
    fn send(&mut self, conn: ConnId, packet: Packet) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let protocol = c.protocol;
        match c.outbound.fit(packet, protocol) {
            Some(packet) => self.actions.push_back(Action::Send {
                conn,
                protocol,
                packet,
            }),
            None => self.stats.oversize_dropped += 1,
        }
    }

    /// Whether `conn` speaks MQTT 5.0.
    fn is_v5(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5())
    }

    fn event(&mut self, e: BrokerEvent) {
        if self.config.max_pending_events == 0 {
            self.stats.events_dropped += 1;
            return;
        }
        if self.events.len() >= self.config.max_pending_events {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(e);
    }

    /// Restarts the keep-alive clock of a connected connection.
    fn seen(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if matches!(c.phase, Phase::Connected { .. })
            && !c.held
            && let Some(g) = keepalive::grace(c.keep_alive)
        {
            self.deadlines.extend(conn, now + g);
        }
    }

    /// One decoded packet on `conn`, within the event that brought it.
    fn packet(&mut self, now: Instant, conn: ConnId, packet: Packet) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        self.sys.traffic.packets_received += 1;
        self.seen(now, conn);
        if let Err(v) = self.dispatch(now, conn, packet) {
            self.end_connection(now, conn, Ending::Violation(v));
        }
    }

    /// A new event begins. Its output may reveal every change so far, unless it is bytes
    /// holding only acknowledgements that complete deliveries (see `handle_bytes`).
    fn begin(&mut self, now: Instant, narrow: bool) {
        self.clock.tick(now);
        self.sys.tick(now, self.config.sys_interval);
        self.event_no += 1;
        if !narrow {
            self.output_needs = None;
        }
    }

    fn dispatch(
        &mut self,
        now: Instant,
        conn: ConnId,
        packet: Packet,
    ) -> Result<(), close::Violation> {
        use close::Violation;
        // PUBACK and PUBCOMP complete deliveries: nothing may wait for their removal, and the
        // queued messages they let into flight reveal only the events that offered them
        // (`Session::send`). Everything else may reveal anything.
        if !matches!(packet, Packet::PubAck(_) | Packet::PubComp(_)) {
            self.output_needs = None;
        }
        let Some(c) = self.conns.get(&conn) else {
            return Ok(());
        };
        let Phase::Connected { client_id } = &c.phase else {
            return match packet {
                Packet::Connect(connect) => self.handle_connect(now, conn, connect),
                // [MQTT-3.1.0-1] The first packet must be CONNECT.
                _ => Err(Violation::protocol("first packet is not CONNECT")),
            };
        };
        let client_id = client_id.clone();
        match packet {
            // [MQTT-3.1.0-2] A second CONNECT is a protocol violation.
            Packet::Connect(_) => Err(Violation::protocol("second CONNECT")),
            Packet::Publish(p) => self.handle_publish(now, conn, &client_id, p),
            Packet::PubAck(a) => self.handle_puback(conn, &client_id, a),
            Packet::PubRec(a) => self.handle_pubrec(conn, &client_id, a),
            Packet::PubRel(a) => self.handle_pubrel(conn, &client_id, a),
            Packet::PubComp(a) => self.handle_pubcomp(conn, &client_id, a),
            Packet::Subscribe(s) => self.handle_subscribe(conn, &client_id, s),
            Packet::Unsubscribe(u) => self.handle_unsubscribe(conn, &client_id, u),
            Packet::PingReq => {
                // A quiet moment: the session frees the room of a drained flow.
                self.sessions.trim(&client_id);
                self.send(conn, Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(d) => self.handle_disconnect(now, conn, &client_id, d),
            // No authentication method was accepted at CONNECT, so AUTH belongs to no exchange.
            Packet::Auth(_) => Err(Violation::protocol("AUTH without an authentication method")),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => Err(
                Violation::protocol("server-to-client packet sent by a client"),
            ),
        }
    }
}

impl BrokerCore for Broker {
    fn handle_accept(&mut self, now: Instant, conn: ConnId) {
        self.begin(now, false);
        if self.conns.contains_key(&conn) {
            return;
        }
        if self.conns.len() >= self.config.max_connections {
            self.stats.connections_refused += 1;
            tracing::warn!(
                conn,
                max = self.config.max_connections,
                "connection refused: too many connections"
            );
            self.actions.push_back(Action::Close {
                conn,
                reason: CloseReason::TooManyConnections,
            });
            return;
        }
        self.conns.insert(
            conn,
            Box::new(Conn {
                phase: Phase::AwaitingConnect,
                protocol: Protocol::V3_1_1,
                keep_alive: 0,
                clean_start: false,
                will: None,
                receive_maximum: u16::MAX,
                framer: Framer::new(None, self.config.max_packet_size),
                outbound: Outbound::default(),
                aliases_in: InboundAliases::new(0),
                identity: None,
                held: false,
            }),
        );
        self.deadlines
            .set(conn, Some(now + self.config.connect_timeout));
    }

    fn handle_accept_as(&mut self, now: Instant, conn: ConnId, identity: Option<&str>) {
        let known = self.conns.contains_key(&conn);
        self.handle_accept(now, conn);
        if let (false, Some(c)) = (known, self.conns.get_mut(&conn)) {
            c.identity = identity.map(|id| Box::new(id.to_owned()));
        }
    }

    fn handle_bytes(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        self.begin(now, true);
        if self.conns.contains_key(&conn) {
            self.sys.traffic.bytes_received += bytes.len() as u64;
        }
        let before = self.actions.len();
        self.feed_bytes(now, conn, bytes);
        // Only PUBLISHes moved into flight keep the narrower need; a close, or any other
        // packet (an error on the way), reveals anything.
        if self.actions.iter().skip(before).any(|a| {
            !matches!(
                a,
                Action::Send {
                    packet: Packet::Publish(_),
                    ..
                }
            )
        }) {
            self.output_needs = None;
        }
    }

    fn handle_packet(&mut self, now: Instant, conn: ConnId, packet: Packet) {
        self.begin(now, false);
        self.packet(now, conn, packet);
    }

    fn handle_closed(&mut self, now: Instant, conn: ConnId, cause: CloseCause) {
        self.begin(now, false);
        if self.conns.contains_key(&conn) {
            self.end_connection(now, conn, Ending::Closed(cause));
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.begin(now, false);
        // Bounded: each iteration removes one connection's deadline.
        while let Some(conn) = self.deadlines.pop_due(now) {
            let ending = match self.conns.get(&conn).map(|c| &c.phase) {
                Some(Phase::AwaitingConnect) => Ending::ConnectTimeout,
                Some(Phase::Connected { .. }) => Ending::KeepAliveTimeout,
                None => continue,
            };
            self.end_connection(now, conn, ending);
        }
        self.fire_expiry_timers();
        self.fire_sys_timer(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let logical = [self.session_timers.next(), self.will_timers.next()]
            .into_iter()
            .flatten()
            .filter_map(|t| self.clock.instant(t));
        self.deadlines
            .next()
            .into_iter()
            .chain(logical)
            .chain(self.sys.due())
            .min()
    }

    fn poll_action(&mut self) -> Option<Action> {
        let action = self.actions.pop_front()?;
        if let Action::Send { packet, .. } = &action {
            let t = &mut self.sys.traffic;
            t.packets_sent += 1;
            if matches!(packet, Packet::Publish(_)) {
                t.publish_sent += 1;
            }
        }
        Some(action)
    }

    fn handle_held(&mut self, now: Instant, conn: ConnId, held: bool) {
        // Not an event: it changes no state but a deadline, and produces no output.
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.held = held;
        if held {
            if matches!(c.phase, Phase::Connected { .. }) {
                self.deadlines.set(conn, None);
            }
        } else {
            self.seen(now, conn);
        }
    }

    fn count_bytes_sent(&mut self, bytes: usize) {
        self.sys.traffic.bytes_sent += bytes as u64;
    }

    fn metrics(&self, now: Instant) -> Option<Metrics> {
        Some(Broker::metrics(self, now))
    }

    fn poll_event(&mut self) -> Option<BrokerEvent> {
        self.events.pop_front()
    }

    fn durable_state(&self) -> DurableState {
        self.snapshot()
    }

    fn record_changes(&mut self) {
        self.sessions.record();
        self.retained.record();
        self.journal = Some(journal::BrokerMarks {
            wills: self.pending_wills.keys().cloned().collect(),
            next_assigned: None,
        });
    }

    fn handle_storage(&mut self, now: Instant, health: StorageHealth) {
        self.event_no += 1;
        self.output_needs = None;
        let was = std::mem::replace(&mut self.storage, health);
        if was == health {
            return;
        }
        match health {
            StorageHealth::Failed { full } => {
                let conns: Vec<ConnId> = self.conns.keys().copied().collect();
                tracing::error!(
                    full,
                    connections = conns.len(),
                    "storage failed: closing every connection and refusing new ones"
                );
                for conn in conns {
                    self.end_connection(now, conn, Ending::StorageFailed { full });
                }
            }
            StorageHealth::OverQuota => {
                tracing::warn!("storage over its size limit: refusing new durable work")
            }
            StorageHealth::Ok => tracing::info!("storage healthy again"),
        }
    }

    fn connection_info(&self, conn: ConnId) -> Option<ConnectionInfo> {
        let c = self.conns.get(&conn)?;
        let Phase::Connected { client_id } = &c.phase else {
            return None;
        };
        Some(ConnectionInfo {
            client_id: client_id.clone(),
            protocol: c.protocol,
            keep_alive: c.keep_alive,
            clean_start: c.clean_start,
            user: self.auth.user_of(client_id),
        })
    }

    fn take_changes(&mut self) -> Changes {
        let mut ops = Vec::new();
        let clock = self.clock.now();
        let event = self.event_no;
        let output_needs = self.output_needs.replace(0);
        let Some(marks) = &mut self.journal else {
            return Changes {
                ops,
                clock,
                event,
                output_needs,
            };
        };
        let auth = &self.auth;
        self.sessions.take(&mut ops, |client| auth.user_of(client));
        self.retained.take(&mut ops);
        for client in std::mem::take(&mut marks.wills) {
            let due = self.will_timers.get(&client);
            ops.push(match (self.pending_wills.get(&client), due) {
                (Some(will), Some(due)) => Change::WillPut {
                    client,
                    will: Box::new(PendingWill {
                        due,
                        will: will.clone(),
                    }),
                },
                _ => Change::WillDelete { client },
            });
        }
        if marks.next_assigned != Some(self.next_assigned) {
            marks.next_assigned = Some(self.next_assigned);
            ops.push(Change::NextAssigned(self.next_assigned));
        }
        Changes {
            ops,
            clock,
            event,
            output_needs,
        }
    }
}
