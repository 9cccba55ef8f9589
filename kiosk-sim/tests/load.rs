//! `kiosk-sim load` through the binary: a small `--local` run with every count, phase
//! and record checked, fail-over from a dead center URL to a live one, and the set-up
//! errors' exit status.

mod common;

use std::process::{Command, Output};

use common::TempDir;
use serde_json::Value;

fn load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiosk-sim"))
        .arg("load")
        .args(args)
        .output()
        .expect("running kiosk-sim load")
}

/// `kiosk-sim load` from an async test whose runtime also serves the center.
async fn load_from_async<const N: usize>(args: [&str; N]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        load(&args)
    })
    .await
    .expect("the load run")
}

fn summary(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kiosk-sim load failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "--json prints exactly one object: {stdout}");
    serde_json::from_str(lines[0]).expect("the summary is JSON")
}

fn count(summary: &Value, key: &str) -> u64 {
    summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {summary}"))
}

fn records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("records file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a record is JSON"))
        .collect()
}

/// An open weekday at 10:00 Asia/Tokyo, at least a day ahead (the center's clock is
/// set there; the generator reads the offset from the center's menu).
fn business_morning_ahead() -> String {
    let mut date = jiff::Zoned::now()
        .in_tz("Asia/Tokyo")
        .unwrap()
        .date()
        .tomorrow()
        .unwrap();
    loop {
        use jiff::civil::Weekday::{Saturday, Sunday};
        let md = (date.month(), date.day());
        let closed = md >= (12, 29) || md <= (1, 3);
        let holiday = sandbox::MINOKAMO_CLOSED_DATES.contains(&date.to_string().as_str());
        if !matches!(date.weekday(), Saturday | Sunday) && !closed && !holiday {
            return format!("{date}T10:00:00+09:00");
        }
        date = date.tomorrow().unwrap();
    }
}

#[test]
fn a_local_run_issues_and_checks_every_request() {
    let dir = TempDir::new("load-local");
    let records_path = dir.path().join("records.jsonl");
    let output = load(&[
        "--local",
        "--kiosks",
        "4",
        "--requests",
        "20",
        "--json",
        "--seed",
        "3",
        "--records",
        records_path.to_str().unwrap(),
    ]);
    let summary = summary(&output);
    assert_eq!(count(&summary, "requests"), 20);
    assert_eq!(count(&summary, "issued"), 20, "{summary}");
    assert_eq!(count(&summary, "refused"), 0);
    assert_eq!(count(&summary, "errors"), 0);
    assert_eq!(count(&summary, "misissued"), 0);
    assert_eq!(count(&summary, "checked_pdfs"), 20);
    assert_eq!(count(&summary, "kiosks"), 4);
    assert_eq!(count(&summary, "failovers"), 0);
    assert!(summary["throughput_per_s"].as_f64().unwrap() > 0.0);
    let p50 = summary["p50_ms"].as_f64().unwrap();
    let p99 = summary["p99_ms"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= p99, "{summary}");
    let end_to_end = &summary["phases"]["end_to_end"];
    assert_eq!(end_to_end["count"].as_u64(), Some(20));
    assert_eq!(end_to_end["p99_ms"].as_f64(), Some(p99));
    // The center's phases: present with every issuance when it sends Server-Timing,
    // null when it does not (never a made-up number).
    for phase in ["card_check", "municipality", "composition"] {
        let value = &summary["phases"][phase];
        assert!(
            value.is_null() || value["count"].as_u64() == Some(20),
            "{phase}: {value}"
        );
    }
    assert!(summary["refusal_reasons"].as_object().unwrap().is_empty());
    assert!(summary["error_kinds"].as_object().unwrap().is_empty());
    assert_eq!(summary["centers"].as_array().unwrap().len(), 1);

    let records = records(&records_path);
    assert_eq!(records.len(), 20);
    let mut keys = std::collections::BTreeSet::new();
    let mut kiosks = std::collections::BTreeSet::new();
    let mut types = std::collections::BTreeSet::new();
    for record in &records {
        assert_eq!(record["outcome"], "issued", "{record}");
        assert!(record["request_id"].is_string(), "{record}");
        assert!(keys.insert(record["idempotency_key"].as_str().unwrap().to_owned()));
        kiosks.insert(record["kiosk_id"].as_str().unwrap().to_owned());
        types.insert(record["certificate_type"].as_str().unwrap().to_owned());
        assert!(record["card_serial"].as_str().unwrap().len() == 16);
        assert!(record["municipality"].as_str().unwrap().len() == 6);
        assert_eq!(record["center_url"], summary["centers"][0]);
        assert_eq!(record["failovers"], 0);
        assert!(record["latency_ms"].as_f64().unwrap() > 0.0);
        assert!(record["misissue"].is_null());
    }
    assert_eq!(kiosks.len(), 4, "every kiosk worked: {kiosks:?}");
    // Both operators' kiosks (seven-0001, lawson-0001, seven-0002, lawson-0002).
    assert!(kiosks.contains("seven-0001") && kiosks.contains("lawson-0002"));
    assert!(types.len() >= 2, "mixed certificate types: {types:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosks_fail_over_from_a_dead_center_to_a_live_one() {
    let dir = TempDir::new("load-failover");
    let sandbox_dir = dir.path().join("sandbox");
    let running = common::start_sandbox_at(&sandbox_dir, &business_morning_ahead()).await;
    // A port nothing listens on: bound, then released.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("https://127.0.0.1:{dead_port}");
    let live = running.center_url.clone();
    let records_path = dir.path().join("records.jsonl");
    let output = load_from_async([
        "--center",
        &dead,
        "--center",
        &live,
        "--dir",
        sandbox_dir.to_str().unwrap(),
        "--kiosks",
        "2",
        "--requests",
        "6",
        "--json",
        "--records",
        records_path.to_str().unwrap(),
    ])
    .await;
    let misissue_checks = catches_a_document_of_another_resident(&running, dir.path()).await;
    running.stop().await;
    misissue_checks.unwrap();
    let summary = summary(&output);
    assert_eq!(count(&summary, "requests"), 6);
    assert_eq!(count(&summary, "issued"), 6, "{summary}");
    assert_eq!(count(&summary, "misissued"), 0);
    assert!(count(&summary, "failovers") > 0, "{summary}");
    for record in records(&records_path) {
        assert_eq!(
            record["center_url"].as_str(),
            Some(live.as_str()),
            "{record}"
        );
    }
}

/// A center that has run for a while signed its trust list long before now (it is
/// re-signed every half validity), so the generator must not take the list's issue
/// time for the center's clock: its seals would look issued in the future, and every
/// document would count as misissued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_center_running_for_a_while_is_checked_by_its_own_clock() {
    let dir = TempDir::new("load-clock");
    let sandbox_dir = dir.path().join("sandbox");
    sandbox::init(&sandbox_dir).expect("sandbox init");
    let started: jiff::Timestamp = business_morning_ahead().parse().expect("instant");
    let clock = std::sync::Arc::new(sandbox::OffsetClock::default());
    clock.set_now(started);
    let running = sandbox::start(
        &sandbox_dir,
        sandbox::StartOptions {
            center_database_url: None,
            center_clock: Some(clock.clone()),
        },
    )
    .await
    .expect("sandbox start");
    // Half an hour of uptime: far beyond the verifier's clock skew (300 s), far within
    // the list's re-signing age (half a day).
    clock.set_now(started + jiff::SignedDuration::from_mins(30));
    let output = load_from_async([
        "--center",
        &running.center_url,
        "--dir",
        sandbox_dir.to_str().unwrap(),
        "--kiosks",
        "2",
        "--requests",
        "4",
        "--json",
    ])
    .await;
    running.stop().await;
    let summary = summary(&output);
    assert_eq!(count(&summary, "issued"), 4, "{summary}");
    assert_eq!(count(&summary, "misissued"), 0, "{summary}");
}

/// The generator's document check (`kiosk_sim::load_check::check_printed`) on a real
/// certificate: it passes for the resident who asked, and fails when the same document
/// is judged as another resident's or another request's.
async fn catches_a_document_of_another_resident(
    running: &sandbox::RunningSandbox,
    scratch: &std::path::Path,
) -> Result<(), String> {
    use kiosk_sim::load_check::{check_printed, Expected};
    let card = running
        .layout
        .card("2121130000000001")
        .ok_or("no card 0001")?
        .clone();
    let pin = serde_json::from_str::<schemas::CardFile>(
        &std::fs::read_to_string(&card.path).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?
    .pin;
    let settings = kiosk_sim::KioskSettings::load(&common::kiosk_config(running, "seven"))
        .map_err(|e| e.to_string())?;
    let mut kiosk = kiosk_sim::Kiosk::from_settings(&settings).map_err(|e| e.to_string())?;
    let order = schemas::CertificateOrder {
        route: schemas::Route::Residence,
        certificate: schemas::CertificateKind::ResidentRecord {
            scope: schemas::HouseholdScope::SelfOnly,
            include_domicile: false,
            include_relationship: false,
        },
        copies: 1,
    };
    let out = scratch.join("out");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let kiosk_sim::IssueOutcome::Printed(document) = kiosk
        .issue(&card.path, &pin, order, &out)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Err("card 0001's 住民票 was not printed".into());
    };
    let pdf = std::fs::read(&document.pdf_path).map_err(|e| e.to_string())?;
    let trust_list = kiosk_sim::CenterClient::new(&settings)
        .map_err(|e| e.to_string())?
        .trust_list()
        .await
        .map_err(|e| e.to_string())?;
    let seed = std::fs::read_to_string(running.layout.dir.join("keys").join("center.seed"))
        .map_err(|e| e.to_string())?;
    let center_key = schemas::KeyPair::from_seed_base64(seed.trim())
        .map_err(|e| e.to_string())?
        .public();
    let now_s = running.clock.now_unix_ms() / 1000;
    let check = |name: &str, request_id| {
        check_printed(
            &pdf,
            &Expected {
                request_id,
                sha256: document.sha256,
                page_count: document.page_count,
                resident_name: name,
            },
            &trust_list,
            &center_key,
            now_s,
        )
    };
    check(&card.holder_name, document.request_id)
        .map_err(|e| format!("the right resident's document was refused: {e}"))?;
    match check("髙橋 由美子", document.request_id) {
        Err(detail) if detail.contains("another resident") => {}
        other => return Err(format!("another resident's document passed: {other:?}")),
    }
    if check(&card.holder_name, schemas::RequestId::new_random()).is_ok() {
        return Err("another request's document passed".into());
    }
    Ok(())
}

#[test]
fn set_up_errors_exit_1() {
    // Over the bound of kiosks.
    let output = load(&["--local", "--kiosks", "129", "--requests", "1", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--kiosks"));
    // --center without a sandbox directory.
    let output = load(&[
        "--center",
        "https://127.0.0.1:1",
        "--kiosks",
        "1",
        "--requests",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(1));
    // Nothing reachable at the start.
    let dir = TempDir::new("load-unreachable");
    let sandbox_dir = dir.path().join("sandbox");
    sandbox::init(&sandbox_dir).unwrap();
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = load(&[
        "--center",
        &format!("https://127.0.0.1:{dead_port}"),
        "--dir",
        sandbox_dir.to_str().unwrap(),
        "--kiosks",
        "1",
        "--requests",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("no center reachable"));
}
