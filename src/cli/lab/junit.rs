//! JUnit XML for CI: one `<testsuite>` per scenario, one `<testcase>` per seed. A broken
//! guarantee is a `<failure type="violated">` listing every violation; a crash, a time limit
//! or a determinism mismatch is an `<error>` of that class. Each message ends with the replay
//! command. Not here: the human table (`summary.rs`).

use std::fmt::Write as _;

use super::summary::rerun_command;
use super::verdict::{ScenarioResults, SeedResult, SuiteReport, TargetSummary, Verdict};

/// The whole document.
pub fn render(report: &SuiteReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let errors = |s: &ScenarioResults| s.results.iter().filter(|r| is_error(&r.verdict)).count();
    let total_errors: usize = report.scenarios.iter().map(errors).sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"mqtt-lab\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
        report.seeds_run(),
        report.failed() - total_errors,
        total_errors,
        report.elapsed.as_secs_f64()
    );
    for s in &report.scenarios {
        let e = errors(s);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\" file=\"{}\">",
            escape(&s.name),
            s.seeds(),
            s.failed() - e,
            e,
            s.wall_time().as_secs_f64(),
            escape(&s.path)
        );
        for r in &s.results {
            testcase(&mut out, report.target.as_ref(), s, r);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn is_error(v: &Verdict) -> bool {
    !matches!(v, Verdict::Passed | Verdict::Violated)
}

fn testcase(out: &mut String, target: Option<&TargetSummary>, s: &ScenarioResults, r: &SeedResult) {
    let _ = write!(
        out,
        "    <testcase name=\"seed {}\" classname=\"{}\" time=\"{:.3}\"",
        r.seed,
        escape(&s.path),
        r.wall_time.as_secs_f64()
    );
    if r.passed() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    let tag = if is_error(&r.verdict) {
        "error"
    } else {
        "failure"
    };
    let mut body = String::new();
    for v in &r.violations {
        let _ = writeln!(body, "{v}");
    }
    if let Verdict::Crashed(msg) = &r.verdict {
        let _ = writeln!(body, "{msg}");
    }
    let _ = writeln!(body, "fingerprint {}", r.fingerprint);
    let _ = write!(body, "replay: {}", rerun_command(target, &s.path, r.seed));
    let _ = writeln!(
        out,
        "      <{tag} type=\"{}\" message=\"{}\">{}</{tag}>",
        r.verdict.class(),
        escape(&r.verdict.headline(r.violations.len())),
        escape(&body)
    );
    out.push_str("    </testcase>\n");
}

/// XML text and attribute escaping; characters XML 1.0 forbids become `?`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::lab::summary::tests::report;

    #[test]
    fn junit_of_a_failing_suite() {
        insta::assert_snapshot!(render(&report()));
    }

    #[test]
    fn counts_split_failures_from_errors() {
        let xml = render(&report());
        assert!(
            xml.contains("<testsuites name=\"mqtt-lab\" tests=\"8\" failures=\"1\" errors=\"2\"")
        );
        assert_eq!(xml.matches("<testsuite ").count(), 2);
        assert_eq!(xml.matches("<testcase ").count(), 8);
        assert_eq!(xml.matches("<failure type=\"violated\"").count(), 1);
        assert_eq!(xml.matches("<error type=\"crashed\"").count(), 1);
        assert_eq!(xml.matches("<error type=\"nondeterministic\"").count(), 1);
        assert_eq!(
            xml.matches("[delivery]").count(),
            5,
            "every violation listed"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&apos;?\n"
        );
    }
}
