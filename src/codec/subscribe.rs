//! SUBSCRIBE (MQTT 5.0 section 3.8, 3.1.1 section 3.8): a packet identifier, 5.0 properties,
//! then at least one topic filter with its subscription options. In 3.1.1 only the QoS of the
//! options is written. Not here: whether the server supports wildcards or shared subscriptions.

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::properties::{self, Context};
use super::reader::Reader;
use super::topic::check_topic_filter;
use super::writer::{put_str, str_len};
use super::{Properties, QoS, RetainHandling, Subscribe, Subscription, SubscriptionOptions};
use super::{check_pkid, read_pkid};

fn read_options(r: &mut Reader, v5: bool) -> Result<SubscriptionOptions, DecodeError> {
    let options = r.u8("subscription options")?;
    let reserved = if v5 { 0b1100_0000 } else { 0b1111_1100 };
    if options & reserved != 0 {
        return Err(DecodeError::SubscriptionOptionsReserved { options });
    }
    let qos = QoS::from_u8(options & 0b11).ok_or(DecodeError::SubscriptionQoS3)?;
    let retain_handling = match (options >> 4) & 0b11 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(DecodeError::RetainHandling3),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: options & 0b0100 != 0,
        retain_as_published: options & 0b1000 != 0,
        retain_handling,
    })
}

fn options_byte(o: &SubscriptionOptions, v5: bool) -> u8 {
    if !v5 {
        return o.qos.as_u8();
    }
    o.qos.as_u8()
        | (u8::from(o.no_local) << 2)
        | (u8::from(o.retain_as_published) << 3)
        | ((o.retain_handling as u8) << 4)
}

pub(crate) fn read(r: &mut Reader, v5: bool) -> Result<Subscribe, DecodeError> {
    let pkid = read_pkid(r)?;
    let properties = if v5 {
        properties::read(r, Context::Subscribe)?
    } else {
        Properties::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string("topic filter")?;
        let shared = check_topic_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
        let options = read_options(r, v5)?;
        if options.no_local && shared {
            return Err(DecodeError::SharedNoLocal);
        }
        filters.push(Subscription { filter, options });
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters {
            packet: "SUBSCRIBE",
        });
    }
    Ok(Subscribe {
        pkid,
        filters,
        properties,
    })
}

#[inline]
pub(crate) fn len(s: &Subscribe, v5: bool) -> Result<usize, EncodeError> {
    check_pkid(s.pkid, "SUBSCRIBE")?;
    if s.filters.is_empty() {
        return Err(EncodeError::NoTopicFilters {
            packet: "SUBSCRIBE",
        });
    }
    let mut n = 2;
    if v5 {
        n += properties::block_len(&s.properties, Context::Subscribe)?;
    }
    for sub in &s.filters {
        let shared = check_topic_filter(&sub.filter).map_err(EncodeError::InvalidTopicFilter)?;
        if v5 && sub.options.no_local && shared {
            return Err(EncodeError::SharedNoLocal);
        }
        // a valid filter fits in 65535 bytes and holds no U+0000, except in the group of a
        // shared subscription
        n += if shared {
            str_len(&sub.filter, "topic filter")?
        } else {
            2 + sub.filter.len()
        } + 1;
    }
    Ok(n)
}

#[inline]
pub(crate) fn write(s: &Subscribe, v5: bool, buf: &mut BytesMut) {
    buf.put_u16(s.pkid);
    if v5 {
        let n = properties::content_len(&s.properties, Context::Subscribe).expect("checked by len");
        properties::write(&s.properties, n, buf);
    }
    for sub in &s.filters {
        put_str(buf, &sub.filter);
        buf.put_u8(options_byte(&sub.options, v5));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{both_ways, dec, enc};
    use super::super::{Packet, Protocol, ReasonCode, TopicError};
    use super::*;

    fn sub(filter: &str, qos: QoS) -> Subscription {
        Subscription {
            filter: filter.into(),
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        }
    }

    fn subscribe(filters: Vec<Subscription>) -> Packet {
        Packet::Subscribe(Subscribe {
            pkid: 10,
            filters,
            properties: Properties::default(),
        })
    }

    /// §3.8 two filters in 3.1.1.
    #[test]
    fn v311_subscribe() {
        #[rustfmt::skip]
        let bytes = [
            0x82, 12, 0, 10,
            0, 3, b'a', b'/', b'+', 0x01,
            0, 1, b'#', 0x02,
        ];
        both_ways(
            &subscribe(vec![
                sub("a/+", QoS::AtLeastOnce),
                sub("#", QoS::ExactlyOnce),
            ]),
            Protocol::V3_1_1,
            &bytes,
        );
    }

    /// §3.8.3.1 5.0 subscription options and a Subscription Identifier; 3.1.1 keeps the QoS.
    #[test]
    fn v5_subscription_options() {
        let mut s = sub("a", QoS::AtLeastOnce);
        s.options.no_local = true;
        s.options.retain_as_published = true;
        s.options.retain_handling = RetainHandling::DoNotSend;
        let mut p = Subscribe {
            pkid: 10,
            filters: vec![s],
            properties: Properties::default(),
        };
        p.properties.subscription_identifiers = vec![5];
        let bytes = [0x82, 9, 0, 10, 2, 0x0B, 5, 0, 1, b'a', 0b0010_1101];
        both_ways(&Packet::Subscribe(p.clone()), Protocol::V5, &bytes);
        assert_eq!(
            enc(&Packet::Subscribe(p), Protocol::V3_1_1),
            [0x82, 6, 0, 10, 0, 1, b'a', 1]
        );
    }

    /// [MQTT-3.8.1-1] SUBSCRIBE flags must be 0b0010.
    #[test]
    fn mqtt_3_8_1_1_subscribe_flags() {
        assert!(matches!(
            dec(&[0x80, 6, 0, 1, 0, 1, b'a', 0], Some(Protocol::V3_1_1)),
            Err(DecodeError::InvalidFlags { .. })
        ));
    }

    /// [MQTT-3.8.3-2] a SUBSCRIBE without filters is a protocol error.
    #[test]
    fn mqtt_3_8_3_2_no_filters() {
        let err = dec(&[0x82, 2, 0, 1], Some(Protocol::V3_1_1)).unwrap_err();
        assert_eq!(
            err,
            DecodeError::NoTopicFilters {
                packet: "SUBSCRIBE"
            }
        );
        assert_eq!(err.reason_code(), ReasonCode::ProtocolError);
        assert_eq!(
            len(
                &Subscribe {
                    pkid: 1,
                    filters: vec![],
                    properties: Properties::default()
                },
                true
            ),
            Err(EncodeError::NoTopicFilters {
                packet: "SUBSCRIBE"
            })
        );
    }

    /// [MQTT-3.8.3-5] reserved option bits (7-6 in 5.0, 7-2 in 3.1.1) must be 0.
    #[test]
    fn mqtt_3_8_3_5_reserved_option_bits() {
        assert_eq!(
            dec(&[0x82, 6, 0, 1, 0, 1, b'a', 0x04], Some(Protocol::V3_1_1)),
            Err(DecodeError::SubscriptionOptionsReserved { options: 0x04 })
        );
        assert_eq!(
            dec(&[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x40], Some(Protocol::V5)),
            Err(DecodeError::SubscriptionOptionsReserved { options: 0x40 })
        );
    }

    /// §3.8.3.1 QoS 3 and retain handling 3 are invalid.
    #[test]
    fn qos_3_and_retain_handling_3() {
        assert_eq!(
            dec(&[0x82, 6, 0, 1, 0, 1, b'a', 0x03], Some(Protocol::V3_1_1)),
            Err(DecodeError::SubscriptionQoS3)
        );
        assert_eq!(
            dec(&[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x30], Some(Protocol::V5)),
            Err(DecodeError::RetainHandling3)
        );
    }

    /// [MQTT-3.8.3-4] no local on a shared subscription is a protocol error.
    #[test]
    fn mqtt_3_8_3_4_shared_no_local() {
        #[rustfmt::skip]
        let bytes = [
            0x82, 17, 0, 1, 0,
            0, 11, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'a', b'/',
        ];
        let mut bytes = bytes.to_vec();
        bytes.pop();
        bytes.extend_from_slice(&[b'/', 0x04]);
        assert_eq!(
            dec(&bytes, Some(Protocol::V5)),
            Err(DecodeError::SharedNoLocal)
        );
    }

    /// [MQTT-4.7.1-1] malformed filters (`a/#/b`, `a+`, empty) are 0x8F Topic Filter Invalid.
    #[test]
    fn mqtt_4_7_1_1_malformed_filters() {
        for (filter, e) in [
            (&b"a/#/b"[..], TopicError::MultiLevelWildcardMisplaced),
            (b"a+", TopicError::SingleLevelWildcardMisplaced),
            (b"", TopicError::Empty),
        ] {
            let mut bytes = vec![
                0x82,
                (2 + 2 + filter.len() + 1) as u8,
                0,
                1,
                0,
                filter.len() as u8,
            ];
            bytes.extend_from_slice(filter);
            bytes.push(0);
            let err = dec(&bytes, Some(Protocol::V3_1_1)).unwrap_err();
            assert_eq!(err, DecodeError::InvalidTopicFilter(e));
            assert_eq!(err.reason_code(), ReasonCode::TopicFilterInvalid);
        }
    }

    /// [MQTT-1.5.4-2] U+0000 is refused anywhere in a filter, the group of a shared
    /// subscription included.
    #[test]
    fn mqtt_1_5_4_2_null_in_filter_not_encodable() {
        for (filter, e) in [
            (
                "a/\0",
                EncodeError::InvalidTopicFilter(TopicError::NullCharacter),
            ),
            (
                "$share/g/\0",
                EncodeError::InvalidTopicFilter(TopicError::NullCharacter),
            ),
            (
                "$share/g\0/a",
                EncodeError::NullCharacter {
                    what: "topic filter",
                },
            ),
        ] {
            let s = Subscribe {
                pkid: 1,
                filters: vec![sub(filter, QoS::AtMostOnce)],
                properties: Properties::default(),
            };
            assert_eq!(len(&s, true), Err(e.clone()), "{filter:?}");
            assert_eq!(len(&s, false), Err(e), "{filter:?}");
        }
    }

    /// §2.1.4 a filter without its options byte is malformed.
    #[test]
    fn filter_without_options() {
        assert_eq!(
            dec(&[0x82, 5, 0, 1, 0, 1, b'a'], Some(Protocol::V3_1_1)),
            Err(DecodeError::Truncated {
                packet: "SUBSCRIBE",
                what: "subscription options"
            })
        );
    }
}
