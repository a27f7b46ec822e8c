//! The conformance matrix: every statement of both specifications, with what checks it (the
//! project's tests, checkers and scenarios from [`evidence`](super::evidence), and the
//! black-box checks of the [`suite`](super::suite)) or why nothing does.
//!
//! Printed by `mqtt-lab conformance --matrix` (text or JSON) and written to
//! `docs/conformance.md` by the unit tests (`MQTT_LAB_BLESS=1` rewrites it).

use std::fmt::Write as _;

use serde::Serialize;

use super::evidence::{self, Evidence, Kind};
use super::suite;
use super::{Binds, Spec, Statement};

/// Why nothing checks a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Uncovered {
    /// It binds the client only; our broker cannot observe it, and no test of our client names
    /// it.
    ClientRule,
    /// Whether it is kept cannot be seen on the wire.
    NotOnTheWire,
    /// Optional behaviour our broker does not implement (the words say which).
    NotImplemented(&'static str),
    /// It binds the server (or both) and can be seen on the wire, and nothing checks it.
    Gap,
}

impl Uncovered {
    pub fn words(self) -> &'static str {
        match self {
            Uncovered::NotImplemented(what) => what,
            Uncovered::ClientRule => {
                "binds the client only; our broker cannot observe it and no test of our client names it"
            }
            Uncovered::NotOnTheWire => "cannot be seen on the wire",
            Uncovered::Gap => "not checked yet",
        }
    }
}

/// Optional behaviour our broker does not implement, by the sections that describe it.
const NOT_IMPLEMENTED: &[(&str, &str)] = &[
    (
        "4.12",
        "optional: enhanced authentication, which our broker refuses (CONNACK 0x8C)",
    ),
    (
        "3.15",
        "optional: enhanced authentication (AUTH), which our broker refuses (CONNACK 0x8C)",
    ),
];

/// One statement's row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub spec: &'static str,
    pub id: &'static str,
    pub section: &'static str,
    pub binds: Binds,
    pub wire: bool,
    pub summary: &'static str,
    /// The black-box checks of the suite that judge it.
    pub suite: Vec<&'static str>,
    pub tests: Vec<&'static str>,
    pub checkers: Vec<&'static str>,
    pub scenarios: Vec<&'static str>,
    /// Set when nothing above checks it.
    pub uncovered: Option<Uncovered>,
}

impl Row {
    fn new(spec: Spec, s: &'static Statement, found: &'static [Evidence]) -> Row {
        let by = |kind: Kind| -> Vec<&'static str> {
            found
                .iter()
                .filter(|e| e.spec == spec && e.id == s.id && e.kind == kind)
                .map(|e| e.by.as_str())
                .collect()
        };
        let suite: Vec<&'static str> = suite::checks()
            .iter()
            .filter(|c| c.statements(spec).contains(&s.id.as_str()))
            .map(|c| c.name)
            .collect();
        let (tests, checkers, scenarios) = (by(Kind::Test), by(Kind::Checker), by(Kind::Scenario));
        let covered =
            !(suite.is_empty() && tests.is_empty() && checkers.is_empty() && scenarios.is_empty());
        let uncovered = (!covered).then(|| {
            if let Some((_, what)) = NOT_IMPLEMENTED.iter().find(|(root, _)| {
                s.section == *root
                    || s.section
                        .strip_prefix(root)
                        .is_some_and(|r| r.starts_with('.'))
            }) {
                Uncovered::NotImplemented(what)
            } else if !s.wire {
                Uncovered::NotOnTheWire
            } else if s.binds == Binds::Client {
                Uncovered::ClientRule
            } else {
                Uncovered::Gap
            }
        });
        Row {
            spec: spec.name(),
            id: &s.id,
            section: &s.section,
            binds: s.binds,
            wire: s.wire,
            summary: &s.summary,
            suite,
            tests,
            checkers,
            scenarios,
            uncovered,
        }
    }

    /// Whether it binds the server (alone or with the client) and can be seen on the wire: the
    /// statements the suite and the project aim to check, every one.
    pub fn server_observable(&self) -> bool {
        self.wire && self.binds != Binds::Client
    }

    /// "2 suite checks, 5 tests, 1 checker" or why nothing checks it.
    pub fn short(&self) -> String {
        if let Some(why) = self.uncovered {
            return why.words().to_string();
        }
        let mut parts = Vec::new();
        for (n, what) in [
            (self.suite.len(), "suite check"),
            (self.tests.len(), "test"),
            (self.checkers.len(), "checker"),
            (self.scenarios.len(), "scenario"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}{}", if n == 1 { "" } else { "s" }));
            }
        }
        parts.join(", ")
    }
}

/// The matrix of one specification.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub spec: &'static str,
    pub rows: Vec<Row>,
}

/// Counts of one specification's matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub statements: usize,
    pub covered: usize,
    pub by_suite: usize,
    pub server_observable: usize,
    pub server_observable_covered: usize,
    pub gaps: usize,
}

impl Matrix {
    /// The matrix of `spec` from the committed evidence and the suite.
    pub fn of(spec: Spec) -> Matrix {
        Matrix::with(spec, evidence::committed())
    }

    pub fn with(spec: Spec, found: &'static [Evidence]) -> Matrix {
        Matrix {
            spec: spec.name(),
            rows: spec
                .statements()
                .iter()
                .map(|s| Row::new(spec, s, found))
                .collect(),
        }
    }

    pub fn totals(&self) -> Totals {
        let count = |f: &dyn Fn(&Row) -> bool| self.rows.iter().filter(|r| f(r)).count();
        Totals {
            statements: self.rows.len(),
            covered: count(&|r| r.uncovered.is_none()),
            by_suite: count(&|r| !r.suite.is_empty()),
            server_observable: count(&|r| r.server_observable()),
            server_observable_covered: count(&|r| r.server_observable() && r.uncovered.is_none()),
            gaps: count(&|r| r.uncovered == Some(Uncovered::Gap)),
        }
    }

    /// One line per statement, after a line of totals.
    pub fn text(&self) -> String {
        let t = self.totals();
        let mut out = format!(
            "MQTT {}: {} statements, {} checked ({} by the suite); {} of the {} that bind the server and show on the wire; {} not checked yet\n",
            self.spec,
            t.statements,
            t.covered,
            t.by_suite,
            t.server_observable_covered,
            t.server_observable,
            t.gaps
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "  {:<16} {:<6} {}{}",
                r.id,
                binds(r.binds),
                r.short(),
                if r.suite.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", r.suite.join(", "))
                }
            );
        }
        out
    }
}

fn binds(b: Binds) -> &'static str {
    match b {
        Binds::Client => "client",
        Binds::Server => "server",
        Binds::Both => "both",
    }
}

/// `docs/conformance.md`, generated.
pub fn markdown(matrices: &[Matrix]) -> String {
    let mut out = String::from(
        "# Conformance matrix\n\n\
         <!-- Generated by the unit tests from src/conformance/ (the statement lists, evidence.txt and\n     \
         the suite's checks); `MQTT_LAB_BLESS=1 cargo test --lib conformance` rewrites it. -->\n\n\
         Every normative statement of MQTT 3.1.1 and 5.0, and what checks it: the black-box checks of\n\
         `mqtt-lab conformance --target` (the *suite*, which judges any broker), the project's unit\n\
         and integration tests, the lab's checkers (which judge every run of every scenario) and\n\
         the library scenarios. How references are found and placed in a version:\n\
         [testing.md](testing.md#conformance). The same table from the binary:\n\
         `mqtt-lab conformance --matrix` (`--json` for JSON).\n\n\
         | | statements | checked | by the suite | server rules seen on the wire | of them checked | not checked yet |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in matrices {
        let t = m.totals();
        let _ = writeln!(
            out,
            "| MQTT {} | {} | {} | {} | {} | {} | {} |",
            m.spec,
            t.statements,
            t.covered,
            t.by_suite,
            t.server_observable,
            t.server_observable_covered,
            t.gaps
        );
    }
    for m in matrices {
        let _ = write!(
            out,
            "\n## MQTT {}\n\n| Statement | Binds | Requires | Checked by |\n|---|---|---|---|\n",
            m.spec
        );
        for r in &m.rows {
            let mut by = Vec::new();
            if !r.suite.is_empty() {
                by.push(format!(
                    "suite: {}",
                    r.suite
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let first = |v: &[&str], what: &str| -> Option<String> {
                let name = |s: &str| s.rsplit(' ').next().unwrap_or(s).to_string();
                match v {
                    [] => None,
                    [one] => Some(format!("{what}: `{}`", name(one))),
                    [one, rest @ ..] => {
                        Some(format!("{what}: `{}` and {} more", name(one), rest.len()))
                    }
                }
            };
            by.extend(first(&r.tests, "tests"));
            by.extend(first(&r.checkers, "checkers"));
            by.extend(first(&r.scenarios, "scenarios"));
            if let Some(why) = r.uncovered {
                by.push(format!("*{}*", why.words()));
            }
            let _ = writeln!(
                out,
                "| {}{} | {} | {} | {} |",
                r.id,
                if r.wire { "" } else { " ¹" },
                binds(r.binds),
                r.summary.replace('|', "\\|"),
                by.join("; ")
            );
        }
    }
    out.push_str("\n¹ Not visible on the wire.\n");
    out
}
