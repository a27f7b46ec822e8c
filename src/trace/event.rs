//! The events of a trace: what the clients and the network observed, never broker internals.
//!
//! Each event is one JSON object on one line. Field order is the declaration order below and
//! never changes: `at_us` first, then `event` (the variant name in snake_case), then the
//! variant's fields. QoS values are the integers 0, 1 and 2; durations that are MQTT protocol
//! values (keep-alive, session expiry, will delay) stay in seconds as on the wire, and every
//! instant is `at_us`, virtual microseconds since the run started.
//!
//! Messages are named by their payload label (see [`super::payload`]): `sensor-1#17` for the
//! 17th workload message of `sensor-1`, `sensor-1#will-3` for its will on its third connect.

use serde::{Deserialize, Serialize};

/// The node name of the broker in faults (client nodes are named by their process name, which
/// is their client id unless the scenario gives the client another `client_id`).
pub const BROKER: &str = "broker";

/// One line of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Virtual microseconds since the run started; never decreases along a trace.
    pub at_us: u64,
    #[serde(flatten)]
    pub event: Event,
    /// The client process (node) that recorded the event, when its name differs from the MQTT
    /// client identifier in `client`: several processes may use one client identifier (a
    /// session takeover). Absent when the process is named by its client identifier, and on
    /// events that are not a client's. Written last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
}

impl TraceEvent {
    /// The process that recorded a client's event: `process` if set, else the event's client
    /// identifier; `None` for events that are not a client's.
    pub fn process(&self) -> Option<&str> {
        self.process.as_deref().or_else(|| self.event.client())
    }
}

/// What the broker keeps across a crash (a scenario's `[broker] persistence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// A crash loses every session, queued message and retained message (the default).
    #[default]
    None,
    /// Sessions, inflight and queued messages and retained messages survive a crash.
    Durable,
}

/// Why a client saw its connection end (it did not send DISCONNECT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossCause {
    /// The stream closed or failed (a cut, the broker closing it, a broker crash).
    Closed,
    /// The client's own keep-alive gave up waiting for the broker.
    KeepAliveTimeout,
    /// The broker sent DISCONNECT (5.0) before closing; `reason` in the event.
    ServerDisconnect,
    /// The client closed the connection because the broker broke the protocol.
    ProtocolError,
}

/// A will as configured on one CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WillSpec {
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    /// The payload label (see [`super::payload`]); should name the client and the connect,
    /// `<client>#will-<n>`.
    pub payload: String,
    /// Will delay interval in seconds (5.0; 0 for 3.1.1).
    pub delay_s: u32,
}

/// The 5.0 application properties of one message, as a client sent them (`publish_requested`)
/// or received them (`delivered`). Each field is written only when present, and the whole
/// object only when some field is: a 3.1.1 trace, or a 5.0 one without properties, looks as if
/// this did not exist. Message expiry is recorded apart (`message_expiry_s`), topic aliases and
/// subscription identifiers are not application properties.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageProps {
    /// Payload Format Indicator: 0 unspecified bytes, 1 UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_topic: Option<String>,
    /// Correlation Data as text if it is UTF-8, otherwise `hex:` and its bytes in lower-case hex
    /// (the same rule as payload labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_data: Option<String>,
    /// User properties in the order they were carried; a name may repeat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<(String, String)>,
}

impl MessageProps {
    pub fn is_empty(&self) -> bool {
        *self == MessageProps::default()
    }
}

/// The 5.0 options of one subscription as sent in SUBSCRIBE, beyond its QoS. Each field is
/// written only when it is not the default, and the whole object only when one is not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubOptions {
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_local: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub retain_as_published: bool,
    /// 0: send retained messages at every subscribe, 1: only if the subscription is new,
    /// 2: never.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retain_handling: u8,
    /// The Subscription Identifier of the SUBSCRIBE that carried this filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
}

impl SubOptions {
    pub fn is_default(&self) -> bool {
        *self == SubOptions::default()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// One packet of the QoS 1 and 2 acknowledgement handshakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckPacket {
    Puback,
    Pubrec,
    Pubrel,
    Pubcomp,
}

impl AckPacket {
    /// Whether this packet, with this reason code (`None`: success), ends its exchange and
    /// frees the packet identifier: PUBACK, PUBCOMP, or a PUBREC with an error code (5.0).
    pub fn ends_exchange(self, reason: Option<u8>) -> bool {
        match self {
            AckPacket::Puback | AckPacket::Pubcomp => true,
            AckPacket::Pubrec => reason.is_some_and(|r| r >= 0x80),
            AckPacket::Pubrel => false,
        }
    }
}

/// A user of the broker's password file, as an `auth_configured` event lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSpec {
    pub name: String,
    pub password: String,
}

/// A fault, as applied and later healed. A fault with no `fault_healed` event stays applied
/// until the end of the run, except `cut`, which is instantaneous.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The client's connection is closed; both ends see it closed. Instantaneous.
    Cut { client: String },
    /// The client's connection passes nothing in either direction and does not close.
    BlackHole { client: String },
    /// Extra one-way delay on the client's connection.
    Delay { client: String, extra_us: u64 },
    /// Writes on the client's connection are split into small fragments.
    SplitWrites { client: String },
    /// Nothing passes from `from` to `to` (and back, unless `one_way`). Nodes are client ids
    /// or [`BROKER`].
    Partition {
        from: String,
        to: String,
        one_way: bool,
    },
    /// The client process is gone; its connection closes. Healed = restarted (fresh memory).
    ClientCrash { client: String },
    /// The client machine goes silent; its connection neither closes nor answers. Healed =
    /// powered on again and restarted (fresh memory).
    ClientPowerOff { client: String },
    /// The broker process is gone; every connection closes. Healed = restarted; what it kept
    /// depends on [`Persistence`].
    BrokerCrash,
    /// The node (client id or [`BROKER`]) stops running; its connections stay open.
    Pause { node: String },
    /// Every sync of the broker's disk fails (persistence `durable`).
    SyncError,
    /// The broker's disk is full (persistence `durable`).
    DiskFull,
    /// Every sync of the broker's disk takes `latency_ms` (persistence `durable`).
    SlowSync { latency_ms: u64 },
}

/// Everything a trace records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// First line of every trace: the settings the checkers depend on.
    RunStarted {
        scenario: String,
        seed: u64,
        /// "3.1.1" or "5.0".
        protocol: String,
        persistence: Persistence,
        /// The broker's bound on queued messages per session, if any.
        max_queued_messages: Option<u64>,
        /// The broker's outbound inflight window per session, if any (informative).
        max_inflight: Option<u64>,
    },
    /// Right after `run_started` when the broker checks clients: whether anonymous clients may
    /// connect, the users it knows with their passwords (a test fixture's), and its ACL in
    /// the ACL file syntax (none: everything is allowed). The "acl" checker judges by these.
    AuthConfigured {
        allow_anonymous: bool,
        users: Vec<UserSpec>,
        acl: Option<String>,
    },
    /// Every fault has healed and none is applied from here on: obligations that arose before
    /// this instant (acknowledged publishes, wills due, retained values owed) must be met by
    /// `run_ended`.
    SettleStarted,
    /// Last line of a complete trace.
    RunEnded,
    FaultApplied {
        fault: Fault,
    },
    FaultHealed {
        fault: Fault,
    },
    /// A fault the lab caused without seeing its instant (a broker crash by a user's command
    /// against a target) has taken effect by now: it struck between its `fault_applied` and
    /// here. The checkers judge the run with the fault at both ends of that window; what holds
    /// at one end only is undecided.
    FaultTookEffect {
        fault: Fault,
    },
    /// The client sent CONNECT.
    Connecting {
        client: String,
        /// The protocol version of this CONNECT: "3.1.1" or "5.0" (absent in traces written
        /// before it was recorded: then a session expiry marks 5.0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<String>,
        clean_start: bool,
        keep_alive_s: u16,
        /// Session expiry interval (5.0); `None` for 3.1.1.
        session_expiry_s: Option<u32>,
        will: Option<WillSpec>,
        /// The user name sent, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        /// The password sent (as text, lossy for non-UTF-8 bytes), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// The Receive Maximum sent (5.0), if any: QoS 1 and 2 publishes the broker may have
        /// unacknowledged towards this client on the connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receive_maximum: Option<u16>,
    },
    /// The client received a successful CONNACK for its latest `connecting`.
    Connected {
        client: String,
        clean_start: bool,
        session_present: bool,
        session_expiry_s: Option<u32>,
        /// The broker's Receive Maximum from the CONNACK (5.0), if it sent one: QoS 1 and 2
        /// publishes the client may have unacknowledged towards the broker on the connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receive_maximum: Option<u16>,
        /// The CONNACK's Shared Subscription Available (5.0, property 0x2A), when it carried
        /// one: `false` announces that the broker supports no `$share/...` filter on this
        /// connection. Absent (no property, and always in 3.1.1) means available.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shared_subscription_available: Option<bool>,
    },
    /// The latest `connecting` ended without a successful CONNACK (refused or closed first).
    ConnectFailed {
        client: String,
        reason: String,
        /// The CONNACK return code (3.1.1) or reason code (5.0) as on the wire, when a CONNACK
        /// refused the connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u8>,
        /// The Session Present flag of the CONNACK that arrived for this CONNECT, whether it
        /// refused the connection or the client rejected it; absent when no CONNACK arrived.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_present: Option<bool>,
        /// When the client rejected the broker's answer as a protocol error: the reason code of
        /// the DISCONNECT it sent (5.0) or would have sent (3.1.1); absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol_error: Option<u8>,
    },
    /// An established connection ended without the client sending DISCONNECT.
    ConnectionLost {
        client: String,
        cause: LossCause,
        /// The reason code of the DISCONNECT sent (or, 3.1.1, that would have been sent) with
        /// `protocol_error`, or received with `server_disconnect`; absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<u8>,
    },
    /// The client sent DISCONNECT and closed: normal (will discarded) or, in 5.0, reason 0x04
    /// "disconnect with will message".
    DisconnectSent {
        client: String,
        with_will: bool,
        /// The 5.0 Session Expiry Interval the DISCONNECT carried, in seconds; absent when none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_expiry_s: Option<u32>,
    },
    /// One topic filter of a SUBSCRIBE sent.
    SubscribeRequested {
        client: String,
        filter: String,
        qos: u8,
        /// 5.0 options and subscription identifier; absent when all are defaults.
        #[serde(default, skip_serializing_if = "SubOptions::is_default")]
        options: SubOptions,
    },
    /// The SUBACK return code for that filter: the granted QoS, or `None` for a failure.
    SubscribeGranted {
        client: String,
        filter: String,
        granted: Option<u8>,
        /// For a failure: the SUBACK code as on the wire (3.1.1 0x80, 5.0 a reason code).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u8>,
    },
    /// One topic filter of an UNSUBSCRIBE sent.
    UnsubscribeRequested {
        client: String,
        filter: String,
    },
    /// The UNSUBACK for it.
    Unsubscribed {
        client: String,
        filter: String,
    },
    /// The application asked the client to publish.
    PublishRequested {
        client: String,
        topic: String,
        qos: u8,
        retain: bool,
        /// The payload label.
        payload: String,
        /// The payload length in bytes.
        size: u32,
        /// The 5.0 message expiry interval sent with the PUBLISH, in seconds; absent when none
        /// was sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_expiry_s: Option<u32>,
        /// The 5.0 application properties sent with the PUBLISH; absent when none were.
        #[serde(default, skip_serializing_if = "MessageProps::is_empty")]
        properties: MessageProps,
    },
    /// The QoS 1 or 2 handshake completed (PUBACK or PUBCOMP received). Matches the oldest
    /// unacknowledged request of `client` with this payload label.
    PublishAcked {
        client: String,
        payload: String,
    },
    /// The client told the application this publish was never confirmed (its session was
    /// gone at reconnect, or it gave up).
    PublishLost {
        client: String,
        payload: String,
    },
    /// A QoS 1 or 2 PUBLISH packet the client sent, first send or resend. `payload` is the
    /// message's label.
    PublishSent {
        client: String,
        payload: String,
        packet_id: u16,
        qos: u8,
        dup: bool,
    },
    /// A QoS 1 or 2 PUBLISH packet that reached the client, whether or not the client core
    /// hands it to the application (a QoS 2 resend it already holds is not handed out again).
    PublishReceived {
        client: String,
        payload: String,
        packet_id: u16,
        qos: u8,
        dup: bool,
    },
    /// A PUBACK, PUBREC, PUBREL or PUBCOMP the client sent. `payload` is the label of the
    /// message it acknowledges when this process saw that message's PUBLISH.
    AckSent {
        client: String,
        packet: AckPacket,
        packet_id: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<String>,
        /// The reason code when it is not success (5.0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<u8>,
    },
    /// A PUBACK, PUBREC, PUBREL or PUBCOMP the client received; fields as `ack_sent`.
    AckReceived {
        client: String,
        packet: AckPacket,
        packet_id: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<u8>,
    },
    /// The client core handed an application message to the application. For inbound QoS 2
    /// that is once per exchange: the client's duplicate suppression is part of what is judged.
    /// `dup` and `retain` are the flags of the PUBLISH packet that carried it.
    Delivered {
        client: String,
        topic: String,
        qos: u8,
        retain: bool,
        dup: bool,
        /// The packet identifier of the PUBLISH (QoS 1 and 2); absent at QoS 0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        packet_id: Option<u16>,
        payload: String,
        size: u32,
        /// The 5.0 message expiry interval the PUBLISH carried, in seconds (what remained of
        /// the publisher's); absent when none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_expiry_s: Option<u32>,
        /// The 5.0 application properties the PUBLISH carried; absent when none.
        #[serde(default, skip_serializing_if = "MessageProps::is_empty")]
        properties: MessageProps,
        /// The Subscription Identifiers the PUBLISH carried, in packet order; absent when none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        subscription_ids: Vec<u32>,
    },
    /// The client received one of the broker's own figures: a QoS 0 message on a
    /// `$SYS/broker/...` topic whose payload is no workload or will label (see
    /// `broker/sys.rs`). Not a `delivered`: nobody published it.
    Figure {
        client: String,
        topic: String,
        /// The payload, as text (`hex:...` if it is not UTF-8).
        value: String,
        /// The PUBLISH's retain flag: set for the current figures sent to a new subscription.
        retain: bool,
    },
}

/// `$body` on the `client` field of every event that is about one client, `$other` otherwise:
/// the one list of those events.
macro_rules! on_client {
    ($event:expr, $client:ident => $body:expr, $other:expr) => {
        match $event {
            Event::Connecting { $client, .. }
            | Event::Connected { $client, .. }
            | Event::ConnectFailed { $client, .. }
            | Event::ConnectionLost { $client, .. }
            | Event::DisconnectSent { $client, .. }
            | Event::SubscribeRequested { $client, .. }
            | Event::SubscribeGranted { $client, .. }
            | Event::UnsubscribeRequested { $client, .. }
            | Event::Unsubscribed { $client, .. }
            | Event::PublishRequested { $client, .. }
            | Event::PublishAcked { $client, .. }
            | Event::PublishLost { $client, .. }
            | Event::PublishSent { $client, .. }
            | Event::PublishReceived { $client, .. }
            | Event::AckSent { $client, .. }
            | Event::AckReceived { $client, .. }
            | Event::Delivered { $client, .. }
            | Event::Figure { $client, .. } => $body,
            _ => $other,
        }
    };
}

impl Event {
    /// The packet identifier of the PUBLISH or acknowledgement this event records, if any.
    pub fn packet_id(&self) -> Option<u16> {
        match self {
            Event::PublishSent { packet_id, .. }
            | Event::PublishReceived { packet_id, .. }
            | Event::AckSent { packet_id, .. }
            | Event::AckReceived { packet_id, .. } => Some(*packet_id),
            Event::Delivered { packet_id, .. } => *packet_id,
            _ => None,
        }
    }

    /// The client this event is about, if it is about one client.
    pub fn client(&self) -> Option<&str> {
        on_client!(self, client => Some(client.as_str()), None)
    }

    /// Renames the client of a client's event (nothing for other events).
    pub fn set_client(&mut self, id: &str) {
        on_client!(self, client => *client = id.to_string(), ())
    }
}

impl Fault {
    /// Whether this fault can delay or break traffic between `client` and the broker. Split
    /// writes cannot: a correct framer reassembles them.
    pub fn disturbs(&self, client: &str) -> bool {
        match self {
            Fault::SplitWrites { .. } => false,
            Fault::Cut { client: c }
            | Fault::BlackHole { client: c }
            | Fault::Delay { client: c, .. }
            | Fault::ClientCrash { client: c }
            | Fault::ClientPowerOff { client: c } => c == client,
            Fault::Partition { from, to, .. } => {
                (from == client && to == BROKER) || (from == BROKER && to == client)
            }
            // A store that cannot write makes the broker close every connection.
            Fault::BrokerCrash | Fault::SyncError | Fault::DiskFull => true,
            // Acknowledgements wait longer; no connection is closed for it.
            Fault::SlowSync { .. } => false,
            Fault::Pause { node } => node == client || node == BROKER,
        }
    }

    /// Whether the fault is over the moment it happens.
    pub fn is_instant(&self) -> bool {
        matches!(self, Fault::Cut { .. })
    }
}
