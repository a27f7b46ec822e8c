//! A broker crash the lab caused by a command and did not see strike (a target run): the trace
//! has its `fault_applied` when the command started and its `fault_took_effect` when the lab
//! knew the broker down. The checkers judge the run with the crash at both ends of that
//! window; what only one end breaks is undecided, what both break is a violation.

use mqtt_lab::check::CheckConfig;
use mqtt_lab::check::story::Story;
use mqtt_lab::scenario::Scenario;
use mqtt_lab::sim::judge_readings;
use mqtt_lab::trace::{Event, Fault, Persistence, Trace};

fn scenario() -> Scenario {
    Scenario::from_str(
        r#"
name = "judged by delivery and session"
protocol = "3.1.1"
duration = "10s"

[[client]]
id = "monitor"

[[client]]
id = "sensor"

[expect]
checkers = ["delivery", "session"]
"#,
        "undecided.toml",
    )
    .unwrap()
}

/// A persistent monitor on `s/#` at QoS 1 and a sensor. The monitor is cut at 900 ms; the
/// crash command starts at 1 s; 50 ms later the monitor's reconnect finds its session and the
/// sensor's message `late` is acknowledged; the connections drop at 1.1 s and the lab sees the
/// broker down at 1.2 s. `early` was acknowledged at 15 ms and delivered. `late` never reaches
/// the monitor.
fn crash_window(persistence: Persistence) -> (Trace, String) {
    let mut s = Story::new("3.1.1", persistence);
    s.connect("monitor", false, false)
        .subscribe("monitor", "s/#", 1);
    s.connect("sensor", true, false).after_ms(10);
    let early = s.publish("sensor", "s/1", 1);
    s.after_ms(5)
        .ack("sensor", &early)
        .deliver("monitor", &early);
    s.at_ms(900).cut("monitor");
    s.at_ms(1_000).broker_crash();
    s.at_ms(1_050).connect("monitor", false, true);
    let late = s.publish("sensor", "s/1", 1);
    s.ack("sensor", &late);
    s.at_ms(1_100).lost("sensor").lost("monitor");
    s.at_ms(1_200).push(Event::FaultTookEffect {
        fault: Fault::BrokerCrash,
    });
    s.at_ms(2_000).broker_restart().after_ms(100);
    let present = persistence == Persistence::Durable;
    s.connect("monitor", false, present)
        .connect("sensor", true, false);
    if !present {
        s.subscribe("monitor", "s/#", 1);
    }
    (s.end(), late)
}

#[test]
fn a_session_found_inside_the_crash_window_of_a_broker_that_keeps_nothing_is_undecided() {
    let (trace, _) = crash_window(Persistence::None);
    assert_eq!(
        trace.uncertain_faults(),
        vec![(&Fault::BrokerCrash, 1_000_000, 1_200_000)]
    );
    let (decided, undecided) = judge_readings(&scenario(), &trace, &CheckConfig::default());
    assert_eq!(
        decided,
        vec![],
        "lost in a crash of a broker that keeps nothing"
    );
    // Read with the crash at 1 s, the reconnect at 1.05 s cannot have found a session, and the
    // one after the restart should have; read with it at 1.2 s, both are right.
    assert_eq!(undecided.len(), 2, "{undecided:#?}");
    assert!(undecided.iter().all(|v| v.checker == "session"));
    assert_eq!(
        (undecided[0].at_us, undecided[1].at_us),
        (1_050_000, 2_100_000)
    );
    let v = &undecided[0];
    assert!(
        v.message.contains(
            "(undecided: broken if the fault struck at the earliest and not at the latest; \
             the broker crash struck between 1.000000s and 1.200000s)"
        ),
        "{}",
        v.message
    );
}

#[test]
fn a_message_a_durable_broker_acknowledged_and_lost_is_a_violation_whenever_it_crashed() {
    let (trace, late) = crash_window(Persistence::Durable);
    let (decided, undecided) = judge_readings(&scenario(), &trace, &CheckConfig::default());
    assert_eq!(undecided, vec![], "both ends agree");
    assert_eq!(decided.len(), 1, "{decided:#?}");
    assert!(decided[0].message.contains(&late), "{}", decided[0].message);
}

#[test]
fn without_a_window_the_judgment_is_the_plain_one() {
    let (trace, _) = crash_window(Persistence::None);
    let plain = Trace {
        events: trace
            .events
            .iter()
            .filter(|e| !matches!(e.event, Event::FaultTookEffect { .. }))
            .cloned()
            .collect(),
    };
    assert!(plain.latest_reading().is_none());
    let (decided, undecided) = judge_readings(&scenario(), &plain, &CheckConfig::default());
    assert_eq!(undecided, vec![]);
    assert_eq!(
        decided,
        mqtt_lab::sim::judge(&scenario(), &plain, &CheckConfig::default())
    );
    assert_eq!(
        decided.len(),
        2,
        "the crash at its only instant came before the reconnect"
    );

    // The latest reading moves the crash to where it took effect, and nothing else.
    let latest = trace.latest_reading().unwrap();
    assert_eq!(latest.events.len(), trace.events.len() - 1);
    let crash_at: Vec<u64> = latest
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.event,
                Event::FaultApplied {
                    fault: Fault::BrokerCrash
                }
            )
        })
        .map(|e| e.at_us)
        .collect();
    assert_eq!(crash_at, vec![1_200_000]);
}
