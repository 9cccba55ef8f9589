//! The kiosk's touch screen in a real browser: `kiosk-sim ui --local` (the whole
//! sandbox in that process, on loopback) driven by headless Debian Chromium through
//! chromedriver (WebDriver), as a resident taps it.
//!
//! Every screen reached is checked for horizontal scrolling at 1024×768 and saved as
//! `target/ui-screenshots/<test>/<nn>-<screen>.png`.
//!
//! Needs `/usr/bin/chromium` and `chromedriver` (Debian's `chromium` and
//! `chromium-driver`; `scripts/test` installs them). Without them a test prints why
//! and returns, except with `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use schemas::kiosk_control::{ControlState, Screen};
use schemas::RefusalReason;
use serde_json::{json, Value};

mod common;
use common::wait_for_line;

const CHROMIUM: &str = "/usr/bin/chromium";
/// Eight members in one household (世帯全員 takes two front pages).
const BIG_HOUSEHOLD_CARD: &str = "2121130000000069";
/// Issues every type through the 住所地 route.
const FULL_CARD: &str = "2121130000000001";
/// Refused by the municipality (deceased).
const REFUSED_CARD: &str = "2121130000000091";
/// Longest wait for one screen (a step may talk to the center over mTLS).
const SCREEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for `kiosk-sim ui --local` to print its URL.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Idle timeout of the idle and reminder tests (short, but longer than any gap
/// between two of the test's own taps).
const SHORT_IDLE_TIMEOUT_S: u64 = 4;
/// Browsers and sandboxes running at once (the machine has two cores).
static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// chromedriver's path when it and Chromium are installed; otherwise `None` after
/// saying why (or a panic under `CI=true`: the browser tests must run there).
fn browser_tools() -> Option<PathBuf> {
    let driver = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromedriver"))
            .find(|path| path.is_file())
    });
    let missing = match (&driver, Path::new(CHROMIUM).is_file()) {
        (Some(_), true) => return driver,
        (None, true) => "chromedriver is not on PATH",
        (Some(_), false) => "no /usr/bin/chromium",
        (None, false) => "neither /usr/bin/chromium nor chromedriver is installed",
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{missing}: the browser tests need Debian's chromium and chromium-driver (scripts/test installs them)");
    }
    eprintln!("skipping the browser test: {missing} (apt-get install chromium chromium-driver)");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `target/` of this build (the test binary lives in `target/<profile>/deps/`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// `kiosk-sim ui --local` as its own process, on a free port.
struct UiProcess {
    child: Child,
    url: String,
    root: PathBuf,
    http: reqwest::Client,
}

impl UiProcess {
    fn start(label: &str, idle_timeout_s: u64) -> Self {
        let root = std::env::temp_dir().join(format!(
            "kiosk-ui-{label}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&root).expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kiosk-sim"))
            .arg("ui")
            .arg("--local")
            .arg("--dir")
            .arg(root.join("sandbox"))
            .args(["--port", "0"])
            .args(["--idle-timeout-s", &idle_timeout_s.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kiosk-sim ui");
        let stdout = child.stdout.take().expect("stdout");
        let Some(url) = wait_for_line(stdout, "kiosk touch screen: ", STARTUP_TIMEOUT) else {
            let _ = child.kill();
            panic!("kiosk-sim ui did not print its URL within {STARTUP_TIMEOUT:?}");
        };
        Self {
            child,
            url,
            root,
            http: reqwest::Client::new(),
        }
    }

    fn card(&self, serial: &str) -> Value {
        let path = self
            .root
            .join("sandbox")
            .join("cards")
            .join(format!("{serial}.json"));
        serde_json::from_str(&std::fs::read_to_string(path).expect("card file")).expect("card")
    }

    fn pin(&self, serial: &str) -> String {
        self.card(serial)["pin"].as_str().expect("pin").to_owned()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{}", self.url, path.trim_start_matches('/')))
            .send()
            .await
            .expect("GET")
    }

    async fn state(&self) -> ControlState {
        self.get("control/v1/state")
            .await
            .json()
            .await
            .expect("state")
    }
}

impl Drop for UiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// One chromedriver (its own process group, with the Chromium it starts) and one
/// browser session with a fresh profile; saves a screenshot of every screen reached.
struct Browser {
    driver: Child,
    client: Client,
    profile: PathBuf,
    shots: PathBuf,
    shot_count: u32,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and every Chromium process it started, even
        // when the test failed half-way.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Every visible text against its effective background (WCAG 2 contrast: 4.5:1, 3:1
/// for large text) and every enabled control's size (at least 44×44 CSS px): returns
/// `[low_contrast, small_targets]` as descriptions. Disabled controls are exempt, as
/// WCAG exempts inactive components.
const READABILITY_SCRIPT: &str = r#"
const parse = (s) => {
  const m = s.match(/rgba?\(([^)]+)\)/);
  if (!m) return null;
  const p = m[1].split(',').map((x) => parseFloat(x));
  return { rgb: p.slice(0, 3), a: p.length > 3 ? p[3] : 1 };
};
const luminance = (rgb) => {
  const [r, g, b] = rgb.map((v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const background = (el) => {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0) {
      layers.push(c);
      if (c.a >= 1) break;
    }
  }
  let rgb = [255, 255, 255];
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i];
    rgb = rgb.map((v, k) => l.rgb[k] * l.a + v * (1 - l.a));
  }
  return rgb;
};
const lowContrast = [];
const smallTargets = [];
for (const el of document.querySelectorAll('body *')) {
  const style = getComputedStyle(el);
  if (style.visibility === 'hidden' || (!el.offsetParent && style.position !== 'fixed')) continue;
  const box = el.getBoundingClientRect();
  if (box.width === 0 || box.height === 0) continue;
  const inactive = el.closest('[disabled],[aria-disabled="true"]');
  const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (ownText && !inactive) {
    const fg = parse(style.color);
    const bg = background(el);
    if (fg) {
      const rgb = fg.rgb.map((v, k) => v * fg.a + bg[k] * (1 - fg.a));
      const [hi, lo] = [luminance(rgb), luminance(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
      const need = large ? 3 : 4.5;
      if (ratio < need) {
        lowContrast.push(`${el.tagName} "${el.textContent.trim().slice(0, 24)}": ${ratio.toFixed(2)} < ${need}`);
      }
    }
  }
  if (el.matches('button, a[href], [role="button"], input, select') && !inactive) {
    if (box.width < 44 || box.height < 44) {
      smallTargets.push(`${el.tagName} "${el.textContent.trim().slice(0, 24)}": ${Math.round(box.width)}×${Math.round(box.height)}`);
    }
  }
}
return [lowContrast, smallTargets];
"#;

impl Browser {
    async fn open(test: &str, chromedriver: &Path) -> Self {
        use std::os::unix::process::CommandExt as _;
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn chromedriver");
        let profile = std::env::temp_dir().join(format!(
            "kiosk-ui-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1024,768".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => break client,
                // chromedriver is still starting.
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session from chromedriver: {e}"),
            }
        };
        let shots = target_dir().join("ui-screenshots").join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        let browser = Self {
            driver,
            client,
            profile,
            shots,
            shot_count: 0,
        };
        // The window's frame takes some height even headless: size the window so the
        // page itself (the viewport) is exactly 1024×768, the kiosk panel.
        browser
            .client
            .set_window_size(1024, 768)
            .await
            .expect("window size");
        let inner = browser.js("return window.innerHeight").await;
        let frame_px = 768u32.saturating_sub(
            inner
                .as_u64()
                .and_then(|h| u32::try_from(h).ok())
                .unwrap_or(768),
        );
        browser
            .client
            .set_window_size(1024, 768 + frame_px)
            .await
            .expect("window size");
        browser
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("script")
    }

    async fn current_screen(&self) -> String {
        self.js("return document.body.dataset.screen || ''")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits for one of `screens`; checks the layout and saves a screenshot.
    async fn wait_any(&mut self, screens: &[&str]) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.current_screen().await;
            if screens.contains(&screen.as_str()) {
                self.check_layout(&screen).await;
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {screens:?}, the screen is {screen:?} (message: {:?})",
                self.text("#message").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_screen(&mut self, screen: &str) {
        self.wait_any(&[screen]).await;
    }

    /// No horizontal scrolling at 1024×768, then the screenshot.
    async fn check_layout(&mut self, screen: &str) {
        let widths = self
            .js("return [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth, window.innerHeight]")
            .await;
        let widths: Vec<u64> = serde_json::from_value(widths).expect("widths");
        assert!(
            widths[0] <= widths[2] && widths[1] <= widths[2],
            "screen {screen} scrolls horizontally: scrollWidth {} / {} > innerWidth {}",
            widths[0],
            widths[1],
            widths[2]
        );
        assert_eq!(
            (widths[2], widths[3]),
            (1024, 768),
            "the page is the 1024×768 panel"
        );
        let findings = self.js(READABILITY_SCRIPT).await;
        let (low_contrast, small_targets): (Vec<String>, Vec<String>) =
            serde_json::from_value(findings).expect("readability findings");
        assert!(
            low_contrast.is_empty(),
            "screen {screen}: text below the WCAG AA contrast ratio: {low_contrast:#?}"
        );
        assert!(
            small_targets.is_empty(),
            "screen {screen}: touch targets smaller than 44×44 px: {small_targets:#?}"
        );
        self.shot_count += 1;
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self
            .shots
            .join(format!("{:02}-{screen}.png", self.shot_count));
        std::fs::write(&path, png).expect("write screenshot");
    }

    fn in_screen(screen: &str, testid: &str) -> String {
        format!(r#"section[data-screen="{screen}"] [data-testid="{testid}"]"#)
    }

    async fn tap(&self, screen: &str, testid: &str) {
        let css = Self::in_screen(screen, testid);
        let element = self
            .client
            .find(Locator::Css(&css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("tap {css}: {e}"));
    }

    async fn exists(&self, screen: &str, testid: &str) -> bool {
        let css = Self::in_screen(screen, testid);
        self.client.find(Locator::Css(&css)).await.is_ok()
    }

    async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.attr(name).await.ok().flatten()
    }

    /// Keys typed into whatever has the focus (WebDriver key codes for Enter etc.).
    async fn keys(&self, text: &str) {
        let element = self.client.active_element().await.expect("focused element");
        element.send_keys(text).await.expect("keys");
    }

    async fn toggle_language(&self) {
        self.client
            .find(Locator::Css(r#"[data-testid="lang-toggle"]"#))
            .await
            .expect("language toggle")
            .click()
            .await
            .expect("toggle");
    }

    async fn home(&mut self, ui: &UiProcess) {
        self.client
            .goto(&ui.url)
            .await
            .expect("open the touch screen");
        self.wait_screen("start").await;
    }

    /// 行政サービス → the card → 住所地 → the PIN pad.
    async fn go_to_pin_pad(&mut self, ui: &UiProcess, card: &str) {
        self.home(ui).await;
        self.tap("start", "start-service").await;
        self.wait_screen("card").await;
        self.tap("card", &format!("card-{card}")).await;
        self.wait_screen("route").await;
        self.tap("route", "route-residence").await;
        self.wait_screen("pin").await;
    }

    async fn tap_pin(&self, pin: &str) {
        for digit in pin.chars() {
            self.tap("pin", &format!("pin-{digit}")).await;
        }
        self.tap("pin", "pin-ok").await;
    }

    /// After a right PIN: the card comes back at once when the kiosk opened a card
    /// session (taken here), then the menu.
    async fn reach_menu_after_pin(&mut self) {
        if self.wait_any(&["card_return", "menu"]).await == "card_return" {
            self.tap("card_return", "take-card").await;
            self.wait_screen("menu").await;
        }
    }

    /// From the fee screen, through printing, to 取り忘れ; returns the reminder screen.
    async fn pay_and_print(&mut self, ui: &UiProcess, coins: bool) -> String {
        self.tap("confirm_fee", "to-payment").await;
        self.wait_screen("payment").await;
        if coins {
            let fee = ui.state().await.fee_yen.expect("fee");
            let mut inserted = 0;
            while inserted < fee {
                self.tap("payment", "coin-1000").await;
                inserted += 1000;
            }
        } else {
            self.tap("payment", "emoney").await;
        }
        self.wait_any(&["printing", "take_card", "take_certificate"])
            .await;
        self.wait_any(&["take_card", "take_certificate"]).await
    }

    /// 取り忘れ: the card (if still in), then the certificate, then the end screen.
    async fn take_everything(&mut self, first: &str) {
        if first == "take_card" {
            self.tap("take_card", "take-card").await;
            self.wait_screen("take_certificate").await;
        }
        self.tap("take_certificate", "take-certificate").await;
        self.wait_screen("done").await;
    }

    /// The PDF behind the done screen's link.
    async fn printed_pdf(&self, ui: &UiProcess) -> Vec<u8> {
        let href = self
            .attr(r#"[data-testid="open-pdf"]"#, "href")
            .await
            .expect("PDF link");
        let path = href
            .split_once("/control/v1/")
            .map(|(_, rest)| format!("control/v1/{rest}"))
            .expect("link into the control interface");
        let response = ui.get(&path).await;
        assert_eq!(response.status(), 200, "{href}");
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/pdf")
        );
        response.bytes().await.expect("PDF").to_vec()
    }
}

/// A wrong PIN for `pin` (same length, another number).
fn wrong_pin(pin: &str) -> String {
    let n: u32 = pin.parse().expect("digits");
    format!("{:04}", (n + 1) % 10_000)
}

#[tokio::test]
async fn happy_path_resident_record_paid_in_coins() {
    let Some(driver) = browser_tools() else {
        return;
    };
    let _slot = SLOTS.acquire().await.expect("slot");
    let ui = UiProcess::start("resident-record", 60);
    let mut b = Browser::open("happy_path_resident_record", &driver).await;
    b.go_to_pin_pad(&ui, FULL_CARD).await;
    b.tap_pin(&ui.pin(FULL_CARD)).await;
    b.reach_menu_after_pin().await;
    assert_eq!(
        b.text(r#"[data-testid="menu-municipality"]"#).await,
        "美濃加茂市"
    );
    // Fees are shown on the menu.
    let item = b
        .text(&Browser::in_screen("menu", "cert-resident_record"))
        .await;
    assert!(
        item.contains("住民票の写し") && item.contains("円"),
        "{item}"
    );
    b.tap("menu", "cert-resident_record").await;
    b.wait_screen("options").await;
    b.tap("options", "opt-scope-household").await;
    if b.exists("options", "opt-include_relationship-yes").await {
        b.tap("options", "opt-include_relationship-yes").await;
    }
    b.tap("options", "next").await;
    b.wait_screen("copies").await;
    b.tap("copies", "copies-plus").await;
    assert_eq!(b.text(r#"[data-testid="copies-count"]"#).await, "2通");
    b.tap("copies", "next").await;
    b.wait_screen("confirm_fee").await;
    let fee = ui.state().await.fee_yen.expect("fee");
    let shown = b.text(r#"[data-testid="fee"]"#).await;
    assert!(
        shown.contains(&format!("{fee}円")),
        "fee {fee} not in {shown:?}"
    );

    let first = b.pay_and_print(&ui, true).await;
    let change = fee.div_ceil(1000) * 1000 - fee;
    if change > 0 {
        let shown = b.text(&Browser::in_screen(&first, "change")).await;
        assert!(
            shown.contains(&format!("{change}円")),
            "change {change} not in {shown:?}"
        );
    }
    b.take_everything(&first).await;
    let pdf = b.printed_pdf(&ui).await;
    assert!(pdf.starts_with(b"%PDF"), "a PDF");
    let state = ui.state().await;
    assert_eq!(state.screen, Screen::Idle);
    assert!(!state.card_in_reader && !state.certificate_in_tray);
    assert_eq!(state.printed.len(), 1);
    assert_eq!(state.printed[0].copies, 2);
    b.tap("done", "finish").await;
    b.wait_screen("start").await;
    b.close().await;
}

/// 世帯一部: the resident picks members by their order in the household; the printed
/// 住民票 has their rows only (two of an eight-member household fit one front page,
/// the whole household takes two).
#[tokio::test]
async fn household_members_are_chosen_by_their_order() {
    let Some(driver) = browser_tools() else {
        return;
    };
    let _slot = SLOTS.acquire().await.expect("slot");
    let ui = UiProcess::start("members", 60);
    let mut b = Browser::open("household_members", &driver).await;
    b.go_to_pin_pad(&ui, BIG_HOUSEHOLD_CARD).await;
    b.tap_pin(&ui.pin(BIG_HOUSEHOLD_CARD)).await;
    b.reach_menu_after_pin().await;
    b.tap("menu", "cert-resident_record").await;
    b.wait_screen("options").await;
    b.tap("options", "opt-scope-selected").await;
    b.wait_screen("options").await;
    // Without a member the order does not go on.
    b.tap("options", "next").await;
    assert_eq!(b.current_screen().await, "options");
    assert!(
        b.text("#message").await.contains("選んでください"),
        "{:?}",
        b.text("#message").await
    );
    b.tap("options", "opt-members-2").await;
    b.tap("options", "opt-members-1").await;
    assert_eq!(
        b.attr(
            &Browser::in_screen("options", "opt-members-1"),
            "aria-pressed"
        )
        .await
        .as_deref(),
        Some("true")
    );
    b.wait_screen("options").await;
    b.tap("options", "next").await;
    b.wait_screen("copies").await;
    b.tap("copies", "next").await;
    b.wait_screen("confirm_fee").await;
    let first = b.pay_and_print(&ui, false).await;
    b.take_everything(&first).await;
    let state = ui.state().await;
    assert_eq!(state.printed.len(), 1);
    assert_eq!(
        state.printed[0].pages, 2,
        "two members: one front page and its back"
    );
    b.close().await;
}

#[tokio::test]
async fn happy_path_seal_registration_paid_by_emoney_in_english() {
    let Some(driver) = browser_tools() else {
        return;
    };
    let _slot = SLOTS.acquire().await.expect("slot");
    let ui = UiProcess::start("seal", 60);
    let mut b = Browser::open("happy_path_seal_registration", &driver).await;
    b.home(&ui).await;
    // English on the start screen, and on every screen after it.
    b.toggle_language().await;
    assert_eq!(b.text("#h-start").await, "Government services");
    b.tap("start", "start-service").await;
    b.wait_screen("card").await;
    b.tap("card", &format!("card-{FULL_CARD}")).await;
    b.wait_screen("route").await;
    assert_eq!(b.text("#h-route").await, "Which municipality?");
    b.tap("route", "route-residence").await;
    b.wait_screen("pin").await;
    b.tap_pin(&ui.pin(FULL_CARD)).await;
    b.reach_menu_after_pin().await;
    let item = b
        .text(&Browser::in_screen("menu", "cert-seal_registration"))
        .await;
    assert!(item.contains("yen") && !item.contains("印鑑"), "{item}");
    b.tap("menu", "cert-seal_registration").await;
    // No options for this type: straight to the copies.
    b.wait_screen("copies").await;
    b.tap("copies", "next").await;
    b.wait_screen("confirm_fee").await;
    let fee = ui.state().await.fee_yen.expect("fee");
    assert!(b
        .text(r#"[data-testid="fee"]"#)
        .await
        .contains(&format!("{fee} yen")));
    b.toggle_language().await;
    assert!(b
        .text(r#"[data-testid="fee"]"#)
        .await
        .contains(&format!("{fee}円")));
    b.toggle_language().await;
    let first = b.pay_and_print(&ui, false).await;
    b.take_everything(&first).await;
    assert_eq!(b.text("#h-done").await, "Thank you");
    let pdf = b.printed_pdf(&ui).await;
    assert!(pdf.starts_with(b"%PDF"));
    b.close().await;
}

#[tokio::test]
async fn wrong_pin_then_the_right_one_by_keyboard() {
    let Some(driver) = browser_tools() else {
        return;
    };
    let _slot = SLOTS.acquire().await.expect("slot");
    let ui = UiProcess::start("wrong-pin", 60);
    let mut b = Browser::open("wrong_pin_then_right", &driver).await;
    b.home(&ui).await;
    // Keyboard only: the start screen focuses its button; Enter presses it.
    b.keys("\u{E007}").await;
    b.wait_screen("card").await;
    b.tap("card", &format!("card-{FULL_CARD}")).await;
    b.wait_screen("route").await;
    // Tab order: 住所地 first; Space presses the focused button.
    b.keys(" ").await;
    b.wait_screen("pin").await;
    let pin = ui.pin(FULL_CARD);
    b.keys(&wrong_pin(&pin)).await;
    // Masked: four filled dots, never the digits.
    let filled = b
        .js("return document.querySelectorAll('#pin-dots .dot.filled').length")
        .await;
    assert_eq!(filled, json!(4));
    assert!(!b.text("#pin-dots").await.contains(&wrong_pin(&pin)));
    b.keys("\u{E007}").await;
    let deadline = Instant::now() + SCREEN_TIMEOUT;
    while !b.text("#pin-attempts").await.contains('2') {
        assert!(Instant::now() < deadline, "attempts left not shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(b.current_screen().await, "pin");
    b.check_layout("pin").await;
    assert!(b.text("#message").await.contains("暗証番号が違います"));
    assert_eq!(ui.state().await.pin_attempts_left, Some(2));
    b.keys(&pin).await;
    b.keys("\u{E007}").await;
    b.reach_menu_after_pin().await;
    let state = ui.state().await;
    assert_eq!(state.screen, Screen::Menu);
    // The card's counter is back to three.
    assert_eq!(ui.card(FULL_CARD)["pin_attempts_left"], json!(3));
    b.close().await;
}

#[tokio::test]
async fn three_wrong_pins_lock_the_card() {
    let Some(driver) = browser_tools() else {
        return;
    };
    let _slot = SLOTS.acquire().await.expect("slot");
    let ui = UiProcess::start("locked", 60);
    let mut b = Browser::open("locked_card", &driver).await;
    b.go_to_pin_pad(&ui, FULL_CARD).await;
    let wrong = wrong_pin(&ui.pin(FULL_CARD));
    for attempt in 1..=3 {
        b.tap_pin(&wrong).await;
        if attempt < 3 {
            let deadline = Instant::now() + SCREEN_TIMEOUT;
            while ui.state().await.pin_attempts_left != Some(3 - attempt) {
                assert!(Instant::now() < deadline, "attempt {attempt} not counted");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    b.wait_screen("locked").await;
    let message = b.text(&Browser::in_screen("locked", "end-message")).await;
    assert!(message.contains("ロックされました"), "{message}");
    b.tap("locked", "acknowledge").await;
    b.wait_screen("take_card").await;
    b.tap("take_card", "take-card").await;
    b.wait_screen("start").await;
    // The card stays locked: its file says so, and the right PIN no longer helps.
    assert_eq!(ui.card(FULL_CARD)["pin_attempts_left"], json!(0));
    b.go_to_pin_pad(&ui, FULL_CARD).await;
    b.tap_pin(&ui.pin(FULL_CARD)).await;
    b.wait_screen("locked").await;
    b.close().await;
}

#[tokio::test]
async fn a_refusal_shows_only_the_generic_message() {
    let Some(driver) = browser_tools() else {
        return;
    };
    let _slot = SLOTS.acquire().await.expect("slot");
    let ui = UiProcess::start("refusal", 60);
    let mut b = Browser::open("refusal", &driver).await;
    b.go_to_pin_pad(&ui, REFUSED_CARD).await;
    b.tap_pin(&ui.pin(REFUSED_CARD)).await;
    b.reach_menu_after_pin().await;
    b.tap("menu", "cert-resident_record").await;
    b.wait_screen("options").await;
    b.tap("options", "next").await;
    b.wait_screen("copies").await;
    b.tap("copies", "next").await;
    b.wait_screen("refused").await;
    let css = Browser::in_screen("refused", "end-message");
    assert_eq!(b.text(&css).await, RefusalReason::RESIDENT_MESSAGE_JA);
    b.toggle_language().await;
    assert_eq!(b.text(&css).await, RefusalReason::RESIDENT_MESSAGE_EN);
    b.check_layout("refused").await;
    b.toggle_language().await;
    b.tap("refused", "acknowledge").await;
    let next = b.wait_any(&["take_card", "start"]).await;
    if next == "take_card" {
        b.tap("take_card", "take-card").await;
        b.wait_screen("start").await;
    }
    let state = ui.state().await;
    assert_eq!(state.screen, Screen::Idle);
    assert!(state.printed.is_empty());
    b.close().await;
}

#[tokio::test]
async fn an_idle_screen_cancels_the_visit_and_returns_to_the_start() {
    let Some(driver) = browser_tools() else {
        return;
    };
    let _slot = SLOTS.acquire().await.expect("slot");
    let ui = UiProcess::start("idle", SHORT_IDLE_TIMEOUT_S);
    let mut b = Browser::open("idle_timeout", &driver).await;
    // Left on the PIN pad with two digits typed: cancelled, the card back, wiped.
    b.go_to_pin_pad(&ui, FULL_CARD).await;
    b.tap("pin", "pin-1").await;
    b.tap("pin", "pin-2").await;
    let started = Instant::now();
    b.wait_screen("start").await;
    assert!(
        started.elapsed() >= Duration::from_secs(SHORT_IDLE_TIMEOUT_S - 1),
        "timed out too early"
    );
    assert_eq!(
        b.attr(r#"[data-testid="timeout-notice"]"#, "hidden").await,
        None,
        "the timeout notice is shown"
    );
    let filled = b
        .js("return document.querySelectorAll('#pin-dots .dot.filled').length")
        .await;
    assert_eq!(filled, json!(0), "the PIN pad is wiped");
    let state = ui.state().await;
    assert_eq!(state.screen, Screen::Idle);
    assert!(!state.card_in_reader);

    // Left on the fee screen: the payment times out (walk away), nothing is printed.
    b.tap("start", "start-service").await;
    b.wait_screen("card").await;
    b.tap("card", &format!("card-{FULL_CARD}")).await;
    b.wait_screen("route").await;
    b.tap("route", "route-residence").await;
    b.wait_screen("pin").await;
    b.tap_pin(&ui.pin(FULL_CARD)).await;
    b.reach_menu_after_pin().await;
    b.tap("menu", "cert-seal_registration").await;
    b.wait_screen("copies").await;
    b.tap("copies", "next").await;
    b.wait_screen("confirm_fee").await;
    assert!(ui.state().await.request_id.is_some());
    b.wait_screen("start").await;
    let state = ui.state().await;
    assert_eq!(state.screen, Screen::Idle);
    assert!(!state.card_in_reader && state.printed.is_empty());
    assert!(b.text("#confirm-fee").await.is_empty() || b.current_screen().await == "start");
    b.close().await;
}

#[tokio::test]
async fn reminders_repeat_until_acknowledged() {
    let Some(driver) = browser_tools() else {
        return;
    };
    let _slot = SLOTS.acquire().await.expect("slot");
    // A short idle timeout: the reminders must outlast it.
    let ui = UiProcess::start("reminders", SHORT_IDLE_TIMEOUT_S);
    let mut b = Browser::open("reminders", &driver).await;
    b.go_to_pin_pad(&ui, FULL_CARD).await;
    b.tap_pin(&ui.pin(FULL_CARD)).await;
    let after_pin = b.wait_any(&["card_return", "menu"]).await;
    if after_pin == "card_return" {
        wait_reminders(&mut b, "card_return", 2).await;
        b.tap("card_return", "take-card").await;
        b.wait_screen("menu").await;
    }
    b.tap("menu", "cert-seal_registration").await;
    b.wait_screen("copies").await;
    b.tap("copies", "next").await;
    b.wait_screen("confirm_fee").await;
    let first = b.pay_and_print(&ui, false).await;
    if first == "take_card" {
        wait_reminders(&mut b, "take_card", 3).await;
        assert!(ui.state().await.card_in_reader);
        b.tap("take_card", "take-card").await;
        b.wait_screen("take_certificate").await;
    }
    wait_reminders(&mut b, "take_certificate", 3).await;
    let state = ui.state().await;
    assert_eq!(state.screen, Screen::TakeCertificate);
    assert!(state.certificate_in_tray);
    b.tap("take_certificate", "take-certificate").await;
    b.wait_screen("done").await;
    b.close().await;
}

/// Stays on `screen`, blinking, until its reminder was announced `count` times
/// (longer than the idle timeout: reminders never time out).
async fn wait_reminders(b: &mut Browser, screen: &str, count: u32) {
    let css = format!(r#"section[data-screen="{screen}"]"#);
    let deadline = Instant::now() + SCREEN_TIMEOUT;
    loop {
        assert_eq!(b.current_screen().await, screen, "left the reminder");
        let seen: u32 = b
            .attr(&css, "data-reminder-count")
            .await
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if seen >= count {
            break;
        }
        assert!(Instant::now() < deadline, "{screen}: {seen} reminders");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let announced = b
        .text(&format!(r#"{css} [data-testid="reminder-text"]"#))
        .await;
    assert!(announced.contains(&format!("{count}回目")), "{announced}");
    let blinking = b
        .js(&format!(
            r#"return getComputedStyle(document.querySelector('{css} h1')).animationName"#
        ))
        .await;
    assert_eq!(blinking, json!("blink"));
    b.check_layout(screen).await;
}
