//! Conformance suites (DESIGN.md §7) for the parties that join the switch.
//!
//! `kiosk-sim conformance --profile kiosk --target reference --report DIR` plays the
//! center and drives the reference kiosk through its control interface.
//! `kiosk-sim conformance --profile municipality --target reference|URL --report DIR`
//! plays the center against a municipality's adapter loaded with the suite's test
//! residents ([`municipality::residents`]) and writes `report.json`
//! ([`schemas::conformance::ConformanceReport`]), `junit.xml` and `summary.txt`.
//! Every assertion names a clause of [`clauses`]; the run passes when no
//! FAIL-severity assertion failed. Guide: `conformance/README.md`.
//!
//! - [`clauses`]: the clause catalogue (id, severity, requirement);
//! - [`runner`]: per-scenario time bound, assertions and evidence digests;
//! - [`report`]: the report, JUnit XML and the summary;
//! - [`kiosk`]: the suite's center (a sandbox in-process) and the reference kiosk
//!   (started through kiosk-sim's [`KioskLauncher`]), and the kiosk scenarios;
//! - [`municipality`]: target set-up (reference adapter in-process, or a URL) and the
//!   scenarios.

pub mod clauses;
pub mod kiosk;
pub mod municipality;
pub mod report;
pub mod runner;

use std::path::Path;

use schemas::conformance::ConformanceReport;

pub use kiosk::{KioskLauncher, KioskSetupError, KioskTargetSpec, LaunchedKiosk, UrlKiosk};
pub use municipality::{SetupError, TargetSpec, UrlTarget};

/// Exit status: every FAIL clause passed.
pub const EXIT_PASSED: u8 = 0;
/// Exit status: at least one FAIL clause failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: the run could not start (target unreachable, bad configuration,
/// profile not available).
pub const EXIT_NOT_RUN: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    KioskSetup(#[from] KioskSetupError),
    #[error(transparent)]
    Write(#[from] report::WriteError),
    #[error("unknown fault mode {0:?}; known: {1}")]
    UnknownFault(String, String),
}

/// Runs the municipality profile and writes the three reports into `report_dir`.
pub async fn run_municipality(
    target: TargetSpec,
    fault: Option<&str>,
    report_dir: &Path,
) -> Result<ConformanceReport, RunError> {
    let fault = match fault {
        None => None,
        Some(name) => Some(municipal_adapter::FaultMode::parse(name).ok_or_else(|| {
            RunError::UnknownFault(
                name.to_owned(),
                municipal_adapter::FaultMode::ALL_FAULTS
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?),
    };
    let report = municipality::run(target, fault).await?;
    report::write_reports(&report, report_dir)?;
    Ok(report)
}

/// Runs the kiosk profile and writes the three reports into `report_dir`. `fault` is a
/// kiosk fault switch of the reference kiosk ([`kiosk::KIOSK_FAULTS`]).
pub async fn run_kiosk(
    target: KioskTargetSpec,
    fault: Option<&str>,
    report_dir: &Path,
) -> Result<ConformanceReport, RunError> {
    if let Some(name) = fault {
        if !kiosk::KIOSK_FAULTS.contains(&name) {
            return Err(RunError::UnknownFault(
                name.to_owned(),
                kiosk::KIOSK_FAULTS.join(", "),
            ));
        }
        if matches!(target, KioskTargetSpec::Url(_)) {
            return Err(RunError::Setup(SetupError::FaultOnUrl));
        }
    }
    let report = kiosk::run(target, fault).await?;
    report::write_reports(&report, report_dir)?;
    Ok(report)
}

/// The exit status for a finished run.
pub fn exit_status(report: &ConformanceReport) -> u8 {
    if report.passed {
        EXIT_PASSED
    } else {
        EXIT_FAILED
    }
}
