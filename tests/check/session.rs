//! The "session" checker on hand-written traces: session present after reconnects and broker
//! restarts ([MQTT-3.2.2-1..3]).

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{Persistence, Trace};

fn session(t: &Trace) -> Vec<Violation> {
    check::run(["session"], t, &CheckConfig::default()).unwrap()
}

fn all(t: &Trace) -> Vec<Violation> {
    check::run_all(t, &CheckConfig::default()).unwrap()
}

#[test]
fn persistent_sessions_resume_and_clean_ones_do_not() {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("p", false, false)
        .connect("c", true, false)
        .after_ms(100);
    s.cut("p").cut("c").after_ms(100);
    s.connect("p", false, true)
        .connect("c", true, false)
        .after_ms(100);
    s.disconnect("c").after_ms(10).connect("c", false, false);
    assert_eq!(all(&s.end()), vec![]);
}

/// [MQTT-3.2.2-1] (3.1.1)
#[test]
fn mqtt_3_2_2_1_clean_session_must_not_report_a_session() {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("p", false, false)
        .after_ms(10)
        .cut("p")
        .connect("p", true, true);
    let v = session(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("p connected with clean start")
            && v[0].message.contains("MQTT-3.2.2-1")
    );
}

/// [MQTT-3.2.2-2] (3.1.1) Planted bug: a persistent session forgotten on broker restart.
#[test]
fn mqtt_3_2_2_2_session_forgotten_after_a_durable_restart_is_reported() {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("p", false, false)
        .after_ms(10)
        .broker_crash()
        .lost("p")
        .after_ms(500)
        .broker_restart();
    s.after_ms(100).connect("p", false, false);
    let v = session(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("p resumed") && v[0].message.contains("MQTT-3.2.2-2"),
        "{}",
        v[0]
    );
}

/// [MQTT-3.2.2-3]
#[test]
fn mqtt_3_2_2_3_no_session_after_a_crash_without_persistence() {
    let mut s = Story::new("3.1.1", Persistence::None);
    s.connect("p", false, false)
        .after_ms(10)
        .broker_crash()
        .lost("p")
        .after_ms(500)
        .broker_restart();
    s.after_ms(100).connect("p", false, false);
    assert_eq!(all(&s.trace_ended()), vec![]);
    s.after_ms(10).cut("p").connect("p", false, true);
    assert_eq!(
        session(&s.trace_ended()),
        vec![],
        "the session made after the restart exists"
    );
    let mut s = Story::new("3.1.1", Persistence::None);
    s.connect("p", false, false)
        .after_ms(10)
        .broker_crash()
        .lost("p")
        .after_ms(500)
        .broker_restart();
    s.after_ms(100).connect("p", false, true);
    let v = session(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("persistence none") && v[0].message.contains("MQTT-3.2.2-3"),
        "{}",
        v[0]
    );
}

#[test]
fn a_first_connect_has_no_session_unless_an_unanswered_connect_may_have_made_one() {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("p", false, true);
    assert_eq!(session(&s.end()).len(), 1);
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connecting("p", false)
        .connect_failed("p")
        .after_ms(100)
        .connect("p", false, true);
    assert_eq!(session(&s.end()), vec![]);
}

#[test]
fn v5_session_expiry_decides() {
    // Expiry 10 s: back after 1 s the session is there; after 60 s it is gone.
    let mut s = Story::new("5.0", Persistence::Durable);
    s.session_expiry("p", 10)
        .connect("p", false, false)
        .after_ms(10)
        .disconnect("p");
    s.after_ms(1000)
        .connect("p", false, true)
        .after_ms(10)
        .disconnect("p");
    s.after_ms(60_000).connect("p", false, false);
    assert_eq!(all(&s.end()), vec![]);
    let mut s = Story::new("5.0", Persistence::Durable);
    s.session_expiry("p", 10)
        .connect("p", false, false)
        .after_ms(10)
        .disconnect("p");
    s.after_ms(1000).connect("p", false, false);
    assert_eq!(session(&s.end()).len(), 1, "forgotten within its expiry");
    let mut s = Story::new("5.0", Persistence::Durable);
    s.session_expiry("p", 10)
        .connect("p", false, false)
        .after_ms(10)
        .disconnect("p");
    s.after_ms(60_000).connect("p", false, true);
    assert_eq!(session(&s.end()).len(), 1, "kept past its expiry");
    // Expiry 0: the session ends with the connection, even without clean start.
    let mut s = Story::new("5.0", Persistence::Durable);
    s.session_expiry("p", 0)
        .connect("p", false, false)
        .after_ms(10)
        .disconnect("p");
    s.after_ms(10).connect("p", false, false);
    assert_eq!(all(&s.end()), vec![]);
}

/// A 5.0 client `c` (keep-alive 1 s, session expiry 5 s) online when a durable broker crashes
/// and comes back 10 s later; `c` reconnects `after_ms` after the restart.
fn online_at_durable_crash(after_ms: u64, session_present: bool) -> Trace {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.keep_alive("c", 1).session_expiry("c", 5);
    s.connect("c", false, false)
        .after_ms(100)
        .broker_crash()
        .lost("c")
        .after_ms(10_000)
        .broker_restart()
        .after_ms(after_ms);
    s.connect("c", false, session_present);
    s.end()
}

/// A session online at a durable crash is restored offline and starts its expiry when the
/// broker is back at the latest: resuming it 1 s after the restart (expiry 5 s) is right;
/// 10 s after the restart it must be gone.
#[test]
fn mqtt5_3_2_2_3_session_online_at_a_durable_crash_expires_from_the_restart() {
    assert_eq!(all(&online_at_durable_crash(1_000, true)), vec![]);
    let v = session(&online_at_durable_crash(10_000, true));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("can hold no session"), "{}", v[0]);
}

/// [MQTT-3.2.2-3] Planted bug: a session that never expires. The downtime of a durable broker
/// counts towards the interval, so a session that expired meanwhile is not there afterwards.
#[test]
fn mqtt5_3_2_2_3_session_expired_across_a_durable_crash_must_be_gone() {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.keep_alive("c", 1).session_expiry("c", 2);
    s.connect("c", false, false)
        .after_ms(100)
        .disconnect("c")
        .after_ms(1_000)
        .broker_crash()
        .after_ms(10_000)
        .broker_restart()
        .after_ms(1_000);
    s.connect("c", false, true);
    let v = session(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("can hold no session") && v[0].message.contains("MQTT-3.2.2-3"),
        "{}",
        v[0]
    );
}

/// A session that expired: on return (session present 0) the client subscribes again; a
/// message its publisher saw acknowledged while it was away must not reach it, one published
/// after the new subscription may.
fn expired_then_delivered(stale: bool) -> Trace {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.keep_alive("c", 1).session_expiry("c", 2);
    s.connect("p", false, false);
    s.connect("c", false, false)
        .subscribe("c", "t/#", 1)
        .after_ms(100)
        .disconnect("c")
        .after_ms(500);
    let old = s.publish("p", "t/1", 1);
    s.after_ms(5).ack("p", &old).after_ms(10_000);
    s.connect("c", false, false).subscribe("c", "t/#", 1);
    let new = s.publish("p", "t/1", 1);
    s.after_ms(5).ack("p", &new).deliver("c", &new);
    if stale {
        s.deliver("c", &old);
    }
    s.end()
}

/// [MQTT-3.2.2-3] Planted bug: the queue of an expired session delivered to the new one.
#[test]
fn mqtt5_3_2_2_3_queued_message_of_an_expired_session_is_reported() {
    assert_eq!(all(&expired_then_delivered(false)), vec![]);
    let v = session(&expired_then_delivered(true));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("p#1") && v[0].message.contains("only an earlier session"),
        "{}",
        v[0]
    );
}

/// [MQTT-3.2.2-3] After an undisturbed DISCONNECT the broker knows the end within the slack,
/// whatever the keep-alive: a session of 2 s must be gone 8 s later.
#[test]
fn mqtt5_3_2_2_3_session_expires_from_an_undisturbed_disconnect() {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.keep_alive("c", 60).session_expiry("c", 2);
    s.connect("c", false, false)
        .after_ms(100)
        .disconnect("c")
        .after_ms(8_000);
    s.connect("c", false, true);
    let v = session(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("can hold no session"), "{}", v[0]);
}

/// [MQTT-3.2.2-3] A 3.1.1 client with clean session 0 inside a 5.0 run keeps its session (3.1.1
/// has no expiry): the rule follows the client's own CONNECT, not the run's protocol.
#[test]
fn mqtt_3_2_2_3_v311_persistent_client_of_a_v5_run_resumes_its_session() {
    let world = || {
        let mut s = Story::new("5.0", Persistence::Durable);
        s.protocol("old", "3.1.1")
            .connect("old", false, false)
            .after_ms(100)
            .cut("old")
            .after_ms(100);
        s
    };
    let mut s = world();
    s.connect("old", false, true);
    assert_eq!(all(&s.end()), vec![]);

    let mut s = world();
    s.connect("old", false, false);
    let v = session(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("must still hold"), "{}", v[0]);
}

/// [MQTT-3.2.2-3] A 5.0 client without clean start but with session expiry 0 inside a 3.1.1
/// run: its session ends with each connection, so the broker holds none after a cut.
#[test]
fn mqtt_3_2_2_3_v5_client_with_expiry_0_of_a_v311_run_has_no_session_after_a_cut() {
    let world = || {
        let mut s = Story::new("3.1.1", Persistence::Durable);
        s.protocol("new", "5.0")
            .session_expiry("new", 0)
            .connect("new", false, false)
            .after_ms(100)
            .cut("new")
            .after_ms(3000);
        s
    };
    let mut s = world();
    s.connect("new", false, false);
    assert_eq!(all(&s.end()), vec![]);

    let mut s = world();
    s.connect("new", false, true);
    let v = session(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("can hold no session"), "{}", v[0]);
}

/// A session the broker may have created from a CONNECT whose CONNACK crossed a durable
/// broker crash: its expiry starts when the broker is back, not when the client saw the end.
#[test]
fn a_connack_crossing_a_durable_broker_crash_counts_the_expiry_from_the_restart() {
    let world = || {
        let mut s = Story::new("5.0", Persistence::Durable);
        s.session_expiry("p", 5).connecting("p", false).after_ms(5);
        s.broker_crash().after_ms(3);
        s.connected("p", false, false).lost("p").after_ms(20_000);
        s.broker_restart().after_ms(6_000);
        s
    };
    // Back at 20 s: the session may wait until 27 s (5 s expiry, 2 s slack), so at 26 s
    // session present 1 is fine (counted from the client's end it would be long gone).
    let mut s = world();
    s.connect("p", false, true);
    assert_eq!(session(&s.end()), vec![]);

    // Certainly gone long after.
    let mut s = world();
    s.after_ms(10_000).connect("p", false, true);
    let v = session(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
}

/// 5.0: a DISCONNECT carrying a Session Expiry Interval sets the one in force from then on: a
/// session asked for 5 s and lengthened to an hour is still held 15 s later, one asked for an
/// hour and ended with 0 is not.
#[test]
fn mqtt5_a_disconnect_sets_the_session_expiry_in_force() {
    let story = |connect_s: u32, disconnect_s: u32, present: bool| {
        let mut st = Story::new("5.0", Persistence::Durable);
        st.session_expiry("c", connect_s)
            .connect("c", false, false)
            .at_ms(1_000)
            .disconnect_expiring("c", disconnect_s)
            .at_ms(16_000)
            .connect("c", false, present);
        check::run(["session"], &st.end(), &CheckConfig::default()).unwrap()
    };
    assert_eq!(story(5, 3600, true), vec![]);
    let v = story(5, 3600, false);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("must still hold its session"),
        "{}",
        v[0].message
    );
    assert_eq!(story(3600, 0, false), vec![]);
    let v = story(3600, 0, true);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("can hold no session"),
        "{}",
        v[0].message
    );
}
