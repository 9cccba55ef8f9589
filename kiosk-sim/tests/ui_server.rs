//! `kiosk-sim ui` against a running center (`--config KIOSK.toml --cards DIR`), without
//! a browser: the page, its assets and the card picker are served, a picked card goes
//! into the kiosk's reader, and the control interface answers under the same origin.
//! The browser tests (`ui_browser.rs`) drive the screens with `--local`.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sandbox::StartOptions;
use schemas::kiosk_control::{ControlState, Screen};

/// A weekday morning, within every type's hours.
const BUSINESS_MORNING: &str = "2026-11-25T10:00:00+09:00";
const FULL_CARD: &str = "2121130000000001";

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_touch_screen_serves_a_running_centers_kiosk() {
    let tmp = TempDir(
        std::env::temp_dir().join(format!("kiosk-ui-server-{}", uuid::Uuid::new_v4().simple())),
    );
    let dir = tmp.0.join("sandbox");
    sandbox::init(&dir).expect("sandbox init");
    let clock = Arc::new(sandbox::OffsetClock::default());
    clock.set_now(BUSINESS_MORNING.parse().expect("instant"));
    let running = sandbox::start(
        &dir,
        StartOptions {
            center_database_url: None,
            center_clock: Some(clock),
        },
    )
    .await
    .expect("sandbox start");
    let (_, config) = running
        .layout
        .kiosk_configs
        .iter()
        .find(|(operator, _)| operator == "seven")
        .expect("kiosk settings for seven")
        .clone();

    let mut child = Command::new(env!("CARGO_BIN_EXE_kiosk-sim"))
        .arg("ui")
        .arg("--config")
        .arg(&config)
        .arg("--cards")
        .arg(dir.join("cards"))
        .args(["--port", "0", "--state-dir"])
        .arg(tmp.0.join("kiosk-state"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("kiosk-sim ui");
    let stdout = child.stdout.take().expect("stdout");
    let ui = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("kiosk touch screen: ") {
                let _ = tx.send(url.trim().trim_end_matches('/').to_owned());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("kiosk-sim ui prints its URL");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");

    // The page and its assets, from the binary itself.
    let page = http.get(format!("{base}/")).send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert!(page
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html")));
    let html = page.text().await.expect("html");
    assert!(html.contains("data-screen=\"start\""), "{html:.200}");
    for asset in ["/ui/app.js", "/ui/style.css", "/ui/font.ttf"] {
        let answer = http
            .get(format!("{base}{asset}"))
            .send()
            .await
            .expect(asset);
        assert_eq!(answer.status(), 200, "{asset}");
        assert!(!answer.bytes().await.expect(asset).is_empty(), "{asset}");
    }

    // The card picker lists the cards of --cards by label only: no PIN, no key.
    let cards = http
        .get(format!("{base}/ui/v1/cards"))
        .send()
        .await
        .expect("cards");
    assert_eq!(cards.status(), 200);
    let text = cards.text().await.expect("cards body");
    let listing: serde_json::Value = serde_json::from_str(&text).expect("json");
    let ids: Vec<&str> = listing["cards"]
        .as_array()
        .expect("cards array")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(ids.contains(&FULL_CARD), "{ids:?}");
    assert!(
        !text.contains("pin") && !text.contains("key_seed"),
        "the listing must not carry card secrets: {text:.300}"
    );

    // A picked card goes into the kiosk's reader; an unknown one is 404.
    let unknown = http
        .post(format!("{base}/ui/v1/cards/0000000000000000/place"))
        .send()
        .await
        .expect("unknown card");
    assert_eq!(unknown.status(), 404);
    let placed: ControlState = http
        .post(format!("{base}/ui/v1/cards/{FULL_CARD}/place"))
        .send()
        .await
        .expect("place")
        .json()
        .await
        .expect("state");
    assert_eq!(placed.screen, Screen::CardPlaced);
    assert!(placed.card_in_reader);
    let state: ControlState = http
        .get(format!("{base}/control/v1/state"))
        .send()
        .await
        .expect("state")
        .json()
        .await
        .expect("state");
    assert_eq!(state, placed, "the control interface shares the origin");

    drop(ui);
    running.stop().await;
}
