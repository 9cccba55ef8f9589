//! Builds the application from settings and binds the kiosk-facing listener (mTLS) and,
//! when `public_listen` is set, the public listener for relying parties (HTTPS, no
//! client certificate; `routes::configure_public`) and, when `ops_listen` is set, the
//! operations listener (plain HTTP for loopback or the operations network: health,
//! readiness and Prometheus metrics; `routes::configure_ops`).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use composer::Composer;
use schemas::KeyPair;

use crate::adapter_client::AdapterClient;
use crate::card_auth::CardAuthority;
use crate::catalogue::CatalogueCache;
use crate::clock::{Clock, SystemClock};
use crate::configuration::{NoticeSettings, Settings, Timeouts};
use crate::directory::Directory;
use crate::routes;
use crate::settlement::SettlementConfig;

use mtls::body_deadline;
pub use mtls::body_deadline::{BodyDeadline, BODY_READ_TIMEOUT, BODY_READ_TIMEOUT_MS};

/// Everything a request handler may use. No in-process state decides an issuance:
/// all of it is configuration, immutable keys, or catalogues every replica fetches
/// identically from the municipalities; decisions live in the database.
pub struct AppState {
    /// Reads through its pool; every write through `Store::write` (`crate::store`).
    pub pool: Store,
    pub clock: Arc<dyn Clock>,
    pub center_key: KeyPair,
    /// Mints and recognises challenge nonces (derived from `center_key`).
    pub challenge_key: crate::challenge::ChallengeKey,
    pub card_authority: CardAuthority,
    pub directory: Directory,
    pub adapters: AdapterClient,
    /// Verified catalogues per municipality (derived from signed data only).
    pub catalogues: CatalogueCache,
    pub composer: Arc<Composer>,
    pub timeouts: Timeouts,
    pub verify_url: String,
    /// The signed trust list: settings' content at the version the database decided.
    pub trust_list: crate::trust_list::TrustListCache,
    /// Prometheus metrics (this state's own registry).
    pub metrics: crate::metrics::Metrics,
    /// Adapter failure bursts, for the `adapter_errors` alert only.
    pub adapter_bursts: crate::alerts::BurstDetector,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::configuration::ConfigError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Tls(#[from] mtls::TlsError),
    #[error(transparent)]
    CardAuthority(#[from] crate::card_auth::CardAuthorityError),
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    #[error("center key {path}: {reason}")]
    CenterKey { path: String, reason: String },
    #[error("settlement: {0}")]
    Settlement(#[from] crate::settlement::SettlementError),
    #[error("trust list: {0}")]
    TrustList(#[from] crate::trust_list::TrustListError),
    #[error("composer: {0}")]
    Composer(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// Upper bound on a kiosk request body (a card certificate and an order are < 2 KiB).
const MAX_KIOSK_BODY_BYTES: usize = 64 * 1024;

/// Default upper bound on a public request body; the verification endpoints read their
/// bodies themselves with their own bounds (`routes::verify_page`).
const MAX_PUBLIC_BODY_BYTES: usize = 64 * 1024;

/// Time a client has to send its request head (every listener); its body is bounded by
/// [`BODY_READ_TIMEOUT`] (`body_deadline`).
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The public listener's body deadline: uploads to the verification page (up to
/// `routes::verify_page::MAX_UPLOAD_BYTES`) get 1 s per 256 KiB they declare on top of
/// the base, at most 5 minutes; QR text and undeclared lengths get the base only.
const PUBLIC_BODY_DEADLINE: BodyDeadline = BodyDeadline {
    base_ms: BODY_READ_TIMEOUT_MS,
    min_rate_bytes_per_s: 256 * 1024,
    max_ms: 300_000,
};

/// Open connections per worker on the public listener.
const MAX_PUBLIC_CONNECTIONS_PER_WORKER: usize = 1024;

/// Open connections on the operations listener (a scraper and a probe or two).
const MAX_OPS_CONNECTIONS: usize = 64;

pub struct Application {
    port: u16,
    server: Server,
    public_port: Option<u16>,
    public_server: Option<Server>,
    ops_port: Option<u16>,
    ops_server: Option<Server>,
    pool: Store,
    sweeper: PeriodicTask,
    sealer: PeriodicTask,
    notices: PeriodicTask,
    clock: Arc<dyn Clock>,
    timeouts: Timeouts,
    settlement: Option<SettlementConfig>,
}

/// Runs `lifecycle::sweep` once on the center's clock and settings.
#[derive(Clone, Debug)]
pub struct Sweeper {
    pool: Store,
    clock: Arc<dyn Clock>,
    timeouts: Timeouts,
    /// Set when windows close by themselves (`settlement.auto_close`).
    settlement: Option<SettlementConfig>,
}

/// How often a running center seals its audit log: often, so that each seal is a short
/// write and an issuance's events are provable within seconds.
const SEAL_INTERVAL_MS: u64 = 1_000;

/// Audit batches sealed per round at most (each up to `audit::ROUND_BATCH_EVENTS`):
/// 4,096 events a second, several times what the fastest load here writes.
const AUDIT_BATCHES_PER_ROUND: u32 = 16;

impl Sweeper {
    /// One sweep, then (with auto-close) every settlement window whose cut has passed
    /// is closed.
    pub async fn sweep_now(&self) -> Result<crate::lifecycle::SweepSummary, SweepError> {
        let now_unix_ms = self.clock.now_unix_ms();
        let mut summary = crate::lifecycle::sweep(&self.pool, &self.timeouts, now_unix_ms).await?;
        if let Some(config) = &self.settlement {
            let closed =
                crate::settlement::close_due_windows(&self.pool, config, now_unix_ms).await?;
            summary.windows_closed = closed.len() as u64;
        }
        Ok(summary)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Settlement(#[from] crate::settlement::SettlementError),
}

/// A periodic background task; stops when dropped.
struct PeriodicTask(tokio::task::JoinHandle<()>);

impl Drop for PeriodicTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn spawn_sweeper(sweeper: Sweeper) -> PeriodicTask {
    PeriodicTask(tokio::spawn(async move {
        let mut interval =
            tokio::time::interval(Duration::from_millis(sweeper.timeouts.sweep_interval_ms));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            // Each replica sweeps; the conditional updates make that safe.
            if let Err(error) = sweeper.sweep_now().await {
                tracing::warn!(%error, "sweep failed; retrying at the next interval");
            }
        }
    }))
}

/// The audit log's sealer, on every replica (a lost race is not an error: the winner
/// sealed those events).
fn spawn_sealer(store: Store, clock: Arc<dyn Clock>, center_key: Arc<KeyPair>) -> PeriodicTask {
    PeriodicTask(tokio::spawn(async move {
        // Half a period out of step with the notice rounds, which start at once and
        // also come every second by default: each is a write SQLite's one writer
        // runs while issuances wait, and the two together made one longer stall.
        let period = Duration::from_millis(SEAL_INTERVAL_MS);
        let mut interval =
            tokio::time::interval_at(tokio::time::Instant::now() + period / 2, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match crate::audit::seal_in_rounds(
                &store,
                &center_key,
                clock.now_unix_ms(),
                AUDIT_BATCHES_PER_ROUND,
            )
            .await
            {
                Ok(0) => {}
                Ok(sealed) => tracing::debug!(sealed, "audit events sealed"),
                Err(error) => {
                    tracing::warn!(%error, "audit sealing failed; retrying at the next interval");
                }
            }
        }
    }))
}

/// The outcome-notice delivery loop (`notices`), on every replica.
fn spawn_notice_delivery(state: web::Data<AppState>, settings: NoticeSettings) -> PeriodicTask {
    PeriodicTask(tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(settings.interval_ms));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let deliverer = crate::notices::Deliverer {
                store: &state.pool,
                directory: &state.directory,
                adapters: &state.adapters,
                center_key: &state.center_key,
                settings: &settings,
            };
            if let Err(error) = deliverer.deliver_due(state.clock.now_unix_ms()).await {
                tracing::warn!(%error, "notice delivery failed; retrying at the next interval");
            }
        }
    }))
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let public = match settings.public_listen {
            Some(addr) => Some(
                TcpListener::bind(addr).map_err(|source| StartupError::Listen {
                    addr: addr.to_string(),
                    source,
                })?,
            ),
            None => None,
        };
        Self::build_with_public_listener(settings, clock, public).await
    }

    /// Like [`Application::build_with_clock`], with the public listener already bound
    /// (`settings.public_listen` is then not read): a caller that must know the public
    /// port before the center starts (to print it in `verify_url`) binds it first.
    pub async fn build_with_public_listener(
        settings: Settings,
        clock: Arc<dyn Clock>,
        public_listener: Option<TcpListener>,
    ) -> Result<Self, StartupError> {
        settings.validate()?;
        let pool = crate::db::connect(&settings.database_url).await?;
        let key_text = std::fs::read_to_string(&settings.center_key_path).map_err(|e| {
            StartupError::CenterKey {
                path: settings.center_key_path.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        let center_key =
            KeyPair::from_seed_base64(&key_text).map_err(|e| StartupError::CenterKey {
                path: settings.center_key_path.display().to_string(),
                reason: e.to_string(),
            })?;
        let card_authority = CardAuthority::load(
            &settings.card_authority_public_key,
            &settings.revocation_list_path,
        )?;
        let directory = Directory::from_settings(&settings)?;
        let adapters = AdapterClient::new(
            &settings.lgwan_tls,
            Duration::from_millis(settings.timeouts.adapter_timeout_ms),
        )?;
        let composer =
            Composer::with_embedded_font().map_err(|e| StartupError::Composer(e.to_string()))?;
        let tls = mtls::server_config(&settings.kiosk_tls)?;
        let listener =
            TcpListener::bind(settings.kiosk_listen).map_err(|source| StartupError::Listen {
                addr: settings.kiosk_listen.to_string(),
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                addr: settings.kiosk_listen.to_string(),
                source,
            })?
            .port();
        let settlement_config = SettlementConfig::from_settings(&settings)?;
        // There is always one open window from the first start on.
        crate::settlement::ensure_open_window(&pool, &settlement_config, clock.now_unix_ms())
            .await?;
        let settlement = settings.settlement.auto_close.then_some(settlement_config);
        let trust_list = crate::trust_list::TrustListCache::publish(
            &pool,
            &settings,
            &center_key,
            clock.now_unix_ms(),
        )
        .await?;
        let sweeper = spawn_sweeper(Sweeper {
            pool: pool.clone(),
            clock: Arc::clone(&clock),
            timeouts: settings.timeouts.clone(),
            settlement: settlement.clone(),
        });
        // The sealer signs the audit log's batch headers with the center's key.
        let sealer = spawn_sealer(
            pool.clone(),
            Arc::clone(&clock),
            Arc::new(center_key.clone()),
        );
        let sweep_clock = Arc::clone(&clock);
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            clock,
            challenge_key: crate::challenge::ChallengeKey::derive(&center_key),
            center_key,
            card_authority,
            directory,
            adapters,
            catalogues: CatalogueCache::new(
                settings
                    .municipalities
                    .len()
                    .clamp(1, crate::catalogue::MAX_CACHED_CATALOGUES),
            ),
            composer: Arc::new(composer),
            timeouts: settings.timeouts.clone(),
            verify_url: settings.verify_url.clone(),
            trust_list,
            metrics: crate::metrics::Metrics::new().with_store(pool.metrics()),
            adapter_bursts: crate::alerts::BurstDetector::new(
                crate::alerts::BURST_THRESHOLD,
                crate::alerts::BURST_WINDOW,
                settings.municipalities.len().max(1),
            ),
        });
        let notices = spawn_notice_delivery(state.clone(), settings.notices.clone());
        let (public_port, public_server) = match public_listener {
            Some(listener) => {
                let (port, server) = public_server(&settings, state.clone(), listener)?;
                (Some(port), Some(server))
            }
            None => (None, None),
        };
        let (ops_port, ops_server) = match settings.ops_listen {
            Some(addr) => {
                let (port, server) = ops_server(addr, state.clone())?;
                (Some(port), Some(server))
            }
            None => (None, None),
        };
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(body_deadline::bound_body_read))
                .wrap(tracing_actix())
                .app_data(state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(MAX_KIOSK_BODY_BYTES)
                        .error_handler(crate::error::json_error),
                )
                .configure(routes::configure)
        })
        .on_connect(mtls::on_connect)
        .tls_handshake_timeout(mtls::TLS_HANDSHAKE_TIMEOUT)
        .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
        .keep_alive(mtls::SERVER_KEEP_ALIVE)
        .listen_rustls_0_23(listener, tls)
        .map_err(|source| StartupError::Listen {
            addr: settings.kiosk_listen.to_string(),
            source,
        })?
        .run();
        Ok(Self {
            port,
            server,
            public_port,
            public_server,
            ops_port,
            ops_server,
            pool,
            sweeper,
            sealer,
            notices,
            clock: sweep_clock,
            timeouts: settings.timeouts.clone(),
            settlement,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The store (tests inspect stored state through it).
    pub fn pool(&self) -> Store {
        self.pool.clone()
    }

    /// A handle that runs the sweep on demand, usable after `run_until_stopped` took
    /// the application (tests move the clock, then sweep instead of waiting).
    pub fn sweeper(&self) -> Sweeper {
        Sweeper {
            pool: self.pool.clone(),
            clock: Arc::clone(&self.clock),
            timeouts: self.timeouts.clone(),
            settlement: self.settlement.clone(),
        }
    }

    /// The public listener's port, when there is one.
    pub fn public_port(&self) -> Option<u16> {
        self.public_port
    }

    /// The operations listener's port (`/health`, `/ready`, `/metrics`), when there is
    /// one.
    pub fn ops_port(&self) -> Option<u16> {
        self.ops_port
    }

    /// Stops every listener.
    pub fn handle(&self) -> AppHandle {
        AppHandle {
            kiosk: self.server.handle(),
            public: self.public_server.as_ref().map(Server::handle),
            ops: self.ops_server.as_ref().map(Server::handle),
        }
    }

    /// Serves until every listener stopped (a signal or [`AppHandle::stop`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server,
            public_server,
            ops_server,
            sweeper,
            sealer,
            notices,
            ..
        } = self;
        let optional = |server: Option<Server>| async move {
            match server {
                Some(server) => server.await,
                None => Ok(()),
            }
        };
        let (kiosk, public, ops) =
            tokio::join!(server, optional(public_server), optional(ops_server));
        drop(sweeper);
        drop(sealer);
        drop(notices);
        kiosk.and(public).and(ops)
    }
}

/// Stops the center's listeners (see [`Application::handle`]).
#[derive(Clone)]
pub struct AppHandle {
    kiosk: actix_web::dev::ServerHandle,
    public: Option<actix_web::dev::ServerHandle>,
    ops: Option<actix_web::dev::ServerHandle>,
}

impl AppHandle {
    /// Stops the kiosk listener, the public one and the operations one; `graceful`
    /// lets requests in flight finish.
    pub async fn stop(&self, graceful: bool) {
        let optional = |handle: Option<actix_web::dev::ServerHandle>| async move {
            if let Some(handle) = handle {
                handle.stop(graceful).await;
            }
        };
        tokio::join!(
            self.kiosk.stop(graceful),
            optional(self.public.clone()),
            optional(self.ops.clone())
        );
    }
}

/// The operations listener: plain HTTP, `routes::configure_ops` only (no kiosk or
/// public route), one worker.
fn ops_server(
    addr: std::net::SocketAddr,
    state: web::Data<AppState>,
) -> Result<(u16, Server), StartupError> {
    let listen_error = |source| StartupError::Listen {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).map_err(listen_error)?;
    let port = listener.local_addr().map_err(listen_error)?.port();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(body_deadline::bound_body_read))
            .app_data(state.clone())
            .configure(routes::configure_ops)
    })
    .workers(1)
    .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
    .keep_alive(mtls::SERVER_KEEP_ALIVE)
    .max_connections(MAX_OPS_CONNECTIONS)
    .listen(listener)
    .map_err(listen_error)?
    .run();
    tracing::info!(port, "operations listener (health, ready, metrics) bound");
    Ok((port, server))
}

/// The public listener: server authentication only (the kiosk listener's certificate),
/// `routes::configure_public` and nothing else.
fn public_server(
    settings: &Settings,
    state: web::Data<AppState>,
    listener: TcpListener,
) -> Result<(u16, Server), StartupError> {
    let addr = listener
        .local_addr()
        .map_err(|source| StartupError::Listen {
            addr: "public listener".into(),
            source,
        })?;
    let tls = mtls::server_config_without_client_auth(&settings.kiosk_tls)?;
    let gate = web::Data::new(routes::verify_page::VerifyGate::default());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(body_deadline::bound_body_read))
            .wrap(tracing_actix())
            .app_data(state.clone())
            .app_data(gate.clone())
            .app_data(PUBLIC_BODY_DEADLINE)
            .app_data(web::PayloadConfig::default().limit(MAX_PUBLIC_BODY_BYTES))
            .app_data(
                web::JsonConfig::default()
                    .limit(MAX_PUBLIC_BODY_BYTES)
                    .error_handler(crate::error::json_error),
            )
            .configure(routes::configure_public)
    })
    .tls_handshake_timeout(mtls::TLS_HANDSHAKE_TIMEOUT)
    .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
    .keep_alive(mtls::SERVER_KEEP_ALIVE)
    .max_connections(MAX_PUBLIC_CONNECTIONS_PER_WORKER)
    .listen_rustls_0_23(listener, tls)
    .map_err(|source| StartupError::Listen {
        addr: addr.to_string(),
        source,
    })?
    .run();
    tracing::info!(
        port = addr.port(),
        "public listener (verification page) bound"
    );
    Ok((addr.port(), server))
}

fn tracing_actix() -> actix_web::middleware::Logger {
    actix_web::middleware::Logger::new("%r %s %Dms")
}
