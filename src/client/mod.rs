//! The MQTT client core, sans-IO: CONNECT options for 3.1.1 and 5.0, packet identifiers,
//! outbound QoS 1/2 tracking and resend after a resumed session, exactly-once inbound QoS 2,
//! keep-alive, reconnect backoff as a timer, and a bounded outbox for requests made while
//! disconnected.
//!
//! No sockets, no clock, no OS randomness: the shell passes `now` in, performs the
//! [`ClientAction`]s it polls out, and hands [`ClientEvent`]s to the application. The core takes
//! the broker's bytes and frames them itself ([`Client::handle_bytes`]); the shell encodes the
//! packets of `Send` actions with [`crate::codec`]. The behaviour and every option are described
//! in docs/client.md.
//!
//! Files: `config` (options, serde), `events` (actions, events, errors), `pkid` (identifier
//! pool), `inflight` (requests awaiting the broker), `outbox` (requests not yet written),
//! `inbound` (QoS 2 identifiers until PUBREL, the receive window), `keepalive`, `reconnect`
//! (backoff), `framing` (bytes to packets), `handle` (inbound packet dispatch), `fuzz` (the
//! fuzz target's driver and invariants). Topic rules,
//! topic alias tables and encoded sizes are the codec's ([`crate::codec::topic`],
//! [`crate::codec::alias`], [`crate::codec::encoded_len`]).

mod config;
mod events;
mod framing;
pub mod fuzz;
mod handle;
mod inbound;
mod inflight;
mod keepalive;
mod outbox;
mod pkid;
mod reconnect;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::codec::alias::{self, InboundAliases, OutboundAliases};
use crate::codec::{
    self, Ack, Connect, Disconnect, EncodeError, Framer, LastWill, MAX_PACKET_SIZE, Packet,
    Properties, PropertySet, Protocol, Publish, QoS, ReasonCode, Subscribe, Subscription,
    Unsubscribe,
};

pub use crate::codec::topic::{validate_topic_filter, validate_topic_name};
pub use config::{BufferPolicy, ClientConfig, ConfigError, ReconnectPolicy};
pub use events::{ClientAction, ClientError, ClientEvent, DownCause, LostReason, RequestId};

use inbound::AwaitingRel;
use inflight::{Entry, Inflight, Stage};
use keepalive::{KeepAlive, KeepAliveDue};
use outbox::{Outbox, Pending, Pushed, Request};
use pkid::PkidPool;
use reconnect::Backoff;

/// Where the client is in its connection lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConnState {
    /// Not connected and not trying: before [`Client::connect`], after
    /// [`Client::disconnect`], or after a loss that reconnecting cannot fix.
    Idle,
    /// `OpenTransport` was asked for; waiting for `handle_transport_up`.
    Connecting,
    /// CONNECT sent; waiting for CONNACK.
    Handshaking,
    /// CONNACK accepted.
    Connected,
    /// Lost; the reconnect timer is running.
    Backoff,
}

/// What the broker's CONNACK told us (5.0 properties; 3.1.1 gets the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerLimits {
    pub receive_maximum: u16,
    pub max_packet_size: u32,
    pub maximum_qos: QoS,
    pub retain_available: bool,
    /// Topic aliases the broker accepts from us (0: none).
    pub topic_alias_maximum: u16,
}

impl Default for BrokerLimits {
    fn default() -> Self {
        BrokerLimits {
            receive_maximum: u16::MAX,
            max_packet_size: MAX_PACKET_SIZE,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            topic_alias_maximum: 0,
        }
    }
}

/// The client state machine.
///
/// # Call order
///
/// 1. [`Client::new`] with a config and a seed (the seed drives all reconnect jitter).
/// 2. [`Client::connect`] to start; then, whenever something happens, call the matching input:
///    - the transport opened: [`handle_transport_up`](Client::handle_transport_up);
///    - bytes arrived: [`handle_bytes`](Client::handle_bytes) (or, for a shell that decodes
///      itself and in tests, [`handle_packet`](Client::handle_packet), in arrival order);
///    - the transport closed or failed: [`handle_transport_down`](Client::handle_transport_down);
///    - the deadline from [`poll_timeout`](Client::poll_timeout) passed:
///      [`handle_timeout`](Client::handle_timeout);
///    - the application asked: [`publish`](Client::publish), [`subscribe`](Client::subscribe),
///      [`unsubscribe`](Client::unsubscribe), [`disconnect`](Client::disconnect).
/// 3. After every input, drain [`poll_action`](Client::poll_action) until `None` and perform
///    the actions in order (open the transport, write packets, close), drain
///    [`poll_event`](Client::poll_event) for the application, and re-arm one timer at
///    [`poll_timeout`](Client::poll_timeout).
///
/// `now` must never go backwards. After `CloseTransport` the shell reports nothing more about
/// that transport; a later `OpenTransport` starts a new one.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    state: ConnState,
    /// The id sent in CONNECT: the configured one, or the one a 5.0 broker assigned.
    client_id: String,
    actions: VecDeque<ClientAction>,
    events: VecDeque<ClientEvent>,
    pkids: PkidPool,
    inflight: Inflight,
    outbox: Outbox,
    awaiting_rel: AwaitingRel,
    /// 5.0 topic aliases of the current connection.
    aliases_in: InboundAliases,
    aliases_out: OutboundAliases,
    keepalive: KeepAlive,
    backoff: Backoff,
    /// The current transport's bytes not yet decoded (`framing.rs`).
    framer: Framer,
    next_request: u64,
    /// Until CONNACK, in `Connecting` and `Handshaking`.
    connect_deadline: Option<Instant>,
    /// In `Backoff`.
    reconnect_at: Option<Instant>,
    /// From the last CONNACK; defaults before the first.
    broker: BrokerLimits,
}

impl Client {
    /// A client in [`ConnState::Idle`].
    ///
    /// # Panics
    /// When the configuration is invalid; [`Client::try_new`] returns the error instead.
    pub fn new(config: ClientConfig, seed: u64) -> Client {
        match Client::try_new(config, seed) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    pub fn try_new(config: ClientConfig, seed: u64) -> Result<Client, ConfigError> {
        config.validate()?;
        Ok(Client {
            client_id: config.client_id.clone(),
            state: ConnState::Idle,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            pkids: PkidPool::default(),
            inflight: Inflight::default(),
            outbox: Outbox::new(config.max_buffered, config.buffer_policy),
            awaiting_rel: AwaitingRel::new(if config.protocol.is_v5() {
                config.receive_maximum
            } else {
                u16::MAX
            }),
            aliases_in: InboundAliases::new(config.topic_alias_maximum),
            aliases_out: OutboundAliases::default(),
            keepalive: KeepAlive::new(config.ping_timeout),
            backoff: Backoff::new(config.reconnect.clone(), seed),
            framer: Framer::new(Some(config.protocol), config.max_packet_size),
            next_request: 1,
            connect_deadline: None,
            reconnect_at: None,
            broker: BrokerLimits::default(),
            config,
        })
    }

    pub fn state(&self) -> ConnState {
        self.state
    }

    pub fn protocol(&self) -> Protocol {
        self.config.protocol
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The client id the next CONNECT carries (assigned by a 5.0 broker if configured empty).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The broker's limits from the last CONNACK.
    pub fn broker_limits(&self) -> BrokerLimits {
        self.broker
    }

    /// Requests holding a packet identifier.
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Requests not yet written.
    pub fn buffered_len(&self) -> usize {
        self.outbox.len()
    }

    /// Replaces the will carried by the next CONNECT (and every later one). Refused, with the
    /// client unchanged, when the topic is not a valid topic name.
    pub fn set_will(&mut self, will: Option<LastWill>) -> Result<(), ConfigError> {
        if let Some(w) = &will
            && validate_topic_name(&w.topic).is_err()
        {
            return Err(ConfigError {
                field: "will.topic",
                reason: "not a valid topic name",
            });
        }
        self.config.will = will;
        Ok(())
    }

    // ---- outputs -------------------------------------------------------------------------

    pub fn poll_action(&mut self) -> Option<ClientAction> {
        self.actions.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`handle_timeout`](Client::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ConnState::Idle => None,
            ConnState::Connecting | ConnState::Handshaking => self.connect_deadline,
            ConnState::Connected => self.keepalive.deadline(),
            ConnState::Backoff => self.reconnect_at,
        }
    }

    // ---- transport lifecycle -------------------------------------------------------------

    /// Starts connecting (from `Idle`) or cuts a reconnect backoff short (from `Backoff`).
    /// Does nothing in the other states.
    pub fn connect(&mut self, now: Instant) {
        match self.state {
            ConnState::Idle | ConnState::Backoff => self.open_transport(now),
            ConnState::Connecting | ConnState::Handshaking | ConnState::Connected => {}
        }
    }

    /// The transport asked for by `OpenTransport` is up: CONNECT is queued.
    pub fn handle_transport_up(&mut self, now: Instant) {
        if self.state != ConnState::Connecting {
            tracing::warn!(state = ?self.state, "transport up while not connecting; ignored");
            return;
        }
        self.state = ConnState::Handshaking;
        // [MQTT-3.3.2-7] no alias and no receive quota carries over from another connection.
        self.aliases_in.reset();
        self.aliases_out.reset(0);
        self.awaiting_rel.new_connection();
        let connect = self.connect_packet();
        self.send(now, Packet::Connect(connect));
    }

    /// The transport closed or failed (also a failed `OpenTransport`). Reconnects if the
    /// policy allows.
    pub fn handle_transport_down(&mut self, now: Instant, cause: DownCause) {
        match self.state {
            ConnState::Connecting | ConnState::Handshaking | ConnState::Connected => {
                self.lost(now, cause, false)
            }
            ConnState::Idle | ConnState::Backoff => {
                tracing::debug!(state = ?self.state, "transport down for a transport already given up")
            }
        }
    }

    /// Fires every timer due at `now`: reconnect, CONNACK timeout, PINGREQ, keep-alive death.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            ConnState::Idle => {}
            ConnState::Backoff => {
                if self.reconnect_at.is_some_and(|at| now >= at) {
                    self.open_transport(now);
                }
            }
            ConnState::Connecting | ConnState::Handshaking => {
                if self.connect_deadline.is_some_and(|at| now >= at) {
                    self.lost(now, DownCause::ConnectTimeout, true);
                }
            }
            ConnState::Connected => match self.keepalive.poll(now) {
                KeepAliveDue::Nothing => {}
                KeepAliveDue::SendPing => {
                    self.actions.push_back(ClientAction::Send(Packet::PingReq));
                    self.keepalive.on_ping_sent(now);
                }
                // A DISCONNECT here would be wrong: the broker must publish the will.
                KeepAliveDue::Dead => self.lost(now, DownCause::KeepAliveTimeout, true),
            },
        }
    }

    // ---- application requests ------------------------------------------------------------

    /// Queues a publish; written at once when connected and nothing is waiting ahead of it.
    /// `properties` are sent with 5.0 and dropped for 3.1.1; a topic alias among them is
    /// ignored (the core assigns aliases, see `outbound_topic_aliases`). The outcome arrives as
    /// `PublishSent` (QoS 0), `PublishAcked` or `PublishLost`.
    pub fn publish(
        &mut self,
        now: Instant,
        topic: impl Into<String>,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        properties: Properties,
    ) -> Result<RequestId, ClientError> {
        let topic = topic.into();
        validate_topic_name(&topic).map_err(ClientError::InvalidTopic)?;
        let publish = Publish {
            dup: false,
            qos,
            retain,
            topic,
            pkid: 0,
            properties: Properties::from(PropertySet {
                topic_alias: None,
                ..self.v5_only(properties).into_set()
            }),
            payload,
        };
        if qos > self.broker.maximum_qos {
            return Err(ClientError::QoSNotSupported(self.broker.maximum_qos));
        }
        if retain && !self.broker.retain_available {
            return Err(ClientError::RetainNotSupported);
        }
        let (publish, size) = publish_len(self.protocol(), publish);
        self.check_size(size)?;
        let id = self.enqueue(Request::Publish(publish))?;
        self.pump(now);
        Ok(id)
    }

    /// Queues a SUBSCRIBE; the outcome arrives as `Subscribed`. Never dropped by the buffer
    /// policy: refused with `BufferFull` when the outbox is full.
    pub fn subscribe(
        &mut self,
        now: Instant,
        subs: Vec<Subscription>,
        properties: Properties,
    ) -> Result<RequestId, ClientError> {
        if subs.is_empty() {
            return Err(ClientError::NoFilters);
        }
        for s in &subs {
            validate_topic_filter(&s.filter).map_err(ClientError::InvalidFilter)?;
        }
        let properties = self.v5_only(properties);
        let probe = Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: subs,
            properties,
        });
        self.check_size(codec::encoded_len(&probe, self.protocol()))?;
        let Packet::Subscribe(probe) = probe else {
            unreachable!("built above")
        };
        let id = self.enqueue(Request::Subscribe(probe.filters, probe.properties))?;
        self.pump(now);
        Ok(id)
    }

    /// Queues an UNSUBSCRIBE; the outcome arrives as `Unsubscribed`.
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        filters: Vec<String>,
        properties: Properties,
    ) -> Result<RequestId, ClientError> {
        if filters.is_empty() {
            return Err(ClientError::NoFilters);
        }
        for f in &filters {
            validate_topic_filter(f).map_err(ClientError::InvalidFilter)?;
        }
        let properties = self.v5_only(properties);
        let probe = Packet::Unsubscribe(Unsubscribe {
            pkid: 1,
            filters,
            properties,
        });
        self.check_size(codec::encoded_len(&probe, self.protocol()))?;
        let Packet::Unsubscribe(probe) = probe else {
            unreachable!("built above")
        };
        let id = self.enqueue(Request::Unsubscribe(probe.filters, probe.properties))?;
        self.pump(now);
        Ok(id)
    }

    /// Ends the connection on purpose and stops reconnecting; `Disconnected` follows.
    ///
    /// When connected, DISCONNECT with `reason` is sent first (5.0; `DisconnectWithWillMessage`
    /// asks the broker to publish the will). With 3.1.1, any reason other than `Success` closes
    /// the transport *without* DISCONNECT, so the broker publishes the will. Requests in flight
    /// or buffered are kept: a later [`connect`](Client::connect) resumes them.
    pub fn disconnect(&mut self, now: Instant, reason: ReasonCode) {
        self.disconnect_with(now, reason, None);
    }

    /// [`disconnect`](Client::disconnect), a 5.0 DISCONNECT also carrying the Session Expiry
    /// Interval `session_expiry` (seconds) the broker is to keep the session for from now on.
    /// Not sent when the CONNECT asked for 0 and this is not 0, which a client must not do
    /// [MQTT-3.14.2-2], nor with 3.1.1.
    pub fn disconnect_with(
        &mut self,
        now: Instant,
        reason: ReasonCode,
        session_expiry: Option<u32>,
    ) {
        let connected_with = self.config.session_expiry.unwrap_or(0);
        let session_expiry = session_expiry.filter(|&e| connected_with != 0 || e == 0);
        match self.state {
            ConnState::Connected => {
                if self.protocol().is_v5() || reason == ReasonCode::Success {
                    let reason = if self.protocol().is_v5() {
                        reason
                    } else {
                        ReasonCode::Success
                    };
                    self.send(
                        now,
                        Packet::Disconnect(Disconnect {
                            reason,
                            properties: Properties::from(PropertySet {
                                session_expiry_interval: session_expiry
                                    .filter(|_| self.protocol().is_v5()),
                                ..PropertySet::default()
                            }),
                        }),
                    );
                }
                self.actions.push_back(ClientAction::CloseTransport);
            }
            ConnState::Connecting | ConnState::Handshaking => {
                self.actions.push_back(ClientAction::CloseTransport)
            }
            ConnState::Idle | ConnState::Backoff => {}
        }
        self.go_idle();
        self.events.push_back(ClientEvent::Disconnected);
    }

    // ---- internals -----------------------------------------------------------------------

    fn send(&mut self, now: Instant, packet: Packet) {
        self.actions.push_back(ClientAction::Send(packet));
        self.keepalive.on_sent(now);
    }

    fn v5_only(&self, properties: Properties) -> Properties {
        if self.protocol().is_v5() {
            properties
        } else {
            Properties::default()
        }
    }

    /// A request's encoded size (`codec::encoded_len`) against the broker's maximum packet size.
    fn check_size(&self, size: Result<usize, EncodeError>) -> Result<(), ClientError> {
        let size = size.map_err(ClientError::Unencodable)?;
        let max = self.broker.max_packet_size;
        if size > max as usize {
            return Err(ClientError::PacketTooLarge { size, max });
        }
        Ok(())
    }

    fn enqueue(&mut self, request: Request) -> Result<RequestId, ClientError> {
        let id = RequestId(self.next_request);
        match self.outbox.push(Pending { id, request }) {
            Pushed::Queued => {}
            Pushed::Evicted(old) => self.events.push_back(ClientEvent::PublishLost {
                id: old,
                why: LostReason::BufferOverflow,
            }),
            Pushed::Dropped => self.events.push_back(ClientEvent::PublishLost {
                id,
                why: LostReason::BufferOverflow,
            }),
            Pushed::Refused => return Err(ClientError::BufferFull(self.outbox.len())),
        }
        self.next_request += 1;
        Ok(id)
    }

    fn connect_packet(&self) -> Connect {
        let c = &self.config;
        let v5 = c.protocol.is_v5();
        let mut properties = Properties::default();
        if v5 {
            properties.session_expiry_interval = c.session_expiry;
            properties.receive_maximum =
                (c.receive_maximum != u16::MAX).then_some(c.receive_maximum);
            properties.maximum_packet_size =
                (c.max_packet_size < MAX_PACKET_SIZE).then_some(c.max_packet_size);
            properties.topic_alias_maximum =
                (c.topic_alias_maximum > 0).then_some(c.topic_alias_maximum);
        }
        let will = c.will.clone().map(|mut w| {
            if !v5 {
                w.properties = Properties::default();
            }
            Box::new(w)
        });
        Connect {
            protocol: c.protocol,
            clean_start: c.clean_start,
            keep_alive: c.keep_alive,
            client_id: self.client_id.clone(),
            will,
            username: c.username.clone(),
            password: c.password.clone(),
            properties,
        }
    }

    fn open_transport(&mut self, now: Instant) {
        self.reconnect_at = None;
        self.state = ConnState::Connecting;
        self.connect_deadline = Some(now + self.config.connect_timeout);
        self.new_framer();
        self.actions.push_back(ClientAction::OpenTransport);
    }

    /// Leaves the connection: timers stop, everything in flight must be re-sent on the next.
    fn go_idle(&mut self) {
        self.state = ConnState::Idle;
        self.keepalive.stop();
        self.connect_deadline = None;
        self.reconnect_at = None;
        self.inflight.mark_all_unsent();
    }

    /// The connection attempt or connection ended for `cause`; reconnect if allowed.
    fn lost(&mut self, now: Instant, cause: DownCause, close_transport: bool) {
        if close_transport {
            self.actions.push_back(ClientAction::CloseTransport);
        }
        self.go_idle();
        self.events.push_back(ClientEvent::ConnectionLost { cause });
        if self.config.reconnect.enabled && !cause.is_permanent() {
            let (attempt, delay) = self.backoff.next_delay();
            self.state = ConnState::Backoff;
            self.reconnect_at = Some(now + delay);
            self.events
                .push_back(ClientEvent::Reconnecting { attempt, delay });
        }
    }

    /// The broker broke the protocol: DISCONNECT with `reason` (5.0), close, maybe reconnect.
    fn protocol_error(&mut self, now: Instant, reason: ReasonCode) {
        tracing::debug!(?reason, "broker protocol error");
        if self.protocol().is_v5() {
            self.send(
                now,
                Packet::Disconnect(Disconnect {
                    reason,
                    properties: Properties::default(),
                }),
            );
        }
        self.lost(now, DownCause::ProtocolError(reason), true);
    }

    /// Re-sends what the resumed session still expects, in order: PUBLISH with DUP 1 and PUBREL
    /// ([MQTT-4.4.0-1], [MQTT-4.6.0-1], [MQTT-4.6.0-3]), and unanswered (UN)SUBSCRIBEs.
    fn resend_inflight(&mut self, now: Instant) {
        for pkid in self.inflight.pkids_in_order() {
            let entry = self.inflight.get(pkid).expect("pkid from the order index");
            if entry.sent {
                continue;
            }
            let packet = match &entry.stage {
                Stage::Publish(p) => Packet::Publish(Publish {
                    dup: true,
                    ..p.clone()
                }),
                Stage::PubRel => Packet::PubRel(Ack::new(pkid)),
                Stage::Subscribe(s) => Packet::Subscribe(s.clone()),
                Stage::Unsubscribe(u) => Packet::Unsubscribe(u.clone()),
            };
            self.inflight.mark_sent(pkid);
            self.send(now, packet);
        }
    }

    /// Writes outbox requests while the connection, the inflight window, the broker's receive
    /// maximum and the identifier pool allow; stops at the first that must wait (FIFO).
    fn pump(&mut self, now: Instant) {
        if self.state != ConnState::Connected {
            return;
        }
        while let Some(front) = self.outbox.front() {
            let needs_pkid = match &front.request {
                Request::Publish(p) => p.qos != QoS::AtMostOnce,
                Request::Subscribe(..) | Request::Unsubscribe(..) => true,
            };
            if needs_pkid {
                let is_publish = matches!(front.request, Request::Publish(_));
                if self.inflight.len() >= usize::from(self.config.max_inflight)
                    || (is_publish
                        && self.inflight.publishes() >= usize::from(self.broker.receive_maximum))
                {
                    return;
                }
            }
            let pkid = if needs_pkid {
                match self.pkids.alloc() {
                    Some(pkid) => pkid,
                    None => return,
                }
            } else {
                0
            };
            let Pending { id, request } = self.outbox.pop_front().expect("front exists");
            match request {
                Request::Publish(p) if pkid == 0 => {
                    let wire = self.with_alias(p);
                    self.send(now, Packet::Publish(wire));
                    self.events.push_back(ClientEvent::PublishSent { id });
                }
                Request::Publish(p) => {
                    // The inflight entry keeps the full topic: a resend goes on another
                    // connection, where this alias means nothing.
                    let p = Publish { pkid, ..p };
                    let wire = self.with_alias(p.clone());
                    self.send_tracked(now, pkid, id, Stage::Publish(p), Packet::Publish(wire));
                }
                Request::Subscribe(filters, properties) => {
                    let s = Subscribe {
                        pkid,
                        filters,
                        properties,
                    };
                    self.send_tracked(
                        now,
                        pkid,
                        id,
                        Stage::Subscribe(s.clone()),
                        Packet::Subscribe(s),
                    );
                }
                Request::Unsubscribe(filters, properties) => {
                    let u = Unsubscribe {
                        pkid,
                        filters,
                        properties,
                    };
                    self.send_tracked(
                        now,
                        pkid,
                        id,
                        Stage::Unsubscribe(u.clone()),
                        Packet::Unsubscribe(u),
                    );
                }
            }
        }
    }

    /// `p` as first sent on this connection: with an outbound topic alias when one is free or
    /// already set and the packet still fits the broker's maximum packet size.
    fn with_alias(&mut self, mut p: Publish) -> Publish {
        let Some((alias, known)) = self.aliases_out.choose(&p.topic) else {
            return p;
        };
        let before = p.properties.topic_alias;
        let taken = alias::apply(&mut p, alias, known);
        let (mut p, size) = publish_len(self.protocol(), p);
        if size.expect("checked when queued") > self.broker.max_packet_size as usize {
            p.properties.topic_alias = before;
            if let Some(topic) = taken {
                p.topic = topic;
            }
            return p;
        }
        if !known {
            self.aliases_out.commit(&p.topic, alias);
        }
        p
    }

    /// Records a request as in flight under `pkid` and sends its packet.
    fn send_tracked(
        &mut self,
        now: Instant,
        pkid: u16,
        id: RequestId,
        stage: Stage,
        packet: Packet,
    ) {
        self.inflight.insert(
            pkid,
            Entry {
                id,
                stage,
                sent: true,
            },
        );
        self.send(now, packet);
    }

    /// Completes an inflight request and frees its identifier; the caller reports it and then
    /// lets the outbox move with `pump`.
    fn complete(&mut self, pkid: u16) -> Entry {
        let entry = self
            .inflight
            .remove(pkid)
            .expect("complete of a known pkid");
        self.pkids.free(pkid);
        entry
    }
}

/// The encoded size of `p` as it will be sent: with a packet identifier at QoS 1 and 2, which a
/// queued publish gets only when it leaves the outbox. `p` is handed back unchanged.
fn publish_len(protocol: Protocol, p: Publish) -> (Publish, Result<usize, EncodeError>) {
    let pkid = p.pkid;
    let probe = Packet::Publish(Publish {
        pkid: if p.qos == QoS::AtMostOnce {
            0
        } else {
            pkid.max(1)
        },
        ..p
    });
    let size = codec::encoded_len(&probe, protocol);
    let Packet::Publish(p) = probe else {
        unreachable!("built above")
    };
    (Publish { pkid, ..p }, size)
}
