//! The kiosk profile end to end, through the library entry point the CLI
//! (`kiosk-sim conformance --profile kiosk`) calls, with the reference kiosk's control
//! server started in-process as the CLI does: the clean reference kiosk passes every
//! scenario; each kiosk fault switch fails exactly the scenarios it should.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use conformance::{
    run_kiosk, KioskLauncher, KioskSetupError, KioskTargetSpec, LaunchedKiosk, RunError,
    SetupError, UrlKiosk,
};
use schemas::conformance::{ConformanceReport, Outcome, Profile, Severity};

struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "conformance-kiosk-test-{label}-{}",
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// kiosk-sim's control server in this process (what `kiosk-sim conformance` does).
struct InProcessKiosk;

impl KioskLauncher for InProcessKiosk {
    fn launch(&self, settings_file: &Path, state_dir: &Path) -> Result<LaunchedKiosk, String> {
        let settings = kiosk_sim::KioskSettings::load(settings_file).map_err(|e| e.to_string())?;
        let controller = kiosk_sim::control::Controller::new(settings, state_dir.to_owned())
            .map_err(|e| e.to_string())?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let server =
            kiosk_sim::control::server::start(controller, listener).map_err(|e| e.to_string())?;
        let handle = server.server.handle();
        tokio::spawn(server.server);
        Ok(LaunchedKiosk {
            control_url: format!(
                "http://{}{}",
                server.local_addr,
                schemas::kiosk_control::CONTROL_BASE_PATH
            ),
            handle: Some(handle),
        })
    }
}

fn reference() -> KioskTargetSpec {
    KioskTargetSpec::Reference(Arc::new(InProcessKiosk))
}

fn read_report(dir: &Path) -> ConformanceReport {
    let json = std::fs::read(dir.join("report.json")).expect("report.json");
    let report: ConformanceReport = serde_json::from_slice(&json).expect("a ConformanceReport");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit.xml");
    assert_eq!(
        junit.matches("<testcase ").count(),
        report.scenarios.len(),
        "one testcase per scenario"
    );
    assert!(std::fs::read_to_string(dir.join("summary.txt"))
        .expect("summary.txt")
        .contains("profile kiosk"));
    report
}

fn failed_scenarios(report: &ConformanceReport) -> BTreeSet<String> {
    report
        .scenarios
        .iter()
        .filter(|s| s.outcome == Outcome::Failed)
        .map(|s| s.id.clone())
        .collect()
}

fn failed_clauses(report: &ConformanceReport) -> BTreeSet<String> {
    report
        .scenarios
        .iter()
        .flat_map(|s| &s.assertions)
        .filter(|a| a.outcome == Outcome::Failed)
        .map(|a| a.clause.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clean_reference_kiosk_passes_every_scenario() {
    let dir = TempDir::new("clean");
    let report = run_kiosk(reference(), None, &dir.0).await.expect("run");
    assert_eq!(
        failed_clauses(&report),
        BTreeSet::new(),
        "{:#?}",
        report
            .scenarios
            .iter()
            .flat_map(|s| &s.assertions)
            .filter(|a| a.outcome == Outcome::Failed)
            .collect::<Vec<_>>()
    );
    assert!(report.passed);
    assert_eq!(conformance::exit_status(&report), conformance::EXIT_PASSED);
    assert_eq!(report.profile, Profile::Kiosk);
    assert_eq!(report.fault, None);
    assert!(report
        .target_software
        .as_deref()
        .is_some_and(|s| s.starts_with("kiosk-sim ")));
    let ids: Vec<&str> = report.scenarios.iter().map(|s| s.id.as_str()).collect();
    let expected: Vec<&str> = conformance::kiosk::SCENARIOS
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(ids, expected);
    // Every clause of the profile is exercised by at least one passed assertion,
    // except K-RUN-1 (asserted only when a step goes wrong).
    let exercised: BTreeSet<&str> = report
        .scenarios
        .iter()
        .flat_map(|s| &s.assertions)
        .map(|a| a.clause.as_str())
        .collect();
    for clause in conformance::clauses::KIOSK {
        if clause.id != "K-RUN-1" {
            assert!(
                exercised.contains(clause.id),
                "{} never asserted",
                clause.id
            );
        }
    }
    let written = read_report(&dir.0);
    assert!(written.passed);
    assert_eq!(written.scenarios.len(), report.scenarios.len());
}

/// Negative controls: fault switch → the scenarios (and clauses) that must fail, and
/// only those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kiosk_fault_fails_exactly_its_scenarios() {
    let table: [(&str, &[&str], &[&str]); 3] = [
        (
            "skip_void_on_print_failure",
            &["kiosk.printer_jam"],
            &["K-JAM-1", "K-JAM-2"],
        ),
        (
            // The fault prints the previous session's document: only scenarios with
            // consecutive prints on one kiosk can see it (each scenario has a fresh
            // kiosk; own-document prints three times in a row, every-type eight), and
            // the one where the center's answer carries another request's document.
            "skip_document_check",
            &[
                "kiosk.every_type",
                "kiosk.own_document",
                "kiosk.foreign_document",
            ],
            &["K-DOC-1", "K-DOC-2", "K-DOC-3"],
        ),
        (
            // The timed-out request goes on and its answer is printed for the next
            // resident; a single held answer followed by a prompt one (the retry
            // scenario) does not trigger it.
            "release_lock_on_timeout",
            &["kiosk.late_answer_after_void"],
            &["K-LATE-1"],
        ),
    ];
    for (fault, scenarios, clauses) in table {
        let dir = TempDir::new(fault);
        let report = run_kiosk(reference(), Some(fault), &dir.0)
            .await
            .expect("run");
        assert!(!report.passed, "{fault}");
        assert_eq!(conformance::exit_status(&report), conformance::EXIT_FAILED);
        assert_eq!(report.fault.as_deref(), Some(fault));
        let expected: BTreeSet<String> = scenarios.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(failed_scenarios(&report), expected, "{fault}");
        let expected: BTreeSet<String> = clauses.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(failed_clauses(&report), expected, "{fault}");
        assert!(report
            .scenarios
            .iter()
            .flat_map(|s| &s.assertions)
            .filter(|a| a.outcome == Outcome::Failed)
            .all(|a| a.severity == Severity::Fail));
        let written = read_report(&dir.0);
        assert!(!written.passed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_faults_and_url_targets_do_not_run() {
    let dir = TempDir::new("refused");
    let unknown = run_kiosk(reference(), Some("skip_everything"), &dir.0).await;
    assert!(
        matches!(unknown, Err(RunError::UnknownFault(ref name, _)) if name == "skip_everything"),
        "{unknown:?}"
    );
    let url = |control_url: &str, setup: &str| {
        KioskTargetSpec::Url(UrlKiosk {
            control_url: control_url.to_owned(),
            setup_dir: dir.0.join(setup),
            center_listen: "127.0.0.1:0".parse().expect("address"),
            kiosk_timeout_ms: 15_000,
            wait_for_kiosk: Duration::from_secs(2),
        })
    };
    let fault_on_url = run_kiosk(
        url("http://127.0.0.1:9/control/v1", "a"),
        Some("skip_document_check"),
        &dir.0,
    )
    .await;
    assert!(
        matches!(fault_on_url, Err(RunError::Setup(SetupError::FaultOnUrl))),
        "{fault_on_url:?}"
    );
    let bad = run_kiosk(url("ftp://127.0.0.1:9/", "b"), None, &dir.0).await;
    assert!(
        matches!(bad, Err(RunError::KioskSetup(KioskSetupError::BadUrl(_)))),
        "{bad:?}"
    );
    // Nobody answers on the control URL: the set-up is written, the run gives up.
    let silent = run_kiosk(url("http://127.0.0.1:9/control/v1", "c"), None, &dir.0).await;
    match silent {
        Err(RunError::KioskSetup(error @ KioskSetupError::KioskNotAnswering { .. })) => {
            assert!(error.to_string().contains("did not answer"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    let settings = std::fs::read_to_string(
        dir.0
            .join("c")
            .join("sandbox")
            .join(conformance::kiosk::URL_SETUP_SETTINGS),
    )
    .expect("the kiosk's set-up is written");
    assert!(
        settings.contains("center_url = \"https://127.0.0.1:"),
        "{settings}"
    );
    assert!(
        !dir.0.join("report.json").exists(),
        "no report when not run"
    );
}
