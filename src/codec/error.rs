//! Decode and encode errors: one variant per broken rule, each naming the normative statement
//! (`rule()`) and the MQTT 5.0 reason code it maps to (`reason_code()`).
//!
//! This is the one place where codec failures become reason codes. Statement ids are those of
//! MQTT 5.0 unless marked "(3.1.1)"; rules without a statement id name their section ("§2.1.4").

use super::ReasonCode;
use super::topic::TopicError;

/// A peer sent bytes that are not a valid MQTT packet. The connection should be closed, in 5.0
/// after a DISCONNECT (or CONNACK) carrying [`DecodeError::reason_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet type 0 is reserved")]
    ReservedPacketType,
    #[error("AUTH (packet type 15) does not exist in MQTT {protocol}")]
    AuthNotInProtocol { protocol: super::Protocol },
    #[error("reserved fixed-header flags {flags:#06b} in {packet}")]
    InvalidFlags { packet: &'static str, flags: u8 },
    #[error("PUBLISH with QoS 3")]
    QoS3,
    #[error("PUBLISH with DUP set and QoS 0")]
    DupWithQoS0,
    #[error("remaining length longer than 4 bytes")]
    RemainingLengthTooLong,
    #[error("variable byte integer in {what} longer than 4 bytes")]
    VarintTooLong { what: &'static str },
    #[error("variable byte integer in {what} not in its shortest form")]
    VarintNotMinimal { what: &'static str },
    #[error("packet of {size} bytes exceeds the maximum packet size {max}")]
    PacketTooLarge { size: u64, max: u32 },
    #[error("the first packet must be CONNECT, got {got}")]
    ExpectedConnect { got: &'static str },
    #[error("{packet} ends inside {what}")]
    Truncated {
        packet: &'static str,
        what: &'static str,
    },
    #[error("{count} bytes left over at the end of {packet}")]
    TrailingBytes { packet: &'static str, count: usize },
    #[error("{what} is not well-formed UTF-8")]
    InvalidUtf8 { what: &'static str },
    #[error("{what} contains U+0000")]
    NullCharacter { what: &'static str },
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
    #[error("PUBLISH with an empty topic name and no topic alias")]
    EmptyTopicWithoutAlias,
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    #[error("packet identifier 0 in {packet}")]
    ZeroPacketId { packet: &'static str },
    #[error("{packet} without any topic filter")]
    NoTopicFilters { packet: &'static str },
    #[error("{packet} without any reason code")]
    NoReasonCodes { packet: &'static str },
    #[error("reserved bits set in subscription options {options:#010b}")]
    SubscriptionOptionsReserved { options: u8 },
    #[error("retain handling 3 in subscription options")]
    RetainHandling3,
    #[error("maximum QoS 3 in subscription options")]
    SubscriptionQoS3,
    #[error("no local set on a shared subscription")]
    SharedNoLocal,
    #[error("unknown protocol name {name:?}")]
    UnknownProtocolName { name: String },
    #[error("unsupported protocol level {level} for protocol name {name:?}")]
    UnsupportedProtocolLevel { name: &'static str, level: u8 },
    #[error("reserved CONNECT flag set")]
    ConnectReservedFlag,
    #[error("will QoS or will retain set without the will flag")]
    WillFlagsWithoutWill,
    #[error("will QoS 3")]
    WillQoS3,
    #[error("password flag set without the user name flag")]
    PasswordWithoutUsername,
    #[error("reserved CONNACK acknowledge flags {flags:#010b}")]
    ConnAckReservedFlags { flags: u8 },
    #[error("session present set in a CONNACK refusing the connection")]
    SessionPresentWithError,
    #[error("reason code {code:#04x} is not valid in {packet}")]
    InvalidReasonCode { packet: &'static str, code: u8 },
    #[error("unknown property identifier {id:#04x}")]
    UnknownProperty { id: u8 },
    #[error("property {property} is not allowed in {packet}")]
    PropertyNotAllowed {
        property: &'static str,
        packet: &'static str,
    },
    #[error("property {property} appears more than once")]
    DuplicateProperty { property: &'static str },
    #[error("property {property} has the invalid value {value}")]
    InvalidPropertyValue { property: &'static str, value: u32 },
}

impl DecodeError {
    /// The MQTT 5.0 reason code for a DISCONNECT (or CONNACK) answering this error.
    pub fn reason_code(&self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            UnknownProtocolName { .. } | UnsupportedProtocolLevel { .. } => {
                ReasonCode::UnsupportedProtocolVersion
            }
            InvalidTopicName(_) => ReasonCode::TopicNameInvalid,
            InvalidTopicFilter(_) => ReasonCode::TopicFilterInvalid,
            ExpectedConnect { .. }
            | ZeroPacketId { .. }
            | NoTopicFilters { .. }
            | RetainHandling3
            | SubscriptionQoS3
            | SharedNoLocal
            | EmptyTopicWithoutAlias
            | SessionPresentWithError
            | PropertyNotAllowed { .. }
            | DuplicateProperty { .. }
            | InvalidPropertyValue { .. } => ReasonCode::ProtocolError,
            ReservedPacketType
            | AuthNotInProtocol { .. }
            | InvalidFlags { .. }
            | QoS3
            | DupWithQoS0
            | RemainingLengthTooLong
            | VarintTooLong { .. }
            | VarintNotMinimal { .. }
            | Truncated { .. }
            | TrailingBytes { .. }
            | InvalidUtf8 { .. }
            | NullCharacter { .. }
            | NoReasonCodes { .. }
            | SubscriptionOptionsReserved { .. }
            | ConnectReservedFlag
            | WillFlagsWithoutWill
            | WillQoS3
            | PasswordWithoutUsername
            | ConnAckReservedFlags { .. }
            | InvalidReasonCode { .. }
            | UnknownProperty { .. } => ReasonCode::MalformedPacket,
        }
    }

    /// The normative statement (or section) this error breaks, e.g. `"MQTT-3.3.1-4"`.
    pub fn rule(&self) -> &'static str {
        use DecodeError::*;
        match self {
            ReservedPacketType => "§2.1.2",
            AuthNotInProtocol { .. } => "§2.2.1 (3.1.1)",
            InvalidFlags { .. } => "MQTT-2.1.3-1",
            QoS3 => "MQTT-3.3.1-4",
            DupWithQoS0 => "MQTT-3.3.1-2",
            RemainingLengthTooLong | VarintTooLong { .. } => "§1.5.5",
            VarintNotMinimal { .. } => "MQTT-1.5.5-1",
            PacketTooLarge { .. } => "MQTT-3.2.2-15",
            ExpectedConnect { .. } => "MQTT-3.1.0-1",
            Truncated { .. } | TrailingBytes { .. } => "§2.1.4",
            InvalidUtf8 { .. } => "MQTT-1.5.4-1",
            NullCharacter { .. } => "MQTT-1.5.4-2",
            InvalidTopicName(e) | InvalidTopicFilter(e) => e.rule(),
            EmptyTopicWithoutAlias => "§3.3.2.1",
            ZeroPacketId { .. } => "MQTT-2.2.1-3",
            NoTopicFilters { packet } => {
                if *packet == "UNSUBSCRIBE" {
                    "MQTT-3.10.3-2"
                } else {
                    "MQTT-3.8.3-2"
                }
            }
            NoReasonCodes { .. } => "§3.9.3",
            SubscriptionOptionsReserved { .. } => "MQTT-3.8.3-5",
            RetainHandling3 | SubscriptionQoS3 => "§3.8.3.1",
            SharedNoLocal => "MQTT-3.8.3-4",
            UnknownProtocolName { .. } => "MQTT-3.1.2-1",
            UnsupportedProtocolLevel { .. } => "MQTT-3.1.2-2",
            ConnectReservedFlag => "MQTT-3.1.2-3",
            WillFlagsWithoutWill => "MQTT-3.1.2-11",
            WillQoS3 => "MQTT-3.1.2-12",
            PasswordWithoutUsername => "MQTT-3.1.2-22 (3.1.1)",
            ConnAckReservedFlags { .. } => "§3.2.2.1",
            SessionPresentWithError => "MQTT-3.2.2-6",
            InvalidReasonCode { .. } => "§2.4",
            UnknownProperty { .. } | PropertyNotAllowed { .. } => "§2.2.2.2",
            DuplicateProperty { .. } => "§2.2.2.2",
            InvalidPropertyValue { .. } => "§2.2.2.2",
        }
    }
}

/// A packet that cannot be put on the wire as given: a bug of the caller, reported as a value so
/// that the caller decides (usually by panicking in tests and dropping the packet otherwise).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{packet} does not exist in MQTT {protocol}")]
    NotInProtocol {
        packet: &'static str,
        protocol: super::Protocol,
    },
    #[error("property {property} is not allowed in {packet}")]
    PropertyNotAllowed {
        property: &'static str,
        packet: &'static str,
    },
    #[error("property {property} has the invalid value {value}")]
    InvalidPropertyValue { property: &'static str, value: u32 },
    #[error("property {property} appears more than once in {packet}")]
    RepeatedProperty {
        property: &'static str,
        packet: &'static str,
    },
    #[error("{what} is {len} bytes long, more than 65535")]
    TooLong { what: &'static str, len: usize },
    #[error("{what} contains U+0000")]
    NullCharacter { what: &'static str },
    #[error("packet identifier 0 in {packet}")]
    ZeroPacketId { packet: &'static str },
    #[error("PUBLISH with DUP set and QoS 0")]
    DupWithQoS0,
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
    #[error("PUBLISH with an empty topic name and no topic alias")]
    EmptyTopicWithoutAlias,
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    #[error("{packet} without any topic filter")]
    NoTopicFilters { packet: &'static str },
    #[error("{packet} without any reason code")]
    NoReasonCodes { packet: &'static str },
    #[error("reason code {code:?} is not valid in {packet}")]
    ReasonNotAllowed {
        packet: &'static str,
        code: ReasonCode,
    },
    #[error("no local set on a shared subscription")]
    SharedNoLocal,
    #[error("password without user name (MQTT 3.1.1)")]
    PasswordWithoutUsername,
    #[error("session present set in a CONNACK refusing the connection")]
    SessionPresentWithError,
    #[error("packet of remaining length {len} exceeds 268435455")]
    PacketTooLarge { len: usize },
}
