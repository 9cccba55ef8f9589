//! Runs every party of a sandbox in this process, on loopback, over real mTLS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use center::store::Store;

use crate::{io_error, Layout, SandboxError};

/// Choices a test or demo may make when starting a sandbox.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Overrides the center's database (e.g. a fresh PostgreSQL database).
    pub center_database_url: Option<String>,
    /// The center's clock (tests and the demo pin it, e.g. a weekday at 10:00 JST);
    /// `None`: the system clock. The adapters follow the center's clock through the
    /// instants in its signed requests.
    pub center_clock: Option<Arc<dyn center::clock::Clock>>,
}

/// A started sandbox. Dropping it does not stop the servers: call [`RunningSandbox::stop`].
pub struct RunningSandbox {
    pub layout: Layout,
    pub center_url: String,
    pub center_port: u16,
    /// `https://127.0.0.1:PORT` of the center's public listener (verification page,
    /// `POST /v1/verify`, `GET /v1/trust-list`; no client certificate), when the
    /// sandbox's settings have `public_listen`.
    pub public_url: Option<String>,
    /// The center's operations listener port (plain HTTP on loopback: `/health`,
    /// `/ready`, `/metrics`), when the settings have `ops_listen`.
    pub ops_port: Option<u16>,
    pub adapter_ports: Vec<(String, u16)>,
    /// Per adapter process: its settings file and database URL (the clerk's CLI, e.g.
    /// `municipal-adapter domicile approve --config F`, works on the same database).
    pub adapters: Vec<AdapterProcess>,
    pub center_pool: Store,
    /// The center's clock (shared with the adapters' deadline checks).
    pub clock: Arc<dyn center::clock::Clock>,
    handles: Vec<ServerHandle>,
    center_handle: center::startup::AppHandle,
}

/// What a resident enters for a 本籍地 利用登録 (see [`RunningSandbox::domicile_entry`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomicileEntry {
    /// 本籍.
    pub domicile: String,
    /// 筆頭者の氏名.
    pub domicile_head: String,
    pub holder_name: String,
}

/// One running adapter process of the sandbox.
#[derive(Clone, Debug)]
pub struct AdapterProcess {
    pub name: String,
    pub port: u16,
    pub config_path: PathBuf,
    pub database_url: String,
    /// The municipalities it serves (自治体クラウド: one process, several).
    pub municipalities: Vec<schemas::MunicipalityCode>,
}

impl RunningSandbox {
    /// Stops every server gracefully.
    pub async fn stop(self) {
        self.center_handle.stop(true).await;
        for handle in self.handles {
            handle.stop(true).await;
        }
    }

    /// The base URL of the center's public listener (see [`RunningSandbox::public_url`]).
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// The verification page, as printed on every back page (`verify_url`).
    pub fn verify_page_url(&self) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|base| format!("{base}/verify"))
    }

    /// The adapter process serving `code` (6-digit 地方公共団体コード).
    pub fn adapter_for(&self, code: &str) -> Option<&AdapterProcess> {
        self.adapters
            .iter()
            .find(|a| a.municipalities.iter().any(|m| m.to_string() == code))
    }

    /// Approves a pending 本籍地 利用登録 at `code`'s adapter, in-process, for the
    /// person `family_register_id/person_id` of its 戸籍 — what the municipality's clerk
    /// does with `municipal-adapter domicile approve`.
    pub async fn approve_domicile(
        &self,
        code: &str,
        registration_id: schemas::RequestId,
        person: &municipal_adapter::register::FamilyRegisterRef,
    ) -> Result<(), SandboxError> {
        let pool = self.adapter_pool(code).await?;
        let result =
            municipal_adapter::domicile::approve_registration(&pool, registration_id, person)
                .await
                .map(|_| ())
                .map_err(|e| SandboxError::Invalid(format!("approving {registration_id}: {e}")));
        pool.close().await;
        result
    }

    /// Rejects (不承認) a pending 本籍地 利用登録 at `code`'s adapter, in-process.
    pub async fn reject_domicile(
        &self,
        code: &str,
        registration_id: schemas::RequestId,
    ) -> Result<(), SandboxError> {
        let pool = self.adapter_pool(code).await?;
        let result = municipal_adapter::domicile::reject_registration(&pool, registration_id)
            .await
            .map(|_| ())
            .map_err(|e| SandboxError::Invalid(format!("rejecting {registration_id}: {e}")));
        pool.close().await;
        result
    }

    /// What the holder of `serial` (a card of `code`) would enter at the kiosk for a
    /// 本籍地 利用登録: 本籍 and 筆頭者 as recorded in the 住所地's 住民票, and the
    /// holder's name. `None` when the card is unbound or the record shows no 本籍.
    pub async fn domicile_entry(
        &self,
        code: &str,
        serial: &schemas::CardSerial,
    ) -> Result<Option<DomicileEntry>, SandboxError> {
        let municipality = schemas::MunicipalityCode::parse(code)
            .map_err(|e| SandboxError::Invalid(e.to_string()))?;
        let pool = self.adapter_pool(code).await?;
        let store = municipal_adapter::register::store::RegisterStore::new(pool.clone());
        let lookup = store.lookup_card(municipality, serial).await;
        pool.close().await;
        let lookup = lookup.map_err(|e| SandboxError::Invalid(format!("card {serial}: {e}")))?;
        Ok(lookup.and_then(|lookup| {
            let holder = lookup.holder()?;
            Some(DomicileEntry {
                domicile: holder.domicile.clone()?,
                domicile_head: holder.domicile_head.clone()?,
                holder_name: holder.name.clone(),
            })
        }))
    }

    /// The person of `code`'s 戸籍 a clerk would approve for an entry: the 戸籍 whose
    /// 本籍 and 筆頭者 match, and in it the (not 除籍) person with the holder's name.
    pub async fn matching_person(
        &self,
        code: &str,
        entry: &DomicileEntry,
    ) -> Result<Option<municipal_adapter::register::FamilyRegisterRef>, SandboxError> {
        let municipality = schemas::MunicipalityCode::parse(code)
            .map_err(|e| SandboxError::Invalid(e.to_string()))?;
        let pool = self.adapter_pool(code).await?;
        let matches = municipal_adapter::domicile::matching_family_registers(
            &pool,
            municipality,
            &entry.domicile,
            &entry.domicile_head,
        )
        .await;
        pool.close().await;
        let matches = matches.map_err(|e| SandboxError::Invalid(format!("{code}: {e}")))?;
        let name = municipal_adapter::domicile::normalized(&entry.holder_name);
        Ok(matches.into_iter().find_map(|register| {
            let person = register
                .persons
                .iter()
                .find(|p| !p.removed && municipal_adapter::domicile::normalized(&p.name) == name)?;
            Some(municipal_adapter::register::FamilyRegisterRef {
                family_register_id: register.family_register_id.clone(),
                person_id: person.person_id.clone(),
            })
        }))
    }

    /// A connection pool on the database of `code`'s adapter (close it when done).
    pub async fn adapter_pool(&self, code: &str) -> Result<sqlx::SqlitePool, SandboxError> {
        let adapter = self
            .adapter_for(code)
            .ok_or_else(|| SandboxError::Invalid(format!("no adapter serves {code}")))?;
        municipal_adapter::db::connect_and_migrate(&adapter.database_url)
            .await
            .map_err(|e| SandboxError::Invalid(format!("adapter {}: {e}", adapter.name)))
    }

    /// Publishes and writes the center's signed trust list (what relying parties use
    /// with `center verify`); returns its version and the center's public key (base64).
    pub async fn export_trust_list(&self, out_file: &Path) -> Result<(u64, String), SandboxError> {
        let settings = center::configuration::Settings::load(&self.layout.center_config)
            .map_err(|e| SandboxError::Invalid(format!("center: {e}")))?;
        // As of the sandbox's clock: a demo may have moved it, and its documents are
        // dated by it.
        let list = center::trust_list::export_at(&settings, out_file, self.clock.now_unix_ms())
            .await
            .map_err(|e| SandboxError::Invalid(format!("trust list: {e}")))?;
        let key = center::trust_list::load_center_key(&settings.center_key_path)
            .map_err(|e| SandboxError::Invalid(format!("center key: {e}")))?;
        Ok((
            list.payload.version,
            schemas::b64::Base64Bytes::encode(&key.public().0),
        ))
    }

    /// The kiosk settings file of `operator` (rewritten with the running center's URL).
    pub fn kiosk_config(&self, operator: &str) -> Option<&Path> {
        self.layout
            .kiosk_configs
            .iter()
            .find(|(o, _)| o == operator)
            .map(|(_, p)| p.as_path())
    }
}

/// Starts the adapters, then the center (pointed at the adapters' actual ports), and
/// rewrites the kiosk settings with the center's actual URL. Every listener binds an
/// ephemeral loopback port, so many sandboxes can run side by side.
pub async fn start(dir: &Path, options: StartOptions) -> Result<RunningSandbox, SandboxError> {
    let layout = Layout::open(dir)?;
    let mut handles = Vec::new();
    let mut adapter_ports = Vec::new();
    let mut adapters = Vec::new();
    let loopback_any: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    // One clock for the whole deployment: a test that moves the center's clock moves
    // the adapters' deadline checks with it.
    let clock = options
        .center_clock
        .unwrap_or_else(|| Arc::new(center::clock::SystemClock));
    let adapter_clock: municipal_adapter::clock::Clock = {
        let clock = Arc::clone(&clock);
        municipal_adapter::clock::Clock::from_fn(move || {
            jiff::Timestamp::from_millisecond(clock.now_unix_ms())
                .unwrap_or_else(|_| jiff::Timestamp::now())
        })
    };

    for (name, path) in &layout.adapter_configs {
        let mut settings = municipal_adapter::configuration::Settings::load(path)
            .map_err(|e| SandboxError::Invalid(format!("adapter {name}: {e}")))?;
        settings.listen = loopback_any.to_string();
        let database_url = settings.database_url.clone();
        let municipalities = settings.municipalities.iter().map(|m| m.code).collect();
        let app = municipal_adapter::startup::Application::build_with_clock(
            settings,
            adapter_clock.clone(),
        )
        .await
        .map_err(|e| SandboxError::Invalid(format!("adapter {name}: {e}")))?;
        adapter_ports.push((name.clone(), app.port()));
        adapters.push(AdapterProcess {
            name: name.clone(),
            port: app.port(),
            config_path: path.clone(),
            database_url,
            municipalities,
        });
        handles.push(app.handle());
        tokio::spawn(app.run_until_stopped());
    }

    let mut settings = center::configuration::Settings::load(&layout.center_config)
        .map_err(|e| SandboxError::Invalid(format!("center: {e}")))?;
    settings.kiosk_listen = loopback_any;
    // In process, the operations listener takes an ephemeral port like the kiosk one
    // (several sandboxes run side by side in tests); `ops_port` tells which.
    if settings.ops_listen.is_some() {
        settings.ops_listen = Some(loopback_any);
    }
    if let Some(url) = options.center_database_url {
        settings.database_url = url;
    }
    for municipality in &mut settings.municipalities {
        let adapter = adapter_of(&layout, &municipality.code.to_string())?;
        let port = adapter_ports
            .iter()
            .find(|(n, _)| *n == adapter)
            .map(|(_, p)| *p)
            .ok_or_else(|| SandboxError::Invalid(format!("no adapter {adapter}")))?;
        municipality.adapter_url = format!("https://127.0.0.1:{port}");
    }
    // The public listener: on the port chosen at init when it is free (so the URL on
    // pages printed by an earlier run of this sandbox works again), else on an
    // ephemeral one. Bound before the center starts, so that the URL printed on every
    // back page (`verify_url`) is the one served.
    let public_listener = match settings.public_listen {
        Some(configured) => {
            let listener = std::net::TcpListener::bind(configured)
                .or_else(|_| std::net::TcpListener::bind(loopback_any))
                .map_err(io_error(Path::new("127.0.0.1:0")))?;
            let port = listener
                .local_addr()
                .map_err(io_error(Path::new("127.0.0.1:0")))?
                .port();
            settings.public_listen = Some(([127, 0, 0, 1], port).into());
            settings.verify_url = format!("https://127.0.0.1:{port}/verify");
            Some(listener)
        }
        None => None,
    };
    let app = center::startup::Application::build_with_public_listener(
        settings,
        Arc::clone(&clock),
        public_listener,
    )
    .await
    .map_err(|e| SandboxError::Invalid(format!("center: {e}")))?;
    let center_port = app.port();
    let ops_port = app.ops_port();
    let center_pool = app.pool();
    let public_url = app
        .public_port()
        .map(|port| format!("https://127.0.0.1:{port}"));
    let center_handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let center_url = format!("https://127.0.0.1:{center_port}");

    for (_, path) in &layout.kiosk_configs {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let mut value: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| SandboxError::Invalid(e.to_string()))?;
        value.insert("center_url".into(), toml::Value::String(center_url.clone()));
        let text =
            toml::to_string_pretty(&value).map_err(|e| SandboxError::Invalid(e.to_string()))?;
        std::fs::write(path, text).map_err(io_error(path))?;
    }

    Ok(RunningSandbox {
        layout,
        center_url,
        center_port,
        public_url,
        ops_port,
        adapter_ports,
        adapters,
        center_pool,
        clock,
        handles,
        center_handle,
    })
}

/// The adapter serving `code`, read from the adapters' settings files.
fn adapter_of(layout: &Layout, code: &str) -> Result<String, SandboxError> {
    for (name, path) in &layout.adapter_configs {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let value: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| SandboxError::Invalid(e.to_string()))?;
        let serves = value
            .get("municipalities")
            .and_then(|m| m.as_array())
            .is_some_and(|list| {
                list.iter()
                    .any(|m| m.get("code").and_then(|c| c.as_str()) == Some(code))
            });
        if serves {
            return Ok(name.clone());
        }
    }
    Err(SandboxError::Invalid(format!(
        "no adapter serves municipality {code}"
    )))
}
