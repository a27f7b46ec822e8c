//! Finding and loading the scenarios a run names: files as given, folders searched
//! recursively for `*.toml` (skipping any file whose name starts with `README`), each folder's
//! finds sorted by path. Every file is loaded and validated before anything runs; all problems
//! of all files are reported together. Not here: running them (`suite.rs`).

use std::path::{Path, PathBuf};

use crate::scenario::Scenario;

/// Most scenario files one run may name (after folders are expanded).
pub const MAX_FILES: usize = 10_000;
/// Deepest folder nesting searched.
const MAX_DEPTH: usize = 16;

/// A validated scenario and the path it was loaded from, spelled as the user gave it (so the
/// replay line can be pasted back).
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub path: String,
    pub scenario: Scenario,
}

/// The scenario files named by `paths`, in order: each file as given, each folder's `*.toml`
/// files sorted. A file named twice is kept once (its first place).
pub fn find_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    if paths.is_empty() {
        return Err("no scenario given: name scenario files or folders (like `scenarios`)".into());
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, 0, &mut found)?;
            if found.is_empty() {
                return Err(format!(
                    "{}: the folder holds no scenario (*.toml) files",
                    path.display()
                ));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
        if out.len() > MAX_FILES {
            return Err(format!("more than {MAX_FILES} scenario files"));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|p| seen.insert(p.clone()));
    Ok(out)
}

fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "{}: folders nested deeper than {MAX_DEPTH}",
            dir.display()
        ));
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        if kind.is_dir() {
            walk(&path, depth + 1, found)?;
        } else if is_scenario_file(&path) {
            found.push(path);
        }
        if found.len() > MAX_FILES {
            return Err(format!("more than {MAX_FILES} scenario files"));
        }
    }
    Ok(())
}

/// `*.toml`, except files whose name starts with `README` (any case).
pub fn is_scenario_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.ends_with(".toml") && !name.to_ascii_uppercase().starts_with("README")
}

/// Finds and loads every scenario; on any problem, one message listing every problem of every
/// file (`FILE: line N: FIELD: REASON`, one per line).
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<LoadedScenario>, String> {
    let files = find_files(paths)?;
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        match crate::sim::load(&file) {
            Ok(scenario) => loaded.push(LoadedScenario {
                path: file.display().to_string(),
                scenario,
            }),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "good"
protocol = "3.1.1"
duration = "5s"
[[client]]
id = "a"
[expect]
checkers = ["integrity"]
"#;

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn folders_are_searched_recursively_and_sorted_readme_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "02-b/02.toml", GOOD);
        write(d, "02-b/01.toml", GOOD);
        write(d, "01-a/x.toml", GOOD);
        write(d, "README.md", "# docs");
        write(d, "01-a/README.toml", "not a scenario");
        write(d, "01-a/notes.txt", "not a scenario");
        let files = find_files(&[d.to_path_buf()]).unwrap();
        let rel: Vec<_> = files
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(rel, ["01-a/x.toml", "02-b/01.toml", "02-b/02.toml"]);
    }

    #[test]
    fn files_keep_the_given_order_and_spelling_duplicates_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let b = write(tmp.path(), "b.toml", GOOD);
        let a = write(tmp.path(), "a.toml", GOOD);
        let loaded = load_all(&[b.clone(), a.clone(), b.clone()]).unwrap();
        let paths: Vec<_> = loaded.iter().map(|l| l.path.clone()).collect();
        assert_eq!(
            paths,
            [b.display().to_string(), a.display().to_string()],
            "as given, no duplicate"
        );
        assert_eq!(loaded[0].scenario.name, "good");
    }

    #[test]
    fn every_invalid_file_is_named_with_field_and_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let good = write(tmp.path(), "good.toml", GOOD);
        let bad1 = write(
            tmp.path(),
            "bad1.toml",
            &GOOD.replace("duration = \"5s\"", "duration = 5"),
        );
        let bad2 = write(tmp.path(), "bad2.toml", &GOOD.replace("3.1.1", "4.0"));
        let err = load_all(&[good, bad1.clone(), bad2.clone()]).unwrap_err();
        let lines: Vec<_> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].starts_with(&bad1.display().to_string()), "{err}");
        assert!(lines[0].contains("duration"), "{err}");
        assert!(lines[1].starts_with(&bad2.display().to_string()), "{err}");
        assert!(lines[1].contains("protocol"), "{err}");
    }

    #[test]
    fn missing_paths_empty_folders_and_no_paths_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let e = find_files(&[tmp.path().join("nope.toml")]).unwrap_err();
        assert!(e.contains("nope.toml") && e.contains("cannot read"), "{e}");
        let e = find_files(&[tmp.path().to_path_buf()]).unwrap_err();
        assert!(e.contains("no scenario"), "{e}");
        assert!(find_files(&[]).unwrap_err().contains("no scenario given"));
    }
}
