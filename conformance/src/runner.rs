//! Runs scenarios one after another, each within a time bound, collecting its
//! assertions (each naming a clause of [`crate::clauses`]) and its evidence.

use std::future::Future;
use std::time::{Duration, Instant};

use schemas::conformance::{AssertionResult, Evidence, Outcome, ScenarioResult, Severity};
use schemas::Digest32;

use crate::clauses;

/// Bounds that keep a report small whatever the target does.
pub const MAX_ASSERTIONS_PER_SCENARIO: usize = 400;
pub const MAX_EVIDENCE_PER_SCENARIO: usize = 400;
pub const MAX_MESSAGE_CHARS: usize = 400;

/// What one scenario collects while it runs.
#[derive(Debug, Default)]
pub struct ScenarioLog {
    assertions: Vec<AssertionResult>,
    evidence: Vec<Evidence>,
    dropped_assertions: usize,
}

fn bounded(text: &str) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
        cut.push('…');
        cut
    }
}

impl ScenarioLog {
    /// Records one assertion on `clause_id` (which must be in the catalogue: an unknown
    /// id is a bug of the suite and fails loudly in tests).
    pub fn check(&mut self, clause_id: &str, passed: bool, message: impl AsRef<str>) {
        let Some(clause) = clauses::clause(clause_id) else {
            debug_assert!(false, "clause {clause_id} is not in the catalogue");
            return;
        };
        let result = AssertionResult {
            clause: clause.id.to_owned(),
            severity: clause.severity,
            outcome: if passed {
                Outcome::Passed
            } else {
                Outcome::Failed
            },
            message: bounded(message.as_ref()),
        };
        if self.assertions.len() < MAX_ASSERTIONS_PER_SCENARIO {
            self.assertions.push(result);
        } else if !passed {
            // Keep failures visible: replace the oldest passed assertion.
            if let Some(slot) = self
                .assertions
                .iter()
                .position(|a| a.outcome == Outcome::Passed)
            {
                self.assertions.remove(slot);
                self.assertions.push(result);
            }
            self.dropped_assertions += 1;
        } else {
            self.dropped_assertions += 1;
        }
    }

    /// Passes when `result` is `Ok`, fails with the error's text otherwise; returns
    /// the value for the next step.
    pub fn require<T, E: std::fmt::Display>(
        &mut self,
        clause_id: &str,
        what: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => {
                self.check(clause_id, true, what);
                Some(value)
            }
            Err(error) => {
                self.check(clause_id, false, format!("{what}: {error}"));
                None
            }
        }
    }

    pub fn evidence(
        &mut self,
        label: impl Into<String>,
        request: Option<&[u8]>,
        response: Option<&[u8]>,
        http_status: Option<u16>,
    ) {
        if self.evidence.len() >= MAX_EVIDENCE_PER_SCENARIO {
            return;
        }
        self.evidence.push(Evidence {
            label: bounded(&label.into()),
            request_sha256: request.map(Digest32::of),
            response_sha256: response.map(Digest32::of),
            http_status,
        });
    }

    pub fn failed_fail_assertions(&self) -> usize {
        self.assertions
            .iter()
            .filter(|a| a.severity == Severity::Fail && a.outcome == Outcome::Failed)
            .count()
    }
}

/// Runs every `(id, title)` scenario in order, each with [`run_scenario`] and `bound`.
pub async fn run_scenarios<F, Fut>(
    scenarios: &[(&'static str, &'static str)],
    bound: Duration,
    mut scenario: F,
) -> Vec<ScenarioResult>
where
    F: FnMut(&'static str, ScenarioLog) -> Fut,
    Fut: Future<Output = ScenarioLog>,
{
    let mut results = Vec::with_capacity(scenarios.len());
    for &(id, title) in scenarios {
        tracing::info!(scenario = id, "running");
        results.push(run_scenario(id, title, bound, |log| scenario(id, log)).await);
    }
    results
}

/// Runs one scenario within `bound`; a scenario that runs out of time fails `M-RUN-1`
/// (`K-RUN-1` for a `kiosk.` scenario)
/// with whatever it had collected lost (the future is dropped).
pub async fn run_scenario<F, Fut>(
    id: &str,
    title: &str,
    bound: Duration,
    scenario: F,
) -> ScenarioResult
where
    F: FnOnce(ScenarioLog) -> Fut,
    Fut: Future<Output = ScenarioLog>,
{
    let started = Instant::now();
    // The profile's own "the run went through" clause (scenario ids start with it).
    let run_clause = if id.starts_with("kiosk.") {
        "K-RUN-1"
    } else {
        "M-RUN-1"
    };
    let mut log = match tokio::time::timeout(bound, scenario(ScenarioLog::default())).await {
        Ok(log) => log,
        Err(_) => {
            let mut log = ScenarioLog::default();
            log.check(
                run_clause,
                false,
                format!("the scenario did not finish within {} s", bound.as_secs()),
            );
            log
        }
    };
    if log.assertions.is_empty() {
        log.check(run_clause, false, "the scenario made no assertion");
    }
    if log.dropped_assertions > 0 {
        tracing::info!(
            scenario = id,
            dropped = log.dropped_assertions,
            "assertions beyond the bound were not kept"
        );
    }
    let outcome = if log.failed_fail_assertions() > 0 {
        Outcome::Failed
    } else {
        Outcome::Passed
    };
    ScenarioResult {
        id: id.to_owned(),
        title: title.to_owned(),
        outcome,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        assertions: log.assertions,
        evidence: log.evidence,
    }
}
