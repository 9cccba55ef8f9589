//! Building and running the server: keys, database, register import, TLS, listener.
//!
//! ```no_run
//! # async fn demo(settings: municipal_adapter::Settings) -> Result<(), Box<dyn std::error::Error>> {
//! let app = municipal_adapter::Application::build(settings).await?;
//! println!("listening on {}", app.local_addr());
//! app.run_until_stopped().await?;
//! # Ok(()) }
//! ```

use std::net::{SocketAddr, TcpListener};
use std::path::Path;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use schemas::{KeyPair, MunicipalityCode};

use crate::answers::{AnswerStore, ANSWER_RETENTION_DAYS};
use crate::configuration::Settings;
use crate::db::{connect_and_migrate, DbError};
use crate::issuance::{IssuanceService, Municipality, ISSUE_TIME_ZONE};
use crate::register::{import_register_dir, RegisterStore};
use crate::routes;
use crate::telemetry;

use mtls::body_deadline;
pub use mtls::body_deadline::{BodyDeadline, BODY_READ_TIMEOUT, BODY_READ_TIMEOUT_MS};

/// Time a client has to send its request head; its body is bounded by
/// [`BODY_READ_TIMEOUT`] (`body_deadline`).
const CLIENT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Open connections per worker. The only client is the center (each replica keeps at
/// most 32 idle connections per adapter); the bound keeps a broken or compromised peer
/// from exhausting file descriptors.
const MAX_CONNECTIONS_PER_WORKER: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("settings: {0}")]
    Settings(#[from] crate::configuration::SettingsError),
    #[error("municipality {code}: cannot read signing key {path}: {source}")]
    ReadKey {
        code: MunicipalityCode,
        path: String,
        source: std::io::Error,
    },
    #[error("municipality {code}: signing key {path} is invalid: {source}")]
    BadKey {
        code: MunicipalityCode,
        path: String,
        source: schemas::SigningError,
    },
    #[error("municipality {code}: register {path}: {message}")]
    Import {
        code: MunicipalityCode,
        path: String,
        message: String,
    },
    #[error("database: {0}")]
    Database(#[from] DbError),
    #[error("TLS: {0}")]
    Tls(#[from] mtls::TlsError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// A built adapter: bound to its port, register loaded, not yet serving until
/// [`Application::run_until_stopped`] is awaited (or spawned).
pub struct Application {
    local_addr: SocketAddr,
    server: Server,
}

impl Application {
    /// Loads keys and registers, migrates the database, binds the listener (port 0
    /// picks a free port) and prepares the mTLS server.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, crate::clock::Clock::system()).await
    }

    /// As [`Application::build`], with the deployment's clock (the sandbox and the
    /// tests pass the center's).
    pub async fn build_with_clock(
        settings: Settings,
        clock: crate::clock::Clock,
    ) -> Result<Self, StartupError> {
        settings.validate()?;
        settings.fault.warn_if_active();
        let pool = connect_and_migrate(&settings.database_url).await?;
        let register = RegisterStore::new(pool.clone());
        let today = jiff::Timestamp::now()
            .in_tz(ISSUE_TIME_ZONE)
            .map_err(|e| StartupError::Other(format!("time zone {ISSUE_TIME_ZONE}: {e}")))?
            .date();

        let mut municipalities = Vec::with_capacity(settings.municipalities.len());
        for m in &settings.municipalities {
            let key = load_key(m.code, &m.signing_key_path)?;
            // All or nothing; importing the same files again changes nothing.
            let outcome = import_register_dir(&pool, m.code, &m.register_dir, today)
                .await
                .map_err(|source| StartupError::Import {
                    code: m.code,
                    path: m.register_dir.display().to_string(),
                    message: source.to_string(),
                })?;
            tracing::info!(
                municipality = %m.code,
                kid = %key.kid(),
                register = %m.register_dir.display(),
                ?outcome,
                "register imported"
            );
            municipalities.push(Municipality::new(m, key));
        }

        let answers = AnswerStore::new(pool.clone());
        let cutoff_unix_s = jiff::Timestamp::now().as_second() - ANSWER_RETENTION_DAYS * 86_400;
        let purged = answers
            .purge_older_than(cutoff_unix_s)
            .await
            .map_err(|e| StartupError::Other(format!("purging old answers: {e}")))?;
        if purged > 0 {
            tracing::info!(purged, "stored answers past retention deleted");
        }

        let service = IssuanceService::new(
            settings.center_public_key,
            municipalities,
            register,
            answers,
            pool,
            settings.fault.clone(),
            clock,
        )
        .map_err(|e| StartupError::Other(e.to_string()))?;
        let service = web::Data::new(service);

        let tls = mtls::server_config(&settings.tls)?;
        let listener =
            TcpListener::bind(&settings.listen).map_err(|source| StartupError::Bind {
                address: settings.listen.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            address: settings.listen.clone(),
            source,
        })?;

        let server = HttpServer::new(move || {
            App::new()
                .app_data(service.clone())
                .app_data(routes::json_config())
                .wrap(from_fn(body_deadline::bound_body_read))
                .wrap(from_fn(telemetry::request_span))
                .service(
                    web::resource("/v1/certificates")
                        .wrap(from_fn(routes::require_center))
                        .route(web::post().to(routes::fetch_certificate))
                        .default_service(web::to(routes::method_not_allowed)),
                )
                .service(
                    web::resource("/v1/catalogue")
                        .wrap(from_fn(routes::require_center))
                        .route(web::post().to(routes::catalogue))
                        .default_service(web::to(routes::method_not_allowed)),
                )
                .service(
                    web::resource("/v1/domicile-registrations")
                        .wrap(from_fn(routes::require_center))
                        .route(web::post().to(routes::register_domicile))
                        .default_service(web::to(routes::method_not_allowed)),
                )
                .service(
                    web::resource("/v1/issuance-notices")
                        .wrap(from_fn(routes::require_center))
                        .route(web::post().to(routes::issuance_notice))
                        .default_service(web::to(routes::method_not_allowed)),
                )
                .service(
                    web::resource("/v1/info")
                        .route(web::get().to(routes::info))
                        .default_service(web::to(routes::method_not_allowed)),
                )
                .service(
                    web::resource("/health")
                        .route(web::get().to(routes::health))
                        .default_service(web::to(routes::method_not_allowed)),
                )
                .default_service(web::to(routes::not_found))
        })
        .on_connect(mtls::on_connect)
        .tls_handshake_timeout(mtls::TLS_HANDSHAKE_TIMEOUT)
        .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
        .keep_alive(mtls::SERVER_KEEP_ALIVE)
        .max_connections(MAX_CONNECTIONS_PER_WORKER)
        .listen_rustls_0_23(listener, tls)
        .map_err(|source| StartupError::Bind {
            address: settings.listen.clone(),
            source,
        })?
        // In-process adapters (tests, sandbox) run side by side; a stop must not wait
        // for the default 30 s.
        .shutdown_timeout(5)
        .run();

        tracing::info!(address = %local_addr, "municipal adapter listening (mTLS)");
        Ok(Self { local_addr, server })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// A handle to stop the server gracefully (`handle.stop(true).await`).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (signal or [`ServerHandle::stop`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn load_key(code: MunicipalityCode, path: &Path) -> Result<KeyPair, StartupError> {
    let text = std::fs::read_to_string(path).map_err(|source| StartupError::ReadKey {
        code,
        path: path.display().to_string(),
        source,
    })?;
    KeyPair::from_seed_base64(&text).map_err(|source| StartupError::BadKey {
        code,
        path: path.display().to_string(),
        source,
    })
}
