//! The `receives` expectation (checker name `expect`): count bounds (`at_least`, `at_most`,
//! `exactly`, `exactly = 0` for nothing) and the QoS and RETAIN flag of every delivery, each
//! judged both ways on hand-written traces.

use mqtt_lab::check::expect::{Expectations, Receives, check};
use mqtt_lab::check::story::Story;
use mqtt_lab::trace::{Persistence, Trace};

fn expect(r: Receives) -> Expectations {
    Expectations {
        receives: vec![r],
        max_queued: 1000,
        ..Expectations::default()
    }
}

fn entry(fill: impl FnOnce(&mut Receives)) -> Receives {
    let mut r = Receives {
        client: "mon".into(),
        filter: Some("t/#".into()),
        ..Receives::default()
    };
    fill(&mut r);
    r
}

/// `mon` gets `n` distinct QoS 1 messages on `t/1` (the first twice), and one on `u/1`.
fn story(n: usize) -> Trace {
    let mut st = Story::new("3.1.1", Persistence::Durable);
    st.connect("mon", false, false)
        .subscribe("mon", "#", 1)
        .connect("pub", true, false);
    for i in 0..n {
        let l = st.publish("pub", "t/1", 1);
        st.after_ms(5).deliver("mon", &l);
        if i == 0 {
            st.redeliver("mon", &l);
        }
    }
    let other = st.publish("pub", "u/1", 1);
    st.after_ms(5).deliver("mon", &other);
    st.end()
}

#[test]
fn at_most_is_broken_by_one_message_too_many() {
    let e = expect(entry(|r| r.at_most = Some(2)));
    assert_eq!(
        check(&e, &story(2)),
        vec![],
        "two, a duplicate and an off-filter one"
    );
    let v = check(&e, &story(3));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message
            .contains("received 3 message(s) on t/#, expected at most 2"),
        "{}",
        v[0]
    );
}

#[test]
fn exactly_is_broken_by_one_too_few_or_too_many() {
    let e = expect(entry(|r| r.exactly = Some(2)));
    assert_eq!(check(&e, &story(2)), vec![]);
    for n in [1, 3] {
        let v = check(&e, &story(n));
        assert_eq!(v.len(), 1, "{n}: {v:?}");
        assert!(v[0].message.contains("expected exactly 2"), "{}", v[0]);
    }
}

#[test]
fn exactly_zero_means_nothing_arrives() {
    let e = expect(entry(|r| r.exactly = Some(0)));
    assert_eq!(check(&e, &story(0)), vec![], "only the off-filter message");
    let v = check(&e, &story(1));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("expected nothing"), "{}", v[0]);
}

#[test]
fn every_delivery_must_have_the_qos_asked_for() {
    let e = expect(entry(|r| r.qos = Some(1)));
    assert_eq!(check(&e, &story(3)), vec![]);
    let mut st = Story::new("3.1.1", Persistence::Durable);
    st.connect("mon", false, false)
        .subscribe("mon", "#", 1)
        .connect("pub", true, false);
    let a = st.publish("pub", "t/1", 1);
    st.after_ms(5).deliver("mon", &a);
    let b = st.publish("pub", "t/1", 1);
    st.after_ms(5).deliver_as("mon", &b, 0, false, false);
    let v = check(&e, &st.end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains(&format!(
            "received {b} on t/1 at QoS 0 with RETAIN 0, expected QoS 1"
        )),
        "{}",
        v[0]
    );
}

#[test]
fn every_delivery_must_have_the_retain_flag_asked_for() {
    let mut st = Story::new("3.1.1", Persistence::Durable);
    st.connect("pub", true, false);
    let kept = st.publish_retained("pub", "t/1", 1);
    st.after_ms(5).ack("pub", &kept);
    st.connect("mon", true, false).subscribe("mon", "t/#", 1);
    st.after_ms(5).deliver_retained("mon", &kept, 1);
    let trace = st.end();
    assert_eq!(
        check(&expect(entry(|r| r.retain = Some(true))), &trace),
        vec![]
    );
    let v = check(&expect(entry(|r| r.retain = Some(false))), &trace);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("expected RETAIN 0"), "{}", v[0]);
}

/// A short `receives` names each missing message with the first reason the trace shows: here
/// one never acknowledged to its publisher, one lost with the publisher's session, one
/// published before `mon` subscribed, and one nothing excuses.
#[test]
fn a_short_receives_lists_the_missing_messages_and_why() {
    let mut st = Story::new("3.1.1", Persistence::Durable);
    st.connect("pub", true, false);
    let early = st.publish("pub", "t/0", 1);
    st.ack("pub", &early);
    st.connect("mon", false, false).subscribe("mon", "t/#", 1);
    let got = st.publish("pub", "t/1", 1);
    st.ack("pub", &got).after_ms(5).deliver("mon", &got);
    let unacked = st.publish("pub", "t/2", 1);
    let lost = st.publish("pub", "t/3", 1);
    st.publish_lost("pub", &lost);
    let dropped = st.publish("pub", "t/4", 1);
    st.ack("pub", &dropped);
    let trace = st.end();
    let v = check(&expect(entry(|r| r.at_least = Some(5))), &trace);
    assert_eq!(v.len(), 1, "{v:?}");
    let m = &v[0].message;
    assert!(
        m.contains("received 1 message(s) on t/#, expected at least 5"),
        "{m}"
    );
    for (label, why) in [
        (
            &early,
            "mon held no subscription matching t/0 when it was published",
        ),
        (&unacked, "never acknowledged to pub"),
        (&lost, "pub's session lost it before it was acknowledged"),
        (&dropped, "nothing in the trace excuses it"),
    ] {
        assert!(m.contains(&format!("{label} ({why}")), "{label}: {m}");
    }
    assert!(!m.contains(&format!("{got} (")), "{m}");
    assert!(!m.contains("only"), "enough were published: {m}");
    // Six wanted of five published: too few published at all.
    let v = check(&expect(entry(|r| r.at_least = Some(6))), &trace);
    assert!(
        v[0].message
            .contains("; only 5 distinct message(s) were published on it at all; missing: "),
        "{}",
        v[0]
    );
}

/// Only a message acknowledged once the settle phase began is said to be maybe on its way; one
/// acknowledged before it, in a trace with no settle phase recorded, is not.
#[test]
fn a_message_is_said_to_be_on_its_way_only_when_acknowledged_in_the_settle_phase() {
    let run = |settle_first: bool| {
        let mut st = Story::new("3.1.1", Persistence::Durable);
        st.connect("mon", false, false)
            .subscribe("mon", "t/#", 1)
            .connect("pub", true, false);
        if settle_first {
            st.settle();
        }
        let l = st.publish("pub", "t/1", 1);
        st.ack("pub", &l);
        check(&expect(entry(|r| r.at_least = Some(1))), &st.end())
    };
    let late = run(true);
    assert!(
        late[0].message.contains("in the settle phase"),
        "{}",
        late[0]
    );
    let early = run(false);
    assert!(
        early[0].message.contains("nothing in the trace excuses it"),
        "{}",
        early[0]
    );
}
