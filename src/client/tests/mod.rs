//! Client core tests on an in-memory harness with a virtual clock: the test plays the broker,
//! feeding packets and transport events with `now = t0 + offset`, and reads back the actions
//! and events. No sockets, no sleeps.

mod alias;
mod buffer;
mod connect;
mod inbound;
mod keepalive;
mod outbound;
mod props;
mod reconnect;

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::codec::{
    Ack, ConnAck, Packet, Properties, Protocol, Publish, QoS, ReasonCode, SubAck, Subscription,
};

pub(super) fn config(protocol: Protocol) -> ClientConfig {
    ClientConfig {
        protocol,
        client_id: "c1".into(),
        clean_start: false,
        keep_alive: 10,
        ping_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(5),
        reconnect: ReconnectPolicy {
            enabled: true,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            jitter: 0.0,
        },
        ..ClientConfig::default()
    }
}

pub(super) struct H {
    pub c: Client,
    pub t0: Instant,
    pub now: Instant,
}

impl H {
    pub fn new(config: ClientConfig) -> H {
        let t0 = Instant::now();
        H {
            c: Client::new(config, 7),
            t0,
            now: t0,
        }
    }

    pub fn v311() -> H {
        H::new(config(Protocol::V3_1_1))
    }

    pub fn v5() -> H {
        H::new(config(Protocol::V5))
    }

    /// Moves the clock to `t0 + secs` and fires due timers.
    pub fn at_ms(&mut self, ms: u64) {
        let now = self.t0 + Duration::from_millis(ms);
        assert!(now >= self.now, "time goes forward");
        self.now = now;
        self.c.handle_timeout(now);
    }

    pub fn at(&mut self, secs: u64) {
        self.at_ms(secs * 1000);
    }

    /// Jumps to the next deadline and fires it.
    pub fn fire(&mut self) -> Instant {
        let at = self.c.poll_timeout().expect("a timer is armed");
        self.now = self.now.max(at);
        self.c.handle_timeout(self.now);
        at
    }

    pub fn actions(&mut self) -> Vec<ClientAction> {
        std::iter::from_fn(|| self.c.poll_action()).collect()
    }

    /// Drains the actions, all of which must be `Send`.
    pub fn sent(&mut self) -> Vec<Packet> {
        self.actions()
            .into_iter()
            .map(|a| match a {
                ClientAction::Send(p) => p,
                other => panic!("expected only sends, got {other:?}"),
            })
            .collect()
    }

    pub fn events(&mut self) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.c.poll_event()).collect()
    }

    pub fn recv(&mut self, p: Packet) {
        self.c.handle_packet(self.now, p);
    }

    /// connect → OpenTransport → up → CONNECT → CONNACK(ack). Returns the CONNECT.
    pub fn connect_with(&mut self, ack: ConnAck) -> crate::codec::Connect {
        self.c.connect(self.now);
        self.open_with(ack)
    }

    /// After an `OpenTransport` the harness already drained or the test expects.
    pub fn open_with(&mut self, ack: ConnAck) -> crate::codec::Connect {
        let acts = self.actions();
        assert_eq!(acts.last(), Some(&ClientAction::OpenTransport), "{acts:?}");
        self.c.handle_transport_up(self.now);
        let connect = match self.sent().as_slice() {
            [Packet::Connect(c)] => c.clone(),
            other => panic!("expected CONNECT, got {other:?}"),
        };
        self.recv(Packet::ConnAck(ack));
        connect
    }

    pub fn connect(&mut self, session_present: bool) {
        self.connect_with(connack(session_present));
        assert_eq!(self.c.state(), ConnState::Connected);
    }

    /// The connection drops, the backoff timer fires and a new CONNACK arrives.
    pub fn reconnect(&mut self, session_present: bool) {
        self.c
            .handle_transport_down(self.now, DownCause::PeerClosed);
        self.fire();
        self.open_with(connack(session_present));
        assert_eq!(self.c.state(), ConnState::Connected);
    }

    pub fn publish(&mut self, topic: &str, qos: QoS) -> RequestId {
        self.c
            .publish(
                self.now,
                topic,
                Bytes::from_static(b"x"),
                qos,
                false,
                Properties::default(),
            )
            .expect("publish accepted")
    }

    pub fn subscribe(&mut self, filter: &str, qos: QoS) -> RequestId {
        self.c
            .subscribe(self.now, vec![sub(filter, qos)], Properties::default())
            .expect("subscribe accepted")
    }
}

pub(super) fn connack(session_present: bool) -> ConnAck {
    ConnAck {
        session_present,
        reason: ReasonCode::Success,
        properties: Properties::default(),
    }
}

pub(super) fn sub(filter: &str, qos: QoS) -> Subscription {
    Subscription {
        filter: filter.into(),
        options: crate::codec::SubscriptionOptions {
            qos,
            ..Default::default()
        },
    }
}

pub(super) fn suback(pkid: u16, reasons: Vec<ReasonCode>) -> Packet {
    Packet::SubAck(SubAck {
        pkid,
        reasons,
        properties: Properties::default(),
    })
}

pub(super) fn incoming(pkid: u16, qos: QoS, dup: bool) -> Publish {
    Publish {
        dup,
        qos,
        retain: false,
        topic: "in/t".into(),
        pkid,
        properties: Properties::default(),
        payload: Bytes::from_static(b"m"),
    }
}

pub(super) fn ack(pkid: u16) -> Ack {
    Ack::new(pkid)
}

/// The packet identifier and DUP flag of a sent PUBLISH.
pub(super) fn pub_id(p: &Packet) -> (u16, bool) {
    match p {
        Packet::Publish(p) => (p.pkid, p.dup),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}
