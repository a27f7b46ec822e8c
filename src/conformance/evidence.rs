//! What in the project checks which statement: tests that name it, checkers that judge it,
//! scenarios that exercise it. Found from the names and comments the project already uses
//! (see [`scan`](super::scan), run by the unit tests), kept in `evidence.txt` beside this file
//! so that the binary can print the matrix anywhere.
//!
//! # Which version a reference means
//!
//! 121 labels exist in both specifications, some for the same rule, most for different ones
//! (`MQTT-3.1.2-24` is the keep-alive rule of 3.1.1 and the Maximum Packet Size rule of 5.0). A
//! reference is placed by, in order:
//! - a label only one specification has: that one;
//! - the context: a test named `mqtt5_...`, a test whose body builds only 5.0 (or only 3.1.1)
//!   packets, a checker's line that says "5.0" or "3.1.1", a scenario's `protocol`;
//! - a label both specifications use for the same rule (the 3.1.1 list's `v5`): both.
//!
//! A reference left without a version is listed as unplaced, and the unit tests refuse it.

use super::Spec;

/// What kind of thing checks a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A unit or integration test (`cargo test`).
    Test,
    /// A lab checker, judging every run of every scenario.
    Checker,
    /// A library scenario.
    Scenario,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Test => "test",
            Kind::Checker => "checker",
            Kind::Scenario => "scenario",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "test" => Kind::Test,
            "checker" => Kind::Checker,
            "scenario" => Kind::Scenario,
            _ => return None,
        })
    }
}

/// One thing that checks one statement of one specification.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Evidence {
    pub spec: Spec,
    /// The statement's label, `MQTT-3.1.0-1`.
    pub id: String,
    pub kind: Kind,
    /// A test: `path fn_name`; a checker or a scenario: its path.
    pub by: String,
}

impl Evidence {
    /// The line of `evidence.txt`: spec, label, kind and name, separated by tabs.
    pub fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}",
            self.spec.name(),
            self.id,
            self.kind.name(),
            self.by
        )
    }

    fn parse(line: &str) -> Option<Evidence> {
        let mut fields = line.splitn(4, '\t');
        let spec = match fields.next()? {
            "3.1.1" => Spec::V3_1_1,
            "5.0" => Spec::V5_0,
            _ => return None,
        };
        let id = fields.next()?.to_string();
        let kind = Kind::parse(fields.next()?)?;
        let by = fields.next()?.to_string();
        Some(Evidence { spec, id, kind, by })
    }
}

/// The committed evidence, as the unit tests last wrote it.
pub const COMMITTED: &str = include_str!("evidence.txt");

/// Every line of `text` (the format of `evidence.txt`; `#` lines are comments).
pub fn parse(text: &str) -> Result<Vec<Evidence>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(n, l)| {
            Evidence::parse(l).ok_or_else(|| format!("evidence.txt:{}: {l:?} is malformed", n + 1))
        })
        .collect()
}

/// The committed evidence.
pub fn committed() -> &'static [Evidence] {
    static ALL: std::sync::OnceLock<Vec<Evidence>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| parse(COMMITTED).unwrap_or_else(|e| panic!("{e}")))
}
