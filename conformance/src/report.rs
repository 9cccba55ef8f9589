//! The three outputs of a run: `report.json` ([`ConformanceReport`]), `junit.xml`
//! (one testsuite, one testcase per scenario, a `<failure>` per failed FAIL assertion,
//! failed WARN assertions as `<system-out>` lines) and `summary.txt`.

use std::fmt::Write as _;
use std::path::Path;

use schemas::conformance::{
    ConformanceReport, Outcome, Profile, ReportSummary, ScenarioResult, Severity,
    CONFORMANCE_REPORT_FORMAT,
};

use crate::clauses;

/// The suite's version, as written into every report.
pub const SUITE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Failed clauses listed in the summary at most (the JSON report has them all).
pub const MAX_SUMMARY_FAILURES: usize = 100;

pub struct RunInfo {
    pub profile: Profile,
    pub target: String,
    pub target_software: Option<String>,
    pub fault: Option<String>,
    pub started_at: String,
    pub duration_ms: u64,
}

pub fn build_report(info: RunInfo, scenarios: Vec<ScenarioResult>) -> ConformanceReport {
    let mut summary = ReportSummary {
        scenarios: count(scenarios.len()),
        ..ReportSummary::default()
    };
    for scenario in &scenarios {
        match scenario.outcome {
            Outcome::Passed => summary.passed += 1,
            Outcome::Failed => summary.failed += 1,
            Outcome::Skipped => summary.skipped += 1,
        }
        for assertion in &scenario.assertions {
            summary.assertions += 1;
            if assertion.outcome == Outcome::Failed {
                match assertion.severity {
                    Severity::Fail => summary.fail_assertions_failed += 1,
                    Severity::Warn => summary.warn_assertions_failed += 1,
                }
            }
        }
    }
    let passed = summary.fail_assertions_failed == 0;
    ConformanceReport {
        format: CONFORMANCE_REPORT_FORMAT.to_owned(),
        suite_version: SUITE_VERSION.to_owned(),
        profile: info.profile,
        target: info.target,
        target_software: info.target_software,
        fault: info.fault,
        started_at: info.started_at,
        duration_ms: info.duration_ms,
        scenarios,
        summary,
        passed,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry become U+FFFD.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn profile_name(profile: Profile) -> &'static str {
    match profile {
        Profile::Kiosk => "kiosk",
        Profile::Municipality => "municipality",
    }
}

pub fn junit_xml(report: &ConformanceReport) -> String {
    let failures_total: usize = report
        .scenarios
        .iter()
        .filter(|s| s.outcome == Outcome::Failed)
        .count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\">",
        xml_escape(&format!("conformance.{}", profile_name(report.profile))),
        report.scenarios.len(),
        failures_total,
        report.summary.skipped,
        report.duration_ms as f64 / 1000.0,
        xml_escape(&report.started_at),
    );
    let _ = writeln!(
        xml,
        "  <properties><property name=\"target\" value=\"{}\"/><property name=\"target_software\" value=\"{}\"/><property name=\"fault\" value=\"{}\"/><property name=\"suite_version\" value=\"{}\"/></properties>",
        xml_escape(&report.target),
        xml_escape(report.target_software.as_deref().unwrap_or("")),
        xml_escape(report.fault.as_deref().unwrap_or("")),
        xml_escape(&report.suite_version),
    );
    for scenario in &report.scenarios {
        let _ = write!(
            xml,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml_escape(&format!("conformance.{}", profile_name(report.profile))),
            xml_escape(&scenario.id),
            scenario.duration_ms as f64 / 1000.0,
        );
        let fails: Vec<_> = scenario
            .assertions
            .iter()
            .filter(|a| a.outcome == Outcome::Failed && a.severity == Severity::Fail)
            .collect();
        let warns: Vec<_> = scenario
            .assertions
            .iter()
            .filter(|a| a.outcome == Outcome::Failed && a.severity == Severity::Warn)
            .collect();
        if fails.is_empty() && warns.is_empty() && scenario.outcome != Outcome::Skipped {
            xml.push_str("/>\n");
            continue;
        }
        xml.push_str(">\n");
        if scenario.outcome == Outcome::Skipped {
            xml.push_str("    <skipped/>\n");
        }
        for failure in fails {
            let _ = writeln!(
                xml,
                "    <failure type=\"{}\" message=\"{}\">{}</failure>",
                xml_escape(&failure.clause),
                xml_escape(&format!("{}: {}", failure.clause, failure.message)),
                xml_escape(
                    clauses::clause(&failure.clause)
                        .map(|c| c.requirement)
                        .unwrap_or("")
                ),
            );
        }
        if !warns.is_empty() {
            xml.push_str("    <system-out>");
            for warn in warns {
                xml.push_str(&xml_escape(&format!(
                    "WARN {}: {}\n",
                    warn.clause, warn.message
                )));
            }
            xml.push_str("</system-out>\n");
        }
        xml.push_str("  </testcase>\n");
    }
    xml.push_str("</testsuite>\n");
    xml
}

pub fn summary_text(report: &ConformanceReport) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "適合性試験 / conformance: profile {}, suite {}",
        profile_name(report.profile),
        report.suite_version
    );
    let _ = writeln!(text, "target: {}", report.target);
    let _ = writeln!(
        text,
        "target software: {}",
        report
            .target_software
            .as_deref()
            .unwrap_or("(not reported)")
    );
    if let Some(fault) = &report.fault {
        let _ = writeln!(text, "fault (negative control): {fault}");
    }
    let s = &report.summary;
    let _ = writeln!(
        text,
        "scenarios: {} passed, {} failed, {} skipped of {}; assertions: {}, FAIL failed {}, WARN failed {}",
        s.passed, s.failed, s.skipped, s.scenarios, s.assertions, s.fail_assertions_failed, s.warn_assertions_failed
    );
    let _ = writeln!(
        text,
        "result: {}",
        if report.passed {
            "合格 PASSED (every FAIL clause passed)"
        } else {
            "不合格 FAILED"
        }
    );
    let mut listed = 0;
    for scenario in &report.scenarios {
        for a in scenario
            .assertions
            .iter()
            .filter(|a| a.outcome == Outcome::Failed)
        {
            if listed == MAX_SUMMARY_FAILURES {
                let _ = writeln!(text, "… more failures in report.json");
                return text;
            }
            listed += 1;
            let severity = match a.severity {
                Severity::Fail => "FAIL",
                Severity::Warn => "WARN",
            };
            let _ = writeln!(
                text,
                "{severity} {} [{}]: {}",
                a.clause, scenario.id, a.message
            );
        }
    }
    text
}

#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {source}")]
pub struct WriteError {
    pub path: String,
    pub source: std::io::Error,
}

/// Writes `report.json`, `junit.xml` and `summary.txt` into `dir` (created).
pub fn write_reports(report: &ConformanceReport, dir: &Path) -> Result<(), WriteError> {
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| WriteError {
            path: path.display().to_string(),
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(|source| WriteError {
        path: dir.display().to_string(),
        source,
    })?;
    let json = serde_json::to_vec_pretty(report).map_err(|e| WriteError {
        path: dir.join("report.json").display().to_string(),
        source: std::io::Error::other(e),
    })?;
    write("report.json", &json)?;
    write("junit.xml", junit_xml(report).as_bytes())?;
    write("summary.txt", summary_text(report).as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use schemas::conformance::AssertionResult;

    fn assertion(
        clause: &str,
        severity: Severity,
        outcome: Outcome,
        message: &str,
    ) -> AssertionResult {
        AssertionResult {
            clause: clause.into(),
            severity,
            outcome,
            message: message.into(),
        }
    }

    fn sample_report() -> ConformanceReport {
        let scenario = |id: &str, outcome, assertions| ScenarioResult {
            id: id.into(),
            title: "t".into(),
            outcome,
            duration_ms: 5,
            assertions,
            evidence: vec![],
        };
        build_report(
            RunInfo {
                profile: Profile::Municipality,
                target: "https://a.example/?x=1&y=<2>".into(),
                target_software: Some("adapter \"1\"".into()),
                fault: None,
                started_at: "2026-12-03T00:00:00Z".into(),
                duration_ms: 10,
            },
            vec![
                scenario(
                    "m.warn_only",
                    Outcome::Passed,
                    vec![assertion(
                        "M-PERF-1",
                        Severity::Warn,
                        Outcome::Failed,
                        "slow <12 s>",
                    )],
                ),
                scenario(
                    "m.failed",
                    Outcome::Failed,
                    vec![
                        assertion("M-BIND-2", Severity::Fail, Outcome::Failed, "digest & co"),
                        assertion("M-BIND-1", Severity::Fail, Outcome::Passed, "ok"),
                    ],
                ),
            ],
        )
    }

    #[test]
    fn a_warn_failure_does_not_fail_the_run_and_shows_as_system_out() {
        let mut report = sample_report();
        report.scenarios.pop();
        let report = build_report(
            RunInfo {
                profile: report.profile,
                target: report.target.clone(),
                target_software: None,
                fault: None,
                started_at: report.started_at.clone(),
                duration_ms: 1,
            },
            report.scenarios,
        );
        assert!(report.passed);
        assert_eq!(report.summary.warn_assertions_failed, 1);
        let xml = junit_xml(&report);
        assert!(!xml.contains("<failure"));
        assert!(xml.contains("<system-out>WARN M-PERF-1: slow &lt;12 s&gt;\n</system-out>"));
    }

    #[test]
    fn fail_failures_are_junit_failures_with_their_clause_and_the_summary_lists_them() {
        let report = sample_report();
        assert!(!report.passed);
        assert_eq!(report.summary.fail_assertions_failed, 1);
        assert_eq!(report.summary.failed, 1);
        let xml = junit_xml(&report);
        assert_eq!(xml.matches("<testcase ").count(), 2);
        assert_eq!(xml.matches("<failure ").count(), 1);
        assert!(xml.contains("type=\"M-BIND-2\" message=\"M-BIND-2: digest &amp; co\""));
        assert!(xml.contains("value=\"https://a.example/?x=1&amp;y=&lt;2&gt;\""));
        assert!(xml.contains("adapter &quot;1&quot;"));
        let summary = summary_text(&report);
        assert!(
            summary.contains("FAIL M-BIND-2 [m.failed]: digest & co"),
            "{summary}"
        );
        assert!(summary.contains("WARN M-PERF-1 [m.warn_only]"), "{summary}");
        assert!(summary.contains("不合格 FAILED"));
    }

    #[test]
    fn xml_escaping_covers_markup_and_control_characters() {
        assert_eq!(
            xml_escape("a<b>&\"'\u{1}𠮷"),
            "a&lt;b&gt;&amp;&quot;&apos;\u{FFFD}𠮷"
        );
    }
}
