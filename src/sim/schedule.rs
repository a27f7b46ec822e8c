//! The fault timeline of one run: every planned fault becomes an *apply* step at its start and,
//! unless it is instantaneous (a cut) or never heals (a crash without restart), a *heal* step at
//! its end — never later than `faults_until`, so the settle phase starts with every healable
//! fault healed. Plus the trace's name for each fault.
//!
//! [`timeline`] and the queue are pure; [`Steps::next`] waits for the next step in time
//! (`tokio::time`, virtual under the simulator). The world (`world.rs`) and the target runner
//! (`target/mod.rs`) perform the steps. Not here: how a fault is produced.

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

/// The steps still to perform in a run, the scripted ones from the start and those of faults
/// fired by trace events as they fire. Fault index `i` is `plan.faults[i]` below
/// `plan.faults.len()`, and triggered fault `i - plan.faults.len()` from there
/// ([`Steps::kind`]).
#[derive(Debug)]
pub struct Steps<'p> {
    plan: &'p Plan,
    /// (instant, rank, order) → step: heals (0) before applies (1) before instant heals (2).
    queue: std::collections::BTreeMap<(Duration, u8, usize), (StepKind, usize)>,
    /// Triggered faults that have not fired.
    unfired: Vec<bool>,
    /// Whether trigger reports may still come.
    watching: bool,
}

impl<'p> Steps<'p> {
    pub fn new(plan: &'p Plan) -> Steps<'p> {
        let mut queue = std::collections::BTreeMap::new();
        for (n, step) in timeline(plan).into_iter().enumerate() {
            let f = &plan.faults[step.fault];
            let rank = match step.kind {
                StepKind::Apply => 1,
                StepKind::Heal if step.at == f.at => 2,
                StepKind::Heal => 0,
            };
            queue.insert((step.at, rank, n), (step.kind, step.fault));
        }
        Steps {
            plan,
            queue,
            unfired: vec![true; plan.triggered.len()],
            watching: !plan.triggered.is_empty(),
        }
    }

    /// Waits for the next step, planning the triggered faults reported on `fired` (their
    /// indices in `plan.triggered`) meanwhile; `None` once every step is done, at
    /// `faults_until` at the earliest. `start`: the start of the run.
    pub async fn next(
        &mut self,
        fired: &mut tokio::sync::mpsc::UnboundedReceiver<usize>,
        start: std::time::Instant,
    ) -> Option<(StepKind, usize)> {
        loop {
            let due = start + self.next_at().unwrap_or(self.plan.faults_until);
            tokio::select! {
                biased;
                f = fired.recv(), if self.watching => match f {
                    Some(t) => self.fired(t, start.elapsed()),
                    None => self.watching = false,
                },
                _ = super::recorder::sleep_to(due) => return self.pop(),
            }
        }
    }

    /// The fault with index `index`.
    pub fn kind(&self, index: usize) -> &'p FaultKind {
        match self.plan.faults.get(index) {
            Some(f) => &f.kind,
            None => &self.plan.triggered[index - self.plan.faults.len()].kind,
        }
    }

    /// When the next step is due (from the start of the run).
    pub fn next_at(&self) -> Option<Duration> {
        self.queue.keys().next().map(|k| k.0)
    }

    /// The next step: apply or heal, and the fault's index.
    pub fn pop(&mut self) -> Option<(StepKind, usize)> {
        self.queue.pop_first().map(|(_, step)| step)
    }

    /// Triggered fault `t` fired `elapsed` into the run: it is applied its delay later, and
    /// healed after its length (by `faults_until` at the latest), unless that is past
    /// `faults_until`.
    pub fn fired(&mut self, t: usize, elapsed: Duration) {
        let triggered = &self.plan.triggered[t];
        let at = elapsed + triggered.delay;
        if at >= self.plan.faults_until {
            return;
        }
        self.unfired[t] = false;
        let index = self.plan.faults.len() + t;
        let order = usize::MAX / 2 + 2 * t;
        self.queue.insert((at, 1, order), (StepKind::Apply, index));
        let kind = &triggered.kind;
        if let (false, Some(lasts)) = (matches!(kind, FaultKind::Cut { .. }), kind.lasts()) {
            let heal = (at + lasts).min(self.plan.faults_until);
            let rank = if heal == at { 2 } else { 0 };
            self.queue
                .insert((heal, rank, order + 1), (StepKind::Heal, index));
        }
    }

    /// The `[[fault]]` indices of the triggered faults that never fired.
    pub fn unfired(&self) -> Vec<usize> {
        self.plan
            .triggered
            .iter()
            .zip(&self.unfired)
            .filter_map(|(t, never)| never.then_some(t.source))
            .collect()
    }
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
