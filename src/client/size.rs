//! Encoded sizes of the packets the client sends with a payload of its user's choosing
//! (PUBLISH, SUBSCRIBE, UNSUBSCRIBE), to respect the broker's maximum packet size before
//! anything is written. Follows sections 2.1–2.2 and 3.3/3.8/3.10; no encoding happens here.

use crate::codec::{Properties, Protocol, Publish, Subscribe, Unsubscribe};

fn varint_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

fn str_len(s: &str) -> usize {
    2 + s.len()
}

/// The property block without its length prefix.
pub fn properties_len(p: &Properties) -> usize {
    let byte = |o: Option<u8>| o.map_or(0, |_| 2);
    let u16p = |o: Option<u16>| o.map_or(0, |_| 3);
    let u32p = |o: Option<u32>| o.map_or(0, |_| 5);
    let strp = |o: &Option<String>| o.as_ref().map_or(0, |s| 1 + str_len(s));
    let binp = |o: &Option<bytes::Bytes>| o.as_ref().map_or(0, |b| 3 + b.len());
    byte(p.payload_format_indicator)
        + u32p(p.message_expiry_interval)
        + strp(&p.content_type)
        + strp(&p.response_topic)
        + binp(&p.correlation_data)
        + p.subscription_identifiers
            .iter()
            .map(|&id| 1 + varint_len(id as usize))
            .sum::<usize>()
        + u32p(p.session_expiry_interval)
        + strp(&p.assigned_client_identifier)
        + u16p(p.server_keep_alive)
        + strp(&p.authentication_method)
        + binp(&p.authentication_data)
        + byte(p.request_problem_information)
        + u32p(p.will_delay_interval)
        + byte(p.request_response_information)
        + strp(&p.response_information)
        + strp(&p.server_reference)
        + strp(&p.reason_string)
        + u16p(p.receive_maximum)
        + u16p(p.topic_alias_maximum)
        + u16p(p.topic_alias)
        + byte(p.maximum_qos)
        + byte(p.retain_available)
        + p.user_properties
            .iter()
            .map(|(k, v)| 1 + str_len(k) + str_len(v))
            .sum::<usize>()
        + u32p(p.maximum_packet_size)
        + byte(p.wildcard_subscription_available)
        + byte(p.subscription_identifier_available)
        + byte(p.shared_subscription_available)
}

fn props_block(protocol: Protocol, p: &Properties) -> usize {
    if protocol.is_v5() {
        let n = properties_len(p);
        varint_len(n) + n
    } else {
        0
    }
}

fn whole(remaining: usize) -> usize {
    1 + varint_len(remaining) + remaining
}

pub fn publish_len(protocol: Protocol, p: &Publish) -> usize {
    let pkid = if p.qos == crate::codec::QoS::AtMostOnce {
        0
    } else {
        2
    };
    whole(str_len(&p.topic) + pkid + props_block(protocol, &p.properties) + p.payload.len())
}

pub fn subscribe_len(protocol: Protocol, s: &Subscribe) -> usize {
    let filters: usize = s.filters.iter().map(|f| str_len(&f.filter) + 1).sum();
    whole(2 + props_block(protocol, &s.properties) + filters)
}

pub fn unsubscribe_len(protocol: Protocol, u: &Unsubscribe) -> usize {
    let filters: usize = u.filters.iter().map(|f| str_len(f)).sum();
    whole(2 + props_block(protocol, &u.properties) + filters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::QoS;
    use bytes::Bytes;

    fn publish(topic: &str, qos: QoS, payload: usize, props: Properties) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.into(),
            pkid: 1,
            properties: props,
            payload: Bytes::from(vec![0u8; payload]),
        }
    }

    /// The 3.1.1 example: PUBLISH "a/b" QoS 1 with 3 payload bytes is 2 + 5 + 2 + 3 = 12 bytes.
    #[test]
    fn publish_len_matches_hand_count() {
        assert_eq!(
            publish_len(
                Protocol::V3_1_1,
                &publish("a/b", QoS::AtLeastOnce, 3, Properties::default())
            ),
            12
        );
        // 5.0 adds the property length byte.
        assert_eq!(
            publish_len(
                Protocol::V5,
                &publish("a/b", QoS::AtLeastOnce, 3, Properties::default())
            ),
            13
        );
        // QoS 0 has no packet identifier.
        assert_eq!(
            publish_len(
                Protocol::V3_1_1,
                &publish("a/b", QoS::AtMostOnce, 3, Properties::default())
            ),
            10
        );
        // remaining length 128 needs two bytes.
        assert_eq!(
            publish_len(
                Protocol::V3_1_1,
                &publish("a", QoS::AtMostOnce, 125, Properties::default())
            ),
            131
        );
        let props = Properties {
            message_expiry_interval: Some(1),
            user_properties: vec![("k".into(), "vv".into())],
            ..Properties::default()
        };
        assert_eq!(properties_len(&props), 5 + 1 + 3 + 4);
    }
}
