//! Scenario files with mistakes get errors naming the file, the field, the line and the reason.

use mqtt_lab::scenario::{Scenario, ScenarioError};
use mqtt_lab::sim::options::broker_auth;
use std::time::Duration;

const GOOD: &str = r#"
name = "good"
protocol = "3.1.1"
duration = "30s"
faults_until = "20s"

[[client]]
id = "monitor"
subscribe = [{ filter = "sensors/#", qos = 1 }]

[[client]]
id = "sensor-1"
will = { topic = "status/sensor-1", payload = "offline", qos = 1 }

[[workload]]
client = "sensor-1"
topic = "sensors/1/temp"
qos = 1
count = 10

[[fault]]
at = "5s"
cut = "sensor-1"

[[fault]]
at = "6s"
partition = { between = ["sensor-1", "broker"], for = "3s" }

[expect]
checkers = ["delivery"]
"#;

/// Loads `GOOD` with `from` replaced by `to` and returns the error text.
fn error_after(from: &str, to: &str) -> String {
    error_in(GOOD, from, to)
}

/// Loads `base` with `from` replaced by `to` and returns the error text.
pub(crate) fn error_in(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "test edit {from:?} does not apply");
    let text = base.replacen(from, to, 1);
    match Scenario::from_str(&text, "bad.toml") {
        Ok(_) => panic!("accepted after replacing {from:?} by {to:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_base_file_is_valid() {
    let s = Scenario::from_str(GOOD, "good.toml").unwrap();
    assert_eq!(s.origin(), "good.toml");
    assert_eq!(s.clients.len(), 2);
    assert_eq!(s.scripted_faults().len(), 2);
}

/// Asserts one problem line mentions the file, the line, the field and the reason.
pub(crate) fn assert_problem(text: &str, line: usize, field: &str, reason: &str) {
    let expected = format!("bad.toml: line {line}: {field}: ");
    let found = text
        .lines()
        .find(|l| l.starts_with(&expected))
        .unwrap_or_else(|| panic!("no problem starting {expected:?} in:\n{text}"));
    assert!(found.contains(reason), "{found:?} does not say {reason:?}");
}

#[test]
fn unknown_field_names_the_field_and_lists_the_valid_ones() {
    let e = error_after("cut = \"sensor-1\"", "cutt = \"sensor-1\"");
    assert_problem(
        &e,
        23,
        "fault[0].cutt",
        "unknown field `cutt`, expected one of `at`, `cut`",
    );
}

#[test]
fn unknown_top_level_and_section_fields_are_refused() {
    let e = error_after("duration = \"30s\"", "duration = \"30s\"\nseeds = 3");
    assert_problem(&e, 5, "seeds", "unknown field `seeds`");
    let e = error_after("id = \"monitor\"", "id = \"monitor\"\nkeepalive = \"5s\"");
    assert_problem(&e, 9, "client[0].keepalive", "unknown field `keepalive`");
    let e = error_after("qos = 1 }]", "qos = 1, nolocal = true }]");
    assert_problem(
        &e,
        9,
        "client[0].subscribe[0].nolocal",
        "unknown field `nolocal`",
    );
}

#[test]
fn unknown_client_in_a_fault_lists_the_known_ones() {
    let e = error_after("cut = \"sensor-1\"", "cut = \"sensor-2\"");
    assert_problem(
        &e,
        23,
        "fault[0].cut",
        "unknown client \"sensor-2\" (clients: monitor, sensor-1)",
    );
}

#[test]
fn unknown_client_in_a_workload_and_a_partition() {
    let e = error_after("client = \"sensor-1\"", "client = \"nobody\"");
    assert_problem(&e, 16, "workload[0].client", "unknown client \"nobody\"");
    let e = error_after("between = [\"sensor-1\"", "between = [\"sensor-9\"");
    assert_problem(
        &e,
        27,
        "fault[1].partition.between",
        "unknown client \"sensor-9\"",
    );
}

#[test]
fn bad_duration_unit_names_the_nested_field() {
    let e = error_after("for = \"3s\"", "for = \"3x\"");
    assert_problem(
        &e,
        27,
        "fault[1].partition.for",
        "invalid duration \"3x\": unknown unit \"x\"",
    );
}

#[test]
fn duration_without_unit_suggests_one() {
    let e = error_after("for = \"3s\"", "for = 3");
    assert_problem(
        &e,
        27,
        "fault[1].partition.for",
        "a duration needs a unit: write \"3s\"",
    );
    let e = error_after("duration = \"30s\"", "duration = \"thirty\"");
    assert_problem(&e, 4, "duration", "invalid duration \"thirty\"");
}

#[test]
fn bad_qos_is_refused_where_it_is_written() {
    let e = error_after("qos = 1\ncount", "qos = 3\ncount");
    assert_problem(&e, 18, "workload[0].qos", "qos must be 0, 1 or 2, got 3");
    let e = error_after("qos = 1 }]", "qos = -1 }]");
    assert_problem(
        &e,
        9,
        "client[0].subscribe[0].qos",
        "qos must be 0, 1 or 2, got -1",
    );
}

#[test]
fn bad_protocol_lists_the_versions() {
    let e = error_after("protocol = \"3.1.1\"", "protocol = \"4\"");
    assert_problem(
        &e,
        3,
        "protocol",
        "unknown protocol `4`, expected `3.1.1` or `5.0`",
    );
}

#[test]
fn missing_required_field_is_named() {
    let e = error_after("[expect]\ncheckers = [\"delivery\"]\n", "");
    assert!(e.starts_with("bad.toml: "), "{e}");
    assert!(e.contains("missing field `expect`"), "{e}");
    let e = error_after("name = \"good\"\n", "");
    assert!(e.contains("missing field `name`"), "{e}");
}

#[test]
fn toml_syntax_error_has_a_line_and_a_column() {
    let e = error_after("count = 10", "count = = 10");
    assert!(e.starts_with("bad.toml: line 19, column 9: "), "{e}");
}

/// The problem lines of `text` as `(line, field)`, in the order reported.
fn lines_and_fields(text: &str) -> Vec<(usize, String)> {
    let e = Scenario::from_str(text, "bad.toml").unwrap_err();
    e.problems()
        .iter()
        .map(|p| (p.line.unwrap_or(0), p.field.clone()))
        .collect()
}

#[test]
fn several_typos_are_reported_at_once_in_line_order() {
    let text = GOOD
        .replacen("faults_until =", "fault_until =", 1)
        .replacen("subscribe = [{ filter", "subscribes = [{ filter", 1)
        .replacen("will = { topic", "wil = { topic", 1)
        .replacen("qos = 1\ncount", "qso = 1\ncount", 1)
        .replacen("partition = { between", "partitoin = { between", 1)
        .replacen("checkers = ", "checker = ", 1);
    assert_eq!(
        lines_and_fields(&text),
        [
            (5, "fault_until".to_string()),
            (9, "client[0].subscribes".to_string()),
            (13, "client[1].wil".to_string()),
            (18, "workload[0].qso".to_string()),
            (27, "fault[1].partitoin".to_string()),
            // `checker` is not `checkers`: the section lacks it.
            (29, "expect".to_string()),
            (30, "expect.checker".to_string()),
        ]
    );
    let e = Scenario::from_str(&text, "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.toml: line 13: client[1].wil: unknown field `wil`"),
        "{e}"
    );
    // Nothing reported only because a misspelt entry was taken out: the one missing field is
    // `checkers`, which the file really lacks.
    assert_eq!(e.matches("missing field").count(), 1, "{e}");
}

#[test]
fn unknown_field_wrong_type_and_missing_unit_in_one_file() {
    let text = GOOD
        .replacen("duration = \"30s\"", "duration = 30", 1)
        .replacen(
            "id = \"monitor\"",
            "id = \"monitor\"\nkeepalive = \"5s\"",
            1,
        )
        .replacen("count = 10", "count = \"ten\"", 1);
    let e = Scenario::from_str(&text, "bad.toml")
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(
        lines[0].starts_with("bad.toml: line 4: duration: a duration needs a unit"),
        "{e}"
    );
    assert!(
        lines[1].starts_with("bad.toml: line 9: client[0].keepalive: unknown field"),
        "{e}"
    );
    assert!(
        lines[2].starts_with("bad.toml: line 20: workload[0].count: invalid type: string \"ten\", expected a whole number from 0 to 4294967295"),
        "{e}"
    );
}

#[test]
fn an_old_field_name_says_what_it_was_renamed_to() {
    let text = GOOD.replacen(
        "[[client]]",
        "[broker]\nmax_queued = 10\nmax_topic_length = 30\nmax_subscriptions = 2\n\n[[client]]",
        1,
    );
    let e = Scenario::from_str(&text, "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.toml: line 8: broker.max_queued: renamed to `max_queued_messages`"),
        "{e}"
    );
    assert!(
        e.contains("bad.toml: line 9: broker.max_topic_length: renamed to `max_topic_len`"),
        "{e}"
    );
    assert!(
        e.contains(
            "bad.toml: line 10: broker.max_subscriptions: renamed to `max_subscriptions_per_client`"
        ),
        "{e}"
    );
}

#[test]
fn a_workload_that_sends_nothing_is_refused() {
    let e = error_after("count = 10", "count = 0");
    assert_problem(&e, 19, "workload[0].count", "must be at least 1");
}

#[test]
fn the_broker_table_is_the_broker_toml_one() {
    let text = GOOD.replacen(
        "[[client]]",
        "[broker]\nreceive_maximum = 5\nmax_keep_alive = 60\nmax_session_expiry = \"1h\"\n\n[[client]]",
        1,
    );
    let s = Scenario::from_str(&text, "good.toml").unwrap();
    assert_eq!(s.broker.config.receive_maximum, 5);
    assert_eq!(s.broker.config.max_keep_alive, 60);
    assert_eq!(s.broker.config.max_session_expiry, 3600);
    let e = error_after("[[client]]", "[broker]\nmax_inflight = 0\n\n[[client]]");
    assert_problem(&e, 8, "broker.max_inflight", "must be at least 1");
    let e = error_after(
        "[[client]]",
        "[broker]\npersistance = \"durable\"\n\n[[client]]",
    );
    assert_problem(&e, 8, "broker.persistance", "`max_packet_size`");
    assert_problem(&e, 8, "broker.persistance", "`persistence`, `users`, `acl`");
}

/// The problems of a `broker.toml` with `text`.
fn broker_toml_error(text: &str) -> String {
    let problems = mqtt_lab::cli::broker::BrokerFile::from_str(text).unwrap_err();
    mqtt_lab::config::file::render("broker.toml", &problems)
}

#[test]
fn broker_toml_reports_every_problem_at_once_without_rust_types() {
    let e = broker_toml_error(
        "autosave = \"1s\"\n[broker]\nmax_inflight = 70000\nconnect_timeout = 10\nmax_inflite = 3\n",
    );
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert!(
        lines[0].starts_with("broker.toml: line 1: autosave: unknown field"),
        "{e}"
    );
    assert!(
        lines[1].starts_with("broker.toml: line 3: broker.max_inflight: ")
            && lines[1].contains("a whole number from 0 to 65535"),
        "{e}"
    );
    assert!(
        lines[2]
            .starts_with("broker.toml: line 4: broker.connect_timeout: a duration needs a unit"),
        "{e}"
    );
    assert!(
        lines[3].starts_with("broker.toml: line 5: broker.max_inflite: unknown field"),
        "{e}"
    );
    for ty in [
        "u16",
        "u32",
        "u64",
        "usize",
        "struct",
        "BrokerConfig",
        "BrokerFile",
    ] {
        assert!(!e.contains(ty), "{ty} in {e}");
    }
    // Once the file's shape is right, every value is checked.
    let e = broker_toml_error(
        "listen = [\"localhost\"]\n[broker]\nmax_connections = 0\nmax_sessions = 0\n",
    );
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(
        lines[0].starts_with("broker.toml: line 1: listen[0]: "),
        "{e}"
    );
    assert!(
        lines[1].starts_with("broker.toml: line 3: broker.max_connections: must be at least 1"),
        "{e}"
    );
    assert!(
        lines[2].starts_with("broker.toml: line 4: broker.max_sessions: must be at least 1"),
        "{e}"
    );
}

#[test]
fn broker_toml_refuses_old_field_names_with_the_new_one() {
    let e = broker_toml_error(
        "[broker]\nmax_queued = 5\nmax_subscriptions = 3\nmax_topic_length = 9\n",
    );
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "broker.toml: line 2: broker.max_queued: renamed to `max_queued_messages`",
            "broker.toml: line 3: broker.max_subscriptions: renamed to `max_subscriptions_per_client`",
            "broker.toml: line 4: broker.max_topic_length: renamed to `max_topic_len`",
        ],
        "{e}"
    );
}

#[test]
fn broker_toml_listens_on_a_host_name() {
    let file =
        mqtt_lab::cli::broker::BrokerFile::from_str("listen = [\"localhost:1883\"]\n").unwrap();
    assert_eq!(file.listen, ["localhost:1883"]);
}

#[test]
fn broker_toml_refuses_a_packet_size_no_connect_fits_in() {
    let e = broker_toml_error("[broker]\nmax_packet_size = 12\n");
    assert!(
        e.starts_with(
            "broker.toml: line 2: broker.max_packet_size: 12 is outside 64 to 268435460 bytes"
        ),
        "{e}"
    );
    assert!(
        mqtt_lab::cli::broker::BrokerFile::from_str("[broker]\nmax_packet_size = 64\n").is_ok()
    );
}

#[test]
fn fault_after_faults_until_is_refused() {
    let e = error_after("at = \"5s\"", "at = \"25s\"");
    assert_problem(&e, 22, "fault[0].at", "25s is not before faults_until 20s");
}

#[test]
fn fault_that_heals_after_faults_until_is_refused() {
    let e = error_after("for = \"3s\"", "for = \"15s\"");
    assert_problem(
        &e,
        27,
        "fault[1].partition",
        "heals at 21s (6s + 15s), after faults_until 20s",
    );
}

#[test]
fn fault_needs_exactly_one_kind() {
    let e = error_after("cut = \"sensor-1\"", "");
    assert_problem(&e, 21, "fault[0]", "a fault needs one kind");
    let e = error_after(
        "cut = \"sensor-1\"",
        "cut = \"sensor-1\"\ncrash = \"monitor\"",
    );
    assert_problem(
        &e,
        21,
        "fault[0]",
        "one fault per [[fault]] entry, found cut, crash",
    );
}

#[test]
fn duplicate_client_ids_are_refused() {
    let e = error_after("id = \"sensor-1\"", "id = \"monitor\"");
    assert_problem(
        &e,
        12,
        "client[1].id",
        "client id \"monitor\" is used twice",
    );
}

#[test]
fn wildcard_in_a_publish_topic_is_refused() {
    let e = error_after("topic = \"sensors/1/temp\"", "topic = \"sensors/+/temp\"");
    assert_problem(&e, 17, "workload[0].topic", "contains a wildcard");
}

#[test]
fn multi_level_wildcard_must_be_last() {
    let e = error_after("filter = \"sensors/#\"", "filter = \"sensors/#/temp\"");
    assert_problem(
        &e,
        9,
        "client[0].subscribe[0].filter",
        "'#' must be a whole level and the last one",
    );
}

#[test]
fn protocol_specific_fields_need_their_protocol() {
    let e = error_after("id = \"monitor\"", "id = \"monitor\"\nclean_start = false");
    assert_problem(
        &e,
        9,
        "client[0].clean_start",
        "a 3.1.1 client uses clean_session",
    );
    let e = error_after(
        "id = \"monitor\"",
        "id = \"monitor\"\nsession_expiry = \"1m\"",
    );
    assert_problem(&e, 9, "client[0].session_expiry", "MQTT 5.0");
}

#[test]
fn keep_alive_must_be_whole_seconds() {
    let e = error_after(
        "id = \"monitor\"",
        "id = \"monitor\"\nkeep_alive = \"1.5s\"",
    );
    assert_problem(
        &e,
        9,
        "client[0].keep_alive",
        "1.5s is not a whole number of seconds",
    );
}

#[test]
fn workload_running_past_the_end_is_refused() {
    let e = error_after("count = 10", "count = 1000");
    assert_problem(
        &e,
        19,
        "workload[0].count",
        "the last of 1000 messages is due at 1m39.9s",
    );
}

#[test]
fn faults_until_after_duration_is_refused() {
    let e = error_after("faults_until = \"20s\"", "faults_until = \"40s\"");
    assert_problem(
        &e,
        5,
        "faults_until",
        "40s is after the end of the run (duration 30s)",
    );
}

#[test]
fn at_least_one_checker_is_required() {
    let e = error_after("checkers = [\"delivery\"]", "checkers = []");
    assert_problem(&e, 30, "expect.checkers", "name at least one checker");
    let e = error_after(
        "checkers = [\"delivery\"]",
        "checkers = [\"delivery\", \"liveness\"]",
    );
    assert_problem(&e, 30, "expect.checkers[1]", "unknown checker `liveness`");
}

#[test]
fn will_expectation_needs_a_matching_subscription() {
    let e = error_after(
        "checkers = [\"delivery\"]",
        "checkers = [\"will\"]\nwill_reaches = [{ client = \"sensor-1\", subscriber = \"monitor\" }]",
    );
    assert_problem(
        &e,
        31,
        "expect.will_reaches[0].subscriber",
        "no subscription matching the will topic \"status/sensor-1\"",
    );
    let e = error_after(
        "checkers = [\"delivery\"]",
        "checkers = [\"will\"]\nwill_reaches = [{ client = \"monitor\", subscriber = \"sensor-1\" }]",
    );
    assert_problem(
        &e,
        31,
        "expect.will_reaches[0].client",
        "client \"monitor\" has no will",
    );
}

#[test]
fn reversed_random_range_is_refused() {
    let e = error_after("[expect]", "[random]\ncuts_per_minute = [3, 1]\n\n[expect]");
    assert_problem(
        &e,
        30,
        "random.cuts_per_minute",
        "range is reversed: 3.0 is above 1.0",
    );
    let e = error_after(
        "[expect]",
        "[random]\npartition_for = [\"30s\", \"40s\"]\n\n[expect]",
    );
    assert_problem(
        &e,
        30,
        "random.partition_for",
        "not shorter than the faults phase (20s)",
    );
}

#[test]
fn all_problems_are_reported_not_only_the_first() {
    let text = GOOD
        .replacen("cut = \"sensor-1\"", "cut = \"ghost\"", 1)
        .replacen("topic = \"sensors/1/temp\"", "topic = \"a/#\"", 1);
    let e = Scenario::from_str(&text, "bad.toml").unwrap_err();
    let fields: Vec<&str> = e.problems().iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["workload[0].topic", "fault[0].cut"]);
}

#[test]
fn load_names_the_path_when_the_file_is_missing() {
    let err = Scenario::load("/nonexistent/x.toml").unwrap_err();
    assert!(matches!(err, ScenarioError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/x.toml: cannot read the scenario"),
        "{err}"
    );
}

#[test]
fn load_names_the_path_in_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, GOOD.replacen("qos = 1\ncount", "qos = 7\ncount", 1)).unwrap();
    let err = Scenario::load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: line 18: workload[0].qos: qos must be 0, 1 or 2, got 7",
            path.display()
        )
    );
}

#[test]
fn a_duration_of_the_wrong_type_says_what_is_expected() {
    let e = error_after("for = \"3s\"", "for = true");
    assert_problem(
        &e,
        27,
        "fault[1].partition.for",
        "expected a duration string with a unit, like \"5s\"",
    );
}

#[test]
fn receives_more_than_is_published_is_refused() {
    let e = error_after(
        "checkers = [\"delivery\"]",
        "checkers = [\"delivery\"]\nreceives = [{ client = \"monitor\", filter = \"sensors/#\", at_least = 11 }]",
    );
    assert_problem(
        &e,
        31,
        "expect.receives[0].at_least",
        "11 is more than the 10 messages published on topics matching \"sensors/#\"",
    );
    let e = error_after(
        "checkers = [\"delivery\"]",
        "checkers = [\"delivery\"]\nreceives = [{ client = \"monitor\", filter = \"nothing/#\", at_least = 1 }]",
    );
    assert_problem(
        &e,
        31,
        "expect.receives[0].filter",
        "no workload or will publishes on a topic matching \"nothing/#\"",
    );
}

#[test]
fn wrong_value_types_name_the_field() {
    let e = error_after("will = { topic", "will = \"offline\"\nx = { topic");
    assert_problem(
        &e,
        13,
        "client[1].will",
        "invalid type: string \"offline\", expected a table",
    );
    let e = error_after(
        "between = [\"sensor-1\", \"broker\"]",
        "between = [\"sensor-1\"]",
    );
    assert_problem(&e, 27, "fault[1].partition.between", "names two nodes");
}

/// The 5.0 connection limits and topic aliases of a client: 5.0 only, and within range.
#[test]
fn client_limits_and_aliases_are_checked() {
    for field in [
        "receive_maximum = 2",
        "max_packet_size = 512",
        "topic_alias_maximum = 3",
        "topic_aliases = 3",
    ] {
        let name = field.split(' ').next().unwrap();
        let e = error_after("id = \"monitor\"", &format!("id = \"monitor\"\n{field}"));
        assert_problem(
            &e,
            9,
            &format!("client[0].{name}"),
            &format!("{name} is MQTT 5.0 only"),
        );
    }
    let v5 = |from: &str, to: &str| {
        let text = GOOD
            .replacen("protocol = \"3.1.1\"", "protocol = \"5.0\"", 1)
            .replacen(from, to, 1);
        match Scenario::from_str(&text, "bad.toml") {
            Ok(_) => panic!("accepted {to:?}"),
            Err(e) => e.to_string(),
        }
    };
    let e = v5("id = \"monitor\"", "id = \"monitor\"\nreceive_maximum = 0");
    assert_problem(
        &e,
        9,
        "client[0].receive_maximum",
        "must be between 1 and 65535",
    );
    let e = v5("id = \"monitor\"", "id = \"monitor\"\nmax_packet_size = 63");
    assert_problem(
        &e,
        9,
        "client[0].max_packet_size",
        "must be between 64 and 268435460 bytes, got 63",
    );
    let e = v5(
        "id = \"monitor\"",
        "id = \"monitor\"\ntopic_aliases = 70000",
    );
    assert!(e.contains("topic_aliases"), "{e}");
    let ok = GOOD.replacen("protocol = \"3.1.1\"", "protocol = \"5.0\"", 1).replacen(
        "id = \"monitor\"",
        "id = \"monitor\"\nreceive_maximum = 2\nmax_packet_size = 256\ntopic_alias_maximum = 4\ntopic_aliases = 2",
        1,
    );
    let s = Scenario::from_str(&ok, "good.toml").unwrap();
    assert_eq!(s.clients[0].receive_maximum, Some(2));
    assert_eq!(s.clients[0].topic_aliases, 2);
}

#[test]
fn message_properties_and_subscription_identifiers_are_5_0_only() {
    let e = error_after(
        "count = 10",
        "count = 10\nproperties = { content_type = \"text/plain\" }",
    );
    assert_problem(&e, 20, "workload[0].properties", "MQTT 5.0 only");
    let e = error_after(
        "{ filter = \"sensors/#\", qos = 1 }",
        "{ filter = \"sensors/#\", qos = 1, id = 7 }",
    );
    assert_problem(&e, 9, "client[0].subscribe[0].id", "5.0 only");
}

#[test]
fn bad_message_properties_and_identifiers_name_the_field() {
    let text = GOOD
        .replacen("protocol = \"3.1.1\"", "protocol = \"5.0\"", 1)
        .replacen(
            "{ filter = \"sensors/#\", qos = 1 }",
            "{ filter = \"sensors/#\", qos = 1, id = 0 }",
            1,
        )
        .replacen(
            "count = 10",
            "count = 10\nproperties = { response_topic = \"replies/#\", user_properties = [[\"k\", \"v\\u0000\"]] }",
            1,
        );
    let e = Scenario::from_str(&text, "bad.toml")
        .unwrap_err()
        .to_string();
    assert_problem(&e, 9, "client[0].subscribe[0].id", "must be 1 to 268435455");
    assert_problem(
        &e,
        20,
        "workload[0].properties.response_topic",
        "response topic is a topic name",
    );
    assert_problem(
        &e,
        20,
        "workload[0].properties.user_properties[0]",
        "U+0000",
    );
    let text = GOOD.replacen(
        "count = 10",
        "count = 10\nproperties = { payload_format = \"text\" }",
        1,
    );
    let e = Scenario::from_str(&text.replacen("\"3.1.1\"", "\"5.0\"", 1), "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("payload_format") || e.contains("utf8"), "{e}");
}

/// A scenario with users, an ACL, a limit and the `overflow` expectation.
const AUTH: &str = r#"
name = "auth"
protocol = "3.1.1"
duration = "30s"

[broker]
allow_anonymous = false
max_topic_len = 32
users = [{ name = "alice", password = "pw" }]
acl = """
user alice
topic readwrite home/#
"""

[[client]]
id = "monitor"
username = "alice"
password = "pw"
clean_session = false
subscribe = [{ filter = "home/#", qos = 1 }]
disconnect_at = "5s"
reconnect_at = "15s"

[[workload]]
client = "monitor"
topic = "home/a"
qos = 1
count = 10

[expect]
checkers = ["acl"]
overflow = ["monitor"]
"#;

#[test]
fn the_base_file_is_valid_and_its_users_hashed() {
    let s = Scenario::from_str(AUTH, "good.toml").unwrap();
    let auth = broker_auth(&s).unwrap();
    let users = auth.passwords.as_ref().unwrap();
    assert!(users.verify("alice", b"pw"));
    assert!(!users.verify("alice", b"wrong"));
    assert!(auth.acl.is_some());
    assert!(s.broker.has_auth());
    assert_eq!(s.clients[0].username.as_deref(), Some("alice"));
}

/// Loads `AUTH` with `from` replaced by `to`, then builds the broker's users and ACL from it,
/// as the lab does before any seed runs; returns the error text.
fn auth_error(from: &str, to: &str) -> String {
    assert!(AUTH.contains(from), "test edit {from:?} does not apply");
    let s = Scenario::from_str(&AUTH.replacen(from, to, 1), "bad.toml").unwrap();
    broker_auth(&s).unwrap_err().to_string()
}

#[test]
fn a_bad_acl_line_is_named() {
    let e = auth_error("topic readwrite home/#", "topic sometimes home/#");
    assert_problem(&e, 10, "broker.acl", "ACL line 2");
}

#[test]
fn a_bad_acl_is_reported_when_the_lab_loads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        AUTH.replacen("topic readwrite home/#", "topic sometimes home/#", 1),
    )
    .unwrap();
    let e = mqtt_lab::sim::load(&path).unwrap_err().to_string();
    assert!(e.contains("line 10: broker.acl: ACL line 2"), "{e}");
}

#[test]
fn users_must_be_valid_and_unique() {
    let e = error_in(
        AUTH,
        r#"users = [{ name = "alice", password = "pw" }]"#,
        r#"users = [{ name = "alice", password = "pw" }, { name = "alice", password = "x" }]"#,
    );
    assert_problem(&e, 9, "broker.users[1].name", "listed twice");
    let e = auth_error(r#"name = "alice", password"#, r#"name = "a:b", password"#);
    assert!(
        e.contains("broker.users[0].name") && e.contains("not a user name"),
        "{e}"
    );
}

/// Credentials need users, and a 3.1.1 password needs a user name.
#[test]
fn credentials_need_users_and_a_3_1_1_password_needs_a_username() {
    let e = error_in(AUTH, "username = \"alice\"\n", "");
    assert!(
        e.contains("client[0].password") && e.contains("MQTT-3.1.2-22"),
        "{e}"
    );
    let e = error_in(AUTH, r#"users = [{ name = "alice", password = "pw" }]"#, "");
    assert!(
        e.contains("client[0].username") && e.contains("no users"),
        "{e}"
    );
}

#[test]
fn limits_are_checked_and_workloads_beyond_them_must_say_so() {
    let e = error_in(AUTH, "max_topic_len = 32", "max_topic_len = 0");
    assert_problem(&e, 8, "broker.max_topic_len", "outside 1 to 65535");
    let e = error_in(
        AUTH,
        "topic = \"home/a\"",
        "topic = \"home/a/topic/name/far/too/long/for/us\"",
    );
    assert!(
        e.contains("workload[0].topic") && e.contains("beyond_limits"),
        "{e}"
    );
    let e = error_in(
        AUTH,
        "topic = \"home/a\"",
        "topic = \"home/a\"\nbeyond_limits = true",
    );
    assert!(
        e.contains("workload[0].beyond_limits") && e.contains("breaks none"),
        "{e}"
    );
    let e = error_in(
        AUTH,
        "topic = \"home/a\"",
        "topic = \"home/a/topic/name/far/too/long/for/us\"\nbeyond_limits = true",
    );
    assert!(e.contains("workload[0].qos") && e.contains("QoS 0"), "{e}");
    // A 5.0 client never sends a packet above the broker's Maximum Packet Size: the workload
    // is accepted and its messages are reported lost by the client.
    let v5 = AUTH
        .replacen("protocol = \"3.1.1\"", "protocol = \"5.0\"", 1)
        .replacen(
            "clean_session = false",
            "clean_start = false\nsession_expiry = \"1h\"",
            1,
        );
    let oversized = v5.replacen(
        "topic = \"home/a\"\nqos = 1",
        "topic = \"home/a\"\nqos = 0\nsize = 2000000\nbeyond_limits = true",
        1,
    );
    assert_ne!(oversized, v5, "test edit does not apply");
    Scenario::from_str(&oversized, "v5.toml").unwrap();
    let e = error_in(
        &v5,
        "topic = \"home/a\"\nqos = 1",
        "topic = \"home/a\"\nqos = 0\nsize = 2000000",
    );
    assert!(
        e.contains("workload[0].size") && e.contains("do not fit"),
        "{e}"
    );
}

#[test]
fn overflow_lists_each_client_once() {
    let e = error_in(
        AUTH,
        r#"overflow = ["monitor"]"#,
        r#"overflow = ["monitor", "monitor"]"#,
    );
    assert_problem(&e, 32, "expect.overflow[1]", "listed twice");
}

#[test]
fn overflow_needs_an_offline_persistent_subscriber() {
    let e = error_in(AUTH, "reconnect_at = \"15s\"\n", "");
    assert!(
        e.contains("expect.overflow[0]") && e.contains("reconnect_at"),
        "{e}"
    );
    let e = error_in(AUTH, "clean_session = false\n", "");
    assert!(e.contains("persistent session"), "{e}");
}

#[test]
fn reconnect_clean_start_needs_a_reconnect_at() {
    let e = error_after(
        "id = \"monitor\"\n",
        "id = \"monitor\"\nreconnect_clean_start = true\n",
    );
    assert_problem(
        &e,
        9,
        "client[0].reconnect_clean_start",
        "reconnect_clean_start needs a reconnect_at",
    );
    let text = GOOD.replacen(
        "id = \"monitor\"\n",
        "id = \"monitor\"\ndisconnect_at = \"5s\"\nreconnect_at = \"8s\"\nreconnect_clean_start = false\n",
        1,
    );
    let s = Scenario::from_str(&text, "good.toml").unwrap();
    assert_eq!(s.clients[0].reconnect_clean_start, Some(false));
}

#[test]
fn disconnect_session_expiry_needs_a_5_0_client_that_disconnects_with_a_session() {
    let v5 = GOOD.replacen("protocol = \"3.1.1\"", "protocol = \"5.0\"", 1);
    let e = error_in(
        &v5,
        "id = \"monitor\"\n",
        "id = \"monitor\"\ndisconnect_session_expiry = \"1h\"\n",
    );
    assert!(
        e.contains(
            "client[0].disconnect_session_expiry: disconnect_session_expiry needs a disconnect_at"
        ),
        "{e}"
    );
    let e = error_after(
        "id = \"monitor\"\n",
        "id = \"monitor\"\ndisconnect_at = \"5s\"\ndisconnect_session_expiry = \"1h\"\n",
    );
    assert!(e.contains("disconnect_session_expiry is MQTT 5.0"), "{e}");
    // A CONNECT that asked for 0 may not be followed by another interval (the client's rule).
    let e = error_in(
        &v5,
        "id = \"monitor\"\n",
        "id = \"monitor\"\ndisconnect_at = \"5s\"\ndisconnect_session_expiry = \"1h\"\n",
    );
    assert!(e.contains("must not send another on DISCONNECT"), "{e}");
    let e = error_in(
        &v5,
        "id = \"monitor\"\n",
        "id = \"monitor\"\nsession_expiry = \"10s\"\ndisconnect_at = \"5s\"\ndisconnect_session_expiry = \"1.5s\"\n",
    );
    assert!(e.contains("client[0].disconnect_session_expiry"), "{e}");
    for ok in [
        "session_expiry = \"10s\"\ndisconnect_session_expiry = \"1h\"",
        "disconnect_session_expiry = \"0s\"",
    ] {
        let text = v5.replacen(
            "id = \"monitor\"\n",
            &format!("id = \"monitor\"\ndisconnect_at = \"5s\"\n{ok}\n"),
            1,
        );
        let s = Scenario::from_str(&text, "good.toml").unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert!(s.clients[0].disconnect_session_expiry.is_some());
    }
}

/// `GOOD` with a second process of `sensor-1` (named `sensor-1-b`) and `extra` appended.
fn with_second_process(extra: &str) -> String {
    GOOD.replacen(
        "[[workload]]",
        &format!(
            "[[client]]\nid = \"sensor-1-b\"\nclient_id = \"sensor-1\"\nprotocol = \"5.0\"\nconnect_at = \"5s\"\n{extra}\n[[workload]]"
        ),
        1,
    )
}

#[test]
fn a_second_process_may_share_a_client_id_even_across_protocols() {
    let s = Scenario::from_str(&with_second_process(""), "good.toml").unwrap();
    assert_eq!(s.clients[2].mqtt_id(), "sensor-1");
    assert_eq!(s.clients[1].mqtt_id(), "sensor-1");
}

#[test]
fn a_client_id_must_be_a_valid_id() {
    let e = error_in(
        &with_second_process(""),
        "client_id = \"sensor-1\"",
        "client_id = \"sensor 1\"",
    );
    assert!(
        e.contains("client[2].client_id: \"sensor 1\" is not a client id"),
        "{e}"
    );
}

#[test]
fn a_name_is_a_client_id_or_a_process_with_another_one_not_both() {
    let e = error_in(
        &with_second_process("\n[[client]]\nid = \"sensor-2\"\nclient_id = \"sensor-1-b\"\n"),
        "",
        "",
    );
    assert!(
        e.contains("client[3].client_id: process \"sensor-2\" connects as \"sensor-1-b\" and process \"sensor-1-b\" as \"sensor-1\""),
        "{e}"
    );
}

#[test]
fn expectations_name_client_ids_not_processes() {
    let e = error_in(
        &with_second_process(""),
        "checkers = [\"delivery\"]",
        "checkers = [\"delivery\"]\nno_will = [\"sensor-1-b\"]",
    );
    assert!(
        e.contains("expect.no_will[0]: \"sensor-1-b\" is a process that connects as \"sensor-1\": expectations name client ids"),
        "{e}"
    );
}

/// [MQTT-3.1.3-7] (3.1.1) An empty client id asks the broker to assign one and needs clean
/// session on every connect; the trace and the expectations name such a client by its process
/// id.
#[test]
fn mqtt_3_1_3_7_an_empty_client_id_needs_clean_session() {
    let empty = GOOD.replacen(
        "id = \"sensor-1\"",
        "id = \"sensor-1\"\nclient_id = \"\"",
        1,
    );
    assert_ne!(empty, GOOD, "test edit does not apply");
    let s = Scenario::from_str(&empty, "empty.toml").unwrap();
    let c = s.clients.iter().find(|c| c.id == "sensor-1").unwrap();
    assert_eq!(c.wire_id(), "");
    assert_eq!(c.mqtt_id(), "sensor-1");
    let e = error_in(
        &empty,
        "client_id = \"\"",
        "client_id = \"\"\nclean_session = false",
    );
    assert!(
        e.contains("client_id: an empty client id needs clean_session"),
        "{e}"
    );
}

#[test]
fn storage_faults_need_a_durable_broker_and_a_length() {
    let e = error_after(
        "at = \"5s\"\ncut = \"sensor-1\"",
        "at = \"5s\"\nsync_error = { for = \"2s\" }",
    );
    assert!(
        e.contains("fault[0].sync_error") && e.contains("persistence = \"durable\""),
        "{e}"
    );
    let e = error_after(
        "at = \"5s\"\ncut = \"sensor-1\"",
        "at = \"5s\"\ndisk_full = { for = \"2s\" }",
    );
    assert!(e.contains("fault[0].disk_full"), "{e}");
    let durable = GOOD.replace(
        "[expect]",
        "[broker]\npersistence = \"durable\"\n\n[expect]",
    );
    let e = error_in(
        &durable,
        "at = \"5s\"\ncut = \"sensor-1\"",
        "at = \"5s\"\nsync_error = { for = \"0s\" }",
    );
    assert!(e.contains("fault[0].sync_error.for"), "{e}");
    let e = error_in(
        &durable,
        "at = \"5s\"\ncut = \"sensor-1\"",
        "at = \"19s\"\ndisk_full = { for = \"2s\" }",
    );
    assert!(e.contains("after faults_until"), "{e}");
    let ok = durable.replace(
        "at = \"5s\"\ncut = \"sensor-1\"",
        "at = \"5s\"\nsync_error = { for = \"2s\" }\n\n[[fault]]\nat = \"9s\"\ndisk_full = { for = \"1s\" }",
    );
    let s = Scenario::from_str(&ok, "disk.toml").unwrap();
    let kinds: Vec<String> = s
        .scripted_faults()
        .iter()
        .map(|f| f.kind.to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "sync_error for 2s",
            "partition sensor-1 <-> broker for 3s",
            "disk_full for 1s"
        ]
    );
}

#[test]
fn slow_syncs_crashes_in_a_sync_and_sync_latency_need_a_durable_broker() {
    let e = error_after(
        "at = \"5s\"\ncut = \"sensor-1\"",
        "at = \"5s\"\nslow_sync = { latency = \"200ms\", for = \"2s\" }",
    );
    assert!(
        e.contains("fault[0].slow_sync") && e.contains("persistence = \"durable\""),
        "{e}"
    );
    let e = error_after(
        "at = \"5s\"\ncut = \"sensor-1\"",
        "at = \"5s\"\ncrash_broker = { in_sync = true }",
    );
    assert!(e.contains("fault[0].crash_broker.in_sync"), "{e}");
    let e = Scenario::from_str(
        &GOOD.replace("[expect]", "[broker]\nsync_latency = \"3ms\"\n\n[expect]"),
        "latency.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("broker.sync_latency") && e.contains("persistence = \"durable\""),
        "{e}"
    );

    let durable = |latency: &str| {
        GOOD.replace(
            "[expect]",
            &format!("[broker]\npersistence = \"durable\"\n{latency}\n[expect]"),
        )
    };
    let e = Scenario::from_str(&durable("sync_latency = \"11s\""), "latency.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("broker.sync_latency") && e.contains("at most 10s"),
        "{e}"
    );
    let e = error_in(
        &durable(""),
        "at = \"5s\"\ncut = \"sensor-1\"",
        "at = \"5s\"\nslow_sync = { latency = \"0s\", for = \"2s\" }",
    );
    assert!(e.contains("fault[0].slow_sync.latency"), "{e}");
    let e = error_in(
        &durable(""),
        "at = \"5s\"\ncut = \"sensor-1\"",
        "at = \"5s\"\nslow_sync = { latency = \"1m\", for = \"2s\" }",
    );
    assert!(
        e.contains("fault[0].slow_sync.latency") && e.contains("at most"),
        "{e}"
    );

    let ok = durable("sync_latency = \"4ms\"").replace(
        "at = \"5s\"\ncut = \"sensor-1\"",
        "at = \"5s\"\nslow_sync = { latency = \"250ms\", for = \"2s\" }\n\n[[fault]]\nat = \"9s\"\ncrash_broker = { restart_after = \"1s\", in_sync = true }",
    );
    let s = Scenario::from_str(&ok, "disk.toml").unwrap();
    assert_eq!(s.broker.sync_latency(), Duration::from_millis(4));
    let kinds: Vec<String> = s
        .scripted_faults()
        .iter()
        .map(|f| f.kind.to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "slow_sync 250ms for 2s",
            "partition sensor-1 <-> broker for 3s",
            "crash_broker in a sync, restart after 1s"
        ]
    );
    let s = Scenario::from_str(&durable(""), "disk.toml").unwrap();
    assert_eq!(
        s.broker.sync_latency(),
        mqtt_lab::scenario::DEFAULT_SYNC_LATENCY
    );
}
