//! The kiosk under test and the suite's center around it.
//!
//! The suite plays the center with the real reference center and adapters, started
//! in-process from a sandbox (its cards are the suite's cards, its clock is pinned to a
//! weekday morning so every type is within its hours). The kiosk talks to the center
//! through the suite's [`CenterFront`], which can hold or doctor answers and present a
//! wrong certificate.
//!
//! - Reference target: the kiosk is started by a [`KioskLauncher`] that kiosk-sim
//!   supplies (this crate cannot depend on kiosk-sim, which depends on it); every
//!   scenario gets a fresh kiosk (own state directory: outbox, reader, printed pages).
//! - URL target: the suite writes the kiosk's set-up (center URL, TLS files, cards) into
//!   a set-up directory, waits for the operator's kiosk to answer on its control URL, and
//!   runs every scenario on that one kiosk, brought back to its idle screen in between.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use sandbox::{CardInfo, RunningSandbox, StartOptions};
use schemas::kiosk_control::{ControlInfo, ControlState, Screen};
use schemas::{CardFile, ErrorBody, RequestId};

use super::front::{CenterFront, FrontConfig};
use mtls::error_chain;

/// A weekday morning (JST), within every type's hours, whatever the real time of the run.
pub const BUSINESS_MORNING: &str = "2026-11-25T10:00:00+09:00";
/// The sandbox operator whose kiosk settings the suite uses.
pub const OPERATOR: &str = "seven";
/// Largest control answer or PDF the suite reads.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Timeout of one control step (a step that talks to the center is bounded by the
/// kiosk's own timeouts, well below this).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// The kiosk's fault switches (`[fault] mode` in its settings), for negative controls.
pub const KIOSK_FAULTS: [&str; 3] = [
    "skip_void_on_print_failure",
    "skip_document_check",
    "release_lock_on_timeout",
];
/// The reference kiosk's request timeout in the suite (short, so the timeout
/// scenarios are quick).
pub const REFERENCE_KIOSK_TIMEOUT_MS: u64 = 2_000;
/// How much longer than the kiosk's request timeout the front holds an answer.
pub const HOLD_BEYOND_TIMEOUT_MS: u64 = 1_500;
/// The set-up file a URL target's kiosk is configured from (kiosk-sim reads it as is).
pub const URL_SETUP_SETTINGS: &str = "kiosk.toml";

#[derive(Debug, thiserror::Error)]
pub enum KioskSetupError {
    #[error("reference center (sandbox): {0}")]
    Center(String),
    #[error("reference kiosk: {0}")]
    Kiosk(String),
    #[error("the kiosk at {url} did not answer GET /info within {waited_s} s (set-up in {setup})")]
    KioskNotAnswering {
        url: String,
        waited_s: u64,
        setup: String,
    },
    #[error("--target must be `reference` or an http(s):// control URL, not {0:?}")]
    BadUrl(String),
}

/// A kiosk control server started for one scenario.
pub struct LaunchedKiosk {
    /// `http://127.0.0.1:PORT/control/v1`.
    pub control_url: String,
    /// Stops an in-process server.
    pub handle: Option<ServerHandle>,
}

/// Starts the reference kiosk's control server with the kiosk settings file
/// `settings_file` and the state directory `state_dir` (both written by the suite).
pub trait KioskLauncher: Send + Sync {
    fn launch(&self, settings_file: &Path, state_dir: &Path) -> Result<LaunchedKiosk, String>;
}

#[derive(Clone)]
pub enum KioskTargetSpec {
    Reference(Arc<dyn KioskLauncher>),
    /// An operator's kiosk.
    Url(UrlKiosk),
}

/// An operator's kiosk, reached on its control interface.
#[derive(Clone, Debug)]
pub struct UrlKiosk {
    /// e.g. `http://127.0.0.1:7000/control/v1`.
    pub control_url: String,
    /// Where the suite keeps its center (kept between runs, so the kiosk is set up
    /// once) and writes [`URL_SETUP_SETTINGS`].
    pub setup_dir: PathBuf,
    /// Where the suite's center listens for the kiosk.
    pub center_listen: SocketAddr,
    /// The kiosk's own request timeout (the front holds answers longer than this).
    pub kiosk_timeout_ms: u64,
    /// How long to wait for the kiosk to answer before giving up.
    pub wait_for_kiosk: Duration,
}

enum Launch {
    Reference(Arc<dyn KioskLauncher>),
    /// The one kiosk at this control URL.
    Url(String),
}

/// The center, its front and the kiosk launcher; kiosks are started per scenario.
pub struct KioskTarget {
    sandbox: Option<RunningSandbox>,
    pub front: CenterFront,
    /// How long the front holds an answer to outlast the kiosk's timeout.
    pub hold_ms: u64,
    /// `reference` or the control URL, for the report.
    pub name: String,
    /// The suite center's clock (the adapters follow it): every scenario starts at
    /// [`BUSINESS_MORNING`]; a scenario may move it with [`KioskTarget::set_clock`].
    clock: Arc<sandbox::OffsetClock>,
    launch: Launch,
    settings_file: PathBuf,
    dir: PathBuf,
    /// The suite's own temporary directory (removed at the end), not a URL set-up.
    owns_dir: bool,
    http: reqwest::Client,
    next_kiosk: std::sync::atomic::AtomicUsize,
    pub software: Option<String>,
}

/// One HTTP exchange with the control interface.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Exchange {
    pub fn state(&self) -> Result<ControlState, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("not a ControlState: {e}"))
    }

    pub fn error(&self) -> Option<ErrorBody> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(300)
            .collect()
    }
}

/// A running kiosk, driven over its control interface.
pub struct Kiosk {
    base: String,
    http: reqwest::Client,
    handle: Option<ServerHandle>,
}

impl KioskTarget {
    pub async fn start(
        spec: KioskTargetSpec,
        fault: Option<&str>,
    ) -> Result<Self, KioskSetupError> {
        match spec {
            KioskTargetSpec::Reference(launcher) => {
                let dir = std::env::temp_dir()
                    .join(format!("kofu-kiosk-conformance-{}", uuid::Uuid::new_v4()));
                let setup = Setup {
                    dir: &dir,
                    owns_dir: true,
                    listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                    kiosk_timeout_ms: REFERENCE_KIOSK_TIMEOUT_MS,
                };
                let result = Self::start_in(setup, Launch::Reference(launcher), fault).await;
                if result.is_err() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                result
            }
            KioskTargetSpec::Url(url) => {
                if !(url.control_url.starts_with("http://")
                    || url.control_url.starts_with("https://"))
                {
                    return Err(KioskSetupError::BadUrl(url.control_url));
                }
                let dir = std::fs::create_dir_all(&url.setup_dir)
                    .and_then(|()| std::fs::canonicalize(&url.setup_dir))
                    .map_err(|e| KioskSetupError::Kiosk(format!("set-up directory: {e}")))?;
                let setup = Setup {
                    dir: &dir,
                    owns_dir: false,
                    listen: url.center_listen,
                    kiosk_timeout_ms: url.kiosk_timeout_ms,
                };
                let control_url = url.control_url.trim_end_matches('/').to_owned();
                let target = Self::start_in(setup, Launch::Url(control_url), None).await?;
                target.wait_for_kiosk(url.wait_for_kiosk).await
            }
        }
    }

    async fn start_in(
        setup: Setup<'_>,
        launch: Launch,
        fault: Option<&str>,
    ) -> Result<Self, KioskSetupError> {
        let center = |e: &dyn std::fmt::Display| KioskSetupError::Center(e.to_string());
        let dir = setup.dir;
        let sandbox_dir = dir.join("sandbox");
        // A URL target's center is kept between runs: the operator sets the kiosk up once.
        if !sandbox_dir.join("sandbox.json").exists() {
            sandbox::init(&sandbox_dir).map_err(|e| center(&e))?;
        }
        let clock = Arc::new(sandbox::OffsetClock::default());
        set_offset_clock(&clock, BUSINESS_MORNING).map_err(|e| center(&e))?;
        let running = sandbox::start(
            &sandbox_dir,
            StartOptions {
                center_database_url: None,
                center_clock: Some(clock.clone()),
            },
        )
        .await
        .map_err(|e| center(&e))?;
        let prepared =
            prepare_front(&running, dir, setup.listen, setup.kiosk_timeout_ms, fault).await;
        let (front, settings_file) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                running.stop().await;
                return Err(e);
            }
        };
        let http = match reqwest::Client::builder().timeout(STEP_TIMEOUT).build() {
            Ok(http) => http,
            Err(e) => {
                front.stop().await;
                running.stop().await;
                return Err(KioskSetupError::Kiosk(format!("HTTP client: {e}")));
            }
        };
        let name = match &launch {
            Launch::Reference(_) => "reference".to_owned(),
            Launch::Url(url) => url.clone(),
        };
        let mut target = Self {
            sandbox: Some(running),
            front,
            hold_ms: setup
                .kiosk_timeout_ms
                .saturating_add(HOLD_BEYOND_TIMEOUT_MS),
            name,
            clock,
            launch,
            settings_file,
            dir: dir.to_owned(),
            owns_dir: setup.owns_dir,
            http,
            next_kiosk: std::sync::atomic::AtomicUsize::new(0),
            software: None,
        };
        if matches!(target.launch, Launch::Url(_)) {
            return Ok(target);
        }
        // One kiosk up front: it must start and answer /info.
        match target.fresh_kiosk().await {
            Ok(kiosk) => {
                let info = kiosk.info().await;
                kiosk.stop().await;
                match info {
                    Ok(info) => target.software = Some(info.software),
                    Err(e) => {
                        target.stop().await;
                        return Err(KioskSetupError::Kiosk(format!("GET /info: {e}")));
                    }
                }
            }
            Err(e) => {
                target.stop().await;
                return Err(KioskSetupError::Kiosk(e));
            }
        }
        Ok(target)
    }

    /// Waits for a URL target's kiosk to answer `GET /info`.
    async fn wait_for_kiosk(mut self, bound: Duration) -> Result<Self, KioskSetupError> {
        let Launch::Url(url) = &self.launch else {
            return Ok(self);
        };
        let kiosk = Kiosk {
            base: url.clone(),
            http: self.http.clone(),
            handle: None,
        };
        tracing::info!(
            control_url = %url,
            setup = %self.settings_file.display(),
            front = %self.front.url,
            "waiting for the kiosk under test"
        );
        let started = Instant::now();
        loop {
            if let Ok(info) = kiosk.info().await {
                self.software = Some(info.software);
                return Ok(self);
            }
            if started.elapsed() >= bound {
                let error = KioskSetupError::KioskNotAnswering {
                    url: url.clone(),
                    waited_s: bound.as_secs(),
                    setup: self.settings_file.display().to_string(),
                };
                self.stop().await;
                return Err(error);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn running(&self) -> Option<&RunningSandbox> {
        self.sandbox.as_ref()
    }

    /// Moves the suite center's clock (and so its adapters') to `at` (RFC 3339); it
    /// then runs on from there.
    pub fn set_clock(&self, at: &str) -> Result<(), String> {
        set_offset_clock(&self.clock, at)
    }

    /// A fresh kiosk (new state directory) in front of the suite's center, whose clock
    /// is back at [`BUSINESS_MORNING`] and whose front forwards plainly. A URL target's
    /// one kiosk is brought back to its idle screen instead.
    pub async fn fresh_kiosk(&self) -> Result<Kiosk, String> {
        self.set_clock(BUSINESS_MORNING)?;
        self.front.reset();
        let launcher = match &self.launch {
            Launch::Reference(launcher) => launcher,
            Launch::Url(url) => {
                let kiosk = Kiosk {
                    base: url.clone(),
                    http: self.http.clone(),
                    handle: None,
                };
                kiosk.back_to_idle().await?;
                return Ok(kiosk);
            }
        };
        let n = self
            .next_kiosk
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let state_dir = self.dir.join(format!("kiosk-{n}"));
        std::fs::create_dir_all(&state_dir).map_err(|e| format!("kiosk state dir: {e}"))?;
        let launched = launcher.launch(&self.settings_file, &state_dir)?;
        let kiosk = Kiosk {
            base: launched.control_url.trim_end_matches('/').to_owned(),
            http: self.http.clone(),
            handle: launched.handle,
        };
        // In-process servers answer at once; a child process may take a moment.
        for _ in 0..100 {
            if kiosk.get("state").await.is_ok() {
                return Ok(kiosk);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        kiosk.stop().await;
        Err("the kiosk's control interface did not answer within 10 s".into())
    }

    /// The first sandbox card that `wanted` picks, as the reader gets it.
    fn find_card(
        &self,
        what: &str,
        wanted: impl Fn(&CardInfo) -> bool,
    ) -> Result<CardFile, String> {
        let info = self
            .running()
            .and_then(|r| r.layout.cards.iter().find(|c| wanted(c)).cloned())
            .ok_or_else(|| format!("no sandbox card: {what}"))?;
        read_card(&info)
    }

    /// The sandbox card with `serial`.
    pub fn card(&self, serial: &str) -> Result<CardFile, String> {
        self.find_card(serial, |c| c.serial.as_str() == serial)
    }

    /// The sandbox's card of `kind` (revoked, expired, unregistered) for `code`.
    pub fn card_of_kind(&self, code: &str, kind: sandbox::CardKind) -> Result<CardFile, String> {
        self.find_card(&format!("{kind:?} of {code}"), |c| {
            c.kind == kind && c.municipality.to_string() == code
        })
    }

    /// The `index`th plain issuable resident card of `code`.
    pub fn resident_card(&self, code: &str, index: usize) -> Result<CardFile, String> {
        let issuable = municipal_adapter::samples::issuable_cards(code);
        let info = self
            .running()
            .and_then(|r| {
                r.layout
                    .cards
                    .iter()
                    .filter(|c| {
                        c.kind == sandbox::CardKind::Resident && issuable.contains(&c.serial)
                    })
                    .nth(index)
                    .cloned()
            })
            .ok_or_else(|| format!("no issuable card #{index} of {code}"))?;
        read_card(&info)
    }

    /// The center's record of `request_id`.
    pub async fn issuance(
        &self,
        request_id: &RequestId,
    ) -> Result<Option<center::db::IssuanceRow>, String> {
        let running = self.running().ok_or("the center is stopped")?;
        center::db::find_issuance(&running.center_pool, &request_id.to_string())
            .await
            .map_err(|e| format!("center database: {e}"))
    }

    /// The center's money totals (paid, printed, refunded).
    pub async fn money(&self) -> Result<center::db::MoneyTotals, String> {
        let running = self.running().ok_or("the center is stopped")?;
        center::db::money_totals(&running.center_pool)
            .await
            .map_err(|e| format!("center database: {e}"))
    }

    pub async fn stop(mut self) {
        self.front.stop().await;
        if let Some(running) = self.sandbox.take() {
            running.stop().await;
        }
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Where and how a target's center is set up.
struct Setup<'a> {
    dir: &'a Path,
    owns_dir: bool,
    listen: SocketAddr,
    kiosk_timeout_ms: u64,
}

/// Starts the front before the sandbox's center and writes the kiosk's settings
/// (pointing at the front; for the reference kiosk with the suite's timeout and the
/// fault switch).
async fn prepare_front(
    running: &RunningSandbox,
    dir: &Path,
    listen: SocketAddr,
    kiosk_timeout_ms: u64,
    fault: Option<&str>,
) -> Result<(CenterFront, PathBuf), KioskSetupError> {
    let kiosk_error = |e: &dyn std::fmt::Display| KioskSetupError::Kiosk(e.to_string());
    let Some((_, config)) = running
        .layout
        .kiosk_configs
        .iter()
        .find(|(operator, _)| operator == OPERATOR)
    else {
        return Err(KioskSetupError::Center(format!(
            "the sandbox has no kiosk settings for {OPERATOR}"
        )));
    };
    let text = std::fs::read_to_string(config).map_err(|e| kiosk_error(&e))?;
    let mut settings: toml::Table = text.parse().map_err(|e| kiosk_error(&e))?;
    let operator_tls: mtls::TlsFiles = settings
        .get("tls")
        .cloned()
        .ok_or("kiosk settings without [tls]")
        .map_err(|e| kiosk_error(&e))?
        .try_into()
        .map_err(|e| kiosk_error(&e))?;
    let center_settings = center::configuration::Settings::load(&running.layout.center_config)
        .map_err(|e| KioskSetupError::Center(e.to_string()))?;
    let front = CenterFront::start(FrontConfig {
        center_tls: &center_settings.kiosk_tls,
        operator_tls: &operator_tls,
        center_url: &running.center_url,
        impostor_dir: &dir.join("impostor"),
        listen,
    })
    .map_err(|e| KioskSetupError::Center(e.to_string()))?;
    settings.insert("center_url".into(), toml::Value::String(front.url.clone()));
    settings.insert(
        "request_timeout_ms".into(),
        toml::Value::Integer(i64::try_from(kiosk_timeout_ms).unwrap_or(i64::MAX)),
    );
    if let Some(mode) = fault {
        let mut table = toml::Table::new();
        table.insert("mode".into(), toml::Value::String(mode.to_owned()));
        settings.insert("fault".into(), toml::Value::Table(table));
    }
    // Next to the sandbox's own kiosk settings, so relative paths resolve the same.
    let settings_file = config.with_file_name(URL_SETUP_SETTINGS);
    let written = toml::to_string_pretty(&settings)
        .map_err(|e| kiosk_error(&e))
        .and_then(|text| std::fs::write(&settings_file, text).map_err(|e| kiosk_error(&e)));
    if let Err(e) = written {
        front.stop().await;
        return Err(e);
    }
    Ok((front, settings_file))
}

fn set_offset_clock(clock: &sandbox::OffsetClock, at: &str) -> Result<(), String> {
    let at: jiff::Timestamp = at.parse().map_err(|e| format!("clock time {at}: {e}"))?;
    clock.set_now(at);
    Ok(())
}

fn read_card(info: &CardInfo) -> Result<CardFile, String> {
    let bytes = std::fs::read(&info.path).map_err(|e| format!("card {}: {e}", info.serial))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("card {}: {e}", info.serial))
}

async fn exchange(request: reqwest::RequestBuilder) -> Result<Exchange, String> {
    let mut response = request.send().await.map_err(|e| error_chain(&e))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!(
                "response body larger than {MAX_RESPONSE_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Exchange { status, body })
}

impl Kiosk {
    pub async fn get(&self, path: &str) -> Result<Exchange, String> {
        exchange(self.http.get(format!("{}/{path}", self.base))).await
    }

    /// POSTs one step (`body` as JSON, or none).
    pub async fn post(
        &self,
        step: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Exchange, String> {
        let request = self.http.post(format!("{}/{step}", self.base));
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        exchange(request).await
    }

    pub async fn info(&self) -> Result<ControlInfo, String> {
        let answer = self.get("info").await?;
        serde_json::from_slice(&answer.body).map_err(|e| format!("not a ControlInfo: {e}"))
    }

    pub async fn document(&self, request_id: &RequestId) -> Result<Exchange, String> {
        self.get(&format!("documents/{request_id}")).await
    }

    /// Brings a kiosk that stays between scenarios back to its idle screen: restarted
    /// when a session is open, then card and pages taken.
    pub async fn back_to_idle(&self) -> Result<(), String> {
        let mut state = self.get("state").await?.state()?;
        if state.screen != Screen::Idle {
            state = self.post("restart", None).await?.state()?;
        }
        if state.card_in_reader {
            state = self.post("take-card", None).await?.state()?;
        }
        if state.certificate_in_tray {
            state = self.post("take-certificate", None).await?.state()?;
        }
        if state.screen == Screen::Idle && !state.card_in_reader && !state.certificate_in_tray {
            Ok(())
        } else {
            Err(format!(
                "the kiosk does not come back to idle: screen {:?}, card in reader {}, pages in tray {}",
                state.screen, state.card_in_reader, state.certificate_in_tray
            ))
        }
    }

    pub async fn stop(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.stop(true).await;
        }
    }
}

impl Drop for Kiosk {
    /// A scenario cut off at its time bound drops its kiosk without `stop`: the
    /// in-process server is stopped in the background then.
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { handle.stop(false).await });
            }
        }
    }
}
