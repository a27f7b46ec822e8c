//! The trace recorder: one shared [`Trace`] that the supervisor and every node append to, with
//! virtual timestamps (microseconds since the run started), and the per-process view of one
//! client ([`ClientRecorder`]) that turns the packets it sends and receives and the events its
//! core hands out into trace events, as `crate::trace::event` documents them.
//!
//! Sources, per event: `connecting`, `disconnect_sent`, `subscribe_requested`,
//! `subscribe_granted`, `unsubscribe_requested` and `unsubscribed` come from the client's packet
//! observer (what crossed the wire), and so does the Session Present flag of every CONNACK;
//! `connected`, `connect_failed`, `connection_lost`, `publish_acked`, `publish_lost`,
//! `delivered` and `duplicate_received` from the core's events as the application reads them;
//! `publish_requested` from the application just before it asks. Nothing here reads a wall
//! clock or iterates an unordered collection.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::names::Names;
use crate::client::{ClientEvent, DownCause, RequestId};
use crate::codec::reason::{connack_v3_return_code, suback_v3_return_code};
use crate::codec::{
    Ack, Connect, Packet, Properties, QoS, ReasonCode, RetainHandling, SubAck, Subscribe,
};
use crate::net::client::Wire;
use crate::trace::{
    AckPacket, Event, LossCause, MessageProps, SubOptions, Trace, WillSpec, payload,
};

/// Locks a mutex even if a panicking task poisoned it (the trace stays readable after a crash).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sleeps until `deadline`; returns at once if it has come (the simulator's sleeps otherwise
/// last at least a millisecond, which would shift every step planned for "now").
pub async fn sleep_to(deadline: Instant) {
    if Instant::now() < deadline {
        crate::net::clock::sleep_until(deadline).await;
    }
}

/// [`sleep_to`], or forever without a deadline.
pub async fn sleep_to_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_to(d).await,
        None => std::future::pending().await,
    }
}

/// The run's trace and its time origin. Cheap to clone; all clones append to one trace.
#[derive(Clone)]
pub struct Recorder {
    trace: Arc<Mutex<Trace>>,
    start: Instant,
    /// The triggers waiting for trace events, if the run has any.
    watch: Option<Arc<Mutex<Watch>>>,
}

/// Triggers of faults fired by trace events, each waiting for its n-th matching event; when it
/// comes, the trigger's index is sent to the supervisor, once.
pub struct Watch {
    /// Per trigger: what it waits for, and how many matching events are still to come.
    waiting: Vec<(crate::scenario::Trigger, u32)>,
    fired: tokio::sync::mpsc::UnboundedSender<usize>,
}

impl Watch {
    pub fn new(
        triggers: Vec<crate::scenario::Trigger>,
        fired: tokio::sync::mpsc::UnboundedSender<usize>,
    ) -> Watch {
        let waiting = triggers.into_iter().map(|t| (t.clone(), t.nth)).collect();
        Watch { waiting, fired }
    }

    /// `event` was recorded: counts it for every trigger it matches.
    fn saw(&mut self, event: &Event) {
        let Ok(json) = serde_json::to_value(event) else {
            return;
        };
        for (i, (trigger, left)) in self.waiting.iter_mut().enumerate() {
            if *left > 0 && trigger.matches(&json) {
                *left -= 1;
                if *left == 0 {
                    let _ = self.fired.send(i);
                }
            }
        }
    }
}

impl Recorder {
    pub fn new(trace: Arc<Mutex<Trace>>, start: Instant) -> Recorder {
        Recorder {
            trace,
            start,
            watch: None,
        }
    }

    /// A recorder that also hands every event to `watch`.
    pub fn watched(trace: Arc<Mutex<Trace>>, start: Instant, watch: Watch) -> Recorder {
        Recorder {
            trace,
            start,
            watch: Some(Arc::new(Mutex::new(watch))),
        }
    }

    /// Appends `event` at the current virtual time.
    pub fn push(&self, event: Event) {
        self.push_from(event, None);
    }

    /// Appends a client's `event` at the current virtual time, recorded by `process` (`None`
    /// or the event's client identifier: not written).
    pub fn push_from(&self, event: Event, process: Option<&str>) {
        let at_us = u64::try_from(Instant::now().duration_since(self.start).as_micros())
            .unwrap_or(u64::MAX);
        if let Some(watch) = &self.watch {
            lock(watch).saw(&event);
        }
        lock(&self.trace).push_from(at_us, event, process.map(str::to_string));
    }
}

/// Where this process's current connection attempt stands, as the trace has told it so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttemptState {
    /// No CONNECT outstanding and no connection.
    Idle,
    /// CONNECT sent, no CONNACK yet.
    Connecting,
    /// CONNACK accepted.
    Connected,
}

struct State {
    attempt: AttemptState,
    subscribes: BTreeMap<u16, Vec<String>>,
    unsubscribes: BTreeMap<u16, Vec<String>>,
    /// Publish requests of this process awaiting their outcome: request id → payload label.
    publishes: BTreeMap<RequestId, String>,
    /// The Session Expiry Interval of the last CONNECT (5.0).
    session_expiry_s: Option<u32>,
    clean_start: bool,
    /// Labels of this client's QoS 1/2 publishes by packet identifier, until completed.
    sent_ids: BTreeMap<u16, String>,
    /// Labels of the QoS 1/2 publishes the broker sent this client, until completed.
    received_ids: BTreeMap<u16, String>,
    /// The last CONNECT was MQTT 5.0 (codes are recorded as that version puts them on the wire).
    v5: bool,
    /// The Session Present flag of the CONNACK received for the last CONNECT, if one came.
    connack_session_present: Option<bool>,
}

/// The trace view of one client process. A restarted process gets a fresh one: what the old
/// one knew died with it.
pub struct ClientRecorder {
    /// The MQTT client identifier, every event's `client`.
    client: String,
    /// The process (node) name, written as `process` when it differs from `client`.
    process: String,
    /// Taken off the names the client used on the wire.
    names: Names,
    rec: Recorder,
    state: Mutex<State>,
}

impl ClientRecorder {
    /// The recorder of process `process`, whose CONNECTs carry client identifier `client`.
    /// `names` says how its names are written on the wire.
    pub fn new(client: &str, process: &str, names: Names, rec: Recorder) -> ClientRecorder {
        ClientRecorder {
            client: client.to_string(),
            process: process.to_string(),
            names,
            rec,
            state: Mutex::new(State {
                attempt: AttemptState::Idle,
                subscribes: BTreeMap::new(),
                unsubscribes: BTreeMap::new(),
                publishes: BTreeMap::new(),
                sent_ids: BTreeMap::new(),
                received_ids: BTreeMap::new(),
                session_expiry_s: None,
                clean_start: true,
                v5: false,
                connack_session_present: None,
            }),
        }
    }

    fn push(&self, event: Event) {
        self.rec.push_from(event, Some(&self.process));
    }

    fn client(&self) -> String {
        self.client.clone()
    }

    /// A packet crossed this client's connection.
    pub fn observe(&self, wire: Wire<'_>) {
        let mut st = lock(&self.state);
        match wire {
            Wire::Sent(Packet::Connect(c)) => self.connect_sent(&mut st, c),
            Wire::Sent(Packet::Disconnect(d)) => {
                // Any other reason is the client closing on a broker's protocol error: the loss
                // is reported by the core as such.
                let with_will = match d.reason {
                    ReasonCode::Success => false,
                    ReasonCode::DisconnectWithWillMessage => true,
                    _ => return,
                };
                if st.attempt == AttemptState::Connected {
                    st.attempt = AttemptState::Idle;
                    self.push(Event::DisconnectSent {
                        client: self.client(),
                        with_will,
                        session_expiry_s: d.properties.session_expiry_interval,
                    });
                }
            }
            Wire::Sent(Packet::Subscribe(s)) => self.subscribe_sent(&mut st, s),
            Wire::Received(Packet::SubAck(a)) => self.suback_received(&mut st, a),
            Wire::Received(Packet::ConnAck(a)) => {
                st.connack_session_present = Some(a.session_present);
            }
            Wire::Sent(Packet::Unsubscribe(u)) => {
                let filters: Vec<String> = u
                    .filters
                    .iter()
                    .map(|f| self.names.trace_filter(f))
                    .collect();
                for f in &filters {
                    self.push(Event::UnsubscribeRequested {
                        client: self.client(),
                        filter: f.clone(),
                    });
                }
                st.unsubscribes.insert(u.pkid, filters);
            }
            Wire::Received(Packet::UnsubAck(a)) => {
                let Some(filters) = st.unsubscribes.remove(&a.pkid) else {
                    return;
                };
                for filter in filters {
                    self.push(Event::Unsubscribed {
                        client: self.client(),
                        filter,
                    });
                }
            }
            Wire::Sent(Packet::Publish(p)) if p.pkid != 0 => {
                let payload = payload::label(&p.payload);
                st.sent_ids.insert(p.pkid, payload.clone());
                self.push(Event::PublishSent {
                    client: self.client(),
                    payload,
                    packet_id: p.pkid,
                    qos: p.qos.as_u8(),
                    dup: p.dup,
                });
            }
            Wire::Received(Packet::Publish(p)) if p.pkid != 0 => {
                let payload = payload::label(&p.payload);
                st.received_ids.insert(p.pkid, payload.clone());
                self.push(Event::PublishReceived {
                    client: self.client(),
                    payload,
                    packet_id: p.pkid,
                    qos: p.qos.as_u8(),
                    dup: p.dup,
                });
            }
            Wire::Sent(packet) => self.ack_seen(&mut st, packet, true),
            Wire::Received(packet) => self.ack_seen(&mut st, packet, false),
        }
    }

    /// An acknowledgement `sent` by this client or received by it, if `packet` is one. The
    /// client acknowledges the broker's publishes (PUBACK, PUBREC, PUBCOMP) and releases its
    /// own (PUBREL); the broker the other way round.
    fn ack_seen(&self, st: &mut State, packet: &Packet, sent: bool) {
        let Some((packet, ack)) = ack_of(packet) else {
            return;
        };
        let ours = (packet == AckPacket::Pubrel) == sent;
        let ids = if ours {
            &mut st.sent_ids
        } else {
            &mut st.received_ids
        };
        let reason = (ack.reason != ReasonCode::Success).then(|| ack.reason.as_u8());
        let payload = if packet.ends_exchange(reason) {
            ids.remove(&ack.pkid)
        } else {
            ids.get(&ack.pkid).cloned()
        };
        let (client, packet_id) = (self.client(), ack.pkid);
        self.push(if sent {
            Event::AckSent {
                client,
                packet,
                packet_id,
                payload,
                reason,
            }
        } else {
            Event::AckReceived {
                client,
                packet,
                packet_id,
                payload,
                reason,
            }
        });
    }

    /// A CONNECT sent: a new connection attempt.
    fn connect_sent(&self, st: &mut State, c: &Connect) {
        let session_expiry_s = c
            .protocol
            .is_v5()
            .then(|| c.properties.session_expiry_interval.unwrap_or(0));
        st.attempt = AttemptState::Connecting;
        st.session_expiry_s = session_expiry_s;
        st.clean_start = c.clean_start;
        st.v5 = c.protocol.is_v5();
        st.connack_session_present = None;
        self.push(Event::Connecting {
            client: self.client(),
            protocol: Some(if c.protocol.is_v5() { "5.0" } else { "3.1.1" }.into()),
            clean_start: c.clean_start,
            keep_alive_s: c.keep_alive,
            session_expiry_s,
            will: c.will.as_ref().map(|w| WillSpec {
                topic: self.names.trace_topic(&w.topic).to_string(),
                qos: w.qos.as_u8(),
                retain: w.retain,
                payload: payload::label(&w.payload),
                delay_s: w.properties.will_delay_interval.unwrap_or(0),
            }),
            username: c.username.clone(),
            password: c
                .password
                .as_ref()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            receive_maximum: c.properties.receive_maximum,
        });
    }

    /// A SUBSCRIBE sent: one request per filter, answered by its SUBACK.
    fn subscribe_sent(&self, st: &mut State, s: &Subscribe) {
        let filters: Vec<String> = s
            .filters
            .iter()
            .map(|f| self.names.trace_filter(&f.filter))
            .collect();
        let id = s.properties.subscription_identifiers.first().copied();
        for (f, filter) in s.filters.iter().zip(&filters) {
            self.push(Event::SubscribeRequested {
                client: self.client(),
                filter: filter.clone(),
                qos: f.options.qos.as_u8(),
                options: SubOptions {
                    no_local: f.options.no_local,
                    retain_as_published: f.options.retain_as_published,
                    retain_handling: match f.options.retain_handling {
                        RetainHandling::SendAtSubscribe => 0,
                        RetainHandling::SendIfNew => 1,
                        RetainHandling::DoNotSend => 2,
                    },
                    id,
                },
            });
        }
        st.subscribes.insert(s.pkid, filters);
    }

    /// A SUBACK received: the answer for each filter of its SUBSCRIBE.
    fn suback_received(&self, st: &mut State, a: &SubAck) {
        let Some(filters) = st.subscribes.remove(&a.pkid) else {
            return;
        };
        for (filter, reason) in filters.into_iter().zip(&a.reasons) {
            let granted = match reason {
                ReasonCode::Success => Some(0),
                ReasonCode::GrantedQoS1 => Some(1),
                ReasonCode::GrantedQoS2 => Some(2),
                _ => None,
            };
            let code = granted.is_none().then(|| {
                if st.v5 {
                    reason.as_u8()
                } else {
                    suback_v3_return_code(*reason)
                }
            });
            self.push(Event::SubscribeGranted {
                client: self.client(),
                filter,
                granted,
                code,
            });
        }
    }

    /// The application is about to ask for this publish, with these 5.0 properties.
    pub fn publish_requested(
        &self,
        topic: &str,
        qos: u8,
        retain: bool,
        label: &str,
        size: usize,
        properties: &Properties,
    ) {
        self.push(Event::PublishRequested {
            client: self.client(),
            topic: topic.to_string(),
            qos,
            retain,
            payload: label.to_string(),
            size: u32::try_from(size).unwrap_or(u32::MAX),
            message_expiry_s: properties.message_expiry_interval,
            properties: message_props(properties),
        });
    }

    /// The core accepted the publish labelled `label` as request `id`.
    pub fn publish_accepted(&self, id: RequestId, label: &str) {
        lock(&self.state).publishes.insert(id, label.to_string());
    }

    /// The core refused the publish labelled `label` at once: it will never be confirmed.
    pub fn publish_refused(&self, label: &str) {
        self.push(Event::PublishLost {
            client: self.client(),
            payload: label.to_string(),
        });
    }

    /// The application read `event` from the core.
    pub fn event(&self, event: &ClientEvent) {
        let mut st = lock(&self.state);
        match event {
            ClientEvent::Connected {
                session_present,
                properties,
                ..
            } => {
                st.attempt = AttemptState::Connected;
                let session_expiry_s = st
                    .session_expiry_s
                    .map(|asked| properties.session_expiry_interval.unwrap_or(asked));
                self.push(Event::Connected {
                    client: self.client(),
                    clean_start: st.clean_start,
                    session_present: *session_present,
                    session_expiry_s,
                    receive_maximum: properties.receive_maximum,
                    shared_subscription_available: properties
                        .shared_subscription_available
                        .map(|available| available != 0),
                });
            }
            ClientEvent::ConnectionLost { cause } => {
                match st.attempt {
                    AttemptState::Idle => {}
                    AttemptState::Connecting => self.push(Event::ConnectFailed {
                        client: self.client(),
                        reason: cause.to_string(),
                        code: match cause {
                            DownCause::Refused(r) if st.v5 => Some(r.as_u8()),
                            DownCause::Refused(r) => Some(connack_v3_return_code(*r)),
                            _ => None,
                        },
                        session_present: st.connack_session_present,
                        protocol_error: match cause {
                            DownCause::ProtocolError(r) => Some(*r as u8),
                            _ => None,
                        },
                    }),
                    AttemptState::Connected => self.push(Event::ConnectionLost {
                        client: self.client(),
                        cause: loss_cause(*cause),
                        reason: match cause {
                            DownCause::ProtocolError(r) | DownCause::ServerDisconnect(r) => {
                                Some(*r as u8)
                            }
                            _ => None,
                        },
                    }),
                }
                st.attempt = AttemptState::Idle;
            }
            ClientEvent::Message(p) if is_figure(p) => self.push(Event::Figure {
                client: self.client(),
                topic: self.names.trace_topic(&p.topic).to_string(),
                value: payload::text_or_hex(&p.payload),
                retain: p.retain,
            }),
            ClientEvent::Message(p) => self.push(Event::Delivered {
                client: self.client(),
                topic: self.names.trace_topic(&p.topic).to_string(),
                qos: p.qos.as_u8(),
                retain: p.retain,
                dup: p.dup,
                packet_id: (p.qos != QoS::AtMostOnce).then_some(p.pkid),
                payload: payload::label(&p.payload),
                size: u32::try_from(p.payload.len()).unwrap_or(u32::MAX),
                message_expiry_s: p.properties.message_expiry_interval,
                properties: message_props(&p.properties),
                subscription_ids: p.properties.subscription_identifiers.clone(),
            }),
            ClientEvent::PublishSent { id } => {
                st.publishes.remove(id);
            }
            ClientEvent::PublishAcked { id, reason } => {
                if let Some(label) = st.publishes.remove(id) {
                    let client = self.client();
                    self.push(if reason.is_error() {
                        Event::PublishLost {
                            client,
                            payload: label,
                        }
                    } else {
                        Event::PublishAcked {
                            client,
                            payload: label,
                        }
                    });
                }
            }
            ClientEvent::PublishLost { id, .. } => {
                if let Some(label) = st.publishes.remove(id) {
                    self.push(Event::PublishLost {
                        client: self.client(),
                        payload: label,
                    });
                }
            }
            ClientEvent::Reconnecting { .. }
            | ClientEvent::Subscribed { .. }
            | ClientEvent::Unsubscribed { .. }
            | ClientEvent::Disconnected => {}
        }
    }
}

/// Whether a message is one of the broker's figures (`Event::Figure`): QoS 0, on a
/// `$SYS/broker/...` topic, with a payload that is no label of a workload or a will.
fn is_figure(p: &crate::codec::Publish) -> bool {
    p.qos == QoS::AtMostOnce
        && p.topic.starts_with("$SYS/broker/")
        && payload::parse_label(&payload::label(&p.payload)).is_none()
}

/// The acknowledgement a packet is, if it is one.
fn ack_of(packet: &Packet) -> Option<(AckPacket, &Ack)> {
    match packet {
        Packet::PubAck(a) => Some((AckPacket::Puback, a)),
        Packet::PubRec(a) => Some((AckPacket::Pubrec, a)),
        Packet::PubRel(a) => Some((AckPacket::Pubrel, a)),
        Packet::PubComp(a) => Some((AckPacket::Pubcomp, a)),
        _ => None,
    }
}

/// The application properties of a PUBLISH as the trace records them.
fn message_props(p: &Properties) -> MessageProps {
    MessageProps {
        payload_format: p.payload_format_indicator,
        content_type: p.content_type.clone(),
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.as_deref().map(payload::text_or_hex),
        user_properties: p.user_properties.clone(),
    }
}

fn loss_cause(cause: DownCause) -> LossCause {
    match cause {
        DownCause::KeepAliveTimeout => LossCause::KeepAliveTimeout,
        DownCause::ServerDisconnect(_) => LossCause::ServerDisconnect,
        DownCause::ProtocolError(_) => LossCause::ProtocolError,
        DownCause::PeerClosed
        | DownCause::Io(_)
        | DownCause::ConnectTimeout
        | DownCause::Refused(_) => LossCause::Closed,
    }
}
