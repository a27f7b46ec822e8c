//! Reading a TOML configuration file so that every problem is reported at once, in line order,
//! each as `FILE: line N: FIELD: REASON` ([`Problem`]): syntax errors (with their column),
//! unknown fields, values of the wrong type, durations without a unit, old names of fields,
//! and then whatever a section's own checks find.
//!
//! A [`Document`] is the parsed text with the place of every key and value. [`Document::read`]
//! deserializes one section with serde; each time serde stops at a problem, the problem is
//! recorded, the offending entry is taken out, and the section is read again, until it reads
//! cleanly. Reasons speak of values, never of Rust types (`expected u16` becomes "expected a
//! whole number from 0 to 65535"). Not here: what any file contains (each format declares its
//! own types and checks).

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the field, like `client[1].will.qos`; empty for a TOML syntax error.
    pub field: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// 1-based column, given for TOML syntax errors.
    pub column: Option<usize>,
    /// What is wrong, in a sentence.
    pub reason: String,
}

impl Problem {
    /// A problem of `field` whose place in the file is not known.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            line: None,
            column: None,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.reason)
    }
}

/// One line per problem, each starting with `origin`: `FILE: line N: FIELD: REASON`.
pub fn render(origin: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{origin}: {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sorts problems by line (problems without a line last), keeping the order of equal lines.
pub fn in_line_order(problems: &mut [Problem]) {
    problems.sort_by_key(|p| (p.line.is_none(), p.line, p.column));
}

/// A field whose name changed: `field` (a path like `broker.max_queued`) is now `now`.
#[derive(Debug, Clone, Copy)]
pub struct Renamed {
    pub field: &'static str,
    pub now: &'static str,
}

/// A parsed TOML file: its text and the place of every key and value in it.
pub struct Document<'t> {
    text: &'t str,
    root: Spanned<DeTable<'t>>,
}

impl<'t> Document<'t> {
    /// Parses `text`; on syntax errors returns all of them, each with its line and column.
    pub fn parse(text: &'t str) -> Result<Document<'t>, Vec<Problem>> {
        let (root, errors) = DeTable::parse_recoverable(text);
        if errors.is_empty() {
            return Ok(Document { text, root });
        }
        let mut problems: Vec<Problem> = errors
            .iter()
            .map(|e| {
                let at = e.span().map(|s| s.start);
                Problem {
                    field: String::new(),
                    line: at.map(|o| line_of(text, o)),
                    column: at.map(|o| column_of(text, o)),
                    reason: e.message().trim().to_string(),
                }
            })
            .collect();
        in_line_order(&mut problems);
        Err(problems)
    }

    /// The whole document as a table.
    pub fn root(&self) -> &Spanned<DeTable<'t>> {
        &self.root
    }

    /// A problem of `field`, on the line where the field (or the closest enclosing field that
    /// is written) is.
    pub fn problem(&self, field: impl Into<String>, reason: impl Into<String>) -> Problem {
        let field = field.into();
        Problem {
            line: offset_of(self.root.get_ref(), &field).map(|o| line_of(self.text, o)),
            column: None,
            field,
            reason: reason.into(),
        }
    }

    /// Deserializes `T` from `section` (a table of this document, or the whole of it), finding
    /// every problem serde can: on each, the problem is recorded, the entry at fault is taken
    /// out and the section is read again. A field reported missing only because its entry was
    /// taken out is not reported again. Problems come in line order.
    pub fn read<T: Deserialize<'t>>(
        &self,
        section: Spanned<DeTable<'t>>,
        renamed: &[Renamed],
    ) -> Result<T, Vec<Problem>> {
        let section_span = section.span();
        let mut work = section;
        let mut problems: Vec<Problem> = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        loop {
            let e = match T::deserialize(toml::de::Deserializer::from(work.clone())) {
                Ok(value) if problems.is_empty() => return Ok(value),
                Ok(_) => break,
                Err(e) => e,
            };
            let span = e.span().filter(|s| *s != section_span);
            let problem = self.serde_problem(&e, span.as_ref(), renamed);
            if let Some(missing) = missing_field(e.message()) {
                let full = match problem.field.as_str() {
                    "" => missing.to_string(),
                    table => format!("{table}.{missing}"),
                };
                if removed.contains(&full) {
                    // Its entry was taken out for a problem already reported: drop the table.
                    if !span.is_some_and(|s| remove_at(work.get_mut(), s.start)) {
                        break;
                    }
                    removed.push(problem.field);
                    continue;
                }
            }
            let gone = span.is_some_and(|s| remove_at(work.get_mut(), s.start));
            removed.push(problem.field.clone());
            problems.push(problem);
            if !gone {
                break;
            }
        }
        in_line_order(&mut problems);
        Err(problems)
    }

    fn serde_problem(
        &self,
        e: &toml::de::Error,
        span: Option<&Range<usize>>,
        renamed: &[Renamed],
    ) -> Problem {
        let at = span.map(|s| s.start);
        let field = at
            .and_then(|at| find_in_table(self.root.get_ref(), at))
            .unwrap_or_default();
        let message = e.message().trim();
        let reason = match renamed.iter().find(|r| r.field == field) {
            Some(r) if message.starts_with("unknown field") => {
                format!("renamed to `{}`", r.now)
            }
            _ => plain(message),
        };
        Problem {
            line: at.map(|o| line_of(self.text, o)),
            column: None,
            field,
            reason,
        }
    }
}

/// The field a "missing field `x`" message names.
fn missing_field(message: &str) -> Option<&str> {
    message
        .trim()
        .strip_prefix("missing field `")?
        .split('`')
        .next()
}

/// A serde message with Rust type names replaced by what a file's reader knows.
fn plain(message: &str) -> String {
    const WHOLE: [(&str, &str); 10] = [
        ("u8", "a whole number from 0 to 255"),
        ("u16", "a whole number from 0 to 65535"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u64", "a whole number from 0 to 18446744073709551615"),
        ("usize", "a whole number from 0 to 18446744073709551615"),
        ("i8", "a whole number from -128 to 127"),
        ("i16", "a whole number from -32768 to 32767"),
        ("i32", "a whole number from -2147483648 to 2147483647"),
        ("i64", "a whole number"),
        ("f64", "a number"),
    ];
    let message = message.replacen("unknown variant `", "unknown value `", 1);
    let Some(at) = message.rfind("expected ") else {
        return message;
    };
    let (head, wanted) = message.split_at(at + "expected ".len());
    let word_end = wanted
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(wanted.len());
    let (word, rest) = wanted.split_at(word_end);
    let replaced = match word {
        "struct" | "map" => Some(("a table", skip_name(rest))),
        "enum" => Some(("one of the words this field takes", skip_name(rest))),
        "a" if rest.starts_with(" sequence") => Some(("an array", &rest[" sequence".len()..])),
        "a" if rest.starts_with(" map") => Some(("a table", &rest[" map".len()..])),
        "option" => Some(("a value", rest)),
        _ => WHOLE
            .iter()
            .find(|(ty, _)| *ty == word)
            .map(|(_, text)| (*text, rest)),
    };
    match replaced {
        Some((text, rest)) => format!("{head}{text}{rest}"),
        None => message.clone(),
    }
}

/// `rest` after a leading ` TypeName`.
fn skip_name(rest: &str) -> &str {
    let name = rest.trim_start();
    let end = name
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    &name[end..]
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// 1-based column (in characters) of a byte offset.
fn column_of(text: &str, offset: usize) -> usize {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..end].chars().count() + 1
}

fn contains(range: &Range<usize>, at: usize) -> bool {
    range.start <= at && at < range.end.max(range.start + 1)
}

/// The field path of the deepest key or value whose span contains `at`. (A table's own span
/// covers only its header, so tables are searched through their entries.)
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

/// Takes out the deepest entry or array item whose key or value holds `at`; whether one was.
fn remove_at(table: &mut DeTable<'_>, at: usize) -> bool {
    let mut found = None;
    for (key, value) in table.iter_mut() {
        if remove_in_value(value.get_mut(), at) {
            return true;
        }
        if contains(&key.span(), at) || contains(&value.span(), at) {
            found = Some(key.clone());
            break;
        }
    }
    found.is_some_and(|key| table.remove(&key).is_some())
}

fn remove_in_value(value: &mut DeValue<'_>, at: usize) -> bool {
    match value {
        DeValue::Table(table) => remove_at(table, at),
        DeValue::Array(items) => {
            let mut hit = None;
            for (i, item) in items.iter_mut().enumerate() {
                if remove_in_value(item.get_mut(), at) {
                    return true;
                }
                if contains(&item.span(), at) {
                    hit = Some(i);
                    break;
                }
            }
            let Some(i) = hit else {
                return false;
            };
            let mut kept: Vec<_> = std::mem::replace(items, DeArray::new())
                .into_iter()
                .collect();
            kept.remove(i);
            *items = kept.into_iter().collect();
            true
        }
        _ => false,
    }
}

/// The byte offset where the field at `path` is written, or where the closest enclosing field
/// that exists is written.
fn offset_of(root: &DeTable<'_>, path: &str) -> Option<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Section {
        #[serde(default)]
        port: u16,
        #[serde(default, with = "crate::config::duration")]
        timeout: std::time::Duration,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Fast,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
    }

    fn problems(text: &str) -> Vec<Problem> {
        let doc = Document::parse(text).unwrap();
        doc.read::<Section>(
            doc.root().clone(),
            &[Renamed {
                field: "prot",
                now: "port",
            }],
        )
        .unwrap_err()
    }

    #[test]
    fn every_problem_comes_at_once_in_line_order() {
        let p = problems("timeout = 5\nport = \"x\"\ncolour = 1\n[inner]\nnom = \"a\"\n");
        let lines: Vec<Option<usize>> = p.iter().map(|p| p.line).collect();
        assert_eq!(
            lines,
            [Some(1), Some(2), Some(3), Some(4), Some(5)],
            "{p:?}"
        );
        assert!(p[0].reason.contains("needs a unit"), "{p:?}");
        assert_eq!(p[1].field, "port");
        assert!(
            p[1].reason.contains("a whole number from 0 to 65535"),
            "{p:?}"
        );
        assert!(p[2].reason.contains("unknown field `colour`"), "{p:?}");
        assert_eq!(
            (p[3].field.as_str(), p[3].reason.as_str()),
            ("inner", "missing field `name`")
        );
        assert_eq!(p[4].field, "inner.nom");
    }

    #[test]
    fn reasons_name_no_rust_types_and_renames_say_so() {
        let p = problems("port = 70000\ninner = 3\nprot = 1\nmode = \"slow\"\n");
        let text = render("f.toml", &p);
        for ty in ["u16", "struct", "Inner", "Section", "variant", "Mode"] {
            assert!(!text.contains(ty), "{text}");
        }
        assert!(text.contains("f.toml: line 2: inner: "), "{text}");
        assert!(text.contains("expected a table"), "{text}");
        assert!(
            text.contains("f.toml: line 3: prot: renamed to `port`"),
            "{text}"
        );
        assert!(
            text.contains("f.toml: line 4: mode: unknown value `slow`, expected `fast`"),
            "{text}"
        );
    }

    #[test]
    fn syntax_errors_have_a_line_and_a_column() {
        let p = Document::parse("a = 1\nb = = 2\n").err().unwrap();
        assert_eq!((p[0].line, p[0].column), (Some(2), Some(5)), "{p:?}");
        assert!(p[0].to_string().starts_with("line 2, column 5: "), "{p:?}");
    }
}
