//! Errors of scenario files: every problem names the file, the field (a path like
//! `fault[2].partition.for`, indices from 0), the line when known, and the reason.
//!
//! Also here: mapping between field paths and places in the TOML text, both ways, so serde
//! errors (which know a byte span) get a field path and validation problems (which know a
//! path) get a line number. Not here: the checks themselves (`validate.rs`).

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One thing wrong with a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the field, like `client[1].will.qos`; empty for a TOML syntax error.
    pub field: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// What is wrong, in a sentence.
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.reason)
    }
}

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

fn render(origin: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{origin}: {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The field path of the deepest key or value whose span contains `span.start`. (A table's
/// own span covers only its header, so tables are searched through their entries.)
pub(crate) fn path_at(root: &DeTable<'_>, span: &Range<usize>) -> String {
    find_in_table(root, span.start).unwrap_or_default()
}

fn contains(range: &Range<usize>, at: usize) -> bool {
    range.start <= at && at < range.end.max(range.start + 1)
}

fn find_in_table(table: &DeTable<'_>, at: usize) -> Option<String> {
    for (key, value) in table {
        let name = key.get_ref().to_string();
        if let Some(inner) = find_in_value(value.get_ref(), at) {
            return Some(format!("{name}{inner}"));
        }
        if contains(&key.span(), at) || contains(&value.span(), at) {
            return Some(name);
        }
    }
    None
}

/// The path below `value` (starting with `.` or `[`) to the place holding `at`.
fn find_in_value(value: &DeValue<'_>, at: usize) -> Option<String> {
    match value {
        DeValue::Table(table) => find_in_table(table, at).map(|p| format!(".{p}")),
        DeValue::Array(items) => {
            items
                .iter()
                .enumerate()
                .find_map(|(i, item)| match find_in_value(item.get_ref(), at) {
                    Some(inner) => Some(format!("[{i}]{inner}")),
                    None => contains(&item.span(), at).then(|| format!("[{i}]")),
                })
        }
        _ => None,
    }
}

/// The byte offset where the field at `path` (as built by validation) is written, or where the
/// closest enclosing field that exists is written.
pub(crate) fn offset_of(root: &DeTable<'_>, path: &str) -> Option<usize> {
    let mut table = root;
    let mut best = None;
    for segment in path.split('.') {
        let (name, indices) = split_indices(segment);
        let Some((key, value)) = table.iter().find(|(k, _)| k.get_ref() == name) else {
            return best;
        };
        best = Some(key.span().start);
        let mut current = value;
        for index in indices {
            match current.get_ref().as_array().and_then(|a| a.get(index)) {
                Some(item) => {
                    best = Some(item.span().start);
                    current = item;
                }
                None => return best,
            }
        }
        match current.get_ref().as_table() {
            Some(t) => table = t,
            None => return best,
        }
    }
    best
}

fn split_indices(segment: &str) -> (&str, Vec<usize>) {
    let name_end = segment.find('[').unwrap_or(segment.len());
    let indices = segment[name_end..]
        .split(['[', ']'])
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    (&segment[..name_end], indices)
}
