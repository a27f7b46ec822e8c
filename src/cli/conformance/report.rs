//! The suite's results for people (text), programs (JSON) and CI (JUnit XML).

use std::fmt::Write as _;

use serde::Serialize;

use crate::conformance::Spec;
use crate::conformance::suite::{CheckResult, Verdict};

/// Counts by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub not_applicable: usize,
    pub undecided: usize,
    pub skipped: usize,
}

impl Counts {
    pub fn of(results: &[CheckResult]) -> Counts {
        let mut c = Counts::default();
        for r in results {
            match r.result {
                Verdict::Pass => c.pass += 1,
                Verdict::Fail => c.fail += 1,
                Verdict::NotApplicable => c.not_applicable += 1,
                Verdict::Undecided => c.undecided += 1,
                Verdict::Skipped => c.skipped += 1,
            }
        }
        c
    }
}

/// The words of a result's statements, one line each.
fn words(r: &CheckResult) -> Vec<String> {
    let spec = if r.protocol == "5.0" {
        Spec::V5_0
    } else {
        Spec::V3_1_1
    };
    r.statements
        .iter()
        .map(|id| match spec.statement(id) {
            Some(s) => format!("[{id}] {}", s.summary),
            None => format!("[{id}]"),
        })
        .collect()
}

/// One line per result, the details of every failure, and the totals.
pub fn text(target: &str, results: &[CheckResult]) -> String {
    let mut out = String::new();
    for r in results {
        let _ = writeln!(
            out,
            "{:<9} {:<5} {:<40} {}{}",
            r.result.name(),
            r.protocol,
            r.check,
            r.statements
                .iter()
                .map(|s| format!("[{s}]"))
                .collect::<Vec<_>>()
                .join(" "),
            r.why
                .as_ref()
                .filter(|_| r.result != Verdict::Fail)
                .map(|w| format!("\n          {w}"))
                .unwrap_or_default()
        );
    }
    for r in results.iter().filter(|r| r.result == Verdict::Fail) {
        let _ = writeln!(out, "\n── FAIL {} (MQTT {})", r.check, r.protocol);
        if let Some(w) = &r.why {
            let _ = writeln!(out, "{w}");
        }
        for w in words(r) {
            let _ = writeln!(out, "  {w}");
        }
        for line in &r.transcript {
            let _ = writeln!(out, "  {line}");
        }
    }
    let c = Counts::of(results);
    let _ = writeln!(
        out,
        "\n{target}: {} passed, {} failed, {} not applicable, {} undecided, {} skipped",
        c.pass, c.fail, c.not_applicable, c.undecided, c.skipped
    );
    out
}

#[derive(Serialize)]
struct Json<'a> {
    target: &'a str,
    counts: Counts,
    results: &'a [CheckResult],
}

/// The whole run as one JSON document.
pub fn json(target: &str, results: &[CheckResult]) -> String {
    serde_json::to_string_pretty(&Json {
        target,
        counts: Counts::of(results),
        results,
    })
    .unwrap_or_default()
}

/// JUnit XML: a test suite per protocol version, a test case per check; a failure carries the
/// transcript, n/a / undecided / skipped are `<skipped>` with why.
pub fn junit(target: &str, results: &[CheckResult]) -> String {
    let esc = crate::cli::lab::junit::escape;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let c = Counts::of(results);
    let time = |rs: &[&CheckResult]| rs.iter().map(|r| r.millis).sum::<u64>() as f64 / 1000.0;
    let all: Vec<&CheckResult> = results.iter().collect();
    let _ = writeln!(
        out,
        "<testsuites name=\"mqtt-lab conformance {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        esc(target),
        results.len(),
        c.fail,
        c.not_applicable + c.undecided + c.skipped,
        time(&all)
    );
    for protocol in ["3.1.1", "5.0"] {
        let rs: Vec<&CheckResult> = results.iter().filter(|r| r.protocol == protocol).collect();
        if rs.is_empty() {
            continue;
        }
        let failed = rs.iter().filter(|r| r.result == Verdict::Fail).count();
        let skipped = rs
            .iter()
            .filter(|r| !matches!(r.result, Verdict::Pass | Verdict::Fail))
            .count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"MQTT {protocol}\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" time=\"{:.3}\">",
            rs.len(),
            time(&rs)
        );
        for r in rs {
            let name = format!(
                "{} {}",
                r.check,
                r.statements
                    .iter()
                    .map(|s| format!("[{s}]"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"MQTT {protocol}\" time=\"{:.3}\"",
                esc(&name),
                r.millis as f64 / 1000.0
            );
            match r.result {
                Verdict::Pass => out.push_str("/>\n"),
                Verdict::Fail => {
                    let mut body = words(r).join("\n");
                    body.push('\n');
                    body.push_str(&r.transcript.join("\n"));
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        esc(r.why.as_deref().unwrap_or_default()),
                        esc(&body)
                    );
                }
                v => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}: {}\"/>\n    </testcase>",
                        v.name(),
                        esc(r.why.as_deref().unwrap_or_default())
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(check: &'static str, result: Verdict, why: Option<&str>) -> CheckResult {
        CheckResult {
            check,
            protocol: "3.1.1",
            statements: &["MQTT-2.2.2-2"],
            result,
            why: why.map(str::to_string),
            transcript: if result == Verdict::Fail {
                vec!["    0 ms a ← PINGRESP <&>".into()]
            } else {
                Vec::new()
            },
            millis: 1500,
        }
    }

    fn sample() -> Vec<CheckResult> {
        vec![
            result("a-pass", Verdict::Pass, None),
            result("a-fail", Verdict::Fail, Some("answered with \"PINGRESP\"")),
            result("a-skip", Verdict::Skipped, Some("give --user")),
        ]
    }

    #[test]
    fn junit_counts_each_verdict_and_escapes_what_a_failure_says() {
        let xml = junit("h:1", &sample());
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("<failure message=\"answered with &quot;PINGRESP&quot;\">"));
        assert!(
            xml.contains("PINGRESP &lt;&amp;&gt;"),
            "the transcript, escaped"
        );
        assert!(xml.contains("A receiver that gets a packet with invalid fixed-header flags"));
        assert!(xml.contains("<skipped message=\"skipped: give --user\"/>"));
        assert!(
            !xml.contains("MQTT 5.0"),
            "no suite for a version that did not run"
        );
    }

    #[test]
    fn json_and_text_give_the_counts_and_the_failure() {
        let v: serde_json::Value = serde_json::from_str(&json("h:1", &sample())).unwrap();
        assert_eq!(v["counts"]["pass"], 1);
        assert_eq!(v["counts"]["fail"], 1);
        assert_eq!(v["counts"]["skipped"], 1);
        assert_eq!(v["results"][1]["result"], "fail");
        assert!(
            v["results"][0].get("transcript").is_none(),
            "a pass has none"
        );
        let t = text("h:1", &sample());
        assert!(t.contains("── FAIL a-fail (MQTT 3.1.1)"), "{t}");
        assert!(t.ends_with("h:1: 1 passed, 1 failed, 0 not applicable, 0 undecided, 1 skipped\n"));
    }
}
