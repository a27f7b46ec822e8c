//! Tests of the broker core on an in-memory harness with a virtual clock: packets in, actions
//! out, no sockets, no sleeps. One file per area; each test is named after the normative
//! statement it checks.

mod connect;
mod durable;
mod errors;
mod expiry;
mod framing;
mod inflight;
mod keepalive;
mod limits;
mod publish;
mod retained;
mod routing;
mod sessions;
mod shared;
mod storage;
mod sys;
mod v5;
mod will;

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::journal::{Change, ModelTables};
use super::{Action, Broker, BrokerConfig, BrokerCore, CloseCause, CloseReason, ConnId};
use crate::codec::{
    Ack, ConnAck, Connect, LastWill, Packet, Properties, PropertySet, Protocol, Publish, QoS,
    Subscribe, Subscription, SubscriptionOptions,
};

/// A broker, a virtual clock and the actions it produced.
pub(super) struct Harness {
    pub broker: Broker,
    /// What a store fed the broker's change journal holds (see `drain`).
    pub model: Option<ModelTables>,
    /// The changes the last `drain` took from the journal.
    pub changes: Vec<Change>,
    pub t0: Instant,
    pub now: Instant,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(BrokerConfig::default())
    }

    pub fn with(config: BrokerConfig) -> Harness {
        let t0 = Instant::now();
        Harness {
            model: None,
            changes: Vec::new(),
            broker: Broker::new(config),
            t0,
            now: t0,
        }
    }

    /// Moves the clock to `t0 + ms`, firing every deadline on the way, in order.
    pub fn advance_to_ms(&mut self, ms: u64) {
        let target = self.t0 + Duration::from_millis(ms);
        while let Some(d) = self.broker.poll_timeout()
            && d <= target
        {
            self.now = self.now.max(d);
            self.broker.handle_timeout(self.now);
        }
        self.now = target;
    }

    pub fn advance_to(&mut self, secs: u64) {
        self.advance_to_ms(secs * 1000);
    }

    pub fn accept(&mut self, conn: ConnId) {
        self.broker.handle_accept(self.now, conn);
    }

    pub fn packet(&mut self, conn: ConnId, packet: Packet) {
        self.broker.handle_packet(self.now, conn, packet);
    }

    pub fn closed(&mut self, conn: ConnId, cause: CloseCause) {
        self.broker.handle_closed(self.now, conn, cause);
    }

    /// Every action produced since the last drain. Also checks the change journal: the
    /// changes since the last drain, applied to what a store held, give the durable state.
    pub fn drain(&mut self) -> Vec<Action> {
        let out = std::iter::from_fn(|| self.broker.poll_action()).collect();
        self.check_journal();
        out
    }

    /// Applies the broker's changes to the model tables and compares them with its durable
    /// state. A broker that is not recording yet starts recording, with the model holding
    /// its state.
    pub fn check_journal(&mut self) {
        let model = match &mut self.model {
            Some(model) if self.broker.journal.is_some() => model,
            _ => {
                self.broker.record_changes();
                self.model
                    .insert(ModelTables::from_state(&self.broker.durable_state()))
            }
        };
        let changes = self.broker.take_changes();
        model.apply(&changes);
        self.changes.clone_from(&changes.ops);
        let stored = model.state().expect("journal rows make a state");
        assert_eq!(
            stored,
            self.broker.durable_state().normalized(),
            "the journal missed a change; last batch: {:#?}",
            changes.ops
        );
    }

    /// Accepts `conn` and sends `connect`; returns the CONNACK (panics if there is none).
    pub fn connect_with(&mut self, conn: ConnId, connect: Connect) -> ConnAck {
        self.accept(conn);
        self.packet(conn, Packet::Connect(connect));
        let out = self.drain();
        match sent(&out, conn).first() {
            Some(Packet::ConnAck(ack)) => ack.clone(),
            other => panic!("expected CONNACK, got {other:?} in {out:?}"),
        }
    }

    /// A 3.1.1 CONNECT without keep-alive; returns the CONNACK.
    pub fn connect(&mut self, conn: ConnId, id: &str, clean: bool) -> ConnAck {
        self.connect_with(conn, connect(id, clean))
    }

    /// Subscribes and checks the SUBACK grants what was asked.
    pub fn subscribe(&mut self, conn: ConnId, filter: &str, qos: QoS) {
        self.packet(conn, subscribe(1, &[(filter, qos)]));
        let out = self.drain();
        match sent(&out, conn).first() {
            Some(Packet::SubAck(s)) => {
                assert_eq!(s.reasons, vec![crate::codec::ReasonCode::granted(qos)])
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes and drains; returns the actions.
    pub fn publish(
        &mut self,
        conn: ConnId,
        topic: &str,
        qos: QoS,
        pkid: u16,
        payload: &str,
    ) -> Vec<Action> {
        self.packet(conn, publish(topic, qos, pkid, payload));
        self.drain()
    }
}

pub(super) fn connect(id: &str, clean: bool) -> Connect {
    Connect {
        protocol: Protocol::V3_1_1,
        clean_start: clean,
        keep_alive: 0,
        client_id: id.to_owned(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

pub(super) fn connect_v5(id: &str, clean: bool, session_expiry: u32) -> Connect {
    let mut c = connect(id, clean);
    c.protocol = Protocol::V5;
    c.properties.session_expiry_interval = Some(session_expiry);
    c
}

pub(super) fn will(topic: &str, payload: &str, qos: QoS, retain: bool) -> LastWill {
    LastWill {
        topic: topic.to_owned(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain,
        properties: Properties::default(),
    }
}

pub(super) fn publish(topic: &str, qos: QoS, pkid: u16, payload: &str) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.to_owned(),
        pkid,
        properties: Properties::default(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    })
}

pub(super) fn retained(topic: &str, qos: QoS, pkid: u16, payload: &str) -> Packet {
    let Packet::Publish(mut p) = publish(topic, qos, pkid, payload) else {
        unreachable!()
    };
    p.retain = true;
    Packet::Publish(p)
}

pub(super) fn subscribe(pkid: u16, filters: &[(&str, QoS)]) -> Packet {
    Packet::Subscribe(Subscribe {
        pkid,
        filters: filters
            .iter()
            .map(|(f, qos)| Subscription {
                filter: (*f).to_owned(),
                options: SubscriptionOptions {
                    qos: *qos,
                    ..Default::default()
                },
            })
            .collect(),
        properties: Properties::default(),
    })
}

pub(super) fn ack(pkid: u16) -> Ack {
    Ack::new(pkid)
}

/// A DISCONNECT from the broker with `reason` and the reason string `text`.
pub(super) fn server_disconnect(reason: crate::codec::ReasonCode, text: &str) -> Packet {
    Packet::Disconnect(crate::codec::Disconnect {
        reason,
        properties: Properties::from(PropertySet {
            reason_string: Some(text.to_owned()),
            ..PropertySet::default()
        }),
    })
}

/// The packets sent to `conn`, in order.
pub(super) fn sent(actions: &[Action], conn: ConnId) -> Vec<Packet> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                conn: c, packet, ..
            } if *c == conn => Some(packet.clone()),
            _ => None,
        })
        .collect()
}

/// The PUBLISH packets sent to `conn`, in order.
pub(super) fn publishes(actions: &[Action], conn: ConnId) -> Vec<Publish> {
    sent(actions, conn)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// The payloads of the PUBLISH packets sent to `conn`, as text.
pub(super) fn payloads(actions: &[Action], conn: ConnId) -> Vec<String> {
    publishes(actions, conn)
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}

/// The reason `conn` was closed with, if the actions close it.
pub(super) fn close_of(actions: &[Action], conn: ConnId) -> Option<CloseReason> {
    actions.iter().find_map(|a| match a {
        Action::Close { conn: c, reason } if *c == conn => Some(*reason),
        _ => None,
    })
}
