use std::path::{Path, PathBuf};

use super::*;
use super::{evidence, matrix, scan};

/// Every file of the project that may name a statement: sources, tests, fuzz targets,
/// scenarios and pages.
fn project_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![root.join("README.md")];
    for dir in [
        "src",
        "tests",
        "fuzz/fuzz_targets",
        "scenarios",
        "docs",
        "benches",
    ] {
        out.extend(
            scan::files_under(&root.join(dir), &["rs", "md", "toml"])
                .into_iter()
                .filter(|p| !p.starts_with(root.join("src/conformance"))),
        );
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

/// `evidence.txt` is what the tree says today; `MQTT_LAB_BLESS=1` rewrites it.
#[test]
fn the_committed_evidence_is_the_trees() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scan = scan::Scan::of(root);
    assert!(
        scan.unplaced.is_empty(),
        "references to a statement whose version the matrix cannot tell ({}); name the test \
         mqtt5_..., or say 5.0 / 3.1.1 on the line (src/conformance/evidence.rs says how):\n{}",
        scan.unplaced.len(),
        scan.unplaced
            .iter()
            .map(|u| format!("{}: {}", u.at, u.id))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut text: String = evidence::COMMITTED
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    for e in &scan.evidence {
        text.push_str(&e.line());
        text.push('\n');
    }
    bless_or_compare(
        &root.join("src/conformance/evidence.txt"),
        evidence::COMMITTED,
        &text,
    );
}

/// `docs/conformance.md` is the matrix of the committed evidence and the suite.
#[test]
fn the_conformance_page_is_the_matrix() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("docs/conformance.md");
    let page = std::fs::read_to_string(&path).unwrap_or_default();
    let matrices: Vec<matrix::Matrix> = Spec::ALL.into_iter().map(matrix::Matrix::of).collect();
    bless_or_compare(&path, &page, &matrix::markdown(&matrices));
}

fn bless_or_compare(path: &Path, committed: &str, fresh: &str) {
    if committed == fresh {
        return;
    }
    if std::env::var_os("MQTT_LAB_BLESS").is_some() {
        std::fs::write(path, fresh).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let old: std::collections::BTreeSet<&str> = committed.lines().collect();
    let new: std::collections::BTreeSet<&str> = fresh.lines().collect();
    let gone: Vec<&&str> = old.difference(&new).take(20).collect();
    let added: Vec<&&str> = new.difference(&old).take(20).collect();
    panic!(
        "{} is not what the tree gives; rewrite it with MQTT_LAB_BLESS=1 cargo test --lib conformance\n\
         lines gone: {gone:#?}\nlines new: {added:#?}",
        path.display()
    );
}

#[test]
fn references_are_placed_in_a_version() {
    // Only in 5.0.
    assert_eq!(scan::place("MQTT-3.3.2-6", None), Some(vec![Spec::V5_0]));
    // Only in 3.1.1.
    assert_eq!(scan::place("MQTT-2.2.2-2", None), Some(vec![Spec::V3_1_1]));
    // Both, different rules: only the context decides.
    assert_eq!(scan::place("MQTT-3.1.2-24", None), None);
    assert_eq!(
        scan::place("MQTT-3.1.2-24", Some(Spec::V5_0)),
        Some(vec![Spec::V5_0])
    );
    // Both, the same rule: both without context.
    assert_eq!(
        scan::place("MQTT-3.1.0-2", None),
        Some(vec![Spec::V3_1_1, Spec::V5_0])
    );
}

#[test]
fn a_test_is_credited_with_what_its_name_doc_and_body_name() {
    let mut s = scan::Scan::default();
    s.rust_for_test(
        "src/x.rs",
        "/// Checks [MQTT-3.3.2-6].\n#[test]\nfn mqtt5_3_1_2_24_big() {\n    let _ = 1; // [MQTT-3.1.0-2]\n}\n\nfn helper() {\n    // [MQTT-3.3.1-1]\n}\n",
    );
    let got: Vec<String> = s.evidence.iter().map(|e| e.line()).collect();
    assert_eq!(
        got,
        [
            "5.0\tMQTT-3.1.0-2\ttest\tsrc/x.rs mqtt5_3_1_2_24_big",
            "5.0\tMQTT-3.1.2-24\ttest\tsrc/x.rs mqtt5_3_1_2_24_big",
            "5.0\tMQTT-3.3.2-6\ttest\tsrc/x.rs mqtt5_3_1_2_24_big",
        ]
    );
}

#[test]
fn a_row_says_what_checks_it_or_why_nothing_does() {
    use matrix::{Matrix, Uncovered};
    let row = |m: &Matrix, id: &str| m.rows.iter().find(|r| r.id == id).cloned().unwrap();
    let bare = Matrix::with(Spec::V5_0, &[]);
    // Without evidence, only the suite's checks count.
    assert_eq!(row(&bare, "MQTT-2.1.3-1").suite, ["pingreq-reserved-flags"]);
    assert_eq!(row(&bare, "MQTT-2.1.3-1").uncovered, None);
    assert!(matches!(
        row(&bare, "MQTT-4.12.0-1").uncovered,
        Some(Uncovered::NotImplemented(w)) if w.contains("enhanced authentication")
    ));
    // A client's rule (the client must close on Session Present 1 without a session).
    assert_eq!(
        row(&bare, "MQTT-3.2.2-4").uncovered,
        Some(Uncovered::ClientRule)
    );
    // A transient error's close cannot be told from the wire.
    assert_eq!(
        row(&Matrix::with(Spec::V3_1_1, &[]), "MQTT-4.8.0-2").uncovered,
        Some(Uncovered::NotOnTheWire)
    );
    let all = Matrix::of(Spec::V5_0);
    let t = all.totals();
    assert_eq!(t.statements, 251);
    assert!(t.server_observable_covered <= t.server_observable);
    assert_eq!(
        t.gaps,
        all.rows
            .iter()
            .filter(|r| r.server_observable() && r.uncovered.is_some())
            .filter(|r| !matches!(r.uncovered, Some(Uncovered::NotImplemented(_))))
            .count()
    );
}
