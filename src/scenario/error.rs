//! [`ScenarioError`]: why a scenario could not be loaded. Every problem names the file, the
//! field (a path like `fault[2].partition.for`, indices from 0), the line when known, and the
//! reason ([`Problem`]). Not here: finding the problems (each section's checks) or their lines
//! ([`crate::config::file`]).

use crate::config::file::{Problem, render};

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{origin}: cannot read the scenario: {source}")]
    Read {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid scenario. One line per problem:
    /// `FILE: line N: FIELD: REASON`.
    #[error("{}", render(origin, problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

impl ScenarioError {
    /// The problems found (empty for a read error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ScenarioError::Read { .. } => &[],
            ScenarioError::Invalid { problems, .. } => problems,
        }
    }
}
