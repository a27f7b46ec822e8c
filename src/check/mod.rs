//! The checkers (oracles): pure functions of a [`Trace`] that report broken guarantees.
//!
//! Each checker lives in its own file and has the signature [`CheckFn`]; [`CHECKERS`] is the
//! registry by name ("delivery", "ordering", "retained", "will", "session", "integrity",
//! "shared", "subscription", "acl") and
//! [`run`] runs a selection on a validated trace. The checkers keep their own model of the run
//! ([`model`]), built from what clients and the network observed; they never see the broker.
//! What each one guarantees, and the exact meaning of "entitled", is in the README.
//! [`story`] builds hand-written traces for tests.
//!
//! Not here: running the world, reading scenario files, printing reports.

pub mod access;
pub mod acl;
pub mod delivery;
pub mod expect;
pub mod integrity;
pub mod model;
pub mod ordering;
pub mod retained;
pub mod session;
pub mod shared;
pub mod story;
pub mod subscription;
pub mod topic;
pub mod will;

use crate::trace::{Trace, TraceError};

/// One broken guarantee.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// The checker's registry name.
    pub checker: &'static str,
    /// When the guarantee was seen broken (for a message never delivered: the end of the run).
    pub at_us: u64,
    /// What happened, naming the clients, the message labels and the rule.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] at {}.{:06}s: {}",
            self.checker,
            self.at_us / 1_000_000,
            self.at_us % 1_000_000,
            self.message
        )
    }
}

/// Judgement parameters that are not in the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConfig {
    /// How late the network may make things beyond what the protocol allows: added to every
    /// timing bound (the will's 1.5 × keep-alive, session expiry). Default 2 s.
    pub network_slack_us: u64,
}

impl Default for CheckConfig {
    fn default() -> CheckConfig {
        CheckConfig {
            network_slack_us: 2_000_000,
        }
    }
}

/// A checker.
pub type CheckFn = fn(&Trace, &CheckConfig) -> Vec<Violation>;

/// Every checker, by name, in the order [`run_all`] runs them.
pub const CHECKERS: &[(&str, CheckFn)] = &[
    ("delivery", delivery::check),
    ("ordering", ordering::check),
    ("retained", retained::check),
    ("will", will::check),
    ("session", session::check),
    ("integrity", integrity::check),
    ("shared", shared::check),
    ("subscription", subscription::check),
    ("acl", acl::check),
];

/// The checker called `name`.
pub fn by_name(name: &str) -> Option<CheckFn> {
    CHECKERS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Why checkers could not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    #[error(
        "unknown checker {0:?} (known: delivery, ordering, retained, will, session, integrity, shared, subscription, acl)"
    )]
    UnknownChecker(String),
    #[error("malformed trace: {0}")]
    Trace(#[from] TraceError),
}

/// Validates `trace`, then runs the named checkers; violations come ordered by time, then by
/// checker order.
pub fn run<'a>(
    names: impl IntoIterator<Item = &'a str>,
    trace: &Trace,
    cfg: &CheckConfig,
) -> Result<Vec<Violation>, CheckError> {
    let checkers = names
        .into_iter()
        .map(|n| by_name(n).ok_or_else(|| CheckError::UnknownChecker(n.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    trace.validate()?;
    let mut out: Vec<Violation> = checkers.into_iter().flat_map(|c| c(trace, cfg)).collect();
    out.sort_by_key(|v| v.at_us);
    Ok(out)
}

/// Runs every checker.
pub fn run_all(trace: &Trace, cfg: &CheckConfig) -> Result<Vec<Violation>, CheckError> {
    run(CHECKERS.iter().map(|(n, _)| *n), trace, cfg)
}
