//! The "will" checker on hand-written traces: published exactly once when the client went
//! away abnormally, never after a normal DISCONNECT, in time.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{BROKER, Fault, Persistence, SubOptions, Trace};

fn will(t: &Trace) -> Vec<Violation> {
    check::run(["will"], t, &CheckConfig::default()).unwrap()
}

fn all(t: &Trace) -> Vec<Violation> {
    check::run_all(t, &CheckConfig::default()).unwrap()
}

/// A monitor watching `status/#`, and a sensor (keep-alive 4 s) with a QoS 1 will.
fn world(protocol: &str) -> Story {
    let mut s = Story::new(protocol, Persistence::Durable);
    s.connect("monitor", false, false)
        .subscribe("monitor", "status/#", 1);
    s.keep_alive("sensor", 4)
        .will("sensor", "status/sensor", 1, false);
    s.connect("sensor", false, false).after_ms(1000);
    s
}

#[test]
fn crash_publishes_the_will_and_a_normal_disconnect_does_not() {
    let mut s = world("3.1.1");
    s.crash("sensor")
        .after_ms(20)
        .deliver_will("monitor", "sensor")
        .after_ms(1000)
        .restart("sensor");
    s.connect("sensor", false, true)
        .after_ms(1000)
        .disconnect("sensor");
    assert_eq!(all(&s.end()), vec![]);
}

/// Planted bug: a will sent after a DISCONNECT.
#[test]
fn will_after_a_normal_disconnect_is_reported() {
    let mut s = world("3.1.1");
    s.disconnect("sensor")
        .after_ms(20)
        .deliver_will("monitor", "sensor");
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("will sensor#will-1 of sensor")
            && v[0].message.contains("normal DISCONNECT"),
        "{}",
        v[0]
    );
}

/// Planted bug: a will not sent after a crash.
#[test]
fn will_missing_after_a_crash_is_reported() {
    let mut s = world("3.1.1");
    s.crash("sensor").after_ms(20_000);
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("never reached monitor"), "{}", v[0]);
}

#[test]
fn power_off_is_noticed_by_keep_alive_within_the_bound() {
    // 1.5 x 4 s = 6 s after the power-off, plus 2 s of slack: at 7.9 s it is in time.
    let mut s = world("3.1.1");
    s.power_off("sensor")
        .after_ms(7900)
        .deliver_will("monitor", "sensor");
    assert_eq!(all(&s.end()), vec![]);
    let mut s = world("3.1.1");
    s.power_off("sensor")
        .after_ms(8100)
        .deliver_will("monitor", "sensor");
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("after the deadline"), "{}", v[0]);
}

#[test]
fn will_published_twice_is_reported() {
    let mut s = world("3.1.1");
    s.cut("sensor")
        .deliver_will("monitor", "sensor")
        .after_ms(10)
        .deliver_will("monitor", "sensor");
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("twice"), "{}", v[0]);
}

#[test]
fn will_while_the_client_is_healthy_is_reported() {
    let mut s = world("3.1.1");
    s.deliver_will("monitor", "sensor");
    let v = will(&s.end());
    assert!(v.iter().any(|v| v.message.contains("still open")), "{v:?}");
}

#[test]
fn a_disconnect_that_a_fault_may_have_eaten_allows_the_will() {
    let mut s = world("3.1.1");
    s.black_hole("sensor")
        .after_ms(100)
        .disconnect("sensor")
        .after_ms(6000)
        .deliver_will("monitor", "sensor");
    s.heal_black_hole("sensor");
    assert_eq!(will(&s.end()), vec![]);
}

#[test]
fn a_broker_crash_neither_demands_nor_forbids_the_will() {
    let mut s = world("3.1.1");
    s.broker_crash()
        .lost("sensor")
        .lost("monitor")
        .after_ms(1000)
        .broker_restart();
    s.connect("monitor", false, true)
        .connect("sensor", false, true);
    assert_eq!(all(&s.end()), vec![]);
}

#[test]
fn v5_will_delay_cancelled_by_a_timely_reconnect() {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("monitor", false, false)
        .subscribe("monitor", "status/#", 1);
    s.will_delayed("sensor", "status/sensor", 1, false, 30)
        .connect("sensor", false, false)
        .after_ms(1000);
    s.cut("sensor")
        .after_ms(5000)
        .connect("sensor", false, true);
    let t = s.trace_ended();
    assert_eq!(all(&t), vec![]);
    // The broker publishes the first connection's will anyway: reported.
    s.after_ms(30_000);
    let mut t = s.trace();
    t.push(
        s.now_us(),
        mqtt_lab::trace::Event::Delivered {
            client: "monitor".into(),
            topic: "status/sensor".into(),
            qos: 1,
            retain: false,
            dup: false,
            packet_id: None,
            payload: "sensor#will-1".into(),
            size: 0,
            message_expiry_s: None,
            properties: Default::default(),
            subscription_ids: Vec::new(),
        },
    );
    let v = will(&t);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("within the will delay"), "{}", v[0]);
}

#[test]
fn v5_disconnect_with_will_demands_it() {
    let mut s = world("5.0");
    s.disconnect_with_will("sensor").after_ms(10_000);
    assert_eq!(will(&s.end()).len(), 1);
    let mut s = world("5.0");
    s.disconnect_with_will("sensor")
        .after_ms(10)
        .deliver_will("monitor", "sensor");
    assert_eq!(all(&s.end()), vec![]);
}

#[test]
fn a_will_label_shared_by_connections_goes_to_the_one_that_ended() {
    // The world reuses one will label: the old connection's will arrives after the client is
    // back (takeover of a powered-off connection), and is not blamed on the new connection.
    let mut t = world("3.1.1");
    t.power_off("sensor")
        .after_ms(500)
        .heal(mqtt_lab::trace::Fault::ClientPowerOff {
            client: "sensor".into(),
        });
    t.connect("sensor", false, true).after_ms(10);
    let mut trace = t.end();
    for e in &mut trace.events {
        if let mqtt_lab::trace::Event::Connecting { will: Some(w), .. } = &mut e.event {
            w.payload = "sensor#will".into();
        }
    }
    let at = trace.events.len() - 2;
    trace.events.insert(
        at,
        mqtt_lab::trace::TraceEvent {
            process: None,
            at_us: trace.events[at - 1].at_us,
            event: mqtt_lab::trace::Event::Delivered {
                client: "monitor".into(),
                topic: "status/sensor".into(),
                qos: 1,
                retain: false,
                dup: false,
                packet_id: None,
                payload: "sensor#will".into(),
                size: 0,
                message_expiry_s: None,
                properties: Default::default(),
                subscription_ids: Vec::new(),
            },
        },
    );
    assert_eq!(all(&trace), vec![]);
}

#[test]
fn v5_reconnect_with_clean_start_ends_the_session_and_may_send_the_delayed_will() {
    let mut s = Story::new("5.0", Persistence::Durable);
    s.connect("monitor", false, false)
        .subscribe("monitor", "status/#", 1);
    s.will_delayed("sensor", "status/sensor", 1, false, 30)
        .connect("sensor", false, false)
        .after_ms(1000);
    s.cut("sensor").after_ms(5000);
    let label = s.will_label("sensor");
    s.connect("sensor", true, false);
    let mut t = s.end();
    let at = t.events.len() - 2;
    t.events.insert(
        at,
        mqtt_lab::trace::TraceEvent {
            process: None,
            at_us: t.events[at - 1].at_us,
            event: mqtt_lab::trace::Event::Delivered {
                client: "monitor".into(),
                topic: "status/sensor".into(),
                qos: 1,
                retain: false,
                dup: false,
                packet_id: None,
                payload: label,
                size: 0,
                message_expiry_s: None,
                properties: Default::default(),
                subscription_ids: Vec::new(),
            },
        },
    );
    assert_eq!(all(&t), vec![]);
}

/// A 5.0 sensor (keep-alive 4 s, session expiry `expiry` s) with a will delayed `delay` s,
/// and a monitor with a persistent session, under `persistence`.
fn delayed(persistence: Persistence, expiry: u32, delay: u32) -> Story {
    let mut s = Story::new("5.0", persistence);
    s.connect("monitor", false, false)
        .subscribe("monitor", "status/#", 1);
    s.keep_alive("sensor", 4)
        .session_expiry("sensor", expiry)
        .will_delayed("sensor", "status/sensor", 1, false, delay)
        .connect("sensor", false, false)
        .after_ms(1000);
    s
}

/// [MQTT-3.1.3-9] Planted bug: the will published at once, ignoring its delay.
#[test]
fn mqtt5_3_1_3_9_will_before_its_delay_is_reported() {
    let mut s = delayed(Persistence::Durable, 300, 10);
    s.crash("sensor")
        .after_ms(20)
        .deliver_will("monitor", "sensor");
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("before its will delay") && v[0].message.contains("MQTT-3.1.3-9"),
        "{}",
        v[0]
    );
    let mut s = delayed(Persistence::Durable, 300, 10);
    s.crash("sensor")
        .after_ms(10_050)
        .deliver_will("monitor", "sensor");
    assert_eq!(all(&s.end()), vec![]);
}

/// [MQTT-3.1.3-9] A session expiry shorter than the will delay sends the will when the
/// session ends: not before that, but not only after the delay either.
#[test]
fn mqtt5_3_1_3_9_session_expiry_shorter_than_the_delay_bounds_the_will() {
    let mut s = delayed(Persistence::Durable, 2, 60);
    s.crash("sensor")
        .after_ms(2_100)
        .deliver_will("monitor", "sensor");
    assert_eq!(all(&s.end()), vec![]);
    let mut s = delayed(Persistence::Durable, 2, 60);
    s.crash("sensor")
        .after_ms(1_000)
        .deliver_will("monitor", "sensor");
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("before its will delay"), "{}", v[0]);
    // Late: the deadline is the crash + 1.5 x keep-alive (6 s) + the session expiry (2 s, not
    // the 60 s delay) + 2 s of slack.
    let mut s = delayed(Persistence::Durable, 2, 60);
    s.crash("sensor")
        .after_ms(20_000)
        .deliver_will("monitor", "sensor");
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    let msg = &v[0].message;
    assert!(msg.contains("after the deadline"), "{msg}");
    let number_after = |key: &str| -> u64 {
        let rest = &msg[msg.find(key).unwrap_or_else(|| panic!("{key}: {msg}")) + key.len()..];
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(
        number_after("after the deadline ") - number_after("(end "),
        10_000_000,
        "{msg}"
    );
}

/// A sensor crash, then a broker crash 3 s later (the broker had certainly noticed the
/// sensor's reset connection) and a restart; no will ever arrives.
fn will_lost_in_a_broker_crash(persistence: Persistence) -> Trace {
    let mut s = delayed(persistence, 300, 10);
    s.crash("sensor")
        .after_ms(3_000)
        .broker_crash()
        .lost("monitor")
        .after_ms(2_000)
        .broker_restart()
        .after_ms(500);
    s.connect("monitor", false, persistence == Persistence::Durable)
        .after_ms(30_000);
    s.end()
}

/// Planted bug: a durable broker that forgets waiting wills in a crash. With persistence
/// `none` the will may be lost with the broker.
#[test]
fn waiting_will_lost_in_a_durable_broker_crash_is_reported() {
    let v = will(&will_lost_in_a_broker_crash(Persistence::Durable));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("never reached monitor"), "{}", v[0]);
    let none = will_lost_in_a_broker_crash(Persistence::None);
    assert_eq!(will(&none), vec![]);
}

/// A broker crash right after a client's connection reset may have come before the broker
/// noticed it: the will died with the connection, so it is not demanded.
#[test]
fn a_durable_broker_crash_right_after_the_loss_does_not_demand_the_will() {
    let mut s = delayed(Persistence::Durable, 300, 10);
    s.crash("sensor")
        .after_ms(500)
        .broker_crash()
        .lost("monitor")
        .after_ms(2_000)
        .broker_restart()
        .after_ms(500);
    s.connect("monitor", false, true).after_ms(30_000);
    assert_eq!(will(&s.end()), vec![]);
}

/// A monitor, and a sensor with keep-alive 0 and a QoS 1 will that powers off at 1 s and is
/// powered on at 11 s: the broker can see the end only then.
fn silent_keep_alive_0() -> Story {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("monitor", false, false)
        .subscribe("monitor", "status/#", 1);
    s.keep_alive("sensor", 0)
        .will("sensor", "status/sensor", 1, false);
    s.connect("sensor", true, false).after_ms(1000);
    s.power_off("sensor");
    s
}

#[test]
fn keep_alive_0_will_is_owed_once_the_broker_can_see_the_end() {
    let power_on = |s: &mut Story| {
        s.heal(Fault::ClientPowerOff {
            client: "sensor".into(),
        });
    };
    // Published right after the power-on (10 s after the power-off): fine.
    let mut s = silent_keep_alive_0();
    s.after_ms(10_000);
    power_on(&mut s);
    s.after_ms(20).deliver_will("monitor", "sensor");
    assert_eq!(all(&s.end()), vec![]);

    // Published while the machine is off: the broker cannot know yet.
    let mut s = silent_keep_alive_0();
    s.after_ms(3_000)
        .deliver_will("monitor", "sensor")
        .after_ms(7_000);
    power_on(&mut s);
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("keep-alive 0"), "{}", v[0]);

    // Owed after the power-on, within the slack.
    let mut s = silent_keep_alive_0();
    s.after_ms(10_000);
    power_on(&mut s);
    s.after_ms(5_000).deliver_will("monitor", "sensor");
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("after the deadline"), "{}", v[0]);
}

#[test]
fn keep_alive_0_will_of_a_machine_never_powered_on_is_never_owed() {
    let mut s = silent_keep_alive_0();
    s.after_ms(20_000);
    assert_eq!(all(&s.end()), vec![]);

    let mut s = silent_keep_alive_0();
    s.after_ms(20_000).deliver_will("monitor", "sensor");
    let v = will(&s.end());
    assert!(!v.is_empty(), "{v:?}");
    assert!(v[0].message.contains("keep-alive 0"), "{}", v[0]);
}

/// A keep-alive 0 sensor powered off and connecting again from a fresh process: the new
/// CONNECT lets the broker see the old connection's end.
#[test]
fn keep_alive_0_will_is_owed_after_the_next_connack() {
    let mut s = silent_keep_alive_0();
    s.after_ms(5_000).connect("sensor", true, false);
    s.after_ms(20).deliver_will_of("monitor", "sensor", 1);
    assert_eq!(all(&s.end()), vec![]);

    let mut s = silent_keep_alive_0();
    s.after_ms(5_000)
        .connect("sensor", true, false)
        .after_ms(15_000);
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("never reached monitor"), "{}", v[0]);
}

/// The CONNACK held by a one-way partition: the broker accepted the CONNECT, dropped the
/// silent connection and published the will before the client saw the CONNACK.
#[test]
fn will_of_a_connection_whose_connack_arrived_late_is_credited() {
    let partition = || Fault::Partition {
        from: BROKER.into(),
        to: "sensor".into(),
        one_way: true,
    };
    let world = || {
        let mut s = Story::new("3.1.1", Persistence::None);
        s.connect("monitor", false, false)
            .subscribe("monitor", "status/#", 1);
        s.keep_alive("sensor", 1)
            .will("sensor", "status/sensor", 1, false);
        s.connecting("sensor", true).after_ms(5);
        s
    };
    let mut s = world();
    s.fault(partition()).after_ms(1_500);
    s.deliver_will("monitor", "sensor").after_ms(5_000);
    s.heal(partition()).after_ms(10);
    s.connected("sensor", true, false).lost("sensor");
    assert_eq!(all(&s.end()), vec![]);

    // Before anything could have ended it: reported.
    let mut s = world();
    s.deliver_will("monitor", "sensor").after_ms(1_500);
    s.fault(partition()).after_ms(5_000);
    s.heal(partition()).after_ms(10);
    s.connected("sensor", true, false).lost("sensor");
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("still healthy"), "{}", v[0]);
}

/// A will of a CONNECT that never got its CONNACK may come, once; never after a refusal.
#[test]
fn will_of_a_connect_without_connack_may_come_once() {
    let world = || {
        let mut s = Story::new("3.1.1", Persistence::None);
        s.connect("monitor", false, false)
            .subscribe("monitor", "status/#", 1);
        s.keep_alive("sensor", 1)
            .will("sensor", "status/sensor", 1, false);
        s.connecting("sensor", true).after_ms(5);
        s
    };
    let mut s = world();
    s.black_hole("sensor").after_ms(1_600);
    s.deliver_will("monitor", "sensor").after_ms(10);
    s.connect_failed("sensor").heal_black_hole("sensor");
    assert_eq!(all(&s.end()), vec![]);

    let mut s = world();
    s.black_hole("sensor").after_ms(1_600);
    s.deliver_will("monitor", "sensor").after_ms(10);
    s.deliver_will("monitor", "sensor").after_ms(10);
    s.connect_failed("sensor").heal_black_hole("sensor");
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("twice"), "{}", v[0]);

    let mut s = world();
    s.connect_refused("sensor", 0x05).after_ms(10);
    s.deliver_will("monitor", "sensor");
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("refused"), "{}", v[0]);
}

/// The broker crashed after accepting the CONNECT, and the CONNACK reached the client after the
/// crash: the connection died with the broker, which owes no will for it.
#[test]
fn a_broker_crash_between_connect_and_connack_owes_no_will() {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("monitor", false, false)
        .subscribe("monitor", "status/#", 1);
    s.keep_alive("sensor", 0)
        .will("sensor", "status/sensor", 1, false);
    s.connecting("sensor", true).after_ms(5);
    s.broker_crash().after_ms(3);
    s.connected("sensor", true, false)
        .lost("sensor")
        .lost("monitor");
    s.after_ms(2_000).broker_restart().after_ms(10);
    s.connect("monitor", false, true)
        .connect("sensor", true, false);
    s.after_ms(20_000);
    assert_eq!(will(&s.end()), vec![]);
}

/// [MQTT-3.1.3-9] The will delay of a 5.0 client inside a 3.1.1 run is capped by its session
/// expiry: the rule follows the client's own CONNECT.
#[test]
fn mqtt5_3_1_3_9_will_delay_capped_for_a_v5_client_of_a_v311_run() {
    let world = || {
        let mut s = Story::new("3.1.1", Persistence::Durable);
        s.connect("monitor", false, false)
            .subscribe("monitor", "status/#", 1);
        s.protocol("sensor", "5.0")
            .session_expiry("sensor", 3)
            .keep_alive("sensor", 4)
            .will_delayed("sensor", "status/sensor", 1, false, 20);
        s.connect("sensor", false, false).after_ms(1000);
        s.crash("sensor");
        s
    };
    let mut s = world();
    s.after_ms(3_100).deliver_will("monitor", "sensor");
    assert_eq!(all(&s.end()), vec![]);

    let mut s = world();
    s.after_ms(1_000).deliver_will("monitor", "sensor");
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("before its will delay"), "{}", v[0]);
}

/// A monitor watching `status/#` with Retain As Published, and a sensor with a retained will.
fn rap_world() -> Story {
    let mut s = Story::new("5.0", Persistence::Durable);
    let rap = SubOptions {
        retain_as_published: true,
        ..SubOptions::default()
    };
    s.connect("monitor", false, false)
        .subscribe_with("monitor", "status/#", 1, rap);
    s.keep_alive("sensor", 4)
        .will("sensor", "status/sensor", 1, true);
    s.connect("sensor", false, false).after_ms(1000);
    s
}

/// [MQTT-3.3.1-13] A retained will forwarded through Retain As Published carries RETAIN 1 and
/// is the will's publication, not a retained copy: it is owed, and owed once.
#[test]
fn mqtt5_3_3_1_13_a_retained_will_forwarded_with_retain_as_published_counts_once() {
    let mut s = rap_world();
    s.crash("sensor")
        .after_ms(20)
        .deliver_will_retained("monitor", "sensor")
        .after_ms(20_000);
    assert_eq!(all(&s.end()), vec![]);

    let mut s = rap_world();
    s.crash("sensor")
        .after_ms(20)
        .deliver_will_retained("monitor", "sensor")
        .after_ms(20)
        .deliver_will_retained("monitor", "sensor");
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("twice"), "{}", v[0]);

    // Without the option, RETAIN 1 is no forwarded copy: the will never reached the monitor.
    let mut s = world("5.0");
    s.crash("sensor")
        .after_ms(20)
        .deliver_will_retained("monitor", "sensor")
        .after_ms(20_000);
    let v = will(&s.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("never reached monitor"), "{}", v[0]);
}
