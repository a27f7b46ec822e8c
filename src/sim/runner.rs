//! The per-seed runner: [`run_seed`] runs one seed of one scenario on a fresh OS thread with a
//! fresh madsim runtime, then judges the trace.
//!
//! The run uses the scenario with the values the plan drew for its client templates
//! ([`Scenario::drawn`]). The runtime gets the seed, the plan's latency range as
//! `send_latency`, and a time limit of the scenario's duration plus [`time_margin`]: hitting it
//! is [`RunStatus::TimeLimit`]; any panic inside the simulation (our own bug) is
//! [`RunStatus::Crashed`] with its message. A run that completes is judged by the checkers its
//! scenario names (`expect.checkers`) and by its explicit expectations ([`expectations`] builds
//! them for `check::expect`). Whichever way a run ends, its world ends with it: every node is
//! killed before the runtime is dropped, so no task, connection or client outlives the seed,
//! and the trace is what the run recorded up to then.
//!
//! Without `--cfg madsim` there is no simulator: `run_seed` returns a crashed outcome that says
//! how to build one.

#[cfg(madsim)]
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::options::{RunOptions, broker_config};
use super::outcome::{RunOutcome, RunStatus};
use crate::check::expect::{self, Expectations};
use crate::check::{self, CheckConfig, Violation};
use crate::codec::QoS;
use crate::scenario::{LossClass, Plan, Scenario};
use crate::trace::Trace;

/// How far past its duration a run may go (virtual time) before it counts as hung: a tenth of
/// the duration plus ten seconds.
pub fn time_margin(duration: Duration) -> Duration {
    duration / 10 + Duration::from_secs(10)
}

/// Whether this build can run simulations (`--cfg madsim`).
pub const SIMULATED: bool = cfg!(madsim);

/// Runs `seed` of `scenario` and judges it. Deterministic: the same scenario, seed and options
/// give the same trace (and fingerprint), whatever thread or machine runs it.
pub fn run_seed(scenario: &Scenario, seed: u64, options: &RunOptions) -> RunOutcome {
    let plan = scenario.plan(seed);
    // Template instances with the values this seed drew for their ranges.
    let scenario = scenario.drawn(&plan);
    let scenario = scenario.as_ref();
    let wall = std::time::Instant::now();
    let trace = Arc::new(Mutex::new(Trace::new()));
    let unfired = Arc::new(Mutex::new(Vec::new()));
    let status = simulate(scenario, &plan, options, trace.clone(), unfired.clone());
    let wall_time = wall.elapsed();
    let unfired = std::mem::take(&mut *super::recorder::lock(&unfired));
    let trace = std::mem::take(&mut *super::recorder::lock(&trace));
    judged(
        scenario,
        plan,
        status,
        trace,
        unfired,
        wall_time,
        &options.check,
    )
}

/// The outcome of a run of `plan` (of the drawn `scenario`) that ended with `status` and
/// recorded `trace`: judged by [`judge`] if it completed.
pub fn judged(
    scenario: &Scenario,
    plan: Plan,
    status: RunStatus,
    trace: Trace,
    unfired: Vec<usize>,
    wall_time: Duration,
    check: &CheckConfig,
) -> RunOutcome {
    let (violations, undecided) = match status {
        RunStatus::Completed => judge_readings(scenario, &trace, check),
        _ => (Vec::new(), Vec::new()),
    };
    RunOutcome {
        scenario: scenario.name.clone(),
        seed: plan.seed,
        sim_time: Duration::from_micros(trace.end_us()),
        plan,
        status,
        trace,
        violations,
        undecided,
        wall_time,
        unfired,
    }
}

/// [`judge`], and, for a trace with faults whose instant the lab did not see
/// ([`Trace::uncertain_faults`]), [`judge`] again with each at the latest instant it can have
/// struck ([`Trace::latest_reading`]): `(decided, undecided)`. What both readings find (same
/// checker, same words but for the crash's instant) is decided; what one finds alone is
/// undecided, and its message says which reading found it and the window.
pub fn judge_readings(
    scenario: &Scenario,
    trace: &Trace,
    cfg: &CheckConfig,
) -> (Vec<Violation>, Vec<Violation>) {
    let earliest = judge(scenario, trace, cfg);
    let Some(latest_trace) = trace.latest_reading() else {
        return (earliest, Vec::new());
    };
    let latest = judge(scenario, &latest_trace, cfg);
    let uncertain = trace.uncertain_faults();
    let windows: Vec<String> = uncertain
        .iter()
        .map(|(fault, a, b)| {
            format!(
                "{} struck between {}.{:06}s and {}.{:06}s",
                fault_name(fault),
                a / 1_000_000,
                a % 1_000_000,
                b / 1_000_000,
                b % 1_000_000
            )
        })
        .collect();
    let instants: Vec<u64> = uncertain.iter().flat_map(|&(_, a, b)| [a, b]).collect();
    let same = |a: &Violation, b: &Violation| same_finding(a, b, &instants);
    let note = |v: &Violation, found: &str, not: &str| Violation {
        message: format!(
            "{} (undecided: broken if the fault struck at the {found} and not at the {not}; {})",
            v.message,
            windows.join("; ")
        ),
        ..v.clone()
    };
    let mut decided = Vec::new();
    let mut undecided = Vec::new();
    for v in &earliest {
        if latest.iter().any(|l| same(v, l)) {
            decided.push(v.clone());
        } else {
            undecided.push(note(v, "earliest", "latest"));
        }
    }
    for v in latest
        .iter()
        .filter(|l| !earliest.iter().any(|e| same(e, l)))
    {
        undecided.push(note(v, "latest", "earliest"));
    }
    undecided.sort_by_key(|v| v.at_us);
    (decided, undecided)
}

/// Whether two readings found the same thing: same checker, and the same words but for the
/// instants of the crashes (`instants`, in microseconds), which a finding names where it uses
/// them and which differ between the readings.
fn same_finding(a: &Violation, b: &Violation, instants: &[u64]) -> bool {
    let words = |m: &str| {
        instants.iter().fold(m.to_string(), |m, t| {
            m.replace(&t.to_string(), "(the crash)")
        })
    };
    a.checker == b.checker && words(&a.message) == words(&b.message)
}

/// A fault whose instant the lab did not see, in a sentence (only a target's broker crash is).
fn fault_name(fault: &crate::trace::Fault) -> &'static str {
    match fault {
        crate::trace::Fault::BrokerCrash => "the broker crash",
        _ => "the fault",
    }
}

/// The checkers named by the scenario, then its explicit expectations, ordered by time. A trace
/// the checkers cannot read is reported as a violation of the checker `"trace"`.
pub fn judge(scenario: &Scenario, trace: &Trace, cfg: &CheckConfig) -> Vec<Violation> {
    let names: Vec<&str> = scenario.expect.checkers.iter().map(|c| c.name()).collect();
    let mut out = match check::run(names, trace, cfg) {
        Ok(v) => v,
        Err(e) => vec![Violation {
            checker: check::registry::TRACE,
            at_us: trace.end_us(),
            message: e.to_string(),
        }],
    };
    out.extend(expect::check(&expectations(scenario), trace));
    out.sort_by_key(|v| v.at_us);
    out
}

/// The scenario's explicit expectations (`[expect]` besides `checkers`), with the broker's
/// queue settings (as the broker core is configured) and the clients' No Local filters they
/// are judged by.
pub fn expectations(scenario: &Scenario) -> Expectations {
    let e = &scenario.expect;
    let broker = broker_config(scenario);
    Expectations {
        will_reaches: e.will_reaches.clone(),
        no_will: e.no_will.clone(),
        no_loss: e
            .no_loss
            .iter()
            .map(|c| match c {
                LossClass::Qos1 => QoS::AtLeastOnce,
                LossClass::Qos2 => QoS::ExactlyOnce,
            })
            .collect(),
        receives: e.receives.clone(),
        overflow: e.overflow.clone(),
        max_queued: broker.max_queued_messages,
        queue_overflow: broker.queue_overflow,
        no_local: scenario
            .clients
            .iter()
            .filter(|c| scenario.client_protocol(c).is_v5())
            .map(|c| {
                let filters = c.subscribe.iter().filter(|s| s.no_local);
                (c.id.clone(), filters.map(|s| s.filter.clone()).collect())
            })
            .collect(),
        connected_at_end: connected_at_end(scenario),
    }
}

/// The clients that must be connected when the run ends: they reconnect, are not told to stay
/// away (`disconnect_at` without `reconnect_at`), and after their last scheduled connect and
/// the faults they have time to notice a dead connection (twice the keep-alive), wait out the
/// longest backoff and connect (10 s more for the network to drain what a partition held).
fn connected_at_end(scenario: &Scenario) -> Vec<String> {
    let faults_until = scenario.faults_until();
    scenario
        .clients
        .iter()
        .filter(|c| c.reconnect.enabled && (c.disconnect_at.is_none() || c.reconnect_at.is_some()))
        .filter(|c| {
            let from = c
                .connect_at
                .max(c.reconnect_at.unwrap_or_default())
                .max(faults_until);
            from + 2 * c.keep_alive + c.reconnect.max_backoff + Duration::from_secs(10)
                <= scenario.duration
        })
        .map(|c| c.id.clone())
        .collect()
}

#[cfg(madsim)]
fn simulate(
    scenario: &Scenario,
    plan: &Plan,
    options: &RunOptions,
    trace: Arc<Mutex<Trace>>,
    unfired: Arc<Mutex<Vec<usize>>>,
) -> RunStatus {
    let scenario = Arc::new(scenario.clone());
    let plan = plan.clone();
    let options = options.clone();
    let limit = plan.duration + time_margin(plan.duration);
    let seed = plan.seed;
    let thread = std::thread::Builder::new()
        .name(format!("sim-seed-{seed}"))
        .spawn(move || {
            let mut config = madsim::Config::default();
            let [lo, hi] = plan.latency;
            // The range is half-open; keep it non-empty when the plan fixes one latency.
            config.net.send_latency = lo..hi.max(lo + Duration::from_micros(1));
            let mut rt = madsim::runtime::Runtime::with_seed_and_config(seed, config);
            rt.set_time_limit(limit);
            let nodes = node_names(&scenario);
            let world = super::world::supervise(scenario, plan, options, trace.clone());
            let run = catch_unwind(AssertUnwindSafe(|| rt.block_on(world)))
                .map(|never| *super::recorder::lock(&unfired) = never);
            // What the teardown might still record is no part of the run.
            let recorded = std::mem::take(&mut *super::recorder::lock(&trace));
            let released = catch_unwind(AssertUnwindSafe(|| release(&rt, &nodes)));
            drop(rt);
            *super::recorder::lock(&trace) = recorded;
            if let Err(panic) = run.and(released) {
                resume_unwind(panic);
            }
        });
    let joined = match thread {
        Ok(t) => t.join(),
        Err(e) => return RunStatus::Crashed(format!("could not start the seed's thread: {e}")),
    };
    match joined {
        Ok(()) => RunStatus::Completed,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            if message.contains("time limit exceeded") {
                RunStatus::TimeLimit
            } else {
                RunStatus::Crashed(message)
            }
        }
    }
}

/// Every node of the world: the broker and a node per client, by name.
#[cfg(madsim)]
fn node_names(scenario: &Scenario) -> Vec<String> {
    let clients = scenario.clients.iter().map(|c| c.id.clone());
    std::iter::once(crate::trace::BROKER.to_string())
        .chain(clients)
        .collect()
}

/// Ends the world of a finished (or stopped) run: kills every node, which drops every task of
/// it, paused or waiting, then drains the ready queue so the dropped tasks' futures go too. A
/// runtime dropped with tasks still pending keeps them alive: their futures, the wakers stored
/// in timers and sockets and the runtime's handles hold one another in cycles, and with them
/// every connection's buffers, every client and the whole trace.
#[cfg(madsim)]
fn release(rt: &madsim::runtime::Runtime, nodes: &[String]) {
    let nodes = nodes.to_vec();
    rt.block_on(async move {
        let handle = madsim::runtime::Handle::current();
        for name in &nodes {
            handle.kill(name.as_str());
        }
    });
}

#[cfg(not(madsim))]
fn simulate(
    _scenario: &Scenario,
    _plan: &Plan,
    _options: &RunOptions,
    _trace: Arc<Mutex<Trace>>,
    _unfired: Arc<Mutex<Vec<usize>>>,
) -> RunStatus {
    RunStatus::Crashed(
        "this build has no simulator: build with `--cfg madsim` (`cargo sim-run`, `cargo sim`)"
            .to_string(),
    )
}

#[cfg(madsim)]
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    #[test]
    fn two_readings_find_the_same_thing_only_in_the_same_words_but_for_the_crash() {
        let v = |checker, at_us, message: &str| Violation {
            checker,
            at_us,
            message: message.into(),
        };
        let instants = [1_000_000, 1_200_000];
        let early = v("session", 5, "got none (the broker crashed at 1000000 us)");
        let late = v("session", 9, "got none (the broker crashed at 1200000 us)");
        assert!(same_finding(&early, &late, &instants));
        let a = v("delivery", 7, "a#1 never reached m");
        let b = v("delivery", 7, "a#2 never reached m");
        assert!(!same_finding(&a, &b, &instants), "same time, other message");
        assert!(!same_finding(
            &a,
            &v("qos", 7, "a#1 never reached m"),
            &instants
        ));
        assert!(same_finding(&a, &a.clone(), &[]));
    }

    #[test]
    fn without_the_simulator_a_run_says_how_to_get_one() {
        let s = Scenario::from_str(
            r#"
name = "t"
protocol = "3.1.1"
duration = "1s"
[[client]]
id = "a"
[expect]
checkers = ["delivery"]
"#,
            "t.toml",
        )
        .unwrap();
        let out = run_seed(&s, 3, &RunOptions::default());
        assert!(matches!(&out.status, RunStatus::Crashed(m) if m.contains("--cfg madsim")));
        assert_eq!(out.seed, 3);
        assert_eq!(out.plan, s.plan(3));
        assert!(!out.passed());
    }

    /// A scenario may name every registered checker, and the runner runs exactly those; its
    /// expectations carry the broker's queue and the 5.0 clients' No Local filters.
    #[test]
    fn the_runner_judges_by_the_registry_and_the_scenario_s_expectations() {
        let names: Vec<String> = check::CHECKERS
            .iter()
            .map(|(n, _)| format!("{n:?}"))
            .collect();
        let s = Scenario::from_str(
            &format!(
                r#"
name = "t"
protocol = "5.0"
duration = "10s"
[broker]
max_queued_messages = 7
queue_overflow = "drop_oldest"
[[client]]
id = "a"
subscribe = [{{ filter = "t/#", qos = 1, no_local = true }}, {{ filter = "u", qos = 1 }}]
[[client]]
id = "b"
protocol = "3.1.1"
subscribe = [{{ filter = "t/#", qos = 1 }}]
[[workload]]
client = "b"
topic = "t/1"
qos = 2
count = 1
[expect]
checkers = [{}]
no_loss = ["qos2"]
receives = [{{ client = "a", at_least = 1 }}]
"#,
                names.join(", ")
            ),
            "t.toml",
        )
        .unwrap();
        let run: Vec<&str> = s.expect.checkers.iter().map(|c| c.name()).collect();
        let registered: Vec<&str> = check::CHECKERS.iter().map(|(n, _)| *n).collect();
        assert_eq!(run, registered);
        let e = expectations(&s);
        assert_eq!(e.max_queued, 7);
        assert_eq!(
            e.queue_overflow,
            crate::broker::config::QueueOverflow::DropOldest
        );
        assert_eq!(e.no_loss, [QoS::ExactlyOnce]);
        assert_eq!(e.receives, s.expect.receives);
        assert_eq!(e.no_local["a"], ["t/#"]);
        assert!(e.no_local.get("b").is_none_or(Vec::is_empty));
    }
}

#[cfg(all(test, madsim))]
mod sim_tests {
    use super::super::options::BrokerFactory;
    use super::super::recorder::lock;
    use super::*;
    use crate::sim::real_broker;

    /// A broker crash and restart, a client crash and restart, a power-off, a partition and a
    /// connection cut, with publishers still busy when the run ends: every kind of task the
    /// world leaves behind.
    const BUSY: &str = r#"
name = "every task left behind"
protocol = "3.1.1"
duration = "20s"
faults_until = "15s"
settle = "5s"
[broker]
persistence = "durable"
[[client]]
id = "monitor"
clean_session = false
keep_alive = "5s"
subscribe = [{ filter = "s/#", qos = 1 }]
[[client]]
id = "sensor-1"
keep_alive = "5s"
[[client]]
id = "sensor-2"
keep_alive = "5s"
[[workload]]
client = "sensor-1"
topic = "s/1"
qos = 1
count = 100
every = "100ms"
[[workload]]
client = "sensor-2"
topic = "s/2"
qos = 2
count = 100
every = "100ms"
[[fault]]
at = "2s"
crash_broker = { restart_after = "1s" }
[[fault]]
at = "4s"
cut = "monitor"
[[fault]]
at = "5s"
crash = "sensor-1"
restart_after = "2s"
[[fault]]
at = "10s"
power_off = "sensor-2"
restart_after = "4s"
[[fault]]
at = "10s"
partition = { between = ["monitor", "broker"], for = "4s" }
[expect]
checkers = ["integrity"]
"#;

    /// Runs `seed` and returns how many holders of its trace and of its broker factory remain
    /// once the run is over (besides the caller's own): the world's nodes, tasks and
    /// connections hold both, so anything left means the world outlived its run.
    fn left_behind(scenario: &Scenario, seed: u64, broker: BrokerFactory) -> (usize, usize) {
        let token = Arc::new(());
        let held = token.clone();
        let options = RunOptions {
            broker: Arc::new(move |config, auth, state| {
                let _ = &held;
                broker(config, auth, state)
            }),
            check: CheckConfig::default(),
            ..RunOptions::default()
        };
        let trace = Arc::new(Mutex::new(Trace::new()));
        let status = simulate(
            scenario,
            &scenario.plan(seed),
            &options,
            trace.clone(),
            Arc::default(),
        );
        drop(options);
        assert!(!lock(&trace).events.is_empty(), "{status:?}");
        (Arc::strong_count(&trace) - 1, Arc::strong_count(&token) - 1)
    }

    #[test]
    fn a_finished_run_leaves_no_task_node_or_trace_behind() {
        let s = Scenario::from_str(BUSY, "busy.toml").unwrap();
        for seed in 1..=5 {
            assert_eq!(left_behind(&s, seed, real_broker()), (0, 0), "seed {seed}");
        }
    }

    #[test]
    fn a_crashed_run_leaves_nothing_behind_either() {
        let s = Scenario::from_str(BUSY, "busy.toml").unwrap();
        let real = real_broker();
        // The restarted broker panics: the run stops mid-flight, with every client connected
        // or connecting.
        let planted: BrokerFactory = Arc::new(move |config, auth, state| {
            assert!(state.is_none(), "planted: the broker cannot restore");
            real(config, auth, state)
        });
        let options = RunOptions {
            broker: planted.clone(),
            check: CheckConfig::default(),
            ..RunOptions::default()
        };
        let out = run_seed(&s, 1, &options);
        assert!(
            matches!(&out.status, RunStatus::Crashed(m) if m.contains("planted")),
            "{:?}",
            out.status
        );
        assert!(!out.trace.events.is_empty());
        assert_eq!(left_behind(&s, 1, planted), (0, 0));
    }
}
