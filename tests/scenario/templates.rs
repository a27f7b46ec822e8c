//! Client templates: a `[[client]]` with `count` stands for its instances, entries naming a
//! template client stand for one entry per instance, ranges are drawn per instance and per
//! seed, and every mistake is refused with its template entry, field and reason.

use std::time::Duration;

use mqtt_lab::scenario::{ClientDraw, FaultKind, Scenario, Value};

use super::errors::{assert_problem, error_in};

const SENSORS: &str = r#"
name = "sensors"
protocol = "5.0"
duration = "60s"
faults_until = "40s"

[[client]]
id = "monitor"
clean_start = false
session_expiry = "5m"
subscribe = [{ filter = "sensors/#", qos = 1 }]

[[client]]
count = 3
id = "sensor-{n}"
will = { topic = "status/sensor-{n}", payload = "offline {n}" }

[[workload]]
client = "sensor-{n}"
topic = "sensors/{n}/temp"
qos = 1
count = 5
every = "1s"

[[workload]]
client = "sensor-2"
topic = "sensors/2/humidity"

[[fault]]
at = "5s"
cut = "sensor-{n}"

[[fault]]
at = "6s"
partition = { between = ["sensor-{n}", "broker"], for = "2s" }

[random]
targets = ["monitor", "sensor-{n}"]
cuts_per_minute = [1, 2]

[expect]
checkers = ["delivery"]
no_will = ["sensor-{n}"]
receives = [{ client = "monitor", filter = "sensors/+/temp", at_least = 15 }]
"#;

fn load(text: &str) -> Scenario {
    Scenario::from_str(text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn refused(text: &str) -> String {
    match Scenario::from_str(text, "bad.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_template_stands_for_count_clients_in_order() {
    let s = load(SENSORS);
    let ids: Vec<&str> = s.clients.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["monitor", "sensor-1", "sensor-2", "sensor-3"]);
    let will = s.clients[3].will.as_ref().unwrap();
    assert_eq!(will.topic, "status/sensor-3");
    assert_eq!(will.payload, "offline 3");
    let t = &s.templates()[0];
    assert_eq!(
        (t.entry, t.id.as_str(), t.count, t.first),
        (1, "sensor-{n}", 3, 1)
    );
    assert!(t.ranges.is_empty());
}

#[test]
fn entries_naming_a_template_client_stand_for_one_entry_per_instance() {
    let s = load(SENSORS);
    let w: Vec<(&str, &str, u32)> = s
        .workloads
        .iter()
        .map(|w| (w.client.as_str(), w.topic.as_str(), w.count))
        .collect();
    assert_eq!(
        w,
        [
            ("sensor-1", "sensors/1/temp", 5),
            ("sensor-2", "sensors/2/temp", 5),
            ("sensor-3", "sensors/3/temp", 5),
            ("sensor-2", "sensors/2/humidity", 1),
        ]
    );
    let faults: Vec<String> = s
        .scripted_faults()
        .iter()
        .map(|f| f.kind.to_string())
        .collect();
    assert_eq!(faults.len(), 6, "{faults:?}");
    assert!(
        matches!(&s.scripted_faults()[2].kind, FaultKind::Cut { client } if client == "sensor-3")
    );
    assert_eq!(
        s.random.as_ref().unwrap().targets.as_deref().unwrap(),
        ["monitor", "sensor-1", "sensor-2", "sensor-3"]
    );
    assert_eq!(s.expect.no_will, ["sensor-1", "sensor-2", "sensor-3"]);
}

#[test]
fn a_template_without_ranges_is_the_hand_written_clients() {
    let head = "name = \"n\"\nprotocol = \"5.0\"\nduration = \"60s\"\n\n[expect]\ncheckers = [\"delivery\"]\n\n";
    let client = |id: &str| {
        format!("[[client]]\nid = \"{id}\"\nwill = {{ topic = \"status/{id}\", qos = 1 }}\n\n")
    };
    let template = format!(
        "{head}[[client]]\ncount = 3\n{}",
        &client("sensor-{n}")["[[client]]\n".len()..]
    );
    let by_hand = format!(
        "{head}{}{}{}",
        client("sensor-1"),
        client("sensor-2"),
        client("sensor-3")
    );
    let (a, b) = (load(&template), load(&by_hand));
    assert_eq!(a.clients, b.clients);
    for seed in 0..5 {
        let plan = a.plan(seed);
        assert_eq!(plan, b.plan(seed));
        assert!(plan.clients.is_empty());
        assert!(matches!(a.drawn(&plan), std::borrow::Cow::Borrowed(_)));
        assert!(!plan.describe().contains("client templates"));
    }
}

const RANGED: &str = r#"
name = "ranged"
protocol = "5.0"
duration = "60s"

[[client]]
id = "monitor"
subscribe = [{ filter = "s/#", qos = 1 }]

[[client]]
count = 20
id = "s{n}"
keep_alive = ["2s", "10s"]
connect_at = ["0s", "3s"]
receive_maximum = [2, 20]
reconnect = { max_backoff = ["1s", "4s"] }

[expect]
checkers = ["delivery"]
"#;

fn drawn(plan_clients: &[ClientDraw], field: &str) -> Vec<Value> {
    plan_clients
        .iter()
        .map(|c| c.values.iter().find(|(f, _)| *f == field).unwrap().1)
        .collect()
}

#[test]
fn ranges_are_drawn_per_instance_and_per_seed_deterministically() {
    let s = load(RANGED);
    let t = &s.templates()[0];
    let fields: Vec<&str> = t.ranges.iter().map(|r| r.field).collect();
    assert_eq!(
        fields,
        [
            "keep_alive",
            "connect_at",
            "receive_maximum",
            "reconnect.max_backoff"
        ]
    );
    // The scenario as read holds the low ends.
    assert_eq!(s.clients[1].keep_alive, Duration::from_secs(2));
    assert_eq!(s.clients[1].receive_maximum, Some(2));
    let a = s.plan(7);
    assert_eq!(a, load(RANGED).plan(7), "same seed, same draw");
    assert_ne!(a.clients, s.plan(8).clients, "another seed, another draw");
    assert_eq!(a.clients.len(), 20);
    assert_eq!(a.clients[4].client, "s5");
    assert_eq!(a.clients[4].template, "s{n}");
    let keep: Vec<Value> = drawn(&a.clients, "keep_alive");
    for v in &keep {
        let Value::Duration(d) = v else { panic!() };
        assert!(
            (2..=10).contains(&d.as_secs()) && d.subsec_nanos() == 0,
            "{d:?}"
        );
    }
    assert!(
        keep.iter().any(|v| *v != keep[0]),
        "instances draw apart: {keep:?}"
    );
    for v in drawn(&a.clients, "receive_maximum") {
        let Value::Number(n) = v else { panic!() };
        assert!((2..=20).contains(&n));
    }
    for v in drawn(&a.clients, "connect_at") {
        let Value::Duration(d) = v else { panic!() };
        assert!(d <= Duration::from_secs(3) && d.subsec_micros() % 1_000 == 0);
    }
    // The run's scenario carries the draws.
    let run = s.drawn(&a);
    for (c, draw) in run.clients[1..].iter().zip(&a.clients) {
        assert_eq!(c.id, draw.client);
        assert_eq!(Value::Duration(c.keep_alive), draw.values[0].1);
        assert_eq!(Value::Duration(c.connect_at), draw.values[1].1);
        assert_eq!(
            c.receive_maximum.map(|r| Value::Number(r.into())),
            Some(draw.values[2].1)
        );
        assert_eq!(Value::Duration(c.reconnect.max_backoff), draw.values[3].1);
    }
    assert_eq!(run.clients[0], s.clients[0]);
    // The plan prints them.
    let text = a.describe();
    assert!(
        text.contains("  drawn from client templates: 20\n"),
        "{text}"
    );
    assert!(text.contains(&format!("    {}\n", a.clients[0])), "{text}");
    assert!(
        a.clients[0].to_string().starts_with("s1: keep_alive "),
        "{text}"
    );
}

#[test]
fn one_instance_draws_the_same_whatever_the_count() {
    let more = load(&RANGED.replace("count = 20", "count = 40")).plan(3);
    let fewer = load(RANGED).plan(3);
    assert_eq!(more.clients[..20], fewer.clients[..]);
}

#[test]
fn mqtt_3_1_2_10_drawn_keep_alive_is_whole_seconds_and_the_ends_are_checked() {
    // Keep Alive is a number of seconds [MQTT-3.1.2-10]: both ends must be whole seconds.
    let e = refused(&RANGED.replace(r#"["2s", "10s"]"#, r#"["2s", "10.5s"]"#));
    assert_problem(
        &e,
        13,
        "client[1] (s{n}).keep_alive",
        "10.5s is not a whole number of seconds",
    );
    assert!(
        e.contains("(with the template's ranges at these ends)"),
        "{e}"
    );
    assert_eq!(
        e.lines().count(),
        1,
        "reported once, not per instance:\n{e}"
    );
}

#[test]
fn count_without_placeholder_is_refused() {
    let e = error_in(SENSORS, "id = \"sensor-{n}\"", "id = \"sensor\"");
    assert_problem(&e, 15, "client[1].id", "\"sensor\" has no {n}");
}

#[test]
fn placeholder_without_count_is_refused() {
    let e = error_in(SENSORS, "count = 3\n", "");
    assert_problem(
        &e,
        14,
        "client[1].id",
        "{n} is replaced only in a template: give this [[client]] a count",
    );
}

#[test]
fn count_outside_one_to_ten_thousand_is_refused() {
    for bad in ["0", "10001", "\"3\"", "-1"] {
        let e = error_in(SENSORS, "count = 3\n", &format!("count = {bad}\n"));
        assert_problem(&e, 14, "client[1].count", "a whole number from 1 to 10000");
    }
}

#[test]
fn an_expansion_colliding_with_another_id_is_refused() {
    // A plain client before the template.
    let e = error_in(SENSORS, "id = \"monitor\"", "id = \"sensor-2\"");
    assert_problem(
        &e,
        15,
        "client[1].id",
        "\"sensor-{n}\" with n = 2 is \"sensor-2\", the id of client[0]",
    );
    // A plain client after it.
    let after = SENSORS.replace(
        "[[workload]]\nclient = \"sensor-{n}\"",
        "[[client]]\nid = \"sensor-3\"\n\n[[workload]]\nclient = \"sensor-{n}\"",
    );
    let e = refused(&after);
    assert_problem(
        &e,
        19,
        "client[2].id",
        "client id \"sensor-3\" is also an instance of client[1] (sensor-{n})",
    );
    // Another template.
    let two = SENSORS.replace(
        "[[workload]]\nclient = \"sensor-{n}\"",
        "[[client]]\ncount = 12\nid = \"sensor-{n}1\"\n\n[[workload]]\nclient = \"sensor-{n}\"",
    );
    let e = refused(&two.replace("count = 3\n", "count = 11\n"));
    assert_problem(
        &e,
        20,
        "client[2].id",
        "\"sensor-{n}1\" with n = 1 is \"sensor-11\", also an instance of client[1] (sensor-{n})",
    );
}

#[test]
fn a_range_outside_a_template_is_refused() {
    let e = error_in(
        SENSORS,
        "clean_start = false\n",
        "clean_start = false\nkeep_alive = [\"1s\", \"5s\"]\n",
    );
    assert_problem(
        &e,
        10,
        "client[0].keep_alive",
        "a range [low, high] needs a template",
    );
}

#[test]
fn a_range_upside_down_or_of_three_values_is_refused() {
    let e = refused(&RANGED.replace(r#"["2s", "10s"]"#, r#"["10s", "2s"]"#));
    assert_problem(
        &e,
        13,
        "client[1].keep_alive",
        "range is reversed: 10s is above 2s",
    );
    let e = refused(&RANGED.replace("[2, 20]", "[20, 2]"));
    assert_problem(
        &e,
        15,
        "client[1].receive_maximum",
        "range is reversed: 20 is above 2",
    );
    let e = refused(&RANGED.replace("[2, 20]", "[2, 3, 4]"));
    assert_problem(
        &e,
        15,
        "client[1].receive_maximum",
        "a range is two values [low, high], got 3 values",
    );
    let e = refused(&RANGED.replace(r#"["2s", "10s"]"#, r#"["2s", "10"]"#));
    assert_problem(
        &e,
        13,
        "client[1].keep_alive[1]",
        "expected a number followed by a unit",
    );
}

#[test]
fn a_field_that_cannot_vary_is_refused_as_a_range() {
    let e = refused(&RANGED.replace("count = 20\n", "count = 20\nclean_start = [true, false]\n"));
    assert_problem(&e, 12, "client[1].clean_start", "expected a boolean");
}

#[test]
fn ranges_that_may_draw_out_of_order_are_refused() {
    let text = RANGED.replace(
        "connect_at = [\"0s\", \"3s\"]\n",
        "connect_at = [\"0s\", \"3s\"]\ndisconnect_at = [\"2s\", \"20s\"]\n",
    );
    let e = refused(&text);
    assert_problem(
        &e,
        15,
        "client[1] (s{n}).disconnect_at",
        "2s is not after connect_at 3s (with the template's ranges at these ends)",
    );
    load(&text.replace("[\"2s\", \"20s\"]", "[\"3.001s\", \"20s\"]"));
}

#[test]
fn a_mistake_in_every_instance_is_reported_once_on_its_template() {
    let e = refused(&RANGED.replace("protocol = \"5.0\"", "protocol = \"3.1.1\""));
    assert_problem(
        &e,
        15,
        "client[1] (s{n}).receive_maximum",
        "receive_maximum is MQTT 5.0 only",
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    let e = error_in(
        SENSORS,
        "topic = \"sensors/{n}/temp\"",
        "topic = \"sensors/{n}/#\"",
    );
    assert_problem(
        &e,
        20,
        "workload[0] (sensor-{n}).topic",
        "\"sensors/1/#\": contains a wildcard",
    );
    assert!(e.contains("(and 2 more of its instances)"), "{e}");
    assert_eq!(
        e.lines().filter(|l| l.contains("workload[")).count(),
        1,
        "{e}"
    );
}

#[test]
fn an_entry_with_placeholder_naming_no_template_is_refused() {
    let e = error_in(SENSORS, "cut = \"sensor-{n}\"", "cut = \"probe-{n}\"");
    assert_problem(
        &e,
        31,
        "fault[0].cut",
        "{n} is replaced only in an entry naming a template client (sensor-{n})",
    );
}

#[test]
fn one_instance_can_be_named_alone() {
    let s = load(&SENSORS.replacen("cut = \"sensor-{n}\"", "cut = \"sensor-2\"", 1));
    assert_eq!(s.scripted_faults().len(), 4);
}

fn library(path: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_thousand_client_swarm_is_one_template_of_the_hand_written_order() {
    let s = library("scenarios/11-swarm/05-swarm-thousand-clients.toml");
    assert_eq!(s.clients.len(), 1000);
    assert_eq!(s.clients[0].id, "monitor");
    for (n, c) in s.clients[1..].iter().enumerate() {
        assert_eq!(c.id, format!("s{}", n + 1));
    }
    for (n, w) in s.workloads.iter().enumerate() {
        assert_eq!(
            (w.client.as_str(), w.topic.as_str()),
            (
                s.clients[n + 1].id.as_str(),
                format!("swarm/{}", n + 1).as_str()
            )
        );
    }
    assert_eq!(s.workloads.len(), 999);
    assert!(s.plan(1).clients.is_empty(), "no ranges: nothing drawn");
}

#[test]
fn the_drawn_sensor_scenario_shows_its_draws_in_the_plan() {
    let s = library("scenarios/17-traps/05-sensor-template-drawn-timings.toml");
    let plan = s.plan(97);
    assert_eq!(plan.clients.len(), 50);
    let text = plan.describe();
    assert!(
        text.contains("  drawn from client templates: 50\n"),
        "{text}"
    );
    assert!(text.contains("    sensor-2: keep_alive "), "{text}");
    // The scripted cut of every sensor names its one `[[fault]]` entry.
    let cuts: Vec<String> = plan
        .faults
        .iter()
        .filter(|f| f.at == Duration::from_secs(20))
        .map(|f| f.to_string())
        .collect();
    assert_eq!(cuts.len(), 50);
    assert!(cuts.iter().all(|c| c.ends_with("(fault[0])")), "{cuts:?}");
}

#[test]
fn never_cannot_end_a_session_expiry_range() {
    let e = refused(&RANGED.replace(
        "count = 20\n",
        "count = 20\nsession_expiry = [\"10s\", \"never\"]\n",
    ));
    assert_problem(
        &e,
        12,
        "client[1].session_expiry",
        "\"never\" cannot end a range",
    );
}

#[test]
fn an_id_too_long_for_some_instances_is_reported_once_with_their_number() {
    let long = format!("{}-{{n}}", "x".repeat(62));
    let e = refused(&RANGED.replace("id = \"s{n}\"", &format!("id = \"{long}\"")));
    assert_problem(
        &e,
        12,
        &format!("client[1] ({long}).id"),
        "-10\" is not a client id",
    );
    // x...x-1 to x...x-9 fit in 64 characters; the 11 from 10 on do not.
    assert!(e.contains("(and 10 more of its instances)"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}
