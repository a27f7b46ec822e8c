//! The fault timeline of one run: every planned fault becomes an *apply* step at its start and,
//! unless it is instantaneous (a cut) or never heals (a crash without restart), a *heal* step at
//! its end — never later than `faults_until`, so the settle phase starts with every healable
//! fault healed. Plus the trace's name for each fault.
//!
//! Pure: the world (`world.rs`) performs the steps. Not here: how a fault is produced.

use std::time::Duration;

use crate::scenario::{FaultKind, Plan};
use crate::trace::Fault;

/// Whether a step starts or ends its fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StepKind {
    Apply,
    Heal,
}

/// One thing the supervisor does at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Virtual time from the start of the run.
    pub at: Duration,
    pub kind: StepKind,
    /// Index of the fault in `plan.faults`.
    pub fault: usize,
}

/// The steps of `plan`, in the order to perform them. At one instant, faults that end are healed
/// before faults that start are applied (a node restarted before it crashes again), and a fault
/// that lasts no time (a restart) is healed right after it is applied.
pub fn timeline(plan: &Plan) -> Vec<Step> {
    let mut keyed: Vec<((Duration, u8, usize), Step)> = Vec::new();
    for (i, f) in plan.faults.iter().enumerate() {
        keyed.push((
            (f.at, 1, i),
            Step {
                at: f.at,
                kind: StepKind::Apply,
                fault: i,
            },
        ));
        if matches!(f.kind, FaultKind::Cut { .. }) {
            continue;
        }
        let Some(heal) = f.heals_at() else { continue };
        let heal = heal.min(plan.faults_until.max(f.at));
        let rank = if heal == f.at { 2 } else { 0 };
        keyed.push((
            (heal, rank, i),
            Step {
                at: heal,
                kind: StepKind::Heal,
                fault: i,
            },
        ));
    }
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, s)| s).collect()
}

/// The fault as the trace names it. A restart is a crash healed at once.
pub fn trace_fault(kind: &FaultKind) -> Fault {
    match kind {
        FaultKind::Cut { client } => Fault::Cut {
            client: client.clone(),
        },
        FaultKind::Blackhole { client, .. } => Fault::BlackHole {
            client: client.clone(),
        },
        FaultKind::Delay { client, extra, .. } => Fault::Delay {
            client: client.clone(),
            extra_us: u64::try_from(extra.as_micros()).unwrap_or(u64::MAX),
        },
        FaultKind::SplitWrites { client, .. } => Fault::SplitWrites {
            client: client.clone(),
        },
        FaultKind::Partition {
            from, to, oneway, ..
        } => Fault::Partition {
            from: from.name().to_string(),
            to: to.name().to_string(),
            one_way: *oneway,
        },
        FaultKind::Crash { client, .. } | FaultKind::Restart { client } => Fault::ClientCrash {
            client: client.clone(),
        },
        FaultKind::PowerOff { client, .. } => Fault::ClientPowerOff {
            client: client.clone(),
        },
        FaultKind::CrashBroker { .. } => Fault::BrokerCrash,
        FaultKind::SyncError { .. } => Fault::SyncError,
        FaultKind::DiskFull { .. } => Fault::DiskFull,
        FaultKind::SlowSync { latency, .. } => Fault::SlowSync {
            latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        },
        FaultKind::Pause { node, .. } => Fault::Pause {
            node: node.name().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn plan(faults: &str) -> Plan {
        let text = format!(
            r#"
name = "t"
protocol = "3.1.1"
duration = "30s"
faults_until = "20s"
[[client]]
id = "a"
[[client]]
id = "b"
{faults}
[expect]
checkers = ["delivery"]
"#
        );
        Scenario::from_str(&text, "t.toml").unwrap().plan(1)
    }

    fn steps(p: &Plan) -> Vec<(u64, StepKind, String)> {
        timeline(p)
            .into_iter()
            .map(|s| {
                (
                    s.at.as_millis() as u64,
                    s.kind,
                    p.faults[s.fault].kind.name().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn cuts_never_heal_and_crashes_without_restart_stay() {
        let p = plan(
            r#"
[[fault]]
at = "1s"
cut = "a"
[[fault]]
at = "2s"
crash = "b"
"#,
        );
        assert_eq!(
            steps(&p),
            vec![
                (1000, StepKind::Apply, "cut".to_string()),
                (2000, StepKind::Apply, "crash".to_string()),
            ]
        );
    }

    #[test]
    fn heals_come_before_applies_at_one_instant_and_restarts_heal_right_after() {
        let p = plan(
            r#"
[[fault]]
at = "1s"
crash_broker = { restart_after = "2s" }
[[fault]]
at = "3s"
pause = { node = "broker", for = "1s" }
[[fault]]
at = "3s"
restart = "a"
"#,
        );
        assert_eq!(
            steps(&p),
            vec![
                (1000, StepKind::Apply, "crash_broker".to_string()),
                (3000, StepKind::Heal, "crash_broker".to_string()),
                (3000, StepKind::Apply, "pause".to_string()),
                (3000, StepKind::Apply, "restart".to_string()),
                (3000, StepKind::Heal, "restart".to_string()),
                (4000, StepKind::Heal, "pause".to_string()),
            ]
        );
    }

    #[test]
    fn trace_names_follow_the_trace_model() {
        assert_eq!(
            trace_fault(&FaultKind::Restart { client: "a".into() }),
            Fault::ClientCrash { client: "a".into() }
        );
        assert_eq!(
            trace_fault(&FaultKind::Delay {
                client: "a".into(),
                extra: Duration::from_millis(250),
                duration: Duration::from_secs(1),
            }),
            Fault::Delay {
                client: "a".into(),
                extra_us: 250_000
            }
        );
    }
}
