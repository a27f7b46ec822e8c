//! `rumqttc::v5` (a third-party MQTT 5.0 client) against our broker, served in-process on a
//! free loopback port: each QoS, PUBLISH properties passed through unchanged, message expiry,
//! session expiry, will delay, subscription options (no local, retain handling), subscription
//! identifiers, shared subscriptions, topic aliases both ways and CONNACK reason codes.
//!
//! Every wait is bounded; where a test must show that something did not happen, a marker
//! message sent afterwards on the same path must arrive first.

use crate::support;

use std::time::Duration;
use support::rumq5::Rumq;
use support::start_broker;

use bytes::Bytes;

use rumqttc::v5::MqttOptions;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, Filter, LastWill, LastWillProperties, Publish, PublishProperties,
    RetainForwardRule, SubscribeProperties, SubscribeReasonCode,
};

fn min_qos(a: QoS, b: QoS) -> QoS {
    if (a as u8) <= (b as u8) { a } else { b }
}

fn topic_of(p: &Publish) -> &str {
    std::str::from_utf8(&p.topic).unwrap()
}

fn persistent(expiry: u32) -> impl FnOnce(&mut MqttOptions) {
    move |o: &mut MqttOptions| {
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(expiry));
    }
}

/// [MQTT-3.3.5-1] 5.0: rumqttc subscribers receive at min(publish QoS, granted QoS), and
/// rumqttc publishers complete PUBACK and PUBREC/PUBREL/PUBCOMP with our broker.
#[tokio::test]
async fn mqtt_3_3_5_1_v5_publishes_and_receives_at_each_qos() {
    let (port, _stop) = start_broker().await;
    let (mut sub2, _) = Rumq::connect(port, "v5-sub2", |_| {}).await;
    let (mut sub1, _) = Rumq::connect(port, "v5-sub1", |_| {}).await;
    assert_eq!(
        sub2.subscribe("lab/#", QoS::ExactlyOnce).await,
        vec![SubscribeReasonCode::Success(QoS::ExactlyOnce)]
    );
    assert_eq!(
        sub1.subscribe("lab/+/x", QoS::AtLeastOnce).await,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let (mut publ, _) = Rumq::connect(port, "v5-pub", |_| {}).await;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let payload = format!("{qos:?}");
        publ.publish("lab/a/x", qos, false, &payload).await;
        for (sub, granted) in [(&mut sub2, QoS::ExactlyOnce), (&mut sub1, QoS::AtLeastOnce)] {
            let got = sub.message().await;
            assert_eq!(topic_of(&got), "lab/a/x");
            assert_eq!(&got.payload[..], payload.as_bytes());
            assert_eq!(got.qos, min_qos(qos, granted), "{payload} at {granted:?}");
            assert!(!got.retain);
        }
    }
    for c in [publ, sub1, sub2] {
        c.disconnect().await;
    }
}

/// [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18]
/// [MQTT-3.3.2-20] payload format indicator, response topic, correlation data, user
/// properties (in order, repeated keys kept) and content type reach a rumqttc subscriber
/// unchanged, at QoS 0, 1 and 2.
#[tokio::test]
async fn mqtt_3_3_2_17_v5_publish_properties_pass_through_unchanged() {
    let (port, _stop) = start_broker().await;
    let (mut sub, _) = Rumq::connect(port, "v5-props-sub", |_| {}).await;
    sub.subscribe("req/#", QoS::ExactlyOnce).await;
    let (mut publ, _) = Rumq::connect(port, "v5-props-pub", |_| {}).await;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let sent = PublishProperties {
            payload_format_indicator: Some(1),
            response_topic: Some("resp/v5-props-pub".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01corr\xff")),
            user_properties: vec![
                ("k".into(), "v1".into()),
                ("a".into(), "b".into()),
                ("k".into(), "v2".into()),
            ],
            content_type: Some("application/json; charset=utf-8".into()),
            ..PublishProperties::default()
        };
        publ.publish_props("req/x", qos, false, "{\"q\":1}", Some(sent.clone()))
            .await;
        let got = sub.message().await;
        assert_eq!(got.qos, qos);
        assert_eq!(&got.payload[..], b"{\"q\":1}");
        let props = got.properties.expect("properties forwarded");
        assert_eq!(
            props.payload_format_indicator,
            sent.payload_format_indicator
        );
        assert_eq!(props.response_topic, sent.response_topic);
        assert_eq!(props.correlation_data, sent.correlation_data);
        assert_eq!(props.user_properties, sent.user_properties);
        assert_eq!(props.content_type, sent.content_type);
        assert_eq!(props.message_expiry_interval, None);
        assert!(props.subscription_identifiers.is_empty());
    }
    publ.disconnect().await;
    sub.disconnect().await;
}

/// [MQTT-3.3.2-5] a message whose expiry passes while it is queued for an offline session is
/// not delivered; [MQTT-3.3.2-6] one that has not expired arrives with the remaining interval
/// (at most what was published, more than 0).
#[tokio::test]
async fn mqtt_3_3_2_5_v5_expired_queued_message_is_not_delivered() {
    let (port, _stop) = start_broker().await;
    let (mut sub, _) = Rumq::connect(port, "v5-exp-sub", persistent(3600)).await;
    sub.subscribe("exp/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;

    let (mut publ, _) = Rumq::connect(port, "v5-exp-pub", |_| {}).await;
    let expiry = |secs| PublishProperties {
        message_expiry_interval: Some(secs),
        ..PublishProperties::default()
    };
    publ.publish_props("exp/a", QoS::AtLeastOnce, false, "short", Some(expiry(1)))
        .await;
    publ.publish_props("exp/b", QoS::AtLeastOnce, false, "long", Some(expiry(3600)))
        .await;
    publ.disconnect().await;
    // Longer than the short interval (the broker counts whole seconds, rounded up).
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let (mut sub, ack) = Rumq::connect(port, "v5-exp-sub", persistent(3600)).await;
    assert!(ack.session_present);
    let got = sub.message().await;
    assert_eq!(
        (topic_of(&got), &got.payload[..]),
        ("exp/b", &b"long"[..]),
        "the expired message must not be delivered"
    );
    let left = got
        .properties
        .and_then(|p| p.message_expiry_interval)
        .expect("the remaining expiry interval is sent on");
    assert!((1..=3600).contains(&left), "remaining interval {left}");
    sub.disconnect().await;
}

/// [MQTT-3.1.2-23] [MQTT-3.2.2-3] a session with expiry 0 ends with its connection: session
/// present 0 at reconnect and its subscription is gone; with a long expiry it is resumed
/// (session present 1) and its subscription still delivers.
#[tokio::test]
async fn mqtt5_3_1_2_23_v5_session_expiry_zero_and_long() {
    let (port, _stop) = start_broker().await;
    let (mut publ, _) = Rumq::connect(port, "v5-sx-pub", |_| {}).await;

    let (mut c, ack) = Rumq::connect(port, "v5-sx-zero", persistent(0)).await;
    assert!(!ack.session_present);
    c.subscribe("sx/zero", QoS::AtLeastOnce).await;
    c.disconnect().await;
    let (mut c, ack) = Rumq::connect(port, "v5-sx-zero", persistent(0)).await;
    assert!(!ack.session_present, "an expiry-0 session must be gone");
    c.subscribe("sx/marker", QoS::AtLeastOnce).await;
    publ.publish("sx/zero", QoS::AtLeastOnce, false, "stale")
        .await;
    publ.publish("sx/marker", QoS::AtLeastOnce, false, "m")
        .await;
    let got = c.message().await;
    assert_eq!(
        topic_of(&got),
        "sx/marker",
        "the old subscription must be gone"
    );
    c.disconnect().await;

    let (mut c, ack) = Rumq::connect(port, "v5-sx-long", persistent(3600)).await;
    assert!(!ack.session_present);
    c.subscribe("sx/long", QoS::AtLeastOnce).await;
    c.disconnect().await;
    publ.publish("sx/long", QoS::AtLeastOnce, false, "kept")
        .await;
    let (mut c, ack) = Rumq::connect(port, "v5-sx-long", persistent(3600)).await;
    assert!(ack.session_present, "a long-expiry session must be kept");
    let got = c.message().await;
    assert_eq!(
        (topic_of(&got), &got.payload[..]),
        ("sx/long", &b"kept"[..])
    );
    c.disconnect().await;
    publ.disconnect().await;
}

/// [MQTT-3.1.2-23] a session whose expiry interval passes while its client is away is
/// discarded: session present 0 at reconnect.
#[tokio::test]
async fn mqtt5_3_1_2_23_v5_session_expires_while_away() {
    let (port, _stop) = start_broker().await;
    let (mut c, _) = Rumq::connect(port, "v5-sx-short", persistent(1)).await;
    c.subscribe("sx/short", QoS::AtLeastOnce).await;
    c.disconnect().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (c, ack) = Rumq::connect(port, "v5-sx-short", persistent(1)).await;
    assert!(!ack.session_present, "the session must have expired");
    c.disconnect().await;
}

fn delayed_will(topic: &str, delay: u32) -> LastWill {
    LastWill::new(
        topic,
        "gone",
        QoS::AtLeastOnce,
        false,
        Some(LastWillProperties {
            delay_interval: Some(delay),
            payload_format_indicator: None,
            message_expiry_interval: None,
            content_type: None,
            response_topic: None,
            correlation_data: None,
            user_properties: Vec::new(),
        }),
    )
}

/// [MQTT-3.1.3-9] a will with a delay is not published when the client resumes its session
/// within the delay: after the resume the old session is ended by a clean start, which would
/// publish a will still pending, and a marker is the first message the watcher sees.
#[tokio::test]
async fn mqtt5_3_1_3_9_v5_will_cancelled_by_resuming_within_delay() {
    let (port, _stop) = start_broker().await;
    let (mut watcher, _) = Rumq::connect(port, "v5-wd-watch", |_| {}).await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;
    let (doomed, _) = Rumq::connect(port, "v5-wd-back", |o| {
        persistent(3600)(o);
        o.set_last_will(delayed_will("wills/v5-wd-back", 3600));
    })
    .await;
    doomed.kill();
    let (back, ack) = Rumq::connect(port, "v5-wd-back", persistent(3600)).await;
    assert!(ack.session_present);
    back.kill();
    let (fresh, ack) = Rumq::connect(port, "v5-wd-back", |o| {
        o.set_clean_start(true);
    })
    .await;
    assert!(!ack.session_present);
    fresh.disconnect().await;

    let (mut marker, _) = Rumq::connect(port, "v5-wd-marker", |_| {}).await;
    marker
        .publish("wills/marker", QoS::AtLeastOnce, false, "m")
        .await;
    let got = watcher.message().await;
    assert_eq!(topic_of(&got), "wills/marker", "the will must not be sent");
    marker.disconnect().await;
    watcher.disconnect().await;
}

/// [MQTT-3.1.2-8] a delayed will is published once its delay passes without a resume; one
/// whose session ends first (expiry 0) is published at once.
#[tokio::test]
async fn mqtt5_3_1_2_8_v5_delayed_will_published_after_delay_or_session_end() {
    let (port, _stop) = start_broker().await;
    let (mut watcher, _) = Rumq::connect(port, "v5-wp-watch", |_| {}).await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;

    let (doomed, _) = Rumq::connect(port, "v5-wp-delay", |o| {
        persistent(3600)(o);
        o.set_last_will(delayed_will("wills/v5-wp-delay", 1));
    })
    .await;
    doomed.kill();
    let got = watcher.message().await;
    assert_eq!(topic_of(&got), "wills/v5-wp-delay");
    assert_eq!(&got.payload[..], b"gone");

    let (doomed, _) = Rumq::connect(port, "v5-wp-end", |o| {
        o.set_session_expiry_interval(Some(0));
        o.set_last_will(delayed_will("wills/v5-wp-end", 3600));
    })
    .await;
    doomed.kill();
    let got = watcher.message().await;
    assert_eq!(topic_of(&got), "wills/v5-wp-end");
    watcher.disconnect().await;
}

/// [MQTT-3.8.3-3] with no local, a client does not receive its own publish (a marker from
/// another client arrives first); a client without it does.
#[tokio::test]
async fn mqtt5_3_8_3_3_v5_no_local() {
    let (port, _stop) = start_broker().await;
    let (mut me, _) = Rumq::connect(port, "v5-nl-me", |_| {}).await;
    let mut filter = Filter::new("nl/#", QoS::AtLeastOnce);
    filter.nolocal = true;
    assert_eq!(
        me.subscribe_filter(filter, None).await,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let (mut other, _) = Rumq::connect(port, "v5-nl-other", |_| {}).await;
    other.subscribe("nl/#", QoS::AtLeastOnce).await;

    me.publish("nl/own", QoS::AtLeastOnce, false, "mine").await;
    let got = other.message().await;
    assert_eq!(
        topic_of(&got),
        "nl/own",
        "a subscriber without no local gets it"
    );
    other
        .publish("nl/marker", QoS::AtLeastOnce, false, "m")
        .await;
    let got = me.message().await;
    assert_eq!(
        topic_of(&got),
        "nl/marker",
        "no local: own publish not sent back"
    );
    me.disconnect().await;
    other.disconnect().await;
}

/// [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] retain handling: 0 sends the retained
/// message, 2 does not, 1 only for a subscription that did not exist.
#[tokio::test]
async fn mqtt5_3_3_1_11_v5_retain_handling() {
    let (port, _stop) = start_broker().await;
    let (mut publ, _) = Rumq::connect(port, "v5-rh-pub", |_| {}).await;
    publ.publish("rh/door", QoS::AtLeastOnce, true, "open")
        .await;

    let (mut c, _) = Rumq::connect(port, "v5-rh-sub", |_| {}).await;
    let mut never = Filter::new("rh/#", QoS::AtLeastOnce);
    never.retain_forward_rule = RetainForwardRule::Never;
    c.subscribe_filter(never, None).await;
    publ.publish("rh/marker", QoS::AtLeastOnce, false, "m")
        .await;
    let got = c.message().await;
    assert_eq!(
        topic_of(&got),
        "rh/marker",
        "retain handling 2: no retained"
    );

    let mut on_new = Filter::new("rh/+", QoS::AtLeastOnce);
    on_new.retain_forward_rule = RetainForwardRule::OnNewSubscribe;
    c.subscribe_filter(on_new.clone(), None).await;
    let got = c.message().await;
    assert_eq!((topic_of(&got), got.retain), ("rh/door", true));
    c.subscribe_filter(on_new, None).await;
    publ.publish("rh/marker", QoS::AtLeastOnce, false, "m2")
        .await;
    let got = c.message().await;
    assert_eq!(
        (topic_of(&got), &got.payload[..]),
        ("rh/marker", &b"m2"[..]),
        "retain handling 1: no retained for an existing subscription"
    );

    c.subscribe("rh/door", QoS::AtLeastOnce).await;
    let got = c.message().await;
    assert_eq!((topic_of(&got), got.retain), ("rh/door", true));
    c.disconnect().await;
    publ.disconnect().await;
}

/// [MQTT-3.3.4-3] a message matching subscriptions with identifiers carries them all.
#[tokio::test]
async fn mqtt_3_3_4_3_v5_subscription_identifiers_delivered() {
    let (port, _stop) = start_broker().await;
    let (mut c, _) = Rumq::connect(port, "v5-sid", |_| {}).await;
    for (filter, id) in [("sid/#", 7), ("sid/+/x", 300)] {
        let props = SubscribeProperties {
            id: Some(id),
            user_properties: Vec::new(),
        };
        c.subscribe_filter(Filter::new(filter, QoS::AtLeastOnce), Some(props))
            .await;
    }
    let (mut publ, _) = Rumq::connect(port, "v5-sid-pub", |_| {}).await;
    publ.publish("sid/a/x", QoS::AtLeastOnce, false, "both")
        .await;
    publ.publish("sid/a", QoS::AtLeastOnce, false, "one").await;
    let got = c.message().await;
    let mut ids = got.properties.unwrap().subscription_identifiers;
    ids.sort_unstable();
    assert_eq!(ids, vec![7, 300]);
    let got = c.message().await;
    assert_eq!(got.properties.unwrap().subscription_identifiers, vec![7]);
    c.disconnect().await;
    publ.disconnect().await;
}

/// [MQTT-4.8.2-1] [MQTT-4.8.2-2] `$share/g/topic` with two rumqttc members: each message
/// goes to exactly one member, and both get some.
#[tokio::test]
async fn mqtt_4_8_2_2_v5_shared_subscription_one_member_per_message() {
    let (port, _stop) = start_broker().await;
    let (mut m1, _) = Rumq::connect(port, "v5-share-1", |_| {}).await;
    let (mut m2, _) = Rumq::connect(port, "v5-share-2", |_| {}).await;
    for m in [&mut m1, &mut m2] {
        assert_eq!(
            m.subscribe("$share/g/shared/t", QoS::AtLeastOnce).await,
            vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
        );
    }
    let (mut publ, _) = Rumq::connect(port, "v5-share-pub", |_| {}).await;
    const N: usize = 10;
    for i in 0..N {
        publ.publish("shared/t", QoS::AtLeastOnce, false, &format!("s{i}"))
            .await;
    }
    let (mut got1, mut got2) = (Vec::new(), Vec::new());
    while got1.len() + got2.len() < N {
        tokio::select! {
            p = m1.message() => got1.push(String::from_utf8(p.payload.to_vec()).unwrap()),
            p = m2.message() => got2.push(String::from_utf8(p.payload.to_vec()).unwrap()),
        }
    }
    // A duplicate would take the place of a message that should have arrived.
    let mut all: Vec<String> = got1.iter().chain(&got2).cloned().collect();
    all.sort();
    let mut expected: Vec<String> = (0..N).map(|i| format!("s{i}")).collect();
    expected.sort();
    assert_eq!(all, expected, "member 1: {got1:?}, member 2: {got2:?}");
    assert!(
        !got1.is_empty() && !got2.is_empty(),
        "both members must get messages: {got1:?} {got2:?}"
    );
    for c in [publ, m1, m2] {
        c.disconnect().await;
    }
}

/// [MQTT-3.3.2-12] a topic alias set by a rumqttc publisher (topic and alias, then the alias
/// alone) reaches a subscriber that allows no aliases with the full topic and no alias;
/// [MQTT-3.3.2-11] a subscriber that allows aliases gets the broker's own alias: the topic
/// with the alias once, then the alias alone (which rumqttc accepts).
#[tokio::test]
async fn mqtt_3_3_2_12_v5_topic_alias_from_client_reaches_subscribers() {
    let (port, _stop) = start_broker().await;
    let (mut plain, _) = Rumq::connect(port, "v5-ta-plain", |_| {}).await;
    plain.subscribe("alias/#", QoS::AtLeastOnce).await;
    let (mut aliased, _) = Rumq::connect(port, "v5-ta-aliased", |o| {
        o.set_topic_alias_max(Some(5));
    })
    .await;
    aliased.subscribe("alias/#", QoS::AtLeastOnce).await;

    let (mut publ, ack) = Rumq::connect(port, "v5-ta-pub", |_| {}).await;
    let max = ack.properties.and_then(|p| p.topic_alias_max).unwrap_or(0);
    assert!(max >= 1, "the broker advertises topic aliases: {max}");
    let alias = |a| PublishProperties {
        topic_alias: Some(a),
        ..PublishProperties::default()
    };
    publ.publish_props(
        "alias/long/topic",
        QoS::AtLeastOnce,
        false,
        "1",
        Some(alias(1)),
    )
    .await;
    publ.publish_props("", QoS::AtLeastOnce, false, "2", Some(alias(1)))
        .await;
    publ.publish_props("", QoS::ExactlyOnce, false, "3", Some(alias(1)))
        .await;
    for payload in ["1", "2", "3"] {
        let got = plain.message().await;
        assert_eq!(topic_of(&got), "alias/long/topic");
        assert_eq!(&got.payload[..], payload.as_bytes());
        assert_eq!(got.properties.and_then(|p| p.topic_alias), None);
    }
    // rumqttc reports each PUBLISH as received, before resolving the alias itself.
    let first = aliased.message().await;
    assert_eq!(topic_of(&first), "alias/long/topic");
    assert_eq!(&first.payload[..], b"1");
    let a = first.properties.and_then(|p| p.topic_alias);
    assert!(matches!(a, Some(1..=5)), "alias {a:?}");
    for payload in ["2", "3"] {
        let got = aliased.message().await;
        assert_eq!(topic_of(&got), "", "later messages carry only the alias");
        assert_eq!(got.properties.and_then(|p| p.topic_alias), a);
        assert_eq!(&got.payload[..], payload.as_bytes());
    }
    for c in [publ, plain, aliased] {
        c.disconnect().await;
    }
}

/// [MQTT-3.1.3-8] an empty client identifier with clean start 0 is refused with 0x85;
/// [MQTT-3.2.2-16] with clean start 1 it is accepted and an identifier assigned.
#[tokio::test]
async fn mqtt5_3_1_3_8_v5_empty_client_id_connack_codes() {
    let (port, _stop) = start_broker().await;
    let code = Rumq::refused(port, "", |o| {
        o.set_clean_start(false);
    })
    .await;
    assert_eq!(code, ConnectReturnCode::ClientIdentifierNotValid);

    let (c, ack) = Rumq::connect(port, "", |_| {}).await;
    let assigned = ack
        .properties
        .and_then(|p| p.assigned_client_identifier)
        .expect("assigned client identifier");
    assert!(!assigned.is_empty());
    c.disconnect().await;
}

/// [MQTT-4.12.0-1] a CONNECT with an authentication method the broker does not support is
/// refused with 0x8C (bad authentication method).
#[tokio::test]
async fn mqtt_4_12_0_1_v5_unsupported_auth_method_refused() {
    let (port, _stop) = start_broker().await;
    let code = Rumq::refused(port, "v5-auth-method", |o| {
        o.set_authentication_method(Some("SCRAM-SHA-256".into()));
    })
    .await;
    assert_eq!(code, ConnectReturnCode::BadAuthenticationMethod);
}
