//! Client templates in the simulated world (`cargo sim --test lab templates::`): the values a
//! seed draws for the instances of a template are the ones the run uses.

use std::path::Path;
use std::time::Duration;

use mqtt_lab::scenario::{Scenario, Value};
use mqtt_lab::sim::{RunOptions, RunStatus, run_seed};
use mqtt_lab::trace::Event;

#[test]
fn mqtt_3_1_2_10_each_instance_connects_with_its_drawn_keep_alive_at_its_drawn_time() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/17-traps/05-sensor-template-drawn-timings.toml");
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = run_seed(&s, 3, &RunOptions::default());
    assert_eq!(out.status, RunStatus::Completed);
    assert!(out.violations.is_empty(), "{:?}", out.violations);
    assert_eq!(out.plan.clients.len(), 50);
    let mut keep_alives = std::collections::BTreeSet::new();
    for draw in &out.plan.clients {
        let value = |field: &str| match draw.values.iter().find(|(f, _)| *f == field) {
            Some((_, Value::Duration(d))) => *d,
            other => panic!("{field}: {other:?}"),
        };
        let (keep_alive, connect_at) = (value("keep_alive"), value("connect_at"));
        keep_alives.insert(keep_alive);
        let first = out
            .trace
            .events
            .iter()
            .find_map(|e| match &e.event {
                Event::Connecting {
                    client,
                    keep_alive_s,
                    ..
                } if *client == draw.client => Some((e.at_us, *keep_alive_s)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{} never connects", draw.client));
        assert_eq!(
            Duration::from_secs(first.1.into()),
            keep_alive,
            "{}",
            draw.client
        );
        assert!(
            Duration::from_micros(first.0) >= connect_at,
            "{} connects at {}us, drawn {connect_at:?}",
            draw.client,
            first.0
        );
    }
    assert!(
        keep_alives.len() > 3,
        "the sensors draw apart: {keep_alives:?}"
    );
}
