//! `kiosk-sim ui`: the kiosk's touch screen (タッチパネル) in a browser.
//!
//! One actix server serves the page (static HTML/CSS/JS checked in under `ui/` and
//! embedded here: no front-end build step), the control interface under
//! `/control/v1` (the page is a thin client of it: [`kiosk_sim::control::server`]),
//! and a few routes of its own under `/ui/v1` that stand in for the resident's hands:
//!
//! ```text
//! GET  /                          the touch panel
//! GET  /ui/app.js, /ui/style.css  its script and style
//! GET  /ui/font.ttf               the vendored IPAex font (Japanese on any browser)
//! GET  /ui/v1/config              idle timeout and reminder interval for the page
//! GET  /ui/v1/cards               the simulated cards to pick from (id, label; never
//!                                 the PIN or the key)
//! POST /ui/v1/cards/{id}/place    that card into the reader (control step `card`)
//! POST /ui/v1/take-card           the resident takes the card (control `take-card`);
//!                                 the card keeps its wrong-PIN counter, as a real
//!                                 card does, so a locked card stays locked
//! ```
//!
//! `--local` creates (or reopens) a sandbox and runs every party in this process, as
//! `kiosk-sim demo` does, with the center's clock pinned into every type's hours
//! when the real clock is outside them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use anyhow::Context as _;
use kiosk_sim::control::server::{answer, SharedController};
use kiosk_sim::control::{server, Controller, StepError};
use kiosk_sim::KioskSettings;
use schemas::kiosk_control::PlaceCard;
use schemas::{CardFile, ErrorBody, ErrorCode, MAX_PIN_ATTEMPTS, SERVICE_TIME_ZONE};

static INDEX_HTML: &str = include_str!("../ui/index.html");
static APP_JS: &str = include_str!("../ui/app.js");
static STYLE_CSS: &str = include_str!("../ui/style.css");
static FONT_TTF: &[u8] = include_bytes!("../../assets/fonts/ipaexm.ttf");

/// Cards listed for the picker (the sandbox has about a hundred).
pub const MAX_CARDS: usize = 1000;
/// Largest card file read (a card file is about 1 KiB).
const MAX_CARD_FILE_BYTES: u64 = 64 * 1024;
/// How often a 取り忘れ reminder is re-announced.
const REMINDER_INTERVAL_S: u64 = 4;
/// The operator whose kiosk settings `--local` uses.
const LOCAL_OPERATOR: &str = "seven";
/// Default sandbox directory of `--local`.
const DEFAULT_LOCAL_DIR: &str = "out/ui";

/// `kiosk-sim ui`.
#[derive(clap::Args, Debug)]
pub struct UiArgs {
    /// Loopback address to listen on (plain HTTP without authentication); port 0
    /// picks a free one.
    #[arg(long, default_value = "127.0.0.1:8080", conflicts_with = "port")]
    pub listen: SocketAddr,
    /// Shorthand for `--listen 127.0.0.1:PORT`.
    #[arg(long)]
    pub port: Option<u16>,
    /// Create (or reopen) a sandbox in --dir and run every party in this process.
    #[arg(long, conflicts_with_all = ["config", "cards"], required_unless_present = "config")]
    pub local: bool,
    /// The sandbox directory of --local (default out/ui).
    #[arg(long, requires = "local")]
    pub dir: Option<PathBuf>,
    /// Kiosk settings (TOML) of a kiosk against a running center.
    #[arg(long, requires = "cards")]
    pub config: Option<PathBuf>,
    /// Directory of simulated card files (*.json) to pick from.
    #[arg(long, requires = "config")]
    pub cards: Option<PathBuf>,
    /// Seconds a screen may be left untouched before the visit is cancelled (the
    /// 取り忘れ reminders never time out).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_s: u64,
    /// Where the outbox, the card in the reader and the printed PDFs live (default:
    /// the settings' state directory).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

impl UiArgs {
    /// `--port` wins over the default `--listen` (clap keeps the two apart).
    fn listen_address(&self) -> SocketAddr {
        match self.port {
            Some(port) => SocketAddr::from(([127, 0, 0, 1], port)),
            None => self.listen,
        }
    }
}

/// A simulated card the resident can pick.
#[derive(Clone, Debug)]
struct CardEntry {
    label: String,
    path: PathBuf,
}

#[derive(Clone)]
struct UiState {
    /// By id (the file name without `.json`).
    cards: Arc<BTreeMap<String, CardEntry>>,
    idle_timeout_s: u64,
    /// The card now in the reader (its wrong-PIN counter goes back to it).
    placed: Arc<std::sync::Mutex<Option<PathBuf>>>,
}

#[derive(serde::Serialize)]
struct CardItem<'a> {
    id: &'a str,
    label: &'a str,
}

#[derive(serde::Serialize)]
struct CardList<'a> {
    cards: Vec<CardItem<'a>>,
}

#[derive(serde::Serialize)]
struct UiConfig {
    idle_timeout_s: u64,
    reminder_interval_s: u64,
}

fn error(status: actix_web::http::StatusCode, code: ErrorCode, message: String) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        code,
        message,
        request_id: None,
    })
}

fn asset(content_type: &'static str, body: &'static [u8], cache: bool) -> HttpResponse {
    let cache_control = if cache {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", cache_control))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(body)
}

async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX_HTML.as_bytes(), false)
}

async fn app_js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS.as_bytes(), false)
}

async fn style_css() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE_CSS.as_bytes(), false)
}

async fn font() -> HttpResponse {
    asset("font/ttf", FONT_TTF, true)
}

async fn config(ui: web::Data<UiState>) -> HttpResponse {
    HttpResponse::Ok().json(UiConfig {
        idle_timeout_s: ui.idle_timeout_s,
        reminder_interval_s: REMINDER_INTERVAL_S,
    })
}

async fn card_list(ui: web::Data<UiState>) -> HttpResponse {
    HttpResponse::Ok().json(CardList {
        cards: ui
            .cards
            .iter()
            .map(|(id, card)| CardItem {
                id,
                label: &card.label,
            })
            .collect(),
    })
}

async fn place_card(
    ui: web::Data<UiState>,
    shared: SharedController,
    path: web::Path<String>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let id = path.into_inner();
    let Some(entry) = ui.cards.get(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no such card".into(),
        );
    };
    let card = match read_card(&entry.path) {
        Ok(card) => card,
        Err(e) => {
            tracing::error!(path = %entry.path.display(), error = %e, "ui: card file unreadable");
            return answer(Err(StepError::Internal(format!("card {id}: {e}"))));
        }
    };
    let mut controller = shared.lock().await;
    let result = controller.place_card(PlaceCard { card }).await;
    if result.as_ref().is_ok_and(|s| s.card_in_reader) {
        if let Ok(mut placed) = ui.placed.lock() {
            *placed = Some(entry.path.clone());
        }
    }
    answer(result)
}

/// Takes the card out of the reader; the card file keeps the wrong-PIN counter the
/// reader last saw (a locked card stays locked, a verified PIN resets it).
async fn take_card(ui: web::Data<UiState>, shared: SharedController) -> HttpResponse {
    let mut controller = shared.lock().await;
    let attempts_left = controller.state().pin_attempts_left;
    let result = controller.take_card();
    if result.is_ok() {
        let placed = ui.placed.lock().ok().and_then(|mut p| p.take());
        if let (Some(path), Some(left)) = (placed, attempts_left) {
            if let Err(e) = write_attempts_left(&path, left) {
                tracing::warn!(path = %path.display(), error = %e, "ui: card counter not saved");
            }
        }
    }
    answer(result)
}

fn read_card(path: &Path) -> anyhow::Result<CardFile> {
    let length = std::fs::metadata(path)?.len();
    anyhow::ensure!(length <= MAX_CARD_FILE_BYTES, "card file too large");
    let text = std::fs::read_to_string(path)?;
    Ok(serde_json::from_str(&text)?)
}

fn write_attempts_left(path: &Path, attempts_left: u8) -> anyhow::Result<()> {
    let mut card = read_card(path)?;
    card.pin_attempts_left = attempts_left.min(MAX_PIN_ATTEMPTS);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&card)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The card files of `dir`, by id (file name without `.json`), sorted.
fn list_cards(dir: &Path) -> anyhow::Result<BTreeMap<String, CardEntry>> {
    let mut cards = BTreeMap::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(id) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let card = match read_card(&path) {
            Ok(card) => card,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ui: not a card file, skipped");
                continue;
            }
        };
        anyhow::ensure!(
            cards.len() < MAX_CARDS,
            "more than {MAX_CARDS} cards in {}",
            dir.display()
        );
        cards.insert(
            id.to_owned(),
            CardEntry {
                label: card.label,
                path,
            },
        );
    }
    anyhow::ensure!(!cards.is_empty(), "no card files in {}", dir.display());
    Ok(cards)
}

/// Serves the touch screen for `settings` until Ctrl-C.
async fn serve(
    args: &UiArgs,
    settings: KioskSettings,
    cards_dir: &Path,
    default_state_dir: PathBuf,
) -> anyhow::Result<()> {
    let cards = list_cards(cards_dir)?;
    let state_dir = args.state_dir.clone().unwrap_or(default_state_dir);
    let controller = Controller::new(settings, state_dir).context("setting up the kiosk")?;
    let listen = args.listen_address();
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("listening on {listen}"))?;
    let ui = web::Data::new(UiState {
        cards: Arc::new(cards),
        idle_timeout_s: args.idle_timeout_s,
        placed: Arc::new(std::sync::Mutex::new(None)),
    });
    let started = server::start_with(controller, listener, move |cfg| {
        cfg.app_data(ui.clone())
            .route("/", web::get().to(index))
            .route("/ui/app.js", web::get().to(app_js))
            .route("/ui/style.css", web::get().to(style_css))
            .route("/ui/font.ttf", web::get().to(font))
            .route("/ui/v1/config", web::get().to(config))
            .route("/ui/v1/cards", web::get().to(card_list))
            .route("/ui/v1/cards/{id}/place", web::post().to(place_card))
            .route("/ui/v1/take-card", web::post().to(take_card));
    })
    .context("starting the touch screen server")?;
    println!("kiosk touch screen: http://{}/", started.local_addr);
    let handle = started.server.handle();
    tokio::select! {
        result = started.server => result.context("touch screen server")?,
        _ = kiosk_sim::shutdown::stop_requested() => handle.stop(true).await,
    }
    Ok(())
}

/// `kiosk-sim ui`.
pub async fn run(args: UiArgs) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "the touch screen drives the kiosk without authentication: listen on loopback, not {}",
            args.listen
        );
    }
    if !args.local {
        let (Some(config), Some(cards)) = (&args.config, &args.cards) else {
            anyhow::bail!("give --local, or --config and --cards");
        };
        let settings =
            KioskSettings::load(config).with_context(|| format!("reading {}", config.display()))?;
        let state_dir = settings.effective_state_dir();
        return serve(&args, settings, cards, state_dir).await;
    }
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LOCAL_DIR));
    if dir.join("sandbox.json").exists() {
        println!("reusing the sandbox in {}", dir.display());
    } else {
        sandbox::init(&dir).with_context(|| format!("creating sandbox {}", dir.display()))?;
        println!("created a sandbox in {}", dir.display());
    }
    let clock = Arc::new(sandbox::OffsetClock::default());
    let real_now = jiff::Timestamp::now().in_tz(SERVICE_TIME_ZONE)?;
    if let Some(pinned) = crate::demo::pinned_instant(&real_now)? {
        clock.set_now(pinned.timestamp());
        println!(
            "the center's clock is pinned to {} (every type is open then)",
            pinned.strftime("%Y-%m-%d %H:%M %Z (%a)")
        );
    }
    let running = sandbox::start(
        &dir,
        sandbox::StartOptions {
            center_clock: Some(clock),
            ..sandbox::StartOptions::default()
        },
    )
    .await?;
    let result = match running.kiosk_config(LOCAL_OPERATOR) {
        Some(path) => match KioskSettings::load(path) {
            Ok(settings) => {
                let cards = dir.join("cards");
                let state_dir = dir.join("ui-state");
                serve(&args, settings, &cards, state_dir).await
            }
            Err(e) => Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
        },
        None => Err(anyhow::anyhow!(
            "the sandbox has no kiosk settings for {LOCAL_OPERATOR}"
        )),
    };
    running.stop().await;
    result
}
