//! The simulated world: one broker node and a node per client, running the real shell, broker
//! and client code under madsim, with faults from the scenario's plan; and the per-seed runner.
//!
//! - [`run_seed`] (`runner.rs`): one seed of one scenario on a fresh thread and runtime, judged
//!   by the scenario's checkers and explicit expectations (built from the scenario as
//!   [`check::expect::Expectations`](crate::check::expect::Expectations)); [`RunOutcome`].
//! - [`RunOptions`] (`options.rs`): the broker core to run ([`BrokerFactory`], the real one by
//!   default; tests wrap it to plant bugs) and the checkers' parameters; the one place where a
//!   scenario becomes the cores' configurations, and [`load`], which reads a scenario file and
//!   checks that it can.
//! - [`schedule`]: the plan as apply and heal steps, and each fault's name in the trace.
//! - [`names`]: the client identifiers and topics on the wire when runs share a broker.
//! - [`recorder`]: the shared trace and the per-client view that fills it.
//! - `app.rs`: the client application (also run against a real broker by `target`).
//! - `world.rs` (only with `--cfg madsim`): the nodes and the supervisor that applies faults.
//!
//! docs/world.md maps every fault onto madsim or the stream seam. Not here: scenario files
//! (`scenario`), the checkers (`check`), the command line.

pub(crate) mod app;
pub mod names;
pub mod options;
pub mod outcome;
pub mod recorder;
mod runner;
pub mod schedule;
#[cfg(madsim)]
mod world;

pub use options::{
    BrokerFactory, RunOptions, STORE_FILE, StoreFactory, load, real_broker, real_store,
};
pub use outcome::{RunOutcome, RunStatus};
pub use runner::{SIMULATED, expectations, judge, judge_readings, judged, run_seed, time_margin};
