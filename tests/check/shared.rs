//! The "shared" checker on hand-written traces: one member per message, at least one at QoS 1
//! and 2, redistribution only after a member's session may have ended.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{Persistence, SubOptions, Trace};

const SHARE: &str = "$share/g/s/#";

fn shared(t: &Trace) -> Vec<Violation> {
    check::run(["shared"], t, &CheckConfig::default()).unwrap()
}

fn all(t: &Trace) -> Vec<Violation> {
    check::run_all(t, &CheckConfig::default()).unwrap()
}

/// Two persistent 5.0 members of `$share/g/s/#` at `qos`, and a connected sensor.
fn group(qos: u8) -> Story {
    let mut s = Story::new("5.0", Persistence::Durable);
    for m in ["a", "b"] {
        s.session_expiry(m, 3600)
            .connect(m, false, false)
            .subscribe(m, SHARE, qos);
    }
    s.connect("sensor", true, false).after_ms(10);
    s
}

/// [MQTT-4.8.2-1] each message goes to one member; round-robin over members is accepted by
/// every checker.
#[test]
fn mqtt_4_8_2_one_member_per_message_is_accepted() {
    let mut s = group(2);
    let m1 = s.publish("sensor", "s/1", 2);
    let m2 = s.publish("sensor", "s/1", 2);
    let m3 = s.publish("sensor", "s/1", 1);
    s.after_ms(5)
        .deliver("a", &m1)
        .deliver("b", &m2)
        .deliver("a", &m3)
        .ack("sensor", &m1)
        .ack("sensor", &m2)
        .ack("sensor", &m3);
    assert_eq!(all(&s.end()), vec![]);
}

#[test]
fn qos2_message_delivered_to_two_members_is_reported() {
    let mut s = group(2);
    let m1 = s.publish("sensor", "s/1", 2);
    s.after_ms(5)
        .deliver("a", &m1)
        .after_ms(1)
        .deliver("b", &m1)
        .ack("sensor", &m1);
    let v = shared(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("sensor#1") && v[0].message.contains("two members"),
        "{}",
        v[0]
    );
}

#[test]
fn qos0_message_delivered_to_two_members_is_reported() {
    let mut s = group(1);
    let m1 = s.publish("sensor", "s/1", 0);
    s.after_ms(5).deliver("a", &m1).deliver("b", &m1);
    assert_eq!(shared(&s.end()).len(), 1);
}

/// A member whose connection ended may have lost its session; its message may go to another.
#[test]
fn redelivery_to_another_member_after_a_cut_is_accepted() {
    let mut s = group(1);
    let m1 = s.publish("sensor", "s/1", 1);
    s.after_ms(5)
        .deliver("a", &m1)
        .cut("a")
        .after_ms(100)
        .deliver("b", &m1)
        .ack("sensor", &m1)
        .after_ms(500)
        .connect("a", false, true);
    assert_eq!(shared(&s.end()), vec![]);
}

/// [MQTT-4.8.2-5] 5.0: a QoS 2 message that reached a member never goes to another, even after
/// that member's session ended; a broker crash without persistence in between excuses it.
#[test]
fn mqtt5_4_8_2_5_qos2_redelivery_to_another_member_after_the_session_ended_is_reported() {
    let story = |lossy: bool| {
        let mut s = Story::new(
            "5.0",
            if lossy {
                Persistence::None
            } else {
                Persistence::Durable
            },
        );
        s.session_expiry("a", 0)
            .connect("a", true, false)
            .subscribe("a", SHARE, 2);
        s.session_expiry("b", 3600)
            .connect("b", false, false)
            .subscribe("b", SHARE, 2);
        s.connect("sensor", true, false).after_ms(10);
        let m1 = s.publish("sensor", "s/1", 2);
        s.after_ms(5).deliver("a", &m1).crash("a");
        if lossy {
            s.broker_crash().after_ms(100).broker_restart();
        }
        s.after_ms(100).deliver("b", &m1).ack("sensor", &m1);
        shared(&s.end())
    };
    let v = story(false);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("[MQTT-4.8.2-5]"), "{}", v[0]);
    assert_eq!(story(true), vec![]);
}

/// 5.0: a QoS 2 message sent to a member whose session ends with its connection is lost with
/// that session: the group is not owed it. At QoS 1 it goes to another member and is owed.
#[test]
fn mqtt5_4_8_2_5_qos2_message_of_an_ended_session_is_not_owed() {
    let story = |qos: u8| {
        let mut s = Story::new("5.0", Persistence::Durable);
        s.session_expiry("a", 0)
            .connect("a", true, false)
            .subscribe("a", SHARE, qos);
        s.session_expiry("b", 3600)
            .connect("b", false, false)
            .subscribe("b", SHARE, qos);
        s.connect("sensor", true, false).after_ms(10);
        let m1 = s.publish("sensor", "s/1", qos);
        s.after_ms(5).ack("sensor", &m1).cut("a").after_ms(30_000);
        shared(&s.end())
    };
    assert_eq!(story(2), vec![]);
    let v = story(1);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("reached no member"), "{}", v[0]);
}

#[test]
fn lost_qos1_message_is_reported() {
    let mut s = group(1);
    let m1 = s.publish("sensor", "s/1", 1);
    s.after_ms(5).ack("sensor", &m1);
    let v = shared(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("reached no member"), "{}", v[0]);
    // The delivery checker judges plain subscriptions only: no member is owed it alone.
    assert_eq!(
        check::run(["delivery"], &s.end(), &CheckConfig::default()).unwrap(),
        vec![]
    );
}

/// A member offline at the end with a persistent session may hold the message: not owed.
#[test]
fn message_possibly_stranded_at_an_offline_member_is_not_owed() {
    let mut s = group(1);
    s.disconnect("b");
    let m1 = s.publish("sensor", "s/1", 1);
    s.after_ms(5).ack("sensor", &m1);
    assert_eq!(shared(&s.end()), vec![]);
}

/// A member whose session ended with its connection long before the end cannot strand it.
#[test]
fn member_with_ended_session_does_not_excuse_a_loss() {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.session_expiry("a", 3600)
        .connect("a", false, false)
        .subscribe("a", SHARE, 1);
    s.keep_alive("b", 5)
        .session_expiry("b", 0)
        .connect("b", true, false)
        .subscribe("b", SHARE, 1);
    s.connect("sensor", true, false).after_ms(10).crash("b");
    let m1 = s.publish("sensor", "s/1", 1);
    s.after_ms(5).ack("sensor", &m1).after_ms(30_000);
    assert_eq!(shared(&s.end()).len(), 1);
}

/// [MQTT-3.3.2-5] an expired message must not be sent: a delivery to a subscriber that was
/// offline from the request until well past the expiry is reported; the message was not owed.
#[test]
fn mqtt_3_3_2_5_expired_message_is_not_owed_and_not_delivered() {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.session_expiry("late", 3600)
        .connect("late", false, false)
        .subscribe("late", "s/#", 1)
        .connect("sensor", true, false)
        .disconnect("late")
        .after_ms(10);
    let m1 = s.publish_expiring("sensor", "s/1", 1, 2);
    s.after_ms(5).ack("sensor", &m1).after_ms(10_000);
    s.connect("late", false, true);
    let owed_nothing = s.end();
    assert_eq!(all(&owed_nothing), vec![]);

    let mut s = Story::new("5.0", Persistence::Durable);
    s.session_expiry("late", 3600)
        .connect("late", false, false)
        .subscribe("late", "s/#", 1)
        .connect("sensor", true, false)
        .disconnect("late")
        .after_ms(10);
    let m1 = s.publish_expiring("sensor", "s/1", 1, 2);
    s.after_ms(5).ack("sensor", &m1).after_ms(10_000);
    s.connect("late", false, true)
        .after_ms(5)
        .deliver("late", &m1);
    let v = check::run(["delivery"], &s.end(), &CheckConfig::default()).unwrap();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("expired"), "{}", v[0]);
}

/// An unexpired message to a subscriber connected throughout is still owed.
#[test]
fn message_with_long_expiry_to_a_connected_subscriber_is_owed() {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("mon", false, false)
        .subscribe("mon", "s/#", 1)
        .connect("sensor", true, false)
        .after_ms(10);
    let m1 = s.publish_expiring("sensor", "s/1", 1, 60);
    s.after_ms(5).ack("sensor", &m1).after_ms(61_000);
    let v = check::run(["delivery"], &s.end(), &CheckConfig::default()).unwrap();
    assert_eq!(v.len(), 1, "{v:?}");
}

/// Two members of `$share/g/s/#` with Retain As Published, and a connected sensor.
fn rap_group() -> Story {
    let mut s = Story::new("5.0", Persistence::Durable);
    let rap = SubOptions {
        retain_as_published: true,
        ..SubOptions::default()
    };
    for m in ["a", "b"] {
        s.session_expiry(m, 3600)
            .connect(m, false, false)
            .subscribe_with(m, SHARE, 1, rap);
    }
    s.connect("sensor", true, false).after_ms(10);
    s
}

/// [MQTT-3.3.1-13] A retained message forwarded to a member with Retain As Published carries
/// RETAIN 1 and is the group's copy: it reaches the group, and a second member's copy is one
/// too many.
#[test]
fn mqtt5_3_3_1_13_retained_messages_forwarded_to_a_group_count_with_retain_as_published() {
    let mut s = rap_group();
    let m1 = s.publish_retained("sensor", "s/1", 1);
    s.after_ms(5)
        .deliver_as("a", &m1, 1, true, false)
        .ack("sensor", &m1);
    assert_eq!(all(&s.end()), vec![]);

    let mut s = rap_group();
    let m1 = s.publish_retained("sensor", "s/1", 1);
    s.after_ms(5).ack("sensor", &m1);
    let v = shared(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("reached no member"), "{}", v[0]);

    let mut s = rap_group();
    let m1 = s.publish_retained("sensor", "s/1", 1);
    s.after_ms(5)
        .deliver_as("a", &m1, 1, true, false)
        .after_ms(1)
        .deliver_as("b", &m1, 1, true, false)
        .ack("sensor", &m1);
    let v = shared(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("two members"), "{}", v[0]);
}

/// A member that subscribes again after a retained publish may get it as a retained copy
/// (RETAIN 1, as a Retain As Published forward would be): brokers differ on sending retained
/// messages to a new shared subscription. Such a copy beside another member's forward is no
/// second forward, and on its own it still shows the message reached the group.
#[test]
fn a_retained_copy_after_a_member_subscribes_again_is_no_second_forward() {
    let rap = SubOptions {
        retain_as_published: true,
        ..SubOptions::default()
    };
    let mut s = rap_group();
    let m1 = s.publish_retained("sensor", "s/1", 1);
    s.after_ms(5)
        .deliver_as("a", &m1, 1, true, false)
        .ack("sensor", &m1)
        .after_ms(5)
        .subscribe_with("b", SHARE, 1, rap)
        .deliver_as("b", &m1, 1, true, false);
    assert_eq!(shared(&s.end()), vec![]);

    let mut s = rap_group();
    let m1 = s.publish_retained("sensor", "s/1", 1);
    s.after_ms(5)
        .ack("sensor", &m1)
        .subscribe_with("b", SHARE, 1, rap)
        .deliver_as("b", &m1, 1, true, false);
    assert_eq!(shared(&s.end()), vec![]);
}
