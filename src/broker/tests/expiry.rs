//! 5.0 session expiry (while running and after a restart) and will delay.

use super::*;
use crate::broker::BrokerEvent;
use crate::codec::{Disconnect, ReasonCode};

/// `sub` (5.0, session expiry `expiry`) subscribed to `t` at QoS 1, then its connection lost;
/// `pub` connected on 1.
fn offline_v5(config: BrokerConfig, expiry: u32) -> Harness {
    let mut h = Harness::with(config);
    h.connect(1, "pub", true);
    h.connect_with(2, connect_v5("sub", false, expiry));
    h.subscribe(2, "t", QoS::AtLeastOnce);
    h.closed(2, CloseCause::Io);
    h.drain();
    h
}

/// [MQTT-3.1.2-23] A session with expiry interval 10 is kept for 10 s after its connection
/// ends, then discarded: it no longer routes, and a reconnect finds no session.
#[test]
fn mqtt5_3_1_2_23_session_expires_after_its_interval() {
    let mut h = offline_v5(BrokerConfig::default(), 10);
    h.advance_to_ms(9_999);
    assert!(h.broker.session("sub").is_some());
    h.publish(1, "t", QoS::AtLeastOnce, 1, "kept");
    h.advance_to(10);
    assert!(h.broker.session("sub").is_none(), "expired at 10 s");
    assert_eq!(h.broker.stats().sessions_expired, 1);
    assert_eq!(
        std::iter::from_fn(|| h.broker.poll_event()).last(),
        Some(BrokerEvent::SessionExpired {
            client_id: "sub".into()
        })
    );
    assert!(h.broker.poll_timeout().is_none());
    let ack = h.connect_with(3, connect_v5("sub", false, 10));
    assert!(!ack.session_present);
}

/// [MQTT-3.1.2-23] A resumed session is not expired by the timer of its previous disconnect.
#[test]
fn mqtt5_3_1_2_23_resume_cancels_the_expiry() {
    let mut h = offline_v5(BrokerConfig::default(), 10);
    h.advance_to(5);
    let ack = h.connect_with(3, connect_v5("sub", false, 10));
    assert!(ack.session_present);
    h.advance_to(100);
    assert!(h.broker.session("sub").is_some());
    assert_eq!(h.broker.stats().sessions_expired, 0);
    // The next disconnect starts a fresh interval.
    h.closed(3, CloseCause::PeerClosed);
    h.advance_to(109);
    assert!(h.broker.session("sub").is_some());
    h.advance_to(110);
    assert!(h.broker.session("sub").is_none());
}

/// [MQTT-3.1.2-23] 0xFFFFFFFF: the session never expires.
#[test]
fn mqtt5_3_1_2_23_max_interval_never_expires() {
    let mut h = offline_v5(BrokerConfig::default(), u32::MAX);
    assert!(h.broker.poll_timeout().is_none());
    h.advance_to(10_000_000);
    assert!(h.broker.session("sub").is_some());
}

/// [MQTT-3.14.2-2] DISCONNECT may change the interval (here to 3 s) when it was non-zero.
#[test]
fn mqtt5_3_14_2_2_disconnect_changes_the_expiry_interval() {
    let mut h = Harness::new();
    h.connect_with(2, connect_v5("sub", false, 100));
    let mut d = Disconnect::default();
    d.properties.session_expiry_interval = Some(3);
    h.packet(2, Packet::Disconnect(d));
    h.drain();
    h.advance_to(2);
    assert!(h.broker.session("sub").is_some());
    h.advance_to(3);
    assert!(h.broker.session("sub").is_none());
}

/// 5.0 [MQTT-3.14.2-2]: a DISCONNECT may also lengthen the interval: the session outlives
/// the CONNECT's 5 s.
#[test]
fn mqtt5_3_14_2_2_disconnect_lengthens_the_expiry_interval() {
    let mut h = Harness::new();
    h.connect_with(2, connect_v5("sub", false, 5));
    h.subscribe(2, "t", QoS::AtLeastOnce);
    let mut d = Disconnect::default();
    d.properties.session_expiry_interval = Some(3600);
    h.packet(2, Packet::Disconnect(d));
    h.drain();
    h.closed(2, CloseCause::PeerClosed);
    h.advance_to(15);
    assert!(h.broker.session("sub").is_some());
    let ack = h.connect_with(3, connect_v5("sub", false, 5));
    assert!(ack.session_present);
}

/// `max_session_expiry` caps the interval; a 5.0 client is told the value used
/// (section 3.2.2.3.2, session expiry interval in CONNACK).
#[test]
fn mqtt5_3_2_2_max_session_expiry_caps_and_is_announced() {
    let mut h = offline_v5(
        BrokerConfig {
            max_session_expiry: 4,
            ..Default::default()
        },
        3600,
    );
    h.advance_to(4);
    assert!(h.broker.session("sub").is_none());
    let ack = h.connect_with(3, connect_v5("x", false, 3600));
    assert_eq!(ack.properties.session_expiry_interval, Some(4));
    let ack = h.connect_with(4, connect_v5("y", false, 3));
    assert_eq!(ack.properties.session_expiry_interval, None, "as asked");
}

/// Session expiry runs after a restart: the remaining interval at the save is counted from
/// the `now` given to `restore_at`, and queued messages are gone with the session.
#[test]
fn mqtt5_3_1_2_23_expiry_survives_restore_at() {
    let mut h = offline_v5(BrokerConfig::default(), 10);
    h.publish(1, "t", QoS::AtLeastOnce, 1, "queued");
    h.advance_to(4);
    h.packet(1, Packet::PingReq);
    let state = h.broker.durable_state();
    assert_eq!(state.sessions["sub"].queued().len(), 1);
    // The new process starts an hour later on its own clock.
    let later = h.now + Duration::from_secs(3600);
    let mut h2 = Harness {
        model: None,
        changes: Vec::new(),
        broker: Broker::restore_at(h.broker.config().clone(), state.clone(), later),
        t0: later - Duration::from_secs(4),
        now: later,
    };
    assert_eq!(
        h2.broker.poll_timeout(),
        Some(later + Duration::from_secs(6)),
        "6 s remained at the save"
    );
    h2.advance_to(9);
    assert!(h2.broker.session("sub").is_some());
    h2.advance_to(10);
    assert!(h2.broker.session("sub").is_none());

    // `restore` (without a time) counts from the first event it is given.
    let mut h3 = Harness {
        model: None,
        changes: Vec::new(),
        broker: Broker::restore(h.broker.config().clone(), state),
        t0: later - Duration::from_secs(4),
        now: later,
    };
    h3.accept(50);
    h3.advance_to(9);
    assert!(h3.broker.session("sub").is_some());
    h3.advance_to(10);
    assert!(h3.broker.session("sub").is_none());
}

/// A session connected when the state was saved starts its full interval at the restore.
#[test]
fn mqtt5_3_1_2_23_session_online_at_save_expires_after_restore() {
    let mut h = Harness::new();
    h.connect_with(2, connect_v5("sub", false, 5));
    let state = h.broker.durable_state();
    let mut h = Harness {
        model: None,
        changes: Vec::new(),
        broker: Broker::restore_at(h.broker.config().clone(), state, h.now),
        t0: h.t0,
        now: h.now,
    };
    h.advance_to(4);
    assert!(h.broker.session("sub").is_some());
    h.advance_to(5);
    assert!(h.broker.session("sub").is_none());
}

/// `watcher` subscribed to `wills/#`; `dev` (5.0, session expiry `expiry`) with a will
/// delayed by `delay` seconds, then its connection lost at t=0.
fn delayed_will(expiry: u32, delay: u32) -> Harness {
    let mut h = Harness::new();
    h.connect(9, "watcher", true);
    h.subscribe(9, "wills/#", QoS::AtLeastOnce);
    let mut c = connect_v5("dev", false, expiry);
    let mut w = will("wills/dev", "gone", QoS::AtLeastOnce, false);
    w.properties.will_delay_interval = Some(delay);
    c.will = Some(Box::new(w));
    h.connect_with(1, c);
    h.closed(1, CloseCause::Io);
    assert!(publishes(&h.drain(), 9).is_empty(), "the will waits");
    h
}

/// Advances to `secs` and returns the payloads `watcher` got.
fn watch(h: &mut Harness, secs: u64) -> Vec<String> {
    h.advance_to(secs);
    payloads(&h.drain(), 9)
}

/// [MQTT-3.1.3-9] The will waits its delay interval, then is published once.
#[test]
fn mqtt5_3_1_3_9_will_published_after_its_delay() {
    let mut h = delayed_will(100, 5);
    assert!(watch(&mut h, 4).is_empty());
    assert_eq!(watch(&mut h, 5), vec!["gone"]);
    assert!(watch(&mut h, 200).is_empty(), "once");
    assert!(
        h.broker.session("dev").is_none(),
        "then the session expired"
    );
}

/// [MQTT-3.1.3-9] A connection resuming the session before the delay cancels the will.
#[test]
fn mqtt5_3_1_3_9_resume_before_delay_cancels_the_will() {
    let mut h = delayed_will(100, 5);
    h.advance_to(3);
    h.connect_with(2, connect_v5("dev", false, 100));
    assert!(watch(&mut h, 50).is_empty());
}

/// The will is published when the session ends first: expiry shorter than the delay.
#[test]
fn mqtt5_3_1_3_9_session_end_before_delay_publishes_the_will() {
    let mut h = delayed_will(2, 30);
    assert!(watch(&mut h, 1).is_empty());
    assert_eq!(watch(&mut h, 2), vec!["gone"]);
    assert!(watch(&mut h, 40).is_empty());
}

/// A clean-start reconnect ends the old session, so its delayed will is published at once.
#[test]
fn mqtt5_3_1_3_9_clean_start_ends_session_and_publishes_delayed_will() {
    let mut h = delayed_will(100, 30);
    h.advance_to(1);
    h.accept(2);
    h.packet(2, Packet::Connect(connect_v5("dev", true, 100)));
    assert_eq!(payloads(&h.drain(), 9), vec!["gone"]);
    assert!(watch(&mut h, 60).is_empty());
}

/// Session expiry 0: the session ends with the connection, so the will goes at once despite
/// its delay.
#[test]
fn mqtt5_3_1_3_9_expiry_zero_publishes_will_at_close() {
    let mut h = Harness::new();
    h.connect(9, "watcher", true);
    h.subscribe(9, "wills/#", QoS::AtLeastOnce);
    let mut c = connect_v5("dev", true, 0);
    let mut w = will("wills/dev", "gone", QoS::AtLeastOnce, false);
    w.properties.will_delay_interval = Some(60);
    c.will = Some(Box::new(w));
    h.connect_with(1, c);
    h.closed(1, CloseCause::Io);
    let p = publishes(&h.drain(), 9);
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].properties.will_delay_interval, None,
        "will delay is not forwarded"
    );
}

/// [MQTT-3.14.2-1] DISCONNECT 0x04 publishes the will, after its delay.
#[test]
fn mqtt5_3_14_2_1_disconnect_0x04_publishes_delayed_will() {
    let mut h = Harness::new();
    h.connect(9, "watcher", true);
    h.subscribe(9, "wills/#", QoS::AtLeastOnce);
    let mut c = connect_v5("dev", false, 100);
    let mut w = will("wills/dev", "gone", QoS::AtLeastOnce, false);
    w.properties.will_delay_interval = Some(2);
    c.will = Some(Box::new(w));
    h.connect_with(1, c);
    h.packet(
        1,
        Packet::Disconnect(Disconnect {
            reason: ReasonCode::DisconnectWithWillMessage,
            properties: Properties::default(),
        }),
    );
    assert!(publishes(&h.drain(), 9).is_empty());
    assert_eq!(watch(&mut h, 2), vec!["gone"]);
}

/// `h`'s state, saved now, restored `down` seconds later by a store that counts the downtime
/// (`DurableState::aged`); the harness clock moves on by `down`.
fn crash_and_restore(mut h: Harness, down: u64) -> Harness {
    // The shell saves right after an event, at the broker's latest `now`.
    h.broker.handle_timeout(h.now);
    let state = h.broker.durable_state();
    let config = h.broker.config().clone();
    let now = h.now + Duration::from_secs(down);
    Harness {
        model: None,
        changes: Vec::new(),
        broker: Broker::restore_at(config, state.aged(Duration::from_secs(down)), now),
        t0: h.t0,
        now,
    }
}

/// `watcher` subscribes again after a restart (its clean session died with the broker).
fn rewatch(h: &mut Harness) {
    h.connect(9, "watcher", true);
    h.subscribe(9, "wills/#", QoS::AtLeastOnce);
}

/// [MQTT-3.1.3-9] A will waiting for its delay survives a broker restart and is published at
/// its time, not before, with the downtime counted.
#[test]
fn mqtt5_3_1_3_9_delayed_will_survives_restart() {
    let mut h = delayed_will(100, 10);
    h.advance_to(2);
    let state = h.broker.durable_state();
    assert_eq!(state.wills["dev"].will.payload, &b"gone"[..]);
    assert_eq!(state.wills["dev"].due, Duration::from_secs(10));
    let mut h = crash_and_restore(h, 3);
    rewatch(&mut h);
    assert!(watch(&mut h, 9).is_empty(), "not before the delay");
    assert_eq!(watch(&mut h, 10), vec!["gone"]);
    assert!(watch(&mut h, 200).is_empty(), "once");
    assert!(h.broker.durable_state().wills.is_empty());
}

/// [MQTT-3.1.3-9] A will whose delay ran out while the broker was down is published as soon
/// as the broker runs again (here to a persistent subscriber, queued until it returns).
#[test]
fn mqtt5_3_1_3_9_will_due_during_downtime_is_published_at_restart() {
    let mut h = Harness::new();
    h.connect(9, "watcher", false);
    h.subscribe(9, "wills/#", QoS::AtLeastOnce);
    let mut c = connect_v5("dev", false, 100);
    let mut w = will("wills/dev", "gone", QoS::AtLeastOnce, false);
    w.properties.will_delay_interval = Some(4);
    c.will = Some(Box::new(w));
    h.connect_with(1, c);
    h.closed(1, CloseCause::Io);
    h.closed(9, CloseCause::Io);
    h.drain();
    let mut h = crash_and_restore(h, 6);
    assert_eq!(h.broker.poll_timeout(), Some(h.now), "due at once");
    h.advance_to(6);
    h.accept(9);
    h.packet(9, Packet::Connect(connect("watcher", false)));
    assert_eq!(payloads(&h.drain(), 9), vec!["gone"]);
}

/// [MQTT-3.1.3-9] A session resumed after a restart, within the delay, cancels the will.
#[test]
fn mqtt5_3_1_3_9_resume_after_restart_cancels_the_will() {
    let h = delayed_will(100, 10);
    let mut h = crash_and_restore(h, 3);
    assert!(
        h.broker.durable_state().wills.contains_key("dev"),
        "the restore kept the will"
    );
    rewatch(&mut h);
    let ack = h.connect_with(2, connect_v5("dev", false, 100));
    assert!(ack.session_present);
    assert!(watch(&mut h, 60).is_empty());
}

/// [MQTT-3.1.3-9] When the session expires before the will delay, across a restart, the will
/// is published when the session ends, and the session is gone.
#[test]
fn mqtt5_3_1_3_9_session_end_after_restart_publishes_the_will() {
    let h = delayed_will(5, 30);
    let mut h = crash_and_restore(h, 2);
    rewatch(&mut h);
    assert!(watch(&mut h, 4).is_empty());
    assert_eq!(watch(&mut h, 5), vec!["gone"]);
    assert!(h.broker.session("dev").is_none());
    assert!(watch(&mut h, 40).is_empty());
}

/// [MQTT-3.1.2-23] [MQTT-3.2.2-3] A session that expires while the broker is down is gone at
/// the restart: a CONNECT finds no session (session present 0) and what was queued for it is
/// not delivered, even if the broker has not had a timeout yet.
#[test]
fn mqtt5_3_1_2_23_session_expiring_during_downtime_is_gone_at_restart() {
    let mut h = offline_v5(BrokerConfig::default(), 5);
    h.publish(1, "t", QoS::AtLeastOnce, 1, "queued");
    h.advance_to(1);
    let mut h = crash_and_restore(h, 10);
    // No `handle_timeout` before the CONNECT.
    h.accept(3);
    h.packet(3, Packet::Connect(connect_v5("sub", false, 5)));
    let out = h.drain();
    let Packet::ConnAck(a) = &sent(&out, 3)[0] else {
        panic!("{out:?}")
    };
    assert!(!a.session_present);
    assert!(
        publishes(&out, 3).is_empty(),
        "the queue died with the session"
    );
}

/// [MQTT-3.1.2-23] A session whose expiry lies beyond the downtime is resumed with its queue.
#[test]
fn mqtt5_3_1_2_23_session_outliving_downtime_is_resumed_with_its_queue() {
    let mut h = offline_v5(BrokerConfig::default(), 60);
    h.publish(1, "t", QoS::AtLeastOnce, 1, "queued");
    let mut h = crash_and_restore(h, 10);
    h.accept(3);
    h.packet(3, Packet::Connect(connect_v5("sub", false, 60)));
    let out = h.drain();
    let Packet::ConnAck(a) = &sent(&out, 3)[0] else {
        panic!("{out:?}")
    };
    assert!(a.session_present);
    assert_eq!(payloads(&out, 3), vec!["queued"]);
}

/// Waiting wills are durable: a will that starts waiting is in the durable state, firing it
/// is a journal change that removes it, and cancelling it removes it.
#[test]
fn delayed_will_changes_reach_the_durable_state() {
    let mut h = delayed_will(100, 5);
    assert!(
        h.broker.durable_state().wills.contains_key("dev"),
        "the will started waiting"
    );
    h.drain();
    h.advance_to(5);
    h.drain();
    assert!(
        h.changes
            .iter()
            .any(|c| matches!(c, Change::WillDelete { client } if client == "dev")),
        "the will was published: {:?}",
        h.changes
    );
    assert!(h.broker.durable_state().wills.is_empty());
    let mut h = delayed_will(100, 5);
    assert!(h.broker.durable_state().wills.contains_key("dev"));
    h.connect_with(2, connect_v5("dev", false, 100));
    assert!(
        !h.broker.durable_state().wills.contains_key("dev"),
        "cancelled"
    );
}
