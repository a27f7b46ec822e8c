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

use mqtt_lab::broker::auth::password::{SALT_LEN, hash_password};
use mqtt_lab::broker::auth::{Auth, HashCost, Who};
use mqtt_lab::broker::{
    Action, Broker, BrokerConfig, BrokerCore, BrokerEvent, CloseCause, CloseReason, ConnId,
    DurableState, QueueOverflow,
};
use mqtt_lab::codec::topic::matches;
use mqtt_lab::codec::{
    Ack, ConnAck, Disconnect, Framer, Packet, Properties, Protocol, Publish, QoS, ReasonCode,
    RetainHandling,
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
    /// Every inbound 5.0 CONNECT loses its will's Will Delay Interval before the core sees it:
    /// a delayed will is published as soon as the connection is lost.
    WillDelayIgnored,
    /// The broker process drops the waiting (delayed) wills of the durable state it is
    /// restarted with; sessions, queues and retained messages are restored.
    DelayedWillLostInCrash,
    /// Every inbound 5.0 CONNECT asking for a finite non-zero session expiry interval is handed
    /// to the core as asking for one that never ends (and the client is not told).
    SessionNeverExpires,
    /// The broker's outbound topic aliases outlive the connection: once a topic was sent with
    /// an alias to a client, every later PUBLISH of that topic on another connection of the
    /// same client carries only that alias and an empty topic ([MQTT-3.3.2-7] broken).
    AliasesKeptAcrossConnections,
    /// The Receive Maximum in the client's CONNECT is removed before the core sees it, so the
    /// broker sends up to its own inflight window unacknowledged ([MQTT-3.3.4-9] broken).
    ReceiveMaximumIgnored,
    /// On a connection that resumed a session, the PUBRELs the session still owes are not sent
    /// again ([MQTT-4.4.0-1] broken): a PUBREL goes out only in answer to a PUBREC received on
    /// the same connection, so an exchange cut between PUBREC and PUBREL is never released.
    PubrelNotResent,
    /// Every inbound UNSUBSCRIBE names a filter nobody holds: the broker answers it with an
    /// UNSUBACK and keeps the subscription ([MQTT-3.10.4-2] broken).
    UnsubscribeIgnored,
    /// UNSUBSCRIBE is carried out but never answered: every UNSUBACK is dropped
    /// ([MQTT-3.10.4-4] broken).
    UnsubackNeverSent,
    /// Every PUBLISH sent to a subscriber carries its user properties in reverse order.
    UserPropertiesReordered,
    /// Every inbound SUBSCRIBE loses its No Local flags before the core sees it.
    NoLocalIgnored,
    /// Every inbound SUBSCRIBE loses its Retain As Published flags: forwarded messages always
    /// go out with RETAIN 0.
    RetainAsPublishedIgnored,
    /// Every PUBLISH sent to a subscriber carries RETAIN 1.
    RetainFlagAlwaysSet,
    /// Every inbound SUBSCRIBE is handed to the core with retain handling 0: retained messages
    /// are sent on every subscribe.
    RetainHandlingIgnored,
    /// Every subscription identifier in a PUBLISH sent to a subscriber is one too high.
    WrongSubscriptionId,
    /// A subscription with a wildcard also brings the topics it matches that the client's
    /// user may not read: each such PUBLISH is copied to it at QoS 0.
    AclIgnoredForWildcards,
    /// A PUBLISH on a topic its client may not write is still answered as the ACL wants, but
    /// also copied at QoS 0 to every connection subscribed to the topic that may read it.
    DeniedPublishForwarded,
    /// A CONNECT naming a known user with a wrong password is accepted (the core sees it log
    /// in as a user of its own, who may do nothing).
    WrongPasswordAccepted,
    /// A full queue drops messages at the wrong end: `drop_newest` behaves as `drop_oldest`
    /// and the other way round.
    OverflowDropsWrongEnd,
    /// A PUBLISH on a topic starting with `$` is also copied at QoS 0 to every connection
    /// holding a granted filter that starts with a wildcard and would match the topic if it
    /// did not start with `$` ([MQTT-4.7.2-1] broken).
    DollarTopicsToWildcards,
    /// Every inbound CONNECT is handed to the core without clean start / clean session: an
    /// existing session is resumed instead of discarded ([MQTT-3.1.2-4], [MQTT-3.1.2-6]
    /// broken).
    CleanStartIgnored,
    /// Every PUBLISH the core resends to a subscriber goes out with DUP 0 ([MQTT-3.3.1-1]
    /// broken).
    ResendWithoutDup,
    /// Every successful CONNACK answering a CONNECT with clean start says session present 1
    /// ([MQTT-3.2.2-1], [MQTT-3.2.2-2] broken).
    SessionPresentOnCleanStart,
    /// Every PUBLISH sent to a subscriber carries the message expiry interval its publisher
    /// sent, however long it waited in the broker ([MQTT-3.3.2-6] broken).
    ExpiryNotAged,
    /// A QoS 1 PUBLISH towards a connection holding several matching subscriptions goes out
    /// at the lowest QoS granted among them, QoS 0 (the core is told it was acknowledged)
    /// ([MQTT-3.3.5-1] broken).
    OverlapLowestQos,
    /// A retained message sent at QoS 1 because of a new subscription goes out at QoS 0 (the
    /// core is told it was acknowledged) ([MQTT-3.8.4-6] broken).
    RetainedCopyAtQos0,
    /// A CONNECT whose client identifier another connection still holds is handed to the core
    /// with clean start: the takeover discards the session instead of handing it to the new
    /// connection ([MQTT-3.1.4-3] with [MQTT-3.2.2-3] broken).
    TakeoverDiscardsSession,
    /// The broker's `$SYS/broker/clients/refused` figure always reads 0: refused logins are
    /// never counted.
    RefusalsNotCounted,
    /// The broker's `$SYS/broker/publish/messages/received` figure counts only the PUBLISH
    /// packets received since the previous publication to the same connection, not since the
    /// broker started.
    CounterPerInterval,
}

impl Bug {
    pub const ALL: [Bug; 36] = [
        Bug::Qos2ForwardedTwice,
        Bug::Qos1DroppedAfterReconnect,
        Bug::WillAfterDisconnect,
        Bug::NoWillAfterCrash,
        Bug::RetainedNotCleared,
        Bug::Reordered,
        Bug::SessionForgotten,
        Bug::SharedToAll,
        Bug::WillDelayIgnored,
        Bug::DelayedWillLostInCrash,
        Bug::SessionNeverExpires,
        Bug::AliasesKeptAcrossConnections,
        Bug::ReceiveMaximumIgnored,
        Bug::PubrelNotResent,
        Bug::UnsubscribeIgnored,
        Bug::UnsubackNeverSent,
        Bug::UserPropertiesReordered,
        Bug::NoLocalIgnored,
        Bug::RetainAsPublishedIgnored,
        Bug::RetainFlagAlwaysSet,
        Bug::RetainHandlingIgnored,
        Bug::WrongSubscriptionId,
        Bug::AclIgnoredForWildcards,
        Bug::DeniedPublishForwarded,
        Bug::WrongPasswordAccepted,
        Bug::OverflowDropsWrongEnd,
        Bug::DollarTopicsToWildcards,
        Bug::CleanStartIgnored,
        Bug::ResendWithoutDup,
        Bug::SessionPresentOnCleanStart,
        Bug::ExpiryNotAged,
        Bug::OverlapLowestQos,
        Bug::RetainedCopyAtQos0,
        Bug::TakeoverDiscardsSession,
        Bug::RefusalsNotCounted,
        Bug::CounterPerInterval,
    ];
}

/// The user [`Bug::WrongPasswordAccepted`] logs clients in as.
const BACKDOOR_USER: &str = "planted-backdoor";
const BACKDOOR_PASSWORD: &[u8] = b"planted";

/// The broker factory of a run with `bug` planted.
pub fn factory(bug: Bug) -> BrokerFactory {
    Arc::new(
        move |mut config: BrokerConfig, auth: Auth, state: Option<DurableState>| {
            if bug == Bug::OverflowDropsWrongEnd {
                config.queue_overflow = match config.queue_overflow {
                    QueueOverflow::DropNewest => QueueOverflow::DropOldest,
                    QueueOverflow::DropOldest => QueueOverflow::DropNewest,
                };
            }
            let mut inner_auth = auth.clone();
            if bug == Bug::WrongPasswordAccepted
                && let Some(file) = &mut inner_auth.passwords
            {
                file.set(
                    BACKDOOR_USER,
                    hash_password(BACKDOOR_PASSWORD, &[7; SALT_LEN], HashCost::MINIMAL),
                );
            }
            let inner = match state {
                Some(mut state) if bug != Bug::SessionForgotten => {
                    if bug == Bug::DelayedWillLostInCrash {
                        state.wills.clear();
                    }
                    // As the real broker's factory: timers run from the process start.
                    Broker::restore_at(config.clone(), state, Instant::now())
                }
                _ => Broker::new(config.clone()),
            }
            .with_auth(inner_auth);
            let mut planted = Planted::new(bug, inner, config.max_packet_size);
            planted.auth = auth;
            Box::new(planted) as Box<dyn BrokerCore + Send>
        },
    )
}

/// The filter [`Bug::UnsubscribeIgnored`] puts in every UNSUBSCRIBE.
const NOBODY_HOLDS: &str = "planted/never-subscribed";
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
    /// `AliasesKeptAcrossConnections`: the client id of each connection, and per client id the
    /// aliases set on its connections: topic → (connection, alias).
    client_of: BTreeMap<ConnId, String>,
    aliases: BTreeMap<String, BTreeMap<String, (ConnId, u16)>>,
    /// The users and ACL the broker was given (the ACL bugs decide with them).
    auth: Auth,
    /// Connections that sent CONNECT: protocol, client id and verified user name.
    peers: BTreeMap<ConnId, Peer>,
    /// SUBSCRIBE filters awaiting their SUBACK, per connection and packet id.
    asked: BTreeMap<(ConnId, u16), Vec<String>>,
    /// Filters granted per connection.
    granted: BTreeMap<ConnId, BTreeSet<String>>,
    /// `PubrelNotResent`: PUBRECs received, per connection and packet id.
    pubrecs: BTreeSet<(ConnId, u16)>,
    /// `OverlapLowestQos`: the QoS granted per connection and filter.
    granted_qos: BTreeMap<(ConnId, String), QoS>,
    /// `SessionPresentOnCleanStart`: connections whose CONNECT had clean start.
    clean: BTreeSet<ConnId>,
    /// `ExpiryNotAged`: the message expiry interval each payload was published with.
    expiry_sent: BTreeMap<Vec<u8>, u32>,
    /// `CounterPerInterval`: the count each connection was last sent.
    counted: BTreeMap<ConnId, u64>,
}

struct Peer {
    protocol: Protocol,
    client_id: String,
    user: Option<String>,
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
            client_of: BTreeMap::new(),
            aliases: BTreeMap::new(),
            auth: Auth::default(),
            peers: BTreeMap::new(),
            asked: BTreeMap::new(),
            granted: BTreeMap::new(),
            pubrecs: BTreeSet::new(),
            granted_qos: BTreeMap::new(),
            clean: BTreeSet::new(),
            expiry_sent: BTreeMap::new(),
            counted: BTreeMap::new(),
        }
    }

    fn who<'a>(&'a self, peer: &'a Peer) -> Who<'a> {
        Who {
            user: peer.user.as_deref(),
            client_id: &peer.client_id,
        }
    }

    /// Remembers what the ACL bugs need to know about an inbound packet; for
    /// [`Bug::WrongPasswordAccepted`] turns bad credentials into the backdoor's.
    fn watch(&mut self, conn: ConnId, packet: &mut Packet) {
        match packet {
            Packet::Connect(c) => {
                if c.clean_start {
                    self.clean.insert(conn);
                }
                let verified = match (&self.auth.passwords, &c.username, &c.password) {
                    (Some(file), Some(user), Some(password)) => file.verify(user, password),
                    _ => false,
                };
                if self.bug == Bug::WrongPasswordAccepted
                    && !verified
                    && c.username.is_some()
                    && self.auth.passwords.is_some()
                {
                    c.username = Some(BACKDOOR_USER.to_owned());
                    c.password = Some(BACKDOOR_PASSWORD.into());
                }
                self.peers.insert(
                    conn,
                    Peer {
                        protocol: c.protocol,
                        client_id: c.client_id.clone(),
                        user: verified.then(|| c.username.clone()).flatten(),
                    },
                );
            }
            Packet::PubRec(a) => {
                self.pubrecs.insert((conn, a.pkid));
            }
            Packet::Unsubscribe(u) if self.bug == Bug::UnsubscribeIgnored => {
                for f in &mut u.filters {
                    *f = NOBODY_HOLDS.to_owned();
                }
            }
            Packet::Publish(p) => {
                if let Some(e) = p.properties.message_expiry_interval {
                    self.expiry_sent.insert(p.payload.to_vec(), e);
                }
            }
            Packet::Subscribe(s) => {
                self.asked.insert(
                    (conn, s.pkid),
                    s.filters.iter().map(|f| f.filter.clone()).collect(),
                );
            }
            _ => {}
        }
    }

    /// The QoS 0 copies the ACL bugs send for an inbound PUBLISH from `from`.
    fn leak(&mut self, from: ConnId, p: &Publish) {
        let Some(acl) = &self.auth.acl else { return };
        let Some(publisher) = self.peers.get(&from) else {
            return;
        };
        let may_write = acl.may_write(self.who(publisher), &p.topic);
        let mut copies = Vec::new();
        for (conn, filters) in &self.granted {
            let Some(peer) = self.peers.get(conn) else {
                continue;
            };
            let may_read = acl.may_read(self.who(peer), &p.topic);
            let send = match self.bug {
                Bug::AclIgnoredForWildcards => {
                    may_write
                        && !may_read
                        && filters
                            .iter()
                            .any(|f| f.contains(['+', '#']) && matches(f, &p.topic))
                }
                Bug::DeniedPublishForwarded => {
                    !may_write && may_read && filters.iter().any(|f| matches(f, &p.topic))
                }
                _ => false,
            };
            if send {
                copies.push(qos0_copy(*conn, peer.protocol, p));
            }
        }
        self.out.extend(copies);
    }

    /// [`Bug::DollarTopicsToWildcards`]: QoS 0 copies of a `$` topic's PUBLISH for the
    /// wildcard filters that the `$` rule keeps it from.
    fn dollar_to_wildcards(&mut self, p: &Publish) {
        let Some(rest) = p.topic.strip_prefix('$') else {
            return;
        };
        let plain = format!("x{rest}");
        let mut copies = Vec::new();
        for (conn, filters) in &self.granted {
            let Some(peer) = self.peers.get(conn) else {
                continue;
            };
            if filters
                .iter()
                .any(|f| f.starts_with(['+', '#']) && matches(f, &plain))
            {
                copies.push(qos0_copy(*conn, peer.protocol, p));
            }
        }
        self.out.extend(copies);
    }

    /// One inbound packet, after the bug had its say.
    fn inbound(&mut self, now: Instant, conn: ConnId, mut packet: Packet) {
        self.watch(conn, &mut packet);
        if let Packet::Publish(p) = &packet {
            self.leak(conn, p);
            if self.bug == Bug::DollarTopicsToWildcards {
                self.dollar_to_wildcards(p);
            }
        }
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
            (Bug::WillDelayIgnored, Packet::Connect(mut c)) => {
                if let Some(will) = &mut c.will {
                    will.properties.will_delay_interval = None;
                }
                self.inner.handle_packet(now, conn, Packet::Connect(c));
            }
            (Bug::SessionNeverExpires, Packet::Connect(mut c)) => {
                let expiry = &mut c.properties.session_expiry_interval;
                if c.protocol.is_v5() && expiry.is_some_and(|e| e > 0) {
                    *expiry = Some(u32::MAX);
                }
                self.inner.handle_packet(now, conn, Packet::Connect(c));
            }
            (Bug::AliasesKeptAcrossConnections, Packet::Connect(c)) => {
                self.client_of.insert(conn, c.client_id.clone());
                self.inner.handle_packet(now, conn, Packet::Connect(c));
            }
            (Bug::TakeoverDiscardsSession, Packet::Connect(mut c)) => {
                if self.client_of.values().any(|id| *id == c.client_id) {
                    c.clean_start = true;
                }
                self.client_of.insert(conn, c.client_id.clone());
                self.inner.handle_packet(now, conn, Packet::Connect(c));
            }
            (Bug::CleanStartIgnored, Packet::Connect(mut c)) => {
                c.clean_start = false;
                self.inner.handle_packet(now, conn, Packet::Connect(c));
            }
            (Bug::ReceiveMaximumIgnored, Packet::Connect(mut c)) => {
                c.properties.receive_maximum = None;
                self.inner.handle_packet(now, conn, Packet::Connect(c));
            }
            (
                Bug::NoLocalIgnored | Bug::RetainAsPublishedIgnored | Bug::RetainHandlingIgnored,
                Packet::Subscribe(mut s),
            ) => {
                for sub in &mut s.filters {
                    match self.bug {
                        Bug::NoLocalIgnored => sub.options.no_local = false,
                        Bug::RetainAsPublishedIgnored => sub.options.retain_as_published = false,
                        _ => sub.options.retain_handling = RetainHandling::SendAtSubscribe,
                    }
                }
                self.inner.handle_packet(now, conn, Packet::Subscribe(s));
            }
            (_, packet) => self.inner.handle_packet(now, conn, packet),
        }
    }

    /// Rewrites one action of the core into what the shell is given.
    fn outbound(&mut self, action: Action) {
        match &action {
            Action::Send {
                conn,
                packet: Packet::SubAck(a),
                ..
            } => {
                if let Some(filters) = self.asked.remove(&(*conn, a.pkid)) {
                    let granted = self.granted.entry(*conn).or_default();
                    for (f, r) in filters.into_iter().zip(&a.reasons) {
                        let qos = match r {
                            ReasonCode::Success => QoS::AtMostOnce,
                            ReasonCode::GrantedQoS1 => QoS::AtLeastOnce,
                            ReasonCode::GrantedQoS2 => QoS::ExactlyOnce,
                            _ => continue,
                        };
                        self.granted_qos.insert((*conn, f.clone()), qos);
                        granted.insert(f);
                    }
                }
            }
            Action::Close { conn, .. } => self.forget(*conn),
            _ => {}
        }
        match self.bug {
            Bug::Qos2ForwardedTwice => self.duplicate(action),
            Bug::Qos1DroppedAfterReconnect => self.drop_after_resume(action),
            Bug::PubrelNotResent => match &action {
                Action::Send {
                    conn,
                    packet: Packet::PubRel(a),
                    ..
                } if !self.pubrecs.contains(&(*conn, a.pkid)) => {}
                _ => self.out.push_back(action),
            },
            Bug::UnsubackNeverSent => match &action {
                Action::Send {
                    packet: Packet::UnsubAck(_),
                    ..
                } => {}
                _ => self.out.push_back(action),
            },
            Bug::Reordered => self.reorder(action),
            Bug::AliasesKeptAcrossConnections => self.keep_aliases(action),
            Bug::UserPropertiesReordered
            | Bug::RetainFlagAlwaysSet
            | Bug::WrongSubscriptionId
            | Bug::ResendWithoutDup
            | Bug::SessionPresentOnCleanStart
            | Bug::ExpiryNotAged
            | Bug::RefusalsNotCounted
            | Bug::CounterPerInterval => self.alter_publish(action),
            Bug::OverlapLowestQos | Bug::RetainedCopyAtQos0 => self.downgrade(action),
            _ => self.out.push_back(action),
        }
    }

    fn keep_aliases(&mut self, mut action: Action) {
        if let Action::Send {
            conn,
            packet: Packet::Publish(p),
            ..
        } = &mut action
            && !p.topic.is_empty()
            && let Some(client) = self.client_of.get(conn)
        {
            let known = self.aliases.entry(client.clone()).or_default();
            match known.get(&p.topic) {
                // Aliased on an earlier connection: the alias alone, as if still valid.
                Some(&(on, alias)) if on != *conn => {
                    p.topic.clear();
                    p.properties.topic_alias = Some(alias);
                }
                Some(_) => {}
                None => {
                    if let Some(alias) = p.properties.topic_alias {
                        known.insert(p.topic.clone(), (*conn, alias));
                    }
                }
            }
        }
        self.out.push_back(action);
    }

    /// Sends a QoS 1 PUBLISH at QoS 0 where the bug says, and tells the core the client
    /// acknowledged it.
    fn downgrade(&mut self, mut action: Action) {
        if let Action::Send {
            conn,
            packet: Packet::Publish(p),
            ..
        } = &mut action
            && p.qos == QoS::AtLeastOnce
            && !p.dup
        {
            let lower = match self.bug {
                Bug::RetainedCopyAtQos0 => p.retain,
                _ => {
                    let grants: Vec<QoS> = self
                        .granted
                        .get(conn)
                        .into_iter()
                        .flatten()
                        .filter(|f| matches(f, &p.topic))
                        .filter_map(|f| self.granted_qos.get(&(*conn, f.clone())).copied())
                        .collect();
                    grants.len() > 1 && grants.contains(&QoS::AtMostOnce)
                }
            };
            if lower {
                let (conn, pkid) = (*conn, p.pkid);
                p.qos = QoS::AtMostOnce;
                p.pkid = 0;
                let now = self.now.expect("a publish is sent only after some event");
                self.out.push_back(action);
                self.inner
                    .handle_packet(now, conn, Packet::PubAck(Ack::new(pkid)));
                return;
            }
        }
        self.out.push_back(action);
    }

    /// Rewrites a PUBLISH towards a subscriber (or a CONNACK) as the bug says.
    fn alter_publish(&mut self, mut action: Action) {
        if let Action::Send {
            conn,
            packet: Packet::ConnAck(a),
            ..
        } = &mut action
            && self.bug == Bug::SessionPresentOnCleanStart
            && a.reason == ReasonCode::Success
            && self.clean.contains(conn)
        {
            a.session_present = true;
        }
        if let Action::Send {
            conn,
            packet: Packet::Publish(p),
            ..
        } = &mut action
        {
            match self.bug {
                Bug::RefusalsNotCounted if p.topic == "$SYS/broker/clients/refused" => {
                    p.payload = "0".into();
                }
                Bug::CounterPerInterval if p.topic == "$SYS/broker/publish/messages/received" => {
                    let total: u64 = std::str::from_utf8(&p.payload)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .expect("the broker's counters are whole numbers");
                    let before = self.counted.insert(*conn, total).unwrap_or(0);
                    p.payload = total.saturating_sub(before).to_string().into();
                }
                Bug::RefusalsNotCounted | Bug::CounterPerInterval => {}
                Bug::UserPropertiesReordered => p.properties.user_properties.reverse(),
                Bug::RetainFlagAlwaysSet => p.retain = true,
                Bug::ResendWithoutDup => p.dup = false,
                Bug::SessionPresentOnCleanStart => {}
                Bug::ExpiryNotAged => {
                    if p.properties.message_expiry_interval.is_some()
                        && let Some(&e) = self.expiry_sent.get(p.payload.as_ref())
                    {
                        p.properties.message_expiry_interval = Some(e);
                    }
                }
                _ => {
                    for id in &mut p.properties.subscription_identifiers {
                        *id += 1;
                    }
                }
            }
        }
        self.out.push_back(action);
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

impl Planted {
    fn forget(&mut self, conn: ConnId) {
        self.peers.remove(&conn);
        self.granted.remove(&conn);
        self.granted_qos.retain(|(c, _), _| *c != conn);
        self.clean.remove(&conn);
        self.asked.retain(|(c, _), _| *c != conn);
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
        self.forget(conn);
        self.framers.remove(&conn);
        self.resumed.remove(&conn);
        self.client_of.remove(&conn);
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

    fn handle_held(&mut self, now: Instant, conn: ConnId, held: bool) {
        self.inner.handle_held(now, conn, held);
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

    fn record_changes(&mut self) {
        self.inner.record_changes()
    }

    fn take_changes(&mut self) -> mqtt_lab::broker::Changes {
        self.inner.take_changes()
    }

    fn handle_storage(&mut self, now: Instant, health: mqtt_lab::broker::StorageHealth) {
        self.inner.handle_storage(now, health)
    }
}

/// A QoS 0 copy of `p` (topic and payload only) sent to `conn`, as the leaking bugs send it.
fn qos0_copy(conn: ConnId, protocol: Protocol, p: &Publish) -> Action {
    Action::Send {
        conn,
        protocol,
        packet: Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: p.topic.clone(),
            pkid: 0,
            properties: Properties::default(),
            payload: p.payload.clone(),
        }),
    }
}
