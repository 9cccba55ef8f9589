//! Profile `municipality`: the suite plays the center against an adapter loaded with
//! the suite's residents ([`residents`]). The target is either the reference adapter,
//! started in-process on loopback with a fresh PKI, keys and database, or a
//! municipality's adapter at a URL.

pub mod residents;
pub mod scenarios;
mod target;

pub use target::{SetupError, Target, TargetSpec, UrlTarget};

use std::time::{Duration, Instant};

use schemas::conformance::{ConformanceReport, Profile};

use crate::report::{build_report, RunInfo};
use crate::runner::run_scenarios;

/// Per-scenario time bound.
pub const SCENARIO_BOUND: Duration = Duration::from_secs(90);

/// Every scenario of the profile: (id, title).
pub const SCENARIOS: [(&str, &str); 10] = [
    ("municipality.schema", "Schema of every answer"),
    (
        "municipality.signatures",
        "Signatures and kid of answers and seals",
    ),
    (
        "municipality.binding_echo",
        "Binding echo: request id, card digest, municipality",
    ),
    (
        "municipality.concurrent_distinct_residents",
        "100 concurrent fetches for 100 distinct residents, zero cross-binding",
    ),
    (
        "municipality.idempotent_refetch",
        "Idempotent re-fetch and reused request ids",
    ),
    (
        "municipality.deadlines",
        "Deadlines: an expired fetch is refused and leaves nothing",
    ),
    (
        "municipality.refusal_codes",
        "The refusal code of each special resident",
    ),
    (
        "municipality.unprintable_characters",
        "A name with a character outside the certificate font",
    ),
    (
        "municipality.catalogue",
        "Catalogue signed and consistent with the answers",
    ),
    (
        "municipality.outcome_notices",
        "Outcome notices accepted idempotently",
    ),
];

/// Runs every scenario against `spec` (with `fault` on the reference target).
pub async fn run(
    spec: TargetSpec,
    fault: Option<municipal_adapter::FaultMode>,
) -> Result<ConformanceReport, SetupError> {
    let started_at = jiff::Timestamp::now().to_string();
    let started = Instant::now();
    let target = Target::start(spec, fault).await?;
    let t = &target;
    let results = run_scenarios(&SCENARIOS, SCENARIO_BOUND, |id, log| {
        scenarios::run(id, t, log)
    })
    .await;
    let info = RunInfo {
        profile: Profile::Municipality,
        target: target.label(),
        target_software: target.software(),
        fault: fault.map(|f| f.as_str().to_owned()),
        started_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    target.stop().await;
    Ok(build_report(info, results))
}
