//! Seeded plans: same seed, same plan; seeds differ; random faults stay inside the faults
//! phase; swarm testing turns kinds on and off per seed; sub-streams are independent.

use std::time::Duration;

use mqtt_lab::scenario::{FaultKind, FaultSource, Node, Plan, Scenario, sub_seed};
use proptest::prelude::*;

const SWARM: &str = r#"
name = "swarm"
protocol = "5.0"
duration = "2m"
faults_until = "90s"

[[client]]
id = "monitor"
clean_start = false
session_expiry = "5m"
subscribe = [{ filter = "t/#", qos = 1 }]

[[client]]
id = "sensor-1"

[[client]]
id = "sensor-2"

[[workload]]
client = "sensor-1"
topic = "t/1"
qos = 1
count = 100
every = "500ms"

[[fault]]
at = "10s"
crash_broker = { restart_after = "2s" }

[[fault]]
at = "3s"
cut = "sensor-2"

[random]
latency = ["1ms", "50ms"]
loss = [0.0, 0.05]
cuts_per_minute = [1, 6]
blackholes_per_minute = [0, 3]
delays_per_minute = [0, 3]
partitions_per_minute = [0, 3]
crashes_per_minute = [0, 2]
power_offs_per_minute = [0, 2]
broker_crashes_per_minute = [0, 2]
pauses_per_minute = [0, 2]
split_writes = 0.5

[expect]
checkers = ["delivery", "session"]
"#;

fn swarm() -> Scenario {
    Scenario::from_str(SWARM, "swarm.toml").unwrap()
}

#[test]
fn same_seed_same_plan_and_same_description() {
    let s = swarm();
    for seed in [0, 1, 42, u64::MAX] {
        let a = s.plan(seed);
        let b = s.plan(seed);
        assert_eq!(a, b);
        assert_eq!(a.describe(), b.describe());
        // A freshly loaded copy plans the same: nothing depends on process state.
        assert_eq!(swarm().plan(seed), a);
    }
}

#[test]
fn different_seeds_give_different_plans() {
    let s = swarm();
    let plans: Vec<Plan> = (0..20).map(|seed| s.plan(seed)).collect();
    for i in 0..plans.len() {
        for j in i + 1..plans.len() {
            assert_ne!(plans[i].faults, plans[j].faults, "seeds {i} and {j}");
        }
    }
}

#[test]
fn swarm_turns_kinds_on_and_off_across_seeds() {
    let s = swarm();
    let plans: Vec<Plan> = (0..64).map(|seed| s.plan(seed)).collect();
    let fields = plans[0].swarm.iter().map(|d| d.field).collect::<Vec<_>>();
    assert_eq!(
        fields,
        [
            "loss",
            "cuts_per_minute",
            "blackholes_per_minute",
            "delays_per_minute",
            "partitions_per_minute",
            "crashes_per_minute",
            "power_offs_per_minute",
            "broker_crashes_per_minute",
            "pauses_per_minute",
            "split_writes"
        ]
    );
    for (k, field) in fields.iter().enumerate() {
        let on = plans.iter().filter(|p| p.swarm[k].enabled).count();
        assert!(on > 10 && on < 54, "{field} on in {on} of 64 seeds");
    }
    // A kind that is off contributes no fault.
    for p in &plans {
        let cuts_on = p.swarm[1].enabled;
        let random_cuts = p
            .faults
            .iter()
            .filter(|f| f.source == FaultSource::Random && matches!(f.kind, FaultKind::Cut { .. }))
            .count();
        if !cuts_on {
            assert_eq!(random_cuts, 0);
        } else {
            assert_eq!(random_cuts, p.swarm[1].placed);
        }
    }
}

#[test]
fn swarm_false_turns_every_listed_kind_on() {
    let text = SWARM.replace("[random]\n", "[random]\nswarm = false\n");
    let s = Scenario::from_str(&text, "all-on.toml").unwrap();
    for seed in 0..16 {
        let p = s.plan(seed);
        assert!(p.swarm.iter().all(|d| d.enabled), "seed {seed}: {p:?}");
    }
}

#[test]
fn drawn_rates_and_counts_follow_the_ranges() {
    let s = swarm();
    for seed in 0..64 {
        let p = s.plan(seed);
        let cuts = &p.swarm[1];
        if cuts.enabled {
            assert!((1.0..=6.0).contains(&cuts.rate), "{cuts:?}");
            // 90 s of faults at `rate` per minute: 1.5 × rate, rounded down or up.
            let expected = cuts.rate * 1.5;
            assert!(
                cuts.drawn as f64 >= expected.floor() && cuts.drawn as f64 <= expected.ceil(),
                "{cuts:?}"
            );
        }
        assert!((0.0..=0.05).contains(&p.loss));
        assert!(
            p.latency[0] >= Duration::from_millis(1) && p.latency[1] <= Duration::from_millis(50)
        );
        assert!(p.latency[0] <= p.latency[1]);
    }
}

#[test]
fn scripted_faults_are_in_every_plan_in_time_order() {
    let s = swarm();
    let scripted = s.scripted_faults();
    assert_eq!(
        scripted[0].kind,
        FaultKind::Cut {
            client: "sensor-2".into()
        }
    );
    assert_eq!(
        scripted[1].kind,
        FaultKind::CrashBroker {
            restart_after: Duration::from_secs(2),
            in_sync: false,
        }
    );
    assert_eq!(scripted[0].source, FaultSource::Script(1));
    for seed in 0..32 {
        let p = s.plan(seed);
        for f in scripted {
            assert!(p.faults.contains(f), "seed {seed} lost {f}");
        }
        assert!(
            p.faults.windows(2).all(|w| w[0].at <= w[1].at),
            "seed {seed} out of order"
        );
    }
}

fn check_invariants(s: &Scenario, p: &Plan) {
    let until = s.faults_until();
    for f in &p.faults {
        assert!(f.at < until, "{f} starts after faults_until");
        let heal = f.heals_at().expect("random and these scripted faults heal");
        assert!(heal <= until, "{f} heals at {heal:?}, after faults_until");
    }
    // Node-down faults never overlap on one node.
    let mut windows: Vec<(Node, Duration, Duration)> = p
        .faults
        .iter()
        .filter_map(|f| {
            f.kind.downs_node().map(|n| {
                (
                    n,
                    f.at,
                    f.heals_at().unwrap().max(f.at + Duration::from_millis(1)),
                )
            })
        })
        .collect();
    windows.sort();
    for w in windows.windows(2) {
        if w[0].0 == w[1].0 {
            assert!(
                w[0].2 <= w[1].1,
                "overlap on {}: {:?} and {:?}",
                w[0].0,
                w[0],
                w[1]
            );
        }
    }
    // Random faults only hit clients of the scenario.
    for f in &p.faults {
        let client = match &f.kind {
            FaultKind::Cut { client }
            | FaultKind::Blackhole { client, .. }
            | FaultKind::Delay { client, .. }
            | FaultKind::SplitWrites { client, .. }
            | FaultKind::Crash { client, .. }
            | FaultKind::PowerOff { client, .. }
            | FaultKind::Restart { client } => Some(client.as_str()),
            _ => None,
        };
        if let Some(client) = client {
            assert!(s.client(client).is_some(), "{f}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_faults_start_and_heal_inside_the_faults_phase(seed in any::<u64>()) {
        let s = swarm();
        check_invariants(&s, &s.plan(seed));
    }
}

#[test]
fn targets_limit_who_random_faults_hit() {
    let text = SWARM.replace("[random]\n", "[random]\ntargets = [\"sensor-1\"]\n");
    let s = Scenario::from_str(&text, "targets.toml").unwrap();
    for seed in 0..32 {
        for f in s
            .plan(seed)
            .faults
            .iter()
            .filter(|f| f.source == FaultSource::Random)
        {
            let text = f.kind.to_string();
            assert!(
                !text.contains("sensor-2") && !text.contains("monitor"),
                "seed {seed}: {text}"
            );
        }
    }
}

#[test]
fn sub_streams_are_independent_of_each_other() {
    // Removing the cut range leaves every other kind's draws as they were.
    let s = swarm();
    let without =
        Scenario::from_str(&SWARM.replace("cuts_per_minute = [1, 6]\n", ""), "x.toml").unwrap();
    for seed in 0..16 {
        let a = s.plan(seed);
        let b = without.plan(seed);
        let blackholes = |p: &Plan| -> Vec<String> {
            p.faults
                .iter()
                .filter(|f| matches!(f.kind, FaultKind::Blackhole { .. }))
                .map(|f| f.to_string())
                .collect()
        };
        assert_eq!(blackholes(&a), blackholes(&b), "seed {seed}");
        assert_eq!(a.latency, b.latency);
        assert_eq!(a.loss, b.loss);
    }
    assert_ne!(
        sub_seed(1, "faults/cuts_per_minute"),
        sub_seed(1, "faults/blackholes_per_minute")
    );
    assert_ne!(
        sub_seed(1, "network/latency"),
        sub_seed(2, "network/latency")
    );
}

#[test]
fn a_scenario_without_random_plans_only_its_script() {
    let text = SWARM.split("[random]").next().unwrap().to_string()
        + "[expect]\ncheckers = [\"delivery\"]\n";
    let s = Scenario::from_str(&text, "script.toml").unwrap();
    let p = s.plan(7);
    assert_eq!(p.faults, s.scripted_faults());
    assert!(p.swarm.is_empty());
    assert_eq!(p.loss, 0.0);
    assert_eq!(
        p.latency,
        [Duration::from_millis(1), Duration::from_millis(10)]
    );
    assert_eq!(s.plan(8).faults, p.faults);
}

#[test]
fn describe_lists_everything_the_seed_derived() {
    let s = swarm();
    let p = s.plan(3);
    let text = p.describe();
    assert!(text.starts_with("seed 3: swarm\n"), "{text}");
    assert!(
        text.contains("  phases: faults 0s..1m30s, settle by 2m, end 2m\n"),
        "{text}"
    );
    assert!(text.contains("  network: latency "), "{text}");
    for d in &p.swarm {
        assert!(text.contains(d.field), "{text}");
    }
    assert!(
        text.contains(&format!("  faults: {}\n", p.faults.len())),
        "{text}"
    );
    for f in &p.faults {
        assert!(text.contains(&f.to_string()), "{f} missing from\n{text}");
    }
    assert!(
        text.contains("crash_broker, restart after 2s  (fault[0])"),
        "{text}"
    );
}

/// Random storage faults need a durable broker; with one, every seed draws sync errors, full
/// disks, slow syncs and broker crashes (some inside syncs) within their ranges, in the faults
/// phase, and adding them leaves the other kinds' draws as they were.
#[test]
fn random_storage_faults_need_a_durable_broker_and_stay_in_their_ranges() {
    let storage = "[random]\nsync_errors_per_minute = [2, 4]\nsync_error_for = [\"100ms\", \"1s\"]\ndisk_full_per_minute = [2, 4]\nslow_syncs_per_minute = [2, 4]\nslow_sync_latency = [\"20ms\", \"200ms\"]\nbroker_crash_in_sync = 0.5\n";
    let text = SWARM.replace("[random]\n", storage);
    let e = Scenario::from_str(&text, "storage.toml")
        .unwrap_err()
        .to_string();
    for field in [
        "random.sync_errors_per_minute",
        "random.disk_full_per_minute",
        "random.slow_syncs_per_minute",
        "random.broker_crash_in_sync",
    ] {
        assert!(e.contains(field) && e.contains("durable"), "{field}: {e}");
    }

    let durable = text.replace(
        "[random]",
        "[broker]\npersistence = \"durable\"\n\n[random]",
    );
    let s = Scenario::from_str(&durable, "storage.toml").unwrap();
    let base = swarm();
    let (mut errors, mut fulls, mut slow, mut in_sync, mut plain) = (0, 0, 0, 0, 0);
    for seed in 0..64 {
        let plan = s.plan(seed);
        for f in plan
            .faults
            .iter()
            .filter(|f| f.source == FaultSource::Random)
        {
            assert!(f.at < plan.faults_until, "seed {seed}: {f}");
            match &f.kind {
                FaultKind::SyncError { duration } => {
                    assert!(*duration >= Duration::from_millis(100));
                    assert!(*duration <= Duration::from_secs(1));
                    errors += 1;
                }
                FaultKind::DiskFull { .. } => fulls += 1,
                FaultKind::SlowSync { latency, .. } => {
                    assert!(*latency >= Duration::from_millis(20));
                    assert!(*latency <= Duration::from_millis(200));
                    slow += 1;
                }
                FaultKind::CrashBroker { in_sync: true, .. } => in_sync += 1,
                FaultKind::CrashBroker { in_sync: false, .. } => plain += 1,
                _ => {}
            }
        }
        let blackholes = |p: &Plan| -> Vec<String> {
            p.faults
                .iter()
                .filter(|f| matches!(f.kind, FaultKind::Blackhole { .. }))
                .map(|f| f.to_string())
                .collect()
        };
        assert_eq!(
            blackholes(&plan),
            blackholes(&base.plan(seed)),
            "seed {seed}"
        );
    }
    assert!(
        errors > 0 && fulls > 0 && slow > 0,
        "{errors} {fulls} {slow}"
    );
    assert!(in_sync > 0 && plain > 0, "{in_sync} {plain}");
}
