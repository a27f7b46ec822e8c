//! The "figures" checker: the broker's `$SYS/broker/...` figures hold at least what clients saw
//! answered before the publication could be made (the broker's start plus its uptime), never
//! go down within one run of the broker, and add up.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{AckPacket, Event, Fault, Persistence, Trace};

fn judge(t: &Trace) -> Vec<Violation> {
    check::run(["figures"], t, &CheckConfig::default()).unwrap()
}

/// One publication received by `client`: uptime first, then `figures` (short topic names).
fn publication(st: &mut Story, client: &str, uptime_s: u64, figures: &[(&str, &str)]) {
    let figure = |topic: &str, value: String| Event::Figure {
        client: client.into(),
        topic: format!("$SYS/broker/{topic}"),
        value,
        retain: false,
    };
    st.push(figure("uptime", format!("{uptime_s} seconds")));
    for (topic, value) in figures {
        st.push(figure(topic, (*value).to_string()));
    }
}

/// `pub` has three QoS 1 publishes acknowledged by 1.5 s; `watch` is connected throughout.
fn three_acked() -> Story {
    let mut st = Story::new("3.1.1", Persistence::None);
    st.connect("watch", true, false).connect("pub", true, false);
    for id in 1..=3 {
        let label = st.publish("pub", "t", 1);
        st.after_ms(500)
            .ack_received("pub", AckPacket::Puback, id, &label)
            .ack("pub", &label);
    }
    st
}

#[test]
fn figures_that_count_what_clients_saw_pass() {
    let mut st = three_acked();
    st.at_ms(2_000);
    publication(
        &mut st,
        "watch",
        2,
        &[
            ("publish/messages/received", "3"),
            ("messages/received", "5"),
            ("messages/sent", "5"),
            ("clients/connected", "2"),
            ("clients/disconnected", "0"),
            ("clients/total", "2"),
        ],
    );
    st.at_ms(3_000);
    publication(&mut st, "watch", 3, &[("publish/messages/received", "3")]);
    assert_eq!(judge(&st.end()), vec![]);
}

#[test]
fn a_counter_below_what_clients_saw_answered_is_reported() {
    let mut st = three_acked();
    st.at_ms(2_000);
    publication(&mut st, "watch", 2, &[("publish/messages/received", "2")]);
    let v = judge(&st.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains(
            "watch received $SYS/broker/publish/messages/received = 2 with uptime 2 s, but clients had seen 3 PUBACKs and PUBRECs"
        ),
        "{}",
        v[0].message
    );
}

#[test]
fn what_clients_saw_after_the_publication_could_be_made_is_not_owed() {
    // Uptime 1 s: only the acknowledgements before 1 s count (one, at 0.5 s); the figure
    // arrives late, at 2 s, after all three.
    let mut st = three_acked();
    st.at_ms(2_000);
    publication(&mut st, "watch", 1, &[("publish/messages/received", "1")]);
    assert_eq!(judge(&st.end()), vec![]);
}

#[test]
fn a_restarted_broker_counts_again_from_zero_and_from_its_restart() {
    let mut st = three_acked();
    st.at_ms(2_000).broker_crash().at_ms(2_500).broker_restart();
    st.connect("watch", true, false);
    // Uptime 1 s of the new run: the three acknowledgements belong to the old one.
    st.at_ms(4_000);
    publication(&mut st, "watch", 1, &[("publish/messages/received", "0")]);
    assert_eq!(judge(&st.end()), vec![]);
}

#[test]
fn a_counter_going_down_within_one_run_is_reported() {
    let mut st = three_acked();
    st.at_ms(2_000);
    publication(&mut st, "watch", 2, &[("messages/sent", "9")]);
    st.at_ms(3_000);
    publication(&mut st, "watch", 3, &[("messages/sent", "8")]);
    let v = judge(&st.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message
            .contains("below the 9 published with uptime 2 s"),
        "{}",
        v[0].message
    );
}

#[test]
fn refusals_and_denials_are_bounds_of_their_counters() {
    let mut st = Story::new("5.0", Persistence::None);
    st.connect("watch", true, false);
    st.connecting("intruder", true)
        .connect_refused("intruder", 0x86);
    st.connect("reader", true, false)
        .subscribe_granted("reader", "secret/#", 1, None);
    st.at_ms(2_000);
    publication(
        &mut st,
        "watch",
        2,
        &[("clients/refused", "0"), ("subscriptions/denied", "0")],
    );
    let v = judge(&st.end());
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(
        v[0].message.contains("CONNACKs refusing credentials"),
        "{}",
        v[0].message
    );
    assert!(
        v[1].message.contains("SUBACK failures 0x87"),
        "{}",
        v[1].message
    );
}

#[test]
fn figures_of_the_wrong_shape_or_that_do_not_add_up_are_reported() {
    let mut st = Story::new("3.1.1", Persistence::None);
    st.connect("watch", true, false);
    publication(
        &mut st,
        "watch",
        0,
        &[
            ("clients/connected", "1"),
            ("clients/disconnected", "2"),
            ("clients/total", "2"),
            ("bytes/sent", "lots"),
        ],
    );
    st.push(Event::Figure {
        client: "watch".into(),
        topic: "$SYS/broker/uptime".into(),
        value: "7s".into(),
        retain: false,
    });
    let v = judge(&st.end());
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(
        v[0].message.contains("connected 1 + disconnected 2"),
        "{}",
        v[0].message
    );
    assert!(
        v[1].message.contains("not a whole number"),
        "{}",
        v[1].message
    );
    assert!(v[2].message.contains("not `N seconds`"), "{}", v[2].message);
}

#[test]
fn a_crash_forgets_the_publication_in_progress() {
    // The uptime arrived before the crash; figures without a new uptime are not judged.
    let mut st = three_acked();
    st.at_ms(2_000);
    publication(&mut st, "watch", 0, &[]);
    st.fault(Fault::BrokerCrash);
    st.push(Event::Figure {
        client: "watch".into(),
        topic: "$SYS/broker/publish/messages/received".into(),
        value: "0".into(),
        retain: false,
    });
    assert_eq!(judge(&st.end()), vec![]);
}

#[test]
fn a_broker_running_before_the_run_sets_no_bound() {
    // Uptime 100 s at 2 s into the run: the broker started before it, so when the publication
    // was made is unknown and the three acknowledgements bound nothing.
    let mut st = three_acked();
    st.at_ms(2_000);
    publication(&mut st, "watch", 100, &[("publish/messages/received", "0")]);
    assert_eq!(judge(&st.end()), vec![]);
}
