//! The simulated world: one broker node and a node per client, running the real shell, broker
//! and client code under madsim, with faults from the scenario's plan; and the per-seed runner.

pub mod outcome;

pub use outcome::{RunOutcome, RunStatus};
