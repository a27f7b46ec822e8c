//! Building the [`Model`] from the trace: one event at a time, in trace order.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{Attempt, ClientLog, Del, End, Epoch, FaultSpan, Model, Pos, Pub, SubEv, SubKind};
use crate::check::access::Rules;
use crate::trace::{AckPacket, Event, Fault, Persistence, SubOptions, Trace, TraceEvent};

impl<'t> Model<'t> {
    pub fn new(trace: &'t Trace) -> Model<'t> {
        let mut m = Model {
            trace,
            v5: false,
            persistence: Persistence::Durable,
            max_queued: None,
            settle: None,
            end: None,
            pubs: Vec::new(),
            dels: Vec::new(),
            clients: BTreeMap::new(),
            faults: Vec::new(),
            broker_crashes: Vec::new(),
            pubs_by_label: BTreeMap::new(),
            dels_by_label: BTreeMap::new(),
            overflow: RefCell::new(BTreeMap::new()),
            auth: Rules::of(trace).and_then(Result::ok),
            users: BTreeMap::new(),
            processes: trace
                .events
                .iter()
                .filter_map(|e| Some((e.process.as_deref()?, e.event.client()?)))
                .collect(),
            process_at: trace.events.iter().map(TraceEvent::process).collect(),
        };
        for (pos, e) in trace.events.iter().enumerate() {
            if let (Some(c), Some(p)) = (e.event.client(), e.process()) {
                let log = m.client(c);
                if log.last_process.is_some_and(|last| last != p) {
                    log.gone.push(pos);
                }
                log.last_process = Some(p);
            }
            m.record(pos, &e.event, e.process().unwrap_or_default());
        }
        if let Some(auth) = &m.auth {
            m.users = m
                .clients
                .iter()
                .map(|(&client, log)| {
                    let user = log
                        .attempts
                        .iter()
                        .filter(|a| a.connected.is_some())
                        .find_map(|a| auth.authenticate(a.username, a.password).ok())
                        .flatten();
                    (client, user)
                })
                .collect();
        }
        m
    }

    fn client(&mut self, c: &'t str) -> &mut ClientLog<'t> {
        self.clients.entry(c).or_default()
    }

    /// The connection of process `process` of client `c` ends (if open), and its unanswered
    /// CONNECT fails.
    fn end_epoch(&mut self, c: &'t str, process: &str, pos: Pos, end: End) {
        let log = self.client(c);
        if let Some(e) = log
            .epochs
            .iter_mut()
            .rev()
            .find(|e| e.process == process)
            .filter(|e| e.end.is_none())
        {
            e.end = Some((pos, end));
        }
        if let Some(a) = log
            .attempts
            .iter_mut()
            .rev()
            .find(|a| a.process == process)
            .filter(|a| a.connected.is_none())
        {
            a.failed.get_or_insert(pos);
        }
    }

    /// A fault names a node: its client identifier and process.
    fn node(&self, node: &'t str) -> (&'t str, &'t str) {
        (self.processes.get(node).copied().unwrap_or(node), node)
    }

    fn record(&mut self, pos: Pos, e: &'t Event, process: &'t str) {
        match e {
            Event::RunStarted {
                protocol,
                persistence,
                max_queued_messages,
                ..
            } => {
                self.v5 = protocol.starts_with('5');
                self.persistence = *persistence;
                self.max_queued = *max_queued_messages;
            }
            Event::SettleStarted => self.settle = Some(pos),
            Event::AuthConfigured { .. }
            | Event::FaultTookEffect { .. }
            | Event::Unsubscribed { .. }
            | Event::PublishReceived { .. }
            | Event::AckSent { .. }
            | Event::Figure { .. } => {}
            Event::PublishSent { .. } | Event::AckReceived { .. } => self.exchange(pos, e),
            Event::RunEnded => self.end = Some(pos),
            Event::FaultApplied { fault } => self.fault_applied(pos, fault),
            Event::FaultHealed { fault } => self.fault_healed(pos, fault),
            Event::Connecting { .. }
            | Event::Connected { .. }
            | Event::ConnectFailed { .. }
            | Event::ConnectionLost { .. }
            | Event::DisconnectSent { .. } => self.connection(pos, e, process),
            Event::SubscribeRequested { .. }
            | Event::SubscribeGranted { .. }
            | Event::UnsubscribeRequested { .. } => self.subscription(pos, e),
            Event::PublishRequested { .. }
            | Event::PublishAcked { .. }
            | Event::PublishLost { .. }
            | Event::Delivered { .. } => self.message(pos, e),
        }
    }

    /// A fault applied: it may end connections, and a crash or power-off ends a client's
    /// process.
    fn fault_applied(&mut self, pos: Pos, fault: &'t Fault) {
        let end = fault.is_instant().then_some(pos);
        self.faults.push(FaultSpan {
            fault,
            start: pos,
            end,
        });
        match fault {
            Fault::Cut { client } => {
                let (c, p) = self.node(client);
                self.end_epoch(c, p, pos, End::Cut)
            }
            Fault::ClientCrash { client } | Fault::ClientPowerOff { client } => {
                let (c, p) = self.node(client);
                self.end_epoch(c, p, pos, End::ClientGone);
                self.client(c).gone.push(pos);
            }
            Fault::BrokerCrash => {
                self.broker_crashes.push(pos);
                let names: Vec<&'t str> = self.clients.keys().copied().collect();
                for c in names {
                    let open: Vec<&'t str> = self.clients[c]
                        .epochs
                        .iter()
                        .filter(|e| e.end.is_none())
                        .map(|e| e.process)
                        .chain(
                            self.clients[c]
                                .attempts
                                .iter()
                                .filter(|a| a.connected.is_none() && a.failed.is_none())
                                .map(|a| a.process),
                        )
                        .collect();
                    for p in open {
                        self.end_epoch(c, p, pos, End::BrokerCrash);
                    }
                }
            }
            _ => {}
        }
    }

    /// A fault healed: it ends the latest open span of the same fault.
    fn fault_healed(&mut self, pos: Pos, fault: &'t Fault) {
        if let Some(span) = self
            .faults
            .iter_mut()
            .rev()
            .find(|s| s.end.is_none() && s.fault == fault)
        {
            span.end = Some(pos);
        }
    }

    /// A client's connect attempts and the ends of its connections. A connection of one
    /// process ends when another process of the same client identifier connects (takeover).
    fn connection(&mut self, pos: Pos, e: &'t Event, process: &'t str) {
        match e {
            Event::Connecting {
                client,
                protocol,
                clean_start,
                keep_alive_s,
                session_expiry_s,
                will,
                username,
                password,
                ..
            } => {
                self.client(client).attempts.push(Attempt {
                    process,
                    username: username.as_deref(),
                    password: password.as_deref(),
                    pos,
                    v5: protocol
                        .as_deref()
                        .map_or(session_expiry_s.is_some(), |p| p.starts_with('5')),
                    clean_start: *clean_start,
                    keep_alive_s: *keep_alive_s,
                    session_expiry_s: *session_expiry_s,
                    will: will.as_ref(),
                    connected: None,
                    failed: None,
                });
            }
            Event::Connected {
                client,
                session_present,
                ..
            } => {
                let log = self.client(client);
                let Some(attempt) = log.attempts.iter().rposition(|a| a.process == process) else {
                    return;
                };
                log.attempts[attempt].connected = Some(pos);
                for e in log
                    .epochs
                    .iter_mut()
                    .filter(|e| e.end.is_none() && e.process != process)
                {
                    e.end = Some((pos, End::TakenOver));
                }
                if !*session_present {
                    // A new session on the broker: no identifier of an older one is held.
                    log.held_ids.clear();
                }
                let chain = log.epochs.last().map_or(0, |e| e.chain);
                let chain = if *session_present { chain } else { chain + 1 };
                log.epochs.push(Epoch {
                    attempt,
                    process,
                    start: pos,
                    session_present: *session_present,
                    chain,
                    end: None,
                });
            }
            Event::ConnectFailed { client, .. } => {
                if let Some(a) = self
                    .client(client)
                    .attempts
                    .iter_mut()
                    .rev()
                    .find(|a| a.process == process)
                {
                    a.failed.get_or_insert(pos);
                }
            }
            Event::ConnectionLost { client, cause, .. } => {
                self.end_epoch(client, process, pos, End::Lost(*cause))
            }
            Event::DisconnectSent {
                client, with_will, ..
            } => self.end_epoch(
                client,
                process,
                pos,
                End::Disconnect {
                    with_will: *with_will,
                },
            ),
            _ => {}
        }
    }

    /// A client's SUBSCRIBE and UNSUBSCRIBE requests and the broker's grants.
    fn subscription(&mut self, pos: Pos, e: &'t Event) {
        match e {
            Event::SubscribeRequested {
                client,
                filter,
                qos,
                options,
            } => self.client(client).subs.push(SubEv {
                pos,
                filter,
                kind: SubKind::Requested(*qos),
                options: *options,
            }),
            Event::SubscribeGranted {
                client,
                filter,
                granted,
                ..
            } => self.client(client).subs.push(SubEv {
                pos,
                filter,
                kind: SubKind::Granted(*granted),
                options: SubOptions::default(),
            }),
            Event::UnsubscribeRequested { client, filter } => {
                self.client(client).subs.push(SubEv {
                    pos,
                    filter,
                    kind: SubKind::UnsubRequested,
                    options: SubOptions::default(),
                })
            }
            _ => {}
        }
    }

    /// Publish requests, their acknowledgements and losses, and deliveries.
    fn message(&mut self, pos: Pos, e: &'t Event) {
        match e {
            Event::PublishRequested {
                client,
                topic,
                qos,
                retain,
                payload,
                size,
                message_expiry_s,
                properties,
            } => {
                self.client(client);
                self.pubs_by_label
                    .entry(payload)
                    .or_default()
                    .push(self.pubs.len());
                self.pubs.push(Pub {
                    pos,
                    client,
                    topic,
                    qos: *qos,
                    retain: *retain,
                    label: payload,
                    size: *size,
                    expiry_s: *message_expiry_s,
                    props: properties,
                    acked: None,
                    lost: None,
                    shadowed: None,
                });
            }
            Event::PublishAcked { client, payload } => {
                if let Some(p) = self.open_pub(client, payload)
                    && self.pubs[p].shadowed.is_none()
                {
                    self.pubs[p].acked = Some(pos);
                }
            }
            Event::PublishLost { client, payload } => {
                if let Some(p) = self.open_pub(client, payload) {
                    self.pubs[p].lost = Some(pos);
                }
            }
            Event::Delivered {
                client,
                topic,
                qos,
                retain,
                dup,
                packet_id: pkid,
                payload,
                message_expiry_s,
                properties,
                subscription_ids,
                ..
            } => {
                self.client(client);
                self.dels_by_label
                    .entry(payload)
                    .or_default()
                    .push(self.dels.len());
                self.dels.push(Del {
                    pos,
                    client,
                    topic,
                    qos: *qos,
                    retain: *retain,
                    dup: *dup,
                    pkid: *pkid,
                    label: payload,
                    expiry_s: *message_expiry_s,
                    props: properties,
                    ids: subscription_ids,
                });
            }
            _ => {}
        }
    }

    /// Outbound QoS 2 exchanges of a client's session: which packet identifiers the broker may
    /// still hold, and which requests reused one ([`Pub::shadowed`]).
    fn exchange(&mut self, pos: Pos, e: &'t Event) {
        match e {
            Event::PublishSent {
                client,
                payload,
                packet_id,
                qos: 2,
                ..
            } => {
                let log = self.client(client);
                let earlier = *log.held_ids.entry(*packet_id).or_insert(payload);
                if earlier != payload.as_str()
                    && let Some(p) = self.open_pub(client, payload)
                {
                    self.pubs[p].shadowed.get_or_insert(pos);
                }
            }
            Event::AckReceived {
                client,
                packet,
                packet_id,
                reason,
                ..
            } if matches!(packet, AckPacket::Pubcomp | AckPacket::Pubrec)
                && packet.ends_exchange(*reason) =>
            {
                self.client(client).held_ids.remove(packet_id);
            }
            _ => {}
        }
    }

    /// The oldest request of `client` with `label` that is neither acknowledged nor lost.
    fn open_pub(&self, client: &str, label: &str) -> Option<usize> {
        self.pubs_by_label.get(label)?.iter().copied().find(|&i| {
            let p = &self.pubs[i];
            p.client == client && p.acked.is_none() && p.lost.is_none()
        })
    }
}
