//! Reason codes on the wire: the byte table (MQTT 5.0 section 2.4), which codes each packet may
//! carry, and the MQTT 3.1.1 return codes of CONNACK and SUBACK.
//!
//! The [`ReasonCode`] type itself is in the packet model.

use super::{PacketType, ReasonCode};

/// The reason code with this byte value, if any.
pub fn from_u8(v: u8) -> Option<ReasonCode> {
    use ReasonCode::*;
    Some(match v {
        0x00 => Success,
        0x01 => GrantedQoS1,
        0x02 => GrantedQoS2,
        0x04 => DisconnectWithWillMessage,
        0x10 => NoMatchingSubscribers,
        0x11 => NoSubscriptionExisted,
        0x18 => ContinueAuthentication,
        0x19 => ReAuthenticate,
        0x80 => UnspecifiedError,
        0x81 => MalformedPacket,
        0x82 => ProtocolError,
        0x83 => ImplementationSpecificError,
        0x84 => UnsupportedProtocolVersion,
        0x85 => ClientIdentifierNotValid,
        0x86 => BadUserNameOrPassword,
        0x87 => NotAuthorized,
        0x88 => ServerUnavailable,
        0x89 => ServerBusy,
        0x8A => Banned,
        0x8B => ServerShuttingDown,
        0x8C => BadAuthenticationMethod,
        0x8D => KeepAliveTimeout,
        0x8E => SessionTakenOver,
        0x8F => TopicFilterInvalid,
        0x90 => TopicNameInvalid,
        0x91 => PacketIdentifierInUse,
        0x92 => PacketIdentifierNotFound,
        0x93 => ReceiveMaximumExceeded,
        0x94 => TopicAliasInvalid,
        0x95 => PacketTooLarge,
        0x96 => MessageRateTooHigh,
        0x97 => QuotaExceeded,
        0x98 => AdministrativeAction,
        0x99 => PayloadFormatInvalid,
        0x9A => RetainNotSupported,
        0x9B => QoSNotSupported,
        0x9C => UseAnotherServer,
        0x9D => ServerMoved,
        0x9E => SharedSubscriptionsNotSupported,
        0x9F => ConnectionRateExceeded,
        0xA0 => MaximumConnectTime,
        0xA1 => SubscriptionIdentifiersNotSupported,
        0xA2 => WildcardSubscriptionsNotSupported,
        _ => return None,
    })
}

/// Every reason code, in byte order.
pub const ALL: [ReasonCode; 43] = {
    use ReasonCode::*;
    [
        Success,
        GrantedQoS1,
        GrantedQoS2,
        DisconnectWithWillMessage,
        NoMatchingSubscribers,
        NoSubscriptionExisted,
        ContinueAuthentication,
        ReAuthenticate,
        UnspecifiedError,
        MalformedPacket,
        ProtocolError,
        ImplementationSpecificError,
        UnsupportedProtocolVersion,
        ClientIdentifierNotValid,
        BadUserNameOrPassword,
        NotAuthorized,
        ServerUnavailable,
        ServerBusy,
        Banned,
        ServerShuttingDown,
        BadAuthenticationMethod,
        KeepAliveTimeout,
        SessionTakenOver,
        TopicFilterInvalid,
        TopicNameInvalid,
        PacketIdentifierInUse,
        PacketIdentifierNotFound,
        ReceiveMaximumExceeded,
        TopicAliasInvalid,
        PacketTooLarge,
        MessageRateTooHigh,
        QuotaExceeded,
        AdministrativeAction,
        PayloadFormatInvalid,
        RetainNotSupported,
        QoSNotSupported,
        UseAnotherServer,
        ServerMoved,
        SharedSubscriptionsNotSupported,
        ConnectionRateExceeded,
        MaximumConnectTime,
        SubscriptionIdentifiersNotSupported,
        WildcardSubscriptionsNotSupported,
    ]
};

/// May `packet` carry `code` (MQTT 5.0, the table in each packet's section)?
pub fn allowed_in(packet: PacketType, code: ReasonCode) -> bool {
    use ReasonCode::*;
    match packet {
        PacketType::ConnAck => matches!(
            code,
            Success
                | UnspecifiedError
                | MalformedPacket
                | ProtocolError
                | ImplementationSpecificError
                | UnsupportedProtocolVersion
                | ClientIdentifierNotValid
                | BadUserNameOrPassword
                | NotAuthorized
                | ServerUnavailable
                | ServerBusy
                | Banned
                | BadAuthenticationMethod
                | TopicNameInvalid
                | PacketTooLarge
                | QuotaExceeded
                | PayloadFormatInvalid
                | RetainNotSupported
                | QoSNotSupported
                | UseAnotherServer
                | ServerMoved
                | ConnectionRateExceeded
        ),
        PacketType::PubAck | PacketType::PubRec => matches!(
            code,
            Success
                | NoMatchingSubscribers
                | UnspecifiedError
                | ImplementationSpecificError
                | NotAuthorized
                | TopicNameInvalid
                | PacketIdentifierInUse
                | QuotaExceeded
                | PayloadFormatInvalid
        ),
        PacketType::PubRel | PacketType::PubComp => {
            matches!(code, Success | PacketIdentifierNotFound)
        }
        PacketType::SubAck => matches!(
            code,
            Success
                | GrantedQoS1
                | GrantedQoS2
                | UnspecifiedError
                | ImplementationSpecificError
                | NotAuthorized
                | TopicFilterInvalid
                | PacketIdentifierInUse
                | QuotaExceeded
                | SharedSubscriptionsNotSupported
                | SubscriptionIdentifiersNotSupported
                | WildcardSubscriptionsNotSupported
        ),
        PacketType::UnsubAck => matches!(
            code,
            Success
                | NoSubscriptionExisted
                | UnspecifiedError
                | ImplementationSpecificError
                | NotAuthorized
                | TopicFilterInvalid
                | PacketIdentifierInUse
        ),
        PacketType::Disconnect => matches!(
            code,
            Success
                | DisconnectWithWillMessage
                | UnspecifiedError
                | MalformedPacket
                | ProtocolError
                | ImplementationSpecificError
                | NotAuthorized
                | ServerBusy
                | ServerShuttingDown
                | KeepAliveTimeout
                | SessionTakenOver
                | TopicFilterInvalid
                | TopicNameInvalid
                | ReceiveMaximumExceeded
                | TopicAliasInvalid
                | PacketTooLarge
                | MessageRateTooHigh
                | QuotaExceeded
                | AdministrativeAction
                | PayloadFormatInvalid
                | RetainNotSupported
                | QoSNotSupported
                | UseAnotherServer
                | ServerMoved
                | SharedSubscriptionsNotSupported
                | ConnectionRateExceeded
                | MaximumConnectTime
                | SubscriptionIdentifiersNotSupported
                | WildcardSubscriptionsNotSupported
        ),
        PacketType::Auth => matches!(code, Success | ContinueAuthentication | ReAuthenticate),
        _ => false,
    }
}

/// The MQTT 3.1.1 CONNACK return code for `code`: the six codes of 3.1.1 map to themselves,
/// `Banned` to 5 (not authorized), `BadAuthenticationMethod` to 4 (bad user name or password),
/// and any other refusal to 3 (server unavailable).
pub fn connack_v3_return_code(code: ReasonCode) -> u8 {
    use ReasonCode::*;
    match code {
        Success => 0,
        UnsupportedProtocolVersion => 1,
        ClientIdentifierNotValid => 2,
        BadUserNameOrPassword | BadAuthenticationMethod => 4,
        NotAuthorized | Banned => 5,
        _ => 3,
    }
}

/// The reason code for an MQTT 3.1.1 CONNACK return code (0..=5).
pub fn connack_from_v3(v: u8) -> Option<ReasonCode> {
    use ReasonCode::*;
    Some(match v {
        0 => Success,
        1 => UnsupportedProtocolVersion,
        2 => ClientIdentifierNotValid,
        3 => ServerUnavailable,
        4 => BadUserNameOrPassword,
        5 => NotAuthorized,
        _ => return None,
    })
}

/// The MQTT 3.1.1 SUBACK return code: granted QoS 0..=2, or 0x80 for any failure.
pub fn suback_v3_return_code(code: ReasonCode) -> u8 {
    match code {
        ReasonCode::Success | ReasonCode::GrantedQoS1 | ReasonCode::GrantedQoS2 => code.as_u8(),
        _ => 0x80,
    }
}

/// The reason code for an MQTT 3.1.1 SUBACK return code (0, 1, 2 or 0x80).
pub fn suback_from_v3(v: u8) -> Option<ReasonCode> {
    match v {
        0 => Some(ReasonCode::Success),
        1 => Some(ReasonCode::GrantedQoS1),
        2 => Some(ReasonCode::GrantedQoS2),
        0x80 => Some(ReasonCode::UnspecifiedError),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §2.4 every reason code round-trips through its byte, and no other byte is a code.
    #[test]
    fn every_reason_code_has_its_byte() {
        for code in ALL {
            assert_eq!(from_u8(code.as_u8()), Some(code));
        }
        let known = (0..=255u8).filter(|&b| from_u8(b).is_some()).count();
        assert_eq!(known, ALL.len());
        assert_eq!(from_u8(0x03), None);
        assert_eq!(from_u8(0xA3), None);
    }

    /// 3.1.1 §3.2.2.3 the six CONNACK return codes map both ways.
    #[test]
    fn connack_return_codes_of_3_1_1() {
        for v in 0..=5u8 {
            let code = connack_from_v3(v).unwrap();
            assert_eq!(connack_v3_return_code(code), v);
        }
        assert_eq!(connack_from_v3(6), None);
        assert_eq!(connack_v3_return_code(ReasonCode::Banned), 5);
        assert_eq!(connack_v3_return_code(ReasonCode::ServerBusy), 3);
    }

    /// 3.1.1 §3.9.3 SUBACK failure is 0x80.
    #[test]
    fn suback_failure_is_0x80_in_3_1_1() {
        assert_eq!(suback_v3_return_code(ReasonCode::NotAuthorized), 0x80);
        assert_eq!(suback_v3_return_code(ReasonCode::GrantedQoS2), 2);
        assert_eq!(suback_from_v3(0x80), Some(ReasonCode::UnspecifiedError));
        assert_eq!(suback_from_v3(3), None);
    }

    /// §3.15.2.1 AUTH carries only 0x00, 0x18 and 0x19; §3.6.2.1 PUBREL only 0x00 and 0x92.
    #[test]
    fn per_packet_lists() {
        let auth: Vec<_> = ALL
            .iter()
            .filter(|&&c| allowed_in(PacketType::Auth, c))
            .collect();
        assert_eq!(auth.len(), 3);
        let pubrel = ALL
            .iter()
            .filter(|&&c| allowed_in(PacketType::PubRel, c))
            .count();
        assert_eq!(pubrel, 2);
        assert!(allowed_in(
            PacketType::Disconnect,
            ReasonCode::DisconnectWithWillMessage
        ));
        assert!(!allowed_in(PacketType::ConnAck, ReasonCode::GrantedQoS1));
    }
}
