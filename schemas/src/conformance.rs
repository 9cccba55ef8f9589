//! The conformance report (DESIGN.md §7): what `kiosk-sim conformance` writes as
//! `report.json` (beside `junit.xml` and `summary.txt`) for a chain operator's kiosk or
//! a municipality's adapter, and what an onboarding reviewer reads.
//!
//! Every assertion names a clause (a stable id such as `M-BIND-1`: profile letter,
//! topic, number) and a severity. A run passes when no FAIL-severity assertion failed;
//! WARN-severity failures are reported and do not fail the run. Evidence is kept as
//! SHA-256 digests of the requests and responses (never the resident data itself), so a
//! report can be shared and still matched against the target's own logs.

use crate::kiosk_api::Digest32;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `format` of a report.
pub const CONFORMANCE_REPORT_FORMAT: &str = "konbini-kofu/conformance-report/1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// The suite plays the center and drives a kiosk through the control interface
    /// ([`crate::kiosk_control`]).
    Kiosk,
    /// The suite plays the center against a municipality's adapter loaded with the
    /// suite's test residents.
    Municipality,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// Must pass to go live.
    Fail,
    /// Reported; does not fail the run.
    Warn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    /// Not run (e.g. an earlier step of the scenario failed).
    Skipped,
}

/// One exchange kept as evidence: digests only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// What the exchange was ("POST /v1/certificates", "control: pay").
    pub label: String,
    pub request_sha256: Option<Digest32>,
    pub response_sha256: Option<Digest32>,
    pub http_status: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionResult {
    pub clause: String,
    pub severity: Severity,
    pub outcome: Outcome,
    /// What was checked, and on failure what was seen instead.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioResult {
    /// Stable scenario id, e.g. `municipality.concurrent_distinct_residents`.
    pub id: String,
    pub title: String,
    /// `failed` when any FAIL-severity assertion failed; `passed` otherwise (WARNs may
    /// have failed); `skipped` when it could not run.
    pub outcome: Outcome,
    pub duration_ms: u64,
    pub assertions: Vec<AssertionResult>,
    pub evidence: Vec<Evidence>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSummary {
    pub scenarios: u32,
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
    pub assertions: u32,
    /// FAIL-severity assertions that failed: the run passes only when this is 0.
    pub fail_assertions_failed: u32,
    pub warn_assertions_failed: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConformanceReport {
    pub format: String,
    pub suite_version: String,
    pub profile: Profile,
    /// `reference` or the target's URL.
    pub target: String,
    /// What the target says it is (its info endpoint), when it says.
    pub target_software: Option<String>,
    /// The fault mode the reference target ran with (negative controls only).
    pub fault: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    pub duration_ms: u64,
    pub scenarios: Vec<ScenarioResult>,
    pub summary: ReportSummary,
    /// True exactly when `summary.fail_assertions_failed == 0`.
    pub passed: bool,
}
