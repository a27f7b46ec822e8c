//! The format's traps: `receives` bounds and flags, client templates, the client's own inflight
//! window, UNSUBSCRIBE, and faults triggered by trace events. Each mistake is refused with an
//! error naming the field and the line; sound files load into what the world runs.

use mqtt_lab::scenario::Scenario;

const BASE: &str = r#"
name = "traps"
protocol = "3.1.1"
duration = "30s"
faults_until = "20s"

[[client]]
id = "monitor"
subscribe = [{ filter = "sensors/#", qos = 1 }]

[[client]]
id = "sensor-1"

[[workload]]
client = "sensor-1"
topic = "sensors/1/temp"
qos = 1
count = 10

[expect]
checkers = ["delivery"]
"#;

/// `BASE` with `from` replaced by `to`.
fn edited(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "test edit {from:?} does not apply");
    BASE.replacen(from, to, 1)
}

fn load(text: &str) -> Scenario {
    Scenario::from_str(text, "traps.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// The error text of `text`, which must be refused.
fn refused(text: &str) -> String {
    match Scenario::from_str(text, "bad.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts a problem line names `field` and says `reason`.
fn assert_problem(text: &str, field: &str, reason: &str) {
    let found = text
        .lines()
        .find(|l| l.starts_with("bad.toml: line ") && l.contains(&format!(": {field}: ")))
        .unwrap_or_else(|| panic!("no problem for {field:?} in:\n{text}"));
    assert!(found.contains(reason), "{found:?} does not say {reason:?}");
}

fn with_receives(entry: &str) -> String {
    edited(
        "checkers = [\"delivery\"]",
        &format!("checkers = [\"delivery\"]\nreceives = [{entry}]"),
    )
}

// ---- receives -----------------------------------------------------------------------------------

#[test]
fn receives_takes_bounds_qos_retain_and_nothing() {
    let s = load(&with_receives(
        "{ client = \"monitor\", at_least = 2, at_most = 10, qos = 1, retain = false }, { client = \"sensor-1\", exactly = 0 }",
    ));
    let r = &s.expect.receives;
    assert_eq!(r[0].bounds(), (Some(2), Some(10)));
    assert_eq!((r[0].qos, r[0].retain), (Some(1), Some(false)));
    assert_eq!(r[1].bounds(), (Some(0), Some(0)));
}

#[test]
fn receives_refuses_contradictions() {
    let cases = [
        (
            "{ client = \"monitor\", at_least = 5, at_most = 3 }",
            "expect.receives[0].at_least",
            "5 is more than at_most 3",
        ),
        (
            "{ client = \"monitor\", exactly = 3, at_least = 1 }",
            "expect.receives[0].at_least",
            "contradicts exactly",
        ),
        (
            "{ client = \"monitor\", exactly = 3, at_most = 4 }",
            "expect.receives[0].at_most",
            "contradicts exactly",
        ),
        (
            "{ client = \"monitor\", exactly = 0, qos = 1 }",
            "expect.receives[0].qos",
            "says nothing with exactly = 0",
        ),
        (
            "{ client = \"monitor\", exactly = 11 }",
            "expect.receives[0].exactly",
            "11 is more than the 10 messages published",
        ),
        (
            "{ client = \"monitor\", qos = 2 }",
            "expect.receives[0].qos",
            "published above QoS 1",
        ),
        (
            "{ client = \"monitor\", retain = true }",
            "expect.receives[0].retain",
            "published retained",
        ),
        (
            "{ client = \"monitor\", at_least = 0 }",
            "expect.receives[0].at_least",
            "exactly = 0 says nothing arrives",
        ),
        (
            "{ client = \"monitor\", qos = 3 }",
            "expect.receives[0].qos",
            "qos must be 0, 1 or 2",
        ),
    ];
    for (entry, field, reason) in cases {
        assert_problem(&refused(&with_receives(entry)), field, reason);
    }
    let e = refused(&with_receives(
        "{ client = \"monitor\", filter = \"sensors/#\" }",
    ));
    assert_problem(&e, "expect.receives[0]", "says nothing");
}

#[test]
fn receives_qos_above_the_subscription_is_refused() {
    let text = with_receives("{ client = \"monitor\", qos = 2 }")
        .replace("qos = 1\ncount", "qos = 2\ncount");
    let e = refused(&text);
    assert_problem(
        &e,
        "expect.receives[0].qos",
        "\"monitor\" subscribes to these topics at QoS 1 at most",
    );
}

// ---- the client's own inflight window -----------------------------------------------------------

#[test]
fn max_inflight_is_the_client_s_own_window_and_never_zero() {
    let s = load(&edited(
        "id = \"sensor-1\"",
        "id = \"sensor-1\"\nmax_inflight = 2",
    ));
    assert_eq!(s.clients[1].max_inflight, Some(2));
    assert_eq!(s.clients[0].max_inflight, None);
    let e = refused(&edited(
        "id = \"sensor-1\"",
        "id = \"sensor-1\"\nmax_inflight = 0",
    ));
    assert_problem(&e, "client[1].max_inflight", "must be between 1 and 65535");
}

// ---- unsubscribe --------------------------------------------------------------------------------

#[test]
fn unsubscribe_names_a_subscribed_filter_once_inside_the_run() {
    let s = load(&edited(
        "subscribe = [{ filter = \"sensors/#\", qos = 1 }]",
        "subscribe = [{ filter = \"sensors/#\", qos = 1 }]\nunsubscribe = [{ filter = \"sensors/#\", at = \"5s\" }]",
    ));
    assert_eq!(s.clients[0].unsubscribe[0].filter, "sensors/#");
    let cases = [
        (
            "[{ filter = \"alerts/#\", at = \"5s\" }]",
            "client[0].unsubscribe[0].filter",
            "\"alerts/#\" is not one of this client's subscribe filters (sensors/#)",
        ),
        (
            "[{ filter = \"sensors/#\", at = \"5s\" }, { filter = \"sensors/#\", at = \"6s\" }]",
            "client[0].unsubscribe[1].filter",
            "unsubscribed twice",
        ),
        (
            "[{ filter = \"sensors/#\", at = \"30s\" }]",
            "client[0].unsubscribe[0].at",
            "not before the end of the run",
        ),
    ];
    for (list, field, reason) in cases {
        let e = refused(&edited(
            "subscribe = [{ filter = \"sensors/#\", qos = 1 }]",
            &format!("subscribe = [{{ filter = \"sensors/#\", qos = 1 }}]\nunsubscribe = {list}"),
        ));
        assert_problem(&e, field, reason);
    }
    let e = refused(&edited(
        "subscribe = [{ filter = \"sensors/#\", qos = 1 }]",
        "subscribe = [{ filter = \"sensors/#\", qos = 1 }]\nconnect_at = \"6s\"\nunsubscribe = [{ filter = \"sensors/#\", at = \"5s\" }]",
    ));
    assert_problem(
        &e,
        "client[0].unsubscribe[0].at",
        "5s is before connect_at 6s",
    );
    let e = refused(&edited(
        "subscribe = [{ filter = \"sensors/#\", qos = 1 }]",
        "subscribe = [{ filter = \"sensors/#\", qos = 1 }]\nunsubscribe = [{ filter = \"sensors/#\" }]",
    ));
    assert!(
        e.contains("client[0].unsubscribe[0]") && e.contains("missing field `at`"),
        "{e}"
    );
}

// ---- faults fired by trace events ---------------------------------------------------------------

fn with_fault(fault: &str) -> String {
    edited("[expect]", &format!("[[fault]]\n{fault}\n\n[expect]"))
}

#[test]
fn a_fault_may_wait_for_a_trace_event() {
    let s = load(&with_fault(
        "after = { event = \"delivered\", client = \"monitor\", payload = \"sensor-1#5\", nth = 2 }\nat = \"5ms\"\ncut = \"monitor\"",
    ));
    assert!(s.scripted_faults().is_empty());
    let t = &s.triggered_faults()[0];
    assert_eq!((t.trigger.event.as_str(), t.trigger.nth), ("delivered", 2));
    assert_eq!(t.delay, std::time::Duration::from_millis(5));
    assert_eq!(t.trigger.fields["payload"], "sensor-1#5");
    let plan = s.plan(1).describe();
    assert!(
        plan.contains("after delivered #2 client=\"monitor\" payload=\"sensor-1#5\" + 5ms: cut monitor  (fault[0])"),
        "{plan}"
    );
    // Without `at` the fault starts with its event.
    let s = load(&with_fault(
        "after = { event = \"subscribe_granted\", client = \"monitor\" }\npartition = { between = [\"monitor\", \"broker\"], for = \"2s\" }",
    ));
    assert_eq!(s.triggered_faults()[0].delay, std::time::Duration::ZERO);
}

#[test]
fn a_trigger_names_a_known_event_its_fields_and_known_clients() {
    let cases = [
        (
            "after = { event = \"pubrec_received\" }\ncut = \"monitor\"",
            "fault[0].after.event",
            "unknown trace event \"pubrec_received\" (events: run_started, ",
        ),
        (
            "after = { event = \"delivered\", packet = \"pubrec\" }\ncut = \"monitor\"",
            "fault[0].after.packet",
            "\"delivered\" has no field \"packet\" (fields: client, topic",
        ),
        (
            "after = { event = \"connected\", client = \"nobody\" }\ncut = \"monitor\"",
            "fault[0].after.client",
            "unknown client \"nobody\"",
        ),
        (
            "after = { event = \"connected\" }\nat = \"15s\"\ncrash_broker = { restart_after = \"6s\" }",
            "fault[0].crash_broker",
            "heals at 21s (15s after its trigger + 6s), after faults_until 20s",
        ),
    ];
    for (fault, field, reason) in cases {
        assert_problem(&refused(&with_fault(fault)), field, reason);
    }
    let e = refused(&with_fault(
        "after = { event = \"connected\", nth = 0 }\ncut = \"monitor\"",
    ));
    assert!(
        e.contains("fault[0].after") && e.contains("nth must be a whole number from 1"),
        "{e}"
    );
    let e = refused(&with_fault(
        "after = { client = \"monitor\" }\ncut = \"monitor\"",
    ));
    assert!(
        e.contains("fault[0].after") && e.contains("missing field `event`"),
        "{e}"
    );
    let e = refused(&with_fault("cut = \"monitor\""));
    assert_problem(&e, "fault[0]", "a fault needs `at` (a time) or `after`");
}
