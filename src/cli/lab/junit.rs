//! JUnit XML for CI: one `<testsuite>` per scenario, one `<testcase>` per seed. A broken
//! guarantee is a `<failure type="violated">` listing every violation; a crash, a time limit
//! or a determinism mismatch is an `<error>` of that class; an undecided run is `<skipped>`,
//! listing what could not be decided. Each message ends with the replay command. Not here: the human table (`summary.rs`).

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
        "<testsuites name=\"mqtt-lab\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        report.seeds_run(),
        report.failed() - total_errors,
        total_errors,
        report.undecided(),
        report.elapsed.as_secs_f64()
    );
    for s in &report.scenarios {
        let e = errors(s);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\" file=\"{}\">",
            escape(&s.name),
            s.seeds(),
            s.failed() - e,
            e,
            s.undecided(),
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
    !matches!(v, Verdict::Passed | Verdict::Violated | Verdict::Undecided)
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
    } else if r.undecided() {
        "skipped"
    } else {
        "failure"
    };
    let mut body = String::new();
    for v in &r.violations {
        let _ = writeln!(body, "{v}");
    }
    for v in &r.undecided {
        let _ = writeln!(body, "undecided: {v}");
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
    fn an_undecided_seed_is_skipped_with_what_could_not_be_decided() {
        let mut r = report();
        let seed = &mut r.scenarios[1].results[1];
        seed.undecided = std::mem::take(&mut seed.violations);
        seed.verdict = Verdict::Undecided;
        let xml = render(&r);
        assert!(
            xml.contains("failures=\"0\" errors=\"2\" skipped=\"1\""),
            "{xml}"
        );
        assert_eq!(
            xml.matches("<skipped type=\"undecided\"").count(),
            1,
            "{xml}"
        );
        assert_eq!(xml.matches("undecided: [delivery]").count(), 5, "{xml}");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&apos;?\n"
        );
    }
}
