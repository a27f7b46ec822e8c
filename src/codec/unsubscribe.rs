//! UNSUBSCRIBE (MQTT 5.0 section 3.10, 3.1.1 section 3.10): a packet identifier, 5.0
//! properties, at least one topic filter.

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::properties::{self, Context};
use super::reader::Reader;
use super::topic::validate_topic_filter;
use super::writer::{put_str, str_len};
use super::{Properties, Unsubscribe, check_pkid, read_pkid};

pub(crate) fn read(r: &mut Reader, v5: bool) -> Result<Unsubscribe, DecodeError> {
    let pkid = read_pkid(r)?;
    let properties = if v5 {
        properties::read(r, Context::Unsubscribe)?
    } else {
        Properties::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string("topic filter")?;
        validate_topic_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
        filters.push(filter);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters {
            packet: "UNSUBSCRIBE",
        });
    }
    Ok(Unsubscribe {
        pkid,
        filters,
        properties,
    })
}

pub(crate) fn len(u: &Unsubscribe, v5: bool) -> Result<usize, EncodeError> {
    check_pkid(u.pkid, "UNSUBSCRIBE")?;
    if u.filters.is_empty() {
        return Err(EncodeError::NoTopicFilters {
            packet: "UNSUBSCRIBE",
        });
    }
    let mut n = 2;
    if v5 {
        n += properties::block_len(&u.properties, Context::Unsubscribe)?;
    }
    for f in &u.filters {
        validate_topic_filter(f).map_err(EncodeError::InvalidTopicFilter)?;
        n += str_len(f, "topic filter")?;
    }
    Ok(n)
}

pub(crate) fn write(u: &Unsubscribe, v5: bool, buf: &mut BytesMut) {
    buf.put_u16(u.pkid);
    if v5 {
        let n =
            properties::content_len(&u.properties, Context::Unsubscribe).expect("checked by len");
        properties::write(&u.properties, n, buf);
    }
    for f in &u.filters {
        put_str(buf, f);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{both_ways, dec};
    use super::super::{Packet, Protocol, TopicError};
    use super::*;

    /// §3.10 UNSUBSCRIBE in both versions.
    #[test]
    fn unsubscribe_both_versions() {
        let mut u = Unsubscribe {
            pkid: 4,
            filters: vec!["a/+".into(), "b".into()],
            properties: Properties::default(),
        };
        both_ways(
            &Packet::Unsubscribe(u.clone()),
            Protocol::V3_1_1,
            &[0xA2, 10, 0, 4, 0, 3, b'a', b'/', b'+', 0, 1, b'b'],
        );
        u.properties.user_properties.push(("k".into(), "v".into()));
        both_ways(
            &Packet::Unsubscribe(u),
            Protocol::V5,
            &[
                0xA2, 18, 0, 4, 7, 0x26, 0, 1, b'k', 0, 1, b'v', 0, 3, b'a', b'/', b'+', 0, 1, b'b',
            ],
        );
    }

    /// [MQTT-3.10.1-1] UNSUBSCRIBE flags must be 0b0010.
    #[test]
    fn mqtt_3_10_1_1_unsubscribe_flags() {
        assert!(matches!(
            dec(&[0xA0, 5, 0, 1, 0, 1, b'a'], Some(Protocol::V3_1_1)),
            Err(DecodeError::InvalidFlags { .. })
        ));
    }

    /// [MQTT-3.10.3-2] at least one topic filter.
    #[test]
    fn mqtt_3_10_3_2_no_filters() {
        let err = dec(&[0xA2, 3, 0, 1, 0], Some(Protocol::V5)).unwrap_err();
        assert_eq!(
            err,
            DecodeError::NoTopicFilters {
                packet: "UNSUBSCRIBE"
            }
        );
        assert_eq!(err.rule(), "MQTT-3.10.3-2");
    }

    /// [MQTT-4.7.1-2] malformed filters are rejected in UNSUBSCRIBE too.
    #[test]
    fn mqtt_4_7_1_2_malformed_filter() {
        assert_eq!(
            dec(&[0xA2, 6, 0, 1, 0, 2, b'a', b'+'], Some(Protocol::V3_1_1)),
            Err(DecodeError::InvalidTopicFilter(
                TopicError::SingleLevelWildcardMisplaced
            ))
        );
    }
}
