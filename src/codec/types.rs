//! The packet model shared by MQTT 3.1.1 (and 3.1) and MQTT 5.0.
//!
//! One type per control packet. Fields that exist only in 5.0 (properties, most reason codes)
//! are present in the model for both versions; the encoder writes them only for 5.0 and the
//! decoder fills defaults for 3.1.1. No IO, no time, no allocation beyond what the packet holds.

use bytes::Bytes;

/// The protocol level negotiated by CONNECT.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    arbitrary::Arbitrary,
)]
pub enum Protocol {
    /// MQTT 3.1: protocol name "MQIsdp", level 3.
    V3_1,
    /// MQTT 3.1.1: protocol name "MQTT", level 4.
    V3_1_1,
    /// MQTT 5.0: protocol name "MQTT", level 5.
    V5,
}

impl Protocol {
    /// The protocol level byte of CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Protocol::V3_1 => 3,
            Protocol::V3_1_1 => 4,
            Protocol::V5 => 5,
        }
    }

    /// The protocol name of CONNECT.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V3_1 => "MQIsdp",
            Protocol::V3_1_1 | Protocol::V5 => "MQTT",
        }
    }

    pub fn is_v5(self) -> bool {
        self == Protocol::V5
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::V3_1 => "3.1",
            Protocol::V3_1_1 => "3.1.1",
            Protocol::V5 => "5.0",
        })
    }
}

/// Quality of service.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
    arbitrary::Arbitrary,
)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// Every reason code of MQTT 5.0 (section 2.4). 3.1.1 return codes map onto these:
/// CONNACK 0..=5 onto `Success`, `UnsupportedProtocolVersion`, `ClientIdentifierNotValid`,
/// `ServerUnavailable`, `BadUserNameOrPassword`, `NotAuthorized`; SUBACK 0x00..=0x02 and 0x80
/// share their values.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
    arbitrary::Arbitrary,
)]
#[repr(u8)]
pub enum ReasonCode {
    /// Also "normal disconnection" and "granted QoS 0".
    #[default]
    Success = 0x00,
    GrantedQoS1 = 0x01,
    GrantedQoS2 = 0x02,
    DisconnectWithWillMessage = 0x04,
    NoMatchingSubscribers = 0x10,
    NoSubscriptionExisted = 0x11,
    ContinueAuthentication = 0x18,
    ReAuthenticate = 0x19,
    UnspecifiedError = 0x80,
    MalformedPacket = 0x81,
    ProtocolError = 0x82,
    ImplementationSpecificError = 0x83,
    UnsupportedProtocolVersion = 0x84,
    ClientIdentifierNotValid = 0x85,
    BadUserNameOrPassword = 0x86,
    NotAuthorized = 0x87,
    ServerUnavailable = 0x88,
    ServerBusy = 0x89,
    Banned = 0x8A,
    ServerShuttingDown = 0x8B,
    BadAuthenticationMethod = 0x8C,
    KeepAliveTimeout = 0x8D,
    SessionTakenOver = 0x8E,
    TopicFilterInvalid = 0x8F,
    TopicNameInvalid = 0x90,
    PacketIdentifierInUse = 0x91,
    PacketIdentifierNotFound = 0x92,
    ReceiveMaximumExceeded = 0x93,
    TopicAliasInvalid = 0x94,
    PacketTooLarge = 0x95,
    MessageRateTooHigh = 0x96,
    QuotaExceeded = 0x97,
    AdministrativeAction = 0x98,
    PayloadFormatInvalid = 0x99,
    RetainNotSupported = 0x9A,
    QoSNotSupported = 0x9B,
    UseAnotherServer = 0x9C,
    ServerMoved = 0x9D,
    SharedSubscriptionsNotSupported = 0x9E,
    ConnectionRateExceeded = 0x9F,
    MaximumConnectTime = 0xA0,
    SubscriptionIdentifiersNotSupported = 0xA1,
    WildcardSubscriptionsNotSupported = 0xA2,
}

impl ReasonCode {
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// True for 0x80 and above.
    pub fn is_error(self) -> bool {
        self.as_u8() >= 0x80
    }

    /// The granted-QoS code for a SUBACK.
    pub fn granted(qos: QoS) -> ReasonCode {
        match qos {
            QoS::AtMostOnce => ReasonCode::Success,
            QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
            QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
        }
    }
}

/// Retain handling option of a subscription (5.0, 3.8.3.1).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
    arbitrary::Arbitrary,
)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send retained messages only if the subscription did not exist.
    SendIfNew = 1,
    /// 2: do not send retained messages.
    DoNotSend = 2,
}

/// All MQTT 5.0 properties (section 2.2.2.2). Which ones a packet may carry is checked by the
/// codec against that packet's allow-list; the rest must stay `None` / empty. Packets hold them
/// through [`Properties`], which allocates only when one is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename = "Properties")]
pub struct PropertySet {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    /// May appear several times in PUBLISH (server to client); at most once in SUBSCRIBE.
    pub subscription_identifiers: Vec<u32>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Bytes>,
    pub request_problem_information: Option<u8>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<u8>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub reason_string: Option<String>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<u8>,
    /// In order; the same name may appear more than once.
    pub user_properties: Vec<(String, String)>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<u8>,
    pub subscription_identifier_available: Option<u8>,
    pub shared_subscription_available: Option<u8>,
}

impl PropertySet {
    /// No property set.
    pub const EMPTY: PropertySet = PropertySet {
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        subscription_identifiers: Vec::new(),
        session_expiry_interval: None,
        assigned_client_identifier: None,
        server_keep_alive: None,
        authentication_method: None,
        authentication_data: None,
        request_problem_information: None,
        will_delay_interval: None,
        request_response_information: None,
        response_information: None,
        server_reference: None,
        reason_string: None,
        receive_maximum: None,
        topic_alias_maximum: None,
        topic_alias: None,
        maximum_qos: None,
        retain_available: None,
        user_properties: Vec::new(),
        maximum_packet_size: None,
        wildcard_subscription_available: None,
        subscription_identifier_available: None,
        shared_subscription_available: None,
    };

    pub fn is_empty(&self) -> bool {
        *self == PropertySet::EMPTY
    }
}

/// The properties of one packet: a [`PropertySet`] that is allocated only once a property is
/// set, so that packets without properties (every 3.1.1 packet, most 5.0 ones) stay small and
/// cheap to build, move and drop. Reads go through `Deref` (an absent set reads as empty);
/// writes through `DerefMut` allocate the set. Equality, `Debug` and the serialized form are
/// those of the set: an allocated empty set equals an absent one.
#[derive(Clone, Default)]
pub struct Properties(Option<Box<PropertySet>>);

impl Properties {
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(PropertySet::is_empty)
    }

    /// True when no set was ever allocated: a cheaper test than [`is_empty`](Self::is_empty),
    /// which it implies.
    pub fn is_unset(&self) -> bool {
        self.0.is_none()
    }

    /// The set itself (empty when none was allocated).
    pub fn into_set(self) -> PropertySet {
        self.0.map(|set| *set).unwrap_or_default()
    }
}

impl From<PropertySet> for Properties {
    fn from(set: PropertySet) -> Properties {
        if set.is_empty() {
            Properties(None)
        } else {
            Properties(Some(Box::new(set)))
        }
    }
}

/// What an absent set reads as.
static EMPTY: PropertySet = PropertySet::EMPTY;

impl std::ops::Deref for Properties {
    type Target = PropertySet;

    #[inline]
    fn deref(&self) -> &PropertySet {
        match &self.0 {
            Some(set) => set,
            None => &EMPTY,
        }
    }
}

impl std::ops::DerefMut for Properties {
    #[inline]
    fn deref_mut(&mut self) -> &mut PropertySet {
        self.0.get_or_insert_with(Box::default)
    }
}

impl PartialEq for Properties {
    fn eq(&self, other: &Properties) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            _ => **self == **other,
        }
    }
}

impl Eq for Properties {}

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl serde::Serialize for Properties {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Properties {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Properties, D::Error> {
        PropertySet::deserialize(d).map(Properties::from)
    }
}

/// The will message carried by CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastWill {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Will properties (5.0 only).
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub protocol: Protocol,
    /// "Clean session" in 3.1.1, "clean start" in 5.0.
    pub clean_start: bool,
    /// Seconds; 0 disables keep-alive.
    pub keep_alive: u16,
    pub client_id: String,
    pub will: Option<Box<LastWill>>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty in 5.0 when a topic alias is set.
    pub topic: String,
    /// 0 for QoS 0, non-zero otherwise.
    pub pkid: u16,
    pub properties: Properties,
    /// Opaque, zero-copy: shares the buffer it was decoded from.
    pub payload: Bytes,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share this shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub pkid: u16,
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl Ack {
    pub fn new(pkid: u16) -> Ack {
        Ack {
            pkid,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        }
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
    arbitrary::Arbitrary,
)]
pub struct SubscriptionOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub filter: String,
    pub options: SubscriptionOptions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub pkid: u16,
    /// Never empty ([MQTT-3.8.3-3]).
    pub filters: Vec<Subscription>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub pkid: u16,
    /// One per filter, in order.
    pub reasons: Vec<ReasonCode>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub pkid: u16,
    /// Never empty ([MQTT-3.10.3-2]).
    pub filters: Vec<String>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    pub pkid: u16,
    /// One per filter in 5.0; always empty in 3.1.1.
    pub reasons: Vec<ReasonCode>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Always `Success` in 3.1.1.
    pub reason: ReasonCode,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    pub reason: ReasonCode,
    pub properties: Properties,
}

/// Every MQTT control packet.
// CONNECT is the largest variant; it arrives once per connection, so it stays unboxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Connect),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(Ack),
    PubRec(Ack),
    PubRel(Ack),
    PubComp(Ack),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    /// 5.0 only.
    Auth(Auth),
}

/// The control packet type, from the high nibble of the fixed header.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl Packet {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> Properties {
        Properties::from(PropertySet {
            reason_string: Some(s.into()),
            ..PropertySet::default()
        })
    }

    /// An empty set stays unallocated, and writing to an absent set allocates it.
    #[test]
    fn properties_allocate_only_when_set() {
        assert!(Properties::default().is_unset());
        assert!(Properties::from(PropertySet::default()).is_unset());
        let mut p = Properties::from(PropertySet::EMPTY);
        assert!(p.is_unset());
        p.topic_alias = Some(3);
        assert!(!p.is_unset());
        assert_eq!(p.topic_alias, Some(3));
        assert_eq!(Properties::default().topic_alias, None);
    }

    /// A set allocated and emptied again equals an absent one, and is empty.
    #[test]
    fn an_emptied_set_equals_an_absent_one() {
        let mut p = reason("x");
        assert_ne!(p, Properties::default());
        assert!(!p.is_empty());
        p.reason_string = None;
        assert!(!p.is_unset());
        assert!(p.is_empty());
        assert_eq!(p, Properties::default());
        assert_eq!(Properties::default(), p);
        assert_ne!(reason("x"), reason("y"));
        assert_eq!(reason("x").into_set().reason_string.as_deref(), Some("x"));
    }

    /// The serialized form is the set's, whether or not it is allocated, and reads back equal.
    #[test]
    fn properties_serialize_as_the_set() {
        let absent = serde_json::to_string(&Properties::default()).unwrap();
        assert_eq!(absent, serde_json::to_string(&PropertySet::EMPTY).unwrap());
        let set = reason("why");
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, serde_json::to_string(&*set).unwrap());
        let back: Properties = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        let back: Properties = serde_json::from_str(&absent).unwrap();
        assert!(back.is_unset());
        assert_eq!(format!("{set:?}"), format!("{:?}", *set));
    }
}
