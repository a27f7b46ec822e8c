//! The fuzz entry point of the broker core: [`broker_core`] reads a sequence of steps from
//! unstructured bytes and drives a [`Broker`] with small limits through them, over a few
//! connections: accepts, packets (built to be valid, or any valid packet, fed in arbitrary
//! chunks), raw bytes, closes, time advancing, and a save and restore of the durable state. The
//! target in `fuzz/fuzz_targets/broker_core.rs` is one line calling it;
//! `tests/codec/fuzz_regressions.rs` replays the kept inputs.
//!
//! After every step it panics on a violated invariant:
//! - memory is bounded by the configuration: sessions, connections, queued and inflight
//!   messages per session, inbound QoS 2 identifiers, inbound topic aliases, retained
//!   messages, pending events, and the bytes each connection's framer buffers;
//! - no packet identifier is in flight twice on a session, and none is 0;
//! - a PUBLISH is sent to a client only on a topic that matches a filter the client subscribed
//!   to (and an outbound topic alias is used only once assigned);
//! - a repeated QoS 2 PUBLISH whose identifier awaits PUBREL is not routed again, and a PUBREL
//!   with success is sent to a 5.0 client only for a message awaiting PUBCOMP;
//! - `handle_timeout` fires every deadline due, and the durable state survives serialization;
//! - the change journal misses nothing: its changes since the last restore, applied to a
//!   store's tables (`journal::ModelTables`), hold the broker's durable state, and each
//!   restore starts from those tables.
//!
//! The checks read the core's private state here, never in its hot paths. Not here: the
//! codec's own targets (`codec::fuzz`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use arbitrary::{Result, Unstructured};
use bytes::{Bytes, BytesMut};

use crate::codec::arbitrary::valid_packet;
use crate::codec::topic::{matches, shared_subscription};
use crate::codec::{
    Ack, Connect, Disconnect, LastWill, Packet, Properties, Protocol, QoS, ReasonCode,
    RetainHandling, Subscribe, Subscription, SubscriptionOptions, Unsubscribe, decode, encode,
    reason,
};

use super::journal::ModelTables;
use super::session::Inflight;
use super::{
    Action, Broker, BrokerConfig, BrokerCore, CloseCause, ConnId, DurableState, Phase,
    QueueOverflow,
};

/// Connections the steps address; one more than `max_connections` allows.
const SLOTS: usize = 4;
/// Steps run at most per input.
const MAX_STEPS: usize = 200;
const CLIENT_IDS: [&str; 4] = ["c0", "c1", "c2", ""];
const TOPICS: [&str; 5] = ["a", "a/b", "b", "$SYS/x", "a/b/c"];
const FILTERS: [&str; 9] = [
    "a",
    "a/#",
    "+",
    "#",
    "+/b",
    "$share/g/a",
    "$share/g/#",
    "$SYS/#",
    "a/+/+/+",
];

/// Small limits, so that every one of them is reached; the first input byte varies a few
/// policies.
fn config(u: &mut Unstructured) -> Result<BrokerConfig> {
    let bits: u8 = u.arbitrary()?;
    Ok(BrokerConfig {
        max_packet_size: 128,
        max_connections: 3,
        connect_timeout: Duration::from_secs(2),
        max_inflight: 2,
        max_queued_messages: 2,
        max_queued_bytes: 24,
        queue_overflow: if bits & 1 == 0 {
            QueueOverflow::DropNewest
        } else {
            QueueOverflow::DropOldest
        },
        max_subscriptions_per_client: 3,
        max_retained: 2,
        max_sessions: 2,
        max_topic_len: 16,
        max_topic_levels: 3,
        max_keep_alive: if bits & 2 == 0 { u16::MAX } else { 30 },
        max_client_id_len: 8,
        receive_maximum: 2,
        max_pending_events: 3,
        max_session_expiry: if bits & 4 == 0 { u32::MAX } else { 10 },
        topic_alias_maximum: 2,
        max_outbound_topic_aliases: if bits & 8 == 0 { 2 } else { 0 },
        shared_subscriptions: bits & 16 == 0,
        response_information: None,
        allow_anonymous: true,
        sys_interval: Duration::from_secs(if bits & 32 == 0 { 0 } else { 1 }),
    })
}

/// One connection as the fuzzing client sees it.
#[derive(Debug, Default)]
struct Slot {
    conn: Option<ConnId>,
    /// The protocol of the CONNECT sent on it (3.1.1 before).
    protocol: Option<Protocol>,
    /// Outbound topic aliases the broker assigned on it.
    aliases: BTreeMap<u16, String>,
    /// Packet identifiers of PUBLISH and PUBREL received, for the acknowledgements to pick.
    received: Vec<u16>,
}

struct Harness {
    config: BrokerConfig,
    broker: Broker,
    now: Instant,
    next_conn: ConnId,
    slots: [Slot; SLOTS],
    /// Client id → every filter it may hold a message for.
    filters: BTreeMap<String, BTreeSet<String>>,
    /// Filters subscribed by a client whose id the harness does not know.
    unattributed: BTreeSet<String>,
    /// The broker's change journal applied to a store's tables since the last restore.
    model: ModelTables,
}

/// Arbitrary steps against a broker with small limits; panics on a violated invariant (see the
/// module documentation).
pub fn broker_core(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(config) = config(&mut u) else {
        return;
    };
    let now = Instant::now();
    let mut broker = Broker::restore_at(config.clone(), DurableState::default(), now);
    broker.record_changes();
    let mut h = Harness {
        model: ModelTables::from_state(&broker.durable_state()),
        broker,
        config,
        now,
        next_conn: 1,
        slots: Default::default(),
        filters: BTreeMap::new(),
        unattributed: BTreeSet::new(),
    };
    for _ in 0..MAX_STEPS {
        if u.is_empty() || h.step(&mut u).is_err() {
            break;
        }
    }
}

impl Harness {
    fn step(&mut self, u: &mut Unstructured) -> Result<()> {
        let slot = usize::from(u.int_in_range(0..=SLOTS as u8 - 1)?);
        let mut single = None;
        match u.int_in_range(0..=9u8)? {
            0 | 1 => self.accept(slot),
            2..=5 => {
                let Some(conn) = self.slots[slot].conn else {
                    return Ok(());
                };
                let packet = self.packet(u, slot)?;
                let protocol = match &packet {
                    Packet::Connect(c) => c.protocol,
                    _ => self.slots[slot].protocol.unwrap_or(Protocol::V3_1_1),
                };
                let mut buf = BytesMut::new();
                if encode(&packet, protocol, &mut buf).is_err() {
                    return Ok(());
                }
                if let Packet::Connect(c) = &packet {
                    self.slots[slot].protocol = Some(c.protocol);
                }
                self.note_subscribe(conn, &packet);
                single = Some((conn, self.expect_of(conn, &packet)));
                let seed = u.arbitrary()?;
                self.feed(conn, &buf, seed);
            }
            6 => {
                let Some(conn) = self.slots[slot].conn else {
                    return Ok(());
                };
                let len = u.int_in_range(0..=160)?;
                let bytes = u.bytes(len.min(u.len()))?.to_vec();
                self.note_raw(conn, &bytes);
                let seed = u.arbitrary()?;
                self.feed(conn, &bytes, seed);
            }
            7 => {
                if let Some(conn) = self.slots[slot].conn.take() {
                    let cause =
                        *u.choose(&[CloseCause::PeerClosed, CloseCause::Io, CloseCause::Local])?;
                    self.broker.handle_closed(self.now, conn, cause);
                }
            }
            8 => {
                let step = *u.choose(&[0, 10, 500, 1_000, 2_500, 16_000, 61_000, 3_600_000])?;
                self.now += Duration::from_millis(step);
                if self.broker.poll_timeout().is_some_and(|t| t <= self.now) {
                    self.broker.handle_timeout(self.now);
                    let next = self.broker.poll_timeout();
                    assert!(
                        next.is_none_or(|t| t > self.now),
                        "a deadline is still due after handle_timeout"
                    );
                }
            }
            _ => {
                if u.arbitrary()? {
                    self.restore(u)?;
                } else {
                    while self.broker.poll_event().is_some() {}
                }
            }
        }
        self.check_bounds();
        self.drain(single);
        self.update_filters();
        self.stored_state();
        Ok(())
    }

    fn accept(&mut self, slot: usize) {
        let conn = self.next_conn;
        self.next_conn += 1;
        if let Some(old) = self.slots[slot].conn {
            self.broker.handle_closed(self.now, old, CloseCause::Io);
        }
        self.slots[slot] = Slot {
            conn: Some(conn),
            ..Slot::default()
        };
        self.broker.handle_accept(self.now, conn);
    }

    /// Bytes in chunks of 1 to 24, the sizes drawn from `seed`.
    fn feed(&mut self, conn: ConnId, bytes: &[u8], seed: u8) {
        let mut state = u32::from(seed) | 1;
        let mut rest = bytes;
        while !rest.is_empty() {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let n = (((state >> 16) % 24) as usize + 1).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            self.broker.handle_bytes(self.now, conn, chunk);
            rest = tail;
        }
    }

    /// The durable state as the journal's rows hold it, checked against the broker's.
    fn stored_state(&mut self) -> DurableState {
        self.model.apply(&self.broker.take_changes());
        let stored = self.model.state().expect("journal rows make a state");
        assert_eq!(
            stored,
            self.broker.durable_state().normalized(),
            "the change journal holds the durable state"
        );
        stored
    }

    /// Restarts the broker from what a store fed its journal holds.
    fn restore(&mut self, u: &mut Unstructured) -> Result<()> {
        let state = self.stored_state();
        let json = serde_json::to_string(&state).expect("durable state serializes");
        let back: DurableState = serde_json::from_str(&json).expect("durable state deserializes");
        assert_eq!(
            back.clone().normalized(),
            state.normalized(),
            "durable state survives serialization"
        );
        let downtime = Duration::from_secs(u64::from(u.int_in_range(0..=20u8)?));
        self.now += downtime;
        self.broker = Broker::restore_at(self.config.clone(), back.aged(downtime), self.now);
        self.broker.record_changes();
        self.model = ModelTables::from_state(&self.broker.durable_state());
        for s in &mut self.slots {
            *s = Slot::default();
        }
        Ok(())
    }

    /// The client id of the session `conn` is attached to, if connected.
    fn client_of(&self, conn: ConnId) -> Option<String> {
        match &self.broker.conns.get(&conn)?.phase {
            Phase::Connected { client_id } => Some(client_id.to_string()),
            Phase::AwaitingConnect => None,
        }
    }

    fn add_filters<'a>(&mut self, client: Option<String>, filters: impl Iterator<Item = &'a str>) {
        let set = match client {
            Some(c) => self.filters.entry(c).or_default(),
            None => &mut self.unattributed,
        };
        set.extend(filters.map(str::to_owned));
    }

    fn note_subscribe(&mut self, conn: ConnId, packet: &Packet) {
        if let Packet::Subscribe(s) = packet {
            let client = self.client_of(conn);
            self.add_filters(client, s.filters.iter().map(|f| f.filter.as_str()));
        }
    }

    /// Raw bytes may hold a CONNECT and a SUBSCRIBE: their filters count for whichever client.
    fn note_raw(&mut self, conn: ConnId, bytes: &[u8]) {
        let protocol = self
            .broker
            .conns
            .get(&conn)
            .and_then(|c| c.framer.protocol());
        let mut protocol = protocol;
        let mut buf = BytesMut::from(bytes);
        while let Ok(Some(p)) = decode(&mut buf, protocol, u32::MAX) {
            match p {
                Packet::Connect(c) => protocol = Some(c.protocol),
                Packet::Subscribe(s) => {
                    self.add_filters(None, s.filters.iter().map(|f| f.filter.as_str()))
                }
                _ => {}
            }
        }
    }

    /// For a single QoS 2 PUBLISH repeating an identifier that awaits PUBREL: the state that
    /// must not change (queued messages, retained store).
    fn expect_of(&self, conn: ConnId, packet: &Packet) -> Option<(usize, usize)> {
        let Packet::Publish(p) = packet else {
            return None;
        };
        let session = self.broker.sessions.get(&self.client_of(conn)?)?;
        (p.qos == QoS::ExactlyOnce && session.incoming_qos2().contains(&p.pkid))
            .then(|| (self.queued_total(), self.broker.retained.map().len()))
    }

    fn queued_total(&self) -> usize {
        self.broker
            .sessions
            .values()
            .map(|s| s.queued().len())
            .sum()
    }

    fn check_bounds(&self) {
        let b = &self.broker;
        let c = &self.config;
        assert!(b.sessions.len() <= c.max_sessions, "too many sessions");
        assert!(b.conns.len() <= c.max_connections, "too many connections");
        assert!(
            b.retained.map().len() <= c.max_retained,
            "too many retained"
        );
        assert!(b.events.len() <= c.max_pending_events, "too many events");
        for (id, s) in b.sessions.iter() {
            assert!(s.queued().len() <= c.max_queued_messages, "{id}: queue");
            let bytes: usize = s.queued().iter().map(|d| d.message.payload.len()).sum();
            assert_eq!(
                s.flow().queued_bytes.0,
                bytes,
                "{id}: queued bytes miscounted"
            );
            assert!(bytes <= c.max_queued_bytes, "{id}: queued bytes");
            assert!(
                s.inflight().len() <= usize::from(c.max_inflight),
                "{id}: inflight"
            );
            assert!(
                s.incoming_qos2().len() <= usize::from(c.receive_maximum),
                "{id}: inbound QoS 2"
            );
            let pkids: BTreeSet<u16> = s.inflight().iter().map(Inflight::pkid).collect();
            assert_eq!(pkids.len(), s.inflight().len(), "{id}: identifier twice");
            assert!(!pkids.contains(&0), "{id}: identifier 0 in flight");
            let reserved: BTreeSet<u16> = s
                .queued()
                .iter()
                .map(|d| d.pkid)
                .filter(|&p| p != 0)
                .collect();
            assert_eq!(
                reserved,
                s.flow().reserved.0,
                "{id}: reservations miscounted"
            );
            assert!(
                reserved.is_disjoint(&pkids)
                    && s.queued().iter().filter(|d| d.pkid != 0).count() == reserved.len(),
                "{id}: a reserved identifier held twice"
            );
        }
        for (conn, cn) in &b.conns {
            assert!(
                cn.framer.buffered() <= c.max_packet_size as usize,
                "conn {conn}: framer buffers {}",
                cn.framer.buffered()
            );
            assert!(
                cn.aliases_in.len() <= usize::from(c.topic_alias_maximum),
                "conn {conn}: aliases"
            );
        }
    }

    /// Performs the actions, checking each PUBLISH and PUBREL sent.
    fn drain(&mut self, single: Option<(ConnId, Option<(usize, usize)>)>) {
        let mut published = 0;
        let mut pubrels = Vec::new();
        while let Some(action) = self.broker.poll_action() {
            let (conn, packet, protocol) = match action {
                Action::Send {
                    conn,
                    packet,
                    protocol,
                } => (conn, packet, protocol),
                Action::Close { conn, .. } => {
                    for s in &mut self.slots {
                        if s.conn == Some(conn) {
                            s.conn = None;
                        }
                    }
                    continue;
                }
            };
            let Some(slot) = self.slots.iter().position(|s| s.conn == Some(conn)) else {
                continue;
            };
            match packet {
                Packet::Publish(p) => {
                    published += 1;
                    self.check_delivery(slot, conn, &p);
                }
                Packet::PubRel(a) => {
                    // 3.1.1 cannot say "identifier not found": it answers any PUBREC so.
                    if protocol.is_v5() && a.reason == ReasonCode::Success {
                        pubrels.push((conn, a.pkid));
                    }
                    remember(&mut self.slots[slot].received, a.pkid);
                }
                _ => {}
            }
        }
        let Some((conn, expect)) = single else {
            return;
        };
        let Some(client) = self.client_of(conn) else {
            return;
        };
        if let Some((queued, retained)) = expect {
            assert_eq!(published, 0, "a repeated QoS 2 PUBLISH was routed again");
            assert_eq!(
                self.queued_total(),
                queued,
                "a repeated QoS 2 PUBLISH was queued"
            );
            assert_eq!(self.broker.retained.map().len(), retained);
        }
        let session = self
            .broker
            .sessions
            .get(&client)
            .expect("connected session");
        for (to, pkid) in pubrels {
            if to == conn {
                assert!(
                    session
                        .inflight()
                        .iter()
                        .any(|e| matches!(e, Inflight::Release { pkid: p, .. } if *p == pkid)),
                    "PUBREL {pkid} for no message awaiting PUBCOMP"
                );
            }
        }
    }

    fn check_delivery(&mut self, slot: usize, conn: ConnId, p: &crate::codec::Publish) {
        let s = &mut self.slots[slot];
        if p.qos != QoS::AtMostOnce {
            assert_ne!(p.pkid, 0, "QoS {:?} PUBLISH without identifier", p.qos);
            remember(&mut s.received, p.pkid);
        }
        let topic = match (p.topic.is_empty(), p.properties.topic_alias) {
            (false, Some(alias)) => {
                s.aliases.insert(alias, p.topic.clone());
                p.topic.clone()
            }
            (false, None) => p.topic.clone(),
            (true, Some(alias)) => match s.aliases.get(&alias) {
                Some(t) => t.clone(),
                None => panic!("outbound alias {alias} used before it was assigned"),
            },
            (true, None) => panic!("PUBLISH with neither topic nor alias"),
        };
        let Some(client) = self.client_of(conn) else {
            return;
        };
        let held = self.filters.get(&client).into_iter().flatten();
        let ok = held.chain(&self.unattributed).any(|f| {
            let plain = shared_subscription(f).map_or(f.as_str(), |(_, f)| f);
            matches(plain, &topic)
        });
        assert!(ok, "{client} got {topic} without a matching subscription");
    }

    /// A client whose session is gone, or holds no subscription and no message, may receive
    /// nothing until it subscribes again; the filters of every session count.
    fn update_filters(&mut self) {
        let sessions = &self.broker.sessions;
        self.filters.retain(|id, _| {
            sessions.get(id).is_some_and(|s| {
                !s.subscriptions.is_empty() || !s.queued().is_empty() || !s.inflight().is_empty()
            })
        });
        for (id, s) in sessions.iter() {
            let set = self.filters.entry(id.to_string()).or_default();
            set.extend(s.subscriptions.keys().cloned());
        }
    }

    /// A packet a client could send on `slot`: mostly built from small vocabularies so that
    /// topics meet filters and acknowledgements meet identifiers, sometimes any valid packet.
    fn packet(&self, u: &mut Unstructured, slot: usize) -> Result<Packet> {
        let s = &self.slots[slot];
        let protocol = s.protocol.unwrap_or(Protocol::V3_1_1);
        let v5 = protocol.is_v5();
        let pkid = |u: &mut Unstructured| -> Result<u16> {
            if !s.received.is_empty() && u.ratio(3, 4)? {
                Ok(*u.choose(&s.received)?)
            } else {
                u.int_in_range(1..=4)
            }
        };
        let code = |u: &mut Unstructured| -> Result<ReasonCode> {
            if v5 && u.ratio(1, 4)? {
                Ok(*u.choose(&reason::ALL)?)
            } else {
                Ok(ReasonCode::Success)
            }
        };
        let ack = |u: &mut Unstructured| -> Result<Ack> {
            Ok(Ack {
                pkid: pkid(u)?,
                reason: code(u)?,
                properties: Properties::default(),
            })
        };
        Ok(match u.int_in_range(0..=10u8)? {
            0 => Packet::Connect(connect(u)?),
            1 | 2 => Packet::Publish(publish(u, v5)?),
            3 => Packet::PubAck(ack(u)?),
            4 => Packet::PubRec(ack(u)?),
            5 => Packet::PubRel(ack(u)?),
            6 => Packet::PubComp(ack(u)?),
            7 => {
                let n = u.int_in_range(1..=3)?;
                let mut filters = Vec::with_capacity(n);
                for _ in 0..n {
                    filters.push(Subscription {
                        filter: (*u.choose(&FILTERS)?).to_owned(),
                        options: SubscriptionOptions {
                            qos: u.arbitrary()?,
                            no_local: v5 && u.ratio(1, 4)?,
                            retain_as_published: v5 && u.arbitrary()?,
                            retain_handling: if v5 {
                                u.arbitrary()?
                            } else {
                                RetainHandling::SendAtSubscribe
                            },
                        },
                    });
                }
                let mut properties = Properties::default();
                if v5 && u.arbitrary()? {
                    properties.subscription_identifiers = vec![u.int_in_range(1..=3)?];
                }
                Packet::Subscribe(Subscribe {
                    pkid: u.int_in_range(1..=4)?,
                    filters,
                    properties,
                })
            }
            8 => Packet::Unsubscribe(Unsubscribe {
                pkid: u.int_in_range(1..=4)?,
                filters: vec![(*u.choose(&FILTERS)?).to_owned()],
                properties: Properties::default(),
            }),
            9 => {
                if u.arbitrary()? {
                    Packet::PingReq
                } else {
                    let mut properties = Properties::default();
                    if v5 && u.arbitrary()? {
                        properties.session_expiry_interval = Some(*u.choose(&[0, 5, u32::MAX])?);
                    }
                    Packet::Disconnect(Disconnect {
                        reason: if v5 {
                            *u.choose(&[
                                ReasonCode::Success,
                                ReasonCode::DisconnectWithWillMessage,
                                ReasonCode::UnspecifiedError,
                            ])?
                        } else {
                            ReasonCode::Success
                        },
                        properties,
                    })
                }
            }
            _ => valid_packet(u, protocol)?,
        })
    }
}

/// Keeps the last few identifiers received on a connection.
fn remember(received: &mut Vec<u16>, pkid: u16) {
    if !received.contains(&pkid) {
        if received.len() >= 6 {
            received.remove(0);
        }
        received.push(pkid);
    }
}

fn connect(u: &mut Unstructured) -> Result<Connect> {
    let protocol = *u.choose(&[Protocol::V3_1_1, Protocol::V5, Protocol::V3_1])?;
    let v5 = protocol.is_v5();
    let mut properties = Properties::default();
    let mut will_properties = Properties::default();
    if v5 {
        properties.session_expiry_interval =
            *u.choose(&[None, Some(0), Some(5), Some(u32::MAX)])?;
        properties.receive_maximum = *u.choose(&[None, Some(1), Some(2)])?;
        properties.topic_alias_maximum = *u.choose(&[None, Some(2)])?;
        properties.maximum_packet_size = *u.choose(&[None, Some(40), Some(80)])?;
        properties.request_problem_information = *u.choose(&[None, Some(0)])?;
        will_properties.will_delay_interval = *u.choose(&[None, Some(0), Some(3)])?;
    }
    let will = if u.ratio(1, 3)? {
        Some(LastWill {
            topic: (*u.choose(&TOPICS)?).to_owned(),
            payload: Bytes::from_static(b"w"),
            qos: u.arbitrary()?,
            retain: u.arbitrary()?,
            properties: will_properties,
        })
    } else {
        None
    };
    Ok(Connect {
        protocol,
        clean_start: u.arbitrary()?,
        keep_alive: *u.choose(&[0, 1, 5, 60])?,
        client_id: (*u.choose(&CLIENT_IDS)?).to_owned(),
        will: will.map(Box::new),
        username: None,
        password: None,
        properties,
    })
}

fn publish(u: &mut Unstructured, v5: bool) -> Result<crate::codec::Publish> {
    let qos: QoS = u.arbitrary()?;
    let mut properties = Properties::default();
    let mut topic = (*u.choose(&TOPICS)?).to_owned();
    if v5 {
        properties.message_expiry_interval = *u.choose(&[None, None, Some(1), Some(30)])?;
        if u.ratio(1, 4)? {
            properties.topic_alias = Some(u.int_in_range(1..=3)?);
            if u.arbitrary()? {
                topic.clear();
            }
        }
    }
    let payload_len = *u.choose(&[0, 1, 1, 4, 12, 100])?;
    Ok(crate::codec::Publish {
        dup: qos != QoS::AtMostOnce && u.arbitrary()?,
        qos,
        retain: u.ratio(1, 3)?,
        topic,
        pkid: if qos == QoS::AtMostOnce {
            0
        } else {
            u.int_in_range(1..=4)?
        },
        properties,
        payload: Bytes::from(vec![b'p'; payload_len]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry point accepts the empty input and arbitrary short inputs.
    #[test]
    fn runs_on_simple_inputs() {
        broker_core(&[]);
        broker_core(&[0; 64]);
        let data: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        broker_core(&data);
    }
}
