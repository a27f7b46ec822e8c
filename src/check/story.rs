//! A builder for hand-written traces that read like stories, for checker tests:
//!
//! ```
//! use mqtt_lab::check::story::Story;
//! use mqtt_lab::trace::Persistence;
//! let mut s = Story::new("3.1.1", Persistence::Durable);
//! s.connect("monitor", false, false).subscribe("monitor", "sensors/#", 1);
//! s.connect("sensor-1", true, false);
//! let m1 = s.publish("sensor-1", "sensors/1", 1);
//! s.at_ms(10).deliver("monitor", &m1).ack("sensor-1", &m1);
//! let trace = s.end();
//! let violations = mqtt_lab::check::run_all(&trace, &Default::default()).unwrap();
//! assert!(violations.is_empty(), "{violations:?}");
//! ```
//!
//! Events are stamped with the story's clock ([`Story::at_ms`], [`Story::after_ms`]); events
//! at the same instant keep the order they were told in. Workload labels are numbered per
//! client (`sensor-1#1`, `sensor-1#2`, ...), will labels per connect (`sensor-1#will-2`).

use std::collections::BTreeMap;

use crate::trace::{
    AckPacket, BROKER, Event, Fault, LossCause, MessageProps, Persistence, SubOptions, Trace,
    WillSpec,
};

/// The story's idea of one publish request, to fill in deliveries.
#[derive(Debug, Clone)]
struct Sent {
    topic: String,
    qos: u8,
    size: u32,
    properties: MessageProps,
}

/// A trace being told.
#[derive(Debug)]
pub struct Story {
    trace: Trace,
    now_us: u64,
    seq: BTreeMap<String, u64>,
    connects: BTreeMap<String, u64>,
    keep_alive: BTreeMap<String, u16>,
    expiry: BTreeMap<String, u32>,
    wills: BTreeMap<String, WillSpec>,
    sent: BTreeMap<String, Sent>,
    /// Client → (user name, password) sent in its CONNECTs.
    credentials: BTreeMap<String, (String, Option<String>)>,
    /// Client → Receive Maximum sent in its CONNECTs (5.0).
    receive_maximum: BTreeMap<String, u16>,
    /// Client → the protocol of its following connects, when not the story's.
    protocols: BTreeMap<String, String>,
    /// Process → the client identifier its events carry, for processes not named by it.
    processes: BTreeMap<String, String>,
    protocol: String,
    v5: bool,
}

impl Story {
    /// A run of `protocol` ("3.1.1" or "5.0") with the broker's `persistence`.
    pub fn new(protocol: &str, persistence: Persistence) -> Story {
        let mut trace = Trace::new();
        trace.push(
            0,
            Event::RunStarted {
                scenario: "story".into(),
                seed: 0,
                protocol: protocol.into(),
                persistence,
                max_queued_messages: None,
                max_inflight: None,
            },
        );
        Story {
            trace,
            now_us: 0,
            seq: BTreeMap::new(),
            connects: BTreeMap::new(),
            keep_alive: BTreeMap::new(),
            expiry: BTreeMap::new(),
            wills: BTreeMap::new(),
            sent: BTreeMap::new(),
            credentials: BTreeMap::new(),
            receive_maximum: BTreeMap::new(),
            protocols: BTreeMap::new(),
            processes: BTreeMap::new(),
            protocol: protocol.into(),
            v5: protocol.starts_with('5'),
        }
    }

    /// Tells `process` apart from the client identifier it connects with: from here on, the
    /// events told for `process` carry `client` = `client_id` and `process` = `process`, and
    /// faults naming `process` name its node. Its labels keep the process name.
    pub fn process(&mut self, process: &str, client_id: &str) -> &mut Self {
        self.processes.insert(process.into(), client_id.into());
        self
    }

    /// The broker's users and ACL (`auth_configured`, right after `run_started`).
    pub fn auth(
        &mut self,
        allow_anonymous: bool,
        users: &[(&str, &str)],
        acl: Option<&str>,
    ) -> &mut Self {
        let event = Event::AuthConfigured {
            allow_anonymous,
            users: users
                .iter()
                .map(|(name, password)| crate::trace::UserSpec {
                    name: (*name).into(),
                    password: (*password).into(),
                })
                .collect(),
            acl: acl.map(Into::into),
        };
        self.trace.events.insert(
            1,
            crate::trace::TraceEvent {
                at_us: 0,
                event,
                process: None,
            },
        );
        self
    }

    /// Sets the broker's queue bound in `run_started`.
    pub fn max_queued(&mut self, n: u64) -> &mut Self {
        if let Event::RunStarted {
            max_queued_messages,
            ..
        } = &mut self.trace.events[0].event
        {
            *max_queued_messages = Some(n);
        }
        self
    }

    /// Sets the broker's outbound window in `run_started`.
    pub fn max_inflight(&mut self, n: u64) -> &mut Self {
        if let Event::RunStarted { max_inflight, .. } = &mut self.trace.events[0].event {
            *max_inflight = Some(n);
        }
        self
    }

    /// Receive Maximum sent in `client`'s following CONNECTs.
    pub fn receive_maximum(&mut self, client: &str, n: u16) -> &mut Self {
        self.receive_maximum.insert(client.into(), n);
        self
    }

    /// A CONNACK accepted with the broker's Receive Maximum `broker_max` (5.0).
    pub fn connected_with_window(
        &mut self,
        client: &str,
        session_present: bool,
        broker_max: u16,
    ) -> &mut Self {
        let event = Event::Connected {
            client: client.into(),
            clean_start: !session_present,
            session_present,
            session_expiry_s: self.session_expiry_of(client),
            receive_maximum: Some(broker_max),
            shared_subscription_available: None,
        };
        self.push(event)
    }

    /// `client` sent the PUBLISH packet of `label` (QoS as requested) with identifier `id`.
    pub fn publish_sent(&mut self, client: &str, label: &str, id: u16, dup: bool) -> &mut Self {
        let qos = self.sent_of(label).qos;
        self.push(Event::PublishSent {
            client: client.into(),
            payload: label.into(),
            packet_id: id,
            qos,
            dup,
        })
    }

    /// The PUBLISH packet of `label` (QoS as requested) with identifier `id` reached `client`.
    pub fn publish_received(&mut self, client: &str, label: &str, id: u16, dup: bool) -> &mut Self {
        let qos = self.sent_of(label).qos;
        self.push(Event::PublishReceived {
            client: client.into(),
            payload: label.into(),
            packet_id: id,
            qos,
            dup,
        })
    }

    /// `client` sent `packet` (success) for identifier `id`, the exchange of `label`.
    pub fn ack_sent(&mut self, client: &str, packet: AckPacket, id: u16, label: &str) -> &mut Self {
        self.push(Event::AckSent {
            client: client.into(),
            packet,
            packet_id: id,
            payload: Some(label.into()),
            reason: None,
        })
    }

    /// `client` received `packet` (success) for identifier `id`, the exchange of `label`.
    pub fn ack_received(
        &mut self,
        client: &str,
        packet: AckPacket,
        id: u16,
        label: &str,
    ) -> &mut Self {
        self.push(Event::AckReceived {
            client: client.into(),
            packet,
            packet_id: id,
            payload: Some(label.into()),
            reason: None,
        })
    }

    pub fn at_ms(&mut self, ms: u64) -> &mut Self {
        assert!(ms * 1000 >= self.now_us, "a story never goes back in time");
        self.now_us = ms * 1000;
        self
    }

    pub fn after_ms(&mut self, ms: u64) -> &mut Self {
        self.now_us += ms * 1000;
        self
    }

    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Appends any event at the story's clock.
    pub fn push(&mut self, event: Event) -> &mut Self {
        let mut event = event;
        let process = event
            .client()
            .filter(|c| self.processes.contains_key(*c))
            .map(str::to_string);
        if let Some(p) = &process {
            event.set_client(&self.processes[p]);
        }
        self.trace.push_from(self.now_us, event, process);
        self
    }

    /// The protocol ("3.1.1" or "5.0") of `client`'s following connects (default: the
    /// story's).
    pub fn protocol(&mut self, client: &str, protocol: &str) -> &mut Self {
        self.protocols.insert(client.into(), protocol.into());
        self
    }

    /// Whether `client`'s following connects are 5.0.
    fn v5_of(&self, client: &str) -> bool {
        self.protocols
            .get(client)
            .map_or(self.v5, |p| p.starts_with('5'))
    }

    /// Keep-alive of `client`'s following connects (default 10 s).
    pub fn keep_alive(&mut self, client: &str, seconds: u16) -> &mut Self {
        self.keep_alive.insert(client.into(), seconds);
        self
    }

    /// Session expiry (5.0) of `client`'s following connects (default: never, 0xFFFFFFFF).
    pub fn session_expiry(&mut self, client: &str, seconds: u32) -> &mut Self {
        self.expiry.insert(client.into(), seconds);
        self
    }

    /// A will for `client`'s following connects; its payload is `<client>#will-<n>`.
    pub fn will(&mut self, client: &str, topic: &str, qos: u8, retain: bool) -> &mut Self {
        self.will_delayed(client, topic, qos, retain, 0)
    }

    /// A will with a delay interval (5.0).
    pub fn will_delayed(
        &mut self,
        client: &str,
        topic: &str,
        qos: u8,
        retain: bool,
        delay_s: u32,
    ) -> &mut Self {
        let will = WillSpec {
            topic: topic.into(),
            qos,
            retain,
            payload: String::new(),
            delay_s,
        };
        self.wills.insert(client.into(), will);
        self
    }

    /// The will label of `client`'s latest connect.
    pub fn will_label(&self, client: &str) -> String {
        format!(
            "{client}#will-{}",
            self.connects.get(client).copied().unwrap_or(0)
        )
    }

    /// CONNECT sent, without an answer yet.
    pub fn connecting(&mut self, client: &str, clean_start: bool) -> &mut Self {
        let n = {
            let n = self.connects.entry(client.into()).or_insert(0);
            *n += 1;
            *n
        };
        let will = self.wills.get(client).map(|w| WillSpec {
            payload: format!("{client}#will-{n}"),
            ..w.clone()
        });
        let event = Event::Connecting {
            client: client.into(),
            protocol: Some(self.protocols.get(client).unwrap_or(&self.protocol).clone()),
            clean_start,
            keep_alive_s: self.keep_alive.get(client).copied().unwrap_or(10),
            session_expiry_s: self.session_expiry_of(client),
            will,
            username: self.credentials.get(client).map(|c| c.0.clone()),
            password: self.credentials.get(client).and_then(|c| c.1.clone()),
            receive_maximum: self.receive_maximum.get(client).copied(),
        };
        self.push(event)
    }

    fn session_expiry_of(&self, client: &str) -> Option<u32> {
        self.v5_of(client)
            .then(|| self.expiry.get(client).copied().unwrap_or(u32::MAX))
    }

    /// CONNACK accepted for the latest CONNECT.
    pub fn connected(
        &mut self,
        client: &str,
        clean_start: bool,
        session_present: bool,
    ) -> &mut Self {
        self.connected_announcing(client, clean_start, session_present, None)
    }

    /// A CONNACK accepted announcing Shared Subscription Available 0 (5.0): the broker
    /// supports no `$share/...` filter on this connection.
    pub fn connected_without_shared(
        &mut self,
        client: &str,
        clean_start: bool,
        session_present: bool,
    ) -> &mut Self {
        self.connected_announcing(client, clean_start, session_present, Some(false))
    }

    /// A CONNACK accepted with its Shared Subscription Available as given.
    fn connected_announcing(
        &mut self,
        client: &str,
        clean_start: bool,
        session_present: bool,
        shared_subscription_available: Option<bool>,
    ) -> &mut Self {
        let event = Event::Connected {
            client: client.into(),
            clean_start,
            session_present,
            session_expiry_s: self.session_expiry_of(client),
            receive_maximum: None,
            shared_subscription_available,
        };
        self.push(event)
    }

    /// CONNECT and its accepted CONNACK at once.
    pub fn connect(&mut self, client: &str, clean_start: bool, session_present: bool) -> &mut Self {
        self.connecting(client, clean_start)
            .connected(client, clean_start, session_present)
    }

    pub fn connect_failed(&mut self, client: &str) -> &mut Self {
        self.push(Event::ConnectFailed {
            client: client.into(),
            reason: "closed".into(),
            code: None,
            session_present: None,
            protocol_error: None,
        })
    }

    /// The latest CONNECT refused by a CONNACK with `code` (as on the wire).
    pub fn connect_refused(&mut self, client: &str, code: u8) -> &mut Self {
        self.push(Event::ConnectFailed {
            client: client.into(),
            reason: format!("connection refused: 0x{code:02x}"),
            code: Some(code),
            session_present: None,
            protocol_error: None,
        })
    }

    /// The latest CONNECT answered by a CONNACK with Session Present `session_present` that
    /// the client rejected as a protocol error (DISCONNECT reason `reason`, 5.0).
    pub fn connack_rejected(
        &mut self,
        client: &str,
        session_present: bool,
        reason: u8,
    ) -> &mut Self {
        self.push(Event::ConnectFailed {
            client: client.into(),
            reason: format!("broker protocol error: 0x{reason:02x}"),
            code: None,
            session_present: Some(session_present),
            protocol_error: Some(reason),
        })
    }

    /// From now on `client` sends this user name and password in CONNECT.
    pub fn credentials(&mut self, client: &str, user: &str, password: Option<&str>) -> &mut Self {
        self.credentials
            .insert(client.into(), (user.into(), password.map(Into::into)));
        self
    }

    /// The client saw its connection close.
    pub fn lost(&mut self, client: &str) -> &mut Self {
        self.push(Event::ConnectionLost {
            client: client.into(),
            cause: LossCause::Closed,
            reason: None,
        })
    }

    /// The client closed its connection because the broker broke the protocol, sending
    /// DISCONNECT with `reason` (5.0).
    pub fn protocol_error(&mut self, client: &str, reason: u8) -> &mut Self {
        self.push(Event::ConnectionLost {
            client: client.into(),
            cause: LossCause::ProtocolError,
            reason: Some(reason),
        })
    }

    /// The broker sent DISCONNECT with `reason` (5.0) and closed.
    pub fn server_disconnect(&mut self, client: &str, reason: u8) -> &mut Self {
        self.push(Event::ConnectionLost {
            client: client.into(),
            cause: LossCause::ServerDisconnect,
            reason: Some(reason),
        })
    }

    /// The client's keep-alive gave up on the broker.
    pub fn timed_out(&mut self, client: &str) -> &mut Self {
        self.push(Event::ConnectionLost {
            client: client.into(),
            cause: LossCause::KeepAliveTimeout,
            reason: None,
        })
    }

    pub fn disconnect(&mut self, client: &str) -> &mut Self {
        self.push(Event::DisconnectSent {
            client: client.into(),
            with_will: false,
            session_expiry_s: None,
        })
    }

    /// A normal 5.0 DISCONNECT carrying the Session Expiry Interval `seconds`.
    pub fn disconnect_expiring(&mut self, client: &str, seconds: u32) -> &mut Self {
        self.push(Event::DisconnectSent {
            client: client.into(),
            with_will: false,
            session_expiry_s: Some(seconds),
        })
    }

    pub fn disconnect_with_will(&mut self, client: &str) -> &mut Self {
        self.push(Event::DisconnectSent {
            client: client.into(),
            with_will: true,
            session_expiry_s: None,
        })
    }

    /// SUBSCRIBE and a SUBACK granting `qos`.
    pub fn subscribe(&mut self, client: &str, filter: &str, qos: u8) -> &mut Self {
        self.subscribe_granted(client, filter, qos, Some(qos))
    }

    /// SUBSCRIBE asking `qos` and a SUBACK answering `granted`.
    pub fn subscribe_granted(
        &mut self,
        client: &str,
        filter: &str,
        qos: u8,
        granted: Option<u8>,
    ) -> &mut Self {
        self.subscribe_answered(client, filter, qos, SubOptions::default(), granted)
    }

    /// SUBSCRIBE with `options` and its SUBACK: `granted`, or the failure code of the version.
    fn subscribe_answered(
        &mut self,
        client: &str,
        filter: &str,
        qos: u8,
        options: SubOptions,
        granted: Option<u8>,
    ) -> &mut Self {
        self.subscribe_requested_with(client, filter, qos, options);
        let code = granted
            .is_none()
            .then_some(if self.v5_of(client) { 0x87 } else { 0x80 });
        self.push(Event::SubscribeGranted {
            client: client.into(),
            filter: filter.into(),
            granted,
            code,
        })
    }

    /// SUBSCRIBE sent, SUBACK not yet received.
    pub fn subscribe_requested(&mut self, client: &str, filter: &str, qos: u8) -> &mut Self {
        self.subscribe_requested_with(client, filter, qos, SubOptions::default())
    }

    /// SUBSCRIBE with 5.0 options sent, SUBACK not yet received.
    pub fn subscribe_requested_with(
        &mut self,
        client: &str,
        filter: &str,
        qos: u8,
        options: SubOptions,
    ) -> &mut Self {
        self.push(Event::SubscribeRequested {
            client: client.into(),
            filter: filter.into(),
            qos,
            options,
        })
    }

    /// SUBSCRIBE with 5.0 options and its SUBACK granting `qos`.
    pub fn subscribe_with(
        &mut self,
        client: &str,
        filter: &str,
        qos: u8,
        options: SubOptions,
    ) -> &mut Self {
        self.subscribe_answered(client, filter, qos, options, Some(qos))
    }

    /// UNSUBSCRIBE and its UNSUBACK.
    pub fn unsubscribe(&mut self, client: &str, filter: &str) -> &mut Self {
        self.unsubscribe_requested(client, filter)
            .unsubscribed(client, filter)
    }

    /// UNSUBSCRIBE sent, not yet answered.
    pub fn unsubscribe_requested(&mut self, client: &str, filter: &str) -> &mut Self {
        self.push(Event::UnsubscribeRequested {
            client: client.into(),
            filter: filter.into(),
        })
    }

    /// The UNSUBACK for `filter`.
    pub fn unsubscribed(&mut self, client: &str, filter: &str) -> &mut Self {
        self.push(Event::Unsubscribed {
            client: client.into(),
            filter: filter.into(),
        })
    }

    /// A workload publish request; returns its label `<client>#<n>`.
    pub fn publish(&mut self, client: &str, topic: &str, qos: u8) -> String {
        self.request(client, topic, qos, false)
    }

    /// A retained workload publish request; returns its label.
    pub fn publish_retained(&mut self, client: &str, topic: &str, qos: u8) -> String {
        self.request(client, topic, qos, true)
    }

    /// A workload publish request with a 5.0 message expiry interval; returns its label.
    pub fn publish_expiring(
        &mut self,
        client: &str,
        topic: &str,
        qos: u8,
        expiry_s: u32,
    ) -> String {
        let label = self.request(client, topic, qos, false);
        if let Some(Event::PublishRequested {
            message_expiry_s, ..
        }) = self.trace.events.last_mut().map(|e| &mut e.event)
        {
            *message_expiry_s = Some(expiry_s);
        }
        label
    }

    fn request(&mut self, client: &str, topic: &str, qos: u8, retain: bool) -> String {
        let n = {
            let n = self.seq.entry(client.into()).or_insert(0);
            *n += 1;
            *n
        };
        let label = format!("{client}#{n}");
        self.request_labelled(client, topic, qos, retain, &label, 32);
        label
    }

    /// A publish request carrying 5.0 application properties; deliveries told with
    /// [`deliver`](Story::deliver) and friends carry the same ones.
    pub fn publish_with(
        &mut self,
        client: &str,
        topic: &str,
        qos: u8,
        retain: bool,
        properties: MessageProps,
    ) -> String {
        let label = self.request(client, topic, qos, retain);
        if let Some(Event::PublishRequested { properties: p, .. }) =
            self.trace.events.last_mut().map(|e| &mut e.event)
        {
            *p = properties.clone();
        }
        if let Some(sent) = self.sent.get_mut(&label) {
            sent.properties = properties;
        }
        label
    }

    /// A publish request with a given label and size (an empty label with size 0 and retain
    /// is a retained clear).
    pub fn request_labelled(
        &mut self,
        client: &str,
        topic: &str,
        qos: u8,
        retain: bool,
        label: &str,
        size: u32,
    ) -> &mut Self {
        self.sent.insert(
            label.into(),
            Sent {
                topic: topic.into(),
                qos,
                size,
                properties: MessageProps::default(),
            },
        );
        self.push(Event::PublishRequested {
            client: client.into(),
            topic: topic.into(),
            qos,
            retain,
            payload: label.into(),
            size,
            message_expiry_s: None,
            properties: MessageProps::default(),
        })
    }

    /// A retained clear (empty payload, retain set) of `topic`.
    pub fn clear_retained(&mut self, client: &str, topic: &str, qos: u8) -> &mut Self {
        self.request_labelled(client, topic, qos, true, "", 0)
    }

    /// PUBACK / PUBCOMP received for `label`.
    pub fn ack(&mut self, client: &str, label: &str) -> &mut Self {
        self.push(Event::PublishAcked {
            client: client.into(),
            payload: label.into(),
        })
    }

    /// The client told the application `label` was never confirmed.
    pub fn publish_lost(&mut self, client: &str, label: &str) -> &mut Self {
        self.push(Event::PublishLost {
            client: client.into(),
            payload: label.into(),
        })
    }

    /// A live delivery of `label` at its published QoS, no DUP, no retain flag.
    pub fn deliver(&mut self, to: &str, label: &str) -> &mut Self {
        let qos = self.sent_of(label).qos;
        self.deliver_as(to, label, qos, false, false)
    }

    /// A redelivery (DUP set) of `label` at its published QoS.
    pub fn redeliver(&mut self, to: &str, label: &str) -> &mut Self {
        let qos = self.sent_of(label).qos;
        self.deliver_as(to, label, qos, false, true)
    }

    /// A delivery of `label` sent because of a new subscription (retain flag set).
    pub fn deliver_retained(&mut self, to: &str, label: &str, qos: u8) -> &mut Self {
        self.deliver_as(to, label, qos, true, false)
    }

    /// A delivery of `label` with explicit flags; topic and size come from its request.
    pub fn deliver_as(
        &mut self,
        to: &str,
        label: &str,
        qos: u8,
        retain: bool,
        dup: bool,
    ) -> &mut Self {
        let properties = self.sent_of(label).properties;
        self.deliver_full(to, label, qos, retain, dup, properties, &[])
    }

    /// A delivery of `label` with explicit flags, properties and subscription identifiers;
    /// topic and size come from its request.
    #[allow(clippy::too_many_arguments)]
    pub fn deliver_full(
        &mut self,
        to: &str,
        label: &str,
        qos: u8,
        retain: bool,
        dup: bool,
        properties: MessageProps,
        subscription_ids: &[u32],
    ) -> &mut Self {
        let sent = self.sent_of(label);
        self.push(Event::Delivered {
            client: to.into(),
            topic: sent.topic,
            qos,
            retain,
            dup,
            packet_id: None,
            payload: label.into(),
            size: sent.size,
            message_expiry_s: None,
            properties,
            subscription_ids: subscription_ids.to_vec(),
        })
    }

    /// A delivery of `label` as the PUBLISH carrying it said: flags, packet identifier and
    /// message expiry interval (properties are the published ones).
    #[allow(clippy::too_many_arguments)]
    pub fn deliver_packet(
        &mut self,
        to: &str,
        label: &str,
        qos: u8,
        retain: bool,
        dup: bool,
        packet_id: Option<u16>,
        message_expiry_s: Option<u32>,
    ) -> &mut Self {
        let sent = self.sent_of(label);
        self.push(Event::Delivered {
            client: to.into(),
            topic: sent.topic,
            qos,
            retain,
            dup,
            packet_id,
            payload: label.into(),
            size: sent.size,
            message_expiry_s,
            properties: sent.properties,
            subscription_ids: Vec::new(),
        })
    }

    /// A first delivery of `label` at its published QoS, retain 0, carrying its published
    /// properties and the subscription identifiers `ids`.
    pub fn deliver_ids(&mut self, to: &str, label: &str, ids: &[u32]) -> &mut Self {
        let sent = self.sent_of(label);
        self.deliver_full(to, label, sent.qos, false, false, sent.properties, ids)
    }

    /// A delivery of the will of `from`'s latest connect.
    pub fn deliver_will(&mut self, to: &str, from: &str) -> &mut Self {
        let n = self.connects.get(from).copied().unwrap_or(0);
        self.deliver_will_of(to, from, n)
    }

    /// A delivery of the will of `from`'s `n`-th connect.
    pub fn deliver_will_of(&mut self, to: &str, from: &str, n: u64) -> &mut Self {
        self.deliver_will_flagged(to, from, n, false)
    }

    /// A delivery of the will of `from`'s latest connect with RETAIN 1: forwarded through a
    /// Retain As Published subscription, or a retained copy.
    pub fn deliver_will_retained(&mut self, to: &str, from: &str) -> &mut Self {
        let n = self.connects.get(from).copied().unwrap_or(0);
        self.deliver_will_flagged(to, from, n, true)
    }

    fn deliver_will_flagged(&mut self, to: &str, from: &str, n: u64, retain: bool) -> &mut Self {
        let will = self
            .wills
            .get(from)
            .expect("the story gave this client a will")
            .clone();
        let label = format!("{from}#will-{n}");
        self.push(Event::Delivered {
            client: to.into(),
            topic: will.topic,
            qos: will.qos,
            retain,
            dup: false,
            packet_id: None,
            payload: label,
            size: 0,
            message_expiry_s: None,
            properties: MessageProps::default(),
            subscription_ids: Vec::new(),
        })
    }

    fn sent_of(&self, label: &str) -> Sent {
        self.sent
            .get(label)
            .cloned()
            .unwrap_or_else(|| panic!("the story never published {label:?}"))
    }

    pub fn fault(&mut self, fault: Fault) -> &mut Self {
        self.push(Event::FaultApplied { fault })
    }

    pub fn heal(&mut self, fault: Fault) -> &mut Self {
        self.push(Event::FaultHealed { fault })
    }

    /// A cut of `client`'s connection; the client sees it closed.
    pub fn cut(&mut self, client: &str) -> &mut Self {
        self.fault(Fault::Cut {
            client: client.into(),
        })
        .lost(client)
    }

    pub fn crash(&mut self, client: &str) -> &mut Self {
        self.fault(Fault::ClientCrash {
            client: client.into(),
        })
    }

    pub fn restart(&mut self, client: &str) -> &mut Self {
        self.heal(Fault::ClientCrash {
            client: client.into(),
        })
    }

    pub fn power_off(&mut self, client: &str) -> &mut Self {
        self.fault(Fault::ClientPowerOff {
            client: client.into(),
        })
    }

    pub fn black_hole(&mut self, client: &str) -> &mut Self {
        self.fault(Fault::BlackHole {
            client: client.into(),
        })
    }

    pub fn heal_black_hole(&mut self, client: &str) -> &mut Self {
        self.heal(Fault::BlackHole {
            client: client.into(),
        })
    }

    /// A partition between `client` and the broker, both ways.
    pub fn partition(&mut self, client: &str) -> &mut Self {
        self.fault(Fault::Partition {
            from: client.into(),
            to: BROKER.into(),
            one_way: false,
        })
    }

    pub fn heal_partition(&mut self, client: &str) -> &mut Self {
        self.heal(Fault::Partition {
            from: client.into(),
            to: BROKER.into(),
            one_way: false,
        })
    }

    /// A broker crash: every connected client sees its connection close.
    pub fn broker_crash(&mut self) -> &mut Self {
        self.fault(Fault::BrokerCrash)
    }

    pub fn broker_restart(&mut self) -> &mut Self {
        self.heal(Fault::BrokerCrash)
    }

    /// Faults are over: the settle phase begins.
    pub fn settle(&mut self) -> &mut Self {
        self.push(Event::SettleStarted)
    }

    /// The trace so far, without ending it.
    pub fn trace(&self) -> Trace {
        self.trace.clone()
    }

    /// The trace as it would be if the story ended now (the story itself goes on).
    pub fn trace_ended(&self) -> Trace {
        let mut copy = Story {
            trace: self.trace.clone(),
            now_us: self.now_us,
            ..Story::new("3.1.1", Persistence::None)
        };
        copy.end()
    }

    /// Ends the story 1 s after the last event (with a settle phase if none was told), and
    /// returns the trace.
    pub fn end(&mut self) -> Trace {
        if !self
            .trace
            .events
            .iter()
            .any(|e| e.event == Event::SettleStarted)
        {
            self.settle();
        }
        self.after_ms(1000).push(Event::RunEnded);
        self.trace.clone()
    }
}
