//! What one seed of one scenario produced: the plan it derived, the trace, the verdict.

use std::time::Duration;

use crate::check::Violation;
use crate::scenario::Plan;
use crate::trace::Trace;

/// How a run ended, apart from what the checkers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// The run reached its duration and the checkers judged the trace.
    Completed,
    /// The simulation hit its time limit (virtual time) before finishing.
    TimeLimit,
    /// Our own code panicked inside the simulation: a bug, with its message.
    Crashed(String),
}

/// Everything one seed of one scenario produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub scenario: String,
    pub seed: u64,
    /// What the seed derived (fault mix, timings); `plan.describe()` prints it.
    pub plan: Plan,
    pub status: RunStatus,
    /// The observed events; complete when `status` is `Completed`.
    pub trace: Trace,
    /// Broken guarantees, ordered by time. Empty when the run passed.
    pub violations: Vec<Violation>,
    /// What the checkers could not decide, ordered by time: guarantees broken if a fault the
    /// lab did not see strike (a target's broker crash) struck at one end of its window and
    /// not at the other ([`crate::sim::judge_readings`]). Always empty in the simulator.
    pub undecided: Vec<Violation>,
    /// Virtual time the run covered.
    pub sim_time: Duration,
    /// Wall-clock time the run took.
    pub wall_time: Duration,
    /// The `[[fault]]` entries fired by trace events (`after`) that never fired before
    /// `faults_until`, by index: their event never came (often the point of a scenario, never
    /// a violation).
    pub unfired: Vec<usize>,
}

impl RunOutcome {
    /// Completed with nothing broken and nothing undecided.
    pub fn passed(&self) -> bool {
        self.status == RunStatus::Completed
            && self.violations.is_empty()
            && self.undecided.is_empty()
    }

    /// The run's fingerprint: the hash of its trace.
    pub fn fingerprint(&self) -> String {
        self.trace.fingerprint()
    }
}
