//! The checker registry and a large correct run: every checker accepts it, quickly.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CHECKERS, CheckConfig, CheckError};
use mqtt_lab::trace::{Event, Persistence, Trace};

#[test]
fn registry_names_every_checker_and_refuses_unknown_ones() {
    let names: Vec<&str> = CHECKERS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "delivery",
            "ordering",
            "retained",
            "will",
            "session",
            "integrity",
            "shared",
            "subscription",
            "acl",
            "handshake",
            "unsubscribe",
            "figures"
        ]
    );
    for n in names {
        assert!(check::by_name(n).is_some());
    }
    let t = Story::new("3.1.1", Persistence::Durable).end();
    assert_eq!(
        check::run(["delivery", "qos3"], &t, &CheckConfig::default()),
        Err(CheckError::UnknownChecker("qos3".into()))
    );
}

#[test]
fn malformed_traces_are_refused_not_judged() {
    let mut t = Story::new("3.1.1", Persistence::Durable).end();
    t.push(0, Event::RunEnded);
    assert!(matches!(
        check::run_all(&t, &CheckConfig::default()),
        Err(CheckError::Trace(_))
    ));
}

#[test]
fn violations_come_in_time_order_and_read_well() {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.connect("monitor", false, false)
        .subscribe("monitor", "s/#", 2)
        .connect("sensor", true, false);
    let m1 = s.publish("sensor", "s/1", 2);
    let m2 = s.publish("sensor", "s/1", 2);
    s.after_ms(5)
        .deliver("monitor", &m2)
        .after_ms(5)
        .deliver("monitor", &m1)
        .after_ms(5)
        .deliver("monitor", &m1);
    s.ack("sensor", &m1).ack("sensor", &m2);
    let v = check::run_all(&s.end(), &CheckConfig::default()).unwrap();
    let checkers: Vec<&str> = v.iter().map(|v| v.checker).collect();
    assert_eq!(checkers, ["ordering", "delivery"], "{v:?}");
    assert!(v.windows(2).all(|w| w[0].at_us <= w[1].at_us));
    assert!(
        v[1].to_string()
            .starts_with("[delivery] at 0.015000s: QoS 2 message sensor#1"),
        "{}",
        v[1]
    );
}

/// Ten publishers, three persistent subscribers with a cut each, 600 QoS 1/2 messages and
/// retained values: a correct run of some 5000 events must pass every checker.
fn big_run() -> Trace {
    let mut s = Story::new("3.1.1", Persistence::Durable);
    s.max_queued(10_000);
    let subs = ["m1", "m2", "m3"];
    for m in subs {
        s.connect(m, false, false).subscribe(m, "s/#", 2);
    }
    let pubs: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    for p in &pubs {
        s.connect(p, true, false);
    }
    for round in 0..60u64 {
        s.after_ms(10);
        if round == 20 {
            s.cut("m2").after_ms(50).connect("m2", false, true);
        }
        for (i, p) in pubs.iter().enumerate() {
            let qos = 1 + (i as u8 % 2);
            let label = if i == 0 {
                s.publish_retained(p, "s/r", 1)
            } else {
                s.publish(p, &format!("s/{i}"), qos)
            };
            for m in subs {
                s.deliver(m, &label);
            }
            s.ack(p, &label);
        }
    }
    s.connect("late", true, false)
        .subscribe("late", "s/r", 1)
        .deliver_retained("late", "p0#60", 1);
    s.end()
}

#[test]
fn a_large_correct_run_passes_every_checker() {
    let t = big_run();
    assert!(t.events.len() > 3000, "{}", t.events.len());
    let started = std::time::Instant::now();
    assert_eq!(check::run_all(&t, &CheckConfig::default()).unwrap(), vec![]);
    assert!(
        started.elapsed().as_secs() < 20,
        "checkers took {:?}",
        started.elapsed()
    );
    assert_eq!(
        Trace::from_jsonl(&t.to_jsonl()).unwrap().fingerprint(),
        t.fingerprint()
    );
}
