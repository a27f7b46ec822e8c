//! What the client core hands out: actions for the shell ([`ClientAction`]), events for the
//! application ([`ClientEvent`]), request handles ([`RequestId`]) and the error and cause types.
//!
//! Plain data only; nothing here decides anything.

use std::time::Duration;

use crate::codec::{EncodeError, Packet, Publish, ReasonCode, TopicError};

/// A handle for one application request (publish, subscribe, unsubscribe), unique for the
/// lifetime of a [`Client`](super::Client) and increasing in call order. Not the MQTT packet
/// identifier: a request keeps its id across reconnects while its packet identifier may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What the shell must do, in the order returned.
// Packets are large; actions are drained right after each call, so boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Open a transport to the broker, then call
    /// [`handle_transport_up`](super::Client::handle_transport_up) or
    /// [`handle_transport_down`](super::Client::handle_transport_down).
    OpenTransport,
    /// Encode this packet with [`Client::protocol`](super::Client::protocol) and write it.
    Send(Packet),
    /// Close (or abort opening) the current transport once the packets before this action are
    /// written. The core already considers it gone: report nothing more about that transport.
    CloseTransport,
}

/// Why a transport went away. The shell reports [`DownCause::PeerClosed`] and
/// [`DownCause::Io`]; the other causes are decided by the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownCause {
    /// The broker closed the connection (end of stream).
    PeerClosed,
    /// The transport failed: refused, reset, unreachable, timed out.
    Io(std::io::ErrorKind),
    /// No CONNACK within `connect_timeout` of asking for a transport.
    ConnectTimeout,
    /// Nothing arrived within `ping_timeout` of a PINGREQ.
    KeepAliveTimeout,
    /// The broker answered CONNECT with this error reason.
    Refused(ReasonCode),
    /// The broker sent DISCONNECT (5.0) with this reason.
    ServerDisconnect(ReasonCode),
    /// The broker broke the protocol; the reason was sent in DISCONNECT (5.0).
    ProtocolError(ReasonCode),
}

impl DownCause {
    /// True when reconnecting cannot help: the broker refused or dismissed this client for a
    /// reason that another attempt with the same configuration will meet again, or another
    /// connection took the session over (reconnecting would take it back, forever).
    pub fn is_permanent(self) -> bool {
        use ReasonCode::*;
        match self {
            DownCause::Refused(r) | DownCause::ServerDisconnect(r) => matches!(
                r,
                UnsupportedProtocolVersion
                    | ClientIdentifierNotValid
                    | BadUserNameOrPassword
                    | NotAuthorized
                    | Banned
                    | BadAuthenticationMethod
                    | SessionTakenOver
                    | UseAnotherServer
                    | ServerMoved
            ),
            _ => false,
        }
    }
}

impl std::fmt::Display for DownCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownCause::PeerClosed => f.write_str("closed by the broker"),
            DownCause::Io(kind) => write!(f, "transport error: {kind}"),
            DownCause::ConnectTimeout => f.write_str("no CONNACK in time"),
            DownCause::KeepAliveTimeout => f.write_str("keep-alive timeout"),
            DownCause::Refused(r) => write!(f, "connection refused: {r:?}"),
            DownCause::ServerDisconnect(r) => write!(f, "disconnected by the broker: {r:?}"),
            DownCause::ProtocolError(r) => write!(f, "broker protocol error: {r:?}"),
        }
    }
}

/// Why a publish will never be confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// It was in flight and the broker reconnected us without the session (session present 0):
    /// the broker no longer knows it. Not re-sent (see docs/client.md).
    SessionLost,
    /// The outbox was full and the buffer policy dropped it.
    BufferOverflow,
    /// Larger than the broker's maximum packet size (learned at CONNACK).
    PacketTooLarge,
    /// Its QoS is above the broker's maximum QoS (learned at CONNACK).
    QoSNotSupported,
    /// It is retained and the broker does not support retain (learned at CONNACK).
    RetainNotSupported,
}

/// What the application sees, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// CONNACK accepted the connection. `properties` are the broker's (5.0).
    Connected {
        session_present: bool,
        reason: ReasonCode,
        properties: crate::codec::Properties,
    },
    /// A transport attempt ended without our DISCONNECT: lost, refused, timed out, dismissed.
    ConnectionLost { cause: DownCause },
    /// The next transport will be asked for after `delay` (attempt 1 is the first retry).
    Reconnecting { attempt: u32, delay: Duration },
    /// An inbound application message. QoS 2 messages arrive here exactly once.
    Message(Publish),
    /// A QoS 0 publish was handed to the shell for writing.
    PublishSent { id: RequestId },
    /// QoS 1: PUBACK. QoS 2: PUBCOMP, or a PUBREC with an error reason (5.0).
    PublishAcked { id: RequestId, reason: ReasonCode },
    /// The publish will never be confirmed.
    PublishLost { id: RequestId, why: LostReason },
    Subscribed {
        id: RequestId,
        reasons: Vec<ReasonCode>,
    },
    /// `reasons` is empty for 3.1.1 (UNSUBACK carries none).
    Unsubscribed {
        id: RequestId,
        reasons: Vec<ReasonCode>,
    },
    /// Our DISCONNECT was sent (or the attempt in progress abandoned) after
    /// [`disconnect`](super::Client::disconnect).
    Disconnected,
}

/// A request the core refused at once; nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("invalid topic name: {0}")]
    InvalidTopic(TopicError),
    #[error("invalid topic filter: {0}")]
    InvalidFilter(TopicError),
    #[error("a subscribe or unsubscribe needs at least one filter")]
    NoFilters,
    #[error("packet of {size} bytes exceeds the maximum packet size {max}")]
    PacketTooLarge { size: usize, max: u32 },
    /// The request cannot be encoded as given (a property the packet may not carry, a string
    /// too long, ...).
    #[error("cannot be encoded: {0}")]
    Unencodable(EncodeError),
    #[error("the broker's maximum QoS is {0:?}")]
    QoSNotSupported(crate::codec::QoS),
    #[error("the broker does not support retained messages")]
    RetainNotSupported,
    #[error("the outbox is full ({0} requests)")]
    BufferFull(usize),
}
