//! The checkers (oracles): pure functions of a [`Trace`] that report broken guarantees.
//!
//! Each checker lives in its own file and has the signature [`CheckFn`]; [`registry`] lists
//! them all by name ([`CHECKERS`]) and [`run`] runs a selection on a validated trace. The
//! checkers keep their own model of the run ([`model`]), built from what clients and the
//! network observed; they never see the broker. [`access`] reads the broker's users and ACL as
//! the trace states them. [`expect`] judges a run's explicit expectations about named clients,
//! given as plain data ([`expect::Expectations`]). What each checker guarantees, and the exact
//! meaning of "entitled", is in docs/checkers.md. [`story`] builds hand-written traces for tests.
//!
//! Not here: running the world (`sim`), reading scenario files (`scenario`), printing reports;
//! nothing here imports the simulator or the scenario format.

pub mod access;
pub mod acl;
pub mod announced;
pub mod delivery;
pub mod expect;
pub mod expiry;
pub mod explain;
pub mod figures;
pub mod handshake;
pub mod integrity;
pub mod model;
pub mod ordering;
pub mod qos;
pub mod registry;
pub mod resend;
pub mod retained;
pub mod session;
pub mod shared;
pub mod story;
pub mod subscription;
pub mod topic;
pub mod unsubscribe;
pub mod will;

pub use registry::{CHECKERS, Checker, by_name};

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

/// Why checkers could not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    #[error("unknown checker {0:?} (known: {known})", known = registry::names())]
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

#[cfg(test)]
mod tests {
    /// The checkers judge a trace with their own model: no file under `src/check/` uses the
    /// simulator or the scenario format.
    #[test]
    fn check_imports_neither_the_simulator_nor_scenarios() {
        fn visit(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    visit(&path, found);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or("");
                    // Spelled in two halves so that this file does not match.
                    let imports = |m: &str| {
                        ["crate", "mqtt_lab"]
                            .iter()
                            .any(|root| code.contains(&format!("{root}::{m}")))
                    };
                    if imports("sim") || imports("scenario") {
                        found.push(format!("{}:{}: {line}", path.display(), i + 1));
                    }
                }
            }
        }
        let mut found = Vec::new();
        visit(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/check"),
            &mut found,
        );
        assert!(found.is_empty(), "{found:#?}");
    }
}
