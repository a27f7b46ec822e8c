//! The checker registry: every checker once ([`CHECKERS`]), under the name that scenario files
//! (`checkers = [...]`), reports and [`Violation::checker`](super::Violation) use; each name is
//! its module's `NAME`. Scenario validation reads the names through [`Checker`], the runner
//! through [`by_name`], and the docs' table of checkers is held to the same list by a test.
//!
//! Not here: the checkers themselves (a file each beside this one), and the explicit
//! expectations (`expect`), which a scenario states as promises rather than choosing by name.

use std::fmt;

use super::{
    CheckFn, acl, delivery, figures, handshake, integrity, ordering, retained, session, shared,
    subscription, unsubscribe, will,
};

/// Every checker, by name, in the order [`run_all`](super::run_all) runs them.
pub const CHECKERS: &[(&str, CheckFn)] = &[
    (delivery::NAME, delivery::check),
    (ordering::NAME, ordering::check),
    (retained::NAME, retained::check),
    (will::NAME, will::check),
    (session::NAME, session::check),
    (integrity::NAME, integrity::check),
    (shared::NAME, shared::check),
    (subscription::NAME, subscription::check),
    (acl::NAME, acl::check),
    (handshake::NAME, handshake::check),
    (unsubscribe::NAME, unsubscribe::check),
    (figures::NAME, figures::check),
];

/// What a [`Violation`](super::Violation) names when the trace itself could not be read.
pub const TRACE: &str = "trace";

/// `name` as the `'static` name a [`Violation`](super::Violation) carries: a checker of the
/// registry, the explicit expectations (`expect`) or [`TRACE`]; `None` for any other (a report
/// read back from a file names no other).
pub fn violation_source(name: &str) -> Option<&'static str> {
    CHECKERS
        .iter()
        .map(|(n, _)| *n)
        .chain([super::expect::NAME, TRACE])
        .find(|n| *n == name)
}

/// The checker called `name`.
pub fn by_name(name: &str) -> Option<CheckFn> {
    Checker::named(name).map(Checker::check)
}

/// Every checker's name in registry order, separated by `", "`.
pub fn names() -> String {
    Checker::all()
        .map(Checker::name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One checker of the registry, as a scenario names it (ordered as the registry).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checker(usize);

impl Checker {
    /// The checker called `name`.
    pub fn named(name: &str) -> Option<Checker> {
        CHECKERS.iter().position(|(n, _)| *n == name).map(Checker)
    }

    /// Every checker, in registry order.
    pub fn all() -> impl Iterator<Item = Checker> {
        (0..CHECKERS.len()).map(Checker)
    }

    /// The name as written in files and reports.
    pub fn name(self) -> &'static str {
        CHECKERS[self.0].0
    }

    /// The checker's function.
    pub fn check(self) -> CheckFn {
        CHECKERS[self.0].1
    }
}

impl fmt::Debug for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Checker {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Checker, D::Error> {
        d.deserialize_str(NameVisitor)
    }
}

/// Reads a checker's name; an unknown one is refused where it is written.
struct NameVisitor;

impl serde::de::Visitor<'_> for NameVisitor {
    type Value = Checker;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a checker name ({})", names())
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Checker, E> {
        Checker::named(name).ok_or_else(|| {
            let known: Vec<String> = Checker::all().map(|c| format!("`{c}`")).collect();
            E::custom(format!(
                "unknown checker `{name}`, expected one of {}",
                known.join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The value of `pub const NAME: &str = "...";` in a source file (the patterns are split
    /// so that this file does not match them).
    fn declared_name(text: &str) -> Option<&str> {
        let rest = text
            .split(concat!("pub const ", "NAME: &str = \""))
            .nth(1)?;
        rest.split('"').next()
    }

    /// A file of `src/check/` that has a checker function ([`CheckFn`]) names it, and the
    /// registry holds exactly those names, each once: no name without a checker, no checker
    /// without a name.
    #[test]
    fn every_checker_file_is_registered_under_its_name_and_nothing_else_is() {
        let mut files = Vec::new();
        rust_files(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/check"),
            &mut files,
        );
        let mut declared = BTreeSet::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            if text.contains(concat!("pub fn ", "check(trace: &Trace, ")) {
                let name = declared_name(&text)
                    .unwrap_or_else(|| panic!("{} has a checker but no NAME", f.display()));
                assert!(declared.insert(name.to_string()), "{name} declared twice");
            }
        }
        let registered: Vec<&str> = CHECKERS.iter().map(|(n, _)| *n).collect();
        let unique: BTreeSet<String> = registered.iter().map(|n| n.to_string()).collect();
        assert_eq!(unique.len(), registered.len(), "a name registered twice");
        assert_eq!(declared, unique, "checker files vs registry");
        for (n, _) in CHECKERS {
            assert_eq!(Checker::named(n).map(Checker::name), Some(*n));
            assert!(by_name(n).is_some());
        }
        assert_eq!(Checker::all().count(), CHECKERS.len());
        assert!(by_name(super::super::expect::NAME).is_none());
    }

    #[test]
    fn scenario_files_name_registered_checkers_only() {
        let read = |name: &str| -> Result<Checker, String> {
            let quoted = serde_json::Value::String(name.to_string());
            serde_json::from_value(quoted).map_err(|e| e.to_string())
        };
        for c in Checker::all() {
            assert_eq!(read(c.name()), Ok(c));
        }
        let e = read("liveness").unwrap_err();
        assert!(
            e.contains("unknown checker `liveness`, expected one of `delivery`, `ordering`"),
            "{e}"
        );
        assert!(names().starts_with("delivery, ordering, "), "{}", names());
    }

    /// The docs' table of checkers (a table headed `| name | what it checks |` in a Markdown
    /// file of the repository's docs) lists exactly the registered names.
    #[test]
    fn the_docs_table_of_checkers_lists_the_registry() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut pages = vec![root.join("README.md"), root.join("scenarios/README.md")];
        if let Ok(dir) = std::fs::read_dir(root.join("docs")) {
            pages.extend(dir.map(|e| e.unwrap().path()));
        }
        let registered: BTreeSet<&str> = CHECKERS.iter().map(|(n, _)| *n).collect();
        let mut tables = 0;
        for page in pages
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
        {
            let Ok(text) = std::fs::read_to_string(page) else {
                continue;
            };
            let mut lines = text.lines();
            while lines.any(|l| l.trim() == "| name | what it checks |") {
                let listed: BTreeSet<&str> = lines
                    .by_ref()
                    .skip(1)
                    .take_while(|l| l.starts_with('|'))
                    .filter_map(|l| l.split('`').nth(1))
                    .collect();
                assert_eq!(listed, registered, "the table in {}", page.display());
                tables += 1;
            }
        }
        assert!(tables > 0, "no table of checkers in {pages:?}");
    }
}
