//! The fuzz entry point of the client core: [`client_core`] reads a sequence of steps from
//! unstructured bytes and drives a [`Client`] with small limits through them: transport up and
//! down, packets a broker could send (built around the identifiers in use, or any valid
//! packet) encoded and handed to [`Client::handle_bytes`] in chunks of any size, headers the
//! framer refuses, time advancing, and application requests. The target in
//! `fuzz/fuzz_targets/client_core.rs` is one line calling it; `tests/codec/fuzz_regressions.rs`
//! replays the kept inputs.
//!
//! After every step it panics on a violated invariant:
//! - memory is bounded by the configuration: requests buffered, QoS 1/2 publishes in flight;
//! - every request in flight holds its own packet identifier, and a PUBLISH, SUBSCRIBE,
//!   UNSUBSCRIBE sent (and a 5.0 PUBREL with success) carries the identifier of a request in
//!   flight at that stage;
//! - an inbound QoS 2 message is handed to the application once until its PUBREL arrives.
//!
//! The checks read the core's private state here, never in its hot paths. Not here: the broker
//! core's target (`broker::fuzz`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use arbitrary::{Result, Unstructured};
use bytes::Bytes;

use crate::codec::arbitrary::valid_packet;
use crate::codec::{
    Ack, ConnAck, Disconnect, Packet, Properties, Protocol, Publish, QoS, ReasonCode, SubAck,
    Subscription, SubscriptionOptions, UnsubAck, reason,
};

use super::inflight::Stage;
use super::{
    BufferPolicy, Client, ClientAction, ClientConfig, ClientEvent, DownCause, ReconnectPolicy,
};

const MAX_STEPS: usize = 200;
const TOPICS: [&str; 4] = ["a", "a/b", "b", "$SYS/x"];
const FILTERS: [&str; 4] = ["a", "a/#", "#", "$share/g/a"];

fn config(u: &mut Unstructured) -> Result<ClientConfig> {
    let bits: u8 = u.arbitrary()?;
    let v5 = bits & 1 == 0;
    let clean_start = bits & 4 == 0;
    Ok(ClientConfig {
        protocol: if v5 { Protocol::V5 } else { Protocol::V3_1_1 },
        // 3.1.1 resumes a session only under a client id of its own
        client_id: if bits & 2 == 0 || (!v5 && !clean_start) {
            "c".into()
        } else {
            String::new()
        },
        clean_start,
        session_expiry: if bits & 8 == 0 { None } else { Some(30) },
        keep_alive: 5,
        receive_maximum: 2,
        max_packet_size: 128,
        topic_alias_maximum: if v5 { 2 } else { 0 },
        outbound_topic_aliases: if v5 { 2 } else { 0 },
        max_inflight: 2,
        ping_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(3),
        reconnect: ReconnectPolicy {
            enabled: bits & 16 == 0,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            jitter: 0.5,
        },
        max_buffered: 3,
        buffer_policy: *u.choose(&[
            BufferPolicy::DropOldest,
            BufferPolicy::DropNewest,
            BufferPolicy::Reject,
        ])?,
        ..ClientConfig::default()
    })
}

struct Harness {
    client: Client,
    now: Instant,
    /// Inbound QoS 2 identifiers handed to the application and not yet released by PUBREL.
    delivered: BTreeSet<u16>,
    /// Identifiers received from the "broker", for the PUBRELs to pick.
    received: Vec<u16>,
}

/// Arbitrary steps against a client with small limits; panics on a violated invariant (see
/// the module documentation).
pub fn client_core(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(config), Ok(seed)) = (config(&mut u), u.arbitrary::<u64>()) else {
        return;
    };
    let mut h = Harness {
        client: Client::new(config, seed),
        now: Instant::now(),
        delivered: BTreeSet::new(),
        received: Vec::new(),
    };
    for _ in 0..MAX_STEPS {
        if u.is_empty() || h.step(&mut u).is_err() {
            break;
        }
    }
}

impl Harness {
    /// Hands `bytes` to the client core in chunks of arbitrary sizes, as a transport would; a
    /// PUBREL ends its message's delivery when the core actually receives it.
    fn feed(&mut self, u: &mut Unstructured, bytes: &[u8]) -> Result<()> {
        let now = self.now;
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = u.int_in_range(1..=rest.len())?;
            let (chunk, tail) = rest.split_at(n);
            let delivered = &mut self.delivered;
            self.client.handle_bytes(now, chunk, |p| {
                if let Packet::PubRel(a) = p {
                    delivered.remove(&a.pkid);
                }
            });
            rest = tail;
        }
        Ok(())
    }

    fn step(&mut self, u: &mut Unstructured) -> Result<()> {
        let now = self.now;
        let v5 = self.client.protocol().is_v5();
        match u.int_in_range(0..=12u8)? {
            0 => self.client.connect(now),
            1 => self.client.handle_transport_up(now),
            2 => {
                let cause = *u.choose(&[
                    DownCause::PeerClosed,
                    DownCause::Io(std::io::ErrorKind::ConnectionReset),
                ])?;
                self.client.handle_transport_down(now, cause);
            }
            3..=6 => {
                let packet = self.packet(u)?;
                let mut bytes = bytes::BytesMut::new();
                if crate::codec::encode(&packet, self.client.protocol(), &mut bytes).is_err() {
                    return Ok(());
                }
                self.feed(u, &bytes)?;
            }
            7 => {
                // A fixed header the framer refuses at once: a reserved packet type, or a
                // remaining length beyond any packet size.
                let bytes: &[u8] =
                    u.choose(&[&[0x00, 0x00][..], &[0x30, 0xff, 0xff, 0xff, 0x7f]])?;
                self.feed(u, bytes)?;
            }
            8 => {
                let step = *u.choose(&[0, 100, 1_000, 2_500, 6_000, 60_000])?;
                self.now += Duration::from_millis(step);
                if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
                    self.client.handle_timeout(self.now);
                }
            }
            9 => {
                let mut properties = Properties::default();
                if v5 && u.ratio(1, 4)? {
                    properties.message_expiry_interval = Some(10);
                }
                let payload = Bytes::from(vec![b'p'; *u.choose(&[0, 1, 8, 200])?]);
                let _ = self.client.publish(
                    now,
                    *u.choose(&TOPICS)?,
                    payload,
                    u.arbitrary()?,
                    u.ratio(1, 4)?,
                    properties,
                );
            }
            10 => {
                let subs = vec![Subscription {
                    filter: (*u.choose(&FILTERS)?).to_owned(),
                    options: SubscriptionOptions {
                        qos: u.arbitrary()?,
                        ..SubscriptionOptions::default()
                    },
                }];
                let _ = self.client.subscribe(now, subs, Properties::default());
            }
            11 => {
                let filters = vec![(*u.choose(&FILTERS)?).to_owned()];
                let _ = self.client.unsubscribe(now, filters, Properties::default());
            }
            _ => {
                let reason =
                    *u.choose(&[ReasonCode::Success, ReasonCode::DisconnectWithWillMessage])?;
                self.client.disconnect(now, reason);
            }
        }
        self.check();
        Ok(())
    }

    fn check(&mut self) {
        let c = &self.client;
        let v5 = c.protocol().is_v5();
        assert!(
            c.outbox.len() <= c.config.max_buffered,
            "outbox over max_buffered"
        );
        assert!(
            c.inflight.publishes() <= usize::from(c.config.max_inflight),
            "publishes in flight over max_inflight"
        );
        assert!(
            c.inflight.len() <= usize::from(c.config.max_inflight),
            "in flight"
        );
        let ids: BTreeSet<_> = c
            .inflight
            .pkids_in_order()
            .iter()
            .map(|p| c.inflight.get(*p).expect("ordered pkid is in flight").id)
            .collect();
        assert_eq!(
            ids.len(),
            c.inflight.len(),
            "a request holds two identifiers"
        );
        while let Some(action) = self.client.poll_action() {
            let ClientAction::Send(packet) = action else {
                continue;
            };
            let held = |pkid: u16| self.client.inflight.get(pkid).map(|e| &e.stage);
            match &packet {
                Packet::Publish(p) if p.qos != QoS::AtMostOnce => assert!(
                    matches!(held(p.pkid), Some(Stage::Publish(_))),
                    "PUBLISH {} not in flight",
                    p.pkid
                ),
                Packet::Subscribe(s) => assert!(
                    matches!(held(s.pkid), Some(Stage::Subscribe(_))),
                    "SUBSCRIBE {} not in flight",
                    s.pkid
                ),
                Packet::Unsubscribe(s) => assert!(
                    matches!(held(s.pkid), Some(Stage::Unsubscribe(_))),
                    "UNSUBSCRIBE {} not in flight",
                    s.pkid
                ),
                // 3.1.1 cannot say "identifier not found": it answers any PUBREC so.
                Packet::PubRel(a) if v5 && a.reason == ReasonCode::Success => assert!(
                    matches!(held(a.pkid), Some(Stage::PubRel)),
                    "PUBREL {} not awaiting PUBCOMP",
                    a.pkid
                ),
                _ => {}
            }
        }
        while let Some(event) = self.client.poll_event() {
            match event {
                ClientEvent::Message(p) if p.qos == QoS::ExactlyOnce => {
                    assert!(
                        self.delivered.insert(p.pkid),
                        "QoS 2 message {} handed over twice before PUBREL",
                        p.pkid
                    );
                }
                ClientEvent::Connected {
                    session_present: false,
                    ..
                } => self.delivered.clear(),
                _ => {}
            }
        }
    }

    /// A packet a broker could send: mostly about the identifiers in use, sometimes any valid
    /// packet.
    fn packet(&mut self, u: &mut Unstructured) -> Result<Packet> {
        let protocol = self.client.protocol();
        let v5 = protocol.is_v5();
        let ours = self.client.inflight.pkids_in_order();
        let pkid = |u: &mut Unstructured, from: &[u16]| -> Result<u16> {
            if !from.is_empty() && u.ratio(3, 4)? {
                Ok(*u.choose(from)?)
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
        let received = self.received.clone();
        let packet = match u.int_in_range(0..=10u8)? {
            0 => {
                let mut properties = Properties::default();
                if v5 {
                    properties.receive_maximum = *u.choose(&[None, Some(1), Some(2)])?;
                    properties.maximum_qos = *u.choose(&[None, Some(0), Some(1)])?;
                    properties.retain_available = *u.choose(&[None, Some(0)])?;
                    properties.topic_alias_maximum = *u.choose(&[None, Some(1)])?;
                    properties.maximum_packet_size = *u.choose(&[None, Some(30)])?;
                    properties.assigned_client_identifier = u.ratio(1, 3)?.then(|| "x".to_owned());
                    properties.server_keep_alive = *u.choose(&[None, Some(0), Some(2)])?;
                }
                Packet::ConnAck(ConnAck {
                    session_present: u.arbitrary()?,
                    reason: if u.ratio(3, 4)? {
                        ReasonCode::Success
                    } else {
                        ReasonCode::NotAuthorized
                    },
                    properties,
                })
            }
            1 | 2 => {
                let qos: QoS = u.arbitrary()?;
                let mut properties = Properties::default();
                let mut topic = (*u.choose(&TOPICS)?).to_owned();
                if v5 && u.ratio(1, 4)? {
                    properties.topic_alias = Some(u.int_in_range(1..=3)?);
                    if u.arbitrary()? {
                        topic.clear();
                    }
                }
                let pkid = if qos == QoS::AtMostOnce {
                    0
                } else {
                    u.int_in_range(1..=4)?
                };
                if pkid != 0 && !self.received.contains(&pkid) {
                    self.received.push(pkid);
                }
                Packet::Publish(Publish {
                    dup: qos != QoS::AtMostOnce && u.arbitrary()?,
                    qos,
                    retain: u.arbitrary()?,
                    topic,
                    pkid,
                    properties,
                    payload: Bytes::from_static(b"m"),
                })
            }
            3 => Packet::PubAck(ack(pkid(u, &ours)?, code(u)?)),
            4 => Packet::PubRec(ack(pkid(u, &ours)?, code(u)?)),
            5 => Packet::PubRel(Ack::new(pkid(u, &received)?)),
            6 => Packet::PubComp(Ack::new(pkid(u, &ours)?)),
            7 => {
                let n = u.int_in_range(0..=2)?;
                let mut reasons = Vec::with_capacity(n);
                for _ in 0..n {
                    reasons.push(*u.choose(&[
                        ReasonCode::Success,
                        ReasonCode::GrantedQoS1,
                        ReasonCode::UnspecifiedError,
                    ])?);
                }
                Packet::SubAck(SubAck {
                    pkid: pkid(u, &ours)?,
                    reasons,
                    properties: Properties::default(),
                })
            }
            8 => Packet::UnsubAck(UnsubAck {
                pkid: pkid(u, &ours)?,
                reasons: if v5 {
                    vec![ReasonCode::Success]
                } else {
                    Vec::new()
                },
                properties: Properties::default(),
            }),
            9 => {
                if u.arbitrary()? {
                    Packet::PingResp
                } else {
                    Packet::Disconnect(Disconnect {
                        reason: code(u)?,
                        properties: Properties::default(),
                    })
                }
            }
            _ => valid_packet(u, protocol)?,
        };
        Ok(packet)
    }
}

fn ack(pkid: u16, reason: ReasonCode) -> Ack {
    Ack {
        pkid,
        reason,
        properties: Properties::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry point accepts the empty input and arbitrary short inputs.
    #[test]
    fn runs_on_simple_inputs() {
        client_core(&[]);
        client_core(&[0; 64]);
        let data: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        client_core(&data);
    }
}
