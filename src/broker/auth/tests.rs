//! The broker enforcing authentication and authorization, on the in-memory harness.

use crate::broker::tests::{
    Harness, close_of, connect, connect_v5, payloads, publish, sent, subscribe, will,
};
use crate::broker::{Broker, BrokerConfig, BrokerCore, CloseReason};
use crate::codec::{Ack, Connect, Packet, QoS, ReasonCode};

use super::password::{HashCost, hash_password};
use super::{Acl, Auth, PasswordFile};

const ACL: &str = "\
topic read public/#
user alice
topic readwrite home/alice/#
topic read sensors/#
user bob
topic readwrite home/bob/#
pattern write clients/%c/#
pattern read clients/%c/#
";

fn passwords() -> PasswordFile {
    let mut f = PasswordFile::default();
    f.set(
        "alice",
        hash_password(b"wonderland", b"salt-for-alice!!", HashCost::MINIMAL),
    );
    f.set(
        "bob",
        hash_password(b"builder", b"salt-for-bob!!!!", HashCost::MINIMAL),
    );
    f
}

fn harness(allow_anonymous: bool, acl: bool) -> Harness {
    let config = BrokerConfig {
        allow_anonymous,
        ..Default::default()
    };
    let mut h = Harness::with(config.clone());
    h.broker = Broker::new(config).with_auth(Auth {
        passwords: Some(passwords()),
        acl: acl.then(|| Acl::parse("acl", ACL).unwrap()),
    });
    h
}

fn login(mut c: Connect, user: &str, password: &str) -> Connect {
    c.username = Some(user.to_owned());
    c.password = Some(password.as_bytes().to_vec().into());
    c
}

fn v311(id: &str, user: &str, password: &str) -> Connect {
    login(connect(id, true), user, password)
}

fn v5(id: &str, user: &str, password: &str) -> Connect {
    login(connect_v5(id, true, 0), user, password)
}

/// [MQTT-3.1.4-2] Failed authentication: a non-zero CONNACK code (0x04 "bad user name or
/// password" in 3.1.1), session present 0 (3.1.1 [MQTT-3.2.2-4]), the connection closed, and
/// no session made.
#[test]
fn mqtt5_3_1_4_2_wrong_password_is_refused_with_0x04_and_no_session() {
    let mut h = harness(true, false);
    h.accept(1);
    h.packet(1, Packet::Connect(v311("c1", "alice", "guess")));
    let out = h.drain();
    let Some(Packet::ConnAck(ack)) = sent(&out, 1).first().cloned() else {
        panic!("expected CONNACK in {out:?}");
    };
    assert_eq!(ack.reason, ReasonCode::BadUserNameOrPassword);
    assert!(!ack.session_present);
    assert_eq!(
        close_of(&out, 1),
        Some(CloseReason::ConnectRefused(
            ReasonCode::BadUserNameOrPassword
        ))
    );
    assert!(h.broker.session("c1").is_none());
    assert_eq!(h.broker.auth_stats().connects_refused, 1);
    // Unknown user, and a user name without a password, are refused the same way.
    let ack = h.connect_with(2, v311("c2", "mallory", "wonderland"));
    assert_eq!(ack.reason, ReasonCode::BadUserNameOrPassword);
    let mut no_password = connect("c3", true);
    no_password.username = Some("alice".into());
    assert_eq!(
        h.connect_with(3, no_password).reason,
        ReasonCode::BadUserNameOrPassword
    );
    // The right password is accepted.
    let ack = h.connect_with(4, v311("c4", "alice", "wonderland"));
    assert_eq!(ack.reason, ReasonCode::Success);
    assert!(h.broker.session("c4").is_some());
}

/// [MQTT-3.1.4-2] 5.0: bad credentials get 0x86, anonymous clients (when not allowed) 0x87.
#[test]
fn mqtt_3_1_4_2_v5_bad_credentials_0x86_and_anonymous_0x87() {
    let mut h = harness(false, false);
    assert_eq!(
        h.connect_with(1, v5("c1", "bob", "wrong")).reason,
        ReasonCode::BadUserNameOrPassword
    );
    assert_eq!(
        h.connect_with(2, connect_v5("c2", true, 0)).reason,
        ReasonCode::NotAuthorized
    );
    assert_eq!(
        h.connect_with(3, v5("c3", "bob", "builder")).reason,
        ReasonCode::Success
    );
}

/// Anonymous access is on by default and can be switched off (3.1.1: 0x05 "not authorized").
#[test]
fn mqtt5_3_1_4_2_anonymous_clients_are_refused_with_0x05_when_switched_off() {
    let mut open = harness(true, false);
    assert_eq!(open.connect(1, "anon", true).reason, ReasonCode::Success);
    let mut closed = harness(false, false);
    assert_eq!(
        closed.connect(1, "anon", true).reason,
        ReasonCode::NotAuthorized
    );
    // Without a password file a user name cannot be verified: still anonymous, still refused.
    let config = BrokerConfig {
        allow_anonymous: false,
        ..Default::default()
    };
    let mut h = Harness::with(config);
    assert_eq!(
        h.connect_with(1, v311("c", "alice", "wonderland")).reason,
        ReasonCode::NotAuthorized
    );
}

/// A refused CONNECT does not touch the session it names: a connected client keeps its
/// connection (no takeover) and a persistent session keeps its subscriptions (no clean start).
#[test]
fn mqtt5_3_1_4_2_refused_connect_neither_takes_over_nor_cleans_the_session() {
    let mut h = harness(true, false);
    let mut c = login(connect("shared", false), "alice", "wonderland");
    assert_eq!(h.connect_with(1, c.clone()).reason, ReasonCode::Success);
    h.subscribe(1, "a/b", QoS::AtLeastOnce);
    c.clean_start = true;
    c.password = Some(b"wrong".to_vec().into());
    assert_eq!(
        h.connect_with(2, c).reason,
        ReasonCode::BadUserNameOrPassword
    );
    let session = h.broker.session("shared").expect("session kept");
    assert!(session.subscriptions.contains_key("a/b"));
    // Connection 1 is still the session's connection: it still receives.
    h.connect(3, "pub", true);
    let out = h.publish(3, "a/b", QoS::AtMostOnce, 0, "still here");
    assert_eq!(payloads(&out, 1), ["still here"]);
    assert_eq!(close_of(&out, 1), None);
}

/// A will on a topic the client may not write refuses the CONNECT (not authorized).
#[test]
fn mqtt5_3_1_4_2_will_topic_not_writable_is_refused() {
    let mut h = harness(true, true);
    let mut c = v311("c1", "alice", "wonderland");
    c.will = Some(Box::new(will(
        "home/bob/status",
        "gone",
        QoS::AtMostOnce,
        false,
    )));
    assert_eq!(
        h.connect_with(1, c.clone()).reason,
        ReasonCode::NotAuthorized
    );
    c.will = Some(Box::new(will(
        "home/alice/status",
        "gone",
        QoS::AtMostOnce,
        false,
    )));
    assert_eq!(h.connect_with(2, c).reason, ReasonCode::Success);
}

/// [MQTT-3.8.4-5] One return code per filter: a denied filter gets 0x80 in 3.1.1, the others in
/// the same SUBSCRIBE are granted.
#[test]
fn mqtt_3_8_4_5_denied_filter_gets_0x80_and_others_are_granted() {
    let mut h = harness(true, true);
    h.connect_with(1, v311("c1", "alice", "wonderland"));
    h.packet(
        1,
        subscribe(
            7,
            &[
                ("home/alice/#", QoS::AtLeastOnce),
                ("home/bob/#", QoS::AtLeastOnce),
                ("sensors/+", QoS::AtMostOnce),
            ],
        ),
    );
    let out = h.drain();
    let Some(Packet::SubAck(s)) = sent(&out, 1).first().cloned() else {
        panic!("expected SUBACK in {out:?}");
    };
    assert_eq!(s.pkid, 7);
    assert_eq!(
        s.reasons,
        [
            ReasonCode::GrantedQoS1,
            ReasonCode::UnspecifiedError,
            ReasonCode::Success
        ]
    );
    let session = h.broker.session("c1").unwrap();
    assert!(!session.subscriptions.contains_key("home/bob/#"));
    assert!(session.subscriptions.contains_key("home/alice/#"));
    assert_eq!(h.broker.auth_stats().subscriptions_denied, 1);
}

/// [MQTT-3.9.3-1] 5.0: the denied filter's slot carries 0x87 "not authorized", in order.
#[test]
fn mqtt_3_9_3_1_v5_denied_filter_gets_0x87_in_its_slot() {
    let mut h = harness(true, true);
    h.connect_with(1, v5("c1", "bob", "builder"));
    h.packet(
        1,
        subscribe(
            1,
            &[
                ("home/alice/x", QoS::AtMostOnce),
                ("home/bob/x", QoS::AtMostOnce),
            ],
        ),
    );
    let out = h.drain();
    let Some(Packet::SubAck(s)) = sent(&out, 1).first().cloned() else {
        panic!("expected SUBACK in {out:?}");
    };
    assert_eq!(s.reasons, [ReasonCode::NotAuthorized, ReasonCode::Success]);
}

/// [MQTT-3.3.5-2] 3.1.1: a PUBLISH the client may not perform is acknowledged by the normal QoS
/// rules and dropped; nobody receives it and it is not retained.
#[test]
fn mqtt_3_3_5_2_denied_publish_is_acknowledged_and_dropped() {
    let mut h = harness(true, true);
    h.connect_with(1, v311("reader", "bob", "builder"));
    h.subscribe(1, "home/bob/#", QoS::ExactlyOnce);
    h.connect_with(2, v311("writer", "alice", "wonderland"));
    for (qos, pkid) in [
        (QoS::AtMostOnce, 0),
        (QoS::AtLeastOnce, 5),
        (QoS::ExactlyOnce, 6),
    ] {
        let Packet::Publish(mut p) = publish("home/bob/door", qos, pkid, "open") else {
            unreachable!()
        };
        p.retain = true;
        h.packet(2, Packet::Publish(p));
        let out = h.drain();
        assert!(payloads(&out, 1).is_empty(), "{qos:?} delivered: {out:?}");
        let acks = sent(&out, 2);
        match qos {
            QoS::AtMostOnce => assert!(acks.is_empty()),
            QoS::AtLeastOnce => assert_eq!(acks, [Packet::PubAck(Ack::new(5))]),
            QoS::ExactlyOnce => assert_eq!(acks, [Packet::PubRec(Ack::new(6))]),
        }
        assert_eq!(close_of(&out, 2), None);
    }
    // The QoS 2 flow completes normally.
    h.packet(2, Packet::PubRel(Ack::new(6)));
    assert_eq!(sent(&h.drain(), 2), [Packet::PubComp(Ack::new(6))]);
    assert_eq!(h.broker.auth_stats().publishes_denied, 3);
    // Nothing was retained: a new subscriber gets nothing.
    h.connect_with(3, v311("late", "bob", "builder"));
    h.subscribe(3, "home/bob/#", QoS::AtMostOnce);
    assert!(payloads(&h.drain(), 3).is_empty());
    // An allowed publish still flows.
    let out = h.publish(2, "home/alice/door", QoS::AtLeastOnce, 9, "mine");
    assert_eq!(sent(&out, 2), [Packet::PubAck(Ack::new(9))]);
}

/// 5.0: a denied PUBLISH is refused with 0x87 in its PUBACK / PUBREC and not forwarded.
#[test]
fn mqtt_3_4_2_1_v5_denied_publish_gets_0x87_in_puback_and_pubrec() {
    let mut h = harness(true, true);
    h.connect_with(1, v311("reader", "bob", "builder"));
    h.subscribe(1, "home/bob/#", QoS::ExactlyOnce);
    h.connect_with(2, v5("writer", "alice", "wonderland"));
    let out = h.publish(2, "home/bob/door", QoS::AtLeastOnce, 3, "x");
    let mut refused = Ack::new(3);
    refused.reason = ReasonCode::NotAuthorized;
    assert_eq!(sent(&out, 2), [Packet::PubAck(refused.clone())]);
    let out = h.publish(2, "home/bob/door", QoS::ExactlyOnce, 4, "x");
    refused.pkid = 4;
    assert_eq!(sent(&out, 2), [Packet::PubRec(refused)]);
    assert!(payloads(&out, 1).is_empty());
    let out = h.publish(2, "home/alice/door", QoS::AtLeastOnce, 5, "ok");
    assert_eq!(sent(&out, 2), [Packet::PubAck(Ack::new(5))]);
}

/// A `#` subscription delivers only what the subscriber may read, live and retained.
#[test]
fn wildcard_subscription_does_not_leak_unreadable_topics() {
    let mut h = harness(true, true);
    h.connect_with(1, v311("bob-1", "bob", "builder"));
    let Packet::Publish(mut p) = publish("home/bob/secret", QoS::AtMostOnce, 0, "retained") else {
        unreachable!()
    };
    p.retain = true;
    h.packet(1, Packet::Publish(p));
    h.drain();
    h.connect_with(2, v311("alice-1", "alice", "wonderland"));
    // alice may read public/# and sensors/#, so `#` is granted ...
    h.packet(2, subscribe(1, &[("#", QoS::AtMostOnce)]));
    let out = h.drain();
    assert!(payloads(&out, 2).is_empty(), "retained leak: {out:?}");
    // ... but bob's topic never reaches her.
    let out = h.publish(1, "home/bob/secret", QoS::AtMostOnce, 0, "live");
    assert!(payloads(&out, 2).is_empty(), "live leak: {out:?}");
    let out = h.publish(1, "clients/bob-1/x", QoS::AtMostOnce, 0, "mine");
    assert!(payloads(&out, 2).is_empty());
    assert_eq!(h.broker.auth_stats().deliveries_withheld, 3);
    // Her own topics do reach her through `#`.
    let out = h.publish(2, "home/alice/lamp", QoS::AtMostOnce, 0, "on");
    assert_eq!(payloads(&out, 2), ["on"]);
}

/// `%c` patterns give each client its own subtree; a session taken over by another user is
/// judged as the new user.
#[test]
fn client_id_patterns_and_the_identity_of_the_current_connection() {
    let mut h = harness(true, true);
    h.connect_with(1, v311("dev-1", "bob", "builder"));
    h.subscribe(1, "clients/dev-1/#", QoS::AtMostOnce);
    let out = h.publish(1, "clients/dev-1/state", QoS::AtMostOnce, 0, "up");
    assert_eq!(payloads(&out, 1), ["up"]);
    let out = h.publish(1, "clients/dev-2/state", QoS::AtMostOnce, 0, "spoof");
    assert!(payloads(&out, 1).is_empty());
    // bob's persistent session, resumed by alice: bob's home is no longer readable.
    let mut h = harness(true, true);
    h.connect_with(1, login(connect("s", false), "bob", "builder"));
    h.subscribe(1, "home/bob/#", QoS::AtMostOnce);
    h.connect_with(2, login(connect("s", false), "alice", "wonderland"));
    h.connect_with(3, v311("w", "bob", "builder"));
    let out = h.publish(3, "home/bob/x", QoS::AtMostOnce, 0, "private");
    assert!(payloads(&out, 2).is_empty(), "{out:?}");
}

/// Without an ACL an authenticated client may do everything; protocol version does not matter.
#[test]
fn without_acl_everything_is_allowed() {
    let mut h = harness(true, false);
    h.connect_with(1, v311("a", "alice", "wonderland"));
    h.subscribe(1, "#", QoS::AtMostOnce);
    h.connect_with(2, v5("b", "bob", "builder"));
    let out = h.publish(2, "home/alice/x", QoS::AtMostOnce, 0, "hi");
    assert_eq!(payloads(&out, 1), ["hi"]);
    assert_eq!(h.broker.auth_stats(), Default::default());
}

/// The user name of a persistent session survives a restart: a message for the offline session
/// is judged under its user's rules (here alice may read her home), not as anonymous.
#[test]
fn restored_session_keeps_its_user_name_for_access_checks() {
    let mut h = harness(true, true);
    h.connect_with(1, login(connect("s", false), "alice", "wonderland"));
    h.subscribe(1, "home/alice/#", QoS::AtLeastOnce);
    h.closed(1, crate::broker::CloseCause::Io);
    h.drain();
    let state = h.broker.durable_state();
    assert_eq!(state.users.get("s").map(String::as_str), Some("alice"));
    let config = h.broker.config().clone();
    h.broker = Broker::restore(config, state).with_auth(Auth {
        passwords: Some(passwords()),
        acl: Some(Acl::parse("acl", ACL).unwrap()),
    });
    h.connect_with(2, v311("a2", "alice", "wonderland"));
    h.publish(2, "home/alice/door", QoS::AtLeastOnce, 1, "open");
    assert_eq!(h.broker.auth_stats().deliveries_withheld, 0);
    h.accept(3);
    h.packet(
        3,
        Packet::Connect(login(connect("s", false), "alice", "wonderland")),
    );
    assert_eq!(payloads(&h.drain(), 3), ["open"]);
}

/// A connection the shell authenticated (a verified client certificate's name) is that user:
/// no password is needed or looked at, anonymous access being off does not refuse it, and the
/// ACL judges it under that name. Other connections are checked as before.
#[test]
fn a_connection_authenticated_by_the_shell_is_its_identity_whatever_it_sends() {
    let mut h = harness(false, true);
    h.broker.handle_accept_as(h.now, 1, Some("alice"));
    h.packet(1, Packet::Connect(v311("c1", "bob", "wrong")));
    let out = h.drain();
    let Some(Packet::ConnAck(ack)) = sent(&out, 1).first().cloned() else {
        panic!("expected CONNACK in {out:?}");
    };
    assert_eq!(ack.reason, ReasonCode::Success);
    let info = h.broker.connection_info(1).expect("connected");
    assert_eq!(info.user.as_deref(), Some("alice"));
    h.subscribe(1, "home/alice/#", QoS::AtLeastOnce);
    h.packet(1, subscribe(2, &[("home/bob/#", QoS::AtLeastOnce)]));
    let out = h.drain();
    let Some(Packet::SubAck(s)) = sent(&out, 1).first().cloned() else {
        panic!("expected SUBACK in {out:?}");
    };
    assert_eq!(s.reasons, vec![ReasonCode::UnspecifiedError]);

    // Anonymous (no identity, no user name) is still refused, and no identity is like
    // `handle_accept`.
    h.broker.handle_accept_as(h.now, 2, None);
    h.packet(2, Packet::Connect(connect("c2", true)));
    let out = h.drain();
    let Some(Packet::ConnAck(ack)) = sent(&out, 2).first().cloned() else {
        panic!("expected CONNACK in {out:?}");
    };
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    // An identity given again for a connection already accepted changes nothing.
    h.broker.handle_accept_as(h.now, 1, Some("bob"));
    assert_eq!(
        h.broker.connection_info(1).unwrap().user.as_deref(),
        Some("alice")
    );
}
