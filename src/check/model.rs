//! The checkers' own model of a run, rebuilt from the trace alone: publish requests with their
//! acknowledgements, deliveries, each client's connect attempts, connections ("epochs") and
//! session chains, subscriptions, faults and broker crashes. Plus the entitlement rule that
//! the delivery, will and retained checkers share (see the README).
//!
//! Positions (`Pos`) are indices into the trace; "before" and "after" are decided by position,
//! durations by `at_us`. Nothing here judges; the checkers do.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::topic;
use crate::trace::{
    Event, Fault, LossCause, MessageProps, Persistence, SubOptions, Trace, WillSpec,
};

/// An index into the trace.
pub type Pos = usize;

/// One publish request.
#[derive(Debug)]
pub struct Pub<'t> {
    pub pos: Pos,
    pub client: &'t str,
    pub topic: &'t str,
    pub qos: u8,
    pub retain: bool,
    pub label: &'t str,
    pub size: u32,
    /// The 5.0 message expiry interval, in seconds.
    pub expiry_s: Option<u32>,
    /// The 5.0 application properties sent with it.
    pub props: &'t MessageProps,
    pub acked: Option<Pos>,
    pub lost: Option<Pos>,
}

/// One delivery to the application.
#[derive(Debug)]
pub struct Del<'t> {
    pub pos: Pos,
    pub client: &'t str,
    pub topic: &'t str,
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    pub label: &'t str,
    /// The 5.0 application properties it carried.
    pub props: &'t MessageProps,
    /// The subscription identifiers it carried.
    pub ids: &'t [u32],
}

/// One CONNECT sent.
#[derive(Debug)]
pub struct Attempt<'t> {
    pub pos: Pos,
    pub clean_start: bool,
    pub keep_alive_s: u16,
    pub session_expiry_s: Option<u32>,
    pub will: Option<&'t WillSpec>,
    /// The user name and password sent.
    pub username: Option<&'t str>,
    pub password: Option<&'t str>,
    /// Where it was answered by a successful CONNACK (`connected`).
    pub connected: Option<Pos>,
    /// Where it failed (`connect_failed`), or was overtaken by the client going away.
    pub failed: Option<Pos>,
}

/// How an established connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Disconnect {
        with_will: bool,
    },
    Lost(LossCause),
    /// A cut fault on the connection.
    Cut,
    /// Client crash or power-off.
    ClientGone,
    BrokerCrash,
}

/// One established connection, from `connected` to its end.
#[derive(Debug)]
pub struct Epoch {
    pub attempt: usize,
    pub start: Pos,
    pub session_present: bool,
    /// Session chain number: grows at every `connected` with `session_present = false`.
    pub chain: usize,
    pub end: Option<(Pos, End)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubKind {
    Requested(u8),
    Granted(Option<u8>),
    UnsubRequested,
}

#[derive(Debug)]
pub struct SubEv<'t> {
    pub pos: Pos,
    pub filter: &'t str,
    pub kind: SubKind,
    /// The 5.0 options of a `Requested` event (defaults for the others).
    pub options: SubOptions,
}

/// Everything one client did.
#[derive(Debug, Default)]
pub struct ClientLog<'t> {
    pub attempts: Vec<Attempt<'t>>,
    pub epochs: Vec<Epoch>,
    pub subs: Vec<SubEv<'t>>,
    /// Crash and power-off positions (the process and its memory were lost).
    pub gone: Vec<Pos>,
}

/// A fault from applied to healed (`end` = `None`: still applied at the end; instant faults
/// end where they start).
#[derive(Debug)]
pub struct FaultSpan<'t> {
    pub fault: &'t Fault,
    pub start: Pos,
    pub end: Option<Pos>,
}

/// A subscription that covers a topic, as used by entitlement.
#[derive(Debug, Clone, Copy)]
pub struct Held<'t> {
    pub filter: &'t str,
    pub granted_at: Pos,
    /// min(message QoS, every grant of the filter from `granted_at` on).
    pub qos: u8,
}

pub struct Model<'t> {
    pub trace: &'t Trace,
    pub v5: bool,
    pub persistence: Persistence,
    pub max_queued: Option<u64>,
    pub settle: Option<Pos>,
    pub end: Option<Pos>,
    pub pubs: Vec<Pub<'t>>,
    pub dels: Vec<Del<'t>>,
    pub clients: BTreeMap<&'t str, ClientLog<'t>>,
    pub faults: Vec<FaultSpan<'t>>,
    pub broker_crashes: Vec<Pos>,
    pubs_by_label: BTreeMap<&'t str, Vec<usize>>,
    dels_by_label: BTreeMap<&'t str, Vec<usize>>,
    /// Per client: the last position where its queue may have overflowed.
    overflow: RefCell<BTreeMap<&'t str, Option<Pos>>>,
    /// The broker's users and ACL (`auth_configured`); `None`: everything is allowed (also
    /// when the ACL cannot be read: the "acl" checker reports that).
    pub auth: Option<super::acl::Rules>,
    /// Per client: the user name the broker verified (see [`user_of`](Model::user_of)).
    users: BTreeMap<&'t str, Option<String>>,
}

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
            auth: super::acl::Rules::of(trace).and_then(Result::ok),
            users: BTreeMap::new(),
        };
        for (pos, e) in trace.events.iter().enumerate() {
            m.record(pos, &e.event);
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

    fn end_epoch(&mut self, c: &'t str, pos: Pos, end: End) {
        let log = self.client(c);
        if let Some(e) = log.epochs.last_mut().filter(|e| e.end.is_none()) {
            e.end = Some((pos, end));
        }
        if let Some(a) = log.attempts.last_mut().filter(|a| a.connected.is_none()) {
            a.failed.get_or_insert(pos);
        }
    }

    fn record(&mut self, pos: Pos, e: &'t Event) {
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
            Event::AuthConfigured { .. } => {}
            Event::RunEnded => self.end = Some(pos),
            Event::FaultApplied { fault } => {
                let end = fault.is_instant().then_some(pos);
                self.faults.push(FaultSpan {
                    fault,
                    start: pos,
                    end,
                });
                match fault {
                    Fault::Cut { client } => self.end_epoch(client, pos, End::Cut),
                    Fault::ClientCrash { client } | Fault::ClientPowerOff { client } => {
                        self.end_epoch(client, pos, End::ClientGone);
                        self.client(client).gone.push(pos);
                    }
                    Fault::BrokerCrash => {
                        self.broker_crashes.push(pos);
                        let names: Vec<&'t str> = self.clients.keys().copied().collect();
                        for c in names {
                            self.end_epoch(c, pos, End::BrokerCrash);
                        }
                    }
                    _ => {}
                }
            }
            Event::FaultHealed { fault } => {
                if let Some(span) = self
                    .faults
                    .iter_mut()
                    .rev()
                    .find(|s| s.end.is_none() && s.fault == fault)
                {
                    span.end = Some(pos);
                }
            }
            Event::Connecting {
                client,
                clean_start,
                keep_alive_s,
                session_expiry_s,
                will,
                username,
                password,
            } => {
                self.client(client).attempts.push(Attempt {
                    username: username.as_deref(),
                    password: password.as_deref(),
                    pos,
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
                let Some(attempt) = log.attempts.len().checked_sub(1) else {
                    return;
                };
                log.attempts[attempt].connected = Some(pos);
                let chain = log.epochs.last().map_or(0, |e| e.chain);
                let chain = if *session_present { chain } else { chain + 1 };
                log.epochs.push(Epoch {
                    attempt,
                    start: pos,
                    session_present: *session_present,
                    chain,
                    end: None,
                });
            }
            Event::ConnectFailed { client, .. } => {
                if let Some(a) = self.client(client).attempts.last_mut() {
                    a.failed.get_or_insert(pos);
                }
            }
            Event::ConnectionLost { client, cause, .. } => {
                self.end_epoch(client, pos, End::Lost(*cause))
            }
            Event::DisconnectSent { client, with_will } => self.end_epoch(
                client,
                pos,
                End::Disconnect {
                    with_will: *with_will,
                },
            ),
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
            Event::Unsubscribed { .. } => {}
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
                });
            }
            Event::PublishAcked { client, payload } => {
                if let Some(p) = self.open_pub(client, payload) {
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
                payload,
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
                    label: payload,
                    props: properties,
                    ids: subscription_ids,
                });
            }
        }
    }

    /// The oldest request of `client` with `label` that is neither acknowledged nor lost.
    fn open_pub(&self, client: &str, label: &str) -> Option<usize> {
        self.pubs_by_label.get(label)?.iter().copied().find(|&i| {
            let p = &self.pubs[i];
            p.client == client && p.acked.is_none() && p.lost.is_none()
        })
    }

    pub fn us(&self, pos: Pos) -> u64 {
        self.trace
            .events
            .get(pos)
            .map_or_else(|| self.trace.end_us(), |e| e.at_us)
    }

    /// The publish requests carrying `label`.
    pub fn pubs_with(&self, label: &str) -> impl Iterator<Item = &Pub<'t>> {
        self.pubs_by_label
            .get(label)
            .into_iter()
            .flatten()
            .map(|&i| &self.pubs[i])
    }

    /// The only publish request carrying `label`, if exactly one does.
    pub fn unique_pub(&self, label: &str) -> Option<&Pub<'t>> {
        match self.pubs_by_label.get(label).map(Vec::as_slice) {
            Some([i]) => Some(&self.pubs[*i]),
            _ => None,
        }
    }

    /// Deliveries of `label` to anyone, in order.
    pub fn dels_with(&self, label: &str) -> impl Iterator<Item = &Del<'t>> {
        self.dels_by_label
            .get(label)
            .into_iter()
            .flatten()
            .map(|&i| &self.dels[i])
    }

    /// Deliveries of `label` to `client`, in order.
    pub fn dels_of<'a>(
        &'a self,
        label: &str,
        client: &'a str,
    ) -> impl Iterator<Item = &'a Del<'t>> {
        self.dels_by_label
            .get(label)
            .into_iter()
            .flatten()
            .map(|&i| &self.dels[i])
            .filter(move |d| d.client == client)
    }

    /// Liveness is demanded for obligations arising before the settle phase began, and only
    /// in a complete trace (one with `settle_started` and `run_ended`).
    pub fn liveness_due(&self, pos: Pos) -> bool {
        matches!((self.settle, self.end), (Some(s), Some(_)) if pos < s)
    }

    /// Like [`liveness_due`](Model::liveness_due), for an obligation falling due at `at_us`.
    pub fn liveness_due_us(&self, at_us: u64) -> bool {
        matches!((self.settle, self.end), (Some(s), Some(_)) if at_us < self.us(s))
    }

    /// A broker crash at a position in `(a, b)` that lost state (persistence `none`).
    pub fn lossy_crash_between(&self, a: Pos, b: Pos) -> Option<Pos> {
        if self.persistence != Persistence::None {
            return None;
        }
        self.broker_crashes
            .iter()
            .copied()
            .find(|&c| a < c && c < b)
    }

    /// A crash or power-off of `client` at a position in `(a, b)`.
    pub fn gone_between(&self, client: &str, a: Pos, b: Pos) -> Option<Pos> {
        self.clients
            .get(client)?
            .gone
            .iter()
            .copied()
            .find(|&g| a < g && g < b)
    }

    /// The connection of `client` open at `pos` (started before it, not ended before it).
    pub fn epoch_at(&self, client: &str, pos: Pos) -> Option<&Epoch> {
        self.clients
            .get(client)?
            .epochs
            .iter()
            .rev()
            .find(|e| e.start < pos)
            .filter(|e| e.end.is_none_or(|(end, _)| end >= pos))
    }

    /// The session chain `client` was in at `pos` (that of its latest connection before it).
    pub fn chain_at(&self, client: &str, pos: Pos) -> Option<usize> {
        self.clients
            .get(client)?
            .epochs
            .iter()
            .rev()
            .find(|e| e.start < pos)
            .map(|e| e.chain)
    }

    /// Whether `client` kept one session from `pos` to the end of the run and was connected at
    /// the end: every later `connected` had `session_present = true` and its last connection
    /// never ended.
    pub fn session_kept_to_end(&self, client: &str, pos: Pos) -> bool {
        let Some(log) = self.clients.get(client) else {
            return false;
        };
        let Some(last) = log.epochs.last() else {
            return false;
        };
        last.end.is_none() && self.chain_at(client, pos) == Some(last.chain)
    }

    /// The plain (not shared) subscription of `client` that covers `topic` for a message of
    /// QoS `qos` requested at `before`: granted before `before` and never unsubscribed or refused afterwards. The
    /// one with the highest effective QoS wins.
    pub fn held(&self, client: &str, topic: &str, qos: u8, before: Pos) -> Option<Held<'t>> {
        self.held_from(client, None, topic, qos, before)
    }

    /// [`held`](Model::held) for a message published by `origin`: a subscription whose
    /// request had No Local set does not cover the client's own messages [MQTT-3.8.3-3].
    pub fn held_from(
        &self,
        client: &str,
        origin: Option<&str>,
        topic: &str,
        qos: u8,
        before: Pos,
    ) -> Option<Held<'t>> {
        let log = self.clients.get(client)?;
        let mut best: Option<Held<'t>> = None;
        let mut filters: Vec<&'t str> = log.subs.iter().map(|s| s.filter).collect();
        filters.sort_unstable();
        filters.dedup();
        // A shared subscription entitles its group, not one member ("shared" checker).
        for f in filters
            .into_iter()
            .filter(|f| topic::shared(f).is_none() && topic::matches(f, topic))
        {
            let evs: Vec<&SubEv<'t>> = log.subs.iter().filter(|s| s.filter == f).collect();
            let Some(start) = evs
                .iter()
                .rposition(|s| s.pos < before && matches!(s.kind, SubKind::Granted(_)))
            else {
                continue;
            };
            let no_local = evs[..start]
                .iter()
                .rev()
                .find(|s| matches!(s.kind, SubKind::Requested(_)))
                .is_some_and(|s| s.options.no_local);
            if no_local && origin == Some(client) {
                continue;
            }
            let mut eff = qos;
            let mut ok = true;
            for s in &evs[start..] {
                match s.kind {
                    SubKind::Granted(Some(g)) => eff = eff.min(g),
                    SubKind::Granted(None) | SubKind::UnsubRequested => ok = false,
                    SubKind::Requested(_) => {}
                }
            }
            if ok && best.is_none_or(|b| eff > b.qos) {
                best = Some(Held {
                    filter: f,
                    granted_at: evs[start].pos,
                    qos: eff,
                });
            }
        }
        best
    }

    /// Whether delivery `d` is a forwarded message (`Some(true)`: it went out because it
    /// matched an established subscription) or a retained copy (`Some(false)`: sent because of
    /// a new subscription), or either (`None`). A delivery without the retain flag is
    /// forwarded. One with it is a retained copy, unless it may have been forwarded through a
    /// subscription with Retain As Published (5.0) [MQTT-3.3.1-13]: the client asked for a
    /// matching filter with that option before it, and the label was published retained. It
    /// may be both when, in the same session, the client also asked for a matching filter
    /// (retain handling 0 or 1) whose SUBACK came after the label was requested.
    pub fn forwarded(&self, d: &Del<'_>) -> Option<bool> {
        if !d.retain {
            return Some(true);
        }
        let Some(log) = self.clients.get(d.client) else {
            return Some(false);
        };
        let pubs: Vec<&Pub<'t>> = self
            .pubs_with(d.label)
            .filter(|p| p.retain && p.topic == d.topic && p.pos < d.pos)
            .collect();
        let rap = !pubs.is_empty()
            && log.subs.iter().any(|s| {
                s.pos < d.pos
                    && s.options.retain_as_published
                    && matches!(s.kind, SubKind::Requested(_))
                    && topic::subscription_matches(s.filter, d.topic)
            });
        if !rap {
            return Some(false);
        }
        let chain = self.chain_at(d.client, d.pos);
        let copy = log.subs.iter().enumerate().any(|(i, s)| {
            if s.pos >= d.pos
                || !matches!(s.kind, SubKind::Requested(_))
                || s.options.retain_handling == 2
                || topic::shared(s.filter).is_some()
                || !topic::matches(s.filter, d.topic)
                || self.chain_at(d.client, s.pos) != chain
            {
                return false;
            }
            let answer = log.subs[i + 1..]
                .iter()
                .find(|g| g.filter == s.filter && !matches!(g.kind, SubKind::Requested(_)))
                .map_or(d.pos, |g| g.pos);
            pubs.iter().any(|p| p.pos < answer)
        });
        if copy { None } else { Some(true) }
    }

    /// The latest grant of shared subscription `share` to `client` before `before`, if the
    /// client never refused, lost (a refused re-grant) or unsubscribed it afterwards.
    pub fn held_shared(&self, client: &str, share: &str, before: Pos) -> Option<Pos> {
        let log = self.clients.get(client)?;
        let evs: Vec<&SubEv<'t>> = log.subs.iter().filter(|s| s.filter == share).collect();
        let start = evs
            .iter()
            .rposition(|s| s.pos < before && matches!(s.kind, SubKind::Granted(Some(_))))?;
        evs[start..]
            .iter()
            .all(|s| !matches!(s.kind, SubKind::Granted(None) | SubKind::UnsubRequested))
            .then_some(evs[start].pos)
    }

    /// Whether publish `p` may have expired before the broker could send it to `client`
    /// (README, "Entitled", rule 6). A message without an expiry interval never expires. One
    /// with interval `e`, requested at `r`, cannot expire on its way to `client` only when:
    /// `e` exceeds the network slack; `client` was connected in one connection from before `r`
    /// to `r + e`; no fault disturbed that connection and the broker was not stalled in
    /// `[r, r + e]`; and nothing requested before `r` on a topic `client` had asked for was
    /// still waiting for its first delivery to `client` at `r` (no backlog in front of it).
    pub fn may_expire(&self, client: &str, p: &Pub<'_>, slack_us: u64) -> bool {
        let Some(e) = p.expiry_s else {
            return false;
        };
        let e_us = u64::from(e) * 1_000_000;
        if e_us <= slack_us {
            return true;
        }
        let r_us = self.us(p.pos);
        let until = self.pos_at_us(r_us + e_us);
        let Some(epoch) = self.epoch_at(client, p.pos) else {
            return true;
        };
        if epoch.end.is_some_and(|(end, _)| end <= until)
            || self.disturbed(client, p.pos, until)
            || self.broker_stalled_us(r_us, r_us + e_us) > 0
        {
            return true;
        }
        let Some(log) = self.clients.get(client) else {
            return true;
        };
        self.pubs.iter().filter(|q| q.pos < p.pos).any(|q| {
            let asked = log.subs.iter().any(|s| {
                s.pos < p.pos
                    && matches!(s.kind, SubKind::Requested(_))
                    && topic::subscription_matches(s.filter, q.topic)
            });
            asked
                && self
                    .dels_of(q.label, client)
                    .find(|d| d.pos > q.pos)
                    .is_none_or(|d| d.pos > p.pos)
        })
    }

    /// Whether `client` was without a connection, by its own account, throughout
    /// `[r, r + e + slack + broker stall]` for publish `p` with expiry interval `e`: the
    /// broker cannot have sent it `p` before it expired.
    pub fn offline_past_expiry(&self, client: &str, p: &Pub<'_>, slack_us: u64) -> bool {
        let Some(e) = p.expiry_s else {
            return false;
        };
        let r_us = self.us(p.pos);
        let mut until_us = r_us + u64::from(e) * 1_000_000 + slack_us;
        until_us += self.broker_stalled_us(r_us, until_us);
        let until = self.pos_at_us(until_us);
        let Some(log) = self.clients.get(client) else {
            return false;
        };
        !log.epochs
            .iter()
            .any(|ep| ep.start < until && ep.end.is_none_or(|(end, _)| end >= p.pos))
    }

    /// The user name the broker verified for `client`: the one of its accepted CONNECTs (none
    /// without users).
    pub fn user_of(&self, client: &str) -> Option<&str> {
        self.users.get(client)?.as_deref()
    }

    /// Whether the broker's ACL lets `client` receive messages on `topic` (always without an
    /// ACL).
    pub fn may_read(&self, client: &str, topic: &str) -> bool {
        self.auth
            .as_ref()
            .is_none_or(|a| a.may_read(self.user_of(client), client, topic))
    }

    /// Whether the broker's ACL lets `client` publish on `topic` (always without an ACL).
    pub fn may_write(&self, client: &str, topic: &str) -> bool {
        self.auth
            .as_ref()
            .is_none_or(|a| a.may_write(self.user_of(client), client, topic))
    }

    /// Whether `client` is owed a message of QoS `qos` on `topic` requested at `requested`;
    /// the exact rule is in the README ("Entitled").
    pub fn entitled(&self, client: &str, topic: &str, qos: u8, requested: Pos) -> Option<Held<'t>> {
        self.entitled_from(client, None, topic, qos, requested)
    }

    /// [`entitled`](Model::entitled) for a message published by `origin` (No Local, see
    /// [`held_from`](Model::held_from)).
    pub fn entitled_from(
        &self,
        client: &str,
        origin: Option<&str>,
        topic: &str,
        qos: u8,
        requested: Pos,
    ) -> Option<Held<'t>> {
        if !self.may_read(client, topic) {
            return None;
        }
        let held = self
            .held_from(client, origin, topic, qos, requested)
            .filter(|h| h.qos >= 1)?;
        let end = self.end?;
        if !self.session_kept_to_end(client, held.granted_at)
            || self.lossy_crash_between(requested, end).is_some()
            || (held.qos == 2 && self.gone_between(client, requested, end).is_some())
            || self.may_overflow(client, requested)
        {
            return None;
        }
        Some(held)
    }

    /// Whether the queue of `client` may have overflowed at some point from `from` to the
    /// end: more messages outstanding for it than `max_queued_messages`. A message counts as
    /// outstanding for it from its request (or, if later, the client's first SUBSCRIBE of a
    /// matching filter; a message published before that counts only if retained) until its
    /// first delivery to the client or the start of the client's next session, whichever
    /// comes first. This over-estimates what the broker holds, so it errs towards forgiving.
    pub fn may_overflow(&self, client: &str, from: Pos) -> bool {
        let Some((&name, _)) = self.clients.get_key_value(client) else {
            return false;
        };
        if let Some(last) = self.overflow.borrow().get(name) {
            return last.is_some_and(|l| l >= from);
        }
        let last = self.last_overflow(name);
        self.overflow.borrow_mut().insert(name, last);
        last.is_some_and(|l| l >= from)
    }

    /// The last position at which more than `max_queued_messages` messages were outstanding
    /// for `client` (see [`may_overflow`](Model::may_overflow)).
    fn last_overflow(&self, client: &str) -> Option<Pos> {
        let limit = i64::try_from(self.max_queued?).unwrap_or(i64::MAX);
        let log = self.clients.get(client)?;
        let new_sessions: Vec<Pos> = log
            .epochs
            .iter()
            .filter(|e| !e.session_present)
            .map(|e| e.start)
            .collect();
        let mut steps: Vec<(Pos, i64)> = Vec::new();
        for p in &self.pubs {
            let Some(first_sub) = log
                .subs
                .iter()
                .filter(|s| {
                    matches!(s.kind, SubKind::Requested(_))
                        && topic::subscription_matches(s.filter, p.topic)
                })
                .map(|s| s.pos)
                .min()
            else {
                continue;
            };
            if p.pos < first_sub && !p.retain {
                continue;
            }
            let start = p.pos.max(first_sub);
            let delivered = self
                .dels_of(p.label, client)
                .find(|d| d.pos > p.pos)
                .map_or(usize::MAX, |d| d.pos);
            let reset = new_sessions
                .iter()
                .copied()
                .find(|&n| n > start)
                .unwrap_or(usize::MAX);
            steps.push((start, 1));
            steps.push((delivered.min(reset), -1));
        }
        steps.sort_unstable();
        let mut count: i64 = 0;
        let mut last = None;
        for (i, &(pos, d)) in steps.iter().enumerate() {
            count += d;
            // Over the limit from `pos` until the next step.
            if count > limit {
                last = Some(
                    steps
                        .get(i + 1)
                        .map_or(pos, |n| n.0.saturating_sub(1).max(pos)),
                );
            }
        }
        last
    }

    /// Whether a fault that can disturb `client`'s connection was applied at some point in
    /// `[a, b]` (positions).
    pub fn disturbed(&self, client: &str, a: Pos, b: Pos) -> bool {
        self.faults
            .iter()
            .any(|f| f.fault.disturbs(client) && f.start <= b && f.end.is_none_or(|e| e >= a))
    }

    /// The first position at or after `at_us`.
    pub fn pos_at_us(&self, at_us: u64) -> Pos {
        self.trace.events.partition_point(|e| e.at_us < at_us)
    }

    /// Where the broker runs again after a crash at `crash` (the crash's heal), in
    /// microseconds; the end of the run if it never came back.
    pub fn broker_back_us(&self, crash: Pos) -> u64 {
        self.faults
            .iter()
            .find(|f| f.start == crash && matches!(f.fault, Fault::BrokerCrash))
            .and_then(|f| f.end)
            .map_or_else(|| self.trace.end_us(), |p| self.us(p))
    }

    /// Time during which the broker was paused, crashed or not yet restarted within
    /// `[a_us, b_us]`, in microseconds.
    pub fn broker_stalled_us(&self, a_us: u64, b_us: u64) -> u64 {
        let end_us = self.trace.end_us();
        self.faults
            .iter()
            .filter(|f| {
                matches!(f.fault, Fault::BrokerCrash)
                    || matches!(f.fault, Fault::Pause { node } if node == crate::trace::BROKER)
            })
            .map(|f| {
                let s = self.us(f.start).max(a_us);
                let e = f.end.map_or(end_us, |e| self.us(e)).min(b_us);
                e.saturating_sub(s)
            })
            .sum()
    }
}
