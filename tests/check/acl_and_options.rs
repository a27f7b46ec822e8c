//! Checkers other than "acl" under an ACL or 5.0 subscription options: they owe nobody a
//! message its publisher may not write or its receiver may not read, apply No Local to wills
//! as the broker does, and judge foreign subscription identifiers on shared subscriptions too.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{Persistence, SubOptions, Trace};

fn run(checker: &str, t: &Trace) -> Vec<Violation> {
    check::run([checker], t, &CheckConfig::default()).unwrap()
}

const SHARE: &str = "$share/g/s/#";

/// A persistent 5.0 member of `$share/g/s/#` that may read only `s/1`, and a sensor that may
/// write `s/#`.
fn group_with_acl() -> Story {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.auth(
        true,
        &[("member", "m"), ("sensor", "s")],
        Some("user member\ntopic read s/1\nuser sensor\ntopic write s/#\n"),
    );
    s.credentials("a", "member", Some("m"))
        .credentials("sensor", "sensor", Some("s"))
        .session_expiry("a", 3600)
        .connect("a", false, false)
        .subscribe("a", SHARE, 1)
        .connect("sensor", true, false)
        .after_ms(10);
    s
}

/// [MQTT-4.8.2-2] a shared subscription delivers as a plain one would: a message no member
/// may read is owed to no member.
#[test]
fn mqtt_4_8_2_2_shared_owes_no_member_an_unreadable_message() {
    let mut s = group_with_acl();
    let m = s.publish("sensor", "s/2", 1);
    s.after_ms(5).ack("sensor", &m);
    assert_eq!(run("shared", &s.end()), vec![]);

    let mut s = group_with_acl();
    let m = s.publish("sensor", "s/1", 1);
    s.after_ms(5).ack("sensor", &m);
    let v = run("shared", &s.end());
    assert_eq!(v.len(), 1, "s/1 is readable and owed: {v:?}");
    assert!(v[0].message.contains("reached no member"), "{}", v[0]);
}

/// [MQTT-3.8.3-3] No Local covers the client's own will too: a client that comes back to a
/// session whose subscription matching its will topic has No Local is not owed its will.
#[test]
fn mqtt5_3_8_3_3_no_local_covers_the_client_s_own_will() {
    let story = |no_local: bool| {
        let mut s = Story::new("5.0", Persistence::Durable);
        s.will("dev", "status/dev", 1, false)
            .session_expiry("dev", 3600)
            .connect("dev", false, false)
            .subscribe_with(
                "dev",
                "status/#",
                1,
                SubOptions {
                    no_local,
                    ..SubOptions::default()
                },
            )
            .after_ms(10)
            .crash("dev")
            .after_ms(1000);
        s.connect("dev", false, true).after_ms(20_000);
        run("will", &s.end())
    };
    assert_eq!(story(true), vec![]);
    let v = story(false);
    assert_eq!(v.len(), 1, "without No Local the will is owed: {v:?}");
    assert!(v[0].message.contains("never reached dev"), "{}", v[0]);
}

/// [MQTT-3.3.4-3] a delivery carries only identifiers of the client's matching
/// subscriptions, shared ones included.
#[test]
fn mqtt_3_3_4_3_foreign_identifier_on_a_shared_subscription_is_reported() {
    let story = |ids: &[u32]| {
        let mut s = Story::new("5.0", Persistence::Durable);
        s.connect("a", true, false)
            .subscribe_with(
                "a",
                SHARE,
                1,
                SubOptions {
                    id: Some(5),
                    ..SubOptions::default()
                },
            )
            .connect("sensor", true, false)
            .after_ms(10);
        let m = s.publish("sensor", "s/1", 1);
        s.after_ms(5).deliver_ids("a", &m, ids).ack("sensor", &m);
        run("subscription", &s.end())
    };
    assert_eq!(story(&[5]), vec![]);
    let v = story(&[9]);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("[MQTT-3.3.4-3]"), "{}", v[0]);
}
