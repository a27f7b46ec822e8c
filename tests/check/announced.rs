//! What a 5.0 CONNACK announced, held against the SUBACKs of its connection (judged by
//! "integrity"): after Shared Subscription Available 0, no `$share/...` filter is granted.

use mqtt_lab::check::story::Story;
use mqtt_lab::check::{self, CheckConfig, Violation};
use mqtt_lab::trace::{Event, Persistence, Trace};

fn integrity(t: &Trace) -> Vec<Violation> {
    check::run(["integrity"], t, &CheckConfig::default()).unwrap()
}

const SHARED: &str = "$share/workers/jobs/#";

/// A SUBACK answering `filter` with failure `code` (as on the wire).
fn refused(s: &mut Story, client: &str, filter: &str, code: u8) {
    s.subscribe_requested(client, filter, 1);
    s.push(Event::SubscribeGranted {
        client: client.into(),
        filter: filter.into(),
        granted: None,
        code: Some(code),
    });
}

/// A worker whose CONNACK said Shared Subscription Available 0 and that asks for a shared and
/// a plain filter.
fn worker_told_no_shared() -> Story {
    let mut s = Story::new("5.0", Persistence::None);
    s.session_expiry("worker", 60)
        .connecting("worker", false)
        .connected_without_shared("worker", false, false);
    s
}

#[test]
fn mqtt5_3_2_2_3_13_shared_filter_granted_after_connack_said_unavailable_is_reported() {
    let mut s = worker_told_no_shared();
    s.at_ms(10)
        .subscribe("worker", SHARED, 1)
        .subscribe("worker", "jobs/#", 1);
    let v = integrity(&s.at_ms(1_000).end());
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].at_us, 10_000);
    assert!(
        v[0].message.contains(
            "worker was granted QoS 1 for the shared subscription $share/workers/jobs/# on a connection whose CONNACK announced Shared Subscription Available 0"
        ) && v[0].message.contains("0x9E")
            && v[0].message.contains("MQTT 5.0 section 3.2.2.3.13"),
        "{}",
        v[0]
    );
}

#[test]
fn mqtt5_3_2_2_3_13_shared_filter_refused_with_0x9e_passes() {
    let mut s = worker_told_no_shared();
    s.at_ms(10);
    refused(&mut s, "worker", SHARED, 0x9E);
    s.subscribe("worker", "jobs/#", 1);
    let t = s.at_ms(1_000).end();
    assert_eq!(integrity(&t), vec![]);
    assert_eq!(check::run_all(&t, &CheckConfig::default()).unwrap(), vec![]);
}

/// The announcement holds for its connection only: a later CONNACK without the property
/// (available) lets the broker grant the shared filter, and a CONNACK without it never forbids.
#[test]
fn mqtt5_3_2_2_3_13_connack_without_the_property_means_available() {
    let mut s = worker_told_no_shared();
    s.at_ms(10);
    refused(&mut s, "worker", SHARED, 0x9E);
    s.at_ms(500)
        .cut("worker")
        .connect("worker", false, true)
        .subscribe("worker", SHARED, 1);
    s.connect("other", true, false)
        .subscribe("other", SHARED, 2);
    assert_eq!(integrity(&s.at_ms(1_000).end()), vec![]);
}

/// A 3.1.1 CONNACK announces nothing: a 3.1.1 client's grant of a `$share/...` filter is not
/// judged, whatever the broker's setting.
#[test]
fn mqtt_3_1_1_connack_announces_nothing_about_shared_filters() {
    let mut s = Story::new("3.1.1", Persistence::None);
    s.connect("worker", true, false)
        .subscribe("worker", SHARED, 1);
    assert_eq!(integrity(&s.at_ms(1_000).end()), vec![]);
}

/// The trace carries the announcement only when the CONNACK did: traces of brokers that
/// support shared subscriptions keep their bytes (and fingerprints), and the field reads back.
#[test]
fn shared_subscription_available_is_written_only_when_announced() {
    let mut plain = Story::new("5.0", Persistence::None);
    plain.connect("worker", true, false);
    assert!(
        !plain
            .trace()
            .to_jsonl()
            .contains("shared_subscription_available")
    );
    let told = worker_told_no_shared().trace();
    let text = told.to_jsonl();
    assert!(
        text.contains(r#""session_expiry_s":60,"shared_subscription_available":false}"#),
        "{text}"
    );
    assert_eq!(Trace::from_jsonl(&text).unwrap(), told);
}
