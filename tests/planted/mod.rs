//! Planted bugs: test doubles of the broker core. [`Planted`] wraps the real [`Broker`] and
//! implements [`BrokerCore`]; it frames inbound bytes itself so that it can alter, drop or
//! reinterpret single packets before the real core sees them, and it rewrites the actions the
//! real core asks for. Each [`Bug`] is one wrong behaviour the lab must catch; [`factory`] turns
//! one into the [`BrokerFactory`] a simulated run uses.
//!
//! Nothing here is in the production code: the real broker has no switch for any of this.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use mqtt_lab::broker::auth::Auth;
use mqtt_lab::broker::{
    Action, Broker, BrokerConfig, BrokerCore, BrokerEvent, CloseCause, CloseReason, ConnId,
    DurableState,
};
use mqtt_lab::codec::{
    Ack, ConnAck, Disconnect, Framer, Packet, Properties, Publish, QoS, ReasonCode,
};
use mqtt_lab::sim::BrokerFactory;

/// One planted bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// The first QoS 2 PUBLISH forwarded to a subscriber is sent a second time under a fresh
    /// packet id, so the subscriber receives the message twice.
    Qos2ForwardedTwice,
    /// On every connection that resumed a session (CONNACK with session present), the first
    /// QoS 1 PUBLISH towards the client is swallowed, and the core is told the client
    /// acknowledged it: the message is gone for good.
    Qos1DroppedAfterReconnect,
    /// An inbound DISCONNECT is taken for a lost connection, so the will is published.
    WillAfterDisconnect,
    /// A connection that ends without DISCONNECT is treated as if the client had sent one, so
    /// the will is discarded.
    NoWillAfterCrash,
    /// A retained PUBLISH with an empty payload loses its retain flag before the core sees it:
    /// it is forwarded as an ordinary empty message and the retained value is never cleared.
    RetainedNotCleared,
    /// The fifth QoS 1 or 2 PUBLISH forwarded to a subscriber is held back and sent after the
    /// next one on the same topic to the same connection.
    Reordered,
    /// The broker process ignores the durable state it is restarted with: every persistent
    /// session, queued message and retained message is forgotten.
    SessionForgotten,
    /// Every inbound `$share/{group}/{filter}` subscription is handed to the core as a plain
    /// subscription to `{filter}`: each member of a group gets every message.
    SharedToAll,
}

impl Bug {
    pub const ALL: [Bug; 8] = [
        Bug::Qos2ForwardedTwice,
        Bug::Qos1DroppedAfterReconnect,
        Bug::WillAfterDisconnect,
        Bug::NoWillAfterCrash,
        Bug::RetainedNotCleared,
        Bug::Reordered,
        Bug::SessionForgotten,
        Bug::SharedToAll,
    ];
}

/// The broker factory of a run with `bug` planted.
pub fn factory(bug: Bug) -> BrokerFactory {
    Arc::new(move |config: BrokerConfig, auth: Auth, state: Option<DurableState>| {
        let inner = match state {
            Some(state) if bug != Bug::SessionForgotten => Broker::restore(config.clone(), state),
            _ => Broker::new(config.clone()),
        }
        .with_auth(auth);
        Box::new(Planted::new(bug, inner, config.max_packet_size)) as Box<dyn BrokerCore + Send>
    })
}

/// Which forwarded publish [`Bug::Reordered`] holds back (1-based).
const REORDER_NTH: u32 = 5;
/// The packet id of the extra copy sent by [`Bug::Qos2ForwardedTwice`]: far above any id the
/// core allocates within the library's inflight windows.
const EXTRA_PKID: u16 = 0xFFF0;

/// The real broker with one bug planted around it.
pub struct Planted {
    bug: Bug,
    inner: Broker,
    max_packet_size: u32,
    /// Our own framing of each connection's inbound bytes.
    framers: BTreeMap<ConnId, Framer>,
    /// Actions ready for the shell, already rewritten.
    out: VecDeque<Action>,
    /// The latest `now` the shell gave us (for packets fed to the core while draining actions).
    now: Option<Instant>,
    /// `Qos2ForwardedTwice`: the copy has been sent.
    duplicated: bool,
    /// `Qos1DroppedAfterReconnect`: connections whose session was resumed and which have not
    /// lost a message yet.
    resumed: BTreeSet<ConnId>,
    /// `Reordered`: forwarded QoS 1/2 publishes so far, and the one held back.
    forwarded: u32,
    held: Option<(ConnId, Action)>,
}

impl Planted {
    fn new(bug: Bug, inner: Broker, max_packet_size: u32) -> Planted {
        Planted {
            bug,
            inner,
            max_packet_size,
            framers: BTreeMap::new(),
            out: VecDeque::new(),
            now: None,
            duplicated: false,
            resumed: BTreeSet::new(),
            forwarded: 0,
            held: None,
        }
    }

    /// One inbound packet, after the bug had its say.
    fn inbound(&mut self, now: Instant, conn: ConnId, packet: Packet) {
        match (self.bug, packet) {
            (Bug::WillAfterDisconnect, Packet::Disconnect(_)) => {
                self.inner.handle_closed(now, conn, CloseCause::PeerClosed);
            }
            (Bug::RetainedNotCleared, Packet::Publish(mut p)) => {
                if p.retain && p.payload.is_empty() {
                    p.retain = false;
                }
                self.inner.handle_packet(now, conn, Packet::Publish(p));
            }
            (Bug::SharedToAll, Packet::Subscribe(mut s)) => {
                for sub in &mut s.filters {
                    if let Some((_, inner)) = sub
                        .filter
                        .strip_prefix("$share/")
                        .and_then(|rest| rest.split_once('/'))
                    {
                        sub.filter = inner.to_owned();
                    }
                }
                self.inner.handle_packet(now, conn, Packet::Subscribe(s));
            }
            (_, packet) => self.inner.handle_packet(now, conn, packet),
        }
    }

    /// Rewrites one action of the core into what the shell is given.
    fn outbound(&mut self, action: Action) {
        match self.bug {
            Bug::Qos2ForwardedTwice => self.duplicate(action),
            Bug::Qos1DroppedAfterReconnect => self.drop_after_resume(action),
            Bug::Reordered => self.reorder(action),
            _ => self.out.push_back(action),
        }
    }

    fn duplicate(&mut self, action: Action) {
        let copy = match &action {
            Action::Send {
                conn,
                protocol,
                packet: Packet::Publish(p),
            } if p.qos == QoS::ExactlyOnce && !p.dup && !self.duplicated => {
                self.duplicated = true;
                Some(Action::Send {
                    conn: *conn,
                    protocol: *protocol,
                    packet: Packet::Publish(Publish {
                        pkid: EXTRA_PKID,
                        ..p.clone()
                    }),
                })
            }
            _ => None,
        };
        self.out.push_back(action);
        self.out.extend(copy);
    }

    fn drop_after_resume(&mut self, action: Action) {
        match &action {
            Action::Send {
                conn,
                packet:
                    Packet::ConnAck(ConnAck {
                        session_present: true,
                        reason: ReasonCode::Success,
                        ..
                    }),
                ..
            } => {
                self.resumed.insert(*conn);
            }
            Action::Send {
                conn,
                packet: Packet::Publish(p),
                ..
            } if p.qos == QoS::AtLeastOnce && self.resumed.remove(conn) => {
                // Swallowed; the core believes the client acknowledged it.
                let (conn, pkid) = (*conn, p.pkid);
                let now = self.now.expect("a publish is sent only after some event");
                self.inner
                    .handle_packet(now, conn, Packet::PubAck(Ack::new(pkid)));
                return;
            }
            Action::Close { conn, .. } => {
                self.resumed.remove(conn);
            }
            _ => {}
        }
        self.out.push_back(action);
    }

    fn reorder(&mut self, action: Action) {
        if let Action::Send {
            conn,
            packet: Packet::Publish(p),
            ..
        } = &action
            && p.qos != QoS::AtMostOnce
            && !p.dup
        {
            let conn = *conn;
            if let Some((
                held_conn,
                Action::Send {
                    packet: Packet::Publish(h),
                    ..
                },
            )) = &self.held
                && *held_conn == conn
                && h.topic == p.topic
            {
                let (_, held) = self.held.take().expect("checked above");
                self.out.push_back(action);
                self.out.push_back(held);
                return;
            }
            self.forwarded += 1;
            if self.forwarded == REORDER_NTH {
                self.held = Some((conn, action));
                return;
            }
        }
        if let Action::Close { conn, .. } = &action
            && self.held.as_ref().is_some_and(|(c, _)| c == conn)
        {
            let (_, held) = self.held.take().expect("checked above");
            self.out.push_back(held);
        }
        self.out.push_back(action);
    }
}

impl BrokerCore for Planted {
    fn handle_accept(&mut self, now: Instant, conn: ConnId) {
        self.now = Some(now);
        self.framers
            .insert(conn, Framer::new(None, self.max_packet_size));
        self.inner.handle_accept(now, conn);
    }

    fn handle_bytes(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        self.now = Some(now);
        let Some(framer) = self.framers.get_mut(&conn) else {
            return;
        };
        framer.push(bytes);
        loop {
            let Some(framer) = self.framers.get_mut(&conn) else {
                return;
            };
            match framer.next_packet() {
                Ok(Some(packet)) => self.inbound(now, conn, packet),
                Ok(None) => return,
                Err(e) => {
                    // Not what these doubles are about: end the connection as a broken one.
                    self.framers.remove(&conn);
                    self.inner.handle_closed(now, conn, CloseCause::Io);
                    self.out.push_back(Action::Close {
                        conn,
                        reason: CloseReason::ProtocolViolation(e.reason_code()),
                    });
                    return;
                }
            }
        }
    }

    fn handle_packet(&mut self, now: Instant, conn: ConnId, packet: Packet) {
        self.now = Some(now);
        self.inbound(now, conn, packet);
    }

    fn handle_closed(&mut self, now: Instant, conn: ConnId, cause: CloseCause) {
        self.now = Some(now);
        self.framers.remove(&conn);
        self.resumed.remove(&conn);
        if self.held.as_ref().is_some_and(|(c, _)| *c == conn) {
            self.held = None;
        }
        if self.bug == Bug::NoWillAfterCrash && cause != CloseCause::Local {
            self.inner.handle_packet(
                now,
                conn,
                Packet::Disconnect(Disconnect {
                    reason: ReasonCode::Success,
                    properties: Properties::default(),
                }),
            );
        }
        self.inner.handle_closed(now, conn, cause);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        self.inner.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn poll_action(&mut self) -> Option<Action> {
        // Bounded: every turn takes one action out of the core, which has finitely many.
        loop {
            if let Some(action) = self.out.pop_front() {
                if let Action::Close { conn, .. } = &action {
                    self.framers.remove(conn);
                }
                return Some(action);
            }
            let action = self.inner.poll_action()?;
            self.outbound(action);
        }
    }

    fn poll_event(&mut self) -> Option<BrokerEvent> {
        self.inner.poll_event()
    }

    fn durable_state(&self) -> DurableState {
        self.inner.durable_state()
    }

    fn is_dirty(&self) -> bool {
        self.inner.is_dirty()
    }

    fn take_dirty(&mut self) -> bool {
        self.inner.take_dirty()
    }
}
