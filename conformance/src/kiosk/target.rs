//! The kiosk under test and the suite's center around it.
//!
//! The suite plays the center with the real reference center and adapters, started
//! in-process from a fresh sandbox (its cards are the suite's cards, its clock is
//! pinned to a weekday morning so every type is within its hours). The reference kiosk
//! is started by a [`KioskLauncher`] that kiosk-sim supplies (this crate cannot depend
//! on kiosk-sim, which depends on it); every scenario gets a fresh kiosk (own state
//! directory: outbox, reader, printed pages) in front of the same center.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use sandbox::{CardInfo, RunningSandbox, StartOptions};
use schemas::kiosk_control::{ControlInfo, ControlState};
use schemas::{CardFile, ErrorBody, RequestId};

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
pub const KIOSK_FAULTS: [&str; 2] = ["skip_void_on_print_failure", "skip_document_check"];

#[derive(Debug, thiserror::Error)]
pub enum KioskSetupError {
    #[error("reference center (sandbox): {0}")]
    Center(String),
    #[error("reference kiosk: {0}")]
    Kiosk(String),
    #[error("kiosk URL targets: not in this build (only --target reference)")]
    UrlNotInThisBuild,
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
    /// An operator's kiosk (not in this build: answered with exit 2).
    Url(String),
}

/// The center and the launcher; kiosks are started per scenario.
pub struct KioskTarget {
    sandbox: Option<RunningSandbox>,
    launcher: Arc<dyn KioskLauncher>,
    settings_file: PathBuf,
    dir: PathBuf,
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
        let launcher = match spec {
            KioskTargetSpec::Reference(launcher) => launcher,
            KioskTargetSpec::Url(_) => return Err(KioskSetupError::UrlNotInThisBuild),
        };
        let dir =
            std::env::temp_dir().join(format!("kofu-kiosk-conformance-{}", uuid::Uuid::new_v4()));
        let result = Self::start_in(&dir, launcher, fault).await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    async fn start_in(
        dir: &Path,
        launcher: Arc<dyn KioskLauncher>,
        fault: Option<&str>,
    ) -> Result<Self, KioskSetupError> {
        let center = |e: &dyn std::fmt::Display| KioskSetupError::Center(e.to_string());
        let sandbox_dir = dir.join("sandbox");
        sandbox::init(&sandbox_dir).map_err(|e| center(&e))?;
        let clock = Arc::new(sandbox::OffsetClock::default());
        let morning: jiff::Timestamp = BUSINESS_MORNING.parse().map_err(|e| center(&e))?;
        clock.set_offset_ms(morning.as_millisecond() - jiff::Timestamp::now().as_millisecond());
        let running = sandbox::start(
            &sandbox_dir,
            StartOptions {
                center_database_url: None,
                center_clock: Some(clock),
            },
        )
        .await
        .map_err(|e| center(&e))?;
        let Some((_, config)) = running
            .layout
            .kiosk_configs
            .iter()
            .find(|(operator, _)| operator == OPERATOR)
            .cloned()
        else {
            running.stop().await;
            return Err(KioskSetupError::Center(format!(
                "the sandbox has no kiosk settings for {OPERATOR}"
            )));
        };
        // The settings file sits next to the sandbox's (relative TLS paths resolve the
        // same); the fault switch is appended for negative controls.
        let settings_file = config.with_file_name("kiosk-conformance.toml");
        let written = std::fs::read_to_string(&config).and_then(|text| {
            let text = match fault {
                None => text,
                Some(mode) => format!("{text}\n[fault]\nmode = \"{mode}\"\n"),
            };
            std::fs::write(&settings_file, text)
        });
        if let Err(e) = written {
            running.stop().await;
            return Err(KioskSetupError::Kiosk(format!("kiosk settings: {e}")));
        }
        let http = match reqwest::Client::builder().timeout(STEP_TIMEOUT).build() {
            Ok(http) => http,
            Err(e) => {
                running.stop().await;
                return Err(KioskSetupError::Kiosk(format!("HTTP client: {e}")));
            }
        };
        let mut target = Self {
            sandbox: Some(running),
            launcher,
            settings_file,
            dir: dir.to_owned(),
            http,
            next_kiosk: std::sync::atomic::AtomicUsize::new(0),
            software: None,
        };
        // One kiosk up front: it must start and answer /info.
        let probe = target.fresh_kiosk().await;
        match probe {
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

    fn running(&self) -> Option<&RunningSandbox> {
        self.sandbox.as_ref()
    }

    /// A fresh kiosk (new state directory) in front of the suite's center.
    pub async fn fresh_kiosk(&self) -> Result<Kiosk, String> {
        let n = self
            .next_kiosk
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let state_dir = self.dir.join(format!("kiosk-{n}"));
        std::fs::create_dir_all(&state_dir).map_err(|e| format!("kiosk state dir: {e}"))?;
        let launched = self.launcher.launch(&self.settings_file, &state_dir)?;
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

    /// The sandbox card with `serial`, as the reader gets it.
    pub fn card(&self, serial: &str) -> Result<CardFile, String> {
        let info = self
            .running()
            .and_then(|r| r.layout.card(serial).cloned())
            .ok_or_else(|| format!("no sandbox card {serial}"))?;
        read_card(&info)
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
        if let Some(running) = self.sandbox.take() {
            running.stop().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
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

    pub async fn stop(self) {
        if let Some(handle) = self.handle {
            handle.stop(true).await;
        }
    }
}
