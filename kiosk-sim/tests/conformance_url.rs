//! The kiosk profile against a kiosk at a URL, as a chain operator runs it: one
//! process runs `kiosk-sim conformance --profile kiosk --target URL`, which writes the
//! kiosk's set-up and waits; a second process, the kiosk (`kiosk-sim control serve`),
//! is started from that set-up; the suite drives it over its control URL and passes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use schemas::conformance::ConformanceReport;

mod common;
use common::{KillOnDrop, TempDir};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_for_file(path: &Path, bound: Duration) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < bound,
            "{} not written within {bound:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_operators_kiosk_at_a_url_passes_the_kiosk_profile() {
    let tmp = TempDir::new("url-conformance");
    let report_dir = tmp.0.join("report");
    let setup_dir = tmp.0.join("setup");
    let control_port = free_port();
    let center_port = free_port();
    let control_url = format!("http://127.0.0.1:{control_port}/control/v1");
    let suite = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_kiosk-sim"))
            .args([
                "conformance",
                "--profile",
                "kiosk",
                "--target",
                &control_url,
            ])
            .arg("--report")
            .arg(&report_dir)
            .arg("--setup-dir")
            .arg(&setup_dir)
            .args(["--center-listen", &format!("127.0.0.1:{center_port}")])
            // The kiosk below keeps the set-up's timeout; the suite must know it.
            .args(["--kiosk-timeout-ms", "15000", "--wait-for-kiosk-s", "120"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("kiosk-sim conformance"),
    );
    let settings = setup_dir
        .join("sandbox")
        .join(conformance::kiosk::URL_SETUP_SETTINGS);
    wait_for_file(&settings, Duration::from_secs(120));
    // Written whole before the suite starts waiting; give the write a moment to end.
    std::thread::sleep(Duration::from_millis(200));
    let text = std::fs::read_to_string(&settings).expect("set-up");
    assert!(
        text.contains(&format!("center_url = \"https://127.0.0.1:{center_port}\"")),
        "{text}"
    );
    let _kiosk = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_kiosk-sim"))
            .args(["control", "serve", "--config"])
            .arg(&settings)
            .args([
                "--listen",
                &format!("127.0.0.1:{control_port}"),
                "--state-dir",
            ])
            .arg(tmp.0.join("kiosk-state"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("kiosk-sim control serve"),
    );
    let mut suite = suite;
    let mut stdout = String::new();
    if let Some(mut pipe) = suite.0.stdout.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stdout).expect("suite output");
    }
    let status = suite.0.wait().expect("suite exit");
    let json = std::fs::read(report_dir.join("report.json")).expect("report.json");
    let report: ConformanceReport = serde_json::from_slice(&json).expect("report");
    let failed: Vec<_> = report
        .scenarios
        .iter()
        .flat_map(|s| &s.assertions)
        .filter(|a| a.outcome == schemas::conformance::Outcome::Failed)
        .collect();
    assert!(failed.is_empty(), "{failed:#?}\n{stdout}");
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(report.passed);
    assert_eq!(report.target, control_url);
    assert!(report
        .target_software
        .as_deref()
        .is_some_and(|s| s.starts_with("kiosk-sim ")));
    assert_eq!(
        report.scenarios.len(),
        conformance::kiosk::SCENARIOS.len(),
        "every scenario ran on the one kiosk"
    );
    assert!(stdout.contains("PASSED"), "{stdout}");
}
