//! One request id through three processes: the center, a municipality's adapter and
//! `kiosk-sim issue` run as separate binaries with `RUST_LOG=info`, and the id the
//! center issued shows up in each one's log. Then the center's `adapter_errors`
//! alert, end to end: a slow adapter makes five fetches time out and the center's log
//! carries one alert naming the municipality and the failing request ids.

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::procs::{self, ChildProcess};
use e2e::TempDir;
use kiosk_sim::{Kiosk, KioskSettings};
use sandbox::{CardInfo, CardKind, Layout};
use schemas::{CertificateKind, CertificateOrder, HouseholdScope, KioskId, Route};

const KIOSK_ID: &str = "seven-0021";

struct Parties {
    layout: Layout,
    card: CardInfo,
    kiosk_config: PathBuf,
    center: ChildProcess,
    _adapter: ChildProcess,
    center_log: PathBuf,
    adapter_log: PathBuf,
}

/// Initialises a sandbox in `dir` (then `tweak` edits its files), starts the adapter
/// serving a printable card's municipality and the center, both logging at info.
async fn start(dir: &Path, tweak: impl FnOnce(&Layout)) -> Parties {
    let [center_bin, adapter_bin] = tokio::task::block_in_place(|| {
        [procs::binary("center"), procs::binary("municipal-adapter")]
    });
    let layout = sandbox::init(&dir.join("sandbox")).expect("sandbox init");
    tweak(&layout);
    let card = layout
        .cards
        .iter()
        .find(|c| {
            c.kind == CardKind::Resident
                && municipal_adapter::samples::issuable_cards(&c.municipality.to_string())
                    .contains(&c.serial)
        })
        .cloned()
        .expect("a printable resident card");
    let (adapter_config, adapter_port) = adapter_serving(&layout, &card.municipality.to_string());
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let adapter_log = logs.join("adapter.log");
    let mut adapter = ChildProcess::spawn(
        "adapter",
        &adapter_bin,
        &["serve", "--config", path_str(&adapter_config)],
        &[("RUST_LOG", "info")],
        &adapter_log,
    );
    procs::wait_for_port(adapter_port, &mut adapter, Duration::from_secs(30)).await;

    let settings =
        center::configuration::Settings::load(&layout.center_config).expect("center settings");
    // The adapters run on the real clock: the center must be ahead of it.
    let offset = procs::forward_business_morning_offset_ms().to_string();
    let center_log = logs.join("center.log");
    let mut center = ChildProcess::spawn(
        "center",
        &center_bin,
        &[
            "serve",
            "--config",
            path_str(&layout.center_config),
            "--clock-offset-ms",
            &offset,
        ],
        &[("RUST_LOG", "info")],
        &center_log,
    );
    procs::wait_for_port(
        settings.kiosk_listen.port(),
        &mut center,
        Duration::from_secs(60),
    )
    .await;

    let kiosk_config = dir.join("kiosk.toml");
    let kiosk = kiosk_settings(&layout, &dir.join("state"));
    std::fs::write(&kiosk_config, toml::to_string(&kiosk).expect("kiosk toml"))
        .expect("kiosk settings file");
    Parties {
        layout,
        card,
        kiosk_config,
        center,
        _adapter: adapter,
        center_log,
        adapter_log,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issued_request_id_is_in_the_log_of_every_process() {
    let kiosk_bin = tokio::task::block_in_place(|| procs::binary("kiosk-sim"));
    let tmp = TempDir::new("request-id-tracing");
    let parties = start(tmp.path(), |_| {}).await;
    let kiosk_log = tmp.path().join("logs").join("kiosk.log");
    let out = tmp.path().join("out");
    let pin = e2e::pin_of(&parties.card);
    let mut kiosk = ChildProcess::spawn(
        "kiosk-sim issue",
        &kiosk_bin,
        &[
            "issue",
            "--json",
            "--config",
            path_str(&parties.kiosk_config),
            "--card",
            path_str(&parties.card.path),
            "--pin",
            &pin,
            "--out",
            path_str(&out),
            "--type",
            "resident-record",
        ],
        &[("RUST_LOG", "info")],
        &kiosk_log,
    );
    let status = tokio::task::block_in_place(|| kiosk.wait_bounded(Duration::from_secs(60)));
    let kiosk_text = kiosk.log();
    assert_plain_text("kiosk-sim", &kiosk_text);
    assert!(
        status.success(),
        "kiosk-sim issue failed ({status}):\n{kiosk_text}"
    );
    let request_id = json_request_id(&kiosk_text).expect("the issue answer names a request id");

    // The kiosk logged the steps after the answer (payment, print report) under it.
    let kiosk_lines: Vec<&str> = kiosk_text
        .lines()
        .filter(|l| !l.starts_with('{') && l.contains(&request_id))
        .collect();
    assert!(
        kiosk_lines
            .iter()
            .any(|l| l.contains("report acknowledged")),
        "kiosk log has no report acknowledged under {request_id}:\n{kiosk_text}"
    );
    // Its print report reached the center before the kiosk exited; the center and the
    // adapter logged the fetch under the same id.
    let center_text = std::fs::read_to_string(&parties.center_log).expect("center log");
    assert_plain_text("center", &center_text);
    assert!(
        center_text
            .lines()
            .any(|l| l.contains(&request_id) && l.contains("prepared")),
        "center log lacks {request_id}:\n{center_text}"
    );
    let adapter_text = std::fs::read_to_string(&parties.adapter_log).expect("adapter log");
    assert_plain_text("adapter", &adapter_text);
    let municipality = parties.card.municipality.to_string();
    assert!(
        adapter_text
            .lines()
            .any(|l| l.contains(&format!("request_id={request_id}"))
                && l.contains(&municipality)
                && l.contains("/v1/certificates")),
        "adapter log lacks {request_id} with municipality {municipality}:\n{adapter_text}"
    );
    drop(parties.center);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_adapter_timeouts_raises_one_alert_naming_the_requests() {
    let tmp = TempDir::new("adapter-burst");
    let parties = start(tmp.path(), |layout| {
        e2e::set_center_timeouts(layout, &[("adapter_timeout_ms", 300)]);
        // Every certificate answer comes after the center stopped waiting.
        e2e::set_adapter_fault(layout, "none", 1_500);
    })
    .await;
    let settings = kiosk_settings(&parties.layout, &tmp.path().join("state-burst"));
    let out = tmp.path().join("out");
    let pin = e2e::pin_of(&parties.card);
    let mut failed_ids = Vec::new();
    for _ in 0..5 {
        let mut kiosk = Kiosk::from_settings(&settings).expect("kiosk");
        let order = CertificateOrder {
            route: Route::Residence,
            certificate: CertificateKind::ResidentRecord {
                scope: HouseholdScope::SelfOnly,
                include_domicile: false,
                include_relationship: false,
            },
            copies: 1,
        };
        let error = kiosk
            .issue(&parties.card.path, &pin, order, &out)
            .await
            .expect_err("the municipality times out");
        assert_eq!(
            e2e::center_code(&error),
            Some(schemas::ErrorCode::UpstreamTimeout),
            "{error}"
        );
        failed_ids.push(
            error
                .request_id()
                .expect("the failure names its request")
                .to_string(),
        );
    }
    let center_text = std::fs::read_to_string(&parties.center_log).expect("center log");
    let alerts: Vec<&str> = center_text
        .lines()
        .filter(|l| l.contains("alert") && l.contains("adapter_errors"))
        .collect();
    assert_eq!(alerts.len(), 1, "one alert for the burst:\n{center_text}");
    let alert = alerts[0];
    assert!(alert.contains("ERROR"), "{alert}");
    assert!(
        alert.contains(&parties.card.municipality.to_string()),
        "{alert}"
    );
    for id in &failed_ids {
        assert!(alert.contains(id.as_str()), "{id} missing in {alert}");
    }
}

/// A log written to a file (not a terminal) carries no colour codes.
fn assert_plain_text(party: &str, log: &str) {
    assert!(!log.is_empty(), "{party} wrote no log");
    assert!(
        !log.contains('\u{1b}'),
        "{party}'s log file has terminal escape codes:\n{log}"
    );
}

/// The `"request_id":"…"` of `kiosk-sim issue --json`'s answer line.
fn json_request_id(log: &str) -> Option<String> {
    log.lines().filter(|l| l.starts_with('{')).find_map(|line| {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        value
            .get("request_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    })
}

/// The settings file and port of the adapter serving `code`.
fn adapter_serving(layout: &Layout, code: &str) -> (PathBuf, u16) {
    for (_, path) in &layout.adapter_configs {
        let text = std::fs::read_to_string(path).expect("adapter settings");
        let config: toml::Table = text.parse().expect("adapter settings parse");
        let serves = config
            .get("municipalities")
            .and_then(|m| m.as_array())
            .is_some_and(|list| {
                list.iter().any(|m| {
                    m.as_str() == Some(code) || m.get("code").and_then(|c| c.as_str()) == Some(code)
                })
            });
        if serves {
            let listen = config
                .get("listen")
                .and_then(|v| v.as_str())
                .expect("listen");
            return (path.clone(), procs::port_of(listen));
        }
    }
    panic!("no adapter serves {code}")
}

fn kiosk_settings(layout: &Layout, state_dir: &Path) -> KioskSettings {
    let path = layout
        .kiosk_configs
        .iter()
        .find(|(operator, _)| operator == "seven")
        .map(|(_, p)| p)
        .expect("seven's kiosk settings");
    let mut settings = KioskSettings::load(path).expect("kiosk settings");
    settings.kiosk_id = KioskId::parse(KIOSK_ID).expect("kiosk id");
    settings.state_dir = Some(state_dir.to_path_buf());
    settings
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}
