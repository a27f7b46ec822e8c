//! Reads the project's tree for [`Evidence`]: the tests, checkers and scenarios that name a
//! statement. Run by the unit tests, which compare it with the committed `evidence.txt`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::evidence::{Evidence, Kind};
use super::{Spec, label_of_test_name, labels_in};

/// A reference the scan could not give a version (see [`super::evidence`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unplaced {
    pub at: String,
    pub id: String,
}

#[derive(Debug, Default)]
pub struct Scan {
    pub evidence: BTreeSet<Evidence>,
    pub unplaced: BTreeSet<Unplaced>,
}

/// The versions `id` means in a context that says `context` (None: it does not say).
pub fn place(id: &str, context: Option<Spec>) -> Option<Vec<Spec>> {
    let in3 = Spec::V3_1_1.statement(id);
    let in5 = Spec::V5_0.statement(id).is_some();
    match (in3, in5) {
        (None, false) => None,
        (Some(_), false) => Some(vec![Spec::V3_1_1]),
        (None, true) => Some(vec![Spec::V5_0]),
        (Some(s), true) => match context {
            Some(spec) => Some(vec![spec]),
            None if s.v5.as_deref() == Some(id) => Some(vec![Spec::V3_1_1, Spec::V5_0]),
            None => None,
        },
    }
}

/// Every file under `dir` whose extension is one of `exts`, sorted.
pub fn files_under(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| exts.iter().any(|x| e == *x))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

impl Scan {
    /// Scans the project at `root`.
    pub fn of(root: &Path) -> Scan {
        let mut scan = Scan::default();
        // Each file with its path relative to `root`; unreadable files are skipped.
        let read = |dir: &str| {
            files_under(&root.join(dir), &["rs", "toml"])
                .into_iter()
                .filter_map(|path| {
                    let text = std::fs::read_to_string(&path).ok()?;
                    let rel = path
                        .strip_prefix(root)
                        .unwrap_or(&path)
                        .display()
                        .to_string();
                    Some((rel, text))
                })
        };
        for (rel, text) in read("src").chain(read("tests")) {
            // The matrix's own code and tests name statements as data, not as checks.
            let own = [
                "src/conformance",
                "src/cli/conformance",
                "tests/interop/conformance",
            ]
            .iter()
            .any(|d| rel.starts_with(d));
            if !own && rel.ends_with(".rs") {
                let checker = rel.starts_with("src/check/");
                scan.rust(&rel, &text, checker);
            }
        }
        for (rel, text) in read("scenarios") {
            scan.scenario(&rel, &text);
        }
        scan
    }

    /// `rust` outside a checker, for the unit tests.
    #[cfg(test)]
    pub fn rust_for_test(&mut self, path: &str, text: &str) {
        self.rust(path, text, false);
    }

    fn credit(&mut self, id: &str, context: Option<Spec>, kind: Kind, by: &str, at: String) {
        match place(id, context) {
            Some(specs) => {
                for spec in specs {
                    self.evidence.insert(Evidence {
                        spec,
                        id: id.to_string(),
                        kind,
                        by: by.to_string(),
                    });
                }
            }
            None if !super::specs_with(id).is_empty() => {
                self.unplaced.insert(Unplaced {
                    at,
                    id: id.to_string(),
                });
            }
            // Unknown labels are the other unit test's to report.
            None => {}
        }
    }

    fn scenario(&mut self, path: &str, text: &str) {
        let context =
            text.parse::<toml::Table>()
                .ok()
                .and_then(|t| match t.get("protocol")?.as_str()? {
                    "3.1.1" => Some(Spec::V3_1_1),
                    "5.0" => Some(Spec::V5_0),
                    _ => None,
                });
        let ids: BTreeSet<&str> = labels_in(text).into_iter().map(|(_, l)| l).collect();
        for id in ids {
            self.credit(id, context, Kind::Scenario, path, path.to_string());
        }
    }

    /// A Rust file: each test function with the statements its name, doc comment and body
    /// name; in a checker's file, the statements named outside its tests too.
    fn rust(&mut self, path: &str, text: &str, checker: bool) {
        let lines: Vec<&str> = text.lines().collect();
        // The first line of the doc comment and attributes above the coming item.
        let mut item_from: Option<usize> = None;
        let mut test_attr = false;
        let mut n = 0;
        while n < lines.len() {
            let line = lines[n];
            let trimmed = line.trim_start();
            if trimmed.starts_with("///") || trimmed.starts_with("#[") {
                item_from.get_or_insert(n);
                test_attr |= is_test_attribute(trimmed);
                n += 1;
                continue;
            }
            let docs_from = item_from.take().unwrap_or(n);
            if test_attr && let Some(name) = fn_name(trimmed) {
                let indent = &line[..line.len() - trimmed.len()];
                let close = format!("{indent}}}");
                let end = (n..lines.len())
                    .find(|&k| lines[k] == close)
                    .unwrap_or(lines.len() - 1);
                let body = lines[docs_from..=end].join("\n");
                self.test(path, name, &body, docs_from + 1);
                test_attr = false;
                n = end + 1;
                continue;
            }
            test_attr = false;
            if checker && !trimmed.starts_with("//!") {
                for (_, id) in labels_in(line) {
                    let at = format!("{path}:{}", n + 1);
                    self.credit(id, said(line), Kind::Checker, path, at);
                }
            }
            n += 1;
        }
    }

    fn test(&mut self, path: &str, name: &str, body: &str, line: usize) {
        let docs: String = body
            .lines()
            .take_while(|l| !l.trim_start().starts_with("fn ") && !l.contains(" fn "))
            .filter(|l| l.trim_start().starts_with("///"))
            .collect();
        let context = if name.starts_with("mqtt5_") {
            Some(Spec::V5_0)
        } else {
            said(&docs).or(
                match (
                    body.contains("Protocol::V5"),
                    body.contains("Protocol::V3_1"),
                ) {
                    (true, false) => Some(Spec::V5_0),
                    (false, true) => Some(Spec::V3_1_1),
                    _ => None,
                },
            )
        };
        let by = format!("{path} {name}");
        let at = format!("{path}:{line} {name}");
        let mut ids: BTreeSet<(String, Option<Spec>)> = BTreeSet::new();
        for text_line in body.lines() {
            let here = said(text_line).or(context);
            for (_, l) in labels_in(text_line) {
                ids.insert((l.to_string(), here));
            }
        }
        if let Some(id) = label_of_test_name(name) {
            ids.insert((id, context));
        }
        for (id, here) in ids {
            self.credit(&id, here, Kind::Test, &by, at.clone());
        }
    }
}

/// The version a text says, if it names exactly one: "5.0" or "3.1.1".
fn said(text: &str) -> Option<Spec> {
    match (text.contains("5.0"), text.contains("3.1.1")) {
        (true, false) => Some(Spec::V5_0),
        (false, true) => Some(Spec::V3_1_1),
        _ => None,
    }
}

fn is_test_attribute(attr: &str) -> bool {
    attr == "#[test]"
        || (attr.starts_with("#[") && attr.contains("::test") && !attr.contains("cfg"))
}

/// The name of the function a line declares (`fn name(`, `async fn name(`, `pub fn ...`).
fn fn_name(line: &str) -> Option<&str> {
    let at = line.find("fn ")?;
    let before = &line[..at];
    if !before
        .split_whitespace()
        .all(|w| matches!(w, "pub" | "async" | "pub(crate)" | "unsafe" | "const"))
    {
        return None;
    }
    let rest = &line[at + 3..];
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}
