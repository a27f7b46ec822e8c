//! The "unsubscribe" checker: nothing published after an UNSUBACK arrives through the filter
//! given up [MQTT-3.10.4-2]; what was published before it, or between the UNSUBSCRIBE and the
//! UNSUBACK, may; and the delivery checker owes nothing from the UNSUBSCRIBE on.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{Event, Persistence, Trace};

fn judge(name: &str, t: &Trace) -> Vec<Violation> {
    check::run([name], t, &CheckConfig::default()).unwrap()
}

/// `mon` holds `t/#` and `extra`, unsubscribes from `t/#` after one message; `after` is
/// published after the UNSUBACK and delivered when `delivered`.
fn story(extra: Option<&str>, delivered: bool) -> (Trace, String) {
    let mut st = Story::new("3.1.1", Persistence::Durable);
    st.connect("mon", false, false).subscribe("mon", "t/#", 1);
    if let Some(f) = extra {
        st.subscribe("mon", f, 1);
    }
    st.connect("pub", true, false);
    let before = st.publish("pub", "t/1", 1);
    st.after_ms(5).deliver("mon", &before).ack("pub", &before);
    st.after_ms(5).unsubscribe("mon", "t/#");
    let after = st.publish("pub", "t/1", 1);
    st.after_ms(5).ack("pub", &after);
    if delivered {
        st.deliver("mon", &after);
    }
    (st.end(), after)
}

#[test]
fn mqtt_3_10_4_2_no_new_message_after_the_unsuback() {
    let (t, after) = story(None, true);
    let v = judge("unsubscribe", &t);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message
            .contains(&format!("mon received {after} on t/1"))
            && v[0].message.contains("t/# (UNSUBACK at")
            && v[0].message.contains("[MQTT-3.10.4-2]"),
        "{}",
        v[0]
    );
    let (t, _) = story(None, false);
    assert_eq!(judge("unsubscribe", &t), vec![]);
    assert_eq!(judge("delivery", &t), vec![], "not owed after the UNSUBACK");
}

#[test]
fn another_matching_filter_still_brings_the_message() {
    let (t, _) = story(Some("t/1"), true);
    assert_eq!(judge("unsubscribe", &t), vec![]);
}

#[test]
fn a_message_published_before_the_unsuback_may_still_arrive() {
    let mut st = Story::new("3.1.1", Persistence::Durable);
    st.connect("mon", false, false)
        .subscribe("mon", "t/#", 1)
        .connect("pub", true, false);
    let early = st.publish("pub", "t/1", 1);
    st.push(Event::UnsubscribeRequested {
        client: "mon".into(),
        filter: "t/#".into(),
    });
    let racing = st.publish("pub", "t/1", 1);
    st.after_ms(5).push(Event::Unsubscribed {
        client: "mon".into(),
        filter: "t/#".into(),
    });
    st.after_ms(5)
        .deliver("mon", &early)
        .deliver("mon", &racing)
        .ack("pub", &early)
        .ack("pub", &racing);
    let t = st.end();
    assert_eq!(judge("unsubscribe", &t), vec![]);
}

#[test]
fn subscribing_again_holds_the_filter_again() {
    let mut st = Story::new("3.1.1", Persistence::Durable);
    st.connect("mon", false, false)
        .subscribe("mon", "t/#", 1)
        .connect("pub", true, false)
        .after_ms(5)
        .unsubscribe("mon", "t/#")
        .after_ms(5)
        .subscribe("mon", "t/#", 1);
    let m = st.publish("pub", "t/1", 1);
    st.after_ms(5).deliver("mon", &m).ack("pub", &m);
    assert_eq!(judge("unsubscribe", &st.end()), vec![]);
}
