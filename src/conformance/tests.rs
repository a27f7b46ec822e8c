use std::path::{Path, PathBuf};

use super::*;

/// Every file of the project that may name a statement: sources, tests, fuzz targets,
/// scenarios and pages.
fn project_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![root.join("README.md")];
    let mut dirs: Vec<PathBuf> = [
        "src",
        "tests",
        "fuzz/fuzz_targets",
        "scenarios",
        "docs",
        "benches",
    ]
    .iter()
    .map(|d| root.join(d))
    .collect();
    // Bounded by the tree: each directory is read once.
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
                .is_some_and(|e| e == "rs" || e == "md" || e == "toml")
                && !path.starts_with(root.join("src/conformance"))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn both_lists_load_and_keep_their_shape() {
    for spec in Spec::ALL {
        let all = spec.statements();
        assert!(all.len() > 100, "{}: {} statements", spec.name(), all.len());
        assert!(all.iter().any(|s| s.binds == Binds::Server && s.wire));
        assert!(all.iter().any(|s| s.binds == Binds::Client));
    }
    assert_eq!(
        Spec::V3_1_1.statement("MQTT-3.1.0-2").map(|s| s.binds),
        Some(Binds::Server),
        "a second CONNECT is the server's to refuse"
    );
    assert!(Spec::V5_0.statement("MQTT-3.1.2-24").is_some());
    assert_eq!(specs_with("MQTT-9.9.9-9"), vec![]);
}

#[test]
fn labels_are_read_from_text_and_test_names() {
    let text = "see [MQTT-3.1.0-1], MQTT-4.3.3-10. and [MQTT-3.1.2-24]; not MQTT-3 or MQTT-x.y";
    let found: Vec<&str> = labels_in(text).into_iter().map(|(_, l)| l).collect();
    assert_eq!(found, ["MQTT-3.1.0-1", "MQTT-4.3.3-10", "MQTT-3.1.2-24"]);
    assert_eq!(
        label_of_test_name("mqtt_3_1_2_8_will_flag").as_deref(),
        Some("MQTT-3.1.2-8")
    );
    assert_eq!(
        label_of_test_name("mqtt5_3_3_4_9_receive_maximum").as_deref(),
        Some("MQTT-3.3.4-9")
    );
    assert_eq!(
        label_of_test_name("mqtt5_3_2_2_3_13_shared"),
        None,
        "a section"
    );
    assert_eq!(
        label_of_test_name("mqtt_4_7_1_wildcards"),
        None,
        "a section"
    );
    assert_eq!(
        label_of_test_name("mqtt_3_1_2_8"),
        None,
        "no words after it"
    );
}

/// Every statement the project names, in a comment, a message, a page or a test's name,
/// exists in MQTT 3.1.1 or 5.0: a misnumbered reference fails here.
#[test]
fn every_statement_the_project_names_exists() {
    let mut unknown = Vec::new();
    let mut named = 0;
    for path in project_files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let line_of = |at: usize| text[..at].matches('\n').count() + 1;
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = path.strip_prefix(root).unwrap_or(&path);
        for (at, label) in labels_in(&text) {
            named += 1;
            if specs_with(label).is_empty() {
                unknown.push(format!("{}:{}: {label}", path.display(), line_of(at)));
            }
        }
        for (at, _) in text.match_indices("fn mqtt") {
            let name: String = text[at + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if let Some(label) = label_of_test_name(&name) {
                named += 1;
                if specs_with(&label).is_empty() {
                    unknown.push(format!(
                        "{}:{}: fn {name} ({label})",
                        path.display(),
                        line_of(at)
                    ));
                }
            }
        }
    }
    assert!(
        named > 100,
        "only {named} references found: is the tree there?"
    );
    assert!(
        unknown.is_empty(),
        "statements that neither MQTT 3.1.1 nor 5.0 has:\n{}",
        unknown.join("\n")
    );
}
